/* spr_digital.c - survivor fetch and buffer reuse, exact recompute over the
 * survivors, dense reference attention and accuracy metrics (model and
 * equations in spr_digital.h and docs/digital.md). */
#include "config.h"
#include "spr_digital.h"
#include "spr_error.h"
#include "spr_mat.h"
#include "spr_result.h"
#include "spr_vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spr_clones.h"

#if defined(__GNUC__) && !defined(__clang__) /* GCC vector extensions; clang 14 refuses some */
#pragma GCC diagnostic ignored "-Wpsabi" /* always inlined: no ABI crossing */
/* 16-float vectors for the value sums (register accumulators) */
typedef float v16f __attribute__((vector_size(64)));
static inline v16f ld16(const float *p) {
  v16f v;
  memcpy(&v, p, sizeof v);
  return v;
}
#endif

const char *spr_dig_policy_name(int policy) {
  switch (policy) {
  case SPR_DIG_SPRINT: return "sprint";
  case SPR_DIG_LRU: return "lru";
  default: return NULL;
  }
}

void spr_dig_fetch_default(spr_dig_fetch_params *p) {
  p->buffer_bytes = 16384; /* S-SPRINT, 16 KB (SPRINT, MICRO 2022) */
  p->key_bits = 8;         /* all bits of the quantized key */
  p->value_bits = 8;
  p->policy = SPR_DIG_SPRINT;
}

void spr_dig_metric_default(spr_dig_metric_params *p) {
  p->top_k = 5;
  p->causal = 0;
}

int spr_dig_ws_alloc(spr_dig_ws *ws, int n, int d) {
  if (!ws) return spr_error(SPR_EINVAL, "digital: workspace is NULL");
  memset(ws, 0, sizeof *ws);
  if (n < 1 || d < 1)
    return spr_error(SPR_EINVAL, "digital: bad workspace shape n=%d d=%d", n, d);
  const size_t un = (size_t)n;
  ws->idx = malloc((un + 16) * sizeof *ws->idx); /* + 16: row_survivors' whole-vector stores */
  ws->buf = malloc(un * sizeof *ws->buf);
  ws->prev = malloc(un * sizeof *ws->prev);
  ws->next = malloc(un * sizeof *ws->next);
  ws->res = malloc(un);
  ws->resw = malloc((un + 63) / 64 * sizeof *ws->resw);
  ws->heap = malloc((un + 16) * sizeof *ws->heap); /* + 16: rank_top_512's whole-vector stores */
  ws->acc = malloc((size_t)d * sizeof *ws->acc);
  ws->xs = malloc((un + 16) * sizeof *ws->xs);
  ws->ws = malloc((un + 16) * sizeof *ws->ws);
  ws->facc = malloc((size_t)2 * d * sizeof *ws->facc);
  ws->vf = malloc(un * d * sizeof *ws->vf);
  ws->sv = malloc(un * sizeof *ws->sv);
  ws->rowf = malloc(un * sizeof *ws->rowf);
  ws->q_hits = malloc(un * sizeof *ws->q_hits);
  ws->q_fetches = malloc(un * sizeof *ws->q_fetches);
  ws->q_overflow = malloc(un * sizeof *ws->q_overflow);
  if (!ws->idx || !ws->buf || !ws->prev || !ws->next || !ws->res || !ws->resw || !ws->heap ||
      !ws->acc || !ws->xs || !ws->ws || !ws->facc || !ws->vf || !ws->sv || !ws->rowf || !ws->q_hits ||
      !ws->q_fetches || !ws->q_overflow) {
    spr_dig_ws_free(ws);
    return spr_error(SPR_ENOMEM, "digital: out of memory for workspace n=%d d=%d", n, d);
  }
  ws->n = n;
  ws->d = d;
  return 0;
}

void spr_dig_ws_free(spr_dig_ws *ws) {
  if (!ws) return;
  free(ws->idx);
  free(ws->buf);
  free(ws->prev);
  free(ws->next);
  free(ws->res);
  free(ws->resw);
  free(ws->heap);
  free(ws->acc);
  free(ws->xs);
  free(ws->ws);
  free(ws->facc);
  free(ws->vf);
  free(ws->sv);
  free(ws->rowf);
  free(ws->q_hits);
  free(ws->q_fetches);
  free(ws->q_overflow);
  memset(ws, 0, sizeof *ws);
}

/* Common checks of shape and workspace; `what` names the caller. */
static int check_shape(const char *what, int n, int d, const spr_dig_ws *ws) {
  if (n < 1) return spr_error(SPR_EINVAL, "digital: %s: n=%d < 1", what, n);
  if (d < 1) return spr_error(SPR_EINVAL, "digital: %s: d=%d < 1", what, d);
  if (ws && (n > ws->n || d > ws->d))
    return spr_error(SPR_EINVAL, "digital: %s: n=%d x d=%d exceeds workspace %d x %d", what, n,
                     d, ws->n, ws->d);
  return 0;
}

/* Word w (64 keys) of a mask row of n keys, padding bits cleared. */
static inline uint64_t row_word(const uint8_t *row, int n, size_t w) {
  const size_t rb = spr_mask_row_bytes(n), b0 = 8 * w;
  uint64_t x = 0;
  if (b0 + 8 <= rb) {
    memcpy(&x, row + b0, 8);
  } else {
    for (size_t b = b0; b < rb; b++) x |= (uint64_t)row[b] << (8 * (b - b0));
  }
  if (64 * (w + 1) > (size_t)n) x &= ((uint64_t)1 << (n - 64 * w)) - 1; /* 1 .. 63 keys */
  return x;
}

/* The largest S_j over the keys j < n the row keeps (INT32_MIN: none). */
static int32_t kept_max_any(const int32_t *s, const uint8_t *row, int n) {
  int32_t mx = INT32_MIN;
  const size_t nw = ((size_t)n + 63) / 64;
  for (size_t w = 0; w < nw; w++)
    for (uint64_t x = row_word(row, n, w); x; x &= x - 1) {
      const int32_t v = s[64 * w + (size_t)__builtin_ctzll(x)];
      mx = v > mx ? v : mx;
    }
  return mx;
}

#if SPR_AVX512_KERNELS
/* the same with masked loads and maxima, 16 keys at a time */
__attribute__((target("avx512f"))) static int32_t kept_max_512(const int32_t *s, const uint8_t *row,
                                                                int n) {
  const size_t nw = ((size_t)n + 63) / 64;
  const __m512i lo = _mm512_set1_epi32(INT32_MIN);
  __m512i a = lo;
  for (size_t w = 0; w < nw; w++) {
    const uint64_t x = row_word(row, n, w);
    for (int q = 0; q < 4; q++) {
      const __mmask16 k = (__mmask16)(x >> (16 * q));
      a = _mm512_mask_max_epi32(a, k, a, _mm512_maskz_loadu_epi32(k, s + 64 * w + 16 * q));
    }
  }
  return _mm512_reduce_max_epi32(a);
}
#endif

static int32_t kept_max(const int32_t *s, const uint8_t *row, int n) {
#if SPR_AVX512_KERNELS
  if (spr_cpu_avx512()) return kept_max_512(s, row, n);
#endif
  return kept_max_any(s, row, n);
}

/* Survivors of one mask row, ascending, into idx; returns their count.
 * Bits j >= n of the last byte are ignored. */
static int row_survivors_any(const uint8_t *row, int n, int *idx) {
  const size_t nw = ((size_t)n + 63) / 64;
  int m = 0;
  for (size_t w = 0; w < nw; w++)
    for (uint64_t x = row_word(row, n, w); x; x &= x - 1) idx[m++] = (int)(64 * w) + __builtin_ctzll(x);
  return m;
}

#if SPR_AVX512_KERNELS
/* the same, 16 keys at a time: the compressed key indices of each 16 mask
 * bits (idx holds n + 16: every store is a whole vector) */
__attribute__((target("avx512f"))) static int row_survivors_512(const uint8_t *row, int n, int *idx) {
  const size_t nw = ((size_t)n + 63) / 64;
  const __m512i sixteen = _mm512_set1_epi32(16);
  __m512i base = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int m = 0;
  for (size_t w = 0; w < nw; w++) {
    const uint64_t x = row_word(row, n, w);
    for (int q = 0; q < 4; q++) {
      const __mmask16 k = (__mmask16)(x >> (16 * q));
      if (k) {
        _mm512_storeu_si512(idx + m, _mm512_maskz_compress_epi32(k, base));
        m += __builtin_popcount(k);
      }
      base = _mm512_add_epi32(base, sixteen);
    }
  }
  return m;
}
#endif

static int row_survivors(const uint8_t *row, int n, int *idx) {
#if SPR_AVX512_KERNELS
  if (spr_cpu_avx512()) return row_survivors_512(row, n, idx);
#endif
  return row_survivors_any(row, n, idx);
}

static inline int mask_bit(const uint8_t *row, int j) { return row[j >> 3] >> (j & 7) & 1; }

/* LRU list of evictable resident tokens, least recently used at the head. */
typedef struct {
  int *prev, *next;
  int head, tail;
} lru_list;

static void lru_unlink(lru_list *l, int j) {
  if (l->prev[j] >= 0) l->next[l->prev[j]] = l->next[j];
  else l->head = l->next[j];
  if (l->next[j] >= 0) l->prev[l->next[j]] = l->prev[j];
  else l->tail = l->prev[j];
  l->prev[j] = l->next[j] = -1;
}

static void lru_append(lru_list *l, int j) {
  l->prev[j] = l->tail;
  l->next[j] = -1;
  if (l->tail >= 0) l->next[l->tail] = j;
  else l->head = j;
  l->tail = j;
}

/* The checks of spr_dig_fetch's parameters; *tok the token bytes. */
static int fetch_check(const spr_dig_fetch_params *p, int n, int d, const spr_dig_fetch_stats *out,
                       const spr_dig_ws *ws, int64_t *tok) {
  if (!p) return spr_error(SPR_EINVAL, "digital: fetch: params is NULL");
  if (!out) return spr_error(SPR_EINVAL, "digital: fetch: stats is NULL");
  if (!ws) return spr_error(SPR_EINVAL, "digital: fetch: workspace is NULL");
  int rc = check_shape("fetch", n, d, ws);
  if (rc) return rc;
  if (p->key_bits < 0 || p->key_bits > 32)
    return spr_error(SPR_EINVAL, "digital: fetch: key_bits=%d outside 0..32 (0: values only)", p->key_bits);
  if (p->value_bits < 1 || p->value_bits > 32)
    return spr_error(SPR_EINVAL, "digital: fetch: value_bits=%d outside 1..32", p->value_bits);
  if (!spr_dig_policy_name(p->policy))
    return spr_error(SPR_EINVAL, "digital: fetch: unknown buffer policy %d (0 sprint, 1 lru)",
                     p->policy);
  *tok = ((int64_t)d * p->key_bits + 7) / 8 + ((int64_t)d * p->value_bits + 7) / 8;
  if (p->buffer_bytes < *tok)
    return spr_error(SPR_EINVAL,
                     "digital: fetch: buffer_bytes=%lld holds no token of %lld bytes "
                     "(d=%d, key_bits=%d, value_bits=%d)",
                     (long long)p->buffer_bytes, (long long)*tok, d, p->key_bits, p->value_bits);
  return 0;
}

int spr_dig_fetch_begin(const spr_dig_fetch_params *p, int n, int d, spr_dig_fetch_stats *out,
                        spr_dig_ws *ws) {
  int64_t tok = 0;
  int rc = fetch_check(p, n, d, out, ws, &tok);
  if (rc) return rc;
  memset(out, 0, sizeof *out);
  out->token_bytes = tok;
  out->capacity_tokens = p->buffer_bytes / tok;
  memset(ws->res, 0, (size_t)n);
  memset(ws->resw, 0, ((size_t)n + 63) / 64 * sizeof *ws->resw);
  if (p->policy == SPR_DIG_LRU)
    for (int j = 0; j < n; j++) ws->prev[j] = ws->next[j] = -1;
  ws->f_n = n;
  ws->f_next = 0;
  ws->f_nbuf = 0;
  ws->f_head = ws->f_tail = -1;
  ws->f_cap = out->capacity_tokens;
  ws->f_occ = 0;
  ws->f_new_sum = 0;
  return 0;
}

/* SPRINT's rule on bitsets: B = resident set (ws->resw), P = the query's
 * survivors.  hits = |B and P|; the misses P and not B are taken in
 * ascending key order, the first cap - hits of them kept, the rest
 * streamed; B becomes (B and P) plus the kept misses. */
SPR_HOT static void fetch_row_sprint(const uint8_t *row, int n, int64_t cap, spr_dig_ws *ws, int *h_,
                             int *f_, int *o_, int *m_) {
  const size_t nw = ((size_t)n + 63) / 64;
  uint64_t *R = ws->resw;
  int64_t h = 0, f = 0, m = 0;
  for (size_t w = 0; w < nw; w++) {
    const uint64_t P = row_word(row, n, w);
    h += __builtin_popcountll(R[w] & P);
    m += __builtin_popcountll(P);
  }
  int64_t free_slots = cap - h; /* >= 0: the hits were resident */
  for (size_t w = 0; w < nw; w++) {
    const uint64_t P = row_word(row, n, w);
    uint64_t miss = P & ~R[w];
    const int64_t c = __builtin_popcountll(miss);
    f += c;
    if (c > free_slots) { /* keep only the lowest free_slots of them */
      uint64_t keep = 0;
      for (int64_t t = 0; t < free_slots; t++) {
        const uint64_t low = miss & (~miss + 1);
        keep |= low;
        miss ^= low;
      }
      miss = keep;
    }
    free_slots -= __builtin_popcountll(miss);
    R[w] = (R[w] & P) | miss;
  }
  /* kept misses: min(f, cap - h); the rest streamed */
  const int64_t kept = f < cap - h ? f : cap - h;
  *h_ = (int)h;
  *f_ = (int)f;
  *o_ = (int)(f - kept);
  *m_ = (int)m;
}

int spr_dig_fetch_rows(const spr_dig_fetch_params *p, const uint8_t *mask, int i0, int m,
                       spr_dig_fetch_stats *out, spr_dig_ws *ws) {
  if (!p || !mask || !out || !ws)
    return spr_error(SPR_EINVAL, "digital: fetch: NULL argument");
  const int n = ws->f_n;
  if (i0 != ws->f_next || m < 0 || i0 + m > n)
    return spr_error(SPR_EINVAL, "digital: fetch: rows %d .. %d out of order (next %d of %d)", i0,
                     i0 + m - 1, ws->f_next, n);
  const size_t rb = spr_mask_row_bytes(n);
  const int64_t cap = ws->f_cap;
  int *idx = ws->idx;
  uint8_t *res = ws->res;
  lru_list l = {ws->prev, ws->next, ws->f_head, ws->f_tail};
  for (int r = 0; r < m; r++) {
    const int i = i0 + r;
    const uint8_t *row = mask + (size_t)r * rb;
    int h = 0, f = 0, o = 0, cnt = 0;
    if (p->policy == SPR_DIG_SPRINT) {
      fetch_row_sprint(row, n, cap, ws, &h, &f, &o, &cnt);
      ws->f_occ = h + (f - o);
    } else {
      cnt = row_survivors(row, n, idx);
      /* pin the hits: out of the evictable list for this query */
      for (int t = 0; t < cnt; t++)
        if (res[idx[t]]) {
          h++;
          lru_unlink(&l, idx[t]);
        }
      for (int t = 0; t < cnt; t++) {
        const int j = idx[t];
        if (res[j]) continue;
        f++;
        if (ws->f_occ < cap) {
          res[j] = 1;
          ws->f_occ++;
        } else if (l.head >= 0) {
          const int victim = l.head; /* smallest (last use, key index) */
          lru_unlink(&l, victim);
          res[victim] = 0;
          res[j] = 1;
        } else {
          o++; /* every slot holds a token of P_i: stream */
        }
      }
      /* tokens used by query i become the most recent, ascending key */
      for (int t = 0; t < cnt; t++)
        if (res[idx[t]]) lru_append(&l, idx[t]);
    }
    ws->q_hits[i] = h;
    ws->q_fetches[i] = f;
    ws->q_overflow[i] = o;
    out->uses += cnt;
    out->hits += h;
    out->fetches += f;
    out->overflow_tokens += o;
    if (i == 0) out->cold_fetches = f;
    else ws->f_new_sum += (double)f / n;
    if (ws->f_occ > out->peak_tokens) out->peak_tokens = ws->f_occ;
  }
  ws->f_head = l.head;
  ws->f_tail = l.tail;
  ws->f_next = i0 + m;
  return 0;
}

int spr_dig_fetch_end(spr_dig_fetch_stats *out, spr_dig_ws *ws) {
  if (!out || !ws) return spr_error(SPR_EINVAL, "digital: fetch: NULL argument");
  const int n = ws->f_n;
  if (ws->f_next != n)
    return spr_error(SPR_EINVAL, "digital: fetch: ended after %d of %d rows", ws->f_next, n);
  const int64_t cap = ws->f_cap, tok = out->token_bytes;
  if (out->peak_tokens > cap || out->hits + out->fetches != out->uses)
    return spr_error(SPR_EINTERNAL, "digital: fetch: broken invariant (peak %lld, capacity %lld)",
                     (long long)out->peak_tokens, (long long)cap);
  out->bytes_fetched = out->fetches * tok;
  out->bytes_reused = out->hits * tok;
  out->peak_bytes = out->peak_tokens * tok;
  out->new_fetch_frac = n > 1 ? ws->f_new_sum / (n - 1) : 0.0;
  return 0;
}

int spr_dig_fetch(const spr_dig_fetch_params *p, const uint8_t *mask, int n,
                  int d, spr_dig_fetch_stats *out, spr_dig_ws *ws) {
  if (!p) return spr_error(SPR_EINVAL, "digital: fetch: params is NULL");
  if (!mask) return spr_error(SPR_EINVAL, "digital: fetch: mask is NULL");
  int rc = spr_dig_fetch_begin(p, n, d, out, ws);
  if (!rc) rc = spr_dig_fetch_rows(p, mask, 0, n, out, ws);
  if (!rc) rc = spr_dig_fetch_end(out, ws);
  return rc;
}

static int check_scale(const char *name, float s) {
  if (!(isfinite(s) && s > 0))
    return spr_error(SPR_EINVAL, "digital: attend: %s=%g must be finite and > 0", name, (double)s);
  return 0;
}

/* acc[u] = sum_t w_t vf[idx_t][u] for u < d: the row's value product,
 * each u as (sum over even t) + (sum over odd t), both in increasing t
 * (two dependency chains; the same sums on every d path and machine).
 * d = 16, 32, 48, 64 or 128 keeps the sums in vector registers.  acc: 2 d
 * floats. */
#if defined(__GNUC__) && !defined(__clang__) /* GCC vector extensions; clang 14 refuses some */
/* 2 NV accumulators of 16 floats in registers (d = 16 NV): the even and the
 * odd survivors summed apart (two dependency chains), then added */
#define PV_FIXED(NV)                                                              \
  static inline __attribute__((always_inline)) void pv_fixed##NV(               \
      const int *idx, const float *w, int cnt, const float *vf, float *acc) {    \
    v16f a[NV], b[NV];                                                          \
    _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) a[v] = b[v] = (v16f){0}; \
    int t = 0;                                                                  \
    for (; t + 2 <= cnt; t += 2) {                                              \
      const float wa = w[t], wb = w[t + 1];                                     \
      const float *va = vf + (size_t)idx[t] * (16 * NV);                        \
      const float *vb = vf + (size_t)idx[t + 1] * (16 * NV);                    \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                    \
        a[v] += ld16(va + 16 * v) * wa;                                         \
        b[v] += ld16(vb + 16 * v) * wb;                                         \
      }                                                                         \
    }                                                                           \
    if (t < cnt) {                                                              \
      const float wa = w[t];                                                    \
      const float *va = vf + (size_t)idx[t] * (16 * NV);                        \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) a[v] += ld16(va + 16 * v) * wa; \
    }                                                                           \
    _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                      \
      const v16f s = a[v] + b[v];                                               \
      memcpy(acc + 16 * v, &s, sizeof s);                                       \
    }                                                                           \
  }
PV_FIXED(1)
PV_FIXED(2)
PV_FIXED(3)
PV_FIXED(4)
PV_FIXED(8)
#undef PV_FIXED
#endif

SPR_HOT static void pv_sum(const int *idx, const float *w, int cnt, const float *vf, int d,
                           float *restrict acc) {
#if defined(__GNUC__) && !defined(__clang__) /* GCC vector extensions; clang 14 refuses some */
  switch (d) {
  case 16: pv_fixed1(idx, w, cnt, vf, acc); return;
  case 32: pv_fixed2(idx, w, cnt, vf, acc); return;
  case 48: pv_fixed3(idx, w, cnt, vf, acc); return;
  case 64: pv_fixed4(idx, w, cnt, vf, acc); return;
  case 128: pv_fixed8(idx, w, cnt, vf, acc); return;
  default: break;
  }
#endif
  /* the same sums: even survivors into acc, odd into acc2, then added */
  float *restrict acc2 = acc + d;
  for (int u = 0; u < 2 * d; u++) acc[u] = 0.0f;
  for (int t = 0; t < cnt; t++) {
    const float wt = w[t];
    const float *restrict vj = vf + (size_t)idx[t] * d;
    float *restrict a = t & 1 ? acc2 : acc;
#pragma omp simd
    for (int u = 0; u < d; u++) a[u] += wt * vj[u];
  }
#pragma omp simd
  for (int u = 0; u < d; u++) acc[u] += acc2[u];
}

/* O (p.rows x d) = P V over P's p.cols keys (V's first rows), then row r
 * times rowf[r]. */
static int pv_gemm_scaled(spr_matf p, const float *vf, int d, const float *rowf, float *O) {
  const int rc = spr_matf_gemm(1.0f, p, 0, spr_matf_view((float *)vf, p.cols, d), 0, 0.0f,
                               spr_matf_view(O, p.rows, d));
  if (rc) return rc;
  for (int r = 0; r < p.rows; r++) {
    const float f = rowf[r];
    float *oi = O + (size_t)r * d;
    for (int u = 0; u < d; u++) oi[u] *= f;
  }
  return 0;
}

/* 1 when the row keeps exactly keys 0 .. cnt - 1 (cnt = its keeps). */
static int prefix_row(const uint8_t *row, int cnt) {
  const size_t full = (size_t)cnt / 8;
  for (size_t b = 0; b < full; b++)
    if (row[b] != 0xFF) return 0;
  return !(cnt & 7) || (row[full] & ((1u << (cnt & 7)) - 1)) == ((1u << (cnt & 7)) - 1);
}

/* o (d floats) = (v_scale / z) sum_t w_t vf[idx_t] with w_t = exp(alpha
 * (sv_t - max sv)) over the cnt survivors idx (ascending keys) of a row
 * and their exact scores sv; the value rows are added in ascending key
 * order. */
SPR_HOT static void attend_row(const int *idx, const int32_t *sv, int cnt, float alpha,
                                   const float *vf, int d, float v_scale, float *o,
                                   const float *er, spr_dig_ws *ws) {
  float *x = ws->xs, *w = ws->ws, *acc = ws->facc;
  float z;
  if (er) { /* the block's shared exponentials (spr_dig_exp_rows) */
    for (int t = 0; t < cnt; t++) w[t] = er[idx[t]];
    z = spr_vsum16(w, (size_t)cnt);
  } else {
    int32_t mx = INT32_MIN;
    if (cnt > 0) spr_vminmax_i32(sv, cnt, NULL, &mx);
#pragma omp simd
    for (int t = 0; t < cnt; t++) x[t] = alpha * (float)(sv[t] - mx);
    /* padded to whole vectors with exp(-inf) = 0: the sum is unchanged */
    const int c16 = (cnt + 15) & ~15;
    for (int t = cnt; t < c16; t++) x[t] = -INFINITY;
    z = spr_vexpf_sub_sum_nonpos(x, 0.0f, w, (size_t)c16);
  }
  pv_sum(idx, w, cnt, vf, d, acc);
  const float f = v_scale / z;
#pragma omp simd
  for (int u = 0; u < d; u++) o[u] = f * acc[u];
}


SPR_HOT int spr_dig_exp_rows(const int32_t *S, size_t lds, float alpha, int i0, int m, int n,
                             int causal, float *E, spr_dig_rowmax *emax) {
  if (!S || !E || !emax) return spr_error(SPR_EINVAL, "digital: exp rows: NULL argument");
  if (i0 < 0 || m < 0 || i0 + m > n || lds < (size_t)n)
    return spr_error(SPR_EINVAL, "digital: exp rows: rows %d .. %d of %d (ld %zu)", i0,
                     i0 + m - 1, n, lds);
  int rc = check_scale("alpha", alpha);
  if (rc) return rc;
  for (int r = 0; r < m; r++) {
    const int32_t *si = S + (size_t)r * lds;
    float *er = E + (size_t)r * n;
    const int nk = causal ? i0 + r + 1 : n;
    int32_t mx;
    spr_vminmax_i32(si, nk, NULL, &mx);
#pragma omp simd
    for (int j = 0; j < nk; j++) er[j] = alpha * (float)(si[j] - mx);
    spr_vexpf_nonpos(er, er, (size_t)nk);
    int first;
    const int ties = spr_vcount_eq_i32(si, nk, mx, &first);
    emax[r].max = mx;
    emax[r].arg = ties > 1 ? -1 - first : first;
  }
  return 0;
}

SPR_HOT int spr_dig_recompute_rows(const int32_t *S, size_t lds, float alpha, const uint8_t *mask,
                           int i0, int m, int n, const float *vf, int d, float v_scale,
                           const float *E, const spr_dig_rowmax *emax, float *O,
                           spr_dig_attend_stats *st, float *pbuf, spr_dig_ws *ws) {
  if (!S || !mask || !vf || !O || !ws)
    return spr_error(SPR_EINVAL, "digital: recompute: NULL argument");
  int rc = check_shape("recompute", n, d, ws);
  if (rc) return rc;
  if (i0 < 0 || m < 0 || i0 + m > n || lds < (size_t)n)
    return spr_error(SPR_EINVAL, "digital: recompute: rows %d .. %d of %d (ld %zu)", i0,
                     i0 + m - 1, n, lds);
  if ((rc = check_scale("alpha", alpha)) || (rc = check_scale("v_scale", v_scale))) return rc;
  const size_t rb = spr_mask_row_bytes(n), nw = ((size_t)n + 63) / 64;
  /* survivors of the block, and the keys any of its rows keeps */
  int64_t surv = 0, empty = 0;
  size_t wmax = 0;
  for (int r = 0; r < m; r++)
    for (size_t w = 0; w < nw; w++) {
      const uint64_t x = row_word(mask + (size_t)r * rb, n, w);
      surv += __builtin_popcountll(x);
      if (x && w + 1 > wmax) wmax = w + 1;
    }
  /* pbuf given (the caller's choice): one GEMM for P V */
  const int gemm = pbuf != NULL;
  const int ncols = (int)(64 * wmax < (size_t)n ? 64 * wmax : (size_t)n);
  if (gemm && E && surv == (int64_t)m * n) {
    /* every row keeps every key (dense): the shared exponentials are its
     * probabilities as they stand (the copy below would be the same
     * floats), and the GEMM reads them in place */
    for (int r = 0; r < m; r++) ws->rowf[r] = v_scale / spr_vsum16(E + (size_t)r * n, (size_t)n);
    const spr_matf pe = {(float *)E, m, n, n};
    if ((rc = pv_gemm_scaled(pe, vf, d, ws->rowf, O))) return rc;
    if (st) st->survivors += surv;
    return 0;
  }
  for (int r = 0; r < m; r++) {
    float *oi = O + (size_t)r * d;
    const int32_t *si = S + (size_t)r * lds;
    const uint8_t *row = mask + (size_t)r * rb;
    if (gemm) {
      /* a row keeping keys 0 .. cnt - 1 exactly (dense, causal dense):
       * its probabilities straight from the scores, no index list */
      int cnt = 0;
      for (size_t w = 0; w < nw; w++) cnt += __builtin_popcountll(row_word(row, n, w));
      float *pr = pbuf + (size_t)r * ncols;
      if (cnt > 0 && prefix_row(row, cnt)) {
        int32_t mx;
        spr_vminmax_i32(si, cnt, NULL, &mx);
        float z;
        if (E && emax[r].max == mx) {
          memcpy(pr, E + (size_t)r * n, (size_t)cnt * sizeof *pr);
          z = spr_vsum16(pr, (size_t)cnt);
        } else {
#pragma omp simd
          for (int j = 0; j < cnt; j++) pr[j] = alpha * (float)(si[j] - mx);
          z = spr_vexpf_sub_sum_nonpos(pr, 0.0f, pr, (size_t)cnt);
        }
        if (ncols > cnt) memset(pr + cnt, 0, (size_t)(ncols - cnt) * sizeof *pr);
        ws->rowf[r] = v_scale / z;
        continue;
      }
    }
    const int cnt = row_survivors(row, n, ws->idx);
    if (cnt == 0) {
      memset(oi, 0, (size_t)d * sizeof *oi);
      if (gemm) memset(pbuf + (size_t)r * ncols, 0, (size_t)ncols * sizeof *pbuf);
      if (gemm) ws->rowf[r] = 0.0f;
      empty++;
      continue;
    }
    /* the shared exponentials (a row keeping its maximum) need no scores */
    int keeps_max = 0;
    if (E) {
      const int32_t a = emax[r].arg;
      keeps_max = mask_bit(row, a >= 0 ? a : -1 - a) || (a < 0 && kept_max(si, row, n) == emax[r].max);
    }
    const float *er = keeps_max ? E + (size_t)r * n : NULL;
    int32_t mx = INT32_MIN;
    if (!er)
      for (int t = 0; t < cnt; t++) {
        const int32_t v = si[ws->idx[t]];
        ws->sv[t] = v;
        mx = v > mx ? v : mx;
      }
    if (!gemm) {
      attend_row(ws->idx, ws->sv, cnt, alpha, vf, d, v_scale, oi, er, ws);
      continue;
    }
    float z;
    if (er) {
      for (int t = 0; t < cnt; t++) ws->ws[t] = er[ws->idx[t]];
      z = spr_vsum16(ws->ws, (size_t)cnt);
    } else {
      for (int t = 0; t < cnt; t++) ws->xs[t] = alpha * (float)(ws->sv[t] - mx);
      z = spr_vexpf_sub_sum_nonpos(ws->xs, 0.0f, ws->ws, (size_t)cnt);
    }
    float *pr = pbuf + (size_t)r * ncols;
    memset(pr, 0, (size_t)ncols * sizeof *pr);
    for (int t = 0; t < cnt; t++) pr[ws->idx[t]] = ws->ws[t];
    ws->rowf[r] = v_scale / z;
  }
  if (gemm && ncols > 0) {
    /* O = P V over the keys the block keeps, then each row times its
     * factor v_scale / z (0 for an empty row, whose P row is 0) */
    if ((rc = pv_gemm_scaled(spr_matf_view(pbuf, m, ncols), vf, d, ws->rowf, O))) return rc;
  }
  if (st) {
    st->survivors += surv;
    st->empty_queries += empty;
  }
  return 0;
}

int spr_dig_attend(const int8_t *q, float q_scale, const int8_t *k,
                   float k_scale, const int8_t *v, float v_scale,
                   const uint8_t *mask, int n, int d, float *O,
                   spr_dig_attend_stats *st, spr_dig_ws *ws) {
  if (!q) return spr_error(SPR_EINVAL, "digital: attend: q is NULL");
  if (!k) return spr_error(SPR_EINVAL, "digital: attend: k is NULL");
  if (!v) return spr_error(SPR_EINVAL, "digital: attend: v is NULL");
  if (!mask) return spr_error(SPR_EINVAL, "digital: attend: mask is NULL");
  if (!O) return spr_error(SPR_EINVAL, "digital: attend: O is NULL");
  if (!ws) return spr_error(SPR_EINVAL, "digital: attend: workspace is NULL");
  int rc = check_shape("attend", n, d, ws);
  if (rc) return rc;
  if ((rc = check_scale("q_scale", q_scale)) || (rc = check_scale("k_scale", k_scale)) ||
      (rc = check_scale("v_scale", v_scale)))
    return rc;
  /* s_ij = alpha * (q_i . k_j), the dot product exact in integers */
  const float alpha = (float)((double)q_scale * (double)k_scale / sqrt((double)d));
  for (size_t t = 0; t < (size_t)n * d; t++) ws->vf[t] = (float)v[t];
  const size_t rb = spr_mask_row_bytes(n);
  int64_t surv = 0, empty = 0;
  for (int i = 0; i < n; i++) {
    float *oi = O + (size_t)i * d;
    const int m = row_survivors(mask + (size_t)i * rb, n, ws->idx);
    surv += m;
    if (m == 0) {
      for (int u = 0; u < d; u++) oi[u] = 0.0f;
      empty++;
      continue;
    }
    const int8_t *qi = q + (size_t)i * d;
    for (int t = 0; t < m; t++) {
      const int8_t *kj = k + (size_t)ws->idx[t] * d;
      /* |q_u k_u| <= 128^2: d <= 2^17 products fit 32 bits exactly */
      int64_t dot = 0;
      if (d <= 131072) {
        int32_t d32 = 0;
#pragma omp simd reduction(+ : d32)
        for (int u = 0; u < d; u++) d32 += (int32_t)qi[u] * (int32_t)kj[u];
        dot = d32;
      } else {
        for (int u = 0; u < d; u++) dot += (int32_t)qi[u] * (int32_t)kj[u];
      }
      ws->sv[t] = (int32_t)dot;
    }
    attend_row(ws->idx, ws->sv, m, alpha, ws->vf, d, v_scale, oi, NULL, ws);
  }
  if (st) {
    st->survivors = surv;
    st->empty_queries = empty;
  }
  return 0;
}

/* ---- dense exact attention ---------------------------------------------- */

SPR_HOT int spr_dig_dense_rows(const float *Q, const float *K, const float *V, int n, int d, int causal,
                       int i0, int m, float *P, float *O) {
  if (!Q) return spr_error(SPR_EINVAL, "digital: dense: Q is NULL");
  if (!K) return spr_error(SPR_EINVAL, "digital: dense: K is NULL");
  if (!V) return spr_error(SPR_EINVAL, "digital: dense: V is NULL");
  if (!P) return spr_error(SPR_EINVAL, "digital: dense: P is NULL");
  if (!O) return spr_error(SPR_EINVAL, "digital: dense: O is NULL");
  int rc = check_shape("dense", n, d, NULL);
  if (rc) return rc;
  if (i0 < 0 || m < 1 || i0 + m > n)
    return spr_error(SPR_EINVAL, "digital: dense: rows %d .. %d of %d", i0, i0 + m - 1, n);
  /* causal: the block's rows see keys 0 .. i0 + m - 1 at most */
  const int nc = causal ? i0 + m : n;
  /* the GEMM views are read-only for Q, K, V; P rows are nc wide during
   * the GEMM (row stride n) */
  spr_matf mq = spr_matf_view((float *)Q + (size_t)i0 * d, m, d), mk = spr_matf_view((float *)K, nc, d);
  spr_matf mp = {P, m, nc, n};
  if ((rc = spr_matf_gemm((float)(1.0 / sqrt((double)d)), mq, 0, mk, 1, 0.0f, mp))) return rc;
  for (int r = 0; r < m; r++) {
    const int i = i0 + r;
    float *row = P + (size_t)r * n;
    const int nk = causal ? i + 1 : n;
    float mx = -INFINITY;
    int bad = 0;
#pragma omp simd reduction(max : mx) reduction(| : bad)
    for (int j = 0; j < nk; j++) {
      bad |= (row[j] - row[j]) != 0.0f; /* inf or NaN */
      mx = row[j] > mx ? row[j] : mx;
    }
    if (bad)
      for (int j = 0; j < nk; j++)
        if (!isfinite(row[j]))
          return spr_error(SPR_EINVAL, "digital: dense: score of query %d, key %d is %g (not finite)",
                           i, j, (double)row[j]);
    const float z = spr_vexpf_sub_sum_nonpos(row, mx, row, (size_t)nk);
    const float iz = 1.0f / z;
#pragma omp simd
    for (int j = 0; j < nk; j++) row[j] *= iz;
    if (nk < n) memset(row + nk, 0, (size_t)(n - nk) * sizeof *row);
  }
  return spr_matf_gemm(1.0f, mp, 0, spr_matf_view((float *)V, nc, d), 0, 0.0f,
                       spr_matf_view(O, m, d));
}

int spr_dig_dense(const float *Q, const float *K, const float *V, int n, int d,
                  float *P, float *O) {
  return spr_dig_dense_rows(Q, K, V, n, d, 0, 0, n, P, O);
}

int spr_dig_dense_causal(const float *Q, const float *K, const float *V, int n, int d,
                         float *P, float *O) {
  return spr_dig_dense_rows(Q, K, V, n, d, 1, 0, n, P, O);
}

/* ---- accuracy metrics ---------------------------------------------------- */

/* Ranking of keys by dense probability: a before b when p[a] > p[b], or
 * p[a] == p[b] and a < b. */
static inline int ranks_before(const float *p, int a, int b) {
  return p[a] > p[b] || (p[a] == p[b] && a < b);
}

/* Min-heap on the ranking: the root is the last-ranked of the kept keys. */
static void heap_sift_down(int *h, int k, int r, const float *p) {
  for (;;) {
    int c = 2 * r + 1;
    if (c >= k) return;
    if (c + 1 < k && ranks_before(p, h[c], h[c + 1])) c++;
    if (!ranks_before(p, h[r], h[c])) return;
    int t = h[r];
    h[r] = h[c];
    h[c] = t;
    r = c;
  }
}

static void heap_sift_up(int *h, int r, const float *p) {
  while (r > 0) {
    int par = (r - 1) / 2;
    if (!ranks_before(p, h[par], h[r])) return;
    int t = h[r];
    h[r] = h[par];
    h[par] = t;
    r = par;
  }
}

/* The maxima of the 4-key blocks of p[0 .. m) into bm[0 .. ceil(m / 4)):
 * 16 keys per vector, two shuffle-and-max steps. */
static inline void block4_max(const float *p, int m, float *bm) {
  int j = 0;
#if defined(__GNUC__) && !defined(__clang__) /* GCC vector extensions; clang 14 refuses some */
  typedef int32_t v16i_ __attribute__((vector_size(64)));
  static const v16i_ s2 = {2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13},
                     s1 = {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14};
#define VMAX(a, b) ((v16f)(((v16i_)(a) & (v16i_)((a) > (b))) | ((v16i_)(b) & ~(v16i_)((a) > (b)))))
  for (; j + 16 <= m; j += 16) {
    v16f v = ld16(p + j), w = __builtin_shuffle(v, s2);
    v = VMAX(v, w);
    w = __builtin_shuffle(v, s1);
    v = VMAX(v, w);
    bm[j / 4] = v[0];
    bm[j / 4 + 1] = v[4];
    bm[j / 4 + 2] = v[8];
    bm[j / 4 + 3] = v[12];
  }
#undef VMAX
#endif
  for (; j < m; j += 4) {
    float x = p[j];
    for (int u = j + 1; u < j + 4 && u < m; u++) x = p[u] > x ? p[u] : x;
    bm[j / 4] = x;
  }
}

/* The ki top keys of row pr (nk keys) into out, best first, in the
 * ranking (p descending, ties to the lower key).  Small ki: the maxima of
 * the 4-key blocks (vectorised); tau = the ki-th largest of them bounds
 * the ki-th largest key from below (those ki block maxima are ki distinct
 * keys >= tau), so the top keys are among the keys >= tau of the blocks
 * whose maximum reaches tau; those few candidates are sorted by the
 * ranking.  Otherwise (or with more than 64 candidates, many ties) a heap
 * of the ki best so far. */
/* The best min(ki, nc) of the candidate keys cand[0 .. nc) (in key order)
 * into out, by selection (ranking: p descending, the lower key first; the
 * candidates left stay in key order); returns their number. */
static int rank_pick(const float *pr, int *cand, int nc, int ki, int *out) {
  int t = 0;
  for (; t < ki && t < nc; t++) {
    int best = t;
    for (int a = t + 1; a < nc; a++)
      if (pr[cand[a]] > pr[cand[best]]) best = a;
    const int j = cand[best];
    for (int a = best; a > t; a--) cand[a] = cand[a - 1]; /* keeps key order */
    cand[t] = j;
    out[t] = j;
  }
  return t;
}

#if SPR_AVX512_KERNELS
/* The ki <= 16 top keys (nk >= 16): lb = the ki-th largest of the 16 lane
 * maxima (the maxima of the keys j = u mod 16) bounds the ki-th largest
 * key from below (ki distinct keys reach it), so only keys >= lb can rank
 * among the top ki.  One pass compresses those keys, in key order, into
 * cand (nk + 16 ints: whole-vector stores); the best ki of them are then
 * picked by the ranking (p descending; the candidates stay in key order,
 * so a tie goes to the lower key). */
__attribute__((target("avx512f"))) static void rank_top_512(const float *pr, int nk, int ki,
                                                            int *cand, int *out) {
  __m512 mv = _mm512_loadu_ps(pr);
  int j = 16;
  for (; j + 16 <= nk; j += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(pr + j));
  float lm[16];
  _mm512_storeu_ps(lm, mv);
  for (; j < nk; j++) lm[j & 15] = pr[j] > lm[j & 15] ? pr[j] : lm[j & 15];
  /* the ki-th largest of the 16: the one with fewer than ki above it and
   * at least ki at or above it (16 independent counts, no chain of
   * dependent compares) */
  mv = _mm512_loadu_ps(lm);
  float lb = lm[0];
  for (int u = 0; u < 16; u++) {
    const __m512 x = _mm512_set1_ps(lm[u]);
    const int gt = __builtin_popcount(_mm512_cmp_ps_mask(mv, x, _CMP_GT_OQ));
    const int ge = __builtin_popcount(_mm512_cmp_ps_mask(mv, x, _CMP_GE_OQ));
    lb = gt < ki && ge >= ki ? lm[u] : lb;
  }
  const __m512 tv = _mm512_set1_ps(lb);
  const __m512i sixteen = _mm512_set1_epi32(16);
  __m512i base = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int nc = 0;
  for (j = 0; j < nk; j += 16) {
    const __mmask16 t = nk - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nk - j)) - 1u);
    const __mmask16 k = _mm512_mask_cmp_ps_mask(t, _mm512_maskz_loadu_ps(t, pr + j), tv, _CMP_GE_OQ);
    _mm512_storeu_si512(cand + nc, _mm512_maskz_compress_epi32(k, base));
    nc += __builtin_popcount(k);
    base = _mm512_add_epi32(base, sixteen);
  }
  rank_pick(pr, cand, nc, ki, out); /* nc >= ki: the ki lane maxima pass */
}
#endif

SPR_HOT static void rank_row(const float *pr, int nk, int ki, int *h, int *out) {
  enum { BLK = 4, MAXC = 64 };
#if SPR_AVX512_KERNELS
  if (ki <= 16 && nk >= 16 && spr_cpu_avx512()) {
    rank_top_512(pr, nk, ki, h, out);
    return;
  }
#endif
  const int nb = (nk + BLK - 1) / BLK;
  if (ki <= 16 && nb >= ki && nb <= 4096) {
    float bm[4096], top[16];
    block4_max(pr, nk, bm);
    /* tau: the ki-th largest block maximum (insertion into a sorted list) */
    int nt = 0;
    for (int b = 0; b < nb; b++) {
      const float v = bm[b];
      if (nt == ki && v <= top[ki - 1]) continue;
      int t = nt < ki ? nt++ : ki - 1;
      while (t > 0 && top[t - 1] < v) {
        top[t] = top[t - 1];
        t--;
      }
      top[t] = v;
    }
    const float tau = top[ki - 1];
    /* the keys above tau (sorted by the ranking), then keys equal to tau
     * in key order until ki */
    int cand[MAXC], nc = 0, over = 0;
    for (int b = 0; b < nb && !over; b++) {
      if (bm[b] <= tau) continue;
      const int j0 = BLK * b, j1 = j0 + BLK < nk ? j0 + BLK : nk;
      for (int j = j0; j < j1; j++)
        if (pr[j] > tau) {
          if (nc == MAXC) {
            over = 1;
            break;
          }
          cand[nc++] = j;
        }
    }
    if (!over) {
      int t = rank_pick(pr, cand, nc, ki, out);
      for (int b = 0; b < nb && t < ki; b++) {
        if (bm[b] < tau) continue;
        const int j0 = BLK * b, j1 = j0 + BLK < nk ? j0 + BLK : nk;
        for (int j = j0; j < j1 && t < ki; j++)
          if (pr[j] == tau) out[t++] = j;
      }
      return;
    }
  }
  int sz = 0, j = 0;
  for (; j < nk && sz < ki; j++) {
    h[sz] = j;
    heap_sift_up(h, sz++, pr);
  }
  float thr = pr[h[0]];
  for (; j < nk; j++)
    if (pr[j] > thr) { /* keys come in ascending order: ties never enter */
      h[0] = j;
      heap_sift_down(h, ki, 0, pr);
      thr = pr[h[0]];
    }
  /* pop the heap: the root is the last-ranked */
  for (int t = ki - 1; t >= 0; t--) {
    out[t] = h[0];
    h[0] = h[t];
    heap_sift_down(h, t, 0, pr);
  }
}

int spr_dig_rank_rows(const float *P, int i0, int m, int n, int k, int causal, int *top,
                      spr_dig_ws *ws) {
  if (!P || !top || !ws) return spr_error(SPR_EINVAL, "digital: rank: NULL argument");
  if (k < 1 || k > n)
    return spr_error(SPR_EINVAL, "digital: metrics: top_k=%d outside 1..n=%d", k, n);
  if (n > ws->n) return spr_error(SPR_EINVAL, "digital: rank: n=%d exceeds workspace %d", n, ws->n);
  for (int r = 0; r < m; r++) {
    const int i = i0 + r, nk = causal ? i + 1 : n, ki = k < nk ? k : nk;
    int *o = top + (size_t)r * k;
    rank_row(P + (size_t)r * n, nk, ki, ws->heap, o);
    for (int t = ki; t < k; t++) o[t] = -1;
  }
  return 0;
}

/* ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) */
static inline double lanes8_sum(const double *l) {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* sum over the keys j < nk the row keeps of p[j], in double: 64 partial
 * sums, lane u taking the keys u mod 64 in increasing order, then added
 * pairwise (lanes64_sum).  The AVX-512 kernel adds the masked-out keys as
 * 0 (which changes no sum), so both kernels give the same double on
 * every machine. */
static double lanes64_sum(double *l) {
  for (int w = 32; w >= 1; w >>= 1)
    for (int u = 0; u < w; u++) l[u] = l[u] + l[u + w];
  return l[0];
}

static double mask_sum_any(const float *p, const uint8_t *row, int nk) {
  const size_t nw = ((size_t)nk + 63) / 64;
  double l[64] = {0};
  for (size_t w = 0; w < nw; w++) {
    const float *pw = p + 64 * w;
    for (uint64_t x = row_word(row, nk, w); x; x &= x - 1) {
      const int j = __builtin_ctzll(x);
      l[j] += pw[j];
    }
  }
  return lanes64_sum(l);
}

#if SPR_AVX512_KERNELS
__attribute__((target("avx512f"))) static double mask_sum_512(const float *p, const uint8_t *row,
                                                              int nk) {
  const size_t nw = ((size_t)nk + 63) / 64;
  /* aT lane u: the keys 8 T + u mod 64 */
  __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
#define MS_ADD(q, lo, hi)                                                                         \
  do {                                                                                            \
    const __mmask16 k = (__mmask16)(x >> (16 * (q)));                                             \
    { /* masked-out keys are neither read nor added (0) */                                        \
      const __m512 v = _mm512_maskz_loadu_ps(k, pw + 16 * (q));                                   \
      lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));                         \
      hi = _mm512_add_pd(                                                                         \
          hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))); \
    }                                                                                             \
  } while (0)
  for (size_t w = 0; w < nw; w++) {
    const uint64_t x = row_word(row, nk, w);
    const float *pw = p + 64 * w;
    if (!x) continue;
    MS_ADD(0, a0, a1);
    MS_ADD(1, a2, a3);
    MS_ADD(2, a4, a5);
    MS_ADD(3, a6, a7);
  }
#undef MS_ADD
  /* lanes64_sum's pairs, eight at a time, down to eight lanes */
  a0 = _mm512_add_pd(a0, a4);
  a1 = _mm512_add_pd(a1, a5);
  a2 = _mm512_add_pd(a2, a6);
  a3 = _mm512_add_pd(a3, a7);
  a0 = _mm512_add_pd(a0, a2);
  a1 = _mm512_add_pd(a1, a3);
  a0 = _mm512_add_pd(a0, a1);
  double l[8];
  _mm512_storeu_pd(l, a0);
  for (int w = 4; w >= 1; w >>= 1)
    for (int u = 0; u < w; u++) l[u] = l[u] + l[u + w];
  return l[0];
}
#endif

double spr_dig_mask_sum(const float *p, const uint8_t *row, int nk) {
#if SPR_AVX512_KERNELS
  if (spr_cpu_avx512()) return mask_sum_512(p, row, nk);
#endif
  return mask_sum_any(p, row, nk);
}

void spr_dig_metric_acc_init(spr_dig_metric_acc *a) {
  memset(a, 0, sizeof *a);
  a->cos_min = INFINITY;
}

SPR_HOT int spr_dig_metrics_rows(const spr_dig_metric_params *p, const float *O, const float *O_dense,
                         const float *P_dense, const int *top, const uint8_t *mask, int i0,
                         int m, int n, int d, spr_dig_metric_acc *a) {
  if (!p || !O || !O_dense || !P_dense || !top || !mask || !a)
    return spr_error(SPR_EINVAL, "digital: metrics: NULL argument");
  const int k = p->top_k;
  if (k < 1 || k > n)
    return spr_error(SPR_EINVAL, "digital: metrics: top_k=%d outside 1..n=%d", k, n);
  const size_t rb = spr_mask_row_bytes(n);
  for (int r = 0; r < m; r++) {
    const int i = i0 + r;
    const float *o = O + (size_t)r * d, *od = O_dense + (size_t)r * d;
    /* eight lanes per sum (lane l takes elements l mod 8), added as a
     * tree: independent chains, the same order on every machine */
    double ln[8] = {0}, ld[8] = {0}, lo[8] = {0}, lq[8] = {0};
    int u = 0;
    for (; u + 8 <= d; u += 8)
#pragma omp simd
      for (int l = 0; l < 8; l++) {
        const double x = o[u + l], y = od[u + l];
        ln[l] += (x - y) * (x - y);
        ld[l] += x * y;
        lo[l] += x * x;
        lq[l] += y * y;
      }
    for (int l = 0; u < d; u++, l++) {
      const double x = o[u], y = od[u];
      ln[l] += (x - y) * (x - y);
      ld[l] += x * y;
      lo[l] += x * x;
      lq[l] += y * y;
    }
    const double num = lanes8_sum(ln), dot = lanes8_sum(ld), no = lanes8_sum(lo),
                 nd = lanes8_sum(lq);
    a->num += num;
    a->den += nd;
    double c;
    if (no == 0 && nd == 0) c = 1.0;
    else if (no == 0 || nd == 0) c = 0.0;
    else c = dot / sqrt(no * nd);
    a->cos_sum += c;
    if (c < a->cos_min) {
      a->cos_min = c;
      a->cos_arg = i;
    }
    const float *pr = P_dense + (size_t)r * n;
    const uint8_t *row = mask + (size_t)r * rb;
    /* causal: keys 0 .. i only, and at most i + 1 of them in the top k */
    const int nk = p->causal ? i + 1 : n, ki = k < nk ? k : nk;
    a->mass += spr_dig_mask_sum(pr, row, nk);
    const int *tr = top + (size_t)r * k;
    a->top1 += mask_bit(row, tr[0]);
    int hit = 0;
    for (int t = 0; t < ki; t++) hit += mask_bit(row, tr[t]);
    a->topk += (double)hit / ki;
    a->rows++;
  }
  return 0;
}

void spr_dig_metrics_end(const spr_dig_metric_acc *a, int n, int top_k, spr_dig_accuracy *out) {
  out->rel_fro = a->den > 0 ? sqrt(a->num / a->den) : (a->num > 0 ? INFINITY : 0.0);
  out->cos_mean = a->cos_sum / n;
  out->cos_min = a->cos_min;
  out->cos_min_query = a->cos_arg;
  out->mass_retained = a->mass / n;
  out->top1_recall = a->top1 / n;
  out->topk_recall = a->topk / n;
  out->top_k = top_k;
}

int spr_dig_metrics(const spr_dig_metric_params *p, const float *O,
                    const float *O_dense, const float *P_dense,
                    const uint8_t *mask, int n, int d, spr_dig_accuracy *out,
                    spr_dig_ws *ws) {
  if (!p) return spr_error(SPR_EINVAL, "digital: metrics: params is NULL");
  if (!O) return spr_error(SPR_EINVAL, "digital: metrics: O is NULL");
  if (!O_dense) return spr_error(SPR_EINVAL, "digital: metrics: O_dense is NULL");
  if (!P_dense) return spr_error(SPR_EINVAL, "digital: metrics: P_dense is NULL");
  if (!mask) return spr_error(SPR_EINVAL, "digital: metrics: mask is NULL");
  if (!out) return spr_error(SPR_EINVAL, "digital: metrics: output is NULL");
  if (!ws) return spr_error(SPR_EINVAL, "digital: metrics: workspace is NULL");
  int rc = check_shape("metrics", n, d, ws);
  if (rc) return rc;
  const int k = p->top_k;
  if (k < 1 || k > n)
    return spr_error(SPR_EINVAL, "digital: metrics: top_k=%d outside 1..n=%d", k, n);
  /* row by row: the ranks of one row in ws->idx (k <= n entries) */
  const size_t rb = spr_mask_row_bytes(n);
  spr_dig_metric_acc a;
  spr_dig_metric_acc_init(&a);
  for (int i = 0; i < n; i++) {
    const float *pr = P_dense + (size_t)i * n;
    if ((rc = spr_dig_rank_rows(pr, i, 1, n, k, p->causal, ws->idx, ws)) ||
        (rc = spr_dig_metrics_rows(p, O + (size_t)i * d, O_dense + (size_t)i * d, pr, ws->idx,
                                   mask + (size_t)i * rb, i, 1, n, d, &a)))
      return rc;
  }
  spr_dig_metrics_end(&a, n, k, out);
  return 0;
}
