/* main.c - the sprintsim command. */
#include "config.h"
#include "spr_calibrate.h"
#include "spr_config.h"
#include "spr_device.h"
#include "spr_error.h"
#include "spr_pipeline.h"
#include "spr_report.h"
#include "spr_h5io.h"
#include "spr_qkv.h"
#include "spr_synth.h"
#include "spr_spice.h"
#include "spr_sweep.h"
#include "spr_xbar.h"
#include "spr_trace.h"
#include "spr_vit_eval.h"

#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CMD_EXIT_USAGE 2

static volatile sig_atomic_t cmd_interrupted = 0;
static void cmd_on_signal(int sig) { cmd_interrupted = sig; }

static const char *cmd_prog = "sprintsim";

static void usage_main(FILE *f) {
  fprintf(f,
          "usage: sprintsim COMMAND [ARGS]\n"
          "\n"
          "Simulate ReRAM in-memory attention pruning (SPRINT, MICRO 2022).\n"
          "\n"
          "commands:\n"
          "  run [CONFIG] [options]   simulate a workload through crossbar scoring and\n"
          "                           threshold comparators; write an HDF5 trace\n"
          "  sweep CONFIG [-o SWEEP.h5] [--threads N]\n"
          "                           run every point of the grid in CONFIG's [sweep]\n"
          "                           section; write SWEEP.h5 and SWEEP.csv\n"
          "  report FILE.h5           per-layer and total tables of every scheme in a\n"
          "                           trace: keep rate, bytes, energy by component,\n"
          "                           cycles, speedup and energy reduction over dense,\n"
          "                           accuracy against dense attention\n"
          "  crossbar --g G.h5 --v V.h5 --model M [--r-wl OHM --r-bl OHM] -o I.h5\n"
          "                           column currents of your own conductance matrix\n"
          "                           and inputs under a model (ideal, analytic, nodal,\n"
          "                           spice)\n"
          "  config [CONFIG]          print the resolved configuration (every key with\n"
          "                           its value, unit and meaning) as INI text\n"
          "  calibrate CONFIG [-o DEVICE.h5] [--seed N]\n"
          "                           measure the cell, crossbar and comparator with\n"
          "                           ngspice, fit the device model, write DEVICE.h5\n"
          "                           (use it with run.device_model)\n"
          "  synth [CONFIG] -o FILE.h5 [--batch B --pad P]\n"
          "                           write the synthetic generator's Q, K, V as a\n"
          "                           sprintsim-qkv file (docs/qkv.md)\n"
          "  help [COMMAND]           show help\n"
          "\n"
          "  sprintsim --version      print the version\n"
          "\n"
          "Run 'sprintsim help run' for the options of run; docs/ has the model,\n"
          "the configuration keys and the trace schema.\n");
}

static void cmd_usage_run(FILE *f) {
  fprintf(f,
          "usage: sprintsim run [CONFIG] [-o FILE.h5] [--seed N] [--threads N]\n"
          "                     [--trace summary|masks|full]\n"
          "\n"
          "Simulate every layer and head of the workload: keys programmed into ReRAM\n"
          "arrays, queries applied as row voltages, one noisy threshold comparator per\n"
          "column.  Prints a per-layer table and writes an HDF5 trace.\n"
          "With workload.source = vit (docs/vit.md) it runs the trained ViT on\n"
          "Fashion-MNIST test images instead, every head under each scheme, and\n"
          "prints top-1 accuracy, keep rate, bytes, energy and cycles per scheme.\n"
          "\n"
          "  CONFIG             INI file (keys: 'sprintsim config' and README); without\n"
          "                     it, the built-in default: BERT-base preset (12 layers x\n"
          "                     12 heads, N = 512, d = 64) with SPRINT's defaults\n"
          "  -o, --output FILE  trace file (default sprintsim-run.h5); written as\n"
          "                     FILE.tmp.XXXXXX and renamed when complete\n"
          "  --seed N           top-level seed (overrides run.seed; default 1)\n"
          "  --threads N        OpenMP threads (default: OMP_NUM_THREADS or all cores);\n"
          "                     results are bit-identical for any N\n"
          "  --trace LEVEL      summary: per-head statistics; masks: also bit-packed\n"
          "                     analog and ideal masks; full: also quantized Q and K,\n"
          "                     ideal and analog scores, thresholds (overrides run.trace)\n"
          "  -h, --help         this help\n"
          "\n"
          "With run.device_model set in CONFIG, the device-model file (from a SPICE\n"
          "calibration, docs/calibration.md) is read, validated and applied over the\n"
          "configuration before the run; the keys it sets are printed and recorded in\n"
          "the trace (/device_model).\n"
          "\n"
          "Exit status: 0 success, 1 error, 2 bad command line, 130 interrupted.\n");
}

static int cmd_fail(int code, const char *what) {
  fprintf(stderr, "%s: %s%s%s\n", cmd_prog, what ? what : "", what ? ": " : "", spr_errmsg());
  return code;
}

/* Parse "N" as an int in [lo, hi]. */
static int cmd_parse_int_arg(const char *opt, const char *v, long lo, long hi, long *out) {
  char *end;
  long x = v ? strtol(v, &end, 10) : 0;
  if (!v || !*v || *end || x < lo || x > hi) {
    fprintf(stderr, "%s: %s: value '%s' is not an integer in [%ld, %ld]\n", cmd_prog, opt,
            v ? v : "(missing)", lo, hi);
    return -1;
  }
  *out = x;
  return 0;
}

static void print_table_header(void) {
  printf("%5s %7s %7s %8s %8s %7s %7s %9s\n", "layer", "keep%", "ideal%", "fprune%",
         "fkeep%", "mass", "i.mass", "threshold");
}

/* Means over results res[0..count) of the table's columns. */
typedef struct {
  double keep, ikeep, fp, fk, mass, imass, tmin, tmax;
} row_means;

static row_means mean_of(const spr_head_result *res, int count) {
  row_means m = {0, 0, 0, 0, 0, 0, 1e300, -1e300};
  for (int k = 0; k < count; k++) {
    const spr_head_result *r = &res[k];
    double nn = (double)r->n * r->n;
    m.keep += r->keep_rate / count;
    m.ikeep += r->ideal_keep_rate / count;
    m.fp += r->false_prunes / nn / count;
    m.fk += r->false_keeps / nn / count;
    m.mass += r->mass_retained / count;
    m.imass += r->ideal_mass_retained / count;
    if (r->threshold < m.tmin) m.tmin = r->threshold;
    if (r->threshold > m.tmax) m.tmax = r->threshold;
  }
  return m;
}

/* One table row: the layer's heads (threshold column) or all heads. */
static void print_row(const char *label, const spr_head_result *res, int count, int with_thr) {
  row_means m = mean_of(res, count);
  char thr[48] = "";
  if (with_thr && m.tmin == m.tmax) snprintf(thr, sizeof thr, "%g", m.tmin);
  else if (with_thr) snprintf(thr, sizeof thr, "%g..%g", m.tmin, m.tmax);
  printf("%5s %7.2f %7.2f %8.3f %8.3f %7.4f %7.4f", label, 100 * m.keep, 100 * m.ikeep,
         100 * m.fp, 100 * m.fk, m.mass, m.imass);
  if (with_thr) printf(" %9s", thr);
  printf("\n");
}

/* Totals over all heads of each scheme, with ratios to dense.  Heads run
 * one after another, so latencies and energies add. */
static void print_schemes(const spr_run *run, const spr_config *c) {
  const int LH = c->wl.n_layers * c->wl.n_heads;
  const spr_head_result *res = spr_run_results(run);
  double e[SPR_N_SCHEMES] = {0}, cyc[SPR_N_SCHEMES] = {0};
  for (int k = 0; k < LH; k++)
    for (int s = 0; s < SPR_N_SCHEMES; s++) {
      e[s] += res[k].scheme[s].energy_total_J;
      cyc[s] += res[k].scheme[s].cycles_total;
    }
  printf("\nscheme    keep%%  fetched MB  reused MB  energy uJ  Mcycles  speedup  energy-  "
         "rel.err  cos.mean  cos.min   mass   top1  top%d\n",
         c->dig.top_k < c->wl.seq_len ? c->dig.top_k : c->wl.seq_len);
  for (int s = 0; s < SPR_N_SCHEMES; s++) {
    if (!res[0].scheme[s].ran) continue;
    double keep = 0, fb = 0, rb = 0, fro = 0, cm = 0, cmin = 1, mass = 0, t1 = 0, tk = 0;
    for (int k = 0; k < LH; k++) {
      const spr_scheme_result *x = &res[k].scheme[s];
      keep += x->keep_rate / LH;
      fb += x->bytes_fetched;
      rb += x->bytes_reused;
      fro += x->rel_fro / LH;
      cm += x->cos_mean / LH;
      cmin = x->cos_min < cmin ? x->cos_min : cmin;
      mass += x->mass_retained / LH;
      t1 += x->top1_recall / LH;
      tk += x->topk_recall / LH;
    }
    const int dn = SPR_SCHEME_DENSE;
    printf("%-8s %6.2f %11.2f %10.2f %10.1f %8.2f %7.2fx %7.2fx %8.4f %9.5f %8.4f %6.4f %6.4f %5.4f\n",
           spr_scheme_name(s), 100 * keep, fb / 1e6, rb / 1e6, e[s] * 1e6, cyc[s] / 1e6,
           cyc[s] > 0 ? cyc[dn] / cyc[s] : 0, e[s] > 0 ? e[dn] / e[s] : 0, fro, cm, cmin, mass, t1,
           tk);
  }
}

static void print_layer(const spr_run *run, const spr_config *c, int l) {
  char label[16];
  snprintf(label, sizeof label, "%d", l);
  print_row(label, spr_run_result(run, l, 0), c->wl.n_heads, 1);
}

static void print_total(const spr_run *run, const spr_config *c) {
  print_row("all", spr_run_results(run), c->wl.n_layers * c->wl.n_heads, 0);
}

/* run.device_model: read and validate the file, apply its keyed
 * parameters over *c and list them on `out`.  dev is initialised here
 * (spr_device_free it); applied/n_applied name the parameters set.
 * Returns 0 (also when no device model is configured) or an error code. */
/* Value of `name` in [section] of INI text into buf; 0 when found. */
static int ini_value(const char *text, const char *section, const char *name, char *buf,
                     size_t n) {
  const char *cur = "";
  size_t cur_len = 0, nl = strlen(name);
  for (const char *p = text; p && *p;) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (p[0] == '[') {
      cur = p + 1;
      cur_len = len > 2 ? len - 2 : 0;
    } else if (cur_len == strlen(section) && !strncmp(cur, section, cur_len) && len > nl + 3 &&
               !strncmp(p, name, nl) && !strncmp(p + nl, " = ", 3)) {
      snprintf(buf, n, "%.*s", (int)(len - nl - 3), p + nl + 3);
      return 0;
    }
    p = e ? e + 1 : NULL;
  }
  return -1;
}

/* Warn about the conditions a device model was calibrated under that
 * differ from the run's (the fitted values hold for those conditions). */
static void warn_device_conditions(const spr_config *c, const spr_device *dev, FILE *out) {
  static const char *const keys[][2] = {
      {"crossbar", "rows"},  {"crossbar", "cols"},  {"crossbar", "cell_bits"},
      {"crossbar", "g_min"}, {"crossbar", "g_max"}, {"crossbar", "r_wl"},
      {"crossbar", "r_bl"},  {"analog", "v_read"},  {"analog", "query_bits"},
      {"analog", "temperature"}, {"analog", "bandwidth"}};
  if (!dev->config_text) return;
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    char cal[128], run[128];
    int i = spr_config_find(keys[k][0], keys[k][1]);
    if (i < 0 || ini_value(dev->config_text, keys[k][0], keys[k][1], cal, sizeof cal)) continue;
    spr_config_format(c, i, run, sizeof run);
    char *e1, *e2;
    const double a = strtod(cal, &e1), b = strtod(run, &e2);
    const int same = (*e1 == '\0' && *e2 == '\0' && e1 != cal && e2 != run)
                         ? fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b))
                         : !strcmp(cal, run);
    if (!same)
      fprintf(out, "  warning: calibrated with %s.%s = %s; this run has %s (calibrate with the "
                   "configuration you run)\n", keys[k][0], keys[k][1], cal, run);
  }
}

static int cmd_load_device_model(spr_config *c, spr_device *dev, int *applied, int *n_applied,
                             FILE *out) {
  int rc = spr_device_load_config(c, dev, applied, n_applied);
  if (rc || !c->device_model[0]) return rc;
  fprintf(out, "device model %s (%s, created %s by sprintsim %s, %s) sets %d key%s:\n",
          c->device_model, dev->content_id, dev->created, dev->sprintsim_version,
          dev->ngspice_version, *n_applied, *n_applied == 1 ? "" : "s");
  for (int k = 0; k < *n_applied; k++) {
    const spr_device_param *p = &dev->params[applied[k]];
    fprintf(out, "  %-28s = %-12.6g %-2s (95%% CI %.6g .. %.6g; /params/%s)\n", p->key, p->value,
            strcmp(p->unit, "1") ? p->unit : "", p->ci95_lo, p->ci95_hi, p->name);
  }
  warn_device_conditions(c, dev, out);
  return 0;
}

/* Record the applied device model in the trace. */
static int trace_device_model(spr_trace *tr, const spr_config *c, const spr_device *dev,
                              const int *applied, int n_applied) {
  const char *keys[SPR_DEVICE_MAX_PARAMS], *params[SPR_DEVICE_MAX_PARAMS], *units[SPR_DEVICE_MAX_PARAMS];
  double values[SPR_DEVICE_MAX_PARAMS], lo[SPR_DEVICE_MAX_PARAMS], hi[SPR_DEVICE_MAX_PARAMS];
  for (int k = 0; k < n_applied; k++) {
    const spr_device_param *p = &dev->params[applied[k]];
    keys[k] = p->key;
    params[k] = p->name;
    units[k] = p->unit;
    values[k] = p->value;
    lo[k] = p->ci95_lo;
    hi[k] = p->ci95_hi;
  }
  spr_trace_device dm = {c->device_model, dev->content_id, dev->created, dev->sprintsim_version,
                         dev->ngspice_version, n_applied, keys, params, units, values, lo, hi};
  return spr_trace_write_device(tr, &dm);
}

/* workload.source = vit: the ViT on Fashion-MNIST test images under every
 * enabled scheme (docs/vit.md). */
/* Refuse an output the ViT run could not write before spending the run
 * on it (its file is written at the end): a folder, a name ending in '/',
 * or a folder that is missing or not writable. */
static int check_output(const char *out) {
  struct stat sb;
  size_t len = strlen(out);
  if (len == 0 || out[len - 1] == '/' || (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)))
    return spr_error(SPR_EIO, "%s: the output is a folder, not a file name", out);
  char *dir = strdup(out);
  if (!dir) return spr_error(SPR_ENOMEM, "out of memory");
  char *slash = strrchr(dir, '/');
  const char *d = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
  int rc = access(d, W_OK | X_OK) ? spr_error(SPR_EIO, "%s: cannot write into the folder %s: %s",
                                              out, d, strerror(errno))
                                  : 0;
  free(dir);
  return rc;
}

static int run_vit(const spr_config *c, const char *out, long threads) {
  spr_vit m;
  spr_fmnist data;
  if (check_output(out)) return cmd_fail(1, NULL);
  if (spr_vit_load(c->wl.model, &m)) return cmd_fail(1, NULL);
  if (spr_fmnist_load(c->wl.dataset, "t10k", &data)) {
    spr_vit_free(&m);
    return cmd_fail(1, NULL);
  }
  printf("sprintsim %s: vit %s (%d layers x %d heads, N = %d, d = %d), Fashion-MNIST test images "
         "%d..%d, seed %llu, %ld thread%s\n", PACKAGE_VERSION, c->wl.model, m.depth, m.heads,
         m.tokens, m.head_dim, c->wl.first_image, c->wl.first_image + c->wl.images - 1,
         (unsigned long long)c->seed, threads, threads == 1 ? "" : "s");
  if (c->thr.mode == SPR_THR_LEARNED) {
    printf("SPRINT thresholds: learned theta + offset %g on q.k/sqrt(d):", c->thr.offset);
    for (int l = 0; l < m.depth; l++) printf(" %.4g", m.layer[l].theta + c->thr.offset);
    printf("\n");
  } else if (c->thr.mode == SPR_THR_KEEP_RATE) {
    printf("SPRINT thresholds: calibrated per %s and image to keep rate %g\n",
           c->thr.per_head ? "head" : "layer", c->thr.keep_rate);
  } else {
    printf("SPRINT thresholds: direct, score units\n");
  }
  fflush(stdout);
  spr_vit_eval_result r;
  int status = 0;
  if (spr_vit_eval_run(c, &m, c->wl.model, &data, (int)threads, &cmd_interrupted, &r)) {
    if (cmd_interrupted) {
      fprintf(stderr, "%s: interrupted; %s not written\n", cmd_prog, out);
      status = 130;
    } else {
      status = cmd_fail(1, NULL);
    }
  } else {
    const int N = r.n_images, dn = SPR_SCHEME_DENSE;
    printf("\nscheme    top1%%  agree%%   keep%%  fetched kB/img  energy uJ/img  kcycles/img  "
           "speedup  energy-\n");
    for (int k = 0; k < SPR_VIT_N_SCHEMES; k++) {
      /* exact first: the reference of the agreement column */
      const int s = k == 0 ? SPR_VIT_EXACT : k - 1;
      const spr_vit_metrics *x = &r.scheme[s];
      if (!x->ran) continue;
      printf("%-8s %6.2f %7.2f %7.2f", spr_vit_scheme_name(s), 100 * x->accuracy,
             100 * x->agreement, 100 * x->keep_rate);
      if (s == SPR_VIT_EXACT)
        printf(" %15s %14s %12s %8s %8s\n", "-", "-", "-", "-", "-");
      else
        printf(" %15.2f %14.3f %12.2f %7.2fx %7.2fx\n", x->bytes_fetched / N / 1e3,
               x->energy_J / N * 1e6, x->cycles / N / 1e3, r.scheme[dn].cycles / x->cycles,
               r.scheme[dn].energy_J / x->energy_J);
    }
    if (r.scheme[SPR_SCHEME_SPRINT].theta_saturated)
      printf("note: %lld head evaluations had a learned threshold beyond the %d-bit generator's "
             "range (saturated at its end)\n",
             (long long)r.scheme[SPR_SCHEME_SPRINT].theta_saturated, c->thr.bits);
    printf("%d images in %.1f s\n", N, r.seconds);
    if (spr_vit_eval_write(out, c, &r, PACKAGE_VERSION)) status = cmd_fail(1, NULL);
    else printf("output: %s\n", out);
    spr_vit_eval_result_free(&r);
  }
  spr_fmnist_free(&data);
  spr_vit_free(&m);
  return status;
}

/* The options of run, sweep and calibrate: -h, -o FILE, and those of
 * `allow`; at most one positional CONFIG. */
enum { CMD_OPT_SEED = 1, CMD_OPT_THREADS = 2, CMD_OPT_TRACE = 4 };
typedef struct {
  const char *cmd;          /* "run": in messages */
  void (*usage)(FILE *);    /* --help */
  unsigned allow;           /* CMD_OPT_* */
  const char *config_what;  /* "at most": CONFIG optional; else a phrase
                               naming what CONFIG must hold */
  const char *config, *out, *seed, *trace; /* results (out: preset default) */
  long threads;
} cmd_opts;

/* Parse argv[1..argc-1] into *o.  Returns -1 to go on, or the exit status
 * (0 after --help, CMD_EXIT_USAGE after an error, printed). */
static int cmd_parse_opts(int argc, char **argv, cmd_opts *o) {
  const int optional = !strcmp(o->config_what, "at most");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      o->usage(stdout);
      return 0;
    } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
      if (++i >= argc || !argv[i][0]) {
        fprintf(stderr, "%s: %s needs a file name\n", cmd_prog, a);
        return CMD_EXIT_USAGE;
      }
      o->out = argv[i];
    } else if ((o->allow & CMD_OPT_SEED) && !strcmp(a, "--seed")) {
      if (++i >= argc) {
        fprintf(stderr, "%s: --seed needs a value\n", cmd_prog);
        return CMD_EXIT_USAGE;
      }
      o->seed = argv[i];
    } else if ((o->allow & CMD_OPT_THREADS) && !strcmp(a, "--threads")) {
      if (cmd_parse_int_arg("--threads", i + 1 < argc ? argv[++i] : NULL, 1, 1024, &o->threads))
        return CMD_EXIT_USAGE;
    } else if ((o->allow & CMD_OPT_TRACE) && !strcmp(a, "--trace")) {
      if (++i >= argc) {
        fprintf(stderr, "%s: --trace needs a level (summary, masks or full)\n", cmd_prog);
        return CMD_EXIT_USAGE;
      }
      o->trace = argv[i];
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "%s: %s: unknown option '%s' (see 'sprintsim help %s')\n", cmd_prog, o->cmd, a,
              o->cmd);
      return CMD_EXIT_USAGE;
    } else if (!o->config) {
      o->config = a;
    } else {
      fprintf(stderr, "%s: %s: unexpected argument '%s' (one CONFIG%s)\n", cmd_prog, o->cmd, a,
              optional ? " at most" : "");
      return CMD_EXIT_USAGE;
    }
  }
  if (!optional && !o->config) {
    fprintf(stderr, "%s: %s: a CONFIG %sis required (see 'sprintsim help %s')\n", cmd_prog, o->cmd,
            o->config_what, o->cmd);
    return CMD_EXIT_USAGE;
  }
  return -1;
}

static int cmd_run(int argc, char **argv) {
  cmd_opts o = {"run", cmd_usage_run, CMD_OPT_SEED | CMD_OPT_THREADS | CMD_OPT_TRACE, "at most", NULL,
                "sprintsim-run.h5", NULL, NULL, omp_get_max_threads()};
  int st = cmd_parse_opts(argc, argv, &o);
  if (st >= 0) return st;
  const char *cfg_path = o.config, *out = o.out, *seed = o.seed, *trace = o.trace;
  const long threads = o.threads;
  spr_config c;
  spr_config_default(&c);
  int rc = cfg_path ? spr_config_load(&c, cfg_path) : spr_config_resolve(&c, "built-in default");
  if (rc) return cmd_fail(1, NULL);
  if (seed && spr_config_set(&c, "run", "seed", seed, "--seed")) return cmd_fail(CMD_EXIT_USAGE, NULL);
  if (trace && spr_config_set(&c, "run", "trace", trace, "--trace")) return cmd_fail(CMD_EXIT_USAGE, NULL);
  if (spr_qkv_resolve(&c, cfg_path ? cfg_path : "built-in default")) return cmd_fail(1, NULL);
  spr_device dev;
  int applied[SPR_DEVICE_MAX_PARAMS], n_applied = 0;
  if (cmd_load_device_model(&c, &dev, applied, &n_applied, stdout)) {
    spr_device_free(&dev);
    return cmd_fail(1, NULL);
  }

  /* signals: the first SIGINT/SIGTERM/SIGHUP stops the run between heads
   * and deletes the temporary file; a second one kills at once (the
   * handler resets), leaving only a ".tmp.XXXXXX" that never looks
   * finished.  A closed stdout (SIGPIPE ignored) stops the run too. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = cmd_on_signal;
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (c.wl.source == SPR_SOURCE_VIT) { /* its output records the config, device keys applied */
    spr_device_free(&dev);
    return run_vit(&c, out, threads);
  }

  spr_run *run = NULL;
  spr_trace *tr = NULL;
  if (spr_run_alloc(&c, (int)threads, &run)) {
    spr_device_free(&dev);
    return cmd_fail(1, NULL);
  }
  spr_run_set_cancel(run, &cmd_interrupted);
  if (spr_trace_create(out, &c, PACKAGE_VERSION, &tr)) {
    spr_run_free(run);
    spr_device_free(&dev);
    return cmd_fail(1, NULL);
  }
  if (c.device_model[0] && trace_device_model(tr, &c, &dev, applied, n_applied)) {
    int st = cmd_fail(1, NULL);
    spr_trace_close(tr, 0);
    spr_run_free(run);
    spr_device_free(&dev);
    return st;
  }
  spr_device_free(&dev);
  const int tty = isatty(STDERR_FILENO);
  char source[SPR_STRING_MAX + 32];
  if (c.wl.source == SPR_SOURCE_QKV)
    snprintf(source, sizeof source, "%s item %d", c.wl.qkv_file, c.wl.qkv_item);
  else
    snprintf(source, sizeof source, "%s", spr_preset_name(c.wl.preset));
  printf("sprintsim %s: %s, %d layers x %d heads, N = %d, d = %d, seed %llu, %ld thread%s\n",
         PACKAGE_VERSION, source, c.wl.n_layers, c.wl.n_heads,
         c.wl.seq_len, c.wl.head_dim, (unsigned long long)c.seed, threads,
         threads == 1 ? "" : "s");
  print_table_header();
  int status = 0, stdout_closed = 0;
  for (int l = 0; l < c.wl.n_layers && !cmd_interrupted; l++) {
    if (tty) fprintf(stderr, "\rlayer %d/%d ...", l + 1, c.wl.n_layers);
    int rc = spr_run_layer(run, l);
    if (rc == SPR_ECANCELED) break;
    if (rc) {
      status = cmd_fail(1, NULL);
      break;
    }
    for (int h = 0; h < c.wl.n_heads && !status; h++)
      if (spr_trace_write_head(tr, spr_run_result(run, l, h))) status = cmd_fail(1, NULL);
    if (status) break;
    if (tty) fprintf(stderr, "\r%*s\r", 24, "");
    print_layer(run, &c, l);
    if (fflush(stdout) || ferror(stdout)) {
      stdout_closed = 1;
      break;
    }
  }
  if (tty) fprintf(stderr, "\r%*s\r", 24, "");
  if (!status && (cmd_interrupted || stdout_closed)) {
    fprintf(stderr, "%s: %s; %s not written\n", cmd_prog,
            cmd_interrupted ? "interrupted" : "standard output closed", out);
    status = cmd_interrupted ? 130 : 1;
  }
  if (!status && spr_trace_write_summary(tr, spr_run_results(run))) status = cmd_fail(1, NULL);
  if (!status) {
    print_total(run, &c);
    print_schemes(run, &c);
    if (spr_trace_close(tr, 1)) status = cmd_fail(1, NULL);
    else printf("trace: %s\n", out);
  } else {
    spr_trace_close(tr, 0);
  }
  spr_run_free(run);
  if (status == 1) {
    /* HDF5 1.10.8 can crash in its exit handler after a failed write
     * (spr_trace.h): leave without running it */
    fflush(stdout);
    fflush(stderr);
    _exit(status);
  }
  return status;
}

static void cmd_usage_sweep(FILE *f) {
  fprintf(f,
          "usage: sprintsim sweep CONFIG [-o SWEEP.h5] [--threads N]\n"
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
          "metrics (mass_retained, rel_fro, ...); workload.source = vit reports the\n"
          "ViT's top1, agreement, top1_exact (exact attention's top-1, which has no\n"
          "row: it is not priced) and loss_pp (docs/vit.md, example\n"
          "examples/vit-sweep.ini).\n"
          "\n"
          "  -o, --output FILE  HDF5 results (default sprintsim-sweep.h5); the CSV is\n"
          "                     written beside it (FILE without .h5, plus .csv); both\n"
          "                     are written as NAME.tmp.XXXXXX and renamed when complete\n"
          "  --threads N        points evaluated at once (default: OMP_NUM_THREADS or\n"
          "                     all cores)\n"
          "  -h, --help         this help\n"
          "\n"
          "Plots: scripts/plot SWEEP.h5.  Exit status: 0 success, 1 error, 2 bad command\n"
          "line, 130 interrupted (nothing written).\n");
}

static double cmd_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmd_sweep(int argc, char **argv) {
  cmd_opts opt = {"sweep", cmd_usage_sweep, CMD_OPT_THREADS, "with a [sweep] section ", NULL,
                  "sprintsim-sweep.h5", NULL, NULL, omp_get_max_threads()};
  int st0 = cmd_parse_opts(argc, argv, &opt);
  if (st0 >= 0) return st0;
  const char *cfg_path = opt.config, *out = opt.out;
  long threads = opt.threads;
  spr_sweep *sw = NULL;
  if (spr_sweep_load(cfg_path, &sw)) return cmd_fail(1, NULL);
  char *csv = spr_sweep_csv_path(out);
  spr_sweep_out *o = NULL;
  if (!csv) {
    spr_sweep_free(sw);
    fprintf(stderr, "%s: out of memory\n", cmd_prog);
    return 1;
  }
  if (spr_sweep_out_open(out, csv, &o)) {
    int st = cmd_fail(1, NULL);
    free(csv);
    spr_sweep_free(sw);
    return st;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = cmd_on_signal;
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  const int P = spr_sweep_npoints(sw);
  const spr_evaluator *ev = spr_sweep_evaluator(sw);
  if (threads > P) threads = P;
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
    int rc = spr_sweep_eval_point(sw, p, &cmd_interrupted);
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
    fprintf(stderr, "%s: interrupted after %d of %d points; %s and %s not written\n", cmd_prog, done, P,
                out, csv);
    status = 130;
  }
  if (status) {
    spr_sweep_out_abort(o);
  } else if (spr_sweep_out_commit(o, sw, PACKAGE_VERSION)) {
    status = cmd_fail(1, NULL);
  } else {
    printf("sweep: %s, %s (%d rows) in %.1f s\n", out, csv, P * spr_sweep_nschemes(sw), cmd_now_s() - t0);
  }
  free(csv);
  spr_sweep_free(sw);
  return status;
}

/* --- calibrate ------------------------------------------------------------- */

static void cmd_usage_calibrate(FILE *f) {
  fprintf(f,
          "usage: sprintsim calibrate CONFIG [-o DEVICE.h5] [--seed N]\n"
          "\n"
          "Measure the devices of CONFIG with ngspice and fit the simulator's models\n"
          "(docs/calibration.md), in seven steps:\n"
          "  1 cell I-V at several G in [g_min, g_max]          -> crossbar.cell_v0\n"
          "  2 exact currents of random arrays (ngspice checks  -> crossbar.ir_alpha_wl,\n"
          "    the nodal solver)                                   ir_alpha_bl\n"
          "  3 column .noise over analog.bandwidth              -> analog.thermal_excess\n"
          "  4 comparator Monte-Carlo trip currents             -> analog.cmp_offset_sigma\n"
          "  5 comparator .noise over analog.bandwidth          -> analog.cmp_noise_sigma\n"
          "  6 comparator step transients at several overdrives -> energy.cmp_per_decision\n"
          "  7 read energy of arrays of several sizes           -> energy.imc_mac_per_op\n"
          "\n"
          "CONFIG is an ordinary configuration (its crossbar, analog, energy and timing\n"
          "keys give sizes, g_min/g_max, v_read, r_wl/r_bl, temperature, bandwidth and\n"
          "clock; run.seed seeds every Monte Carlo) plus an optional [calibrate]\n"
          "section with the SPICE device and circuit, for example:\n"
          "\n"
          "  [calibrate]\n"
          "  cell_v0 = 0.25 V          ; sinh law I = I0 exp(-gap/g0) sinh(V/V0)\n"
          "  cmp_samples = 200         ; Monte-Carlo comparators\n"
          "  cmp_r_sense = 20 kohm     ; comparator sense resistors\n"
          "  timeout = 120 s           ; limit of each ngspice job\n"
          "\n"
          "Every key, its default and unit: docs/calibration.md (examples/calibrate.ini\n"
          "writes them all out).  The defaults take 15 to 35 s.\n"
          "\n"
          "  -o, --output FILE  device-model file (default sprintsim-device.h5); written\n"
          "                     as FILE.tmp.XXXXXX and renamed when complete\n"
          "  --seed N           overrides run.seed\n"
          "  -h, --help         this help\n"
          "\n"
          "Progress and each step's time go to standard error, the fitted parameters\n"
          "to standard output.  Then set run.device_model = DEVICE.h5 in a run's\n"
          "configuration.  Exit status: 0 success, 1 error (no file written), 2 bad\n"
          "command line, 130 interrupted (no file written).\n");
}

/* Lines of the [calibrate] keys given (0: not given), for duplicates and
 * for naming the line of a key in a relation error. */
typedef struct {
  spr_cal_params *p;
  int line[SPR_CAL_MAX_KEYS];
} cal_parse;

static int on_calibrate_key(void *user, const char *name, const char *value, int line,
                            const char *origin) {
  cal_parse *cp = user;
  int ki = spr_cal_key_find(name);
  if (ki >= 0 && cp->line[ki])
    return spr_error(SPR_ECONFIG, "%s: [calibrate] key '%s' given twice (first on line %d)", origin,
                     name, cp->line[ki]);
  int rc = spr_cal_params_set(cp->p, name, value, origin);
  if (!rc) cp->line[ki] = line;
  return rc;
}

static int cmd_calibrate(int argc, char **argv) {
  cmd_opts o = {"calibrate", cmd_usage_calibrate, CMD_OPT_SEED, "", NULL, "sprintsim-device.h5", NULL, NULL,
                1};
  int st = cmd_parse_opts(argc, argv, &o);
  if (st >= 0) return st;
  const char *cfg_path = o.config, *out = o.out, *seed = o.seed;
  spr_config c;
  spr_cal_params p;
  spr_config_default(&c);
  spr_cal_params_default(&p);
  cal_parse cp;
  memset(&cp, 0, sizeof cp);
  cp.p = &p;
  if (spr_config_parse(&c, cfg_path, "calibrate", on_calibrate_key, &cp) ||
      spr_config_resolve(&c, cfg_path))
    return cmd_fail(1, NULL);
  if (seed && spr_config_set(&c, "run", "seed", seed, "--seed")) return cmd_fail(CMD_EXIT_USAGE, NULL);
  if (spr_cal_params_check(&p, &c)) {
    /* a relation between keys: name the line of the first key the message
     * names, when the file gave it */
    int line = 0;
    const char *first = NULL, *msg = spr_errmsg();
    for (int k = 0; k < spr_cal_nkeys(); k++) {
      char pat[64];
      snprintf(pat, sizeof pat, " %s ", spr_cal_key_name(k));
      const char *at = strstr(msg, pat);
      if (at && (!first || at < first)) {
        first = at;
        line = cp.line[k];
      }
    }
    if (line) fprintf(stderr, "%s: %s:%d: %s\n", cmd_prog, cfg_path, line, spr_errmsg());
    else fprintf(stderr, "%s: %s: %s\n", cmd_prog, cfg_path, spr_errmsg());
    return 1;
  }
  spr_cal *cal = NULL;
  if (spr_cal_alloc(&c, &p, &cal)) return cmd_fail(1, NULL);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = cmd_on_signal;
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  spr_cal_set_cancel(cal, &cmd_interrupted);

  fprintf(stderr, "sprintsim %s: calibrate %s: seed %llu, output %s\n", PACKAGE_VERSION, cfg_path,
          (unsigned long long)c.seed, out);
  const double t0 = cmd_now_s();
  int status = 0;
  for (int k = 0; k < SPR_CAL_N_STEPS && !status; k++) {
    char sum[1024];
    const double ts = cmd_now_s();
    fprintf(stderr, "calibrate: [%d/%d] %s ...\n", k + 1, SPR_CAL_N_STEPS, spr_cal_step_name(k));
    int rc = spr_cal_step(cal, k, sum, sizeof sum);
    if (rc == SPR_ECANCELED || (rc && cmd_interrupted)) {
      fprintf(stderr, "%s: interrupted in step %d (%s) after %.1f s; %s not written\n", cmd_prog, k + 1,
              spr_cal_step_name(k), cmd_now_s() - t0, out);
      status = 130;
    } else if (rc) {
      fprintf(stderr, "%s: %s; %s not written\n", cmd_prog, spr_errmsg(), out);
      status = 1;
    } else {
      fprintf(stderr, "calibrate: [%d/%d] %s done in %.1f s: %s\n", k + 1, SPR_CAL_N_STEPS,
              spr_cal_step_name(k), cmd_now_s() - ts, sum);
    }
  }
  spr_device *dev = status ? NULL : spr_cal_device(cal, PACKAGE_VERSION);
  if (!status && !dev) status = cmd_fail(1, NULL);
  if (!status && cmd_interrupted) {
    fprintf(stderr, "%s: interrupted; %s not written\n", cmd_prog, out);
    status = 130;
  }
  if (!status && spr_device_write(out, dev)) status = cmd_fail(1, NULL);
  if (!status) {
    printf("%-20s %-26s %13s %13s %13s %10s %6s\n", "parameter", "key", "value", "ci95_lo",
           "ci95_hi", "r2", "n");
    for (int i = 0; i < dev->n_params; i++) {
      const spr_device_param *q = &dev->params[i];
      printf("%-20s %-26s %13.6g %13.6g %13.6g %10.6f %6lld  %s\n", q->name,
             q->key[0] ? q->key : "(informational)", q->value, q->ci95_lo, q->ci95_hi, q->r2,
             (long long)q->n_points, strcmp(q->unit, "1") ? q->unit : "");
    }
    printf("calibrate: %s written in %.1f s (%d parameters, %d data arrays, %d netlists)\n", out,
           cmd_now_s() - t0, dev->n_params, dev->n_data, dev->n_netlists);
  }
  spr_cal_free(cal);
  return status;
}

static void usage_crossbar(FILE *f) {
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
          "                and resistances as attributes; written atomically\n");
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

static int cmd_crossbar(int argc, char **argv) {
  const char *gpath = NULL, *vpath = NULL, *out = NULL, *model_s = NULL;
  double r_wl = -1, r_bl = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage_crossbar(stdout);
      return 0;
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
      /* ngspice in a child process per input vector (calibration/spr_spice.h) */
      for (int m = 0; m < M && !rc; m++)
        rc = spr_spice_crossbar_currents(G, R, C, r_wl, r_bl, V + (size_t)m * R, I + (size_t)m * C, 600.0);
    }
    if (rc) {
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

static int cmd_config(int argc, char **argv) {
  if (argc > 2 || (argc == 2 && argv[1][0] == '-' && argv[1][1])) {
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
      printf("usage: sprintsim config [CONFIG]\n\nPrint the resolved configuration "
             "(defaults, or CONFIG over the defaults) as INI text.\n");
      return 0;
    }
    fprintf(stderr, "%s: config: expected at most one CONFIG file\n", cmd_prog);
    return CMD_EXIT_USAGE;
  }
  spr_config c;
  spr_config_default(&c);
  int rc = argc == 2 ? spr_config_load(&c, argv[1]) : spr_config_resolve(&c, "built-in default");
  if (!rc) rc = spr_qkv_resolve(&c, argc == 2 ? argv[1] : "built-in default");
  if (rc) return cmd_fail(1, NULL);
  /* with a device model, print the configuration a run would use (the
   * list of keys it sets goes to stderr, stdout stays INI) */
  spr_device dev;
  int applied[SPR_DEVICE_MAX_PARAMS], n_applied;
  rc = cmd_load_device_model(&c, &dev, applied, &n_applied, stderr);
  spr_device_free(&dev);
  if (rc) return cmd_fail(1, NULL);
  char *ini = spr_config_to_ini(&c);
  if (!ini) {
    fprintf(stderr, "%s: out of memory\n", cmd_prog);
    return 1;
  }
  fputs(ini, stdout);
  free(ini);
  return 0;
}

static void cmd_usage_synth(FILE *f) {
  fprintf(f,
          "usage: sprintsim synth [CONFIG] -o FILE.h5 [--batch B] [--pad P]\n"
          "\n"
          "Write the synthetic generator's Q, K, V (workload keys of CONFIG: preset,\n"
          "seq_len, layers, heads, head_dim; run.seed) as a sprintsim-qkv file\n"
          "(docs/qkv.md), float32.\n"
          "  -o FILE.h5   output, written atomically\n"
          "  --batch B    B items (datasets (B, heads, N, d) and a /mask (B, N));\n"
          "               item b is the generator's output for seed run.seed + b\n"
          "               with N - b P real tokens, then P b padding tokens of zeros\n"
          "               (mask 0); without --batch: datasets (heads, N, d), no mask\n"
          "  --pad P      padding tokens added per item (default 0)\n");
}

/* The generator's Q, K, V in the sprintsim-qkv format. */
static int cmd_synth(int argc, char **argv) {
  const char *cfg_path = NULL, *out = NULL;
  long batch = 0, pad = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      cmd_usage_synth(stdout);
      return 0;
    } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
      if (++i >= argc || !argv[i][0]) {
        fprintf(stderr, "%s: synth: %s needs a file name\n", cmd_prog, a);
        return CMD_EXIT_USAGE;
      }
      out = argv[i];
    } else if (!strcmp(a, "--batch")) {
      if (cmd_parse_int_arg("--batch", i + 1 < argc ? argv[++i] : NULL, 1, 4096, &batch)) return CMD_EXIT_USAGE;
    } else if (!strcmp(a, "--pad")) {
      if (cmd_parse_int_arg("--pad", i + 1 < argc ? argv[++i] : NULL, 0, SPR_QKV_MAX_SEQ, &pad)) return CMD_EXIT_USAGE;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "%s: synth: unknown option '%s' (see 'sprintsim synth --help')\n", cmd_prog, a);
      return CMD_EXIT_USAGE;
    } else if (!cfg_path) {
      cfg_path = a;
    } else {
      fprintf(stderr, "%s: synth: unexpected argument '%s' (one CONFIG at most)\n", cmd_prog, a);
      return CMD_EXIT_USAGE;
    }
  }
  if (!out) {
    fprintf(stderr, "%s: synth: -o FILE.h5 is required (see 'sprintsim synth --help')\n", cmd_prog);
    return CMD_EXIT_USAGE;
  }
  spr_config c;
  spr_config_default(&c);
  int rc = cfg_path ? spr_config_load(&c, cfg_path) : spr_config_resolve(&c, "built-in default");
  if (rc) return cmd_fail(1, NULL);
  if (c.wl.source != SPR_SOURCE_SYNTHETIC) {
    fprintf(stderr, "%s: synth: %s: workload.source must be synthetic\n", cmd_prog, cfg_path);
    return 1;
  }
  const int L = c.wl.n_layers, H = c.wl.n_heads, N = c.wl.seq_len, D = c.wl.head_dim;
  const int items = batch ? (int)batch : 1;
  if (pad && !batch) {
    fprintf(stderr, "%s: synth: --pad needs --batch\n", cmd_prog);
    return CMD_EXIT_USAGE;
  }
  if ((long)N - (items - 1) * pad < 2) {
    fprintf(stderr, "%s: synth: item %d would have %ld real tokens (N %d - %d x pad %ld); at least 2\n",
            cmd_prog, items - 1, (long)N - (items - 1) * pad, N, items - 1, pad);
    return CMD_EXIT_USAGE;
  }
  const size_t nd = (size_t)N * D;
  uint8_t *mask = batch ? calloc((size_t)items * N, 1) : NULL;
  float *Q = calloc(nd, sizeof *Q), *K = calloc(nd, sizeof *K), *V = calloc(nd, sizeof *V);
  spr_qkv_writer *w = NULL;
  int status = 0;
  if ((batch && !mask) || !Q || !K || !V) {
    fprintf(stderr, "%s: synth: out of memory\n", cmd_prog);
    status = 1;
  }
  for (int b = 0; !status && mask && b < items; b++)
    memset(mask + (size_t)b * N, 1, (size_t)(N - b * pad));
  if (!status && spr_qkv_create(out, L, H, (int)batch, N, D, mask, &w)) status = cmd_fail(1, NULL);
  for (int b = 0; !status && b < items; b++) {
    spr_workload_params wl = c.wl;
    wl.seq_len = N - (int)(b * pad);
    for (int l = 0; !status && l < L; l++)
      for (int h = 0; !status && h < H; h++) {
        /* the item's tokens first, zero rows of padding after */
        memset(Q, 0, nd * sizeof *Q);
        memset(K, 0, nd * sizeof *K);
        memset(V, 0, nd * sizeof *V);
        if (spr_synth_head(&wl, c.seed + (uint64_t)b, l, h, Q, K, V) ||
            spr_qkv_write_head(w, l, h, b, Q, K, V))
          status = cmd_fail(1, out);
      }
  }
  if (w && spr_qkv_finish(w, !status) && !status) status = cmd_fail(1, NULL);
  if (!status)
    printf("synth: %s: %d layers x %d heads, N = %d, d = %d, %d item%s (%ld padding tokens per item), seed %llu\n",
           out, L, H, N, D, items, items == 1 ? "" : "s", pad, (unsigned long long)c.seed);
  free(mask);
  free(Q);
  free(K);
  free(V);
  return status;
}

/* A trace's tables (sim/spr_report.h). */
static int cmd_report(int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
    printf("usage: sprintsim report FILE.h5\n\nPrint, from a trace alone, per layer and in total for "
           "every scheme: keep rate,\nbytes fetched and reused, energy, cycles, speedup and energy "
           "reduction over\ndense, accuracy metrics; then energy and cycles by component.\n");
    return 0;
  }
  if (argc != 2) {
    fprintf(stderr, "%s: report: expected one trace file (see 'sprintsim report --help')\n", cmd_prog);
    return CMD_EXIT_USAGE;
  }
  if (spr_report_print(argv[1], stdout)) return cmd_fail(1, NULL);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage_main(stderr);
    return CMD_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
    usage_main(stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version")) {
    printf("sprintsim %s\n", PACKAGE_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "help")) {
    if (argc > 2 && !strcmp(argv[2], "run")) cmd_usage_run(stdout);
    else if (argc > 2 && !strcmp(argv[2], "synth")) cmd_usage_synth(stdout);
    else if (argc > 2 && !strcmp(argv[2], "sweep")) cmd_usage_sweep(stdout);
    else if (argc > 2 && !strcmp(argv[2], "calibrate")) cmd_usage_calibrate(stdout);
    else if (argc > 2 && !strcmp(argv[2], "config")) {
      char *v[] = {"config", "--help", NULL};
      return cmd_config(2, v);
    } else usage_main(stdout);
    return 0;
  }
  if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1);
  if (!strcmp(cmd, "config")) return cmd_config(argc - 1, argv + 1);
  if (!strcmp(cmd, "synth")) return cmd_synth(argc - 1, argv + 1);
  if (!strcmp(cmd, "sweep")) return cmd_sweep(argc - 1, argv + 1);
  if (!strcmp(cmd, "crossbar")) return cmd_crossbar(argc - 1, argv + 1);
  if (!strcmp(cmd, "calibrate")) return cmd_calibrate(argc - 1, argv + 1);
  if (!strcmp(cmd, "report")) return cmd_report(argc - 1, argv + 1);
  fprintf(stderr, "%s: unknown command '%s' (see 'sprintsim --help')\n", cmd_prog, cmd);
  return CMD_EXIT_USAGE;
}
