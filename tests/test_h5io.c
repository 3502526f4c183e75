/* test_h5io.c - float64 matrix files: round trip, every rejection, and the
 * crossbar models behind `sprintsim crossbar` against direct formulas. */
#include "config.h"
#include "spr_error.h"
#include "spr_h5io.h"
#include "spr_h5r.h"
#include "spr_test.h"
#include "spr_xbar.h"

#include <hdf5.h>
#include <math.h>
#include <sys/stat.h>

/* A file with one dataset "/X" of the given type, rank and dims. */
static void make_file(const char *path, hid_t type, int rank, const hsize_t *dims, const void *buf) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  hid_t ds = H5Dcreate2(f, "/X", type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (buf) H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  H5Dclose(ds);
  H5Sclose(sp);
  H5Fclose(f);
}

static void test_round_trip(void) {
  char p[256];
  spr_test_path(p, sizeof p, "h5io", ".h5");
  double m[6] = {1.5e-5, 2.385, -3, 0, 7e-9, 1e3};
  const char *names[] = {"unit", "model"}, *values[] = {"A", "ideal"};
  CU_ASSERT_EQUAL_FATAL(spr_h5_write_matrix(p, "/I", m, 2, 3, names, values, 2), 0);
  double *r;
  int rows, cols;
  CU_ASSERT_EQUAL_FATAL(spr_h5_read_matrix(p, "/I", &r, &rows, &cols), 0);
  CU_ASSERT_EQUAL(rows, 2);
  CU_ASSERT_EQUAL(cols, 3);
  CU_ASSERT_EQUAL(memcmp(r, m, sizeof m), 0);
  free(r);
  /* the attribute is there, typed as a string */
  hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
  CU_ASSERT(H5Aexists_by_name(f, "/I", "model", H5P_DEFAULT) > 0);
  H5Fclose(f);
  remove(p);
}

static void test_rejections(void) {
  char p[256];
  spr_test_path(p, sizeof p, "h5bad", ".h5");
  double *r = NULL;
  int rows, cols;
  /* missing file, not HDF5 */
  CU_ASSERT_EQUAL(spr_h5_read_matrix("/nonexistent/g.h5", "/G", &r, &rows, &cols), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "/nonexistent/g.h5: cannot open");
  FILE *t = fopen(p, "w");
  fputs("[not hdf5]\n", t);
  fclose(t);
  CU_ASSERT_EQUAL(spr_h5_read_matrix(p, "/G", &r, &rows, &cols), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "not an HDF5 file");
  /* missing dataset */
  hsize_t d2[2] = {2, 2}, d1[1] = {4}, d0[2] = {0, 3};
  double ok[4] = {1, 2, 3, 4};
  make_file(p, H5T_NATIVE_DOUBLE, 2, d2, ok);
  CU_ASSERT_EQUAL(spr_h5_read_matrix(p, "/G", &r, &rows, &cols), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dataset '/G' is missing");
  /* wrong rank */
  make_file(p, H5T_NATIVE_DOUBLE, 1, d1, ok);
  CU_ASSERT_EQUAL(spr_h5_read_matrix(p, "/X", &r, &rows, &cols), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "rank 1, expected 2");
  /* integers */
  int iv[4] = {1, 2, 3, 4};
  make_file(p, H5T_NATIVE_INT, 2, d2, iv);
  CU_ASSERT_EQUAL(spr_h5_read_matrix(p, "/X", &r, &rows, &cols), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "not a floating-point type");
  /* empty */
  make_file(p, H5T_NATIVE_DOUBLE, 2, d0, NULL);
  CU_ASSERT_EQUAL(spr_h5_read_matrix(p, "/X", &r, &rows, &cols), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "is empty (0 x 3)");
  /* NaN */
  double bad[4] = {1, 2, NAN, 4};
  make_file(p, H5T_NATIVE_DOUBLE, 2, d2, bad);
  CU_ASSERT_EQUAL(spr_h5_read_matrix(p, "/X", &r, &rows, &cols), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "element [1][0] is nan");
  CU_ASSERT_PTR_NULL(r);
  remove(p);
  /* writing: a directory, or a name ending in '/' */
  char dir[256];
  spr_test_path(dir, sizeof dir, "h5dir", "");
  CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
  CU_ASSERT_EQUAL(spr_h5_write_matrix(dir, "/I", ok, 2, 2, NULL, NULL, 0), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "is a directory");
  rmdir(dir);
  CU_ASSERT_EQUAL(spr_h5_write_matrix("/nonexistent/i.h5", "/I", ok, 2, 2, NULL, NULL, 0), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "/nonexistent/i.h5.tmp.");
  CU_ASSERT_EQUAL(spr_h5_write_matrix(p, "/I", ok, 0, 2, NULL, NULL, 0), SPR_EINVAL);
}

/* ideal: I = V G; analytic: V G (1 - r_wl A - r_bl B), both written out
 * here from the definitions of A and B. */
static void test_models(void) {
  enum { R = 3, C = 4, M = 2 };
  double G[R * C], V[M * R], I[M * C];
  for (int k = 0; k < R * C; k++) G[k] = 1e-6 * (3 + (k * 7) % 11);
  for (int k = 0; k < M * R; k++) V[k] = 0.05 * ((k % 5) - 2) + 0.0123;
  double corr;
  CU_ASSERT_EQUAL_FATAL(spr_xbar_column_currents(SPR_XBAR_MODEL_IDEAL, G, R, C, V, M, 5, 7, I, &corr), 0);
  CU_ASSERT_EQUAL(corr, 0);
  for (int m = 0; m < M; m++)
    for (int j = 0; j < C; j++) {
      double want = 0;
      for (int i = 0; i < R; i++) want += V[m * R + i] * G[i * C + j];
      CU_ASSERT_DOUBLE_EQUAL(I[m * C + j], want, 1e-18);
    }
  const double rw = 250, rb = 400; /* large, so the correction is visible */
  CU_ASSERT_EQUAL_FATAL(spr_xbar_column_currents(SPR_XBAR_MODEL_ANALYTIC, G, R, C, V, M, rw, rb, I, &corr), 0);
  double worst = 0;
  for (int m = 0; m < M; m++)
    for (int j = 0; j < C; j++) {
      double want = 0;
      for (int i = 0; i < R; i++) {
        double A = 0, B = 0;
        for (int k = 0; k <= j; k++)
          for (int l = k; l < C; l++) A += G[i * C + l];
        for (int k = i; k < R; k++)
          for (int q = 0; q <= k; q++) B += G[q * C + j];
        const double c = rw * A + rb * B;
        if (c > worst) worst = c;
        want += V[m * R + i] * G[i * C + j] * (1 - c);
      }
      CU_ASSERT_DOUBLE_EQUAL(I[m * C + j], want, 1e-12 * fabs(want) + 1e-20);
    }
  CU_ASSERT_DOUBLE_EQUAL(corr, worst, 1e-12);
  /* nodal: exact; with no wires it is the ideal product, and with small
   * wires it agrees with the first-order model to second order */
  double In[M * C], Ia[M * C], I0[M * C], bound;
  CU_ASSERT_EQUAL_FATAL(spr_xbar_column_currents(SPR_XBAR_MODEL_NODAL, G, R, C, V, M, 0, 0, In, &bound), 0);
  CU_ASSERT_EQUAL_FATAL(spr_xbar_column_currents(SPR_XBAR_MODEL_IDEAL, G, R, C, V, M, 0, 0, I0, &corr), 0);
  CU_ASSERT_EQUAL(memcmp(In, I0, sizeof In), 0);
  CU_ASSERT_EQUAL_FATAL(spr_xbar_column_currents(SPR_XBAR_MODEL_NODAL, G, R, C, V, M, 25, 40, In, &bound), 0);
  CU_ASSERT_EQUAL_FATAL(spr_xbar_column_currents(SPR_XBAR_MODEL_ANALYTIC, G, R, C, V, M, 25, 40, Ia, &corr), 0);
  double drop = 0, gap = 0, scale = 0;
  for (int k = 0; k < M * C; k++) scale = fmax(scale, fabs(I0[k]));
  for (int k = 0; k < M * C; k++) {
    drop = fmax(drop, fabs(In[k] - I0[k]) / scale);
    gap = fmax(gap, fabs(In[k] - Ia[k]) / scale);
  }
  CU_ASSERT(drop > 1e-4);     /* the wires matter */
  CU_ASSERT(gap < 0.05 * drop); /* first order captures most of it */
  CU_ASSERT(bound >= 0 && bound < 1e-8);
  /* rejections */
  CU_ASSERT_EQUAL(spr_xbar_column_currents(7, G, R, C, V, M, 0, 0, I, &corr), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "unknown model 7");
  G[5] = -1e-6;
  CU_ASSERT_EQUAL(spr_xbar_column_currents(0, G, R, C, V, M, 0, 0, I, &corr), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "G[1][1] = -1e-06 S");
  G[5] = 1e-6;
  CU_ASSERT_EQUAL(spr_xbar_column_currents(1, G, R, C, V, M, -1, 0, I, &corr), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "r_wl -1");
  CU_ASSERT_EQUAL(spr_xbar_column_currents(1, G, 0, C, V, M, 0, 0, I, &corr), SPR_EINVAL);
}

static int read_g(const char *path, void *arg) {
  double *r = NULL;
  int rows, cols, rc = spr_h5_read_matrix(path, "/G", &r, &rows, &cols);
  free(r);
  return rc;
}

/* the crafted files: refused, naming the file (T9 to T11 were found on
 * this reader; T11 asked for a 2 GiB conversion buffer) */
static void test_hostile(void) {
  CU_ASSERT_EQUAL(spr_test_crashers(read_g, NULL), 13);
  /* a non-IEEE float type is refused before libhdf5 converts it */
  char p[256];
  spr_test_path(p, sizeof p, "h5odd", ".h5");
  hid_t odd = H5Tcopy(H5T_IEEE_F64LE);
  H5Tset_size(odd, 12);
  hsize_t d2[2] = {2, 2};
  make_file(p, odd, 2, d2, NULL);
  H5Tclose(odd);
  double *r = NULL;
  int rows, cols;
  CU_ASSERT_EQUAL(spr_h5_read_matrix(p, "/X", &r, &rows, &cols), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "dataset '/X' is a non-standard 12-byte floating-point type (use float64)");
  remove(p);
}

static int write_m(const char *path, void *arg) {
  const double *m = arg;
  const char *names[] = {"unit", "model"}, *values[] = {"A", "ideal"};
  return spr_h5_write_matrix(path, "/I", m, 64, 64, names, values, 2);
}

/* a full disk at several sizes: an error naming the file, no file (the
 * data were silently lost before: dataset-close errors were ignored) */
static void test_full_disk(void) {
  char p[256];
  spr_test_path(p, sizeof p, "h5full", ".h5");
  double *m = malloc(64 * 64 * sizeof *m);
  for (int k = 0; k < 64 * 64; k++) m[k] = 1e-6 * (1 + k % 97);
  CU_ASSERT_EQUAL_FATAL(write_m(p, m), 0);
  struct stat st;
  stat(p, &st);
  remove(p);
  CU_ASSERT(spr_test_full_disk_levels(write_m, m, p, st.st_size) >= 7);
  free(m);
}

int main(void) {
  /* the reader's child gets 1 s of CPU per request: the crafted files
   * that loop libhdf5 end quickly */
  spr_h5r_limits l;
  spr_h5r_limits_default(&l);
  l.cpu_s = 1;
  spr_h5r_set_limits(&l);
  CU_TestInfo tests[] = {{"round trip", test_round_trip},
                         {"rejections", test_rejections},
                         {"hostile files", test_hostile},
                         {"full disk", test_full_disk},
                         {"ideal and analytic models", test_models},
                         CU_TEST_INFO_NULL};
  return spr_test_run("h5io", tests);
}
