/* spr_digital.h - the digital path of one attention head: survivor fetch
 * into an on-chip buffer with reuse between queries, exact recompute of the
 * surviving scores, softmax and V product, dense exact attention for
 * reference, and accuracy metrics (definitions and examples: docs/digital.md).
 *
 * Masks are the bit-packed n x n masks of spr_result.h: query i, key j is
 * bit (j % 8), least significant first, of byte i * spr_mask_row_bytes(n) +
 * j / 8; a set bit means key j survives for query i (j is in P_i).  Padding
 * bits (j >= n) of a row's last byte are ignored.
 *
 * Buffer model (spr_dig_fetch).  A "token" is key j and value j together:
 *   token_bytes = ceil(d key_bits / 8) + ceil(d value_bits / 8)
 *   C           = floor(buffer_bytes / token_bytes)      (capacity, tokens)
 * Queries are served in order i = 0 .. n-1.  Query i needs every j in P_i.
 * B_(i-1) is the set of resident tokens before query i (B_(-1) empty).
 *   hit   j in P_i and j in B_(i-1): read from the buffer, no ReRAM access;
 *   miss  j in P_i and j not in B_(i-1): fetched from ReRAM ("fetch");
 *         it is kept if a slot is free (or, under LRU, can be freed),
 *         otherwise streamed: fetched, used and dropped ("overflow").
 * Both policies first pin the hits (they stay resident for query i), then
 * take the misses in ascending key order; a miss is streamed only when all
 * C slots hold tokens of P_i, so per query
 *   |B_i intersect P_i| = min(|P_i|, C),  overflow_i = max(0, |P_i| - C),
 * and the streamed tokens are the misses with the largest key indices.
 *   SPR_DIG_SPRINT  B_i is a subset of P_i: before the misses of query i,
 *                   every token of B_(i-1) not in P_i is evicted, so the
 *                   buffer holds exactly the previous query's resident
 *                   survivors that are needed again.  When |P_i| <= C for
 *                   every i, fetches_i = |P_i AND NOT P_(i-1)| (SPRINT).
 *   SPR_DIG_LRU     tokens stay across queries up to C; a miss with no
 *                   free slot evicts the resident token not in P_i with the
 *                   smallest (last query that used it, key index).
 * Streamed tokens never occupy the buffer, so occupancy <= C always.
 *
 * Recompute (spr_dig_attend), for query i with survivors P_i:
 *   s_ij = q_scale k_scale (sum_t q_it k_jt) / sqrt(d)     (integer dot, exact)
 *   p_ij = exp(s_ij - max_{l in P_i} s_il) / sum_{l in P_i} exp(s_il - max)
 *   o_i  = sum_{j in P_i} p_ij v_scale v_j
 * the dot products exact, the rest in float (spr_dig_recompute_rows).
 * A query with no survivor (P_i empty) gets o_i = 0 and counts as empty.
 *
 * Causal attention (docs/model.md section 6, docs/digital.md): query i
 * attends to keys j <= i only.  The fetch and the recompute follow the
 * mask, so a causal mask (bits j > i all 0) is all they need; dense exact
 * attention has its causal form (spr_dig_dense_causal) and the metrics a
 * causal flag (spr_dig_metric_params.causal).
 *
 * Errors: every function returns 0 or a negative SPR_E* code with a
 * message (spr_errmsg) naming the argument and its value.  Nothing here
 * allocates except spr_dig_ws_alloc; nothing prints or exits.  A
 * workspace serves one thread at a time.
 */
#ifndef SPR_DIGITAL_H
#define SPR_DIGITAL_H

#include <stddef.h>
#include <stdint.h>

/* Buffer policies (spr_dig_fetch_params.policy). */
enum { SPR_DIG_SPRINT = 0, SPR_DIG_LRU = 1 };

/* "sprint", "lru", or NULL for an unknown policy. */
const char *spr_dig_policy_name(int policy);

typedef struct {
  int64_t buffer_bytes; /* on-chip buffer capacity, bytes (16384: S-SPRINT;
                           32768 M-, 65536 L-SPRINT) */
  int key_bits;         /* bits per key element fetched, 0..32 (8: all bits;
                           0: values only, the scores being known) */
  int value_bits;       /* bits per value element fetched, 1..32 (8) */
  int policy;           /* SPR_DIG_SPRINT (default) or SPR_DIG_LRU */
} spr_dig_fetch_params;

void spr_dig_fetch_default(spr_dig_fetch_params *p);

/* Counters of one head (all uses are (query, surviving key) pairs). */
typedef struct {
  int64_t token_bytes;     /* key + value bytes of one token */
  int64_t capacity_tokens; /* C = floor(buffer_bytes / token_bytes) */
  int64_t uses;            /* sum_i |P_i| = hits + fetches */
  int64_t hits;            /* uses served from the buffer */
  int64_t fetches;         /* misses: uses read from ReRAM (streamed included) */
  int64_t overflow_tokens; /* misses streamed past a full buffer (subset of
                              fetches) = sum_i max(0, |P_i| - C) */
  int64_t cold_fetches;    /* fetches of query 0 (empty buffer) */
  int64_t bytes_fetched;   /* fetches * token_bytes */
  int64_t bytes_reused;    /* hits * token_bytes */
  int64_t peak_tokens;     /* max_i |B_i| <= capacity_tokens */
  int64_t peak_bytes;      /* peak_tokens * token_bytes <= buffer_bytes */
  double new_fetch_frac;   /* mean over i >= 1 of fetches_i / n (0 if n = 1) */
} spr_dig_fetch_stats;

typedef struct {
  int64_t survivors;     /* sum_i |P_i|: scores recomputed, exponentials */
  int64_t empty_queries; /* queries with P_i empty (output row zero) */
} spr_dig_attend_stats;

typedef struct {
  int top_k;  /* k of the top-k recall, 1..n (5) */
  int causal; /* 1: query i ranks keys 0 .. i only (top-1 over j <= i,
                 top-k over k_i = min(top_k, i + 1) keys, mass over
                 j <= i); P_dense from spr_dig_dense_causal (0) */
} spr_dig_metric_params;

void spr_dig_metric_default(spr_dig_metric_params *p);

/* Accuracy of one head against dense exact attention (docs/digital.md). */
typedef struct {
  double rel_fro;       /* ||O - O_dense||_F / ||O_dense||_F (0 if both are
                           zero, +inf if only O_dense is) */
  double cos_mean;      /* mean over queries of cos(o_i, o_dense_i) */
  double cos_min;       /* worst (smallest) per-query cosine */
  int cos_min_query;    /* its query (lowest index on ties) */
  double mass_retained; /* mean over i of sum_{j in P_i} P_dense[i][j] */
  double top1_recall;   /* share of queries whose dense top-1 key survives */
  double topk_recall;   /* mean over i of |top-k(i) intersect P_i| / k
                           (causal: / k_i, k_i = min(k, i + 1)) */
  int top_k;            /* the k used */
} spr_dig_accuracy;

/* Scratch for heads of up to n tokens of d dimensions.  The per-query
 * counts q_hits[i], q_fetches[i] and q_overflow[i] hold the result of the
 * last spr_dig_fetch (for latency models that overlap fetch and compute);
 * a fetch in row blocks (spr_dig_fetch_begin/rows/end) keeps its buffer
 * between blocks here, so one workspace serves one such fetch at a time.
 * Fields are internal except q_hits, q_fetches and q_overflow. */
typedef struct {
  int n, d;
  int *idx;        /* n: survivors of the current query, ascending */
  int *buf;        /* n: resident tokens (SPRINT) */
  int *prev, *next;/* n: LRU list links, -1 = none */
  uint8_t *res;    /* n: resident flags (LRU) */
  uint64_t *resw;  /* ceil(n / 64): resident bitset (SPRINT) */
  int *heap;       /* n: top-k selection */
  double *acc;     /* d: output accumulator */
  float *xs, *ws;  /* n: survivor logits, then their exponentials */
  float *rowf;     /* n: per-row factors of a block */
  float *facc;     /* d: float output accumulator */
  float *vf;       /* n x d: value codes as floats (spr_dig_attend) */
  int32_t *sv;     /* n: survivor scores (spr_dig_attend) */
  int *q_hits;     /* n: hits of query i (last spr_dig_fetch) */
  int *q_fetches;  /* n: fetches of query i */
  int *q_overflow; /* n: streamed misses of query i */
  /* a fetch in progress (spr_dig_fetch_begin .. end) */
  int f_n, f_next, f_nbuf, f_head, f_tail;
  int64_t f_cap, f_occ;
  double f_new_sum;
} spr_dig_ws;

/* Allocate ws for n >= 1 tokens, d >= 1 dimensions.  Returns 0, SPR_EINVAL
 * (bad shape) or SPR_ENOMEM; on failure ws holds nothing to free (but
 * spr_dig_ws_free on it is safe). */
int spr_dig_ws_alloc(spr_dig_ws *ws, int n, int d);

/* Free what spr_dig_ws_alloc allocated and zero ws.  NULL is a no-op. */
void spr_dig_ws_free(spr_dig_ws *ws);

/* Simulate the buffer over the n queries of mask (n x n, bit-packed) for
 * head dimension d under p (model above), filling *out and ws->q_*.
 * Returns 0 or SPR_EINVAL: NULL argument, n < 1, d < 1, key_bits outside
 * 0..32 or value_bits outside 1..32, unknown policy, buffer_bytes smaller than one
 * token, or n or d beyond the workspace. */
int spr_dig_fetch(const spr_dig_fetch_params *p, const uint8_t *mask, int n,
                  int d, spr_dig_fetch_stats *out, spr_dig_ws *ws);

/* Exact attention over the survivors of mask (equations above).
 * q, k, v: n x d signed codes (row-major; any width up to 8 bits: the
 * recompute uses the codes it is given), real value = scale * code;
 * scales finite and > 0.  O: n x d floats, overwritten.  st: optional
 * (NULL allowed).  Returns 0 or SPR_EINVAL (NULL argument, n < 1, d < 1,
 * bad scale, n or d beyond the workspace). */
int spr_dig_attend(const int8_t *q, float q_scale, const int8_t *k,
                   float k_scale, const int8_t *v, float v_scale,
                   const uint8_t *mask, int n, int d, float *O,
                   spr_dig_attend_stats *st, spr_dig_ws *ws);

/* Dense exact attention in float from float Q, K, V (n x d each):
 *   P = softmax_rows(Q K^T / sqrt(d))     (GEMM; exp (spr_vexpf) and the row
 *                                          sum in float)
 *   O = P V                               (GEMM)
 * P: n x n floats, O: n x d floats, both caller-owned and overwritten.
 * Returns 0 or SPR_EINVAL (NULL argument, n < 1, d < 1, a score not
 * finite, naming query and key). */
int spr_dig_dense(const float *Q, const float *K, const float *V, int n, int d,
                  float *P, float *O);

/* Dense exact causal attention: as spr_dig_dense with row i's softmax over
 * keys j <= i only,
 *   P[i][j] = exp(s_ij - max_{l <= i} s_il) / sum_{l <= i} exp(s_il - max)
 * for j <= i and P[i][j] = 0 for j > i, O = P V.  Only the scores j <= i
 * are checked for finiteness (every query and key row enters one). */
int spr_dig_dense_causal(const float *Q, const float *K, const float *V, int n,
                         int d, float *P, float *O);

/* Accuracy of O (n x d, from spr_dig_attend) against O_dense and P_dense
 * (from spr_dig_dense) for mask.  Top-k ranks keys by P_dense descending,
 * ties to the lower key index; with p->causal only keys j <= i are ranked
 * and summed (P_dense from spr_dig_dense_causal).  Cosine of a zero vector: 1 if both rows
 * are zero, else 0.  Returns 0 or SPR_EINVAL (NULL argument, n < 1,
 * d < 1, top_k outside 1..n, n beyond the workspace). */
int spr_dig_metrics(const spr_dig_metric_params *p, const float *O,
                    const float *O_dense, const float *P_dense,
                    const uint8_t *mask, int n, int d, spr_dig_accuracy *out,
                    spr_dig_ws *ws);

/* ---- row blocks (long sequences, shared score matrices) ------------------
 *
 * The functions below take a block of queries i0 .. i0 + m - 1 of a head of
 * n tokens: every row argument points at the block's first row (query i0),
 * masks have spr_mask_row_bytes(n) bytes per row.  Processing the blocks of
 * a head in order gives exactly the results of the whole-head functions
 * above (the same counts, and the same per-row arithmetic). */

/* The fetch of spr_dig_fetch in row blocks: begin (checks p and clears
 * the buffer and *out), then rows for i0 = 0, m0, m0 + m1, ... in order
 * (per-query counts into ws->q_hits[i] etc., absolute i), then end (the
 * totals and ratios of *out).  The buffer between blocks stays in ws.
 * Errors as spr_dig_fetch, and SPR_EINVAL for a block out of order. */
int spr_dig_fetch_begin(const spr_dig_fetch_params *p, int n, int d, spr_dig_fetch_stats *out,
                        spr_dig_ws *ws);
int spr_dig_fetch_rows(const spr_dig_fetch_params *p, const uint8_t *mask, int i0, int m,
                       spr_dig_fetch_stats *out, spr_dig_ws *ws);
int spr_dig_fetch_end(spr_dig_fetch_stats *out, spr_dig_ws *ws);

/* A row's largest score and where it is: arg = the first key holding it
 * when no other key does, -1 - that key when others tie with it. */
typedef struct {
  int32_t max, arg;
} spr_dig_rowmax;

/* The recompute of spr_dig_attend from exact integer scores: S (m rows of
 * at least n int32, rows lds apart) holds sum_t q_it k_jt of the block's
 * queries, alpha = q_scale k_scale / sqrt(d), vf the n x d value codes as
 * floats.  Per query, in float:
 *   p_ij = exp(alpha (S_ij - max_{l in P_i} S_il))   (spr_vexpf, < 1 ulp)
 *   z_i  = sum_{j in P_i} p_ij                         (16 interleaved sums)
 *   o_i  = (v_scale / z_i) sum_{j in P_i} p_ij vf_j    (float, ascending j)
 * (pbuf given: the p_ij in pbuf (m x n floats) and the sum as one GEMM
 * P V, the faster way for rows keeping more than about a quarter of their
 * keys; pbuf NULL: a sum over each row's survivors).  E and emax
 * (may be NULL): the block's shared exponentials (spr_dig_exp_rows).  Against the
 * exact result (double, tests/test_digital.c) o_i is within 1e-5 of
 * max_j |o_ij| for n <= 4096.  O: m x d floats; st accumulates survivors
 * and empty queries (may be NULL).  Returns 0 or SPR_EINVAL (NULL
 * argument, shape beyond the workspace, bad scale). */
int spr_dig_recompute_rows(const int32_t *S, size_t lds, float alpha, const uint8_t *mask,
                           int i0, int m, int n, const float *vf, int d, float v_scale,
                           const float *E, const spr_dig_rowmax *emax, float *O,
                           spr_dig_attend_stats *st, float *pbuf, spr_dig_ws *ws);

/* The exponentials of whole rows that several recomputes of one block
 * share: for each row r (query i0 + r, keys j < nk, nk = n or i + 1 when
 * causal) emax[r].max = max_j S_rj (and its key, emax[r].arg) and
 * E_rj = exp(alpha (S_rj - emax[r].max)) (spr_vexpf; E has rows n apart,
 * entries at j >= nk untouched).  spr_dig_recompute_rows given E and emax
 * takes the exponentials of a row that keeps its maximum (a key holding
 * emax[r].max survives: one mask bit when the maximum is unique) from E
 * instead of computing them: the same floats, summed in the same order,
 * so the result is bit for bit the one without E.  Other rows compute
 * their own.  Returns 0 or SPR_EINVAL. */
int spr_dig_exp_rows(const int32_t *S, size_t lds, float alpha, int i0, int m, int n, int causal,
                     float *E, spr_dig_rowmax *emax);

/* Dense exact attention of queries i0 .. i0 + m - 1 (causal: keys j <= i):
 * P (m x n floats: row i's softmax of Q_i K^T / sqrt(d), float exp of
 * spr_vexpf, 0 beyond a causal row) and O = P V (m x d).  Errors as
 * spr_dig_dense. */
int spr_dig_dense_rows(const float *Q, const float *K, const float *V, int n, int d, int causal,
                       int i0, int m, float *P, float *O);

/* The dense top keys of queries i0 .. i0 + m - 1 for the recall metrics:
 * top[r k + t], t < k_i = min(k, keys of query i), the keys of the k_i
 * largest P[r][j] (ties to the lower key), best first; -1 beyond k_i.
 * Computed once per head, shared by every scheme's metrics.  Returns 0
 * or SPR_EINVAL (k outside 1..n, NULL argument). */
int spr_dig_rank_rows(const float *P, int i0, int m, int n, int k, int causal, int *top,
                      spr_dig_ws *ws);

/* sum_{j < nk, bit j of row set} p[j] in double: the softmax mass a mask
 * row keeps (full 64-key words in 8 partial sums, the rest in key order;
 * the same order on every machine). */
double spr_dig_mask_sum(const float *p, const uint8_t *row, int nk);

/* Running sums of spr_dig_metrics over row blocks (in row order). */
typedef struct {
  double num, den, cos_sum, cos_min, mass, top1, topk;
  int cos_arg, rows;
} spr_dig_metric_acc;

void spr_dig_metric_acc_init(spr_dig_metric_acc *a);

/* Add queries i0 .. i0 + m - 1 to a: O, O_dense (m x d), P_dense (m x n),
 * top (m x p->top_k, spr_dig_rank_rows) and the mask rows.  The mass is
 * summed over the survivors in ascending key order, as spr_dig_metrics.
 * Returns 0 or SPR_EINVAL (NULL argument, top_k outside 1..n). */
int spr_dig_metrics_rows(const spr_dig_metric_params *p, const float *O, const float *O_dense,
                         const float *P_dense, const int *top, const uint8_t *mask, int i0,
                         int m, int n, int d, spr_dig_metric_acc *a);

/* The accuracy of a head of n queries from its sums. */
void spr_dig_metrics_end(const spr_dig_metric_acc *a, int n, int top_k, spr_dig_accuracy *out);

#endif
