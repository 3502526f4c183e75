/* spr_sysmem.c - the memory this process may use (spr_sysmem.h). */
#include "config.h"
#include "spr_sysmem.h"
#include "spr_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { PATH_MAX_ = 4096 };

typedef struct {
  double bytes;
  char *source;
  size_t n;
} limit;

/* A limit file's value: 1 and *v for a number, 0 for "max", a missing
 * file or anything else. */
static int read_limit(const char *path, double *v) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char buf[64] = "";
  int ok = fgets(buf, sizeof buf, f) != NULL;
  fclose(f);
  if (!ok) return 0;
  char *end;
  unsigned long long x = strtoull(buf, &end, 10);
  while (*end == ' ' || *end == '\n' || *end == '\t') end++;
  if (end == buf || *end || buf[0] == '-') return 0;
  *v = (double)x;
  return 1;
}

static void lower(limit *l, double v, const char *path) {
  if (v > 0 && v < l->bytes) {
    l->bytes = v;
    if (l->source && l->n) snprintf(l->source, l->n, "%s", path);
  }
}

/* The limit files `file` from mount/path up to mount. */
static void walk(limit *l, const char *mount, const char *path, const char *file) {
  char dir[PATH_MAX_];
  /* a cgroup outside this namespace ("/../..") is not below the mount:
   * only the mount's own level is ours to read */
  if (strstr(path, "/..") || strncmp(path, "..", 2) == 0) path = "/";
  if (snprintf(dir, sizeof dir, "%s%s%s", mount, path[0] == '/' ? "" : "/", path) >= (int)sizeof dir)
    return;
  const size_t base = strlen(mount);
  for (;;) {
    size_t len = strlen(dir);
    while (len > base && dir[len - 1] == '/') dir[--len] = '\0';
    char f[PATH_MAX_ + 64];
    double v;
    snprintf(f, sizeof f, "%s/%s", dir, file);
    if (read_limit(f, &v)) lower(l, v, f);
    if (len <= base) break;
    char *slash = strrchr(dir, '/');
    if (!slash || (size_t)(slash - dir) < base) break;
    *slash = '\0';
  }
}

static int is_dir_with(const char *dir, const char *file) {
  char p[PATH_MAX_ + 64];
  struct stat sb;
  snprintf(p, sizeof p, "%s/%s", dir, file);
  return stat(p, &sb) == 0;
}

int spr_sysmem_limit(const char *cgroup_root, const char *self_cgroup, double *bytes,
                     char *source, size_t n) {
  const long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || psize <= 0)
    return spr_error(SPR_EIO, "the physical memory is unknown (sysconf)");
  limit l = {(double)pages * (double)psize, source, n};
  if (source && n) snprintf(source, n, "physical memory");
  const char *root = cgroup_root ? cgroup_root : "/sys/fs/cgroup";
  FILE *f = fopen(self_cgroup ? self_cgroup : "/proc/self/cgroup", "r");
  char line[PATH_MAX_ + 256];
  while (f && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    /* "hierarchy-ID:controller-list:cgroup-path" */
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    *c1 = *c2 = '\0';
    const char *ctrl = c1 + 1, *path = c2 + 1;
    char mount[PATH_MAX_];
    if (!strcmp(line, "0") && !*ctrl) { /* v2: the unified hierarchy */
      snprintf(mount, sizeof mount, "%s", root);
      if (is_dir_with(mount, "cgroup.controllers")) walk(&l, mount, path, "memory.max");
      snprintf(mount, sizeof mount, "%s/unified", root);
      if (is_dir_with(mount, "cgroup.controllers")) walk(&l, mount, path, "memory.max");
      continue;
    }
    /* v1: the hierarchy that holds the memory controller */
    int memory = 0;
    for (const char *p = ctrl; *p;) {
      size_t k = strcspn(p, ",");
      if (k == 6 && !strncmp(p, "memory", 6)) memory = 1;
      p += k + (p[k] == ',');
    }
    if (!memory) continue;
    snprintf(mount, sizeof mount, "%s/memory", root);
    walk(&l, mount, path, "memory.limit_in_bytes");
  }
  if (f) fclose(f);
  *bytes = l.bytes;
  return 0;
}

spr_memstr spr_mem_str(double bytes) {
  spr_memstr m;
  if (bytes >= 1073741824.0) snprintf(m.s, sizeof m.s, "%.1f GiB", bytes / 1073741824.0);
  else snprintf(m.s, sizeof m.s, "%.1f MiB", bytes / 1048576.0);
  return m;
}
