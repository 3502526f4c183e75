/* spr_trace.c - HDF5 trace files; the schema is documented in docs/trace.md.
 *
 * Every public function silences HDF5's automatic error printing for its
 * own duration (and restores the caller's handler on return), and turns an
 * HDF5 failure into spr_error(SPR_EHDF5, ...) naming the file, the object
 * and HDF5's innermost description of what went wrong.
 *
 * Determinism: object time tracking is off on the file (root group),
 * group and dataset creation property lists, and every file datatype is
 * explicitly little-endian, so the same calls in the same order give
 * byte-identical files.
 */
#include "config.h"
#include "spr_trace.h"
#include "spr_h5quiet.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_output.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT_VERSION 1
#define CHUNK_ROWS 64  /* rows per chunk of the per-head arrays */
#define DEFLATE_LEVEL 4

struct spr_trace {
  hid_t file;
  char *path;             /* final path */
  char *tmp;              /* path + ".tmp.XXXXXX" (mkstemp), being written */
  int level;              /* enum spr_trace_level */
  int layers, heads, n, d;
  int shift;              /* key_bits - key_msb_bits */
  unsigned char *written; /* [layer * heads + head]: head group written */
  int summary_written;
  int device_written;     /* /device_model written */
  int tmp_created;        /* create: the .tmp file is ours to delete */
  int failed;             /* a write failed: the file may be partial */
  int64_t *mask_rows;     /* [layer * heads + head]: rows written in chunks
                             (spr_trace_mask_rows_*), -1: not in chunks */
};

static const char *level_name(int level) {
  switch (level) {
  case SPR_TRACE_SUMMARY: return "summary";
  case SPR_TRACE_MASKS: return "masks";
  case SPR_TRACE_FULL: return "full";
  default: return NULL;
  }
}

/* --- HDF5 error handling ------------------------------------------------ */

/* HDF5's automatic error printing is silenced during each call
 * (spr_h5quiet.h). */
typedef spr__h5_quiet quiet_state;
#define quiet_on spr__h5_quiet_on
#define quiet_off spr__h5_quiet_off

#define CAUSE_LEN 256

/* Keep the most specific entry's description (H5E_WALK_UPWARD starts
 * there), shortened: a system error "file write failed: time = ...,
 * errno = 28, error message = 'No space left on device', ..." becomes
 * "file write failed: No space left on device". */
static herr_t innermost_cb(unsigned n, const H5E_error2_t *e, void *data) {
  char *out = data;
  if (n != 0 || !e || !e->desc) return 0;
  const char *d = e->desc, *em = strstr(d, "error message = '"), *colon = strchr(d, ':');
  if (em && colon && colon < em) {
    em += strlen("error message = '");
    const char *q = strchr(em, '\'');
    int el = q ? (int)(q - em) : (int)strlen(em);
    snprintf(out, CAUSE_LEN, "%.*s: %.*s", (int)(colon - d), d, el, em);
  } else {
    snprintf(out, CAUSE_LEN, "%s", d);
  }
  for (char *p = out; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
  return 0;
}

/* Record an SPR_EHDF5 error "<file>: <what> (HDF5: <innermost cause>)".
 * Must run before any other HDF5 call clears the error stack. */
static int h5_fail(const char *file, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int h5_fail(const char *file, const char *fmt, ...) {
  char what[512], cause[CAUSE_LEN] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_cb, cause);
  if (cause[0])
    return spr_error(SPR_EHDF5, "%s: %s (HDF5: %s)", file, what, cause);
  return spr_error(SPR_EHDF5, "%s: %s", file, what);
}

static void close_id(hid_t id) {
  if (id < 0) return;
  switch (H5Iget_type(id)) {
  case H5I_FILE: H5Fclose(id); break;
  case H5I_GROUP: H5Gclose(id); break;
  case H5I_DATASET: H5Dclose(id); break;
  case H5I_DATASPACE: H5Sclose(id); break;
  case H5I_DATATYPE: H5Tclose(id); break;
  case H5I_ATTR: H5Aclose(id); break;
  case H5I_GENPROP_LST: H5Pclose(id); break;
  default: break;
  }
}

/* Close a group, dataset or attribute `obj`; data may reach the file only
 * now, so a failure is an error.  Returns rc, or the close's error when rc
 * is 0. */
static int close_obj(const char *file, hid_t id, const char *obj, int rc) {
  herr_t e;
  switch (H5Iget_type(id)) {
  case H5I_GROUP: e = H5Gclose(id); break;
  case H5I_DATASET: e = H5Dclose(id); break;
  case H5I_ATTR: e = H5Aclose(id); break;
  default: e = -1; break;
  }
  if (e < 0 && !rc) rc = h5_fail(file, "cannot finish writing '%s' (close failed)", obj);
  return rc;
}

/* --- small writers ------------------------------------------------------ */

/* A fixed-length, null-terminated ASCII string type holding s. */
static hid_t str_type(const char *s) {
  hid_t ty = H5Tcopy(H5T_C_S1);
  if (ty < 0) return ty;
  if (H5Tset_size(ty, strlen(s) + 1) < 0 || H5Tset_strpad(ty, H5T_STR_NULLTERM) < 0 ||
      H5Tset_cset(ty, H5T_CSET_ASCII) < 0) {
    H5Tclose(ty);
    return -1;
  }
  return ty;
}

/* Scalar attribute `name` on loc (the object `obj`, for messages). */
static int put_attr(const spr_trace *t, hid_t loc, const char *obj, const char *name,
                    hid_t ftype, hid_t mtype, const void *val) {
  hid_t sp = H5Screate(H5S_SCALAR), a = -1;
  int ok = sp >= 0 && (a = H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
           H5Awrite(a, mtype, val) >= 0;
  int rc = ok ? 0 : h5_fail(t->tmp, "cannot write attribute '%s' of '%s'", name, obj);
  if (a >= 0 && H5Aclose(a) < 0 && !rc)
    rc = h5_fail(t->tmp, "cannot close attribute '%s' of '%s'", name, obj);
  close_id(sp);
  return rc;
}

static int put_attr_str(const spr_trace *t, hid_t loc, const char *obj, const char *name,
                        const char *s) {
  hid_t ty = str_type(s);
  if (ty < 0) return h5_fail(t->tmp, "cannot make string type for attribute '%s' of '%s'", name, obj);
  int rc = put_attr(t, loc, obj, name, ty, ty, s);
  H5Tclose(ty);
  return rc;
}

static int put_attr_f64(const spr_trace *t, hid_t loc, const char *obj, const char *name,
                        double v) {
  return put_attr(t, loc, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

static int put_attr_i32(const spr_trace *t, hid_t loc, const char *obj, const char *name,
                        int32_t v) {
  return put_attr(t, loc, obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, &v);
}

static int unit_desc(const spr_trace *t, hid_t loc, const char *obj, const char *unit,
                     const char *desc) {
  int rc = put_attr_str(t, loc, obj, "unit", unit);
  if (!rc) rc = put_attr_str(t, loc, obj, "description", desc);
  return rc;
}

/* Group at absolute path `gpath`, times untracked.  Returns its id or a
 * negative error code. */
static hid_t make_group(const spr_trace *t, const char *gpath) {
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE), g = -1;
  if (gcpl >= 0 && H5Pset_obj_track_times(gcpl, 0) >= 0)
    g = H5Gcreate2(t->file, gpath, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  if (g < 0) {
    int rc = h5_fail(t->tmp, "cannot create group '%s'", gpath);
    close_id(gcpl);
    return rc;
  }
  H5Pclose(gcpl);
  return g;
}

/* Dataset at absolute path `dpath` of `rank` (0: scalar) and dims, filled
 * from buf (type mtype; may be NULL when there are no elements).  Rank-2
 * datasets with compress set are chunked (CHUNK_ROWS rows, full width) and
 * shuffled + deflated.  Returns the open dataset in *out when out is not
 * NULL (the caller closes it), else closes it. */
static int put_dset(const spr_trace *t, const char *dpath, hid_t ftype, hid_t mtype,
                    int rank, const hsize_t *dims, int compress, const void *buf,
                    hid_t *out) {
  hid_t sp = -1, dcpl = -1, ds = -1;
  const char *step = "cannot create dataspace of";
  hssize_t nelem;
  sp = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
  if (sp < 0) goto fail;
  step = "cannot set creation properties of";
  if ((dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 || H5Pset_obj_track_times(dcpl, 0) < 0)
    goto fail;
  if (compress && rank == 2 && dims[0] > 0 && dims[1] > 0) {
    hsize_t chunk[2] = {dims[0] < CHUNK_ROWS ? dims[0] : CHUNK_ROWS, dims[1]};
    if (H5Pset_chunk(dcpl, 2, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 ||
        H5Pset_deflate(dcpl, DEFLATE_LEVEL) < 0 ||
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0)
      goto fail;
  }
  step = "cannot create dataset";
  if ((ds = H5Dcreate2(t->file, dpath, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0)
    goto fail;
  step = "cannot write dataset";
  nelem = H5Sget_simple_extent_npoints(sp);
  if (nelem < 0) goto fail;
  if (nelem > 0 && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) goto fail;
  H5Pclose(dcpl);
  H5Sclose(sp);
  if (out)
    *out = ds;
  else if (H5Dclose(ds) < 0)
    return h5_fail(t->tmp, "cannot close dataset '%s'", dpath);
  return 0;
fail:;
  int rc = h5_fail(t->tmp, "%s '%s'", step, dpath);
  close_id(ds);
  close_id(dcpl);
  close_id(sp);
  return rc;
}

/* put_dset plus "unit" and "description" attributes; closes the dataset
 * unless out is given. */
static int put_dset_ud(const spr_trace *t, const char *dpath, hid_t ftype, hid_t mtype,
                       int rank, const hsize_t *dims, int compress, const void *buf,
                       const char *unit, const char *desc, hid_t *out) {
  hid_t ds = -1;
  int rc = put_dset(t, dpath, ftype, mtype, rank, dims, compress, buf, &ds);
  if (rc) return rc;
  rc = unit_desc(t, ds, dpath, unit, desc);
  if (rc || !out) return close_obj(t->tmp, ds, dpath, rc);
  *out = ds;
  return 0;
}

static int put_dset_str(const spr_trace *t, const char *dpath, const char *s, hid_t *out) {
  hid_t ty = str_type(s);
  if (ty < 0) return h5_fail(t->tmp, "cannot make string type for '%s'", dpath);
  int rc = put_dset(t, dpath, ty, ty, 0, NULL, 0, s, out);
  H5Tclose(ty);
  return rc;
}

/* --- create --------------------------------------------------------------- */

/* Parse the comma-separated doubles of a list key into a new array. */
static int parse_list(const char *text, double **out, hsize_t *count) {
  size_t cap = 1;
  for (const char *p = text; *p; p++) cap += *p == ',';
  double *v = malloc(cap * sizeof *v);
  if (!v) return spr_error(SPR_ENOMEM, "trace: out of memory");
  hsize_t n = 0;
  const char *p = text;
  while (*p == ' ') p++;
  while (*p) {
    char *end;
    errno = 0;
    double x = strtod(p, &end);
    if (end == p || errno == ERANGE) {
      free(v);
      return spr_error(SPR_EINTERNAL, "trace: cannot parse list value '%s'", text);
    }
    v[n++] = x;
    p = end;
    while (*p == ' ' || *p == ',') p++;
  }
  *out = v;
  *count = n;
  return 0;
}

/* /config: the INI text and one typed dataset per key. */
static int write_config(spr_trace *t, const spr_config *c) {
  char *ini = spr_config_to_ini(c);
  if (!ini) return spr_error(SPR_ENOMEM, "%s: out of memory formatting the configuration", t->tmp);
  int rc = 0;
  hid_t g = make_group(t, "/config");
  if (g < 0) { free(ini); return (int)g; }
  if ((rc = close_obj(t->tmp, g, "/config", 0))) { free(ini); return rc; }
  hid_t ds = -1;
  rc = put_dset_str(t, "/config/ini", ini, &ds);
  free(ini);
  if (rc) return rc;
  rc = put_attr_str(t, ds, "/config/ini", "description",
                    "resolved configuration as INI text; parsing it gives the same configuration");
  rc = close_obj(t->tmp, ds, "/config/ini", rc);
  if (rc) return rc;

  char small[128], dpath[256];
  for (int i = 0; i < spr_config_nkeys() && !rc; i++) {
    const spr_config_key_info *k = spr_config_key(i);
    char gpath[160];
    snprintf(gpath, sizeof gpath, "/config/%s", k->section);
    htri_t ex = H5Lexists(t->file, gpath, H5P_DEFAULT);
    if (ex < 0) return h5_fail(t->tmp, "cannot look up group '%s'", gpath);
    if (!ex) {
      if ((g = make_group(t, gpath)) < 0) return (int)g;
      if ((rc = close_obj(t->tmp, g, gpath, 0))) return rc;
    }
    snprintf(dpath, sizeof dpath, "%s/%s", gpath, k->name);

    int need = spr_config_format(c, i, NULL, 0);
    char *text = (size_t)need < sizeof small ? small : malloc((size_t)need + 1);
    if (!text) return spr_error(SPR_ENOMEM, "%s: out of memory formatting '%s'", t->tmp, dpath);
    spr_config_format(c, i, text, (size_t)need + 1);

    ds = -1;
    switch (k->type) {
    case SPR_KEY_INT: {
      int32_t v = (int32_t)strtol(text, NULL, 10);
      rc = put_dset(t, dpath, H5T_STD_I32LE, H5T_NATIVE_INT32, 0, NULL, 0, &v, &ds);
      break;
    }
    case SPR_KEY_U64: {
      uint64_t v = (uint64_t)strtoull(text, NULL, 10);
      rc = put_dset(t, dpath, H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, NULL, 0, &v, &ds);
      break;
    }
    case SPR_KEY_DOUBLE: {
      double v = strtod(text, NULL); /* "%.17g": exact round trip */
      rc = put_dset(t, dpath, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL, 0, &v, &ds);
      break;
    }
    case SPR_KEY_BOOL: {
      int8_t v = !strcmp(text, "true");
      rc = put_dset(t, dpath, H5T_STD_I8LE, H5T_NATIVE_INT8, 0, NULL, 0, &v, &ds);
      break;
    }
    case SPR_KEY_ENUM:
    case SPR_KEY_STRING:
      rc = put_dset_str(t, dpath, text, &ds);
      break;
    case SPR_KEY_LIST: {
      double *v = NULL;
      hsize_t cnt = 0;
      rc = parse_list(text, &v, &cnt);
      if (!rc)
        rc = put_dset(t, dpath, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &cnt, 0, v, &ds);
      free(v);
      break;
    }
    default:
      rc = spr_error(SPR_EINTERNAL, "trace: key '%s.%s' has unknown type %d", k->section,
                     k->name, k->type);
    }
    if (text != small) free(text);
    if (rc) return rc;
    rc = put_attr_str(t, ds, dpath, "unit", k->unit[0] ? k->unit : "1");
    if (!rc) rc = put_attr_str(t, ds, dpath, "doc", k->doc);
    rc = close_obj(t->tmp, ds, dpath, rc);
  }
  return rc;
}

static int check_filters(const char *tmp) {
  static const struct { H5Z_filter_t id; const char *name; } need[] = {
    {H5Z_FILTER_DEFLATE, "deflate"}, {H5Z_FILTER_SHUFFLE, "shuffle"}};
  for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
    unsigned info = 0;
    htri_t av = H5Zfilter_avail(need[i].id);
    if (av < 0) return h5_fail(tmp, "cannot query the %s filter", need[i].name);
    if (!av || H5Zget_filter_info(need[i].id, &info) < 0 ||
        !(info & H5Z_FILTER_CONFIG_ENCODE_ENABLED))
      return spr_error(SPR_EHDF5,
                       "%s: this HDF5 library cannot encode with the %s filter, which trace levels masks and full need",
                       tmp, need[i].name);
  }
  return 0;
}

static void trace_free(spr_trace *t) {
  if (!t) return;
  free(t->path);
  free(t->tmp);
  free(t->written);
  free(t->mask_rows);
  free(t);
}

static int create_body(spr_trace *t, const spr_config *c, const char *version) {
  int rc;
  /* Create the file ourselves first: a file-system failure then carries
   * errno's text rather than HDF5's stack. */
  int fd = mkstemp(t->tmp); /* a fresh name: runs writing the same path do not collide */
  if (fd < 0) return spr_error(SPR_EIO, "%s: cannot create trace file: %s", t->tmp, strerror(errno));
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, 0666 & ~mask); /* mkstemp makes 0600; a trace is an ordinary file */
  close(fd);
  t->tmp_created = 1;

  if (t->level >= SPR_TRACE_MASKS && (rc = check_filters(t->tmp))) return rc;

  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  if (fcpl < 0 || H5Pset_obj_track_times(fcpl, 0) < 0) {
    rc = h5_fail(t->tmp, "cannot make the file creation property list");
    close_id(fcpl);
    return rc;
  }
  /* through the output driver: a full disk is kept as an error of this
   * trace, never a failed flush libhdf5 cannot recover from
   * (core/spr_output.h) */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) rc = h5_fail(t->tmp, "cannot make the file access property list");
  else rc = spr__h5_out_fapl(fapl, t->tmp);
  if (!rc && (t->file = H5Fcreate(t->tmp, H5F_ACC_TRUNC, fcpl, fapl)) < 0)
    rc = h5_fail(t->tmp, "cannot create HDF5 file");
  close_id(fapl);
  H5Pclose(fcpl);
  if (rc) return rc;

  /* root attributes */
  hid_t root = H5Gopen2(t->file, "/", H5P_DEFAULT);
  if (root < 0) return h5_fail(t->tmp, "cannot open group '/'");
  uint64_t seed = c->seed;
  int32_t fv = FORMAT_VERSION;
  int8_t complete = 0;
  rc = put_attr_str(t, root, "/", "program", "sprintsim");
  if (!rc) rc = put_attr_str(t, root, "/", "version", version);
  if (!rc) rc = put_attr(t, root, "/", "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &seed);
  if (!rc) rc = put_attr_str(t, root, "/", "trace_level", level_name(t->level));
  if (!rc) rc = put_attr(t, root, "/", "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, &fv);
  if (!rc) rc = put_attr(t, root, "/", "complete", H5T_STD_I8LE, H5T_NATIVE_INT8, &complete);
  if ((rc = close_obj(t->tmp, root, "/", rc))) return rc;

  if ((rc = write_config(t, c))) return rc;

  hid_t g = make_group(t, "/layers");
  if (g < 0) return (int)g;
  if ((rc = close_obj(t->tmp, g, "/layers", 0))) return rc;
  for (int l = 0; l < t->layers; l++) {
    char gpath[64];
    snprintf(gpath, sizeof gpath, "/layers/layer_%02d", l);
    if ((g = make_group(t, gpath)) < 0) return (int)g;
    if ((rc = close_obj(t->tmp, g, gpath, 0))) return rc;
  }
  return 0;
}

int spr_trace_create(const char *path, const spr_config *c, const char *version,
                     spr_trace **out) {
  if (out) *out = NULL;
  if (!path || !*path || !c || !version || !out)
    return spr_error(SPR_EINVAL, "spr_trace_create: %s is NULL or empty",
                     !path || !*path ? "path" : !c ? "config" : !version ? "version" : "out");
  if (!level_name(c->trace))
    return spr_error(SPR_EINVAL, "%s: trace level %d is not summary, masks or full", path, c->trace);
  const spr_workload_params *w = &c->wl;
  if (w->n_layers < 1 || w->n_layers > SPR_MAX_LAYERS || w->n_heads < 1 ||
      w->n_heads > SPR_MAX_HEADS || w->seq_len < 1 || w->head_dim < 1)
    return spr_error(SPR_EINVAL,
                     "%s: configuration not resolved or out of range (layers %d, heads %d, seq_len %d, head_dim %d); call spr_config_resolve first",
                     path, w->n_layers, w->n_heads, w->seq_len, w->head_dim);
  if (c->xbar.key_msb_bits > c->xbar.key_bits)
    return spr_error(SPR_EINVAL, "%s: crossbar.key_msb_bits %d exceeds key_bits %d", path,
                     c->xbar.key_msb_bits, c->xbar.key_bits);

  /* a directory as the target would only fail at the final rename */
  struct stat st;
  size_t pl = strlen(path);
  if (path[pl - 1] == '/' || (stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
    return spr_error(SPR_EIO, "%s: is a directory, not a trace file name", path);
  spr_trace *t = calloc(1, sizeof *t);
  if (!t || !(t->path = malloc(pl + 1)) || !(t->tmp = malloc(pl + 12)) ||
      !(t->written = calloc((size_t)w->n_layers * (size_t)w->n_heads, 1))) {
    trace_free(t);
    return spr_error(SPR_ENOMEM, "%s: out of memory creating the trace", path);
  }
  memcpy(t->path, path, pl + 1);
  memcpy(t->tmp, path, pl);
  memcpy(t->tmp + pl, ".tmp.XXXXXX", 12);
  t->file = -1;
  t->level = c->trace;
  t->layers = w->n_layers;
  t->heads = w->n_heads;
  t->n = w->seq_len;
  t->d = w->head_dim;
  t->shift = c->xbar.key_bits - c->xbar.key_msb_bits;

  quiet_state q;
  quiet_on(&q);
  int rc = create_body(t, c, version);
  if (rc) {
    /* leave nothing behind; keep the first error's message */
    spr__h5_close_output(t->file, t->tmp, rc);
    if (t->tmp_created) unlink(t->tmp);
    trace_free(t);
  } else {
    *out = t;
  }
  quiet_off(&q);
  return rc;
}

/* After a failed write the file may hold a partial object: refuse further
 * writes (and commit); only spr_trace_close(t, 0) makes sense. */
static int refuse_after_failure(const spr_trace *t, const char *fn) {
  return spr_error(SPR_EINVAL, "%s: %s: an earlier write failed; close the trace with commit = 0",
                   fn, t->tmp);
}

/* --- per head --------------------------------------------------------------- */

static int check_padding(const char *what, const uint8_t *m, int n, int layer, int head) {
  size_t rb = spr_mask_row_bytes(n);
  int used = n % 8;
  if (!used) return 0;
  uint8_t pad = (uint8_t)(0xFFu << used);
  for (int i = 0; i < n; i++)
    if (m[(size_t)i * rb + rb - 1] & pad)
      return spr_error(SPR_EINVAL,
                       "spr_trace_write_head: layer %d head %d: %s row %d has padding bits set (byte 0x%02x, n = %d)",
                       layer, head, what, i, m[(size_t)i * rb + rb - 1], n);
  return 0;
}

/* A causal head's mask has no bit j > i. */
static int check_causal(const char *what, const uint8_t *m, int n, int layer, int head) {
  const size_t rb = spr_mask_row_bytes(n);
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (m[(size_t)i * rb + j / 8] >> (j % 8) & 1)
        return spr_error(SPR_EINVAL,
                         "spr_trace_write_head: layer %d head %d: %s of a causal head keeps key %d "
                         "for query %d (j > i)", layer, head, what, j, i);
  return 0;
}

static int check_head(const spr_trace *t, const spr_head_result *r) {
  if (r->layer < 0 || r->layer >= t->layers)
    return spr_error(SPR_EINVAL, "spr_trace_write_head: %s: layer %d out of range [0, %d)", t->tmp,
                     r->layer, t->layers);
  if (r->head < 0 || r->head >= t->heads)
    return spr_error(SPR_EINVAL, "spr_trace_write_head: %s: layer %d: head %d out of range [0, %d)",
                     t->tmp, r->layer, r->head, t->heads);
  if (r->n != t->n || r->d != t->d)
    return spr_error(SPR_EINVAL,
                     "spr_trace_write_head: %s: layer %d head %d: n = %d, d = %d but the configuration has seq_len %d, head_dim %d",
                     t->tmp, r->layer, r->head, r->n, r->d, t->n, t->d);
  if (t->written[r->layer * t->heads + r->head])
    return spr_error(SPR_EINVAL, "spr_trace_write_head: %s: layer %d head %d written twice", t->tmp,
                     r->layer, r->head);
  const char *missing = NULL;
  const int64_t chunked = t->mask_rows ? t->mask_rows[r->layer * t->heads + r->head] : -1;
  if (chunked >= 0 && chunked != r->n)
    return spr_error(SPR_EINVAL, "spr_trace_write_head: %s: layer %d head %d: %lld of the %d mask "
                     "rows written (spr_trace_write_mask_rows)", t->tmp, r->layer, r->head,
                     (long long)chunked, r->n);
  if (t->level >= SPR_TRACE_MASKS && chunked < 0) {
    if (!r->mask_analog) missing = "mask_analog";
    else if (!r->mask_ideal) missing = "mask_ideal";
  }
  if (!missing && t->level >= SPR_TRACE_FULL) {
    if (!r->q_int) missing = "q_int";
    else if (!r->k_int) missing = "k_int";
    else if (!r->k_msb) missing = "k_msb";
    else if (!r->ideal_scores) missing = "ideal_scores";
    else if (!r->analog_scores) missing = "analog_scores";
  }
  if (missing)
    return spr_error(SPR_EINVAL, "spr_trace_write_head: %s: layer %d head %d: %s is NULL but trace level %s needs it",
                     t->tmp, r->layer, r->head, missing, level_name(t->level));
  int rc = 0;
  if (t->level >= SPR_TRACE_MASKS && chunked < 0) {
    rc = check_padding("mask_analog", r->mask_analog, r->n, r->layer, r->head);
    if (!rc) rc = check_padding("mask_ideal", r->mask_ideal, r->n, r->layer, r->head);
    if (!rc && r->causal) rc = check_causal("mask_analog", r->mask_analog, r->n, r->layer, r->head);
    if (!rc && r->causal) rc = check_causal("mask_ideal", r->mask_ideal, r->n, r->layer, r->head);
  }
  return rc;
}

static const char mask_packing[] =
    "bit-packed rows: (query i, key j) is bit (j % 8), least significant first, of byte "
    "[i, j / 8]; set = key kept; padding bits beyond n are 0";

static int write_head_body(spr_trace *t, const spr_head_result *r) {
  char gpath[64], dpath[96];
  snprintf(gpath, sizeof gpath, "/layers/layer_%02d/head_%02d", r->layer, r->head);
  const int chunked = t->mask_rows && t->mask_rows[r->layer * t->heads + r->head] >= 0;
  hid_t g = chunked ? H5Gopen2(t->file, gpath, H5P_DEFAULT) : make_group(t, gpath);
  if (g < 0) return chunked ? h5_fail(t->tmp, "cannot open group '%s'", gpath) : (int)g;
  int rc = put_attr_f64(t, g, gpath, "threshold", r->threshold);
  if (!rc) rc = put_attr_i32(t, g, gpath, "threshold_code", r->threshold_code);
  if (!rc) rc = put_attr_f64(t, g, gpath, "i_unit_A", r->i_unit_A);
  if (!rc) rc = put_attr_f64(t, g, gpath, "q_scale", (double)r->q_scale);
  if (!rc) rc = put_attr_f64(t, g, gpath, "k_scale", (double)r->k_scale);
  const int8_t causal = (int8_t)(r->causal != 0);
  if (!rc) rc = put_attr(t, g, gpath, "causal", H5T_STD_I8LE, H5T_NATIVE_INT8, &causal);
  rc = close_obj(t->tmp, g, gpath, rc);
  if (rc || t->level < SPR_TRACE_MASKS) return rc;

  hsize_t n = (hsize_t)r->n, d = (hsize_t)r->d;
  if (chunked) return 0; /* the masks are written (spr_trace_write_mask_rows); a
                            chunked head has no level full */
  hsize_t mdims[2] = {n, (hsize_t)spr_mask_row_bytes(r->n)};
  static const struct { const char *name, *desc; } masks[2] = {
    {"mask_analog", "keep decisions of the analog comparators (analog_score >= threshold)"},
    {"mask_ideal", "keep decisions on exact quantized scores (ideal_score >= threshold)"}};
  const uint8_t *mbuf[2] = {r->mask_analog, r->mask_ideal};
  for (int m = 0; m < 2 && !rc; m++) {
    hid_t ds = -1;
    snprintf(dpath, sizeof dpath, "%s/%s", gpath, masks[m].name);
    rc = put_dset_ud(t, dpath, H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, mdims, 1, mbuf[m], "1",
                     masks[m].desc, &ds);
    if (rc) break;
    rc = put_attr_str(t, ds, dpath, "packing", mask_packing);
    rc = close_obj(t->tmp, ds, dpath, rc);
  }
  if (rc || t->level < SPR_TRACE_FULL) return rc;

  hsize_t ndims[2] = {n, d}, sdims[2] = {n, n};
  snprintf(dpath, sizeof dpath, "%s/q_int", gpath);
  rc = put_dset_ud(t, dpath, H5T_STD_I8LE, H5T_NATIVE_INT8, 2, ndims, 1, r->q_int, "1",
                   "quantized queries (query_bits, signed); real value = q_scale * q_int", NULL);
  if (rc) return rc;
  snprintf(dpath, sizeof dpath, "%s/k_int", gpath);
  rc = put_dset_ud(t, dpath, H5T_STD_I8LE, H5T_NATIVE_INT8, 2, ndims, 1, r->k_int, "1",
                   "quantized keys (key_bits, signed); real value = k_scale * k_int", NULL);
  if (rc) return rc;
  hid_t ds = -1;
  snprintf(dpath, sizeof dpath, "%s/k_msb", gpath);
  rc = put_dset_ud(t, dpath, H5T_STD_I8LE, H5T_NATIVE_INT8, 2, ndims, 1, r->k_msb, "1",
                   "programmed key bits: k_int >> shift (arithmetic); one unit weighs 2^shift k_int units",
                   &ds);
  if (rc) return rc;
  rc = put_attr_i32(t, ds, dpath, "shift", t->shift);
  rc = close_obj(t->tmp, ds, dpath, rc);
  if (rc) return rc;
  snprintf(dpath, sizeof dpath, "%s/ideal_scores", gpath);
  rc = put_dset_ud(t, dpath, H5T_STD_I32LE, H5T_NATIVE_INT32, 2, sdims, 1, r->ideal_scores,
                   "score", "exact scores q_int . k_msb, [query, key]; ideal keep = ideal_scores >= threshold",
                   NULL);
  if (rc) return rc;
  snprintf(dpath, sizeof dpath, "%s/analog_scores", gpath);
  return put_dset_ud(t, dpath, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, sdims, 1, r->analog_scores,
                     "score", "comparator input referred to score units, [query, key]; analog keep = analog_scores >= threshold; NaN: not decided (key j > query i of a causal head)",
                     NULL);
}

int spr_trace_write_head(spr_trace *t, const spr_head_result *r) {
  if (!t || !r)
    return spr_error(SPR_EINVAL, "spr_trace_write_head: %s is NULL", !t ? "trace" : "result");
  if (t->failed) return refuse_after_failure(t, "spr_trace_write_head");
  int rc = check_head(t, r);
  if (rc) return rc;
  quiet_state q;
  quiet_on(&q);
  rc = write_head_body(t, r);
  if (!rc) rc = spr__h5_out_status(t->file, t->tmp); /* a full disk: stop now */
  quiet_off(&q);
  if (rc) t->failed = 1;
  else t->written[r->layer * t->heads + r->head] = 1;
  return rc;
}

/* --- masks in row chunks (long sequences) ---------------------------------- */

/* The group of head h of layer l and its two mask datasets, n x row bytes,
 * uncompressed, chunked by CHUNK_ROWS rows and allocated at creation: the
 * file's layout is then fixed before any row arrives, so rows written in
 * any order (threads) give the same bytes. */
static int chunked_masks_create(spr_trace *t, int l, int h) {
  char gpath[64], dpath[96];
  snprintf(gpath, sizeof gpath, "/layers/layer_%02d/head_%02d", l, h);
  hid_t g = make_group(t, gpath);
  if (g < 0) return (int)g;
  int rc = close_obj(t->tmp, g, gpath, 0);
  static const struct { const char *name, *desc; } masks[2] = {
    {"mask_analog", "keep decisions of the analog comparators (analog_score >= threshold)"},
    {"mask_ideal", "keep decisions on exact quantized scores (ideal_score >= threshold)"}};
  const hsize_t dims[2] = {(hsize_t)t->n, (hsize_t)spr_mask_row_bytes(t->n)};
  const hsize_t chunk[2] = {dims[0] < CHUNK_ROWS ? dims[0] : CHUNK_ROWS, dims[1]};
  for (int m = 0; m < 2 && !rc; m++) {
    snprintf(dpath, sizeof dpath, "%s/%s", gpath, masks[m].name);
    hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), ds = -1;
    if (sp < 0 || dcpl < 0 || H5Pset_obj_track_times(dcpl, 0) < 0 || H5Pset_chunk(dcpl, 2, chunk) < 0 ||
        H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0 ||
        (ds = H5Dcreate2(t->file, dpath, H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0)
      rc = h5_fail(t->tmp, "cannot create dataset '%s'", dpath);
    close_id(dcpl);
    close_id(sp);
    if (rc) break;
    rc = unit_desc(t, ds, dpath, "1", masks[m].desc);
    if (!rc) rc = put_attr_str(t, ds, dpath, "packing", mask_packing);
    rc = close_obj(t->tmp, ds, dpath, rc);
  }
  return rc;
}

int spr_trace_mask_rows_begin(spr_trace *t, int layer) {
  if (!t) return spr_error(SPR_EINVAL, "spr_trace_mask_rows_begin: trace is NULL");
  if (t->failed) return refuse_after_failure(t, "spr_trace_mask_rows_begin");
  if (t->level < SPR_TRACE_MASKS || t->level >= SPR_TRACE_FULL)
    return spr_error(SPR_EINVAL, "spr_trace_mask_rows_begin: %s: masks in row chunks need trace "
                     "level masks (this trace: %s)", t->tmp, level_name(t->level));
  if (layer < 0 || layer >= t->layers)
    return spr_error(SPR_EINVAL, "spr_trace_mask_rows_begin: %s: layer %d out of range [0, %d)",
                     t->tmp, layer, t->layers);
  if (!t->mask_rows) {
    t->mask_rows = malloc((size_t)t->layers * t->heads * sizeof *t->mask_rows);
    if (!t->mask_rows) return spr_error(SPR_ENOMEM, "spr_trace_mask_rows_begin: out of memory");
    for (int i = 0; i < t->layers * t->heads; i++) t->mask_rows[i] = -1;
  }
  for (int h = 0; h < t->heads; h++)
    if (t->mask_rows[layer * t->heads + h] >= 0 || t->written[layer * t->heads + h])
      return spr_error(SPR_EINVAL, "spr_trace_mask_rows_begin: %s: layer %d head %d already begun "
                       "or written", t->tmp, layer, h);
  quiet_state q;
  quiet_on(&q);
  int rc = 0;
  for (int h = 0; h < t->heads && !rc; h++) {
    rc = chunked_masks_create(t, layer, h);
    if (!rc) t->mask_rows[layer * t->heads + h] = 0;
  }
  quiet_off(&q);
  if (rc) t->failed = 1;
  return rc;
}

int spr_trace_write_mask_rows(spr_trace *t, int layer, int head, int row0, int rows,
                              const uint8_t *mask_analog, const uint8_t *mask_ideal) {
  if (!t || !mask_analog || !mask_ideal)
    return spr_error(SPR_EINVAL, "spr_trace_write_mask_rows: NULL argument");
  if (t->failed) return refuse_after_failure(t, "spr_trace_write_mask_rows");
  if (layer < 0 || layer >= t->layers || head < 0 || head >= t->heads || !t->mask_rows ||
      t->mask_rows[layer * t->heads + head] < 0)
    return spr_error(SPR_EINVAL, "spr_trace_write_mask_rows: %s: layer %d head %d was not begun "
                     "(spr_trace_mask_rows_begin)", t->tmp, layer, head);
  if (row0 < 0 || rows < 1 || row0 + rows > t->n)
    return spr_error(SPR_EINVAL, "spr_trace_write_mask_rows: %s: rows %d .. %d outside [0, %d)",
                     t->tmp, row0, row0 + rows - 1, t->n);
  const size_t rb = spr_mask_row_bytes(t->n);
  const int used = t->n % 8;
  for (int m = 0; used && m < 2; m++) {
    const uint8_t *mk = m ? mask_ideal : mask_analog;
    for (int i = 0; i < rows; i++)
      if (mk[(size_t)i * rb + rb - 1] & (uint8_t)(0xFFu << used))
        return spr_error(SPR_EINVAL, "spr_trace_write_mask_rows: layer %d head %d: %s row %d has "
                         "padding bits set", layer, head, m ? "mask_ideal" : "mask_analog", row0 + i);
  }
  char dpath[96];
  quiet_state q;
  quiet_on(&q);
  int rc = 0;
  for (int m = 0; m < 2 && !rc; m++) {
    snprintf(dpath, sizeof dpath, "/layers/layer_%02d/head_%02d/%s", layer, head,
             m ? "mask_ideal" : "mask_analog");
    const hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)rows, (hsize_t)rb};
    hid_t ds = H5Dopen2(t->file, dpath, H5P_DEFAULT), fs = -1, ms = -1;
    if (ds < 0 || (fs = H5Dget_space(ds)) < 0 ||
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        (ms = H5Screate_simple(2, count, NULL)) < 0 ||
        H5Dwrite(ds, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, m ? mask_ideal : mask_analog) < 0)
      rc = h5_fail(t->tmp, "cannot write rows %d .. %d of '%s'", row0, row0 + rows - 1, dpath);
    close_id(ms);
    close_id(fs);
    if (ds >= 0 && H5Dclose(ds) < 0 && !rc) rc = h5_fail(t->tmp, "cannot close '%s'", dpath);
  }
  quiet_off(&q);
  if (rc) t->failed = 1;
  else t->mask_rows[layer * t->heads + head] += rows;
  return rc;
}

/* --- summary ---------------------------------------------------------------- */

enum { F_F64, F_I64, F_I32 };

typedef struct {
  const char *name;
  int kind;
  size_t off;  /* offset in spr_head_result (unused for threshold_A) */
  const char *unit, *desc;
} summary_field;

#define OFF(f) offsetof(spr_head_result, f)
static const summary_field summary_fields[] = {
  {"keep_rate", F_F64, OFF(keep_rate), "1", "fraction of (query, key) pairs kept by the analog mask: n_kept / n^2 (causal: / n(n+1)/2, the pairs j <= i)"},
  {"ideal_keep_rate", F_F64, OFF(ideal_keep_rate), "1", "fraction kept by the ideal mask: n_ideal_kept / n^2 (causal: / n(n+1)/2)"},
  {"mass_retained", F_F64, OFF(mass_retained), "1", "mean over queries of the float softmax probability kept by the analog mask"},
  {"ideal_mass_retained", F_F64, OFF(ideal_mass_retained), "1", "mean over queries of the float softmax probability kept by the ideal mask"},
  {"threshold", F_F64, OFF(threshold), "score", "comparator threshold on the generator grid"},
  {"range", F_F64, OFF(range), "score", "full scale of the threshold generator"},
  {"i_unit_A", F_F64, OFF(i_unit_A), "A", "column current of one score unit"},
  {"threshold_A", F_F64, 0, "A", "threshold current: threshold * i_unit_A"},
  {"n_kept", F_I64, OFF(n_kept), "count", "(query, key) pairs kept by the analog mask"},
  {"n_ideal_kept", F_I64, OFF(n_ideal_kept), "count", "(query, key) pairs kept by the ideal mask"},
  {"false_prunes", F_I64, OFF(false_prunes), "count", "pairs kept by the ideal mask and pruned by the analog mask"},
  {"false_keeps", F_I64, OFF(false_keeps), "count", "pairs pruned by the ideal mask and kept by the analog mask"},
  {"threshold_code", F_I32, OFF(threshold_code), "1", "signed code of the threshold generator"},
};
#undef OFF

/* Per-scheme tables under /schemes/<name>/, shape (layers, heads). */
typedef struct {
  const char *name;
  int is_i64;
  size_t off;
  const char *unit, *desc;
} scheme_field;

#define SOFF(f) offsetof(spr_scheme_result, f)
static const scheme_field scheme_fields[] = {
  {"keep_rate", 0, SOFF(keep_rate), "1", "kept (query, key) pairs / n^2 (causal: / n(n+1)/2)"},
  {"bytes_fetched", 1, SOFF(bytes_fetched), "B", "bytes of K and V read from ReRAM"},
  {"bytes_reused", 1, SOFF(bytes_reused), "B", "bytes of K and V served from the buffer"},
  {"fetches", 1, SOFF(fetches), "count", "token fetches (misses, streamed included)"},
  {"hits", 1, SOFF(hits), "count", "token uses served from the buffer"},
  {"overflow_tokens", 1, SOFF(overflow_tokens), "count", "misses streamed past a full buffer"},
  {"new_fetch_frac", 0, SOFF(new_fetch_frac), "1", "mean over queries of newly fetched keys / n"},
  {"empty_queries", 1, SOFF(empty_queries), "count", "queries with no surviving key"},
  {"rel_fro", 0, SOFF(rel_fro), "1", "||O - O_dense||_F / ||O_dense||_F"},
  {"cos_mean", 0, SOFF(cos_mean), "1", "mean per-query cosine of O and O_dense"},
  {"cos_min", 0, SOFF(cos_min), "1", "worst per-query cosine of O and O_dense"},
  {"mass_retained", 0, SOFF(mass_retained), "1", "mean dense softmax mass on the survivors"},
  {"top1_recall", 0, SOFF(top1_recall), "1", "share of queries whose dense top-1 key survives"},
  {"topk_recall", 0, SOFF(topk_recall), "1", "mean share of each query's dense top-k keys surviving"},
  {"energy_J", 0, SOFF(energy_total_J), "J", "total energy of the head (ledger)"},
  {"cycles", 0, SOFF(cycles_total), "cycle", "latency of the head with fetch/compute overlap"},
  {"knob", 0, SOFF(knob), "1", "the baseline's pruning parameter: oracle and LeOPArd threshold (8-bit score units), top-k keep_fraction, Sanger p_threshold, window half_width; NaN for sprint, dense, dense_tiled"},
  {"tile_queries", 1, SOFF(tile_queries), "count", "dense_tiled: queries per block (0 for the other schemes)"},
  {"tile_tokens", 1, SOFF(tile_tokens), "count", "dense_tiled: tokens per K/V tile (0 for the other schemes)"},
  {"key_resident", 1, SOFF(key_resident), "1", "digital predictors: 1 when the sequence's K at the predictor's width stayed in the buffer, 0 when streamed per query (docs/energy.md section 9)"},
  {"xbar_cells_written", 1, SOFF(xbar_cells_written), "count", "scoring-array cells programmed for the sequence (SPRINT: 2 n d; 0 otherwise)"},
};
#undef SOFF

static int write_schemes(spr_trace *t, const spr_head_result *res, void *buf) {
  const int nh = t->layers * t->heads;
  hid_t g = make_group(t, "/schemes");
  if (g < 0) return (int)g;
  int rc = close_obj(t->tmp, g, "/schemes", 0);
  for (int sc = 0; sc < SPR_N_SCHEMES && !rc; sc++) {
    if (!res[0].scheme[sc].ran) continue;
    char gpath[64];
    snprintf(gpath, sizeof gpath, "/schemes/%s", spr_scheme_name(sc));
    if ((g = make_group(t, gpath)) < 0) return (int)g;
    if ((rc = close_obj(t->tmp, g, gpath, 0))) return rc;
    hsize_t dims[3] = {(hsize_t)t->layers, (hsize_t)t->heads, 0};
    for (size_t f = 0; f < sizeof scheme_fields / sizeof scheme_fields[0] && !rc; f++) {
      const scheme_field *sf = &scheme_fields[f];
      for (int i = 0; i < nh; i++) {
        const char *src = (const char *)&res[i].scheme[sc] + sf->off;
        memcpy((char *)buf + (size_t)i * 8, src, 8);
      }
      char dpath[128];
      snprintf(dpath, sizeof dpath, "%s/%s", gpath, sf->name);
      rc = put_dset_ud(t, dpath, sf->is_i64 ? H5T_STD_I64LE : H5T_IEEE_F64LE,
                       sf->is_i64 ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, 2, dims, 0, buf, sf->unit,
                       sf->desc, NULL);
    }
    /* energy and busy cycles by component: (layers, heads, components) */
    for (int part = 0; part < 2 && !rc; part++) {
      const int nc = part ? SPR_LEDGER_NC : SPR_LEDGER_NE;
      double *b3 = malloc((size_t)nh * nc * sizeof *b3);
      if (!b3) return spr_error(SPR_ENOMEM, "%s: out of memory writing '%s'", t->tmp, gpath);
      for (int i = 0; i < nh; i++)
        for (int k = 0; k < nc; k++)
          b3[(size_t)i * nc + k] = part ? res[i].scheme[sc].cycles[k] : res[i].scheme[sc].energy_J[k];
      dims[2] = (hsize_t)nc;
      char dpath[128], names[512] = "";
      snprintf(dpath, sizeof dpath, "%s/%s", gpath, part ? "cycles_by_component" : "energy_by_component");
      for (int k = 0; k < nc; k++) {
        size_t l = strlen(names);
        snprintf(names + l, sizeof names - l, "%s%s", k ? "," : "",
                 part ? spr_ledger_cycle_name(k) : spr_ledger_energy_name(k));
      }
      hid_t ds = -1;
      rc = put_dset_ud(t, dpath, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, dims, 0, b3,
                       part ? "cycle" : "J",
                       part ? "busy cycles by component (summed over queries)"
                            : "energy by component", &ds);
      free(b3);
      if (!rc) rc = close_obj(t->tmp, ds, dpath, put_attr_str(t, ds, dpath, "components", names));
    }
  }
  return rc;
}

static int write_summary_body(spr_trace *t, const spr_head_result *res, void *buf) {
  int nh = t->layers * t->heads;
  hid_t g = make_group(t, "/summary");
  if (g < 0) return (int)g;
  int rc = put_attr_i32(t, g, "/summary", "layers", t->layers);
  if (!rc) rc = put_attr_i32(t, g, "/summary", "heads", t->heads);
  if (!rc) rc = put_attr_i32(t, g, "/summary", "seq_len", t->n);
  if (!rc) rc = put_attr_i32(t, g, "/summary", "head_dim", t->d);
  const int8_t causal = (int8_t)(res[0].causal != 0); /* every head alike */
  if (!rc) rc = put_attr(t, g, "/summary", "causal", H5T_STD_I8LE, H5T_NATIVE_INT8, &causal);
  rc = close_obj(t->tmp, g, "/summary", rc);
  hsize_t dims[2] = {(hsize_t)t->layers, (hsize_t)t->heads};
  for (size_t f = 0; f < sizeof summary_fields / sizeof summary_fields[0] && !rc; f++) {
    const summary_field *sf = &summary_fields[f];
    hid_t ft, mt;
    for (int i = 0; i < nh; i++) {
      const char *src = (const char *)&res[i] + sf->off;
      switch (sf->kind) {
      case F_F64:
        if (!strcmp(sf->name, "threshold_A"))
          ((double *)buf)[i] = res[i].threshold * res[i].i_unit_A;
        else
          memcpy((double *)buf + i, src, sizeof(double));
        break;
      case F_I64: memcpy((int64_t *)buf + i, src, sizeof(int64_t)); break;
      case F_I32: ((int32_t *)buf)[i] = (int32_t)*(const int *)src; break;
      }
    }
    switch (sf->kind) {
    case F_F64: ft = H5T_IEEE_F64LE; mt = H5T_NATIVE_DOUBLE; break;
    case F_I64: ft = H5T_STD_I64LE; mt = H5T_NATIVE_INT64; break;
    default: ft = H5T_STD_I32LE; mt = H5T_NATIVE_INT32; break;
    }
    char dpath[64];
    snprintf(dpath, sizeof dpath, "/summary/%s", sf->name);
    rc = put_dset_ud(t, dpath, ft, mt, 2, dims, 0, buf, sf->unit, sf->desc, NULL);
  }
  if (!rc && res[0].scheme[SPR_SCHEME_DENSE].ran) rc = write_schemes(t, res, buf);
  return rc;
}

int spr_trace_write_summary(spr_trace *t, const spr_head_result *res) {
  if (!t || !res)
    return spr_error(SPR_EINVAL, "spr_trace_write_summary: %s is NULL", !t ? "trace" : "results");
  if (t->failed) return refuse_after_failure(t, "spr_trace_write_summary");
  if (t->summary_written)
    return spr_error(SPR_EINVAL, "spr_trace_write_summary: %s: summary written twice", t->tmp);
  int nh = t->layers * t->heads;
  for (int i = 0; i < nh; i++) {
    int l = i / t->heads, h = i % t->heads;
    if (res[i].layer != l || res[i].head != h)
      return spr_error(SPR_EINVAL,
                       "spr_trace_write_summary: %s: res[%d] is layer %d head %d, expected layer %d head %d (res[layer * heads + head])",
                       t->tmp, i, res[i].layer, res[i].head, l, h);
    if (res[i].n != t->n || res[i].d != t->d)
      return spr_error(SPR_EINVAL,
                       "spr_trace_write_summary: %s: layer %d head %d: n = %d, d = %d but the configuration has seq_len %d, head_dim %d",
                       t->tmp, l, h, res[i].n, res[i].d, t->n, t->d);
    if ((res[i].causal != 0) != (res[0].causal != 0))
      return spr_error(SPR_EINVAL,
                       "spr_trace_write_summary: %s: layer %d head %d is %scausal but layer 0 head 0 is %scausal",
                       t->tmp, l, h, res[i].causal ? "" : "not ", res[0].causal ? "" : "not ");
  }
  void *buf = malloc((size_t)nh * 8);
  if (!buf) return spr_error(SPR_ENOMEM, "%s: out of memory writing the summary", t->tmp);
  quiet_state q;
  quiet_on(&q);
  int rc = write_summary_body(t, res, buf);
  if (!rc) rc = spr__h5_out_status(t->file, t->tmp);
  quiet_off(&q);
  free(buf);
  if (rc) t->failed = 1;
  else t->summary_written = 1;
  return rc;
}

/* --- device model ------------------------------------------------------------- */

static int write_device_body(spr_trace *t, const spr_trace_device *dm) {
  hid_t g = make_group(t, "/device_model");
  if (g < 0) return (int)g;
  int32_t n = dm->n;
  int rc = put_attr_str(t, g, "/device_model", "path", dm->path);
  if (!rc) rc = put_attr_str(t, g, "/device_model", "content_id", dm->content_id);
  if (!rc) rc = put_attr_str(t, g, "/device_model", "created", dm->created);
  if (!rc) rc = put_attr_str(t, g, "/device_model", "sprintsim_version", dm->sprintsim_version);
  if (!rc) rc = put_attr_str(t, g, "/device_model", "ngspice_version", dm->ngspice_version);
  if (!rc) rc = put_attr_i32(t, g, "/device_model", "n_applied", n);
  rc = close_obj(t->tmp, g, "/device_model", rc);
  for (int i = 0; i < dm->n && !rc; i++) {
    char dpath[160], desc[200];
    snprintf(dpath, sizeof dpath, "/device_model/%s", dm->keys[i]);
    snprintf(desc, sizeof desc, "value set for configuration key %s by device parameter %s",
             dm->keys[i], dm->params[i]);
    hid_t ds = -1;
    rc = put_dset_ud(t, dpath, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL, 0, &dm->values[i],
                     dm->units[i], desc, &ds);
    if (rc) break;
    rc = put_attr_str(t, ds, dpath, "param", dm->params[i]);
    if (!rc) rc = put_attr_f64(t, ds, dpath, "ci95_lo", dm->ci95_lo[i]);
    if (!rc) rc = put_attr_f64(t, ds, dpath, "ci95_hi", dm->ci95_hi[i]);
    rc = close_obj(t->tmp, ds, dpath, rc);
  }
  return rc;
}

int spr_trace_write_device(spr_trace *t, const spr_trace_device *dm) {
  if (!t || !dm)
    return spr_error(SPR_EINVAL, "spr_trace_write_device: %s is NULL", !t ? "trace" : "device model");
  if (t->failed) return refuse_after_failure(t, "spr_trace_write_device");
  if (t->device_written)
    return spr_error(SPR_EINVAL, "spr_trace_write_device: %s: device model written twice", t->tmp);
  if (!dm->path || !dm->content_id || !dm->created || !dm->sprintsim_version ||
      !dm->ngspice_version || dm->n < 0 ||
      (dm->n > 0 && (!dm->keys || !dm->params || !dm->units || !dm->values || !dm->ci95_lo ||
                     !dm->ci95_hi)))
    return spr_error(SPR_EINVAL, "spr_trace_write_device: %s: a field is NULL or n = %d < 0", t->tmp,
                     dm->n);
  for (int i = 0; i < dm->n; i++)
    if (!dm->keys[i] || !dm->keys[i][0] || strchr(dm->keys[i], '/') || !dm->params[i] || !dm->units[i])
      return spr_error(SPR_EINVAL, "spr_trace_write_device: %s: entry %d has no key, parameter or unit "
                       "(or a '/' in its key)", t->tmp, i);
  quiet_state q;
  quiet_on(&q);
  int rc = write_device_body(t, dm);
  if (!rc) rc = spr__h5_out_status(t->file, t->tmp);
  quiet_off(&q);
  if (rc) t->failed = 1;
  else t->device_written = 1;
  return rc;
}

/* --- input files ------------------------------------------------------------- */

int spr_trace_write_input(spr_trace *t, const char *key, const char *path,
                          const char *content_id, long long size_bytes) {
  if (!t || !key || !*key || strchr(key, '/') || !path || !*path || !content_id || !*content_id ||
      size_bytes < 0)
    return spr_error(SPR_EINVAL, "spr_trace_write_input: a NULL or empty field, a '/' in the key or a negative size");
  if (t->failed) return refuse_after_failure(t, "spr_trace_write_input");
  quiet_state q;
  quiet_on(&q);
  int rc = 0;
  char dpath[200];
  snprintf(dpath, sizeof dpath, "/inputs/%.180s", key);
  htri_t g = H5Lexists(t->file, "/inputs", H5P_DEFAULT);
  if (g < 0) rc = h5_fail(t->tmp, "cannot look up '/inputs'");
  if (!rc && !g) {
    hid_t gid = make_group(t, "/inputs");
    if (gid < 0) rc = (int)gid;
    else rc = close_obj(t->tmp, gid, "/inputs", 0);
  }
  if (!rc && H5Lexists(t->file, dpath, H5P_DEFAULT) > 0)
    rc = spr_error(SPR_EINVAL, "spr_trace_write_input: %s: input '%s' written twice", t->tmp, key);
  else if (!rc) {
    hid_t ds = -1;
    int64_t sz = size_bytes;
    rc = put_dset_str(t, dpath, path, &ds);
    if (!rc) {
      rc = put_attr_str(t, ds, dpath, "content_id", content_id);
      if (!rc) rc = put_attr(t, ds, dpath, "size_bytes", H5T_STD_I64LE, H5T_NATIVE_INT64, &sz);
      if (!rc) rc = put_attr_str(t, ds, dpath, "description",
                                 "an input file of the run, as named by the configuration key; content_id is FNV-1a 64 of the bytes read");
      rc = close_obj(t->tmp, ds, dpath, rc);
    }
    if (!rc) rc = spr__h5_out_status(t->file, t->tmp);
    if (rc && rc != SPR_EINVAL) t->failed = 1;
  }
  quiet_off(&q);
  return rc;
}

/* --- close ------------------------------------------------------------------ */

/* Refuse to mark complete a trace that lacks the summary or a head. */
static int check_complete(const spr_trace *t) {
  if (t->failed)
    return spr_error(SPR_EINVAL, "spr_trace_close: %s: cannot commit: an earlier write failed", t->tmp);
  if (!t->summary_written)
    return spr_error(SPR_EINVAL, "spr_trace_close: %s: cannot commit: the summary was not written (spr_trace_write_summary)",
                     t->tmp);
  for (int i = 0; i < t->layers * t->heads; i++)
    if (!t->written[i])
      return spr_error(SPR_EINVAL, "spr_trace_close: %s: cannot commit: layer %d head %d was not written (spr_trace_write_head)",
                       t->tmp, i / t->heads, i % t->heads);
  return 0;
}

static int mark_complete(spr_trace *t) {
  int8_t one = 1;
  hid_t a = H5Aopen_by_name(t->file, "/", "complete", H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0 || H5Awrite(a, H5T_NATIVE_INT8, &one) < 0) {
    int rc = h5_fail(t->tmp, "cannot set attribute 'complete' of '/'");
    close_id(a);
    return rc;
  }
  if (H5Aclose(a) < 0) return h5_fail(t->tmp, "cannot close attribute 'complete' of '/'");
  return 0;
}

int spr_trace_close(spr_trace *t, int commit) {
  if (!t) return 0;
  quiet_state q;
  quiet_on(&q);
  int rc = 0;
  if (commit) rc = check_complete(t);
  if (commit && !rc) rc = mark_complete(t);
  /* the verified close (spr_output.h); when discarding, its errors are
   * no errors */
  int crc = spr__h5_close_output(t->file, t->tmp, commit ? rc : SPR_ECANCELED);
  if (commit) rc = crc;
  quiet_off(&q);
  if (commit && !rc) {
    /* a failed rename leaves the complete trace at the temporary path */
    rc = spr__out_commit(t->tmp, t->path, 1);
  } else if (unlink(t->tmp) != 0 && !rc) {
    rc = spr_error(SPR_EIO, "%s: cannot delete temporary trace: %s", t->tmp, strerror(errno));
  }
  trace_free(t);
  return rc;
}
