/* spr_h5io.c - float64 matrices in HDF5 files, with validation. */
#include "config.h"
#include "spr_h5io.h"

#include "spr_error.h"
#include "spr_h5quiet.h"

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

static int read_body(hid_t f, const char *path, const char *dset, double **data, int *rows,
                     int *cols) {
  if (H5Lexists(f, dset, H5P_DEFAULT) <= 0)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' is missing", path, dset);
  hid_t ds = H5Dopen2(f, dset, H5P_DEFAULT);
  if (ds < 0) return spr_error(SPR_EHDF5, "%s: '%s' is not a dataset", path, dset);
  int rc = 0;
  hid_t ty = H5Dget_type(ds), sp = H5Dget_space(ds);
  hsize_t dims[8] = {0};
  int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  if (ty < 0 || sp < 0) {
    rc = spr_error(SPR_EHDF5, "%s: cannot inspect dataset '%s'", path, dset);
  } else if (H5Tget_class(ty) != H5T_FLOAT) {
    rc = spr_error(SPR_EHDF5, "%s: dataset '%s' is not a floating-point type (use float64)", path, dset);
  } else if (rank != 2) {
    rc = spr_error(SPR_EHDF5, "%s: dataset '%s' has rank %d, expected 2", path, dset, rank);
  } else {
    H5Sget_simple_extent_dims(sp, dims, NULL);
    if (dims[0] == 0 || dims[1] == 0)
      rc = spr_error(SPR_EHDF5, "%s: dataset '%s' is empty (%llu x %llu)", path, dset,
                     (unsigned long long)dims[0], (unsigned long long)dims[1]);
    else if (dims[0] * dims[1] > MAX_ELEMENTS || dims[0] > 1u << 30 || dims[1] > 1u << 30)
      rc = spr_error(SPR_EHDF5, "%s: dataset '%s' is too large (%llu x %llu, at most %llu elements)",
                     path, dset, (unsigned long long)dims[0], (unsigned long long)dims[1],
                     (unsigned long long)MAX_ELEMENTS);
  }
  double *v = NULL;
  if (!rc) {
    v = malloc((size_t)(dims[0] * dims[1]) * sizeof *v);
    if (!v) rc = spr_error(SPR_ENOMEM, "%s: out of memory reading '%s'", path, dset);
  }
  if (!rc && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
    rc = spr_error(SPR_EHDF5, "%s: cannot read dataset '%s' as float64", path, dset);
  for (size_t k = 0; !rc && k < dims[0] * dims[1]; k++)
    if (!isfinite(v[k]))
      rc = spr_error(SPR_EHDF5, "%s: dataset '%s' element [%zu][%zu] is %g (not finite)", path, dset,
                     k / (size_t)dims[1], k % (size_t)dims[1], v[k]);
  if (ty >= 0) H5Tclose(ty);
  if (sp >= 0) H5Sclose(sp);
  H5Dclose(ds);
  if (rc) {
    free(v);
    return rc;
  }
  *data = v;
  *rows = (int)dims[0];
  *cols = (int)dims[1];
  return 0;
}

int spr_h5_read_matrix(const char *path, const char *dset, double **data, int *rows,
                       int *cols) {
  *data = NULL;
  quiet q;
  quiet_on(&q);
  hid_t f;
  int rc = spr__h5_open_ro(path, "file", &f);
  if (!rc) {
    rc = read_body(f, path, dset, data, rows, cols);
    H5Fclose(f);
  }
  quiet_off(&q);
  return rc;
}

static int write_body(hid_t f, const char *tmp, const char *dset, const double *data, int rows,
                      int cols, const char *const *names, const char *const *values, int n) {
  hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
  hid_t sp = H5Screate_simple(2, dims, NULL);
  hid_t ds = sp >= 0 ? H5Dcreate2(f, dset, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
  int rc = 0;
  if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    rc = spr_error(SPR_EHDF5, "%s: cannot write dataset '%s'", tmp, dset);
  for (int k = 0; !rc && k < n; k++) {
    hid_t ty = H5Tcopy(H5T_C_S1), as = H5Screate(H5S_SCALAR), a = -1;
    if (ty >= 0) H5Tset_size(ty, strlen(values[k]) + 1);
    if (ty >= 0 && as >= 0) a = H5Acreate2(ds, names[k], ty, as, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, ty, values[k]) < 0)
      rc = spr_error(SPR_EHDF5, "%s: cannot write attribute '%s' of '%s'", tmp, names[k], dset);
    if (a >= 0) H5Aclose(a);
    if (as >= 0) H5Sclose(as);
    if (ty >= 0) H5Tclose(ty);
  }
  if (ds >= 0) H5Dclose(ds);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

int spr_h5_write_matrix(const char *path, const char *dset, const double *data, int rows,
                        int cols, const char *const *attr_names, const char *const *attr_values,
                        int n_attrs) {
  if (!path || !*path || !dset || !data || rows < 1 || cols < 1 || n_attrs < 0)
    return spr_error(SPR_EINVAL, "spr_h5_write_matrix: bad arguments (rows %d, cols %d)", rows, cols);
  size_t pl = strlen(path);
  struct stat st;
  if (path[pl - 1] == '/' || (stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
    return spr_error(SPR_EIO, "%s: is a directory, not a file name", path);
  char *tmp = malloc(pl + 12);
  if (!tmp) return spr_error(SPR_ENOMEM, "%s: out of memory", path);
  memcpy(tmp, path, pl);
  memcpy(tmp + pl, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int rc = spr_error(SPR_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    free(tmp);
    return rc;
  }
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  close(fd);
  quiet q;
  quiet_on(&q);
  int rc = 0;
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) rc = spr_error(SPR_EHDF5, "%s: cannot create HDF5 file", tmp);
  if (!rc) rc = write_body(f, tmp, dset, data, rows, cols, attr_names, attr_values, n_attrs);
  if (f >= 0 && H5Fclose(f) < 0 && !rc) rc = spr_error(SPR_EHDF5, "%s: cannot close", tmp);
  quiet_off(&q);
  if (!rc && rename(tmp, path) != 0)
    rc = spr_error(SPR_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
  if (rc) unlink(tmp);
  free(tmp);
  return rc;
}
