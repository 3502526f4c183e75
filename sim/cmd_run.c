/* cmd_run.c - sprintsim run: a workload through every scheme, a trace. */
#include "config.h"
#include "cmd.h"
#include "spr_config.h"
#include "spr_device.h"
#include "spr_error.h"
#include "spr_pipeline.h"
#include "spr_qkv.h"
#include "spr_table.h"
#include "spr_trace.h"
#include "spr_wear.h"
#include "spr_model_eval.h"
#include "spr_report.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cmd_usage_run(FILE *f) {
  fprintf(f,
          "usage: sprintsim run [CONFIG] [-o FILE.h5] [--seed N] [--threads N]\n"
          "                     [--trace summary|masks|full] [--format text|csv|json]\n"
          "                     [--set SECTION.KEY=VALUE ...]\n"
          "\n"
          "Simulate every layer and head of the workload: keys programmed into ReRAM\n"
          "arrays, queries applied as row voltages, one noisy threshold comparator per\n"
          "column.  Prints a per-layer table and writes an HDF5 trace.\n"
          "With workload.source = model (docs/models.md) it runs a model file (the\n"
          "ViT on Fashion-MNIST test images, the character language model on windows\n"
          "of its evaluation text) instead, every head under each scheme, beside\n"
          "exact attention and the dense reference model, and prints top-1 or bits\n"
          "per character, the loss against the reference, keep rate, bytes, energy\n"
          "and cycles per scheme.\n"
          "\n"
          "  CONFIG             INI file (keys: 'sprintsim config' and README); without\n"
          "                     it, the built-in default: BERT-base preset (12 layers x\n"
          "                     12 heads, N = 512, d = 64) with SPRINT's defaults\n"
          "  -o, --output FILE  trace file (default sprintsim-run.h5); written as\n"
          "                     FILE.tmp.XXXXXX and renamed when complete; it may not\n"
          "                     name an input of the run (CONFIG, the Q/K/V file, the\n"
          "                     device model, the model files)\n"
          "  --seed N           top-level seed (overrides run.seed; default 1)\n"
          "  --threads N        OpenMP threads (default: OMP_NUM_THREADS or all cores);\n"
          "                     results are bit-identical for any N\n"
          "  --trace LEVEL      summary: per-head statistics; masks: also bit-packed\n"
          "                     analog and ideal masks; full: also quantized Q and K,\n"
          "                     ideal and analog scores, thresholds (overrides run.trace)\n"
          "  --format FORMAT    the tables as text (default), csv (the per-layer table,\n"
          "                     an empty line, the scheme table) or json (one object:\n"
          "                     \"layers\" and \"schemes\" arrays of rows, the workload,\n"
          "                     \"trace\"); CSV and JSON carry the values unscaled (SI\n"
          "                     units, rates as fractions) and stdout holds them alone\n"
          "                     (the rest goes to stderr); with source = model one\n"
          "                     \"schemes\" table of per-item figures\n");
  cmd_usage_set(f, NULL);
  cmd_usage_progress(f);
  fprintf(f,
          "  -h, --help         this help\n"
          "\n"
          "With run.device_model set in CONFIG, the device-model file (from a SPICE\n"
          "calibration, docs/calibration.md) is read, validated and applied over the\n"
          "configuration before the run; the keys it sets are printed and recorded in\n"
          "the trace (/device_model).\n"
          "\n"
          "Exit status: 0 success, 1 error, 2 bad command line, 130 interrupted.\n");
}

/* The per-layer table (text: the columns of README's "Table columns"). */
static const spr_table_col layer_cols[] = {
    {"layer", NULL, 5, "%.0f", 0, NULL, 0},
    {"keep_rate", "keep%", 7, "%.2f", 100, NULL, 0},
    {"ideal_keep_rate", "ideal%", 7, "%.2f", 100, NULL, 0},
    {"false_prune_rate", "fprune%", 8, "%.3f", 100, NULL, 0},
    {"false_keep_rate", "fkeep%", 8, "%.3f", 100, NULL, 0},
    {"mass_retained", "mass", 7, "%.4f", 0, NULL, 0},
    {"ideal_mass_retained", "i.mass", 7, "%.4f", 0, NULL, 0},
    {"threshold", "threshold", 9, NULL, 0, NULL, SPR_COL_TEXT_ONLY},
    {"threshold_min", NULL, 0, NULL, 0, NULL, SPR_COL_DATA_ONLY},
    {"threshold_max", NULL, 0, NULL, 0, NULL, SPR_COL_DATA_ONLY},
};
enum { N_LAYER_COLS = sizeof layer_cols / sizeof layer_cols[0] };

/* Means over results res[0..count) of the table's columns. */
typedef struct {
  double keep, ikeep, fp, fk, mass, imass, tmin, tmax;
} row_means;

static row_means mean_of(const spr_head_result *res, int count) {
  row_means m = {0, 0, 0, 0, 0, 0, 1e300, -1e300};
  for (int k = 0; k < count; k++) {
    const spr_head_result *r = &res[k];
    double nn = (double)spr_pair_count(r->n, r->causal); /* decisions of the head */
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

/* One table row: layer l's heads (with the threshold column), or all
 * heads (l < 0). */
static void print_row(spr_table *t, int l, const spr_head_result *res, int count) {
  row_means m = mean_of(res, count);
  char thr[48] = "";
  if (l >= 0 && m.tmin == m.tmax) snprintf(thr, sizeof thr, "%g", m.tmin);
  else if (l >= 0) snprintf(thr, sizeof thr, "%g..%g", m.tmin, m.tmax);
  const spr_table_cell row[N_LAYER_COLS] = {
      {l < 0 ? "all" : NULL, l}, {NULL, m.keep}, {NULL, m.ikeep}, {NULL, m.fp}, {NULL, m.fk},
      {NULL, m.mass}, {NULL, m.imass}, {thr, 0}, {NULL, m.tmin}, {NULL, m.tmax}};
  spr_table_row(t, row);
}

/* Totals over all heads of each scheme, with ratios to dense.  Heads run
 * one after another, so latencies and energies add. */
static void print_schemes(spr_table *t, const spr_run *run, const spr_config *c) {
  const int LH = c->wl.n_layers * c->wl.n_heads;
  const spr_head_result *res = spr_run_results(run);
  double e[SPR_N_SCHEMES] = {0}, cyc[SPR_N_SCHEMES] = {0};
  for (int k = 0; k < LH; k++)
    for (int s = 0; s < SPR_N_SCHEMES; s++) {
      e[s] += res[k].scheme[s].energy_total_J;
      cyc[s] += res[k].scheme[s].cycles_total;
    }
  const int topk = c->dig.top_k < c->wl.seq_len ? c->dig.top_k : c->wl.seq_len;
  char topk_title[24], topk_name[32];
  snprintf(topk_title, sizeof topk_title, "top%d", topk);
  snprintf(topk_name, sizeof topk_name, "top%d_recall", topk);
  const int tl = SPR_SCHEME_DENSE_TILED, has_tl = res[0].scheme[tl].ran;
  const spr_table_col all_cols[] = {
      {"scheme", NULL, 11, NULL, 0, NULL, SPR_COL_LEFT},
      {"keep_rate", "keep%", 6, "%.2f", 100, NULL, 0},
      {"bytes_fetched", "fetched MB", 11, "%.2f", 1e-6, NULL, 0},
      {"bytes_reused", "reused MB", 10, "%.2f", 1e-6, NULL, 0},
      {"energy_J", "energy uJ", 10, "%.1f", 1e6, NULL, 0},
      {"cycles", "Mcycles", 8, "%.2f", 1e-6, NULL, 0},
      {"speedup", NULL, 8, "%.2f", 0, "x", 0},
      {"energy_reduction", "energy-", 8, "%.2f", 0, "x", 0},
      {"speedup_tiled", "speedup.t", 9, "%.2f", 0, "x", 0},
      {"energy_reduction_tiled", "energy-.t", 9, "%.2f", 0, "x", 0},
      {"rel_fro", "rel.err", 8, "%.4f", 0, NULL, 0},
      {"cos_mean", "cos.mean", 9, "%.5f", 0, NULL, 0},
      {"cos_min", "cos.min", 8, "%.4f", 0, NULL, 0},
      {"mass_retained", "mass", 6, "%.4f", 0, NULL, 0},
      {"top1_recall", "top1", 6, "%.4f", 0, NULL, 0},
      {topk_name, topk_title, 5, "%.4f", 0, NULL, 0},
  };
  enum { NC = sizeof all_cols / sizeof all_cols[0], TL0 = 8 }; /* TL0, TL0 + 1: the tiled ratios */
  spr_table_col cols[NC];
  int nc = 0;
  for (int k = 0; k < NC; k++)
    if (has_tl || (k != TL0 && k != TL0 + 1)) cols[nc++] = all_cols[k];
  spr_table_text(t, "\nspeedup and energy- over dense (one query at a time)%s\n",
                 has_tl ? "; speedup.t and energy-.t over dense_tiled (K/V tiles read once per "
                          "query block)" : "");
  spr_table_begin(t, "schemes", NULL, cols, nc);
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
    const spr_table_cell all[NC] = {{spr_scheme_name(s), 0}, {NULL, keep}, {NULL, fb}, {NULL, rb},
                                    {NULL, e[s]}, {NULL, cyc[s]},
                                    {NULL, cyc[s] > 0 ? cyc[dn] / cyc[s] : 0},
                                    {NULL, e[s] > 0 ? e[dn] / e[s] : 0},
                                    {NULL, cyc[s] > 0 ? cyc[tl] / cyc[s] : 0},
                                    {NULL, e[s] > 0 ? e[tl] / e[s] : 0}, {NULL, fro}, {NULL, cm},
                                    {NULL, cmin}, {NULL, mass}, {NULL, t1}, {NULL, tk}};
    spr_table_cell row[NC];
    for (int k = 0, q = 0; k < NC; k++)
      if (has_tl || (k != TL0 && k != TL0 + 1)) row[q++] = all[k];
    spr_table_row(t, row);
  }
  spr_table_end(t);
}

/* The wear of SPRINT's scoring arrays over this run (core/spr_wear.h):
 * a text line and the JSON member "wear"; returns 0 or the estimate's
 * error (an impossible wear.scoring_cells). */
static int print_wear(spr_table *t, const spr_run *run, const spr_config *c) {
  const int LH = c->wl.n_layers * c->wl.n_heads;
  const spr_head_result *res = spr_run_results(run);
  double seq = 0, head = 0, lat = 0;
  for (int k = 0; k < LH; k++) {
    const spr_scheme_result *x = &res[k].scheme[SPR_SCHEME_SPRINT];
    seq += (double)x->xbar_cells_written;
    head = (double)x->xbar_cells_written > head ? (double)x->xbar_cells_written : head;
    lat += x->cycles_total;
  }
  spr_wear_result r;
  char line[512];
  int rc = spr_wear_estimate(&c->wear, seq, head, lat, c->energy.clock_Hz, &r);
  if (rc) return rc;
  spr_wear_format(&c->wear, &r, line, sizeof line);
  spr_table_text(t, "\n%s\n", line);
  spr_table_meta_str(t, "wear", line);
  return 0;
}

static void print_layer(spr_table *t, const spr_run *run, const spr_config *c, int l) {
  print_row(t, l, spr_run_result(run, l, 0), c->wl.n_heads);
}

static void print_total(spr_table *t, const spr_run *run, const spr_config *c) {
  print_row(t, -1, spr_run_results(run), c->wl.n_layers * c->wl.n_heads);
}

/* The layer a run is in, for its progress line ("layer 3/12"). */
typedef struct {
  atomic_int layer; /* 1-based; 0 before the first */
  int layers;
} layer_at;

static void layer_prefix(void *user, char *buf, size_t n) {
  layer_at *a = user;
  snprintf(buf, n, "layer %d/%d", atomic_load(&a->layer), a->layers);
}

/* run_model's name for cmd_check_output. */
static int check_output(const char *out) { return cmd_check_output(out); }

/* workload.source = model: a model file on its evaluation items under every
 * enabled scheme, beside exact attention and the dense reference model
 * (docs/models.md).  dev_id, dev_bytes: the device model's checksum and
 * size as read (when c->device_model is set), for the output's /inputs;
 * progress: draw progress lines on stderr (cmd_progress_wanted). */
static int run_model(const spr_config *c, const char *out, long threads, int format,
                     const char *dev_id, long long dev_bytes, int progress) {
  /* with --format csv or json, standard output holds the table alone */
  FILE *info = format == SPR_TABLE_TEXT ? stdout : stderr;
  spr_model m, ref;
  spr_fmnist data;
  char ref_path[SPR_STRING_MAX];
  int have_ref = 0, have_data = 0, status = 0;
  if (check_output(out)) return cmd_fail(1, NULL);
  if (spr_model_load(c->wl.model, &m)) return cmd_fail(1, NULL);
  if (spr_model_reference_path(c, c->wl.model, &m, ref_path, sizeof ref_path)) {
    status = cmd_fail(1, NULL);
    goto done;
  }
  if (ref_path[0] && cmd_check_input("run", "-o", out, "the reference model", ref_path)) {
    status = CMD_EXIT_USAGE;
    goto done;
  }
  if (ref_path[0]) {
    if (spr_model_load(ref_path, &ref)) {
      spr_error_prefix(SPR_EIO, "the reference model of %s", c->wl.model);
      status = cmd_fail(1, NULL);
      goto done;
    }
    have_ref = 1;
  }
  const int text = m.input == SPR_MODEL_TEXT;
  if (!text) {
    if (spr_fmnist_load(c->wl.dataset, "t10k", &data)) {
      status = cmd_fail(1, NULL);
      goto done;
    }
    have_data = 1;
  }
  /* the inputs the files name (the model's reference, checked above before
   * it is loaded, and the dataset's IDX files), beside those of the
   * configuration (cmd_check_inputs): the output may not replace one */
  if (have_data && ((status = cmd_check_input("run", "-o", out, "the test images", data.images_path)) ||
                    (status = cmd_check_input("run", "-o", out, "the test labels", data.labels_path))))
    goto done;
  const int first = text ? c->wl.first_window : c->wl.first_image;
  const int count = text ? c->wl.windows : c->wl.images;
  fprintf(info, "sprintsim %s: model %s (%s, %d layers x %d heads, N = %d, d = %d%s), %s %d..%d, seed "
         "%llu, %ld thread%s\n", PACKAGE_VERSION, c->wl.model, spr_model_input_name(m.input),
         m.depth, m.heads, m.tokens, m.head_dim, m.causal ? ", causal" : "",
         text ? "evaluation windows" : "Fashion-MNIST test images", first, first + count - 1,
         (unsigned long long)c->seed, threads, threads == 1 ? "" : "s");
  fprintf(info, "reference: %s\n", have_ref ? ref_path : "none (losses against exact attention)");
  if (c->thr.mode == SPR_THR_LEARNED && m.has_theta) {
    fprintf(info, "SPRINT thresholds: learned theta + offset %g on q.k/sqrt(d):", c->thr.offset);
    for (int l = 0; l < m.depth; l++) fprintf(info, " %.4g", m.theta[l] + c->thr.offset);
    fprintf(info, "\n");
  } else if (c->thr.mode == SPR_THR_KEEP_RATE) {
    fprintf(info, "SPRINT thresholds: calibrated per %s and %s to keep rate %g\n",
           c->thr.per_head ? "head" : "layer", text ? "window" : "image", c->thr.keep_rate);
  } else if (c->thr.mode == SPR_THR_ANALOG_KEEP_RATE) {
    fprintf(info, "SPRINT thresholds: calibrated per %s and %s to keep rate %g of the analog decisions\n",
           c->thr.per_head ? "head" : "layer", text ? "window" : "image", c->thr.keep_rate);
  } else if (c->thr.mode == SPR_THR_DIRECT) {
    fprintf(info, "SPRINT thresholds: direct, score units\n");
  }
  fprintf(info, "baselines: %s\n", c->bl.match == SPR_MATCH_SPRINT
                                      ? "each matched per layer and item to SPRINT's realised keep "
                                        "rate (baselines.match = sprint)"
                                      : "at their own settings (baselines.match = none)");
  fflush(info);
  spr_model_eval_result r;
  spr_progress prog;
  spr_progress_init(&prog);
  cmd_progress_counter_src pc = {"run", &prog, NULL, NULL, 0, 0};
  cmd_progress *pr = cmd_progress_start(progress, cmd_progress_counter, &pc);
  int erc = spr_model_eval_run(c, &m, c->wl.model, have_ref ? &ref : NULL, ref_path,
                               have_data ? &data : NULL, (int)threads, &cmd_interrupted, &prog, &r);
  cmd_progress_stop(pr);
  if (erc) {
    if (cmd_interrupted) {
      fprintf(stderr, "%s: interrupted; %s not written\n", cmd_prog, out);
      status = 130;
    } else {
      status = cmd_fail(1, NULL);
    }
    goto done;
  }
  /* provenance: the device model beside the files the evaluation read */
  if (c->device_model[0] &&
      spr_model_eval_add_input(&r, "run.device_model", c->device_model, dev_id, dev_bytes)) {
    status = cmd_fail(1, NULL);
    spr_model_eval_result_free(&r);
    goto done;
  }
  const int N = r.n_items, dn = SPR_SCHEME_DENSE, tl = SPR_SCHEME_DENSE_TILED;
  const int has_tl = r.scheme[tl].ran;
  /* one row per scheme, the references first; per-item figures */
  const spr_table_col cols[] = {
      {"scheme", NULL, 11, NULL, 0, NULL, SPR_COL_LEFT},
      {text ? "bpc" : "top1", text ? "bpc" : "top1%", 7, text ? "%.4f" : "%.2f", text ? 1 : 100,
       NULL, 0},
      {"agreement", "agree%", 7, "%.2f", 100, NULL, 0},
      {text ? "loss_pct" : "loss_pp", text ? "loss%" : "loss.pp", 7, "%.3f", 0, NULL, 0},
      {"keep_rate", "keep%", 7, "%.2f", 100, NULL, 0},
      {"bytes_fetched_per_item", text ? "kB/win" : "kB/img", 9, "%.2f", 1e-3, NULL, 0},
      {"energy_J_per_item", text ? "uJ/win" : "uJ/img", 9, "%.3f", 1e6, NULL, 0},
      {"cycles_per_item", text ? "kcyc/win" : "kcyc/img", 9, "%.2f", 1e-3, NULL, 0},
      {"speedup", NULL, 8, "%.2f", 0, "x", 0},
      {"energy_reduction", "energy-", 8, "%.2f", 0, "x", 0},
      {"speedup_tiled", "speedup.t", 9, "%.2f", 0, "x", 0},
      {"energy_reduction_tiled", "energy-.t", 9, "%.2f", 0, "x", 0},
  };
  enum { NCOL = sizeof cols / sizeof cols[0] };
  /* a text model has no agreement column; without dense_tiled no tiled ratios */
#define MODEL_COL_SHOWN(k) (!(text && (k) == 2) && (has_tl || (k) < NCOL - 2))
  spr_table_col shown[NCOL];
  int ncol = 0;
  for (int k = 0; k < NCOL; k++)
    if (MODEL_COL_SHOWN(k)) shown[ncol++] = cols[k];
  spr_table *tab = NULL;
  if (spr_table_open(stdout, format, &tab)) {
    status = cmd_fail(1, NULL);
    spr_model_eval_result_free(&r);
    goto done;
  }
  spr_table_text(tab, "\nspeedup and energy- over dense (one query at a time)%s\n",
                 has_tl ? "; speedup.t and energy-.t over dense_tiled (K/V tiles read once per "
                          "query block)" : "");
  spr_table_meta_str(tab, "sprintsim", PACKAGE_VERSION);
  spr_table_meta_str(tab, "model", c->wl.model);
  spr_table_meta_str(tab, "input", spr_model_input_name(m.input));
  spr_table_meta_num(tab, "causal", m.causal);
  spr_table_meta_str(tab, "reference", have_ref ? ref_path : "");
  spr_table_meta_str(tab, "loss_vs", spr_model_scheme_name(r.loss_vs));
  spr_table_meta_num(tab, "first_item", first);
  spr_table_meta_num(tab, "items", N);
  spr_table_meta_u64(tab, "seed", (unsigned long long)c->seed);
  spr_table_begin(tab, "schemes", NULL, shown, ncol);
  const double none = format == SPR_TABLE_TEXT ? 0 : NAN;
  for (int k = 0; k < SPR_MEVAL_N_SCHEMES; k++) {
    /* the references first: reference, exact, then the priced schemes */
    const int s = k == 0 ? SPR_MEVAL_REFERENCE : k == 1 ? SPR_MEVAL_EXACT : k - 2;
    const spr_model_metrics *x = &r.scheme[s];
    if (!x->ran) continue;
    const int priced = s < SPR_N_SCHEMES;
    /* text: "-" where a row has no ledger; CSV, JSON: empty or null */
    const char *dash = priced || format != SPR_TABLE_TEXT ? NULL : "-";
    spr_table_cell all[NCOL] = {
        {spr_model_scheme_name(s), 0},
        {NULL, x->metric},
        {NULL, x->agreement},
        {NULL, x->loss},
        {NULL, x->keep_rate},
        {dash, priced ? x->bytes_fetched / N : none},
        {dash, priced ? x->energy_J / N : none},
        {dash, priced ? x->cycles / N : none},
        {dash, priced ? r.scheme[dn].cycles / x->cycles : none},
        {dash, priced ? r.scheme[dn].energy_J / x->energy_J : none},
        {dash, priced ? r.scheme[tl].cycles / x->cycles : none},
        {dash, priced ? r.scheme[tl].energy_J / x->energy_J : none},
    };
    spr_table_cell row[NCOL];
    for (int j = 0, q = 0; j < NCOL; j++)
      if (MODEL_COL_SHOWN(j)) row[q++] = all[j];
    spr_table_row(tab, row);
  }
#undef MODEL_COL_SHOWN
  spr_table_end(tab);
  if (r.scheme[SPR_SCHEME_SPRINT].theta_saturated)
    fprintf(info, "note: %lld head evaluations had a learned threshold beyond the %d-bit "
            "generator's range (saturated at its end)\n",
            (long long)r.scheme[SPR_SCHEME_SPRINT].theta_saturated, c->thr.bits);
  fprintf(info, "%d %s in %.1f s\n", N, text ? "windows" : "images", r.seconds);
  int wrc = spr_model_eval_write(out, c, &r, PACKAGE_VERSION);
  if (!wrc && cmd_interrupted == SIGXFSZ) { /* a write past the limit while committing */
    unlink(out);
    fprintf(stderr, "%s: the file size limit (ulimit -f) was reached; %s not written\n", cmd_prog, out);
    wrc = 1;
    status = 1;
  } else if (wrc) {
    status = cmd_fail(1, NULL);
  }
  if (spr_table_close(tab, !wrc) && !wrc) status = cmd_fail(1, "standard output");
  if (!wrc) fprintf(info, "output: %s\n", out);
  spr_model_eval_result_free(&r);
done:
  if (have_data) spr_fmnist_free(&data);
  if (have_ref) spr_model_free(&ref);
  spr_model_free(&m);
  return status;
}

int cmd_run(int argc, char **argv) {
  cmd_opts o = {.cmd = "run", .usage = cmd_usage_run, .config_what = "at most",
                .allow = CMD_OPT_SEED | CMD_OPT_THREADS | CMD_OPT_TRACE | CMD_OPT_OUT |
                         CMD_OPT_SET | CMD_OPT_FORMAT | CMD_OPT_PROGRESS,
                .out = "sprintsim-run.h5", .threads = omp_get_max_threads()};
  int st = cmd_parse_opts(argc, argv, &o);
  if (st >= 0) return st;
  const char *out = o.out, *seed = o.seed, *trace = o.trace;
  const long threads = o.threads;
  spr_config c;
  spr_config_default(&c);
  spr_config_src src;
  if (cmd_config_src(&o, &src)) return 1;
  int rc = spr_config_load_src(&c, &src);
  if (rc) return cmd_fail_rc(rc, NULL);
  if (seed && spr_config_set(&c, "run", "seed", seed, "--seed")) return cmd_fail(CMD_EXIT_USAGE, NULL);
  if (trace && spr_config_set(&c, "run", "trace", trace, "--trace")) return cmd_fail(CMD_EXIT_USAGE, NULL);
  if (spr_qkv_resolve(&c, src.name)) return cmd_fail(1, NULL);
  if ((st = cmd_check_inputs(&o, "-o", out, &c))) return st;
  /* with --format csv or json, standard output holds the tables alone */
  FILE *info = o.format == SPR_TABLE_TEXT ? stdout : stderr;
  spr_device dev;
  int applied[SPR_DEVICE_MAX_PARAMS], n_applied = 0;
  if (cmd_load_device_model(&c, &dev, applied, &n_applied, info)) {
    spr_device_free(&dev);
    return cmd_fail(1, NULL);
  }

  /* the run stops between heads on a signal and deletes its temporary
   * (cmd_signals); a closed stdout stops it too */
  cmd_signals();

  if (c.wl.source == SPR_SOURCE_MODEL) { /* its output records the config, device keys applied */
    char dev_id[sizeof dev.content_id];
    snprintf(dev_id, sizeof dev_id, "%s", dev.content_id);
    const long long dev_bytes = dev.file_bytes;
    spr_device_free(&dev);
    return run_model(&c, out, threads, o.format, dev_id, dev_bytes, cmd_progress_wanted(&o));
  }

  spr_run *run = NULL;
  spr_trace *tr = NULL;
  spr_table *tab = NULL;
  if (spr_run_alloc(&c, (int)threads, &run)) {
    spr_device_free(&dev);
    return cmd_fail(1, NULL);
  }
  spr_run_set_cancel(run, &cmd_interrupted);
  /* errors that depend on the data (the first-order IR drop's range)
   * before any table or file */
  if ((rc = spr_run_check(run))) {
    const char *why;
    int st = rc == SPR_ECANCELED ? cmd_stop_status(&why) : cmd_fail(1, NULL);
    if (rc == SPR_ECANCELED) fprintf(stderr, "%s: %s; %s not written\n", cmd_prog, why, out);
    spr_run_free(run);
    spr_device_free(&dev);
    return st;
  }
  if (spr_trace_create(out, &c, PACKAGE_VERSION, &tr) || spr_table_open(stdout, o.format, &tab)) {
    int st = cmd_fail(1, NULL);
    if (tr) spr_trace_close(tr, 0);
    spr_run_free(run);
    spr_device_free(&dev);
    return st;
  }
  spr_run_set_trace(run, tr); /* the masks of heads in row blocks, in row chunks */
  if (c.device_model[0] && spr_device_trace(tr, c.device_model, &dev, applied, n_applied)) {
    int st = cmd_fail(1, NULL);
    spr_trace_close(tr, 0);
    spr_table_close(tab, 0);
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
    spr_table_close(tab, 0);
    spr_run_free(run);
    spr_device_free(&dev);
    return st;
  }
  const double cal_col_G = c.device_model[0] ? cmd_device_column_G(&dev) : 0;
  spr_device_free(&dev);
  char source[SPR_STRING_MAX + 32];
  if (c.wl.source == SPR_SOURCE_QKV)
    snprintf(source, sizeof source, "%s item %d", c.wl.qkv_file, c.wl.qkv_item);
  else
    snprintf(source, sizeof source, "%s", spr_preset_name(c.wl.preset));
  if (c.wl.causal) strcat(source, ", causal"); /* fits: the buffer has 32 bytes to spare */
  fprintf(info, "sprintsim %s: %s, %d layers x %d heads, N = %d, d = %d, seed %llu, %ld thread%s\n",
          PACKAGE_VERSION, source, c.wl.n_layers, c.wl.n_heads,
          c.wl.seq_len, c.wl.head_dim, (unsigned long long)c.seed, threads,
          threads == 1 ? "" : "s");
  char cmp[400];
  spr_report_comparison(c.thr.mode, c.thr.keep_rate, c.thr.per_head, c.bl.match, cmp, sizeof cmp);
  fprintf(info, "%s\n", cmp);
  spr_table_meta_str(tab, "sprintsim", PACKAGE_VERSION);
  spr_table_meta_str(tab, "workload", source);
  spr_table_meta_num(tab, "n_layers", c.wl.n_layers);
  spr_table_meta_num(tab, "n_heads", c.wl.n_heads);
  spr_table_meta_num(tab, "seq_len", c.wl.seq_len);
  spr_table_meta_num(tab, "head_dim", c.wl.head_dim);
  spr_table_meta_u64(tab, "seed", (unsigned long long)c.seed);
  spr_table_meta_num(tab, "causal", c.wl.causal);
  spr_table_meta_str(tab, "comparison", cmp);
  spr_table_begin(tab, "layers", NULL, layer_cols, N_LAYER_COLS);
  int status = 0, stdout_closed = 0;
  /* progress: the layer and the share of the run's head passes done */
  spr_progress prog;
  spr_progress_init(&prog);
  layer_at at = {0, c.wl.n_layers};
  cmd_progress_counter_src pc = {"run", &prog, layer_prefix, &at, 0, 0};
  spr_run_set_progress(run, &prog);
  cmd_progress *pr = cmd_progress_start(cmd_progress_wanted(&o), cmd_progress_counter, &pc);
  for (int l = 0; l < c.wl.n_layers && !cmd_interrupted; l++) {
    atomic_store(&at.layer, l + 1);
    int rc = spr_run_layer(run, l);
    if (rc == SPR_ECANCELED) break;
    if (rc) {
      cmd_progress_stop(pr);
      pr = NULL;
      status = cmd_fail(1, NULL);
      break;
    }
    for (int h = 0; h < c.wl.n_heads && !status; h++)
      if (spr_trace_write_head(tr, spr_run_result(run, l, h))) status = cmd_fail(1, NULL);
    if (status) break;
    cmd_progress_hold(pr); /* the warning and the table row may share the terminal */
    if (l == 0 && cal_col_G > 0) {
      /* the run's programmed conductances against the device model's */
      double g = 0;
      for (int h = 0; h < c.wl.n_heads; h++) g += spr_run_result(run, 0, h)->mean_cell_G_S;
      cmd_warn_column_G(cal_col_G, c.xbar.rows * g / c.wl.n_heads, info);
    }
    print_layer(tab, run, &c, l);
    const int closed = fflush(stdout) || ferror(stdout);
    cmd_progress_release(pr);
    if (closed) {
      stdout_closed = 1;
      break;
    }
  }
  cmd_progress_stop(pr);
  spr_run_set_progress(run, NULL);
  if (cmd_interrupted || (!status && stdout_closed)) {
    const char *why = "standard output closed";
    const int st = cmd_interrupted ? cmd_stop_status(&why) : 1;
    if (!status || cmd_interrupted == SIGXFSZ)
      fprintf(stderr, "%s: %s; %s not written\n", cmd_prog, why, out);
    if (!status) status = st;
  }
  if (!status && spr_trace_write_summary(tr, spr_run_results(run))) status = cmd_fail(1, NULL);
  if (!status) {
    print_total(tab, run, &c);
    spr_table_end(tab);
    print_schemes(tab, run, &c);
    if (print_wear(tab, run, &c)) {
      status = cmd_fail(1, NULL);
      spr_trace_close(tr, 0);
    } else if (spr_trace_close(tr, 1)) {
      status = cmd_fail(1, NULL);
    } else if (cmd_interrupted == SIGXFSZ) { /* a write past the limit while committing */
      unlink(out);
      fprintf(stderr, "%s: the file size limit (ulimit -f) was reached; %s not written\n", cmd_prog, out);
      status = 1;
    } else {
      spr_table_text(tab, "trace: %s\n", out);
      spr_table_meta_str(tab, "trace", out);
      if (o.format == SPR_TABLE_CSV) fprintf(stderr, "trace: %s\n", out);
    }
  } else {
    spr_trace_close(tr, 0);
  }
  if (spr_table_close(tab, !status) && !status) status = cmd_fail(1, "standard output");
  spr_run_free(run);
  return status;
}
