/* test_vit.c - the ViT workload: Fashion-MNIST IDX reader, model reader,
 * forward pass against a naive reference, exact inference against the
 * PyTorch model's recorded predictions, SPRINT with every effect off,
 * reproducibility over thread counts, the HDF5 output, every reader error.
 *
 * The tests that need the Fashion-MNIST files or the committed model
 * (models/vit-fmnist.h5) skip when those are absent; the program then
 * exits with 77 (automake's SKIP) if everything else passed. */
#include "config.h"
#include "spr_attend.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_fmnist.h"
#include "spr_test.h"
#include "spr_vit.h"
#include "spr_vit_eval.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zlib.h>

#define DATA_DIR "/usr/share/datasets/fashion-mnist"

static int skipped = 0;

static void skip(const char *what) {
  fprintf(stderr, "\n  SKIP: %s\n", what);
  skipped = 1;
}

/* ---- a small synthetic model written by the test ------------------------ */

enum defect {
  OK = 0, MISSING_DSET, WRONG_SHAPE, WRONG_TYPE, NAN_VALUE, BAD_FORMAT, BAD_VERSION, BAD_HEADS,
  BAD_TOKENS, MISSING_ATTR, BAD_THETA, BAD_STD, BAD_LABEL, TEST_LENGTH, STRING_VERSION
};

#define SD 8   /* dim */
#define SL 2   /* depth */
#define SH 2   /* heads */
#define SM 12  /* mlp */
#define ST 197 /* tokens */

static uint64_t lcg_state;
static double urand(void) { /* uniform in [-1, 1) */
  lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(lcg_state >> 11) / 4503599627370496.0 - 1.0;
}

static void put_f(hid_t f, const char *name, int rank, hsize_t d0, hsize_t d1, double scale,
                  double offset, hid_t type) {
  hsize_t dims[2] = {d0, d1};
  size_t n = d0 * (rank == 2 ? d1 : 1);
  float *v = malloc(n * sizeof *v);
  for (size_t k = 0; k < n; k++) v[k] = (float)(offset + scale * urand());
  if (type == H5T_NATIVE_INT) {
    int *iv = malloc(n * sizeof *iv);
    for (size_t k = 0; k < n; k++) iv[k] = (int)v[k];
    H5LTmake_dataset(f, name, rank, dims, H5T_NATIVE_INT, iv);
    free(iv);
  } else {
    H5LTmake_dataset(f, name, rank, dims, H5T_NATIVE_FLOAT, v);
  }
  free(v);
}

static void attr_i(hid_t f, const char *obj, const char *name, long long v) {
  H5LTset_attribute_long_long(f, obj, name, &v, 1);
}
static void attr_d(hid_t f, const char *obj, const char *name, double v) {
  H5LTset_attribute_double(f, obj, name, &v, 1);
}

/* Write a model of SD x SL x SH x SM with weights from seed, with one defect. */
static void write_model(const char *path, int defect, uint64_t seed) {
  lcg_state = seed;
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5LTset_attribute_string(f, "/", "format", defect == BAD_FORMAT ? "sprintsim-bert" : "sprintsim-vit");
  if (defect == STRING_VERSION) H5LTset_attribute_string(f, "/", "version", "1");
  else attr_i(f, "/", "version", defect == BAD_VERSION ? 2 : 1);
  attr_i(f, "/", "patch", 2);
  attr_i(f, "/", "dim", SD);
  attr_i(f, "/", "depth", SL);
  attr_i(f, "/", "heads", defect == BAD_HEADS ? 3 : SH);
  attr_i(f, "/", "mlp", SM);
  attr_i(f, "/", "classes", 10);
  attr_i(f, "/", "tokens", defect == BAD_TOKENS ? 196 : ST);
  attr_d(f, "/", "norm_mean", 0.2860);
  attr_d(f, "/", "norm_std", defect == BAD_STD ? 0.0 : 0.3530);
  if (defect != MISSING_ATTR) attr_d(f, "/", "ln_eps", 1e-5);
  put_f(f, "embed_w", 2, SD, 4, 0.6, 0, H5T_NATIVE_FLOAT);
  put_f(f, "embed_b", 1, SD, 0, 0.1, 0, H5T_NATIVE_FLOAT);
  put_f(f, "cls", 1, SD, 0, 0.5, 0, H5T_NATIVE_FLOAT);
  put_f(f, "pos", 2, ST, SD, 0.3, 0, defect == WRONG_TYPE ? H5T_NATIVE_INT : H5T_NATIVE_FLOAT);
  for (int l = 0; l < SL; l++) {
    char g[16], n[64];
    snprintf(g, sizeof g, "layer_%d", l);
    H5Gclose(H5Gcreate2(f, g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
#define N(x) (snprintf(n, sizeof n, "%s/%s", g, x), n)
    put_f(f, N("ln1_w"), 1, SD, 0, 0.2, 1.0, H5T_NATIVE_FLOAT);
    put_f(f, N("ln1_b"), 1, SD, 0, 0.1, 0, H5T_NATIVE_FLOAT);
    put_f(f, N("qkv_w"), 2, 3 * SD, defect == WRONG_SHAPE && l == 0 ? SD + 1 : SD, 0.7, 0,
          H5T_NATIVE_FLOAT);
    put_f(f, N("qkv_b"), 1, 3 * SD, 0, 0.1, 0, H5T_NATIVE_FLOAT);
    put_f(f, N("proj_w"), 2, SD, SD, 0.4, 0, H5T_NATIVE_FLOAT);
    put_f(f, N("proj_b"), 1, SD, 0, 0.1, 0, H5T_NATIVE_FLOAT);
    put_f(f, N("ln2_w"), 1, SD, 0, 0.2, 1.0, H5T_NATIVE_FLOAT);
    put_f(f, N("ln2_b"), 1, SD, 0, 0.1, 0, H5T_NATIVE_FLOAT);
    put_f(f, N("fc1_w"), 2, SM, SD, 0.4, 0, H5T_NATIVE_FLOAT);
    if (!(defect == MISSING_DSET && l == 1)) put_f(f, N("fc1_b"), 1, SM, 0, 0.1, 0, H5T_NATIVE_FLOAT);
    put_f(f, N("fc2_w"), 2, SD, SM, 0.4, 0, H5T_NATIVE_FLOAT);
    put_f(f, N("fc2_b"), 1, SD, 0, 0.1, 0, H5T_NATIVE_FLOAT);
#undef N
    attr_d(f, g, "theta", defect == BAD_THETA && l == 1 ? NAN : 0.2385 * (l + 1));
  }
  put_f(f, "ln_w", 1, SD, 0, 0.2, 1.0, H5T_NATIVE_FLOAT);
  put_f(f, "ln_b", 1, SD, 0, 0.1, 0, H5T_NATIVE_FLOAT);
  put_f(f, "head_w", 2, 10, SD, 1.0, 0, H5T_NATIVE_FLOAT);
  put_f(f, "head_b", 1, 10, 0, 0.1, 0, H5T_NATIVE_FLOAT);
  if (defect == NAN_VALUE) {
    hid_t d = H5Dopen2(f, "head_w", H5P_DEFAULT);
    float v[10 * SD];
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    v[37] = NAN;
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
  }
  H5Gclose(H5Gcreate2(f, "test", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  uint8_t lab[5] = {3, 1, 4, 1, defect == BAD_LABEL ? 12 : 5};
  hsize_t n5 = 5, n4 = defect == TEST_LENGTH ? 4 : 5;
  H5LTmake_dataset(f, "test/labels", 1, &n5, H5T_NATIVE_UINT8, lab);
  H5LTmake_dataset(f, "test/pred_exact", 1, &n4, H5T_NATIVE_UINT8, lab);
  H5LTmake_dataset(f, "test/pred_pruned", 1, &n5, H5T_NATIVE_UINT8, lab);
  H5Fclose(f);
}

/* Images with deterministic pixels. */
static void fake_images(spr_fmnist *d, int count, uint64_t seed) {
  lcg_state = seed;
  d->count = count;
  d->rows = d->cols = 28;
  d->pixels = malloc((size_t)count * 784);
  d->labels = malloc((size_t)count);
  for (int i = 0; i < count; i++) {
    for (int k = 0; k < 784; k++) d->pixels[(size_t)i * 784 + k] = (uint8_t)(128 + 127 * urand());
    d->labels[i] = (uint8_t)(i * 7 % 10);
  }
}

/* ---- the naive reference forward pass (double, triple loops) ------------ */

static void ref_ln(const double *x, int D, const float *g, const float *b, double eps, double *y) {
  double mu = 0, var = 0;
  for (int k = 0; k < D; k++) mu += x[k];
  mu /= D;
  for (int k = 0; k < D; k++) var += (x[k] - mu) * (x[k] - mu);
  var /= D;
  for (int k = 0; k < D; k++) y[k] = (x[k] - mu) / sqrt(var + eps) * g[k] + b[k];
}

static void ref_forward(const spr_vit *m, const uint8_t *img, double *logits) {
  const int T = m->tokens, D = m->dim, H = m->heads, d = m->head_dim, M = m->mlp, p = m->patch;
  const int np = 28 / p;
  double *x = calloc((size_t)T * D, sizeof *x), *h = calloc((size_t)T * D, sizeof *h);
  double *qkv = calloc((size_t)T * 3 * D, sizeof *qkv), *o = calloc((size_t)T * D, sizeof *o);
  double *f = calloc((size_t)M, sizeof *f), *h2 = calloc((size_t)D, sizeof *h2);
  double *s = calloc((size_t)T, sizeof *s);
  for (int k = 0; k < D; k++) x[k] = m->cls[k] + m->pos[k];
  for (int t = 1; t < T; t++) {
    const int a = (t - 1) / np, b = (t - 1) % np;
    for (int k = 0; k < D; k++) {
      double acc = m->embed_b[k];
      for (int u = 0; u < p; u++)
        for (int v = 0; v < p; v++) {
          const double px = (img[(a * p + u) * 28 + b * p + v] / 255.0 - m->norm_mean) / m->norm_std;
          acc += m->embed_w[k * p * p + u * p + v] * px;
        }
      x[t * D + k] = acc + m->pos[t * D + k];
    }
  }
  for (int l = 0; l < m->depth; l++) {
    const spr_vit_layer *y = &m->layer[l];
    for (int t = 0; t < T; t++) ref_ln(x + t * D, D, y->ln1_w, y->ln1_b, m->ln_eps, h + t * D);
    for (int t = 0; t < T; t++)
      for (int oo = 0; oo < 3 * D; oo++) {
        double acc = y->qkv_b[oo];
        for (int k = 0; k < D; k++) acc += y->qkv_w[oo * D + k] * h[t * D + k];
        qkv[t * 3 * D + oo] = acc;
      }
    for (int hh = 0; hh < H; hh++)
      for (int i = 0; i < T; i++) {
        double mx = -INFINITY, z = 0;
        for (int j = 0; j < T; j++) {
          double acc = 0;
          for (int c = 0; c < d; c++) acc += qkv[i * 3 * D + hh * d + c] * qkv[j * 3 * D + D + hh * d + c];
          s[j] = acc / sqrt((double)d);
          mx = s[j] > mx ? s[j] : mx;
        }
        for (int j = 0; j < T; j++) z += (s[j] = exp(s[j] - mx));
        for (int c = 0; c < d; c++) {
          double acc = 0;
          for (int j = 0; j < T; j++) acc += s[j] / z * qkv[j * 3 * D + 2 * D + hh * d + c];
          o[i * D + hh * d + c] = acc;
        }
      }
    for (int t = 0; t < T; t++) {
      double add[64];
      for (int k = 0; k < D; k++) {
        double acc = y->proj_b[k];
        for (int c = 0; c < D; c++) acc += y->proj_w[k * D + c] * o[t * D + c];
        add[k] = acc;
      }
      for (int k = 0; k < D; k++) x[t * D + k] += add[k];
      ref_ln(x + t * D, D, y->ln2_w, y->ln2_b, m->ln_eps, h2);
      for (int j = 0; j < M; j++) {
        double acc = y->fc1_b[j];
        for (int k = 0; k < D; k++) acc += y->fc1_w[j * D + k] * h2[k];
        f[j] = 0.5 * acc * (1 + erf(acc / sqrt(2.0)));
      }
      for (int k = 0; k < D; k++) {
        double acc = y->fc2_b[k];
        for (int j = 0; j < M; j++) acc += y->fc2_w[k * M + j] * f[j];
        x[t * D + k] += acc;
      }
    }
  }
  ref_ln(x, D, m->ln_w, m->ln_b, m->ln_eps, h2);
  for (int c = 0; c < m->classes; c++) {
    double acc = m->head_b[c];
    for (int k = 0; k < D; k++) acc += m->head_w[c * D + k] * h2[k];
    logits[c] = acc;
  }
  free(x); free(h); free(qkv); free(o); free(f); free(h2); free(s);
}

/* max |C logits - reference| / max(1, max |reference|) of one image, exact attention */
static double forward_error(const spr_vit *m, const uint8_t *img, int trial) {
  spr_config c, mc;
  spr_config_default(&c);
  CU_ASSERT_EQUAL_FATAL(spr_vit_config(&c, m, "model", &mc), 0);
  spr_vit_ctx *x = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_vit_ctx_alloc(&mc, m, &x), 0);
  float lg[256];
  double ref[256];
  spr_vit_image_stats st;
  CU_ASSERT_EQUAL(spr_vit_infer(&mc, m, SPR_VIT_EXACT, img, trial, x, lg, &st), 0);
  ref_forward(m, img, ref);
  double err = 0, scale = 1;
  for (int k = 0; k < m->classes; k++) {
    err = fmax(err, fabs(lg[k] - ref[k]));
    scale = fmax(scale, fabs(ref[k]));
  }
  spr_vit_ctx_free(x);
  return err / scale;
}

static char model_path[512];

static void test_forward_reference(void) {
  write_model(model_path, OK, 2385);
  spr_vit m;
  CU_ASSERT_EQUAL_FATAL(spr_vit_load(model_path, &m), 0);
  CU_ASSERT_EQUAL(m.head_dim, SD / SH);
  CU_ASSERT_DOUBLE_EQUAL(m.layer[1].theta, 0.477, 1e-12);
  spr_fmnist d;
  fake_images(&d, 2, 77);
  for (int i = 0; i < 2; i++) {
    double e = forward_error(&m, d.pixels + (size_t)i * 784, i);
    if (e > 1e-5) fprintf(stderr, "\n  synthetic image %d: relative logit error %.3g\n", i, e);
    CU_ASSERT(e <= 1e-5);
  }
  spr_fmnist_free(&d);
  spr_vit_free(&m);
  /* the trained model on a real test image */
  char real[1024];
  const char *top = getenv("top_srcdir");
  snprintf(real, sizeof real, "%s/models/vit-fmnist.h5", top ? top : ".");
  if (access(real, R_OK) || access(DATA_DIR "/t10k-images-idx3-ubyte.gz", R_OK)) {
    skip("models/vit-fmnist.h5 or " DATA_DIR " absent: no reference check on a real image");
    return;
  }
  spr_fmnist data;
  CU_ASSERT_EQUAL_FATAL(spr_vit_load(real, &m), 0);
  CU_ASSERT_EQUAL_FATAL(spr_fmnist_load(DATA_DIR, "t10k", &data), 0);
  double e = forward_error(&m, data.pixels + 17 * 784, 17);
  if (e > 1e-5) fprintf(stderr, "\n  test image 17: relative logit error %.3g\n", e);
  CU_ASSERT(e <= 1e-5);
  spr_fmnist_free(&data);
  spr_vit_free(&m);
}

/* (b) C exact inference against PyTorch's recorded predictions. */
static void test_exact_matches_pytorch(void) {
  char real[1024];
  const char *top = getenv("top_srcdir");
  snprintf(real, sizeof real, "%s/models/vit-fmnist.h5", top ? top : ".");
  if (access(real, R_OK)) {
    skip("models/vit-fmnist.h5 absent (scripts/train_vit.py writes it)");
    return;
  }
  if (access(DATA_DIR "/t10k-images-idx3-ubyte.gz", R_OK)) {
    skip(DATA_DIR " absent (Debian: apt-get install dataset-fashion-mnist; scripts/setup does)");
    return;
  }
  spr_vit m;
  spr_fmnist data;
  CU_ASSERT_EQUAL_FATAL(spr_vit_load(real, &m), 0);
  CU_ASSERT_EQUAL_FATAL(spr_fmnist_load(DATA_DIR, "t10k", &data), 0);
  CU_ASSERT_EQUAL_FATAL(m.n_test, data.count);
  CU_ASSERT_EQUAL(memcmp(m.test_labels, data.labels, (size_t)data.count), 0);
  spr_config c, mc;
  spr_config_default(&c);
  CU_ASSERT_EQUAL_FATAL(spr_vit_config(&c, &m, real, &mc), 0);
  spr_vit_ctx *x = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_vit_ctx_alloc(&mc, &m, &x), 0);
  const int N = 1000;
  int c_ok = 0, py_ok = 0, same = 0;
  float lg[256];
  for (int i = 0; i < N; i++) {
    spr_vit_image_stats st;
    CU_ASSERT_EQUAL_FATAL(spr_vit_infer(&mc, &m, SPR_VIT_EXACT, data.pixels + (size_t)i * 784, i, x,
                                        lg, &st), 0);
    int p = spr_vit_argmax(lg, m.classes);
    c_ok += p == data.labels[i];
    py_ok += m.test_pred_exact[i] == data.labels[i];
    same += p == m.test_pred_exact[i];
  }
  fprintf(stderr, "\n  first %d test images: C top-1 %.2f%%, PyTorch %.2f%%, same prediction %d\n", N,
          100.0 * c_ok / N, 100.0 * py_ok / N, same);
  CU_ASSERT(abs(c_ok - py_ok) <= N / 1000); /* 0.1 percentage point */
  CU_ASSERT(same >= N - 2);
  spr_vit_ctx_free(x);
  spr_fmnist_free(&data);
  spr_vit_free(&m);
}

/* Every non-ideality off. */
static void ideal_device(spr_config *c) {
  c->xbar.variation = c->xbar.stuck = c->xbar.drift = 0;
  c->xbar.ir_drop = SPR_IR_OFF;
  c->an.dac_error = c->an.read_noise = c->an.cmp_offset = c->an.cmp_noise = 0;
}

/* (c) SPRINT, every effect off, a threshold below every score: keeps every
 * key, so it computes what dense computes (bit for bit) and, up to the
 * 8-bit recompute, what exact float attention computes. */
static void test_sprint_ideal_keep_all(void) {
  write_model(model_path, OK, 2385);
  spr_vit m;
  CU_ASSERT_EQUAL_FATAL(spr_vit_load(model_path, &m), 0);
  spr_config c, mc;
  spr_config_default(&c);
  ideal_device(&c);
  c.wl.source = SPR_SOURCE_VIT;
  c.thr.mode = SPR_THR_DIRECT;
  c.thr.range = 1e6;
  c.thr.n_values = 1;
  c.thr.values[0] = -1e6;
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "test"), 0);
  CU_ASSERT_EQUAL_FATAL(spr_vit_config(&c, &m, model_path, &mc), 0);
  spr_vit_ctx *x = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_vit_ctx_alloc(&mc, &m, &x), 0);
  spr_fmnist d;
  fake_images(&d, 4, 991);
  for (int i = 0; i < 4; i++) {
    const uint8_t *img = d.pixels + (size_t)i * 784;
    float ls[16], ld[16], le[16];
    spr_vit_image_stats ss, sd, se;
    CU_ASSERT_EQUAL_FATAL(spr_vit_infer(&mc, &m, SPR_SCHEME_SPRINT, img, i, x, ls, &ss), 0);
    CU_ASSERT_EQUAL_FATAL(spr_vit_infer(&mc, &m, SPR_SCHEME_DENSE, img, i, x, ld, &sd), 0);
    CU_ASSERT_EQUAL_FATAL(spr_vit_infer(&mc, &m, SPR_VIT_EXACT, img, i, x, le, &se), 0);
    for (int l = 0; l < SL; l++) CU_ASSERT_EQUAL(ss.kept[l], (int64_t)SH * ST * ST);
    CU_ASSERT_EQUAL(memcmp(ls, ld, sizeof ls[0] * 10), 0);
    /* the buffer fetches the same bytes; SPRINT adds its in-memory scoring */
    CU_ASSERT_EQUAL(ss.bytes_fetched, sd.bytes_fetched);
    CU_ASSERT(ss.energy_J > sd.energy_J);
    double err = 0, scale = 0;
    for (int k = 0; k < 10; k++) {
      err = fmax(err, fabs(ls[k] - le[k]));
      scale = fmax(scale, fabs(le[k]));
    }
    CU_ASSERT(err <= 0.03 * scale);
    CU_ASSERT(err > 0); /* the 8-bit recompute is not float */
  }
  /* a mid threshold prunes: fewer kept pairs than dense */
  c.thr.range = 0;
  c.thr.mode = SPR_THR_KEEP_RATE;
  c.thr.keep_rate = 0.2385;
  CU_ASSERT_EQUAL_FATAL(spr_vit_config(&c, &m, model_path, &mc), 0);
  spr_vit_image_stats ss;
  float ls[16];
  CU_ASSERT_EQUAL(spr_vit_infer(&mc, &m, SPR_SCHEME_SPRINT, d.pixels, 0, x, ls, &ss), 0);
  for (int l = 0; l < SL; l++) {
    const double kr = (double)ss.kept[l] / (SH * ST * ST);
    CU_ASSERT(kr > 0.2385 - 0.08 && kr < 0.2385 + 0.08);
  }
  spr_vit_ctx_free(x);
  spr_fmnist_free(&d);
  spr_vit_free(&m);
}

/* The learned threshold in score units: theta sqrt(d) / (qs ks 2^(8-4)),
 * and the integer scores times that scale approximate q.k / sqrt(d). */
static void test_learned_threshold(void) {
  spr_config c;
  spr_config_default(&c);
  spr_head_result res;
  memset(&res, 0, sizeof res);
  res.d = 16;
  res.q_scale = 0.125f;
  res.k_scale = 0.0625f;
  CU_ASSERT_DOUBLE_EQUAL(spr_attend_theta_units(&c, &res, 2.385), 2.385 * 4 / (0.125 * 0.0625 * 16),
                         1e-9);
  /* on a real head: integer score x (qs ks 16 / sqrt d) ~ float scaled score */
  const int n = 40, d = 16;
  spr_attend_head h;
  spr_attend_ws *w = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_attend_head_alloc(&h, &c, n, d, 0), 0);
  CU_ASSERT_EQUAL_FATAL(spr_attend_ws_alloc(&c, n, d, &w), 0);
  lcg_state = 4242;
  for (int k = 0; k < n * d; k++) {
    h.Q[k] = (float)(1.5 * urand());
    h.K[k] = (float)(0.8 * urand());
    h.V[k] = (float)urand();
  }
  CU_ASSERT_EQUAL(spr_attend_ideal(&c, 0, 0, &h, w, &res), 0);
  const double unit = spr_attend_theta_units(&c, &res, 1.0); /* score units per scaled unit */
  double err = 0, big = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int k = 0; k < d; k++) s += h.Q[i * d + k] * h.K[j * d + k];
      s /= sqrt((double)d);
      err = fmax(err, fabs(h.ideal[i * n + j] / unit - s));
      big = fmax(big, fabs(s));
    }
  /* 4-bit queries and 4-bit key MSBs (floor): errors of a few tenths of the range */
  CU_ASSERT(err < 0.35 * big);
  CU_ASSERT(err > 0);
  /* learned mode: a threshold far below every score saturates at the
   * grid's bottom and keeps all keys */
  write_model(model_path, OK, 2385);
  spr_vit m;
  CU_ASSERT_EQUAL_FATAL(spr_vit_load(model_path, &m), 0);
  spr_config mc;
  c.wl.source = SPR_SOURCE_VIT;
  c.thr.mode = SPR_THR_LEARNED;
  c.thr.offset = -500;
  ideal_device(&c);
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "test"), 0);
  CU_ASSERT_EQUAL_FATAL(spr_vit_config(&c, &m, model_path, &mc), 0);
  spr_vit_ctx *x = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_vit_ctx_alloc(&mc, &m, &x), 0);
  spr_fmnist dd;
  fake_images(&dd, 1, 5);
  float lg[16];
  spr_vit_image_stats st;
  CU_ASSERT_EQUAL(spr_vit_infer(&mc, &m, SPR_SCHEME_SPRINT, dd.pixels, 0, x, lg, &st), 0);
  CU_ASSERT_EQUAL(st.theta_saturated, SL * SH);
  for (int l = 0; l < SL; l++) CU_ASSERT_EQUAL(st.kept[l], (int64_t)SH * ST * ST);
  /* offset 0: the model's thresholds prune some keys, saturate none */
  c.thr.offset = 0;
  CU_ASSERT_EQUAL_FATAL(spr_vit_config(&c, &m, model_path, &mc), 0);
  CU_ASSERT_EQUAL(spr_vit_infer(&mc, &m, SPR_SCHEME_SPRINT, dd.pixels, 0, x, lg, &st), 0);
  CU_ASSERT_EQUAL(st.theta_saturated, 0);
  CU_ASSERT(st.kept[0] < (int64_t)SH * ST * ST && st.kept[0] > 0);
  spr_vit_ctx_free(x);
  spr_fmnist_free(&dd);
  spr_vit_free(&m);
  spr_attend_ws_free(w);
  spr_attend_head_free(&h);
}

/* (d) every figure bit-identical for 1 and 2 threads, noise on; the HDF5
 * output holds them. */
static void test_threads_reproducible(void) {
  write_model(model_path, OK, 2385);
  spr_vit m;
  CU_ASSERT_EQUAL_FATAL(spr_vit_load(model_path, &m), 0);
  spr_fmnist d;
  fake_images(&d, 7, 31);
  spr_config c;
  spr_config_default(&c);
  c.wl.source = SPR_SOURCE_VIT;
  c.wl.images = 5;
  c.wl.first_image = 2;
  c.seed = 2385;
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "test"), 0);
  spr_vit_eval_result r1, r2;
  CU_ASSERT_EQUAL_FATAL(spr_vit_eval_run(&c, &m, model_path, &d, 1, NULL, &r1), 0);
  CU_ASSERT_EQUAL_FATAL(spr_vit_eval_run(&c, &m, model_path, &d, 2, NULL, &r2), 0);
  const int N = 5;
  for (int s = 0; s < SPR_VIT_N_SCHEMES; s++) {
    CU_ASSERT_EQUAL(r1.scheme[s].ran, 1);
    if (!r1.scheme[s].ran || !r2.scheme[s].ran) continue;
    CU_ASSERT_EQUAL(memcmp(r1.pred[s], r2.pred[s], N), 0);
    CU_ASSERT_EQUAL(memcmp(r1.keep_rate[s], r2.keep_rate[s], N * sizeof(double)), 0);
    CU_ASSERT_EQUAL(memcmp(r1.energy_J[s], r2.energy_J[s], N * sizeof(double)), 0);
    CU_ASSERT_EQUAL(memcmp(r1.cycles[s], r2.cycles[s], N * sizeof(double)), 0);
    CU_ASSERT_EQUAL(memcmp(r1.bytes_fetched[s], r2.bytes_fetched[s], N * sizeof(int64_t)), 0);
    CU_ASSERT_EQUAL(memcmp(&r1.scheme[s], &r2.scheme[s], sizeof r1.scheme[s]), 0);
  }
  /* noise is on: another seed changes SPRINT's decisions */
  c.seed = 2386;
  spr_vit_eval_result r3;
  CU_ASSERT_EQUAL_FATAL(spr_vit_eval_run(&c, &m, model_path, &d, 2, NULL, &r3), 0);
  CU_ASSERT(memcmp(r1.keep_rate[SPR_SCHEME_SPRINT], r3.keep_rate[SPR_SCHEME_SPRINT],
                   N * sizeof(double)) != 0);
  CU_ASSERT_EQUAL(memcmp(r1.keep_rate[SPR_SCHEME_DENSE], r3.keep_rate[SPR_SCHEME_DENSE],
                         N * sizeof(double)), 0);
  /* accuracy and agreement against the labels and exact predictions */
  for (int s = 0; s < SPR_VIT_N_SCHEMES; s++) {
    int ok = 0, ag = 0;
    for (int i = 0; i < N; i++) {
      ok += r1.pred[s][i] == d.labels[2 + i];
      ag += r1.pred[s][i] == r1.pred[SPR_VIT_EXACT][i];
    }
    CU_ASSERT_DOUBLE_EQUAL(r1.scheme[s].accuracy, (double)ok / N, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(r1.scheme[s].agreement, (double)ag / N, 1e-15);
  }
  CU_ASSERT(isnan(r1.scheme[SPR_VIT_EXACT].energy_J));
  CU_ASSERT(r1.scheme[SPR_SCHEME_SPRINT].energy_J > 0);
  /* the output file */
  char out[512];
  spr_test_path(out, sizeof out, "vit-out", ".h5");
  CU_ASSERT_EQUAL_FATAL(spr_vit_eval_write(out, &c, &r1, "test"), 0);
  hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  uint8_t pred[5];
  double e[5], acc;
  CU_ASSERT(H5LTread_dataset(f, "/schemes/sprint/pred", H5T_NATIVE_UINT8, pred) >= 0);
  CU_ASSERT_EQUAL(memcmp(pred, r1.pred[SPR_SCHEME_SPRINT], N), 0);
  CU_ASSERT(H5LTread_dataset(f, "/schemes/leopard/energy_J", H5T_NATIVE_DOUBLE, e) >= 0);
  CU_ASSERT_EQUAL(memcmp(e, r1.energy_J[SPR_SCHEME_LEOPARD], sizeof e), 0);
  CU_ASSERT(H5LTget_attribute_double(f, "/schemes/exact", "accuracy", &acc) >= 0);
  CU_ASSERT_EQUAL(acc, r1.scheme[SPR_VIT_EXACT].accuracy);
  unsigned long long seed = 0;
  hid_t a = H5Aopen(f, "seed", H5P_DEFAULT);
  CU_ASSERT(a >= 0 && H5Aread(a, H5T_NATIVE_ULLONG, &seed) >= 0);
  H5Aclose(a);
  CU_ASSERT_EQUAL(seed, 2386); /* c as passed */
  H5Fclose(f);
  unlink(out);
  spr_vit_eval_result_free(&r1);
  spr_vit_eval_result_free(&r2);
  spr_vit_eval_result_free(&r3);
  /* errors of the evaluation */
  c.wl.first_image = 3;
  spr_vit_eval_result r4;
  CU_ASSERT_EQUAL(spr_vit_eval_run(&c, &m, model_path, &d, 1, NULL, &r4), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "first_image 3 + workload.images 5 exceed the 7");
  c.wl.first_image = 0;
  c.thr.mode = SPR_THR_DIRECT;
  c.thr.n_values = 3;
  c.thr.values[0] = c.thr.values[1] = c.thr.values[2] = 1;
  CU_ASSERT_EQUAL(spr_vit_eval_run(&c, &m, model_path, &d, 1, NULL, &r4), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "3 values given");
  spr_fmnist_free(&d);
  spr_vit_free(&m);
}

/* (e) every model reader error. */
static void test_model_errors(void) {
  static const struct {
    int defect, code;
    const char *msg;
  } cases[] = {
    {MISSING_DSET, SPR_EHDF5, "dataset 'layer_1/fc1_b' missing"},
    {WRONG_SHAPE, SPR_EHDF5, "dataset 'layer_0/qkv_w' has shape 24 x 9, expected 24 x 8"},
    {WRONG_TYPE, SPR_EHDF5, "dataset 'pos' is not floating point"},
    {NAN_VALUE, SPR_EHDF5, "dataset 'head_w': element 37 is nan"},
    {BAD_FORMAT, SPR_EINVAL, "attribute 'format' is 'sprintsim-bert'"},
    {BAD_VERSION, SPR_EINVAL, "attribute 'version' of '/' is 2"},
    {STRING_VERSION, SPR_EHDF5, "attribute 'version' of '/' is not an integer"},
    {BAD_HEADS, SPR_EINVAL, "attribute 'heads' is 3, which does not divide dim = 8"},
    {BAD_TOKENS, SPR_EINVAL, "attribute 'tokens' is 196"},
    {MISSING_ATTR, SPR_EHDF5, "attribute 'ln_eps' of '/' missing"},
    {BAD_THETA, SPR_EINVAL, "attribute 'theta' of 'layer_1' is nan"},
    {BAD_STD, SPR_EINVAL, "attribute 'norm_std' is 0"},
    {BAD_LABEL, SPR_EINVAL, "dataset 'test/labels': element 4 is 12"},
    {TEST_LENGTH, SPR_EHDF5, "dataset 'test/pred_exact' has 4 values, expected 5"},
  };
  char bad[512];
  spr_test_path(bad, sizeof bad, "vit-bad", ".h5");
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    write_model(bad, cases[k].defect, 2385);
    spr_vit m;
    int rc = spr_vit_load(bad, &m);
    if (rc != cases[k].code) fprintf(stderr, "\n  defect %d: rc %d: %s\n", cases[k].defect, rc, spr_errmsg());
    CU_ASSERT_EQUAL(rc, cases[k].code);
    SPR_ASSERT_CONTAINS(spr_errmsg(), cases[k].msg);
    SPR_ASSERT_CONTAINS(spr_errmsg(), bad);
    CU_ASSERT_PTR_NULL(m.embed_w); /* nothing left to free */
  }
  spr_vit m;
  unlink(bad);
  CU_ASSERT_EQUAL(spr_vit_load(bad, &m), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cannot open the ViT model");
  FILE *f = fopen(bad, "w");
  fputs("not hdf5\n", f);
  fclose(f);
  CU_ASSERT_EQUAL(spr_vit_load(bad, &m), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "not an HDF5 file");
  unlink(bad);
}

/* ---- IDX files ---------------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* Write bytes to path, gzip-compressed when gz (then truncated to cut
 * bytes of the compressed stream when cut > 0). */
static void write_file(const char *path, const unsigned char *b, size_t n, int gz, long cut) {
  if (!gz) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
    return;
  }
  gzFile g = gzopen(path, "wb");
  gzwrite(g, b, (unsigned)n);
  gzclose(g);
  if (cut > 0) CU_ASSERT_EQUAL(truncate(path, cut), 0);
}

/* An images file of count x 28 x 28 (pixel = (i + 3 r + 5 c) mod 256),
 * header fields overridable. */
static size_t make_images(unsigned char *buf, int count, unsigned magic, uint32_t rows) {
  put_be32(buf, magic);
  put_be32(buf + 4, (uint32_t)count);
  put_be32(buf + 8, rows);
  put_be32(buf + 12, 28);
  size_t n = 16;
  for (int i = 0; i < count; i++)
    for (int r = 0; r < 28; r++)
      for (int c = 0; c < 28; c++) buf[n++] = (unsigned char)((i + 3 * r + 5 * c) & 255);
  return n;
}

static size_t make_labels(unsigned char *buf, int count, int bad_at) {
  put_be32(buf, 0x801);
  put_be32(buf + 4, (uint32_t)count);
  for (int i = 0; i < count; i++) buf[8 + i] = (unsigned char)(i == bad_at ? 10 : (i * 3) % 10);
  return 8 + (size_t)count;
}

static void test_idx(void) {
  static unsigned char buf[16 + 5 * 784 + 64];
  char dir[512], ip[600], lp[600];
  spr_test_path(dir, sizeof dir, "fmnist", "");
  CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
  snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte.gz", dir);
  snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte.gz", dir);
  size_t ni = make_images(buf, 5, 0x803, 28);
  write_file(ip, buf, ni, 1, 0);
  unsigned char lab[64];
  size_t nl = make_labels(lab, 5, -1);
  write_file(lp, lab, nl, 1, 0);
  spr_fmnist d;
  CU_ASSERT_EQUAL_FATAL(spr_fmnist_load(dir, "t10k", &d), 0);
  CU_ASSERT_EQUAL(d.count, 5);
  CU_ASSERT_EQUAL(d.rows, 28);
  CU_ASSERT_EQUAL(d.pixels[3 * 784 + 7 * 28 + 11], (3 + 21 + 55) & 255);
  CU_ASSERT_EQUAL(d.labels[4], 2);
  spr_fmnist_free(&d);
  /* a plain (uncompressed) file reads the same */
  int dims[3];
  uint8_t *data;
  write_file(ip, buf, ni, 0, 0);
  CU_ASSERT_EQUAL(spr_fmnist_read_idx(ip, 3, dims, &data), 0);
  CU_ASSERT_EQUAL(dims[0], 5);
  CU_ASSERT_EQUAL(data[4 * 784 + 27 * 28 + 27], (4 + 81 + 135) & 255);
  free(data);
  /* error paths of the images file */
  struct {
    unsigned magic;
    uint32_t rows;
    long trim; /* bytes removed from the end (negative: added) */
    int gz;
    long cut;
    int code;
    const char *msg;
  } cases[] = {
    {0x01000803, 28, 0, 1, 0, SPR_EINVAL, "bad IDX magic 0x01000803"},
    {0x00000903, 28, 0, 1, 0, SPR_EINVAL, "IDX data type 0x09 is not unsigned byte"},
    {0x00000802, 28, 0, 1, 0, SPR_EINVAL, "IDX file has 2 dimensions, expected 3"},
    {0x00000803, 0, 0, 1, 0, SPR_EINVAL, "IDX size 1 is 0"},
    {0x00000803, 28, 100, 1, 0, SPR_EINVAL, "truncated IDX data: 3820 of 3920 bytes"},
    {0x00000803, 28, -3, 1, 0, SPR_EINVAL, "bytes after the 3920 bytes of IDX data"},
    {0x00000803, 28, (long)ni - 10, 0, 0, SPR_EINVAL, "truncated IDX header: 6 of 12 size bytes"},
    {0x00000803, 28, (long)ni - 2, 0, 0, SPR_EINVAL, "truncated IDX header: 2 of 4 magic bytes"},
    {0x00000803, 28, 0, 1, 200, SPR_EINVAL, "truncated IDX data: "}, /* gzip stream cut */
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    size_t n = make_images(buf, 5, cases[k].magic, cases[k].rows);
    if (cases[k].trim < 0) memset(buf + n, 7, (size_t)-cases[k].trim);
    write_file(ip, buf, n - (size_t)cases[k].trim, cases[k].gz, cases[k].cut);
    int rc = spr_fmnist_read_idx(ip, 3, dims, &data);
    if (rc != cases[k].code) fprintf(stderr, "\n  idx case %zu: rc %d: %s\n", k, rc, spr_errmsg());
    CU_ASSERT_EQUAL(rc, cases[k].code);
    SPR_ASSERT_CONTAINS(spr_errmsg(), cases[k].msg);
    SPR_ASSERT_CONTAINS(spr_errmsg(), ip);
    CU_ASSERT_PTR_NULL(data);
  }
  /* a corrupt gzip stream (bytes overwritten inside the deflate data) */
  write_file(ip, buf, make_images(buf, 5, 0x803, 28), 1, 0);
  {
    FILE *f = fopen(ip, "r+b");
    fseek(f, 60, SEEK_SET);
    for (int k = 0; k < 40; k++) fputc(0xff, f);
    fclose(f);
  }
  CU_ASSERT_EQUAL(spr_fmnist_read_idx(ip, 3, dims, &data), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), ip);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cannot read the IDX");
  CU_ASSERT_PTR_NULL(data);
  /* labels: a value above 9, a count that differs from the images' */
  write_file(ip, buf, make_images(buf, 5, 0x803, 28), 1, 0);
  write_file(lp, lab, make_labels(lab, 5, 3), 1, 0);
  CU_ASSERT_EQUAL(spr_fmnist_load(dir, "t10k", &d), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "label 3 is 10");
  SPR_ASSERT_CONTAINS(spr_errmsg(), lp);
  CU_ASSERT_PTR_NULL(d.pixels);
  write_file(lp, lab, make_labels(lab, 4, -1), 1, 0);
  CU_ASSERT_EQUAL(spr_fmnist_load(dir, "t10k", &d), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "has 4 labels but");
  CU_ASSERT_EQUAL(spr_fmnist_load(dir, "valid", &d), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "split 'valid'");
  unlink(lp);
  CU_ASSERT_EQUAL(spr_fmnist_load(dir, "t10k", &d), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), lp);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cannot open");
  unlink(ip);
  rmdir(dir);
}

/* The config keys of the ViT. */
static void test_config_keys(void) {
  spr_config c;
  spr_config_default(&c);
  CU_ASSERT_STRING_EQUAL(c.wl.model, "models/vit-fmnist.h5");
  CU_ASSERT_STRING_EQUAL(c.wl.dataset, "/usr/share/datasets/fashion-mnist");
  CU_ASSERT_EQUAL(c.wl.source, SPR_SOURCE_SYNTHETIC);
  CU_ASSERT_EQUAL(spr_config_set(&c, "workload", "source", "vit", "t:1"), 0);
  CU_ASSERT_EQUAL(c.wl.source, SPR_SOURCE_VIT);
  CU_ASSERT_EQUAL(spr_config_set(&c, "threshold", "offset", "-0.25", "t:2"), 0);
  CU_ASSERT_DOUBLE_EQUAL(c.thr.offset, -0.25, 0);
  CU_ASSERT_EQUAL(spr_config_set(&c, "threshold", "mode", "learned", "t:3"), 0);
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "t"), 0);
  c.wl.source = SPR_SOURCE_QKV;
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "t"), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'workload.qkv_file' is required");
  c.wl.source = SPR_SOURCE_SYNTHETIC;
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "t"), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'learned' needs workload.source = vit");
  c.wl.source = SPR_SOURCE_VIT;
  c.wl.model[0] = '\0';
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "t"), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'workload.model' is empty");
}

int main(void) {
  spr_test_path(model_path, sizeof model_path, "vit-model", ".h5");
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  static const CU_TestInfo tests[] = {
    {"IDX reader and every IDX error", test_idx},
    {"model reader errors", test_model_errors},
    {"config keys", test_config_keys},
    {"forward pass = naive reference", test_forward_reference},
    {"exact inference = PyTorch's predictions", test_exact_matches_pytorch},
    {"SPRINT ideal, keep all = dense", test_sprint_ideal_keep_all},
    {"learned threshold conversion", test_learned_threshold},
    {"1 and 2 threads identical; output file", test_threads_reproducible},
    CU_TEST_INFO_NULL,
  };
  int rc = spr_test_run("vit", tests);
  unlink(model_path);
  if (rc == 0 && skipped) {
    fprintf(stderr, "test_vit: some checks skipped (see SKIP above)\n");
    return 77;
  }
  return rc;
}
