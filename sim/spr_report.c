/* spr_report.c - `sprintsim report`: per-layer and total tables of every
 * scheme in a trace, read back through the isolated reader (spr_h5r.h):
 * a trace may come from anyone. */
#include "config.h"
#include "spr_report.h"
#include "spr_error.h"
#include "spr_h5r.h"
#include "spr_ledger.h"
#include "spr_result.h"

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

static void print_row(FILE *out, const char *label, const char *scheme, const agg *a,
                      const agg *dense) {
  fprintf(out, "%5s %-8s %6.2f %10.2f %10.2f %10.2f %8.3f %7.2fx %7.2fx %8.4f %8.5f %8.4f %6.4f %6.4f %6.4f\n",
          label, scheme, 100 * a->keep, a->fetched / 1e6, a->reused / 1e6, a->energy * 1e6,
          a->cycles / 1e6, a->cycles > 0 ? dense->cycles / a->cycles : 0,
          a->energy > 0 ? dense->energy / a->energy : 0, a->fro, a->cos_mean, a->cos_min, a->mass,
          a->top1, a->topk);
}

/* String attribute `name` of `obj` into buf ("?" when absent or not a
 * string).  A failure of the reader itself is returned. */
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

/* The device model the run applied (/device_model), one line per key. */
static int report_device(spr_h5r *h, FILE *out) {
  int kind, rc = spr_h5r_kind(h, "/device_model", &kind);
  if (rc || kind != SPR_H5R_GROUP) return rc;
  char p[1100], id[64];
  if ((rc = attr_text(h, "/device_model", "path", p, sizeof p)) ||
      (rc = attr_text(h, "/device_model", "content_id", id, sizeof id)))
    return rc;
  fprintf(out, "device model: %s (%s)\n", p, id);
  char **names;
  int n;
  if ((rc = spr_h5r_list(h, "/device_model", 256, &names, &n))) return rc;
  for (int i = 0; i < n && !rc; i++) {
    char unit[32], dpath[400];
    snprintf(dpath, sizeof dpath, "/device_model/%.127s", names[i]);
    spr_h5r_info in;
    if ((rc = spr_h5r_dset_info(h, dpath, &in))) break;
    if (in.cls != SPR_H5R_FLOAT || !in.standard || in.npoints != 1) continue;
    double v = 0;
    if ((rc = spr_h5r_read(h, dpath, SPR_H5R_F64, 0, NULL, NULL, &v, sizeof v)) ||
        (rc = attr_text(h, dpath, "unit", unit, sizeof unit)))
      break;
    fprintf(out, "  %-28s = %.6g %s\n", names[i], v, strcmp(unit, "1") ? unit : "");
  }
  free(names);
  fprintf(out, "\n");
  return rc;
}

static int report(spr_h5r *f, const char *path, FILE *out, scheme_data *sd) {
  long complete = 0, L = 0, H = 0, n = 0, topk = 0;
  int rc, kind;
  if ((rc = read_attr_int(f, path, "/", "complete", &complete))) return rc;
  if (complete != 1)
    return spr_error(SPR_EHDF5, "%s: the trace is not complete (attribute 'complete' = %ld)", path, complete);
  if ((rc = read_attr_int(f, path, "/summary", "layers", &L)) ||
      (rc = read_attr_int(f, path, "/summary", "heads", &H)) ||
      (rc = read_attr_int(f, path, "/summary", "seq_len", &n)))
    return rc;
  if (L < 1 || H < 1 || L * H > (long)1 << 20)
    return spr_error(SPR_EHDF5, "%s: /summary has %ld layers x %ld heads", path, L, H);
  if ((rc = spr_h5r_kind(f, "/config/digital/top_k", &kind))) return rc;
  if (kind == SPR_H5R_DATASET) {
    spr_h5r_info in;
    int64_t v = 0;
    if (!spr_h5r_dset_info(f, "/config/digital/top_k", &in) && in.cls == SPR_H5R_INTEGER && in.standard &&
        in.npoints == 1 && !spr_h5r_read(f, "/config/digital/top_k", SPR_H5R_I64, 0, NULL, NULL, &v, sizeof v))
      topk = (long)v;
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
    if ((rc = read_table(f, path, dpath, (int)L, (int)H, SPR_LEDGER_NE, &sd[s].e3))) return rc;
    snprintf(dpath, sizeof dpath, "%s/cycles_by_component", g);
    if ((rc = read_table(f, path, dpath, (int)L, (int)H, SPR_LEDGER_NC, &sd[s].c3))) return rc;
  }
  fprintf(out, "sprintsim report: %s: %ld layers x %ld heads, N = %ld\n", path, L, H, n);
  if ((rc = report_device(f, out))) return rc;
  fprintf(out, "speedup and energy reduction (energy-) over dense; bytes, energy and cycles "
               "summed over heads, rates and metrics averaged, cos.min the worst query\n\n");
  char topk_col[24] = "topk";
  if (topk > 0) snprintf(topk_col, sizeof topk_col, "top%ld", topk);
  fprintf(out, "%5s %-8s %6s %10s %10s %10s %8s %8s %8s %8s %8s %8s %6s %6s  %s\n", "layer",
          "scheme", "keep%", "fetch MB", "reuse MB", "energy uJ", "Mcycles", "speedup", "energy-",
          "rel.err", "cos.mean", "cos.min", "mass", "top1", topk_col);
  for (long l = 0; l <= L; l++) {
    const int k0 = l < L ? (int)(l * H) : 0, k1 = l < L ? (int)((l + 1) * H) : (int)(L * H);
    char label[24];
    if (l < L) snprintf(label, sizeof label, "%ld", l);
    else snprintf(label, sizeof label, "all");
    agg dense = aggregate(&sd[SPR_SCHEME_DENSE], k0, k1);
    for (int s = 0; s < SPR_N_SCHEMES; s++) {
      if (!sd[s].present) continue;
      agg a = aggregate(&sd[s], k0, k1);
      print_row(out, label, spr_scheme_name(s), &a, &dense);
    }
  }
  /* by component, totals */
  agg tot[SPR_N_SCHEMES];
  fprintf(out, "\nenergy by component, uJ (all heads)\n%-12s", "component");
  for (int s = 0; s < SPR_N_SCHEMES; s++)
    if (sd[s].present) {
      tot[s] = aggregate(&sd[s], 0, (int)(L * H));
      fprintf(out, " %10s", spr_scheme_name(s));
    }
  fprintf(out, "\n");
  for (int c = 0; c < SPR_LEDGER_NE; c++) {
    fprintf(out, "%-12s", spr_ledger_energy_name(c));
    for (int s = 0; s < SPR_N_SCHEMES; s++)
      if (sd[s].present) fprintf(out, " %10.2f", tot[s].e_comp[c] * 1e6);
    fprintf(out, "\n");
  }
  fprintf(out, "\nbusy cycles by component, millions (all heads; latency overlaps fetch and compute)\n%-12s", "component");
  for (int s = 0; s < SPR_N_SCHEMES; s++)
    if (sd[s].present) fprintf(out, " %10s", spr_scheme_name(s));
  fprintf(out, "\n");
  for (int c = 0; c < SPR_LEDGER_NC; c++) {
    fprintf(out, "%-12s", spr_ledger_cycle_name(c));
    for (int s = 0; s < SPR_N_SCHEMES; s++)
      if (sd[s].present) fprintf(out, " %10.3f", tot[s].c_comp[c] / 1e6);
    fprintf(out, "\n");
  }
  fprintf(out, "%-12s", "latency");
  for (int s = 0; s < SPR_N_SCHEMES; s++)
    if (sd[s].present) fprintf(out, " %10.3f", tot[s].cycles / 1e6);
  fprintf(out, "\n");
  return 0;
}

int spr_report_print(const char *path, FILE *out) {
  if (!path || !out) return spr_error(SPR_EINVAL, "spr_report_print: %s is NULL", !path ? "path" : "out");
  spr_h5r *f;
  int rc = spr_h5r_open(path, "trace", NULL, &f);
  if (!rc) {
    scheme_data sd[SPR_N_SCHEMES];
    memset(sd, 0, sizeof sd);
    rc = report(f, path, out, sd);
    for (int s = 0; s < SPR_N_SCHEMES; s++) {
      for (int k = 0; k < 11; k++) free(sd[s].f[k]);
      free(sd[s].e3);
      free(sd[s].c3);
    }
    spr_h5r_close(f);
  }
  return rc;
}
