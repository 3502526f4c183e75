/* test_mat.c - matrix views and the checked GEMM against a triple loop. */
#include "config.h"
#include "spr_error.h"
#include "spr_mat.h"
#include "spr_test.h"

#include <math.h>

/* every combination of transposes, on blocks of larger buffers */
static void test_gemm_vs_loops(void) {
  enum { LD = 11 };
  float A[9 * LD], B[9 * LD], C[9 * LD], C0[9 * LD];
  for (int i = 0; i < 9 * LD; i++) {
    A[i] = (float)(((i * 37) % 23) - 11) * 0.25f;
    B[i] = (float)(((i * 53) % 19) - 9) * 0.5f;
    C0[i] = (float)((i % 7) - 3);
  }
  const int M = 4, N = 5, K = 3;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      spr_matf a = {A + LD + 2, ta ? K : M, ta ? M : K, LD};
      spr_matf b = {B + 2 * LD + 1, tb ? N : K, tb ? K : N, LD};
      memcpy(C, C0, sizeof C);
      spr_matf c = spr_matf_block((spr_matf){C, 9, LD, LD}, 3, 4, M, N);
      CU_ASSERT_EQUAL_FATAL(spr_matf_gemm(2.385f, a, ta, b, tb, -0.5f, c), 0);
      int bad = 0;
      for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
          double s = 0;
          for (int k = 0; k < K; k++) {
            double x = ta ? a.data[k * LD + i] : a.data[i * LD + k];
            double y = tb ? b.data[j * LD + k] : b.data[k * LD + j];
            s += x * y;
          }
          double want = 2.385 * s - 0.5 * C0[(3 + i) * LD + 4 + j];
          if (fabs(spr_matf_row(c, i)[j] - want) > 1e-4 * (1 + fabs(want))) bad++;
        }
      CU_ASSERT_EQUAL(bad, 0);
      /* outside the block nothing changed */
      CU_ASSERT_EQUAL(C[0], C0[0]);
      CU_ASSERT_EQUAL(C[3 * LD + 3], C0[3 * LD + 3]);
      CU_ASSERT_EQUAL(C[3 * LD + 9], C0[3 * LD + 9]);
    }
}

static void test_gemm_shape_errors(void) {
  float x[64] = {0};
  spr_matf a = spr_matf_view(x, 4, 3), b = spr_matf_view(x, 2, 5), c = spr_matf_view(x, 4, 5);
  CU_ASSERT_EQUAL(spr_matf_gemm(1, a, 0, b, 0, 0, c), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "op(A) 4 x 3, op(B) 2 x 5, C 4 x 5");
  b = spr_matf_view(x, 3, 5);
  c = spr_matf_view(x, 5, 4);
  CU_ASSERT_EQUAL(spr_matf_gemm(1, a, 0, b, 0, 0, c), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "C 5 x 4");
  c = spr_matf_view(x, 4, 5);
  c.ld = 4; /* rows overlap */
  CU_ASSERT_EQUAL(spr_matf_gemm(1, a, 0, b, 0, 0, c), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "leading dimensions 3, 5, 4");
  /* empty products are fine */
  CU_ASSERT_EQUAL(spr_matf_gemm(1, spr_matf_view(x, 0, 3), 0, b, 0, 0, spr_matf_view(x, 0, 5)), 0);
}

int main(void) {
  CU_TestInfo tests[] = {{"gemm on blocks vs loops", test_gemm_vs_loops},
                         {"gemm shape errors", test_gemm_shape_errors},
                         CU_TEST_INFO_NULL};
  return spr_test_run("mat", tests);
}
