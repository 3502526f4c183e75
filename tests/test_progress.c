/* test_progress.c - the commands' progress thread (sim/cmd_progress.c)
 * against forks: a fork made while the thread renders waits until the
 * tick has ended, so the child never holds a copy of a tick in progress
 * (docs/isolation.md: under AddressSanitizer such a child waited forever
 * on a lock the tick held), and the thread keeps drawing between forks. */
#include "cmd.h"
#include "spr_test.h"

#include <stdatomic.h>
#include <time.h>

/* The command's clock (cmd_common.c, not linked here). */
double cmd_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_s(double s) {
  struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&t, &t) != 0) {
  }
}

/* A render function that stays inside its tick for 0.3 s. */
typedef struct {
  atomic_int in_tick, ticks;
  _Atomic double start; /* of the last tick */
} slow_src;

static int slow_render(void *user, char *buf, size_t n, int *major) {
  slow_src *s = user;
  atomic_store(&s->start, cmd_now_s());
  atomic_store(&s->in_tick, 1);
  atomic_fetch_add(&s->ticks, 1);
  sleep_s(0.3);
  atomic_store(&s->in_tick, 0);
  *major = 0;
  return -1; /* nothing drawn: the test's stderr stays clean */
}

static void test_fork_waits_for_tick(void) {
  slow_src s;
  atomic_init(&s.in_tick, 0);
  atomic_init(&s.ticks, 0);
  atomic_init(&s.start, 0.0);
  CU_ASSERT_PTR_NULL(cmd_progress_start(0, slow_render, &s)); /* not enabled */
  cmd_progress *p = cmd_progress_start(1, slow_render, &s);
  CU_ASSERT_FATAL(p != NULL);
  /* the thread renders at once, then every 0.2 s after each 0.3 s tick:
   * it is inside a tick 60% of the time, so forks at 40 moments over
   * 2 s would meet one if forks did not wait */
  int inside = 0, forks = 0;
  for (int k = 0; k < 40; k++) {
    sleep_s(0.05);
    const double t0 = cmd_now_s();
    const int before = atomic_load(&s.in_tick);
    const double left = 0.3 - (t0 - atomic_load(&s.start)); /* at least this much of the tick */
    pid_t pid = fork();
    if (pid == 0) _exit(atomic_load(&s.in_tick)); /* what the child inherited */
    CU_ASSERT_FATAL(pid > 0);
    const double waited = cmd_now_s() - t0;
    int ws = 0;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &ws, 0), pid);
    CU_ASSERT(WIFEXITED(ws));
    CU_ASSERT_EQUAL(WEXITSTATUS(ws), 0);
    /* a fork that found the thread well inside a tick waited for its end */
    if (before && left > 0.05) {
      inside++;
      CU_ASSERT(waited > 0.02);
    }
    forks++;
  }
  CU_ASSERT_EQUAL(forks, 40);
  CU_ASSERT(inside > 0); /* the test met ticks in progress */
  const int ticks = atomic_load(&s.ticks);
  CU_ASSERT(ticks >= 3); /* the thread went on drawing between the forks */
  cmd_progress_stop(p);
  printf("\n  %d forks, %d met a tick and waited, %d ticks\n", forks, inside, ticks);
}

int main(void) {
  static const CU_TestInfo tests[] = {
      {"a fork waits for the tick in progress", test_fork_waits_for_tick},
      {NULL, NULL},
  };
  return spr_test_run("progress", tests);
}
