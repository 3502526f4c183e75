/* spr_eval.c - evaluators of one sweep point (spr_eval.h). */
#include "config.h"
#include "spr_eval.h"
#include "spr_error.h"
#include "spr_pipeline.h"

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

const spr_evaluator *spr_evaluator_for(const spr_config *c) {
  (void)c; /* one workload kind today; a ViT classifier would branch here */
  return &spr_eval_attention;
}
