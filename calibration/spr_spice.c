/* spr_spice.c - the SPICE driver (see spr_spice.h): every ngspice job runs
 * in a forked child; libngspice's callbacks stay inside this file.
 *
 * Child -> parent protocol over one pipe: a header {status, n_vecs,
 * msg_len} of three ints; then, for each of the n_vecs vectors, {length,
 * is_complex} (two ints), length doubles of real data (or real parts)
 * and, for a complex vector, length doubles of imaginary parts; then
 * msg_len bytes of message.  status 0 means success (n_vecs is then the
 * number asked for); otherwise n_vecs is 0 and the message says why.  A
 * child that dies before sending a complete reply is reported from its
 * wait status. */
#include "spr_spice.h"

#include "spr_circuits.h"
#include "spr_error.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdbool.h> /* sharedspice.h uses bool without including it */
#include <ngspice/sharedspice.h>

enum { MSG_MAX = 2048 };

/* ---------------------------------------------------------------- child */

/* What the callbacks collected in the child. */
typedef struct {
  char printed[MSG_MAX]; /* the failure lines (deduplicated), joined by "; " */
  size_t len;
  int n_errors;  /* number of failure lines */
  int follow;    /* keep this many more lines (after "Error on line N") */
  int exited;    /* the exit callback ran */
  int exit_status;
  char banner[256]; /* "ngspice-39 shared library; Creation Date: ..." */
} child_state;

static void append(child_state *s, const char *text) {
  if (s->len > 0 && strstr(s->printed, text)) return; /* said already */
  size_t n = strlen(text);
  if (s->len + n + 3 >= sizeof s->printed) {
    n = sizeof s->printed > s->len + 3 ? sizeof s->printed - s->len - 3 : 0;
  }
  if (s->len > 0 && n > 0) {
    memcpy(s->printed + s->len, "; ", 2);
    s->len += 2;
  }
  memcpy(s->printed + s->len, text, n);
  s->len += n;
  s->printed[s->len] = '\0';
}

/* Lines that mean the job failed.  Besides "Error"/"error", a failed
 * operating point prints only "Warning: singular matrix: check node X",
 * "doAnalyses: iteration limit reached" and "op simulation(s) aborted"
 * (ngspice 39); an unknown command prints only "X: no such command
 * available in ngspice". */
static int is_failure(const char *line) {
  static const char *const pat[] = {"Error",    "error",           "ERROR",
                                    "aborted",  "iteration limit", "singular",
                                    "imestep too small", "cannot recover",
                                    "no such command"};
  for (size_t k = 0; k < sizeof pat / sizeof pat[0]; k++)
    if (strstr(line, pat[k])) return 1;
  return 0;
}

/* ngspice prints everything through here, prefixed "stdout " or
 * "stderr ".  Keep the failure lines and, after "Error on line N", the
 * next two lines (the netlist line and the reason); skip the notes of
 * gmin and source stepping. */
static void keep_banner(child_state *s, const char *line) {
  /* the banner of ngSpice_Init: "** ngspice-39 shared library" and
   * "** Creation Date: ..." */
  if (strncmp(line, "** ", 3) != 0) return;
  line += 3;
  if (strncmp(line, "ngspice-", 8) != 0 && strncmp(line, "Creation Date", 13) != 0) return;
  size_t len = strlen(s->banner);
  snprintf(s->banner + len, sizeof s->banner - len, "%s%s", len ? "; " : "", line);
}

static int cb_print(char *text, int id, void *user) {
  child_state *s = user;
  if (text && strncmp(text, "stdout ", 7) == 0) keep_banner(s, text + 7);
  if (!text || strncmp(text, "stderr ", 7) != 0) return 0;
  const char *line = text + 7;
  if (!*line) return 0;
  if (s->follow > 0) {
    s->follow--;
    append(s, line);
    return 0;
  }
  if (!is_failure(line)) return 0;
  s->n_errors++;
  /* stepping notes lack newlines: "Trying gmin = ... Warning: singular ..." */
  const char *w = strstr(line, "Warning:");
  if (w && w != line && (strstr(line, "Trying gmin") || strstr(line, "Supplies reduced")))
    line = w;
  if (strstr(line, "Error on line")) s->follow = 2;
  append(s, line);
  return 0;
}

static int cb_status(char *text, int id, void *user) { return 0; }

/* ngspice calls this when it gives up ("cannot recover") or on quit.
 * Never NULL: a NULL exit callback crashes on quit. */
static int cb_exit(int status, NG_BOOL immediate, NG_BOOL quit, int id, void *user) {
  child_state *s = user;
  s->exited = 1;
  s->exit_status = status;
  return status;
}

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Send an error reply (or, with status 0 and a message, the version
 * string) and end the child.  _exit, not exit: the child must not flush
 * the parent's stdio buffers or run its atexit handlers. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4), noreturn))
#endif
static void child_reply(int fd, int status, const char *fmt, ...) {
  char msg[MSG_MAX + 512];
  msg[0] = '\0';
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
  }
  int hdr[3] = {status, 0, (int)strlen(msg)};
  int ok = write_all(fd, hdr, sizeof hdr) == 0;
  if (ok && hdr[2] > 0) ok = write_all(fd, msg, (size_t)hdr[2]) == 0;
  close(fd);
  _exit(ok ? 0 : 3);
}

/* One job: the netlist, the commands and the vectors to read back; or,
 * with version_only, just the banner of ngSpice_Init. */
typedef struct {
  const char *const *lines;
  int n_lines;
  const char *const *cmds;
  int n_cmds;
  const char *const *vecs;
  int n_vecs;
  int version_only;
} job;

/* "plot: v1 v2 ..." of the current plot, for the message about a missing
 * vector (at most about 400 characters). */
static void describe_plot(char *buf, size_t n) {
  char *cur = ngSpice_CurPlot();
  snprintf(buf, n, "current plot '%s' has", cur ? cur : "?");
  char **v = cur ? ngSpice_AllVecs(cur) : NULL;
  size_t len = strlen(buf);
  for (int k = 0; v && v[k] && len + 64 < n && len < 400; k++) {
    snprintf(buf + len, n - len, " %s", v[k]);
    len = strlen(buf);
  }
  if (v && v[0] && len >= 400) snprintf(buf + len, n - len, " ...");
  if (!v || !v[0]) snprintf(buf + len, n - len, " no vectors");
}

/* The child's first steps: die with the parent, default signal handling.
 * The parent's handlers only set a flag, which means nothing here: with
 * them a SIGTERM or the terminal's SIGINT would not stop the job.  A
 * parent that dies, even of SIGKILL, takes the child with it
 * (PR_SET_PDEATHSIG; checked against a parent that died before the call). */
static void child_setup(pid_t parent) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGXFSZ, SIGALRM,
                             SIGUSR1, SIGUSR2, SIGCHLD};
  for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) signal(sigs[k], SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(7);
}

static void child_run(int fd, const job *jb) {
  /* ngspice may write to stdout directly: keep the parent's output clean. */
  int devnull = open("/dev/null", O_WRONLY);
  if (devnull >= 0) {
    dup2(devnull, STDOUT_FILENO);
    close(devnull);
  }
  /* One thread, passive waits: BSIM4 took 50 s instead of 0.26 s with
   * OpenMP defaults (NGSPICE.md). */
  setenv("OMP_NUM_THREADS", "1", 1);
  setenv("OMP_WAIT_POLICY", "passive", 1);

  /* No spinit: libngspice0 ships none, and one from the ngspice package
   * (which loads code models) would change the jobs.  A folder that
   * cannot hold a file: no temporary folder to remove.  ngspice's note
   * about the missing file goes to cb_print, which keeps failure lines
   * only.  A SPICE_SCRIPTS of the user's is kept. */
  setenv("SPICE_SCRIPTS", "/dev/null", 0);

  child_state st;
  memset(&st, 0, sizeof st);
  int rc = ngSpice_Init(cb_print, cb_status, cb_exit, NULL, NULL, NULL, &st);
  /* No transient fallback for the operating point ("optran" is on by
   * default since ngspice 37): it "solves" singular circuits such as a
   * loop of inconsistent voltage sources or a node reached only through
   * a capacitor, and returns meaningless values as a success.  Keep the
   * first iteration, gmin stepping and source stepping. */
  if (rc == 0) rc = ngSpice_Command("optran 1 1 1 0 0 0");
  if (rc != 0 || st.exited || st.n_errors)
    child_reply(fd, SPR_ESPICE, "ngSpice_Init failed (returned %d): %s", rc, st.printed);
  if (jb->version_only) {
    if (!st.banner[0])
      child_reply(fd, SPR_ESPICE, "ngspice printed no version banner at initialisation");
    child_reply(fd, 0, "%s", st.banner);
  }
  st.len = 0; /* forget notes printed so far */
  st.printed[0] = '\0';

  /* NULL-terminated copy, with ".end" added when missing. */
  const char *const *lines = jb->lines;
  const int n_lines = jb->n_lines;
  const char *last = lines[n_lines - 1];
  int has_end = last[0] == '.' && (last[1] | 32) == 'e' && (last[2] | 32) == 'n' &&
                (last[3] | 32) == 'd' && (last[4] == '\0' || last[4] == ' ');
  char **circ = calloc((size_t)n_lines + 2, sizeof *circ);
  if (!circ) child_reply(fd, SPR_ENOMEM, "out of memory copying the netlist");
  for (int i = 0; i < n_lines; i++) {
    circ[i] = strdup(lines[i]);
    if (!circ[i]) child_reply(fd, SPR_ENOMEM, "out of memory copying the netlist");
  }
  if (!has_end) circ[n_lines] = strdup(".end");

  rc = ngSpice_Circ(circ);
  if (rc != 0 || st.exited || st.n_errors)
    child_reply(fd, SPR_ESPICE,
                "ngspice rejected the netlist (title '%s', %d lines; ngSpice_Circ returned %d%s): %s",
                lines[0], n_lines, rc, st.exited ? ", library gave up" : "",
                st.n_errors ? st.printed : "no error text printed");

  for (int c = 0; c < jb->n_cmds; c++) {
    char cmd[SPR_SPICE_CMD_MAX];
    snprintf(cmd, sizeof cmd, "%s", jb->cmds[c]);
    rc = ngSpice_Command(cmd);
    if (rc != 0 || st.exited || st.n_errors)
      child_reply(fd, SPR_ESPICE, "ngspice '%s' failed (title '%s'; returned %d%s): %s",
                  jb->cmds[c], lines[0], rc, st.exited ? ", library gave up" : "",
                  st.n_errors ? st.printed : "no error text printed");
  }

  /* First pass: every vector exists and is finite, so that a failure can
   * still be reported before any data is sent.  vi points to one struct
   * shared by all calls: use it before the next call. */
  for (int k = 0; k < jb->n_vecs; k++) {
    char name[SPR_SPICE_CMD_MAX];
    snprintf(name, sizeof name, "%s", jb->vecs[k]);
    pvector_info vi = ngGet_Vec_Info(name);
    if (!vi || vi->v_length < 1 || (!vi->v_realdata && !vi->v_compdata)) {
      char plot[600];
      describe_plot(plot, sizeof plot);
      child_reply(fd, SPR_ESPICE, "ngspice has no vector '%s' after the commands (title '%s'; %s)",
                  jb->vecs[k], lines[0], plot);
    }
    for (int i = 0; i < vi->v_length; i++) {
      double re = vi->v_realdata ? vi->v_realdata[i] : vi->v_compdata[i].cx_real;
      double im = vi->v_realdata ? 0 : vi->v_compdata[i].cx_imag;
      if (!isfinite(re) || !isfinite(im))
        child_reply(fd, SPR_ESPICE, "ngspice vector '%s' is not finite at index %d (%g%+gi)",
                    jb->vecs[k], i, re, im);
    }
  }
  /* Second pass: send them. */
  int hdr[3] = {0, jb->n_vecs, 0};
  if (write_all(fd, hdr, sizeof hdr) != 0) _exit(3);
  for (int k = 0; k < jb->n_vecs; k++) {
    char name[SPR_SPICE_CMD_MAX];
    snprintf(name, sizeof name, "%s", jb->vecs[k]);
    pvector_info vi = ngGet_Vec_Info(name);
    if (!vi) _exit(5); /* found a moment ago */
    int n = vi->v_length;
    int vh[2] = {n, vi->v_realdata ? 0 : 1};
    if (write_all(fd, vh, sizeof vh) != 0) _exit(3);
    if (vi->v_realdata) {
      if (write_all(fd, vi->v_realdata, (size_t)n * sizeof(double)) != 0) _exit(3);
    } else {
      double *buf = malloc((size_t)n * sizeof(double));
      if (!buf) _exit(6);
      for (int i = 0; i < n; i++) buf[i] = vi->v_compdata[i].cx_real;
      if (write_all(fd, buf, (size_t)n * sizeof(double)) != 0) _exit(3);
      for (int i = 0; i < n; i++) buf[i] = vi->v_compdata[i].cx_imag;
      if (write_all(fd, buf, (size_t)n * sizeof(double)) != 0) _exit(3);
      free(buf);
    }
  }
  /* Hygiene (the child exits anyway): drop results, circuit and
   * command memory. */
  ngSpice_Command("destroy all");
  ngSpice_Command("remcirc");
  ngSpice_Command(NULL);
  close(fd);
  _exit(0);
}

/* --------------------------------------------------------------- parent */

/* spr_spice_set_cancel's flag (NULL: none). */
static volatile sig_atomic_t *cancel_flag;

volatile sig_atomic_t *spr_spice_set_cancel(volatile sig_atomic_t *flag) {
  volatile sig_atomic_t *old = cancel_flag;
  cancel_flag = flag;
  return old;
}

static int canceled(void) { return cancel_flag && *cancel_flag; }

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Read up to n bytes before the deadline.  Returns the number read (less
 * than n at end of file), -1 on an error, -2 on timeout, -4 once the
 * cancel flag is set (looked at every 0.1 s, and at once when a signal
 * interrupts the wait). */
static ssize_t read_deadline(int fd, void *buf, size_t n, double deadline) {
  char *p = buf;
  size_t got = 0;
  while (got < n) {
    if (canceled()) return -4;
    double left = deadline - now_s();
    if (left <= 0) return -2;
    struct pollfd pfd = {fd, POLLIN, 0};
    int ms = left > 0.1 ? 100 : (int)ceil(left * 1e3);
    int pr = poll(&pfd, 1, ms);
    if (pr < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (pr == 0) continue; /* re-check the deadline */
    ssize_t r = read(fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (ssize_t)got;
}

static int reap(pid_t pid, int *wstatus) {
  for (;;) {
    pid_t w = waitpid(pid, wstatus, 0);
    if (w == pid) return 0;
    if (w < 0 && errno == EINTR) continue;
    return -1;
  }
}

void spr_spice_vecs_free(spr_spice_vec *vecs, int n_vecs) {
  if (!vecs) return;
  for (int k = 0; k < n_vecs; k++) {
    free(vecs[k].re);
    free(vecs[k].im);
    vecs[k].re = vecs[k].im = NULL;
    vecs[k].length = 0;
    vecs[k].is_complex = 0;
  }
}

/* Read the vectors of a successful reply into vecs (allocating them).
 * Returns 0, -2 on timeout, -4 when canceled, -1 on a short or
 * inconsistent reply, -3 when out of memory. */
static int read_vecs(int fd, spr_spice_vec *vecs, int n_vecs, double deadline) {
  for (int k = 0; k < n_vecs; k++) {
    int vh[2];
    ssize_t r = read_deadline(fd, vh, sizeof vh, deadline);
    if (r == -2 || r == -4) return (int)r;
    if (r != (ssize_t)sizeof vh || vh[0] < 1 || vh[0] > SPR_SPICE_VEC_MAX ||
        (vh[1] != 0 && vh[1] != 1))
      return -1;
    size_t nb = (size_t)vh[0] * sizeof(double);
    vecs[k].length = vh[0];
    vecs[k].is_complex = vh[1];
    vecs[k].re = malloc(nb);
    vecs[k].im = vh[1] ? malloc(nb) : NULL;
    if (!vecs[k].re || (vh[1] && !vecs[k].im)) return -3;
    r = read_deadline(fd, vecs[k].re, nb, deadline);
    if (r == -2 || r == -4) return (int)r;
    if (r != (ssize_t)nb) return -1;
    if (vh[1]) {
      r = read_deadline(fd, vecs[k].im, nb, deadline);
      if (r == -2 || r == -4) return (int)r;
      if (r != (ssize_t)nb) return -1;
    }
  }
  return 0;
}

/* Run one job in a child and collect its reply: vectors into vecs, or
 * (version_only) the message into msg_out. */
static int run_job(const char *fn, const job *jb, spr_spice_vec *vecs, char *msg_out,
                   size_t msg_n, double timeout_s) {
  const char *title = jb->version_only ? "(version query)" : jb->lines[0];
  if (canceled())
    return spr_error(SPR_ECANCELED, "ngspice job (title '%s') not started: interrupted", title);
  const double deadline = now_s() + timeout_s;
  int fds[2];
  if (pipe(fds) != 0) return spr_error(SPR_EIO, "%s: pipe: %s", fn, strerror(errno));
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  /* Flush so the child's copy of stdio buffers cannot be written twice
   * (the child also ends with _exit). */
  fflush(stdout);
  fflush(stderr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(fds[0]);
    close(fds[1]);
    return spr_error(SPR_EIO, "%s: fork: %s", fn, strerror(e));
  }
  if (pid == 0) {
    close(fds[0]);
    child_setup(parent);
    child_run(fds[1], jb);
    _exit(4); /* not reached */
  }
  close(fds[1]);

  int hdr[3];
  char msg[MSG_MAX + 512];
  msg[0] = '\0';
  int timed_out = 0, complete = 0, nomem = 0, stopped = 0;
  ssize_t r = read_deadline(fds[0], hdr, sizeof hdr, deadline);
  if (r == -2) timed_out = 1;
  if (r == -4) stopped = 1;
  int n_expect = jb->version_only ? 0 : jb->n_vecs;
  /* a failure carries no vectors; a success carries exactly those asked for */
  if (r == (ssize_t)sizeof hdr && (hdr[0] != 0 ? hdr[1] == 0 : hdr[1] == n_expect) &&
      hdr[2] >= 0 && (size_t)hdr[2] < sizeof msg) {
    int rv = hdr[1] ? read_vecs(fds[0], vecs, hdr[1], deadline) : 0;
    if (rv == -2) timed_out = 1;
    if (rv == -3) nomem = 1;
    if (rv == -4) stopped = 1;
    ssize_t r2 = rv == 0 && hdr[2] ? read_deadline(fds[0], msg, (size_t)hdr[2], deadline) : 0;
    if (r2 == -2) timed_out = 1;
    if (r2 == -4) stopped = 1;
    if (rv == 0 && r2 == (ssize_t)hdr[2]) {
      msg[hdr[2]] = '\0';
      complete = 1;
    }
  }
  close(fds[0]);
  if (!complete) kill(pid, SIGKILL); /* harmless when it already ended */
  int ws = 0;
  int reaped = reap(pid, &ws) == 0;
  if (!complete && !jb->version_only) spr_spice_vecs_free(vecs, jb->n_vecs);

  if (stopped || (!complete && canceled())) /* also a child killed by the terminal's SIGINT */
    return spr_error(SPR_ECANCELED, "ngspice job (title '%s') interrupted; the child was killed",
                     title);
  if (timed_out)
    return spr_error(SPR_ESPICE,
                     "ngspice job (title '%s') timed out after %g s; the child was killed", title,
                     timeout_s);
  if (nomem) return spr_error(SPR_ENOMEM, "%s: out of memory reading the vectors", fn);
  if (!complete) {
    if (reaped && WIFSIGNALED(ws) && WTERMSIG(ws) != SIGKILL)
      return spr_error(SPR_ESPICE, "ngspice child (title '%s') died of signal %d (%s)", title,
                       WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    return spr_error(SPR_ESPICE,
                     "ngspice child (title '%s') ended without a complete reply (exit status %d)",
                     title, reaped && WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
  }
  if (hdr[0] != 0) return spr_error(hdr[0] < 0 ? hdr[0] : SPR_ESPICE, "%s", msg);
  if (jb->version_only) snprintf(msg_out, msg_n, "%s", msg);
  return 0;
}

/* A command that would end or confuse the child: quit/exit (the library
 * then needs unloading), background runs (a second bg_* crashed), shell
 * escapes, and anything spanning lines. */
static const char *bad_command(const char *c) {
  static const char *const banned[] = {"quit", "exit", "bg_", "shell", "source", "remcirc",
                                       "reset"};
  while (*c == ' ' || *c == '\t') c++;
  if (!*c) return "is empty";
  if (strchr(c, '\n') || strchr(c, '\r')) return "spans lines";
  for (size_t k = 0; k < sizeof banned / sizeof banned[0]; k++)
    if (strncmp(c, banned[k], strlen(banned[k])) == 0) return "is not allowed in a job";
  return NULL;
}

int spr_spice_run(const char *const *netlist_lines, int n_lines, const char *const *commands,
                  int n_commands, const char *const *vec_names, int n_vecs,
                  spr_spice_vec *vecs, double timeout_s) {
  static const char fn[] = "spr_spice_run";
  if (vecs && n_vecs > 0) memset(vecs, 0, (size_t)n_vecs * sizeof *vecs);
  if (!netlist_lines || n_lines < 1)
    return spr_error(SPR_EINVAL, "%s: netlist needs at least a title line (n_lines = %d)", fn,
                     n_lines);
  if (n_commands < 0 || n_commands > 1000 || (n_commands > 0 && !commands))
    return spr_error(SPR_EINVAL, "%s: bad command list (n_commands = %d)", fn, n_commands);
  if (n_vecs < 0 || n_vecs > 100000 || (n_vecs > 0 && (!vec_names || !vecs)))
    return spr_error(SPR_EINVAL, "%s: bad vector list (n_vecs = %d)", fn, n_vecs);
  if (!(timeout_s > 0) || !isfinite(timeout_s))
    return spr_error(SPR_EINVAL, "%s: timeout_s = %g must be finite and > 0", fn, timeout_s);
  for (int i = 0; i < n_lines; i++)
    if (!netlist_lines[i])
      return spr_error(SPR_EINVAL, "%s: netlist line %d is NULL", fn, i + 1);
  for (int c = 0; c < n_commands; c++) {
    if (!commands[c]) return spr_error(SPR_EINVAL, "%s: command %d is NULL", fn, c + 1);
    if (strlen(commands[c]) >= SPR_SPICE_CMD_MAX)
      return spr_error(SPR_EINVAL, "%s: command %d ('%.40s...') is longer than %d characters",
                       fn, c + 1, commands[c], SPR_SPICE_CMD_MAX - 1);
    const char *why = bad_command(commands[c]);
    if (why) return spr_error(SPR_EINVAL, "%s: command %d ('%s') %s", fn, c + 1, commands[c], why);
  }
  for (int k = 0; k < n_vecs; k++)
    if (!vec_names[k] || !*vec_names[k] || strlen(vec_names[k]) >= SPR_SPICE_CMD_MAX)
      return spr_error(SPR_EINVAL, "%s: vector name %d is NULL, empty or too long", fn, k + 1);
  job jb = {netlist_lines, n_lines, commands, n_commands, vec_names, n_vecs, 0};
  return run_job(fn, &jb, vecs, NULL, 0, timeout_s);
}

int spr_spice_op_currents(const char *const *netlist_lines, int n_lines,
                          const char *const *vec_names, int n_vecs, double *values,
                          double timeout_s) {
  if (n_vecs < 0 || n_vecs > 100000 || (n_vecs > 0 && (!vec_names || !values)))
    return spr_error(SPR_EINVAL, "spr_spice_op_currents: bad vector list (n_vecs = %d)", n_vecs);
  spr_spice_vec *v = n_vecs ? calloc((size_t)n_vecs, sizeof *v) : NULL;
  if (n_vecs && !v) return spr_error(SPR_ENOMEM, "spr_spice_op_currents: %d vectors", n_vecs);
  const char *op[] = {"op"};
  int rc = spr_spice_run(netlist_lines, n_lines, op, 1, vec_names, n_vecs, v, timeout_s);
  for (int k = 0; k < n_vecs && rc == 0; k++) values[k] = v[k].re[0];
  spr_spice_vecs_free(v, n_vecs);
  free(v);
  return rc;
}

int spr_spice_version(char *buf, size_t n, double timeout_s) {
  if (!buf || n < 2)
    return spr_error(SPR_EINVAL, "spr_spice_version: buffer NULL or too small (n = %zu)", n);
  buf[0] = '\0';
  if (!(timeout_s > 0) || !isfinite(timeout_s))
    return spr_error(SPR_EINVAL, "spr_spice_version: timeout_s = %g must be finite and > 0",
                     timeout_s);
  job jb = {NULL, 0, NULL, 0, NULL, 0, 1};
  return run_job("spr_spice_version", &jb, NULL, buf, n, timeout_s);
}

/* --------------------------------------------- crossbar (linear, legacy) */

int spr_spice_crossbar_netlist(const double *G, int R, int C, double r_wl, double r_bl,
                               const double *V, char ***lines, int *n_lines) {
  spr_circ_xbar x;
  spr_circ_xbar_init(&x);
  x.rows = R;
  x.cols = C;
  x.G = G;
  x.V = V;
  x.r_wl_ohm = r_wl;
  x.r_bl_ohm = r_bl;
  return spr_circ_xbar_netlist(&x, NULL, lines, n_lines);
}

void spr_spice_netlist_free(char **lines, int n_lines) {
  if (!lines) return;
  for (int i = 0; i < n_lines; i++) free(lines[i]);
  free(lines);
}

int spr_spice_crossbar_currents(const double *G, int R, int C, double r_wl, double r_bl,
                                const double *V, double *I, double timeout_s) {
  spr_circ_xbar x;
  spr_circ_xbar_init(&x);
  x.rows = R;
  x.cols = C;
  x.G = G;
  x.V = V;
  x.r_wl_ohm = r_wl;
  x.r_bl_ohm = r_bl;
  return spr_circ_xbar_currents(&x, I, NULL, timeout_s);
}
