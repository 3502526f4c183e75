/* spr_device.c - device-model HDF5 files: write, read with validation,
 * apply to a configuration (layout in docs/calibration.md). */
#include "config.h"
#include "spr_device.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_h5quiet.h"
#include "spr_h5r.h"
#include "spr_h5w.h"
#include "spr_output.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void spr_device_init(spr_device *d) { memset(d, 0, sizeof *d); }

void spr_device_free(spr_device *d) {
  if (!d) return;
  for (int i = 0; i < d->n_netlists; i++) free(d->netlist_text[i]);
  for (int i = 0; i < d->n_data; i++) free(d->data[i].values);
  free(d->config_text);
  memset(d, 0, sizeof *d);
}

/* --- validation ------------------------------------------------------------ */

static int name_ok(const char *s) {
  size_t l = strlen(s);
  if (l == 0 || l >= SPR_DEVICE_NAME) return 0;
  for (size_t i = 0; i < l; i++) {
    const char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

/* The config key "section.name" of type double, or NULL. */
static const spr_config_key_info *find_double_key(const char *key) {
  const char *dot = strchr(key, '.');
  if (!dot) return NULL;
  for (int i = 0; i < spr_config_nkeys(); i++) {
    const spr_config_key_info *k = spr_config_key(i);
    size_t sl = strlen(k->section);
    if (sl == (size_t)(dot - key) && !strncmp(key, k->section, sl) && !strcmp(dot + 1, k->name))
      return k->type == SPR_KEY_DOUBLE ? k : NULL;
  }
  return NULL;
}

static const char *unit_or_1(const char *u) { return u[0] ? u : "1"; }

/* One parameter; `where` prefixes messages ("file.h5: dataset '/params/x'"). */
static int check_param(const spr_device_param *p, const char *where, int code) {
  if (!name_ok(p->name))
    return spr_error(code, "%s: parameter name '%s' is not 1..%d characters of [A-Za-z0-9_.-]", where,
                     p->name, SPR_DEVICE_NAME - 1);
  if (p->key[0]) {
    const spr_config_key_info *k = find_double_key(p->key);
    if (!k)
      return spr_error(code, "%s: key '%s' is not a floating-point configuration key "
                       "(see sprintsim config)", where, p->key);
    if (strcmp(unit_or_1(k->unit), unit_or_1(p->unit)))
      return spr_error(code, "%s: unit '%s' does not match key '%s' (unit '%s')", where, p->unit,
                       p->key, unit_or_1(k->unit));
  }
  const struct { const char *n; double v; } f[] = {
      {"value", p->value},           {"ci95_lo", p->ci95_lo}, {"ci95_hi", p->ci95_hi},
      {"residual_rms", p->residual_rms}, {"chi2_dof", p->chi2_dof}, {"r2", p->r2}};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
    if (!isfinite(f[i].v)) return spr_error(code, "%s: %s is %g (not finite)", where, f[i].n, f[i].v);
  if (!(p->ci95_lo <= p->value && p->value <= p->ci95_hi))
    return spr_error(code, "%s: value %g is outside its 95%% interval [%g, %g]", where, p->value,
                     p->ci95_lo, p->ci95_hi);
  if (p->residual_rms < 0) return spr_error(code, "%s: residual_rms %g < 0", where, p->residual_rms);
  if (p->chi2_dof < 0) return spr_error(code, "%s: chi2_dof %g < 0", where, p->chi2_dof);
  if (p->r2 > 1) return spr_error(code, "%s: r2 %g > 1", where, p->r2);
  if (p->n_points < 1) return spr_error(code, "%s: n_points %" PRId64 " < 1", where, p->n_points);
  return 0;
}

static int check_data(const spr_device_data *a, const char *where, int code);

/* The whole model: every parameter, unique names and keys, provenance. */
static int check_device(const spr_device *d, const char *file, int code) {
  char where[SPR_DEVICE_NAME + 300];
  for (int i = 0; i < d->n_params; i++) {
    const spr_device_param *p = &d->params[i];
    snprintf(where, sizeof where, "%s: dataset '/params/%s'", file, p->name);
    int rc = check_param(p, where, code);
    if (rc) return rc;
    for (int j = 0; j < i; j++) {
      if (!strcmp(d->params[j].name, p->name))
        return spr_error(code, "%s: parameter name given twice", where);
      if (p->key[0] && !strcmp(d->params[j].key, p->key))
        return spr_error(code, "%s: key '%s' is also set by '/params/%s'", where, p->key,
                         d->params[j].name);
    }
  }
  for (int i = 0; i < d->n_data; i++) {
    snprintf(where, sizeof where, "%s: dataset '/data/%s'", file, d->data[i].name);
    int rc = check_data(&d->data[i], where, code);
    if (rc) return rc;
  }
  const struct { const char *n, *v; } s[] = {{"ngspice_version", d->ngspice_version},
                                             {"sprintsim_version", d->sprintsim_version},
                                             {"created", d->created}};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
    if (!s[i].v[0]) return spr_error(code, "%s: provenance '%s' is empty", file, s[i].n);
  return 0;
}

int spr_device_add(spr_device *d, const spr_device_param *p) {
  if (d->n_params >= SPR_DEVICE_MAX_PARAMS)
    return spr_error(SPR_EINVAL, "device model: more than %d parameters ('%s')",
                     SPR_DEVICE_MAX_PARAMS, p->name);
  char where[SPR_DEVICE_NAME + 40];
  snprintf(where, sizeof where, "device model: parameter '%s'", p->name);
  int rc = check_param(p, where, SPR_EINVAL);
  if (rc) return rc;
  for (int j = 0; j < d->n_params; j++) {
    if (!strcmp(d->params[j].name, p->name))
      return spr_error(SPR_EINVAL, "%s: name given twice", where);
    if (p->key[0] && !strcmp(d->params[j].key, p->key))
      return spr_error(SPR_EINVAL, "%s: key '%s' is also set by '%s'", where, p->key, d->params[j].name);
  }
  d->params[d->n_params++] = *p;
  return 0;
}

/* Copy strings into a parameter, refusing what does not fit. */
static int fill_names(spr_device_param *p, const char *name, const char *key, const char *unit,
                      const char *model) {
  memset(p, 0, sizeof *p);
  if (!name || !key || !unit || !model)
    return spr_error(SPR_EINVAL, "device model: NULL name, key, unit or model");
  if (strlen(name) >= sizeof p->name || strlen(key) >= sizeof p->key ||
      strlen(unit) >= sizeof p->unit || strlen(model) >= sizeof p->model)
    return spr_error(SPR_EINVAL, "device model: parameter '%.40s': name, key, unit or model too long",
                     name);
  strcpy(p->name, name);
  strcpy(p->key, key);
  snprintf(p->unit, sizeof p->unit, "%s", unit_or_1(unit));
  strcpy(p->model, model);
  return 0;
}

int spr_device_add_fit(spr_device *d, const char *name, const char *key, const char *unit,
                       const char *model, const spr_fit_result *fit, int k) {
  spr_device_param p;
  int rc = fill_names(&p, name, key, unit, model);
  if (rc) return rc;
  if (!fit || k < 0 || k >= fit->p)
    return spr_error(SPR_EINVAL, "device model: parameter '%s': fit parameter %d of %d", name, k,
                     fit ? fit->p : 0);
  p.value = fit->param[k];
  p.ci95_lo = fit->param[k] - fit->ci95[k];
  p.ci95_hi = fit->param[k] + fit->ci95[k];
  p.residual_rms = fit->rms;
  p.chi2_dof = fit->chi2_dof;
  p.r2 = fit->r2;
  p.n_points = (int64_t)fit->n;
  return spr_device_add(d, &p);
}

int spr_device_add_value(spr_device *d, const char *name, const char *key, const char *unit,
                         const char *model, double value, double ci95_lo, double ci95_hi,
                         const spr_fit_result *quality) {
  spr_device_param p;
  int rc = fill_names(&p, name, key, unit, model);
  if (rc) return rc;
  if (!quality) return spr_error(SPR_EINVAL, "device model: parameter '%s': no fit given", name);
  p.value = value;
  p.ci95_lo = ci95_lo;
  p.ci95_hi = ci95_hi;
  p.residual_rms = quality->rms;
  p.chi2_dof = quality->chi2_dof;
  p.r2 = quality->r2;
  p.n_points = (int64_t)quality->n;
  return spr_device_add(d, &p);
}

int spr_device_add_gauss(spr_device *d, const char *name, const char *key, const char *unit,
                         const char *model, const spr_fit_gauss *g, int which) {
  spr_device_param p;
  int rc = fill_names(&p, name, key, unit, model);
  if (rc) return rc;
  if (!g || (which != 0 && which != 1))
    return spr_error(SPR_EINVAL, "device model: parameter '%s': which = %d (0 mean, 1 sigma)", name,
                     which);
  if (which == 0) {
    p.value = g->mean;
    p.ci95_lo = g->mean - g->mean_ci95;
    p.ci95_hi = g->mean + g->mean_ci95;
  } else {
    p.value = g->sigma;
    p.ci95_lo = g->sigma_lo;
    p.ci95_hi = g->sigma_hi;
  }
  p.residual_rms = g->sigma;
  p.chi2_dof = 1.0;
  p.r2 = g->ppcc * g->ppcc;
  p.n_points = (int64_t)g->n;
  return spr_device_add(d, &p);
}

static int add_count(spr_device_count *list, int *n, const char *what, const char *name,
                     uint64_t v) {
  if (!name || !name_ok(name))
    return spr_error(SPR_EINVAL, "device model: %s name '%s' is not 1..%d characters of [A-Za-z0-9_.-]",
                     what, name ? name : "(null)", SPR_DEVICE_NAME - 1);
  for (int i = 0; i < *n; i++)
    if (!strcmp(list[i].name, name))
      return spr_error(SPR_EINVAL, "device model: %s '%s' given twice", what, name);
  if (*n >= SPR_DEVICE_MAX_PROV)
    return spr_error(SPR_EINVAL, "device model: more than %d %ss ('%s')", SPR_DEVICE_MAX_PROV, what, name);
  snprintf(list[*n].name, SPR_DEVICE_NAME, "%s", name);
  list[(*n)++].value = v;
  return 0;
}

int spr_device_add_seed(spr_device *d, const char *name, uint64_t seed) {
  return add_count(d->seeds, &d->n_seeds, "seed", name, seed);
}

int spr_device_add_samples(spr_device *d, const char *name, uint64_t count) {
  return add_count(d->samples, &d->n_samples, "sample count", name, count);
}

int spr_device_add_netlist(spr_device *d, const char *name, const char *text) {
  if (!name || !name_ok(name) || !text)
    return spr_error(SPR_EINVAL, "device model: netlist name '%s' is not 1..%d characters of "
                     "[A-Za-z0-9_.-] (or its text is NULL)", name ? name : "(null)", SPR_DEVICE_NAME - 1);
  for (int i = 0; i < d->n_netlists; i++)
    if (!strcmp(d->netlist_name[i], name))
      return spr_error(SPR_EINVAL, "device model: netlist '%s' given twice", name);
  if (d->n_netlists >= SPR_DEVICE_MAX_PROV)
    return spr_error(SPR_EINVAL, "device model: more than %d netlists ('%s')", SPR_DEVICE_MAX_PROV, name);
  size_t l = strlen(text);
  char *t = malloc(l + 1);
  if (!t) return spr_error(SPR_ENOMEM, "device model: out of memory for netlist '%s'", name);
  memcpy(t, text, l + 1);
  snprintf(d->netlist_name[d->n_netlists], SPR_DEVICE_NAME, "%s", name);
  d->netlist_text[d->n_netlists++] = t;
  return 0;
}

/* One data array's fields (values included); `where` prefixes messages. */
static int check_data(const spr_device_data *a, const char *where, int code) {
  if (!name_ok(a->name))
    return spr_error(code, "%s: data name '%s' is not 1..%d characters of [A-Za-z0-9_.-]", where,
                     a->name, SPR_DEVICE_NAME - 1);
  if (!a->unit[0] || !a->description[0])
    return spr_error(code, "%s: unit or description is empty", where);
  if (a->rank != 1 && a->rank != 2) return spr_error(code, "%s: rank %d (1 or 2)", where, a->rank);
  if (a->dims[0] < 1 || a->dims[1] < 1 || (a->rank == 1 && a->dims[1] != 1) ||
      a->dims[0] > SPR_DEVICE_MAX_DATA_VALUES / a->dims[1])
    return spr_error(code, "%s: shape %lld x %lld (each >= 1, at most %d values)", where,
                     (long long)a->dims[0], (long long)a->dims[1], SPR_DEVICE_MAX_DATA_VALUES);
  const int64_t n = a->dims[0] * a->dims[1];
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(a->values[i]))
      return spr_error(code, "%s: value %lld is %g (not finite)", where, (long long)i, a->values[i]);
  return 0;
}

int spr_device_add_data(spr_device *d, const char *name, const char *unit,
                        const char *description, int rank, int64_t n0, int64_t n1,
                        const double *values) {
  spr_device_data a;
  memset(&a, 0, sizeof a);
  if (!name || !unit || !description || !values)
    return spr_error(SPR_EINVAL, "device model: data array: NULL name, unit, description or values");
  if (strlen(name) >= sizeof a.name || strlen(unit) >= sizeof a.unit ||
      strlen(description) >= sizeof a.description)
    return spr_error(SPR_EINVAL, "device model: data '%.40s': name, unit or description too long", name);
  strcpy(a.name, name);
  strcpy(a.unit, unit);
  strcpy(a.description, description);
  a.rank = rank;
  a.dims[0] = n0;
  a.dims[1] = rank == 1 ? 1 : n1;
  a.values = (double *)values;
  char where[SPR_DEVICE_NAME + 40];
  snprintf(where, sizeof where, "device model: data '%s'", a.name);
  int rc = check_data(&a, where, SPR_EINVAL);
  if (rc) return rc;
  if (spr_device_find_data(d, name)) return spr_error(SPR_EINVAL, "%s: name given twice", where);
  if (d->n_data >= SPR_DEVICE_MAX_DATA)
    return spr_error(SPR_EINVAL, "%s: more than %d data arrays", where, SPR_DEVICE_MAX_DATA);
  const size_t bytes = (size_t)(a.dims[0] * a.dims[1]) * sizeof(double);
  if (!(a.values = malloc(bytes))) return spr_error(SPR_ENOMEM, "%s: out of memory", where);
  memcpy(a.values, values, bytes);
  d->data[d->n_data++] = a;
  return 0;
}

int spr_device_set_config(spr_device *d, const char *text) {
  if (!d || !text || !*text) return spr_error(SPR_EINVAL, "device model: configuration text is NULL or empty");
  size_t l = strlen(text);
  char *t = malloc(l + 1);
  if (!t) return spr_error(SPR_ENOMEM, "device model: out of memory for the configuration text");
  memcpy(t, text, l + 1);
  free(d->config_text);
  d->config_text = t;
  return 0;
}

const spr_device_data *spr_device_find_data(const spr_device *d, const char *name) {
  for (int i = 0; d && name && i < d->n_data; i++)
    if (!strcmp(d->data[i].name, name)) return &d->data[i];
  return NULL;
}

/* --- write ------------------------------------------------------------------ */

static void write_body(spr__h5w *w, const spr_device *d) {
  int32_t fv = SPR_DEVICE_FORMAT_VERSION;
  spr__h5w_attr_str(w, "/", "format", SPR_DEVICE_FORMAT);
  spr__h5w_attr(w, "/", "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, &fv);
  char path[2 * SPR_DEVICE_NAME];
  spr__h5w_group(w, "/params");
  for (int i = 0; i < d->n_params && !w->rc; i++) {
    const spr_device_param *p = &d->params[i];
    snprintf(path, sizeof path, "/params/%s", p->name);
    spr__h5w_dset(w, path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL, &p->value, NULL, NULL);
    spr__h5w_attr_str(w, path, "key", p->key);
    spr__h5w_attr_str(w, path, "unit", p->unit);
    spr__h5w_attr_str(w, path, "model", p->model);
    spr__h5w_attr_f64(w, path, "ci95_lo", p->ci95_lo);
    spr__h5w_attr_f64(w, path, "ci95_hi", p->ci95_hi);
    spr__h5w_attr_f64(w, path, "residual_rms", p->residual_rms);
    spr__h5w_attr_f64(w, path, "chi2_dof", p->chi2_dof);
    spr__h5w_attr_f64(w, path, "r2", p->r2);
    spr__h5w_attr_i64(w, path, "n_points", p->n_points);
  }
  spr__h5w_group(w, "/provenance");
  spr__h5w_dset_str(w, "/provenance/created", d->created);
  spr__h5w_dset_str(w, "/provenance/sprintsim_version", d->sprintsim_version);
  spr__h5w_dset_str(w, "/provenance/ngspice_version", d->ngspice_version);
  if (d->config_text) spr__h5w_dset_str(w, "/provenance/config", d->config_text);
  spr__h5w_group(w, "/provenance/netlists");
  for (int i = 0; i < d->n_netlists; i++) {
    snprintf(path, sizeof path, "/provenance/netlists/%s", d->netlist_name[i]);
    spr__h5w_dset_str(w, path, d->netlist_text[i]);
  }
  spr__h5w_group(w, "/provenance/seeds");
  for (int i = 0; i < d->n_seeds; i++) {
    snprintf(path, sizeof path, "/provenance/seeds/%s", d->seeds[i].name);
    spr__h5w_dset(w, path, H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, NULL, &d->seeds[i].value, NULL,
                  NULL);
  }
  spr__h5w_group(w, "/provenance/samples");
  for (int i = 0; i < d->n_samples; i++) {
    snprintf(path, sizeof path, "/provenance/samples/%s", d->samples[i].name);
    spr__h5w_dset(w, path, H5T_STD_U64LE, H5T_NATIVE_UINT64, 0, NULL, &d->samples[i].value, NULL,
                  NULL);
  }
  if (d->n_data) spr__h5w_group(w, "/data");
  for (int i = 0; i < d->n_data && !w->rc; i++) {
    const spr_device_data *a = &d->data[i];
    snprintf(path, sizeof path, "/data/%s", a->name);
    const hsize_t dims[2] = {(hsize_t)a->dims[0], (hsize_t)a->dims[1]};
    spr__h5w_dset(w, path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, a->rank, dims, a->values, a->unit,
                  a->description);
  }
}

int spr_device_write(const char *path, spr_device *d) {
  if (!path || !*path || !d) return spr_error(SPR_EINVAL, "spr_device_write: path or model is NULL");
  if (!d->created[0]) {
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(d->created, sizeof d->created, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  }
  int rc = check_device(d, path, SPR_EINVAL);
  if (rc) return rc;
  char *tmp;
  if ((rc = spr__out_begin(path, &tmp))) return rc;
  spr__h5_quiet q;
  spr__h5_quiet_on(&q);
  spr__h5w w = {-1, tmp, 0};
  /* object headers of format 1.8 and later carry checksums, so a
   * corrupted file is an error on reading rather than a crash in HDF5 */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0 || H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0)
    w.rc = spr__h5_fail(tmp, "cannot make the file-access properties");
  if (!w.rc) w.rc = spr__h5_out_fapl(fapl, tmp);
  if (!w.rc && (w.f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0)
    w.rc = spr__h5_fail(tmp, "cannot create HDF5 file");
  if (fapl >= 0) H5Pclose(fapl);
  if (!w.rc) write_body(&w, d);
  rc = spr__h5_close_output(w.f, tmp, w.rc);
  spr__h5_quiet_off(&q);
  if (!rc) rc = spr__out_commit(tmp, path, 0);
  else spr__out_discard(tmp);
  free(tmp);
  return rc;
}

/* --- read ------------------------------------------------------------------- */

/* The file is read through the isolated reader (core/spr_h5r.h): libhdf5
 * runs in a child process, so a crafted file that crashes or loops it is
 * an error naming the file, never a crash of this process. */
typedef struct {
  spr_h5r *h;
  const char *path;
} rctx;

/* `what` of the object: "dataset '/x'" or "attribute 'a' of '/x'". */
static void what_of(char *buf, size_t n, const char *obj, const char *attr) {
  if (attr) snprintf(buf, n, "attribute '%s' of '%s'", attr, obj);
  else snprintf(buf, n, "dataset '%s'", obj);
}

/* Type and shape of dataset obj (attr NULL) or of its attribute attr,
 * which must exist. */
static int info_of(const rctx *r, const char *obj, const char *attr, spr_h5r_info *in) {
  if (!attr) {
    int kind, rc = spr_h5r_kind(r->h, obj, &kind);
    if (rc) return rc;
    if (kind == SPR_H5R_MISSING) return spr_error(SPR_EHDF5, "%s: dataset '%s' is missing", r->path, obj);
    if (kind != SPR_H5R_DATASET) return spr_error(SPR_EHDF5, "%s: '%s' is not a dataset", r->path, obj);
    return spr_h5r_dset_info(r->h, obj, in);
  }
  int ex, rc = spr_h5r_attr_info(r->h, obj, attr, &ex, in);
  if (rc) return rc;
  if (!ex) return spr_error(SPR_EHDF5, "%s: attribute '%s' of '%s' is missing", r->path, attr, obj);
  return 0;
}

/* A scalar string (fixed length of any padding, or variable length): the
 * dataset obj (attr NULL) or its attribute attr, into a new string of at
 * most max_len bytes. */
static int read_str(const rctx *r, const char *obj, const char *attr, size_t max_len, char **out) {
  *out = NULL;
  char what[300];
  what_of(what, sizeof what, obj, attr);
  spr_h5r_info in;
  int rc = info_of(r, obj, attr, &in);
  if (rc) return rc;
  if (in.cls != SPR_H5R_STRING) return spr_error(SPR_EHDF5, "%s: %s is not a string", r->path, what);
  if (in.rank != 0) return spr_error(SPR_EHDF5, "%s: %s is not a scalar", r->path, what);
  return spr_h5r_read_str(r->h, obj, attr, max_len, out);
}

/* Scalar number of the wanted class (SPR_H5R_FLOAT or SPR_H5R_INTEGER)
 * of dataset obj or its attribute attr, converted to memory type mem. */
static int read_num(const rctx *r, const char *obj, const char *attr, int cls, int mem, void *out) {
  char what[300];
  what_of(what, sizeof what, obj, attr);
  spr_h5r_info in;
  int rc = info_of(r, obj, attr, &in);
  if (rc) return rc;
  if (in.cls != cls)
    return spr_error(SPR_EHDF5, "%s: %s is not %s", r->path, what,
                     cls == SPR_H5R_FLOAT ? "a floating-point number (float64)" : "an integer");
  if (in.rank != 0) return spr_error(SPR_EHDF5, "%s: %s is not a scalar", r->path, what);
  if (!in.standard)
    return spr_error(SPR_EHDF5, "%s: %s has a non-standard %llu-byte type", r->path, what,
                     (unsigned long long)in.size);
  const size_t ms = spr_h5r_mem_size(mem);
  return attr ? spr_h5r_attr_read(r->h, obj, attr, mem, out, ms)
              : spr_h5r_read(r->h, obj, mem, 0, NULL, NULL, out, ms);
}

/* String attribute `name` of obj into buf (n bytes). */
static int attr_str(const rctx *r, const char *obj, const char *name, char *buf, size_t n) {
  char *s = NULL;
  int rc = read_str(r, obj, name, n - 1, &s);
  if (!rc) memcpy(buf, s, strlen(s) + 1);
  free(s);
  return rc;
}

/* String dataset `path` into a new string or into buf (n bytes). */
static int dset_str(const rctx *r, const char *path, char **out, char *buf, size_t n) {
  char *s = NULL;
  int rc = read_str(r, path, NULL, buf ? n - 1 : (size_t)64 << 20, &s);
  if (!rc && buf) {
    memcpy(buf, s, strlen(s) + 1);
    free(s);
    s = NULL;
  }
  if (out) *out = s;
  else free(s);
  return rc;
}

/* Names of the links of group `gpath` (at most max), into names. */
static int list_group(const rctx *r, const char *gpath, char names[][SPR_DEVICE_NAME], int max,
                      int *count) {
  *count = 0;
  int kind, rc = spr_h5r_kind(r->h, gpath, &kind);
  if (rc) return rc;
  if (kind == SPR_H5R_MISSING) return spr_error(SPR_EHDF5, "%s: group '%s' is missing", r->path, gpath);
  if (kind != SPR_H5R_GROUP) return spr_error(SPR_EHDF5, "%s: '%s' is not a group", r->path, gpath);
  char **nm;
  int n;
  if ((rc = spr_h5r_list(r->h, gpath, max, &nm, &n))) return rc;
  for (int i = 0; i < n && !rc; i++) {
    if (strlen(nm[i]) >= SPR_DEVICE_NAME || !name_ok(nm[i]))
      rc = spr_error(SPR_EHDF5, "%s: '%s/%.*s' is not a valid name (1..%d characters of [A-Za-z0-9_.-])",
                     r->path, gpath, SPR_DEVICE_NAME, nm[i], SPR_DEVICE_NAME - 1);
    else memcpy(names[(*count)++], nm[i], strlen(nm[i]) + 1);
  }
  free(nm);
  return rc;
}

static int read_param(const rctx *r, const char *name, spr_device_param *p) {
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%.63s", name);
  char path[2 * SPR_DEVICE_NAME];
  snprintf(path, sizeof path, "/params/%.63s", name);
  int rc = read_num(r, path, NULL, SPR_H5R_FLOAT, SPR_H5R_F64, &p->value);
  if (!rc) rc = attr_str(r, path, "key", p->key, sizeof p->key);
  if (!rc) rc = attr_str(r, path, "unit", p->unit, sizeof p->unit);
  if (!rc) rc = attr_str(r, path, "model", p->model, sizeof p->model);
  const struct { const char *n; double *v; } f[] = {
      {"ci95_lo", &p->ci95_lo}, {"ci95_hi", &p->ci95_hi}, {"residual_rms", &p->residual_rms},
      {"chi2_dof", &p->chi2_dof}, {"r2", &p->r2}};
  for (size_t i = 0; !rc && i < sizeof f / sizeof f[0]; i++)
    rc = read_num(r, path, f[i].n, SPR_H5R_FLOAT, SPR_H5R_F64, f[i].v);
  if (!rc) rc = read_num(r, path, "n_points", SPR_H5R_INTEGER, SPR_H5R_I64, &p->n_points);
  return rc;
}

static int read_counts(const rctx *r, const char *gpath, spr_device_count *list, int *n) {
  char names[SPR_DEVICE_MAX_PROV][SPR_DEVICE_NAME];
  int rc = list_group(r, gpath, names, SPR_DEVICE_MAX_PROV, n);
  for (int i = 0; !rc && i < *n; i++) {
    char path[2 * SPR_DEVICE_NAME + 32];
    snprintf(path, sizeof path, "%.40s/%.63s", gpath, names[i]);
    rc = read_num(r, path, NULL, SPR_H5R_INTEGER, SPR_H5R_U64, &list[i].value);
    memcpy(list[i].name, names[i], SPR_DEVICE_NAME);
  }
  return rc;
}

/* Data array /data/<name>: float64, rank 1 or 2, attributes unit and
 * description (values checked by check_device). */
static int read_data(const rctx *r, const char *name, spr_device_data *a) {
  memset(a, 0, sizeof *a);
  snprintf(a->name, sizeof a->name, "%.63s", name);
  char path[2 * SPR_DEVICE_NAME];
  snprintf(path, sizeof path, "/data/%.63s", name);
  spr_h5r_info in;
  int rc = info_of(r, path, NULL, &in);
  if (!rc && (in.cls != SPR_H5R_FLOAT || in.size != 8 || !in.standard))
    rc = spr_error(SPR_EHDF5, "%s: dataset '%s' is not float64", r->path, path);
  if (!rc && in.rank != 1 && in.rank != 2)
    rc = spr_error(SPR_EHDF5, "%s: dataset '%s' has rank %d (1 or 2)", r->path, path, in.rank);
  uint64_t dims[2] = {0, 1};
  if (!rc) {
    dims[0] = in.dims[0];
    if (in.rank == 2) dims[1] = in.dims[1];
  }
  if (!rc && (dims[0] < 1 || dims[1] < 1 || dims[0] > (uint64_t)SPR_DEVICE_MAX_DATA_VALUES / dims[1]))
    rc = spr_error(SPR_EHDF5, "%s: dataset '%s' has shape %llu x %llu (each >= 1, at most %d values)",
                   r->path, path, (unsigned long long)dims[0], (unsigned long long)dims[1],
                   SPR_DEVICE_MAX_DATA_VALUES);
  if (!rc) {
    a->rank = in.rank;
    a->dims[0] = (int64_t)dims[0];
    a->dims[1] = (int64_t)dims[1];
    const size_t bytes = (size_t)(dims[0] * dims[1]) * sizeof(double);
    if (!(a->values = malloc(bytes)))
      rc = spr_error(SPR_ENOMEM, "%s: out of memory reading '%s'", r->path, path);
    else
      rc = spr_h5r_read(r->h, path, SPR_H5R_F64, 0, NULL, NULL, a->values, bytes);
  }
  if (!rc) rc = attr_str(r, path, "unit", a->unit, sizeof a->unit);
  if (!rc) rc = attr_str(r, path, "description", a->description, sizeof a->description);
  return rc;
}

static int read_body(const rctx *r, spr_device *d) {
  char fmt[64];
  int32_t fv = 0;
  int rc = attr_str(r, "/", "format", fmt, sizeof fmt);
  if (!rc && strcmp(fmt, SPR_DEVICE_FORMAT))
    rc = spr_error(SPR_EHDF5, "%s: attribute 'format' of '/' is '%s', expected '%s' (not a device model)",
                   r->path, fmt, SPR_DEVICE_FORMAT);
  if (!rc) rc = read_num(r, "/", "format_version", SPR_H5R_INTEGER, SPR_H5R_I32, &fv);
  if (!rc && fv != SPR_DEVICE_FORMAT_VERSION)
    rc = spr_error(SPR_EHDF5, "%s: format_version %d, this sprintsim reads version %d", r->path, fv,
                   SPR_DEVICE_FORMAT_VERSION);
  if (rc) return rc;
  char names[SPR_DEVICE_MAX_PARAMS][SPR_DEVICE_NAME];
  int n = 0;
  if ((rc = list_group(r, "/params", names, SPR_DEVICE_MAX_PARAMS, &n))) return rc;
  for (int i = 0; i < n; i++) {
    if ((rc = read_param(r, names[i], &d->params[i]))) return rc;
    d->n_params = i + 1;
  }
  if ((rc = dset_str(r, "/provenance/created", NULL, d->created, sizeof d->created))) return rc;
  if ((rc = dset_str(r, "/provenance/sprintsim_version", NULL, d->sprintsim_version,
                     sizeof d->sprintsim_version)))
    return rc;
  if ((rc = dset_str(r, "/provenance/ngspice_version", NULL, d->ngspice_version,
                     sizeof d->ngspice_version)))
    return rc;
  int kind;
  if ((rc = spr_h5r_kind(r->h, "/provenance/config", &kind))) return rc;
  if (kind != SPR_H5R_MISSING && (rc = dset_str(r, "/provenance/config", &d->config_text, NULL, 0)))
    return rc;
  char nl[SPR_DEVICE_MAX_PROV][SPR_DEVICE_NAME];
  if ((rc = list_group(r, "/provenance/netlists", nl, SPR_DEVICE_MAX_PROV, &n))) return rc;
  for (int i = 0; i < n; i++) {
    char path[2 * SPR_DEVICE_NAME + 32];
    snprintf(path, sizeof path, "/provenance/netlists/%s", nl[i]);
    if ((rc = dset_str(r, path, &d->netlist_text[i], NULL, 0))) return rc;
    memcpy(d->netlist_name[i], nl[i], SPR_DEVICE_NAME);
    d->n_netlists = i + 1;
  }
  if ((rc = read_counts(r, "/provenance/seeds", d->seeds, &d->n_seeds))) return rc;
  if ((rc = read_counts(r, "/provenance/samples", d->samples, &d->n_samples))) return rc;
  if ((rc = spr_h5r_kind(r->h, "/data", &kind))) return rc;
  if (kind != SPR_H5R_MISSING) {
    char dn[SPR_DEVICE_MAX_DATA][SPR_DEVICE_NAME];
    if ((rc = list_group(r, "/data", dn, SPR_DEVICE_MAX_DATA, &n))) return rc;
    for (int i = 0; i < n; i++) {
      if ((rc = read_data(r, dn[i], &d->data[i]))) {
        free(d->data[i].values);
        d->data[i].values = NULL;
        return rc;
      }
      d->n_data = i + 1;
    }
  }
  return check_device(d, r->path, SPR_EHDF5);
}

int spr_device_read(const char *path, spr_device *d) {
  spr_device_init(d);
  if (!path || !*path) return spr_error(SPR_EINVAL, "spr_device_read: empty path");
  rctx r = {NULL, path};
  int rc = spr_h5r_open(path, "device model", NULL, &r.h);
  if (!rc) rc = read_body(&r, d);
  /* FNV-1a 64 of the bytes just read (the same descriptor, checked
   * unchanged): a content identity recorded in traces */
  if (!rc) rc = spr_h5r_content_id(r.h, d->content_id, sizeof d->content_id);
  if (!rc) d->file_bytes = spr_h5r_size(r.h);
  spr_h5r_close(r.h);
  return rc;
}

/* --- apply ---------------------------------------------------------------------- */

int spr_device_apply(const spr_device *d, spr_config *c, const char *origin, int *applied,
                     int *n_applied) {
  int count = 0;
  if (n_applied) *n_applied = 0;
  if (!origin) origin = "device model";
  for (int i = 0; i < d->n_params; i++) {
    const spr_device_param *p = &d->params[i];
    if (!p->key[0]) continue;
    const char *dot = strchr(p->key, '.');
    char section[SPR_DEVICE_NAME], val[40], where[SPR_STRING_MAX + 2 * SPR_DEVICE_NAME + 32];
    if (!dot || !find_double_key(p->key))
      return spr_error(SPR_ECONFIG, "%s: parameter '%s': key '%s' is not a floating-point "
                       "configuration key", origin, p->name, p->key);
    snprintf(section, sizeof section, "%.*s", (int)(dot - p->key), p->key);
    snprintf(val, sizeof val, "%.17g", p->value);
    snprintf(where, sizeof where, "%s: /params/%s", origin, p->name);
    int rc = spr_config_set(c, section, dot + 1, val, where);
    if (rc) return rc;
    if (applied) applied[count] = i;
    count++;
    if (n_applied) *n_applied = count;
  }
  return spr_config_resolve(c, origin);
}

int spr_device_load_config(spr_config *c, spr_device *dev, int *applied, int *n_applied) {
  spr_device local;
  spr_device *d = dev ? dev : &local;
  spr_device_init(d);
  if (n_applied) *n_applied = 0;
  if (!c) return spr_error(SPR_EINVAL, "spr_device_load_config: NULL configuration");
  if (!c->device_model[0]) return 0;
  int rc = spr_device_read(c->device_model, d);
  if (!rc) rc = spr_device_apply(d, c, c->device_model, applied, n_applied);
  if (rc) {
    rc = spr_error_prefix(rc, "run.device_model");
  }
  if (!dev) spr_device_free(&local);
  return rc;
}

int spr_device_trace(spr_trace *t, const char *path, const spr_device *dev, const int *applied,
                     int n_applied) {
  const char *keys[SPR_DEVICE_MAX_PARAMS], *params[SPR_DEVICE_MAX_PARAMS],
      *units[SPR_DEVICE_MAX_PARAMS];
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
  spr_trace_device dm = {path, dev->content_id, dev->created, dev->sprintsim_version,
                         dev->ngspice_version, n_applied, keys, params, units, values, lo, hi};
  return spr_trace_write_device(t, &dm);
}
