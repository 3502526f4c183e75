/* spr_rng.h - keyed random streams.
 *
 * Every random number of a simulation comes from a stream keyed by
 * (seed, layer, head, trial, stream id).  The key is hashed (SplitMix64) into
 * the 256-bit state of a xoshiro256** generator, so a stream does not depend
 * on which thread or process draws it, nor on what other streams drew:
 * results are bit-identical for any thread count.
 *
 * The generator is exposed as a GSL generator type so every GSL distribution
 * (gsl_ran_gaussian_ziggurat, gsl_ran_lognormal, ...) can draw from it.
 * gsl_rng_get() returns 32-bit values; gsl_rng_uniform() has 53-bit
 * resolution.
 */
#ifndef SPR_RNG_H
#define SPR_RNG_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>

/* Stream ids: one per kind of random quantity, so adding draws to one kind
 * never shifts another. */
enum spr_stream {
  SPR_STREAM_WORKLOAD = 1, /* synthetic Q, K, V */
  SPR_STREAM_PROG = 2,     /* programming variation of cells */
  SPR_STREAM_STUCK = 3,    /* stuck-at faults */
  SPR_STREAM_DAC = 4,      /* DAC gain error per row */
  SPR_STREAM_CMP_OFFSET = 5, /* comparator static offsets */
  SPR_STREAM_READ = 6,     /* per-decision read and comparator noise */
  SPR_STREAM_DRIFT = 7,    /* per-cell drift exponent spread */
  SPR_STREAM_READ_FAR = 8, /* recorded noise of decisions certain without it */
  SPR_STREAM_SPICE_MC = 9  /* SPICE Monte Carlo of the calibration (VTO shifts) */
};

extern const gsl_rng_type *spr_rng_xoshiro256ss;

/* Allocate a generator of type spr_rng_xoshiro256ss (NULL when out of
 * memory).  Free it with gsl_rng_free(). */
gsl_rng *spr_rng_alloc(void);

/* Position `r` (allocated by spr_rng_alloc) at the start of the stream keyed
 * by (seed, layer, head, trial, stream).  layer, head and trial may be -1
 * for "not applicable". */
void spr_rng_key(gsl_rng *r, uint64_t seed, int layer, int head, int trial,
                 int stream);

/* One standard normal variate: an exact 256-layer ziggurat (Marsaglia and
 * Tsang 2000, layer and abscissa from disjoint bits of one 64-bit output,
 * exact tail and wedges) reading the xoshiro256** state of r directly.
 * A generator of another type falls back to gsl_ran_gaussian_ziggurat.
 * Modules that include OpenBLAS's <cblas.h> use this instead of
 * <gsl/gsl_randist.h>, whose gsl_cblas.h clashes with it. */
double spr_rng_normal(gsl_rng *r);

/* Bound on |spr_rng_normal(r)| for the spr_rng_xoshiro256ss type: the
 * largest tail value is r + (53 ln 2) / r = 13.71 (r = 3.654, uniforms of
 * 53 bits); the fast path stays below r. */
#define SPR_RNG_NORMAL_MAX 13.8

/* Fill out[0..n) with standard normal variates: exactly the values of n
 * successive spr_rng_normal(r) calls, rounded to float, leaving r where
 * they would. */
void spr_rng_gaussian(gsl_rng *r, float *out, size_t n);

/* Fill out[i * stride], i < n, with n successive spr_rng_normal(r) values
 * (double), leaving r where they would: a bulk draw without the per-call
 * overhead. */
void spr_rng_normals(gsl_rng *r, double *out, size_t n, size_t stride);

/* SplitMix64 finaliser, exposed for hashing keys. */
uint64_t spr_rng_mix64(uint64_t x);

#endif
