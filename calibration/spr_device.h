/* spr_device.h - device-model files: the fitted parameters of a SPICE
 * calibration, with their quality and provenance, written to and read from
 * HDF5 and applied to a configuration (layout: docs/calibration.md).
 *
 * A device model is a list of parameters.  Each has a value, unit, 95%
 * interval and the quality of the fit that produced it, and either names
 * the configuration key it sets ("analog.cmp_offset_sigma") or is
 * informational (key "": recorded, never applied, e.g. the comparator's
 * mean offset or its delay model).  Provenance: the netlists used (text),
 * named seeds, named Monte-Carlo sample counts, the ngspice version
 * string, the creation time (UTC) and the sprintsim version.
 *
 * Validation (on write and on read; messages name the file, the dataset
 * or attribute and the value): every name is 1..SPR_DEVICE_NAME-1 bytes of
 * [A-Za-z0-9_.-]; names are unique, and so are keys; a key is "" or a
 * floating-point key of the configuration table whose unit equals the
 * parameter's ("1" or "" for dimensionless); value, interval, residual
 * RMS, chi2/dof and R^2 are finite, ci95_lo <= value <= ci95_hi,
 * residual_rms >= 0, chi2_dof >= 0, R^2 <= 1, n_points >= 1; the
 * provenance strings are present and non-empty.  Data arrays (optional
 * group /data; files without it read as having none): float64, rank 1 or
 * 2, every value finite, string attributes unit and description.
 */
#ifndef SPR_DEVICE_H
#define SPR_DEVICE_H

#include <stdint.h>
#include "spr_fit.h"
#include "spr_params.h"
#include "spr_trace.h"

#define SPR_DEVICE_MAX_PARAMS 32
#define SPR_DEVICE_MAX_PROV 16  /* netlists, seeds, sample counts (each) */
#define SPR_DEVICE_NAME 64      /* bytes of a name or key, terminator included */
#define SPR_DEVICE_FORMAT "sprintsim device model"
#define SPR_DEVICE_FORMAT_VERSION 1
#define SPR_DEVICE_MAX_DATA 32  /* named data arrays */
#define SPR_DEVICE_MAX_DATA_VALUES 100000000 /* values of one data array */

typedef struct {
  char name[SPR_DEVICE_NAME];  /* dataset name under /params ("cell_v0") */
  char key[SPR_DEVICE_NAME];   /* "section.name" it sets, "" = informational */
  char unit[16];               /* SI symbol, "1" when dimensionless */
  char model[160];             /* the fitted equation, as text */
  double value;
  double ci95_lo, ci95_hi;     /* 95% interval of the value */
  double residual_rms;         /* fit residual RMS, in the fit's data units */
  double chi2_dof;             /* chi2 / dof of the fit */
  double r2;                   /* R^2 of the fit (Gaussian fits: PPCC^2) */
  int64_t n_points;            /* data points or Monte-Carlo samples */
} spr_device_param;

typedef struct {
  char name[SPR_DEVICE_NAME];
  uint64_t value;
} spr_device_count;

/* A named array of raw measured data (Monte-Carlo trip currents, I-V
 * points, ...), so the fits can be rechecked from the file alone. */
typedef struct {
  char name[SPR_DEVICE_NAME];  /* dataset name under /data ("cmp_trip") */
  char unit[16];               /* SI unit of the values, "1" when dimensionless */
  char description[200];       /* what the values are, shape included */
  int rank;                    /* 1 or 2 */
  int64_t dims[2];             /* extents (dims[1] = 1 when rank is 1), each >= 1 */
  double *values;              /* dims[0] x dims[1] values, row-major, finite (owned) */
} spr_device_data;

typedef struct {
  int n_params;
  spr_device_param params[SPR_DEVICE_MAX_PARAMS];
  int n_netlists;
  char netlist_name[SPR_DEVICE_MAX_PROV][SPR_DEVICE_NAME];
  char *netlist_text[SPR_DEVICE_MAX_PROV]; /* owned (malloc) */
  int n_seeds;
  spr_device_count seeds[SPR_DEVICE_MAX_PROV];
  int n_samples;
  spr_device_count samples[SPR_DEVICE_MAX_PROV]; /* Monte-Carlo sample counts */
  int n_data;
  spr_device_data data[SPR_DEVICE_MAX_DATA]; /* raw data arrays */
  char *config_text;           /* the resolved configuration the model was
                                  measured with, as INI text (owned; NULL:
                                  none; /provenance/config, optional) */
  char ngspice_version[128];
  char sprintsim_version[32];
  char created[32];            /* ISO 8601 UTC, "2026-11-29T13:04:25Z" */
  char content_id[32];         /* set by spr_device_read: "fnv1a64:<16 hex>"
                                  of the file's bytes */
  long long file_bytes;        /* set by spr_device_read: the file's size */
} spr_device;

/* Empty device model (no parameters, no provenance). */
void spr_device_init(spr_device *d);
/* Free the netlist texts and empty d; NULL is a no-op. */
void spr_device_free(spr_device *d);

/* Append a parameter (copied) after validating it as above.  Errors:
 * SPR_EINVAL (naming the parameter and field), also when full. */
int spr_device_add(spr_device *d, const spr_device_param *p);

/* Append parameter k of a least-squares fit: value param[k], interval
 * param[k] +- ci95[k], the fit's residual RMS, chi2/dof, R^2 and n. */
int spr_device_add_fit(spr_device *d, const char *name, const char *key, const char *unit,
                       const char *model, const spr_fit_result *fit, int k);

/* Append a value derived from a fit (a transformed parameter such as
 * read_rel_sigma = sqrt(s_rel^2), or the integrated sigma of
 * spr_fit_noise_psd) with its own interval [ci95_lo, ci95_hi] and the
 * quality (residual RMS, chi2/dof, R^2, n) of the fit `quality`. */
int spr_device_add_value(spr_device *d, const char *name, const char *key, const char *unit,
                         const char *model, double value, double ci95_lo, double ci95_hi,
                         const spr_fit_result *quality);

/* Append the mean (which = 0) or the sigma (which = 1) of a Gaussian fit:
 * the value with its interval, residual RMS = sigma, chi2/dof = 1 (by
 * construction), R^2 = PPCC^2, n = samples. */
int spr_device_add_gauss(spr_device *d, const char *name, const char *key, const char *unit,
                         const char *model, const spr_fit_gauss *g, int which);

/* Provenance: a netlist's text (copied), a named seed, a named sample
 * count.  Errors: SPR_EINVAL (bad or duplicate name, full), SPR_ENOMEM. */
int spr_device_add_netlist(spr_device *d, const char *name, const char *text);
int spr_device_add_seed(spr_device *d, const char *name, uint64_t seed);
int spr_device_add_samples(spr_device *d, const char *name, uint64_t count);

/* Append a named data array (copied): rank 1 (n0 values; n1 ignored) or
 * rank 2 (n0 x n1, row-major); every value finite; unit and description
 * non-empty (description < 200 bytes).  Stored as /data/<name> (float64,
 * attributes unit and description).  Errors: SPR_EINVAL (bad or duplicate
 * name, bad shape, a non-finite value naming its index, full),
 * SPR_ENOMEM. */
int spr_device_add_data(spr_device *d, const char *name, const char *unit,
                        const char *description, int rank, int64_t n0, int64_t n1,
                        const double *values);

/* Record the configuration text (copied; replaces an earlier one).
 * Errors: SPR_EINVAL (NULL or empty text), SPR_ENOMEM. */
int spr_device_set_config(spr_device *d, const char *text);

/* The data array `name` of d, or NULL. */
const spr_device_data *spr_device_find_data(const spr_device *d, const char *name);

/* Write d to `path` (a new file, written under a unique temporary name and
 * renamed when complete).  d->ngspice_version and d->sprintsim_version
 * must be set; d->created is set to the current UTC time when empty.
 * Errors: SPR_EINVAL (validation), SPR_EIO, SPR_EHDF5. */
int spr_device_write(const char *path, spr_device *d);

/* Read and validate the device model `path` into d (initialised here;
 * free with spr_device_free, also after an error).  Errors: SPR_EIO
 * (cannot open), SPR_EHDF5 (not HDF5, wrong format attribute or version,
 * a missing group, dataset or attribute, a wrong type or shape, a value
 * failing validation; the message names the file, the dataset or
 * attribute and the value; libhdf5 crashed, looped or ran out of memory
 * on the file, which is read in a child process: core/spr_h5r.h),
 * SPR_ENOMEM.  d->content_id is the FNV-1a 64 of the bytes read. */
int spr_device_read(const char *path, spr_device *d);

/* Set every keyed parameter of d in *c (spr_config_set: the key's range
 * is checked; origin names the device file in messages), then resolve the
 * configuration again.  applied (may be NULL) gets the indices into
 * d->params of the parameters applied, in order, *n_applied their count.
 * On error *c may be partly updated.  Errors: SPR_ECONFIG (a value out of
 * the key's range, or the resolved configuration is inconsistent). */
int spr_device_apply(const spr_device *d, spr_config *c, const char *origin, int *applied,
                     int *n_applied);

/* The run.device_model key at work: when c->device_model is not "", read
 * that file and apply it to *c (spr_device_read, spr_device_apply).  dev
 * (may be NULL) receives the model read; spr_device_free it in every case.
 * applied, n_applied (may be NULL) as for spr_device_apply.  Returns 0
 * (also when no device model is set) or the error of the read or the
 * apply, its message prefixed "run.device_model: ". */
int spr_device_load_config(spr_config *c, spr_device *dev, int *applied, int *n_applied);

/* Record device model dev, read from `path` (run.device_model) and applied
 * as spr_device_load_config reported (applied[0 .. n_applied)), in trace
 * t: spr_trace_write_device of its applied parameters and provenance.
 * Returns 0 or the trace writer's error. */
int spr_device_trace(spr_trace *t, const char *path, const spr_device *dev,
                     const int *applied, int n_applied);

#endif
