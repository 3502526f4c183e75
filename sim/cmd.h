/* cmd.h - what the commands of the sprintsim program share: one file per
 * command (sim/cmd_<command>.c), the shared parts in sim/cmd_common.c,
 * the dispatch in sim/main.c.  Internal to the program: not part of
 * libsprintsim, not installed. */
#ifndef SPR_CMD_H
#define SPR_CMD_H

#include "spr_config.h"
#include "spr_device.h"
#include "spr_progress.h"

#include <signal.h>
#include <stdio.h>

/* Exit status after a bad command line (1: any other error, 130: an
 * interrupted run). */
#define CMD_EXIT_USAGE 2

/* "sprintsim", the first word of every message on stderr. */
extern const char *cmd_prog;

/* Set to the signal's number by the handlers of cmd_signals; the library
 * polls it as its cancel flag. */
extern volatile sig_atomic_t cmd_interrupted;

/* The signal handling of every command that computes or writes files (run,
 * sweep, calibrate, synth, crossbar), installed once before the work:
 * - SIGINT, SIGTERM, SIGHUP set cmd_interrupted; the command stops at its
 *   next check (between heads, points, SPICE jobs; a SPICE child is killed
 *   at once), deletes its temporaries and exits 130.  The handler resets
 *   itself, so a second signal kills at once (leaving at most a
 *   ".tmp.XXXXXX" file, which never looks finished).
 * - SIGXFSZ (a write past the file-size limit, ulimit -f) sets
 *   cmd_interrupted too and stays handled: the write fails with EFBIG, the
 *   writer reports it, the command stops, deletes its temporaries and
 *   exits 1 naming the limit (cmd_stop_status).
 * - SIGPIPE is ignored: a closed output is a write error. */
void cmd_signals(void);

/* After cmd_interrupted was set: the exit status (130 for SIGINT, SIGTERM
 * and SIGHUP; 1 for SIGXFSZ) and, in *why, what stopped the command
 * ("interrupted" or "the file size limit (ulimit -f) was reached"). */
int cmd_stop_status(const char **why);

/* Print "sprintsim: WHAT: <spr_errmsg()>" (no "WHAT: " when what is NULL)
 * on stderr and return code. */
int cmd_fail(int code, const char *what);

/* Parse "N" as an int in [lo, hi].  Returns 0, or -1 after printing an
 * error naming opt (v NULL: the value is missing). */
int cmd_parse_int_arg(const char *opt, const char *v, long lo, long hi, long *out);

/* Print "sprintsim: WHAT: <spr_errmsg()>" like cmd_fail and return the
 * exit status of error rc: CMD_EXIT_USAGE for SPR_EUSAGE (a bad --set),
 * else 1. */
int cmd_fail_rc(int rc, const char *what);

/* The options of the commands, parsed in one place: -h, and those of
 * `allow`; at most one positional CONFIG. */
enum {
  CMD_OPT_SEED = 1,    /* --seed N */
  CMD_OPT_THREADS = 2, /* --threads N */
  CMD_OPT_TRACE = 4,   /* --trace LEVEL */
  CMD_OPT_OUT = 8,     /* -o, --output FILE */
  CMD_OPT_SET = 16,    /* --set section.key=value (repeatable); CONFIG "-" reads standard input */
  CMD_OPT_FORMAT = 32, /* --format text|csv|json */
  CMD_OPT_BATCH = 64,  /* --batch B, --pad P */
  CMD_OPT_PROGRESS = 128, /* --progress, --quiet (cmd_progress_wanted) */
  CMD_OPT_RESUME = 256 /* --resume (sweep) */
};
enum { CMD_PROGRESS_AUTO = 0, CMD_PROGRESS_ON, CMD_PROGRESS_OFF };
#define CMD_MAX_SET 256
typedef struct {
  const char *cmd;          /* "run": in messages */
  void (*usage)(FILE *);    /* --help */
  unsigned allow;           /* CMD_OPT_* */
  const char *config_what;  /* "at most": CONFIG optional; "none": no CONFIG;
                               else a phrase naming what CONFIG must hold */
  const char *config, *out, *seed, *trace; /* results (out: preset default) */
  long threads;
  int format;               /* SPR_TABLE_TEXT (default), _CSV, _JSON */
  long batch, pad;          /* --batch (0: not given), --pad */
  int progress;             /* CMD_PROGRESS_AUTO (default), _ON (--progress), _OFF (--quiet) */
  int resume;               /* --resume given */
  int n_set;                /* the --set values, in order */
  const char *set[CMD_MAX_SET];
} cmd_opts;

/* Parse argv[1..argc-1] into *o.  Returns -1 to go on, or the exit status
 * (0 after --help, CMD_EXIT_USAGE after an error, printed). */
int cmd_parse_opts(int argc, char **argv, cmd_opts *o);

/* The configuration source of the options: CONFIG, standard input for
 * "-" (read here, once; at most 16 MiB, no NUL byte), or the built-in
 * default (an empty text), with the --set overrides.  Returns 0, or 1
 * after printing why standard input could not be read. */
int cmd_config_src(const cmd_opts *o, spr_config_src *src);

/* Refuse an output that names an input: `out` (-o, or the file written
 * beside it, `opt` names it in the message) is the same file (device and
 * inode: links and other spellings included) as the configuration file
 * o->config or as a file named by a string key of *c (workload.qkv_file,
 * run.device_model, workload.model, ...; c may be NULL).  Returns 0, or
 * CMD_EXIT_USAGE after printing both names. */
int cmd_check_inputs(const cmd_opts *o, const char *opt, const char *out, const spr_config *c);

/* The same for one named input (crossbar's --g and --v). */
int cmd_check_input(const char *cmd, const char *opt, const char *out, const char *what,
                    const char *in);

/* Free what the options read (standard input); main calls it. */
void cmd_cleanup(void);

/* Refuse, before any work, an output that cannot be written: a folder, a
 * name ending in '/', a folder that is missing or not writable.  Returns
 * 0 or SPR_EIO (the message names out and the folder). */
int cmd_check_output(const char *out);

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

/* --- progress of long steps (cmd_progress.c) ---------------------------
 * A status line on stderr, never on stdout, in traces or CSV: on a
 * terminal redrawn in place (at most every 0.2 s); to a file or a pipe
 * (--progress) one line when a stage begins or ends and otherwise, while
 * it moves, at most every 10 s at first and every tenth of the time
 * elapsed later (at most every 10 minutes). */

/* Progress wanted: --progress, or stderr a terminal without --quiet. */
int cmd_progress_wanted(const cmd_opts *o);
int cmd_progress_wanted_mode(int mode); /* of a CMD_PROGRESS_* */

/* Option a when it is --progress or --quiet: sets *mode and returns 1, or
 * -1 after printing that they contradict; 0 for another option.  (For the
 * parsers of their own: crossbar's.) */
int cmd_progress_opt(const char *cmd, const char *a, int *mode);

/* The status text of a command: render the current status into buf[n]
 * and set *major to a number that changes when a new stage begins (a
 * line to a file is then written at once).  Returns 0, or -1 for no
 * status now.  Called from the progress thread. */
typedef int (*cmd_progress_fn)(void *user, char *buf, size_t n, int *major);

typedef struct cmd_progress cmd_progress;

/* Start drawing fn's status (a thread) when enabled; NULL when not (or
 * when the thread cannot start: progress is optional).  Returns once the
 * thread runs; a fork (of any thread) waits until the thread is between
 * two ticks, so a child never inherits a lock the tick held (under
 * AddressSanitizer too).  The functions below accept NULL. */
cmd_progress *cmd_progress_start(int enabled, cmd_progress_fn fn, void *user);

/* A permanent line on stderr (fmt ends with its newline), under the
 * status line; with p NULL, plain stderr. */
void cmd_progress_printf(cmd_progress *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Erase the status line and keep it away until cmd_progress_release:
 * around output to stdout, which may share the terminal.  No fork in
 * between (a fork waits for the thread to finish its tick, which may be
 * waiting for this hold). */
void cmd_progress_hold(cmd_progress *p);
void cmd_progress_release(cmd_progress *p);

/* The help lines of --progress and --quiet. */
void cmd_usage_progress(FILE *f);

/* Stop the thread and erase the terminal's status line (a file gets the
 * last status if it changed). */
void cmd_progress_stop(cmd_progress *p);

/* "12 s elapsed, ETA 1m30s" for elapsed_s seconds at fraction done (no
 * ETA for a fraction outside (0, 1)). */
void cmd_progress_times(char *buf, size_t n, double elapsed_s, double fraction);

/* A render function over one spr_progress: "WHAT: [PREFIX, ]3/16 arrays
 * (19%), 4 s elapsed, ETA 17 s"; elapsed and ETA count from the stage's
 * start; a stage is a major change.  user is a cmd_progress_counter_src. */
typedef struct {
  const char *what;          /* "run", "calibrate" */
  spr_progress *prog;        /* what the library counts */
  void (*prefix)(void *user, char *buf, size_t n); /* NULL, or text before the count */
  void *user;                /* prefix's argument */
  int stage;                 /* kept by cmd_progress_counter */
  double stage_t0;
} cmd_progress_counter_src;
int cmd_progress_counter(void *user, char *buf, size_t n, int *major);

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
void cmd_usage_report(FILE *f);
void cmd_usage_crossbar(FILE *f);
void cmd_usage_config(FILE *f);
void cmd_usage_calibrate(FILE *f);
void cmd_usage_synth(FILE *f);

/* The lines on --set and a configuration on standard input that every
 * help text of a command taking a configuration shows; `more` (NULL:
 * none), lines about the command's own sections, goes after --set's. */
void cmd_usage_set(FILE *f, const char *more);

#endif
