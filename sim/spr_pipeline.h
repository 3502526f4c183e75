/* spr_pipeline.h - the layer-by-layer simulation of one run.
 *
 * Step, don't call back: the caller allocates a run, calls
 * spr_run_layer() for each layer in order (printing progress, writing
 * traces as it likes) and reads the results.
 *
 * Per layer:
 *   0. source qkv: read the layer's Q, K, V from the file, head by head
 *      (one thread: HDF5 is not thread-safe);
 *   1. every head (in parallel): generate Q, K, V (source synthetic); quantize Q to
 *      query_bits and K to key_bits, keep the key_msb_bits MSBs; ideal
 *      scores s = q . k_msb (exact integers);
 *   2. threshold range (max |s| of the layer, or of the head when
 *      per_head, unless threshold.range is set) and, in mode keep_rate,
 *      the generator code whose ideal keep rate is nearest the target;
 *   3. every head (in parallel): program the arrays, decide every
 *      (query, key) with the analog model, compare with the ideal
 *      decision, and compute the softmax mass retained.
 * Random streams are keyed by (seed, layer, head, trial = 0, stream), so
 * results do not depend on the thread count.
 */
#ifndef SPR_PIPELINE_H
#define SPR_PIPELINE_H

#include <signal.h>
#include <stddef.h>

#include "spr_params.h"
#include "spr_progress.h"
#include "spr_result.h"

typedef struct spr_run spr_run;

/* Allocate a run of the resolved configuration *c (copied) using `threads`
 * (with source qkv, resolved by spr_qkv_resolve: the run opens the file and
 * refuses, SPR_EINVAL, sizes that are not the file's; file errors as in
 * spr_qkv_open)
 * OpenMP threads (>= 1; at most one per head is used).  OpenBLAS is set to
 * one thread per caller thread (heads are the parallel unit).  Returns 0,
 * SPR_EINVAL or SPR_ENOMEM (also when the run would need more than 80% of
 * the memory this process may use, the smaller of the physical memory and
 * its cgroup's limit (spr_sysmem_limit), with the estimate and the limit's
 * source in the message), and SPR_EINVAL for run.block_rows below N and
 * not a multiple of 64, or trace level full with heads in blocks. */
int spr_run_alloc(const spr_config *c, int threads, spr_run **out);

/* The memory, in bytes, that spr_run_alloc estimates a run of the
 * resolved configuration *c on `threads` threads needs (its refusal's
 * estimate; a sweep adds those of the points it runs at once). */
double spr_run_mem_bytes(const spr_config *c, int threads);

/* Heads up to SPR_RUN_WHOLE_MAX tokens are held whole by default
 * (run.block_rows = 0): every n x n array of a head exists at once.  Up to
 * SPR_RUN_HELD_MAX tokens they are held whole when the run needs a whole
 * head (run.trace = full, baselines.match = sprint with Sanger); otherwise
 * they run in blocks of SPR_RUN_BLOCK_ROWS rows, whose matrices stay in
 * the L2 cache (docs/performance.md, section 4). */
#define SPR_RUN_WHOLE_MAX 512
#define SPR_RUN_HELD_MAX 4096
#define SPR_RUN_BLOCK_ROWS 256

/* Query rows per block of a head for c: run.block_rows when set (at most
 * N), else N up to N = SPR_RUN_WHOLE_MAX, or up to SPR_RUN_HELD_MAX when
 * the run needs a whole head, else SPR_RUN_BLOCK_ROWS or, when that
 * block's scratch would pass 256 MiB per thread (N above about 43000), the
 * multiple of 64 (at least 64) that keeps it near 256 MiB.  Below N a head
 * runs in row blocks: no N x N array exists, memory grows as N d H + B N T
 * (heads H, threads T), and the results are those of the whole head (the
 * masks, counts and ledger bit for bit; sim/spr_attend.h). */
int spr_run_block_rows(const spr_config *c);

/* Attach the trace that receives, for a run in row blocks (block rows
 * below N) at trace level masks, every head's masks in row chunks while
 * the heads run (spr_trace_mask_rows_begin per layer, then
 * spr_trace_write_mask_rows, one writer at a time); spr_trace_write_head
 * still follows each layer.  NULL detaches.  Held heads (block rows = N)
 * keep their masks in their results as before. */
struct spr_trace;
void spr_run_set_trace(spr_run *r, struct spr_trace *t);

/* 1 when the run's heads go in row blocks (spr_run_block_rows < N). */
int spr_run_blocked(const spr_run *r);

/* Check the errors that depend on the data before any layer runs: with
 * the first-order IR-drop model (crossbar.ir_drop = first_order and wire
 * resistance), program every head's arrays once as spr_run_layer will
 * (the same streams; nothing is decided), so a correction beyond
 * SPR_IR_FIRST_ORDER_LIMIT is reported before any result (naming layer
 * and head) instead of after some layers were printed.  Otherwise returns
 * 0 at once.  Costs quantization, one score GEMM and the programming of
 * every head (a few percent of a run; with source qkv every head is read
 * twice).  Call after spr_run_alloc, before the first spr_run_layer.
 * Returns 0, SPR_ECANCELED, or the error of the first failing head. */
int spr_run_check(spr_run *r);

/* Simulate layer `layer` (0-based).  Afterwards the results of its heads
 * are complete, including the arrays the trace level asks for; those
 * arrays stay valid until the next spr_run_layer call, after which the
 * layer's results keep their scalar fields only. */
int spr_run_layer(spr_run *r, int layer);

/* Make spr_run_layer stop early, returning SPR_ECANCELED, once *flag
 * becomes nonzero (checked before each head); NULL disables.  For signal
 * handlers: the flag is only read. */
void spr_run_set_cancel(spr_run *r, volatile sig_atomic_t *flag);

/* Count the run's work into *p (NULL: stop counting) for the caller to
 * poll (spr_progress.h): begins one stage of unit "head passes", total
 * layers x heads x passes (3 per layer: ideal, analog, digital; 4 in
 * threshold modes keep_rate and analog_keep_rate, which count keep rates
 * or score the heads first), and each
 * spr_run_layer adds one as each head finishes a pass.  spr_run_check's
 * work is not counted. */
void spr_run_set_progress(spr_run *r, spr_progress *p);

/* Result of (layer, head); NULL when out of range. */
const spr_head_result *spr_run_result(const spr_run *r, int layer, int head);

/* out[s] = thread CPU seconds of stage s (enum spr_stage, sim/spr_attend.h:
 * SPR_STAGE_N values) summed over the run's threads since spr_run_alloc. */
void spr_run_stages(const spr_run *r, double *out);

/* All results, indexed [layer * heads + head]. */
const spr_head_result *spr_run_results(const spr_run *r);

/* Source qkv: the Q/K/V file's content id ("fnv1a64:<16 hex>" of its
 * bytes, n >= 25) and size, for the trace's provenance; the file is
 * checked unchanged around every read of the run.  Errors: SPR_EINVAL
 * (not source qkv), SPR_EIO. */
int spr_run_qkv_id(const spr_run *r, char *content_id, size_t n, long long *size_bytes);

void spr_run_free(spr_run *r);

#endif
