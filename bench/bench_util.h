/* bench_util.h - timing helpers shared by the benchmark programs. */
#ifndef SPR_BENCH_UTIL_H
#define SPR_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* OpenBLAS's own (as in its cblas.h) */
char *openblas_get_corename(void);
char *openblas_get_config(void);

/* The BLAS whose SGEMM is the unit of GEMM-eq: its speed depends on the
 * kernels OpenBLAS runs, the ones it picked for this CPU or the ones
 * OPENBLAS_CORETYPE names (the Zen 5 machines here set Haswell, OpenBLAS's
 * AVX2 kernels: docs/performance.md section 6). */
static inline void print_blas(void) {
  const char *forced = getenv("OPENBLAS_CORETYPE");
  printf("  BLAS: %s, sgemm kernels for %s%s%s\n", openblas_get_config(), openblas_get_corename(),
         forced && *forced ? ", OPENBLAS_CORETYPE=" : "", forced && *forced ? forced : "");
}

/* Monotonic wall-clock seconds. */
static inline double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v). */
static inline double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
