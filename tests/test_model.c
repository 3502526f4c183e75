/* test_model.c - model files (docs/models.md) and their evaluation: the
 * Fashion-MNIST IDX reader, the model reader and every error it names, the
 * forward pass of an image and a causal text model against a naive
 * double-precision reference, exact inference against PyTorch's recorded
 * predictions and bits per character (the committed models), SPRINT with
 * every effect off, the learned threshold, reproducibility over thread
 * counts, the HDF5 output, and the evaluation's errors.
 *
 * The tests that need the Fashion-MNIST files or the committed models skip
 * when those are absent; the program then exits with 77 (automake's SKIP)
 * if everything else passed. */
#include "config.h"
#include "spr_attend.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_fmnist.h"
#include "spr_h5r.h"
#include "spr_model.h"
#include "spr_model_eval.h"
#include "spr_output.h"
#include "spr_pipeline.h"
#include "spr_sysmem.h"
#include "spr_test.h"
#include "spr_test_model.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdint.h>
#include <glob.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define DATA_DIR "/usr/share/datasets/fashion-mnist"

static int skipped = 0;

/* FNV-1a 64 of a file's bytes, computed directly. */
static uint64_t fnv_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint64_t x = UINT64_C(14695981039346656037);
  for (int c; f && (c = fgetc(f)) != EOF;) {
    x ^= (unsigned char)c;
    x *= UINT64_C(1099511628211);
  }
  if (f) fclose(f);
  return x;
}

static void fnv_id(const char *path, char *buf, size_t n) {
  snprintf(buf, n, "fnv1a64:%016llx", (unsigned long long)fnv_file(path));
}

static long long file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

static int no_temps(const char *path) {
  char pat[700];
  snprintf(pat, sizeof pat, "%s.tmp.*", path);
  glob_t g;
  int n = glob(pat, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
  if (n) globfree(&g);
  return n == 0;
}

static void skip(const char *what) {
  fprintf(stderr, "\n  SKIP: %s\n", what);
  skipped = 1;
}

/* ---- the naive reference forward pass (double, plain loops) ------------- */

static void ref_ln(const double *x, int D, const float *g, const float *b, double eps, double *y) {
  double mu = 0, var = 0;
  for (int k = 0; k < D; k++) mu += x[k];
  mu /= D;
  for (int k = 0; k < D; k++) var += (x[k] - mu) * (x[k] - mu);
  var /= D;
  for (int k = 0; k < D; k++) y[k] = (x[k] - mu) / sqrt(var + eps) * g[k] + b[k];
}

/* Logits of one input: classes (image) or T x vocab (text), from the
 * equations of spr_model.h written out directly. */
static void ref_forward(const spr_model *m, const uint8_t *in, double *logits) {
  const int T = m->tokens, D = m->dim, H = m->heads, d = m->head_dim, M = m->mlp;
  double *x = calloc((size_t)T * D, sizeof *x), *h = calloc((size_t)T * D, sizeof *h);
  double *qkv = calloc((size_t)T * 3 * D, sizeof *qkv), *o = calloc((size_t)T * D, sizeof *o);
  double *f = calloc((size_t)M, sizeof *f), *h2 = calloc((size_t)D, sizeof *h2);
  double *s = calloc((size_t)T, sizeof *s);
  if (m->input == SPR_MODEL_IMAGE) {
    const int p = m->patch, np = m->side / p;
    for (int k = 0; k < D; k++) x[k] = m->cls[k] + m->pos[k];
    for (int t = 1; t < T; t++) {
      const int a = (t - 1) / np, b = (t - 1) % np;
      for (int k = 0; k < D; k++) {
        double acc = m->embed_b[k];
        for (int u = 0; u < p; u++)
          for (int v = 0; v < p; v++) {
            const double px =
                (in[(a * p + u) * m->side + b * p + v] / 255.0 - m->norm_mean) / m->norm_std;
            acc += m->embed_w[k * p * p + u * p + v] * px;
          }
        x[t * D + k] = acc + m->pos[t * D + k];
      }
    }
  } else {
    for (int t = 0; t < T; t++)
      for (int k = 0; k < D; k++) x[t * D + k] = m->tok_emb[in[t] * D + k] + m->pos[t * D + k];
  }
  for (int l = 0; l < m->depth; l++) {
    const spr_model_layer *y = &m->layer[l];
    for (int t = 0; t < T; t++) ref_ln(x + t * D, D, y->ln1_w, y->ln1_b, m->ln_eps, h + t * D);
    for (int t = 0; t < T; t++)
      for (int oo = 0; oo < 3 * D; oo++) {
        double acc = y->qkv_b[oo];
        for (int k = 0; k < D; k++) acc += y->qkv_w[oo * D + k] * h[t * D + k];
        qkv[t * 3 * D + oo] = acc;
      }
    for (int hh = 0; hh < H; hh++)
      for (int i = 0; i < T; i++) {
        const int nk = m->causal ? i + 1 : T; /* keys j <= i when causal */
        double mx = -INFINITY, z = 0;
        for (int j = 0; j < nk; j++) {
          double acc = 0;
          for (int c = 0; c < d; c++) acc += qkv[i * 3 * D + hh * d + c] * qkv[j * 3 * D + D + hh * d + c];
          s[j] = acc / sqrt((double)d);
          mx = s[j] > mx ? s[j] : mx;
        }
        for (int j = 0; j < nk; j++) z += (s[j] = exp(s[j] - mx));
        for (int c = 0; c < d; c++) {
          double acc = 0;
          for (int j = 0; j < nk; j++) acc += s[j] / z * qkv[j * 3 * D + 2 * D + hh * d + c];
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
  const int rows = m->input == SPR_MODEL_IMAGE ? 1 : T;
  for (int t = 0; t < rows; t++) {
    ref_ln(x + t * D, D, m->ln_w, m->ln_b, m->ln_eps, h2);
    for (int c = 0; c < m->outputs; c++) {
      double acc = m->head_b[c];
      for (int k = 0; k < D; k++) acc += m->head_w[c * D + k] * h2[k];
      logits[t * m->outputs + c] = acc;
    }
  }
  free(x); free(h); free(qkv); free(o); free(f); free(h2); free(s);
}

/* max |C logits - reference| / max(1, max |reference|) of one input, exact attention */
static double forward_error(const spr_model *m, const uint8_t *in, int trial) {
  spr_config c, mc;
  spr_config_default(&c);
  CU_ASSERT_EQUAL_FATAL(spr_model_config(&c, m, "model", &mc), 0);
  spr_model_ctx *x = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_model_ctx_alloc(&mc, m, &x), 0);
  const int n = (m->input == SPR_MODEL_IMAGE ? 1 : m->tokens) * m->outputs;
  float *lg = malloc((size_t)n * sizeof *lg);
  double *ref = malloc((size_t)n * sizeof *ref);
  spr_model_item_stats st;
  CU_ASSERT_EQUAL(spr_model_infer(&mc, m, SPR_MEVAL_EXACT, in, trial, x, lg, &st), 0);
  ref_forward(m, in, ref);
  double err = 0, scale = 1;
  for (int k = 0; k < n; k++) {
    err = fmax(err, fabs(lg[k] - ref[k]));
    scale = fmax(scale, fabs(ref[k]));
  }
  spr_model_ctx_free(x);
  free(lg);
  free(ref);
  return err / scale;
}

static char model_path[512];

/* The committed model top_srcdir/models/<name>, or NULL (and a skip) when
 * it is absent. */
static const char *committed(const char *name, char *buf, size_t n) {
  const char *top = getenv("top_srcdir");
  snprintf(buf, n, "%s/models/%s", top ? top : ".", name);
  if (access(buf, R_OK)) {
    char msg[1200];
    snprintf(msg, sizeof msg, "%s absent (scripts/train_model.py writes it)", buf);
    skip(msg);
    return NULL;
  }
  return buf;
}

static int have_fmnist(void) {
  if (access(DATA_DIR "/t10k-images-idx3-ubyte.gz", R_OK)) {
    skip(DATA_DIR " absent (Debian: apt-get install dataset-fashion-mnist; scripts/setup does)");
    return 0;
  }
  return 1;
}

static void test_forward_reference(void) {
  write_model(model_path, 0, OK, 2385);
  spr_model m;
  CU_ASSERT_EQUAL_FATAL(spr_model_load(model_path, &m), 0);
  CU_ASSERT_EQUAL(m.head_dim, SD / SH);
  CU_ASSERT_EQUAL(m.has_theta, 1);
  CU_ASSERT_DOUBLE_EQUAL(m.theta[1], 0.477, 1e-15);
  spr_fmnist d;
  fake_images(&d, 2, 77);
  for (int i = 0; i < 2; i++) {
    double e = forward_error(&m, d.pixels + (size_t)i * 784, i);
    if (e > 1e-5) fprintf(stderr, "\n  synthetic image %d: relative logit error %.3g\n", i, e);
    CU_ASSERT(e <= 1e-5);
  }
  spr_fmnist_free(&d);
  spr_model_free(&m);
  /* the causal text model: every position's logits */
  write_model(model_path, 1, OK, 2386);
  CU_ASSERT_EQUAL_FATAL(spr_model_load(model_path, &m), 0);
  CU_ASSERT_EQUAL(m.causal, 1);
  CU_ASSERT_EQUAL(m.vocab, TV);
  CU_ASSERT_EQUAL(m.vocab_bytes[3], 'd');
  CU_ASSERT_EQUAL(m.n_eval, TE);
  CU_ASSERT_EQUAL(spr_model_windows(&m, m.n_eval), (TE - 1) / TT);
  CU_ASSERT_EQUAL(m.eval_windows, 5);
  for (int w = 0; w < 2; w++) {
    double e = forward_error(&m, m.eval_tokens + w * TT, w);
    if (e > 1e-5) fprintf(stderr, "\n  text window %d: relative logit error %.3g\n", w, e);
    CU_ASSERT(e <= 1e-5);
  }
  /* a causal model's position i does not depend on later tokens */
  {
    spr_config c, mc;
    spr_config_default(&c);
    CU_ASSERT_EQUAL_FATAL(spr_model_config(&c, &m, "model", &mc), 0);
    spr_model_ctx *x = NULL;
    CU_ASSERT_EQUAL_FATAL(spr_model_ctx_alloc(&mc, &m, &x), 0);
    uint8_t in[TT];
    memcpy(in, m.eval_tokens, TT);
    static float a[TT * TV], b[TT * TV];
    spr_model_item_stats st;
    CU_ASSERT_EQUAL(spr_model_infer(&mc, &m, SPR_MEVAL_EXACT, in, 0, x, a, &st), 0);
    in[15] = (uint8_t)((in[15] + 3) % TV);
    CU_ASSERT_EQUAL(spr_model_infer(&mc, &m, SPR_MEVAL_EXACT, in, 0, x, b, &st), 0);
    CU_ASSERT_EQUAL(memcmp(a, b, 15 * TV * sizeof *a), 0);
    CU_ASSERT(memcmp(a + 15 * TV, b + 15 * TV, TV * sizeof *a) != 0);
    /* nats against a direct log-softmax */
    double want = 0;
    for (int i = 0; i < TT - 1; i++) {
      double mx = -INFINITY, z = 0;
      for (int k = 0; k < TV; k++) mx = fmax(mx, a[i * TV + k]);
      for (int k = 0; k < TV; k++) z += exp(a[i * TV + k] - mx);
      want += -(a[i * TV + m.eval_tokens[i + 1]] - mx - log(z));
    }
    CU_ASSERT_DOUBLE_EQUAL(spr_model_nats(a, m.eval_tokens + 1, TT - 1, TV), want, 1e-9 * want);
    spr_model_ctx_free(x);
  }
  spr_model_free(&m);
  /* the trained ViT on a real test image */
  char real[1024];
  if (!committed("vit-fmnist.h5", real, sizeof real) || !have_fmnist()) return;
  spr_fmnist data;
  CU_ASSERT_EQUAL_FATAL(spr_model_load(real, &m), 0);
  CU_ASSERT_EQUAL_FATAL(spr_fmnist_load(DATA_DIR, "t10k", &data), 0);
  double e = forward_error(&m, data.pixels + 17 * 784, 17);
  if (e > 1e-5) fprintf(stderr, "\n  test image 17: relative logit error %.3g\n", e);
  CU_ASSERT(e <= 1e-5);
  spr_fmnist_free(&data);
  spr_model_free(&m);
}

/* C exact inference of a committed image model against PyTorch's recorded
 * predictions on the first 1000 test images. */
static void check_image_model(const char *name) {
  char real[1024];
  if (!committed(name, real, sizeof real) || !have_fmnist()) return;
  spr_model m;
  spr_fmnist data;
  CU_ASSERT_EQUAL_FATAL(spr_model_load(real, &m), 0);
  CU_ASSERT_EQUAL_FATAL(spr_fmnist_load(DATA_DIR, "t10k", &data), 0);
  CU_ASSERT_EQUAL_FATAL(m.n_eval, data.count);
  CU_ASSERT_EQUAL(memcmp(m.eval_labels, data.labels, (size_t)data.count), 0);
  spr_config c, mc;
  spr_config_default(&c);
  CU_ASSERT_EQUAL_FATAL(spr_model_config(&c, &m, real, &mc), 0);
  spr_model_ctx *x = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_model_ctx_alloc(&mc, &m, &x), 0);
  const int N = 1000;
  int c_ok = 0, py_ok = 0, same = 0;
  float lg[256];
  for (int i = 0; i < N; i++) {
    spr_model_item_stats st;
    CU_ASSERT_EQUAL_FATAL(spr_model_infer(&mc, &m, SPR_MEVAL_EXACT, data.pixels + (size_t)i * 784,
                                          i, x, lg, &st), 0);
    int p = spr_model_argmax(lg, m.outputs);
    c_ok += p == data.labels[i];
    py_ok += m.eval_pred_exact[i] == data.labels[i];
    same += p == m.eval_pred_exact[i];
  }
  fprintf(stderr, "\n  %s, first %d test images: C top-1 %.2f%%, PyTorch %.2f%%, same prediction %d\n",
          name, N, 100.0 * c_ok / N, 100.0 * py_ok / N, same);
  CU_ASSERT_EQUAL(same, N);
  spr_model_ctx_free(x);
  spr_fmnist_free(&data);
  spr_model_free(&m);
}

/* C exact inference of a committed text model against PyTorch's recorded
 * nats of its first windows (the whole split: docs/models.md). */
static void check_text_model(const char *name) {
  char real[1024];
  if (!committed(name, real, sizeof real)) return;
  spr_model m;
  CU_ASSERT_EQUAL_FATAL(spr_model_load(real, &m), 0);
  CU_ASSERT_FATAL(m.eval_windows > 0);
  spr_config c, mc;
  spr_config_default(&c);
  CU_ASSERT_EQUAL_FATAL(spr_model_config(&c, &m, real, &mc), 0);
  spr_model_ctx *x = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_model_ctx_alloc(&mc, &m, &x), 0);
  float *lg = malloc((size_t)m.tokens * m.outputs * sizeof *lg);
  const int W = m.eval_windows < 4 ? m.eval_windows : 4;
  double cn = 0, pn = 0;
  for (int w = 0; w < W; w++) {
    spr_model_item_stats st;
    const uint8_t *in = m.eval_tokens + (size_t)w * m.tokens;
    CU_ASSERT_EQUAL_FATAL(spr_model_infer(&mc, &m, SPR_MEVAL_EXACT, in, w, x, lg, &st), 0);
    cn += spr_model_nats(lg, in + 1, m.tokens, m.outputs);
    pn += m.eval_nats_exact[w];
  }
  const double bits = (double)W * m.tokens * log(2.0);
  fprintf(stderr, "\n  %s, first %d windows: C %.5f bits/char, PyTorch %.5f\n", name, W, cn / bits,
          pn / bits);
  CU_ASSERT(fabs(cn - pn) / bits < 1e-4);
  free(lg);
  spr_model_ctx_free(x);
  spr_model_free(&m);
}

static void test_exact_matches_pytorch(void) {
  check_image_model("vit-fmnist.h5");
  check_image_model("vit-fmnist-dense.h5");
  check_image_model("vit-fmnist-lam001.h5");
  check_image_model("vit-fmnist-lam001-float.h5");
  check_text_model("lm-kjv.h5");
  check_text_model("lm-kjv-dense.h5");
}

/* Every non-ideality off. */
static void ideal_device(spr_config *c) {
  c->xbar.variation = c->xbar.stuck = c->xbar.drift = 0;
  c->xbar.ir_drop = SPR_IR_OFF;
  c->an.dac_error = c->an.read_noise = c->an.cmp_offset = c->an.cmp_noise = 0;
}

/* SPRINT, every effect off, a threshold below every score: keeps every
 * allowed key, so it computes what dense computes (bit for bit) and, up
 * to the 8-bit recompute, what exact float attention computes. */
static void keep_all_case(int text) {
  write_model(model_path, text, OK, 2385);
  spr_model m;
  CU_ASSERT_EQUAL_FATAL(spr_model_load(model_path, &m), 0);
  spr_config c, mc;
  spr_config_default(&c);
  ideal_device(&c);
  c.wl.source = SPR_SOURCE_MODEL;
  c.thr.mode = SPR_THR_DIRECT;
  c.thr.range = 1e6;
  c.thr.n_values = 1;
  c.thr.values[0] = -1e6;
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "test"), 0);
  CU_ASSERT_EQUAL_FATAL(spr_model_config(&c, &m, model_path, &mc), 0);
  CU_ASSERT_EQUAL(mc.wl.causal, text);
  spr_model_ctx *x = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_model_ctx_alloc(&mc, &m, &x), 0);
  spr_fmnist d;
  fake_images(&d, 3, 991);
  const int T = m.tokens, no = (text ? T : 1) * m.outputs;
  const int64_t pairs = text ? (int64_t)T * (T + 1) / 2 : (int64_t)T * T;
  float *ls = malloc(no * sizeof *ls), *ld = malloc(no * sizeof *ld), *le = malloc(no * sizeof *le);
  for (int i = 0; i < 3; i++) {
    const uint8_t *in = text ? m.eval_tokens + i * TT : d.pixels + (size_t)i * 784;
    spr_model_item_stats ss, sd, se;
    CU_ASSERT_EQUAL_FATAL(spr_model_infer(&mc, &m, SPR_SCHEME_SPRINT, in, i, x, ls, &ss), 0);
    CU_ASSERT_EQUAL_FATAL(spr_model_infer(&mc, &m, SPR_SCHEME_DENSE, in, i, x, ld, &sd), 0);
    CU_ASSERT_EQUAL_FATAL(spr_model_infer(&mc, &m, SPR_MEVAL_EXACT, in, i, x, le, &se), 0);
    for (int l = 0; l < SL; l++) {
      CU_ASSERT_EQUAL(ss.kept[l], SH * pairs);
      CU_ASSERT_EQUAL(sd.kept[l], SH * pairs);
    }
    CU_ASSERT_EQUAL(memcmp(ls, ld, no * sizeof *ls), 0);
    /* the buffer fetches the same bytes; SPRINT adds its in-memory scoring */
    CU_ASSERT_EQUAL(ss.bytes_fetched, sd.bytes_fetched);
    CU_ASSERT(ss.energy_J > sd.energy_J);
    double err = 0, scale = 0;
    for (int k = 0; k < no; k++) {
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
  CU_ASSERT_EQUAL_FATAL(spr_model_config(&c, &m, model_path, &mc), 0);
  spr_model_item_stats ss;
  CU_ASSERT_EQUAL(spr_model_infer(&mc, &m, SPR_SCHEME_SPRINT, text ? m.eval_tokens : d.pixels, 0,
                                  x, ls, &ss), 0);
  for (int l = 0; l < SL; l++) {
    const double kr = (double)ss.kept[l] / (SH * pairs);
    CU_ASSERT(kr > 0.2385 - 0.1 && kr < 0.2385 + 0.1);
  }
  free(ls);
  free(ld);
  free(le);
  spr_model_ctx_free(x);
  spr_fmnist_free(&d);
  spr_model_free(&m);
}

static void test_sprint_ideal_keep_all(void) {
  keep_all_case(0);
  keep_all_case(1);
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
      const double v = h.ideal ? h.ideal[i * n + j] : h.ideal16[i * n + j];
      err = fmax(err, fabs(v / unit - s));
      big = fmax(big, fabs(s));
    }
  /* 4-bit queries and 4-bit key MSBs (floor): errors of a few tenths of the range */
  CU_ASSERT(err < 0.35 * big);
  CU_ASSERT(err > 0);
  /* learned mode: a threshold far below every score saturates at the
   * grid's bottom and keeps all keys */
  write_model(model_path, 0, OK, 2385);
  spr_model m;
  CU_ASSERT_EQUAL_FATAL(spr_model_load(model_path, &m), 0);
  spr_config mc;
  c.wl.source = SPR_SOURCE_MODEL;
  c.thr.mode = SPR_THR_LEARNED;
  c.thr.offset = -500;
  ideal_device(&c);
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "test"), 0);
  CU_ASSERT_EQUAL_FATAL(spr_model_config(&c, &m, model_path, &mc), 0);
  spr_model_ctx *x = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_model_ctx_alloc(&mc, &m, &x), 0);
  spr_fmnist dd;
  fake_images(&dd, 1, 5);
  float lg[16];
  spr_model_item_stats st;
  CU_ASSERT_EQUAL(spr_model_infer(&mc, &m, SPR_SCHEME_SPRINT, dd.pixels, 0, x, lg, &st), 0);
  CU_ASSERT_EQUAL(st.theta_saturated, SL * SH);
  for (int l = 0; l < SL; l++) CU_ASSERT_EQUAL(st.kept[l], (int64_t)SH * ST * ST);
  /* offset 0: the model's thresholds prune some keys, saturate none */
  c.thr.offset = 0;
  CU_ASSERT_EQUAL_FATAL(spr_model_config(&c, &m, model_path, &mc), 0);
  CU_ASSERT_EQUAL(spr_model_infer(&mc, &m, SPR_SCHEME_SPRINT, dd.pixels, 0, x, lg, &st), 0);
  CU_ASSERT_EQUAL(st.theta_saturated, 0);
  CU_ASSERT(st.kept[0] < (int64_t)SH * ST * ST && st.kept[0] > 0);
  spr_model_ctx_free(x);
  spr_fmnist_free(&dd);
  spr_model_free(&m);
  spr_attend_ws_free(w);
  spr_attend_head_free(&h);
}

/* Every figure bit-identical for 1 and 2 threads, noise on; metrics
 * recomputed from the per-item arrays; the HDF5 output holds them. */
static void threads_case(int text) {
  char ref_path[600];
  spr_test_path(ref_path, sizeof ref_path, "model-ref", ".h5");
  write_model(model_path, text, OK, 2385);
  write_model(ref_path, text, NO_THETA, 2390);
  spr_model m, ref;
  CU_ASSERT_EQUAL_FATAL(spr_model_load(model_path, &m), 0);
  CU_ASSERT_EQUAL_FATAL(spr_model_load(ref_path, &ref), 0);
  spr_fmnist d;
  fake_images(&d, 7, 31);
  spr_config c;
  spr_config_default(&c);
  c.wl.source = SPR_SOURCE_MODEL;
  c.wl.images = 5;
  c.wl.first_image = 2;
  c.wl.windows = 4;
  c.wl.first_window = 1;
  c.seed = 2385;
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "test"), 0);
  spr_model_eval_result r1, r2;
  const spr_fmnist *dp = text ? NULL : &d;
  CU_ASSERT_EQUAL_FATAL(spr_model_eval_run(&c, &m, model_path, &ref, ref_path, dp, 1, NULL, NULL, &r1), 0);
  spr_progress prog;
  spr_progress_init(&prog);
  CU_ASSERT_EQUAL_FATAL(spr_model_eval_run(&c, &m, model_path, &ref, ref_path, dp, 2, NULL, &prog, &r2), 0);
  const int N = text ? 4 : 5;
  /* the items counted as they finished (spr_progress.h) */
  const char *unit;
  long long done, total;
  int stage;
  spr_progress_read(&prog, &unit, &done, &total, &stage);
  CU_ASSERT_STRING_EQUAL(unit, text ? "windows" : "images");
  CU_ASSERT(done == N && total == N && stage == 1);
  CU_ASSERT_EQUAL(r1.n_items, N);
  for (int s = 0; s < SPR_MEVAL_N_SCHEMES; s++) {
    CU_ASSERT_EQUAL(r1.scheme[s].ran, 1);
    if (!r1.scheme[s].ran || !r2.scheme[s].ran) continue;
    if (text) {
      CU_ASSERT_EQUAL(memcmp(r1.nats[s], r2.nats[s], N * sizeof(double)), 0);
    } else {
      CU_ASSERT_EQUAL(memcmp(r1.pred[s], r2.pred[s], N), 0);
    }
    CU_ASSERT_EQUAL(memcmp(r1.keep_rate[s], r2.keep_rate[s], N * sizeof(double)), 0);
    CU_ASSERT_EQUAL(memcmp(r1.energy_J[s], r2.energy_J[s], N * sizeof(double)), 0);
    CU_ASSERT_EQUAL(memcmp(r1.cycles[s], r2.cycles[s], N * sizeof(double)), 0);
    CU_ASSERT_EQUAL(memcmp(r1.bytes_fetched[s], r2.bytes_fetched[s], N * sizeof(int64_t)), 0);
    CU_ASSERT_EQUAL(memcmp(&r1.scheme[s], &r2.scheme[s], sizeof r1.scheme[s]), 0);
  }
  /* noise is on: another seed changes SPRINT's decisions, not dense's */
  c.seed = 2386;
  spr_model_eval_result r3;
  CU_ASSERT_EQUAL_FATAL(spr_model_eval_run(&c, &m, model_path, &ref, ref_path, dp, 2, NULL, NULL, &r3), 0);
  CU_ASSERT(memcmp(r1.keep_rate[SPR_SCHEME_SPRINT], r3.keep_rate[SPR_SCHEME_SPRINT],
                   N * sizeof(double)) != 0);
  CU_ASSERT_EQUAL(memcmp(r1.keep_rate[SPR_SCHEME_DENSE], r3.keep_rate[SPR_SCHEME_DENSE],
                         N * sizeof(double)), 0);
  /* the metrics from the per-item arrays: top-1 and agreement against the
   * labels and exact predictions, bits per character from the nats, the
   * loss against the reference row */
  for (int s = 0; s < SPR_MEVAL_N_SCHEMES; s++) {
    const spr_model_metrics *x = &r1.scheme[s], *rf = &r1.scheme[SPR_MEVAL_REFERENCE];
    if (text) {
      double nats = 0;
      for (int i = 0; i < N; i++) nats += r1.nats[s][i];
      CU_ASSERT_DOUBLE_EQUAL(x->metric, nats / (N * TT * log(2.0)), 1e-12);
      CU_ASSERT_DOUBLE_EQUAL(x->loss, 100 * (x->metric - rf->metric) / rf->metric, 1e-9);
    } else {
      int ok = 0, ag = 0, okr = 0;
      for (int i = 0; i < N; i++) {
        ok += r1.pred[s][i] == d.labels[2 + i];
        okr += r1.pred[SPR_MEVAL_REFERENCE][i] == d.labels[2 + i];
        ag += r1.pred[s][i] == r1.pred[SPR_MEVAL_EXACT][i];
      }
      CU_ASSERT_DOUBLE_EQUAL(x->metric, (double)ok / N, 1e-15);
      CU_ASSERT_DOUBLE_EQUAL(x->agreement, (double)ag / N, 1e-15);
      CU_ASSERT_DOUBLE_EQUAL(x->loss, 100.0 * (okr - ok) / N, 1e-12);
    }
  }
  CU_ASSERT_EQUAL(r1.loss_vs, SPR_MEVAL_REFERENCE);
  CU_ASSERT(isnan(r1.scheme[SPR_MEVAL_EXACT].energy_J));
  CU_ASSERT(isnan(r1.scheme[SPR_MEVAL_REFERENCE].energy_J));
  CU_ASSERT(r1.scheme[SPR_SCHEME_SPRINT].energy_J > 0);
  CU_ASSERT_DOUBLE_EQUAL(r1.scheme[SPR_MEVAL_EXACT].keep_rate, 1.0, 0);
  /* the output file */
  char out[512];
  spr_test_path(out, sizeof out, "model-out", ".h5");
  CU_ASSERT_EQUAL_FATAL(spr_model_eval_write(out, &c, &r1, "test"), 0);
  hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  double e[5], acc;
  if (text) {
    double nats[4];
    CU_ASSERT(H5LTread_dataset(f, "/schemes/sprint/nats", H5T_NATIVE_DOUBLE, nats) >= 0);
    CU_ASSERT_EQUAL(memcmp(nats, r1.nats[SPR_SCHEME_SPRINT], sizeof nats), 0);
    CU_ASSERT(H5LTget_attribute_double(f, "/schemes/reference", "bpc", &acc) >= 0);
  } else {
    uint8_t pred[5];
    CU_ASSERT(H5LTread_dataset(f, "/schemes/sprint/pred", H5T_NATIVE_UINT8, pred) >= 0);
    CU_ASSERT_EQUAL(memcmp(pred, r1.pred[SPR_SCHEME_SPRINT], N), 0);
    CU_ASSERT(H5LTget_attribute_double(f, "/schemes/reference", "top1", &acc) >= 0);
  }
  CU_ASSERT_EQUAL(acc, r1.scheme[SPR_MEVAL_REFERENCE].metric);
  CU_ASSERT(H5LTread_dataset(f, "/schemes/leopard/energy_J", H5T_NATIVE_DOUBLE, e) >= 0);
  CU_ASSERT_EQUAL(memcmp(e, r1.energy_J[SPR_SCHEME_LEOPARD], N * sizeof(double)), 0);
  char s[64];
  CU_ASSERT(H5LTget_attribute_string(f, "/", "loss_vs", s) >= 0);
  CU_ASSERT_STRING_EQUAL(s, "reference");
  unsigned long long seed = 0;
  hid_t a = H5Aopen(f, "seed", H5P_DEFAULT);
  CU_ASSERT(a >= 0 && H5Aread(a, H5T_NATIVE_ULLONG, &seed) >= 0);
  H5Aclose(a);
  CU_ASSERT_EQUAL(seed, 2386); /* c as passed */
  /* the input files as read: the model's and the reference's FNV-1a and
   * sizes; the fake images were not read from files */
  const char *const keys[2] = {"/inputs/workload.model", "/inputs/workload.reference_model"};
  const char *const paths[2] = {model_path, ref_path};
  for (int k = 0; k < 2; k++) {
    char want[32], got[64] = "", pth[700] = "";
    long long size = 0;
    fnv_id(paths[k], want, sizeof want);
    CU_ASSERT(H5LTget_attribute_string(f, keys[k], "content_id", got) >= 0);
    CU_ASSERT_STRING_EQUAL(got, want);
    CU_ASSERT(H5LTget_attribute_long_long(f, keys[k], "size_bytes", &size) >= 0);
    CU_ASSERT_EQUAL(size, file_size(paths[k]));
    CU_ASSERT(H5LTread_dataset_string(f, keys[k], pth) >= 0);
    CU_ASSERT_STRING_EQUAL(pth, paths[k]);
  }
  CU_ASSERT_STRING_EQUAL(m.content_id, r1.inputs[0].content_id);
  CU_ASSERT_EQUAL(H5Lexists(f, "/inputs/workload.dataset.images", H5P_DEFAULT), 0);
  CU_ASSERT_EQUAL(r1.n_inputs, 2);
  H5Fclose(f);
  unlink(out);
  /* spr_model_eval_add_input's refusals */
  CU_ASSERT_EQUAL(spr_model_eval_add_input(&r1, "workload.model", "x.h5", "fnv1a64:0", 1), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "input 'workload.model' recorded twice");
  CU_ASSERT_EQUAL(spr_model_eval_add_input(&r1, "a/b", "x.h5", "fnv1a64:0", 1), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_model_eval_add_input(&r1, "k", "", "fnv1a64:0", 1), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_model_eval_add_input(&r1, "k", "x.h5", "fnv1a64:0", -1), SPR_EINVAL);
  int added = r1.n_inputs;
  for (int k = 0; k < SPR_MEVAL_MAX_INPUTS + 1; k++) {
    char key[16];
    snprintf(key, sizeof key, "extra%d", k);
    if (spr_model_eval_add_input(&r1, key, "x.h5", "fnv1a64:0123456789abcdef", 7) == 0) added++;
  }
  CU_ASSERT_EQUAL(added, SPR_MEVAL_MAX_INPUTS);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "more than 8 inputs");
  spr_model_eval_result_free(&r1);
  spr_model_eval_result_free(&r2);
  spr_model_eval_result_free(&r3);
  /* without a reference, losses are against exact attention */
  CU_ASSERT_EQUAL_FATAL(spr_model_eval_run(&c, &m, model_path, NULL, "", dp, 1, NULL, NULL, &r1), 0);
  CU_ASSERT_EQUAL(r1.loss_vs, SPR_MEVAL_EXACT);
  CU_ASSERT_EQUAL(r1.scheme[SPR_MEVAL_REFERENCE].ran, 0);
  CU_ASSERT_EQUAL(r1.scheme[SPR_MEVAL_EXACT].loss, 0.0);
  spr_model_eval_result_free(&r1);
  spr_fmnist_free(&d);
  spr_model_free(&ref);
  spr_model_free(&m);
  unlink(ref_path);
}

static void test_threads_reproducible(void) {
  threads_case(0);
  threads_case(1);
}

/* threshold.mode = analog_keep_rate and baselines.match = sprint on a
 * model (image, causal text): each baseline runs at the keep rate SPRINT
 * realised on the same item and layer, so per item the rates agree to the
 * knobs' granularity, where the configured knobs (top-k 5%, Sanger
 * p = 0.2, window half-width 0) would keep far fewer; a baseline asked to
 * match before SPRINT set the item's rates is refused. */
static void matched_case(int text) {
  write_model(model_path, text, OK, 2385);
  spr_model m;
  CU_ASSERT_EQUAL_FATAL(spr_model_load(model_path, &m), 0);
  spr_fmnist d;
  fake_images(&d, 7, 31);
  spr_config c;
  spr_config_default(&c);
  c.wl.source = SPR_SOURCE_MODEL;
  c.wl.images = 4;
  c.wl.windows = 4;
  c.thr.mode = SPR_THR_ANALOG_KEEP_RATE;
  c.thr.keep_rate = 0.4;
  c.bl.match = SPR_MATCH_SPRINT;
  c.bl.topk_fraction = 0.05;
  c.bl.sanger_threshold = 0.2;
  c.bl.window_half_width = 0;
  c.seed = 2385;
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "test"), 0);
  spr_model_eval_result r;
  CU_ASSERT_EQUAL_FATAL(spr_model_eval_run(&c, &m, model_path, NULL, "", text ? NULL : &d, 2, NULL,
                                           NULL, &r), 0);
  const int N = r.n_items, n = m.tokens;
  const int sch[] = {SPR_SCHEME_ORACLE, SPR_SCHEME_TOPK, SPR_SCHEME_SANGER, SPR_SCHEME_LEOPARD,
                     SPR_SCHEME_WINDOW};
  double worst = 0;
  for (int i = 0; i < N; i++) {
    const double ks = r.keep_rate[SPR_SCHEME_SPRINT][i];
    CU_ASSERT(ks > 0.25 && ks < 0.55); /* the analog target 0.4, on the 5-bit grid */
    for (int k = 0; k < 5; k++) {
      const double kb = r.keep_rate[sch[k]][i];
      worst = fmax(worst, fabs(kb - ks));
      CU_ASSERT(fabs(kb - ks) < 2.5 / n);
    }
  }
  printf("\n    %s: %d tokens, largest |baseline - SPRINT| keep rate %.4f ", text ? "text" : "image",
         n, worst);
  /* one thread: the same bits */
  spr_model_eval_result r1;
  CU_ASSERT_EQUAL_FATAL(spr_model_eval_run(&c, &m, model_path, NULL, "", text ? NULL : &d, 1, NULL,
                                           NULL, &r1), 0);
  for (int s = 0; s < SPR_N_SCHEMES; s++) {
    if (!r.scheme[s].ran) continue;
    CU_ASSERT_EQUAL(memcmp(r.keep_rate[s], r1.keep_rate[s], N * sizeof(double)), 0);
    CU_ASSERT_EQUAL(memcmp(r.energy_J[s], r1.energy_J[s], N * sizeof(double)), 0);
  }
  spr_model_eval_result_free(&r1);
  spr_model_eval_result_free(&r);
  /* refused without SPRINT's rates of the item */
  spr_config mc;
  CU_ASSERT_EQUAL_FATAL(spr_model_config(&c, &m, "model", &mc), 0);
  spr_model_ctx *x;
  CU_ASSERT_EQUAL_FATAL(spr_model_ctx_alloc(&mc, &m, &x), 0);
  float *lg = malloc((size_t)m.tokens * m.outputs * sizeof *lg);
  spr_model_item_stats st;
  const uint8_t *in = text ? m.eval_tokens : d.pixels;
  CU_ASSERT_EQUAL(spr_model_infer(&mc, &m, SPR_SCHEME_TOPK, in, 0, x, lg, &st), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "baselines.match = sprint: the item's SPRINT keep rates are not set");
  const double keep[8] = {0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3};
  spr_model_ctx_set_match(x, keep, m.depth);
  CU_ASSERT_EQUAL(spr_model_infer(&mc, &m, SPR_SCHEME_TOPK, in, 0, x, lg, &st), 0);
  free(lg);
  spr_model_ctx_free(x);
  spr_fmnist_free(&d);
  spr_model_free(&m);
}

static void test_matched(void) {
  matched_case(0);
  matched_case(1);
}

/* Errors of the evaluation: items outside the data, a split too short, a
 * reference that does not match, learned thresholds a model lacks. */
static void test_eval_errors(void) {
  spr_model m, other;
  spr_fmnist d;
  fake_images(&d, 7, 31);
  spr_config c;
  spr_config_default(&c);
  c.wl.source = SPR_SOURCE_MODEL;
  c.wl.images = 5;
  c.wl.first_image = 3;
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "test"), 0);
  spr_model_eval_result r;
  write_model(model_path, 0, OK, 2385);
  CU_ASSERT_EQUAL_FATAL(spr_model_load(model_path, &m), 0);
  CU_ASSERT_EQUAL(spr_model_eval_run(&c, &m, model_path, NULL, "", &d, 1, NULL, NULL, &r), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "first_image 3 + workload.images 5 exceed the 7");
  CU_ASSERT_EQUAL(spr_model_eval_run(&c, &m, model_path, NULL, "", NULL, 1, NULL, NULL, &r), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "needs test images");
  c.wl.first_image = 0;
  c.thr.mode = SPR_THR_DIRECT;
  c.thr.n_values = 3;
  c.thr.values[0] = c.thr.values[1] = c.thr.values[2] = 1;
  CU_ASSERT_EQUAL(spr_model_eval_run(&c, &m, model_path, NULL, "", &d, 1, NULL, NULL, &r), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "3 values given");
  c.thr.mode = SPR_THR_KEEP_RATE;
  /* a text reference for an image model */
  char other_path[600];
  spr_test_path(other_path, sizeof other_path, "model-other", ".h5");
  write_model(other_path, 1, OK, 1);
  CU_ASSERT_EQUAL_FATAL(spr_model_load(other_path, &other), 0);
  CU_ASSERT_EQUAL(spr_model_eval_run(&c, &m, model_path, &other, other_path, &d, 1, NULL, NULL, &r),
                  SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "does not match the model");
  SPR_ASSERT_CONTAINS(spr_errmsg(), other_path);
  spr_model_free(&m);
  /* text: windows beyond the split, a split shorter than one window */
  c.wl.windows = 5;
  c.wl.first_window = 1;
  CU_ASSERT_EQUAL(spr_model_eval_run(&c, &other, other_path, NULL, "", NULL, 1, NULL, NULL, &r),
                  SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "first_window 1 + workload.windows 5 exceed the 5 windows of 24");
  spr_model_free(&other);
  write_model(other_path, 1, SHORT_EVAL, 1);
  CU_ASSERT_EQUAL_FATAL(spr_model_load(other_path, &other), 0);
  CU_ASSERT_EQUAL(spr_model_eval_run(&c, &other, other_path, NULL, "", NULL, 1, NULL, NULL, &r),
                  SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "has 24 tokens, too short for one window of 24 tokens plus its last target (25)");
  spr_model_free(&other);
  /* learned thresholds requested of a dense model */
  write_model(other_path, 0, NO_THETA, 1);
  CU_ASSERT_EQUAL_FATAL(spr_model_load(other_path, &other), 0);
  CU_ASSERT_EQUAL(other.has_theta, 0);
  c.thr.mode = SPR_THR_LEARNED;
  c.wl.first_window = 0;
  CU_ASSERT_EQUAL(spr_model_eval_run(&c, &other, other_path, NULL, "", &d, 1, NULL, NULL, &r),
                  SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "has no dataset 'theta'");
  SPR_ASSERT_CONTAINS(spr_errmsg(), other_path);
  spr_model_free(&other);
  unlink(other_path);
  spr_fmnist_free(&d);
  /* the reference path: the key, the model's attribute, none */
  write_model(model_path, 0, OK, 2385);
  CU_ASSERT_EQUAL_FATAL(spr_model_load(model_path, &m), 0);
  char buf[SPR_STRING_MAX];
  strcpy(m.reference, "dense.h5");
  c.wl.reference_model[0] = '\0';
  CU_ASSERT_EQUAL(spr_model_reference_path(&c, "/a/b/model.h5", &m, buf, sizeof buf), 0);
  CU_ASSERT_STRING_EQUAL(buf, "/a/b/dense.h5");
  CU_ASSERT_EQUAL(spr_model_reference_path(&c, "model.h5", &m, buf, sizeof buf), 0);
  CU_ASSERT_STRING_EQUAL(buf, "dense.h5");
  strcpy(c.wl.reference_model, "none");
  CU_ASSERT_EQUAL(spr_model_reference_path(&c, "/a/b/model.h5", &m, buf, sizeof buf), 0);
  CU_ASSERT_STRING_EQUAL(buf, "");
  strcpy(c.wl.reference_model, "/x/other.h5");
  CU_ASSERT_EQUAL(spr_model_reference_path(&c, "/a/b/model.h5", &m, buf, sizeof buf), 0);
  CU_ASSERT_STRING_EQUAL(buf, "/x/other.h5");
  c.wl.reference_model[0] = '\0';
  m.reference[0] = '\0';
  CU_ASSERT_EQUAL(spr_model_reference_path(&c, "/a/b/model.h5", &m, buf, sizeof buf), 0);
  CU_ASSERT_STRING_EQUAL(buf, "");
  memset(m.reference, 'x', sizeof m.reference - 1);
  m.reference[sizeof m.reference - 1] = '\0';
  CU_ASSERT_EQUAL(spr_model_reference_path(&c, "/a/b/model.h5", &m, buf, sizeof buf), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "reference model's path is longer than");
  spr_model_free(&m);
}

/* Every model reader error. */
static void test_model_errors(void) {
  static const struct {
    int text, defect, code;
    const char *msg;
  } cases[] = {
    {0, MISSING_DSET, SPR_EHDF5, "dataset 'layer_1/fc1_b' missing"},
    {0, WRONG_SHAPE, SPR_EHDF5, "dataset 'layer_0/qkv_w' has shape 24 x 9, expected 24 x 8"},
    {0, WRONG_TYPE, SPR_EHDF5, "dataset 'pos' is not floating point"},
    {0, NAN_VALUE, SPR_EHDF5, "dataset 'head_w': element 37 is nan"},
    {0, BAD_FORMAT, SPR_EINVAL, "attribute 'format' is 'sprintsim-vit', expected 'sprintsim-model'"},
    {0, BAD_VERSION, SPR_EINVAL, "attribute 'version' of '/' is 2"},
    {0, STRING_VERSION, SPR_EHDF5, "attribute 'version' of '/' is not an integer"},
    {0, BAD_HEADS, SPR_EINVAL, "attribute 'heads' is 3, which does not divide dim = 8"},
    {0, BAD_TOKENS, SPR_EINVAL, "attribute 'tokens' is 196"},
    {0, MISSING_ATTR, SPR_EHDF5, "attribute 'ln_eps' of '/' missing"},
    {0, BAD_THETA, SPR_EHDF5, "dataset 'theta': element 1 is nan"},
    {0, THETA_SHAPE, SPR_EHDF5, "dataset 'theta' has shape 3, expected 2"},
    {0, BAD_STD, SPR_EINVAL, "attribute 'norm_std' is 0"},
    {0, BAD_LABEL, SPR_EINVAL, "dataset 'eval/labels': element 4 is 12"},
    {0, EVAL_LENGTH, SPR_EHDF5, "dataset 'eval/pred_exact' has 4 values, expected 5"},
    {0, BAD_INPUT, SPR_EINVAL, "attribute 'input' is 'audio'"},
    {0, BAD_CAUSAL, SPR_EINVAL, "attribute 'causal' of '/' is 1, outside [0, 0]"},
    {1, BAD_CAUSAL, SPR_EINVAL, "attribute 'causal' of '/' is 0, outside [1, 1]"},
    {1, WRONG_SHAPE, SPR_EHDF5, "dataset 'layer_0/qkv_w' has shape 24 x 9, expected 24 x 8"},
    {1, BAD_TOKENS, SPR_EHDF5, "dataset 'pos' has shape 24 x 8, expected 23 x 8"},
    {1, DUP_VOCAB, SPR_EINVAL, "dataset 'vocab_bytes': byte 97 appears twice (ids 0 and 7)"},
    {1, BAD_TOKEN_ID, SPR_EINVAL, "dataset 'eval/tokens': element 100 is 11 (valid: 0..10)"},
    {1, NATS_SHAPE, SPR_EHDF5, "dataset 'eval/nats_exact' has shape 6, expected 5"},
    {1, NAN_VALUE, SPR_EHDF5, "dataset 'head_w': element 37 is nan"},
  };
  char bad[512];
  spr_test_path(bad, sizeof bad, "model-bad", ".h5");
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    write_model(bad, cases[k].text, cases[k].defect, 2385);
    spr_model m;
    int rc = spr_model_load(bad, &m);
    if (rc != cases[k].code)
      fprintf(stderr, "\n  case %zu (defect %d): rc %d: %s\n", k, cases[k].defect, rc, spr_errmsg());
    CU_ASSERT_EQUAL(rc, cases[k].code);
    SPR_ASSERT_CONTAINS(spr_errmsg(), cases[k].msg);
    SPR_ASSERT_CONTAINS(spr_errmsg(), bad);
    CU_ASSERT_PTR_NULL(m.pos); /* nothing left to free */
    CU_ASSERT_PTR_NULL(m.layer[0].qkv_w);
  }
  spr_model m;
  /* a truncated file */
  write_model(bad, 1, OK, 2385);
  struct stat sb;
  CU_ASSERT_EQUAL_FATAL(stat(bad, &sb), 0);
  CU_ASSERT_EQUAL(truncate(bad, sb.st_size / 2), 0);
  int rc = spr_model_load(bad, &m);
  CU_ASSERT(rc == SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), bad);
  CU_ASSERT_PTR_NULL(m.pos);
  CU_ASSERT(spr_model_input_of(bad) < 0);
  unlink(bad);
  CU_ASSERT_EQUAL(spr_model_load(bad, &m), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cannot open the model");
  CU_ASSERT_EQUAL(spr_model_input_of(bad), SPR_EIO);
  FILE *f = fopen(bad, "w");
  fputs("not hdf5\n", f);
  fclose(f);
  CU_ASSERT_EQUAL(spr_model_load(bad, &m), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "not an HDF5 file");
  unlink(bad);
  write_model(bad, 1, OK, 1);
  CU_ASSERT_EQUAL(spr_model_input_of(bad), SPR_MODEL_TEXT);
  write_model(bad, 0, OK, 1);
  CU_ASSERT_EQUAL(spr_model_input_of(bad), SPR_MODEL_IMAGE);
  unlink(bad);
}

/* ---- the isolated reader ------------------------------------------------ */

/* Rewrite attribute `name` of '/' in the model file at path with type ty
 * and the value at v (ty NULL: delete it only). */
static void set_root_attr(const char *path, const char *name, hid_t ty, const void *v) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  H5Adelete(f, name);
  if (ty >= 0) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(a >= 0 && H5Awrite(a, ty, v) >= 0);
    H5Aclose(a);
    H5Sclose(sp);
  }
  H5Fclose(f);
}

/* Replace 1-D dataset `name` by n values v of memory type mt stored as
 * file type ft. */
static void set_dset(const char *path, const char *name, hid_t ft, hid_t mt, hsize_t n,
                     const void *v) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  H5Ldelete(f, name, H5P_DEFAULT);
  hid_t sp = H5Screate_simple(1, &n, NULL);
  hid_t d = H5Dcreate2(f, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  CU_ASSERT(d >= 0 && H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
  H5Dclose(d);
  H5Sclose(sp);
  H5Fclose(f);
}

static int load_rc(const char *path) {
  spr_model m;
  int rc = spr_model_load(path, &m);
  spr_model_free(&m);
  return rc;
}

/* What reading through the isolated reader (docs/isolation.md) adds: the
 * checksum of the bytes read; strings of any padding or variable length,
 * never cut; non-standard numeric types refused; integers read whole as
 * int64, so a value beyond int is named as it is. */
/* The memory refusal.  spr_model_bytes against the arrays counted one by
 * one; spr_model_eval_mem_bytes: the weights plus, per thread, every
 * head held whole, one attention workspace and the activations; a
 * header declaring more weights than this process may hold is refused
 * before any dataset is read (the file holds the small model's datasets,
 * which would otherwise be refused for their shape). */
static void test_memory(void) {
  char p[512];
  spr_test_path(p, sizeof p, "model-mem", ".h5");
  spr_model m;
  for (int text = 0; text < 2; text++) {
    write_model(p, text, OK, 2385 + text);
    CU_ASSERT_EQUAL_FATAL(spr_model_load(p, &m), 0);
    const double D = SD, M = SM, T = text ? TT : ST, O = text ? TV : 10;
    double n = text ? TV * D : D * 2 * 2 + D + D; /* tok_emb; embed_w (patch 2), embed_b, cls */
    n += T * D;                                    /* pos */
    n += SL * (4 * D + 3 * D * D + 3 * D + D * D + D + M * D + M + D * M + D); /* LNs, qkv, proj, MLP */
    n += 2 * D + O * D + O;                        /* ln_w, ln_b, head_w, head_b */
    CU_ASSERT_DOUBLE_EQUAL(spr_model_bytes(&m), 4 * n, 0.5);
    spr_config c, mc;
    spr_config_default(&c);
    CU_ASSERT_EQUAL_FATAL(spr_model_config(&c, &m, p, &mc), 0);
    const double acts = 4 * (T * D * 6 + T * M + (text ? 0 : T * 4) + T * (SD / SH) + (text ? T : 1) * O);
    /* every head held whole, one workspace of T rows (spr_model_ctx_alloc) */
    const int Ti = (int)T, d = SD / SH;
    const double attn = SH * spr_attend_head_bytes(&mc, Ti, d, 0, Ti) + spr_attend_ws_bytes(&mc, Ti, d, Ti);
    CU_ASSERT_DOUBLE_EQUAL(spr_model_eval_mem_bytes(&mc, &m, 1), 4 * n + attn + acts, 0.5);
    CU_ASSERT_DOUBLE_EQUAL(spr_model_eval_mem_bytes(&mc, &m, 3), 4 * n + 3 * (attn + acts), 0.5);
    /* the whole-head sizes, not the pipeline's row blocks: at least the
     * held heads' n x n ideal scores (int32) */
    CU_ASSERT(spr_model_eval_mem_bytes(&mc, &m, 1) >= 4 * n + SH * 4.0 * T * T);
    spr_model_free(&m);
  }
  /* dim 4096, mlp 65536, depth 64 declared over the text model's datasets:
   * about 155 GB of weights */
  write_model(p, 1, OK, 2385);
  const int dim = 4096, mlp = 65536, depth = 64;
  set_root_attr(p, "dim", H5T_NATIVE_INT, &dim);
  set_root_attr(p, "mlp", H5T_NATIVE_INT, &mlp);
  set_root_attr(p, "depth", H5T_NATIVE_INT, &depth);
  double have = 0;
  CU_ASSERT_EQUAL_FATAL(spr_sysmem_limit(NULL, NULL, &have, NULL, 0), 0);
  const double need = 4.0 * depth * (2.0 * mlp * dim + 4.0 * dim * dim);
  if (need <= 0.8 * have) {
    fprintf(stderr, "\n  SKIP: %.0f GiB of memory hold the declared model\n", have / 1073741824.0);
  } else {
    CU_ASSERT_EQUAL(load_rc(p), SPR_ENOMEM);
    SPR_ASSERT_CONTAINS(spr_errmsg(), p);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "(dim 4096, depth 64, mlp 65536, tokens 24) need about 1");
    SPR_ASSERT_CONTAINS(spr_errmsg(), "GiB of memory, more than 80% of the");
  }
  /* the same header within the memory: refused for the datasets' shapes */
  const int small_mlp = 16;
  set_root_attr(p, "mlp", H5T_NATIVE_INT, &small_mlp);
  set_root_attr(p, "depth", H5T_NATIVE_INT, &(int){2});
  CU_ASSERT_EQUAL(load_rc(p), SPR_EHDF5);
  remove(p);
}

static void test_isolated_reader(void) {
  char p[512];
  spr_test_path(p, sizeof p, "model-iso", ".h5");
  spr_model m;
  /* the content id: FNV-1a 64 of the file's bytes, and its size */
  write_model(p, 1, OK, 2385);
  CU_ASSERT_EQUAL_FATAL(spr_model_load(p, &m), 0);
  char want[32];
  fnv_id(p, want, sizeof want);
  CU_ASSERT_STRING_EQUAL(m.content_id, want);
  CU_ASSERT_EQUAL(m.file_bytes, file_size(p));
  spr_model_free(&m);
  /* h5py's strings: 'format' NULLPAD without a terminator (np.bytes_),
   * 'input' variable-length UTF-8 */
  hid_t np = H5Tcopy(H5T_C_S1);
  H5Tset_size(np, 15);
  H5Tset_strpad(np, H5T_STR_NULLPAD);
  set_root_attr(p, "format", np, "sprintsim-model");
  H5Tclose(np);
  hid_t vs = H5Tcopy(H5T_C_S1);
  H5Tset_size(vs, H5T_VARIABLE);
  H5Tset_cset(vs, H5T_CSET_UTF8);
  const char *text = "text";
  set_root_attr(p, "input", vs, &text);
  CU_ASSERT_EQUAL(spr_model_load(p, &m), 0);
  CU_ASSERT_EQUAL(m.input, SPR_MODEL_TEXT);
  spr_model_free(&m);
  CU_ASSERT_EQUAL(spr_model_input_of(p), SPR_MODEL_TEXT);
  /* a 'reference' longer than the field is refused, not cut */
  char *lng = malloc(1500);
  memset(lng, 'r', 1499);
  lng[1499] = '\0';
  set_root_attr(p, "reference", vs, &lng);
  free(lng);
  H5Tclose(vs);
  CU_ASSERT_EQUAL(load_rc(p), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "reference");
  SPR_ASSERT_CONTAINS(spr_errmsg(), p);
  /* integers whole: 'tokens' of 2^33 (an int would saturate) */
  write_model(p, 1, OK, 2385);
  const long long big = 1LL << 33;
  set_root_attr(p, "tokens", H5T_NATIVE_LLONG, &big);
  CU_ASSERT_EQUAL(load_rc(p), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "attribute 'tokens' of '/' is 8589934592, outside [2, 16384]");
  /* eval/tokens as int64 holding 2^40 and -5 */
  write_model(p, 1, OK, 2385);
  int64_t tok[TE];
  for (int k = 0; k < TE; k++) tok[k] = (k * 7 + k / 5) % TV;
  tok[100] = (int64_t)1 << 40;
  set_dset(p, "eval/tokens", H5T_STD_I64LE, H5T_NATIVE_INT64, TE, tok);
  CU_ASSERT_EQUAL(load_rc(p), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dataset 'eval/tokens': element 100 is 1099511627776 (valid: 0..10)");
  tok[100] = 3;
  tok[7] = -5;
  set_dset(p, "eval/tokens", H5T_STD_I64LE, H5T_NATIVE_INT64, TE, tok);
  CU_ASSERT_EQUAL(load_rc(p), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dataset 'eval/tokens': element 7 is -5 (valid: 0..10)");
  /* non-standard numeric types: a 24-bit integer attribute, a float with
   * another exponent bias */
  write_model(p, 1, OK, 2385);
  hid_t i24 = H5Tcopy(H5T_STD_I32LE);
  H5Tset_precision(i24, 24);
  const int32_t dim = SD;
  set_root_attr(p, "dim", i24, &dim);
  H5Tclose(i24);
  CU_ASSERT_EQUAL(load_rc(p), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "attribute 'dim' of '/' is a non-standard 4-byte type, expected an integer");
  write_model(p, 1, OK, 2385);
  hid_t fb = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_ebias(fb, 100);
  float lw[SD];
  for (int k = 0; k < SD; k++) lw[k] = 1.0f;
  set_dset(p, "ln_w", fb, H5T_NATIVE_FLOAT, SD, lw);
  H5Tclose(fb);
  CU_ASSERT_EQUAL(load_rc(p), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dataset 'ln_w' is a non-standard 4-byte floating-point type");
  /* a FIFO is refused before anything blocks */
  unlink(p);
  CU_ASSERT_EQUAL_FATAL(mkfifo(p, 0600), 0);
  CU_ASSERT_EQUAL(load_rc(p), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "not a regular file");
  unlink(p);
}

static int read_model(const char *path, void *arg) {
  (void)arg;
  return load_rc(path);
}

static int read_model_input(const char *path, void *arg) {
  (void)arg;
  int rc = spr_model_input_of(path);
  return rc < 0 ? rc : 0;
}

/* Every reproducer of tests/data/hdf5-crashers: libhdf5 crashes, loops or
 * asks for gigabytes on them in-process; here each is an error naming the
 * file (1 s of CPU per request: see main). */
static void test_hostile(void) {
  CU_ASSERT_EQUAL(spr_test_crashers(read_model, NULL), 13);
  CU_ASSERT_EQUAL(spr_test_crashers(read_model_input, NULL), 13);
}

/* ---- the output on a full disk ------------------------------------------- */

static spr_model_eval_result full_r;
static spr_config full_c;

static int write_eval(const char *path, void *arg) {
  (void)arg;
  return spr_model_eval_write(path, &full_c, &full_r, "test");
}

/* The evaluation's output with the disk's free space at nine sizes, through
 * the test-only fault hook (writes fail with ENOSPC past a byte budget)
 * in-process, and through a real file-size limit in a child process: an
 * error naming the file, no output, no temporary; with enough space, the
 * file. */
static void test_output_full_disk(void) {
  write_model(model_path, 1, OK, 2385);
  spr_model m;
  CU_ASSERT_EQUAL_FATAL(spr_model_load(model_path, &m), 0);
  spr_config_default(&full_c);
  full_c.wl.source = SPR_SOURCE_MODEL;
  full_c.wl.windows = 3;
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&full_c, "test"), 0);
  CU_ASSERT_EQUAL_FATAL(spr_model_eval_run(&full_c, &m, model_path, NULL, "", NULL, 1, NULL, NULL, &full_r), 0);
  char out[512];
  spr_test_path(out, sizeof out, "model-full", ".h5");
  const long long huge = 1LL << 50;
  spr__out_fault(huge);
  CU_ASSERT_EQUAL_FATAL(write_eval(out, NULL), 0);
  const long long total = huge - spr__out_fault(-1); /* bytes written */
  const long long size = file_size(out);
  CU_ASSERT(total > 0 && size > 0);
  unlink(out);
  const long long lv[] = {0, 1, 100, 512, total / 4, total / 2, total * 3 / 4, total - 512, total - 1};
  for (size_t i = 0; i < sizeof lv / sizeof lv[0]; i++) {
    spr__out_fault(lv[i]);
    int rc = write_eval(out, NULL);
    spr__out_fault(-1);
    if (getenv("SPR_TEST_VERBOSE")) fprintf(stderr, "\n  free %lld of %lld: rc %d: %s", lv[i], total, rc, spr_errmsg());
    CU_ASSERT_EQUAL(rc, SPR_EIO);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "No space left on device");
    SPR_ASSERT_CONTAINS(spr_errmsg(), "model-full");
    CU_ASSERT(file_size(out) < 0);
    CU_ASSERT(no_temps(out));
  }
  /* just enough space: written */
  spr__out_fault(total);
  CU_ASSERT_EQUAL(write_eval(out, NULL), 0);
  spr__out_fault(-1);
  CU_ASSERT_EQUAL(file_size(out), size);
  unlink(out);
  /* a real failure of the kernel (EFBIG past RLIMIT_FSIZE) in a child,
   * which must leave through exit(): libhdf5's exit handler survives */
  CU_ASSERT(spr_test_full_disk_levels(write_eval, NULL, out, size) >= 7);
  /* an output path that is a folder, or in a missing folder */
  char dir[600];
  snprintf(dir, sizeof dir, "%s.d", out);
  CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
  CU_ASSERT_EQUAL(write_eval(dir, NULL), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), dir);
  rmdir(dir);
  snprintf(dir, sizeof dir, "%s.missing/out.h5", out);
  CU_ASSERT_EQUAL(write_eval(dir, NULL), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "out.h5");
  spr_model_eval_result_free(&full_r);
  spr_model_free(&m);
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
  /* the files as read: their paths, sizes and FNV-1a */
  char want[32];
  CU_ASSERT_STRING_EQUAL(d.images_path, ip);
  CU_ASSERT_STRING_EQUAL(d.labels_path, lp);
  fnv_id(ip, want, sizeof want);
  CU_ASSERT_STRING_EQUAL(d.images_id, want);
  fnv_id(lp, want, sizeof want);
  CU_ASSERT_STRING_EQUAL(d.labels_id, want);
  CU_ASSERT_EQUAL(d.images_bytes, file_size(ip));
  CU_ASSERT_EQUAL(d.labels_bytes, file_size(lp));
  spr_fmnist_free(&d);
  /* only a regular file is read: a FIFO (which would block) and a folder
   * are refused by name */
  {
    char fifo[700], ff[700];
    snprintf(fifo, sizeof fifo, "%s/fifo-images", dir);
    CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
    int fdims[3];
    uint8_t *fd_data = NULL;
    CU_ASSERT_EQUAL(spr_fmnist_read_idx(fifo, 3, fdims, &fd_data), SPR_EIO);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "fifo-images: cannot open: not a regular file");
    CU_ASSERT_PTR_NULL(fd_data);
    unlink(fifo);
    snprintf(ff, sizeof ff, "%s/folder", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(ff, 0700), 0);
    CU_ASSERT_EQUAL(spr_fmnist_read_idx(ff, 3, fdims, &fd_data), SPR_EIO);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "folder: cannot open: it is a folder");
    rmdir(ff);
  }
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

/* The config keys of model workloads. */
static void test_config_keys(void) {
  spr_config c;
  spr_config_default(&c);
  CU_ASSERT_STRING_EQUAL(c.wl.model, "models/vit-fmnist.h5");
  CU_ASSERT_STRING_EQUAL(c.wl.dataset, "/usr/share/datasets/fashion-mnist");
  CU_ASSERT_STRING_EQUAL(c.wl.reference_model, "");
  CU_ASSERT_EQUAL(c.wl.windows, 16);
  CU_ASSERT_EQUAL(c.wl.source, SPR_SOURCE_SYNTHETIC);
  CU_ASSERT_EQUAL(spr_config_set(&c, "workload", "source", "model", "t:1"), 0);
  CU_ASSERT_EQUAL(c.wl.source, SPR_SOURCE_MODEL);
  /* vit, the old name, resolves to model */
  CU_ASSERT_EQUAL(spr_config_set(&c, "workload", "source", "vit", "t:1"), 0);
  CU_ASSERT_EQUAL(spr_config_set(&c, "threshold", "offset", "-0.25", "t:2"), 0);
  CU_ASSERT_DOUBLE_EQUAL(c.thr.offset, -0.25, 0);
  CU_ASSERT_EQUAL(spr_config_set(&c, "threshold", "mode", "learned", "t:3"), 0);
  CU_ASSERT_EQUAL(spr_config_set(&c, "workload", "reference_model", "none", "t:4"), 0);
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "t"), 0);
  CU_ASSERT_EQUAL(c.wl.source, SPR_SOURCE_MODEL);
  CU_ASSERT_STRING_EQUAL(c.wl.reference_model, "none"); /* not made a path */
  CU_ASSERT(c.wl.model[0] == '/');                        /* made absolute */
  /* nor in a file in another folder (its relative names are taken from
   * the file's folder) */
  {
    char dir[] = "/tmp/spr-refnone-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/r.ini", dir);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("[workload]\nsource = model\nmodel = m.h5\nreference_model = none\n", f);
    fclose(f);
    spr_config d;
    spr_config_default(&d);
    CU_ASSERT_EQUAL(spr_config_load(&d, path), 0);
    CU_ASSERT_STRING_EQUAL(d.wl.reference_model, "none");
    char want[80];
    snprintf(want, sizeof want, "%s/m.h5", dir);
    CU_ASSERT_STRING_EQUAL(d.wl.model, want);
    remove(path);
    rmdir(dir);
  }
  CU_ASSERT_EQUAL(spr_config_set(&c, "workload", "reference_model", "dense.h5", "t:5"), 0);
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "t"), 0);
  CU_ASSERT(c.wl.reference_model[0] == '/');
  char *ini = spr_config_to_ini(&c);
  SPR_ASSERT_CONTAINS(ini, "source = model");
  free(ini);
  c.wl.source = SPR_SOURCE_QKV;
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "t"), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'workload.qkv_file' is required");
  c.wl.source = SPR_SOURCE_SYNTHETIC;
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "t"), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'learned' needs workload.source = model");
  c.wl.source = SPR_SOURCE_MODEL;
  c.wl.model[0] = '\0';
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "t"), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'workload.model' is empty");
}

int main(int argc, char **argv) {
  /* "test_model --write-text FILE" or "--write-image FILE": the small
   * synthetic models of spr_test_model.h, for the command-line tests
   * (tests/test_cmd.sh), tests/test_reliability.sh and the fuzzing seeds
   * (tests/fuzz/make_seeds.sh) */
  if (argc == 3 && (!strcmp(argv[1], "--write-text") || !strcmp(argv[1], "--write-image"))) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    write_model(argv[2], !strcmp(argv[1], "--write-text"), OK, 2385);
    return 0;
  }
  spr_test_path(model_path, sizeof model_path, "model", ".h5");
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  /* 1 s of CPU per request of the reader's child: the crafted files that
   * loop libhdf5 end quickly */
  spr_h5r_limits lim;
  spr_h5r_limits_default(&lim);
  lim.cpu_s = 1;
  spr_h5r_set_limits(&lim);
  static const CU_TestInfo tests[] = {
    {"IDX reader and every IDX error", test_idx},
    {"model reader errors", test_model_errors},
    {"config keys", test_config_keys},
    {"forward pass = naive reference (image, causal text)", test_forward_reference},
    {"exact inference = PyTorch (committed models)", test_exact_matches_pytorch},
    {"SPRINT ideal, keep all = dense (image, causal text)", test_sprint_ideal_keep_all},
    {"learned threshold conversion", test_learned_threshold},
    {"1 and 2 threads identical; metrics; output file", test_threads_reproducible},
    {"evaluation errors", test_eval_errors},
    {"analog keep rate, baselines matched to SPRINT (image, causal text)", test_matched},
    {"isolated reader: checksum, strings, types, whole integers", test_isolated_reader},
    {"hostile files (hdf5-crashers)", test_hostile},
    {"memory: the weights and the evaluation against the limit", test_memory},
    {"output on a full disk (fault hook, file-size limit)", test_output_full_disk},
    CU_TEST_INFO_NULL,
  };
  int rc = spr_test_run("model", tests);
  unlink(model_path);
  if (rc == 0 && skipped) {
    fprintf(stderr, "test_model: some checks skipped (see SKIP above)\n");
    return 77;
  }
  return rc;
}
