/* spr_vmath.c - vectorised float exponential (method and accuracy:
 * spr_vmath.h). */
#include "config.h"
#include "spr_vmath.h"

/* exp16 is always inlined: the ABI note about 64-byte vector arguments
 * does not apply */
#pragma GCC diagnostic ignored "-Wpsabi"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spr_clones.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) && !defined(SPR_NO_CLONES)
#define VM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VM_CLONES
#endif

/* The sum of 16 partial sums, pairwise: lanes (l, l + 8), then (l, l +
 * 4), ... (the order of spr_vexpf_sub_sum and spr_vsum16). */
static inline float pairwise16(float *a) {
  for (int w = 8; w >= 1; w >>= 1)
    for (int l = 0; l < w; l++) a[l] = a[l] + a[l + w];
  return a[0];
}

#if defined(__GNUC__) && !defined(__clang__) /* clang 14 refuses 64-byte vector arguments without avx512f */
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

#define SPLAT(v) {v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v}

/* exp of lanes xc already clamped to [-88.5, 89.5] before the scaling:
 * p(r) with r = xc - k ln 2, and k (as a float) in *kf (spr_vmath.h). */
static inline __attribute__((always_inline)) v16f exp16_poly(v16f xc, v16f *kf) {
  const v16f log2e = SPLAT(1.44269504088896341f), magic = SPLAT(12582912.0f);
  const v16f c1 = SPLAT(0.693359375f), c2 = SPLAT(-2.12194440e-4f);
  const v16f p0 = SPLAT(1.9875691500e-4f), p1 = SPLAT(1.3981999507e-3f),
             p2 = SPLAT(8.3334519073e-3f), p3 = SPLAT(4.1665795894e-2f),
             p4 = SPLAT(1.6666665459e-1f), p5 = SPLAT(5.0000001201e-1f);
  const v16f one = SPLAT(1.0f);
  /* k = nearest integer to x log2(e) (the magic constant rounds) */
  const v16f k = (xc * log2e + magic) - magic;
  const v16f r = (xc - k * c1) - k * c2;
  const v16f z = r * r;
  v16f p = p0 * r + p1;
  p = p * r + p2;
  p = p * r + p3;
  p = p * r + p4;
  p = p * r + p5;
  *kf = k;
  return (p * z + r) + one;
}

/* exp of 16 lanes (spr_vmath.h): the same operations in every variant. */
static inline __attribute__((always_inline)) v16f exp16(v16f x) {
  const v16f lo = SPLAT(-87.33654475f), hi = SPLAT(88.72283905f);
  const v16f clo = SPLAT(-88.5f), chi = SPLAT(89.5f);
  const v16f inf = SPLAT(__builtin_inff());
  const v16i bias = SPLAT(127);
  /* keep k within a few units of the float range; the ends are masked */
  v16i keep = (v16i)(x > clo);
  v16f xc = (v16f)(((v16i)x & keep) | ((v16i)clo & ~keep));
  keep = (v16i)(xc < chi);
  xc = (v16f)(((v16i)xc & keep) | ((v16i)chi & ~keep));
  v16f kf;
  v16f p = exp16_poly(xc, &kf);
  /* times 2^k as 2^e1 2^e2, e1 = floor(k / 2): both factors are normal
   * floats for every k of the clamped range */
  const v16i k = __builtin_convertvector(kf, v16i);
  const v16i e1 = k >> 1, e2 = k - e1;
  p = p * (v16f)((e1 + bias) << 23);
  p = p * (v16f)((e2 + bias) << 23);
  /* below FLT_MIN: 0; above FLT_MAX: inf; NaN stays NaN */
  p = (v16f)((v16i)p & (v16i)(x >= lo));
  const v16i big = (v16i)(x > hi);
  p = (v16f)(((v16i)p & ~big) | ((v16i)inf & big));
  const v16i nan = (v16i)(x != x);
  p = (v16f)(((v16i)p & ~nan) | ((v16i)x & nan));
  return p;
}

/* exp16 for lanes x <= 0 (-inf included, no NaN): the same operations
 * without the ones that inputs above 0 or NaN need, so the same bits on
 * those lanes.  k = nearest integer to x log2(e) lies in [-126, 0] for
 * x >= lo (x < lo gives 0 as in exp16), so 2^k is a normal float and p
 * 2^k rounds once, as exp16's p 2^e1 2^e2 does (its first product is
 * exact). */
static inline __attribute__((always_inline)) v16f exp16_nonpos(v16f x) {
  const v16f lo = SPLAT(-87.33654475f), clo = SPLAT(-88.5f);
  const v16i bias = SPLAT(127);
  const v16i keep = (v16i)(x > clo);
  v16f kf;
  const v16f p = exp16_poly((v16f)(((v16i)x & keep) | ((v16i)clo & ~keep)), &kf);
  const v16i k = __builtin_convertvector(kf, v16i);
  return (v16f)((v16i)(p * (v16f)((k + bias) << 23)) & (v16i)(x >= lo));
}

/* exp16 or, with nonpos (a constant in every caller), exp16_nonpos */
static inline __attribute__((always_inline)) v16f exp16_of(v16f x, int nonpos) {
  return nonpos ? exp16_nonpos(x) : exp16(x);
}

static inline v16f load16(const float *p) {
  v16f v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void store16(float *p, v16f v) { memcpy(p, &v, sizeof v); }

/* spr_vexpf and spr_vexpf_nonpos: one body, inlined into each */
static inline __attribute__((always_inline)) void vexpf_body(const float *x, float *y, size_t n,
                                                             int nonpos) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) store16(y + i, exp16_of(load16(x + i), nonpos));
  if (i < n) {
    float t[16] = {0};
    memcpy(t, x + i, (n - i) * sizeof *t);
    const v16f e = exp16_of(load16(t), nonpos);
    store16(t, e);
    memcpy(y + i, t, (n - i) * sizeof *t);
  }
}

/* spr_vexpf_sub_sum and spr_vexpf_sub_sum_nonpos: one body */
static inline __attribute__((always_inline)) float vexpf_sub_sum_body(const float *x, float m,
                                                                      float *y, size_t n,
                                                                      int nonpos) {
  const v16f mv = SPLAT(m);
  v16f s = SPLAT(0.0f);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const v16f e = exp16_of(load16(x + i) - mv, nonpos);
    store16(y + i, e);
    s += e;
  }
  if (i < n) {
    float t[16];
    for (int l = 0; l < 16; l++) t[l] = -__builtin_inff();
    for (size_t l = 0; l < n - i; l++) t[l] = x[i + l] - m;
    const v16f e = exp16_of(load16(t), nonpos); /* the padding lanes give 0 */
    store16(t, e);
    memcpy(y + i, t, (n - i) * sizeof *t);
    s += e;
  }
  float a[16];
  store16(a, s);
  return pairwise16(a);
}

VM_CLONES void spr_vexpf(const float *x, float *y, size_t n) { vexpf_body(x, y, n, 0); }

VM_CLONES float spr_vexpf_sub_sum(const float *x, float m, float *y, size_t n) {
  return vexpf_sub_sum_body(x, m, y, n, 0);
}

VM_CLONES void spr_vexpf_nonpos(const float *x, float *y, size_t n) { vexpf_body(x, y, n, 1); }

VM_CLONES float spr_vexpf_sub_sum_nonpos(const float *x, float m, float *y, size_t n) {
  return vexpf_sub_sum_body(x, m, y, n, 1);
}

VM_CLONES float spr_vsum16(const float *y, size_t n) {
  v16f s = SPLAT(0.0f);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) s += load16(y + i);
  if (i < n) {
    float t[16] = {0};
    memcpy(t, y + i, (n - i) * sizeof *t);
    s += load16(t);
  }
  float a[16];
  store16(a, s);
  return pairwise16(a);
}

#else /* not GCC (clang too): the same arithmetic, one lane at a time */

#include <math.h>

static float exp1(float x) {
  if (x != x) return x;
  if (x < -87.33654475f) return 0.0f;
  if (x > 88.72283905f) return INFINITY;
  const volatile float magic = 12582912.0f;
  const float kf = (x * 1.44269504088896341f + magic) - magic;
  const float r = (x - kf * 0.693359375f) - kf * -2.12194440e-4f;
  const float z = r * r;
  float p = 1.9875691500e-4f * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = (p * z + r) + 1.0f;
  const int k = (int)kf, e1 = k >> 1, e2 = k - e1;
  return ldexpf(ldexpf(p, e1), e2);
}

void spr_vexpf(const float *x, float *y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = exp1(x[i]);
}

float spr_vexpf_sub_sum(const float *x, float m, float *y, size_t n) {
  float s[16] = {0};
  for (size_t i = 0; i < n; i++) {
    y[i] = exp1(x[i] - m);
    s[i % 16] += y[i];
  }
  return pairwise16(s);
}

void spr_vexpf_nonpos(const float *x, float *y, size_t n) { spr_vexpf(x, y, n); }

float spr_vexpf_sub_sum_nonpos(const float *x, float m, float *y, size_t n) {
  return spr_vexpf_sub_sum(x, m, y, n);
}

float spr_vsum16(const float *y, size_t n) {
  float s[16] = {0};
  for (size_t i = 0; i < n; i++) s[i % 16] += y[i];
  return pairwise16(s);
}
#endif

/* ---- comparison bits and counts ------------------------------------------ */

VM_CLONES static int64_t vbits_ge_any(const int32_t *s, int n, int32_t t, uint8_t *out) {
  int64_t cnt = 0;
  int j = 0;
  for (; j + 64 <= n; j += 64) {
    uint8_t c[64];
#pragma omp simd
    for (int u = 0; u < 64; u++) c[u] = (uint8_t)(s[j + u] >= t);
    for (int b = 0; b < 8; b++) {
      uint64_t x;
      memcpy(&x, c + 8 * b, 8);
      /* byte u of x (0 or 1) lands on bit 56 + u of the product */
      const unsigned byte = (unsigned)((x * UINT64_C(0x0102040810204080)) >> 56);
      out[j / 8 + b] = (uint8_t)byte;
      cnt += __builtin_popcount(byte);
    }
  }
  if (j < n) {
    const int nb = (n - j + 7) / 8;
    for (int b = 0; b < nb; b++) {
      unsigned byte = 0;
      for (int u = 0; u < 8 && j + 8 * b + u < n; u++) byte |= (unsigned)(s[j + 8 * b + u] >= t) << u;
      out[j / 8 + b] = (uint8_t)byte;
      cnt += __builtin_popcount(byte);
    }
  }
  return cnt;
}

#if SPR_AVX512_KERNELS
/* AVX-512: one compare into a 16-bit mask per 16 values, stored as the
 * two bytes of their bits (little-endian: bit u of the mask is value u) */
__attribute__((target("avx512f"))) static int64_t vbits_ge_512(const int32_t *s, int n, int32_t t,
                                                               uint8_t *out) {
  const __m512i tv = _mm512_set1_epi32(t);
  int64_t cnt = 0;
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    const uint16_t k = (uint16_t)_mm512_cmpge_epi32_mask(_mm512_loadu_si512((const void *)(s + j)), tv);
    memcpy(out + j / 8, &k, 2);
    cnt += __builtin_popcount(k);
  }
  if (j < n) cnt += vbits_ge_any(s + j, n - j, t, out + j / 8);
  return cnt;
}
#endif

int spr_cpu_avx512(void) {
  static int have = -1; /* a benign race: every thread computes the same */
  if (have < 0) {
#if SPR_AVX512_KERNELS
    const char *off = getenv("SPR_NO_AVX512");
    have = __builtin_cpu_supports("avx512f") && !(off && *off);
#else
    have = 0;
#endif
  }
  return have;
}

static int vselect_any(const int32_t *s, int n, int32_t lo, int32_t hi, int32_t *out) {
  int c = 0;
  for (int j = 0; j < n; j++) {
    const int32_t v = s[j];
    out[c] = v;
    c += v >= lo && v <= hi;
  }
  return c;
}

#if SPR_AVX512_KERNELS
/* 16 values a time: a range mask, the kept values compressed to the
 * front of a register, stored whole (16 lanes at out + c <= s + j: the
 * values it overwrites in place were loaded already) */
__attribute__((target("avx512f"))) static int vselect_512(const int32_t *s, int n, int32_t lo,
                                                          int32_t hi, int32_t *out) {
  const __m512i lv = _mm512_set1_epi32(lo), hv = _mm512_set1_epi32(hi);
  int c = 0, j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512i v = _mm512_loadu_si512((const void *)(s + j));
    const __mmask16 k = _mm512_cmpge_epi32_mask(v, lv) & _mm512_cmple_epi32_mask(v, hv);
    _mm512_storeu_si512((void *)(out + c), _mm512_maskz_compress_epi32(k, v));
    c += __builtin_popcount(k);
  }
  return c + vselect_any(s + j, n - j, lo, hi, out + c);
}
#endif

int spr_vselect_range_i32(const int32_t *s, int n, int32_t lo, int32_t hi, int32_t *out) {
#if SPR_AVX512_KERNELS
  if (spr_cpu_avx512()) return vselect_512(s, n, lo, hi, out);
#endif
  return vselect_any(s, n, lo, hi, out);
}

static void vminmax_any(const int32_t *s, int n, int32_t *mn, int32_t *mx) {
  int32_t a = s[0], b = s[0];
  for (int j = 1; j < n; j++) {
    a = s[j] < a ? s[j] : a;
    b = s[j] > b ? s[j] : b;
  }
  if (mn) *mn = a;
  *mx = b;
}

static int vcount_eq_any(const int32_t *s, int n, int32_t v, int *first) {
  int c = 0, f = n;
  for (int j = 0; j < n; j++)
    if (s[j] == v) {
      f = c++ ? f : j;
    }
  *first = f;
  return c;
}

#if SPR_AVX512_KERNELS
/* 16 lanes and a reduction tree in registers (GCC's vectorised reduction
 * loops end in a scalar pass over their lanes through memory, each call) */
__attribute__((target("avx512f"))) static void vminmax_512(const int32_t *s, int n, int32_t *mn,
                                                           int32_t *mx) {
  __m512i a = _mm512_set1_epi32(s[0]), b = a;
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512i v = _mm512_loadu_si512((const void *)(s + j));
    a = _mm512_min_epi32(a, v);
    b = _mm512_max_epi32(b, v);
  }
  if (j < n) {
    const __mmask16 t = (__mmask16)((1u << (n - j)) - 1u);
    const __m512i v = _mm512_maskz_loadu_epi32(t, s + j);
    a = _mm512_mask_min_epi32(a, t, a, v);
    b = _mm512_mask_max_epi32(b, t, b, v);
  }
  if (mn) *mn = _mm512_reduce_min_epi32(a);
  *mx = _mm512_reduce_max_epi32(b);
}

__attribute__((target("avx512f"))) static int vcount_eq_512(const int32_t *s, int n, int32_t v,
                                                            int *first) {
  const __m512i x = _mm512_set1_epi32(v);
  int c = 0, f = n;
  for (int j = 0; j < n; j += 16) {
    const __mmask16 t = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1u);
    const unsigned k = _mm512_mask_cmpeq_epi32_mask(t, _mm512_maskz_loadu_epi32(t, s + j), x);
    if (k && f == n) f = j + __builtin_ctz(k);
    c += __builtin_popcount(k);
  }
  *first = f;
  return c;
}
#endif

void spr_vminmax_i32(const int32_t *s, int n, int32_t *mn, int32_t *mx) {
#if SPR_AVX512_KERNELS
  if (spr_cpu_avx512()) {
    vminmax_512(s, n, mn, mx);
    return;
  }
#endif
  vminmax_any(s, n, mn, mx);
}

int spr_vcount_eq_i32(const int32_t *s, int n, int32_t v, int *first) {
#if SPR_AVX512_KERNELS
  if (spr_cpu_avx512()) return vcount_eq_512(s, n, v, first);
#endif
  return vcount_eq_any(s, n, v, first);
}

int64_t spr_vbits_ge_i32(const int32_t *s, int n, int32_t t, uint8_t *out) {
#if SPR_AVX512_KERNELS
  if (spr_cpu_avx512()) return vbits_ge_512(s, n, t, out);
#endif
  return vbits_ge_any(s, n, t, out);
}

/* int16 values through vbits_ge_any, widened 64 at a time */
static int64_t vbits_ge16_any(const int16_t *s, int n, int32_t t, uint8_t *out) {
  int64_t cnt = 0;
  int32_t w[64];
  for (int j = 0; j < n; j += 64) {
    const int m = n - j < 64 ? n - j : 64;
    for (int u = 0; u < m; u++) w[u] = s[j + u];
    cnt += vbits_ge_any(w, m, t, out + j / 8);
  }
  return cnt;
}

#if SPR_AVX512_KERNELS
/* AVX-512: 16 values widened to int32, then vbits_ge_512's compare */
__attribute__((target("avx512f"))) static int64_t vbits_ge16_512(const int16_t *s, int n, int32_t t,
                                                                 uint8_t *out) {
  const __m512i tv = _mm512_set1_epi32(t);
  int64_t cnt = 0;
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512i v = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(s + j)));
    const uint16_t k = (uint16_t)_mm512_cmpge_epi32_mask(v, tv);
    memcpy(out + j / 8, &k, 2);
    cnt += __builtin_popcount(k);
  }
  if (j < n) cnt += vbits_ge16_any(s + j, n - j, t, out + j / 8);
  return cnt;
}
#endif

int64_t spr_vbits_ge_i16(const int16_t *s, int n, int32_t t, uint8_t *out) {
#if SPR_AVX512_KERNELS
  if (spr_cpu_avx512()) return vbits_ge16_512(s, n, t, out);
#endif
  return vbits_ge16_any(s, n, t, out);
}

VM_CLONES int64_t spr_vcount_diff_ge_i32(const int32_t *a, const int32_t *b, int n, int32_t t) {
  int32_t c = 0;
  int64_t cnt = 0;
  for (int j0 = 0; j0 < n; j0 += 1 << 20) { /* int32 lanes: 2^20 at a time */
    const int j1 = n - j0 < (1 << 20) ? n : j0 + (1 << 20);
    c = 0;
#pragma omp simd reduction(+ : c)
    for (int j = j0; j < j1; j++) c += (a[j] - b[j]) >= t;
    cnt += c;
  }
  return cnt;
}

VM_CLONES static int64_t vcount_ge_any(const int32_t *s, int n, int32_t t) {
  int64_t cnt = 0;
  for (int j0 = 0; j0 < n; j0 += 1 << 20) {
    const int j1 = n - j0 < (1 << 20) ? n : j0 + (1 << 20);
    int32_t c = 0;
#pragma omp simd reduction(+ : c)
    for (int j = j0; j < j1; j++) c += s[j] >= t;
    cnt += c;
  }
  return cnt;
}

#if SPR_AVX512_KERNELS
/* the same from compare masks (GCC's reduction of the loop above ends in
 * a scalar sum of its lanes through memory, each call: top-k's bisection
 * counts a row's values about six times) */
__attribute__((target("avx512f"))) static int64_t vcount_ge_512(const int32_t *s, int n,
                                                                int32_t t) {
  const __m512i tv = _mm512_set1_epi32(t);
  int64_t c = 0;
  int j = 0;
  for (; j + 16 <= n; j += 16)
    c += __builtin_popcount(_mm512_cmpge_epi32_mask(_mm512_loadu_si512((const void *)(s + j)), tv));
  if (j < n) {
    const __mmask16 m = (__mmask16)((1u << (n - j)) - 1u);
    c += __builtin_popcount(_mm512_mask_cmpge_epi32_mask(m, _mm512_maskz_loadu_epi32(m, s + j), tv));
  }
  return c;
}
#endif

int64_t spr_vcount_ge_i32(const int32_t *s, int n, int32_t t) {
#if SPR_AVX512_KERNELS
  if (spr_cpu_avx512()) return vcount_ge_512(s, n, t);
#endif
  return vcount_ge_any(s, n, t);
}
