/* spr_attend.c - one attention head under every scheme (steps in
 * spr_attend.h); the code the run pipeline and the ViT inference share. */
#include "config.h"
#include "spr_attend.h"
#include "spr_analog.h"
#include "spr_baselines.h"
#include "spr_digital.h"
#include "spr_error.h"
#include "spr_ledger.h"
#include "spr_mat.h"
#include "spr_quant.h"
#include "spr_rng.h"
#include "spr_tiled.h"
#include "spr_xbar.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct spr_attend_ws {
  int n, d;
  gsl_rng *rng, *rng2; /* rng2: a second stream drawn beside rng (stuck-at
                          faults while programming, far-decision scores) */
  spr_xbar_head xb;
  spr_analog_ws ws;
  double *work;  /* 3 * rows * cols */
  spr_nodal_ws *nodal; /* rows x cols, with crossbar.ir_drop = nodal only */
  double *gains; /* col_tiles x d */
  float *off;    /* n */
  float *qf, *kf; /* n x d */
  float *s;      /* n x n float scores */
  int64_t *layer_counts; /* 2^thr.bits */
  /* digital path */
  spr_dig_ws dws;
  spr_bl_ws bws;
  float *P;            /* n x n dense probabilities */
  float *O, *Od;       /* n x d recomputed and dense outputs */
  int8_t *q8, *v8;     /* n x d recompute codes of Q and V */
  float qs8, vs8;      /* their scales */
  uint8_t *mask;       /* n x row bytes: a baseline's mask */
  double oracle_th;    /* oracle threshold of the current head */
  double oracle_target; /* the keep rate it was calibrated for */
  int have_oracle_th;
};

int spr_attend_head_alloc(spr_attend_head *s, const spr_config *c, int n, int d,
                          int want_scores) {
  memset(s, 0, sizeof *s);
  const size_t nd = (size_t)n * d, nn = (size_t)n * n, rb = spr_mask_row_bytes(n);
  s->n = n;
  s->d = d;
  s->Q = malloc(nd * sizeof *s->Q);
  s->K = malloc(nd * sizeof *s->K);
  s->V = malloc(nd * sizeof *s->V);
  s->q = malloc(nd);
  s->k = malloc(nd);
  s->kmsb = malloc(nd);
  s->ideal = malloc(nn * sizeof *s->ideal);
  s->counts = calloc((size_t)1 << c->thr.bits, sizeof *s->counts);
  s->mask_a = malloc(n * rb);
  s->mask_i = malloc(n * rb);
  /* the analog keep-rate mode holds every head's analog scores until its
   * layer's threshold is picked */
  want_scores = want_scores || c->thr.mode == SPR_THR_ANALOG_KEEP_RATE;
  if (want_scores) s->scores = malloc(nn * sizeof *s->scores);
  if (!s->Q || !s->K || !s->V || !s->q || !s->k || !s->kmsb || !s->ideal || !s->counts ||
      !s->mask_a || !s->mask_i || (want_scores && !s->scores)) {
    spr_attend_head_free(s);
    return spr_error(SPR_ENOMEM, "attention: out of memory for a head of %d x %d", n, d);
  }
  return 0;
}

void spr_attend_head_free(spr_attend_head *s) {
  if (!s) return;
  free(s->Q); free(s->K); free(s->V); free(s->q); free(s->k); free(s->kmsb);
  free(s->ideal); free(s->counts); free(s->mask_a); free(s->mask_i); free(s->scores);
  memset(s, 0, sizeof *s);
}

void spr_attend_ws_free(spr_attend_ws *t) {
  if (!t) return;
  if (t->rng) gsl_rng_free(t->rng);
  if (t->rng2) gsl_rng_free(t->rng2);
  spr_xbar_head_free(&t->xb);
  spr_nodal_ws_free(t->nodal);
  spr_analog_ws_free(&t->ws);
  free(t->work); free(t->gains); free(t->off); free(t->qf); free(t->kf); free(t->s);
  free(t->layer_counts);
  spr_dig_ws_free(&t->dws);
  spr_bl_ws_free(&t->bws);
  free(t->P); free(t->O); free(t->Od); free(t->q8); free(t->v8); free(t->mask);
  free(t);
}

int spr_attend_ws_alloc(const spr_config *c, int n, int d, spr_attend_ws **out) {
  *out = NULL;
  if (n < 2 || d < 1)
    return spr_error(SPR_EINVAL, "attention: head shape %d x %d (need n >= 2, d >= 1)", n, d);
  spr_attend_ws *w = calloc(1, sizeof *w);
  if (!w) return spr_error(SPR_ENOMEM, "attention: out of memory");
  w->n = n;
  w->d = d;
  const size_t nd = (size_t)n * d, nn = (size_t)n * n, rb = spr_mask_row_bytes(n);
  const int ct = spr_xbar_col_tiles(&c->xbar, n);
  int rc;
  if (!(w->rng = spr_rng_alloc()) || !(w->rng2 = spr_rng_alloc())) goto nomem;
  if ((rc = spr_xbar_head_alloc(&w->xb, &c->xbar, n, d))) goto fail;
  if ((rc = spr_analog_ws_alloc(&w->ws, n, n, d))) goto fail;
  /* the exact IR-drop solver's workspace (8.6 MB at 64 x 64) is one per
   * thread, reused for every array of every head the thread programs */
  if (c->xbar.ir_drop == SPR_IR_NODAL &&
      !(w->nodal = spr_nodal_ws_alloc(c->xbar.rows, c->xbar.cols, &rc)))
    goto fail;
  w->work = malloc(3 * (size_t)c->xbar.rows * c->xbar.cols * sizeof *w->work);
  w->gains = malloc((size_t)ct * d * sizeof *w->gains);
  w->off = malloc(n * sizeof *w->off);
  w->qf = malloc(nd * sizeof *w->qf);
  w->kf = malloc(nd * sizeof *w->kf);
  w->s = malloc(nn * sizeof *w->s);
  w->layer_counts = calloc((size_t)1 << c->thr.bits, sizeof *w->layer_counts);
  if (!w->work || !w->gains || !w->off || !w->qf || !w->kf || !w->s || !w->layer_counts)
    goto nomem;
  if ((rc = spr_dig_ws_alloc(&w->dws, n, d))) goto fail;
  if ((rc = spr_bl_ws_alloc(&w->bws, n, d))) goto fail;
  w->P = malloc(nn * sizeof *w->P);
  w->O = malloc(nd * sizeof *w->O);
  w->Od = malloc(nd * sizeof *w->Od);
  w->q8 = malloc(nd);
  w->v8 = malloc(nd);
  w->mask = malloc(n * rb);
  if (!w->P || !w->O || !w->Od || !w->q8 || !w->v8 || !w->mask) goto nomem;
  *out = w;
  return 0;
nomem:
  rc = spr_error(SPR_ENOMEM, "attention: out of memory for a head of %d tokens", n);
fail:
  spr_attend_ws_free(w);
  return rc;
}

/* Step 1: quantization, ideal scores. */
int spr_attend_ideal(const spr_config *c, int layer, int head, spr_attend_head *s,
                     spr_attend_ws *w, spr_head_result *res) {
  const int n = s->n, d = s->d;
  const size_t nd = (size_t)n * d;
  int rc;
  float qs, ks;
  if ((rc = spr_quant_sym(s->Q, nd, c->an.query_bits, s->q, &qs))) return rc;
  if ((rc = spr_quant_sym(s->K, nd, c->xbar.key_bits, s->k, &ks))) return rc;
  spr_quant_msb(s->k, nd, c->xbar.key_bits, c->xbar.key_msb_bits, s->kmsb);
  int64_t abs_sum = 0;
  for (size_t k = 0; k < nd; k++) abs_sum += s->kmsb[k] < 0 ? -s->kmsb[k] : s->kmsb[k];
  for (size_t k = 0; k < nd; k++) {
    w->qf[k] = (float)s->q[k];
    w->kf[k] = (float)s->kmsb[k];
  }
  /* exact: |q . k| <= 2^7 * 2^7 * d < 2^24 for d <= 1024 */
  if ((rc = spr_matf_gemm(1.0f, spr_matf_view(w->qf, n, d), 0, spr_matf_view(w->kf, n, d), 1,
                          0.0f, spr_matf_view(w->s, n, n))))
    return rc;
  int32_t m = 0;
  for (size_t k = 0; k < (size_t)n * n; k++) s->ideal[k] = (int32_t)w->s[k];
  /* max |s| over the pairs the head decides (causal: j <= i) */
  for (int i = 0; i < n; i++) {
    const int32_t *si = s->ideal + (size_t)i * n;
    const int nk = c->wl.causal ? i + 1 : n;
    for (int j = 0; j < nk; j++) {
      int32_t a = si[j] < 0 ? -si[j] : si[j];
      if (a > m) m = a;
    }
  }
  s->maxabs = m;
  s->q_scale = qs;
  s->k_scale = ks;
  memset(res, 0, sizeof *res);
  res->layer = layer;
  res->head = head;
  res->n = n;
  res->d = d;
  res->causal = c->wl.causal != 0;
  res->q_scale = qs;
  res->k_scale = ks;
  /* each key element's pair: one cell at level |k|, the other at 0 */
  const double dg = (c->xbar.g_max_S - c->xbar.g_min_S) / (double)((1 << c->xbar.cell_bits) - 1);
  res->mean_cell_G_S = c->xbar.g_min_S + dg * (double)abs_sum / (2.0 * (double)nd);
  return 0;
}

void spr_attend_range(const spr_config *c, const spr_attend_head *heads, int H,
                      spr_head_result *res) {
  const spr_thr_params *t = &c->thr;
  int32_t lmax = 0;
  for (int h = 0; h < H; h++) lmax = heads[h].maxabs > lmax ? heads[h].maxabs : lmax;
  for (int h = 0; h < H; h++) {
    int32_t m = t->per_head ? heads[h].maxabs : lmax;
    res[h].range = t->range > 0 ? t->range : (m > 0 ? (double)m : 1.0);
  }
}

int spr_attend_count(const spr_config *c, spr_attend_head *s, const spr_head_result *res) {
  memset(s->counts, 0, ((size_t)1 << c->thr.bits) * sizeof *s->counts);
  if (c->wl.causal) return spr_thr_count_causal(s->ideal, s->n, res->range, c->thr.bits, s->counts);
  return spr_thr_count(s->ideal, (size_t)s->n * s->n, res->range, c->thr.bits, s->counts);
}

/* The keep rate of the picked code must come near the target; otherwise
 * the generator's grid (range, bits) cannot express it. */
static int check_reachable(const int64_t *counts, int64_t total, int code, const spr_thr_params *t,
                           int layer, int head, double range) {
  const double got = (double)counts[code + (1 << (t->bits - 1))] / (double)total;
  const double tol = fmax(0.05, 0.5 * t->keep_rate);
  if (fabs(got - t->keep_rate) <= tol) return 0;
  char who[48];
  if (head >= 0) snprintf(who, sizeof who, "layer %d head %d", layer, head);
  else snprintf(who, sizeof who, "layer %d", layer);
  return spr_error(SPR_EINVAL,
                   "%s: threshold.keep_rate %g cannot be reached on the %d-bit threshold grid "
                   "(range %g score units): the nearest code %d keeps %.4g; use more threshold.bits%s",
                   who, t->keep_rate, t->bits, range, code, got,
                   t->range > 0 ? " or threshold.range = 0 (auto)" : "");
}

double spr_attend_theta_units(const spr_config *c, const spr_head_result *res, double theta_s) {
  const double kw = ldexp(1.0, c->xbar.key_bits - c->xbar.key_msb_bits);
  return theta_s * sqrt((double)res->d) / ((double)res->q_scale * (double)res->k_scale * kw);
}

int spr_attend_thresholds(const spr_config *c, int layer, const spr_attend_head *heads, int H,
                          double learned_theta, spr_attend_ws *w, spr_head_result *res,
                          int *saturated) {
  const spr_thr_params *t = &c->thr;
  const int bits = t->bits;
  int rc;
  if (t->mode == SPR_THR_KEEP_RATE || t->mode == SPR_THR_ANALOG_KEEP_RATE) {
    /* h->counts: of the ideal scores (keep_rate, spr_attend_count) or of
     * the analog scores (analog_keep_rate, spr_attend_analog_scores) */
    const size_t ncode = (size_t)1 << bits;
    const int64_t per_head_total = spr_pair_count(heads[0].n, c->wl.causal);
    if (t->per_head) {
      for (int h = 0; h < H; h++) {
        res[h].threshold_code = spr_thr_pick(heads[h].counts, per_head_total, bits, t->keep_rate);
        if ((rc = check_reachable(heads[h].counts, per_head_total, res[h].threshold_code, t,
                                  layer, h, res[h].range)))
          return rc;
      }
    } else {
      memset(w->layer_counts, 0, ncode * sizeof *w->layer_counts);
      for (int h = 0; h < H; h++)
        for (size_t k = 0; k < ncode; k++) w->layer_counts[k] += heads[h].counts[k];
      int code = spr_thr_pick(w->layer_counts, per_head_total * H, bits, t->keep_rate);
      if ((rc = check_reachable(w->layer_counts, per_head_total * H, code, t, layer, -1,
                                res[0].range)))
        return rc;
      for (int h = 0; h < H; h++) res[h].threshold_code = code;
    }
  } else {
    for (int h = 0; h < H; h++) {
      /* the generator spans [-range, range (1 - 2^(1-bits))]: a value more
       * than half a step outside cannot be produced */
      const double lo = spr_thr_level(-(1 << (bits - 1)), res[h].range, bits);
      const double hi = spr_thr_level((1 << (bits - 1)) - 1, res[h].range, bits);
      const double half_step = 0.5 * res[h].range / (double)(1 << (bits - 1));
      double v;
      if (t->mode == SPR_THR_LEARNED) {
        v = spr_attend_theta_units(c, &res[h], learned_theta + t->offset);
        if (!isfinite(v))
          return spr_error(SPR_EINVAL, "layer %d head %d: learned threshold %g + offset %g gives "
                           "%g score units (quantization scales %g, %g)", layer, h, learned_theta,
                           t->offset, v, res[h].q_scale, res[h].k_scale);
        if (saturated && !(v >= lo - half_step && v <= hi + half_step)) (*saturated)++;
        /* spr_thr_code clamps to the grid's ends: the saturation */
      } else {
        if (t->n_values == 1) v = t->values[0];
        else if (t->per_head) v = t->values[(size_t)layer * H + h];
        else v = t->values[layer];
        if (!(v >= lo - half_step && v <= hi + half_step))
          return spr_error(SPR_EINVAL,
                           "layer %d head %d: threshold.values %g outside the %d-bit threshold "
                           "generator's range [%g, %g] (threshold.range %g%s)", layer, h, v, bits,
                           lo, hi, res[h].range, t->range > 0 ? "" : ", auto: max |ideal score|");
      }
      res[h].threshold_code = spr_thr_code(v, res[h].range, bits);
    }
  }
  for (int h = 0; h < H; h++)
    res[h].threshold = spr_thr_level(res[h].threshold_code, res[h].range, bits);
  return 0;
}

/* Step 3's programming (also alone: spr_run_check). */
int spr_attend_program(const spr_config *c, int layer, int head, int trial, spr_attend_head *s,
                       spr_attend_ws *w) {
  const uint64_t seed = c->seed;
  int rc;
  const double *gains = NULL;
  if (c->an.dac_error) {
    spr_rng_key(w->rng, seed, layer, head, trial, SPR_STREAM_DAC);
    if ((rc = spr_dac_gains(&c->an, w->xb.col_tiles, s->d, w->rng, w->gains))) return rc;
    gains = w->gains;
  }
  /* programming variation and stuck-at faults draw from two streams */
  spr_rng_key(w->rng, seed, layer, head, trial, SPR_STREAM_PROG);
  spr_rng_key(w->rng2, seed, layer, head, trial, SPR_STREAM_STUCK);
  return spr_xbar_program(&w->xb, &c->xbar, s->kmsb, gains, w->rng, w->rng2, w->work, w->nodal);
}

/* Program the head's arrays (spr_attend_program) and draw the comparator
 * offsets, from the streams keyed by (seed, layer, head, trial); *sc the
 * score scale, *off the offsets or NULL. */
static int program_head(const spr_config *c, int layer, int h, int trial, spr_attend_head *s,
                        spr_attend_ws *w, spr_analog_scale *sc, const float **off) {
  const int n = s->n;
  const uint64_t seed = c->seed;
  int rc;
  if ((rc = spr_attend_program(c, layer, h, trial, s, w))) return rc;
  spr_analog_scale_of(&c->an, w->xb.dg_S, sc);
  *off = NULL;
  if (c->an.cmp_offset) {
    spr_rng_key(w->rng, seed, layer, h, trial, SPR_STREAM_CMP_OFFSET);
    spr_cmp_offsets(&c->an, sc, n, w->rng, w->off);
    *off = w->off;
  }
  return 0;
}

int spr_attend_analog_scores(const spr_config *c, int layer, int head, int trial,
                             spr_attend_head *s, spr_attend_ws *w, spr_head_result *res) {
  if (!s->scores)
    return spr_error(SPR_EINVAL, "attention: analog scores need a head allocated for "
                     "threshold.mode = analog_keep_rate");
  spr_analog_scale sc;
  const float *off;
  int rc = program_head(c, layer, head, trial, s, w, &sc, &off);
  if (rc) return rc;
  const int n = s->n, causal = c->wl.causal != 0;
  spr_rng_key(w->rng, c->seed, layer, head, trial, SPR_STREAM_READ);
  if ((rc = spr_analog_scores(&c->an, &sc, &w->xb, s->q, n, causal, 0, off, w->rng, &w->ws,
                              s->scores)))
    return rc;
  res->i_unit_A = sc.i_unit_A;
  memset(s->counts, 0, ((size_t)1 << c->thr.bits) * sizeof *s->counts);
  return spr_thr_count_scores(s->scores, n, n, causal, 0, res->range, c->thr.bits, s->counts);
}

/* Step 3: program, decide, compare, mass. */
int spr_attend_analog(const spr_config *c, int layer, int head, int trial, spr_attend_head *s,
                      spr_attend_ws *w, spr_head_result *res) {
  const int n = s->n, d = s->d, h = head;
  int rc;
  int64_t kept;
  const int causal = c->wl.causal != 0;
  spr_analog_scale sc;
  if (c->thr.mode == SPR_THR_ANALOG_KEEP_RATE) {
    /* the scores were drawn before the threshold (spr_attend_analog_scores):
     * the comparator's decisions at the picked threshold */
    if (!s->scores)
      return spr_error(SPR_EINVAL, "attention: threshold.mode = analog_keep_rate needs the head's "
                       "analog scores (spr_attend_analog_scores)");
    spr_analog_mask_from_scores(s->scores, n, n, causal, 0, res->threshold, s->mask_a, &kept);
    sc.i_unit_A = res->i_unit_A;
  } else {
    const float *off;
    if ((rc = program_head(c, layer, h, trial, s, w, &sc, &off))) return rc;
    spr_rng_key(w->rng, c->seed, layer, h, trial, SPR_STREAM_READ);
    spr_rng_key(w->rng2, c->seed, layer, h, trial, SPR_STREAM_READ_FAR);
    if (causal)
      rc = spr_analog_decide_causal(&c->an, &sc, &w->xb, s->q, n, 0, res->threshold, off, w->rng,
                                    w->rng2, &w->ws, s->mask_a, s->scores, &kept);
    else
      rc = spr_analog_decide(&c->an, &sc, &w->xb, s->q, n, res->threshold, off, w->rng, w->rng2,
                             &w->ws, s->mask_a, s->scores, &kept);
    if (rc) return rc;
  }
  /* ideal mask and the comparison (causal: keys j <= i; both masks are 0
   * beyond) */
  const size_t rb = spr_mask_row_bytes(n);
  int64_t ik = 0, fp = 0, fk = 0;
  for (int i = 0; i < n; i++) {
    uint8_t *mi = s->mask_i + (size_t)i * rb;
    const uint8_t *ma = s->mask_a + (size_t)i * rb;
    memset(mi, 0, rb);
    const int32_t *si = s->ideal + (size_t)i * n;
    const int nk = causal ? i + 1 : n;
    for (int j = 0; j < nk; j++)
      mi[j >> 3] |= (uint8_t)(((double)si[j] >= res->threshold) << (j & 7));
    for (size_t b = 0; b < rb; b++) {
      ik += __builtin_popcount(mi[b]);
      fp += __builtin_popcount(mi[b] & (uint8_t)~ma[b]);
      fk += __builtin_popcount(ma[b] & (uint8_t)~mi[b]);
    }
  }
  /* softmax of the float scores, scale 1/sqrt(d) */
  if ((rc = spr_matf_gemm((float)(1.0 / sqrt((double)d)), spr_matf_view(s->Q, n, d), 0,
                          spr_matf_view(s->K, n, d), 1, 0.0f, spr_matf_view(w->s, n, n))))
    return rc;
  double mass_a = 0, mass_i = 0;
  for (int i = 0; i < n; i++) {
    float *row = w->s + (size_t)i * n;
    const uint8_t *ma = s->mask_a + (size_t)i * rb, *mi = s->mask_i + (size_t)i * rb;
    const int nk = causal ? i + 1 : n; /* causal: the softmax over j <= i */
    float mx = row[0];
    for (int j = 1; j < nk; j++) mx = row[j] > mx ? row[j] : mx;
    double z = 0, za = 0, zi = 0;
    for (int j = 0; j < nk; j++) {
      double e = exp((double)(row[j] - mx));
      z += e;
      if (ma[j >> 3] >> (j & 7) & 1) za += e;
      if (mi[j >> 3] >> (j & 7) & 1) zi += e;
    }
    mass_a += za / z;
    mass_i += zi / z;
  }
  const double nn = (double)spr_pair_count(n, causal);
  res->n_kept = kept;
  res->n_ideal_kept = ik;
  res->false_prunes = fp;
  res->false_keeps = fk;
  res->keep_rate = (double)kept / nn;
  res->ideal_keep_rate = (double)ik / nn;
  res->mass_retained = mass_a / n;
  res->ideal_mass_retained = mass_i / n;
  res->i_unit_A = sc.i_unit_A;
  return 0;
}

/* Baselines whose prediction computes the exact 8-bit scores of every
 * pair: their survivors need values only, no score recompute. */
static int scores_known(int scheme) {
  return scheme == SPR_SCHEME_ORACLE || scheme == SPR_SCHEME_TOPK || scheme == SPR_SCHEME_LEOPARD;
}

/* floor(total a / b) for 0 <= a <= b, exact while b^2 < 2^63:
 * total = q b + r gives total a / b = q a + r a / b with r a < b^2. */
static int64_t scaled_floor(int64_t total, int64_t a, int64_t b) {
  return (total / b) * a + (total % b) * a / b;
}

/* Cells SPRINT programs into its scoring arrays for one sequence of an
 * n x d head (docs/energy.md section 8):
 *   xbar_cells_written = 2 n d           (one differential pair per key
 *                                         element, both cells written)
 *   xbar_bits_written  = 2 n d cell_bits (a cell is programmed to one of
 *                                         2^cell_bits levels)
 * A causal head programs every key too: the last query sees them all. */
static void xbar_program_counts(const spr_config *c, int n, int d, spr_ledger_counts *q) {
  q->xbar_cells_written = 2 * (int64_t)n * d;
  q->xbar_bits_written = q->xbar_cells_written * c->xbar.cell_bits;
}

/* Where a digital predictor (oracle, top-k, Sanger, LeOPArd) reads its
 * key operand from (docs/energy.md section 9). */
typedef struct {
  int resident;      /* 1: K held in the buffer; 0: streamed per query */
  int key_bits;      /* the predictor's key width (LeOPArd: all planes) */
  int64_t key_bytes; /* n ceil(d key_bits / 8): the sequence's K at it */
  int64_t key_words; /* 64-bit words of one key at that width */
  int64_t plane_words; /* 64-bit words of one key's bit plane (LeOPArd) */
} pred_key_plan;

/* Largest number of keys any query of mask keeps. */
static int64_t max_row_keys(const uint8_t *mask, int n) {
  const size_t rb = spr_mask_row_bytes(n);
  int64_t best = 0;
  for (int i = 0; i < n; i++) {
    int64_t k = 0;
    for (size_t b = 0; b < rb; b++) k += __builtin_popcount(mask[(size_t)i * rb + b]);
    best = k > best ? k : best;
  }
  return best;
}

/* The key rule of a digital predictor (docs/energy.md section 9): the
 * predictor needs every key its queries see, at its own width kb (oracle
 * and top-k 8 bits, Sanger 4, LeOPArd the 8-bit planes).  The sequence's
 * K at that width, K_b = n ceil(d kb / 8) bytes, stays in the buffer when
 * it fits beside the survivors of the busiest query,
 *     K_b + max(1, max_i |P_i|) token_bytes <= buffer_bytes,
 * (token_bytes: what a survivor fetches, values only for the schemes whose
 * prediction computed exact scores); it is then loaded from ReRAM once
 * (causal: key i on query i, the first that sees it) and read from SRAM
 * by every query, and the survivors share the rest of the buffer,
 * buffer_bytes - K_b.  Otherwise K is streamed from ReRAM for every query,
 * as the survivors have the whole buffer. */
static pred_key_plan pred_key_rule(const spr_config *c, int n, int d, int scheme,
                                   const spr_bl_stats *bst, const uint8_t *mask,
                                   int64_t token_bytes) {
  pred_key_plan p;
  memset(&p, 0, sizeof p);
  if (!bst) return p;
  p.key_bits = scheme == SPR_SCHEME_LEOPARD ? c->xbar.key_bits : bst->mac_k_bits;
  p.key_bytes = (int64_t)n * (((int64_t)d * p.key_bits + 7) / 8);
  p.key_words = ((int64_t)d * p.key_bits + 63) / 64;
  p.plane_words = ((int64_t)d + 63) / 64;
  const int64_t ms = max_row_keys(mask, n);
  p.resident = p.key_bytes + (ms > 1 ? ms : 1) * token_bytes <= (int64_t)c->dig.buffer_bytes;
  return p;
}

/* Ledger counts of query i of a scheme (docs/energy.md section 6): the
 * fetch of its survivors through the buffer, the recompute, SPRINT's
 * in-memory scoring, the baseline's prediction spread over queries, and
 * the writes of the sequence's keys on the first query.  Causal
 * (docs/energy.md section 7): query i's in-memory scoring, key stream and
 * share of the prediction cover keys 0 .. i. */
static void query_counts(const spr_config *c, int n_, int d_, int scheme,
                         const spr_dig_fetch_stats *fs, const spr_dig_ws *dws,
                         const spr_bl_stats *bst, const pred_key_plan *kp, int i,
                         spr_ledger_counts *q) {
  const int64_t n = n_, d = d_;
  const int causal = c->wl.causal != 0;
  const int64_t nk = causal ? (int64_t)i + 1 : n; /* keys query i sees */
  const int64_t hits = dws->q_hits[i], fetches = dws->q_fetches[i], over = dws->q_overflow[i];
  const int64_t surv = hits + fetches, words = (fs->token_bytes + 7) / 8;
  memset(q, 0, sizeof *q);
  /* the sequence's K and V are written to ReRAM once, on the first query */
  if (i == 0) q->reram_bits_written = n * d * (c->xbar.key_bits + c->dig.value_bits);
  q->reram_bits_read = fetches * fs->token_bytes * 8;
  /* streamed tokens bypass the buffer: neither written to nor read from it */
  q->sram_words_written = (fetches - over) * words;
  q->sram_words_read = (surv - over) * words;
  q->buffer_bytes = c->dig.buffer_bytes;
  /* schemes whose prediction already computed exact scores reuse them */
  q->score_macs = scores_known(scheme) ? 0 : surv * d;
  q->exps = q->divs = surv;
  q->v_macs = surv * d;
  if (scheme == SPR_SCHEME_SPRINT) {
    /* programming the scoring arrays, once per sequence (docs/energy.md
     * section 8): every key element's differential pair, both cells */
    if (i == 0) xbar_program_counts(c, n_, d_, q);
    q->imc_queries = 1;
    q->imc_macs = nk * d;
    q->cmp_decisions = nk;
    q->prune_bits_read = nk;
  }
  if (bst) {
    /* spread a head total over the queries: evenly, remainders on the
     * first; causal, in proportion to the keys each query sees (query i
     * takes floor(total T(i+1) / P) - floor(total T(i) / P), T(m) =
     * m (m + 1) / 2 the pairs of queries 0 .. m-1, P = T(n)): the shares
     * add up to the total exactly */
    const int64_t P = spr_pair_count(n_, 1), T0 = (int64_t)i * (i + 1) / 2, T1 = T0 + i + 1;
#define SPREAD(total)                                                                  \
  (causal ? scaled_floor((total), T1, P) - scaled_floor((total), T0, P)                \
          : (total) / n + ((int64_t)i < (total) % n))
    const int64_t macs = bst->mac_ops;
    if (bst->mac_k_bits == 1) q->pred_bitmacs = SPREAD(macs);
    else if (bst->mac_q_bits <= 4 && bst->mac_k_bits <= 4) q->pred_mac4 = SPREAD(macs);
    else q->pred_mac8 = SPREAD(macs);
    q->pred_adds = SPREAD(bst->add_ops);
    q->pred_muls = SPREAD(bst->mul_ops);
    q->pred_exps = SPREAD(bst->exp_ops);
    int64_t levels = 0;
    while (bst->k > 0 && ((int64_t)1 << levels) < bst->k) levels++;
    q->pred_cmps = SPREAD(bst->cmp_ops + bst->topk_inputs * levels);
    if (!kp->resident) {
      /* the sequence's K does not fit beside the survivors: the
       * prediction streams its key operand from ReRAM for every query,
       * the keys the query sees (all n; causal 0 .. i) at its width, or,
       * for LeOPArd, the d-bit planes it reads */
      if (scheme == SPR_SCHEME_LEOPARD) q->reram_bits_read += SPREAD(bst->key_bits_processed * d);
      else q->reram_bits_read += nk * d * bst->mac_k_bits;
    } else {
      /* K stays in the buffer: loaded once (all keys on query 0; causal:
       * key i on query i), then read from SRAM by every query (LeOPArd:
       * the planes it reads, one plane of a key = ceil(d / 64) words) */
      const int64_t loaded = causal ? 1 : (i == 0 ? n : 0);
      q->reram_bits_read += loaded * d * kp->key_bits;
      q->sram_words_written += loaded * kp->key_words;
      if (scheme == SPR_SCHEME_LEOPARD) q->sram_words_read += SPREAD(bst->key_bits_processed) * kp->plane_words;
      else q->sram_words_read += nk * kp->key_words;
    }
#undef SPREAD
  }
}

/* The recompute over mask's survivors into w->O and its accuracy against
 * dense exact attention. */
static int recompute(const spr_config *c, spr_attend_ws *w, int n, int d, const uint8_t *mask,
                     const int8_t *k8, float ks, spr_dig_attend_stats *as, spr_dig_accuracy *acc) {
  int rc;
  if ((rc = spr_dig_attend(w->q8, w->qs8, k8, ks, w->v8, w->vs8, mask, n, d, w->O, as, &w->dws)))
    return rc;
  spr_dig_metric_params mp;
  spr_dig_metric_default(&mp);
  mp.top_k = c->dig.top_k < n ? c->dig.top_k : n;
  mp.causal = c->wl.causal != 0;
  return spr_dig_metrics(&mp, w->O, w->Od, w->P, mask, n, d, acc, &w->dws);
}

/* A scheme's result from its accuracy and ledger (the fetch fields are
 * the caller's). */
static void fill_result(const spr_dig_attend_stats *as, const spr_dig_accuracy *acc,
                        const spr_ledger_result *lr, spr_scheme_result *out) {
  out->ran = 1;
  out->empty_queries = as->empty_queries;
  out->rel_fro = acc->rel_fro;
  out->cos_mean = acc->cos_mean;
  out->cos_min = acc->cos_min;
  out->mass_retained = acc->mass_retained;
  out->top1_recall = acc->top1_recall;
  out->topk_recall = acc->topk_recall;
  memcpy(out->energy_J, lr->energy_J, sizeof out->energy_J);
  out->energy_total_J = lr->total_J;
  memcpy(out->cycles, lr->cycles, sizeof out->cycles);
  out->cycles_total = lr->total_cycles;
  out->xbar_cells_written = lr->counts.xbar_cells_written;
}

/* Fetch, recompute, compare with dense and price one scheme's mask. */
static int price_scheme(const spr_config *c, spr_attend_ws *w, int n, int d, int scheme,
                        const uint8_t *mask, const int8_t *k8, float ks, const spr_bl_stats *bst,
                        spr_scheme_result *out) {
  spr_dig_fetch_params fp;
  spr_dig_fetch_default(&fp);
  fp.buffer_bytes = c->dig.buffer_bytes;
  fp.key_bits = scores_known(scheme) ? 0 : c->xbar.key_bits;
  fp.value_bits = c->dig.value_bits;
  fp.policy = c->dig.policy;
  const int64_t token_bytes = ((int64_t)d * fp.key_bits + 7) / 8 + ((int64_t)d * fp.value_bits + 7) / 8;
  const pred_key_plan kp = pred_key_rule(c, n, d, scheme, bst, mask, token_bytes);
  if (kp.resident) fp.buffer_bytes -= kp.key_bytes; /* K's share of the buffer */
  spr_dig_fetch_stats fs;
  int rc = spr_dig_fetch(&fp, mask, n, d, &fs, &w->dws);
  if (rc) return rc;
  spr_dig_attend_stats as;
  spr_dig_accuracy acc;
  if ((rc = recompute(c, w, n, d, mask, k8, ks, &as, &acc))) return rc;
  spr_ledger_acc la;
  if ((rc = spr_ledger_acc_init(&la, &c->energy))) return rc;
  for (int i = 0; i < n; i++) {
    spr_ledger_counts q;
    query_counts(c, n, d, scheme, &fs, &w->dws, bst, &kp, i, &q);
    if ((rc = spr_ledger_acc_step(&la, &q))) return rc;
  }
  spr_ledger_result lr;
  if ((rc = spr_ledger_acc_result(&la, &lr))) return rc;
  memset(out, 0, sizeof *out);
  fill_result(&as, &acc, &lr, out);
  out->keep_rate = (double)fs.uses / (double)spr_pair_count(n, c->wl.causal);
  out->bytes_fetched = fs.bytes_fetched;
  out->bytes_reused = fs.bytes_reused;
  out->fetches = fs.fetches;
  out->hits = fs.hits;
  out->overflow_tokens = fs.overflow_tokens;
  out->new_fetch_frac = fs.new_fetch_frac;
  out->key_resident = kp.resident;
  return 0;
}

/* Dense attention tiled over query blocks (digital/spr_tiled.h,
 * docs/energy.md section 10): every (query, key) pair it may see, each
 * K/V tile fetched once per block of queries; one ledger step per (block,
 * tile), the sequence's K and V written to ReRAM once (on the first
 * step), as for every scheme.  Its output is dense attention's: the
 * recompute over the dense mask. */
static int price_tiled(const spr_config *c, spr_attend_ws *w, int n, int d, const int8_t *k8,
                       float ks, spr_scheme_result *out) {
  spr_tiled_params tp;
  spr_tiled_params_of(c, &tp);
  spr_tiled_plan pl;
  int rc = spr_tiled_plan_make(&tp, &c->energy, n, d, &pl);
  if (rc) return rc;
  if ((rc = c->wl.causal ? spr_bl_dense_causal(n, w->mask, NULL) : spr_bl_dense(n, w->mask, NULL)))
    return rc;
  spr_dig_attend_stats as;
  spr_dig_accuracy acc;
  if ((rc = recompute(c, w, n, d, w->mask, k8, ks, &as, &acc))) return rc;
  spr_ledger_acc la;
  if ((rc = spr_ledger_acc_init(&la, &c->energy))) return rc;
  int64_t fetched = 0, uses = 0;
  for (int b = 0; b < pl.blocks; b++)
    for (int t = 0, nt = spr_tiled_block_tiles(&pl, b); t < nt; t++) {
      spr_ledger_counts q;
      int64_t f, u;
      spr_tiled_step_counts(&pl, b, t, &q, &f, &u);
      if (b == 0 && t == 0)
        q.reram_bits_written = (int64_t)n * d * (c->xbar.key_bits + c->dig.value_bits);
      if ((rc = spr_ledger_acc_step(&la, &q))) return rc;
      fetched += f;
      uses += u;
    }
  spr_ledger_result lr;
  if ((rc = spr_ledger_acc_result(&la, &lr))) return rc;
  memset(out, 0, sizeof *out);
  fill_result(&as, &acc, &lr, out);
  out->keep_rate = (double)uses / (double)spr_pair_count(n, c->wl.causal);
  out->fetches = fetched;
  out->hits = uses - fetched;
  out->bytes_fetched = fetched * pl.token_bytes;
  out->bytes_reused = out->hits * pl.token_bytes;
  out->tile_queries = pl.bq;
  out->tile_tokens = pl.bk;
  return 0;
}

int spr_attend_digital(const spr_config *c, spr_attend_head *s, spr_attend_ws *w) {
  const int n = s->n, d = s->d;
  const size_t nd = (size_t)n * d;
  int rc;
  if ((rc = spr_quant_sym(s->Q, nd, c->dig.query_bits, w->q8, &w->qs8))) return rc;
  if ((rc = spr_quant_sym(s->V, nd, c->dig.value_bits, w->v8, &w->vs8))) return rc;
  if ((rc = c->wl.causal ? spr_dig_dense_causal(s->Q, s->K, s->V, n, d, w->P, w->Od)
                         : spr_dig_dense(s->Q, s->K, s->V, n, d, w->P, w->Od)))
    return rc;
  w->have_oracle_th = 0;
  return 0;
}

const float *spr_attend_exact_output(const spr_attend_ws *w) { return w->Od; }

int spr_attend_check(const spr_config *c, int n, int d) {
  if (!spr_attend_scheme_on(c, SPR_SCHEME_DENSE_TILED)) return 0;
  spr_tiled_params tp;
  spr_tiled_params_of(c, &tp);
  spr_tiled_plan pl;
  return spr_tiled_plan_make(&tp, &c->energy, n, d, &pl);
}

int spr_attend_scheme_on(const spr_config *c, int scheme) {
  switch (scheme) {
  case SPR_SCHEME_SPRINT:
  case SPR_SCHEME_DENSE: return 1;
  case SPR_SCHEME_DENSE_TILED: return c->bl.dense_tiled;
  case SPR_SCHEME_ORACLE: return c->bl.oracle;
  case SPR_SCHEME_TOPK: return c->bl.topk;
  case SPR_SCHEME_SANGER: return c->bl.sanger;
  case SPR_SCHEME_LEOPARD: return c->bl.leopard;
  case SPR_SCHEME_WINDOW: return c->bl.window;
  default: return 0;
  }
}

int spr_attend_scheme(const spr_config *c, int sc, spr_attend_head *s, spr_attend_ws *w,
                      spr_scheme_result *out, float *O) {
  return spr_attend_scheme_at(c, sc, s, w, -1.0, out, O);
}

int spr_attend_scheme_at(const spr_config *c, int sc, spr_attend_head *s, spr_attend_ws *w,
                         double keep_target, spr_scheme_result *out, float *O) {
  const int n = s->n, d = s->d, causal = c->wl.causal != 0;
  const int match = keep_target >= 0; /* the knob searched for keep_target */
  if (match && !(keep_target <= 1.0))
    return spr_error(SPR_EINVAL, "attention: keep-rate target %g outside [0, 1]", keep_target);
  double knob = NAN; /* the scheme's pruning parameter, recorded in *out */
  int rc = 0;
  spr_bl_stats bst;
  const spr_bl_stats *pb = &bst;
  const uint8_t *mask = w->mask;
  switch (sc) {
  case SPR_SCHEME_SPRINT:
    mask = s->mask_a;
    pb = NULL;
    break;
  case SPR_SCHEME_DENSE:
    rc = causal ? spr_bl_dense_causal(n, w->mask, &bst) : spr_bl_dense(n, w->mask, &bst);
    pb = NULL;
    break;
  case SPR_SCHEME_DENSE_TILED:
    if ((rc = price_tiled(c, w, n, d, s->k, s->k_scale, out))) return rc;
    out->knob = NAN;
    if (O) memcpy(O, w->O, (size_t)n * d * sizeof *O);
    return 0;
  case SPR_SCHEME_ORACLE:
  case SPR_SCHEME_LEOPARD: {
    spr_bl_oracle_params op;
    spr_bl_oracle_default(&op);
    op.k_bits = c->xbar.key_bits;
    op.causal = causal;
    /* one calibration serves both: LeOPArd's mask is the oracle's (the
     * cache is per head and target: spr_attend_digital clears it) */
    const double target = match ? keep_target : c->thr.keep_rate;
    if (!w->have_oracle_th || w->oracle_target != target)
      rc = spr_bl_oracle_calibrate(&op, s->Q, s->K, n, d, target, &w->bws, &w->oracle_th, NULL);
    w->have_oracle_th = !rc;
    w->oracle_target = target;
    knob = w->oracle_th;
    if (!rc && sc == SPR_SCHEME_ORACLE) {
      op.threshold = w->oracle_th;
      rc = spr_bl_oracle(&op, s->Q, s->K, n, d, &w->bws, w->mask, &bst);
    } else if (!rc) {
      spr_bl_leopard_params lp;
      spr_bl_leopard_default(&lp);
      lp.q_bits = op.q_bits;
      lp.k_bits = op.k_bits;
      lp.threshold = w->oracle_th;
      lp.causal = causal;
      rc = spr_bl_leopard(&lp, s->Q, s->K, n, d, &w->bws, w->mask, &bst);
    }
    break;
  }
  case SPR_SCHEME_TOPK: {
    spr_bl_topk_params tp;
    spr_bl_topk_default(&tp);
    tp.k_bits = c->xbar.key_bits;
    tp.k = 0;
    tp.keep_fraction = c->bl.topk_fraction;
    tp.causal = causal;
    if (match) rc = spr_bl_topk_match(n, causal, keep_target, &tp.keep_fraction, NULL);
    knob = tp.keep_fraction;
    if (!rc) rc = spr_bl_topk(&tp, s->Q, s->K, n, d, &w->bws, w->mask, &bst);
    break;
  }
  case SPR_SCHEME_SANGER: {
    spr_bl_sanger_params sp;
    spr_bl_sanger_default(&sp);
    sp.p_threshold = c->bl.sanger_threshold;
    sp.causal = causal;
    if (match)
      rc = spr_bl_sanger_calibrate(&sp, s->Q, s->K, n, d, keep_target, &w->bws, &sp.p_threshold,
                                   NULL);
    knob = sp.p_threshold;
    if (!rc) rc = spr_bl_sanger(&sp, s->Q, s->K, n, d, &w->bws, w->mask, &bst);
    break;
  }
  case SPR_SCHEME_WINDOW: {
    spr_bl_window_params wp;
    spr_bl_window_default(&wp);
    wp.half_width = c->bl.window_half_width;
    wp.n_global = c->bl.window_globals < n ? c->bl.window_globals : n;
    wp.global_pos = NULL;
    wp.causal = causal;
    if (match) rc = spr_bl_window_match(&wp, n, keep_target, &wp.half_width, NULL);
    knob = wp.half_width;
    if (!rc) rc = spr_bl_window(&wp, n, w->mask, &bst);
    pb = NULL; /* a fixed pattern needs no prediction */
    break;
  }
  default:
    return spr_error(SPR_EINVAL, "attention: unknown scheme %d", sc);
  }
  if (rc) return rc;
  /* the recompute reads the full key codes of step 1 */
  if ((rc = price_scheme(c, w, n, d, sc, mask, s->k, s->k_scale, pb, out))) return rc;
  out->knob = knob;
  if (O) memcpy(O, w->O, (size_t)n * d * sizeof *O);
  return 0;
}
