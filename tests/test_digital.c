/* test_digital.c - survivor fetch and buffer reuse (both policies) on
 * hand-computed masks and against brute-force buffer simulations written
 * here; exact recompute against a brute-force softmax; dense attention
 * against a closed form; accuracy metrics against hand-computed values;
 * every error path. */
#include "config.h"
#include "spr_digital.h"
#include "spr_error.h"
#include "spr_config.h"
#include "spr_ledger.h"
#include "spr_result.h"
#include "spr_test.h"
#include "spr_tiled.h"

#include <math.h>
#include <stdint.h>

/* ---- dense_tiled (digital/spr_tiled.h) -------------------------------- */

static spr_tiled_params tiled_params(int64_t buffer, int tile, int causal) {
  spr_tiled_params p = {buffer, 8, 8, 8, tile, causal};
  return p;
}

/* n = 10, d = 4, 8-bit K, V and queries: a token is 8 B (1 word), a
 * query's codes 4 B (1 word), its fp32 accumulators 4 x 4 + 8 = 24 B (3
 * words).  A 100-byte buffer with tiles of 3 tokens: (100 - 24) / 28 = 2
 * queries a block, 5 blocks of 4 tiles (keys 0-2, 3-5, 6-8, 9). */
static void test_tiled_hand(void) {
  spr_energy_params e;
  spr_energy_default(&e);
  spr_tiled_params p = tiled_params(100, 3, 0);
  spr_tiled_plan pl;
  CU_ASSERT_EQUAL_FATAL(spr_tiled_plan_make(&p, &e, 10, 4, &pl), 0);
  CU_ASSERT_EQUAL(pl.bq, 2);
  CU_ASSERT_EQUAL(pl.bk, 3);
  CU_ASSERT_EQUAL(pl.blocks, 5);
  CU_ASSERT_EQUAL(pl.token_bytes, 8);
  CU_ASSERT_EQUAL(pl.acc_bytes, 24);
  CU_ASSERT_EQUAL(spr_tiled_block_tiles(&pl, 0), 4);
  CU_ASSERT_EQUAL(spr_tiled_min_bytes(&p, 4), 28 + 24); /* one query, one 3-token tile */
  spr_ledger_counts q;
  int64_t f, u;
  /* block 0 (queries 0, 1), tile 0 (keys 0-2): 3 tokens fetched (24 B,
   * 192 bits) and written (3 words), the 2 queries' codes written (2) and
   * their accumulators (2 x 3); 6 pairs read K and V (6 words) and the
   * queries (2); 24 score MACs, 6 exponentials, 24 V MACs */
  spr_tiled_step_counts(&pl, 0, 0, &q, &f, &u);
  CU_ASSERT_EQUAL(f, 3);
  CU_ASSERT_EQUAL(u, 6);
  CU_ASSERT_EQUAL(q.reram_bits_read, 192);
  CU_ASSERT_EQUAL(q.sram_words_written, 3 + 2 + 6);
  CU_ASSERT_EQUAL(q.sram_words_read, 6 + 2);
  CU_ASSERT_EQUAL(q.score_macs, 24);
  CU_ASSERT_EQUAL(q.exps, 6);
  CU_ASSERT_EQUAL(q.v_macs, 24);
  CU_ASSERT_EQUAL(q.divs, 0);
  CU_ASSERT_EQUAL(q.buffer_bytes, 100);
  /* its last tile (key 9): 1 token; 2 pairs; both accumulators read back
   * (2 x 3) and rescaled (2 corrections: 2 exps, 2 x 5 multiplies), then
   * read for the output (2 x 3) and divided (2 x 4) */
  spr_tiled_step_counts(&pl, 0, 3, &q, &f, &u);
  CU_ASSERT_EQUAL(f, 1);
  CU_ASSERT_EQUAL(q.reram_bits_read, 64);
  CU_ASSERT_EQUAL(q.sram_words_written, 1 + 0 + 6);
  CU_ASSERT_EQUAL(q.sram_words_read, 2 + 2 + 6 + 6);
  CU_ASSERT_EQUAL(q.exps, 2 + 2);
  CU_ASSERT_EQUAL(q.v_macs, 8 + 10);
  CU_ASSERT_EQUAL(q.divs, 8);
  /* every block reads all 10 tokens: 50 fetches, 100 uses */
  int64_t ft = 0, ut = 0;
  for (int b = 0; b < pl.blocks; b++)
    for (int t = 0; t < spr_tiled_block_tiles(&pl, b); t++) {
      spr_tiled_step_counts(&pl, b, t, &q, &f, &u);
      ft += f;
      ut += u;
    }
  CU_ASSERT_EQUAL(ft, 50);
  CU_ASSERT_EQUAL(ut, 100);
  /* causal: block b (queries 2b, 2b + 1) fetches keys 0 .. 2b + 1 only:
   * 2 + 4 + 6 + 8 + 10 = 30 tokens for the 55 pairs */
  p.causal = 1;
  CU_ASSERT_EQUAL_FATAL(spr_tiled_plan_make(&p, &e, 10, 4, &pl), 0);
  CU_ASSERT_EQUAL(spr_tiled_block_tiles(&pl, 0), 1);
  CU_ASSERT_EQUAL(spr_tiled_block_tiles(&pl, 1), 2); /* keys 0-2, 3 */
  CU_ASSERT_EQUAL(spr_tiled_block_tiles(&pl, 4), 4);
  spr_tiled_step_counts(&pl, 1, 1, &q, &f, &u); /* queries 2, 3; tile keys 3-5 */
  CU_ASSERT_EQUAL(f, 1);                       /* key 3 only */
  CU_ASSERT_EQUAL(u, 1);                       /* query 3 sees it, query 2 none */
  CU_ASSERT_EQUAL(q.sram_words_read, 1 + 1 + 3 + 2 * 3); /* K/V, query 3, its acc, 2 outputs */
  CU_ASSERT_EQUAL(q.exps, 1 + 1);
  ft = ut = 0;
  for (int b = 0; b < pl.blocks; b++)
    for (int t = 0; t < spr_tiled_block_tiles(&pl, b); t++) {
      spr_tiled_step_counts(&pl, b, t, &q, &f, &u);
      ft += f;
      ut += u;
    }
  CU_ASSERT_EQUAL(ft, 30);
  CU_ASSERT_EQUAL(ut, 55);
  /* a buffer too small for one query and one tile: refused, naming the
   * key and the minimum (28 + 3 x 8 = 52 bytes) */
  p = tiled_params(51, 3, 0);
  CU_ASSERT_EQUAL(spr_tiled_plan_make(&p, &e, 10, 4, &pl), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "digital.buffer_bytes = 51 is too small for dense_tiled");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "at least 52 bytes");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "lower digital.tile_tokens");
  p = tiled_params(35, 0, 0); /* automatic: one token needs 28 + 8 = 36 */
  CU_ASSERT_EQUAL(spr_tiled_plan_make(&p, &e, 10, 4, &pl), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "at least 36 bytes");
  p = tiled_params(100, 11, 0);
  CU_ASSERT_EQUAL(spr_tiled_plan_make(&p, &e, 10, 4, &pl), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "digital.tile_tokens = 11");
  p = tiled_params(100, 3, 0);
  CU_ASSERT_EQUAL(spr_tiled_plan_make(&p, &e, 0, 4, &pl), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_tiled_plan_make(NULL, &e, 10, 4, &pl), SPR_EINVAL);
  p.value_bits = 0;
  CU_ASSERT_EQUAL(spr_tiled_plan_make(&p, &e, 10, 4, &pl), SPR_EINVAL);
}

/* The whole head's fetches and energy, counted pair by pair (no step
 * formula): block size Bq = (B - Bk token) / (q + acc), every query of a
 * block reads every key of each tile it sees once from the buffer, each
 * tile is fetched once per block.  The automatic tile is the cheapest of
 * the powers of two (and n) by this count. */
static double tiled_energy_brute(const spr_energy_params *e, int64_t B, int n, int d, int bk,
                                 int causal, int64_t *fetched) {
  const int64_t tok = 2 * d, qb = d, acc = 4 * d + 8;
  const int64_t tw = (tok + 7) / 8, qw = (qb + 7) / 8, aw = (acc + 7) / 8;
  const int64_t bq0 = (B - bk * tok) / (qb + acc);
  if (B - bk * tok <= 0 || bq0 < 1) return -1;
  const int bq = bq0 < n ? (int)bq0 : n;
  spr_ledger_counts c;
  memset(&c, 0, sizeof c);
  c.buffer_bytes = B;
  *fetched = 0;
  for (int i0 = 0; i0 < n; i0 += bq) {
    const int i1 = i0 + bq < n ? i0 + bq : n;
    c.sram_words_written += (i1 - i0) * qw;
    for (int j0 = 0; j0 < n; j0 += bk) {
      if (causal && j0 > i1 - 1) break;
      for (int j = j0; j < j0 + bk && j < n; j++)
        if (!causal || j <= i1 - 1) {
          ++*fetched;
          c.reram_bits_read += tok * 8;
          c.sram_words_written += tw;
        }
      for (int i = i0; i < i1; i++) {
        int k = 0;
        for (int j = j0; j < j0 + bk && j < n; j++) k += !causal || j <= i;
        if (!k) continue;
        c.sram_words_read += k * tw + qw + (j0 > 0 ? aw : 0);
        c.sram_words_written += aw;
        c.score_macs += (int64_t)k * d;
        c.v_macs += (int64_t)k * d + (j0 > 0 ? d + 1 : 0);
        c.exps += k + (j0 > 0);
      }
    }
    c.sram_words_read += (i1 - i0) * aw;
    c.divs += (int64_t)(i1 - i0) * d;
  }
  spr_ledger_result r;
  if (spr_ledger_price(e, &c, &r)) return -2;
  return r.total_J;
}

static void test_tiled_brute(void) {
  spr_energy_params e;
  spr_energy_default(&e);
  const int shapes[][3] = {{37, 5, 300}, {64, 8, 2048}, {200, 16, 16384}, {512, 64, 16384}};
  for (int s = 0; s < 4; s++)
    for (int causal = 0; causal < 2; causal++) {
      const int n = shapes[s][0], d = shapes[s][1];
      const int64_t B = shapes[s][2];
      /* fixed tiles: fetch totals against the pair-by-pair count */
      for (int bk = 1; bk <= n; bk = bk * 3 + 1) {
        spr_tiled_params p = tiled_params(B, bk, causal);
        spr_tiled_plan pl;
        int64_t fb;
        const double Jb = tiled_energy_brute(&e, B, n, d, bk, causal, &fb);
        const int rc = spr_tiled_plan_make(&p, &e, n, d, &pl);
        CU_ASSERT_EQUAL(rc != 0, Jb < 0);
        if (rc) continue;
        spr_ledger_counts sum, q;
        memset(&sum, 0, sizeof sum);
        int64_t ft = 0, f;
        for (int b = 0; b < pl.blocks; b++)
          for (int t = 0; t < spr_tiled_block_tiles(&pl, b); t++) {
            spr_tiled_step_counts(&pl, b, t, &q, &f, NULL);
            CU_ASSERT_EQUAL(spr_ledger_add(&sum, &q), 0);
            ft += f;
          }
        CU_ASSERT_EQUAL(ft, fb);
        spr_ledger_result r;
        CU_ASSERT_EQUAL(spr_ledger_price(&e, &sum, &r), 0);
        CU_ASSERT_DOUBLE_EQUAL(r.total_J, Jb, 1e-12 * Jb);
      }
      /* the automatic tile is the cheapest candidate (ties: the larger) */
      spr_tiled_params p = tiled_params(B, 0, causal);
      spr_tiled_plan pl;
      CU_ASSERT_EQUAL_FATAL(spr_tiled_plan_make(&p, &e, n, d, &pl), 0);
      int best = 0;
      double bestJ = 0;
      for (int bk = 1;; bk = bk > n / 2 ? n : 2 * bk) {
        int64_t fb;
        const double J = tiled_energy_brute(&e, B, n, d, bk, causal, &fb);
        if (J >= 0 && (!best || J <= bestJ * (1 + 1e-12))) best = bk, bestJ = J;
        if (bk == n) break;
      }
      CU_ASSERT_EQUAL(pl.bk, best);
    }
}

/* ---- helpers -------------------------------------------------------- */

/* Small deterministic generator (xorshift64*), independent of the library. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}
static double rnd_unif(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }
static int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)(hi - lo + 1)); }

/* Build an n x n packed mask from lists: rows[i] is a -1-terminated list. */
static uint8_t *mask_from_lists(int n, const int *const *rows) {
  const size_t rb = spr_mask_row_bytes(n);
  uint8_t *m = calloc((size_t)n * rb, 1);
  for (int i = 0; i < n; i++)
    for (const int *p = rows[i]; *p >= 0; p++) m[i * rb + *p / 8] |= (uint8_t)(1u << (*p % 8));
  return m;
}

static int get_bit(const uint8_t *m, int n, int i, int j) {
  return m[(size_t)i * spr_mask_row_bytes(n) + j / 8] >> (j % 8) & 1;
}
static void set_bit(uint8_t *m, int n, int i, int j, int v) {
  uint8_t *b = &m[(size_t)i * spr_mask_row_bytes(n) + j / 8];
  if (v) *b |= (uint8_t)(1u << (j % 8));
  else *b &= (uint8_t) ~(1u << (j % 8));
}

/* d = 5, 8-bit keys (5 bytes) and 4-bit values (ceil(20/8) = 3 bytes):
 * 8 bytes per token; buffer_bytes picks the capacity. */
static spr_dig_fetch_params params(int64_t buffer_bytes, int policy) {
  spr_dig_fetch_params p;
  spr_dig_fetch_default(&p);
  p.buffer_bytes = buffer_bytes;
  p.value_bits = 4;
  p.policy = policy;
  return p;
}

typedef struct {
  int64_t hits, fetches, overflow, peak;
  int qh[8], qf[8], qo[8];
} expect;

static void check_fetch(const uint8_t *mask, int n, int64_t buffer_bytes, int policy,
                        int64_t cap, const expect *e) {
  spr_dig_ws ws;
  CU_ASSERT_EQUAL_FATAL(spr_dig_ws_alloc(&ws, n, 5), 0);
  spr_dig_fetch_params p = params(buffer_bytes, policy);
  spr_dig_fetch_stats st;
  CU_ASSERT_EQUAL_FATAL(spr_dig_fetch(&p, mask, n, 5, &st, &ws), 0);
  CU_ASSERT_EQUAL(st.token_bytes, 8);
  CU_ASSERT_EQUAL(st.capacity_tokens, cap);
  CU_ASSERT_EQUAL(st.hits, e->hits);
  CU_ASSERT_EQUAL(st.fetches, e->fetches);
  CU_ASSERT_EQUAL(st.uses, e->hits + e->fetches);
  CU_ASSERT_EQUAL(st.overflow_tokens, e->overflow);
  CU_ASSERT_EQUAL(st.peak_tokens, e->peak);
  CU_ASSERT_EQUAL(st.peak_bytes, 8 * e->peak);
  CU_ASSERT(st.peak_bytes <= buffer_bytes);
  CU_ASSERT_EQUAL(st.bytes_fetched, 8 * e->fetches);
  CU_ASSERT_EQUAL(st.bytes_reused, 8 * e->hits);
  CU_ASSERT_EQUAL(st.cold_fetches, e->qf[0]);
  double nf = 0;
  int bad = 0;
  for (int i = 0; i < n; i++) {
    bad += ws.q_hits[i] != e->qh[i] || ws.q_fetches[i] != e->qf[i] || ws.q_overflow[i] != e->qo[i];
    if (i > 0) nf += (double)e->qf[i] / n;
  }
  if (bad)
    for (int i = 0; i < n; i++)
      fprintf(stderr, "\n  %s q%d: hits %d/%d fetches %d/%d overflow %d/%d",
              spr_dig_policy_name(policy), i, ws.q_hits[i], e->qh[i], ws.q_fetches[i], e->qf[i],
              ws.q_overflow[i], e->qo[i]);
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_DOUBLE_EQUAL(st.new_fetch_frac, nf / (n - 1), 1e-15);
  spr_dig_ws_free(&ws);
}

/* ---- fetch: hand-computed cases -------------------------------------- */

static void test_fetch_defaults(void) {
  spr_dig_fetch_params p;
  spr_dig_fetch_default(&p);
  CU_ASSERT_EQUAL(p.buffer_bytes, 16384);
  CU_ASSERT_EQUAL(p.key_bits, 8);
  CU_ASSERT_EQUAL(p.value_bits, 8);
  CU_ASSERT_EQUAL(p.policy, SPR_DIG_SPRINT);
  CU_ASSERT_STRING_EQUAL(spr_dig_policy_name(SPR_DIG_SPRINT), "sprint");
  CU_ASSERT_STRING_EQUAL(spr_dig_policy_name(SPR_DIG_LRU), "lru");
  CU_ASSERT_PTR_NULL(spr_dig_policy_name(2));
  spr_dig_metric_params mp;
  spr_dig_metric_default(&mp);
  CU_ASSERT_EQUAL(mp.top_k, 5);
  /* d = 64 at 8 + 8 bits: 128 bytes a token, 16 KB hold 128 tokens; an
   * all-keep mask of n = 200 streams 72 tokens a query */
  const int n = 200, d = 64;
  spr_dig_ws ws;
  CU_ASSERT_EQUAL_FATAL(spr_dig_ws_alloc(&ws, n, d), 0);
  uint8_t *m = malloc((size_t)n * spr_mask_row_bytes(n));
  memset(m, 0xff, (size_t)n * spr_mask_row_bytes(n));
  spr_dig_fetch_stats st;
  CU_ASSERT_EQUAL_FATAL(spr_dig_fetch(&p, m, n, d, &st, &ws), 0);
  CU_ASSERT_EQUAL(st.token_bytes, 128);
  CU_ASSERT_EQUAL(st.capacity_tokens, 128);
  CU_ASSERT_EQUAL(st.overflow_tokens, (int64_t)n * 72);
  CU_ASSERT_EQUAL(st.hits, (int64_t)(n - 1) * 128);
  CU_ASSERT_EQUAL(st.fetches, 200 + (int64_t)(n - 1) * 72);
  CU_ASSERT_EQUAL(st.peak_bytes, 16384);
  /* 32 KB (M-SPRINT) holds all 200: every token fetched once */
  p.buffer_bytes = 32768;
  CU_ASSERT_EQUAL_FATAL(spr_dig_fetch(&p, m, n, d, &st, &ws), 0);
  CU_ASSERT_EQUAL(st.capacity_tokens, 256);
  CU_ASSERT_EQUAL(st.fetches, 200);
  CU_ASSERT_EQUAL(st.overflow_tokens, 0);
  CU_ASSERT_EQUAL(st.peak_tokens, 200);
  CU_ASSERT_DOUBLE_EQUAL(st.new_fetch_frac, 0.0, 0);
  free(m);
  spr_dig_ws_free(&ws);
}

/* Capacity 10 (85 bytes / 8), never binding.
 *   P0 = {0,1,2}   P1 = {1,2,3}   P2 = {0,1}   P3 = {0,1,4,5}   (n = 6;
 *   P4 = P5 = {} so empty queries are exercised)
 * SPRINT: q0 fetch 0,1,2; q1 hit 1,2, fetch 3 (0 evicted); q2 hit 1,
 *   fetch 0 again; q3 hit 0,1, fetch 4,5.  fetches 7, hits 5, peak 4.
 * LRU: token 0 stays; q2 hits 0 and 1.  fetches 6, hits 6, peak 6. */
static void test_fetch_reuse(void) {
  const int r0[] = {0, 1, 2, -1}, r1[] = {1, 2, 3, -1}, r2[] = {0, 1, -1}, r3[] = {0, 1, 4, 5, -1},
            re[] = {-1};
  const int *rows[] = {r0, r1, r2, r3, re, re};
  uint8_t *m = mask_from_lists(6, rows);
  expect sp = {5, 7, 0, 4, {0, 2, 1, 2, 0, 0}, {3, 1, 1, 2, 0, 0}, {0}};
  check_fetch(m, 6, 85, SPR_DIG_SPRINT, 10, &sp);
  expect lru = {6, 6, 0, 6, {0, 2, 2, 2, 0, 0}, {3, 1, 0, 2, 0, 0}, {0}};
  check_fetch(m, 6, 85, SPR_DIG_LRU, 10, &lru);
  /* with no overflow, SPRINT fetches exactly |P_i AND NOT P_(i-1)| */
  free(m);
}

/* Capacity 3 (31 bytes / 8) binds for LRU although no |P_i| exceeds it.
 *   P0 = {0,1}  P1 = {2}  P2 = {0,3}  P3 = {1,2}
 * SPRINT (buffer within P_i): 2 + 1 + 2 + 2 fetches, no hit.
 * LRU, C = 3: q1 adds 2 (B = {0,1,2}); q2 hits 0, evicts 1 (last used at
 *   q0, before 2 at q1) for 3; q3 hits 2, evicts 0 (tie with 3 at q2:
 *   lower key first) for 1.  fetches 2+1+1+1 = 5, hits 2.
 * LRU, C = 10: nothing evicted, q3 hits 1 and 2: fetches 4, hits 3. */
static void test_fetch_capacity_binds(void) {
  const int r0[] = {0, 1, -1}, r1[] = {2, -1}, r2[] = {0, 3, -1}, r3[] = {1, 2, -1};
  const int *rows[] = {r0, r1, r2, r3};
  uint8_t *m = mask_from_lists(4, rows);
  expect sp = {0, 7, 0, 2, {0, 0, 0, 0}, {2, 1, 2, 2}, {0}};
  check_fetch(m, 4, 31, SPR_DIG_SPRINT, 3, &sp);
  check_fetch(m, 4, 85, SPR_DIG_SPRINT, 10, &sp);
  expect l3 = {2, 5, 0, 3, {0, 0, 1, 1}, {2, 1, 1, 1}, {0}};
  check_fetch(m, 4, 31, SPR_DIG_LRU, 3, &l3);
  expect l10 = {3, 4, 0, 4, {0, 0, 1, 2}, {2, 1, 1, 0}, {0}};
  check_fetch(m, 4, 85, SPR_DIG_LRU, 10, &l10);
  /* capacity 1 (8..15 bytes): LRU keeps token 0 from q0 only until q1 */
  expect l1 = {0, 7, 3, 1, {0, 0, 0, 0}, {2, 1, 2, 2}, {1, 0, 1, 1}};
  check_fetch(m, 4, 15, SPR_DIG_LRU, 1, &l1);
  free(m);
}

/* P_i larger than the buffer, C = 3, n = 6.
 *   P0 = {0,1,2,3,4}  P1 = {1,2,3,4,5}  P2 = {0,5}  P3 = {3}
 * SPRINT: q0 keeps 0,1,2, streams 3,4 (5 fetches, 2 overflow);
 *   q1 hits 1,2, evicts 0, keeps 3, streams 4,5 (3 fetches, 2 overflow);
 *   q2 no hit, evicts 1,2,3, keeps 0,5; q3 fetches 3.
 *   fetches 5+3+2+1 = 11, hits 2, overflow 4, peak 3.
 * LRU: q1 hits 1,2, evicts 0 for 3, streams 4,5; q2 evicts 1 and 2
 *   (3 is the most recent of q1's) for 0 and 5; q3 hits 3.
 *   fetches 10, hits 3, overflow 4, peak 3. */
static void test_fetch_overflow(void) {
  const int r0[] = {0, 1, 2, 3, 4, -1}, r1[] = {1, 2, 3, 4, 5, -1}, r2[] = {0, 5, -1},
            r3[] = {3, -1}, re[] = {-1};
  const int *rows[] = {r0, r1, r2, r3, re, re};
  uint8_t *m = mask_from_lists(6, rows);
  expect sp = {2, 11, 4, 3, {0, 2, 0, 0, 0, 0}, {5, 3, 2, 1, 0, 0}, {2, 2, 0, 0, 0, 0}};
  check_fetch(m, 6, 24, SPR_DIG_SPRINT, 3, &sp);
  expect lru = {3, 10, 4, 3, {0, 2, 0, 1, 0, 0}, {5, 3, 2, 0, 0, 0}, {2, 2, 0, 0, 0, 0}};
  check_fetch(m, 6, 24, SPR_DIG_LRU, 3, &lru);
  free(m);
}

/* ---- fetch: brute-force references ----------------------------------- */

/* Buffer as C slots (token, last use); hits pinned first, misses in
 * ascending key; victim = unpinned slot of smallest (last use, token);
 * SPRINT empties every slot not needed now before the misses. */
static void brute_fetch(const uint8_t *m, int n, int cap, int lru, int *qh, int *qf, int *qo,
                        int *peak) {
  int *tok = malloc((size_t)cap * sizeof *tok), *use = malloc((size_t)cap * sizeof *use);
  int used = 0;
  *peak = 0;
  for (int i = 0; i < n; i++) {
    qh[i] = qf[i] = qo[i] = 0;
    if (!lru) { /* drop what P_i does not need */
      int w = 0;
      for (int s = 0; s < used; s++)
        if (get_bit(m, n, i, tok[s])) tok[w++] = tok[s];
      used = w;
    }
    for (int s = 0; s < used; s++)
      if (get_bit(m, n, i, tok[s])) {
        qh[i]++;
        use[s] = i;
      }
    for (int j = 0; j < n; j++) {
      if (!get_bit(m, n, i, j)) continue;
      int found = 0;
      for (int s = 0; s < used; s++) found |= tok[s] == j;
      if (found) continue;
      qf[i]++;
      if (used < cap) {
        tok[used] = j;
        use[used++] = i;
        continue;
      }
      int v = -1;
      for (int s = 0; s < used; s++)
        if (use[s] < i && (v < 0 || use[s] < use[v] || (use[s] == use[v] && tok[s] < tok[v])))
          v = s;
      if (v < 0) {
        qo[i]++;
      } else {
        tok[v] = j;
        use[v] = i;
      }
    }
    if (used > *peak) *peak = used;
  }
  free(tok);
  free(use);
}

/* Random masks with correlated adjacent rows and a few dense rows, n = 37
 * (so rows end in padding bits, set to 1 here and ignored), many
 * capacities, both policies, against brute_fetch and closed forms. */
static void test_fetch_random(void) {
  const int n = 37, d = 5;
  const size_t rb = spr_mask_row_bytes(n);
  uint8_t *m = calloc((size_t)n * rb, 1);
  int qh[37], qf[37], qo[37], peak, size[37];
  spr_dig_ws ws;
  CU_ASSERT_EQUAL_FATAL(spr_dig_ws_alloc(&ws, 40, 7), 0); /* larger than needed */
  int bad = 0, cases = 0, any_overflow = 0, any_evict_diff = 0;
  for (int trial = 0; trial < 20; trial++) {
    const double flip = 0.05 + 0.3 * rnd_unif();
    for (int j = 0; j < n; j++) set_bit(m, n, 0, j, rnd_unif() < 0.2);
    for (int i = 1; i < n; i++)
      for (int j = 0; j < n; j++) {
        int b = get_bit(m, n, i - 1, j);
        set_bit(m, n, i, j, rnd_unif() < flip ? !b : b);
      }
    if (trial % 3 == 0) /* a dense row */
      for (int j = 0; j < n; j++) set_bit(m, n, rnd_int(0, n - 1), j, rnd_unif() < 0.9);
    for (int i = 0; i < n; i++) {
      m[i * rb + rb - 1] |= 0xe0; /* padding bits 37..39 */
      size[i] = 0;
      for (int j = 0; j < n; j++) size[i] += get_bit(m, n, i, j);
    }
    const int caps[] = {1, 2, 5, 9, 16, 37, 50};
    for (int c = 0; c < 7; c++)
      for (int lru = 0; lru < 2; lru++) {
        spr_dig_fetch_params p = params(8 * caps[c] + 7, lru ? SPR_DIG_LRU : SPR_DIG_SPRINT);
        spr_dig_fetch_stats st;
        CU_ASSERT_EQUAL_FATAL(spr_dig_fetch(&p, m, n, d, &st, &ws), 0);
        brute_fetch(m, n, caps[c], lru, qh, qf, qo, &peak);
        int64_t h = 0, f = 0, o = 0, uses = 0, over = 0;
        for (int i = 0; i < n; i++) {
          bad += ws.q_hits[i] != qh[i] || ws.q_fetches[i] != qf[i] || ws.q_overflow[i] != qo[i];
          h += qh[i];
          f += qf[i];
          o += qo[i];
          uses += size[i];
          over += size[i] > caps[c] ? size[i] - caps[c] : 0;
        }
        bad += st.hits != h || st.fetches != f || st.overflow_tokens != o || st.peak_tokens != peak;
        bad += st.uses != uses || st.overflow_tokens != over;  /* closed form */
        bad += st.peak_tokens > caps[c] || st.peak_bytes > p.buffer_bytes;
        any_overflow |= o > 0;
        if (!lru && caps[c] >= 37) { /* SPRINT: fetches = |P_i AND NOT P_(i-1)| */
          for (int i = 0; i < n; i++) {
            int fresh = 0;
            for (int j = 0; j < n; j++)
              fresh += get_bit(m, n, i, j) && !(i > 0 && get_bit(m, n, i - 1, j));
            bad += ws.q_fetches[i] != fresh;
          }
        }
        if (lru && caps[c] >= 37) { /* LRU holding everything: each token once */
          int distinct = 0;
          for (int j = 0; j < n; j++) {
            int any = 0;
            for (int i = 0; i < n; i++) any |= get_bit(m, n, i, j);
            distinct += any;
          }
          bad += st.fetches != distinct;
        }
        if (lru) {
          /* SPRINT at the same capacity: when C >= max |P_i| the LRU buffer
           * contains SPRINT's (B_i contains P_i), so LRU never fetches more */
          spr_dig_fetch_params ps = params(p.buffer_bytes, SPR_DIG_SPRINT);
          spr_dig_fetch_stats ss;
          CU_ASSERT_EQUAL_FATAL(spr_dig_fetch(&ps, m, n, d, &ss, &ws), 0);
          int mx = 0;
          for (int i = 0; i < n; i++) mx = size[i] > mx ? size[i] : mx;
          if (caps[c] >= mx) bad += st.fetches > ss.fetches;
          any_evict_diff |= ss.fetches != st.fetches;
        }
        cases++;
      }
  }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_EQUAL(cases, 280);
  CU_ASSERT(any_overflow);   /* the overflow path was exercised */
  CU_ASSERT(any_evict_diff); /* and the policies differed */
  free(m);
  spr_dig_ws_free(&ws);
}

/* ---- recompute and dense reference ----------------------------------- */

/* Brute force: full score matrix in double from the real operands, pruned
 * entries at -inf, softmax of the row, product with real V. */
static void brute_attend(const int8_t *q, float qs, const int8_t *k, float ks, const int8_t *v,
                         float vs, const uint8_t *m, int n, int d, double *O) {
  double *s = malloc((size_t)n * sizeof *s);
  for (int i = 0; i < n; i++) {
    double mx = -INFINITY;
    for (int j = 0; j < n; j++) {
      double acc = 0;
      for (int t = 0; t < d; t++) acc += ((double)qs * q[i * d + t]) * ((double)ks * k[j * d + t]);
      s[j] = get_bit(m, n, i, j) ? acc / sqrt((double)d) : -INFINITY;
      mx = fmax(mx, s[j]);
    }
    for (int t = 0; t < d; t++) O[i * d + t] = 0;
    if (mx == -INFINITY) continue;
    double z = 0;
    for (int j = 0; j < n; j++) z += exp(s[j] - mx);
    for (int j = 0; j < n; j++)
      for (int t = 0; t < d; t++) O[i * d + t] += exp(s[j] - mx) / z * (double)vs * v[j * d + t];
  }
  free(s);
}

static void fill_codes(int8_t *x, int n, int lo, int hi) {
  for (int i = 0; i < n; i++) x[i] = (int8_t)rnd_int(lo, hi);
}

static void test_attend_brute(void) {
  const int n = 13, d = 7;
  int8_t q[13 * 7], k[13 * 7], v[13 * 7];
  fill_codes(q, n * d, -7, 7);      /* 4-bit queries */
  fill_codes(k, n * d, -127, 127);  /* 8-bit keys */
  fill_codes(v, n * d, -127, 127);
  const float qs = 0.2385f, ks = 0.0173f, vs = 0.0291f;
  uint8_t m[13 * 2] = {0};
  int kept = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (i != 4 && rnd_unif() < 0.4) { /* query 4 keeps nothing */
        set_bit(m, n, i, j, 1);
        kept++;
      }
  for (int i = 0; i < n; i++) m[i * 2 + 1] |= 0xe0; /* padding ignored */
  spr_dig_ws ws;
  CU_ASSERT_EQUAL_FATAL(spr_dig_ws_alloc(&ws, n, d), 0);
  float O[13 * 7];
  double R[13 * 7];
  spr_dig_attend_stats st;
  CU_ASSERT_EQUAL_FATAL(spr_dig_attend(q, qs, k, ks, v, vs, m, n, d, O, &st, &ws), 0);
  brute_attend(q, qs, k, ks, v, vs, m, n, d, R);
  double err = 0, mag = 0;
  for (int t = 0; t < n * d; t++) {
    err = fmax(err, fabs(O[t] - R[t]));
    mag = fmax(mag, fabs(R[t]));
  }
  CU_ASSERT(err <= 1e-6 * mag);
  CU_ASSERT(mag > 0.5); /* the outputs are not trivially small */
  CU_ASSERT_EQUAL(st.survivors, kept);
  CU_ASSERT_EQUAL(st.empty_queries, 1);
  for (int t = 0; t < d; t++) CU_ASSERT_EQUAL(O[4 * d + t], 0.0f);
  /* st may be NULL */
  CU_ASSERT_EQUAL(spr_dig_attend(q, qs, k, ks, v, vs, m, n, d, O, NULL, &ws), 0);
  spr_dig_ws_free(&ws);
}

/* n = 2, d = 1: Q = (2, 0), K = (0, ln(3)/2), V = (1.5, -2.25).  Query 0:
 * logits 0 and ln 3, p = (1/4, 3/4), o = 1.5/4 - 2.25 * 3/4 = -1.3125.
 * Query 1: p = (1/2, 1/2), o = -0.375. */
static void test_dense_known(void) {
  const float Q[2] = {2.0f, 0.0f}, K[2] = {0.0f, (float)(log(3.0) / 2)}, V[2] = {1.5f, -2.25f};
  float P[4], O[2];
  CU_ASSERT_EQUAL_FATAL(spr_dig_dense(Q, K, V, 2, 1, P, O), 0);
  CU_ASSERT_DOUBLE_EQUAL(P[0], 0.25, 1e-7);
  CU_ASSERT_DOUBLE_EQUAL(P[1], 0.75, 1e-7);
  CU_ASSERT_DOUBLE_EQUAL(P[2], 0.5, 1e-7);
  CU_ASSERT_DOUBLE_EQUAL(P[3], 0.5, 1e-7);
  CU_ASSERT_DOUBLE_EQUAL(O[0], -1.3125, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(O[1], -0.375, 1e-6);
}

/* Keep-all mask: spr_dig_attend on codes equals spr_dig_dense on the real
 * values scale * code, to float tolerance; the metrics are then perfect. */
static void test_keep_all_equals_dense(void) {
  const int n = 24, d = 16;
  const size_t nd = (size_t)n * d;
  int8_t *q = malloc(nd), *k = malloc(nd), *v = malloc(nd);
  float *Q = malloc(nd * sizeof *Q), *K = malloc(nd * sizeof *K), *V = malloc(nd * sizeof *V);
  float *O = malloc(nd * sizeof *O), *Od = malloc(nd * sizeof *Od);
  float *P = malloc((size_t)n * n * sizeof *P);
  fill_codes(q, (int)nd, -127, 127);
  fill_codes(k, (int)nd, -127, 127);
  fill_codes(v, (int)nd, -127, 127);
  const float qs = 0.02385f, ks = 0.0173f, vs = 0.0291f;
  for (size_t t = 0; t < nd; t++) {
    Q[t] = qs * q[t];
    K[t] = ks * k[t];
    V[t] = vs * v[t];
  }
  const size_t rb = spr_mask_row_bytes(n);
  uint8_t *m = malloc((size_t)n * rb);
  memset(m, 0xff, (size_t)n * rb);
  spr_dig_ws ws;
  CU_ASSERT_EQUAL_FATAL(spr_dig_ws_alloc(&ws, n, d), 0);
  spr_dig_attend_stats st;
  CU_ASSERT_EQUAL_FATAL(spr_dig_attend(q, qs, k, ks, v, vs, m, n, d, O, &st, &ws), 0);
  CU_ASSERT_EQUAL_FATAL(spr_dig_dense(Q, K, V, n, d, P, Od), 0);
  CU_ASSERT_EQUAL(st.survivors, (int64_t)n * n);
  CU_ASSERT_EQUAL(st.empty_queries, 0);
  double err = 0, mag = 0, pmax = 0;
  for (size_t t = 0; t < nd; t++) {
    err = fmax(err, fabs(O[t] - Od[t]));
    mag = fmax(mag, fabs(Od[t]));
  }
  for (int t = 0; t < n * n; t++) pmax = fmax(pmax, P[t]);
  CU_ASSERT(pmax > 0.2); /* softmax rows far from uniform: the test has teeth */
  CU_ASSERT(mag > 0.3);
  CU_ASSERT(err <= 2e-6 * mag);
  spr_dig_metric_params mp;
  spr_dig_metric_default(&mp);
  spr_dig_accuracy a;
  CU_ASSERT_EQUAL_FATAL(spr_dig_metrics(&mp, O, Od, P, m, n, d, &a, &ws), 0);
  CU_ASSERT(a.rel_fro < 1e-5);
  CU_ASSERT_DOUBLE_EQUAL(a.cos_mean, 1.0, 1e-9);
  CU_ASSERT_DOUBLE_EQUAL(a.cos_min, 1.0, 1e-9);
  CU_ASSERT_DOUBLE_EQUAL(a.mass_retained, 1.0, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(a.top1_recall, 1.0, 0);
  CU_ASSERT_DOUBLE_EQUAL(a.topk_recall, 1.0, 0);
  CU_ASSERT_EQUAL(a.top_k, 5);
  free(q), free(k), free(v), free(Q), free(K), free(V), free(O), free(Od), free(P), free(m);
  spr_dig_ws_free(&ws);
}

/* ---- metrics ---------------------------------------------------------- */

/* n = 3, d = 2, by hand.
 *   P_dense rows (0.5, 0.3, 0.2), (0.1, 0.6, 0.3), (0.25, 0.25, 0.5)
 *   masks        {0,1}            {0,2}            {1}
 *   O_dense rows (3, 4), (1, 0), (0, 2);  O rows (3, 4), (1, 1), (0, 0)
 * mass = (0.8 + 0.4 + 0.25)/3 = 0.48333..; top-1 = 0, 1, 2: kept, pruned,
 * pruned -> 1/3; top-2 = {0,1}, {1,2}, {2,0} (0 beats 1 on the tie):
 * (1 + 1/2 + 0)/3 = 0.5; top-3: (2/3 + 2/3 + 1/3)/3 = 5/9.
 * ||O - O_dense||^2 = 1 + 4 = 5, ||O_dense||^2 = 30: rel_fro = sqrt(1/6).
 * cos = 1, 1/sqrt(2), 0 (zero row): mean 0.569036.., min 0 at query 2. */
static void test_metrics_hand(void) {
  const float P[9] = {0.5f, 0.3f, 0.2f, 0.1f, 0.6f, 0.3f, 0.25f, 0.25f, 0.5f};
  const float Od[6] = {3, 4, 1, 0, 0, 2}, O[6] = {3, 4, 1, 1, 0, 0};
  const int r0[] = {0, 1, -1}, r1[] = {0, 2, -1}, r2[] = {1, -1};
  const int *rows[] = {r0, r1, r2};
  uint8_t *m = mask_from_lists(3, rows);
  spr_dig_ws ws;
  CU_ASSERT_EQUAL_FATAL(spr_dig_ws_alloc(&ws, 3, 2), 0);
  spr_dig_metric_params mp = {2, 0};
  spr_dig_accuracy a;
  CU_ASSERT_EQUAL_FATAL(spr_dig_metrics(&mp, O, Od, P, m, 3, 2, &a, &ws), 0);
  CU_ASSERT_DOUBLE_EQUAL(a.rel_fro, sqrt(1.0 / 6.0), 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(a.cos_mean, (1 + 1 / sqrt(2.0)) / 3, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(a.cos_min, 0.0, 0);
  CU_ASSERT_EQUAL(a.cos_min_query, 2);
  CU_ASSERT_DOUBLE_EQUAL(a.mass_retained, 1.45 / 3, 1e-7);
  CU_ASSERT_DOUBLE_EQUAL(a.top1_recall, 1.0 / 3, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(a.topk_recall, 0.5, 1e-15);
  CU_ASSERT_EQUAL(a.top_k, 2);
  mp.top_k = 3;
  CU_ASSERT_EQUAL_FATAL(spr_dig_metrics(&mp, O, Od, P, m, 3, 2, &a, &ws), 0);
  CU_ASSERT_DOUBLE_EQUAL(a.topk_recall, 5.0 / 9, 1e-15);
  mp.top_k = 1;
  CU_ASSERT_EQUAL_FATAL(spr_dig_metrics(&mp, O, Od, P, m, 3, 2, &a, &ws), 0);
  CU_ASSERT_DOUBLE_EQUAL(a.topk_recall, 1.0 / 3, 1e-15);
  /* zero rows on both sides count as cosine 1; all-zero O_dense: rel_fro
   * is 0 when O is zero too and +inf otherwise */
  const float Z[6] = {0};
  CU_ASSERT_EQUAL_FATAL(spr_dig_metrics(&mp, Z, Z, P, m, 3, 2, &a, &ws), 0);
  CU_ASSERT_DOUBLE_EQUAL(a.cos_mean, 1.0, 0);
  CU_ASSERT_DOUBLE_EQUAL(a.rel_fro, 0.0, 0);
  CU_ASSERT_EQUAL_FATAL(spr_dig_metrics(&mp, O, Z, P, m, 3, 2, &a, &ws), 0);
  CU_ASSERT(isinf(a.rel_fro));
  CU_ASSERT_DOUBLE_EQUAL(a.cos_mean, 1.0 / 3, 1e-15); /* rows 0, 1: 0; row 2 zero on both: 1 */
  CU_ASSERT_EQUAL(a.cos_min_query, 0);
  free(m);
  spr_dig_ws_free(&ws);
}

/* Random case against a brute force that sorts each row (selection sort by
 * probability descending, ties to the lower index). */
static void test_metrics_brute(void) {
  const int n = 29, d = 6;
  float *P = malloc((size_t)n * n * sizeof *P), O[29 * 6], Od[29 * 6];
  uint8_t m[29 * 4] = {0};
  for (int i = 0; i < n; i++) {
    double z = 0;
    for (int j = 0; j < n; j++) {
      /* coarse values so that ties occur */
      P[i * n + j] = (float)rnd_int(1, 12);
      z += P[i * n + j];
      set_bit(m, n, i, j, rnd_unif() < 0.35);
    }
    for (int j = 0; j < n; j++) P[i * n + j] = (float)(P[i * n + j] / z);
  }
  for (int t = 0; t < n * d; t++) {
    Od[t] = (float)(rnd_unif() * 2 - 1);
    O[t] = Od[t] + (float)(0.3 * (rnd_unif() - 0.5));
  }
  spr_dig_ws ws;
  CU_ASSERT_EQUAL_FATAL(spr_dig_ws_alloc(&ws, n, d), 0);
  const int ks[] = {1, 5, 7, 29};
  for (int c = 0; c < 4; c++) {
    const int k = ks[c];
    double num = 0, den = 0, cs = 0, cmin = 2, mass = 0, t1 = 0, tk = 0;
    for (int i = 0; i < n; i++) {
      double dot = 0, a2 = 0, b2 = 0;
      for (int t = 0; t < d; t++) {
        double a = O[i * d + t], b = Od[i * d + t];
        num += (a - b) * (a - b);
        den += b * b;
        dot += a * b, a2 += a * a, b2 += b * b;
      }
      cs += dot / sqrt(a2 * b2);
      cmin = fmin(cmin, dot / sqrt(a2 * b2));
      int order[29], taken[29] = {0};
      for (int r = 0; r < n; r++) {
        int b = -1;
        for (int j = 0; j < n; j++)
          if (!taken[j] && (b < 0 || P[i * n + j] > P[i * n + b])) b = j;
        taken[b] = 1;
        order[r] = b;
      }
      for (int j = 0; j < n; j++) mass += get_bit(m, n, i, j) * (double)P[i * n + j];
      t1 += get_bit(m, n, i, order[0]);
      int h = 0;
      for (int r = 0; r < k; r++) h += get_bit(m, n, i, order[r]);
      tk += (double)h / k;
    }
    spr_dig_metric_params mp = {k, 0};
    spr_dig_accuracy a;
    CU_ASSERT_EQUAL_FATAL(spr_dig_metrics(&mp, O, Od, P, m, n, d, &a, &ws), 0);
    CU_ASSERT_DOUBLE_EQUAL(a.rel_fro, sqrt(num / den), 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(a.cos_mean, cs / n, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(a.cos_min, cmin, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(a.mass_retained, mass / n, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(a.top1_recall, t1 / n, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(a.topk_recall, tk / n, 1e-12);
    if (k == 29) CU_ASSERT(a.topk_recall > 0.2 && a.topk_recall < 0.5);
  }
  free(P);
  spr_dig_ws_free(&ws);
}

/* ---- error paths ------------------------------------------------------ */

#define EXPECT_ERR(call, code, text)                                           \
  do {                                                                         \
    spr_error_clear();                                                         \
    CU_ASSERT_EQUAL((call), (code));                                           \
    SPR_ASSERT_CONTAINS(spr_errmsg(), (text));                                 \
  } while (0)

static void test_errors(void) {
  spr_dig_ws ws;
  EXPECT_ERR(spr_dig_ws_alloc(&ws, 0, 4), SPR_EINVAL, "n=0 d=4");
  EXPECT_ERR(spr_dig_ws_alloc(&ws, 4, -1), SPR_EINVAL, "n=4 d=-1");
  EXPECT_ERR(spr_dig_ws_alloc(NULL, 4, 4), SPR_EINVAL, "workspace is NULL");
  spr_dig_ws_free(&ws); /* safe after a failed alloc */
  spr_dig_ws_free(NULL);
  CU_ASSERT_EQUAL_FATAL(spr_dig_ws_alloc(&ws, 8, 4), 0);
  uint8_t m[8] = {0x03, 0x06, 0x0c, 0x18, 0x30, 0x60, 0xc0, 0x81};
  spr_dig_fetch_params p;
  spr_dig_fetch_default(&p);
  spr_dig_fetch_stats st;
  /* fetch */
  EXPECT_ERR(spr_dig_fetch(NULL, m, 8, 4, &st, &ws), SPR_EINVAL, "fetch: params is NULL");
  EXPECT_ERR(spr_dig_fetch(&p, NULL, 8, 4, &st, &ws), SPR_EINVAL, "fetch: mask is NULL");
  EXPECT_ERR(spr_dig_fetch(&p, m, 8, 4, NULL, &ws), SPR_EINVAL, "fetch: stats is NULL");
  EXPECT_ERR(spr_dig_fetch(&p, m, 8, 4, &st, NULL), SPR_EINVAL, "fetch: workspace is NULL");
  EXPECT_ERR(spr_dig_fetch(&p, m, 0, 4, &st, &ws), SPR_EINVAL, "fetch: n=0 < 1");
  EXPECT_ERR(spr_dig_fetch(&p, m, 8, 0, &st, &ws), SPR_EINVAL, "fetch: d=0 < 1");
  EXPECT_ERR(spr_dig_fetch(&p, m, 9, 4, &st, &ws), SPR_EINVAL, "n=9 x d=4 exceeds workspace 8 x 4");
  EXPECT_ERR(spr_dig_fetch(&p, m, 8, 5, &st, &ws), SPR_EINVAL, "n=8 x d=5 exceeds workspace 8 x 4");
  p.policy = 7;
  EXPECT_ERR(spr_dig_fetch(&p, m, 8, 4, &st, &ws), SPR_EINVAL, "unknown buffer policy 7");
  p.policy = -1;
  EXPECT_ERR(spr_dig_fetch(&p, m, 8, 4, &st, &ws), SPR_EINVAL, "unknown buffer policy -1");
  spr_dig_fetch_default(&p);
  p.key_bits = -1;
  EXPECT_ERR(spr_dig_fetch(&p, m, 8, 4, &st, &ws), SPR_EINVAL, "key_bits=-1 outside 0..32");
  p.key_bits = 33;
  EXPECT_ERR(spr_dig_fetch(&p, m, 8, 4, &st, &ws), SPR_EINVAL, "key_bits=33");
  spr_dig_fetch_default(&p);
  p.value_bits = 0;
  EXPECT_ERR(spr_dig_fetch(&p, m, 8, 4, &st, &ws), SPR_EINVAL, "value_bits=0 outside 1..32");
  spr_dig_fetch_default(&p);
  p.buffer_bytes = 7; /* d = 4, 8 + 8 bits: 8 bytes a token */
  EXPECT_ERR(spr_dig_fetch(&p, m, 8, 4, &st, &ws), SPR_EINVAL,
             "buffer_bytes=7 holds no token of 8 bytes (d=4, key_bits=8, value_bits=8)");
  p.buffer_bytes = -16384;
  EXPECT_ERR(spr_dig_fetch(&p, m, 8, 4, &st, &ws), SPR_EINVAL, "buffer_bytes=-16384");
  p.buffer_bytes = 8; /* exactly one token is fine */
  CU_ASSERT_EQUAL(spr_dig_fetch(&p, m, 8, 4, &st, &ws), 0);
  CU_ASSERT_EQUAL(st.capacity_tokens, 1);
  /* attend */
  int8_t c[32] = {3, -2, 5, 1};
  float O[32], P[64];
  const float F[32] = {0.5f, -1.25f};
  EXPECT_ERR(spr_dig_attend(NULL, 1, c, 1, c, 1, m, 8, 4, O, NULL, &ws), SPR_EINVAL, "q is NULL");
  EXPECT_ERR(spr_dig_attend(c, 1, NULL, 1, c, 1, m, 8, 4, O, NULL, &ws), SPR_EINVAL, "k is NULL");
  EXPECT_ERR(spr_dig_attend(c, 1, c, 1, NULL, 1, m, 8, 4, O, NULL, &ws), SPR_EINVAL, "v is NULL");
  EXPECT_ERR(spr_dig_attend(c, 1, c, 1, c, 1, NULL, 8, 4, O, NULL, &ws), SPR_EINVAL,
             "attend: mask is NULL");
  EXPECT_ERR(spr_dig_attend(c, 1, c, 1, c, 1, m, 8, 4, NULL, NULL, &ws), SPR_EINVAL, "O is NULL");
  EXPECT_ERR(spr_dig_attend(c, 1, c, 1, c, 1, m, 8, 4, O, NULL, NULL), SPR_EINVAL,
             "attend: workspace is NULL");
  EXPECT_ERR(spr_dig_attend(c, 1, c, 1, c, 1, m, -3, 4, O, NULL, &ws), SPR_EINVAL, "attend: n=-3 < 1");
  EXPECT_ERR(spr_dig_attend(c, 1, c, 1, c, 1, m, 8, 0, O, NULL, &ws), SPR_EINVAL, "attend: d=0 < 1");
  EXPECT_ERR(spr_dig_attend(c, 1, c, 1, c, 1, m, 8, 6, O, NULL, &ws), SPR_EINVAL,
             "attend: n=8 x d=6 exceeds workspace 8 x 4");
  EXPECT_ERR(spr_dig_attend(c, 0, c, 1, c, 1, m, 8, 4, O, NULL, &ws), SPR_EINVAL, "q_scale=0");
  EXPECT_ERR(spr_dig_attend(c, 1, c, -0.5f, c, 1, m, 8, 4, O, NULL, &ws), SPR_EINVAL,
             "k_scale=-0.5");
  EXPECT_ERR(spr_dig_attend(c, 1, c, 1, c, NAN, m, 8, 4, O, NULL, &ws), SPR_EINVAL, "v_scale=nan");
  EXPECT_ERR(spr_dig_attend(c, 1, c, 1, c, INFINITY, m, 8, 4, O, NULL, &ws), SPR_EINVAL,
             "v_scale=inf must be finite and > 0");
  /* dense */
  EXPECT_ERR(spr_dig_dense(NULL, F, F, 8, 4, P, O), SPR_EINVAL, "dense: Q is NULL");
  EXPECT_ERR(spr_dig_dense(F, NULL, F, 8, 4, P, O), SPR_EINVAL, "dense: K is NULL");
  EXPECT_ERR(spr_dig_dense(F, F, NULL, 8, 4, P, O), SPR_EINVAL, "dense: V is NULL");
  EXPECT_ERR(spr_dig_dense(F, F, F, 8, 4, NULL, O), SPR_EINVAL, "dense: P is NULL");
  EXPECT_ERR(spr_dig_dense(F, F, F, 8, 4, P, NULL), SPR_EINVAL, "dense: O is NULL");
  EXPECT_ERR(spr_dig_dense(F, F, F, 0, 4, P, O), SPR_EINVAL, "dense: n=0 < 1");
  EXPECT_ERR(spr_dig_dense(F, F, F, 8, -2, P, O), SPR_EINVAL, "dense: d=-2 < 1");
  float Fn[32] = {0.5f, -1.25f};
  Fn[4 * 3 + 1] = INFINITY; /* key 3 */
  EXPECT_ERR(spr_dig_dense(F, Fn, F, 8, 4, P, O), SPR_EINVAL, "score of query 0, key 3 is");
  Fn[4 * 3 + 1] = 0;
  Fn[4 * 5 + 0] = NAN; /* query 5, times key 0's nonzero first element */
  EXPECT_ERR(spr_dig_dense(Fn, F, F, 8, 4, P, O), SPR_EINVAL, "score of query 5, key 0 is");
  /* metrics */
  spr_dig_metric_params mp;
  spr_dig_metric_default(&mp);
  spr_dig_accuracy a;
  CU_ASSERT_EQUAL_FATAL(spr_dig_dense(F, F, F, 8, 4, P, O), 0);
  EXPECT_ERR(spr_dig_metrics(NULL, O, O, P, m, 8, 4, &a, &ws), SPR_EINVAL, "metrics: params is NULL");
  EXPECT_ERR(spr_dig_metrics(&mp, NULL, O, P, m, 8, 4, &a, &ws), SPR_EINVAL, "metrics: O is NULL");
  EXPECT_ERR(spr_dig_metrics(&mp, O, NULL, P, m, 8, 4, &a, &ws), SPR_EINVAL, "O_dense is NULL");
  EXPECT_ERR(spr_dig_metrics(&mp, O, O, NULL, m, 8, 4, &a, &ws), SPR_EINVAL, "P_dense is NULL");
  EXPECT_ERR(spr_dig_metrics(&mp, O, O, P, NULL, 8, 4, &a, &ws), SPR_EINVAL, "metrics: mask is NULL");
  EXPECT_ERR(spr_dig_metrics(&mp, O, O, P, m, 8, 4, NULL, &ws), SPR_EINVAL, "metrics: output is NULL");
  EXPECT_ERR(spr_dig_metrics(&mp, O, O, P, m, 8, 4, &a, NULL), SPR_EINVAL,
             "metrics: workspace is NULL");
  EXPECT_ERR(spr_dig_metrics(&mp, O, O, P, m, 0, 4, &a, &ws), SPR_EINVAL, "metrics: n=0 < 1");
  EXPECT_ERR(spr_dig_metrics(&mp, O, O, P, m, 8, 0, &a, &ws), SPR_EINVAL, "metrics: d=0 < 1");
  EXPECT_ERR(spr_dig_metrics(&mp, O, O, P, m, 9, 4, &a, &ws), SPR_EINVAL,
             "metrics: n=9 x d=4 exceeds workspace 8 x 4");
  mp.top_k = 0;
  EXPECT_ERR(spr_dig_metrics(&mp, O, O, P, m, 8, 4, &a, &ws), SPR_EINVAL, "top_k=0 outside 1..n=8");
  mp.top_k = 9;
  EXPECT_ERR(spr_dig_metrics(&mp, O, O, P, m, 8, 4, &a, &ws), SPR_EINVAL, "top_k=9 outside 1..n=8");
  mp.top_k = 8;
  CU_ASSERT_EQUAL(spr_dig_metrics(&mp, O, O, P, m, 8, 4, &a, &ws), 0);
  spr_dig_ws_free(&ws);
  CU_ASSERT_PTR_NULL(ws.idx);
  spr_dig_ws_free(&ws); /* twice is safe */
}

/* ---- causal attention (docs/digital.md section 6) ----------------------- */

/* n = 2 of test_dense_known, causal: query 0 sees key 0 alone, p = (1, 0),
 * o = 1.5; query 1 sees both, as before: p = (1/2, 1/2), o = -0.375. */
static void test_dense_causal_known(void) {
  const float Q[2] = {2.0f, 0.0f}, K[2] = {0.0f, (float)(log(3.0) / 2)}, V[2] = {1.5f, -2.25f};
  float P[4], O[2];
  CU_ASSERT_EQUAL_FATAL(spr_dig_dense_causal(Q, K, V, 2, 1, P, O), 0);
  CU_ASSERT_DOUBLE_EQUAL(P[0], 1.0, 1e-7);
  CU_ASSERT_EQUAL(P[1], 0.0f);
  CU_ASSERT_DOUBLE_EQUAL(P[2], 0.5, 1e-7);
  CU_ASSERT_DOUBLE_EQUAL(P[3], 0.5, 1e-7);
  CU_ASSERT_DOUBLE_EQUAL(O[0], 1.5, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(O[1], -0.375, 1e-6);
}

/* Causal dense attention against a long double softmax over j <= i, with
 * tied scores (coarse values, repeated keys); P is 0 above the diagonal
 * and O = P V.  A non-finite key is found at the first query that sees
 * it. */
static void test_dense_causal_brute(void) {
  const int ns[] = {7, 13, 40};
  for (int c = 0; c < 3; c++) {
    const int n = ns[c], d = 5;
    float *Q = malloc((size_t)n * d * sizeof *Q), *K = malloc((size_t)n * d * sizeof *K);
    float *V = malloc((size_t)n * d * sizeof *V), *O = malloc((size_t)n * d * sizeof *O);
    float *P = malloc((size_t)n * n * sizeof *P);
    for (int t = 0; t < n * d; t++) {
      Q[t] = (float)(0.75 * rnd_int(-2, 2));
      K[t] = (float)(0.75 * rnd_int(-2, 2));
      V[t] = (float)(2.385 * (2 * rnd_unif() - 1));
    }
    for (int j = 3; j < n; j += 3) memcpy(K + j * d, K + (j - 2) * d, sizeof(float) * d);
    CU_ASSERT_EQUAL_FATAL(spr_dig_dense_causal(Q, K, V, n, d, P, O), 0);
    double perr = 0, oerr = 0, omag = 0;
    int above = 0, ties = 0;
    for (int i = 0; i < n; i++) {
      long double s[40], mx = -1e300L, z = 0;
      for (int j = 0; j <= i; j++) {
        long double x = 0;
        for (int t = 0; t < d; t++) x += (long double)Q[i * d + t] * K[j * d + t];
        s[j] = x / sqrtl((long double)d);
        if (s[j] > mx) mx = s[j];
        for (int l = 0; l < j; l++) ties += s[l] == s[j];
      }
      for (int j = 0; j <= i; j++) z += expl(s[j] - mx);
      for (int t = 0; t < d; t++) {
        long double o = 0;
        for (int j = 0; j <= i; j++) o += expl(s[j] - mx) / z * V[j * d + t];
        oerr = fmax(oerr, fabs((double)(o - O[i * d + t])));
        omag = fmax(omag, fabs((double)o));
      }
      for (int j = 0; j < n; j++) {
        if (j > i) above += P[i * n + j] != 0.0f;
        else perr = fmax(perr, fabs((double)(expl(s[j] - mx) / z - P[i * n + j])));
      }
    }
    CU_ASSERT_EQUAL(above, 0);
    CU_ASSERT(perr < 1e-6);
    CU_ASSERT(oerr < 2e-6 * omag);
    CU_ASSERT(ties > 0);
    /* a NaN in the last key: the non-causal form meets it at query 0,
     * the causal one at query n - 1, the only query that sees it */
    K[(n - 1) * d + 2] = NAN;
    spr_error_clear();
    CU_ASSERT_EQUAL(spr_dig_dense(Q, K, V, n, d, P, O), SPR_EINVAL);
    char want[80];
    snprintf(want, sizeof want, "score of query 0, key %d is", n - 1);
    SPR_ASSERT_CONTAINS(spr_errmsg(), want);
    CU_ASSERT_EQUAL(spr_dig_dense_causal(Q, K, V, n, d, P, O), SPR_EINVAL);
    snprintf(want, sizeof want, "score of query %d, key %d is", n - 1, n - 1);
    SPR_ASSERT_CONTAINS(spr_errmsg(), want);
    free(Q), free(K), free(V), free(O), free(P);
  }
}

/* n = 3 of test_metrics_hand, causal: P rows (1, 0, 0), (0.25, 0.75, 0),
 * (0.25, 0.25, 0.5); masks {0}, {1}, {0, 1}, plus a set bit above the
 * diagonal in row 0 (key 2), which the causal metrics ignore.
 * mass = (1 + 0.75 + 0.5)/3 = 0.75; top-1 = 0, 1, 2: kept, kept, pruned:
 * 2/3; top-2 with k_0 = 1: {0}: 1, {1, 0}: 1/2, {2, 0} (0 beats 1 on the
 * tie): 1/2 -> 2/3; top-3: k_i = 1, 2, 3: 1, 1/2, 2/3 -> 13/18. */
static void test_metrics_causal_hand(void) {
  const float P[9] = {1.0f, 0.0f, 0.0f, 0.25f, 0.75f, 0.0f, 0.25f, 0.25f, 0.5f};
  const float Od[6] = {3, 4, 1, 0, 0, 2}, O[6] = {3, 4, 1, 1, 0, 0};
  const int r0[] = {0, 2, -1}, r1[] = {1, -1}, r2[] = {0, 1, -1};
  const int *rows[] = {r0, r1, r2};
  uint8_t *m = mask_from_lists(3, rows);
  spr_dig_ws ws;
  CU_ASSERT_EQUAL_FATAL(spr_dig_ws_alloc(&ws, 3, 2), 0);
  spr_dig_metric_params mp = {2, 1};
  spr_dig_accuracy a;
  CU_ASSERT_EQUAL_FATAL(spr_dig_metrics(&mp, O, Od, P, m, 3, 2, &a, &ws), 0);
  CU_ASSERT_DOUBLE_EQUAL(a.mass_retained, 0.75, 1e-7);
  CU_ASSERT_DOUBLE_EQUAL(a.top1_recall, 2.0 / 3, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(a.topk_recall, 2.0 / 3, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(a.rel_fro, sqrt(1.0 / 6.0), 1e-12); /* outputs: as non-causal */
  mp.top_k = 3;
  CU_ASSERT_EQUAL_FATAL(spr_dig_metrics(&mp, O, Od, P, m, 3, 2, &a, &ws), 0);
  CU_ASSERT_DOUBLE_EQUAL(a.topk_recall, 13.0 / 18, 1e-15);
  CU_ASSERT_EQUAL(a.top_k, 3);
  /* non-causal on the same data: row 0's top-3 is {0, 1, 2}, 2 of them
   * kept (the bit above the diagonal counts): 2/3, 1/3... */
  mp.causal = 0;
  CU_ASSERT_EQUAL_FATAL(spr_dig_metrics(&mp, O, Od, P, m, 3, 2, &a, &ws), 0);
  CU_ASSERT_DOUBLE_EQUAL(a.topk_recall, (2.0 / 3 + 1.0 / 3 + 2.0 / 3) / 3, 1e-15);
  free(m);
  spr_dig_ws_free(&ws);
}

/* Causal metrics against a brute force over j <= i (selection sort by
 * probability, ties to the lower index, k_i = min(k, i + 1)); random mask
 * bits above the diagonal must not count. */
static void test_metrics_causal_brute(void) {
  const int ns[] = {13, 29};
  for (int c = 0; c < 2; c++) {
    const int n = ns[c], d = 5;
    float *P = malloc((size_t)n * n * sizeof *P), O[29 * 5], Od[29 * 5];
    uint8_t m[29 * 4] = {0};
    for (int i = 0; i < n; i++) {
      double z = 0;
      for (int j = 0; j < n; j++) {
        P[i * n + j] = j <= i ? (float)rnd_int(1, 12) : 0.0f; /* ties */
        z += P[i * n + j];
        set_bit(m, n, i, j, rnd_unif() < 0.35);
      }
      for (int j = 0; j <= i; j++) P[i * n + j] = (float)(P[i * n + j] / z);
    }
    for (int t = 0; t < n * d; t++) {
      Od[t] = (float)(rnd_unif() * 2 - 1);
      O[t] = Od[t] + (float)(0.3 * (rnd_unif() - 0.5));
    }
    spr_dig_ws ws;
    CU_ASSERT_EQUAL_FATAL(spr_dig_ws_alloc(&ws, n, d), 0);
    const int ks[] = {1, 5, 7, n};
    for (int kc = 0; kc < 4; kc++) {
      const int k = ks[kc];
      double mass = 0, t1 = 0, tk = 0;
      for (int i = 0; i < n; i++) {
        int order[29], taken[29] = {0};
        for (int r = 0; r <= i; r++) {
          int b = -1;
          for (int j = 0; j <= i; j++)
            if (!taken[j] && (b < 0 || P[i * n + j] > P[i * n + b])) b = j;
          taken[b] = 1;
          order[r] = b;
        }
        for (int j = 0; j <= i; j++) mass += get_bit(m, n, i, j) * (double)P[i * n + j];
        t1 += get_bit(m, n, i, order[0]);
        const int ki = k < i + 1 ? k : i + 1;
        int h = 0;
        for (int r = 0; r < ki; r++) h += get_bit(m, n, i, order[r]);
        tk += (double)h / ki;
      }
      spr_dig_metric_params mp;
      spr_dig_metric_default(&mp);
      mp.top_k = k;
      mp.causal = 1;
      spr_dig_accuracy a;
      CU_ASSERT_EQUAL_FATAL(spr_dig_metrics(&mp, O, Od, P, m, n, d, &a, &ws), 0);
      CU_ASSERT_DOUBLE_EQUAL(a.mass_retained, mass / n, 1e-12);
      CU_ASSERT_DOUBLE_EQUAL(a.top1_recall, t1 / n, 1e-15);
      CU_ASSERT_DOUBLE_EQUAL(a.topk_recall, tk / n, 1e-12);
      if (k == n) CU_ASSERT(a.topk_recall > 0.2 && a.topk_recall < 0.5);
    }
    free(P);
    spr_dig_ws_free(&ws);
  }
}

/* The causal dense mask (row i: keys 0 .. i) through the buffer, both
 * policies, n = 13 and capacity C = 6 (d = 5, 8-byte tokens, 48 bytes):
 * query i hits the min(i, C) keys resident from query i - 1, fetches the
 * i + 1 - min(i, C) others and streams max(0, i + 1 - C) of them. */
static void test_fetch_causal_dense(void) {
  const int n = 13, C = 6;
  uint8_t m[13 * 2] = {0};
  for (int i = 0; i < n; i++)
    for (int j = 0; j <= i; j++) set_bit(m, n, i, j, 1);
  expect e;
  memset(&e, 0, sizeof e);
  for (int pol = 0; pol < 2; pol++) {
    spr_dig_ws ws;
    CU_ASSERT_EQUAL_FATAL(spr_dig_ws_alloc(&ws, n, 5), 0);
    spr_dig_fetch_params p = params(8 * C, pol);
    spr_dig_fetch_stats st;
    CU_ASSERT_EQUAL_FATAL(spr_dig_fetch(&p, m, n, 5, &st, &ws), 0);
    int64_t hits = 0, fetches = 0, over = 0;
    int bad = 0;
    for (int i = 0; i < n; i++) {
      const int h = i < C ? i : C, f = i + 1 - h, o = i + 1 - C > 0 ? i + 1 - C : 0;
      bad += ws.q_hits[i] != h || ws.q_fetches[i] != f || ws.q_overflow[i] != o;
      hits += h, fetches += f, over += o;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(st.uses, (int64_t)n * (n + 1) / 2);
    CU_ASSERT_EQUAL(st.hits, hits);
    CU_ASSERT_EQUAL(st.fetches, fetches);
    CU_ASSERT_EQUAL(st.overflow_tokens, over);
    CU_ASSERT_EQUAL(st.peak_tokens, C);
    spr_dig_ws_free(&ws);
  }
}

/* ---- row blocks (spr_digital.h: the *_rows functions) -------------------- */

/* The fetch in row blocks of uneven sizes gives the whole-head fetch, both
 * policies, and refuses blocks out of order or an early end. */
static void test_fetch_rows(void) {
  const int n = 100, d = 8;
  uint8_t *m = calloc((size_t)n * spr_mask_row_bytes(n), 1);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) set_bit(m, n, i, j, rnd_unif() < (i % 7 ? 0.25 : 0.7));
  spr_dig_ws a, b;
  CU_ASSERT_FATAL(spr_dig_ws_alloc(&a, n, d) == 0 && spr_dig_ws_alloc(&b, n, d) == 0);
  for (int policy = 0; policy < 2; policy++) {
    const spr_dig_fetch_params p = params(400, policy);
    spr_dig_fetch_stats whole, part;
    CU_ASSERT_FATAL(spr_dig_fetch(&p, m, n, d, &whole, &a) == 0);
    CU_ASSERT_FATAL(spr_dig_fetch_begin(&p, n, d, &part, &b) == 0);
    const size_t rb = spr_mask_row_bytes(n);
    for (int i0 = 0, step = 7; i0 < n; i0 += step, step = step == 7 ? 13 : 7) {
      const int mm = n - i0 < step ? n - i0 : step;
      CU_ASSERT_FATAL(spr_dig_fetch_rows(&p, m + (size_t)i0 * rb, i0, mm, &part, &b) == 0);
    }
    CU_ASSERT_FATAL(spr_dig_fetch_end(&part, &b) == 0);
    CU_ASSERT(memcmp(&whole, &part, sizeof whole) == 0);
    CU_ASSERT(memcmp(a.q_hits, b.q_hits, n * sizeof *a.q_hits) == 0);
    CU_ASSERT(memcmp(a.q_fetches, b.q_fetches, n * sizeof *a.q_fetches) == 0);
    CU_ASSERT(memcmp(a.q_overflow, b.q_overflow, n * sizeof *a.q_overflow) == 0);
    CU_ASSERT(whole.overflow_tokens > 0 && whole.hits > 0); /* the buffer binds */
    /* errors */
    CU_ASSERT_FATAL(spr_dig_fetch_begin(&p, n, d, &part, &b) == 0);
    EXPECT_ERR(spr_dig_fetch_rows(&p, m, 5, 3, &part, &b), SPR_EINVAL,
               "fetch: rows 5 .. 7 out of order (next 0 of 100)");
    CU_ASSERT_FATAL(spr_dig_fetch_rows(&p, m, 0, 10, &part, &b) == 0);
    EXPECT_ERR(spr_dig_fetch_end(&part, &b), SPR_EINVAL, "fetch: ended after 10 of 100 rows");
    EXPECT_ERR(spr_dig_fetch_rows(&p, NULL, 10, 3, &part, &b), SPR_EINVAL, "NULL argument");
  }
  spr_dig_ws_free(&a);
  spr_dig_ws_free(&b);
  free(m);
}

/* The recompute from exact scores against a double-precision softmax:
 * sparse rows, a dense block (the GEMM path) and empty rows; within 1e-5
 * of the largest output (float exponentials under 1 ulp, float sums).
 * The same with the block's shared exponentials (spr_dig_exp_rows): the
 * very same floats in every row, those that keep their maximum (from E)
 * and those that do not (their own; row 5 leaves out a key 2e6 above the
 * rest, row 6 keeps one; rows 7 and 8 have two keys tied at the maximum,
 * row 7 keeps the second only, row 8 neither). */
static void test_recompute_rows(void) {
  const int n = 150, d = 24;
  const size_t rb = spr_mask_row_bytes(n);
  int32_t *S = malloc((size_t)n * n * sizeof *S);
  spr_dig_rowmax *emax = malloc(n * sizeof *emax);
  float *vf = malloc((size_t)n * d * sizeof *vf), *O = malloc((size_t)n * d * sizeof *O);
  float *O0 = malloc((size_t)n * d * sizeof *O0), *E = malloc((size_t)n * n * sizeof *E);
  float *pbuf = malloc((size_t)n * n * sizeof *pbuf);
  uint8_t *m = calloc((size_t)n * rb, 1);
  for (int t = 0; t < n * n; t++) S[t] = rnd_int(-40000, 40000);
  S[5 * n + 7] = 2000000;
  S[6 * n + 9] = 2000000;
  S[7 * n + 2] = S[7 * n + 11] = 2000000;
  S[8 * n + 4] = S[8 * n + 13] = 2000000;
  for (int t = 0; t < n * d; t++) vf[t] = (float)rnd_int(-127, 127);
  const float alpha = 2.385e-4f, vs = 0.0173f;
  spr_dig_ws ws;
  CU_ASSERT_FATAL(spr_dig_ws_alloc(&ws, n, d) == 0);
  CU_ASSERT_FATAL(spr_dig_exp_rows(S, n, alpha, 0, 60, n, 0, E, emax) == 0);
  CU_ASSERT_FATAL(spr_dig_exp_rows(S + 60 * n, n, alpha, 60, n - 60, n, 0, E + 60 * n, emax + 60) == 0);
  CU_ASSERT_EQUAL(emax[5].max, 2000000);
  CU_ASSERT_EQUAL(emax[5].arg, 7);
  CU_ASSERT_EQUAL(emax[7].max, 2000000);
  CU_ASSERT_EQUAL(emax[7].arg, -1 - 2);
  CU_ASSERT_EQUAL(emax[8].arg, -1 - 4);
  for (int i = 0; i < n; i++) {
    int first = -1, ties = 0;
    for (int j = 0; j < n; j++)
      if (S[i * n + j] == emax[i].max) {
        if (first < 0) first = j;
        ties++;
      }
    CU_ASSERT_EQUAL(emax[i].arg, ties == 1 ? first : -1 - first);
  }
  for (int sh = 0; sh < 4; sh++) {
    const int dense = sh >> 1, shared = sh & 1;
    const float *Eb = shared ? E : NULL;
    const spr_dig_rowmax *eb = shared ? emax : NULL;
    rng_state = 0x9e3779b97f4a7c15ULL + 77 + (uint64_t)dense; /* the same masks with and without E */
    memset(m, 0, (size_t)n * rb);
    int empty = 0;
    int64_t kept = 0;
    for (int i = 0; i < n; i++) {
      if (i == 3) { /* one empty row */
        empty++;
        continue;
      }
      for (int j = 0; j < n; j++)
        if ((dense ? (i % 4 ? 1 : j <= i) : rnd_unif() < 0.12) && !(i == 5 && j == 7) &&
            !(i == 7 && j == 2) && !(i == 8 && (j == 4 || j == 13))) {
          set_bit(m, n, i, j, 1);
          kept++;
        }
      if (i == 6 && !get_bit(m, n, i, 9)) {
        set_bit(m, n, i, 9, 1);
        kept++;
      }
      if (i == 7 && !get_bit(m, n, i, 11)) {
        set_bit(m, n, i, 11, 1);
        kept++;
      }
    }
    spr_dig_attend_stats st = {0, 0};
    /* rows 0 .. 99 in two blocks, then the rest */
    /* the dense masks through the GEMM, the sparse ones through the sums */
    float *pb = dense ? pbuf : NULL;
    CU_ASSERT_FATAL(spr_dig_recompute_rows(S, n, alpha, m, 0, 60, n, vf, d, vs, Eb, eb, O, &st,
                                           pb, &ws) == 0);
    CU_ASSERT_FATAL(spr_dig_recompute_rows(S + 60 * n, n, alpha, m + 60 * rb, 60, n - 60, n, vf, d,
                                           vs, Eb ? Eb + 60 * n : NULL, eb ? eb + 60 : NULL,
                                           O + 60 * d, &st, pb, &ws) == 0);
    if (!shared) memcpy(O0, O, (size_t)n * d * sizeof *O);
    else
      CU_ASSERT(memcmp(O, O0, (size_t)n * d * sizeof *O) == 0);
    CU_ASSERT_EQUAL(st.survivors, kept);
    CU_ASSERT_EQUAL(st.empty_queries, empty);
    double err = 0, mag = 0;
    for (int i = 0; i < n; i++) {
      double mx = -INFINITY, z = 0, o[24] = {0};
      for (int j = 0; j < n; j++)
        if (get_bit(m, n, i, j)) mx = fmax(mx, (double)alpha * S[i * n + j]);
      for (int j = 0; j < n; j++)
        if (get_bit(m, n, i, j)) {
          const double e = exp((double)alpha * S[i * n + j] - mx);
          z += e;
          for (int u = 0; u < d; u++) o[u] += e * vf[j * d + u];
        }
      for (int u = 0; u < d; u++) {
        const double ref = z > 0 ? vs * o[u] / z : 0.0;
        err = fmax(err, fabs(O[i * d + u] - ref));
        mag = fmax(mag, fabs(ref));
      }
    }
    CU_ASSERT(mag > 0.5);
    CU_ASSERT(err <= 1e-5 * mag);
    for (int u = 0; u < d; u++) CU_ASSERT_EQUAL(O[3 * d + u], 0.0f);
  }
  EXPECT_ERR(spr_dig_recompute_rows(S, n, -1.0f, m, 0, 2, n, vf, d, vs, NULL, NULL, O, NULL, NULL, &ws),
             SPR_EINVAL, "alpha=-1 must be finite and > 0");
  EXPECT_ERR(spr_dig_recompute_rows(S, n, alpha, m, 140, 20, n, vf, d, vs, NULL, NULL, O, NULL, NULL, &ws),
             SPR_EINVAL, "recompute: rows 140 .. 159 of 150");
  EXPECT_ERR(spr_dig_recompute_rows(NULL, n, alpha, m, 0, 2, n, vf, d, vs, NULL, NULL, O, NULL, NULL, &ws),
             SPR_EINVAL, "recompute: NULL argument");
  EXPECT_ERR(spr_dig_exp_rows(S, n, alpha, 140, 20, n, 0, E, emax), SPR_EINVAL,
             "exp rows: rows 140 .. 159 of 150");
  EXPECT_ERR(spr_dig_exp_rows(S, n, alpha, 0, 2, n, 0, NULL, emax), SPR_EINVAL,
             "exp rows: NULL argument");
  EXPECT_ERR(spr_dig_exp_rows(S, n, 0.0f, 0, 2, n, 0, E, emax), SPR_EINVAL,
             "alpha=0 must be finite and > 0");
  spr_dig_ws_free(&ws);
  free(S); free(vf); free(O); free(O0); free(E); free(emax); free(pbuf); free(m);
}

/* The dense reference in row blocks equals the whole head (the same per-row
 * softmax; the GEMMs' last bits may move with the block shape). */
static void test_dense_rows(void) {
  const int n = 90, d = 16;
  float *Q = malloc(n * d * 4), *K = malloc(n * d * 4), *V = malloc(n * d * 4);
  float *P = malloc(n * n * 4), *O = malloc(n * d * 4), *Pb = malloc(n * n * 4), *Ob = malloc(n * d * 4);
  for (int t = 0; t < n * d; t++) {
    Q[t] = (float)(rnd_unif() * 4 - 2);
    K[t] = (float)(rnd_unif() * 4 - 2);
    V[t] = (float)(rnd_unif() * 2 - 1);
  }
  for (int causal = 0; causal < 2; causal++) {
    CU_ASSERT_FATAL(spr_dig_dense_rows(Q, K, V, n, d, causal, 0, n, P, O) == 0);
    for (int i0 = 0; i0 < n; i0 += 32) {
      const int m = n - i0 < 32 ? n - i0 : 32;
      CU_ASSERT_FATAL(spr_dig_dense_rows(Q, K, V, n, d, causal, i0, m, Pb + i0 * n, Ob + i0 * d) == 0);
    }
    double ep = 0, eo = 0;
    for (int t = 0; t < n * n; t++) ep = fmax(ep, fabs(P[t] - Pb[t]));
    for (int t = 0; t < n * d; t++) eo = fmax(eo, fabs(O[t] - Ob[t]));
    CU_ASSERT(ep < 1e-6 && eo < 1e-5);
    if (causal) CU_ASSERT_EQUAL(Pb[5 * n + 6], 0.0f);
  }
  EXPECT_ERR(spr_dig_dense_rows(Q, K, V, n, d, 0, 80, 20, P, O), SPR_EINVAL,
             "dense: rows 80 .. 99 of 90");
  Q[7 * d + 3] = INFINITY;
  EXPECT_ERR(spr_dig_dense_rows(Q, K, V, n, d, 0, 0, 32, P, O), SPR_EINVAL,
             "score of query 7, key 0 is");
  free(Q); free(K); free(V); free(P); free(O); free(Pb); free(Ob);
}

/* Dense top keys against sorting each row (probability descending, ties
 * to the lower key): small k by block maxima, large k by the heap; rows
 * with many ties; causal rows. */
static void test_rank_rows(void) {
  const int n = 130;
  float *P = malloc((size_t)n * n * sizeof *P);
  int *top = malloc((size_t)n * 40 * sizeof *top), *ref = malloc(n * sizeof *ref);
  spr_dig_ws ws;
  CU_ASSERT_FATAL(spr_dig_ws_alloc(&ws, n, 4) == 0);
  for (int rep = 0; rep < 3; rep++) {
    for (int t = 0; t < n * n; t++)
      P[t] = rep == 0 ? (float)rnd_unif() : (float)(rnd_int(0, rep == 1 ? 6 : 60) / 64.0);
    for (int causal = 0; causal < 2; causal++)
      for (int k = 1; k <= 40; k += k < 16 ? 3 : 12) {
        CU_ASSERT_FATAL(spr_dig_rank_rows(P, 0, n, n, k, causal, top, &ws) == 0);
        int bad = 0;
        for (int i = 0; i < n; i++) {
          const int nk = causal ? i + 1 : n, ki = k < nk ? k : nk;
          const float *pr = P + (size_t)i * n;
          for (int j = 0; j < nk; j++) ref[j] = j;
          for (int a = 0; a < ki; a++) /* selection by the ranking */
            for (int b = a + 1; b < nk; b++)
              if (pr[ref[b]] > pr[ref[a]] || (pr[ref[b]] == pr[ref[a]] && ref[b] < ref[a])) {
                const int t = ref[a];
                ref[a] = ref[b];
                ref[b] = t;
              }
          for (int a = 0; a < k; a++) bad += top[i * k + a] != (a < ki ? ref[a] : -1);
        }
        CU_ASSERT_EQUAL(bad, 0);
      }
  }
  EXPECT_ERR(spr_dig_rank_rows(P, 0, n, n, 0, 0, top, &ws), SPR_EINVAL, "top_k=0 outside 1..n=130");
  spr_dig_ws_free(&ws);
  free(P); free(top); free(ref);
}

/* Metrics in row blocks equal spr_dig_metrics; the mask sum against a
 * direct sum. */
static void test_metrics_rows(void) {
  const int n = 70, d = 6;
  const size_t rb = spr_mask_row_bytes(n);
  float *P = malloc(n * n * 4), *O = malloc(n * d * 4), *Od = malloc(n * d * 4);
  uint8_t *m = calloc(n * rb, 1);
  for (int t = 0; t < n * n; t++) P[t] = (float)rnd_unif();
  for (int t = 0; t < n * d; t++) {
    O[t] = (float)rnd_unif();
    Od[t] = (float)rnd_unif();
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) set_bit(m, n, i, j, i == 9 || rnd_unif() < 0.3);
  spr_dig_ws ws;
  CU_ASSERT_FATAL(spr_dig_ws_alloc(&ws, n, d) == 0);
  spr_dig_metric_params mp;
  spr_dig_metric_default(&mp);
  spr_dig_accuracy whole, part;
  CU_ASSERT_FATAL(spr_dig_metrics(&mp, O, Od, P, m, n, d, &whole, &ws) == 0);
  int *top = malloc(n * mp.top_k * sizeof *top);
  CU_ASSERT_FATAL(spr_dig_rank_rows(P, 0, n, n, mp.top_k, 0, top, &ws) == 0);
  spr_dig_metric_acc a;
  spr_dig_metric_acc_init(&a);
  CU_ASSERT_FATAL(spr_dig_metrics_rows(&mp, O, Od, P, top, m, 0, 33, n, d, &a) == 0);
  CU_ASSERT_FATAL(spr_dig_metrics_rows(&mp, O + 33 * d, Od + 33 * d, P + 33 * n, top + 33 * mp.top_k,
                                       m + 33 * rb, 33, n - 33, n, d, &a) == 0);
  spr_dig_metrics_end(&a, n, mp.top_k, &part);
  CU_ASSERT(whole.rel_fro == part.rel_fro && whole.cos_mean == part.cos_mean &&
            whole.cos_min == part.cos_min && whole.cos_min_query == part.cos_min_query &&
            whole.mass_retained == part.mass_retained && whole.top1_recall == part.top1_recall &&
            whole.topk_recall == part.topk_recall && whole.top_k == part.top_k);
  for (int i = 0; i < n; i++) {
    double ref = 0;
    for (int j = 0; j < n; j++)
      if (get_bit(m, n, i, j)) ref += P[i * n + j];
    CU_ASSERT_DOUBLE_EQUAL(spr_dig_mask_sum(P + i * n, m + i * rb, n), ref, 1e-12 * (ref + 1));
  }
  /* the mask sum's order (spr_digital.c): 64 partial sums, lane u the kept
   * keys u mod 64 in increasing order, added pairwise; bit for bit, on
   * rows of 1 to 300 keys (the last word partial, bits beyond nk set in
   * the row), densities 0 to 1 */
  {
    const int nmax = 300;
    const size_t rbm = spr_mask_row_bytes(nmax);
    float *p = malloc(nmax * sizeof *p);
    uint8_t *row = malloc(rbm);
    for (int t = 0; t < nmax; t++) p[t] = (float)rnd_unif() * (t % 7 ? 1.0f : 1e-3f);
    int same = 1;
    for (int nk = 1; nk <= nmax; nk += 13)
      for (int dd = 0; dd <= 4; dd++) {
        memset(row, 0xFF, rbm); /* keys beyond nk: set, never counted */
        for (int j = 0; j < nk; j++)
          if (!(rnd_unif() < dd / 4.0)) row[j >> 3] &= (uint8_t) ~(1u << (j & 7));
        double l[64] = {0};
        for (int j = 0; j < nk; j++)
          if (row[j >> 3] >> (j & 7) & 1) l[j % 64] += p[j];
        for (int h = 32; h >= 1; h /= 2)
          for (int u = 0; u < h; u++) l[u] += l[u + h];
        same &= spr_dig_mask_sum(p, row, nk) == l[0];
      }
    CU_ASSERT(same);
    free(p);
    free(row);
  }
  EXPECT_ERR(spr_dig_metrics_rows(&mp, NULL, Od, P, top, m, 0, 1, n, d, &a), SPR_EINVAL,
             "metrics: NULL argument");
  spr_dig_ws_free(&ws);
  free(P); free(O); free(Od); free(m); free(top);
}

int main(void) {
  static const CU_TestInfo tests[] = {
      {"dense_tiled: plan and fetch counts by hand", test_tiled_hand},
      {"dense_tiled: totals and the automatic tile against brute force", test_tiled_brute},
      {"fetch defaults and S/M-SPRINT capacities", test_fetch_defaults},
      {"fetch reuse by hand, both policies", test_fetch_reuse},
      {"fetch with binding capacity by hand", test_fetch_capacity_binds},
      {"fetch with P_i above capacity by hand", test_fetch_overflow},
      {"fetch against brute-force buffers", test_fetch_random},
      {"attend against brute-force softmax", test_attend_brute},
      {"dense attention closed form", test_dense_known},
      {"keep-all mask equals dense attention", test_keep_all_equals_dense},
      {"metrics by hand", test_metrics_hand},
      {"metrics against brute force", test_metrics_brute},
      {"error paths", test_errors},
      {"causal dense attention closed form", test_dense_causal_known},
      {"causal dense attention against brute force", test_dense_causal_brute},
      {"causal metrics by hand", test_metrics_causal_hand},
      {"causal metrics against brute force", test_metrics_causal_brute},
      {"causal dense mask through the buffer", test_fetch_causal_dense},
      {"fetch in row blocks = whole head", test_fetch_rows},
      {"recompute rows from exact scores vs double softmax", test_recompute_rows},
      {"dense reference in row blocks", test_dense_rows},
      {"dense ranks vs sorting (ties, causal, both paths)", test_rank_rows},
      {"metrics in row blocks, mask sums", test_metrics_rows},
      CU_TEST_INFO_NULL};
  return spr_test_run("digital", tests);
}
