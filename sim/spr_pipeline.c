/* spr_pipeline.c - layer-by-layer simulation (data flow in spr_pipeline.h). */
#include "config.h"
#include "spr_pipeline.h"
#include "spr_attend.h"
#include "spr_error.h"
#include "spr_nodal.h"
#include "spr_synth.h"
#include "spr_qkv.h"
#include "spr_sysmem.h"
#include "spr_wear.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct spr_run {
  spr_config c;
  int threads;
  int L, H, n, d;
  spr_head_result *res; /* L x H */
  spr_attend_head *slot; /* H */
  spr_attend_ws **tws;   /* threads */
  volatile sig_atomic_t *cancel; /* stop when nonzero, or NULL */
  spr_qkv *qkv;          /* source qkv: the open file, else NULL */
  int next_layer;
  double match_keep;     /* baselines.match = sprint: SPRINT's realised
                            keep rate of the current layer */
  spr_progress *prog;    /* head passes of spr_run_layer, or NULL */
};

void spr_run_free(spr_run *r) {
  if (!r) return;
  if (r->slot) for (int h = 0; h < r->H; h++) spr_attend_head_free(&r->slot[h]);
  if (r->tws) for (int t = 0; t < r->threads; t++) spr_attend_ws_free(r->tws[t]);
  free(r->slot);
  free(r->tws);
  free(r->res);
  spr_qkv_close(r->qkv);
  free(r);
}

double spr_run_mem_bytes(const spr_config *c, int threads) {
  const spr_workload_params *wl = &c->wl;
  if (threads > wl->n_heads) threads = wl->n_heads; /* as spr_run_alloc */
  const double n = wl->seq_len, d = wl->head_dim, nn = n * n, nd = n * d;
  /* the analog scores: recorded at trace level full, drawn once per pair
   * in mode analog_keep_rate */
  const double per_head = nd * 15 + nn * 4 + 2 * n * ((n + 7) / 8) +
                          (c->trace >= SPR_TRACE_FULL || c->thr.mode == SPR_THR_ANALOG_KEEP_RATE
                               ? nn * 4 : 0);
  const double per_thread = nn * 4 + nd * 64 + 24.0 * c->xbar.rows * c->xbar.cols + 64 * n * 16 +
                            nn * 4 /* P */ + nn * 13 /* baselines */ + n * 64;
  /* the exact IR-drop solver holds one workspace per thread */
  const double nodal = c->xbar.ir_drop == SPR_IR_NODAL
                           ? spr_nodal_ws_bytes(c->xbar.rows, c->xbar.cols) * threads
                           : 0;
  return per_head * wl->n_heads + per_thread * threads + nodal;
}

int spr_run_alloc(const spr_config *c, int threads, spr_run **out) {
  *out = NULL;
  if (threads < 1 || threads > 1024)
    return spr_error(SPR_EINVAL, "run: thread count %d outside [1, 1024]", threads);
  const spr_workload_params *wl = &c->wl;
  if (wl->seq_len < 2 || wl->n_layers < 1 || wl->n_heads < 1 || wl->head_dim < 1)
    return spr_error(SPR_EINVAL, "run: unresolved workload (seq_len %d, layers %d, heads %d, head_dim %d)",
                     wl->seq_len, wl->n_layers, wl->n_heads, wl->head_dim);
  {
    /* the wear parameters before the run, not after it: the scoring
     * arrays must hold one head's 2 N d cells (core/spr_wear.h) */
    const double hc = 2.0 * wl->seq_len * wl->head_dim;
    spr_wear_result wr;
    int rc = spr_wear_estimate(&c->wear, hc * wl->n_layers * wl->n_heads, hc, 1, 1, &wr);
    if (rc) return spr_error_prefix(rc, "run");
  }
  {
    int rc = spr_attend_check(c, wl->seq_len, wl->head_dim);
    if (rc) return spr_error_prefix(rc, "run");
  }
  /* more threads than heads would only hold idle workspaces */
  if (threads > wl->n_heads) threads = wl->n_heads;
  {
    /* refuse up front what cannot fit: the kernel overcommits, so large
     * mallocs succeed and the run would die later of the OOM killer */
    const double need = spr_run_mem_bytes(c, threads);
    double have = 0;
    char src[512];
    if (spr_sysmem_limit(NULL, NULL, &have, src, sizeof src)) have = 0; /* unknown: no check */
    if (have > 0 && need > 0.8 * have) {
      const double nodal = c->xbar.ir_drop == SPR_IR_NODAL
                               ? spr_nodal_ws_bytes(c->xbar.rows, c->xbar.cols) * threads
                               : 0;
      char of[256] = "";
      if (nodal > 0)
        snprintf(of, sizeof of, " (%.1f GiB of it the nodal IR-drop workspaces of %d threads for "
                 "%d x %d arrays: fewer threads, smaller arrays or crossbar.ir_drop = first_order)",
                 nodal / 1073741824.0, threads, c->xbar.rows, c->xbar.cols);
      return spr_error(SPR_ENOMEM,
                       "run: %d heads of %d tokens need about %.1f GiB of memory, more than 80%% "
                       "of the %.1f GiB this process may use (%s)%s; lower workload.seq_len or "
                       "workload.heads",
                       wl->n_heads, wl->seq_len, need / 1073741824.0, have / 1073741824.0, src, of);
    }
  }
  spr_run *r = calloc(1, sizeof *r);
  if (!r) return spr_error(SPR_ENOMEM, "run: out of memory");
  r->c = *c;
  r->threads = threads;
  r->L = wl->n_layers;
  r->H = wl->n_heads;
  r->n = wl->seq_len;
  r->d = wl->head_dim;
  if (wl->source == SPR_SOURCE_QKV) {
    /* the sizes must be the file's (spr_qkv_resolve), never adapted here */
    int rc = spr_qkv_open(wl->qkv_file, &r->qkv), ntok = 0;
    const spr_qkv_info *in = rc ? NULL : spr_qkv_get_info(r->qkv);
    if (!rc) rc = spr_qkv_item_tokens(r->qkv, wl->qkv_item, &ntok);
    if (!rc && (ntok != r->n || in->head_dim != r->d || in->n_layers < r->L || in->n_heads < r->H))
      rc = spr_error(SPR_EINVAL,
                     "run: workload (N %d, d %d, %d layers, %d heads) does not match item %d of %s "
                     "(N %d, d %d, %d layers, %d heads); resolve the configuration with spr_qkv_resolve",
                     r->n, r->d, r->L, r->H, wl->qkv_item, wl->qkv_file, ntok, in->head_dim,
                     in->n_layers, in->n_heads);
    if (rc) {
      spr_run_free(r);
      return rc;
    }
  }
  r->res = calloc((size_t)r->L * r->H, sizeof *r->res);
  r->slot = calloc((size_t)r->H, sizeof *r->slot);
  r->tws = calloc((size_t)threads, sizeof *r->tws);
  if (!r->res || !r->slot || !r->tws) goto nomem;
  int rc;
  for (int h = 0; h < r->H; h++)
    if ((rc = spr_attend_head_alloc(&r->slot[h], c, r->n, r->d, c->trace >= SPR_TRACE_FULL))) {
      spr_run_free(r);
      return rc;
    }
  for (int t = 0; t < threads; t++)
    if ((rc = spr_attend_ws_alloc(c, r->n, r->d, &r->tws[t]))) {
      spr_run_free(r);
      return rc;
    }
  openblas_set_num_threads(1);
  *out = r;
  return 0;
nomem:
  spr_run_free(r);
  return spr_error(SPR_ENOMEM, "run: out of memory for %d heads of %d tokens", c->wl.n_heads,
                   c->wl.seq_len);
}

void spr_run_set_cancel(spr_run *r, volatile sig_atomic_t *flag) { r->cancel = flag; }

const spr_head_result *spr_run_result(const spr_run *r, int layer, int head) {
  if (!r || layer < 0 || layer >= r->L || head < 0 || head >= r->H) return NULL;
  return &r->res[(size_t)layer * r->H + head];
}

const spr_head_result *spr_run_results(const spr_run *r) { return r ? r->res : NULL; }

/* Pass 1: workload, quantization, ideal scores. */
static int pass_ideal(spr_run *r, int layer, int h, spr_attend_ws *w) {
  spr_attend_head *s = &r->slot[h];
  int rc;
  /* source qkv: Q, K, V were read by spr_run_layer */
  if (!r->qkv && (rc = spr_synth_head(&r->c.wl, r->c.seed, layer, h, s->Q, s->K, s->V))) return rc;
  return spr_attend_ideal(&r->c, layer, h, s, w, &r->res[(size_t)layer * r->H + h]);
}

/* Pass 3: program, decide, compare, mass (trial 0). */
static int pass_analog(spr_run *r, int layer, int h, spr_attend_ws *w) {
  const spr_config *c = &r->c;
  spr_attend_head *s = &r->slot[h];
  spr_head_result *res = &r->res[(size_t)layer * r->H + h];
  int rc;
  if ((rc = spr_attend_analog(c, layer, h, 0, s, w, res))) return rc;
  if (c->trace >= SPR_TRACE_MASKS) {
    res->mask_analog = s->mask_a;
    res->mask_ideal = s->mask_i;
  }
  if (c->trace >= SPR_TRACE_FULL) {
    res->q_int = s->q;
    res->k_int = s->k;
    res->k_msb = s->kmsb;
    res->ideal_scores = s->ideal;
    res->analog_scores = s->scores;
  }
  return 0;
}

/* Pass 4: the digital path and the ledger for SPRINT and every enabled
 * baseline, against dense exact attention of the float Q, K, V. */
static int pass_digital(spr_run *r, int layer, int h, spr_attend_ws *w) {
  const spr_config *c = &r->c;
  spr_attend_head *s = &r->slot[h];
  spr_head_result *res = &r->res[(size_t)layer * r->H + h];
  int rc;
  if ((rc = spr_attend_digital(c, s, w))) return rc;
  memset(res->scheme, 0, sizeof res->scheme);
  const double target = c->bl.match == SPR_MATCH_SPRINT ? r->match_keep : -1.0;
  for (int sc = 0; sc < SPR_N_SCHEMES; sc++) {
    if (!spr_attend_scheme_on(c, sc)) continue;
    if ((rc = spr_attend_scheme_at(c, sc, s, w, target, &res->scheme[sc], NULL))) return rc;
  }
  return 0;
}

/* Run fn over the heads of `layer` on the run's threads; the first error
 * (lowest head) is re-raised in the caller's thread. */
typedef int (*head_fn)(spr_run *, int, int, spr_attend_ws *);
static int for_heads_counted(spr_run *r, int layer, head_fn fn, spr_progress *prog) {
  int *rcs = calloc((size_t)r->H, sizeof *rcs);
  char (*msgs)[512] = calloc((size_t)r->H, sizeof *msgs);
  if (!rcs || !msgs) {
    free(rcs);
    free(msgs);
    return spr_error(SPR_ENOMEM, "run: out of memory");
  }
#pragma omp parallel for num_threads(r->threads) schedule(dynamic, 1)
  for (int h = 0; h < r->H; h++) {
    spr_attend_ws *w = r->tws[omp_get_thread_num()];
    int rc = r->cancel && *r->cancel ? spr_error(SPR_ECANCELED, "interrupted") : fn(r, layer, h, w);
    if (rc) {
      rcs[h] = rc;
      snprintf(msgs[h], sizeof msgs[h], "%s", spr_errmsg());
    } else {
      spr_progress_add(prog, 1);
    }
  }
  int rc = 0;
  for (int h = 0; h < r->H && !rc; h++)
    if (rcs[h]) rc = spr_error(rcs[h], "layer %d head %d: %s", layer, h, msgs[h]);
  free(rcs);
  free(msgs);
  return rc;
}

/* for_heads_counted without counting (spr_run_check's passes). */
static int for_heads(spr_run *r, int layer, head_fn fn) { return for_heads_counted(r, layer, fn, NULL); }

/* Head passes of one layer: ideal, (count,) analog, digital. */
static int passes_per_layer(const spr_run *r) {
  return r->c.thr.mode == SPR_THR_KEEP_RATE || r->c.thr.mode == SPR_THR_ANALOG_KEEP_RATE ? 4 : 3;
}

void spr_run_set_progress(spr_run *r, spr_progress *p) {
  r->prog = p;
  spr_progress_begin(p, "head passes", (long long)r->L * r->H * passes_per_layer(r));
}

/* spr_run_check: quantization (pass_ideal), then the arrays programmed. */
static int pass_program(spr_run *r, int layer, int h, spr_attend_ws *w) {
  return spr_attend_program(&r->c, layer, h, 0, &r->slot[h], w);
}

int spr_run_check(spr_run *r) {
  const spr_xbar_params *x = &r->c.xbar;
  if (x->ir_drop != SPR_IR_FIRST_ORDER || !(x->ir_alpha_wl * x->r_wl_ohm > 0 || x->ir_alpha_bl * x->r_bl_ohm > 0))
    return 0; /* nothing in the programming depends on the data */
  for (int layer = 0; layer < r->L; layer++) {
    int rc;
    for (int h = 0; r->qkv && h < r->H; h++) {
      if (r->cancel && *r->cancel) return spr_error(SPR_ECANCELED, "interrupted");
      spr_attend_head *s = &r->slot[h];
      if ((rc = spr_qkv_read_head(r->qkv, layer, h, r->c.wl.qkv_item, s->Q, s->K, s->V)))
        return spr_error_prefix(rc, "layer %d head %d", layer, h);
    }
    if ((rc = for_heads(r, layer, pass_ideal)) || (rc = for_heads(r, layer, pass_program))) return rc;
  }
  /* the results pass_ideal began are the run's to fill */
  memset(r->res, 0, (size_t)r->L * r->H * sizeof *r->res);
  return 0;
}

static int pass_count(spr_run *r, int layer, int h, spr_attend_ws *w) {
  return spr_attend_count(&r->c, &r->slot[h], &r->res[(size_t)layer * r->H + h]);
}

/* Mode analog_keep_rate: program, draw the threshold-independent analog
 * scores and count them per code (trial 0). */
static int pass_analog_scores(spr_run *r, int layer, int h, spr_attend_ws *w) {
  return spr_attend_analog_scores(&r->c, layer, h, 0, &r->slot[h], w,
                                  &r->res[(size_t)layer * r->H + h]);
}

int spr_run_layer(spr_run *r, int layer) {
  if (layer < 0 || layer >= r->L)
    return spr_error(SPR_EINVAL, "run: layer %d outside [0, %d)", layer, r->L);
  /* the previous layer's arrays are about to be overwritten */
  for (size_t k = 0; k < (size_t)r->L * r->H; k++) {
    spr_head_result *x = &r->res[k];
    x->mask_analog = x->mask_ideal = NULL;
    x->q_int = x->k_int = x->k_msb = NULL;
    x->ideal_scores = NULL;
    x->analog_scores = NULL;
  }
  int rc;
  /* source qkv: read the layer's heads here, in one thread, one layer at a
   * time, never the whole file */
  for (int h = 0; r->qkv && h < r->H; h++) {
    if (r->cancel && *r->cancel) return spr_error(SPR_ECANCELED, "interrupted");
    spr_attend_head *s = &r->slot[h];
    if ((rc = spr_qkv_read_head(r->qkv, layer, h, r->c.wl.qkv_item, s->Q, s->K, s->V)))
      return spr_error_prefix(rc, "layer %d head %d", layer, h);
  }
  spr_progress *pg = r->prog;
  if ((rc = for_heads_counted(r, layer, pass_ideal, pg))) return rc;
  spr_head_result *res = &r->res[(size_t)layer * r->H];
  spr_attend_range(&r->c, r->slot, r->H, res);
  if (r->c.thr.mode == SPR_THR_KEEP_RATE && (rc = for_heads_counted(r, layer, pass_count, pg)))
    return rc;
  if (r->c.thr.mode == SPR_THR_ANALOG_KEEP_RATE &&
      (rc = for_heads_counted(r, layer, pass_analog_scores, pg)))
    return rc;
  if ((rc = spr_attend_thresholds(&r->c, layer, r->slot, r->H, 0.0, r->tws[0], res, NULL)))
    return rc;
  if ((rc = for_heads_counted(r, layer, pass_analog, pg))) return rc;
  /* SPRINT's realised keep rate of the layer: kept pairs of its heads over
   * their pairs (the baselines' target with baselines.match = sprint) */
  int64_t kept = 0;
  for (int h = 0; h < r->H; h++) kept += res[h].n_kept;
  r->match_keep = (double)kept / ((double)spr_pair_count(r->n, r->c.wl.causal) * r->H);
  if ((rc = for_heads_counted(r, layer, pass_digital, pg))) return rc;
  r->next_layer = layer + 1;
  return 0;
}
