/* spr_sysmem.h - how much memory this process may use.
 *
 * A run or sweep that would not fit is refused before it starts (the
 * kernel overcommits, so large mallocs succeed and the process dies later
 * of the OOM killer).  In a container, a batch job (Slurm) or a systemd
 * slice the limit is the cgroup's, often far below the machine's RAM.
 */
#ifndef SPR_SYSMEM_H
#define SPR_SYSMEM_H

#include <stddef.h>

/* The memory this process may use, in bytes: the smaller of the physical
 * memory and every memory limit of the cgroups it belongs to, from its own
 * cgroup up to the root of each hierarchy: cgroup v2 `memory.max` and
 * cgroup v1 `memory.limit_in_bytes` (hybrid hosts have both).
 * cgroup_root: where the cgroup file systems are mounted (NULL:
 *   "/sys/fs/cgroup"); v2 is looked for at the root itself and at
 *   "unified/", v1's memory controller at "memory/".
 * self_cgroup: the process's cgroups in the format of /proc/self/cgroup
 *   ("0::/path" for v2, "N:memory:/path" for v1; NULL: that file).
 *   Tests pass crafted folders and files.
 * A level whose folder or file is missing (a container sees its own
 * cgroup at the root of the mount), "max", an unparsable value, or a
 * path leading outside the mount ("/..") sets no limit.
 * *bytes receives the limit; source (n bytes, may be NULL) names it:
 * "physical memory" or the path of the limiting file.  Returns 0, or
 * SPR_EIO when the physical memory is unknown (sysconf). */
int spr_sysmem_limit(const char *cgroup_root, const char *self_cgroup, double *bytes,
                     char *source, size_t n);

/* An amount of memory for messages: "%.1f GiB" from 1 GiB up, "%.1f MiB"
 * below (a small limit or need printed as "0.0 GiB" said nothing).  The
 * text lives in the returned value: spr_mem_str(x).s within one call. */
typedef struct {
  char s[32];
} spr_memstr;
spr_memstr spr_mem_str(double bytes);

#endif
