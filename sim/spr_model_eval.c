/* spr_model_eval.c - model inference with per-head schemes
 * (spr_model_eval.h). */
#include "config.h"
#include "spr_model_eval.h"
#include "spr_attend.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_h5quiet.h"
#include "spr_output.h"
#include "spr_h5w.h"
#include "spr_pipeline.h"
#include "spr_sysmem.h"

#include <cblas.h>
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *spr_model_scheme_name(int s) {
  if (s == SPR_MEVAL_EXACT) return "exact";
  if (s == SPR_MEVAL_REFERENCE) return "reference";
  return spr_scheme_name(s);
}

int spr_model_reference_path(const spr_config *c, const char *model_path, const spr_model *m,
                             char *buf, size_t n) {
  const char *key = c->wl.reference_model;
  int len;
  if (!strcmp(key, "none") || (!key[0] && !m->reference[0])) {
    len = snprintf(buf, n, "%s", "");
  } else if (key[0]) {
    len = snprintf(buf, n, "%s", key);
  } else if (m->reference[0] == '/') {
    len = snprintf(buf, n, "%s", m->reference);
  } else {
    /* relative to the model file's folder */
    const char *slash = strrchr(model_path, '/');
    const int dir = slash ? (int)(slash - model_path) + 1 : 0;
    len = snprintf(buf, n, "%.*s%s", dir, model_path, m->reference);
  }
  if (len < 0 || (size_t)len >= n)
    return spr_error(SPR_EINVAL, "%s: the reference model's path is longer than %zu bytes",
                     model_path, n - 1);
  return 0;
}

int spr_model_config(const spr_config *c, const spr_model *m, const char *model_path,
                     spr_config *out) {
  *out = *c;
  out->wl.seq_len = m->tokens;
  out->wl.n_layers = m->depth;
  out->wl.n_heads = m->heads;
  out->wl.head_dim = m->head_dim;
  out->wl.causal = m->causal;
  if (c->wl.causal && !m->causal)
    return spr_error(SPR_ECONFIG, "key 'workload.causal' is true but the model %s is not causal "
                     "(an %s model); remove the key", model_path, spr_model_input_name(m->input));
  const spr_thr_params *t = &c->thr;
  if (t->mode == SPR_THR_DIRECT) {
    const int L = m->depth, H = m->heads;
    const int ok = t->n_values == 1 || (t->per_head ? t->n_values == L * H : t->n_values == L);
    if (!ok)
      return spr_error(SPR_ECONFIG,
                       "key 'threshold.values': %d values given; the model %s has %d layers x %d "
                       "heads, so it needs 1 or %d", t->n_values, model_path, L, H,
                       t->per_head ? L * H : L);
  }
  if (t->mode == SPR_THR_LEARNED && !m->has_theta)
    return spr_error(SPR_ECONFIG,
                     "key 'threshold.mode': value 'learned' needs learned thresholds, but the "
                     "model %s has no dataset 'theta' (a dense model); use mode keep_rate or "
                     "direct, or a pruning-trained model", model_path);
  return 0;
}

struct spr_model_ctx {
  spr_model_ws *vw;
  spr_attend_ws *aw;
  spr_attend_head heads[SPR_MAX_HEADS];
  spr_head_result res[SPR_MAX_HEADS];
  float *O;      /* tokens x head_dim */
  float *logits; /* outputs, or tokens x outputs */
  double match[SPR_MAX_LAYERS]; /* baselines.match: SPRINT's keep rate per layer */
  int have_match;
  uint8_t *rec_masks; /* spr_model_ctx_record_masks: SPRINT's masks, or NULL */
};

void spr_model_ctx_record_masks(spr_model_ctx *x, uint8_t *masks) { x->rec_masks = masks; }

void spr_model_ctx_set_match(spr_model_ctx *x, const double *layer_keep, int depth) {
  x->have_match = layer_keep != NULL;
  for (int l = 0; layer_keep && l < depth && l < SPR_MAX_LAYERS; l++) x->match[l] = layer_keep[l];
}

void spr_model_ctx_free(spr_model_ctx *x) {
  if (!x) return;
  spr_model_ws_free(x->vw);
  spr_attend_ws_free(x->aw);
  for (int h = 0; h < SPR_MAX_HEADS; h++) spr_attend_head_free(&x->heads[h]);
  free(x->O);
  free(x->logits);
  free(x);
}

double spr_model_eval_mem_bytes(const spr_config *mc, const spr_model *m, int threads) {
  const double T = m->tokens, D = m->dim;
  const double rows = m->input == SPR_MODEL_TEXT ? T : 1;
  /* spr_model_ws: x, h, o, qkv, f, patches; the context's O and logits */
  const double acts = sizeof(float) * (T * D * 6 + T * m->mlp + T * m->patch * m->patch +
                                       T * m->head_dim + rows * m->outputs);
  /* spr_model_ctx_alloc: every head held whole (no row blocks) and one
   * attention workspace of n rows */
  const int n = m->tokens, d = m->head_dim;
  const double attn = m->heads * spr_attend_head_bytes(mc, n, d, 0, n) + spr_attend_ws_bytes(mc, n, d, n);
  return spr_model_bytes(m) + threads * (attn + acts);
}

int spr_model_ctx_alloc(const spr_config *mc, const spr_model *m, spr_model_ctx **out) {
  *out = NULL;
  spr_model_ctx *x = calloc(1, sizeof *x);
  if (!x) return spr_error(SPR_ENOMEM, "model: out of memory");
  int rc;
  if ((rc = spr_model_ws_alloc(m, &x->vw)) ||
      (rc = spr_attend_ws_alloc(mc, m->tokens, m->head_dim, &x->aw)))
    goto fail;
  /* a forward pass reads each head's output, never its accuracy against
   * dense attention: no reference, no metrics */
  spr_attend_ws_set_metrics(x->aw, 0);
  for (int h = 0; h < m->heads; h++)
    if ((rc = spr_attend_head_alloc(&x->heads[h], mc, m->tokens, m->head_dim, 0))) goto fail;
  const size_t rows = m->input == SPR_MODEL_TEXT ? (size_t)m->tokens : 1;
  x->O = malloc((size_t)m->tokens * m->head_dim * sizeof *x->O);
  x->logits = malloc(rows * (size_t)m->outputs * sizeof *x->logits);
  if (!x->O || !x->logits) {
    rc = spr_error(SPR_ENOMEM, "model: out of memory");
    goto fail;
  }
  *out = x;
  return 0;
fail:
  spr_model_ctx_free(x);
  return rc;
}

/* One layer's attention under scheme s: every head's output into the
 * activations of x. */
static int attend_layer(const spr_config *mc, const spr_model *m, int s, int l, int trial,
                        spr_model_ctx *x, spr_model_item_stats *st) {
  const int H = m->heads, n = m->tokens;
  const int64_t pairs = spr_pair_count(n, m->causal);
  int rc;
  for (int h = 0; h < H; h++)
    spr_model_head_qkv(m, x->vw, h, x->heads[h].Q, x->heads[h].K, x->heads[h].V);
  if (s == SPR_MEVAL_EXACT || s == SPR_MEVAL_REFERENCE) {
    for (int h = 0; h < H; h++) {
      if ((rc = spr_attend_exact(mc, &x->heads[h], x->aw, x->O))) return rc;
      spr_model_head_out(m, x->vw, h, x->O);
      st->kept[l] += pairs;
    }
    return 0;
  }
  for (int h = 0; h < H; h++)
    if ((rc = spr_attend_ideal(mc, l, h, &x->heads[h], x->aw, &x->res[h]))) return rc;
  if (s == SPR_SCHEME_SPRINT) {
    /* thresholds of this item's layer, as the pipeline sets them for a
     * sequence, then the analog decisions */
    spr_attend_range(mc, x->heads, H, x->res);
    if (mc->thr.mode == SPR_THR_KEEP_RATE)
      for (int h = 0; h < H; h++)
        if ((rc = spr_attend_count(mc, &x->heads[h], &x->res[h]))) return rc;
    if (mc->thr.mode == SPR_THR_ANALOG_KEEP_RATE)
      for (int h = 0; h < H; h++)
        if ((rc = spr_attend_analog_scores(mc, l, h, trial, &x->heads[h], x->aw, &x->res[h])))
          return rc;
    if ((rc = spr_attend_thresholds(mc, l, x->heads, H, m->has_theta ? m->theta[l] : 0.0, x->aw,
                                    x->res, &st->theta_saturated)))
      return rc;
    for (int h = 0; h < H; h++)
      if ((rc = spr_attend_analog(mc, l, h, trial, &x->heads[h], x->aw, &x->res[h]))) return rc;
    if (x->rec_masks) {
      const size_t bytes = (size_t)n * spr_mask_row_bytes(n);
      for (int h = 0; h < H; h++)
        memcpy(x->rec_masks + ((size_t)l * H + h) * bytes, x->heads[h].mask_a, bytes);
    }
  }
  /* baselines.match = sprint: SPRINT's realised keep rate of this item's
   * layer (spr_model_ctx_set_match) */
  double target = -1.0;
  if (mc->bl.match == SPR_MATCH_SPRINT && s != SPR_SCHEME_SPRINT && s != SPR_SCHEME_DENSE &&
      s != SPR_SCHEME_DENSE_TILED) {
    if (!x->have_match)
      return spr_error(SPR_EINVAL, "baselines.match = sprint: the item's SPRINT keep rates are "
                       "not set (run SPRINT first, spr_model_ctx_set_match)");
    target = x->match[l];
  }
  for (int h = 0; h < H; h++) {
    spr_scheme_result sr;
    if ((rc = spr_attend_digital(mc, &x->heads[h], x->aw)) ||
        (rc = spr_attend_scheme_at(mc, s, &x->heads[h], x->aw, target, &sr, x->O)))
      return rc;
    spr_model_head_out(m, x->vw, h, x->O);
    st->kept[l] += llround(sr.keep_rate * (double)pairs);
    st->bytes_fetched += sr.bytes_fetched;
    st->energy_J += sr.energy_total_J;
    st->cycles += sr.cycles_total;
  }
  return 0;
}

int spr_model_infer(const spr_config *mc, const spr_model *m, int s, const uint8_t *input,
                    int trial, spr_model_ctx *x, float *logits, spr_model_item_stats *st) {
  memset(st, 0, sizeof *st);
  if (s < 0 || s >= SPR_MEVAL_N_SCHEMES)
    return spr_error(SPR_EINVAL, "model: scheme %d outside [0, %d)", s, SPR_MEVAL_N_SCHEMES);
  int rc = m->input == SPR_MODEL_IMAGE ? spr_model_embed_image(m, input, x->vw)
                                       : spr_model_embed_text(m, input, x->vw);
  for (int l = 0; l < m->depth && !rc; l++) {
    if ((rc = spr_model_attn_in(m, l, x->vw))) break;
    if ((rc = attend_layer(mc, m, s, l, trial, x, st))) {
      /* the threshold messages name the layer already */
      if (!strncmp(spr_errmsg(), "layer ", 6))
        return spr_error_prefix(rc, "%s", spr_model_scheme_name(s));
      return spr_error_prefix(rc, "%s: layer %d", spr_model_scheme_name(s), l);
    }
    rc = spr_model_attn_out(m, l, x->vw);
  }
  if (!rc) rc = spr_model_logits(m, x->vw, logits);
  return rc;
}

int spr_model_eval_add_input(spr_model_eval_result *r, const char *key, const char *path,
                             const char *content_id, long long size_bytes) {
  if (!r || !key || !*key || strchr(key, '/') || !path || !*path || !content_id || !*content_id ||
      size_bytes < 0)
    return spr_error(SPR_EINVAL, "spr_model_eval_add_input: a NULL or empty field, a '/' in the "
                     "key or a negative size");
  for (int k = 0; k < r->n_inputs; k++)
    if (!strcmp(r->inputs[k].key, key))
      return spr_error(SPR_EINVAL, "spr_model_eval_add_input: input '%s' recorded twice", key);
  if (r->n_inputs == SPR_MEVAL_MAX_INPUTS)
    return spr_error(SPR_EINVAL, "spr_model_eval_add_input: more than %d inputs", SPR_MEVAL_MAX_INPUTS);
  spr_model_eval_input *in = &r->inputs[r->n_inputs];
  if (strlen(key) >= sizeof in->key || strlen(path) >= sizeof in->path ||
      strlen(content_id) >= sizeof in->content_id)
    return spr_error(SPR_EINVAL, "spr_model_eval_add_input: input '%.64s': a field is too long", key);
  snprintf(in->key, sizeof in->key, "%s", key);
  snprintf(in->path, sizeof in->path, "%s", path);
  snprintf(in->content_id, sizeof in->content_id, "%s", content_id);
  in->size_bytes = size_bytes;
  r->n_inputs++;
  return 0;
}

void spr_model_eval_result_free(spr_model_eval_result *r) {
  if (!r) return;
  free(r->labels);
  for (int s = 0; s < SPR_MEVAL_N_SCHEMES; s++) {
    free(r->pred[s]);
    free(r->nats[s]);
    free(r->energy_J[s]);
    free(r->cycles[s]);
    free(r->keep_rate[s]);
    free(r->bytes_fetched[s]);
  }
  memset(r, 0, sizeof *r);
}

/* The items of c for model m: [*first, *first + *count) of the images of
 * data or of the model's evaluation windows. */
static int item_range(const spr_config *c, const spr_model *m, const char *model_path,
                      const spr_fmnist *data, int *first, int *count) {
  if (m->input == SPR_MODEL_IMAGE) {
    if (!data)
      return spr_error(SPR_EINVAL, "model: the image model %s needs test images", model_path);
    if (data->rows != m->side || data->cols != m->side)
      return spr_error(SPR_EINVAL, "model: the images are %d x %d pixels; the model %s takes %d x %d",
                       data->rows, data->cols, model_path, m->side, m->side);
    *first = c->wl.first_image;
    *count = c->wl.images;
    if (*count < 1 || *first < 0 || (int64_t)*first + *count > data->count)
      return spr_error(SPR_EINVAL, "model: workload.first_image %d + workload.images %d exceed the "
                       "%d test images", *first, *count, data->count);
    return 0;
  }
  const int W = spr_model_windows(m, m->n_eval);
  if (W < 1)
    return spr_error(SPR_EINVAL, "model: the evaluation split of %s has %d tokens, too short for "
                     "one window of %d tokens plus its last target (%d)", model_path, m->n_eval,
                     m->tokens, m->tokens + 1);
  *first = c->wl.first_window;
  *count = c->wl.windows;
  if (*count < 1 || *first < 0 || (int64_t)*first + *count > W)
    return spr_error(SPR_EINVAL, "model: workload.first_window %d + workload.windows %d exceed the "
                     "%d windows of %d tokens in the evaluation split of %s (%d tokens)", *first,
                     *count, W, m->tokens, model_path, m->n_eval);
  return 0;
}

/* A reference model must answer the same question as the model. */
static int check_reference(const spr_model *m, const char *model_path, const spr_model *ref,
                           const char *ref_path) {
  if (ref->input != m->input || ref->tokens != m->tokens || ref->outputs != m->outputs ||
      ref->causal != m->causal || (m->input == SPR_MODEL_IMAGE && ref->side != m->side) ||
      (m->input == SPR_MODEL_TEXT && memcmp(ref->vocab_bytes, m->vocab_bytes, (size_t)m->vocab)))
    return spr_error(SPR_EINVAL,
                     "model: the reference model %s (%s, %d tokens, %d outputs) does not match the "
                     "model %s (%s, %d tokens, %d outputs%s)", ref_path,
                     spr_model_input_name(ref->input), ref->tokens, ref->outputs, model_path,
                     spr_model_input_name(m->input), m->tokens, m->outputs,
                     m->input == SPR_MODEL_TEXT ? ", the same vocabulary" : "");
  return 0;
}

int spr_model_eval_need_bytes(const spr_config *c, const spr_model *m, const char *model_path,
                              const spr_model *ref, const char *ref_path, int threads,
                              double *bytes) {
  *bytes = 0;
  spr_config mc, rc_cfg;
  int rc = spr_model_config(c, m, model_path, &mc);
  if (rc) return rc;
  double need = spr_model_eval_mem_bytes(&mc, m, threads);
  if (ref) {
    /* the reference runs exact attention only: no threshold applies */
    spr_config rcfg = *c;
    rcfg.thr.mode = SPR_THR_KEEP_RATE;
    if ((rc = spr_model_config(&rcfg, ref, ref_path, &rc_cfg))) return rc;
    need += spr_model_eval_mem_bytes(&rc_cfg, ref, threads);
  }
  *bytes = need;
  return 0;
}

/* ---- a store of inputs shared by many evaluations ------------------------ */

typedef struct {
  char *path;
  spr_model m;
} store_model;

typedef struct {
  char *dir;
  spr_fmnist d;
} store_data;

struct spr_model_store {
  int nm, nd;
  store_model *m;
  store_data *d;
};

int spr_model_store_new(spr_model_store **out) {
  *out = calloc(1, sizeof **out);
  return *out ? 0 : spr_error(SPR_ENOMEM, "model: out of memory");
}

void spr_model_store_free(spr_model_store *s) {
  if (!s) return;
  for (int i = 0; i < s->nm; i++) {
    free(s->m[i].path);
    spr_model_free(&s->m[i].m);
  }
  for (int i = 0; i < s->nd; i++) {
    free(s->d[i].dir);
    spr_fmnist_free(&s->d[i].d);
  }
  free(s->m);
  free(s->d);
  free(s);
}

const spr_model *spr_model_store_get(const spr_model_store *s, const char *path) {
  for (int i = 0; s && i < s->nm; i++)
    if (!strcmp(s->m[i].path, path)) return &s->m[i].m;
  return NULL;
}

static const spr_fmnist *store_find_data(const spr_model_store *s, const char *dir) {
  for (int i = 0; s && i < s->nd; i++)
    if (!strcmp(s->d[i].dir, dir)) return &s->d[i].d;
  return NULL;
}

static int store_add_model(spr_model_store *s, const char *path, const spr_model **out) {
  if ((*out = spr_model_store_get(s, path))) return 0;
  store_model *g = realloc(s->m, (size_t)(s->nm + 1) * sizeof *g);
  if (!g) return spr_error(SPR_ENOMEM, "model: out of memory");
  s->m = g;
  store_model *e = &s->m[s->nm];
  if (!(e->path = strdup(path))) return spr_error(SPR_ENOMEM, "model: out of memory");
  int rc = spr_model_load(path, &e->m);
  if (rc) {
    free(e->path);
    return rc;
  }
  *out = &s->m[s->nm++].m;
  return 0;
}

int spr_model_store_add(spr_model_store *s, const spr_config *c) {
  const spr_model *m;
  int rc = store_add_model(s, c->wl.model, &m);
  if (rc) return rc;
  char ref_path[SPR_STRING_MAX];
  if ((rc = spr_model_reference_path(c, c->wl.model, m, ref_path, sizeof ref_path))) return rc;
  const int image = m->input == SPR_MODEL_IMAGE; /* m moves when the array grows */
  if (ref_path[0]) {
    const spr_model *ref;
    if ((rc = store_add_model(s, ref_path, &ref)))
      return spr_error_prefix(rc, "the reference model of %s", c->wl.model);
  }
  if (image && !store_find_data(s, c->wl.dataset)) {
    store_data *g = realloc(s->d, (size_t)(s->nd + 1) * sizeof *g);
    if (!g) return spr_error(SPR_ENOMEM, "model: out of memory");
    s->d = g;
    store_data *e = &s->d[s->nd];
    if (!(e->dir = strdup(c->wl.dataset))) return spr_error(SPR_ENOMEM, "model: out of memory");
    if ((rc = spr_fmnist_load(c->wl.dataset, "t10k", &e->d))) {
      free(e->dir);
      return rc;
    }
    s->nd++;
  }
  return 0;
}

/* The inputs of c in s: 0 and *m (and *ref, *data; NULL when c has none),
 * or 1 when s does not hold them all. */
static int store_inputs(const spr_model_store *s, const spr_config *c, const spr_model **m,
                        const spr_model **ref, char *ref_path, size_t n, const spr_fmnist **data) {
  *ref = NULL;
  *data = NULL;
  if (!(*m = spr_model_store_get(s, c->wl.model))) return 1;
  if (spr_model_reference_path(c, c->wl.model, *m, ref_path, n)) return 1;
  if (ref_path[0] && !(*ref = spr_model_store_get(s, ref_path))) return 1;
  if ((*m)->input == SPR_MODEL_IMAGE && !(*data = store_find_data(s, c->wl.dataset))) return 1;
  return 0;
}

int spr_model_store_need_bytes(const spr_model_store *s, const spr_config *c, double *bytes) {
  *bytes = 0;
  const spr_model *m, *ref;
  const spr_fmnist *data;
  char ref_path[SPR_STRING_MAX];
  if (store_inputs(s, c, &m, &ref, ref_path, sizeof ref_path, &data))
    return spr_error(SPR_EINVAL, "model: %s and its inputs were not read into the store",
                     c->wl.model);
  int rc = spr_model_eval_need_bytes(c, m, c->wl.model, ref, ref_path, 1, bytes);
  /* an image model also holds the test split: pixels and labels */
  if (!rc && data) *bytes += (double)data->count * (data->rows * data->cols + 1);
  return rc;
}

int spr_model_eval_from(const spr_model_store *s, const spr_config *c, int threads,
                        volatile sig_atomic_t *cancel, spr_progress *prog,
                        spr_model_eval_result *out) {
  const spr_model *m, *ref;
  const spr_fmnist *data;
  char ref_path[SPR_STRING_MAX];
  if (store_inputs(s, c, &m, &ref, ref_path, sizeof ref_path, &data))
    return spr_model_eval(c, threads, cancel, prog, out);
  return spr_model_eval_run(c, m, c->wl.model, ref, ref_path, data, threads, cancel, prog, out);
}

int spr_model_eval_run(const spr_config *c, const spr_model *m, const char *model_path,
                       const spr_model *ref, const char *ref_path, const spr_fmnist *data,
                       int threads, volatile sig_atomic_t *cancel, spr_progress *prog,
                       spr_model_eval_result *out) {
  memset(out, 0, sizeof *out);
  if (threads < 1 || threads > 1024)
    return spr_error(SPR_EINVAL, "model: thread count %d outside [1, 1024]", threads);
  int first, N, rc;
  if ((rc = item_range(c, m, model_path, data, &first, &N))) return rc;
  if (ref && (rc = check_reference(m, model_path, ref, ref_path))) return rc;
  spr_config mc, rc_cfg;
  if ((rc = spr_model_config(c, m, model_path, &mc))) return rc;
  if ((rc = spr_attend_check(&mc, m->tokens, m->head_dim))) return rc;
  if (ref) {
    /* the reference runs exact attention only: no threshold applies */
    spr_config rcfg = *c;
    rcfg.thr.mode = SPR_THR_KEEP_RATE;
    if ((rc = spr_model_config(&rcfg, ref, ref_path, &rc_cfg))) return rc;
  }
  {
    /* refused before any item runs, not killed part-way by the OOM killer */
    const int tn = threads > N ? N : threads; /* as below */
    double have = 0, need = 0;
    char src[512];
    if ((rc = spr_model_eval_need_bytes(c, m, model_path, ref, ref_path, tn, &need))) return rc;
    if (!spr_sysmem_limit(NULL, NULL, &have, src, sizeof src) && need > 0.8 * have)
      return spr_error(SPR_ENOMEM,
                       "model: %s (%d tokens, %d heads, dim %d%s) on %d threads needs about %s of "
                       "memory, more than 80%% of the %s this process may use (%s); "
                       "fewer threads, or a smaller model",
                       model_path, m->tokens, m->heads, m->dim, ref ? ", with its reference" : "",
                       tn, spr_mem_str(need).s, spr_mem_str(have).s, src);
  }
  const int S = SPR_MEVAL_N_SCHEMES, L = m->depth, text = m->input == SPR_MODEL_TEXT;
  out->input = m->input;
  out->causal = m->causal;
  out->n_items = N;
  out->first_item = first;
  out->depth = L;
  out->heads = m->heads;
  out->tokens = m->tokens;
  out->outputs = m->outputs;
  out->head_dim = m->head_dim;
  out->loss_vs = ref ? SPR_MEVAL_REFERENCE : SPR_MEVAL_EXACT;
  snprintf(out->reference, sizeof out->reference, "%s", ref ? ref_path : "");
  if (threads > N) threads = N;
  spr_model_ctx **ctx = calloc((size_t)threads, sizeof *ctx);
  spr_model_ctx **rctx = calloc((size_t)threads, sizeof *rctx);
  spr_model_item_stats *st = calloc((size_t)N * S, sizeof *st);
  int *rcs = calloc((size_t)N, sizeof *rcs);
  char (*msgs)[512] = calloc((size_t)N, sizeof *msgs);
  out->labels = text ? NULL : malloc((size_t)N);
  rc = !ctx || !rctx || !st || !rcs || !msgs || (!text && !out->labels);
  for (int s = 0; s < S && !rc; s++) {
    if (s == SPR_MEVAL_REFERENCE ? !ref : !(s == SPR_MEVAL_EXACT || spr_attend_scheme_on(c, s)))
      continue;
    out->scheme[s].ran = 1;
    if (text) out->nats[s] = malloc((size_t)N * sizeof(double));
    else out->pred[s] = malloc((size_t)N);
    out->energy_J[s] = malloc((size_t)N * sizeof(double));
    out->cycles[s] = malloc((size_t)N * sizeof(double));
    out->keep_rate[s] = malloc((size_t)N * sizeof(double));
    out->bytes_fetched[s] = malloc((size_t)N * sizeof(int64_t));
    rc = !(text ? (void *)out->nats[s] : (void *)out->pred[s]) || !out->energy_J[s] ||
         !out->cycles[s] || !out->keep_rate[s] || !out->bytes_fetched[s];
  }
  if (rc) rc = spr_error(SPR_ENOMEM, "model: out of memory for %d items", N);
  for (int t = 0; t < threads && !rc; t++) {
    rc = spr_model_ctx_alloc(&mc, m, &ctx[t]);
    if (!rc && ref) rc = spr_model_ctx_alloc(&rc_cfg, ref, &rctx[t]);
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (!rc) {
    openblas_set_num_threads(1);
    if (!text) memcpy(out->labels, data->labels + first, (size_t)N);
    spr_progress_begin(prog, text ? "windows" : "images", N);
    /* after a failing item, items not yet started are skipped (the first
     * failing item in item order is reported below) */
    int failed = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int i = 0; i < N; i++) {
      const int tid = omp_get_thread_num();
      const int item = first + i;
      const uint8_t *in = text ? m->eval_tokens + (size_t)item * m->tokens
                               : data->pixels + (size_t)item * m->side * m->side;
      int r = 0, stop;
#pragma omp atomic read
      stop = failed;
      if (stop) {
        rcs[i] = SPR_ECANCELED;
        continue;
      }
      if (cancel && *cancel) r = spr_error(SPR_ECANCELED, "interrupted");
      for (int s = 0; s < S && !r; s++) {
        if (!out->scheme[s].ran) continue;
        const int isref = s == SPR_MEVAL_REFERENCE;
        spr_model_ctx *x = isref ? rctx[tid] : ctx[tid];
        r = spr_model_infer(isref ? &rc_cfg : &mc, isref ? ref : m, s, in, item, x, x->logits,
                            &st[(size_t)i * S + s]);
        if (r) break;
        if (s == SPR_SCHEME_SPRINT && mc.bl.match == SPR_MATCH_SPRINT) {
          /* the baselines that follow run at SPRINT's keep rate of each
           * layer of this item */
          double keep[SPR_MAX_LAYERS];
          const double pairs = (double)spr_pair_count(m->tokens, m->causal) * m->heads;
          for (int l = 0; l < m->depth; l++) keep[l] = (double)st[(size_t)i * S + s].kept[l] / pairs;
          spr_model_ctx_set_match(x, keep, m->depth);
        }
        if (text) out->nats[s][i] = spr_model_nats(x->logits, in + 1, m->tokens, m->outputs);
        else out->pred[s][i] = (uint8_t)spr_model_argmax(x->logits, m->outputs);
      }
      if (r) {
        rcs[i] = r;
        snprintf(msgs[i], sizeof msgs[i], "%s", spr_errmsg());
#pragma omp atomic write
        failed = 1;
      } else {
        spr_progress_add(prog, 1);
      }
    }
    /* the first real failure in item order, else an interruption */
    for (int i = 0; i < N && !rc; i++)
      if (rcs[i] && rcs[i] != SPR_ECANCELED)
        rc = spr_error(rcs[i], "model: %s %d: %s", text ? "window" : "test image", first + i,
                       msgs[i]);
    for (int i = 0; i < N && !rc; i++)
      if (rcs[i]) rc = spr_error(SPR_ECANCELED, "interrupted");
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  out->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  /* totals in item order: the same sums for any thread count */
  const double pairs = (double)m->heads * (double)spr_pair_count(m->tokens, m->causal);
  const double targets = (double)N * m->tokens;
  for (int s = 0; s < S && !rc; s++) {
    spr_model_metrics *mt = &out->scheme[s];
    if (!mt->ran) continue;
    const int priced = s < SPR_N_SCHEMES;
    int64_t correct = 0, agree = 0, kept = 0, kl[SPR_MAX_LAYERS] = {0};
    double e = 0, cy = 0, by = 0, nats = 0;
    for (int i = 0; i < N; i++) {
      const spr_model_item_stats *q = &st[(size_t)i * S + s];
      int64_t ki = 0;
      for (int l = 0; l < L; l++) {
        kl[l] += q->kept[l];
        ki += q->kept[l];
      }
      kept += ki;
      if (text) {
        nats += out->nats[s][i];
      } else {
        correct += out->pred[s][i] == out->labels[i];
        agree += out->pred[s][i] == out->pred[SPR_MEVAL_EXACT][i];
      }
      out->energy_J[s][i] = priced ? q->energy_J : NAN;
      out->cycles[s][i] = priced ? q->cycles : NAN;
      out->bytes_fetched[s][i] = priced ? q->bytes_fetched : 0;
      out->keep_rate[s][i] = (double)ki / (pairs * L);
      e += q->energy_J;
      cy += q->cycles;
      by += (double)q->bytes_fetched;
      mt->theta_saturated += q->theta_saturated;
    }
    mt->metric = text ? nats / (targets * log(2.0)) : (double)correct / N;
    mt->agreement = text ? NAN : (double)agree / N;
    mt->keep_rate = (double)kept / (pairs * L * N);
    for (int l = 0; l < L; l++) mt->keep_rate_layer[l] = (double)kl[l] / (pairs * N);
    mt->energy_J = priced ? e : NAN;
    mt->cycles = priced ? cy : NAN;
    mt->bytes_fetched = priced ? by : NAN;
  }
  /* losses against the reference row (exact without one); from the counts
   * for images, so that equal top-1 gives exactly 0 */
  for (int s = 0; s < S && !rc; s++) {
    spr_model_metrics *mt = &out->scheme[s];
    if (!mt->ran) continue;
    const int v = out->loss_vs;
    if (text) {
      const double b = out->scheme[v].metric;
      mt->loss = 100.0 * (mt->metric - b) / b;
    } else {
      int64_t ok = 0, okv = 0;
      for (int i = 0; i < N; i++) {
        ok += out->pred[s][i] == out->labels[i];
        okv += out->pred[v][i] == out->labels[i];
      }
      mt->loss = 100.0 * (double)(okv - ok) / N;
    }
  }
  /* the files read, as read */
  if (!rc && m->content_id[0])
    rc = spr_model_eval_add_input(out, "workload.model", model_path, m->content_id, m->file_bytes);
  if (!rc && ref && ref->content_id[0])
    rc = spr_model_eval_add_input(out, "workload.reference_model", ref_path, ref->content_id,
                                  ref->file_bytes);
  if (!rc && data && data->images_id[0])
    rc = spr_model_eval_add_input(out, "workload.dataset.images", data->images_path,
                                  data->images_id, data->images_bytes);
  if (!rc && data && data->labels_id[0])
    rc = spr_model_eval_add_input(out, "workload.dataset.labels", data->labels_path,
                                  data->labels_id, data->labels_bytes);
  for (int t = 0; t < threads; t++) {
    if (ctx) spr_model_ctx_free(ctx[t]);
    if (rctx) spr_model_ctx_free(rctx[t]);
  }
  free(ctx);
  free(rctx);
  free(st);
  free(rcs);
  free(msgs);
  if (rc) spr_model_eval_result_free(out);
  return rc;
}

int spr_model_eval(const spr_config *c, int threads, volatile sig_atomic_t *cancel,
                   spr_progress *prog, spr_model_eval_result *out) {
  memset(out, 0, sizeof *out);
  spr_model m, ref;
  spr_fmnist data;
  int have_ref = 0, have_data = 0;
  char ref_path[SPR_STRING_MAX];
  int rc = spr_model_load(c->wl.model, &m);
  if (rc) return rc;
  if ((rc = spr_model_reference_path(c, c->wl.model, &m, ref_path, sizeof ref_path))) goto done;
  if (ref_path[0]) {
    if ((rc = spr_model_load(ref_path, &ref))) {
      rc = spr_error_prefix(rc, "the reference model of %s", c->wl.model);
      goto done;
    }
    have_ref = 1;
  }
  if (m.input == SPR_MODEL_IMAGE) {
    if ((rc = spr_fmnist_load(c->wl.dataset, "t10k", &data))) goto done;
    have_data = 1;
  }
  rc = spr_model_eval_run(c, &m, c->wl.model, have_ref ? &ref : NULL, ref_path,
                          have_data ? &data : NULL, threads, cancel, prog, out);
done:
  if (have_data) spr_fmnist_free(&data);
  if (have_ref) spr_model_free(&ref);
  spr_model_free(&m);
  return rc;
}

/* ---- output ------------------------------------------------------------- */

typedef spr__h5w wctx; /* core/spr_h5w.h */

/* 1-D dataset of n values with a unit and a description. */
static void w_vec(wctx *w, const char *path, hid_t ftype, hid_t mtype, hsize_t n, const void *v,
                  const char *unit, const char *desc) {
  spr__h5w_dset(w, path, ftype, mtype, 1, &n, v, unit, desc);
}

static void write_body(wctx *w, const spr_config *c, const spr_model_eval_result *r,
                       const char *version) {
  const int text = r->input == SPR_MODEL_TEXT;
  /* the configuration as run: the workload sizes are the model's */
  spr_config *mc = malloc(sizeof *mc);
  if (!mc) {
    w->rc = spr_error(SPR_ENOMEM, "%s: out of memory", w->tmp);
    return;
  }
  *mc = *c;
  mc->wl.seq_len = r->tokens;
  mc->wl.n_layers = r->depth;
  mc->wl.n_heads = r->heads;
  mc->wl.head_dim = r->head_dim;
  mc->wl.causal = r->causal;
  char *ini = spr_config_to_ini(mc);
  free(mc);
  if (!ini) {
    w->rc = spr_error(SPR_ENOMEM, "%s: out of memory", w->tmp);
    return;
  }
  spr__h5w_attr_str(w, "/", "program", "sprintsim");
  spr__h5w_attr_str(w, "/", "version", version);
  spr__h5w_attr_str(w, "/", "format", "sprintsim-model-eval");
  spr__h5w_attr_i64(w, "/", "format_version", 1);
  spr__h5w_attr_str(w, "/", "input", spr_model_input_name(r->input));
  spr__h5w_attr_i64(w, "/", "causal", r->causal);
  spr__h5w_attr_str(w, "/", "model", c->wl.model);
  spr__h5w_attr_str(w, "/", "reference", r->reference);
  spr__h5w_attr_str(w, "/", "loss_vs", spr_model_scheme_name(r->loss_vs));
  spr__h5w_attr_str(w, "/", "metric", text ? "bpc" : "top1");
  if (!text) spr__h5w_attr_str(w, "/", "dataset", c->wl.dataset);
  spr__h5w_attr_i64(w, "/", "first_item", r->first_item);
  spr__h5w_attr_i64(w, "/", "items", r->n_items);
  spr__h5w_attr_i64(w, "/", "depth", r->depth);
  spr__h5w_attr_i64(w, "/", "heads", r->heads);
  spr__h5w_attr_i64(w, "/", "tokens", r->tokens);
  spr__h5w_attr_f64(w, "/", "seconds", r->seconds);
  const uint64_t seed = c->seed;
  spr__h5w_attr(w, "/", "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &seed);
  spr__h5w_group(w, "/config");
  spr__h5w_dset_str(w, "/config/ini", ini);
  free(ini);
  /* the input files, as read (as a trace's /inputs, docs/trace.md) */
  if (r->n_inputs) spr__h5w_group(w, "/inputs");
  for (int k = 0; k < r->n_inputs; k++) {
    const spr_model_eval_input *in = &r->inputs[k];
    char d[128];
    snprintf(d, sizeof d, "/inputs/%.100s", in->key);
    spr__h5w_dset_str(w, d, in->path);
    spr__h5w_attr_str(w, d, "content_id", in->content_id);
    spr__h5w_attr_i64(w, d, "size_bytes", in->size_bytes);
    spr__h5w_attr_str(w, d, "description",
          "an input file of the evaluation, named by its role; content_id is FNV-1a 64 of the "
          "bytes read");
  }
  spr__h5w_status(w);
  const hsize_t N = (hsize_t)r->n_items;
  int32_t *idx = w->rc ? NULL : malloc(N * sizeof *idx);
  if (!w->rc && !idx) w->rc = spr_error(SPR_ENOMEM, "%s: out of memory", w->tmp);
  for (hsize_t i = 0; idx && i < N; i++) idx[i] = r->first_item + (int32_t)i;
  w_vec(w, "/item_index", H5T_STD_I32LE, H5T_NATIVE_INT32, N, idx, "1",
        text ? "index of each evaluated window of the evaluation split"
             : "index of each evaluated image in the test set");
  free(idx);
  if (!text)
    w_vec(w, "/labels", H5T_STD_U8LE, H5T_NATIVE_UINT8, N, r->labels, "1",
          "true class of each image");
  spr__h5w_group(w, "/schemes");
  for (int s = 0; s < SPR_MEVAL_N_SCHEMES && !w->rc; s++) {
    const spr_model_metrics *mt = &r->scheme[s];
    if (!mt->ran) continue;
    char p[64], d[96];
    snprintf(p, sizeof p, "/schemes/%s", spr_model_scheme_name(s));
    spr__h5w_group(w, p);
    spr__h5w_attr_f64(w, p, text ? "bpc" : "top1", mt->metric);
    if (!text) spr__h5w_attr_f64(w, p, "agreement", mt->agreement);
    spr__h5w_attr_f64(w, p, text ? "loss_pct" : "loss_pp", mt->loss);
    spr__h5w_attr_f64(w, p, "keep_rate", mt->keep_rate);
    spr__h5w_attr_f64(w, p, "bytes_fetched", mt->bytes_fetched);
    spr__h5w_attr_f64(w, p, "energy_J", mt->energy_J);
    spr__h5w_attr_f64(w, p, "cycles", mt->cycles);
    spr__h5w_attr_i64(w, p, "theta_saturated", mt->theta_saturated);
#define VEC(name, ft, mt_, data, unit, desc) \
  (snprintf(d, sizeof d, "%s/%s", p, name), w_vec(w, d, ft, mt_, N, data, unit, desc))
    if (text)
      VEC("nats", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, r->nats[s], "nat",
          "sum over the window's targets of -ln p(target)");
    else
      VEC("pred", H5T_STD_U8LE, H5T_NATIVE_UINT8, r->pred[s], "1", "predicted class of each image");
    VEC("keep_rate", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, r->keep_rate[s], "1",
        "kept (query, key) pairs over the allowed pairs of every layer and head, per item");
    VEC("bytes_fetched", H5T_STD_I64LE, H5T_NATIVE_INT64, r->bytes_fetched[s], "B",
        "ReRAM bytes fetched into the on-chip buffer, per item (0 for exact and reference)");
    VEC("energy_J", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, r->energy_J[s], "J",
        "ledger energy of the attention of every layer and head, per item (NaN for exact "
        "and reference)");
    VEC("cycles", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, r->cycles[s], "1",
        "ledger latency in cycles, heads one after another, per item (NaN for exact and "
        "reference)");
#undef VEC
    snprintf(d, sizeof d, "%s/keep_rate_layer", p);
    w_vec(w, d, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (hsize_t)r->depth, mt->keep_rate_layer, "1",
          "keep rate of each layer over the evaluated items");
    spr__h5w_status(w);
  }
}

int spr_model_eval_write(const char *path, const spr_config *c, const spr_model_eval_result *r,
                         const char *version) {
  if (!path || !*path || !c || !r || !version)
    return spr_error(SPR_EINVAL, "spr_model_eval_write: a NULL argument or an empty path");
  char *tmp;
  int rc = spr__out_begin(path, &tmp);
  if (rc) return rc;
  spr__h5_quiet q;
  spr__h5_quiet_on(&q);
  wctx w = {-1, tmp, 0};
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) w.rc = spr__h5_fail(tmp, "cannot make the file-access properties");
  if (!w.rc) w.rc = spr__h5_out_fapl(fapl, tmp);
  if (!w.rc && (w.f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0)
    w.rc = spr__h5_fail(tmp, "cannot create HDF5 file");
  if (fapl >= 0) H5Pclose(fapl);
  if (!w.rc) write_body(&w, c, r, version);
  rc = spr__h5_close_output(w.f, tmp, w.rc); /* the verified close */
  spr__h5_quiet_off(&q);
  if (!rc) rc = spr__out_commit(tmp, path, 0);
  else spr__out_discard(tmp);
  free(tmp);
  return rc;
}
