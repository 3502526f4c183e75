/* spr_quant.c - symmetric quantization. */
#include "config.h"
#include "spr_quant.h"
#include "spr_error.h"

#include <math.h>

int spr_quant_sym(const float *x, size_t n, int bits, int8_t *out,
                  float *scale) {
  if (bits < 2 || bits > 8)
    return spr_error(SPR_EINVAL, "quantize: bits = %d outside [2, 8]", bits);
  float m = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(x[i]))
      return spr_error(SPR_EINVAL, "quantize: element %zu is %g (not finite)", i, (double)x[i]);
    float a = fabsf(x[i]);
    if (a > m) m = a;
  }
  const int qmax = (1 << (bits - 1)) - 1;
  float s = m > 0 ? m / (float)qmax : 1.0f;
  for (size_t i = 0; i < n; i++) {
    float q = rintf(x[i] / s);
    if (q > qmax) q = (float)qmax;
    if (q < -qmax) q = (float)-qmax;
    out[i] = (int8_t)q;
  }
  *scale = s;
  return 0;
}

void spr_quant_msb(const int8_t *in, size_t n, int bits, int msb_bits,
                   int8_t *out) {
  const int sh = bits - msb_bits;
  for (size_t i = 0; i < n; i++) {
    /* floor division by 2^sh, written without shifting a negative value */
    int v = in[i];
    int q = v >= 0 ? v >> sh : -((-v + (1 << sh) - 1) >> sh);
    out[i] = (int8_t)q;
  }
}
