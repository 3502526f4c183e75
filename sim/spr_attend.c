/* spr_attend.c - one attention head under every scheme (steps in
 * spr_attend.h); the code the run pipeline and the model inference share.
 *
 * Where the time goes, per head (docs/performance.md): one exact product
 * of int8 codes per score matrix (spr_i8mat): the ideal scores q4 . k_msb,
 * the 8-bit scores q8 . k8 shared by the recompute of every scheme, the
 * oracle, its quantile, top-k and LeOPArd's last plane, Sanger's q4 . k4
 * and LeOPArd's B - 1 low-plane products; the analog score GEMM and the
 * programming; one float dense reference (GEMM, float softmax, GEMM)
 * shared by the analog mass and every scheme's metrics, with its top-k
 * ranks; then per scheme work in the kept pairs (fetch on bitsets, the
 * sparse recompute, the metrics) and n ledger steps.  Rows go in blocks of
 * w->B queries: B = n holds the whole head (scores and masks of a head
 * reused between calls); B < n is a long sequence, where no n x n array
 * exists and the passes a global statistic needs recompute their block
 * products. */
#include "config.h"
#include "spr_attend.h"
#include "spr_analog.h"
#include "spr_arena.h"
#include "spr_baselines.h"
#include "spr_clones.h"
#include "spr_digital.h"
#include "spr_error.h"
#include "spr_ledger.h"
#include "spr_mat.h"
#include "spr_quant.h"
#include "spr_rng.h"
#include "spr_tiled.h"
#include "spr_vmath.h"
#include "spr_xbar.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Where a digital predictor (oracle, top-k, Sanger, LeOPArd) reads its
 * key operand from (docs/energy.md section 9). */
typedef struct {
  int resident;      /* 1: K held in the buffer; 0: streamed per query */
  int key_bits;      /* the predictor's key width (LeOPArd: all planes) */
  int64_t key_bytes; /* n ceil(d key_bits / 8): the sequence's K at it */
  int64_t key_words; /* 64-bit words of one key at that width */
  int64_t plane_words; /* 64-bit words of one key's bit plane (LeOPArd) */
} pred_key_plan;

/* One scheme over a head's row blocks. */
typedef struct {
  int on;                   /* in the current pass */
  int share;                /* -1, or the scheme whose mask, fetch and
                               recompute this one shares (LeOPArd: the
                               oracle's; dense_tiled: dense's) */
  int started;              /* fetch begun (its plan known) */
  spr_dig_ws dws;           /* buffer state and per-query counts */
  spr_dig_fetch_params fp;
  spr_dig_fetch_stats fs;
  pred_key_plan kp;
  spr_bl_stats bst;         /* a prediction's counts (pred = 1) */
  int pred;
  spr_dig_attend_stats as;
  spr_dig_metric_acc ma;
  int64_t max_row;          /* keys of the busiest query (-1: unknown) */
  double knob;
  double theta;             /* oracle, LeOPArd */
  int topk_k;               /* top-k: k (0: from the fraction) */
  double topk_frac;
  double sanger_p;
  spr_bl_window_params wp;
} scheme_run;

/* dense_tiled's plan and ledger for one shape and one set of prices */
typedef struct {
  int valid, n, d;
  spr_tiled_params tp;
  spr_energy_params e;
  spr_tiled_plan pl;
  spr_ledger_result lr;
  int64_t fetched, uses;
} tiled_cache;

enum { HAVE_S8 = 1, HAVE_SO = 2, HAVE_S4 = 4, HAVE_DENSE = 8, HAVE_RANK = 16 };

struct spr_attend_ws {
  int n, d, B;
  spr_arena *mem;      /* the arrays below, from work to Oexact */
  gsl_rng *rng, *rng2; /* rng2: a second stream drawn beside rng (stuck-at
                          faults while programming, far-decision scores) */
  spr_xbar_head xb;
  spr_analog_ws ws;
  double *work;  /* 3 * rows * cols */
  spr_nodal_ws *nodal; /* rows x cols, with crossbar.ir_drop = nodal only */
  double *gains; /* col_tiles x d */
  float *off;    /* n */
  const float *offp; /* the offsets of the programmed head, or NULL */
  spr_analog_scale sc; /* its score scale */
  int64_t *layer_counts; /* 2^thr.bits */
  spr_i8mat *pmsb;     /* k_msb of head pmsb_head (generation pmsb_gen), packed */
  const spr_attend_head *pmsb_head;
  unsigned pmsb_gen;
  int32_t *Ib;         /* B x n: ideal score rows; in block_schemes, as
                          floats, the block's shared exponentials E */
  spr_dig_rowmax *emax; /* B: the row maxima of E */
  uint8_t *ma, *mi;    /* B x rb: analog and ideal mask rows (blocked head) */
  int metrics;         /* 0: no reference, no metrics, no mass */
  /* the head of the digital path and its codes */
  const spr_attend_head *dh;
  int8_t *q8, *v8, *qo, *q4s, *k4s; /* n x d */
  float qs8, vs8, qos, q4ss, k4ss;
  int qo_is_q8;        /* the oracle's query codes are the recompute's */
  float *vf;           /* n x d: v8 as floats */
  int64_t *qpos;       /* n: LeOPArd's sums of positive query codes */
  spr_i8mat *pk8, *pk4, *plow[7];
  int have_pk4, have_plow;
  int8_t *kscr;        /* n x d scratch */
  double *tab;         /* Sanger's exponentials */
  int64_t tab_len;
  double tab_c;
  int have_tab;
  /* the block cache: rows blk_i0 .. blk_i0 + blk_m - 1 of head dh */
  int blk_i0, blk_m;
  unsigned have;
  int32_t *S8, *So, *T1; /* B x n: recompute scores, oracle scores (when
                            the query codes differ), transient (Sanger's
                            scores, LeOPArd's plane products, P V's P) */
  float *P, *Od, *Ob;   /* B x n reference probabilities, B x d outputs */
  int *top;            /* B x top_k */
  int top_k;
  uint8_t *mks;        /* SPR_N_SCHEMES x B x rb: each scheme's mask rows of the block
                          (block_schemes, schemes_prepare's pass) */
  double *e8;          /* 8 n: Sanger */
  /* the reference computed by spr_attend_analog for head ref_h */
  const spr_attend_head *ref_h;
  int ref_fresh;
  /* the exact output of spr_attend_digital (held heads) */
  float *Oexact;       /* n x d */
  int have_exact;
  /* the oracle's threshold of the digital head */
  double oracle_th, oracle_target;
  int have_oracle_th;
  spr_bl_quantile *qh;
  spr_bl_ws bws;       /* whole-head calibrations (Sanger's matched p) */
  int have_bws;
  /* schemes */
  scheme_run sr[SPR_N_SCHEMES];
  tiled_cache tiled;
  /* spr_attend_head_begin .. end */
  int run_layer, run_head, run_trial, run_analog, run_next;
  double run_target;
  int64_t run_kept, run_ik, run_fp, run_fk;
  double run_mass_a, run_mass_i;
  /* stage timers */
  double stage[SPR_STAGE_N];
  int stage_cur;
  int64_t stage_t0;          /* monotonic ns at the last switch */
  int64_t stage_ns[SPR_STAGE_N]; /* monotonic ns per stage since entry */
  double stage_cpu0;         /* thread CPU seconds at entry */
};

static void ws_release(spr_attend_ws *t);
static int tiled_ledger(const spr_config *c, const spr_tiled_params *tp, int n, int d,
                        tiled_cache *tc);

/* ---- stage timers (thread CPU, docs/performance.md) --------------------- */

const char *spr_stage_name(int s) {
  static const char *const names[SPR_STAGE_SCHEME] = {
      "workload (Q, K, V)", "quantize, ideal scores", "programming the arrays",
      "analog decisions", "dense reference, ranks, mass", "digital codes, packing",
      "exact scores, shared exp", "knobs (quantile, match)", "ledger"};
  static char buf[SPR_N_SCHEMES][32];
  if (s >= 0 && s < SPR_STAGE_SCHEME) return names[s];
  if (s >= SPR_STAGE_SCHEME && s < SPR_STAGE_N) {
    char *b = buf[s - SPR_STAGE_SCHEME];
    if (!b[0]) snprintf(b, sizeof buf[0], "scheme %s", spr_scheme_name(s - SPR_STAGE_SCHEME));
    return b;
  }
  return NULL;
}

double spr_attend_cpu_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Make s the current stage; returns the stage that was current
 * (SPR_STAGE_N: none, outside the library).  The thread CPU clock is a
 * system call (0.2 us here), a monotonic read is not: a call into the
 * library reads the thread CPU time when it enters and when it leaves,
 * and shares it among the stages it ran in proportion to their monotonic
 * time (exact totals; a preemption inside the call is charged to the
 * stages in the same proportion). */
static int stage_enter(spr_attend_ws *w, int s) {
  const int prev = w->stage_cur;
  if (s == prev) return prev;
  const int64_t t = mono_ns();
  if (prev == SPR_STAGE_N) {
    memset(w->stage_ns, 0, sizeof w->stage_ns);
    w->stage_cpu0 = spr_attend_cpu_seconds();
  } else {
    w->stage_ns[prev] += t - w->stage_t0;
  }
  w->stage_t0 = t;
  w->stage_cur = s;
  if (s == SPR_STAGE_N) {
    const double cpu = spr_attend_cpu_seconds() - w->stage_cpu0;
    int64_t tot = 0;
    for (int k = 0; k < SPR_STAGE_N; k++) tot += w->stage_ns[k];
    for (int k = 0; k < SPR_STAGE_N; k++)
      if (w->stage_ns[k]) w->stage[k] += cpu * ((double)w->stage_ns[k] / (double)tot);
  }
  return prev;
}

static int stage_ret(spr_attend_ws *w, int prev, int rc) {
  stage_enter(w, prev);
  return rc;
}

void spr_attend_ws_stages(const spr_attend_ws *w, double *acc) {
  for (int s = 0; s < SPR_STAGE_N; s++) acc[s] += w->stage[s];
}

void spr_attend_ws_stage_add(spr_attend_ws *w, int s, double seconds) {
  if (s >= 0 && s < SPR_STAGE_N) w->stage[s] += seconds;
}


/* ---- allocation ---------------------------------------------------------- */

/* bins of the ideal-score histogram: scores are bounded by
 * (2^(qb-1) - 1) 2^(mb-1) d */
static int64_t ideal_bound_max(const spr_config *c, int d) {
  return (int64_t)((1 << (c->an.query_bits - 1)) - 1) * ((int64_t)1 << (c->xbar.key_msb_bits - 1)) *
         d;
}

int spr_attend_ideal16(const spr_config *c, int d, int want_scores) {
  return !want_scores && ideal_bound_max(c, d) <= INT16_MAX;
}

double spr_attend_head_bytes(const spr_config *c, int n, int d, int want_scores, int block_rows) {
  const double nd = (double)n * d, nn = (double)n * n, rb = (double)spr_mask_row_bytes(n);
  const int held = block_rows >= n, i16 = spr_attend_ideal16(c, d, want_scores);
  want_scores = want_scores || c->thr.mode == SPR_THR_ANALOG_KEEP_RATE;
  return nd * 15 + (double)(2 * ideal_bound_max(c, d) + 1) * 8 +
         (held ? nn * (i16 ? 2 : 4) + 2 * n * rb + (want_scores ? nn * 4 : 0) : 0);
}

double spr_attend_ws_bytes(const spr_config *c, int n, int d, int block_rows) {
  const double B = block_rows < n ? block_rows : n;
  const double nd = (double)n * d, bn = B * n, rb = (double)spr_mask_row_bytes(n);
  return bn * 4 * 5 /* Ib, S8, So, T1, P */ + B * d * 4 * 3 /* Od, Ob, analog inputs */ +
         B * 8 /* emax */ +
         B * 64 * 4 /* ranks */ + (2 + SPR_N_SCHEMES) * B * rb /* masks */ +
         nd * (4 + 5 + 10 * 2) /* vf, codes, packed keys */ + (double)spr_analog_block_rows(n) * n * 4 /* analog rows */ +
         nd * 12 + 64.0 * n /* programmed arrays */ + 24.0 * c->xbar.rows * c->xbar.cols +
         (double)(SPR_BL_EXP_TAB + 1) * 8 + 16.0 * n * 8 /* Sanger rows */ +
         (double)SPR_N_SCHEMES * (48.0 * n + 16.0 * d) /* scheme states */ +
         (B >= n ? nd * 4 : 0) /* exact output */ + 16384.0 * d * 8 / 4096 + 200000 /* quantile */ +
         (double)spr_xbar_col_tiles(&c->xbar, n) * d * 8 +
         /* the whole-head calibrations of a held head (Sanger's match) */
         (B >= n && c->bl.match == SPR_MATCH_SPRINT && c->bl.sanger ? 8 * (double)n * n * 3 : 0);
}

/* The arrays of head s, from arena mem (s->mem stays NULL: the caller
 * owns mem). */
static int head_carve(spr_attend_head *s, spr_arena *mem, const spr_config *c, int n, int d,
                      int want_scores, int block_rows) {
  memset(s, 0, sizeof *s);
  const size_t nd = (size_t)n * d, nn = (size_t)n * n, rb = spr_mask_row_bytes(n);
  s->n = n;
  s->d = d;
  s->held = block_rows >= n;
  const int i16 = spr_attend_ideal16(c, d, want_scores);
  /* the analog keep-rate mode holds every head's analog scores until its
   * layer's threshold is picked (a held head; a blocked one draws them
   * again, spr_attend_head_step) */
  want_scores = want_scores || (c->thr.mode == SPR_THR_ANALOG_KEEP_RATE && s->held);
  if (!s->held && want_scores)
    return spr_error(SPR_EINVAL, "attention: a head of %d tokens in blocks of %d rows cannot hold "
                     "its %d x %d analog scores", n, block_rows, n, n);
  s->Q = spr_arena_alloc(mem, nd * sizeof *s->Q);
  s->K = spr_arena_alloc(mem, nd * sizeof *s->K);
  s->V = spr_arena_alloc(mem, nd * sizeof *s->V);
  s->q = spr_arena_alloc(mem, nd);
  s->k = spr_arena_alloc(mem, nd);
  s->kmsb = spr_arena_alloc(mem, nd);
  s->counts = spr_arena_alloc(mem, ((size_t)1 << c->thr.bits) * sizeof *s->counts);
  s->ihist = spr_arena_alloc(mem, (size_t)(2 * ideal_bound_max(c, d) + 1) * sizeof *s->ihist);
  if (s->held) {
    if (i16) s->ideal16 = spr_arena_alloc(mem, nn * sizeof *s->ideal16);
    else s->ideal = spr_arena_alloc(mem, nn * sizeof *s->ideal);
    s->mask_a = spr_arena_alloc(mem, n * rb);
    s->mask_i = spr_arena_alloc(mem, n * rb);
  }
  if (want_scores) s->scores = spr_arena_alloc(mem, nn * sizeof *s->scores);
  if (!s->Q || !s->K || !s->V || !s->q || !s->k || !s->kmsb || !s->counts || !s->ihist ||
      (s->held && ((!s->ideal && !s->ideal16) || !s->mask_a || !s->mask_i)) || (want_scores && !s->scores))
    return spr_error(SPR_ENOMEM, "attention: out of memory for a head of %d x %d", n, d);
  return 0;
}

int spr_attend_heads_alloc_rows(spr_attend_head *s, int H, const spr_config *c, int n, int d,
                                int want_scores, int block_rows) {
  for (int h = 0; h < H; h++) memset(&s[h], 0, sizeof s[h]);
  if (H < 1) return 0;
  spr_arena *mem = spr_arena_new();
  if (!mem) return spr_error(SPR_ENOMEM, "attention: out of memory for a head of %d x %d", n, d);
  int rc = 0;
  for (int h = 0; h < H && !rc; h++) rc = head_carve(&s[h], mem, c, n, d, want_scores, block_rows);
  if (rc) {
    for (int h = 0; h < H; h++) memset(&s[h], 0, sizeof s[h]);
    spr_arena_free(mem);
    return rc;
  }
  s[0].mem = mem;
  return 0;
}

int spr_attend_head_alloc_rows(spr_attend_head *s, const spr_config *c, int n, int d,
                               int want_scores, int block_rows) {
  return spr_attend_heads_alloc_rows(s, 1, c, n, d, want_scores, block_rows);
}

int spr_attend_head_alloc(spr_attend_head *s, const spr_config *c, int n, int d,
                          int want_scores) {
  return spr_attend_head_alloc_rows(s, c, n, d, want_scores, n);
}

void spr_attend_head_free(spr_attend_head *s) {
  if (!s) return;
  spr_arena_free(s->mem);
  memset(s, 0, sizeof *s);
}

static void ws_release(spr_attend_ws *t) {
  if (t->rng) gsl_rng_free(t->rng);
  if (t->rng2) gsl_rng_free(t->rng2);
  spr_xbar_head_free(&t->xb);
  spr_nodal_ws_free(t->nodal);
  spr_analog_ws_free(&t->ws);
  spr_i8mat_free(t->pmsb);
  spr_i8mat_free(t->pk8);
  spr_i8mat_free(t->pk4);
  for (int r = 0; r < 7; r++) spr_i8mat_free(t->plow[r]);
  spr_arena_free(t->mem); /* work .. Oexact */
  spr_bl_quantile_free(t->qh);
  if (t->have_bws) spr_bl_ws_free(&t->bws);
  for (int s = 0; s < SPR_N_SCHEMES; s++) spr_dig_ws_free(&t->sr[s].dws);
}

void spr_attend_ws_free(spr_attend_ws *t) {
  if (!t) return;
  ws_release(t);
  free(t);
}

void spr_attend_ws_set_metrics(spr_attend_ws *w, int on) {
  if (w) w->metrics = on != 0;
}

int spr_attend_ws_alloc_rows(const spr_config *c, int n, int d, int B, spr_attend_ws **out) {
  *out = NULL;
  if (n < 2 || d < 1)
    return spr_error(SPR_EINVAL, "attention: head shape %d x %d (need n >= 2, d >= 1)", n, d);
  if (B > n) B = n;
  if (B < 1 || (B < n && B % 64))
    return spr_error(SPR_EINVAL, "attention: block of %d rows (a multiple of 64, or n = %d)", B, n);
  spr_attend_ws *w = calloc(1, sizeof *w);
  if (!w) return spr_error(SPR_ENOMEM, "attention: out of memory");
  w->n = n;
  w->d = d;
  w->B = B;
  w->metrics = 1;
  w->stage_cur = SPR_STAGE_N;
  if (!(w->mem = spr_arena_new())) goto nomem;
  const size_t nd = (size_t)n * d, bn = (size_t)B * n, rb = spr_mask_row_bytes(n);
  const int ct = spr_xbar_col_tiles(&c->xbar, n);
  const int tk = c->dig.top_k < n ? c->dig.top_k : n;
  int rc;
  if (!(w->rng = spr_rng_alloc()) || !(w->rng2 = spr_rng_alloc())) goto nomem;
  if ((rc = spr_xbar_head_alloc(&w->xb, &c->xbar, n, d))) goto fail;
  if ((rc = spr_analog_ws_alloc(&w->ws, B, n, d))) goto fail;
  /* the exact IR-drop solver's workspace (8.6 MB at 64 x 64) is one per
   * thread, reused for every array of every head the thread programs */
  if (c->xbar.ir_drop == SPR_IR_NODAL &&
      !(w->nodal = spr_nodal_ws_alloc(c->xbar.rows, c->xbar.cols, &rc)))
    goto fail;
  w->work = spr_arena_alloc(w->mem, 3 * (size_t)c->xbar.rows * c->xbar.cols * sizeof *w->work);
  w->gains = spr_arena_alloc(w->mem, (size_t)ct * d * sizeof *w->gains);
  w->off = spr_arena_alloc(w->mem, n * sizeof *w->off);
  w->layer_counts = spr_arena_alloc(w->mem, ((size_t)1 << c->thr.bits) * sizeof *w->layer_counts);
  w->Ib = spr_arena_alloc(w->mem, bn * sizeof *w->Ib);
  w->emax = spr_arena_alloc(w->mem, (size_t)B * sizeof *w->emax);
  w->ma = spr_arena_alloc(w->mem, B * rb);
  w->mi = spr_arena_alloc(w->mem, B * rb);
  w->q8 = spr_arena_alloc(w->mem, nd);
  w->v8 = spr_arena_alloc(w->mem, nd);
  w->qo = spr_arena_alloc(w->mem, nd);
  w->q4s = spr_arena_alloc(w->mem, nd);
  w->k4s = spr_arena_alloc(w->mem, nd);
  w->vf = spr_arena_alloc(w->mem, nd * sizeof *w->vf);
  w->qpos = spr_arena_alloc(w->mem, n * sizeof *w->qpos);
  w->kscr = spr_arena_alloc(w->mem, nd);
  w->tab = spr_arena_alloc(w->mem, (SPR_BL_EXP_TAB + 1) * sizeof *w->tab);
  w->S8 = spr_arena_alloc(w->mem, bn * sizeof *w->S8);
  w->So = spr_arena_alloc(w->mem, bn * sizeof *w->So);
  w->T1 = spr_arena_alloc(w->mem, bn * sizeof *w->T1);
  w->P = spr_arena_alloc(w->mem, bn * sizeof *w->P);
  w->Od = spr_arena_alloc(w->mem, (size_t)B * d * sizeof *w->Od);
  w->Ob = spr_arena_alloc(w->mem, (size_t)B * d * sizeof *w->Ob);
  w->top = spr_arena_alloc(w->mem, (size_t)B * tk * sizeof *w->top);
  w->top_k = tk;
  w->mks = spr_arena_alloc(w->mem, (size_t)SPR_N_SCHEMES * B * rb);
  w->e8 = spr_arena_alloc(w->mem, (size_t)8 * n * sizeof *w->e8);
  if (B >= n) w->Oexact = spr_arena_alloc(w->mem, nd * sizeof *w->Oexact);
  if (!w->work || !w->gains || !w->off || !w->layer_counts || !w->Ib || !w->emax || !w->ma || !w->mi ||
      !w->q8 || !w->v8 || !w->qo || !w->q4s || !w->k4s || !w->vf || !w->qpos || !w->kscr ||
      !w->tab || !w->S8 || !w->So || !w->T1 || !w->P || !w->Od || !w->Ob || !w->top ||
      !w->mks || !w->e8 || (B >= n && !w->Oexact))
    goto nomem;
  if ((rc = spr_i8mat_alloc(n, d, B, &w->pmsb)) || (rc = spr_i8mat_alloc(n, d, B, &w->pk8)) ||
      (rc = spr_i8mat_alloc(n, d, B, &w->pk4)))
    goto fail;
  for (int r = 0; r < 7; r++)
    if ((rc = spr_i8mat_alloc(n, d, B, &w->plow[r]))) goto fail;
  if ((rc = spr_bl_quantile_alloc(&w->qh, (int64_t)16384 * d))) goto fail;
  for (int s = 0; s < SPR_N_SCHEMES; s++)
    if ((rc = spr_dig_ws_alloc(&w->sr[s].dws, n, d))) goto fail;
  /* Sanger's matched threshold sorts the probabilities of a held head */
  if (B >= n && c->bl.match == SPR_MATCH_SPRINT && c->bl.sanger) {
    if ((rc = spr_bl_ws_alloc(&w->bws, n, d))) goto fail;
    w->have_bws = 1;
  }
  *out = w;
  return 0;
nomem:
  rc = spr_error(SPR_ENOMEM, "attention: out of memory for a head of %d tokens", n);
fail:
  spr_attend_ws_free(w);
  return rc;
}

int spr_attend_ws_alloc(const spr_config *c, int n, int d, spr_attend_ws **out) {
  return spr_attend_ws_alloc_rows(c, n, d, n, out);
}

/* ---- step 1: quantization, ideal scores --------------------------------- */

SPR_HOT static int32_t maxabs8(const int8_t *x, size_t m) {
  int32_t a = 0;
#pragma omp simd reduction(max : a)
  for (size_t i = 0; i < m; i++) {
    const int32_t v = x[i] < 0 ? -x[i] : x[i];
    a = v > a ? v : a;
  }
  return a;
}

/* sum |x| over m codes: int32 lanes over 2^20 codes at a time (at most
 * 128 * 2^20 = 2^27 each), then int64 */
SPR_HOT static int64_t abssum8(const int8_t *x, size_t m) {
  int64_t s = 0;
  for (size_t i0 = 0; i0 < m; i0 += (size_t)1 << 20) {
    const size_t i1 = m - i0 < ((size_t)1 << 20) ? m : i0 + ((size_t)1 << 20);
    int32_t c = 0;
#pragma omp simd reduction(+ : c)
    for (size_t i = i0; i < i1; i++) c += x[i] < 0 ? -x[i] : x[i];
    s += c;
  }
  return s;
}

/* The ideal scores of rows i0 .. i0 + m - 1 into I (m x n, ld n): exact.
 * A blocked causal head computes the keys its rows see; a held one every
 * key (a trace records them). */
static int ideal_rows(const spr_attend_head *s, spr_attend_ws *w, int causal, int i0, int m,
                      int32_t *I) {
  const int nc = causal && !s->held ? i0 + m : s->n;
  if (w->pmsb_head != s || w->pmsb_gen != s->gen) { /* another head's keys are packed */
    int rc = spr_i8mat_pack(w->pmsb, s->kmsb, s->n, s->d, s->d);
    if (rc) return rc;
    w->pmsb_head = s;
    w->pmsb_gen = s->gen;
  }
  return spr_i8mat_mul(w->pmsb, s->q + (size_t)i0 * s->d, s->d, m, nc, I, s->n);
}

/* h[v]++ for every score v of rows I (m x n) the rows decide (h centred
 * on 0); four partial histograms would need four times the memory, and
 * the increments rarely collide at these widths. */
SPR_HOT static void hist_rows(const int32_t *I, int n, int i0, int m, int causal, int64_t *h) {
  for (int r = 0; r < m; r++) {
    const int32_t *si = I + (size_t)r * n;
    const int nk = causal ? i0 + r + 1 : n;
    for (int j = 0; j < nk; j++) h[si[j]]++;
  }
}

int spr_attend_ideal(const spr_config *c, int layer, int head, spr_attend_head *s,
                     spr_attend_ws *w, spr_head_result *res) {
  const int sp_ = stage_enter(w, SPR_STAGE_IDEAL);
  const int n = s->n, d = s->d, causal = c->wl.causal != 0;
  const size_t nd = (size_t)n * d;
  int rc;
  float qs, ks;
  if ((rc = spr_quant_sym(s->Q, nd, c->an.query_bits, s->q, &qs))) return stage_ret(w, sp_, rc);
  if ((rc = spr_quant_sym(s->K, nd, c->xbar.key_bits, s->k, &ks))) return stage_ret(w, sp_, rc);
  spr_quant_msb(s->k, nd, c->xbar.key_bits, c->xbar.key_msb_bits, s->kmsb);
  if (w->ref_h == s) w->ref_fresh = 0; /* new inputs: no reference of old ones */
  const int64_t abs_sum = abssum8(s->kmsb, nd);
  /* exact integer scores, row blocks; their histogram and max |s| over the
   * pairs the head decides (causal: j <= i) */
  s->gen++;
  if ((rc = spr_i8mat_pack(w->pmsb, s->kmsb, n, d, d))) return stage_ret(w, sp_, rc);
  w->pmsb_head = s;
  w->pmsb_gen = s->gen;
  const int32_t bound = maxabs8(s->q, nd) * maxabs8(s->kmsb, nd) * d;
  s->ibound = bound;
  int64_t *hist = s->ihist + (ideal_bound_max(c, d) - bound);
  memset(s->ihist, 0, (size_t)(2 * ideal_bound_max(c, d) + 1) * sizeof *s->ihist);
  /* int16 storage: 64 rows at a time through the int32 scratch, which
   * stays in cache from the product to the histogram and the copy (a
   * held head of N = 2048 had 16 MB of scratch go to memory and back) */
  const int step = s->ideal16 && w->B > 64 ? 64 : w->B;
  for (int i0 = 0; i0 < n; i0 += step) {
    const int m = n - i0 < step ? n - i0 : step;
    int32_t *I = s->ideal ? s->ideal + (size_t)i0 * n : w->Ib;
    if ((rc = ideal_rows(s, w, causal, i0, m, I))) return stage_ret(w, sp_, rc);
    hist_rows(I, n, i0, m, causal, hist + bound);
    if (s->ideal16) /* |scores| <= bound <= INT16_MAX: exact */
      for (int r = 0; r < m; r++) {
        const int32_t *ir = I + (size_t)r * n;
        int16_t *hr = s->ideal16 + (size_t)(i0 + r) * n;
        const int nk = causal ? i0 + r + 1 : n;
        for (int j = 0; j < nk; j++) hr[j] = (int16_t)ir[j];
      }
  }
  /* max |s| from the histogram's outermost bins */
  int32_t mx = bound;
  while (mx > 0 && !hist[bound + mx] && !hist[bound - mx]) mx--;
  s->maxabs = mx;
  s->q_scale = qs;
  s->k_scale = ks;
  memset(res, 0, sizeof *res);
  res->layer = layer;
  res->head = head;
  res->n = n;
  res->d = d;
  res->causal = causal;
  res->q_scale = qs;
  res->k_scale = ks;
  /* each key element's pair: one cell at level |k|, the other at 0 */
  const double dg = (c->xbar.g_max_S - c->xbar.g_min_S) / (double)((1 << c->xbar.cell_bits) - 1);
  res->mean_cell_G_S = c->xbar.g_min_S + dg * (double)abs_sum / (2.0 * (double)nd);
  return stage_ret(w, sp_, 0);
}

void spr_attend_range(const spr_config *c, const spr_attend_head *heads, int H,
                      spr_head_result *res) {
  const spr_thr_params *t = &c->thr;
  int32_t lmax = 0;
  for (int h = 0; h < H; h++) lmax = heads[h].maxabs > lmax ? heads[h].maxabs : lmax;
  for (int h = 0; h < H; h++) {
    int32_t m = t->per_head ? heads[h].maxabs : lmax;
    res[h].range = t->range > 0 ? t->range : (m > 0 ? (double)m : 1.0);
  }
}


int spr_attend_count(const spr_config *c, spr_attend_head *s, const spr_head_result *res) {
  /* from the exact histogram: code c keeps the scores v >= level(c), i.e.
   * v >= t_c, t_c the least integer with (double) t_c >= level(c) */
  const int bits = c->thr.bits, half = 1 << (bits - 1), ncode = 1 << bits;
  const int64_t off = ideal_bound_max(c, s->d) - s->ibound;
  const int64_t *hist = s->ihist + off;
  const int32_t b = s->ibound;
  /* suffix sums over the bound's 2 b + 1 values, read at each code */
  int64_t acc = 0;
  int32_t v = b + 1; /* acc = count of scores >= v */
  for (int code = ncode - 1; code >= 0; code--) {
    const double level = spr_thr_level(code - half, res->range, bits);
    double t = ceil(level);
    int64_t tc = t > (double)b + 1 ? (int64_t)b + 1 : (t < -(double)b ? -(int64_t)b : (int64_t)t);
    while (tc <= b && (double)tc < level) tc++; /* settle at the grid point */
    while (v > tc) {
      v--;
      acc += hist[v + b];
    }
    s->counts[code] = acc;
  }
  return 0;
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
                   "(range %g score units): the nearest code %d keeps %.4g; use more threshold.bits%s",
                   who, t->keep_rate, t->bits, range, code, got,
                   t->range > 0 ? " or threshold.range = 0 (auto)" : "");
}

double spr_attend_theta_units(const spr_config *c, const spr_head_result *res, double theta_s) {
  const double kw = ldexp(1.0, c->xbar.key_bits - c->xbar.key_msb_bits);
  return theta_s * sqrt((double)res->d) / ((double)res->q_scale * (double)res->k_scale * kw);
}

int spr_attend_thresholds(const spr_config *c, int layer, const spr_attend_head *heads, int H,
                          double learned_theta, spr_attend_ws *w, spr_head_result *res,
                          int *saturated) {
  const spr_thr_params *t = &c->thr;
  const int bits = t->bits;
  int rc;
  if (t->mode == SPR_THR_KEEP_RATE || t->mode == SPR_THR_ANALOG_KEEP_RATE) {
    /* h->counts: of the ideal scores (keep_rate, spr_attend_count) or of
     * the analog scores (analog_keep_rate, spr_attend_analog_scores) */
    const size_t ncode = (size_t)1 << bits;
    const int64_t per_head_total = spr_pair_count(heads[0].n, c->wl.causal);
    if (t->per_head) {
      for (int h = 0; h < H; h++) {
        res[h].threshold_code = spr_thr_pick(heads[h].counts, per_head_total, bits, t->keep_rate);
        if ((rc = check_reachable(heads[h].counts, per_head_total, res[h].threshold_code, t,
                                  layer, h, res[h].range)))
          return rc;
      }
    } else {
      memset(w->layer_counts, 0, ncode * sizeof *w->layer_counts);
      for (int h = 0; h < H; h++)
        for (size_t k = 0; k < ncode; k++) w->layer_counts[k] += heads[h].counts[k];
      int code = spr_thr_pick(w->layer_counts, per_head_total * H, bits, t->keep_rate);
      if ((rc = check_reachable(w->layer_counts, per_head_total * H, code, t, layer, -1,
                                res[0].range)))
        return rc;
      for (int h = 0; h < H; h++) res[h].threshold_code = code;
    }
  } else {
    for (int h = 0; h < H; h++) {
      /* the generator spans [-range, range (1 - 2^(1-bits))]: a value more
       * than half a step outside cannot be produced */
      const double lo = spr_thr_level(-(1 << (bits - 1)), res[h].range, bits);
      const double hi = spr_thr_level((1 << (bits - 1)) - 1, res[h].range, bits);
      const double half_step = 0.5 * res[h].range / (double)(1 << (bits - 1));
      double v;
      if (t->mode == SPR_THR_LEARNED) {
        v = spr_attend_theta_units(c, &res[h], learned_theta + t->offset);
        if (!isfinite(v))
          return spr_error(SPR_EINVAL, "layer %d head %d: learned threshold %g + offset %g gives "
                           "%g score units (quantization scales %g, %g)", layer, h, learned_theta,
                           t->offset, v, res[h].q_scale, res[h].k_scale);
        if (saturated && !(v >= lo - half_step && v <= hi + half_step)) (*saturated)++;
        /* spr_thr_code clamps to the grid's ends: the saturation */
      } else {
        if (t->n_values == 1) v = t->values[0];
        else if (t->per_head) v = t->values[(size_t)layer * H + h];
        else v = t->values[layer];
        if (!(v >= lo - half_step && v <= hi + half_step))
          return spr_error(SPR_EINVAL,
                           "layer %d head %d: threshold.values %g outside the %d-bit threshold "
                           "generator's range [%g, %g] (threshold.range %g%s)", layer, h, v, bits,
                           lo, hi, res[h].range, t->range > 0 ? "" : ", auto: max |ideal score|");
      }
      res[h].threshold_code = spr_thr_code(v, res[h].range, bits);
    }
  }
  for (int h = 0; h < H; h++)
    res[h].threshold = spr_thr_level(res[h].threshold_code, res[h].range, bits);
  return 0;
}

/* Step 3's programming (also alone: spr_run_check). */
int spr_attend_program(const spr_config *c, int layer, int head, int trial, spr_attend_head *s,
                       spr_attend_ws *w) {
  const uint64_t seed = c->seed;
  int rc;
  const double *gains = NULL;
  if (c->an.dac_error) {
    spr_rng_key(w->rng, seed, layer, head, trial, SPR_STREAM_DAC);
    if ((rc = spr_dac_gains(&c->an, w->xb.col_tiles, s->d, w->rng, w->gains))) return rc;
    gains = w->gains;
  }
  /* programming variation and stuck-at faults draw from two streams */
  spr_rng_key(w->rng, seed, layer, head, trial, SPR_STREAM_PROG);
  spr_rng_key(w->rng2, seed, layer, head, trial, SPR_STREAM_STUCK);
  return spr_xbar_program(&w->xb, &c->xbar, s->kmsb, gains, w->rng, w->rng2, w->work, w->nodal);
}

/* Program the head's arrays (spr_attend_program) and draw the comparator
 * offsets, from the streams keyed by (seed, layer, head, trial); *sc the
 * score scale, *off the offsets or NULL. */
static int program_head(const spr_config *c, int layer, int h, int trial, spr_attend_head *s,
                        spr_attend_ws *w, spr_analog_scale *sc, const float **off) {
  const int sp_ = stage_enter(w, SPR_STAGE_PROGRAM);
  const int n = s->n;
  const uint64_t seed = c->seed;
  int rc;
  if ((rc = spr_attend_program(c, layer, h, trial, s, w))) return stage_ret(w, sp_, rc);
  spr_analog_scale_of(&c->an, w->xb.dg_S, sc);
  *off = NULL;
  if (c->an.cmp_offset) {
    spr_rng_key(w->rng, seed, layer, h, trial, SPR_STREAM_CMP_OFFSET);
    spr_cmp_offsets(&c->an, sc, n, w->rng, w->off);
    *off = w->off;
  }
  return stage_ret(w, sp_, 0);
}


/* Program a blocked or held head for the analog decisions of trial:
 * arrays, comparator offsets and scale into w (program_head). */
static int program_ws(const spr_config *c, int layer, int head, int trial, spr_attend_head *s,
                      spr_attend_ws *w) {
  return program_head(c, layer, head, trial, s, w, &w->sc, &w->offp);
}

int spr_attend_analog_scores(const spr_config *c, int layer, int head, int trial,
                             spr_attend_head *s, spr_attend_ws *w, spr_head_result *res) {
  const int sp_ = stage_enter(w, SPR_STAGE_ANALOG);
  const int n = s->n, causal = c->wl.causal != 0;
  if (s->held && !s->scores)
    return stage_ret(w, sp_, spr_error(SPR_EINVAL, "attention: analog scores need a head allocated for "
                     "threshold.mode = analog_keep_rate"));
  int rc = program_ws(c, layer, head, trial, s, w);
  if (rc) return stage_ret(w, sp_, rc);
  spr_rng_key(w->rng, c->seed, layer, head, trial, SPR_STREAM_READ);
  res->i_unit_A = w->sc.i_unit_A;
  w->have = 0; /* T1 is overwritten */
  memset(s->counts, 0, ((size_t)1 << c->thr.bits) * sizeof *s->counts);
  /* a blocked head: the scores of each block are counted and dropped
   * (spr_attend_head_step draws them again from the same stream) */
  for (int i0 = 0; i0 < n; i0 += w->B) {
    const int m = n - i0 < w->B ? n - i0 : w->B;
    float *A = s->held ? s->scores + (size_t)i0 * n : (float *)w->T1;
    if ((rc = spr_analog_scores(&c->an, &w->sc, &w->xb, s->q + (size_t)i0 * s->d, m, causal, i0,
                                w->offp, w->rng, &w->ws, A)) ||
        (rc = spr_thr_count_scores(A, m, n, causal, i0, res->range, c->thr.bits, s->counts)))
      return stage_ret(w, sp_, rc);
  }
  return stage_ret(w, sp_, 0);
}

/* ---- step 3: analog decisions ------------------------------------------- */

/* The ideal mask rows of ideal score rows I (m x n) at threshold theta
 * into mi, and the comparison with the analog rows ma. */
SPR_HOT static void compare_rows(const int32_t *I, const int16_t *I16, int i0, int m, int n,
                                 int causal, double theta, const uint8_t *ma, uint8_t *mi,
                                 int64_t *ik, int64_t *fp, int64_t *fk) {
  const size_t rb = spr_mask_row_bytes(n);
  const double tc = ceil(theta);
  const int32_t t = tc > 2147483647.0 ? INT32_MAX : (tc < -2147483647.0 ? -INT32_MAX : (int32_t)tc);
  for (int r = 0; r < m; r++) {
    uint8_t *mr = mi + (size_t)r * rb;
    const uint8_t *ar = ma + (size_t)r * rb;
    const int nk = causal ? i0 + r + 1 : n;
    const size_t used = ((size_t)nk + 7) / 8;
    *ik += I16 ? spr_vbits_ge_i16(I16 + (size_t)r * n, nk, t, mr)
               : spr_vbits_ge_i32(I + (size_t)r * n, nk, t, mr);
    memset(mr + used, 0, rb - used);
    size_t b = 0;
    for (; b + 8 <= rb; b += 8) {
      uint64_t x, y;
      memcpy(&x, mr + b, 8);
      memcpy(&y, ar + b, 8);
      *fp += __builtin_popcountll(x & ~y);
      *fk += __builtin_popcountll(y & ~x);
    }
    for (; b < rb; b++) {
      *fp += __builtin_popcount(mr[b] & (uint8_t)~ar[b]);
      *fk += __builtin_popcount(ar[b] & (uint8_t)~mr[b]);
    }
  }
}

/* The dense reference of rows i0 .. i0 + m - 1 into the block cache (P,
 * Od), for the head h (causal from c). */
static int ref_rows(const spr_config *c, spr_attend_head *h, spr_attend_ws *w, int i0, int m) {
  const int sp_ = stage_enter(w, SPR_STAGE_REFERENCE);
  return stage_ret(w, sp_, spr_dig_dense_rows(h->Q, h->K, h->V, h->n, h->d, c->wl.causal != 0, i0, m, w->P, w->Od));
}

/* Softmax mass of the rows kept by mask rows ma, mi (P rows of the
 * reference, spr_dig_mask_sum). */
static void mass_rows(const float *P, const uint8_t *ma, const uint8_t *mi, int i0, int m, int n,
                      int causal, double *mass_a, double *mass_i) {
  const size_t rb = spr_mask_row_bytes(n);
  for (int r = 0; r < m; r++) {
    const float *pr = P + (size_t)r * n;
    const int nk = causal ? i0 + r + 1 : n;
    *mass_a += spr_dig_mask_sum(pr, ma + (size_t)r * rb, nk);
    *mass_i += spr_dig_mask_sum(pr, mi + (size_t)r * rb, nk);
  }
}

/* Decide rows i0 .. i0 + m - 1 (analog, ideal, counts; mass when the
 * reference of those rows is in w->P) with the head programmed and the
 * streams keyed; masks into ma, mi (m x rb). */
static int analog_rows(const spr_config *c, spr_attend_head *s, spr_attend_ws *w,
                       const spr_head_result *res, int i0, int m, uint8_t *ma, uint8_t *mi,
                       int with_mass) {
  const int n = s->n, d = s->d, causal = c->wl.causal != 0;
  int64_t kept = 0;
  int rc;
  if (c->thr.mode == SPR_THR_ANALOG_KEEP_RATE) {
    /* held: the scores drawn before the threshold; blocked: drawn again
     * from the same stream position */
    const float *A = s->held ? s->scores + (size_t)i0 * n : NULL;
    if (!A) {
      if ((rc = spr_analog_scores(&c->an, &w->sc, &w->xb, s->q + (size_t)i0 * d, m, causal, i0,
                                  w->offp, w->rng, &w->ws, (float *)w->T1)))
        return rc;
      A = (const float *)w->T1;
    }
    spr_analog_mask_from_scores(A, m, n, causal, i0, res->threshold, ma, &kept);
  } else {
    float *sc = s->scores ? s->scores + (size_t)i0 * n : NULL;
    if (causal)
      rc = spr_analog_decide_causal(&c->an, &w->sc, &w->xb, s->q + (size_t)i0 * d, m, i0,
                                    res->threshold, w->offp, w->rng, w->rng2, &w->ws, ma, sc, &kept);
    else
      rc = spr_analog_decide(&c->an, &w->sc, &w->xb, s->q + (size_t)i0 * d, m, res->threshold,
                             w->offp, w->rng, w->rng2, &w->ws, ma, sc, &kept);
    if (rc) return rc;
  }
  const int32_t *I = s->ideal ? s->ideal + (size_t)i0 * n : s->held ? NULL : w->Ib;
  const int16_t *I16 = s->ideal16 ? s->ideal16 + (size_t)i0 * n : NULL;
  if (!s->held && (rc = ideal_rows(s, w, causal, i0, m, w->Ib))) return rc;
  compare_rows(I, I16, i0, m, n, causal, res->threshold, ma, mi, &w->run_ik,
               &w->run_fp, &w->run_fk);
  w->run_kept += kept;
  if (with_mass) {
    const int sp = stage_enter(w, SPR_STAGE_REFERENCE);
    mass_rows(w->P, ma, mi, i0, m, n, causal, &w->run_mass_a, &w->run_mass_i);
    stage_enter(w, sp);
  }
  return 0;
}

/* Program the head and key the decision streams (steps 3's start). */
static int analog_begin(const spr_config *c, int layer, int head, int trial, spr_attend_head *s,
                        spr_attend_ws *w) {
  int rc = program_ws(c, layer, head, trial, s, w);
  if (rc) return rc;
  spr_rng_key(w->rng, c->seed, layer, head, trial, SPR_STREAM_READ);
  spr_rng_key(w->rng2, c->seed, layer, head, trial, SPR_STREAM_READ_FAR);
  w->run_kept = w->run_ik = w->run_fp = w->run_fk = 0;
  w->run_mass_a = w->run_mass_i = 0;
  return 0;
}

/* The analog statistics of *res from the run's sums. */
static void analog_end(const spr_config *c, const spr_attend_head *s, const spr_attend_ws *w,
                       spr_head_result *res) {
  const int n = s->n;
  const double nn = (double)spr_pair_count(n, c->wl.causal);
  res->n_kept = w->run_kept;
  res->n_ideal_kept = w->run_ik;
  res->false_prunes = w->run_fp;
  res->false_keeps = w->run_fk;
  res->keep_rate = (double)w->run_kept / nn;
  res->ideal_keep_rate = (double)w->run_ik / nn;
  res->mass_retained = w->metrics ? w->run_mass_a / n : NAN;
  res->ideal_mass_retained = w->metrics ? w->run_mass_i / n : NAN;
  res->i_unit_A = w->sc.i_unit_A;
}

int spr_attend_analog(const spr_config *c, int layer, int head, int trial, spr_attend_head *s,
                      spr_attend_ws *w, spr_head_result *res) {
  const int sp_ = stage_enter(w, SPR_STAGE_ANALOG);
  const int n = s->n;
  int rc;
  if (c->thr.mode == SPR_THR_ANALOG_KEEP_RATE && s->held && !s->scores)
    return stage_ret(w, sp_, spr_error(SPR_EINVAL, "attention: threshold.mode = analog_keep_rate needs the head's "
                     "analog scores (spr_attend_analog_scores)"));
  if (c->thr.mode == SPR_THR_ANALOG_KEEP_RATE && s->held) {
    /* nothing is programmed or drawn again: the decisions of the scores */
    w->run_kept = w->run_ik = w->run_fp = w->run_fk = 0;
    w->run_mass_a = w->run_mass_i = 0;
    w->sc.i_unit_A = res->i_unit_A;
  } else if ((rc = analog_begin(c, layer, head, trial, s, w))) {
    return stage_ret(w, sp_, rc);
  }
  /* the reference of a held head stays for its digital path (ref_fresh) */
  w->ref_fresh = 0;
  w->have = 0;
  for (int i0 = 0; i0 < n; i0 += w->B) {
    const int m = n - i0 < w->B ? n - i0 : w->B;
    if (w->metrics && (rc = ref_rows(c, s, w, i0, m))) return stage_ret(w, sp_, rc);
    uint8_t *ma = s->held ? s->mask_a + (size_t)i0 * spr_mask_row_bytes(n) : w->ma;
    uint8_t *mi = s->held ? s->mask_i + (size_t)i0 * spr_mask_row_bytes(n) : w->mi;
    if ((rc = analog_rows(c, s, w, res, i0, m, ma, mi, w->metrics))) return stage_ret(w, sp_, rc);
  }
  if (s->held && w->metrics) {
    w->ref_h = s;
    w->ref_fresh = 1;
    w->dh = s;
    w->blk_i0 = 0;
    w->blk_m = n;
    w->have = HAVE_DENSE;
  }
  analog_end(c, s, w, res);
  return stage_ret(w, sp_, 0);
}

/* Baselines whose prediction computes the exact 8-bit scores of every
 * pair: their survivors need values only, no score recompute. */
static int scores_known(int scheme) {
  return scheme == SPR_SCHEME_ORACLE || scheme == SPR_SCHEME_TOPK || scheme == SPR_SCHEME_LEOPARD;
}


/* Cells SPRINT programs into its scoring arrays for one sequence of an
 * n x d head (docs/energy.md section 8):
 *   xbar_cells_written = 2 n d           (one differential pair per key
 *                                         element, both cells written)
 *   xbar_bits_written  = 2 n d cell_bits (a cell is programmed to one of
 *                                         2^cell_bits levels)
 * A causal head programs every key too: the last query sees them all. */
static void xbar_program_counts(const spr_config *c, int n, int d, spr_ledger_counts *q) {
  q->xbar_cells_written = 2 * (int64_t)n * d;
  q->xbar_bits_written = q->xbar_cells_written * c->xbar.cell_bits;
}


/* The key rule of a digital predictor (docs/energy.md section 9): the
 * predictor needs every key its queries see, at its own width kb (oracle
 * and top-k 8 bits, Sanger 4, LeOPArd the 8-bit planes).  The sequence's
 * K at that width, K_b = n ceil(d kb / 8) bytes, stays in the buffer when
 * it fits beside the survivors of the busiest query,
 *     K_b + max(1, max_i |P_i|) token_bytes <= buffer_bytes,
 * (token_bytes: what a survivor fetches, values only for the schemes whose
 * prediction computed exact scores); it is then loaded from ReRAM once
 * (causal: key i on query i, the first that sees it) and read from SRAM
 * by every query, and the survivors share the rest of the buffer,
 * buffer_bytes - K_b.  Otherwise K is streamed from ReRAM for every query,
 * as the survivors have the whole buffer. */
static pred_key_plan pred_key_rule(const spr_config *c, int n, int d, int scheme,
                                   const spr_bl_stats *bst, int64_t ms, int64_t token_bytes) {
  pred_key_plan p;
  memset(&p, 0, sizeof p);
  if (!bst) return p;
  p.key_bits = scheme == SPR_SCHEME_LEOPARD ? c->xbar.key_bits : bst->mac_k_bits;
  p.key_bytes = (int64_t)n * (((int64_t)d * p.key_bits + 7) / 8);
  p.key_words = ((int64_t)d * p.key_bits + 63) / 64;
  p.plane_words = ((int64_t)d + 63) / 64;
  p.resident = p.key_bytes + (ms > 1 ? ms : 1) * token_bytes <= (int64_t)c->dig.buffer_bytes;
  return p;
}

/* Ledger counts of query i of a scheme (docs/energy.md section 6): the
 * fetch of its survivors through the buffer, the recompute, SPRINT's
 * in-memory scoring, the baseline's prediction spread over queries, and
 * the writes of the sequence's keys on the first query.  Causal
 * (docs/energy.md section 7): query i's in-memory scoring, key stream and
 * share of the prediction cover keys 0 .. i. */
/* A prediction's head totals spread over the queries (query_counts): the
 * quotients of each total by n (and by the causal pairs P) taken once per
 * head instead of per query. */
enum { SP_MACS, SP_ADDS, SP_MULS, SP_EXPS, SP_CMPS, SP_KBITS_D, SP_KBITS, SP_N };
typedef struct {
  int causal;
  int64_t n, P;
  int64_t qn[SP_N], rn[SP_N], qp[SP_N], rp[SP_N];
} spread_plan;

static void spread_init(spread_plan *sp, const spr_bl_stats *bst, int n, int d, int causal) {
  int64_t levels = 0;
  while (bst->k > 0 && ((int64_t)1 << levels) < bst->k) levels++;
  const int64_t tot[SP_N] = {bst->mac_ops, bst->add_ops, bst->mul_ops, bst->exp_ops,
                             bst->cmp_ops + bst->topk_inputs * levels,
                             bst->key_bits_processed * d, bst->key_bits_processed};
  sp->causal = causal;
  sp->n = n;
  sp->P = spr_pair_count(n, 1);
  for (int k = 0; k < SP_N; k++) {
    sp->qn[k] = tot[k] / sp->n;
    sp->rn[k] = tot[k] % sp->n;
    sp->qp[k] = tot[k] / sp->P;
    sp->rp[k] = tot[k] % sp->P;
  }
}

/* Query i's share of total k: evenly, remainders on the first queries;
 * causal, in proportion to the keys each query sees (query i takes
 * floor(total T(i+1) / P) - floor(total T(i) / P), T(m) = m (m + 1) / 2
 * the pairs of queries 0 .. m-1, P = T(n)): the shares add up to the
 * total exactly (floor(total a / P) = q a + floor(r a / P) for total =
 * q P + r, exact while P^2 < 2^63). */
static inline int64_t spread_at(const spread_plan *sp, int k, int64_t i) {
  if (!sp->causal) return sp->qn[k] + (i < sp->rn[k]);
  const int64_t T0 = i * (i + 1) / 2, T1 = T0 + i + 1;
  return sp->qp[k] * (T1 - T0) + sp->rp[k] * T1 / sp->P - sp->rp[k] * T0 / sp->P;
}

/* Ledger counts of query i of a scheme (docs/energy.md section 6): the
 * fetch of its survivors through the buffer, the recompute, SPRINT's
 * in-memory scoring, the baseline's prediction spread over queries (sp,
 * NULL without one), and the writes of the sequence's keys on the first
 * query.  Causal (docs/energy.md section 7): query i's in-memory scoring,
 * key stream and share of the prediction cover keys 0 .. i. */
static void query_counts(const spr_config *c, int n_, int d_, int scheme,
                         const spr_dig_fetch_stats *fs, const spr_dig_ws *dws,
                         const spr_bl_stats *bst, const spread_plan *sp, const pred_key_plan *kp,
                         int i, spr_ledger_counts *q) {
  const int64_t n = n_, d = d_;
  const int causal = c->wl.causal != 0;
  const int64_t nk = causal ? (int64_t)i + 1 : n; /* keys query i sees */
  const int64_t hits = dws->q_hits[i], fetches = dws->q_fetches[i], over = dws->q_overflow[i];
  const int64_t surv = hits + fetches, words = (fs->token_bytes + 7) / 8;
  memset(q, 0, sizeof *q);
  /* the sequence's K and V are written to ReRAM once, on the first query */
  if (i == 0) q->reram_bits_written = n * d * (c->xbar.key_bits + c->dig.value_bits);
  q->reram_bits_read = fetches * fs->token_bytes * 8;
  /* streamed tokens bypass the buffer: neither written to nor read from it */
  q->sram_words_written = (fetches - over) * words;
  q->sram_words_read = (surv - over) * words;
  q->buffer_bytes = c->dig.buffer_bytes;
  /* schemes whose prediction already computed exact scores reuse them */
  q->score_macs = scores_known(scheme) ? 0 : surv * d;
  q->exps = q->divs = surv;
  q->v_macs = surv * d;
  if (scheme == SPR_SCHEME_SPRINT) {
    /* programming the scoring arrays, once per sequence (docs/energy.md
     * section 8): every key element's differential pair, both cells */
    if (i == 0) xbar_program_counts(c, n_, d_, q);
    q->imc_queries = 1;
    q->imc_macs = nk * d;
    q->cmp_decisions = nk;
    q->prune_bits_read = nk;
  }
  if (bst) {
    const int64_t macs = spread_at(sp, SP_MACS, i);
    if (bst->mac_k_bits == 1) q->pred_bitmacs = macs;
    else if (bst->mac_q_bits <= 4 && bst->mac_k_bits <= 4) q->pred_mac4 = macs;
    else q->pred_mac8 = macs;
    q->pred_adds = spread_at(sp, SP_ADDS, i);
    q->pred_muls = spread_at(sp, SP_MULS, i);
    q->pred_exps = spread_at(sp, SP_EXPS, i);
    q->pred_cmps = spread_at(sp, SP_CMPS, i);
    if (!kp->resident) {
      /* the sequence's K does not fit beside the survivors: the
       * prediction streams its key operand from ReRAM for every query,
       * the keys the query sees (all n; causal 0 .. i) at its width, or,
       * for LeOPArd, the d-bit planes it reads */
      if (scheme == SPR_SCHEME_LEOPARD) q->reram_bits_read += spread_at(sp, SP_KBITS_D, i);
      else q->reram_bits_read += nk * d * bst->mac_k_bits;
    } else {
      /* K stays in the buffer: loaded once (all keys on query 0; causal:
       * key i on query i), then read from SRAM by every query (LeOPArd:
       * the planes it reads, one plane of a key = ceil(d / 64) words) */
      const int64_t loaded = causal ? 1 : (i == 0 ? n : 0);
      q->reram_bits_read += loaded * d * kp->key_bits;
      q->sram_words_written += loaded * kp->key_words;
      if (scheme == SPR_SCHEME_LEOPARD) q->sram_words_read += spread_at(sp, SP_KBITS, i) * kp->plane_words;
      else q->sram_words_read += nk * kp->key_words;
    }
  }
}

/* A scheme's result from its accuracy and ledger (the fetch fields are
 * the caller's). */
static void fill_result(const spr_dig_attend_stats *as, const spr_dig_accuracy *acc,
                        const spr_ledger_result *lr, spr_scheme_result *out) {
  out->ran = 1;
  out->empty_queries = as->empty_queries;
  out->rel_fro = acc->rel_fro;
  out->cos_mean = acc->cos_mean;
  out->cos_min = acc->cos_min;
  out->mass_retained = acc->mass_retained;
  out->top1_recall = acc->top1_recall;
  out->topk_recall = acc->topk_recall;
  memcpy(out->energy_J, lr->energy_J, sizeof out->energy_J);
  out->energy_total_J = lr->total_J;
  memcpy(out->cycles, lr->cycles, sizeof out->cycles);
  out->cycles_total = lr->total_cycles;
  out->xbar_cells_written = lr->counts.xbar_cells_written;
}


/* ---- step 4: the digital path ------------------------------------------- */

/* The codes of the digital head s: the recompute's query (recompute_query_
 * bits) and values, the values as floats, the oracle's 8-bit query (the
 * recompute's when the widths agree), the keys packed for exact products;
 * the per-head caches emptied. */
static int digital_codes(const spr_config *c, spr_attend_head *s, spr_attend_ws *w) {
  const int sp_ = stage_enter(w, SPR_STAGE_CODES);
  const int n = s->n, d = s->d;
  const size_t nd = (size_t)n * d;
  int rc;
  if ((rc = spr_quant_sym(s->Q, nd, c->dig.query_bits, w->q8, &w->qs8))) return stage_ret(w, sp_, rc);
  if ((rc = spr_quant_sym(s->V, nd, c->dig.value_bits, w->v8, &w->vs8))) return stage_ret(w, sp_, rc);
  for (size_t t = 0; t < nd; t++) w->vf[t] = (float)w->v8[t];
  spr_bl_oracle_params op;
  spr_bl_oracle_default(&op);
  w->qo_is_q8 = op.q_bits == c->dig.query_bits;
  if (w->qo_is_q8) w->qos = w->qs8;
  else if ((rc = spr_quant_sym(s->Q, nd, op.q_bits, w->qo, &w->qos))) return stage_ret(w, sp_, rc);
  if ((rc = spr_i8mat_pack(w->pk8, s->k, n, d, d))) return stage_ret(w, sp_, rc);
  w->dh = s;
  w->have_pk4 = w->have_plow = w->have_tab = w->have_oracle_th = 0;
  return stage_ret(w, sp_, 0);
}

static const int8_t *qo_codes(const spr_attend_ws *w) { return w->qo_is_q8 ? w->q8 : w->qo; }

/* The block cache for rows i0 .. i0 + m - 1. */
static void blk_set(spr_attend_ws *w, int i0, int m) {
  if (w->blk_i0 != i0 || w->blk_m != m) {
    w->blk_i0 = i0;
    w->blk_m = m;
    w->have = 0;
  }
}

/* keys the block's rows see */
static int blk_cols(const spr_config *c, const spr_attend_ws *w) {
  return c->wl.causal ? w->blk_i0 + w->blk_m : w->n;
}

/* The 8-bit scores q8 . k8 of the block (recompute). */
static int blk_S8(const spr_config *c, spr_attend_ws *w) {
  const int sp_ = stage_enter(w, SPR_STAGE_SCORES);
  if (w->have & HAVE_S8) return stage_ret(w, sp_, 0);
  int rc = spr_i8mat_mul(w->pk8, w->q8 + (size_t)w->blk_i0 * w->d, w->d, w->blk_m, blk_cols(c, w),
                         w->S8, w->n);
  if (!rc) w->have |= HAVE_S8;
  return stage_ret(w, sp_, rc);
}

/* The oracle's scores (its 8-bit query codes): S8 when they agree. */
static int blk_So(const spr_config *c, spr_attend_ws *w, const int32_t **out) {
  const int sp_ = stage_enter(w, SPR_STAGE_SCORES);
  int rc;
  if (w->qo_is_q8) {
    rc = blk_S8(c, w);
    *out = w->S8;
    return stage_ret(w, sp_, rc);
  }
  *out = w->So;
  if (w->have & HAVE_SO) return stage_ret(w, sp_, 0);
  rc = spr_i8mat_mul(w->pk8, w->qo + (size_t)w->blk_i0 * w->d, w->d, w->blk_m, blk_cols(c, w),
                     w->So, w->n);
  if (!rc) w->have |= HAVE_SO;
  return stage_ret(w, sp_, rc);
}

/* Sanger's 4-bit codes and packed keys of the digital head. */
static int sanger_codes(const spr_config *c, spr_attend_head *s, spr_attend_ws *w) {
  const int sp_ = stage_enter(w, SPR_STAGE_CODES);
  if (w->have_pk4) return stage_ret(w, sp_, 0);
  spr_bl_sanger_params sp;
  spr_bl_sanger_default(&sp);
  const size_t nd = (size_t)s->n * s->d;
  int rc;
  if ((rc = spr_quant_sym(s->Q, nd, sp.q_bits, w->q4s, &w->q4ss)) ||
      (rc = spr_quant_sym(s->K, nd, sp.k_bits, w->k4s, &w->k4ss)) ||
      (rc = spr_i8mat_pack(w->pk4, w->k4s, s->n, s->d, s->d)))
    return stage_ret(w, sp_, rc);
  /* the exponentials of every score difference (spr_bl_exp_table) */
  w->tab_c = (double)w->q4ss * (double)w->k4ss / sqrt((double)s->d);
  const int64_t spread = 2 * (int64_t)maxabs8(w->q4s, nd) * maxabs8(w->k4s, nd) * s->d;
  w->tab_len = spread <= SPR_BL_EXP_TAB ? spread + 1 : 0;
  if (w->tab_len) spr_bl_exp_table(w->tab_c, w->tab_len, w->tab);
  w->have_pk4 = 1;
  return stage_ret(w, sp_, 0);
}

/* Sanger's scores of the block in T1. */
static int blk_S4(const spr_config *c, spr_attend_head *s, spr_attend_ws *w) {
  const int sp_ = stage_enter(w, SPR_STAGE_SCORES);
  if (w->have & HAVE_S4) return stage_ret(w, sp_, 0);
  int rc = sanger_codes(c, s, w);
  if (!rc)
    rc = spr_i8mat_mul(w->pk4, w->q4s + (size_t)w->blk_i0 * w->d, w->d, w->blk_m, blk_cols(c, w),
                       w->T1, w->n);
  if (!rc) w->have |= HAVE_S4;
  return stage_ret(w, sp_, rc);
}

/* The dense reference of the block and its ranks. */
static int blk_ref(const spr_config *c, spr_attend_head *s, spr_attend_ws *w) {
  const int sp_ = stage_enter(w, SPR_STAGE_REFERENCE);
  int rc;
  if (!(w->have & HAVE_DENSE)) {
    if ((rc = ref_rows(c, s, w, w->blk_i0, w->blk_m))) return stage_ret(w, sp_, rc);
    w->have |= HAVE_DENSE;
  }
  if (!(w->have & HAVE_RANK)) {
    if ((rc = spr_dig_rank_rows(w->P, w->blk_i0, w->blk_m, w->n, w->top_k, c->wl.causal != 0,
                                w->top, &w->sr[0].dws)))
      return stage_ret(w, sp_, rc);
    w->have |= HAVE_RANK;
  }
  return stage_ret(w, sp_, 0);
}

/* LeOPArd's low-plane keys and positive query sums of the digital head. */
static int leopard_codes(const spr_config *c, spr_attend_head *s, spr_attend_ws *w) {
  const int sp_ = stage_enter(w, SPR_STAGE_CODES);
  if (w->have_plow) return stage_ret(w, sp_, 0);
  const int n = s->n, d = s->d;
  const int8_t *qo = qo_codes(w);
  for (int i = 0; i < n; i++) {
    int64_t sum = 0;
    for (int t = 0; t < d; t++) {
      const int v = qo[(size_t)i * d + t];
      sum += v > 0 ? v : 0;
    }
    w->qpos[i] = sum;
  }
  int rc = spr_bl_leopard_pack(s->k, n, d, c->xbar.key_bits, w->plow, w->kscr);
  if (!rc) w->have_plow = 1;
  return stage_ret(w, sp_, rc);
}

/* Keys 0 .. nk - 1 of every row of the block (dense). */
static void dense_mask_rows(int i0, int m, int n, int causal, uint8_t *mask) {
  const size_t rb = spr_mask_row_bytes(n);
  for (int r = 0; r < m; r++) {
    uint8_t *row = mask + (size_t)r * rb;
    const int nk = causal ? i0 + r + 1 : n;
    const size_t full = (size_t)nk / 8;
    memset(row, 0xFF, full);
    memset(row + full, 0, rb - full);
    if (nk & 7) row[full] = (uint8_t)((1u << (nk & 7)) - 1);
  }
}

/* Bits lo .. hi (inclusive) of a mask row. */
static void set_range(uint8_t *row, int lo, int hi) {
  if (lo > hi) return;
  const int b0 = lo >> 3, b1 = hi >> 3;
  if (b0 == b1) {
    row[b0] |= (uint8_t)((0xFFu << (lo & 7)) & (0xFFu >> (7 - (hi & 7))));
    return;
  }
  row[b0] |= (uint8_t)(0xFFu << (lo & 7));
  if (b1 > b0 + 1) memset(row + b0 + 1, 0xFF, (size_t)(b1 - b0 - 1));
  row[b1] |= (uint8_t)(0xFFu >> (7 - (hi & 7)));
}

/* The window + global rows of spr_bl_window (its rule, row by row). */
static void window_mask_rows(const spr_bl_window_params *p, int i0, int m, int n,
                             uint8_t *mask) {
  const size_t rb = spr_mask_row_bytes(n);
  const int causal = p->causal != 0;
  for (int r = 0; r < m; r++) {
    const int i = i0 + r, nk = causal ? i + 1 : n;
    uint8_t *row = mask + (size_t)r * rb;
    memset(row, 0, rb);
    int glob = 0;
    for (int g = 0; g < p->n_global; g++) glob |= (p->global_pos ? p->global_pos[g] : g) == i;
    const int64_t w = p->half_width;
    const int lo = glob ? 0 : (int)(i - w < 0 ? 0 : i - w);
    const int hi = glob ? nk - 1 : (causal ? i : (int)(i + w > n - 1 ? n - 1 : i + w));
    set_range(row, lo, hi);
    for (int g = 0; g < p->n_global; g++) {
      const int x = p->global_pos ? p->global_pos[g] : g;
      if (!causal || i >= x) row[x >> 3] |= (uint8_t)(1u << (x & 7));
    }
  }
}

/* Rows c0 .. c0 + mc - 1 of scheme sc's mask for the cached block, in buf
 * (the block's rows, rb bytes each); *mask: the block's first row (buf,
 * or SPRINT's analog mask, which is there already). */
static int scheme_mask_rows(const spr_config *c, spr_attend_head *s, spr_attend_ws *w, int sc,
                            int c0, int mc, uint8_t *buf, const uint8_t **mask) {
  const int n = s->n, i0 = w->blk_i0 + c0, causal = c->wl.causal != 0;
  const size_t rb = spr_mask_row_bytes(n);
  const scheme_run *r = &w->sr[sc];
  uint8_t *out = buf + (size_t)c0 * rb;
  const int32_t *So;
  int rc = 0;
  *mask = buf;
  switch (sc) {
  case SPR_SCHEME_SPRINT:
    *mask = s->held ? s->mask_a + (size_t)w->blk_i0 * rb : w->ma;
    break;
  case SPR_SCHEME_DENSE:
  case SPR_SCHEME_DENSE_TILED:
    dense_mask_rows(i0, mc, n, causal, out);
    break;
  case SPR_SCHEME_ORACLE:
  case SPR_SCHEME_LEOPARD:
    if (!(rc = blk_So(c, w, &So)))
      spr_bl_threshold_rows(So + (size_t)c0 * n, (size_t)n, i0, mc, n, causal, r->theta, out);
    break;
  case SPR_SCHEME_TOPK:
    if (!(rc = blk_So(c, w, &So)))
      spr_bl_topk_rows(So + (size_t)c0 * n, (size_t)n, i0, mc, n, causal, r->topk_k, r->topk_frac,
                       out, (int32_t *)w->e8);
    break;
  case SPR_SCHEME_SANGER:
    if (!(rc = blk_S4(c, s, w)))
      spr_bl_sanger_rows(w->T1 + (size_t)c0 * n, (size_t)n, i0, mc, n, causal, w->tab_c,
                         r->sanger_p, w->tab_len ? w->tab : NULL, w->tab_len, w->e8, out);
    break;
  case SPR_SCHEME_WINDOW:
    window_mask_rows(&r->wp, i0, mc, n, out);
    break;
  default:
    return spr_error(SPR_EINVAL, "attention: unknown scheme %d", sc);
  }
  return rc;
}

/* Largest keys of a row among the mask rows; *total (may be NULL): their
 * keys. */
SPR_HOT static int64_t max_row_rows(const uint8_t *mask, int m, int n, int64_t *total) {
  const size_t rb = spr_mask_row_bytes(n);
  int64_t best = 0, all = 0;
  for (int r = 0; r < m; r++) {
    const uint8_t *row = mask + (size_t)r * rb;
    int64_t k = 0;
    size_t b = 0;
    for (; b + 8 <= rb; b += 8) {
      uint64_t x;
      memcpy(&x, row + b, 8);
      k += __builtin_popcountll(x);
    }
    for (; b < rb; b++) k += __builtin_popcount(row[b]);
    best = k > best ? k : best;
    all += k;
  }
  if (total) *total = all;
  return best;
}


/* token bytes a survivor of sc fetches */
static int64_t token_bytes_of(const scheme_run *r, int d) {
  return ((int64_t)d * r->fp.key_bits + 7) / 8 + ((int64_t)d * r->fp.value_bits + 7) / 8;
}

/* The prediction could keep its K in the buffer (with one survivor): only
 * then does its plan need the busiest query's keys. */
static int maybe_resident(const spr_config *c, int n, int d, int sc, const scheme_run *r) {
  if (!r->pred) return 0;
  const pred_key_plan p = pred_key_rule(c, n, d, sc, &r->bst, 1, token_bytes_of(r, d));
  return p.resident;
}

/* The oracle's threshold of the digital head for a keep-rate target, from
 * the quantile histogram over its scores (two passes over the rows). */
static int oracle_threshold(const spr_config *c, spr_attend_head *s, spr_attend_ws *w,
                            double target, double *theta) {
  const int sp_ = stage_enter(w, SPR_STAGE_KNOBS);
  if (w->have_oracle_th && w->oracle_target == target) {
    *theta = w->oracle_th;
    return stage_ret(w, sp_, 0);
  }
  const int n = s->n, causal = c->wl.causal != 0;
  const size_t nd = (size_t)n * s->d;
  int rc = spr_bl_quantile_begin(w->qh, (int64_t)maxabs8(qo_codes(w), nd) * maxabs8(s->k, nd) * s->d);
  for (int pass = 0; pass < 2 && !rc; pass++) {
    for (int i0 = 0; i0 < n && !rc; i0 += w->B) {
      const int m = n - i0 < w->B ? n - i0 : w->B;
      const int32_t *So;
      blk_set(w, i0, m);
      if (!(rc = blk_So(c, w, &So))) spr_bl_quantile_rows(w->qh, So, (size_t)n, i0, m, n, causal);
    }
    if (!rc && (pass || !spr_bl_quantile_next(w->qh, target))) break;
  }
  if (rc) return stage_ret(w, sp_, rc);
  spr_bl_quantile_result(w->qh, target, theta, NULL);
  w->oracle_th = *theta;
  w->oracle_target = target;
  w->have_oracle_th = 1;
  return stage_ret(w, sp_, 0);
}

/* Each scheme of on[]: its knob (the keep-rate match when keep_target >=
 * 0), its fetch parameters, its prediction's closed-form counts, the
 * sharing of masks; the busiest query's keys for a plan that needs them
 * (a pass over the rows of a blocked head). */
static int schemes_prepare(const spr_config *c, spr_attend_head *s, spr_attend_ws *w, const int *on,
                           double keep_target) {
  const int n = s->n, d = s->d, causal = c->wl.causal != 0, match = keep_target >= 0;
  const int64_t P = spr_pair_count(n, causal);
  if (match && !(keep_target <= 1.0))
    return spr_error(SPR_EINVAL, "attention: keep-rate target %g outside [0, 1]", keep_target);
  int rc = 0;
  for (int sc = 0; sc < SPR_N_SCHEMES; sc++) {
    scheme_run *r = &w->sr[sc];
    r->on = on[sc];
    if (!r->on) continue;
    r->share = -1;
    r->started = 0;
    r->pred = 0;
    r->max_row = 0;
    r->knob = NAN;
    memset(&r->as, 0, sizeof r->as);
    spr_dig_metric_acc_init(&r->ma);
    memset(&r->bst, 0, sizeof r->bst);
    spr_dig_fetch_default(&r->fp);
    r->fp.buffer_bytes = c->dig.buffer_bytes;
    r->fp.key_bits = scores_known(sc) ? 0 : c->xbar.key_bits;
    r->fp.value_bits = c->dig.value_bits;
    r->fp.policy = c->dig.policy;
    spr_bl_stats *b = &r->bst;
    b->n = n;
    b->causal = causal;
    switch (sc) {
    case SPR_SCHEME_ORACLE:
    case SPR_SCHEME_LEOPARD: {
      /* one calibration serves both: LeOPArd's mask is the oracle's */
      const double target = match ? keep_target : c->thr.keep_rate;
      if ((rc = oracle_threshold(c, s, w, target, &r->theta))) return rc;
      r->knob = r->theta;
      r->pred = 1;
      b->d = d;
      b->q_scale = w->qos;
      b->k_scale = s->k_scale;
      b->threshold = r->theta;
      b->mac_q_bits = 8;
      if (sc == SPR_SCHEME_ORACLE) {
        b->mac_k_bits = c->xbar.key_bits;
        b->mac_ops = P * d;
        b->cmp_ops = P;
      } else {
        b->mac_k_bits = 1; /* the plane counts come with the rows */
        if (on[SPR_SCHEME_ORACLE]) r->share = SPR_SCHEME_ORACLE;
        if ((rc = leopard_codes(c, s, w))) return rc;
      }
      break;
    }
    case SPR_SCHEME_TOPK: {
      r->topk_k = 0;
      r->topk_frac = c->bl.topk_fraction;
      if (match && (rc = spr_bl_topk_match(n, causal, keep_target, &r->topk_frac, NULL))) return rc;
      if (!(r->topk_frac > 0.0 && r->topk_frac <= 1.0))
        return spr_error(SPR_EINVAL, "spr_bl_topk: keep_fraction = %g outside (0, 1] (used since k = 0)",
                         r->topk_frac);
      r->knob = r->topk_frac;
      r->pred = 1;
      const double kk = round(r->topk_frac * n);
      b->d = d;
      b->q_scale = w->qos;
      b->k_scale = s->k_scale;
      b->k = kk < 1.0 ? 1 : (int)kk;
      b->mac_q_bits = 8;
      b->mac_k_bits = c->xbar.key_bits;
      b->mac_ops = P * d;
      b->topk_inputs = P;
      break;
    }
    case SPR_SCHEME_SANGER: {
      spr_bl_sanger_params sp;
      spr_bl_sanger_default(&sp);
      sp.p_threshold = c->bl.sanger_threshold;
      sp.causal = causal;
      if ((rc = sanger_codes(c, s, w))) return rc;
      if (match) {
        if (!w->have_bws)
          return spr_error(SPR_EINVAL, "attention: Sanger's threshold matched to a keep rate needs "
                           "the whole head of %d tokens (block rows %d): run it unblocked or "
                           "without baselines.match", n, w->B);
        if ((rc = spr_bl_sanger_calibrate(&sp, s->Q, s->K, n, d, keep_target, &w->bws,
                                          &sp.p_threshold, NULL)))
          return rc;
      }
      if (!(sp.p_threshold > 0.0 && sp.p_threshold <= 1.0))
        return spr_error(SPR_EINVAL, "spr_bl_sanger: p_threshold = %g outside (0, 1]", sp.p_threshold);
      r->sanger_p = sp.p_threshold;
      r->knob = sp.p_threshold;
      r->pred = 1;
      b->d = d;
      b->q_scale = w->q4ss;
      b->k_scale = w->k4ss;
      b->threshold = sp.p_threshold;
      b->mac_q_bits = sp.q_bits;
      b->mac_k_bits = sp.k_bits;
      b->mac_ops = P * d;
      b->cmp_ops = (P - n) + P;
      b->add_ops = P + (P - n);
      b->mul_ops = P + n;
      b->exp_ops = P;
      break;
    }
    case SPR_SCHEME_WINDOW: {
      spr_bl_window_params *wp = &r->wp;
      spr_bl_window_default(wp);
      wp->half_width = c->bl.window_half_width;
      wp->n_global = c->bl.window_globals < n ? c->bl.window_globals : n;
      wp->global_pos = NULL;
      wp->causal = causal;
      if (match && (rc = spr_bl_window_match(wp, n, keep_target, &wp->half_width, NULL))) return rc;
      if (wp->half_width < 0)
        return spr_error(SPR_EINVAL, "spr_bl_window: half_width = %d (need >= 0)", wp->half_width);
      r->knob = wp->half_width;
      break;
    }
    case SPR_SCHEME_DENSE_TILED:
      if (on[SPR_SCHEME_DENSE]) r->share = SPR_SCHEME_DENSE;
      break;
    default:
      break;
    }
  }
  /* a blocked head whose predictor might keep K in the buffer: the busiest
   * query's keys first (a pass over the masks) */
  if (w->B < n)
    for (int sc = 0; sc < SPR_N_SCHEMES; sc++) {
      scheme_run *r = &w->sr[sc];
      if (!r->on || r->share >= 0 || !maybe_resident(c, n, d, sc, r)) continue;
      uint8_t *buf = w->mks + (size_t)sc * w->B * spr_mask_row_bytes(n);
      for (int i0 = 0; i0 < n && !rc; i0 += w->B) {
        const int m = n - i0 < w->B ? n - i0 : w->B;
        const uint8_t *mk;
        blk_set(w, i0, m);
        if (!(rc = scheme_mask_rows(c, s, w, sc, 0, m, buf, &mk))) {
          const int64_t k = max_row_rows(mk, m, n, NULL);
          r->max_row = k > r->max_row ? k : r->max_row;
        }
      }
      if (rc) return rc;
    }
  return 0;
}

/* Rows of a block that the schemes take together (block_schemes): at
 * n = 512, 256 KB of each of the scores, the exponentials and the
 * reference's probabilities, which stay in L2 from one scheme to the
 * next.  The dense scheme's P V GEMM takes a chunk at a time: 128 rows
 * made it 10% faster than 32 (bench_pipeline, docs/performance.md). */
#define CHUNK_ROWS 128

/* The schemes of on[] on the cached block: masks, fetch, recompute into
 * w->Ob (and O's rows when given), metrics, LeOPArd's planes. */
static int block_schemes(const spr_config *c, spr_attend_head *s, spr_attend_ws *w, const int *on,
                         float *O) {
  const int sp_ = stage_enter(w, SPR_STAGE_REFERENCE);
  const int n = s->n, d = s->d, i0 = w->blk_i0, m = w->blk_m, causal = c->wl.causal != 0;
  int rc;
  if (w->metrics && (rc = blk_ref(c, s, w))) return stage_ret(w, sp_, rc);
  const float alpha = (float)((double)w->qs8 * (double)s->k_scale / sqrt((double)d));
  /* with metrics (a synthetic or imported head, whose every scheme runs):
   * the block's exponentials once, in Ib (its ideal scores are not read
   * again for this block), shared by the recomputes of the schemes; the
   * same whether they run together or one call each.  A model's forward
   * passes (no metrics, one scheme) compute their own. */
  const float *E = NULL;
  if (w->metrics) {
    if ((rc = blk_S8(c, w))) return stage_ret(w, sp_, rc);
    stage_enter(w, SPR_STAGE_SCORES);
    if ((rc = spr_dig_exp_rows(w->S8, (size_t)n, alpha, i0, m, n, causal, (float *)w->Ib,
                               w->emax)))
      return stage_ret(w, sp_, rc);
    E = (const float *)w->Ib;
    stage_enter(w, SPR_STAGE_REFERENCE);
  }
  spr_dig_metric_params mp;
  spr_dig_metric_default(&mp);
  mp.top_k = w->top_k;
  mp.causal = causal;
  const size_t rb = spr_mask_row_bytes(n);
  int run[SPR_N_SCHEMES], gemm[SPR_N_SCHEMES];
  const uint8_t *mk[SPR_N_SCHEMES];
  for (int sc = 0; sc < SPR_N_SCHEMES; sc++) run[sc] = on[sc] && w->sr[sc].share < 0;
  /* the masks of every scheme, CHUNK_ROWS rows at a time (oracle and
   * top-k read the same scores while they are in cache) */
  for (int c0 = 0; c0 < m; c0 += CHUNK_ROWS) {
    const int mc = m - c0 < CHUNK_ROWS ? m - c0 : CHUNK_ROWS;
    for (int sc = 0; sc < SPR_N_SCHEMES; sc++) {
      if (!run[sc]) continue;
      stage_enter(w, SPR_STAGE_SCHEME + sc);
      if ((rc = scheme_mask_rows(c, s, w, sc, c0, mc, w->mks + (size_t)sc * w->B * rb, &mk[sc])))
        return stage_ret(w, sp_, rc);
    }
  }
  for (int sc = 0; sc < SPR_N_SCHEMES; sc++) {
    scheme_run *r = &w->sr[sc];
    if (!run[sc]) continue;
    stage_enter(w, SPR_STAGE_SCHEME + sc);
    int64_t kept;
    const int64_t busiest = max_row_rows(mk[sc], m, n, &kept);
    /* a block keeping more than a quarter of its pairs: P V as GEMMs */
    gemm[sc] = kept * 4 > (int64_t)m * n;
    if (sc == SPR_SCHEME_DENSE_TILED || r->started) continue;
    /* the plan: the busiest query's keys are complete (a held head's one
     * block, or the pass of schemes_prepare) */
    if (w->B >= n) r->max_row = busiest;
    const int64_t tok = token_bytes_of(r, d);
    r->kp = pred_key_rule(c, n, d, sc, r->pred ? &r->bst : NULL, r->max_row, tok);
    spr_dig_fetch_params fp = r->fp;
    if (r->kp.resident) fp.buffer_bytes -= r->kp.key_bytes; /* K's share of the buffer */
    if ((rc = spr_dig_fetch_begin(&fp, n, d, &r->fs, &r->dws))) return stage_ret(w, sp_, rc);
    r->fp = fp;
    r->started = 1;
  }
  /* the recompute reads the full key codes of step 1 */
  if ((rc = blk_S8(c, w))) return stage_ret(w, sp_, rc);
  /* fetch, recompute and metrics of every scheme, CHUNK_ROWS rows at a
   * time: their scores, exponentials and reference rows stay in cache
   * from one scheme to the next */
  for (int c0 = 0; c0 < m; c0 += CHUNK_ROWS) {
    const int mc = m - c0 < CHUNK_ROWS ? m - c0 : CHUNK_ROWS, ic = i0 + c0;
    for (int sc = 0; sc < SPR_N_SCHEMES; sc++) {
      scheme_run *r = &w->sr[sc];
      if (!run[sc]) continue;
      stage_enter(w, SPR_STAGE_SCHEME + sc);
      const uint8_t *mkc = mk[sc] + (size_t)c0 * rb;
      float *ob = w->Ob + (size_t)c0 * d;
      if (sc != SPR_SCHEME_DENSE_TILED &&
          (rc = spr_dig_fetch_rows(&r->fp, mkc, ic, mc, &r->fs, &r->dws)))
        return stage_ret(w, sp_, rc);
      if ((rc = spr_dig_recompute_rows(w->S8 + (size_t)c0 * n, (size_t)n, alpha, mkc, ic, mc, n,
                                       w->vf, d, w->vs8, E ? E + (size_t)c0 * n : NULL,
                                       w->emax + c0, ob, &r->as,
                                       gemm[sc] ? (float *)w->T1 : NULL, &r->dws)))
        return stage_ret(w, sp_, rc);
      if (gemm[sc]) w->have &= ~(unsigned)HAVE_S4; /* T1 held the GEMM's P */
      if (O) memcpy(O + (size_t)ic * d, ob, (size_t)mc * d * sizeof *O);
      if (w->metrics &&
          (rc = spr_dig_metrics_rows(&mp, ob, w->Od + (size_t)c0 * d, w->P + (size_t)c0 * n,
                                     w->top + (size_t)c0 * w->top_k, mkc, ic, mc, n, d, &r->ma)))
        return stage_ret(w, sp_, rc);
    }
  }
  if (on[SPR_SCHEME_LEOPARD]) {
    scheme_run *r = &w->sr[SPR_SCHEME_LEOPARD];
    const int32_t *So;
    if ((rc = blk_So(c, w, &So))) return stage_ret(w, sp_, rc);
    stage_enter(w, SPR_STAGE_SCHEME + SPR_SCHEME_LEOPARD);
    if ((rc = spr_bl_leopard_rows(qo_codes(w) + (size_t)i0 * d, d, w->qpos + i0, So, (size_t)n, i0,
                                  m, n, causal, c->xbar.key_bits, r->theta, w->plow, w->T1,
                                  &r->bst.key_bits_processed, &r->bst.early_stops)))
      return stage_ret(w, sp_, rc);
    w->have &= ~(unsigned)HAVE_S4;
  }
  return stage_ret(w, sp_, 0);
}

/* Dense attention tiled over query blocks (digital/spr_tiled.h,
 * docs/energy.md section 10): every (query, key) pair it may see, each
 * K/V tile fetched once per block of queries; one ledger step per (block,
 * tile), the sequence's K and V written to ReRAM once (on the first
 * step), as for every scheme.  Its output and accuracy are dense
 * attention's: the recompute over the dense mask (as, acc). */
static int price_tiled(const spr_config *c, spr_attend_ws *w, int n, int d,
                       const spr_dig_attend_stats *as, const spr_dig_accuracy *acc,
                       spr_scheme_result *out) {
  spr_tiled_params tp;
  memset(&tp, 0, sizeof tp);
  spr_tiled_params_of(c, &tp);
  /* the plan and its ledger depend on the shape and the prices only: the
   * same for every head of a run */
  tiled_cache *tc = &w->tiled;
  if (!(tc->valid && tc->n == n && tc->d == d && !memcmp(&tc->tp, &tp, sizeof tp) &&
        !memcmp(&tc->e, &c->energy, sizeof tc->e))) {
    tc->valid = 0;
    int rc = tiled_ledger(c, &tp, n, d, tc);
    if (rc) return rc;
    tc->n = n;
    tc->d = d;
    tc->tp = tp;
    memcpy(&tc->e, &c->energy, sizeof tc->e);
    tc->valid = 1;
  }
  memset(out, 0, sizeof *out);
  fill_result(as, acc, &tc->lr, out);
  out->keep_rate = (double)tc->uses / (double)spr_pair_count(n, c->wl.causal);
  out->fetches = tc->fetched;
  out->hits = tc->uses - tc->fetched;
  out->bytes_fetched = tc->fetched * tc->pl.token_bytes;
  out->bytes_reused = out->hits * tc->pl.token_bytes;
  out->tile_queries = tc->pl.bq;
  out->tile_tokens = tc->pl.bk;
  return 0;
}

/* The plan of dense_tiled and the ledger of its (block, tile) steps. */
static int tiled_ledger(const spr_config *c, const spr_tiled_params *tp, int n, int d,
                        tiled_cache *tc) {
  spr_tiled_plan pl;
  int rc = spr_tiled_plan_make(tp, &c->energy, n, d, &pl);
  if (rc) return rc;
  spr_ledger_acc la;
  if ((rc = spr_ledger_acc_init(&la, &c->energy))) return rc;
  int64_t fetched = 0, uses = 0;
  for (int b = 0; b < pl.blocks; b++)
    for (int t = 0, nt = spr_tiled_block_tiles(&pl, b); t < nt; t++) {
      spr_ledger_counts q;
      int64_t f, u;
      spr_tiled_step_counts(&pl, b, t, &q, &f, &u);
      if (b == 0 && t == 0)
        q.reram_bits_written = (int64_t)n * d * (c->xbar.key_bits + c->dig.value_bits);
      if ((rc = spr_ledger_acc_step(&la, &q))) return rc;
      fetched += f;
      uses += u;
    }
  if ((rc = spr_ledger_acc_result(&la, &tc->lr))) return rc;
  tc->pl = pl;
  tc->fetched = fetched;
  tc->uses = uses;
  return 0;
}

/* The results of the schemes of on[] after their blocks: fetch totals,
 * accuracy, the ledger of every query. */
static int schemes_finish(const spr_config *c, spr_attend_head *s, spr_attend_ws *w, const int *on,
                          spr_scheme_result *out) {
  const int sp_ = stage_enter(w, SPR_STAGE_LEDGER);
  const int n = s->n, d = s->d, causal = c->wl.causal != 0;
  int rc;
  /* the sources first: a shared fetch is ended once */
  for (int sc = 0; sc < SPR_N_SCHEMES; sc++) {
    scheme_run *r = &w->sr[sc];
    if (on[sc] && r->share < 0 && sc != SPR_SCHEME_DENSE_TILED &&
        (rc = spr_dig_fetch_end(&r->fs, &r->dws)))
      return stage_ret(w, sp_, rc);
  }
  for (int sc = 0; sc < SPR_N_SCHEMES; sc++) {
    scheme_run *r = &w->sr[sc];
    if (!on[sc]) continue;
    const scheme_run *src = r->share >= 0 ? &w->sr[r->share] : r;
    spr_dig_accuracy acc;
    if (w->metrics) {
      spr_dig_metrics_end(&src->ma, n, w->top_k, &acc);
    } else {
      acc.rel_fro = acc.cos_mean = acc.cos_min = acc.mass_retained = NAN;
      acc.top1_recall = acc.topk_recall = NAN;
      acc.cos_min_query = 0;
      acc.top_k = w->top_k;
    }
    spr_scheme_result *o = &out[sc];
    if (sc == SPR_SCHEME_DENSE_TILED) {
      if ((rc = price_tiled(c, w, n, d, &src->as, &acc, o))) return stage_ret(w, sp_, rc);
      o->knob = NAN;
      continue;
    }
    spr_bl_stats *b = &r->bst;
    if (sc == SPR_SCHEME_LEOPARD) {
      const int64_t bits = b->key_bits_processed;
      b->mac_ops = bits * d;
      b->add_ops = bits + (int64_t)n * d + (int64_t)n * c->xbar.key_bits;
      b->cmp_ops = bits;
      b->mean_bits_per_key = (double)bits / (double)spr_pair_count(n, causal);
    }
    const pred_key_plan kp = src->kp;
    spread_plan spl = {0};
    if (r->pred) spread_init(&spl, b, n, d, causal);
    spr_ledger_acc la;
    if ((rc = spr_ledger_acc_init(&la, &c->energy))) return stage_ret(w, sp_, rc);
    for (int i = 0; i < n; i++) {
      spr_ledger_counts q;
      query_counts(c, n, d, sc, &src->fs, &src->dws, r->pred ? b : NULL, &spl, &kp, i, &q);
      if ((rc = spr_ledger_acc_step(&la, &q))) return stage_ret(w, sp_, rc);
    }
    spr_ledger_result lr;
    if ((rc = spr_ledger_acc_result(&la, &lr))) return stage_ret(w, sp_, rc);
    memset(o, 0, sizeof *o);
    fill_result(&src->as, &acc, &lr, o);
    o->keep_rate = (double)src->fs.uses / (double)spr_pair_count(n, causal);
    o->bytes_fetched = src->fs.bytes_fetched;
    o->bytes_reused = src->fs.bytes_reused;
    o->fetches = src->fs.fetches;
    o->hits = src->fs.hits;
    o->overflow_tokens = src->fs.overflow_tokens;
    o->new_fetch_frac = src->fs.new_fetch_frac;
    o->key_resident = kp.resident;
    o->knob = r->knob;
  }
  return stage_ret(w, sp_, 0);
}

/* Every block of the head for the schemes of on[] (a held head: one). */
static int schemes_sweep(const spr_config *c, spr_attend_head *s, spr_attend_ws *w, const int *on,
                         double keep_target, spr_scheme_result *out, float *O) {
  const int n = s->n;
  int rc = schemes_prepare(c, s, w, on, keep_target);
  for (int i0 = 0; i0 < n && !rc; i0 += w->B) {
    blk_set(w, i0, n - i0 < w->B ? n - i0 : w->B);
    rc = block_schemes(c, s, w, on, O);
  }
  return rc ? rc : schemes_finish(c, s, w, on, out);
}

int spr_attend_digital(const spr_config *c, spr_attend_head *s, spr_attend_ws *w) {
  const int sp_ = stage_enter(w, SPR_STAGE_CODES);
  int rc;
  /* the reference spr_attend_analog just computed for this head stays */
  const int keep_ref = w->ref_fresh && w->ref_h == s && w->dh == s && w->blk_i0 == 0 &&
                       w->blk_m == w->B && w->B >= s->n;
  w->ref_fresh = 0;
  w->have = keep_ref ? (w->have & HAVE_DENSE) : 0;
  if ((rc = digital_codes(c, s, w))) return stage_ret(w, sp_, rc);
  w->have_exact = 0;
  if (!w->metrics) return stage_ret(w, sp_, 0);
  for (int i0 = 0; i0 < s->n; i0 += w->B) {
    const int m = s->n - i0 < w->B ? s->n - i0 : w->B;
    blk_set(w, i0, m);
    if (!(w->have & HAVE_DENSE)) {
      if ((rc = ref_rows(c, s, w, i0, m))) return stage_ret(w, sp_, rc);
      w->have |= HAVE_DENSE;
    }
    if (w->Oexact) memcpy(w->Oexact + (size_t)i0 * s->d, w->Od, (size_t)m * s->d * sizeof *w->Od);
  }
  w->have_exact = w->Oexact != NULL;
  return stage_ret(w, sp_, 0);
}

const float *spr_attend_exact_output(const spr_attend_ws *w) {
  return w->have_exact ? w->Oexact : NULL;
}

int spr_attend_exact(const spr_config *c, spr_attend_head *s, spr_attend_ws *w, float *O) {
  const int sp_ = stage_enter(w, SPR_STAGE_REFERENCE);
  int rc;
  w->have = 0;
  w->ref_fresh = 0;
  for (int i0 = 0; i0 < s->n; i0 += w->B) {
    const int m = s->n - i0 < w->B ? s->n - i0 : w->B;
    if ((rc = ref_rows(c, s, w, i0, m))) return stage_ret(w, sp_, rc);
    memcpy(O + (size_t)i0 * s->d, w->Od, (size_t)m * s->d * sizeof *O);
  }
  w->blk_m = -1;
  return stage_ret(w, sp_, 0);
}

/* The schemes c enables. */
static void enabled(const spr_config *c, int *on) {
  for (int sc = 0; sc < SPR_N_SCHEMES; sc++) on[sc] = spr_attend_scheme_on(c, sc);
}

static int need_held(const spr_attend_head *s, const spr_attend_ws *w, const char *fn) {
  if (w->B < s->n || !s->held)
    return spr_error(SPR_EINVAL, "attention: %s needs a head held whole (%d tokens, block rows %d); "
                     "use spr_attend_head_begin/step/end", fn, s->n, w->B);
  if (w->dh != s)
    return spr_error(SPR_EINVAL, "attention: %s: call spr_attend_digital on this head first", fn);
  return 0;
}

int spr_attend_schemes(const spr_config *c, spr_attend_head *s, spr_attend_ws *w,
                       double keep_target, spr_scheme_result *out) {
  const int sp_ = stage_enter(w, SPR_STAGE_KNOBS);
  int rc = need_held(s, w, "spr_attend_schemes");
  if (rc) return stage_ret(w, sp_, rc);
  int on[SPR_N_SCHEMES];
  enabled(c, on);
  return stage_ret(w, sp_, schemes_sweep(c, s, w, on, keep_target, out, NULL));
}

int spr_attend_scheme(const spr_config *c, int sc, spr_attend_head *s, spr_attend_ws *w,
                      spr_scheme_result *out, float *O) {
  return spr_attend_scheme_at(c, sc, s, w, -1.0, out, O);
}

int spr_attend_scheme_at(const spr_config *c, int sc, spr_attend_head *s, spr_attend_ws *w,
                         double keep_target, spr_scheme_result *out, float *O) {
  const int sp_ = stage_enter(w, SPR_STAGE_KNOBS);
  if (sc < 0 || sc >= SPR_N_SCHEMES)
    return stage_ret(w, sp_, spr_error(SPR_EINVAL, "attention: unknown scheme %d", sc));
  int rc = need_held(s, w, "spr_attend_scheme");
  if (rc) return stage_ret(w, sp_, rc);
  int on[SPR_N_SCHEMES] = {0};
  on[sc] = 1;
  spr_scheme_result res[SPR_N_SCHEMES];
  if ((rc = schemes_sweep(c, s, w, on, keep_target, res, O))) return stage_ret(w, sp_, rc);
  *out = res[sc];
  return stage_ret(w, sp_, 0);
}

/* ---- one head in one pass (spr_attend_head_begin / step / end) ----------- */

int spr_attend_head_begin(const spr_config *c, int layer, int head, int trial, spr_attend_head *s,
                          spr_attend_ws *w, spr_head_result *res, double keep_target,
                          int analog_done) {
  const int sp_ = stage_enter(w, SPR_STAGE_KNOBS);
  int rc;
  if (s->n != w->n || s->held != (w->B >= s->n))
    return stage_ret(w, sp_, spr_error(SPR_EINVAL, "attention: head of %d tokens (%s) on a workspace of %d tokens in "
                     "blocks of %d rows", s->n, s->held ? "held" : "blocked", w->n, w->B));
  if (analog_done && !s->held)
    return stage_ret(w, sp_, spr_error(SPR_EINVAL, "attention: the analog masks of a blocked head are not kept"));
  w->run_layer = layer;
  w->run_head = head;
  w->run_trial = trial;
  w->run_analog = !analog_done;
  w->run_next = 0;
  w->run_target = keep_target;
  if (!analog_done) {
    if (c->thr.mode == SPR_THR_ANALOG_KEEP_RATE && s->held) {
      /* the decisions of the scores drawn before the threshold */
      if (!s->scores)
        return stage_ret(w, sp_, spr_error(SPR_EINVAL, "attention: threshold.mode = analog_keep_rate needs the head's "
                         "analog scores (spr_attend_analog_scores)"));
      w->run_kept = w->run_ik = w->run_fp = w->run_fk = 0;
      w->run_mass_a = w->run_mass_i = 0;
      w->sc.i_unit_A = res->i_unit_A;
    } else if ((rc = analog_begin(c, layer, head, trial, s, w))) {
      return stage_ret(w, sp_, rc);
    }
  }
  w->ref_fresh = 0;
  w->have = 0;
  w->blk_m = -1;
  if ((rc = digital_codes(c, s, w))) return stage_ret(w, sp_, rc);
  w->have_exact = 0;
  int on[SPR_N_SCHEMES];
  enabled(c, on);
  /* the analog stream must not move during the passes of the knobs: they
   * draw nothing */
  return stage_ret(w, sp_, schemes_prepare(c, s, w, on, keep_target));
}

int spr_attend_head_step(const spr_config *c, spr_attend_head *s, spr_attend_ws *w,
                         spr_head_result *res, spr_attend_rows *rows) {
  const int sp_ = stage_enter(w, SPR_STAGE_ANALOG);
  const int n = s->n;
  if (w->run_next >= n) return stage_ret(w, sp_, 0);
  const int i0 = w->run_next, m = n - i0 < w->B ? n - i0 : w->B;
  const size_t rb = spr_mask_row_bytes(n);
  int rc;
  blk_set(w, i0, m);
  if (w->metrics && (rc = blk_ref(c, s, w))) return stage_ret(w, sp_, rc);
  uint8_t *ma = s->held ? s->mask_a + (size_t)i0 * rb : w->ma;
  uint8_t *mi = s->held ? s->mask_i + (size_t)i0 * rb : w->mi;
  if (w->run_analog) {
    if ((rc = analog_rows(c, s, w, res, i0, m, ma, mi, w->metrics))) return stage_ret(w, sp_, rc);
    w->have &= ~(unsigned)HAVE_S4; /* T1 may have held analog scores */
  }
  int on[SPR_N_SCHEMES];
  enabled(c, on);
  if ((rc = block_schemes(c, s, w, on, NULL))) return stage_ret(w, sp_, rc);
  if (rows) {
    rows->i0 = i0;
    rows->m = m;
    rows->mask_analog = ma;
    rows->mask_ideal = mi;
  }
  w->run_next = i0 + m;
  return stage_ret(w, sp_, 1);
}

int spr_attend_head_end(const spr_config *c, spr_attend_head *s, spr_attend_ws *w,
                        spr_head_result *res) {
  const int sp_ = stage_enter(w, SPR_STAGE_LEDGER);
  if (w->run_next < s->n)
    return stage_ret(w, sp_, spr_error(SPR_EINVAL, "attention: head ended after %d of %d rows", w->run_next, s->n));
  if (w->run_analog) analog_end(c, s, w, res);
  int on[SPR_N_SCHEMES];
  enabled(c, on);
  memset(res->scheme, 0, sizeof res->scheme);
  return stage_ret(w, sp_, schemes_finish(c, s, w, on, res->scheme));
}

int spr_attend_check(const spr_config *c, int n, int d) {
  if (!spr_attend_scheme_on(c, SPR_SCHEME_DENSE_TILED)) return 0;
  spr_tiled_params tp;
  spr_tiled_params_of(c, &tp);
  spr_tiled_plan pl;
  return spr_tiled_plan_make(&tp, &c->energy, n, d, &pl);
}

int spr_attend_scheme_on(const spr_config *c, int scheme) {
  switch (scheme) {
  case SPR_SCHEME_SPRINT:
  case SPR_SCHEME_DENSE: return 1;
  case SPR_SCHEME_DENSE_TILED: return c->bl.dense_tiled;
  case SPR_SCHEME_ORACLE: return c->bl.oracle;
  case SPR_SCHEME_TOPK: return c->bl.topk;
  case SPR_SCHEME_SANGER: return c->bl.sanger;
  case SPR_SCHEME_LEOPARD: return c->bl.leopard;
  case SPR_SCHEME_WINDOW: return c->bl.window;
  default: return 0;
  }
}

