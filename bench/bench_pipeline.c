/* bench_pipeline.c - the whole pipeline of `sprintsim run` (workload,
 * quantization, threshold calibration, analog scoring and thresholding,
 * then the digital path and ledger of SPRINT and every baseline) for the
 * BERT-base preset at N = 512 with the 16 KB buffer, beside the bare GEMM
 * of the same score shapes (one N x d by d x N SGEMM per head), measured in
 * the same run.
 *
 *   bench/bench_pipeline [REPEATS] [THREADS]     (default 3, 1)
 *
 * Method: one warm-up of each side (the GEMM's 144 calls and a whole run),
 * then REPEATS rounds, each timing the GEMM and a whole run back to back
 * (so both see the same load): wall time, the CPU time of the process (all
 * its threads) and, per stage, the thread CPU time the library charges to
 * it (spr_run_stages).  Medians of the rounds.  It prints the load average
 * before and after, the per-stage breakdown in GEMM-equivalents (1 GEMM-eq
 * = the CPU of the bare GEMMs), the minor page faults of a run, and the
 * ratios last:
 *   CPU ratio   pipeline CPU / GEMM CPU (one thread: the cost target)
 *   wall ratio  pipeline wall on THREADS threads / GEMM wall on one.
 */
#define _DEFAULT_SOURCE /* getloadavg */
#include "config.h"
#include "spr_attend.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_pipeline.h"

#include <cblas.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

static double cpu_process(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double minor_faults(void) {
  struct rusage u;
  return getrusage(RUSAGE_SELF, &u) ? 0 : (double)u.ru_minflt;
}

/* One whole run of c, from its allocation to its free: wall and process
 * CPU seconds of its layers, stage seconds, and minor page faults of the
 * whole (first touches of its buffers: 10 us each on the machine of
 * docs/performance.md 6.0). */
static void time_run(const spr_config *c, int threads, double *wall, double *cpu, double *stage,
                     double *faults) {
  const double f0 = minor_faults();
  spr_run *r;
  if (spr_run_alloc(c, threads, &r)) {
    fprintf(stderr, "bench_pipeline: %s\n", spr_errmsg());
    exit(1);
  }
  const double w0 = now(), c0 = cpu_process();
  for (int l = 0; l < c->wl.n_layers; l++)
    if (spr_run_layer(r, l)) {
      fprintf(stderr, "bench_pipeline: %s\n", spr_errmsg());
      exit(1);
    }
  *wall = now() - w0;
  *cpu = cpu_process() - c0;
  spr_run_stages(r, stage);
  spr_run_free(r);
  *faults = minor_faults() - f0;
}

/* The bare GEMMs of the run's score shapes: wall and CPU seconds. */
static void time_gemm(int heads, int n, int d, const float *a, const float *b, float *s, double *wall,
                      double *cpu) {
  openblas_set_num_threads(1);
  const double w0 = now(), c0 = cpu_process();
  for (int h = 0; h < heads; h++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, 1.0f, a, d, b, d, 0.0f, s, n);
  *wall = now() - w0;
  *cpu = cpu_process() - c0;
}

static void print_load(const char *when) {
  double la[3];
  if (getloadavg(la, 3) == 3) printf("  load average %s: %.2f %.2f %.2f\n", when, la[0], la[1], la[2]);
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 3, threads = argc > 2 ? atoi(argv[2]) : 1;
  if (reps < 1 || reps > 100 || threads < 1 || threads > 64) {
    fprintf(stderr, "usage: bench_pipeline [REPEATS 1..100] [THREADS 1..64]\n");
    return 2;
  }
  spr_config c;
  spr_config_default(&c);
  if (spr_config_resolve(&c, "bench")) {
    fprintf(stderr, "bench_pipeline: %s\n", spr_errmsg());
    return 1;
  }
  const int L = c.wl.n_layers, H = c.wl.n_heads, n = c.wl.seq_len, d = c.wl.head_dim;
  float *a = malloc((size_t)n * d * sizeof *a), *b = malloc((size_t)n * d * sizeof *b);
  float *s = malloc((size_t)n * n * sizeof *s);
  double *gw = calloc(reps, sizeof *gw), *gc = calloc(reps, sizeof *gc);
  double *pw = calloc(reps, sizeof *pw), *pc = calloc(reps, sizeof *pc);
  double *pf = calloc(reps, sizeof *pf);
  double *st = calloc((size_t)reps * SPR_STAGE_N, sizeof *st);
  if (!a || !b || !s || !gw || !gc || !pw || !pc || !pf || !st) return 1;
  for (int i = 0; i < n * d; i++) {
    a[i] = (float)((i * 37) % 15 - 7);
    b[i] = (float)((i * 11) % 16 - 8);
  }
  printf("bench_pipeline: BERT-base, %d heads of N = %d, d = %d, 16 KB buffer, every scheme, "
         "%d thread%s, median of %d rounds after a warm-up\n",
         L * H, n, d, threads, threads == 1 ? "" : "s", reps);
  print_blas();
  print_load("before");
  double w, cp, tmp[SPR_STAGE_N];
  time_gemm(L * H, n, d, a, b, s, &w, &cp); /* warm-up */
  time_run(&c, threads, &w, &cp, tmp, &pf[0]);
  for (int r = 0; r < reps; r++) {
    time_gemm(L * H, n, d, a, b, s, &gw[r], &gc[r]);
    time_run(&c, threads, &pw[r], &pc[r], st + (size_t)r * SPR_STAGE_N, &pf[r]);
  }
  print_load("after");
  const double g_wall = median(gw, reps), g_cpu = median(gc, reps);
  printf("  bare cblas_sgemm, %d x (%d x %d x %d): %.1f ms CPU, %.1f ms wall (%.1f GFLOP/s)\n", L * H, n,
         n, d, 1e3 * g_cpu, 1e3 * g_wall, 2.0 * L * H * n * n * d / g_cpu * 1e-9);
  printf("  stage (thread CPU, median)                 ms   GEMM-eq\n");
  double ssum = 0;
  for (int k = 0; k < SPR_STAGE_N; k++) {
    double v[100];
    for (int r = 0; r < reps; r++) v[r] = st[(size_t)r * SPR_STAGE_N + k];
    const double m = median(v, reps);
    ssum += m;
    printf("    %-38s %8.1f  %6.2f\n", spr_stage_name(k), 1e3 * m, m / g_cpu);
  }
  const double p_cpu = median(pc, reps), p_wall = median(pw, reps);
  printf("    %-38s %8.1f  %6.2f\n", "sum of the stages", 1e3 * ssum, ssum / g_cpu);
  printf("  pipeline: %.1f ms CPU (all threads), %.1f ms wall on %d thread%s\n", 1e3 * p_cpu,
         1e3 * p_wall, threads, threads == 1 ? "" : "s");
  printf("  minor page faults per run (median): %.0f\n", median(pf, reps));
  printf("  CPU ratio  pipeline CPU / GEMM CPU          %8.2f\n", p_cpu / g_cpu);
  printf("  wall ratio pipeline wall (%d thr) / GEMM wall %6.2f\n", threads, p_wall / g_wall);
  free(a); free(b); free(s); free(gw); free(gc); free(pw); free(pc); free(pf); free(st);
  return 0;
}
