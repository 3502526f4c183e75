/* bench_pipeline.c - the whole pipeline of `sprintsim run` (workload,
 * quantization, threshold calibration, analog scoring and thresholding,
 * then the digital path and ledger of SPRINT and every baseline) for the
 * BERT-base preset at N = 512 with the 16 KB buffer, beside the bare GEMM
 * of the same score shapes, in the same run.
 *
 *   bench/bench_pipeline [REPEATS] [THREADS]     (default 3, 1)
 *
 * Prints per-stage medians (analog only, then with the digital path and
 * the baselines) and their ratios to the bare GEMM, the ratio last.
 */
#include "config.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_pipeline.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

/* Seconds for a whole run of c on `threads` threads. */
static double time_run(const spr_config *c, int threads) {
  spr_run *r;
  if (spr_run_alloc(c, threads, &r)) {
    fprintf(stderr, "bench_pipeline: %s\n", spr_errmsg());
    exit(1);
  }
  double t0 = now();
  for (int l = 0; l < c->wl.n_layers; l++)
    if (spr_run_layer(r, l)) {
      fprintf(stderr, "bench_pipeline: %s\n", spr_errmsg());
      exit(1);
    }
  double t = now() - t0;
  spr_run_free(r);
  return t;
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 3, threads = argc > 2 ? atoi(argv[2]) : 1;
  if (reps < 1 || reps > 100 || threads < 1 || threads > 64) {
    fprintf(stderr, "usage: bench_pipeline [REPEATS 1..100] [THREADS 1..64]\n");
    return 2;
  }
  spr_config full;
  spr_config_default(&full);
  if (spr_config_resolve(&full, "bench")) {
    fprintf(stderr, "bench_pipeline: %s\n", spr_errmsg());
    return 1;
  }
  spr_config sprint_only = full;
  sprint_only.bl.oracle = sprint_only.bl.topk = sprint_only.bl.sanger = 0;
  sprint_only.bl.leopard = sprint_only.bl.window = sprint_only.bl.dense_tiled = 0;
  const int L = full.wl.n_layers, H = full.wl.n_heads, n = full.wl.seq_len, d = full.wl.head_dim;
  /* the bare GEMM: one n x d by d x n product per head */
  float *a = malloc((size_t)n * d * sizeof *a), *b = malloc((size_t)n * d * sizeof *b);
  float *s = malloc((size_t)n * n * sizeof *s);
  if (!a || !b || !s) return 1;
  for (int i = 0; i < n * d; i++) {
    a[i] = (float)((i * 37) % 15 - 7);
    b[i] = (float)((i * 11) % 16 - 8);
  }
  double *tg = malloc(reps * sizeof *tg), *ts = malloc(reps * sizeof *ts), *tf = malloc(reps * sizeof *tf);
  for (int rep = 0; rep < reps; rep++) {
    openblas_set_num_threads(1);
    double t0 = now();
    for (int h = 0; h < L * H; h++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, 1.0f, a, d, b, d, 0.0f, s, n);
    tg[rep] = now() - t0;
    ts[rep] = time_run(&sprint_only, threads);
    tf[rep] = time_run(&full, threads);
  }
  double g = median(tg, reps), sp = median(ts, reps), fu = median(tf, reps);
  printf("bench_pipeline: BERT-base, %d heads of N = %d, d = %d, 16 KB buffer, %d thread%s, median of %d\n",
         L * H, n, d, threads, threads == 1 ? "" : "s", reps);
  printf("  bare cblas_sgemm, same score shapes      %9.1f ms\n", 1e3 * g);
  printf("  pipeline, SPRINT + dense digital path    %9.1f ms  (%.1f x GEMM)\n", 1e3 * sp, sp / g);
  printf("  pipeline, SPRINT + all baselines         %9.1f ms\n", 1e3 * fu);
  printf("  ratio full pipeline / bare GEMM          %9.1f\n", fu / g);
  free(a); free(b); free(s); free(tg); free(ts); free(tf);
  return 0;
}
