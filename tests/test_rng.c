/* test_rng.c - keyed xoshiro256** streams (core/spr_rng.c): published
 * reference vectors, reproducibility of keyed streams, sensitivity to every
 * key field, and statistical checks with bounds stated in standard
 * deviations of the estimator (all at fixed keys, so deterministic). */
#include "config.h"
#include "spr_rng.h"
#include "spr_test.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdint.h>

#define GOLDEN UINT64_C(0x9e3779b97f4a7c15)

typedef struct {
  uint64_t seed;
  int layer, head, trial, stream;
} key;

static void rekey(gsl_rng *r, key k) { spr_rng_key(r, k.seed, k.layer, k.head, k.trial, k.stream); }

static gsl_rng *keyed(key k) {
  gsl_rng *r = spr_rng_alloc();
  CU_ASSERT_PTR_NOT_NULL_FATAL(r);
  rekey(r, k);
  return r;
}

static const key base = {12345, 3, 5, 7, SPR_STREAM_PROG};

/* --- reference vectors ---------------------------------------------------- */

/* SplitMix64 of Vigna: from state 0, the outputs are mix(k * golden) for
 * k = 1, 2, ...; spr_rng_mix64(x) adds the golden gamma itself. */
static void test_mix64_reference(void) {
  CU_ASSERT_EQUAL(spr_rng_mix64(0), UINT64_C(0xE220A8397B1DCDAF));
  CU_ASSERT_EQUAL(spr_rng_mix64(GOLDEN), UINT64_C(0x6E789E6AA1B965F4));
  CU_ASSERT_EQUAL(spr_rng_mix64(2 * GOLDEN), UINT64_C(0x06C45D188009454F));
  CU_ASSERT_EQUAL(spr_rng_mix64(3 * GOLDEN), UINT64_C(0xF88BB8A8724C81EC));
}

/* xoshiro256** from the state {1, 2, 3, 4}: the outputs published with the
 * reference implementation (also the test vector of rand_xoshiro).  The
 * state is the generator's 4 x uint64 (white box, checked by its size). */
static void test_xoshiro_reference(void) {
  static const uint64_t ref[10] = {
      UINT64_C(11520),                UINT64_C(0),
      UINT64_C(1509978240),           UINT64_C(1215971899390074240),
      UINT64_C(1216172134540287360),  UINT64_C(607988272756665600),
      UINT64_C(16172922978634559625), UINT64_C(8476171486693032832),
      UINT64_C(10595114339597558777), UINT64_C(2904607092377533576)};
  static const uint64_t s0[4] = {1, 2, 3, 4};
  gsl_rng *r = spr_rng_alloc();
  CU_ASSERT_PTR_NOT_NULL_FATAL(r);
  CU_ASSERT_STRING_EQUAL(gsl_rng_name(r), "spr_xoshiro256ss");
  CU_ASSERT_EQUAL(gsl_rng_min(r), 0);
  CU_ASSERT_EQUAL(gsl_rng_max(r), UINT64_C(0xffffffff));
  CU_ASSERT_EQUAL_FATAL(gsl_rng_size(r), sizeof s0);
  /* gsl_rng_get: the upper 32 bits */
  memcpy(gsl_rng_state(r), s0, sizeof s0);
  for (int i = 0; i < 10; i++) CU_ASSERT_EQUAL((uint64_t)gsl_rng_get(r), ref[i] >> 32);
  /* gsl_rng_uniform: the upper 53 bits times 2^-53 */
  memcpy(gsl_rng_state(r), s0, sizeof s0);
  for (int i = 0; i < 10; i++) CU_ASSERT_EQUAL(gsl_rng_uniform(r), (double)(ref[i] >> 11) * 0x1.0p-53);
  gsl_rng_free(r);
}

/* --- keyed streams -------------------------------------------------------- */

static void test_same_key_same_stream(void) {
  gsl_rng *a = keyed(base), *b = keyed(base);
  int same = 1;
  for (int i = 0; i < 10000; i++) same &= gsl_rng_get(a) == gsl_rng_get(b);
  CU_ASSERT_TRUE(same);
  for (int i = 0; i < 1000; i++) same &= gsl_rng_uniform(a) == gsl_rng_uniform(b);
  CU_ASSERT_TRUE(same);
  /* re-keying restarts the stream */
  unsigned long first[8];
  rekey(a, base);
  for (int i = 0; i < 8; i++) first[i] = gsl_rng_get(a);
  for (int i = 0; i < 1000; i++) gsl_rng_get(a);
  rekey(a, base);
  for (int i = 0; i < 8; i++) CU_ASSERT_EQUAL(gsl_rng_get(a), first[i]);
  /* a clone continues the same stream */
  gsl_rng *c = gsl_rng_clone(a);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(gsl_rng_get(c), gsl_rng_get(a));
  gsl_rng_free(a);
  gsl_rng_free(b);
  gsl_rng_free(c);
}

/* A stream depends on its key only, not on what was drawn before. */
static void test_rekey_order(void) {
  key kb = base;
  kb.head = 9;
  kb.stream = SPR_STREAM_READ;
  gsl_rng *r = spr_rng_alloc(), *fa = keyed(base), *fb = keyed(kb);
  CU_ASSERT_PTR_NOT_NULL_FATAL(r);
  unsigned long a1[16], b1[16], a2[16];
  rekey(r, base);
  for (int i = 0; i < 16; i++) a1[i] = gsl_rng_get(r);
  rekey(r, kb);
  for (int i = 0; i < 16; i++) b1[i] = gsl_rng_get(r);
  for (int i = 0; i < 500; i++) gsl_rng_uniform(r); /* more draws from B */
  rekey(r, base);
  for (int i = 0; i < 16; i++) a2[i] = gsl_rng_get(r);
  CU_ASSERT_EQUAL(memcmp(a1, a2, sizeof a1), 0);
  for (int i = 0; i < 16; i++) {
    CU_ASSERT_EQUAL(a1[i], gsl_rng_get(fa)); /* as from a fresh generator */
    CU_ASSERT_EQUAL(b1[i], gsl_rng_get(fb));
  }
  CU_ASSERT_NOT_EQUAL(memcmp(a1, b1, sizeof a1), 0);
  /* gsl_rng_set (GSL's seeding) is unrelated to the keyed positions */
  gsl_rng_set(r, 12345);
  CU_ASSERT_NOT_EQUAL(gsl_rng_get(r), a1[0]);
  gsl_rng_free(r);
  gsl_rng_free(fa);
  gsl_rng_free(fb);
}

/* Keys differing from `base` in exactly one field (or by a swap of two). */
static const key variants[] = {
    {12346, 3, 5, 7, SPR_STREAM_PROG},                 /* seed + 1 */
    {12345 ^ (UINT64_C(1) << 63), 3, 5, 7, SPR_STREAM_PROG}, /* seed top bit */
    {12345, 4, 5, 7, SPR_STREAM_PROG},                 /* layer */
    {12345, -1, 5, 7, SPR_STREAM_PROG},                /* layer n/a */
    {12345, 3, 6, 7, SPR_STREAM_PROG},                 /* head */
    {12345, 3, -1, 7, SPR_STREAM_PROG},                /* head n/a */
    {12345, 3, 5, 8, SPR_STREAM_PROG},                 /* trial */
    {12345, 3, 5, -1, SPR_STREAM_PROG},                /* trial n/a */
    {12345, 3 + 256, 5, 7, SPR_STREAM_PROG},           /* layer, high bits */
    {12345, 3, 5 + 65536, 7, SPR_STREAM_PROG},         /* head, high bits */
    {12345, 3, 5, 7 + (1 << 30), SPR_STREAM_PROG},     /* trial, high bits */
    {12345, 3, 5, 7, SPR_STREAM_STUCK},                /* stream */
    {12345, 3, 5, 7, SPR_STREAM_DRIFT},                /* stream */
    {12345, 5, 3, 7, SPR_STREAM_PROG},                 /* layer <-> head */
    {12345, 3, 5, SPR_STREAM_PROG, 7},                 /* trial <-> stream */
    {3, 12345, 5, 7, SPR_STREAM_PROG},                 /* seed <-> layer */
};
#define NVAR ((int)(sizeof variants / sizeof variants[0]))

static void test_every_field_matters(void) {
  gsl_rng *r = keyed(base);
  unsigned long b[4], v[NVAR][4];
  for (int i = 0; i < 4; i++) b[i] = gsl_rng_get(r);
  for (int k = 0; k < NVAR; k++) {
    rekey(r, variants[k]);
    int all_differ = 1;
    for (int i = 0; i < 4; i++) {
      v[k][i] = gsl_rng_get(r);
      all_differ &= v[k][i] != b[i];
    }
    if (!all_differ) fprintf(stderr, "\n  variant %d shares an output with the base key", k);
    CU_ASSERT_TRUE(all_differ);
  }
  /* and the variants differ from one another */
  for (int k = 0; k < NVAR; k++)
    for (int j = 0; j < k; j++) CU_ASSERT(memcmp(v[k], v[j], sizeof v[k]) != 0);
  /* seeds 0 and 1 and the extreme seed are distinct working streams */
  unsigned long z[3];
  uint64_t seeds[3] = {0, 1, UINT64_MAX};
  for (int s = 0; s < 3; s++) {
    spr_rng_key(r, seeds[s], -1, -1, -1, SPR_STREAM_WORKLOAD);
    z[s] = gsl_rng_get(r);
    unsigned long any = 0;
    for (int i = 0; i < 8; i++) any |= gsl_rng_get(r);
    CU_ASSERT_NOT_EQUAL(any, 0);
  }
  CU_ASSERT(z[0] != z[1] && z[1] != z[2] && z[0] != z[2]);
  gsl_rng_free(r);
}

/* --- uniform -------------------------------------------------------------- */

static void test_uniform(void) {
  const int n = 1000000, nb = 100;
  gsl_rng *r = keyed(base);
  double sum = 0, sum2 = 0;
  long bins[100] = {0};
  int out_of_range = 0, finer_than_32 = 0;
  for (int i = 0; i < n; i++) {
    double u = gsl_rng_uniform(r);
    if (!(u >= 0 && u < 1)) out_of_range++;
    double s = u * 4294967296.0;
    if (s != floor(s)) finer_than_32++;
    sum += u;
    sum2 += u * u;
    int b = (int)(u * nb);
    bins[b < nb ? b : nb - 1]++;
  }
  CU_ASSERT_EQUAL(out_of_range, 0);
  /* 53-bit resolution: almost every draw has bits below 2^-32 */
  CU_ASSERT(finer_than_32 > n * 0.99);
  double mean = sum / n, var = sum2 / n - mean * mean;
  double sd_mean = sqrt(1.0 / 12.0 / n);
  /* sd of the sample variance of U(0,1): sqrt((mu4 - sigma^4) / n),
   * mu4 = 1/80, sigma^4 = 1/144 */
  double sd_var = sqrt((1.0 / 80 - 1.0 / 144) / n);
  CU_ASSERT(fabs(mean - 0.5) < 4 * sd_mean);
  CU_ASSERT(fabs(var - 1.0 / 12) < 5 * sd_var);
  /* chi-square over 100 equal bins, 99 degrees of freedom: neither too bad
   * (above the 99.9% point) nor too good (below the 0.1% point) */
  double e = (double)n / nb, chi2 = 0;
  for (int b = 0; b < nb; b++) chi2 += (bins[b] - e) * (bins[b] - e) / e;
  double hi = gsl_cdf_chisq_Qinv(0.001, nb - 1), lo = gsl_cdf_chisq_Pinv(0.001, nb - 1);
  if (!(chi2 < hi && chi2 > lo)) fprintf(stderr, "\n  chi2 = %g, bounds (%g, %g)", chi2, lo, hi);
  CU_ASSERT(chi2 < hi);
  CU_ASSERT(chi2 > lo);
  CU_ASSERT(hi > 140 && hi < 160); /* sanity of the bound itself (148.2) */
  gsl_rng_free(r);
}

/* Each of the 32 bits of gsl_rng_get is set half of the time. */
static void test_get_bits(void) {
  const int n = 200000;
  gsl_rng *r = keyed(base);
  long ones[32] = {0};
  unsigned long mx = 0;
  for (int i = 0; i < n; i++) {
    unsigned long x = gsl_rng_get(r);
    if (x > mx) mx = x;
    for (int b = 0; b < 32; b++) ones[b] += (x >> b) & 1;
  }
  CU_ASSERT(mx <= 0xffffffffUL);
  CU_ASSERT(mx > 0xfff00000UL); /* the top of the range is reached */
  double sd = sqrt(n * 0.25);
  for (int b = 0; b < 32; b++) {
    if (fabs(ones[b] - n / 2.0) >= 5 * sd) fprintf(stderr, "\n  bit %d set %ld times of %d", b, ones[b], n);
    CU_ASSERT(fabs(ones[b] - n / 2.0) < 5 * sd);
  }
  gsl_rng_free(r);
}

/* --- normal --------------------------------------------------------------- */

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

/* A sample that should be standard normal: mean, variance, skewness and
 * kurtosis, the fraction below points in the body and in both tails
 * (including the ziggurat's tail boundary r = 3.654), a chi-square of
 * Phi(x) over 100 equiprobable bins, and the Kolmogorov-Smirnov distance.
 * Bounds are 5 sd of each estimator, or the 99.9% points.  Sorts x. */
static void check_normal(double *x, int n, const char *what) {
  double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
  static const double at[] = {-1.0, -0.1, 0.0, 0.1, 1.96, -3.0, 3.0, -4.0, 4.0, 3.6541528853610088, -3.6541528853610088};
  enum { NAT = sizeof at / sizeof at[0], NB = 100 };
  long below[NAT] = {0}, bins[NB] = {0};
  for (int i = 0; i < n; i++) {
    s1 += x[i];
    for (int j = 0; j < NAT; j++) below[j] += x[i] < at[j];
    int b = (int)(gsl_cdf_ugaussian_P(x[i]) * NB);
    bins[b < NB ? b : NB - 1]++;
  }
  double mean = s1 / n;
  for (int i = 0; i < n; i++) {
    double d = x[i] - mean;
    s2 += d * d;
    s3 += d * d * d;
    s4 += d * d * d * d;
  }
  double var = s2 / n, skew = s3 / n / pow(var, 1.5), kurt = s4 / n / (var * var);
  /* sd: mean 1/sqrt(n); variance sqrt(2/n); skewness sqrt(6/n);
   * kurtosis sqrt(24/n) */
  int ok = fabs(mean) < 5 / sqrt(n) && fabs(var - 1) < 5 * sqrt(2.0 / n) && fabs(skew) < 5 * sqrt(6.0 / n) &&
           fabs(kurt - 3) < 5 * sqrt(24.0 / n);
  if (!ok) fprintf(stderr, "\n  %s: mean %g var %g skew %g kurt %g (n %d)", what, mean, var, skew, kurt, n);
  CU_ASSERT(fabs(mean) < 5 / sqrt(n));
  CU_ASSERT(fabs(var - 1) < 5 * sqrt(2.0 / n));
  CU_ASSERT(fabs(skew) < 5 * sqrt(6.0 / n));
  CU_ASSERT(fabs(kurt - 3) < 5 * sqrt(24.0 / n));
  for (int j = 0; j < NAT; j++) {
    double p = gsl_cdf_ugaussian_P(at[j]), f = (double)below[j] / n;
    double sd = sqrt(p * (1 - p) / n);
    if (fabs(f - p) >= 5 * sd) fprintf(stderr, "\n  %s: P(x < %g) = %g, want %g +- %g", what, at[j], f, p, 5 * sd);
    CU_ASSERT(fabs(f - p) < 5 * sd);
  }
  double e = (double)n / NB, chi2 = 0;
  for (int b = 0; b < NB; b++) chi2 += (bins[b] - e) * (bins[b] - e) / e;
  double hi = gsl_cdf_chisq_Qinv(0.001, NB - 1);
  if (chi2 >= hi) fprintf(stderr, "\n  %s: chi2 of Phi(x) = %g >= %g", what, chi2, hi);
  CU_ASSERT(chi2 < hi);
  /* Kolmogorov-Smirnov: P(sqrt(n) D > 1.9495) = 0.001 */
  qsort(x, (size_t)n, sizeof *x, cmp_double);
  double d = 0;
  for (int i = 0; i < n; i++) {
    double F = gsl_cdf_ugaussian_P(x[i]);
    d = fmax(d, fmax(F - (double)i / n, (double)(i + 1) / n - F));
  }
  if (d * sqrt(n) >= 1.9495) fprintf(stderr, "\n  %s: KS sqrt(n) D = %g", what, d * sqrt(n));
  CU_ASSERT(d * sqrt(n) < 1.9495);
}

static void test_gaussian(void) {
  const int n = 1000000;
  float *f = malloc(n * sizeof *f);
  double *x = malloc(n * sizeof *x);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  key k = base;
  k.stream = SPR_STREAM_WORKLOAD;
  gsl_rng *r = keyed(k);
  spr_rng_gaussian(r, f, (size_t)n);
  for (int i = 0; i < n; i++) x[i] = f[i];
  check_normal(x, n, "spr_rng_gaussian");

  /* spr_rng_normal from another key */
  k.trial = 99;
  rekey(r, k);
  for (int i = 0; i < n; i++) x[i] = spr_rng_normal(r);
  check_normal(x, n, "spr_rng_normal");

  /* both draw the same variates from the same key; n = 0 draws nothing */
  gsl_rng *a = keyed(k);
  rekey(r, k);
  spr_rng_gaussian(a, f, 0);
  spr_rng_gaussian(a, f, 1000);
  int same = 1;
  for (int i = 0; i < 1000; i++) same &= f[i] == (float)spr_rng_normal(r);
  CU_ASSERT_TRUE(same);
  gsl_rng_free(a);
  gsl_rng_free(r);
  free(f);
  free(x);
}

/* The tail beyond the ziggurat's base strip (|x| > r = 3.654, sampled by
 * Marsaglia's exact tail method): 2e7 normals give ~5200 tail values, whose
 * count, sign balance and conditional distribution (Q(|x|) / Q(r) is
 * uniform) are checked. */
static void test_normal_tail(void) {
  const int n = 20000000;
  const double r = 3.6541528853610088, qr = gsl_cdf_ugaussian_Q(r);
  int cap = 20000, m = 0, pos = 0;
  double *t = malloc((size_t)cap * sizeof *t);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  key k = base;
  k.stream = SPR_STREAM_READ;
  gsl_rng *g = keyed(k);
  for (int i = 0; i < n; i++) {
    double x = spr_rng_normal(g);
    if (fabs(x) > r && m < cap) {
      pos += x > 0;
      t[m++] = gsl_cdf_ugaussian_Q(fabs(x)) / qr;
    }
  }
  double p = 2 * qr, sd = sqrt(n * p * (1 - p));
  if (fabs(m - n * p) >= 5 * sd) fprintf(stderr, "\n  %d tail values, want %g +- %g", m, n * p, 5 * sd);
  CU_ASSERT(fabs(m - n * p) < 5 * sd);
  CU_ASSERT_FATAL(m > 1000 && m < cap);
  CU_ASSERT(fabs(pos - m / 2.0) < 5 * sqrt(m / 4.0));
  /* beyond 4 and 4.5, given beyond r */
  static const double at[] = {4.0, 4.5};
  for (int j = 0; j < 2; j++) {
    double c = gsl_cdf_ugaussian_Q(at[j]) / qr;
    int cnt = 0;
    for (int i = 0; i < m; i++) cnt += t[i] < c;
    double s = sqrt(m * c * (1 - c));
    if (fabs(cnt - m * c) >= 5 * s) fprintf(stderr, "\n  %d of %d tail values beyond %g, want %g", cnt, m, at[j], m * c);
    CU_ASSERT(fabs(cnt - m * c) < 5 * s);
  }
  qsort(t, (size_t)m, sizeof *t, cmp_double);
  double d = 0;
  for (int i = 0; i < m; i++) d = fmax(d, fmax(t[i] - (double)i / m, (double)(i + 1) / m - t[i]));
  if (d * sqrt(m) >= 1.9495) fprintf(stderr, "\n  tail KS sqrt(m) D = %g (m %d)", d * sqrt(m), m);
  CU_ASSERT(d * sqrt(m) < 1.9495);
  gsl_rng_free(g);
  free(t);
}

/* Normals come from the keyed stream and leave it where the next draw of
 * any kind continues reproducibly. */
static void test_normal_stream(void) {
  gsl_rng *a = keyed(base), *b = keyed(base);
  double xa[6], xb[6];
  float fa[3], fb[3];
  xa[0] = spr_rng_normal(a);
  xa[1] = gsl_rng_uniform(a);
  spr_rng_gaussian(a, fa, 3);
  xa[2] = (double)gsl_rng_get(a);
  xa[3] = spr_rng_normal(a);
  xb[0] = spr_rng_normal(b);
  xb[1] = gsl_rng_uniform(b);
  spr_rng_gaussian(b, fb, 3);
  xb[2] = (double)gsl_rng_get(b);
  xb[3] = spr_rng_normal(b);
  CU_ASSERT_EQUAL(memcmp(xa, xb, 4 * sizeof xa[0]), 0);
  CU_ASSERT_EQUAL(memcmp(fa, fb, sizeof fa), 0);
  /* drawing normals advances the stream */
  gsl_rng *c = keyed(base);
  unsigned long first = gsl_rng_get(c);
  rekey(c, base);
  spr_rng_normal(c);
  CU_ASSERT_NOT_EQUAL(gsl_rng_get(c), first);
  /* another key, other normals */
  rekey(c, variants[0]);
  rekey(a, base);
  CU_ASSERT_NOT_EQUAL(spr_rng_normal(c), spr_rng_normal(a));
  /* any other GSL generator gets GSL's ziggurat */
  gsl_rng *m = gsl_rng_alloc(gsl_rng_mt19937), *m2 = gsl_rng_alloc(gsl_rng_mt19937);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m2);
  gsl_rng_set(m, 42);
  gsl_rng_set(m2, 42);
  int same = 1;
  for (int i = 0; i < 100; i++) same &= spr_rng_normal(m) == gsl_ran_gaussian_ziggurat(m2, 1.0);
  float g[100];
  spr_rng_gaussian(m, g, 100);
  for (int i = 0; i < 100; i++) same &= g[i] == (float)gsl_ran_gaussian_ziggurat(m2, 1.0);
  CU_ASSERT_TRUE(same);
  gsl_rng_free(m);
  gsl_rng_free(m2);
  gsl_rng_free(a);
  gsl_rng_free(b);
  gsl_rng_free(c);
}

/* --- independence --------------------------------------------------------- */

static double correlation(const double *a, const double *b, int n) {
  double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
  for (int i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  for (int i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / sqrt(saa * sbb);
}

static void test_stream_independence(void) {
  const int n = 100000;
  double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  gsl_rng *r = keyed(base);
  for (int i = 0; i < n; i++) a[i] = gsl_rng_uniform(r);
  double bound = 4 / sqrt(n);
  for (int k = 0; k < NVAR; k++) {
    rekey(r, variants[k]);
    for (int i = 0; i < n; i++) b[i] = gsl_rng_uniform(r);
    double c = correlation(a, b, n);
    if (fabs(c) >= bound) fprintf(stderr, "\n  variant %d: correlation %g", k, c);
    CU_ASSERT(fabs(c) < bound);
    /* also shifted by one draw */
    c = correlation(a, b + 1, n - 1);
    CU_ASSERT(fabs(c) < bound);
  }
  /* a stream against itself: lag-1 serial correlation */
  CU_ASSERT(fabs(correlation(a, a + 1, n - 1)) < bound);
  /* and the test can see a correlation: a stream against a copy of itself
   * with 10% of the values replaced */
  for (int i = 0; i < n; i++) b[i] = (i % 10) ? a[i] : gsl_rng_uniform(r);
  CU_ASSERT(correlation(a, b, n) > 0.5);
  gsl_rng_free(r);
  free(a);
  free(b);
}

/* --- mix64 ---------------------------------------------------------------- */

static int cmp_u64(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
  return (a > b) - (a < b);
}

static void test_mix64_bijection(void) {
  const int n = 100000;
  uint64_t *o = malloc(2 * n * sizeof *o);
  CU_ASSERT_PTR_NOT_NULL_FATAL(o);
  /* consecutive integers and multiples of 2^40 (the key-field pattern) */
  for (int i = 0; i < n; i++) {
    o[i] = spr_rng_mix64((uint64_t)i);
    o[n + i] = spr_rng_mix64((uint64_t)(i + 1) << 40);
  }
  qsort(o, 2 * (size_t)n, sizeof *o, cmp_u64);
  int dup = 0;
  for (int i = 1; i < 2 * n; i++) dup += o[i] == o[i - 1];
  CU_ASSERT_EQUAL(dup, 0);
  free(o);

  /* avalanche: flipping one input bit flips half of the output bits */
  double flips = 0;
  int m = 0;
  for (uint64_t x = 0; x < 2000; x++)
    for (int b = 0; b < 64; b++, m++)
      flips += __builtin_popcountll(spr_rng_mix64(x * GOLDEN) ^ spr_rng_mix64((x * GOLDEN) ^ (UINT64_C(1) << b)));
  double mean = flips / m; /* binomial(64, 1/2): sd 4 per sample */
  CU_ASSERT(fabs(mean - 32) < 5 * 4 / sqrt(m));
}

/* The bulk draw: exactly the values of successive spr_rng_normal calls,
 * strided, the stream left where they leave it. */
static void test_normals_bulk(void) {
  gsl_rng *a = spr_rng_alloc(), *b = spr_rng_alloc();
  spr_rng_key(a, 2385, 3, 1, 0, SPR_STREAM_READ);
  spr_rng_key(b, 2385, 3, 1, 0, SPR_STREAM_READ);
  enum { N = 5000 };
  static double x[3 * N];
  for (int i = 0; i < 3 * N; i++) x[i] = 0.5;
  spr_rng_normals(a, x + 1, N, 3);
  int bad = 0;
  for (int i = 0; i < N; i++) {
    bad += x[3 * i + 1] != spr_rng_normal(b);
    bad += x[3 * i] != 0.5 || x[3 * i + 2] != 0.5; /* between the strides: untouched */
  }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_EQUAL(spr_rng_normal(a), spr_rng_normal(b));
  gsl_rng_free(a);
  gsl_rng_free(b);
}

/* Bulk draws of many lengths (a buffered implementation would have
 * blocks on both sides of 64 to 257), and a long one with thousands of
 * slow-path normals: every value and the final stream position equal
 * successive spr_rng_normal calls, doubles and floats. */
static void test_bulk_lengths(void) {
  static const size_t lens[] = {1, 2, 7, 8, 9, 63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 1000, 300000};
  const size_t nmax = 300000;
  double *x = malloc(nmax * sizeof *x);
  float *f = malloc(nmax * sizeof *f);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  gsl_rng *a = spr_rng_alloc(), *b = spr_rng_alloc();
  long bad = 0;
  for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
    const size_t n = lens[t];
    spr_rng_key(a, 77, (int)t, 0, 0, SPR_STREAM_PROG);
    spr_rng_key(b, 77, (int)t, 0, 0, SPR_STREAM_PROG);
    spr_rng_normals(a, x, n, 1);
    spr_rng_gaussian(a, f, n);
    for (size_t i = 0; i < n; i++) bad += x[i] != spr_rng_normal(b);
    for (size_t i = 0; i < n; i++) bad += f[i] != (float)spr_rng_normal(b);
    bad += spr_rng_normal(a) != spr_rng_normal(b);
  }
  CU_ASSERT_EQUAL(bad, 0);
  gsl_rng_free(a);
  gsl_rng_free(b);
  free(x);
  free(f);
}

static const CU_TestInfo tests[] = {
    {"SplitMix64 reference values", test_mix64_reference},
    {"xoshiro256** reference values", test_xoshiro_reference},
    {"same key, same stream", test_same_key_same_stream},
    {"re-keying order does not matter", test_rekey_order},
    {"every key field changes the stream", test_every_field_matters},
    {"uniform: range, mean, variance, chi-square", test_uniform},
    {"gsl_rng_get: 32 balanced bits", test_get_bits},
    {"normal: moments, tails, chi-square, KS", test_gaussian},
    {"normal tail beyond the ziggurat base", test_normal_tail},
    {"normal draws continue the keyed stream", test_normal_stream},
    {"streams are uncorrelated", test_stream_independence},
    {"mix64: distinct outputs, avalanche", test_mix64_bijection},
    {"bulk normals = successive draws", test_normals_bulk},
    {"bulk normals of many lengths = successive draws", test_bulk_lengths},
    CU_TEST_INFO_NULL,
};

int main(void) { return spr_test_run("rng", tests); }
