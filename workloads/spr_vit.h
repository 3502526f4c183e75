/* spr_vit.h - the small Vision Transformer of docs/vit.md: model file
 * reader and the forward pass, step by step, with each head's attention
 * left to the caller (sim/spr_vit_eval.c runs it under a scheme).
 *
 * Model (scripts/train_vit.py writes the file): the 28 x 28 image is cut
 * into p x p patches (raster order, the p^2 pixels of a patch in raster
 * order), pixels x / 255 normalised by (x - norm_mean) / norm_std;
 *   x_0 = [cls; patches embed_w^T + embed_b] + pos           (T x dim)
 * per layer l (pre-norm):
 *   h = LN1(x); [Q | K | V] = h qkv_w^T + qkv_b; head j of Q, K, V is
 *   columns j d .. j d + d - 1 of each (d = dim / heads);
 *   O_j = attention of (Q_j, K_j, V_j) (exact: softmax(Q K^T / sqrt d) V);
 *   x += [O_0 .. O_{H-1}] proj_w^T + proj_b;
 *   x += GELU(LN2(x) fc1_w^T + fc1_b) fc2_w^T + fc2_b   (GELU with erf);
 * logits = LN(x[0]) head_w^T + head_b.  LN(y) = (y - mean) / sqrt(var +
 * ln_eps) w + b over the dim features (biased variance).  Matrix products
 * go through CBLAS (spr_matf_gemm).
 */
#ifndef SPR_VIT_H
#define SPR_VIT_H

#include <stdint.h>

#include "spr_params.h"

typedef struct {
  float *ln1_w, *ln1_b;   /* dim */
  float *qkv_w, *qkv_b;   /* 3 dim x dim, 3 dim */
  float *proj_w, *proj_b; /* dim x dim, dim */
  float *ln2_w, *ln2_b;   /* dim */
  float *fc1_w, *fc1_b;   /* mlp x dim, mlp */
  float *fc2_w, *fc2_b;   /* dim x mlp, dim */
  double theta;           /* learned threshold on q.k / sqrt(d) */
} spr_vit_layer;

/* A model read from a file; read-only after spr_vit_load. */
typedef struct {
  int patch, dim, depth, heads, head_dim, mlp, classes, tokens;
  int side;               /* image side in pixels: 28 */
  double norm_mean, norm_std, ln_eps;
  double test_top1_exact, test_top1_pruned; /* recorded by the trainer */
  float *embed_w, *embed_b; /* dim x patch^2, dim */
  float *cls, *pos;         /* dim, tokens x dim */
  spr_vit_layer layer[SPR_MAX_LAYERS];
  float *ln_w, *ln_b;       /* dim */
  float *head_w, *head_b;   /* classes x dim, classes */
  /* group /test, when present (else n_test = 0 and NULL) */
  int n_test;
  uint8_t *test_labels, *test_pred_exact, *test_pred_pruned;
} spr_vit;

/* Read the model file `path` into *m (free with spr_vit_free).
 * Checks: root attributes format = "sprintsim-vit", version = 1, patch
 * dividing 28, dim, depth (<= SPR_MAX_LAYERS), heads (<= SPR_MAX_HEADS,
 * dividing dim), mlp, classes (2..256), tokens = (28 / patch)^2 + 1,
 * finite norm_mean, norm_std > 0, ln_eps > 0; every dataset present,
 * floating point, of the exact shape, every element finite; each layer's
 * attribute theta finite; /test/{labels,pred_exact,pred_pruned}, when
 * present, integer, of one length, values below classes.
 * Errors (the message names the file, the dataset or attribute and the
 * value): SPR_EIO, SPR_EHDF5 (not HDF5, missing, wrong type or shape, a
 * NaN or Inf), SPR_EINVAL (an attribute's value), SPR_ENOMEM.  On error
 * *m holds nothing to free. */
int spr_vit_load(const char *path, spr_vit *m);

/* Free what spr_vit_load allocated and zero *m.  NULL is a no-op. */
void spr_vit_free(spr_vit *m);

/* Activations of one image (opaque; one per thread). */
typedef struct spr_vit_ws spr_vit_ws;

int spr_vit_ws_alloc(const spr_vit *m, spr_vit_ws **out); /* 0 or SPR_ENOMEM */
void spr_vit_ws_free(spr_vit_ws *w);                     /* NULL: no-op */

/* The steps of one forward pass, in this order:
 *   spr_vit_embed(image)                 x_0
 *   for each layer l:
 *     spr_vit_attn_in(l)                 h = LN1(x), Q K V
 *     spr_vit_head_qkv(j) / spr_vit_head_out(j) for every head j
 *     spr_vit_attn_out(l)                projection, residual, MLP
 *   spr_vit_logits(logits)
 * image: side x side pixels (0..255); Q, K, V, O: tokens x head_dim
 * floats, row-major.  The functions return 0 or a code of spr_matf_gemm. */
int spr_vit_embed(const spr_vit *m, const uint8_t *image, spr_vit_ws *w);
int spr_vit_attn_in(const spr_vit *m, int layer, spr_vit_ws *w);
void spr_vit_head_qkv(const spr_vit *m, const spr_vit_ws *w, int head, float *Q, float *K,
                      float *V);
void spr_vit_head_out(const spr_vit *m, spr_vit_ws *w, int head, const float *O);
int spr_vit_attn_out(const spr_vit *m, int layer, spr_vit_ws *w);
int spr_vit_logits(const spr_vit *m, spr_vit_ws *w, float *logits);

/* Index of the largest of logits[0..classes) (lowest index on ties). */
int spr_vit_argmax(const float *logits, int classes);

#endif
