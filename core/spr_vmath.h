/* spr_vmath.h - vectorised float exponential for the softmax kernels.
 *
 * spr_vexpf(x, y, n): y[i] = exp(x[i]) in float, 16 elements at a time
 * (AVX-512, AVX2 or SSE2 through GCC function multiversioning, one body:
 * every variant performs the same IEEE operations, no fused multiply-add,
 * so the result does not depend on the machine's vector width).
 *
 *   exp(x) = 2^k p(r),  k = nearest integer to x log2(e),
 *   r = (x - k C1) - k C2          C1 + C2 = ln 2 (Cody-Waite; C1 has 9
 *                                  significant bits, so k C1 is exact),
 *   p(r) = 1 + r + r^2 P(r)        P: Cephes' degree-5 minimax polynomial
 *                                  on |r| <= ln(2)/2 (S. Moshier, Cephes
 *                                  expf.c).
 * Accuracy, measured over every float of the range (2.24e9 values, the
 * error against the double exp; tests/test_vmath.c checks a dense sample
 * and the edges): below SPR_VEXPF_ULP = 1 unit in the last place (0.99 at
 * worst), i.e. faithfully rounded, for -87.3365 <= x < 88.7228394 (results
 * at or above FLT_MIN).  Below -87.3365 the result is 0 (the true value is
 * under FLT_MIN = 1.2e-38: an absolute error below 1.2e-38, invisible in a
 * softmax whose largest term is 1); from 88.7228394 on, +inf (there exp(x)
 * is within half an ulp of FLT_MAX or above); NaN gives NaN.  The AVX-512,
 * AVX2 and SSE2 variants agree bit for bit (checked on 6e8 inputs).
 * Cost: about 20 vector operations per 16 elements. */
#ifndef SPR_VMATH_H
#define SPR_VMATH_H

#include <stddef.h>
#include <stdint.h>

#define SPR_VEXPF_ULP 1

/* y[i] = exp(x[i]) for i < n (x and y may be the same array). */
void spr_vexpf(const float *x, float *y, size_t n);

/* y[i] = exp(x[i] - m) for i < n, and returns the float sum of the y[i]
 * added in 16 interleaved partial sums (lane l takes i = l mod 16 in
 * increasing i), then pairwise: a fixed order, the same on every machine.
 * The softmax numerators and their normaliser in one pass. */
float spr_vexpf_sub_sum(const float *x, float m, float *y, size_t n);

/* spr_vexpf and spr_vexpf_sub_sum for inputs x[i] <= 0 (x[i] - m <= 0),
 * -inf included, as a softmax's shifted scores are: the same results bit
 * for bit (tests/test_mat.c), in about 30 vector operations per 16
 * elements instead of 43 (bench_pipeline, docs/performance.md): no upper
 * clamp, no inf or NaN lanes, and 2^k as one factor (k <= 0 makes it a
 * normal float).  A NaN or positive input gives an unspecified value. */
void spr_vexpf_nonpos(const float *x, float *y, size_t n);
float spr_vexpf_sub_sum_nonpos(const float *x, float m, float *y, size_t n);

/* 1 when the kernels written for AVX-512 run: the CPU has AVX-512F, the
 * build has them (GCC on x86-64), and the environment variable
 * SPR_NO_AVX512 is unset or empty (set, the generic kernels run, which
 * give the same results: tests/test_generic.sh).  Read once. */
int spr_cpu_avx512(void);

/* The float sum of y[0 .. n) in spr_vexpf_sub_sum's order (16
 * interleaved partial sums, then pairwise): for values y that
 * spr_vexpf_sub_sum wrote, the sum it returned. */
float spr_vsum16(const float *y, size_t n);

/* Comparison bits of int32 values against a threshold: bit j (least
 * significant first within each byte) of out[0 .. ceil(n / 8)) is
 * s[j] >= t; the bits of the last byte beyond n are 0.  Returns the
 * number of set bits. */
int64_t spr_vbits_ge_i32(const int32_t *s, int n, int32_t t, uint8_t *out);

/* The same bits of int16 values (s[j] >= t compared as int32). */
int64_t spr_vbits_ge_i16(const int16_t *s, int n, int32_t t, uint8_t *out);

/* The number of j < n with a[j] - b[j] >= t (int32, no overflow for
 * |a - b| < 2^31). */
int64_t spr_vcount_diff_ge_i32(const int32_t *a, const int32_t *b, int n, int32_t t);

/* The number of j < n with s[j] >= t. */
int64_t spr_vcount_ge_i32(const int32_t *s, int n, int32_t t);

/* The least and largest of s[0 .. n), n >= 1 (mn may be NULL). */
void spr_vminmax_i32(const int32_t *s, int n, int32_t *mn, int32_t *mx);

/* The number of j < n with s[j] == v; *first = the least such j (n when
 * there is none). */
int spr_vcount_eq_i32(const int32_t *s, int n, int32_t v, int *first);

/* The values lo <= s[j] <= hi of s[0 .. n), in their order, into out (n
 * int32; out may be s: the values move down); returns their number. */
int spr_vselect_range_i32(const int32_t *s, int n, int32_t lo, int32_t hi, int32_t *out);
#endif
