/* spr_fit.h - least-squares fits with their quality, and the specific fits
 * of the device calibration (equations: docs/calibration.md).
 *
 * Every fit takes plain arrays of measured data (no ngspice types) and
 * fills a spr_fit_result: parameters, their covariance, 95% confidence
 * half-widths, and how well the model fits.  Definitions used throughout,
 * for n data y_i, model values f_i, weights w_i = 1/sigma_i^2 (w_i = 1
 * when no sigma is given), p parameters, dof = n - p:
 *   residual RMS = sqrt(sum (y_i - f_i)^2 / n)            (data units)
 *   chi2         = sum w_i (y_i - f_i)^2,   chi2/dof = chi2 / dof
 *   R^2          = 1 - sum w_i (y_i - f_i)^2 / sum w_i (y_i - ybar_w)^2,
 *                  ybar_w the weighted mean (fits through the origin use
 *                  the same centred definition, so R^2 can be negative)
 *   covariance   = (J^T W J)^-1 s^2 with J the model's Jacobian; s^2 =
 *                  chi2/dof when the data carry no absolute sigma (the
 *                  default: the scatter of the residuals estimates the
 *                  noise), s^2 = 1 when absolute sigmas are given
 *   CI (95%)     = +- t_{0.975, dof} sqrt(cov_kk)   (Student t)
 * A fit needs n > p (dof >= 1); every datum must be finite and every sigma
 * finite and > 0.
 *
 * Errors (negative codes of core/spr_error.h; the message names the model,
 * the datum and its value): SPR_EINVAL for bad data (too few points, NaN
 * or Inf, a sigma <= 0, a singular design, a parameter outside its
 * physical range after the fit), SPR_ENOMEM, and SPR_EINVAL for a
 * nonlinear fit that does not converge ("<model>: did not converge after
 * N iterations").  Nothing is printed; nothing is allocated that outlives
 * the call.
 *
 * Threads: GSL's error handler is process-wide; each fit switches it off
 * (GSL would abort) and restores it on return, so do not run fits from
 * several threads at once.
 */
#ifndef SPR_FIT_H
#define SPR_FIT_H

#include <stddef.h>

#define SPR_FIT_MAXP 8       /* parameters of one fit */
#define SPR_FIT_NAME 40      /* bytes of a model or parameter name */

typedef struct {
  char model[SPR_FIT_NAME];            /* "cell_iv", "ir_alpha", ... */
  int p;                               /* parameters */
  size_t n;                            /* data points */
  int dof;                             /* n - p */
  char name[SPR_FIT_MAXP][SPR_FIT_NAME]; /* parameter names */
  double param[SPR_FIT_MAXP];          /* best-fit values */
  double cov[SPR_FIT_MAXP * SPR_FIT_MAXP]; /* covariance, row-major p x p */
  double ci95[SPR_FIT_MAXP];           /* 95% confidence half-widths */
  double rms;                          /* residual RMS, data units */
  double chi2;                         /* weighted sum of squared residuals */
  double chi2_dof;                     /* chi2 / dof */
  double r2;                           /* coefficient of determination */
  int iterations;                      /* nonlinear fits; 0 for linear */
  int converged;                       /* how a nonlinear fit converged (GSL's
                                          info): 1 small step (xtol), 2 small
                                          gradient (gtol); 0 for linear fits
                                          (non-convergence is an error) */
} spr_fit_result;

/* --- generic fits --------------------------------------------------------- */

/* A model for spr_fit_nonlinear: eval(beta, ctx, n, f, J) writes the n
 * model values f_i(beta) and, when J is not NULL, the Jacobian
 * J[i*p + k] = d f_i / d beta_k.  Returns 0, or a negative code (with
 * spr_error) when beta is outside the model's domain. */
typedef struct {
  const char *name;               /* model name, for results and messages */
  int p;                          /* parameters, 1..SPR_FIT_MAXP */
  const char *const *param_names; /* p names */
  int (*eval)(const double *beta, void *ctx, size_t n, double *f, double *J);
} spr_fit_model;

typedef struct {
  int max_iter;    /* trust-region iterations (default 200) */
  double xtol;     /* relative step tolerance (default 1e-10) */
  double gtol;     /* gradient tolerance (default 1e-12) */
  double ftol;     /* relative cost tolerance (default 1e-12) */
  int sigma_abs;   /* sigma are absolute (covariance not rescaled by
                      chi2/dof); default 0 */
} spr_fit_opts;

void spr_fit_opts_default(spr_fit_opts *o);

/* Nonlinear least squares min sum w_i (y_i - f_i(beta))^2 with GSL's
 * trust-region solver (gsl_multifit_nlinear, Levenberg-Marquardt with
 * geodesic acceleration off, More scaling), from beta0.  y: n data;
 * sigma: n standard deviations or NULL (all equal); opts: NULL for the
 * defaults.  Residuals are divided internally by the data's RMS so the
 * tolerances do not depend on units.  Non-convergence within max_iter is
 * an error naming the model. */
int spr_fit_nonlinear(const spr_fit_model *m, void *ctx, const double *y,
                      const double *sigma, size_t n, const double *beta0,
                      const spr_fit_opts *opts, spr_fit_result *res);

/* Linear least squares y ~ X beta (X: n x p row-major design, no implicit
 * intercept) by GSL's SVD solver (gsl_multifit_wlinear).  names: p
 * parameter names (NULL: "b0", "b1", ...); sigma and opts as above. */
int spr_fit_linear(const char *model, const char *const *names, const double *X,
                   const double *y, const double *sigma, size_t n, int p,
                   const spr_fit_opts *opts, spr_fit_result *res);

/* Gaussian fit of samples x_0..x_{n-1} (n >= 2): the maximum-likelihood
 * mean and the unbiased sample standard deviation, with 95% intervals
 *   mean:  xbar +- t_{0.975, n-1} s / sqrt(n)
 *   sigma: [s sqrt((n-1) / chi2_{0.975, n-1}), s sqrt((n-1) / chi2_{0.025, n-1})]
 * and the probability-plot correlation r (sorted samples against normal
 * quantiles Phi^-1((i + 0.625)/(n + 0.25)), Blom): r near 1 for Gaussian
 * data. */
typedef struct {
  size_t n;
  double mean, mean_ci95;        /* mean and its half-width */
  double sigma, sigma_lo, sigma_hi; /* s and its 95% interval */
  double ppcc;                   /* probability-plot correlation */
} spr_fit_gauss;

int spr_fit_gaussian(const char *what, const double *x, size_t n, spr_fit_gauss *g);

/* --- the calibration's fits ------------------------------------------------ */

/* Cell nonlinearity: I = G V0 sinh(V / V0) from n I-V points (volts,
 * amperes; both signs allowed).  g_fixed_S > 0 fixes G and fits V0 alone
 * (p = 1); g_fixed_S = 0 fits G and V0 (p = 2, G first).  Internally the
 * fit is in c = 1/V0 (I = G sinh(c V)/c, smooth through the linear cell c
 * = 0) and the result is transformed to V0 = 1/c with cov by the delta
 * method.  The start comes from the linear fit I = a V + b V^3 (b = G /
 * (6 V0^2) to leading order).  Linear data leave V0 unbounded, so it is
 * an error (use crossbar.cell_v0 = 0) when the curvature is not
 * significant, one-sided at 97.5%: b - t sd(b) <= 0 in the cubic fit, or
 * c^2 - t sd(c^2) <= 0 after the fit (sd(c^2) = 2 c sd(c): near c = 0
 * the model depends on c^2, not c). */
int spr_fit_cell_iv(const double *V, const double *I, size_t n, double g_fixed_S,
                    spr_fit_result *res);

/* IR-drop scale factors: alpha_wl, alpha_bl in the first-order model
 *   I_j = sum_m V_m G_mj (1 - alpha_wl r_wl A_mj - alpha_bl r_bl B_mj)
 * (A, B of crossbar/spr_xbar.h), fitted to exact column currents.
 * G: n_arrays arrays of R x C conductances (S), stacked; V: for each
 * array, M input vectors of R volts (n_arrays x M x R); I_exact: n_arrays
 * x M x C currents (A).  The model is linear in the alphas:
 *   V G - I_exact = alpha_wl X_wl + alpha_bl X_bl,
 *   X_wl,j = r_wl sum_m V_m G_mj A_mj,   X_bl,j = r_bl sum_m V_m G_mj B_mj,
 * a least-squares fit through the origin over every (array, input,
 * column).  r_wl, r_bl > 0 (a zero resistance leaves its alpha
 * undetermined: refused). */
int spr_fit_ir_alpha(const double *G, int R, int C, int n_arrays, const double *V, int M,
                     const double *I_exact, double r_wl, double r_bl, spr_fit_result *res);

/* Read noise: n measured column-current noise variances var_A2 (A^2,
 * integrated over the sense bandwidth) against the model's terms for the
 * same columns and inputs: thermal_A2 = 4 k T B sum G, shot_A2 = 2 e B
 * sum |V| G (fixed physics, subtracted), rel_A2 = sum V^2 G^2.  Fit
 *   var - shot = F thermal                          (fit_rel = 0, p = 1)
 *   var - shot = F thermal + s_rel^2 rel            (fit_rel = 1, p = 2)
 * with relative residuals (each equation divided by var), F the excess
 * factor of the thermal term (analog.thermal_excess) and s_rel^2 the
 * square of analog.read_rel_sigma.  shot_A2 and rel_A2 may be NULL (all
 * zero; fit_rel then needs rel_A2).  A negative fitted s_rel^2 is an
 * error (the data do not support a relative term). */
int spr_fit_read_noise(const double *var_A2, const double *thermal_A2, const double *shot_A2,
                       const double *rel_A2, size_t n, int fit_rel, spr_fit_result *res);

/* Comparator offset: Gaussian fit of n Monte-Carlo trip currents (A)
 * minus the nominal threshold current nominal_A: mean = systematic
 * offset, sigma = analog.cmp_offset_sigma. */
int spr_fit_cmp_offset(const double *trip_A, size_t n, double nominal_A, spr_fit_gauss *g);

/* Noise spectrum: white plus flicker, S(f) = S_w + K_f / f (A^2/Hz), fitted
 * (linear, relative residuals) to n points of an input-referred noise
 * density psd at frequencies f_Hz (> 0), then integrated over [f_lo, f_hi]:
 *   sigma^2 = S_w (f_hi - f_lo) + K_f ln(f_hi / f_lo).
 * *sigma_A gets sigma and *sigma_ci95 its 95% half-width (delta method:
 * t sqrt(g^T cov g) / (2 sigma), g = [f_hi - f_lo, ln(f_hi/f_lo)]).
 * 0 < f_lo < f_hi. */
int spr_fit_noise_psd(const double *f_Hz, const double *psd, size_t n, double f_lo,
                      double f_hi, spr_fit_result *res, double *sigma_A, double *sigma_ci95);

/* Comparator delay against input overdrive: t_d = t0 + q / I_od, a
 * current-mode latch (the overdrive current charges the sense node by the
 * trip charge q, then regeneration takes t0), fitted with relative
 * residuals to n (overdrive A > 0, delay s) pairs.  Parameters t0 (s),
 * q (C). */
int spr_fit_cmp_delay(const double *overdrive_A, const double *delay_s, size_t n,
                      spr_fit_result *res);

/* Energy of in-memory MACs: E = e_mac N + e_0 over n reads of arrays with
 * N_k multiply-accumulates each (N = rows x cols driven), E_k joules.
 * Parameters e_mac (J per MAC: energy.imc_mac_per_op), e_0 (J per read). */
int spr_fit_mac_energy(const double *n_macs, const double *energy_J, size_t n,
                       spr_fit_result *res);

/* Energy per comparator decision: Gaussian fit of n transient energies (J)
 * of single decisions; the mean (with its t interval) is
 * energy.cmp_per_decision. */
int spr_fit_cmp_energy(const double *energy_J, size_t n, spr_fit_gauss *g);

#endif
