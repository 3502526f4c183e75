/* spr_analog.c - DACs, read noise, threshold generator and comparators
 * (equations in spr_analog.h and docs/model.md). */
#include "config.h"
#include "spr_analog.h"
#include "spr_error.h"
#include "spr_result.h"
#include "spr_rng.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void spr_analog_scale_of(const spr_analog_params *an, double dg_S,
                         spr_analog_scale *s) {
  s->v_step_V = an->v_read_V / (double)((1 << (an->query_bits - 1)) - 1);
  s->i_unit_A = s->v_step_V * dg_S;
}

int spr_dac_gains(const spr_analog_params *an, int col_tiles, int d,
                  gsl_rng *r, double *gains) {
  size_t n = (size_t)col_tiles * (size_t)d;
  for (size_t i = 0; i < n; i++) {
    double g = 1.0;
    if (an->dac_error) g += an->dac_gain_sigma * spr_rng_normal(r);
    if (!(g > 0))
      return spr_error(SPR_EINVAL, "analog: DAC %zu sampled gain %g <= 0 (dac_gain_sigma %g too large)",
                       i, g, an->dac_gain_sigma);
    gains[i] = g;
  }
  return 0;
}

void spr_cmp_offsets(const spr_analog_params *an, const spr_analog_scale *s,
                     int n, gsl_rng *r, float *off) {
  const double sig = an->cmp_offset ? an->cmp_offset_sigma_A / s->i_unit_A : 0.0;
  for (int j = 0; j < n; j++)
    off[j] = sig > 0 ? (float)(sig * spr_rng_normal(r)) : 0.0f;
}

double spr_thr_level(int code, double range, int bits) {
  return (double)code * range / (double)(1 << (bits - 1));
}

int spr_thr_code(double theta, double range, int bits) {
  const int half = 1 << (bits - 1);
  double c = range > 0 ? nearbyint(theta * (double)half / range) : 0;
  if (c < -half) c = -half;
  if (c > half - 1) c = half - 1;
  return (int)c;
}

int spr_thr_count(const int32_t *s, size_t n, double range, int bits,
                   int64_t *counts) {
  const int half = 1 << (bits - 1), ncode = 1 << bits;
  /* hist[h]: scores whose highest passed code is h - half - 1 (h = 0: none) */
  int64_t *hist = calloc((size_t)ncode + 1, sizeof *hist);
  if (!hist) return spr_error(SPR_ENOMEM, "threshold: out of memory");
  const double step = range / (double)half;
  for (size_t k = 0; k < n; k++) {
    const double v = (double)s[k];
    long c = step > 0 ? (long)floor(v / step) : (v >= 0 ? half - 1 : -half - 1);
    if (c > half - 1) c = half - 1;
    if (c < -half - 1) c = -half - 1;
    /* settle rounding at the grid points with the exact level function */
    while (c < half - 1 && v >= spr_thr_level((int)c + 1, range, bits)) c++;
    while (c >= -half && v < spr_thr_level((int)c, range, bits)) c--;
    hist[c + half + 1]++;
  }
  int64_t acc = 0;
  for (int i = ncode - 1; i >= 0; i--) {
    acc += hist[i + 1];
    counts[i] += acc;
  }
  free(hist);
  return 0;
}

int spr_thr_pick(const int64_t *counts, int64_t total, int bits,
                 double keep_rate) {
  const int half = 1 << (bits - 1), ncode = 1 << bits;
  int best = 0;
  double best_err = INFINITY;
  for (int i = 0; i < ncode; i++) {
    double rate = total > 0 ? (double)counts[i] / (double)total : 0;
    double err = fabs(rate - keep_rate);
    if (err < best_err) {
      best_err = err;
      best = i;
    }
  }
  return best - half;
}

int spr_analog_ws_alloc(spr_analog_ws *ws, int m, int n, int d) {
  memset(ws, 0, sizeof *ws);
  if (m < 1 || n < 1 || d < 1)
    return spr_error(SPR_EINVAL, "analog: bad workspace shape m=%d n=%d d=%d", m, n, d);
  ws->m = m;
  ws->n = n;
  ws->d = d;
  ws->qf = malloc((size_t)m * d * sizeof *ws->qf);
  ws->a2 = malloc((size_t)m * 2 * d * sizeof *ws->a2);
  ws->mu = malloc((size_t)m * n * sizeof *ws->mu);
  ws->var = malloc((size_t)m * n * sizeof *ws->var);
  ws->z = malloc((size_t)n * sizeof *ws->z);
  ws->c = malloc((size_t)n * sizeof *ws->c);
  if (!ws->qf || !ws->a2 || !ws->mu || !ws->var || !ws->z || !ws->c) {
    spr_analog_ws_free(ws);
    return spr_error(SPR_ENOMEM, "analog: out of memory for workspace %d x %d", m, n);
  }
  return 0;
}

void spr_analog_ws_free(spr_analog_ws *ws) {
  if (!ws) return;
  free(ws->qf);
  free(ws->a2);
  free(ws->mu);
  free(ws->var);
  free(ws->z);
  free(ws->c);
  memset(ws, 0, sizeof *ws);
}

double spr_analog_thermal_var(const spr_analog_params *an,
                              const spr_analog_scale *sc, double dg_S,
                              double gsum) {
  return 4.0 * SPR_BOLTZMANN_J_PER_K * an->temperature_K * an->bandwidth_Hz *
         gsum * dg_S / (sc->i_unit_A * sc->i_unit_A);
}

double spr_analog_shot_coef(const spr_analog_params *an,
                            const spr_analog_scale *sc) {
  return 2.0 * SPR_ELEMENTARY_CHARGE_C * an->bandwidth_Hz / sc->i_unit_A;
}

int spr_analog_decide(const spr_analog_params *an, const spr_analog_scale *sc,
                      const spr_xbar_head *xb, const int8_t *q, int m,
                      double theta, const float *off, gsl_rng *r_read,
                      spr_analog_ws *ws, uint8_t *mask, float *scores,
                      int64_t *n_kept) {
  const int n = xb->n, d = xb->d;
  if (m > ws->m || n > ws->n || d > ws->d)
    return spr_error(SPR_EINVAL, "analog: %d x %d x %d exceeds workspace %d x %d x %d", m, n, d,
                     ws->m, ws->n, ws->d);
  const size_t rb = spr_mask_row_bytes(n);
  for (size_t k = 0; k < (size_t)m * d; k++) ws->qf[k] = (float)q[k];
  /* mu = q w : the column currents in score units */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, d, 1.0f, ws->qf, d, xb->w, n,
              0.0f, ws->mu, n);
  const int noisy = an->read_noise || an->cmp_noise;
  if (noisy) {
    const double cmp_var = an->cmp_noise ? pow(an->cmp_noise_sigma_A / sc->i_unit_A, 2) : 0.0;
    for (int j = 0; j < n; j++)
      ws->c[j] = (float)(cmp_var + (an->read_noise ? spr_analog_thermal_var(an, sc, xb->dg_S, xb->gsum[j]) : 0.0));
    if (an->read_noise) {
      const float as = (float)spr_analog_shot_coef(an, sc);
      const float rs = (float)(an->read_rel_sigma * an->read_rel_sigma);
      for (int i = 0; i < m; i++) {
        float *a = ws->a2 + (size_t)i * 2 * d;
        for (int k = 0; k < d; k++) {
          float v = ws->qf[(size_t)i * d + k];
          a[k] = as * fabsf(v);
          a[d + k] = rs * v * v;
        }
      }
      /* var = [a_s |q|, s_r^2 q^2] [g1; g2] */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, 2 * d, 1.0f, ws->a2, 2 * d,
                  xb->g1, n, 0.0f, ws->var, n);
    } else {
      memset(ws->var, 0, (size_t)m * n * sizeof *ws->var);
    }
  }
  int64_t kept = 0;
  for (int i = 0; i < m; i++) {
    const float *mu = ws->mu + (size_t)i * n;
    float *a = scores ? scores + (size_t)i * n : ws->mu + (size_t)i * n;
    if (noisy) {
      const float *var = ws->var + (size_t)i * n;
      spr_rng_gaussian(r_read, ws->z, (size_t)n);
      for (int j = 0; j < n; j++)
        a[j] = mu[j] + (off ? off[j] : 0.0f) + sqrtf(var[j] + ws->c[j]) * ws->z[j];
    } else {
      for (int j = 0; j < n; j++) a[j] = mu[j] + (off ? off[j] : 0.0f);
    }
    uint8_t *mr = mask + (size_t)i * rb;
    memset(mr, 0, rb);
    for (int j = 0; j < n; j++) {
      int keep = (double)a[j] >= theta;
      mr[j >> 3] |= (uint8_t)(keep << (j & 7));
      kept += keep;
    }
  }
  *n_kept = kept;
  return 0;
}
