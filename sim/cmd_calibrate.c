/* cmd_calibrate.c - sprintsim calibrate: SPICE measurements and fits into a
 * device-model file (calibration/spr_calibrate.h). */
#include "config.h"
#include "cmd.h"
#include "spr_calibrate.h"
#include "spr_config.h"
#include "spr_device.h"
#include "spr_error.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void cmd_usage_calibrate(FILE *f) {
  fprintf(f,
          "usage: sprintsim calibrate CONFIG [-o DEVICE.h5] [--seed N] [--set SECTION.KEY=VALUE ...]\n"
          "\n"
          "Measure the devices of CONFIG with ngspice and fit the simulator's models\n"
          "(docs/calibration.md), in seven steps:\n"
          "  1 cell I-V at several G in [g_min, g_max]          -> crossbar.cell_v0\n"
          "  2 exact currents of random arrays (ngspice checks  -> crossbar.ir_alpha_wl,\n"
          "    the nodal solver)                                   ir_alpha_bl\n"
          "  3 column .noise over analog.bandwidth              -> analog.thermal_excess\n"
          "  4 comparator Monte-Carlo trip currents             -> analog.cmp_offset_sigma\n"
          "  5 comparator .noise over analog.bandwidth          -> analog.cmp_noise_sigma\n"
          "  6 comparator step transients at several overdrives -> energy.cmp_per_decision\n"
          "  7 read energy of arrays of several sizes           -> energy.imc_mac_per_op\n"
          "\n"
          "CONFIG is an ordinary configuration (its crossbar, analog, energy and timing\n"
          "keys give sizes, g_min/g_max, v_read, r_wl/r_bl, temperature, bandwidth and\n"
          "clock; run.seed seeds every Monte Carlo) plus an optional [calibrate]\n"
          "section with the SPICE device and circuit, for example:\n"
          "\n"
          "  [calibrate]\n"
          "  cell_v0 = 0.25 V          ; sinh law I = I0 exp(-gap/g0) sinh(V/V0)\n"
          "  cmp_samples = 200         ; Monte-Carlo comparators\n"
          "  cmp_r_sense = 20 kohm     ; comparator sense resistors\n"
          "  timeout = 120 s           ; limit of each ngspice job\n"
          "\n"
          "Every key, its default and unit: docs/calibration.md (examples/calibrate.ini\n"
          "writes them all out).  The defaults take 15 to 35 s.\n"
          "\n"
          "  -o, --output FILE  device-model file (default sprintsim-device.h5); written\n"
          "                     as FILE.tmp.XXXXXX and renamed when complete; checked\n"
          "                     before any SPICE job; not CONFIG itself\n"
          "  --seed N           overrides run.seed\n");
  cmd_usage_set(f, "                     (also [calibrate] keys: --set calibrate.timeout=30s)\n");
  cmd_usage_progress(f);
  fprintf(f,
          "  -h, --help         this help\n"
          "\n"
          "Progress and each step's time go to standard error, the fitted parameters\n"
          "to standard output.  Then set run.device_model = DEVICE.h5 in a run's\n"
          "configuration.  Exit status: 0 success, 1 error (no file written), 2 bad\n"
          "command line, 130 interrupted (no file written).\n");
}

/* Lines of the [calibrate] keys given (0: not given), for duplicates and
 * for naming the line of a key in a relation error. */
typedef struct {
  spr_cal_params *p;
  int line[SPR_CAL_MAX_KEYS];
} cal_parse;

static int on_calibrate_key(void *user, const char *name, const char *value, int line,
                            const char *origin) {
  cal_parse *cp = user;
  int ki = spr_cal_key_find(name);
  if (ki >= 0 && cp->line[ki])
    return spr_error(SPR_ECONFIG, "%s: [calibrate] key '%s' given twice (first on line %d)", origin,
                     name, cp->line[ki]);
  int rc = spr_cal_params_set(cp->p, name, value, origin);
  if (!rc) cp->line[ki] = line; /* 0 for a --set */
  return rc;
}

/* The step a calibration is in, for its progress line. */
typedef struct {
  atomic_int step; /* 1-based; 0 before the first */
} step_at;

static void step_prefix(void *user, char *buf, size_t n) {
  const int k = atomic_load(&((step_at *)user)->step);
  if (k > 0) snprintf(buf, n, "[%d/%d] %s", k, SPR_CAL_N_STEPS, spr_cal_step_name(k - 1));
}

int cmd_calibrate(int argc, char **argv) {
  cmd_opts o = {.cmd = "calibrate", .usage = cmd_usage_calibrate, .config_what = "",
                .allow = CMD_OPT_SEED | CMD_OPT_OUT | CMD_OPT_SET | CMD_OPT_PROGRESS,
                .out = "sprintsim-device.h5",
                .threads = 1};
  int st = cmd_parse_opts(argc, argv, &o);
  if (st >= 0) return st;
  const char *out = o.out, *seed = o.seed;
  spr_config c;
  spr_cal_params p;
  spr_config_default(&c);
  spr_cal_params_default(&p);
  cal_parse cp;
  memset(&cp, 0, sizeof cp);
  cp.p = &p;
  spr_config_src src;
  if (cmd_config_src(&o, &src)) return 1;
  const char *cfg_path = src.name;
  int rc = spr_config_parse_src(&c, &src, "calibrate", on_calibrate_key, &cp);
  if (!rc) rc = spr_config_resolve(&c, cfg_path);
  if (rc) return cmd_fail_rc(rc, NULL);
  if ((st = cmd_check_inputs(&o, "-o", out, NULL))) return st;
  if (seed && spr_config_set(&c, "run", "seed", seed, "--seed")) return cmd_fail(CMD_EXIT_USAGE, NULL);
  if (spr_cal_params_check(&p, &c)) {
    /* a relation between keys: name the line of the first key the message
     * names, when the file gave it */
    int line = 0;
    const char *first = NULL, *msg = spr_errmsg();
    for (int k = 0; k < spr_cal_nkeys(); k++) {
      char pat[64];
      snprintf(pat, sizeof pat, " %s ", spr_cal_key_name(k));
      const char *at = strstr(msg, pat);
      if (at && (!first || at < first)) {
        first = at;
        line = cp.line[k];
      }
    }
    if (line) fprintf(stderr, "%s: %s:%d: %s\n", cmd_prog, cfg_path, line, spr_errmsg());
    else fprintf(stderr, "%s: %s: %s\n", cmd_prog, cfg_path, spr_errmsg());
    return 1;
  }
  /* the output, before minutes of SPICE (F8) */
  if (cmd_check_output(out)) return cmd_fail(1, NULL);
  spr_cal *cal = NULL;
  if (spr_cal_alloc(&c, &p, &cal)) return cmd_fail(1, NULL);

  cmd_signals();
  spr_cal_set_cancel(cal, &cmd_interrupted);
  /* progress: the step and its sub-steps (SPICE jobs, arrays) */
  spr_progress prog;
  spr_progress_init(&prog);
  spr_cal_set_progress(cal, &prog);
  step_at at = {0};
  cmd_progress_counter_src pc = {"calibrate", &prog, step_prefix, &at, 0, 0};
  cmd_progress *pr = cmd_progress_start(cmd_progress_wanted(&o), cmd_progress_counter, &pc);

  fprintf(stderr, "sprintsim %s: calibrate %s: seed %llu, output %s\n", PACKAGE_VERSION, cfg_path,
          (unsigned long long)c.seed, out);
  const double t0 = cmd_now_s();
  int status = 0;
  for (int k = 0; k < SPR_CAL_N_STEPS && !status; k++) {
    char sum[1024];
    const double ts = cmd_now_s();
    cmd_progress_printf(pr, "calibrate: [%d/%d] %s ...\n", k + 1, SPR_CAL_N_STEPS,
                        spr_cal_step_name(k));
    atomic_store(&at.step, k + 1); /* the status line counts its sub-steps */
    int rc = spr_cal_step(cal, k, sum, sizeof sum);
    if (rc == SPR_ECANCELED || (rc && cmd_interrupted)) {
      const char *why;
      status = cmd_stop_status(&why);
      cmd_progress_printf(pr, "%s: %s in step %d (%s) after %.1f s; %s not written\n", cmd_prog,
                          why, k + 1, spr_cal_step_name(k), cmd_now_s() - t0, out);
    } else if (rc) {
      cmd_progress_printf(pr, "%s: %s; %s not written\n", cmd_prog, spr_errmsg(), out);
      status = 1;
    } else {
      cmd_progress_printf(pr, "calibrate: [%d/%d] %s done in %.1f s: %s\n", k + 1,
                          SPR_CAL_N_STEPS, spr_cal_step_name(k), cmd_now_s() - ts, sum);
    }
  }
  cmd_progress_stop(pr);
  spr_cal_set_progress(cal, NULL);
  spr_device *dev = status ? NULL : spr_cal_device(cal, PACKAGE_VERSION);
  if (!status && !dev) status = cmd_fail(1, NULL);
  if (!status && cmd_interrupted) {
    const char *why;
    status = cmd_stop_status(&why);
    fprintf(stderr, "%s: %s; %s not written\n", cmd_prog, why, out);
  }
  if (!status && spr_device_write(out, dev)) {
    status = cmd_fail(1, NULL);
    if (cmd_interrupted == SIGXFSZ)
      fprintf(stderr, "%s: the file size limit (ulimit -f) was reached\n", cmd_prog);
  } else if (!status && cmd_interrupted == SIGXFSZ) { /* a write past the limit */
    unlink(out);
    fprintf(stderr, "%s: the file size limit (ulimit -f) was reached; %s not written\n", cmd_prog, out);
    status = 1;
  }
  if (!status) {
    printf("%-20s %-26s %13s %13s %13s %10s %6s\n", "parameter", "key", "value", "ci95_lo",
           "ci95_hi", "r2", "n");
    for (int i = 0; i < dev->n_params; i++) {
      const spr_device_param *q = &dev->params[i];
      printf("%-20s %-26s %13.6g %13.6g %13.6g %10.6f %6lld  %s\n", q->name,
             q->key[0] ? q->key : "(informational)", q->value, q->ci95_lo, q->ci95_hi, q->r2,
             (long long)q->n_points, strcmp(q->unit, "1") ? q->unit : "");
    }
    printf("calibrate: %s written in %.1f s (%d parameters, %d data arrays, %d netlists)\n", out,
           cmd_now_s() - t0, dev->n_params, dev->n_data, dev->n_netlists);
  }
  spr_cal_free(cal);
  return status;
}
