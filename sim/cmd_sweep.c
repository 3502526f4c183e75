/* cmd_sweep.c - sprintsim sweep: every point of a grid (sim/spr_sweep.h). */
#include "config.h"
#include "cmd.h"
#include "spr_error.h"
#include "spr_eval.h"
#include "spr_sweep.h"

#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cmd_usage_sweep(FILE *f) {
  fprintf(f,
          "usage: sprintsim sweep CONFIG [-o SWEEP.h5] [--threads N] [--set SECTION.KEY=VALUE ...]\n"
          "\n"
          "Evaluate every point of a grid over configuration keys: CONFIG is an\n"
          "ordinary configuration plus a [sweep] section (docs/sweep.md):\n"
          "\n"
          "  [sweep]\n"
          "  threshold.keep_rate = 0.05, 0.1, 0.2      ; axis: section.key = values\n"
          "  analog.cmp_noise_sigma = 0, 20 nA, 50 nA  ; as the key accepts them\n"
          "  schemes = sprint, dense, oracle, topk     ; schemes reported (optional)\n"
          "  max_points = 1000                         ; refuse larger grids (default)\n"
          "\n"
          "The grid is the Cartesian product of the axes (the first varies slowest).\n"
          "Every point is checked before any runs.  Points run in parallel, one\n"
          "thread each; the output is identical for any thread count.\n"
          "\n"
          "Rows: one per point and scheme.  Synthetic or Q/K/V heads report attention\n"
          "metrics (mass_retained, rel_fro, ...); workload.source = model reports an\n"
          "image model's top1, agreement, top1_exact, top1_reference and loss_pp, a\n"
          "text model's bpc, bpc_exact, bpc_reference and loss_pct (exact attention\n"
          "and the reference model have no row: they are not priced; docs/models.md,\n"
          "examples/vit-sweep.ini, examples/lm-sweep.ini).\n"
          "\n"
          "  -o, --output FILE  HDF5 results (default sprintsim-sweep.h5); the CSV is\n"
          "                     written beside it (FILE without .h5, plus .csv); both\n"
          "                     are written as NAME.tmp.XXXXXX and renamed when complete\n"
          "                     (neither may name an input of a point)\n"
          "  --threads N        points evaluated at once (default: OMP_NUM_THREADS or\n"
          "                     all cores); their memory is checked together first\n");
  cmd_usage_set(f, "                     --set sweep.KEY=VALUES replaces (or adds) an axis or a\n"
                  "                     [sweep] key; a key that is an axis is set on its axis\n");
  fprintf(f,
          "  -h, --help         this help\n"
          "\n"
          "Plots: scripts/plot SWEEP.h5.  Exit status: 0 success, 1 error, 2 bad command\n"
          "line, 130 interrupted (nothing written).\n");
}

/* Neither output may be an input of a point: the sweep file, or a file
 * its points name (every point's when an axis sets a file name). */
static int check_inputs(const cmd_opts *opt, const spr_sweep *sw, const char *out, const char *csv) {
  int files = 0; /* an axis sets a file name: "section.key" or "a.b + c.d" */
  for (int a = 0; a < spr_sweep_naxes(sw); a++) {
    char names[256], *save = NULL;
    snprintf(names, sizeof names, "%s", spr_sweep_axis_key(sw, a));
    for (char *t = strtok_r(names, " +", &save); t; t = strtok_r(NULL, " +", &save)) {
      char *dot = strchr(t, '.');
      if (!dot) continue;
      *dot = '\0';
      const spr_config_key_info *k = spr_config_key(spr_config_find(t, dot + 1));
      files |= k && k->type == SPR_KEY_STRING;
    }
  }
  spr_config *c = malloc(sizeof *c);
  if (!c) {
    fprintf(stderr, "%s: out of memory\n", cmd_prog);
    return 1;
  }
  int st = 0;
  for (int p = 0; p < (files ? spr_sweep_npoints(sw) : 1) && !st; p++) {
    if (spr_sweep_point_config(sw, p, c)) {
      st = cmd_fail(1, NULL);
      break;
    }
    st = cmd_check_inputs(opt, "-o", out, c);
    if (!st) st = cmd_check_inputs(opt, "the CSV beside -o,", csv, c);
  }
  free(c);
  return st;
}

int cmd_sweep(int argc, char **argv) {
  cmd_opts opt = {.cmd = "sweep", .usage = cmd_usage_sweep, .config_what = "with a [sweep] section ",
                  .allow = CMD_OPT_THREADS | CMD_OPT_OUT | CMD_OPT_SET,
                  .out = "sprintsim-sweep.h5", .threads = omp_get_max_threads()};
  int st0 = cmd_parse_opts(argc, argv, &opt);
  if (st0 >= 0) return st0;
  const char *out = opt.out;
  long threads = opt.threads;
  spr_sweep *sw = NULL;
  spr_config_src src;
  if (cmd_config_src(&opt, &src)) return 1;
  const char *cfg_path = src.name;
  int rc = spr_sweep_load_src(&src, &sw);
  if (rc) return cmd_fail_rc(rc, NULL);
  char *csv = spr_sweep_csv_path(out);
  spr_sweep_out *o = NULL;
  if (!csv) {
    spr_sweep_free(sw);
    fprintf(stderr, "%s: out of memory\n", cmd_prog);
    return 1;
  }
  if ((st0 = check_inputs(&opt, sw, out, csv))) {
    free(csv);
    spr_sweep_free(sw);
    return st0;
  }
  if (spr_sweep_out_open(out, csv, &o)) {
    int st = cmd_fail(1, NULL);
    free(csv);
    spr_sweep_free(sw);
    return st;
  }
  cmd_signals();

  const int P = spr_sweep_npoints(sw);
  const spr_evaluator *ev = spr_sweep_evaluator(sw);
  if (threads > P) threads = P;
  if (spr_sweep_check_memory(sw, (int)threads, 0)) { /* the points run at once, together */
    int st = cmd_fail(1, NULL);
    spr_sweep_out_abort(o);
    free(csv);
    spr_sweep_free(sw);
    return st;
  }
  printf("sprintsim %s: sweep %s: %d point%s (", PACKAGE_VERSION, cfg_path, P, P == 1 ? "" : "s");
  for (int a = 0; a < spr_sweep_naxes(sw); a++)
    printf("%s%s x%d", a ? ", " : "", spr_sweep_axis_key(sw, a), spr_sweep_axis_nvalues(sw, a));
  printf("%s) x %d schemes, evaluator %s, %ld thread%s\n", spr_sweep_naxes(sw) ? "" : "no axes",
         spr_sweep_nschemes(sw), ev->name, threads, threads == 1 ? "" : "s");
  fflush(stdout);
  /* one thread per point; each point's result depends on its configuration
   * alone, so the output does not depend on the order points finish */
  int done = 0, err_point = -1, err_code = 0;
  char err_msg[2048] = "";
  const double t0 = cmd_now_s();
#pragma omp parallel for num_threads((int)threads) schedule(dynamic, 1)
  for (int p = 0; p < P; p++) {
    /* after a failure, skip only the points after the failing one: every
     * point before it still runs, so the first failing point (the one
     * reported) is the same for any thread count */
    int first_err;
#pragma omp atomic read
    first_err = err_point;
    if (cmd_interrupted || (first_err >= 0 && p > first_err)) continue;
    const double tp = cmd_now_s();
    int rc = spr_sweep_eval_point(sw, p, &cmd_interrupted, NULL);
#pragma omp critical(sweep_progress)
    {
      if (rc && rc != SPR_ECANCELED && (err_point < 0 || p < err_point)) {
#pragma omp atomic write
        err_point = p;
        snprintf(err_msg, sizeof err_msg, "%s", spr_errmsg());
#pragma omp atomic write
        err_code = rc;
      } else if (!rc) {
        char label[512];
        done++;
        spr_sweep_point_label(sw, p, label, sizeof label);
        fprintf(stderr, "sweep: %d/%d done (point %d: %s) %.1f s, %.0f s elapsed\n", done, P, p + 1,
                label, cmd_now_s() - tp, cmd_now_s() - t0);
      }
    }
  }
  int status = 0;
  if (err_code) {
    fprintf(stderr, "%s: %s\n", cmd_prog, err_msg);
    status = 1;
  } else if (cmd_interrupted) {
    const char *why;
    status = cmd_stop_status(&why);
    fprintf(stderr, "%s: %s after %d of %d points; %s and %s not written\n", cmd_prog, why, done, P,
                out, csv);
  }
  if (status) {
    spr_sweep_out_abort(o);
  } else if (spr_sweep_out_commit(o, sw, PACKAGE_VERSION)) {
    status = cmd_fail(1, NULL);
    if (cmd_interrupted == SIGXFSZ)
      fprintf(stderr, "%s: the file size limit (ulimit -f) was reached\n", cmd_prog);
  } else if (cmd_interrupted == SIGXFSZ) { /* a write past the limit while committing */
    unlink(out);
    unlink(csv);
    fprintf(stderr, "%s: the file size limit (ulimit -f) was reached; %s and %s not written\n",
            cmd_prog, out, csv);
    status = 1;
  } else {
    printf("sweep: %s, %s (%d rows) in %.1f s\n", out, csv, P * spr_sweep_nschemes(sw), cmd_now_s() - t0);
  }
  free(csv);
  spr_sweep_free(sw);
  return status;
}
