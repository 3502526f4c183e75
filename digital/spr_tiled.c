/* spr_tiled.c - dense attention tiled over query blocks (model and counts:
 * spr_tiled.h, docs/energy.md section 10). */
#include "config.h"
#include "spr_tiled.h"
#include "spr_error.h"

#include <string.h>

void spr_tiled_params_of(const spr_config *c, spr_tiled_params *p) {
  memset(p, 0, sizeof *p);
  p->buffer_bytes = c->dig.buffer_bytes;
  p->key_bits = c->xbar.key_bits;
  p->value_bits = c->dig.value_bits;
  p->query_bits = c->dig.query_bits;
  p->tile_tokens = c->dig.tile_tokens;
  p->causal = c->wl.causal != 0;
}

static int64_t bytes_of(int d, int bits) { return ((int64_t)d * bits + 7) / 8; }

int64_t spr_tiled_min_bytes(const spr_tiled_params *p, int d) {
  const int64_t tok = bytes_of(d, p->key_bits) + bytes_of(d, p->value_bits);
  const int64_t per_q = bytes_of(d, p->query_bits) + 4 * (int64_t)d + 8;
  return per_q + (p->tile_tokens > 0 ? p->tile_tokens : 1) * tok;
}

/* Plan of tile bk, or bq = 0 when the buffer cannot hold one query. */
static void plan_for(const spr_tiled_params *p, int n, int d, int bk, spr_tiled_plan *pl) {
  memset(pl, 0, sizeof *pl);
  pl->n = n;
  pl->d = d;
  pl->causal = p->causal != 0;
  pl->bk = bk;
  pl->token_bytes = bytes_of(d, p->key_bits) + bytes_of(d, p->value_bits);
  pl->q_bytes = bytes_of(d, p->query_bits);
  pl->acc_bytes = 4 * (int64_t)d + 8;
  pl->tw = (pl->token_bytes + 7) / 8;
  pl->qw = (pl->q_bytes + 7) / 8;
  pl->aw = (pl->acc_bytes + 7) / 8;
  pl->buffer_bytes = p->buffer_bytes;
  const int64_t room = p->buffer_bytes - (int64_t)bk * pl->token_bytes;
  const int64_t bq = room > 0 ? room / (pl->q_bytes + pl->acc_bytes) : 0;
  pl->bq = (int)(bq < n ? bq : n);
  pl->blocks = pl->bq > 0 ? (n + pl->bq - 1) / pl->bq : 0;
}

int spr_tiled_block_tiles(const spr_tiled_plan *pl, int b) {
  const int i1 = (b + 1) * pl->bq < pl->n ? (b + 1) * pl->bq : pl->n;
  const int last = pl->causal ? i1 : pl->n; /* keys 0 .. last-1 are seen */
  return (last + pl->bk - 1) / pl->bk;
}

/* The keys query i sees in tile [j0, j1): all of them, or (causal)
 * those up to i. */
static inline int64_t tile_keys(int causal, int i, int j0, int j1) {
  if (!causal) return j1 - j0;
  const int hi = j1 < i + 1 ? j1 : i + 1;
  return hi > j0 ? hi - j0 : 0;
}

/* Over the queries i0 .. i1-1 of a block and the keys [j0, j1) of a tile:
 * *keys = sum_i k_i, *a = #{i : k_i > 0}, in closed form (k_i grows by one
 * per query between j0 and j1 - 1, causal). */
static void tile_sums(int causal, int i0, int i1, int j0, int j1, int64_t *keys, int64_t *a) {
  if (!causal) {
    *keys = (int64_t)(i1 - i0) * (j1 - j0);
    *a = j1 > j0 ? i1 - i0 : 0;
    return;
  }
  /* k_i = 0 for i < j0; i + 1 - j0 for j0 <= i < j1 - 1; j1 - j0 from
   * i = j1 - 1 on */
  const int64_t p0 = i0 > j0 ? i0 : j0, p1 = i1 < j1 - 1 ? i1 : j1 - 1; /* partial rows */
  const int64_t f0 = i0 > j1 - 1 ? i0 : j1 - 1;                       /* full rows */
  int64_t s = 0;
  if (p1 > p0) s += (p0 + 1 - j0 + p1 - j0) * (p1 - p0) / 2; /* sum of i + 1 - j0 */
  if (i1 > f0) s += (int64_t)(i1 - f0) * (j1 - j0);
  *keys = s;
  *a = i1 > p0 ? i1 - p0 : 0; /* the queries i >= j0 */
}

void spr_tiled_step_counts(const spr_tiled_plan *pl, int b, int t, spr_ledger_counts *q,
                           int64_t *fetched, int64_t *uses) {
  const int n = pl->n;
  const int64_t d = pl->d;
  const int i0 = b * pl->bq, i1 = i0 + pl->bq < n ? i0 + pl->bq : n;
  const int j0 = t * pl->bk, j1 = j0 + pl->bk < n ? j0 + pl->bk : n;
  const int64_t f = pl->causal ? (j1 < i1 ? j1 : i1) - j0 : j1 - j0;
  int64_t keys, a;
  tile_sums(pl->causal, i0, i1, j0, j1, &keys, &a);
  const int64_t a2 = t > 0 ? a : 0;
  const int64_t nq = i1 - i0;
  const int last = t == spr_tiled_block_tiles(pl, b) - 1;
  memset(q, 0, sizeof *q);
  q->buffer_bytes = pl->buffer_bytes;
  q->reram_bits_read = f * pl->token_bytes * 8;
  q->sram_words_written = f * pl->tw + (t == 0 ? nq * pl->qw : 0) + a * pl->aw;
  q->sram_words_read = keys * pl->tw + a * pl->qw + a2 * pl->aw + (last ? nq * pl->aw : 0);
  q->score_macs = keys * d;
  q->exps = keys + a2;
  q->v_macs = keys * d + a2 * (d + 1);
  q->divs = last ? nq * d : 0;
  if (fetched) *fetched = f;
  if (uses) *uses = keys;
}

/* Energy of the whole head under plan pl, priced with e: the counts of
 * every step summed per block in closed form (the steps' counts are
 * linear: sum_t over a block's tiles of keys = sum_i of the keys query i
 * sees, of a = sum_i of the tiles where query i sees a key). */
static int head_energy(const spr_tiled_plan *pl, const spr_energy_params *e, double *J) {
  spr_ledger_counts sum;
  memset(&sum, 0, sizeof sum);
  const int n = pl->n;
  const int64_t d = pl->d;
  for (int b = 0; b < pl->blocks; b++) {
    const int i0 = b * pl->bq, i1 = i0 + pl->bq < n ? i0 + pl->bq : n;
    const int nt = spr_tiled_block_tiles(pl, b);
    const int64_t nq = i1 - i0, seen = pl->causal ? i1 : n; /* keys fetched by the block */
    int64_t keys = 0, a = 0, a0 = 0;
    for (int i = i0; i < i1; i++) {
      const int64_t ki = pl->causal ? i + 1 : n; /* keys of query i */
      keys += ki;
      a += (ki + pl->bk - 1) / pl->bk; /* tiles with a key of query i */
      a0 += ki > 0;                     /* ... among them tile 0 */
    }
    const int64_t a2 = a - a0;
    spr_ledger_counts q;
    memset(&q, 0, sizeof q);
    q.buffer_bytes = pl->buffer_bytes;
    q.reram_bits_read = seen * pl->token_bytes * 8;
    q.sram_words_written = seen * pl->tw + nq * pl->qw + a * pl->aw;
    q.sram_words_read = keys * pl->tw + a * pl->qw + a2 * pl->aw + (nt > 0 ? nq * pl->aw : 0);
    q.score_macs = keys * d;
    q.exps = keys + a2;
    q.v_macs = keys * d + a2 * (d + 1);
    q.divs = nt > 0 ? nq * d : 0;
    int rc = spr_ledger_add(&sum, &q);
    if (rc) return rc;
  }
  spr_ledger_result r;
  int rc = spr_ledger_price(e, &sum, &r);
  if (rc) return rc;
  *J = r.total_J;
  return 0;
}

int spr_tiled_plan_make(const spr_tiled_params *p, const spr_energy_params *e, int n, int d,
                        spr_tiled_plan *out) {
  if (!p || !e || !out)
    return spr_error(SPR_EINVAL, "spr_tiled_plan_make: NULL argument '%s'",
                     !p ? "p" : !e ? "e" : "out");
  if (n < 1 || d < 1)
    return spr_error(SPR_EINVAL, "spr_tiled_plan_make: head shape %d x %d", n, d);
  if (p->key_bits < 0 || p->key_bits > 32 || p->value_bits < 1 || p->value_bits > 32 ||
      p->query_bits < 1 || p->query_bits > 32)
    return spr_error(SPR_EINVAL, "spr_tiled_plan_make: widths key %d, value %d, query %d bits "
                     "outside 0..32, 1..32, 1..32", p->key_bits, p->value_bits, p->query_bits);
  if (p->tile_tokens < 0 || p->tile_tokens > n)
    return spr_error(SPR_EINVAL, "digital.tile_tokens = %d: outside 0 (automatic) .. N = %d",
                     p->tile_tokens, n);
  const int64_t need = spr_tiled_min_bytes(p, d);
  if (p->buffer_bytes < need) {
    spr_tiled_plan pl;
    plan_for(p, n, d, p->tile_tokens > 0 ? p->tile_tokens : 1, &pl);
    return spr_error(SPR_EINVAL,
                     "digital.buffer_bytes = %lld is too small for dense_tiled: one query block "
                     "needs at least %lld bytes (a query's codes and fp32 accumulators, %lld B, "
                     "plus a K/V tile of %d token%s of %lld B); raise digital.buffer_bytes%s or "
                     "set baselines.dense_tiled = false",
                     (long long)p->buffer_bytes, (long long)need,
                     (long long)(pl.q_bytes + pl.acc_bytes), pl.bk, pl.bk == 1 ? "" : "s",
                     (long long)pl.token_bytes, p->tile_tokens > 1 ? ", lower digital.tile_tokens" : "");
  }
  if (p->tile_tokens > 0) {
    plan_for(p, n, d, p->tile_tokens, out);
    return 0;
  }
  /* the cheapest tile among the powers of two up to n, and n itself */
  int best = 0;
  double bestJ = 0;
  for (int bk = 1;; bk = bk > n / 2 ? n : 2 * bk) {
    spr_tiled_plan pl;
    plan_for(p, n, d, bk, &pl);
    if (pl.bq >= 1) {
      double J;
      int rc = head_energy(&pl, e, &J);
      if (rc) return rc;
      if (!best || J <= bestJ) {
        best = bk;
        bestJ = J;
      }
    }
    if (bk == n) break;
  }
  plan_for(p, n, d, best, out);
  return 0;
}
