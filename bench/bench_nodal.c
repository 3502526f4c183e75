/* bench_nodal.c - the exact nodal solver against ngspice on the same
 * arrays (issue 4): time to compute the effective conductance matrix of a
 * 64 x 64 and a 128 x 128 array, ngspice's time for one operating point
 * of the same netlist (one input vector, fork included), and the largest
 * relative difference of the column currents for that input.
 *
 *   bench/bench_nodal [REPEATS] [MAX_SIZE]     (default 3, 128)
 */
#include "config.h"
#include "spr_error.h"
#include "spr_nodal.h"
#include "spr_spice.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 3, max = argc > 2 ? atoi(argv[2]) : 128;
  if (reps < 1 || reps > 100 || max < 2 || max > 512) {
    fprintf(stderr, "usage: bench_nodal [REPEATS 1..100] [MAX_SIZE 2..512]\n");
    return 2;
  }
  const double r_wl = 2.5, r_bl = 2.5;
  printf("bench_nodal: r_wl = r_bl = %g ohm, G uniform in [1, 100] uS, median of %d\n", r_wl, reps);
  printf("%9s %14s %16s %14s %12s\n", "array", "nodal Geff ms", "ngspice op ms", "ratio/input", "max rel diff");
  for (int n = 64; n <= max; n *= 2) {
    const int R = n, C = n;
    double *G = malloc((size_t)R * C * sizeof *G), *Ge = malloc((size_t)R * C * sizeof *Ge);
    double *V = malloc((size_t)R * sizeof *V), *I = malloc((size_t)C * sizeof *I);
    double *t_nodal = malloc(reps * sizeof(double)), *t_spice = malloc(reps * sizeof(double));
    int err = 0;
    spr_nodal_ws *ws = spr_nodal_ws_alloc(R, C, &err);
    if (!G || !Ge || !V || !I || !t_nodal || !t_spice || !ws) {
      fprintf(stderr, "bench_nodal: out of memory at %d x %d\n", R, C);
      return 1;
    }
    unsigned s = 2385;
    for (int k = 0; k < R * C; k++) {
      s = s * 1103515245u + 12345u;
      G[k] = 1e-6 + 99e-6 * ((s >> 8) & 0xFFFF) / 65535.0;
    }
    for (int i = 0; i < R; i++) V[i] = 0.2 * ((i * 37) % 15 - 7) / 7.0;
    double bound = 0;
    for (int rep = 0; rep < reps; rep++) {
      double t0 = now();
      if (spr_nodal_effective(G, R, C, r_wl, r_bl, Ge, &bound, ws)) {
        fprintf(stderr, "bench_nodal: %s\n", spr_errmsg());
        return 1;
      }
      t_nodal[rep] = now() - t0;
      t0 = now();
      if (spr_spice_crossbar_currents(G, R, C, r_wl, r_bl, V, I, 600.0)) {
        fprintf(stderr, "bench_nodal: %s\n", spr_errmsg());
        return 1;
      }
      t_spice[rep] = now() - t0;
    }
    double worst = 0, scale = 0;
    for (int j = 0; j < C; j++) {
      double in = 0;
      for (int i = 0; i < R; i++) in += V[i] * Ge[(size_t)i * C + j];
      scale = fmax(scale, fabs(in));
      worst = fmax(worst, fabs(in - I[j]));
    }
    const double tn = median(t_nodal, reps), ts = median(t_spice, reps);
    char label[16];
    snprintf(label, sizeof label, "%dx%d", R, C);
    /* the effective matrix serves every input: per input it costs tn / R */
    printf("%9s %14.2f %16.1f %13.0fx %12.2e\n", label, 1e3 * tn, 1e3 * ts, ts / (tn / R),
           worst / scale);
    spr_nodal_ws_free(ws);
    free(G); free(Ge); free(V); free(I); free(t_nodal); free(t_spice);
  }
  return 0;
}
