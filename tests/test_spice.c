/* test_spice.c - the SPICE driver (calibration/spr_spice.c) and the
 * calibration circuits (calibration/spr_circuits.c): known answers,
 * crossbar column currents against the exact nodal solver
 * (crossbar/spr_nodal.c, an independent computation), cell laws, noise
 * and energies against closed forms, the comparator against small-signal
 * predictions, and every failure path (bad netlist, singular circuit,
 * missing vector or plot, failing analysis, bad arguments, timeout), each
 * followed by a good run to show that the next job still works; the
 * child's lifetime: a cancel flag kills it at once, it dies with a parent
 * killed by SIGKILL, and its signals have their default actions. */
#include "config.h"
#include "spr_circuits.h"
#include "spr_error.h"
#include "spr_nodal.h"
#include "spr_spice.h"
#include "spr_test.h"

#include <dirent.h>
#include <errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
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

static void sleep_s(double t) {
  struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
  nanosleep(&ts, NULL);
}

/* A job that runs until its timeout: a transient of 100 s in 1 ns steps. */
static int run_long(double timeout_s) {
  const char *net[] = {"* long transient", "V1 a 0 SIN(0 1 1MEG)", "R1 a b 1k", "C1 b 0 1n", ".end"};
  const char *cmd[] = {"tran 1n 100"};
  const char *vec[] = {"v(b)"};
  spr_spice_vec v[1];
  int rc = spr_spice_run(net, 5, cmd, 1, vec, 1, v, timeout_s);
  spr_spice_vecs_free(v, 1);
  return rc;
}

/* A child of process p (its ngspice child), or -1 after 2 s without one. */
static pid_t child_of(pid_t p) {
  for (int tries = 0; tries < 200; tries++) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = -1;
    while (d && found < 0 && (e = readdir(d))) {
      char path[300], comm[64], state;
      long pid, ppid;
      snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
      FILE *f = fopen(path, "r");
      if (!f) continue;
      if (fscanf(f, "%ld %63s %c %ld", &pid, comm, &state, &ppid) == 4 && ppid == p) found = (pid_t)pid;
      fclose(f);
    }
    if (d) closedir(d);
    if (found > 0) return found;
    sleep_s(0.01);
  }
  return -1;
}

/* Wait up to `limit` seconds for process p (a child) to end; 0 when it
 * did not (it is then killed and reaped). */
static pid_t wait_for(pid_t p, double limit, int *status, double *took) {
  const double t0 = now_s();
  pid_t w = 0;
  while ((w = waitpid(p, status, WNOHANG)) == 0 && now_s() - t0 < limit) sleep_s(0.005);
  *took = now_s() - t0;
  if (w == 0) {
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
  }
  return w;
}

static volatile sig_atomic_t stop_flag;
static double stop_at;
static void on_alarm(int sig) {
  (void)sig;
  stop_flag = 1;
  stop_at = now_s(); /* clock_gettime is async-signal-safe */
}

static void test_cancel(void) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_alarm; /* a flag-only handler, as sprintsim's */
  sigaction(SIGALRM, &sa, &old);
  stop_flag = 0;
  CU_ASSERT(spr_spice_set_cancel(&stop_flag) == NULL);
  alarm(1);
  int rc = run_long(TMO);
  const double after = now_s() - stop_at;
  printf("\n    canceled job -> %d, %.3f s after the signal: %s", rc, after, spr_errmsg());
  CU_ASSERT_EQUAL(rc, SPR_ECANCELED);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "interrupted; the child was killed");
  CU_ASSERT(stop_flag && after < 0.5);
  errno = 0;
  CU_ASSERT(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD); /* reaped */
  /* while the flag stays set, no job starts */
  const char *net[] = {"* divider", "V1 a 0 DC 1", "R1 a 0 1k", ".end"};
  const char *vec[] = {"v1#branch"};
  double val;
  CU_ASSERT_EQUAL(spr_spice_op_currents(net, 4, vec, 1, &val, TMO), SPR_ECANCELED);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "not started: interrupted");
  CU_ASSERT(spr_spice_set_cancel(NULL) == &stop_flag);
  sigaction(SIGALRM, &old, NULL);
  CU_ASSERT(divider_ok());
}

static void test_dies_with_parent(void) {
  /* orphans come back to this process, which can then reap them */
  CU_ASSERT_FATAL(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  fflush(stdout);
  pid_t h = fork();
  CU_ASSERT_FATAL(h >= 0);
  if (h == 0) _exit(run_long(TMO) ? 1 : 0);
  pid_t g = child_of(h);
  CU_ASSERT(g > 0);
  sleep_s(0.2); /* ngspice is computing */
  kill(h, SIGKILL);
  waitpid(h, NULL, 0);
  int st = 0;
  double took = 0;
  pid_t w = g > 0 ? wait_for(g, 2.0, &st, &took) : 0;
  printf("\n    parent killed: its ngspice child ended %.3f s later (%s %d)", took,
         w == g && WIFSIGNALED(st) ? "signal" : "status", w == g && WIFSIGNALED(st) ? WTERMSIG(st) : st);
  CU_ASSERT(w == g && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  CU_ASSERT(took < 1.0);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

static void test_child_default_signals(void) {
  fflush(stdout);
  pid_t h = fork();
  CU_ASSERT_FATAL(h >= 0);
  if (h == 0) {
    /* a caller with a flag-only SIGTERM handler, as sprintsim */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_alarm;
    sigaction(SIGTERM, &sa, NULL);
    int rc = run_long(TMO);
    _exit(rc == SPR_ESPICE && strstr(spr_errmsg(), "died of signal 15") ? 0 : 1);
  }
  pid_t g = child_of(h);
  CU_ASSERT(g > 0);
  sleep_s(0.2);
  if (g > 0) kill(g, SIGTERM); /* the child alone */
  int st = 0;
  double took = 0;
  pid_t w = wait_for(h, 5.0, &st, &took);
  if (w != h && g > 0) kill(g, SIGKILL); /* an orphan now: do not leave it running */
  printf("\n    SIGTERM to the ngspice child: the job failed %.3f s later", took);
  CU_ASSERT(w == h && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  CU_ASSERT(took < 1.0);
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

/* ----------------------------------------------- spr_spice_run, version */

/* ngspice's Boltzmann constant (CONSTboltz of ngspice 39); the CODATA
 * 2018 value 1.380649e-23 differs by 1e-7 relative, below every
 * tolerance here. */
static const double KB = 1.38064852e-23;

static void test_version(void) {
  char v[256];
  int rc = spr_spice_version(v, sizeof v, TMO);
  printf("\n    version: '%s'", v);
  CU_ASSERT_EQUAL(rc, 0);
  SPR_ASSERT_CONTAINS(v, "ngspice-");
  CU_ASSERT_EQUAL(spr_spice_version(NULL, 10, TMO), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_spice_version(v, 1, TMO), SPR_EINVAL);
}

/* Whole vectors of several analyses in one job: a DC sweep (real), an ac
 * analysis (complex) and a noise analysis (two plots). */
static void test_run_vectors(void) {
  /* RC low-pass R = 2385 ohm, C = 1 nF: H(f) = 1 / (1 + j 2 pi f R C);
   * the resistor's noise current into the 0 V ammeter vam of a second
   * branch R2 = 4.7 kohm (Vd is an AC ground in .noise), read as a
   * voltage across the 1-ohm CCVS hn: 4kT/R2 A^2/Hz, white. */
  const char *net[] = {"* run vectors", "Vd a 0 DC 0.5 AC 1", "R1 a out 2385", "C1 out 0 1n",
                       "R2 a m 4700", "Vam m 0 DC 0", "Hn nout 0 vam 1", ".end"};
  const char *cmds[] = {"dc vd 0 1 0.25", "ac dec 2 1e3 1e5",
                        "noise v(nout) vd dec 5 1e3 1e7"};
  const char *vecs[] = {"dc1.v-sweep",  "dc1.vam#branch", "ac1.v(out)", "ac1.frequency",
                        "noise1.onoise_spectrum", "noise1.frequency", "onoise_total"};
  spr_spice_vec v[7];
  int rc = spr_spice_run(net, 8, cmds, 3, vecs, 7, v, TMO);
  if (rc) fprintf(stderr, "\n  run: %s\n", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  /* DC: 5 points 0, 0.25, ..., 1 V; vam#branch = V / 4700 */
  CU_ASSERT_EQUAL(v[0].length, 5);
  CU_ASSERT_EQUAL(v[1].length, 5);
  CU_ASSERT(!v[0].is_complex && v[0].im == NULL);
  double dmax = 0;
  for (int k = 0; k < v[0].length && k < v[1].length; k++)
    dmax = fmax(dmax, fabs(v[1].re[k] - v[0].re[k] / 4700) + fabs(v[0].re[k] - 0.25 * k));
  CU_ASSERT(dmax < 1e-12);
  /* AC: 2 points per decade over 2 decades = 5 points, complex */
  CU_ASSERT_EQUAL(v[2].length, 5);
  CU_ASSERT(v[2].is_complex && v[2].im != NULL);
  double amax = 0;
  for (int k = 0; k < v[2].length && k < v[3].length; k++) {
    double w = 2 * 3.14159265358979323846 * v[3].re[k] * 2385 * 1e-9; /* omega R C */
    double re = 1 / (1 + w * w), im = -w / (1 + w * w);
    amax = fmax(amax, hypot(v[2].re[k] - re, v[2].im[k] - im));
  }
  printf("\n    dc max err %.1e; ac max |H - 1/(1+jwRC)| %.1e", dmax, amax);
  CU_ASSERT(amax < 1e-9); /* a linear solve: rounding only */
  /* noise spectrum: 5 points per decade over 4 decades = 21 points, each
   * sqrt(4kT/R2) at 300.15 K; the total integrates the white spectrum
   * exactly (ngspice interpolates the PSD as a power law between
   * points), so only rounding and kB's last digits remain: 1e-6. */
  const double psd = 4 * KB * 300.15 / 4700;
  CU_ASSERT_EQUAL(v[4].length, 21);
  CU_ASSERT_EQUAL(v[5].length, v[4].length);
  double smax = 0;
  for (int k = 0; k < v[4].length; k++) smax = fmax(smax, fabs(v[4].re[k] / sqrt(psd) - 1));
  double tot = sqrt(psd * (1e7 - 1e3));
  printf("\n    R2 noise: spectrum max rel err %.1e; total %.6e A rms vs closed form %.6e",
         smax, v[6].re[0], tot);
  CU_ASSERT(smax < 1e-6);
  CU_ASSERT(fabs(v[6].re[0] / tot - 1) < 1e-6);
  spr_spice_vecs_free(v, 7);
  CU_ASSERT(v[0].re == NULL && v[0].length == 0);
  spr_spice_vecs_free(NULL, 3); /* no-op */
}

/* Plot names as spr_spice.h documents them: one counter that grows only
 * when a name would repeat. */
static void test_plot_names(void) {
  const char *net[] = {"* divider", "V1 a 0 DC 2.385", "R1 a b 1000", "R2 b 0 500", ".end"};
  const char *cmds[] = {"op", "alter r2 1500", "op", "dc v1 1 2 0.5"};
  const char *vecs[] = {"op1.v(b)", "op2.v(b)", "dc2.v(b)", "v-sweep"};
  spr_spice_vec v[4];
  /* setplot makes a plot current: plain names then read it */
  const char *cmds2[] = {"op", "alter r2 1500", "op", "setplot op1"};
  const char *vecs2[] = {"v(b)"};
  int rc = spr_spice_run(net, 5, cmds2, 4, vecs2, 1, v, TMO);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT(fabs(v[0].re[0] - 2.385 / 3) < 1e-12);
  spr_spice_vecs_free(v, 1);
  rc = spr_spice_run(net, 5, cmds, 4, vecs, 4, v, TMO);
  if (rc) fprintf(stderr, "\n  plots: %s\n", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT(fabs(v[0].re[0] - 2.385 / 3) < 1e-12);
  CU_ASSERT(fabs(v[1].re[0] - 2.385 * 0.6) < 1e-12); /* after the alter: 1500/2500 */
  CU_ASSERT_EQUAL(v[2].length, 3);
  CU_ASSERT(v[2].length == 3 && fabs(v[2].re[2] - 2 * 0.6) < 1e-12);
  CU_ASSERT(v[3].length == 3 && fabs(v[3].re[1] - 1.5) < 1e-12);
  spr_spice_vecs_free(v, 4);
}

/* An error from spr_spice_run, its message, then a good run. */
static void expect_run_error(const char *const *cmds, int n_cmds, const char *vec, int want,
                             const char *what, const char *needle) {
  const char *net[] = {"* divider", "V1 a 0 DC 2.385", "R1 a b 1000", "R2 b 0 500", ".end"};
  const char *vecs[] = {vec};
  spr_spice_vec v[1];
  spr_error_clear();
  int rc = spr_spice_run(net, 5, cmds, n_cmds, vecs, 1, v, TMO);
  printf("\n    %s -> %d: %s", what, rc, spr_errmsg());
  CU_ASSERT_EQUAL(rc, want);
  SPR_ASSERT_CONTAINS(spr_errmsg(), needle);
  CU_ASSERT(v[0].re == NULL && v[0].length == 0);
  CU_ASSERT(divider_ok());
}

static void test_run_errors(void) {
  const char *unknown[] = {"op", "frobnicate 3"};
  expect_run_error(unknown, 2, "v(b)", SPR_ESPICE, "unknown command", "frobnicate");
  const char *bad_dc[] = {"dc vnope 0 1 0.1"};
  expect_run_error(bad_dc, 1, "v(b)", SPR_ESPICE, "sweep of a missing source", "vnope");
  const char *no_ac[] = {"noise v(b) v1 dec 10 1 1e3"}; /* V1 has no AC value */
  expect_run_error(no_ac, 1, "onoise_total", SPR_ESPICE, "noise without AC input", "aborted");
  const char *op[] = {"op"};
  expect_run_error(op, 1, "noise7.onoise_total", SPR_ESPICE, "unknown plot", "noise7");
  expect_run_error(op, 1, "v(nothere)", SPR_ESPICE, "unknown vector", "v(nothere)");
  const char *quit[] = {"op", "quit"};
  expect_run_error(quit, 2, "v(b)", SPR_EINVAL, "quit", "'quit'");
  const char *bg[] = {"bg_run"};
  expect_run_error(bg, 1, "v(b)", SPR_EINVAL, "bg_run", "'bg_run'");
  const char *nl[] = {"op\nop"};
  expect_run_error(nl, 1, "v(b)", SPR_EINVAL, "two lines", "spans lines");
  const char *null_cmd[] = {NULL};
  expect_run_error(null_cmd, 1, "v(b)", SPR_EINVAL, "NULL command", "command 1");
  expect_run_error(op, -1, "v(b)", SPR_EINVAL, "n_commands < 0", "n_commands = -1");
  expect_run_error(op, 1, "", SPR_EINVAL, "empty vector name", "vector name 1");
  /* zero commands: nothing ran, so no vector */
  expect_run_error(NULL, 0, "v(b)", SPR_ESPICE, "no commands", "v(b)");
}

/* -------------------------------------------------------------- cells */

static void test_cell_iv(void) {
  spr_circ_sinh p;
  spr_circ_sinh_default(&p);
  p.v0_V = 0.2385;
  const double G = 2.385e-5;
  double gap;
  CU_ASSERT_EQUAL_FATAL(spr_circ_sinh_gap(&p, G, &gap), 0);
  CU_ASSERT(fabs(gap - 0.25e-9 * log(1e-3 / (G * 0.2385))) < 1e-24);
  enum { N = 49 };
  double V[N], I[N];
  char *text = NULL;
  int rc = spr_circ_cell_iv(&p, G, -0.6, 0.6, N, V, I, &text, TMO);
  if (rc) fprintf(stderr, "\n  cell: %s\n", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  /* I = G V0 sinh(V/V0): ngspice evaluates the B-source at the forced
   * node voltage, so only Newton's last update and rounding remain;
   * 1e-9 relative (plus 1e-18 A near V = 0) is far tighter than the
   * 1e-3 reltol that bounds it. */
  double worst = 0;
  for (int k = 0; k < N; k++) {
    double ref = G * p.v0_V * sinh(V[k] / p.v0_V);
    worst = fmax(worst, fabs(I[k] - ref) / (fabs(ref) + 1e-18 / 1e-9));
    CU_ASSERT(fabs(V[k] - (-0.6 + 1.2 * k / (N - 1))) < 1e-12);
  }
  printf("\n    sinh cell G=%g S, V0=%g V, gap=%.4g nm: I(0.6 V) = %.6e A (linear %.6e), max "
         "rel err %.1e", G, p.v0_V, gap * 1e9, I[N - 1], G * 0.6, worst);
  CU_ASSERT(worst < 1e-9);
  CU_ASSERT(I[N - 1] > 2 * G * 0.6); /* sinh(2.5)/2.5 = 2.4: clearly nonlinear */
  SPR_ASSERT_CONTAINS(text, "\n.control\noptran 1 1 1 0 0 0\ndc vin -0.59999999999999998 0.59999999999999998 ");
  SPR_ASSERT_CONTAINS(text, "Bc t 0 I=0.001*exp(");
  /* the deck is self-contained: loaded with no commands, its .control
   * block runs the sweep again and gives the same currents */
  char *dl[32];
  int nd = 0;
  for (char *q = strtok(text, "\n"); q && nd < 32; q = strtok(NULL, "\n")) dl[nd++] = q;
  const char *bv[] = {"vin#branch"};
  spr_spice_vec rv[1];
  rc = spr_spice_run((const char *const *)dl, nd, NULL, 0, bv, 1, rv, TMO);
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT(rc == 0 && rv[0].length == N && rv[0].re[N - 1] == -I[N - 1]);
  spr_spice_vecs_free(rv, 1);
  free(text);
  /* errors */
  CU_ASSERT_EQUAL(spr_circ_cell_iv(&p, -G, -0.6, 0.6, N, V, I, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "G_S = -2.385e-05");
  CU_ASSERT_EQUAL(spr_circ_cell_iv(&p, G, 0.6, -0.6, N, V, I, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "[0.6, -0.6]");
  CU_ASSERT_EQUAL(spr_circ_cell_iv(&p, G, -0.6, 0.6, 1, V, I, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "n_points = 1");
  p.g0_m = 0;
  CU_ASSERT_EQUAL(spr_circ_cell_iv(&p, G, -0.6, 0.6, N, V, I, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "sinh.g0_m");
}

/* ------------------------------------------------------------ crossbar */

/* Column currents of sinh cells against (a) the linear nodal solution
 * when V0 is huge and (b) the closed form sum_i G V0 sinh(V_i/V0) when
 * the wires are ideal (every cell sees its row voltage). */
static void test_xbar_sinh(void) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 4242);
  enum { R = 8, C = 6 };
  double G[R * C], V[R], I[C], Geff[R * C];
  random_array(r, R, C, G, V);
  spr_circ_xbar x;
  spr_circ_xbar_init(&x);
  x.rows = R;
  x.cols = C;
  x.G = G;
  x.V = V;
  x.r_wl_ohm = 2.5;
  x.r_bl_ohm = 4.1;
  x.cell = SPR_CIRC_CELL_SINH;
  x.sinh.v0_V = 1e4; /* |V|/V0 <= 3e-5: sinh(u)/u - 1 <= u^2/6 = 1.5e-10 */
  spr_nodal_ws *ws = spr_nodal_ws_alloc(R, C, NULL);
  CU_ASSERT_FATAL(ws != NULL);
  CU_ASSERT_EQUAL_FATAL(spr_nodal_effective(G, R, C, 2.5, 4.1, Geff, NULL, ws), 0);
  char *text = NULL;
  int rc = spr_circ_xbar_currents(&x, I, &text, TMO);
  if (rc) fprintf(stderr, "\n  xbar sinh: %s\n", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  double worst = 0;
  for (int j = 0; j < C; j++) {
    double ref = 0;
    for (int i = 0; i < R; i++) ref += V[i] * Geff[i * C + j];
    worst = fmax(worst, fabs(I[j] / ref - 1));
  }
  /* 1.5e-10 from the law, plus Newton's convergence on a nonlinear
   * circuit (ngspice stops when updates are below reltol 1e-3 of the
   * change; in practice far smaller): 1e-6. */
  printf("\n    8x6 sinh cells, V0 = 1e4 V, vs linear nodal: max rel diff %.1e", worst);
  CU_ASSERT(worst < 1e-6);
  SPR_ASSERT_CONTAINS(text, "Bc0_0 w0_0 b0_0 I=0.001*exp(");
  free(text);

  /* ideal wires, V0 = 0.25 V, row voltages up to 0.3 V */
  x.sinh.v0_V = 0.25;
  x.r_wl_ohm = x.r_bl_ohm = 0;
  rc = spr_circ_xbar_currents(&x, I, NULL, TMO);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  worst = 0;
  double lin_ratio = 0;
  for (int j = 0; j < C; j++) {
    double ref = 0, lin = 0;
    for (int i = 0; i < R; i++) {
      ref += G[i * C + j] * 0.25 * sinh(V[i] / 0.25);
      lin += G[i * C + j] * V[i];
    }
    worst = fmax(worst, fabs(I[j] / ref - 1));
    lin_ratio = fmax(lin_ratio, I[j] / lin);
  }
  printf("; ideal wires, V0 = 0.25 V: max rel diff from sum G V0 sinh(V/V0) %.1e (up to %.3f x "
         "linear)", worst, lin_ratio);
  CU_ASSERT(worst < 1e-9); /* the cells sit across ideal sources: rounding only */
  CU_ASSERT(lin_ratio > 1.05);
  spr_nodal_ws_free(ws);
  gsl_rng_free(r);
}

/* Driving-point admittance of sense node j of the crossbar (topology of
 * crossbar/spr_nodal.h, r_wl, r_bl > 0) with the drivers and the other
 * sense nodes at 0 V: dense nodal solve, unknowns word nodes then bit
 * nodes. */
static double sense_admittance(const double *g, int R, int C, double rwl, double rbl, int jj) {
  const int N = 2 * R * C;
  gsl_matrix *A = gsl_matrix_calloc(N, N);
  gsl_vector *b = gsl_vector_calloc(N), *v = gsl_vector_alloc(N);
  const double gw = 1 / rwl, gb = 1 / rbl;
#define ADD(a, c, x) (*gsl_matrix_ptr(A, (a), (c)) += (x))
#define LINK(a, c, x) (ADD(a, a, x), ADD(c, c, x), ADD(a, c, -(x)), ADD(c, a, -(x)))
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) {
      int w = i * C + j, bn = R * C + i * C + j;
      LINK(w, bn, g[i * C + j]);
      if (j == 0) ADD(w, w, gw); /* to the driver (0 V) */
      else LINK(w, w - 1, gw);
      if (i + 1 < R) LINK(bn, bn + C, gb);
      else ADD(bn, bn, gb); /* to the sense node */
      if (i + 1 == R && j == jj) *gsl_vector_ptr(b, bn) = gb; /* sense jj at 1 V */
    }
#undef LINK
#undef ADD
  gsl_permutation *perm = gsl_permutation_alloc(N);
  int sg;
  gsl_linalg_LU_decomp(A, perm, &sg);
  gsl_linalg_LU_solve(A, perm, b, v);
  double y = gb * (1 - gsl_vector_get(v, R * C + (R - 1) * C + jj));
  gsl_permutation_free(perm);
  gsl_matrix_free(A);
  gsl_vector_free(b);
  gsl_vector_free(v);
  return y;
}

/* Column noise: with ideal wires each cell's thermal current 4kT G flows
 * straight into the ammeter, so i_rms = sqrt(4kT sum_i G_ij (f_hi - f_lo)). */
static void test_xbar_noise(void) {
  enum { R = 5, C = 3 };
  double G[R * C], V[R];
  for (int k = 0; k < R * C; k++) G[k] = 1e-6 * (2.385 + 7 * k);
  for (int i = 0; i < R; i++) V[i] = 0.1 + 0.05 * i;
  spr_circ_xbar x;
  spr_circ_xbar_init(&x);
  x.rows = R;
  x.cols = C;
  x.G = G;
  x.V = V;
  x.temp_C = 85; /* 358.15 K: checks that .temp reaches the noise */
  const double flo = 1e3, fhi = 1e8;
  for (int j = 0; j < C; j++) {
    double i_rms, gsum = 0;
    char *text = NULL;
    int rc = spr_circ_xbar_noise(&x, j, flo, fhi, 5, &i_rms, j == 1 ? &text : NULL, TMO);
    if (rc) fprintf(stderr, "\n  noise: %s\n", spr_errmsg());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    for (int i = 0; i < R; i++) gsum += G[i * C + j];
    double ref = sqrt(4 * KB * 358.15 * gsum * (fhi - flo));
    printf("\n    column %d noise %.6e A rms, sqrt(4kT sum G df) %.6e", j, i_rms, ref);
    /* white spectrum, integrated exactly: rounding and kB only */
    CU_ASSERT(fabs(i_rms / ref - 1) < 1e-6);
    if (text) {
      SPR_ASSERT_CONTAINS(text, "Hn nout 0 vs1 1");
      SPR_ASSERT_CONTAINS(text, "noise v(nout) vd0 dec 5 1000 100000000");
      free(text);
    }
  }
  /* with wires: Nyquist's theorem for a passive reciprocal resistive
   * network at one temperature, the short-circuit noise current at a
   * port has PSD 4kT Re(Y), Y the port's driving-point admittance with
   * every other source shorted.  Y of sense node j from a dense LU solve
   * (written here, independently of the netlist): 1 V on sense j, 0 V on
   * drivers and other senses; Y = g_bl (1 - v(bit node R-1, j)).  Same
   * tolerance: a linear network, white noise. */
  x.r_wl_ohm = 35;
  x.r_bl_ohm = 120;
  for (int j = 0; j < C; j++) {
    double i_w, y = sense_admittance(G, R, C, x.r_wl_ohm, x.r_bl_ohm, j);
    CU_ASSERT_EQUAL_FATAL(spr_circ_xbar_noise(&x, j, flo, fhi, 5, &i_w, NULL, TMO), 0);
    double ref = sqrt(4 * KB * 358.15 * y * (fhi - flo));
    printf("\n    column %d with 35/120 ohm wires: %.6e A rms, sqrt(4kT Re(Y) df) %.6e", j, i_w,
           ref);
    CU_ASSERT(fabs(i_w / ref - 1) < 1e-6);
  }
  /* errors */
  double dummy;
  CU_ASSERT_EQUAL(spr_circ_xbar_noise(&x, 3, flo, fhi, 5, &dummy, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "col = 3");
  CU_ASSERT_EQUAL(spr_circ_xbar_noise(&x, 0, fhi, flo, 5, &dummy, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "f_hi_Hz = 1000");
  x.cell = SPR_CIRC_CELL_SINH;
  CU_ASSERT_EQUAL(spr_circ_xbar_noise(&x, 0, flo, fhi, 5, &dummy, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "noiseless");
  x.cell = 7;
  CU_ASSERT_EQUAL(spr_circ_xbar_currents(&x, &dummy, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cell law 7");
}

/* Energy of a trapezoidal pulse of height V, edges T, into R-C from a
 * discharged capacitor, held until charged, then back to 0 V and held
 * until discharged: everything drawn is dissipated in R, twice the
 * dissipation of one edge (the falling edge mirrors the rising one):
 *   E = 2 E_R,  E_R = (1/R) [(V tau/T)^2 (T - 2 tau (1 - e^-T/tau)
 *                     + tau/2 (1 - e^-2T/tau)) + a^2 tau / 2],
 *   a = (V tau/T)(1 - e^-T/tau),  tau = R C  (-> C V^2 as T -> 0). */
static double rc_pulse_energy(double V, double R, double Cap, double T) {
  double tau = R * Cap, e1 = exp(-T / tau), e2 = exp(-2 * T / tau);
  double k = V * tau / T, a = k * (1 - e1);
  double ramp = k * k * (T - 2 * tau * (1 - e1) + 0.5 * tau * (1 - e2));
  return 2 * (ramp + a * a * tau / 2) / R;
}

static void test_energy_rc(void) {
  const double V = 0.8, R = 2385, Cap = 1e-12, T = 0.2e-9; /* tau = 2.385 ns */
  const char *net[] = {"* rc pulse", "Vp a 0 PULSE(0 0.8 0 0.2n 0.2n 40n 1u)", "R1 a b 2385",
                       "C1 b 0 1p", ".end"};
  const char *src[] = {"vp"}, *nod[] = {"a"};
  double E;
  int rc = spr_circ_source_energy(net, 5, "tran 10p 80.4n 0 10p", src, nod, 1, 0, 80.4e-9, &E,
                                  TMO);
  if (rc) fprintf(stderr, "\n  energy: %s\n", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  double ref = rc_pulse_energy(V, R, Cap, T);
  printf("\n    RC pulse energy %.6e J, closed form %.6e J (C V^2 = %.3e J), rel diff %.1e", E,
         ref, Cap * V * V, E / ref - 1);
  /* ngspice's integration (trapezoidal, reltol 1e-3 on the charge) and
   * the trapezoid rule over 10 ps steps ((h/tau)^2/12 = 1.5e-6): 2e-3. */
  CU_ASSERT(fabs(E / ref - 1) < 2e-3);
  /* the window: only the rising part [0, 20 ns] draws C V^2 / 2 stored
   * plus E_R of one edge */
  double E1;
  rc = spr_circ_source_energy(net, 5, "tran 10p 80.4n 0 10p", src, nod, 1, 0, 20e-9, &E1, TMO);
  CU_ASSERT_EQUAL(rc, 0);
  double ref1 = 0.5 * Cap * V * V + 0.5 * ref;
  printf("; first 20 ns %.6e J vs %.6e J", E1, ref1);
  CU_ASSERT(fabs(E1 / ref1 - 1) < 2e-3);
  /* errors */
  CU_ASSERT_EQUAL(spr_circ_source_energy(net, 5, "op", src, nod, 1, 0, 1e-9, &E, TMO),
                  SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'op'");
  CU_ASSERT_EQUAL(
      spr_circ_source_energy(net, 5, "tran 10p 10n", src, nod, 1, 0, 20e-9, &E, TMO),
      SPR_ESPICE);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "window");
  const char *empty[] = {""};
  CU_ASSERT_EQUAL(spr_circ_source_energy(net, 5, "tran 10p 10n", empty, nod, 1, 0, 5e-9, &E, TMO),
                  SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "source or node name 0");
  const char *nosrc[] = {"vq"};
  CU_ASSERT_EQUAL(
      spr_circ_source_energy(net, 5, "tran 10p 10n", nosrc, nod, 1, 0, 5e-9, &E, TMO),
      SPR_ESPICE);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "vq#branch");
  CU_ASSERT(divider_ok());
}

/* Read energy of a crossbar with ideal wires and no capacitance: each row
 * dissipates v_i(t) sum_j i_ij(t), so
 *   linear: E = sum_i V_i^2 sum_j G_ij (W + (T_r + T_f)/3)
 *   sinh:   E = sum_i sum_j G_ij V0 integral of v sinh(v/V0) dt,
 * the latter by Simpson's rule on each edge (2000 intervals). */
static double edge_integral(double Vi, double V0, double T) {
  /* integral over one edge of duration T of v sinh(v/V0), v = Vi s/T */
  const int n = 2000;
  double h = 1.0 / n, sum = 0;
  for (int k = 0; k <= n; k++) {
    double v = Vi * k * h, f = v * V0 * sinh(v / V0);
    sum += f * (k == 0 || k == n ? 1 : (k % 2 ? 4 : 2));
  }
  return sum * h / 3 * T;
}

static void test_xbar_energy(void) {
  enum { R = 3, C = 4 };
  double G[R * C], V[R] = {0.2385, 0.1, 0.3};
  for (int k = 0; k < R * C; k++) G[k] = 1e-5 * (1 + 0.37 * k);
  spr_circ_xbar x;
  spr_circ_xbar_init(&x);
  x.rows = R;
  x.cols = C;
  x.G = G;
  x.V = V;
  spr_circ_pulse pu;
  spr_circ_pulse_default(&pu);
  double E, ref = 0, ref_s = 0;
  char *text = NULL;
  int rc = spr_circ_xbar_read_energy(&x, &pu, &E, &text, TMO);
  if (rc) fprintf(stderr, "\n  xbar energy: %s\n", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  for (int i = 0; i < R; i++) {
    double g = 0;
    for (int j = 0; j < C; j++) g += G[i * C + j];
    ref += V[i] * V[i] * g * (pu.width_s + (pu.rise_s + pu.fall_s) / 3);
    ref_s += g * (V[i] * 0.25 * sinh(V[i] / 0.25) * pu.width_s +
                  edge_integral(V[i], 0.25, pu.rise_s) + edge_integral(V[i], 0.25, pu.fall_s));
  }
  /* resistive only: the trapezoid rule is exact between breakpoints for
   * the linear case up to the curvature of v^2 on the edges (20 steps per
   * edge: (1/20)^2/12 of the edge part), ngspice hits the breakpoints */
  printf("\n    3x4 linear read energy %.6e J vs %.6e J (rel %.1e); %.3e J per MAC", E, ref,
         E / ref - 1, E / (R * C));
  CU_ASSERT(fabs(E / ref - 1) < 1e-4);
  SPR_ASSERT_CONTAINS(text, "Vd0 d0 0 PULSE(0 0.23849999999999999 1e-10 1e-10 1e-10 5.0000000000000001e-09");
  SPR_ASSERT_CONTAINS(text, "\ntran 4.9999999999999997e-12 8.0000000000000005e-09 0 ");
  free(text);
  x.cell = SPR_CIRC_CELL_SINH;
  rc = spr_circ_xbar_read_energy(&x, &pu, &E, NULL, TMO);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  printf("; sinh cells %.6e J vs %.6e J (rel %.1e)", E, ref_s, E / ref_s - 1);
  CU_ASSERT(fabs(E / ref_s - 1) < 1e-4);
  /* capacitances: with no cells (G = 0) each row is the driver, r_wl and
   * c_wl of the first word node (the rest of the row hangs behind further
   * segments; one column keeps it a single R-C), exactly the R-C pulse of
   * test_energy_rc: E = sum_i 2 E_R(V_i).  Same tolerance (2e-3). */
  double G0[2] = {0, 0}, V0[2] = {0.8, 0.3};
  spr_circ_xbar xc;
  spr_circ_xbar_init(&xc);
  xc.rows = 2;
  xc.cols = 1;
  xc.G = G0;
  xc.V = V0;
  xc.r_wl_ohm = 2385;
  xc.r_bl_ohm = 10;
  xc.c_wl_F = 1e-12;
  xc.c_bl_F = 0.5e-12; /* the bit line is never driven: no energy */
  spr_circ_pulse pc = {0, 0.2e-9, 40e-9, 0.2e-9, 80.4e-9, 10e-12};
  double Ec;
  rc = spr_circ_xbar_read_energy(&xc, &pc, &Ec, NULL, TMO);
  if (rc) fprintf(stderr, "\n  xbar energy (C): %s\n", spr_errmsg());
  CU_ASSERT_EQUAL(rc, 0);
  double refc = rc_pulse_energy(0.8, 2385, 1e-12, 0.2e-9) + rc_pulse_energy(0.3, 2385, 1e-12, 0.2e-9);
  printf("; 2x1 R-C rows %.6e J vs %.6e J (rel %.1e)", Ec, refc, Ec / refc - 1);
  CU_ASSERT(fabs(Ec / refc - 1) < 2e-3);
  /* errors */
  pu.t_stop_s = 1e-9;
  CU_ASSERT_EQUAL(spr_circ_xbar_read_energy(&x, &pu, &E, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "pulse.t_stop_s = 1e-09");
  spr_circ_pulse_default(&pu);
  pu.t_step_s = 1e-9;
  CU_ASSERT_EQUAL(spr_circ_xbar_read_energy(&x, &pu, &E, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "pulse.t_step_s = 1e-09");
  x.c_bl_F = -1;
  CU_ASSERT_EQUAL(spr_circ_xbar_read_energy(&x, &pu, &E, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "c_bl_F = -1");
}

/* ---------------------------------------------------------- comparator */

static void test_cmp_mismatch(void) {
  spr_circ_cmp p;
  spr_circ_cmp_default(&p);
  double a[SPR_CIRC_CMP_N_MOS], b[SPR_CIRC_CMP_N_MOS];
  CU_ASSERT_EQUAL(spr_circ_cmp_mismatch(&p, 2385, 17, a), 0);
  CU_ASSERT_EQUAL(spr_circ_cmp_mismatch(&p, 2385, 17, b), 0);
  CU_ASSERT(memcmp(a, b, sizeof a) == 0);
  CU_ASSERT_EQUAL(spr_circ_cmp_mismatch(&p, 2385, 18, b), 0);
  CU_ASSERT(a[0] != b[0]);
  /* 2000 samples: each transistor's shift over its Pelgrom sigma has unit
   * variance; the pooled estimate of 14000 values has a standard error
   * of 0.6%, so 3% is 5 standard errors. */
  double s2 = 0, m = 0;
  const int n = 2000;
  for (int s = 0; s < n; s++) {
    CU_ASSERT_EQUAL_FATAL(spr_circ_cmp_mismatch(&p, 99, s, a), 0);
    for (int k = 0; k < SPR_CIRC_CMP_N_MOS; k++) {
      double z = a[k] / (3.5e-9 / sqrt(p.w_m[k] * p.l_m[k]));
      s2 += z * z;
      m += z;
    }
  }
  double sd = sqrt(s2 / (n * SPR_CIRC_CMP_N_MOS));
  printf("\n    sigma(M1) = %.3f mV; pooled z: mean %.4f, sd %.4f",
         1e3 * 3.5e-9 / sqrt(p.w_m[0] * p.l_m[0]), m / (n * SPR_CIRC_CMP_N_MOS), sd);
  CU_ASSERT(fabs(sd - 1) < 0.03);
  CU_ASSERT(fabs(m / (n * SPR_CIRC_CMP_N_MOS)) < 0.03);
  CU_ASSERT_EQUAL(spr_circ_cmp_mismatch(&p, 1, -1, a), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "sample = -1");
  p.avt_p_Vm = -1;
  CU_ASSERT_EQUAL(spr_circ_cmp_mismatch(&p, 1, 0, a), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "avt_p_Vm = -1");
}

/* Trip current.  With zero mismatch the OTA's systematic offset is its
 * output level at balance (about VDD - V_SG3 = 1.2 V) minus the
 * inverter's threshold (0.9 V) over its gain (gm1 / (gds2 + gds4), about
 * 200): about 1.5 mV at the input, 75 nA through R_s = 20 kohm, under 1%
 * of 10 uA: assert 2%.  A VTO shift dV of the column-side input
 * transistor M2 is exactly an input voltage shift (the circuit reaches
 * the same state with V_inp higher by dV), so the trip current moves by
 * dV / R_s; of the reference-side M1, by -dV / R_s.  Tolerance 0.5%:
 * the fine sweep resolves 0.4 nA of the 250 nA shift. */
static void test_cmp_trip(void) {
  spr_circ_cmp p;
  spr_circ_cmp_default(&p);
  const double iref = 10e-6, span = 4e-6, dv = 5e-3;
  double t0, t2, t1;
  char *text = NULL;
  int rc = spr_circ_cmp_trip(&p, NULL, iref, span, &t0, &text, TMO);
  if (rc) fprintf(stderr, "\n  trip: %s\n", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  double d[SPR_CIRC_CMP_N_MOS] = {0};
  d[1] = dv;
  CU_ASSERT_EQUAL_FATAL(spr_circ_cmp_trip(&p, d, iref, span, &t2, NULL, TMO), 0);
  d[1] = 0;
  d[0] = dv;
  CU_ASSERT_EQUAL_FATAL(spr_circ_cmp_trip(&p, d, iref, span, &t1, NULL, TMO), 0);
  const double pred = dv / p.r_sense_ohm;
  printf("\n    trip %.6e A (offset %.2f nA = %.3f%% of i_ref); M2 +5 mV: shift %.3f nA, M1 +5 "
         "mV: %.3f nA, predicted +-%.3f nA",
         t0, 1e9 * (t0 - iref), 100 * (t0 - iref) / iref, 1e9 * (t2 - t0), 1e9 * (t1 - t0),
         1e9 * pred);
  CU_ASSERT(fabs(t0 - iref) < 0.02 * iref);
  CU_ASSERT(fabs((t2 - t0) / pred - 1) < 5e-3);
  CU_ASSERT(fabs((t1 - t0) / -pred - 1) < 5e-3);
  /* The mirror: +dV on the VTO of PMOS M3 (|VT| lower) lifts node x by
   * dV, so M4 sources gm4 dV less and the pair must unbalance by
   * gm2 dVin = -gm4 dV: shift -(gm4/gm2) dV/R_s; on M4, +(gm4/gm2) dV/R_s.
   * Square law at equal currents and sizes: gm4/gm2 = sqrt(KP_p/KP_n) =
   * 0.632.  Tolerance 3%: LAMBDA makes the drain voltages of M2 and M4
   * (and so their currents' ratio to gm) differ by about 1%.  The tail
   * M5 (common mode) and the inverter M6 (divided by the OTA gain of
   * about 200) move the trip by under 2% of dV/R_s. */
  const double ratio = sqrt(p.kp_p_AV2 / p.kp_n_AV2);
  double tm[4];
  for (int k = 2; k < 6; k++) {
    double dd[SPR_CIRC_CMP_N_MOS] = {0};
    dd[k] = dv;
    CU_ASSERT_EQUAL_FATAL(spr_circ_cmp_trip(&p, dd, iref, span, &tm[k - 2], NULL, TMO), 0);
    tm[k - 2] = (tm[k - 2] - t0) / pred;
  }
  printf("\n    shift / (dV/R_s): M3 %.4f, M4 %.4f (predicted -+%.4f), M5 %.4f, M6 %.4f", tm[0],
         tm[1], ratio, tm[2], tm[3]);
  CU_ASSERT(fabs(tm[0] / -ratio - 1) < 0.03);
  CU_ASSERT(fabs(tm[1] / ratio - 1) < 0.03);
  CU_ASSERT(fabs(tm[2]) < 0.02 && fabs(tm[3]) < 0.02);
  SPR_ASSERT_CONTAINS(text, "M2 o1 inp tail 0 mod2 W=3.9999999999999998e-06");
  SPR_ASSERT_CONTAINS(text, "\ndc icol ");
  free(text);
  /* the netlist itself: each transistor's own card carries its shift */
  char **lines = NULL;
  int n = 0;
  d[0] = 0;
  d[2] = -7e-3; /* M3, PMOS: VTO -0.45 - 0.007 */
  CU_ASSERT_EQUAL_FATAL(spr_circ_cmp_netlist(&p, d, 9.5e-6, iref, &lines, &n), 0);
  int has_card = 0, has_icol = 0;
  for (int k = 0; k < n; k++) {
    has_card |= strncmp(lines[k], ".model mod3 pmos (level=1 vto=-0.45700000000000002 ", 51) == 0;
    has_icol |= strcmp(lines[k], "Icol 0 inp DC 9.5000000000000005e-06") == 0;
  }
  CU_ASSERT(has_card && has_icol);
  spr_spice_netlist_free(lines, n);
  d[2] = 0;
  CU_ASSERT_EQUAL(spr_circ_cmp_netlist(&p, d, -1e-6, iref, &lines, &n), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "i_col_A = -1e-06");
  CU_ASSERT(lines == NULL && n == 0);
  /* errors: the output cannot cross within a span smaller than the
   * offset of a 50 mV shift (2.5 uA) */
  d[0] = 0;
  d[1] = 50e-3;
  spr_error_clear();
  CU_ASSERT_EQUAL(spr_circ_cmp_trip(&p, d, iref, 1e-6, &t1, NULL, TMO), SPR_ESPICE);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "does not rise through VDD/2");
  CU_ASSERT_EQUAL(spr_circ_cmp_trip(&p, d, iref, 2 * iref, &t1, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "span_A = 2e-05");
  d[3] = NAN;
  CU_ASSERT_EQUAL(spr_circ_cmp_trip(&p, d, iref, span, &t1, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dvto_V[3] (M4)");
  p.vto_p_V = 0.45;
  CU_ASSERT_EQUAL(spr_circ_cmp_trip(&p, NULL, iref, span, &t1, NULL, TMO), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "vto_p_V = 0.45");
  CU_ASSERT(divider_ok());
}

/* Input-referred noise over 1 kHz - 1 MHz (below the input pole, about
 * 30 MHz: R_s times the Miller-multiplied gate capacitance).  The two
 * sense resistors alone give a white current noise 2 x 4kT/R_s at the
 * input (R_sp's Norton current adds to Icol; R_sn's enters the other side
 * with the same gain): the floor.  The input pair and the mirror add
 * channel thermal noise (8/3) kT gm each, referred to the input current:
 * 2 (8/3) kT (1 + gm3/gm1) / (gm1 R_s^2), i.e. a share
 * (2/3)(1 + gm3/gm1) / (gm1 R_s) = 0.38 of the floor's power with the
 * square-law gm1 = 0.14 mS, gm3 = 0.089 mS at 6.25 uA: a ratio
 * sqrt(1.38) = 1.18 to the floor.  Assert [1.10, 1.30]: it fails without
 * the transistor noise (1.0) or with it doubled (1.33), and leaves room
 * for the square-law gm (no LAMBDA, no body effect). */
static void test_cmp_noise(void) {
  spr_circ_cmp p;
  spr_circ_cmp_default(&p);
  const double iref = 10e-6, flo = 1e3, fhi = 1e6;
  double it, irms;
  char *text = NULL;
  int rc = spr_circ_cmp_noise(&p, NULL, iref, 4e-6, flo, fhi, 10, &it, &irms, &text, TMO);
  if (rc) fprintf(stderr, "\n  cmp noise: %s\n", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  double floor_ = sqrt(2 * 4 * KB * 300.15 / p.r_sense_ohm * (fhi - flo));
  printf("\n    comparator noise %.4e A rms at trip %.6e A; sense resistors alone %.4e A rms "
         "(ratio %.3f)", irms, it, floor_, irms / floor_);
  CU_ASSERT(irms / floor_ > 1.10 && irms / floor_ < 1.30);
  SPR_ASSERT_CONTAINS(text, "\nnoise v(o1) icol dec 10 1000 1000000\n");
  free(text);
  CU_ASSERT_EQUAL(spr_circ_cmp_noise(&p, NULL, iref, 4e-6, flo, fhi, 0, &it, &irms, NULL, TMO),
                  SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "points_per_decade = 0");
  /* the spectra at the same bias: the same input-referred total; a
   * transimpedance gain R_s times the OTA's gain (over 1e5 V/A) at the
   * lowest frequency, flat at 10 kHz and falling by 1 MHz (the OTA
   * output's pole at the trip point, near 1 MHz: the inverter at its
   * switching point Miller-multiplies its gate-drain capacitance); the
   * input-referred density white (all sources sit at the input) */
  spr_circ_cmp_spectrum sp;
  rc = spr_circ_cmp_noise_spectrum(&p, NULL, iref, it, flo, fhi, 10, &sp, NULL, TMO);
  if (rc) fprintf(stderr, "\n  spectrum: %s\n", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(sp.n, 31);
  CU_ASSERT(fabs(sp.inoise_total_A / irms - 1) < 1e-9);
  CU_ASSERT(fabs(sp.f_Hz[0] / flo - 1) < 1e-9 && fabs(sp.f_Hz[sp.n - 1] / fhi - 1) < 1e-9);
  const double gain0 = sp.onoise_V[0] / sp.inoise_A[0];
  const double gain10k = sp.onoise_V[10] / sp.inoise_A[10], gain1M = sp.onoise_V[30] / sp.inoise_A[30];
  double dmin = 1, dmax = 0;
  for (int i = 0; i < sp.n; i++) {
    dmin = fmin(dmin, sp.inoise_A[i]);
    dmax = fmax(dmax, sp.inoise_A[i]);
  }
  printf("; gain %.4g V/A at 1 kHz, %.4g at 10 kHz, %.4g at 1 MHz; input density %.4g..%.4g A/rtHz",
         gain0, gain10k, gain1M, dmin, dmax);
  CU_ASSERT(gain0 > 1e5);
  CU_ASSERT(fabs(sp.f_Hz[10] / 1e4 - 1) < 1e-9 && fabs(gain10k / gain0 - 1) < 0.01);
  CU_ASSERT(gain1M < 0.9 * gain0);
  CU_ASSERT(dmax / dmin < 1.01);
  spr_circ_cmp_spectrum_free(&sp);
  spr_circ_cmp_spectrum_free(NULL);
  CU_ASSERT_EQUAL(spr_circ_cmp_noise_spectrum(&p, NULL, iref, -1e-6, flo, fhi, 10, &sp, NULL, TMO),
                  SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "i_col_A = -1e-06");
}

/* Decision transient: the delay shrinks as the overdrive grows (more
 * current slews the OTA output faster); the energy includes the static
 * bias (p_static x window) and a dynamic part that charges C_load and
 * the internal nodes, at least C_load VDD^2 / 2 (the inverter output
 * swings 0 -> VDD; the supply delivers C_load VDD^2 for it). */
static void test_cmp_step(void) {
  spr_circ_cmp p;
  spr_circ_cmp_default(&p);
  spr_circ_step st;
  spr_circ_step_default(&st);
  const double iref = 10e-6, od[3] = {0.5e-6, 2e-6, 6e-6};
  double delay[3], trip;
  CU_ASSERT_EQUAL_FATAL(spr_circ_cmp_trip(&p, NULL, iref, 4e-6, &trip, NULL, TMO), 0);
  for (int k = 0; k < 3; k++) {
    spr_circ_cmp_decision dec;
    char *text = NULL;
    int rc = spr_circ_cmp_step(&p, NULL, iref, trip, od[k], &st, &dec, k == 0 ? &text : NULL,
                               TMO);
    if (rc) fprintf(stderr, "\n  step: %s\n", spr_errmsg());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    delay[k] = dec.delay_s;
    double edyn = dec.energy_J - dec.p_static_W * st.window_s;
    printf("\n    overdrive %.1f uA: delay %.3f ns, energy %.1f fJ (static %.1f uW, dynamic "
           "%.1f fJ; C_L VDD^2 = %.1f fJ)",
           1e6 * od[k], 1e9 * dec.delay_s, 1e15 * dec.energy_J, 1e6 * dec.p_static_W,
           1e15 * edyn, 1e15 * p.c_load_F * p.vdd_V * p.vdd_V);
    CU_ASSERT(dec.delay_s > 0 && dec.delay_s < st.window_s);
    CU_ASSERT(dec.p_static_W > 0);
    CU_ASSERT(edyn > 0.5 * p.c_load_F * p.vdd_V * p.vdd_V);
    if (text) {
      char want[160];
      snprintf(want, sizeof want, "Icol 0 inp PWL(0 %.17g 2.0000000000000001e-09", trip - od[0]);
      SPR_ASSERT_CONTAINS(text, want);
      free(text);
    }
  }
  CU_ASSERT(delay[0] > delay[1] && delay[1] > delay[2]);
  /* errors: a 50 mV shift of M2 moves the trip 2.5 uA up; a step from
   * 9 to 11 uA then never trips; a shift of -50 mV leaves the output high
   * before the step */
  double d[SPR_CIRC_CMP_N_MOS] = {0};
  spr_circ_cmp_decision dec;
  d[1] = 50e-3;
  CU_ASSERT_EQUAL(spr_circ_cmp_step(&p, d, iref, iref, 1e-6, &st, &dec, NULL, TMO), SPR_ESPICE);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "does not reach VDD/2");
  d[1] = -50e-3;
  CU_ASSERT_EQUAL(spr_circ_cmp_step(&p, d, iref, iref, 1e-6, &st, &dec, NULL, TMO), SPR_ESPICE);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "not below VDD/2 before the step");
  CU_ASSERT_EQUAL(spr_circ_cmp_step(&p, NULL, iref, 1e-6, 2e-6, &st, &dec, NULL, TMO),
                  SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "i_center_A = 1e-06");
  st.window_s = 0;
  CU_ASSERT_EQUAL(spr_circ_cmp_step(&p, NULL, iref, iref, 1e-6, &st, &dec, NULL, TMO),
                  SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "step.window_s = 0");
  CU_ASSERT(divider_ok());
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
                         {"a cancel flag kills the child at once", test_cancel},
                         {"the child dies with its parent", test_dies_with_parent},
                         {"the child's signals have their default actions", test_child_default_signals},
                         {"invalid arguments", test_invalid_args},
                         {"parent memory flat", test_memory_flat},
                         {"ngspice version", test_version},
                         {"whole vectors of dc, ac and noise", test_run_vectors},
                         {"plot names", test_plot_names},
                         {"spr_spice_run errors, then a good run", test_run_errors},
                         {"sinh cell I-V", test_cell_iv},
                         {"sinh crossbar vs nodal and closed form", test_xbar_sinh},
                         {"column noise vs 4kTG", test_xbar_noise},
                         {"RC pulse energy vs closed form", test_energy_rc},
                         {"crossbar read energy", test_xbar_energy},
                         {"comparator mismatch draws", test_cmp_mismatch},
                         {"comparator trip and VTO shift", test_cmp_trip},
                         {"comparator input noise", test_cmp_noise},
                         {"comparator decision transient", test_cmp_step},
                         CU_TEST_INFO_NULL};
  return spr_test_run("spice", tests);
}
