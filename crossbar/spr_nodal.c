/* spr_nodal.c - exact nodal IR drop by banded Cholesky (method, topology
 * and error bound: spr_nodal.h).
 *
 * Nodal equations, g_w = 1/r_wl, g_b = 1/r_bl, w = word node, b = bit node:
 *   (G_ij + g_w + [j<C-1] g_w) w_ij - g_w w_i,j-1 - g_w w_i,j+1 - G_ij b_ij
 *        = [j=0] g_w V_i
 *   (G_ij + g_b + [i>0] g_b) b_ij - g_b b_i-1,j - g_b b_i+1,j - G_ij w_ij = 0
 *   I_j = g_b b_R-1,j
 */
#include "config.h"
#include "spr_nodal.h"
#include "spr_error.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

struct spr_nodal_ws {
  int R_max, C_max;
  double *band; /* N x (p+1): row k holds L[k][k-p .. k], diagonal last */
  double *win;  /* (p+1) x R ring of forward-solve rows */
  double *z;    /* p */
  double *y, *x; /* N each: probe solve */
};

double spr_nodal_ws_bytes(int R_max, int C_max) {
  if (R_max < 1 || C_max < 1 || R_max > 1 << 14 || C_max > 1 << 14) return 0;
  const double N = 2.0 * R_max * C_max, p = 2.0 * C_max;
  /* band, win, z, y, x as allocated below */
  return (N * (p + 1) + (p + 1) * R_max + p + 2 * N) * sizeof(double) + sizeof(spr_nodal_ws);
}

spr_nodal_ws *spr_nodal_ws_alloc(int R_max, int C_max, int *err) {
  int dummy;
  if (!err) err = &dummy;
  *err = 0;
  if (R_max < 1 || C_max < 1 || R_max > 1 << 14 || C_max > 1 << 14) {
    *err = spr_error(SPR_EINVAL, "nodal: workspace shape R=%d C=%d outside [1, 16384]",
                     R_max, C_max);
    return NULL;
  }
  size_t N = 2 * (size_t)R_max * C_max, p = 2 * (size_t)C_max;
  if (N > SIZE_MAX / sizeof(double) / (p + 1)) {
    *err = spr_error(SPR_EINVAL, "nodal: workspace for %d x %d too large", R_max, C_max);
    return NULL;
  }
  spr_nodal_ws *ws = calloc(1, sizeof *ws);
  if (ws) {
    ws->R_max = R_max;
    ws->C_max = C_max;
    ws->band = malloc(N * (p + 1) * sizeof(double));
    ws->win = malloc((p + 1) * (size_t)R_max * sizeof(double));
    ws->z = malloc(p * sizeof(double));
    ws->y = malloc(N * sizeof(double));
    ws->x = malloc(N * sizeof(double));
  }
  if (!ws || !ws->band || !ws->win || !ws->z || !ws->y || !ws->x) {
    spr_nodal_ws_free(ws);
    *err = spr_error(SPR_ENOMEM, "nodal: out of memory for a %d x %d workspace (%.0f MB)",
                     R_max, C_max, spr_nodal_ws_bytes(R_max, C_max) / 1e6);
    return NULL;
  }
  return ws;
}

void spr_nodal_ws_free(spr_nodal_ws *ws) {
  if (!ws) return;
  free(ws->band);
  free(ws->win);
  free(ws->z);
  free(ws->y);
  free(ws->x);
  free(ws);
}

/* Probe input of row i: in [0.5, 1), a fixed low-discrepancy sequence. */
static double probe_v(int i) {
  double f = (i + 1) * 0.6180339887498949;
  return 0.5 + 0.5 * (f - floor(f));
}

/* Thomas algorithm for a symmetric tridiagonal system with diagonal d
 * (length n) and off-diagonal -o (uniform): solve in place of rhs.
 * c: scratch of n.  Diagonally dominant, so no pivoting. */
static void thomas(const double *d, double o, double *rhs, double *c, int n) {
  double piv = d[0];
  c[0] = -o / piv;
  rhs[0] /= piv;
  for (int k = 1; k < n; k++) {
    piv = d[k] + o * c[k - 1];
    c[k] = -o / piv;
    rhs[k] = (rhs[k] + o * rhs[k - 1]) / piv;
  }
  for (int k = n - 2; k >= 0; k--) rhs[k] -= c[k] * rhs[k + 1];
}

/* One of r_wl, r_bl is zero: independent lines. */
static void decoupled(const double *G, int R, int C, double r_wl, double r_bl, double *Geff,
                      spr_nodal_ws *ws) {
  double *d = ws->y, *rhs = ws->x, *c = ws->z;
  if (r_bl == 0) {
    /* bit lines at 0 V: word line i is a chain from the driver with cell
     * j to ground; Geff[i][j] = G_ij w_ij for V_i = 1. */
    const double gw = 1 / r_wl;
    for (int i = 0; i < R; i++) {
      for (int j = 0; j < C; j++) {
        d[j] = G[i * C + j] + gw + (j < C - 1 ? gw : 0);
        rhs[j] = j == 0 ? gw : 0;
      }
      thomas(d, gw, rhs, c, C);
      for (int j = 0; j < C; j++) Geff[i * C + j] = G[i * C + j] * rhs[j];
    }
  } else {
    /* word lines at V_i: bit line j is a chain to the sense node with
     * cell i injecting G_ij V_i; by symmetry Geff[i][j] =
     * g_b G_ij [T^-1]_{R-1,i} = g_b G_ij (T^-1 e_R-1)_i. */
    const double gb = 1 / r_bl;
    for (int j = 0; j < C; j++) {
      for (int i = 0; i < R; i++) {
        d[i] = G[i * C + j] + gb + (i > 0 ? gb : 0);
        rhs[i] = i == R - 1 ? 1 : 0;
      }
      thomas(d, gb, rhs, c, R);
      for (int i = 0; i < R; i++) Geff[i * C + j] = gb * G[i * C + j] * rhs[i];
    }
  }
}

/* Assemble the lower band of A (row-major interleaved ordering). */
static void assemble(const double *G, int R, int C, double gw, double gb, double *band) {
  const size_t N = 2 * (size_t)R * C, p = 2 * (size_t)C, s = p + 1;
  for (size_t k = 0; k < N * s; k++) band[k] = 0;
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) {
      const double g = G[i * C + j];
      const size_t w = 2 * ((size_t)i * C + j), b = w + 1;
      band[w * s + p] = g + gw + (j < C - 1 ? gw : 0);
      band[b * s + p] = g + gb + (i > 0 ? gb : 0);
      band[b * s + p - 1] = -g;              /* A[b][w] */
      if (j > 0) band[w * s + p - 2] = -gw;  /* A[w][w - 2] */
      if (i > 0) band[b * s + 0] = -gb;      /* A[b][b - p] */
    }
}

/* First column of row k's envelope (profile) in the interleaved order:
 * word node (i,j) couples below it only to word node (i,j-1), two rows up;
 * bit node (i,j) to bit node (i-1,j), p = 2C rows up (bit nodes of row 0:
 * to their word node, one row up).  A row of L has no entries before its
 * envelope (no fill outside it), so half the rows of L have at most three
 * entries. */
static inline size_t env_first(size_t k, size_t p) {
  if (k % 2 == 0) return (k % p) ? k - 2 : k;
  return k >= p ? k - p : k - 1;
}

/* sum_{t < n} a[t] b[t] with four fixed partial sums (a fixed order of
 * operations, whichever instructions the compiler picks). */
static inline double dot4(const double *a, const double *b, size_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t t = 0;
  for (; t + 4 <= n; t += 4) {
    s0 += a[t] * b[t];
    s1 += a[t + 1] * b[t + 1];
    s2 += a[t + 2] * b[t + 2];
    s3 += a[t + 3] * b[t + 3];
  }
  for (; t < n; t++) s0 += a[t] * b[t];
  return (s0 + s1) + (s2 + s3);
}

/* In-place envelope Cholesky A = L L^T (row-oriented, band storage):
 *   L[k][m] = (A[k][m] - sum_{t<m} L[k][t] L[m][t]) / L[m][m],
 *   L[k][k] = sqrt(A[k][k] - sum_{t<k} L[k][t]^2),
 * sums over t >= max(env_first(k), env_first(m)).
 * Returns the first index with a non-positive pivot, or -1. */
static long cholesky_band(double *band, size_t N, size_t p) {
  const size_t s = p + 1;
  for (size_t k = 0; k < N; k++) {
    double *Lk = band + k * s; /* Lk[t - k + p] = L[k][t] */
    const size_t fk = env_first(k, p);
    for (size_t m = fk; m <= k; m++) {
      const double *Lm = band + m * s;
      const size_t fm = env_first(m, p), t0 = fk > fm ? fk : fm;
      double acc = Lk[m - k + p] - dot4(Lk + t0 + p - k, Lm + t0 + p - m, m - t0);
      if (m < k) {
        Lk[m + p - k] = acc / Lm[p];
      } else {
        if (!(acc > 0)) return (long)k;
        Lk[p] = sqrt(acc);
      }
    }
  }
  return -1;
}

/* Solve L L^T u = u in place (banded factor). */
static void lower_upper_solve(const double *band, size_t N, size_t p, double *u) {
  const size_t s = p + 1;
  for (size_t k = 0; k < N; k++) {
    const double *Lk = band + k * s;
    double acc = u[k];
    for (size_t m = env_first(k, p); m < k; m++) acc -= Lk[m + p - k] * u[m];
    u[k] = acc / Lk[p];
  }
  /* L^T u = u by columns of L^T (rows of L): contiguous access */
  for (size_t k = N; k-- > 0;) {
    const double *Lk = band + k * s;
    const double uk = u[k] / Lk[p];
    u[k] = uk;
    for (size_t m = env_first(k, p); m < k; m++) u[m] -= Lk[m + p - k] * uk;
  }
}

/* Probe residual rho = b - A u, u = x (+ d when d is not NULL), in long
 * double.  Writes rho rounded to double into out (if not NULL) and adds
 * sum rho^2 to *rsq (if not NULL). */
static void probe_residual(const double *G, int R, int C, double gw, double gb, const double *x,
                           const double *d, double *out, long double *rsq) {
  const size_t p = 2 * (size_t)C;
#define U(k) ((long double)x[k] + (d ? (long double)d[k] : 0.0L))
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) {
      const double g = G[i * C + j];
      const size_t w = 2 * ((size_t)i * C + j), b = w + 1;
      long double rw = (j == 0 ? (long double)gw * probe_v(i) : 0.0L) -
                       ((long double)g + gw + (j < C - 1 ? gw : 0)) * U(w) + (long double)g * U(b);
      if (j > 0) rw += (long double)gw * U(w - 2);
      if (j < C - 1) rw += (long double)gw * U(w + 2);
      long double rb = -((long double)g + gb + (i > 0 ? gb : 0)) * U(b) + (long double)g * U(w);
      if (i > 0) rb += (long double)gb * U(b - p);
      if (i < R - 1) rb += (long double)gb * U(b + p);
      if (out) {
        out[w] = (double)rw;
        out[b] = (double)rb;
      }
      if (rsq) *rsq += rw * rw + rb * rb;
    }
#undef U
}

/* Bound on the squared 2-norm of the rounding of probe_residual: each
 * equation sums at most 7 products of long doubles (x + d rounded once,
 * each product and sum rounded once), so its error is below
 * 16 eps_ld sum |terms|; |x + d| <= 2 |x| is used for the terms. */
static void probe_residual_round(const double *G, int R, int C, double gw, double gb,
                                 const double *x, double *rsq) {
  const size_t p = 2 * (size_t)C;
  const double e = 16 * (double)LDBL_EPSILON;
  double acc = 0;
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) {
      const double g = G[i * C + j];
      const size_t w = 2 * ((size_t)i * C + j), b = w + 1;
      double sw = (j == 0 ? gw * probe_v(i) : 0) + 2 * ((g + 2 * gw) * fabs(x[w]) + g * fabs(x[b]));
      if (j > 0) sw += 2 * gw * fabs(x[w - 2]);
      if (j < C - 1) sw += 2 * gw * fabs(x[w + 2]);
      double sb = 2 * ((g + 2 * gb) * fabs(x[b]) + g * fabs(x[w]));
      if (i > 0) sb += 2 * gb * fabs(x[b - p]);
      if (i < R - 1) sb += 2 * gb * fabs(x[b + p]);
      acc += (e * sw) * (e * sw) + (e * sb) * (e * sb);
    }
  *rsq = acc;
}

int spr_nodal_effective(const double *G, int R, int C, double r_wl, double r_bl, double *Geff,
                        double *err_bound, spr_nodal_ws *ws) {
  if (!G || !Geff || !ws)
    return spr_error(SPR_EINVAL, "nodal: NULL %s", !G ? "G" : !Geff ? "Geff" : "workspace");
  if (R < 1 || C < 1)
    return spr_error(SPR_EINVAL, "nodal: array shape R=%d C=%d must be at least 1 x 1", R, C);
  if (R > ws->R_max || C > ws->C_max)
    return spr_error(SPR_EINVAL, "nodal: %d x %d array exceeds the %d x %d workspace", R, C,
                     ws->R_max, ws->C_max);
  if (!(r_wl >= 0) || !isfinite(r_wl))
    return spr_error(SPR_EINVAL, "nodal: r_wl = %g ohm must be finite and >= 0", r_wl);
  if (!(r_bl >= 0) || !isfinite(r_bl))
    return spr_error(SPR_EINVAL, "nodal: r_bl = %g ohm must be finite and >= 0", r_bl);
  if ((r_wl > 0 && !isfinite(1 / r_wl)) || (r_bl > 0 && !isfinite(1 / r_bl)))
    return spr_error(SPR_EINVAL, "nodal: wire resistance r_wl = %g, r_bl = %g ohm too small "
                     "(1/r overflows); use 0 for an ideal wire", r_wl, r_bl);
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) {
      double g = G[i * C + j];
      if (!(g >= 0) || !isfinite(g))
        return spr_error(SPR_EINVAL, "nodal: G[%d][%d] = %g S must be finite and >= 0", i, j, g);
    }
  if (r_wl == 0 && r_bl == 0) {
    for (int k = 0; k < R * C; k++) Geff[k] = G[k];
    if (err_bound) *err_bound = 0;
    return 0;
  }
  if (r_wl == 0 || r_bl == 0) {
    decoupled(G, R, C, r_wl, r_bl, Geff, ws);
    if (err_bound) *err_bound = 8.0 * (R + C) * DBL_EPSILON;
    return 0;
  }

  const double gw = 1 / r_wl, gb = 1 / r_bl;
  const size_t N = 2 * (size_t)R * C, p = 2 * (size_t)C, s = p + 1;
  double *band = ws->band, *win = ws->win, *z = ws->z;
  assemble(G, R, C, gw, gb, band);
  long bad = cholesky_band(band, N, p);
  if (bad >= 0)
    return spr_error(SPR_EINTERNAL, "nodal: non-positive pivot at unknown %ld of %zu "
                     "(%d x %d array, r_wl %g, r_bl %g)", bad, N, R, C, r_wl, r_bl);

  /* Forward solves L Y = E for all sources together: column i of Y is
   * L^-1 e_word(i,0), zero above row 2iC.  Only the last p + 1 rows are
   * kept (ring). */
  for (size_t k = 0; k < N; k++) {
    const double *Lk = band + k * s;
    double *restrict yk = win + (k % s) * R;
    int nz = (int)(k / p) + 1; /* columns i with 2iC <= k */
    if (nz > R) nz = R;
    for (int i = 0; i < nz; i++) yk[i] = (k == (size_t)i * p) ? 1 : 0;
    for (size_t m = env_first(k, p); m < k; m++) {
      const double l = Lk[m + p - k];
      const double *restrict ym = win + (m % s) * R;
      int nm = (int)(m / p) + 1;
      if (nm > nz) nm = nz;
#pragma omp simd
      for (int i = 0; i < nm; i++) yk[i] -= l * ym[i];
    }
    const double inv = 1 / Lk[p];
    for (int i = 0; i < nz; i++) yk[i] *= inv;
  }
  /* z = L^-1 e_bit(R-1,j), supported on [bj, N), and the dot products. */
  const double gwb = gw * gb;
  for (int j = 0; j < C; j++) {
    const size_t bj = N - p + 2 * (size_t)j + 1;
    for (size_t k = bj; k < N; k++) {
      const double *Lk = band + k * s;
      double acc = k == bj ? 1 : 0;
      for (size_t m = bj; m < k; m++) acc -= Lk[m + p - k] * z[m - bj];
      z[k - bj] = acc / Lk[p];
    }
    for (int i = 0; i < R; i++) {
      double acc = 0;
      for (size_t k = bj; k < N; k++) acc += win[(k % s) * R + i] * z[k - bj];
      Geff[i * C + j] = gwb * acc;
    }
  }

  if (!err_bound) return 0;
  /* Probe: full solve A x = b, b = g_w v_i at word(i,0). */
  double *y = ws->y, *x = ws->x;
  for (size_t k = 0; k < N; k++) x[k] = (k % p == 0) ? gw * probe_v((int)(k / p)) : 0;
  lower_upper_solve(band, N, p, x);
  /* One step of iterative refinement: d = A^-1 (b - A x) with the factor
   * (d kept in y), so the probe solution is x + d, held as a pair. */
  probe_residual(G, R, C, gw, gb, x, NULL, y, NULL);
  lower_upper_solve(band, N, p, y);
  /* Residual of x + d in long double, straight from G (not from the
   * factor), with a bound on its own rounding. */
  long double rr = 0;
  double rsq_round = 0;
  probe_residual(G, R, C, gw, gb, x, y, NULL, &rr);
  probe_residual_round(G, R, C, gw, gb, x, &rsq_round);
  const double PI = 3.14159265358979323846;
  const double sw = sin(PI / (4.0 * C + 2)), sb = sin(PI / (4.0 * R + 2));
  const double lam = fmin(4 * gw * sw * sw, 4 * gb * sb * sb);
  const double ebound = gb * (sqrt((double)rr) + sqrt(rsq_round)) / lam;
  double num = 0, den = 0;
  for (int j = 0; j < C; j++) {
    double ig = 0;
    for (int i = 0; i < R; i++) ig += probe_v(i) * Geff[i * C + j];
    const size_t bj = N - p + 2 * (size_t)j + 1;
    const double ix = (double)(gb * ((long double)x[bj] + y[bj]));
    num = fmax(num, fabs(ig - ix) + ebound);
    den = fmax(den, fabs(ix));
  }
  *err_bound = den > 0 ? num / den : (num > 0 ? HUGE_VAL : 0);
  return 0;
}
