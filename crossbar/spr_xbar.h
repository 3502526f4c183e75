/* spr_xbar.h - ReRAM scoring arrays holding one head's keys.
 *
 * Mapping (docs/model.md, section "Crossbar"): key j occupies a pair of
 * physical columns, G+ and G-, in column tile j / (cols/2); key dimension i
 * is row i % rows of row tile i / rows.  A signed key code k (the
 * key_msb_bits most significant bits of the quantized key) is programmed as
 * levels (k, 0) when k >= 0 and (0, -k) when k < 0; level l has conductance
 *   G = g_min + l * dG,   dG = (g_max - g_min) / (2^cell_bits - 1).
 * Column currents of the row tiles of a key add.
 *
 * Static non-idealities, applied in this order to every physical cell:
 *   programming variation  G <- G exp(prog_sigma z),  z ~ N(0,1)  (median kept;
 *                          the factor in single precision, rel. error 1e-7)
 *   stuck-at faults        G <- g_max (rate stuck_on_rate) or g_min
 *                          (rate stuck_off_rate), independently per cell;
 *                          stuck cells do not drift
 *   drift                  G <- G (t/t0)^-nu
 *   IR drop, ir_drop =
 *     first_order          G_eff = G (1 - a_wl r_wl A - a_bl r_bl B)   (see below;
 *                          a_wl, a_bl = ir_alpha_wl, ir_alpha_bl, fitted
 *                          scales of the two terms, 1 by default)
 *     nodal                G_eff = spr_nodal_effective(G, r_wl, r_bl): the
 *                          exact effective conductances of the array
 *                          (row voltages to column currents) with the raw
 *                          wire resistances; ir_alpha_* are not used
 *   row DAC gain           row i of tile scaled by its DAC gain
 * fold into an effective weight matrix w (d x n, in units of dG) so that the
 * ideal-unit column current of key j for query code vector q is
 *   s_j = sum_i q_i w[i][j]     (score units; current = s_j * v_step * dG).
 * With every effect off, w[i][j] is exactly the integer key code.
 *
 * Cell nonlinearity (cell_v0_V = V0 > 0): a cell passes G V0 sinh(V/V0)
 * at row voltage V instead of G V.  Because V is common to a row, this is
 * a transform of the row voltages before the matrix product, applied by
 * analog/ (spr_analog_decide) to the query codes; the head records V0 in
 * cell_v0_V.  The weights w stay linear in G.
 *
 * First-order IR drop of one R x C array (driver at column 0 of each word
 * line through one segment, sense node below row R-1 through one segment),
 * from one Jacobi step around the ideal currents:
 *   A_ij = sum_{k<=j} sum_{l>=k} G_il,   B_ij = sum_{k>=i} sum_{m<=k} G_mj
 * which is exact to first order in r_wl G and r_bl G.
 *
 * Draw order (fixed, so a stream gives the same head on any machine and
 * thread count): physical cells are visited array by array (column tile
 * outer, row tile inner), row-major inside an array.  r_prog gives one
 * N(0,1) per cell in that order (spr_rng_gaussian).  r_stuck is read only
 * at stuck cells: with p = stuck_on_rate + stuck_off_rate, the number of
 * healthy cells before the next stuck one is Geometric(p),
 *   gap = floor(log(u) / log(1 - p)),  u uniform on (0, 1]
 * (one uniform), and a stuck cell is stuck on when a second uniform is
 * below stuck_on_rate / p.  This is exactly an independent choice per cell
 * (on with probability stuck_on_rate, off with stuck_off_rate) at a cost
 * per stuck cell instead of per cell.
 */
#ifndef SPR_XBAR_H
#define SPR_XBAR_H

#include <gsl/gsl_rng.h>
#include <stdint.h>
#include "spr_nodal.h"
#include "spr_params.h"

/* Largest r_wl A + r_bl B of a cell for which the first-order IR-drop model
 * is used; beyond it spr_xbar_program fails (the neglected second-order
 * terms are then several percent of a cell current). */
#define SPR_IR_FIRST_ORDER_LIMIT 0.2

typedef struct {
  int n, d;             /* keys, key dimensions */
  int row_tiles;        /* ceil(d / rows) */
  int col_tiles;        /* ceil(n / (cols / 2)) */
  double dg_S;          /* conductance step between levels */
  float *w;             /* d x n effective weights, units of dG */
  float *gt;            /* n x 2d read-noise coefficients of the programmed
                           cells (before IR drop): row j holds
                           g1_tj = (G+ + G-) / dG at [t] and
                           g2_tj = (G+^2 + G-^2) / dG^2 at [d + t], so the
                           variance of one decision is one contiguous dot
                           product */
  double *gsum;         /* n: sum over the key's columns, idle rows
                           included, of (G+ + G-) / dG (thermal noise) */
  float *g1_sum;        /* n: sum_t g1_tj (noise bound; float sums, within
                           1e-5 relative) */
  float *g2_sum;        /* n: sum_t g2_tj */
  int64_t n_stuck_on;   /* cells stuck at g_max (all physical cells) */
  int64_t n_stuck_off;  /* cells stuck at g_min */
  int64_t n_cells;      /* physical cells of all arrays of the head */
  double ir_max;        /* largest IR correction of any cell, idle cells
                           included (0 when IR drop is off): first_order
                           a_wl r_wl A + a_bl r_bl B = (G - G_eff) / G;
                           nodal max |G - G_eff| / G over the cells */
  double ir_err_max;    /* nodal: the largest relative error bound of the
                           solves (spr_nodal_effective's err_bound) over
                           the head's arrays; 0 otherwise */
  double cell_v0_V;     /* cell nonlinearity V0 of the programmed arrays
                           (0 = linear), from spr_xbar_params */
} spr_xbar_head;

/* Number of column tiles for n keys. */
int spr_xbar_col_tiles(const spr_xbar_params *p, int n);

/* Allocate the arrays of a head of n keys of d dimensions (zeroed).
 * Returns 0 or SPR_ENOMEM / SPR_EINVAL. */
int spr_xbar_head_alloc(spr_xbar_head *h, const spr_xbar_params *p, int n,
                        int d);
/* Free the arrays (h itself is caller-owned); safe on a zeroed struct. */
void spr_xbar_head_free(spr_xbar_head *h);

/* Program key codes kmsb (n x d, row-major, values within the signed
 * key_msb_bits range) into h (allocated for n, d).
 * row_gain: NULL (ideal DACs) or col_tiles x d gains, row_gain[t*d + i]
 *   the gain of the DAC driving row i of column tile t.
 * r_prog, r_stuck: streams for programming variation and stuck-at faults
 *   (used only when the effect is on).
 * work: at least 3 * rows * cols doubles of scratch.
 * nodal: with ir_drop = nodal, a workspace from spr_nodal_ws_alloc for at
 *   least rows x cols (caller-owned, reused for every array; its contents
 *   never reach the result, so any workspace gives the same bits);
 *   otherwise unused and may be NULL.
 * Returns 0 or SPR_EINVAL (a key code out of range, naming key, dimension
 * and value; key_msb_bits outside [1, 8] or beyond the cell's levels;
 * g_min, g_max not 0 < g_min < g_max; drift_time < drift_t0; stuck-at
 * rates that are not probabilities with sum <= 1; ir_alpha_wl, ir_alpha_bl
 * or cell_v0_V negative or not finite; a first-order IR
 * correction above SPR_IR_FIRST_ORDER_LIMIT; ir_drop = nodal without a
 * large enough workspace, or with wire resistances the solver refuses;
 * effective conductances that overflow single precision). */
int spr_xbar_program(spr_xbar_head *h, const spr_xbar_params *p,
                     const int8_t *kmsb, const double *row_gain,
                     gsl_rng *r_prog, gsl_rng *r_stuck, double *work,
                     spr_nodal_ws *nodal);

/* Effective conductance of one array g (R x C, row-major, siemens) under
 * the first-order IR-drop model, written to geff (a distinct buffer of the
 * same shape).  Rows that hold no key dimension are driven at 0 V: their
 * cells carry no current of their own but still divert bit-line current,
 * which the B term includes.  work: at least R * C doubles.  Returns the
 * largest correction r_wl A + r_bl B of any cell. */
double spr_xbar_ir_first_order(const double *g, int R, int C, double r_wl,
                             double r_bl, double *geff, double *work);

/* Models of `sprintsim crossbar`. */
enum spr_xbar_model {
  SPR_XBAR_MODEL_IDEAL = 0,
  SPR_XBAR_MODEL_ANALYTIC = 1,
  SPR_XBAR_MODEL_NODAL = 2 /* exact nodal analysis (crossbar/spr_nodal.h) */
};

/* Column currents I (M x C, amperes) of one array of conductances G (R x C,
 * siemens, finite, >= 0) for M input vectors V (M x R, volts), under the
 * topology above: ideal (I = V G, no wires), analytic (the first-order
 * IR-drop model; *correction gets the largest r_wl A + r_bl B, which makes
 * the model inaccurate beyond SPR_IR_FIRST_ORDER_LIMIT — reported, not
 * refused, since this entry point exists to compare models) or nodal (the
 * exact solution of the linear network; *correction gets the solver's
 * relative error bound instead).
 * Returns 0, SPR_EINVAL (bad shape, model, negative or non-finite value,
 * naming it) or SPR_ENOMEM. */
int spr_xbar_column_currents(int model, const double *G, int R, int C, const double *V, int M,
                             double r_wl, double r_bl, double *I, double *correction);

#endif
