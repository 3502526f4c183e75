/* spr_bind.c - flat entry points for language bindings (spr_bind.h). */
#include "config.h"
#include "spr_bind.h"
#include "spr_attend.h"
#include "spr_config.h"
#include "spr_device.h"
#include "spr_error.h"
#include "spr_eval.h"
#include "spr_fmnist.h"
#include "spr_model.h"
#include "spr_model_eval.h"
#include "spr_qkv.h"
#include "spr_sweep.h"
#include "spr_trace.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *spr_bind_version(void) { return PACKAGE_VERSION; }

void spr_bind_free(void *p) { free(p); }

/* --- configurations ------------------------------------------------------ */

int spr_bind_config_new(const char *path, const char *const *set, int n_set,
                        const char *set_name, spr_config **out) {
  *out = NULL;
  spr_config *c = malloc(sizeof *c);
  if (!c) return spr_error(SPR_ENOMEM, "configuration: out of memory");
  spr_config_default(c);
  /* without a file: an empty text over the defaults, named "defaults" */
  spr_config_src src = {path ? path : "defaults", path ? NULL : "", set, n_set, set_name};
  int rc = spr_config_load_src(c, &src);
  if (!rc) rc = spr_qkv_resolve(c, src.name);
  if (!rc && c->device_model[0]) {
    spr_device dev;
    rc = spr_device_load_config(c, &dev, NULL, NULL);
    spr_device_free(&dev);
  }
  if (rc) {
    free(c);
    return rc;
  }
  *out = c;
  return 0;
}

void spr_bind_config_free(spr_config *c) { free(c); }

int spr_bind_config_find(const char *key) {
  const char *dot = strchr(key, '.');
  if (!dot || dot - key >= 64) return -1;
  char sec[64];
  memcpy(sec, key, (size_t)(dot - key));
  sec[dot - key] = 0;
  return spr_config_find(sec, dot + 1);
}

int spr_bind_config_get(const spr_config *c, const char *key, char *buf, size_t n) {
  const int i = spr_bind_config_find(key);
  if (i < 0) return spr_error(SPR_ECONFIG, "unknown key '%s'", key);
  return spr_config_format(c, i, buf, n);
}

/* --- named statistics ----------------------------------------------------- */

/* the head's analog part, then the scheme's part; the ledger components
 * follow (spr_bind_stat_name) */
static const char *const head_names[] = {
    "threshold", "threshold_code", "range", "i_unit_A", "q_scale", "k_scale",
    "n_kept", "n_ideal_kept", "false_prunes", "false_keeps", "analog_keep_rate",
    "ideal_keep_rate", "analog_mass_retained", "ideal_mass_retained"};
static const char *const scheme_names[] = {
    "keep_rate", "bytes_fetched", "bytes_reused", "fetches", "hits", "overflow_tokens",
    "new_fetch_frac", "empty_queries", "rel_fro", "cos_mean", "cos_min", "mass_retained",
    "top1_recall", "topk_recall", "energy_J", "cycles", "xbar_cells_written", "knob"};
enum {
  N_HEAD = sizeof head_names / sizeof head_names[0],
  N_SCHEME = sizeof scheme_names / sizeof scheme_names[0],
  N_STATS = N_HEAD + N_SCHEME + SPR_LEDGER_NE + SPR_LEDGER_NC
};

int spr_bind_nstats(void) { return N_STATS; }

const char *spr_bind_stat_name(int i) {
  static char names[SPR_LEDGER_NE + SPR_LEDGER_NC][48];
  static int done = 0;
  if (i < 0 || i >= N_STATS) return NULL;
  if (i < N_HEAD) return head_names[i];
  if (i < N_HEAD + N_SCHEME) return scheme_names[i - N_HEAD];
#pragma omp critical(spr_bind_names)
  if (!done) {
    for (int k = 0; k < SPR_LEDGER_NE; k++)
      snprintf(names[k], sizeof names[k], "energy_%s_J", spr_ledger_energy_name(k));
    for (int k = 0; k < SPR_LEDGER_NC; k++)
      snprintf(names[SPR_LEDGER_NE + k], sizeof names[0], "cycles_%s", spr_ledger_cycle_name(k));
    done = 1;
  }
  return names[i - N_HEAD - N_SCHEME];
}

void spr_bind_head_stats(const spr_head_result *r, int s, double *out) {
  double *o = out;
  *o++ = r->threshold;
  *o++ = r->threshold_code;
  *o++ = r->range;
  *o++ = r->i_unit_A;
  *o++ = r->q_scale;
  *o++ = r->k_scale;
  *o++ = (double)r->n_kept;
  *o++ = (double)r->n_ideal_kept;
  *o++ = (double)r->false_prunes;
  *o++ = (double)r->false_keeps;
  *o++ = r->keep_rate;
  *o++ = r->ideal_keep_rate;
  *o++ = r->mass_retained;
  *o++ = r->ideal_mass_retained;
  const spr_scheme_result *x = s >= 0 && s < SPR_N_SCHEMES ? &r->scheme[s] : NULL;
  if (!x || !x->ran) {
    for (int k = 0; k < N_SCHEME + SPR_LEDGER_NE + SPR_LEDGER_NC; k++) *o++ = NAN;
    return;
  }
  *o++ = x->keep_rate;
  *o++ = (double)x->bytes_fetched;
  *o++ = (double)x->bytes_reused;
  *o++ = (double)x->fetches;
  *o++ = (double)x->hits;
  *o++ = (double)x->overflow_tokens;
  *o++ = x->new_fetch_frac;
  *o++ = (double)x->empty_queries;
  *o++ = x->rel_fro;
  *o++ = x->cos_mean;
  *o++ = x->cos_min;
  *o++ = x->mass_retained;
  *o++ = x->top1_recall;
  *o++ = x->topk_recall;
  *o++ = x->energy_total_J;
  *o++ = x->cycles_total;
  *o++ = (double)x->xbar_cells_written;
  *o++ = x->knob;
  for (int k = 0; k < SPR_LEDGER_NE; k++) *o++ = x->energy_J[k];
  for (int k = 0; k < SPR_LEDGER_NC; k++) *o++ = x->cycles[k];
}

int spr_bind_run_stats(const spr_run *run, int layer, int head, int s, double *out) {
  const spr_head_result *r = spr_run_result(run, layer, head);
  if (!r) return spr_error(SPR_EINVAL, "run: no head (%d, %d)", layer, head);
  if (s < 0 || s >= SPR_N_SCHEMES) return spr_error(SPR_EINVAL, "run: unknown scheme %d", s);
  spr_bind_head_stats(r, s, out);
  return 0;
}

/* --- one layer of attention heads --------------------------------------- */

struct spr_bind_attn {
  spr_config c;
  int layers, heads, n, d;
  spr_attend_ws *ws;
  spr_attend_head h[SPR_MAX_HEADS];
  spr_head_result res[SPR_MAX_HEADS];
};

void spr_bind_attn_free(spr_bind_attn *a) {
  if (!a) return;
  spr_attend_ws_free(a->ws);
  for (int k = 0; k < SPR_MAX_HEADS; k++) spr_attend_head_free(&a->h[k]);
  free(a);
}

int spr_bind_attn_alloc(const spr_config *c, int layers, int heads, int n, int d, int causal,
                        spr_bind_attn **out) {
  *out = NULL;
  if (n < 2 || n > SPR_QKV_MAX_SEQ || d < 1 || d > SPR_QKV_MAX_DIM)
    return spr_error(SPR_EINVAL, "attention: %d tokens x %d dimensions outside 2..%d x 1..%d", n,
                     d, SPR_QKV_MAX_SEQ, SPR_QKV_MAX_DIM);
  if (heads < 1 || heads > SPR_MAX_HEADS)
    return spr_error(SPR_EINVAL, "attention: %d heads outside 1..%d", heads, SPR_MAX_HEADS);
  if (layers < 1 || layers > SPR_MAX_LAYERS)
    return spr_error(SPR_EINVAL, "attention: %d layers outside 1..%d", layers, SPR_MAX_LAYERS);
  const spr_thr_params *t = &c->thr;
  if (t->mode == SPR_THR_DIRECT && t->n_values != 1 &&
      t->n_values != (t->per_head ? layers * heads : layers))
    return spr_error(SPR_ECONFIG, "key 'threshold.values': %d values given; %d layers x %d heads "
                     "need 1 or %d", t->n_values, layers, heads,
                     t->per_head ? layers * heads : layers);
  spr_bind_attn *a = calloc(1, sizeof *a);
  if (!a) return spr_error(SPR_ENOMEM, "attention: out of memory");
  a->c = *c;
  a->c.wl.n_layers = layers;
  a->c.wl.n_heads = heads;
  a->c.wl.seq_len = n;
  a->c.wl.head_dim = d;
  a->c.wl.causal = causal != 0;
  a->layers = layers;
  a->heads = heads;
  a->n = n;
  a->d = d;
  int rc = spr_attend_check(&a->c, n, d);
  if (!rc) rc = spr_attend_ws_alloc(&a->c, n, d, &a->ws);
  if (!rc) rc = spr_attend_heads_alloc_rows(a->h, heads, &a->c, n, d, 0, n);
  if (rc) {
    spr_bind_attn_free(a);
    return rc;
  }
  *out = a;
  return 0;
}

/* bit-packed rows -> one byte per (query, key) */
static void unpack_mask(const uint8_t *packed, int n, uint8_t *out) {
  const size_t rb = spr_mask_row_bytes(n);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      out[(size_t)i * n + j] = (packed[(size_t)i * rb + j / 8] >> (j % 8)) & 1;
}

int spr_bind_attn_layer(spr_bind_attn *a, int s, int layer, int head0, int trial, double theta,
                        double keep_target, const float *Q, const float *K, const float *V,
                        float *O, uint8_t *mask, uint8_t *ideal, double *stats, int *saturated) {
  const spr_config *c = &a->c;
  const int H = a->heads, n = a->n, d = a->d;
  const size_t nd = (size_t)n * d;
  int rc = 0, sat = 0;
  if (saturated) *saturated = 0;
  if (layer < 0 || layer >= a->layers)
    return spr_error(SPR_EINVAL, "attention: layer %d outside 0..%d", layer, a->layers - 1);
  if (head0 < 0 || head0 > SPR_MAX_HEADS - H)
    return spr_error(SPR_EINVAL, "attention: first head %d outside 0..%d", head0,
                     SPR_MAX_HEADS - H);
  if (s < 0 || s > SPR_BIND_EXACT || (s < SPR_N_SCHEMES && !spr_attend_scheme_on(c, s)))
    return spr_error(SPR_EINVAL, "attention: scheme %d (%s) is not enabled", s,
                     s >= 0 && s < SPR_N_SCHEMES ? spr_scheme_name(s) : "unknown");
  for (int h = 0; h < H; h++) {
    memcpy(a->h[h].Q, Q + h * nd, nd * sizeof *Q);
    memcpy(a->h[h].K, K + h * nd, nd * sizeof *K);
    memcpy(a->h[h].V, V + h * nd, nd * sizeof *V);
    memset(&a->res[h], 0, sizeof a->res[h]);
  }
  if (s == SPR_BIND_EXACT) {
    for (int h = 0; h < H && !rc; h++) {
      if ((rc = spr_attend_digital(c, &a->h[h], a->ws))) break;
      if (O) memcpy(O + h * nd, spr_attend_exact_output(a->ws), nd * sizeof *O);
      for (int k = 0; stats && k < N_STATS; k++) stats[(size_t)h * N_STATS + k] = NAN;
    }
    goto done;
  }
  /* the steps of attend_layer in sim/spr_model_eval.c, in its order */
  for (int h = 0; h < H && !rc; h++) rc = spr_attend_ideal(c, layer, head0 + h, &a->h[h], a->ws, &a->res[h]);
  if (!rc && s == SPR_SCHEME_SPRINT) {
    spr_attend_range(c, a->h, H, a->res);
    if (c->thr.mode == SPR_THR_KEEP_RATE)
      for (int h = 0; h < H && !rc; h++) rc = spr_attend_count(c, &a->h[h], &a->res[h]);
    if (c->thr.mode == SPR_THR_ANALOG_KEEP_RATE)
      for (int h = 0; h < H && !rc; h++)
        rc = spr_attend_analog_scores(c, layer, head0 + h, trial, &a->h[h], a->ws, &a->res[h]);
    if (!rc && c->thr.mode == SPR_THR_LEARNED && !isfinite(theta))
      rc = spr_error(SPR_EINVAL, "layer %d: threshold.mode is learned but the layer's learned "
                     "threshold is %g", layer, theta);
    if (!rc) rc = spr_attend_thresholds(c, layer, a->h, H, theta, a->ws, a->res, &sat);
    for (int h = 0; h < H && !rc; h++)
      rc = spr_attend_analog(c, layer, head0 + h, trial, &a->h[h], a->ws, &a->res[h]);
  }
  for (int h = 0; h < H && !rc; h++) {
    spr_head_result *r = &a->res[h];
    if ((rc = spr_attend_digital(c, &a->h[h], a->ws)) ||
        (rc = spr_attend_scheme_at(c, s, &a->h[h], a->ws, keep_target, &r->scheme[s],
                                   O ? O + h * nd : NULL))) {
      rc = spr_error_prefix(rc, "layer %d head %d", layer, head0 + h);
      break;
    }
    r->scheme[s].ran = 1;
    if (stats) spr_bind_head_stats(r, s, stats + (size_t)h * N_STATS);
    if (stats && s != SPR_SCHEME_SPRINT)
      for (int k = 0; k < N_HEAD; k++)
        if (k != 4 && k != 5) stats[(size_t)h * N_STATS + k] = NAN; /* keep the scales */
    if (s == SPR_SCHEME_SPRINT) {
      if (mask) unpack_mask(a->h[h].mask_a, n, mask + (size_t)h * n * n);
      if (ideal) unpack_mask(a->h[h].mask_i, n, ideal + (size_t)h * n * n);
    }
  }
done:
  if (saturated) *saturated = sat;
  return rc;
}

/* --- model files ---------------------------------------------------------- */

struct spr_bind_model {
  spr_config mc;
  spr_model m;
  spr_fmnist data;
  int have_data, items;
  spr_model_ctx *x;
  uint8_t *packed; /* depth x heads x tokens x row bytes */
};

void spr_bind_model_free(spr_bind_model *b) {
  if (!b) return;
  spr_model_ctx_free(b->x);
  if (b->have_data) spr_fmnist_free(&b->data);
  spr_model_free(&b->m);
  free(b->packed);
  free(b);
}

int spr_bind_model_open(const spr_config *c, int *info, double *theta, spr_bind_model **out) {
  *out = NULL;
  if (c->wl.source != SPR_SOURCE_MODEL)
    return spr_error(SPR_EINVAL, "model: workload.source is not model");
  spr_bind_model *b = calloc(1, sizeof *b);
  if (!b) return spr_error(SPR_ENOMEM, "model: out of memory");
  int rc = spr_model_load(c->wl.model, &b->m);
  if (rc) {
    free(b);
    return rc;
  }
  const spr_model *m = &b->m;
  if (m->input == SPR_MODEL_IMAGE) {
    if (!(rc = spr_fmnist_load(c->wl.dataset, "t10k", &b->data))) {
      b->have_data = 1;
      b->items = b->data.count;
      if (b->data.rows != m->side || b->data.cols != m->side)
        rc = spr_error(SPR_EINVAL, "model: the images are %d x %d pixels; the model %s takes %d x %d",
                       b->data.rows, b->data.cols, c->wl.model, m->side, m->side);
    }
  } else {
    b->items = spr_model_windows(m, m->n_eval);
  }
  if (!rc) rc = spr_model_config(c, m, c->wl.model, &b->mc);
  if (!rc) rc = spr_attend_check(&b->mc, m->tokens, m->head_dim);
  if (!rc) rc = spr_model_ctx_alloc(&b->mc, m, &b->x);
  if (!rc) {
    b->packed = malloc((size_t)m->depth * m->heads * m->tokens * spr_mask_row_bytes(m->tokens));
    if (!b->packed) rc = spr_error(SPR_ENOMEM, "model: out of memory");
  }
  if (rc) {
    spr_bind_model_free(b);
    return rc;
  }
  const int v[9] = {m->input, m->causal, m->depth, m->heads, m->tokens, m->head_dim, m->outputs,
                    b->items, m->input == SPR_MODEL_IMAGE ? m->side : 0};
  memcpy(info, v, sizeof v);
  for (int l = 0; theta && l < SPR_MAX_LAYERS; l++)
    theta[l] = m->has_theta && l < m->depth ? m->theta[l] : NAN;
  *out = b;
  return 0;
}

int spr_bind_model_infer(spr_bind_model *b, int s, int item, float *logits, uint8_t *masks,
                         uint8_t *input) {
  const spr_model *m = &b->m;
  if (item < 0 || item >= b->items)
    return spr_error(SPR_EINVAL, "model: item %d outside 0..%d", item, b->items - 1);
  if (s < 0 || s > SPR_MEVAL_EXACT || (s < SPR_N_SCHEMES && !spr_attend_scheme_on(&b->mc, s)))
    return spr_error(SPR_EINVAL, "model: scheme %d is not enabled", s);
  if (b->mc.bl.match == SPR_MATCH_SPRINT && s != SPR_SCHEME_SPRINT && s != SPR_SCHEME_DENSE &&
      s != SPR_SCHEME_DENSE_TILED && s != SPR_MEVAL_EXACT)
    return spr_error(SPR_EINVAL, "model: baselines.match = sprint needs the item's SPRINT pass; "
                     "evaluate the model instead");
  const int text = m->input == SPR_MODEL_TEXT;
  const size_t in_len = text ? (size_t)m->tokens : (size_t)m->side * m->side;
  const uint8_t *in = text ? m->eval_tokens + (size_t)item * m->tokens
                           : b->data.pixels + (size_t)item * in_len;
  if (input) memcpy(input, in, in_len);
  spr_model_item_stats st;
  spr_model_ctx_record_masks(b->x, masks && s == SPR_SCHEME_SPRINT ? b->packed : NULL);
  int rc = spr_model_infer(&b->mc, m, s, in, item, b->x, logits, &st);
  spr_model_ctx_record_masks(b->x, NULL);
  if (rc) return rc;
  if (masks && s == SPR_SCHEME_SPRINT) {
    const int n = m->tokens;
    const size_t pb = (size_t)n * spr_mask_row_bytes(n);
    for (int k = 0; k < m->depth * m->heads; k++)
      unpack_mask(b->packed + k * pb, n, masks + (size_t)k * n * n);
  }
  return 0;
}

/* --- model evaluations ---------------------------------------------------- */

int spr_bind_meval(const spr_config *c, int threads, volatile sig_atomic_t *cancel, void **out) {
  *out = NULL;
  spr_model_eval_result *r = calloc(1, sizeof *r);
  if (!r) return spr_error(SPR_ENOMEM, "model: out of memory");
  int rc = spr_model_eval(c, threads, cancel, NULL, r);
  if (rc) {
    free(r);
    return rc;
  }
  *out = r;
  return 0;
}

void spr_bind_meval_free(void *p) {
  if (!p) return;
  spr_model_eval_result_free(p);
  free(p);
}

void spr_bind_meval_info(const void *p, int *info, double *seconds, const char **reference) {
  const spr_model_eval_result *r = p;
  const int v[10] = {r->input, r->causal, r->n_items, r->first_item, r->depth, r->heads,
                     r->tokens, r->outputs, r->head_dim, r->loss_vs};
  memcpy(info, v, sizeof v);
  *seconds = r->seconds;
  *reference = r->reference;
}

int spr_bind_meval_row(const void *p, int s, double *out, uint8_t *pred, double *nats,
                       double *energy_J, double *cycles, double *keep_rate,
                       int64_t *bytes_fetched, uint8_t *labels) {
  const spr_model_eval_result *r = p;
  if (s < 0 || s >= SPR_MEVAL_N_SCHEMES)
    return spr_error(SPR_EINVAL, "model: row %d outside 0..%d", s, SPR_MEVAL_N_SCHEMES - 1);
  const spr_model_metrics *x = &r->scheme[s];
  const double v[9] = {x->ran, x->metric, x->agreement, x->loss, x->keep_rate,
                       x->bytes_fetched, x->energy_J, x->cycles, (double)x->theta_saturated};
  memcpy(out, v, sizeof v);
  for (int l = 0; l < SPR_MAX_LAYERS; l++) out[9 + l] = l < r->depth ? x->keep_rate_layer[l] : NAN;
  const size_t N = (size_t)r->n_items;
  if (labels && r->labels) memcpy(labels, r->labels, N);
  if (!x->ran) return 0;
  if (pred && r->pred[s]) memcpy(pred, r->pred[s], N);
  if (nats && r->nats[s]) memcpy(nats, r->nats[s], N * sizeof *nats);
  if (energy_J) memcpy(energy_J, r->energy_J[s], N * sizeof *energy_J);
  if (cycles) memcpy(cycles, r->cycles[s], N * sizeof *cycles);
  if (keep_rate) memcpy(keep_rate, r->keep_rate[s], N * sizeof *keep_rate);
  if (bytes_fetched) memcpy(bytes_fetched, r->bytes_fetched[s], N * sizeof *bytes_fetched);
  return 0;
}

int spr_bind_meval_write(const char *path, const spr_config *c, const void *r) {
  return spr_model_eval_write(path, c, r, PACKAGE_VERSION);
}

/* --- traces ---------------------------------------------------------------- */

int spr_bind_trace_device(void *t, const spr_config *c) {
  if (!c->device_model[0]) return 0;
  spr_config cc = *c;
  spr_device dev;
  int applied[SPR_DEVICE_MAX_PARAMS], n = 0;
  int rc = spr_device_load_config(&cc, &dev, applied, &n);
  if (!rc) rc = spr_device_trace(t, c->device_model, &dev, applied, n);
  spr_device_free(&dev);
  return rc;
}

/* --- sweeps ---------------------------------------------------------------- */

int spr_bind_sweep_load(const char *path, const char *const *set, int n_set, const char *set_name,
                        void **out) {
  spr_config_src src = {path ? path : "defaults", path ? NULL : "", set, n_set, set_name};
  return spr_sweep_load_src(&src, (spr_sweep **)out);
}

int spr_bind_sweep_eval(void *p, int threads, volatile sig_atomic_t *cancel) {
  spr_sweep *sw = p;
  const int P = spr_sweep_npoints(sw);
  if (threads < 1 || threads > 1024)
    return spr_error(SPR_EINVAL, "sweep: thread count %d outside [1, 1024]", threads);
  int rc = spr_sweep_check_memory(sw, threads < P ? threads : P, 0);
  if (rc) return rc;
  int *rcs = calloc((size_t)P, sizeof *rcs);
  char (*msgs)[512] = calloc((size_t)P, sizeof *msgs);
  if (!rcs || !msgs) {
    free(rcs);
    free(msgs);
    return spr_error(SPR_ENOMEM, "sweep: out of memory");
  }
  int failed = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int k = 0; k < P; k++) {
    int stop;
#pragma omp atomic read
    stop = failed;
    if (stop) continue;
    rcs[k] = spr_sweep_eval_point(sw, k, cancel, NULL);
    if (rcs[k]) {
      snprintf(msgs[k], sizeof msgs[k], "%s", spr_errmsg());
#pragma omp atomic write
      failed = 1;
    }
  }
  for (int k = 0; k < P && !rc; k++)
    if (rcs[k]) rc = spr_error(rcs[k], "%s", msgs[k]);
  free(rcs);
  free(msgs);
  return rc;
}

int spr_bind_sweep_nmetrics(const void *sw) { return spr_sweep_evaluator(sw)->n_acc; }

const char *spr_bind_sweep_metric(const void *sw, int i) {
  const spr_evaluator *ev = spr_sweep_evaluator(sw);
  return i >= 0 && i < ev->n_acc ? ev->acc[i].name : NULL;
}

int spr_bind_sweep_row(const void *sw, int p, int s, double *out) {
  const spr_eval_row *r = p >= 0 && p < spr_sweep_npoints(sw) && s >= 0 && s < SPR_N_SCHEMES
                              ? spr_sweep_row(sw, p, s) : NULL;
  if (!r) return spr_error(SPR_EINVAL, "sweep: no row for point %d, scheme %d", p, s);
  out[0] = r->ran;
  out[1] = r->energy_J;
  out[2] = r->cycles;
  out[3] = r->keep_rate;
  out[4] = (double)r->bytes_fetched;
  for (int k = 0; k < SPR_EVAL_MAX_ACC; k++) out[5 + k] = r->acc[k];
  return 0;
}
