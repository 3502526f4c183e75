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
 *   var_ij = [F 4 k T B sum_k G_kj]                thermal (both columns;
 *                                                  F = thermal_excess)
 *          + [2 e B sum_k |V_k| G_kj]              shot
 *          + [read_rel_sigma^2 sum_k V_k^2 G_kj^2]  relative read noise
 *          + cmp_noise_sigma^2                     comparator noise
 *            (all divided by i_unit^2; sums over both columns of the pair)
 *   z_ij   ~ N(0,1) clamped to [-T, T], T = SPR_NOISE_TRUNC = 8: the
 *            noise is a Gaussian whose mass beyond 8 sigma (2 Phi(-8) =
 *            1.2e-15) sits at +-8 sigma.  No statistic of a run can see it,
 *            and it makes decisions with |mu + o - theta| > 8 sigma certain.
 * Nonlinear cells (crossbar.cell_v0 = V0 > 0): a cell passes G V0
 * sinh(V/V0) at row voltage V, so every q_k above (in mu, the shot and
 * relative terms and the bound M_i) is replaced by
 *   q'_k = V0 sinh(q_k v_step / V0) / v_step,
 * the cell current in units of G v_step; the scores stay one GEMM.  The
 * DAC gain (folded into w) multiplies q' instead of entering the sinh: a
 * relative difference of (gain - 1) (x coth x - 1) ~ (gain - 1) x^2 / 3,
 * x = V/V0: 0.3% of the cell current for a 1% gain error at V = V0.
 * Thermal noise uses G.
 * The read-noise variance of decision (i, j) is
 *   var_ij = c_j + [a_s |q_i|, s_r^2 q_i^2] . [g1; g2]_j      (length 2d)
 * and is bounded above by (max_t |q_it| = M_i, G1_j = sum_t g1_tj, ...)
 *   ub_ij  = c_j + a_s M_i G1_j + s_r^2 M_i^2 G2_j.
 *
 * Evaluation (exact in distribution, reproducible, the same whether or
 * not scores are requested), with b_ij = mu_ij + o_j in float:
 *   - "far" decision: |b - theta| - 2^-20 (|b| + |theta|) > 0 and its
 *     square >= T^2 (1 + 2^-10) ub.  The margins cover every rounding
 *     (the float ub and var differ by < 1e-5 relative, b + sqrt(var) z
 *     rounds by a few 2^-24), so b + sqrt(var) z is on the same side of
 *     theta for every |z| <= T: the outcome is certain and no noise is
 *     drawn;
 *   - "near" decision (every other): var_ij by the dot product above (in
 *     a fixed summation order), z from r_read in row-major order over the
 *     near decisions only, keep iff b + sqrt(var) z >= theta.
 * When scores are requested, far decisions also get a score
 *   a_ij = b_ij + sqrt(var_ij) z'_ij,  z' ~ N(0,1) clamped to [-T, T],
 * with the same var_ij and z' from a separate stream r_far (row-major
 * over far decisions), so the mask, the near scores and r_read do not
 * depend on it.  Since |z'| <= T, a far score always agrees with its
 * decision.  Every recorded score is thus a draw of the model above.
 */
#ifndef SPR_ANALOG_H
#define SPR_ANALOG_H

#include <gsl/gsl_rng.h>
#include <stdint.h>
#include "spr_params.h"
#include "spr_xbar.h"

#define SPR_BOLTZMANN_J_PER_K 1.380649e-23 /* exact (SI 2019) */
#define SPR_ELEMENTARY_CHARGE_C 1.602176634e-19 /* exact (SI 2019) */
#define SPR_NOISE_TRUNC 8.0 /* per-decision noise clamped to +-8 sigma */

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

/* The same over the causal pairs of an n x n score matrix (row i, keys
 * j <= i: n (n + 1) / 2 scores; docs/model.md section 6).  Returns 0 or
 * SPR_ENOMEM. */
int spr_thr_count_causal(const int32_t *s, int n, double range, int bits,
                         int64_t *counts);

/* The same for m x n float scores (row i deciding keys 0 .. n-1, or
 * causal 0 .. q0 + i), keep iff (double) score >= theta(c) as the
 * comparator decides: the keep counts of every code at once from the
 * analog scores of spr_analog_scores.  Returns 0 or SPR_ENOMEM. */
int spr_thr_count_scores(const float *s, int m, int n, int causal, int q0, double range, int bits,
                         int64_t *counts);

/* Code whose keep rate counts[.]/total is nearest keep_rate (ties: the
 * lower code, which keeps more). */
int spr_thr_pick(const int64_t *counts, int64_t total, int bits,
                 double keep_rate);

/* Scratch of spr_analog_decide for up to m queries of n keys, d dims. */
typedef struct {
  int m, n, d;
  int mb;        /* rows per block: min(m, 128) for n <= 1024, else min(m, 64) */
  float *qf;     /* m x d */
  float *a2;     /* 2d: [a_s |q_i|, s_r^2 q_i^2] of the current row */
  float *mu;     /* mb x n: scores of a block of rows */
  float *z;      /* n: noise of a row's near (then far) decisions */
  float *var;    /* n: their variances */
  float *c;      /* n: per-key constant variance */
  float *kc;     /* n: c scaled for the far test */
  float *o;      /* n: offsets (or zeros) */
  uint8_t *cls;  /* n + 64: 0 far prune, 1 far keep, 2 near */
  int *idx;      /* n: near (then far) keys of a row */
  int64_t n_near; /* out: near decisions of the last spr_analog_decide */
} spr_analog_ws;

int spr_analog_ws_alloc(spr_analog_ws *ws, int m, int n, int d);
/* Rows per block of the column-current GEMM for n keys (before the cap at
 * m): 128 while a block's mb x n floats fit 512 KB, else 64. */
int spr_analog_block_rows(int n);
void spr_analog_ws_free(spr_analog_ws *ws);

/* Decide keep/prune for m queries q (m x d codes) against the head xb
 * (evaluation above).
 * theta: threshold in score units; off: n comparator offsets (score
 * units) or NULL; r_read: stream of the near decisions' noise
 * (SPR_STREAM_READ; used only when read_noise or cmp_noise is on);
 * r_far: stream of the far decisions' recorded noise (SPR_STREAM_READ_FAR;
 * used only when scores is not NULL and the noise is on).
 * mask: m x spr_mask_row_bytes(n) bytes, overwritten (bit set = keep).
 * scores: m x n comparator inputs a_ij, or NULL.  *n_kept: keeps counted;
 * ws->n_near: near decisions (noise drawn from r_read).
 * The mask, *n_kept, ws->n_near and r_read's position do not depend on
 * whether scores is NULL.
 * Returns 0 or SPR_EINVAL (shape larger than the workspace, or a needed
 * stream is NULL). */
int spr_analog_decide(const spr_analog_params *an, const spr_analog_scale *sc,
                      const spr_xbar_head *xb, const int8_t *q, int m,
                      double theta, const float *off, gsl_rng *r_read,
                      gsl_rng *r_far, spr_analog_ws *ws, uint8_t *mask,
                      float *scores, int64_t *n_kept);

/* Causal attention (docs/model.md section 6): as spr_analog_decide, but
 * row r of q is query q0 + r of the head and decides keys j = 0 .. q0 + r
 * only.  A key j > q0 + r of that row is not decided: its mask bit is 0,
 * it draws no random number (from r_read or r_far), it is not counted in
 * *n_kept or ws->n_near, and its score (when scores is not NULL) is NaN.
 * Every decided key takes exactly the operations and, in the same order
 * of decisions, the same draws as in spr_analog_decide, so r_read is
 * consumed by the near decisions with j <= q0 + r in row-major order.
 * The row's GEMM still covers all n columns (the scores of the decided
 * keys are then bit for bit those of spr_analog_decide).  Returns 0 or
 * SPR_EINVAL (as spr_analog_decide, and q0 < 0 or q0 + m > n). */
int spr_analog_decide_causal(const spr_analog_params *an, const spr_analog_scale *sc,
                             const spr_xbar_head *xb, const int8_t *q, int m, int q0,
                             double theta, const float *off, gsl_rng *r_read,
                             gsl_rng *r_far, spr_analog_ws *ws, uint8_t *mask,
                             float *scores, int64_t *n_kept);

/* Threshold-independent analog decisions (threshold.mode =
 * analog_keep_rate, docs/model.md section 7): one comparator input per
 * decided pair,
 *   a_ij = mu_ij + o_j + sqrt(var_ij) z_ij,    z_ij ~ N(0, 1) clamped to +-T,
 * with mu, o and var exactly as in spr_analog_decide and the z_ij drawn
 * from r in row-major order over every decided pair (causal: row i of q
 * is query q0 + i and decides keys 0 .. q0 + i; the others get NaN and
 * draw nothing), whatever the threshold.  No draw when both noises are
 * off (a = mu + o).  Deciding a_ij >= theta then gives, for every
 * candidate threshold, the decisions of the same noise draws, so a
 * threshold can be picked for a keep rate of the analog decisions
 * (spr_thr_count_scores).  The distribution of each decision is that of
 * spr_analog_decide; the draws differ (that mode draws only near
 * decisions, in another order).  scores: m x n, overwritten.  Returns 0 or
 * SPR_EINVAL (shape beyond the workspace, a needed stream or the score
 * matrix NULL, causal rows outside the head). */
int spr_analog_scores(const spr_analog_params *an, const spr_analog_scale *sc,
                      const spr_xbar_head *xb, const int8_t *q, int m, int causal, int q0,
                      const float *off, gsl_rng *r, spr_analog_ws *ws, float *scores);

/* mask (m x spr_mask_row_bytes(n), overwritten) of scores >= theta, keys
 * 0 .. n-1 or causal 0 .. q0 + i; *n_kept the keeps.  Returns 0. */
int spr_analog_mask_from_scores(const float *scores, int m, int n, int causal, int q0,
                                double theta, uint8_t *mask, int64_t *n_kept);

/* Per-key read-noise variance constant c_j (F x thermal + comparator noise, in
 * score units squared) and the shot coefficient a_s, as used by
 * spr_analog_decide; exposed for tests. */
double spr_analog_thermal_var(const spr_analog_params *an,
                              const spr_analog_scale *sc, double dg_S,
                              double gsum);
double spr_analog_shot_coef(const spr_analog_params *an,
                            const spr_analog_scale *sc);

#endif
