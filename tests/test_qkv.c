/* test_qkv.c - sprintsim-qkv files (workloads/spr_qkv.h): files crafted
 * here with the plain HDF5 C API for every rejection, round trips of good
 * files (values equal, padding dropped), the writer, the configuration's
 * sizes from the file, and a run on a file holding the synthetic
 * generator's Q, K, V giving the synthetic run's results exactly. */
/* realpath() */
#define _XOPEN_SOURCE 700
#include "config.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_params.h"
#include "spr_pipeline.h"
#include "spr_h5r.h"
#include "spr_qkv.h"
#include "spr_synth.h"
#include "spr_test.h"

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <sys/stat.h>

static char dir[256]; /* scratch folder of this run */
static int n_paths;

static void scratch(char *p, size_t n, const char *tag) {
  snprintf(p, n, "%s/%s-%d.h5", dir, tag, n_paths++);
}

/* Element (which: 0 Q, 1 K, 2 V) of layer l, item b, head h, token t,
 * coordinate c: non-trivial, distinct everywhere. */
static double val(int which, int l, int b, int h, int t, int c) {
  return 0.37 * sin(1.3 * which + 0.71 * l + 0.29 * b + 1.7 * h + 0.113 * t * (c + 1) + 0.05 * c) *
         (1 + 0.25 * t) + 0.01 * c;
}

typedef struct {
  int L, H, B, N, D;     /* B = 0: unbatched, datasets (H, N, D) */
  hid_t ftype;           /* element type in the file */
  const int *mask;       /* max(B,1) x N values, or NULL: no /mask */
  int vlen_format;       /* variable-length string: 1 ASCII, 2 UTF-8 (h5py's way) */
  hid_t version_type;    /* H5T_STD_I32LE, H5T_STD_I64LE, ... */
} spec;

static spec small(void) {
  spec s = {2, 3, 2, 7, 5, H5T_IEEE_F32LE, NULL, 0, H5T_STD_I32LE};
  return s;
}

static void put_str_attr(hid_t loc, const char *name, const char *v, int vlen) {
  hid_t ty = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
  H5Tset_size(ty, vlen ? H5T_VARIABLE : strlen(v) + 1);
  if (vlen == 2) H5Tset_cset(ty, H5T_CSET_UTF8); /* what h5py writes */
  if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
  hid_t a = H5Acreate2(loc, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (vlen) H5Awrite(a, ty, &v);
  else H5Awrite(a, ty, v);
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(ty);
}

static void put_num_attr(hid_t loc, const char *name, hid_t ftype, hid_t mtype, const void *v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
  hid_t a = H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, mtype, v);
  H5Aclose(a);
  H5Sclose(sp);
}

/* Write a file of spec s; the values are val(); NaN where nan_pad is set
 * and the mask marks padding. */
static void make_file(const char *path, const spec *s, int nan_pad) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  put_str_attr(f, "format", "sprintsim-qkv", s->vlen_format);
  long long one = 1;
  put_num_attr(f, "version", s->version_type, H5T_NATIVE_LLONG, &one);
  const int items = s->B ? s->B : 1;
  const size_t per = (size_t)items * s->H * s->N * s->D;
  double *buf = malloc(per * sizeof *buf);
  hsize_t dims[4] = {(hsize_t)s->B, (hsize_t)s->H, (hsize_t)s->N, (hsize_t)s->D};
  hid_t sp = H5Screate_simple(s->B ? 4 : 3, s->B ? dims : dims + 1, NULL);
  for (int l = 0; l < s->L; l++) {
    char g[32];
    snprintf(g, sizeof g, "layer_%d", l);
    hid_t grp = H5Gcreate2(f, g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (int w = 0; w < 3; w++) {
      size_t k = 0;
      for (int b = 0; b < items; b++)
        for (int h = 0; h < s->H; h++)
          for (int t = 0; t < s->N; t++)
            for (int c = 0; c < s->D; c++, k++)
              buf[k] = nan_pad && s->mask && !s->mask[b * s->N + t] ? NAN : val(w, l, b, h, t, c);
      const char *name = w == 0 ? "Q" : w == 1 ? "K" : "V";
      hid_t ds = H5Dcreate2(grp, name, s->ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
      H5Dclose(ds);
    }
    H5Gclose(grp);
  }
  H5Sclose(sp);
  if (s->mask) {
    hsize_t md[2] = {(hsize_t)s->B, (hsize_t)s->N};
    hid_t msp = H5Screate_simple(s->B ? 2 : 1, s->B ? md : md + 1, NULL);
    hid_t ds = H5Dcreate2(f, "mask", H5T_STD_U8LE, msp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->mask);
    H5Dclose(ds);
    H5Sclose(msp);
  }
  free(buf);
  H5Fclose(f);
}

/* Replace (or create) dataset `name` by one of type ty and the given dims,
 * zero-filled; chunked (nothing allocated) when chunked is set. */
static void replace_dset(const char *path, const char *name, hid_t ty, int rank, const hsize_t *dims,
                         int chunked) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  if (H5Lexists(f, name, H5P_DEFAULT) > 0) H5Ldelete(f, name, H5P_DEFAULT);
  hid_t sp = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (chunked) {
    hsize_t ch[8];
    for (int k = 0; k < rank; k++) ch[k] = dims[k] < 64 ? (dims[k] ? dims[k] : 1) : 64;
    H5Pset_chunk(dcpl, rank, ch);
  }
  hid_t ds = H5Dcreate2(f, name, ty, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  CU_ASSERT(ds >= 0);
  H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(sp);
  H5Fclose(f);
}

/* Set one element of dataset `name` (index idx of its rank) to v. */
static void set_elem(const char *path, const char *name, const hsize_t *idx, double v) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT), sp = H5Dget_space(ds);
  H5Sselect_elements(sp, H5S_SELECT_SET, 1, idx);
  hsize_t one = 1;
  hid_t ms = H5Screate_simple(1, &one, NULL);
  CU_ASSERT(H5Dwrite(ds, H5T_NATIVE_DOUBLE, ms, sp, H5P_DEFAULT, &v) >= 0);
  H5Sclose(ms);
  H5Sclose(sp);
  H5Dclose(ds);
  H5Fclose(f);
}

static void rm_link(const char *path, const char *name) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  CU_ASSERT(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
  H5Fclose(f);
}

static void move_link(const char *path, const char *from, const char *to) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  CU_ASSERT(H5Lmove(f, from, f, to, H5P_DEFAULT, H5P_DEFAULT) >= 0);
  H5Fclose(f);
}

/* spr_qkv_open(path) fails with `want`; the message names the path and
 * every NULL-terminated needle. */
static void expect_open(const char *path, int want, ...) {
  spr_qkv *q = (spr_qkv *)1;
  spr_error_clear();
  int rc = spr_qkv_open(path, &q);
  if (rc != want) fprintf(stderr, "\n  %s: rc %d, want %d: %s", path, rc, want, spr_errmsg());
  CU_ASSERT_EQUAL(rc, want);
  CU_ASSERT_PTR_NULL(q);
  if (!rc) spr_qkv_close(q);
  SPR_ASSERT_CONTAINS(spr_errmsg(), path);
  va_list ap;
  va_start(ap, want);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL;) SPR_ASSERT_CONTAINS(spr_errmsg(), s);
  va_end(ap);
}

/* A fresh good file of spec small(), its path in p. */
static void fresh(char *p, size_t n, const char *tag) {
  scratch(p, n, tag);
  spec s = small();
  make_file(p, &s, 0);
}

/* --- good files --------------------------------------------------------- */

/* Read every head of every item and compare with val(): unbatched and
 * batched, float32 and float64, h5py-style attributes. */
static void check_values(const spec *s) {
  char p[512];
  scratch(p, sizeof p, "good");
  make_file(p, s, 0);
  spr_qkv *q;
  int rc = spr_qkv_open(p, &q);
  if (rc) fprintf(stderr, "\n  %s", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  const spr_qkv_info *in = spr_qkv_get_info(q);
  CU_ASSERT_EQUAL(in->n_layers, s->L);
  CU_ASSERT_EQUAL(in->n_heads, s->H);
  CU_ASSERT_EQUAL(in->seq_len, s->N);
  CU_ASSERT_EQUAL(in->head_dim, s->D);
  CU_ASSERT_EQUAL(in->batch, s->B ? s->B : 1);
  CU_ASSERT_EQUAL(in->batched, s->B > 0);
  CU_ASSERT_EQUAL(in->has_mask, 0);
  CU_ASSERT_EQUAL(in->float_bits, H5Tget_size(s->ftype) * 8);
  const size_t nd = (size_t)s->N * s->D;
  float *Q = malloc(nd * sizeof *Q), *K = malloc(nd * sizeof *K), *V = malloc(nd * sizeof *V);
  int bad = 0;
  for (int b = 0; b < in->batch; b++) {
    int n;
    CU_ASSERT_EQUAL(spr_qkv_item_tokens(q, b, &n), 0);
    CU_ASSERT_EQUAL(n, s->N);
    for (int l = 0; l < s->L; l++)
      for (int h = 0; h < s->H; h++) {
        CU_ASSERT_EQUAL_FATAL(spr_qkv_read_head(q, l, h, b, Q, K, V), 0);
        for (int t = 0; t < s->N; t++)
          for (int c = 0; c < s->D; c++) {
            size_t k = (size_t)t * s->D + c;
            bad += Q[k] != (float)val(0, l, b, h, t, c) || K[k] != (float)val(1, l, b, h, t, c) ||
                   V[k] != (float)val(2, l, b, h, t, c);
          }
      }
  }
  CU_ASSERT_EQUAL(bad, 0);
  /* V may be skipped; out-of-range indices are refused */
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, s->L - 1, s->H - 1, 0, Q, K, NULL), 0);
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, s->L, 0, 0, Q, K, V), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 2 head 0 item 0 outside");
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, 0, s->H, 0, Q, K, V), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, 0, 0, in->batch, Q, K, V), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, 0, 0, -1, Q, K, V), SPR_EINVAL);
  int n;
  CU_ASSERT_EQUAL(spr_qkv_item_tokens(q, in->batch, &n), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "out of range");
  free(Q);
  free(K);
  free(V);
  spr_qkv_close(q);
  spr_qkv_close(NULL);
  remove(p);
}

static void test_round_trip(void) {
  spec s = small();
  check_values(&s); /* batched float32 */
  s.B = 0;
  check_values(&s); /* unbatched */
  s = small();
  s.ftype = H5T_IEEE_F64LE; /* float64: values rounded to float like a cast */
  s.vlen_format = 1;        /* h5py writes variable-length strings ... */
  s.version_type = H5T_STD_I64LE; /* ... and int64 integers */
  check_values(&s);
  s.ftype = H5T_IEEE_F32BE; /* big-endian is converted */
  s.vlen_format = 2;
  s.version_type = H5T_STD_U8LE;
  check_values(&s);
}

/* Padding anywhere in the sequence is dropped; its values (NaN here) are
 * neither returned nor checked. */
static void test_padding(void) {
  char p[512];
  scratch(p, sizeof p, "pad");
  spec s = small(); /* 2 items of N = 7 */
  const int mask[14] = {0, 1, 1, 0, 1, 1, 0, /* item 0: tokens 1, 2, 4, 5 */
                        1, 1, 1, 1, 1, 1, 0}; /* item 1: tokens 0..5 */
  s.mask = mask;
  make_file(p, &s, 1);
  spr_qkv *q;
  CU_ASSERT_EQUAL_FATAL(spr_qkv_open(p, &q), 0);
  CU_ASSERT_EQUAL(spr_qkv_get_info(q)->has_mask, 1);
  int n0, n1;
  CU_ASSERT_EQUAL(spr_qkv_item_tokens(q, 0, &n0), 0);
  CU_ASSERT_EQUAL(spr_qkv_item_tokens(q, 1, &n1), 0);
  CU_ASSERT_EQUAL(n0, 4);
  CU_ASSERT_EQUAL(n1, 6);
  float Q[7 * 5], K[7 * 5], V[7 * 5];
  const int real0[4] = {1, 2, 4, 5};
  int bad = 0;
  for (int l = 0; l < 2; l++)
    for (int h = 0; h < 3; h++) {
      CU_ASSERT_EQUAL_FATAL(spr_qkv_read_head(q, l, h, 0, Q, K, V), 0);
      for (int i = 0; i < 4; i++)
        for (int c = 0; c < 5; c++)
          bad += Q[i * 5 + c] != (float)val(0, l, 0, h, real0[i], c) ||
                 K[i * 5 + c] != (float)val(1, l, 0, h, real0[i], c) ||
                 V[i * 5 + c] != (float)val(2, l, 0, h, real0[i], c);
      CU_ASSERT_EQUAL_FATAL(spr_qkv_read_head(q, l, h, 1, Q, K, V), 0);
      for (int i = 0; i < 6; i++)
        for (int c = 0; c < 5; c++) bad += V[i * 5 + c] != (float)val(2, l, 1, h, i, c);
    }
  CU_ASSERT_EQUAL(bad, 0);
  spr_qkv_close(q);
  /* a single real token is not enough to simulate */
  const int one[14] = {0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1};
  s.mask = one;
  make_file(p, &s, 0);
  CU_ASSERT_EQUAL_FATAL(spr_qkv_open(p, &q), 0);
  CU_ASSERT_EQUAL(spr_qkv_item_tokens(q, 0, &n0), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "batch item 0 has 1 real token");
  CU_ASSERT_EQUAL(spr_qkv_item_tokens(q, 1, &n1), 0);
  CU_ASSERT_EQUAL(n1, 7);
  spr_qkv_close(q);
  /* an unbatched file's mask is (N) */
  s.B = 0;
  const int m1[7] = {1, 0, 1, 1, 0, 1, 1};
  s.mask = m1;
  make_file(p, &s, 1);
  CU_ASSERT_EQUAL_FATAL(spr_qkv_open(p, &q), 0);
  CU_ASSERT_EQUAL(spr_qkv_item_tokens(q, 0, &n0), 0);
  CU_ASSERT_EQUAL(n0, 5);
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, 1, 2, 0, Q, K, V), 0);
  CU_ASSERT_EQUAL(Q[2 * 5 + 3], (float)val(0, 1, 0, 2, 3, 3)); /* third real token = token 3 */
  spr_qkv_close(q);
  remove(p);
}

/* --- rejections ------------------------------------------------------------ */

static void test_file_and_attributes(void) {
  char p[512];
  expect_open("/nonexistent/qkv.h5", SPR_EIO, "cannot open", NULL);
  scratch(p, sizeof p, "text");
  FILE *t = fopen(p, "w");
  fputs("Q K V\n", t);
  fclose(t);
  expect_open(p, SPR_EHDF5, "not an HDF5 file", NULL);
  spr_qkv *q = (spr_qkv *)1;
  CU_ASSERT_EQUAL(spr_qkv_open("", &q), SPR_EINVAL);
  CU_ASSERT_PTR_NULL(q);

  fresh(p, sizeof p, "attr");
  hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  H5Adelete(f, "format");
  H5Fclose(f);
  expect_open(p, SPR_EHDF5, "root attribute 'format' is missing", NULL);
  f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  put_str_attr(f, "format", "sprintsim-trace", 0);
  H5Fclose(f);
  expect_open(p, SPR_EHDF5, "'format' is \"sprintsim-trace\", expected \"sprintsim-qkv\"", NULL);
  f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  put_str_attr(f, "format", "sprintsim-qkvx", 2);
  H5Fclose(f);
  expect_open(p, SPR_EHDF5, "\"sprintsim-qkvx\"", NULL);
  int32_t seven = 7;
  f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  put_num_attr(f, "format", H5T_STD_I32LE, H5T_NATIVE_INT32, &seven);
  H5Fclose(f);
  expect_open(p, SPR_EHDF5, "root attribute 'format' is an integer type", NULL);

  fresh(p, sizeof p, "ver");
  f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  H5Adelete(f, "version");
  H5Fclose(f);
  expect_open(p, SPR_EHDF5, "root attribute 'version' is missing", NULL);
  int64_t two = 2;
  f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  put_num_attr(f, "version", H5T_STD_I64LE, H5T_NATIVE_INT64, &two);
  H5Fclose(f);
  expect_open(p, SPR_EHDF5, "'version' is 2; this sprintsim reads version 1", NULL);
  double v1 = 1.0;
  f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  put_num_attr(f, "version", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v1);
  H5Fclose(f);
  expect_open(p, SPR_EHDF5, "'version' is not one integer", NULL);
  remove(p);
}

static void test_groups(void) {
  char p[512];
  fresh(p, sizeof p, "grp");
  move_link(p, "layer_0", "layer_2"); /* layer_1, layer_2: no layer_0 */
  expect_open(p, SPR_EHDF5, "group '/layer_0' is missing", NULL);
  fresh(p, sizeof p, "gap");
  move_link(p, "layer_1", "layer_3"); /* layer_0, layer_3 */
  expect_open(p, SPR_EHDF5, "group '/layer_3' does not continue layer_0 .. layer_0", NULL);
  fresh(p, sizeof p, "zero");
  move_link(p, "layer_1", "layer_01");
  expect_open(p, SPR_EHDF5, "'/layer_01'", "leading zeros", NULL);
  fresh(p, sizeof p, "dsgrp");
  rm_link(p, "layer_1");
  hsize_t d3[3] = {3, 7, 5};
  replace_dset(p, "layer_1", H5T_IEEE_F32LE, 3, d3, 0);
  expect_open(p, SPR_EHDF5, "'/layer_1' is not a group", NULL);
  /* other objects (notes, sources) are allowed */
  fresh(p, sizeof p, "extra");
  replace_dset(p, "notes", H5T_STD_I32LE, 3, d3, 0);
  spr_qkv *q;
  CU_ASSERT_EQUAL(spr_qkv_open(p, &q), 0);
  spr_qkv_close(q);
  /* more than SPR_MAX_LAYERS layers */
  scratch(p, sizeof p, "many");
  spec s = small();
  s.L = SPR_MAX_LAYERS + 1;
  s.H = 1;
  s.B = 0;
  s.N = 2;
  s.D = 1;
  make_file(p, &s, 0);
  expect_open(p, SPR_EHDF5, "more than 64 layer groups", NULL);
  s.L = SPR_MAX_LAYERS; /* exactly the limit is fine */
  make_file(p, &s, 0);
  CU_ASSERT_EQUAL(spr_qkv_open(p, &q), 0);
  if (q) CU_ASSERT_EQUAL(spr_qkv_get_info(q)->n_layers, SPR_MAX_LAYERS);
  spr_qkv_close(q);
  remove(p);
}

static void test_datasets(void) {
  char p[512];
  fresh(p, sizeof p, "miss");
  rm_link(p, "layer_1/K");
  expect_open(p, SPR_EHDF5, "dataset '/layer_1/K' is missing", NULL);
  fresh(p, sizeof p, "notds");
  rm_link(p, "layer_0/V");
  hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  H5Gclose(H5Gcreate2(f, "layer_0/V", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Fclose(f);
  expect_open(p, SPR_EHDF5, "'/layer_0/V' is not a dataset", NULL);
  hsize_t d4[4] = {2, 3, 7, 5};
  fresh(p, sizeof p, "int");
  replace_dset(p, "layer_1/Q", H5T_STD_I16LE, 4, d4, 0);
  expect_open(p, SPR_EHDF5, "dataset '/layer_1/Q' is an integer type, expected float32 or float64", NULL);
  fresh(p, sizeof p, "f128");
  replace_dset(p, "layer_0/K", H5T_NATIVE_LDOUBLE, 4, d4, 0);
  expect_open(p, SPR_EHDF5, "dataset '/layer_0/K' is a 128-bit float", NULL);
  fresh(p, sizeof p, "str");
  hid_t st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, 4);
  replace_dset(p, "layer_0/Q", st, 4, d4, 0);
  H5Tclose(st);
  expect_open(p, SPR_EHDF5, "'/layer_0/Q' is a string type", NULL);
  fresh(p, sizeof p, "rank2");
  hsize_t d2[2] = {7, 5};
  replace_dset(p, "layer_0/Q", H5T_IEEE_F32LE, 2, d2, 0);
  expect_open(p, SPR_EHDF5, "'/layer_0/Q' has rank 2, expected 4 (batch, heads, N, d) or 3", NULL);
  fresh(p, sizeof p, "rank5");
  hsize_t d5[5] = {1, 2, 3, 7, 5};
  replace_dset(p, "layer_1/V", H5T_IEEE_F32LE, 5, d5, 0);
  expect_open(p, SPR_EHDF5, "'/layer_1/V' has rank 5", NULL);
  fresh(p, sizeof p, "empty");
  hsize_t de[4] = {2, 3, 0, 5};
  replace_dset(p, "layer_0/Q", H5T_IEEE_F32LE, 4, de, 0);
  expect_open(p, SPR_EHDF5, "'/layer_0/Q' is empty (axis 2 has length 0)", NULL);
  /* Q, K, V shape mismatch within a layer, and across layers */
  fresh(p, sizeof p, "qk");
  hsize_t dn[4] = {2, 3, 8, 5};
  replace_dset(p, "layer_0/K", H5T_IEEE_F32LE, 4, dn, 0);
  expect_open(p, SPR_EHDF5, "'/layer_0/K' has shape (2, 3, 8, 5) but '/layer_0/Q' has (2, 3, 7, 5)",
              "sequence length N differs", NULL);
  fresh(p, sizeof p, "heads");
  hsize_t dh[4] = {2, 4, 7, 5};
  replace_dset(p, "layer_1/Q", H5T_IEEE_F32LE, 4, dh, 0);
  expect_open(p, SPR_EHDF5, "'/layer_1/Q' has shape (2, 4, 7, 5)", "head count differs", NULL);
  fresh(p, sizeof p, "dim");
  hsize_t dd[4] = {2, 3, 7, 6};
  replace_dset(p, "layer_1/V", H5T_IEEE_F32LE, 4, dd, 0);
  expect_open(p, SPR_EHDF5, "'/layer_1/V'", "head dimension d differs", NULL);
  fresh(p, sizeof p, "batch");
  hsize_t db[4] = {3, 3, 7, 5};
  replace_dset(p, "layer_1/K", H5T_IEEE_F32LE, 4, db, 0);
  expect_open(p, SPR_EHDF5, "'/layer_1/K'", "batch size differs", NULL);
  fresh(p, sizeof p, "rank34");
  hsize_t d3[3] = {3, 7, 5};
  replace_dset(p, "layer_1/K", H5T_IEEE_F32LE, 3, d3, 0);
  expect_open(p, SPR_EHDF5, "'/layer_1/K'", "rank differs", NULL);
  remove(p);
}

/* Sizes beyond the simulator's limits: chunked datasets with nothing
 * allocated, so the files stay small. */
static void test_limits(void) {
  char p[512];
  scratch(p, sizeof p, "limit");
  spec s = small();
  s.L = 1;
  s.B = 0;
  s.N = 2;
  s.D = 1;
  struct {
    int rank;
    hsize_t d[4];
    const char *needle;
  } cases[] = {
    {3, {SPR_MAX_HEADS + 1, 2, 1}, "has 65 heads; sprintsim simulates at most 64"},
    {3, {1, SPR_QKV_MAX_SEQ + 1, 1}, "sequence length N = 16385, outside [2, 16384]"},
    {3, {1, 1, 4}, "sequence length N = 1, outside [2, 16384]"},
    {3, {1, 2, SPR_QKV_MAX_DIM + 1}, "head dimension d = 1025, more than 1024"},
    {4, {SPR_QKV_MAX_BATCH + 1, 1, 2, 1}, "holds 1048577 batch items, more than 1048576"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    make_file(p, &s, 0);
    for (int t = 0; t < 3; t++) {
      const char *names[3] = {"layer_0/Q", "layer_0/K", "layer_0/V"};
      replace_dset(p, names[t], H5T_IEEE_F32LE, cases[k].rank, cases[k].d, 1);
    }
    expect_open(p, SPR_EHDF5, "'/layer_0/Q'", cases[k].needle, NULL);
  }
  /* the limits themselves are accepted */
  make_file(p, &s, 0);
  hsize_t ok[3] = {SPR_MAX_HEADS, SPR_QKV_MAX_SEQ, 2};
  for (int t = 0; t < 3; t++) {
    const char *names[3] = {"layer_0/Q", "layer_0/K", "layer_0/V"};
    replace_dset(p, names[t], H5T_IEEE_F32LE, 3, ok, 1);
  }
  spr_qkv *q;
  CU_ASSERT_EQUAL(spr_qkv_open(p, &q), 0);
  spr_qkv_close(q);
  /* a mask above SPR_QKV_MAX_MASK elements: 16385 items x 16384 tokens */
  hsize_t big[4] = {16385, 1, SPR_QKV_MAX_SEQ, 1}, bm[2] = {16385, SPR_QKV_MAX_SEQ};
  for (int t = 0; t < 3; t++) {
    const char *names[3] = {"layer_0/Q", "layer_0/K", "layer_0/V"};
    replace_dset(p, names[t], H5T_IEEE_F32LE, 4, big, 1);
  }
  replace_dset(p, "mask", H5T_STD_U8LE, 2, bm, 1);
  expect_open(p, SPR_EHDF5, "dataset '/mask' has 16385 x 16384 = 268451840 elements, more than 268435456", NULL);
  remove(p);
}

static void test_values(void) {
  char p[512];
  spr_qkv *q;
  float buf[3][7 * 5];
  struct {
    const char *dset;
    hsize_t idx[4];
    double v;
    hid_t ftype;
    const char *needle;
  } cases[] = {
    {"layer_1/K", {1, 2, 6, 4}, NAN, H5T_IEEE_F32LE, "dataset '/layer_1/K' element [1][2][6][4] is nan (not finite)"},
    {"layer_0/Q", {1, 0, 0, 0}, INFINITY, H5T_IEEE_F32LE, "dataset '/layer_0/Q' element [1][0][0][0] is inf (not finite)"},
    {"layer_1/V", {1, 1, 3, 2}, -INFINITY, H5T_IEEE_F64LE, "'/layer_1/V' element [1][1][3][2] is -inf"},
    {"layer_0/V", {1, 2, 5, 1}, 3.5e38, H5T_IEEE_F64LE, "'/layer_0/V' element [1][2][5][1] is 3.5e+38 (beyond float32's range)"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    scratch(p, sizeof p, "val");
    spec s = small();
    s.ftype = cases[k].ftype;
    make_file(p, &s, 0);
    set_elem(p, cases[k].dset, cases[k].idx, cases[k].v);
    /* the structure is fine: the value is found when its head is read */
    CU_ASSERT_EQUAL_FATAL(spr_qkv_open(p, &q), 0);
    const int l = cases[k].dset[6] - '0', b = (int)cases[k].idx[0], h = (int)cases[k].idx[1];
    CU_ASSERT_EQUAL(spr_qkv_read_head(q, l, (h + 1) % 3, b, buf[0], buf[1], buf[2]), 0);
    CU_ASSERT_EQUAL(spr_qkv_read_head(q, l, h, 1 - b, buf[0], buf[1], buf[2]), 0);
    spr_error_clear();
    CU_ASSERT_EQUAL(spr_qkv_read_head(q, l, h, b, buf[0], buf[1], buf[2]), SPR_EHDF5);
    SPR_ASSERT_CONTAINS(spr_errmsg(), p);
    SPR_ASSERT_CONTAINS(spr_errmsg(), cases[k].needle);
    spr_qkv_close(q);
    remove(p);
  }
  /* unbatched files name a 3-part index */
  scratch(p, sizeof p, "val3");
  spec s = small();
  s.B = 0;
  make_file(p, &s, 0);
  hsize_t i3[3] = {2, 4, 0};
  set_elem(p, "layer_0/Q", i3, NAN);
  CU_ASSERT_EQUAL_FATAL(spr_qkv_open(p, &q), 0);
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, 0, 2, 0, buf[0], buf[1], buf[2]), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'/layer_0/Q' element [2][4][0] is nan");
  spr_qkv_close(q);
  remove(p);
}

static void test_masks(void) {
  char p[512];
  spec s = small();
  const int good[14] = {1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1};
  s.mask = good;
  scratch(p, sizeof p, "mask");
  hsize_t i2[2] = {1, 3};
  make_file(p, &s, 0);
  set_elem(p, "mask", i2, 2);
  expect_open(p, SPR_EHDF5, "dataset '/mask' element [1][3] is 2; expected 0 (padding) or 1 (real token)", NULL);
  make_file(p, &s, 0);
  hsize_t md[2] = {2, 7};
  replace_dset(p, "mask", H5T_STD_I64LE, 2, md, 0); /* zeros */
  hsize_t i0[2] = {0, 3};
  set_elem(p, "mask", i0, -1);
  expect_open(p, SPR_EHDF5, "element [0][3] is -1", NULL);
  make_file(p, &s, 0);
  replace_dset(p, "mask", H5T_STD_I64LE, 2, md, 0);
  expect_open(p, SPR_EHDF5, "dataset '/mask': item 0 is all padding", NULL);
  make_file(p, &s, 0);
  replace_dset(p, "mask", H5T_IEEE_F32LE, 2, md, 0);
  expect_open(p, SPR_EHDF5, "dataset '/mask' is a floating-point type, expected integers 0/1 (uint8)", NULL);
  make_file(p, &s, 0);
  hsize_t wrong[2] = {2, 6};
  replace_dset(p, "mask", H5T_STD_U8LE, 2, wrong, 0);
  expect_open(p, SPR_EHDF5, "dataset '/mask' has rank 2 shape (2, 6), expected (2, 7) (batch, N)", NULL);
  make_file(p, &s, 0);
  hsize_t flat[1] = {7};
  replace_dset(p, "mask", H5T_STD_U8LE, 1, flat, 0);
  expect_open(p, SPR_EHDF5, "dataset '/mask' has rank 1", "expected (2, 7)", NULL);
  const int pad1[14] = {1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0};
  s.mask = pad1;
  make_file(p, &s, 0);
  expect_open(p, SPR_EHDF5, "dataset '/mask': item 1 is all padding", NULL);
  /* unbatched: the mask is (N) */
  s.B = 0;
  s.mask = good;
  make_file(p, &s, 0);
  replace_dset(p, "mask", H5T_STD_U8LE, 2, md, 0);
  expect_open(p, SPR_EHDF5, "has rank 2 shape (2, 7), expected (7) (N)", NULL);
  make_file(p, &s, 0);
  hsize_t i1[1] = {6};
  set_elem(p, "mask", i1, 5);
  expect_open(p, SPR_EHDF5, "dataset '/mask' element [6] is 5", NULL);
  /* a group named mask */
  make_file(p, &s, 0);
  rm_link(p, "mask");
  hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  H5Gclose(H5Gcreate2(f, "mask", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Fclose(f);
  expect_open(p, SPR_EHDF5, "'/mask' is not a dataset", NULL);
  remove(p);
}

/* --- the writer ------------------------------------------------------------ */

static void test_writer(void) {
  char p[512];
  scratch(p, sizeof p, "writer");
  const int L = 2, H = 2, B = 2, N = 6, D = 3;
  const uint8_t mask[12] = {1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1};
  spr_qkv_writer *w;
  CU_ASSERT_EQUAL_FATAL(spr_qkv_create(p, L, H, B, N, D, mask, &w), 0);
  float Q[18], K[18], V[18];
  for (int l = 0; l < L; l++)
    for (int h = 0; h < H; h++)
      for (int b = 0; b < B; b++) {
        for (int k = 0; k < N * D; k++) {
          Q[k] = (float)val(0, l, b, h, k / D, k % D);
          K[k] = (float)val(1, l, b, h, k / D, k % D);
          V[k] = (float)val(2, l, b, h, k / D, k % D);
        }
        CU_ASSERT_EQUAL(spr_qkv_write_head(w, l, h, b, Q, K, V), 0);
      }
  CU_ASSERT_EQUAL(spr_qkv_write_head(w, 1, 1, 1, Q, K, V), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "written twice");
  CU_ASSERT_EQUAL(spr_qkv_write_head(w, 2, 0, 0, Q, K, V), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_qkv_finish(w, 1), 0);
  spr_qkv *q;
  CU_ASSERT_EQUAL_FATAL(spr_qkv_open(p, &q), 0);
  const spr_qkv_info *in = spr_qkv_get_info(q);
  CU_ASSERT(in->n_layers == L && in->n_heads == H && in->batch == B && in->seq_len == N &&
            in->head_dim == D && in->has_mask && in->batched && in->float_bits == 32);
  int n;
  CU_ASSERT_EQUAL(spr_qkv_item_tokens(q, 1, &n), 0);
  CU_ASSERT_EQUAL(n, 4);
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, 1, 0, 1, Q, K, V), 0);
  const int real[4] = {0, 2, 3, 5};
  int bad = 0;
  for (int i = 0; i < 4; i++)
    for (int c = 0; c < D; c++) bad += K[i * D + c] != (float)val(1, 1, 1, 0, real[i], c);
  CU_ASSERT_EQUAL(bad, 0);
  spr_qkv_close(q);
  /* unfinished: refused, nothing left */
  remove(p);
  CU_ASSERT_EQUAL_FATAL(spr_qkv_create(p, 1, 1, 0, N, D, NULL, &w), 0);
  CU_ASSERT_EQUAL(spr_qkv_finish(w, 1), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 0 head 0 item 0 was not written");
  struct stat st;
  CU_ASSERT_NOT_EQUAL(stat(p, &st), 0);
  /* bad arguments */
  const uint8_t m2[6] = {1, 1, 2, 1, 1, 1}, m0[6] = {0};
  CU_ASSERT_EQUAL(spr_qkv_create(p, 1, 1, 0, N, D, m2, &w), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "mask[0][2] is 2");
  CU_ASSERT_EQUAL(spr_qkv_create(p, 1, 1, 0, N, D, m0, &w), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_qkv_create(p, SPR_MAX_LAYERS + 1, 1, 0, N, D, NULL, &w), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_qkv_create(p, 1, 1, 0, 1, D, NULL, &w), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_qkv_create(dir, 1, 1, 0, N, D, NULL, &w), SPR_EIO);
  CU_ASSERT_EQUAL(spr_qkv_finish(NULL, 1), 0);
  /* a non-finite value is refused */
  CU_ASSERT_EQUAL_FATAL(spr_qkv_create(p, 1, 1, 0, N, D, NULL, &w), 0);
  V[7] = NAN;
  CU_ASSERT_EQUAL(spr_qkv_write_head(w, 0, 0, 0, Q, K, V), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "V[2][1] is nan");
  CU_ASSERT_EQUAL(spr_qkv_finish(w, 0), 0);
  CU_ASSERT_NOT_EQUAL(stat(p, &st), 0);
}

/* --- configuration and run ------------------------------------------------- */

static void test_resolve(void) {
  char p[512];
  scratch(p, sizeof p, "resolve");
  spec s = small();
  const int mask[14] = {1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1};
  s.mask = mask;
  make_file(p, &s, 0);
  spr_config c;
  spr_config_default(&c);
  c.wl.source = SPR_SOURCE_QKV;
  strcpy(c.wl.qkv_file, p);
  c.wl.qkv_item = 0;
  CU_ASSERT_EQUAL_FATAL(spr_qkv_resolve(&c, "t.ini"), 0);
  CU_ASSERT_EQUAL(c.wl.seq_len, 5);
  CU_ASSERT_EQUAL(c.wl.n_layers, 2);
  CU_ASSERT_EQUAL(c.wl.n_heads, 3);
  CU_ASSERT_EQUAL(c.wl.head_dim, 5);
  CU_ASSERT_EQUAL(c.wl.qkv_file[0], '/'); /* canonical absolute path */
  char *abs = realpath(p, NULL);
  CU_ASSERT_STRING_EQUAL(c.wl.qkv_file, abs);
  free(abs);
  /* resolving again changes nothing */
  spr_config d = c;
  CU_ASSERT_EQUAL(spr_qkv_resolve(&d, "t.ini"), 0);
  CU_ASSERT_EQUAL(memcmp(&d, &c, sizeof c), 0);
  /* fewer layers and heads select the first ones */
  spr_config_default(&c);
  c.wl.source = SPR_SOURCE_QKV;
  strcpy(c.wl.qkv_file, p);
  c.wl.qkv_item = 1;
  c.wl.n_layers = 1;
  c.wl.n_heads = 2;
  CU_ASSERT_EQUAL(spr_qkv_resolve(&c, "t.ini"), 0);
  CU_ASSERT(c.wl.seq_len == 7 && c.wl.n_layers == 1 && c.wl.n_heads == 2 && c.wl.head_dim == 5);
  /* sizes that do not fit the file */
  struct {
    int item, seq, layers, heads, dim;
    const char *needle;
  } bad[] = {
    {2, 0, 0, 0, 0, "t.ini: key 'workload.qkv_item': value 2 out of range"},
    {0, 7, 0, 0, 0, "t.ini: key 'workload.seq_len': value 7, but item 0 of"},
    {0, 0, 3, 0, 0, "t.ini: key 'workload.layers': value 3, but"},
    {0, 0, 0, 4, 0, "t.ini: key 'workload.heads': value 4, but"},
    {0, 0, 0, 0, 64, "t.ini: key 'workload.head_dim': value 64, but"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    spr_config_default(&c);
    c.wl.source = SPR_SOURCE_QKV;
    strcpy(c.wl.qkv_file, p);
    c.wl.qkv_item = bad[k].item;
    c.wl.seq_len = bad[k].seq;
    c.wl.n_layers = bad[k].layers;
    c.wl.n_heads = bad[k].heads;
    c.wl.head_dim = bad[k].dim;
    CU_ASSERT_EQUAL(spr_qkv_resolve(&c, "t.ini"), SPR_ECONFIG);
    SPR_ASSERT_CONTAINS(spr_errmsg(), bad[k].needle);
    SPR_ASSERT_CONTAINS(spr_errmsg(), p[0] == '.' && p[1] == '/' ? p + 2 : p); /* made absolute */
  }
  /* a missing file and a bad file are named */
  spr_config_default(&c);
  c.wl.source = SPR_SOURCE_QKV;
  strcpy(c.wl.qkv_file, "/nonexistent/q.h5");
  CU_ASSERT_EQUAL(spr_qkv_resolve(&c, "t.ini"), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "/nonexistent/q.h5: cannot open");
  /* threshold values counted against the file's layers */
  spr_config_default(&c);
  c.wl.source = SPR_SOURCE_QKV;
  strcpy(c.wl.qkv_file, p);
  c.thr.mode = SPR_THR_DIRECT;
  c.thr.n_values = 3;
  CU_ASSERT_EQUAL(spr_qkv_resolve(&c, "t.ini"), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "3 values given; needs 1 or one per layer (2)");
  /* synthetic: the plain resolve */
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_qkv_resolve(&c, "t.ini"), 0);
  CU_ASSERT_EQUAL(c.wl.seq_len, 512);
  /* a run refuses sizes that are not the file's */
  spr_config_default(&c);
  c.wl.source = SPR_SOURCE_QKV;
  strcpy(c.wl.qkv_file, p);
  CU_ASSERT_EQUAL_FATAL(spr_qkv_resolve(&c, "t.ini"), 0);
  c.wl.seq_len = 6;
  spr_run *r = (spr_run *)1;
  CU_ASSERT_EQUAL(spr_run_alloc(&c, 1, &r), SPR_EINVAL);
  CU_ASSERT_PTR_NULL(r);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "does not match item 0");
  remove(p);
}

/* Scalar results of a run, per head. */
static spr_head_result *run_all(const spr_config *c, int threads) {
  spr_run *r;
  int rc = spr_run_alloc(c, threads, &r);
  if (rc) fprintf(stderr, "\n  %s", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  for (int l = 0; l < c->wl.n_layers; l++) {
    rc = spr_run_layer(r, l);
    if (rc) fprintf(stderr, "\n  %s", spr_errmsg());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
  }
  const size_t LH = (size_t)c->wl.n_layers * c->wl.n_heads;
  spr_head_result *out = malloc(LH * sizeof *out);
  memcpy(out, spr_run_results(r), LH * sizeof *out);
  spr_run_free(r);
  return out;
}

/* The generator's Q, K, V written (with the plain HDF5 API) as item 1 of a
 * batched file with NaN padding between the tokens give, head by head,
 * exactly the synthetic run's results: thresholds, decisions, masses and
 * every scheme's digital path and ledger. */
static void test_run_equals_synthetic(void) {
  spr_config c;
  spr_config_default(&c);
  c.seed = 11;
  c.wl.seq_len = 40;
  c.wl.n_layers = 2;
  c.wl.n_heads = 3;
  c.wl.head_dim = 32;
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "t"), 0);
  const int L = 2, H = 3, N = 40, D = 32, NP = 52;
  /* item 1: 12 padding tokens among the 40 real ones */
  int mask[2 * 52];
  const int pads[12] = {0, 5, 6, 17, 30, 31, 32, 45, 48, 49, 50, 51};
  for (int t = 0; t < NP; t++) {
    mask[t] = t != 3;
    mask[NP + t] = 1;
  }
  for (int k = 0; k < 12; k++) mask[NP + pads[k]] = 0;
  float *Q = malloc((size_t)N * D * sizeof *Q), *K = malloc((size_t)N * D * sizeof *K),
        *V = malloc((size_t)N * D * sizeof *V);
  float *buf = malloc((size_t)2 * H * NP * D * sizeof *buf);
  char p[512];
  scratch(p, sizeof p, "synth");
  hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  put_str_attr(f, "format", "sprintsim-qkv", 1);
  int32_t one = 1;
  put_num_attr(f, "version", H5T_STD_I32LE, H5T_NATIVE_INT32, &one);
  hsize_t dims[4] = {2, (hsize_t)H, (hsize_t)NP, (hsize_t)D};
  hid_t sp = H5Screate_simple(4, dims, NULL);
  for (int l = 0; l < L; l++) {
    float *qkv[3];
    const size_t item = (size_t)H * NP * D;
    float *all[3];
    for (int w = 0; w < 3; w++) all[w] = malloc(2 * item * sizeof(float));
    for (int h = 0; h < H; h++) {
      CU_ASSERT_EQUAL_FATAL(spr_synth_head(&c.wl, c.seed, l, h, Q, K, V), 0);
      qkv[0] = Q;
      qkv[1] = K;
      qkv[2] = V;
      for (int w = 0; w < 3; w++) {
        /* item 0: other values; item 1: the head's tokens in order, NaN padding */
        for (int t = 0; t < NP; t++)
          for (int c2 = 0; c2 < D; c2++)
            all[w][((size_t)h * NP + t) * D + c2] = (float)val(w, l, 0, h, t, c2);
        for (int t = 0, i = 0; t < NP; t++) {
          float *row = all[w] + item + ((size_t)h * NP + t) * D;
          if (!mask[NP + t]) {
            for (int c2 = 0; c2 < D; c2++) row[c2] = NAN;
          } else {
            memcpy(row, qkv[w] + (size_t)i * D, D * sizeof(float));
            i++;
          }
        }
      }
    }
    char g[32];
    snprintf(g, sizeof g, "layer_%d", l);
    hid_t grp = H5Gcreate2(f, g, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (int w = 0; w < 3; w++) {
      hid_t ds = H5Dcreate2(grp, w == 0 ? "Q" : w == 1 ? "K" : "V", H5T_IEEE_F32LE, sp, H5P_DEFAULT,
                            H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, all[w]);
      H5Dclose(ds);
      free(all[w]);
    }
    H5Gclose(grp);
  }
  H5Sclose(sp);
  hsize_t md[2] = {2, (hsize_t)NP};
  hid_t msp = H5Screate_simple(2, md, NULL);
  hid_t mds = H5Dcreate2(f, "mask", H5T_STD_I32LE, msp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(mds, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, mask);
  H5Dclose(mds);
  H5Sclose(msp);
  H5Fclose(f);
  free(buf);
  free(Q);
  free(K);
  free(V);

  spr_config cq;
  spr_config_default(&cq);
  cq.seed = 11;
  cq.wl.source = SPR_SOURCE_QKV;
  strcpy(cq.wl.qkv_file, p);
  cq.wl.qkv_item = 1;
  CU_ASSERT_EQUAL_FATAL(spr_qkv_resolve(&cq, "t"), 0);
  CU_ASSERT(cq.wl.seq_len == N && cq.wl.n_layers == L && cq.wl.n_heads == H && cq.wl.head_dim == D);
  spr_head_result *a = run_all(&c, 2), *b = run_all(&cq, 1);
  int differ = 0;
  double keep = 0;
  for (int k = 0; k < L * H; k++) {
    const spr_head_result *x = &a[k], *y = &b[k];
    int same = x->n == y->n && x->d == y->d && x->n_kept == y->n_kept &&
               x->n_ideal_kept == y->n_ideal_kept && x->false_prunes == y->false_prunes &&
               x->false_keeps == y->false_keeps && x->keep_rate == y->keep_rate &&
               x->mass_retained == y->mass_retained &&
               x->ideal_mass_retained == y->ideal_mass_retained && x->threshold == y->threshold &&
               x->threshold_code == y->threshold_code && x->range == y->range &&
               x->q_scale == y->q_scale && x->k_scale == y->k_scale &&
               !memcmp(x->scheme, y->scheme, sizeof x->scheme);
    if (!same) fprintf(stderr, "\n  head %d differs: kept %lld vs %lld", k, (long long)x->n_kept,
                       (long long)y->n_kept);
    differ += !same;
    keep += x->keep_rate;
  }
  CU_ASSERT_EQUAL(differ, 0);
  /* the comparison is not vacuous: the heads kept something, not all */
  CU_ASSERT(keep / (L * H) > 0.02 && keep / (L * H) < 0.6);
  CU_ASSERT(a[0].scheme[SPR_SCHEME_DENSE].energy_total_J > 0);
  free(b);
  /* item 0 holds other values: its results differ */
  cq.wl.qkv_item = 0;
  cq.wl.seq_len = 0;
  CU_ASSERT_EQUAL_FATAL(spr_qkv_resolve(&cq, "t"), 0);
  CU_ASSERT_EQUAL(cq.wl.seq_len, NP - 1);
  b = run_all(&cq, 1);
  CU_ASSERT(b[0].n != a[0].n || b[0].n_kept != a[0].n_kept);
  free(a);
  free(b);
  remove(p);
}

/* --- h5py's NULLPAD strings, files changed while read, hostile files --- */

/* A fixed-length string attribute of `size` bytes with padding `pad`. */
static void put_padded_attr(const char *path, const char *name, const char *v, size_t size,
                            H5T_str_t pad) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t ty = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
  H5Tset_size(ty, size);
  H5Tset_strpad(ty, pad);
  if (H5Aexists(f, name) > 0) H5Adelete(f, name);
  char *buf = calloc(size + 1, 1);
  memset(buf, pad == H5T_STR_SPACEPAD ? ' ' : 0, size);
  memcpy(buf, v, strlen(v) < size ? strlen(v) : size);
  hid_t a = H5Acreate2(f, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, ty, buf);
  free(buf);
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(ty);
  H5Fclose(f);
}

static void test_string_padding(void) {
  char p[512];
  spr_qkv *q;
  /* h5py writes np.bytes_("sprintsim-qkv") as a 13-byte NULLPAD string:
   * no terminator, so reading it into 13 bytes lost the last 'v' */
  fresh(p, sizeof p, "nullpad");
  put_padded_attr(p, "format", "sprintsim-qkv", 13, H5T_STR_NULLPAD);
  CU_ASSERT_EQUAL(spr_qkv_open(p, &q), 0);
  spr_qkv_close(q);
  put_padded_attr(p, "format", "sprintsim-qkv", 20, H5T_STR_NULLPAD);
  CU_ASSERT_EQUAL(spr_qkv_open(p, &q), 0);
  spr_qkv_close(q);
  put_padded_attr(p, "format", "sprintsim-qkv", 16, H5T_STR_SPACEPAD);
  CU_ASSERT_EQUAL(spr_qkv_open(p, &q), 0);
  spr_qkv_close(q);
  put_padded_attr(p, "format", "sprintsim-qk", 12, H5T_STR_NULLPAD);
  expect_open(p, SPR_EHDF5, "'format' is \"sprintsim-qk\", expected \"sprintsim-qkv\"", NULL);
  /* the file h5py wrote (tests/data/qkv-nullpad-format.h5: 2 items, 2
   * heads, N = 6, d = 4) */
  const char *src = getenv("top_srcdir");
  char hp[512];
  snprintf(hp, sizeof hp, "%s/tests/data/qkv-nullpad-format.h5", src ? src : ".");
  CU_ASSERT_EQUAL_FATAL(spr_qkv_open(hp, &q), 0);
  const spr_qkv_info *in = spr_qkv_get_info(q);
  CU_ASSERT(in->batch == 2 && in->n_heads == 2 && in->seq_len == 6 && in->head_dim == 4);
  float Q[24], K[24], V[24];
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, 0, 1, 1, Q, K, V), 0);
  spr_qkv_close(q);
}

static uint64_t fnv_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint64_t x = UINT64_C(14695981039346656037);
  for (int c; (c = fgetc(f)) != EOF;) {
    x ^= (unsigned char)c;
    x *= UINT64_C(1099511628211);
  }
  fclose(f);
  return x;
}

/* A file truncated or rewritten while a run reads it is refused, not read
 * as zeros (libhdf5 reads zeros past the end of a truncated file). */
static void test_changed_during_read(void) {
  char p[512], id[32], want[32];
  fresh(p, sizeof p, "changed");
  spr_qkv *q;
  CU_ASSERT_EQUAL_FATAL(spr_qkv_open(p, &q), 0);
  CU_ASSERT_EQUAL(spr_qkv_content_id(q, id, sizeof id), 0);
  snprintf(want, sizeof want, "fnv1a64:%016llx", (unsigned long long)fnv_file(p));
  CU_ASSERT_STRING_EQUAL(id, want);
  float Q[35], K[35], V[35];
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, 0, 0, 0, Q, K, V), 0);
  CU_ASSERT_EQUAL(spr_qkv_check(q), 0);
  struct stat st;
  stat(p, &st);
  CU_ASSERT_EQUAL(truncate(p, st.st_size / 2), 0);
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, 1, 2, 1, Q, K, V), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 1 head 2 item 1");
  SPR_ASSERT_CONTAINS(spr_errmsg(), p);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "the Q/K/V file changed while it was being read");
  CU_ASSERT_EQUAL(spr_qkv_check(q), SPR_EIO);
  spr_qkv_close(q);
  /* rewritten in place with the same size (libhdf5's file lock keeps
   * other HDF5 writers out while it is open, not plain writes) */
  fresh(p, sizeof p, "rewritten");
  CU_ASSERT_EQUAL_FATAL(spr_qkv_open(p, &q), 0);
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, 0, 0, 0, Q, K, V), 0);
  stat(p, &st);
  FILE *f = fopen(p, "r+b");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fseek(f, st.st_size / 2, SEEK_SET);
  int c = fgetc(f);
  fseek(f, st.st_size / 2, SEEK_SET);
  fputc(c ^ 0x5a, f);
  fclose(f);
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, 1, 2, 1, Q, K, V), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "changed while it was being read");
  spr_qkv_close(q);
}

static int read_all_heads(const char *path, void *arg) {
  spr_qkv *q;
  int rc = spr_qkv_open(path, &q);
  if (rc) return rc;
  const spr_qkv_info *in = spr_qkv_get_info(q);
  size_t nd = (size_t)in->seq_len * in->head_dim;
  float *b = malloc(3 * nd * sizeof *b);
  for (int l = 0; l < in->n_layers && !rc; l++)
    for (int h = 0; h < in->n_heads && !rc; h++)
      for (int i = 0; i < in->batch && !rc; i++) rc = spr_qkv_read_head(q, l, h, i, b, b + nd, b + 2 * nd);
  free(b);
  spr_qkv_close(q);
  return rc;
}

static void test_hostile(void) {
  /* T1 to T5 were found on this reader: crashes, a 40 GB allocation and a
   * loop in libhdf5 */
  CU_ASSERT_EQUAL(spr_test_crashers(read_all_heads, NULL), 13);
}

/* The F3 reproducer's file: 2 layers x 4 heads, 2 items, N = 64, d = 32. */
static int write_qkv(const char *path, void *arg) {
  enum { L = 2, H = 4, B = 2, N = 64, D = 32 };
  static float Q[N * D], K[N * D], V[N * D];
  spr_qkv_writer *w;
  int rc = spr_qkv_create(path, L, H, B, N, D, NULL, &w);
  for (int l = 0; l < L && !rc; l++)
    for (int h = 0; h < H && !rc; h++)
      for (int b = 0; b < B && !rc; b++) {
        for (int k = 0; k < N * D; k++) {
          Q[k] = (float)val(0, l, b, h, k / D, k % D);
          K[k] = (float)val(1, l, b, h, k / D, k % D);
          V[k] = (float)val(2, l, b, h, k / D, k % D);
        }
        rc = spr_qkv_write_head(w, l, h, b, Q, K, V);
      }
  if (!rc) return spr_qkv_finish(w, 1);
  spr_qkv_finish(w, 0);
  return rc;
}

/* synth on a nearly full disk left a complete-looking file of zeros */
static void test_writer_full_disk(void) {
  char p[512];
  scratch(p, sizeof p, "full");
  CU_ASSERT_EQUAL_FATAL(write_qkv(p, NULL), 0);
  spr_qkv *q;
  CU_ASSERT_EQUAL_FATAL(spr_qkv_open(p, &q), 0);
  float Q[64 * 32], K[64 * 32];
  CU_ASSERT_EQUAL(spr_qkv_read_head(q, 1, 3, 1, Q, K, NULL), 0);
  CU_ASSERT_EQUAL(K[64 * 32 - 1], (float)val(1, 1, 1, 3, 63, 31));
  spr_qkv_close(q);
  struct stat st;
  stat(p, &st);
  remove(p);
  CU_ASSERT(spr_test_full_disk_levels(write_qkv, NULL, p, st.st_size) >= 7);
}

int main(void) {
  /* 1 s of CPU per request of the reader's child: the crafted files that
   * loop libhdf5 end quickly */
  spr_h5r_limits lim;
  spr_h5r_limits_default(&lim);
  lim.cpu_s = 1;
  spr_h5r_set_limits(&lim);
  spr_test_path(dir, sizeof dir, "qkv", "");
  mkdir(dir, 0777);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the crafted files provoke HDF5 errors */
  static const CU_TestInfo tests[] = {
    {"good files round trip (float32/64, batched or not, h5py attributes)", test_round_trip},
    {"padding tokens dropped, their values ignored", test_padding},
    {"file, format and version errors", test_file_and_attributes},
    {"layer group errors", test_groups},
    {"Q/K/V dataset errors (missing, type, rank, empty, shapes)", test_datasets},
    {"size limits", test_limits},
    {"NaN, Inf and float32 range named by index", test_values},
    {"mask errors", test_masks},
    {"writer", test_writer},
    {"configuration sizes from the file", test_resolve},
    {"run on the generator's Q/K/V from a file equals the synthetic run", test_run_equals_synthetic},
    {"fixed-length string attributes of any padding (h5py's NULLPAD)", test_string_padding},
    {"a file changed while it is read is refused", test_changed_during_read},
    {"hostile files (hdf5-crashers)", test_hostile},
    {"writer on a full disk", test_writer_full_disk},
    CU_TEST_INFO_NULL,
  };
  int rc = spr_test_run("qkv", tests);
  /* the scratch files (kept until here when a test failed midway) */
  DIR *dd = opendir(dir);
  for (struct dirent *e; dd && (e = readdir(dd));) {
    char p[600];
    if (e->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    remove(p);
  }
  if (dd) closedir(dd);
  rmdir(dir);
  return rc;
}
