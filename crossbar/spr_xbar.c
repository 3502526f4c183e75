/* spr_xbar.c - programming keys into scoring arrays; static non-idealities
 * folded into one effective weight matrix per head (equations: spr_xbar.h
 * and docs/model.md). */
#include "config.h"
#include "spr_xbar.h"
#include "spr_error.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int spr_xbar_col_tiles(const spr_xbar_params *p, int n) {
  int per = p->cols / 2;
  return (n + per - 1) / per;
}

int spr_xbar_head_alloc(spr_xbar_head *h, const spr_xbar_params *p, int n,
                        int d) {
  memset(h, 0, sizeof *h);
  if (n < 1 || d < 1 || p->rows < 1 || p->cols < 2 || p->cols % 2)
    return spr_error(SPR_EINVAL, "crossbar: bad shape n=%d d=%d rows=%d cols=%d", n, d,
                     p->rows, p->cols);
  size_t nd = (size_t)n * (size_t)d;
  h->n = n;
  h->d = d;
  h->row_tiles = (d + p->rows - 1) / p->rows;
  h->col_tiles = spr_xbar_col_tiles(p, n);
  h->w = calloc(nd, sizeof *h->w);
  h->g1 = calloc(2 * nd, sizeof *h->g1);
  h->g2 = h->g1 ? h->g1 + nd : NULL;
  h->gsum = calloc((size_t)n, sizeof *h->gsum);
  if (!h->w || !h->g1 || !h->gsum) {
    spr_xbar_head_free(h);
    return spr_error(SPR_ENOMEM, "crossbar: out of memory for %d x %d head", n, d);
  }
  return 0;
}

void spr_xbar_head_free(spr_xbar_head *h) {
  if (!h) return;
  free(h->w);
  free(h->g1);
  free(h->gsum);
  memset(h, 0, sizeof *h);
}

void spr_xbar_ir_first_order(const double *g, int R, int C, double r_wl,
                             double r_bl, double *geff, double *work) {
  /* Word line of row i: the segment into node (i,k) carries the currents of
   * cells k..C-1, so the drop at (i,j) is r_wl * sum_{k<=j} T_ik with
   * T_ik = sum_{l>=k} G_il V_i.  Computed as A_ij into geff. */
  for (int i = 0; i < R; i++) {
    const double *gi = g + (size_t)i * C;
    double *ai = geff + (size_t)i * C;
    double suffix = 0;
    for (int l = C - 1; l >= 0; l--) {
      suffix += gi[l];
      ai[l] = suffix; /* T_il */
    }
    double pre = 0;
    for (int j = 0; j < C; j++) {
      pre += ai[j];
      ai[j] = pre; /* A_ij */
    }
  }
  /* Bit line of column j: the segment below node (k,j) carries the currents
   * of rows 0..k, the last one into the sense node.  Summed over the cells
   * the correction is sum_m V_m G_mj B_mj with B_mj = sum_{k>=m} P_kj,
   * P_kj = sum_{i<=k} G_ij (all rows, driven at 0 V or not). */
  for (int j = 0; j < C; j++) {
    double p = 0;
    for (int k = 0; k < R; k++) {
      p += g[(size_t)k * C + j];
      work[(size_t)k * C + j] = p; /* P_kj */
    }
    double b = 0;
    for (int k = R - 1; k >= 0; k--) {
      b += work[(size_t)k * C + j];
      work[(size_t)k * C + j] = b; /* B_kj */
    }
  }
  for (size_t c = 0; c < (size_t)R * C; c++)
    geff[c] = g[c] * (1.0 - r_wl * geff[c] - r_bl * work[c]);
}

/* Apply variation, stuck-at faults and drift to one cell of nominal
 * conductance g.  Returns the new conductance; *stuck is set to +1/-1 for
 * a cell stuck on/off. */
static inline double cell_effects(const spr_xbar_params *p, double g,
                                  gsl_rng *r_prog, gsl_rng *r_stuck,
                                  double drift_factor, int *stuck) {
  if (p->variation) g *= exp(p->prog_sigma * gsl_ran_gaussian_ziggurat(r_prog, 1.0));
  *stuck = 0;
  if (p->stuck) {
    double u = gsl_rng_uniform(r_stuck);
    if (u < p->stuck_on_rate) {
      *stuck = 1;
      return p->g_max_S;
    }
    if (u < p->stuck_on_rate + p->stuck_off_rate) {
      *stuck = -1;
      return p->g_min_S;
    }
  }
  return g * drift_factor;
}

int spr_xbar_program(spr_xbar_head *h, const spr_xbar_params *p,
                     const int8_t *kmsb, const double *row_gain,
                     gsl_rng *r_prog, gsl_rng *r_stuck, double *work) {
  const int n = h->n, d = h->d, R = p->rows, C = p->cols, per = C / 2;
  const int kmax = (1 << (p->key_msb_bits - 1)) - 1, kmin = -(1 << (p->key_msb_bits - 1));
  const double dg = (p->g_max_S - p->g_min_S) / (double)((1 << p->cell_bits) - 1);
  const double drift = p->drift ? pow(p->drift_t_s / p->drift_t0_s, -p->drift_nu) : 1.0;
  const int ir = p->ir_drop == SPR_IR_FIRST_ORDER && (p->r_wl_ohm > 0 || p->r_bl_ohm > 0);
  h->dg_S = dg;
  h->n_stuck_on = h->n_stuck_off = h->n_cells = 0;
  for (size_t c = 0; c < (size_t)n * d; c++)
    if (kmsb[c] < kmin || kmsb[c] > kmax)
      return spr_error(SPR_EINVAL, "crossbar: key %zu dimension %zu has code %d outside [%d, %d]",
                       c / (size_t)d, c % (size_t)d, kmsb[c], kmin, kmax);
  memset(h->gsum, 0, (size_t)n * sizeof *h->gsum);
  /* work layout: g (R x C) | geff (R x C) | ir scratch (R x C) */
  double *g = work, *geff = work + (size_t)R * C, *scratch = work + 2 * (size_t)R * C;
  for (int ct = 0; ct < h->col_tiles; ct++) {
    for (int rt = 0; rt < h->row_tiles; rt++) {
      const int i0 = rt * R, ru = (d - i0 < R) ? d - i0 : R;
      /* program the physical cells, row by row (fixed draw order); cells
       * of idle rows and columns hold level 0 */
      for (int ir_ = 0; ir_ < R; ir_++) {
        for (int c = 0; c < C; c++) {
          const int j = ct * per + c / 2;
          int level = 0;
          if (j < n && ir_ < ru) {
            int k = kmsb[(size_t)j * d + i0 + ir_];
            level = (c % 2 == 0) ? (k > 0 ? k : 0) : (k < 0 ? -k : 0);
          }
          int st;
          double gc = cell_effects(p, p->g_min_S + level * dg, r_prog, r_stuck, drift, &st);
          h->n_stuck_on += st > 0;
          h->n_stuck_off += st < 0;
          g[(size_t)ir_ * C + c] = gc;
        }
      }
      h->n_cells += (int64_t)R * C;
      const double *ge = g;
      if (ir) {
        spr_xbar_ir_first_order(g, R, C, p->r_wl_ohm, p->r_bl_ohm, geff, scratch);
        ge = geff;
      }
      /* fold pairs into weights and noise coefficients */
      for (int ir_ = 0; ir_ < ru; ir_++) {
        const int i = i0 + ir_;
        const double gain = row_gain ? row_gain[(size_t)ct * d + i] : 1.0;
        const double *gr = g + (size_t)ir_ * C, *er = ge + (size_t)ir_ * C;
        for (int jl = 0; jl < per; jl++) {
          const int j = ct * per + jl;
          if (j >= n) break;
          const double gp = gr[2 * jl], gm = gr[2 * jl + 1];
          const size_t o = (size_t)i * n + j;
          /* difference first, so the shared g_min cancels exactly */
          h->w[o] = (float)(gain * ((er[2 * jl] - er[2 * jl + 1]) / dg));
          h->g1[o] = (float)((gp + gm) / dg);
          h->g2[o] = (float)((gp * gp + gm * gm) / (dg * dg));
          h->gsum[j] += (gp + gm) / dg;
        }
      }
      /* cells of idle rows (held at 0 V) add thermal noise to the column */
      for (int ir_ = ru; ir_ < R; ir_++)
        for (int jl = 0; jl < per && ct * per + jl < n; jl++)
          h->gsum[ct * per + jl] += (g[(size_t)ir_ * C + 2 * jl] + g[(size_t)ir_ * C + 2 * jl + 1]) / dg;
    }
  }
  return 0;
}
