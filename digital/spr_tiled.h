/* spr_tiled.h - dense attention tiled over query blocks (the `dense_tiled`
 * scheme; docs/energy.md section 10), the way FlashAttention (Dao et al.,
 * NeurIPS 2022) reads each K/V tile once per block of queries instead of
 * once per query.
 *
 * Buffer (B = buffer_bytes) of one head (n tokens, d dimensions):
 *   token_bytes = ceil(d key_bits / 8) + ceil(d value_bits / 8)   one key and value
 *   q_bytes     = ceil(d query_bits / 8)      a query's recompute codes
 *   acc_bytes   = 4 d + 8                     its accumulators, fp32: the
 *                                             output o (d), the running max
 *                                             m and sum l (FlashAttention's)
 *   the block of Bq queries and one K/V tile of Bk tokens must fit:
 *     Bq (q_bytes + acc_bytes) + Bk token_bytes <= B
 *   Bq = min(n, floor((B - Bk token_bytes) / (q_bytes + acc_bytes))) >= 1.
 * Bk is tile_tokens, or with tile_tokens = 0 the power of two (1 .. n, and
 * n itself) whose head is cheapest in energy under the ledger's prices
 * (ties: the larger tile).  A buffer too small for one query and one tile
 * is refused, naming digital.buffer_bytes and the minimum.
 *
 * Schedule: blocks b of queries [i0, i1) = [b Bq, min(n, (b+1) Bq)) in
 * order; for each, the tiles t of keys [j0, j1) = [t Bk, min(n, (t+1) Bk))
 * that its queries see (causal: j0 <= i1 - 1), in order; one ledger step
 * per (block, tile), whose memory stage fetches the tile while the compute
 * stage works on the previous step.  Query i sees k_it keys of tile t: all
 * j1 - j0, or causal max(0, min(j1, i + 1) - j0).  Per step:
 *   fetched tokens   f = j1 - j0, causal min(j1, i1) - j0 (nothing beyond
 *                        the block's last query is fetched)
 *   reram_bits_read    = f token_bytes 8
 *   sram_words_written = f tw                            (the tile; tw = ceil(token_bytes / 8))
 *                      + [t = 0] (i1 - i0) qw            (the block's queries; qw = ceil(q_bytes / 8))
 *                      + a aw                            (accumulators written back; aw = ceil(acc_bytes / 8))
 *   sram_words_read    = sum_i k_it tw + a qw + a' aw    (keys and values, the queries,
 *                                                          accumulators read back)
 *                      + [last tile of the block] (i1 - i0) aw   (the final output read)
 *   score_macs         = sum_i k_it d
 *   exps               = sum_i k_it + a'                 (a' = queries with k_it > 0 and t > 0:
 *                                                          the correction exp(m_old - m_new))
 *   v_macs             = sum_i k_it d + a' (d + 1)       (the V product; rescaling o and l)
 *   divs               = [last tile of the block] (i1 - i0) d   (o / l once per query)
 * with a = queries with k_it > 0.  No scores, probabilities or masks are
 * held beyond the current key (the online softmax of FlashAttention-2).
 * The result (the attention output) is dense attention's.
 * Nothing here allocates, prints or exits; errors are SPR_EINVAL with a
 * message naming the argument or key and its value. */
#ifndef SPR_TILED_H
#define SPR_TILED_H

#include <stdint.h>

#include "spr_ledger.h"
#include "spr_params.h"

typedef struct {
  int64_t buffer_bytes; /* on-chip buffer (digital.buffer_bytes) */
  int key_bits;         /* bits of a key element fetched (8) */
  int value_bits;       /* bits of a value element (digital.value_bits) */
  int query_bits;       /* bits of a query's recompute codes
                           (digital.recompute_query_bits) */
  int tile_tokens;      /* Bk; 0 = the cheapest power of two */
  int causal;           /* query i sees keys j <= i only */
} spr_tiled_params;

typedef struct {
  int n, d, causal;
  int bq, bk;            /* query block, K/V tile, tokens */
  int blocks;            /* ceil(n / bq) */
  int64_t token_bytes, q_bytes, acc_bytes;
  int64_t tw, qw, aw;    /* 64-bit words of a token, a query, an accumulator */
  int64_t buffer_bytes;
} spr_tiled_plan;

/* The parameters of configuration c (digital keys, baselines.tile_tokens
 * and workload.causal). */
void spr_tiled_params_of(const spr_config *c, spr_tiled_params *p);

/* Smallest buffer (bytes) that holds one query with its accumulators and
 * a tile of Bk tokens (Bk = tile_tokens, or 1 when it is 0). */
int64_t spr_tiled_min_bytes(const spr_tiled_params *p, int d);

/* The plan of an n x d head (model above); with tile_tokens = 0 the tile
 * is chosen by pricing every candidate's head with e.  Returns 0 or
 * SPR_EINVAL (n < 1, d < 1, widths outside 1..32 (key 0..32), a tile
 * outside 1..n, a buffer below spr_tiled_min_bytes: the message names
 * digital.buffer_bytes, its value and the minimum). */
int spr_tiled_plan_make(const spr_tiled_params *p, const spr_energy_params *e, int n, int d,
                        spr_tiled_plan *out);

/* Tiles block b steps through: ceil(n / bk), or causal the tiles up to its
 * last query. */
int spr_tiled_block_tiles(const spr_tiled_plan *pl, int b);

/* Counts of step (block b, tile t), t < spr_tiled_block_tiles(pl, b), into
 * *q (overwritten; buffer_bytes set); *fetched, if not NULL, gets the
 * tokens fetched and *uses the (query, key) pairs scored. */
void spr_tiled_step_counts(const spr_tiled_plan *pl, int b, int t, spr_ledger_counts *q,
                           int64_t *fetched, int64_t *uses);

#endif
