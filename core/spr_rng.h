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
  SPR_STREAM_DRIFT = 7     /* per-cell drift exponent spread */
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

/* One standard normal variate (ziggurat).  Modules that include OpenBLAS's
 * <cblas.h> use this instead of <gsl/gsl_randist.h>, whose gsl_cblas.h
 * clashes with it. */
double spr_rng_normal(gsl_rng *r);

/* Fill out[0..n) with standard normal variates (ziggurat). */
void spr_rng_gaussian(gsl_rng *r, float *out, size_t n);

/* SplitMix64 finaliser, exposed for hashing keys. */
uint64_t spr_rng_mix64(uint64_t x);

#endif
