/* spr_pipeline.c - layer-by-layer simulation (data flow in spr_pipeline.h). */
#include "config.h"
#include "spr_pipeline.h"
#include "spr_analog.h"
#include "spr_error.h"
#include "spr_mat.h"
#include "spr_quant.h"
#include "spr_rng.h"
#include "spr_synth.h"
#include "spr_qkv.h"
#include "spr_xbar.h"
#include "spr_baselines.h"
#include "spr_digital.h"
#include "spr_ledger.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Per-head data kept between the passes of one layer. */
typedef struct {
  float *Q, *K, *V;     /* n x d */
  int8_t *q, *k, *kmsb; /* n x d codes */
  int32_t *ideal;       /* n x n ideal scores */
  int32_t maxabs;       /* max |ideal| */
  int64_t *counts;      /* 2^bits keep counts per threshold code */
  uint8_t *mask_a, *mask_i;
  float *scores;        /* n x n analog scores (trace full) or NULL */
} head_slot;

/* Per-thread scratch. */
typedef struct {
  gsl_rng *rng, *rng2; /* rng2: a second stream drawn beside rng (stuck-at
                          faults while programming, far-decision scores) */
  spr_xbar_head xb;
  spr_analog_ws ws;
  double *work;  /* 3 * rows * cols */
  double *gains; /* col_tiles x d */
  float *off;    /* n */
  float *qf, *kf; /* n x d */
  float *s;      /* n x n float scores */
  /* digital path */
  spr_dig_ws dws;
  spr_bl_ws bws;
  float *P;            /* n x n dense probabilities */
  float *O, *Od;       /* n x d recomputed and dense outputs */
  int8_t *q8, *v8;     /* n x d recompute codes of Q and V */
  uint8_t *mask;       /* n x row bytes: a baseline's mask */
} thread_ws;

struct spr_run {
  spr_config c;
  int threads;
  int L, H, n, d;
  spr_head_result *res; /* L x H */
  head_slot *slot;      /* H */
  thread_ws *tws;       /* threads */
  int64_t *layer_counts; /* 2^bits */
  volatile sig_atomic_t *cancel; /* stop when nonzero, or NULL */
  spr_qkv *qkv;          /* source qkv: the open file, else NULL */
  int next_layer;
};

static void slot_free(head_slot *s) {
  free(s->Q); free(s->K); free(s->V); free(s->q); free(s->k); free(s->kmsb);
  free(s->ideal); free(s->counts); free(s->mask_a); free(s->mask_i); free(s->scores);
}

static void tws_free(thread_ws *t) {
  if (t->rng) gsl_rng_free(t->rng);
  if (t->rng2) gsl_rng_free(t->rng2);
  spr_xbar_head_free(&t->xb);
  spr_analog_ws_free(&t->ws);
  free(t->work); free(t->gains); free(t->off); free(t->qf); free(t->kf); free(t->s);
  spr_dig_ws_free(&t->dws);
  spr_bl_ws_free(&t->bws);
  free(t->P); free(t->O); free(t->Od); free(t->q8); free(t->v8); free(t->mask);
}

void spr_run_free(spr_run *r) {
  if (!r) return;
  if (r->slot) for (int h = 0; h < r->H; h++) slot_free(&r->slot[h]);
  if (r->tws) for (int t = 0; t < r->threads; t++) tws_free(&r->tws[t]);
  free(r->slot);
  free(r->tws);
  free(r->res);
  free(r->layer_counts);
  spr_qkv_close(r->qkv);
  free(r);
}

int spr_run_alloc(const spr_config *c, int threads, spr_run **out) {
  *out = NULL;
  if (threads < 1 || threads > 1024)
    return spr_error(SPR_EINVAL, "run: thread count %d outside [1, 1024]", threads);
  const spr_workload_params *wl = &c->wl;
  if (wl->seq_len < 2 || wl->n_layers < 1 || wl->n_heads < 1 || wl->head_dim < 1)
    return spr_error(SPR_EINVAL, "run: unresolved workload (seq_len %d, layers %d, heads %d, head_dim %d)",
                     wl->seq_len, wl->n_layers, wl->n_heads, wl->head_dim);
  /* more threads than heads would only hold idle workspaces */
  if (threads > wl->n_heads) threads = wl->n_heads;
  {
    /* refuse up front what cannot fit: the kernel overcommits, so large
     * mallocs succeed and the run would die later of the OOM killer */
    const double n = wl->seq_len, d = wl->head_dim, nn = n * n, nd = n * d;
    const double per_head = nd * 15 + nn * 4 + 2 * n * ((n + 7) / 8) +
                            (c->trace >= SPR_TRACE_FULL ? nn * 4 : 0);
    const double per_thread = nn * 4 + nd * 64 + 24.0 * c->xbar.rows * c->xbar.cols + 64 * n * 16 +
                              nn * 4 /* P */ + nn * 13 /* baselines */ + n * 64;
    const double need = per_head * wl->n_heads + per_thread * threads;
    const long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    const double have = pages > 0 && psize > 0 ? (double)pages * (double)psize : 0;
    if (have > 0 && need > 0.8 * have)
      return spr_error(SPR_ENOMEM,
                       "run: %d heads of %d tokens need about %.1f GiB of memory, more than 80%% "
                       "of the %.1f GiB here; lower workload.seq_len or workload.heads",
                       wl->n_heads, wl->seq_len, need / 1073741824.0, have / 1073741824.0);
  }
  spr_run *r = calloc(1, sizeof *r);
  if (!r) return spr_error(SPR_ENOMEM, "run: out of memory");
  r->c = *c;
  r->threads = threads;
  r->L = wl->n_layers;
  r->H = wl->n_heads;
  r->n = wl->seq_len;
  r->d = wl->head_dim;
  if (wl->source == SPR_SOURCE_QKV) {
    /* the sizes must be the file's (spr_qkv_resolve), never adapted here */
    int rc = spr_qkv_open(wl->qkv_file, &r->qkv), ntok = 0;
    const spr_qkv_info *in = rc ? NULL : spr_qkv_get_info(r->qkv);
    if (!rc) rc = spr_qkv_item_tokens(r->qkv, wl->qkv_item, &ntok);
    if (!rc && (ntok != r->n || in->head_dim != r->d || in->n_layers < r->L || in->n_heads < r->H))
      rc = spr_error(SPR_EINVAL,
                     "run: workload (N %d, d %d, %d layers, %d heads) does not match item %d of %s "
                     "(N %d, d %d, %d layers, %d heads); resolve the configuration with spr_qkv_resolve",
                     r->n, r->d, r->L, r->H, wl->qkv_item, wl->qkv_file, ntok, in->head_dim,
                     in->n_layers, in->n_heads);
    if (rc) {
      spr_run_free(r);
      return rc;
    }
  }
  const size_t n = (size_t)r->n, d = (size_t)r->d, nd = n * d, nn = n * n;
  const size_t rb = spr_mask_row_bytes(r->n), ncode = (size_t)1 << c->thr.bits;
  r->res = calloc((size_t)r->L * r->H, sizeof *r->res);
  r->slot = calloc((size_t)r->H, sizeof *r->slot);
  r->tws = calloc((size_t)threads, sizeof *r->tws);
  r->layer_counts = calloc(ncode, sizeof *r->layer_counts);
  if (!r->res || !r->slot || !r->tws || !r->layer_counts) goto nomem;
  for (int h = 0; h < r->H; h++) {
    head_slot *s = &r->slot[h];
    s->Q = malloc(nd * sizeof *s->Q);
    s->K = malloc(nd * sizeof *s->K);
    s->V = malloc(nd * sizeof *s->V);
    s->q = malloc(nd);
    s->k = malloc(nd);
    s->kmsb = malloc(nd);
    s->ideal = malloc(nn * sizeof *s->ideal);
    s->counts = calloc(ncode, sizeof *s->counts);
    s->mask_a = malloc(n * rb);
    s->mask_i = malloc(n * rb);
    if (!s->Q || !s->K || !s->V || !s->q || !s->k || !s->kmsb || !s->ideal || !s->counts ||
        !s->mask_a || !s->mask_i)
      goto nomem;
    if (c->trace >= SPR_TRACE_FULL && !(s->scores = malloc(nn * sizeof *s->scores))) goto nomem;
  }
  const int ct = spr_xbar_col_tiles(&c->xbar, r->n);
  for (int t = 0; t < threads; t++) {
    thread_ws *w = &r->tws[t];
    int rc;
    if (!(w->rng = spr_rng_alloc()) || !(w->rng2 = spr_rng_alloc())) goto nomem;
    if ((rc = spr_xbar_head_alloc(&w->xb, &c->xbar, r->n, r->d))) { spr_run_free(r); return rc; }
    if ((rc = spr_analog_ws_alloc(&w->ws, r->n, r->n, r->d))) { spr_run_free(r); return rc; }
    w->work = malloc(3 * (size_t)c->xbar.rows * c->xbar.cols * sizeof *w->work);
    w->gains = malloc((size_t)ct * d * sizeof *w->gains);
    w->off = malloc(n * sizeof *w->off);
    w->qf = malloc(nd * sizeof *w->qf);
    w->kf = malloc(nd * sizeof *w->kf);
    w->s = malloc(nn * sizeof *w->s);
    if (!w->work || !w->gains || !w->off || !w->qf || !w->kf || !w->s) goto nomem;
    if ((rc = spr_dig_ws_alloc(&w->dws, r->n, r->d))) { spr_run_free(r); return rc; }
    if ((rc = spr_bl_ws_alloc(&w->bws, r->n, r->d))) { spr_run_free(r); return rc; }
    w->P = malloc(nn * sizeof *w->P);
    w->O = malloc(nd * sizeof *w->O);
    w->Od = malloc(nd * sizeof *w->Od);
    w->q8 = malloc(nd);
    w->v8 = malloc(nd);
    w->mask = malloc(n * rb);
    if (!w->P || !w->O || !w->Od || !w->q8 || !w->v8 || !w->mask) goto nomem;
  }
  openblas_set_num_threads(1);
  *out = r;
  return 0;
nomem:
  spr_run_free(r);
  return spr_error(SPR_ENOMEM, "run: out of memory for %d heads of %d tokens", c->wl.n_heads,
                   c->wl.seq_len);
}

void spr_run_set_cancel(spr_run *r, volatile sig_atomic_t *flag) { r->cancel = flag; }

const spr_head_result *spr_run_result(const spr_run *r, int layer, int head) {
  if (!r || layer < 0 || layer >= r->L || head < 0 || head >= r->H) return NULL;
  return &r->res[(size_t)layer * r->H + head];
}

const spr_head_result *spr_run_results(const spr_run *r) { return r ? r->res : NULL; }

/* Pass 1: workload, quantization, ideal scores. */
static int pass_ideal(spr_run *r, int layer, int h, thread_ws *w) {
  const spr_config *c = &r->c;
  head_slot *s = &r->slot[h];
  const int n = r->n, d = r->d;
  const size_t nd = (size_t)n * d;
  int rc;
  float qs, ks;
  /* source qkv: Q, K, V were read by spr_run_layer */
  if (!r->qkv && (rc = spr_synth_head(&c->wl, c->seed, layer, h, s->Q, s->K, s->V))) return rc;
  if ((rc = spr_quant_sym(s->Q, nd, c->an.query_bits, s->q, &qs))) return rc;
  if ((rc = spr_quant_sym(s->K, nd, c->xbar.key_bits, s->k, &ks))) return rc;
  spr_quant_msb(s->k, nd, c->xbar.key_bits, c->xbar.key_msb_bits, s->kmsb);
  for (size_t k = 0; k < nd; k++) {
    w->qf[k] = (float)s->q[k];
    w->kf[k] = (float)s->kmsb[k];
  }
  /* exact: |q . k| <= 2^7 * 2^7 * d < 2^24 for d <= 1024 */
  if ((rc = spr_matf_gemm(1.0f, spr_matf_view(w->qf, n, d), 0, spr_matf_view(w->kf, n, d), 1,
                          0.0f, spr_matf_view(w->s, n, n))))
    return rc;
  int32_t m = 0;
  for (size_t k = 0; k < (size_t)n * n; k++) {
    int32_t v = (int32_t)w->s[k];
    s->ideal[k] = v;
    int32_t a = v < 0 ? -v : v;
    if (a > m) m = a;
  }
  s->maxabs = m;
  spr_head_result *res = &r->res[(size_t)layer * r->H + h];
  memset(res, 0, sizeof *res);
  res->layer = layer;
  res->head = h;
  res->n = n;
  res->d = d;
  res->q_scale = qs;
  res->k_scale = ks;
  return 0;
}

/* Pass 3: program, decide, compare, mass. */
static int pass_analog(spr_run *r, int layer, int h, thread_ws *w) {
  const spr_config *c = &r->c;
  head_slot *s = &r->slot[h];
  spr_head_result *res = &r->res[(size_t)layer * r->H + h];
  const int n = r->n, d = r->d;
  const uint64_t seed = c->seed;
  int rc;
  const double *gains = NULL;
  if (c->an.dac_error) {
    spr_rng_key(w->rng, seed, layer, h, 0, SPR_STREAM_DAC);
    if ((rc = spr_dac_gains(&c->an, w->xb.col_tiles, d, w->rng, w->gains))) return rc;
    gains = w->gains;
  }
  /* programming variation and stuck-at faults draw from two streams */
  spr_rng_key(w->rng, seed, layer, h, 0, SPR_STREAM_PROG);
  spr_rng_key(w->rng2, seed, layer, h, 0, SPR_STREAM_STUCK);
  if ((rc = spr_xbar_program(&w->xb, &c->xbar, s->kmsb, gains, w->rng, w->rng2, w->work)))
    return rc;
  spr_analog_scale sc;
  spr_analog_scale_of(&c->an, w->xb.dg_S, &sc);
  const float *off = NULL;
  if (c->an.cmp_offset) {
    spr_rng_key(w->rng, seed, layer, h, 0, SPR_STREAM_CMP_OFFSET);
    spr_cmp_offsets(&c->an, &sc, n, w->rng, w->off);
    off = w->off;
  }
  spr_rng_key(w->rng, seed, layer, h, 0, SPR_STREAM_READ);
  spr_rng_key(w->rng2, seed, layer, h, 0, SPR_STREAM_READ_FAR);
  int64_t kept;
  if ((rc = spr_analog_decide(&c->an, &sc, &w->xb, s->q, n, res->threshold, off, w->rng, w->rng2,
                              &w->ws, s->mask_a, s->scores, &kept)))
    return rc;
  /* ideal mask and the comparison */
  const size_t rb = spr_mask_row_bytes(n);
  int64_t ik = 0, fp = 0, fk = 0;
  for (int i = 0; i < n; i++) {
    uint8_t *mi = s->mask_i + (size_t)i * rb;
    const uint8_t *ma = s->mask_a + (size_t)i * rb;
    memset(mi, 0, rb);
    const int32_t *si = s->ideal + (size_t)i * n;
    for (int j = 0; j < n; j++)
      mi[j >> 3] |= (uint8_t)(((double)si[j] >= res->threshold) << (j & 7));
    for (size_t b = 0; b < rb; b++) {
      ik += __builtin_popcount(mi[b]);
      fp += __builtin_popcount(mi[b] & (uint8_t)~ma[b]);
      fk += __builtin_popcount(ma[b] & (uint8_t)~mi[b]);
    }
  }
  /* softmax of the float scores, scale 1/sqrt(d) */
  if ((rc = spr_matf_gemm((float)(1.0 / sqrt((double)d)), spr_matf_view(s->Q, n, d), 0,
                          spr_matf_view(s->K, n, d), 1, 0.0f, spr_matf_view(w->s, n, n))))
    return rc;
  double mass_a = 0, mass_i = 0;
  for (int i = 0; i < n; i++) {
    float *row = w->s + (size_t)i * n;
    const uint8_t *ma = s->mask_a + (size_t)i * rb, *mi = s->mask_i + (size_t)i * rb;
    float mx = row[0];
    for (int j = 1; j < n; j++) mx = row[j] > mx ? row[j] : mx;
    double z = 0, za = 0, zi = 0;
    for (int j = 0; j < n; j++) {
      double e = exp((double)(row[j] - mx));
      z += e;
      if (ma[j >> 3] >> (j & 7) & 1) za += e;
      if (mi[j >> 3] >> (j & 7) & 1) zi += e;
    }
    mass_a += za / z;
    mass_i += zi / z;
  }
  const double nn = (double)n * n;
  res->n_kept = kept;
  res->n_ideal_kept = ik;
  res->false_prunes = fp;
  res->false_keeps = fk;
  res->keep_rate = (double)kept / nn;
  res->ideal_keep_rate = (double)ik / nn;
  res->mass_retained = mass_a / n;
  res->ideal_mass_retained = mass_i / n;
  res->i_unit_A = sc.i_unit_A;
  if (c->trace >= SPR_TRACE_MASKS) {
    res->mask_analog = s->mask_a;
    res->mask_ideal = s->mask_i;
  }
  if (c->trace >= SPR_TRACE_FULL) {
    res->q_int = s->q;
    res->k_int = s->k;
    res->k_msb = s->kmsb;
    res->ideal_scores = s->ideal;
    res->analog_scores = s->scores;
  }
  return 0;
}

/* Baselines whose prediction computes the exact 8-bit scores of every
 * pair: their survivors need values only, no score recompute. */
static int scores_known(int scheme) {
  return scheme == SPR_SCHEME_ORACLE || scheme == SPR_SCHEME_TOPK || scheme == SPR_SCHEME_LEOPARD;
}

/* Ledger counts of query i of a scheme (docs/energy.md section 6): the
 * fetch of its survivors through the buffer, the recompute, SPRINT's
 * in-memory scoring, the baseline's prediction spread evenly over queries,
 * and the writes of the sequence's keys on the first query. */
static void query_counts(const spr_run *r, int scheme, const spr_dig_fetch_stats *fs,
                         const spr_dig_ws *dws, const spr_bl_stats *bst, int i,
                         spr_ledger_counts *q) {
  const int64_t n = r->n, d = r->d;
  const int64_t hits = dws->q_hits[i], fetches = dws->q_fetches[i], over = dws->q_overflow[i];
  const int64_t surv = hits + fetches, words = (fs->token_bytes + 7) / 8;
  memset(q, 0, sizeof *q);
  /* the sequence's K and V are written to ReRAM once, on the first query */
  if (i == 0) q->reram_bits_written = n * d * (r->c.xbar.key_bits + r->c.dig.value_bits);
  q->reram_bits_read = fetches * fs->token_bytes * 8;
  /* streamed tokens bypass the buffer: neither written to nor read from it */
  q->sram_words_written = (fetches - over) * words;
  q->sram_words_read = (surv - over) * words;
  q->buffer_bytes = r->c.dig.buffer_bytes;
  /* schemes whose prediction already computed exact scores reuse them */
  q->score_macs = scores_known(scheme) ? 0 : surv * d;
  q->exps = q->divs = surv;
  q->v_macs = surv * d;
  if (scheme == SPR_SCHEME_SPRINT) {
    q->imc_queries = 1;
    q->imc_macs = n * d;
    q->cmp_decisions = n;
    q->prune_bits_read = n;
  }
  if (bst) {
    /* spread a head total over the queries, remainders on the first */
#define SPREAD(total) ((total) / n + ((int64_t)i < (total) % n))
    const int64_t macs = bst->mac_ops;
    if (bst->mac_k_bits == 1) q->pred_bitmacs = SPREAD(macs);
    else if (bst->mac_q_bits <= 4 && bst->mac_k_bits <= 4) q->pred_mac4 = SPREAD(macs);
    else q->pred_mac8 = SPREAD(macs);
    q->pred_adds = SPREAD(bst->add_ops);
    q->pred_muls = SPREAD(bst->mul_ops);
    q->pred_exps = SPREAD(bst->exp_ops);
    int64_t levels = 0;
    while (bst->k > 0 && ((int64_t)1 << levels) < bst->k) levels++;
    q->pred_cmps = SPREAD(bst->cmp_ops + bst->topk_inputs * levels);
    /* a digital prediction streams its key operand from ReRAM for every
     * query (the buffer holds survivors' tokens; the sequence's K does not
     * fit beside them): all n keys at the prediction's width, or, for
     * LeOPArd, the d-bit planes it reads */
    if (scheme == SPR_SCHEME_LEOPARD) q->reram_bits_read += SPREAD(bst->key_bits_processed * d);
    else q->reram_bits_read += n * d * bst->mac_k_bits;
#undef SPREAD
  }
}

/* Fetch, recompute, compare with dense and price one scheme's mask. */
static int price_scheme(spr_run *r, thread_ws *w, int scheme, const uint8_t *mask, float qs8,
                        const int8_t *k8, float ks, float vs8, const spr_bl_stats *bst,
                        spr_scheme_result *out) {
  const spr_config *c = &r->c;
  const int n = r->n, d = r->d;
  spr_dig_fetch_params fp;
  spr_dig_fetch_default(&fp);
  fp.buffer_bytes = c->dig.buffer_bytes;
  fp.key_bits = scores_known(scheme) ? 0 : c->xbar.key_bits;
  fp.value_bits = c->dig.value_bits;
  fp.policy = c->dig.policy;
  spr_dig_fetch_stats fs;
  int rc = spr_dig_fetch(&fp, mask, n, d, &fs, &w->dws);
  if (rc) return rc;
  spr_dig_attend_stats as;
  if ((rc = spr_dig_attend(w->q8, qs8, k8, ks, w->v8, vs8, mask, n, d, w->O, &as, &w->dws)))
    return rc;
  spr_dig_metric_params mp;
  spr_dig_metric_default(&mp);
  mp.top_k = c->dig.top_k < n ? c->dig.top_k : n;
  spr_dig_accuracy acc;
  if ((rc = spr_dig_metrics(&mp, w->O, w->Od, w->P, mask, n, d, &acc, &w->dws))) return rc;
  spr_ledger_acc la;
  if ((rc = spr_ledger_acc_init(&la, &c->energy))) return rc;
  for (int i = 0; i < n; i++) {
    spr_ledger_counts q;
    query_counts(r, scheme, &fs, &w->dws, bst, i, &q);
    if ((rc = spr_ledger_acc_step(&la, &q))) return rc;
  }
  spr_ledger_result lr;
  if ((rc = spr_ledger_acc_result(&la, &lr))) return rc;
  memset(out, 0, sizeof *out);
  out->ran = 1;
  out->keep_rate = (double)fs.uses / ((double)n * n);
  out->bytes_fetched = fs.bytes_fetched;
  out->bytes_reused = fs.bytes_reused;
  out->fetches = fs.fetches;
  out->hits = fs.hits;
  out->overflow_tokens = fs.overflow_tokens;
  out->new_fetch_frac = fs.new_fetch_frac;
  out->empty_queries = as.empty_queries;
  out->rel_fro = acc.rel_fro;
  out->cos_mean = acc.cos_mean;
  out->cos_min = acc.cos_min;
  out->mass_retained = acc.mass_retained;
  out->top1_recall = acc.top1_recall;
  out->topk_recall = acc.topk_recall;
  memcpy(out->energy_J, lr.energy_J, sizeof out->energy_J);
  out->energy_total_J = lr.total_J;
  memcpy(out->cycles, lr.cycles, sizeof out->cycles);
  out->cycles_total = lr.total_cycles;
  return 0;
}

/* Pass 4: the digital path and the ledger for SPRINT and every enabled
 * baseline, against dense exact attention of the float Q, K, V. */
static int pass_digital(spr_run *r, int layer, int h, thread_ws *w) {
  const spr_config *c = &r->c;
  head_slot *s = &r->slot[h];
  spr_head_result *res = &r->res[(size_t)layer * r->H + h];
  const int n = r->n, d = r->d;
  const size_t nd = (size_t)n * d;
  int rc;
  float qs8, vs8;
  if ((rc = spr_quant_sym(s->Q, nd, c->dig.query_bits, w->q8, &qs8))) return rc;
  if ((rc = spr_quant_sym(s->V, nd, c->dig.value_bits, w->v8, &vs8))) return rc;
  if ((rc = spr_dig_dense(s->Q, s->K, s->V, n, d, w->P, w->Od))) return rc;
  const int8_t *k8 = s->k;
  const float ks = res->k_scale;
  memset(res->scheme, 0, sizeof res->scheme);
  double th = 0;
  int have_th = 0;
  for (int sc = 0; sc < SPR_N_SCHEMES; sc++) {
    spr_bl_stats bst;
    const spr_bl_stats *pb = &bst;
    const uint8_t *mask = w->mask;
    switch (sc) {
    case SPR_SCHEME_SPRINT:
      mask = s->mask_a;
      pb = NULL;
      break;
    case SPR_SCHEME_DENSE:
      rc = spr_bl_dense(n, w->mask, &bst);
      pb = NULL;
      break;
    case SPR_SCHEME_ORACLE:
    case SPR_SCHEME_LEOPARD: {
      if (!(sc == SPR_SCHEME_ORACLE ? c->bl.oracle : c->bl.leopard)) continue;
      spr_bl_oracle_params op;
      spr_bl_oracle_default(&op);
      op.k_bits = c->xbar.key_bits;
      /* one calibration serves both: LeOPArd's mask is the oracle's */
      if (!have_th)
        rc = spr_bl_oracle_calibrate(&op, s->Q, s->K, n, d, c->thr.keep_rate, &w->bws, &th, NULL);
      have_th = !rc;
      if (!rc && sc == SPR_SCHEME_ORACLE) {
        op.threshold = th;
        rc = spr_bl_oracle(&op, s->Q, s->K, n, d, &w->bws, w->mask, &bst);
      } else if (!rc) {
        spr_bl_leopard_params lp;
        spr_bl_leopard_default(&lp);
        lp.q_bits = op.q_bits;
        lp.k_bits = op.k_bits;
        lp.threshold = th;
        rc = spr_bl_leopard(&lp, s->Q, s->K, n, d, &w->bws, w->mask, &bst);
      }
      break;
    }
    case SPR_SCHEME_TOPK: {
      if (!c->bl.topk) continue;
      spr_bl_topk_params tp;
      spr_bl_topk_default(&tp);
      tp.k_bits = c->xbar.key_bits;
      tp.k = 0;
      tp.keep_fraction = c->bl.topk_fraction;
      rc = spr_bl_topk(&tp, s->Q, s->K, n, d, &w->bws, w->mask, &bst);
      break;
    }
    case SPR_SCHEME_SANGER: {
      if (!c->bl.sanger) continue;
      spr_bl_sanger_params sp;
      spr_bl_sanger_default(&sp);
      sp.p_threshold = c->bl.sanger_threshold;
      rc = spr_bl_sanger(&sp, s->Q, s->K, n, d, &w->bws, w->mask, &bst);
      break;
    }
    case SPR_SCHEME_WINDOW: {
      if (!c->bl.window) continue;
      spr_bl_window_params wp;
      spr_bl_window_default(&wp);
      wp.half_width = c->bl.window_half_width;
      wp.n_global = c->bl.window_globals < n ? c->bl.window_globals : n;
      wp.global_pos = NULL;
      rc = spr_bl_window(&wp, n, w->mask, &bst);
      pb = NULL; /* a fixed pattern needs no prediction */
      break;
    }
    }
    if (rc) return rc;
    if ((rc = price_scheme(r, w, sc, mask, qs8, k8, ks, vs8, pb, &res->scheme[sc]))) return rc;
  }
  return 0;
}

/* Run fn over the heads of `layer` on the run's threads; the first error
 * (lowest head) is re-raised in the caller's thread. */
typedef int (*head_fn)(spr_run *, int, int, thread_ws *);
static int for_heads(spr_run *r, int layer, head_fn fn) {
  int *rcs = calloc((size_t)r->H, sizeof *rcs);
  char (*msgs)[512] = calloc((size_t)r->H, sizeof *msgs);
  if (!rcs || !msgs) {
    free(rcs);
    free(msgs);
    return spr_error(SPR_ENOMEM, "run: out of memory");
  }
#pragma omp parallel for num_threads(r->threads) schedule(dynamic, 1)
  for (int h = 0; h < r->H; h++) {
    thread_ws *w = &r->tws[omp_get_thread_num()];
    int rc = r->cancel && *r->cancel ? spr_error(SPR_ECANCELED, "interrupted") : fn(r, layer, h, w);
    if (rc) {
      rcs[h] = rc;
      snprintf(msgs[h], sizeof msgs[h], "%s", spr_errmsg());
    }
  }
  int rc = 0;
  for (int h = 0; h < r->H && !rc; h++)
    if (rcs[h]) rc = spr_error(rcs[h], "layer %d head %d: %s", layer, h, msgs[h]);
  free(rcs);
  free(msgs);
  return rc;
}

static int pass_count(spr_run *r, int layer, int h, thread_ws *w) {
  head_slot *s = &r->slot[h];
  const spr_head_result *res = &r->res[(size_t)layer * r->H + h];
  memset(s->counts, 0, ((size_t)1 << r->c.thr.bits) * sizeof *s->counts);
  return spr_thr_count(s->ideal, (size_t)r->n * r->n, res->range, r->c.thr.bits, s->counts);
}

/* The keep rate of the picked code must come near the target; otherwise
 * the generator's grid (range, bits) cannot express it. */
static int check_reachable(const int64_t *counts, int64_t total, int code, const spr_thr_params *t,
                           int layer, int head, double range) {
  const double got = (double)counts[code + (1 << (t->bits - 1))] / (double)total;
  const double tol = fmax(0.05, 0.5 * t->keep_rate);
  if (fabs(got - t->keep_rate) <= tol) return 0;
  char who[48];
  if (head >= 0) snprintf(who, sizeof who, "layer %d head %d", layer, head);
  else snprintf(who, sizeof who, "layer %d", layer);
  return spr_error(SPR_EINVAL,
                   "%s: threshold.keep_rate %g cannot be reached on the %d-bit threshold grid "
                   "(range %g score units): the nearest code %d keeps %.4g; use threshold.range = 0 "
                   "(auto) or more threshold.bits", who, t->keep_rate, t->bits, range, code, got);
}

int spr_run_layer(spr_run *r, int layer) {
  if (layer < 0 || layer >= r->L)
    return spr_error(SPR_EINVAL, "run: layer %d outside [0, %d)", layer, r->L);
  /* the previous layer's arrays are about to be overwritten */
  for (size_t k = 0; k < (size_t)r->L * r->H; k++) {
    spr_head_result *x = &r->res[k];
    x->mask_analog = x->mask_ideal = NULL;
    x->q_int = x->k_int = x->k_msb = NULL;
    x->ideal_scores = NULL;
    x->analog_scores = NULL;
  }
  int rc;
  /* source qkv: read the layer's heads here, in one thread (HDF5 is not
   * thread-safe); one layer at a time, never the whole file */
  for (int h = 0; r->qkv && h < r->H; h++) {
    if (r->cancel && *r->cancel) return spr_error(SPR_ECANCELED, "interrupted");
    head_slot *s = &r->slot[h];
    if ((rc = spr_qkv_read_head(r->qkv, layer, h, r->c.wl.qkv_item, s->Q, s->K, s->V))) {
      char msg[1024];
      snprintf(msg, sizeof msg, "%s", spr_errmsg());
      return spr_error(rc, "layer %d head %d: %s", layer, h, msg);
    }
  }
  if ((rc = for_heads(r, layer, pass_ideal))) return rc;
  const spr_thr_params *t = &r->c.thr;
  const int H = r->H, bits = t->bits;
  spr_head_result *res = &r->res[(size_t)layer * H];
  /* full scale of the threshold generator */
  int32_t lmax = 0;
  for (int h = 0; h < H; h++) lmax = r->slot[h].maxabs > lmax ? r->slot[h].maxabs : lmax;
  for (int h = 0; h < H; h++) {
    int32_t m = t->per_head ? r->slot[h].maxabs : lmax;
    res[h].range = t->range > 0 ? t->range : (m > 0 ? (double)m : 1.0);
  }
  if (t->mode == SPR_THR_KEEP_RATE) {
    if ((rc = for_heads(r, layer, pass_count))) return rc;
    const size_t ncode = (size_t)1 << bits;
    const int64_t per_head_total = (int64_t)r->n * r->n;
    if (t->per_head) {
      for (int h = 0; h < H; h++) {
        res[h].threshold_code = spr_thr_pick(r->slot[h].counts, per_head_total, bits, t->keep_rate);
        if ((rc = check_reachable(r->slot[h].counts, per_head_total, res[h].threshold_code, t,
                                  layer, h, res[h].range)))
          return rc;
      }
    } else {
      memset(r->layer_counts, 0, ncode * sizeof *r->layer_counts);
      for (int h = 0; h < H; h++)
        for (size_t k = 0; k < ncode; k++) r->layer_counts[k] += r->slot[h].counts[k];
      int code = spr_thr_pick(r->layer_counts, per_head_total * H, bits, t->keep_rate);
      if ((rc = check_reachable(r->layer_counts, per_head_total * H, code, t, layer, -1,
                                res[0].range)))
        return rc;
      for (int h = 0; h < H; h++) res[h].threshold_code = code;
    }
  } else {
    for (int h = 0; h < H; h++) {
      double v;
      if (t->n_values == 1) v = t->values[0];
      else if (t->per_head) v = t->values[(size_t)layer * H + h];
      else v = t->values[layer];
      /* the generator spans [-range, range (1 - 2^(1-bits))]: a value more
       * than half a step outside cannot be produced */
      const double lo = spr_thr_level(-(1 << (bits - 1)), res[h].range, bits);
      const double hi = spr_thr_level((1 << (bits - 1)) - 1, res[h].range, bits);
      const double half_step = 0.5 * res[h].range / (double)(1 << (bits - 1));
      if (!(v >= lo - half_step && v <= hi + half_step))
        return spr_error(SPR_EINVAL,
                         "layer %d head %d: threshold.values %g outside the %d-bit threshold "
                         "generator's range [%g, %g] (threshold.range %g%s)", layer, h, v, bits, lo,
                         hi, res[h].range, t->range > 0 ? "" : ", auto: max |ideal score|");
      res[h].threshold_code = spr_thr_code(v, res[h].range, bits);
    }
  }
  for (int h = 0; h < H; h++)
    res[h].threshold = spr_thr_level(res[h].threshold_code, res[h].range, bits);
  if ((rc = for_heads(r, layer, pass_analog))) return rc;
  if ((rc = for_heads(r, layer, pass_digital))) return rc;
  r->next_layer = layer + 1;
  return 0;
}
