/* spr_fit.c - least-squares fits with confidence intervals and fit
 * quality (definitions in spr_fit.h; models in docs/calibration.md). */
#include "config.h"
#include "spr_fit.h"
#include "spr_error.h"
#include "spr_xbar.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_multifit.h>
#include <gsl/gsl_multifit_nlinear.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GSL's default error handler aborts; the library never exits, so every
 * GSL call here runs with the handler off and returns a status instead. */
typedef struct {
  gsl_error_handler_t *old;
} gsl_quiet;
static void gsl_quiet_on(gsl_quiet *q) { q->old = gsl_set_error_handler_off(); }
static void gsl_quiet_off(const gsl_quiet *q) { gsl_set_error_handler(q->old); }

void spr_fit_opts_default(spr_fit_opts *o) {
  o->max_iter = 200;
  o->xtol = 1e-10;
  o->gtol = 1e-12;
  o->ftol = 1e-12;
  o->sigma_abs = 0;
}

/* Every x[i] finite (and > 0 when positive is set). */
static int check_array(const char *model, const char *what, const double *x, size_t n,
                       int positive) {
  if (!x) return spr_error(SPR_EINVAL, "%s: %s is NULL", model, what);
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(x[i]))
      return spr_error(SPR_EINVAL, "%s: %s[%zu] = %g is not finite", model, what, i, x[i]);
    if (positive && !(x[i] > 0))
      return spr_error(SPR_EINVAL, "%s: %s[%zu] = %g is not > 0", model, what, i, x[i]);
  }
  return 0;
}

static int check_count(const char *model, size_t n, int p) {
  if (p < 1 || p > SPR_FIT_MAXP)
    return spr_error(SPR_EINVAL, "%s: %d parameters (1..%d)", model, p, SPR_FIT_MAXP);
  if (n <= (size_t)p)
    return spr_error(SPR_EINVAL, "%s: %zu data points for %d parameters (need at least %d)", model,
                     n, p, p + 1);
  return 0;
}

static void set_names(spr_fit_result *res, const char *model, const char *const *names, int p) {
  snprintf(res->model, sizeof res->model, "%s", model);
  for (int k = 0; k < p; k++) {
    if (names && names[k]) snprintf(res->name[k], SPR_FIT_NAME, "%s", names[k]);
    else snprintf(res->name[k], SPR_FIT_NAME, "b%d", k);
  }
}

/* Fill the quality fields of res from data y, model values f, inverse
 * sigmas isig (NULL: 1) and the unscaled covariance (J^T W J)^-1 in
 * res->cov; rescale the covariance unless sigma_abs; set the CIs. */
static int finish(spr_fit_result *res, const double *y, const double *f, const double *isig,
                  size_t n, int p, int sigma_abs) {
  double sw = 0, swy = 0, ss = 0, chi2 = 0;
  for (size_t i = 0; i < n; i++) {
    const double w = isig ? isig[i] * isig[i] : 1.0, r = y[i] - f[i];
    sw += w;
    swy += w * y[i];
    ss += r * r;
    chi2 += w * r * r;
  }
  const double ybar = swy / sw;
  double tot = 0;
  for (size_t i = 0; i < n; i++) {
    const double w = isig ? isig[i] * isig[i] : 1.0;
    tot += w * (y[i] - ybar) * (y[i] - ybar);
  }
  res->n = n;
  res->p = p;
  res->dof = (int)(n - (size_t)p);
  res->rms = sqrt(ss / (double)n);
  res->chi2 = chi2;
  res->chi2_dof = chi2 / res->dof;
  res->r2 = tot > 0 ? 1.0 - chi2 / tot : (chi2 == 0 ? 1.0 : 0.0);
  /* (J^T W J)^-1 has a zero (excluded, dependent column) or non-finite
   * diagonal entry when the data cannot determine that parameter */
  for (int k = 0; k < p; k++) {
    const double v = res->cov[k * p + k];
    if (!(v > 0) || !isfinite(v))
      return spr_error(SPR_EINVAL, "%s: parameter '%s' is not determined by the data (its column "
                       "of the Jacobian is zero or dependent on the others)", res->model, res->name[k]);
  }
  const double s2 = sigma_abs ? 1.0 : res->chi2_dof;
  const double t = gsl_cdf_tdist_Pinv(0.975, (double)res->dof);
  for (int a = 0; a < p; a++)
    for (int b = 0; b < p; b++) res->cov[a * p + b] *= s2;
  for (int k = 0; k < p; k++) res->ci95[k] = t * sqrt(res->cov[k * p + k]);
  return 0;
}

/* --- nonlinear ----------------------------------------------------------- */

typedef struct {
  const spr_fit_model *m;
  void *ctx;
  const double *y;
  double *isig;  /* n inverse sigmas (1 when none) */
  double scale;  /* residuals divided by it */
  double *f, *J; /* n model values, n x p Jacobian */
  int rc;        /* first error of the model */
} nl_ctx;

static int nl_f(const gsl_vector *x, void *params, gsl_vector *r) {
  nl_ctx *c = params;
  const size_t n = r->size;
  int rc = c->m->eval(x->data, c->ctx, n, c->f, NULL);
  if (rc) {
    if (!c->rc) c->rc = rc;
    return GSL_EDOM;
  }
  for (size_t i = 0; i < n; i++) {
    const double v = (c->f[i] - c->y[i]) * c->isig[i] / c->scale;
    if (!isfinite(v)) {
      if (!c->rc)
        c->rc = spr_error(SPR_EINVAL, "%s: model value %zu is %g at the trial parameters", c->m->name,
                          i, c->f[i]);
      return GSL_EDOM;
    }
    gsl_vector_set(r, i, v);
  }
  return GSL_SUCCESS;
}

static int nl_df(const gsl_vector *x, void *params, gsl_matrix *J) {
  nl_ctx *c = params;
  const size_t n = J->size1, p = J->size2;
  int rc = c->m->eval(x->data, c->ctx, n, c->f, c->J);
  if (rc) {
    if (!c->rc) c->rc = rc;
    return GSL_EDOM;
  }
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < p; k++) gsl_matrix_set(J, i, k, c->J[i * p + k] * c->isig[i] / c->scale);
  return GSL_SUCCESS;
}

int spr_fit_nonlinear(const spr_fit_model *m, void *ctx, const double *y,
                      const double *sigma, size_t n, const double *beta0,
                      const spr_fit_opts *opts, spr_fit_result *res) {
  memset(res, 0, sizeof *res);
  if (!m || !m->eval || !m->name) return spr_error(SPR_EINVAL, "spr_fit_nonlinear: model is NULL");
  const int p = m->p;
  int rc;
  if ((rc = check_count(m->name, n, p))) return rc;
  if ((rc = check_array(m->name, "y", y, n, 0))) return rc;
  if (sigma && (rc = check_array(m->name, "sigma", sigma, n, 1))) return rc;
  if ((rc = check_array(m->name, "initial parameters", beta0, (size_t)p, 0))) return rc;
  spr_fit_opts o;
  if (opts) o = *opts;
  else spr_fit_opts_default(&o);
  set_names(res, m->name, m->param_names, p);

  nl_ctx c = {m, ctx, y, NULL, 1.0, NULL, NULL, 0};
  c.isig = malloc(n * sizeof *c.isig);
  c.f = malloc(n * sizeof *c.f);
  c.J = malloc(n * (size_t)p * sizeof *c.J);
  if (!c.isig || !c.f || !c.J) {
    free(c.isig); free(c.f); free(c.J);
    return spr_error(SPR_ENOMEM, "%s: out of memory for %zu points", m->name, n);
  }
  double s2 = 0;
  for (size_t i = 0; i < n; i++) {
    c.isig[i] = sigma ? 1.0 / sigma[i] : 1.0;
    s2 += (y[i] * c.isig[i]) * (y[i] * c.isig[i]);
  }
  c.scale = s2 > 0 ? sqrt(s2 / (double)n) : 1.0;

  gsl_quiet q;
  gsl_quiet_on(&q);
  gsl_multifit_nlinear_fdf fdf;
  memset(&fdf, 0, sizeof fdf);
  fdf.f = nl_f;
  fdf.df = nl_df;
  fdf.n = n;
  fdf.p = (size_t)p;
  fdf.params = &c;
  gsl_multifit_nlinear_parameters fp = gsl_multifit_nlinear_default_parameters();
  gsl_multifit_nlinear_workspace *w =
      gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &fp, n, (size_t)p);
  gsl_matrix *cov = gsl_matrix_alloc((size_t)p, (size_t)p);
  gsl_vector_const_view x0 = gsl_vector_const_view_array(beta0, (size_t)p);
  if (!w || !cov) {
    rc = spr_error(SPR_ENOMEM, "%s: out of memory for the solver", m->name);
    goto done;
  }
  int info = 0;
  int st = gsl_multifit_nlinear_init(&x0.vector, &fdf, w);
  if (!st) st = gsl_multifit_nlinear_driver((size_t)o.max_iter, o.xtol, o.gtol, o.ftol, NULL, NULL,
                                            &info, w);
  res->iterations = (int)gsl_multifit_nlinear_niter(w);
  if (c.rc) {
    rc = spr_error_prefix(c.rc, "%s", m->name);
    goto done;
  }
  if (st == GSL_EMAXITER) {
    rc = spr_error(SPR_EINVAL, "%s: did not converge after %d iterations (xtol %g, gtol %g, ftol %g)",
                   m->name, res->iterations, o.xtol, o.gtol, o.ftol);
    goto done;
  }
  if (st) {
    rc = spr_error(SPR_EINVAL, "%s: the solver failed after %d iterations: %s", m->name,
                   res->iterations, gsl_strerror(st));
    goto done;
  }
  res->converged = info;
  const gsl_vector *xb = gsl_multifit_nlinear_position(w);
  for (int k = 0; k < p; k++) res->param[k] = gsl_vector_get(xb, (size_t)k);
  /* model values and Jacobian at the solution */
  if ((rc = m->eval(res->param, ctx, n, c.f, c.J))) goto done;
  gsl_matrix *J = gsl_multifit_nlinear_jac(w);
  if ((st = nl_df(xb, &c, J)) || (st = gsl_multifit_nlinear_covar(J, 1e-12, cov))) {
    rc = spr_error(SPR_EINVAL, "%s: cannot compute the covariance: %s", m->name, gsl_strerror(st));
    goto done;
  }
  /* the solver saw residuals divided by scale: (J^T W J)^-1 = cov / scale^2 */
  for (int a = 0; a < p; a++)
    for (int b = 0; b < p; b++)
      res->cov[a * p + b] = gsl_matrix_get(cov, (size_t)a, (size_t)b) / (c.scale * c.scale);
  rc = finish(res, y, c.f, c.isig, n, p, o.sigma_abs);
done:
  gsl_quiet_off(&q);
  if (w) gsl_multifit_nlinear_free(w);
  if (cov) gsl_matrix_free(cov);
  free(c.isig);
  free(c.f);
  free(c.J);
  return rc;
}

/* --- linear ---------------------------------------------------------------- */

int spr_fit_linear(const char *model, const char *const *names, const double *X,
                   const double *y, const double *sigma, size_t n, int p,
                   const spr_fit_opts *opts, spr_fit_result *res) {
  memset(res, 0, sizeof *res);
  if (!model) model = "linear";
  int rc;
  if ((rc = check_count(model, n, p))) return rc;
  if ((rc = check_array(model, "design matrix", X, n * (size_t)p, 0))) return rc;
  if ((rc = check_array(model, "y", y, n, 0))) return rc;
  if (sigma && (rc = check_array(model, "sigma", sigma, n, 1))) return rc;
  spr_fit_opts o;
  if (opts) o = *opts;
  else spr_fit_opts_default(&o);
  set_names(res, model, names, p);
  gsl_quiet q;
  gsl_quiet_on(&q);
  gsl_matrix *Xm = gsl_matrix_alloc(n, (size_t)p), *cov = gsl_matrix_alloc((size_t)p, (size_t)p);
  gsl_vector *w = gsl_vector_alloc(n), *yv = gsl_vector_alloc(n), *cv = gsl_vector_alloc((size_t)p);
  gsl_multifit_linear_workspace *ws = gsl_multifit_linear_alloc(n, (size_t)p);
  double *f = malloc(n * sizeof *f), *isig = malloc(n * sizeof *isig);
  if (!Xm || !cov || !w || !yv || !cv || !ws || !f || !isig) {
    rc = spr_error(SPR_ENOMEM, "%s: out of memory for %zu x %d", model, n, p);
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    isig[i] = sigma ? 1.0 / sigma[i] : 1.0;
    gsl_vector_set(w, i, isig[i] * isig[i]);
    gsl_vector_set(yv, i, y[i]);
    for (int k = 0; k < p; k++) gsl_matrix_set(Xm, i, (size_t)k, X[i * (size_t)p + k]);
  }
  double chisq = 0;
  size_t rank = 0;
  /* truncated SVD with column balancing: a rank below p is a design that
   * cannot determine every parameter */
  int st = gsl_multifit_wlinear_tsvd(Xm, w, yv, 1e-12, cv, cov, &chisq, &rank, ws);
  if (st) {
    rc = spr_error(SPR_EINVAL, "%s: least-squares solve failed: %s", model, gsl_strerror(st));
    goto done;
  }
  if (rank < (size_t)p) {
    rc = spr_error(SPR_EINVAL, "%s: the design has rank %zu < %d parameters: the data cannot "
                   "determine every parameter", model, rank, p);
    goto done;
  }
  for (int k = 0; k < p; k++) res->param[k] = gsl_vector_get(cv, (size_t)k);
  for (int a = 0; a < p; a++)
    for (int b = 0; b < p; b++) res->cov[a * p + b] = gsl_matrix_get(cov, (size_t)a, (size_t)b);
  for (size_t i = 0; i < n; i++) {
    double s = 0;
    for (int k = 0; k < p; k++) s += X[i * (size_t)p + k] * res->param[k];
    f[i] = s;
  }
  rc = finish(res, y, f, isig, n, p, o.sigma_abs);
done:
  gsl_quiet_off(&q);
  if (Xm) gsl_matrix_free(Xm);
  if (cov) gsl_matrix_free(cov);
  if (w) gsl_vector_free(w);
  if (yv) gsl_vector_free(yv);
  if (cv) gsl_vector_free(cv);
  if (ws) gsl_multifit_linear_free(ws);
  free(f);
  free(isig);
  return rc;
}

/* --- Gaussian ---------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int spr_fit_gaussian(const char *what, const double *x, size_t n, spr_fit_gauss *g) {
  memset(g, 0, sizeof *g);
  if (!what) what = "gaussian";
  if (n < 3) return spr_error(SPR_EINVAL, "%s: %zu samples (need at least 3)", what, n);
  int rc;
  if ((rc = check_array(what, "sample", x, n, 0))) return rc;
  double mean = 0;
  for (size_t i = 0; i < n; i++) mean += x[i];
  mean /= (double)n;
  double ss = 0;
  for (size_t i = 0; i < n; i++) ss += (x[i] - mean) * (x[i] - mean);
  const double nu = (double)(n - 1), s = sqrt(ss / nu);
  if (!(s > 0)) return spr_error(SPR_EINVAL, "%s: all %zu samples equal %g (no spread)", what, n, x[0]);
  gsl_quiet q;
  gsl_quiet_on(&q);
  g->n = n;
  g->mean = mean;
  g->mean_ci95 = gsl_cdf_tdist_Pinv(0.975, nu) * s / sqrt((double)n);
  g->sigma = s;
  g->sigma_lo = s * sqrt(nu / gsl_cdf_chisq_Pinv(0.975, nu));
  g->sigma_hi = s * sqrt(nu / gsl_cdf_chisq_Pinv(0.025, nu));
  double *xs = malloc(n * sizeof *xs);
  if (!xs) {
    gsl_quiet_off(&q);
    return spr_error(SPR_ENOMEM, "%s: out of memory for %zu samples", what, n);
  }
  memcpy(xs, x, n * sizeof *xs);
  qsort(xs, n, sizeof *xs, cmp_double);
  double sq = 0, sqq = 0, sxq = 0;
  for (size_t i = 0; i < n; i++) {
    const double z = gsl_cdf_ugaussian_Pinv(((double)i + 0.625) / ((double)n + 0.25));
    sq += z;
    sqq += z * z;
    sxq += (xs[i] - mean) * z;
  }
  const double zbar = sq / (double)n;
  g->ppcc = sxq / sqrt(ss * (sqq - (double)n * zbar * zbar));
  free(xs);
  gsl_quiet_off(&q);
  return 0;
}

/* --- cell nonlinearity ---------------------------------------------------------- */

/* sinh(x)/x and its derivative, by series near 0 (relative error < 1e-16
 * for |x| < 1e-3). */
static double sinhc(double x) {
  const double x2 = x * x;
  if (fabs(x) < 1e-3) return 1.0 + x2 / 6.0 * (1.0 + x2 / 20.0);
  return sinh(x) / x;
}
static double dsinhc(double x) {
  const double x2 = x * x;
  if (fabs(x) < 1e-3) return x / 3.0 * (1.0 + x2 / 10.0);
  return (x * cosh(x) - sinh(x)) / x2;
}

typedef struct {
  const double *V;
  double g_fixed;  /* > 0: G fixed */
  double gs, vs;   /* parameter scales: G = g gs, c = u / vs */
} iv_ctx;

/* I = G V sinhc(c V), parameters (g, u) or (u) */
static int iv_eval(const double *b, void *ctx, size_t n, double *f, double *J) {
  const iv_ctx *c = ctx;
  const int fixed = c->g_fixed > 0;
  const double G = fixed ? c->g_fixed : b[0] * c->gs, u = fixed ? b[0] : b[1], cc = u / c->vs;
  const int p = fixed ? 1 : 2;
  for (size_t i = 0; i < n; i++) {
    const double v = c->V[i], x = cc * v;
    if (fabs(x) > 700)
      return spr_error(SPR_EINVAL, "sinh(V/V0) overflows at V = %g, V0 = %g", v, 1.0 / cc);
    f[i] = G * v * sinhc(x);
    if (J) {
      const double dc = G * v * v * dsinhc(x) / c->vs;
      if (fixed) J[i] = dc;
      else {
        J[i * p] = v * sinhc(x) * c->gs;
        J[i * p + 1] = dc;
      }
    }
  }
  return 0;
}

int spr_fit_cell_iv(const double *V, const double *I, size_t n, double g_fixed_S,
                    spr_fit_result *res) {
  memset(res, 0, sizeof *res);
  const char *model = "cell_iv";
  const int fixed = g_fixed_S > 0;
  int rc;
  if (!(g_fixed_S >= 0) || !isfinite(g_fixed_S))
    return spr_error(SPR_EINVAL, "%s: fixed conductance %g S is not >= 0", model, g_fixed_S);
  if ((rc = check_count(model, n, fixed ? 1 : 2))) return rc;
  if ((rc = check_array(model, "V", V, n, 0)) || (rc = check_array(model, "I", I, n, 0))) return rc;
  double vs = 0;
  for (size_t i = 0; i < n; i++) vs = fabs(V[i]) > vs ? fabs(V[i]) : vs;
  if (!(vs > 0)) return spr_error(SPR_EINVAL, "%s: every voltage is 0", model);
  /* start from the cubic expansion I = G V + G V^3 / (6 V0^2) */
  double *X = malloc(2 * n * sizeof *X);
  if (!X) return spr_error(SPR_ENOMEM, "%s: out of memory", model);
  for (size_t i = 0; i < n; i++) {
    X[2 * i] = V[i] / vs;
    X[2 * i + 1] = pow(V[i] / vs, 3);
  }
  spr_fit_result lin;
  rc = n > 2 ? spr_fit_linear("cell_iv (start)", NULL, X, I, NULL, n, 2, NULL, &lin) : -1;
  free(X);
  double g0 = fixed ? g_fixed_S : 0, u0 = 0.5;
  /* linear data leave V0 unbounded (the best c^2 may even be negative, at
   * the boundary c = 0 of the fit in c): test the curvature first, on the
   * cubic coefficient of the linear fit, one-sided at 97.5% */
  if (rc == 0 && !(lin.param[1] - lin.ci95[1] > 0))
    return spr_error(SPR_EINVAL, "%s: the cubic term b = %g +- %g A/V^3 of I = a V + b V^3 is not "
                     "significantly above 0: the I-V data are linear within their scatter (use "
                     "crossbar.cell_v0 = 0)", model, lin.param[1] / (vs * vs * vs),
                     lin.ci95[1] / (vs * vs * vs));
  if (rc == 0) {
    const double a = lin.param[0] / vs, bb = lin.param[1] / (vs * vs * vs);
    if (!fixed) g0 = a;
    if (a > 0 && bb > 0) u0 = sqrt(6.0 * bb / a) * vs;
  } else if (!fixed) {
    double sxy = 0, sxx = 0;
    for (size_t i = 0; i < n; i++) {
      sxy += V[i] * I[i];
      sxx += V[i] * V[i];
    }
    g0 = sxy / sxx;
  }
  if (!(g0 > 0))
    return spr_error(SPR_EINVAL, "%s: the small-signal conductance %g S is not > 0 (currents "
                     "opposite to the voltages?)", model, g0);
  if (u0 < 0.05) u0 = 0.05; /* d f / d c vanishes at c = 0: start off it */
  iv_ctx c = {V, g_fixed_S, fixed ? 1.0 : g0, vs};
  static const char *const names2[] = {"G", "c_scaled"}, *const names1[] = {"c_scaled"};
  spr_fit_model m = {model, fixed ? 1 : 2, fixed ? names1 : names2, iv_eval};
  double beta0[2] = {fixed ? u0 : 1.0, u0};
  spr_fit_result fr;
  if ((rc = spr_fit_nonlinear(&m, &c, I, NULL, n, beta0, NULL, &fr))) return rc;
  /* back to physical parameters: G = g gs, V0 = 1/|c|, c = u / vs */
  const int p = fr.p, ku = p - 1;
  const double cc = fabs(fr.param[ku]) / vs, sd_c = sqrt(fr.cov[ku * p + ku]) / vs;
  const double t = gsl_cdf_tdist_Pinv(0.975, (double)fr.dof);
  /* the model is even in c and depends on c^2 near 0, so significance is
   * tested on c^2 = 1/V0^2: c^2 - t sd(c^2) > 0 with sd(c^2) = 2 c sd(c) */
  if (!(cc * cc - t * 2 * cc * sd_c > 0))
    return spr_error(SPR_EINVAL, "%s: 1/V0^2 = %g +- %g 1/V^2 is not significantly above 0: the "
                     "I-V data are linear within their scatter (use crossbar.cell_v0 = 0)", model,
                     cc * cc, t * 2 * cc * sd_c);
  *res = fr;
  double jac[2] = {c.gs, -(fr.param[ku] >= 0 ? 1.0 : -1.0) / (vs * cc * cc)}; /* d(G, V0)/d(g, u) */
  if (fixed) jac[0] = jac[1];
  for (int a = 0; a < p; a++)
    for (int b = 0; b < p; b++) res->cov[a * p + b] = fr.cov[a * p + b] * jac[a] * jac[b];
  if (!fixed) res->param[0] = fr.param[0] * c.gs;
  res->param[ku] = 1.0 / cc;
  for (int k = 0; k < p; k++) res->ci95[k] = t * sqrt(res->cov[k * p + k]);
  if (!fixed) snprintf(res->name[0], SPR_FIT_NAME, "G");
  snprintf(res->name[ku], SPR_FIT_NAME, "V0");
  return 0;
}

/* --- IR drop -------------------------------------------------------------------- */

int spr_fit_ir_alpha(const double *G, int R, int C, int n_arrays, const double *V, int M,
                     const double *I_exact, double r_wl, double r_bl, spr_fit_result *res) {
  memset(res, 0, sizeof *res);
  const char *model = "ir_alpha";
  if (R < 1 || C < 1 || n_arrays < 1 || M < 1)
    return spr_error(SPR_EINVAL, "%s: shape R %d, C %d, arrays %d, inputs %d (each >= 1)", model, R,
                     C, n_arrays, M);
  if (!(r_wl > 0 && r_bl > 0 && isfinite(r_wl) && isfinite(r_bl)))
    return spr_error(SPR_EINVAL, "%s: r_wl %g and r_bl %g ohm must be finite and > 0 (a zero "
                     "resistance leaves its alpha undetermined)", model, r_wl, r_bl);
  const size_t RC = (size_t)R * C, n = (size_t)n_arrays * M * C;
  int rc;
  if ((rc = check_array(model, "G", G, (size_t)n_arrays * RC, 0))) return rc;
  for (size_t k = 0; k < (size_t)n_arrays * RC; k++)
    if (G[k] < 0)
      return spr_error(SPR_EINVAL, "%s: G[%zu] = %g S is negative", model, k, G[k]);
  if ((rc = check_array(model, "V", V, (size_t)n_arrays * M * R, 0))) return rc;
  if ((rc = check_array(model, "I_exact", I_exact, n, 0))) return rc;
  double *X = malloc(2 * n * sizeof *X), *y = malloc(n * sizeof *y);
  double *ga = malloc(RC * sizeof *ga), *gb = malloc(RC * sizeof *gb), *work = malloc(RC * sizeof *work);
  if (!X || !y || !ga || !gb || !work) {
    rc = spr_error(SPR_ENOMEM, "%s: out of memory for %zu currents", model, n);
    goto done;
  }
  for (int a = 0; a < n_arrays; a++) {
    const double *g = G + (size_t)a * RC;
    /* G A and G B from the first-order model with unit resistances:
     * G (1 - A) and G (1 - B) */
    spr_xbar_ir_first_order(g, R, C, 1.0, 0.0, ga, work);
    spr_xbar_ir_first_order(g, R, C, 0.0, 1.0, gb, work);
    for (size_t k = 0; k < RC; k++) {
      ga[k] = g[k] - ga[k];
      gb[k] = g[k] - gb[k];
    }
    for (int m = 0; m < M; m++) {
      const double *v = V + ((size_t)a * M + m) * R;
      const double *ie = I_exact + ((size_t)a * M + m) * C;
      for (int j = 0; j < C; j++) {
        double i0 = 0, xa = 0, xb = 0;
        for (int i = 0; i < R; i++) {
          i0 += v[i] * g[(size_t)i * C + j];
          xa += v[i] * ga[(size_t)i * C + j];
          xb += v[i] * gb[(size_t)i * C + j];
        }
        const size_t row = ((size_t)a * M + m) * C + j;
        X[2 * row] = r_wl * xa;
        X[2 * row + 1] = r_bl * xb;
        y[row] = i0 - ie[j];
      }
    }
  }
  static const char *const names[] = {"alpha_wl", "alpha_bl"};
  rc = spr_fit_linear(model, names, X, y, NULL, n, 2, NULL, res);
done:
  free(X);
  free(y);
  free(ga);
  free(gb);
  free(work);
  return rc;
}

/* --- noise ------------------------------------------------------------------------ */

int spr_fit_read_noise(const double *var_A2, const double *thermal_A2, const double *shot_A2,
                       const double *rel_A2, size_t n, int fit_rel, spr_fit_result *res) {
  memset(res, 0, sizeof *res);
  const char *model = "read_noise";
  const int p = fit_rel ? 2 : 1;
  int rc;
  if ((rc = check_count(model, n, p))) return rc;
  if ((rc = check_array(model, "measured variance", var_A2, n, 1))) return rc;
  if ((rc = check_array(model, "thermal term", thermal_A2, n, 0))) return rc;
  if (shot_A2 && (rc = check_array(model, "shot term", shot_A2, n, 0))) return rc;
  if (fit_rel && !rel_A2)
    return spr_error(SPR_EINVAL, "%s: fitting read_rel_sigma needs the relative term sum V^2 G^2", model);
  if (rel_A2 && (rc = check_array(model, "relative term", rel_A2, n, 0))) return rc;
  double *X = malloc((size_t)p * n * sizeof *X), *y = malloc(n * sizeof *y);
  if (!X || !y) {
    free(X);
    free(y);
    return spr_error(SPR_ENOMEM, "%s: out of memory", model);
  }
  for (size_t i = 0; i < n; i++) {
    y[i] = var_A2[i] - (shot_A2 ? shot_A2[i] : 0.0);
    X[(size_t)p * i] = thermal_A2[i];
    if (fit_rel) X[(size_t)p * i + 1] = rel_A2[i];
  }
  static const char *const names[] = {"thermal_excess", "read_rel_sigma2"};
  rc = spr_fit_linear(model, names, X, y, var_A2, n, p, NULL, res);
  free(X);
  free(y);
  if (!rc && !(res->param[0] > 0))
    rc = spr_error(SPR_EINVAL, "%s: fitted excess factor F = %g is not > 0", model, res->param[0]);
  if (!rc && fit_rel && res->param[1] < 0)
    rc = spr_error(SPR_EINVAL, "%s: fitted read_rel_sigma^2 = %g +- %g is negative: the data do not "
                   "support a relative noise term (fit the thermal factor alone)", model,
                   res->param[1], res->ci95[1]);
  return rc;
}

int spr_fit_noise_psd(const double *f_Hz, const double *psd, size_t n, double f_lo,
                      double f_hi, spr_fit_result *res, double *sigma_A, double *sigma_ci95) {
  memset(res, 0, sizeof *res);
  const char *model = "noise_psd";
  int rc;
  if (!(f_lo > 0 && f_hi > f_lo && isfinite(f_hi)))
    return spr_error(SPR_EINVAL, "%s: band [%g, %g] Hz needs 0 < f_lo < f_hi", model, f_lo, f_hi);
  if ((rc = check_count(model, n, 2))) return rc;
  if ((rc = check_array(model, "frequency", f_Hz, n, 1))) return rc;
  if ((rc = check_array(model, "noise density", psd, n, 1))) return rc;
  double *X = malloc(2 * n * sizeof *X);
  if (!X) return spr_error(SPR_ENOMEM, "%s: out of memory", model);
  for (size_t i = 0; i < n; i++) {
    X[2 * i] = 1.0;
    X[2 * i + 1] = 1.0 / f_Hz[i];
  }
  static const char *const names[] = {"S_white", "K_flicker"};
  rc = spr_fit_linear(model, names, X, psd, psd, n, 2, NULL, res);
  free(X);
  if (rc) return rc;
  const double g0 = f_hi - f_lo, g1 = log(f_hi / f_lo);
  const double var = res->param[0] * g0 + res->param[1] * g1;
  if (!(var > 0))
    return spr_error(SPR_EINVAL, "%s: integrated noise %g A^2 over [%g, %g] Hz is not > 0", model, var,
                     f_lo, f_hi);
  const double vv = g0 * g0 * res->cov[0] + 2 * g0 * g1 * res->cov[1] + g1 * g1 * res->cov[3];
  *sigma_A = sqrt(var);
  *sigma_ci95 = gsl_cdf_tdist_Pinv(0.975, (double)res->dof) * sqrt(vv) / (2 * *sigma_A);
  return 0;
}

/* --- comparator and energy ------------------------------------------------------------ */

int spr_fit_cmp_offset(const double *trip_A, size_t n, double nominal_A, spr_fit_gauss *g) {
  memset(g, 0, sizeof *g);
  if (!isfinite(nominal_A))
    return spr_error(SPR_EINVAL, "cmp_offset: nominal threshold current %g A is not finite", nominal_A);
  int rc;
  if (n < 3) return spr_error(SPR_EINVAL, "cmp_offset: %zu trip samples (need at least 3)", n);
  if ((rc = check_array("cmp_offset", "trip current", trip_A, n, 0))) return rc;
  double *d = malloc(n * sizeof *d);
  if (!d) return spr_error(SPR_ENOMEM, "cmp_offset: out of memory");
  for (size_t i = 0; i < n; i++) d[i] = trip_A[i] - nominal_A;
  rc = spr_fit_gaussian("cmp_offset", d, n, g);
  free(d);
  return rc;
}

int spr_fit_cmp_delay(const double *overdrive_A, const double *delay_s, size_t n,
                      spr_fit_result *res) {
  memset(res, 0, sizeof *res);
  const char *model = "cmp_delay";
  int rc;
  if ((rc = check_count(model, n, 2))) return rc;
  if ((rc = check_array(model, "overdrive", overdrive_A, n, 1))) return rc;
  if ((rc = check_array(model, "delay", delay_s, n, 1))) return rc;
  double *X = malloc(2 * n * sizeof *X);
  if (!X) return spr_error(SPR_ENOMEM, "%s: out of memory", model);
  for (size_t i = 0; i < n; i++) {
    X[2 * i] = 1.0;
    X[2 * i + 1] = 1.0 / overdrive_A[i];
  }
  static const char *const names[] = {"t0", "q"};
  rc = spr_fit_linear(model, names, X, delay_s, delay_s, n, 2, NULL, res);
  free(X);
  if (!rc && !(res->param[1] > 0))
    rc = spr_error(SPR_EINVAL, "%s: fitted trip charge q = %g C is not > 0: the delay does not fall "
                   "with overdrive", model, res->param[1]);
  return rc;
}

int spr_fit_mac_energy(const double *n_macs, const double *energy_J, size_t n,
                       spr_fit_result *res) {
  memset(res, 0, sizeof *res);
  const char *model = "mac_energy";
  int rc;
  if ((rc = check_count(model, n, 2))) return rc;
  if ((rc = check_array(model, "MAC count", n_macs, n, 1))) return rc;
  if ((rc = check_array(model, "read energy", energy_J, n, 1))) return rc;
  double *X = malloc(2 * n * sizeof *X);
  if (!X) return spr_error(SPR_ENOMEM, "%s: out of memory", model);
  for (size_t i = 0; i < n; i++) {
    X[2 * i] = n_macs[i];
    X[2 * i + 1] = 1.0;
  }
  static const char *const names[] = {"e_mac", "e_0"};
  rc = spr_fit_linear(model, names, X, energy_J, energy_J, n, 2, NULL, res);
  free(X);
  if (!rc && !(res->param[0] > 0))
    rc = spr_error(SPR_EINVAL, "%s: fitted energy per MAC %g J is not > 0", model, res->param[0]);
  return rc;
}

int spr_fit_cmp_energy(const double *energy_J, size_t n, spr_fit_gauss *g) {
  int rc = spr_fit_gaussian("cmp_energy", energy_J, n, g);
  if (!rc && !(g->mean > 0))
    rc = spr_error(SPR_EINVAL, "cmp_energy: mean energy per decision %g J is not > 0", g->mean);
  return rc;
}
