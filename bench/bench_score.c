/* bench_score.c - speed of analog scoring plus thresholding against a bare
 * GEMM of the same shapes.
 *
 * Workload: the BERT-base preset at N = 512 (12 layers x 12 heads, d = 64)
 * with every non-ideality on (the defaults).  Per head, the timed
 * simulation is: DAC gains, programming the keys into the arrays
 * (variation, stuck-at, drift, first-order IR drop folded into one
 * effective matrix), comparator offsets, the score GEMM, the read-noise
 * variance GEMM, one Gaussian per decision and the comparison.  Q/K
 * generation and quantization are done before timing.  The reference is
 * cblas_sgemm of the same shapes (512 x 64 times 64 x 512 per head).
 * Both run on one thread; each is repeated and the median printed.
 *
 *   bench/bench_score [REPEATS]     (default 5)
 */
#include "config.h"
#include "spr_analog.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_quant.h"
#include "spr_result.h"
#include "spr_rng.h"
#include "spr_synth.h"
#include "spr_xbar.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 5;
  if (reps < 1 || reps > 1000) {
    fprintf(stderr, "bench_score: REPEATS must be in [1, 1000]\n");
    return 2;
  }
  openblas_set_num_threads(1);
  spr_config c;
  spr_config_default(&c);
  if (spr_config_resolve(&c, "bench")) {
    fprintf(stderr, "bench_score: %s\n", spr_errmsg());
    return 1;
  }
  const int L = c.wl.n_layers, H = c.wl.n_heads, n = c.wl.seq_len, d = c.wl.head_dim;
  const int heads = L * H;
  const size_t nd = (size_t)n * d;
  int8_t *q = malloc(heads * nd), *kmsb = malloc(heads * nd), *k8 = malloc(nd);
  float *Q = malloc(nd * sizeof *Q), *K = malloc(nd * sizeof *K);
  float *qf = malloc(heads * nd * sizeof *qf), *kf = malloc(heads * nd * sizeof *kf);
  float *S = malloc((size_t)n * n * sizeof *S);
  uint8_t *mask = malloc((size_t)n * spr_mask_row_bytes(n));
  double *work = malloc(3 * (size_t)c.xbar.rows * c.xbar.cols * sizeof *work);
  double *gains = malloc((size_t)spr_xbar_col_tiles(&c.xbar, n) * d * sizeof *gains);
  float *off = malloc((size_t)n * sizeof *off);
  spr_xbar_head xb;
  spr_analog_ws ws;
  gsl_rng *r1 = spr_rng_alloc(), *r2 = spr_rng_alloc();
  if (!q || !kmsb || !k8 || !Q || !K || !qf || !kf || !S || !mask || !work || !gains || !off ||
      !r1 || !r2 || spr_xbar_head_alloc(&xb, &c.xbar, n, d) || spr_analog_ws_alloc(&ws, n, n, d)) {
    fprintf(stderr, "bench_score: out of memory\n");
    return 1;
  }
  for (int h = 0; h < heads; h++) {
    float s;
    if (spr_synth_head(&c.wl, c.seed, h / H, h % H, Q, K, NULL) ||
        spr_quant_sym(Q, nd, c.an.query_bits, q + h * nd, &s) ||
        spr_quant_sym(K, nd, c.xbar.key_bits, k8, &s)) {
      fprintf(stderr, "bench_score: %s\n", spr_errmsg());
      return 1;
    }
    spr_quant_msb(k8, nd, c.xbar.key_bits, c.xbar.key_msb_bits, kmsb + h * nd);
    for (size_t t = 0; t < nd; t++) {
      qf[h * nd + t] = (float)q[h * nd + t];
      kf[h * nd + t] = (float)kmsb[h * nd + t];
    }
  }
  double *t_sim = malloc(reps * sizeof *t_sim), *t_prog = malloc(reps * sizeof *t_prog);
  double *t_gemm = malloc(reps * sizeof *t_gemm);
  int64_t kept_total = 0;
  for (int rep = 0; rep < reps; rep++) {
    /* the simulation */
    double tp = 0, t0 = now();
    kept_total = 0;
    for (int h = 0; h < heads; h++) {
      const int l = h / H, hh = h % H;
      double ta = now();
      spr_rng_key(r1, c.seed, l, hh, 0, SPR_STREAM_DAC);
      spr_dac_gains(&c.an, xb.col_tiles, d, r1, gains);
      spr_rng_key(r1, c.seed, l, hh, 0, SPR_STREAM_PROG);
      spr_rng_key(r2, c.seed, l, hh, 0, SPR_STREAM_STUCK);
      if (spr_xbar_program(&xb, &c.xbar, kmsb + h * nd, gains, r1, r2, work)) {
        fprintf(stderr, "bench_score: %s\n", spr_errmsg());
        return 1;
      }
      spr_analog_scale sc;
      spr_analog_scale_of(&c.an, xb.dg_S, &sc);
      spr_rng_key(r1, c.seed, l, hh, 0, SPR_STREAM_CMP_OFFSET);
      spr_cmp_offsets(&c.an, &sc, n, r1, off);
      tp += now() - ta;
      spr_rng_key(r1, c.seed, l, hh, 0, SPR_STREAM_READ);
      int64_t kept;
      spr_analog_decide(&c.an, &sc, &xb, q + h * nd, n, 40.0, off, r1, &ws, mask, NULL, &kept);
      kept_total += kept;
    }
    t_sim[rep] = now() - t0;
    t_prog[rep] = tp;
    /* the bare GEMM of the same shapes */
    t0 = now();
    for (int h = 0; h < heads; h++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, 1.0f, qf + h * nd, d,
                  kf + h * nd, d, 0.0f, S, n);
    t_gemm[rep] = now() - t0;
  }
  double sim = median(t_sim, reps), prog = median(t_prog, reps), gemm = median(t_gemm, reps);
  printf("bench_score: BERT-base, %d heads of N = %d, d = %d, every non-ideality on, "
         "1 thread, median of %d\n", heads, n, d, reps);
  printf("  kept decisions (check)          %lld of %lld\n", (long long)kept_total,
         (long long)heads * n * n);
  printf("  simulation: program + offsets   %8.1f ms\n", 1e3 * prog);
  printf("  simulation: score + threshold   %8.1f ms\n", 1e3 * (sim - prog));
  printf("  simulation total                %8.1f ms\n", 1e3 * sim);
  printf("  bare cblas_sgemm, same shapes   %8.1f ms  (%.1f GFLOP/s)\n", 1e3 * gemm,
         2.0 * heads * n * n * d / gemm * 1e-9);
  printf("  ratio simulation / bare GEMM    %8.2f\n", sim / gemm);
  free(q); free(kmsb); free(k8); free(Q); free(K); free(qf); free(kf); free(S); free(mask);
  free(work); free(gains); free(off); free(t_sim); free(t_prog); free(t_gemm);
  spr_xbar_head_free(&xb);
  spr_analog_ws_free(&ws);
  gsl_rng_free(r1);
  gsl_rng_free(r2);
  return 0;
}
