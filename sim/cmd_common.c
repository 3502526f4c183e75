/* cmd_common.c - what the sprintsim commands share (sim/cmd.h): the
 * signal flag, error and option parsing, the device-model loading. */
#include "config.h"
#include "cmd.h"
#include "cmd_mpi.h"
#include "spr_config.h"
#include "spr_device.h"
#include "spr_error.h"
#include "spr_qkv.h"
#include "spr_table.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t cmd_interrupted = 0;

/* The first signal wins: a SIGINT after SIGXFSZ does not hide the limit. */
static void on_signal(int sig) {
  if (!cmd_interrupted) cmd_interrupted = sig;
}

void cmd_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sa.sa_flags = 0; /* every write past the limit raises it again */
  sigaction(SIGXFSZ, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

int cmd_stop_status(const char **why) {
  if (cmd_interrupted == SIGXFSZ) {
    *why = "the file size limit (ulimit -f) was reached";
    return 1;
  }
  *why = "interrupted";
  return 130;
}

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

int cmd_fail_rc(int rc, const char *what) {
  return cmd_fail(rc == SPR_EUSAGE ? CMD_EXIT_USAGE : 1, what);
}

/* The value of option argv[*i] (advancing *i), or NULL after printing
 * that it is missing. */
static const char *opt_value(int argc, char **argv, int *i, const char *cmd, const char *what) {
  const char *a = argv[*i];
  if (*i + 1 >= argc || !argv[*i + 1][0]) {
    fprintf(stderr, "%s: %s: %s needs %s\n", cmd_prog, cmd, a, what);
    return NULL;
  }
  return argv[++*i];
}

int cmd_parse_opts(int argc, char **argv, cmd_opts *o) {
  const int optional = !strcmp(o->config_what, "at most"), none = !strcmp(o->config_what, "none");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    int r;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      o->usage(stdout);
      return 0;
    } else if ((o->allow & CMD_OPT_OUT) && (!strcmp(a, "-o") || !strcmp(a, "--output"))) {
      if (!(v = opt_value(argc, argv, &i, o->cmd, "a file name"))) return CMD_EXIT_USAGE;
      o->out = v;
    } else if ((o->allow & CMD_OPT_SEED) && !strcmp(a, "--seed")) {
      if (!(v = opt_value(argc, argv, &i, o->cmd, "a value"))) return CMD_EXIT_USAGE;
      o->seed = v;
    } else if ((o->allow & CMD_OPT_THREADS) && !strcmp(a, "--threads")) {
      if (cmd_parse_int_arg("--threads", i + 1 < argc ? argv[++i] : NULL, 1, 1024, &o->threads))
        return CMD_EXIT_USAGE;
    } else if ((o->allow & CMD_OPT_TRACE) && !strcmp(a, "--trace")) {
      if (!(v = opt_value(argc, argv, &i, o->cmd, "a level (summary, masks or full)")))
        return CMD_EXIT_USAGE;
      o->trace = v;
    } else if ((o->allow & CMD_OPT_SET) && !strcmp(a, "--set")) {
      if (!(v = opt_value(argc, argv, &i, o->cmd, "section.key=value"))) return CMD_EXIT_USAGE;
      if (o->n_set >= CMD_MAX_SET) {
        fprintf(stderr, "%s: %s: more than %d --set options\n", cmd_prog, o->cmd, CMD_MAX_SET);
        return CMD_EXIT_USAGE;
      }
      o->set[o->n_set++] = v;
    } else if ((o->allow & CMD_OPT_FORMAT) && !strcmp(a, "--format")) {
      if (!(v = opt_value(argc, argv, &i, o->cmd, "text, csv or json"))) return CMD_EXIT_USAGE;
      if ((o->format = spr_table_format_of(v)) < 0) {
        fprintf(stderr, "%s: %s: --format '%s' is not one of text, csv, json\n", cmd_prog, o->cmd, v);
        return CMD_EXIT_USAGE;
      }
    } else if ((o->allow & CMD_OPT_BATCH) && !strcmp(a, "--batch")) {
      if (cmd_parse_int_arg("--batch", i + 1 < argc ? argv[++i] : NULL, 1, 4096, &o->batch))
        return CMD_EXIT_USAGE;
    } else if ((o->allow & CMD_OPT_BATCH) && !strcmp(a, "--pad")) {
      if (cmd_parse_int_arg("--pad", i + 1 < argc ? argv[++i] : NULL, 0, SPR_QKV_MAX_SEQ, &o->pad))
        return CMD_EXIT_USAGE;
    } else if ((o->allow & CMD_OPT_PROGRESS) && (r = cmd_progress_opt(o->cmd, a, &o->progress))) {
      if (r < 0) return CMD_EXIT_USAGE;
    } else if ((o->allow & CMD_OPT_RESUME) && !strcmp(a, "--resume")) {
      o->resume = 1;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "%s: %s: unknown option '%s' (see 'sprintsim help %s')\n", cmd_prog, o->cmd, a,
              o->cmd);
      return CMD_EXIT_USAGE;
    } else if (!o->config && !none) {
      o->config = a;
    } else {
      if (none)
        fprintf(stderr, "%s: %s: unexpected argument '%s' (see 'sprintsim help %s')\n", cmd_prog,
                o->cmd, a, o->cmd);
      else
        fprintf(stderr, "%s: %s: unexpected argument '%s' (one CONFIG%s)\n", cmd_prog, o->cmd, a,
                optional ? " at most" : "");
      return CMD_EXIT_USAGE;
    }
  }
  if (!optional && !none && !o->config) {
    fprintf(stderr, "%s: %s: a CONFIG %sis required (see 'sprintsim help %s')\n", cmd_prog, o->cmd,
            o->config_what, o->cmd);
    return CMD_EXIT_USAGE;
  }
  return -1;
}

int cmd_progress_opt(const char *cmd, const char *a, int *mode) {
  int want;
  if (!strcmp(a, "--progress")) want = CMD_PROGRESS_ON;
  else if (!strcmp(a, "--quiet")) want = CMD_PROGRESS_OFF;
  else return 0;
  if (*mode != CMD_PROGRESS_AUTO && *mode != want) {
    fprintf(stderr, "%s: %s: --progress and --quiet contradict each other (give one of them)\n",
            cmd_prog, cmd);
    return -1;
  }
  *mode = want;
  return 1;
}

/* Standard input, read once (cmd_config_src), freed by cmd_cleanup. */
static char *stdin_text;

int cmd_config_src(const cmd_opts *o, spr_config_src *src) {
  enum { LIMIT = 16 << 20 };
  memset(src, 0, sizeof *src);
  src->set = o->set;
  src->n_set = o->n_set;
  src->set_name = "--set";
  if (!o->config) { /* the built-in default: no text over the defaults */
    src->name = "built-in default";
    src->text = "";
    return 0;
  }
  if (strcmp(o->config, "-") != 0) {
    src->name = o->config;
    return 0;
  }
  src->name = "stdin";
  if (!stdin_text) {
    size_t cap = 4096, len = 0;
    char *t = malloc(cap);
    while (t) {
      size_t r = fread(t + len, 1, cap - len - 1, stdin);
      len += r;
      if (r == 0 || len > LIMIT) break;
      if (len + 1 >= cap) {
        char *u = realloc(t, cap *= 2);
        if (!u) free(t);
        t = u;
      }
    }
    if (!t) {
      fprintf(stderr, "%s: %s: stdin: out of memory reading the configuration\n", cmd_prog, o->cmd);
      return 1;
    }
    t[len] = '\0';
    const char *why = ferror(stdin) ? strerror(errno)
                      : len > LIMIT ? "the configuration is longer than 16 MiB"
                      : strlen(t) != len ? "the configuration holds a NUL byte (not text)"
                                         : NULL;
    if (why) {
      free(t);
      fprintf(stderr, "%s: %s: stdin: %s\n", cmd_prog, o->cmd, why);
      return 1;
    }
    stdin_text = t;
  }
  src->text = stdin_text;
  return 0;
}

void cmd_cleanup(void) {
  free(stdin_text);
  stdin_text = NULL;
}

/* Same file: both exist with the same device and inode. */
static int same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cmd_check_input(const char *cmd, const char *opt, const char *out, const char *what,
                    const char *in) {
  if (!out || !in || !in[0] || !same_file(out, in)) return 0;
  fprintf(stderr, "%s: %s: %s %s names an input of the %s: %s %s; write the output elsewhere\n",
          cmd_prog, cmd, opt, out, cmd, what, in);
  return CMD_EXIT_USAGE;
}

int cmd_check_inputs(const cmd_opts *o, const char *opt, const char *out, const spr_config *c) {
  if (o->config && strcmp(o->config, "-") != 0 &&
      cmd_check_input(o->cmd, opt, out, "the configuration", o->config))
    return CMD_EXIT_USAGE;
  for (int i = 0; c && i < spr_config_nkeys(); i++) {
    const spr_config_key_info *k = spr_config_key(i);
    if (k->type != SPR_KEY_STRING) continue;
    char path[SPR_STRING_MAX + 1], what[128];
    spr_config_format(c, i, path, sizeof path);
    snprintf(what, sizeof what, "%s.%s", k->section, k->name);
    if (cmd_check_input(o->cmd, opt, out, what, path)) return CMD_EXIT_USAGE;
  }
  return 0;
}

int cmd_check_output(const char *out) {
  struct stat sb;
  size_t len = strlen(out);
  if (len == 0 || out[len - 1] == '/' || (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)))
    return spr_error(SPR_EIO, "%s: the output is a folder, not a file name", out);
  char *dir = strdup(out);
  if (!dir) return spr_error(SPR_ENOMEM, "out of memory");
  char *slash = strrchr(dir, '/');
  const char *d = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
  int rc = access(d, W_OK | X_OK) ? spr_error(SPR_EIO, "%s: cannot write into the folder %s: %s",
                                              out, d, strerror(errno))
                                  : 0;
  free(dir);
  return rc;
}

void cmd_usage_set(FILE *f, const char *more) {
  fprintf(f,
          "  --set SECTION.KEY=VALUE\n"
          "                     set one configuration key over CONFIG (repeatable; a key\n"
          "                     once; file names relative to the current folder), e.g.\n"
          "                     --set threshold.keep_rate=0.1 --set 'crossbar.g_max=80 uS'\n"
          "%s"
          "  CONFIG as '-'      read the configuration from standard input (its file\n"
          "                     names relative to the current folder)\n",
          more ? more : "");
}

/* An integer environment variable, or -1. */
static long env_int(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v) return -1;
  char *end;
  long x = strtol(v, &end, 10);
  return *end || x < 0 ? -1 : x;
}

int cmd_mpi_launched(int *rank) {
  /* world size and rank as each launcher sets them: Open MPI's mpirun,
   * MPICH's and Intel's hydra or Slurm's PMI (PMI_*), PMIx, MVAPICH;
   * srun's own variables only inside a job step (a batch script sees
   * SLURM_NTASKS without being started by srun) */
  static const char *const vars[][2] = {{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"},
                                        {"PMI_SIZE", "PMI_RANK"},
                                        {"PMIX_SIZE", "PMIX_RANK"},
                                        {"MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK"},
                                        {"SLURM_STEP_NUM_TASKS", "SLURM_PROCID"}};
  long size = 0, r = 0;
  for (size_t k = 0; k < sizeof vars / sizeof vars[0]; k++) {
    long n = env_int(vars[k][0]);
    if (k == 4 && !getenv("SLURM_STEP_ID")) continue;
    if (n > size) {
      size = n;
      r = env_int(vars[k][1]);
      if (r < 0) r = 0;
    }
  }
  if (rank) *rank = (int)r;
  return (int)size;
}

void cmd_usage_progress(FILE *f) {
  fprintf(f,
          "  --progress         show progress on stderr even when it is not a terminal\n"
          "                     (a line when a step begins or ends, else at most every\n"
          "                     10 s, less often as it grows old); by default only a\n"
          "                     terminal shows it\n"
          "  --quiet            no progress\n");
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
