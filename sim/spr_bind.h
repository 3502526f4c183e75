/* spr_bind.h - flat entry points for language bindings (python/sprintsim).
 *
 * The library's structs (spr_config, spr_head_result, spr_model_eval_result)
 * are large and change between versions; a binding that mirrored their
 * layout would break silently.  These functions take and return opaque
 * handles, plain arrays and named statistics instead, so a binding needs
 * no struct layout at all.  Like the rest of the library they never exit:
 * every failure is a negative SPR_E* code with spr_errmsg() set.
 *
 * Ownership: whoever allocates frees; spr_bind_*_free(NULL) is a no-op.
 */
#ifndef SPR_BIND_H
#define SPR_BIND_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "spr_params.h"
#include "spr_pipeline.h"
#include "spr_result.h"

/* The library's version ("0.1.0"). */
const char *spr_bind_version(void);

/* free() for strings the functions below return. */
void spr_bind_free(void *p);

/* --- configurations ------------------------------------------------------ */

/* A resolved configuration: the defaults, then the INI file `path` (NULL:
 * none), then the n_set overrides "section.key=value" (named `set_name`
 * in messages, NULL: "override"), resolved (spr_config_load_src), with a
 * source qkv's shape read from its file (spr_qkv_resolve) and the device
 * model of run.device_model applied (spr_device_load_config).  Errors:
 * SPR_EIO, SPR_ECONFIG (the file), SPR_EUSAGE (an override: its message
 * names section.key=value), SPR_EHDF5, SPR_ENOMEM; *out is NULL then. */
int spr_bind_config_new(const char *path, const char *const *set, int n_set,
                        const char *set_name, spr_config **out);
void spr_bind_config_free(spr_config *c);

/* Value of key "section.name" of c as text (spr_config_format), into
 * buf[n]; returns the length the full text needs (>= 0), or SPR_ECONFIG
 * for an unknown key (message names it). */
int spr_bind_config_get(const spr_config *c, const char *key, char *buf, size_t n);

/* Index of key "section.name" in the key table (spr_config_key), or -1. */
int spr_bind_config_find(const char *key);

/* --- named statistics of one head under one scheme ----------------------- */

/* Count and names of the statistics spr_bind_head_stats writes: the
 * head's analog decisions (threshold, keep rates, false prunes and keeps,
 * masses, scales), then the scheme's digital path and ledger (keep rate,
 * bytes, accuracy against dense, energy and cycle totals, then one entry
 * per ledger component: "energy_<name>_J", "cycles_<name>").  Names are
 * unique; units are in the names or in docs/python.md. */
int spr_bind_nstats(void);
const char *spr_bind_stat_name(int i);

/* Write the statistics of head r under scheme s (enum spr_scheme; the
 * scheme's part is NaN when it did not run) into out[spr_bind_nstats()]. */
void spr_bind_head_stats(const spr_head_result *r, int s, double *out);

/* spr_bind_head_stats of a run's head (layer, head).  Returns 0 or
 * SPR_EINVAL (out of range). */
int spr_bind_run_stats(const spr_run *run, int layer, int head, int s, double *out);

/* --- one layer of attention heads --------------------------------------- */

/* The scheme code of exact float attention (no pruning, no ledger). */
#define SPR_BIND_EXACT SPR_N_SCHEMES

typedef struct spr_bind_attn spr_bind_attn;

/* Workspaces for layers of `heads` heads of n tokens x d dimensions under
 * the resolved configuration c (copied; its workload shape is set to
 * layers x heads, N = n, d, and causal).  threshold.values (mode direct)
 * must hold 1, layers or (per_head) layers x heads values.  Errors:
 * SPR_EINVAL (a shape outside 2 <= n <= SPR_QKV_MAX_SEQ, 1 <= d <=
 * SPR_QKV_MAX_DIM, 1 <= heads <= SPR_MAX_HEADS, 1 <= layers <=
 * SPR_MAX_LAYERS; a buffer too small for dense_tiled), SPR_ECONFIG
 * (threshold.values), SPR_ENOMEM. */
int spr_bind_attn_alloc(const spr_config *c, int layers, int heads, int n, int d, int causal,
                        spr_bind_attn **out);
void spr_bind_attn_free(spr_bind_attn *a);

/* One layer of every head, as the model evaluator runs it
 * (sim/spr_model_eval.c): Q, K, V are heads x n x d floats (row-major,
 * head after head).  Scheme s (enum spr_scheme, or SPR_BIND_EXACT):
 *   every scheme but exact quantizes each head (spr_attend_ideal);
 *   SPRINT sets the layer's thresholds (range over the heads, keep-rate
 *   counts or analog scores, spr_attend_thresholds with learned threshold
 *   `theta` on q.k / sqrt(d), used in mode learned) and decides every
 *   pair with the analog model, streams keyed by (seed, layer, head0 + h,
 *   trial, stream) for head h of the inputs;
 *   then each head's recompute over the scheme's survivors
 *   (spr_attend_scheme_at with keep_target; < 0: the configured knobs),
 *   or exact attention.
 * Outputs (each may be NULL): O heads x n x d floats; mask and ideal
 * (SPRINT only; NULL otherwise) heads x n x n bytes, 1 = key kept, the
 * analog and the ideal decisions; stats heads x spr_bind_nstats() values
 * (spr_bind_head_stats; NaN where a part did not run); *saturated the
 * heads whose learned threshold fell off the grid.  Errors: SPR_EINVAL
 * (layer outside the layers of spr_bind_attn_alloc, unknown or disabled
 * scheme, NaN or Inf inputs, a threshold outside the grid), the analog
 * model's; the message names the layer and head. */
int spr_bind_attn_layer(spr_bind_attn *a, int s, int layer, int head0, int trial, double theta,
                        double keep_target, const float *Q, const float *K, const float *V,
                        float *O, uint8_t *mask, uint8_t *ideal, double *stats, int *saturated);

/* --- model files ---------------------------------------------------------- */

typedef struct spr_bind_model spr_bind_model;

/* The model of c->wl.model (workload.source = model) with its
 * configuration (spr_model_config) and, for an image model, the test
 * images of c->wl.dataset.  info[9] receives input, causal, depth, heads,
 * tokens, head_dim, outputs, the number of items (test images, or
 * evaluation windows) and the image side (0 for text); theta[SPR_MAX_LAYERS] (may be NULL) the learned
 * thresholds (NaN when the model has none).  Errors: those of
 * spr_model_load, spr_fmnist_load, spr_model_config, SPR_ENOMEM. */
int spr_bind_model_open(const spr_config *c, int *info, double *theta, spr_bind_model **out);
void spr_bind_model_free(spr_bind_model *b);

/* Forward pass of item `item` (test image or evaluation window index,
 * which keys the random streams as in spr_model_eval) under scheme s
 * (enum spr_scheme, SPR_MEVAL_EXACT or SPR_MEVAL_REFERENCE is refused:
 * the reference is another model file) by spr_model_infer.  logits:
 * outputs (image) or tokens x outputs (text) floats; masks (may be NULL;
 * SPRINT only) depth x heads x tokens x tokens bytes, 1 = kept;
 * input (may be NULL) receives the item: side x side pixels or tokens
 * ids.  Errors: SPR_EINVAL (item or scheme), spr_model_infer's. */
int spr_bind_model_infer(spr_bind_model *b, int s, int item, float *logits, uint8_t *masks,
                         uint8_t *input);

/* --- model evaluations ---------------------------------------------------- */

/* spr_model_eval on a heap result.  Errors: spr_model_eval's. */
int spr_bind_meval(const spr_config *c, int threads, volatile sig_atomic_t *cancel,
                   void **out);
void spr_bind_meval_free(void *r);

/* info[10]: input, causal, n_items, first_item, depth, heads, tokens,
 * outputs, head_dim, loss_vs; *seconds the wall time; reference: the
 * reference model file ("" none). */
void spr_bind_meval_info(const void *r, int *info, double *seconds, const char **reference);

/* Row s (0 .. SPR_MEVAL_N_SCHEMES - 1): out[9 + SPR_MAX_LAYERS] = ran,
 * metric, agreement, loss, keep_rate, bytes_fetched, energy_J, cycles,
 * theta_saturated, keep_rate_layer[0 .. SPR_MAX_LAYERS - 1].  Per item
 * (each may be NULL; n_items values, left untouched when the row did not
 * run): pred (image) or nats (text), energy_J, cycles, keep_rate,
 * bytes_fetched; labels (image; may be NULL).  Returns 0 or SPR_EINVAL. */
int spr_bind_meval_row(const void *r, int s, double *out, uint8_t *pred, double *nats,
                       double *energy_J, double *cycles, double *keep_rate,
                       int64_t *bytes_fetched, uint8_t *labels);

/* spr_model_eval_write of the result with this library's version. */
int spr_bind_meval_write(const char *path, const spr_config *c, const void *r);

/* --- traces ---------------------------------------------------------------- */

/* Record the device model of c (run.device_model, read again) in trace t
 * as `sprintsim run` does; nothing when c has none. */
int spr_bind_trace_device(void *t, const spr_config *c);

/* --- sweeps ---------------------------------------------------------------- */

/* spr_sweep_load_src of the file `path` (NULL: an empty text named
 * "defaults") with n_set overrides named set_name; *out is an spr_sweep
 * (free with spr_sweep_free). */
int spr_bind_sweep_load(const char *path, const char *const *set, int n_set, const char *set_name,
                        void **out);

/* Evaluate every point of sw on `threads` OpenMP threads (one point per
 * thread at a time; rows do not depend on the count).  Returns 0 or the
 * first failing point's error in point order. */
int spr_bind_sweep_eval(void *sw, int threads, volatile sig_atomic_t *cancel);

/* The evaluator's accuracy metrics: count, and name of metric i. */
int spr_bind_sweep_nmetrics(const void *sw);
const char *spr_bind_sweep_metric(const void *sw, int i);

/* Row of scheme s at point p: out[5 + SPR_EVAL_MAX_ACC] = ran, energy_J,
 * cycles, keep_rate, bytes_fetched, acc[0 .. SPR_EVAL_MAX_ACC - 1].
 * Returns 0 or SPR_EINVAL (not evaluated, out of range). */
int spr_bind_sweep_row(const void *sw, int p, int s, double *out);

#endif
