/* spr_sweep_out.c - a sweep's outputs: the HDF5 file and the CSV
 * (spr_sweep.h; formats in docs/sweep.md). */
#include "config.h"
#include "spr_sweep.h"
#include "spr_sweep_impl.h"
#include "spr_table.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_h5quiet.h"
#include "spr_output.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FORMAT_VERSION 1

/* --- outputs -------------------------------------------------------------- */

struct spr_sweep_out {
  char *path[2]; /* final: HDF5, CSV */
  char *tmp[2];  /* "<path>.tmp.XXXXXX", created */
};

char *spr__sweep_sibling(const char *h5path, const char *ext) {
  size_t l = strlen(h5path), e = strlen(ext) + 1;
  if (l > 3 && !strcmp(h5path + l - 3, ".h5")) l -= 3;
  char *s = malloc(l + e);
  if (s) {
    memcpy(s, h5path, l);
    memcpy(s + l, ext, e);
  }
  return s;
}

char *spr_sweep_csv_path(const char *h5path) { return spr__sweep_sibling(h5path, ".csv"); }

void spr_sweep_out_abort(spr_sweep_out *o) {
  if (!o) return;
  for (int i = 0; i < 2; i++) {
    if (o->tmp[i]) unlink(o->tmp[i]);
    free(o->tmp[i]);
    free(o->path[i]);
  }
  free(o);
}

int spr_sweep_out_open(const char *h5path, const char *csvpath, spr_sweep_out **out) {
  *out = NULL;
  const char *paths[2] = {h5path, csvpath};
  for (int i = 0; i < 2; i++) {
    struct stat st;
    size_t l = paths[i] ? strlen(paths[i]) : 0;
    if (!l) return spr_error(SPR_EINVAL, "sweep: empty output file name");
    if (paths[i][l - 1] == '/' || (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)))
      return spr_error(SPR_EIO, "%s: is a directory, not an output file name", paths[i]);
  }
  if (!strcmp(h5path, csvpath))
    return spr_error(SPR_EINVAL, "%s: the HDF5 file and the CSV need different names", h5path);
  spr_sweep_out *o = calloc(1, sizeof *o);
  if (!o) return spr_error(SPR_ENOMEM, "%s: out of memory", h5path);
  for (int i = 0; i < 2; i++) {
    char *t = malloc(1);
    if (!(o->path[i] = strdup(paths[i])) || !t) {
      free(t);
      spr_sweep_out_abort(o);
      return spr_error(SPR_ENOMEM, "%s: out of memory", paths[i]);
    }
    free(t);
    int rc = spr__out_begin(paths[i], &o->tmp[i]);
    if (rc) {
      spr_sweep_out_abort(o);
      return rc;
    }
  }
  *out = o;
  return 0;
}

/* Shortest of %.15g / %.17g that reads back as the same double. */
static void fmt_double(char *buf, size_t n, double x) {
  snprintf(buf, n, "%.15g", x);
  if (strtod(buf, NULL) != x && !isnan(x)) snprintf(buf, n, "%.17g", x);
}

/* Derived columns: scheme over or under dense (one query at a time) and
 * dense_tiled (K/V tiles once per query block) at the same point; NaN
 * against dense_tiled at a point where it did not run. */
enum { D_SPEEDUP, D_ENERGY_RED, D_BYTES_REL, D_SPEEDUP_T, D_ENERGY_RED_T, N_DERIVED };
static const struct {
  const char *name, *unit, *doc;
} derived[N_DERIVED] = {
    {"speedup", "1", "dense cycles / cycles of the scheme, same point"},
    {"energy_reduction", "1", "dense energy / energy of the scheme, same point"},
    {"bytes_vs_dense", "1", "bytes fetched / dense bytes fetched, same point"},
    {"speedup_vs_tiled", "1", "dense_tiled cycles / cycles of the scheme, same point (NaN without dense_tiled)"},
    {"energy_reduction_vs_tiled", "1", "dense_tiled energy / energy of the scheme, same point (NaN without dense_tiled)"},
};

static double derived_value(const spr_eval_row *r, const spr_eval_row *dense,
                            const spr_eval_row *tiled, int d) {
  switch (d) {
  case D_SPEEDUP: return dense->cycles / r->cycles;
  case D_ENERGY_RED: return dense->energy_J / r->energy_J;
  case D_BYTES_REL: return (double)r->bytes_fetched / (double)dense->bytes_fetched;
  case D_SPEEDUP_T: return tiled->ran ? tiled->cycles / r->cycles : NAN;
  default: return tiled->ran ? tiled->energy_J / r->energy_J : NAN;
  }
}

static int write_csv(const spr_sweep *sw, const char *tmp, const char *path) {
  /* formatted in memory, then written and flushed to the disk with every
   * write checked (spr_output.h) */
  char *text = NULL;
  size_t text_len = 0;
  FILE *f = open_memstream(&text, &text_len);
  if (!f) return spr_error(SPR_ENOMEM, "%s: out of memory formatting the CSV", tmp);
  const spr_evaluator *ev = sw->ev;
  fputs("point", f);
  for (int a = 0; a < sw->naxes; a++) {
    fputc(',', f);
    spr_csv_field(f, sw->ax[a].name);
  }
  fputs(",scheme", f);
  for (int m = 0; m < ev->n_acc; m++) fprintf(f, ",%s", ev->acc[m].name);
  fputs(",energy_J,cycles,keep_rate,bytes_fetched", f);
  for (int d = 0; d < N_DERIVED; d++) fprintf(f, ",%s", derived[d].name);
  fputc('\n', f);
  char b[48];
  for (int p = 0; p < sw->npoints; p++) {
    const spr_eval_row *dense = spr_sweep_row(sw, p, SPR_SCHEME_DENSE);
    const spr_eval_row *tiled = spr_sweep_row(sw, p, SPR_SCHEME_DENSE_TILED);
    for (int k = 0; k < sw->nschemes; k++) {
      const spr_eval_row *r = spr_sweep_row(sw, p, sw->scheme[k]);
      fprintf(f, "%d", p);
      for (int a = 0; a < sw->naxes; a++) {
        fputc(',', f);
        spr_csv_field(f, sw->ax[a].canon[spr__sweep_value_index(sw, p, a)]);
      }
      fprintf(f, ",%s", spr_scheme_name(sw->scheme[k]));
      for (int m = 0; m < ev->n_acc; m++) {
        fmt_double(b, sizeof b, r->acc[m]);
        fprintf(f, ",%s", b);
      }
      fmt_double(b, sizeof b, r->energy_J);
      fprintf(f, ",%s", b);
      fmt_double(b, sizeof b, r->cycles);
      fprintf(f, ",%s", b);
      fmt_double(b, sizeof b, r->keep_rate);
      fprintf(f, ",%s,%lld", b, (long long)r->bytes_fetched);
      for (int d = 0; d < N_DERIVED; d++) {
        fmt_double(b, sizeof b, derived_value(r, dense, tiled, d));
        fprintf(f, ",%s", b);
      }
      fputc('\n', f);
    }
  }
  int bad = ferror(f);
  if (fclose(f) || bad) {
    free(text);
    return spr_error(SPR_ENOMEM, "%s: out of memory formatting the CSV (for %s)", tmp, path);
  }
  int rc = spr__out_write_file(tmp, text, text_len);
  free(text);
  return rc;
}

/* HDF5 writing: every failure becomes SPR_EHDF5 naming the file and object. */
typedef struct {
  hid_t file;
  const char *name; /* temporary file, for messages */
} h5w;

static int h5err(const h5w *w, const char *obj) { return spr__h5_fail(w->name, "cannot write '%s'", obj); }

/* Close group g (path for messages): every close is checked. */
static int gclose(const h5w *w, hid_t g, const char *path, int rc) {
  if (H5Gclose(g) < 0 && !rc) rc = spr__h5_fail(w->name, "cannot finish group '%s'", path);
  return rc;
}

static hid_t str_type(size_t size) {
  hid_t ty = H5Tcopy(H5T_C_S1);
  if (ty < 0) return ty;
  if (H5Tset_size(ty, size ? size : 1) < 0 || H5Tset_strpad(ty, H5T_STR_NULLTERM) < 0 ||
      H5Tset_cset(ty, H5T_CSET_ASCII) < 0) {
    H5Tclose(ty);
    return -1;
  }
  return ty;
}

static int attr_raw(const h5w *w, hid_t loc, const char *obj, const char *name, hid_t ft, hid_t mt,
                    const void *v) {
  hid_t sp = H5Screate(H5S_SCALAR), a = -1;
  int ok = sp >= 0 && (a = H5Acreate2(loc, name, ft, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
           H5Awrite(a, mt, v) >= 0;
  if (a >= 0 && H5Aclose(a) < 0) ok = 0;
  if (sp >= 0) H5Sclose(sp);
  if (!ok) {
    char o[256];
    snprintf(o, sizeof o, "%s attribute %s", obj, name);
    return h5err(w, o);
  }
  return 0;
}

static int attr_str(const h5w *w, hid_t loc, const char *obj, const char *name, const char *s) {
  hid_t ty = str_type(strlen(s) + 1);
  if (ty < 0) return h5err(w, obj);
  int rc = attr_raw(w, loc, obj, name, ty, ty, s);
  H5Tclose(ty);
  return rc;
}

static hid_t group(const h5w *w, const char *path) {
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE), g = -1;
  if (gcpl >= 0 && H5Pset_obj_track_times(gcpl, 0) >= 0)
    g = H5Gcreate2(w->file, path, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  if (gcpl >= 0) H5Pclose(gcpl);
  if (g < 0) h5err(w, path);
  return g;
}

/* Dataset `path` of rank 0..2 (dims), file type ft, memory type mt, with
 * attributes unit and description (when not NULL). */
static int dataset(const h5w *w, const char *path, int rank, const hsize_t *dims, hid_t ft,
                   hid_t mt, const void *data, const char *unit, const char *desc) {
  hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
  int ok = sp >= 0 && dcpl >= 0 && H5Pset_obj_track_times(dcpl, 0) >= 0 &&
           (d = H5Dcreate2(w->file, path, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) >= 0;
  hsize_t total = 1;
  for (int i = 0; i < rank; i++) total *= dims[i];
  if (ok && total > 0) ok = H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
  int rc = ok ? 0 : h5err(w, path);
  if (!rc && unit) rc = attr_str(w, d, path, "unit", unit);
  if (!rc && desc) rc = attr_str(w, d, path, "description", desc);
  if (d >= 0 && H5Dclose(d) < 0 && !rc) rc = h5err(w, path);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (sp >= 0) H5Sclose(sp);
  return rc;
}

/* 1-D dataset of n fixed-length strings s[i]. */
static int dataset_strs(const h5w *w, const char *path, int n, char *const *s, const char *desc) {
  size_t len = 1;
  for (int i = 0; i < n; i++)
    if (strlen(s[i]) + 1 > len) len = strlen(s[i]) + 1;
  char *buf = calloc(n > 0 ? (size_t)n : 1, len);
  if (!buf) return spr_error(SPR_ENOMEM, "%s: out of memory for '%s'", w->name, path);
  for (int i = 0; i < n; i++) memcpy(buf + (size_t)i * len, s[i], strlen(s[i]));
  hid_t ty = str_type(len);
  hsize_t dim = (hsize_t)n;
  int rc = ty < 0 ? h5err(w, path) : dataset(w, path, 1, &dim, ty, ty, buf, NULL, desc);
  if (ty >= 0) H5Tclose(ty);
  free(buf);
  return rc;
}

static int dataset_str(const h5w *w, const char *path, const char *s, const char *desc) {
  hid_t ty = str_type(strlen(s) + 1);
  int rc = ty < 0 ? h5err(w, path) : dataset(w, path, 0, NULL, ty, ty, s, NULL, desc);
  if (ty >= 0) H5Tclose(ty);
  return rc;
}

static const char *key_type_name(int t) {
  switch (t) {
  case SPR_KEY_INT: return "int";
  case SPR_KEY_U64: return "u64";
  case SPR_KEY_DOUBLE: return "double";
  case SPR_KEY_BOOL: return "bool";
  case SPR_KEY_ENUM: return "enum";
  case SPR_KEY_LIST: return "list";
  default: return "string";
  }
}

static int write_h5_body(const spr_sweep *sw, const h5w *w, const char *version) {
  const spr_evaluator *ev = sw->ev;
  const int P = sw->npoints, S = sw->nschemes, A = sw->naxes;
  hid_t root = H5Gopen2(w->file, "/", H5P_DEFAULT);
  if (root < 0) return h5err(w, "/");
  int32_t fv = FORMAT_VERSION, np = P;
  int8_t incomplete = 0;
  uint64_t seed = sw->base->seed;
  char metrics[512] = "";
  for (int m = 0; m < ev->n_acc; m++) {
    size_t l = strlen(metrics);
    snprintf(metrics + l, sizeof metrics - l, "%s%s", m ? "," : "", ev->acc[m].name);
  }
  int rc = attr_str(w, root, "/", "program", "sprintsim");
  if (!rc) rc = attr_str(w, root, "/", "version", version);
  if (!rc) rc = attr_str(w, root, "/", "kind", "sweep");
  if (!rc) rc = attr_raw(w, root, "/", "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, &fv);
  if (!rc) rc = attr_raw(w, root, "/", "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &seed);
  if (!rc) rc = attr_raw(w, root, "/", "complete", H5T_STD_I8LE, H5T_NATIVE_INT8, &incomplete);
  if (!rc) rc = attr_raw(w, root, "/", "n_points", H5T_STD_I32LE, H5T_NATIVE_INT32, &np);
  if (!rc) rc = attr_str(w, root, "/", "evaluator", ev->name);
  if (!rc) rc = attr_str(w, root, "/", "accuracy_metrics", metrics);
  if (!rc) rc = attr_str(w, root, "/", "primary_metric", ev->acc[ev->primary].name);
  rc = gclose(w, root, "/", rc);
  /* /config */
  hid_t g;
  if (!rc && (g = group(w, "/config")) < 0) rc = SPR_EHDF5;
  else if (!rc) rc = gclose(w, g, "/config", rc);
  if (!rc) rc = dataset_str(w, "/config/source", sw->source, "the sweep file as given (its [sweep] section included)");
  if (!rc) rc = dataset_str(w, "/config/path", sw->path, "path of the sweep file");
  /* /axes */
  if (!rc && (g = group(w, "/axes")) < 0) rc = SPR_EHDF5;
  else if (!rc) rc = gclose(w, g, "/axes", rc);
  for (int a = 0; a < A && !rc; a++) {
    const axis *x = &sw->ax[a];
    const spr_config_key_info *info = spr_config_key(x->key);
    char gp[64], dp[96];
    snprintf(gp, sizeof gp, "/axes/axis_%d", a);
    if ((g = group(w, gp)) < 0) {
      rc = SPR_EHDF5;
      break;
    }
    rc = attr_str(w, g, gp, "key", x->name);
    if (!rc) rc = attr_str(w, g, gp, "unit", info->unit[0] ? info->unit : "1");
    if (!rc) rc = attr_str(w, g, gp, "type", key_type_name(info->type));
    if (!rc) rc = attr_str(w, g, gp, "doc", info->doc);
    rc = gclose(w, g, gp, rc);
    hsize_t n = (hsize_t)x->n;
    snprintf(dp, sizeof dp, "%s/text", gp);
    if (!rc) rc = dataset_strs(w, dp, x->n, x->text, "values as written in the sweep file");
    snprintf(dp, sizeof dp, "%s/value", gp);
    if (!rc) rc = dataset_strs(w, dp, x->n, x->canon, "values as the configuration holds them (SI, no unit)");
    snprintf(dp, sizeof dp, "%s/number", gp);
    if (!rc)
      rc = dataset(w, dp, 1, &n, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, x->num,
                   info->unit[0] ? info->unit : "1",
                   "numeric value in SI units (bool: 0/1; NaN for enum and string keys)");
  }
  /* /points */
  int32_t *idx = malloc(sizeof *idx * (size_t)P * (size_t)(A ? A : 1));
  char **label = calloc((size_t)P, sizeof *label), **ini = calloc((size_t)P, sizeof *ini);
  spr_config *c = malloc(sizeof *c);
  if (!rc && (!idx || !label || !ini || !c)) rc = spr_error(SPR_ENOMEM, "%s: out of memory", w->name);
  for (int p = 0; p < P && !rc; p++) {
    for (int a = 0; a < A; a++) idx[p * A + a] = spr__sweep_value_index(sw, p, a);
    int need = spr_sweep_point_label(sw, p, NULL, 0);
    if (!(label[p] = malloc((size_t)need + 1))) rc = spr_error(SPR_ENOMEM, "%s: out of memory", w->name);
    else spr_sweep_point_label(sw, p, label[p], (size_t)need + 1);
    if (!rc) rc = spr__sweep_build_point(sw, p, c);
    if (!rc && !(ini[p] = spr_config_to_ini(c))) rc = spr_error(SPR_ENOMEM, "%s: out of memory", w->name);
  }
  free(c);
  if (!rc && (g = group(w, "/points")) < 0) rc = SPR_EHDF5;
  else if (!rc) rc = gclose(w, g, "/points", rc);
  hsize_t d2[2] = {(hsize_t)P, (hsize_t)A};
  if (!rc)
    rc = dataset(w, "/points/value_index", 2, d2, H5T_STD_I32LE, H5T_NATIVE_INT32, idx, "1",
                 "[point, axis]: index of the point's value in /axes/axis_<axis>");
  if (!rc) rc = dataset_strs(w, "/points/label", P, label, "the point's axis values, as written");
  if (!rc)
    rc = dataset_strs(w, "/points/config_ini", P, ini,
                      "the point's whole resolved configuration as INI text (sprintsim run accepts it)");
  for (int p = 0; p < P; p++) {
    if (label) free(label[p]);
    if (ini) free(ini[p]);
  }
  free(label);
  free(ini);
  free(idx);
  /* /results */
  if (!rc && (g = group(w, "/results")) < 0) rc = SPR_EHDF5;
  else if (!rc) rc = gclose(w, g, "/results", rc);
  char *names[SPR_N_SCHEMES];
  for (int k = 0; k < S; k++) names[k] = (char *)spr_scheme_name(sw->scheme[k]);
  if (!rc) rc = dataset_strs(w, "/results/scheme", S, names, "scheme of each column of /results/*");
  double *v = malloc(sizeof *v * (size_t)P * (size_t)S);
  int64_t *b = malloc(sizeof *b * (size_t)P * (size_t)S);
  if (!rc && (!v || !b)) rc = spr_error(SPR_ENOMEM, "%s: out of memory", w->name);
  d2[1] = (hsize_t)S;
  const int ncol = ev->n_acc + 3 + N_DERIVED;
  for (int col = 0; col < ncol && !rc; col++) {
    for (int p = 0; p < P; p++) {
      const spr_eval_row *dense = spr_sweep_row(sw, p, SPR_SCHEME_DENSE);
      const spr_eval_row *tiled = spr_sweep_row(sw, p, SPR_SCHEME_DENSE_TILED);
      for (int k = 0; k < S; k++) {
        const spr_eval_row *r = spr_sweep_row(sw, p, sw->scheme[k]);
        int m = col - ev->n_acc;
        v[p * S + k] = col < ev->n_acc ? r->acc[col]
                       : m == 0        ? r->energy_J
                       : m == 1        ? r->cycles
                       : m == 2        ? r->keep_rate
                                       : derived_value(r, dense, tiled, m - 3);
      }
    }
    char dp[96];
    const char *name, *unit, *desc;
    int m = col - ev->n_acc;
    if (col < ev->n_acc) name = ev->acc[col].name, unit = ev->acc[col].unit, desc = ev->acc[col].doc;
    else if (m == 0) name = "energy_J", unit = "J", desc = "energy of the whole workload";
    else if (m == 1) name = "cycles", unit = "cycle", desc = "latency of the whole workload";
    else if (m == 2) name = "keep_rate", unit = "1", desc = "kept (query, key) pairs / all pairs, mean over heads";
    else name = derived[m - 3].name, unit = derived[m - 3].unit, desc = derived[m - 3].doc;
    snprintf(dp, sizeof dp, "/results/%s", name);
    rc = dataset(w, dp, 2, d2, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v, unit, desc);
    if (!rc && col < ev->n_acc) {
      hid_t d = H5Dopen2(w->file, dp, H5P_DEFAULT);
      int8_t hb = (int8_t)ev->acc[col].higher_better;
      rc = d < 0 ? h5err(w, dp)
                 : attr_raw(w, d, dp, "higher_is_better", H5T_STD_I8LE, H5T_NATIVE_INT8, &hb);
      if (!rc) rc = attr_str(w, d, dp, "kind", "accuracy");
      if (d >= 0 && H5Dclose(d) < 0 && !rc) rc = h5err(w, dp);
    }
  }
  for (int p = 0; p < P && !rc; p++)
    for (int k = 0; k < S; k++) b[p * S + k] = spr_sweep_row(sw, p, sw->scheme[k])->bytes_fetched;
  if (!rc)
    rc = dataset(w, "/results/bytes_fetched", 2, d2, H5T_STD_I64LE, H5T_NATIVE_INT64, b, "B",
                 "bytes of K and V read from ReRAM, whole workload");
  free(v);
  free(b);
  if (!rc) {
    int8_t one = 1;
    hid_t a = H5Aopen(w->file, "complete", H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, H5T_NATIVE_INT8, &one) < 0) rc = h5err(w, "/ attribute complete");
    if (a >= 0 && H5Aclose(a) < 0 && !rc) rc = h5err(w, "/ attribute complete");
  }
  return rc;
}

static int write_h5(const spr_sweep *sw, const char *tmp, const char *version) {
  spr__h5_quiet q;
  spr__h5_quiet_on(&q);
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
  h5w w = {-1, tmp};
  int rc = 0;
  if (fcpl < 0 || fapl < 0 || H5Pset_obj_track_times(fcpl, 0) < 0 || spr__h5_out_fapl(fapl, tmp) ||
      (w.file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl)) < 0)
    rc = spr__h5_fail(tmp, "cannot create HDF5 file");
  if (fcpl >= 0) H5Pclose(fcpl);
  if (fapl >= 0) H5Pclose(fapl);
  if (!rc) rc = write_h5_body(sw, &w, version);
  rc = spr__h5_close_output(w.file, tmp, rc); /* the verified close */
  spr__h5_quiet_off(&q);
  return rc;
}

int spr_sweep_out_commit(spr_sweep_out *o, const spr_sweep *sw, const char *version) {
  int rc = 0;
  for (int p = 0; p < sw->npoints && !rc; p++)
    if (!sw->done[p])
      rc = spr_error(SPR_EINVAL, "%s: point %d of %d was not evaluated; not written", o->path[0], p + 1,
                     sw->npoints);
  if (!rc) rc = write_csv(sw, o->tmp[1], o->path[1]);
  if (!rc) rc = write_h5(sw, o->tmp[0], version);
  /* both complete before either is renamed */
  for (int i = 1; i >= 0 && !rc; i--) {
    rc = spr__out_commit(o->tmp[i], o->path[i], 0);
    free(o->tmp[i]);
    o->tmp[i] = NULL;
  }
  spr_sweep_out_abort(o); /* deletes what is left of the temporaries */
  return rc;
}
