/* spr_test_device.h - a device-model parameter for the tests: the
 * first-order IR scale of the word lines, as a calibration would fit it
 * (value, interval and fit statistics). */
#ifndef SPR_TEST_DEVICE_H
#define SPR_TEST_DEVICE_H

#include <stdio.h>

#include "spr_device.h"

/* *p = crossbar.ir_alpha_wl = 0.9385 with its fit's figures. */
static inline void spr_test_ir_alpha_param(spr_device_param *p) {
  *p = (spr_device_param){0};
  snprintf(p->name, sizeof p->name, "ir_alpha_wl");
  snprintf(p->key, sizeof p->key, "crossbar.ir_alpha_wl");
  snprintf(p->unit, sizeof p->unit, "1");
  snprintf(p->model, sizeof p->model, "VG - I = alpha_wl X_wl + alpha_bl X_bl");
  p->value = 0.9385;
  p->ci95_lo = 0.93;
  p->ci95_hi = 0.947;
  p->residual_rms = 1.25e-9;
  p->chi2_dof = 1.5625e-18;
  p->r2 = 0.999;
  p->n_points = 640;
}

#endif
