/* spr_h5w.h - the checked HDF5 writing steps the library's small writers
 * share (internal: not installed): the model evaluation's output
 * (sim/spr_model_eval.c) and the device model (calibration/spr_device.c).
 *
 * A writer keeps its file, its temporary name (for messages) and its first
 * error in an spr__h5w; every step does nothing once rc is set, and a
 * failure of libhdf5 sets rc to spr__h5_fail's error naming the temporary
 * and the object.  Objects are named by absolute path; every dataset and
 * attribute is closed (and its close checked: data may reach the file only
 * then) before the step returns. */
#ifndef SPR_H5W_H
#define SPR_H5W_H

#include <hdf5.h>
#include <stdint.h>

typedef struct {
  hid_t f;         /* the file, opened through spr__h5_out_fapl */
  const char *tmp; /* its temporary name */
  int rc;          /* the first error, 0 while none */
} spr__h5w;

/* A fixed-length, NUL-terminated string type of len characters (-1 on
 * failure; H5Tclose it). */
hid_t spr__h5w_str_type(size_t len);

/* Scalar attribute `name` of object `obj` (a path) of file type ftype,
 * from val in memory type mtype. */
void spr__h5w_attr(spr__h5w *w, const char *obj, const char *name, hid_t ftype, hid_t mtype,
                   const void *val);
void spr__h5w_attr_str(spr__h5w *w, const char *obj, const char *name, const char *v);
void spr__h5w_attr_f64(spr__h5w *w, const char *obj, const char *name, double v);
void spr__h5w_attr_i64(spr__h5w *w, const char *obj, const char *name, int64_t v);

void spr__h5w_group(spr__h5w *w, const char *path);

/* Dataset `path` of rank 0 (dims NULL) to 2 and file type ftype from v;
 * with unit set, string attributes "unit" and "description" (desc). */
void spr__h5w_dset(spr__h5w *w, const char *path, hid_t ftype, hid_t mtype, int rank,
                   const hsize_t *dims, const void *v, const char *unit, const char *desc);
/* A scalar string dataset. */
void spr__h5w_dset_str(spr__h5w *w, const char *path, const char *v);

/* A failed write of the output driver stops the writer early
 * (spr__h5_out_status). */
void spr__h5w_status(spr__h5w *w);

#endif
