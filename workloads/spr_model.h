/* spr_model.h - small pre-norm transformers read from sprintsim-model
 * files (docs/models.md; scripts/train_model.py writes them): the reader
 * and the forward pass, step by step, with each head's attention left to
 * the caller (sim/spr_model_eval.c runs it under a scheme).
 *
 * Two kinds of input, one architecture:
 *   image  a class-token encoder (the ViT): the side x side image is cut
 *          into patch x patch patches (raster order, the patch^2 pixels
 *          of a patch in raster order), pixels x / 255 normalised by
 *          (x - norm_mean) / norm_std;
 *            x_0 = [cls; patches embed_w^T + embed_b] + pos
 *          logits (classes) = LN(x[0]) head_w^T + head_b.
 *   text   a causal decoder over byte-valued tokens (a character language
 *          model): x_0[i] = tok_emb[t_i] + pos[i]; next-token logits
 *          (vocab) = LN(x[i]) head_w^T + head_b at every position i.
 * Per layer l (pre-norm), T = tokens rows of dim features:
 *   h = LN1(x); [Q | K | V] = h qkv_w^T + qkv_b; head j of Q, K, V is
 *   columns j d .. j d + d - 1 of each (d = dim / heads);
 *   O_j = attention of (Q_j, K_j, V_j) (exact: softmax(Q K^T / sqrt d) V,
 *   over keys j <= i when causal);
 *   x += [O_0 .. O_{H-1}] proj_w^T + proj_b;
 *   x += GELU(LN2(x) fc1_w^T + fc1_b) fc2_w^T + fc2_b   (GELU with erf).
 * LN(y) = (y - mean) / sqrt(var + ln_eps) w + b over the dim features
 * (biased variance, in double).  Matrix products go through CBLAS
 * (spr_matf_gemm).  theta[l], when present, is layer l's learned threshold
 * on the scaled score q.k / sqrt(d).
 */
#ifndef SPR_MODEL_H
#define SPR_MODEL_H

#include <stdint.h>

#include "spr_params.h"

enum spr_model_input { SPR_MODEL_IMAGE = 0, SPR_MODEL_TEXT = 1 };

/* Limits of a model file (spr_model_load refuses larger values). */
#define SPR_MODEL_MAX_DIM 4096
#define SPR_MODEL_MAX_MLP 65536
#define SPR_MODEL_MAX_SIDE 1024

typedef struct {
  float *ln1_w, *ln1_b;   /* dim */
  float *qkv_w, *qkv_b;   /* 3 dim x dim, 3 dim */
  float *proj_w, *proj_b; /* dim x dim, dim */
  float *ln2_w, *ln2_b;   /* dim */
  float *fc1_w, *fc1_b;   /* mlp x dim, mlp */
  float *fc2_w, *fc2_b;   /* dim x mlp, dim */
} spr_model_layer;

/* A model read from a file; read-only after spr_model_load. */
typedef struct {
  int input;              /* enum spr_model_input */
  int causal;             /* keys j <= i only (text models are causal) */
  int dim, depth, heads, head_dim, mlp;
  int tokens;             /* sequence length N (image: patches + 1) */
  double ln_eps;
  int outputs;            /* logits per scored position: classes or vocab */
  /* input image */
  int side, patch;
  double norm_mean, norm_std;
  float *embed_w, *embed_b; /* dim x patch^2, dim */
  float *cls;               /* dim */
  /* input text */
  int vocab;
  uint8_t vocab_bytes[256]; /* the byte of each token id */
  float *tok_emb;           /* vocab x dim */
  float *pos;               /* tokens x dim */
  spr_model_layer layer[SPR_MAX_LAYERS];
  float *ln_w, *ln_b;       /* dim */
  float *head_w, *head_b;   /* outputs x dim, outputs */
  int has_theta;            /* dataset /theta present */
  double theta[SPR_MAX_LAYERS];
  char reference[SPR_STRING_MAX]; /* attribute 'reference': file name of the
                                     dense reference model, relative to this
                                     file's folder; "" when none */
  /* group /eval (what PyTorch measured; n_eval = 0 when absent) */
  int n_eval;               /* image: labels; text: tokens of the split */
  uint8_t *eval_labels;     /* image: n_eval test labels */
  uint8_t *eval_pred_exact; /* image: PyTorch's predictions, exact attention */
  uint8_t *eval_tokens;     /* text: the evaluation split, token ids */
  int eval_windows;         /* text: windows of nats_exact (or 0) */
  double *eval_nats_exact;  /* text: PyTorch's nats per window, exact */
  double eval_exact;        /* top1_exact or bpc_exact (NaN when absent) */
  /* the file as read (spr_model_load) */
  char content_id[32];      /* "fnv1a64:<16 hex>" of its bytes */
  long long file_bytes;     /* its size */
} spr_model;

/* Read the model file `path` into *m (free with spr_model_free) through
 * the isolated reader (spr_h5r.h: libhdf5 runs in a child process, the
 * file is checked unchanged around every read); m->content_id and
 * m->file_bytes identify the bytes read.  Checks: root attributes format = "sprintsim-model", version = 1, input
 * "image" or "text", causal 0 or 1 (1 for text, 0 for image), dim (1 ..
 * SPR_MODEL_MAX_DIM), depth (1 .. SPR_MAX_LAYERS), heads (1 ..
 * SPR_MAX_HEADS, dividing dim), mlp (1 .. SPR_MODEL_MAX_MLP), tokens (2 ..
 * SPR_QKV_MAX_SEQ; image: (side / patch)^2 + 1), ln_eps > 0; image: side
 * (1 .. SPR_MODEL_MAX_SIDE), patch dividing side, classes 2 .. 256,
 * finite norm_mean, norm_std > 0; text: vocab 2 .. 256 and /vocab_bytes of
 * vocab distinct bytes; every weight dataset present, floating point, of
 * the exact shape, every element finite; /theta, when present, depth
 * finite values; /eval, when present: image labels and pred_exact of one
 * length below classes; text tokens below vocab, nats_exact finite.
 * Numbers must be of a standard type (IEEE float32/64, plain integers of
 * 1 to 8 bytes); strings may be of any padding or variable length, never
 * longer than their field.
 * Errors (the message names the file, the dataset or attribute, its shape
 * or value and the expected one): SPR_EIO (cannot open, the file changed
 * while read), SPR_EHDF5 (not HDF5, missing, wrong type or shape, a NaN
 * or Inf, libhdf5 crashed or looped on a damaged or crafted file),
 * SPR_EINVAL (an attribute's value), SPR_ENOMEM (out of memory, or the
 * weights the header declares, spr_model_bytes, exceed 80% of the memory
 * this process may use, core/spr_sysmem.h: refused before any is read, as
 * a small file of compressed or unwritten datasets may declare a huge
 * model).  On error *m holds nothing to free. */
int spr_model_load(const char *path, spr_model *m);

/* Bytes the weights of a model with m's header values (dim, depth, mlp,
 * tokens, outputs, patch or vocab) occupy once loaded. */
double spr_model_bytes(const spr_model *m);

/* The input kind (enum spr_model_input) of the model file `path` from its
 * root attributes alone, or a negative error code (as spr_model_load). */
int spr_model_input_of(const char *path);

/* Free what spr_model_load allocated and zero *m.  NULL is a no-op. */
void spr_model_free(spr_model *m);

/* "image" or "text". */
const char *spr_model_input_name(int input);

/* Activations of one sequence (opaque; one per thread). */
typedef struct spr_model_ws spr_model_ws;

int spr_model_ws_alloc(const spr_model *m, spr_model_ws **out); /* 0 or SPR_ENOMEM */
void spr_model_ws_free(spr_model_ws *w);                       /* NULL: no-op */

/* The steps of one forward pass, in this order:
 *   spr_model_embed_image(image) or spr_model_embed_text(ids)   x_0
 *   for each layer l:
 *     spr_model_attn_in(l)               h = LN1(x), Q K V
 *     spr_model_head_qkv(j) / spr_model_head_out(j) for every head j
 *     spr_model_attn_out(l)              projection, residual, MLP
 *   spr_model_logits(logits)
 * image: side x side pixels (0..255); ids: tokens token ids (< vocab);
 * Q, K, V, O: tokens x head_dim floats, row-major.  logits: classes
 * floats (image) or tokens x vocab floats (text).  The functions return 0
 * or a code of spr_matf_gemm; embed_text returns SPR_EINVAL for an id >=
 * vocab (naming its position). */
int spr_model_embed_image(const spr_model *m, const uint8_t *image, spr_model_ws *w);
int spr_model_embed_text(const spr_model *m, const uint8_t *ids, spr_model_ws *w);
int spr_model_attn_in(const spr_model *m, int layer, spr_model_ws *w);
void spr_model_head_qkv(const spr_model *m, const spr_model_ws *w, int head, float *Q, float *K,
                        float *V);
void spr_model_head_out(const spr_model *m, spr_model_ws *w, int head, const float *O);
int spr_model_attn_out(const spr_model *m, int layer, spr_model_ws *w);
int spr_model_logits(const spr_model *m, spr_model_ws *w, float *logits);

/* Index of the largest of logits[0..n) (lowest index on ties). */
int spr_model_argmax(const float *logits, int n);

/* Text: sum over positions i of -ln softmax(logits_i)[target_i] in nats
 * (double precision), logits: n x vocab, targets: n ids. */
double spr_model_nats(const float *logits, const uint8_t *targets, int n, int vocab);

/* Text: the evaluation windows of `tokens` ids (W = (n_ids - 1) / tokens,
 * window w: inputs ids[w N .. w N + N - 1], targets ids[w N + 1 .. w N +
 * N]).  Returns W (0 when the split is too short). */
int spr_model_windows(const spr_model *m, int n_ids);

#endif
