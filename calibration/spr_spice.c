/* spr_spice.c - the SPICE driver (see spr_spice.h): every ngspice job runs
 * in a forked child; libngspice's callbacks stay inside this file.
 *
 * Child -> parent protocol over one pipe: a header {status, n_values,
 * msg_len} of three ints, then n_values doubles, then msg_len bytes of
 * message.  status 0 means success.  A child that dies before sending a
 * complete reply is reported from its wait status. */
#include "spr_spice.h"

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
 * (ngspice 39). */
static int is_failure(const char *line) {
  static const char *const pat[] = {"Error", "error", "ERROR", "aborted", "iteration limit",
                                    "singular", "imestep too small", "cannot recover"};
  for (size_t k = 0; k < sizeof pat / sizeof pat[0]; k++)
    if (strstr(line, pat[k])) return 1;
  return 0;
}

/* ngspice prints everything through here, prefixed "stdout " or
 * "stderr ".  Keep the failure lines and, after "Error on line N", the
 * next two lines (the netlist line and the reason); skip the notes of
 * gmin and source stepping. */
static int cb_print(char *text, int id, void *user) {
  child_state *s = user;
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

/* Send a reply and end the child.  _exit, not exit: the child must not
 * flush the parent's stdio buffers or run its atexit handlers. */
static void child_reply(int fd, int status, const double *v, int n, const char *fmt, ...) {
  char msg[MSG_MAX + 512];
  msg[0] = '\0';
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
  }
  int hdr[3] = {status, status == 0 ? n : 0, (int)strlen(msg)};
  int ok = write_all(fd, hdr, sizeof hdr) == 0;
  if (ok && hdr[1] > 0) ok = write_all(fd, v, (size_t)n * sizeof *v) == 0;
  if (ok && hdr[2] > 0) ok = write_all(fd, msg, (size_t)hdr[2]) == 0;
  close(fd);
  _exit(ok ? 0 : 3);
}

/* Make a folder holding an empty spinit so that ngspice does not print
 * its "can't find init file" note (libngspice0 ships no spinit).  Best
 * effort: on failure the note is merely printed. */
static int make_scripts_dir(char *dir, size_t n) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, n, "%s/spr-spice-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) return -1;
  char path[4200];
  snprintf(path, sizeof path, "%s/spinit", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    rmdir(dir);
    return -1;
  }
  close(fd);
  setenv("SPICE_SCRIPTS", dir, 1);
  return 0;
}

static void remove_scripts_dir(const char *dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/spinit", dir);
  unlink(path);
  rmdir(dir);
}

static void child_run(int fd, const char *const *lines, int n_lines, const char *const *vecs,
                      int n_vecs, double *values) {
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

  char dir[4096];
  int have_dir = 0;
  if (!getenv("SPICE_SCRIPTS")) have_dir = make_scripts_dir(dir, sizeof dir) == 0;

  child_state st;
  memset(&st, 0, sizeof st);
  int rc = ngSpice_Init(cb_print, cb_status, cb_exit, NULL, NULL, NULL, &st);
  if (have_dir) remove_scripts_dir(dir);
  /* No transient fallback for the operating point ("optran" is on by
   * default since ngspice 37): it "solves" singular circuits such as a
   * loop of inconsistent voltage sources or a node reached only through
   * a capacitor, and returns meaningless values as a success.  Keep the
   * first iteration, gmin stepping and source stepping. */
  if (rc == 0) rc = ngSpice_Command("optran 1 1 1 0 0 0");
  if (rc != 0 || st.exited || st.n_errors)
    child_reply(fd, SPR_ESPICE, NULL, 0, "ngSpice_Init failed (returned %d): %s", rc, st.printed);
  st.len = 0; /* forget notes printed so far */
  st.printed[0] = '\0';

  /* NULL-terminated copy, with ".end" added when missing. */
  const char *last = lines[n_lines - 1];
  int has_end = last[0] == '.' && (last[1] | 32) == 'e' && (last[2] | 32) == 'n' &&
                (last[3] | 32) == 'd' && (last[4] == '\0' || last[4] == ' ');
  char **circ = calloc((size_t)n_lines + 2, sizeof *circ);
  if (!circ) child_reply(fd, SPR_ENOMEM, NULL, 0, "out of memory copying the netlist");
  for (int i = 0; i < n_lines; i++) {
    circ[i] = strdup(lines[i]);
    if (!circ[i]) child_reply(fd, SPR_ENOMEM, NULL, 0, "out of memory copying the netlist");
  }
  if (!has_end) circ[n_lines] = strdup(".end");

  rc = ngSpice_Circ(circ);
  if (rc != 0 || st.exited || st.n_errors)
    child_reply(fd, SPR_ESPICE, NULL, 0,
                "ngspice rejected the netlist (title '%s', %d lines; ngSpice_Circ returned %d%s): %s",
                lines[0], n_lines, rc, st.exited ? ", library gave up" : "",
                st.n_errors ? st.printed : "no error text printed");

  rc = ngSpice_Command("op");
  if (rc != 0 || st.exited || st.n_errors)
    child_reply(fd, SPR_ESPICE, NULL, 0,
                "ngspice 'op' failed (title '%s'; returned %d%s): %s", lines[0], rc,
                st.exited ? ", library gave up" : "",
                st.n_errors ? st.printed : "no error text printed");

  for (int k = 0; k < n_vecs; k++) {
    char name[256];
    snprintf(name, sizeof name, "%s", vecs[k]);
    pvector_info vi = ngGet_Vec_Info(name);
    /* copy at once: vi points to one struct shared by all calls */
    if (!vi || vi->v_length < 1 || (!vi->v_realdata && !vi->v_compdata))
      child_reply(fd, SPR_ESPICE, NULL, 0,
                  "ngspice has no vector '%s' after 'op' (title '%s')%s%s", vecs[k], lines[0],
                  st.len ? ": " : "", st.printed);
    values[k] = vi->v_realdata ? vi->v_realdata[0] : vi->v_compdata[0].cx_real;
    if (!isfinite(values[k]))
      child_reply(fd, SPR_ESPICE, NULL, 0, "ngspice vector '%s' is not finite (%g)", vecs[k],
                  values[k]);
  }
  /* Hygiene (the child exits anyway): drop results, circuit and
   * command memory. */
  ngSpice_Command("destroy all");
  ngSpice_Command("remcirc");
  ngSpice_Command(NULL);
  child_reply(fd, 0, values, n_vecs, NULL);
}

/* --------------------------------------------------------------- parent */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Read up to n bytes before the deadline.  Returns the number read (less
 * than n at end of file), -1 on an error, -2 on timeout. */
static ssize_t read_deadline(int fd, void *buf, size_t n, double deadline) {
  char *p = buf;
  size_t got = 0;
  while (got < n) {
    double left = deadline - now_s();
    if (left <= 0) return -2;
    struct pollfd pfd = {fd, POLLIN, 0};
    int ms = left > 1e6 ? 1000000000 : (int)ceil(left * 1e3);
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

int spr_spice_op_currents(const char *const *netlist_lines, int n_lines,
                          const char *const *vec_names, int n_vecs, double *values,
                          double timeout_s) {
  if (!netlist_lines || n_lines < 1)
    return spr_error(SPR_EINVAL, "spr_spice_op_currents: netlist needs at least a title line "
                                 "(n_lines = %d)", n_lines);
  if (n_vecs < 0 || (n_vecs > 0 && (!vec_names || !values)))
    return spr_error(SPR_EINVAL, "spr_spice_op_currents: bad vector list (n_vecs = %d)", n_vecs);
  if (!(timeout_s > 0) || !isfinite(timeout_s))
    return spr_error(SPR_EINVAL, "spr_spice_op_currents: timeout_s = %g must be finite and > 0",
                     timeout_s);
  for (int i = 0; i < n_lines; i++)
    if (!netlist_lines[i])
      return spr_error(SPR_EINVAL, "spr_spice_op_currents: netlist line %d is NULL", i + 1);
  for (int k = 0; k < n_vecs; k++)
    if (!vec_names[k] || !*vec_names[k] || strlen(vec_names[k]) >= 256)
      return spr_error(SPR_EINVAL, "spr_spice_op_currents: vector name %d is empty or too long",
                       k + 1);

  const double deadline = now_s() + timeout_s;
  int fds[2];
  if (pipe(fds) != 0)
    return spr_error(SPR_EIO, "spr_spice_op_currents: pipe: %s", strerror(errno));
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  /* Flush so the child's copy of stdio buffers cannot be written twice
   * (the child also ends with _exit). */
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(fds[0]);
    close(fds[1]);
    return spr_error(SPR_EIO, "spr_spice_op_currents: fork: %s", strerror(e));
  }
  if (pid == 0) {
    close(fds[0]);
    signal(SIGPIPE, SIG_DFL);
    child_run(fds[1], netlist_lines, n_lines, vec_names, n_vecs, values);
    _exit(4); /* not reached */
  }
  close(fds[1]);

  int hdr[3];
  char msg[MSG_MAX + 512];
  msg[0] = '\0';
  int timed_out = 0, complete = 0;
  ssize_t r = read_deadline(fds[0], hdr, sizeof hdr, deadline);
  if (r == -2) timed_out = 1;
  if (r == (ssize_t)sizeof hdr && hdr[1] >= 0 && hdr[1] <= n_vecs && hdr[2] >= 0 &&
      (size_t)hdr[2] < sizeof msg) {
    size_t nv = (size_t)hdr[1] * sizeof(double);
    ssize_t r1 = nv ? read_deadline(fds[0], values, nv, deadline) : 0;
    ssize_t r2 = r1 == (ssize_t)nv && hdr[2] ? read_deadline(fds[0], msg, (size_t)hdr[2], deadline)
                                             : 0;
    if (r1 == -2 || r2 == -2) timed_out = 1;
    size_t mlen = (size_t)hdr[2];
    if (r1 == (ssize_t)nv && r2 == (ssize_t)mlen && mlen < sizeof msg) {
      msg[mlen] = '\0';
      complete = 1;
    }
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int ws = 0;
  int reaped = reap(pid, &ws) == 0;

  if (timed_out)
    return spr_error(SPR_ESPICE,
                     "ngspice job (title '%s') timed out after %g s; the child was killed",
                     netlist_lines[0], timeout_s);
  if (!complete) {
    if (reaped && WIFSIGNALED(ws))
      return spr_error(SPR_ESPICE, "ngspice child (title '%s') died of signal %d (%s)",
                       netlist_lines[0], WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    return spr_error(SPR_ESPICE,
                     "ngspice child (title '%s') ended without a complete reply (exit status %d)",
                     netlist_lines[0], reaped && WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
  }
  if (hdr[0] != 0) return spr_error(hdr[0] < 0 ? hdr[0] : SPR_ESPICE, "%s", msg);
  if (hdr[1] != n_vecs)
    return spr_error(SPR_EINTERNAL, "ngspice child sent %d values for %d vectors", hdr[1],
                     n_vecs);
  return 0;
}

/* -------------------------------------------------------------- netlist */

void spr_spice_netlist_free(char **lines, int n_lines) {
  if (!lines) return;
  for (int i = 0; i < n_lines; i++) free(lines[i]);
  free(lines);
}

typedef struct {
  char **lines;
  int n, cap;
} line_buf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int emit(line_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (len < 0) return -1;
  char *s = malloc((size_t)len + 1);
  if (!s) return -1;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)len + 1, fmt, ap);
  va_end(ap);
  if (b->n == b->cap) {
    free(s);
    return -1; /* capacity is computed exactly beforehand */
  }
  b->lines[b->n++] = s;
  return 0;
}

/* A wire segment: a resistor, or a 0 V source (an exact short) when r is 0. */
static int emit_wire(line_buf *b, const char *name, const char *n1, const char *n2, double r) {
  if (r == 0) return emit(b, "V%s %s %s DC 0", name, n1, n2);
  return emit(b, "R%s %s %s %.17g", name, n1, n2, r);
}

int spr_spice_crossbar_netlist(const double *G, int R, int C, double r_wl, double r_bl,
                               const double *V, char ***lines, int *n_lines) {
  if (lines) *lines = NULL;
  if (n_lines) *n_lines = 0;
  if (!G || !V || !lines || !n_lines)
    return spr_error(SPR_EINVAL, "spr_spice_crossbar_netlist: NULL argument");
  if (R < 1 || C < 1 || R > 100000 || C > 100000 || (long long)R * C > 50000000LL)
    return spr_error(SPR_EINVAL, "spr_spice_crossbar_netlist: bad shape %d x %d", R, C);
  if (!isfinite(r_wl) || r_wl < 0)
    return spr_error(SPR_EINVAL, "spr_spice_crossbar_netlist: r_wl = %g ohm must be finite "
                                 "and >= 0", r_wl);
  if (!isfinite(r_bl) || r_bl < 0)
    return spr_error(SPR_EINVAL, "spr_spice_crossbar_netlist: r_bl = %g ohm must be finite "
                                 "and >= 0", r_bl);
  for (int i = 0; i < R; i++)
    if (!isfinite(V[i]))
      return spr_error(SPR_EINVAL, "spr_spice_crossbar_netlist: V[%d] = %g is not finite", i,
                       V[i]);
  for (long long k = 0; k < (long long)R * C; k++) {
    double g = G[k];
    if (!isfinite(g) || g < 0)
      return spr_error(SPR_EINVAL, "spr_spice_crossbar_netlist: G[%lld][%lld] = %g S must be "
                                   "finite and >= 0", k / C, k % C, g);
    if (g > 0 && !isfinite(1 / g))
      return spr_error(SPR_EINVAL, "spr_spice_crossbar_netlist: G[%lld][%lld] = %g S is too "
                                   "small (1/G overflows)", k / C, k % C, g);
  }

  /* title, options, R drivers, R driver wires, R C cells (at most),
   * R (C-1) word segments, (R-1) C bit segments, C sense wires, C
   * ammeters, .end */
  long long cap = 2 + 2LL * R + (long long)R * C + (long long)R * (C - 1) +
                  (long long)(R - 1) * C + 2LL * C + 1;
  line_buf b = {calloc((size_t)cap, sizeof(char *)), 0, (int)cap};
  if (!b.lines) return spr_error(SPR_ENOMEM, "spr_spice_crossbar_netlist: %lld lines", cap);
  char n1[64], n2[64], nm[64];
  int bad = 0;
  bad |= emit(&b, "* sprintsim crossbar %d x %d r_wl=%.17g r_bl=%.17g", R, C, r_wl, r_bl);
  bad |= emit(&b, ".options num_threads=1");
  for (int i = 0; i < R && !bad; i++) {
    bad |= emit(&b, "Vd%d d%d 0 DC %.17g", i, i, V[i]);
    snprintf(nm, sizeof nm, "dw%d", i);
    snprintf(n1, sizeof n1, "d%d", i);
    snprintf(n2, sizeof n2, "w%d_0", i);
    bad |= emit_wire(&b, nm, n1, n2, r_wl);
  }
  for (int i = 0; i < R && !bad; i++)
    for (int j = 0; j < C && !bad; j++) {
      double g = G[(size_t)i * C + j];
      if (g > 0) bad |= emit(&b, "Rc%d_%d w%d_%d b%d_%d %.17g", i, j, i, j, i, j, 1 / g);
      if (j + 1 < C) {
        snprintf(nm, sizeof nm, "w%d_%d", i, j);
        snprintf(n1, sizeof n1, "w%d_%d", i, j);
        snprintf(n2, sizeof n2, "w%d_%d", i, j + 1);
        bad |= emit_wire(&b, nm, n1, n2, r_wl);
      }
      if (i + 1 < R) {
        snprintf(nm, sizeof nm, "b%d_%d", i, j);
        snprintf(n1, sizeof n1, "b%d_%d", i, j);
        snprintf(n2, sizeof n2, "b%d_%d", i + 1, j);
        bad |= emit_wire(&b, nm, n1, n2, r_bl);
      }
    }
  for (int j = 0; j < C && !bad; j++) {
    snprintf(nm, sizeof nm, "sw%d", j);
    snprintf(n1, sizeof n1, "b%d_%d", R - 1, j);
    snprintf(n2, sizeof n2, "s%d", j);
    bad |= emit_wire(&b, nm, n1, n2, r_bl);
    bad |= emit(&b, "Vs%d s%d 0 DC 0", j, j);
  }
  if (!bad) bad |= emit(&b, ".end");
  if (bad) {
    spr_spice_netlist_free(b.lines, b.n);
    return spr_error(SPR_ENOMEM, "spr_spice_crossbar_netlist: out of memory at line %d", b.n);
  }
  *lines = b.lines;
  *n_lines = b.n;
  return 0;
}

int spr_spice_crossbar_currents(const double *G, int R, int C, double r_wl, double r_bl,
                                const double *V, double *I, double timeout_s) {
  if (!I) return spr_error(SPR_EINVAL, "spr_spice_crossbar_currents: I is NULL");
  char **lines = NULL;
  int n = 0;
  int rc = spr_spice_crossbar_netlist(G, R, C, r_wl, r_bl, V, &lines, &n);
  if (rc) return rc;
  char **names = calloc((size_t)C, sizeof *names);
  if (!names) {
    spr_spice_netlist_free(lines, n);
    return spr_error(SPR_ENOMEM, "spr_spice_crossbar_currents: %d names", C);
  }
  for (int j = 0; j < C && rc == 0; j++) {
    names[j] = malloc(32);
    if (!names[j]) rc = spr_error(SPR_ENOMEM, "spr_spice_crossbar_currents: names");
    else snprintf(names[j], 32, "vs%d#branch", j);
  }
  if (rc == 0)
    rc = spr_spice_op_currents((const char *const *)lines, n, (const char *const *)names, C, I,
                               timeout_s);
  for (int j = 0; j < C; j++) free(names[j]);
  free(names);
  spr_spice_netlist_free(lines, n);
  return rc;
}
