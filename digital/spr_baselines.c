/* spr_baselines.c - masks of the sparse-attention baselines (equations and
 * contracts: spr_baselines.h; sources and defaults: docs/baselines.md). */
#include "config.h"
#include "spr_baselines.h"
#include "spr_error.h"
#include "spr_mat.h"
#include "spr_vmath.h"
#include "spr_clones.h"
#include "spr_quant.h"
#include "spr_result.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- workspace ------------------------------------------------------- */

int spr_bl_ws_alloc(spr_bl_ws *ws, int n, int d) {
  if (!ws) return spr_error(SPR_EINVAL, "spr_bl_ws_alloc: ws is NULL");
  memset(ws, 0, sizeof *ws);
  if (n < 1 || d < 1)
    return spr_error(SPR_EINVAL, "spr_bl_ws_alloc: bad shape n = %d, d = %d (need >= 1)", n, d);
  /* n^2 elements of 4 bytes must be addressable */
  if ((double)n * n * sizeof(float) > (double)SIZE_MAX / 2)
    return spr_error(SPR_EINVAL, "spr_bl_ws_alloc: n = %d too large (n^2 scores)", n);
  if (d > 65536)
    return spr_error(SPR_EINVAL, "spr_bl_ws_alloc: d = %d above 65536", d);
  const size_t nd = (size_t)n * d, nn = (size_t)n * n;
  ws->qc = malloc(nd);
  ws->kc = malloc(nd);
  ws->kb = malloc(nd);
  ws->score = malloc(nn * sizeof(int32_t));
  ws->dot = malloc(nn * sizeof(int32_t));
  ws->e = malloc((size_t)8 * n * sizeof(double));
  ws->qpos = malloc((size_t)n * sizeof(int64_t));
  ws->tab = malloc((SPR_BL_EXP_TAB + 1) * sizeof *ws->tab);
  int rc = 0;
  if (ws->qc && ws->kc && ws->kb && ws->score && ws->dot && ws->e && ws->qpos && ws->tab) {
    /* scores of codes up to 8 bits: |s| <= 128^2 d */
    rc = spr_bl_quantile_alloc(&ws->qh, (int64_t)16384 * d);
    if (!rc) rc = spr_i8mat_alloc(n, d, n, &ws->pk);
    for (int r = 0; r < 7 && !rc; r++) rc = spr_i8mat_alloc(n, d, n, &ws->plow[r]);
    if (rc) {
      spr_bl_ws_free(ws);
      return rc;
    }
  } else {
    spr_bl_ws_free(ws);
    return spr_error(SPR_ENOMEM, "spr_bl_ws_alloc: no memory for n = %d, d = %d", n, d);
  }
  ws->n = n;
  ws->d = d;
  return 0;
}

void spr_bl_ws_free(spr_bl_ws *ws) {
  if (!ws) return;
  free(ws->qc); free(ws->kc); free(ws->kb);
  free(ws->score); free(ws->dot); free(ws->e); free(ws->qpos); free(ws->tab);
  spr_bl_quantile_free(ws->qh);
  spr_i8mat_free(ws->pk);
  for (int r = 0; r < 7; r++) spr_i8mat_free(ws->plow[r]);
  memset(ws, 0, sizeof *ws);
}

/* ---- shared helpers -------------------------------------------------- */

static void stats_begin(spr_bl_stats *st, int n, int d, int causal) {
  if (!st) return;
  memset(st, 0, sizeof *st);
  st->n = n;
  st->d = d;
  st->causal = causal != 0;
}

/* Count the set bits of the mask into st (keep count, and rate over the
 * head's pairs). */
static void stats_kept(spr_bl_stats *st, const uint8_t *mask, int n) {
  if (!st) return;
  const size_t nb = (size_t)n * spr_mask_row_bytes(n);
  int64_t c = 0;
  for (size_t b = 0; b < nb; b++) c += __builtin_popcount(mask[b]);
  st->n_kept = c;
  st->keep_rate = (double)c / (double)spr_pair_count(n, st->causal);
}

/* Keys of query i: all n, or (causal) 0 .. i. */
static inline int row_keys(int i, int n, int causal) { return causal ? i + 1 : n; }

static inline void set_bit(uint8_t *row, int j) { row[j >> 3] |= (uint8_t)(1u << (j & 7)); }

/* Arguments every scoring scheme shares. */
static int check_common(const char *fn, const void *p, const float *Q, const float *K, int n,
                        int d, const spr_bl_ws *ws, const uint8_t *mask, int q_bits,
                        int k_bits) {
  if (!p) return spr_error(SPR_EINVAL, "%s: params is NULL", fn);
  if (!Q) return spr_error(SPR_EINVAL, "%s: Q is NULL", fn);
  if (!K) return spr_error(SPR_EINVAL, "%s: K is NULL", fn);
  if (!ws) return spr_error(SPR_EINVAL, "%s: workspace is NULL", fn);
  if (!mask) return spr_error(SPR_EINVAL, "%s: mask is NULL", fn);
  if (n < 1) return spr_error(SPR_EINVAL, "%s: n = %d (need >= 1)", fn, n);
  if (d < 1) return spr_error(SPR_EINVAL, "%s: d = %d (need >= 1)", fn, d);
  if (n > ws->n || d > ws->d)
    return spr_error(SPR_EINVAL, "%s: n = %d, d = %d exceed the workspace (n = %d, d = %d)", fn,
                     n, d, ws->n, ws->d);
  if (q_bits < 2 || q_bits > 8)
    return spr_error(SPR_EINVAL, "%s: q_bits = %d outside [2, 8]", fn, q_bits);
  if (k_bits < 2 || k_bits > 8)
    return spr_error(SPR_EINVAL, "%s: k_bits = %d outside [2, 8]", fn, k_bits);
  return 0;
}

/* Quantize Q and K into ws->qc, ws->kc, naming the scheme and tensor on
 * failure. */
static int quantize(const char *fn, const float *Q, const float *K, int n, int d, int q_bits,
                    int k_bits, spr_bl_ws *ws, float *qs, float *ks) {
  const size_t nd = (size_t)n * d;
  int rc;
  if ((rc = spr_quant_sym(Q, nd, q_bits, ws->qc, qs))) return spr_error_prefix(rc, "%s: Q", fn);
  if ((rc = spr_quant_sym(K, nd, k_bits, ws->kc, ks))) return spr_error_prefix(rc, "%s: K", fn);
  return 0;
}

/* out[i n + j] = sum_t a[i d + t] b[j d + t] exactly (a, b: n x d codes),
 * through ws->pk (spr_i8mat: exact integer products). */
static int exact_scores(const int8_t *a, const int8_t *b, int n, int d, spr_bl_ws *ws,
                        int32_t *out) {
  int rc = spr_i8mat_pack(ws->pk, b, n, d, d);
  if (!rc) rc = spr_i8mat_mul(ws->pk, a, d, n, n, out, n);
  return rc;
}

/* The threshold theta of a decision s >= theta on integer scores as an
 * integer t with s >= theta <=> s >= t (theta finite), clamped to the
 * int32 range (scores are far inside it: |s| <= 2^14 d). */
static int32_t int_threshold(double theta) {
  const double c = ceil(theta);
  if (c > 2147483647.0) return INT32_MAX;
  if (c < -2147483647.0) return -INT32_MAX;
  return (int32_t)c;
}

/* Bits of s >= t for keys j < nk of a mask row (rb bytes; 0 beyond);
 * returns the keeps. */
static int64_t ge_row(const int32_t *s, int nk, int32_t t, uint8_t *row, size_t rb) {
  const size_t used = ((size_t)nk + 7) / 8;
  const int64_t c = spr_vbits_ge_i32(s, nk, t, row);
  if (rb > used) memset(row + used, 0, rb - used);
  return c;
}

/* Set in row the bits of the first `ties` keys j < nk (lowest j first)
 * with s[j] == v: top-k's ties at its k-th score. */
static void eq_first_any(const int32_t *s, int nk, int32_t v, int ties, uint8_t *row) {
  for (int j = 0; j < nk && ties > 0; j++)
    if (s[j] == v) {
      row[j >> 3] |= (uint8_t)(1u << (j & 7));
      ties--;
    }
}

#if SPR_AVX512_KERNELS
/* the same keys, found 16 at a time by compare masks */
__attribute__((target("avx512f"))) static void eq_first_512(const int32_t *s, int nk, int32_t v,
                                                            int ties, uint8_t *row) {
  const __m512i vv = _mm512_set1_epi32(v);
  for (int j = 0; j < nk && ties > 0; j += 16) {
    const __mmask16 lm = nk - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nk - j)) - 1);
    unsigned k = _mm512_mask_cmpeq_epi32_mask(lm, _mm512_maskz_loadu_epi32(lm, s + j), vv);
    for (; k && ties > 0; k &= k - 1, ties--) {
      const int jj = j + __builtin_ctz(k);
      row[jj >> 3] |= (uint8_t)(1u << (jj & 7));
    }
  }
}
#endif

static void eq_first(const int32_t *s, int nk, int32_t v, int ties, uint8_t *row) {
#if SPR_AVX512_KERNELS
  if (spr_cpu_avx512()) {
    eq_first_512(s, nk, v, ties, row);
    return;
  }
#endif
  eq_first_any(s, nk, v, ties, row);
}

/* ---- dense ------------------------------------------------------------ */

/* Keys 0 .. nk-1 of every row (nk = n, or i + 1 when causal). */
static int dense_mask(const char *fn, int n, int causal, uint8_t *mask, spr_bl_stats *st) {
  if (!mask) return spr_error(SPR_EINVAL, "%s: mask is NULL", fn);
  if (n < 1) return spr_error(SPR_EINVAL, "%s: n = %d (need >= 1)", fn, n);
  const size_t rb = spr_mask_row_bytes(n);
  for (int i = 0; i < n; i++) {
    uint8_t *row = mask + (size_t)i * rb;
    const int nk = row_keys(i, n, causal);
    const size_t full = (size_t)nk / 8;
    memset(row, 0xFF, full);
    memset(row + full, 0, rb - full);
    if (nk & 7) row[full] = (uint8_t)((1u << (nk & 7)) - 1);
  }
  stats_begin(st, n, 0, causal);
  stats_kept(st, mask, n);
  return 0;
}

int spr_bl_dense(int n, uint8_t *mask, spr_bl_stats *st) {
  return dense_mask("spr_bl_dense", n, 0, mask, st);
}

int spr_bl_dense_causal(int n, uint8_t *mask, spr_bl_stats *st) {
  return dense_mask("spr_bl_dense_causal", n, 1, mask, st);
}

/* Shared start of the threshold schemes (oracle, LeOPArd): the common
 * checks, a finite threshold, then Q and K quantized into ws. */
static int thresholded_prologue(const char *fn, const void *p, int q_bits, int k_bits,
                                double threshold, const float *Q, const float *K, int n, int d,
                                spr_bl_ws *ws, const uint8_t *mask, float *qs, float *ks) {
  int rc = check_common(fn, p, Q, K, n, d, ws, mask, q_bits, k_bits);
  if (rc) return rc;
  if (!isfinite(threshold))
    return spr_error(SPR_EINVAL, "%s: threshold = %g is not finite", fn, threshold);
  return quantize(fn, Q, K, n, d, q_bits, k_bits, ws, qs, ks);
}

/* Shared start of the keep-rate calibrations (oracle, Sanger): the common
 * checks, keep_rate in [0, 1], Q and K quantized into ws and their exact
 * integer scores into ws->score. */
static int calibrate_prologue(const char *fn, const void *p, int q_bits, int k_bits,
                              const float *Q, const float *K, int n, int d, double keep_rate,
                              spr_bl_ws *ws, float *qs, float *ks) {
  /* the mask argument is not used: pass a non-NULL dummy to the shared check */
  uint8_t dummy = 0;
  int rc = check_common(fn, p, Q, K, n, d, ws, &dummy, q_bits, k_bits);
  if (rc) return rc;
  if (!(keep_rate >= 0.0 && keep_rate <= 1.0))
    return spr_error(SPR_EINVAL, "%s: keep_rate = %g outside [0, 1]", fn, keep_rate);
  if ((rc = quantize(fn, Q, K, n, d, q_bits, k_bits, ws, qs, ks))) return rc;
  return exact_scores(ws->qc, ws->kc, n, d, ws, ws->score);
}

/* ---- oracle ----------------------------------------------------------- */

void spr_bl_oracle_default(spr_bl_oracle_params *p) {
  p->q_bits = 8;
  p->k_bits = 8;
  p->threshold = 0.0;
  p->causal = 0;
}

int64_t spr_bl_threshold_rows(const int32_t *S, size_t lds, int i0, int m, int n, int causal,
                              double theta, uint8_t *mask) {
  const size_t rb = spr_mask_row_bytes(n);
  const int32_t t = int_threshold(theta);
  int64_t kept = 0;
  for (int r = 0; r < m; r++)
    kept += ge_row(S + (size_t)r * lds, row_keys(i0 + r, n, causal), t, mask + (size_t)r * rb, rb);
  return kept;
}

int spr_bl_oracle(const spr_bl_oracle_params *p, const float *Q, const float *K, int n, int d,
                  spr_bl_ws *ws, uint8_t *mask, spr_bl_stats *st) {
  static const char fn[] = "spr_bl_oracle";
  float qs, ks;
  int rc = thresholded_prologue(fn, p, p ? p->q_bits : 0, p ? p->k_bits : 0,
                                p ? p->threshold : 0, Q, K, n, d, ws, mask, &qs, &ks);
  if (rc) return rc;
  if ((rc = exact_scores(ws->qc, ws->kc, n, d, ws, ws->score))) return rc;
  spr_bl_threshold_rows(ws->score, (size_t)n, 0, n, n, p->causal, p->threshold, mask);
  stats_begin(st, n, d, p->causal);
  if (st) {
    const int64_t nn = spr_pair_count(n, st->causal);
    st->q_scale = qs;
    st->k_scale = ks;
    st->threshold = p->threshold;
    st->mac_q_bits = p->q_bits;
    st->mac_k_bits = p->k_bits;
    st->mac_ops = nn * d;
    st->cmp_ops = nn;
  }
  stats_kept(st, mask, n);
  return 0;
}

/* ---- the oracle's quantile: a two-pass histogram ----------------------- */

int spr_bl_quantile_begin(spr_bl_quantile *h, int64_t bound) {
  if (!h) return spr_error(SPR_EINVAL, "spr_bl_quantile_begin: NULL histogram");
  if (bound < 0 || bound > ((int64_t)1 << 30))
    return spr_error(SPR_EINVAL, "spr_bl_quantile_begin: bound %lld outside [0, 2^30]",
                     (long long)bound);
  int64_t *fine = h->fine;
  const int64_t cap = h->fine_cap;
  memset(h, 0, offsetof(spr_bl_quantile, fine));
  h->fine = fine;
  h->fine_cap = cap;
  h->lo = -bound;
  const int64_t width = 2 * bound + 1;
  while (((width - 1) >> h->shift) >= SPR_BL_QCOARSE) h->shift++;
  if (((int64_t)1 << h->shift) > cap)
    return spr_error(SPR_EINVAL, "spr_bl_quantile_begin: scores up to %lld need %lld fine bins, "
                     "above the %lld allocated", (long long)bound, (long long)1 << h->shift,
                     (long long)cap);
  memset(h->fine, 0, ((size_t)1 << h->shift) * sizeof *h->fine);
  h->pass = 1;
  h->above_min = INT64_MAX;
  return 0;
}

int spr_bl_quantile_alloc(spr_bl_quantile **out, int64_t max_bound) {
  *out = NULL;
  if (max_bound < 0 || max_bound > ((int64_t)1 << 30))
    return spr_error(SPR_EINVAL, "spr_bl_quantile_alloc: bound %lld outside [0, 2^30]",
                     (long long)max_bound);
  int sh = 0;
  while (((2 * max_bound) >> sh) >= SPR_BL_QCOARSE) sh++;
  spr_bl_quantile *h = calloc(1, sizeof *h);
  if (h) h->fine = malloc(((size_t)1 << sh) * sizeof *h->fine);
  if (!h || !h->fine) {
    spr_bl_quantile_free(h);
    return spr_error(SPR_ENOMEM, "spr_bl_quantile_alloc: out of memory");
  }
  h->fine_cap = (int64_t)1 << sh;
  *out = h;
  return 0;
}

void spr_bl_quantile_free(spr_bl_quantile *h) {
  if (!h) return;
  free(h->fine);
  free(h);
}

/* min(amin, the least s - base >= w over s[0 .. nk)) */
SPR_HOT static int64_t quantile_above_min(const int32_t *s, int nk, int64_t base, int64_t w,
                                          int64_t amin) {
#pragma omp simd reduction(min : amin)
  for (int j = 0; j < nk; j++) {
    const int64_t v = (int64_t)s[j] - base;
    amin = v >= w && v < amin ? v : amin;
  }
  return amin;
}

/* fine[s - base] += 1 for the s of s[0 .. nk) in [base, base + w) */
static void fine_row_any(const int32_t *s, int nk, int64_t base, int64_t w, int64_t *fine) {
  for (int j = 0; j < nk; j++) {
    const int64_t v = (int64_t)s[j] - base;
    if ((uint64_t)v < (uint64_t)w) fine[v]++;
  }
}

#if SPR_AVX512_KERNELS
/* the same, 16 compares at a time and the few keys in the bin one by one
 * (the bin within the int32 range) */
__attribute__((target("avx512f"))) static void fine_row_512(const int32_t *s, int nk, int32_t b,
                                                            int32_t top, int64_t *fine) {
  const __m512i lo = _mm512_set1_epi32(b), hi = _mm512_set1_epi32(top);
  int j = 0;
  for (; j < nk; j += 16) {
    const __mmask16 t = nk - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nk - j)) - 1u);
    const __m512i v = _mm512_maskz_loadu_epi32(t, s + j);
    unsigned k = _mm512_mask_cmple_epi32_mask(_mm512_mask_cmpge_epi32_mask(t, v, lo), v, hi);
    for (; k; k &= k - 1) fine[(int64_t)s[j + __builtin_ctz(k)] - b]++;
  }
}
#endif

static void fine_row(const int32_t *s, int nk, int64_t base, int64_t w, int64_t *fine) {
#if SPR_AVX512_KERNELS
  if (spr_cpu_avx512() && base >= INT32_MIN && base + w - 1 <= INT32_MAX) {
    fine_row_512(s, nk, (int32_t)base, (int32_t)(base + w - 1), fine);
    return;
  }
#endif
  fine_row_any(s, nk, base, w, fine);
}

/* Pass 1: coarse[(s - lo) >> shift]; pass 2: fine histogram of the values
 * in the coarse bin of the crossing, and the smallest value above it. */
void spr_bl_quantile_rows(spr_bl_quantile *h, const int32_t *S, size_t lds, int i0, int m, int n,
                          int causal) {
  const int64_t lo = h->lo;
  const int sh = h->shift;
  if (h->pass == 1 && (int64_t)m * n > INT32_MAX) { /* the int32 sub-counts of one call */
    const int half = m / 2;
    spr_bl_quantile_rows(h, S, lds, i0, half, n, causal);
    spr_bl_quantile_rows(h, S + (size_t)half * lds, lds, i0 + half, m - half, n, causal);
    return;
  }
  if (h->pass == 1) memset(h->sub, 0, sizeof h->sub);
  for (int r = 0; r < m; r++) {
    const int32_t *s = S + (size_t)r * lds;
    const int nk = row_keys(i0 + r, n, causal);
    if (h->pass == 1) {
      /* four interleaved sub-histograms: no chain of increments of one
       * bin through memory */
      int32_t *c0 = h->sub, *c1 = c0 + SPR_BL_QCOARSE, *c2 = c1 + SPR_BL_QCOARSE,
              *c3 = c2 + SPR_BL_QCOARSE;
      int j = 0;
      for (; j + 4 <= nk; j += 4) {
        c0[((int64_t)s[j] - lo) >> sh]++;
        c1[((int64_t)s[j + 1] - lo) >> sh]++;
        c2[((int64_t)s[j + 2] - lo) >> sh]++;
        c3[((int64_t)s[j + 3] - lo) >> sh]++;
      }
      for (; j < nk; j++) c0[((int64_t)s[j] - lo) >> sh]++;
      h->total += nk;
    } else {
      /* in 32-bit offsets from lo + b0: the bin is [0, w), above is >= w
       * (the minimum above without a branch), below is negative */
      const int64_t b0 = (int64_t)h->bin << sh;
      const int64_t base = lo + b0, w = (int64_t)1 << sh;
      int64_t amin = h->above_min == INT64_MAX ? INT64_MAX : h->above_min - b0;
      int64_t *fine = h->fine;
      /* the minimum above (vectorised), then the few values in the bin */
      amin = quantile_above_min(s, nk, base, w, amin);
      fine_row(s, nk, base, w, fine);
      h->above_min = amin == INT64_MAX ? INT64_MAX : amin + b0;
    }
  }
  if (h->pass == 1) /* the sub-histograms of this call into the counts */
    for (int b = 0; b < SPR_BL_QCOARSE; b++)
      h->coarse[b] += (int64_t)h->sub[b] + h->sub[SPR_BL_QCOARSE + b] +
                      h->sub[2 * SPR_BL_QCOARSE + b] + h->sub[3 * SPR_BL_QCOARSE + b];
}

int spr_bl_quantile_next(spr_bl_quantile *h, double keep_rate) {
  if (h->pass != 1) return 0;
  /* the coarse bin holding u_a, the largest value s with count(>= s) >=
   * target: the highest non-empty bin whose suffix count reaches it */
  const double target = keep_rate * (double)h->total;
  int64_t suf = 0;
  h->bin = -1;
  for (int b = SPR_BL_QCOARSE - 1; b >= 0; b--) {
    suf += h->coarse[b];
    if (h->coarse[b] > 0 && (double)suf >= target) {
      h->bin = b;
      h->above = suf - h->coarse[b];
      break;
    }
  }
  h->pass = 2;
  return h->bin >= 0; /* a second pass over the same scores */
}

void spr_bl_quantile_result(const spr_bl_quantile *h, double keep_rate, double *threshold,
                            double *achieved) {
  const double target = keep_rate * (double)h->total;
  if (h->total == 0 || h->bin < 0) {
    *threshold = 0;
    if (achieved) *achieved = 0;
    return;
  }
  const int64_t b0 = (int64_t)h->bin << h->shift, nb = (int64_t)1 << h->shift;
  /* u_a: the largest value of the bin with count(>= u_a) >= target */
  int64_t cnt = h->above, ua = -1, ca = 0;
  for (int64_t v = nb - 1; v >= 0; v--) {
    if (!h->fine[v]) continue;
    cnt += h->fine[v];
    if ((double)cnt >= target) {
      ua = v;
      ca = cnt;
      break;
    }
  }
  /* u_b: the next value above u_a (count(>= u_b) = ca - fine[u_a]), or
   * max + 1 = u_a + 1 (keeps nothing) when there is none */
  int64_t ub = -1;
  for (int64_t v = ua + 1; v < nb && ub < 0; v++)
    if (h->fine[v]) ub = v;
  int64_t ub_abs;
  if (ub >= 0) ub_abs = b0 + ub + h->lo;
  else if (h->above_min != INT64_MAX) ub_abs = h->above_min + h->lo;
  else ub_abs = b0 + ua + h->lo + 1;
  const int64_t cb = ca - h->fine[ua];
  /* the nearer count; equally near: u_a, the lower threshold, keeps more */
  const double ea = fabs((double)ca - target), eb = fabs((double)cb - target);
  if (ea <= eb) {
    *threshold = (double)(b0 + ua + h->lo);
    if (achieved) *achieved = (double)ca / (double)h->total;
  } else {
    *threshold = (double)ub_abs;
    if (achieved) *achieved = (double)cb / (double)h->total;
  }
}

/* max |a| over m codes */
static int maxabs8(const int8_t *x, size_t m) {
  int a = 0;
  for (size_t i = 0; i < m; i++) {
    int v = x[i] < 0 ? -x[i] : x[i];
    if (v > a) a = v;
  }
  return a;
}

int spr_bl_oracle_calibrate(const spr_bl_oracle_params *p, const float *Q, const float *K, int n,
                            int d, double keep_rate, spr_bl_ws *ws, double *threshold,
                            double *achieved) {
  static const char fn[] = "spr_bl_oracle_calibrate";
  if (!threshold) return spr_error(SPR_EINVAL, "%s: threshold is NULL", fn);
  float qs, ks;
  int rc = calibrate_prologue(fn, p, p ? p->q_bits : 0, p ? p->k_bits : 0, Q, K, n, d, keep_rate,
                              ws, &qs, &ks);
  if (rc) return rc;
  const size_t nd = (size_t)n * d;
  spr_bl_quantile *h = ws->qh;
  if ((rc = spr_bl_quantile_begin(h, (int64_t)maxabs8(ws->qc, nd) * maxabs8(ws->kc, nd) * d)))
    return rc;
  spr_bl_quantile_rows(h, ws->score, (size_t)n, 0, n, n, p->causal);
  if (spr_bl_quantile_next(h, keep_rate))
    spr_bl_quantile_rows(h, ws->score, (size_t)n, 0, n, n, p->causal);
  spr_bl_quantile_result(h, keep_rate, threshold, achieved);
  return 0;
}

/* ---- top-k -------------------------------------------------------------- */

void spr_bl_topk_default(spr_bl_topk_params *p) {
  p->q_bits = 8;
  p->k_bits = 8;
  p->k = 0;
  p->keep_fraction = 0.15;
  p->causal = 0;
}

/* k_i of query i: min(k, nk), or with k = 0 from the fraction (causal:
 * of the query's nk keys; otherwise k0, from the fraction of n). */
static int row_k(int k, int k0, double frac, int nk, int causal) {
  if (causal && k == 0) {
    const double kk = round(frac * nk);
    return kk < 1.0 ? 1 : (int)kk;
  }
  return k0 < nk ? k0 : nk;
}

/* The ki-th largest of s[0 .. nk) (1 <= ki <= nk): the largest t with
 * count(s >= t) >= ki, by bisection on t between lo (count(>= lo) >= ki,
 * first the row's minimum) and hi (count(>= hi) < ki, first its maximum
 * + 1).  Each step is one vectorised count (a compare and an add per 16
 * keys, no scatter, no branch per key).  Every third step the values in
 * [lo, hi) are gathered into cand (spr_vselect_range_i32; above = the
 * count at hi is kept), so later steps count over about an eighth as many
 * each time: about six passes over the row instead of log2(max - min). */
SPR_HOT static int32_t kth_largest(const int32_t *s, int nk, int ki, int32_t *cand) {
  int32_t mn, mx;
  spr_vminmax_i32(s, nk, &mn, &mx);
  if (ki == 1) return mx;
  /* int64 bounds: mx + 1 may exceed INT32_MAX.  count(s >= t) for lo <
   * t < hi: the count over the row, or once gathered, above + count(cur
   * >= t), cur holding the row's values in the bracket [lo', hi') of its
   * gathering (which holds [lo, hi)) and above = count(s >= hi'); chi =
   * count(s >= hi) */
  int64_t lo = mn, hi = (int64_t)mx + 1, above = 0, chi = 0;
  const int32_t *cur = s;
  int nc = nk;
  for (int step = 1; hi - lo > 1; step++) {
    const int64_t mid = lo + (hi - lo) / 2;
    const int32_t t = (int32_t)mid;
    const int64_t c = spr_vcount_ge_i32(cur, nc, t);
    const int64_t tot = cur == s ? c : above + c;
    if (tot >= ki) {
      lo = mid;
    } else {
      hi = mid;
      chi = tot;
    }
    if (step % 3 == 0 && nc > 32) {
      nc = spr_vselect_range_i32(cur, nc, (int32_t)lo, (int32_t)(hi - 1), cand);
      cur = cand;
      above = chi;
    }
  }
  return (int32_t)lo;
}

int64_t spr_bl_topk_rows(const int32_t *S, size_t lds, int i0, int m, int n, int causal, int k,
                         double keep_fraction, uint8_t *mask, int32_t *cand) {
  const size_t rb = spr_mask_row_bytes(n);
  int k0 = k;
  if (k == 0) {
    const double kk = round(keep_fraction * n);
    k0 = kk < 1.0 ? 1 : (int)kk;
  }
  int64_t kept = 0;
  for (int r = 0; r < m; r++) {
    const int32_t *si = S + (size_t)r * lds;
    uint8_t *row = mask + (size_t)r * rb;
    const int nk = row_keys(i0 + r, n, causal), ki = row_k(k, k0, keep_fraction, nk, causal);
    const int32_t v = kth_largest(si, nk, ki, cand);
    /* every key above v, then the ties at v from the lowest index */
    const int64_t above = v == INT32_MAX ? 0 : ge_row(si, nk, v + 1, row, rb);
    if (v == INT32_MAX) memset(row, 0, rb);
    eq_first(si, nk, v, ki - (int)above, row); /* >= 1: v itself has rank ki - 1 */
    kept += ki;
  }
  return kept;
}

int spr_bl_topk(const spr_bl_topk_params *p, const float *Q, const float *K, int n, int d,
                spr_bl_ws *ws, uint8_t *mask, spr_bl_stats *st) {
  static const char fn[] = "spr_bl_topk";
  int rc = check_common(fn, p, Q, K, n, d, ws, mask, p ? p->q_bits : 0, p ? p->k_bits : 0);
  if (rc) return rc;
  int k = p->k;
  if (k < 0 || k > n)
    return spr_error(SPR_EINVAL, "%s: k = %d outside [1, n = %d] (0: from keep_fraction)", fn, k,
                     n);
  if (k == 0) {
    if (!(p->keep_fraction > 0.0 && p->keep_fraction <= 1.0))
      return spr_error(SPR_EINVAL, "%s: keep_fraction = %g outside (0, 1] (used since k = 0)",
                       fn, p->keep_fraction);
    double kk = round(p->keep_fraction * n);
    k = kk < 1.0 ? 1 : (int)kk;
  }
  float qs, ks;
  if ((rc = quantize(fn, Q, K, n, d, p->q_bits, p->k_bits, ws, &qs, &ks))) return rc;
  if ((rc = exact_scores(ws->qc, ws->kc, n, d, ws, ws->score))) return rc;
  spr_bl_topk_rows(ws->score, (size_t)n, 0, n, n, p->causal, p->k, p->keep_fraction, mask,
                   ws->dot);
  stats_begin(st, n, d, p->causal);
  if (st) {
    const int64_t nn = spr_pair_count(n, st->causal);
    st->q_scale = qs;
    st->k_scale = ks;
    st->k = k;
    st->mac_q_bits = p->q_bits;
    st->mac_k_bits = p->k_bits;
    st->mac_ops = nn * d;
    st->topk_inputs = nn;
  }
  stats_kept(st, mask, n);
  return 0;
}

/* ---- Sanger ------------------------------------------------------------- */

void spr_bl_sanger_default(spr_bl_sanger_params *p) {
  p->q_bits = 4;
  p->k_bits = 4;
  p->p_threshold = 2e-3;
  p->causal = 0;
}

void spr_bl_exp_table(double c, int64_t len, double *tab) {
  for (int64_t t = 0; t < len; t++) tab[t] = exp(c * (double)(int32_t)(-t));
}

/* Bits j < nk of a cleared mask row: x[j] >= cut; returns their count. */
static int64_t ge_bits_any(const double *x, int nk, double cut, uint8_t *row) {
  int64_t kept = 0;
  int j = 0;
  for (; j + 8 <= nk; j += 8) {
    unsigned byte = 0;
    for (int u = 0; u < 8; u++) byte |= (unsigned)(x[j + u] >= cut) << u;
    row[j >> 3] = (uint8_t)byte;
    kept += __builtin_popcount(byte);
  }
  for (; j < nk; j++)
    if (x[j] >= cut) {
      row[j >> 3] |= (uint8_t)(1u << (j & 7));
      kept++;
    }
  return kept;
}

#if SPR_AVX512_KERNELS
/* the same, a compare mask of 8 doubles per byte */
__attribute__((target("avx512f"))) static int64_t ge_bits_512(const double *x, int nk, double cut,
                                                               uint8_t *row) {
  const __m512d c = _mm512_set1_pd(cut);
  int64_t kept = 0;
  int j = 0;
  for (; j + 8 <= nk; j += 8) {
    const __mmask8 k = _mm512_cmp_pd_mask(_mm512_loadu_pd(x + j), c, _CMP_GE_OQ);
    row[j >> 3] = (uint8_t)k;
    kept += __builtin_popcount(k);
  }
  if (j < nk) {
    const __mmask8 t = (__mmask8)((1u << (nk - j)) - 1u);
    const __mmask8 k = _mm512_mask_cmp_pd_mask(t, _mm512_maskz_loadu_pd(t, x + j), c, _CMP_GE_OQ);
    row[j >> 3] = (uint8_t)k;
    kept += __builtin_popcount(k);
  }
  return kept;
}
#endif

static int64_t ge_bits(const double *x, int nk, double cut, uint8_t *row) {
#if SPR_AVX512_KERNELS
  if (spr_cpu_avx512()) return ge_bits_512(x, nk, cut, row);
#endif
  return ge_bits_any(x, nk, cut, row);
}

/* z[r] = the sum of e[r ld + j] over j < nk, in j order, for r < 8: eight
 * chains of scalar adds in registers (GCC otherwise keeps the sums in
 * memory, or packs the eight rows' elements into one vector with seven
 * shuffles per key, both slower than the chains) */
__attribute__((optimize("no-tree-slp-vectorize", "no-tree-loop-vectorize"))) static void
sum8_rows(const double *e, size_t ld, int nk, double *z) {
  const double *e0 = e, *e1 = e0 + ld, *e2 = e1 + ld, *e3 = e2 + ld, *e4 = e3 + ld, *e5 = e4 + ld,
               *e6 = e5 + ld, *e7 = e6 + ld;
  double z0 = 0, z1 = 0, z2 = 0, z3 = 0, z4 = 0, z5 = 0, z6 = 0, z7 = 0;
  for (int j = 0; j < nk; j++) {
    z0 += e0[j];
    z1 += e1[j];
    z2 += e2[j];
    z3 += e3[j];
    z4 += e4[j];
    z5 += e5[j];
    z6 += e6[j];
    z7 += e7[j];
  }
  z[0] = z0, z[1] = z1, z[2] = z2, z[3] = z3, z[4] = z4, z[5] = z5, z[6] = z6, z[7] = z7;
}

/* er[j] = tab[v - s[j]] for j < nk (every index inside the table) */
static void tab_row_any(const int32_t *s, int nk, int32_t v, const double *tab, double *er) {
#pragma omp simd
  for (int j = 0; j < nk; j++) er[j] = tab[v - s[j]];
}

#if SPR_AVX512_KERNELS
/* the same with two 8-lane gathers per 16 keys (GCC's loop took the
 * elements one at a time through extracts) */
__attribute__((target("avx512f"))) static void tab_row_512(const int32_t *s, int nk, int32_t v,
                                                           const double *tab, double *er) {
  const __m512i vv = _mm512_set1_epi32(v);
  int j = 0;
  for (; j + 16 <= nk; j += 16) {
    const __m512i ix = _mm512_sub_epi32(vv, _mm512_loadu_si512((const void *)(s + j)));
    _mm512_storeu_pd(er + j, _mm512_i32gather_pd(_mm512_castsi512_si256(ix), tab, 8));
    _mm512_storeu_pd(er + j + 8, _mm512_i32gather_pd(_mm512_extracti64x4_epi64(ix, 1), tab, 8));
  }
  for (; j < nk; j++) er[j] = tab[v - s[j]];
}
#endif

static void tab_row(const int32_t *s, int nk, int32_t v, const double *tab, double *er) {
#if SPR_AVX512_KERNELS
  if (spr_cpu_avx512()) {
    tab_row_512(s, nk, v, tab, er);
    return;
  }
#endif
  tab_row_any(s, nk, v, tab, er);
}

SPR_HOT int64_t spr_bl_sanger_rows(const int32_t *S, size_t lds, int i0, int m, int n, int causal,
                                   double c, double p_threshold, const double *tab, int64_t tab_len,
                                   double *e, uint8_t *mask) {
  const size_t rb = spr_mask_row_bytes(n);
  int64_t kept = 0;
  /* eight rows at a time: e[r n + j] is row r's exponential of key j; the
   * eight sums run side by side, each over its own keys in key order */
  for (int r0 = 0; r0 < m; r0 += 8) {
    const int rr = m - r0 < 8 ? m - r0 : 8;
    int nk[8] = {0}, nkmin = n;
    for (int r = 0; r < rr; r++) {
      const int32_t *si = S + (size_t)(r0 + r) * lds;
      nk[r] = row_keys(i0 + r0 + r, n, causal);
      nkmin = nk[r] < nkmin ? nk[r] : nkmin;
      int32_t v, mn;
      spr_vminmax_i32(si, nk[r], &mn, &v);
      double *er = e + (size_t)r * n;
      if (tab && (int64_t)v - mn < tab_len) {
        tab_row(si, nk[r], v, tab, er);
      } else {
        for (int j = 0; j < nk[r]; j++) er[j] = exp(c * (double)(si[j] - v));
      }
    }
    double z[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (rr == 8) {
      int j = nkmin;
      sum8_rows(e, (size_t)n, nkmin, z);
      for (int r = 0; r < 8; r++)
        for (int jj = j; jj < nk[r]; jj++) z[r] += e[(size_t)r * n + jj];
    } else {
      for (int r = 0; r < rr; r++)
        for (int j = 0; j < nk[r]; j++) z[r] += e[(size_t)r * n + j];
    }
    for (int r = 0; r < rr; r++) {
      uint8_t *row = mask + (size_t)(r0 + r) * rb;
      memset(row, 0, rb);
      kept += ge_bits(e + (size_t)r * n, nk[r], p_threshold * z[r], row);
    }
  }
  return kept;
}

/* The exponential table of a head quantized with scales qs, ks: entries
 * for every score difference up to 2 max|q| max|k| d, when that is at
 * most SPR_BL_EXP_TAB; *len 0 otherwise (direct exp). */
static const double *sanger_table(spr_bl_ws *ws, int n, int d, float qs, float ks, double *c,
                                  int64_t *len) {
  const size_t nd = (size_t)n * d;
  *c = (double)qs * (double)ks / sqrt((double)d);
  const int64_t spread = 2 * (int64_t)maxabs8(ws->qc, nd) * maxabs8(ws->kc, nd) * d;
  if (spread > SPR_BL_EXP_TAB) {
    *len = 0;
    return NULL;
  }
  *len = spread + 1;
  spr_bl_exp_table(*c, *len, ws->tab);
  return ws->tab;
}

int spr_bl_sanger(const spr_bl_sanger_params *p, const float *Q, const float *K, int n, int d,
                  spr_bl_ws *ws, uint8_t *mask, spr_bl_stats *st) {
  static const char fn[] = "spr_bl_sanger";
  int rc = check_common(fn, p, Q, K, n, d, ws, mask, p ? p->q_bits : 0, p ? p->k_bits : 0);
  if (rc) return rc;
  if (!(p->p_threshold > 0.0 && p->p_threshold <= 1.0))
    return spr_error(SPR_EINVAL, "%s: p_threshold = %g outside (0, 1]", fn, p->p_threshold);
  float qs, ks;
  if ((rc = quantize(fn, Q, K, n, d, p->q_bits, p->k_bits, ws, &qs, &ks))) return rc;
  if ((rc = exact_scores(ws->qc, ws->kc, n, d, ws, ws->score))) return rc;
  /* x_ij = c s_ij;  p_ij >= thr  <=>  exp(c (s_ij - m_i)) >= thr sum_l exp(c (s_il - m_i)) */
  double c;
  int64_t len;
  const double *tab = sanger_table(ws, n, d, qs, ks, &c, &len);
  spr_bl_sanger_rows(ws->score, (size_t)n, 0, n, n, p->causal, c, p->p_threshold, tab, len, ws->e,
                     mask);
  stats_begin(st, n, d, p->causal);
  if (st) {
    /* per query of nk keys: nk - 1 comparisons for the maximum, nk for the
     * threshold, nk subtractions and nk - 1 additions, nk logit scalings
     * and one p_threshold * sum, nk exponentials */
    const int64_t nn = spr_pair_count(n, st->causal);
    st->q_scale = qs;
    st->k_scale = ks;
    st->threshold = p->p_threshold;
    st->mac_q_bits = p->q_bits;
    st->mac_k_bits = p->k_bits;
    st->mac_ops = nn * d;
    st->cmp_ops = (nn - n) + nn;
    st->add_ops = nn + (nn - n);
    st->mul_ops = nn + n;
    st->exp_ops = nn;
  }
  stats_kept(st, mask, n);
  return 0;
}

/* ---- LeOPArd ------------------------------------------------------------ */

void spr_bl_leopard_default(spr_bl_leopard_params *p) {
  p->q_bits = 8;
  p->k_bits = 8;
  p->threshold = 0.0;
  p->causal = 0;
}

int spr_bl_leopard_pack(const int8_t *kc, int n, int d, int B, spr_i8mat *const *plow,
                        int8_t *scratch) {
  (void)scratch;
  int rc = 0;
  for (int r = 1; r < B && !rc; r++)
    rc = spr_i8mat_pack_masked(plow[r - 1], kc, n, d, d, (uint8_t)((1u << r) - 1u));
  return rc;
}

int spr_bl_leopard_rows(const int8_t *q, int d, const int64_t *qpos, const int32_t *S, size_t lds,
                        int i0, int m, int n, int causal, int B, double theta,
                        spr_i8mat *const *plow, int32_t *L, int64_t *bits, int64_t *stops) {
  const int32_t t = int_threshold(theta);
  const int nc = causal ? i0 + m : n;
  int64_t b = 0, st = 0;
  for (int r = 0; r < m; r++) b += row_keys(i0 + r, n, causal); /* the sign plane of every pair */
  /* plane m = B - r continues iff P_m + U_m >= theta, P_m = S - L_r with
   * L_r = q . (k mod 2^r), U_m = (2^r - 1) sum_t max(q_t, 0) */
  /* 64 rows at a time: their plane products stay in cache for the counts
   * (VNNI: compared in registers, never stored) */
  const int fused = spr_i8mat_vnni(plow[0]);
  for (int r0 = 0; r0 < m; r0 += 64) {
    const int mm = m - r0 < 64 ? m - r0 : 64;
    if (fused) {
      int32_t tr[7 * 64];
      int nkr[64];
      int64_t nsum = 0, on[7];
      for (int r = 0; r < mm; r++) nsum += nkr[r] = row_keys(i0 + r0 + r, n, causal);
      for (int rr = 1; rr < B; rr++) {
        const int64_t left = ((int64_t)1 << rr) - 1;
        for (int r = 0; r < mm; r++) {
          int64_t tt = (int64_t)t - left * qpos[r0 + r];
          tr[(rr - 1) * mm + r] =
              (int32_t)(tt > INT32_MAX ? INT32_MAX : tt < -INT32_MAX ? -INT32_MAX : tt);
        }
      }
      /* nested: U_m + P_m never grows from plane to plane (reading bit r
       * adds at most 2^r sum max(q, 0) to P and takes it from U), and
       * the clamped thresholds keep that order */
      int rc = spr_i8mat_count_diff_ge(plow, B - 1, q + (size_t)r0 * d, d, mm, nc,
                                       S + (size_t)r0 * lds, lds, tr, nkr, 1, on);
      if (rc) return rc;
      for (int rr = 1; rr < B; rr++) b += on[rr - 1];
      st += nsum - on[0]; /* stopped by plane B - 1: before the last */
      continue;
    }
    for (int rr = 1; rr < B; rr++) {
      int rc = spr_i8mat_mul(plow[rr - 1], q + (size_t)r0 * d, d, mm, nc, L, nc);
      if (rc) return rc;
      const int64_t left = ((int64_t)1 << rr) - 1;
      for (int r = r0; r < r0 + mm; r++) {
        const int nk = row_keys(i0 + r, n, causal);
        int64_t tt = (int64_t)t - left * qpos[r];
        if (tt > INT32_MAX) tt = INT32_MAX;
        if (tt < -INT32_MAX) tt = -INT32_MAX;
        const int64_t on = spr_vcount_diff_ge_i32(S + (size_t)r * lds, L + (size_t)(r - r0) * nc,
                                                  nk, (int32_t)tt);
        b += on;
        if (rr == 1) st += nk - on; /* stopped by plane B - 1: before the last */
      }
    }
  }
  *bits += b;
  *stops += st;
  return 0;
}

int spr_bl_leopard(const spr_bl_leopard_params *p, const float *Q, const float *K, int n, int d,
                   spr_bl_ws *ws, uint8_t *mask, spr_bl_stats *st) {
  static const char fn[] = "spr_bl_leopard";
  float qs, ks;
  int rc = thresholded_prologue(fn, p, p ? p->q_bits : 0, p ? p->k_bits : 0,
                                p ? p->threshold : 0, Q, K, n, d, ws, mask, &qs, &ks);
  if (rc) return rc;
  const int B = p->k_bits;
  const double theta = p->threshold;
  for (int i = 0; i < n; i++) {
    int64_t s = 0;
    for (int t = 0; t < d; t++) {
      int v = ws->qc[(size_t)i * d + t];
      s += v > 0 ? v : 0;
    }
    ws->qpos[i] = s;
  }
  /* the exact scores (the last plane) decide; the planes before count */
  if ((rc = exact_scores(ws->qc, ws->kc, n, d, ws, ws->score)) ||
      (rc = spr_bl_leopard_pack(ws->kc, n, d, B, ws->plow, ws->kb)))
    return rc;
  int64_t bits = 0, stops = 0;
  if ((rc = spr_bl_leopard_rows(ws->qc, d, ws->qpos, ws->score, (size_t)n, 0, n, n, p->causal, B,
                                theta, ws->plow, ws->dot, &bits, &stops)))
    return rc;
  spr_bl_threshold_rows(ws->score, (size_t)n, 0, n, n, p->causal, theta, mask);
  stats_begin(st, n, d, p->causal);
  if (st) {
    st->q_scale = qs;
    st->k_scale = ks;
    st->threshold = theta;
    st->mac_q_bits = p->q_bits;
    st->mac_k_bits = 1;
    st->mac_ops = bits * d;
    st->add_ops = bits + (int64_t)n * d + (int64_t)n * B;
    st->cmp_ops = bits;
    st->key_bits_processed = bits;
    st->mean_bits_per_key = (double)bits / (double)spr_pair_count(n, st->causal);
    st->early_stops = stops;
  }
  stats_kept(st, mask, n);
  return 0;
}

/* ---- window + global ---------------------------------------------------- */

void spr_bl_window_default(spr_bl_window_params *p) {
  p->half_width = 32;
  p->n_global = 1;
  p->global_pos = NULL;
  p->causal = 0;
}

/* The checks of spr_bl_window's parameters (mask aside). */
static int check_window(const char *fn, const spr_bl_window_params *p, int n) {
  if (!p) return spr_error(SPR_EINVAL, "%s: params is NULL", fn);
  if (n < 1) return spr_error(SPR_EINVAL, "%s: n = %d (need >= 1)", fn, n);
  if (p->half_width < 0)
    return spr_error(SPR_EINVAL, "%s: half_width = %d (need >= 0)", fn, p->half_width);
  if (p->n_global < 0 || p->n_global > n)
    return spr_error(SPR_EINVAL, "%s: n_global = %d outside [0, n = %d]", fn, p->n_global, n);
  if (p->global_pos) {
    for (int g = 0; g < p->n_global; g++) {
      const int x = p->global_pos[g];
      if (x < 0 || x >= n)
        return spr_error(SPR_EINVAL, "%s: global_pos[%d] = %d outside [0, %d]", fn, g, x, n - 1);
      for (int h = 0; h < g; h++)
        if (p->global_pos[h] == x)
          return spr_error(SPR_EINVAL, "%s: global_pos[%d] = global_pos[%d] = %d (repeated)", fn,
                           h, g, x);
    }
  }
  return 0;
}

int spr_bl_window(const spr_bl_window_params *p, int n, uint8_t *mask, spr_bl_stats *st) {
  static const char fn[] = "spr_bl_window";
  if (p && !mask) return spr_error(SPR_EINVAL, "%s: mask is NULL", fn);
  int rc = check_window(fn, p, n);
  if (rc) return rc;
  const size_t rb = spr_mask_row_bytes(n);
  const int64_t w = p->half_width;
  const int causal = p->causal != 0;
  for (int i = 0; i < n; i++) {
    uint8_t *row = mask + (size_t)i * rb;
    memset(row, 0, rb);
    const int lo = (int)(i - w < 0 ? 0 : i - w);
    const int hi = causal ? i : (int)(i + w > n - 1 ? n - 1 : i + w);
    for (int j = lo; j <= hi; j++) set_bit(row, j);
  }
  for (int g = 0; g < p->n_global; g++) {
    const int x = p->global_pos ? p->global_pos[g] : g;
    /* the global query attends to all keys (causal: j <= x); every query
     * attends to it (causal: i >= x) */
    uint8_t *row = mask + (size_t)x * rb;
    for (int j = 0; j < row_keys(x, n, causal); j++) set_bit(row, j);
    for (int i = causal ? x : 0; i < n; i++) set_bit(mask + (size_t)i * rb, x);
  }
  stats_begin(st, n, 0, causal);
  stats_kept(st, mask, n);
  return 0;
}

/* ---- keep-rate matching (docs/baselines.md section 6) --------------------- */

/* k_i of top-k with k = 0 and fraction f for a query of nk keys, as
 * spr_bl_topk takes it (non-causal: k = max(1, round(f n)) for every
 * query; causal: max(1, round(f (i + 1)))). */
static int64_t topk_kept(int n, int causal, double f) {
  if (!causal) {
    const double kk = round(f * n);
    return (int64_t)n * (kk < 1.0 ? 1 : (int64_t)kk);
  }
  int64_t sum = 0;
  for (int i = 0; i < n; i++) {
    const double kk = round(f * (i + 1));
    sum += kk < 1.0 ? 1 : (int64_t)kk;
  }
  return sum;
}

int spr_bl_topk_match(int n, int causal, double keep_rate, double *fraction, double *achieved) {
  static const char fn[] = "spr_bl_topk_match";
  if (!fraction) return spr_error(SPR_EINVAL, "%s: fraction is NULL", fn);
  if (n < 1) return spr_error(SPR_EINVAL, "%s: n = %d (need >= 1)", fn, n);
  if (!(keep_rate >= 0.0 && keep_rate <= 1.0))
    return spr_error(SPR_EINVAL, "%s: keep_rate = %g outside [0, 1]", fn, keep_rate);
  const double P = (double)spr_pair_count(n, causal), target = keep_rate * P;
  /* the kept count is a non-decreasing step function of f: bisect for the
   * step that crosses the target, then take the nearer side (ties: the
   * larger count) */
  double lo = 0x1p-60, hi = 1.0;
  if ((double)topk_kept(n, causal, lo) >= target) {
    hi = lo;
  } else {
    for (int it = 0; it < 200 && hi - lo > 0x1p-52 * hi; it++) {
      const double mid = 0.5 * (lo + hi);
      if ((double)topk_kept(n, causal, mid) >= target) hi = mid;
      else lo = mid;
    }
    if (fabs((double)topk_kept(n, causal, lo) - target) < fabs((double)topk_kept(n, causal, hi) - target))
      hi = lo;
  }
  *fraction = hi;
  if (achieved) *achieved = (double)topk_kept(n, causal, hi) / P;
  return 0;
}

static int cmp_desc(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

/* Sanger's keep count at threshold p: #{(i, j): e_ij >= p z_i}, from the
 * row exponentials e (n x n, row i over its nk keys) and sums z. */
static int64_t sanger_kept(const double *e, const double *z, int n, int causal, double p) {
  int64_t kept = 0;
  for (int i = 0; i < n; i++) {
    const double cut = p * z[i];
    for (int j = 0; j < row_keys(i, n, causal); j++) kept += e[(size_t)i * n + j] >= cut;
  }
  return kept;
}

int spr_bl_sanger_calibrate(const spr_bl_sanger_params *p, const float *Q, const float *K, int n,
                            int d, double keep_rate, spr_bl_ws *ws, double *p_threshold,
                            double *achieved) {
  static const char fn[] = "spr_bl_sanger_calibrate";
  if (!p_threshold) return spr_error(SPR_EINVAL, "%s: p_threshold is NULL", fn);
  float qs, ks;
  int rc = calibrate_prologue(fn, p, p ? p->q_bits : 0, p ? p->k_bits : 0, Q, K, n, d, keep_rate,
                              ws, &qs, &ks);
  if (rc) return rc;
  const size_t nn = (size_t)n * n;
  double *e = malloc(nn * sizeof *e), *r = malloc(nn * sizeof *r), *z = malloc((size_t)n * sizeof *z);
  if (!e || !r || !z) {
    free(e);
    free(r);
    free(z);
    return spr_error(SPR_ENOMEM, "%s: out of memory for %d x %d ratios", fn, n, n);
  }
  /* the exponentials and sums exactly as spr_bl_sanger computes them */
  const double c = (double)qs * (double)ks / sqrt((double)d);
  size_t m = 0;
  for (int i = 0; i < n; i++) {
    const int32_t *si = ws->score + (size_t)i * n;
    const int nk = row_keys(i, n, p->causal);
    int32_t mx = si[0];
    for (int j = 1; j < nk; j++) mx = si[j] > mx ? si[j] : mx;
    double zi = 0;
    for (int j = 0; j < nk; j++) {
      e[(size_t)i * n + j] = exp(c * (double)(si[j] - mx));
      zi += e[(size_t)i * n + j];
    }
    z[i] = zi;
    for (int j = 0; j < nk; j++)
      if (e[(size_t)i * n + j] > 0) r[m++] = e[(size_t)i * n + j] / zi;
  }
  qsort(r, m, sizeof *r, cmp_desc);
  const double P = (double)spr_pair_count(n, p->causal), target = keep_rate * P;
  /* candidate counts: the top K ratios for every K where the ratio drops
   * (ties kept together), threshold midway to the next lower ratio (half
   * the lowest for all of them), 1 for the fewest (rows whose only key
   * has probability 1); the count nearest the target, ties to more kept */
  double best_p = 1.0;
  int64_t best_count = sanger_kept(e, z, n, p->causal, 1.0);
  double best_err = fabs((double)best_count - target);
  for (size_t k = 1; k <= m; k++) {
    if (k < m && r[k] == r[k - 1]) continue;
    const double cand = k < m ? 0.5 * (r[k - 1] + r[k]) : 0.5 * r[m - 1];
    if (!(cand > 0.0 && cand <= 1.0)) continue;
    const double err = fabs((double)k - target);
    if (err <= best_err) {
      best_err = err;
      best_p = cand;
      best_count = (int64_t)k;
    }
  }
  /* the decision rule's own count at the chosen threshold */
  best_count = sanger_kept(e, z, n, p->causal, best_p);
  free(e);
  free(r);
  free(z);
  *p_threshold = best_p;
  if (achieved) *achieved = (double)best_count / P;
  return 0;
}

/* Keys the window pattern keeps (spr_bl_window's rule), counted per row. */
static int64_t window_kept(const spr_bl_window_params *p, int n, int w) {
  const int causal = p->causal != 0;
  int64_t kept = 0;
  for (int i = 0; i < n; i++) {
    const int nk = row_keys(i, n, causal);
    int glob_i = 0;
    for (int g = 0; g < p->n_global; g++) glob_i |= (p->global_pos ? p->global_pos[g] : g) == i;
    if (glob_i) {
      kept += nk;
      continue;
    }
    const int lo = i - w < 0 ? 0 : i - w;
    const int hi = causal ? i : (i + w > n - 1 ? n - 1 : i + w);
    kept += hi - lo + 1;
    for (int g = 0; g < p->n_global; g++) {
      const int x = p->global_pos ? p->global_pos[g] : g;
      kept += x < nk && (x < lo || x > hi);
    }
  }
  return kept;
}

int spr_bl_window_match(const spr_bl_window_params *p, int n, double keep_rate, int *half_width,
                        double *achieved) {
  static const char fn[] = "spr_bl_window_match";
  if (!half_width) return spr_error(SPR_EINVAL, "%s: half_width is NULL", fn);
  int rc = check_window(fn, p, n);
  if (rc) return rc;
  if (!(keep_rate >= 0.0 && keep_rate <= 1.0))
    return spr_error(SPR_EINVAL, "%s: keep_rate = %g outside [0, 1]", fn, keep_rate);
  const double P = (double)spr_pair_count(n, p->causal), target = keep_rate * P;
  /* the count grows with the width: the first width reaching the target,
   * or the one before it when nearer (ties: the wider) */
  int lo = 0, hi = n;
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    if ((double)window_kept(p, n, mid) >= target) hi = mid;
    else lo = mid + 1;
  }
  int w = lo;
  if (w > 0 && fabs((double)window_kept(p, n, w - 1) - target) < fabs((double)window_kept(p, n, w) - target))
    w--;
  *half_width = w;
  if (achieved) *achieved = (double)window_kept(p, n, w) / P;
  return 0;
}
