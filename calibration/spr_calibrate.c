/* spr_calibrate.c - the calibration flow (spr_calibrate.h; models and
 * equations in docs/calibration.md). */
#include "config.h"
#include "spr_calibrate.h"
#include "spr_cal_workload.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_fit.h"
#include "spr_nodal.h"
#include "spr_rng.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KB 1.380649e-23 /* J/K, exact (SI 2019) */

/* The random arrays of the flow come from the SPICE Monte-Carlo stream
 * keyed (seed, -1, head = what, trial = array): the comparator's VTO draws
 * use head -1 (spr_circ_cmp_mismatch), so no two uses share a stream. */
enum { RNG_IR = 1, RNG_NOISE = 2, RNG_ENERGY = 3 };

static const char *const step_names[SPR_CAL_N_STEPS] = {
    "cell I-V", "IR drop", "column noise", "comparator Monte Carlo", "comparator noise",
    "comparator transients", "read energy"};

const char *spr_cal_step_name(int k) {
  return k >= 0 && k < SPR_CAL_N_STEPS ? step_names[k] : "(no such step)";
}

void spr_cal_params_default(spr_cal_params *p) {
  memset(p, 0, sizeof *p);
  spr_circ_sinh_default(&p->cell);
  p->iv_levels = 4;
  p->iv_points = 41;
  p->iv_vmax_V = 0.5;
  p->ir_arrays = 16;
  p->ir_spice_arrays = 2;
  p->ir_inputs = 4;
  p->ir_rows = p->ir_cols = 0;
  p->ir_spice_tol = 1e-6;
  p->noise_arrays = 8;
  p->noise_cols = 8;
  p->noise_f_lo_Hz = 1e3;
  p->noise_ppd = 10;
  spr_circ_cmp_default(&p->cmp);
  p->cmp_samples = 1000;
  p->cmp_noise_samples = 32;
  p->cmp_i_ref_A = 10e-6;
  p->cmp_span_A = 2.5e-6;
  p->n_overdrives = 4;
  p->overdrive_A[0] = 0.5e-6;
  p->overdrive_A[1] = 1e-6;
  p->overdrive_A[2] = 2e-6;
  p->overdrive_A[3] = 4e-6;
  p->cmp_window_s = 0;
  p->cmp_t_step_s = 5e-12;
  p->n_sizes = 4;
  p->energy_size[0] = 8;
  p->energy_size[1] = 16;
  p->energy_size[2] = 24;
  p->energy_size[3] = 32;
  p->read_width_s = 0;
  p->read_edge_s = 0.1e-9;
  p->c_wl_F = p->c_bl_F = 0;
  p->timeout_s = 120;
  p->levels = SPR_CAL_LEVELS_UNIFORM;
}

#define BAD(...) spr_error(SPR_EINVAL, __VA_ARGS__)

static double window_of(const spr_cal_params *p, const spr_config *c, double given) {
  return given > 0 ? given : c->energy.threshold_cycles / c->energy.clock_Hz;
}

int spr_cal_params_check(const spr_cal_params *p, const spr_config *c) {
  static const char w[] = "[calibrate]";
  if (!(p->cell.i0_A > 0) || !(p->cell.g0_m > 0) || !(p->cell.v0_V > 0) || !isfinite(p->cell.i0_A) ||
      !isfinite(p->cell.g0_m) || !isfinite(p->cell.v0_V))
    return BAD("%s: cell_i0 = %g A, cell_g0 = %g m, cell_v0 = %g V must be finite and > 0", w,
               p->cell.i0_A, p->cell.g0_m, p->cell.v0_V);
  if (p->iv_levels < 1 || p->iv_levels > 64) return BAD("%s: iv_levels = %d not in [1, 64]", w, p->iv_levels);
  if (p->iv_points < 5 || p->iv_points > 10000)
    return BAD("%s: iv_points = %d not in [5, 10000]", w, p->iv_points);
  if (!(p->iv_vmax_V > 0) || p->iv_vmax_V > 10) return BAD("%s: iv_vmax = %g V not in (0, 10]", w, p->iv_vmax_V);
  const int R = p->ir_rows ? p->ir_rows : c->xbar.rows, C = p->ir_cols ? p->ir_cols : c->xbar.cols;
  if (p->ir_rows < 0 || p->ir_cols < 0 || R > 256 || C > 256 || R < 2 || C < 2)
    return BAD("%s: IR arrays of %d x %d cells (ir_rows, ir_cols: 2..256, 0 = crossbar's; the "
               "word- and bit-line scales need two rows and two columns)", w, R, C);
  if (p->ir_arrays < 1 || p->ir_arrays > 10000) return BAD("%s: ir_arrays = %d not in [1, 10000]", w, p->ir_arrays);
  if (p->ir_spice_arrays < 0 || p->ir_spice_arrays > p->ir_arrays)
    return BAD("%s: ir_spice_arrays = %d not in [0, ir_arrays = %d]", w, p->ir_spice_arrays, p->ir_arrays);
  if (p->ir_inputs < 1 || p->ir_inputs > 1000) return BAD("%s: ir_inputs = %d not in [1, 1000]", w, p->ir_inputs);
  if (!(p->ir_spice_tol > 0) || p->ir_spice_tol > 1) return BAD("%s: ir_spice_tol = %g not in (0, 1]", w, p->ir_spice_tol);
  if (p->noise_arrays < 1 || p->noise_arrays > 1000)
    return BAD("%s: noise_arrays = %d not in [1, 1000]", w, p->noise_arrays);
  if (p->noise_cols < 1 || p->noise_cols > 256) return BAD("%s: noise_cols = %d not in [1, 256]", w, p->noise_cols);
  if (p->noise_arrays * p->noise_cols < 2)
    return BAD("%s: noise_arrays x noise_cols = %d columns; the fit needs at least 2", w,
               p->noise_arrays * p->noise_cols);
  if (!(c->an.bandwidth_Hz > 0)) return BAD("%s: analog.bandwidth = 0 Hz leaves no noise band", w);
  if (!(c->an.temperature_K > 0)) return BAD("%s: analog.temperature = 0 K: no thermal noise to measure", w);
  if (!(p->noise_f_lo_Hz > 0) || !(p->noise_f_lo_Hz < c->an.bandwidth_Hz))
    return BAD("%s: noise_f_lo = %g Hz must be > 0 and below analog.bandwidth = %g Hz", w,
               p->noise_f_lo_Hz, c->an.bandwidth_Hz);
  if (p->noise_ppd < 1 || p->noise_ppd > 1000) return BAD("%s: noise_ppd = %d not in [1, 1000]", w, p->noise_ppd);
  if (p->cmp_samples < 3 || p->cmp_samples > 100000)
    return BAD("%s: cmp_samples = %d not in [3, 100000]", w, p->cmp_samples);
  if (p->cmp_noise_samples < 3 || p->cmp_noise_samples > p->cmp_samples)
    return BAD("%s: cmp_noise_samples = %d not in [3, cmp_samples = %d]", w, p->cmp_noise_samples,
               p->cmp_samples);
  if (!(p->cmp_i_ref_A > 0) || !isfinite(p->cmp_i_ref_A)) return BAD("%s: cmp_i_ref = %g A must be > 0", w, p->cmp_i_ref_A);
  if (!(p->cmp_span_A >= 1e-6 * p->cmp_i_ref_A) || p->cmp_span_A > p->cmp_i_ref_A)
    return BAD("%s: cmp_span = %g A not in [1e-6 cmp_i_ref, cmp_i_ref = %g A] (a narrower sweep "
               "is below the resolution of the DC sweep)", w, p->cmp_span_A, p->cmp_i_ref_A);
  if (p->n_overdrives < 3 || p->n_overdrives > SPR_CAL_MAX_LIST)
    return BAD("%s: %d overdrives (3..%d)", w, p->n_overdrives, SPR_CAL_MAX_LIST);
  for (int k = 0; k < p->n_overdrives; k++) {
    if (!(p->overdrive_A[k] > 0) || !(p->overdrive_A[k] < p->cmp_i_ref_A / 2))
      return BAD("%s: cmp_overdrives value %d = %g A not in (0, cmp_i_ref / 2 = %g A)", w, k + 1,
                 p->overdrive_A[k], p->cmp_i_ref_A / 2);
    for (int j = 0; j < k; j++)
      if (p->overdrive_A[j] == p->overdrive_A[k])
        return BAD("%s: cmp_overdrives lists %g A twice (the delay fit needs distinct overdrives)", w,
                   p->overdrive_A[k]);
  }
  if (p->cmp_window_s < 0 || p->read_width_s < 0)
    return BAD("%s: cmp_window = %g s, read_width = %g s must be >= 0", w, p->cmp_window_s, p->read_width_s);
  const double win = window_of(p, c, p->cmp_window_s);
  if (!(p->cmp_t_step_s > 0) || !(p->cmp_t_step_s * 10 <= win))
    return BAD("%s: cmp_t_step = %g s must be > 0 and at most a tenth of the decision window %g s", w,
               p->cmp_t_step_s, win);
  if (win > 1e-6) return BAD("%s: decision window %g s is longer than 1 us", w, win);
  if (p->n_sizes < 3 || p->n_sizes > SPR_CAL_MAX_LIST)
    return BAD("%s: %d energy_sizes (3..%d: the fit has 2 parameters)", w, p->n_sizes, SPR_CAL_MAX_LIST);
  for (int k = 0; k < p->n_sizes; k++) {
    if (p->energy_size[k] < 2 || p->energy_size[k] > 128 || p->energy_size[k] % 2)
      return BAD("%s: energy_sizes value %d = %d is not an even number in [2, 128] (columns come "
                 "in differential pairs)", w, k + 1, p->energy_size[k]);
    for (int j = 0; j < k; j++)
      if (p->energy_size[j] == p->energy_size[k])
        return BAD("%s: energy_sizes lists %d twice", w, p->energy_size[k]);
  }
  const double rw = window_of(p, c, p->read_width_s);
  if (!(p->read_edge_s > 0) || !(p->read_edge_s <= rw) || rw > 1e-6)
    return BAD("%s: read_edge = %g s must be > 0 and at most the read width %g s (<= 1 us)", w,
               p->read_edge_s, rw);
  if (!(p->c_wl_F >= 0) || !(p->c_bl_F >= 0) || p->c_wl_F > 1e-9 || p->c_bl_F > 1e-9)
    return BAD("%s: c_wl = %g F, c_bl = %g F not in [0, 1 nF]", w, p->c_wl_F, p->c_bl_F);
  if (!(p->timeout_s > 0) || p->timeout_s > 86400) return BAD("%s: timeout = %g s not in (0, 86400]", w, p->timeout_s);
  return 0;
}

/* --- the [calibrate] keys ------------------------------------------------------- */

/* Keys of the [calibrate] section: name, kind, unit, field, inclusive
 * range (lo_open: the lower bound is excluded), doc in docs/calibration.md. */
enum { CK_DBL, CK_INT, CK_DBL_LIST, CK_INT_LIST, CK_ENUM };
typedef struct {
  const char *name;
  int kind;
  const char *unit;
  size_t off, count_off; /* lists: field of the count */
  double lo, hi;
  int lo_open;
  const char *choices;   /* CK_ENUM: "a|b", stored as the index (int) */
} cal_key;

#define CO(f) offsetof(spr_cal_params, f)
static const cal_key cal_keys[] = {
    {"cell_i0", CK_DBL, "A", CO(cell.i0_A), 0, 0, 1, 1, NULL},
    {"cell_g0", CK_DBL, "m", CO(cell.g0_m), 0, 0, 1e-6, 1, NULL},
    {"cell_v0", CK_DBL, "V", CO(cell.v0_V), 0, 0, 10, 1, NULL},
    {"iv_levels", CK_INT, "", CO(iv_levels), 0, 1, 64, 0, NULL},
    {"iv_points", CK_INT, "", CO(iv_points), 0, 5, 10000, 0, NULL},
    {"iv_vmax", CK_DBL, "V", CO(iv_vmax_V), 0, 0, 10, 1, NULL},
    {"ir_arrays", CK_INT, "", CO(ir_arrays), 0, 1, 10000, 0, NULL},
    {"ir_spice_arrays", CK_INT, "", CO(ir_spice_arrays), 0, 0, 10000, 0, NULL},
    {"ir_inputs", CK_INT, "", CO(ir_inputs), 0, 1, 1000, 0, NULL},
    {"ir_rows", CK_INT, "", CO(ir_rows), 0, 0, 256, 0, NULL},
    {"ir_cols", CK_INT, "", CO(ir_cols), 0, 0, 256, 0, NULL},
    {"ir_spice_tol", CK_DBL, "", CO(ir_spice_tol), 0, 0, 1, 1, NULL},
    {"noise_arrays", CK_INT, "", CO(noise_arrays), 0, 1, 1000, 0, NULL},
    {"noise_cols", CK_INT, "", CO(noise_cols), 0, 1, 256, 0, NULL},
    {"noise_f_lo", CK_DBL, "Hz", CO(noise_f_lo_Hz), 0, 0, 1e12, 1, NULL},
    {"noise_ppd", CK_INT, "", CO(noise_ppd), 0, 1, 1000, 0, NULL},
    {"cmp_vdd", CK_DBL, "V", CO(cmp.vdd_V), 0, 0, 10, 1, NULL},
    {"cmp_vcm", CK_DBL, "V", CO(cmp.vcm_V), 0, 0, 10, 1, NULL},
    {"cmp_vbn", CK_DBL, "V", CO(cmp.vbn_V), 0, 0, 10, 1, NULL},
    {"cmp_r_sense", CK_DBL, "ohm", CO(cmp.r_sense_ohm), 0, 0, 1e9, 1, NULL},
    {"cmp_c_load", CK_DBL, "F", CO(cmp.c_load_F), 0, 0, 1e-9, 0, NULL},
    {"cmp_avt_n", CK_DBL, "", CO(cmp.avt_n_Vm), 0, 0, 1e-6, 0, NULL},
    {"cmp_avt_p", CK_DBL, "", CO(cmp.avt_p_Vm), 0, 0, 1e-6, 0, NULL},
    {"cmp_samples", CK_INT, "", CO(cmp_samples), 0, 3, 100000, 0, NULL},
    {"cmp_noise_samples", CK_INT, "", CO(cmp_noise_samples), 0, 3, 100000, 0, NULL},
    {"cmp_i_ref", CK_DBL, "A", CO(cmp_i_ref_A), 0, 0, 1, 1, NULL},
    {"cmp_span", CK_DBL, "A", CO(cmp_span_A), 0, 0, 1, 1, NULL},
    {"cmp_overdrives", CK_DBL_LIST, "A", CO(overdrive_A), CO(n_overdrives), 0, 1, 1, NULL},
    {"cmp_window", CK_DBL, "s", CO(cmp_window_s), 0, 0, 1e-6, 0, NULL},
    {"cmp_t_step", CK_DBL, "s", CO(cmp_t_step_s), 0, 0, 1e-6, 1, NULL},
    {"energy_sizes", CK_INT_LIST, "", CO(energy_size), CO(n_sizes), 1, 128, 0, NULL},
    {"read_width", CK_DBL, "s", CO(read_width_s), 0, 0, 1e-6, 0, NULL},
    {"read_edge", CK_DBL, "s", CO(read_edge_s), 0, 0, 1e-6, 1, NULL},
    {"c_wl", CK_DBL, "F", CO(c_wl_F), 0, 0, 1e-9, 0, NULL},
    {"c_bl", CK_DBL, "F", CO(c_bl_F), 0, 0, 1e-9, 0, NULL},
    {"levels", CK_ENUM, "", CO(levels), 0, 0, 1, 0, "uniform|workload"},
    {"timeout", CK_DBL, "s", CO(timeout_s), 0, 0, 86400, 1, NULL},
};
#define N_CAL_KEYS ((int)(sizeof cal_keys / sizeof cal_keys[0]))
_Static_assert(N_CAL_KEYS <= SPR_CAL_MAX_KEYS, "SPR_CAL_MAX_KEYS too small");

static double si_scale(char c) {
  switch (c) {
  case 'f': return 1e-15;
  case 'p': return 1e-12;
  case 'n': return 1e-9;
  case 'u': return 1e-6;
  case 'm': return 1e-3;
  case 'k': return 1e3;
  case 'M': return 1e6;
  case 'G': return 1e9;
  default: return 0;
  }
}

/* One number of key k (text t, trimmed), with an optional [prefix]unit. */
static int cal_number(const cal_key *k, const char *t, const char *whole, const char *origin,
                      double *out) {
  char *end;
  errno = 0;
  double x = strtod(t, &end);
  if (end == t || !isfinite(x) || errno == ERANGE)
    return spr_error(SPR_ECONFIG, "%s: [calibrate] key '%s': value '%s' is not a finite number",
                     origin, k->name, whole);
  while (isspace((unsigned char)*end)) end++;
  if (*end) {
    const size_t ul = strlen(k->unit), rl = strlen(end);
    double sc = 0;
    if (ul && rl == ul && !strcmp(end, k->unit)) sc = 1;
    else if (ul && rl == ul + 1 && !strcmp(end + 1, k->unit)) sc = si_scale(end[0]);
    if (sc == 0)
      return spr_error(SPR_ECONFIG, "%s: [calibrate] key '%s': value '%s' has unit '%s', expected %s",
                       origin, k->name, whole, end,
                       ul ? k->unit : "none (dimensionless; A_VT in V m)");
    x *= sc;
  }
  if (k->kind == CK_INT || k->kind == CK_INT_LIST) {
    if (x != floor(x) || *end)
      return spr_error(SPR_ECONFIG, "%s: [calibrate] key '%s': value '%s' is not an integer", origin,
                       k->name, whole);
  }
  if ((k->lo_open ? !(x > k->lo) : !(x >= k->lo)) || !(x <= k->hi))
    return spr_error(SPR_ECONFIG, "%s: [calibrate] key '%s': value '%s' out of range %s%g, %g]",
                     origin, k->name, whole, k->lo_open ? "(" : "[", k->lo, k->hi);
  *out = x;
  return 0;
}

int spr_cal_nkeys(void) { return N_CAL_KEYS; }

const char *spr_cal_key_name(int k) { return k >= 0 && k < N_CAL_KEYS ? cal_keys[k].name : NULL; }

int spr_cal_key_find(const char *name) {
  for (int i = 0; name && i < N_CAL_KEYS; i++)
    if (!strcmp(cal_keys[i].name, name)) return i;
  return -1;
}

int spr_cal_params_set(spr_cal_params *p, const char *name, const char *value, const char *origin) {
  if (!origin) origin = "[calibrate]";
  int ki = spr_cal_key_find(name);
  if (ki < 0)
    return spr_error(SPR_ECONFIG, "%s: [calibrate] unknown key '%s' (keys: docs/calibration.md, "
                     "'sprintsim help calibrate')", origin, name ? name : "(null)");
  if (!value) return spr_error(SPR_ECONFIG, "%s: [calibrate] key '%s': no value", origin, name);
  const cal_key *k = &cal_keys[ki];
  char *base = (char *)p;
  char buf[1024];
  if (strlen(value) >= sizeof buf)
    return spr_error(SPR_ECONFIG, "%s: [calibrate] key '%s': value too long", origin, name);
  snprintf(buf, sizeof buf, "%s", value);
  if (k->kind == CK_ENUM) {
    char *t = buf;
    while (isspace((unsigned char)*t)) t++;
    size_t l = strlen(t);
    while (l && isspace((unsigned char)t[l - 1])) t[--l] = '\0';
    int idx = 0;
    for (const char *ch = k->choices; ch && *ch; idx++) {
      const char *bar = strchr(ch, '|');
      const size_t cl = bar ? (size_t)(bar - ch) : strlen(ch);
      if (cl == l && !strncmp(ch, t, l)) {
        *(int *)(base + k->off) = idx;
        return 0;
      }
      ch = bar ? bar + 1 : NULL;
    }
    return spr_error(SPR_ECONFIG, "%s: [calibrate] key '%s': value '%s' is not one of %s", origin,
                     name, value, k->choices);
  }
  if (k->kind == CK_DBL || k->kind == CK_INT) {
    char *t = buf;
    while (isspace((unsigned char)*t)) t++;
    if (!*t) return spr_error(SPR_ECONFIG, "%s: [calibrate] key '%s': empty value", origin, name);
    double x;
    int rc = cal_number(k, t, value, origin, &x);
    if (rc) return rc;
    if (k->kind == CK_DBL) *(double *)(base + k->off) = x;
    else *(int *)(base + k->off) = (int)x;
    return 0;
  }
  int n = 0;
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    while (isspace((unsigned char)*t)) t++;
    size_t l = strlen(t);
    while (l && isspace((unsigned char)t[l - 1])) t[--l] = '\0';
    if (!*t)
      return spr_error(SPR_ECONFIG, "%s: [calibrate] key '%s': value '%s' has an empty item", origin,
                       name, value);
    if (n >= SPR_CAL_MAX_LIST)
      return spr_error(SPR_ECONFIG, "%s: [calibrate] key '%s': more than %d values", origin, name,
                       SPR_CAL_MAX_LIST);
    double x;
    int rc = cal_number(k, t, value, origin, &x);
    if (rc) return rc;
    if (k->kind == CK_DBL_LIST) ((double *)(base + k->off))[n] = x;
    else ((int *)(base + k->off))[n] = (int)x;
    n++;
  }
  if (!n) return spr_error(SPR_ECONFIG, "%s: [calibrate] key '%s': empty value", origin, name);
  *(int *)(base + k->count_off) = n;
  return 0;
}


char *spr_cal_params_to_ini(const spr_cal_params *p) {
  size_t cap = 8192, len = 0;
  char *t = malloc(cap);
  if (!t) return NULL;
  len += (size_t)snprintf(t, cap, "[calibrate]\n");
  for (int i = 0; i < N_CAL_KEYS; i++) {
    const cal_key *k = &cal_keys[i];
    const char *base = (const char *)p;
    char line[1024];
    int w = snprintf(line, sizeof line, "%s = ", k->name);
    if (k->kind == CK_ENUM) {
      const int idx = *(const int *)(base + k->off);
      const char *ch = k->choices;
      for (int j = 0; j < idx && ch; j++) ch = strchr(ch, '|') ? strchr(ch, '|') + 1 : NULL;
      const char *bar = ch ? strchr(ch, '|') : NULL;
      w += snprintf(line + w, sizeof line - (size_t)w, "%.*s", ch ? (int)(bar ? bar - ch : (int)strlen(ch)) : 1,
                    ch ? ch : "?");
      if (len + (size_t)w + 2 > cap) {
        char *u = realloc(t, cap *= 2);
        if (!u) {
          free(t);
          return NULL;
        }
        t = u;
      }
      len += (size_t)snprintf(t + len, cap - len, "%s\n", line);
      continue;
    }
    const int n = k->kind == CK_DBL || k->kind == CK_INT ? 1 : *(const int *)(base + k->count_off);
    for (int v = 0; v < n; v++) {
      if (k->kind == CK_DBL || k->kind == CK_DBL_LIST)
        w += snprintf(line + w, sizeof line - (size_t)w, "%s%.17g%s%s", v ? ", " : "",
                      ((const double *)(base + k->off))[v], k->unit[0] ? " " : "", k->unit);
      else
        w += snprintf(line + w, sizeof line - (size_t)w, "%s%d", v ? ", " : "",
                      ((const int *)(base + k->off))[v]);
    }
    if (len + (size_t)w + 2 > cap) {
      char *u = realloc(t, cap *= 2);
      if (!u) {
        free(t);
        return NULL;
      }
      t = u;
    }
    len += (size_t)snprintf(t + len, cap - len, "%s\n", line);
  }
  return t;
}

struct spr_cal {
  spr_config c;
  spr_cal_params p;
  int next;                        /* next step to run */
  volatile sig_atomic_t *cancel;
  spr_progress *prog;              /* the current step's units, or NULL */
  spr_device dev;
  gsl_rng *rng;
  double trip0_A;                  /* nominal comparator trip */
  double *trips;                   /* cmp_samples Monte-Carlo trips */
  double *dvto;                    /* cmp_samples x 7 VTO shifts */
  spr_cal_workload wl;             /* levels = workload: the programmed keys */
  int arr_head, arr_r0;            /* the workload tile of the last array drawn */
};

int spr_cal_alloc(const spr_config *c, const spr_cal_params *p, spr_cal **out) {
  *out = NULL;
  if (!c || !p) return BAD("spr_cal_alloc: NULL configuration or parameters");
  int rc = spr_cal_params_check(p, c);
  if (rc) return rc;
  spr_cal *cal = calloc(1, sizeof *cal);
  if (!cal) return spr_error(SPR_ENOMEM, "calibrate: out of memory");
  cal->c = *c;
  cal->p = *p;
  /* the comparator at the configuration's temperature, as the arrays */
  cal->p.cmp.temp_C = c->an.temperature_K - 273.15;
  spr_device_init(&cal->dev);
  if (p->levels == SPR_CAL_LEVELS_WORKLOAD) {
    /* the workload's keys before any SPICE job: a missing or mismatched
     * file stops the calibration here, named */
    rc = spr_cal_workload_load(c, "calibrate", &cal->wl);
    if (rc) {
      spr_cal_free(cal);
      return spr_error_prefix(rc, "calibrate");
    }
  }
  cal->rng = spr_rng_alloc();
  cal->trips = malloc((size_t)p->cmp_samples * sizeof *cal->trips);
  cal->dvto = malloc((size_t)p->cmp_samples * SPR_CIRC_CMP_N_MOS * sizeof *cal->dvto);
  if (!cal->rng || !cal->trips || !cal->dvto) {
    spr_cal_free(cal);
    return spr_error(SPR_ENOMEM, "calibrate: out of memory");
  }
  *out = cal;
  return 0;
}

void spr_cal_free(spr_cal *cal) {
  if (!cal) return;
  spr_device_free(&cal->dev);
  spr_cal_workload_free(&cal->wl);
  if (cal->rng) gsl_rng_free(cal->rng);
  free(cal->trips);
  free(cal->dvto);
  free(cal);
}

void spr_cal_set_cancel(spr_cal *cal, volatile sig_atomic_t *flag) { cal->cancel = flag; }

static int canceled(const spr_cal *cal) { return cal->cancel && *cal->cancel; }

void spr_cal_set_progress(spr_cal *cal, spr_progress *p) { cal->prog = p; }

/* A step's units (SPICE jobs or arrays), for the caller's progress. */
static void units(spr_cal *cal, const char *unit, long long total) {
  spr_progress_begin(cal->prog, unit, total);
}

/* Unit i (0-based) starts: i are done.  Returns canceled(cal). */
static int unit_start(spr_cal *cal, long long i) {
  spr_progress_set(cal->prog, i);
  return canceled(cal);
}

/* Prefix the current error message with the step's name (and keep the
 * code). */
static int step_error(int k, int rc) {
  return spr_error_prefix(rc, "calibrate: %s", step_names[k]);
}

static void say(char *buf, size_t n, const char *fmt, ...) {
  if (!buf || !n) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, n, fmt, ap);
  va_end(ap);
}

/* --- random arrays ------------------------------------------------------- */

/* A programmed array from the keyed stream (run.seed, -1, what, trial):
 *   levels = uniform   levels uniform over the 2^cell_bits levels between
 *                      g_min and g_max;
 *   levels = workload  a tile of the workload's programmed arrays: head,
 *                      first key (a multiple of C/2) and first dimension
 *                      (a multiple of R) drawn uniformly
 *                      (spr_cal_workload_array);
 * times exp(prog_sigma z) when crossbar.variation is on (the lognormal
 * variation of docs/model.md). */
static void random_array(spr_cal *cal, int what, int trial, int R, int C, double *G) {
  const spr_xbar_params *x = &cal->c.xbar;
  const int L = 1 << x->cell_bits;
  spr_rng_key(cal->rng, cal->c.seed, -1, what, trial, SPR_STREAM_SPICE_MC);
  if (cal->p.levels == SPR_CAL_LEVELS_WORKLOAD) {
    const spr_cal_workload *w = &cal->wl;
    const int kt = (w->n + C / 2 - 1) / (C / 2 > 0 ? C / 2 : 1), rt = (w->d + R - 1) / R;
    cal->arr_head = (int)gsl_rng_uniform_int(cal->rng, (unsigned long)w->heads);
    const int k0 = (int)gsl_rng_uniform_int(cal->rng, (unsigned long)kt) * (C / 2 > 0 ? C / 2 : 1);
    cal->arr_r0 = (int)gsl_rng_uniform_int(cal->rng, (unsigned long)rt) * R;
    spr_cal_workload_array(w, x, cal->arr_head, k0, cal->arr_r0, R, C, G);
    if (x->variation && x->prog_sigma > 0)
      for (int i = 0; i < R * C; i++) G[i] *= exp(x->prog_sigma * spr_rng_normal(cal->rng));
    return;
  }
  for (int i = 0; i < R * C; i++) {
    int lev = (int)gsl_rng_uniform_int(cal->rng, (unsigned long)L);
    double g = x->g_min_S + (x->g_max_S - x->g_min_S) * lev / (double)(L - 1);
    if (x->variation && x->prog_sigma > 0) g *= exp(x->prog_sigma * spr_rng_normal(cal->rng));
    G[i] = g;
  }
}

/* m input vectors of R row voltages, v_read / qmax per query code: codes
 * uniform in [-qmax, qmax] (the row DACs of docs/model.md), or with
 * levels = workload the codes of random queries of the last array's head
 * at its dimensions (0 V on rows past its d). */
static void random_inputs(spr_cal *cal, int R, int m, double *V) {
  const int qmax = (1 << (cal->c.an.query_bits - 1)) - 1;
  if (cal->p.levels == SPR_CAL_LEVELS_WORKLOAD) {
    const spr_cal_workload *w = &cal->wl;
    for (int v = 0; v < m; v++) {
      const int qi = (int)gsl_rng_uniform_int(cal->rng, (unsigned long)w->n);
      const int8_t *q = w->q + ((size_t)cal->arr_head * w->n + qi) * w->d;
      for (int i = 0; i < R; i++) {
        const int dim = cal->arr_r0 + i;
        V[(size_t)v * R + i] = dim < w->d ? cal->c.an.v_read_V * q[dim] / qmax : 0.0;
      }
    }
    return;
  }
  for (int i = 0; i < R * m; i++) {
    int q = (int)gsl_rng_uniform_int(cal->rng, (unsigned long)(2 * qmax + 1)) - qmax;
    V[i] = cal->c.an.v_read_V * q / qmax;
  }
}

static void xbar_of(const spr_cal *cal, spr_circ_xbar *x, int R, int C, const double *G, const double *V) {
  spr_circ_xbar_init(x);
  x->rows = R;
  x->cols = C;
  x->G = G;
  x->V = V;
  x->r_wl_ohm = cal->c.xbar.r_wl_ohm;
  x->r_bl_ohm = cal->c.xbar.r_bl_ohm;
  x->temp_C = cal->c.an.temperature_K - 273.15;
}

/* --- (a) cell I-V ---------------------------------------------------------- */

static int step_cell_iv(spr_cal *cal, char *sum, size_t sn) {
  const spr_cal_params *p = &cal->p;
  const int L = p->iv_levels, n = p->iv_points;
  double *V = malloc((size_t)L * n * sizeof *V), *I = malloc((size_t)L * n * sizeof *I);
  double *Y = malloc((size_t)L * n * sizeof *Y), *raw = malloc((size_t)L * n * 3 * sizeof *raw);
  double *v0k = malloc((size_t)L * 3 * sizeof *v0k);
  int rc = 0;
  char *text = NULL;
  if (!V || !I || !Y || !raw || !v0k) rc = spr_error(SPR_ENOMEM, "out of memory");
  const double gmin = cal->c.xbar.g_min_S, gmax = cal->c.xbar.g_max_S;
  units(cal, "I-V sweeps", L);
  for (int k = 0; !rc && k < L; k++) {
    if (unit_start(cal, k)) {
      rc = spr_error(SPR_ECANCELED, "interrupted");
      break;
    }
    const double G = L == 1 ? sqrt(gmin * gmax) : gmin * pow(gmax / gmin, k / (double)(L - 1));
    rc = spr_circ_cell_iv(&p->cell, G, -p->iv_vmax_V, p->iv_vmax_V, n, V + k * n, I + k * n,
                          k == 0 ? &text : NULL, p->timeout_s);
    if (rc) {
      rc = spr_error_prefix(rc, "level %d (G = %g S)", k, G);
      break;
    }
    /* per level: G and V0 free (a check that the law holds at every G) */
    spr_fit_result f;
    if ((rc = spr_fit_cell_iv(V + k * n, I + k * n, (size_t)n, 0, &f))) {
      rc = spr_error_prefix(rc, "level %d (G = %g S, sweep to iv_vmax = %g V)", k, G, p->iv_vmax_V);
      break;
    }
    v0k[3 * k] = G;
    v0k[3 * k + 1] = f.param[1];
    v0k[3 * k + 2] = f.ci95[1];
    for (int i = 0; i < n; i++) {
      Y[k * n + i] = I[k * n + i] / G; /* I / G = V0 sinh(V / V0) */
      raw[3 * (k * n + i)] = G;
      raw[3 * (k * n + i) + 1] = V[k * n + i];
      raw[3 * (k * n + i) + 2] = I[k * n + i];
    }
  }
  spr_fit_result fit;
  /* all levels together: I/G against V with the slope fixed at 1 */
  if (!rc) rc = spr_fit_cell_iv(V, Y, (size_t)L * n, 1.0, &fit);
  if (!rc)
    rc = spr_device_add_fit(&cal->dev, "cell_v0", "crossbar.cell_v0", "V",
                            "I/G = V0 sinh(V/V0), every level's I-V divided by its programmed G",
                            &fit, 0);
  if (!rc) rc = spr_device_add_netlist(&cal->dev, "cell_iv", text);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "cell_iv", "1",
                             "I-V sweeps: rows (G in S, V in V, I in A), level after level", 2,
                             (int64_t)L * n, 3, raw);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "cell_iv_v0_per_level", "1",
                             "per-level fits of I = G V0 sinh(V/V0): rows (G in S, V0 in V, 95% "
                             "half-width of V0 in V)", 2, L, 3, v0k);
  if (!rc) rc = spr_device_add_samples(&cal->dev, "cell_iv_levels", (uint64_t)L);
  if (!rc)
    say(sum, sn, "cell_v0 = %.6g V (95%% CI %.6g .. %.6g; %d levels x %d points, R^2 %.8f)",
        fit.param[0], fit.param[0] - fit.ci95[0], fit.param[0] + fit.ci95[0], L, n, fit.r2);
  free(text);
  free(V);
  free(I);
  free(Y);
  free(raw);
  free(v0k);
  return rc;
}

/* --- (b) IR drop ------------------------------------------------------------ */

static int step_ir(spr_cal *cal, char *sum, size_t sn) {
  const spr_cal_params *p = &cal->p;
  const double rwl = cal->c.xbar.r_wl_ohm, rbl = cal->c.xbar.r_bl_ohm;
  if (!(rwl > 0) || !(rbl > 0)) {
    say(sum, sn, "skipped: crossbar.r_wl = %g, r_bl = %g ohm (a zero resistance leaves its alpha "
        "undetermined); ir_alpha_wl/bl not set", rwl, rbl);
    return 0;
  }
  const int R = p->ir_rows ? p->ir_rows : cal->c.xbar.rows;
  const int C = p->ir_cols ? p->ir_cols : cal->c.xbar.cols;
  const int A = p->ir_arrays, M = p->ir_inputs, S = p->ir_spice_arrays;
  double *G = malloc((size_t)A * R * C * sizeof *G), *V = malloc((size_t)A * M * R * sizeof *V);
  double *I = malloc((size_t)A * M * C * sizeof *I), *Ge = malloc((size_t)R * C * sizeof *Ge);
  double *Is = malloc(((size_t)S + 1) * C * 2 * sizeof *Is);
  int rc = 0;
  char *text = NULL;
  spr_nodal_ws *ws = NULL;
  if (!G || !V || !I || !Ge || !Is) rc = spr_error(SPR_ENOMEM, "out of memory");
  if (!rc && !(ws = spr_nodal_ws_alloc(R, C, &rc))) rc = rc ? rc : SPR_ENOMEM;
  double worst = 0;
  units(cal, "arrays", A);
  for (int a = 0; !rc && a < A; a++) {
    if (unit_start(cal, a)) {
      rc = spr_error(SPR_ECANCELED, "interrupted");
      break;
    }
    double *g = G + (size_t)a * R * C, *v = V + (size_t)a * M * R, *cur = I + (size_t)a * M * C;
    random_array(cal, RNG_IR, a, R, C, g);
    random_inputs(cal, R, M, v);
    if ((rc = spr_nodal_effective(g, R, C, rwl, rbl, Ge, NULL, ws))) break;
    for (int m = 0; m < M; m++)
      for (int j = 0; j < C; j++) {
        double s = 0;
        for (int i = 0; i < R; i++) s += v[(size_t)m * R + i] * Ge[(size_t)i * C + j];
        cur[(size_t)m * C + j] = s;
      }
    if (a < S) { /* ngspice on the first input vector, against the nodal currents */
      spr_circ_xbar x;
      xbar_of(cal, &x, R, C, g, v);
      double *is = Is + (size_t)a * 2 * C;
      rc = spr_circ_xbar_currents(&x, is, a == 0 ? &text : NULL, p->timeout_s);
      if (rc) {
        rc = spr_error_prefix(rc, "array %d (%d x %d, ngspice)", a, R, C);
        break;
      }
      double big = 0, diff = 0;
      for (int j = 0; j < C; j++) {
        big = fmax(big, fabs(cur[j]));
        diff = fmax(diff, fabs(is[j] - cur[j]));
        is[C + j] = cur[j];
      }
      const double rel = big > 0 ? diff / big : diff;
      worst = fmax(worst, rel);
      if (!(rel <= p->ir_spice_tol))
        rc = spr_error(SPR_ESPICE, "array %d: ngspice and the nodal solver differ by %.3g of the "
                       "largest column current (ir_spice_tol = %g)", a, rel, p->ir_spice_tol);
    }
  }
  spr_fit_result fit;
  if (!rc) rc = spr_fit_ir_alpha(G, R, C, A, V, M, I, rwl, rbl, &fit);
  static const char model[] =
      "I_j = sum_m V_m G_mj (1 - alpha_wl r_wl A_mj - alpha_bl r_bl B_mj) vs exact nodal currents";
  if (!rc) rc = spr_device_add_fit(&cal->dev, "ir_alpha_wl", "crossbar.ir_alpha_wl", "1", model, &fit, 0);
  if (!rc) rc = spr_device_add_fit(&cal->dev, "ir_alpha_bl", "crossbar.ir_alpha_bl", "1", model, &fit, 1);
  if (!rc && text) rc = spr_device_add_netlist(&cal->dev, "ir_array", text);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "ir_G", "S", "programmed conductances: array after array, "
                             "(arrays x rows) x cols", 2, (int64_t)A * R, C, G);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "ir_V", "V", "row voltages: (arrays x inputs) x rows", 2,
                             (int64_t)A * M, R, V);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "ir_I", "A", "exact column currents (nodal solver): "
                             "(arrays x inputs) x cols", 2, (int64_t)A * M, C, I);
  if (!rc && S)
    rc = spr_device_add_data(&cal->dev, "ir_I_spice", "A", "first input of the first arrays: rows "
                             "ngspice, nodal, ngspice, nodal, ... (2 x spice arrays) x cols", 2,
                             (int64_t)2 * S, C, Is);
  if (!rc) {
    /* the conductances the scales were fitted on: rows x mean cell G */
    double sg = 0;
    for (size_t k = 0; k < (size_t)A * R * C; k++) sg += G[k];
    const double col = R * sg / ((double)A * R * C);
    spr_device_param mp;
    memset(&mp, 0, sizeof mp);
    snprintf(mp.name, sizeof mp.name, "cal_mean_column_G");
    snprintf(mp.unit, sizeof mp.unit, "S");
    snprintf(mp.model, sizeof mp.model, "rows x mean cell conductance of the IR step's arrays "
             "(levels = %s)", cal->p.levels == SPR_CAL_LEVELS_WORKLOAD ? "workload" : "uniform");
    mp.value = mp.ci95_lo = mp.ci95_hi = col;
    mp.r2 = 1;
    mp.n_points = (int64_t)A * R * C;
    rc = spr_device_add(&cal->dev, &mp);
  }
  if (!rc) rc = spr_device_add_samples(&cal->dev, "ir_arrays", (uint64_t)A);
  if (!rc) rc = spr_device_add_samples(&cal->dev, "ir_spice_arrays", (uint64_t)S);
  if (!rc) rc = spr_device_add_samples(&cal->dev, "ir_inputs", (uint64_t)M);
  if (!rc)
    say(sum, sn, "ir_alpha_wl = %.5f +- %.2g, ir_alpha_bl = %.5f +- %.2g (%d arrays %d x %d, %d "
        "inputs, R^2 %.6f); ngspice vs nodal on %d arrays: %.2g", fit.param[0], fit.ci95[0],
        fit.param[1], fit.ci95[1], A, R, C, M, fit.r2, S, worst);
  spr_nodal_ws_free(ws);
  free(text);
  free(G);
  free(V);
  free(I);
  free(Ge);
  free(Is);
  return rc;
}

/* --- (c) column noise -------------------------------------------------------- */

static int step_noise(spr_cal *cal, char *sum, size_t sn) {
  const spr_cal_params *p = &cal->p;
  const int R = cal->c.xbar.rows, C = p->noise_cols, A = p->noise_arrays, n = A * C;
  const double flo = p->noise_f_lo_Hz, fhi = cal->c.an.bandwidth_Hz, T = cal->c.an.temperature_K;
  double *G = malloc((size_t)R * C * sizeof *G), *V = malloc((size_t)R * sizeof *V);
  double *var = malloc((size_t)n * sizeof *var), *th = malloc((size_t)n * sizeof *th);
  int rc = 0;
  char *text = NULL;
  if (!G || !V || !var || !th) rc = spr_error(SPR_ENOMEM, "out of memory");
  for (int i = 0; !rc && i < R; i++) V[i] = cal->c.an.v_read_V;
  units(cal, "columns", (long long)A * C);
  for (int a = 0; !rc && a < A; a++) {
    random_array(cal, RNG_NOISE, a, R, C, G);
    spr_circ_xbar x;
    xbar_of(cal, &x, R, C, G, V);
    for (int j = 0; !rc && j < C; j++) {
      if (unit_start(cal, (long long)a * C + j)) {
        rc = spr_error(SPR_ECANCELED, "interrupted");
        break;
      }
      double irms;
      rc = spr_circ_xbar_noise(&x, j, flo, fhi, p->noise_ppd, &irms, !text ? &text : NULL,
                               p->timeout_s);
      if (rc) {
        rc = spr_error_prefix(rc, "array %d column %d", a, j);
        break;
      }
      double sg = 0;
      for (int i = 0; i < R; i++) sg += G[(size_t)i * C + j];
      var[a * C + j] = irms * irms;
      th[a * C + j] = 4 * KB * T * (fhi - flo) * sg;
    }
  }
  spr_fit_result fit;
  if (!rc) rc = spr_fit_read_noise(var, th, NULL, NULL, (size_t)n, 0, &fit);
  if (!rc)
    rc = spr_device_add_fit(&cal->dev, "thermal_excess", "analog.thermal_excess", "1",
                            "var = F 4 k T (f_hi - f_lo) sum_i G_ij, column .noise with the wires",
                            &fit, 0);
  if (!rc) rc = spr_device_add_netlist(&cal->dev, "noise_column", text);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "noise_var", "A2", "measured column-current noise "
                             "variance over [noise_f_lo, analog.bandwidth], array after array", 1,
                             n, 1, var);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "noise_thermal", "A2", "4 k T (f_hi - f_lo) sum_i G_ij "
                             "of the same columns", 1, n, 1, th);
  if (!rc) rc = spr_device_add_samples(&cal->dev, "noise_columns", (uint64_t)n);
  if (!rc)
    say(sum, sn, "thermal_excess = %.6f (95%% CI %.6f .. %.6f; %d columns of %d cells, %g Hz .. %g "
        "Hz)", fit.param[0], fit.param[0] - fit.ci95[0], fit.param[0] + fit.ci95[0], n, R, flo, fhi);
  free(text);
  free(G);
  free(V);
  free(var);
  free(th);
  return rc;
}

/* --- (d) comparator Monte Carlo ----------------------------------------------- */

static int step_cmp_mc(spr_cal *cal, char *sum, size_t sn) {
  const spr_cal_params *p = &cal->p;
  const int n = p->cmp_samples;
  char *text = NULL;
  int rc = spr_circ_cmp_trip(&p->cmp, NULL, p->cmp_i_ref_A, p->cmp_span_A, &cal->trip0_A, &text,
                             p->timeout_s);
  if (rc) {
    return spr_error_prefix(rc, "nominal comparator");
  }
  units(cal, "comparators", n);
  for (int s = 0; !rc && s < n; s++) {
    if (unit_start(cal, s)) {
      rc = spr_error(SPR_ECANCELED, "interrupted");
      break;
    }
    double *d = cal->dvto + (size_t)s * SPR_CIRC_CMP_N_MOS;
    rc = spr_circ_cmp_mismatch(&p->cmp, cal->c.seed, s, d);
    if (!rc) rc = spr_circ_cmp_trip(&p->cmp, d, p->cmp_i_ref_A, p->cmp_span_A, &cal->trips[s], NULL, p->timeout_s);
    if (rc) {
      char m[1500];
      snprintf(m, sizeof m, "%s", spr_errmsg());
      rc = spr_error(rc, "sample %d of %d: %s%s", s, n, m,
                     strstr(m, "does not rise") ? " (raise cmp_span)" : "");
    }
  }
  spr_fit_gauss g;
  if (!rc) rc = spr_fit_cmp_offset(cal->trips, (size_t)n, p->cmp_i_ref_A, &g);
  if (!rc)
    rc = spr_device_add_gauss(&cal->dev, "cmp_offset_sigma", "analog.cmp_offset_sigma", "A",
                              "sigma of Monte-Carlo trip currents (Pelgrom VTO draws) minus i_ref", &g, 1);
  if (!rc)
    rc = spr_device_add_gauss(&cal->dev, "cmp_offset_mean", "", "A",
                              "mean of Monte-Carlo trip currents minus i_ref (systematic, trimmed)", &g, 0);
  if (!rc) rc = spr_device_add_netlist(&cal->dev, "cmp_trip", text);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "cmp_trip", "A", "trip current of each Monte-Carlo "
                             "comparator (sample order; offset = value - cmp_i_ref)", 1, n, 1, cal->trips);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "cmp_dvto", "V", "VTO shifts of M1..M7 of each sample: "
                             "samples x 7", 2, n, SPR_CIRC_CMP_N_MOS, cal->dvto);
  if (!rc) {
    double ref[4] = {p->cmp_i_ref_A, cal->trip0_A, p->cmp.r_sense_ohm, p->cmp_span_A};
    rc = spr_device_add_data(&cal->dev, "cmp_reference", "1", "(i_ref A, nominal trip A, R_s ohm, "
                             "trip search span A)", 1, 4, 1, ref);
  }
  if (!rc) rc = spr_device_add_samples(&cal->dev, "cmp_offset", (uint64_t)n);
  if (!rc)
    say(sum, sn, "cmp_offset_sigma = %.4g A (95%% CI %.4g .. %.4g), mean %.4g A, PPCC %.4f, %d "
        "samples; nominal trip %.6g A", g.sigma, g.sigma_lo, g.sigma_hi, g.mean, g.ppcc, n, cal->trip0_A);
  free(text);
  return rc;
}

/* --- (e) comparator noise ------------------------------------------------------- */

/* Integral of a density S (n points at increasing f) over [f_0, f_n-1],
 * power law between points (exact for white and 1/f^a segments). */
static double powerlaw_integral(const double *f, const double *S, int n) {
  double tot = 0;
  for (int i = 0; i + 1 < n; i++) {
    const double r = f[i + 1] / f[i];
    if (!(S[i] > 0) || !(S[i + 1] > 0)) {
      tot += 0.5 * (S[i] + S[i + 1]) * (f[i + 1] - f[i]);
      continue;
    }
    const double a = log(S[i + 1] / S[i]) / log(r);
    tot += fabs(a + 1) < 1e-9 ? S[i] * f[i] * log(r) : S[i] * f[i] / (a + 1) * (pow(r, a + 1) - 1);
  }
  return tot;
}

/* The simulator's comparator noise is input-referred over the sense band
 * [f_lo, analog.bandwidth] (a decision window T ~ 1/(2B)): the integral
 * of ngspice's inoise_spectrum (v(o1)'s density over |gain(f)| from Icol)
 * over the band.  It is not ngspice's inoise_total: ngspice 39 integrates
 * the input noise with its own interpolation of the gain, which reads
 * 12% high over 1 kHz - 100 MHz here, where the gain falls past the OTA
 * output's pole (near 1 MHz at the trip point: the inverter, biased at
 * its switching point, Miller-multiplies its gate-drain capacitance)
 * while the input-referred density stays white; ngspice's value is
 * stored as data.  So is v(o1)'s total over the low-frequency gain, the
 * steady-state noise of a decision that waits many output time constants
 * (much longer than the window): a lower bound. */
static int step_cmp_noise(spr_cal *cal, char *sum, size_t sn) {
  const spr_cal_params *p = &cal->p;
  const int n = p->cmp_noise_samples;
  const double flo = p->noise_f_lo_Hz, fhi = cal->c.an.bandwidth_Hz;
  double *sig = malloc((size_t)n * sizeof *sig), *inref = malloc((size_t)n * sizeof *inref);
  double *ngs = malloc((size_t)n * sizeof *ngs);
  double *spec = NULL;
  int rc = sig && inref && ngs ? 0 : spr_error(SPR_ENOMEM, "out of memory"), nf = 0;
  char *text = NULL;
  units(cal, "comparators", n);
  for (int s = 0; !rc && s < n; s++) {
    if (unit_start(cal, s)) {
      rc = spr_error(SPR_ECANCELED, "interrupted");
      break;
    }
    spr_circ_cmp_spectrum sp;
    rc = spr_circ_cmp_noise_spectrum(&p->cmp, cal->dvto + (size_t)s * SPR_CIRC_CMP_N_MOS,
                                     p->cmp_i_ref_A, cal->trips[s], flo, fhi, p->noise_ppd, &sp,
                                     s == 0 ? &text : NULL, p->timeout_s);
    if (!rc && !(sp.inoise_A[0] > 0 && sp.onoise_V[0] > 0))
      rc = spr_error(SPR_ESPICE, "zero noise density at %g Hz", sp.f_Hz[0]);
    if (!rc) {
      const double gain0 = sp.onoise_V[0] / sp.inoise_A[0];
      for (int i = 0; i < sp.n; i++) sp.inoise_A[i] *= sp.inoise_A[i]; /* A^2/Hz */
      sig[s] = sqrt(powerlaw_integral(sp.f_Hz, sp.inoise_A, sp.n));
      for (int i = 0; i < sp.n; i++) sp.inoise_A[i] = sqrt(sp.inoise_A[i]);
      inref[s] = sp.onoise_total_V / gain0;
      ngs[s] = sp.inoise_total_A;
      if (s == 0) {
        nf = sp.n;
        if (!(spec = malloc((size_t)nf * 3 * sizeof *spec))) rc = spr_error(SPR_ENOMEM, "out of memory");
        for (int i = 0; !rc && i < nf; i++) {
          spec[3 * i] = sp.f_Hz[i];
          spec[3 * i + 1] = sp.onoise_V[i];
          spec[3 * i + 2] = sp.inoise_A[i];
        }
      }
    }
    spr_circ_cmp_spectrum_free(&sp);
    if (rc) {
      rc = spr_error_prefix(rc, "sample %d of %d", s, n);
    }
  }
  spr_fit_gauss g;
  if (!rc) rc = spr_fit_gaussian("cmp_noise", sig, (size_t)n, &g);
  if (!rc)
    rc = spr_device_add_gauss(&cal->dev, "cmp_noise_sigma", "analog.cmp_noise_sigma", "A",
                              "mean over Monte-Carlo comparators of the input-referred noise "
                              "density over [noise_f_lo, analog.bandwidth], integrated", &g, 0);
  if (!rc) rc = spr_device_add_netlist(&cal->dev, "cmp_noise", text);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "cmp_noise_sigma", "A", "input-referred noise per "
                             "Monte-Carlo comparator: inoise_spectrum integrated over [noise_f_lo, "
                             "bandwidth] (power law between points)", 1, n, 1, sig);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "cmp_noise_inoise_total", "A", "ngspice 39's inoise_total "
                             "of the same comparators (reads high, informational)", 1, n, 1, ngs);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "cmp_noise_steady", "A", "v(o1) rms over the band / "
                             "low-frequency gain, same comparators (steady-state bound, "
                             "informational)", 1, n, 1, inref);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "cmp_noise_spectrum", "1", "sample 0: rows (f Hz, v(o1) "
                             "V/sqrt(Hz), input-referred A/sqrt(Hz))", 2, nf, 3, spec);
  if (!rc) rc = spr_device_add_samples(&cal->dev, "cmp_noise", (uint64_t)n);
  if (!rc)
    say(sum, sn, "cmp_noise_sigma = %.4g A (95%% CI %.4g .. %.4g; %d comparators, %g Hz .. %g Hz; "
        "ngspice inoise_total %.4g A, steady-state v(o1) / gain %.4g A)", g.mean, g.mean - g.mean_ci95, g.mean + g.mean_ci95, n,
        flo, fhi, ngs[0], inref[0]);
  free(text);
  free(sig);
  free(inref);
  free(ngs);
  free(spec);
  return rc;
}

/* --- (f) comparator transients ---------------------------------------------------- */

static int step_cmp_step(spr_cal *cal, char *sum, size_t sn) {
  const spr_cal_params *p = &cal->p;
  const int n = p->n_overdrives;
  spr_circ_step st;
  spr_circ_step_default(&st);
  st.window_s = window_of(p, &cal->c, p->cmp_window_s);
  st.t_step_s = p->cmp_t_step_s;
  if (st.rise_s >= st.window_s) st.rise_s = st.window_s / 10;
  double od[SPR_CAL_MAX_LIST], dl[SPR_CAL_MAX_LIST], en[SPR_CAL_MAX_LIST], raw[SPR_CAL_MAX_LIST * 4];
  int rc = 0;
  char *text = NULL;
  units(cal, "transients", n);
  for (int k = 0; !rc && k < n; k++) {
    if (unit_start(cal, k)) {
      rc = spr_error(SPR_ECANCELED, "interrupted");
      break;
    }
    spr_circ_cmp_decision d;
    od[k] = p->overdrive_A[k];
    rc = spr_circ_cmp_step(&p->cmp, NULL, p->cmp_i_ref_A, cal->trip0_A, od[k], &st, &d,
                           k == 0 ? &text : NULL, p->timeout_s);
    if (rc) {
      rc = spr_error_prefix(rc, "overdrive %g A (window %g s)", od[k], st.window_s);
      break;
    }
    dl[k] = d.delay_s;
    en[k] = d.energy_J;
    raw[4 * k] = od[k];
    raw[4 * k + 1] = d.delay_s;
    raw[4 * k + 2] = d.energy_J;
    raw[4 * k + 3] = d.p_static_W;
  }
  spr_fit_result fd;
  spr_fit_gauss ge;
  if (!rc) rc = spr_fit_cmp_delay(od, dl, (size_t)n, &fd);
  if (!rc) rc = spr_fit_cmp_energy(en, (size_t)n, &ge);
  static const char dm[] = "t_d = t0 + q / I_od, step transients of the nominal comparator";
  if (!rc) rc = spr_device_add_fit(&cal->dev, "cmp_delay_t0", "", "s", dm, &fd, 0);
  if (!rc) rc = spr_device_add_fit(&cal->dev, "cmp_delay_q", "", "C", dm, &fd, 1);
  if (!rc)
    rc = spr_device_add_gauss(&cal->dev, "cmp_energy", "energy.cmp_per_decision", "J",
                              "mean VDD-supplied energy of one decision over the window, over the "
                              "listed overdrives", &ge, 0);
  if (!rc) rc = spr_device_add_netlist(&cal->dev, "cmp_step", text);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "cmp_step", "1", "rows (overdrive A, delay s, energy J, "
                             "static power W)", 2, n, 4, raw);
  if (!rc) rc = spr_device_add_samples(&cal->dev, "cmp_overdrives", (uint64_t)n);
  if (!rc)
    say(sum, sn, "energy.cmp_per_decision = %.4g J (95%% CI %.4g .. %.4g); delay t0 = %.3g s, q = "
        "%.3g C (R^2 %.4f); window %g s", ge.mean, ge.mean - ge.mean_ci95, ge.mean + ge.mean_ci95,
        fd.param[0], fd.param[1], fd.r2, st.window_s);
  free(text);
  return rc;
}

/* --- (g) read energy ---------------------------------------------------------------- */

static int step_energy(spr_cal *cal, char *sum, size_t sn) {
  const spr_cal_params *p = &cal->p;
  const int n = p->n_sizes;
  spr_circ_pulse pu;
  spr_circ_pulse_default(&pu);
  pu.width_s = window_of(p, &cal->c, p->read_width_s);
  pu.rise_s = pu.fall_s = p->read_edge_s;
  pu.delay_s = p->read_edge_s;
  pu.t_step_s = p->read_edge_s / 2;
  pu.t_stop_s = pu.delay_s + pu.rise_s + pu.width_s + pu.fall_s + p->read_edge_s;
  double nm[SPR_CAL_MAX_LIST], e[SPR_CAL_MAX_LIST], raw[2 * SPR_CAL_MAX_LIST];
  /* every row at the RMS voltage of signed query codes uniform in
   * [-qmax, qmax]: E[q^2] / qmax^2 = (qmax + 1) / (3 qmax), so a linear
   * array's energy equals its mean over uniform queries, without the
   * sampling noise of random inputs */
  const int qmax = (1 << (cal->c.an.query_bits - 1)) - 1;
  const int wl = cal->p.levels == SPR_CAL_LEVELS_WORKLOAD;
  /* levels = workload: the RMS of the workload's own query codes */
  const double vrms = wl ? cal->c.an.v_read_V * cal->wl.q_rms / qmax
                         : cal->c.an.v_read_V * sqrt((qmax + 1) / (3.0 * qmax));
  int rc = 0;
  char *text = NULL;
  units(cal, "arrays", n);
  for (int k = 0; !rc && k < n; k++) {
    if (unit_start(cal, k)) {
      rc = spr_error(SPR_ECANCELED, "interrupted");
      break;
    }
    const int N = p->energy_size[k];
    double *G = malloc((size_t)N * N * sizeof *G), *V = malloc((size_t)N * sizeof *V);
    if (!G || !V) rc = spr_error(SPR_ENOMEM, "out of memory");
    if (!rc) {
      random_array(cal, RNG_ENERGY, k, N, N, G);
      /* columns in differential pairs as a programmed key holds them: the
       * smaller cell of each pair at g_min, so one MAC (one key element
       * times one query element) is one pair of cells */
      for (int i = 0; !wl && i < N; i++) /* workload tiles hold their pairs already */
        for (int j = 0; j + 1 < N; j += 2) {
          double *gp = &G[(size_t)i * N + j], *gm = gp + 1;
          if (*gp >= *gm) *gm = cal->c.xbar.g_min_S;
          else *gp = cal->c.xbar.g_min_S;
        }
      for (int i = 0; i < N; i++) V[i] = vrms;
      spr_circ_xbar x;
      xbar_of(cal, &x, N, N, G, V);
      x.cell = SPR_CIRC_CELL_SINH;
      x.sinh = p->cell;
      x.c_wl_F = p->c_wl_F;
      x.c_bl_F = p->c_bl_F;
      rc = spr_circ_xbar_read_energy(&x, &pu, &e[k], k == 0 ? &text : NULL, p->timeout_s);
      if (rc) {
        rc = spr_error_prefix(rc, "array %d x %d", N, N);
      }
    }
    nm[k] = (double)N * N / 2; /* MACs: rows x column pairs */
    raw[2 * k] = nm[k];
    raw[2 * k + 1] = rc ? 0 : e[k];
    free(G);
    free(V);
  }
  spr_fit_result f;
  if (!rc) rc = spr_fit_mac_energy(nm, e, (size_t)n, &f);
  static const char em[] = "E_read = e_mac N_mac + e_0, read pulses of N x N sinh-cell arrays, "
                           "N_mac = N x N/2 differential pairs";
  if (!rc) rc = spr_device_add_fit(&cal->dev, "imc_mac_energy", "energy.imc_mac_per_op", "J", em, &f, 0);
  if (!rc) rc = spr_device_add_fit(&cal->dev, "imc_read_energy_0", "", "J", em, &f, 1);
  if (!rc) rc = spr_device_add_netlist(&cal->dev, "read_energy", text);
  if (!rc)
    rc = spr_device_add_data(&cal->dev, "read_energy", "1", "rows (MACs = rows x cols / 2 column pairs, energy J)",
                             2, n, 2, raw);
  if (!rc) rc = spr_device_add_samples(&cal->dev, "read_energy_arrays", (uint64_t)n);
  if (!rc)
    say(sum, sn, "energy.imc_mac_per_op = %.4g J (95%% CI %.4g .. %.4g), e_0 = %.3g J; %d sizes, "
        "pulse %g s, R^2 %.6f", f.param[0], f.param[0] - f.ci95[0], f.param[0] + f.ci95[0],
        f.param[1], n, pu.width_s, f.r2);
  free(text);
  return rc;
}

static int step_run(spr_cal *cal, int k, char *summary, size_t n);

int spr_cal_step(spr_cal *cal, int k, char *summary, size_t n) {
  if (summary && n) summary[0] = '\0';
  if (!cal || k != cal->next || k < 0 || k >= SPR_CAL_N_STEPS)
    return BAD("calibrate: step %d run out of order (next is %d)", k, cal ? cal->next : -1);
  if (canceled(cal)) return spr_error(SPR_ECANCELED, "calibrate: %s: interrupted", step_names[k]);
  /* the flag also stops the SPICE job in progress (its child is killed) */
  volatile sig_atomic_t *prev = cal->cancel ? spr_spice_set_cancel(cal->cancel) : NULL;
  units(cal, "", 0); /* the step names its units when it starts them */
  int rc = step_run(cal, k, summary, n);
  if (cal->cancel) spr_spice_set_cancel(prev);
  /* a child killed by the terminal's SIGINT looks like a crash: report the
   * interruption instead */
  if (rc && canceled(cal)) return spr_error(SPR_ECANCELED, "calibrate: %s: interrupted", step_names[k]);
  if (rc) return step_error(k, rc);
  long long total;
  spr_progress_read(cal->prog, NULL, NULL, &total, NULL);
  spr_progress_set(cal->prog, total); /* every unit done */
  cal->next++;
  return 0;
}

/* Step k's measurements and fits (spr_cal_step). */
static int step_run(spr_cal *cal, int k, char *summary, size_t n) {
  int rc = 0;
  if (k == 0) { /* provenance first: the ngspice version and the seed */
    rc = spr_spice_version(cal->dev.ngspice_version, sizeof cal->dev.ngspice_version, cal->p.timeout_s);
    if (!rc) rc = spr_device_add_seed(&cal->dev, "run.seed", cal->c.seed);
    if (rc) return rc;
  }
  switch (k) {
  case SPR_CAL_CELL_IV: rc = step_cell_iv(cal, summary, n); break;
  case SPR_CAL_IR: rc = step_ir(cal, summary, n); break;
  case SPR_CAL_NOISE: rc = step_noise(cal, summary, n); break;
  case SPR_CAL_CMP_MC: rc = step_cmp_mc(cal, summary, n); break;
  case SPR_CAL_CMP_NOISE: rc = step_cmp_noise(cal, summary, n); break;
  case SPR_CAL_CMP_STEP: rc = step_cmp_step(cal, summary, n); break;
  default: rc = step_energy(cal, summary, n); break;
  }
  return rc;
}

spr_device *spr_cal_device(spr_cal *cal, const char *sprintsim_version) {
  if (!cal || cal->next < SPR_CAL_N_STEPS) return NULL;
  if (!cal->dev.config_text) { /* the resolved configuration and [calibrate] */
    char *a = spr_config_to_ini(&cal->c), *b = spr_cal_params_to_ini(&cal->p);
    char *t = a && b ? malloc(strlen(a) + strlen(b) + 2) : NULL;
    if (t) sprintf(t, "%s\n%s", a, b);
    int rc = t ? spr_device_set_config(&cal->dev, t) : SPR_ENOMEM;
    free(a);
    free(b);
    free(t);
    if (rc) {
      spr_error(SPR_ENOMEM, "calibrate: out of memory for the configuration text");
      return NULL;
    }
  }
  snprintf(cal->dev.sprintsim_version, sizeof cal->dev.sprintsim_version, "%s",
           sprintsim_version ? sprintsim_version : PACKAGE_VERSION);
  return &cal->dev;
}
