/* cmd_sweep.c - sprintsim sweep: every point of a grid (sim/spr_sweep.h),
 * on the threads of one process or of several MPI ranks (cmd_mpi.h), with
 * a journal of finished points to resume from (sim/spr_journal.h).
 *
 * How it runs (docs/sweep.md, "Running", "On a cluster"): every rank loads
 * the sweep; rank 0 alone checks the outputs, owns the journal, hands the
 * points that are not finished out in grid order to whichever thread of
 * whichever rank is free, records each finished point in the journal as
 * its rows arrive, prints, and writes both files at the end.  Each rank
 * has `--threads` worker threads (one point each) and its main thread,
 * which alone talks MPI.  A point's rows depend on its configuration
 * alone and travel as exact bytes (spr_sweep_point_pack), so the files do
 * not depend on the number of ranks or threads, nor on the order in
 * which points finish, nor on how many runs a resumed sweep took. */
#include "config.h"
#include "cmd.h"
#include "cmd_mpi.h"
#include "spr_error.h"
#include "spr_eval.h"
#include "spr_journal.h"
#include "spr_model.h"
#include "spr_model_eval.h"
#include "spr_sweep.h"

#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void cmd_usage_sweep(FILE *f) {
  fprintf(f,
          "usage: sprintsim sweep CONFIG [-o SWEEP.h5] [--threads N] [--resume]\n"
          "                       [--progress | --quiet] [--set SECTION.KEY=VALUE ...]\n"
          "       mpirun -n K sprintsim sweep CONFIG ...   (a build with MPI)\n"
          "\n"
          "Evaluate every point of a grid over configuration keys: CONFIG is an\n"
          "ordinary configuration plus a [sweep] section (docs/sweep.md):\n"
          "\n"
          "  [sweep]\n"
          "  threshold.keep_rate = 0.05, 0.1, 0.2      ; axis: section.key = values\n"
          "  analog.cmp_noise_sigma = 0, 20 nA, 50 nA  ; as the key accepts them\n"
          "  schemes = sprint, dense, oracle, topk     ; schemes reported (optional)\n"
          "  max_points = 1000                         ; refuse larger grids (default)\n"
          "\n"
          "The grid is the Cartesian product of the axes (the first varies slowest).\n"
          "Every point is checked before any runs.  Points run in parallel, one\n"
          "thread each; under mpirun (or srun) the points are spread over the ranks,\n"
          "--threads points at a time in each.  The output is identical for any\n"
          "thread and rank count.\n"
          "\n"
          "Rows: one per point and scheme.  Synthetic or Q/K/V heads report attention\n"
          "metrics (mass_retained, rel_fro, ...); workload.source = model reports an\n"
          "image model's top1, agreement, top1_exact, top1_reference and loss_pp, a\n"
          "text model's bpc, bpc_exact, bpc_reference and loss_pct (exact attention\n"
          "and the reference model have no row: they are not priced; docs/models.md,\n"
          "examples/vit-sweep.ini, examples/lm-sweep.ini).\n"
          "\n"
          "  -o, --output FILE  HDF5 results (default sprintsim-sweep.h5); the CSV is\n"
          "                     written beside it (FILE without .h5, plus .csv); both\n"
          "                     are written as NAME.tmp.XXXXXX and renamed when complete\n"
          "                     (neither may name an input of a point)\n"
          "  --threads N        points evaluated at once in each process (default:\n"
          "                     OMP_NUM_THREADS, or the cores shared among the ranks of\n"
          "                     the node); their memory is checked together first\n"
          "  --resume           go on with an interrupted sweep: the journal beside the\n"
          "                     output (FILE without .h5, plus .journal) holds every\n"
          "                     finished point; it must match CONFIG, its input files\n"
          "                     and this program's version; only the missing points run\n"
          "                     (without a journal: from the first point)\n");
  cmd_usage_progress(f);
  cmd_usage_set(f, "                     --set sweep.KEY=VALUES replaces (or adds) an axis or a\n"
                  "                     [sweep] key; a key that is an axis is set on its axis\n");
  fprintf(f,
          "  -h, --help         this help\n"
          "\n"
          "Plots: scripts/plot SWEEP.h5.  Exit status: 0 success, 1 error, 2 bad command\n"
          "line, 130 interrupted (nothing written; the finished points stay in the\n"
          "journal for --resume).\n");
}

/* Neither output (nor the journal) may be an input of a point: the sweep
 * file, or a file its points name (every point's when an axis sets a file
 * name), or a model's reference model. */
static int check_inputs(const cmd_opts *opt, const spr_sweep *sw, const char *const outs[3],
                        const char *const what[3]) {
  int files = 0; /* an axis sets a file name: "section.key" or "a.b + c.d" */
  for (int a = 0; a < spr_sweep_naxes(sw); a++) {
    char names[256], *save = NULL;
    snprintf(names, sizeof names, "%s", spr_sweep_axis_key(sw, a));
    for (char *t = strtok_r(names, " +", &save); t; t = strtok_r(NULL, " +", &save)) {
      char *dot = strchr(t, '.');
      if (!dot) continue;
      *dot = '\0';
      const spr_config_key_info *k = spr_config_key(spr_config_find(t, dot + 1));
      files |= k && k->type == SPR_KEY_STRING;
    }
  }
  spr_config *c = malloc(sizeof *c);
  if (!c) {
    fprintf(stderr, "%s: out of memory\n", cmd_prog);
    return 1;
  }
  int st = 0;
  for (int p = 0; p < (files ? spr_sweep_npoints(sw) : 1) && !st; p++) {
    if (spr_sweep_point_config(sw, p, c)) {
      st = cmd_fail(1, NULL);
      break;
    }
    char ref[SPR_STRING_MAX] = "";
    spr_model m;
    if (c->wl.source == SPR_SOURCE_MODEL && spr_model_load(c->wl.model, &m) == 0) {
      if (spr_model_reference_path(c, c->wl.model, &m, ref, sizeof ref)) ref[0] = '\0';
      spr_model_free(&m);
    }
    for (int i = 0; i < 3 && !st; i++) {
      st = cmd_check_inputs(opt, what[i], outs[i], c);
      if (!st && ref[0]) st = cmd_check_input("sweep", what[i], outs[i], "the reference model", ref);
    }
  }
  free(c);
  return st;
}

/* --- the engine: worker threads and one coordinating main thread --------- */

enum { M_REQ = 1, M_ASG, M_RES, M_INTR, M_STOP, M_SKIP, M_DONE };

/* A message between ranks: this header, then its payload (M_ASG: a
 * point indices as int32; M_RES: the packed rows when rc is 0, then c
 * bytes of message). */
typedef struct {
  int32_t type, a, b, c;
  double sec;
} msg_hdr;

#define MAX_ASG 64 /* points in one M_ASG */

typedef struct {
  int p, rc;
  double sec;
  char msg[1024];
} result;

typedef struct engine engine;
struct engine {
  spr_sweep *sw;
  int T;                       /* worker threads */
  pthread_mutex_t lock;
  pthread_cond_t work, news;
  int *queue, qhead, qlen;     /* points to start (a ring of T) */
  result *out;                 /* finished, for the coordinator (at most T) */
  int nout;
  int finishing;               /* workers end when the queue is empty */
  int skip_after;              /* points above it are not started (INT_MAX: none) */
  int cancel_all;
  volatile sig_atomic_t *slot_cancel; /* per worker: stop its point */
  int *slot_point;             /* per worker: its point, -1 idle */
  spr_progress *slot_prog;     /* per worker: its point's progress */
  /* progress (rank 0): read by the progress thread */
  atomic_int done_total, done_session, running;
  int P, todo;
  double t0;
  int ranks;
};

typedef struct {
  engine *e;
  int w;
} worker_arg;

static void *worker(void *arg) {
  engine *e = ((worker_arg *)arg)->e;
  const int w = ((worker_arg *)arg)->w;
  sigset_t all; /* signals go to the main thread */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_mutex_lock(&e->lock);
  for (;;) {
    while (e->qlen == 0 && !e->finishing) pthread_cond_wait(&e->work, &e->lock);
    if (e->qlen == 0) break;
    const int p = e->queue[e->qhead];
    e->qhead = (e->qhead + 1) % e->T;
    e->qlen--;
    const int skip = e->cancel_all || p > e->skip_after;
    e->slot_point[w] = p;
    e->slot_cancel[w] = 0;
    spr_progress_init(&e->slot_prog[w]);
    pthread_mutex_unlock(&e->lock);
    const double t0 = cmd_now_s();
    int rc = skip ? SPR_ECANCELED
                  : spr_sweep_eval_point(e->sw, p, &e->slot_cancel[w], &e->slot_prog[w]);
    result r = {p, rc, cmd_now_s() - t0, ""};
    if (rc && rc != SPR_ECANCELED) snprintf(r.msg, sizeof r.msg, "%s", spr_errmsg());
    pthread_mutex_lock(&e->lock);
    e->slot_point[w] = -1;
    e->out[e->nout++] = r;
    pthread_cond_signal(&e->news);
  }
  pthread_mutex_unlock(&e->lock);
  return NULL;
}

/* Queue point p for this rank's workers (lock held; room guaranteed). */
static void enqueue(engine *e, int p) {
  e->queue[(e->qhead + e->qlen) % e->T] = p;
  e->qlen++;
  pthread_cond_signal(&e->work);
}

/* Stop the running points above `after` (all: -1), and the queued ones
 * when they come up (lock held). */
static void cancel_above(engine *e, int after) {
  if (after < 0) e->cancel_all = 1;
  if (after < e->skip_after) e->skip_after = after;
  for (int w = 0; w < e->T; w++)
    if (e->slot_point[w] >= 0 && (after < 0 || e->slot_point[w] > after)) e->slot_cancel[w] = 1;
}

/* The status line of a sweep (rank 0). */
static int sweep_status(void *user, char *buf, size_t n, int *major) {
  engine *e = user;
  const int done = atomic_load(&e->done_total), session = atomic_load(&e->done_session);
  double part = 0;
  char run[160] = "";
  size_t used = 0;
  int shown = 0;
  pthread_mutex_lock(&e->lock);
  for (int w = 0; w < e->T; w++) {
    if (e->slot_point[w] < 0) continue;
    long long d, t;
    spr_progress_read(&e->slot_prog[w], NULL, &d, &t, NULL);
    const double f = t > 0 ? (double)d / (double)t : 0;
    part += f;
    if (shown < 8 && used < sizeof run - 16)
      used += (size_t)snprintf(run + used, sizeof run - used, "%s%.0f%%", shown ? ", " : "", 100 * f);
    shown++;
  }
  pthread_mutex_unlock(&e->lock);
  const int running = atomic_load(&e->running);
  char times[96], on[64] = "";
  const double frac = e->todo > 0 ? (session + part) / e->todo : 1;
  cmd_progress_times(times, sizeof times, cmd_now_s() - e->t0, frac);
  if (e->ranks > 1) snprintf(on, sizeof on, " on %d ranks", e->ranks);
  if (running && shown)
    snprintf(buf, n, "sweep: %d/%d points done, %d running%s (%s%s), %s", done, e->P, running, on,
             e->ranks > 1 ? "here: " : "", run, times);
  else
    snprintf(buf, n, "sweep: %d/%d points done, %d running%s, %s", done, e->P, running, on, times);
  *major = 0;
  return 0;
}

/* What the coordinator of rank 0 knows at the end. */
typedef struct {
  int err_point, err_code;     /* the lowest failing point (INT_MAX: none) */
  char err_msg[1024];
  int interrupted;             /* a signal here (1) or on another rank (2) */
  int intr_rank;
  int fatal;                   /* the journal could not be written */
  char fatal_msg[1024];
} outcome;

typedef struct {
  engine *e;
  int rank, size;
  spr_journal *journal;        /* rank 0 */
  cmd_progress *prog;          /* rank 0, NULL without progress */
  const int *todo;             /* rank 0: the points to run, grid order */
  int ntodo;
} coord;

/* A message to another rank; a failed send ends every rank (the ranks
 * could not agree any more). */
static void send_msg(int to, int type, int a, int b, const void *payload, size_t plen, double sec) {
  unsigned char buf[CMD_MPI_MAX_MSG];
  msg_hdr h = {type, a, b, (int32_t)plen, sec};
  memcpy(buf, &h, sizeof h);
  if (plen) memcpy(buf + sizeof h, payload, plen);
  if (cmd_mpi_send(to, buf, sizeof h + plen) != 0) {
    fprintf(stderr, "%s: sweep: MPI send to rank %d failed\n", cmd_prog, to);
    cmd_mpi_abort(1);
  }
}

/* Rank 0: a finished, failed or stopped point p (its rows in sw when rc
 * is 0). */
static void on_result(coord *k, outcome *oc, int p, int rc, double sec, const char *msg, int rank) {
  engine *e = k->e;
  spr_sweep *sw = e->sw;
  if (rc) atomic_fetch_sub(&e->running, 1);
  if (rc == SPR_ECANCELED) return;
  if (rc) {
    if (p < oc->err_point) {
      oc->err_point = p;
      oc->err_code = rc;
      snprintf(oc->err_msg, sizeof oc->err_msg, "%s", msg);
      /* the points after it do not matter: only a lower one can change
       * what is reported */
      pthread_mutex_lock(&e->lock);
      cancel_above(e, p);
      pthread_mutex_unlock(&e->lock);
      for (int r = 1; r < k->size; r++) send_msg(r, M_SKIP, p, 0, NULL, 0, 0);
    }
    return;
  }
  if (!oc->fatal && spr_journal_append(k->journal, sw, p)) {
    oc->fatal = 1;
    snprintf(oc->fatal_msg, sizeof oc->fatal_msg, "%s", spr_errmsg());
    pthread_mutex_lock(&e->lock);
    cancel_above(e, -1);
    pthread_mutex_unlock(&e->lock);
    for (int r = 1; r < k->size; r++) send_msg(r, M_STOP, 0, 0, NULL, 0, 0);
  }
  /* counted done before it stops counting as running (the journal's fsync
   * lies between: the status line never shows the point as neither) */
  const int done = atomic_fetch_add(&e->done_total, 1) + 1;
  const int session = atomic_fetch_add(&e->done_session, 1) + 1;
  atomic_fetch_sub(&e->running, 1);
  if (k->prog) {
    char label[512], times[96], on[32] = "";
    spr_sweep_point_label(sw, p, label, sizeof label);
    const double el = cmd_now_s() - e->t0;
    cmd_progress_times(times, sizeof times, el, e->todo ? (double)session / e->todo : 1);
    if (k->size > 1) snprintf(on, sizeof on, " on rank %d", rank);
    cmd_progress_printf(k->prog, "sweep: %d/%d done (point %d%s: %s) %.1f s; %s\n", done, e->P,
                        p + 1, on, label, sec, times);
  }
}

/* The main thread's loop on every rank; returns when the work is over
 * (rank 0 decided it and told the others).  On rank 0, *oc says how. */
static void coordinate(coord *k, outcome *oc) {
  engine *e = k->e;
  const int rank = k->rank, size = k->size, T = e->T;
  int next = 0, inflight = 0, stop_dispatch = 0, intr_sent = 0;
  int *outstanding = rank == 0 ? calloc((size_t)size, sizeof *outstanding) : NULL;
  int req_out = 0, nomore = 0; /* ranks > 0 */
  unsigned char buf[CMD_MPI_MAX_MSG];
  result *got = malloc((size_t)T * sizeof *got);
  if (!got || (rank == 0 && !outstanding)) {
    fprintf(stderr, "%s: sweep: out of memory\n", cmd_prog);
    if (size > 1) cmd_mpi_abort(1);
    exit(1);
  }
  for (;;) {
    /* 1. results of this rank's workers */
    pthread_mutex_lock(&e->lock);
    int n = e->nout;
    memcpy(got, e->out, (size_t)n * sizeof *got);
    e->nout = 0;
    pthread_mutex_unlock(&e->lock);
    for (int i = 0; i < n; i++) {
      inflight--;
      if (rank == 0) {
        on_result(k, oc, got[i].p, got[i].rc, got[i].sec, got[i].msg, 0);
      } else {
        unsigned char rows[SPR_SWEEP_POINT_BYTES + sizeof got[i].msg];
        size_t len = 0;
        if (got[i].rc == 0) {
          spr_sweep_point_pack(e->sw, got[i].p, rows);
          len = SPR_SWEEP_POINT_BYTES;
        } else if (got[i].rc != SPR_ECANCELED) {
          len = strlen(got[i].msg);
          memcpy(rows, got[i].msg, len);
        }
        send_msg(0, M_RES, got[i].p, got[i].rc, rows, len, got[i].sec);
      }
    }
    /* 2. a signal: stop the running points; rank 0 stops every rank */
    if (cmd_interrupted && !intr_sent) {
      intr_sent = 1;
      pthread_mutex_lock(&e->lock);
      cancel_above(e, -1);
      pthread_mutex_unlock(&e->lock);
      if (rank == 0) {
        if (!oc->interrupted) oc->interrupted = 1;
        stop_dispatch = 1;
        for (int r = 1; r < size; r++) send_msg(r, M_STOP, 0, 0, NULL, 0, 0);
      } else {
        nomore = 1;
        send_msg(0, M_INTR, 0, 0, NULL, 0, 0);
      }
    }
    if (rank == 0 && (oc->err_point != INT_MAX || oc->fatal)) stop_dispatch = 1;
    /* 3. work for this rank's free threads */
    if (rank == 0) {
      pthread_mutex_lock(&e->lock);
      while (inflight < T && !stop_dispatch && next < k->ntodo) {
        enqueue(e, k->todo[next++]);
        inflight++;
        atomic_fetch_add(&e->running, 1);
      }
      pthread_mutex_unlock(&e->lock);
    } else if (!nomore && !req_out && inflight < T) {
      send_msg(0, M_REQ, T - inflight, 0, NULL, 0, 0);
      req_out = 1;
    }
    /* 4. messages from the other ranks */
    int from, got_msg = 0, r;
    size_t len;
    while (size > 1 && (r = cmd_mpi_poll(buf, sizeof buf, &from, &len)) != 0) {
      msg_hdr h;
      if (r < 0 || len < sizeof h) {
        fprintf(stderr, "%s: sweep: MPI receive failed\n", cmd_prog);
        cmd_mpi_abort(1);
      }
      got_msg = 1;
      memcpy(&h, buf, sizeof h);
      const unsigned char *pl = buf + sizeof h;
      if (rank == 0) {
        if (h.type == M_REQ) {
          int32_t pts[MAX_ASG];
          int c = 0;
          while (c < h.a && c < MAX_ASG && !stop_dispatch && next < k->ntodo) pts[c++] = k->todo[next++];
          outstanding[from] += c;
          atomic_fetch_add(&e->running, c);
          send_msg(from, M_ASG, c, 0, pts, (size_t)c * sizeof *pts, 0);
        } else if (h.type == M_RES) {
          outstanding[from]--;
          char msg[1100] = "";
          if (h.b == 0) {
            if (spr_sweep_point_unpack(e->sw, h.a, pl, (size_t)h.c)) {
              /* a broken message: report it as the point's failure */
              on_result(k, oc, h.a, SPR_EINTERNAL, h.sec, spr_errmsg(), from);
              continue;
            }
          } else if (h.b != SPR_ECANCELED) {
            snprintf(msg, sizeof msg, "%.*s", (int)h.c, (const char *)pl);
          }
          on_result(k, oc, h.a, h.b, h.sec, msg, from);
        } else if (h.type == M_INTR) {
          if (!oc->interrupted) {
            oc->interrupted = 2;
            oc->intr_rank = from;
          }
          if (!intr_sent) {
            intr_sent = 1;
            stop_dispatch = 1;
            pthread_mutex_lock(&e->lock);
            cancel_above(e, -1);
            pthread_mutex_unlock(&e->lock);
            for (int q = 1; q < size; q++) send_msg(q, M_STOP, 0, 0, NULL, 0, 0);
          }
        }
      } else {
        if (h.type == M_ASG) {
          req_out = 0;
          if (h.a == 0) nomore = 1;
          pthread_mutex_lock(&e->lock);
          for (int i = 0; i < h.a; i++) {
            int32_t p;
            memcpy(&p, pl + (size_t)i * sizeof p, sizeof p);
            enqueue(e, p);
            inflight++;
          }
          pthread_mutex_unlock(&e->lock);
        } else if (h.type == M_STOP) {
          nomore = 1;
          pthread_mutex_lock(&e->lock);
          cancel_above(e, -1);
          pthread_mutex_unlock(&e->lock);
        } else if (h.type == M_SKIP) {
          pthread_mutex_lock(&e->lock);
          cancel_above(e, h.a);
          pthread_mutex_unlock(&e->lock);
        } else if (h.type == M_DONE) {
          free(got);
          return;
        }
      }
    }
    /* 5. the end (rank 0): nothing more to hand out, every point back */
    if (rank == 0 && (stop_dispatch || next >= k->ntodo) && inflight == 0) {
      int left = 0;
      for (int q = 1; q < size; q++) left += outstanding[q];
      if (left == 0) {
        for (int q = 1; q < size; q++) send_msg(q, M_DONE, 0, 0, NULL, 0, 0);
        free(outstanding);
        free(got);
        return;
      }
    }
    if (got_msg || n) continue;
    /* 6. wait for a result (or a message: poll every 2 ms with ranks, else
     * wake at least every 0.1 s for signals) */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += size > 1 ? 2000000L : 100000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->lock);
    if (e->nout == 0) pthread_cond_timedwait(&e->news, &e->lock, &ts);
    pthread_mutex_unlock(&e->lock);
  }
}

/* The engine's arrays and lock (before the progress thread reads them).
 * Returns 0 or -1 (out of memory). */
static int engine_init(engine *e) {
  const int T = e->T;
  e->queue = malloc((size_t)T * sizeof *e->queue);
  e->out = malloc((size_t)T * sizeof *e->out);
  e->slot_cancel = calloc((size_t)T, sizeof *e->slot_cancel);
  e->slot_point = malloc((size_t)T * sizeof *e->slot_point);
  e->slot_prog = calloc((size_t)T, sizeof *e->slot_prog);
  pthread_mutex_init(&e->lock, NULL);
  pthread_cond_init(&e->work, NULL);
  pthread_cond_init(&e->news, NULL);
  e->skip_after = INT_MAX;
  if (!e->queue || !e->out || !e->slot_cancel || !e->slot_point || !e->slot_prog) return -1;
  for (int w = 0; w < T; w++) {
    e->slot_point[w] = -1;
    spr_progress_init(&e->slot_prog[w]);
  }
  return 0;
}

static void engine_free(engine *e) {
  pthread_cond_destroy(&e->news);
  pthread_cond_destroy(&e->work);
  pthread_mutex_destroy(&e->lock);
  free(e->queue);
  free(e->out);
  free((void *)e->slot_cancel);
  free(e->slot_point);
  free(e->slot_prog);
}

/* Start the workers, coordinate, stop them.  Returns 0, or -1 when the
 * threads could not start. */
static int run_engine(coord *k, outcome *oc) {
  engine *e = k->e;
  const int T = e->T;
  pthread_t *th = malloc((size_t)T * sizeof *th);
  worker_arg *args = malloc((size_t)T * sizeof *args);
  int rc = th && args ? 0 : -1, started = 0;
  for (int w = 0; w < T && !rc; w++) {
    args[w] = (worker_arg){e, w};
    if (pthread_create(&th[w], NULL, worker, &args[w]) != 0) rc = -1;
    else started++;
  }
  if (!rc) coordinate(k, oc);
  pthread_mutex_lock(&e->lock);
  e->finishing = 1;
  pthread_cond_broadcast(&e->work);
  pthread_mutex_unlock(&e->lock);
  for (int w = 0; w < started; w++) pthread_join(th[w], NULL);
  free(th);
  free(args);
  return rc;
}

/* --- the command -------------------------------------------------------- */

/* Delete "<path>.tmp.XXXXXX" files (a commit killed half-way, a journal
 * killed before its rename): their sweep is this one, whose journal we
 * hold locked, so no other process is writing them. */
static void remove_stale(const char *path) {
  char *d = strdup(path), *b = strdup(path);
  if (!d || !b) {
    free(d);
    free(b);
    return;
  }
  const char *dir = dirname(d), *base = basename(b);
  DIR *dp = opendir(dir);
  const size_t bl = strlen(base);
  for (struct dirent *de; dp && (de = readdir(dp));) {
    const char *n = de->d_name;
    if (strlen(n) != bl + 11 || strncmp(n, base, bl) != 0 || strncmp(n + bl, ".tmp.", 5) != 0)
      continue;
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", dir, n);
    if (unlink(full) == 0) fprintf(stderr, "sweep: removed %s, a temporary of an earlier run\n", full);
  }
  if (dp) closedir(dp);
  free(d);
  free(b);
}

/* One status over the ranks: rank 0's when it failed, else the lowest
 * failing rank's, whose message (spr_errmsg() there, when msg is NULL)
 * rank 0 prints; every rank returns it.  Single process: st. */
static int agree(int size, int rank, int st, const char *msg) {
  if (size <= 1) return st;
  struct {
    int32_t st;
    char msg[1020];
  } mine = {st, ""}, *all = NULL;
  if (st) snprintf(mine.msg, sizeof mine.msg, "%s", msg ? msg : spr_errmsg());
  if (rank == 0 && !(all = calloc((size_t)size, sizeof *all))) cmd_mpi_abort(1);
  if (cmd_mpi_gather(&mine, sizeof mine, all) != 0) cmd_mpi_abort(1);
  int32_t out = st;
  if (rank == 0) {
    for (int r = 1; r < size && !out; r++)
      if (all[r].st) {
        out = all[r].st;
        fprintf(stderr, "%s: sweep: on rank %d: %s\n", cmd_prog, r, all[r].msg);
      }
    free(all);
  }
  if (cmd_mpi_bcast(&out, sizeof out) != 0) cmd_mpi_abort(1);
  return out;
}

/* The end of a command under MPI: every rank leaves with the same status. */
static int finish(int size, int status) {
  if (size > 1) cmd_mpi_finalize();
  return status;
}

int cmd_sweep(int argc, char **argv) {
  cmd_opts opt = {.cmd = "sweep", .usage = cmd_usage_sweep, .config_what = "with a [sweep] section ",
                  .allow = CMD_OPT_THREADS | CMD_OPT_OUT | CMD_OPT_SET | CMD_OPT_PROGRESS |
                           CMD_OPT_RESUME,
                  .out = "sprintsim-sweep.h5", .threads = 0};
  /* several ranks: MPI first (it may take its own arguments out of argv) */
  int rank = 0, size = 1, env_rank;
  if (cmd_mpi_launched(&env_rank) > 1 && cmd_mpi_available()) {
    if (cmd_mpi_init(&argc, &argv, &rank, &size)) return 1;
    if (rank != 0) { /* rank 0 alone prints; the others' messages reach it */
      if (!freopen("/dev/null", "w", stdout)) return finish(size, 1);
      if (!freopen("/dev/null", "w", stderr)) return finish(size, 1);
    }
  }
  int st0 = cmd_parse_opts(argc, argv, &opt);
  if (st0 >= 0) return finish(size, st0); /* every rank parsed the same line */
  const char *out = opt.out;
  const int local_ranks = size > 1 ? cmd_mpi_local_ranks() : 1;
  long threads = opt.threads;
  if (threads == 0) { /* not given: share the node's cores among its ranks */
    threads = omp_get_max_threads();
    if (local_ranks > 1 && !getenv("OMP_NUM_THREADS")) threads = omp_get_num_procs() / local_ranks;
    if (threads < 1) threads = 1;
  }
  spr_sweep *sw = NULL;
  spr_config_src src;
  /* standard input reaches rank 0 only: it passes the text on */
  char *shared_text = NULL;
  if (size > 1 && opt.config && !strcmp(opt.config, "-")) {
    int64_t len = -1;
    if (rank == 0 && cmd_config_src(&opt, &src) == 0) len = (int64_t)strlen(src.text);
    if (cmd_mpi_bcast(&len, sizeof len) != 0) cmd_mpi_abort(1);
    if (len < 0) return finish(size, 1);
    if (rank != 0) {
      if (!(shared_text = malloc((size_t)len + 1))) cmd_mpi_abort(1);
      shared_text[len] = '\0';
    }
    if (cmd_mpi_bcast(rank == 0 ? (void *)src.text : shared_text, (size_t)len) != 0) cmd_mpi_abort(1);
    if (rank != 0) {
      memset(&src, 0, sizeof src);
      src.name = "stdin";
      src.text = shared_text;
      src.set = opt.set;
      src.n_set = opt.n_set;
      src.set_name = "--set";
    }
  } else if (cmd_config_src(&opt, &src)) {
    return finish(size, agree(size, rank, 1, "cannot read the configuration"));
  }
  const char *cfg_path = src.name;
  int rc = spr_sweep_load_src(&src, &sw);
  int st = agree(size, rank, rc ? (rc == SPR_EUSAGE ? CMD_EXIT_USAGE : 1) : 0, NULL);
  if (st) {
    if (rc && rank == 0) cmd_fail(st, NULL);
    spr_sweep_free(sw);
    free(shared_text);
    return finish(size, st);
  }
  /* every rank must hold the same sweep (a file may differ between nodes) */
  if (size > 1) {
    uint64_t id = 0xcbf29ce484222325ULL;
    const char *s = spr_sweep_source(sw);
    for (size_t i = 0; s[i]; i++) id = (id ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    for (int p = 0; p < spr_sweep_npoints(sw); p++) id = (id ^ spr_sweep_point_hash(sw, p)) * 0x100000001b3ULL;
    for (int i = 0; i < spr_sweep_ninputs(sw); i++) { /* and the content of its files */
      long long n = -1;
      uint64_t h = 0;
      spr_sweep_input_id(spr_sweep_input_path(sw, i), &n, &h);
      id = (id ^ h ^ (uint64_t)n) * 0x100000001b3ULL;
    }
    uint64_t id0 = id;
    if (cmd_mpi_bcast(&id0, sizeof id0) != 0) cmd_mpi_abort(1);
    char m[600] = "";
    if (id != id0)
      snprintf(m, sizeof m, "%s (host %s) resolves to another sweep than on rank 0: its text or a "
               "file its points read (or the content of one) differs between the nodes", cfg_path,
               cmd_mpi_host());
    if ((st = agree(size, rank, id != id0, m))) {
      spr_sweep_free(sw);
      free(shared_text);
      return finish(size, st);
    }
  }
  char *csv = spr_sweep_csv_path(out), *jpath = spr_journal_path(out);
  spr_journal *journal = NULL;
  int resumed = 0, had_journal = 0;
  st = 0;
  if (!csv || !jpath) {
    fprintf(stderr, "%s: out of memory\n", cmd_prog);
    st = 1;
  }
  /* rank 0: the outputs and the journal */
  if (!st && rank == 0) {
    const char *outs[3] = {out, csv, jpath};
    const char *what[3] = {"-o", "the CSV beside -o,", "the journal beside -o,"};
    spr_sweep_out *o = NULL;
    if ((st = check_inputs(&opt, sw, outs, what))) {
    } else if (spr_sweep_out_open(out, csv, &o)) { /* can both be written? */
      st = cmd_fail(1, NULL);
    } else {
      spr_sweep_out_abort(o);
      if (opt.resume && access(jpath, F_OK) == 0) {
        had_journal = 1;
        if (spr_journal_resume(jpath, sw, PACKAGE_VERSION, &journal, &resumed)) st = cmd_fail(1, NULL);
      } else {
        if (opt.resume)
          fprintf(stderr, "sweep: no journal %s: --resume starts from the first point\n", jpath);
        if (spr_journal_create(jpath, sw, PACKAGE_VERSION, &journal)) st = cmd_fail(1, NULL);
      }
      if (!st) {
        remove_stale(out);
        remove_stale(csv);
        remove_stale(jpath);
      }
    }
  }
  if (size > 1 && cmd_mpi_bcast(&st, sizeof st) != 0) cmd_mpi_abort(1);
  /* every rank: the memory of the points it runs at once (the ranks on a
   * node share its memory) */
  if (!st) {
    const int P = spr_sweep_npoints(sw);
    if (threads > P) threads = P;
    rc = spr_sweep_check_memory(sw, (int)threads * local_ranks, 0);
    st = agree(size, rank, rc ? 1 : 0, NULL);
    if (rc && rank == 0) cmd_fail(1, NULL);
    if (st && journal) {
      spr_journal_close(journal);
      journal = NULL;
      if (!had_journal) unlink(jpath); /* nothing ran: no journal */
    }
  }
  if (st) {
    spr_journal_close(journal);
    free(csv);
    free(jpath);
    spr_sweep_free(sw);
    free(shared_text);
    return finish(size, st);
  }
  cmd_signals();

  const int P = spr_sweep_npoints(sw);
  const spr_evaluator *ev = spr_sweep_evaluator(sw);
  int *todo = NULL, ntodo = 0;
  if (rank == 0) {
    todo = malloc((size_t)P * sizeof *todo);
    if (!todo) {
      fprintf(stderr, "%s: out of memory\n", cmd_prog);
      if (size > 1) cmd_mpi_abort(1);
      return 1;
    }
    for (int p = 0; p < P; p++)
      if (!spr_sweep_point_done(sw, p)) todo[ntodo++] = p;
    printf("sprintsim %s: sweep %s: %d point%s (", PACKAGE_VERSION, cfg_path, P, P == 1 ? "" : "s");
    for (int a = 0; a < spr_sweep_naxes(sw); a++)
      printf("%s%s x%d", a ? ", " : "", spr_sweep_axis_key(sw, a), spr_sweep_axis_nvalues(sw, a));
    printf("%s) x %d schemes, evaluator %s, ", spr_sweep_naxes(sw) ? "" : "no axes",
           spr_sweep_nschemes(sw), ev->name);
    if (size > 1) printf("%d MPI ranks x ", size);
    printf("%ld thread%s\n", threads, threads == 1 ? "" : "s");
    if (had_journal)
      printf("sweep: resuming from %s: %d of %d points finished, %d to run\n", jpath, resumed, P, ntodo);
    fflush(stdout);
  }
  engine e = {.sw = sw, .T = (int)threads, .P = P, .todo = ntodo, .ranks = size};
  atomic_init(&e.done_total, resumed);
  atomic_init(&e.done_session, 0);
  atomic_init(&e.running, 0);
  e.t0 = cmd_now_s();
  coord k = {&e, rank, size, journal, NULL, todo, ntodo};
  outcome oc = {INT_MAX, 0, "", 0, 0, 0, ""};
  if (engine_init(&e)) {
    fprintf(stderr, "%s: sweep: out of memory for %ld threads\n", cmd_prog, threads);
    if (size > 1) cmd_mpi_abort(1);
    return 1;
  }
  if (rank == 0) k.prog = cmd_progress_start(cmd_progress_wanted(&opt), sweep_status, &e);
  if (run_engine(&k, &oc)) {
    fprintf(stderr, "%s: sweep: cannot start %ld threads\n", cmd_prog, threads);
    if (size > 1) cmd_mpi_abort(1);
    return 1;
  }
  cmd_progress_stop(k.prog);
  engine_free(&e);
  int status = 0;
  if (rank == 0) {
    const int done = atomic_load(&e.done_total);
    if (oc.err_code) {
      fprintf(stderr, "%s: %s\n", cmd_prog, oc.err_msg);
      fprintf(stderr, "sweep: the finished points are kept in %s: remove the cause, then add "
              "--resume to go on\n", jpath);
      status = 1;
    } else if (oc.fatal) {
      fprintf(stderr, "%s: %s\n", cmd_prog, oc.fatal_msg);
      status = 1;
    } else if (oc.interrupted) {
      const char *why = "interrupted";
      status = oc.interrupted == 1 ? cmd_stop_status(&why) : 130;
      char where[48] = "";
      if (oc.interrupted == 2) snprintf(where, sizeof where, " (on rank %d)", oc.intr_rank);
      fprintf(stderr, "%s: %s%s after %d of %d points; %s and %s not written; the finished "
              "points are kept in %s: add --resume to go on\n", cmd_prog, why, where, done, P,
              out, csv, jpath);
    }
    spr_sweep_out *o = NULL;
    if (status) {
      spr_journal_close(journal);
    } else if (spr_sweep_out_open(out, csv, &o) || spr_sweep_out_commit(o, sw, PACKAGE_VERSION)) {
      status = cmd_fail(1, NULL);
      if (cmd_interrupted == SIGXFSZ)
        fprintf(stderr, "%s: the file size limit (ulimit -f) was reached\n", cmd_prog);
      /* every point finished: the journal holds them all, and a resume
       * only writes the outputs */
      fprintf(stderr, "sweep: %s and %s not written; all %d points are kept in %s: remove the "
              "cause (a full disk, a quota, the file size limit), then add --resume to write "
              "them\n", out, csv, P, jpath);
      spr_journal_close(journal);
    } else if (cmd_interrupted == SIGXFSZ) { /* a write past the limit while committing */
      unlink(out);
      unlink(csv);
      fprintf(stderr, "%s: the file size limit (ulimit -f) was reached; %s and %s not written\n",
              cmd_prog, out, csv);
      spr_journal_close(journal);
      status = 1;
    } else {
      if (spr_journal_remove(journal)) cmd_fail(0, "note"); /* the outputs are complete */
      printf("sweep: %s, %s (%d rows) in %.1f s\n", out, csv, P * spr_sweep_nschemes(sw),
             cmd_now_s() - e.t0);
    }
  }
  if (size > 1 && cmd_mpi_bcast(&status, sizeof status) != 0) cmd_mpi_abort(1);
  free(todo);
  free(csv);
  free(jpath);
  spr_sweep_free(sw);
  free(shared_text);
  return finish(size, status);
}
