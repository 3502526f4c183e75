/* bench_score.c - speed of analog scoring plus thresholding against a bare
 * GEMM of the same shapes.
 *
 * Workload: the BERT-base preset at N = 512 (12 layers x 12 heads, d = 64)
 * with every non-ideality on (the defaults).  Per head, the timed
 * simulation is everything sim/spr_pipeline.c does to turn quantized Q and
 * K into the analog mask: DAC gains, programming the keys into the arrays
 * (variation, stuck-at, drift, first-order IR drop folded into one
 * effective matrix), comparator offsets, and spr_analog_decide (the score
 * GEMM, the noise bound, the exact variance and the noise of the near
 * decisions, the comparison and the mask packing).  Q/K generation,
 * quantization and the threshold calibration (the pipeline's keep-rate
 * rule over each layer's ideal scores) are done before timing.  The
 * reference is cblas_sgemm of the same shapes (512 x 64 times 64 x 512
 * per head).  Both run on one thread; each is repeated and the medians
 * printed, the ratio last.
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

#include "bench_util.h"

static void die(void) {
  fprintf(stderr, "bench_score: %s\n", spr_errmsg());
  exit(1);
}

/* Timed phases of the simulation, per repetition. */
enum { T_GAINS, T_PROG, T_OFF, T_DECIDE, T_GEMM_IN, T_SIM, T_BARE, NT };
static const char *t_name[NT] = {
    "  DAC gains                       ", "  programming (all static effects)",
    "  comparator offsets              ", "  decide (GEMM, bound, near, mask)",
    "    its score GEMM (timed apart)  ", "simulation total                  ",
    "bare cblas_sgemm, same shapes     "};

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 5;
  if (reps < 1 || reps > 1000) {
    fprintf(stderr, "bench_score: REPEATS must be in [1, 1000]\n");
    return 2;
  }
  openblas_set_num_threads(1);
  spr_config c;
  spr_config_default(&c);
  if (spr_config_resolve(&c, "bench")) die();
  if (c.thr.mode != SPR_THR_KEEP_RATE) {
    fprintf(stderr, "bench_score: the default threshold mode is expected to be keep_rate\n");
    return 1;
  }
  const int L = c.wl.n_layers, H = c.wl.n_heads, n = c.wl.seq_len, d = c.wl.head_dim;
  const int heads = L * H, bits = c.thr.bits;
  const size_t nd = (size_t)n * d, nn = (size_t)n * n, ncode = (size_t)1 << bits;
  int8_t *q = malloc(heads * nd), *kmsb = malloc(heads * nd), *k8 = malloc(nd);
  float *Q = malloc(nd * sizeof *Q), *K = malloc(nd * sizeof *K);
  float *qf = malloc(heads * nd * sizeof *qf), *kf = malloc(heads * nd * sizeof *kf);
  float *S = malloc(nn * sizeof *S);
  int32_t *si = malloc((size_t)H * nn * sizeof *si);
  int64_t *counts = malloc(ncode * sizeof *counts);
  double *theta = malloc(heads * sizeof *theta);
  uint8_t *mask = malloc((size_t)n * spr_mask_row_bytes(n));
  double *work = malloc(3 * (size_t)c.xbar.rows * c.xbar.cols * sizeof *work);
  double *gains = malloc((size_t)spr_xbar_col_tiles(&c.xbar, n) * d * sizeof *gains);
  float *off = malloc((size_t)n * sizeof *off);
  double *t[NT];
  for (int k = 0; k < NT; k++) t[k] = calloc((size_t)reps, sizeof *t[k]);
  spr_xbar_head xb;
  spr_analog_ws ws;
  gsl_rng *r1 = spr_rng_alloc(), *r2 = spr_rng_alloc();
  if (!q || !kmsb || !k8 || !Q || !K || !qf || !kf || !S || !si || !counts || !theta || !mask ||
      !work || !gains || !off || !t[NT - 1] || !r1 || !r2) {
    fprintf(stderr, "bench_score: out of memory\n");
    return 1;
  }
  if (spr_xbar_head_alloc(&xb, &c.xbar, n, d) || spr_analog_ws_alloc(&ws, n, n, d)) die();
  /* untimed: workload, quantization, ideal scores, thresholds */
  for (int l = 0; l < L; l++) {
    int32_t lmax = 0;
    for (int hh = 0; hh < H; hh++) {
      const int h = l * H + hh;
      float s;
      if (spr_synth_head(&c.wl, c.seed, l, hh, Q, K, NULL) ||
          spr_quant_sym(Q, nd, c.an.query_bits, q + h * nd, &s) ||
          spr_quant_sym(K, nd, c.xbar.key_bits, k8, &s))
        die();
      spr_quant_msb(k8, nd, c.xbar.key_bits, c.xbar.key_msb_bits, kmsb + h * nd);
      for (size_t e = 0; e < nd; e++) {
        qf[h * nd + e] = (float)q[h * nd + e];
        kf[h * nd + e] = (float)kmsb[h * nd + e];
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, 1.0f, qf + h * nd, d,
                  kf + h * nd, d, 0.0f, S, n);
      for (size_t e = 0; e < nn; e++) {
        const int32_t v = (int32_t)S[e], a = v < 0 ? -v : v;
        si[hh * nn + e] = v;
        lmax = a > lmax ? a : lmax;
      }
    }
    /* the pipeline's keep-rate rule (per layer, or per head) */
    memset(counts, 0, ncode * sizeof *counts);
    for (int hh = 0; hh < H; hh++) {
      int32_t hmax = 0;
      for (size_t e = 0; e < nn; e++) {
        const int32_t a = si[hh * nn + e] < 0 ? -si[hh * nn + e] : si[hh * nn + e];
        hmax = a > hmax ? a : hmax;
      }
      const int32_t m = c.thr.per_head ? hmax : lmax;
      const double range = c.thr.range > 0 ? c.thr.range : (m > 0 ? (double)m : 1.0);
      if (c.thr.per_head) memset(counts, 0, ncode * sizeof *counts);
      if (spr_thr_count(si + hh * nn, nn, range, bits, counts)) die();
      theta[l * H + hh] = range; /* the range, until the code is known */
      if (c.thr.per_head) {
        const int code = spr_thr_pick(counts, (int64_t)nn, bits, c.thr.keep_rate);
        theta[l * H + hh] = spr_thr_level(code, range, bits);
      }
    }
    if (!c.thr.per_head) {
      const int code = spr_thr_pick(counts, (int64_t)nn * H, bits, c.thr.keep_rate);
      for (int hh = 0; hh < H; hh++)
        theta[l * H + hh] = spr_thr_level(code, theta[l * H + hh], bits);
    }
  }
  int64_t kept_total = 0, near_total = 0;
  for (int rep = 0; rep < reps; rep++) {
    /* the simulation, one head after another as one pipeline thread does */
    kept_total = near_total = 0;
    double t0 = now();
    for (int h = 0; h < heads; h++) {
      const int l = h / H, hh = h % H;
      double ta = now();
      spr_rng_key(r1, c.seed, l, hh, 0, SPR_STREAM_DAC);
      if (spr_dac_gains(&c.an, xb.col_tiles, d, r1, gains)) die();
      double tb = now();
      spr_rng_key(r1, c.seed, l, hh, 0, SPR_STREAM_PROG);
      spr_rng_key(r2, c.seed, l, hh, 0, SPR_STREAM_STUCK);
      if (spr_xbar_program(&xb, &c.xbar, kmsb + h * nd, gains, r1, r2, work, NULL)) die();
      double tc = now();
      spr_analog_scale sc;
      spr_analog_scale_of(&c.an, xb.dg_S, &sc);
      spr_rng_key(r1, c.seed, l, hh, 0, SPR_STREAM_CMP_OFFSET);
      spr_cmp_offsets(&c.an, &sc, n, r1, off);
      double td = now();
      spr_rng_key(r1, c.seed, l, hh, 0, SPR_STREAM_READ);
      spr_rng_key(r2, c.seed, l, hh, 0, SPR_STREAM_READ_FAR);
      int64_t kept;
      if (spr_analog_decide(&c.an, &sc, &xb, q + h * nd, n, theta[h], off, r1, r2, &ws, mask, NULL,
                            &kept))
        die();
      double te = now();
      kept_total += kept;
      near_total += ws.n_near;
      t[T_GAINS][rep] += tb - ta;
      t[T_PROG][rep] += tc - tb;
      t[T_OFF][rep] += td - tc;
      t[T_DECIDE][rep] += te - td;
    }
    t[T_SIM][rep] = now() - t0;
    /* decide's own score GEMM (q w, NoTrans), timed apart for the
     * breakdown only; xb holds the last head's weights */
    t0 = now();
    for (int h = 0; h < heads; h++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, d, 1.0f, qf + h * nd, d, xb.w,
                  n, 0.0f, S, n);
    t[T_GEMM_IN][rep] = now() - t0;
    /* the bare GEMM of the same shapes */
    t0 = now();
    for (int h = 0; h < heads; h++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, 1.0f, qf + h * nd, d,
                  kf + h * nd, d, 0.0f, S, n);
    t[T_BARE][rep] = now() - t0;
  }
  double med[NT];
  for (int k = 0; k < NT; k++) med[k] = median(t[k], reps);
  const double total = (double)heads * nn;
  printf("bench_score: BERT-base, %d heads of N = %d, d = %d, every non-ideality on, "
         "1 thread, median of %d\n", heads, n, d, reps);
  print_blas();
  printf("  kept decisions                  %lld of %.0f (%.1f%%; keep_rate %.2f)\n",
         (long long)kept_total, total, 100.0 * kept_total / total, c.thr.keep_rate);
  printf("  near decisions (noise drawn)    %lld (%.2f%%)\n", (long long)near_total,
         100.0 * near_total / total);
  for (int k = 0; k < NT; k++) {
    printf("  %s %8.1f ms", t_name[k], 1e3 * med[k]);
    if (k == T_BARE) printf("  (%.1f GFLOP/s)", 2.0 * total * d / med[k] * 1e-9);
    printf("\n");
  }
  printf("  ratio simulation / bare GEMM      %8.2f\n", med[T_SIM] / med[T_BARE]);
  free(q); free(kmsb); free(k8); free(Q); free(K); free(qf); free(kf); free(S); free(si);
  free(counts); free(theta); free(mask); free(work); free(gains); free(off);
  for (int k = 0; k < NT; k++) free(t[k]);
  spr_xbar_head_free(&xb);
  spr_analog_ws_free(&ws);
  gsl_rng_free(r1);
  gsl_rng_free(r2);
  return 0;
}
