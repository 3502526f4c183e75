/* spr_circuits.c - netlists and SPICE measurements for the calibration
 * (see spr_circuits.h).  Everything here talks to ngspice only through
 * spr_spice_run(). */
#include "config.h"
#include "spr_circuits.h"

#include "spr_error.h"
#include "spr_rng.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ line buffer */

typedef struct {
  char **lines;
  int n, cap;
  int bad; /* an allocation failed: later emits do nothing */
} line_buf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void emit(line_buf *b, const char *fmt, ...) {
  if (b->bad) return;
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (len < 0) {
    b->bad = 1;
    return;
  }
  if (b->n == b->cap) {
    int cap = b->cap ? 2 * b->cap : 64;
    char **p = realloc(b->lines, (size_t)cap * sizeof *p);
    if (!p) {
      b->bad = 1;
      return;
    }
    b->lines = p;
    b->cap = cap;
  }
  char *s = malloc((size_t)len + 1);
  if (!s) {
    b->bad = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(s, (size_t)len + 1, fmt, ap);
  va_end(ap);
  b->lines[b->n++] = s;
}

/* Hand the lines to the caller (with ".end"), or free them on failure. */
static int finish(line_buf *b, const char *fn, char ***lines, int *n_lines) {
  emit(b, ".end");
  if (b->bad) {
    spr_spice_netlist_free(b->lines, b->n);
    return spr_error(SPR_ENOMEM, "%s: out of memory at netlist line %d", fn, b->n + 1);
  }
  *lines = b->lines;
  *n_lines = b->n;
  return 0;
}

/* The deck: netlist lines up to ".end", a .control block with the
 * driver's "optran 1 1 1 0 0 0" (see spr_spice.c) and the commands,
 * ".end"; joined by newlines. */
static int deck_text(char *const *lines, int n, const char *const *cmds, int n_cmds,
                     char **text) {
  *text = NULL;
  int body = n;
  if (body > 0 && strcmp(lines[body - 1], ".end") == 0) body--;
  size_t len = 0;
  for (int i = 0; i < body; i++) len += strlen(lines[i]) + 1;
  for (int c = 0; c < n_cmds; c++) len += strlen(cmds[c]) + 1;
  len += sizeof ".control\noptran 1 1 1 0 0 0\n.endc\n.end\n";
  char *t = malloc(len);
  if (!t) return spr_error(SPR_ENOMEM, "netlist text of %zu bytes", len);
  char *p = t;
  for (int i = 0; i < body; i++) p += sprintf(p, "%s\n", lines[i]);
  p += sprintf(p, ".control\noptran 1 1 1 0 0 0\n");
  for (int c = 0; c < n_cmds; c++) p += sprintf(p, "%s\n", cmds[c]);
  sprintf(p, ".endc\n.end\n");
  *text = t;
  return 0;
}

/* Run commands on lines and read vecs; on success store the deck in
 * *text when text is not NULL. */
static int run(char **lines, int n, const char *const *cmds, int n_cmds, const char *const *vecs,
               int n_vecs, spr_spice_vec *out, char **text, double timeout_s) {
  int rc = spr_spice_run((const char *const *)lines, n, cmds, n_cmds, vecs, n_vecs, out,
                         timeout_s);
  if (rc == 0 && text) {
    rc = deck_text(lines, n, cmds, n_cmds, text);
    if (rc) spr_spice_vecs_free(out, n_vecs);
  }
  return rc;
}

/* A `noise` analysis of the netlist (freed here) from `source` to the
 * voltage `output` over [f_lo, f_hi], reading vecs into v. */
static int run_noise(char **lines, int n, const char *output, const char *source, int ppd,
                     double f_lo_Hz, double f_hi_Hz, const char *const *vecs, int n_vecs,
                     spr_spice_vec *v, char **text, double timeout_s) {
  char cmd[200];
  snprintf(cmd, sizeof cmd, "noise %s %s dec %d %.17g %.17g", output, source, ppd, f_lo_Hz,
           f_hi_Hz);
  const char *cmds[] = {cmd};
  int rc = run(lines, n, cmds, 1, vecs, n_vecs, v, text, timeout_s);
  spr_spice_netlist_free(lines, n);
  return rc;
}

static int check_timeout(const char *fn, double t) {
  if (!(t > 0) || !isfinite(t))
    return spr_error(SPR_EINVAL, "%s: timeout_s = %g must be finite and > 0", fn, t);
  return 0;
}

#define POSITIVE(fn, name, v)                                                             \
  do {                                                                                    \
    if (!isfinite(v) || !((v) > 0))                                                       \
      return spr_error(SPR_EINVAL, "%s: %s = %g must be finite and > 0", fn, name, (v));  \
  } while (0)
#define NONNEG(fn, name, v)                                                               \
  do {                                                                                    \
    if (!isfinite(v) || !((v) >= 0))                                                      \
      return spr_error(SPR_EINVAL, "%s: %s = %g must be finite and >= 0", fn, name, (v)); \
  } while (0)

/* Trapezoid integral of f over [t0, t1] from samples (t[k], f[k]),
 * t increasing, interpolating linearly at the ends. */
static double trapz_window(const double *t, const double *f, int n, double t0, double t1) {
  double sum = 0;
  for (int k = 0; k + 1 < n; k++) {
    double a = t[k], b = t[k + 1];
    if (b <= t0 || a >= t1 || b <= a) continue;
    double lo = a < t0 ? t0 : a, hi = b > t1 ? t1 : b;
    double fa = f[k] + (f[k + 1] - f[k]) * (lo - a) / (b - a);
    double fb = f[k] + (f[k + 1] - f[k]) * (hi - a) / (b - a);
    sum += 0.5 * (fa + fb) * (hi - lo);
  }
  return sum;
}

/* ---------------------------------------------------------------- cells */

void spr_circ_sinh_default(spr_circ_sinh *p) {
  p->i0_A = 1e-3;
  p->g0_m = 0.25e-9;
  p->v0_V = 0.25;
}

static int check_sinh(const char *fn, const spr_circ_sinh *p) {
  if (!p) return spr_error(SPR_EINVAL, "%s: sinh parameters are NULL", fn);
  POSITIVE(fn, "sinh.i0_A", p->i0_A);
  POSITIVE(fn, "sinh.g0_m", p->g0_m);
  POSITIVE(fn, "sinh.v0_V", p->v0_V);
  return 0;
}

int spr_circ_sinh_gap(const spr_circ_sinh *p, double G_S, double *gap_m) {
  static const char fn[] = "spr_circ_sinh_gap";
  int rc = check_sinh(fn, p);
  if (rc) return rc;
  if (!gap_m) return spr_error(SPR_EINVAL, "%s: gap_m is NULL", fn);
  POSITIVE(fn, "G_S", G_S);
  double gap = p->g0_m * log(p->i0_A / (G_S * p->v0_V));
  if (!isfinite(gap))
    return spr_error(SPR_EINVAL, "%s: G_S = %g S gives a non-finite gap", fn, G_S);
  *gap_m = gap;
  return 0;
}

/* The B-source expression of a sinh cell from node a to node b. */
static void emit_sinh_cell(line_buf *b, const char *name, const char *na, const char *nb,
                           const spr_circ_sinh *p, double gap) {
  emit(b, "B%s %s %s I=%.17g*exp(-%.17g/%.17g)*sinh(v(%s,%s)/%.17g)", name, na, nb, p->i0_A,
       gap, p->g0_m, na, nb, p->v0_V);
}

int spr_circ_cell_netlist(const spr_circ_sinh *p, double G_S, char ***lines, int *n_lines) {
  static const char fn[] = "spr_circ_cell_netlist";
  if (lines) *lines = NULL;
  if (n_lines) *n_lines = 0;
  if (!lines || !n_lines) return spr_error(SPR_EINVAL, "%s: NULL output", fn);
  double gap;
  int rc = spr_circ_sinh_gap(p, G_S, &gap);
  if (rc) return rc;
  line_buf b = {0};
  emit(&b, "* sprintsim cell I-V: I = I0 exp(-gap/g0) sinh(V/V0), G=%.17g S, I0=%.17g A, "
           "g0=%.17g m, V0=%.17g V, gap=%.17g m",
       G_S, p->i0_A, p->g0_m, p->v0_V, gap);
  emit(&b, ".options num_threads=1");
  emit(&b, "Vin t 0 DC 0");
  emit_sinh_cell(&b, "c", "t", "0", p, gap);
  return finish(&b, fn, lines, n_lines);
}

int spr_circ_cell_iv(const spr_circ_sinh *p, double G_S, double v_min_V, double v_max_V,
                     int n_points, double *V_out, double *I_out, char **netlist_text,
                     double timeout_s) {
  static const char fn[] = "spr_circ_cell_iv";
  if (netlist_text) *netlist_text = NULL;
  if (!V_out || !I_out) return spr_error(SPR_EINVAL, "%s: V_out or I_out is NULL", fn);
  if (n_points < 2 || n_points > 100000)
    return spr_error(SPR_EINVAL, "%s: n_points = %d must be in [2, 100000]", fn, n_points);
  if (!isfinite(v_min_V) || !isfinite(v_max_V) || !(v_min_V < v_max_V))
    return spr_error(SPR_EINVAL, "%s: sweep [%g, %g] V must be finite with v_min < v_max", fn,
                     v_min_V, v_max_V);
  int rc = check_timeout(fn, timeout_s);
  if (rc) return rc;
  char **lines = NULL;
  int n = 0;
  rc = spr_circ_cell_netlist(p, G_S, &lines, &n);
  if (rc) return rc;
  char cmd[160];
  snprintf(cmd, sizeof cmd, "dc vin %.17g %.17g %.17g", v_min_V, v_max_V,
           (v_max_V - v_min_V) / (n_points - 1));
  const char *cmds[] = {cmd};
  const char *vecs[] = {"v(t)", "vin#branch"};
  spr_spice_vec v[2];
  rc = run(lines, n, cmds, 1, vecs, 2, v, netlist_text, timeout_s);
  spr_spice_netlist_free(lines, n);
  if (rc) return rc;
  if (v[0].length != n_points || v[1].length != n_points) {
    rc = spr_error(SPR_ESPICE, "%s: '%s' gave %d points, expected n_points = %d", fn, cmd,
                   v[0].length, n_points);
  } else {
    for (int k = 0; k < n_points; k++) {
      V_out[k] = v[0].re[k];
      I_out[k] = -v[1].re[k];
    }
  }
  spr_spice_vecs_free(v, 2);
  if (rc && netlist_text) {
    free(*netlist_text);
    *netlist_text = NULL;
  }
  return rc;
}

/* ------------------------------------------------------------- crossbar */

void spr_circ_xbar_init(spr_circ_xbar *x) {
  memset(x, 0, sizeof *x);
  x->cell = SPR_CIRC_CELL_LINEAR;
  spr_circ_sinh_default(&x->sinh);
  x->temp_C = 27.0;
}

void spr_circ_pulse_default(spr_circ_pulse *p) {
  p->delay_s = 0.1e-9;
  p->rise_s = 0.1e-9;
  p->width_s = 5e-9;
  p->fall_s = 0.1e-9;
  p->t_stop_s = 8e-9;
  p->t_step_s = 5e-12;
}

static int check_pulse(const char *fn, const spr_circ_pulse *p) {
  NONNEG(fn, "pulse.delay_s", p->delay_s);
  POSITIVE(fn, "pulse.rise_s", p->rise_s);
  POSITIVE(fn, "pulse.width_s", p->width_s);
  POSITIVE(fn, "pulse.fall_s", p->fall_s);
  POSITIVE(fn, "pulse.t_step_s", p->t_step_s);
  double end = p->delay_s + p->rise_s + p->width_s + p->fall_s;
  if (!isfinite(p->t_stop_s) || p->t_stop_s < end)
    return spr_error(SPR_EINVAL, "%s: pulse.t_stop_s = %g must be >= the end of the pulse (%g s)",
                     fn, p->t_stop_s, end);
  double edge = p->rise_s < p->fall_s ? p->rise_s : p->fall_s;
  if (p->t_step_s > edge)
    return spr_error(SPR_EINVAL, "%s: pulse.t_step_s = %g must be <= the shorter edge (%g s)", fn,
                     p->t_step_s, edge);
  if (p->t_stop_s / p->t_step_s > 1e7)
    return spr_error(SPR_EINVAL, "%s: pulse.t_stop_s / t_step_s = %g steps is more than 1e7", fn,
                     p->t_stop_s / p->t_step_s);
  return 0;
}

static int check_xbar(const char *fn, const spr_circ_xbar *x) {
  if (!x) return spr_error(SPR_EINVAL, "%s: crossbar is NULL", fn);
  const int R = x->rows, C = x->cols;
  if (R < 1 || C < 1 || R > 100000 || C > 100000 || (long long)R * C > 50000000LL)
    return spr_error(SPR_EINVAL, "%s: bad shape %d x %d", fn, R, C);
  if (!x->G || !x->V) return spr_error(SPR_EINVAL, "%s: G or V is NULL", fn);
  NONNEG(fn, "r_wl", x->r_wl_ohm);
  NONNEG(fn, "r_bl", x->r_bl_ohm);
  NONNEG(fn, "c_wl_F", x->c_wl_F);
  NONNEG(fn, "c_bl_F", x->c_bl_F);
  if (x->cell != SPR_CIRC_CELL_LINEAR && x->cell != SPR_CIRC_CELL_SINH)
    return spr_error(SPR_EINVAL, "%s: cell law %d is neither LINEAR (0) nor SINH (1)", fn,
                     x->cell);
  if (x->cell == SPR_CIRC_CELL_SINH) {
    int rc = check_sinh(fn, &x->sinh);
    if (rc) return rc;
  }
  if (!isfinite(x->temp_C) || !(x->temp_C > -273.15))
    return spr_error(SPR_EINVAL, "%s: temp_C = %g must be finite and above -273.15", fn,
                     x->temp_C);
  for (int i = 0; i < R; i++)
    if (!isfinite(x->V[i]))
      return spr_error(SPR_EINVAL, "%s: V[%d] = %g is not finite", fn, i, x->V[i]);
  for (long long k = 0; k < (long long)R * C; k++) {
    double g = x->G[k];
    if (!isfinite(g) || g < 0)
      return spr_error(SPR_EINVAL, "%s: G[%lld][%lld] = %g S must be finite and >= 0", fn,
                       k / C, k % C, g);
    if (g > 0 && !isfinite(1 / g))
      return spr_error(SPR_EINVAL, "%s: G[%lld][%lld] = %g S is too small (1/G overflows)", fn,
                       k / C, k % C, g);
    if (g > 0 && x->cell == SPR_CIRC_CELL_SINH &&
        !isfinite(x->sinh.g0_m * log(x->sinh.i0_A / (g * x->sinh.v0_V))))
      return spr_error(SPR_EINVAL, "%s: G[%lld][%lld] = %g S gives a non-finite gap", fn, k / C,
                       k % C, g);
  }
  return 0;
}

/* A wire segment: a resistor, or a 0 V source (an exact short) when r is 0. */
static void emit_wire(line_buf *b, const char *name, const char *n1, const char *n2, double r) {
  if (r == 0)
    emit(b, "V%s %s %s DC 0", name, n1, n2);
  else
    emit(b, "R%s %s %s %.17g", name, n1, n2, r);
}

/* Every line of the crossbar but ".end".  ac0: give driver 0 an "AC 1"
 * (the input source of a noise analysis). */
static void xbar_lines(line_buf *b, const spr_circ_xbar *x, const spr_circ_pulse *pulse,
                       int ac0) {
  const int R = x->rows, C = x->cols;
  char n1[64], n2[64], nm[64];
  char extra[256] = "";
  if (x->cell == SPR_CIRC_CELL_SINH)
    snprintf(extra, sizeof extra, " cell=sinh I0=%.17g g0=%.17g V0=%.17g", x->sinh.i0_A,
             x->sinh.g0_m, x->sinh.v0_V);
  if (x->c_wl_F > 0 || x->c_bl_F > 0)
    snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " c_wl=%.17g c_bl=%.17g",
             x->c_wl_F, x->c_bl_F);
  emit(b, "* sprintsim crossbar %d x %d r_wl=%.17g r_bl=%.17g%s", R, C, x->r_wl_ohm, x->r_bl_ohm,
       extra);
  emit(b, ".options num_threads=1");
  emit(b, ".temp %.17g", x->temp_C);
  for (int i = 0; i < R; i++) {
    const char *ac = ac0 && i == 0 ? " AC 1" : "";
    if (pulse)
      emit(b, "Vd%d d%d 0 PULSE(0 %.17g %.17g %.17g %.17g %.17g %.17g)%s", i, i, x->V[i],
           pulse->delay_s, pulse->rise_s, pulse->fall_s, pulse->width_s,
           1e3 * pulse->t_stop_s, ac);
    else
      emit(b, "Vd%d d%d 0 DC %.17g%s", i, i, x->V[i], ac);
    snprintf(nm, sizeof nm, "dw%d", i);
    snprintf(n1, sizeof n1, "d%d", i);
    snprintf(n2, sizeof n2, "w%d_0", i);
    emit_wire(b, nm, n1, n2, x->r_wl_ohm);
  }
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) {
      double g = x->G[(size_t)i * C + j];
      snprintf(n1, sizeof n1, "w%d_%d", i, j);
      snprintf(n2, sizeof n2, "b%d_%d", i, j);
      if (g > 0 && x->cell == SPR_CIRC_CELL_LINEAR)
        emit(b, "Rc%d_%d %s %s %.17g", i, j, n1, n2, 1 / g);
      if (g > 0 && x->cell == SPR_CIRC_CELL_SINH) {
        snprintf(nm, sizeof nm, "c%d_%d", i, j);
        emit_sinh_cell(b, nm, n1, n2, &x->sinh,
                       x->sinh.g0_m * log(x->sinh.i0_A / (g * x->sinh.v0_V)));
      }
      if (x->c_wl_F > 0) emit(b, "Cw%d_%d %s 0 %.17g", i, j, n1, x->c_wl_F);
      if (x->c_bl_F > 0) emit(b, "Cb%d_%d %s 0 %.17g", i, j, n2, x->c_bl_F);
      if (j + 1 < C) {
        snprintf(nm, sizeof nm, "w%d_%d", i, j);
        snprintf(n2, sizeof n2, "w%d_%d", i, j + 1);
        emit_wire(b, nm, n1, n2, x->r_wl_ohm);
      }
      if (i + 1 < R) {
        snprintf(nm, sizeof nm, "b%d_%d", i, j);
        snprintf(n1, sizeof n1, "b%d_%d", i, j);
        snprintf(n2, sizeof n2, "b%d_%d", i + 1, j);
        emit_wire(b, nm, n1, n2, x->r_bl_ohm);
      }
    }
  for (int j = 0; j < C; j++) {
    snprintf(nm, sizeof nm, "sw%d", j);
    snprintf(n1, sizeof n1, "b%d_%d", R - 1, j);
    snprintf(n2, sizeof n2, "s%d", j);
    emit_wire(b, nm, n1, n2, x->r_bl_ohm);
    emit(b, "Vs%d s%d 0 DC 0", j, j);
  }
}

int spr_circ_xbar_netlist(const spr_circ_xbar *x, const spr_circ_pulse *pulse, char ***lines,
                          int *n_lines) {
  static const char fn[] = "spr_circ_xbar_netlist";
  if (lines) *lines = NULL;
  if (n_lines) *n_lines = 0;
  if (!lines || !n_lines) return spr_error(SPR_EINVAL, "%s: NULL output", fn);
  int rc = check_xbar(fn, x);
  if (!rc && pulse) rc = check_pulse(fn, pulse);
  if (rc) return rc;
  line_buf b = {0};
  xbar_lines(&b, x, pulse, 0);
  return finish(&b, fn, lines, n_lines);
}

/* Names "<fmt with %d>" for k = 0..n-1 in one block (free with free()). */
static char **names(const char *fmt, int n, int offset) {
  char **v = malloc((size_t)n * sizeof *v + (size_t)n * 40);
  if (!v) return NULL;
  char *s = (char *)(v + n);
  for (int k = 0; k < n; k++) {
    v[k] = s + (size_t)k * 40;
    snprintf(v[k], 40, fmt, k + offset);
  }
  return v;
}

int spr_circ_xbar_currents(const spr_circ_xbar *x, double *I_A, char **netlist_text,
                           double timeout_s) {
  static const char fn[] = "spr_circ_xbar_currents";
  if (netlist_text) *netlist_text = NULL;
  if (!I_A) return spr_error(SPR_EINVAL, "%s: I_A is NULL", fn);
  int rc = check_timeout(fn, timeout_s);
  if (rc) return rc;
  char **lines = NULL;
  int n = 0;
  rc = spr_circ_xbar_netlist(x, NULL, &lines, &n);
  if (rc) return rc;
  const int C = x->cols;
  char **vn = names("vs%d#branch", C, 0);
  spr_spice_vec *v = calloc((size_t)C, sizeof *v);
  if (!vn || !v) {
    rc = spr_error(SPR_ENOMEM, "%s: %d vectors", fn, C);
  } else {
    const char *cmds[] = {"op"};
    rc = run(lines, n, cmds, 1, (const char *const *)vn, C, v, netlist_text, timeout_s);
    for (int j = 0; j < C && rc == 0; j++) I_A[j] = v[j].re[0];
    if (rc == 0) spr_spice_vecs_free(v, C);
  }
  free(v);
  free(vn);
  spr_spice_netlist_free(lines, n);
  return rc;
}

static int check_band(const char *fn, double f_lo, double f_hi, int ppd) {
  POSITIVE(fn, "f_lo_Hz", f_lo);
  if (!isfinite(f_hi) || !(f_hi > f_lo))
    return spr_error(SPR_EINVAL, "%s: f_hi_Hz = %g must be finite and > f_lo_Hz = %g", fn, f_hi,
                     f_lo);
  if (ppd < 1 || ppd > 1000)
    return spr_error(SPR_EINVAL, "%s: points_per_decade = %d must be in [1, 1000]", fn, ppd);
  return 0;
}

int spr_circ_xbar_noise(const spr_circ_xbar *x, int col, double f_lo_Hz, double f_hi_Hz,
                        int points_per_decade, double *i_rms_A, char **netlist_text,
                        double timeout_s) {
  static const char fn[] = "spr_circ_xbar_noise";
  if (netlist_text) *netlist_text = NULL;
  if (!i_rms_A) return spr_error(SPR_EINVAL, "%s: i_rms_A is NULL", fn);
  int rc = check_xbar(fn, x);
  if (!rc) rc = check_band(fn, f_lo_Hz, f_hi_Hz, points_per_decade);
  if (!rc) rc = check_timeout(fn, timeout_s);
  if (rc) return rc;
  if (x->cell != SPR_CIRC_CELL_LINEAR)
    return spr_error(SPR_EINVAL, "%s: cell law %d (sinh): ngspice's B-source cells are "
                                 "noiseless, use linear cells", fn, x->cell);
  if (col < 0 || col >= x->cols)
    return spr_error(SPR_EINVAL, "%s: col = %d is outside [0, %d)", fn, col, x->cols);
  line_buf b = {0};
  xbar_lines(&b, x, NULL, 1);
  emit(&b, "Hn nout 0 vs%d 1", col);
  char **lines = NULL;
  int n = 0;
  rc = finish(&b, fn, &lines, &n);
  if (rc) return rc;
  const char *vecs[] = {"onoise_total"};
  spr_spice_vec v[1];
  rc = run_noise(lines, n, "v(nout)", "vd0", points_per_decade, f_lo_Hz, f_hi_Hz, vecs, 1, v,
                 netlist_text, timeout_s);
  if (rc) return rc;
  *i_rms_A = v[0].re[0];
  spr_spice_vecs_free(v, 1);
  return 0;
}

/* Energy of grounded sources from the vectors time, then (v(node), branch)
 * pairs. */
static double energy_of(const spr_spice_vec *v, int n_sources, double t0, double t1,
                        double *p) {
  const int n = v[0].length;
  for (int k = 0; k < n; k++) p[k] = 0;
  for (int s = 0; s < n_sources; s++) {
    const double *u = v[1 + 2 * s].re, *i = v[2 + 2 * s].re;
    for (int k = 0; k < n; k++) p[k] -= u[k] * i[k];
  }
  return trapz_window(v[0].re, p, n, t0, t1);
}

/* Run a transient and integrate the power of grounded sources. */
static int source_energy(char **lines, int n_lines, const char *tran_cmd,
                         const char *const *sources, const char *const *nodes, int n_sources,
                         double t0, double t1, double *energy, char **text, double timeout_s) {
  static const char fn[] = "spr_circ_source_energy";
  const int nv = 1 + 2 * n_sources;
  size_t bytes = sizeof "time";
  for (int s = 0; s < n_sources; s++) {
    if (!sources[s] || !nodes[s] || !*sources[s] || !*nodes[s] ||
        strlen(sources[s]) + 8 >= SPR_SPICE_CMD_MAX || strlen(nodes[s]) + 4 >= SPR_SPICE_CMD_MAX)
      return spr_error(SPR_EINVAL, "%s: source or node name %d is NULL, empty or too long", fn,
                       s);
    bytes += strlen(sources[s]) + sizeof "#branch" + strlen(nodes[s]) + sizeof "v()";
  }
  /* the pointers, then the names "time", "v(node)", "source#branch", ... */
  char **vn = malloc((size_t)nv * sizeof *vn + bytes);
  spr_spice_vec *v = calloc((size_t)nv, sizeof *v);
  int rc = 0;
  if (!vn || !v) {
    rc = spr_error(SPR_ENOMEM, "%s: %d vectors", fn, nv);
  } else {
    char *q = (char *)(vn + nv);
    vn[0] = q;
    q += sprintf(q, "time") + 1;
    for (int s = 0; s < n_sources; s++) {
      vn[1 + 2 * s] = q;
      q += sprintf(q, "v(%s)", nodes[s]) + 1;
      vn[2 + 2 * s] = q;
      q += sprintf(q, "%s#branch", sources[s]) + 1;
    }
  }
  if (!rc) {
    const char *cmds[] = {tran_cmd};
    rc = run(lines, n_lines, cmds, 1, (const char *const *)vn, nv, v, text, timeout_s);
  }
  if (!rc) {
    int n = v[0].length;
    for (int k = 1; k < nv && !rc; k++)
      if (v[k].length != n || v[k].is_complex)
        rc = spr_error(SPR_ESPICE, "%s: vector '%s' has %d points, time has %d", fn, vn[k],
                       v[k].length, n);
    if (!rc && (v[0].re[0] > t0 || v[0].re[n - 1] < t1 * (1 - 1e-12)))
      rc = spr_error(SPR_ESPICE, "%s: '%s' covers [%g, %g] s, not the window [%g, %g] s", fn,
                     tran_cmd, v[0].re[0], v[0].re[n - 1], t0, t1);
    double *p = rc ? NULL : malloc((size_t)n * sizeof *p);
    if (!rc && !p) rc = spr_error(SPR_ENOMEM, "%s: %d points", fn, n);
    if (!rc) *energy = energy_of(v, n_sources, t0, t1, p);
    free(p);
    spr_spice_vecs_free(v, nv);
    if (rc && text) {
      free(*text);
      *text = NULL;
    }
  }
  free(v);
  free(vn);
  return rc;
}

int spr_circ_source_energy(const char *const *lines, int n_lines, const char *tran_cmd,
                           const char *const *sources, const char *const *nodes, int n_sources,
                           double t0_s, double t1_s, double *energy_J, double timeout_s) {
  static const char fn[] = "spr_circ_source_energy";
  if (!energy_J || !tran_cmd || !sources || !nodes)
    return spr_error(SPR_EINVAL, "%s: NULL argument", fn);
  if (n_sources < 1 || n_sources > 100000)
    return spr_error(SPR_EINVAL, "%s: n_sources = %d must be in [1, 100000]", fn, n_sources);
  if (strncmp(tran_cmd, "tran ", 5) != 0)
    return spr_error(SPR_EINVAL, "%s: tran_cmd '%s' is not a 'tran' command", fn, tran_cmd);
  if (!isfinite(t0_s) || !isfinite(t1_s) || !(t0_s >= 0) || !(t1_s > t0_s))
    return spr_error(SPR_EINVAL, "%s: window [%g, %g] s needs 0 <= t0 < t1", fn, t0_s, t1_s);
  return source_energy((char **)lines, n_lines, tran_cmd, sources, nodes, n_sources, t0_s,
                       t1_s, energy_J, NULL, timeout_s);
}

int spr_circ_xbar_read_energy(const spr_circ_xbar *x, const spr_circ_pulse *pulse,
                              double *energy_J, char **netlist_text, double timeout_s) {
  static const char fn[] = "spr_circ_xbar_read_energy";
  if (netlist_text) *netlist_text = NULL;
  if (!energy_J || !pulse) return spr_error(SPR_EINVAL, "%s: energy_J or pulse is NULL", fn);
  int rc = check_timeout(fn, timeout_s);
  if (rc) return rc;
  char **lines = NULL;
  int n = 0;
  rc = spr_circ_xbar_netlist(x, pulse, &lines, &n);
  if (rc) return rc;
  const int R = x->rows;
  char **src = names("vd%d", R, 0), **nod = names("d%d", R, 0);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "tran %.17g %.17g 0 %.17g", pulse->t_step_s, pulse->t_stop_s,
           pulse->t_step_s);
  if (!src || !nod)
    rc = spr_error(SPR_ENOMEM, "%s: %d source names", fn, R);
  else
    rc = source_energy(lines, n, cmd, (const char *const *)src, (const char *const *)nod, R, 0,
                       pulse->t_stop_s, energy_J, netlist_text, timeout_s);
  free(src);
  free(nod);
  spr_spice_netlist_free(lines, n);
  return rc;
}

/* ----------------------------------------------------------- comparator */

void spr_circ_cmp_default(spr_circ_cmp *p) {
  memset(p, 0, sizeof *p);
  p->vdd_V = 1.8;
  p->vcm_V = 0.8;
  p->vbn_V = 0.7;
  p->r_sense_ohm = 20e3;
  p->c_load_F = 5e-15;
  static const double w[SPR_CIRC_CMP_N_MOS] = {4e-6, 4e-6, 4e-6, 4e-6, 2e-6, 1e-6, 2.5e-6};
  static const double l[SPR_CIRC_CMP_N_MOS] = {0.5e-6, 0.5e-6, 0.5e-6, 0.5e-6,
                                              1e-6,   0.18e-6, 0.18e-6};
  memcpy(p->w_m, w, sizeof w);
  memcpy(p->l_m, l, sizeof l);
  p->vto_n_V = 0.45;
  p->vto_p_V = -0.45;
  p->kp_n_AV2 = 200e-6;
  p->kp_p_AV2 = 80e-6;
  p->lambda_n_V = 0.05;
  p->lambda_p_V = 0.05;
  p->gamma_sqrtV = 0.4;
  p->phi_V = 0.8;
  p->tox_m = 4e-9;
  p->cgso_Fm = 0.3e-9;
  p->cgdo_Fm = 0.3e-9;
  p->avt_n_Vm = 3.5e-9;
  p->avt_p_Vm = 3.5e-9;
  p->temp_C = 27.0;
}

void spr_circ_step_default(spr_circ_step *s) {
  s->t0_s = 2e-9;
  s->rise_s = 10e-12;
  s->window_s = 10e-9;
  s->t_step_s = 5e-12;
}

/* 1 for the PMOS transistors M3, M4, M7. */
static int is_pmos(int k) { return k == 2 || k == 3 || k == 6; }

static int check_cmp(const char *fn, const spr_circ_cmp *p, const double *dvto) {
  if (!p) return spr_error(SPR_EINVAL, "%s: comparator parameters are NULL", fn);
  POSITIVE(fn, "vdd_V", p->vdd_V);
  POSITIVE(fn, "vcm_V", p->vcm_V);
  POSITIVE(fn, "vbn_V", p->vbn_V);
  POSITIVE(fn, "r_sense_ohm", p->r_sense_ohm);
  NONNEG(fn, "c_load_F", p->c_load_F);
  for (int k = 0; k < SPR_CIRC_CMP_N_MOS; k++) {
    if (!isfinite(p->w_m[k]) || !(p->w_m[k] > 0) || !isfinite(p->l_m[k]) || !(p->l_m[k] > 0))
      return spr_error(SPR_EINVAL, "%s: M%d W = %g m, L = %g m must be finite and > 0", fn,
                       k + 1, p->w_m[k], p->l_m[k]);
    if (dvto && !isfinite(dvto[k]))
      return spr_error(SPR_EINVAL, "%s: dvto_V[%d] (M%d) = %g is not finite", fn, k, k + 1,
                       dvto[k]);
  }
  POSITIVE(fn, "vto_n_V", p->vto_n_V);
  if (!isfinite(p->vto_p_V) || !(p->vto_p_V < 0))
    return spr_error(SPR_EINVAL, "%s: vto_p_V = %g must be finite and < 0", fn, p->vto_p_V);
  POSITIVE(fn, "kp_n_AV2", p->kp_n_AV2);
  POSITIVE(fn, "kp_p_AV2", p->kp_p_AV2);
  NONNEG(fn, "lambda_n_V", p->lambda_n_V);
  NONNEG(fn, "lambda_p_V", p->lambda_p_V);
  NONNEG(fn, "gamma_sqrtV", p->gamma_sqrtV);
  POSITIVE(fn, "phi_V", p->phi_V);
  POSITIVE(fn, "tox_m", p->tox_m);
  NONNEG(fn, "cgso_Fm", p->cgso_Fm);
  NONNEG(fn, "cgdo_Fm", p->cgdo_Fm);
  NONNEG(fn, "avt_n_Vm", p->avt_n_Vm);
  NONNEG(fn, "avt_p_Vm", p->avt_p_Vm);
  if (!isfinite(p->temp_C) || !(p->temp_C > -273.15))
    return spr_error(SPR_EINVAL, "%s: temp_C = %g must be finite and above -273.15", fn,
                     p->temp_C);
  return 0;
}

int spr_circ_cmp_mismatch(const spr_circ_cmp *p, uint64_t seed, int sample,
                          double dvto_V[SPR_CIRC_CMP_N_MOS]) {
  static const char fn[] = "spr_circ_cmp_mismatch";
  int rc = check_cmp(fn, p, NULL);
  if (rc) return rc;
  if (!dvto_V) return spr_error(SPR_EINVAL, "%s: dvto_V is NULL", fn);
  if (sample < 0) return spr_error(SPR_EINVAL, "%s: sample = %d must be >= 0", fn, sample);
  gsl_rng *r = spr_rng_alloc();
  if (!r) return spr_error(SPR_ENOMEM, "%s: generator", fn);
  spr_rng_key(r, seed, -1, -1, sample, SPR_STREAM_SPICE_MC);
  for (int k = 0; k < SPR_CIRC_CMP_N_MOS; k++) {
    double avt = is_pmos(k) ? p->avt_p_Vm : p->avt_n_Vm;
    dvto_V[k] = avt / sqrt(p->w_m[k] * p->l_m[k]) * spr_rng_normal(r);
  }
  gsl_rng_free(r);
  return 0;
}

/* The comparator netlist; icol: the value of Icol after its nodes ("DC 1e-05",
 * "DC 1e-05 AC 1", "PWL(...)"). */
static int cmp_lines(const char *fn, const spr_circ_cmp *p, const double *dvto,
                     const char *icol, double i_ref, char ***lines, int *n_lines) {
  /* drain gate source bulk of M1..M7 */
  static const char *const nodes[SPR_CIRC_CMP_N_MOS] = {
      "x inn tail 0", "o1 inp tail 0", "x x vdd vdd", "o1 x vdd vdd",
      "tail bn 0 0",  "out o1 0 0",    "out o1 vdd vdd"};
  line_buf b = {0};
  emit(&b, "* sprintsim current comparator: sense resistors, 5T OTA, inverter; VDD=%.17g "
           "R_s=%.17g",
       p->vdd_V, p->r_sense_ohm);
  emit(&b, ".options num_threads=1");
  emit(&b, ".temp %.17g", p->temp_C);
  emit(&b, "Vdd vdd 0 DC %.17g", p->vdd_V);
  emit(&b, "Vcm cm 0 DC %.17g", p->vcm_V);
  emit(&b, "Vbn bn 0 DC %.17g", p->vbn_V);
  emit(&b, "Icol 0 inp %s", icol);
  emit(&b, "Iref 0 inn DC %.17g", i_ref);
  emit(&b, "Rsp inp cm %.17g", p->r_sense_ohm);
  emit(&b, "Rsn inn cm %.17g", p->r_sense_ohm);
  for (int k = 0; k < SPR_CIRC_CMP_N_MOS; k++)
    emit(&b, "M%d %s mod%d W=%.17g L=%.17g", k + 1, nodes[k], k + 1, p->w_m[k], p->l_m[k]);
  if (p->c_load_F > 0) emit(&b, "Cl out 0 %.17g", p->c_load_F);
  for (int k = 0; k < SPR_CIRC_CMP_N_MOS; k++) {
    int pm = is_pmos(k);
    double dv = dvto ? dvto[k] : 0;
    emit(&b, ".model mod%d %s (level=1 vto=%.17g kp=%.17g lambda=%.17g gamma=%.17g phi=%.17g "
             "tox=%.17g cgso=%.17g cgdo=%.17g)",
         k + 1, pm ? "pmos" : "nmos", (pm ? p->vto_p_V : p->vto_n_V) + dv,
         pm ? p->kp_p_AV2 : p->kp_n_AV2, pm ? p->lambda_p_V : p->lambda_n_V, p->gamma_sqrtV,
         p->phi_V, p->tox_m, p->cgso_Fm, p->cgdo_Fm);
  }
  return finish(&b, fn, lines, n_lines);
}

int spr_circ_cmp_netlist(const spr_circ_cmp *p, const double *dvto_V, double i_col_A,
                         double i_ref_A, char ***lines, int *n_lines) {
  static const char fn[] = "spr_circ_cmp_netlist";
  if (lines) *lines = NULL;
  if (n_lines) *n_lines = 0;
  if (!lines || !n_lines) return spr_error(SPR_EINVAL, "%s: NULL output", fn);
  int rc = check_cmp(fn, p, dvto_V);
  if (rc) return rc;
  NONNEG(fn, "i_col_A", i_col_A);
  NONNEG(fn, "i_ref_A", i_ref_A);
  char icol[64];
  snprintf(icol, sizeof icol, "DC %.17g", i_col_A);
  return cmp_lines(fn, p, dvto_V, icol, i_ref_A, lines, n_lines);
}

/* First k with f[k] < level <= f[k+1]; -1 if none. */
static int rising_crossing(const double *f, int n, int from, double level) {
  for (int k = from; k + 1 < n; k++)
    if (f[k] < level && f[k + 1] >= level) return k;
  return -1;
}

/* One DC sweep of Icol over [lo, hi] in `steps` steps: the interpolated
 * current where v(out) rises through VDD/2, and its bracket. */
static int trip_sweep(const char *fn, const spr_circ_cmp *p, const double *dvto, double i_ref,
                      double lo, double hi, int steps, double *trip, double *blo, double *bhi,
                      char **text, double timeout_s) {
  char **lines = NULL;
  int n = 0;
  char icol[64];
  snprintf(icol, sizeof icol, "DC %.17g", lo);
  int rc = cmp_lines(fn, p, dvto, icol, i_ref, &lines, &n);
  if (rc) return rc;
  char cmd[200];
  snprintf(cmd, sizeof cmd, "dc icol %.17g %.17g %.17g", lo, hi, (hi - lo) / steps);
  const char *cmds[] = {cmd};
  const char *vecs[] = {"i-sweep", "v(out)"};
  spr_spice_vec v[2];
  rc = run(lines, n, cmds, 1, vecs, 2, v, text, timeout_s);
  spr_spice_netlist_free(lines, n);
  if (rc) return rc;
  const double half = 0.5 * p->vdd_V;
  const int m = v[0].length < v[1].length ? v[0].length : v[1].length;
  int k = rising_crossing(v[1].re, m, 0, half);
  if (k < 0) {
    rc = spr_error(SPR_ESPICE, "%s: v(out) does not rise through VDD/2 = %g V for Icol in "
                               "[%g, %g] A (v(out) from %g to %g V; i_ref = %g A)",
                   fn, half, lo, hi, v[1].re[0], v[1].re[m - 1], i_ref);
  } else {
    const double *x = v[0].re, *y = v[1].re;
    *blo = x[k];
    *bhi = x[k + 1];
    *trip = x[k] + (x[k + 1] - x[k]) * (half - y[k]) / (y[k + 1] - y[k]);
  }
  spr_spice_vecs_free(v, 2);
  if (rc && text) {
    free(*text);
    *text = NULL;
  }
  return rc;
}

static int trip(const char *fn, const spr_circ_cmp *p, const double *dvto, double i_ref,
                double span, double *i_trip, char **text, double timeout_s) {
  int rc = check_cmp(fn, p, dvto);
  if (!rc) rc = check_timeout(fn, timeout_s);
  if (rc) return rc;
  POSITIVE(fn, "i_ref_A", i_ref);
  if (!isfinite(span) || !(span > 0) || !(span <= i_ref))
    return spr_error(SPR_EINVAL, "%s: span_A = %g must be in (0, i_ref_A = %g]", fn, span, i_ref);
  double t, lo, hi;
  rc = trip_sweep(fn, p, dvto, i_ref, i_ref - span, i_ref + span, 200, &t, &lo, &hi, NULL,
                  timeout_s);
  if (rc) return rc;
  rc = trip_sweep(fn, p, dvto, i_ref, lo, hi, 100, &t, &lo, &hi, text, timeout_s);
  if (rc) return rc;
  *i_trip = t;
  return 0;
}

int spr_circ_cmp_trip(const spr_circ_cmp *p, const double *dvto_V, double i_ref_A,
                      double span_A, double *i_trip_A, char **netlist_text, double timeout_s) {
  static const char fn[] = "spr_circ_cmp_trip";
  if (netlist_text) *netlist_text = NULL;
  if (!i_trip_A) return spr_error(SPR_EINVAL, "%s: i_trip_A is NULL", fn);
  return trip(fn, p, dvto_V, i_ref_A, span_A, i_trip_A, netlist_text, timeout_s);
}

int spr_circ_cmp_noise(const spr_circ_cmp *p, const double *dvto_V, double i_ref_A,
                       double span_A, double f_lo_Hz, double f_hi_Hz, int points_per_decade,
                       double *i_trip_A, double *i_rms_A, char **netlist_text,
                       double timeout_s) {
  static const char fn[] = "spr_circ_cmp_noise";
  if (netlist_text) *netlist_text = NULL;
  if (!i_rms_A) return spr_error(SPR_EINVAL, "%s: i_rms_A is NULL", fn);
  int rc = check_band(fn, f_lo_Hz, f_hi_Hz, points_per_decade);
  if (rc) return rc;
  double it = 0;
  rc = trip(fn, p, dvto_V, i_ref_A, span_A, &it, NULL, timeout_s);
  if (rc) return rc;
  char **lines = NULL;
  int n = 0;
  char icol[80];
  snprintf(icol, sizeof icol, "DC %.17g AC 1", it);
  rc = cmp_lines(fn, p, dvto_V, icol, i_ref_A, &lines, &n);
  if (rc) return rc;
  const char *vecs[] = {"inoise_total"};
  spr_spice_vec v[1];
  rc = run_noise(lines, n, "v(o1)", "icol", points_per_decade, f_lo_Hz, f_hi_Hz, vecs, 1, v,
                 netlist_text, timeout_s);
  if (rc) return rc;
  *i_rms_A = v[0].re[0];
  if (i_trip_A) *i_trip_A = it;
  spr_spice_vecs_free(v, 1);
  return 0;
}

void spr_circ_cmp_spectrum_free(spr_circ_cmp_spectrum *s) {
  if (!s) return;
  free(s->f_Hz);
  free(s->onoise_V);
  free(s->inoise_A);
  memset(s, 0, sizeof *s);
}

int spr_circ_cmp_noise_spectrum(const spr_circ_cmp *p, const double *dvto_V, double i_ref_A,
                                double i_col_A, double f_lo_Hz, double f_hi_Hz,
                                int points_per_decade, spr_circ_cmp_spectrum *out,
                                char **netlist_text, double timeout_s) {
  static const char fn[] = "spr_circ_cmp_noise_spectrum";
  if (netlist_text) *netlist_text = NULL;
  if (!out) return spr_error(SPR_EINVAL, "%s: out is NULL", fn);
  memset(out, 0, sizeof *out);
  int rc = check_band(fn, f_lo_Hz, f_hi_Hz, points_per_decade);
  if (!rc) rc = check_timeout(fn, timeout_s);
  if (rc) return rc;
  if (!(i_col_A >= 0) || !isfinite(i_col_A))
    return spr_error(SPR_EINVAL, "%s: i_col_A = %g is not finite and >= 0", fn, i_col_A);
  char **lines = NULL;
  int n = 0;
  char icol[80];
  snprintf(icol, sizeof icol, "DC %.17g AC 1", i_col_A);
  rc = cmp_lines(fn, p, dvto_V, icol, i_ref_A, &lines, &n);
  if (rc) return rc;
  const char *vecs[] = {"noise1.frequency", "noise1.onoise_spectrum", "noise1.inoise_spectrum",
                        "noise2.onoise_total", "noise2.inoise_total"};
  spr_spice_vec v[5];
  rc = run_noise(lines, n, "v(o1)", "icol", points_per_decade, f_lo_Hz, f_hi_Hz, vecs, 5, v,
                 netlist_text, timeout_s);
  if (rc) return rc;
  if (v[1].length != v[0].length || v[2].length != v[0].length || v[0].length < 2) {
    spr_spice_vecs_free(v, 5);
    if (netlist_text) {
      free(*netlist_text);
      *netlist_text = NULL;
    }
    return spr_error(SPR_ESPICE, "%s: spectra of %d, %d and %d points", fn, v[0].length,
                     v[1].length, v[2].length);
  }
  out->n = v[0].length;
  out->f_Hz = v[0].re;
  out->onoise_V = v[1].re;
  out->inoise_A = v[2].re;
  v[0].re = v[1].re = v[2].re = NULL;
  out->onoise_total_V = v[3].re[0];
  out->inoise_total_A = v[4].re[0];
  spr_spice_vecs_free(v, 5);
  return 0;
}

int spr_circ_cmp_step(const spr_circ_cmp *p, const double *dvto_V, double i_ref_A,
                      double i_center_A, double overdrive_A, const spr_circ_step *s,
                      spr_circ_cmp_decision *out, char **netlist_text, double timeout_s) {
  static const char fn[] = "spr_circ_cmp_step";
  if (netlist_text) *netlist_text = NULL;
  if (!s || !out) return spr_error(SPR_EINVAL, "%s: step or out is NULL", fn);
  int rc = check_cmp(fn, p, dvto_V);
  if (!rc) rc = check_timeout(fn, timeout_s);
  if (rc) return rc;
  NONNEG(fn, "i_ref_A", i_ref_A);
  POSITIVE(fn, "overdrive_A", overdrive_A);
  if (!isfinite(i_center_A) || !(i_center_A - overdrive_A >= 0))
    return spr_error(SPR_EINVAL, "%s: i_center_A = %g must be finite and >= overdrive_A = %g",
                     fn, i_center_A, overdrive_A);
  POSITIVE(fn, "step.t0_s", s->t0_s);
  POSITIVE(fn, "step.rise_s", s->rise_s);
  POSITIVE(fn, "step.t_step_s", s->t_step_s);
  if (!isfinite(s->window_s) || !(s->window_s > s->rise_s))
    return spr_error(SPR_EINVAL, "%s: step.window_s = %g must be finite and > rise_s = %g", fn,
                     s->window_s, s->rise_s);
  const double t_stop = s->t0_s + s->window_s;
  if (t_stop / s->t_step_s > 1e7)
    return spr_error(SPR_EINVAL, "%s: (t0 + window) / t_step = %g steps is more than 1e7", fn,
                     t_stop / s->t_step_s);
  const double lo = i_center_A - overdrive_A, hi = i_center_A + overdrive_A;
  char icol[300];
  snprintf(icol, sizeof icol, "PWL(0 %.17g %.17g %.17g %.17g %.17g)", lo, s->t0_s, lo,
           s->t0_s + s->rise_s, hi);
  char **lines = NULL;
  int n = 0;
  rc = cmp_lines(fn, p, dvto_V, icol, i_ref_A, &lines, &n);
  if (rc) return rc;
  char cmd[200];
  snprintf(cmd, sizeof cmd, "tran %.17g %.17g 0 %.17g", s->t_step_s, t_stop, s->t_step_s);
  const char *cmds[] = {cmd};
  const char *vecs[] = {"time", "v(vdd)", "vdd#branch", "v(out)"};
  spr_spice_vec v[4];
  rc = run(lines, n, cmds, 1, vecs, 4, v, netlist_text, timeout_s);
  spr_spice_netlist_free(lines, n);
  if (rc) return rc;
  const int m = v[0].length;
  const double *t = v[0].re, *y = v[3].re;
  const double half = 0.5 * p->vdd_V;
  for (int k = 1; k < 4 && !rc; k++)
    if (v[k].length != m)
      rc = spr_error(SPR_ESPICE, "%s: vector %s has %d points, time has %d", fn, vecs[k],
                     v[k].length, m);
  int k0 = 0; /* last point at or before t0 */
  while (!rc && k0 + 1 < m && t[k0 + 1] <= s->t0_s) k0++;
  if (!rc && y[k0] >= half)
    rc = spr_error(SPR_ESPICE, "%s: v(out) = %g V is not below VDD/2 before the step (Icol = "
                               "%g A; is the offset larger than the overdrive %g A?)",
                   fn, y[k0], lo, overdrive_A);
  int k = rc ? -1 : rising_crossing(y, m, k0, half);
  if (!rc && k < 0)
    rc = spr_error(SPR_ESPICE, "%s: v(out) does not reach VDD/2 within %g s of the step to "
                               "Icol = %g A (overdrive %g A)",
                   fn, s->window_s, hi, overdrive_A);
  if (!rc) {
    double tc = t[k] + (t[k + 1] - t[k]) * (half - y[k]) / (y[k + 1] - y[k]);
    out->delay_s = tc - (s->t0_s + 0.5 * s->rise_s);
    double *pw = malloc((size_t)m * sizeof *pw);
    if (!pw) {
      rc = spr_error(SPR_ENOMEM, "%s: %d points", fn, m);
    } else {
      out->energy_J = energy_of(v, 1, s->t0_s, t_stop, pw);
      /* the power just before the step, interpolated at t0 */
      double p0 = pw[k0];
      if (k0 + 1 < m && t[k0 + 1] > t[k0])
        p0 += (pw[k0 + 1] - pw[k0]) * (s->t0_s - t[k0]) / (t[k0 + 1] - t[k0]);
      out->p_static_W = p0;
      free(pw);
    }
  }
  spr_spice_vecs_free(v, 4);
  if (rc && netlist_text) {
    free(*netlist_text);
    *netlist_text = NULL;
  }
  return rc;
}
