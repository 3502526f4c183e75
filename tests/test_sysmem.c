/* test_sysmem.c - the memory limit (core/spr_sysmem.c) on crafted cgroup
 * folders: v2, v1, hybrid hosts, a container's view, ancestors, "max",
 * unparsable values, paths outside the mount; the run's refusal
 * estimate; and the arena of a run's buffers (core/spr_arena.c). */
#include "config.h"
#include "spr_arena.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_pipeline.h"
#include "spr_sysmem.h"
#include "spr_test.h"

#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[512];
static double ram;

static void put(const char *rel, const char *text) {
  char p[1024], dir[1024];
  snprintf(p, sizeof p, "%s/%s", root, rel);
  snprintf(dir, sizeof dir, "%s", p);
  for (char *s = dir + strlen(root) + 1; (s = strchr(s, '/')); s++) { /* mkdir -p */
    *s = '\0';
    mkdir(dir, 0700);
    *s = '/';
  }
  FILE *f = fopen(p, "w");
  CU_ASSERT_FATAL(f != NULL);
  fputs(text, f);
  fclose(f);
}

static void clean(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  CU_ASSERT(system(cmd) == 0);
}

/* The limit for the process's cgroup file `self` (text). */
static double lim(const char *self, char *src, size_t n) {
  put("self", self);
  char sys[600], p[600];
  snprintf(sys, sizeof sys, "%s/sys", root);
  snprintf(p, sizeof p, "%s/self", root);
  double b = -1;
  CU_ASSERT_EQUAL(spr_sysmem_limit(sys, p, &b, src, n), 0);
  return b;
}

static void setup(void) {
  spr_test_path(root, sizeof root, "sysmem", "");
  clean();
  mkdir(root, 0700);
  char src[64];
  CU_ASSERT_EQUAL(spr_sysmem_limit("/nonexistent", "/nonexistent", &ram, src, sizeof src), 0);
  CU_ASSERT(ram > 1e8);
  CU_ASSERT_STRING_EQUAL(src, "physical memory");
}

static void test_v2(void) {
  setup();
  char src[1024];
  put("sys/cgroup.controllers", "cpu memory\n");
  put("sys/job/step/memory.max", "1073741824\n");
  put("sys/job/memory.max", "max\n");
  CU_ASSERT_EQUAL(lim("0::/job/step\n", src, sizeof src), 1073741824.0);
  SPR_ASSERT_CONTAINS(src, "/sys/job/step/memory.max");
  /* an ancestor's lower limit holds for its descendants */
  put("sys/job/memory.max", "536870912\n");
  CU_ASSERT_EQUAL(lim("0::/job/step\n", src, sizeof src), 536870912.0);
  SPR_ASSERT_CONTAINS(src, "/sys/job/memory.max");
  /* a container with a cgroup namespace sees its own cgroup at the root */
  put("sys/memory.max", "268435456\n");
  CU_ASSERT_EQUAL(lim("0::/\n", src, sizeof src), 268435456.0);
  /* "max" everywhere, a limit above the RAM, unparsable text: the RAM */
  put("sys/memory.max", "max\n");
  put("sys/job/memory.max", "max\n");
  put("sys/job/step/memory.max", "lots\n");
  CU_ASSERT_EQUAL(lim("0::/job/step\n", src, sizeof src), ram);
  CU_ASSERT_STRING_EQUAL(src, "physical memory");
  put("sys/job/step/memory.max", "1152921504606846976\n");
  CU_ASSERT_EQUAL(lim("0::/job/step\n", src, sizeof src), ram);
  /* a cgroup outside the namespace: nothing above the mount is read */
  put("memory.max", "1048576\n");
  put("sys/memory.max", "134217728\n");
  CU_ASSERT_EQUAL(lim("0::/../..\n", src, sizeof src), 134217728.0);
  clean();
}

static void test_v1(void) {
  setup();
  char src[1024];
  /* a v1 host: "unlimited" is 2^63 rounded to pages */
  put("sys/memory/memory.limit_in_bytes", "9223372036854771712\n");
  put("sys/memory/api/x/memory.limit_in_bytes", "9223372036854771712\n");
  CU_ASSERT_EQUAL(lim("4:memory:/api/x\n3:cpu:/\n", src, sizeof src), ram);
  put("sys/memory/api/x/memory.limit_in_bytes", "1073741824\n");
  CU_ASSERT_EQUAL(lim("4:memory:/api/x\n3:cpu:/\n", src, sizeof src), 1073741824.0);
  SPR_ASSERT_CONTAINS(src, "/sys/memory/api/x/memory.limit_in_bytes");
  /* the controller may share its hierarchy: "memory,cpu" */
  CU_ASSERT_EQUAL(lim("5:cpuacct,memory:/api/x\n", src, sizeof src), 1073741824.0);
  /* a "memoryx" controller is not the memory controller */
  CU_ASSERT_EQUAL(lim("5:memoryx:/api/x\n", src, sizeof src), ram);
  /* a container without a cgroup namespace: its path is not below the
   * mount, whose root is its own cgroup */
  put("sys/memory/memory.limit_in_bytes", "805306368\n");
  CU_ASSERT_EQUAL(lim("4:memory:/docker/0123abcd\n", src, sizeof src), 805306368.0);
  clean();
}

static void test_hybrid(void) {
  setup();
  char src[1024];
  /* v2 at unified/ without the memory controller, v1 memory beside it */
  put("sys/unified/cgroup.controllers", "\n");
  put("sys/memory/slice/memory.limit_in_bytes", "2147483648\n");
  CU_ASSERT_EQUAL(lim("4:memory:/slice\n0::/slice\n", src, sizeof src), 2147483648.0);
  /* both: the smaller */
  put("sys/unified/slice/memory.max", "1610612736\n");
  CU_ASSERT_EQUAL(lim("4:memory:/slice\n0::/slice\n", src, sizeof src), 1610612736.0);
  SPR_ASSERT_CONTAINS(src, "/sys/unified/slice/memory.max");
  /* v2 at the root is not looked for without its cgroup.controllers */
  put("sys/slice/memory.max", "1048576\n");
  CU_ASSERT_EQUAL(lim("0::/slice\n", src, sizeof src), 1610612736.0);
  /* no cgroup file at all: the RAM */
  double b = -1;
  CU_ASSERT_EQUAL(spr_sysmem_limit(root, "/nonexistent/cgroup", &b, NULL, 0), 0);
  CU_ASSERT_EQUAL(b, ram);
  clean();
}

/* Amounts in messages: MiB below 1 GiB, GiB from there (the 40 MiB limit
 * of a cgroup was printed as "0.0 GiB"). */
static void test_mem_str(void) {
  CU_ASSERT_STRING_EQUAL(spr_mem_str(40.0 * 1048576).s, "40.0 MiB");
  CU_ASSERT_STRING_EQUAL(spr_mem_str(0).s, "0.0 MiB");
  CU_ASSERT_STRING_EQUAL(spr_mem_str(1073741823.0).s, "1024.0 MiB");
  CU_ASSERT_STRING_EQUAL(spr_mem_str(1073741824.0).s, "1.0 GiB");
  CU_ASSERT_STRING_EQUAL(spr_mem_str(24.0 * 1073741824.0).s, "24.0 GiB");
}

static void test_run_estimate(void) {
  /* the refusal's estimate grows with N^2 per head and with threads */
  spr_config c;
  spr_config_default(&c);
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "test"), 0);
  const double a = spr_run_mem_bytes(&c, 1), b = spr_run_mem_bytes(&c, 2);
  CU_ASSERT(a > 0 && b > a);
  c.wl.seq_len *= 2;
  c.block_rows = c.wl.seq_len; /* held whole, as N = 512 is by default */
  const double a2 = spr_run_mem_bytes(&c, 1);
  /* N^2 terms dominate (x 4), N d terms double: 2.99 at N = 512 -> 1024 */
  CU_ASSERT(a2 > 2.8 * a && a2 < 4 * a);
  /* by default N = 1024 runs in blocks: no head's N x N arrays */
  c.block_rows = 0;
  const double a2b = spr_run_mem_bytes(&c, 1);
  CU_ASSERT(a2b < 0.5 * a2);
  /* more threads than heads hold no more workspaces */
  c.wl.n_heads = 2;
  CU_ASSERT_EQUAL(spr_run_mem_bytes(&c, 2), spr_run_mem_bytes(&c, 64));
}

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_PER_BUFFER 1 /* one allocation per buffer (spr_arena.h) */
#else
#define ARENA_PER_BUFFER 0
#endif

/* Buffers of many sizes: aligned, zero, and disjoint (each filled with its
 * own byte, all checked after the last); a NULL arena and a size that
 * cannot be mapped give NULL. */
static void test_arena_buffers(void) {
  spr_arena *a = spr_arena_new();
  CU_ASSERT_FATAL(a != NULL);
  enum { NB = 300 };
  unsigned char *p[NB];
  size_t sz[NB];
  uint64_t x = 12345;
  for (int i = 0; i < NB; i++) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    sz[i] = i == 7 ? 0 : i == 150 ? (size_t)20 << 20 : (size_t)(x >> 40) % 300000;
    p[i] = spr_arena_alloc(a, sz[i]);
    CU_ASSERT_FATAL(p[i] != NULL);
    CU_ASSERT_EQUAL((uintptr_t)p[i] % 64, 0);
    size_t nz = 0;
    for (size_t k = 0; k < sz[i]; k++) nz += p[i][k] != 0;
    CU_ASSERT_EQUAL(nz, 0);
    memset(p[i], i & 255, sz[i]);
  }
  size_t bad = 0, total = 0;
  for (int i = 0; i < NB; i++) {
    total += sz[i];
    for (size_t k = 0; k < sz[i]; k++) bad += p[i][k] != (unsigned char)(i & 255);
  }
  CU_ASSERT_EQUAL(bad, 0);
  /* 16 MiB chunks: no more than the buffers' bytes plus one chunk and the
   * buffer of 20 MiB's rounding */
  CU_ASSERT(spr_arena_reserved(a) >= total);
  if (!ARENA_PER_BUFFER) CU_ASSERT(spr_arena_reserved(a) <= total + ((size_t)18 << 20) + NB * 64);
  CU_ASSERT_PTR_NULL(spr_arena_alloc(a, SIZE_MAX));
  /* no such mapping (AddressSanitizer's allocator aborts on such a size,
   * as it would for any malloc of the library) */
  if (!ARENA_PER_BUFFER) CU_ASSERT_PTR_NULL(spr_arena_alloc(a, SIZE_MAX / 2));
  CU_ASSERT_PTR_NULL(spr_arena_alloc(NULL, 64));
  CU_ASSERT_EQUAL(spr_arena_reserved(NULL), 0);
  spr_arena_free(a);
  spr_arena_free(NULL);
}

/* A buffer too big for the current chunk gets a chunk of its own, and the
 * next small buffer still comes from the room left in the first one;
 * chunks are aligned to 2 MiB and carry the huge-page advice (VmFlags
 * "hg" in /proc/self/smaps). */
static void test_arena_chunks(void) {
  if (ARENA_PER_BUFFER) return;
  spr_arena *a = spr_arena_new();
  CU_ASSERT_FATAL(a != NULL);
  char *p1 = spr_arena_alloc(a, 100), *big = spr_arena_alloc(a, (size_t)40 << 20),
       *p2 = spr_arena_alloc(a, 1000);
  CU_ASSERT_FATAL(p1 && big && p2);
  CU_ASSERT_EQUAL((uintptr_t)p1 % (2u << 20), 0);
  CU_ASSERT_EQUAL((uintptr_t)big % (2u << 20), 0);
  CU_ASSERT_PTR_EQUAL(p2, p1 + 128);
  CU_ASSERT_EQUAL(spr_arena_reserved(a), ((size_t)16 << 20) + ((size_t)40 << 20));
  big[((size_t)40 << 20) - 1] = 1;
  p1[0] = 1;
#ifdef __linux__
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f) {
    char line[512];
    int in = 0, found = 0, hg = 0;
    while (fgets(line, sizeof line, f)) {
      unsigned long lo, hi;
      if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
        in = (uintptr_t)p1 >= lo && (uintptr_t)p1 < hi;
        found += in;
      } else if (in && !strncmp(line, "VmFlags:", 8)) {
        hg = strstr(line, " hg") != NULL;
      }
    }
    fclose(f);
    CU_ASSERT_EQUAL(found, 1);
    CU_ASSERT_EQUAL(hg, 1);
  }
#endif
  spr_arena_free(a);
}

int main(void) {
  CU_TestInfo tests[] = {{"cgroup v2", test_v2},
                         {"amounts in messages", test_mem_str},
                         {"cgroup v1", test_v1},
                         {"hybrid hosts", test_hybrid},
                         {"the run's estimate", test_run_estimate},
                         {"arena: buffers", test_arena_buffers},
                         {"arena: chunks", test_arena_chunks},
                         CU_TEST_INFO_NULL};
  return spr_test_run("sysmem", tests);
}
