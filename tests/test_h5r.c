/* test_h5r.c - the isolated HDF5 reader: every request against values
 * written here with the plain HDF5 API, in a child and in-process; every
 * error path; a file changed while open; the content checksum against a
 * direct FNV-1a; concurrent handles from OpenMP threads; and every
 * reproducer of tests/data/hdf5-crashers walked as a hostile file: each
 * must fail cleanly, naming the file, while this process stays whole. */
#include "config.h"
#include "spr_error.h"
#include "spr_h5r.h"
#include "spr_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char g_file[256];

/* value of element (i, j, k) of /g/cube: an independent formula */
static double cube_val(int i, int j, int k) { return 2.385 * i - 0.5 * j + 0.125 * k * k; }

static void put_str_attr(hid_t loc, const char *name, const char *s, size_t size, H5T_str_t pad,
                         int variable) {
  hid_t ty = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
  if (variable) H5Tset_size(ty, H5T_VARIABLE);
  else H5Tset_size(ty, size);
  H5Tset_strpad(ty, pad);
  hid_t a = H5Acreate2(loc, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (variable) H5Awrite(a, ty, &s);
  else {
    char *buf = calloc(size + 1, 1);
    memset(buf, pad == H5T_STR_SPACEPAD ? ' ' : 0, size);
    memcpy(buf, s, strlen(s) < size ? strlen(s) : size);
    H5Awrite(a, ty, buf);
    free(buf);
  }
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(ty);
}

/* The reference file. */
static void make_reference(const char *path) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t g = H5Gcreate2(f, "/g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t d3[3] = {3, 4, 5};
  float cube[3][4][5];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      for (int k = 0; k < 5; k++) cube[i][j][k] = (float)cube_val(i, j, k);
  hid_t sp = H5Screate_simple(3, d3, NULL);
  hid_t ds = H5Dcreate2(f, "/g/cube", H5T_IEEE_F32BE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, cube);
  int32_t cnt = -7;
  hid_t as = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(ds, "count", H5T_STD_I32LE, as, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT32, &cnt);
  H5Aclose(a);
  hsize_t three = 3;
  hid_t s3 = H5Screate_simple(1, &three, NULL);
  double vec[3] = {1.5e-5, 2.385, -3};
  a = H5Acreate2(ds, "vec", H5T_IEEE_F64LE, s3, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_DOUBLE, vec);
  H5Aclose(a);
  H5Dclose(ds);
  H5Sclose(sp);
  /* a scalar int64 dataset, a uint8 vector */
  int64_t big = -1234567890123LL;
  ds = H5Dcreate2(f, "/g/scalar", H5T_STD_I64LE, as, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &big);
  H5Dclose(ds);
  uint8_t bytes[3] = {0, 1, 255};
  ds = H5Dcreate2(f, "/bytes", H5T_STD_U8LE, s3, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes);
  H5Dclose(ds);
  /* strings: every padding, variable length, a string dataset */
  put_str_attr(f, "nullterm", "sprintsim-qkv", 14, H5T_STR_NULLTERM, 0);
  put_str_attr(f, "nullpad", "sprintsim-qkv", 13, H5T_STR_NULLPAD, 0);
  put_str_attr(f, "nullpad_short", "ab", 6, H5T_STR_NULLPAD, 0);
  put_str_attr(f, "spacepad", "ab", 6, H5T_STR_SPACEPAD, 0);
  put_str_attr(f, "vlen", "variable text", 0, H5T_STR_NULLTERM, 1);
  hid_t st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, 12);
  ds = H5Dcreate2(f, "/text", st, as, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, "hello world");
  H5Dclose(ds);
  H5Tclose(st);
  /* a non-standard float (IEEE f64 layout, 4 bytes of padding) and a
   * compound */
  hid_t odd = H5Tcopy(H5T_IEEE_F64LE);
  H5Tset_precision(odd, 64);
  H5Tset_size(odd, 12);
  ds = H5Dcreate2(f, "/odd", odd, s3, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dclose(ds);
  H5Tclose(odd);
  hid_t ct = H5Tcreate(H5T_COMPOUND, 8);
  H5Tinsert(ct, "x", 0, H5T_NATIVE_DOUBLE);
  ds = H5Dcreate2(f, "/compound", ct, s3, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dclose(ds);
  H5Tclose(ct);
  /* links: soft (followed), dangling soft, external (never followed) */
  H5Lcreate_soft("/g/cube", f, "/soft", H5P_DEFAULT, H5P_DEFAULT);
  H5Lcreate_soft("/nowhere", f, "/dangling", H5P_DEFAULT, H5P_DEFAULT);
  H5Lcreate_external("/etc/passwd", "/x", f, "/ext", H5P_DEFAULT, H5P_DEFAULT);
  /* many entries, for the listing limit */
  hid_t many = H5Gcreate2(f, "/many", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  for (int i = 0; i < 40; i++) {
    char n[16];
    snprintf(n, sizeof n, "e%02d", 39 - i);
    hid_t gg = H5Gcreate2(many, n, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(gg);
  }
  H5Gclose(many);
  H5Sclose(s3);
  H5Sclose(as);
  H5Gclose(g);
  H5Fclose(f);
}

static int g_inproc;

static int open_ref(spr_h5r **h) {
  spr_h5r_limits l;
  spr_h5r_limits_default(&l);
  l.in_process = g_inproc;
  return spr_h5r_open(g_file, "test file", &l, h);
}

static void battery(void) {
  spr_h5r *h;
  CU_ASSERT_EQUAL_FATAL(open_ref(&h), 0);
  int k;
  CU_ASSERT_EQUAL(spr_h5r_kind(h, "/g", &k), 0);
  CU_ASSERT_EQUAL(k, SPR_H5R_GROUP);
  CU_ASSERT_EQUAL(spr_h5r_kind(h, "/g/cube", &k), 0);
  CU_ASSERT_EQUAL(k, SPR_H5R_DATASET);
  CU_ASSERT_EQUAL(spr_h5r_kind(h, "g/cube", &k), 0);
  CU_ASSERT_EQUAL(k, SPR_H5R_DATASET);
  CU_ASSERT_EQUAL(spr_h5r_kind(h, "/", &k), 0);
  CU_ASSERT_EQUAL(k, SPR_H5R_GROUP);
  CU_ASSERT_EQUAL(spr_h5r_kind(h, "/nope/cube", &k), 0);
  CU_ASSERT_EQUAL(k, SPR_H5R_MISSING);
  CU_ASSERT_EQUAL(spr_h5r_kind(h, "/g/nope", &k), 0);
  CU_ASSERT_EQUAL(k, SPR_H5R_MISSING);
  CU_ASSERT_EQUAL(spr_h5r_kind(h, "/soft", &k), 0);
  CU_ASSERT_EQUAL(k, SPR_H5R_DATASET);
  CU_ASSERT_EQUAL(spr_h5r_kind(h, "/dangling", &k), 0);
  CU_ASSERT_EQUAL(k, SPR_H5R_MISSING);
  CU_ASSERT_EQUAL(spr_h5r_kind(h, "/ext", &k), 0);
  CU_ASSERT_EQUAL(k, SPR_H5R_OTHER);
  CU_ASSERT_EQUAL(spr_h5r_kind(h, "/g//cube", &k), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "malformed object path");

  /* listing: name order, the limit */
  char **names;
  int n;
  CU_ASSERT_EQUAL_FATAL(spr_h5r_list(h, "/", 20, &names, &n), 0);
  const char *want[] = {"bytes", "compound", "dangling", "ext", "g", "many", "odd", "soft", "text"};
  CU_ASSERT_EQUAL(n, 9);
  for (int i = 0; i < n && i < 9; i++) CU_ASSERT_STRING_EQUAL(names[i], want[i]);
  CU_ASSERT_PTR_NULL(names[n]);
  free(names);
  CU_ASSERT_EQUAL_FATAL(spr_h5r_list(h, "/many", 40, &names, &n), 0);
  CU_ASSERT_EQUAL(n, 40);
  CU_ASSERT_STRING_EQUAL(names[0], "e00");
  CU_ASSERT_STRING_EQUAL(names[39], "e39");
  free(names);
  CU_ASSERT_EQUAL(spr_h5r_list(h, "/many", 39, &names, &n), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "group '/many' has more than 39 entries");
  CU_ASSERT_PTR_NULL(names);
  CU_ASSERT_EQUAL(spr_h5r_list(h, "/g/cube", 5, &names, &n), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'/g/cube' is a dataset, not a group");
  CU_ASSERT_EQUAL(spr_h5r_list(h, "/ext", 5, &names, &n), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "external or user-defined link");

  /* dataset info */
  spr_h5r_info in;
  CU_ASSERT_EQUAL_FATAL(spr_h5r_dset_info(h, "/g/cube", &in), 0);
  CU_ASSERT_EQUAL(in.cls, SPR_H5R_FLOAT);
  CU_ASSERT_EQUAL(in.standard, 1);
  CU_ASSERT_EQUAL(in.size, 4);
  CU_ASSERT_EQUAL(in.rank, 3);
  CU_ASSERT(in.dims[0] == 3 && in.dims[1] == 4 && in.dims[2] == 5);
  CU_ASSERT_EQUAL(in.npoints, 60);
  CU_ASSERT_EQUAL(spr_h5r_dset_info(h, "/g/scalar", &in), 0);
  CU_ASSERT(in.cls == SPR_H5R_INTEGER && in.is_signed && in.size == 8 && in.rank == 0 && in.npoints == 1);
  CU_ASSERT_EQUAL(spr_h5r_dset_info(h, "/bytes", &in), 0);
  CU_ASSERT(in.cls == SPR_H5R_INTEGER && !in.is_signed && in.size == 1 && in.standard);
  CU_ASSERT_EQUAL(spr_h5r_dset_info(h, "/odd", &in), 0);
  CU_ASSERT(in.cls == SPR_H5R_FLOAT && !in.standard && in.size == 12);
  CU_ASSERT_EQUAL(spr_h5r_dset_info(h, "/compound", &in), 0);
  CU_ASSERT_EQUAL(in.cls, SPR_H5R_COMPOUND);
  CU_ASSERT_EQUAL(spr_h5r_dset_info(h, "/text", &in), 0);
  CU_ASSERT(in.cls == SPR_H5R_STRING && !in.var_str && in.size == 12);
  CU_ASSERT_EQUAL(spr_h5r_dset_info(h, "/g", &in), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'/g' is a group, not a dataset");
  CU_ASSERT_EQUAL(spr_h5r_dset_info(h, "/missing", &in), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), g_file);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'/missing' is missing");

  /* whole and hyperslab reads, converted, against the formula */
  double all[60];
  CU_ASSERT_EQUAL_FATAL(spr_h5r_read(h, "/g/cube", SPR_H5R_F64, 0, NULL, NULL, all, sizeof all), 0);
  int bad = 0;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      for (int q = 0; q < 5; q++) bad += all[(i * 4 + j) * 5 + q] != (double)(float)cube_val(i, j, q);
  CU_ASSERT_EQUAL(bad, 0);
  uint64_t start[3] = {1, 2, 1}, count[3] = {2, 1, 3};
  float part[6];
  CU_ASSERT_EQUAL_FATAL(spr_h5r_read(h, "/g/cube", SPR_H5R_F32, 3, start, count, part, sizeof part), 0);
  for (int i = 0; i < 2; i++)
    for (int q = 0; q < 3; q++) CU_ASSERT_EQUAL(part[i * 3 + q], (float)cube_val(1 + i, 2, 1 + q));
  int64_t big = 0;
  CU_ASSERT_EQUAL(spr_h5r_read(h, "/g/scalar", SPR_H5R_I64, 0, NULL, NULL, &big, sizeof big), 0);
  CU_ASSERT_EQUAL(big, -1234567890123LL);
  int64_t b64[3];
  CU_ASSERT_EQUAL(spr_h5r_read(h, "/bytes", SPR_H5R_I64, 0, NULL, NULL, b64, sizeof b64), 0);
  CU_ASSERT(b64[0] == 0 && b64[1] == 1 && b64[2] == 255);
  /* read errors */
  CU_ASSERT_EQUAL(spr_h5r_read(h, "/g/cube", SPR_H5R_F64, 0, NULL, NULL, all, sizeof all - 8), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "do not fill");
  uint64_t s2[3] = {2, 0, 0}, c2[3] = {2, 1, 1};
  CU_ASSERT_EQUAL(spr_h5r_read(h, "/g/cube", SPR_H5R_F64, 3, s2, c2, all, 16), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "axis 0: start 2 count 2 outside length 3");
  CU_ASSERT_EQUAL(spr_h5r_read(h, "/g/cube", SPR_H5R_F64, 2, s2, c2, all, 16), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "rank-2 selection of a rank-3 dataset");
  CU_ASSERT_EQUAL(spr_h5r_read(h, "/odd", SPR_H5R_F64, 0, NULL, NULL, all, 24), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "non-standard floating-point type (12 bytes");
  CU_ASSERT_EQUAL(spr_h5r_read(h, "/text", SPR_H5R_F64, 0, NULL, NULL, all, 8), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dataset '/text' is not numeric");
  CU_ASSERT_EQUAL(spr_h5r_read(h, "/g/cube", 99, 0, NULL, NULL, all, 8), SPR_EINVAL);

  /* attributes */
  int ex;
  CU_ASSERT_EQUAL(spr_h5r_attr_info(h, "/g/cube", "count", &ex, &in), 0);
  CU_ASSERT(ex && in.cls == SPR_H5R_INTEGER && in.rank == 0);
  CU_ASSERT_EQUAL(spr_h5r_attr_info(h, "/g/cube", "absent", &ex, &in), 0);
  CU_ASSERT_EQUAL(ex, 0);
  CU_ASSERT_EQUAL(spr_h5r_attr_info(h, "/nope", "count", &ex, NULL), SPR_EHDF5);
  int32_t c32 = 0;
  CU_ASSERT_EQUAL(spr_h5r_attr_read(h, "/g/cube", "count", SPR_H5R_I32, &c32, sizeof c32), 0);
  CU_ASSERT_EQUAL(c32, -7);
  double vec[3];
  CU_ASSERT_EQUAL(spr_h5r_attr_read(h, "/g/cube", "vec", SPR_H5R_F64, vec, sizeof vec), 0);
  CU_ASSERT(vec[0] == 1.5e-5 && vec[1] == 2.385 && vec[2] == -3);
  CU_ASSERT_EQUAL(spr_h5r_attr_read(h, "/g/cube", "vec", SPR_H5R_F64, vec, 8), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_h5r_attr_read(h, "/g/cube", "absent", SPR_H5R_F64, vec, 8), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "attribute 'absent' of '/g/cube' is missing");
  CU_ASSERT_EQUAL(spr_h5r_attr_read(h, "/", "vlen", SPR_H5R_F64, vec, 8), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "is not numeric");

  /* strings: a NULLPAD string that fills its size keeps its last byte */
  char *s = NULL;
  CU_ASSERT_EQUAL(spr_h5r_read_str(h, "/", "nullterm", 100, &s), 0);
  CU_ASSERT_STRING_EQUAL(s, "sprintsim-qkv");
  free(s);
  CU_ASSERT_EQUAL(spr_h5r_read_str(h, "/", "nullpad", 100, &s), 0);
  CU_ASSERT_STRING_EQUAL(s, "sprintsim-qkv");
  free(s);
  CU_ASSERT_EQUAL(spr_h5r_read_str(h, "/", "nullpad_short", 100, &s), 0);
  CU_ASSERT_STRING_EQUAL(s, "ab");
  free(s);
  CU_ASSERT_EQUAL(spr_h5r_read_str(h, "/", "spacepad", 100, &s), 0);
  CU_ASSERT_STRING_EQUAL(s, "ab"); /* libhdf5 drops the blank padding */
  free(s);
  CU_ASSERT_EQUAL(spr_h5r_read_str(h, "/", "vlen", 100, &s), 0);
  CU_ASSERT_STRING_EQUAL(s, "variable text");
  free(s);
  CU_ASSERT_EQUAL(spr_h5r_read_str(h, "/text", NULL, 100, &s), 0);
  CU_ASSERT_STRING_EQUAL(s, "hello world");
  free(s);
  CU_ASSERT_EQUAL(spr_h5r_read_str(h, "/", "vlen", 5, &s), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "attribute 'vlen' of '/' is 13 bytes long (at most 5)");
  CU_ASSERT_PTR_NULL(s);
  CU_ASSERT_EQUAL(spr_h5r_read_str(h, "/text", NULL, 4, &s), SPR_EHDF5);
  CU_ASSERT_EQUAL(spr_h5r_read_str(h, "/bytes", NULL, 100, &s), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dataset '/bytes' is not a string");
  CU_ASSERT_EQUAL(spr_h5r_read_str(h, "/g/cube", "count", 100, &s), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "is not a string");
  /* the handle still works after errors */
  CU_ASSERT_EQUAL(spr_h5r_read(h, "/g/scalar", SPR_H5R_I64, 0, NULL, NULL, &big, sizeof big), 0);
  spr_h5r_close(h);
}

static void test_child(void) {
  g_inproc = 0;
  battery();
}

static void test_in_process(void) {
  g_inproc = 1;
  battery();
  g_inproc = 0;
}

static void test_open_errors(void) {
  spr_h5r *h = (spr_h5r *)1;
  CU_ASSERT_EQUAL(spr_h5r_open("/nonexistent/x.h5", "Q/K/V file", NULL, &h), SPR_EIO);
  CU_ASSERT_PTR_NULL(h);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "/nonexistent/x.h5: cannot open Q/K/V file: No such file");
  CU_ASSERT_EQUAL(spr_h5r_open("/tmp", "device model", NULL, &h), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "/tmp: cannot open device model: it is a folder");
  CU_ASSERT_EQUAL(spr_h5r_open("/dev/null", "file", NULL, &h), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "not a regular file");
  CU_ASSERT_EQUAL(spr_h5r_open("", "file", NULL, &h), SPR_EINVAL);
  char p[256];
  spr_test_path(p, sizeof p, "h5r-text", ".h5");
  FILE *t = fopen(p, "w");
  fputs("[not hdf5]\n", t);
  fclose(t);
  for (int ip = 0; ip < 2; ip++) {
    spr_h5r_limits l;
    spr_h5r_limits_default(&l);
    l.in_process = ip;
    CU_ASSERT_EQUAL(spr_h5r_open(p, "file", &l, &h), SPR_EHDF5);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "not an HDF5 file");
  }
  remove(p);
}

static void test_limits(void) {
  spr_h5r_limits l;
  spr_h5r_limits_default(&l);
  CU_ASSERT_EQUAL(l.cpu_s, 60);
  CU_ASSERT_EQUAL(spr_h5r_parse_limits("cpu=2, wall=7.5,mem=512M,inprocess=1,stderr=1", &l), 0);
  CU_ASSERT(l.cpu_s == 2 && l.wall_s == 7.5 && l.mem_bytes == (uint64_t)512 << 20 && l.in_process == 1 &&
            l.keep_stderr == 1);
  CU_ASSERT_EQUAL(spr_h5r_parse_limits("mem=3G", &l), 0);
  CU_ASSERT_EQUAL(l.mem_bytes, (uint64_t)3 << 30);
  CU_ASSERT_EQUAL(spr_h5r_parse_limits("cpu=0.5", &l), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cpu = 0.5 s");
  CU_ASSERT_EQUAL(l.cpu_s, 2); /* unchanged after an error */
  CU_ASSERT_EQUAL(spr_h5r_parse_limits("mem=1K", &l), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_h5r_parse_limits("cpu", &l), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "is not key=value");
  CU_ASSERT_EQUAL(spr_h5r_parse_limits("speed=3", &l), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "unknown item 'speed=3'");
  CU_ASSERT_EQUAL(spr_h5r_parse_limits("wall=x", &l), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_h5r_parse_limits("inprocess=2", &l), SPR_EINVAL);
  spr_h5r_limits d, g;
  spr_h5r_limits_default(&d);
  d.cpu_s = 3;
  CU_ASSERT_EQUAL(spr_h5r_set_limits(&d), 0);
  spr_h5r_get_limits(&g);
  CU_ASSERT_EQUAL(g.cpu_s, 3);
  d.wall_s = -1;
  CU_ASSERT_EQUAL(spr_h5r_set_limits(&d), SPR_EINVAL);
  spr_h5r_get_limits(&g);
  CU_ASSERT_EQUAL(g.wall_s, 600);
  spr_h5r_limits_default(&d);
  spr_h5r_set_limits(&d);
}

/* FNV-1a 64 of a file, directly. */
static uint64_t fnv_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint64_t x = UINT64_C(14695981039346656037);
  int c;
  while ((c = fgetc(f)) != EOF) {
    x ^= (unsigned char)c;
    x *= UINT64_C(1099511628211);
  }
  fclose(f);
  return x;
}

static void test_changed_and_checksum(void) {
  char p[256];
  spr_test_path(p, sizeof p, "h5r-chg", ".h5");
  make_reference(p);
  spr_h5r *h;
  CU_ASSERT_EQUAL_FATAL(spr_h5r_open(p, "Q/K/V file", NULL, &h), 0);
  char id[32], want[32];
  CU_ASSERT_EQUAL(spr_h5r_content_id(h, id, sizeof id), 0);
  snprintf(want, sizeof want, "fnv1a64:%016llx", (unsigned long long)fnv_file(p));
  CU_ASSERT_STRING_EQUAL(id, want);
  int64_t big;
  CU_ASSERT_EQUAL(spr_h5r_read(h, "/g/scalar", SPR_H5R_I64, 0, NULL, NULL, &big, sizeof big), 0);
  /* same size, new modification time */
  struct timespec ts[2] = {{0, UTIME_OMIT}, {1000000000, 123}};
  CU_ASSERT_EQUAL(utimensat(AT_FDCWD, p, ts, 0), 0);
  CU_ASSERT_EQUAL(spr_h5r_read(h, "/g/scalar", SPR_H5R_I64, 0, NULL, NULL, &big, sizeof big), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), p);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "the Q/K/V file changed while it was being read");
  CU_ASSERT_EQUAL(spr_h5r_check(h), SPR_EIO);
  CU_ASSERT_EQUAL(spr_h5r_content_id(h, id, sizeof id), 0); /* computed before the change */
  spr_h5r_close(h);
  /* truncated to half */
  CU_ASSERT_EQUAL_FATAL(spr_h5r_open(p, "Q/K/V file", NULL, &h), 0);
  struct stat st;
  stat(p, &st);
  CU_ASSERT_EQUAL(truncate(p, st.st_size / 2), 0);
  double all[60];
  CU_ASSERT_EQUAL(spr_h5r_read(h, "/g/cube", SPR_H5R_F64, 0, NULL, NULL, all, sizeof all), SPR_EIO);
  char sz[64];
  snprintf(sz, sizeof sz, "size %lld bytes at open, now %lld", (long long)st.st_size,
           (long long)(st.st_size / 2));
  SPR_ASSERT_CONTAINS(spr_errmsg(), sz);
  CU_ASSERT_EQUAL(spr_h5r_content_id(h, id, sizeof id), SPR_EIO);
  spr_h5r_close(h);
  remove(p);
}

/* Handles opened, read and closed from several threads at once: each
 * thread forks its own child under the lock.  Under AddressSanitizer the
 * handles are opened before the threads start and only read and closed
 * in them: GCC 12's sanitizer allocator is not fork-safe (spr_h5r.h,
 * Threads), glibc's malloc is. */
#if defined(__SANITIZE_ADDRESS__)
#define OPEN_IN_THREADS 0
#else
#define OPEN_IN_THREADS 1
#endif
static void test_threads(void) {
  int bad = 0;
  spr_h5r *hs[16] = {NULL};
  if (!OPEN_IN_THREADS)
    for (int t = 0; t < 16; t++) bad += spr_h5r_open(g_file, "test file", NULL, &hs[t]) != 0;
#pragma omp parallel for num_threads(4) reduction(+ : bad) schedule(static, 1)
  for (int t = 0; t < 16; t++) {
    spr_h5r *h = hs[t];
    double all[60];
    if (OPEN_IN_THREADS && spr_h5r_open(g_file, "test file", NULL, &h)) {
      bad++;
      continue;
    }
    if (!h) continue;
    for (int rep = 0; rep < 5; rep++) {
      if (spr_h5r_read(h, "/g/cube", SPR_H5R_F64, 0, NULL, NULL, all, sizeof all)) bad++;
      else bad += all[59] != (double)(float)cube_val(2, 3, 4);
    }
    spr_h5r_close(h);
  }
  CU_ASSERT_EQUAL(bad, 0);
}

/* Every object of a hostile file: listed, inspected, read (what the
 * readers do, in no particular order).  Returns the
 * first error code (0 when the walk completed). */
static int walk(spr_h5r *h, const char *group, int depth) {
  char **names;
  int n, rc = spr_h5r_list(h, group, 1000, &names, &n);
  if (rc) return rc;
  for (int i = 0; i < n && !rc; i++) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", strcmp(group, "/") ? group : "", names[i]);
    int k;
    if ((rc = spr_h5r_kind(h, path, &k))) break;
    const char *attrs[] = {"format", "version", "key", "unit", "layers"};
    for (int a = 0; a < 5 && !rc; a++) {
      int ex;
      spr_h5r_info ai;
      if (!(rc = spr_h5r_attr_info(h, path, attrs[a], &ex, &ai)) && ex && ai.cls == SPR_H5R_STRING) {
        char *s;
        if (!(rc = spr_h5r_read_str(h, path, attrs[a], 4096, &s))) free(s);
      }
    }
    if (!rc && k == SPR_H5R_GROUP && depth < 4) rc = walk(h, path, depth + 1);
    if (!rc && k == SPR_H5R_DATASET) {
      spr_h5r_info in;
      if ((rc = spr_h5r_dset_info(h, path, &in))) break;
      if ((in.cls == SPR_H5R_FLOAT || in.cls == SPR_H5R_INTEGER) && in.npoints > 0 && in.npoints < 1000000) {
        double *v = malloc(8 * in.npoints);
        rc = spr_h5r_read(h, path, SPR_H5R_F64, 0, NULL, NULL, v, 8 * in.npoints);
        free(v);
      }
    }
  }
  free(names);
  return rc;
}

static void test_crashers(void) {
  const char *src = getenv("top_srcdir");
  char dir[512];
  snprintf(dir, sizeof dir, "%s/tests/data/hdf5-crashers", src ? src : ".");
  DIR *d = opendir(dir);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  spr_h5r_limits l;
  spr_h5r_limits_default(&l);
  l.cpu_s = 1; /* the loops of T3 and T7 end within a second or two */
  l.wall_s = 60;
  int files = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strstr(e->d_name, ".h5")) continue;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    files++;
    spr_h5r *h = NULL;
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    int rc = spr_h5r_open(p, "hostile file", &l, &h);
    for (int a = 0; !rc && a < 2; a++) { /* the root's attributes */
      int ex;
      spr_h5r_info ai;
      const char *an = a ? "version" : "format";
      if (!(rc = spr_h5r_attr_info(h, "/", an, &ex, &ai)) && ex && ai.cls == SPR_H5R_STRING) {
        char *s;
        if (!(rc = spr_h5r_read_str(h, "/", an, 4096, &s))) free(s);
      }
    }
    if (!rc) rc = walk(h, "/", 0);
    spr_h5r_close(h); /* NULL when the open failed */
    gettimeofday(&t1, NULL);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-6 * (double)(t1.tv_usec - t0.tv_usec);
    fprintf(stderr, "\n  %s: rc %d in %.2f s: %s", e->d_name, rc, s, spr_errmsg());
    /* the walk may complete (libhdf5 can read damaged metadata without
     * noticing: the readers' own checks then refuse the file, see
     * test_qkv, test_device, test_h5io); when it fails, the message names
     * the file */
    if (rc) SPR_ASSERT_CONTAINS(spr_errmsg(), e->d_name);
    CU_ASSERT(s < 30);
  }
  closedir(d);
  CU_ASSERT_EQUAL(files, 13);
  /* this process is whole: a good file reads correctly */
  g_inproc = 0;
  battery();
}

/* The child's watchdog: a reader whose parent dies while libhdf5 loops
 * on a hostile file (T3, with a CPU limit of 30 s) ends
 * itself with SIGALRM about wall_s + 5 s after its request began, instead
 * of running on as an orphan.  This process becomes the subreaper that
 * inherits the orphan, to see how it ends. */
static void test_watchdog(void) {
  const char *src = getenv("top_srcdir");
  char p[1024];
  snprintf(p, sizeof p, "%s/tests/data/hdf5-crashers/T3-qkv-hang-H5C_protect.h5", src ? src : ".");
  CU_ASSERT_EQUAL_FATAL(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  struct timeval t0, t1;
  gettimeofday(&t0, NULL);
  pid_t parent = fork();
  CU_ASSERT_FATAL(parent >= 0);
  if (parent == 0) {
    spr_h5r_limits l;
    spr_h5r_limits_default(&l);
    l.cpu_s = 30; /* ends it (SIGXCPU) should the watchdog fail */
    l.wall_s = 2;
    alarm(1); /* this "parent" dies (SIGALRM) before its own deadline */
    spr_h5r *h = NULL;
    int ex;
    spr_h5r_info ai;
    char *str;
    if (spr_h5r_open(p, "hostile file", &l, &h) == 0 && spr_h5r_attr_info(h, "/", "format", &ex, &ai) == 0)
      spr_h5r_read_str(h, "/", "format", 4096, &str); /* where libhdf5 loops */
    _exit(3); /* not reached when the child hangs */
  }
  int st;
  CU_ASSERT_EQUAL(waitpid(parent, &st, 0), parent);
  CU_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM);
  /* the orphaned reader, now ours */
  pid_t orphan = 0;
  for (int i = 0; i < 800 && orphan == 0; i++) {
    orphan = waitpid(-1, &st, WNOHANG);
    if (orphan == 0) nanosleep(&(struct timespec){0, 50000000}, NULL);
  }
  gettimeofday(&t1, NULL);
  const double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-6 * (double)(t1.tv_usec - t0.tv_usec);
  fprintf(stderr, "\n  the orphaned reader ended after %.1f s, status %#x", s, orphan > 0 ? st : -1);
  CU_ASSERT(orphan > 0);
  if (orphan > 0) {
    CU_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM);
    CU_ASSERT(s > 6.5 && s < 20);
  } else {
    system("ps -eo pid,ppid,stat,etime,cmd | grep test_h5[r]");
  }
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

int main(void) {
  spr_test_path(g_file, sizeof g_file, "h5r", ".h5");
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  make_reference(g_file);
  CU_TestInfo tests[] = {{"every request, in a child", test_child},
                         {"every request, in-process", test_in_process},
                         {"open errors", test_open_errors},
                         {"limits", test_limits},
                         {"a reader orphaned while libhdf5 loops ends itself", test_watchdog},
                         {"file changed while open, content checksum", test_changed_and_checksum},
                         {"handles from several threads", test_threads},
                         {"hostile files (hdf5-crashers)", test_crashers},
                         CU_TEST_INFO_NULL};
  int rc = spr_test_run("h5r", tests);
  remove(g_file);
  return rc;
}
