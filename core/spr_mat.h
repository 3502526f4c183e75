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
#include <stdint.h>

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

/* ---- exact products of 8-bit integer codes ------------------------------
 *
 * C = A B^T for int8 codes A (m x k) and B (n x k), every entry the exact
 * integer sum_t a_it b_jt (int32; exact since |a b| <= 2^14 and k <= 65536).
 * B is packed once (spr_i8mat_pack) and serves any number of A blocks.
 * Two paths give the same integers:
 *   AVX512-VNNI (when the CPU has it, k <= 65536): B as unsigned bytes
 *     b + 128 in 16-column panels, one vpdpbusd per 4 x 16 products,
 *     C = sum_t a_t (b_t + 128) - 128 sum_t a_t (exact int32);
 *   otherwise single-precision GEMM (OpenBLAS) on the codes converted to
 *     float, exact when max|a| max|b| k <= 2^24 (every partial sum is an
 *     integer a float holds), else int64 loops.
 * A packed operand serves one thread at a time. */
typedef struct spr_i8mat spr_i8mat;

/* For B of up to n_max rows of k_max codes and A blocks of up to rows_max
 * rows.  Returns 0, SPR_EINVAL (a size < 1 or k_max > 65536) or
 * SPR_ENOMEM. */
int spr_i8mat_alloc(int n_max, int k_max, int rows_max, spr_i8mat **out);
void spr_i8mat_free(spr_i8mat *p); /* NULL: no-op */

/* Pack B (n x k codes, rows ldb bytes apart).  Returns 0 or SPR_EINVAL
 * (shape beyond the allocation, NULL B). */
int spr_i8mat_pack(spr_i8mat *p, const int8_t *B, int n, int k, int ldb);

/* Pack the codes B & and_mask (bitwise, as int8: 0x7f or less keeps them
 * non-negative), e.g. the low bits of keys.  Errors as spr_i8mat_pack. */
int spr_i8mat_pack_masked(spr_i8mat *p, const int8_t *B, int n, int k, int ldb, uint8_t and_mask);

/* C[i ldc + j] = sum_t A[i lda + t] B[j][t] for i < m, j < ncols (ncols
 * <= n: the first columns only, e.g. the keys a causal block sees).
 * Returns 0 or SPR_EINVAL (m outside 0..rows_max, ncols outside 0..n,
 * NULL arguments). */
int spr_i8mat_mul(spr_i8mat *p, const int8_t *A, int lda, int m, int ncols, int32_t *C, int ldc);

/* 1: the VNNI path serves products (else the float or int64 path). */
int spr_i8mat_vnni(const spr_i8mat *p);

/* For each plane l < planes: count[l] = the pairs (i, j), i < m,
 * j < nk[i], with
 *   S[i lds + j] - sum_t A[i lda + t] B_l[j][t] >= t[l m + i]
 * (B_l the codes packed in p[l], all with the same k; nk[i] <= ncols <=
 * n), the products compared in registers and never stored, A's rows
 * prepared once for every plane (LeOPArd's plane counts,
 * digital/spr_baselines.c).  nested = 1 is the caller's word that the
 * planes' pairs are nested (a pair counted at plane l is counted at every
 * plane above l): the kernel then takes a tile of pairs from the last
 * plane down and skips the planes below one where the tile counts none
 * (the same counts, less work); with nested = 0 every plane is counted in
 * full.  The VNNI path only: SPR_EINVAL without it (spr_i8mat_vnni), or
 * for m outside 0..rows_max, ncols outside 0..n, nk[i] outside 0..ncols,
 * planes of different k, NULL arguments. */
int spr_i8mat_count_diff_ge(spr_i8mat *const *p, int planes, const int8_t *A, int lda, int m,
                            int ncols, const int32_t *S, size_t lds, const int32_t *t,
                            const int *nk, int nested, int64_t *count);

/* Tests: 1 forces the portable path for matrices packed afterwards. */
void spr__i8mat_force_portable(int on);

#endif
