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

/* spr_report_print in a format of spr_table.h: SPR_TABLE_TEXT (the same
 * text), SPR_TABLE_CSV or SPR_TABLE_JSON (tables "layers" (every layer's
 * rows, then the rows of layer "all"), "energy_by_component_J",
 * "cycles_by_component" (busy cycles; the row "latency" is the scheme's
 * total), "device_model_keys" when the run applied a device model; the
 * JSON's members "file", "n_layers", "n_heads", "seq_len",
 * "device_model"; values unscaled, SI).  A file that is not a run trace is
 * named for what it is (a sweep file, a Q/K/V file, a device model, a ViT
 * model or evaluation, a crossbar matrix, or its `format` attribute):
 * SPR_EHDF5. */
int spr_report_write(const char *path, FILE *out, int format);

/* One line (no newline) into buf[n] saying which comparison a run prints:
 * how SPRINT's thresholds were set (threshold.mode thr_mode, keep_rate,
 * per_head) and whether the baselines ran at their own settings or
 * matched per layer to SPRINT's realised keep rate (baselines.match).
 * Returns what snprintf returns. */
int spr_report_comparison(int thr_mode, double keep_rate, int per_head, int match, char *buf,
                          size_t n);

#endif
