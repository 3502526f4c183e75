/* spr_cal_workload.h - a workload's programmed keys and query codes for
 * the calibration's arrays ([calibrate] levels = workload;
 * docs/calibration.md section 6).
 *
 * The random arrays of the IR-drop, column-noise and read-energy steps
 * take by default levels uniform over all 2^cell_bits levels; the scoring
 * arrays of a real workload hold far lower conductances (a differential
 * pair has one cell at level |k|, the other at level 0, and key MSBs sit
 * mostly near 0).  With levels = workload the steps take their arrays
 * from the programmed arrays of the configuration's own workload instead:
 *   synthetic  the preset's heads, generated with run.seed as `run` does;
 *   qkv        every layer and head of workload.qkv_item of
 *              workload.qkv_file (sizes resolved from the file);
 *   model      the keys of every layer and head of the model file's first
 *              evaluation item (image workload.first_image of
 *              workload.dataset, or text window workload.first_window),
 *              computed by its forward pass with exact attention.
 * Keys are quantized as the run quantizes them (crossbar.key_bits, then
 * the key_msb_bits MSBs), queries to analog.query_bits.
 *
 * A calibration array of R x C cells is one tile of one head's programmed
 * arrays (docs/model.md section 2): cell (i, c) holds dimension r0 + i of
 * key k0 + c / 2, polarity c % 2 (level max(k, 0) in the even column,
 * max(-k, 0) in the odd one), G = g_min + level dG; cells beyond the
 * head's d dimensions or n keys are idle at g_min.  Nothing here prints or
 * exits; errors name the file and the key. */
#ifndef SPR_CAL_WORKLOAD_H
#define SPR_CAL_WORKLOAD_H

#include <stdint.h>

#include "spr_params.h"

typedef struct {
  int heads;        /* layers x heads of the workload */
  int n, d;         /* tokens (keys) and dimensions of every head */
  int8_t *kmsb;     /* heads x n x d programmed key codes */
  int8_t *q;        /* heads x n x d query codes (analog.query_bits) */
  double q_rms;     /* RMS of the query codes over every head */
  char what[1024];  /* "synthetic bert-base, 12 layers x 12 heads, N = 512, d = 64, seed 1" */
} spr_cal_workload;

/* Read the workload of resolved configuration c (its [workload] section
 * and run.seed) into *w (free with spr_cal_workload_free).  origin names
 * the configuration in messages.  Returns 0 or the reader's error
 * (SPR_EIO, SPR_EHDF5, SPR_ECONFIG, SPR_EINVAL, SPR_ENOMEM), the message
 * naming the file (workload.qkv_file, workload.model, workload.dataset)
 * and what does not match. */
int spr_cal_workload_load(const spr_config *c, const char *origin, spr_cal_workload *w);
void spr_cal_workload_free(spr_cal_workload *w); /* zeroes *w; NULL and zeroed: no-op */

/* Conductances G (R x C, row-major, siemens; nominal levels, no
 * variation) of the tile of head `head` whose first key is k0 and first
 * dimension r0 (model above). */
void spr_cal_workload_array(const spr_cal_workload *w, const spr_xbar_params *x, int head, int k0,
                            int r0, int R, int C, double *G);

#endif
