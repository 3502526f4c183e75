/* cmd_progress.c - progress of the commands' long steps on stderr
 * (cmd.h): a thread that reads what the library counts (spr_progress.h)
 * through the command's render function and draws a status line. */
#include "config.h"
#include "cmd.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* Seconds between two status lines to a file or a pipe (a terminal's line
 * is redrawn at every tick): 10 s at first, a tenth of the time elapsed
 * later, at most 10 minutes (a week-long sweep's log stays readable). */
#define LOG_INTERVAL_S 10.0
#define LOG_INTERVAL_MAX_S 600.0
#define TICK_NS 200000000L

struct cmd_progress {
  cmd_progress_fn fn;
  void *user;
  int tty;
  pthread_t thread;
  pthread_mutex_t lock;   /* stderr: status line and permanent lines */
  pthread_cond_t running; /* signalled once the thread runs its own code */
  int started;            /* under lock */
  atomic_int stop;
  char shown[512];        /* the status text on the terminal's last line, "" none */
  char last[512];         /* the last status line written (file or pipe) */
  int last_major;
  double last_time, start;
};

int cmd_progress_wanted_mode(int mode) {
  if (mode == CMD_PROGRESS_OFF) return 0;
  return mode == CMD_PROGRESS_ON || isatty(STDERR_FILENO);
}

int cmd_progress_wanted(const cmd_opts *o) { return cmd_progress_wanted_mode(o->progress); }

/* Write all of s to stderr (no stdio: the thread holds no stdio lock, so
 * a fork in the main thread (ngspice jobs) finds none held). */
static void put(const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

static int term_width(void) {
  struct winsize ws;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

/* Erase the terminal's status line (lock held). */
static void clear_locked(cmd_progress *p) {
  if (p->tty && p->shown[0]) {
    put("\r\033[K", 4);
    p->shown[0] = '\0';
  }
}

/* One tick: render and draw (lock held). final: the last one. */
static void draw_locked(cmd_progress *p, int final) {
  char text[512];
  int major = 0;
  text[0] = '\0';
  if (p->fn(p->user, text, sizeof text, &major) != 0 || !text[0]) {
    clear_locked(p);
    return;
  }
  const double now = cmd_now_s();
  if (p->tty) {
    if (final) {
      clear_locked(p);
      return;
    }
    char line[600];
    const int w = term_width() - 1; /* a wrapped line cannot be redrawn with \r */
    int n = snprintf(line, sizeof line, "\r%.*s\033[K", w, text);
    if (n > 0 && strcmp(text, p->shown) != 0) {
      put(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
      snprintf(p->shown, sizeof p->shown, "%s", text);
    }
    return;
  }
  /* a file or a pipe: a line when the stage changes, at the end, and
   * otherwise at most every LOG_INTERVAL_S while it moves */
  if (strcmp(text, p->last) == 0) return;
  double every = (now - p->start) / 10;
  every = every < LOG_INTERVAL_S ? LOG_INTERVAL_S : every > LOG_INTERVAL_MAX_S ? LOG_INTERVAL_MAX_S : every;
  if (major == p->last_major && !final && now - p->last_time < every) return;
  char line[600];
  int n = snprintf(line, sizeof line, "%s\n", text);
  if (n > 0) put(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  snprintf(p->last, sizeof p->last, "%s", text);
  p->last_major = major;
  p->last_time = now;
}

/* Forks while the thread draws.  The commands fork (ngspice jobs,
 * calibration/spr_spice.c; HDF5 readers, core/spr_h5r.c) while this
 * thread runs.  glibc makes its own locks safe across fork, but GCC 12's
 * AddressSanitizer does not (docs/isolation.md): a child forked while
 * this thread held one of its locks waited on it forever (CI: `crossbar
 * --model spice --progress` and `calibrate --progress` in the sanitizer
 * build, each once, the first job stuck at 0 s until its timeout).  So a
 * fork waits, in a pthread_atfork handler, until the thread is outside a
 * tick, and cmd_progress_start returns only once the thread runs its own
 * code (past the sanitizer's and libc's start of a thread): between two
 * ticks the thread only sleeps or waits on this mutex.  Lock order:
 * tick_lock, then a progress's lock; a fork never happens under the
 * latter (cmd_progress_hold). */
static pthread_mutex_t tick_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int atfork_rc = -1;

static void fork_prepare(void) { pthread_mutex_lock(&tick_lock); }
static void fork_done(void) { pthread_mutex_unlock(&tick_lock); }
static void atfork_install(void) { atfork_rc = pthread_atfork(fork_prepare, fork_done, fork_done); }

static void *run(void *arg) {
  cmd_progress *p = arg;
  /* signals go to the main thread, which polls the flag they set */
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_mutex_lock(&p->lock);
  p->started = 1;
  pthread_cond_signal(&p->running);
  pthread_mutex_unlock(&p->lock);
  const struct timespec tick = {0, TICK_NS};
  while (!atomic_load(&p->stop)) {
    pthread_mutex_lock(&tick_lock);
    pthread_mutex_lock(&p->lock);
    draw_locked(p, 0);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&tick_lock);
    nanosleep(&tick, NULL);
  }
  return NULL;
}

cmd_progress *cmd_progress_start(int enabled, cmd_progress_fn fn, void *user) {
  if (!enabled) return NULL;
  pthread_once(&atfork_once, atfork_install);
  if (atfork_rc != 0) return NULL; /* no thread that a fork could catch in a tick */
  cmd_progress *p = calloc(1, sizeof *p);
  if (!p) return NULL; /* progress is optional: the work goes on without it */
  p->fn = fn;
  p->user = user;
  p->tty = isatty(STDERR_FILENO);
  p->last_major = -1;
  p->last_time = p->start = cmd_now_s();
  atomic_init(&p->stop, 0);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->running, NULL);
  fflush(stderr);
  if (pthread_create(&p->thread, NULL, run, p) != 0) {
    pthread_cond_destroy(&p->running);
    pthread_mutex_destroy(&p->lock);
    free(p);
    return NULL;
  }
  pthread_mutex_lock(&p->lock);
  while (!p->started) pthread_cond_wait(&p->running, &p->lock);
  pthread_mutex_unlock(&p->lock);
  return p;
}

void cmd_progress_printf(cmd_progress *p, const char *fmt, ...) {
  char line[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
  if (!p) {
    fputs(line, stderr);
    fflush(stderr);
    return;
  }
  pthread_mutex_lock(&p->lock);
  clear_locked(p);
  put(line, (size_t)n);
  pthread_mutex_unlock(&p->lock);
}

void cmd_progress_hold(cmd_progress *p) {
  if (!p) return;
  pthread_mutex_lock(&p->lock);
  clear_locked(p);
}

void cmd_progress_release(cmd_progress *p) {
  if (p) pthread_mutex_unlock(&p->lock);
}

void cmd_progress_stop(cmd_progress *p) {
  if (!p) return;
  atomic_store(&p->stop, 1);
  pthread_join(p->thread, NULL);
  pthread_mutex_lock(&p->lock);
  draw_locked(p, 1);
  clear_locked(p);
  pthread_mutex_unlock(&p->lock);
  pthread_cond_destroy(&p->running);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

/* "45 s", "12m05s", "3h07m", "2d04h" */
static void fmt_duration(char *buf, size_t n, double s) {
  if (!(s >= 0)) s = 0;
  long t = (long)(s + 0.5);
  if (t < 60) snprintf(buf, n, "%ld s", t);
  else if (t < 3600) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
  else if (t < 86400) snprintf(buf, n, "%ldh%02ldm", t / 3600, t % 3600 / 60);
  else snprintf(buf, n, "%ldd%02ldh", t / 86400, t % 86400 / 3600);
}

void cmd_progress_times(char *buf, size_t n, double elapsed_s, double fraction) {
  char el[32], eta[32];
  fmt_duration(el, sizeof el, elapsed_s);
  if (fraction > 0 && fraction < 1 && elapsed_s > 0) {
    fmt_duration(eta, sizeof eta, elapsed_s * (1 - fraction) / fraction);
    snprintf(buf, n, "%s elapsed, ETA %s", el, eta);
  } else {
    snprintf(buf, n, "%s elapsed", el);
  }
}

int cmd_progress_counter(void *user, char *buf, size_t n, int *major) {
  cmd_progress_counter_src *c = user;
  const char *unit;
  long long done, total;
  int stage;
  spr_progress_read(c->prog, &unit, &done, &total, &stage);
  if (!stage || !unit[0]) return -1;
  const double now = cmd_now_s();
  if (stage != c->stage) { /* times count from the stage's start */
    c->stage = stage;
    c->stage_t0 = now;
  }
  char prefix[256] = "", times[96];
  if (c->prefix) c->prefix(c->user, prefix, sizeof prefix);
  const double frac = total > 0 ? (double)done / (double)total : 0;
  cmd_progress_times(times, sizeof times, now - c->stage_t0, frac);
  if (total > 0)
    snprintf(buf, n, "%s: %s%s%lld/%lld %s (%.0f%%), %s", c->what, prefix, prefix[0] ? ", " : "",
             done, total, unit, 100 * frac, times);
  else
    snprintf(buf, n, "%s: %s%s%lld %s, %s", c->what, prefix, prefix[0] ? ", " : "", done, unit,
             times);
  *major = stage;
  return 0;
}
