/* spr_test.h - small helpers shared by the CUnit test programs. */
#ifndef SPR_TEST_H
#define SPR_TEST_H

#include <CUnit/Basic.h>
#include "spr_error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/time.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <glob.h>

/* Register tests = {{"name", fn}, ..., {NULL, NULL}} as one suite, run it
 * verbosely and return the process exit status (0 when all passed). */
static inline int spr_test_run(const char *suite, const CU_TestInfo *tests) {
  if (CU_initialize_registry() != CUE_SUCCESS) return 2;
  CU_SuiteInfo suites[] = {{suite, NULL, NULL, NULL, NULL, (CU_TestInfo *)tests},
                           CU_SUITE_INFO_NULL};
  if (CU_register_suites(suites) != CUE_SUCCESS) {
    fprintf(stderr, "%s: cannot register: %s\n", suite, CU_get_error_msg());
    CU_cleanup_registry();
    return 2;
  }
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned fails = CU_get_number_of_failures();
  unsigned run = CU_get_number_of_tests_run();
  CU_cleanup_registry();
  if (run == 0) return 2;
  return fails ? 1 : 0;
}

/* Assert that haystack contains needle, printing both when not. */
#define SPR_ASSERT_CONTAINS(haystack, needle)                                  \
  do {                                                                         \
    const char *h_ = (haystack), *n_ = (needle);                               \
    int ok_ = h_ && strstr(h_, n_) != NULL;                                    \
    if (!ok_) fprintf(stderr, "\n  expected '%s' in '%s'\n", n_, h_ ? h_ : "(null)"); \
    CU_ASSERT(ok_);                                                            \
  } while (0)

/* A scratch path in the build tree for test outputs (never the source
 * tree): "tests/tmp-<tag>-<pid><suffix>". */
static inline void spr_test_path(char *buf, size_t n, const char *tag,
                                 const char *suffix) {
  const char *b = getenv("top_builddir");
  snprintf(buf, n, "%s/tests/tmp-%s-%ld%s", b ? b : ".", tag, (long)getpid(), suffix);
}

/* Every reproducer of tests/data/hdf5-crashers (crafted files on which
 * libhdf5 1.10.8 crashes, loops or allocates without bound) through
 * `reader` (returning a spr_error code): each must be refused with an
 * error that names the file, within 30 s, and this process must live on.
 * Returns the number of files tried (13). */
static inline int spr_test_crashers(int (*reader)(const char *path, void *arg), void *arg) {
  const char *src = getenv("top_srcdir");
  char dir[512];
  snprintf(dir, sizeof dir, "%s/tests/data/hdf5-crashers", src ? src : ".");
  DIR *d = opendir(dir);
  CU_ASSERT_PTR_NOT_NULL(d);
  if (!d) return 0;
  int files = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strstr(e->d_name, ".h5")) continue;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    files++;
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    int rc = reader(p, arg);
    gettimeofday(&t1, NULL);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-6 * (double)(t1.tv_usec - t0.tv_usec);
    if (getenv("SPR_TEST_VERBOSE")) fprintf(stderr, "\n  %s: rc %d, %.2f s: %s", e->d_name, rc, s, spr_errmsg());
    if (rc == 0) fprintf(stderr, "\n  %s was accepted", e->d_name);
    CU_ASSERT(rc != 0);
    SPR_ASSERT_CONTAINS(spr_errmsg(), e->d_name);
    CU_ASSERT(s < 30);
  }
  closedir(d);
  return files;
}

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer's check at exit spins without end in a child forked from a
 * process that had other threads (OpenMP's pool): it tries to stop threads
 * that exist only in the parent.  The full-disk children turn it off; the
 * parents keep it. */
static int spr_test_lsan_off;
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void) { return spr_test_lsan_off; }
#define SPR_TEST_LSAN_OFF() (spr_test_lsan_off = 1)
#else
#define SPR_TEST_LSAN_OFF() ((void)0)
#endif

/* A writer under a full disk: writer(path, arg) runs in a child process
 * whose files may not grow past `limit` bytes (RLIMIT_FSIZE with SIGXFSZ
 * ignored: write() fails with EFBIG as it fails with ENOSPC on a full
 * disk; no root needed).  Checks that the child ended normally through
 * exit() (so libhdf5's exit handler did not crash), that the writer
 * failed with a message naming path, and that neither path nor a
 * temporary path.tmp.* is left.  Returns the writer's code (0 when it
 * wrongly succeeded). */
static inline int spr_test_full_disk(int (*writer)(const char *path, void *arg), void *arg,
                                     const char *path, long long limit) {
  int fd[2];
  if (pipe(fd) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = (rlim_t)limit;
    setrlimit(RLIMIT_FSIZE, &rl);
    int rc = writer(path, arg);
    char msg[1100];
    snprintf(msg, sizeof msg, "%d %s", rc, spr_errmsg());
    if (write(fd[1], msg, strlen(msg) + 1) < 0) _exit(3);
    close(fd[1]);
    SPR_TEST_LSAN_OFF();
    exit(0);
  }
  close(fd[1]);
  char msg[1100] = "";
  size_t got = 0;
  for (ssize_t r; got < sizeof msg - 1 && (r = read(fd[0], msg + got, sizeof msg - 1 - got)) > 0;) got += (size_t)r;
  msg[got] = '\0';
  close(fd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    fprintf(stderr, "\n  limit %lld: the writer's process ended by %s %d", limit,
            WIFSIGNALED(st) ? "signal" : "status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  int rc = atoi(msg);
  const char *m = strchr(msg, ' ');
  m = m ? m + 1 : "";
  if (getenv("SPR_TEST_VERBOSE")) fprintf(stderr, "\n  limit %lld: rc %d: %s", limit, rc, m);
  if (rc == 0) fprintf(stderr, "\n  limit %lld: the writer succeeded", limit);
  CU_ASSERT(rc != 0);
  const char *base = strrchr(path, '/');
  SPR_ASSERT_CONTAINS(m, base ? base + 1 : path);
  struct stat sb;
  CU_ASSERT(stat(path, &sb) != 0);
  char pat[1100];
  snprintf(pat, sizeof pat, "%s.tmp.*", path);
  glob_t g;
  int left = glob(pat, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
  if (left) fprintf(stderr, "\n  limit %lld: %s left", limit, g.gl_pathv[0]);
  if (left) globfree(&g);
  CU_ASSERT_EQUAL(left, 0);
  return rc;
}

/* spr_test_full_disk at several sizes below `full` (the size of the
 * complete file): nothing written, a few bytes, and fractions up to one
 * byte short.  Returns the number of levels tried. */
static inline int spr_test_full_disk_levels(int (*writer)(const char *path, void *arg), void *arg,
                                            const char *path, long long full) {
  const long long lv[] = {0, 1, 512, full / 16, full / 4, full / 2, full * 3 / 4, full - 4096, full - 1};
  long long last = -1;
  int n = 0;
  for (size_t i = 0; i < sizeof lv / sizeof lv[0]; i++) {
    if (lv[i] <= last || lv[i] < 0 || lv[i] >= full) continue;
    last = lv[i];
    spr_test_full_disk(writer, arg, path, lv[i]);
    n++;
  }
  return n;
}

#endif
