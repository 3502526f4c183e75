/* spr_trace.h - HDF5 trace files (schema: docs/trace.md).
 *
 * A trace is written to a fresh "<path>.tmp.XXXXXX" (mkstemp, so runs
 * writing the same path never touch each other's file) and renamed to <path> by
 * spr_trace_close(t, 1) only after everything was written and the root
 * attribute "complete" set to 1, so an interrupted run never leaves a file
 * that looks finished.  Object modification times are not recorded, so the
 * same inputs give byte-identical files.
 *
 * HDF5 is not thread-safe in Debian's serial build: call these from one
 * thread at a time.
 */
#ifndef SPR_TRACE_H
#define SPR_TRACE_H

#include <stdint.h>

#include "spr_params.h"
#include "spr_result.h"

typedef struct spr_trace spr_trace;

/* Create the trace for a run of configuration *c (its resolved keys, the
 * program version and c->seed are written as the file's first content).
 * *out is set to the new handle.  Errors: SPR_EIO (also when path is a
 * directory or ends in '/'), SPR_EHDF5, SPR_ENOMEM (the message names the
 * path). */
int spr_trace_create(const char *path, const spr_config *c,
                     const char *version, spr_trace **out);

/* Write head r (layer r->layer, head r->head), once per head, in any
 * order: a group with its threshold, scales and causal flag at every
 * level, plus the masks at level masks, plus the operands and scores at
 * level full.  Errors: SPR_EINVAL (result does not match the
 * configuration, arrays the level needs are NULL, padding bits set, a
 * causal head's mask keeps a key j > i, head already written),
 * SPR_EHDF5, SPR_EIO (a write failed: a full disk; the trace can only be
 * discarded). */
int spr_trace_write_head(spr_trace *t, const spr_head_result *r);

/* Masks in row chunks, for heads too long to hold their n x n masks (a
 * run in row blocks, trace level masks): spr_trace_mask_rows_begin(t, l)
 * creates the mask datasets of every head of layer l (uncompressed,
 * chunked by 64 rows, allocated at creation, so the file's bytes do not
 * depend on the order the rows come in); spr_trace_write_mask_rows writes
 * rows row0 .. row0 + rows - 1 of both masks of one head (rows x
 * spr_mask_row_bytes(n) bytes each); spr_trace_write_head then writes the
 * head's attributes, every row having come (its result's mask pointers
 * are not read).  Not with level full (its n x n scores are held).
 * Errors: SPR_EINVAL (level, layer or head out of range, begun twice, a
 * head not begun, rows outside [0, n), padding bits set), SPR_EHDF5,
 * SPR_ENOMEM.  One thread at a time, as every function here. */
int spr_trace_mask_rows_begin(spr_trace *t, int layer);
int spr_trace_write_mask_rows(spr_trace *t, int layer, int head, int row0, int rows,
                              const uint8_t *mask_analog, const uint8_t *mask_ideal);

/* Write the summary tables, shape (layers x heads), from results indexed
 * res[layer * heads + head], and the attribute "causal" of /summary (every
 * head must have the same res[].causal).  Errors: SPR_EINVAL, SPR_EHDF5,
 * SPR_ENOMEM. */
int spr_trace_write_summary(spr_trace *t, const spr_head_result *res);

/* The device model a run used (calibration/spr_device.h), as plain data so
 * that core/ does not depend on calibration/. */
typedef struct {
  const char *path;              /* the file as given (run.device_model) */
  const char *content_id;        /* "fnv1a64:<16 hex>" of its bytes */
  const char *created;           /* its creation time (UTC) */
  const char *sprintsim_version; /* the sprintsim that wrote it */
  const char *ngspice_version;   /* the ngspice it was fitted against */
  int n;                         /* parameters applied */
  const char *const *keys;       /* n configuration keys ("analog.cmp_noise_sigma") */
  const char *const *params;     /* n device-file parameter names */
  const char *const *units;      /* n units ("1" dimensionless) */
  const double *values;          /* n values set */
  const double *ci95_lo, *ci95_hi; /* n 95% intervals */
} spr_trace_device;

/* Record the device model of the run: group /device_model with the
 * provenance as attributes and one float64 dataset per applied key
 * (docs/trace.md).  At most once per trace.  Errors: SPR_EINVAL (NULL
 * fields, written twice, after a failed write), SPR_EHDF5. */
int spr_trace_write_device(spr_trace *t, const spr_trace_device *dm);

/* Record an input file the run read: dataset /inputs/<key> (key: the
 * configuration key that names it, "workload.qkv_file",
 * "run.device_model") holding the path, with attributes content_id
 * ("fnv1a64:<16 hex>" of the bytes read) and size_bytes (docs/trace.md).
 * Once per key.  Errors: SPR_EINVAL (NULL or empty fields, a '/' in the
 * key, written twice, after a failed write), SPR_EHDF5, SPR_EIO. */
int spr_trace_write_input(spr_trace *t, const char *key, const char *path,
                          const char *content_id, long long size_bytes);

/* Finish.  commit = 1: mark complete, close and rename to the final path;
 * refused (SPR_EINVAL, temporary deleted) when the summary or a head was
 * not written or an earlier write failed.  commit = 0: close and delete the
 * temporary file.  Frees t (NULL is a no-op returning 0).
 * Errors: SPR_EINVAL, SPR_EHDF5, SPR_EIO (a write, the close or the
 * flush to the disk failed: a full disk, a quota, a file-size limit, the
 * message names the temporary and the reason, and nothing is left; or
 * the rename failed: the complete file stays at its "<path>.tmp.XXXXXX"
 * name and the message names both). */
int spr_trace_close(spr_trace *t, int commit);

#endif
