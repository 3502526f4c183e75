/* spr_h5io.h - reading and writing plain float64 matrices in HDF5 files
 * (the `sprintsim crossbar` exchange format: docs/crossbar.md). */
#ifndef SPR_H5IO_H
#define SPR_H5IO_H

/* Read the 2-D floating-point dataset `dset` of the HDF5 file `path` as
 * doubles (row-major) into *data (to free()), with its shape.  Every
 * element must be finite.  Errors (the message names file, dataset and,
 * where it applies, the element and value): SPR_EIO (cannot open),
 * SPR_EHDF5 (not HDF5, dataset missing, not rank 2, empty, not a float
 * type or a non-IEEE one, more than 2^28 elements, a NaN or Inf; libhdf5
 * crashed, looped or ran out of its memory on the file, which is read in
 * a child process: spr_h5r.h), SPR_ENOMEM. */
int spr_h5_read_matrix(const char *path, const char *dset, double **data, int *rows,
                       int *cols);

/* Write data (rows x cols, row-major) as float64 dataset `dset` of a new
 * file `path`, with string attributes attr_names[k] = attr_values[k]
 * (k < n_attrs) on the dataset.  Written to a unique temporary name and
 * renamed when complete.  Errors: SPR_EIO, SPR_EHDF5, SPR_EINVAL. */
int spr_h5_write_matrix(const char *path, const char *dset, const double *data, int rows,
                        int cols, const char *const *attr_names, const char *const *attr_values,
                        int n_attrs);

#endif
