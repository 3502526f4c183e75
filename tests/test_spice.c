/* test_spice.c - the SPICE driver (calibration/spr_spice.c): known
 * answers, crossbar column currents against the exact nodal solver
 * (crossbar/spr_nodal.c, an independent computation), and every failure
 * path (bad netlist, singular circuit, missing vector, timeout), each
 * followed by a good run to show that the next job still works. */
#include "config.h"
#include "spr_error.h"
#include "spr_nodal.h"
#include "spr_spice.h"
#include "spr_test.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <time.h>

static const double TMO = 30.0; /* seconds; generous for loaded machines */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A good run with a known answer: 2.385 V across 1.5 kohm.  The branch
 * current of V1 flows into its + terminal, so it is -2.385/1500 A. */
static int divider_ok(void) {
  const char *net[] = {"* divider", "V1 a 0 DC 2.385", "R1 a b 1000", "R2 b 0 500",
                       ".end"};
  const char *vec[] = {"v1#branch", "v(b)"};
  double val[2] = {0, 0};
  int rc = spr_spice_op_currents(net, 5, vec, 2, val, TMO);
  if (rc) fprintf(stderr, "\n  divider: %s\n", spr_errmsg());
  return rc == 0 && fabs(val[0] + 2.385 / 1500) < 1e-12 &&
         fabs(val[1] - 2.385 * 500 / 1500) < 1e-12;
}

static void test_known_answer(void) { CU_ASSERT(divider_ok()); }

/* Random G in [1e-6, 1e-4] S with a few open cells, V in [0.1, 0.3] V
 * (positive, so every column current is well away from zero). */
static void random_array(gsl_rng *r, int R, int C, double *G, double *V) {
  for (int k = 0; k < R * C; k++) {
    G[k] = 1e-6 + 99e-6 * gsl_rng_uniform(r);
    if (gsl_rng_uniform(r) < 0.05) G[k] = 0;
  }
  for (int i = 0; i < R; i++) V[i] = 0.1 + 0.2 * gsl_rng_uniform(r);
}

/* Largest relative difference between ngspice and I = V Geff over the
 * columns; also the time of the ngspice run (fork included). */
static double compare(const double *G, const double *V, int R, int C, double rwl, double rbl,
                      double *t_spice) {
  double *Geff = malloc(sizeof(double) * R * C);
  double *Is = malloc(sizeof(double) * C);
  spr_nodal_ws *ws = spr_nodal_ws_alloc(R, C, NULL);
  CU_ASSERT_FATAL(Geff && Is && ws);
  CU_ASSERT_EQUAL_FATAL(spr_nodal_effective(G, R, C, rwl, rbl, Geff, NULL, ws), 0);
  double t0 = now_s();
  int rc = spr_spice_crossbar_currents(G, R, C, rwl, rbl, V, Is, TMO);
  *t_spice = now_s() - t0;
  if (rc) fprintf(stderr, "\n  spice: %s\n", spr_errmsg());
  CU_ASSERT_EQUAL(rc, 0);
  double worst = rc ? INFINITY : 0;
  for (int j = 0; j < C && rc == 0; j++) {
    double ref = 0;
    for (int i = 0; i < R; i++) ref += V[i] * Geff[i * C + j];
    double d = fabs(Is[j] - ref) / fabs(ref);
    if (!(d <= worst)) worst = d; /* NaN propagates as a failure */
  }
  spr_nodal_ws_free(ws);
  free(Geff);
  free(Is);
  return worst;
}

static void test_vs_nodal(void) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 2385);
  const int R = 16, C = 16;
  double G[16 * 16], V[16];
  const double res[][2] = {{2.5, 2.5}, {10.0, 1.5}, {100.0, 40.0}, {0.0, 5.0}, {3.0, 0.0}};
  for (size_t k = 0; k < sizeof res / sizeof res[0]; k++) {
    random_array(r, R, C, G, V);
    double t;
    double d = compare(G, V, R, C, res[k][0], res[k][1], &t);
    printf("\n    16x16 r_wl=%g r_bl=%g: max rel diff %.2e, ngspice %.1f ms (fork incl.)",
           res[k][0], res[k][1], d, 1e3 * t);
    CU_ASSERT(d < 1e-3);
    CU_ASSERT(d < 1e-7); /* what agreement to rounding gives; much tighter than 0.1% */
  }
  gsl_rng_free(r);
}

static void test_vs_nodal_64(void) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 6464);
  const int R = 64, C = 64;
  double *G = malloc(sizeof(double) * R * C), V[64];
  CU_ASSERT_FATAL(G != NULL);
  random_array(r, R, C, G, V);
  double t;
  double d = compare(G, V, R, C, 2.5, 2.5, &t);
  printf("\n    64x64 r_wl=2.5 r_bl=2.5: max rel diff %.2e, ngspice %.1f ms (fork incl.)", d,
         1e3 * t);
  CU_ASSERT(d < 1e-3);
  CU_ASSERT(d < 1e-7);
  free(G);
  gsl_rng_free(r);
}

/* Time of a trivial job: the fixed cost of fork + ngSpice_Init. */
static void test_overhead(void) {
  const int n = 20;
  double t0 = now_s();
  int ok = 1;
  for (int k = 0; k < n; k++) ok &= divider_ok();
  printf("\n    trivial job: %.2f ms each (fork + init + load + op)", 1e3 * (now_s() - t0) / n);
  CU_ASSERT(ok);
}

static void expect_spice_error(const char *const *net, int n, const char *vec, const char *what,
                               const char *needle) {
  double val = 0;
  const char *vecs[] = {vec};
  spr_error_clear();
  int rc = spr_spice_op_currents(net, n, vecs, 1, &val, TMO);
  printf("\n    %s -> %d: %s", what, rc, spr_errmsg());
  CU_ASSERT_EQUAL(rc, SPR_ESPICE);
  SPR_ASSERT_CONTAINS(spr_errmsg(), needle);
  CU_ASSERT(divider_ok()); /* the next job still works */
}

static void test_malformed(void) {
  const char *bad_value[] = {"* bad value", "V1 a 0 DC 1", "R1 a b notanumber", "R2 b 0 1k",
                             ".end"};
  expect_spice_error(bad_value, 5, "v1#branch", "bad value", "notanumber");
  const char *unknown[] = {"* unknown element", "V1 a 0 DC 1", "R1 a 0 1k", "Zq a 0 1k",
                           ".end"};
  expect_spice_error(unknown, 5, "v1#branch", "unknown element", "rror");
  const char *no_model[] = {"* missing model", "V1 a 0 DC 1", "R1 a b 1k", "D1 b 0 nomodel",
                            ".end"};
  expect_spice_error(no_model, 5, "v1#branch", "missing model", "nomodel");
  /* twice more: repeated failures do not accumulate in the parent */
  expect_spice_error(bad_value, 5, "v1#branch", "bad value again", "rror");
}

static void test_singular(void) {
  const char *loop[] = {"* source loop", "V1 a 0 DC 1", "V2 a 0 DC 2", "R1 a 0 1k", ".end"};
  expect_spice_error(loop, 5, "v1#branch", "voltage-source loop", "'op' failed");
  /* node b is reached only through a capacitor: open at DC */
  const char *floating[] = {"* floating node", "V1 a 0 DC 1", "R1 a 0 1k", "C1 a b 1p",
                            "I1 0 b DC 1m", ".end"};
  expect_spice_error(floating, 6, "v1#branch", "current into a capacitor-only node",
                     "aborted");
  /* inconsistent sources through an inductor (a short at DC) */
  const char *lloop[] = {"* inductor loop", "V1 a 0 DC 1", "L1 a b 1u", "V2 b 0 DC 2",
                         ".end"};
  expect_spice_error(lloop, 5, "v1#branch", "inductor loop", "aborted");
}

static void test_missing_vector(void) {
  const char *net[] = {"* divider", "V1 a 0 DC 2.385", "R1 a 0 1.5k", ".end"};
  expect_spice_error(net, 4, "vnope#branch", "missing vector", "vnope#branch");
}

static void test_timeout(void) {
  /* A 64 x 64 job cannot finish fork, init, load and op in 0.1 ms. */
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 77);
  const int R = 64, C = 64;
  double *G = malloc(sizeof(double) * R * C), V[64], I[64];
  CU_ASSERT_FATAL(G != NULL);
  random_array(r, R, C, G, V);
  double t0 = now_s();
  int rc = spr_spice_crossbar_currents(G, R, C, 2.5, 2.5, V, I, 1e-4);
  double t = now_s() - t0;
  printf("\n    timeout 0.1 ms -> %d after %.2f ms: %s", rc, 1e3 * t, spr_errmsg());
  CU_ASSERT_EQUAL(rc, SPR_ESPICE);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "timed out");
  CU_ASSERT(t < 1.0);
  CU_ASSERT(divider_ok());
  free(G);
  gsl_rng_free(r);
}

static void test_invalid_args(void) {
  double G[4] = {1e-5, 2e-5, 3e-5, 4e-5}, V[2] = {0.2, 0.1}, I[2];
  char **lines = (char **)1;
  int n = 7;
  CU_ASSERT_EQUAL(spr_spice_crossbar_netlist(G, 0, 2, 1, 1, V, &lines, &n), SPR_EINVAL);
  CU_ASSERT(lines == NULL && n == 0);
  CU_ASSERT_EQUAL(spr_spice_crossbar_netlist(G, 2, 2, -1, 1, V, &lines, &n), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "r_wl");
  CU_ASSERT_EQUAL(spr_spice_crossbar_netlist(G, 2, 2, 1, NAN, V, &lines, &n), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "r_bl");
  G[3] = -1e-5;
  CU_ASSERT_EQUAL(spr_spice_crossbar_netlist(G, 2, 2, 1, 1, V, &lines, &n), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "G[1][1]");
  G[3] = 4e-5;
  V[1] = INFINITY;
  CU_ASSERT_EQUAL(spr_spice_crossbar_currents(G, 2, 2, 1, 1, V, I, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "V[1]");
  V[1] = 0.1;
  const char *net[] = {"* x", "R1 a 0 1"};
  const char *vec[] = {"v(a)"};
  CU_ASSERT_EQUAL(spr_spice_op_currents(net, 2, vec, 1, I, 0), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_spice_op_currents(net, 0, vec, 1, I, 1), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_spice_op_currents(net, 2, NULL, 1, I, 1), SPR_EINVAL);
  spr_spice_netlist_free(NULL, 0); /* no-op */
}

/* The netlist itself: element names, %.17g values, open cells omitted,
 * zero-resistance wires as 0 V sources. */
static void test_netlist_text(void) {
  double G[4] = {2.385e-5, 0, 1e-5, 4e-5}, V[2] = {0.2385, 0.1};
  char **lines = NULL;
  int n = 0;
  CU_ASSERT_EQUAL_FATAL(spr_spice_crossbar_netlist(G, 2, 2, 2.5, 0, V, &lines, &n), 0);
  int has_cell = 0, has_open = 0, has_short = 0, has_amm = 0, has_v = 0;
  char want[64];
  snprintf(want, sizeof want, "Rc0_0 w0_0 b0_0 %.17g", 1 / 2.385e-5);
  for (int k = 0; k < n; k++) {
    has_cell |= strcmp(lines[k], want) == 0;
    has_open |= strncmp(lines[k], "Rc0_1 ", 6) == 0;
    has_short |= strcmp(lines[k], "Vb0_1 b0_1 b1_1 DC 0") == 0;
    has_amm |= strcmp(lines[k], "Vs1 s1 0 DC 0") == 0;
    has_v |= strcmp(lines[k], "Vd0 d0 0 DC 0.23849999999999999") == 0;
  }
  CU_ASSERT(has_cell && !has_open && has_short && has_amm && has_v);
  CU_ASSERT_STRING_EQUAL(lines[n - 1], ".end");
  spr_spice_netlist_free(lines, n);
}

/* The parent's memory stays flat over many jobs, good and bad. */
static long rss_pages(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, rss = 0;
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &size, &rss) != 2) rss = -1;
  fclose(f);
  return rss;
}

static void test_memory_flat(void) {
  const char *bad[] = {"* bad", "V1 a 0 DC 1", "R1 a 0 oops", ".end"};
  const char *vec[] = {"v1#branch"};
  double v;
  for (int k = 0; k < 20; k++) divider_ok();
  long before = rss_pages();
  int ok = 1;
  for (int k = 0; k < 200; k++) {
    ok &= divider_ok();
    ok &= spr_spice_op_currents(bad, 4, vec, 1, &v, TMO) == SPR_ESPICE;
  }
  long after = rss_pages();
  long page = sysconf(_SC_PAGESIZE);
  printf("\n    400 jobs: parent RSS %ld -> %ld kB", before * page / 1024, after * page / 1024);
  CU_ASSERT(ok);
  CU_ASSERT(before > 0 && after - before < 64);
}

int main(void) {
  CU_TestInfo tests[] = {{"known answer (divider)", test_known_answer},
                         {"netlist text", test_netlist_text},
                         {"16x16 agrees with nodal solver", test_vs_nodal},
                         {"64x64 agrees with nodal solver", test_vs_nodal_64},
                         {"per-job overhead", test_overhead},
                         {"malformed netlists, then a good run", test_malformed},
                         {"singular circuits, then a good run", test_singular},
                         {"missing vector", test_missing_vector},
                         {"timeout kills the child", test_timeout},
                         {"invalid arguments", test_invalid_args},
                         {"parent memory flat", test_memory_flat},
                         CU_TEST_INFO_NULL};
  return spr_test_run("spice", tests);
}
