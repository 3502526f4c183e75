/* spr_wear.h - wear of SPRINT's scoring arrays: SPRINT programs the key
 * MSBs of every sequence into its scoring arrays (the ledger's xbar_write,
 * docs/energy.md section 8), so each scoring cell is written again for
 * every sequence and the arrays wear out after `endurance` writes per cell.
 *
 * For one sequence (a run: every layer and head of the workload):
 *   C_seq  = cells programmed per sequence (sum over heads of 2 n d)
 *   C_head = cells of the largest head (2 n d)
 *   S      = physical scoring cells (wear.scoring_cells); S = 0 means
 *            every head of every layer has arrays of its own, S = C_seq
 *   w      = writes per cell per sequence = C_seq / S
 *            (S = 0: w = 1; S < C_seq: arrays shared between heads and
 *            layers, re-programmed with ideal wear levelling, i.e. the
 *            writes spread evenly over the S cells)
 *   N      = sequences to wear-out = endurance / w
 *   r      = sequences per second: wear.sequence_rate, or when it is 0
 *            the run's own back-to-back rate clock / L_SPRINT, L_SPRINT
 *            the latency of one sequence under SPRINT in cycles
 *   t      = time to wear-out = N / r  (seconds)
 * Errors (SPR_EINVAL, message naming the key and value): endurance not
 * finite or <= 0 (wear.endurance), sequence_rate not finite or < 0
 * (wear.sequence_rate), scoring_cells not finite, < 0, or in (0, C_head)
 * (wear.scoring_cells: the arrays cannot hold one head's keys; the
 * message names the minimum C_head), C_seq < 1 or C_head < 1, a
 * back-to-back rate needed with a latency or clock that is not > 0.
 * Nothing here allocates, prints or exits. */
#ifndef SPR_WEAR_H
#define SPR_WEAR_H

#include <stddef.h>
#include <stdint.h>

#include "spr_params.h"

typedef struct {
  double writes_per_cell;  /* w, writes of a scoring cell per sequence */
  double sequences;        /* N, sequences until a cell reaches endurance */
  double rate_Hz;          /* r, sequences per second used */
  int rate_is_run;         /* 1: r is the run's back-to-back rate */
  double seconds;          /* t = N / r */
} spr_wear_result;

/* The estimate above from the wear parameters w, the cells programmed per
 * sequence and by the largest head, SPRINT's latency of one sequence in
 * cycles and the clock (Hz; both used only when w->sequence_rate_Hz is
 * 0).  Returns 0 or SPR_EINVAL. */
int spr_wear_estimate(const spr_wear_params *w, double cells_per_sequence, double head_cells,
                      double sprint_cycles, double clock_Hz, spr_wear_result *out);

/* One line (no newline) describing r into buf[n]: writes per cell, the
 * sequences and the time to wear-out in a readable unit, the rate and
 * where it comes from.  Returns what snprintf returns. */
int spr_wear_format(const spr_wear_params *w, const spr_wear_result *r, char *buf, size_t n);

#endif
