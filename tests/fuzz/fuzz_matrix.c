/* fuzz_matrix.c - the matrix reader of `sprintsim crossbar`
 * (core/spr_h5io.c) through the isolated HDF5 reader.
 *
 * Built twice: fuzz_matrix_bytes takes the input as the file's bytes;
 * fuzz_matrix_struct (-DFUZZ_STRUCT) reads the input as a recipe for
 * dataset /G built through the HDF5 API: type (IEEE floats of both byte
 * orders, integers, a 16-bit float, padded or huge custom floats), rank,
 * shape, maximum shape, layout (compact, contiguous, chunked with
 * filters), values (NaN, infinities), or /G as a group or a soft link.
 *
 * Properties: this process never crashes; a refused file gives an error
 * naming it; an accepted matrix written back by spr_h5_write_matrix reads
 * back bit for bit. */
#include "config.h"
#include "fuzz_common.h"
#include "spr_h5io.h"

#ifdef FUZZ_STRUCT
static hid_t make_type(recipe *r) {
  hid_t t;
  switch (pick(r, 10)) {
  case 0: return H5Tcopy(H5T_IEEE_F32LE);
  case 1: return H5Tcopy(H5T_IEEE_F64BE);
  case 2: return H5Tcopy(H5T_STD_I16LE);
  case 3:
    t = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_precision(t, 16);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, 15);
    return t;
  case 4:
    t = H5Tcopy(H5T_IEEE_F64LE);
    H5Tset_size(t, 9 + pick(r, 8));
    return t;
  case 5:
    t = H5Tcopy(H5T_IEEE_F64LE);
    H5Tset_precision(t, 63);
    return t;
  default: return H5Tcopy(H5T_IEEE_F64LE);
  }
}

static int build(const char *path, recipe *r) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return -1;
  const unsigned form = pick(r, 10);
  if (form == 0) {
    hid_t g = H5Gcreate2(f, "/G", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    H5Fclose(f);
    return 0;
  }
  const int rank = pick(r, 6) ? 2 : (int)pick(r, 4);
  hsize_t dims[3], maxd[3];
  for (int k = 0; k < 3; k++) {
    dims[k] = pick(r, 12) ? 1 + pick(r, 6) : 0;
    maxd[k] = pick(r, 8) ? dims[k] : H5S_UNLIMITED;
  }
  hid_t sp = rank ? H5Screate_simple(rank, dims, maxd) : H5Screate(H5S_SCALAR);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  int chunked = 0;
  for (int k = 0; k < rank; k++) chunked |= maxd[k] == H5S_UNLIMITED;
  const unsigned lay = pick(r, 4);
  if (lay == 1 && !chunked) H5Pset_layout(dcpl, H5D_COMPACT);
  if (lay >= 2 || chunked) {
    hsize_t ch[3] = {1 + pick(r, 3), 1 + pick(r, 3), 1 + pick(r, 3)};
    if (rank) H5Pset_chunk(dcpl, rank, ch);
    if (lay == 3) H5Pset_deflate(dcpl, 1 + pick(r, 9));
  }
  if (pick(r, 8) == 0) {
    double fv = pick_double(r);
    H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &fv);
  }
  hid_t ty = make_type(r);
  const char *name = form == 1 ? "/X" : "/G";
  hid_t ds = H5Dcreate2(f, name, ty, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  hssize_t np = H5Sget_simple_extent_npoints(sp);
  if (ds >= 0 && np > 0 && np < 100000 && pick(r, 8)) {
    double *v = malloc((size_t)np * sizeof *v);
    for (hssize_t k = 0; k < np; k++) v[k] = pick(r, 6) ? 1e-6 * (1 + (double)pick(r, 100)) : pick_double(r);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    free(v);
  }
  if (ds >= 0) H5Dclose(ds);
  if (form == 1) H5Lcreate_soft("/X", f, "/G", H5P_DEFAULT, H5P_DEFAULT);
  H5Tclose(ty);
  H5Pclose(dcpl);
  H5Sclose(sp);
  H5Fclose(f);
  return 0;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_path("G.h5"), *back = fuzz_path("G-back.h5");
  FUZZ_INPUT_FILE(path, data, size);
  double *m = NULL, *m2 = NULL;
  int rows = 0, cols = 0, r2 = 0, c2 = 0;
  int rc = spr_h5_read_matrix(path, "/G", &m, &rows, &cols);
  if (rc) {
    fuzz_check_names(rc, path);
    FUZZ_CHECK(m == NULL, "data returned with an error");
    return 0;
  }
  FUZZ_CHECK(rows >= 1 && cols >= 1, "shape %d x %d", rows, cols);
  for (long k = 0; k < (long)rows * cols; k++) FUZZ_CHECK(isfinite(m[k]), "element %ld is %g", k, m[k]);
  const char *names[] = {"unit"}, *values[] = {"S"};
  FUZZ_CHECK(spr_h5_write_matrix(back, "/G", m, rows, cols, names, values, 1) == 0, "write back");
  FUZZ_CHECK(spr_h5_read_matrix(back, "/G", &m2, &r2, &c2) == 0, "read back");
  FUZZ_CHECK(r2 == rows && c2 == cols && !memcmp(m, m2, sizeof *m * (size_t)rows * cols), "values differ");
  free(m);
  free(m2);
  unlink(back);
  return 0;
}
