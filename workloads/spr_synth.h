/* spr_synth.h - seeded synthetic attention workloads.
 *
 * Generates, per (layer, head), queries Q, keys K and values V (each N x d,
 * row-major float) whose softmax(Q K^T / sqrt(d)) looks like a trained
 * model's attention (docs/workloads.md: generative model and measured
 * statistics).  Deterministic: the same (seed, layer, head) gives the same
 * bits on any thread, in any order, with BLAS on one thread as sprintsim
 * calls it (Q and K come from an sgemm; some OpenBLAS kernels give last
 * bits that depend on their thread count: docs/workloads.md 2.8).
 */
#ifndef SPR_SYNTH_H
#define SPR_SYNTH_H

#include <stdint.h>
#include "spr_params.h"

/* Generate head (layer, head) of workload *wl (resolved: no zero fields).
 * Q, K, V: caller-owned buffers of wl->seq_len * wl->head_dim floats each
 * (V may be NULL when not needed).  Returns 0, SPR_EINVAL (bad indices or
 * sizes) or SPR_ENOMEM. */
int spr_synth_head(const spr_workload_params *wl, uint64_t seed, int layer,
                   int head, float *Q, float *K, float *V);

/* The scratch of spr_synth_head for heads of n tokens of d dimensions,
 * allocated once (a thread's; the per-call allocation of spr_synth_head
 * costs a quarter of its time in fresh pages).  Returns 0, SPR_EINVAL or
 * SPR_ENOMEM. */
typedef struct spr_synth_ws spr_synth_ws;
int spr_synth_ws_alloc(int n, int d, spr_synth_ws **out);
void spr_synth_ws_free(spr_synth_ws *w); /* NULL: no-op */

/* spr_synth_head with the scratch w (of the head's n x d; SPR_EINVAL
 * otherwise): the same Q, K, V. */
int spr_synth_head_ws(const spr_workload_params *wl, uint64_t seed, int layer, int head, float *Q,
                      float *K, float *V, spr_synth_ws *w);

/* Statistics of the attention softmax(Q K^T / sqrt(d)) of one head, with
 * the mask "probability >= p_thr":
 *   density  mean over queries of the fraction of keys kept,
 *   mass     mean over queries of the probability mass kept,
 *   new_frac mean over queries i >= 1 of |P_i AND NOT P_(i-1)| / N
 *            (the keys newly fetched between adjacent queries). */
typedef struct {
  double density, mass, new_frac;
} spr_attn_stats;

int spr_attn_stats_compute(const float *Q, const float *K, int n, int d,
                           double p_thr, spr_attn_stats *out);

#endif
