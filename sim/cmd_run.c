/* cmd_run.c - sprintsim run: a workload through every scheme, a trace. */
#include "config.h"
#include "cmd.h"
#include "spr_config.h"
#include "spr_device.h"
#include "spr_error.h"
#include "spr_pipeline.h"
#include "spr_qkv.h"
#include "spr_trace.h"
#include "spr_vit_eval.h"

#include <errno.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cmd_usage_run(FILE *f) {
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

/* workload.source = vit: the ViT on Fashion-MNIST test images under every
 * enabled scheme (docs/vit.md). */
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

int cmd_run(int argc, char **argv) {
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
  /* provenance: a checksum of each input file as read */
  char qid[32];
  long long qsize = 0;
  if ((c.device_model[0] &&
       spr_trace_write_input(tr, "run.device_model", c.device_model, dev.content_id, dev.file_bytes)) ||
      (c.wl.source == SPR_SOURCE_QKV &&
       (spr_run_qkv_id(run, qid, sizeof qid, &qsize) ||
        spr_trace_write_input(tr, "workload.qkv_file", c.wl.qkv_file, qid, qsize)))) {
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
  return status;
}
