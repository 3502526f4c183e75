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
 * Returns the number of files tried (11). */
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

#endif
