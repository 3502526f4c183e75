/* spr_result.h - what the simulation of one head produces.
 *
 * Filled by the pipeline (sim/), written by the trace writer (core/).
 * Units: scores are in "score units", the integer product q_int * k_msb of
 * the quantized query and the programmed key bits; i_unit_A converts a
 * score unit to column current.  Masks are bit-packed row by row: query i,
 * key j is bit (j % 8) (least significant first) of byte
 * i * spr_mask_row_bytes(n) + j / 8; a set bit means the key is kept.
 */
#ifndef SPR_RESULT_H
#define SPR_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "spr_ledger.h"

/* Schemes priced on one workload and one ledger (sim/spr_pipeline.c). */
enum spr_scheme {
  SPR_SCHEME_SPRINT = 0, /* analog masks, digital recompute */
  SPR_SCHEME_DENSE,      /* no pruning: the reference of every ratio */
  SPR_SCHEME_DENSE_TILED, /* no pruning, K/V tiles read once per query
                             block (digital/spr_tiled.h) */
  SPR_SCHEME_ORACLE,     /* exact 8-bit scores, calibrated threshold */
  SPR_SCHEME_TOPK,       /* top-k per query (SpAtten-like) */
  SPR_SCHEME_SANGER,     /* 4-bit prediction, probability threshold */
  SPR_SCHEME_LEOPARD,    /* bit-serial early termination */
  SPR_SCHEME_WINDOW,     /* sliding window + global tokens */
  SPR_N_SCHEMES
};

/* Name of a scheme ("sprint", "dense", ...), NULL when out of range. */
static inline const char *spr_scheme_name(int s) {
  static const char *const names[SPR_N_SCHEMES] = {"sprint", "dense",   "dense_tiled",
                                                   "oracle", "topk",    "sanger",
                                                   "leopard", "window"};
  return s >= 0 && s < SPR_N_SCHEMES ? names[s] : NULL;
}

/* One scheme on one head: mask, buffer, accuracy against dense exact
 * attention, energy and cycles (docs/digital.md, docs/energy.md). */
typedef struct {
  int ran;                  /* the scheme was simulated */
  double keep_rate;         /* kept (query, key) pairs / pairs (n^2, or
                               n (n + 1) / 2 causal: spr_pair_count) */
  int64_t bytes_fetched, bytes_reused, fetches, hits, overflow_tokens;
  double new_fetch_frac;    /* mean over queries of newly fetched keys / n */
  int64_t empty_queries;    /* queries with no survivor */
  double rel_fro, cos_mean, cos_min, mass_retained, top1_recall, topk_recall;
  double energy_J[SPR_LEDGER_NE]; /* by component (spr_ledger_energy_name) */
  double energy_total_J;
  double cycles[SPR_LEDGER_NC];   /* busy cycles by component */
  double cycles_total;      /* latency with fetch/compute overlap */
  int64_t xbar_cells_written; /* scoring-array cells programmed (SPRINT:
                                 2 n d; docs/energy.md section 8) */
  double knob;              /* the baseline's pruning parameter used: oracle
                               and LeOPArd threshold (8-bit score units),
                               top-k keep_fraction, Sanger p_threshold,
                               window half_width; NaN for sprint, dense and
                               dense_tiled (docs/baselines.md section 6) */
  int64_t tile_queries;     /* dense_tiled: queries per block Bq (else 0) */
  int64_t tile_tokens;      /* dense_tiled: tokens per K/V tile Bk (else 0) */
  int64_t key_resident;     /* digital predictors: 1 when the sequence's K
                               at the predictor's width stayed in the
                               buffer, 0 when it was streamed per query
                               (docs/energy.md section 9); 0 otherwise */
} spr_scheme_result;

static inline size_t spr_mask_row_bytes(int n) { return ((size_t)n + 7) / 8; }

/* (query, key) pairs of an n-token head: n^2, or n (n + 1) / 2 when causal
 * (query i sees keys j <= i only; docs/model.md section 6). */
static inline int64_t spr_pair_count(int n, int causal) {
  return causal ? (int64_t)n * (n + 1) / 2 : (int64_t)n * n;
}

typedef struct {
  int layer, head;
  int n, d;                 /* sequence length, head dimension */
  int causal;               /* causal attention: query i saw keys j <= i
                               only (c->wl.causal of the run) */
  /* counts over all (query, key) decisions: the n^2 pairs, or the
   * n (n + 1) / 2 causal pairs j <= i (spr_pair_count(n, causal)) */
  int64_t n_kept;           /* analog mask */
  int64_t n_ideal_kept;     /* ideal mask: exact quantized score >= threshold */
  int64_t false_prunes;     /* ideal keeps, analog prunes */
  int64_t false_keeps;      /* ideal prunes, analog keeps */
  double keep_rate;         /* n_kept / pairs */
  double ideal_keep_rate;   /* n_ideal_kept / pairs */
  double mass_retained;     /* mean over queries of the softmax probability
                               (float Q, K; scale 1/sqrt(d); causal: the
                               softmax over j <= i) kept by the analog
                               mask */
  double ideal_mass_retained;
  double threshold;         /* score units, on the generator grid */
  int threshold_code;       /* signed code of the threshold generator */
  double range;             /* threshold full scale, score units */
  double i_unit_A;          /* column current of one score unit */
  double mean_cell_G_S;     /* mean nominal conductance of the cells holding
                               the head's keys (both cells of each pair:
                               g_min + dG mean |k_msb| / 2); rows times it
                               is the mean column conductance a device
                               model is checked against */
  /* trace level masks and above (NULL otherwise): n * spr_mask_row_bytes(n) */
  uint8_t *mask_analog;
  uint8_t *mask_ideal;
  /* trace level full (NULL otherwise) */
  int8_t *q_int;            /* n x d quantized queries */
  int8_t *k_int;            /* n x d quantized keys (key_bits) */
  int8_t *k_msb;            /* n x d programmed key bits (key_msb_bits) */
  float q_scale, k_scale;   /* real value = scale * integer; k_msb weighs
                               2^(key_bits - key_msb_bits) key_int units */
  int32_t *ideal_scores;    /* n x n: q_int . k_msb (causal: those of
                               j > i decide nothing) */
  float *analog_scores;     /* n x n: comparator input referred to score
                               units; analog keep = analog_score >= threshold
                               (causal: NaN for j > i, never decided) */
  spr_scheme_result scheme[SPR_N_SCHEMES]; /* digital path and ledger */
} spr_head_result;

#endif
