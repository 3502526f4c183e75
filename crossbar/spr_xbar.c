/* spr_xbar.c - programming keys into scoring arrays; static non-idealities
 * folded into one effective weight matrix per head (equations: spr_xbar.h
 * and docs/model.md). */
#include "config.h"
#include "spr_xbar.h"
#include "spr_clones.h"
#include "spr_error.h"
#include "spr_rng.h"
#include "spr_nodal.h"

#include <math.h>
#include <stdio.h>
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
  h->gt = calloc(2 * nd, sizeof *h->gt);
  h->gsum = calloc((size_t)n, sizeof *h->gsum);
  h->g1_sum = calloc((size_t)n, sizeof *h->g1_sum);
  h->g2_sum = calloc((size_t)n, sizeof *h->g2_sum);
  if (!h->w || !h->gt || !h->gsum || !h->g1_sum || !h->g2_sum) {
    spr_xbar_head_free(h);
    return spr_error(SPR_ENOMEM, "crossbar: out of memory for %d x %d head", n, d);
  }
  return 0;
}

void spr_xbar_head_free(spr_xbar_head *h) {
  if (!h) return;
  free(h->w);
  free(h->gsum);
  free(h->gt);
  free(h->g1_sum);
  free(h->g2_sum);
  memset(h, 0, sizeof *h);
}

SPR_HOT static double ir_first_order_impl(const double *g, int R, int C, double r_wl,
                             double r_bl, double *geff, double *work) {
  /* Word line of row i: the segment into node (i,k) carries the currents of
   * cells k..C-1, so the drop at (i,j) is r_wl * sum_{k<=j} T_ik with
   * T_ik = sum_{l>=k} G_il V_i.  Computed as A_ij into geff, four rows at
   * a time (independent running sums keep the pipeline busy; each row's
   * sums are taken in the same order as one row alone). */
  int i = 0;
  for (; i + 4 <= R; i += 4) {
    const double *g0 = g + (size_t)i * C, *g1 = g0 + C, *g2 = g1 + C, *g3 = g2 + C;
    double *a0 = geff + (size_t)i * C, *a1 = a0 + C, *a2 = a1 + C, *a3 = a2 + C;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int l = C - 1; l >= 0; l--) {
      a0[l] = s0 += g0[l]; /* T_il */
      a1[l] = s1 += g1[l];
      a2[l] = s2 += g2[l];
      a3[l] = s3 += g3[l];
    }
    s0 = s1 = s2 = s3 = 0;
    for (int j = 0; j < C; j++) {
      a0[j] = s0 += a0[j]; /* A_ij */
      a1[j] = s1 += a1[j];
      a2[j] = s2 += a2[j];
      a3[j] = s3 += a3[j];
    }
  }
  for (; i < R; i++) {
    const double *gi = g + (size_t)i * C;
    double *ai = geff + (size_t)i * C;
    double suffix = 0;
    for (int l = C - 1; l >= 0; l--) ai[l] = suffix += gi[l];
    double pre = 0;
    for (int j = 0; j < C; j++) ai[j] = pre += ai[j];
  }
  /* Bit line of column j: the segment below node (k,j) carries the currents
   * of rows 0..k, the last one into the sense node.  Summed over the cells
   * the correction is sum_m V_m G_mj B_mj with B_mj = sum_{k>=m} P_kj,
   * P_kj = sum_{i<=k} G_ij (all rows, driven at 0 V or not).  Swept row
   * by row so the inner loop runs over contiguous columns. */
  for (int j = 0; j < C; j++) work[j] = g[j];
  for (int k = 1; k < R; k++) {
    const double *pk = work + (size_t)(k - 1) * C, *gk = g + (size_t)k * C;
    double *wk = work + (size_t)k * C;
#pragma omp simd
    for (int j = 0; j < C; j++) wk[j] = pk[j] + gk[j]; /* P_kj */
  }
  for (int k = R - 2; k >= 0; k--) {
    const double *bk = work + (size_t)(k + 1) * C;
    double *wk = work + (size_t)k * C;
#pragma omp simd
    for (int j = 0; j < C; j++) wk[j] = bk[j] + wk[j]; /* B_kj */
  }
  const size_t RC = (size_t)R * C;
  double worst = 0;
#pragma omp simd reduction(max : worst)
  for (size_t c = 0; c < RC; c++) {
    const double corr = r_wl * geff[c] + r_bl * work[c];
    worst = corr > worst ? corr : worst;
    geff[c] = g[c] * (1.0 - corr);
  }
  return worst;
}

double spr_xbar_ir_first_order(const double *g, int R, int C, double r_wl, double r_bl, double *geff,
                               double *work) {
  return ir_first_order_impl(g, R, C, r_wl, r_bl, geff, work);
}

/* exp(x) in single precision for |x| <= 80, within 1.6 ulp (relative
 * error < 1e-7), written so that a loop of calls vectorises: x = k ln 2 + t
 * with |t| <= ln 2 / 2 (Cody-Waite split of ln 2), exp(t) by its Taylor
 * series to t^8 (truncation < 6e-9), 2^k assembled in the exponent field.
 * Outside |x| <= 80 the exponent bits wrap: callers stay inside. */
static inline float expf_vec(float x) {
  const float shift = 0x1.8p23f; /* adding it rounds to an integer */
  float kf = x * 1.44269504f + shift;
  uint32_t ki;
  memcpy(&ki, &kf, sizeof ki); /* low bits: k, two's complement */
  kf -= shift;
  const float t = (x - kf * 0.693145751953125f) - kf * 1.428606765330187045e-06f;
  float q = 1.0f / 40320;
  q = q * t + 1.0f / 5040;
  q = q * t + 1.0f / 720;
  q = q * t + 1.0f / 120;
  q = q * t + 1.0f / 24;
  q = q * t + 1.0f / 6;
  q = q * t + 0.5f;
  q = q * t + 1.0f;
  q = q * t + 1.0f;
  const uint32_t sb = (ki + 127) << 23;
  float sc;
  memcpy(&sc, &sb, sizeof sc);
  return q * sc;
}

/* g[0..len) <- g exp(sigma z) drift, z ~ N(0,1) drawn from r in order.
 * The lognormal factor is computed in single precision (sigma z rounded
 * to float, then expf_vec: relative error ~1e-7, below the float storage
 * of the weights).  Our generator never gives |z| >= SPR_RNG_NORMAL_MAX =
 * 13.8, so sigma <= 5.8 keeps sigma z inside expf_vec's range; a larger
 * sigma (not a physical value) or a foreign generator takes libm's exp. */
SPR_HOT static void apply_variation(double *g, size_t len, double sigma, double drift, gsl_rng *r) {
  enum { CHUNK = 256 };
  float z[CHUNK];
  const int fast = sigma * SPR_RNG_NORMAL_MAX <= 80.0 && r->type == spr_rng_xoshiro256ss;
  const float sf = (float)sigma;
  for (size_t c0 = 0; c0 < len; c0 += CHUNK) {
    const size_t m = len - c0 < CHUNK ? len - c0 : CHUNK;
    double *gc = g + c0;
    spr_rng_gaussian(r, z, m);
    if (fast) {
#pragma omp simd
      for (size_t c = 0; c < m; c++) gc[c] = gc[c] * (double)expf_vec(sf * z[c]) * drift;
    } else {
      for (size_t c = 0; c < m; c++) gc[c] = gc[c] * exp(sigma * (double)z[c]) * drift;
    }
  }
}

/* Stuck-at faults by geometric skipping over the head's cells. */
typedef struct {
  int on;          /* faults on */
  double p, p_on;  /* P(stuck), P(stuck on | stuck) */
  double log_q;    /* log(1 - p) */
  int64_t next;    /* cells before the next stuck one, from here */
  gsl_rng *r;
} stuck_walk;

static int64_t stuck_gap(stuck_walk *sw) {
  if (sw->p >= 1) return 0;
  const double u = 1.0 - gsl_rng_uniform(sw->r); /* (0, 1] */
  const double k = floor(log(u) / sw->log_q);
  return k < 0x1p62 ? (int64_t)k : INT64_C(1) << 62;
}

/* Mark the stuck cells of the next array of len cells: set them in g (to
 * g_max or g_min) and count them. */
static void stuck_array(stuck_walk *sw, double gmin, double gmax, double *g, int64_t len,
                        spr_xbar_head *h) {
  if (!sw->on) return;
  while (sw->next < len) {
    if (gsl_rng_uniform(sw->r) < sw->p_on) {
      g[sw->next] = gmax;
      h->n_stuck_on++;
    } else {
      g[sw->next] = gmin;
      h->n_stuck_off++;
    }
    sw->next += 1 + stuck_gap(sw);
  }
  sw->next -= len;
}

SPR_HOT static int program_impl(spr_xbar_head *h, const spr_xbar_params *p,
                     const int8_t *kmsb, const double *row_gain,
                     gsl_rng *r_prog, gsl_rng *r_stuck, double *work,
                     spr_nodal_ws *nodal) {
  const int n = h->n, d = h->d, R = p->rows, C = p->cols, per = C / 2;
  const size_t RC = (size_t)R * C;
  if (p->key_msb_bits < 1 || p->key_msb_bits > 8)
    return spr_error(SPR_EINVAL, "crossbar: key_msb_bits %d outside [1, 8]", p->key_msb_bits);
  if (p->cell_bits < 1 || p->cell_bits > 8 || (1 << (p->key_msb_bits - 1)) > (1 << p->cell_bits) - 1)
    return spr_error(SPR_EINVAL, "crossbar: %d-bit key codes need magnitudes up to %d but cell_bits %d "
                     "gives %d levels above g_min", p->key_msb_bits, 1 << (p->key_msb_bits - 1),
                     p->cell_bits, (1 << p->cell_bits) - 1);
  if (!(p->g_min_S > 0 && p->g_min_S < p->g_max_S && isfinite(p->g_max_S)))
    return spr_error(SPR_EINVAL, "crossbar: need 0 < g_min (%g S) < g_max (%g S)", p->g_min_S, p->g_max_S);
  if (p->drift && !(p->drift_t0_s > 0 && p->drift_t_s >= p->drift_t0_s))
    return spr_error(SPR_EINVAL, "crossbar: drift needs drift_time (%g s) >= drift_t0 (%g s) > 0",
                     p->drift_t_s, p->drift_t0_s);
  const int kmax = (1 << (p->key_msb_bits - 1)) - 1, kmin = -(1 << (p->key_msb_bits - 1));
  const double dg = (p->g_max_S - p->g_min_S) / (double)((1 << p->cell_bits) - 1);
  const double drift = p->drift ? pow(p->drift_t_s / p->drift_t0_s, -p->drift_nu) : 1.0;
  if (!(p->ir_alpha_wl >= 0 && p->ir_alpha_bl >= 0 && isfinite(p->ir_alpha_wl) &&
        isfinite(p->ir_alpha_bl) && p->cell_v0_V >= 0 && isfinite(p->cell_v0_V)))
    return spr_error(SPR_EINVAL, "crossbar: ir_alpha_wl %g, ir_alpha_bl %g and cell_v0 %g V must be "
                     "finite and >= 0", p->ir_alpha_wl, p->ir_alpha_bl, p->cell_v0_V);
  if (p->ir_drop != SPR_IR_OFF && p->ir_drop != SPR_IR_FIRST_ORDER && p->ir_drop != SPR_IR_NODAL)
    return spr_error(SPR_EINVAL, "crossbar: unknown ir_drop model %d", p->ir_drop);
  /* the fitted scales of the first-order terms act as scaled resistances;
   * the nodal model takes the raw wire resistances */
  const double r_wl = p->ir_alpha_wl * p->r_wl_ohm, r_bl = p->ir_alpha_bl * p->r_bl_ohm;
  const int ir = p->ir_drop == SPR_IR_FIRST_ORDER && (r_wl > 0 || r_bl > 0);
  const int exact = p->ir_drop == SPR_IR_NODAL && (p->r_wl_ohm > 0 || p->r_bl_ohm > 0);
  if (exact && !nodal)
    return spr_error(SPR_EINVAL, "crossbar: ir_drop = nodal needs a nodal workspace for %d x %d "
                     "arrays (NULL given)", R, C);
  h->dg_S = dg;
  h->cell_v0_V = p->cell_v0_V;
  h->n_stuck_on = h->n_stuck_off = h->n_cells = 0;
  h->ir_max = h->ir_err_max = 0;
  int bad = 0; /* branch-free scan first, so the check vectorises */
#pragma omp simd reduction(| : bad)
  for (size_t c = 0; c < (size_t)n * d; c++) bad |= (kmsb[c] < kmin) | (kmsb[c] > kmax);
  if (bad)
    for (size_t c = 0; c < (size_t)n * d; c++)
      if (kmsb[c] < kmin || kmsb[c] > kmax)
        return spr_error(SPR_EINVAL, "crossbar: key %zu dimension %zu has code %d outside [%d, %d]",
                         c / (size_t)d, c % (size_t)d, kmsb[c], kmin, kmax);
  memset(h->gsum, 0, (size_t)n * sizeof *h->gsum);
  memset(h->g1_sum, 0, (size_t)n * sizeof *h->g1_sum);
  memset(h->g2_sum, 0, (size_t)n * sizeof *h->g2_sum);
  if (p->stuck && !(p->stuck_on_rate >= 0 && p->stuck_off_rate >= 0 &&
                   p->stuck_on_rate + p->stuck_off_rate <= 1))
    return spr_error(SPR_EINVAL, "crossbar: stuck_on_rate %g and stuck_off_rate %g are not "
                     "probabilities with sum <= 1", p->stuck_on_rate, p->stuck_off_rate);
  stuck_walk sw = {0};
  sw.p = p->stuck_on_rate + p->stuck_off_rate;
  sw.on = p->stuck && sw.p > 0;
  if (sw.on) {
    sw.p_on = p->stuck_on_rate / sw.p;
    sw.log_q = log1p(-sw.p);
    sw.r = r_stuck;
    sw.next = stuck_gap(&sw);
  }
  /* work layout: g (R x C) | geff (R x C) | ir scratch (R x C) */
  double *g = work, *geff = work + RC, *scratch = work + 2 * RC;
  const double gmin = p->g_min_S, gmax = p->g_max_S, inv_dg = 1.0 / dg, inv_dg2 = inv_dg * inv_dg;
  const size_t two_d = 2 * (size_t)d;
  /* nominal conductances of the pair for code k: levels (k, 0) or (0, -k) */
  double gplus[256], gminus[256];
  for (int k = kmin; k <= kmax; k++) {
    gplus[k - kmin] = gmin + (k > 0 ? k : 0) * dg;
    gminus[k - kmin] = gmin + (k < 0 ? -k : 0) * dg;
  }
  for (int ct = 0; ct < h->col_tiles; ct++) {
    const int j0 = ct * per, jn = (n - j0 < per) ? n - j0 : per; /* keys in this tile */
    for (int rt = 0; rt < h->row_tiles; rt++) {
      const int i0 = rt * R, ru = (d - i0 < R) ? d - i0 : R;
      /* nominal conductances; cells of idle rows and columns hold level 0 */
      for (int ir_ = 0; ir_ < ru; ir_++) {
        double *gr = g + (size_t)ir_ * C;
        const int8_t *kr = kmsb + (size_t)j0 * d + i0 + ir_;
        for (int jl = 0; jl < jn; jl++) {
          const int k = kr[(size_t)jl * d] - kmin; /* table index, no branch */
          gr[2 * jl] = gplus[k];
          gr[2 * jl + 1] = gminus[k];
        }
        for (int c = 2 * jn; c < C; c++) gr[c] = gmin;
      }
      for (size_t c = (size_t)ru * C; c < RC; c++) g[c] = gmin;
      /* static effects, in the order of spr_xbar.h: variation, then drift
       * of every cell, then stuck cells overwritten (they do not drift) */
      if (p->variation) {
        apply_variation(g, RC, p->prog_sigma, drift, r_prog);
      } else if (drift != 1.0) {
#pragma omp simd
        for (size_t c = 0; c < RC; c++) g[c] *= drift;
      }
      stuck_array(&sw, gmin, gmax, g, (int64_t)RC, h);
      h->n_cells += (int64_t)RC;
      const double *ge = g;
      if (ir) {
        /* the first-order model holds only while r_wl A + r_bl B is small */
        const double worst = spr_xbar_ir_first_order(g, R, C, r_wl, r_bl, geff, scratch);
        ge = geff;
        if (worst > h->ir_max) h->ir_max = worst;
        if (!(worst <= SPR_IR_FIRST_ORDER_LIMIT))
          return spr_error(SPR_EINVAL,
                           "crossbar: first-order IR drop out of its range: r_wl A + r_bl B reaches "
                           "%.3g (limit %g) in a %d x %d array with r_wl %g ohm, r_bl %g ohm "
                           "(ir_alpha_wl %g, ir_alpha_bl %g), g_max %g S; use smaller arrays, lower "
                           "wire resistance or conductances, or the exact model "
                           "crossbar.ir_drop = nodal",
                           worst, SPR_IR_FIRST_ORDER_LIMIT, R, C, p->r_wl_ohm, p->r_bl_ohm,
                           p->ir_alpha_wl, p->ir_alpha_bl, p->g_max_S);
      } else if (exact) {
        /* exact: G_eff of the linear network (spr_nodal.h), any resistance */
        double eb = 0;
        int rc = spr_nodal_effective(g, R, C, p->r_wl_ohm, p->r_bl_ohm, geff, &eb, nodal);
        if (rc)
          return spr_error_prefix(rc, "crossbar: nodal IR drop of the array of column tile %d, "
                                  "row tile %d", ct, rt);
        ge = geff;
        double worst = 0;
        for (size_t c = 0; c < RC; c++)
          if (g[c] > 0) worst = fmax(worst, fabs(g[c] - geff[c]) / g[c]);
        if (worst > h->ir_max) h->ir_max = worst;
        if (eb > h->ir_err_max) h->ir_err_max = eb;
      }
      /* fold pairs into weights (row-major) */
      for (int ir_ = 0; ir_ < ru; ir_++) {
        const int i = i0 + ir_;
        const double gain = row_gain ? row_gain[(size_t)ct * d + i] : 1.0;
        const double *gr = g + (size_t)ir_ * C, *er = ge + (size_t)ir_ * C;
        float *wr = h->w + (size_t)i * n + j0;
        double *gs = h->gsum + j0;
#pragma omp simd
        for (int jl = 0; jl < jn; jl++) {
          /* difference first, so the shared g_min cancels exactly */
          wr[jl] = (float)(gain * ((er[2 * jl] - er[2 * jl + 1]) * inv_dg));
          gs[jl] += (gr[2 * jl] + gr[2 * jl + 1]) * inv_dg;
        }
      }
      /* noise coefficients, key by key into gt, and their sums */
      for (int jl = 0; jl < jn; jl++) {
        float *t1 = h->gt + (size_t)(j0 + jl) * two_d + i0, *t2 = t1 + d;
        const double *gc = g + 2 * jl;
        float s1 = 0, s2 = 0;
        for (int ir_ = 0; ir_ < ru; ir_++) {
          const double gp = gc[(size_t)ir_ * C], gm = gc[(size_t)ir_ * C + 1];
          s1 += t1[ir_] = (float)((gp + gm) * inv_dg);
          s2 += t2[ir_] = (float)((gp * gp + gm * gm) * inv_dg2);
        }
        h->g1_sum[j0 + jl] += s1;
        h->g2_sum[j0 + jl] += s2;
      }
      /* cells of idle rows (held at 0 V) add thermal noise to the column */
      for (int ir_ = ru; ir_ < R; ir_++)
        for (int jl = 0; jl < jn; jl++)
          h->gsum[j0 + jl] += (g[(size_t)ir_ * C + 2 * jl] + g[(size_t)ir_ * C + 2 * jl + 1]) * inv_dg;
    }
  }
  /* parameters at the edges of their ranges (huge drift, conductances) can
   * overflow single precision: refuse rather than let NaN reach decisions */
  int finite = 1;
  for (size_t c = 0; c < (size_t)n * d; c++) finite &= isfinite(h->w[c]) != 0;
  for (int j = 0; j < n; j++)
    finite &= isfinite(h->gsum[j]) && isfinite(h->g1_sum[j]) && isfinite(h->g2_sum[j]);
  if (!finite)
    return spr_error(SPR_EINVAL, "crossbar: effective weights overflow single precision (g_max %g S, "
                     "drift factor %g, row gains%s given)", p->g_max_S, drift, row_gain ? "" : " not");
  return 0;
}

int spr_xbar_program(spr_xbar_head *h, const spr_xbar_params *p, const int8_t *kmsb,
                     const double *row_gain, gsl_rng *r_prog, gsl_rng *r_stuck, double *work,
                     spr_nodal_ws *nodal) {
  return program_impl(h, p, kmsb, row_gain, r_prog, r_stuck, work, nodal);
}

int spr_xbar_column_currents(int model, const double *G, int R, int C, const double *V, int M,
                             double r_wl, double r_bl, double *I, double *correction) {
  if (R < 1 || C < 1 || M < 1)
    return spr_error(SPR_EINVAL, "crossbar currents: shape R %d, C %d, M %d (each >= 1)", R, C, M);
  if (model != SPR_XBAR_MODEL_IDEAL && model != SPR_XBAR_MODEL_ANALYTIC &&
      model != SPR_XBAR_MODEL_NODAL)
    return spr_error(SPR_EINVAL, "crossbar currents: unknown model %d", model);
  if (!(r_wl >= 0 && r_bl >= 0 && isfinite(r_wl) && isfinite(r_bl)))
    return spr_error(SPR_EINVAL, "crossbar currents: wire resistances r_wl %g, r_bl %g ohm must be finite and >= 0",
                     r_wl, r_bl);
  const size_t RC = (size_t)R * C;
  for (size_t k = 0; k < RC; k++)
    if (!(G[k] >= 0 && isfinite(G[k])))
      return spr_error(SPR_EINVAL, "crossbar currents: G[%zu][%zu] = %g S is not a finite conductance >= 0",
                       k / (size_t)C, k % (size_t)C, G[k]);
  const double *Ge = G;
  double *geff = NULL, *work = NULL;
  *correction = 0;
  if (model == SPR_XBAR_MODEL_ANALYTIC) {
    geff = malloc(RC * sizeof *geff);
    work = malloc(RC * sizeof *work);
    if (!geff || !work) {
      free(geff);
      free(work);
      return spr_error(SPR_ENOMEM, "crossbar currents: out of memory for %d x %d", R, C);
    }
    *correction = spr_xbar_ir_first_order(G, R, C, r_wl, r_bl, geff, work);
    Ge = geff;
  } else if (model == SPR_XBAR_MODEL_NODAL) {
    int rc = 0;
    spr_nodal_ws *ws = spr_nodal_ws_alloc(R, C, &rc);
    geff = malloc(RC * sizeof *geff);
    if (!ws || !geff) {
      spr_nodal_ws_free(ws);
      free(geff);
      return rc ? rc : spr_error(SPR_ENOMEM, "crossbar currents: out of memory for %d x %d", R, C);
    }
    rc = spr_nodal_effective(G, R, C, r_wl, r_bl, geff, correction, ws);
    spr_nodal_ws_free(ws);
    if (rc) {
      free(geff);
      return rc;
    }
    Ge = geff;
  }
  /* I = V Ge, in double */
  for (int m = 0; m < M; m++) {
    double *im = I + (size_t)m * C;
    for (int j = 0; j < C; j++) im[j] = 0;
    for (int i = 0; i < R; i++) {
      const double v = V[(size_t)m * R + i];
      const double *gi = Ge + (size_t)i * C;
      for (int j = 0; j < C; j++) im[j] += v * gi[j];
    }
  }
  free(geff);
  free(work);
  return 0;
}
