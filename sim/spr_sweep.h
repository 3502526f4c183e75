/* spr_sweep.h - grid sweeps over configuration keys (docs/sweep.md).
 *
 * A sweep file is an ordinary configuration file plus one [sweep] section:
 *
 *   [sweep]
 *   threshold.keep_rate = 0.05, 0.1, 0.2        ; an axis: section.key = values
 *   analog.cmp_noise_sigma = 0, 20 nA, 50 nA    ; values as the key accepts them
 *   threshold.keep_rate + baselines.topk_fraction = 0.1, 0.2   ; linked keys
 *   schemes = sprint, dense, oracle, topk       ; optional: schemes to report
 *   max_points = 2000                           ; optional: limit (default 1000)
 *
 * Values are separated by commas, or by '|' when the text contains one
 * (a list key such as threshold.values then takes one list per point).
 * Keys joined by '+' on one axis take the same value at each point (one
 * key appears on one axis only).  The grid is the Cartesian product of the axes in file order, the first
 * axis varying slowest.  Every other section is parsed with the normal
 * parser's rules; every point's configuration is built (the base, then
 * each axis's value with spr_config_set, then spr_config_resolve) and
 * checked by spr_sweep_load before anything runs, so a bad value or a bad
 * combination is reported with the point, its axis values and the key.
 *
 * Step, don't call back: the caller evaluates each point with
 * spr_sweep_eval_point (from any thread, distinct points at once), then
 * writes the outputs with spr_sweep_out_*.  A point's rows depend on its
 * configuration alone (spr_eval.h), so the output does not depend on the
 * thread count or on the order in which points finish.
 */
#ifndef SPR_SWEEP_H
#define SPR_SWEEP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "spr_config.h"
#include "spr_eval.h"
#include "spr_params.h"

#define SPR_SWEEP_MAX_AXES 16
#define SPR_SWEEP_MAX_VALUES 1024          /* per axis */
#define SPR_SWEEP_DEFAULT_MAX_POINTS 1000
#define SPR_SWEEP_LIMIT_POINTS 100000      /* largest max_points accepted */

typedef struct spr_sweep spr_sweep;

/* Parse sweep file `path`, expand and check every point.  Errors:
 * SPR_EIO, SPR_ENOMEM, SPR_ECONFIG naming path:line and the key, or the
 * point ("point 7 of 12 (threshold.keep_rate = 0.2, ...)") and the key. */
int spr_sweep_load(const char *path, spr_sweep **out);

/* spr_sweep_load of a source (spr_config.h): a file or a text (standard
 * input), with overrides.  An override of a [sweep] key
 * ("sweep.analog.v_read=0.1, 0.2", "sweep.schemes=sprint, dense")
 * replaces it; an override of a key that is an axis is refused
 * (SPR_EUSAGE): the axis would set the key at every point.  The stored
 * sweep text lists the overrides after it, as comments. */
int spr_sweep_load_src(const spr_config_src *src, spr_sweep **out);

void spr_sweep_free(spr_sweep *sw); /* NULL: no-op */

int spr_sweep_npoints(const spr_sweep *sw);
int spr_sweep_naxes(const spr_sweep *sw);
/* Axis a's key, "section.key". */
const char *spr_sweep_axis_key(const spr_sweep *sw, int a);
int spr_sweep_axis_nvalues(const spr_sweep *sw, int a);
/* Value v of axis a as written in the file ("20 nA"). */
const char *spr_sweep_axis_text(const spr_sweep *sw, int a, int v);
/* Index of point p's value on axis a (the first axis varies slowest). */
int spr_sweep_point_value(const spr_sweep *sw, int p, int a);
/* "threshold.keep_rate = 0.1, analog.cmp_noise_sigma = 20 nA"; returns
 * the length the full text needs, like snprintf. */
int spr_sweep_point_label(const spr_sweep *sw, int p, char *buf, size_t n);

/* The configuration the axes are applied over: the file without its
 * [sweep] section, parsed, not resolved (owned by sw). */
const spr_config *spr_sweep_base(const spr_sweep *sw);

/* The grid's limit on points ([sweep] max_points). */
int spr_sweep_max_points(const spr_sweep *sw);

/* Schemes reported (enum spr_scheme), in the order of `schemes` (default:
 * sprint, dense, then every baseline switched on in the file). */
int spr_sweep_nschemes(const spr_sweep *sw);
int spr_sweep_scheme(const spr_sweep *sw, int k);

/* The evaluator every point uses (the same for all points). */
const spr_evaluator *spr_sweep_evaluator(const spr_sweep *sw);

/* Resolved configuration of point p into *c (baselines not reported are
 * switched off).  Returns 0 (always, after spr_sweep_load's checks) or
 * SPR_EINVAL for p out of range. */
int spr_sweep_point_config(const spr_sweep *sw, int p, spr_config *c);

/* Refuse a sweep whose `concurrent` points at once (one thread each, as
 * `sprintsim sweep --threads` runs them) would need more than 80% of
 * limit_bytes together (<= 0: the memory this process may use,
 * spr_sysmem_limit): the sum of the `concurrent` largest estimates
 * (spr_run_mem_bytes of each point's configuration on one thread; for
 * the model evaluators spr_model_store_need_bytes).  A model sweep's
 * models, reference models and test splits, and the device models
 * (run.device_model) of any sweep, are read here, once per file, into the
 * sweep's store, from which its points then take them
 * (spr_model_eval_from): call it before the points run, on one thread.
 * Returns 0, the error of a point whose inputs cannot be read (naming the
 * point), or SPR_ENOMEM naming the largest point, the sum,
 * the limit and its source, and how many points at once would fit. */
int spr_sweep_check_memory(spr_sweep *sw, int concurrent, double limit_bytes);

/* Evaluate point p: thread-safe for distinct p, single-threaded inside.
 * Stops with SPR_ECANCELED once *cancel (may be NULL) is nonzero.  prog
 * (may be NULL) receives the point's progress (spr_evaluator.point).
 * Errors name the point.  Call spr_sweep_check_memory first: the points
 * then take their models and device models from the store; without it
 * each point reads those files itself, starting HDF5 reader processes
 * while other points run (spr_h5r.h, Threads).  (A point's Q/K/V file is
 * still opened by the point.) */
int spr_sweep_eval_point(spr_sweep *sw, int p, volatile sig_atomic_t *cancel, spr_progress *prog);

/* Row of scheme s (enum spr_scheme) at point p, NULL until evaluated. */
const spr_eval_row *spr_sweep_row(const spr_sweep *sw, int p, int s);

/* 1 when point p has its rows (evaluated or unpacked), else 0. */
int spr_sweep_point_done(const spr_sweep *sw, int p);

/* A point's rows as bytes, to move them between processes (MPI ranks) or
 * into a journal: every scheme's row, each field's exact bits in
 * little-endian order (ran as one byte and 3 zero bytes, the
 * SPR_EVAL_MAX_ACC accuracy metrics, energy_J, cycles, keep_rate as IEEE
 * doubles, bytes_fetched as a two's-complement 64-bit integer), so an
 * unpacked point writes the same outputs, to the bit, as the evaluated
 * one. */
#define SPR_SWEEP_POINT_BYTES (SPR_N_SCHEMES * (4 + 8 * (SPR_EVAL_MAX_ACC + 4)))

/* Pack point p's rows into buf[SPR_SWEEP_POINT_BYTES].  Returns 0 or
 * SPR_EINVAL (p out of range or not evaluated). */
int spr_sweep_point_pack(const spr_sweep *sw, int p, unsigned char *buf);

/* Set point p's rows from n packed bytes, as spr_sweep_eval_point would.
 * Returns 0 or SPR_EINVAL (p out of range, n not SPR_SWEEP_POINT_BYTES, a
 * bad flag, a reported scheme or dense that did not run), naming the
 * point; the point is unchanged on error. */
int spr_sweep_point_unpack(spr_sweep *sw, int p, const unsigned char *buf, size_t n);

/* Identity of point p's configuration: FNV-1a 64 of its resolved
 * configuration as INI text (spr_config_to_ini of spr_sweep_point_config),
 * computed by spr_sweep_load; 0 for p out of range.  Two points with the
 * same hash compute the same rows (with the same program and inputs). */
uint64_t spr_sweep_point_hash(const spr_sweep *sw, int p);

/* The sweep's text as stored in the outputs (/config/source: the file,
 * then its overrides as comments) and its name (/config/path). */
const char *spr_sweep_source(const spr_sweep *sw);
const char *spr_sweep_path(const spr_sweep *sw);

/* The files the points read, each distinct (key, path) once, in the
 * order first met: run.device_model; workload.qkv_file with source qkv;
 * with source model workload.model and its reference model
 * ("workload.reference_model": the key's file, or the model file's own
 * 'reference').  Only regular files that exist at load time; folders
 * (workload.dataset) are not listed. */
int spr_sweep_ninputs(const spr_sweep *sw);
const char *spr_sweep_input_key(const spr_sweep *sw, int i);  /* "workload.model" */
const char *spr_sweep_input_path(const spr_sweep *sw, int i);

/* The identity of input file `path` (read whole): its size in bytes and
 * the FNV-1a 64 of its content.  Returns 0, SPR_EIO (naming the file) or
 * SPR_ENOMEM. */
int spr_sweep_input_id(const char *path, long long *size, uint64_t *hash);

/* Outputs: the HDF5 file and the CSV beside it, each written under a
 * fresh "<path>.tmp.XXXXXX" and renamed when complete. */
typedef struct spr_sweep_out spr_sweep_out;

/* Reserve the temporary files now (so an unwritable path fails before
 * the points run).  Errors: SPR_EIO (names the path; also a directory),
 * SPR_ENOMEM. */
int spr_sweep_out_open(const char *h5path, const char *csvpath, spr_sweep_out **out);

/* Write both files from sw (every point evaluated, else SPR_EINVAL) and
 * rename them to their paths; the CSV first, the HDF5 file (root
 * attribute complete = 1) last.  Frees o.  Errors: SPR_EINVAL, SPR_EIO,
 * SPR_EHDF5; on error no temporary is left. */
int spr_sweep_out_commit(spr_sweep_out *o, const spr_sweep *sw, const char *version);

/* Delete the temporaries and free o (NULL: no-op). */
void spr_sweep_out_abort(spr_sweep_out *o);

/* "<path without .h5>.csv". Returns a string to free(), NULL if out of memory. */
char *spr_sweep_csv_path(const char *h5path);

#endif
