/* spr_nodal_ref.h - test-only reference: a dense GSL LU nodal solve of the
 * crossbar topology of spr_xbar.h / spr_nodal.h, written independently of
 * the library (unknowns: all word-line nodes, then all bit-line nodes).
 * Column currents icol (C) for row voltages v (R); r_wl, r_bl > 0. */
#ifndef SPR_NODAL_REF_H
#define SPR_NODAL_REF_H

#include <gsl/gsl_linalg.h>

static inline void spr_ref_nodal(const double *g, int R, int C, double rwl, double rbl,
                                 const double *v, double *icol) {
  const int N = 2 * R * C;
  gsl_matrix *A = gsl_matrix_calloc(N, N);
  gsl_vector *b = gsl_vector_calloc(N), *x = gsl_vector_alloc(N);
#define WL(i, j) ((i) * C + (j))
#define BL(i, j) (R * C + (i) * C + (j))
  const double gw = 1 / rwl, gb = 1 / rbl;
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) {
      double gc = g[i * C + j];
      int a = WL(i, j), c = BL(i, j);
      /* cell */
      *gsl_matrix_ptr(A, a, a) += gc;
      *gsl_matrix_ptr(A, c, c) += gc;
      *gsl_matrix_ptr(A, a, c) -= gc;
      *gsl_matrix_ptr(A, c, a) -= gc;
      /* word line: to the driver or the left neighbour */
      *gsl_matrix_ptr(A, a, a) += gw;
      if (j == 0) {
        *gsl_vector_ptr(b, a) += gw * v[i];
      } else {
        *gsl_matrix_ptr(A, a, WL(i, j - 1)) -= gw;
        *gsl_matrix_ptr(A, WL(i, j - 1), WL(i, j - 1)) += gw;
        *gsl_matrix_ptr(A, WL(i, j - 1), a) -= gw;
      }
      /* bit line: to the lower neighbour or the sense node (0 V) */
      *gsl_matrix_ptr(A, c, c) += gb;
      if (i < R - 1) {
        *gsl_matrix_ptr(A, c, BL(i + 1, j)) -= gb;
        *gsl_matrix_ptr(A, BL(i + 1, j), BL(i + 1, j)) += gb;
        *gsl_matrix_ptr(A, BL(i + 1, j), c) -= gb;
      }
    }
  gsl_permutation *perm = gsl_permutation_alloc(N);
  int s;
  gsl_linalg_LU_decomp(A, perm, &s);
  gsl_linalg_LU_solve(A, perm, b, x);
  for (int j = 0; j < C; j++) icol[j] = gsl_vector_get(x, BL(R - 1, j)) * gb;
#undef WL
#undef BL
  gsl_permutation_free(perm);
  gsl_matrix_free(A);
  gsl_vector_free(b);
  gsl_vector_free(x);
}

#endif
