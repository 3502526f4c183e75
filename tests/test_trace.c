/* test_trace.c - HDF5 trace writer (core/spr_trace.c): round trip through
 * the plain HDF5 API, commit/abort, refused inputs, byte-identical output,
 * and h5dump's opinion of the file.  Schema: docs/trace.md. */
#include "config.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_test.h"
#include "spr_trace.h"

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <signal.h>
#include <sys/resource.h>
#include <glob.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define L_ 2
#define H_ 3
#define N_ 13
#define D_ 5
#define RB_ 2 /* spr_mask_row_bytes(13) */

/* --- fixtures ------------------------------------------------------------- */

static void tiny_config(spr_config *c, int level) {
  spr_config_default(c);
  c->seed = UINT64_C(18446744073709551557); /* above 2^63: uint64 survives */
  c->trace = level;
  c->wl.n_layers = L_;
  c->wl.n_heads = H_;
  c->wl.seq_len = N_;
  c->wl.head_dim = D_;
  CU_ASSERT_EQUAL_FATAL(spr_config_set(c, "crossbar", "g_max", "87.5 uS", "test"), 0);
  CU_ASSERT_EQUAL_FATAL(spr_config_set(c, "threshold", "mode", "direct", "test"), 0);
  CU_ASSERT_EQUAL_FATAL(spr_config_set(c, "threshold", "values", "2.385, -17.25", "test"), 0);
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(c, "test"), 0);
}

/* Known values for every field of every head: formulas of (l, h, i, j). */
typedef struct {
  spr_head_result r[L_ * H_];
  uint8_t ma[L_ * H_][N_ * RB_], mi[L_ * H_][N_ * RB_];
  int8_t q[L_ * H_][N_ * D_], k[L_ * H_][N_ * D_], km[L_ * H_][N_ * D_];
  int32_t is[L_ * H_][N_ * N_];
  float as[L_ * H_][N_ * N_];
} fixture;

static int analog_bit(int lh, int i, int j) { return (i * 5 + j * 3 + lh) % 7 < 3; }
static int ideal_bit(int lh, int i, int j) { return (i + 2 * j + lh) % 5 < 2; }

static void fill(fixture *f, int level) {
  memset(f, 0, sizeof *f);
  for (int lh = 0; lh < L_ * H_; lh++) {
    spr_head_result *r = &f->r[lh];
    r->layer = lh / H_;
    r->head = lh % H_;
    r->n = N_;
    r->d = D_;
    r->n_kept = 1000 + 17 * lh;
    r->n_ideal_kept = 2000 - 13 * lh;
    r->false_prunes = 31 * lh + 3;
    r->false_keeps = INT64_C(5000000000) + lh; /* needs 64 bits */
    r->keep_rate = 0.125 + lh / 1024.0;
    r->ideal_keep_rate = 2.385 / (lh + 3);
    r->mass_retained = 0.9 - lh * 0.0123;
    r->ideal_mass_retained = 1.0 / 3.0 + lh;
    r->threshold = 2.385 * (lh - 2);
    r->threshold_code = lh - 3;
    r->range = 40.5 + lh;
    r->i_unit_A = 1.234e-7 * (lh + 1);
    r->q_scale = 0.0371f * (lh + 1);
    r->k_scale = 0.0193f / (lh + 1);
    for (int i = 0; i < N_; i++) {
      for (int j = 0; j < N_; j++) {
        if (analog_bit(lh, i, j)) f->ma[lh][i * RB_ + j / 8] |= (uint8_t)(1u << (j % 8));
        if (ideal_bit(lh, i, j)) f->mi[lh][i * RB_ + j / 8] |= (uint8_t)(1u << (j % 8));
        f->is[lh][i * N_ + j] = i * 7 - j * 3 + 100 * lh;
        f->as[lh][i * N_ + j] = (float)(i * 7 - j * 3) + 0.3125f * (float)lh - 0.1f * (float)j;
      }
      for (int j = 0; j < D_; j++) {
        f->q[lh][i * D_ + j] = (int8_t)((i * 3 + j * 5 + lh) % 15 - 7);
        f->k[lh][i * D_ + j] = (int8_t)((i * 11 + j * 7 + lh * 13) % 255 - 127);
        f->km[lh][i * D_ + j] = (int8_t)(f->k[lh][i * D_ + j] >> 4);
      }
    }
    if (level >= SPR_TRACE_MASKS) {
      r->mask_analog = f->ma[lh];
      r->mask_ideal = f->mi[lh];
    }
    if (level >= SPR_TRACE_FULL) {
      r->q_int = f->q[lh];
      r->k_int = f->k[lh];
      r->k_msb = f->km[lh];
      r->ideal_scores = f->is[lh];
      r->analog_scores = f->as[lh];
    }
  }
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* Is any temporary "<path>.tmp*" of a trace at path present? */
static int temp_exists(const char *path) {
  char pat[700];
  snprintf(pat, sizeof pat, "%s.tmp*", path);
  glob_t g;
  int found = glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0;
  globfree(&g);
  return found;
}

/* Write a whole trace at `level` (heads in reverse order) and commit. */
static int write_trace(const char *path, const spr_config *c, fixture *f) {
  spr_trace *t = NULL;
  int rc = spr_trace_create(path, c, "1.2.3-test", &t);
  if (rc) return rc;
  for (int lh = L_ * H_ - 1; lh >= 0 && !rc; lh--) rc = spr_trace_write_head(t, &f->r[lh]);
  if (!rc) rc = spr_trace_write_summary(t, f->r);
  int rc2 = spr_trace_close(t, !rc);
  /* the writer leaves no HDF5 object open behind it */
  CU_ASSERT_EQUAL(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
  return rc ? rc : rc2;
}

/* --- readers (plain HDF5 API) -------------------------------------------- */

/* Fixed-length string attribute as a malloc'd string (NULL if absent). */
static char *attr_str(hid_t loc, const char *obj, const char *name) {
  if (H5Aexists_by_name(loc, obj, name, H5P_DEFAULT) <= 0) return NULL;
  hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  hid_t ty = H5Aget_type(a);
  char *s = NULL;
  if (H5Tget_class(ty) == H5T_STRING && !H5Tis_variable_str(ty)) {
    size_t sz = H5Tget_size(ty);
    s = calloc(sz + 1, 1);
    H5Aread(a, ty, s);
  }
  H5Tclose(ty);
  H5Aclose(a);
  return s;
}

static void check_attr_str(hid_t loc, const char *obj, const char *name, const char *want) {
  char *s = attr_str(loc, obj, name);
  if (!s || strcmp(s, want))
    fprintf(stderr, "\n  %s@%s = '%s', want '%s'\n", obj, name, s ? s : "(none)", want);
  CU_ASSERT(s && !strcmp(s, want));
  free(s);
}

/* Numeric scalar attribute read as `mtype`, checking its file class/size. */
static int attr_num(hid_t loc, const char *obj, const char *name, H5T_class_t cls,
                    size_t size, hid_t mtype, void *out) {
  if (H5Aexists_by_name(loc, obj, name, H5P_DEFAULT) <= 0) {
    fprintf(stderr, "\n  missing attribute %s@%s\n", obj, name);
    return -1;
  }
  hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  hid_t ty = H5Aget_type(a);
  int ok = H5Tget_class(ty) == cls && H5Tget_size(ty) == size;
  if (!ok) fprintf(stderr, "\n  %s@%s has the wrong type\n", obj, name);
  if (ok) ok = H5Aread(a, mtype, out) >= 0;
  H5Tclose(ty);
  H5Aclose(a);
  return ok ? 0 : -1;
}

static double attr_f64(hid_t f, const char *obj, const char *name) {
  double v = NAN;
  CU_ASSERT_EQUAL(attr_num(f, obj, name, H5T_FLOAT, 8, H5T_NATIVE_DOUBLE, &v), 0);
  return v;
}

static int32_t attr_i32(hid_t f, const char *obj, const char *name) {
  int32_t v = -999;
  CU_ASSERT_EQUAL(attr_num(f, obj, name, H5T_INTEGER, 4, H5T_NATIVE_INT32, &v), 0);
  return v;
}

/* Read dataset `path` (class cls, element size, rank, dims) into buf as
 * mtype; returns 0 when everything matched. */
static int read_dset(hid_t f, const char *path, H5T_class_t cls, size_t size, int rank,
                     const hsize_t *dims, hid_t mtype, void *buf) {
  if (H5Lexists(f, path, H5P_DEFAULT) <= 0) {
    fprintf(stderr, "\n  missing dataset %s\n", path);
    return -1;
  }
  hid_t ds = H5Dopen2(f, path, H5P_DEFAULT);
  hid_t ty = H5Dget_type(ds), sp = H5Dget_space(ds);
  int ok = H5Tget_class(ty) == cls && (cls == H5T_STRING || H5Tget_size(ty) == size) &&
           H5Sget_simple_extent_ndims(sp) == rank;
  hsize_t got[2] = {0, 0};
  if (ok && rank > 0) {
    H5Sget_simple_extent_dims(sp, got, NULL);
    for (int i = 0; i < rank; i++) ok = ok && got[i] == dims[i];
  }
  if (!ok) fprintf(stderr, "\n  %s: wrong type or shape\n", path);
  if (ok && H5Sget_simple_extent_npoints(sp) > 0)
    ok = H5Dread(ds, cls == H5T_STRING ? ty : mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0;
  H5Sclose(sp);
  H5Tclose(ty);
  H5Dclose(ds);
  return ok ? 0 : -1;
}

/* Scalar fixed-length string dataset as a malloc'd string. */
static char *dset_str(hid_t f, const char *path) {
  if (H5Lexists(f, path, H5P_DEFAULT) <= 0) return NULL;
  hid_t ds = H5Dopen2(f, path, H5P_DEFAULT), ty = H5Dget_type(ds);
  char *s = NULL;
  if (H5Tget_class(ty) == H5T_STRING && !H5Tis_variable_str(ty)) {
    s = calloc(H5Tget_size(ty) + 1, 1);
    H5Dread(ds, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, s);
  }
  H5Tclose(ty);
  H5Dclose(ds);
  return s;
}

/* Chunked with exactly shuffle then deflate level 4. */
static void check_compressed(hid_t f, const char *path) {
  hid_t ds = H5Dopen2(f, path, H5P_DEFAULT), pl = H5Dget_create_plist(ds);
  CU_ASSERT_EQUAL(H5Pget_layout(pl), H5D_CHUNKED);
  CU_ASSERT_EQUAL_FATAL(H5Pget_nfilters(pl), 2);
  unsigned flags, cd[4];
  size_t ncd = 4;
  CU_ASSERT_EQUAL(H5Pget_filter2(pl, 0, &flags, &ncd, cd, 0, NULL, NULL), H5Z_FILTER_SHUFFLE);
  ncd = 4;
  CU_ASSERT_EQUAL(H5Pget_filter2(pl, 1, &flags, &ncd, cd, 0, NULL, NULL), H5Z_FILTER_DEFLATE);
  CU_ASSERT(ncd >= 1 && cd[0] == 4);
  H5Pclose(pl);
  H5Dclose(ds);
}

/* Every config key: dataset type, value (reformatted like
 * spr_config_format), unit and doc. */
static void check_config(hid_t f, const spr_config *c) {
  char *ini = spr_config_to_ini(c);
  char *got = dset_str(f, "/config/ini");
  CU_ASSERT_PTR_NOT_NULL_FATAL(got);
  CU_ASSERT_STRING_EQUAL(got, ini);
  free(got);
  free(ini);

  for (int i = 0; i < spr_config_nkeys(); i++) {
    const spr_config_key_info *k = spr_config_key(i);
    char path[256], want[512], have[512] = "";
    snprintf(path, sizeof path, "/config/%s/%s", k->section, k->name);
    spr_config_format(c, i, want, sizeof want);
    if (k->type == SPR_KEY_DOUBLE || k->type == SPR_KEY_LIST) {
      /* the config prints the shortest exact form; compare as %.17g */
      char norm[512] = "", *p = want;
      size_t used = 0;
      for (int j = 0; *p; j++) {
        char *end;
        double x = strtod(p, &end);
        if (end == p) break;
        used += (size_t)snprintf(norm + used, sizeof norm - used, "%s%.17g", j ? ", " : "", x);
        p = end;
        while (*p == ',' || *p == ' ') p++;
      }
      snprintf(want, sizeof want, "%s", norm);
    }
    switch (k->type) {
    case SPR_KEY_INT: {
      int32_t v;
      CU_ASSERT_EQUAL_FATAL(read_dset(f, path, H5T_INTEGER, 4, 0, NULL, H5T_NATIVE_INT32, &v), 0);
      snprintf(have, sizeof have, "%d", (int)v);
      break;
    }
    case SPR_KEY_U64: {
      uint64_t v;
      hid_t ds = H5Dopen2(f, path, H5P_DEFAULT), ty = H5Dget_type(ds);
      CU_ASSERT_EQUAL(H5Tget_sign(ty), H5T_SGN_NONE);
      H5Tclose(ty);
      H5Dclose(ds);
      CU_ASSERT_EQUAL_FATAL(read_dset(f, path, H5T_INTEGER, 8, 0, NULL, H5T_NATIVE_UINT64, &v), 0);
      snprintf(have, sizeof have, "%llu", (unsigned long long)v);
      break;
    }
    case SPR_KEY_DOUBLE: {
      double v;
      CU_ASSERT_EQUAL_FATAL(read_dset(f, path, H5T_FLOAT, 8, 0, NULL, H5T_NATIVE_DOUBLE, &v), 0);
      snprintf(have, sizeof have, "%.17g", v);
      break;
    }
    case SPR_KEY_BOOL: {
      int8_t v = 7;
      CU_ASSERT_EQUAL_FATAL(read_dset(f, path, H5T_INTEGER, 1, 0, NULL, H5T_NATIVE_INT8, &v), 0);
      CU_ASSERT(v == 0 || v == 1);
      snprintf(have, sizeof have, "%s", v ? "true" : "false");
      break;
    }
    case SPR_KEY_ENUM:
    case SPR_KEY_STRING: {
      char *s = dset_str(f, path);
      CU_ASSERT_PTR_NOT_NULL_FATAL(s);
      snprintf(have, sizeof have, "%s", s);
      free(s);
      break;
    }
    case SPR_KEY_LIST: {
      double v[8];
      hsize_t n = (hsize_t)c->thr.n_values;
      CU_ASSERT_FATAL(n <= 8);
      CU_ASSERT_EQUAL_FATAL(read_dset(f, path, H5T_FLOAT, 8, 1, &n, H5T_NATIVE_DOUBLE, v), 0);
      size_t used = 0;
      for (hsize_t j = 0; j < n; j++)
        used += (size_t)snprintf(have + used, sizeof have - used, "%s%.17g", j ? ", " : "", v[j]);
      break;
    }
    }
    if (strcmp(have, want)) fprintf(stderr, "\n  %s = '%s', want '%s'\n", path, have, want);
    CU_ASSERT_STRING_EQUAL(have, want);
    check_attr_str(f, path, "unit", k->unit[0] ? k->unit : "1");
    check_attr_str(f, path, "doc", k->doc);
  }
}

/* --- tests ---------------------------------------------------------------- */

static void test_roundtrip_full(void) {
  static fixture fx;
  spr_config c;
  char path[512];
  tiny_config(&c, SPR_TRACE_FULL);
  fill(&fx, SPR_TRACE_FULL);
  spr_test_path(path, sizeof path, "trace-full", ".h5");
  int rc = write_trace(path, &c, &fx);
  if (rc) fprintf(stderr, "\n  %s\n", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT(file_exists(path));
  CU_ASSERT(!temp_exists(path));

  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);

  /* root */
  check_attr_str(f, "/", "program", "sprintsim");
  check_attr_str(f, "/", "version", "1.2.3-test");
  check_attr_str(f, "/", "trace_level", "full");
  uint64_t seed = 0;
  CU_ASSERT_EQUAL(attr_num(f, "/", "seed", H5T_INTEGER, 8, H5T_NATIVE_UINT64, &seed), 0);
  CU_ASSERT(seed == UINT64_C(18446744073709551557));
  CU_ASSERT_EQUAL(attr_i32(f, "/", "format_version"), 1);
  int8_t complete = 0;
  CU_ASSERT_EQUAL(attr_num(f, "/", "complete", H5T_INTEGER, 1, H5T_NATIVE_INT8, &complete), 0);
  CU_ASSERT_EQUAL(complete, 1);

  /* config, with some values checked against the struct directly */
  check_config(f, &c);
  double g;
  CU_ASSERT_EQUAL(read_dset(f, "/config/crossbar/g_max", H5T_FLOAT, 8, 0, NULL, H5T_NATIVE_DOUBLE, &g), 0);
  CU_ASSERT(g == 87.5e-6);
  check_attr_str(f, "/config/crossbar/g_max", "unit", "S");
  check_attr_str(f, "/config/crossbar/prog_sigma", "unit", "1");
  int32_t sl;
  CU_ASSERT_EQUAL(read_dset(f, "/config/workload/seq_len", H5T_INTEGER, 4, 0, NULL, H5T_NATIVE_INT32, &sl), 0);
  CU_ASSERT_EQUAL(sl, N_);
  char *lvl = dset_str(f, "/config/run/trace");
  CU_ASSERT(lvl && !strcmp(lvl, "full"));
  free(lvl);
  double vals[2];
  hsize_t two = 2;
  CU_ASSERT_EQUAL(read_dset(f, "/config/threshold/values", H5T_FLOAT, 8, 1, &two, H5T_NATIVE_DOUBLE, vals), 0);
  CU_ASSERT(vals[0] == 2.385 && vals[1] == -17.25);

  /* summary */
  CU_ASSERT_EQUAL(attr_i32(f, "/summary", "layers"), L_);
  CU_ASSERT_EQUAL(attr_i32(f, "/summary", "heads"), H_);
  CU_ASSERT_EQUAL(attr_i32(f, "/summary", "seq_len"), N_);
  CU_ASSERT_EQUAL(attr_i32(f, "/summary", "head_dim"), D_);
  hsize_t sd[2] = {L_, H_};
  double dv[L_ * H_];
  int64_t iv[L_ * H_];
  int32_t cv[L_ * H_];
  static const struct { const char *name; size_t off; const char *unit; } f64s[] = {
    {"keep_rate", offsetof(spr_head_result, keep_rate), "1"},
    {"ideal_keep_rate", offsetof(spr_head_result, ideal_keep_rate), "1"},
    {"mass_retained", offsetof(spr_head_result, mass_retained), "1"},
    {"ideal_mass_retained", offsetof(spr_head_result, ideal_mass_retained), "1"},
    {"threshold", offsetof(spr_head_result, threshold), "score"},
    {"range", offsetof(spr_head_result, range), "score"},
    {"i_unit_A", offsetof(spr_head_result, i_unit_A), "A"}};
  for (size_t k = 0; k < sizeof f64s / sizeof f64s[0]; k++) {
    char p[64];
    snprintf(p, sizeof p, "/summary/%s", f64s[k].name);
    CU_ASSERT_EQUAL_FATAL(read_dset(f, p, H5T_FLOAT, 8, 2, sd, H5T_NATIVE_DOUBLE, dv), 0);
    for (int lh = 0; lh < L_ * H_; lh++) {
      double want;
      memcpy(&want, (const char *)&fx.r[lh] + f64s[k].off, sizeof want);
      CU_ASSERT(dv[lh] == want);
    }
    check_attr_str(f, p, "unit", f64s[k].unit);
    char *desc = attr_str(f, p, "description");
    CU_ASSERT(desc && strlen(desc) > 10);
    free(desc);
  }
  CU_ASSERT_EQUAL(read_dset(f, "/summary/threshold_A", H5T_FLOAT, 8, 2, sd, H5T_NATIVE_DOUBLE, dv), 0);
  for (int lh = 0; lh < L_ * H_; lh++) CU_ASSERT(dv[lh] == fx.r[lh].threshold * fx.r[lh].i_unit_A);
  check_attr_str(f, "/summary/threshold_A", "unit", "A");
  static const struct { const char *name; size_t off; } i64s[] = {
    {"n_kept", offsetof(spr_head_result, n_kept)},
    {"n_ideal_kept", offsetof(spr_head_result, n_ideal_kept)},
    {"false_prunes", offsetof(spr_head_result, false_prunes)},
    {"false_keeps", offsetof(spr_head_result, false_keeps)}};
  for (size_t k = 0; k < sizeof i64s / sizeof i64s[0]; k++) {
    char p[64];
    snprintf(p, sizeof p, "/summary/%s", i64s[k].name);
    CU_ASSERT_EQUAL_FATAL(read_dset(f, p, H5T_INTEGER, 8, 2, sd, H5T_NATIVE_INT64, iv), 0);
    for (int lh = 0; lh < L_ * H_; lh++) {
      int64_t want;
      memcpy(&want, (const char *)&fx.r[lh] + i64s[k].off, sizeof want);
      CU_ASSERT(iv[lh] == want);
    }
    check_attr_str(f, p, "unit", "count");
  }
  CU_ASSERT_EQUAL(read_dset(f, "/summary/threshold_code", H5T_INTEGER, 4, 2, sd, H5T_NATIVE_INT32, cv), 0);
  for (int lh = 0; lh < L_ * H_; lh++) CU_ASSERT_EQUAL(cv[lh], lh - 3);

  /* per head */
  for (int lh = 0; lh < L_ * H_; lh++) {
    const spr_head_result *r = &fx.r[lh];
    char gp[64], p[96];
    snprintf(gp, sizeof gp, "/layers/layer_%02d/head_%02d", r->layer, r->head);
    CU_ASSERT(attr_f64(f, gp, "threshold") == r->threshold);
    CU_ASSERT_EQUAL(attr_i32(f, gp, "threshold_code"), r->threshold_code);
    CU_ASSERT(attr_f64(f, gp, "i_unit_A") == r->i_unit_A);
    CU_ASSERT(attr_f64(f, gp, "q_scale") == (double)r->q_scale);
    CU_ASSERT(attr_f64(f, gp, "k_scale") == (double)r->k_scale);

    uint8_t m[N_ * RB_];
    hsize_t md[2] = {N_, RB_}, nd[2] = {N_, D_}, ss[2] = {N_, N_};
    snprintf(p, sizeof p, "%s/mask_analog", gp);
    CU_ASSERT_EQUAL_FATAL(read_dset(f, p, H5T_INTEGER, 1, 2, md, H5T_NATIVE_UINT8, m), 0);
    for (int i = 0; i < N_; i++)
      for (int j = 0; j < N_; j++)  /* decode independently of the writer */
        CU_ASSERT_EQUAL((m[i * RB_ + j / 8] >> (j % 8)) & 1, analog_bit(lh, i, j));
    char *pk = attr_str(f, p, "packing");
    CU_ASSERT(pk && strstr(pk, "least significant first"));
    free(pk);
    check_compressed(f, p);
    snprintf(p, sizeof p, "%s/mask_ideal", gp);
    CU_ASSERT_EQUAL_FATAL(read_dset(f, p, H5T_INTEGER, 1, 2, md, H5T_NATIVE_UINT8, m), 0);
    CU_ASSERT(memcmp(m, fx.mi[lh], sizeof m) == 0);

    int8_t b[N_ * D_];
    snprintf(p, sizeof p, "%s/q_int", gp);
    CU_ASSERT_EQUAL_FATAL(read_dset(f, p, H5T_INTEGER, 1, 2, nd, H5T_NATIVE_INT8, b), 0);
    CU_ASSERT(memcmp(b, fx.q[lh], sizeof b) == 0);
    check_attr_str(f, p, "unit", "1");
    snprintf(p, sizeof p, "%s/k_int", gp);
    CU_ASSERT_EQUAL_FATAL(read_dset(f, p, H5T_INTEGER, 1, 2, nd, H5T_NATIVE_INT8, b), 0);
    CU_ASSERT(memcmp(b, fx.k[lh], sizeof b) == 0);
    snprintf(p, sizeof p, "%s/k_msb", gp);
    CU_ASSERT_EQUAL_FATAL(read_dset(f, p, H5T_INTEGER, 1, 2, nd, H5T_NATIVE_INT8, b), 0);
    CU_ASSERT(memcmp(b, fx.km[lh], sizeof b) == 0);
    CU_ASSERT_EQUAL(attr_i32(f, p, "shift"), c.xbar.key_bits - c.xbar.key_msb_bits);

    int32_t is[N_ * N_];
    snprintf(p, sizeof p, "%s/ideal_scores", gp);
    CU_ASSERT_EQUAL_FATAL(read_dset(f, p, H5T_INTEGER, 4, 2, ss, H5T_NATIVE_INT32, is), 0);
    for (int i = 0; i < N_; i++)
      for (int j = 0; j < N_; j++) CU_ASSERT_EQUAL(is[i * N_ + j], i * 7 - j * 3 + 100 * lh);
    check_attr_str(f, p, "unit", "score");
    check_compressed(f, p);
    float as[N_ * N_];
    snprintf(p, sizeof p, "%s/analog_scores", gp);
    CU_ASSERT_EQUAL_FATAL(read_dset(f, p, H5T_FLOAT, 4, 2, ss, H5T_NATIVE_FLOAT, as), 0);
    CU_ASSERT(memcmp(as, fx.as[lh], sizeof as) == 0);
    check_attr_str(f, p, "unit", "score");
    char *desc = attr_str(f, p, "description");
    CU_ASSERT(desc && strstr(desc, "score"));
    free(desc);
  }
  CU_ASSERT_EQUAL(H5Fclose(f), 0);
  remove(path);
}

/* masks level: masks but no operands; an empty threshold list is an empty
 * 1-D dataset.  summary level: attribute-only head groups. */
static void test_levels(void) {
  static fixture fx;
  for (int level = SPR_TRACE_SUMMARY; level <= SPR_TRACE_MASKS; level++) {
    spr_config c;
    spr_config_default(&c);
    c.trace = level;
    c.wl.n_layers = L_;
    c.wl.n_heads = H_;
    c.wl.seq_len = N_;
    c.wl.head_dim = D_;
    CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "test"), 0);
    CU_ASSERT_EQUAL_FATAL(c.thr.n_values, 0);
    fill(&fx, level);
    char path[512];
    spr_test_path(path, sizeof path, level ? "trace-masks" : "trace-summary", ".h5");
    int rc = write_trace(path, &c, &fx);
    if (rc) fprintf(stderr, "\n  %s\n", spr_errmsg());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    check_attr_str(f, "/", "trace_level", level ? "masks" : "summary");
    hsize_t zero = 0;
    CU_ASSERT_EQUAL(read_dset(f, "/config/threshold/values", H5T_FLOAT, 8, 1, &zero, H5T_NATIVE_DOUBLE, NULL), 0);
    check_config(f, &c);
    CU_ASSERT(H5Lexists(f, "/layers/layer_01/head_02", H5P_DEFAULT) > 0);
    CU_ASSERT(attr_f64(f, "/layers/layer_01/head_02", "threshold") == fx.r[5].threshold);
    CU_ASSERT_EQUAL(H5Lexists(f, "/layers/layer_01/head_02/mask_analog", H5P_DEFAULT) > 0, level >= 1);
    CU_ASSERT_EQUAL(H5Lexists(f, "/layers/layer_01/head_02/q_int", H5P_DEFAULT), 0);
    CU_ASSERT_EQUAL(H5Lexists(f, "/layers/layer_01/head_02/analog_scores", H5P_DEFAULT), 0);
    if (level == SPR_TRACE_MASKS) {
      uint8_t m[N_ * RB_];
      hsize_t md[2] = {N_, RB_};
      CU_ASSERT_EQUAL(read_dset(f, "/layers/layer_01/head_02/mask_analog", H5T_INTEGER, 1, 2, md, H5T_NATIVE_UINT8, m), 0);
      CU_ASSERT(memcmp(m, fx.ma[5], sizeof m) == 0);
    }
    H5Fclose(f);
    remove(path);
  }
}

/* /device_model: provenance attributes and one dataset per applied key;
 * once per trace; bad arguments refused. */
static void test_device_model(void) {
  static fixture fx;
  spr_config c;
  tiny_config(&c, SPR_TRACE_SUMMARY);
  fill(&fx, SPR_TRACE_SUMMARY);
  char path[512];
  spr_test_path(path, sizeof path, "trace-dev", ".h5");
  spr_trace *t = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_trace_create(path, &c, "1.2.3-test", &t), 0);
  const char *keys[] = {"crossbar.cell_v0", "analog.cmp_offset_sigma"};
  const char *params[] = {"cell_v0", "cmp_offset_sigma"}, *units[] = {"V", "A"};
  const double vals[] = {0.2385, 1.75e-8}, lo[] = {0.2375, 1.6e-8}, hi[] = {0.2395, 1.9e-8};
  spr_trace_device dm = {"models/dev.h5", "fnv1a64:0123456789abcdef", "2026-11-29T13:04:25Z",
                         "0.1.0", "ngspice-39", 2, keys, params, units, vals, lo, hi};
  spr_trace_device bad = dm;
  bad.keys = NULL;
  CU_ASSERT_EQUAL(spr_trace_write_device(t, &bad), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "a field is NULL");
  CU_ASSERT_EQUAL(spr_trace_write_device(t, &dm), 0);
  CU_ASSERT_EQUAL(spr_trace_write_device(t, &dm), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "device model written twice");
  int rc = 0;
  for (int lh = 0; lh < L_ * H_ && !rc; lh++) rc = spr_trace_write_head(t, &fx.r[lh]);
  if (!rc) rc = spr_trace_write_summary(t, fx.r);
  CU_ASSERT_EQUAL_FATAL(spr_trace_close(t, !rc), 0);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  check_attr_str(f, "/device_model", "path", "models/dev.h5");
  check_attr_str(f, "/device_model", "content_id", "fnv1a64:0123456789abcdef");
  check_attr_str(f, "/device_model", "created", "2026-11-29T13:04:25Z");
  check_attr_str(f, "/device_model", "sprintsim_version", "0.1.0");
  check_attr_str(f, "/device_model", "ngspice_version", "ngspice-39");
  CU_ASSERT_EQUAL(attr_i32(f, "/device_model", "n_applied"), 2);
  for (int k = 0; k < 2; k++) {
    char dp[128];
    snprintf(dp, sizeof dp, "/device_model/%s", keys[k]);
    double v = NAN;
    CU_ASSERT_EQUAL(read_dset(f, dp, H5T_FLOAT, 8, 0, NULL, H5T_NATIVE_DOUBLE, &v), 0);
    CU_ASSERT_EQUAL(v, vals[k]);
    check_attr_str(f, dp, "unit", units[k]);
    check_attr_str(f, dp, "param", params[k]);
    CU_ASSERT_EQUAL(attr_f64(f, dp, "ci95_lo"), lo[k]);
    CU_ASSERT_EQUAL(attr_f64(f, dp, "ci95_hi"), hi[k]);
  }
  H5Fclose(f);
  remove(path);
}

/* /inputs: one dataset per input file, its path, content id and size;
 * once per key; bad arguments refused. */
static void test_inputs(void) {
  static fixture fx;
  spr_config c;
  tiny_config(&c, SPR_TRACE_SUMMARY);
  fill(&fx, SPR_TRACE_SUMMARY);
  char path[512];
  spr_test_path(path, sizeof path, "trace-inputs", ".h5");
  spr_trace *t = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_trace_create(path, &c, "v", &t), 0);
  CU_ASSERT_EQUAL(spr_trace_write_input(t, "workload.qkv_file", "/data/q.h5", "fnv1a64:00112233aabbccdd", 2385), 0);
  CU_ASSERT_EQUAL(spr_trace_write_input(t, "run.device_model", "dev.h5", "fnv1a64:ffeeddccbbaa9988", 7), 0);
  CU_ASSERT_EQUAL(spr_trace_write_input(t, "workload.qkv_file", "/x.h5", "fnv1a64:0", 1), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "input 'workload.qkv_file' written twice");
  CU_ASSERT_EQUAL(spr_trace_write_input(t, "a/b", "/x.h5", "fnv1a64:0", 1), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_trace_write_input(t, "k", "", "fnv1a64:0", 1), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_trace_write_input(t, "k", "/x.h5", "fnv1a64:0", -1), SPR_EINVAL);
  int rc = 0;
  for (int lh = 0; lh < L_ * H_ && !rc; lh++) rc = spr_trace_write_head(t, &fx.r[lh]);
  if (!rc) rc = spr_trace_write_summary(t, fx.r);
  CU_ASSERT_EQUAL_FATAL(spr_trace_close(t, !rc), 0);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  check_attr_str(f, "/inputs/workload.qkv_file", "content_id", "fnv1a64:00112233aabbccdd");
  check_attr_str(f, "/inputs/run.device_model", "content_id", "fnv1a64:ffeeddccbbaa9988");
  hid_t ds = H5Dopen2(f, "/inputs/workload.qkv_file", H5P_DEFAULT), ty = H5Dget_type(ds);
  char buf[64] = "";
  CU_ASSERT(H5Dread(ds, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
  CU_ASSERT_STRING_EQUAL(buf, "/data/q.h5");
  hid_t a = H5Aopen(ds, "size_bytes", H5P_DEFAULT);
  long long sz = 0;
  CU_ASSERT(H5Aread(a, H5T_NATIVE_LLONG, &sz) >= 0);
  CU_ASSERT_EQUAL(sz, 2385);
  H5Aclose(a);
  H5Tclose(ty);
  H5Dclose(ds);
  H5Fclose(f);
  remove(path);
}

static void test_abort(void) {
  static fixture fx;
  spr_config c;
  tiny_config(&c, SPR_TRACE_FULL);
  fill(&fx, SPR_TRACE_FULL);
  char path[512];
  spr_test_path(path, sizeof path, "trace-abort", ".h5");
  spr_trace *t = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_trace_create(path, &c, "v", &t), 0);
  CU_ASSERT(temp_exists(path));
  CU_ASSERT(!file_exists(path));
  CU_ASSERT_EQUAL(spr_trace_write_head(t, &fx.r[0]), 0);
  CU_ASSERT_EQUAL(spr_trace_close(t, 0), 0);
  CU_ASSERT(!temp_exists(path));
  CU_ASSERT(!file_exists(path));
  CU_ASSERT_EQUAL(spr_trace_close(NULL, 1), 0);

  /* committing an incomplete trace is refused and leaves nothing */
  CU_ASSERT_EQUAL_FATAL(spr_trace_create(path, &c, "v", &t), 0);
  CU_ASSERT_EQUAL(spr_trace_write_summary(t, fx.r), 0);
  CU_ASSERT_EQUAL(spr_trace_write_head(t, &fx.r[0]), 0);
  CU_ASSERT_EQUAL(spr_trace_close(t, 1), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 0 head 1 was not written");
  CU_ASSERT(!temp_exists(path));
  CU_ASSERT(!file_exists(path));
  CU_ASSERT_EQUAL_FATAL(spr_trace_create(path, &c, "v", &t), 0);
  for (int lh = 0; lh < L_ * H_; lh++) CU_ASSERT_EQUAL(spr_trace_write_head(t, &fx.r[lh]), 0);
  CU_ASSERT_EQUAL(spr_trace_close(t, 1), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "summary was not written");
  CU_ASSERT(!temp_exists(path));
  CU_ASSERT(!file_exists(path));
}

static int counted_errors;
static herr_t count_errors(hid_t stack, void *data) {
  (void)stack;
  (void)data;
  counted_errors++;
  return 0;
}

static void test_unwritable(void) {
  spr_config c;
  tiny_config(&c, SPR_TRACE_FULL);
  char path[512];
  snprintf(path, sizeof path, "/nonexistent-sprintsim-dir-%ld/sub/t.h5", (long)getpid());
  spr_trace *t = (spr_trace *)&c; /* must be reset to NULL */
  /* the caller's HDF5 error handler is restored and never called */
  H5E_auto2_t old_fn = NULL;
  void *old_data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
  H5Eset_auto2(H5E_DEFAULT, count_errors, NULL);
  int rc = spr_trace_create(path, &c, "v", &t);
  CU_ASSERT(rc == SPR_EIO || rc == SPR_EHDF5);
  CU_ASSERT_PTR_NULL(t);
  SPR_ASSERT_CONTAINS(spr_errmsg(), path);
  H5E_auto2_t fn = NULL;
  void *data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &fn, &data);
  CU_ASSERT(fn == count_errors);
  CU_ASSERT_EQUAL(counted_errors, 0);
  H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);

  /* a directory as the target, or a name ending in '/' */
  char dpath[512], slash[520];
  spr_test_path(dpath, sizeof dpath, "trace-dir", ".h5");
  CU_ASSERT_EQUAL_FATAL(mkdir(dpath, 0755), 0);
  rc = spr_trace_create(dpath, &c, "v", &t);
  CU_ASSERT_EQUAL(rc, SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "is a directory");
  SPR_ASSERT_CONTAINS(spr_errmsg(), dpath);
  CU_ASSERT(!temp_exists(dpath));
  rmdir(dpath);
  snprintf(slash, sizeof slash, "%s/", dpath);
  CU_ASSERT_EQUAL(spr_trace_create(slash, &c, "v", &t), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), slash);

  /* unresolved configuration, bad arguments */
  spr_config u;
  spr_config_default(&u);
  CU_ASSERT_EQUAL(spr_trace_create(dpath, &u, "v", &t), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "spr_config_resolve");
  CU_ASSERT_EQUAL(spr_trace_create(dpath, &c, NULL, &t), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "version");
  c.trace = 3;
  CU_ASSERT_EQUAL(spr_trace_create(dpath, &c, "v", &t), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "trace level 3");
  CU_ASSERT(!file_exists(dpath));
}

/* A write that fails half-way (file size limit: EFBIG, as a full disk
 * gives ENOSPC) is reported as SPR_EIO naming the file and the cause,
 * further writes are refused, and no file is left.  The child leaves
 * through exit(), so libhdf5's exit handler runs: it crashed on the
 * half-closed file a failed close left (F5) before the writers went
 * through the output driver (core/spr_output.h). */
static void test_write_failure(void) {
  char path[512];
  spr_test_path(path, sizeof path, "trace-efbig", ".h5");
  fflush(NULL);
  pid_t pid = fork();
  CU_ASSERT_FATAL(pid >= 0);
  if (pid == 0) {
    static fixture fx;
    spr_config c;
    tiny_config(&c, SPR_TRACE_FULL);
    fill(&fx, SPR_TRACE_FULL);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim;
    getrlimit(RLIMIT_FSIZE, &lim);
    lim.rlim_cur = 16384;
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(10);
    spr_trace *t = NULL;
    int rc = spr_trace_create(path, &c, "v", &t);
    for (int lh = 0; lh < L_ * H_ && !rc; lh++) rc = spr_trace_write_head(t, &fx.r[lh]);
    if (!rc) rc = spr_trace_write_summary(t, fx.r);
    char m[1024];
    snprintf(m, sizeof m, "%s", spr_errmsg());
    int refused = 1;
    if (t && rc) /* after a failed write, further writes are refused */
      refused = spr_trace_write_summary(t, fx.r) == SPR_EINVAL &&
                strstr(spr_errmsg(), "earlier write failed") != NULL;
    if (t) {
      int rc2 = spr_trace_close(t, !rc);
      if (!rc) {
        rc = rc2;
        snprintf(m, sizeof m, "%s", spr_errmsg());
      }
    }
    char tp[600];
    snprintf(tp, sizeof tp, "%s.tmp.", path);
    int status = rc != SPR_EIO ? 11 : !strstr(m, tp) ? 12 : !strstr(m, "File too large") ? 13
               : temp_exists(path) ? 14 : file_exists(path) ? 15 : !refused ? 16 : 0;
    if (getenv("SPR_TEST_VERBOSE")) fprintf(stderr, "\n  child: %s\n", m);
    if (status) fprintf(stderr, "\n  child: rc %d, status %d: %s\n", rc, status, m);
    fflush(NULL);
    SPR_TEST_LSAN_OFF();
    exit(status);
  }
  int st = 0;
  CU_ASSERT_EQUAL_FATAL(waitpid(pid, &st, 0), pid);
  CU_ASSERT(WIFEXITED(st));
  CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
  CU_ASSERT(!temp_exists(path));
  remove(path);
}

/* The whole full trace at several sizes of free space. */
static int write_full(const char *path, void *arg) {
  fixture *fx = arg;
  spr_config c;
  tiny_config(&c, SPR_TRACE_FULL);
  spr_trace *t = NULL;
  int rc = spr_trace_create(path, &c, "v", &t);
  for (int lh = 0; lh < L_ * H_ && !rc; lh++) rc = spr_trace_write_head(t, &fx->r[lh]);
  if (!rc) rc = spr_trace_write_summary(t, fx->r);
  if (t) {
    int rc2 = spr_trace_close(t, !rc);
    if (!rc) rc = rc2;
  }
  return rc;
}

static void test_full_disk(void) {
  static fixture fx;
  fill(&fx, SPR_TRACE_FULL);
  char path[512];
  spr_test_path(path, sizeof path, "trace-full", ".h5");
  CU_ASSERT_EQUAL_FATAL(write_full(path, &fx), 0);
  struct stat st;
  stat(path, &st);
  remove(path);
  CU_ASSERT(spr_test_full_disk_levels(write_full, &fx, path, st.st_size) >= 7);
}

static void test_bad_results(void) {
  static fixture fx;
  spr_config c;
  char path[512];
  spr_test_path(path, sizeof path, "trace-bad", ".h5");
  for (int level = SPR_TRACE_MASKS; level <= SPR_TRACE_FULL; level++) {
    tiny_config(&c, level);
    fill(&fx, level);
    spr_trace *t;
    CU_ASSERT_EQUAL_FATAL(spr_trace_create(path, &c, "v", &t), 0);
    spr_head_result r = fx.r[4];

    r.n = 12;
    CU_ASSERT_EQUAL(spr_trace_write_head(t, &r), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "n = 12");
    SPR_ASSERT_CONTAINS(spr_errmsg(), "seq_len 13");
    r = fx.r[4];
    r.d = 6;
    CU_ASSERT_EQUAL(spr_trace_write_head(t, &r), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "d = 6");
    r = fx.r[4];
    r.layer = L_;
    CU_ASSERT_EQUAL(spr_trace_write_head(t, &r), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 2 out of range");
    r = fx.r[4];
    r.head = -1;
    CU_ASSERT_EQUAL(spr_trace_write_head(t, &r), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "head -1 out of range");
    r = fx.r[4];
    r.mask_ideal = NULL;
    CU_ASSERT_EQUAL(spr_trace_write_head(t, &r), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "mask_ideal is NULL");
    if (level == SPR_TRACE_FULL) {
      r = fx.r[4];
      r.analog_scores = NULL;
      CU_ASSERT_EQUAL(spr_trace_write_head(t, &r), SPR_EINVAL);
      SPR_ASSERT_CONTAINS(spr_errmsg(), "analog_scores is NULL but trace level full");
      r = fx.r[4];
      r.k_msb = NULL;
      CU_ASSERT_EQUAL(spr_trace_write_head(t, &r), SPR_EINVAL);
      SPR_ASSERT_CONTAINS(spr_errmsg(), "k_msb is NULL");
    }
    /* bits beyond n in a row's last byte */
    uint8_t m[N_ * RB_];
    memcpy(m, fx.ma[4], sizeof m);
    m[5 * RB_ + 1] |= 0x40;
    r = fx.r[4];
    r.mask_analog = m;
    CU_ASSERT_EQUAL(spr_trace_write_head(t, &r), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "mask_analog row 5 has padding bits");

    /* refused calls wrote nothing: the good result still goes in, once */
    CU_ASSERT_EQUAL(spr_trace_write_head(t, &fx.r[4]), 0);
    CU_ASSERT_EQUAL(spr_trace_write_head(t, &fx.r[4]), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 1 head 1 written twice");

    /* summary: results out of order */
    spr_head_result sw[L_ * H_];
    memcpy(sw, fx.r, sizeof sw);
    sw[1] = fx.r[2];
    sw[2] = fx.r[1];
    CU_ASSERT_EQUAL(spr_trace_write_summary(t, sw), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "res[1] is layer 0 head 2");
    CU_ASSERT_EQUAL(spr_trace_write_summary(t, NULL), SPR_EINVAL);
    CU_ASSERT_EQUAL(spr_trace_write_head(t, NULL), SPR_EINVAL);
    CU_ASSERT_EQUAL(spr_trace_write_summary(t, fx.r), 0);
    CU_ASSERT_EQUAL(spr_trace_write_summary(t, fx.r), SPR_EINVAL);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "summary written twice");
    CU_ASSERT_EQUAL(spr_trace_close(t, 0), 0);
    CU_ASSERT(!temp_exists(path));
  }
}

static long file_bytes(const char *p, unsigned char **out) {
  FILE *f = fopen(p, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  *out = malloc((size_t)n + 1);
  if (fread(*out, 1, (size_t)n, f) != (size_t)n) n = -1;
  fclose(f);
  return n;
}

static void test_identical(void) {
  static fixture fx;
  spr_config c;
  tiny_config(&c, SPR_TRACE_FULL);
  fill(&fx, SPR_TRACE_FULL);
  char a[512], b[512], x[512];
  spr_test_path(a, sizeof a, "trace-same-a", ".h5");
  spr_test_path(b, sizeof b, "trace-same-b", ".h5");
  spr_test_path(x, sizeof x, "trace-other", ".h5");
  CU_ASSERT_EQUAL_FATAL(write_trace(a, &c, &fx), 0);
  /* modification times have a resolution of one second */
  struct timespec ts = {1, 100000000};
  nanosleep(&ts, NULL);
  CU_ASSERT_EQUAL_FATAL(write_trace(b, &c, &fx), 0);
  fx.as[3][17] += 0.5f; /* one score differs */
  CU_ASSERT_EQUAL_FATAL(write_trace(x, &c, &fx), 0);
  unsigned char *da = NULL, *db = NULL, *dx = NULL;
  long na = file_bytes(a, &da), nb = file_bytes(b, &db), nx = file_bytes(x, &dx);
  CU_ASSERT(na > 0);
  CU_ASSERT_EQUAL(na, nb);
  CU_ASSERT(na == nb && memcmp(da, db, (size_t)na) == 0);
  CU_ASSERT(nx != na || memcmp(da, dx, (size_t)na) != 0);
  free(da);
  free(db);
  free(dx);
  remove(a);
  remove(b);
  remove(x);
}

static void test_h5dump(void) {
  if (system("h5dump --version >/dev/null 2>&1") != 0) {
    printf("\n  note: h5dump not found; skipping the h5dump check\n");
    return;
  }
  static fixture fx;
  spr_config c;
  tiny_config(&c, SPR_TRACE_FULL);
  fill(&fx, SPR_TRACE_FULL);
  char path[512], cmd[700], line[4096];
  spr_test_path(path, sizeof path, "trace-dump", ".h5");
  CU_ASSERT_EQUAL_FATAL(write_trace(path, &c, &fx), 0);
  snprintf(cmd, sizeof cmd, "h5dump '%s' 2>&1", path);
  FILE *p = popen(cmd, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  int saw_program = 0, saw_scores = 0, saw_error = 0;
  while (fgets(line, sizeof line, p)) {
    if (strstr(line, "\"sprintsim\"")) saw_program = 1;
    if (strstr(line, "DATASET \"analog_scores\"")) saw_scores = 1;
    if (strstr(line, "h5dump error")) saw_error = 1;
  }
  int st = pclose(p);
  CU_ASSERT_EQUAL(st, 0);
  CU_ASSERT(saw_program);
  CU_ASSERT(saw_scores);
  CU_ASSERT(!saw_error);
  remove(path);
}

/* Causal heads (docs/trace.md): the flag is an int8 attribute of every
 * head group and of /summary (0 for the plain fixture), NaN analog scores
 * above the diagonal survive the round trip, and the writer refuses a
 * causal head whose mask keeps a key j > i and a summary mixing causal
 * and non-causal heads. */
static void test_causal(void) {
  static fixture fx;
  spr_config c;
  char path[512];
  spr_test_path(path, sizeof path, "trace-causal", ".h5");
  for (int causal = 0; causal <= 1; causal++) {
    tiny_config(&c, SPR_TRACE_FULL);
    c.wl.causal = causal;
    fill(&fx, SPR_TRACE_FULL);
    if (causal)
      for (int lh = 0; lh < L_ * H_; lh++) {
        fx.r[lh].causal = 1;
        for (int i = 0; i < N_; i++)
          for (int j = i + 1; j < N_; j++) {
            fx.ma[lh][i * RB_ + j / 8] &= (uint8_t) ~(1u << (j % 8));
            fx.mi[lh][i * RB_ + j / 8] &= (uint8_t) ~(1u << (j % 8));
            fx.as[lh][i * N_ + j] = NAN;
          }
      }
    int rc = write_trace(path, &c, &fx);
    if (rc) fprintf(stderr, "\n  %s\n", spr_errmsg());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    int8_t v = -1;
    CU_ASSERT_EQUAL(attr_num(f, "/summary", "causal", H5T_INTEGER, 1, H5T_NATIVE_INT8, &v), 0);
    CU_ASSERT_EQUAL(v, causal);
    int8_t cfg = -1;
    CU_ASSERT_EQUAL(read_dset(f, "/config/workload/causal", H5T_INTEGER, 1, 0, NULL, H5T_NATIVE_INT8, &cfg), 0);
    CU_ASSERT_EQUAL(cfg, causal);
    int bad = 0;
    for (int lh = 0; lh < L_ * H_; lh++) {
      char g[64], d[96];
      snprintf(g, sizeof g, "/layers/layer_%02d/head_%02d", lh / H_, lh % H_);
      v = -1;
      CU_ASSERT_EQUAL(attr_num(f, g, "causal", H5T_INTEGER, 1, H5T_NATIVE_INT8, &v), 0);
      bad += v != causal;
      static float as[N_ * N_];
      const hsize_t dims[2] = {N_, N_};
      snprintf(d, sizeof d, "%s/analog_scores", g);
      CU_ASSERT_EQUAL(read_dset(f, d, H5T_FLOAT, 4, 2, dims, H5T_NATIVE_FLOAT, as), 0);
      for (int i = 0; i < N_; i++)
        for (int j = 0; j < N_; j++)
          bad += causal && j > i ? !isnan(as[i * N_ + j]) : as[i * N_ + j] != fx.as[lh][i * N_ + j];
    }
    CU_ASSERT_EQUAL(bad, 0);
    H5Fclose(f);
  }
  /* refused: a causal head keeping key 7 for query 3; mixed heads */
  spr_trace *t;
  CU_ASSERT_EQUAL_FATAL(spr_trace_create(path, &c, "v", &t), 0);
  uint8_t m[N_ * RB_];
  memcpy(m, fx.mi[2], sizeof m);
  m[3 * RB_ + 0] |= 0x80;
  spr_head_result r = fx.r[2];
  r.mask_ideal = m;
  CU_ASSERT_EQUAL(spr_trace_write_head(t, &r), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 0 head 2: mask_ideal of a causal head keeps key 7 for query 3 (j > i)");
  r.causal = 0; /* the same mask is fine for a non-causal head */
  CU_ASSERT_EQUAL(spr_trace_write_head(t, &r), 0);
  spr_head_result mixed[L_ * H_];
  memcpy(mixed, fx.r, sizeof mixed);
  mixed[4].causal = 0;
  CU_ASSERT_EQUAL(spr_trace_write_summary(t, mixed), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 1 head 1 is not causal but layer 0 head 0 is causal");
  CU_ASSERT_EQUAL(spr_trace_close(t, 0), 0);
  CU_ASSERT(!temp_exists(path));
  remove(path);
}

int main(void) {
  /* test-side HDF5 calls print their own errors, which helps debugging;
   * the library under test must stay silent regardless */
  static const CU_TestInfo tests[] = {
    {"round trip at level full", test_roundtrip_full},
    {"levels summary and masks", test_levels},
    {"device model record", test_device_model},
    {"abort and incomplete commit leave nothing", test_abort},
    {"unwritable path and bad arguments", test_unwritable},
    {"bad results refused", test_bad_results},
    {"write failure reported, nothing left", test_write_failure},
                         {"input files' provenance", test_inputs},
                         {"full disk at several sizes", test_full_disk},
    {"identical runs give identical bytes", test_identical},
    {"h5dump reads the file", test_h5dump},
    {"causal heads: flags, NaN scores, refusals", test_causal},
    CU_TEST_INFO_NULL};
  return spr_test_run("trace", tests);
}
