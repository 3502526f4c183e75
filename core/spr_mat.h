/* spr_mat.h - views of row-major float matrices, and the one GEMM entry.
 *
 * A view does not own its data: it names rows x cols elements of a buffer
 * whose rows are ld floats apart (ld >= cols), so a block of a larger
 * matrix is a view too.  Every matrix product of the library goes through
 * spr_matf_gemm, which checks the shapes and calls OpenBLAS's cblas_sgemm.
 */
#ifndef SPR_MAT_H
#define SPR_MAT_H

#include <stddef.h>

typedef struct {
  float *data;
  int rows, cols;
  int ld; /* floats between the starts of consecutive rows */
} spr_matf;

/* The whole buffer data[0 .. rows*cols) as a rows x cols matrix. */
static inline spr_matf spr_matf_view(float *data, int rows, int cols) {
  spr_matf m = {data, rows, cols, cols};
  return m;
}

/* Rows r0 .. r0+rows-1 and columns c0 .. c0+cols-1 of m (no checks: the
 * caller keeps the block inside m). */
static inline spr_matf spr_matf_block(spr_matf m, int r0, int c0, int rows, int cols) {
  spr_matf b = {m.data + (size_t)r0 * m.ld + c0, rows, cols, m.ld};
  return b;
}

static inline float *spr_matf_row(spr_matf m, int i) {
  return m.data + (size_t)i * m.ld;
}

/* C = alpha op(A) op(B) + beta C, where op(X) is X or, when trans_x is
 * nonzero, its transpose.  Returns 0, or SPR_EINVAL (naming the shapes)
 * when op(A) is not M x K, op(B) not K x N and C not M x N, or a leading
 * dimension is smaller than its row. */
int spr_matf_gemm(float alpha, spr_matf a, int trans_a, spr_matf b, int trans_b,
                  float beta, spr_matf c);

#endif
