/* spr_baselines.h - pruning masks of the sparse-attention baselines that
 * share SPRINT's masks-to-ledger path (scheme by scheme, sources and
 * defaults: docs/baselines.md).
 *
 * Every scheme writes an n x n bit-packed mask (spr_result.h: query i,
 * key j is bit (j % 8), least significant first, of byte
 * i * spr_mask_row_bytes(n) + j / 8; a set bit keeps the key; the padding
 * bits j >= n of a row's last byte are written as 0) and fills an optional
 * spr_bl_stats with the keep count and the operations the scheme needs to
 * PRODUCE the mask ("prediction cost"), for the energy ledger to price.
 *
 * Inputs are the head's float Q and K (n x d, row-major, finite).  Schemes
 * that score quantize them per tensor with spr_quant_sym (symmetric,
 * scale = max|x| / (2^(b-1) - 1)) to the widths of their parameters, and
 * work on the exact integer scores
 *     s_ij = sum_t q_it k_jt          ("score units" of that scheme)
 * computed exactly (float GEMM when max|q| max|k| d <= 2^24, where every
 * partial sum is an exactly representable integer; int64 loops otherwise).
 *
 *   dense      keep everything.
 *   oracle     keep iff s_ij >= theta (exact scores, no analog noise);
 *              spr_bl_oracle_calibrate picks theta for a target keep rate.
 *   top-k      per query the k largest s_ij; ties at the k-th value go to
 *              the lower key index, so exactly k keys are kept.
 *   Sanger     low-bit prediction: s_ij from 4-bit codes, logits
 *              x_ij = q_scale k_scale s_ij / sqrt(d), keep iff
 *              softmax_j(x_i)_j >= p_threshold, evaluated as
 *              exp(x_ij - max_l x_il) >= p_threshold * sum_l exp(x_il - max).
 *   LeOPArd    bit-serial keys, MSB first, with exact early termination
 *              (below); the mask equals the oracle's at the same widths and
 *              threshold, the cost is the bits processed.
 *   window     |i - j| <= half_width, or i or j a global token.
 *
 * Causal attention (docs/baselines.md section 5, docs/model.md section 6):
 * with the causal flag of a scheme's parameters (spr_bl_dense_causal for
 * dense) query i considers keys j <= i only.  Bits j > i of the mask are
 * 0, nothing is scored, ranked, normalised or counted for them, and every
 * count and rate below is over the P = n (n + 1) / 2 causal pairs in place
 * of the n^2 pairs:
 *   dense      keys 0 .. i;
 *   oracle     s_ij >= theta, j <= i (calibrated over the causal pairs);
 *   top-k      the k_i largest s_ij, j <= i: k_i = min(k, i + 1), or with
 *              k = 0, k_i = max(1, round(keep_fraction (i + 1)));
 *   Sanger     the softmax of row i over j <= i;
 *   LeOPArd    bit planes read for j <= i only (mask = the oracle's);
 *   window     |i - j| <= half_width and j <= i; a global query x attends
 *              to keys 0 .. x, a global key x is attended by queries
 *              i >= x.
 * With the flag 0 every scheme is exactly the non-causal one.
 *
 * LeOPArd bound.  A B-bit two's-complement key code is
 *     k = -2^(B-1) b_(B-1) + sum_{c=0}^{B-2} 2^c b_c,    b_c in {0, 1}.
 * After the m most significant bit planes (m = 1 .. B, the sign plane
 * first) the partial score and the unread low planes r = B - m are
 *     P_m = sum_t q_t (-2^(B-1) b_t,(B-1) + sum_{c=r}^{B-2} 2^c b_t,c)
 *     s - P_m = sum_t q_t sum_{c=0}^{r-1} 2^c b_t,c
 * The unread planes are all non-negative weights (only the sign plane is
 * negative and it is read first), and each term is maximal with every
 * bit 1 where q_t > 0 and 0 where q_t <= 0, so
 *     s <= P_m + U_m,   U_m = (2^r - 1) sum_t max(q_t, 0),
 * with equality for that key: the bound is exact (tight), not a margin.
 * The pair (i, j) stops after plane m when P_m + U_m < theta (then s <
 * theta: pruned); a pair that never stops reads all B planes and is kept
 * iff s = P_B >= theta.  Early termination therefore never changes a
 * decision.  At least one plane (the sign plane) is read per pair.
 *
 * Errors: every function returns 0 or a negative SPR_E* code with a
 * message (spr_errmsg) naming the function, the argument and its value.
 * Only spr_bl_ws_alloc allocates (and spr_bl_sanger_calibrate); nothing
 * prints or exits.  A workspace serves
 * one thread at a time; functions keep no other state.
 */
#ifndef SPR_BASELINES_H
#define SPR_BASELINES_H

#include <stddef.h>
#include <stdint.h>

struct spr_i8mat;

/* What one call produced and what the prediction cost.  Operation counts
 * are what the scheme's hardware performs to decide the mask, not what the
 * digital recompute of the survivors costs (the digital path counts that).
 * A count a scheme does not use is 0.  Per scheme (docs/baselines.md),
 * with P the pairs (n^2, or n (n + 1) / 2 causal):
 *   dense   none.
 *   oracle  mac_ops = P d (q_bits x k_bits), cmp_ops = P.
 *   top-k   mac_ops = P d, topk_inputs = P (the scores of each query's
 *           keys enter the selection engine).
 *   Sanger  mac_ops = P d (4 x 4 bits), cmp_ops = P - n (row maxima) +
 *           P (threshold), add_ops = P (x - max) + P - n (sums),
 *           mul_ops = P (logit scale) + n (p_threshold * sum),
 *           exp_ops = P (non-causal: P - n = n(n-1)).
 *   LeOPArd mac_ops = key_bits_processed * d with mac_k_bits = 1 (one
 *           key bit plane times a q_bits query element), add_ops =
 *           key_bits_processed (shift-accumulate of each plane's partial
 *           dot product) + n d (the sums of positive query codes) + n B
 *           (the per-query stopping levels theta - U_m), cmp_ops =
 *           key_bits_processed (one test per plane, the last one being
 *           the final decision); key bits read from memory =
 *           key_bits_processed * d.
 *   window  none (a static pattern). */
typedef struct {
  int n, d;                /* head shape (d = 0 for dense and window) */
  int causal;              /* 1: causal masks and counts (P = n (n + 1) / 2) */
  int64_t n_kept;          /* set bits of the mask */
  double keep_rate;        /* n_kept / P (n^2, or n (n + 1) / 2 causal) */
  float q_scale, k_scale;  /* real = scale * code of the quantized Q, K
                              (0 when the scheme does not quantize) */
  double threshold;        /* oracle, LeOPArd: theta in score units;
                              Sanger: p_threshold; otherwise 0 */
  int k;                   /* top-k: keys kept per query (causal: by the
                              last query, the most); otherwise 0 */
  int mac_q_bits, mac_k_bits; /* operand widths of mac_ops (0 if none) */
  int64_t mac_ops;         /* integer multiply-accumulates */
  int64_t add_ops;         /* additions and subtractions outside the MACs */
  int64_t mul_ops;         /* multiplications outside the MACs */
  int64_t exp_ops;         /* exponentials */
  int64_t cmp_ops;         /* comparisons */
  int64_t topk_inputs;     /* scores entering the top-k selection */
  int64_t key_bits_processed; /* LeOPArd: sum over (query, key) pairs of
                                 the key bit planes read (1 .. key_bits) */
  double mean_bits_per_key;   /* key_bits_processed / P */
  int64_t early_stops;     /* LeOPArd: pairs stopped before the last plane */
} spr_bl_stats;

/* Coarse bins of the quantile histogram (spr_bl_quantile). */
#define SPR_BL_QCOARSE 4096
/* Entries of Sanger's exponential table (score differences 0 .. 65536). */
#define SPR_BL_EXP_TAB 65536

/* The oracle's threshold for a keep rate without sorting the scores: a
 * two-pass histogram over integer scores in [-bound, bound] (fields are
 * internal).  Pass 1 counts the scores in SPR_BL_QCOARSE coarse bins of
 * 2^shift values; the bin where the count of scores >= a value crosses
 * the target is then counted value by value in pass 2, with the smallest
 * score above it.  The result is exactly spr_bl_oracle_calibrate's rule
 * (every distinct score a candidate, max + 1 keeps nothing, the nearest
 * count, ties to the lower threshold), at O(1) memory in n. */
typedef struct {
  int64_t lo;            /* -bound */
  int shift, pass, bin;  /* coarse bin = (s - lo) >> shift; the crossing bin */
  int64_t total;         /* scores counted in pass 1 */
  int64_t above;         /* scores above the crossing bin */
  int64_t above_min;     /* smallest s - lo above it (INT64_MAX: none) */
  int64_t coarse[SPR_BL_QCOARSE];
  int32_t sub[4 * SPR_BL_QCOARSE]; /* one call's counts (< 2^31: a call
                                      passes at most 2^31 - 1 scores) */
  int64_t *fine;         /* 2^shift counts of the crossing bin */
  int64_t fine_cap;
} spr_bl_quantile;

/* Scratch for heads of up to n tokens and d dimensions (about
 * 8 n^2 + 10 n d + 80 n bytes and 0.6 MB).  Fields are internal. */
typedef struct {
  int n, d;
  int8_t *qc, *kc, *kb; /* n x d: query codes, key codes, low key bits */
  int32_t *score;       /* n x n: exact scores */
  int32_t *dot;         /* n x n: LeOPArd's low-plane products */
  double *e;            /* 8 n: Sanger exponentials of eight rows */
  int64_t *qpos;        /* n: LeOPArd sum_t max(q_it, 0) */
  double *tab;          /* SPR_BL_EXP_TAB + 1: Sanger's exponentials */
  spr_bl_quantile *qh;  /* the oracle's quantile */
  struct spr_i8mat *pk;      /* the key codes, packed for exact products */
  struct spr_i8mat *plow[7]; /* LeOPArd: k mod 2^r, r = 1 .. 7 */
} spr_bl_ws;

/* Allocate ws for n >= 1 tokens and d >= 1 dimensions.  Returns 0,
 * SPR_EINVAL (bad shape, or n^2 too large to address) or SPR_ENOMEM; on
 * failure ws holds nothing to free (spr_bl_ws_free on it is safe). */
int spr_bl_ws_alloc(spr_bl_ws *ws, int n, int d);

/* Free what spr_bl_ws_alloc allocated and zero ws.  NULL is a no-op. */
void spr_bl_ws_free(spr_bl_ws *ws);

/* Dense: every key kept.  mask: n * spr_mask_row_bytes(n) bytes.  st may
 * be NULL.  Returns 0 or SPR_EINVAL (NULL mask, n < 1). */
int spr_bl_dense(int n, uint8_t *mask, spr_bl_stats *st);

/* Causal dense: row i keeps keys 0 .. i (bits j > i are 0), keep_rate 1
 * over the n (n + 1) / 2 causal pairs.  Errors as spr_bl_dense. */
int spr_bl_dense_causal(int n, uint8_t *mask, spr_bl_stats *st);

/* ---- oracle threshold ------------------------------------------------ */

typedef struct {
  int q_bits, k_bits; /* code widths of Q and K, 2..8 (8, 8) */
  double threshold;   /* theta, score units of q_bits x k_bits codes;
                         finite (0; calibrate it for a keep rate) */
  int causal;         /* 1: keys j <= i only (0) */
} spr_bl_oracle_params;

void spr_bl_oracle_default(spr_bl_oracle_params *p);

/* keep iff s_ij >= threshold.  Q, K: n x d floats.  st may be NULL.
 * Returns 0 or SPR_EINVAL: NULL argument, n < 1, d < 1, n or d beyond the
 * workspace, bits outside 2..8, threshold not finite, Q or K not finite. */
int spr_bl_oracle(const spr_bl_oracle_params *p, const float *Q,
                  const float *K, int n, int d, spr_bl_ws *ws, uint8_t *mask,
                  spr_bl_stats *st);

/* The threshold (a score value, or max score + 1 to keep nothing) whose
 * keep rate under p's widths is nearest keep_rate in [0, 1]; ties go to
 * the lower threshold, which keeps more (as spr_thr_pick).  With
 * p->causal the scores and the rate are those of the n (n + 1) / 2 causal
 * pairs.  p->threshold is ignored.  The same threshold serves LeOPArd at the same widths (its
 * mask is the oracle's).  achieved may be NULL.  Two passes of a
 * histogram over the scores (spr_bl_quantile), no sort.  Returns 0 or SPR_EINVAL (as spr_bl_oracle, and keep_rate
 * outside [0, 1]). */
int spr_bl_oracle_calibrate(const spr_bl_oracle_params *p, const float *Q,
                            const float *K, int n, int d, double keep_rate,
                            spr_bl_ws *ws, double *threshold,
                            double *achieved);

/* ---- top-k per query (SpAtten-like) -------------------------------- */

typedef struct {
  int q_bits, k_bits;   /* code widths, 2..8 (8, 8) */
  int k;                /* keys kept per query, 1..n; 0 = from
                           keep_fraction (0) */
  double keep_fraction; /* used when k = 0: k = max(1, round(keep_fraction
                           * n)), keep_fraction in (0, 1] (0.15) */
  int causal;           /* 1: query i ranks keys 0 .. i and keeps k_i =
                           min(k, i + 1) of them, or with k = 0 k_i =
                           max(1, round(keep_fraction * (i + 1))) (0) */
} spr_bl_topk_params;

void spr_bl_topk_default(spr_bl_topk_params *p);

/* The k keys of largest s_ij per query; among keys tied at the k-th
 * largest value the lower indices are kept, so every row keeps exactly k.
 * Returns 0 or SPR_EINVAL: as spr_bl_oracle, and k outside 0..n,
 * keep_fraction outside (0, 1] when k = 0. */
int spr_bl_topk(const spr_bl_topk_params *p, const float *Q, const float *K,
                int n, int d, spr_bl_ws *ws, uint8_t *mask, spr_bl_stats *st);

/* ---- Sanger-like low-bit prediction -------------------------------- */

typedef struct {
  int q_bits, k_bits;   /* prediction code widths, 2..8 (4, 4) */
  double p_threshold;   /* keep iff predicted probability >= this, in
                           (0, 1] (2e-3) */
  int causal;           /* 1: row i's softmax over keys j <= i only (0) */
} spr_bl_sanger_params;

void spr_bl_sanger_default(spr_bl_sanger_params *p);

/* Predicted softmax (equations above, double precision) thresholded at
 * p_threshold.  Returns 0 or SPR_EINVAL: as spr_bl_oracle, and
 * p_threshold outside (0, 1]. */
int spr_bl_sanger(const spr_bl_sanger_params *p, const float *Q,
                  const float *K, int n, int d, spr_bl_ws *ws, uint8_t *mask,
                  spr_bl_stats *st);

/* ---- LeOPArd-like bit-serial early termination ---------------------- */

typedef struct {
  int q_bits;         /* query code width, 2..8 (8), bit-parallel */
  int k_bits;         /* key code width B, 2..8 (8), read MSB first */
  double threshold;   /* theta, score units of q_bits x k_bits codes;
                         finite (0; calibrate with spr_bl_oracle_calibrate) */
  int causal;         /* 1: only the pairs j <= i are processed (0) */
} spr_bl_leopard_params;

void spr_bl_leopard_default(spr_bl_leopard_params *p);

/* Bit-serial decision with the exact bound above; fills key_bits_processed,
 * mean_bits_per_key and early_stops.  Returns 0 or SPR_EINVAL: as
 * spr_bl_oracle. */
int spr_bl_leopard(const spr_bl_leopard_params *p, const float *Q,
                   const float *K, int n, int d, spr_bl_ws *ws, uint8_t *mask,
                   spr_bl_stats *st);

/* ---- sliding window plus global tokens (SALO / Longformer-like) ----- */

typedef struct {
  int half_width;        /* keep |i - j| <= half_width, >= 0 (32) */
  int n_global;          /* global tokens, 0..n (1) */
  const int *global_pos; /* their positions, n_global distinct values in
                            0..n-1; NULL = tokens 0 .. n_global-1 (NULL:
                            token 0, [CLS]).  Not owned. */
  int causal;            /* 1: and j <= i (0) */
} spr_bl_window_params;

void spr_bl_window_default(spr_bl_window_params *p);

/* keep iff |i - j| <= half_width, or i is global (it attends to every
 * key), or j is global (every query attends to it); with p->causal, and
 * j <= i.  Returns 0 or
 * SPR_EINVAL: NULL p or mask, n < 1, half_width < 0, n_global outside
 * 0..n, a position outside 0..n-1 or repeated. */
int spr_bl_window(const spr_bl_window_params *p, int n, uint8_t *mask,
                  spr_bl_stats *st);

/* ---- keep-rate matching (docs/baselines.md section 6) ----------------
 * Each searches the scheme's own knob for the keep rate nearest
 * keep_rate in [0, 1] over the head's pairs (n^2, or n (n + 1) / 2
 * causal); equally near candidates go to the one that keeps more (as
 * spr_bl_oracle_calibrate).  achieved (may be NULL) gets the keep rate of
 * the result.  The oracle's and LeOPArd's threshold: spr_bl_oracle_calibrate.
 * Errors: SPR_EINVAL naming the function and argument. */

/* Top-k's keep_fraction (k = 0): the kept count sum_i k_i(f) is a step
 * function of f; bisection finds the step crossing the target. */
int spr_bl_topk_match(int n, int causal, double keep_rate, double *fraction, double *achieved);

/* Sanger's p_threshold: the predicted probabilities of every pair (as
 * spr_bl_sanger computes them) sorted; a threshold midway between the
 * K-th and (K+1)-th largest keeps K pairs; the achieved rate is counted
 * with spr_bl_sanger's own rule at the chosen threshold.  Allocates the
 * n^2 probabilities.  Errors as spr_bl_sanger, keep_rate outside [0, 1],
 * SPR_ENOMEM. */
int spr_bl_sanger_calibrate(const spr_bl_sanger_params *p, const float *Q, const float *K, int n,
                            int d, double keep_rate, spr_bl_ws *ws, double *p_threshold,
                            double *achieved);

/* The window's half_width in 0 .. n (p->half_width is ignored; globals and
 * causal as in p): the kept count grows with the width, bisection.  Errors
 * as spr_bl_window and keep_rate outside [0, 1]. */
int spr_bl_window_match(const spr_bl_window_params *p, int n, double keep_rate, int *half_width,
                        double *achieved);

/* ---- row kernels on exact scores (shared score matrices, row blocks) ----
 * S holds the exact integer scores of queries i0 .. i0 + m - 1 (row r =
 * query i0 + r, rows lds int32 apart, at least the keys the rows see);
 * masks have spr_mask_row_bytes(n) bytes per row, written whole (bits
 * beyond a row's keys 0).  Blocks of a head in order give exactly the
 * masks and counts of the whole-head functions, which call these. */

/* keep iff S_ij >= theta (oracle, LeOPArd's mask); returns the keeps. */
int64_t spr_bl_threshold_rows(const int32_t *S, size_t lds, int i0, int m, int n, int causal,
                              double theta, uint8_t *mask);

/* Top-k of the rows (k and keep_fraction as spr_bl_topk_params; k already
 * checked); cand: n int32 of scratch.  Returns the keeps. */
int64_t spr_bl_topk_rows(const int32_t *S, size_t lds, int i0, int m, int n, int causal, int k,
                         double keep_fraction, uint8_t *mask, int32_t *cand);

/* tab[t] = exp(c * (double)(-t)), t < len: Sanger's exponentials of every
 * score difference, bit for bit those of exp(c (s - max)). */
void spr_bl_exp_table(double c, int64_t len, double *tab);

/* Sanger's decision on the 4-bit scores of the rows: logit scale c =
 * q_scale k_scale / sqrt(d), probabilities from tab (len entries; NULL or
 * beyond: exp itself), row sums in key order (eight rows side by side,
 * each in its own order); e: 8 n doubles of scratch.  Returns the keeps. */
int64_t spr_bl_sanger_rows(const int32_t *S, size_t lds, int i0, int m, int n, int causal,
                           double c, double p_threshold, const double *tab, int64_t tab_len,
                           double *e, uint8_t *mask);

/* LeOPArd's planes of the rows, counted without deciding pair by pair: a
 * pair reads plane m (m = 1 .. B) iff it has not stopped at an earlier
 * one, and since P_m + U_m is the largest score of any key sharing the m
 * top bits it falls with m, so
 *   planes read = 1 + #{m < B : P_m + U_m >= theta},
 *   P_m = S - L_r,  L_r = q . (k mod 2^r),  r = B - m,
 * one exact product (spr_i8mat_mul of plow[r - 1], from
 * spr_bl_leopard_pack) and one vectorised count per unread plane; a pair
 * stops early iff P_(B-1) + U_(B-1) < theta.  q: the block's query codes
 * (m x d), qpos their sums of positive codes; L: m x n int32 scratch.
 * Adds to *bits and *stops.  Returns 0 or spr_i8mat_mul's error. */
int spr_bl_leopard_rows(const int8_t *q, int d, const int64_t *qpos, const int32_t *S, size_t lds,
                        int i0, int m, int n, int causal, int B, double theta,
                        struct spr_i8mat *const *plow, int32_t *L, int64_t *bits, int64_t *stops);

/* Pack k mod 2^r (r = 1 .. B - 1) of the key codes kc (n x d) into
 * plow[r - 1]; scratch: n d bytes. */
int spr_bl_leopard_pack(const int8_t *kc, int n, int d, int B, struct spr_i8mat *const *plow,
                        int8_t *scratch);

/* The quantile histogram: alloc for scores up to max_bound, begin for a
 * head's bound (max|q| max|k| d), rows in pass 1, next (1: run the rows
 * again, pass 2), result (threshold and achieved keep rate, as
 * spr_bl_oracle_calibrate).  Errors: SPR_EINVAL (bound outside [0, 2^30]
 * or beyond the allocation), SPR_ENOMEM. */
int spr_bl_quantile_alloc(spr_bl_quantile **out, int64_t max_bound);
void spr_bl_quantile_free(spr_bl_quantile *h);
int spr_bl_quantile_begin(spr_bl_quantile *h, int64_t bound);
void spr_bl_quantile_rows(spr_bl_quantile *h, const int32_t *S, size_t lds, int i0, int m, int n,
                          int causal);
int spr_bl_quantile_next(spr_bl_quantile *h, double keep_rate);
void spr_bl_quantile_result(const spr_bl_quantile *h, double keep_rate, double *threshold,
                            double *achieved);

#endif
