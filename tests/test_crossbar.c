/* test_crossbar.c - key mapping, static non-idealities and first-order IR
 * drop, against independent computations (brute force, closed forms, a
 * dense nodal solve written here with GSL). */
#include "config.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_rng.h"
#include "spr_test.h"
#include "spr_nodal_ref.h"
#include "spr_xbar.h"

#include <gsl/gsl_linalg.h>
#include <gsl/gsl_randist.h>
#include <math.h>

static spr_xbar_params ideal_params(void) {
  spr_config c;
  spr_config_default(&c);
  spr_xbar_params p = c.xbar;
  p.variation = p.stuck = p.drift = 0;
  p.ir_drop = SPR_IR_OFF;
  return p;
}

/* n x d key codes in [-8, 7] from a fixed stream */
static int8_t *random_codes(int n, int d, uint64_t seed) {
  int8_t *k = malloc((size_t)n * d);
  gsl_rng *r = spr_rng_alloc();
  spr_rng_key(r, seed, 0, 0, 0, 99);
  for (int i = 0; i < n * d; i++) k[i] = (int8_t)((int)gsl_rng_uniform_int(r, 16) - 8);
  gsl_rng_free(r);
  return k;
}

typedef struct {
  spr_xbar_head h;
  double *work;
  gsl_rng *r1, *r2;
  spr_nodal_ws *nodal; /* ir_drop = nodal only */
} fixture;

static int fx_program(fixture *f, const spr_xbar_params *p, const int8_t *k, int n, int d) {
  int rc = spr_xbar_head_alloc(&f->h, p, n, d);
  if (rc) return rc;
  f->work = malloc(3 * (size_t)p->rows * p->cols * sizeof(double));
  f->r1 = spr_rng_alloc();
  f->r2 = spr_rng_alloc();
  if (p->ir_drop == SPR_IR_NODAL) CU_ASSERT_PTR_NOT_NULL_FATAL(f->nodal = spr_nodal_ws_alloc(p->rows, p->cols, NULL));
  spr_rng_key(f->r1, 2385, 1, 2, 0, SPR_STREAM_PROG);
  spr_rng_key(f->r2, 2385, 1, 2, 0, SPR_STREAM_STUCK);
  return spr_xbar_program(&f->h, p, k, NULL, f->r1, f->r2, f->work, f->nodal);
}

static void fx_free(fixture *f) {
  spr_xbar_head_free(&f->h);
  free(f->work);
  gsl_rng_free(f->r1);
  gsl_rng_free(f->r2);
  spr_nodal_ws_free(f->nodal);
  memset(f, 0, sizeof *f);
}

/* Ideal arrays: weights are the key codes exactly, over several tiles. */
static void test_ideal_mapping(void) {
  spr_xbar_params p = ideal_params();
  p.rows = 16;
  p.cols = 10; /* 5 keys per tile: 23 keys -> 5 column tiles */
  const int n = 23, d = 37; /* 3 row tiles, the last partial */
  int8_t *k = random_codes(n, d, 7);
  fixture f = {0};
  CU_ASSERT_EQUAL_FATAL(fx_program(&f, &p, k, n, d), 0);
  CU_ASSERT_EQUAL(f.h.row_tiles, 3);
  CU_ASSERT_EQUAL(f.h.col_tiles, 5);
  const double dg = (p.g_max_S - p.g_min_S) / 15.0;
  CU_ASSERT_DOUBLE_EQUAL(f.h.dg_S, dg, 1e-20);
  int bad = 0;
  double gsum_max_err = 0;
  for (int j = 0; j < n; j++) {
    double gs = 0, s2 = 0;
    for (int i = 0; i < d; i++) {
      int kv = k[j * d + i];
      if (f.h.w[(size_t)i * n + j] != (float)kv) bad++;
      /* one cell holds |k|, its partner level 0 */
      double g1 = (2 * p.g_min_S + abs(kv) * dg) / dg;
      double gp = p.g_min_S + (kv > 0 ? kv : 0) * dg, gm = p.g_min_S + (kv < 0 ? -kv : 0) * dg;
      double g2 = (gp * gp + gm * gm) / (dg * dg);
      if (fabs(f.h.gt[(size_t)j * 2 * d + i] - g1) > 1e-5 * g1) bad++;
      if (fabs(f.h.gt[(size_t)j * 2 * d + d + i] - g2) > 1e-5 * g2) bad++;
      gs += g1;
      s2 += g2;
    }
    /* the bound's column sums (float sums: 1e-5 relative) */
    if (fabs(f.h.g1_sum[j] - gs) > 1e-5 * gs) bad++;
    if (fabs(f.h.g2_sum[j] - s2) > 1e-5 * s2) bad++;
    gs += (3 * 16 - d) * 2 * p.g_min_S / dg; /* idle rows of the last row tile */
    gsum_max_err = fmax(gsum_max_err, fabs(f.h.gsum[j] - gs) / gs);
  }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT(gsum_max_err < 1e-12);
  CU_ASSERT_EQUAL(f.h.n_cells, (int64_t)5 * 10 * 3 * 16);
  CU_ASSERT_EQUAL(f.h.n_stuck_on + f.h.n_stuck_off, 0);
  fx_free(&f);
  free(k);
}

/* Row DAC gains scale whole rows of each column tile. */
static void test_row_gain(void) {
  spr_xbar_params p = ideal_params();
  p.rows = 8;
  p.cols = 6;
  const int n = 7, d = 5;
  int8_t *k = random_codes(n, d, 11);
  int ct = spr_xbar_col_tiles(&p, n);
  CU_ASSERT_EQUAL(ct, 3);
  double gains[15];
  for (int i = 0; i < 15; i++) gains[i] = 1.0 + 0.013 * (i - 7);
  spr_xbar_head h;
  CU_ASSERT_EQUAL_FATAL(spr_xbar_head_alloc(&h, &p, n, d), 0);
  double work[3 * 8 * 6];
  CU_ASSERT_EQUAL(spr_xbar_program(&h, &p, k, gains, NULL, NULL, work, NULL), 0);
  int bad = 0;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < d; i++) {
      double want = gains[(j / 3) * d + i] * k[j * d + i];
      if (fabs(h.w[i * n + j] - want) > 1e-6) bad++;
    }
  CU_ASSERT_EQUAL(bad, 0);
  spr_xbar_head_free(&h);
  free(k);
}


/* 1 x 1 array: I = V G / (1 + G (r_wl + r_bl)) exactly; the first-order
 * model gives V G (1 - G (r_wl + r_bl)). */
static void test_ir_closed_form(void) {
  double g = 7.3e-5, geff, work;
  double worst = spr_xbar_ir_first_order(&g, 1, 1, 3.1, 4.7, &geff, &work);
  CU_ASSERT_DOUBLE_EQUAL(worst, g * 7.8, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(geff, g * (1 - g * (3.1 + 4.7)), 1e-18);
  double exact = g / (1 + g * 7.8), ie;
  double v = 0.2;
  spr_ref_nodal(&g, 1, 1, 3.1, 4.7, &v, &ie);
  CU_ASSERT_DOUBLE_EQUAL(ie, v * exact, 1e-15);
  /* second-order agreement */
  CU_ASSERT(fabs(geff - exact) <= 1.01 * exact * pow(g * 7.8, 2));
}

/* The fitted scales of the first-order terms: G_eff = G (1 - a_wl r_wl A -
 * a_bl r_bl B), with A and B summed here by brute force over the array of
 * nominal level conductances (one tile, every effect but IR drop off). */
static void test_ir_alpha(void) {
  spr_xbar_params p = ideal_params();
  p.rows = 8;
  p.cols = 10;
  p.ir_drop = SPR_IR_FIRST_ORDER;
  p.r_wl_ohm = 2.5;
  p.r_bl_ohm = 3.5;
  p.ir_alpha_wl = 0.7385;
  p.ir_alpha_bl = 1.2385;
  const int n = 5, d = 6, R = 8, C = 10;
  int8_t *k = random_codes(n, d, 11);
  fixture f = {0};
  CU_ASSERT_EQUAL_FATAL(fx_program(&f, &p, k, n, d), 0);
  const double dg = f.h.dg_S;
  double G[8][10];
  for (int i = 0; i < R; i++)
    for (int c = 0; c < C; c++) {
      const int j = c / 2, kv = i < d && j < n ? k[j * d + i] : 0;
      const int lvl = c % 2 == 0 ? (kv > 0 ? kv : 0) : (kv < 0 ? -kv : 0);
      G[i][c] = p.g_min_S + lvl * dg;
    }
  double worst = 0, drop = 0;
  for (int i = 0; i < d; i++)
    for (int j = 0; j < n; j++) {
      double ge[2];
      for (int s = 0; s < 2; s++) {
        const int c = 2 * j + s;
        double A = 0, B = 0;
        for (int kk = 0; kk <= c; kk++)
          for (int l = kk; l < C; l++) A += G[i][l];
        for (int kk = i; kk < R; kk++)
          for (int m = 0; m <= kk; m++) B += G[m][c];
        ge[s] = G[i][c] * (1 - p.ir_alpha_wl * p.r_wl_ohm * A - p.ir_alpha_bl * p.r_bl_ohm * B);
      }
      const double want = (ge[0] - ge[1]) / dg;
      worst = fmax(worst, fabs(f.h.w[(size_t)i * n + j] - want));
      drop = fmax(drop, fabs(want - k[j * d + i]));
    }
  CU_ASSERT(worst < 1e-5);
  CU_ASSERT(drop > 0.01); /* the IR drop is really there */
  fx_free(&f);
  /* alpha = 0 switches a term off: equal to a zero resistance, bit for bit */
  spr_xbar_params q = p;
  q.ir_alpha_wl = 0;
  fixture f2 = {0}, f3 = {0};
  CU_ASSERT_EQUAL_FATAL(fx_program(&f2, &q, k, n, d), 0);
  q.ir_alpha_wl = 1;
  q.r_wl_ohm = 0;
  CU_ASSERT_EQUAL_FATAL(fx_program(&f3, &q, k, n, d), 0);
  CU_ASSERT_EQUAL(memcmp(f2.h.w, f3.h.w, (size_t)n * d * sizeof *f2.h.w), 0);
  fx_free(&f2);
  fx_free(&f3);
  /* negative or non-finite scales are refused */
  q.ir_alpha_bl = -0.5;
  fixture f4 = {0};
  CU_ASSERT_EQUAL(fx_program(&f4, &q, k, n, d), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "ir_alpha_bl -0.5");
  fx_free(&f4);
  free(k);
}

/* Random arrays: the first-order error shrinks as r^2 while the IR drop
 * itself shrinks as r, and idle rows below the driven ones are modelled. */
static void test_ir_vs_nodal(void) {
  const int R = 6, C = 5;
  gsl_rng *r = spr_rng_alloc();
  spr_rng_key(r, 42, 0, 0, 0, 98);
  double g[R * C], v[R], geff[R * C], work[R * C];
  for (int k = 0; k < R * C; k++) g[k] = 1e-6 + gsl_rng_uniform(r) * 99e-6;
  for (int i = 0; i < R; i++) v[i] = 0.2 * (2 * gsl_rng_uniform(r) - 1);
  double err_prev = 0, drop_prev = 0;
  for (int t = 0; t < 3; t++) {
    double rw = 10.0 / pow(4, t), rb = 7.0 / pow(4, t);
    spr_xbar_ir_first_order(g, R, C, rw, rb, geff, work);
    double ie[C], i0[C], i1[C], err = 0, drop = 0, scale = 0;
    spr_ref_nodal(g, R, C, rw, rb, v, ie);
    for (int j = 0; j < C; j++) {
      i0[j] = i1[j] = 0;
      for (int i = 0; i < R; i++) {
        i0[j] += v[i] * g[i * C + j];
        i1[j] += v[i] * geff[i * C + j];
      }
      scale = fmax(scale, fabs(i0[j]));
    }
    for (int j = 0; j < C; j++) {
      err = fmax(err, fabs(i1[j] - ie[j]) / scale);
      drop = fmax(drop, fabs(i0[j] - ie[j]) / scale);
    }
    CU_ASSERT(err < 0.05 * drop); /* first order captures most of the drop */
    if (t > 0) {
      /* r / 4: drop / ~4, error / ~16 */
      CU_ASSERT(drop < drop_prev / 3.0);
      CU_ASSERT(err < err_prev / 12.0);
    }
    err_prev = err;
    drop_prev = drop;
  }
  /* idle rows: 3 of 6 rows driven at 0 V divert bit-line current */
  {
    double vz[R];
    for (int i = 0; i < R; i++) vz[i] = i < 3 ? v[i] : 0;
    double rw = 0.3, rb = 0.4, ie[C];
    spr_xbar_ir_first_order(g, R, C, rw, rb, geff, work);
    spr_ref_nodal(g, R, C, rw, rb, vz, ie);
    double worst = 0;
    for (int j = 0; j < C; j++) {
      double i1 = 0, i0 = 0;
      for (int i = 0; i < 3; i++) {
        i1 += vz[i] * geff[i * C + j];
        i0 += vz[i] * g[i * C + j];
      }
      worst = fmax(worst, fabs(i1 - ie[j]) / fabs(i0 - ie[j]));
    }
    CU_ASSERT(worst < 0.01);
  }
  gsl_rng_free(r);
}

static void recover(const spr_xbar_head *h, int i, int j, double *gp, double *gm);

/* Nominal conductances (times fac) of the array of column tile ct, row
 * tile rt, built from the mapping of docs/model.md: key j on columns
 * (2 jl, 2 jl + 1), levels (k, 0) or (0, -k); idle cells at level 0. */
static void nominal_array(const spr_xbar_params *p, const int8_t *k, int n, int d, int ct, int rt,
                          double fac, double *G) {
  const int R = p->rows, C = p->cols, per = C / 2;
  const double dg = (p->g_max_S - p->g_min_S) / 15.0;
  for (int i = 0; i < R; i++)
    for (int c = 0; c < C; c++) {
      const int t = rt * R + i, j = ct * per + c / 2;
      const int kv = t < d && j < n ? k[j * d + t] : 0;
      const int lvl = c % 2 == 0 ? (kv > 0 ? kv : 0) : (kv < 0 ? -kv : 0);
      G[i * C + c] = fac * (p->g_min_S + lvl * dg);
    }
}

/* Fold G_eff of one array into the expected weights (d x n) by hand, and
 * track max |G - G_eff| / G. */
static void fold_array(const spr_xbar_params *p, int n, int d, int ct, int rt, double dg,
                       const double *G, const double *ge, double *want, double *corr) {
  const int R = p->rows, C = p->cols, per = C / 2;
  for (int i = 0; i < R; i++)
    for (int c = 0; c < C; c++) {
      *corr = fmax(*corr, fabs(G[i * C + c] - ge[i * C + c]) / G[i * C + c]);
      const int t = rt * R + i, j = ct * per + c / 2;
      if (c % 2 == 0 && t < d && j < n) want[(size_t)t * n + j] = (ge[i * C + c] - ge[i * C + c + 1]) / dg;
    }
}

/* ir_drop = nodal: the head's weights are the pair differences of
 * spr_nodal_effective of each programmed array, with the raw wire
 * resistances (the first-order scales ir_alpha_* play no part).  Arrays
 * with idle rows and idle columns, drifted nominal levels built here. */
static void test_ir_nodal_fold(void) {
  spr_xbar_params p = ideal_params();
  p.rows = 8;
  p.cols = 10; /* 5 keys per tile */
  p.drift = 1;
  p.drift_nu = 0.0317;
  p.drift_t_s = 2385;
  p.drift_t0_s = 1.7;
  p.ir_drop = SPR_IR_NODAL;
  p.r_wl_ohm = 3.1;
  p.r_bl_ohm = 4.7;
  p.ir_alpha_wl = 0.7385;
  p.ir_alpha_bl = 1.2385;
  const int n = 7, d = 11, R = 8, C = 10; /* 2 x 2 arrays, the last of each partial */
  int8_t *k = random_codes(n, d, 29);
  fixture f = {0};
  CU_ASSERT_EQUAL_FATAL(fx_program(&f, &p, k, n, d), 0);
  const double fac = pow(2385 / 1.7, -0.0317), dg = f.h.dg_S;
  spr_nodal_ws *ws = spr_nodal_ws_alloc(R, C, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ws);
  double G[80], ge[80], *want = calloc((size_t)n * d, sizeof *want), corr = 0, eb_max = 0;
  for (int ct = 0; ct < 2; ct++)
    for (int rt = 0; rt < 2; rt++) {
      nominal_array(&p, k, n, d, ct, rt, fac, G);
      double eb;
      CU_ASSERT_EQUAL_FATAL(spr_nodal_effective(G, R, C, 3.1, 4.7, ge, &eb, ws), 0);
      eb_max = fmax(eb_max, eb);
      fold_array(&p, n, d, ct, rt, dg, G, ge, want, &corr);
    }
  double worst = 0, drop = 0;
  for (int t = 0; t < d; t++)
    for (int j = 0; j < n; j++) {
      const double wv = want[(size_t)t * n + j];
      worst = fmax(worst, fabs(f.h.w[(size_t)t * n + j] - wv) / fmax(1.0, fabs(wv)));
      drop = fmax(drop, fabs(wv - fac * k[j * d + t]));
    }
  CU_ASSERT(worst < 1e-6); /* float storage of w */
  CU_ASSERT(drop > 0.01);   /* the IR drop is really there */
  CU_ASSERT_DOUBLE_EQUAL(f.h.ir_max, corr, 1e-15);
  CU_ASSERT(corr > 0.005);
  CU_ASSERT_DOUBLE_EQUAL(f.h.ir_err_max, eb_max, 0);
  CU_ASSERT(eb_max > 0 && eb_max < 1e-9);
  /* the first-order scales do not enter: alpha = 1 gives the same bits */
  spr_xbar_params q = p;
  q.ir_alpha_wl = q.ir_alpha_bl = 1;
  fixture f2 = {0};
  CU_ASSERT_EQUAL_FATAL(fx_program(&f2, &q, k, n, d), 0);
  CU_ASSERT_EQUAL(memcmp(f.h.w, f2.h.w, (size_t)n * d * sizeof *f.h.w), 0);
  fx_free(&f2);
  fx_free(&f);
  spr_nodal_ws_free(ws);
  free(want);
  free(k);
}

/* The same with programming variation and stuck-at faults: the programmed
 * arrays (no idle cells) are recovered from a programming with IR drop off
 * on the same streams, solved with spr_nodal_effective and folded here. */
static void test_ir_nodal_programmed(void) {
  spr_xbar_params p = ideal_params();
  p.rows = 8;
  p.cols = 10;
  p.variation = 1;
  p.prog_sigma = 0.0873;
  p.stuck = 1;
  p.stuck_on_rate = 0.0213;
  p.stuck_off_rate = 0.0371;
  p.r_wl_ohm = 2.385;
  p.r_bl_ohm = 5.1;
  const int n = 10, d = 16, R = 8, C = 10;
  int8_t *k = random_codes(n, d, 31);
  fixture f0 = {0}, f = {0};
  CU_ASSERT_EQUAL_FATAL(fx_program(&f0, &p, k, n, d), 0); /* ir_drop off */
  p.ir_drop = SPR_IR_NODAL;
  CU_ASSERT_EQUAL_FATAL(fx_program(&f, &p, k, n, d), 0);
  CU_ASSERT_EQUAL(f.h.n_stuck_on, f0.h.n_stuck_on);
  CU_ASSERT(f.h.n_stuck_on + f.h.n_stuck_off > 0);
  spr_nodal_ws *ws = spr_nodal_ws_alloc(R, C, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ws);
  double G[80], ge[80], *want = calloc((size_t)n * d, sizeof *want), corr = 0;
  for (int ct = 0; ct < 2; ct++)
    for (int rt = 0; rt < 2; rt++) {
      for (int i = 0; i < R; i++)
        for (int jl = 0; jl < 5; jl++)
          recover(&f0.h, rt * R + i, ct * 5 + jl, &G[i * C + 2 * jl], &G[i * C + 2 * jl + 1]);
      CU_ASSERT_EQUAL_FATAL(spr_nodal_effective(G, R, C, 2.385, 5.1, ge, NULL, ws), 0);
      fold_array(&p, n, d, ct, rt, f.h.dg_S, G, ge, want, &corr);
    }
  double worst = 0, drop = 0;
  for (int t = 0; t < d; t++)
    for (int j = 0; j < n; j++) {
      const size_t o = (size_t)t * n + j;
      worst = fmax(worst, fabs(f.h.w[o] - want[o]));
      drop = fmax(drop, fabs(f.h.w[o] - f0.h.w[o]));
    }
  CU_ASSERT(worst < 2e-5); /* G recovered from float w and g1: ~1e-7 relative */
  CU_ASSERT(drop > 0.01);
  CU_ASSERT(fabs(f.h.ir_max - corr) < 1e-5 * corr);
  /* the noise coefficients stay those of the programmed cells */
  CU_ASSERT_EQUAL(memcmp(f.h.gt, f0.h.gt, 2 * (size_t)n * d * sizeof *f.h.gt), 0);
  fx_free(&f0);
  fx_free(&f);
  spr_nodal_ws_free(ws);
  free(want);
  free(k);
}

/* Small wire resistances: nodal and first order agree to second order.
 * 64 x 64 arrays with variation; r / 4 shrinks the drop about 4 times and
 * the difference of the models about 16 times. */
static void test_ir_nodal_vs_first_order(void) {
  spr_xbar_params p = ideal_params();
  p.variation = 1;
  p.prog_sigma = 0.05;
  const int n = 64, d = 64; /* two 64 x 64 arrays */
  int8_t *k = random_codes(n, d, 37);
  fixture f0 = {0};
  CU_ASSERT_EQUAL_FATAL(fx_program(&f0, &p, k, n, d), 0);
  double diff_prev = 0, drop_prev = 0;
  for (int t = 0; t < 3; t++) {
    fixture fa = {0}, fn = {0};
    p.r_wl_ohm = 2.5 / pow(4, t);
    p.r_bl_ohm = 1.7 / pow(4, t);
    p.ir_drop = SPR_IR_FIRST_ORDER;
    CU_ASSERT_EQUAL_FATAL(fx_program(&fa, &p, k, n, d), 0);
    p.ir_drop = SPR_IR_NODAL;
    CU_ASSERT_EQUAL_FATAL(fx_program(&fn, &p, k, n, d), 0);
    double diff = 0, drop = 0;
    for (size_t o = 0; o < (size_t)n * d; o++) {
      diff = fmax(diff, fabs(fa.h.w[o] - fn.h.w[o]));
      drop = fmax(drop, fabs(fn.h.w[o] - f0.h.w[o]));
    }
    /* the reported corrections agree too, to second order */
    const double dc = fabs(fa.h.ir_max - fn.h.ir_max);
    fprintf(stderr, "\n  r_wl %.4g: drop %.4g, |first order - nodal| %.3g; ir_max %.4g vs %.4g, "
            "err bound %.2g", p.r_wl_ohm, drop, diff, fa.h.ir_max, fn.h.ir_max, fn.h.ir_err_max);
    CU_ASSERT(diff < 0.15 * drop); /* 11% at the defaults (t = 0) */
    CU_ASSERT(dc < 2 * fa.h.ir_max * fa.h.ir_max);
    if (t > 0) {
      CU_ASSERT(drop < drop_prev / 3.5 && drop > drop_prev / 4.5);
      CU_ASSERT(diff < diff_prev / 12);
    }
    if (t == 2) CU_ASSERT(diff < 0.01 * drop);
    diff_prev = diff;
    drop_prev = drop;
    fx_free(&fa);
    fx_free(&fn);
  }
  fx_free(&f0);
  free(k);
}

/* Wires the first-order model refuses run with nodal; the weights give
 * the column currents of an independent dense solve of the same array. */
static void test_ir_nodal_beyond_first_order(void) {
  spr_xbar_params p = ideal_params();
  p.rows = p.cols = 16;
  p.r_wl_ohm = 61.3;
  p.r_bl_ohm = 57.9;
  p.ir_drop = SPR_IR_FIRST_ORDER;
  const int n = 8, d = 16, R = 16, C = 16;
  int8_t *k = random_codes(n, d, 41);
  fixture fa = {0}, fn = {0};
  CU_ASSERT_EQUAL(fx_program(&fa, &p, k, n, d), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "first-order IR drop out of its range");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "crossbar.ir_drop = nodal");
  p.ir_drop = SPR_IR_NODAL;
  CU_ASSERT_EQUAL_FATAL(fx_program(&fn, &p, k, n, d), 0);
  fprintf(stderr, "\n  first order %.3g (refused), nodal correction %.3g, err bound %.2g ",
          fa.h.ir_max, fn.h.ir_max, fn.h.ir_err_max);
  CU_ASSERT(fa.h.ir_max > SPR_IR_FIRST_ORDER_LIMIT);
  CU_ASSERT(fn.h.ir_max > SPR_IR_FIRST_ORDER_LIMIT && fn.h.ir_max < fa.h.ir_max);
  CU_ASSERT(fn.h.ir_err_max > 0 && fn.h.ir_err_max < 1e-9);
  double G[256], v[16], ie[16];
  nominal_array(&p, k, n, d, 0, 0, 1.0, G);
  for (int i = 0; i < R; i++) v[i] = 0.2 * ((i * 7 % 11) - 5) / 5.0; /* row voltages, V */
  spr_ref_nodal(G, R, C, 61.3, 57.9, v, ie);
  double worst = 0, scale = 0, drop = 0;
  for (int j = 0; j < n; j++) {
    double s = 0, s0 = 0;
    for (int i = 0; i < d; i++) {
      s += v[i] * fn.h.w[(size_t)i * n + j] * fn.h.dg_S;
      s0 += v[i] * k[j * d + i] * fn.h.dg_S;
    }
    const double iref = ie[2 * j] - ie[2 * j + 1];
    worst = fmax(worst, fabs(s - iref));
    drop = fmax(drop, fabs(s0 - iref));
    scale = fmax(scale, fabs(s0));
  }
  CU_ASSERT(worst < 1e-6 * scale); /* float weights */
  CU_ASSERT(drop > 0.05 * scale);  /* a large drop, modelled exactly */
  fx_free(&fa);
  fx_free(&fn);
  free(k);
}

/* ir_drop = nodal without a workspace, with one too small, with wires
 * the solver refuses; an unknown model. */
static void test_ir_nodal_errors(void) {
  spr_xbar_params p = ideal_params();
  p.rows = p.cols = 16;
  p.ir_drop = SPR_IR_NODAL;
  const int n = 8, d = 16;
  int8_t *k = random_codes(n, d, 43);
  spr_xbar_head h;
  CU_ASSERT_EQUAL_FATAL(spr_xbar_head_alloc(&h, &p, n, d), 0);
  double work[3 * 256];
  CU_ASSERT_EQUAL(spr_xbar_program(&h, &p, k, NULL, NULL, NULL, work, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "ir_drop = nodal needs a nodal workspace for 16 x 16");
  spr_nodal_ws *small = spr_nodal_ws_alloc(16, 8, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(small);
  CU_ASSERT_EQUAL(spr_xbar_program(&h, &p, k, NULL, NULL, NULL, work, small), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "column tile 0, row tile 0");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "exceeds the 16 x 8 workspace");
  spr_nodal_ws_free(small);
  spr_nodal_ws *ws = spr_nodal_ws_alloc(16, 16, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ws);
  p.r_bl_ohm = 1e-310; /* 1/r overflows */
  CU_ASSERT_EQUAL(spr_xbar_program(&h, &p, k, NULL, NULL, NULL, work, ws), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "too small");
  /* zero resistances: no IR drop, no workspace needed */
  p.r_wl_ohm = p.r_bl_ohm = 0;
  CU_ASSERT_EQUAL(spr_xbar_program(&h, &p, k, NULL, NULL, NULL, work, NULL), 0);
  CU_ASSERT_EQUAL(h.w[5 * n + 3], (float)k[3 * d + 5]);
  CU_ASSERT_EQUAL(h.ir_max, 0);
  p.ir_drop = 3;
  CU_ASSERT_EQUAL(spr_xbar_program(&h, &p, k, NULL, NULL, NULL, work, ws), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "unknown ir_drop model 3");
  spr_nodal_ws_free(ws);
  spr_xbar_head_free(&h);
  free(k);
}

/* Recover (G+, G-) of every key cell from w and g1 (IR and DACs ideal). */
static void recover(const spr_xbar_head *h, int i, int j, double *gp, double *gm) {
  size_t o = (size_t)i * h->n + j;
  const double g1 = h->gt[(size_t)j * 2 * h->d + i];
  *gp = 0.5 * (g1 + h->w[o]) * h->dg_S;
  *gm = 0.5 * (g1 - h->w[o]) * h->dg_S;
}

/* Lognormal variation: ln(G / G_nominal) ~ N(0, prog_sigma^2). */
static void test_variation_statistics(void) {
  spr_xbar_params p = ideal_params();
  p.variation = 1;
  p.prog_sigma = 0.0873;
  const int n = 512, d = 64;
  int8_t *k = random_codes(n, d, 13);
  fixture f = {0};
  CU_ASSERT_EQUAL_FATAL(fx_program(&f, &p, k, n, d), 0);
  const double dg = f.h.dg_S;
  double s1 = 0, s2 = 0;
  long cnt = 0;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < d; i++) {
      int kv = k[j * d + i];
      double gp, gm;
      recover(&f.h, i, j, &gp, &gm);
      double np = p.g_min_S + (kv > 0 ? kv : 0) * dg, nm = p.g_min_S + (kv < 0 ? -kv : 0) * dg;
      double lp = log(gp / np), lm = log(gm / nm);
      s1 += lp + lm;
      s2 += lp * lp + lm * lm;
      cnt += 2;
    }
  double mean = s1 / cnt, var = s2 / cnt - mean * mean, sd = sqrt(var);
  /* float storage of w and g1 limits recovery to ~1e-6 relative */
  CU_ASSERT(fabs(mean) < 4 * p.prog_sigma / sqrt((double)cnt));
  CU_ASSERT(fabs(sd / p.prog_sigma - 1) < 4 / sqrt(2.0 * cnt));
  fx_free(&f);
  free(k);
}

/* Stuck-at faults: binomial counts, and stuck cells sit exactly at the
 * bounds. */
static void test_stuck_rates(void) {
  spr_xbar_params p = ideal_params();
  p.stuck = 1;
  p.stuck_on_rate = 0.0213;
  p.stuck_off_rate = 0.0371;
  p.rows = 64;
  p.cols = 64; /* 512 keys x 64 dims fill 16 arrays exactly */
  const int n = 512, d = 64;
  int8_t *k = random_codes(n, d, 17);
  fixture f = {0};
  CU_ASSERT_EQUAL_FATAL(fx_program(&f, &p, k, n, d), 0);
  const double N = (double)f.h.n_cells;
  CU_ASSERT_EQUAL(f.h.n_cells, (int64_t)2 * n * d);
  double mon = N * p.stuck_on_rate, moff = N * p.stuck_off_rate;
  CU_ASSERT(fabs(f.h.n_stuck_on - mon) < 4 * sqrt(mon * (1 - p.stuck_on_rate)));
  CU_ASSERT(fabs(f.h.n_stuck_off - moff) < 4 * sqrt(moff * (1 - p.stuck_off_rate)));
  /* cells at g_max can only be stuck-on (codes never reach level 15) */
  long at_max = 0, moved_off = 0;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < d; i++) {
      double gp, gm;
      recover(&f.h, i, j, &gp, &gm);
      at_max += fabs(gp - p.g_max_S) < 1e-4 * p.g_max_S;
      at_max += fabs(gm - p.g_max_S) < 1e-4 * p.g_max_S;
      int kv = k[j * d + i];
      if (kv != 0 && fabs((kv > 0 ? gp : gm) - p.g_min_S) < 1e-3 * p.g_min_S) moved_off++;
    }
  CU_ASSERT_EQUAL(at_max, f.h.n_stuck_on);
  CU_ASSERT(moved_off <= f.h.n_stuck_off);
  CU_ASSERT(moved_off > 0);
  fx_free(&f);
  free(k);
}

/* Drift: every cell scaled by (t/t0)^-nu; stuck cells keep their value. */
static void test_drift_formula(void) {
  spr_xbar_params p = ideal_params();
  p.drift = 1;
  p.drift_nu = 0.0317;
  p.drift_t_s = 2385;
  p.drift_t0_s = 1.7;
  const int n = 40, d = 24;
  int8_t *k = random_codes(n, d, 19);
  fixture f = {0};
  CU_ASSERT_EQUAL_FATAL(fx_program(&f, &p, k, n, d), 0);
  const double fac = pow(2385 / 1.7, -0.0317);
  int bad = 0;
  for (int j = 0; j < n; j++)
    for (int i = 0; i < d; i++) {
      int kv = k[j * d + i];
      if (fabs(f.h.w[i * n + j] - fac * kv) > 1e-5 * (1 + abs(kv))) bad++;
      double gp, gm;
      recover(&f.h, i, j, &gp, &gm);
      double np = p.g_min_S + (kv > 0 ? kv : 0) * f.h.dg_S;
      if (fabs(gp - fac * np) > 1e-5 * np) bad++;
    }
  CU_ASSERT_EQUAL(bad, 0);
  fx_free(&f);
  /* with every cell stuck off, drift has no effect */
  p.stuck = 1;
  p.stuck_on_rate = 0;
  p.stuck_off_rate = 1;
  CU_ASSERT_EQUAL_FATAL(fx_program(&f, &p, k, n, d), 0);
  double gp, gm;
  recover(&f.h, 3, 5, &gp, &gm);
  CU_ASSERT_DOUBLE_EQUAL(gp, p.g_min_S, 1e-6 * p.g_min_S);
  CU_ASSERT_DOUBLE_EQUAL(f.h.w[3 * n + 5], 0.0, 1e-9);
  fx_free(&f);
  free(k);
}

static void test_errors(void) {
  spr_xbar_params p = ideal_params();
  spr_xbar_head h;
  CU_ASSERT_EQUAL(spr_xbar_head_alloc(&h, &p, 0, 4), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "n=0");
  p.cols = 7;
  CU_ASSERT_EQUAL(spr_xbar_head_alloc(&h, &p, 4, 4), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cols=7");
  p.cols = 8;
  CU_ASSERT_EQUAL_FATAL(spr_xbar_head_alloc(&h, &p, 3, 2), 0);
  int8_t k[6] = {1, 2, 3, 9, -1, 0}; /* 9 exceeds the 4-bit range */
  double work[3 * 64 * 8];
  CU_ASSERT_EQUAL(spr_xbar_program(&h, &p, k, NULL, NULL, NULL, work, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "key 1 dimension 1 has code 9");
  p.key_msb_bits = 9; /* codes would not fit int8_t */
  CU_ASSERT_EQUAL(spr_xbar_program(&h, &p, k, NULL, NULL, NULL, work, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "key_msb_bits 9 outside [1, 8]");
  p.key_msb_bits = 4;
  k[3] = 5;
  p.stuck = 1;
  p.stuck_on_rate = 0.625;
  p.stuck_off_rate = 0.5;
  CU_ASSERT_EQUAL(spr_xbar_program(&h, &p, k, NULL, NULL, NULL, work, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "stuck_on_rate 0.625 and stuck_off_rate 0.5");
  spr_xbar_head_free(&h);
  spr_xbar_head_free(NULL);
  /* parameters the library refuses even without the config checks */
  {
    int8_t kk[64 * 4];
    for (int i = 0; i < 256; i++) kk[i] = (int8_t)((i % 15) - 7);
    double *wk = malloc(3 * 256 * 256 * sizeof *wk);
    spr_xbar_params q = ideal_params();
    CU_ASSERT_EQUAL_FATAL(spr_xbar_head_alloc(&h, &q, 64, 4), 0);
    q.cell_bits = 2; /* 4-bit codes need 8 levels above g_min */
    CU_ASSERT_EQUAL(spr_xbar_program(&h, &q, kk, NULL, NULL, NULL, wk, NULL), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "cell_bits 2");
    q = ideal_params();
    q.g_min_S = 2e-4; /* above g_max */
    CU_ASSERT_EQUAL(spr_xbar_program(&h, &q, kk, NULL, NULL, NULL, wk, NULL), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "g_min (0.0002 S)");
    q = ideal_params();
    q.drift = 1;
    q.drift_t_s = 0.5; /* before the reference time */
    q.drift_t0_s = 1;
    CU_ASSERT_EQUAL(spr_xbar_program(&h, &q, kk, NULL, NULL, NULL, wk, NULL), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "drift_time (0.5 s)");
    q = ideal_params();
    double gains[8] = {1, 1, 1e300, 1, 1, 1, 1, 1}; /* 2 column tiles x 4 rows; one gain beyond float range */
    CU_ASSERT_EQUAL(spr_xbar_program(&h, &q, kk, gains, NULL, NULL, wk, NULL), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "overflow");
    spr_xbar_head_free(&h);
    /* first-order IR drop beyond its range: 256 x 256 arrays at 2.5 ohm */
    q = ideal_params();
    q.ir_drop = SPR_IR_FIRST_ORDER;
    q.rows = q.cols = 256;
    int8_t *big = malloc(128 * 256);
    for (int i = 0; i < 128 * 256; i++) big[i] = (int8_t)((i * 7 % 15) - 7);
    CU_ASSERT_EQUAL_FATAL(spr_xbar_head_alloc(&h, &q, 128, 256), 0);
    CU_ASSERT_EQUAL(spr_xbar_program(&h, &q, big, NULL, NULL, NULL, wk, NULL), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "first-order IR drop out of its range");
    CU_ASSERT(h.ir_max > SPR_IR_FIRST_ORDER_LIMIT);
    /* 64 x 64 at the defaults stays inside, and reports its worst cell */
    q.rows = q.cols = 64;
    spr_xbar_head_free(&h);
    CU_ASSERT_EQUAL_FATAL(spr_xbar_head_alloc(&h, &q, 128, 256), 0);
    CU_ASSERT_EQUAL(spr_xbar_program(&h, &q, big, NULL, NULL, NULL, wk, NULL), 0);
    CU_ASSERT(h.ir_max > 0.01 && h.ir_max <= SPR_IR_FIRST_ORDER_LIMIT);
    spr_xbar_head_free(&h);
    free(big);
    free(wk);
  }
}

/* Stuck-at faults are drawn by geometric skipping; the result must be an
 * independent Bernoulli choice per cell.  Stuck-on cells are visible
 * everywhere (g_max is no nominal level), so in the documented visiting
 * order (column tile, row tile, row-major) the gaps between successive
 * stuck-on cells must be Geometric(p_on): P(gap >= k) = (1 - p_on)^k,
 * checked at several k (5 sd binomial bounds), across array boundaries
 * too.  Counts per array must have the binomial variance (chi-square
 * dispersion within 5 sd). */
static void test_stuck_independence(void) {
  spr_xbar_params p = ideal_params();
  p.stuck = 1;
  p.stuck_on_rate = 0.0173;
  p.stuck_off_rate = 0.0291;
  p.rows = 16;
  p.cols = 32; /* 16 keys per tile, 16 dims per row tile */
  const int n = 1024, d = 48; /* 64 x 3 arrays of 512 cells */
  int8_t *k = random_codes(n, d, 23);
  fixture f = {0};
  CU_ASSERT_EQUAL_FATAL(fx_program(&f, &p, k, n, d), 0);
  const int per = p.cols / 2, R = p.rows, C = p.cols, cells = R * C;
  const int64_t N = f.h.n_cells;
  CU_ASSERT_EQUAL_FATAL(N, (int64_t)2 * n * d);
  uint8_t *on = calloc((size_t)N, 1);
  for (int j = 0; j < n; j++)
    for (int i = 0; i < d; i++) {
      double gp, gm;
      recover(&f.h, i, j, &gp, &gm);
      const int64_t arr = (int64_t)(j / per) * f.h.row_tiles + i / R;
      const int64_t at = arr * cells + (int64_t)(i % R) * C + 2 * (j % per);
      on[at] = fabs(gp - p.g_max_S) < 1e-4 * p.g_max_S;
      on[at + 1] = fabs(gm - p.g_max_S) < 1e-4 * p.g_max_S;
    }
  int64_t n_on = 0, last = -1, gaps = 0;
  const int KS = 4;
  const int64_t ks[4] = {5, 29, 58, 173};
  int64_t ge[4] = {0};
  for (int64_t c = 0; c < N; c++) {
    if (!on[c]) continue;
    n_on++;
    if (last >= 0) {
      const int64_t g = c - last - 1;
      gaps++;
      for (int t = 0; t < KS; t++) ge[t] += g >= ks[t];
    }
    last = c;
  }
  CU_ASSERT_EQUAL(n_on, f.h.n_stuck_on);
  for (int t = 0; t < KS; t++) {
    const double pr = pow(1 - p.stuck_on_rate, (double)ks[t]), fr = (double)ge[t] / gaps;
    const double sd = sqrt(pr * (1 - pr) / gaps);
    if (fabs(fr - pr) >= 5 * sd)
      fprintf(stderr, "\n  P(gap >= %lld) = %g, want %g +- %g", (long long)ks[t], fr, pr, 5 * sd);
    CU_ASSERT(fabs(fr - pr) < 5 * sd);
  }
  /* dispersion of the per-array counts of stuck-on cells */
  const int64_t arrays = N / cells;
  double chi2 = 0;
  const double mean = cells * p.stuck_on_rate, var = mean * (1 - p.stuck_on_rate);
  for (int64_t a = 0; a < arrays; a++) {
    int64_t cnt = 0;
    for (int c = 0; c < cells; c++) cnt += on[a * cells + c];
    chi2 += (cnt - mean) * (cnt - mean) / var;
  }
  /* chi2 has mean ~ arrays and sd ~ sqrt(2 arrays) */
  CU_ASSERT(fabs(chi2 - arrays) < 5 * sqrt(2.0 * arrays));
  free(on);
  fx_free(&f);
  free(k);
}

int main(void) {
  CU_TestInfo tests[] = {{"ideal mapping over tiles", test_ideal_mapping},
                         {"row DAC gains fold into weights", test_row_gain},
                         {"IR drop 1x1 closed form", test_ir_closed_form},
                         {"IR drop first order vs nodal solve", test_ir_vs_nodal},
                         {"IR drop scales alpha_wl, alpha_bl", test_ir_alpha},
                         {"nodal IR drop folds spr_nodal_effective", test_ir_nodal_fold},
                         {"nodal IR drop of programmed arrays", test_ir_nodal_programmed},
                         {"nodal vs first order to second order", test_ir_nodal_vs_first_order},
                         {"nodal beyond the first-order limit", test_ir_nodal_beyond_first_order},
                         {"nodal IR drop error paths", test_ir_nodal_errors},
                         {"lognormal variation statistics", test_variation_statistics},
                         {"stuck-at rates", test_stuck_rates},
                         {"drift power law", test_drift_formula},
                         {"stuck-at cells independent", test_stuck_independence},
                         {"error paths", test_errors},
                         CU_TEST_INFO_NULL};
  return spr_test_run("crossbar", tests);
}
