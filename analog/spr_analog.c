/* spr_analog.c - DACs, read noise, threshold generator and comparators
 * (equations in spr_analog.h and docs/model.md). */
#include "config.h"
#include "spr_analog.h"
#include "spr_clones.h"
#include "spr_error.h"
#include "spr_mat.h"
#include "spr_result.h"
#include "spr_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The hot loops: SPR_HOT (spr_clones.h).  near_vars also has an AVX2
 * kernel, picked at run time. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__GLIBC__) && !defined(SPR_NO_CLONES)
#define SPR_X86_AVX2 1
#else
#define SPR_X86_AVX2 0
#endif

void spr_analog_scale_of(const spr_analog_params *an, double dg_S,
                         spr_analog_scale *s) {
  s->v_step_V = an->v_read_V / (double)((1 << (an->query_bits - 1)) - 1);
  s->i_unit_A = s->v_step_V * dg_S;
}

int spr_dac_gains(const spr_analog_params *an, int col_tiles, int d,
                  gsl_rng *r, double *gains) {
  size_t n = (size_t)col_tiles * (size_t)d;
  for (size_t i = 0; i < n; i++) {
    double g = 1.0;
    if (an->dac_error) g += an->dac_gain_sigma * spr_rng_normal(r);
    if (!(g > 0))
      return spr_error(SPR_EINVAL, "analog: DAC %zu sampled gain %g <= 0 (dac_gain_sigma %g too large)",
                       i, g, an->dac_gain_sigma);
    gains[i] = g;
  }
  return 0;
}

void spr_cmp_offsets(const spr_analog_params *an, const spr_analog_scale *s,
                     int n, gsl_rng *r, float *off) {
  const double sig = an->cmp_offset ? an->cmp_offset_sigma_A / s->i_unit_A : 0.0;
  for (int j = 0; j < n; j++)
    off[j] = sig > 0 ? (float)(sig * spr_rng_normal(r)) : 0.0f;
}

double spr_thr_level(int code, double range, int bits) {
  return (double)code * range / (double)(1 << (bits - 1));
}

int spr_thr_code(double theta, double range, int bits) {
  const int half = 1 << (bits - 1);
  double c = range > 0 ? nearbyint(theta * (double)half / range) : 0;
  if (c < -half) c = -half;
  if (c > half - 1) c = half - 1;
  return (int)c;
}

/* One score into hist[h]: h - half - 1 is the highest code it passes
 * (h = 0: none). */
static inline void hist_add(double v, double range, double step, int bits, int half,
                            int64_t *hist) {
  /* clamp in floating point first: v / step may exceed the range of long */
  double cf = step > 0 ? floor(v / step) : (v >= 0 ? half - 1 : -half - 1);
  if (!(cf <= half - 1)) cf = half - 1;
  if (!(cf >= -half - 1)) cf = -half - 1;
  long c = (long)cf;
  /* settle rounding at the grid points with the exact level function */
  while (c < half - 1 && v >= spr_thr_level((int)c + 1, range, bits)) c++;
  while (c >= -half && v < spr_thr_level((int)c, range, bits)) c--;
  hist[c + half + 1]++;
}

/* counts[i] += scores passing code i - half: suffix sums of hist. */
static void hist_to_counts(const int64_t *hist, int ncode, int64_t *counts) {
  int64_t acc = 0;
  for (int i = ncode - 1; i >= 0; i--) {
    acc += hist[i + 1];
    counts[i] += acc;
  }
}

int spr_thr_count(const int32_t *s, size_t n, double range, int bits,
                   int64_t *counts) {
  const int half = 1 << (bits - 1), ncode = 1 << bits;
  int64_t *hist = calloc((size_t)ncode + 1, sizeof *hist);
  if (!hist) return spr_error(SPR_ENOMEM, "threshold: out of memory");
  const double step = range / (double)half;
  for (size_t k = 0; k < n; k++) hist_add((double)s[k], range, step, bits, half, hist);
  hist_to_counts(hist, ncode, counts);
  free(hist);
  return 0;
}

int spr_thr_count_causal(const int32_t *s, int n, double range, int bits,
                         int64_t *counts) {
  const int half = 1 << (bits - 1), ncode = 1 << bits;
  int64_t *hist = calloc((size_t)ncode + 1, sizeof *hist);
  if (!hist) return spr_error(SPR_ENOMEM, "threshold: out of memory");
  const double step = range / (double)half;
  for (int i = 0; i < n; i++) {
    const int32_t *si = s + (size_t)i * n;
    for (int j = 0; j <= i; j++) hist_add((double)si[j], range, step, bits, half, hist);
  }
  hist_to_counts(hist, ncode, counts);
  free(hist);
  return 0;
}

int spr_thr_count_scores(const float *s, int m, int n, int causal, int q0, double range, int bits,
                         int64_t *counts) {
  const int half = 1 << (bits - 1), ncode = 1 << bits;
  int64_t *hist = calloc((size_t)ncode + 1, sizeof *hist);
  if (!hist) return spr_error(SPR_ENOMEM, "threshold: out of memory");
  const double step = range / (double)half;
  for (int i = 0; i < m; i++) {
    const float *si = s + (size_t)i * n;
    const int nk = causal ? q0 + i + 1 : n;
    for (int j = 0; j < nk; j++) hist_add((double)si[j], range, step, bits, half, hist);
  }
  hist_to_counts(hist, ncode, counts);
  free(hist);
  return 0;
}

int spr_thr_pick(const int64_t *counts, int64_t total, int bits,
                 double keep_rate) {
  const int half = 1 << (bits - 1), ncode = 1 << bits;
  int best = 0;
  double best_err = INFINITY;
  for (int i = 0; i < ncode; i++) {
    double rate = total > 0 ? (double)counts[i] / (double)total : 0;
    double err = fabs(rate - keep_rate);
    if (err < best_err) {
      best_err = err;
      best = i;
    }
  }
  return best - half;
}

/* The column-current GEMM in blocks of mb rows: 128 while a block's mu
 * (mb x n floats) fits 512 KB, else 64.  OpenBLAS packs all of w for every
 * block: 128 rows took the analog stage from 2.91 to 2.71 GEMM-eq at
 * n = 512 (docs/performance.md), the same currents. */
int spr_analog_block_rows(int n) { return n <= 1024 ? 128 : 64; }

int spr_analog_ws_alloc(spr_analog_ws *ws, int m, int n, int d) {
  memset(ws, 0, sizeof *ws);
  if (m < 1 || n < 1 || d < 1)
    return spr_error(SPR_EINVAL, "analog: bad workspace shape m=%d n=%d d=%d", m, n, d);
  ws->m = m;
  ws->n = n;
  ws->d = d;
  const int mb = spr_analog_block_rows(n);
  ws->mb = m < mb ? m : mb;
  ws->qf = malloc((size_t)m * d * sizeof *ws->qf);
  ws->a2 = malloc((size_t)2 * d * sizeof *ws->a2);
  ws->mu = malloc((size_t)ws->mb * n * sizeof *ws->mu);
  ws->z = malloc((size_t)n * sizeof *ws->z);
  ws->var = malloc((size_t)n * sizeof *ws->var);
  ws->c = malloc((size_t)n * sizeof *ws->c);
  ws->kc = malloc((size_t)n * sizeof *ws->kc);
  ws->o = malloc((size_t)n * sizeof *ws->o);
  ws->cls = malloc((size_t)n + 64);
  ws->idx = malloc((size_t)n * sizeof *ws->idx);
  if (!ws->qf || !ws->a2 || !ws->mu || !ws->z || !ws->var || !ws->c || !ws->kc || !ws->o || !ws->cls ||
      !ws->idx) {
    spr_analog_ws_free(ws);
    return spr_error(SPR_ENOMEM, "analog: out of memory for workspace %d x %d", m, n);
  }
  return 0;
}

void spr_analog_ws_free(spr_analog_ws *ws) {
  if (!ws) return;
  free(ws->qf);
  free(ws->a2);
  free(ws->mu);
  free(ws->z);
  free(ws->var);
  free(ws->c);
  free(ws->kc);
  free(ws->o);
  free(ws->cls);
  free(ws->idx);
  memset(ws, 0, sizeof *ws);
}

double spr_analog_thermal_var(const spr_analog_params *an,
                              const spr_analog_scale *sc, double dg_S,
                              double gsum) {
  return an->thermal_excess * 4.0 * SPR_BOLTZMANN_J_PER_K * an->temperature_K * an->bandwidth_Hz *
         gsum * dg_S / (sc->i_unit_A * sc->i_unit_A);
}

double spr_analog_shot_coef(const spr_analog_params *an,
                            const spr_analog_scale *sc) {
  return 2.0 * SPR_ELEMENTARY_CHARGE_C * an->bandwidth_Hz / sc->i_unit_A;
}

/* The read-noise variance of a near decision is a dot product of length
 * 2d in a fixed order: 8 partial sums, lane l accumulating the terms
 * k = l mod 8 in increasing k, then ((s0 + s1) + (s2 + s3)) + ((s4 + s5) +
 * (s6 + s7)).  The value therefore does not depend on the vector width or
 * on how many products are computed together.  With GCC or clang the 8
 * lanes are one vector (so the sums stay in registers); otherwise plain
 * arrays, with the same arithmetic. */
#if defined(__GNUC__)
/* two 4-lane vectors: lanes 0-3 and 4-7 */
typedef float v4f __attribute__((vector_size(16)));
static inline v4f ld4(const float *p) {
  v4f v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline float sum8(v4f lo, v4f hi) {
  return ((lo[0] + lo[1]) + (lo[2] + lo[3])) + ((hi[0] + hi[1]) + (hi[2] + hi[3]));
}

/* c + sum_k a[k] g[k] over len terms, in the order above. */
static inline float dot_fixed(const float *a, const float *g, int len, float c) {
  v4f lo = {0, 0, 0, 0}, hi = {0, 0, 0, 0};
  int k = 0;
  for (; k + 8 <= len; k += 8) {
    lo += ld4(a + k) * ld4(g + k);
    hi += ld4(a + k + 4) * ld4(g + k + 4);
  }
  for (int l = 0; k < len; k++, l++) {
    if (l < 4) lo[l] += a[k] * g[k];
    else hi[l - 4] += a[k] * g[k];
  }
  return c + sum8(lo, hi);
}

/* out[t] = c[idx[t]] + dot_fixed(a, gt + idx[t] len), for t < cnt, four
 * rows of gt at a time (independent sums sharing the loads of a). */
static void near_vars_base(const float *a, const float *gt, int len, const int *idx, int cnt,
                           const float *c, float *out) {
  int t = 0;
  for (; t + 4 <= cnt && len % 8 == 0; t += 4) {
    const float *g0 = gt + (size_t)idx[t] * len, *g1 = gt + (size_t)idx[t + 1] * len,
                *g2 = gt + (size_t)idx[t + 2] * len, *g3 = gt + (size_t)idx[t + 3] * len;
    v4f l0 = {0, 0, 0, 0}, h0 = l0, l1 = l0, h1 = l0, l2 = l0, h2 = l0, l3 = l0, h3 = l0;
    for (int k = 0; k < len; k += 8) {
      const v4f xl = ld4(a + k), xh = ld4(a + k + 4);
      l0 += xl * ld4(g0 + k);
      h0 += xh * ld4(g0 + k + 4);
      l1 += xl * ld4(g1 + k);
      h1 += xh * ld4(g1 + k + 4);
      l2 += xl * ld4(g2 + k);
      h2 += xh * ld4(g2 + k + 4);
      l3 += xl * ld4(g3 + k);
      h3 += xh * ld4(g3 + k + 4);
    }
    out[t] = c[idx[t]] + sum8(l0, h0);
    out[t + 1] = c[idx[t + 1]] + sum8(l1, h1);
    out[t + 2] = c[idx[t + 2]] + sum8(l2, h2);
    out[t + 3] = c[idx[t + 3]] + sum8(l3, h3);
  }
  for (; t < cnt; t++) out[t] = dot_fixed(a, gt + (size_t)idx[t] * len, len, c[idx[t]]);
}

#if SPR_X86_AVX2
/* The same with 8-lane AVX vectors: lane l of s is lane l of (lo, hi)
 * above, so the values are identical. */
typedef float v8f __attribute__((vector_size(32)));
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2")))
AVX2_INLINE v8f ld8(const float *p) {
  v8f v;
  memcpy(&v, p, sizeof v);
  return v;
}

AVX2_INLINE float sum8v(v8f s) {
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

__attribute__((target("avx2"))) static void near_vars_avx2(const float *a, const float *gt,
                                                            int len, const int *idx, int cnt,
                                                            const float *c, float *out) {
  int t = 0;
  for (; t + 4 <= cnt; t += 4) {
    const float *g0 = gt + (size_t)idx[t] * len, *g1 = gt + (size_t)idx[t + 1] * len,
                *g2 = gt + (size_t)idx[t + 2] * len, *g3 = gt + (size_t)idx[t + 3] * len;
    v8f s0 = {0, 0, 0, 0, 0, 0, 0, 0}, s1 = s0, s2 = s0, s3 = s0;
    for (int k = 0; k < len; k += 8) {
      const v8f x = ld8(a + k);
      s0 += x * ld8(g0 + k);
      s1 += x * ld8(g1 + k);
      s2 += x * ld8(g2 + k);
      s3 += x * ld8(g3 + k);
    }
    out[t] = c[idx[t]] + sum8v(s0);
    out[t + 1] = c[idx[t + 1]] + sum8v(s1);
    out[t + 2] = c[idx[t + 2]] + sum8v(s2);
    out[t + 3] = c[idx[t + 3]] + sum8v(s3);
  }
  for (; t < cnt; t++) {
    v8f s = {0, 0, 0, 0, 0, 0, 0, 0};
    const float *g = gt + (size_t)idx[t] * len;
    for (int k = 0; k < len; k += 8) s += ld8(a + k) * ld8(g + k);
    out[t] = c[idx[t]] + sum8v(s);
  }
}
#endif

static void near_vars(const float *a, const float *gt, int len, const int *idx, int cnt,
                      const float *c, float *out) {
#if SPR_X86_AVX2
  if (len % 8 == 0 && __builtin_cpu_supports("avx2")) {
    near_vars_avx2(a, gt, len, idx, cnt, c, out);
    return;
  }
#endif
  near_vars_base(a, gt, len, idx, cnt, c, out);
}
#else
static inline float dot_fixed(const float *a, const float *g, int len, float c) {
  float s[8] = {0};
  int k = 0;
  for (; k + 8 <= len; k += 8)
    for (int l = 0; l < 8; l++) s[l] += a[k + l] * g[k + l];
  for (int l = 0; k < len; k++, l++) s[l] += a[k] * g[k];
  return c + (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])));
}

static void near_vars(const float *a, const float *gt, int len, const int *idx, int cnt,
                      const float *c, float *out) {
  for (int t = 0; t < cnt; t++) out[t] = dot_fixed(a, gt + (size_t)idx[t] * len, len, c[idx[t]]);
}
#endif

/* set bits of a byte */
#define P2(k) k, k + 1, k + 1, k + 2
#define P4(k) P2(k), P2(k + 1), P2(k + 1), P2(k + 2)
#define P6(k) P4(k), P4(k + 1), P4(k + 1), P4(k + 2)
static const uint8_t popcount8[256] = {P6(0), P6(1), P6(1), P6(2)};
#undef P2
#undef P4
#undef P6

/* index of the lowest set bit of w != 0 */
static inline int ctz64(uint64_t w) {
#if defined(__GNUC__)
  return __builtin_ctzll(w);
#else
  int k = 0;
  while (!(w & 1)) {
    w >>= 1;
    k++;
  }
  return k;
#endif
}

/* For the decisions ws->idx[0..cnt) of one query row a (the [a_s |q|,
 * s_r^2 q^2] row of length len): cnt standard normals from r into ws->z
 * and the exact variances into ws->var (only the constant c_j when the
 * read noise is off). */
static void draw_noise(gsl_rng *r, const float *a, const float *gt, int len, int read_noise,
                       int cnt, spr_analog_ws *ws) {
  spr_rng_gaussian(r, ws->z, (size_t)cnt);
  if (read_noise)
    near_vars(a, gt, len, ws->idx, cnt, ws->c, ws->var);
  else
    for (int t = 0; t < cnt; t++) ws->var[t] = ws->c[ws->idx[t]];
}

static inline float clamp_t(float z) {
  const float t = (float)SPR_NOISE_TRUNC;
  return z < -t ? -t : (z > t ? t : z);
}

/* Pack 8 class bytes (values 0, 1, 2) into a keep byte and a near byte:
 * bit k from byte k. */
static inline void pack8(const uint8_t *cls, unsigned *keep, unsigned *near) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t x;
  memcpy(&x, cls, 8);
  /* byte k of x (0 or 1) lands on bit 56 + k of the product, carry-free */
  const uint64_t ones = UINT64_C(0x0101010101010101), mul = UINT64_C(0x0102040810204080);
  *keep = (unsigned)(((x & ones) * mul) >> 56);
  *near = (unsigned)((((x >> 1) & ones) * mul) >> 56);
#else
  unsigned k = 0, nr = 0;
  for (int t = 0; t < 8; t++) {
    k |= (unsigned)(cls[t] & 1) << t;
    nr |= (unsigned)(cls[t] >> 1) << t;
  }
  *keep = k;
  *near = nr;
#endif
}

/* The row inputs of m query codes into ws->qf (m x d): the codes, or with
 * nonlinear cells (cell_v0 > 0) V0 sinh(q v_step / V0) / v_step, the cell
 * current of a row at code q in units of G v_step (one table entry per
 * code; the DAC gain folded into w scales the result).  Returns 0 or
 * SPR_EINVAL (an overflowing sinh). */
static int query_inputs(const spr_analog_scale *sc, const spr_xbar_head *xb, const int8_t *q,
                        int m, spr_analog_ws *ws) {
  const int d = xb->d;
  if (xb->cell_v0_V > 0) {
    float tq[256];
    const double v0 = xb->cell_v0_V, vs = sc->v_step_V;
    for (int c = -128; c < 128; c++) {
      const double t = v0 * sinh((double)c * vs / v0) / vs;
      tq[c + 128] = (float)t;
    }
    for (size_t k = 0; k < (size_t)m * d; k++) {
      ws->qf[k] = tq[q[k] + 128];
      if (!isfinite(ws->qf[k]))
        return spr_error(SPR_EINVAL, "analog: query code %d with cell_v0 %g V and v_step %g V: "
                         "V0 sinh(V / V0) overflows", q[k], v0, vs);
    }
  } else {
#pragma omp simd
    for (size_t k = 0; k < (size_t)m * d; k++) ws->qf[k] = (float)q[k];
  }
  return 0;
}

/* spr_analog_decide (causal = 0) and spr_analog_decide_causal (causal =
 * 1, row r deciding keys 0 .. q0 + r): one body, so that both take the
 * same operations on the keys they decide.  Static and cloned, called
 * through the two public wrappers below (clang 14 emits no public symbol
 * for a non-static target_clones function: F10). */
SPR_HOT static int decide_impl(const spr_analog_params *an, const spr_analog_scale *sc,
                                  const spr_xbar_head *xb, const int8_t *q, int m, int causal,
                                  int q0, double theta, const float *off, gsl_rng *r_read,
                                  gsl_rng *r_far, spr_analog_ws *ws, uint8_t *mask,
                                  float *scores, int64_t *n_kept) {
  const int n = xb->n, d = xb->d;
  if (m > ws->m || n > ws->n || d > ws->d)
    return spr_error(SPR_EINVAL, "analog: %d x %d x %d exceeds workspace %d x %d x %d", m, n, d,
                     ws->m, ws->n, ws->d);
  if (causal && (q0 < 0 || q0 > n - m))
    return spr_error(SPR_EINVAL, "analog: causal queries %d .. %d outside the head's %d tokens",
                     q0, q0 + m - 1, n);
  const int noisy = an->read_noise || an->cmp_noise;
  if (noisy && (!r_read || (scores && !r_far)))
    return spr_error(SPR_EINVAL, "analog: noise is on but the %s stream is NULL",
                     !r_read ? "read" : "far-decision");
  const size_t rb = spr_mask_row_bytes(n), nw64 = (rb + 7) / 8;
  int rc0 = query_inputs(sc, xb, q, m, ws);
  if (rc0) return rc0;
  for (int j = 0; j < n; j++) ws->o[j] = off ? off[j] : 0.0f;
  /* causal: row i classifies keys j < nk_i only and nk_i grows with i, so
   * the classes of the keys a row does not decide stay 0 (far prune: no
   * keep, no noise) */
  for (size_t t = causal ? 0 : (size_t)n; t < 64 * nw64; t++) ws->cls[t] = 0;
  /* Far test, in float with margins (see spr_analog.h): a decision is far
   * when e = |b - theta| - EPS (|b| + |theta|) > 0 and e^2 >= K ub, where
   * K = T^2 (1 + 2^-10) covers the rounding of ub against the variance
   * actually used (<= 2^-16 relative) and EPS = 2^-20 the rounding of b,
   * theta and the score (a few 2^-24).  Then b + sqrt(var) z rounds to
   * the same side of theta for every |z| <= T. */
  const float T = (float)SPR_NOISE_TRUNC;
  const float K = T * T * (1.0f + 0x1.0p-10f), EPS = 0x1.0p-20f;
  const float thf = (float)theta, athf = fabsf(thf);
  const double cmp_var = an->cmp_noise ? pow(an->cmp_noise_sigma_A / sc->i_unit_A, 2) : 0.0;
  for (int j = 0; noisy && j < n; j++) {
    ws->c[j] = (float)(cmp_var + (an->read_noise ? spr_analog_thermal_var(an, sc, xb->dg_S, xb->gsum[j]) : 0.0));
    ws->kc[j] = K * ws->c[j];
  }
  const float as = an->read_noise ? (float)spr_analog_shot_coef(an, sc) : 0.0f;
  const float rs = an->read_noise ? (float)(an->read_rel_sigma * an->read_rel_sigma) : 0.0f;
  const int two_d = 2 * d, rn = an->read_noise;
  const float *o = ws->o, *kc = ws->kc, *G1 = xb->g1_sum, *G2 = xb->g2_sum;
  float *a2 = ws->a2;
  uint8_t *cls = ws->cls;
  int64_t kept = 0, n_near = 0;
  /* rows in blocks of ws->mb: the block's mu stays in cache from the GEMM
   * to the comparison */
  for (int i0 = 0; i0 < m; i0 += ws->mb) {
    const int mb = m - i0 < ws->mb ? m - i0 : ws->mb;
    /* mu = q w : the column currents in score units */
    int rc = spr_matf_gemm(1.0f, spr_matf_view(ws->qf + (size_t)i0 * d, mb, d), 0,
                           spr_matf_view(xb->w, d, n), 0, 0.0f, spr_matf_view(ws->mu, mb, n));
    if (rc) return rc;
    for (int i = i0; i < i0 + mb; i++) {
      const float *mu = ws->mu + (size_t)(i - i0) * n;
      float *b = scores ? scores + (size_t)i * n : ws->mu + (size_t)(i - i0) * n;
      uint8_t *mr = mask + (size_t)i * rb;
      /* keys decided by this row: all, or (causal) 0 .. q0 + i */
      const int nk = causal ? q0 + i + 1 : n;
      if (scores)
        for (int j = nk; j < n; j++) b[j] = NAN; /* never decided */
      if (!noisy) {
        memset(mr, 0, rb);
        for (int j = 0; j < nk; j++) {
          b[j] = mu[j] + o[j];
          const int keep = (double)b[j] >= theta;
          mr[j >> 3] |= (uint8_t)(keep << (j & 7));
          kept += keep;
        }
        continue;
      }
      const float *qi = ws->qf + (size_t)i * d;
      float qm = 0;
#pragma omp simd reduction(max : qm)
      for (int k = 0; k < d; k++) qm = fabsf(qi[k]) > qm ? fabsf(qi[k]) : qm;
#pragma omp simd
      for (int k = 0; k < d; k++) {
        const float v = qi[k];
        a2[k] = as * fabsf(v);
        a2[d + k] = rs * v * v;
      }
      const float kA = K * (as * qm), kB = K * (rs * qm * qm);
      /* classify: 0 far prune, 1 far keep, 2 near (bit operations, not
       * ?:, so that the loop vectorises) */
#pragma omp simd
      for (int j = 0; j < nk; j++) {
        const float bj = mu[j] + o[j];
        b[j] = bj;
        const float dm = bj - thf;
        const float e = fabsf(dm) - EPS * (fabsf(bj) + athf);
        const float kub = kc[j] + kA * G1[j] + kB * G2[j];
        const unsigned far = (e > 0.0f) & (e * e >= kub), keep = dm > 0.0f;
        cls[j] = (uint8_t)((far & keep) | (far ^ 1u) << 1);
      }
      /* mask of the far keeps; list of the near decisions, 64 at a time
       * (one predictable loop exit per word) */
      int nn = 0;
      const size_t nwr = causal ? ((size_t)nk + 63) / 64 : nw64;
      for (size_t w = 0; w < nwr; w++) {
        uint64_t nw = 0;
        for (size_t jb = 8 * w; jb < 8 * w + 8; jb++) {
          unsigned kb, nb;
          pack8(cls + 8 * jb, &kb, &nb);
          if (jb < rb) mr[jb] = (uint8_t)kb;
          kept += popcount8[kb];
          nw |= (uint64_t)nb << (8 * (jb - 8 * w));
        }
        for (; nw; nw &= nw - 1) ws->idx[nn++] = (int)(64 * w) + ctz64(nw);
      }
      for (size_t jb = 8 * nwr; jb < rb; jb++) mr[jb] = 0; /* causal: keys beyond */
      /* near decisions: exact variance, noise from r_read */
      if (nn) {
        draw_noise(r_read, a2, xb->gt, two_d, rn, nn, ws);
        for (int t = 0; t < nn; t++) {
          const int j = ws->idx[t];
          const float aij = b[j] + sqrtf(ws->var[t]) * clamp_t(ws->z[t]);
          const int keep = (double)aij >= theta;
          b[j] = aij;
          mr[j >> 3] |= (uint8_t)(keep << (j & 7));
          kept += keep;
        }
      }
      n_near += nn;
      /* far decisions' recorded scores, noise from r_far */
      if (scores) {
        int nf = 0;
        for (int j = 0; j < nk; j++)
          if (cls[j] != 2) ws->idx[nf++] = j;
        if (nf) {
          draw_noise(r_far, a2, xb->gt, two_d, rn, nf, ws);
          for (int t = 0; t < nf; t++) {
            const int j = ws->idx[t];
            b[j] = b[j] + sqrtf(ws->var[t]) * clamp_t(ws->z[t]);
          }
        }
      }
    }
  }
  ws->n_near = n_near;
  *n_kept = kept;
  return 0;
}

int spr_analog_decide(const spr_analog_params *an, const spr_analog_scale *sc,
                      const spr_xbar_head *xb, const int8_t *q, int m,
                      double theta, const float *off, gsl_rng *r_read,
                      gsl_rng *r_far, spr_analog_ws *ws, uint8_t *mask,
                      float *scores, int64_t *n_kept) {
  return decide_impl(an, sc, xb, q, m, 0, 0, theta, off, r_read, r_far, ws, mask, scores, n_kept);
}

int spr_analog_decide_causal(const spr_analog_params *an, const spr_analog_scale *sc,
                             const spr_xbar_head *xb, const int8_t *q, int m, int q0,
                             double theta, const float *off, gsl_rng *r_read,
                             gsl_rng *r_far, spr_analog_ws *ws, uint8_t *mask,
                             float *scores, int64_t *n_kept) {
  return decide_impl(an, sc, xb, q, m, 1, q0, theta, off, r_read, r_far, ws, mask, scores, n_kept);
}

int spr_analog_scores(const spr_analog_params *an, const spr_analog_scale *sc,
                      const spr_xbar_head *xb, const int8_t *q, int m, int causal, int q0,
                      const float *off, gsl_rng *r, spr_analog_ws *ws, float *scores) {
  const int n = xb->n, d = xb->d;
  if (m > ws->m || n > ws->n || d > ws->d)
    return spr_error(SPR_EINVAL, "analog: %d x %d x %d exceeds workspace %d x %d x %d", m, n, d,
                     ws->m, ws->n, ws->d);
  if (causal && (q0 < 0 || q0 > n - m))
    return spr_error(SPR_EINVAL, "analog: causal queries %d .. %d outside the head's %d tokens",
                     q0, q0 + m - 1, n);
  const int noisy = an->read_noise || an->cmp_noise;
  if (noisy && !r) return spr_error(SPR_EINVAL, "analog: noise is on but the score stream is NULL");
  if (!scores) return spr_error(SPR_EINVAL, "analog: spr_analog_scores needs a score matrix");
  int rc = query_inputs(sc, xb, q, m, ws);
  if (rc) return rc;
  for (int j = 0; j < n; j++) ws->o[j] = off ? off[j] : 0.0f;
  const double cmp_var = an->cmp_noise ? pow(an->cmp_noise_sigma_A / sc->i_unit_A, 2) : 0.0;
  for (int j = 0; noisy && j < n; j++)
    ws->c[j] = (float)(cmp_var + (an->read_noise ? spr_analog_thermal_var(an, sc, xb->dg_S, xb->gsum[j]) : 0.0));
  const float as = an->read_noise ? (float)spr_analog_shot_coef(an, sc) : 0.0f;
  const float rs = an->read_noise ? (float)(an->read_rel_sigma * an->read_rel_sigma) : 0.0f;
  for (int i0 = 0; i0 < m; i0 += ws->mb) {
    const int mb = m - i0 < ws->mb ? m - i0 : ws->mb;
    if ((rc = spr_matf_gemm(1.0f, spr_matf_view(ws->qf + (size_t)i0 * d, mb, d), 0,
                            spr_matf_view(xb->w, d, n), 0, 0.0f, spr_matf_view(ws->mu, mb, n))))
      return rc;
    for (int i = i0; i < i0 + mb; i++) {
      const float *mu = ws->mu + (size_t)(i - i0) * n;
      float *a = scores + (size_t)i * n;
      const int nk = causal ? q0 + i + 1 : n;
      for (int j = 0; j < nk; j++) a[j] = mu[j] + ws->o[j];
      for (int j = nk; j < n; j++) a[j] = NAN; /* never decided */
      if (!noisy) continue;
      const float *qi = ws->qf + (size_t)i * d;
      for (int k = 0; k < d; k++) {
        ws->a2[k] = as * fabsf(qi[k]);
        ws->a2[d + k] = rs * qi[k] * qi[k];
      }
      for (int j = 0; j < nk; j++) ws->idx[j] = j;
      draw_noise(r, ws->a2, xb->gt, 2 * d, an->read_noise, nk, ws);
      for (int j = 0; j < nk; j++) a[j] = a[j] + sqrtf(ws->var[j]) * clamp_t(ws->z[j]);
    }
  }
  return 0;
}

int spr_analog_mask_from_scores(const float *scores, int m, int n, int causal, int q0,
                                double theta, uint8_t *mask, int64_t *n_kept) {
  const size_t rb = spr_mask_row_bytes(n);
  int64_t kept = 0;
  for (int i = 0; i < m; i++) {
    const float *a = scores + (size_t)i * n;
    uint8_t *mr = mask + (size_t)i * rb;
    memset(mr, 0, rb);
    const int nk = causal ? q0 + i + 1 : n;
    for (int j = 0; j < nk; j++) {
      const int keep = (double)a[j] >= theta;
      mr[j >> 3] |= (uint8_t)(keep << (j & 7));
      kept += keep;
    }
  }
  *n_kept = kept;
  return 0;
}
