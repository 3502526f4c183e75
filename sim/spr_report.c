/* spr_report.c - `sprintsim report`: per-layer and total tables of every
 * scheme in a trace, read back through the isolated reader (spr_h5r.h):
 * a trace may come from anyone. */
#include "config.h"
#include "spr_report.h"
#include "spr_error.h"
#include "spr_h5r.h"
#include "spr_ledger.h"
#include "spr_result.h"
#include "spr_table.h"
#include "spr_wear.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  double keep, fetched, reused, energy, cycles, fro, cos_mean, cos_min, mass, top1, topk;
  double e_comp[SPR_LEDGER_NE], c_comp[SPR_LEDGER_NC];
} agg;

typedef struct {
  int present;
  double *f[11];            /* the fields below, each layers x heads */
  double *e3, *c3;          /* layers x heads x components */
} scheme_data;

static const char *const fields[11] = {"keep_rate", "bytes_fetched", "bytes_reused",
                                       "energy_J", "cycles", "rel_fro", "cos_mean", "cos_min",
                                       "mass_retained", "top1_recall", "topk_recall"};

/* Read dataset dpath as doubles; its shape must be L x H (x k when k > 0). */
static int read_table(spr_h5r *h, const char *path, const char *dpath, int L, int H, int k,
                      double **out) {
  *out = NULL;
  int kind, rc = spr_h5r_kind(h, dpath, &kind);
  if (rc) return rc;
  if (kind != SPR_H5R_DATASET) return spr_error(SPR_EHDF5, "%s: dataset '%s' is missing", path, dpath);
  spr_h5r_info in;
  if ((rc = spr_h5r_dset_info(h, dpath, &in))) return rc;
  const int want = k > 0 ? 3 : 2;
  if (in.rank != want || in.dims[0] != (uint64_t)L || in.dims[1] != (uint64_t)H ||
      (k > 0 && in.dims[2] != (uint64_t)k))
    return spr_error(SPR_EHDF5, "%s: dataset '%s' has rank %d shape %llu x %llu, expected %d x %d%s",
                     path, dpath, in.rank, (unsigned long long)in.dims[0], (unsigned long long)in.dims[1],
                     L, H, k > 0 ? " x components" : "");
  if ((in.cls != SPR_H5R_FLOAT && in.cls != SPR_H5R_INTEGER) || !in.standard)
    return spr_error(SPR_EHDF5, "%s: cannot read dataset '%s' as numbers", path, dpath);
  size_t count = (size_t)L * H * (k > 0 ? (size_t)k : 1);
  double *v = malloc(count * sizeof *v);
  if (!v) return spr_error(SPR_ENOMEM, "%s: out of memory reading '%s'", path, dpath);
  if ((rc = spr_h5r_read(h, dpath, SPR_H5R_F64, 0, NULL, NULL, v, count * sizeof *v))) {
    free(v);
    return rc;
  }
  *out = v;
  return 0;
}

/* String attribute `name` of `obj` into buf ("?" when absent or not a
 * string).  A failure of the reader itself is returned. */
static int attr_text(spr_h5r *h, const char *obj, const char *name, char *buf, size_t n);

/* Read the (L, H, k) table dpath whose attribute `components` names its k
 * components (comma-separated) into *out, (L, H, nc) doubles in the order
 * of name(0 .. nc-1): a component the file lacks (a trace written before
 * it existed, e.g. xbar_write) reads as 0; a name the program does not
 * know is an error naming it. */
static int read_components(spr_h5r *f, const char *path, const char *dpath, int L, int H, int nc,
                           const char *(*name)(int), double **out) {
  *out = NULL;
  int kind, rc = spr_h5r_kind(f, dpath, &kind);
  if (rc) return rc;
  if (kind != SPR_H5R_DATASET) return spr_error(SPR_EHDF5, "%s: dataset '%s' is missing", path, dpath);
  spr_h5r_info in;
  if ((rc = spr_h5r_dset_info(f, dpath, &in))) return rc;
  if (in.rank != 3 || in.dims[0] != (uint64_t)L || in.dims[1] != (uint64_t)H || in.dims[2] < 1 ||
      in.dims[2] > 64)
    return spr_error(SPR_EHDF5, "%s: dataset '%s' has rank %d shape %llu x %llu x %llu, expected "
                     "%d x %d x components", path, dpath, in.rank, (unsigned long long)in.dims[0],
                     (unsigned long long)in.dims[1], (unsigned long long)in.dims[2], L, H);
  if ((in.cls != SPR_H5R_FLOAT && in.cls != SPR_H5R_INTEGER) || !in.standard)
    return spr_error(SPR_EHDF5, "%s: cannot read dataset '%s'", path, dpath);
  const int k = (int)in.dims[2];
  char names[2048];
  if ((rc = attr_text(f, dpath, "components", names, sizeof names))) return rc;
  int map[64], got = 0;
  for (char *save = NULL, *t = strtok_r(names, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (got == k) { got++; break; }
    map[got] = -1;
    for (int c = 0; c < nc; c++)
      if (!strcmp(t, name(c))) map[got] = c;
    if (map[got] < 0)
      return spr_error(SPR_EHDF5, "%s: dataset '%s': component '%s' is unknown to this sprintsim",
                       path, dpath, t);
    got++;
  }
  if (got != k)
    return spr_error(SPR_EHDF5, "%s: dataset '%s': attribute 'components' names %d components for "
                     "%d columns", path, dpath, got, k);
  double *raw = malloc((size_t)L * H * k * sizeof *raw), *v = calloc((size_t)L * H * nc, sizeof *v);
  if (!raw || !v) {
    free(raw);
    free(v);
    return spr_error(SPR_ENOMEM, "%s: cannot read dataset '%s'", path, dpath);
  }
  if ((rc = spr_h5r_read(f, dpath, SPR_H5R_F64, 0, NULL, NULL, raw, (size_t)L * H * k * sizeof *raw))) {
    free(raw);
    free(v);
    return rc;
  }
  for (size_t r = 0; r < (size_t)L * H; r++)
    for (int c = 0; c < k; c++) v[r * nc + map[c]] += raw[r * k + c];
  free(raw);
  *out = v;
  return 0;
}

static int read_attr_int(spr_h5r *h, const char *path, const char *obj, const char *name, long *v) {
  int kind, ex, rc = spr_h5r_kind(h, obj, &kind);
  spr_h5r_info in;
  if (!rc && kind == SPR_H5R_MISSING)
    return spr_error(SPR_EHDF5, "%s: attribute '%s' of '%s' is missing", path, name, obj);
  if (!rc) rc = spr_h5r_attr_info(h, obj, name, &ex, &in);
  if (rc) return rc;
  if (!ex) return spr_error(SPR_EHDF5, "%s: attribute '%s' of '%s' is missing", path, name, obj);
  if (in.cls != SPR_H5R_INTEGER || !in.standard || in.npoints != 1)
    return spr_error(SPR_EHDF5, "%s: cannot read attribute '%s' of '%s' (not one integer)", path, name, obj);
  int64_t x = 0;
  if ((rc = spr_h5r_attr_read(h, obj, name, SPR_H5R_I64, &x, sizeof x))) return rc;
  *v = (long)x;
  return 0;
}

/* Aggregate heads [k0, k1) of a scheme: sums of bytes, energy, cycles;
 * means of rates and metrics; min of cos_min. */
static agg aggregate(const scheme_data *s, int k0, int k1) {
  agg a;
  memset(&a, 0, sizeof a);
  a.cos_min = 1;
  const double m = k1 - k0;
  for (int k = k0; k < k1; k++) {
    a.keep += s->f[0][k] / m;
    a.fetched += s->f[1][k];
    a.reused += s->f[2][k];
    a.energy += s->f[3][k];
    a.cycles += s->f[4][k];
    a.fro += s->f[5][k] / m;
    a.cos_mean += s->f[6][k] / m;
    a.cos_min = s->f[7][k] < a.cos_min ? s->f[7][k] : a.cos_min;
    a.mass += s->f[8][k] / m;
    a.top1 += s->f[9][k] / m;
    a.topk += s->f[10][k] / m;
    for (int c = 0; c < SPR_LEDGER_NE; c++) a.e_comp[c] += s->e3[(size_t)k * SPR_LEDGER_NE + c];
    for (int c = 0; c < SPR_LEDGER_NC; c++) a.c_comp[c] += s->c3[(size_t)k * SPR_LEDGER_NC + c];
  }
  return a;
}

/* The per-layer and total table's columns (text: as `sprintsim run`'s
 * scheme table, with the layer first); TL0 and TL0 + 1, the ratios to
 * dense_tiled, only when it ran. */
static const spr_table_col main_cols[] = {
    {"layer", NULL, 5, "%.0f", 0, NULL, 0},
    {"scheme", NULL, 11, NULL, 0, NULL, SPR_COL_LEFT},
    {"keep_rate", "keep%", 6, "%.2f", 100, NULL, 0},
    {"bytes_fetched", "fetch MB", 10, "%.2f", 1e-6, NULL, 0},
    {"bytes_reused", "reuse MB", 10, "%.2f", 1e-6, NULL, 0},
    {"energy_J", "energy uJ", 10, "%.2f", 1e6, NULL, 0},
    {"cycles", "Mcycles", 8, "%.3f", 1e-6, NULL, 0},
    {"speedup", NULL, 8, "%.2f", 0, "x", 0},
    {"energy_reduction", "energy-", 8, "%.2f", 0, "x", 0},
    {"speedup_tiled", "speedup.t", 9, "%.2f", 0, "x", 0},
    {"energy_reduction_tiled", "energy-.t", 9, "%.2f", 0, "x", 0},
    {"rel_fro", "rel.err", 8, "%.4f", 0, NULL, 0},
    {"cos_mean", "cos.mean", 8, "%.5f", 0, NULL, 0},
    {"cos_min", "cos.min", 8, "%.4f", 0, NULL, 0},
    {"mass_retained", "mass", 6, "%.4f", 0, NULL, 0},
    {"top1_recall", "top1", 6, "%.4f", 0, NULL, 0},
    {"topk_recall", "topk", 6, "%.4f", 0, NULL, 0}, /* named top<k> below */
};
enum { N_MAIN = sizeof main_cols / sizeof main_cols[0], TL0 = 9 };

/* One table row; tiled (dense_tiled's aggregate) NULL when it did not run. */
static void print_row(spr_table *t, long layer, const char *scheme, const agg *a, const agg *dense,
                      const agg *tiled) {
  const spr_table_cell all[N_MAIN] = {
      {layer < 0 ? "all" : NULL, (double)layer}, {scheme, 0}, {NULL, a->keep}, {NULL, a->fetched},
      {NULL, a->reused}, {NULL, a->energy}, {NULL, a->cycles},
      {NULL, a->cycles > 0 ? dense->cycles / a->cycles : 0},
      {NULL, a->energy > 0 ? dense->energy / a->energy : 0},
      {NULL, tiled && a->cycles > 0 ? tiled->cycles / a->cycles : 0},
      {NULL, tiled && a->energy > 0 ? tiled->energy / a->energy : 0}, {NULL, a->fro},
      {NULL, a->cos_mean}, {NULL, a->cos_min}, {NULL, a->mass}, {NULL, a->top1}, {NULL, a->topk}};
  spr_table_cell row[N_MAIN];
  for (int k = 0, q = 0; k < N_MAIN; k++)
    if (tiled || (k != TL0 && k != TL0 + 1)) row[q++] = all[k];
  spr_table_row(t, row);
}

/* String attribute `name` of `obj` into buf ("?" when absent, not a
 * scalar string or longer than buf; fixed-length of any padding or
 * variable-length, as h5py writes them).  A failure of the reader itself
 * is returned. */
static int attr_text(spr_h5r *h, const char *obj, const char *name, char *buf, size_t n) {
  snprintf(buf, n, "?");
  int ex;
  spr_h5r_info in;
  int rc = spr_h5r_attr_info(h, obj, name, &ex, &in);
  if (rc || !ex || in.cls != SPR_H5R_STRING || in.npoints != 1) return rc;
  char *s = NULL;
  if (spr_h5r_read_str(h, obj, name, n - 1, &s) == 0) snprintf(buf, n, "%s", s);
  free(s);
  return 0;
}

/* The device model the run applied (/device_model), one line per key
 * (CSV, JSON: a table "device_model" of key, value, unit). */
static int report_device(spr_h5r *f, spr_table *t) {
  int kind, rc = spr_h5r_kind(f, "/device_model", &kind);
  if (rc || kind != SPR_H5R_GROUP) return rc;
  char p[1100], id[64];
  if ((rc = attr_text(f, "/device_model", "path", p, sizeof p)) ||
      (rc = attr_text(f, "/device_model", "content_id", id, sizeof id)))
    return rc;
  spr_table_text(t, "device model: %s (%s)\n", p, id);
  spr_table_meta_str(t, "device_model", p);
  spr_table_meta_str(t, "device_model_id", id);
  static const spr_table_col cols[] = {{"key", NULL, 0, NULL, 0, NULL, SPR_COL_DATA_ONLY},
                                       {"value", NULL, 0, NULL, 0, NULL, SPR_COL_DATA_ONLY},
                                       {"unit", NULL, 0, NULL, 0, NULL, SPR_COL_DATA_ONLY}};
  const int data = spr_table_format(t) != SPR_TABLE_TEXT;
  char **names;
  int n;
  if ((rc = spr_h5r_list(f, "/device_model", 256, &names, &n))) return rc;
  if (data) spr_table_begin(t, "device_model_keys", NULL, cols, 3);
  for (int i = 0; i < n && !rc; i++) {
    char unit[32], dpath[400];
    snprintf(dpath, sizeof dpath, "/device_model/%.127s", names[i]);
    spr_h5r_info in;
    if ((rc = spr_h5r_dset_info(f, dpath, &in))) break;
    if (in.cls != SPR_H5R_FLOAT || !in.standard || in.npoints != 1) continue;
    double v = 0;
    if ((rc = spr_h5r_read(f, dpath, SPR_H5R_F64, 0, NULL, NULL, &v, sizeof v)) ||
        (rc = attr_text(f, dpath, "unit", unit, sizeof unit)))
      break;
    spr_table_text(t, "  %-28s = %.6g %s\n", names[i], v, strcmp(unit, "1") ? unit : "");
    const spr_table_cell row[3] = {{names[i], 0}, {NULL, v}, {unit, 0}};
    if (data) spr_table_row(t, row);
  }
  free(names);
  if (data) spr_table_end(t);
  spr_table_text(t, "\n");
  return rc;
}

/* What a file that is not a run trace is, for the message: by its root
 * attributes (`format`, `kind`, `program`) and datasets, into *what.
 * NULL: nothing known (then the trace's own checks speak).  Returns a
 * failure of the reader. */
static int file_kind(spr_h5r *f, char *buf, size_t n, const char **what) {
  char fmt[128], kind[64], prog[64];
  int rc;
  *what = NULL;
  if ((rc = attr_text(f, "/", "format", fmt, sizeof fmt)) ||
      (rc = attr_text(f, "/", "kind", kind, sizeof kind)) ||
      (rc = attr_text(f, "/", "program", prog, sizeof prog)))
    return rc;
  if (!strcmp(kind, "sweep")) {
    *what = "a sweep file (sprintsim sweep): its rows are in the CSV beside it, its plots from "
            "scripts/plot";
    return 0;
  }
  if (!strcmp(fmt, "sprintsim-qkv")) {
    *what = "a Q/K/V file (docs/qkv.md): run it with workload.source = qkv";
    return 0;
  }
  if (!strcmp(fmt, "sprintsim device model")) {
    *what = "a device model (sprintsim calibrate): apply it with run.device_model";
    return 0;
  }
  if (!strcmp(fmt, "sprintsim-model")) {
    *what = "a model file (docs/models.md): run it with workload.source = model";
    return 0;
  }
  if (!strcmp(fmt, "sprintsim-model-eval")) {
    *what = "a model evaluation (sprintsim run with workload.source = model), whose table the run "
            "printed";
    return 0;
  }
  if (strcmp(fmt, "?") != 0) { /* a format of sprintsim's or a collaborator's */
    snprintf(buf, n, "a '%s' file", fmt);
    *what = buf;
    return 0;
  }
  if (!strcmp(prog, "sprintsim")) return 0; /* a trace, complete or not */
  static const char *const mats[3][2] = {
      {"/G", "a conductance matrix (/G, an input of sprintsim crossbar)"},
      {"/V", "a voltage matrix (/V, an input of sprintsim crossbar)"},
      {"/I", "a column-current matrix (/I, an output of sprintsim crossbar)"}};
  for (int m = 0; m < 3; m++) {
    int k;
    if ((rc = spr_h5r_kind(f, mats[m][0], &k))) return rc;
    if (k != SPR_H5R_MISSING) {
      *what = mats[m][1];
      return 0;
    }
  }
  return 0;
}

int spr_report_comparison(int thr_mode, double keep_rate, int per_head, int match, char *buf,
                          size_t n) {
  char sprint[160];
  const char *per = per_head ? "head" : "layer";
  switch (thr_mode) {
  case SPR_THR_KEEP_RATE:
    snprintf(sprint, sizeof sprint, "SPRINT's threshold per %s at keep rate %g of the ideal decisions "
             "(its analog keep rate differs)", per, keep_rate);
    break;
  case SPR_THR_ANALOG_KEEP_RATE:
    snprintf(sprint, sizeof sprint, "SPRINT's threshold per %s at keep rate %g of the analog decisions",
             per, keep_rate);
    break;
  case SPR_THR_DIRECT: snprintf(sprint, sizeof sprint, "SPRINT's thresholds set directly"); break;
  default: snprintf(sprint, sizeof sprint, "SPRINT's learned thresholds"); break;
  }
  return snprintf(buf, n, "comparison: %s; %s", sprint,
                  match == SPR_MATCH_SPRINT
                      ? "every baseline matched per layer to SPRINT's realised keep rate (baselines.match = sprint)"
                      : "every baseline at its own setting (baselines.match = none)");
}

/* Index of the enum dataset dpath's value in choices ("a|b|c") into
 * *idx, -1 when absent or not one of them.  Returns a failure of the
 * reader. */
static int config_enum(spr_h5r *f, const char *dpath, const char *choices, int *idx) {
  *idx = -1;
  int kind, rc = spr_h5r_kind(f, dpath, &kind);
  if (rc || kind != SPR_H5R_DATASET) return rc;
  spr_h5r_info in;
  if ((rc = spr_h5r_dset_info(f, dpath, &in))) return rc;
  if (in.cls != SPR_H5R_STRING || in.npoints != 1) return 0;
  char *v = NULL;
  if ((rc = spr_h5r_read_str(f, dpath, NULL, 1023, &v))) return rc;
  int k = 0;
  for (const char *c = choices; c && *c; k++) {
    const char *bar = strchr(c, '|');
    const size_t l = bar ? (size_t)(bar - c) : strlen(c);
    if (strlen(v) == l && !strncmp(v, c, l)) {
      *idx = k;
      break;
    }
    c = bar ? bar + 1 : NULL;
  }
  free(v);
  return 0;
}

/* Scalar numeric dataset dpath into *v: *present 1 when present and
 * read, 0 when absent (a trace written before the key existed) or not
 * one number.  Returns a failure of the reader. */
static int config_double(spr_h5r *f, const char *dpath, double *v, int *present) {
  *present = 0;
  int kind, rc = spr_h5r_kind(f, dpath, &kind);
  if (rc || kind != SPR_H5R_DATASET) return rc;
  spr_h5r_info in;
  if ((rc = spr_h5r_dset_info(f, dpath, &in))) return rc;
  if ((in.cls != SPR_H5R_FLOAT && in.cls != SPR_H5R_INTEGER) || !in.standard || in.npoints != 1)
    return 0;
  if ((rc = spr_h5r_read(f, dpath, SPR_H5R_F64, 0, NULL, NULL, v, sizeof *v))) return rc;
  *present = 1;
  return 0;
}

/* The wear line of SPRINT's scoring arrays (core/spr_wear.h) from the
 * trace's [wear] and clock keys and SPRINT's per-head programmed cells and
 * latency; nothing for a trace without them.  Errors: those of
 * spr_wear_estimate (a crafted trace's bad endurance, named), the
 * reader's. */
static int report_wear(spr_h5r *f, const char *path, spr_table *out, long L, long H) {
  spr_wear_params w;
  double clock;
  int p[5], kind, rc;
  if ((rc = config_double(f, "/config/wear/endurance", &w.endurance, &p[0])) ||
      (rc = config_double(f, "/config/wear/sequence_rate", &w.sequence_rate_Hz, &p[1])) ||
      (rc = config_double(f, "/config/wear/scoring_cells", &w.scoring_cells, &p[2])) ||
      (rc = config_double(f, "/config/timing/clock", &clock, &p[3])) ||
      (rc = spr_h5r_kind(f, "/schemes/sprint/xbar_cells_written", &kind)))
    return rc;
  if (!p[0] || !p[1] || !p[2] || !p[3] || kind == SPR_H5R_MISSING) return 0;
  double *cells = NULL, *cyc = NULL;
  rc = read_table(f, path, "/schemes/sprint/xbar_cells_written", (int)L, (int)H, 0, &cells);
  if (!rc) rc = read_table(f, path, "/schemes/sprint/cycles", (int)L, (int)H, 0, &cyc);
  if (!rc) {
    double seq = 0, head = 0, lat = 0;
    for (long k = 0; k < L * H; k++) {
      seq += cells[k];
      head = cells[k] > head ? cells[k] : head;
      lat += cyc[k];
    }
    spr_wear_result r;
    char line[512];
    rc = spr_wear_estimate(&w, seq, head, lat, clock, &r);
    if (rc) rc = spr_error_prefix(rc, "%s", path);
    else if (spr_wear_format(&w, &r, line, sizeof line) >= 0) {
      spr_table_text(out, "\n%s\n", line);
      spr_table_meta_str(out, "wear", line);
    }
  }
  free(cells);
  free(cyc);
  return rc;
}

static int report(spr_h5r *f, const char *path, spr_table *out, scheme_data *sd) {
  long complete = 0, L = 0, H = 0, n = 0, topk = 0;
  int rc, kind, ex;
  char kind_buf[200];
  const char *what;
  if ((rc = file_kind(f, kind_buf, sizeof kind_buf, &what))) return rc;
  if (what) return spr_error(SPR_EHDF5, "%s is %s, not a run trace", path, what);
  if ((rc = read_attr_int(f, path, "/", "complete", &complete))) return rc;
  if (complete != 1)
    return spr_error(SPR_EHDF5, "%s: the trace is not complete (attribute 'complete' = %ld)", path, complete);
  if ((rc = read_attr_int(f, path, "/summary", "layers", &L)) ||
      (rc = read_attr_int(f, path, "/summary", "heads", &H)) ||
      (rc = read_attr_int(f, path, "/summary", "seq_len", &n)))
    return rc;
  if (L < 1 || H < 1 || L * H > (long)1 << 20)
    return spr_error(SPR_EHDF5, "%s: /summary has %ld layers x %ld heads", path, L, H);
  /* causal heads (an attribute traces before it did not have: not causal) */
  long causal = 0;
  if ((rc = spr_h5r_attr_info(f, "/summary", "causal", &ex, NULL))) return rc;
  if (ex && (rc = read_attr_int(f, path, "/summary", "causal", &causal))) return rc;
  if ((rc = spr_h5r_kind(f, "/config/digital/top_k", &kind))) return rc;
  if (kind == SPR_H5R_DATASET) {
    spr_h5r_info in;
    int64_t v = 0;
    if ((rc = spr_h5r_dset_info(f, "/config/digital/top_k", &in))) return rc;
    if (in.cls == SPR_H5R_INTEGER && in.standard && in.npoints == 1) {
      if ((rc = spr_h5r_read(f, "/config/digital/top_k", SPR_H5R_I64, 0, NULL, NULL, &v, sizeof v)))
        return rc;
      topk = (long)v;
    }
  }
  if (topk > n) topk = n; /* the metric uses min(top_k, N) */
  if ((rc = spr_h5r_kind(f, "/schemes/dense", &kind))) return rc;
  if (kind != SPR_H5R_GROUP)
    return spr_error(SPR_EHDF5, "%s: group '/schemes/dense' is missing (a trace without the digital path?)", path);
  for (int s = 0; s < SPR_N_SCHEMES; s++) {
    char g[64], dpath[128];
    snprintf(g, sizeof g, "/schemes/%s", spr_scheme_name(s));
    if ((rc = spr_h5r_kind(f, g, &kind))) return rc;
    if (kind == SPR_H5R_MISSING) continue;
    sd[s].present = 1;
    for (int k = 0; k < 11; k++) {
      snprintf(dpath, sizeof dpath, "%s/%s", g, fields[k]);
      if ((rc = read_table(f, path, dpath, (int)L, (int)H, 0, &sd[s].f[k]))) return rc;
    }
    snprintf(dpath, sizeof dpath, "%s/energy_by_component", g);
    if ((rc = read_components(f, path, dpath, (int)L, (int)H, SPR_LEDGER_NE,
                              spr_ledger_energy_name, &sd[s].e3)))
      return rc;
    snprintf(dpath, sizeof dpath, "%s/cycles_by_component", g);
    if ((rc = read_components(f, path, dpath, (int)L, (int)H, SPR_LEDGER_NC,
                              spr_ledger_cycle_name, &sd[s].c3)))
      return rc;
  }
  spr_table_text(out, "sprintsim report: %s: %ld layers x %ld heads, N = %ld%s\n", path, L, H, n,
                 causal ? ", causal (query i sees keys j <= i; keep rates over the N(N+1)/2 pairs)"
                        : "");
  spr_table_meta_str(out, "file", path);
  spr_table_meta_num(out, "n_layers", (double)L);
  spr_table_meta_num(out, "n_heads", (double)H);
  spr_table_meta_num(out, "seq_len", (double)n);
  spr_table_meta_num(out, "causal", (double)causal);
  if ((rc = report_device(f, out))) return rc;
  {
    /* which comparison (traces before these keys existed: none said) */
    int mode, match, have;
    double keep = 0, per_head = 0;
    if ((rc = config_enum(f, "/config/threshold/mode", "keep_rate|direct|learned|analog_keep_rate",
                          &mode)) ||
        (rc = config_enum(f, "/config/baselines/match", "none|sprint", &match)) ||
        (rc = config_double(f, "/config/threshold/keep_rate", &keep, &have)))
      return rc;
    if (mode >= 0 && match >= 0) {
      if ((rc = config_double(f, "/config/threshold/per_head", &per_head, &have))) return rc;
      char line[400];
      spr_report_comparison(mode, keep, (int)per_head, match, line, sizeof line);
      spr_table_text(out, "%s\n", line);
      spr_table_meta_str(out, "comparison", line);
    }
  }
  const int tl = sd[SPR_SCHEME_DENSE_TILED].present;
  spr_table_text(out, "speedup and energy reduction (energy-) over dense (one query at a time)%s; "
                      "bytes, energy and cycles summed over heads, rates and metrics averaged, "
                      "cos.min the worst query\n\n",
                 tl ? ", speedup.t and energy-.t over dense_tiled (K/V tiles read once per query "
                      "block)" : "");
  spr_table_col cols[N_MAIN];
  int ncols = 0;
  for (int k = 0; k < N_MAIN; k++)
    if (tl || (k != TL0 && k != TL0 + 1)) cols[ncols++] = main_cols[k];
  char topk_title[24] = "topk", topk_name[32] = "topk_recall";
  if (topk > 0) {
    snprintf(topk_title, sizeof topk_title, "top%ld", topk);
    snprintf(topk_name, sizeof topk_name, "top%ld_recall", topk);
  }
  cols[ncols - 1].title = topk_title;
  cols[ncols - 1].name = topk_name;
  spr_table_begin(out, "layers", NULL, cols, ncols);
  for (long l = 0; l <= L; l++) {
    const int k0 = l < L ? (int)(l * H) : 0, k1 = l < L ? (int)((l + 1) * H) : (int)(L * H);
    agg dense = aggregate(&sd[SPR_SCHEME_DENSE], k0, k1), tiled;
    if (tl) tiled = aggregate(&sd[SPR_SCHEME_DENSE_TILED], k0, k1);
    for (int s = 0; s < SPR_N_SCHEMES; s++) {
      if (!sd[s].present) continue;
      agg a = aggregate(&sd[s], k0, k1);
      print_row(out, l < L ? l : -1, spr_scheme_name(s), &a, &dense, tl ? &tiled : NULL);
    }
  }
  spr_table_end(out);
  /* by component, totals: one column per scheme that ran */
  agg tot[SPR_N_SCHEMES];
  spr_table_col ccols[SPR_N_SCHEMES + 1];
  int nc = 0;
  ccols[nc++] = (spr_table_col){"component", NULL, 12, NULL, 0, NULL, SPR_COL_LEFT};
  for (int s = 0; s < SPR_N_SCHEMES; s++)
    if (sd[s].present) {
      tot[s] = aggregate(&sd[s], 0, (int)(L * H));
      ccols[nc++] = (spr_table_col){spr_scheme_name(s), NULL, 10, "%.2f", 1e6, NULL, 0};
    }
  spr_table_cell row[SPR_N_SCHEMES + 1];
  spr_table_text(out, "\n");
  spr_table_begin(out, "energy_by_component_J", "energy by component, uJ (all heads)", ccols, nc);
  for (int c = 0; c < SPR_LEDGER_NE; c++) {
    int k = 0;
    row[k++] = (spr_table_cell){spr_ledger_energy_name(c), 0};
    for (int s = 0; s < SPR_N_SCHEMES; s++)
      if (sd[s].present) row[k++] = (spr_table_cell){NULL, tot[s].e_comp[c]};
    spr_table_row(out, row);
  }
  spr_table_end(out);
  for (int k = 1; k < nc; k++) {
    ccols[k].fmt = "%.3f";
    ccols[k].scale = 1e-6;
  }
  spr_table_text(out, "\n");
  spr_table_begin(out, "cycles_by_component",
                  "busy cycles by component, millions (all heads; latency overlaps fetch and compute)",
                  ccols, nc);
  for (int c = 0; c <= SPR_LEDGER_NC; c++) {
    int k = 0;
    row[k++] = (spr_table_cell){c < SPR_LEDGER_NC ? spr_ledger_cycle_name(c) : "latency", 0};
    for (int s = 0; s < SPR_N_SCHEMES; s++)
      if (sd[s].present) row[k++] = (spr_table_cell){NULL, c < SPR_LEDGER_NC ? tot[s].c_comp[c] : tot[s].cycles};
    spr_table_row(out, row);
  }
  spr_table_end(out);
  return report_wear(f, path, out, L, H);
}

int spr_report_write(const char *path, FILE *out, int format) {
  if (!path || !out) return spr_error(SPR_EINVAL, "spr_report_write: %s is NULL", !path ? "path" : "out");
  spr_table *t = NULL;
  int rc = spr_table_open(out, format, &t);
  if (rc) return rc;
  spr_h5r *f;
  rc = spr_h5r_open(path, "trace", NULL, &f);
  if (!rc) {
    scheme_data sd[SPR_N_SCHEMES];
    memset(sd, 0, sizeof sd);
    rc = report(f, path, t, sd);
    for (int s = 0; s < SPR_N_SCHEMES; s++) {
      for (int k = 0; k < 11; k++) free(sd[s].f[k]);
      free(sd[s].e3);
      free(sd[s].c3);
    }
    spr_h5r_close(f);
  }
  int rc2 = spr_table_close(t, !rc);
  return rc ? rc : rc2;
}

int spr_report_print(const char *path, FILE *out) {
  return spr_report_write(path, out, SPR_TABLE_TEXT);
}
