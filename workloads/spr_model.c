/* spr_model.c - model reader and forward pass (model in spr_model.h,
 * format in docs/models.md).  The model file is read through the isolated
 * reader (core/spr_h5r.h, docs/isolation.md): a model may come from
 * anyone, and libhdf5 runs in a child process. */
#include "config.h"
#include "spr_model.h"
#include "spr_error.h"
#include "spr_h5r.h"
#include "spr_mat.h"
#include "spr_sysmem.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- reading ---------------------------------------------------------- */

/* *yes = whether `name` (a path; spr_h5r_kind checks every prefix) names
 * an object.  Returns the reader's failure, never read as "missing". */
static int exists(spr_h5r *f, const char *name, int *yes) {
  int kind, rc = spr_h5r_kind(f, name, &kind);
  *yes = !rc && kind != SPR_H5R_MISSING;
  return rc;
}

/* Type and shape of attribute `name` of object `obj` (a scalar or one
 * element), its type class checked against want (or want2 when >= 0);
 * numbers must be of a standard type (an IEEE float of 4 or 8 bytes, a
 * plain integer). */
static int attr_check(const char *path, spr_h5r *f, const char *obj, const char *name, int want,
                      int want2, const char *kind) {
  int ex;
  spr_h5r_info in;
  int rc = spr_h5r_attr_info(f, obj, name, &ex, &in);
  if (rc) return rc;
  if (!ex) return spr_error(SPR_EHDF5, "%s: attribute '%s' of '%s' missing", path, name, obj);
  if (in.cls != want && in.cls != want2)
    return spr_error(SPR_EHDF5, "%s: attribute '%s' of '%s' is not %s", path, name, obj, kind);
  if (in.npoints != 1)
    return spr_error(SPR_EHDF5, "%s: attribute '%s' of '%s' has %lld values, expected one", path,
                     name, obj, in.rank < 0 ? 0LL : (long long)in.npoints);
  if (in.cls != SPR_H5R_STRING && !in.standard)
    return spr_error(SPR_EHDF5, "%s: attribute '%s' of '%s' is a non-standard %llu-byte type, "
                     "expected %s", path, name, obj, (unsigned long long)in.size, kind);
  return 0;
}

/* Integers are read as int64 (libhdf5 saturates an out-of-range
 * conversion silently) and range-checked here. */
static int attr_int(const char *path, spr_h5r *f, const char *obj, const char *name, long long lo,
                    long long hi, int *out) {
  int rc = attr_check(path, f, obj, name, SPR_H5R_INTEGER, -1, "an integer");
  if (rc) return rc;
  int64_t v = 0;
  if ((rc = spr_h5r_attr_read(f, obj, name, SPR_H5R_I64, &v, sizeof v))) return rc;
  if (v < lo || v > hi)
    return spr_error(SPR_EINVAL, "%s: attribute '%s' of '%s' is %lld, outside [%lld, %lld]", path,
                     name, obj, (long long)v, lo, hi);
  *out = (int)v;
  return 0;
}

static int attr_double(const char *path, spr_h5r *f, const char *obj, const char *name,
                       double *out) {
  int rc = attr_check(path, f, obj, name, SPR_H5R_FLOAT, SPR_H5R_INTEGER, "a number");
  if (rc) return rc;
  double v = 0;
  if ((rc = spr_h5r_attr_read(f, obj, name, SPR_H5R_F64, &v, sizeof v))) return rc;
  if (!isfinite(v))
    return spr_error(SPR_EINVAL, "%s: attribute '%s' of '%s' is %g, not finite", path, name, obj, v);
  *out = v;
  return 0;
}

/* String attribute (variable or fixed length, any padding) into buf[n]; a
 * longer string is an error naming it (never cut). */
static int attr_str(const char *path, spr_h5r *f, const char *obj, const char *name, char *buf,
                    size_t n) {
  int rc = attr_check(path, f, obj, name, SPR_H5R_STRING, -1, "a string");
  if (rc) return rc;
  char *s = NULL;
  if ((rc = spr_h5r_read_str(f, obj, name, n - 1, &s))) return rc;
  snprintf(buf, n, "%s", s);
  free(s);
  return 0;
}

/* Type and shape of dataset `name`. */
static int dset_info(const char *path, spr_h5r *f, const char *name, spr_h5r_info *in) {
  int kind, rc = spr_h5r_kind(f, name, &kind);
  if (rc) return rc;
  if (kind == SPR_H5R_MISSING) return spr_error(SPR_EHDF5, "%s: dataset '%s' missing", path, name);
  if (kind != SPR_H5R_DATASET) return spr_error(SPR_EHDF5, "%s: '%s' is not a dataset", path, name);
  return spr_h5r_dset_info(f, name, in);
}

/* Dataset `name` of rank `rank` and shape dims, floating point, every
 * element finite, into a new array of `mem` (SPR_H5R_F32 or SPR_H5R_F64)
 * elements. */
static int read_real(const char *path, spr_h5r *f, const char *name, int rank,
                     const uint64_t *dims, int mem, void **out) {
  *out = NULL;
  spr_h5r_info in;
  int rc = dset_info(path, f, name, &in);
  if (rc) return rc;
  const int r = in.rank;
  char want[96] = "", have[96] = "";
  for (int k = 0; k < rank; k++)
    snprintf(want + strlen(want), sizeof want - strlen(want), "%s%llu", k ? " x " : "",
             (unsigned long long)dims[k]);
  for (int k = 0; k < r && k < 4; k++)
    snprintf(have + strlen(have), sizeof have - strlen(have), "%s%llu", k ? " x " : "",
             (unsigned long long)in.dims[k]);
  if (in.cls != SPR_H5R_FLOAT)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' is not floating point", path, name);
  if (r != rank || memcmp(in.dims, dims, (size_t)rank * sizeof *dims))
    return spr_error(SPR_EHDF5, "%s: dataset '%s' has shape %s%s, expected %s", path, name,
                     r > 4 ? "of rank " : "",
                     r > 4 ? "> 4" : (r == 0 ? "scalar" : r < 0 ? "null" : have), want);
  if (!in.standard)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' is a non-standard %llu-byte floating-point type "
                     "(use float32 or float64)", path, name, (unsigned long long)in.size);
  const int dbl = mem == SPR_H5R_F64;
  const size_t es = dbl ? sizeof(double) : sizeof(float);
  size_t count = 1;
  for (int k = 0; k < rank; k++) count *= (size_t)dims[k];
  void *buf = malloc(count * es);
  if (!buf) return spr_error(SPR_ENOMEM, "%s: out of memory for '%s'", path, name);
  rc = spr_h5r_read(f, name, mem, 0, NULL, NULL, buf, count * es);
  for (size_t k = 0; !rc && k < count; k++) {
    const double v = dbl ? ((double *)buf)[k] : (double)((float *)buf)[k];
    if (!isfinite(v))
      rc = spr_error(SPR_EHDF5, "%s: dataset '%s': element %zu is %g (not finite)", path, name, k,
                     v);
  }
  if (rc) free(buf);
  else *out = buf;
  return rc;
}

static int read_floats(const char *path, spr_h5r *f, const char *name, int rank,
                       const uint64_t *dims, float **out) {
  return read_real(path, f, name, rank, dims, SPR_H5R_F32, (void **)out);
}

/* 1-D integer dataset of 1 .. 10^8 values below `below` into a new byte
 * array; *len: the expected length (or -1: any), set to the length read.
 * Read as int64 (no silent saturation) in slices of READ_U8_SLICE values,
 * each range-checked. */
#define READ_U8_SLICE ((uint64_t)1 << 20)
static int read_u8(const char *path, spr_h5r *f, const char *name, int below, int *len,
                   uint8_t **out) {
  *out = NULL;
  spr_h5r_info in;
  int rc = dset_info(path, f, name, &in);
  if (rc) return rc;
  const uint64_t n = in.rank >= 1 ? in.dims[0] : 0;
  if (in.cls != SPR_H5R_INTEGER)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' is not integer", path, name);
  if (in.rank != 1 || n < 1 || n > 100000000)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' is not a 1-D array of 1 .. 10^8 values", path,
                     name);
  if (*len >= 0 && n != (uint64_t)*len)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' has %llu values, expected %d", path, name,
                     (unsigned long long)n, *len);
  if (!in.standard)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' is a non-standard %llu-byte integer type", path,
                     name, (unsigned long long)in.size);
  const uint64_t slice = n < READ_U8_SLICE ? n : READ_U8_SLICE;
  int64_t *buf = malloc(slice * sizeof *buf);
  uint8_t *u = malloc(n);
  if (!buf || !u) rc = spr_error(SPR_ENOMEM, "%s: out of memory for '%s'", path, name);
  for (uint64_t k0 = 0; !rc && k0 < n; k0 += slice) {
    uint64_t cnt = n - k0 < slice ? n - k0 : slice;
    if ((rc = spr_h5r_read(f, name, SPR_H5R_I64, 1, &k0, &cnt, buf, cnt * sizeof *buf))) break;
    for (uint64_t k = 0; k < cnt; k++) {
      if (buf[k] < 0 || buf[k] >= below) {
        rc = spr_error(SPR_EINVAL, "%s: dataset '%s': element %llu is %lld (valid: 0..%d)", path,
                       name, (unsigned long long)(k0 + k), (long long)buf[k], below - 1);
        break;
      }
      u[k0 + k] = (uint8_t)buf[k];
    }
  }
  free(buf);
  if (rc) free(u);
  else {
    *out = u;
    *len = (int)n;
  }
  return rc;
}
#undef READ_U8_SLICE

const char *spr_model_input_name(int input) {
  return input == SPR_MODEL_TEXT ? "text" : "image";
}

void spr_model_free(spr_model *m) {
  if (!m) return;
  free(m->embed_w); free(m->embed_b); free(m->cls); free(m->tok_emb); free(m->pos);
  for (int l = 0; l < SPR_MAX_LAYERS; l++) {
    spr_model_layer *y = &m->layer[l];
    free(y->ln1_w); free(y->ln1_b); free(y->qkv_w); free(y->qkv_b); free(y->proj_w);
    free(y->proj_b); free(y->ln2_w); free(y->ln2_b); free(y->fc1_w); free(y->fc1_b);
    free(y->fc2_w); free(y->fc2_b);
  }
  free(m->ln_w); free(m->ln_b); free(m->head_w); free(m->head_b);
  free(m->eval_labels); free(m->eval_pred_exact); free(m->eval_tokens); free(m->eval_nats_exact);
  memset(m, 0, sizeof *m);
}

/* Root attributes: the architecture and its input. */
static int load_header(const char *path, spr_h5r *f, spr_model *m) {
  int rc;
  char s[64];
  if ((rc = attr_str(path, f, "/", "format", s, sizeof s))) return rc;
  if (strcmp(s, "sprintsim-model"))
    return spr_error(SPR_EINVAL, "%s: attribute 'format' is '%s', expected 'sprintsim-model' "
                     "(docs/models.md)", path, s);
  int version;
  if ((rc = attr_int(path, f, "/", "version", 1, 1, &version))) return rc;
  if ((rc = attr_str(path, f, "/", "input", s, sizeof s))) return rc;
  if (!strcmp(s, "image")) m->input = SPR_MODEL_IMAGE;
  else if (!strcmp(s, "text")) m->input = SPR_MODEL_TEXT;
  else
    return spr_error(SPR_EINVAL, "%s: attribute 'input' is '%s', expected 'image' or 'text'",
                     path, s);
  const int text = m->input == SPR_MODEL_TEXT;
  if ((rc = attr_int(path, f, "/", "causal", text, text, &m->causal)) ||
      (rc = attr_int(path, f, "/", "dim", 1, SPR_MODEL_MAX_DIM, &m->dim)) ||
      (rc = attr_int(path, f, "/", "depth", 1, SPR_MAX_LAYERS, &m->depth)) ||
      (rc = attr_int(path, f, "/", "heads", 1, SPR_MAX_HEADS, &m->heads)) ||
      (rc = attr_int(path, f, "/", "mlp", 1, SPR_MODEL_MAX_MLP, &m->mlp)) ||
      (rc = attr_int(path, f, "/", "tokens", 2, SPR_QKV_MAX_SEQ, &m->tokens)) ||
      (rc = attr_double(path, f, "/", "ln_eps", &m->ln_eps)))
    return rc;
  if (m->dim % m->heads)
    return spr_error(SPR_EINVAL, "%s: attribute 'heads' is %d, which does not divide dim = %d",
                     path, m->heads, m->dim);
  if (!(m->ln_eps > 0))
    return spr_error(SPR_EINVAL, "%s: attribute 'ln_eps' is %g (must be > 0)", path, m->ln_eps);
  m->head_dim = m->dim / m->heads;
  int ex;
  if ((rc = spr_h5r_attr_info(f, "/", "reference", &ex, NULL))) return rc;
  if (ex && (rc = attr_str(path, f, "/", "reference", m->reference, sizeof m->reference)))
    return rc;
  if (text) {
    if ((rc = attr_int(path, f, "/", "vocab", 2, 256, &m->vocab))) return rc;
    m->outputs = m->vocab;
    int len = m->vocab;
    uint8_t *vb;
    if ((rc = read_u8(path, f, "vocab_bytes", 256, &len, &vb))) return rc;
    memcpy(m->vocab_bytes, vb, (size_t)len);
    free(vb);
    for (int a = 0; a < len; a++)
      for (int b = 0; b < a; b++)
        if (m->vocab_bytes[a] == m->vocab_bytes[b])
          return spr_error(SPR_EINVAL, "%s: dataset 'vocab_bytes': byte %d appears twice (ids %d "
                           "and %d)", path, m->vocab_bytes[a], b, a);
    return 0;
  }
  if ((rc = attr_int(path, f, "/", "side", 1, SPR_MODEL_MAX_SIDE, &m->side)) ||
      (rc = attr_int(path, f, "/", "patch", 1, SPR_MODEL_MAX_SIDE, &m->patch)) ||
      (rc = attr_int(path, f, "/", "classes", 2, 256, &m->outputs)))
    return rc;
  if (m->side % m->patch)
    return spr_error(SPR_EINVAL, "%s: attribute 'patch' is %d, which does not divide side = %d",
                     path, m->patch, m->side);
  const int np = m->side / m->patch;
  if ((int64_t)np * np + 1 != m->tokens)
    return spr_error(SPR_EINVAL, "%s: attribute 'tokens' is %d, expected (side / patch)^2 + 1 = %d",
                     path, m->tokens, np * np + 1);
  if ((rc = attr_double(path, f, "/", "norm_mean", &m->norm_mean)) ||
      (rc = attr_double(path, f, "/", "norm_std", &m->norm_std)))
    return rc;
  if (!(m->norm_std > 0))
    return spr_error(SPR_EINVAL, "%s: attribute 'norm_std' is %g (must be > 0)", path, m->norm_std);
  return 0;
}

/* The /eval group, when present. */
static int load_eval(const char *path, spr_h5r *f, spr_model *m) {
  int rc, yes;
  m->eval_exact = NAN;
  if ((rc = exists(f, "eval", &yes)) || !yes) return rc;
  const char *key = m->input == SPR_MODEL_TEXT ? "bpc_exact" : "top1_exact";
  if ((rc = spr_h5r_attr_info(f, "eval", key, &yes, NULL))) return rc;
  if (yes && (rc = attr_double(path, f, "eval", key, &m->eval_exact))) return rc;
  if (m->input == SPR_MODEL_IMAGE) {
    if ((rc = exists(f, "eval/labels", &yes)) || !yes) return rc;
    int len = -1;
    if ((rc = read_u8(path, f, "eval/labels", m->outputs, &len, &m->eval_labels)) ||
        (rc = read_u8(path, f, "eval/pred_exact", m->outputs, &len, &m->eval_pred_exact)))
      return rc;
    m->n_eval = len;
    return 0;
  }
  if ((rc = exists(f, "eval/tokens", &yes)) || !yes) return rc;
  int len = -1;
  if ((rc = read_u8(path, f, "eval/tokens", m->vocab, &len, &m->eval_tokens))) return rc;
  m->n_eval = len;
  if ((rc = exists(f, "eval/nats_exact", &yes))) return rc;
  if (yes) {
    const uint64_t w = (uint64_t)spr_model_windows(m, len);
    if ((rc = read_real(path, f, "eval/nats_exact", 1, &w, SPR_H5R_F64,
                        (void **)&m->eval_nats_exact)))
      return rc;
    m->eval_windows = (int)w;
  }
  return 0;
}

double spr_model_bytes(const spr_model *m) {
  const double D = m->dim, M = m->mlp, T = m->tokens, O = m->outputs;
  const double layer = 4 * D + 3 * D * D + 3 * D + D * D + D + 2 * M * D + M + D;
  const double embed = m->input == SPR_MODEL_IMAGE ? D * m->patch * m->patch + 2 * D : m->vocab * D;
  return sizeof(float) * (embed + T * D + m->depth * layer + 2 * D + O * D + O);
}

/* The weights the header declares against the memory this process may
 * use, before any is read (the kernel overcommits: a model too large
 * would be killed by the OOM killer part-way, not refused). */
static int check_memory(const char *path, const spr_model *m) {
  double have = 0;
  char src[512];
  if (spr_sysmem_limit(NULL, NULL, &have, src, sizeof src)) return 0; /* unknown: no check */
  const double need = spr_model_bytes(m);
  if (need <= 0.8 * have) return 0;
  return spr_error(SPR_ENOMEM,
                   "%s: the model's weights (dim %d, depth %d, mlp %d, tokens %d) need about %s of "
                   "memory, more than 80%% of the %s this process may use (%s)",
                   path, m->dim, m->depth, m->mlp, m->tokens, spr_mem_str(need).s,
                   spr_mem_str(have).s, src);
}

static int load_body(const char *path, spr_h5r *f, spr_model *m) {
  int rc, yes;
  if ((rc = load_header(path, f, m)) || (rc = check_memory(path, m))) return rc;
  const uint64_t D = (uint64_t)m->dim, P2 = (uint64_t)m->patch * m->patch, T = (uint64_t)m->tokens,
                 M = (uint64_t)m->mlp, O = (uint64_t)m->outputs;
  uint64_t s[2];
#define RD1(name, n0, dst) (s[0] = (n0), read_floats(path, f, name, 1, s, dst))
#define RD2(name, n0, n1, dst) (s[0] = (n0), s[1] = (n1), read_floats(path, f, name, 2, s, dst))
  if (m->input == SPR_MODEL_IMAGE) {
    if ((rc = RD2("embed_w", D, P2, &m->embed_w)) || (rc = RD1("embed_b", D, &m->embed_b)) ||
        (rc = RD1("cls", D, &m->cls)))
      return rc;
  } else if ((rc = RD2("tok_emb", (uint64_t)m->vocab, D, &m->tok_emb))) {
    return rc;
  }
  if ((rc = RD2("pos", T, D, &m->pos))) return rc;
  for (int l = 0; l < m->depth; l++) {
    spr_model_layer *y = &m->layer[l];
    char g[32], n[64];
    snprintf(g, sizeof g, "layer_%d", l);
    if ((rc = exists(f, g, &yes))) return rc;
    if (!yes) return spr_error(SPR_EHDF5, "%s: group '%s' missing (depth %d)", path, g, m->depth);
#define NM(x) (snprintf(n, sizeof n, "%s/%s", g, x), n)
    if ((rc = RD1(NM("ln1_w"), D, &y->ln1_w)) || (rc = RD1(NM("ln1_b"), D, &y->ln1_b)) ||
        (rc = RD2(NM("qkv_w"), 3 * D, D, &y->qkv_w)) || (rc = RD1(NM("qkv_b"), 3 * D, &y->qkv_b)) ||
        (rc = RD2(NM("proj_w"), D, D, &y->proj_w)) || (rc = RD1(NM("proj_b"), D, &y->proj_b)) ||
        (rc = RD1(NM("ln2_w"), D, &y->ln2_w)) || (rc = RD1(NM("ln2_b"), D, &y->ln2_b)) ||
        (rc = RD2(NM("fc1_w"), M, D, &y->fc1_w)) || (rc = RD1(NM("fc1_b"), M, &y->fc1_b)) ||
        (rc = RD2(NM("fc2_w"), D, M, &y->fc2_w)) || (rc = RD1(NM("fc2_b"), D, &y->fc2_b)))
      return rc;
#undef NM
  }
  if ((rc = RD1("ln_w", D, &m->ln_w)) || (rc = RD1("ln_b", D, &m->ln_b)) ||
      (rc = RD2("head_w", O, D, &m->head_w)) || (rc = RD1("head_b", O, &m->head_b)))
    return rc;
#undef RD1
#undef RD2
  if ((rc = exists(f, "theta", &yes))) return rc;
  if (yes) {
    const uint64_t L = (uint64_t)m->depth;
    double *th;
    if ((rc = read_real(path, f, "theta", 1, &L, SPR_H5R_F64, (void **)&th))) return rc;
    memcpy(m->theta, th, (size_t)m->depth * sizeof *th);
    free(th);
    m->has_theta = 1;
  }
  if ((rc = load_eval(path, f, m))) return rc;
  /* the checksum of the bytes just read: the reader checked the file
   * unchanged around every read, and hashes the same descriptor */
  m->file_bytes = spr_h5r_size(f);
  return spr_h5r_content_id(f, m->content_id, sizeof m->content_id);
}

/* Open the model file in the isolated reader.  A file that cannot be
 * opened is named as before the reader was isolated ("<path>: cannot open
 * the model: <reason>"); the reader's own messages call it "the model". */
static int open_model(const char *path, spr_h5r **f) {
  *f = NULL;
  if (!path) return spr_error(SPR_EINVAL, "spr_model_load: no model file named");
  const int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return spr_error(SPR_EIO, "%s: cannot open the model: %s", path, strerror(errno));
  close(fd);
  return spr_h5r_open(path, "model", NULL, f);
}

int spr_model_load(const char *path, spr_model *m) {
  memset(m, 0, sizeof *m);
  spr_h5r *f;
  int rc = open_model(path, &f);
  if (!rc) {
    rc = load_body(path, f, m);
    spr_h5r_close(f);
  }
  if (rc) spr_model_free(m);
  return rc;
}

int spr_model_input_of(const char *path) {
  spr_model m;
  memset(&m, 0, sizeof m);
  spr_h5r *f;
  int rc = open_model(path, &f);
  if (!rc) {
    rc = load_header(path, f, &m);
    spr_h5r_close(f);
  }
  return rc ? rc : m.input;
}

int spr_model_windows(const spr_model *m, int n_ids) {
  return n_ids > 1 ? (n_ids - 1) / m->tokens : 0;
}

/* ---- forward pass ------------------------------------------------------- */

struct spr_model_ws {
  float *x;   /* T x dim residual stream */
  float *h;   /* T x dim normalised input of a block */
  float *qkv; /* T x 3 dim */
  float *o;   /* T x dim concatenated head outputs */
  float *f;   /* T x mlp */
  float *pt;  /* image: T x patch^2 pixels of the patches (row 0 unused) */
};

void spr_model_ws_free(spr_model_ws *w) {
  if (!w) return;
  free(w->x); free(w->h); free(w->qkv); free(w->o); free(w->f); free(w->pt);
  free(w);
}

int spr_model_ws_alloc(const spr_model *m, spr_model_ws **out) {
  *out = NULL;
  spr_model_ws *w = calloc(1, sizeof *w);
  const size_t T = (size_t)m->tokens, D = (size_t)m->dim;
  const int image = m->input == SPR_MODEL_IMAGE;
  if (w) {
    w->x = malloc(T * D * sizeof *w->x);
    w->h = malloc(T * D * sizeof *w->h);
    w->qkv = malloc(T * 3 * D * sizeof *w->qkv);
    w->o = malloc(T * D * sizeof *w->o);
    w->f = malloc(T * (size_t)m->mlp * sizeof *w->f);
    if (image) w->pt = malloc(T * (size_t)m->patch * m->patch * sizeof *w->pt);
  }
  if (!w || !w->x || !w->h || !w->qkv || !w->o || !w->f || (image && !w->pt)) {
    spr_model_ws_free(w);
    return spr_error(SPR_ENOMEM, "model: out of memory for the activations");
  }
  *out = w;
  return 0;
}

/* out[T x n] = in[T x k] W^T + b, W: n x k (PyTorch's Linear). */
static int linear(const float *in, int T, int k, const float *W, const float *b, int n,
                  float *out) {
  for (int t = 0; t < T; t++) memcpy(out + (size_t)t * n, b, (size_t)n * sizeof *b);
  return spr_matf_gemm(1.0f, spr_matf_view((float *)in, T, k), 0, spr_matf_view((float *)W, n, k),
                       1, 1.0f, spr_matf_view(out, T, n));
}

/* out = LN(in) row by row over dim features (mean and variance in double). */
static void layer_norm(const float *in, int T, int D, const float *g, const float *b, double eps,
                       float *out) {
  for (int t = 0; t < T; t++) {
    const float *r = in + (size_t)t * D;
    double mu = 0, var = 0;
    for (int k = 0; k < D; k++) mu += r[k];
    mu /= D;
    for (int k = 0; k < D; k++) var += (r[k] - mu) * (r[k] - mu);
    var /= D;
    const double inv = 1.0 / sqrt(var + eps);
    for (int k = 0; k < D; k++) out[(size_t)t * D + k] = (float)((r[k] - mu) * inv * g[k] + b[k]);
  }
}

int spr_model_embed_image(const spr_model *m, const uint8_t *img, spr_model_ws *w) {
  if (m->input != SPR_MODEL_IMAGE)
    return spr_error(SPR_EINVAL, "model: embed_image on a %s model", spr_model_input_name(m->input));
  const int p = m->patch, np = m->side / p, P2 = p * p, D = m->dim, T = m->tokens;
  for (int a = 0; a < np; a++)
    for (int b = 0; b < np; b++) {
      float *row = w->pt + (size_t)(1 + a * np + b) * P2;
      for (int u = 0; u < p; u++)
        for (int v = 0; v < p; v++) {
          const double x = img[(a * p + u) * m->side + b * p + v] / 255.0;
          row[u * p + v] = (float)((x - m->norm_mean) / m->norm_std);
        }
    }
  int rc = linear(w->pt + P2, T - 1, P2, m->embed_w, m->embed_b, D, w->x + D);
  if (rc) return rc;
  memcpy(w->x, m->cls, (size_t)D * sizeof *w->x);
  for (size_t k = 0; k < (size_t)T * D; k++) w->x[k] += m->pos[k];
  return 0;
}

int spr_model_embed_text(const spr_model *m, const uint8_t *ids, spr_model_ws *w) {
  if (m->input != SPR_MODEL_TEXT)
    return spr_error(SPR_EINVAL, "model: embed_text on a %s model", spr_model_input_name(m->input));
  const int D = m->dim;
  for (int t = 0; t < m->tokens; t++) {
    if (ids[t] >= m->vocab)
      return spr_error(SPR_EINVAL, "model: token %d has id %d, outside the vocabulary of %d", t,
                       ids[t], m->vocab);
    const float *e = m->tok_emb + (size_t)ids[t] * D, *p = m->pos + (size_t)t * D;
    float *x = w->x + (size_t)t * D;
    for (int k = 0; k < D; k++) x[k] = e[k] + p[k];
  }
  return 0;
}

int spr_model_attn_in(const spr_model *m, int layer, spr_model_ws *w) {
  const spr_model_layer *y = &m->layer[layer];
  layer_norm(w->x, m->tokens, m->dim, y->ln1_w, y->ln1_b, m->ln_eps, w->h);
  return linear(w->h, m->tokens, m->dim, y->qkv_w, y->qkv_b, 3 * m->dim, w->qkv);
}

void spr_model_head_qkv(const spr_model *m, const spr_model_ws *w, int head, float *Q, float *K,
                        float *V) {
  const int D = m->dim, d = m->head_dim;
  const size_t bytes = (size_t)d * sizeof *Q;
  for (int t = 0; t < m->tokens; t++) {
    const float *r = w->qkv + (size_t)t * 3 * D + (size_t)head * d;
    memcpy(Q + (size_t)t * d, r, bytes);
    memcpy(K + (size_t)t * d, r + D, bytes);
    memcpy(V + (size_t)t * d, r + 2 * D, bytes);
  }
}

void spr_model_head_out(const spr_model *m, spr_model_ws *w, int head, const float *O) {
  const int D = m->dim, d = m->head_dim;
  for (int t = 0; t < m->tokens; t++)
    memcpy(w->o + (size_t)t * D + (size_t)head * d, O + (size_t)t * d, (size_t)d * sizeof *O);
}

int spr_model_attn_out(const spr_model *m, int layer, spr_model_ws *w) {
  const spr_model_layer *y = &m->layer[layer];
  const int T = m->tokens, D = m->dim, M = m->mlp;
  /* x += o proj_w^T + proj_b: the GEMM accumulates into x */
  for (int t = 0; t < T; t++)
    for (int k = 0; k < D; k++) w->x[(size_t)t * D + k] += y->proj_b[k];
  int rc = spr_matf_gemm(1.0f, spr_matf_view(w->o, T, D), 0, spr_matf_view(y->proj_w, D, D), 1,
                         1.0f, spr_matf_view(w->x, T, D));
  if (rc) return rc;
  layer_norm(w->x, T, D, y->ln2_w, y->ln2_b, m->ln_eps, w->h);
  if ((rc = linear(w->h, T, D, y->fc1_w, y->fc1_b, M, w->f))) return rc;
  for (size_t k = 0; k < (size_t)T * M; k++) {
    const double u = w->f[k];
    w->f[k] = (float)(0.5 * u * (1.0 + erf(u / sqrt(2.0))));
  }
  for (int t = 0; t < T; t++)
    for (int k = 0; k < D; k++) w->x[(size_t)t * D + k] += y->fc2_b[k];
  return spr_matf_gemm(1.0f, spr_matf_view(w->f, T, M), 0, spr_matf_view(y->fc2_w, D, M), 1, 1.0f,
                       spr_matf_view(w->x, T, D));
}

int spr_model_logits(const spr_model *m, spr_model_ws *w, float *logits) {
  /* image: the class token only; text: every position */
  const int rows = m->input == SPR_MODEL_IMAGE ? 1 : m->tokens;
  layer_norm(w->x, rows, m->dim, m->ln_w, m->ln_b, m->ln_eps, w->h);
  return linear(w->h, rows, m->dim, m->head_w, m->head_b, m->outputs, logits);
}

int spr_model_argmax(const float *logits, int n) {
  int best = 0;
  for (int k = 1; k < n; k++)
    if (logits[k] > logits[best]) best = k;
  return best;
}

double spr_model_nats(const float *logits, const uint8_t *targets, int n, int vocab) {
  double total = 0;
  for (int i = 0; i < n; i++) {
    const float *r = logits + (size_t)i * vocab;
    double mx = r[0], z = 0;
    for (int k = 1; k < vocab; k++) mx = r[k] > mx ? r[k] : mx;
    for (int k = 0; k < vocab; k++) z += exp((double)r[k] - mx);
    total += log(z) + mx - (double)r[targets[i]];
  }
  return total;
}
