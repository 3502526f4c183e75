/* cmd_common.c - what the sprintsim commands share (sim/cmd.h): the
 * signal flag, error and option parsing, the device-model loading. */
#include "config.h"
#include "cmd.h"
#include "spr_config.h"
#include "spr_device.h"
#include "spr_error.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile sig_atomic_t cmd_interrupted = 0;
void cmd_on_signal(int sig) { cmd_interrupted = sig; }

const char *cmd_prog = "sprintsim";

int cmd_fail(int code, const char *what) {
  fprintf(stderr, "%s: %s%s%s\n", cmd_prog, what ? what : "", what ? ": " : "", spr_errmsg());
  return code;
}

int cmd_parse_int_arg(const char *opt, const char *v, long lo, long hi, long *out) {
  char *end;
  long x = v ? strtol(v, &end, 10) : 0;
  if (!v || !*v || *end || x < lo || x > hi) {
    fprintf(stderr, "%s: %s: value '%s' is not an integer in [%ld, %ld]\n", cmd_prog, opt,
            v ? v : "(missing)", lo, hi);
    return -1;
  }
  *out = x;
  return 0;
}

int cmd_parse_opts(int argc, char **argv, cmd_opts *o) {
  const int optional = !strcmp(o->config_what, "at most");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      o->usage(stdout);
      return 0;
    } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
      if (++i >= argc || !argv[i][0]) {
        fprintf(stderr, "%s: %s needs a file name\n", cmd_prog, a);
        return CMD_EXIT_USAGE;
      }
      o->out = argv[i];
    } else if ((o->allow & CMD_OPT_SEED) && !strcmp(a, "--seed")) {
      if (++i >= argc) {
        fprintf(stderr, "%s: --seed needs a value\n", cmd_prog);
        return CMD_EXIT_USAGE;
      }
      o->seed = argv[i];
    } else if ((o->allow & CMD_OPT_THREADS) && !strcmp(a, "--threads")) {
      if (cmd_parse_int_arg("--threads", i + 1 < argc ? argv[++i] : NULL, 1, 1024, &o->threads))
        return CMD_EXIT_USAGE;
    } else if ((o->allow & CMD_OPT_TRACE) && !strcmp(a, "--trace")) {
      if (++i >= argc) {
        fprintf(stderr, "%s: --trace needs a level (summary, masks or full)\n", cmd_prog);
        return CMD_EXIT_USAGE;
      }
      o->trace = argv[i];
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "%s: %s: unknown option '%s' (see 'sprintsim help %s')\n", cmd_prog, o->cmd, a,
              o->cmd);
      return CMD_EXIT_USAGE;
    } else if (!o->config) {
      o->config = a;
    } else {
      fprintf(stderr, "%s: %s: unexpected argument '%s' (one CONFIG%s)\n", cmd_prog, o->cmd, a,
              optional ? " at most" : "");
      return CMD_EXIT_USAGE;
    }
  }
  if (!optional && !o->config) {
    fprintf(stderr, "%s: %s: a CONFIG %sis required (see 'sprintsim help %s')\n", cmd_prog, o->cmd,
            o->config_what, o->cmd);
    return CMD_EXIT_USAGE;
  }
  return -1;
}

double cmd_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Value of `name` in [section] of INI text into buf; 0 when found. */
static int ini_value(const char *text, const char *section, const char *name, char *buf,
                     size_t n) {
  const char *cur = "";
  size_t cur_len = 0, nl = strlen(name);
  for (const char *p = text; p && *p;) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (p[0] == '[') {
      cur = p + 1;
      cur_len = len > 2 ? len - 2 : 0;
    } else if (cur_len == strlen(section) && !strncmp(cur, section, cur_len) && len > nl + 3 &&
               !strncmp(p, name, nl) && !strncmp(p + nl, " = ", 3)) {
      snprintf(buf, n, "%.*s", (int)(len - nl - 3), p + nl + 3);
      return 0;
    }
    p = e ? e + 1 : NULL;
  }
  return -1;
}

/* Warn about the conditions a device model was calibrated under that
 * differ from the run's (the fitted values hold for those conditions). */
static void warn_device_conditions(const spr_config *c, const spr_device *dev, FILE *out) {
  static const char *const keys[][2] = {
      {"crossbar", "rows"},  {"crossbar", "cols"},  {"crossbar", "cell_bits"},
      {"crossbar", "g_min"}, {"crossbar", "g_max"}, {"crossbar", "r_wl"},
      {"crossbar", "r_bl"},  {"analog", "v_read"},  {"analog", "query_bits"},
      {"analog", "temperature"}, {"analog", "bandwidth"}};
  if (!dev->config_text) return;
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    char cal[128], run[128];
    int i = spr_config_find(keys[k][0], keys[k][1]);
    if (i < 0 || ini_value(dev->config_text, keys[k][0], keys[k][1], cal, sizeof cal)) continue;
    spr_config_format(c, i, run, sizeof run);
    char *e1, *e2;
    const double a = strtod(cal, &e1), b = strtod(run, &e2);
    const int same = (*e1 == '\0' && *e2 == '\0' && e1 != cal && e2 != run)
                         ? fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b))
                         : !strcmp(cal, run);
    if (!same)
      fprintf(out, "  warning: calibrated with %s.%s = %s; this run has %s (calibrate with the "
                   "configuration you run)\n", keys[k][0], keys[k][1], cal, run);
  }
}

double cmd_device_column_G(const spr_device *dev) {
  for (int i = 0; i < dev->n_params; i++)
    if (!strcmp(dev->params[i].name, "cal_mean_column_G")) return dev->params[i].value;
  char rows[64], gmin[64], gmax[64];
  if (!dev->config_text || ini_value(dev->config_text, "crossbar", "rows", rows, sizeof rows) ||
      ini_value(dev->config_text, "crossbar", "g_min", gmin, sizeof gmin) ||
      ini_value(dev->config_text, "crossbar", "g_max", gmax, sizeof gmax))
    return 0;
  /* uniform levels: the mean cell is halfway between g_min and g_max */
  return strtod(rows, NULL) * (strtod(gmin, NULL) + strtod(gmax, NULL)) / 2;
}

void cmd_warn_column_G(double cal_G, double run_G, FILE *out) {
  if (!(cal_G > 0) || !(run_G > 0)) return;
  const double ratio = cal_G / run_G;
  if (ratio <= 2 && ratio >= 0.5) return;
  fprintf(out, "  warning: the device model was fitted on arrays of mean column conductance %.3g S; "
               "this run's programmed arrays average %.3g S (%.2gx %s): its IR-drop scales and MAC "
               "energy hold for other currents; calibrate with [calibrate] levels = workload "
               "(docs/calibration.md section 6)\n",
          cal_G, run_G, ratio > 1 ? ratio : 1 / ratio, ratio > 1 ? "lower" : "higher");
}

int cmd_load_device_model(spr_config *c, spr_device *dev, int *applied, int *n_applied,
                          FILE *out) {
  int rc = spr_device_load_config(c, dev, applied, n_applied);
  if (rc || !c->device_model[0]) return rc;
  fprintf(out, "device model %s (%s, created %s by sprintsim %s, %s) sets %d key%s:\n",
          c->device_model, dev->content_id, dev->created, dev->sprintsim_version,
          dev->ngspice_version, *n_applied, *n_applied == 1 ? "" : "s");
  for (int k = 0; k < *n_applied; k++) {
    const spr_device_param *p = &dev->params[applied[k]];
    fprintf(out, "  %-28s = %-12.6g %-2s (95%% CI %.6g .. %.6g; /params/%s)\n", p->key, p->value,
            strcmp(p->unit, "1") ? p->unit : "", p->ci95_lo, p->ci95_hi, p->name);
  }
  warn_device_conditions(c, dev, out);
  return 0;
}
