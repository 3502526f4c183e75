/* spr_mat.c - the checked GEMM entry point. */
#include "config.h"
#include "spr_mat.h"
#include "spr_error.h"
#include "spr_clones.h"
#include "spr_vmath.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(SPR_NO_CLONES)
#define SPR_HAVE_VNNI_KERNEL 1
#include <immintrin.h>
#else
#define SPR_HAVE_VNNI_KERNEL 0
#endif

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

/* ---- exact products of 8-bit codes (spr_mat.h) ------------------------- */

enum { I8_RB = 8 }; /* rows of A per VNNI tile */
/* spr_i8mat_count_diff_ge: row blocks prepared at once, and the panel
 * pairs of one column tile (2048 keys: at d = 64 the tile's panels of 7
 * planes, 0.9 MB, stay in L2 while every row block passes over them) */
enum { I8_CG = 8, I8_QT = 64 };

struct spr_i8mat {
  int n_max, k_max, rows_max;
  int n, k;          /* the packed B */
  int vnni;          /* 1: the VNNI panels serve; 0: float or int64 */
  int kg;            /* VNNI: groups of 4 codes, ceil(k / 4) */
  uint8_t *panels;   /* VNNI: ceil(n / 16) panels of kg x 16 x 4 bytes */
  int8_t *apad;      /* VNNI: I8_RB rows of 4 kg codes (zero padded) */
  int32_t *ctile;    /* VNNI: I8_RB x 32 outputs of an edge tile */
  float *bf, *af, *cf; /* float path: B (n x k), A (rows x k), C (rows x n) */
  int8_t *b;         /* portable path: B (n x k) for the int64 loops */
  int bmax;          /* max |b| (portable path only) */
};

static int i8_force_portable;
void spr__i8mat_force_portable(int on) { i8_force_portable = on != 0; }

static int cpu_has_vnni(void) {
#if SPR_HAVE_VNNI_KERNEL
  return spr_cpu_avx512() && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
#else
  return 0;
#endif
}

void spr_i8mat_free(spr_i8mat *p) {
  if (!p) return;
  free(p->panels); free(p->b); free(p->apad); free(p->ctile); free(p->bf); free(p->af); free(p->cf);
  free(p);
}

int spr_i8mat_alloc(int n_max, int k_max, int rows_max, spr_i8mat **out) {
  *out = NULL;
  if (n_max < 1 || k_max < 1 || rows_max < 1 || k_max > 65536)
    return spr_error(SPR_EINVAL, "i8mat: shape n %d, k %d, rows %d outside [1, ...], k <= 65536",
                     n_max, k_max, rows_max);
  spr_i8mat *p = calloc(1, sizeof *p);
  if (!p) return spr_error(SPR_ENOMEM, "i8mat: out of memory");
  p->n_max = n_max;
  p->k_max = k_max;
  p->rows_max = rows_max;
  p->vnni = !i8_force_portable && cpu_has_vnni();
  const size_t kg = ((size_t)k_max + 3) / 4, np = ((size_t)n_max + 15) / 16;
  if (p->vnni) {
    p->panels = aligned_alloc(64, np * kg * 64);
    p->apad = malloc((size_t)I8_CG * I8_RB * kg * 4);
    p->ctile = malloc((size_t)I8_RB * 32 * sizeof *p->ctile);
    if (!p->panels || !p->apad || !p->ctile) goto nomem;
  } else {
    p->bf = malloc((size_t)n_max * k_max * sizeof *p->bf);
    p->af = malloc((size_t)rows_max * k_max * sizeof *p->af);
    p->cf = malloc((size_t)rows_max * n_max * sizeof *p->cf);
    p->b = malloc((size_t)n_max * k_max);
    if (!p->bf || !p->af || !p->cf || !p->b) goto nomem;
  }
  *out = p;
  return 0;
nomem:
  spr_i8mat_free(p);
  return spr_error(SPR_ENOMEM, "i8mat: out of memory for %d x %d codes", n_max, k_max);
}

int spr_i8mat_vnni(const spr_i8mat *p) { return p && p->vnni; }

/* max |b & and_mask| over the n x k codes (rows ldb apart), vectorised */
SPR_HOT static int maxabs_masked(const int8_t *B, int n, int k, int ldb, uint8_t and_mask) {
  int bm = 0;
  for (int j = 0; j < n; j++) {
    const int8_t *bj = B + (size_t)j * ldb;
#pragma omp simd reduction(max : bm)
    for (int t = 0; t < k; t++) {
      const int v = (int8_t)(bj[t] & and_mask);
      const int a = v < 0 ? -v : v;
      bm = a > bm ? a : bm;
    }
  }
  return bm;
}

int spr_i8mat_pack_masked(spr_i8mat *p, const int8_t *B, int n, int k, int ldb, uint8_t and_mask) {
  if (!p || !B) return spr_error(SPR_EINVAL, "i8mat: pack: NULL argument");
  if (n < 1 || n > p->n_max || k < 1 || k > p->k_max || ldb < k)
    return spr_error(SPR_EINVAL, "i8mat: pack: %d x %d (ld %d) beyond the allocation %d x %d", n,
                     k, ldb, p->n_max, p->k_max);
  p->n = n;
  p->k = k;
  /* the portable path's choice of float or int64 products */
  p->bmax = p->vnni ? 0 : maxabs_masked(B, n, k, ldb, and_mask);
  if (p->vnni) {
    /* panel q, group g, lane l: the 4 codes B[16 q + l][4 g .. 4 g + 3]
     * (masked) + 128 as one 32-bit word (columns beyond n and codes
     * beyond k are multiplied by zero padding of A) */
    const int kg = (k + 3) / 4, np = (n + 15) / 16, kf = k / 4;
    const uint32_t m4 = 0x01010101u * and_mask;
    p->kg = kg;
    for (int q = 0; q < np; q++) {
      uint32_t *dst = (uint32_t *)(p->panels + (size_t)q * kg * 64);
      for (int l = 0; l < 16; l++) {
        const int j = 16 * q + l;
        if (j >= n) {
          for (int g = 0; g < kg; g++) dst[16 * g + l] = 0;
          continue;
        }
        const int8_t *bj = B + (size_t)j * ldb;
        for (int g = 0; g < kf; g++) {
          uint32_t w;
          memcpy(&w, bj + 4 * g, 4);
          dst[16 * g + l] = (w & m4) ^ 0x80808080u; /* b + 128 for each byte */
        }
        if (kf < kg) {
          uint8_t t4[4] = {0, 0, 0, 0};
          for (int t = 4 * kf; t < k; t++) t4[t - 4 * kf] = (uint8_t)bj[t];
          uint32_t w;
          memcpy(&w, t4, 4);
          dst[16 * kf + l] = (w & m4) ^ 0x80808080u;
        }
      }
    }
  } else {
    for (int j = 0; j < n; j++)
      for (int t = 0; t < k; t++) {
        const int8_t v = (int8_t)(B[(size_t)j * ldb + t] & and_mask);
        p->b[(size_t)j * k + t] = v;
        p->bf[(size_t)j * k + t] = (float)v;
      }
  }
  return 0;
}

int spr_i8mat_pack(spr_i8mat *p, const int8_t *B, int n, int k, int ldb) {
  return spr_i8mat_pack_masked(p, B, n, k, ldb, 0xFF);
}

#if SPR_HAVE_VNNI_KERNEL
/* I8_RB rows of apad (4 kg codes each) times panels p0, p1 (32 columns),
 * minus corr[r] on row r, into out (row stride ldo). */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void
vnni_tile(const int8_t *apad, int kg, const uint8_t *p0, const uint8_t *p1, const int32_t *corr,
          int32_t *out, size_t ldo) {
  __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
          c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00,
          c70 = c00, c71 = c00;
  const int stride = 4 * kg;
  for (int g = 0; g < kg; g++) {
    const __m512i b0 = _mm512_load_si512((const void *)(p0 + (size_t)g * 64));
    const __m512i b1 = _mm512_load_si512((const void *)(p1 + (size_t)g * 64));
    const int8_t *a = apad + 4 * g;
#define ROW(r, x0, x1)                                                          \
  do {                                                                          \
    int32_t w;                                                                  \
    memcpy(&w, a + (size_t)(r) * stride, 4);                                    \
    const __m512i av = _mm512_set1_epi32(w);                                    \
    x0 = _mm512_dpbusd_epi32(x0, b0, av);                                       \
    x1 = _mm512_dpbusd_epi32(x1, b1, av);                                       \
  } while (0)
    ROW(0, c00, c01); ROW(1, c10, c11); ROW(2, c20, c21); ROW(3, c30, c31);
    ROW(4, c40, c41); ROW(5, c50, c51); ROW(6, c60, c61); ROW(7, c70, c71);
#undef ROW
  }
#define ST(r, x0, x1)                                                           \
  do {                                                                          \
    const __m512i cv = _mm512_set1_epi32(corr[r]);                              \
    _mm512_storeu_si512(out + (size_t)(r) * ldo, _mm512_sub_epi32(x0, cv));     \
    _mm512_storeu_si512(out + (size_t)(r) * ldo + 16, _mm512_sub_epi32(x1, cv)); \
  } while (0)
  ST(0, c00, c01); ST(1, c10, c11); ST(2, c20, c21); ST(3, c30, c31);
  ST(4, c40, c41); ST(5, c50, c51); ST(6, c60, c61); ST(7, c70, c71);
#undef ST
}

/* Rows i0 .. i0 + rb - 1 of A into apad (I8_RB rows of 4 kg codes, zero
 * padded), and 128 times each row's sum into corr (the + 128 of the
 * packed codes). */
static void vnni_rows(spr_i8mat *p, const int8_t *A, int lda, int i0, int rb, int32_t *corr,
                      int8_t *apad) {
  const int kg = p->kg, k = p->k;
  memset(apad, 0, (size_t)I8_RB * kg * 4);
  for (int r = 0; r < I8_RB; r++) corr[r] = 0;
  for (int r = 0; r < rb; r++) {
    const int8_t *ar = A + (size_t)(i0 + r) * lda;
    memcpy(apad + (size_t)r * kg * 4, ar, (size_t)k);
    int32_t s = 0;
#pragma omp simd reduction(+ : s)
    for (int t = 0; t < k; t++) s += ar[t];
    corr[r] = 128 * s;
  }
}

/* The tile of vnni_tile, counted instead of stored: lanes j < lim[r] of
 * row r (lim[r] <= 32; 0 for the rows beyond the block) with
 * S[r ldS + j] - product >= t[r].  S is read under the lane masks only. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static int64_t
vnni_tile_count(const int8_t *apad, int kg, const uint8_t *p0, const uint8_t *p1,
                const int32_t *corr, const int32_t *S, size_t lds, const int32_t *t,
                const int *lim) {
  __m512i c[I8_RB][2];
  for (int r = 0; r < I8_RB; r++) c[r][0] = c[r][1] = _mm512_setzero_si512();
  const int stride = 4 * kg;
  for (int g = 0; g < kg; g++) {
    const __m512i b0 = _mm512_load_si512((const void *)(p0 + (size_t)g * 64));
    const __m512i b1 = _mm512_load_si512((const void *)(p1 + (size_t)g * 64));
    const int8_t *a = apad + 4 * g;
    _Pragma("GCC unroll 8") for (int r = 0; r < I8_RB; r++) {
      int32_t w;
      memcpy(&w, a + (size_t)r * stride, 4);
      const __m512i av = _mm512_set1_epi32(w);
      c[r][0] = _mm512_dpbusd_epi32(c[r][0], b0, av);
      c[r][1] = _mm512_dpbusd_epi32(c[r][1], b1, av);
    }
  }
  int64_t cnt = 0;
  _Pragma("GCC unroll 8") for (int r = 0; r < I8_RB; r++) {
    const int l = lim[r];
    const __mmask16 m0 = (__mmask16)(l >= 16 ? 0xFFFFu : (1u << l) - 1u);
    const __mmask16 m1 = (__mmask16)(l >= 32 ? 0xFFFFu : l <= 16 ? 0u : (1u << (l - 16)) - 1u);
    /* S - (c - corr) >= t */
    const __m512i cv = _mm512_set1_epi32(corr[r]), tv = _mm512_set1_epi32(t[r]);
    const int32_t *sr = S + (size_t)r * lds;
    const __m512i s0 = _mm512_maskz_loadu_epi32(m0, sr), s1 = _mm512_maskz_loadu_epi32(m1, sr + 16);
    const __m512i d0 = _mm512_add_epi32(_mm512_sub_epi32(s0, c[r][0]), cv);
    const __m512i d1 = _mm512_add_epi32(_mm512_sub_epi32(s1, c[r][1]), cv);
    cnt += __builtin_popcount(_mm512_mask_cmpge_epi32_mask(m0, d0, tv)) +
           __builtin_popcount(_mm512_mask_cmpge_epi32_mask(m1, d1, tv));
  }
  return cnt;
}

static void vnni_count(spr_i8mat *const *p, int planes, const int8_t *A, int lda, int m,
                       int ncols, const int32_t *S, size_t lds, const int32_t *t, const int *nk,
                       int nested, int64_t *count) {
  const int kg = p[0]->kg, np = (ncols + 15) / 16;
  const size_t pstride = (size_t)kg * 64, astride = (size_t)I8_RB * kg * 4;
  for (int g0 = 0; g0 < m; g0 += I8_CG * I8_RB) {
    /* I8_CG row blocks prepared once for every plane and column tile */
    const int gm = m - g0 < I8_CG * I8_RB ? m - g0 : I8_CG * I8_RB, nb = (gm + I8_RB - 1) / I8_RB;
    int32_t corr[I8_CG][I8_RB];
    for (int b = 0; b < nb; b++) {
      const int i0 = g0 + b * I8_RB, rb = m - i0 < I8_RB ? m - i0 : I8_RB;
      vnni_rows(p[0], A, lda, i0, rb, corr[b], p[0]->apad + b * astride);
    }
    for (int q0 = 0; q0 < np; q0 += 2 * I8_QT) {
      const int q1 = np - q0 < 2 * I8_QT ? np : q0 + 2 * I8_QT;
      for (int b = 0; b < nb; b++) {
        const int i0 = g0 + b * I8_RB, rb = m - i0 < I8_RB ? m - i0 : I8_RB;
        for (int q = q0; q < q1; q += 2) {
          const int j0 = 16 * q;
          int lim[I8_RB] = {0};
          for (int r = 0; r < rb; r++) {
            const int l = nk[i0 + r] - j0;
            lim[r] = l < 0 ? 0 : l > 32 ? 32 : l;
          }
          /* nested: from the last plane down, and none below a plane
           * where the tile counts no pair */
          for (int u = 0; u < planes; u++) {
            const int pl = nested ? planes - 1 - u : u;
            int32_t tr[I8_RB] = {0};
            for (int r = 0; r < rb; r++) tr[r] = t[(size_t)pl * m + i0 + r];
            const uint8_t *p0 = p[pl]->panels + (size_t)q * pstride;
            const uint8_t *p1 = q + 1 < np ? p0 + pstride : p0;
            const int64_t c = vnni_tile_count(p[0]->apad + b * astride, kg, p0, p1, corr[b],
                                              S + (size_t)i0 * lds + j0, lds, tr, lim);
            count[pl] += c;
            if (nested && !c) break;
          }
        }
      }
    }
  }
}

static void vnni_mul(spr_i8mat *p, const int8_t *A, int lda, int m, int ncols, int32_t *C,
                     int ldc) {
  const int kg = p->kg, np = (ncols + 15) / 16;
  const size_t pstride = (size_t)kg * 64;
  for (int i0 = 0; i0 < m; i0 += I8_RB) {
    const int rb = m - i0 < I8_RB ? m - i0 : I8_RB;
    int32_t corr[I8_RB];
    vnni_rows(p, A, lda, i0, rb, corr, p->apad);
    for (int q = 0; q < np; q += 2) {
      /* a lone last panel pairs with itself; its second half is dropped */
      const uint8_t *p0 = p->panels + (size_t)q * pstride;
      const uint8_t *p1 = q + 1 < np ? p0 + pstride : p0;
      const int j0 = 16 * q, nc = ncols - j0 < 32 ? ncols - j0 : 32;
      if (rb == I8_RB && nc == 32) {
        vnni_tile(p->apad, kg, p0, p1, corr, C + (size_t)i0 * ldc + j0, (size_t)ldc);
        continue;
      }
      vnni_tile(p->apad, kg, p0, p1, corr, p->ctile, 32);
      for (int r = 0; r < rb; r++)
        memcpy(C + (size_t)(i0 + r) * ldc + j0, p->ctile + 32 * r, (size_t)nc * sizeof *C);
    }
  }
}
#endif

int spr_i8mat_count_diff_ge(spr_i8mat *const *p, int planes, const int8_t *A, int lda, int m,
                            int ncols, const int32_t *S, size_t lds, const int32_t *t,
                            const int *nk, int nested, int64_t *count) {
  if (!p || planes < 1 || !A || !S || !t || !nk || !count)
    return spr_error(SPR_EINVAL, "i8mat: count: NULL argument or %d planes", planes);
  for (int pl = 0; pl < planes; pl++) {
    if (!p[pl]) return spr_error(SPR_EINVAL, "i8mat: count: plane %d is NULL", pl);
    if (m < 0 || m > p[pl]->rows_max || ncols < 0 || ncols > p[pl]->n || lda < p[pl]->k ||
        lds < (size_t)ncols)
      return spr_error(SPR_EINVAL, "i8mat: count: %d rows (at most %d), %d columns (at most %d), "
                       "leading dimensions %d, %zu", m, p[pl]->rows_max, ncols, p[pl]->n, lda, lds);
    if (p[pl]->k != p[0]->k || p[pl]->vnni != p[0]->vnni)
      return spr_error(SPR_EINVAL, "i8mat: count: plane %d has %d codes per row, plane 0 %d", pl,
                       p[pl]->k, p[0]->k);
    count[pl] = 0;
  }
  for (int i = 0; i < m; i++)
    if (nk[i] < 0 || nk[i] > ncols)
      return spr_error(SPR_EINVAL, "i8mat: count: row %d sees %d columns (of %d)", i, nk[i], ncols);
#if SPR_HAVE_VNNI_KERNEL
  if (p[0]->vnni) {
    if (m > 0 && ncols > 0) vnni_count(p, planes, A, lda, m, ncols, S, lds, t, nk, nested != 0, count);
    return 0;
  }
#endif
  return spr_error(SPR_EINVAL, "i8mat: count: needs the VNNI path (this CPU or build has none)");
}

int spr_i8mat_mul(spr_i8mat *p, const int8_t *A, int lda, int m, int ncols, int32_t *C, int ldc) {
  if (!p || !A || !C) return spr_error(SPR_EINVAL, "i8mat: mul: NULL argument");
  if (m < 0 || m > p->rows_max || ncols < 0 || ncols > p->n || lda < p->k || ldc < ncols)
    return spr_error(SPR_EINVAL, "i8mat: mul: %d rows (at most %d), %d columns (at most %d), "
                     "leading dimensions %d, %d", m, p->rows_max, ncols, p->n, lda, ldc);
  if (m == 0 || ncols == 0) return 0;
  const int k = p->k;
#if SPR_HAVE_VNNI_KERNEL
  if (p->vnni) {
    vnni_mul(p, A, lda, m, ncols, C, ldc);
    return 0;
  }
#endif
  int am = 0;
  for (int i = 0; i < m; i++)
    for (int t = 0; t < k; t++) {
      const int v = A[(size_t)i * lda + t];
      am = v < 0 ? (-v > am ? -v : am) : (v > am ? v : am);
    }
  if ((int64_t)am * p->bmax * k <= ((int64_t)1 << 24)) {
    for (int i = 0; i < m; i++)
      for (int t = 0; t < k; t++) p->af[(size_t)i * k + t] = (float)A[(size_t)i * lda + t];
    int rc = spr_matf_gemm(1.0f, spr_matf_view(p->af, m, k), 0, spr_matf_view(p->bf, ncols, k), 1,
                           0.0f, spr_matf_view(p->cf, m, ncols));
    if (rc) return rc;
    for (int i = 0; i < m; i++)
      for (int j = 0; j < ncols; j++) C[(size_t)i * ldc + j] = (int32_t)p->cf[(size_t)i * ncols + j];
    return 0;
  }
  for (int i = 0; i < m; i++)
    for (int j = 0; j < ncols; j++) {
      const int8_t *a = A + (size_t)i * lda, *b = p->b + (size_t)j * k;
      int64_t s = 0;
      for (int t = 0; t < k; t++) s += (int32_t)a[t] * b[t];
      C[(size_t)i * ldc + j] = (int32_t)s;
    }
  return 0;
}
