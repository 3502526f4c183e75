/* spr_nodal.h - exact IR drop: nodal solution of a linear R x C crossbar.
 *
 * Topology (shared with spr_xbar.h and the netlist generator; issue 4):
 *   - the driver of row i is an ideal source V_i joined to word-line node
 *     (i,0) through one word-line segment r_wl;
 *   - cell (i,j), conductance G[i][j], joins word-line node (i,j) to
 *     bit-line node (i,j);
 *   - word-line segments r_wl join (i,j) to (i,j+1);
 *   - bit-line segments r_bl join (i,j) to (i+1,j);
 *   - bit-line node (R-1,j) reaches column j's sense node (held at 0 V)
 *     through one segment r_bl; the column current I_j is the current
 *     into the sense node.
 * The network is linear, so I_j = sum_i V_i Geff[i][j] with
 *   Geff[i][j] = g_wl g_bl [A^-1]_{bit(R-1,j), word(i,0)},
 * A the 2RC x 2RC nodal (Laplacian plus grounding) matrix, g = 1/r.
 *
 * Method: A is a symmetric M-matrix (positive definite).  Unknowns are
 * ordered row by row, word and bit node of each cell interleaved, which
 * makes A banded with half-bandwidth p = 2C.  A = L L^T by envelope
 * (profile) Cholesky in band storage: no pivoting, exact to rounding, and
 * no fill outside each row's envelope, so word-node rows of L keep at most
 * three entries.  Then
 *   Geff[i][j] = g_wl g_bl (L^-1 e_word(i,0)) . (L^-1 e_bit(R-1,j)),
 * where the second factor is non-zero only on the last row's 2C unknowns,
 * so the R forward solves run together and keep a window of p + 1 rows.
 * Both factors are non-negative (L^-1 >= 0 for an M-matrix): the dot
 * products do not cancel.
 * Cost: factorisation about R C^3 multiply-adds, forward solves about
 * R^2 C^2; memory 2RC (2C + 1) doubles for the factor.  Put the longer
 * dimension on R (the cost is quartic in C, quadratic in R).  Measured
 * (one core, -O2, x86-64): 64 x 64 in 12 ms, 128 x 128 in 150 ms; with
 * err_bound 15 ms and 190 ms.  Single-threaded and deterministic; callers
 * parallelise over arrays.
 *
 * Error bound: the factor also solves one full probe problem A x = b
 * (inputs v_i in [0.5, 1) from a fixed sequence), refined once
 * (x + d, d = A^-1 (b - A x) from the factor); the residual rho of x + d
 * is formed in long double straight from G, plus a bound on the rounding
 * of that computation.  With the proven bound
 *   lambda_min(A) >= lam = min(4 g_wl sin^2(pi / (4C + 2)),
 *                              4 g_bl sin^2(pi / (4R + 2)))
 * (A dominates the grounded word-line and bit-line paths, whose smallest
 * eigenvalues these are; the cells add a positive semidefinite term) the
 * probe's true column currents satisfy
 *   |I_j - sum_i v_i Geff[i][j]| <= |I_x,j - sum_i v_i Geff[i][j]|
 *                                   + g_bl (||rho||_2 + rounding) / lam.
 * err_bound is the largest right-hand side over j divided by the largest
 * probe column current: a proven bound for that input, reported as the
 * relative error of Geff (relative to the largest column current).  It is
 * pessimistic (lam and the rounding bound are worst cases): typically
 * 1e-10 to 1e-9 at 64 x 64 to 128 x 128 while the observed difference
 * from a dense LU solve is about 1e-14.
 *
 * Wire resistances of zero: r_wl = r_bl = 0 gives Geff = G exactly
 * (err_bound 0); one of them zero decouples the array into independent
 * lines, each solved by a diagonally dominant tridiagonal (Thomas) solve;
 * err_bound is then the estimate 8 (R + C) eps (not a proof).
 */
#ifndef SPR_NODAL_H
#define SPR_NODAL_H

typedef struct spr_nodal_ws spr_nodal_ws;

/* Workspace for arrays of up to R_max x C_max cells (2 R C (2C + 1) +
 * (2C + 1) R + 2C + 4 R C doubles: 68 MB at 128 x 128, 8.6 MB at
 * 64 x 64).  Returns NULL and sets *err (if err is not NULL) to
 * SPR_EINVAL (R_max, C_max < 1 or too large) or SPR_ENOMEM. */
spr_nodal_ws *spr_nodal_ws_alloc(int R_max, int C_max, int *err);
/* Bytes spr_nodal_ws_alloc(R_max, C_max) takes (the figures above), for
 * memory estimates; 0 for a shape it would refuse. */
double spr_nodal_ws_bytes(int R_max, int C_max);
/* Free a workspace; NULL is a no-op. */
void spr_nodal_ws_free(spr_nodal_ws *ws);

/* Effective conductance matrix of one array.
 * G: R x C cell conductances (row-major, siemens, finite, >= 0).
 * r_wl, r_bl: word-line and bit-line segment resistances (ohm, finite,
 *   >= 0; 0 means ideal wires, see above).
 * Geff: R x C output (row-major, siemens), may not alias G.
 * err_bound: if not NULL, receives the relative error bound described
 *   above (dimensionless).
 * ws: a workspace allocated for at least R x C (R <= R_max, C <= C_max).
 * Returns 0, or SPR_EINVAL (bad shape, NULL pointers, a workspace too
 * small, a non-finite or negative G or r, r so small that 1/r
 * overflows; the message names the value) or SPR_EINTERNAL (a
 * non-positive pivot: cannot happen for valid input).  Geff is
 * unspecified on failure. */
int spr_nodal_effective(const double *G, int R, int C, double r_wl,
                        double r_bl, double *Geff, double *err_bound,
                        spr_nodal_ws *ws);

#endif
