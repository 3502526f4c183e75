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

static inline size_t spr_mask_row_bytes(int n) { return ((size_t)n + 7) / 8; }

typedef struct {
  int layer, head;
  int n, d;                 /* sequence length, head dimension */
  /* counts over all n x n (query, key) decisions */
  int64_t n_kept;           /* analog mask */
  int64_t n_ideal_kept;     /* ideal mask: exact quantized score >= threshold */
  int64_t false_prunes;     /* ideal keeps, analog prunes */
  int64_t false_keeps;      /* ideal prunes, analog keeps */
  double keep_rate;         /* n_kept / n^2 */
  double ideal_keep_rate;   /* n_ideal_kept / n^2 */
  double mass_retained;     /* mean over queries of the softmax probability
                               (float Q, K; scale 1/sqrt(d)) kept by the
                               analog mask */
  double ideal_mass_retained;
  double threshold;         /* score units, on the generator grid */
  int threshold_code;       /* signed code of the threshold generator */
  double range;             /* threshold full scale, score units */
  double i_unit_A;          /* column current of one score unit */
  /* trace level masks and above (NULL otherwise): n * spr_mask_row_bytes(n) */
  uint8_t *mask_analog;
  uint8_t *mask_ideal;
  /* trace level full (NULL otherwise) */
  int8_t *q_int;            /* n x d quantized queries */
  int8_t *k_int;            /* n x d quantized keys (key_bits) */
  int8_t *k_msb;            /* n x d programmed key bits (key_msb_bits) */
  float q_scale, k_scale;   /* real value = scale * integer; k_msb weighs
                               2^(key_bits - key_msb_bits) key_int units */
  int32_t *ideal_scores;    /* n x n: q_int . k_msb */
  float *analog_scores;     /* n x n: comparator input referred to score
                               units; analog keep = analog_score >= threshold */
} spr_head_result;

#endif
