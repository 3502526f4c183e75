/* spr_model_eval.h - a model of docs/models.md (workloads/spr_model.h) on
 * its evaluation items with each attention head computed under a scheme
 * (sim/spr_attend.h): exact float attention, SPRINT (quantized crossbar
 * scoring with every enabled non-ideality, comparators, digital recompute
 * over survivors), dense and the baselines of [baselines]; and the dense
 * reference model (the same task trained without pruning) with exact
 * float attention.  Each scheme runs its own forward pass, so a scheme's
 * pruning in layer l changes the inputs of layer l+1.
 *
 * Items: an image model reads Fashion-MNIST test images first_image ..
 * first_image + images - 1 of workload.dataset (metric: top-1); a text
 * model reads windows first_window .. first_window + windows - 1 of the
 * evaluation split stored in the model file (window w: inputs ids[w N ..
 * w N + N - 1], targets the next ids; metric: bits per character, the
 * nats of every target over windows x N targets, / ln 2).
 *
 * Random streams are keyed by (seed, layer, head, trial = item index,
 * stream); items run in parallel (OpenMP) and results are summed in item
 * order, so every figure is bit-identical for any thread count.
 */
#ifndef SPR_MODEL_EVAL_H
#define SPR_MODEL_EVAL_H

#include <signal.h>
#include <stdint.h>

#include "spr_fmnist.h"
#include "spr_model.h"
#include "spr_params.h"
#include "spr_progress.h"
#include "spr_result.h"

/* Rows of a model evaluation: the ledger's schemes (enum spr_scheme), then
 * exact float attention with this model's weights and the dense reference
 * model with exact float attention; neither of the two is priced. */
#define SPR_MEVAL_EXACT SPR_N_SCHEMES
#define SPR_MEVAL_REFERENCE (SPR_N_SCHEMES + 1)
#define SPR_MEVAL_N_SCHEMES (SPR_N_SCHEMES + 2)

/* "exact", "reference" or spr_scheme_name(s). */
const char *spr_model_scheme_name(int s);

/* Path of the reference model of configuration c for the model at
 * model_path (read as m) into buf[n]: workload.reference_model when set
 * ("none": no reference, buf = ""), else m's attribute 'reference'
 * relative to model_path's folder (or "" when the model names none).
 * Returns 0 or SPR_EINVAL (the path does not fit). */
int spr_model_reference_path(const spr_config *c, const char *model_path, const spr_model *m,
                             char *buf, size_t n);

/* *out = *c with the workload shape of model m (seq_len = tokens, layers =
 * depth, heads, head_dim, causal).  Errors, naming the model file
 * model_path: SPR_ECONFIG when threshold.values (mode direct) does not have
 * 1, depth, or (per_head) depth x heads values, or when threshold.mode is
 * learned and the model has no dataset 'theta'. */
int spr_model_config(const spr_config *c, const spr_model *m, const char *model_path,
                     spr_config *out);

/* Bytes an evaluation of model m under mc (spr_model_config's output)
 * holds: the weights (spr_model_bytes) and, per thread, the scratch of
 * one model context (every head's attention data as spr_run_mem_bytes
 * counts one thread of a run, and the activations).  An estimate for the
 * memory refusal; a reference model adds its own. */
double spr_model_eval_mem_bytes(const spr_config *mc, const spr_model *m, int threads);

/* *bytes = what spr_model_eval_run of configuration *c on `threads`
 * threads holds for model m (file model_path) and its reference ref (NULL:
 * none; file ref_path): spr_model_eval_mem_bytes of each under its
 * spr_model_config.  Errors as spr_model_config. */
int spr_model_eval_need_bytes(const spr_config *c, const spr_model *m, const char *model_path,
                              const spr_model *ref, const char *ref_path, int threads,
                              double *bytes);


/* Scratch of one thread for one model (opaque). */
typedef struct spr_model_ctx spr_model_ctx;
int spr_model_ctx_alloc(const spr_config *mc, const spr_model *m, spr_model_ctx **out);
void spr_model_ctx_free(spr_model_ctx *x); /* NULL: no-op */

/* baselines.match = sprint: the keep rate of each layer that SPRINT
 * realised on the item (layer_keep[0 .. depth-1], kept pairs over the
 * layer's pairs), the baselines' targets of the next spr_model_infer
 * calls on x; NULL clears (a baseline then refuses to run matched).
 * spr_model_eval_run sets it after SPRINT's pass of each item. */
void spr_model_ctx_set_match(spr_model_ctx *x, const double *layer_keep, int depth);

/* Record SPRINT's analog masks in the next spr_model_infer calls on x
 * (scheme SPR_SCHEME_SPRINT): masks (depth x heads x tokens x
 * spr_mask_row_bytes(tokens) bytes, owned by the caller, packed as in
 * spr_head_result) receives layer l, head h at offset (l heads + h)
 * tokens spr_mask_row_bytes(tokens).  NULL stops recording.  For
 * bindings that compare their own forward pass with this one. */
void spr_model_ctx_record_masks(spr_model_ctx *x, uint8_t *masks);

/* What one item costs under one scheme, summed over layers and heads. */
typedef struct {
  int64_t kept[SPR_MAX_LAYERS]; /* kept (query, key) pairs of layer l */
  int64_t bytes_fetched;        /* ReRAM bytes fetched into the buffer */
  double energy_J, cycles;      /* ledger totals (0 for exact and reference) */
  int theta_saturated;          /* heads whose learned threshold fell off
                                   the generator's grid (mode learned) */
} spr_model_item_stats;

/* Forward pass of one item under scheme s (SPR_MEVAL_EXACT: exact float
 * attention; SPR_MEVAL_REFERENCE is SPR_MEVAL_EXACT on the reference
 * model, which the caller passes as m) with config mc (from
 * spr_model_config for m).  input: side x side pixels (image) or tokens
 * ids (text); logits: m->outputs (image) or tokens x outputs (text)
 * floats.  trial keys the random streams (the item's index).  Returns 0
 * or a negative code (the message names the scheme, layer and head). */
int spr_model_infer(const spr_config *mc, const spr_model *m, int s, const uint8_t *input,
                    int trial, spr_model_ctx *x, float *logits, spr_model_item_stats *st);

/* One row over the evaluated items. */
typedef struct {
  int ran;
  double metric;         /* image: top-1; text: bits per character */
  double agreement;      /* image: share of items predicted as by exact
                            attention; text: NaN */
  double loss;           /* against the reference row (or exact when there
                            is no reference): image: percentage points of
                            top-1 lost, 100 (ref - top1); text: percent of
                            bits per character added, 100 (bpc - ref) / ref */
  double keep_rate;      /* kept pairs / allowed pairs (j <= i when causal) */
  double keep_rate_layer[SPR_MAX_LAYERS];
  double bytes_fetched;  /* totals over items (NaN for exact and reference) */
  double energy_J;
  double cycles;
  int64_t theta_saturated; /* head evaluations with a saturated learned threshold */
} spr_model_metrics;

/* An input file of the evaluation as it was read: recorded in the output
 * file's /inputs (docs/models.md section 7), as a trace's (docs/trace.md). */
typedef struct {
  char key[64];                /* its role: "workload.model", "workload.reference_model",
                                  "workload.dataset.images", "workload.dataset.labels",
                                  "run.device_model" */
  char path[SPR_STRING_MAX];   /* the file */
  char content_id[32];         /* "fnv1a64:<16 hex>" of the bytes read */
  long long size_bytes;        /* its size */
} spr_model_eval_input;

#define SPR_MEVAL_MAX_INPUTS 8

typedef struct {
  int input;                /* enum spr_model_input */
  int causal;
  int n_items, first_item, depth, heads, tokens, outputs, head_dim;
  double seconds;           /* wall time of the evaluation */
  int loss_vs;              /* the row the loss is measured against:
                               SPR_MEVAL_REFERENCE or SPR_MEVAL_EXACT */
  char reference[SPR_STRING_MAX]; /* the reference model file, "" none */
  spr_model_metrics scheme[SPR_MEVAL_N_SCHEMES];
  uint8_t *labels;          /* image: n_items */
  /* per row, NULL when it did not run: n_items values each */
  uint8_t *pred[SPR_MEVAL_N_SCHEMES];  /* image: predicted class */
  double *nats[SPR_MEVAL_N_SCHEMES];   /* text: nats of the window */
  double *energy_J[SPR_MEVAL_N_SCHEMES], *cycles[SPR_MEVAL_N_SCHEMES];
  double *keep_rate[SPR_MEVAL_N_SCHEMES];
  int64_t *bytes_fetched[SPR_MEVAL_N_SCHEMES];
  /* the input files: the model, its reference and the test images as
   * spr_model_eval_run received them (those read by spr_model_load and
   * spr_fmnist_load; data built in memory is not listed); a caller adds
   * others with spr_model_eval_add_input */
  int n_inputs;
  spr_model_eval_input inputs[SPR_MEVAL_MAX_INPUTS];
} spr_model_eval_result;

/* Record input file `path` of role `key` (no '/' in it), read with
 * checksum content_id and size size_bytes, in r (written to /inputs by
 * spr_model_eval_write).  Errors: SPR_EINVAL (an empty field, a '/' in
 * the key, a key recorded twice, more than SPR_MEVAL_MAX_INPUTS inputs, a
 * field too long). */
int spr_model_eval_add_input(spr_model_eval_result *r, const char *key, const char *path,
                             const char *content_id, long long size_bytes);

/* Evaluate the items of c (workload.images/first_image or
 * workload.windows/first_window) with model m (read from model_path),
 * reference model ref (NULL: none; it must have m's input, tokens and
 * outputs), test images `data` (image models; NULL for text) and
 * `threads` OpenMP threads (1..1024).  cancel: stop with SPR_ECANCELED
 * once *cancel is nonzero (checked between items), or NULL.  prog (NULL:
 * none) counts the items: one stage of unit "images" or "windows" with
 * the item count as total, one more as each item finishes under every
 * scheme (for the caller to poll: spr_progress.h).  *out is filled (free with spr_model_eval_result_free)
 * on success and empty on error.  Errors: SPR_EINVAL (items outside the
 * data, an evaluation split too short for the context, image size or
 * reference shape not the model's), SPR_ECONFIG (spr_model_config),
 * SPR_ENOMEM (out of memory, or the evaluation needs more than 80% of the
 * memory this process may use, spr_model_eval_mem_bytes against
 * core/spr_sysmem.h: refused before any item runs), the first error of an
 * item (lowest index, naming it). */
int spr_model_eval_run(const spr_config *c, const spr_model *m, const char *model_path,
                       const spr_model *ref, const char *ref_path, const spr_fmnist *data,
                       int threads, volatile sig_atomic_t *cancel, spr_progress *prog,
                       spr_model_eval_result *out);

/* spr_model_eval_run on the model c->wl.model, its reference
 * (spr_model_reference_path) and, for an image model, the test split of
 * c->wl.dataset, all read here (for one-off evaluations and sweeps). */
int spr_model_eval(const spr_config *c, int threads, volatile sig_atomic_t *cancel,
                   spr_progress *prog, spr_model_eval_result *out);

void spr_model_eval_result_free(spr_model_eval_result *r); /* NULL: no-op */

/* A store of inputs read once and shared by the evaluations of many
 * configurations (a sweep's points): models, reference models and
 * Fashion-MNIST test splits, each file read once.  Evaluating from the
 * store also keeps the isolated reader's fork (spr_h5r.h) out of threads
 * that run beside others. */
typedef struct spr_model_store spr_model_store;
int spr_model_store_new(spr_model_store **out); /* 0 or SPR_ENOMEM */
void spr_model_store_free(spr_model_store *s);  /* NULL: no-op */

/* Read into s what an evaluation of resolved configuration *c
 * (workload.source = model) needs and s does not hold yet: the model, its
 * reference model (spr_model_reference_path) and, for an image model, the
 * test split of c->wl.dataset.  Not thread-safe.  Errors as spr_model_eval
 * reports them when reading. */
int spr_model_store_add(spr_model_store *s, const spr_config *c);

/* The model of file `path` in s (a model or a reference model), NULL when
 * s (may be NULL) does not hold it. */
const spr_model *spr_model_store_get(const spr_model_store *s, const char *path);

/* *bytes = what one evaluation (one thread) of *c holds: the inputs'
 * spr_model_eval_need_bytes and, for an image model, the test split.
 * SPR_EINVAL when s does not hold c's inputs (spr_model_store_add). */
int spr_model_store_need_bytes(const spr_model_store *s, const spr_config *c, double *bytes);

/* spr_model_eval of *c with the inputs held by s (NULL or missing ones:
 * read as spr_model_eval reads them).  Concurrent calls on one store are
 * safe. */
int spr_model_eval_from(const spr_model_store *s, const spr_config *c, int threads,
                        volatile sig_atomic_t *cancel, spr_progress *prog,
                        spr_model_eval_result *out);

/* Write r, the resolved configuration c and the program version to the
 * HDF5 file `path` (schema: docs/models.md section 7) through the output
 * path (core/spr_output.h): a temporary "<path>.tmp.XXXXXX", every write
 * and close checked, the verified close (fsync), then the rename; on any
 * failure the temporary is deleted, so a full disk never leaves a file
 * that looks complete.  Errors: SPR_EIO (path a folder or its folder
 * missing, a write failed: the message names the temporary and the
 * reason, e.g. "No space left on device"), SPR_EHDF5, SPR_ENOMEM. */
int spr_model_eval_write(const char *path, const spr_config *c, const spr_model_eval_result *r,
                         const char *version);

#endif
