/* cmd_crossbar.c - sprintsim crossbar: column currents of a user's array
 * under a model (docs/crossbar.md). */
#include "config.h"
#include "cmd.h"
#include "spr_h5io.h"
#include "spr_spice.h"
#include "spr_xbar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cmd_usage_crossbar(FILE *f) {
  fprintf(f,
          "usage: sprintsim crossbar --g G.h5 --v V.h5 --model ideal|analytic|nodal|spice\n"
          "                          [--r-wl OHM --r-bl OHM] -o I.h5\n"
          "\n"
          "Column currents of one crossbar array under a chosen model (docs/crossbar.md).\n"
          "  --g G.h5      dataset /G: R x C conductances, siemens, float64\n"
          "  --v V.h5      dataset /V: M x R row voltages, one input vector per row, volts\n"
          "  --model       ideal: I = V G (no wires); analytic: first-order IR drop\n"
          "                (docs/model.md); nodal: exact solution of the resistive\n"
          "                network (banded Cholesky); spice: ngspice operating point\n"
          "                of the same netlist (slow: about 1.4 s per 64 x 64 input)\n"
          "  --r-wl, --r-bl  word- and bit-line segment resistance, ohm (required by\n"
          "                every model but ideal)\n"
          "  -o I.h5       dataset /I: M x C column currents, amperes, with the model\n"
          "                and resistances as attributes; written atomically; checked\n"
          "                before the work; not G.h5 or V.h5\n"
          "  --progress    show the SPICE vectors done on stderr even when it is not a\n"
          "                terminal (a line at most every 10 s; by default only a\n"
          "                terminal shows it)\n"
          "  --quiet       no progress\n"
          "  -h, --help    this help\n"
          "\n"
          "Exit status: 0 success, 1 error, 2 bad command line, 130 interrupted.\n");
}

/* Parse a finite double >= 0 given to option opt. */
static int parse_ohm(const char *opt, const char *v, double *out) {
  char *end;
  double x = v ? strtod(v, &end) : 0;
  if (!v || !*v || *end || !(x >= 0) || x > 1e12) {
    fprintf(stderr, "%s: %s: value '%s' is not a resistance in ohm (0 .. 1e12)\n", cmd_prog, opt,
            v ? v : "(missing)");
    return -1;
  }
  *out = x;
  return 0;
}

int cmd_crossbar(int argc, char **argv) {
  const char *gpath = NULL, *vpath = NULL, *out = NULL, *model_s = NULL;
  double r_wl = -1, r_bl = -1;
  int progress = CMD_PROGRESS_AUTO, r;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      cmd_usage_crossbar(stdout);
      return 0;
    } else if ((r = cmd_progress_opt("crossbar", a, &progress))) {
      if (r < 0) return CMD_EXIT_USAGE;
    } else if (!strcmp(a, "--g") || !strcmp(a, "--v") || !strcmp(a, "-o") ||
               !strcmp(a, "--output") || !strcmp(a, "--model")) {
      if (!v || !*v) {
        fprintf(stderr, "%s: crossbar: %s needs a value\n", cmd_prog, a);
        return CMD_EXIT_USAGE;
      }
      if (!strcmp(a, "--g")) gpath = v;
      else if (!strcmp(a, "--v")) vpath = v;
      else if (!strcmp(a, "--model")) model_s = v;
      else out = v;
      i++;
    } else if (!strcmp(a, "--r-wl") || !strcmp(a, "--r-bl")) {
      if (parse_ohm(a, v, !strcmp(a, "--r-wl") ? &r_wl : &r_bl)) return CMD_EXIT_USAGE;
      i++;
    } else {
      fprintf(stderr, "%s: crossbar: unexpected argument '%s' (see 'sprintsim crossbar --help')\n",
              cmd_prog, a);
      return CMD_EXIT_USAGE;
    }
  }
  if (!gpath || !vpath || !out || !model_s) {
    fprintf(stderr, "%s: crossbar: --g, --v, --model and -o are required (see 'sprintsim crossbar --help')\n",
            cmd_prog);
    return CMD_EXIT_USAGE;
  }
  int model;
  if (!strcmp(model_s, "ideal")) model = SPR_XBAR_MODEL_IDEAL;
  else if (!strcmp(model_s, "analytic")) model = SPR_XBAR_MODEL_ANALYTIC;
  else if (!strcmp(model_s, "nodal")) model = SPR_XBAR_MODEL_NODAL;
  else if (!strcmp(model_s, "spice")) model = -1; /* ngspice, one op per input */
  else {
    fprintf(stderr, "%s: crossbar: --model '%s' is not one of ideal, analytic, nodal, spice\n", cmd_prog, model_s);
    return CMD_EXIT_USAGE;
  }
  if (model != SPR_XBAR_MODEL_IDEAL && (r_wl < 0 || r_bl < 0)) {
    fprintf(stderr, "%s: crossbar: --model %s needs --r-wl and --r-bl\n", cmd_prog, model_s);
    return CMD_EXIT_USAGE;
  }
  if (r_wl < 0) r_wl = 0;
  if (r_bl < 0) r_bl = 0;
  if (cmd_check_input("crossbar", "-o", out, "--g", gpath) ||
      cmd_check_input("crossbar", "-o", out, "--v", vpath))
    return CMD_EXIT_USAGE;
  if (cmd_check_output(out)) return cmd_fail(1, NULL); /* before the (SPICE) work */
  cmd_signals();
  double *G = NULL, *V = NULL, *I = NULL;
  int R, C, M, RV, status = 0;
  if (spr_h5_read_matrix(gpath, "/G", &G, &R, &C) || spr_h5_read_matrix(vpath, "/V", &V, &M, &RV)) {
    status = cmd_fail(1, NULL);
  } else if (RV != R) {
    fprintf(stderr, "%s: crossbar: %s /V has %d columns but %s /G has %d rows (one voltage per row)\n",
            cmd_prog, vpath, RV, gpath, R);
    status = 1;
  } else if (!(I = malloc((size_t)M * C * sizeof *I))) {
    fprintf(stderr, "%s: crossbar: out of memory for %d x %d currents\n", cmd_prog, M, C);
    status = 1;
  } else {
    double corr = 0;
    int rc = 0;
    if (model >= 0) {
      rc = spr_xbar_column_currents(model, G, R, C, V, M, r_wl, r_bl, I, &corr);
    } else {
      /* ngspice in a child process per input vector (calibration/spr_spice.h);
       * a signal kills the running child at once */
      spr_spice_set_cancel(&cmd_interrupted);
      spr_progress prog;
      spr_progress_init(&prog);
      spr_progress_begin(&prog, "SPICE vectors", M);
      cmd_progress_counter_src pc = {"crossbar", &prog, NULL, NULL, 0, 0};
      cmd_progress *pr = cmd_progress_start(cmd_progress_wanted_mode(progress), cmd_progress_counter, &pc);
      for (int m = 0; m < M && !rc && !cmd_interrupted; m++) {
        rc = spr_spice_crossbar_currents(G, R, C, r_wl, r_bl, V + (size_t)m * R, I + (size_t)m * C, 600.0);
        if (!rc) spr_progress_add(&prog, 1);
      }
      cmd_progress_stop(pr);
    }
    if (cmd_interrupted) {
      const char *why;
      status = cmd_stop_status(&why);
      fprintf(stderr, "%s: %s; %s not written\n", cmd_prog, why, out);
    } else if (rc) {
      status = cmd_fail(1, gpath);
    } else {
      char rw[32], rbs[32], cs[32];
      snprintf(rw, sizeof rw, "%.17g", r_wl);
      snprintf(rbs, sizeof rbs, "%.17g", r_bl);
      snprintf(cs, sizeof cs, "%.6g", corr);
      const char *names[] = {"unit", "model", "r_wl_ohm", "r_bl_ohm",
                             model == SPR_XBAR_MODEL_NODAL ? "error_bound" : "max_first_order_correction"};
      const char *values[] = {"A", model_s, rw, rbs, cs};
      if (spr_h5_write_matrix(out, "/I", I, M, C, names, values,
                              model == SPR_XBAR_MODEL_ANALYTIC || model == SPR_XBAR_MODEL_NODAL ? 5 : 4)) {
        status = cmd_fail(1, NULL);
        if (cmd_interrupted == SIGXFSZ)
          fprintf(stderr, "%s: the file size limit (ulimit -f) was reached\n", cmd_prog);
      } else if (cmd_interrupted == SIGXFSZ) { /* a write past the limit */
        unlink(out);
        fprintf(stderr, "%s: the file size limit (ulimit -f) was reached; %s not written\n", cmd_prog, out);
        status = 1;
      } else {
        printf("crossbar: %s: /I, %d x %d column currents (model %s", out, M, C, model_s);
        if (model == SPR_XBAR_MODEL_ANALYTIC) printf(", largest first-order correction %.4g", corr);
        if (model == SPR_XBAR_MODEL_NODAL) printf(", relative error bound %.2g", corr);
        printf(")\n");
        if (model == SPR_XBAR_MODEL_ANALYTIC && corr > SPR_IR_FIRST_ORDER_LIMIT)
          fprintf(stderr, "%s: crossbar: note: the first-order correction reaches %.3g, above %g: the "
                  "analytic model is inaccurate for this array\n", cmd_prog, corr, SPR_IR_FIRST_ORDER_LIMIT);
      }
    }
  }
  free(G);
  free(V);
  free(I);
  return status;
}
