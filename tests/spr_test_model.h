/* spr_test_model.h - small synthetic model files (docs/models.md) for the
 * tests: an image model (the ViT's shape at dim 8) and a causal text model,
 * weights from a seed, with an optional defect; and fake test images. */
#ifndef SPR_TEST_MODEL_H
#define SPR_TEST_MODEL_H

#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spr_fmnist.h"

enum defect {
  OK = 0, MISSING_DSET, WRONG_SHAPE, WRONG_TYPE, NAN_VALUE, BAD_FORMAT, BAD_VERSION, BAD_HEADS,
  BAD_TOKENS, MISSING_ATTR, BAD_THETA, BAD_STD, BAD_LABEL, EVAL_LENGTH, STRING_VERSION, BAD_INPUT,
  BAD_CAUSAL, THETA_SHAPE, DUP_VOCAB, BAD_TOKEN_ID, NO_THETA, SHORT_EVAL, NATS_SHAPE
};

#define SD 8   /* dim */
#define SL 2   /* depth */
#define SH 2   /* heads */
#define SM 12  /* mlp */
#define ST 197 /* tokens of the image model */
#define TT 24  /* tokens of the text model */
#define TV 11  /* vocabulary of the text model */
#define TE 130 /* tokens of its evaluation split: 5 windows of 24 + 10 */

static uint64_t lcg_state __attribute__((unused));
static inline double urand(void) { /* uniform in [-1, 1) */
  lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(lcg_state >> 11) / 4503599627370496.0 - 1.0;
}

static inline void put_f(hid_t f, const char *name, int rank, hsize_t d0, hsize_t d1, double scale,
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

static inline void attr_i(hid_t f, const char *obj, const char *name, long long v) {
  H5LTset_attribute_long_long(f, obj, name, &v, 1);
}
static inline void attr_d(hid_t f, const char *obj, const char *name, double v) {
  H5LTset_attribute_double(f, obj, name, &v, 1);
}

/* Write a model of SD x SL x SH x SM with weights from seed, with one
 * defect: an image model (197 tokens, 10 classes) or a causal text model
 * (TT tokens, TV symbols, an evaluation split of TE tokens). */
static inline void write_model(const char *path, int text, int defect, uint64_t seed) {
  lcg_state = seed;
  const int T = text ? TT : ST, O = text ? TV : 10;
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5LTset_attribute_string(f, "/", "format", defect == BAD_FORMAT ? "sprintsim-vit" : "sprintsim-model");
  if (defect == STRING_VERSION) H5LTset_attribute_string(f, "/", "version", "1");
  else attr_i(f, "/", "version", defect == BAD_VERSION ? 2 : 1);
  H5LTset_attribute_string(f, "/", "input", defect == BAD_INPUT ? "audio" : text ? "text" : "image");
  attr_i(f, "/", "causal", defect == BAD_CAUSAL ? !text : text);
  attr_i(f, "/", "dim", SD);
  attr_i(f, "/", "depth", SL);
  attr_i(f, "/", "heads", defect == BAD_HEADS ? 3 : SH);
  attr_i(f, "/", "mlp", SM);
  attr_i(f, "/", "tokens", defect == BAD_TOKENS ? T - 1 : T);
  if (defect != MISSING_ATTR) attr_d(f, "/", "ln_eps", 1e-5);
  H5LTset_attribute_string(f, "/", "reference", "");
  if (text) {
    attr_i(f, "/", "vocab", TV);
    uint8_t vb[TV];
    for (int k = 0; k < TV; k++) vb[k] = (uint8_t)(defect == DUP_VOCAB && k == 7 ? 'a' : 'a' + k);
    hsize_t nv = TV;
    H5LTmake_dataset(f, "vocab_bytes", 1, &nv, H5T_NATIVE_UINT8, vb);
    put_f(f, "tok_emb", 2, TV, SD, 0.8, 0, H5T_NATIVE_FLOAT);
  } else {
    attr_i(f, "/", "side", 28);
    attr_i(f, "/", "patch", 2);
    attr_i(f, "/", "classes", 10);
    attr_d(f, "/", "norm_mean", 0.2860);
    attr_d(f, "/", "norm_std", defect == BAD_STD ? 0.0 : 0.3530);
    put_f(f, "embed_w", 2, SD, 4, 0.6, 0, H5T_NATIVE_FLOAT);
    put_f(f, "embed_b", 1, SD, 0, 0.1, 0, H5T_NATIVE_FLOAT);
    put_f(f, "cls", 1, SD, 0, 0.5, 0, H5T_NATIVE_FLOAT);
  }
  put_f(f, "pos", 2, T, SD, 0.3, 0, defect == WRONG_TYPE ? H5T_NATIVE_INT : H5T_NATIVE_FLOAT);
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
  }
  put_f(f, "ln_w", 1, SD, 0, 0.2, 1.0, H5T_NATIVE_FLOAT);
  put_f(f, "ln_b", 1, SD, 0, 0.1, 0, H5T_NATIVE_FLOAT);
  put_f(f, "head_w", 2, O, SD, 1.0, 0, H5T_NATIVE_FLOAT);
  put_f(f, "head_b", 1, O, 0, 0.1, 0, H5T_NATIVE_FLOAT);
  if (defect != NO_THETA) {
    double th[SL + 1] = {0.2385, 0.477, 0.7};
    if (defect == BAD_THETA) th[1] = NAN;
    hsize_t nl = defect == THETA_SHAPE ? SL + 1 : SL;
    H5LTmake_dataset(f, "theta", 1, &nl, H5T_NATIVE_DOUBLE, th);
  }
  if (defect == NAN_VALUE) {
    hid_t d = H5Dopen2(f, "head_w", H5P_DEFAULT);
    float v[16 * SD];
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    v[37] = NAN;
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
  }
  H5Gclose(H5Gcreate2(f, "eval", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (text) {
    uint8_t tok[TE];
    for (int k = 0; k < TE; k++) tok[k] = (uint8_t)((k * 7 + k / 5) % TV);
    if (defect == BAD_TOKEN_ID) tok[100] = TV;
    hsize_t ne = defect == SHORT_EVAL ? TT : TE;
    H5LTmake_dataset(f, "eval/tokens", 1, &ne, H5T_NATIVE_UINT8, tok);
    double nats[6] = {1, 2, 3, 4, 5, 6};
    hsize_t nw = defect == NATS_SHAPE ? 6 : defect == SHORT_EVAL ? 0 : 5;
    if (nw) H5LTmake_dataset(f, "eval/nats_exact", 1, &nw, H5T_NATIVE_DOUBLE, nats);
  } else {
    uint8_t lab[5] = {3, 1, 4, 1, defect == BAD_LABEL ? 12 : 5};
    hsize_t n5 = 5, n4 = defect == EVAL_LENGTH ? 4 : 5;
    H5LTmake_dataset(f, "eval/labels", 1, &n5, H5T_NATIVE_UINT8, lab);
    H5LTmake_dataset(f, "eval/pred_exact", 1, &n4, H5T_NATIVE_UINT8, lab);
  }
  H5Fclose(f);
}

/* Images with deterministic pixels. */
static inline void fake_images(spr_fmnist *d, int count, uint64_t seed) {
  memset(d, 0, sizeof *d); /* no files: no paths or checksums */
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

#endif
