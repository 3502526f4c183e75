/* test_workloads.c - the synthetic attention generator (workloads/).
 *
 * Unit tier.  Checks determinism, spr_attn_stats_compute against hand
 * values and an independent brute-force loop, the statistical targets of
 * docs/workloads.md for every head of both presets at their default N
 * (seed 1), and every error path of both functions.  About 2.5 s wall
 * (5 s CPU) on two cores.
 *
 * SPR_WL_REPORT=1 tests/test_workloads  additionally prints the tables of
 * docs/workloads.md (seeds 1 and 2, other N; a few minutes).
 */
#include "config.h"
#include "spr_test.h"
#include "spr_error.h"
#include "spr_params.h"
#include "spr_quant.h"
#include "spr_synth.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#define P_THR 2e-3

/* AddressSanitizer cannot run with a capped address space */
#if defined(__SANITIZE_ADDRESS__)
#define SPR_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPR_TEST_ASAN 1
#endif
#endif

static spr_workload_params preset_params(int preset, int n) {
  spr_workload_params wl = {.preset = preset, .seq_len = n, .n_layers = 12, .n_heads = 12,
                            .head_dim = 64};
  if (n == 0) wl.seq_len = preset == SPR_PRESET_VIT_BASE ? 197 : 512;
  return wl;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- determinism ------------------------------------------------------- */

static void test_determinism(void) {
  const spr_workload_params wl = preset_params(SPR_PRESET_BERT_BASE, 0);
  const size_t nd = (size_t)wl.seq_len * wl.head_dim, bytes = nd * sizeof(float);
  float *Q1 = malloc(bytes), *K1 = malloc(bytes), *V1 = malloc(bytes);
  float *Q2 = malloc(bytes), *K2 = malloc(bytes), *V2 = malloc(bytes);
  CU_ASSERT_FATAL(Q1 && K1 && V1 && Q2 && K2 && V2);

  CU_ASSERT_EQUAL(spr_synth_head(&wl, 7, 3, 5, Q1, K1, V1), 0);
  /* other heads in between, then the same key again, without V */
  CU_ASSERT_EQUAL(spr_synth_head(&wl, 7, 11, 0, Q2, K2, V2), 0);
  CU_ASSERT_EQUAL(spr_synth_head(&wl, 7, 3, 5, Q2, K2, NULL), 0);
  CU_ASSERT_EQUAL(memcmp(Q1, Q2, bytes), 0);
  CU_ASSERT_EQUAL(memcmp(K1, K2, bytes), 0);
  CU_ASSERT_EQUAL(spr_synth_head(&wl, 7, 3, 5, Q2, K2, V2), 0);
  CU_ASSERT_EQUAL(memcmp(V1, V2, bytes), 0);
  int finite = 1;
  for (size_t i = 0; i < nd; i++)
    if (!isfinite(Q1[i]) || !isfinite(K1[i]) || !isfinite(V1[i])) finite = 0;
  CU_ASSERT(finite);

  /* a different head, layer or seed gives different Q, K and V */
  CU_ASSERT_EQUAL(spr_synth_head(&wl, 7, 3, 6, Q2, K2, V2), 0);
  CU_ASSERT(memcmp(Q1, Q2, bytes) != 0 && memcmp(K1, K2, bytes) != 0 && memcmp(V1, V2, bytes) != 0);
  CU_ASSERT_EQUAL(spr_synth_head(&wl, 7, 4, 5, Q2, K2, V2), 0);
  CU_ASSERT(memcmp(Q1, Q2, bytes) != 0 && memcmp(K1, K2, bytes) != 0);
  CU_ASSERT_EQUAL(spr_synth_head(&wl, 8, 3, 5, Q2, K2, V2), 0);
  CU_ASSERT(memcmp(Q1, Q2, bytes) != 0 && memcmp(K1, K2, bytes) != 0);
  free(Q1); free(K1); free(V1); free(Q2); free(K2); free(V2);

  /* a whole layer: serial, versus reverse order in parallel threads, with
   * one BLAS thread each as sprintsim calls BLAS (spr_run_alloc).  Not with
   * two BLAS threads: OpenBLAS 0.3.21's Haswell sgemm kernels (its AVX2
   * kernels; some machines force them with OPENBLAS_CORETYPE=Haswell) give
   * last bits that depend on how its threads split the product
   * (docs/workloads.md 2.8); its SkylakeX and Cooperlake kernels do not. */
  const int H = wl.n_heads;
  float *A = malloc(2 * (size_t)H * bytes), *B = malloc(2 * (size_t)H * bytes);
  CU_ASSERT_FATAL(A && B);
  openblas_set_num_threads(1);
  int rc_a = 0, rc_b = 0;
  for (int h = 0; h < H; h++)
    rc_a |= spr_synth_head(&wl, 1, 9, h, A + 2 * h * nd, A + (2 * h + 1) * nd, NULL);
#pragma omp parallel for schedule(dynamic, 1) reduction(| : rc_b)
  for (int k = 0; k < H; k++) {
    const int h = H - 1 - k;
    rc_b |= spr_synth_head(&wl, 1, 9, h, B + 2 * h * nd, B + (2 * h + 1) * nd, NULL);
  }
  CU_ASSERT_EQUAL(rc_a, 0);
  CU_ASSERT_EQUAL(rc_b, 0);
  CU_ASSERT_EQUAL(memcmp(A, B, 2 * (size_t)H * bytes), 0);
  free(A);
  free(B);
}

/* ---- spr_attn_stats_compute against known answers --------------------- */

/* Independent reference: probabilities straight from the definition
 * p_ij = exp(l_ij) / sum_j exp(l_ij) (no max shift: only for small l). */
static void brute_stats(const float *Q, const float *K, int n, int d, double thr,
                        double *dens, double *mass, double *nf) {
  int prev[16] = {0}, cur[16];
  *dens = *mass = *nf = 0;
  for (int i = 0; i < n; i++) {
    double e[16], z = 0;
    for (int j = 0; j < n; j++) {
      double l = 0;
      for (int c = 0; c < d; c++) l += (double)Q[i * d + c] * K[j * d + c];
      e[j] = exp(l / sqrt((double)d));
      z += e[j];
    }
    int kept = 0, fresh = 0;
    for (int j = 0; j < n; j++) {
      cur[j] = e[j] / z >= thr;
      kept += cur[j];
      if (cur[j]) *mass += e[j] / z;
      if (i > 0 && cur[j] && !prev[j]) fresh++;
    }
    *dens += (double)kept / n;
    if (i > 0) *nf += (double)fresh / n;
    memcpy(prev, cur, sizeof cur);
  }
  *dens /= n;
  *mass /= n;
  *nf /= n - 1;
}

static void test_stats_known(void) {
  spr_attn_stats st;
  /* By hand, n = 2, d = 1: query 0 = 2, keys 0 and ln(3)/2: logits 0 and
   * ln 3, p = (1/4, 3/4); query 1 = 0: p = (1/2, 1/2).  Threshold 0.3:
   * P_0 = {1}, P_1 = {0, 1}; density (1/2 + 1)/2 = 0.75, mass
   * (3/4 + 1)/2 = 0.875, new_frac |{0}| / 2 = 0.5. */
  {
    const float Q[2] = {2.0f, 0.0f}, K[2] = {0.0f, (float)(log(3.0) / 2)};
    CU_ASSERT_EQUAL_FATAL(spr_attn_stats_compute(Q, K, 2, 1, 0.3, &st), 0);
    CU_ASSERT_DOUBLE_EQUAL(st.density, 0.75, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(st.mass, 0.875, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(st.new_frac, 0.5, 1e-12);
  }
  /* p exactly at the threshold is kept (>=): uniform p = 1/2 */
  {
    const float Q[2] = {0.0f, 0.0f}, K[2] = {1.5f, -2.25f};
    CU_ASSERT_EQUAL_FATAL(spr_attn_stats_compute(Q, K, 2, 1, 0.5, &st), 0);
    CU_ASSERT_DOUBLE_EQUAL(st.density, 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(st.mass, 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(st.new_frac, 0.0, 1e-15);
  }
  /* Scale 1/sqrt(d): d = 4, q = (1,1,1,1), keys (1,1,1,1) and 0:
   * logits 4/2 = 2 and 0, p = e^2/(1+e^2) = 0.880797... and 0.119203...;
   * threshold 0.2 keeps key 0 only: density 0.5, mass 0.880797. */
  {
    const float Q[8] = {1, 1, 1, 1, 1, 1, 1, 1}, K[8] = {1, 1, 1, 1, 0, 0, 0, 0};
    CU_ASSERT_EQUAL_FATAL(spr_attn_stats_compute(Q, K, 2, 4, 0.2, &st), 0);
    CU_ASSERT_DOUBLE_EQUAL(st.density, 0.5, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(st.mass, exp(2.0) / (1 + exp(2.0)), 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(st.new_frac, 0.0, 1e-15);
  }
  /* n = 3, d = 2 with non-trivial values, against the brute-force loop */
  {
    const float Q[6] = {1.5f, -0.5f, 0.25f, 2.0f, -1.0f, 0.75f};
    const float K[6] = {2.0f, 0.5f, -0.5f, 1.0f, 1.25f, -1.5f};
    const double thr[3] = {0.05, 0.2, 0.385};
    for (int k = 0; k < 3; k++) {
      double dens, mass, nf;
      brute_stats(Q, K, 3, 2, thr[k], &dens, &mass, &nf);
      CU_ASSERT_EQUAL_FATAL(spr_attn_stats_compute(Q, K, 3, 2, thr[k], &st), 0);
      CU_ASSERT_DOUBLE_EQUAL(st.density, dens, 1e-12);
      CU_ASSERT_DOUBLE_EQUAL(st.mass, mass, 1e-12);
      CU_ASSERT_DOUBLE_EQUAL(st.new_frac, nf, 1e-12);
    }
    /* at 0.2 the masks differ between queries (the case is not trivial) */
    double dens, mass, nf;
    brute_stats(Q, K, 3, 2, 0.2, &dens, &mass, &nf);
    CU_ASSERT(dens > 0.34 && dens < 0.99 && nf > 0);
  }
  /* numerically stable: logits near 1000 (exp would overflow) */
  {
    const float Q[2] = {1000.0f, 1000.0f}, K[2] = {1.0f, 1.001f};
    const double l0 = 1000.0, l1 = 1000.0 * (double)1.001f;
    const double p1 = 1 / (1 + exp(l0 - l1));
    CU_ASSERT_EQUAL_FATAL(spr_attn_stats_compute(Q, K, 2, 1, 0.1, &st), 0);
    CU_ASSERT_DOUBLE_EQUAL(st.mass, 1.0, 1e-12); /* both kept: p1 = 0.731 */
    CU_ASSERT_DOUBLE_EQUAL(st.density, 1.0, 1e-12);
    CU_ASSERT_EQUAL_FATAL(spr_attn_stats_compute(Q, K, 2, 1, 0.5, &st), 0);
    CU_ASSERT_DOUBLE_EQUAL(st.mass, p1, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(st.density, 0.5, 1e-12);
  }
}

/* ---- statistical targets (docs/workloads.md, section 4) ---------------- */

typedef struct {
  int rc;
  spr_attn_stats st;
  double mass_ref, dens_ref; /* this file's own exact computation */
  double pearson;            /* corr(q4 . k4, q . k) over all (i, j) */
  double qmass;              /* mass kept by the |P_i| best quantized keys */
  double gen_s;              /* generation time */
} head_eval;

/* Generate one head and measure it: spr_attn_stats_compute, an exact
 * recomputation, and the quantized-score statistics (Q: 4-bit signed,
 * K: 8-bit signed, then its 4 MSBs). */
static void eval_head(const spr_workload_params *wl, uint64_t seed, int layer,
                      int head, head_eval *ev) {
  const int n = wl->seq_len, d = wl->head_dim;
  const size_t nd = (size_t)n * d;
  memset(ev, 0, sizeof *ev);
  float *Q = malloc(nd * sizeof *Q), *K = malloc(nd * sizeof *K);
  int8_t *q4 = malloc(nd), *k8 = malloc(nd), *k4 = malloc(nd);
  double *p = malloc((size_t)n * sizeof *p);
  int *sq = malloc((size_t)n * sizeof *sq);
  const int smax = 7 * 8 * d; /* |q4 . k4| <= 7 * 8 * d */
  int *hist = malloc((size_t)(2 * smax + 1) * sizeof *hist);
  if (!Q || !K || !q4 || !k8 || !k4 || !p || !sq || !hist) {
    ev->rc = SPR_ENOMEM;
    goto done;
  }
  double t0 = now_s();
  if ((ev->rc = spr_synth_head(wl, seed, layer, head, Q, K, NULL))) goto done;
  ev->gen_s = now_s() - t0;
  if ((ev->rc = spr_attn_stats_compute(Q, K, n, d, P_THR, &ev->st))) goto done;
  float sc_q, sc_k;
  if ((ev->rc = spr_quant_sym(Q, nd, 4, q4, &sc_q))) goto done;
  if ((ev->rc = spr_quant_sym(K, nd, 8, k8, &sc_k))) goto done;
  spr_quant_msb(k8, nd, 8, 4, k4);
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (int i = 0; i < n; i++) {
    double mx = -INFINITY, z = 0;
    for (int j = 0; j < n; j++) {
      double a = 0;
      int b = 0;
      for (int c = 0; c < d; c++) {
        a += (double)Q[(size_t)i * d + c] * K[(size_t)j * d + c];
        b += q4[(size_t)i * d + c] * k4[(size_t)j * d + c];
      }
      sx += a; sy += b; sxx += a * a; syy += (double)b * b; sxy += a * b;
      p[j] = a / sqrt((double)d);
      sq[j] = b;
      if (p[j] > mx) mx = p[j];
    }
    for (int j = 0; j < n; j++) z += (p[j] = exp(p[j] - mx));
    int nk = 0;
    double m = 0;
    for (int j = 0; j < n; j++) {
      p[j] /= z;
      if (p[j] >= P_THR) nk++, m += p[j];
    }
    ev->mass_ref += m;
    ev->dens_ref += (double)nk / n;
    /* the nk keys of largest quantized score, ties to the lower index:
     * find the score t with count(> t) < nk <= count(>= t) */
    memset(hist, 0, (size_t)(2 * smax + 1) * sizeof *hist);
    for (int j = 0; j < n; j++) hist[sq[j] + smax]++;
    int t = 2 * smax, above = 0;
    while (t > 0 && above + hist[t] < nk) above += hist[t--];
    double qm = 0;
    int ties = nk - above;
    for (int j = 0; j < n; j++) {
      const int v = sq[j] + smax;
      if (v > t || (v == t && ties-- > 0)) qm += p[j];
    }
    ev->qmass += qm;
  }
  const double cnt = (double)n * n;
  ev->pearson = (sxy / cnt - sx / cnt * sy / cnt) /
                sqrt((sxx / cnt - sx / cnt * sx / cnt) * (syy / cnt - sy / cnt * sy / cnt));
  ev->mass_ref /= n;
  ev->dens_ref /= n;
  ev->qmass /= n;
done:
  free(Q); free(K); free(q4); free(k8); free(k4); free(p); free(sq); free(hist);
}

typedef struct {
  double dmin, dmean, dmax, mmin, mmean, mmax, nmin, nmean, nmax;
  double pearson, qmass, qmin, gen_ms;
  int bad; /* heads outside mass >= 0.95, density in [0.05, 0.30] */
  int rc;
} preset_summary;

static void eval_preset(const spr_workload_params *wl, uint64_t seed,
                        head_eval *ev, preset_summary *s) {
  const int L = wl->n_layers, H = wl->n_heads;
#pragma omp parallel for schedule(dynamic, 1)
  for (int k = 0; k < L * H; k++) eval_head(wl, seed, k / H, k % H, &ev[k]);
  memset(s, 0, sizeof *s);
  s->dmin = s->mmin = s->nmin = s->qmin = INFINITY;
  for (int k = 0; k < L * H; k++) {
    const head_eval *e = &ev[k];
    if (e->rc) s->rc = e->rc;
    s->dmin = fmin(s->dmin, e->st.density);
    s->dmax = fmax(s->dmax, e->st.density);
    s->mmin = fmin(s->mmin, e->st.mass);
    s->mmax = fmax(s->mmax, e->st.mass);
    s->nmin = fmin(s->nmin, e->st.new_frac);
    s->nmax = fmax(s->nmax, e->st.new_frac);
    s->qmin = fmin(s->qmin, e->qmass);
    s->dmean += e->st.density / (L * H);
    s->mmean += e->st.mass / (L * H);
    s->nmean += e->st.new_frac / (L * H);
    s->pearson += e->pearson / (L * H);
    s->qmass += e->qmass / (L * H);
    s->gen_ms += 1e3 * e->gen_s / (L * H);
    s->bad += e->st.mass < 0.95 || e->st.density < 0.05 || e->st.density > 0.30;
  }
}

static void print_summary(const char *name, int n, uint64_t seed,
                          const preset_summary *s) {
  printf("\n  | %s | %d | %llu | %.3f / %.3f / %.3f | %.4f / %.4f / %.4f | "
         "%.4f / %.4f / %.4f | %.3f | %.4f (min %.4f) | %d | %.2f ms |",
         name, n, (unsigned long long)seed, s->dmin, s->dmean, s->dmax, s->mmin,
         s->mmean, s->mmax, s->nmin, s->nmean, s->nmax, s->pearson, s->qmass,
         s->qmin, s->bad, s->gen_ms);
}

static void check_targets(int preset, const char *name) {
  const spr_workload_params wl = preset_params(preset, 0);
  head_eval *ev = calloc((size_t)wl.n_layers * wl.n_heads, sizeof *ev);
  CU_ASSERT_FATAL(ev != NULL);
  preset_summary s;
  eval_preset(&wl, 1, ev, &s);
  CU_ASSERT_EQUAL_FATAL(s.rc, 0);
  for (int k = 0; k < wl.n_layers * wl.n_heads; k++) {
    const head_eval *e = &ev[k];
    const int ok = e->st.mass >= 0.95 && e->st.density >= 0.05 && e->st.density <= 0.30;
    if (!ok)
      fprintf(stderr, "\n  %s layer %d head %d: density %.4f mass %.4f\n", name,
              k / wl.n_heads, k % wl.n_heads, e->st.density, e->st.mass);
    CU_ASSERT(ok);
    /* the library agrees with this file's own exact computation */
    CU_ASSERT_DOUBLE_EQUAL(e->st.mass, e->mass_ref, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(e->st.density, e->dens_ref, 1e-12);
    CU_ASSERT(e->st.new_frac >= 0 && e->st.new_frac <= e->st.density + 1e-12);
  }
  CU_ASSERT(s.nmean >= 0.01 && s.nmean <= 0.05);
  CU_ASSERT(s.pearson >= 0.9);
  CU_ASSERT(s.qmass >= 0.95);
  /* s.gen_ms is reported (SPR_WL_REPORT=1), never asserted: no timed tests */
  print_summary(name, wl.seq_len, 1, &s);
  free(ev);
}

static void test_targets_bert(void) { check_targets(SPR_PRESET_BERT_BASE, "bert-base"); }
static void test_targets_vit(void) { check_targets(SPR_PRESET_VIT_BASE, "vit-base"); }

/* ---- errors ------------------------------------------------------------ */

#define EXPECT_ERR(call, code, needle)                                         \
  do {                                                                         \
    spr_error_clear();                                                         \
    CU_ASSERT_EQUAL((call), (code));                                           \
    SPR_ASSERT_CONTAINS(spr_errmsg(), (needle));                               \
  } while (0)

static void test_errors_synth(void) {
  spr_workload_params wl = preset_params(SPR_PRESET_BERT_BASE, 16);
  float Q[16 * 64], K[16 * 64];
  EXPECT_ERR(spr_synth_head(NULL, 1, 0, 0, Q, K, NULL), SPR_EINVAL, "wl = NULL");
  EXPECT_ERR(spr_synth_head(&wl, 1, 0, 0, NULL, K, NULL), SPR_EINVAL, "Q = NULL");
  EXPECT_ERR(spr_synth_head(&wl, 1, 0, 0, Q, NULL, NULL), SPR_EINVAL, "K = NULL");
  EXPECT_ERR(spr_synth_head(&wl, 1, -1, 0, Q, K, NULL), SPR_EINVAL, "layer = -1");
  EXPECT_ERR(spr_synth_head(&wl, 1, 12, 0, Q, K, NULL), SPR_EINVAL, "layer = 12");
  EXPECT_ERR(spr_synth_head(&wl, 1, 0, -3, Q, K, NULL), SPR_EINVAL, "head = -3");
  EXPECT_ERR(spr_synth_head(&wl, 1, 0, 12, Q, K, NULL), SPR_EINVAL, "head = 12");
  wl.n_heads = 5;
  EXPECT_ERR(spr_synth_head(&wl, 1, 0, 5, Q, K, NULL), SPR_EINVAL, "head = 5");
  wl = preset_params(SPR_PRESET_BERT_BASE, 1);
  EXPECT_ERR(spr_synth_head(&wl, 1, 0, 0, Q, K, NULL), SPR_EINVAL, "seq_len = 1");
  wl = preset_params(SPR_PRESET_VIT_BASE, 16);
  wl.head_dim = 0;
  EXPECT_ERR(spr_synth_head(&wl, 1, 0, 0, Q, K, NULL), SPR_EINVAL, "head_dim = 0");
  /* small shapes still work (V optional) */
  wl = preset_params(SPR_PRESET_VIT_BASE, 10);
  wl.head_dim = 3;
  CU_ASSERT_EQUAL(spr_synth_head(&wl, 1, 11, 11, Q, K, NULL), 0);
  wl = preset_params(SPR_PRESET_BERT_BASE, 2);
  wl.head_dim = 1;
  CU_ASSERT_EQUAL(spr_synth_head(&wl, 1, 0, 0, Q, K, Q + 64), 0);

  /* SPR_ENOMEM: in a child process whose address space is capped, ask for
   * a head whose workspace (> 4 GB) cannot fit.  Skipped under
   * AddressSanitizer, which cannot run with a capped address space. */
#ifdef SPR_TEST_ASAN
  fprintf(stderr, "\n  (ENOMEM case skipped under AddressSanitizer)");
#else
  fflush(NULL);
  pid_t pid = fork();
  CU_ASSERT_FATAL(pid >= 0);
  if (pid == 0) {
    struct rlimit rl = {(rlim_t)1 << 32, (rlim_t)1 << 32};
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
      if (fscanf(f, "%lu", &pages) != 1) pages = 0;
      fclose(f);
    }
    rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 29);
    if (setrlimit(RLIMIT_AS, &rl)) _exit(3);
    spr_workload_params big = preset_params(SPR_PRESET_BERT_BASE, 1 << 24);
    int rc = spr_synth_head(&big, 1, 0, 0, Q, K, NULL);
    _exit(rc == SPR_ENOMEM && strstr(spr_errmsg(), "16777216") ? 0 : 1);
  }
  int status = 0;
  CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
  CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#endif
}

static void test_errors_stats(void) {
  const float Q[4] = {0.5f, -1.25f, 2.0f, 0.75f}, K[4] = {1.0f, 0.25f, -0.5f, 1.5f};
  spr_attn_stats st;
  EXPECT_ERR(spr_attn_stats_compute(NULL, K, 2, 2, 2e-3, &st), SPR_EINVAL, "Q = NULL");
  EXPECT_ERR(spr_attn_stats_compute(Q, NULL, 2, 2, 2e-3, &st), SPR_EINVAL, "K = NULL");
  EXPECT_ERR(spr_attn_stats_compute(Q, K, 2, 2, 2e-3, NULL), SPR_EINVAL, "out = NULL");
  EXPECT_ERR(spr_attn_stats_compute(Q, K, 1, 2, 2e-3, &st), SPR_EINVAL, "n = 1");
  EXPECT_ERR(spr_attn_stats_compute(Q, K, -4, 2, 2e-3, &st), SPR_EINVAL, "n = -4");
  EXPECT_ERR(spr_attn_stats_compute(Q, K, 2, 0, 2e-3, &st), SPR_EINVAL, "d = 0");
  EXPECT_ERR(spr_attn_stats_compute(Q, K, 2, 2, 0.0, &st), SPR_EINVAL, "p_thr = 0");
  EXPECT_ERR(spr_attn_stats_compute(Q, K, 2, 2, 1.0, &st), SPR_EINVAL, "p_thr = 1");
  EXPECT_ERR(spr_attn_stats_compute(Q, K, 2, 2, -0.25, &st), SPR_EINVAL, "p_thr = -0.25");
  EXPECT_ERR(spr_attn_stats_compute(Q, K, 2, 2, NAN, &st), SPR_EINVAL, "p_thr = nan");
  CU_ASSERT_EQUAL(spr_attn_stats_compute(Q, K, 2, 2, 0.25, &st), 0);
}

/* ---- optional report: the tables of docs/workloads.md ------------------ */

static void report(void) {
  static const struct {
    int preset, n;
    uint64_t seed;
  } rows[] = {
      {SPR_PRESET_BERT_BASE, 512, 1}, {SPR_PRESET_BERT_BASE, 512, 2},
      {SPR_PRESET_VIT_BASE, 197, 1},  {SPR_PRESET_VIT_BASE, 197, 2},
      {SPR_PRESET_BERT_BASE, 128, 1}, {SPR_PRESET_BERT_BASE, 256, 1},
      {SPR_PRESET_BERT_BASE, 1024, 1}, {SPR_PRESET_BERT_BASE, 2048, 1},
      {SPR_PRESET_VIT_BASE, 50, 1},   {SPR_PRESET_VIT_BASE, 577, 1},
  };
  printf("| preset | N | seed | density min/mean/max | mass min/mean/max | "
         "new_frac min/mean/max | Pearson q4.k4 | quantized top-n mass (min) | "
         "heads out of range | generation per head |");
  for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
    const spr_workload_params wl = preset_params(rows[k].preset, rows[k].n);
    head_eval *ev = calloc((size_t)wl.n_layers * wl.n_heads, sizeof *ev);
    preset_summary s;
    if (!ev) return;
    eval_preset(&wl, rows[k].seed, ev, &s);
    print_summary(rows[k].preset ? "vit-base" : "bert-base", wl.seq_len, rows[k].seed, &s);
    fflush(stdout);
    free(ev);
  }
  printf("\n");
}

/* The synthetic head with a reused scratch: the same Q, K, V as the
 * allocating call, for heads of both presets drawn in any order; a scratch
 * of another shape refused. */
static void test_synth_ws(void) {
  spr_workload_params wl;
  memset(&wl, 0, sizeof wl);
  wl.preset = SPR_PRESET_BERT_BASE;
  wl.seq_len = 96;
  wl.head_dim = 32;
  wl.n_layers = 4;
  wl.n_heads = 4;
  const size_t nd = 96 * 32;
  float *Q = malloc(nd * 4), *K = malloc(nd * 4), *V = malloc(nd * 4);
  float *Q2 = malloc(nd * 4), *K2 = malloc(nd * 4), *V2 = malloc(nd * 4);
  spr_synth_ws *w;
  CU_ASSERT_FATAL(spr_synth_ws_alloc(96, 32, &w) == 0);
  int bad = 0;
  for (int p = 0; p < 2; p++) {
    wl.preset = p ? SPR_PRESET_VIT_BASE : SPR_PRESET_BERT_BASE;
    for (int l = 3; l >= 0; l--)
      for (int h = 0; h < 4; h++) {
        CU_ASSERT_FATAL(spr_synth_head(&wl, 2385, l, h, Q, K, V) == 0);
        CU_ASSERT_FATAL(spr_synth_head_ws(&wl, 2385, l, h, Q2, K2, V2, w) == 0);
        bad += memcmp(Q, Q2, nd * 4) || memcmp(K, K2, nd * 4) || memcmp(V, V2, nd * 4);
      }
  }
  CU_ASSERT_EQUAL(bad, 0);
  wl.seq_len = 97;
  CU_ASSERT_EQUAL(spr_synth_head_ws(&wl, 2385, 0, 0, Q2, K2, V2, w), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "synth: workspace for 96 x 32, head of 97 x 32");
  spr_synth_ws *w1 = NULL;
  CU_ASSERT_EQUAL(spr_synth_ws_alloc(1, 32, &w1), SPR_EINVAL);
  CU_ASSERT_PTR_NULL(w1);
  spr_synth_ws_free(w);
  spr_synth_ws_free(NULL);
  free(Q); free(K); free(V); free(Q2); free(K2); free(V2);
}

int main(void) {
  if (getenv("SPR_WL_REPORT")) report();
  static const CU_TestInfo tests[] = {
      {"determinism", test_determinism},
      {"stats known answers", test_stats_known},
      {"targets bert-base", test_targets_bert},
      {"targets vit-base", test_targets_vit},
      {"errors synth", test_errors_synth},
      {"errors stats", test_errors_stats},
      {"synthetic heads with a reused scratch", test_synth_ws},
      CU_TEST_INFO_NULL,
  };
  return spr_test_run("workloads", tests);
}
