/* spr_h5io.c - float64 matrices in HDF5 files, with validation. */
#include "config.h"
#include "spr_h5io.h"

#include "spr_error.h"
#include "spr_h5quiet.h"
#include "spr_h5r.h"
#include "spr_output.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ELEMENTS (1ULL << 28)

typedef spr__h5_quiet quiet;
#define quiet_on spr__h5_quiet_on
#define quiet_off spr__h5_quiet_off

/* Read through the isolated reader (spr_h5r.h): a crafted file can make
 * libhdf5 crash or loop, which then ends only the reader's child. */
static int read_body(spr_h5r *h, const char *path, const char *dset, double **data, int *rows,
                     int *cols) {
  int kind, rc = spr_h5r_kind(h, dset, &kind);
  if (rc) return rc;
  if (kind == SPR_H5R_MISSING) return spr_error(SPR_EHDF5, "%s: dataset '%s' is missing", path, dset);
  if (kind != SPR_H5R_DATASET) return spr_error(SPR_EHDF5, "%s: '%s' is not a dataset", path, dset);
  spr_h5r_info in;
  if ((rc = spr_h5r_dset_info(h, dset, &in))) return rc;
  if (in.cls != SPR_H5R_FLOAT)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' is not a floating-point type (use float64)", path, dset);
  if (!in.standard)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' is a non-standard %llu-byte floating-point type (use float64)",
                     path, dset, (unsigned long long)in.size);
  if (in.rank != 2) return spr_error(SPR_EHDF5, "%s: dataset '%s' has rank %d, expected 2", path, dset, in.rank);
  const uint64_t r = in.dims[0], c = in.dims[1];
  if (r == 0 || c == 0)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' is empty (%llu x %llu)", path, dset,
                     (unsigned long long)r, (unsigned long long)c);
  if (r > 1u << 30 || c > 1u << 30 || r * c > MAX_ELEMENTS)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' is too large (%llu x %llu, at most %llu elements)", path,
                     dset, (unsigned long long)r, (unsigned long long)c, (unsigned long long)MAX_ELEMENTS);
  double *v = malloc((size_t)(r * c) * sizeof *v);
  if (!v) return spr_error(SPR_ENOMEM, "%s: out of memory reading '%s'", path, dset);
  rc = spr_h5r_read(h, dset, SPR_H5R_F64, 0, NULL, NULL, v, (size_t)(r * c) * sizeof *v);
  if (rc == SPR_EHDF5 && !strstr(spr_errmsg(), "HDF5 library"))
    rc = spr_error_prefix(rc, "%s: cannot read dataset '%s' as float64", path, dset);
  for (size_t k = 0; !rc && k < r * c; k++)
    if (!isfinite(v[k]))
      rc = spr_error(SPR_EHDF5, "%s: dataset '%s' element [%zu][%zu] is %g (not finite)", path, dset,
                     k / (size_t)c, k % (size_t)c, v[k]);
  if (rc) {
    free(v);
    return rc;
  }
  *data = v;
  *rows = (int)r;
  *cols = (int)c;
  return 0;
}

int spr_h5_read_matrix(const char *path, const char *dset, double **data, int *rows,
                       int *cols) {
  *data = NULL;
  spr_h5r *h;
  int rc = spr_h5r_open(path, "file", NULL, &h);
  if (!rc) {
    rc = read_body(h, path, dset, data, rows, cols);
    spr_h5r_close(h);
  }
  return rc;
}

static int write_body(hid_t f, const char *tmp, const char *dset, const double *data, int rows,
                      int cols, const char *const *names, const char *const *values, int n) {
  hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
  hid_t sp = H5Screate_simple(2, dims, NULL);
  hid_t ds = sp >= 0 ? H5Dcreate2(f, dset, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
  int rc = 0;
  if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    rc = spr__h5_fail(tmp, "cannot write dataset '%s'", dset);
  for (int k = 0; !rc && k < n; k++) {
    hid_t ty = H5Tcopy(H5T_C_S1), as = H5Screate(H5S_SCALAR), a = -1;
    if (ty >= 0) H5Tset_size(ty, strlen(values[k]) + 1);
    if (ty >= 0 && as >= 0) a = H5Acreate2(ds, names[k], ty, as, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, ty, values[k]) < 0)
      rc = spr__h5_fail(tmp, "cannot write attribute '%s' of '%s'", names[k], dset);
    if (a >= 0 && H5Aclose(a) < 0 && !rc) rc = spr__h5_fail(tmp, "cannot finish attribute '%s' of '%s'", names[k], dset);
    if (as >= 0) H5Sclose(as);
    if (ty >= 0) H5Tclose(ty);
  }
  /* the data may reach the file only now */
  if (ds >= 0 && H5Dclose(ds) < 0 && !rc) rc = spr__h5_fail(tmp, "cannot finish dataset '%s'", dset);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

int spr_h5_write_matrix(const char *path, const char *dset, const double *data, int rows,
                        int cols, const char *const *attr_names, const char *const *attr_values,
                        int n_attrs) {
  if (!path || !*path || !dset || !data || rows < 1 || cols < 1 || n_attrs < 0)
    return spr_error(SPR_EINVAL, "spr_h5_write_matrix: bad arguments (rows %d, cols %d)", rows, cols);
  char *tmp;
  int rc = spr__out_begin(path, &tmp);
  if (rc) return rc;
  quiet q;
  quiet_on(&q);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), f = -1;
  if (fapl < 0) rc = spr__h5_fail(tmp, "cannot make a property list");
  if (!rc) rc = spr__h5_out_fapl(fapl, tmp);
  if (!rc && (f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0) rc = spr__h5_fail(tmp, "cannot create HDF5 file");
  if (fapl >= 0) H5Pclose(fapl);
  if (!rc) rc = write_body(f, tmp, dset, data, rows, cols, attr_names, attr_values, n_attrs);
  rc = spr__h5_close_output(f, tmp, rc);
  quiet_off(&q);
  if (!rc) rc = spr__out_commit(tmp, path, 0);
  else spr__out_discard(tmp);
  free(tmp);
  return rc;
}
