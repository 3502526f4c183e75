/* spr_analog.h - periphery of the scoring arrays: query DACs, read noise,
 * threshold generator and comparators (equations: docs/model.md).
 *
 * Units.  A query code q_i (signed, query_bits) drives row i with
 *   V_i = q_i * v_step * gain_i,   v_step = v_read / (2^(query_bits-1) - 1)
 * and one score unit is the column current i_unit = v_step * dG.  All
 * analog quantities below are referred to score units: divide a current by
 * i_unit.
 *
 * Decision of the comparator of key j for query i:
 *   a_ij = mu_ij + o_j + sqrt(var_ij) z_ij,      keep iff a_ij >= theta
 *   mu_ij  = sum_k q_k w_kj                        (crossbar/, with DAC gains)
 *   o_j    = comparator static offset,  o_j ~ N(0, (cmp_offset_sigma/i_unit)^2)
 *   var_ij = [4 k T B sum_k G_kj]                  thermal (both columns)
 *          + [2 e B sum_k |V_k| G_kj]              shot
 *          + [read_rel_sigma^2 sum_k V_k^2 G_kj^2]  relative read noise
 *          + cmp_noise_sigma^2                     comparator noise
 *            (all divided by i_unit^2; sums over both columns of the pair)
 *   z_ij   ~ N(0,1), one per decision, drawn in row-major (i, j) order.
 * The read-noise variance of a whole head is one matrix product:
 *   var = [a_s |q|, s_r^2 q^2] (m x 2d) * [g1; g2] (2d x n) + c_j.
 */
#ifndef SPR_ANALOG_H
#define SPR_ANALOG_H

#include <gsl/gsl_rng.h>
#include <stdint.h>
#include "spr_params.h"
#include "spr_xbar.h"

#define SPR_BOLTZMANN_J_PER_K 1.380649e-23 /* exact (SI 2019) */
#define SPR_ELEMENTARY_CHARGE_C 1.602176634e-19 /* exact (SI 2019) */

typedef struct {
  double v_step_V; /* row voltage per query code */
  double i_unit_A; /* column current per score unit */
} spr_analog_scale;

/* Scale of one score unit for cell step dg_S. */
void spr_analog_scale_of(const spr_analog_params *an, double dg_S,
                         spr_analog_scale *s);

/* Row DAC gains, col_tiles x d: 1 + dac_gain_sigma z when dac_error is on,
 * else 1.  Returns 0, or SPR_EINVAL if a sampled gain is not positive. */
int spr_dac_gains(const spr_analog_params *an, int col_tiles, int d,
                  gsl_rng *r, double *gains);

/* Comparator static offsets of n columns in score units (zeros when
 * cmp_offset is off). */
void spr_cmp_offsets(const spr_analog_params *an, const spr_analog_scale *s,
                     int n, gsl_rng *r, float *off);

/* Threshold generator of `bits` bits over full scale `range` (score units):
 * code c in [-2^(bits-1), 2^(bits-1) - 1] gives theta = c * range /
 * 2^(bits-1).  spr_thr_code returns the code nearest theta (clamped). */
double spr_thr_level(int code, double range, int bits);
int spr_thr_code(double theta, double range, int bits);

/* Add to counts[c + 2^(bits-1)] the number of scores s[0..n) with
 * s >= theta(c), for every code c.  counts has 2^bits entries.
 * Returns 0 or SPR_ENOMEM. */
int spr_thr_count(const int32_t *s, size_t n, double range, int bits,
                   int64_t *counts);

/* Code whose keep rate counts[.]/total is nearest keep_rate (ties: the
 * lower code, which keeps more). */
int spr_thr_pick(const int64_t *counts, int64_t total, int bits,
                 double keep_rate);

/* Scratch of spr_analog_decide for up to m queries of n keys, d dims. */
typedef struct {
  int m, n, d;
  float *qf;  /* m x d */
  float *a2;  /* m x 2d */
  float *mu;  /* m x n */
  float *var; /* m x n */
  float *z;   /* n */
  float *c;   /* n: per-key constant variance */
} spr_analog_ws;

int spr_analog_ws_alloc(spr_analog_ws *ws, int m, int n, int d);
void spr_analog_ws_free(spr_analog_ws *ws);

/* Decide keep/prune for m queries q (m x d codes) against the head xb.
 * theta: threshold in score units; off: n comparator offsets (score
 * units) or NULL; r_read: stream of per-decision noise (used only when
 * read_noise or cmp_noise is on).
 * mask: m x spr_mask_row_bytes(n) bytes, overwritten (bit set = keep).
 * scores: m x n comparator inputs a_ij, or NULL.  *n_kept: keeps counted.
 * Returns 0 or SPR_EINVAL (shape larger than the workspace). */
int spr_analog_decide(const spr_analog_params *an, const spr_analog_scale *sc,
                      const spr_xbar_head *xb, const int8_t *q, int m,
                      double theta, const float *off, gsl_rng *r_read,
                      spr_analog_ws *ws, uint8_t *mask, float *scores,
                      int64_t *n_kept);

/* Per-key read-noise variance constant c_j (thermal + comparator noise, in
 * score units squared) and the shot coefficient a_s, as used by
 * spr_analog_decide; exposed for tests. */
double spr_analog_thermal_var(const spr_analog_params *an,
                              const spr_analog_scale *sc, double dg_S,
                              double gsum);
double spr_analog_shot_coef(const spr_analog_params *an,
                            const spr_analog_scale *sc);

#endif
