/* spr_attend.h - one attention head under every scheme: the shared core of
 * the run pipeline (sim/spr_pipeline.c, synthetic heads) and the ViT
 * model inference (sim/spr_model_eval.c, heads of a real model).
 *
 * Step, don't call back.  For one layer of one sequence the caller fills
 * the float Q, K, V (n x d) of each head's spr_attend_head, then:
 *   1. spr_attend_ideal    per head: quantize Q to analog.query_bits and K
 *                          to crossbar.key_bits, keep key_msb_bits MSBs,
 *                          ideal integer scores s = q . k_msb, max |s|;
 *   2. spr_attend_count    per head, mode keep_rate only: keep counts per
 *                          threshold code;
 *      spr_attend_analog_scores  per head, mode analog_keep_rate only
 *                          (instead): program the arrays, draw one analog
 *                          score per pair independent of the threshold,
 *                          keep counts per code of those scores;
 *      spr_attend_thresholds  the layer: generator range, the code of
 *                          every head (keep_rate, direct or learned);
 *   3. spr_attend_analog   per head: program the arrays, decide every
 *                          (query, key) with the analog model, compare
 *                          with the ideal decisions, softmax mass;
 *   4. spr_attend_digital  per head: the 8-bit recompute codes of Q and V
 *                          and dense exact float attention (the reference);
 *      spr_attend_scheme   per head and scheme: the scheme's mask (SPRINT:
 *                          the analog mask of step 3), survivor fetch
 *                          through the buffer, recompute over survivors,
 *                          accuracy against dense, ledger; optionally the
 *                          head output O.
 * Random streams are keyed by (seed, layer, head, trial, stream): the
 * pipeline passes trial 0, the ViT the image index, so results do not
 * depend on which thread runs which head or image.
 *
 * Causal attention.  Every step reads c->wl.causal (a caller may set it in
 * a copy of the configuration, e.g. from a model file).  When it is 1,
 * query i attends to keys j <= i only, and nothing outside that triangle
 * is scored, counted, fetched or priced (docs/model.md section 6):
 *   1. max |ideal| is taken over the causal pairs j <= i (the ideal
 *      matrix is still the full product; its entries j > i decide nothing);
 *   2. keep counts per code, the keep_rate pick and its reachability are
 *      over the causal pairs, n (n + 1) / 2 per head;
 *   3. the analog decisions of row i cover keys 0 .. i only
 *      (spr_analog_decide_causal: no random number drawn and nothing
 *      counted for j > i; recorded scores NaN there); the ideal mask,
 *      false prunes and keeps over j <= i; mass retained against the
 *      softmax of row i over j <= i; keep rates over the causal pairs
 *      (res->causal = 1);
 *   4. dense exact attention is causal (spr_dig_dense_causal), every
 *      scheme's mask is causal (the baselines' causal flags,
 *      docs/baselines.md section 5), the metrics rank keys j <= i (top-k
 *      with k_i = min(k, i + 1)), keep rates are over the causal pairs;
 *      the ledger (docs/energy.md section 7): SPRINT's query i does (i + 1)
 *      d in-memory MACs, i + 1 comparator decisions and reads i + 1
 *      pruning bits (its scoring arrays hold every key: 2 n d cells
 *      programmed); a digital prediction streams keys 0 .. i for query i,
 *      or, when the sequence's K fits the buffer beside the survivors,
 *      loads key i on query i and reads keys 0 .. i from the buffer
 *      (section 9), and its head totals are spread over the queries in
 *      proportion to i + 1; dense_tiled steps only the tiles a query
 *      block sees (section 10); fetches follow the masks.
 * With c->wl.causal = 0 every result, mask, count, random draw and ledger
 * figure is that of the non-causal code.
 */
#ifndef SPR_ATTEND_H
#define SPR_ATTEND_H

#include <stdint.h>

#include "spr_params.h"
#include "spr_result.h"

/* Per-head data of one layer (allocated by spr_attend_head_alloc). */
typedef struct {
  int n, d;             /* capacity (tokens, head dimension) */
  int held;             /* 1: the n x n arrays below are held (block rows
                           = n); 0: a long sequence in row blocks, the
                           ideal scores, masks and analog scores are not
                           kept (NULL) */
  float *Q, *K, *V;     /* n x d float inputs: filled by the caller */
  int8_t *q, *k, *kmsb; /* n x d codes (step 1) */
  int32_t *ideal;       /* n x n ideal integer scores (step 1; held only;
                           NULL when ideal16 holds them) */
  int16_t *ideal16;     /* the same as int16, for a held head whose scores
                           fit (spr_attend_ideal16) and no full trace:
                           half the memory traffic between steps 1 and 3 */
  int32_t maxabs;       /* max |ideal| (step 1) */
  int64_t *ihist;       /* exact histogram of the ideal scores (step 1):
                           ihist[s + ibound] pairs score s (causal: j <= i) */
  int32_t ibound;       /* max |q| max |k_msb| d of the histogram */
  float q_scale, k_scale; /* real = scale * code of q and k (step 1) */
  int64_t *counts;      /* 2^thr.bits keep counts per code (step 2) */
  uint8_t *mask_a, *mask_i; /* analog and ideal masks (step 3; held only) */
  float *scores;        /* n x n analog scores, or NULL (not recorded) */
  unsigned gen;         /* bumped by step 1: the codes' generation */
  struct spr_arena *mem; /* the arrays above (NULL in the heads after the
                            first of spr_attend_heads_alloc_rows: the first
                            holds them all) */
} spr_attend_head;

/* Allocate h for n >= 2 tokens of d >= 1 dimensions under c; with
 * want_scores, or in threshold.mode analog_keep_rate, also the analog
 * score matrix.  Returns 0 or SPR_ENOMEM
 * (h then holds nothing to free; spr_attend_head_free on it is safe). */
int spr_attend_head_alloc(spr_attend_head *h, const spr_config *c, int n, int d,
                          int want_scores);
/* The same for a head processed in row blocks of block_rows (< n: no n x n
 * array is allocated, h->held = 0; want_scores must then be 0). */
int spr_attend_head_alloc_rows(spr_attend_head *h, const spr_config *c, int n, int d,
                               int want_scores, int block_rows);
/* H heads whose arrays share one region of memory (one fault per 2 MiB
 * where the kernel gives transparent huge pages, core/spr_arena.h): h[0]
 * holds it, so spr_attend_head_free(&h[0]) frees every head's arrays; free
 * all H together.  On an error no head holds anything. */
int spr_attend_heads_alloc_rows(spr_attend_head *h, int H, const spr_config *c, int n, int d,
                                int want_scores, int block_rows);
void spr_attend_head_free(spr_attend_head *h);

/* Scratch of one thread: random streams, the programmed arrays, analog,
 * digital and baseline workspaces, for heads of exactly n x d (the shape
 * of the heads it serves).  Opaque. */
typedef struct spr_attend_ws spr_attend_ws;

/* Returns 0, SPR_EINVAL (bad shape or crossbar parameters) or SPR_ENOMEM. */
int spr_attend_ws_alloc(const spr_config *c, int n, int d, spr_attend_ws **out);
/* The same for heads processed in row blocks of block_rows queries (a
 * multiple of 64, or n): every scratch matrix is block_rows x n. */
int spr_attend_ws_alloc_rows(const spr_config *c, int n, int d, int block_rows,
                             spr_attend_ws **out);
void spr_attend_ws_free(spr_attend_ws *w); /* NULL: no-op */

/* The bytes spr_attend_ws_alloc_rows and spr_attend_head_alloc_rows take
 * (for the memory estimate of a run). */
double spr_attend_ws_bytes(const spr_config *c, int n, int d, int block_rows);
double spr_attend_head_bytes(const spr_config *c, int n, int d, int want_scores, int block_rows);

/* 1 when a held head of c (head dimension d) keeps its ideal scores as
 * int16 (spr_attend_head.ideal16): every |score| fits (max |q| max |k_msb|
 * d <= 32767: 3584 at the default 4-bit queries and key MSBs, d = 64) and
 * want_scores (a full trace, which records them as int32) is 0. */
int spr_attend_ideal16(const spr_config *c, int d, int want_scores);

/* 0: the caller reads no accuracy metrics and no analog mass (a model's
 * forward passes): the dense reference is not computed, and those fields
 * are NaN.  1 (the default): computed. */
void spr_attend_ws_set_metrics(spr_attend_ws *w, int on);

/* Step 1 on h->Q, h->K.  Clears *res and
 * sets its layer, head, n, d, q_scale and k_scale.  Returns 0 or
 * SPR_EINVAL (NaN or Inf in Q or K). */
int spr_attend_ideal(const spr_config *c, int layer, int head, spr_attend_head *h,
                     spr_attend_ws *w, spr_head_result *res);

/* Step 2, per head: h->counts over the range res->range (set by
 * spr_attend_range), of the n^2 ideal scores or (causal) the n (n + 1) / 2
 * of j <= i.  Returns 0 or SPR_ENOMEM. */
int spr_attend_count(const spr_config *c, spr_attend_head *h, const spr_head_result *res);

/* Step 2, per layer: res[h].range of the H heads (threshold.range, or max
 * |ideal score| of the layer, or of the head when per_head).  Call before
 * spr_attend_count. */
void spr_attend_range(const spr_config *c, const spr_attend_head *heads, int H,
                      spr_head_result *res);

/* Step 2, per layer: res[h].threshold_code and threshold of the H heads
 * (heads[h] after spr_attend_count in mode keep_rate):
 *   keep_rate  the code whose ideal keep rate (of the layer, or the head
 *              when per_head; over the causal pairs when causal) is
 *              nearest threshold.keep_rate; SPR_EINVAL when the grid
 *              cannot come near it;
 *   analog_keep_rate  the same over the analog scores' counts
 *              (spr_attend_analog_scores);
 *   direct     threshold.values (1, per layer or per layer and head, as
 *              spr_config_resolve checked for wl.n_layers x wl.n_heads); SPR_EINVAL when a value lies
 *              outside the generator's range;
 *   learned    learned_theta + threshold.offset, in scaled-score units
 *              (s = q.k / sqrt(d)), converted per head with
 *              spr_attend_theta_units and rounded to the grid; a value
 *              outside the grid saturates at its end (the saturated
 *              heads are counted in *saturated, which may be NULL).
 * w: any thread's workspace (scratch for the layer's counts). */
int spr_attend_thresholds(const spr_config *c, int layer, const spr_attend_head *heads, int H, double learned_theta,
                          spr_attend_ws *w, spr_head_result *res, int *saturated);

/* Threshold theta_s on the scaled score s = q.k / sqrt(d) in score units
 * (the integer q_int . k_msb) of a head quantized with res->q_scale and
 * res->k_scale:
 *   theta_units = theta_s sqrt(d) / (q_scale k_scale 2^(key_bits - key_msb_bits))
 * since q ~ q_scale q_int and k ~ k_scale 2^(key_bits - key_msb_bits) k_msb. */
double spr_attend_theta_units(const spr_config *c, const spr_head_result *res, double theta_s);

/* Step 3's first part alone: program the head's arrays (DAC gains,
 * static effects, IR drop) from h->kmsb (step 1) for trial `trial`, with
 * the same streams as spr_attend_analog, so a later spr_attend_analog
 * programs the same conductances; decides nothing.  For a run's check of
 * the errors that depend on the data (spr_run_check): a first-order IR
 * drop beyond its range, effective weights that overflow.  Returns 0 or
 * spr_xbar_program's and spr_dac_gains' errors. */
int spr_attend_program(const spr_config *c, int layer, int head, int trial, spr_attend_head *h,
                       spr_attend_ws *w);

/* Step 2, per head, mode analog_keep_rate (docs/model.md section 7):
 * program the arrays (the streams of spr_attend_analog), draw one
 * comparator input per decided pair into h->scores with
 * spr_analog_scores (stream SPR_STREAM_READ; causal: keys j <= i),
 * independent of any threshold, and count into h->counts the pairs each
 * threshold code keeps (over res->range); sets res->i_unit_A.  The
 * layer's code is then picked from these counts (spr_attend_thresholds)
 * and spr_attend_analog decides every pair from the same scores.
 * Returns 0, SPR_EINVAL (h allocated without scores) or an analog error. */
int spr_attend_analog_scores(const spr_config *c, int layer, int head, int trial,
                             spr_attend_head *h, spr_attend_ws *w, spr_head_result *res);

/* Step 3 at res->threshold: fills the decision counts, keep rates and
 * masses of *res and h->mask_a, h->mask_i (and h->scores when allocated;
 * in mode analog_keep_rate the decisions are h->scores >= threshold, the
 * scores of spr_attend_analog_scores, and nothing is programmed again).
 * Streams keyed by (c->seed, layer, head, trial, stream).  Returns 0 or
 * a negative code from the crossbar or analog model. */
int spr_attend_analog(const spr_config *c, int layer, int head, int trial, spr_attend_head *h,
                      spr_attend_ws *w, spr_head_result *res);

/* Step 4, per head: recompute codes of Q (digital.recompute_query_bits)
 * and V (digital.value_bits), dense exact float attention of Q, K, V.
 * Afterwards spr_attend_exact_output(w) is the exact float output O =
 * softmax(Q K^T / sqrt(d)) V (n x d; causal: row i's softmax over
 * j <= i) until the next call. */
int spr_attend_digital(const spr_config *c, spr_attend_head *h, spr_attend_ws *w);
const float *spr_attend_exact_output(const spr_attend_ws *w);

/* The exact float output O = softmax(Q K^T / sqrt(d)) V of h (n x d into
 * O; causal: row i over j <= i) alone, without the reference's
 * probabilities being kept for metrics (a model's exact forward pass).
 * Returns 0 or SPR_EINVAL (a score not finite). */
int spr_attend_exact(const spr_config *c, spr_attend_head *h, spr_attend_ws *w, float *O);

/* Step 4, per scheme (enum spr_scheme) after spr_attend_digital on the
 * same head; SPRINT needs step 3 (h->mask_a).  Fills *out (ran = 1) and,
 * when O is not NULL, the head output (n x d floats) of the recompute
 * over the scheme's survivors.  The baselines use [baselines] and
 * threshold.keep_rate (oracle and LeOPArd calibrate once per head and
 * share the threshold).  Returns 0 or a negative code. */
int spr_attend_scheme(const spr_config *c, int scheme, spr_attend_head *h,
                      spr_attend_ws *w, spr_scheme_result *out, float *O);

/* spr_attend_scheme with the baselines' keep rate matched: keep_target in
 * [0, 1] sets each baseline's own knob by search for that keep rate of
 * the head (oracle and LeOPArd: spr_bl_oracle_calibrate; top-k:
 * spr_bl_topk_match; Sanger: spr_bl_sanger_calibrate; window:
 * spr_bl_window_match; docs/baselines.md section 6) instead of the
 * configured threshold.keep_rate, topk_fraction, sanger_threshold and
 * window_half_width; a negative keep_target is spr_attend_scheme.  SPRINT,
 * dense and dense_tiled ignore it.  out->knob records the knob used. */
int spr_attend_scheme_at(const spr_config *c, int scheme, spr_attend_head *h, spr_attend_ws *w,
                         double keep_target, spr_scheme_result *out, float *O);

/* Every scheme enabled by c (spr_attend_scheme_on) in one pass over the
 * head's rows, after spr_attend_digital (and for SPRINT step 3): out[s]
 * for each, as spr_attend_scheme_at(c, s, ..., keep_target) gives it, with
 * the score matrices, the reference and ranks computed once. */
int spr_attend_schemes(const spr_config *c, spr_attend_head *h, spr_attend_ws *w,
                       double keep_target, spr_scheme_result *out);

/* One head of a layer in one pass over its row blocks, after steps 1 and
 * 2 (thresholds in *res): the analog decisions (step 3; unless
 * analog_done, when spr_attend_analog ran on this held head), the digital
 * path of every enabled scheme and the ledger, sharing the score matrices
 * and the dense reference between the analog mass and every scheme.
 * Step, don't call back:
 *   spr_attend_head_begin(...)                programs the arrays, keys the
 *                                             streams, sets each scheme's
 *                                             knob (the oracle's quantile,
 *                                             matched keep rates) with the
 *                                             passes over the rows that
 *                                             needs;
 *   while ((rc = spr_attend_head_step(..., &rows)) == 1)
 *     the block rows.i0 .. rows.i0 + rows.m - 1 is done: rows.mask_analog
 *     and rows.mask_ideal (rows.m x spr_mask_row_bytes(n)) are its masks
 *     until the next step (for a trace written in row chunks);
 *   spr_attend_head_end(...)                  res->scheme[], the analog
 *                                             statistics of *res.
 * The random streams are consumed in row order, so the results are those
 * of steps 3 and 4 on the whole head, for any block size (the masks,
 * counts and ledger bit for bit; outputs and metrics to float rounding,
 * the same when the blocks are).  keep_target as spr_attend_scheme_at.
 * Returns 0 (step: 1 while blocks remain) or a negative code. */
typedef struct {
  int i0, m;
  const uint8_t *mask_analog, *mask_ideal;
} spr_attend_rows;
int spr_attend_head_begin(const spr_config *c, int layer, int head, int trial, spr_attend_head *h,
                          spr_attend_ws *w, spr_head_result *res, double keep_target,
                          int analog_done);
int spr_attend_head_step(const spr_config *c, spr_attend_head *h, spr_attend_ws *w,
                         spr_head_result *res, spr_attend_rows *rows);
int spr_attend_head_end(const spr_config *c, spr_attend_head *h, spr_attend_ws *w,
                        spr_head_result *res);

/* Where a head's CPU time goes: every workspace adds the thread CPU
 * time of its calls to the stages they ran (exclusive): each call's thread
 * CPU time (two reads of the thread clock per call) shared among its
 * stages in proportion to their monotonic time (one cheap read per
 * switch, a few hundred per head). */
enum spr_stage {
  SPR_STAGE_WORKLOAD = 0, /* the workload's Q, K, V (the caller's, added with
                             spr_attend_ws_stage_add) */
  SPR_STAGE_IDEAL,        /* quantization, ideal scores and their histogram */
  SPR_STAGE_PROGRAM,      /* programming the arrays, comparator offsets */
  SPR_STAGE_ANALOG,       /* analog decisions, ideal masks, comparisons */
  SPR_STAGE_REFERENCE,    /* dense float reference, its ranks, the masses */
  SPR_STAGE_CODES,        /* the digital path's codes, packed keys */
  SPR_STAGE_SCORES,       /* the exact 8-bit (and Sanger's 4-bit) scores */
  SPR_STAGE_KNOBS,        /* the oracle's quantile, matched knobs */
  SPR_STAGE_LEDGER,       /* per-query ledger steps of every scheme */
  SPR_STAGE_SCHEME,       /* + scheme: its mask, fetch, recompute, metrics
                             (LeOPArd: its plane counts) */
  SPR_STAGE_N = SPR_STAGE_SCHEME + SPR_N_SCHEMES
};

/* Name of a stage ("analog decisions", "scheme topk"), NULL when out of
 * range. */
const char *spr_stage_name(int s);

/* acc[s] += the seconds workspace w spent in stage s, s < SPR_STAGE_N. */
void spr_attend_ws_stages(const spr_attend_ws *w, double *acc);
void spr_attend_ws_stage_add(spr_attend_ws *w, int s, double seconds);

/* CPU seconds of the calling thread (CLOCK_THREAD_CPUTIME_ID). */
double spr_attend_cpu_seconds(void);

/* Check, before any head runs, what the enabled schemes need of an
 * n x d head under c: dense_tiled a buffer that holds one query block
 * (digital/spr_tiled.h; the message names digital.buffer_bytes and the
 * minimum).  Returns 0 or SPR_EINVAL. */
int spr_attend_check(const spr_config *c, int n, int d);

/* The scheme is enabled by c (SPRINT and dense always are). */
int spr_attend_scheme_on(const spr_config *c, int scheme);

#endif
