/* spr_quant.c - symmetric quantization. */
#include "config.h"
#include "spr_quant.h"
#include "spr_clones.h"
#include "spr_error.h"

#include <math.h>

SPR_HOT int spr_quant_sym(const float *x, size_t n, int bits, int8_t *out,
                  float *scale) {
  if (bits < 2 || bits > 8)
    return spr_error(SPR_EINVAL, "quantize: bits = %d outside [2, 8]", bits);
  float m = 0;
  int bad = 0;
#pragma omp simd reduction(max : m) reduction(| : bad)
  for (size_t i = 0; i < n; i++) {
    bad |= (x[i] - x[i]) != 0.0f; /* inf or NaN */
    const float a = fabsf(x[i]);
    m = a > m ? a : m;
  }
  for (size_t i = 0; bad && i < n; i++)
    if (!isfinite(x[i]))
      return spr_error(SPR_EINVAL, "quantize: element %zu is %g (not finite)", i, (double)x[i]);
  const int qmax = (1 << (bits - 1)) - 1;
  float s = m > 0 ? m / (float)qmax : 1.0f;
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    float q = rintf(x[i] / s);
    if (q > qmax) q = (float)qmax;
    if (q < -qmax) q = (float)-qmax;
    out[i] = (int8_t)q;
  }
  *scale = s;
  return 0;
}

SPR_HOT void spr_quant_msb(const int8_t *in, size_t n, int bits, int msb_bits,
                   int8_t *out) {
  const int sh = bits - msb_bits, one = 1 << sh;
  /* floor division by 2^sh, written without shifting a negative value:
   * floor(v / 2^sh) = -ceil(-v / 2^sh) = -((-v + 2^sh - 1) >> sh), v < 0 */
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    const int v = in[i], neg = v < 0;
    const int u = neg ? -v + one - 1 : v, t = u >> sh;
    out[i] = (int8_t)(neg ? -t : t);
  }
}
