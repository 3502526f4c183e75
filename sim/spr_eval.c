/* spr_eval.c - evaluators of one sweep point (spr_eval.h). */
#include "config.h"
#include "spr_eval.h"
#include "spr_error.h"
#include "spr_pipeline.h"
#include "spr_vit_eval.h"

#include <math.h>
#include <string.h>

enum { ACC_MASS, ACC_FRO, ACC_TOP1, ACC_COS, N_ATT_ACC };

static int attention_point(const spr_evaluator *ev, const spr_config *c,
                           volatile sig_atomic_t *cancel, spr_eval_row rows[SPR_N_SCHEMES]) {
  memset(rows, 0, SPR_N_SCHEMES * sizeof *rows);
  spr_run *run = NULL;
  int rc = spr_run_alloc(c, 1, &run);
  if (rc) return rc;
  spr_run_set_cancel(run, cancel);
  for (int l = 0; l < c->wl.n_layers && !rc; l++) rc = spr_run_layer(run, l);
  if (!rc) {
    const int LH = c->wl.n_layers * c->wl.n_heads;
    const spr_head_result *res = spr_run_results(run);
    for (int s = 0; s < SPR_N_SCHEMES; s++) {
      spr_eval_row *r = &rows[s];
      if (!res[0].scheme[s].ran) continue;
      r->ran = 1;
      /* the same sums, in the same order, as the table of `sprintsim run` */
      for (int k = 0; k < LH; k++) {
        const spr_scheme_result *x = &res[k].scheme[s];
        r->energy_J += x->energy_total_J;
        r->cycles += x->cycles_total;
        r->keep_rate += x->keep_rate / LH;
        r->bytes_fetched += x->bytes_fetched;
        r->acc[ACC_MASS] += x->mass_retained / LH;
        r->acc[ACC_FRO] += x->rel_fro / LH;
        r->acc[ACC_TOP1] += x->top1_recall / LH;
        r->acc[ACC_COS] += x->cos_mean / LH;
      }
    }
  }
  spr_run_free(run);
  return rc;
}

const spr_evaluator spr_eval_attention = {
    "attention",
    "synthetic attention (workload presets) through crossbar scoring, comparators, digital path and ledger",
    N_ATT_ACC,
    {
        {"mass_retained", "1", "dense softmax mass on the survivors, mean over queries and heads", 1},
        {"rel_fro", "1", "relative Frobenius error of the attention output against dense exact attention, mean over heads", 0},
        {"top1_recall", "1", "recall of each query's top-1 key, mean over queries and heads", 1},
        {"cos_mean", "1", "cosine of each query's output with dense exact attention, mean over queries and heads", 1},
    },
    ACC_MASS,
    attention_point,
};

/* --- vit ------------------------------------------------------------------ */

enum { VIT_TOP1, VIT_AGREE, VIT_TOP1_EXACT, VIT_LOSS_PP, N_VIT_ACC };

/* The point's rows from one evaluation (spr_vit_eval_run with one thread,
 * so a point is the `sprintsim run` of its configuration).  Exact float
 * attention has no ledger and no row: its top-1 on the same images is a
 * column of every row (top1_exact), and loss_pp = 100 (top1_exact - top1). */
static int vit_point(const spr_evaluator *ev, const spr_config *c, volatile sig_atomic_t *cancel,
                     spr_eval_row rows[SPR_N_SCHEMES]) {
  memset(rows, 0, SPR_N_SCHEMES * sizeof *rows);
  spr_vit m;
  spr_fmnist data;
  /* both readers are reentrant: spr_vit_load holds the process-wide HDF5
   * lock (spr_h5quiet.h) for all its HDF5 calls, the IDX reader uses only
   * its own zlib stream */
  int rc = spr_vit_load(c->wl.model, &m);
  if (rc) return rc;
  if ((rc = spr_fmnist_load(c->wl.dataset, "t10k", &data))) {
    spr_vit_free(&m);
    return rc;
  }
  spr_vit_eval_result r;
  rc = spr_vit_eval_run(c, &m, c->wl.model, &data, 1, cancel, &r);
  spr_fmnist_free(&data);
  spr_vit_free(&m);
  if (rc) return rc;
  const double exact = r.scheme[SPR_VIT_EXACT].accuracy;
  int64_t exact_ok = 0;
  for (int i = 0; i < r.n_images; i++) exact_ok += r.pred[SPR_VIT_EXACT][i] == r.labels[i];
  for (int s = 0; s < SPR_N_SCHEMES; s++) {
    const spr_vit_metrics *x = &r.scheme[s];
    spr_eval_row *w = &rows[s];
    if (!x->ran) continue;
    w->ran = 1;
    w->acc[VIT_TOP1] = x->accuracy;
    w->acc[VIT_AGREE] = x->agreement;
    w->acc[VIT_TOP1_EXACT] = exact;
    /* from the counts, so that equal top-1 gives exactly 0 */
    int64_t ok = 0;
    for (int i = 0; i < r.n_images; i++) ok += r.pred[s][i] == r.labels[i];
    w->acc[VIT_LOSS_PP] = 100.0 * (double)(exact_ok - ok) / r.n_images;
    w->energy_J = x->energy_J;
    w->cycles = x->cycles;
    w->keep_rate = x->keep_rate;
    for (int i = 0; i < r.n_images; i++) w->bytes_fetched += r.bytes_fetched[s][i];
  }
  spr_vit_eval_result_free(&r);
  return 0;
}

const spr_evaluator spr_eval_vit = {
    "vit",
    "the ViT of workload.model on workload.images Fashion-MNIST test images, every head under each scheme",
    N_VIT_ACC,
    {
        {"top1", "1", "top-1 accuracy against the labels over the evaluated images", 1},
        {"agreement", "1", "share of images predicted as with exact float attention", 1},
        {"top1_exact", "1", "top-1 of exact float attention on the same images (the reference; no energy)", 1},
        {"loss_pp", "pp", "top1_exact - top1 in percentage points (negative: better than exact)", 0},
    },
    VIT_TOP1,
    vit_point,
};

const spr_evaluator *spr_evaluator_for(const spr_config *c) {
  return c->wl.source == SPR_SOURCE_VIT ? &spr_eval_vit : &spr_eval_attention;
}
