/* test_nodal.c - exact nodal IR drop (crossbar/spr_nodal.c) against
 * independent computations: a dense GSL LU nodal solve written here, the
 * 1 x 1 closed form, the first-order model written here, and the
 * decoupled single-line limits. */
#include "config.h"
#include "spr_error.h"
#include "spr_nodal.h"
#include "spr_test.h"
#include "spr_nodal_ref.h"

#include <gsl/gsl_linalg.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <time.h>


/* First-order model (spr_xbar.h), written out directly:
 *   Geff = G (1 - r_wl A - r_bl B),
 *   A_ij = sum_{k<=j} sum_{l>=k} G_il,  B_ij = sum_{k>=i} sum_{m<=k} G_mj */
static void first_order(const double *g, int R, int C, double rwl, double rbl, double *geff) {
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) {
      double a = 0, b = 0;
      for (int k = 0; k <= j; k++)
        for (int l = k; l < C; l++) a += g[i * C + l];
      for (int k = i; k < R; k++)
        for (int m = 0; m <= k; m++) b += g[m * C + j];
      geff[i * C + j] = g[i * C + j] * (1 - rwl * a - rbl * b);
    }
}

static void random_g(gsl_rng *r, double *g, int n) {
  for (int k = 0; k < n; k++) g[k] = 1.3e-6 + gsl_rng_uniform(r) * 97.7e-6;
}

/* Geff from the dense solve, one unit source per row. */
static void dense_geff(const double *g, int R, int C, double rwl, double rbl, double *ge) {
  double v[R], ic[C];
  for (int i = 0; i < R; i++) {
    for (int k = 0; k < R; k++) v[k] = k == i ? 1 : 0;
    spr_ref_nodal(g, R, C, rwl, rbl, v, ic);
    for (int j = 0; j < C; j++) ge[i * C + j] = ic[j];
  }
}

/* Random 8x8, 16x16 (and non-square) arrays, several wire resistances:
 * the effective matrix reproduces the dense solve's column currents for
 * unit and random inputs within 1e-9 relative, and err_bound is small and
 * covers the observed error. */
static void test_vs_dense(void) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 2385);
  const int shapes[][2] = {{8, 8}, {16, 16}, {5, 11}, {13, 3}};
  const double rs[][2] = {{0.37, 0.52}, {2.385, 1.7}, {10.3, 23.9}, {150.0, 80.0}};
  int err;
  spr_nodal_ws *ws = spr_nodal_ws_alloc(16, 16, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ws);
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
    const int R = shapes[s][0], C = shapes[s][1];
    double g[R * C], ge[R * C], gd[R * C], v[R], ic[C];
    random_g(r, g, R * C);
    for (size_t t = 0; t < sizeof rs / sizeof *rs; t++) {
      double eb = -1;
      CU_ASSERT_EQUAL_FATAL(spr_nodal_effective(g, R, C, rs[t][0], rs[t][1], ge, &eb, ws), 0);
      dense_geff(g, R, C, rs[t][0], rs[t][1], gd);
      double worst = 0, gmax = 0;
      for (int k = 0; k < R * C; k++) gmax = fmax(gmax, gd[k]);
      for (int k = 0; k < R * C; k++) worst = fmax(worst, fabs(ge[k] - gd[k]) / gd[k]);
      /* random signed input */
      for (int i = 0; i < R; i++) v[i] = 0.2 * (2 * gsl_rng_uniform(r) - 1);
      spr_ref_nodal(g, R, C, rs[t][0], rs[t][1], v, ic);
      double werr = 0, imax = 0;
      for (int j = 0; j < C; j++) {
        double i1 = 0;
        for (int i = 0; i < R; i++) i1 += v[i] * ge[i * C + j];
        werr = fmax(werr, fabs(i1 - ic[j]));
        imax = fmax(imax, fabs(ic[j]));
      }
      if (worst > 1e-9 || werr > 1e-9 * imax || !(eb >= 0 && eb < 1e-9))
        fprintf(stderr, "\n  %dx%d r=%g,%g: elementwise %.2e current %.2e bound %.2e\n", R, C,
                rs[t][0], rs[t][1], worst, werr / imax, eb);
      CU_ASSERT(worst < 1e-9);
      CU_ASSERT(werr < 1e-9 * imax);
      CU_ASSERT(eb >= 0 && eb < 1e-9);
      /* the IR drop is real here: Geff differs from G */
      double drop = 0;
      for (int k = 0; k < R * C; k++) drop = fmax(drop, (g[k] - ge[k]) / g[k]);
      CU_ASSERT(drop > 1e-6);
    }
  }
  spr_nodal_ws_free(ws);
  gsl_rng_free(r);
}

/* 1 x 1: Geff = G / (1 + G (r_wl + r_bl)). */
static void test_closed_form(void) {
  spr_nodal_ws *ws = spr_nodal_ws_alloc(1, 1, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ws);
  const double gs[] = {7.3e-5, 2.385e-3, 0.41};
  for (int t = 0; t < 3; t++) {
    double g = gs[t], ge, eb;
    CU_ASSERT_EQUAL(spr_nodal_effective(&g, 1, 1, 3.1, 4.7, &ge, &eb, ws), 0);
    double exact = g / (1 + g * 7.8);
    CU_ASSERT(fabs(ge - exact) <= 4 * DBL_EPSILON * exact);
    if (!(eb < 1e-13)) fprintf(stderr, "\n  1x1 g=%g bound %.2e\n", g, eb);
    CU_ASSERT(eb < 1e-13);
    /* one wire ideal */
    CU_ASSERT_EQUAL(spr_nodal_effective(&g, 1, 1, 0, 4.7, &ge, &eb, ws), 0);
    CU_ASSERT(fabs(ge - g / (1 + g * 4.7)) <= 4 * DBL_EPSILON * ge);
    CU_ASSERT_EQUAL(spr_nodal_effective(&g, 1, 1, 3.1, 0, &ge, &eb, ws), 0);
    CU_ASSERT(fabs(ge - g / (1 + g * 3.1)) <= 4 * DBL_EPSILON * ge);
  }
  spr_nodal_ws_free(ws);
}

/* Small r: |exact - first order| shrinks as r^2 (second-order agreement)
 * while the drop itself shrinks as r. */
static void test_vs_first_order(void) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 77);
  const int R = 12, C = 9;
  double g[R * C], ge[R * C], g1[R * C];
  random_g(r, g, R * C);
  spr_nodal_ws *ws = spr_nodal_ws_alloc(R, C, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ws);
  double err_prev = 0, drop_prev = 0;
  for (int t = 0; t < 4; t++) {
    const double rw = 8.1 / pow(4, t), rb = 5.3 / pow(4, t);
    CU_ASSERT_EQUAL_FATAL(spr_nodal_effective(g, R, C, rw, rb, ge, NULL, ws), 0);
    first_order(g, R, C, rw, rb, g1);
    double err = 0, drop = 0;
    for (int k = 0; k < R * C; k++) {
      err = fmax(err, fabs(g1[k] - ge[k]) / g[k]);
      drop = fmax(drop, fabs(g[k] - ge[k]) / g[k]);
    }
    /* the neglected terms are second order: below 2 drop^2 here */
    if (!(err < 2 * drop * drop)) fprintf(stderr, "\n  t=%d err %.3e drop %.3e\n", t, err, drop);
    CU_ASSERT(err < 2 * drop * drop);
    CU_ASSERT(err > 0.1 * drop * drop); /* and not smaller: the solver sees them */
    if (t > 0) {
      const double q = err_prev / err, qd = drop_prev / drop;
      CU_ASSERT(qd > 3.8 && qd < 4.2);
      if (!(q > 14 && q < 18)) fprintf(stderr, "\n  t=%d ratio %.3f\n", t, q);
      CU_ASSERT(q > 14 && q < 18); /* r / 4 -> error / 16 */
    }
    err_prev = err;
    drop_prev = drop;
  }
  spr_nodal_ws_free(ws);
  gsl_rng_free(r);
}

/* Zero wire resistances: both zero gives G exactly; one zero matches the
 * full solver at a tiny (but nonzero) resistance on that wire. */
static void test_zero_wires(void) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 5);
  const int R = 7, C = 6;
  double g[R * C], ge[R * C], gn[R * C], eb;
  random_g(r, g, R * C);
  g[3] = 0; /* an unprogrammed (open) cell */
  spr_nodal_ws *ws = spr_nodal_ws_alloc(R, C, NULL);
  CU_ASSERT_EQUAL(spr_nodal_effective(g, R, C, 0, 0, ge, &eb, ws), 0);
  for (int k = 0; k < R * C; k++) CU_ASSERT_EQUAL(ge[k], g[k]);
  CU_ASSERT_EQUAL(eb, 0);
  const double rr[2][2] = {{0, 6.2}, {4.4, 0}};
  for (int t = 0; t < 2; t++) {
    CU_ASSERT_EQUAL(spr_nodal_effective(g, R, C, rr[t][0], rr[t][1], ge, &eb, ws), 0);
    const double tiny = 1e-7;
    double a = rr[t][0] ? rr[t][0] : tiny, b = rr[t][1] ? rr[t][1] : tiny;
    CU_ASSERT_EQUAL(spr_nodal_effective(g, R, C, a, b, gn, NULL, ws), 0);
    double worst = 0, drop = 0;
    for (int k = 0; k < R * C; k++)
      if (g[k] > 0) {
        worst = fmax(worst, fabs(ge[k] - gn[k]) / g[k]);
        drop = fmax(drop, (g[k] - ge[k]) / g[k]);
      } else {
        CU_ASSERT_EQUAL(ge[k], 0);
      }
    CU_ASSERT(worst < 1e-8);
    CU_ASSERT(drop > 1e-4);
  }
  spr_nodal_ws_free(ws);
  gsl_rng_free(r);
}

static void test_errors(void) {
  int err = 0;
  CU_ASSERT_PTR_NULL(spr_nodal_ws_alloc(0, 4, &err));
  CU_ASSERT_EQUAL(err, SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "R=0");
  CU_ASSERT_PTR_NULL(spr_nodal_ws_alloc(4, -2, &err));
  CU_ASSERT_EQUAL(err, SPR_EINVAL);
  spr_nodal_ws_free(NULL);
  spr_nodal_ws *ws = spr_nodal_ws_alloc(3, 3, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ws);
  CU_ASSERT_EQUAL(err, 0);
  double g[16], ge[16];
  for (int k = 0; k < 16; k++) g[k] = 2.385e-5;
  CU_ASSERT_EQUAL(spr_nodal_effective(g, 0, 3, 1, 1, ge, NULL, ws), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "R=0");
  CU_ASSERT_EQUAL(spr_nodal_effective(g, 3, 0, 1, 1, ge, NULL, ws), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "C=0");
  CU_ASSERT_EQUAL(spr_nodal_effective(g, 4, 3, 1, 1, ge, NULL, ws), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "exceeds the 3 x 3 workspace");
  CU_ASSERT_EQUAL(spr_nodal_effective(g, 3, 3, -0.5, 1, ge, NULL, ws), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "r_wl = -0.5");
  CU_ASSERT_EQUAL(spr_nodal_effective(g, 3, 3, 1, NAN, ge, NULL, ws), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "r_bl = nan");
  CU_ASSERT_EQUAL(spr_nodal_effective(g, 3, 3, 1, INFINITY, ge, NULL, ws), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "r_bl = inf");
  CU_ASSERT_EQUAL(spr_nodal_effective(g, 3, 3, 1e-320, 1, ge, NULL, ws), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "too small");
  g[5] = -1e-6;
  CU_ASSERT_EQUAL(spr_nodal_effective(g, 3, 3, 1, 1, ge, NULL, ws), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "G[1][2] = -1e-06");
  g[5] = INFINITY;
  CU_ASSERT_EQUAL(spr_nodal_effective(g, 3, 3, 1, 1, ge, NULL, ws), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "G[1][2] = inf");
  g[5] = 2.385e-5;
  CU_ASSERT_EQUAL(spr_nodal_effective(NULL, 3, 3, 1, 1, ge, NULL, ws), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "NULL G");
  CU_ASSERT_EQUAL(spr_nodal_effective(g, 3, 3, 1, 1, NULL, NULL, ws), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_nodal_effective(g, 3, 3, 1, 1, ge, NULL, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "NULL workspace");
  /* a smaller array in a larger workspace still works */
  CU_ASSERT_EQUAL(spr_nodal_effective(g, 2, 3, 1, 1, ge, NULL, ws), 0);
  spr_nodal_ws_free(ws);
}

/* Time per effective matrix at 64 x 64 and 128 x 128 (printed, with the
 * error bound; not asserted beyond the bound). */
static void test_timing(void) {
  const int sizes[] = {64, 128};
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 11);
  for (int t = 0; t < 2; t++) {
    const int n = sizes[t];
    double *g = malloc(sizeof(double) * n * n), *ge = malloc(sizeof(double) * n * n);
    random_g(r, g, n * n);
    spr_nodal_ws *ws = spr_nodal_ws_alloc(n, n, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ws);
    double eb = -1;
    struct timespec a, b;
    const int reps = n <= 64 ? 5 : 2;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int k = 0; k < reps; k++)
      CU_ASSERT_EQUAL(spr_nodal_effective(g, n, n, 2.385, 2.385, ge, &eb, ws), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double sec = (b.tv_sec - a.tv_sec + 1e-9 * (b.tv_nsec - a.tv_nsec)) / reps;
    fprintf(stderr, "\n  %dx%d: %.3f s per effective matrix (with bound), err_bound %.2e", n, n,
            sec, eb);
    clock_gettime(CLOCK_MONOTONIC, &a);
    CU_ASSERT_EQUAL(spr_nodal_effective(g, n, n, 2.385, 2.385, ge, NULL, ws), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    sec = b.tv_sec - a.tv_sec + 1e-9 * (b.tv_nsec - a.tv_nsec);
    fprintf(stderr, "; %.3f s without bound\n", sec);
    CU_ASSERT(eb >= 0 && eb < 1e-8); /* about 2e-10 and 1e-9 here */
    spr_nodal_ws_free(ws);
    free(g);
    free(ge);
  }
  gsl_rng_free(r);
}

int main(void) {
  CU_TestInfo tests[] = {{"agrees with dense LU nodal solve", test_vs_dense},
                         {"1x1 closed form", test_closed_form},
                         {"second-order agreement with first-order model", test_vs_first_order},
                         {"zero wire resistances", test_zero_wires},
                         {"error paths", test_errors},
                         {"64x64 and 128x128 timing", test_timing},
                         CU_TEST_INFO_NULL};
  return spr_test_run("nodal", tests);
}
