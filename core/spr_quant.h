/* spr_quant.h - symmetric uniform quantization to signed integers. */
#ifndef SPR_QUANT_H
#define SPR_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* Quantize x[0..n) to `bits`-bit signed integers with one scale:
 *   scale = max|x| / (2^(bits-1) - 1),  out = round(x / scale)
 * so out lies in [-(2^(bits-1)-1), 2^(bits-1)-1] and x ~ scale * out.
 * All-zero input gives scale 1 and zeros.  bits in [2, 8].
 * Returns 0 or SPR_EINVAL (bad bits, NaN or Inf in x). */
int spr_quant_sym(const float *x, size_t n, int bits, int8_t *out,
                  float *scale);

/* The `msb_bits` most significant bits of each `bits`-bit two's-complement
 * value: out = in >> (bits - msb_bits) (arithmetic shift, i.e. floor
 * division by 2^(bits - msb_bits)).  out lies in [-2^(msb-1), 2^(msb-1)-1]. */
void spr_quant_msb(const int8_t *in, size_t n, int bits, int msb_bits,
                   int8_t *out);

#endif
