/* spr_calibrate.h - the calibration flow: SPICE measurements, fits and the
 * device-model file (`sprintsim calibrate`; docs/calibration.md).
 *
 * The flow measures, with ngspice (spr_circuits.h), the cell, crossbar and
 * comparator circuits described by a configuration (sizes, g_min/g_max,
 * v_read, r_wl/r_bl, temperature, bandwidth, clock, seed) and by
 * spr_cal_params (the SPICE device and circuit, sample counts), fits the
 * simulator's models to the measurements (spr_fit.h) and fills a device
 * model (spr_device.h): every fitted parameter with its interval and fit
 * quality, the deck of each measurement, the seed, the sample counts and
 * the raw measured data.
 *
 * Steps, run in order with spr_cal_step() (step, don't call back: the
 * caller prints progress and checks time between steps):
 *   SPR_CAL_CELL_IV  sinh cell I-V at several G in [g_min, g_max] -> cell_v0
 *   SPR_CAL_IR       random arrays (lognormal variation, wire parasitics):
 *                    exact currents by ngspice (a few, checked against the
 *                    nodal solver) and the nodal solver -> ir_alpha_wl/bl
 *   SPR_CAL_NOISE    column .noise over analog.bandwidth -> thermal_excess
 *   SPR_CAL_CMP_MC   comparator Monte-Carlo trip currents -> cmp_offset_sigma
 *   SPR_CAL_CMP_NOISE comparator .noise over the bandwidth -> cmp_noise_sigma
 *   SPR_CAL_CMP_STEP step transients at several overdrives -> delay model
 *                    (informational), energy per decision -> energy.cmp
 *   SPR_CAL_ENERGY   read energy of arrays of several sizes -> imc_mac
 *
 * The random arrays of steps 2, 3 and 7 have levels uniform over every
 * level by default; with [calibrate] levels = workload they are tiles of
 * the configuration's own workload's programmed keys, driven by its query
 * codes (spr_cal_workload.h), read by spr_cal_alloc before any SPICE job.
 * Step 2 records the mean column conductance of its arrays (rows x mean
 * cell conductance) as the informational parameter cal_mean_column_G, so
 * a run can tell whether the model was fitted on conductances like its
 * own.
 *
 * Every ngspice job forks (spr_spice.h): call from a single-threaded
 * program.  The flow never exits and prints nothing.  Errors name the step
 * and the value ("comparator Monte Carlo: sample 17: ..."); a set cancel
 * flag stops the flow between SPICE jobs with SPR_ECANCELED.
 */
#ifndef SPR_CALIBRATE_H
#define SPR_CALIBRATE_H

#include <signal.h>
#include <stdint.h>

#include "spr_circuits.h"
#include "spr_device.h"
#include "spr_params.h"
#include "spr_progress.h"

#define SPR_CAL_MAX_LIST 16 /* values of a list parameter */

/* Parameters of the SPICE device and circuits (the [calibrate] section;
 * each key documented in docs/calibration.md).  Sizes and electrical
 * values of the array come from the configuration. */
typedef struct {
  spr_circ_sinh cell;        /* the sinh law given to the SPICE B-source */
  int iv_levels;             /* programmed G values, log-spaced in [g_min, g_max] (>= 1) */
  int iv_points;             /* points of each I-V sweep (>= 5) */
  double iv_vmax_V;          /* sweep from -iv_vmax to +iv_vmax (> 0) */

  int ir_arrays;             /* random arrays solved by the nodal solver (>= 1) */
  int ir_spice_arrays;       /* of them, also solved by ngspice (0..ir_arrays) */
  int ir_inputs;             /* random input vectors per array (>= 1) */
  int ir_rows, ir_cols;      /* array size; 0 = crossbar.rows / crossbar.cols */
  double ir_spice_tol;       /* largest relative difference ngspice vs nodal (> 0) */

  int noise_arrays;          /* random arrays for the column noise (>= 1) */
  int noise_cols;            /* columns of each (all measured, >= 1); rows = crossbar.rows */
  double noise_f_lo_Hz;      /* lower end of the noise band (> 0, < analog.bandwidth) */
  int noise_ppd;             /* .noise points per decade (1..1000) */

  spr_circ_cmp cmp;          /* comparator circuit (vdd, vcm, vbn, r_sense, c_load, A_VT) */
  int cmp_samples;           /* Monte-Carlo comparators for the offset (>= 3) */
  int cmp_noise_samples;     /* Monte-Carlo comparators for the noise (3..cmp_samples) */
  double cmp_i_ref_A;        /* reference (threshold) current (> 0) */
  double cmp_span_A;         /* trip search span around i_ref (0 < span <= i_ref) */
  int n_overdrives;          /* step transients (>= 2) */
  double overdrive_A[SPR_CAL_MAX_LIST]; /* input overdrives (> 0, < the trip current) */
  double cmp_window_s;       /* decision window; 0 = timing.threshold_cycles / timing.clock */
  double cmp_t_step_s;       /* transient step of the comparator (> 0) */

  int n_sizes;               /* read-energy arrays (3..16 distinct sizes) */
  int energy_size[SPR_CAL_MAX_LIST]; /* square array sizes N (N x N cells, 1..128) */
  double read_width_s;       /* read pulse width; 0 = threshold_cycles / clock */
  double read_edge_s;        /* rise and fall time of the read pulse (> 0) */
  double c_wl_F, c_bl_F;     /* wire capacitance per word-/bit-line node (>= 0) */

  double timeout_s;          /* limit of each ngspice job (> 0) */

  int levels;                /* conductance levels of the random arrays of
                                steps 2, 3 and 7: SPR_CAL_LEVELS_UNIFORM
                                (every level equally likely) or
                                SPR_CAL_LEVELS_WORKLOAD (tiles of the
                                configuration's own programmed keys, and
                                its queries as inputs; spr_cal_workload.h) */
} spr_cal_params;

enum { SPR_CAL_LEVELS_UNIFORM = 0, SPR_CAL_LEVELS_WORKLOAD = 1 };

/* Defaults (docs/calibration.md, examples/calibrate.ini): the Stanford-PKU
 * card for the cell; 4 levels x 41 points over +-0.5 V; 16 IR arrays (2
 * also by ngspice) x 4 inputs at the crossbar's size; 8 noise arrays x 8
 * columns, 1 kHz to the bandwidth, 10 points per decade;
 * spr_circ_cmp_default(), 1000 offset and 32 noise samples, i_ref 10 uA,
 * span 2.5 uA, overdrives 0.5, 1, 2, 4 uA, window threshold_cycles /
 * clock, step 5 ps; read-energy sizes 8, 16, 24, 32 with 0.1 ns edges,
 * no wire capacitance; timeout 120 s.  About 15-30 s on 2 cores. */
void spr_cal_params_default(spr_cal_params *p);

/* The [calibrate] section's keys (one per field above; names, units and
 * ranges in docs/calibration.md).  Numbers take the key's unit with an
 * optional SI prefix (f p n u m k M G), lists are comma-separated. */
#define SPR_CAL_MAX_KEYS 64
int spr_cal_nkeys(void);
const char *spr_cal_key_name(int k);   /* NULL when k is out of range */
int spr_cal_key_find(const char *name); /* index, or -1 */

/* Set key `name` of p from its text.  origin ("file.ini:12") starts
 * every message.  Returns 0 or SPR_ECONFIG (unknown key, empty value,
 * wrong unit, not an integer, out of the key's range, empty list item,
 * too many values), naming the key and the value. */
int spr_cal_params_set(spr_cal_params *p, const char *name, const char *value,
                       const char *origin);

/* p as a "[calibrate]" INI section, every key, numbers with %.17g and
 * their unit (parsing it gives p back).  malloc'ed; NULL when out of
 * memory. */
char *spr_cal_params_to_ini(const spr_cal_params *p);

/* Check p against the configuration (ranges above, overdrives below the
 * span, sizes).  Returns 0 or SPR_EINVAL naming the parameter and value. */
int spr_cal_params_check(const spr_cal_params *p, const spr_config *c);

enum spr_cal_step {
  SPR_CAL_CELL_IV = 0,
  SPR_CAL_IR,
  SPR_CAL_NOISE,
  SPR_CAL_CMP_MC,
  SPR_CAL_CMP_NOISE,
  SPR_CAL_CMP_STEP,
  SPR_CAL_ENERGY,
  SPR_CAL_N_STEPS
};

/* Short name of step k ("cell I-V"). */
const char *spr_cal_step_name(int k);

typedef struct spr_cal spr_cal;

/* A calibration of configuration c (copied; resolved) with parameters p
 * (copied; checked).  With levels = workload the workload's keys are read
 * here, before any SPICE job: a file that is missing or does not match the
 * configuration is refused, naming it (spr_cal_workload_load).  *out
 * receives it.  Returns 0, SPR_EINVAL, SPR_ENOMEM or the workload
 * reader's error. */
int spr_cal_alloc(const spr_config *c, const spr_cal_params *p, spr_cal **out);
void spr_cal_free(spr_cal *cal);

/* Stop at the next SPICE job when *flag becomes non-zero (NULL: never). */
void spr_cal_set_cancel(spr_cal *cal, volatile sig_atomic_t *flag);

/* Count each step's sub-steps into *p (NULL: none) for the caller to poll
 * from another thread (spr_progress.h): every spr_cal_step begins a stage
 * named by its units ("I-V sweeps", "arrays", "columns", "comparators",
 * "transients"; "" with total 0 for a step without them), counts each as
 * it finishes, and leaves done = total when it succeeds. */
void spr_cal_set_progress(spr_cal *cal, spr_progress *p);

/* Run step k; steps must run in order 0, 1, ..., each once.  Its results
 * go into the device model.  summary (may be NULL) receives a one-line
 * result ("cell_v0 = 0.2500 V (95% CI ...)", n bytes).  Returns 0,
 * SPR_EINVAL (out of order), SPR_ESPICE, SPR_ECANCELED, SPR_ENOMEM, or
 * a fit's error, each message starting with the step's name. */
int spr_cal_step(spr_cal *cal, int k, char *summary, size_t n);

/* The device model after every step ran: provenance (ngspice version,
 * sprintsim_version, the resolved configuration with its [calibrate]
 * section as INI text), seeds, samples, netlists, parameters and data.
 * The model stays owned by cal (spr_device_write it before spr_cal_free).
 * Returns NULL until all steps ran (or, with an SPR_ENOMEM message, when
 * out of memory). */
spr_device *spr_cal_device(spr_cal *cal, const char *sprintsim_version);

#endif
