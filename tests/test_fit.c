/* test_fit.c - the least-squares fits of calibration/spr_fit.c: every fit
 * recovers the parameters of data generated with them (plus seeded noise)
 * within its reported 95% interval; the intervals' coverage over many
 * seeded data sets is 95% within binomial bounds; the IR-drop scales
 * against the exact nodal solver; every error path. */
#include "config.h"
#include "spr_error.h"
#include "spr_fit.h"
#include "spr_nodal.h"
#include "spr_rng.h"
#include "spr_test.h"
#include "spr_xbar.h"

#include <gsl/gsl_randist.h>
#include <math.h>

static gsl_rng *rng(uint64_t seed) {
  gsl_rng *r = spr_rng_alloc();
  spr_rng_key(r, seed, 0, 0, 0, 77);
  return r;
}

/* One data set: |est - truth| within twice the reported 95% half-width,
 * a two-sided interval of at least 99.8% for dof >= 10, so each check
 * fails by chance with p < 0.002 (about 4 standard errors).  The 95%
 * level itself is checked by the coverage tests over 300 data sets. */
#define IN_CI(res, k, truth)                                                               \
  do {                                                                                     \
    const double e_ = (res).param[k], c_ = 2 * (res).ci95[k], t_ = (truth);                \
    if (!(fabs(e_ - t_) <= c_))                                                            \
      fprintf(stderr, "\n  %s.%s = %.6g +- %.3g (95%%), truth %.6g", (res).model,          \
              (res).name[k], e_, c_ / 2, t_);                                              \
    CU_ASSERT(fabs(e_ - t_) <= c_);                                                        \
  } while (0)

/* --- generic nonlinear: y = A exp(-x / tau) + B ------------------------------ */

static int exp_eval(const double *b, void *ctx, size_t n, double *f, double *J) {
  const double *x = ctx;
  for (size_t i = 0; i < n; i++) {
    const double e = exp(-x[i] / b[1]);
    f[i] = b[0] * e + b[2];
    if (J) {
      J[3 * i] = e;
      J[3 * i + 1] = b[0] * e * x[i] / (b[1] * b[1]);
      J[3 * i + 2] = 1;
    }
  }
  return 0;
}

static const char *const exp_names[] = {"A", "tau", "B"};
static const spr_fit_model exp_model = {"exp_decay", 3, exp_names, exp_eval};

static void test_nonlinear_recovers(void) {
  enum { N = 40 };
  double x[N], y[N], sig[N];
  gsl_rng *r = rng(2385);
  const double A = 2.385, tau = 1.7, B = 0.31, s = 0.02;
  for (int i = 0; i < N; i++) {
    x[i] = 0.2 * i;
    sig[i] = s;
    y[i] = A * exp(-x[i] / tau) + B + gsl_ran_gaussian(r, s);
  }
  spr_fit_result res;
  const double b0[3] = {1, 1, 0};
  CU_ASSERT_EQUAL_FATAL(spr_fit_nonlinear(&exp_model, x, y, NULL, N, b0, NULL, &res), 0);
  IN_CI(res, 0, A);
  IN_CI(res, 1, tau);
  IN_CI(res, 2, B);
  CU_ASSERT_STRING_EQUAL(res.model, "exp_decay");
  CU_ASSERT_STRING_EQUAL(res.name[1], "tau");
  CU_ASSERT_EQUAL(res.dof, N - 3);
  CU_ASSERT(res.iterations > 0);
  CU_ASSERT(res.converged == 1 || res.converged == 2);
  CU_ASSERT(res.r2 > 0.99);
  /* the residual RMS estimates the noise: within 4 sigma of its spread */
  CU_ASSERT(fabs(res.rms / s - 1) < 4 / sqrt(2.0 * N));
  /* with absolute sigmas, chi2/dof is about 1 and the covariance unscaled */
  spr_fit_opts o;
  spr_fit_opts_default(&o);
  o.sigma_abs = 1;
  spr_fit_result ra;
  CU_ASSERT_EQUAL_FATAL(spr_fit_nonlinear(&exp_model, x, y, sig, N, b0, &o, &ra), 0);
  CU_ASSERT(fabs(ra.chi2_dof - 1) < 4 * sqrt(2.0 / ra.dof));
  CU_ASSERT_DOUBLE_EQUAL(ra.param[1], res.param[1], 1e-6 * tau);
  CU_ASSERT_DOUBLE_EQUAL(ra.cov[4] * ra.chi2_dof, res.cov[4], 1e-6 * res.cov[4]);
  /* the same data in other units (x 1e-6): the same relative answer */
  double yu[N];
  for (int i = 0; i < N; i++) yu[i] = y[i] * 1e-6;
  const double b0u[3] = {1e-6, 1, 0};
  spr_fit_result ru;
  CU_ASSERT_EQUAL_FATAL(spr_fit_nonlinear(&exp_model, x, yu, NULL, N, b0u, NULL, &ru), 0);
  CU_ASSERT_DOUBLE_EQUAL(ru.param[1], res.param[1], 1e-6 * tau);
  CU_ASSERT_DOUBLE_EQUAL(ru.ci95[0], res.ci95[0] * 1e-6, 1e-4 * res.ci95[0] * 1e-6);
  gsl_rng_free(r);
}

/* Over 300 seeded data sets each 95% interval holds the truth in 95% of
 * them: the observed rate is within 3 binomial sigma (0.0126) of 0.95. */
static void test_nonlinear_coverage(void) {
  enum { N = 25, TRIALS = 300 };
  double x[N], y[N];
  gsl_rng *r = rng(7);
  const double A = 2.385, tau = 1.7, B = 0.31, s = 0.05, truth[3] = {A, tau, B};
  int hit[3] = {0, 0, 0};
  for (int t = 0; t < TRIALS; t++) {
    for (int i = 0; i < N; i++) {
      x[i] = 0.25 * i;
      y[i] = A * exp(-x[i] / tau) + B + gsl_ran_gaussian(r, s);
    }
    spr_fit_result res;
    const double b0[3] = {1, 1, 0};
    CU_ASSERT_EQUAL_FATAL(spr_fit_nonlinear(&exp_model, x, y, NULL, N, b0, NULL, &res), 0);
    for (int k = 0; k < 3; k++) hit[k] += fabs(res.param[k] - truth[k]) <= res.ci95[k];
  }
  const double bound = 3 * sqrt(0.95 * 0.05 / TRIALS);
  for (int k = 0; k < 3; k++) {
    const double cov = (double)hit[k] / TRIALS;
    if (fabs(cov - 0.95) > bound) fprintf(stderr, "\n  coverage of %s: %.3f", exp_names[k], cov);
    CU_ASSERT(fabs(cov - 0.95) <= bound);
  }
  gsl_rng_free(r);
}

static void test_nonlinear_errors(void) {
  double x[5] = {0, 1, 2, 3, 4}, y[5] = {3, 2, 1.4, 1.1, 0.9}, sig[5] = {1, 1, 0, 1, 1};
  const double b0[3] = {1, 1, 0};
  spr_fit_result res;
  /* too few points: 3 for 3 parameters */
  CU_ASSERT_EQUAL(spr_fit_nonlinear(&exp_model, x, y, NULL, 3, b0, NULL, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "exp_decay: 3 data points for 3 parameters");
  y[2] = NAN;
  CU_ASSERT_EQUAL(spr_fit_nonlinear(&exp_model, x, y, NULL, 5, b0, NULL, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "exp_decay: y[2] = nan is not finite");
  y[2] = 1.4;
  CU_ASSERT_EQUAL(spr_fit_nonlinear(&exp_model, x, y, sig, 5, b0, NULL, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "sigma[2] = 0 is not > 0");
  /* non-convergence: one iteration from far away */
  spr_fit_opts o;
  spr_fit_opts_default(&o);
  o.max_iter = 1;
  const double far[3] = {100, 0.01, 50};
  CU_ASSERT_EQUAL(spr_fit_nonlinear(&exp_model, x, y, NULL, 5, far, &o, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "exp_decay: did not converge after 1 iterations");
  /* a parameter the data cannot see: B and a constant A e^0 at x = 0 only */
  double x0[5] = {0, 0, 0, 0, 0};
  CU_ASSERT_EQUAL(spr_fit_nonlinear(&exp_model, x0, y, NULL, 5, b0, NULL, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "exp_decay");
}

/* --- linear and Gaussian ---------------------------------------------------------- */

static void test_linear(void) {
  enum { N = 60, TRIALS = 300 };
  double X[2 * N], y[N];
  gsl_rng *r = rng(11);
  int hit[2] = {0, 0};
  spr_fit_result res;
  for (int t = 0; t < TRIALS; t++) {
    for (int i = 0; i < N; i++) {
      X[2 * i] = 1;
      X[2 * i + 1] = -3 + 0.1 * i;
      y[i] = 2.385 - 0.731 * X[2 * i + 1] + gsl_ran_gaussian(r, 0.1);
    }
    CU_ASSERT_EQUAL_FATAL(spr_fit_linear("line", NULL, X, y, NULL, N, 2, NULL, &res), 0);
    hit[0] += fabs(res.param[0] - 2.385) <= res.ci95[0];
    hit[1] += fabs(res.param[1] + 0.731) <= res.ci95[1];
  }
  const double bound = 3 * sqrt(0.95 * 0.05 / TRIALS);
  CU_ASSERT(fabs(hit[0] / (double)TRIALS - 0.95) <= bound);
  CU_ASSERT(fabs(hit[1] / (double)TRIALS - 0.95) <= bound);
  CU_ASSERT_STRING_EQUAL(res.name[1], "b1");
  CU_ASSERT_EQUAL(res.iterations, 0);
  CU_ASSERT_EQUAL(res.converged, 0);
  CU_ASSERT(res.r2 > 0.99 && res.r2 <= 1);
  /* the CI against the textbook slope interval t s / sqrt(Sxx) */
  double sxx = 0, xb = 0;
  for (int i = 0; i < N; i++) xb += X[2 * i + 1] / N;
  for (int i = 0; i < N; i++) sxx += pow(X[2 * i + 1] - xb, 2);
  const double s = sqrt(res.chi2 / (N - 2));
  CU_ASSERT_DOUBLE_EQUAL(res.ci95[1], 2.0017 * s / sqrt(sxx), 1e-3 * res.ci95[1]);
  /* a rank-deficient design: two equal columns */
  for (int i = 0; i < N; i++) X[2 * i] = X[2 * i + 1];
  CU_ASSERT_EQUAL(spr_fit_linear("line", NULL, X, y, NULL, N, 2, NULL, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "line: the design has rank 1 < 2");
  X[7] = INFINITY;
  CU_ASSERT_EQUAL(spr_fit_linear("line", NULL, X, y, NULL, N, 2, NULL, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "design matrix[7] = inf");
  CU_ASSERT_EQUAL(spr_fit_linear("line", NULL, X, y, NULL, 2, 2, NULL, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "2 data points for 2 parameters");
  gsl_rng_free(r);
}

static void test_gaussian(void) {
  enum { N = 400, TRIALS = 300 };
  double x[N];
  gsl_rng *r = rng(13);
  int hm = 0, hs = 0;
  spr_fit_gauss g;
  for (int t = 0; t < TRIALS; t++) {
    for (int i = 0; i < N; i++) x[i] = 1.5 + gsl_ran_gaussian(r, 0.3);
    CU_ASSERT_EQUAL_FATAL(spr_fit_gaussian("g", x, N, &g), 0);
    hm += fabs(g.mean - 1.5) <= g.mean_ci95;
    hs += g.sigma_lo <= 0.3 && 0.3 <= g.sigma_hi;
  }
  const double bound = 3 * sqrt(0.95 * 0.05 / TRIALS);
  CU_ASSERT(fabs(hm / (double)TRIALS - 0.95) <= bound);
  CU_ASSERT(fabs(hs / (double)TRIALS - 0.95) <= bound);
  CU_ASSERT(g.sigma_lo < g.sigma && g.sigma < g.sigma_hi);
  CU_ASSERT(g.ppcc > 0.995);
  /* uniform samples are visibly not Gaussian (PPCC about 0.98) */
  for (int i = 0; i < N; i++) x[i] = gsl_rng_uniform(r);
  spr_fit_gauss u;
  CU_ASSERT_EQUAL(spr_fit_gaussian("u", x, N, &u), 0);
  CU_ASSERT(u.ppcc < 0.99);
  CU_ASSERT_EQUAL(spr_fit_gaussian("g", x, 2, &g), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "g: 2 samples (need at least 3)");
  x[1] = NAN;
  CU_ASSERT_EQUAL(spr_fit_gaussian("g", x, 5, &g), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "sample[1] = nan");
  for (int i = 0; i < 5; i++) x[i] = 2.5;
  CU_ASSERT_EQUAL(spr_fit_gaussian("g", x, 5, &g), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "no spread");
  gsl_rng_free(r);
}

/* --- the calibration's fits --------------------------------------------------------- */

static void test_cell_iv(void) {
  enum { N = 41 };
  double V[N], I[N];
  gsl_rng *r = rng(17);
  const double G = 7.3e-5, V0 = 0.2385, noise = 0.002 * G * V0 * sinh(0.4 / V0);
  for (int i = 0; i < N; i++) {
    V[i] = -0.4 + 0.02 * i;
    I[i] = G * V0 * sinh(V[i] / V0) + gsl_ran_gaussian(r, noise);
  }
  spr_fit_result res;
  CU_ASSERT_EQUAL_FATAL(spr_fit_cell_iv(V, I, N, 0, &res), 0);
  CU_ASSERT_STRING_EQUAL(res.name[0], "G");
  CU_ASSERT_STRING_EQUAL(res.name[1], "V0");
  IN_CI(res, 0, G);
  IN_CI(res, 1, V0);
  CU_ASSERT(res.ci95[1] < 0.02 * V0); /* and the interval is informative */
  CU_ASSERT(fabs(res.rms / noise - 1) < 4 / sqrt(2.0 * N));
  /* G fixed: V0 alone, a narrower interval */
  spr_fit_result r1;
  CU_ASSERT_EQUAL_FATAL(spr_fit_cell_iv(V, I, N, G, &r1), 0);
  CU_ASSERT_EQUAL(r1.p, 1);
  IN_CI(r1, 0, V0);
  CU_ASSERT(r1.ci95[0] < res.ci95[1]);
  /* linear cells: V0 unbounded, refused; the curvature test is one-sided
   * at 97.5%, so over 200 linear data sets at most 2.5% + 3 binomial
   * sigma (5.8%) may pass by chance */
  int accepted = 0, refused_msg = 0;
  for (int t = 0; t < 200; t++) {
    for (int i = 0; i < N; i++) I[i] = G * V[i] + gsl_ran_gaussian(r, 1e-3 * G * 0.4);
    int rc = spr_fit_cell_iv(V, I, N, 0, &res);
    accepted += rc == 0;
    if (rc == SPR_EINVAL && strstr(spr_errmsg(), "not significantly above 0") &&
        strstr(spr_errmsg(), "crossbar.cell_v0 = 0"))
      refused_msg++;
    else if (rc)
      fprintf(stderr, "\n  linear data set %d: %s", t, spr_errmsg());
  }
  CU_ASSERT(accepted <= 11);
  CU_ASSERT_EQUAL(accepted + refused_msg, 200);
  CU_ASSERT_EQUAL(spr_fit_cell_iv(V, I, 2, 0, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cell_iv: 2 data points for 2 parameters");
  I[4] = NAN;
  CU_ASSERT_EQUAL(spr_fit_cell_iv(V, I, N, 0, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cell_iv: I[4] = nan");
  gsl_rng_free(r);
}

/* Random arrays, inputs and currents of the first-order model with known
 * scales plus noise: the fit recovers the scales. */
static void fill_arrays(gsl_rng *r, double *G, double *V, int K, int R, int C, int M) {
  for (int k = 0; k < K * R * C; k++) G[k] = 1e-6 + 99e-6 * gsl_rng_uniform(r);
  for (int k = 0; k < K * M * R; k++) V[k] = 0.2 * (2 * gsl_rng_uniform(r) - 1);
}

static void currents(const double *Ge, const double *V, int R, int C, int M, double *I) {
  for (int m = 0; m < M; m++)
    for (int j = 0; j < C; j++) {
      double s = 0;
      for (int i = 0; i < R; i++) s += V[m * R + i] * Ge[i * C + j];
      I[m * C + j] = s;
    }
}

static void test_ir_alpha_synthetic(void) {
  enum { K = 3, R = 12, C = 10, M = 6 };
  static double G[K * R * C], V[K * M * R], I[K * M * C], ge[R * C], work[R * C];
  gsl_rng *r = rng(19);
  fill_arrays(r, G, V, K, R, C, M);
  const double rw = 2.5, rb = 3.1, aw = 0.83, ab = 1.17;
  double drop = 0;
  for (int k = 0; k < K; k++) {
    spr_xbar_ir_first_order(G + k * R * C, R, C, aw * rw, ab * rb, ge, work);
    currents(ge, V + k * M * R, R, C, M, I + k * M * C);
  }
  for (int k = 0; k < K * M * C; k++) drop = fmax(drop, fabs(I[k]));
  for (int k = 0; k < K * M * C; k++) I[k] += gsl_ran_gaussian(r, 1e-4 * drop);
  spr_fit_result res;
  CU_ASSERT_EQUAL_FATAL(spr_fit_ir_alpha(G, R, C, K, V, M, I, rw, rb, &res), 0);
  IN_CI(res, 0, aw);
  IN_CI(res, 1, ab);
  CU_ASSERT_STRING_EQUAL(res.name[0], "alpha_wl");
  CU_ASSERT_EQUAL(res.n, (size_t)K * M * C);
  CU_ASSERT_EQUAL(spr_fit_ir_alpha(G, R, C, K, V, M, I, 0, rb, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "ir_alpha: r_wl 0");
  G[5] = -1e-6;
  CU_ASSERT_EQUAL(spr_fit_ir_alpha(G, R, C, K, V, M, I, rw, rb, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "G[5] = -1e-06 S is negative");
  gsl_rng_free(r);
}

/* Against the exact nodal solution: the first-order model is exact to
 * first order, so the fitted scales tend to 1 as r G falls; the neglected
 * second-order terms raise the exact current (1/(1+x) > 1 - x), so the
 * scales fall below 1 as the wires get worse. */
static void test_ir_alpha_nodal(void) {
  enum { K = 2, R = 16, C = 16, M = 4 };
  static double G[K * R * C], V[K * M * R], I[K * M * C], ge[R * C];
  gsl_rng *r = rng(23);
  fill_arrays(r, G, V, K, R, C, M);
  int err = 0;
  spr_nodal_ws *ws = spr_nodal_ws_alloc(R, C, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ws);
  const double rs[2] = {0.25, 4.0};
  double a[2][2];
  for (int t = 0; t < 2; t++) {
    for (int k = 0; k < K; k++) {
      double bound;
      CU_ASSERT_EQUAL_FATAL(spr_nodal_effective(G + k * R * C, R, C, rs[t], rs[t], ge, &bound, ws), 0);
      currents(ge, V + k * M * R, R, C, M, I + k * M * C);
    }
    spr_fit_result res;
    CU_ASSERT_EQUAL_FATAL(spr_fit_ir_alpha(G, R, C, K, V, M, I, rs[t], rs[t], &res), 0);
    a[t][0] = res.param[0];
    a[t][1] = res.param[1];
  }
  CU_ASSERT(fabs(a[0][0] - 1) < 0.01 && fabs(a[0][1] - 1) < 0.01);
  CU_ASSERT(a[1][0] < a[0][0] && a[1][1] < a[0][1]);
  CU_ASSERT(a[1][0] < 0.99 || a[1][1] < 0.99); /* the second order is visible at 4 ohm */
  spr_nodal_ws_free(ws);
  gsl_rng_free(r);
}

static void test_read_noise(void) {
  enum { N = 50 };
  double var[N], th[N], sh[N], rel[N];
  gsl_rng *r = rng(29);
  const double F = 1.37, s2 = 0.02 * 0.02, kTB = 4 * 1.380649e-23 * 300 * 1e8;
  for (int i = 0; i < N; i++) {
    const double gsum = 1e-5 + 1e-3 * gsl_rng_uniform(r), v = 0.2 * gsl_rng_uniform(r);
    th[i] = kTB * gsum;
    sh[i] = 2 * 1.602176634e-19 * 1e8 * v * gsum;
    /* the relative term from 0 to twice the thermal one, so both matter */
    rel[i] = 2 * gsl_rng_uniform(r) * th[i] / s2;
    var[i] = (F * th[i] + sh[i] + s2 * rel[i]) * (1 + gsl_ran_gaussian(r, 0.01));
  }
  spr_fit_result res;
  CU_ASSERT_EQUAL_FATAL(spr_fit_read_noise(var, th, sh, rel, N, 1, &res), 0);
  IN_CI(res, 0, F);
  IN_CI(res, 1, s2);
  CU_ASSERT_STRING_EQUAL(res.name[1], "read_rel_sigma2");
  /* thermal only */
  for (int i = 0; i < N; i++) var[i] = (F * th[i] + sh[i]) * (1 + gsl_ran_gaussian(r, 0.01));
  CU_ASSERT_EQUAL_FATAL(spr_fit_read_noise(var, th, sh, NULL, N, 0, &res), 0);
  IN_CI(res, 0, F);
  /* a negative relative term is no physics */
  for (int i = 0; i < N; i++) var[i] = F * th[i] + sh[i] - 0.5 * s2 * rel[i];
  CU_ASSERT_EQUAL(spr_fit_read_noise(var, th, sh, rel, N, 1, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "is negative");
  CU_ASSERT_EQUAL(spr_fit_read_noise(var, th, sh, NULL, N, 1, &res), SPR_EINVAL);
  var[3] = -1e-20;
  CU_ASSERT_EQUAL(spr_fit_read_noise(var, th, sh, NULL, N, 0, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "measured variance[3]");
  gsl_rng_free(r);
}

static void test_noise_psd(void) {
  enum { N = 30 };
  double f[N], S[N];
  gsl_rng *r = rng(31);
  const double Sw = 4e-24, Kf = 3e-18; /* corner at 750 kHz */
  for (int i = 0; i < N; i++) {
    f[i] = 1e3 * pow(10, 6.0 * i / (N - 1));
    S[i] = (Sw + Kf / f[i]) * (1 + gsl_ran_gaussian(r, 0.02));
  }
  spr_fit_result res;
  double sig, ci;
  CU_ASSERT_EQUAL_FATAL(spr_fit_noise_psd(f, S, N, 1e3, 1e8, &res, &sig, &ci), 0);
  IN_CI(res, 0, Sw);
  IN_CI(res, 1, Kf);
  const double want = sqrt(Sw * (1e8 - 1e3) + Kf * log(1e5));
  CU_ASSERT(fabs(sig - want) <= 2 * ci);
  CU_ASSERT(ci < 0.05 * want);
  CU_ASSERT_EQUAL(spr_fit_noise_psd(f, S, N, 1e8, 1e3, &res, &sig, &ci), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "noise_psd: band");
  f[0] = 0;
  CU_ASSERT_EQUAL(spr_fit_noise_psd(f, S, N, 1e3, 1e8, &res, &sig, &ci), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "frequency[0] = 0 is not > 0");
  gsl_rng_free(r);
}

static void test_comparator(void) {
  enum { N = 500, M = 25 };
  double trip[N], od[M], td[M], e[N];
  gsl_rng *r = rng(37);
  const double nom = 1.89e-6, mu = 2.5e-9, sd = 2e-8;
  for (int i = 0; i < N; i++) trip[i] = nom + mu + gsl_ran_gaussian(r, sd);
  spr_fit_gauss g;
  CU_ASSERT_EQUAL_FATAL(spr_fit_cmp_offset(trip, N, nom, &g), 0);
  CU_ASSERT(fabs(g.mean - mu) <= 2 * g.mean_ci95);
  CU_ASSERT(g.sigma - 2 * (g.sigma - g.sigma_lo) <= sd && sd <= g.sigma + 2 * (g.sigma_hi - g.sigma));
  /* delay t0 + q / I_od over three decades of overdrive, 2% scatter */
  const double t0 = 45e-12, q = 2.2e-15;
  for (int i = 0; i < M; i++) {
    od[i] = 1e-8 * pow(10, 3.0 * i / (M - 1));
    td[i] = (t0 + q / od[i]) * (1 + gsl_ran_gaussian(r, 0.02));
  }
  spr_fit_result res;
  CU_ASSERT_EQUAL_FATAL(spr_fit_cmp_delay(od, td, M, &res), 0);
  IN_CI(res, 0, t0);
  IN_CI(res, 1, q);
  /* energy per decision */
  for (int i = 0; i < N; i++) e[i] = 48e-15 + gsl_ran_gaussian(r, 3e-15);
  CU_ASSERT_EQUAL_FATAL(spr_fit_cmp_energy(e, N, &g), 0);
  CU_ASSERT(fabs(g.mean - 48e-15) <= 2 * g.mean_ci95);
  /* errors */
  od[2] = -1e-9;
  CU_ASSERT_EQUAL(spr_fit_cmp_delay(od, td, M, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cmp_delay: overdrive[2] = -1e-09 is not > 0");
  od[2] = 1e-8;
  for (int i = 0; i < M; i++) td[i] = 1e-10 - 1e-19 / od[i]; /* faster at low overdrive */
  CU_ASSERT_EQUAL(spr_fit_cmp_delay(od, td, M, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "trip charge");
  CU_ASSERT_EQUAL(spr_fit_cmp_offset(trip, 2, nom, &g), SPR_EINVAL);
  trip[9] = INFINITY;
  CU_ASSERT_EQUAL(spr_fit_cmp_offset(trip, N, nom, &g), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "trip current[9] = inf");
  for (int i = 0; i < N; i++) e[i] = -1e-15 + gsl_ran_gaussian(r, 1e-16);
  CU_ASSERT_EQUAL(spr_fit_cmp_energy(e, N, &g), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "not > 0");
  gsl_rng_free(r);
}

static void test_mac_energy(void) {
  enum { N = 12 };
  double nm[N], E[N];
  gsl_rng *r = rng(41);
  const double em = 0.1e-12, e0 = 2.385e-12;
  for (int i = 0; i < N; i++) {
    const int rows = 16 << (i % 4), cols = 16 << (i / 4);
    nm[i] = (double)rows * cols;
    E[i] = (em * nm[i] + e0) * (1 + gsl_ran_gaussian(r, 0.01));
  }
  spr_fit_result res;
  CU_ASSERT_EQUAL_FATAL(spr_fit_mac_energy(nm, E, N, &res), 0);
  IN_CI(res, 0, em);
  IN_CI(res, 1, e0);
  CU_ASSERT_STRING_EQUAL(res.name[0], "e_mac");
  E[0] = 0;
  CU_ASSERT_EQUAL(spr_fit_mac_energy(nm, E, N, &res), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "read energy[0] = 0 is not > 0");
  gsl_rng_free(r);
}

int main(void) {
  CU_TestInfo tests[] = {{"nonlinear fit recovers known parameters", test_nonlinear_recovers},
                         {"nonlinear 95% intervals cover 95%", test_nonlinear_coverage},
                         {"nonlinear errors and non-convergence", test_nonlinear_errors},
                         {"linear fit: coverage, textbook interval, rank", test_linear},
                         {"Gaussian fit: coverage of mean and sigma, PPCC", test_gaussian},
                         {"cell I-V: G V0 sinh(V/V0)", test_cell_iv},
                         {"IR-drop scales from first-order data", test_ir_alpha_synthetic},
                         {"IR-drop scales against the nodal solver", test_ir_alpha_nodal},
                         {"read noise: excess factor and relative term", test_read_noise},
                         {"noise density white + 1/f, integrated", test_noise_psd},
                         {"comparator offset, delay, energy", test_comparator},
                         {"energy per in-memory MAC", test_mac_energy},
                         CU_TEST_INFO_NULL};
  return spr_test_run("fit", tests);
}
