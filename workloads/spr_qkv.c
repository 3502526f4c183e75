/* spr_qkv.c - sprintsim-qkv HDF5 files: validated import per head, and a
 * writer (format: docs/qkv.md; API: spr_qkv.h). */
/* realpath() */
#define _XOPEN_SOURCE 700
#include "config.h"
#include "spr_qkv.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_sysmem.h"
#include "spr_h5quiet.h"
#include "spr_h5r.h"
#include "spr_output.h"

#include <errno.h>
#include <float.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const TENSORS[3] = {"Q", "K", "V"};

struct spr_qkv {
  char *path;
  spr_h5r *h;    /* the file, read in a child process (spr_h5r.h) */
  spr_qkv_info info;
  uint8_t *mask; /* batch x N, 1 = real token; NULL: every token real */
  double *buf;   /* N x d read buffer */
};

/* --- reading ------------------------------------------------------------- */

/* The file is read through the isolated reader: libhdf5 runs in a child
 * process, so a crafted file that crashes or loops it costs an error
 * naming the file, never this process. */

static const char *class_name(int c) {
  switch (c) {
  case SPR_H5R_INTEGER: return "an integer type";
  case SPR_H5R_FLOAT: return "a floating-point type";
  case SPR_H5R_STRING: return "a string type";
  case SPR_H5R_COMPOUND: return "a compound type";
  case SPR_H5R_ENUM: return "an enum type (h5py bool?)";
  case SPR_H5R_ARRAY: return "an array type";
  case SPR_H5R_VLEN: return "a variable-length type";
  default: return "an unsupported type";
  }
}

/* Root attribute `name` as a string into buf (n bytes): fixed length of
 * any padding (h5py's np.bytes_ is NULLPAD) or variable length. */
static int read_str_attr(spr_h5r *h, const char *path, const char *name, char *buf, size_t n) {
  int ex;
  spr_h5r_info in;
  int rc = spr_h5r_attr_info(h, "/", name, &ex, &in);
  if (rc) return rc;
  if (!ex) return spr_error(SPR_EHDF5, "%s: cannot open root attribute '%s'", path, name);
  if (in.cls != SPR_H5R_STRING)
    return spr_error(SPR_EHDF5, "%s: root attribute '%s' is %s, expected the string \"%s\"", path, name,
                     class_name(in.cls), SPR_QKV_FORMAT);
  if (in.npoints != 1) return spr_error(SPR_EHDF5, "%s: root attribute '%s' is not a single string", path, name);
  char *s = NULL;
  if ((rc = spr_h5r_read_str(h, "/", name, 4096, &s))) return rc;
  snprintf(buf, n, "%s", s);
  free(s);
  return 0;
}

static int check_format(spr_h5r *h, const char *path) {
  char s[64];
  int rc, ex;
  spr_h5r_info in;
  if ((rc = spr_h5r_attr_info(h, "/", "format", &ex, NULL))) return rc;
  if (!ex)
    return spr_error(SPR_EHDF5, "%s: root attribute 'format' is missing (a sprintsim-qkv file has format = \"%s\", version = %d; docs/qkv.md)",
                     path, SPR_QKV_FORMAT, SPR_QKV_VERSION);
  if ((rc = read_str_attr(h, path, "format", s, sizeof s))) return rc;
  if (strcmp(s, SPR_QKV_FORMAT))
    return spr_error(SPR_EHDF5, "%s: root attribute 'format' is \"%s\", expected \"%s\"", path, s,
                     SPR_QKV_FORMAT);
  if ((rc = spr_h5r_attr_info(h, "/", "version", &ex, &in))) return rc;
  if (!ex)
    return spr_error(SPR_EHDF5, "%s: root attribute 'version' is missing (expected %d)", path,
                     SPR_QKV_VERSION);
  if (in.cls != SPR_H5R_INTEGER || in.npoints != 1 || !in.standard)
    return spr_error(SPR_EHDF5, "%s: root attribute 'version' is not one integer (%s)", path,
                     class_name(in.cls));
  int64_t v = 0;
  if ((rc = spr_h5r_attr_read(h, "/", "version", SPR_H5R_I64, &v, sizeof v))) return rc;
  if (v != SPR_QKV_VERSION)
    return spr_error(SPR_EHDF5, "%s: root attribute 'version' is %lld; this sprintsim reads version %d",
                     path, (long long)v, SPR_QKV_VERSION);
  return 0;
}

/* Most root entries listed when checking the layer names. */
#define MAX_ROOT_ENTRIES 65536

static int count_layers(spr_h5r *h, const char *path, int *L) {
  char name[32];
  int l = 0, rc;
  for (; l <= SPR_MAX_LAYERS; l++) {
    int kind;
    snprintf(name, sizeof name, "/layer_%d", l);
    if ((rc = spr_h5r_kind(h, name, &kind))) return rc;
    if (kind == SPR_H5R_MISSING) break;
  }
  if (l == 0)
    return spr_error(SPR_EHDF5, "%s: group '/layer_0' is missing (layers are groups /layer_0, /layer_1, ...)", path);
  if (l > SPR_MAX_LAYERS)
    return spr_error(SPR_EHDF5, "%s: more than %d layer groups (group '/layer_%d' exists); sprintsim simulates at most %d layers",
                     path, SPR_MAX_LAYERS, SPR_MAX_LAYERS, SPR_MAX_LAYERS);
  /* root links named "layer_..." that are not layer_0 .. layer_<l-1> */
  char **names;
  int n;
  if ((rc = spr_h5r_list(h, "/", MAX_ROOT_ENTRIES, &names, &n))) return rc;
  for (int i = 0; i < n && !rc; i++) {
    const char *nm = names[i];
    if (strncmp(nm, "layer_", 6)) continue;
    const char *num = nm + 6;
    char *end, canon[32];
    long x = strtol(num, &end, 10);
    snprintf(canon, sizeof canon, "layer_%ld", x);
    if (!*num || *end || x < 0 || strcmp(canon, nm) || x >= l)
      rc = spr_error(SPR_EHDF5, "%s: group '/%s' does not continue layer_0 .. layer_%d (layers are numbered from 0 without gaps or leading zeros)",
                     path, nm, l - 1);
  }
  free(names);
  if (rc) return rc;
  *L = l;
  return 0;
}

/* Check /layer_<l>/<name>; its rank and dims into rank, dims. */
static int check_tensor(spr_h5r *h, const char *path, int l, const char *name, int *rank,
                        uint64_t dims[4], int *float_bits) {
  char g[32], dp[48];
  snprintf(g, sizeof g, "/layer_%d", l);
  snprintf(dp, sizeof dp, "/layer_%d/%s", l, name);
  int kind, rc = spr_h5r_kind(h, g, &kind);
  if (rc) return rc;
  if (kind != SPR_H5R_GROUP) return spr_error(SPR_EHDF5, "%s: '%s' is not a group", path, g);
  if ((rc = spr_h5r_kind(h, dp, &kind))) return rc;
  if (kind == SPR_H5R_MISSING) return spr_error(SPR_EHDF5, "%s: dataset '%s' is missing", path, dp);
  if (kind != SPR_H5R_DATASET) return spr_error(SPR_EHDF5, "%s: '%s' is not a dataset", path, dp);
  spr_h5r_info in;
  if ((rc = spr_h5r_dset_info(h, dp, &in))) return rc;
  if (in.cls != SPR_H5R_FLOAT)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' is %s, expected float32 or float64", path, dp,
                     class_name(in.cls));
  if (in.size != 4 && in.size != 8)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' is a %llu-bit float, expected float32 or float64",
                     path, dp, (unsigned long long)(8 * in.size));
  if (!in.standard)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' is a non-IEEE %llu-bit float, expected float32 or float64",
                     path, dp, (unsigned long long)(8 * in.size));
  *float_bits = (int)(8 * in.size);
  if (in.rank != 3 && in.rank != 4)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' has rank %d, expected 4 (batch, heads, N, d) or 3 (heads, N, d)",
                     path, dp, in.rank);
  *rank = in.rank;
  for (int k = 0; k < in.rank; k++) {
    dims[k] = in.dims[k];
    if (dims[k] == 0) return spr_error(SPR_EHDF5, "%s: dataset '%s' is empty (axis %d has length 0)", path, dp, k);
  }
  return 0;
}

static void shape_str(char *buf, size_t n, int rank, const uint64_t *d) {
  size_t u = (size_t)snprintf(buf, n, "(");
  for (int k = 0; k < rank && u < n; k++)
    u += (size_t)snprintf(buf + u, n - u, "%s%llu", k ? ", " : "", (unsigned long long)d[k]);
  if (u < n) snprintf(buf + u, n - u, ")");
}

static int check_tensors(spr_h5r *h, const char *path, int L, spr_qkv_info *in) {
  int rank0 = 0, rc;
  uint64_t d0[4] = {0};
  char ref[32] = "";
  for (int l = 0; l < L; l++)
    for (int t = 0; t < 3; t++) {
      int rank = 0, bits = 0;
      uint64_t d[4] = {0};
      if ((rc = check_tensor(h, path, l, TENSORS[t], &rank, d, &bits))) return rc;
      if (!ref[0]) {
        snprintf(ref, sizeof ref, "/layer_%d/%s", l, TENSORS[t]);
        rank0 = rank;
        memcpy(d0, d, sizeof d0);
        in->float_bits = bits;
        continue;
      }
      if (rank != rank0 || memcmp(d, d0, sizeof d0)) {
        char a[96], b[96];
        shape_str(a, sizeof a, rank, d);
        shape_str(b, sizeof b, rank0, d0);
        const char *what = rank != rank0 ? "rank"
                           : d[rank - 1] != d0[rank - 1] ? "head dimension d"
                           : d[rank - 3] != d0[rank - 3] ? "head count"
                           : d[rank - 2] != d0[rank - 2] ? "sequence length N"
                                                         : "batch size";
        return spr_error(SPR_EHDF5, "%s: dataset '/layer_%d/%s' has shape %s but '%s' has %s (%s differs; Q, K and V of every layer must have one shape)",
                         path, l, TENSORS[t], a, ref, b, what);
      }
    }
  in->batched = rank0 == 4;
  in->batch = rank0 == 4 ? (d0[0] > INT_MAX ? INT_MAX : (int)d0[0]) : 1;
  const uint64_t H = d0[rank0 - 3], N = d0[rank0 - 2], D = d0[rank0 - 1];
  if (rank0 == 4 && d0[0] > SPR_QKV_MAX_BATCH)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' holds %llu batch items, more than %d", path, ref,
                     (unsigned long long)d0[0], SPR_QKV_MAX_BATCH);
  if (H > SPR_MAX_HEADS)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' has %llu heads; sprintsim simulates at most %d", path,
                     ref, (unsigned long long)H, SPR_MAX_HEADS);
  if (N > SPR_QKV_MAX_SEQ || N < 2)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' has sequence length N = %llu, outside [2, %d]", path,
                     ref, (unsigned long long)N, SPR_QKV_MAX_SEQ);
  if (D > SPR_QKV_MAX_DIM)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' has head dimension d = %llu, more than %d", path, ref,
                     (unsigned long long)D, SPR_QKV_MAX_DIM);
  in->n_layers = L;
  in->n_heads = (int)H;
  in->seq_len = (int)N;
  in->head_dim = (int)D;
  return 0;
}

/* Bytes of memory this process may use (the physical memory, or its
 * cgroup's limit when lower: spr_sysmem_limit), 0 when unknown. */
static double phys_bytes(void) {
  double b = 0;
  return spr_sysmem_limit(NULL, NULL, &b, NULL, 0) ? 0 : b;
}

/* Read and check /mask into q->mask. */
static int read_mask(spr_qkv *q) {
  const char *path = q->path;
  const spr_qkv_info *in = &q->info;
  int kind, rc = spr_h5r_kind(q->h, "/mask", &kind);
  if (rc) return rc;
  if (kind == SPR_H5R_MISSING) return 0;
  if (kind != SPR_H5R_DATASET) return spr_error(SPR_EHDF5, "%s: '/mask' is not a dataset", path);
  spr_h5r_info mi;
  if ((rc = spr_h5r_dset_info(q->h, "/mask", &mi))) return rc;
  const int want = in->batched ? 2 : 1;
  const int rank = mi.rank;
  uint64_t d[2] = {0, 0};
  if (rank >= 1 && rank <= 2) d[0] = mi.dims[0], d[1] = mi.dims[1];
  const uint64_t B = (uint64_t)in->batch, N = (uint64_t)in->seq_len;
  int64_t *row = NULL;
  if (mi.cls != SPR_H5R_INTEGER) {
    rc = spr_error(SPR_EHDF5, "%s: dataset '/mask' is %s, expected integers 0/1 (uint8)", path,
                   class_name(mi.cls));
  } else if (!mi.standard) {
    rc = spr_error(SPR_EHDF5, "%s: dataset '/mask' is a non-standard %llu-byte integer type, expected integers 0/1 (uint8)",
                   path, (unsigned long long)mi.size);
  } else if (rank != want || (want == 2 ? (d[0] != B || d[1] != N) : d[0] != N)) {
    char a[96], b[96];
    uint64_t w[2] = {B, N};
    shape_str(a, sizeof a, rank < 0 ? 0 : rank > 2 ? 2 : rank, d);
    shape_str(b, sizeof b, want, want == 2 ? w : w + 1);
    rc = spr_error(SPR_EHDF5, "%s: dataset '/mask' has rank %d shape %s, expected %s (%s)", path, rank,
                   a, b, in->batched ? "batch, N" : "N");
  } else if ((double)B * N > SPR_QKV_MAX_MASK) {
    rc = spr_error(SPR_EHDF5, "%s: dataset '/mask' has %llu x %llu = %.0f elements, more than %d",
                   path, (unsigned long long)B, (unsigned long long)N, (double)B * N, SPR_QKV_MAX_MASK);
  } else if (phys_bytes() > 0 && (double)B * N + 8.0 * N * in->head_dim > 0.8 * phys_bytes()) {
    rc = spr_error(SPR_ENOMEM, "%s: the mask (%llu x %llu) and one head's buffer need more than 80%% of the memory this process may use",
                   path, (unsigned long long)B, (unsigned long long)N);
  } else if (!(q->mask = malloc((size_t)(B * N))) || !(row = malloc((size_t)N * sizeof *row))) {
    rc = spr_error(SPR_ENOMEM, "%s: out of memory for a %llu x %llu mask", path,
                   (unsigned long long)B, (unsigned long long)N);
  } else {
    for (uint64_t b = 0; b < B && !rc; b++) {
      uint64_t start[2] = {b, 0}, cnt[2] = {1, N};
      if ((rc = want == 2 ? spr_h5r_read(q->h, "/mask", SPR_H5R_I64, 2, start, cnt, row, (size_t)N * sizeof *row)
                          : spr_h5r_read(q->h, "/mask", SPR_H5R_I64, 1, start + 1, cnt + 1, row, (size_t)N * sizeof *row)))
        break;
      int64_t real = 0;
      for (uint64_t t = 0; t < N; t++) {
        if (row[t] != 0 && row[t] != 1) {
          if (want == 2)
            rc = spr_error(SPR_EHDF5, "%s: dataset '/mask' element [%llu][%llu] is %lld; expected 0 (padding) or 1 (real token)",
                           path, (unsigned long long)b, (unsigned long long)t, (long long)row[t]);
          else
            rc = spr_error(SPR_EHDF5, "%s: dataset '/mask' element [%llu] is %lld; expected 0 (padding) or 1 (real token)",
                           path, (unsigned long long)t, (long long)row[t]);
          break;
        }
        q->mask[b * N + t] = (uint8_t)row[t];
        real += row[t];
      }
      if (!rc && real == 0)
        rc = spr_error(SPR_EHDF5, "%s: dataset '/mask': item %llu is all padding (no element is 1)",
                       path, (unsigned long long)b);
    }
  }
  free(row);
  if (!rc) q->info.has_mask = 1;
  return rc;
}

void spr_qkv_close(spr_qkv *q) {
  if (!q) return;
  spr_h5r_close(q->h);
  free(q->path);
  free(q->mask);
  free(q->buf);
  free(q);
}

int spr_qkv_open(const char *path, spr_qkv **out) {
  *out = NULL;
  if (!path || !*path) return spr_error(SPR_EINVAL, "qkv: no file name given");
  spr_qkv *q = calloc(1, sizeof *q);
  if (!q || !(q->path = strdup(path))) {
    free(q);
    return spr_error(SPR_ENOMEM, "%s: out of memory", path);
  }
  int L = 0;
  int rc = spr_h5r_open(path, "Q/K/V file", NULL, &q->h);
  if (!rc) rc = check_format(q->h, path);
  if (!rc) rc = count_layers(q->h, path, &L);
  if (!rc) rc = check_tensors(q->h, path, L, &q->info);
  if (!rc) rc = read_mask(q);
  if (!rc) {
    const size_t nd = (size_t)q->info.seq_len * q->info.head_dim;
    if (phys_bytes() > 0 && 8.0 * nd > 0.8 * phys_bytes())
      rc = spr_error(SPR_ENOMEM, "%s: one head (N = %d, d = %d) needs more than 80%% of the memory this process may use",
                     path, q->info.seq_len, q->info.head_dim);
    else if (!(q->buf = malloc(nd * sizeof *q->buf)))
      rc = spr_error(SPR_ENOMEM, "%s: out of memory for one head (N = %d, d = %d)", path,
                     q->info.seq_len, q->info.head_dim);
  }
  if (rc) {
    spr_qkv_close(q);
    return rc;
  }
  *out = q;
  return 0;
}

const spr_qkv_info *spr_qkv_get_info(const spr_qkv *q) { return &q->info; }

int spr_qkv_content_id(spr_qkv *q, char *out, size_t n) { return spr_h5r_content_id(q->h, out, n); }

int spr_qkv_check(spr_qkv *q) { return spr_h5r_check(q->h); }

long long spr_qkv_file_size(const spr_qkv *q) { return spr_h5r_size(q->h); }

int spr_qkv_item_tokens(const spr_qkv *q, int item, int *n_real) {
  if (item < 0 || item >= q->info.batch)
    return spr_error(SPR_EINVAL, "%s: batch item %d out of range (the file holds %d item%s)", q->path,
                     item, q->info.batch, q->info.batch == 1 ? "" : "s");
  int n = q->info.seq_len;
  if (q->mask) {
    n = 0;
    const uint8_t *m = q->mask + (size_t)item * q->info.seq_len;
    for (int t = 0; t < q->info.seq_len; t++) n += m[t];
  }
  if (n < 2)
    return spr_error(SPR_EHDF5, "%s: batch item %d has %d real token (dataset '/mask'); at least 2 are needed",
                     q->path, item, n);
  *n_real = n;
  return 0;
}

/* Read one tensor of (layer, head, item) into out (real rows only).  The
 * isolated reader checks the file unchanged before and after the read. */
static int read_one(spr_qkv *q, int layer, int head, int item, int t, float *out) {
  const spr_qkv_info *in = &q->info;
  const int N = in->seq_len, D = in->head_dim;
  char dp[48];
  snprintf(dp, sizeof dp, "/layer_%d/%s", layer, TENSORS[t]);
  uint64_t start[4] = {0}, cnt[4] = {0};
  if (in->batched) {
    start[0] = (uint64_t)item; start[1] = (uint64_t)head;
    cnt[0] = 1; cnt[1] = 1; cnt[2] = (uint64_t)N; cnt[3] = (uint64_t)D;
  } else {
    start[0] = (uint64_t)head;
    cnt[0] = 1; cnt[1] = (uint64_t)N; cnt[2] = (uint64_t)D;
  }
  int rc = spr_h5r_read(q->h, dp, SPR_H5R_F64, in->batched ? 4 : 3, start, cnt, q->buf,
                        (size_t)N * D * sizeof *q->buf);
  if (rc) return spr_error_prefix(rc, "layer %d head %d item %d", layer, head, item);
  const uint8_t *m = q->mask ? q->mask + (size_t)item * N : NULL;
  size_t o = 0;
  for (int i = 0; i < N && !rc; i++) {
    if (m && !m[i]) continue;
    const double *row = q->buf + (size_t)i * D;
    for (int c = 0; c < D; c++) {
      const double x = row[c];
      if (!isfinite(x) || fabs(x) > FLT_MAX) {
        char idx[64];
        if (in->batched) snprintf(idx, sizeof idx, "[%d][%d][%d][%d]", item, head, i, c);
        else snprintf(idx, sizeof idx, "[%d][%d][%d]", head, i, c);
        rc = spr_error(SPR_EHDF5, "%s: dataset '%s' element %s is %g (%s)", q->path, dp, idx, x,
                       isfinite(x) ? "beyond float32's range" : "not finite");
        break;
      }
      out[o++] = (float)x;
    }
  }
  return rc;
}

int spr_qkv_read_head(spr_qkv *q, int layer, int head, int item, float *Q, float *K, float *V) {
  const spr_qkv_info *in = &q->info;
  if (layer < 0 || layer >= in->n_layers || head < 0 || head >= in->n_heads || item < 0 ||
      item >= in->batch || !Q || !K)
    return spr_error(SPR_EINVAL, "%s: layer %d head %d item %d outside the file's %d layers x %d heads x %d items",
                     q->path, layer, head, item, in->n_layers, in->n_heads, in->batch);
  float *outs[3] = {Q, K, V};
  int rc = 0;
  for (int t = 0; t < 3 && !rc; t++)
    if (outs[t]) rc = read_one(q, layer, head, item, t, outs[t]);
  return rc;
}

int spr_qkv_resolve(spr_config *c, const char *origin) {
  if (c->wl.source != SPR_SOURCE_QKV) return spr_config_resolve(c, origin);
  int rc = spr_config_resolve(c, origin); /* qkv_file set, single-key checks */
  if (rc) return rc;
  spr_qkv *q;
  if ((rc = spr_qkv_open(c->wl.qkv_file, &q))) return rc;
  const spr_qkv_info *in = spr_qkv_get_info(q);
  spr_workload_params *w = &c->wl;
  int n = 0;
  if (w->qkv_item >= in->batch)
    rc = spr_error(SPR_ECONFIG, "%s: key 'workload.qkv_item': value %d out of range: %s holds %d item%s",
                   origin, w->qkv_item, w->qkv_file, in->batch, in->batch == 1 ? "" : "s");
  if (!rc) rc = spr_qkv_item_tokens(q, w->qkv_item, &n);
  if (!rc && w->seq_len && w->seq_len != n)
    rc = spr_error(SPR_ECONFIG, "%s: key 'workload.seq_len': value %d, but item %d of %s has %d real tokens (0 takes the file's)",
                   origin, w->seq_len, w->qkv_item, w->qkv_file, n);
  if (!rc && w->head_dim && w->head_dim != in->head_dim)
    rc = spr_error(SPR_ECONFIG, "%s: key 'workload.head_dim': value %d, but %s has d = %d (0 takes the file's)",
                   origin, w->head_dim, w->qkv_file, in->head_dim);
  if (!rc && w->n_layers > in->n_layers)
    rc = spr_error(SPR_ECONFIG, "%s: key 'workload.layers': value %d, but %s has %d layers (0 takes all)",
                   origin, w->n_layers, w->qkv_file, in->n_layers);
  if (!rc && w->n_heads > in->n_heads)
    rc = spr_error(SPR_ECONFIG, "%s: key 'workload.heads': value %d, but %s has %d heads (0 takes all)",
                   origin, w->n_heads, w->qkv_file, in->n_heads);
  if (!rc) {
    w->seq_len = n;
    w->head_dim = in->head_dim;
    if (!w->n_layers) w->n_layers = in->n_layers;
    if (!w->n_heads) w->n_heads = in->n_heads;
  }
  spr_qkv_close(q);
  if (rc) return rc;
  char *abs = realpath(w->qkv_file, NULL);
  if (!abs) return spr_error(SPR_EIO, "%s: cannot resolve the path: %s", w->qkv_file, strerror(errno));
  if (strlen(abs) >= sizeof w->qkv_file) {
    free(abs);
    return spr_error(SPR_ECONFIG, "%s: key 'workload.qkv_file': absolute path of %s longer than %d bytes",
                     origin, w->qkv_file, SPR_STRING_MAX - 1);
  }
  strcpy(w->qkv_file, abs);
  free(abs);
  return spr_config_resolve(c, origin);
}

/* --- writing ------------------------------------------------------------- */

struct spr_qkv_writer {
  char *path, *tmp;
  hid_t f;
  hid_t ds[SPR_MAX_LAYERS][3];
  int L, H, B, N, D;  /* B = 0: unbatched */
  uint8_t *written;   /* L x H x max(B, 1) */
  int failed;
};

static int wfail(spr_qkv_writer *w, const char *what) {
  w->failed = 1;
  return spr__h5_fail(w->tmp, "cannot %s", what);
}

static hid_t plist_untracked(hid_t cls) {
  hid_t p = H5Pcreate(cls);
  if (p >= 0 && H5Pset_obj_track_times(p, 0) < 0) {
    H5Pclose(p);
    return -1;
  }
  return p;
}

static int write_layout(spr_qkv_writer *w, const uint8_t *mask) {
  hid_t root = H5Gopen2(w->f, "/", H5P_DEFAULT);
  if (root < 0) return wfail(w, "open group '/'");
  int rc = 0;
  hid_t st = H5Tcopy(H5T_C_S1), as = H5Screate(H5S_SCALAR), a = -1;
  if (st >= 0) H5Tset_size(st, strlen(SPR_QKV_FORMAT) + 1);
  if (st < 0 || as < 0 || (a = H5Acreate2(root, "format", st, as, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
      H5Awrite(a, st, SPR_QKV_FORMAT) < 0)
    rc = wfail(w, "write root attribute 'format'");
  if (a >= 0 && H5Aclose(a) < 0 && !rc) rc = wfail(w, "finish root attribute 'format'");
  a = -1;
  int32_t v = SPR_QKV_VERSION;
  if (!rc && ((a = H5Acreate2(root, "version", H5T_STD_I32LE, as, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
              H5Awrite(a, H5T_NATIVE_INT32, &v) < 0))
    rc = wfail(w, "write root attribute 'version'");
  if (a >= 0 && H5Aclose(a) < 0 && !rc) rc = wfail(w, "finish root attribute 'version'");
  if (st >= 0) H5Tclose(st);
  if (as >= 0) H5Sclose(as);
  if (H5Gclose(root) < 0 && !rc) rc = wfail(w, "finish group '/'");
  hid_t gcpl = plist_untracked(H5P_GROUP_CREATE), dcpl = plist_untracked(H5P_DATASET_CREATE);
  hsize_t dims[4] = {(hsize_t)w->B, (hsize_t)w->H, (hsize_t)w->N, (hsize_t)w->D};
  const int rank = w->B ? 4 : 3;
  hid_t sp = H5Screate_simple(rank, w->B ? dims : dims + 1, NULL);
  if (!rc && (gcpl < 0 || dcpl < 0 || sp < 0)) rc = wfail(w, "make property lists");
  for (int l = 0; l < w->L && !rc; l++) {
    char g[32];
    snprintf(g, sizeof g, "/layer_%d", l);
    hid_t grp = H5Gcreate2(w->f, g, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (grp < 0) {
      rc = wfail(w, "create a layer group");
      break;
    }
    for (int t = 0; t < 3 && !rc; t++)
      if ((w->ds[l][t] = H5Dcreate2(grp, TENSORS[t], H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl,
                                    H5P_DEFAULT)) < 0)
        rc = wfail(w, "create a Q, K or V dataset");
    if (H5Gclose(grp) < 0 && !rc) rc = wfail(w, "finish a layer group");
  }
  if (!rc && mask) {
    hsize_t md[2] = {(hsize_t)w->B, (hsize_t)w->N};
    hid_t msp = H5Screate_simple(w->B ? 2 : 1, w->B ? md : md + 1, NULL);
    hid_t ds = msp >= 0 ? H5Dcreate2(w->f, "/mask", H5T_STD_U8LE, msp, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
    if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, mask) < 0)
      rc = wfail(w, "write dataset '/mask'");
    if (ds >= 0 && H5Dclose(ds) < 0 && !rc) rc = wfail(w, "finish dataset '/mask'");
    if (msp >= 0) H5Sclose(msp);
  }
  if (sp >= 0) H5Sclose(sp);
  if (gcpl >= 0) H5Pclose(gcpl);
  if (dcpl >= 0) H5Pclose(dcpl);
  return rc;
}

int spr_qkv_create(const char *path, int layers, int heads, int batch, int seq_len, int head_dim,
                   const uint8_t *mask, spr_qkv_writer **out) {
  *out = NULL;
  if (!path || !*path || layers < 1 || layers > SPR_MAX_LAYERS || heads < 1 ||
      heads > SPR_MAX_HEADS || batch < 0 || batch > SPR_QKV_MAX_BATCH || seq_len < 2 ||
      seq_len > SPR_QKV_MAX_SEQ || head_dim < 1 || head_dim > SPR_QKV_MAX_DIM)
    return spr_error(SPR_EINVAL, "qkv: cannot write %d layers x %d heads, batch %d, N %d, d %d (limits in spr_qkv.h)",
                     layers, heads, batch, seq_len, head_dim);
  const int items = batch ? batch : 1;
  for (int b = 0; mask && b < items; b++) {
    int real = 0;
    for (int t = 0; t < seq_len; t++) {
      uint8_t m = mask[(size_t)b * seq_len + t];
      if (m > 1) return spr_error(SPR_EINVAL, "qkv: mask[%d][%d] is %d, not 0 or 1", b, t, m);
      real += m;
    }
    if (!real) return spr_error(SPR_EINVAL, "qkv: mask item %d is all padding", b);
  }
  spr_qkv_writer *w = calloc(1, sizeof *w);
  if (!w) return spr_error(SPR_ENOMEM, "%s: out of memory", path);
  w->f = -1;
  for (int l = 0; l < SPR_MAX_LAYERS; l++) w->ds[l][0] = w->ds[l][1] = w->ds[l][2] = -1;
  w->L = layers; w->H = heads; w->B = batch; w->N = seq_len; w->D = head_dim;
  w->path = strdup(path);
  w->written = calloc((size_t)layers * heads * items, 1);
  if (!w->path || !w->written) {
    free(w->path); free(w->written); free(w);
    return spr_error(SPR_ENOMEM, "%s: out of memory", path);
  }
  int rc0 = spr__out_begin(path, &w->tmp);
  if (rc0) {
    free(w->path); free(w->written); free(w);
    return rc0;
  }
  spr__h5_quiet h;
  spr__h5_quiet_on(&h);
  int rc = 0;
  hid_t fcpl = plist_untracked(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0 || spr__h5_out_fapl(fapl, w->tmp)) rc = wfail(w, "set up the output driver");
  if (!rc) w->f = fcpl >= 0 ? H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, fapl) : -1;
  if (!rc && w->f < 0) rc = wfail(w, "create HDF5 file");
  if (fcpl >= 0) H5Pclose(fcpl);
  if (fapl >= 0) H5Pclose(fapl);
  if (!rc) rc = write_layout(w, mask);
  spr__h5_quiet_off(&h);
  if (rc) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", spr_errmsg());
    spr_qkv_finish(w, 0);
    return spr_error(rc, "%s", msg);
  }
  *out = w;
  return 0;
}

int spr_qkv_write_head(spr_qkv_writer *w, int layer, int head, int item, const float *Q,
                       const float *K, const float *V) {
  const int items = w->B ? w->B : 1;
  if (layer < 0 || layer >= w->L || head < 0 || head >= w->H || item < 0 || item >= items ||
      !Q || !K || !V)
    return spr_error(SPR_EINVAL, "%s: cannot write layer %d head %d item %d of %d x %d x %d", w->path,
                     layer, head, item, w->L, w->H, items);
  uint8_t *done = &w->written[((size_t)layer * w->H + head) * items + item];
  if (*done)
    return spr_error(SPR_EINVAL, "%s: layer %d head %d item %d written twice", w->path, layer, head, item);
  const float *in[3] = {Q, K, V};
  const size_t nd = (size_t)w->N * w->D;
  for (int t = 0; t < 3; t++)
    for (size_t k = 0; k < nd; k++)
      if (!isfinite(in[t][k]))
        return spr_error(SPR_EINVAL, "%s: layer %d head %d item %d: %s[%zu][%zu] is %g", w->path, layer,
                         head, item, TENSORS[t], k / (size_t)w->D, k % (size_t)w->D, in[t][k]);
  hsize_t md[2] = {(hsize_t)w->N, (hsize_t)w->D};
  hsize_t start[4] = {0}, cnt[4] = {0};
  if (w->B) {
    start[0] = (hsize_t)item; start[1] = (hsize_t)head;
    cnt[0] = cnt[1] = 1; cnt[2] = md[0]; cnt[3] = md[1];
  } else {
    start[0] = (hsize_t)head;
    cnt[0] = 1; cnt[1] = md[0]; cnt[2] = md[1];
  }
  spr__h5_quiet h;
  spr__h5_quiet_on(&h);
  int rc = 0;
  hid_t ms = H5Screate_simple(2, md, NULL);
  for (int t = 0; t < 3 && !rc; t++) {
    hid_t sp = H5Dget_space(w->ds[layer][t]);
    if (ms < 0 || sp < 0 || H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, cnt, NULL) < 0 ||
        H5Dwrite(w->ds[layer][t], H5T_NATIVE_FLOAT, ms, sp, H5P_DEFAULT, in[t]) < 0)
      rc = wfail(w, "write a Q, K or V dataset");
    if (sp >= 0) H5Sclose(sp);
  }
  if (ms >= 0) H5Sclose(ms);
  if (!rc && (rc = spr__h5_out_status(w->f, w->tmp))) w->failed = 1; /* a full disk: stop now */
  spr__h5_quiet_off(&h);
  if (!rc) *done = 1;
  return rc;
}

int spr_qkv_finish(spr_qkv_writer *w, int commit) {
  if (!w) return 0;
  int rc = 0;
  const size_t total = (size_t)w->L * w->H * (w->B ? w->B : 1);
  if (commit && w->failed)
    rc = spr_error(SPR_EINVAL, "%s: an earlier write failed; not committed", w->path);
  for (size_t k = 0; commit && !rc && k < total; k++)
    if (!w->written[k]) {
      const int items = w->B ? w->B : 1;
      rc = spr_error(SPR_EINVAL, "%s: layer %zu head %zu item %zu was not written; not committed",
                     w->path, k / ((size_t)w->H * items), k / items % w->H, k % items);
    }
  spr__h5_quiet h;
  spr__h5_quiet_on(&h);
  /* the data may reach the file only as the datasets close */
  for (int l = 0; l < SPR_MAX_LAYERS; l++)
    for (int t = 0; t < 3; t++)
      if (w->ds[l][t] >= 0 && H5Dclose(w->ds[l][t]) < 0 && commit && !rc)
        rc = spr__h5_fail(w->tmp, "cannot finish dataset '/layer_%d/%s'", l, TENSORS[t]);
  rc = spr__h5_close_output(w->f, w->tmp, commit ? rc : SPR_ECANCELED);
  if (!commit) rc = 0;
  spr__h5_quiet_off(&h);
  if (commit && !rc) rc = spr__out_commit(w->tmp, w->path, 0);
  else spr__out_discard(w->tmp);
  free(w->path);
  free(w->tmp);
  free(w->written);
  free(w);
  return rc;
}
