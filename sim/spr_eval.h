/* spr_eval.h - one point of a sweep: the metrics of every scheme under one
 * resolved configuration.
 *
 * An evaluator turns a resolved spr_config into one row per scheme
 * (enum spr_scheme): task or attention accuracy metrics, energy, cycles,
 * keep rate and bytes fetched, totalled over the whole workload.  The
 * sweep (sim/spr_sweep.h) calls the evaluator that spr_evaluator_for()
 * picks for the configuration, once per grid point, from several threads
 * at once: an evaluator must be reentrant, run single-threaded, keep no
 * state between calls and draw its random numbers from streams keyed by
 * the configuration's seed (core/spr_rng.h), so a point's rows depend on
 * its configuration alone.
 *
 * Three evaluators: "attention", the synthetic (or imported Q/K/V)
 * attention workload through spr_run (sim/spr_pipeline.h), and
 * "image-model" and "text-model", a model file of workload.source = model
 * (sim/spr_model_eval.h) reporting "top1" or "bpc".  Another workload adds an spr_evaluator with its own metric
 * names and a branch in spr_evaluator_for(); the sweep file, CSV and plots
 * take their columns from the evaluator.
 */
#ifndef SPR_EVAL_H
#define SPR_EVAL_H

#include <signal.h>
#include <stdint.h>

#include "spr_params.h"
#include "spr_progress.h"
#include "spr_result.h"

/* Most accuracy metrics one evaluator may report. */
#define SPR_EVAL_MAX_ACC 8

/* One scheme at one point, totalled over the workload. */
typedef struct {
  int ran;                      /* the scheme was simulated */
  double acc[SPR_EVAL_MAX_ACC]; /* accuracy metrics, in the evaluator's order */
  double energy_J;              /* total energy, J */
  double cycles;                /* total latency, cycles */
  double keep_rate;             /* kept (query, key) pairs / all pairs, mean */
  int64_t bytes_fetched;        /* bytes of K and V read from ReRAM, B */
} spr_eval_row;

/* Description of an accuracy metric (a column of the outputs). */
typedef struct {
  const char *name;    /* column name: "mass_retained", "top1" */
  const char *unit;    /* "1" when dimensionless */
  const char *doc;     /* one line: what it is and how it is totalled */
  int higher_better;   /* 1: larger is more accurate; 0: smaller is */
} spr_eval_metric;

typedef struct spr_evaluator spr_evaluator;
typedef struct spr_model_store spr_model_store; /* sim/spr_model_eval.h */
struct spr_evaluator {
  const char *name;     /* "attention" */
  const char *doc;      /* one line */
  int n_acc;            /* accuracy metrics, <= SPR_EVAL_MAX_ACC */
  spr_eval_metric acc[SPR_EVAL_MAX_ACC];
  int primary;          /* index of the headline metric (plots) */
  /* Evaluate resolved configuration *c on the calling thread.  Fills
   * rows[s] for every scheme s (ran = 0 for schemes the configuration
   * switched off; dense always runs).  Stops with SPR_ECANCELED once
   * *cancel (if not NULL) becomes nonzero.  prog (NULL: none) receives
   * the point's progress, one stage whose done/total is the share of the
   * point evaluated (the attention evaluator's head passes, a model's
   * items; spr_progress.h).  store (may be NULL): the model evaluators
   * take the inputs it holds from it instead of reading them
   * (spr_model_eval_from).  Returns 0 or an SPR_E* code with a message. */
  int (*point)(const spr_evaluator *ev, const spr_config *c, const spr_model_store *store,
               volatile sig_atomic_t *cancel, spr_progress *prog,
               spr_eval_row rows[SPR_N_SCHEMES]);
};

/* The evaluator of the workload of resolved configuration *c (never NULL):
 * with workload.source = model, spr_eval_text_model for a text model and
 * spr_eval_image_model otherwise (an unreadable model file included: its
 * error comes when the point runs); else spr_eval_attention. */
const spr_evaluator *spr_evaluator_for(const spr_config *c);

/* The synthetic-attention evaluator: spr_run over every layer with one
 * thread; metrics are means over heads of mass_retained, rel_fro,
 * top1_recall and cos_mean (spr_scheme_result); energy, cycles and bytes
 * are sums over heads (heads run one after another), keep_rate the mean
 * over heads -- the totals `sprintsim run` prints. */
extern const spr_evaluator spr_eval_attention;

/* The model evaluators (workload.source = model): spr_model_eval with one
 * thread on the model c->wl.model, its dense reference model
 * (spr_model_reference_path) and, for an image model, the test split of
 * c->wl.dataset, all read at each point (reentrant readers).  Items:
 * workload.images from first_image (image) or workload.windows from
 * first_window (text).  The image evaluator reports top1 (headline),
 * agreement with exact attention, top1_exact, top1_reference and loss_pp;
 * the text evaluator bpc (headline), bpc_exact, bpc_reference and
 * loss_pct (docs/models.md).  Exact attention and the reference have no
 * ledger and so no row: their metrics are columns of every row.  Energy,
 * cycles and bytes are totals over items, layers and heads, keep_rate the
 * mean over them: the figures `sprintsim run` of the point writes.
 * Errors: those of spr_model_eval (SPR_EIO, SPR_EHDF5, SPR_EINVAL,
 * SPR_ECONFIG, SPR_ENOMEM, SPR_ECANCELED), which the sweep prefixes with
 * the point. */
extern const spr_evaluator spr_eval_image_model;
extern const spr_evaluator spr_eval_text_model;

#endif
