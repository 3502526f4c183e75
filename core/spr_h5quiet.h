/* spr_h5quiet.h - internal: silence HDF5's automatic error printing for
 * the duration of a library call (the library reports errors through
 * spr_error, never by printing), then restore the caller's handler. */
#ifndef SPR_H5QUIET_H
#define SPR_H5QUIET_H

#include <hdf5.h>

typedef struct {
  H5E_auto2_t fn;
  void *data;
} spr__h5_quiet;

static inline void spr__h5_quiet_on(spr__h5_quiet *q) {
  q->fn = NULL;
  q->data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static inline void spr__h5_quiet_off(const spr__h5_quiet *q) {
  H5Eset_auto2(H5E_DEFAULT, q->fn, q->data);
}

#endif
