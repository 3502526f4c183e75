/* spr_vit_eval.h - the ViT of docs/vit.md on Fashion-MNIST test images with
 * each attention head computed under a scheme (sim/spr_attend.h): exact
 * float attention, dense, SPRINT (quantized crossbar scoring with every
 * enabled non-ideality, comparators, digital recompute over survivors)
 * and the baselines of [baselines].  Each scheme runs its own forward
 * pass, so a scheme's pruning in layer l changes the inputs of layer l+1.
 *
 * Random streams are keyed by (seed, layer, head, trial = image index,
 * stream); images run in parallel (OpenMP) and results are summed in
 * image order, so every figure is bit-identical for any thread count.
 */
#ifndef SPR_VIT_EVAL_H
#define SPR_VIT_EVAL_H

#include <signal.h>
#include <stdint.h>

#include "spr_fmnist.h"
#include "spr_params.h"
#include "spr_result.h"
#include "spr_vit.h"

/* Schemes of the ViT: the ledger's (enum spr_scheme) plus exact float
 * attention, which is a reference and not priced. */
#define SPR_VIT_EXACT SPR_N_SCHEMES
#define SPR_VIT_N_SCHEMES (SPR_N_SCHEMES + 1)

/* "exact" for SPR_VIT_EXACT, else spr_scheme_name(s). */
const char *spr_vit_scheme_name(int s);

/* Whether c runs scheme s (exact, SPRINT and dense always). */
int spr_vit_scheme_on(const spr_config *c, int s);

/* *out = *c with the workload shape of model m (seq_len = tokens, layers
 * = depth, heads, head_dim).  Errors: SPR_ECONFIG when threshold.values
 * (mode direct) does not have 1, depth, or (per_head) depth x heads
 * values, naming the model file `model_path`. */
int spr_vit_config(const spr_config *c, const spr_vit *m, const char *model_path,
                   spr_config *out);

/* Scratch of one thread for one model (opaque). */
typedef struct spr_vit_ctx spr_vit_ctx;
int spr_vit_ctx_alloc(const spr_config *mc, const spr_vit *m, spr_vit_ctx **out);
void spr_vit_ctx_free(spr_vit_ctx *x); /* NULL: no-op */

/* What one image costs under one scheme, summed over layers and heads. */
typedef struct {
  int64_t kept[SPR_MAX_LAYERS]; /* kept (query, key) pairs of layer l */
  int64_t bytes_fetched;        /* ReRAM bytes fetched into the buffer */
  double energy_J, cycles;      /* ledger totals (0 for exact) */
  int theta_saturated;          /* heads whose learned threshold fell off
                                   the generator's grid (mode learned) */
} spr_vit_image_stats;

/* Forward pass of one image (side x side pixels) under scheme s with
 * config mc (from spr_vit_config); logits: m->classes floats.  trial keys
 * the random streams (the image's index in the test set).  Returns 0 or
 * a negative code (message names layer and head). */
int spr_vit_infer(const spr_config *mc, const spr_vit *m, int s, const uint8_t *image, int trial,
                  spr_vit_ctx *x, float *logits, spr_vit_image_stats *st);

/* One scheme over the evaluated images. */
typedef struct {
  int ran;
  double accuracy;       /* top-1 against the labels */
  double agreement;      /* share of images predicted as by exact attention */
  double keep_rate;      /* kept pairs / all (query, key) pairs */
  double keep_rate_layer[SPR_MAX_LAYERS];
  double bytes_fetched;  /* total over images (NaN for exact) */
  double energy_J;       /* total ledger energy over images (NaN for exact) */
  double cycles;         /* total ledger latency over images (NaN for exact) */
  int64_t theta_saturated; /* head evaluations with a saturated learned threshold */
} spr_vit_metrics;

typedef struct {
  int n_images, first_image, depth, heads, tokens, classes, head_dim;
  double seconds;                          /* wall time of the evaluation */
  spr_vit_metrics scheme[SPR_VIT_N_SCHEMES];
  uint8_t *labels;                         /* n_images */
  /* per scheme, NULL when it did not run: n_images values each */
  uint8_t *pred[SPR_VIT_N_SCHEMES];
  double *energy_J[SPR_VIT_N_SCHEMES], *cycles[SPR_VIT_N_SCHEMES];
  double *keep_rate[SPR_VIT_N_SCHEMES];
  int64_t *bytes_fetched[SPR_VIT_N_SCHEMES];
} spr_vit_eval_result;

/* Evaluate images first_image .. first_image + images - 1 of data under
 * c (resolved; the model's shape replaces the workload's) with `threads`
 * OpenMP threads (1..1024).  cancel: stop with SPR_ECANCELED once
 * *cancel is nonzero (checked between images), or NULL.  *out is filled
 * (free with spr_vit_eval_result_free) on success and empty on error.
 * Errors: SPR_EINVAL (images outside data, image size not the model's),
 * SPR_ECONFIG (spr_vit_config), SPR_ENOMEM, the first error of an image
 * (lowest index, naming the image). */
int spr_vit_eval_run(const spr_config *c, const spr_vit *m, const char *model_path,
                     const spr_fmnist *data, int threads, volatile sig_atomic_t *cancel,
                     spr_vit_eval_result *out);

/* spr_vit_eval_run on the model c->wl.model and the test split of
 * c->wl.dataset, read here (for one-off evaluations and sweeps). */
int spr_vit_eval(const spr_config *c, int threads, spr_vit_eval_result *out);

void spr_vit_eval_result_free(spr_vit_eval_result *r); /* NULL: no-op */

/* Write r, the resolved configuration c and the program version to the
 * HDF5 file `path` (schema: docs/vit.md), under a temporary name renamed
 * when complete.  Errors: SPR_EIO, SPR_EHDF5, SPR_ENOMEM. */
int spr_vit_eval_write(const char *path, const spr_config *c, const spr_vit_eval_result *r,
                       const char *version);

#endif
