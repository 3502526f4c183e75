/* fuzz_common.h - shared by the libFuzzer harnesses of tests/fuzz/
 * (docs/fuzzing.md): scratch files, a reader of structure recipes, and
 * the check that turns a broken property into a crash the fuzzer keeps.
 *
 * Every harness defines LLVMFuzzerTestOneInput; built with
 * -fsanitize=fuzzer it is a libFuzzer target (make fuzz), built with
 * tests/fuzz/standalone.c it replays files (make check's regression run
 * of the seed corpora and of tests/data/hdf5-crashers). */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "spr_error.h"
#include "spr_h5r.h"

/* A property of sprintsim failed: print and abort (the fuzzer records the
 * input as a crash). */
#define FUZZ_CHECK(cond, ...)                                          \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d): ", #cond, __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                                    \
      fprintf(stderr, "\n  last message: %s\n", spr_errmsg());         \
      abort();                                                         \
    }                                                                  \
  } while (0)

/* A scratch folder of this process (created once) and a file in it. */
static inline const char *fuzz_path(const char *name) {
  static char dir[256];
  static char buf[4][512];
  static int k;
  if (!dir[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/sprintsim-fuzz-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) abort();
  }
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static inline void fuzz_write(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (n && fwrite(data, 1, n, f) != n) abort();
  if (fclose(f)) abort();
}

/* Every error is a message naming the file it is about. */
static inline void fuzz_check_names(int rc, const char *path) {
  const char *base = strrchr(path, '/');
  FUZZ_CHECK(rc >= -9 && rc < 0, "error code %d", rc);
  FUZZ_CHECK(strstr(spr_errmsg(), base ? base + 1 : path) != NULL, "the message does not name %s", path);
}

/* Once per process: libhdf5 quiet for the harness's own calls, the
 * isolated reader's limits short (a loop ends in 2 s of CPU;
 * SPRINTSIM_H5_LIMITS overrides as for the command); with
 * FUZZ_INPROCESS=1 the reader runs libhdf5 in this process (coverage of
 * the server code, and libhdf5's own crashes become the fuzzer's). */
static inline void fuzz_init(void) {
  static int done;
  if (done) return;
  done = 1;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  spr_h5r_limits l;
  spr_h5r_limits_default(&l);
  l.cpu_s = 2;
  l.wall_s = 30;
  const char *ip = getenv("FUZZ_INPROCESS");
  l.in_process = ip && *ip == '1';
  const char *env = getenv("SPRINTSIM_H5_LIMITS"); /* as the command takes it */
  if (env && *env && spr_h5r_parse_limits(env, &l)) abort();
  spr_h5r_set_limits(&l);
}

/* --- structure recipes: the fuzz input read as a stream of choices ------- */

typedef struct {
  const uint8_t *p;
  size_t n;
} recipe;



/* A choice in [0, max) (0 once the input is used up). */
static inline unsigned pick(recipe *r, unsigned max) {
  if (max <= 1) return 0;
  unsigned v = 0;
  if (r->n) {
    v = r->p[0];
    r->p++;
    r->n--;
  }
  if (max > 256 && r->n) {
    v = v << 8 | r->p[0];
    r->p++;
    r->n--;
  }
  return v % max;
}

/* A double: mostly ordinary values, sometimes special ones. */
static inline double pick_double(recipe *r) {
  switch (pick(r, 16)) {
  case 0: return NAN;
  case 1: return INFINITY;
  case 2: return -INFINITY;
  case 3: return 0.0;
  case 4: return 1e300;
  case 5: return -3.5e38;
  case 6: return 5e-324;
  default: return ((double)pick(r, 65536) - 32768.0) / 1024.0;
  }
}

#endif

/* The start of a file harness's LLVMFuzzerTestOneInput: fuzz_init, inputs
 * over 1 MiB skipped, then the input made the HDF5 file at path: its bytes,
 * or (FUZZ_STRUCT) the file the harness's build(path, &recipe) makes from
 * them (an input it cannot build is skipped). */
#ifdef FUZZ_STRUCT
#define FUZZ_INPUT_FILE(path, data, size)        \
  do {                                          \
    fuzz_init();                                \
    if ((size) > 1 << 20) return 0;             \
    recipe fuzz_r_ = {(data), (size)};          \
    if (build((path), &fuzz_r_)) return 0;      \
  } while (0)
#else
#define FUZZ_INPUT_FILE(path, data, size)        \
  do {                                          \
    fuzz_init();                                \
    if ((size) > 1 << 20) return 0;             \
    fuzz_write((path), (data), (size));         \
  } while (0)
#endif
