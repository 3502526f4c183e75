/* spr_sweep.c - grid sweeps: the [sweep] section, the grid, the outputs
 * (spr_sweep.h; file formats in docs/sweep.md). */
#include "config.h"
#include "spr_sweep.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_h5quiet.h"
#include "spr_device.h"
#include "spr_pipeline.h"
#include "spr_qkv.h"
#include "spr_model.h"
#include "spr_model_eval.h"
#include "spr_sysmem.h"

#include <ctype.h>
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
#define CFG_ERR(...) spr_error(SPR_ECONFIG, __VA_ARGS__)

#define MAX_LINKED 4 /* keys one axis may set together ("a.b + c.d") */

typedef struct {
  int key;       /* index in the configuration table of the first key */
  char name[200]; /* "section.key", or "section.key + section.key" */
  int nkeys;     /* keys set to each value: 1, or more when linked */
  int keys[MAX_LINKED];
  char section[MAX_LINKED][48], kname[MAX_LINKED][48];
  int line;      /* line in the file */
  int n;         /* values */
  char **text;   /* as written */
  char **canon;  /* spr_config_format of the value once set */
  double *num;   /* numeric value (SI), NaN when the key is not numeric */
} axis;

struct spr_sweep {
  char *path;
  char *source;        /* the file's text */
  spr_config *base;    /* parsed, not resolved */
  int naxes;
  axis ax[SPR_SWEEP_MAX_AXES];
  int npoints;
  int max_points, max_points_line;
  int schemes_line;    /* 0: schemes not given */
  int nschemes;
  int scheme[SPR_N_SCHEMES];
  const spr_evaluator *ev;
  spr_eval_row *rows;  /* npoints x SPR_N_SCHEMES */
  unsigned char *done; /* npoints */
};

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
  free(sw);
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
static int value_index(const spr_sweep *sw, int p, int a) {
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
                     a ? ", " : "", sw->ax[a].name, sw->ax[a].text[value_index(sw, p, a)]);
    total += w;
    used += (size_t)w;
  }
  return total;
}

/* Build point p's configuration into *c; errors name the point. */
static int build_point(const spr_sweep *sw, int p, spr_config *c) {
  char label[1024], origin[1400];
  spr_sweep_point_label(sw, p, label, sizeof label);
  *c = *sw->base;
  /* the axes; with a device model (run.device_model, perhaps itself an
   * axis) apply it, then the axes again: an axis wins over the device
   * model, which wins over the rest of the file */
  for (int pass = 0; pass < 2; pass++) {
    for (int a = 0; a < sw->naxes; a++) {
      const axis *x = &sw->ax[a];
      snprintf(origin, sizeof origin, "%s:%d: [sweep] point %d of %d (%s)", sw->path, x->line,
               p + 1, sw->npoints, label);
      for (int j = 0; j < x->nkeys; j++) {
        int rc = spr_config_set(c, x->section[j], x->kname[j], x->text[value_index(sw, p, a)], origin);
        if (rc) return rc;
      }
    }
    if (pass || !c->device_model[0]) break;
    int rc = spr_device_load_config(c, NULL, NULL, NULL);
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
    spr_model m;
    spr_config *mc = malloc(sizeof *mc);
    if (!mc) return spr_error(SPR_ENOMEM, "%s: out of memory", origin);
    rc = spr_model_load(c->wl.model, &m);
    if (!rc) {
      rc = spr_model_config(c, &m, c->wl.model, mc);
      spr_model_free(&m);
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
  if (!c || !sw->rows || !sw->done) {
    free(c);
    spr_sweep_free(sw);
    return spr_error(SPR_ENOMEM, "%s: out of memory for %d points", path, (int)np);
  }
  for (int p = 0; p < sw->npoints && !rc; p++) {
    if ((rc = build_point(sw, p, c))) break;
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
    for (int a = 0; a < sw->naxes; a++) {
      axis *x = &sw->ax[a];
      int v = value_index(sw, p, a);
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
  return p >= 0 && p < sw->npoints && a >= 0 && a < sw->naxes ? value_index(sw, p, a) : -1;
}
int spr_sweep_nschemes(const spr_sweep *sw) { return sw->nschemes; }
int spr_sweep_scheme(const spr_sweep *sw, int k) {
  return k >= 0 && k < sw->nschemes ? sw->scheme[k] : -1;
}
const spr_evaluator *spr_sweep_evaluator(const spr_sweep *sw) { return sw->ev; }

int spr_sweep_point_config(const spr_sweep *sw, int p, spr_config *c) {
  if (p < 0 || p >= sw->npoints)
    return spr_error(SPR_EINVAL, "%s: sweep point %d outside [1, %d]", sw->path, p + 1, sw->npoints);
  return build_point(sw, p, c);
}

int spr_sweep_eval_point(spr_sweep *sw, int p, volatile sig_atomic_t *cancel) {
  spr_config *c = malloc(sizeof *c);
  if (!c) return spr_error(SPR_ENOMEM, "%s: out of memory for point %d", sw->path, p + 1);
  int rc = spr_sweep_point_config(sw, p, c);
  spr_eval_row rows[SPR_N_SCHEMES];
  if (!rc) rc = sw->ev->point(sw->ev, c, cancel, rows);
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

const spr_eval_row *spr_sweep_row(const spr_sweep *sw, int p, int s) {
  if (p < 0 || p >= sw->npoints || s < 0 || s >= SPR_N_SCHEMES || !sw->done[p]) return NULL;
  return &sw->rows[(size_t)p * SPR_N_SCHEMES + s];
}

/* --- outputs -------------------------------------------------------------- */

struct spr_sweep_out {
  char *path[2]; /* final: HDF5, CSV */
  char *tmp[2];  /* "<path>.tmp.XXXXXX", created */
};

char *spr_sweep_csv_path(const char *h5path) {
  size_t l = strlen(h5path);
  if (l > 3 && !strcmp(h5path + l - 3, ".h5")) l -= 3;
  char *s = malloc(l + 5);
  if (s) {
    memcpy(s, h5path, l);
    memcpy(s + l, ".csv", 5);
  }
  return s;
}

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
    size_t l = strlen(paths[i]);
    char *t = malloc(l + 12);
    if (!(o->path[i] = strdup(paths[i])) || !t) {
      free(t);
      spr_sweep_out_abort(o);
      return spr_error(SPR_ENOMEM, "%s: out of memory", paths[i]);
    }
    memcpy(t, paths[i], l);
    memcpy(t + l, ".tmp.XXXXXX", 12);
    int fd = mkstemp(t);
    if (fd < 0) {
      int e = errno;
      free(t);
      spr_sweep_out_abort(o);
      return spr_error(SPR_EIO, "%s: cannot create output: %s", paths[i], strerror(e));
    }
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask); /* mkstemp makes 0600; outputs are ordinary files */
    close(fd);
    o->tmp[i] = t;
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

/* A CSV field: quoted when it holds a comma, quote or line break. */
static void csv_field(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\n\r")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static int write_csv(const spr_sweep *sw, const char *tmp, const char *path) {
  FILE *f = fopen(tmp, "w");
  if (!f) return spr_error(SPR_EIO, "%s: cannot write: %s", tmp, strerror(errno));
  const spr_evaluator *ev = sw->ev;
  fputs("point", f);
  for (int a = 0; a < sw->naxes; a++) {
    fputc(',', f);
    csv_field(f, sw->ax[a].name);
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
        csv_field(f, sw->ax[a].canon[value_index(sw, p, a)]);
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
  if (fclose(f) || bad) return spr_error(SPR_EIO, "%s: write failed (for %s)", tmp, path);
  return 0;
}

/* HDF5 writing: every failure becomes SPR_EHDF5 naming the file and object. */
typedef struct {
  hid_t file;
  const char *name; /* temporary file, for messages */
} h5w;

static int h5err(const h5w *w, const char *obj) {
  return spr_error(SPR_EHDF5, "%s: cannot write '%s'", w->name, obj);
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
  H5Gclose(root);
  /* /config */
  hid_t g;
  if (!rc && (g = group(w, "/config")) < 0) rc = SPR_EHDF5;
  else if (!rc) H5Gclose(g);
  if (!rc) rc = dataset_str(w, "/config/source", sw->source, "the sweep file as given (its [sweep] section included)");
  if (!rc) rc = dataset_str(w, "/config/path", sw->path, "path of the sweep file");
  /* /axes */
  if (!rc && (g = group(w, "/axes")) < 0) rc = SPR_EHDF5;
  else if (!rc) H5Gclose(g);
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
    H5Gclose(g);
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
    for (int a = 0; a < A; a++) idx[p * A + a] = value_index(sw, p, a);
    int need = spr_sweep_point_label(sw, p, NULL, 0);
    if (!(label[p] = malloc((size_t)need + 1))) rc = spr_error(SPR_ENOMEM, "%s: out of memory", w->name);
    else spr_sweep_point_label(sw, p, label[p], (size_t)need + 1);
    if (!rc) rc = build_point(sw, p, c);
    if (!rc && !(ini[p] = spr_config_to_ini(c))) rc = spr_error(SPR_ENOMEM, "%s: out of memory", w->name);
  }
  free(c);
  if (!rc && (g = group(w, "/points")) < 0) rc = SPR_EHDF5;
  else if (!rc) H5Gclose(g);
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
  else if (!rc) H5Gclose(g);
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
      if (d >= 0) H5Dclose(d);
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
    if (a >= 0) H5Aclose(a);
  }
  return rc;
}

static int write_h5(const spr_sweep *sw, const char *tmp, const char *version) {
  spr__h5_quiet q;
  spr__h5_quiet_on(&q);
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  h5w w = {-1, tmp};
  int rc = 0;
  if (fcpl < 0 || H5Pset_obj_track_times(fcpl, 0) < 0 ||
      (w.file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT)) < 0)
    rc = spr_error(SPR_EHDF5, "%s: cannot create HDF5 file", tmp);
  if (fcpl >= 0) H5Pclose(fcpl);
  if (!rc) rc = write_h5_body(sw, &w, version);
  if (w.file >= 0 && H5Fclose(w.file) < 0 && !rc) rc = spr_error(SPR_EHDF5, "%s: cannot close", tmp);
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
  for (int i = 1; i >= 0 && !rc; i--) {
    if (rename(o->tmp[i], o->path[i]) != 0) {
      rc = spr_error(SPR_EIO, "%s: cannot rename to %s: %s", o->tmp[i], o->path[i], strerror(errno));
    } else {
      free(o->tmp[i]);
      o->tmp[i] = NULL;
    }
  }
  spr_sweep_out_abort(o); /* deletes what is left of the temporaries */
  return rc;
}

/* --- memory of the points run at once ------------------------------------ */

static int cmp_desc(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

int spr_sweep_check_memory(const spr_sweep *sw, int concurrent, double limit_bytes) {
  const int P = sw->npoints;
  if (concurrent < 1) concurrent = 1;
  if (concurrent > P) concurrent = P;
  char src[512] = "given limit";
  if (limit_bytes <= 0 && spr_sysmem_limit(NULL, NULL, &limit_bytes, src, sizeof src))
    return 0; /* unknown: no check, as spr_run_alloc */
  /* attention points only: the evaluators of models estimate no memory */
  if (strcmp(sw->ev->name, "attention") != 0) return 0;
  double *need = malloc((size_t)P * sizeof *need);
  spr_config *c = malloc(sizeof *c);
  int rc = 0, big = 0;
  if (!need || !c) rc = spr_error(SPR_ENOMEM, "%s: out of memory for %d points", sw->path, P);
  for (int p = 0; p < P && !rc; p++) {
    if (!(rc = build_point(sw, p, c))) need[p] = spr_run_mem_bytes(c, 1);
    if (!rc && need[p] > need[big]) big = p;
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
                     "%s: point %d of %d (%s) needs about %.1f GiB of memory, more than 80%% of "
                     "the %.1f GiB this process may use (%s); lower workload.seq_len or "
                     "workload.heads", sw->path, big + 1, P, label, largest / 1073741824.0,
                     limit_bytes / 1073741824.0, src);
  return spr_error(SPR_ENOMEM,
                   "%s: %d points at once need about %.1f GiB of memory together (the largest, "
                   "point %d (%s), %.1f GiB), more than 80%% of the %.1f GiB this process may use "
                   "(%s); at most %d at once fit: --threads %d",
                   sw->path, concurrent, sum / 1073741824.0, big + 1, label, largest / 1073741824.0,
                   limit_bytes / 1073741824.0, src, fit, fit);
}

const spr_config *spr_sweep_base(const spr_sweep *sw) { return sw->base; }
int spr_sweep_max_points(const spr_sweep *sw) { return sw->max_points; }
