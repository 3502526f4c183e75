/* spr_baselines.c - masks of the sparse-attention baselines (equations and
 * contracts: spr_baselines.h; sources and defaults: docs/baselines.md). */
#include "config.h"
#include "spr_baselines.h"
#include "spr_error.h"
#include "spr_mat.h"
#include "spr_quant.h"
#include "spr_result.h"

#include <math.h>
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
  const size_t nd = (size_t)n * d, nn = (size_t)n * n;
  ws->qc = malloc(nd);
  ws->kc = malloc(nd);
  ws->kb = malloc(nd);
  ws->qf = malloc(nd * sizeof(float));
  ws->kf = malloc(nd * sizeof(float));
  ws->s = malloc(nn * sizeof(float));
  ws->score = malloc(nn * sizeof(int32_t));
  ws->dot = malloc(nn * sizeof(int32_t));
  ws->nbits = malloc(nn);
  ws->row = malloc((size_t)n * sizeof(int32_t));
  ws->e = malloc((size_t)n * sizeof(double));
  ws->qpos = malloc((size_t)n * sizeof(int64_t));
  if (!ws->qc || !ws->kc || !ws->kb || !ws->qf || !ws->kf || !ws->s || !ws->score ||
      !ws->dot || !ws->nbits || !ws->row || !ws->e || !ws->qpos) {
    spr_bl_ws_free(ws);
    return spr_error(SPR_ENOMEM, "spr_bl_ws_alloc: no memory for n = %d, d = %d", n, d);
  }
  ws->n = n;
  ws->d = d;
  return 0;
}

void spr_bl_ws_free(spr_bl_ws *ws) {
  if (!ws) return;
  free(ws->qc); free(ws->kc); free(ws->kb); free(ws->qf); free(ws->kf);
  free(ws->s); free(ws->score); free(ws->dot); free(ws->nbits); free(ws->row); free(ws->e);
  free(ws->qpos);
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

static int maxabs8(const int8_t *x, size_t m) {
  int a = 0;
  for (size_t i = 0; i < m; i++) {
    int v = x[i] < 0 ? -x[i] : x[i];
    if (v > a) a = v;
  }
  return a;
}

/* out[i n + j] = sum_t a[i d + t] b[j d + t] exactly (a, b: n x d codes).
 * With every partial sum an integer of magnitude <= max|a| max|b| d
 * <= 2^24, float arithmetic in any order is exact, so the product goes
 * through spr_matf_gemm; otherwise an int64 loop. */
static int exact_scores(const int8_t *a, const int8_t *b, int n, int d, spr_bl_ws *ws,
                        int32_t *out) {
  const size_t nd = (size_t)n * d, nn = (size_t)n * n;
  const int64_t bound = (int64_t)maxabs8(a, nd) * maxabs8(b, nd) * d;
  if (bound <= ((int64_t)1 << 24)) {
    for (size_t t = 0; t < nd; t++) {
      ws->qf[t] = (float)a[t];
      ws->kf[t] = (float)b[t];
    }
    int rc = spr_matf_gemm(1.0f, spr_matf_view(ws->qf, n, d), 0, spr_matf_view(ws->kf, n, d), 1,
                           0.0f, spr_matf_view(ws->s, n, n));
    if (rc) return rc;
    for (size_t t = 0; t < nn; t++) out[t] = (int32_t)ws->s[t];
    return 0;
  }
  for (int i = 0; i < n; i++) {
    const int8_t *ai = a + (size_t)i * d;
    for (int j = 0; j < n; j++) {
      const int8_t *bj = b + (size_t)j * d;
      int64_t s = 0;
      for (int t = 0; t < d; t++) s += (int32_t)ai[t] * bj[t];
      out[(size_t)i * n + j] = (int32_t)s; /* |s| <= 128^2 d < 2^31 for any int d */
    }
  }
  return 0;
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

/* ---- oracle ----------------------------------------------------------- */

void spr_bl_oracle_default(spr_bl_oracle_params *p) {
  p->q_bits = 8;
  p->k_bits = 8;
  p->threshold = 0.0;
  p->causal = 0;
}

int spr_bl_oracle(const spr_bl_oracle_params *p, const float *Q, const float *K, int n, int d,
                  spr_bl_ws *ws, uint8_t *mask, spr_bl_stats *st) {
  static const char fn[] = "spr_bl_oracle";
  float qs, ks;
  int rc = thresholded_prologue(fn, p, p ? p->q_bits : 0, p ? p->k_bits : 0,
                                p ? p->threshold : 0, Q, K, n, d, ws, mask, &qs, &ks);
  if (rc) return rc;
  if ((rc = exact_scores(ws->qc, ws->kc, n, d, ws, ws->score))) return rc;
  const size_t rb = spr_mask_row_bytes(n);
  for (int i = 0; i < n; i++) {
    uint8_t *row = mask + (size_t)i * rb;
    const int32_t *si = ws->score + (size_t)i * n;
    const int nk = row_keys(i, n, p->causal);
    memset(row, 0, rb);
    for (int j = 0; j < nk; j++)
      if ((double)si[j] >= p->threshold) set_bit(row, j);
  }
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

/* Sort a[0..n) ascending: LSD radix sort on 8-bit digits of the value with
 * its sign bit flipped (so unsigned order is signed order); tmp holds n. */
static void radix_sort_i32(int32_t *a, int32_t *tmp, size_t n) {
  uint32_t *src = (uint32_t *)a, *dst = (uint32_t *)tmp;
  for (int pass = 0; pass < 4; pass++) {
    const int sh = 8 * pass;
    size_t count[257] = {0};
    for (size_t i = 0; i < n; i++) count[(((src[i] ^ 0x80000000u) >> sh) & 0xFF) + 1]++;
    for (int b = 0; b < 256; b++) count[b + 1] += count[b];
    for (size_t i = 0; i < n; i++) dst[count[((src[i] ^ 0x80000000u) >> sh) & 0xFF]++] = src[i];
    uint32_t *t = src;
    src = dst;
    dst = t;
  }
  /* four passes: the sorted data is back in a */
}

int spr_bl_oracle_calibrate(const spr_bl_oracle_params *p, const float *Q, const float *K, int n,
                            int d, double keep_rate, spr_bl_ws *ws, double *threshold,
                            double *achieved) {
  static const char fn[] = "spr_bl_oracle_calibrate";
  if (!threshold) return spr_error(SPR_EINVAL, "%s: threshold is NULL", fn);
  /* the mask argument is not used: pass a non-NULL dummy to the shared check */
  uint8_t dummy = 0;
  int rc = check_common(fn, p, Q, K, n, d, ws, &dummy, p ? p->q_bits : 0, p ? p->k_bits : 0);
  if (rc) return rc;
  if (!(keep_rate >= 0.0 && keep_rate <= 1.0))
    return spr_error(SPR_EINVAL, "%s: keep_rate = %g outside [0, 1]", fn, keep_rate);
  float qs, ks;
  if ((rc = quantize(fn, Q, K, n, d, p->q_bits, p->k_bits, ws, &qs, &ks))) return rc;
  if ((rc = exact_scores(ws->qc, ws->kc, n, d, ws, ws->score))) return rc;
  int32_t *a = ws->score;
  size_t nn = (size_t)n * n;
  if (p->causal) {
    /* the causal pairs only: row i's keys 0 .. i packed to the front (row
     * i starts at i (i + 1) / 2 <= i n, so nothing is overwritten unread) */
    size_t at = 0;
    for (int i = 0; i < n; i++) {
      memmove(a + at, a + (size_t)i * n, ((size_t)i + 1) * sizeof *a);
      at += (size_t)i + 1;
    }
    nn = at;
  }
  radix_sort_i32(a, ws->dot, nn); /* ascending */
  const double target = keep_rate * (double)nn;
  /* candidates from the highest threshold down: max + 1 keeps nothing,
   * then each distinct value v keeps count(s >= v) = nn - (first index of
   * v); "<=" lets equally near lower thresholds win */
  double best_t = (double)a[nn - 1] + 1.0, best_err = fabs(0.0 - target);
  size_t best_count = 0;
  for (size_t idx = nn; idx-- > 0;) {
    if (idx > 0 && a[idx - 1] == a[idx]) continue;
    const size_t count = nn - idx;
    const double err = fabs((double)count - target);
    if (err <= best_err) {
      best_err = err;
      best_t = (double)a[idx];
      best_count = count;
    }
  }
  *threshold = best_t;
  if (achieved) *achieved = (double)best_count / (double)nn;
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

/* The value of rank r (0 = largest) of a[0..m); reorders a.  Quickselect
 * with a three-way partition, so runs of equal values cost one pass. */
static int32_t select_desc(int32_t *a, int m, int r) {
  int lo = 0, hi = m - 1;
  while (lo < hi) {
    const int32_t piv = a[lo + (hi - lo) / 2];
    int lt = lo, i = lo, gt = hi; /* [lo,lt) > piv, [lt,i) == piv, (gt,hi] < piv */
    while (i <= gt) {
      int32_t v = a[i];
      if (v > piv) {
        a[i++] = a[lt];
        a[lt++] = v;
      } else if (v < piv) {
        a[i] = a[gt];
        a[gt--] = v;
      } else {
        i++;
      }
    }
    if (r < lt) hi = lt - 1;
    else if (r > gt) lo = gt + 1;
    else return piv;
  }
  return a[lo];
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
  const size_t rb = spr_mask_row_bytes(n);
  for (int i = 0; i < n; i++) {
    uint8_t *row = mask + (size_t)i * rb;
    const int32_t *si = ws->score + (size_t)i * n;
    /* causal: among keys 0 .. i, k_i = min(k, i + 1), or from the
     * fraction of the i + 1 keys */
    const int nk = row_keys(i, n, p->causal);
    int ki = k;
    if (p->causal && p->k == 0) {
      const double kk = round(p->keep_fraction * nk);
      ki = kk < 1.0 ? 1 : (int)kk;
    } else if (ki > nk) {
      ki = nk;
    }
    memcpy(ws->row, si, (size_t)nk * sizeof *si);
    const int32_t v = select_desc(ws->row, nk, ki - 1);
    int above = 0;
    for (int j = 0; j < nk; j++) above += si[j] > v;
    int ties = ki - above; /* >= 1: v itself has rank ki - 1 */
    memset(row, 0, rb);
    for (int j = 0; j < nk; j++)
      if (si[j] > v || (si[j] == v && ties-- > 0)) set_bit(row, j);
  }
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
  const double c = (double)qs * (double)ks / sqrt((double)d);
  const size_t rb = spr_mask_row_bytes(n);
  for (int i = 0; i < n; i++) {
    uint8_t *row = mask + (size_t)i * rb;
    const int32_t *si = ws->score + (size_t)i * n;
    const int nk = row_keys(i, n, p->causal); /* causal: softmax over j <= i */
    int32_t m = si[0];
    for (int j = 1; j < nk; j++) m = si[j] > m ? si[j] : m;
    double z = 0;
    for (int j = 0; j < nk; j++) {
      ws->e[j] = exp(c * (double)(si[j] - m));
      z += ws->e[j];
    }
    const double cut = p->p_threshold * z;
    memset(row, 0, rb);
    for (int j = 0; j < nk; j++)
      if (ws->e[j] >= cut) set_bit(row, j);
  }
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

int spr_bl_leopard(const spr_bl_leopard_params *p, const float *Q, const float *K, int n, int d,
                   spr_bl_ws *ws, uint8_t *mask, spr_bl_stats *st) {
  static const char fn[] = "spr_bl_leopard";
  float qs, ks;
  int rc = thresholded_prologue(fn, p, p ? p->q_bits : 0, p ? p->k_bits : 0,
                                p ? p->threshold : 0, Q, K, n, d, ws, mask, &qs, &ks);
  if (rc) return rc;
  const int B = p->k_bits;
  const size_t nd = (size_t)n * d, nn = (size_t)n * n;
  const double theta = p->threshold;
  for (int i = 0; i < n; i++) {
    int64_t s = 0;
    for (int t = 0; t < d; t++) {
      int v = ws->qc[(size_t)i * d + t];
      s += v > 0 ? v : 0;
    }
    ws->qpos[i] = s;
  }
  /* ws->nbits of a pair: planes read, | STOPPED once it stopped; a pair
   * is alive before plane m iff nbits == m - 1 */
  enum { STOPPED = 0x80 };
  int32_t *P = ws->score; /* partial scores P_m */
  memset(P, 0, nn * sizeof *P);
  memset(ws->nbits, 0, nn);
  int64_t bits = 0, stops = 0;
  for (int m = 1; m <= B; m++) {
    const int c = B - m; /* bit of this plane = planes left unread after it */
    for (size_t t = 0; t < nd; t++) ws->kb[t] = (int8_t)(((uint8_t)ws->kc[t] >> c) & 1u);
    if ((rc = exact_scores(ws->qc, ws->kb, n, d, ws, ws->dot))) return rc;
    const int32_t w = m == 1 ? -(1 << c) : (1 << c); /* the sign plane weighs -2^(B-1) */
    const int64_t left = ((int64_t)1 << c) - 1;      /* 2^r - 1 */
    for (int i = 0; i < n; i++) {
      const int64_t U = left * ws->qpos[i]; /* exact bound of the unread planes */
      int32_t *Pi = P + (size_t)i * n;
      const int32_t *Di = ws->dot + (size_t)i * n;
      uint8_t *nb = ws->nbits + (size_t)i * n;
      const int nk = row_keys(i, n, p->causal); /* causal: keys j <= i only */
      for (int j = 0; j < nk; j++) {
        if (nb[j] != m - 1) continue; /* stopped at an earlier plane */
        Pi[j] += w * Di[j];
        bits++;
        /* s <= P_m + U_m < theta: pruned (at m = B, U = 0 and P = s) */
        if ((double)((int64_t)Pi[j] + U) < theta) {
          nb[j] = (uint8_t)(m | STOPPED);
          stops += m < B;
        } else {
          nb[j] = (uint8_t)m;
        }
      }
    }
  }
  const size_t rb = spr_mask_row_bytes(n);
  for (int i = 0; i < n; i++) {
    uint8_t *row = mask + (size_t)i * rb;
    const uint8_t *nb = ws->nbits + (size_t)i * n;
    memset(row, 0, rb);
    for (int j = 0; j < n; j++)
      if (nb[j] == B) set_bit(row, j); /* all planes read, never stopped */
  }
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
  uint8_t dummy = 0;
  int rc = check_common(fn, p, Q, K, n, d, ws, &dummy, p ? p->q_bits : 0, p ? p->k_bits : 0);
  if (rc) return rc;
  if (!(keep_rate >= 0.0 && keep_rate <= 1.0))
    return spr_error(SPR_EINVAL, "%s: keep_rate = %g outside [0, 1]", fn, keep_rate);
  float qs, ks;
  if ((rc = quantize(fn, Q, K, n, d, p->q_bits, p->k_bits, ws, &qs, &ks))) return rc;
  if ((rc = exact_scores(ws->qc, ws->kc, n, d, ws, ws->score))) return rc;
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
