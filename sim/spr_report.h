/* spr_report.h - tables from a trace file alone (`sprintsim report`). */
#ifndef SPR_REPORT_H
#define SPR_REPORT_H

#include <stdio.h>

/* Print to out, from the committed trace at path: for every scheme in
 * /schemes, per layer and in total, the keep rate, bytes fetched and
 * reused, energy and cycles with speedup and energy reduction over dense,
 * and the accuracy metrics; then energy and busy cycles by component.
 * Returns 0, SPR_EIO (cannot open), SPR_EHDF5 (not a complete sprintsim
 * trace, or a dataset missing or of the wrong shape: the message names
 * the file and the dataset). */
int spr_report_print(const char *path, FILE *out);

/* One line (no newline) into buf[n] saying which comparison a run prints:
 * how SPRINT's thresholds were set (threshold.mode thr_mode, keep_rate,
 * per_head) and whether the baselines ran at their own settings or
 * matched per layer to SPRINT's realised keep rate (baselines.match).
 * Returns what snprintf returns. */
int spr_report_comparison(int thr_mode, double keep_rate, int per_head, int match, char *buf,
                          size_t n);

#endif
