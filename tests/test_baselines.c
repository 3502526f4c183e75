/* test_baselines.c - every baseline mask against a brute-force reference
 * written here (integer loops, long double softmax, explicit bit-prefix
 * sums), hand-checked patterns, and every error path. */
#include "config.h"
#include "spr_baselines.h"
#include "spr_mat.h"
#include "spr_error.h"
#include "spr_quant.h"
#include "spr_result.h"
#include "spr_test.h"

#include <math.h>
#include <stdint.h>

enum { NMAX = 40, DMAX = 16 };

/* ---- independent helpers ---------------------------------------------- */

static uint64_t sm_state;
static uint64_t sm_next(void) { /* splitmix64 */
  uint64_t z = (sm_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static double sm_unif(void) { return (double)(sm_next() >> 11) * 0x1p-53; }

/* Q, K: n x d.  coarse: values in {-1.5, -0.75, 0, 0.75, 1.5} and every
 * third key a copy of an earlier one, so scores tie often; otherwise
 * smooth values in (-2.385, 2.385). */
static void gen(float *Q, float *K, int n, int d, uint64_t seed, int coarse) {
  sm_state = seed;
  for (int t = 0; t < n * d; t++) {
    if (coarse) {
      Q[t] = (float)(0.75 * ((int)(sm_next() % 5) - 2));
      K[t] = (float)(0.75 * ((int)(sm_next() % 5) - 2));
    } else {
      Q[t] = (float)(2.385 * (2 * sm_unif() - 1));
      K[t] = (float)(2.385 * (2 * sm_unif() - 1));
    }
  }
  if (coarse)
    for (int j = 3; j < n; j += 3) memcpy(K + j * d, K + (j - 2) * d, sizeof(float) * d);
}

static int bit(const uint8_t *mask, int n, int i, int j) {
  return mask[(size_t)i * spr_mask_row_bytes(n) + j / 8] >> (j % 8) & 1;
}

static void put(uint8_t *mask, int n, int i, int j) {
  mask[(size_t)i * spr_mask_row_bytes(n) + j / 8] |= (uint8_t)(1 << (j % 8));
}

static size_t mask_bytes(int n) { return (size_t)n * spr_mask_row_bytes(n); }

/* Codes and exact scores by plain loops. */
static void ref_scores(const float *Q, const float *K, int n, int d, int qb, int kb,
                       int8_t *qc, int8_t *kc, int64_t *S, float *qs, float *ks) {
  CU_ASSERT_EQUAL_FATAL(spr_quant_sym(Q, (size_t)n * d, qb, qc, qs), 0);
  CU_ASSERT_EQUAL_FATAL(spr_quant_sym(K, (size_t)n * d, kb, kc, ks), 0);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      int64_t s = 0;
      for (int t = 0; t < d; t++) s += (int64_t)qc[i * d + t] * kc[j * d + t];
      S[i * n + j] = s;
    }
}

static int64_t popcount_mask(const uint8_t *m, int n) {
  int64_t c = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) c += bit(m, n, i, j);
  return c;
}

static spr_bl_ws ws;
static float Qb[NMAX * 1200], Kb[NMAX * 1200];
static int8_t qcb[NMAX * 1200], kcb[NMAX * 1200];
static int64_t Sb[NMAX * NMAX];
static uint8_t M[NMAX * 8], R[NMAX * 8];

static const int shapes[][2] = {{21, 8}, {33, 16}, {40, 11}, {8, 9}, {1, 3}};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };

/* ---- dense -------------------------------------------------------------- */

static void test_dense(void) {
  const int ns[] = {1, 7, 8, 13, 40};
  for (unsigned c = 0; c < sizeof ns / sizeof ns[0]; c++) {
    const int n = ns[c];
    memset(M, 0xAB, sizeof M);
    spr_bl_stats st;
    CU_ASSERT_EQUAL_FATAL(spr_bl_dense(n, M, &st), 0);
    memset(R, 0, sizeof R);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) put(R, n, i, j);
    CU_ASSERT_EQUAL(memcmp(M, R, mask_bytes(n)), 0); /* padding bits are 0 */
    CU_ASSERT_EQUAL(st.n_kept, (int64_t)n * n);
    CU_ASSERT_EQUAL(st.keep_rate, 1.0);
    CU_ASSERT_EQUAL(st.mac_ops + st.exp_ops + st.cmp_ops + st.key_bits_processed, 0);
  }
  CU_ASSERT_EQUAL(spr_bl_dense(5, M, NULL), 0); /* stats optional */
}

/* ---- oracle ------------------------------------------------------------ */

static void check_oracle(int n, int d, int qb, int kb, double thr) {
  spr_bl_oracle_params p;
  spr_bl_oracle_default(&p);
  p.q_bits = qb;
  p.k_bits = kb;
  p.threshold = thr;
  float qs, ks;
  ref_scores(Qb, Kb, n, d, qb, kb, qcb, kcb, Sb, &qs, &ks);
  memset(R, 0, sizeof R);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if ((double)Sb[i * n + j] >= thr) put(R, n, i, j);
  spr_bl_stats st;
  memset(M, 0x5A, sizeof M);
  CU_ASSERT_EQUAL_FATAL(spr_bl_oracle(&p, Qb, Kb, n, d, &ws, M, &st), 0);
  CU_ASSERT_EQUAL(memcmp(M, R, mask_bytes(n)), 0);
  CU_ASSERT_EQUAL(st.n_kept, popcount_mask(R, n));
  CU_ASSERT_EQUAL(st.mac_ops, (int64_t)n * n * d);
  CU_ASSERT_EQUAL(st.cmp_ops, (int64_t)n * n);
  CU_ASSERT_EQUAL(st.mac_q_bits, qb);
  CU_ASSERT_EQUAL(st.mac_k_bits, kb);
  CU_ASSERT_EQUAL(st.q_scale, qs);
  CU_ASSERT_EQUAL(st.k_scale, ks);
  CU_ASSERT_EQUAL(st.threshold, thr);
}

static void test_oracle_vs_brute(void) {
  const int bits[][2] = {{8, 8}, {4, 8}, {4, 4}, {2, 6}};
  int cases = 0;
  for (int sh = 0; sh < NSHAPES; sh++)
    for (int coarse = 0; coarse < 2; coarse++)
      for (uint64_t seed = 1; seed <= 3; seed++)
        for (int b = 0; b < 4; b++) {
          const int n = shapes[sh][0], d = shapes[sh][1];
          gen(Qb, Kb, n, d, seed * 7919 + sh, coarse);
          float qs, ks;
          ref_scores(Qb, Kb, n, d, bits[b][0], bits[b][1], qcb, kcb, Sb, &qs, &ks);
          /* thresholds on a score (ties kept), between scores, extremes */
          const double thr[] = {(double)Sb[(n * n) / 3], (double)Sb[(n * n) / 2] + 0.5,
                                -2.385, 0.0, 1e9, -1e9};
          for (int t = 0; t < 6; t++, cases++) check_oracle(n, d, bits[b][0], bits[b][1], thr[t]);
        }
  CU_ASSERT(cases > 200);
}

/* d large enough that max|q| max|k| d > 2^24: the int64 path. */
static void test_oracle_wide(void) {
  const int n = 5, d = 1100;
  spr_bl_ws big;
  CU_ASSERT_EQUAL_FATAL(spr_bl_ws_alloc(&big, n, d), 0);
  sm_state = 99;
  for (int t = 0; t < n * d; t++) {
    Qb[t] = (float)(sm_unif() < 0.9 ? 1.0 : 0.9);
    Kb[t] = (float)(sm_unif() < 0.9 ? 1.0 : 0.95);
  }
  Qb[0] = Kb[0] = 1.0f;
  float qs, ks;
  ref_scores(Qb, Kb, n, d, 8, 8, qcb, kcb, Sb, &qs, &ks);
  CU_ASSERT(Sb[0] > (1 << 24)); /* float GEMM could not be exact here */
  int odd = 0;
  for (int t = 0; t < n * n; t++) odd += Sb[t] > (1 << 24) && (Sb[t] & 1);
  CU_ASSERT(odd > 3); /* scores a float cannot hold */
  /* a threshold on each score and one above it: any rounded score flips
   * one of the two decisions */
  spr_bl_oracle_params p;
  spr_bl_oracle_default(&p);
  for (int t = 0; t < 2 * n * n; t++) {
    const int64_t thr = Sb[t / 2] + t % 2;
    p.threshold = (double)thr;
    memset(R, 0, sizeof R);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++)
        if (Sb[i * n + j] >= thr) put(R, n, i, j);
    CU_ASSERT_EQUAL(spr_bl_oracle(&p, Qb, Kb, n, d, &big, M, NULL), 0);
    CU_ASSERT_EQUAL(memcmp(M, R, mask_bytes(n)), 0);
  }
  spr_bl_ws_free(&big);
  spr_bl_ws_free(&big); /* idempotent */
}

/* ---- oracle calibration ---------------------------------------------------- */

static void test_calibrate_vs_brute(void) {
  const double rates[] = {0.0, 0.15, 0.5, 0.8123, 1.0, 0.001};
  for (int sh = 0; sh < NSHAPES; sh++)
    for (int coarse = 0; coarse < 2; coarse++) {
      const int n = shapes[sh][0], d = shapes[sh][1], nn = n * n;
      gen(Qb, Kb, n, d, 31 + sh, coarse);
      spr_bl_oracle_params p;
      spr_bl_oracle_default(&p);
      p.q_bits = 4;
      float qs, ks;
      ref_scores(Qb, Kb, n, d, 4, 8, qcb, kcb, Sb, &qs, &ks);
      int64_t mx = Sb[0];
      for (int t = 1; t < nn; t++) mx = Sb[t] > mx ? Sb[t] : mx;
      for (unsigned r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        /* brute force: every candidate threshold from max + 1 down */
        double best_t = 0, best_err = INFINITY;
        int64_t best_c = -1;
        for (int t = -1; t < nn; t++) {
          const int64_t v = t < 0 ? mx + 1 : Sb[t];
          int64_t c = 0;
          for (int u = 0; u < nn; u++) c += Sb[u] >= v;
          const double err = fabs((double)c - rates[r] * nn);
          if (err < best_err || (err == best_err && (double)v < best_t)) {
            best_err = err;
            best_t = (double)v;
            best_c = c;
          }
        }
        double thr = -1, got = -1;
        CU_ASSERT_EQUAL_FATAL(spr_bl_oracle_calibrate(&p, Qb, Kb, n, d, rates[r], &ws, &thr, &got), 0);
        CU_ASSERT_EQUAL(thr, best_t);
        CU_ASSERT_EQUAL(got, (double)best_c / nn);
        /* and the oracle at that threshold keeps exactly that many */
        p.threshold = thr;
        spr_bl_stats st;
        CU_ASSERT_EQUAL(spr_bl_oracle(&p, Qb, Kb, n, d, &ws, M, &st), 0);
        CU_ASSERT_EQUAL(st.n_kept, best_c);
      }
    }
}

/* Two equally near keep counts: the lower threshold (keeps more) wins. */
static void test_calibrate_tie(void) {
  /* d = 1, Q = (1, 2), K = (1, 3): 8-bit codes (64, 127) and (42, 127),
   * scores 2688, 5334, 8128, 16129; target 0.375 * 4 = 1.5 keys is as near
   * to 1 (threshold 16129) as to 2 (threshold 8128). */
  const float Q[] = {1, 2}, K[] = {1, 3};
  spr_bl_oracle_params p;
  spr_bl_oracle_default(&p);
  double thr, got;
  CU_ASSERT_EQUAL_FATAL(spr_bl_oracle_calibrate(&p, Q, K, 2, 1, 0.375, &ws, &thr, &got), 0);
  CU_ASSERT_EQUAL(thr, 8128.0);
  CU_ASSERT_EQUAL(got, 0.5);
  CU_ASSERT_EQUAL(spr_bl_oracle_calibrate(&p, Q, K, 2, 1, 0.0, &ws, &thr, NULL), 0);
  CU_ASSERT_EQUAL(thr, 16130.0); /* max + 1: nothing kept */
  CU_ASSERT_EQUAL(spr_bl_oracle_calibrate(&p, Q, K, 2, 1, 1.0, &ws, &thr, &got), 0);
  CU_ASSERT_EQUAL(thr, 2688.0);
  CU_ASSERT_EQUAL(got, 1.0);
}

/* ---- top-k ----------------------------------------------------------------- */

static void ref_topk(int n, int k, uint8_t *ref) {
  memset(ref, 0, mask_bytes(n));
  for (int i = 0; i < n; i++) {
    /* pick k times the best remaining key: largest score, then lowest index */
    char taken[NMAX] = {0};
    for (int r = 0; r < k; r++) {
      int best = -1;
      for (int j = 0; j < n; j++)
        if (!taken[j] && (best < 0 || Sb[i * n + j] > Sb[i * n + best])) best = j;
      taken[best] = 1;
      put(ref, n, i, best);
    }
  }
}

static void test_topk_vs_brute(void) {
  int ties_seen = 0;
  for (int sh = 0; sh < NSHAPES; sh++)
    for (int coarse = 0; coarse < 2; coarse++)
      for (uint64_t seed = 5; seed <= 7; seed++) {
        const int n = shapes[sh][0], d = shapes[sh][1];
        gen(Qb, Kb, n, d, seed * 104729 + sh, coarse);
        const int ks[] = {1, 3, n / 2, n - 1, n, 0, 0};
        const double fr[] = {0.15, 0.15, 0.15, 0.15, 0.15, 0.15, 0.01};
        for (int c = 0; c < 7; c++) {
          spr_bl_topk_params p;
          spr_bl_topk_default(&p);
          p.q_bits = coarse ? 3 : 8; /* coarse codes: many ties */
          p.k = ks[c];
          p.keep_fraction = fr[c];
          if ((ks[c] < 1 && c < 5) || ks[c] > n) continue;
          float qs, kss;
          ref_scores(Qb, Kb, n, d, p.q_bits, p.k_bits, qcb, kcb, Sb, &qs, &kss);
          int k = p.k;
          if (k == 0) {
            k = (int)lround(p.keep_fraction * n);
            if (k < 1) k = 1;
          }
          ref_topk(n, k, R);
          /* count rows where keys tied at the k-th value straddle the cut */
          for (int i = 0; i < n; i++) {
            int64_t kth = INT64_MAX;
            for (int j = 0; j < n; j++)
              if (bit(R, n, i, j) && Sb[i * n + j] < kth) kth = Sb[i * n + j];
            int at_least = 0;
            for (int j = 0; j < n; j++) at_least += Sb[i * n + j] >= kth;
            ties_seen += at_least > k;
          }
          spr_bl_stats st;
          memset(M, 0xFF, sizeof M);
          CU_ASSERT_EQUAL_FATAL(spr_bl_topk(&p, Qb, Kb, n, d, &ws, M, &st), 0);
          CU_ASSERT_EQUAL(memcmp(M, R, mask_bytes(n)), 0);
          CU_ASSERT_EQUAL(st.k, k);
          CU_ASSERT_EQUAL(st.n_kept, (int64_t)n * k);
          CU_ASSERT_EQUAL(st.topk_inputs, (int64_t)n * n);
          CU_ASSERT_EQUAL(st.mac_ops, (int64_t)n * n * d);
        }
      }
  CU_ASSERT(ties_seen > 50); /* the tie rule was exercised */
}

/* Hand case: d = 1, every query 1, keys 2, 3, 3, 1, 3 (codes 85, 127, 127,
 * 42, 127): the three 3s tie.  k = 2 keeps keys 1, 2; k = 4 keeps 0, 1, 2, 4. */
/* Top-k rows straight from scores: rows of 1 to 300 keys with spans from
 * 1 to the whole int32 range (its ends included), every k, against the
 * k-th largest by counting: the row keeps exactly k keys, every key above
 * the k-th value, ties at it from the lowest index. */
static void test_topk_rows_wide(void) {
  enum { N = 300 };
  int32_t *S = malloc(sizeof(int32_t) * N), cand[N];
  uint8_t row[N / 8 + 1];
  int ok = 1;
  for (int it = 0; it < 400; it++) {
    const int n = 1 + (int)(sm_next() % N), k = 1 + (int)(sm_next() % n);
    const uint64_t span = it % 4 == 0 ? 3 : (it % 4 == 1 ? 1000 : (it % 4 == 2 ? 1u << 30 : 0));
    for (int j = 0; j < n; j++)
      S[j] = span ? (int32_t)(sm_next() % span) - (int32_t)(span / 2) : (int32_t)(uint32_t)sm_next();
    if (it % 5 == 0) S[sm_next() % n] = INT32_MAX;
    if (it % 7 == 0) S[sm_next() % n] = INT32_MIN;
    ok &= spr_bl_topk_rows(S, N, 0, 1, n, 0, k, 0.0, row, cand) == k;
    /* the k-th largest v: count(>= v) >= k > count(> v) */
    int64_t v = INT64_MIN;
    for (int j = 0; j < n; j++) {
      int ge = 0;
      for (int u = 0; u < n; u++) ge += S[u] >= S[j];
      if (ge >= k && S[j] > v) v = S[j];
    }
    int kept = 0, ties = 0, above = 0;
    for (int j = 0; j < n; j++) above += S[j] > v;
    for (int j = 0; j < n; j++) {
      const int b = row[j >> 3] >> (j & 7) & 1;
      kept += b;
      if (S[j] > v) ok &= b;
      else if (S[j] < v) ok &= !b;
      else ok &= b == (ties++ < k - above);
    }
    ok &= kept == k;
  }
  CU_ASSERT(ok);
  free(S);
}

static void test_topk_ties_hand(void) {
  const float Q[] = {1, 1, 1, 1, 1}, K[] = {2, 3, 3, 1, 3};
  spr_bl_topk_params p;
  spr_bl_topk_default(&p);
  p.k = 2;
  CU_ASSERT_EQUAL_FATAL(spr_bl_topk(&p, Q, K, 5, 1, &ws, M, NULL), 0);
  for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(M[i], 0x06);
  p.k = 4;
  CU_ASSERT_EQUAL_FATAL(spr_bl_topk(&p, Q, K, 5, 1, &ws, M, NULL), 0);
  for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(M[i], 0x17);
  /* k from the fraction: round(0.5 * 5) = 3 (2.5 rounds away from 0) */
  p.k = 0;
  p.keep_fraction = 0.5;
  spr_bl_stats st;
  CU_ASSERT_EQUAL_FATAL(spr_bl_topk(&p, Q, K, 5, 1, &ws, M, &st), 0);
  CU_ASSERT_EQUAL(st.k, 3);
  for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(M[i], 0x16);
}

/* ---- Sanger ----------------------------------------------------------------- */

static void test_sanger_vs_brute(void) {
  int near = 0, total = 0, kept = 0;
  const double thrs[] = {2e-3, 0.02385, 0.1, 1.0};
  for (int sh = 0; sh < NSHAPES; sh++)
    for (int coarse = 0; coarse < 2; coarse++)
      for (uint64_t seed = 11; seed <= 13; seed++)
        for (int t = 0; t < 4; t++) {
          const int n = shapes[sh][0], d = shapes[sh][1];
          gen(Qb, Kb, n, d, seed * 15485863 + sh, coarse);
          spr_bl_sanger_params p;
          spr_bl_sanger_default(&p);
          p.p_threshold = thrs[t];
          if (seed == 13) p.k_bits = 6;
          float qs, ks;
          ref_scores(Qb, Kb, n, d, p.q_bits, p.k_bits, qcb, kcb, Sb, &qs, &ks);
          spr_bl_stats st;
          CU_ASSERT_EQUAL_FATAL(spr_bl_sanger(&p, Qb, Kb, n, d, &ws, M, &st), 0);
          const long double c = (long double)qs * ks / sqrtl((long double)d);
          for (int i = 0; i < n; i++) {
            long double z = 0;
            for (int j = 0; j < n; j++) z += expl(c * (long double)Sb[i * n + j]);
            for (int j = 0; j < n; j++) {
              const long double pr = expl(c * (long double)Sb[i * n + j]) / z;
              const int want = pr >= (long double)p.p_threshold;
              total++;
              kept += want;
              /* decisions within 1e-12 of the threshold may round either way */
              if (fabsl(pr - p.p_threshold) <= 1e-12L * p.p_threshold) {
                near++;
                continue;
              }
              CU_ASSERT_EQUAL(bit(M, n, i, j), want);
              /* equal predicted scores, equal decisions (ties) */
              for (int l = 0; l < j; l++)
                if (Sb[i * n + l] == Sb[i * n + j]) CU_ASSERT_EQUAL(bit(M, n, i, l), bit(M, n, i, j));
            }
          }
          CU_ASSERT_EQUAL(st.mac_ops, (int64_t)n * n * d);
          CU_ASSERT_EQUAL(st.mac_q_bits, 4);
          CU_ASSERT_EQUAL(st.exp_ops, (int64_t)n * n);
          CU_ASSERT_EQUAL(st.cmp_ops, (int64_t)n * (n - 1) + (int64_t)n * n);
          CU_ASSERT_EQUAL(st.add_ops, (int64_t)n * n + (int64_t)n * (n - 1));
          CU_ASSERT_EQUAL(st.mul_ops, (int64_t)n * n + n);
          CU_ASSERT_EQUAL(st.threshold, thrs[t]);
          CU_ASSERT_EQUAL(st.n_kept, popcount_mask(M, n));
        }
  CU_ASSERT(near * 1000 < total); /* the tolerance excused almost nothing */
  CU_ASSERT(kept > total / 20 && kept < total);
}

/* All predicted scores equal: p = 1/n exactly.  With n = 32 and the
 * threshold 1/32 (exact in binary) every key sits on the threshold and is
 * kept (>=); the next double above prunes them all. */
static void test_sanger_exact_tie(void) {
  const int n = 32, d = 3;
  gen(Qb, Kb, n, d, 3, 0);
  memset(Qb, 0, sizeof(float) * n * d); /* zero queries: every score 0 */
  spr_bl_sanger_params p;
  spr_bl_sanger_default(&p);
  p.p_threshold = 1.0 / 32;
  spr_bl_stats st;
  CU_ASSERT_EQUAL_FATAL(spr_bl_sanger(&p, Qb, Kb, n, d, &ws, M, &st), 0);
  CU_ASSERT_EQUAL(st.n_kept, n * n);
  p.p_threshold = nextafter(1.0 / 32, 1.0);
  CU_ASSERT_EQUAL_FATAL(spr_bl_sanger(&p, Qb, Kb, n, d, &ws, M, &st), 0);
  CU_ASSERT_EQUAL(st.n_kept, 0);
}

/* ---- LeOPArd ------------------------------------------------------------------ */

/* floor(x / 2^sh) for any sign */
static int64_t floor_shift(int64_t x, int sh) {
  int64_t p = (int64_t)1 << sh;
  return x >= 0 ? x / p : -((-x + p - 1) / p);
}

/* P_m: the score with every key truncated to its m most significant bits
 * of B (two's complement truncation = floor); U_m: bound of the rest. */
static int64_t ref_partial(const int8_t *q, const int8_t *k, int d, int B, int m) {
  int64_t s = 0;
  for (int t = 0; t < d; t++) s += (int64_t)q[t] * floor_shift(k[t], B - m) * ((int64_t)1 << (B - m));
  return s;
}
static int64_t ref_bound(const int8_t *q, int d, int B, int m) {
  int64_t pos = 0;
  for (int t = 0; t < d; t++) pos += q[t] > 0 ? q[t] : 0;
  return (((int64_t)1 << (B - m)) - 1) * pos;
}

/* The reference bound is valid and attained: for every key in the B-bit
 * range sharing a given m-bit prefix, max s = P_m + U_m.  Exhaustive for
 * B = 3, d = 2 and several queries. */
static void test_leopard_bound_exact(void) {
  const int B = 3, d = 2, lo = -(1 << (B - 1)), hi = (1 << (B - 1)) - 1;
  const int8_t qs[][2] = {{3, -2}, {-4, -1}, {5, 7}, {0, -3}, {-8, 6}};
  for (unsigned a = 0; a < sizeof qs / sizeof qs[0]; a++)
    for (int m = 1; m <= B; m++)
      for (int k0 = lo; k0 <= hi; k0++)
        for (int k1 = lo; k1 <= hi; k1++) {
          const int8_t k[2] = {(int8_t)k0, (int8_t)k1};
          const int64_t P = ref_partial(qs[a], k, d, B, m), U = ref_bound(qs[a], d, B, m);
          int64_t best = INT64_MIN;
          for (int u0 = lo; u0 <= hi; u0++)
            for (int u1 = lo; u1 <= hi; u1++) {
              if (floor_shift(u0, B - m) != floor_shift(k0, B - m) ||
                  floor_shift(u1, B - m) != floor_shift(k1, B - m))
                continue; /* another prefix */
              const int64_t s = (int64_t)qs[a][0] * u0 + (int64_t)qs[a][1] * u1;
              CU_ASSERT(s <= P + U);
              if (s > best) best = s;
            }
          CU_ASSERT_EQUAL(best, P + U);
        }
}

static void check_leopard(int n, int d, int qb, int B, double thr) {
  spr_bl_leopard_params p;
  spr_bl_leopard_default(&p);
  p.q_bits = qb;
  p.k_bits = B;
  p.threshold = thr;
  float qs, ks;
  ref_scores(Qb, Kb, n, d, qb, B, qcb, kcb, Sb, &qs, &ks);
  int64_t bits = 0, stops = 0;
  memset(R, 0, sizeof R);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      if ((double)Sb[i * n + j] >= thr) put(R, n, i, j);
      int m = 1;
      for (; m <= B; m++) {
        const int64_t P = ref_partial(qcb + i * d, kcb + j * d, d, B, m);
        const int64_t U = ref_bound(qcb + i * d, d, B, m);
        if ((double)(P + U) < thr) break;
      }
      if (m < B) stops++;
      bits += m > B ? B : m;
    }
  spr_bl_stats st;
  memset(M, 0xC3, sizeof M);
  CU_ASSERT_EQUAL_FATAL(spr_bl_leopard(&p, Qb, Kb, n, d, &ws, M, &st), 0);
  CU_ASSERT_EQUAL(memcmp(M, R, mask_bytes(n)), 0);
  CU_ASSERT_EQUAL(st.key_bits_processed, bits);
  CU_ASSERT_EQUAL(st.early_stops, stops);
  CU_ASSERT_EQUAL(st.mean_bits_per_key, (double)bits / ((double)n * n));
  CU_ASSERT_EQUAL(st.mac_ops, bits * d);
  CU_ASSERT_EQUAL(st.mac_k_bits, 1);
  CU_ASSERT_EQUAL(st.mac_q_bits, qb);
  CU_ASSERT_EQUAL(st.cmp_ops, bits);
  CU_ASSERT_EQUAL(st.add_ops, bits + (int64_t)n * d + (int64_t)n * B);
  CU_ASSERT_EQUAL(st.n_kept, popcount_mask(R, n));
  /* the oracle at the same widths and threshold: the same mask */
  spr_bl_oracle_params o = {qb, B, thr, 0};
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, Kb, n, d, &ws, R, NULL), 0);
  CU_ASSERT_EQUAL(memcmp(M, R, mask_bytes(n)), 0);
}

static void test_leopard_vs_brute(void) {
  const int bits[][2] = {{8, 8}, {4, 8}, {8, 5}, {3, 3}, {8, 2}};
  for (int sh = 0; sh < NSHAPES; sh++)
    for (int coarse = 0; coarse < 2; coarse++)
      for (uint64_t seed = 21; seed <= 22; seed++)
        for (int b = 0; b < 5; b++) {
          const int n = shapes[sh][0], d = shapes[sh][1];
          gen(Qb, Kb, n, d, seed * 1299709 + sh, coarse);
          float qs, ks;
          ref_scores(Qb, Kb, n, d, bits[b][0], bits[b][1], qcb, kcb, Sb, &qs, &ks);
          const double thr[] = {(double)Sb[(n * n) / 4], (double)Sb[(n * n) / 2] - 0.5, 0.0,
                                -1e9, 1e9};
          for (int t = 0; t < 5; t++) check_leopard(n, d, bits[b][0], bits[b][1], thr[t]);
        }
}

/* Extremes: an unreachable threshold stops every pair after the sign
 * plane; a threshold below every score reads every bit of every key. */
static void test_leopard_extremes(void) {
  const int n = 21, d = 8;
  gen(Qb, Kb, n, d, 77, 0);
  spr_bl_leopard_params p;
  spr_bl_leopard_default(&p);
  spr_bl_stats st;
  p.threshold = 1e9;
  CU_ASSERT_EQUAL_FATAL(spr_bl_leopard(&p, Qb, Kb, n, d, &ws, M, &st), 0);
  CU_ASSERT_EQUAL(st.key_bits_processed, n * n);
  CU_ASSERT_EQUAL(st.early_stops, n * n);
  CU_ASSERT_EQUAL(st.n_kept, 0);
  CU_ASSERT_EQUAL(st.mean_bits_per_key, 1.0);
  p.threshold = -1e9;
  CU_ASSERT_EQUAL_FATAL(spr_bl_leopard(&p, Qb, Kb, n, d, &ws, M, &st), 0);
  CU_ASSERT_EQUAL(st.key_bits_processed, 8 * n * n);
  CU_ASSERT_EQUAL(st.early_stops, 0);
  CU_ASSERT_EQUAL(st.n_kept, n * n);
}

/* ---- window + global ------------------------------------------------------------ */

static void check_rows(int n, const char *const *rows) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      const int want = rows[i][j] == '1';
      if (bit(M, n, i, j) != want) fprintf(stderr, "\n  (%d, %d) is %d\n", i, j, !want);
      CU_ASSERT_EQUAL(bit(M, n, i, j), want);
    }
  /* padding bits of each row are 0 */
  const size_t rb = spr_mask_row_bytes(n);
  if (n % 8)
    for (int i = 0; i < n; i++) CU_ASSERT_EQUAL(M[i * rb + rb - 1] >> (n % 8), 0);
}

static void test_window_hand(void) {
  /* n = 10, half-width 1, global tokens 7 and 0 */
  static const char *const w1[] = {
      "1111111111", /* 0 global */
      "1110000100", "1111000100", "1011100100", "1001110100",
      "1000111100", "1000011100",
      "1111111111", /* 7 global */
      "1000000111", "1000000111"};
  const int g[] = {7, 0};
  spr_bl_window_params p = {1, 2, g, 0};
  spr_bl_stats st;
  memset(M, 0xFF, sizeof M);
  CU_ASSERT_EQUAL_FATAL(spr_bl_window(&p, 10, M, &st), 0);
  check_rows(10, w1);
  int64_t c = 0;
  for (int i = 0; i < 10; i++)
    for (int j = 0; j < 10; j++) c += w1[i][j] == '1';
  CU_ASSERT_EQUAL(st.n_kept, c);
  CU_ASSERT_EQUAL(st.mac_ops + st.cmp_ops, 0);

  /* defaults: half-width 32, token 0 global; n = 6 gives dense */
  spr_bl_window_default(&p);
  CU_ASSERT_EQUAL(p.half_width, 32);
  CU_ASSERT_EQUAL(p.n_global, 1);
  CU_ASSERT_EQUAL_FATAL(spr_bl_window(&p, 6, M, &st), 0);
  CU_ASSERT_EQUAL(st.n_kept, 36);

  /* half-width 0, first two tokens global (positions NULL), n = 6 */
  static const char *const w0[] = {"111111", "111111", "111000",
                                   "110100", "110010", "110001"};
  p.half_width = 0;
  p.n_global = 2;
  CU_ASSERT_EQUAL_FATAL(spr_bl_window(&p, 6, M, &st), 0);
  check_rows(6, w0);
  CU_ASSERT_EQUAL(st.n_kept, 24);

  /* no global token, half-width 2, n = 12 (two bytes per row) */
  static const char *const w2[] = {
      "111000000000", "111100000000", "111110000000", "011111000000",
      "001111100000", "000111110000", "000011111000", "000001111100",
      "000000111110", "000000011111", "000000001111", "000000000111"};
  p.half_width = 2;
  p.n_global = 0;
  CU_ASSERT_EQUAL_FATAL(spr_bl_window(&p, 12, M, &st), 0);
  check_rows(12, w2);
}

/* ---- errors ----------------------------------------------------------------------- */

static void test_errors(void) {
  const int n = 8, d = 4;
  gen(Qb, Kb, n, d, 1, 0);
  spr_bl_stats st;
  /* workspace */
  spr_bl_ws w2;
  CU_ASSERT_EQUAL(spr_bl_ws_alloc(&w2, 0, 4), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "n = 0, d = 4");
  CU_ASSERT_EQUAL(spr_bl_ws_alloc(&w2, 4, -1), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "d = -1");
  CU_ASSERT_EQUAL(spr_bl_ws_alloc(NULL, 4, 4), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "ws is NULL");
  spr_bl_ws_free(&w2); /* safe after a failed alloc */
  spr_bl_ws_free(NULL);

  /* dense */
  CU_ASSERT_EQUAL(spr_bl_dense(0, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_dense: n = 0");
  CU_ASSERT_EQUAL(spr_bl_dense(3, NULL, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_dense: mask is NULL");

  /* shared checks, through the oracle */
  spr_bl_oracle_params o;
  spr_bl_oracle_default(&o);
  CU_ASSERT_EQUAL(spr_bl_oracle(NULL, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_oracle: params is NULL");
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, NULL, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_oracle: Q is NULL");
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, NULL, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_oracle: K is NULL");
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, Kb, n, d, NULL, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "workspace is NULL");
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, Kb, n, d, &ws, NULL, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "mask is NULL");
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, Kb, 0, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_oracle: n = 0 (need >= 1)");
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, Kb, n, 0, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "d = 0 (need >= 1)");
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, Kb, NMAX + 1, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "n = 41, d = 4 exceed the workspace (n = 40, d = 16)");
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, Kb, n, DMAX + 1, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "d = 17 exceed the workspace");
  o.q_bits = 1;
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "q_bits = 1 outside [2, 8]");
  o.q_bits = 8;
  o.k_bits = 9;
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "k_bits = 9 outside [2, 8]");
  o.k_bits = 8;
  o.threshold = NAN;
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_oracle: threshold = nan is not finite");
  o.threshold = 0;
  Qb[3] = NAN;
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_oracle: Q: quantize: element 3 is nan");
  Qb[3] = 0.5f;
  Kb[5] = INFINITY;
  CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_oracle: K: quantize: element 5 is inf");
  Kb[5] = 0.5f;

  /* calibration */
  double thr;
  CU_ASSERT_EQUAL(spr_bl_oracle_calibrate(&o, Qb, Kb, n, d, 1.5, &ws, &thr, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_oracle_calibrate: keep_rate = 1.5 outside [0, 1]");
  CU_ASSERT_EQUAL(spr_bl_oracle_calibrate(&o, Qb, Kb, n, d, -0.1, &ws, &thr, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "keep_rate = -0.1 outside");
  CU_ASSERT_EQUAL(spr_bl_oracle_calibrate(&o, Qb, Kb, n, d, NAN, &ws, &thr, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "keep_rate = nan outside");
  CU_ASSERT_EQUAL(spr_bl_oracle_calibrate(&o, Qb, Kb, n, d, 0.5, &ws, NULL, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_oracle_calibrate: threshold is NULL");
  CU_ASSERT_EQUAL(spr_bl_oracle_calibrate(NULL, Qb, Kb, n, d, 0.5, &ws, &thr, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_oracle_calibrate: params is NULL");
  CU_ASSERT_EQUAL(spr_bl_oracle_calibrate(&o, Qb, Kb, -3, d, 0.5, &ws, &thr, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "n = -3");

  /* top-k */
  spr_bl_topk_params t;
  spr_bl_topk_default(&t);
  CU_ASSERT_EQUAL(t.k, 0);
  CU_ASSERT_EQUAL(t.keep_fraction, 0.15);
  t.k = n + 1;
  CU_ASSERT_EQUAL(spr_bl_topk(&t, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_topk: k = 9 outside [1, n = 8]");
  t.k = -1;
  CU_ASSERT_EQUAL(spr_bl_topk(&t, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "k = -1 outside");
  t.k = 0;
  t.keep_fraction = 0;
  CU_ASSERT_EQUAL(spr_bl_topk(&t, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_topk: keep_fraction = 0 outside (0, 1]");
  t.keep_fraction = 1.25;
  CU_ASSERT_EQUAL(spr_bl_topk(&t, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "keep_fraction = 1.25 outside");
  t.k = 3; /* keep_fraction unused when k > 0 */
  CU_ASSERT_EQUAL(spr_bl_topk(&t, Qb, Kb, n, d, &ws, M, &st), 0);
  t.q_bits = 0;
  CU_ASSERT_EQUAL(spr_bl_topk(&t, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_topk: q_bits = 0");
  CU_ASSERT_EQUAL(spr_bl_topk(NULL, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_topk: params is NULL");

  /* Sanger */
  spr_bl_sanger_params s;
  spr_bl_sanger_default(&s);
  CU_ASSERT_EQUAL(s.p_threshold, 2e-3);
  CU_ASSERT_EQUAL(s.q_bits, 4);
  CU_ASSERT_EQUAL(s.k_bits, 4);
  const double bad[] = {0.0, -2e-3, 1.5, NAN};
  const char *msg[] = {"p_threshold = 0 outside (0, 1]", "p_threshold = -0.002 outside",
                       "p_threshold = 1.5 outside", "p_threshold = nan outside"};
  for (int b = 0; b < 4; b++) {
    s.p_threshold = bad[b];
    CU_ASSERT_EQUAL(spr_bl_sanger(&s, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), msg[b]);
  }
  s.p_threshold = 2e-3;
  CU_ASSERT_EQUAL(spr_bl_sanger(&s, Qb, NULL, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_sanger: K is NULL");
  Kb[0] = NAN;
  CU_ASSERT_EQUAL(spr_bl_sanger(&s, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_sanger: K: quantize: element 0 is nan");
  Kb[0] = 0.5f;

  /* LeOPArd */
  spr_bl_leopard_params l;
  spr_bl_leopard_default(&l);
  CU_ASSERT_EQUAL(l.k_bits, 8);
  l.threshold = -INFINITY;
  CU_ASSERT_EQUAL(spr_bl_leopard(&l, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_leopard: threshold = -inf is not finite");
  l.threshold = 0;
  l.k_bits = 1;
  CU_ASSERT_EQUAL(spr_bl_leopard(&l, Qb, Kb, n, d, &ws, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_leopard: k_bits = 1 outside [2, 8]");
  l.k_bits = 8;
  CU_ASSERT_EQUAL(spr_bl_leopard(&l, Qb, Kb, n, d, &ws, NULL, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_leopard: mask is NULL");

  /* window */
  spr_bl_window_params w;
  spr_bl_window_default(&w);
  CU_ASSERT_EQUAL(spr_bl_window(NULL, n, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_window: params is NULL");
  CU_ASSERT_EQUAL(spr_bl_window(&w, n, NULL, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_window: mask is NULL");
  CU_ASSERT_EQUAL(spr_bl_window(&w, 0, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_window: n = 0");
  w.half_width = -1;
  CU_ASSERT_EQUAL(spr_bl_window(&w, n, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "half_width = -1 (need >= 0)");
  w.half_width = 2;
  w.n_global = n + 1;
  CU_ASSERT_EQUAL(spr_bl_window(&w, n, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "n_global = 9 outside [0, n = 8]");
  w.n_global = -2;
  CU_ASSERT_EQUAL(spr_bl_window(&w, n, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "n_global = -2 outside");
  const int pos_out[] = {0, 8}, pos_neg[] = {-1}, pos_rep[] = {5, 2, 5};
  w.n_global = 2;
  w.global_pos = pos_out;
  CU_ASSERT_EQUAL(spr_bl_window(&w, n, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "global_pos[1] = 8 outside [0, 7]");
  w.n_global = 1;
  w.global_pos = pos_neg;
  CU_ASSERT_EQUAL(spr_bl_window(&w, n, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "global_pos[0] = -1 outside");
  w.n_global = 3;
  w.global_pos = pos_rep;
  CU_ASSERT_EQUAL(spr_bl_window(&w, n, M, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "global_pos[0] = global_pos[2] = 5 (repeated)");
}

/* Defaults are the documented values. */
static void test_defaults(void) {
  spr_bl_oracle_params o;
  spr_bl_oracle_default(&o);
  CU_ASSERT(o.q_bits == 8 && o.k_bits == 8 && o.threshold == 0.0);
  spr_bl_topk_params t;
  spr_bl_topk_default(&t);
  CU_ASSERT(t.q_bits == 8 && t.k_bits == 8 && t.k == 0 && t.keep_fraction == 0.15);
  spr_bl_leopard_params l;
  spr_bl_leopard_default(&l);
  CU_ASSERT(l.q_bits == 8 && l.k_bits == 8 && l.threshold == 0.0);
  spr_bl_window_params w;
  spr_bl_window_default(&w);
  CU_ASSERT(w.half_width == 32 && w.n_global == 1 && w.global_pos == NULL);
}

/* ---- causal attention (docs/baselines.md section 5) ----------------------------- */

/* Causal shapes: odd sizes around byte boundaries, n = 40 the largest. */
static const int cshapes[][2] = {{7, 5}, {13, 5}, {16, 11}, {40, 11}, {1, 3}};
enum { NCSHAPES = sizeof cshapes / sizeof cshapes[0] };

static int64_t causal_pairs(int n) { return (int64_t)n * (n + 1) / 2; }

/* No bit above the diagonal, no padding bit. */
static int upper_bits(const uint8_t *m, int n) {
  int c = 0;
  const size_t rb = spr_mask_row_bytes(n);
  for (int i = 0; i < n; i++) {
    for (int j = i + 1; j < n; j++) c += bit(m, n, i, j);
    if (n % 8) c += m[i * rb + rb - 1] >> (n % 8) != 0;
  }
  return c;
}

static void test_causal_dense(void) {
  const int ns[] = {1, 7, 8, 13, 40};
  for (unsigned c = 0; c < sizeof ns / sizeof ns[0]; c++) {
    const int n = ns[c];
    memset(M, 0xAB, sizeof M);
    spr_bl_stats st;
    CU_ASSERT_EQUAL_FATAL(spr_bl_dense_causal(n, M, &st), 0);
    memset(R, 0, sizeof R);
    for (int i = 0; i < n; i++)
      for (int j = 0; j <= i; j++) put(R, n, i, j);
    CU_ASSERT_EQUAL(memcmp(M, R, mask_bytes(n)), 0); /* lower-triangular, padding 0 */
    CU_ASSERT_EQUAL(st.n_kept, causal_pairs(n));
    CU_ASSERT_EQUAL(st.keep_rate, 1.0);
    CU_ASSERT_EQUAL(st.causal, 1);
    CU_ASSERT_EQUAL(st.mac_ops + st.exp_ops + st.cmp_ops + st.key_bits_processed, 0);
  }
  CU_ASSERT_EQUAL(spr_bl_dense_causal(0, M, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_dense_causal: n = 0");
  CU_ASSERT_EQUAL(spr_bl_dense_causal(3, NULL, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_dense_causal: mask is NULL");
}

/* Oracle and its calibration over the causal pairs: masks, counts and the
 * calibrated threshold against brute force (scores above the diagonal
 * never matter: the brute force does not look at them). */
static void test_causal_oracle_calibrate(void) {
  const double rates[] = {0.0, 0.15, 0.5, 0.8123, 1.0};
  int cases = 0;
  for (int sh = 0; sh < NCSHAPES; sh++)
    for (int coarse = 0; coarse < 2; coarse++) {
      const int n = cshapes[sh][0], d = cshapes[sh][1];
      const int64_t P = causal_pairs(n);
      gen(Qb, Kb, n, d, 4111 + sh, coarse);
      spr_bl_oracle_params p;
      spr_bl_oracle_default(&p);
      p.q_bits = 4;
      p.causal = 1;
      float qs, ks;
      ref_scores(Qb, Kb, n, d, 4, 8, qcb, kcb, Sb, &qs, &ks);
      int64_t mx = Sb[0];
      for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) mx = Sb[i * n + j] > mx ? Sb[i * n + j] : mx;
      for (unsigned r = 0; r < sizeof rates / sizeof rates[0]; r++, cases++) {
        double best_t = 0, best_err = INFINITY;
        int64_t best_c = -1;
        for (int t = -1; t < n * n; t++) {
          if (t >= 0 && t % n > t / n) continue; /* candidates: causal scores */
          const int64_t v = t < 0 ? mx + 1 : Sb[t];
          int64_t c = 0;
          for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) c += Sb[i * n + j] >= v;
          const double err = fabs((double)c - rates[r] * P);
          if (err < best_err || (err == best_err && (double)v < best_t)) {
            best_err = err;
            best_t = (double)v;
            best_c = c;
          }
        }
        double thr = -1, got = -1;
        CU_ASSERT_EQUAL_FATAL(spr_bl_oracle_calibrate(&p, Qb, Kb, n, d, rates[r], &ws, &thr, &got), 0);
        CU_ASSERT_EQUAL(thr, best_t);
        CU_ASSERT_EQUAL(got, (double)best_c / P);
        /* the causal oracle at that threshold */
        p.threshold = thr;
        memset(R, 0, sizeof R);
        for (int i = 0; i < n; i++)
          for (int j = 0; j <= i; j++)
            if ((double)Sb[i * n + j] >= thr) put(R, n, i, j);
        spr_bl_stats st;
        memset(M, 0x5A, sizeof M);
        CU_ASSERT_EQUAL_FATAL(spr_bl_oracle(&p, Qb, Kb, n, d, &ws, M, &st), 0);
        CU_ASSERT_EQUAL(memcmp(M, R, mask_bytes(n)), 0);
        CU_ASSERT_EQUAL(st.n_kept, best_c);
        CU_ASSERT_EQUAL(st.keep_rate, (double)best_c / P);
        CU_ASSERT_EQUAL(st.mac_ops, P * d);
        CU_ASSERT_EQUAL(st.cmp_ops, P);
        CU_ASSERT_EQUAL(st.causal, 1);
      }
    }
  CU_ASSERT(cases == 50);
  /* a hand case: d = 1, Q = (1, 2), K = (1, 3), 8-bit codes (64, 127) and
   * (42, 127): causal scores 2688 (0,0), 5334 (1,0), 16129 (1,1); the
   * non-causal 8128 (0,1) is not a pair.  Target 2/3 of 3 = 2 pairs:
   * threshold 5334. */
  const float Q[] = {1, 2}, K[] = {1, 3};
  spr_bl_oracle_params p;
  spr_bl_oracle_default(&p);
  p.causal = 1;
  double thr, got;
  CU_ASSERT_EQUAL_FATAL(spr_bl_oracle_calibrate(&p, Q, K, 2, 1, 2.0 / 3, &ws, &thr, &got), 0);
  CU_ASSERT_EQUAL(thr, 5334.0);
  CU_ASSERT_EQUAL(got, 2.0 / 3);
}

/* Reference causal top-k: row i picks k_i times the best remaining key
 * among 0 .. i (largest score, then lowest index). */
static void ref_topk_causal(int n, int k, double frac, uint8_t *ref, int64_t *kept) {
  memset(ref, 0, mask_bytes(n));
  *kept = 0;
  for (int i = 0; i < n; i++) {
    int ki = k > 0 ? (k < i + 1 ? k : i + 1) : (int)lround(frac * (i + 1));
    if (ki < 1) ki = 1;
    char taken[NMAX] = {0};
    for (int r = 0; r < ki; r++) {
      int best = -1;
      for (int j = 0; j <= i; j++)
        if (!taken[j] && (best < 0 || Sb[i * n + j] > Sb[i * n + best])) best = j;
      taken[best] = 1;
      put(ref, n, i, best);
    }
    *kept += ki;
  }
}

static void test_causal_topk(void) {
  int cases = 0;
  for (int sh = 0; sh < NCSHAPES; sh++)
    for (int coarse = 0; coarse < 2; coarse++) {
      const int n = cshapes[sh][0], d = cshapes[sh][1];
      gen(Qb, Kb, n, d, 7717 + sh, coarse);
      const int ks[] = {1, 3, n / 2, n, 0, 0, 0};
      const double fr[] = {0.15, 0.15, 0.15, 0.15, 0.15, 0.5, 0.01};
      for (int c = 0; c < 7; c++) {
        if (c < 4 && (ks[c] < 1 || ks[c] > n)) continue;
        spr_bl_topk_params p;
        spr_bl_topk_default(&p);
        p.q_bits = coarse ? 3 : 8;
        p.k = ks[c];
        p.keep_fraction = fr[c];
        p.causal = 1;
        float qs, kss;
        ref_scores(Qb, Kb, n, d, p.q_bits, p.k_bits, qcb, kcb, Sb, &qs, &kss);
        int64_t kept;
        ref_topk_causal(n, p.k, p.keep_fraction, R, &kept);
        spr_bl_stats st;
        memset(M, 0xFF, sizeof M);
        CU_ASSERT_EQUAL_FATAL(spr_bl_topk(&p, Qb, Kb, n, d, &ws, M, &st), 0);
        CU_ASSERT_EQUAL(memcmp(M, R, mask_bytes(n)), 0);
        CU_ASSERT_EQUAL(st.n_kept, kept);
        CU_ASSERT_EQUAL(st.keep_rate, (double)kept / causal_pairs(n));
        /* k of the last query, the largest */
        int klast = p.k > 0 ? p.k : (int)lround(p.keep_fraction * n);
        CU_ASSERT_EQUAL(st.k, klast < 1 ? 1 : klast);
        CU_ASSERT_EQUAL(st.topk_inputs, causal_pairs(n));
        CU_ASSERT_EQUAL(st.mac_ops, causal_pairs(n) * d);
        cases++;
      }
    }
  CU_ASSERT(cases >= 60);
  /* by hand: d = 1, queries 1, keys 2, 3, 3, 1, 3 (the 3s tie), k = 2:
   * row 0 keeps {0}, row 1 {0, 1}, row 2 {1, 2}, row 3 {1, 2}, row 4 {1, 2};
   * fraction 0.5: k_i = 1, 1, 2 (1.5 rounds up), 2, 3 (2.5 rounds up):
   * {0}, {1}, {1, 2}, {1, 2}, {1, 2, 4} */
  const float Q[] = {1, 1, 1, 1, 1}, K[] = {2, 3, 3, 1, 3};
  spr_bl_topk_params p;
  spr_bl_topk_default(&p);
  p.causal = 1;
  p.k = 2;
  spr_bl_stats st;
  CU_ASSERT_EQUAL_FATAL(spr_bl_topk(&p, Q, K, 5, 1, &ws, M, &st), 0);
  const uint8_t want2[] = {0x01, 0x03, 0x06, 0x06, 0x06};
  for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(M[i], want2[i]);
  CU_ASSERT_EQUAL(st.n_kept, 9);
  p.k = 0;
  p.keep_fraction = 0.5;
  CU_ASSERT_EQUAL_FATAL(spr_bl_topk(&p, Q, K, 5, 1, &ws, M, &st), 0);
  const uint8_t wantf[] = {0x01, 0x02, 0x06, 0x06, 0x16};
  for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(M[i], wantf[i]);
  CU_ASSERT_EQUAL(st.n_kept, 9);
  CU_ASSERT_EQUAL(st.k, 3);
}

/* Sanger: the softmax of row i over keys 0 .. i in long double; the
 * operation counts of the causal pairs. */
static void test_causal_sanger(void) {
  int near = 0, total = 0, kept = 0;
  const double thrs[] = {2e-3, 0.02385, 0.1, 1.0};
  for (int sh = 0; sh < NCSHAPES; sh++)
    for (int coarse = 0; coarse < 2; coarse++)
      for (int t = 0; t < 4; t++) {
        const int n = cshapes[sh][0], d = cshapes[sh][1];
        const int64_t P = causal_pairs(n);
        gen(Qb, Kb, n, d, 90001 + sh, coarse);
        spr_bl_sanger_params p;
        spr_bl_sanger_default(&p);
        p.p_threshold = thrs[t];
        p.causal = 1;
        float qs, ks;
        ref_scores(Qb, Kb, n, d, p.q_bits, p.k_bits, qcb, kcb, Sb, &qs, &ks);
        spr_bl_stats st;
        memset(M, 0xFF, sizeof M);
        CU_ASSERT_EQUAL_FATAL(spr_bl_sanger(&p, Qb, Kb, n, d, &ws, M, &st), 0);
        CU_ASSERT_EQUAL(upper_bits(M, n), 0);
        const long double c = (long double)qs * ks / sqrtl((long double)d);
        for (int i = 0; i < n; i++) {
          long double z = 0;
          for (int j = 0; j <= i; j++) z += expl(c * (long double)Sb[i * n + j]);
          for (int j = 0; j <= i; j++) {
            const long double pr = expl(c * (long double)Sb[i * n + j]) / z;
            const int want = pr >= (long double)p.p_threshold;
            total++;
            kept += want;
            if (i == 0) { /* key 0 alone: probability 1, kept at any threshold */
              CU_ASSERT_EQUAL(bit(M, n, 0, 0), 1);
              continue;
            }
            if (fabsl(pr - p.p_threshold) <= 1e-12L * p.p_threshold) {
              near++;
              continue;
            }
            CU_ASSERT_EQUAL(bit(M, n, i, j), want);
          }
        }
        CU_ASSERT_EQUAL(st.mac_ops, P * d);
        CU_ASSERT_EQUAL(st.exp_ops, P);
        CU_ASSERT_EQUAL(st.cmp_ops, (P - n) + P);
        CU_ASSERT_EQUAL(st.add_ops, P + (P - n));
        CU_ASSERT_EQUAL(st.mul_ops, P + n);
        CU_ASSERT_EQUAL(st.n_kept, popcount_mask(M, n));
        CU_ASSERT_EQUAL(st.keep_rate, (double)st.n_kept / P);
      }
  CU_ASSERT(near * 1000 < total);
  CU_ASSERT(kept > total / 20 && kept < total);
}

/* LeOPArd: bit planes of the pairs j <= i only (brute-force prefix sums),
 * the causal oracle's mask. */
static void test_causal_leopard(void) {
  const int bits[][2] = {{8, 8}, {4, 8}, {3, 3}};
  int stops_seen = 0;
  for (int sh = 0; sh < NCSHAPES; sh++)
    for (int coarse = 0; coarse < 2; coarse++)
      for (int b = 0; b < 3; b++) {
        const int n = cshapes[sh][0], d = cshapes[sh][1], qb = bits[b][0], B = bits[b][1];
        const int64_t P = causal_pairs(n);
        gen(Qb, Kb, n, d, 3301 + sh, coarse);
        float qs, ks;
        ref_scores(Qb, Kb, n, d, qb, B, qcb, kcb, Sb, &qs, &ks);
        const double thrs[] = {(double)Sb[(n * n) / 4], 0.0, -1e9, 1e9};
        for (int t = 0; t < 4; t++) {
          const double thr = thrs[t];
          int64_t nbits = 0, stops = 0;
          memset(R, 0, sizeof R);
          for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) {
              if ((double)Sb[i * n + j] >= thr) put(R, n, i, j);
              int m = 1;
              for (; m <= B; m++)
                if ((double)(ref_partial(qcb + i * d, kcb + j * d, d, B, m) +
                             ref_bound(qcb + i * d, d, B, m)) < thr)
                  break;
              if (m < B) stops++;
              nbits += m > B ? B : m;
            }
          spr_bl_leopard_params p;
          spr_bl_leopard_default(&p);
          p.q_bits = qb;
          p.k_bits = B;
          p.threshold = thr;
          p.causal = 1;
          spr_bl_stats st;
          memset(M, 0xC3, sizeof M);
          CU_ASSERT_EQUAL_FATAL(spr_bl_leopard(&p, Qb, Kb, n, d, &ws, M, &st), 0);
          CU_ASSERT_EQUAL(memcmp(M, R, mask_bytes(n)), 0);
          CU_ASSERT_EQUAL(st.key_bits_processed, nbits);
          CU_ASSERT_EQUAL(st.early_stops, stops);
          CU_ASSERT_EQUAL(st.mean_bits_per_key, (double)nbits / P);
          CU_ASSERT_EQUAL(st.mac_ops, nbits * d);
          CU_ASSERT_EQUAL(st.cmp_ops, nbits);
          CU_ASSERT_EQUAL(st.add_ops, nbits + (int64_t)n * d + (int64_t)n * B);
          CU_ASSERT_EQUAL(st.keep_rate, (double)popcount_mask(R, n) / P);
          stops_seen += stops > 0 && stops < P;
          /* extremes: nothing passes, every pair stops after the sign
           * plane; everything passes, every pair reads B planes */
          if (t == 3) CU_ASSERT_EQUAL(st.key_bits_processed, P);
          if (t == 2) CU_ASSERT_EQUAL(st.key_bits_processed, P * B);
          /* the causal oracle: the same mask */
          spr_bl_oracle_params o = {qb, B, thr, 1};
          CU_ASSERT_EQUAL(spr_bl_oracle(&o, Qb, Kb, n, d, &ws, R, NULL), 0);
          CU_ASSERT_EQUAL(memcmp(M, R, mask_bytes(n)), 0);
        }
      }
  CU_ASSERT(stops_seen > 10);
}

/* Window + global, causal: test_window_hand's n = 10 case (half-width 1,
 * globals 7 and 0) restricted to j <= i, by hand; then random parameters
 * against the definition. */
static void test_causal_window(void) {
  static const char *const w1[] = {
      "1000000000", /* 0 global: keys 0 .. 0 */
      "1100000000", "1110000000", "1011000000", "1001100000",
      "1000110000", "1000011000",
      "1111111100", /* 7 global: keys 0 .. 7 */
      "1000000110", "1000000111"}; /* key 7 global: rows 7 .. 9 */
  const int g[] = {7, 0};
  spr_bl_window_params p = {1, 2, g, 1};
  spr_bl_stats st;
  memset(M, 0xFF, sizeof M);
  CU_ASSERT_EQUAL_FATAL(spr_bl_window(&p, 10, M, &st), 0);
  check_rows(10, w1);
  CU_ASSERT_EQUAL(st.n_kept, 33); /* 1 + 2 + 3 + 3 + 3 + 3 + 3 + 8 + 3 + 4 */
  CU_ASSERT_EQUAL(st.keep_rate, 33.0 / 55);
  int checked = 0;
  for (int n = 1; n <= NMAX; n += 3)
    for (int w = 0; w <= 5; w += 2)
      for (int ng = 0; ng <= 3 && ng <= n; ng++) {
        int pos[3];
        for (int a = 0; a < ng; a++) pos[a] = (n - 1 - 5 * a) >= 0 ? n - 1 - 5 * a : a;
        int distinct = 1;
        for (int a = 0; a < ng; a++)
          for (int b = 0; b < a; b++) distinct &= pos[a] != pos[b];
        if (!distinct) continue;
        spr_bl_window_params q = {w, ng, pos, 1};
        memset(M, 0xFF, sizeof M);
        CU_ASSERT_EQUAL_FATAL(spr_bl_window(&q, n, M, &st), 0);
        memset(R, 0, sizeof R);
        int64_t c = 0;
        for (int i = 0; i < n; i++)
          for (int j = 0; j <= i; j++) {
            int glob = 0;
            for (int a = 0; a < ng; a++) glob |= pos[a] == i || pos[a] == j;
            if (i - j <= w || glob) {
              put(R, n, i, j);
              c++;
            }
          }
        CU_ASSERT_EQUAL(memcmp(M, R, mask_bytes(n)), 0);
        CU_ASSERT_EQUAL(st.n_kept, c);
        checked++;
      }
  CU_ASSERT(checked > 40);
}

/* ---- keep-rate matching (docs/baselines.md section 6) -------------------- */

/* Brute force: the achievable kept counts of a knob, the one nearest
 * target (ties to the larger count). */
static int64_t nearest(const int64_t *counts, int m, double target) {
  int64_t best = -1;
  double err = INFINITY;
  for (int k = 0; k < m; k++) {
    const double e = fabs((double)counts[k] - target);
    if (e < err || (e == err && counts[k] > best)) err = e, best = counts[k];
  }
  return best;
}

/* Top-k: every fraction's count is sum_i max(1, round(f nk_i)); the
 * counts change only at f = (m + 1/2) / nk, so evaluating the breakpoints
 * and just below them enumerates them all. */
static void test_match_topk(void) {
  const int ns[] = {1, 7, 40, 128};
  const double targets[] = {0.0, 0.05, 0.2385, 0.5, 0.77, 1.0};
  static int64_t counts[200000];
  for (int a = 0; a < 4; a++)
    for (int causal = 0; causal < 2; causal++) {
      const int n = ns[a];
      int m = 0;
      for (int nk = 1; nk <= n; nk++)
        for (int k = 0; k <= nk; k++) {
          const double b = (k + 0.5) / nk;
          const double fs[2] = {b, nextafter(b, 0)};
          for (int t = 0; t < 2; t++) {
            if (!(fs[t] > 0 && fs[t] <= 1)) continue;
            int64_t c = 0;
            for (int i = 0; i < n; i++) {
              const int nki = causal ? i + 1 : n;
              const double kk = round(fs[t] * nki);
              c += kk < 1 ? 1 : (int64_t)kk;
            }
            counts[m++] = c;
          }
        }
      counts[m++] = causal ? (int64_t)n * (n + 1) / 2 : (int64_t)n * n; /* f = 1 */
      const double P = causal ? n * (n + 1) / 2.0 : (double)n * n;
      for (int t = 0; t < 6; t++) {
        double f, got;
        CU_ASSERT_EQUAL_FATAL(spr_bl_topk_match(n, causal, targets[t], &f, &got), 0);
        const int64_t want = nearest(counts, m, targets[t] * P);
        CU_ASSERT_DOUBLE_EQUAL(got * P, (double)want, 1e-6);
        /* the baseline itself keeps that many at the fraction */
        if (n <= NMAX) {
          gen(Qb, Kb, n, 8, 77 + t, 0);
          spr_bl_topk_params p;
          spr_bl_topk_default(&p);
          p.keep_fraction = f;
          p.causal = causal;
          spr_bl_stats st;
          CU_ASSERT_EQUAL_FATAL(spr_bl_topk(&p, Qb, Kb, n, 8, &ws, M, &st), 0);
          CU_ASSERT_EQUAL(st.n_kept, want);
        }
      }
    }
  double f;
  CU_ASSERT_EQUAL(spr_bl_topk_match(10, 0, 1.5, &f, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_topk_match: keep_rate = 1.5 outside [0, 1]");
  CU_ASSERT_EQUAL(spr_bl_topk_match(0, 0, 0.5, &f, NULL), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_bl_topk_match(10, 0, 0.5, NULL, NULL), SPR_EINVAL);
}

/* Sanger: the achievable counts are those of thresholds at each distinct
 * predicted probability (long double softmax, as the brute force of
 * test_sanger_vs_brute) and at 1; the calibrated threshold makes the
 * baseline itself keep the nearest of them. */
static void test_match_sanger(void) {
  static int64_t counts[NMAX * NMAX + 2];
  static long double pr[NMAX * NMAX];
  const double targets[] = {0.0, 0.1, 0.2385, 0.6, 1.0};
  for (int trial = 0; trial < 12; trial++) {
    const int n = 5 + trial * 3, d = 3 + trial % 6, causal = trial % 2, coarse = trial % 3 == 0;
    gen(Qb, Kb, n, d, 900 + trial, coarse);
    float qs, ks;
    ref_scores(Qb, Kb, n, d, 4, 4, qcb, kcb, Sb, &qs, &ks);
    const long double c = (long double)qs * ks / sqrtl((long double)d);
    int np = 0;
    for (int i = 0; i < n; i++) {
      const int nk = causal ? i + 1 : n;
      long double z = 0;
      for (int j = 0; j < nk; j++) z += expl(c * (long double)Sb[i * n + j]);
      for (int j = 0; j < nk; j++) pr[np++] = expl(c * (long double)Sb[i * n + j]) / z;
    }
    int m = 0;
    for (int a = 0; a < np; a++) {
      int64_t cnt = 0;
      for (int b = 0; b < np; b++) cnt += pr[b] >= pr[a];
      counts[m++] = cnt;
    }
    int64_t at1 = 0;
    for (int b = 0; b < np; b++) at1 += pr[b] >= 1.0L - 1e-15L;
    counts[m++] = at1;
    for (int t = 0; t < 5; t++) {
      spr_bl_sanger_params p;
      spr_bl_sanger_default(&p);
      p.causal = causal;
      double pt, got;
      CU_ASSERT_EQUAL_FATAL(spr_bl_sanger_calibrate(&p, Qb, Kb, n, d, targets[t], &ws, &pt, &got), 0);
      CU_ASSERT(pt > 0 && pt <= 1);
      const int64_t want = nearest(counts, m, targets[t] * np);
      p.p_threshold = pt;
      spr_bl_stats st;
      CU_ASSERT_EQUAL_FATAL(spr_bl_sanger(&p, Qb, Kb, n, d, &ws, M, &st), 0);
      if (st.n_kept != want)
        fprintf(stderr, "\n  n %d causal %d target %g: kept %lld, want %lld", n, causal,
                targets[t], (long long)st.n_kept, (long long)want);
      CU_ASSERT_EQUAL(st.n_kept, want);
      CU_ASSERT_DOUBLE_EQUAL(got * np, (double)st.n_kept, 1e-6);
    }
  }
  spr_bl_sanger_params p;
  spr_bl_sanger_default(&p);
  double pt;
  CU_ASSERT_EQUAL(spr_bl_sanger_calibrate(&p, Qb, Kb, 8, 4, -0.1, &ws, &pt, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_sanger_calibrate: keep_rate = -0.1 outside [0, 1]");
  CU_ASSERT_EQUAL(spr_bl_sanger_calibrate(&p, Qb, Kb, 8, 4, 0.5, &ws, NULL, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "p_threshold is NULL");
  CU_ASSERT_EQUAL(spr_bl_sanger_calibrate(&p, NULL, Kb, 8, 4, 0.5, &ws, &pt, NULL), SPR_EINVAL);
}

/* Window: every half-width from 0 to n through spr_bl_window itself. */
static void test_match_window(void) {
  static int64_t counts[NMAX + 1];
  const int pos[3] = {5, 0, 17};
  const double targets[] = {0.0, 0.1, 0.2385, 0.5, 0.9, 1.0};
  for (int trial = 0; trial < 8; trial++) {
    const int n = 3 + 5 * trial, causal = trial % 2;
    spr_bl_window_params p = {0, trial % 3, trial >= 4 && n > 17 ? pos : NULL, causal};
    for (int w = 0; w <= n; w++) {
      p.half_width = w;
      CU_ASSERT_EQUAL_FATAL(spr_bl_window(&p, n, M, NULL), 0);
      counts[w] = popcount_mask(M, n);
    }
    const double P = causal ? n * (n + 1) / 2.0 : (double)n * n;
    for (int t = 0; t < 6; t++) {
      int w;
      double got;
      p.half_width = 2385; /* ignored */
      CU_ASSERT_EQUAL_FATAL(spr_bl_window_match(&p, n, targets[t], &w, &got), 0);
      CU_ASSERT(w >= 0 && w <= n);
      CU_ASSERT_EQUAL(counts[w], nearest(counts, n + 1, targets[t] * P));
      CU_ASSERT_DOUBLE_EQUAL(got * P, (double)counts[w], 1e-6);
    }
  }
  spr_bl_window_params p = {0, 1, NULL, 0};
  int w;
  CU_ASSERT_EQUAL(spr_bl_window_match(&p, 10, 2.0, &w, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_bl_window_match: keep_rate = 2 outside [0, 1]");
  p.n_global = 11;
  CU_ASSERT_EQUAL(spr_bl_window_match(&p, 10, 0.5, &w, NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "n_global = 11 outside [0, n = 10]");
  CU_ASSERT_EQUAL(spr_bl_window_match(NULL, 10, 0.5, &w, NULL), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_bl_window_match(&p, 10, 0.5, NULL, NULL), SPR_EINVAL);
}

/* ---- row kernels in blocks (shared scores, long sequences) ---------------- */

/* The row kernels over exact scores, run in blocks of 7 rows, give the
 * whole-head functions' masks and counts (causal and not): the oracle's
 * threshold rows, top-k, Sanger with its exponential table, LeOPArd's
 * plane counts; the quantile in blocks gives the calibration's
 * threshold. */
static void test_rows_in_blocks(void) {
  const int n = 40, d = 11;
  int32_t S[40 * 40], S4[40 * 40], L[40 * 40];
  int32_t cand[40];
  double e8[8 * 40], tab[SPR_BL_EXP_TAB + 1];
  uint8_t Mb[40 * 5];
  spr_i8mat *pk, *plow[7];
  CU_ASSERT_FATAL(spr_i8mat_alloc(n, d, n, &pk) == 0);
  for (int r = 0; r < 7; r++) CU_ASSERT_FATAL(spr_i8mat_alloc(n, d, n, &plow[r]) == 0);
  int8_t q8[40 * 11], k8[40 * 11], q4[40 * 11], k4[40 * 11];
  const size_t rb = spr_mask_row_bytes(n);
  for (int seed = 1; seed <= 4; seed++)
    for (int causal = 0; causal < 2; causal++) {
      gen(Qb, Kb, n, d, 2385 + seed, seed & 1);
      float qs, ks, qs4, ks4;
      CU_ASSERT_FATAL(spr_quant_sym(Qb, n * d, 8, q8, &qs) == 0 && spr_quant_sym(Kb, n * d, 8, k8, &ks) == 0);
      CU_ASSERT_FATAL(spr_quant_sym(Qb, n * d, 4, q4, &qs4) == 0 && spr_quant_sym(Kb, n * d, 4, k4, &ks4) == 0);
      CU_ASSERT_FATAL(spr_i8mat_pack(pk, k8, n, d, d) == 0 && spr_i8mat_mul(pk, q8, d, n, n, S, n) == 0);
      CU_ASSERT_FATAL(spr_i8mat_pack(pk, k4, n, d, d) == 0 && spr_i8mat_mul(pk, q4, d, n, n, S4, n) == 0);
      /* the oracle: calibration from the quantile in blocks, then its rows */
      spr_bl_oracle_params op;
      spr_bl_oracle_default(&op);
      op.causal = causal;
      double th, th2, ach, ach2;
      CU_ASSERT_FATAL(spr_bl_oracle_calibrate(&op, Qb, Kb, n, d, 0.27, &ws, &th, &ach) == 0);
      spr_bl_quantile *h;
      CU_ASSERT_FATAL(spr_bl_quantile_alloc(&h, 16384 * d) == 0);
      int32_t bq = 0;
      for (int t = 0; t < n * d; t++) bq = abs(q8[t]) > bq ? abs(q8[t]) : bq;
      int32_t bk = 0;
      for (int t = 0; t < n * d; t++) bk = abs(k8[t]) > bk ? abs(k8[t]) : bk;
      CU_ASSERT_FATAL(spr_bl_quantile_begin(h, (int64_t)bq * bk * d) == 0);
      for (int pass = 0; pass < 2; pass++) {
        for (int i0 = 0; i0 < n; i0 += 7)
          spr_bl_quantile_rows(h, S + i0 * n, n, i0, n - i0 < 7 ? n - i0 : 7, n, causal);
        if (pass || !spr_bl_quantile_next(h, 0.27)) break;
      }
      spr_bl_quantile_result(h, 0.27, &th2, &ach2);
      CU_ASSERT_EQUAL(th, th2);
      CU_ASSERT_EQUAL(ach, ach2);
      spr_bl_quantile_free(h);
      op.threshold = th;
      CU_ASSERT_FATAL(spr_bl_oracle(&op, Qb, Kb, n, d, &ws, M, NULL) == 0);
      int64_t kept = 0;
      for (int i0 = 0; i0 < n; i0 += 7)
        kept += spr_bl_threshold_rows(S + i0 * n, n, i0, n - i0 < 7 ? n - i0 : 7, n, causal, th,
                                      Mb + i0 * rb);
      CU_ASSERT(memcmp(M, Mb, n * rb) == 0);
      CU_ASSERT_EQUAL(kept, popcount_mask(M, n));
      /* top-k by its fraction */
      spr_bl_topk_params tp;
      spr_bl_topk_default(&tp);
      tp.keep_fraction = 0.2385;
      tp.causal = causal;
      CU_ASSERT_FATAL(spr_bl_topk(&tp, Qb, Kb, n, d, &ws, M, NULL) == 0);
      for (int i0 = 0; i0 < n; i0 += 7)
        spr_bl_topk_rows(S + i0 * n, n, i0, n - i0 < 7 ? n - i0 : 7, n, causal, 0, 0.2385,
                         Mb + i0 * rb, cand);
      CU_ASSERT(memcmp(M, Mb, n * rb) == 0);
      /* Sanger: the table is exp itself at every difference */
      spr_bl_sanger_params sp;
      spr_bl_sanger_default(&sp);
      sp.causal = causal;
      CU_ASSERT_FATAL(spr_bl_sanger(&sp, Qb, Kb, n, d, &ws, M, NULL) == 0);
      const double c = (double)qs4 * (double)ks4 / sqrt((double)d);
      spr_bl_exp_table(c, 4000, tab);
      for (int t = 0; t < 4000; t += 37) CU_ASSERT_EQUAL(tab[t], exp(c * (double)(-t)));
      for (int i0 = 0; i0 < n; i0 += 7)
        spr_bl_sanger_rows(S4 + i0 * n, n, i0, n - i0 < 7 ? n - i0 : 7, n, causal, c, sp.p_threshold,
                           seed < 3 ? tab : NULL, 4000, e8, Mb + i0 * rb);
      CU_ASSERT(memcmp(M, Mb, n * rb) == 0);
      /* LeOPArd's plane counts */
      spr_bl_leopard_params lp;
      spr_bl_leopard_default(&lp);
      lp.threshold = th;
      lp.causal = causal;
      spr_bl_stats st;
      CU_ASSERT_FATAL(spr_bl_leopard(&lp, Qb, Kb, n, d, &ws, M, &st) == 0);
      int64_t qpos[40], bits = 0, stops = 0;
      for (int i = 0; i < n; i++) {
        qpos[i] = 0;
        for (int t = 0; t < d; t++) qpos[i] += q8[i * d + t] > 0 ? q8[i * d + t] : 0;
      }
      CU_ASSERT_FATAL(spr_bl_leopard_pack(k8, n, d, 8, plow, NULL) == 0);
      for (int i0 = 0; i0 < n; i0 += 7)
        CU_ASSERT_FATAL(spr_bl_leopard_rows(q8 + i0 * d, d, qpos + i0, S + i0 * n, n, i0,
                                            n - i0 < 7 ? n - i0 : 7, n, causal, 8, th, plow, L,
                                            &bits, &stops) == 0);
      CU_ASSERT_EQUAL(bits, st.key_bits_processed);
      CU_ASSERT_EQUAL(stops, st.early_stops);
    }
  spr_i8mat_free(pk);
  for (int r = 0; r < 7; r++) spr_i8mat_free(plow[r]);
  /* the quantile's errors */
  spr_bl_quantile *h;
  CU_ASSERT_EQUAL(spr_bl_quantile_alloc(&h, (int64_t)1 << 31), SPR_EINVAL);
  CU_ASSERT_PTR_NULL(h);
  CU_ASSERT_FATAL(spr_bl_quantile_alloc(&h, 1000) == 0);
  CU_ASSERT_EQUAL(spr_bl_quantile_begin(h, -1), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "bound -1 outside [0, 2^30]");
  CU_ASSERT_EQUAL(spr_bl_quantile_begin(h, 1 << 24), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "above the");
  CU_ASSERT_EQUAL(spr_bl_quantile_begin(NULL, 10), SPR_EINVAL);
  spr_bl_quantile_free(h);
  spr_bl_quantile_free(NULL);
}

int main(void) {
  if (spr_bl_ws_alloc(&ws, NMAX, DMAX)) {
    fprintf(stderr, "test_baselines: %s\n", spr_errmsg());
    return 2;
  }
  CU_TestInfo tests[] = {{"dense: all ones, zero padding", test_dense},
                         {"oracle vs brute force (ties, bit widths)", test_oracle_vs_brute},
                         {"oracle: int64 path when float is not exact", test_oracle_wide},
                         {"oracle calibration vs brute force", test_calibrate_vs_brute},
                         {"oracle calibration: ties to the lower threshold", test_calibrate_tie},
                         {"top-k vs brute force (ties to lower index)", test_topk_vs_brute},
                         {"top-k rows: every k, spans up to the int32 range", test_topk_rows_wide},
                         {"top-k ties by hand", test_topk_ties_hand},
                         {"Sanger vs long double softmax", test_sanger_vs_brute},
                         {"Sanger: probability exactly on the threshold", test_sanger_exact_tie},
                         {"LeOPArd bound is valid and attained", test_leopard_bound_exact},
                         {"LeOPArd vs brute force (mask, bit counts)", test_leopard_vs_brute},
                         {"LeOPArd extreme thresholds", test_leopard_extremes},
                         {"window + global by hand", test_window_hand},
                         {"defaults", test_defaults},
                         {"error paths", test_errors},
                         {"causal dense: lower triangle", test_causal_dense},
                         {"causal oracle and calibration vs brute force", test_causal_oracle_calibrate},
                         {"causal top-k vs brute force and by hand", test_causal_topk},
                         {"causal Sanger vs long double softmax over j <= i", test_causal_sanger},
                         {"causal LeOPArd vs brute force (mask, bit counts)", test_causal_leopard},
                         {"causal window + global by hand and vs definition", test_causal_window},
                         {"match: top-k fraction vs every achievable count", test_match_topk},
                         {"match: Sanger threshold vs long double probabilities", test_match_sanger},
                         {"match: window width vs every width", test_match_window},
                         {"row kernels in blocks = whole-head functions, quantile", test_rows_in_blocks},
                         CU_TEST_INFO_NULL};
  int rc = spr_test_run("baselines", tests);
  spr_bl_ws_free(&ws);
  return rc;
}
