/* spr_test.h - small helpers shared by the CUnit test programs. */
#ifndef SPR_TEST_H
#define SPR_TEST_H

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

#endif
