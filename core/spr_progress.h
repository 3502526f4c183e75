/* spr_progress.h - how far a long library call has come, for its caller
 * to read.
 *
 * The library never prints.  A call that can take more than a few seconds
 * (the items of a model evaluation, the heads of a run's layer, the SPICE
 * jobs of a calibration step) takes an spr_progress the caller owns and
 * counts its finished units of work into it; the caller reads it from
 * another thread (sprintsim draws a progress line on stderr) whenever it
 * likes.  Step, don't call back: nothing in the library waits for, or
 * calls, the reader.
 *
 * Every field is atomic: a writer on any thread (OpenMP workers included)
 * and readers on others need no lock.  A reader may see a stage's new
 * total with the previous stage's count for an instant; it clamps.
 * A NULL spr_progress * is accepted by every function and does nothing.
 */
#ifndef SPR_PROGRESS_H
#define SPR_PROGRESS_H

#include <stdatomic.h>

typedef struct {
  _Atomic(const char *) unit; /* what is counted: "images", "heads" (a static string) */
  atomic_llong done;          /* units finished in the current stage */
  atomic_llong total;         /* units of the current stage, 0 unknown */
  atomic_int stage;           /* counts the stages begun (spr_progress_begin) */
} spr_progress;

/* Zero *p (no stage). */
void spr_progress_init(spr_progress *p);

/* A new stage of `total` units (>= 0) named `unit` (a string that outlives
 * p, usually a literal); done restarts at 0. */
void spr_progress_begin(spr_progress *p, const char *unit, long long total);

/* n more units finished (any thread). */
void spr_progress_add(spr_progress *p, long long n);

/* done units finished in all (one writer: a loop that knows its index). */
void spr_progress_set(spr_progress *p, long long done);

/* Read the current stage: *unit ("" before any stage), *done <= *total
 * when the total is known, *stage (0 before any).  Any output pointer
 * may be NULL. */
void spr_progress_read(const spr_progress *p, const char **unit, long long *done,
                       long long *total, int *stage);

#endif
