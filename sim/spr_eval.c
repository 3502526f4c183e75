/* spr_eval.c - evaluators of one sweep point (spr_eval.h). */
#include "config.h"
#include "spr_eval.h"
#include "spr_error.h"
#include "spr_pipeline.h"
#include "spr_model_eval.h"

#include <math.h>
#include <string.h>

enum { ACC_MASS, ACC_FRO, ACC_TOP1, ACC_COS, N_ATT_ACC };

static int attention_point(const spr_evaluator *ev, const spr_config *c,
                           const spr_model_store *store, volatile sig_atomic_t *cancel,
                           spr_progress *prog,
                           spr_eval_row rows[SPR_N_SCHEMES]) {
  memset(rows, 0, SPR_N_SCHEMES * sizeof *rows);
  spr_run *run = NULL;
  int rc = spr_run_alloc(c, 1, &run);
  if (rc) return rc;
  spr_run_set_cancel(run, cancel);
  spr_run_set_progress(run, prog);
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

/* --- models ----------------------------------------------------------------- */

/* Columns of the model evaluators.  An image model reports top-1, a text
 * model bits per character; both report the metric of exact attention
 * with this model's weights and of the dense reference model on the same
 * items (neither has a ledger, so neither has a row of its own) and the
 * loss against the reference (against exact when there is none). */
enum { IMG_TOP1, IMG_AGREE, IMG_TOP1_EXACT, IMG_TOP1_REF, IMG_LOSS_PP, N_IMG_ACC };
enum { TXT_BPC, TXT_BPC_EXACT, TXT_BPC_REF, TXT_LOSS_PCT, N_TXT_ACC };

/* The point's rows from one evaluation (spr_model_eval with one thread,
 * so a point is the `sprintsim run` of its configuration). */
static int model_point(const spr_evaluator *ev, const spr_config *c,
                       const spr_model_store *store, volatile sig_atomic_t *cancel,
                       spr_progress *prog,
                       spr_eval_row rows[SPR_N_SCHEMES]) {
  memset(rows, 0, SPR_N_SCHEMES * sizeof *rows);
  /* the inputs from the sweep's store; without one, read here (the
   * readers are reentrant: spr_model_load reads through its own isolated
   * reader, a child process per handle, spr_h5r.h; the IDX reader uses
   * only its own descriptor and zlib stream) */
  spr_model_eval_result r;
  int rc = spr_model_eval_from(store, c, 1, cancel, prog, &r);
  if (rc) return rc;
  const int text = r.input == SPR_MODEL_TEXT;
  if (text != (ev == &spr_eval_text_model)) {
    spr_model_eval_result_free(&r);
    return spr_error(SPR_EINVAL, "%s: a %s model, but the sweep's evaluator is '%s'", c->wl.model,
                     spr_model_input_name(r.input), ev->name);
  }
  const double exact = r.scheme[SPR_MEVAL_EXACT].metric;
  const int has_ref = r.scheme[SPR_MEVAL_REFERENCE].ran;
  const double ref = has_ref ? r.scheme[SPR_MEVAL_REFERENCE].metric : NAN;
  for (int s = 0; s < SPR_N_SCHEMES; s++) {
    const spr_model_metrics *x = &r.scheme[s];
    spr_eval_row *w = &rows[s];
    if (!x->ran) continue;
    w->ran = 1;
    if (text) {
      w->acc[TXT_BPC] = x->metric;
      w->acc[TXT_BPC_EXACT] = exact;
      w->acc[TXT_BPC_REF] = ref;
      w->acc[TXT_LOSS_PCT] = x->loss;
    } else {
      w->acc[IMG_TOP1] = x->metric;
      w->acc[IMG_AGREE] = x->agreement;
      w->acc[IMG_TOP1_EXACT] = exact;
      w->acc[IMG_TOP1_REF] = ref;
      w->acc[IMG_LOSS_PP] = x->loss;
    }
    w->energy_J = x->energy_J;
    w->cycles = x->cycles;
    w->keep_rate = x->keep_rate;
    for (int i = 0; i < r.n_items; i++) w->bytes_fetched += r.bytes_fetched[s][i];
  }
  spr_model_eval_result_free(&r);
  return 0;
}

const spr_evaluator spr_eval_image_model = {
    "image-model",
    "the image model of workload.model (the ViT) on workload.images Fashion-MNIST test images, every head under each scheme",
    N_IMG_ACC,
    {
        {"top1", "1", "top-1 accuracy against the labels over the evaluated images", 1},
        {"agreement", "1", "share of images predicted as with exact float attention", 1},
        {"top1_exact", "1", "top-1 of exact float attention with this model's weights on the same images (no energy)", 1},
        {"top1_reference", "1", "top-1 of the dense reference model with exact attention on the same images (NaN without one)", 1},
        {"loss_pp", "pp", "top1_reference - top1 in percentage points (top1_exact - top1 without a reference; negative: better)", 0},
    },
    IMG_TOP1,
    model_point,
};

const spr_evaluator spr_eval_text_model = {
    "text-model",
    "the text model of workload.model on workload.windows windows of its evaluation split, every head under each scheme",
    N_TXT_ACC,
    {
        {"bpc", "bit", "bits per character over the evaluated windows' targets", 0},
        {"bpc_exact", "bit", "bits per character of exact float attention with this model's weights (no energy)", 0},
        {"bpc_reference", "bit", "bits per character of the dense reference model with exact attention (NaN without one)", 0},
        {"loss_pct", "%", "100 (bpc - bpc_reference) / bpc_reference (against bpc_exact without a reference; negative: better)", 0},
    },
    TXT_BPC,
    model_point,
};

const spr_evaluator *spr_evaluator_for(const spr_config *c) {
  if (c->wl.source != SPR_SOURCE_MODEL && c->wl.source != SPR_SOURCE_VIT)
    return &spr_eval_attention;
  /* an unreadable model is reported when the point runs */
  return spr_model_input_of(c->wl.model) == SPR_MODEL_TEXT ? &spr_eval_text_model
                                                           : &spr_eval_image_model;
}
