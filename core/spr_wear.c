/* spr_wear.c - wear of SPRINT's scoring arrays (model: spr_wear.h,
 * sources: docs/energy.md section 8). */
#include "config.h"
#include "spr_wear.h"
#include "spr_error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int spr_wear_estimate(const spr_wear_params *w, double cells_per_sequence, double head_cells,
                      double sprint_cycles, double clock_Hz, spr_wear_result *out) {
  if (!w || !out)
    return spr_error(SPR_EINVAL, "spr_wear_estimate: NULL argument '%s'", !w ? "w" : "out");
  if (!isfinite(w->endurance) || !(w->endurance > 0))
    return spr_error(SPR_EINVAL, "wear.endurance = %g: the writes a cell survives must be > 0",
                     w->endurance);
  if (!isfinite(w->sequence_rate_Hz) || w->sequence_rate_Hz < 0)
    return spr_error(SPR_EINVAL, "wear.sequence_rate = %g Hz: must be >= 0 (0: the run's "
                     "back-to-back rate)", w->sequence_rate_Hz);
  if (!(cells_per_sequence >= 1) || !(head_cells >= 1) || !isfinite(cells_per_sequence) ||
      head_cells > cells_per_sequence)
    return spr_error(SPR_EINVAL, "spr_wear_estimate: %g cells programmed per sequence, %g by the "
                     "largest head (need 1 <= head <= sequence)", cells_per_sequence, head_cells);
  const double S = w->scoring_cells;
  if (!isfinite(S) || S < 0 || (S > 0 && S < head_cells))
    return spr_error(SPR_EINVAL, "wear.scoring_cells = %.17g: the scoring arrays must hold one "
                     "head's keys, at least %.17g cells (2 N d), or 0 (arrays per head)", S,
                     head_cells);
  memset(out, 0, sizeof *out);
  out->writes_per_cell = S > 0 ? cells_per_sequence / S : 1.0;
  out->sequences = w->endurance / out->writes_per_cell;
  if (w->sequence_rate_Hz > 0) {
    out->rate_Hz = w->sequence_rate_Hz;
  } else {
    if (!(sprint_cycles > 0) || !(clock_Hz > 0) || !isfinite(sprint_cycles) || !isfinite(clock_Hz))
      return spr_error(SPR_EINVAL, "wear.sequence_rate = 0 needs the run's rate, but SPRINT's "
                       "latency is %g cycles at %g Hz", sprint_cycles, clock_Hz);
    out->rate_Hz = clock_Hz / sprint_cycles;
    out->rate_is_run = 1;
  }
  out->seconds = out->sequences / out->rate_Hz;
  return 0;
}

int spr_wear_format(const spr_wear_params *w, const spr_wear_result *r, char *buf, size_t n) {
  static const struct {
    const char *name;
    double s;
  } units[] = {{"years", 365.25 * 86400}, {"days", 86400}, {"hours", 3600}, {"minutes", 60},
               {"s", 1}};
  int u = 0;
  while (u < 4 && r->seconds < units[u].s) u++;
  char rate[96];
  if (r->rate_is_run)
    snprintf(rate, sizeof rate, "%.4g sequences/s, the run's back-to-back rate", r->rate_Hz);
  else
    snprintf(rate, sizeof rate, "%.4g sequences/s, wear.sequence_rate", r->rate_Hz);
  return snprintf(buf, n,
                  "wear: %.4g writes per scoring cell per sequence (%s); endurance %.3g writes: "
                  "%.4g sequences, %.4g %s at %s",
                  r->writes_per_cell,
                  w->scoring_cells > 0 ? "arrays shared, ideal wear levelling" : "arrays per head",
                  w->endurance, r->sequences, r->seconds / units[u].s, units[u].name, rate);
}
