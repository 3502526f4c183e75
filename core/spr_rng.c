/* spr_rng.c - xoshiro256** (Blackman and Vigna, 2018) as a GSL generator,
 * seeded per key through SplitMix64. */
#include "config.h"
#include "spr_rng.h"

#include <gsl/gsl_randist.h>
#include <string.h>

typedef struct {
  uint64_t s[4];
} xoshiro_state;

static inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static inline uint64_t xoshiro_next(xoshiro_state *st) {
  uint64_t *s = st->s;
  const uint64_t result = rotl(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t spr_rng_mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static void seed_from(xoshiro_state *st, uint64_t h) {
  for (int i = 0; i < 4; i++) {
    h = spr_rng_mix64(h);
    st->s[i] = h;
  }
  if (!(st->s[0] | st->s[1] | st->s[2] | st->s[3])) st->s[0] = 1;
}

static void x_set(void *vstate, unsigned long int seed) {
  seed_from(vstate, (uint64_t)seed);
}

static unsigned long int x_get(void *vstate) {
  return (unsigned long int)(xoshiro_next(vstate) >> 32);
}

static double x_get_double(void *vstate) {
  return (double)(xoshiro_next(vstate) >> 11) * 0x1.0p-53;
}

static const gsl_rng_type x_type = {"spr_xoshiro256ss", 0xffffffffUL, 0,
                                     sizeof(xoshiro_state), &x_set, &x_get,
                                     &x_get_double};

const gsl_rng_type *spr_rng_xoshiro256ss = &x_type;

gsl_rng *spr_rng_alloc(void) { return gsl_rng_alloc(spr_rng_xoshiro256ss); }

void spr_rng_key(gsl_rng *r, uint64_t seed, int layer, int head, int trial,
                 int stream) {
  /* Hash the key fields one after another; each step is a bijection of the
   * running value, so distinct keys give distinct (and independent-looking)
   * seeds. */
  uint64_t h = spr_rng_mix64(seed);
  h = spr_rng_mix64(h ^ ((uint64_t)(uint32_t)layer | (1ULL << 40)));
  h = spr_rng_mix64(h ^ ((uint64_t)(uint32_t)head | (2ULL << 40)));
  h = spr_rng_mix64(h ^ ((uint64_t)(uint32_t)trial | (3ULL << 40)));
  h = spr_rng_mix64(h ^ ((uint64_t)(uint32_t)stream | (4ULL << 40)));
  seed_from(r->state, h);
}

double spr_rng_normal(gsl_rng *r) { return gsl_ran_gaussian_ziggurat(r, 1.0); }

void spr_rng_gaussian(gsl_rng *r, float *out, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
}
