/* test_analog.c - threshold generator, keep-rate calibration, comparator
 * decisions and read-noise statistics against independent computations. */
#include "config.h"
#include "spr_analog.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_result.h"
#include "spr_rng.h"
#include "spr_test.h"
#include "spr_xbar.h"

#include <math.h>

static void test_threshold_grid(void) {
  /* 5 bits over range 100: step 6.25, codes -16..15 */
  CU_ASSERT_DOUBLE_EQUAL(spr_thr_level(3, 100, 5), 18.75, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(spr_thr_level(-16, 100, 5), -100, 1e-12);
  CU_ASSERT_EQUAL(spr_thr_code(19.0, 100, 5), 3);
  CU_ASSERT_EQUAL(spr_thr_code(21.9, 100, 5), 4);
  CU_ASSERT_EQUAL(spr_thr_code(1000, 100, 5), 15);
  CU_ASSERT_EQUAL(spr_thr_code(-1000, 100, 5), -16);
  CU_ASSERT_EQUAL(spr_thr_code(5, 0, 5), 0);
  CU_ASSERT_EQUAL(spr_thr_code(-0.7, 2.385, 3), -1);
}

/* counts[c] must equal #(s >= theta(c)), by brute force; grid points land
 * exactly on integer scores (range 32, 5 bits: step 2). */
static void test_threshold_count(void) {
  gsl_rng *r = spr_rng_alloc();
  spr_rng_key(r, 5, 0, 0, 0, 77);
  const size_t n = 5000;
  int32_t *s = malloc(n * sizeof *s);
  for (size_t k = 0; k < n; k++) s[k] = (int32_t)gsl_rng_uniform_int(r, 81) - 40;
  const double ranges[] = {32.0, 23.7};
  for (int t = 0; t < 2; t++) {
    int64_t counts[32] = {0};
    CU_ASSERT_EQUAL(spr_thr_count(s, n, ranges[t], 5, counts), 0);
    int bad = 0;
    for (int c = -16; c < 16; c++) {
      double th = spr_thr_level(c, ranges[t], 5);
      int64_t want = 0;
      for (size_t k = 0; k < n; k++) want += (double)s[k] >= th;
      if (counts[c + 16] != want) bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
  }
  /* pick: nearest keep rate, ties to the lower code */
  int64_t counts[4] = {100, 60, 30, 10}; /* 2 bits: codes -2..1 */
  CU_ASSERT_EQUAL(spr_thr_pick(counts, 100, 2, 0.31), 0);
  CU_ASSERT_EQUAL(spr_thr_pick(counts, 100, 2, 0.45), -1); /* 0.60 and 0.30 tie */
  CU_ASSERT_EQUAL(spr_thr_pick(counts, 100, 2, 0.0), 1);
  CU_ASSERT_EQUAL(spr_thr_pick(counts, 100, 2, 1.0), -2);
  free(s);
  gsl_rng_free(r);
}

typedef struct {
  spr_config c;
  spr_xbar_head xb;
  spr_analog_ws ws;
  spr_analog_scale sc;
  int8_t *q, *k;
  int m, n, d;
  uint8_t *mask;
  float *a;
} bench;

static void setup(bench *b, int m, int n, int d, int all_off) {
  memset(b, 0, sizeof *b);
  spr_config_default(&b->c);
  b->c.wl.head_dim = d;
  if (all_off) {
    spr_xbar_params *x = &b->c.xbar;
    x->variation = x->stuck = x->drift = 0;
    x->ir_drop = SPR_IR_OFF;
    spr_analog_params *a = &b->c.an;
    a->dac_error = a->read_noise = a->cmp_offset = a->cmp_noise = 0;
  }
  b->m = m;
  b->n = n;
  b->d = d;
  b->q = malloc((size_t)m * d);
  b->k = malloc((size_t)n * d);
  gsl_rng *r = spr_rng_alloc();
  spr_rng_key(r, 9, 0, 0, 0, 76);
  for (int i = 0; i < m * d; i++) b->q[i] = (int8_t)((int)gsl_rng_uniform_int(r, 15) - 7);
  for (int i = 0; i < n * d; i++) b->k[i] = (int8_t)((int)gsl_rng_uniform_int(r, 16) - 8);
  gsl_rng_free(r);
  CU_ASSERT_FATAL(spr_xbar_head_alloc(&b->xb, &b->c.xbar, n, d) == 0);
  double *work = malloc(3 * (size_t)b->c.xbar.rows * b->c.xbar.cols * sizeof *work);
  CU_ASSERT_FATAL(spr_xbar_program(&b->xb, &b->c.xbar, b->k, NULL, NULL, NULL, work, NULL) == 0);
  free(work);
  spr_analog_scale_of(&b->c.an, b->xb.dg_S, &b->sc);
  CU_ASSERT_FATAL(spr_analog_ws_alloc(&b->ws, m, n, d) == 0);
  b->mask = malloc((size_t)m * spr_mask_row_bytes(n));
  b->a = malloc((size_t)m * n * sizeof *b->a);
}

static void teardown(bench *b) {
  spr_xbar_head_free(&b->xb);
  spr_analog_ws_free(&b->ws);
  free(b->q);
  free(b->k);
  free(b->mask);
  free(b->a);
}

static int brute_score(const bench *b, int i, int j) {
  int s = 0;
  for (int t = 0; t < b->d; t++) s += b->q[i * b->d + t] * b->k[j * b->d + t];
  return s;
}

/* With every non-ideality off the analog mask is exactly the brute-force
 * thresholding of the integer scores, ties at the threshold included. */
static void test_ideal_decisions(void) {
  bench b;
  setup(&b, 50, 70, 33, 1);
  const double thetas[] = {8.0, -12.0, 0.0, 3.5};
  for (int t = 0; t < 4; t++) {
    int64_t kept;
    CU_ASSERT_EQUAL_FATAL(spr_analog_decide(&b.c.an, &b.sc, &b.xb, b.q, b.m, thetas[t], NULL,
                                            NULL, NULL, &b.ws, b.mask, b.a, &kept), 0);
    int bad = 0, ties = 0;
    int64_t want_kept = 0;
    for (int i = 0; i < b.m; i++)
      for (int j = 0; j < b.n; j++) {
        int s = brute_score(&b, i, j);
        int want = s >= thetas[t];
        ties += s == thetas[t];
        want_kept += want;
        int got = b.mask[i * spr_mask_row_bytes(b.n) + j / 8] >> (j % 8) & 1;
        if (got != want || b.a[i * b.n + j] != (float)s) bad++;
      }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(kept, want_kept);
    if (t == 0) CU_ASSERT(ties > 10); /* the tie case is really exercised */
  }
  teardown(&b);
}

/* Predicted variance of decision (i, j) in score units^2, computed from
 * the nominal conductances (variation off) independently of the library. */
static double predicted_var(const bench *b, int i, int j) {
  const spr_analog_params *an = &b->c.an;
  const spr_xbar_params *x = &b->c.xbar;
  const double kB = 1.380649e-23, e = 1.602176634e-19;
  const double dg = (x->g_max_S - x->g_min_S) / 15.0;
  const double vstep = an->v_read_V / 7.0, iu = vstep * dg;
  double th = 0, sh = 0, rel = 0;
  for (int t = 0; t < x->rows; t++) { /* idle rows add thermal noise */
    int kv = t < b->d ? b->k[j * b->d + t] : 0;
    double gp = x->g_min_S + (kv > 0 ? kv : 0) * dg, gm = x->g_min_S + (kv < 0 ? -kv : 0) * dg;
    double v = t < b->d ? b->q[i * b->d + t] * vstep : 0;
    /* a nonlinear cell passes G V0 sinh(V/V0): the current-driven shot and
     * relative terms see V0 sinh(V/V0) in place of V */
    if (x->cell_v0_V > 0) v = x->cell_v0_V * sinh(v / x->cell_v0_V);
    th += an->thermal_excess * 4 * kB * an->temperature_K * an->bandwidth_Hz * (gp + gm);
    sh += 2 * e * an->bandwidth_Hz * fabs(v) * (gp + gm);
    rel += pow(an->read_rel_sigma, 2) * v * v * (gp * gp + gm * gm);
  }
  double var = an->read_noise ? th + sh + rel : 0;
  if (an->cmp_noise) var += pow(an->cmp_noise_sigma_A, 2);
  return var / (iu * iu);
}

/* Standardised residuals (a - mu) / sigma_pred over all decisions of one
 * call are iid N(0,1): mean within 5 sigma, variance within 5 sigma of 1
 * (sd of the sample variance ~ sqrt(2/N)). */
static void check_noise(bench *b, const char *what, int trial) {
  gsl_rng *r = spr_rng_alloc(), *rf = spr_rng_alloc();
  spr_rng_key(r, 2385, 3, 4, trial, SPR_STREAM_READ);
  spr_rng_key(rf, 2385, 3, 4, trial, SPR_STREAM_READ_FAR);
  int64_t kept;
  CU_ASSERT_EQUAL_FATAL(spr_analog_decide(&b->c.an, &b->sc, &b->xb, b->q, b->m, 0.0, NULL, r, rf,
                                          &b->ws, b->mask, b->a, &kept), 0);
  double s1 = 0, s2 = 0;
  const double N = (double)b->m * b->n;
  for (int i = 0; i < b->m; i++)
    for (int j = 0; j < b->n; j++) {
      double z = (b->a[i * b->n + j] - brute_score(b, i, j)) / sqrt(predicted_var(b, i, j));
      s1 += z;
      s2 += z * z;
    }
  double mean = s1 / N, var = s2 / N - mean * mean;
  printf("\n    %s: residual mean %.4f var %.4f (N = %.0f, %.1f%% near) ", what, mean, var, N,
         100.0 * b->ws.n_near / N);
  CU_ASSERT(fabs(mean) < 5 / sqrt(N));
  CU_ASSERT(fabs(var - 1) < 5 * sqrt(2 / N));
  gsl_rng_free(r);
  gsl_rng_free(rf);
}

static void test_read_noise_statistics(void) {
  bench b;
  setup(&b, 128, 192, 64, 1);
  /* thermal + shot dominate: wide band, no relative term */
  b.c.an.read_noise = 1;
  b.c.an.read_rel_sigma = 0;
  b.c.an.bandwidth_Hz = 3.7e9;
  b.c.an.temperature_K = 350;
  check_noise(&b, "thermal+shot", 0);
  /* relative read noise dominates */
  b.c.an.read_rel_sigma = 0.0385;
  b.c.an.temperature_K = 0;
  b.c.an.bandwidth_Hz = 1e3;
  check_noise(&b, "relative", 1);
  /* comparator noise alone */
  b.c.an.read_noise = 0;
  b.c.an.cmp_noise = 1;
  b.c.an.cmp_noise_sigma_A = 2.385e-7;
  check_noise(&b, "comparator", 2);
  teardown(&b);
}

/* Static offsets: constant down a column, sample sd ~ sigma / i_unit. */
static void test_comparator_offsets(void) {
  bench b;
  setup(&b, 4, 4096, 8, 1);
  b.c.an.cmp_offset = 1;
  b.c.an.cmp_offset_sigma_A = 3.1e-8;
  float *off = malloc(4096 * sizeof *off);
  gsl_rng *r = spr_rng_alloc();
  spr_rng_key(r, 1, 0, 0, 0, SPR_STREAM_CMP_OFFSET);
  spr_cmp_offsets(&b.c.an, &b.sc, 4096, r, off);
  int64_t kept;
  CU_ASSERT_EQUAL(spr_analog_decide(&b.c.an, &b.sc, &b.xb, b.q, b.m, 0.0, off, NULL, NULL,
                                    &b.ws, b.mask, b.a, &kept), 0);
  double s1 = 0, s2 = 0;
  int bad = 0;
  for (int j = 0; j < 4096; j++) {
    for (int i = 0; i < 4; i++)
      if (fabs(b.a[i * 4096 + j] - brute_score(&b, i, j) - off[j]) > 1e-4 * (1 + fabs(off[j])))
        bad++;
    s1 += off[j];
    s2 += (double)off[j] * off[j];
  }
  CU_ASSERT_EQUAL(bad, 0);
  double sig = 3.1e-8 / b.sc.i_unit_A, mean = s1 / 4096, sd = sqrt(s2 / 4096 - mean * mean);
  CU_ASSERT(fabs(mean) < 5 * sig / 64);
  CU_ASSERT(fabs(sd / sig - 1) < 5 / sqrt(2 * 4096.0));
  /* off: zeros */
  b.c.an.cmp_offset = 0;
  spr_cmp_offsets(&b.c.an, &b.sc, 4096, r, off);
  CU_ASSERT_EQUAL(off[17], 0.0f);
  free(off);
  gsl_rng_free(r);
  teardown(&b);
}

static void test_dac_gains(void) {
  spr_config c;
  spr_config_default(&c);
  c.an.dac_gain_sigma = 0.0233;
  const int n = 20000;
  double *g = malloc(n * sizeof *g);
  gsl_rng *r = spr_rng_alloc();
  spr_rng_key(r, 1, 0, 0, 0, SPR_STREAM_DAC);
  CU_ASSERT_EQUAL(spr_dac_gains(&c.an, 100, 200, r, g), 0);
  double s1 = 0, s2 = 0;
  for (int i = 0; i < n; i++) {
    s1 += g[i];
    s2 += g[i] * g[i];
  }
  double mean = s1 / n, sd = sqrt(s2 / n - mean * mean);
  CU_ASSERT(fabs(mean - 1) < 5 * 0.0233 / sqrt(n));
  CU_ASSERT(fabs(sd / 0.0233 - 1) < 5 / sqrt(2.0 * n));
  c.an.dac_error = 0;
  CU_ASSERT_EQUAL(spr_dac_gains(&c.an, 10, 10, r, g), 0);
  CU_ASSERT_EQUAL(g[57], 1.0);
  /* error: a non-positive gain */
  c.an.dac_error = 1;
  c.an.dac_gain_sigma = 50;
  CU_ASSERT_EQUAL(spr_dac_gains(&c.an, 100, 200, r, g), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dac_gain_sigma 50");
  free(g);
  gsl_rng_free(r);
}

/* Units: i_unit = v_read / 7 * dG for 4-bit queries. */
static void test_scale(void) {
  spr_config c;
  spr_config_default(&c);
  spr_analog_scale s;
  spr_analog_scale_of(&c.an, 6.6e-6, &s);
  CU_ASSERT_DOUBLE_EQUAL(s.v_step_V, 0.2 / 7, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(s.i_unit_A, 0.2 / 7 * 6.6e-6, 1e-20);
  CU_ASSERT_DOUBLE_EQUAL(spr_analog_shot_coef(&c.an, &s), 2 * 1.602176634e-19 * 1e8 / s.i_unit_A,
                         1e-12);
}

/* Nonlinear cells: each cell passes G V0 sinh(V/V0); the column current of
 * a key is the direct sum over its cells of (G+ - G-) V0 sinh(q v_step /
 * V0), computed here from the level conductances, not from the weights. */
static void test_nonlinear_cells(void) {
  bench b;
  setup(&b, 20, 30, 37, 1);
  const double v0 = 0.1385;
  b.c.xbar.cell_v0_V = v0;
  double *work = malloc(3 * (size_t)b.c.xbar.rows * b.c.xbar.cols * sizeof *work);
  CU_ASSERT_EQUAL_FATAL(spr_xbar_program(&b.xb, &b.c.xbar, b.k, NULL, NULL, NULL, work, NULL), 0);
  free(work);
  CU_ASSERT_EQUAL(b.xb.cell_v0_V, v0);
  int64_t kept;
  CU_ASSERT_EQUAL_FATAL(spr_analog_decide(&b.c.an, &b.sc, &b.xb, b.q, b.m, 2.5, NULL, NULL, NULL,
                                          &b.ws, b.mask, b.a, &kept), 0);
  const double gmin = b.c.xbar.g_min_S, dg = b.xb.dg_S, vs = b.sc.v_step_V;
  double worst = 0, lin_gap = 0;
  int64_t want_kept = 0;
  for (int i = 0; i < b.m; i++)
    for (int j = 0; j < b.n; j++) {
      double I = 0, scale = 0;
      for (int t = 0; t < b.d; t++) {
        const int kv = b.k[j * b.d + t];
        const double gp = gmin + (kv > 0 ? kv : 0) * dg, gm = gmin + (kv < 0 ? -kv : 0) * dg;
        const double V = b.q[i * b.d + t] * vs, cell = v0 * sinh(V / v0);
        I += gp * cell - gm * cell;
        scale += (gp + gm) * fabs(cell);
      }
      const double want = I / b.sc.i_unit_A;
      want_kept += want >= 2.5;
      worst = fmax(worst, fabs(b.a[i * b.n + j] - want) / (scale / b.sc.i_unit_A));
      lin_gap = fmax(lin_gap, fabs(want - brute_score(&b, i, j)));
    }
  CU_ASSERT(worst < 1e-6);  /* float GEMM of 37 terms */
  CU_ASSERT(lin_gap > 5.0); /* sinh(7 v_step / V0) = sinh(1.44): far from linear */
  CU_ASSERT(llabs(kept - want_kept) <= 2); /* ties within float rounding only */
  /* V0 below the codes' reach overflows single precision: an error, not inf */
  b.xb.cell_v0_V = 1e-4;
  CU_ASSERT_EQUAL(spr_analog_decide(&b.c.an, &b.sc, &b.xb, b.q, b.m, 2.5, NULL, NULL, NULL, &b.ws,
                                    b.mask, b.a, &kept), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "overflows");
  teardown(&b);
}

/* Noise with nonlinear cells and an excess thermal factor: the residuals
 * about the direct nonlinear sum, divided by the independently predicted
 * sigma (predicted_var), are N(0,1) (as in check_noise). */
static void test_nonlinear_noise(void) {
  bench b;
  setup(&b, 96, 128, 64, 1);
  b.c.xbar.cell_v0_V = 0.1385;
  b.c.an.read_noise = 1;
  b.c.an.bandwidth_Hz = 3.7e9;
  b.c.an.read_rel_sigma = 0.03;
  b.c.an.thermal_excess = 2.385;
  double *work = malloc(3 * (size_t)b.c.xbar.rows * b.c.xbar.cols * sizeof *work);
  CU_ASSERT_EQUAL_FATAL(spr_xbar_program(&b.xb, &b.c.xbar, b.k, NULL, NULL, NULL, work, NULL), 0);
  free(work);
  gsl_rng *r = spr_rng_alloc(), *rf = spr_rng_alloc();
  spr_rng_key(r, 2385, 5, 6, 0, SPR_STREAM_READ);
  spr_rng_key(rf, 2385, 5, 6, 0, SPR_STREAM_READ_FAR);
  int64_t kept;
  CU_ASSERT_EQUAL_FATAL(spr_analog_decide(&b.c.an, &b.sc, &b.xb, b.q, b.m, 0.0, NULL, r, rf, &b.ws,
                                          b.mask, b.a, &kept), 0);
  const double gmin = b.c.xbar.g_min_S, dg = b.xb.dg_S, vs = b.sc.v_step_V, v0 = 0.1385;
  double s1 = 0, s2 = 0;
  const double N = (double)b.m * b.n;
  for (int i = 0; i < b.m; i++)
    for (int j = 0; j < b.n; j++) {
      double I = 0;
      for (int t = 0; t < b.d; t++) {
        const int kv = b.k[j * b.d + t];
        const double gp = gmin + (kv > 0 ? kv : 0) * dg, gm = gmin + (kv < 0 ? -kv : 0) * dg;
        I += (gp - gm) * v0 * sinh(b.q[i * b.d + t] * vs / v0);
      }
      const double z = (b.a[i * b.n + j] - I / b.sc.i_unit_A) / sqrt(predicted_var(&b, i, j));
      s1 += z;
      s2 += z * z;
    }
  const double mean = s1 / N, var = s2 / N - mean * mean;
  printf("\n    nonlinear cells, F = 2.385: residual mean %.4f var %.4f (N = %.0f) ", mean, var, N);
  CU_ASSERT(fabs(mean) < 5 / sqrt(N));
  CU_ASSERT(fabs(var - 1) < 5 * sqrt(2 / N));
  gsl_rng_free(r);
  gsl_rng_free(rf);
  teardown(&b);
}

/* The thermal term: F 4 k T B sum G, in score units squared. */
static void test_thermal_excess(void) {
  spr_config c;
  spr_config_default(&c);
  c.an.thermal_excess = 2.385;
  c.an.temperature_K = 310;
  spr_analog_scale s;
  spr_analog_scale_of(&c.an, 6.6e-6, &s);
  const double gsum = 41.5; /* units of dG */
  const double want = 2.385 * 4 * 1.380649e-23 * 310 * 1e8 * gsum * 6.6e-6 / (s.i_unit_A * s.i_unit_A);
  CU_ASSERT_DOUBLE_EQUAL(spr_analog_thermal_var(&c.an, &s, 6.6e-6, gsum), want, 1e-12 * want);
}

static void test_errors(void) {
  bench b;
  setup(&b, 10, 12, 6, 1);
  int64_t kept;
  /* more queries than the workspace holds */
  CU_ASSERT_EQUAL(spr_analog_decide(&b.c.an, &b.sc, &b.xb, b.q, 11, 0.0, NULL, NULL, NULL,
                                    &b.ws, b.mask, NULL, &kept), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "11 x 12 x 6 exceeds workspace 10 x 12 x 6");
  spr_analog_ws ws;
  CU_ASSERT_EQUAL(spr_analog_ws_alloc(&ws, 0, 5, 5), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "m=0");
  spr_analog_ws_free(NULL);
  /* noise on without its streams */
  b.c.an.cmp_noise = 1;
  CU_ASSERT_EQUAL(spr_analog_decide(&b.c.an, &b.sc, &b.xb, b.q, 10, 0.0, NULL, NULL, NULL,
                                    &b.ws, b.mask, NULL, &kept), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "read stream is NULL");
  gsl_rng *r = spr_rng_alloc();
  CU_ASSERT_EQUAL(spr_analog_decide(&b.c.an, &b.sc, &b.xb, b.q, 10, 0.0, NULL, r, NULL, &b.ws,
                                    b.mask, b.a, &kept), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "far-decision stream is NULL");
  gsl_rng_free(r);
  teardown(&b);
}

/* Near and far decisions (see spr_analog.h).  Noise large enough that a
 * good share of the decisions is near, offsets on, theta inside the score
 * range.  Checked, against the library's own outputs and an independent
 * computation of every decision's noise sd:
 *   - every recorded score agrees with its decision, far ones included
 *     (a far score uses z' from r_far, |z'| <= 8);
 *   - decisions whose |b - theta| exceeds 8 predicted sd (plus 1%) are
 *     kept exactly when b > theta, and there are at least as many near
 *     decisions as decisions within 8 predicted sd (the bound is above the
 *     true variance);
 *   - the mask, the keep count, the near count and the position of r_read
 *     do not depend on whether scores are requested, and a second run
 *     with the same keys repeats the first bit for bit. */
static void test_near_far(void) {
  bench b;
  setup(&b, 96, 160, 48, 1);
  b.c.an.read_noise = 1;
  b.c.an.read_rel_sigma = 0.0731;
  b.c.an.cmp_noise = 1;
  b.c.an.cmp_noise_sigma_A = 1.3e-7;
  const double theta = 13.5;
  float *off = malloc(b.n * sizeof *off);
  gsl_rng *ro = spr_rng_alloc();
  spr_rng_key(ro, 2385, 0, 0, 0, SPR_STREAM_CMP_OFFSET);
  for (int j = 0; j < b.n; j++) off[j] = (float)(2.385 * spr_rng_normal(ro));
  gsl_rng *r1 = spr_rng_alloc(), *f1 = spr_rng_alloc(), *r2 = spr_rng_alloc();
  spr_rng_key(r1, 2385, 5, 6, 0, SPR_STREAM_READ);
  spr_rng_key(f1, 2385, 5, 6, 0, SPR_STREAM_READ_FAR);
  spr_rng_key(r2, 2385, 5, 6, 0, SPR_STREAM_READ);
  const size_t rb = spr_mask_row_bytes(b.n), mbytes = (size_t)b.m * rb;
  int64_t kept1, kept2, kept3;
  CU_ASSERT_EQUAL_FATAL(spr_analog_decide(&b.c.an, &b.sc, &b.xb, b.q, b.m, theta, off, r1, f1,
                                          &b.ws, b.mask, b.a, &kept1), 0);
  const int64_t near1 = b.ws.n_near;
  uint8_t *mask2 = malloc(mbytes);
  CU_ASSERT_EQUAL_FATAL(spr_analog_decide(&b.c.an, &b.sc, &b.xb, b.q, b.m, theta, off, r2, NULL,
                                          &b.ws, mask2, NULL, &kept2), 0);
  CU_ASSERT_EQUAL(memcmp(b.mask, mask2, mbytes), 0);
  CU_ASSERT_EQUAL(kept1, kept2);
  CU_ASSERT_EQUAL(near1, b.ws.n_near);
  CU_ASSERT_EQUAL(gsl_rng_get(r1), gsl_rng_get(r2));
  /* repeat: same keys, same everything */
  float *a3 = malloc((size_t)b.m * b.n * sizeof *a3);
  spr_rng_key(r1, 2385, 5, 6, 0, SPR_STREAM_READ);
  spr_rng_key(f1, 2385, 5, 6, 0, SPR_STREAM_READ_FAR);
  CU_ASSERT_EQUAL_FATAL(spr_analog_decide(&b.c.an, &b.sc, &b.xb, b.q, b.m, theta, off, r1, f1,
                                          &b.ws, mask2, a3, &kept3), 0);
  CU_ASSERT_EQUAL(memcmp(b.mask, mask2, mbytes), 0);
  CU_ASSERT_EQUAL(memcmp(b.a, a3, (size_t)b.m * b.n * sizeof *a3), 0);
  CU_ASSERT_EQUAL(kept3, kept1);
  int disagree = 0, wrong_far = 0;
  int64_t n_keep = 0, exact_near = 0, far_checked = 0;
  for (int i = 0; i < b.m; i++)
    for (int j = 0; j < b.n; j++) {
      const int keep = b.mask[i * rb + j / 8] >> (j % 8) & 1;
      n_keep += keep;
      disagree += keep != ((double)b.a[i * b.n + j] >= theta);
      const double bij = (double)(float)((float)brute_score(&b, i, j) + off[j]);
      const double sd = sqrt(predicted_var(&b, i, j));
      if (fabs(bij - theta) < 8 * sd) exact_near++;
      if (fabs(bij - theta) > 8.08 * sd) {
        far_checked++;
        wrong_far += keep != (bij > theta);
      }
    }
  printf("\n    %lld near, %lld within 8 sd, %lld far checked, %lld kept of %d ",
         (long long)near1, (long long)exact_near, (long long)far_checked, (long long)n_keep,
         b.m * b.n);
  CU_ASSERT_EQUAL(disagree, 0);
  CU_ASSERT_EQUAL(wrong_far, 0);
  CU_ASSERT_EQUAL(n_keep, kept1);
  CU_ASSERT(near1 >= exact_near);
  /* the test means something: both kinds in numbers, both outcomes */
  CU_ASSERT(exact_near > 500);
  CU_ASSERT(far_checked > 2000);
  CU_ASSERT(n_keep > 1000 && n_keep < (int64_t)b.m * b.n - 1000);
  free(off);
  free(mask2);
  free(a3);
  gsl_rng_free(ro);
  gsl_rng_free(r1);
  gsl_rng_free(f1);
  gsl_rng_free(r2);
  teardown(&b);
}

/* ---- causal attention (docs/model.md section 6) ------------------------ */

static int mask_bit(const uint8_t *m, int n, int i, int j) {
  return m[(size_t)i * spr_mask_row_bytes(n) + j / 8] >> (j % 8) & 1;
}

/* Keep counts over the causal pairs (j <= i) of n x n scores against brute
 * force; the scores above the diagonal are extreme and must not count. */
static void test_threshold_count_causal(void) {
  gsl_rng *r = spr_rng_alloc();
  spr_rng_key(r, 5, 0, 0, 0, 78);
  const int ns[] = {7, 13, 40};
  for (int c = 0; c < 3; c++) {
    const int n = ns[c];
    int32_t *s = malloc((size_t)n * n * sizeof *s);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++)
        s[i * n + j] = j <= i ? (int32_t)gsl_rng_uniform_int(r, 81) - 40 : (j % 2 ? 1000000 : -1000000);
    const double ranges[] = {32.0, 23.7, 64.0};
    for (int t = 0; t < 3; t++) {
      int64_t counts[32] = {0};
      CU_ASSERT_EQUAL(spr_thr_count_causal(s, n, ranges[t], 5, counts), 0);
      int bad = 0;
      for (int code = -16; code < 16; code++) {
        double th = spr_thr_level(code, ranges[t], 5);
        int64_t want = 0;
        for (int i = 0; i < n; i++)
          for (int j = 0; j <= i; j++) want += (double)s[i * n + j] >= th;
        if (counts[code + 16] != want) bad++;
      }
      CU_ASSERT_EQUAL(bad, 0);
      /* range 64: the lowest code (-64) passes every causal score and no
       * score above the diagonal */
      if (t == 2) CU_ASSERT_EQUAL(counts[0], (int64_t)n * (n + 1) / 2);
    }
    free(s);
  }
  gsl_rng_free(r);
}

/* Every non-ideality off: row i of a causal decision keeps key j iff
 * j <= i and the integer score is >= theta (ties included); scores of
 * j > i are NaN; a block of rows starting at q0 repeats the same rows. */
static void test_causal_ideal_decisions(void) {
  const int shapes[][2] = {{7, 5}, {13, 5}, {40, 33}, {70, 8}};
  for (int c = 0; c < 4; c++) {
    const int n = shapes[c][0], d = shapes[c][1];
    bench b;
    setup(&b, n, n, d, 1);
    const size_t rb = spr_mask_row_bytes(n);
    /* the first threshold is a causal pair's score: ties guaranteed */
    const double thetas[] = {(double)brute_score(&b, n - 1, n / 2), -3.0, 0.0, 3.5};
    for (int t = 0; t < 4; t++) {
      int64_t kept;
      memset(b.mask, 0xFF, (size_t)n * rb);
      CU_ASSERT_EQUAL_FATAL(spr_analog_decide_causal(&b.c.an, &b.sc, &b.xb, b.q, n, 0, thetas[t],
                                                     NULL, NULL, NULL, &b.ws, b.mask, b.a, &kept), 0);
      int bad = 0, ties = 0;
      int64_t want_kept = 0;
      for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
          const int s = brute_score(&b, i, j);
          const int want = j <= i && s >= thetas[t];
          ties += j <= i && s == thetas[t];
          want_kept += want;
          if (mask_bit(b.mask, n, i, j) != want) bad++;
          if (j <= i ? b.a[i * n + j] != (float)s : !isnan(b.a[i * n + j])) bad++;
        }
      for (int i = 0; i < n; i++) /* padding bits of each row are 0 */
        if (n % 8 && b.mask[i * rb + rb - 1] >> (n % 8)) bad++;
      CU_ASSERT_EQUAL(bad, 0);
      CU_ASSERT_EQUAL(kept, want_kept);
      if (t == 0) CU_ASSERT(ties > 0); /* the tie case is exercised */
    }
    /* rows q0 .. q0 + m - 1 alone: the same rows */
    if (n >= 13) {
      const int q0 = n / 3, m = n / 2;
      uint8_t *mb = malloc((size_t)m * rb);
      float *ab = malloc((size_t)m * n * sizeof *ab);
      int64_t kept, kept_blk, want = 0;
      CU_ASSERT_EQUAL_FATAL(spr_analog_decide_causal(&b.c.an, &b.sc, &b.xb, b.q, n, 0, 2.0, NULL,
                                                     NULL, NULL, &b.ws, b.mask, b.a, &kept), 0);
      CU_ASSERT_EQUAL_FATAL(spr_analog_decide_causal(&b.c.an, &b.sc, &b.xb, b.q + (size_t)q0 * d,
                                                     m, q0, 2.0, NULL, NULL, NULL, &b.ws, mb, ab,
                                                     &kept_blk), 0);
      CU_ASSERT_EQUAL(memcmp(mb, b.mask + (size_t)q0 * rb, (size_t)m * rb), 0);
      int bad = 0;
      for (int r = 0; r < m; r++)
        for (int j = 0; j < n; j++) {
          const float x = ab[r * n + j], y = b.a[(q0 + r) * n + j];
          bad += !(x == y || (isnan(x) && isnan(y)));
          want += mask_bit(mb, n, r, j);
        }
      CU_ASSERT_EQUAL(bad, 0);
      CU_ASSERT_EQUAL(kept_blk, want);
      CU_ASSERT(want > 0);
      free(mb);
      free(ab);
    }
    teardown(&b);
  }
}

/* Noise off, static effects on (first-order IR drop and drift: weights no
 * longer integers): the causal decisions and scores are the non-causal
 * ones restricted to j <= i, bit for bit. */
static void test_causal_static_effects(void) {
  bench b;
  const int n = 40, d = 11;
  setup(&b, n, n, d, 1);
  b.c.xbar.ir_drop = SPR_IR_FIRST_ORDER;
  b.c.xbar.r_wl_ohm = 2.385;
  b.c.xbar.r_bl_ohm = 1.3;
  b.c.xbar.drift = 1;
  b.c.xbar.drift_nu = 0.0385;
  double *work = malloc(3 * (size_t)b.c.xbar.rows * b.c.xbar.cols * sizeof *work);
  CU_ASSERT_EQUAL_FATAL(spr_xbar_program(&b.xb, &b.c.xbar, b.k, NULL, NULL, NULL, work, NULL), 0);
  free(work);
  float *off = malloc(n * sizeof *off);
  for (int j = 0; j < n; j++) off[j] = (float)(0.2385 * ((j * 7) % 11 - 5));
  const size_t rb = spr_mask_row_bytes(n);
  uint8_t *mfull = malloc((size_t)n * rb);
  float *afull = malloc((size_t)n * n * sizeof *afull);
  int64_t kept_full, kept;
  CU_ASSERT_EQUAL_FATAL(spr_analog_decide(&b.c.an, &b.sc, &b.xb, b.q, n, 1.5, off, NULL, NULL,
                                          &b.ws, mfull, afull, &kept_full), 0);
  CU_ASSERT_EQUAL_FATAL(spr_analog_decide_causal(&b.c.an, &b.sc, &b.xb, b.q, n, 0, 1.5, off, NULL,
                                                 NULL, &b.ws, b.mask, b.a, &kept), 0);
  int bad = 0, non_integer = 0;
  int64_t want = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      const int w = j <= i && mask_bit(mfull, n, i, j);
      want += w;
      bad += mask_bit(b.mask, n, i, j) != w;
      if (j <= i) {
        bad += memcmp(&b.a[i * n + j], &afull[i * n + j], sizeof(float)) != 0;
        bad += mask_bit(b.mask, n, i, j) != ((double)b.a[i * n + j] >= 1.5);
        non_integer += afull[i * n + j] - off[j] != floorf(afull[i * n + j] - off[j]);
      } else {
        bad += !isnan(b.a[i * n + j]);
      }
    }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_EQUAL(kept, want);
  CU_ASSERT(want > 100 && want < (int64_t)n * (n + 1) / 2 - 100);
  CU_ASSERT(non_integer > 100); /* the static effects really act */
  free(off);
  free(mfull);
  free(afull);
  teardown(&b);
}

/* Read, comparator noise and offsets on (weights integer, so every GEMM
 * is exact): the causal decisions of row i equal a non-causal decision of
 * query i alone against a head cut to keys 0 .. i (its columns copied),
 * the rows taken in order with the same two streams continuing.  The
 * masks, the recorded scores (near and far), the keep and near counts
 * and the positions of both streams afterwards agree bit for bit: the
 * causal run draws exactly the numbers of the decisions with j <= i, in
 * row-major order, and none for j > i. */
static void check_causal_noise(int n, int d, double theta) {
  bench b;
  setup(&b, n, n, d, 1);
  b.c.an.read_noise = 1;
  b.c.an.read_rel_sigma = 0.0731;
  b.c.an.cmp_noise = 1;
  b.c.an.cmp_noise_sigma_A = 1.3e-7;
  float *off = malloc(n * sizeof *off);
  gsl_rng *ro = spr_rng_alloc();
  spr_rng_key(ro, 2385, 0, 0, 0, SPR_STREAM_CMP_OFFSET);
  for (int j = 0; j < n; j++) off[j] = (float)(1.385 * spr_rng_normal(ro));
  gsl_rng *r1 = spr_rng_alloc(), *f1 = spr_rng_alloc(), *r2 = spr_rng_alloc(), *f2 = spr_rng_alloc();
  spr_rng_key(r1, 2385, 7, 1, 0, SPR_STREAM_READ);
  spr_rng_key(f1, 2385, 7, 1, 0, SPR_STREAM_READ_FAR);
  spr_rng_key(r2, 2385, 7, 1, 0, SPR_STREAM_READ);
  spr_rng_key(f2, 2385, 7, 1, 0, SPR_STREAM_READ_FAR);
  int64_t kept;
  CU_ASSERT_EQUAL_FATAL(spr_analog_decide_causal(&b.c.an, &b.sc, &b.xb, b.q, n, 0, theta, off, r1,
                                                 f1, &b.ws, b.mask, b.a, &kept), 0);
  const int64_t near = b.ws.n_near;
  /* the reference, row by row */
  spr_analog_ws ws1;
  CU_ASSERT_FATAL(spr_analog_ws_alloc(&ws1, 1, n, d) == 0);
  float *wcut = malloc((size_t)d * n * sizeof *wcut), arow[128];
  uint8_t mrow[16];
  int bad = 0;
  int64_t kept_ref = 0, near_ref = 0, n_keep = 0;
  for (int i = 0; i < n; i++) {
    spr_xbar_head cut = b.xb; /* keys 0 .. i: the first i + 1 columns of w */
    cut.n = i + 1;
    for (int t = 0; t < d; t++)
      for (int j = 0; j <= i; j++) wcut[t * (i + 1) + j] = b.xb.w[t * n + j];
    cut.w = wcut;
    int64_t k1;
    CU_ASSERT_EQUAL_FATAL(spr_analog_decide(&b.c.an, &b.sc, &cut, b.q + (size_t)i * d, 1, theta,
                                            off, r2, f2, &ws1, mrow, arow, &k1), 0);
    kept_ref += k1;
    near_ref += ws1.n_near;
    for (int j = 0; j < n; j++) {
      const int got = mask_bit(b.mask, n, i, j);
      n_keep += got;
      if (j <= i) {
        bad += got != (mrow[j / 8] >> (j % 8) & 1);
        bad += memcmp(&b.a[i * n + j], &arow[j], sizeof(float)) != 0;
      } else {
        bad += got != 0 || !isnan(b.a[i * n + j]);
      }
    }
  }
  printf("\n    causal n = %d, d = %d: %lld near, %lld kept of %d causal pairs ", n, d,
         (long long)near, (long long)kept, n * (n + 1) / 2);
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_EQUAL(kept, kept_ref);
  CU_ASSERT_EQUAL(kept, n_keep);
  CU_ASSERT_EQUAL(near, near_ref);
  CU_ASSERT_EQUAL(gsl_rng_get(r1), gsl_rng_get(r2));
  CU_ASSERT_EQUAL(gsl_rng_get(f1), gsl_rng_get(f2));
  /* the check means something: noise drawn, both outcomes */
  CU_ASSERT(near > n / 2);
  CU_ASSERT(kept > n && kept < (int64_t)n * (n + 1) / 2 - n);
  free(wcut);
  spr_analog_ws_free(&ws1);
  free(off);
  gsl_rng_free(ro);
  gsl_rng_free(r1);
  gsl_rng_free(f1);
  gsl_rng_free(r2);
  gsl_rng_free(f2);
  teardown(&b);
}

static void test_causal_noise(void) {
  check_causal_noise(13, 5, 3.5);
  check_causal_noise(40, 8, 13.5);
  check_causal_noise(100, 16, -6.5); /* two GEMM blocks of rows */
}

static void test_causal_errors(void) {
  bench b;
  setup(&b, 12, 12, 6, 1);
  int64_t kept;
  CU_ASSERT_EQUAL(spr_analog_decide_causal(&b.c.an, &b.sc, &b.xb, b.q, 12, -1, 0.0, NULL, NULL,
                                           NULL, &b.ws, b.mask, NULL, &kept), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "causal queries -1 .. 10 outside the head's 12 tokens");
  CU_ASSERT_EQUAL(spr_analog_decide_causal(&b.c.an, &b.sc, &b.xb, b.q, 5, 8, 0.0, NULL, NULL,
                                           NULL, &b.ws, b.mask, NULL, &kept), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "causal queries 8 .. 12 outside");
  CU_ASSERT_EQUAL(spr_analog_decide_causal(&b.c.an, &b.sc, &b.xb, b.q, 5, 7, 0.0, NULL, NULL,
                                           NULL, &b.ws, b.mask, NULL, &kept), 0);
  teardown(&b);
}

/* threshold.mode = analog_keep_rate: one analog score per decided pair,
 * independent of the threshold (spr_analog_scores), the decisions of any
 * threshold from them, and their keep counts per code.  With every effect
 * off the scores are the integer scores plus the offsets; with comparator
 * noise of sigma they are those plus sigma z, z the clamped normals of the
 * stream in row-major order over the decided pairs (causal: j <= i only,
 * NaN beyond), reconstructed here from a second stream with the same key. */
static void test_analog_scores(void) {
  for (int causal = 0; causal < 2; causal++) {
    const int n = 40, d = 9;
    bench b;
    setup(&b, n, n, d, 1);
    float *off = malloc(n * sizeof *off);
    gsl_rng *ro = spr_rng_alloc();
    spr_rng_key(ro, 2385, 0, 0, 0, SPR_STREAM_CMP_OFFSET);
    for (int j = 0; j < n; j++) off[j] = (float)(1.385 * spr_rng_normal(ro));
    gsl_rng_free(ro);
    const int P = causal ? n * (n + 1) / 2 : n * n;
    /* no noise: a = s + o exactly, nothing drawn (NULL stream) */
    CU_ASSERT_EQUAL_FATAL(spr_analog_scores(&b.c.an, &b.sc, &b.xb, b.q, n, causal, 0, off, NULL,
                                            &b.ws, b.a), 0);
    int bad = 0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        const float a = b.a[i * n + j];
        if (causal && j > i) bad += !isnan(a);
        else bad += a != (float)brute_score(&b, i, j) + off[j];
      }
    CU_ASSERT_EQUAL(bad, 0);
    /* comparator noise only: the variance is the constant (sigma / i_unit)^2 */
    b.c.an.cmp_noise = 1;
    b.c.an.cmp_noise_sigma_A = 1.3e-7;
    const float var = (float)pow(1.3e-7 / b.sc.i_unit_A, 2), sd = sqrtf(var);
    gsl_rng *r = spr_rng_alloc(), *r2 = spr_rng_alloc();
    spr_rng_key(r, 2385, 3, 1, 0, SPR_STREAM_READ);
    spr_rng_key(r2, 2385, 3, 1, 0, SPR_STREAM_READ);
    CU_ASSERT_EQUAL_FATAL(spr_analog_scores(&b.c.an, &b.sc, &b.xb, b.q, n, causal, 0, off, r,
                                            &b.ws, b.a), 0);
    float *z = malloc((size_t)P * sizeof *z);
    spr_rng_gaussian(r2, z, (size_t)P);
    double sum = 0, sum2 = 0;
    int k = 0;
    bad = 0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        const float a = b.a[i * n + j];
        if (causal && j > i) {
          bad += !isnan(a);
          continue;
        }
        const float zc = z[k] < -8.0f ? -8.0f : z[k] > 8.0f ? 8.0f : z[k];
        k++;
        const float base = (float)brute_score(&b, i, j) + off[j];
        bad += a != base + sd * zc;
        const double u = ((double)a - base) / sd;
        sum += u;
        sum2 += u * u;
      }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(k, P);
    CU_ASSERT_EQUAL(gsl_rng_get(r), gsl_rng_get(r2)); /* exactly P normals drawn */
    const double mean = sum / P, sdev = sqrt(sum2 / P - mean * mean);
    CU_ASSERT(fabs(mean) < 4 / sqrt((double)P));
    CU_ASSERT(fabs(sdev - 1) < 0.1);
    /* any threshold's decisions are the same draws against it */
    const double thetas[] = {-3.5, 0.0, 4.0};
    for (int t = 0; t < 3; t++) {
      int64_t kept, want = 0;
      CU_ASSERT_EQUAL(spr_analog_mask_from_scores(b.a, n, n, causal, 0, thetas[t], b.mask, &kept), 0);
      bad = 0;
      for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
          const int keep = !(causal && j > i) && (double)b.a[i * n + j] >= thetas[t];
          want += keep;
          bad += mask_bit(b.mask, n, i, j) != keep;
        }
      CU_ASSERT_EQUAL(bad, 0);
      CU_ASSERT_EQUAL(kept, want);
    }
    /* keep counts of every code against brute force; a few scores set
     * exactly on grid levels (range 20, 5 bits: step 1.25) */
    b.a[0] = 2.5f;
    b.a[n + 1] = -1.25f;
    b.a[2 * n] = 0.0f;
    int64_t counts[32] = {0};
    CU_ASSERT_EQUAL(spr_thr_count_scores(b.a, n, n, causal, 0, 20.0, 5, counts), 0);
    bad = 0;
    for (int c = -16; c < 16; c++) {
      const double th = spr_thr_level(c, 20.0, 5);
      int64_t want = 0;
      for (int i = 0; i < n; i++)
        for (int j = 0; j < (causal ? i + 1 : n); j++) want += (double)b.a[i * n + j] >= th;
      bad += counts[c + 16] != want;
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* errors */
    CU_ASSERT_EQUAL(spr_analog_scores(&b.c.an, &b.sc, &b.xb, b.q, n, causal, 0, off, NULL, &b.ws,
                                      b.a), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "noise is on but the score stream is NULL");
    CU_ASSERT_EQUAL(spr_analog_scores(&b.c.an, &b.sc, &b.xb, b.q, n, causal, 0, off, r, &b.ws,
                                      NULL), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "needs a score matrix");
    CU_ASSERT_EQUAL(spr_analog_scores(&b.c.an, &b.sc, &b.xb, b.q, n + 1, causal, 0, off, r, &b.ws,
                                      b.a), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "exceeds workspace");
    CU_ASSERT_EQUAL(spr_analog_scores(&b.c.an, &b.sc, &b.xb, b.q, 5, 1, 36, off, r, &b.ws, b.a),
                    SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "causal queries 36 .. 40 outside the head's 40 tokens");
    free(z);
    free(off);
    gsl_rng_free(r);
    gsl_rng_free(r2);
    teardown(&b);
  }
}

int main(void) {
  CU_TestInfo tests[] = {{"analog scores independent of the threshold, their counts", test_analog_scores},{"threshold generator grid", test_threshold_grid},
                         {"keep counts and pick vs brute force", test_threshold_count},
                         {"ideal decisions equal brute force", test_ideal_decisions},
                         {"read and comparator noise statistics", test_read_noise_statistics},
                         {"comparator offsets", test_comparator_offsets},
                         {"DAC gain statistics", test_dac_gains},
                         {"score unit scale", test_scale},
                         {"near and far decisions", test_near_far},
                         {"nonlinear cells: direct sum of G V0 sinh(V/V0)", test_nonlinear_cells},
                         {"thermal excess factor", test_thermal_excess},
                         {"noise with nonlinear cells and excess factor", test_nonlinear_noise},
                         {"error paths", test_errors},
                         {"causal keep counts vs brute force", test_threshold_count_causal},
                         {"causal ideal decisions equal brute force", test_causal_ideal_decisions},
                         {"causal decisions with static effects: non-causal rows restricted", test_causal_static_effects},
                         {"causal noise: rows equal decisions against cut heads", test_causal_noise},
                         {"causal error paths", test_causal_errors},
                         CU_TEST_INFO_NULL};
  return spr_test_run("analog", tests);
}
