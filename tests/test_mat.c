/* test_mat.c - matrix views and the checked GEMM against a triple loop;
 * exact int8 products against int64 loops; the vectorised exp against
 * the double exp. */
#include "config.h"
#include "spr_error.h"
#include "spr_mat.h"
#include "spr_test.h"
#include "spr_vmath.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

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

/* xorshift for test data */
static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}

/* C = A B^T of random codes in [-lim, lim] against int64 loops: both paths
 * (VNNI when the CPU has it, then the portable one), shapes that are not
 * multiples of the tiles, column prefixes, strided rows, extreme codes. */
static void check_i8(int m, int n, int k, int lim, int portable) {
  const int lda = k + 3, ldb = k + 1, ldc = n + 5;
  int8_t *A = malloc((size_t)m * lda), *B = malloc((size_t)n * ldb);
  int32_t *C = malloc((size_t)m * ldc * sizeof *C);
  for (int i = 0; i < m * lda; i++) A[i] = (int8_t)((int)(rnd() % (2 * lim + 1)) - lim);
  for (int i = 0; i < n * ldb; i++) B[i] = (int8_t)((int)(rnd() % (2 * lim + 1)) - lim);
  if (lim == 128) { /* the extremes: -128 everywhere in one row and column */
    for (int t = 0; t < k; t++) A[t] = B[t] = -128;
  }
  spr__i8mat_force_portable(portable);
  spr_i8mat *p;
  CU_ASSERT_EQUAL_FATAL(spr_i8mat_alloc(n + 7, k, m, &p), 0);
  if (portable) CU_ASSERT_EQUAL(spr_i8mat_vnni(p), 0);
  CU_ASSERT_EQUAL_FATAL(spr_i8mat_pack(p, B, n, k, ldb), 0);
  for (int pass = 0; pass < 2; pass++) {
    const int nc = pass ? n - n / 3 : n; /* the first columns only */
    for (int i = 0; i < m * ldc; i++) C[i] = 0x5a5a5a5a;
    CU_ASSERT_EQUAL_FATAL(spr_i8mat_mul(p, A, lda, m, nc, C, ldc), 0);
    int bad = 0, untouched = 1;
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) {
        int64_t s = 0;
        for (int t = 0; t < k; t++) s += (int64_t)A[(size_t)i * lda + t] * B[(size_t)j * ldb + t];
        if (j < nc) bad += C[(size_t)i * ldc + j] != s;
        else untouched &= C[(size_t)i * ldc + j] == 0x5a5a5a5a;
      }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(untouched);
  }
  spr_i8mat_free(p);
  spr__i8mat_force_portable(0);
  free(A);
  free(B);
  free(C);
}

static void test_i8_products(void) {
  const int shapes[][4] = {{1, 1, 1, 7}, {3, 17, 5, 8}, {9, 33, 64, 127}, {20, 47, 63, 128},
                           {64, 64, 16, 7}, {13, 100, 130, 128}, {8, 16, 4, 1}};
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
    for (int portable = 0; portable < 2; portable++)
      check_i8(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], portable);
  /* the int64 fallback of the portable path: max|a| max|b| k > 2^24 */
  check_i8(5, 9, 1100, 128, 1);
  /* masked packing: the products of B & mask, both paths */
  for (int portable = 0; portable < 2; portable++) {
    const int m = 11, n = 23, k = 37;
    int8_t A[11 * 37], B[23 * 37], Bm[23 * 37];
    int32_t C[11 * 23], C2[11 * 23];
    for (int i = 0; i < m * k; i++) A[i] = (int8_t)((int)(rnd() % 255) - 127);
    for (int i = 0; i < n * k; i++) {
      B[i] = (int8_t)((int)(rnd() % 255) - 127);
      Bm[i] = (int8_t)(B[i] & 0x1f);
    }
    spr__i8mat_force_portable(portable);
    spr_i8mat *p;
    CU_ASSERT_FATAL(spr_i8mat_alloc(n, k, m, &p) == 0);
    CU_ASSERT_FATAL(spr_i8mat_pack_masked(p, B, n, k, k, 0x1f) == 0);
    CU_ASSERT_FATAL(spr_i8mat_mul(p, A, k, m, n, C, n) == 0);
    CU_ASSERT_FATAL(spr_i8mat_pack(p, Bm, n, k, k) == 0);
    CU_ASSERT_FATAL(spr_i8mat_mul(p, A, k, m, n, C2, n) == 0);
    CU_ASSERT(memcmp(C, C2, sizeof C) == 0);
    int64_t s00 = 0;
    for (int t = 0; t < k; t++) s00 += (int64_t)A[t] * (B[t] & 0x1f);
    CU_ASSERT_EQUAL(C[0], s00);
    spr_i8mat_free(p);
    spr__i8mat_force_portable(0);
  }
}

/* spr_i8mat_count_diff_ge against int64 loops: three planes of keys at
 * once and one alone, random thresholds around the differences, per-row
 * column limits (a causal block's), edge tiles; the VNNI path only (the
 * portable one refuses). */
static void check_count(int m, int n, int k, int portable) {
  enum { NP = 3 };
  const int lda = k + 2, ldb = k, lds = n + 3;
  int8_t *A = malloc((size_t)m * lda), *B = malloc((size_t)NP * n * ldb);
  int32_t *S = malloc((size_t)m * lds * sizeof *S), *t = malloc((size_t)NP * m * sizeof *t);
  int *nk = malloc((size_t)m * sizeof *nk);
  for (int i = 0; i < m * lda; i++) A[i] = (int8_t)((int)(rnd() % 255) - 127);
  for (int i = 0; i < NP * n * ldb; i++) B[i] = (int8_t)(rnd() % 128); /* low bits: >= 0 */
  for (int i = 0; i < m * lds; i++) S[i] = (int32_t)(rnd() % 400001) - 200000;
  spr__i8mat_force_portable(portable);
  spr_i8mat *p[NP];
  for (int l = 0; l < NP; l++) {
    CU_ASSERT_EQUAL_FATAL(spr_i8mat_alloc(n, k, m, &p[l]), 0);
    CU_ASSERT_EQUAL_FATAL(spr_i8mat_pack(p[l], B + (size_t)l * n * ldb, n, k, ldb), 0);
  }
  for (int pass = 0; pass < 3; pass++) {
    const int nc = pass == 2 ? n - n / 4 : n, planes = pass == 1 ? 1 : NP;
    for (int i = 0; i < m; i++) nk[i] = pass == 0 ? nc : (int)(rnd() % (uint64_t)(nc + 1));
    for (int i = 0; i < NP * m; i++) t[i] = (int32_t)(rnd() % 200001) - 100000;
    if (m > 1) t[1] = INT32_MAX;  /* nothing passes */
    if (m > 2) t[2] = -INT32_MAX; /* everything passes */
    int64_t want[NP] = {0}, got[NP] = {-1, -1, -1};
    for (int l = 0; l < planes; l++)
      for (int i = 0; i < m; i++)
        for (int j = 0; j < nk[i]; j++) {
          int64_t dot = 0;
          const int8_t *bj = B + ((size_t)l * n + j) * ldb;
          for (int u = 0; u < k; u++) dot += (int64_t)A[(size_t)i * lda + u] * bj[u];
          want[l] += S[(size_t)i * lds + j] - dot >= t[(size_t)l * m + i];
        }
    const int rc = spr_i8mat_count_diff_ge(p, planes, A, lda, m, nc, S, (size_t)lds, t, nk, 0, got);
    if (spr_i8mat_vnni(p[0])) {
      CU_ASSERT_EQUAL(rc, 0);
      for (int l = 0; l < planes; l++) CU_ASSERT_EQUAL(got[l], want[l]);
    } else {
      CU_ASSERT_EQUAL(rc, SPR_EINVAL);
      SPR_ASSERT_CONTAINS(spr_errmsg(), "needs the VNNI path");
    }
  }
  for (int l = 0; l < NP; l++) spr_i8mat_free(p[l]);
  spr__i8mat_force_portable(0);
  free(A);
  free(B);
  free(S);
  free(t);
  free(nk);
}

/* nested = 1 on LeOPArd's planes (digital/spr_baselines.c), against int64
 * loops plane by plane: keys K of 8-bit codes, plane l the low l + 1 bits
 * (K mod 2^(l+1)), S = A K exactly, thresholds T_i - (2^(l+1) - 1)
 * sum_u max(A_iu, 0): the pairs are nested, and the counts skipped below
 * a tile's empty plane are the zeros the loops find.  Rows of the
 * threshold INT32_MAX count nothing at any plane (whole tiles skip), rows
 * whose T is their largest score a few pairs, then none. */
static void check_count_nested(int m, int n, int k) {
  enum { NP = 7 };
  int8_t *A = malloc((size_t)m * k), *K = malloc((size_t)n * k), *B = malloc((size_t)NP * n * k);
  int32_t *S = malloc((size_t)m * n * sizeof *S), *t = malloc((size_t)NP * m * sizeof *t);
  int *nk = malloc((size_t)m * sizeof *nk);
  for (int i = 0; i < m * k; i++) A[i] = (int8_t)((int)(rnd() % 255) - 127);
  for (int i = 0; i < n * k; i++) K[i] = (int8_t)((int)(rnd() % 256) - 128);
  for (int l = 0; l < NP; l++)
    for (int i = 0; i < n * k; i++) B[(size_t)l * n * k + i] = (int8_t)(K[i] & ((2 << l) - 1));
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      int64_t dot = 0;
      for (int u = 0; u < k; u++) dot += (int64_t)A[(size_t)i * k + u] * K[(size_t)j * k + u];
      S[(size_t)i * n + j] = (int32_t)dot;
    }
  spr_i8mat *p[NP];
  for (int l = 0; l < NP; l++) {
    CU_ASSERT_EQUAL_FATAL(spr_i8mat_alloc(n, k, m, &p[l]), 0);
    CU_ASSERT_EQUAL_FATAL(spr_i8mat_pack(p[l], B + (size_t)l * n * k, n, k, k), 0);
  }
  for (int i = 0; i < m; i++) {
    int64_t qpos = 0;
    for (int u = 0; u < k; u++) qpos += A[(size_t)i * k + u] > 0 ? A[(size_t)i * k + u] : 0;
    /* by blocks of 8 rows (the tiles'): a random score of the row, none,
     * or the row's largest (few pairs, then none, from plane to plane) */
    int64_t T = S[(size_t)i * n + (int)(rnd() % (uint64_t)n)];
    if (i / 8 % 3 == 1) T = INT32_MAX;
    if (i / 8 % 3 == 2)
      for (int j = 0; j < n; j++) T = S[(size_t)i * n + j] > T ? S[(size_t)i * n + j] : T;
    for (int l = 0; l < NP; l++) {
      int64_t tt = T - (((int64_t)2 << l) - 1) * qpos;
      t[(size_t)l * m + i] = (int32_t)(tt > INT32_MAX ? INT32_MAX : tt < -INT32_MAX ? -INT32_MAX : tt);
    }
    nk[i] = i % 4 == 3 ? (int)(rnd() % (uint64_t)(n + 1)) : n;
  }
  int64_t want[NP] = {0}, got[NP];
  for (int l = 0; l < NP; l++)
    for (int i = 0; i < m; i++)
      for (int j = 0; j < nk[i]; j++) {
        int64_t dot = 0;
        const int8_t *bj = B + ((size_t)l * n + j) * k;
        for (int u = 0; u < k; u++) dot += (int64_t)A[(size_t)i * k + u] * bj[u];
        want[l] += S[(size_t)i * n + j] - dot >= t[(size_t)l * m + i];
      }
  /* nested indeed, and not trivially: the finest plane counts fewer */
  for (int l = 0; l + 1 < NP; l++) CU_ASSERT(want[l] <= want[l + 1]);
  CU_ASSERT(want[0] > 0 && want[0] < want[NP - 1]);
  const int rc = spr_i8mat_count_diff_ge(p, NP, A, k, m, n, S, (size_t)n, t, nk, 1, got);
  if (spr_i8mat_vnni(p[0])) {
    CU_ASSERT_EQUAL(rc, 0);
    for (int l = 0; l < NP; l++) CU_ASSERT_EQUAL(got[l], want[l]);
  }
  for (int l = 0; l < NP; l++) spr_i8mat_free(p[l]);
  free(A);
  free(K);
  free(B);
  free(S);
  free(t);
  free(nk);
}

static void test_i8_count(void) {
  /* the last: two groups of row blocks, two column tiles (spr_mat.c) */
  const int shapes[][3] = {{1, 1, 1}, {8, 32, 64}, {13, 47, 63}, {64, 512, 64}, {9, 100, 130},
                           {70, 2100, 20}};
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
    for (int portable = 0; portable < 2; portable++)
      check_count(shapes[s][0], shapes[s][1], shapes[s][2], portable);
  check_count_nested(64, 512, 64);
  check_count_nested(70, 2100, 20);
  check_count_nested(13, 47, 63);
  /* errors */
  spr_i8mat *p[2];
  CU_ASSERT_EQUAL_FATAL(spr_i8mat_alloc(4, 8, 2, &p[0]), 0);
  CU_ASSERT_EQUAL_FATAL(spr_i8mat_alloc(4, 8, 2, &p[1]), 0);
  int8_t b[32] = {0}, a[16] = {0};
  int32_t S[8] = {0}, t[4] = {0};
  int nk[2] = {4, 5};
  int64_t cnt[2];
  CU_ASSERT_EQUAL_FATAL(spr_i8mat_pack(p[0], b, 4, 8, 8), 0);
  CU_ASSERT_EQUAL_FATAL(spr_i8mat_pack(p[1], b, 4, 7, 8), 0);
  CU_ASSERT_EQUAL(spr_i8mat_count_diff_ge(p, 1, a, 8, 2, 4, S, 4, t, nk, 0, cnt), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "row 1 sees 5 columns (of 4)");
  nk[1] = 4;
  CU_ASSERT_EQUAL(spr_i8mat_count_diff_ge(p, 2, a, 8, 2, 4, S, 4, t, nk, 0, cnt), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "plane 1 has 7 codes per row, plane 0 8");
  CU_ASSERT_EQUAL(spr_i8mat_count_diff_ge(p, 1, a, 8, 3, 4, S, 4, t, nk, 0, cnt), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "3 rows (at most 2)");
  CU_ASSERT_EQUAL(spr_i8mat_count_diff_ge(p, 1, a, 8, 2, 4, S, 3, t, nk, 0, cnt), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "leading dimensions 8, 3");
  CU_ASSERT_EQUAL(spr_i8mat_count_diff_ge(p, 1, a, 8, 2, 4, NULL, 4, t, nk, 0, cnt), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "count: NULL argument");
  CU_ASSERT_EQUAL(spr_i8mat_count_diff_ge(p, 0, a, 8, 2, 4, S, 4, t, nk, 0, cnt), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "0 planes");
  spr_i8mat *pn[2] = {p[0], NULL};
  CU_ASSERT_EQUAL(spr_i8mat_count_diff_ge(pn, 2, a, 8, 2, 4, S, 4, t, nk, 0, cnt), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "plane 1 is NULL");
  spr_i8mat_free(p[0]);
  spr_i8mat_free(p[1]);
}

static void test_i8_errors(void) {
  spr_i8mat *p = (spr_i8mat *)1;
  CU_ASSERT_EQUAL(spr_i8mat_alloc(0, 4, 4, &p), SPR_EINVAL);
  CU_ASSERT_PTR_NULL(p);
  CU_ASSERT_EQUAL(spr_i8mat_alloc(4, 65537, 4, &p), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "k 65537");
  CU_ASSERT_EQUAL_FATAL(spr_i8mat_alloc(4, 8, 2, &p), 0);
  int8_t b[40] = {0}, a[24] = {0};
  int32_t c[16];
  CU_ASSERT_EQUAL(spr_i8mat_pack(p, b, 5, 8, 8), SPR_EINVAL); /* 5 rows > 4 */
  SPR_ASSERT_CONTAINS(spr_errmsg(), "beyond the allocation");
  CU_ASSERT_EQUAL(spr_i8mat_pack(p, NULL, 4, 8, 8), SPR_EINVAL);
  CU_ASSERT_EQUAL_FATAL(spr_i8mat_pack(p, b, 4, 8, 8), 0);
  CU_ASSERT_EQUAL(spr_i8mat_mul(p, a, 8, 3, 4, c, 4), SPR_EINVAL); /* 3 rows > 2 */
  SPR_ASSERT_CONTAINS(spr_errmsg(), "3 rows (at most 2)");
  CU_ASSERT_EQUAL(spr_i8mat_mul(p, a, 8, 2, 5, c, 5), SPR_EINVAL); /* 5 columns > 4 */
  CU_ASSERT_EQUAL(spr_i8mat_mul(p, a, 8, 2, 4, NULL, 4), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_i8mat_mul(p, a, 8, 0, 4, c, 4), 0);
  spr_i8mat_free(p);
  spr_i8mat_free(NULL);
}

/* ulps between y and the true value r (ulp of the float nearest r) */
static double ulps(float y, double r) {
  int e;
  frexp(r, &e);
  return fabs((double)y - r) / ldexp(1.0, e - 24);
}

/* spr_vexpf within SPR_VEXPF_ULP of the double exp on a dense sample of
 * every float exponent range the result is normal for, the edges, and the
 * fused exp-and-sum against a long double sum. */
static void test_vexpf(void) {
  enum { N = 1 << 16 };
  static float x[N], y[N];
  double worst = 0;
  for (int rep = 0; rep < 64; rep++) {
    for (int i = 0; i < N; i++) {
      /* a uniform in [-87.33, 88.72) and, every fourth, a tiny one */
      const double u = (double)(rnd() >> 11) * 0x1p-53;
      x[i] = (float)(i % 4 ? -87.33 + u * (88.72 + 87.33) : (u - 0.5) * 1e-3);
    }
    spr_vexpf(x, y, N - rep); /* odd lengths: the tail */
    for (int i = 0; i < N - rep; i++) {
      const double e = ulps(y[i], exp((double)x[i]));
      worst = e > worst ? e : worst;
    }
  }
  CU_ASSERT(worst < SPR_VEXPF_ULP);
  const float ex[] = {0.0f, -0.0f, 1.0f, -1.0f, 88.72f, -87.33f, 1e-30f, -1e-30f};
  float ey[8];
  spr_vexpf(ex, ey, 8);
  CU_ASSERT_EQUAL(ey[0], 1.0f);
  CU_ASSERT_EQUAL(ey[1], 1.0f);
  for (int i = 2; i < 8; i++) CU_ASSERT(ulps(ey[i], exp((double)ex[i])) < SPR_VEXPF_ULP);
  /* beyond the range: 0, +inf; NaN stays NaN; in place */
  float big[5] = {-87.5f, -1000.0f, 88.73f, 1000.0f, NAN};
  spr_vexpf(big, big, 5);
  CU_ASSERT(big[0] == 0.0f && big[1] == 0.0f);
  CU_ASSERT(isinf(big[2]) && isinf(big[3]) && big[2] > 0);
  CU_ASSERT(isnan(big[4]));
  /* exp(x - m) and the sum: every term as spr_vexpf, the sum within the
   * rounding of 1000 float additions of positive terms */
  for (int n = 1; n <= 1000; n += 37) {
    float v[1000], w[1000], w2[1000], m = -1e30f;
    for (int i = 0; i < n; i++) {
      v[i] = (float)((double)(rnd() % 20000) / 1000.0 - 12.0);
      m = v[i] > m ? v[i] : m;
    }
    const float s = spr_vexpf_sub_sum(v, m, w, n);
    long double ref = 0;
    int same = 1;
    for (int i = 0; i < n; i++) {
      float t = v[i] - m;
      spr_vexpf(&t, &w2[i], 1);
      same &= w2[i] == w[i];
      ref += w[i];
    }
    CU_ASSERT(same);
    CU_ASSERT(fabsl((long double)s - ref) <= (long double)n * FLT_EPSILON * ref);
    /* spr_vsum16 adds in the same order: the same float; against 16
     * interleaved sums and their pairwise tree written out here */
    CU_ASSERT(spr_vsum16(w, n) == s);
    float l[16] = {0};
    for (int i = 0; i < n; i++) l[i % 16] += w[i];
    for (int h = 8; h >= 1; h /= 2)
      for (int u = 0; u < h; u++) l[u] += l[u + h];
    CU_ASSERT(l[0] == s);
  }
}

/* The non-positive variants against spr_vexpf bit for bit: every 61st
 * float of [-88.5, 0] by bit pattern (18 million; every float of the
 * range, 1.1e9, agreed when the kernel was written), the range's edges,
 * -0, -inf and subnormal inputs; the fused sum too, odd lengths and a
 * shift m included. */
static void test_vexpf_nonpos(void) {
  enum { N = 1 << 16 };
  static float x[N], y[N], z[N];
  const uint32_t top = 0xC2B10000u; /* -88.5f */
  int same = 1;
  uint32_t b = 0x80000000u;
  while (b <= top) {
    int n = 0;
    for (; n < N && b <= top; n++, b += 61) memcpy(&x[n], &b, sizeof b);
    spr_vexpf(x, y, n);
    spr_vexpf_nonpos(x, z, n);
    same &= memcmp(y, z, (size_t)n * sizeof *y) == 0;
  }
  CU_ASSERT(same);
  const float ex[] = {0.0f, -0.0f, -87.33654475f, -87.336544f, -87.33655f, -88.5f, -88.49f, -100.0f,
                      -INFINITY, -1e-45f, -1e-38f, -0.34657359f, -0.3465736f, -86.6433976f,
                      -0.5f * 0.693147f, -FLT_MIN};
  const int ne = (int)(sizeof ex / sizeof *ex);
  float ey[16], ez[16];
  spr_vexpf(ex, ey, ne);
  spr_vexpf_nonpos(ex, ez, ne);
  CU_ASSERT(memcmp(ey, ez, (size_t)ne * sizeof *ey) == 0);
  CU_ASSERT(ez[0] == 1.0f && ez[1] == 1.0f && ez[8] == 0.0f && ez[7] == 0.0f);
  for (int n = 1; n <= 1000; n += 37) {
    float v[1000], w[1000], w2[1000], m = -1e30f;
    for (int i = 0; i < n; i++) {
      v[i] = i % 7 == 3 ? -INFINITY : (float)((double)(rnd() % 200000) / 1000.0 - 120.0);
      m = v[i] > m ? v[i] : m;
    }
    const float s = spr_vexpf_sub_sum(v, m, w, n), s2 = spr_vexpf_sub_sum_nonpos(v, m, w2, n);
    CU_ASSERT(s == s2);
    CU_ASSERT(memcmp(w, w2, (size_t)n * sizeof *w) == 0);
    CU_ASSERT(spr_vexpf_sub_sum_nonpos(v, m, v, n) == s); /* in place */
    CU_ASSERT(memcmp(v, w, (size_t)n * sizeof *w) == 0);
  }
}

/* Comparison bits and counts against one value at a time: every length
 * from 1 to 200 (whole and partial vectors, a partial last byte), values
 * around the threshold and at the ends of int32. */
static void test_vbits(void) {
  int32_t s[200], d[200];
  uint8_t out[26];
  int ok = 1;
  for (int n = 1; n <= 200; n++) {
    const int32_t t = (int32_t)(rnd() % 7) - 3;
    for (int j = 0; j < n; j++) {
      s[j] = (int32_t)(rnd() % 9) - 4;
      d[j] = (int32_t)(rnd() % 5) - 2;
    }
    if (n > 3) {
      s[0] = INT32_MIN;
      s[1] = INT32_MAX;
    }
    memset(out, 0xAA, sizeof out);
    int64_t cnt = 0, cd = 0;
    for (int j = 0; j < n; j++) {
      cnt += s[j] >= t;
      if (j > 1 || n <= 3) cd += s[j] - d[j] >= t;
    }
    ok &= spr_vbits_ge_i32(s, n, t, out) == cnt;
    for (int j = 0; j < 8 * ((n + 7) / 8); j++)
      ok &= (out[j >> 3] >> (j & 7) & 1) == (j < n && s[j] >= t);
    ok &= out[(n + 7) / 8] == 0xAA; /* nothing written beyond */
    /* the int16 bits: the same values (the ends of int16 instead), and
     * thresholds beyond int16 */
    int16_t h[200];
    for (int j = 0; j < n; j++) h[j] = (int16_t)(s[j] < INT16_MIN ? INT16_MIN : s[j] > INT16_MAX ? INT16_MAX : s[j]);
    const int32_t ts[3] = {t, INT16_MAX + 1, INT16_MIN};
    for (int q = 0; q < 3; q++) {
      int64_t c16 = 0;
      for (int j = 0; j < n; j++) c16 += h[j] >= ts[q];
      memset(out, 0xAA, sizeof out);
      ok &= spr_vbits_ge_i16(h, n, ts[q], out) == c16;
      for (int j = 0; j < 8 * ((n + 7) / 8); j++)
        ok &= (out[j >> 3] >> (j & 7) & 1) == (j < n && h[j] >= ts[q]);
      ok &= out[(n + 7) / 8] == 0xAA;
    }
    ok &= spr_vcount_ge_i32(s, n, t) == cnt;
    if (n > 3) ok &= spr_vcount_diff_ge_i32(s + 2, d + 2, n - 2, t) == cd;
    /* least, largest, count and first of a value */
    int32_t mn = s[0], mx = s[0], gmn = 0, gmx = 0;
    int eq = 0, first = n, gfirst = -1;
    for (int j = 0; j < n; j++) {
      mn = s[j] < mn ? s[j] : mn;
      mx = s[j] > mx ? s[j] : mx;
      if (s[j] == t) {
        if (!eq) first = j;
        eq++;
      }
    }
    spr_vminmax_i32(s, n, &gmn, &gmx);
    ok &= gmn == mn && gmx == mx;
    spr_vminmax_i32(s, n, NULL, &gmx);
    ok &= gmx == mx;
    ok &= spr_vcount_eq_i32(s, n, t, &gfirst) == eq && gfirst == first;
    ok &= spr_vcount_eq_i32(s, n, 99, &gfirst) == 0 && gfirst == n; /* none */
  }
  CU_ASSERT(ok);
}

int main(void) {
  CU_TestInfo tests[] = {{"comparison bits, counts, minima and maxima vs one at a time", test_vbits},{"gemm on blocks vs loops", test_gemm_vs_loops},
                         {"gemm shape errors", test_gemm_shape_errors},
                         {"int8 products vs int64 loops, both paths", test_i8_products},
                         {"int8 products: errors", test_i8_errors},
                         {"int8 plane counts vs int64 loops (VNNI) and their errors", test_i8_count},
                         {"vectorised exp vs double exp", test_vexpf},
                         {"exp of non-positive inputs vs spr_vexpf", test_vexpf_nonpos},
                         CU_TEST_INFO_NULL};
  return spr_test_run("mat", tests);
}
