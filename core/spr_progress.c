/* spr_progress.c - progress counters polled by the caller (spr_progress.h). */
#include "spr_progress.h"

#include <stddef.h>

void spr_progress_init(spr_progress *p) {
  if (!p) return;
  atomic_store(&p->unit, "");
  atomic_store(&p->done, 0);
  atomic_store(&p->total, 0);
  atomic_store(&p->stage, 0);
}

void spr_progress_begin(spr_progress *p, const char *unit, long long total) {
  if (!p) return;
  /* done first: a reader that sees the new total never sees the old count
   * above it for long (it clamps anyway) */
  atomic_store(&p->done, 0);
  atomic_store(&p->total, total > 0 ? total : 0);
  atomic_store(&p->unit, unit ? unit : "");
  atomic_fetch_add(&p->stage, 1);
}

void spr_progress_add(spr_progress *p, long long n) {
  if (p) atomic_fetch_add(&p->done, n);
}

void spr_progress_set(spr_progress *p, long long done) {
  if (p) atomic_store(&p->done, done);
}

void spr_progress_read(const spr_progress *p, const char **unit, long long *done,
                       long long *total, int *stage) {
  const char *u = "";
  long long d = 0, t = 0;
  int s = 0;
  if (p) {
    s = atomic_load(&((spr_progress *)p)->stage);
    u = atomic_load(&((spr_progress *)p)->unit);
    t = atomic_load(&((spr_progress *)p)->total);
    d = atomic_load(&((spr_progress *)p)->done);
    if (!u) u = "";
    if (t > 0 && d > t) d = t;
  }
  if (unit) *unit = u;
  if (done) *done = d;
  if (total) *total = t;
  if (stage) *stage = s;
}
