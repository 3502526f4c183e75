/* spr_h5quiet.h - internal HDF5 helpers: silence HDF5's automatic error
 * printing for the duration of a library call (the library reports errors
 * through spr_error, never by printing), then restore the caller's
 * handler; open a file for reading with errors that name it.
 *
 * Threads: Debian's HDF5 is built without thread safety, and sweeps run
 * points (which read Q/K/V, device-model and ViT files) on several
 * threads.  So quiet_on also takes one process-wide recursive lock and
 * quiet_off releases it: every library function that uses HDF5 brackets
 * its HDF5 calls with the pair, which serialises them. */
#ifndef SPR_H5QUIET_H
#define SPR_H5QUIET_H

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "spr_error.h"

typedef struct {
  H5E_auto2_t fn;
  void *data;
} spr__h5_quiet;

/* The process-wide recursive HDF5 lock (core/spr_h5quiet.c). */
void spr__h5_lock(void);
void spr__h5_unlock(void);

static inline void spr__h5_quiet_on(spr__h5_quiet *q) {
  spr__h5_lock();
  q->fn = NULL;
  q->data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static inline void spr__h5_quiet_off(const spr__h5_quiet *q) {
  H5Eset_auto2(H5E_DEFAULT, q->fn, q->data);
  spr__h5_unlock();
}

/* Open `path` read-only into *f (call with HDF5 printing silenced).
 * Errors: SPR_EIO "<path>: cannot open <what>: <reason>" when the file
 * cannot be read, SPR_EHDF5 "<path>: not an HDF5 file". */
static inline int spr__h5_open_ro(const char *path, const char *what, hid_t *f) {
  *f = -1;
  FILE *probe = fopen(path, "rb");
  if (!probe) return spr_error(SPR_EIO, "%s: cannot open %s: %s", path, what, strerror(errno));
  fclose(probe);
  *f = H5Fis_hdf5(path) > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
  if (*f < 0) return spr_error(SPR_EHDF5, "%s: not an HDF5 file", path);
  return 0;
}

#endif
