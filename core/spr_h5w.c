/* spr_h5w.c - checked HDF5 writing steps (spr_h5w.h). */
#include "config.h"
#include "spr_h5w.h"
#include "spr_output.h"

#include <string.h>

hid_t spr__h5w_str_type(size_t len) {
  hid_t ty = H5Tcopy(H5T_C_S1);
  if (ty >= 0 && (H5Tset_size(ty, len + 1) < 0 || H5Tset_strpad(ty, H5T_STR_NULLTERM) < 0)) {
    H5Tclose(ty);
    return -1;
  }
  return ty;
}

void spr__h5w_attr(spr__h5w *w, const char *obj, const char *name, hid_t ftype, hid_t mtype,
                   const void *val) {
  if (w->rc) return;
  hid_t sp = H5Screate(H5S_SCALAR), a = -1;
  if (sp < 0 || (a = H5Acreate_by_name(w->f, obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT,
                                       H5P_DEFAULT)) < 0 ||
      H5Awrite(a, mtype, val) < 0)
    w->rc = spr__h5_fail(w->tmp, "cannot write attribute '%s' of '%s'", name, obj);
  if (a >= 0 && H5Aclose(a) < 0 && !w->rc)
    w->rc = spr__h5_fail(w->tmp, "cannot finish attribute '%s' of '%s'", name, obj);
  if (sp >= 0) H5Sclose(sp);
}

void spr__h5w_attr_str(spr__h5w *w, const char *obj, const char *name, const char *v) {
  if (w->rc) return;
  hid_t ty = spr__h5w_str_type(strlen(v));
  if (ty < 0) w->rc = spr__h5_fail(w->tmp, "cannot make a string type");
  spr__h5w_attr(w, obj, name, ty, ty, v);
  if (ty >= 0) H5Tclose(ty);
}

void spr__h5w_attr_f64(spr__h5w *w, const char *obj, const char *name, double v) {
  spr__h5w_attr(w, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

void spr__h5w_attr_i64(spr__h5w *w, const char *obj, const char *name, int64_t v) {
  spr__h5w_attr(w, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

void spr__h5w_group(spr__h5w *w, const char *path) {
  if (w->rc) return;
  hid_t g = H5Gcreate2(w->f, path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) w->rc = spr__h5_fail(w->tmp, "cannot create group '%s'", path);
  else if (H5Gclose(g) < 0) w->rc = spr__h5_fail(w->tmp, "cannot finish group '%s'", path);
}

void spr__h5w_dset(spr__h5w *w, const char *path, hid_t ftype, hid_t mtype, int rank,
                   const hsize_t *dims, const void *v, const char *unit, const char *desc) {
  if (w->rc) return;
  hsize_t count = 1;
  for (int k = 0; k < rank; k++) count *= dims[k];
  hid_t sp = rank > 0 ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR), d = -1;
  if (sp < 0 || (d = H5Dcreate2(w->f, path, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
      (count > 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0))
    w->rc = spr__h5_fail(w->tmp, "cannot write dataset '%s'", path);
  if (sp >= 0) H5Sclose(sp);
  /* data may reach the file only when the dataset is closed */
  if (d >= 0 && H5Dclose(d) < 0 && !w->rc)
    w->rc = spr__h5_fail(w->tmp, "cannot finish dataset '%s'", path);
  if (unit) {
    spr__h5w_attr_str(w, path, "unit", unit);
    spr__h5w_attr_str(w, path, "description", desc);
  }
}

void spr__h5w_dset_str(spr__h5w *w, const char *path, const char *v) {
  if (w->rc) return;
  hid_t ty = spr__h5w_str_type(strlen(v));
  if (ty < 0) w->rc = spr__h5_fail(w->tmp, "cannot make a string type");
  spr__h5w_dset(w, path, ty, ty, 0, NULL, v, NULL, NULL);
  if (ty >= 0) H5Tclose(ty);
}

void spr__h5w_status(spr__h5w *w) {
  if (!w->rc) w->rc = spr__h5_out_status(w->f, w->tmp);
}
