/* spr_mat.c - the checked GEMM entry point. */
#include "config.h"
#include "spr_mat.h"
#include "spr_error.h"

#include <cblas.h>

int spr_matf_gemm(float alpha, spr_matf a, int trans_a, spr_matf b, int trans_b,
                  float beta, spr_matf c) {
  const int m = trans_a ? a.cols : a.rows, k = trans_a ? a.rows : a.cols;
  const int kb = trans_b ? b.cols : b.rows, n = trans_b ? b.rows : b.cols;
  if (m != c.rows || n != c.cols || k != kb || m < 0 || n < 0 || k < 0 ||
      a.ld < a.cols || b.ld < b.cols || c.ld < c.cols)
    return spr_error(SPR_EINVAL,
                     "gemm: shapes do not match: op(A) %d x %d, op(B) %d x %d, C %d x %d "
                     "(leading dimensions %d, %d, %d)",
                     m, k, kb, n, c.rows, c.cols, a.ld, b.ld, c.ld);
  if (m == 0 || n == 0) return 0;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a.data, a.ld > 0 ? a.ld : 1,
              b.data, b.ld > 0 ? b.ld : 1, beta, c.data, c.ld > 0 ? c.ld : 1);
  return 0;
}
