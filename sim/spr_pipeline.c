/* spr_pipeline.c - layer-by-layer simulation (data flow in spr_pipeline.h). */
#include "config.h"
#include "spr_pipeline.h"
#include "spr_attend.h"
#include "spr_error.h"
#include "spr_nodal.h"
#include "spr_synth.h"
#include "spr_qkv.h"
#include "spr_sysmem.h"
#include "spr_trace.h"
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
  spr_synth_ws **tsyn;   /* threads: the synthetic workload's scratch */
  int B;                 /* rows per block (spr_run_block_rows): n holds
                            each head whole */
  spr_trace *trace;      /* masks in row chunks (blocked heads), or NULL */
  volatile sig_atomic_t *cancel; /* stop when nonzero, or NULL */
  spr_qkv *qkv;          /* source qkv: the open file, else NULL */
  int next_layer;
  double match_keep;     /* baselines.match = sprint: SPRINT's realised
                            keep rate of the current layer */
  spr_progress *prog;    /* head passes of spr_run_layer, or NULL */
};

int spr_run_qkv_id(const spr_run *r, char *content_id, size_t n, long long *size_bytes) {
  if (!r->qkv) return spr_error(SPR_EINVAL, "run: the workload is not read from a Q/K/V file");
  *size_bytes = spr_qkv_file_size(r->qkv);
  return spr_qkv_content_id(r->qkv, content_id, n);
}

void spr_run_free(spr_run *r) {
  if (!r) return;
  if (r->slot) for (int h = 0; h < r->H; h++) spr_attend_head_free(&r->slot[h]);
  if (r->tws) for (int t = 0; t < r->threads; t++) spr_attend_ws_free(r->tws[t]);
  if (r->tsyn) for (int t = 0; t < r->threads; t++) spr_synth_ws_free(r->tsyn[t]);
  free(r->slot);
  free(r->tws);
  free(r->tsyn);
  free(r->res);
  spr_qkv_close(r->qkv);
  free(r);
}

int spr_run_block_rows(const spr_config *c) {
  const int n = c->wl.seq_len, d = c->wl.head_dim > 0 ? c->wl.head_dim : 1;
  if (n < 1) return 1;
  if (c->block_rows > 0) return c->block_rows < n ? c->block_rows : n;
  if (n <= SPR_RUN_WHOLE_MAX) return n;
  const int whole = c->trace >= SPR_TRACE_FULL || (c->bl.match == SPR_MATCH_SPRINT && c->bl.sanger);
  if (whole && n <= SPR_RUN_HELD_MAX) return n;
  /* rows whose block scratch (about 24 bytes per pair of the block, plus
   * the analog score rows) stays near 256 MiB per thread, at most
   * SPR_RUN_BLOCK_ROWS */
  const double per_row = 24.0 * n + 4.0 * d;
  int b = (int)((256.0 * 1048576.0 / per_row) / 64) * 64;
  if (b < 64) b = 64;
  if (b > SPR_RUN_BLOCK_ROWS) b = SPR_RUN_BLOCK_ROWS;
  return b < n ? b : n;
}

double spr_run_mem_bytes(const spr_config *c, int threads) {
  const spr_workload_params *wl = &c->wl;
  if (threads > wl->n_heads) threads = wl->n_heads; /* as spr_run_alloc */
  const int n = wl->seq_len, d = wl->head_dim, B = spr_run_block_rows(c);
  const double nd = (double)n * d;
  /* every head of a layer: its inputs, codes and (held) n x n arrays */
  const double per_head = spr_attend_head_bytes(c, n, d, c->trace >= SPR_TRACE_FULL, B);
  /* every thread: its attention scratch (block x n matrices, programmed
   * arrays, scheme states) and the synthetic workload's */
  const double per_thread = spr_attend_ws_bytes(c, n, d, B) + (wl->source == SPR_SOURCE_QKV ? 0 : nd * 28 + n * 1100.0);
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
  const int B = spr_run_block_rows(c);
  if (B < wl->seq_len && B % 64)
    return spr_error(SPR_EINVAL, "run: run.block_rows = %d: a block below workload.seq_len = %d must "
                     "be a multiple of 64 (or 0, automatic)", c->block_rows, wl->seq_len);
  if (B < wl->seq_len && c->bl.match == SPR_MATCH_SPRINT && c->bl.sanger)
    return spr_error(SPR_EINVAL, "run: baselines.match = sprint searches Sanger's threshold over "
                     "the sorted probabilities of a whole head, which workload.seq_len = %d in "
                     "blocks of %d rows (run.block_rows) does not hold; set baselines.sanger = "
                     "false, or run.block_rows = %d if memory allows", wl->seq_len, B, wl->seq_len);
  if (B < wl->seq_len && c->trace >= SPR_TRACE_FULL)
    return spr_error(SPR_EINVAL, "run: run.trace = full records every head's %d x %d scores, but "
                     "workload.seq_len = %d runs in blocks of %d rows (run.block_rows) that hold "
                     "none; use run.trace = masks, or run.block_rows = %d if memory allows",
                     wl->seq_len, wl->seq_len, wl->seq_len, B, wl->seq_len);
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
        snprintf(of, sizeof of, " (%s of it the nodal IR-drop workspaces of %d threads for "
                 "%d x %d arrays: fewer threads, smaller arrays or crossbar.ir_drop = first_order)",
                 spr_mem_str(nodal).s, threads, c->xbar.rows, c->xbar.cols);
      char blk[160];
      snprintf(blk, sizeof blk, B < wl->seq_len ? ", or run.block_rows (now %d rows a block)"
                                                : ", or set run.block_rows below %d (rows a block)",
               B < wl->seq_len ? B : wl->seq_len);
      return spr_error(SPR_ENOMEM,
                       "run: %d heads of %d tokens need about %s of memory, more than 80%% "
                       "of the %s this process may use (%s)%s; lower workload.seq_len or "
                       "workload.heads%s",
                       wl->n_heads, wl->seq_len, spr_mem_str(need).s, spr_mem_str(have).s, src, of,
                       blk);
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
  r->B = B;
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
  r->tsyn = calloc((size_t)threads, sizeof *r->tsyn);
  if (!r->res || !r->slot || !r->tws || !r->tsyn) goto nomem;
  int rc;
  if ((rc = spr_attend_heads_alloc_rows(r->slot, r->H, c, r->n, r->d, c->trace >= SPR_TRACE_FULL,
                                         r->B))) {
    spr_run_free(r);
    return rc;
  }
  for (int t = 0; t < threads; t++)
    if ((rc = spr_attend_ws_alloc_rows(c, r->n, r->d, r->B, &r->tws[t])) ||
        (!r->qkv && (rc = spr_synth_ws_alloc(r->n, r->d, &r->tsyn[t])))) {
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

void spr_run_set_trace(spr_run *r, spr_trace *t) { r->trace = t; }

int spr_run_blocked(const spr_run *r) { return r && r->B < r->n; }

const spr_head_result *spr_run_result(const spr_run *r, int layer, int head) {
  if (!r || layer < 0 || layer >= r->L || head < 0 || head >= r->H) return NULL;
  return &r->res[(size_t)layer * r->H + head];
}

const spr_head_result *spr_run_results(const spr_run *r) { return r ? r->res : NULL; }

void spr_run_stages(const spr_run *r, double *out) {
  for (int s = 0; s < SPR_STAGE_N; s++) out[s] = 0;
  for (int t = 0; r && t < r->threads; t++) spr_attend_ws_stages(r->tws[t], out);
}

/* Pass 1: workload, quantization, ideal scores. */
static int pass_ideal(spr_run *r, int layer, int h, spr_attend_ws *w) {
  spr_attend_head *s = &r->slot[h];
  int rc;
  /* source qkv: Q, K, V were read by spr_run_layer */
  const double t0 = spr_attend_cpu_seconds();
  if (!r->qkv && (rc = spr_synth_head_ws(&r->c.wl, r->c.seed, layer, h, s->Q, s->K, s->V,
                                          r->tsyn[omp_get_thread_num()])))
    return rc;
  spr_attend_ws_stage_add(w, SPR_STAGE_WORKLOAD, spr_attend_cpu_seconds() - t0);
  return spr_attend_ideal(&r->c, layer, h, s, w, &r->res[(size_t)layer * r->H + h]);
}

/* The arrays of a head's result at the trace level (held heads; a
 * blocked head's masks went to the trace in row chunks). */
static void trace_arrays(spr_run *r, spr_attend_head *s, spr_head_result *res) {
  const spr_config *c = &r->c;
  if (!s->held) return;
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
}

/* Pass 3 alone (baselines.match = sprint: the layer's SPRINT keep rate
 * before any baseline): program, decide, compare, mass (trial 0). */
static int pass_analog(spr_run *r, int layer, int h, spr_attend_ws *w) {
  spr_attend_head *s = &r->slot[h];
  spr_head_result *res = &r->res[(size_t)layer * r->H + h];
  int rc = spr_attend_analog(&r->c, layer, h, 0, s, w, res);
  if (!rc) trace_arrays(r, s, res);
  return rc;
}

/* Passes 3 and 4 in one pass over the head's rows: the analog decisions
 * (unless pass_analog ran), the digital path and the ledger of SPRINT and
 * every enabled baseline, against dense exact attention of the float Q,
 * K, V, the score matrices and the reference shared. */
static int pass_head(spr_run *r, int layer, int h, spr_attend_ws *w) {
  const spr_config *c = &r->c;
  spr_attend_head *s = &r->slot[h];
  spr_head_result *res = &r->res[(size_t)layer * r->H + h];
  const int match = c->bl.match == SPR_MATCH_SPRINT;
  /* a held head's masks of pass_analog are kept; a blocked head decides
   * again (the same streams, the same decisions) */
  const int analog_done = match && s->held;
  int rc = spr_attend_head_begin(c, layer, h, 0, s, w, res, match ? r->match_keep : -1.0,
                                 analog_done);
  const int chunks = r->trace && !s->held && c->trace >= SPR_TRACE_MASKS;
  spr_attend_rows rows;
  while (!rc && (rc = spr_attend_head_step(c, s, w, res, &rows)) == 1) {
    rc = 0;
    if (chunks) {
      /* HDF5 is not thread-safe: one writer at a time; the file's layout
       * was fixed by spr_trace_mask_rows_begin */
#pragma omp critical(spr_run_trace)
      rc = spr_trace_write_mask_rows(r->trace, layer, h, rows.i0, rows.m, rows.mask_analog,
                                     rows.mask_ideal);
    }
  }
  if (!rc) rc = spr_attend_head_end(c, s, w, res);
  if (!rc && !analog_done) trace_arrays(r, s, res);
  return rc;
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

/* Head passes of one layer: ideal, (count or analog scores,) (analog with
 * baselines.match = sprint,) then pass_head (the row blocks: analog unless
 * done, digital, ledger). */
static int passes_per_layer(const spr_run *r) {
  return 2 + (r->c.thr.mode == SPR_THR_KEEP_RATE || r->c.thr.mode == SPR_THR_ANALOG_KEEP_RATE) +
         (r->c.bl.match == SPR_MATCH_SPRINT);
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
  if (r->c.bl.match == SPR_MATCH_SPRINT) {
    /* SPRINT's realised keep rate of the layer: kept pairs of its heads
     * over their pairs (the baselines' target) */
    if ((rc = for_heads_counted(r, layer, pass_analog, pg))) return rc;
    int64_t kept = 0;
    for (int h = 0; h < r->H; h++) kept += res[h].n_kept;
    r->match_keep = (double)kept / ((double)spr_pair_count(r->n, r->c.wl.causal) * r->H);
  }
  if (r->trace && r->B < r->n && r->c.trace >= SPR_TRACE_MASKS &&
      (rc = spr_trace_mask_rows_begin(r->trace, layer)))
    return rc;
  if ((rc = for_heads_counted(r, layer, pass_head, pg))) return rc;
  r->next_layer = layer + 1;
  return 0;
}
