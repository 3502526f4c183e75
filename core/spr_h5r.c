/* spr_h5r.c - untrusted HDF5 files read in a child process (spr_h5r.h,
 * docs/isolation.md).
 *
 * Parent and child speak over one AF_UNIX stream socket.  A request is a
 * fixed header (req_hdr) followed by two NUL-terminated names (an object
 * path, an attribute name); the answer is a fixed header (rep_hdr), an
 * error message (empty on success) and the data.  The parent checks every
 * length against what it asked for, so a child in trouble can make a
 * request fail but cannot make the parent read or write out of bounds.
 *
 * The same server code (srv_*) runs in the child or, with
 * limits.in_process, in the calling process under the HDF5 lock.
 */
#define _GNU_SOURCE /* close_range */
#include "config.h"
#include "spr_h5r.h"
#include "spr_error.h"
#include "spr_h5quiet.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Sanitizer runtimes (when linked): the child drops the death callback a
 * fuzzer installs, so a crash of libhdf5 in the child writes no crash
 * file of the fuzzer's. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

#define MAX_NAME 4096            /* bytes of an object path or attribute name */
#define MAX_MSG 1024             /* bytes of an error message from the child */
#define MAX_LIST_NAME 255        /* bytes of one name in a group listing */
#define MAX_STR (64u << 20)      /* bytes of a string the child returns */
#define MAX_LIST_BYTES (64u << 20)

enum { OP_OPEN = 1, OP_KIND, OP_LIST, OP_DINFO, OP_AINFO, OP_READ, OP_AREAD, OP_STR };

typedef struct {
  uint32_t op;
  int32_t mem;
  int32_t rank;
  uint32_t n1, n2;          /* bytes of the names that follow, NULs included */
  uint32_t pad;
  uint64_t start[SPR_H5R_MAX_RANK], count[SPR_H5R_MAX_RANK];
  uint64_t max_bytes;       /* data the parent accepts (reads: exactly) */
  uint64_t limit;           /* OP_LIST: most names */
} req_hdr;

typedef struct {
  int32_t rc;
  uint32_t msg_len;
  uint64_t data_len;
} rep_hdr;

struct spr_h5r {
  char *path;
  char what[64];
  int fd;                   /* the parent's descriptor of the file */
  struct stat st0;          /* its state at open */
  spr_h5r_limits lim;
  pid_t pid;                /* the child, -1 when none */
  int sock;                 /* the parent's end, -1 when none */
  hid_t f;                  /* in-process: the open file */
  int dead;                 /* the child failed: every request fails */
  char *dead_msg;
  int dead_rc;
  char content_id[32];
};

/* --- limits --------------------------------------------------------------- */

void spr_h5r_limits_default(spr_h5r_limits *l) {
  l->cpu_s = 60;
  l->wall_s = 600;
  l->mem_bytes = (uint64_t)2 << 30;
  l->in_process = 0;
  l->keep_stderr = 0;
}

static spr_h5r_limits g_lim = {60, 600, (uint64_t)2 << 30, 0, 0};

static int check_limits(const spr_h5r_limits *l) {
  if (!l) return spr_error(SPR_EINVAL, "spr_h5r limits: NULL");
  if (!isfinite(l->cpu_s) || l->cpu_s < 1 || l->cpu_s > 1e7)
    return spr_error(SPR_EINVAL, "HDF5 reader limits: cpu = %g s, expected 1 .. 1e7", l->cpu_s);
  if (!isfinite(l->wall_s) || l->wall_s <= 0 || l->wall_s > 1e7)
    return spr_error(SPR_EINVAL, "HDF5 reader limits: wall = %g s, expected > 0 and at most 1e7", l->wall_s);
  if (l->mem_bytes < ((uint64_t)64 << 20))
    return spr_error(SPR_EINVAL, "HDF5 reader limits: mem = %llu bytes, expected at least 64 MiB",
                     (unsigned long long)l->mem_bytes);
  return 0;
}

int spr_h5r_set_limits(const spr_h5r_limits *l) {
  int rc = check_limits(l);
  if (!rc) g_lim = *l;
  return rc;
}

void spr_h5r_get_limits(spr_h5r_limits *l) { *l = g_lim; }

int spr_h5r_parse_limits(const char *text, spr_h5r_limits *l) {
  if (!text || !l) return spr_error(SPR_EINVAL, "HDF5 reader limits: NULL");
  spr_h5r_limits n = *l;
  const char *p = text;
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    const char *eq = strchr(p, '=');
    const char *end = strchr(p, ',');
    if (!end) end = p + strlen(p);
    if (!eq || eq > end)
      return spr_error(SPR_EINVAL, "HDF5 reader limits '%s': item '%.*s' is not key=value", text,
                       (int)(end - p), p);
    char key[16], val[64];
    snprintf(key, sizeof key, "%.*s", (int)(eq - p), p);
    snprintf(val, sizeof val, "%.*s", (int)(end - eq - 1), eq + 1);
    char *e;
    errno = 0;
    double x = strtod(val, &e);
    double mul = 1;
    if (!strcmp(key, "mem")) {
      if (*e == 'K' || *e == 'k') mul = 1024.0, e++;
      else if (*e == 'M' || *e == 'm') mul = 1048576.0, e++;
      else if (*e == 'G' || *e == 'g') mul = 1073741824.0, e++;
    }
    if (e == val || *e || errno || !isfinite(x) || x < 0)
      return spr_error(SPR_EINVAL, "HDF5 reader limits '%s': %s = '%s' is not a non-negative number",
                       text, key, val);
    if (!strcmp(key, "cpu")) n.cpu_s = x;
    else if (!strcmp(key, "wall")) n.wall_s = x;
    else if (!strcmp(key, "mem")) {
      if (x * mul > 1.8e19)
        return spr_error(SPR_EINVAL, "HDF5 reader limits '%s': mem = '%s' is too large", text, val);
      n.mem_bytes = (uint64_t)(x * mul);
    } else if (!strcmp(key, "inprocess") && (x == 0 || x == 1)) n.in_process = (int)x;
    else if (!strcmp(key, "stderr") && (x == 0 || x == 1)) n.keep_stderr = (int)x;
    else
      return spr_error(SPR_EINVAL, "HDF5 reader limits '%s': unknown item '%s=%s' (cpu, wall, mem, inprocess=0|1, stderr=0|1)",
                       text, key, val);
    p = end;
  }
  int rc = check_limits(&n);
  if (!rc) *l = n;
  return rc;
}

size_t spr_h5r_mem_size(int mem) {
  switch (mem) {
  case SPR_H5R_F64: case SPR_H5R_I64: case SPR_H5R_U64: return 8;
  case SPR_H5R_F32: case SPR_H5R_I32: return 4;
  case SPR_H5R_U8: return 1;
  default: return 0;
  }
}

/* --- the server (child, or in-process) ------------------------------------ */

static hid_t mem_type(int mem) {
  switch (mem) {
  case SPR_H5R_F64: return H5T_NATIVE_DOUBLE;
  case SPR_H5R_F32: return H5T_NATIVE_FLOAT;
  case SPR_H5R_I64: return H5T_NATIVE_INT64;
  case SPR_H5R_U64: return H5T_NATIVE_UINT64;
  case SPR_H5R_I32: return H5T_NATIVE_INT32;
  case SPR_H5R_U8: return H5T_NATIVE_UINT8;
  default: return -1;
  }
}

/* libhdf5's innermost description of the last failure, shortened. */
static herr_t cause_cb(unsigned n, const H5E_error2_t *e, void *data) {
  char *out = data;
  if (n != 0 || !e || !e->desc) return 0;
  snprintf(out, 200, "%s", e->desc);
  for (char *p = out; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
  return 0;
}

/* SPR_EHDF5 "<path>: <what> (HDF5: <cause>)". */
static int h5fail(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int h5fail(const char *path, const char *fmt, ...) {
  char what[600], cause[200] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, cause_cb, cause);
  if (cause[0]) return spr_error(SPR_EHDF5, "%s: %s (HDF5: %s)", path, what, cause);
  return spr_error(SPR_EHDF5, "%s: %s", path, what);
}

typedef struct {
  hid_t f;
  const char *path; /* for messages */
} server;

/* What `obj` names; every prefix must be a hard or soft link (external
 * and user-defined links, which would make libhdf5 open other files, are
 * SPR_H5R_OTHER). */
static int srv_kind(const server *s, const char *obj, int *kind) {
  *kind = SPR_H5R_MISSING;
  size_t l = strlen(obj);
  if (l == 0) return spr_error(SPR_EHDF5, "%s: empty object path", s->path);
  if (!strcmp(obj, "/")) {
    *kind = SPR_H5R_GROUP;
    return 0;
  }
  char *buf = malloc(l + 1);
  if (!buf) return spr_error(SPR_ENOMEM, "%s: out of memory", s->path);
  memcpy(buf, obj, l + 1);
  int rc = 0, other = 0;
  /* each prefix ending before a '/', then the whole path */
  for (size_t i = 1; i <= l && !rc; i++) {
    if (i < l && buf[i] != '/') continue;
    if (i < l && buf[i - 1] == '/') { /* "a//b": empty component */
      rc = spr_error(SPR_EHDF5, "%s: malformed object path '%s'", s->path, obj);
      break;
    }
    char save = buf[i];
    buf[i] = '\0';
    htri_t ex = H5Lexists(s->f, buf, H5P_DEFAULT);
    if (ex > 0) {
      H5L_info_t li;
      if (H5Lget_info(s->f, buf, &li, H5P_DEFAULT) < 0)
        rc = h5fail(s->path, "cannot inspect link '%s'", buf);
      else if (li.type != H5L_TYPE_HARD && li.type != H5L_TYPE_SOFT)
        other = 1;
    }
    buf[i] = save;
    if (rc) break;
    if (ex < 0) {
      rc = h5fail(s->path, "cannot look up '%s'", obj);
      break;
    }
    if (ex == 0) {
      free(buf);
      return 0;
    }
    if (other) {
      *kind = SPR_H5R_OTHER;
      free(buf);
      return 0;
    }
  }
  free(buf);
  if (rc) return rc;
  hid_t o = H5Oopen(s->f, obj, H5P_DEFAULT);
  if (o < 0) { /* a dangling soft link */
    *kind = SPR_H5R_MISSING;
    return 0;
  }
  switch (H5Iget_type(o)) {
  case H5I_GROUP: *kind = SPR_H5R_GROUP; break;
  case H5I_DATASET: *kind = SPR_H5R_DATASET; break;
  case H5I_DATATYPE: *kind = SPR_H5R_NAMED_TYPE; break;
  default: *kind = SPR_H5R_OTHER; break;
  }
  H5Oclose(o);
  return 0;
}

static const char *kind_name(int k) {
  switch (k) {
  case SPR_H5R_GROUP: return "a group";
  case SPR_H5R_DATASET: return "a dataset";
  case SPR_H5R_NAMED_TYPE: return "a named datatype";
  case SPR_H5R_OTHER: return "an external or user-defined link";
  default: return "missing";
  }
}

/* Check that obj is a `want` (SPR_H5R_GROUP, SPR_H5R_DATASET or -1 for
 * any object). */
static int srv_need(const server *s, const char *obj, int want) {
  int k, rc = srv_kind(s, obj, &k);
  if (rc) return rc;
  if (k == SPR_H5R_MISSING) return spr_error(SPR_EHDF5, "%s: '%s' is missing", s->path, obj);
  if (k == SPR_H5R_OTHER) return spr_error(SPR_EHDF5, "%s: '%s' is %s (not followed)", s->path, obj, kind_name(k));
  if (want >= 0 && k != want)
    return spr_error(SPR_EHDF5, "%s: '%s' is %s, not %s", s->path, obj, kind_name(k), kind_name(want));
  return 0;
}

static int fill_info(const server *s, const char *what, hid_t ty, hid_t sp, spr_h5r_info *in) {
  memset(in, 0, sizeof *in);
  if (ty < 0 || sp < 0) return h5fail(s->path, "cannot inspect %s", what);
  switch (H5Tget_class(ty)) {
  case H5T_INTEGER: in->cls = SPR_H5R_INTEGER; break;
  case H5T_FLOAT: in->cls = SPR_H5R_FLOAT; break;
  case H5T_STRING: in->cls = SPR_H5R_STRING; break;
  case H5T_ENUM: in->cls = SPR_H5R_ENUM; break;
  case H5T_COMPOUND: in->cls = SPR_H5R_COMPOUND; break;
  case H5T_ARRAY: in->cls = SPR_H5R_ARRAY; break;
  case H5T_VLEN: in->cls = SPR_H5R_VLEN; break;
  default: in->cls = SPR_H5R_CLASS_OTHER; break;
  }
  in->size = H5Tget_size(ty);
  if (in->cls == SPR_H5R_INTEGER) {
    in->is_signed = H5Tget_sign(ty) == H5T_SGN_2;
    const size_t prec = H5Tget_precision(ty);
    const int off = H5Tget_offset(ty);
    in->standard = (in->size == 1 || in->size == 2 || in->size == 4 || in->size == 8) &&
                   prec == 8 * in->size && off == 0;
  } else if (in->cls == SPR_H5R_FLOAT) {
    in->standard = H5Tequal(ty, H5T_IEEE_F32LE) > 0 || H5Tequal(ty, H5T_IEEE_F32BE) > 0 ||
                   H5Tequal(ty, H5T_IEEE_F64LE) > 0 || H5Tequal(ty, H5T_IEEE_F64BE) > 0;
  } else if (in->cls == SPR_H5R_STRING) {
    in->var_str = H5Tis_variable_str(ty) > 0;
  }
  switch (H5Sget_simple_extent_type(sp)) {
  case H5S_NULL:
    in->rank = -1;
    in->npoints = 0;
    return 0;
  case H5S_SCALAR:
    in->rank = 0;
    in->npoints = 1;
    return 0;
  case H5S_SIMPLE: break;
  default: return h5fail(s->path, "cannot inspect the dataspace of %s", what);
  }
  int r = H5Sget_simple_extent_ndims(sp);
  if (r < 0) return h5fail(s->path, "cannot inspect the dataspace of %s", what);
  if (r > SPR_H5R_MAX_RANK)
    return spr_error(SPR_EHDF5, "%s: %s has rank %d (at most %d is read)", s->path, what, r, SPR_H5R_MAX_RANK);
  hsize_t d[SPR_H5R_MAX_RANK] = {0};
  if (r > 0 && H5Sget_simple_extent_dims(sp, d, NULL) < 0)
    return h5fail(s->path, "cannot inspect the dataspace of %s", what);
  in->rank = r;
  uint64_t np = 1;
  for (int k = 0; k < r; k++) {
    in->dims[k] = d[k];
    if (d[k] && np > UINT64_MAX / d[k])
      return spr_error(SPR_EHDF5, "%s: %s has an impossible shape (more than 2^64 elements)", s->path, what);
    np *= d[k];
  }
  in->npoints = np;
  return 0;
}

static int srv_dinfo(const server *s, const char *dset, spr_h5r_info *in) {
  int rc = srv_need(s, dset, SPR_H5R_DATASET);
  if (rc) return rc;
  char what[MAX_NAME + 16];
  snprintf(what, sizeof what, "dataset '%s'", dset);
  hid_t d = H5Dopen2(s->f, dset, H5P_DEFAULT);
  if (d < 0) return h5fail(s->path, "cannot open %s", what);
  hid_t ty = H5Dget_type(d), sp = H5Dget_space(d);
  rc = fill_info(s, what, ty, sp, in);
  if (ty >= 0) H5Tclose(ty);
  if (sp >= 0) H5Sclose(sp);
  H5Dclose(d);
  return rc;
}

static int srv_ainfo(const server *s, const char *obj, const char *name, int *exists,
                     spr_h5r_info *in) {
  memset(in, 0, sizeof *in);
  *exists = 0;
  int rc = srv_need(s, obj, -1);
  if (rc) return rc;
  htri_t ex = H5Aexists_by_name(s->f, obj, name, H5P_DEFAULT);
  if (ex < 0) return h5fail(s->path, "cannot look up attribute '%s' of '%s'", name, obj);
  if (!ex) return 0;
  *exists = 1;
  char what[2 * MAX_NAME + 32];
  snprintf(what, sizeof what, "attribute '%s' of '%s'", name, obj);
  hid_t a = H5Aopen_by_name(s->f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) return h5fail(s->path, "cannot open %s", what);
  hid_t ty = H5Aget_type(a), sp = H5Aget_space(a);
  rc = fill_info(s, what, ty, sp, in);
  if (ty >= 0) H5Tclose(ty);
  if (sp >= 0) H5Sclose(sp);
  H5Aclose(a);
  return rc;
}

typedef struct {
  char *buf;
  size_t len, cap;
  uint64_t n, max;
  int too_many, too_long;
} list_acc;

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *op) {
  list_acc *a = op;
  size_t l = strlen(name);
  if (a->n >= a->max) {
    a->too_many = 1;
    return 1;
  }
  if (l > MAX_LIST_NAME || a->len + l + 1 > MAX_LIST_BYTES) {
    a->too_long = 1;
    return 1;
  }
  if (a->len + l + 1 > a->cap) {
    size_t cap = a->cap ? a->cap : 4096;
    while (cap < a->len + l + 1) cap *= 2;
    char *t = realloc(a->buf, cap);
    if (!t) return -1;
    a->buf = t;
    a->cap = cap;
  }
  memcpy(a->buf + a->len, name, l + 1);
  a->len += l + 1;
  a->n++;
  return 0;
}

static int srv_list(const server *s, const char *group, uint64_t max, void **data, size_t *len) {
  int rc = srv_need(s, group, SPR_H5R_GROUP);
  if (rc) return rc;
  hid_t g = H5Gopen2(s->f, group, H5P_DEFAULT);
  if (g < 0) return h5fail(s->path, "cannot open group '%s'", group);
  list_acc a = {NULL, 0, 0, 0, max, 0, 0};
  hsize_t idx = 0;
  herr_t e = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, list_cb, &a);
  if (a.too_many)
    rc = spr_error(SPR_EHDF5, "%s: group '%s' has more than %llu entries", s->path, group,
                   (unsigned long long)max);
  else if (a.too_long)
    rc = spr_error(SPR_EHDF5, "%s: group '%s' has an entry name longer than %d bytes", s->path, group,
                   MAX_LIST_NAME);
  else if (e < 0)
    rc = h5fail(s->path, "cannot list group '%s'", group);
  H5Gclose(g);
  if (rc) {
    free(a.buf);
    return rc;
  }
  *data = a.buf;
  *len = a.len;
  return 0;
}

/* A numeric type the readers accept (see spr_h5r_info.standard). */
static int check_numeric(const server *s, const char *what, const spr_h5r_info *in) {
  if (in->cls != SPR_H5R_INTEGER && in->cls != SPR_H5R_FLOAT)
    return spr_error(SPR_EHDF5, "%s: %s is not numeric", s->path, what);
  if (!in->standard)
    return spr_error(SPR_EHDF5, "%s: %s has a non-standard %s type (%llu bytes; expected %s)", s->path,
                     what, in->cls == SPR_H5R_FLOAT ? "floating-point" : "integer",
                     (unsigned long long)in->size,
                     in->cls == SPR_H5R_FLOAT ? "IEEE float32 or float64"
                                              : "a plain 8-, 16-, 32- or 64-bit integer");
  return 0;
}

static int srv_read(const server *s, const req_hdr *rq, const char *dset, void **data, size_t *len) {
  spr_h5r_info in;
  int rc = srv_dinfo(s, dset, &in);
  char what[MAX_NAME + 16];
  snprintf(what, sizeof what, "dataset '%s'", dset);
  if (!rc) rc = check_numeric(s, what, &in);
  if (rc) return rc;
  const size_t msize = spr_h5r_mem_size(rq->mem);
  if (!msize) return spr_error(SPR_EINVAL, "%s: reading %s: unknown memory type %d", s->path, what, rq->mem);
  if (in.rank < 0) return spr_error(SPR_EHDF5, "%s: %s has no elements (null dataspace)", s->path, what);
  uint64_t np = in.npoints;
  if (rq->rank) {
    if (rq->rank != in.rank)
      return spr_error(SPR_EINVAL, "%s: reading %s: a rank-%d selection of a rank-%d dataset", s->path,
                       what, rq->rank, in.rank);
    np = 1;
    for (int k = 0; k < in.rank; k++) {
      if (rq->count[k] > in.dims[k] || rq->start[k] > in.dims[k] - rq->count[k])
        return spr_error(SPR_EINVAL, "%s: reading %s: axis %d: start %llu count %llu outside length %llu",
                         s->path, what, k, (unsigned long long)rq->start[k],
                         (unsigned long long)rq->count[k], (unsigned long long)in.dims[k]);
      np *= rq->count[k];
    }
  }
  if (np == 0 || np > rq->max_bytes / msize || np * msize != rq->max_bytes)
    return spr_error(SPR_EINVAL, "%s: reading %s: %llu elements of %zu bytes do not fill the %llu bytes asked",
                     s->path, what, (unsigned long long)np, msize, (unsigned long long)rq->max_bytes);
  void *buf = malloc((size_t)rq->max_bytes);
  if (!buf) return spr_error(SPR_ENOMEM, "%s: reading %s: cannot allocate %llu bytes", s->path, what,
                             (unsigned long long)rq->max_bytes);
  hid_t d = H5Dopen2(s->f, dset, H5P_DEFAULT), fs = -1, ms = -1;
  if (d < 0) rc = h5fail(s->path, "cannot open %s", what);
  if (!rc && (fs = H5Dget_space(d)) < 0) rc = h5fail(s->path, "cannot inspect %s", what);
  if (!rc && rq->rank) {
    hsize_t st[SPR_H5R_MAX_RANK], ct[SPR_H5R_MAX_RANK];
    for (int k = 0; k < in.rank; k++) st[k] = rq->start[k], ct[k] = rq->count[k];
    if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, NULL, ct, NULL) < 0)
      rc = h5fail(s->path, "cannot select in %s", what);
  }
  hsize_t m1 = np;
  if (!rc && (ms = H5Screate_simple(1, &m1, NULL)) < 0) rc = h5fail(s->path, "cannot make a dataspace");
  if (!rc && H5Dread(d, mem_type(rq->mem), ms, fs, H5P_DEFAULT, buf) < 0)
    rc = h5fail(s->path, "cannot read %s", what);
  if (ms >= 0) H5Sclose(ms);
  if (fs >= 0) H5Sclose(fs);
  if (d >= 0) H5Dclose(d);
  if (rc) {
    free(buf);
    return rc;
  }
  *data = buf;
  *len = (size_t)rq->max_bytes;
  return 0;
}

static int srv_aread(const server *s, const req_hdr *rq, const char *obj, const char *name,
                     void **data, size_t *len) {
  spr_h5r_info in;
  int ex, rc = srv_ainfo(s, obj, name, &ex, &in);
  char what[2 * MAX_NAME + 32];
  snprintf(what, sizeof what, "attribute '%s' of '%s'", name, obj);
  if (!rc && !ex) rc = spr_error(SPR_EHDF5, "%s: %s is missing", s->path, what);
  if (!rc) rc = check_numeric(s, what, &in);
  if (rc) return rc;
  const size_t msize = spr_h5r_mem_size(rq->mem);
  if (!msize) return spr_error(SPR_EINVAL, "%s: reading %s: unknown memory type %d", s->path, what, rq->mem);
  if (in.npoints == 0 || in.npoints > rq->max_bytes / msize || in.npoints * msize != rq->max_bytes)
    return spr_error(SPR_EINVAL, "%s: reading %s: %llu elements of %zu bytes do not fill the %llu bytes asked",
                     s->path, what, (unsigned long long)in.npoints, msize,
                     (unsigned long long)rq->max_bytes);
  void *buf = malloc((size_t)rq->max_bytes);
  if (!buf) return spr_error(SPR_ENOMEM, "%s: reading %s: out of memory", s->path, what);
  hid_t a = H5Aopen_by_name(s->f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0 || H5Aread(a, mem_type(rq->mem), buf) < 0) rc = h5fail(s->path, "cannot read %s", what);
  if (a >= 0) H5Aclose(a);
  if (rc) {
    free(buf);
    return rc;
  }
  *data = buf;
  *len = (size_t)rq->max_bytes;
  return 0;
}

/* A scalar string of a dataset (attr NULL) or attribute. */
static int srv_str(const server *s, const char *obj, const char *attr, uint64_t max_len, void **data,
                   size_t *len) {
  char what[2 * MAX_NAME + 32];
  int rc;
  hid_t id = -1;
  spr_h5r_info in;
  if (attr) {
    int ex;
    snprintf(what, sizeof what, "attribute '%s' of '%s'", attr, obj);
    rc = srv_ainfo(s, obj, attr, &ex, &in);
    if (!rc && !ex) rc = spr_error(SPR_EHDF5, "%s: %s is missing", s->path, what);
    if (!rc && (id = H5Aopen_by_name(s->f, obj, attr, H5P_DEFAULT, H5P_DEFAULT)) < 0)
      rc = h5fail(s->path, "cannot open %s", what);
  } else {
    snprintf(what, sizeof what, "dataset '%s'", obj);
    rc = srv_dinfo(s, obj, &in);
    if (!rc && (id = H5Dopen2(s->f, obj, H5P_DEFAULT)) < 0) rc = h5fail(s->path, "cannot open %s", what);
  }
  if (!rc && in.cls != SPR_H5R_STRING) rc = spr_error(SPR_EHDF5, "%s: %s is not a string", s->path, what);
  if (!rc && in.npoints != 1)
    rc = spr_error(SPR_EHDF5, "%s: %s is not one string (%llu elements)", s->path, what,
                   (unsigned long long)in.npoints);
  hid_t ft = -1, mt = -1;
  char *out = NULL;
  if (!rc) {
    ft = attr ? H5Aget_type(id) : H5Dget_type(id);
    mt = H5Tcopy(H5T_C_S1);
    /* libhdf5 does not convert between character sets: read in the file's
     * (ASCII from sprintsim, UTF-8 from h5py) */
    if (ft < 0 || mt < 0 || H5Tset_cset(mt, H5Tget_cset(ft)) < 0) rc = h5fail(s->path, "cannot inspect %s", what);
  }
  if (!rc && in.var_str) {
    char *v = NULL;
    if (H5Tset_size(mt, H5T_VARIABLE) < 0 ||
        (attr ? H5Aread(id, mt, &v) : H5Dread(id, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v)) < 0)
      rc = h5fail(s->path, "cannot read %s", what);
    else {
      size_t l = v ? strlen(v) : 0;
      if (l > max_len) rc = spr_error(SPR_EHDF5, "%s: %s is %zu bytes long (at most %llu)", s->path, what, l,
                                      (unsigned long long)max_len);
      else if (!(out = malloc(l + 1))) rc = spr_error(SPR_ENOMEM, "%s: out of memory reading %s", s->path, what);
      else {
        if (l) memcpy(out, v, l);
        out[l] = '\0';
      }
    }
    if (v) H5free_memory(v);
  } else if (!rc) {
    /* fixed length: one byte more than the file's, NUL-terminated, so a
     * NULLPAD string that fills its size (h5py's np.bytes_) keeps its last
     * character */
    const uint64_t sz = in.size;
    if (sz == 0 || sz > MAX_STR) {
      rc = spr_error(SPR_EHDF5, "%s: %s has a fixed length of %llu bytes (at most %u)", s->path, what,
                     (unsigned long long)sz, MAX_STR);
    } else if (!(out = calloc((size_t)sz + 1, 1))) {
      rc = spr_error(SPR_ENOMEM, "%s: out of memory reading %s", s->path, what);
    } else if (H5Tset_size(mt, (size_t)sz + 1) < 0 || H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0 ||
               (attr ? H5Aread(id, mt, out) : H5Dread(id, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, out)) < 0) {
      rc = h5fail(s->path, "cannot read %s", what);
    } else {
      out[sz] = '\0';
      if (strlen(out) > max_len)
        rc = spr_error(SPR_EHDF5, "%s: %s is %zu bytes long (at most %llu)", s->path, what, strlen(out),
                       (unsigned long long)max_len);
    }
  }
  if (mt >= 0) H5Tclose(mt);
  if (ft >= 0) H5Tclose(ft);
  if (id >= 0) {
    if (attr) H5Aclose(id);
    else H5Dclose(id);
  }
  if (rc) {
    free(out);
    return rc;
  }
  *data = out;
  *len = strlen(out) + 1;
  return 0;
}

static int srv_open(server *s, const char *h5path) {
  s->f = -1;
  htri_t is = H5Fis_hdf5(h5path);
  if (is <= 0) return spr_error(SPR_EHDF5, "%s: not an HDF5 file", s->path);
  s->f = H5Fopen(h5path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (s->f < 0) return h5fail(s->path, "cannot open the HDF5 file");
  return 0;
}

/* One request; its data (when any) into *data (malloc) and *len. */
static int srv_handle(server *s, const req_hdr *rq, const char *n1, const char *n2, void **data,
                      size_t *len) {
  *data = NULL;
  *len = 0;
  switch (rq->op) {
  case OP_KIND: {
    int32_t *k = malloc(sizeof *k);
    if (!k) return spr_error(SPR_ENOMEM, "%s: out of memory", s->path);
    int kind, rc = srv_kind(s, n1, &kind);
    if (rc) {
      free(k);
      return rc;
    }
    *k = kind;
    *data = k;
    *len = sizeof *k;
    return 0;
  }
  case OP_LIST: return srv_list(s, n1, rq->limit, data, len);
  case OP_DINFO:
  case OP_AINFO: {
    struct {
      int32_t exists;
      spr_h5r_info in;
    } *r = calloc(1, sizeof *r);
    if (!r) return spr_error(SPR_ENOMEM, "%s: out of memory", s->path);
    int ex = 1, rc = rq->op == OP_DINFO ? srv_dinfo(s, n1, &r->in) : srv_ainfo(s, n1, n2, &ex, &r->in);
    if (rc) {
      free(r);
      return rc;
    }
    r->exists = ex;
    *data = r;
    *len = sizeof *r;
    return 0;
  }
  case OP_READ: return srv_read(s, rq, n1, data, len);
  case OP_AREAD: return srv_aread(s, rq, n1, n2, data, len);
  case OP_STR: return srv_str(s, n1, n2[0] ? n2 : NULL, rq->max_bytes, data, len);
  default: return spr_error(SPR_EINVAL, "%s: unknown request %u", s->path, rq->op);
  }
}

/* --- socket I/O -------------------------------------------------------------- */

static int send_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Blocking read of exactly n bytes: 0, or -1 (error or end of file). */
static int recv_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Read exactly n bytes before the monotonic time `deadline`: 0, -1 (end
 * of file or error), -2 (timeout). */
static int recv_until(int fd, void *buf, size_t n, double deadline) {
  char *p = buf;
  while (n) {
    double left = deadline - now_s();
    if (left <= 0) return -2;
    struct pollfd pf = {fd, POLLIN, 0};
    int ms = left > 1e6 ? 1000000000 : (int)(left * 1000) + 1;
    int pr = poll(&pf, 1, ms);
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) return -1;
    if (pr == 0) continue;
    ssize_t r = read(fd, p, n);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* --- the child ------------------------------------------------------------ */

/* Close every descriptor from `from` up. */
static void close_from(int from) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)from, ~0U, 0) == 0) return;
#endif
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (int fd = from; fd < max; fd++) close(fd);
}

/* Virtual memory of this process in bytes (0 when unknown). */
static uint64_t vm_bytes(void) {
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char b[64];
  ssize_t r = read(fd, b, sizeof b - 1);
  close(fd);
  if (r <= 0) return 0;
  b[r] = '\0';
  unsigned long long pages = strtoull(b, NULL, 10);
  long ps = sysconf(_SC_PAGESIZE);
  return ps > 0 ? pages * (uint64_t)ps : 0;
}

/* The limits of one request: CPU seconds from now, address space for the
 * request's data (twice: the result and a conversion buffer) plus
 * mem_bytes.  Only soft limits move; hard limits stay as inherited. */
static void request_limits(const spr_h5r_limits *lim, uint64_t data_bytes) {
  struct rusage ru;
  struct rlimit rl;
  if (getrusage(RUSAGE_SELF, &ru) == 0 && getrlimit(RLIMIT_CPU, &rl) == 0) {
    double used = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
                  (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
    rlim_t want = (rlim_t)ceil(used) + (rlim_t)ceil(lim->cpu_s);
    if (rl.rlim_max == RLIM_INFINITY || want <= rl.rlim_max) {
      rl.rlim_cur = want;
      setrlimit(RLIMIT_CPU, &rl);
    }
  }
  uint64_t vm = vm_bytes();
  if (vm && getrlimit(RLIMIT_AS, &rl) == 0) {
    uint64_t extra = lim->mem_bytes, d2 = data_bytes > UINT64_MAX / 4 ? UINT64_MAX / 4 : 2 * data_bytes;
    uint64_t want = vm + extra + d2;
    if (want < vm) want = UINT64_MAX; /* overflow */
    if (rl.rlim_max == RLIM_INFINITY || want <= rl.rlim_max) {
      rl.rlim_cur = (rlim_t)want;
      setrlimit(RLIMIT_AS, &rl);
    }
  }
}

static void reply(int sock, int rc, const char *msg, const void *data, size_t len) {
  rep_hdr h = {rc, 0, rc ? 0 : len};
  size_t ml = rc ? strlen(msg) : 0;
  if (ml > MAX_MSG - 1) ml = MAX_MSG - 1;
  h.msg_len = (uint32_t)ml;
  if (send_all(sock, &h, sizeof h) || (ml && send_all(sock, msg, ml)) || (!rc && len && send_all(sock, data, len)))
    _exit(0); /* the parent is gone */
}

static void child_main(int sock, int fd, const char *path, const spr_h5r_limits *lim)
    __attribute__((noreturn));
static void child_main(int sock, int fd, const char *path, const spr_h5r_limits *lim) {
  /* descriptors: the socket as 3, the file as 4, standard streams to
   * /dev/null (stderr kept on request), nothing else */
  int s2 = fcntl(sock, F_DUPFD, 10), f2 = fcntl(fd, F_DUPFD, 10);
  if (s2 < 0 || f2 < 0 || dup2(s2, 3) < 0 || dup2(f2, 4) < 0) _exit(111);
  close_from(5);
  int dn = open("/dev/null", O_RDWR);
  if (dn >= 0) {
    dup2(dn, 0);
    dup2(dn, 1);
    if (!lim->keep_stderr) dup2(dn, 2);
    if (dn > 4) close(dn);
  }
  sock = 3;
  /* signals: default actions (a crash ends the child), except those a
   * terminal or a supervisor sends to the whole process group: the parent
   * decides when its reader ends (by closing the socket) */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &sa, NULL);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(NULL);
  struct rlimit zero = {0, 0};
  setrlimit(RLIMIT_CORE, &zero);
  struct rlimit fs;
  if (getrlimit(RLIMIT_FSIZE, &fs) == 0) { /* it writes no file */
    fs.rlim_cur = 0;
    setrlimit(RLIMIT_FSIZE, &fs);
  }
  /* a watchdog over the start and each request: a child that waits on a
   * lock copied held from the parent's other threads, or loops, ends
   * itself a little after the parent would have killed it, so none is
   * left behind when the parent itself is killed */
  const unsigned watchdog = (unsigned)ceil(lim->wall_s) + 5;
  alarm(watchdog);
  request_limits(lim, 0);
  /* libhdf5: quiet, no plugins (a crafted file must not load code) */
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  H5PLset_loading_state(0);
  char h5path[64];
  snprintf(h5path, sizeof h5path, "/proc/self/fd/4");
  if (access(h5path, R_OK) != 0) snprintf(h5path, sizeof h5path, "%s", "");
  server s = {-1, path};
  char n1[MAX_NAME], n2[MAX_NAME];
  for (;;) {
    req_hdr rq;
    alarm(0); /* waiting for the parent's next request takes any time */
    if (recv_all(sock, &rq, sizeof rq)) _exit(0);
    alarm(watchdog);
    if (rq.n1 < 1 || rq.n1 > MAX_NAME || rq.n2 < 1 || rq.n2 > MAX_NAME) _exit(112);
    if (recv_all(sock, n1, rq.n1) || recv_all(sock, n2, rq.n2)) _exit(0);
    n1[rq.n1 - 1] = n2[rq.n2 - 1] = '\0';
    uint64_t data_bytes = rq.op == OP_READ || rq.op == OP_AREAD || rq.op == OP_STR ? rq.max_bytes : 0;
    request_limits(lim, data_bytes);
    int rc;
    void *data = NULL;
    size_t len = 0;
    spr_error_clear();
    if (rq.op == OP_OPEN) {
      rc = s.f >= 0 ? spr_error(SPR_EINVAL, "%s: opened twice", path) : srv_open(&s, h5path[0] ? h5path : path);
    } else if (s.f < 0) {
      rc = spr_error(SPR_EINVAL, "%s: not open", path);
    } else {
      rc = srv_handle(&s, &rq, n1, n2, &data, &len);
    }
    reply(sock, rc, spr_errmsg(), data, len);
    free(data);
  }
}

/* --- the parent -------------------------------------------------------------- */

static const char *sig_name(int sig) {
  switch (sig) {
  case SIGSEGV: return "SIGSEGV";
  case SIGBUS: return "SIGBUS";
  case SIGABRT: return "SIGABRT";
  case SIGFPE: return "SIGFPE";
  case SIGILL: return "SIGILL";
  case SIGKILL: return "SIGKILL";
  case SIGXCPU: return "SIGXCPU";
  case SIGXFSZ: return "SIGXFSZ";
  case SIGSYS: return "SIGSYS";
  case SIGTRAP: return "SIGTRAP";
  default: return "a signal";
  }
}

/* The request, for messages: "reading dataset '/x'". */
static void describe(char *buf, size_t n, int op, const char *n1, const char *n2) {
  switch (op) {
  case OP_OPEN: snprintf(buf, n, "opening it"); break;
  case OP_KIND: snprintf(buf, n, "looking up '%.300s'", n1); break;
  case OP_LIST: snprintf(buf, n, "listing group '%.300s'", n1); break;
  case OP_DINFO: snprintf(buf, n, "inspecting dataset '%.300s'", n1); break;
  case OP_AINFO: snprintf(buf, n, "inspecting attribute '%.200s' of '%.200s'", n2, n1); break;
  case OP_READ: snprintf(buf, n, "reading dataset '%.300s'", n1); break;
  case OP_AREAD: snprintf(buf, n, "reading attribute '%.200s' of '%.200s'", n2, n1); break;
  case OP_STR:
    if (n2 && n2[0]) snprintf(buf, n, "reading attribute '%.200s' of '%.200s'", n2, n1);
    else snprintf(buf, n, "reading dataset '%.300s'", n1);
    break;
  default: snprintf(buf, n, "a request"); break;
  }
}

/* Reap the child (SIGKILL first when `kill_it`): its wait status, or -1. */
static int reap(spr_h5r *h, int kill_it) {
  if (h->pid <= 0) return -1;
  if (kill_it) kill(h->pid, SIGKILL);
  int st = -1;
  pid_t w;
  do w = waitpid(h->pid, &st, 0);
  while (w < 0 && errno == EINTR);
  h->pid = -1;
  return w < 0 ? -1 : st;
}

/* The child failed during request `op`: end it, record why, return the
 * error. */
static int child_failed(spr_h5r *h, int op, const char *n1, const char *n2, int timeout) {
  char req[700], msg[1024];
  describe(req, sizeof req, op, n1, n2);
  if (h->sock >= 0) close(h->sock);
  h->sock = -1;
  int st = reap(h, 1);
  if (timeout || (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)) /* its own watchdog */
    snprintf(msg, sizeof msg, "%s: no answer from the HDF5 library within %g s while %s; stopped (a damaged or crafted %s?)",
             h->path, h->lim.wall_s, req, h->what);
  else if (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU)
    snprintf(msg, sizeof msg, "%s: the HDF5 library used more than %g s of CPU time while %s; stopped (a loop on a damaged or crafted %s?)",
             h->path, h->lim.cpu_s, req, h->what);
  else if (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
    snprintf(msg, sizeof msg, "%s: the process reading the %s was killed (SIGKILL, out of memory?) while %s",
             h->path, h->what, req);
  else if (st != -1 && WIFSIGNALED(st))
    snprintf(msg, sizeof msg, "%s: the HDF5 library crashed (%s) while %s; the %s is damaged or crafted",
             h->path, sig_name(WTERMSIG(st)), req, h->what);
  else if (st != -1 && WIFEXITED(st))
    snprintf(msg, sizeof msg, "%s: the process reading the %s ended (status %d) while %s; the file is damaged or crafted",
             h->path, h->what, WEXITSTATUS(st), req);
  else
    snprintf(msg, sizeof msg, "%s: the process reading the %s was lost while %s", h->path, h->what, req);
  h->dead = 1;
  h->dead_rc = SPR_EHDF5;
  free(h->dead_msg);
  h->dead_msg = strdup(msg);
  return spr_error(SPR_EHDF5, "%s", msg);
}

/* One request.  Data: into out (cap bytes; exactly `exact` bytes when
 * exact > 0) or, when out is NULL, into a new buffer *outp (at most cap
 * bytes). */
static int call(spr_h5r *h, req_hdr *rq, const char *n1, const char *n2, void *out, void **outp,
                size_t cap, size_t exact, size_t *got) {
  if (got) *got = 0;
  if (outp) *outp = NULL;
  if (h->dead) return spr_error(h->dead_rc, "%s", h->dead_msg ? h->dead_msg : "HDF5 reader failed");
  if (!n2) n2 = "";
  size_t l1 = strlen(n1) + 1, l2 = strlen(n2) + 1;
  if (l1 > MAX_NAME || l2 > MAX_NAME)
    return spr_error(SPR_EINVAL, "%s: object name longer than %d bytes", h->path, MAX_NAME - 1);
  rq->n1 = (uint32_t)l1;
  rq->n2 = (uint32_t)l2;
  if (h->lim.in_process) {
    server s = {h->f, h->path};
    void *data = NULL;
    size_t len = 0;
    spr__h5_quiet q;
    spr__h5_quiet_on(&q);
    int rc = srv_handle(&s, rq, n1, n2, &data, &len);
    spr__h5_quiet_off(&q);
    if (!rc && (len > cap || (exact && len != exact)))
      rc = spr_error(SPR_EINTERNAL, "%s: %zu bytes answered, %zu expected", h->path, len, exact ? exact : cap);
    if (!rc && out) memcpy(out, data, len);
    if (!rc && outp) {
      *outp = data;
      data = NULL;
    }
    if (!rc && got) *got = len;
    free(data);
    return rc;
  }
  if (send_all(h->sock, rq, sizeof *rq) || send_all(h->sock, n1, l1) || send_all(h->sock, n2, l2))
    return child_failed(h, (int)rq->op, n1, n2, 0);
  const double deadline = now_s() + h->lim.wall_s;
  rep_hdr rp;
  int r = recv_until(h->sock, &rp, sizeof rp, deadline);
  if (r) return child_failed(h, (int)rq->op, n1, n2, r == -2);
  char req[700];
  if (rp.msg_len >= MAX_MSG || (rp.rc == 0 && rp.msg_len) || rp.rc > 0 || rp.rc < -100 ||
      (rp.rc && rp.data_len) || rp.data_len > cap || (!rp.rc && exact && rp.data_len != exact)) {
    describe(req, sizeof req, (int)rq->op, n1, n2);
    child_failed(h, (int)rq->op, n1, n2, 0);
    free(h->dead_msg);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: the process reading the %s answered out of protocol while %s (a damaged or crafted file?)",
             h->path, h->what, req);
    h->dead_msg = strdup(msg);
    return spr_error(SPR_EHDF5, "%s", msg);
  }
  char msg[MAX_MSG];
  if (rp.msg_len && (r = recv_until(h->sock, msg, rp.msg_len, deadline)))
    return child_failed(h, (int)rq->op, n1, n2, r == -2);
  msg[rp.msg_len] = '\0';
  if (rp.rc) return spr_error(rp.rc, "%s", msg);
  void *dst = out;
  if (!out && rp.data_len) {
    if (!(dst = malloc((size_t)rp.data_len + 1))) {
      /* the answer is still in the socket: the stream is lost */
      child_failed(h, (int)rq->op, n1, n2, 0);
      return spr_error(SPR_ENOMEM, "%s: out of memory for %llu bytes", h->path, (unsigned long long)rp.data_len);
    }
  }
  if (rp.data_len && (r = recv_until(h->sock, dst, (size_t)rp.data_len, deadline))) {
    if (!out) free(dst);
    return child_failed(h, (int)rq->op, n1, n2, r == -2);
  }
  if (outp) *outp = dst;
  if (got) *got = (size_t)rp.data_len;
  return 0;
}

static void init_req(req_hdr *rq, int op) {
  memset(rq, 0, sizeof *rq);
  rq->op = (uint32_t)op;
}

int spr_h5r_open(const char *path, const char *what, const spr_h5r_limits *lim, spr_h5r **out) {
  *out = NULL;
  if (!path || !*path) return spr_error(SPR_EINVAL, "HDF5 reader: no file name given");
  if (!what || !*what) what = "file";
  spr_h5r_limits L = lim ? *lim : g_lim;
  int rc = check_limits(&L);
  if (rc) return rc;
  spr_h5r *h = calloc(1, sizeof *h);
  if (!h || !(h->path = strdup(path))) {
    free(h);
    return spr_error(SPR_ENOMEM, "%s: out of memory", path);
  }
  snprintf(h->what, sizeof h->what, "%s", what);
  h->lim = L;
  h->pid = -1;
  h->sock = -1;
  h->f = -1;
  h->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (h->fd < 0) {
    rc = spr_error(SPR_EIO, "%s: cannot open %s: %s", path, what, strerror(errno));
    spr_h5r_close(h);
    return rc;
  }
  if (fstat(h->fd, &h->st0) != 0 || !S_ISREG(h->st0.st_mode)) {
    rc = spr_error(SPR_EIO, "%s: cannot open %s: %s", path, what,
                   S_ISDIR(h->st0.st_mode) ? "it is a folder" : "not a regular file");
    spr_h5r_close(h);
    return rc;
  }
  if (L.in_process) {
    server s = {-1, path};
    spr__h5_quiet q;
    spr__h5_quiet_on(&q);
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", h->fd);
    rc = srv_open(&s, access(fdpath, R_OK) == 0 ? fdpath : path);
    spr__h5_quiet_off(&q);
    h->f = s.f;
    if (rc) {
      spr_h5r_close(h);
      return rc;
    }
    *out = h;
    return 0;
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    rc = spr_error(SPR_EIO, "%s: cannot start the HDF5 reader: socketpair: %s", path, strerror(errno));
    spr_h5r_close(h);
    return rc;
  }
  /* no thread of ours is inside libhdf5 while it is copied into the child */
  spr__h5_lock();
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    child_main(sv[1], h->fd, path, &L);
  }
  int e = errno;
  spr__h5_unlock();
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    rc = spr_error(SPR_ENOMEM, "%s: cannot start the HDF5 reader process: %s", path, strerror(e));
    spr_h5r_close(h);
    return rc;
  }
  h->pid = pid;
  h->sock = sv[0];
  req_hdr rq;
  init_req(&rq, OP_OPEN);
  rc = call(h, &rq, "/", "", NULL, NULL, 0, 0, NULL);
  if (rc) {
    spr_h5r_close(h);
    return rc;
  }
  *out = h;
  return 0;
}

void spr_h5r_close(spr_h5r *h) {
  if (!h) return;
  if (h->sock >= 0) close(h->sock);
  reap(h, 1);
  if (h->f >= 0) {
    spr__h5_quiet q;
    spr__h5_quiet_on(&q);
    H5Fclose(h->f);
    spr__h5_quiet_off(&q);
  }
  if (h->fd >= 0) close(h->fd);
  free(h->dead_msg);
  free(h->path);
  free(h);
}

const char *spr_h5r_path(const spr_h5r *h) { return h->path; }

long long spr_h5r_size(const spr_h5r *h) { return (long long)h->st0.st_size; }

int spr_h5r_kind(spr_h5r *h, const char *obj, int *kind) {
  *kind = SPR_H5R_MISSING;
  if (!obj) return spr_error(SPR_EINVAL, "%s: NULL object name", h->path);
  req_hdr rq;
  init_req(&rq, OP_KIND);
  int32_t k = 0;
  int rc = call(h, &rq, obj, "", &k, NULL, sizeof k, sizeof k, NULL);
  if (!rc) {
    if (k < SPR_H5R_MISSING || k > SPR_H5R_OTHER) k = SPR_H5R_OTHER;
    *kind = k;
  }
  return rc;
}

int spr_h5r_list(spr_h5r *h, const char *group, int max, char ***names, int *n) {
  *names = NULL;
  *n = 0;
  if (!group || max < 0) return spr_error(SPR_EINVAL, "%s: bad group listing arguments", h->path);
  req_hdr rq;
  init_req(&rq, OP_LIST);
  rq.limit = (uint64_t)max;
  void *data = NULL;
  size_t len = 0;
  int rc = call(h, &rq, group, "", NULL, &data, MAX_LIST_BYTES, 0, &len);
  if (rc) return rc;
  /* count the names; the buffer must end with a NUL */
  int count = 0;
  char *b = data;
  if (len && b[len - 1] != '\0') {
    free(data);
    return spr_error(SPR_EHDF5, "%s: listing group '%s': malformed answer", h->path, group);
  }
  for (size_t i = 0; i < len; i++) count += b[i] == '\0';
  if (count > max) {
    free(data);
    return spr_error(SPR_EHDF5, "%s: listing group '%s': %d names, at most %d asked", h->path, group, count, max);
  }
  size_t arr = sizeof(char *) * (size_t)(count + 1);
  char **res = malloc(arr + len + 1);
  if (!res) {
    free(data);
    return spr_error(SPR_ENOMEM, "%s: out of memory listing group '%s'", h->path, group);
  }
  char *strs = (char *)res + arr;
  if (len) memcpy(strs, b, len);
  int k = 0;
  for (size_t i = 0; i < len; i += strlen(strs + i) + 1) res[k++] = strs + i;
  res[k] = NULL;
  free(data);
  *names = res;
  *n = count;
  return 0;
}

static int info_call(spr_h5r *h, int op, const char *obj, const char *name, int *exists,
                     spr_h5r_info *info) {
  struct {
    int32_t exists;
    spr_h5r_info in;
  } r;
  req_hdr rq;
  init_req(&rq, op);
  int rc = call(h, &rq, obj, name, &r, NULL, sizeof r, sizeof r, NULL);
  if (rc) return rc;
  /* the child's answer is not trusted: keep it self-consistent */
  if (r.in.rank < -1 || r.in.rank > SPR_H5R_MAX_RANK)
    return spr_error(SPR_EHDF5, "%s: malformed answer inspecting '%s'", h->path, obj);
  if (exists) *exists = r.exists != 0;
  if (info) *info = r.in;
  return 0;
}

int spr_h5r_dset_info(spr_h5r *h, const char *dset, spr_h5r_info *info) {
  if (!dset || !info) return spr_error(SPR_EINVAL, "%s: NULL argument", h->path);
  return info_call(h, OP_DINFO, dset, "", NULL, info);
}

int spr_h5r_attr_info(spr_h5r *h, const char *obj, const char *name, int *exists,
                      spr_h5r_info *info) {
  if (!obj || !name || !*name || !exists) return spr_error(SPR_EINVAL, "%s: NULL argument", h->path);
  spr_h5r_info tmp;
  return info_call(h, OP_AINFO, obj, name, exists, info ? info : &tmp);
}

int spr_h5r_read(spr_h5r *h, const char *dset, int mem, int rank, const uint64_t *start,
                 const uint64_t *count, void *buf, size_t bytes) {
  if (!dset || !buf || !bytes || !spr_h5r_mem_size(mem) || rank < 0 || rank > SPR_H5R_MAX_RANK ||
      (rank && (!start || !count)))
    return spr_error(SPR_EINVAL, "%s: bad arguments reading dataset '%s'", h->path, dset ? dset : "(null)");
  req_hdr rq;
  init_req(&rq, OP_READ);
  rq.mem = mem;
  rq.rank = rank;
  for (int k = 0; k < rank; k++) {
    rq.start[k] = start[k];
    rq.count[k] = count[k];
  }
  rq.max_bytes = bytes;
  int rc = spr_h5r_check(h);
  if (!rc) rc = call(h, &rq, dset, "", buf, NULL, bytes, bytes, NULL);
  if (!rc) rc = spr_h5r_check(h);
  return rc;
}

int spr_h5r_attr_read(spr_h5r *h, const char *obj, const char *name, int mem, void *buf,
                      size_t bytes) {
  if (!obj || !name || !buf || !bytes || !spr_h5r_mem_size(mem))
    return spr_error(SPR_EINVAL, "%s: bad arguments reading an attribute", h->path);
  req_hdr rq;
  init_req(&rq, OP_AREAD);
  rq.mem = mem;
  rq.max_bytes = bytes;
  int rc = call(h, &rq, obj, name, buf, NULL, bytes, bytes, NULL);
  if (!rc) rc = spr_h5r_check(h);
  return rc;
}

int spr_h5r_read_str(spr_h5r *h, const char *obj, const char *attr, size_t max_len, char **out) {
  *out = NULL;
  if (!obj || (attr && !*attr)) return spr_error(SPR_EINVAL, "%s: bad arguments reading a string", h->path);
  if (max_len > MAX_STR) max_len = MAX_STR;
  req_hdr rq;
  init_req(&rq, OP_STR);
  rq.max_bytes = max_len;
  void *data = NULL;
  size_t len = 0;
  int rc = call(h, &rq, obj, attr ? attr : "", NULL, &data, max_len + 1, 0, &len);
  if (rc) return rc;
  char *s = data;
  if (!s || len == 0 || s[len - 1] != '\0' || strlen(s) != len - 1) {
    free(data);
    return spr_error(SPR_EHDF5, "%s: reading '%s': malformed string answer", h->path, obj);
  }
  *out = s;
  return spr_h5r_check(h);
}

int spr_h5r_check(spr_h5r *h) {
  struct stat st;
  if (fstat(h->fd, &st) != 0)
    return spr_error(SPR_EIO, "%s: cannot check the %s: %s", h->path, h->what, strerror(errno));
  if (st.st_size != h->st0.st_size || st.st_mtim.tv_sec != h->st0.st_mtim.tv_sec ||
      st.st_mtim.tv_nsec != h->st0.st_mtim.tv_nsec)
    return spr_error(SPR_EIO,
                     "%s: the %s changed while it was being read (size %lld bytes at open, now %lld; "
                     "modification time %lld.%09ld at open, now %lld.%09ld); its data cannot be trusted",
                     h->path, h->what, (long long)h->st0.st_size, (long long)st.st_size,
                     (long long)h->st0.st_mtim.tv_sec, (long)h->st0.st_mtim.tv_nsec,
                     (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
  return 0;
}

int spr_h5r_content_id(spr_h5r *h, char *out, size_t n) {
  if (!h->content_id[0]) {
    int rc = spr_h5r_check(h);
    if (rc) return rc;
    uint64_t x = UINT64_C(14695981039346656037);
    unsigned char *buf = malloc(1 << 16);
    if (!buf) return spr_error(SPR_ENOMEM, "%s: out of memory", h->path);
    off_t off = 0;
    for (;;) {
      ssize_t r = pread(h->fd, buf, 1 << 16, off);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        free(buf);
        return spr_error(SPR_EIO, "%s: read error: %s", h->path, strerror(errno));
      }
      if (r == 0) break;
      for (ssize_t i = 0; i < r; i++) {
        x ^= buf[i];
        x *= UINT64_C(1099511628211);
      }
      off += r;
    }
    free(buf);
    if ((rc = spr_h5r_check(h))) return rc;
    if (off != h->st0.st_size)
      return spr_error(SPR_EIO, "%s: read %lld bytes of %lld", h->path, (long long)off,
                       (long long)h->st0.st_size);
    snprintf(h->content_id, sizeof h->content_id, "fnv1a64:%016llx", (unsigned long long)x);
  }
  snprintf(out, n, "%s", h->content_id);
  return 0;
}
