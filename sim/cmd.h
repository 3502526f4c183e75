/* cmd.h - what the commands of the sprintsim program share: one file per
 * command (sim/cmd_<command>.c), the shared parts in sim/cmd_common.c,
 * the dispatch in sim/main.c.  Internal to the program: not part of
 * libsprintsim, not installed. */
#ifndef SPR_CMD_H
#define SPR_CMD_H

#include "spr_config.h"
#include "spr_device.h"

#include <signal.h>
#include <stdio.h>

/* Exit status after a bad command line (1: any other error, 130: an
 * interrupted run). */
#define CMD_EXIT_USAGE 2

/* "sprintsim", the first word of every message on stderr. */
extern const char *cmd_prog;

/* Set to the signal's number by cmd_on_signal, the handler run, sweep and
 * calibrate install for SIGINT, SIGTERM and SIGHUP; the library polls it
 * as its cancel flag. */
extern volatile sig_atomic_t cmd_interrupted;
void cmd_on_signal(int sig);

/* Print "sprintsim: WHAT: <spr_errmsg()>" (no "WHAT: " when what is NULL)
 * on stderr and return code. */
int cmd_fail(int code, const char *what);

/* Parse "N" as an int in [lo, hi].  Returns 0, or -1 after printing an
 * error naming opt (v NULL: the value is missing). */
int cmd_parse_int_arg(const char *opt, const char *v, long lo, long hi, long *out);

/* The options of run, sweep and calibrate: -h, -o FILE, and those of
 * `allow`; at most one positional CONFIG. */
enum { CMD_OPT_SEED = 1, CMD_OPT_THREADS = 2, CMD_OPT_TRACE = 4 };
typedef struct {
  const char *cmd;          /* "run": in messages */
  void (*usage)(FILE *);    /* --help */
  unsigned allow;           /* CMD_OPT_* */
  const char *config_what;  /* "at most": CONFIG optional; else a phrase
                               naming what CONFIG must hold */
  const char *config, *out, *seed, *trace; /* results (out: preset default) */
  long threads;
} cmd_opts;

/* Parse argv[1..argc-1] into *o.  Returns -1 to go on, or the exit status
 * (0 after --help, CMD_EXIT_USAGE after an error, printed). */
int cmd_parse_opts(int argc, char **argv, cmd_opts *o);

/* Seconds on the monotonic clock. */
double cmd_now_s(void);

/* run.device_model: read and validate the file, apply its keyed
 * parameters over *c and list them on `out`, with a warning for each
 * calibration condition that differs from *c's.  dev is initialised here
 * (spr_device_free it); applied/n_applied name the parameters set.
 * Returns 0 (also when no device model is configured) or an error code. */
/* The mean column conductance a device model was fitted on: its
 * informational parameter cal_mean_column_G, or for files written before
 * it existed (uniform levels) rows x (g_min + g_max) / 2 of its stored
 * configuration; 0 when neither is known. */
double cmd_device_column_G(const spr_device *dev);

/* Print a warning to out when the run's mean column conductance run_G
 * (siemens) is more than 2x away from the device model's cal_G. */
void cmd_warn_column_G(double cal_G, double run_G, FILE *out);

int cmd_load_device_model(spr_config *c, spr_device *dev, int *applied, int *n_applied,
                          FILE *out);

/* The commands.  argv[0] is the command's name; each returns the exit
 * status (0, 1, CMD_EXIT_USAGE or 130) after printing its messages. */
int cmd_run(int argc, char **argv);       /* cmd_run.c */
int cmd_sweep(int argc, char **argv);     /* cmd_sweep.c */
int cmd_report(int argc, char **argv);    /* cmd_report.c */
int cmd_crossbar(int argc, char **argv);  /* cmd_crossbar.c */
int cmd_config(int argc, char **argv);    /* cmd_config.c */
int cmd_calibrate(int argc, char **argv); /* cmd_calibrate.c */
int cmd_synth(int argc, char **argv);     /* cmd_synth.c */

/* Help texts, for `sprintsim help COMMAND` as for COMMAND --help. */
void cmd_usage_run(FILE *f);
void cmd_usage_sweep(FILE *f);
void cmd_usage_calibrate(FILE *f);
void cmd_usage_synth(FILE *f);

#endif
