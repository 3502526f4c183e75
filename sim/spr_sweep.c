/* spr_sweep.c - grid sweeps: the [sweep] section, the grid, the outputs
 * (spr_sweep.h; file formats in docs/sweep.md). */
#include "config.h"
#include "spr_sweep.h"
#include "spr_sweep_impl.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_device.h"
#include "spr_output.h"
#include "spr_pipeline.h"
#include "spr_qkv.h"
#include "spr_model.h"
#include "spr_model_eval.h"
#include "spr_sysmem.h"

#include <ctype.h>
#include <fcntl.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_ERR(...) spr_error(SPR_ECONFIG, __VA_ARGS__)

/* Baseline schemes and their on/off keys in [baselines]. */
static const struct {
  int scheme;
  const char *key;
} baseline_keys[] = {
    {SPR_SCHEME_DENSE_TILED, "dense_tiled"}, {SPR_SCHEME_ORACLE, "oracle"},
    {SPR_SCHEME_TOPK, "topk"},     {SPR_SCHEME_SANGER, "sanger"},
    {SPR_SCHEME_LEOPARD, "leopard"}, {SPR_SCHEME_WINDOW, "window"},
};
#define N_BASELINES ((int)(sizeof baseline_keys / sizeof baseline_keys[0]))

static int baseline_on(const spr_config *c, int scheme) {
  switch (scheme) {
  case SPR_SCHEME_DENSE_TILED: return c->bl.dense_tiled;
  case SPR_SCHEME_ORACLE: return c->bl.oracle;
  case SPR_SCHEME_TOPK: return c->bl.topk;
  case SPR_SCHEME_SANGER: return c->bl.sanger;
  case SPR_SCHEME_LEOPARD: return c->bl.leopard;
  case SPR_SCHEME_WINDOW: return c->bl.window;
  default: return 1; /* sprint and dense always run */
  }
}

static void axis_free(axis *a) {
  for (int v = 0; v < a->n; v++) {
    if (a->text) free(a->text[v]);
    if (a->canon) free(a->canon[v]);
  }
  free(a->text);
  free(a->canon);
  free(a->num);
  memset(a, 0, sizeof *a);
}

void spr_sweep_free(spr_sweep *sw) {
  if (!sw) return;
  for (int a = 0; a < sw->naxes; a++) axis_free(&sw->ax[a]);
  free(sw->path);
  free(sw->source);
  free(sw->base);
  free(sw->rows);
  free(sw->done);
  free(sw->hash);
  spr_model_store_free(sw->store);
  for (int i = 0; i < sw->ndev; i++) {
    free(sw->dev_path[i]);
    spr_device_free(&sw->dev[i]);
  }
  free(sw->dev_path);
  free(sw->dev);
  for (int i = 0; i < sw->ninputs; i++) {
    free(sw->input_key[i]);
    free(sw->input_path[i]);
  }
  free(sw->input_key);
  free(sw->input_path);
  free(sw);
}

uint64_t spr__fnv1a64(uint64_t h, const void *data, size_t n) {
  const unsigned char *b = data;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

/* Note input (key, path) once; *added says whether it was new.  Only
 * regular files count (a folder such as workload.dataset does not). */
static int note_input(spr_sweep *sw, const char *key, const char *path, int *added) {
  struct stat st;
  if (added) *added = 0;
  if (!path[0] || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  for (int i = 0; i < sw->ninputs; i++)
    if (!strcmp(sw->input_key[i], key) && !strcmp(sw->input_path[i], path)) return 0;
  char **a = realloc(sw->input_key, (size_t)(sw->ninputs + 1) * sizeof *a);
  if (a) sw->input_key = a;
  char **b = a ? realloc(sw->input_path, (size_t)(sw->ninputs + 1) * sizeof *b) : NULL;
  if (b) sw->input_path = b;
  char *ks = b ? strdup(key) : NULL, *ps = ks ? strdup(path) : NULL;
  if (!ps) {
    free(ks);
    return spr_error(SPR_ENOMEM, "%s: out of memory", sw->path);
  }
  sw->input_key[sw->ninputs] = ks;
  sw->input_path[sw->ninputs++] = ps;
  if (added) *added = 1;
  return 0;
}

/* Record the files point configuration *c reads: its device model, its
 * Q/K/V file (source qkv), its model and the model's reference model
 * (source model: workload.reference_model, or the model file's own
 * 'reference'). */
static int note_inputs(spr_sweep *sw, const spr_config *c) {
  int rc = note_input(sw, "run.device_model", c->device_model, NULL);
  if (!rc && c->wl.source == SPR_SOURCE_QKV) rc = note_input(sw, "workload.qkv_file", c->wl.qkv_file, NULL);
  if (rc || (c->wl.source != SPR_SOURCE_MODEL && c->wl.source != SPR_SOURCE_VIT)) return rc;
  int added;
  if ((rc = note_input(sw, "workload.model", c->wl.model, &added)) || (!added && !c->wl.reference_model[0]))
    return rc;
  /* the reference: named, or the model's own (read once per model file) */
  spr_model m;
  char ref[SPR_STRING_MAX];
  if (spr_model_load(c->wl.model, &m) != 0) return 0; /* its error comes when the point runs */
  if (spr_model_reference_path(c, c->wl.model, &m, ref, sizeof ref) == 0)
    rc = note_input(sw, "workload.reference_model", ref, NULL);
  spr_model_free(&m);
  return rc;
}

/* --- the [sweep] section ------------------------------------------------- */

typedef struct {
  spr_sweep *sw;
} parse_user;

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  size_t l = strlen(s);
  while (l && isspace((unsigned char)s[l - 1])) s[--l] = '\0';
  return s;
}

static int parse_schemes(spr_sweep *sw, const char *value, const char *origin) {
  char buf[512];
  if (strlen(value) >= sizeof buf)
    return CFG_ERR("%s: [sweep] key 'schemes': value too long", origin);
  snprintf(buf, sizeof buf, "%s", value);
  sw->nschemes = 0;
  char *save = NULL;
  int seen[SPR_N_SCHEMES] = {0};
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *t = trim(tok);
    int s = -1;
    for (int k = 0; k < SPR_N_SCHEMES; k++)
      if (!strcmp(t, spr_scheme_name(k))) s = k;
    if (s < 0)
      return CFG_ERR("%s: [sweep] key 'schemes': '%s' is not a scheme (sprint, dense, dense_tiled, oracle, "
                     "topk, sanger, leopard, window)", origin, t);
    if (seen[s]) return CFG_ERR("%s: [sweep] key 'schemes': '%s' listed twice", origin, t);
    seen[s] = 1;
    sw->scheme[sw->nschemes++] = s;
  }
  if (sw->nschemes == 0 || strspn(value, " \t,") == strlen(value))
    return CFG_ERR("%s: [sweep] key 'schemes' lists no scheme", origin);
  /* an empty item ("sprint,,dense") is a typo, not a request */
  int items = 1;
  for (const char *p = value; *p; p++) items += *p == ',';
  if (items != sw->nschemes)
    return CFG_ERR("%s: [sweep] key 'schemes': value '%s' has an empty item", origin, value);
  return 0;
}

/* One "section.key" of an axis name into sec, key and its table index *k. */
static int parse_key_name(const char *name, size_t len, const char *whole, char *sec, char *key,
                          int *k, const char *origin) {
  const char *dot = memchr(name, '.', len);
  if (!dot || dot == name || dot + 1 == name + len)
    return CFG_ERR("%s: unknown [sweep] key '%s' (expected 'schemes', 'max_points' or an axis "
                   "'section.key' naming a configuration key)", origin, whole);
  if ((size_t)(dot - name) >= 48 || (size_t)(name + len - dot - 1) >= 48)
    return CFG_ERR("%s: [sweep] key '%s' names no configuration key", origin, whole);
  snprintf(sec, 48, "%.*s", (int)(dot - name), name);
  snprintf(key, 48, "%.*s", (int)(name + len - dot - 1), dot + 1);
  *k = spr_config_find(sec, key);
  if (*k < 0)
    return CFG_ERR("%s: [sweep] key '%s' names no configuration key%s%s%s (see 'sprintsim config')",
                   origin, whole, strcmp(whole, name) ? " ('" : "", strcmp(whole, name) ? sec : "",
                   strcmp(whole, name) ? "' ...)" : "");
  return 0;
}

static int parse_axis(spr_sweep *sw, const char *name, const char *value, const char *origin) {
  if (strlen(name) >= sizeof sw->ax[0].name)
    return CFG_ERR("%s: [sweep] key '%.60s...' is too long", origin, name);
  /* keys linked with '+' take the same value at every point */
  int nk = 0, keys[MAX_LINKED];
  char secs[MAX_LINKED][48], knames[MAX_LINKED][48];
  for (const char *p = name;;) {
    const char *plus = strchr(p, '+');
    const char *e = plus ? plus : p + strlen(p);
    while (p < e && isspace((unsigned char)*p)) p++;
    const char *q = e;
    while (q > p && isspace((unsigned char)q[-1])) q--;
    if (nk == MAX_LINKED)
      return CFG_ERR("%s: [sweep] axis '%s' links more than %d keys", origin, name, MAX_LINKED);
    int rc = parse_key_name(p, (size_t)(q - p), name, secs[nk], knames[nk], &keys[nk], origin);
    if (rc) return rc;
    for (int j = 0; j < nk; j++)
      if (keys[j] == keys[nk])
        return CFG_ERR("%s: [sweep] axis '%s' links key '%s.%s' twice", origin, name, secs[nk], knames[nk]);
    nk++;
    if (!plus) break;
    p = plus + 1;
  }
  for (int a = 0; a < sw->naxes; a++)
    for (int i = 0; i < sw->ax[a].nkeys; i++)
      for (int j = 0; j < nk; j++)
        if (sw->ax[a].keys[i] == keys[j])
          return CFG_ERR("%s: [sweep] key '%s.%s' on two axes ('%s' on line %d, '%s'); link keys "
                         "with '+' on one axis instead",
                         origin, secs[j], knames[j], sw->ax[a].name, sw->ax[a].line, name);
  if (sw->naxes >= SPR_SWEEP_MAX_AXES)
    return CFG_ERR("%s: [sweep] axis '%s': more than %d axes", origin, name, SPR_SWEEP_MAX_AXES);
  const char sep = strchr(value, '|') ? '|' : ',';
  int n = 1;
  for (const char *p = value; *p; p++) n += *p == sep;
  if (n > SPR_SWEEP_MAX_VALUES)
    return CFG_ERR("%s: [sweep] axis '%s': %d values, more than %d", origin, name, n,
                   SPR_SWEEP_MAX_VALUES);
  axis *a = &sw->ax[sw->naxes];
  memset(a, 0, sizeof *a);
  a->text = calloc((size_t)n, sizeof *a->text);
  a->canon = calloc((size_t)n, sizeof *a->canon);
  a->num = calloc((size_t)n, sizeof *a->num);
  if (!a->text || !a->canon || !a->num) {
    axis_free(a);
    return spr_error(SPR_ENOMEM, "%s: out of memory", origin);
  }
  a->n = n;
  a->key = keys[0];
  a->nkeys = nk;
  for (int j = 0; j < nk; j++) {
    a->keys[j] = keys[j];
    memcpy(a->section[j], secs[j], sizeof secs[j]);
    memcpy(a->kname[j], knames[j], sizeof knames[j]);
  }
  snprintf(a->name, sizeof a->name, "%s", name);
  const char *p = value;
  for (int v = 0; v < n; v++) {
    const char *e = strchr(p, sep);
    size_t l = e ? (size_t)(e - p) : strlen(p);
    char *t = malloc(l + 1);
    if (!t) {
      axis_free(a);
      return spr_error(SPR_ENOMEM, "%s: out of memory", origin);
    }
    memcpy(t, p, l);
    t[l] = '\0';
    char *tt = trim(t);
    memmove(t, tt, strlen(tt) + 1);
    a->text[v] = t;
    if (!*t) {
      int rc = n == 1 ? CFG_ERR("%s: [sweep] axis '%s' has no values", origin, name)
                      : CFG_ERR("%s: [sweep] axis '%s': value %d of %d is empty (in '%s')", origin,
                                name, v + 1, n, value);
      axis_free(a);
      return rc;
    }
    p = e ? e + 1 : p + l;
  }
  sw->naxes++;
  return 0;
}

static int on_sweep_key(void *user, const char *name, const char *value, int line,
                        const char *origin) {
  spr_sweep *sw = ((parse_user *)user)->sw;
  if (!strcmp(name, "schemes")) {
    if (sw->schemes_line) return CFG_ERR("%s: [sweep] key 'schemes' given twice", origin);
    sw->schemes_line = line;
    return parse_schemes(sw, value, origin);
  }
  if (!strcmp(name, "max_points")) {
    if (sw->max_points_line) return CFG_ERR("%s: [sweep] key 'max_points' given twice", origin);
    sw->max_points_line = line;
    char *end;
    errno = 0;
    long x = strtol(value, &end, 10);
    while (isspace((unsigned char)*end)) end++;
    if (!*value || *end || errno || x < 1 || x > SPR_SWEEP_LIMIT_POINTS)
      return CFG_ERR("%s: [sweep] key 'max_points': value '%s' is not an integer in [1, %d]", origin,
                     value, SPR_SWEEP_LIMIT_POINTS);
    sw->max_points = (int)x;
    return 0;
  }
  int rc = parse_axis(sw, name, value, origin);
  if (!rc) sw->ax[sw->naxes - 1].line = line;
  return rc;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *s = malloc(cap);
  while (s) {
    size_t r = fread(s + len, 1, cap - len - 1, f);
    len += r;
    if (len + 1 < cap) break;
    char *t = realloc(s, cap *= 2);
    if (!t) {
      free(s);
      s = NULL;
    } else {
      s = t;
    }
  }
  if (s) s[len] = '\0';
  fclose(f);
  return s;
}

/* Value index of point p on axis a. */
int spr__sweep_value_index(const spr_sweep *sw, int p, int a) {
  int stride = 1;
  for (int b = sw->naxes - 1; b > a; b--) stride *= sw->ax[b].n;
  return (p / stride) % sw->ax[a].n;
}

int spr_sweep_point_label(const spr_sweep *sw, int p, char *buf, size_t n) {
  size_t used = 0;
  int total = 0;
  if (n) buf[0] = '\0';
  if (sw->naxes == 0) return snprintf(buf, n, "the configuration");
  for (int a = 0; a < sw->naxes; a++) {
    int w = snprintf(used < n ? buf + used : NULL, used < n ? n - used : 0, "%s%s = %s",
                     a ? ", " : "", sw->ax[a].name, sw->ax[a].text[spr__sweep_value_index(sw, p, a)]);
    total += w;
    used += (size_t)w;
  }
  return total;
}

/* The device model of `path` if spr_sweep_check_memory read it, else NULL. */
static const spr_device *held_device(const spr_sweep *sw, const char *path) {
  for (int i = 0; i < sw->ndev; i++)
    if (!strcmp(sw->dev_path[i], path)) return &sw->dev[i];
  return NULL;
}

/* Point p's axes set on *c (errors name the point and the axis's line). */
static int set_axes(const spr_sweep *sw, int p, const char *label, spr_config *c) {
  char origin[1400];
  for (int a = 0; a < sw->naxes; a++) {
    const axis *x = &sw->ax[a];
    snprintf(origin, sizeof origin, "%s:%d: [sweep] point %d of %d (%s)", sw->path, x->line,
             p + 1, sw->npoints, label);
    for (int j = 0; j < x->nkeys; j++) {
      int rc = spr_config_set(c, x->section[j], x->kname[j], x->text[spr__sweep_value_index(sw, p, a)], origin);
      if (rc) return rc;
    }
  }
  return 0;
}

/* Read point p's device model (run.device_model, as spr__sweep_build_point
 * reads it: the file's value with p's axes set) into the sweep's store
 * unless it holds it or p has none.  Before any point runs. */
static int hold_device(spr_sweep *sw, int p, spr_config *c) {
  char label[1024];
  spr_sweep_point_label(sw, p, label, sizeof label);
  *c = *sw->base;
  int rc = set_axes(sw, p, label, c);
  if (rc || !c->device_model[0] || held_device(sw, c->device_model)) return rc;
  char **np = realloc(sw->dev_path, (size_t)(sw->ndev + 1) * sizeof *np);
  if (np) sw->dev_path = np;
  spr_device *nd = np ? realloc(sw->dev, (size_t)(sw->ndev + 1) * sizeof *nd) : NULL;
  if (nd) sw->dev = nd;
  char *path = nd ? strdup(c->device_model) : NULL;
  if (!path) return spr_error(SPR_ENOMEM, "%s: out of memory for device model %s", sw->path, c->device_model);
  spr_device_init(&sw->dev[sw->ndev]);
  if ((rc = spr_device_read(path, &sw->dev[sw->ndev]))) {
    spr_device_free(&sw->dev[sw->ndev]);
    free(path);
    return spr_error_prefix(rc, "%s: [sweep] point %d of %d (%s): run.device_model", sw->path, p + 1,
                            sw->npoints, label);
  }
  sw->dev_path[sw->ndev++] = path;
  return 0;
}

/* Build point p's configuration into *c; errors name the point. */
int spr__sweep_build_point(const spr_sweep *sw, int p, spr_config *c) {
  char label[1024], origin[1400];
  spr_sweep_point_label(sw, p, label, sizeof label);
  *c = *sw->base;
  /* the axes; with a device model (run.device_model, perhaps itself an
   * axis) apply it, then the axes again: an axis wins over the device
   * model, which wins over the rest of the file */
  for (int pass = 0; pass < 2; pass++) {
    int rc = set_axes(sw, p, label, c);
    if (rc) return rc;
    if (pass || !c->device_model[0]) break;
    /* held by spr_sweep_check_memory, or read here (a caller that did not
     * call it: every point reads the file) */
    const spr_device *held = held_device(sw, c->device_model);
    rc = held ? spr_device_apply(held, c, c->device_model, NULL, NULL)
              : spr_device_load_config(c, NULL, NULL, NULL);
    if (rc && held) rc = spr_error_prefix(rc, "run.device_model");
    if (rc) {
      return spr_error_prefix(rc, "%s: [sweep] point %d of %d (%s)", sw->path, p + 1, sw->npoints,
                       label);
    }
  }
  snprintf(origin, sizeof origin, "%s: [sweep] point %d of %d (%s)", sw->path, p + 1, sw->npoints,
           label);
  int rc = spr_qkv_resolve(c, origin); /* resolves; sizes from a Q/K/V file */
  if (rc) return rc;
  if (c->wl.source == SPR_SOURCE_MODEL) {
    /* the workload's sizes are the model's (as its run records them); a
     * missing or bad model is an error of the point before anything runs */
    spr_config *mc = malloc(sizeof *mc);
    if (!mc) return spr_error(SPR_ENOMEM, "%s: out of memory", origin);
    /* from the store once spr_sweep_check_memory has filled it: no file
     * read (no reader forked) while other points run */
    const spr_model *held = spr_model_store_get(sw->store, c->wl.model);
    if (held) {
      rc = spr_model_config(c, held, c->wl.model, mc);
    } else {
      spr_model m;
      rc = spr_model_load(c->wl.model, &m);
      if (!rc) {
        rc = spr_model_config(c, &m, c->wl.model, mc);
        spr_model_free(&m);
      }
    }
    if (!rc) *c = *mc;
    free(mc);
    if (rc) {
      return spr_error_prefix(rc, "%s", origin);
    }
  }
  /* every reported scheme must run; the others are switched off (they
   * would cost time and not be written) */
  for (int b = 0; b < N_BASELINES; b++) {
    int s = baseline_keys[b].scheme, listed = 0;
    for (int k = 0; k < sw->nschemes; k++) listed |= sw->scheme[k] == s;
    if (listed && !baseline_on(c, s))
      return CFG_ERR("%s: scheme '%s' is reported (sweep.schemes%s) but baselines.%s = false", origin,
                     spr_scheme_name(s), sw->schemes_line ? "" : " default: the baselines on in the file",
                     baseline_keys[b].key);
    if (!listed && (rc = spr_config_set(c, "baselines", baseline_keys[b].key, "false", origin)))
      return rc;
  }
  return 0;
}

/* Numeric value of key k in *c (SI), NaN when not numeric. */
static double key_number(const spr_config *c, int k) {
  const spr_config_key_info *info = spr_config_key(k);
  char buf[64];
  if (spr_config_format(c, k, buf, sizeof buf) >= (int)sizeof buf) return NAN;
  switch (info->type) {
  case SPR_KEY_INT:
  case SPR_KEY_U64:
  case SPR_KEY_DOUBLE: return strtod(buf, NULL);
  case SPR_KEY_BOOL: return !strcmp(buf, "true");
  case SPR_KEY_LIST: {
    char *end;
    double x = strtod(buf, &end);
    return end != buf && !*end ? x : NAN; /* one value: that value */
  }
  default: return NAN; /* enum (its text is the value), string */
  }
}

/* The file's text, then the overrides as comments (the record of what ran;
 * each point's configuration is stored whole). */
static char *source_text(const spr_config_src *src) {
  char *t = src->text ? strdup(src->text) : read_text(src->name);
  if (!t || src->n_set == 0) return t;
  size_t len = strlen(t), need = len + 128;
  for (int i = 0; i < src->n_set; i++) need += strlen(src->set[i]) + 32;
  char *u = realloc(t, need);
  if (!u) {
    free(t);
    return NULL;
  }
  size_t at = len;
  if (at && u[at - 1] != '\n') u[at++] = '\n';
  at += (size_t)snprintf(u + at, need - at, "; overrides applied over the text above:\n");
  for (int i = 0; i < src->n_set; i++)
    at += (size_t)snprintf(u + at, need - at, ";   %s %s\n", src->set_name ? src->set_name : "override",
                           src->set[i]);
  return u;
}

/* An override of a key that is also an axis would be lost at every point. */
static int override_on_axis(const spr_sweep *sw, const spr_config_src *src) {
  for (int i = 0; i < src->n_set; i++) {
    const char *t = src->set[i], *dot = strchr(t, '.'), *eq = strchr(t, '=');
    if (!dot || !eq || dot > eq) continue; /* refused by the parser already */
    char sec[64], key[128];
    snprintf(sec, sizeof sec, "%.*s", (int)(dot - t), t);
    snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
    int k = spr_config_find(trim(sec), trim(key));
    for (int a = 0; k >= 0 && a < sw->naxes; a++)
      for (int j = 0; j < sw->ax[a].nkeys; j++)
        if (sw->ax[a].keys[j] == k)
          return spr_error(SPR_EUSAGE, "%s %s: key '%s.%s' is an axis of %s's [sweep] grid "
                           "(line %d), which sets it at every point; override the axis instead: "
                           "%s 'sweep.%s=VALUES'", src->set_name ? src->set_name : "override", t,
                           sec, key, sw->path, sw->ax[a].line, src->set_name ? src->set_name : "override",
                           sw->ax[a].name);
  }
  return 0;
}

int spr_sweep_load(const char *path, spr_sweep **out) {
  const spr_config_src src = {path, NULL, NULL, 0, NULL};
  return spr_sweep_load_src(&src, out);
}

int spr_sweep_load_src(const spr_config_src *src, spr_sweep **out) {
  *out = NULL;
  const char *path = src->name ? src->name : "(null)";
  spr_sweep *sw = calloc(1, sizeof *sw);
  if (!sw || !(sw->base = malloc(sizeof *sw->base)) || !(sw->path = strdup(path))) {
    spr_sweep_free(sw);
    return spr_error(SPR_ENOMEM, "%s: out of memory", path);
  }
  sw->max_points = SPR_SWEEP_DEFAULT_MAX_POINTS;
  spr_config_default(sw->base);
  parse_user u = {sw};
  int rc = spr_config_parse_src(sw->base, src, "sweep", on_sweep_key, &u);
  if (!rc && !(sw->source = source_text(src)))
    rc = spr_error(SPR_EIO, "%s: cannot read: %s", path, strerror(errno));
  if (!rc) rc = override_on_axis(sw, src);
  if (rc) {
    spr_sweep_free(sw);
    return rc;
  }
  /* default: sprint, dense, the baselines on in the file (an override
   * "sweep.schemes=..." sets the list with schemes_line 0) */
  if (!sw->schemes_line && !sw->nschemes) {
    sw->scheme[sw->nschemes++] = SPR_SCHEME_SPRINT;
    sw->scheme[sw->nschemes++] = SPR_SCHEME_DENSE;
    for (int b = 0; b < N_BASELINES; b++)
      if (baseline_on(sw->base, baseline_keys[b].scheme))
        sw->scheme[sw->nschemes++] = baseline_keys[b].scheme;
  }
  /* the grid */
  long long np = 1;
  for (int a = 0; a < sw->naxes; a++) {
    np *= sw->ax[a].n;
    if (np > sw->max_points) {
      long long all = 1;
      for (int b = 0; b < sw->naxes; b++) {
        all *= sw->ax[b].n;
        if (all > 1000000000LL) break;
      }
      rc = CFG_ERR("%s: [sweep] %d axes make %s%lld points, more than max_points = %d (raise "
                   "max_points in [sweep], at most %d, or drop values)",
                   path, sw->naxes, all > 1000000000LL ? "over " : "", all > 1000000000LL ? 1000000000LL : all,
                   sw->max_points, SPR_SWEEP_LIMIT_POINTS);
      spr_sweep_free(sw);
      return rc;
    }
  }
  sw->npoints = (int)np;
  /* check every point before anything runs; record the axis values */
  spr_config *c = malloc(sizeof *c);
  sw->rows = calloc((size_t)sw->npoints * SPR_N_SCHEMES, sizeof *sw->rows);
  sw->done = calloc((size_t)sw->npoints, 1);
  sw->hash = calloc((size_t)sw->npoints, sizeof *sw->hash);
  if (!c || !sw->rows || !sw->done || !sw->hash) {
    free(c);
    spr_sweep_free(sw);
    return spr_error(SPR_ENOMEM, "%s: out of memory for %d points", path, (int)np);
  }
  for (int p = 0; p < sw->npoints && !rc; p++) {
    if ((rc = spr__sweep_build_point(sw, p, c))) break;
    const spr_evaluator *ev = spr_evaluator_for(c);
    if (p == 0) sw->ev = ev;
    else if (ev != sw->ev) {
      char label[1024];
      spr_sweep_point_label(sw, p, label, sizeof label);
      rc = CFG_ERR("%s: [sweep] point %d of %d (%s) needs the '%s' evaluator, point 1 the '%s' "
                   "evaluator: one sweep has one set of metrics", path, p + 1, sw->npoints, label,
                   ev->name, sw->ev->name);
      break;
    }
    /* the point's identity (a journal's records carry it) and its files */
    char *ini = spr_config_to_ini(c);
    if (!ini) {
      rc = spr_error(SPR_ENOMEM, "%s: out of memory", path);
      break;
    }
    sw->hash[p] = spr__fnv1a64(SPR__FNV_OFFSET, ini, strlen(ini));
    free(ini);
    if ((rc = note_inputs(sw, c))) break;
    for (int a = 0; a < sw->naxes; a++) {
      axis *x = &sw->ax[a];
      int v = spr__sweep_value_index(sw, p, a);
      if (x->canon[v]) continue;
      int need = spr_config_format(c, x->key, NULL, 0);
      if (!(x->canon[v] = malloc((size_t)need + 1))) {
        rc = spr_error(SPR_ENOMEM, "%s: out of memory", path);
        break;
      }
      spr_config_format(c, x->key, x->canon[v], (size_t)need + 1);
      x->num[v] = key_number(c, x->key);
    }
  }
  free(c);
  if (rc) {
    spr_sweep_free(sw);
    return rc;
  }
  *out = sw;
  return 0;
}

int spr_sweep_npoints(const spr_sweep *sw) { return sw->npoints; }
int spr_sweep_naxes(const spr_sweep *sw) { return sw->naxes; }
const char *spr_sweep_axis_key(const spr_sweep *sw, int a) {
  return a >= 0 && a < sw->naxes ? sw->ax[a].name : NULL;
}
int spr_sweep_axis_nvalues(const spr_sweep *sw, int a) {
  return a >= 0 && a < sw->naxes ? sw->ax[a].n : 0;
}
const char *spr_sweep_axis_text(const spr_sweep *sw, int a, int v) {
  return a >= 0 && a < sw->naxes && v >= 0 && v < sw->ax[a].n ? sw->ax[a].text[v] : NULL;
}
int spr_sweep_point_value(const spr_sweep *sw, int p, int a) {
  return p >= 0 && p < sw->npoints && a >= 0 && a < sw->naxes ? spr__sweep_value_index(sw, p, a) : -1;
}
int spr_sweep_nschemes(const spr_sweep *sw) { return sw->nschemes; }
int spr_sweep_scheme(const spr_sweep *sw, int k) {
  return k >= 0 && k < sw->nschemes ? sw->scheme[k] : -1;
}
const spr_evaluator *spr_sweep_evaluator(const spr_sweep *sw) { return sw->ev; }

int spr_sweep_point_config(const spr_sweep *sw, int p, spr_config *c) {
  if (p < 0 || p >= sw->npoints)
    return spr_error(SPR_EINVAL, "%s: sweep point %d outside [1, %d]", sw->path, p + 1, sw->npoints);
  return spr__sweep_build_point(sw, p, c);
}

int spr_sweep_eval_point(spr_sweep *sw, int p, volatile sig_atomic_t *cancel, spr_progress *prog) {
  spr_config *c = malloc(sizeof *c);
  if (!c) return spr_error(SPR_ENOMEM, "%s: out of memory for point %d", sw->path, p + 1);
  int rc = spr_sweep_point_config(sw, p, c);
  spr_eval_row rows[SPR_N_SCHEMES];
  if (!rc) rc = sw->ev->point(sw->ev, c, sw->store, cancel, prog, rows);
  free(c);
  if (rc == SPR_ECANCELED) return rc;
  char label[1024];
  spr_sweep_point_label(sw, p, label, sizeof label);
  if (rc) {
    /* keep the evaluator's message, prefixed with the point */
    return spr_error_prefix(rc, "%s: point %d of %d (%s)", sw->path, p + 1, sw->npoints, label);
  }
  for (int k = 0; k < sw->nschemes; k++)
    if (!rows[sw->scheme[k]].ran)
      return spr_error(SPR_EINTERNAL, "%s: point %d of %d (%s): scheme '%s' did not run", sw->path,
                       p + 1, sw->npoints, label, spr_scheme_name(sw->scheme[k]));
  if (!rows[SPR_SCHEME_DENSE].ran)
    return spr_error(SPR_EINTERNAL, "%s: point %d (%s): dense did not run", sw->path, p + 1, label);
  memcpy(&sw->rows[(size_t)p * SPR_N_SCHEMES], rows, sizeof rows);
  sw->done[p] = 1;
  return 0;
}

/* --- a point's rows as bytes -------------------------------------------- */

static unsigned char *put_u64(unsigned char *b, uint64_t v) {
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
  return b + 8;
}

static const unsigned char *get_u64(const unsigned char *b, uint64_t *v) {
  *v = 0;
  for (int i = 0; i < 8; i++) *v |= (uint64_t)b[i] << (8 * i);
  return b + 8;
}

static unsigned char *put_f64(unsigned char *b, double x) {
  uint64_t v;
  memcpy(&v, &x, sizeof v);
  return put_u64(b, v);
}

static const unsigned char *get_f64(const unsigned char *b, double *x) {
  uint64_t v;
  b = get_u64(b, &v);
  memcpy(x, &v, sizeof v);
  return b;
}

int spr_sweep_point_pack(const spr_sweep *sw, int p, unsigned char *buf) {
  if (p < 0 || p >= sw->npoints || !sw->done[p])
    return spr_error(SPR_EINVAL, "%s: point %d of %d is not evaluated (nothing to pack)", sw->path,
                     p + 1, sw->npoints);
  unsigned char *b = buf;
  for (int s = 0; s < SPR_N_SCHEMES; s++) {
    const spr_eval_row *r = &sw->rows[(size_t)p * SPR_N_SCHEMES + s];
    b[0] = (unsigned char)(r->ran != 0);
    b[1] = b[2] = b[3] = 0;
    b += 4;
    for (int m = 0; m < SPR_EVAL_MAX_ACC; m++) b = put_f64(b, r->acc[m]);
    b = put_f64(b, r->energy_J);
    b = put_f64(b, r->cycles);
    b = put_f64(b, r->keep_rate);
    b = put_u64(b, (uint64_t)r->bytes_fetched);
  }
  return 0;
}

int spr_sweep_point_unpack(spr_sweep *sw, int p, const unsigned char *buf, size_t n) {
  if (p < 0 || p >= sw->npoints)
    return spr_error(SPR_EINVAL, "%s: point %d outside [1, %d]", sw->path, p + 1, sw->npoints);
  if (n != SPR_SWEEP_POINT_BYTES)
    return spr_error(SPR_EINVAL, "%s: point %d of %d: %zu bytes of rows, expected %d", sw->path,
                     p + 1, sw->npoints, n, SPR_SWEEP_POINT_BYTES);
  spr_eval_row rows[SPR_N_SCHEMES];
  memset(rows, 0, sizeof rows); /* padding too: rows compare with memcmp */
  const unsigned char *b = buf;
  for (int s = 0; s < SPR_N_SCHEMES; s++) {
    spr_eval_row *r = &rows[s];
    if (b[0] > 1 || b[1] || b[2] || b[3])
      return spr_error(SPR_EINVAL, "%s: point %d of %d: scheme '%s': bad 'ran' flag", sw->path,
                       p + 1, sw->npoints, spr_scheme_name(s));
    r->ran = b[0];
    b += 4;
    for (int m = 0; m < SPR_EVAL_MAX_ACC; m++) b = get_f64(b, &r->acc[m]);
    b = get_f64(b, &r->energy_J);
    b = get_f64(b, &r->cycles);
    b = get_f64(b, &r->keep_rate);
    uint64_t by;
    b = get_u64(b, &by);
    r->bytes_fetched = (int64_t)by;
  }
  for (int k = 0; k < sw->nschemes; k++)
    if (!rows[sw->scheme[k]].ran)
      return spr_error(SPR_EINVAL, "%s: point %d of %d: scheme '%s' is reported but did not run",
                       sw->path, p + 1, sw->npoints, spr_scheme_name(sw->scheme[k]));
  if (!rows[SPR_SCHEME_DENSE].ran)
    return spr_error(SPR_EINVAL, "%s: point %d of %d: dense did not run", sw->path, p + 1,
                     sw->npoints);
  memcpy(&sw->rows[(size_t)p * SPR_N_SCHEMES], rows, sizeof rows);
  sw->done[p] = 1;
  return 0;
}

int spr_sweep_point_done(const spr_sweep *sw, int p) {
  return p >= 0 && p < sw->npoints && sw->done[p];
}

uint64_t spr_sweep_point_hash(const spr_sweep *sw, int p) {
  return p >= 0 && p < sw->npoints ? sw->hash[p] : 0;
}

int spr_sweep_input_id(const char *path, long long *size, uint64_t *hash) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return spr_error(SPR_EIO, "%s: cannot read: %s", path, strerror(errno));
  enum { CHUNK = 1 << 20 };
  unsigned char *buf = malloc(CHUNK);
  if (!buf) {
    close(fd);
    return spr_error(SPR_ENOMEM, "%s: out of memory", path);
  }
  uint64_t h = SPR__FNV_OFFSET;
  long long n = 0;
  int rc = 0;
  for (;;) {
    ssize_t r = read(fd, buf, CHUNK);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rc = spr_error(SPR_EIO, "%s: cannot read: %s", path, strerror(errno));
      break;
    }
    if (r == 0) break;
    h = spr__fnv1a64(h, buf, (size_t)r);
    n += r;
  }
  free(buf);
  close(fd);
  *size = n;
  *hash = h;
  return rc;
}

const char *spr_sweep_source(const spr_sweep *sw) { return sw->source; }
const char *spr_sweep_path(const spr_sweep *sw) { return sw->path; }

int spr_sweep_ninputs(const spr_sweep *sw) { return sw->ninputs; }
const char *spr_sweep_input_key(const spr_sweep *sw, int i) {
  return i >= 0 && i < sw->ninputs ? sw->input_key[i] : NULL;
}
const char *spr_sweep_input_path(const spr_sweep *sw, int i) {
  return i >= 0 && i < sw->ninputs ? sw->input_path[i] : NULL;
}

const spr_eval_row *spr_sweep_row(const spr_sweep *sw, int p, int s) {
  if (p < 0 || p >= sw->npoints || s < 0 || s >= SPR_N_SCHEMES || !sw->done[p]) return NULL;
  return &sw->rows[(size_t)p * SPR_N_SCHEMES + s];
}

/* --- memory of the points run at once ------------------------------------ */

static int cmp_desc(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

int spr_sweep_check_memory(spr_sweep *sw, int concurrent, double limit_bytes) {
  const int P = sw->npoints;
  if (concurrent < 1) concurrent = 1;
  if (concurrent > P) concurrent = P;
  char src[512] = "given limit";
  /* unknown: no check, as spr_run_alloc (a model sweep's store is still
   * filled) */
  const int known = !(limit_bytes <= 0 && spr_sysmem_limit(NULL, NULL, &limit_bytes, src, sizeof src));
  const int model = strcmp(sw->ev->name, "attention") != 0;
  double *need = malloc((size_t)P * sizeof *need);
  spr_config *c = malloc(sizeof *c);
  int rc = 0, big = 0;
  if (!need || !c) rc = spr_error(SPR_ENOMEM, "%s: out of memory for %d points", sw->path, P);
  if (!rc && model && !sw->store) rc = spr_model_store_new(&sw->store);
  for (int p = 0; p < P && !rc; p++) {
    if ((rc = hold_device(sw, p, c)) || (rc = spr__sweep_build_point(sw, p, c))) break;
    if (!model) {
      need[p] = spr_run_mem_bytes(c, 1);
    } else if ((rc = spr_model_store_add(sw->store, c)) ||
               (rc = spr_model_store_need_bytes(sw->store, c, &need[p]))) {
      char label[1024];
      spr_sweep_point_label(sw, p, label, sizeof label);
      rc = spr_error_prefix(rc, "%s: point %d of %d (%s)", sw->path, p + 1, P, label);
      break;
    }
    if (need[p] > need[big]) big = p;
  }
  if (!rc && !known) {
    free(c);
    free(need);
    return 0;
  }
  free(c);
  if (rc) {
    free(need);
    return rc;
  }
  const double largest = need[big];
  qsort(need, (size_t)P, sizeof *need, cmp_desc);
  double sum = 0;
  int fit = 0; /* points at once that fit */
  for (int k = 0; k < P && k < concurrent; k++) {
    sum += need[k];
    if (sum <= 0.8 * limit_bytes) fit = k + 1;
  }
  free(need);
  if (sum <= 0.8 * limit_bytes) return 0;
  char label[1024];
  spr_sweep_point_label(sw, big, label, sizeof label);
  if (fit == 0)
    return spr_error(SPR_ENOMEM,
                     "%s: point %d of %d (%s) needs about %s of memory, more than 80%% of "
                     "the %s this process may use (%s); %s", sw->path, big + 1, P, label,
                     spr_mem_str(largest).s, spr_mem_str(limit_bytes).s, src,
                     model ? "a smaller model" : "lower workload.seq_len or workload.heads");
  return spr_error(SPR_ENOMEM,
                   "%s: %d points at once need about %s of memory together (the largest, "
                   "point %d (%s), %s), more than 80%% of the %s this process may use "
                   "(%s); at most %d at once fit: --threads %d",
                   sw->path, concurrent, spr_mem_str(sum).s, big + 1, label, spr_mem_str(largest).s,
                   spr_mem_str(limit_bytes).s, src, fit, fit);
}

const spr_config *spr_sweep_base(const spr_sweep *sw) { return sw->base; }
int spr_sweep_max_points(const spr_sweep *sw) { return sw->max_points; }
