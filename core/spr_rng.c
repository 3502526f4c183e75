/* spr_rng.c - xoshiro256** (Blackman and Vigna, 2018) as a GSL generator,
 * seeded per key through SplitMix64, and a 256-layer ziggurat normal
 * sampler that reads the xoshiro state directly. */
#include "config.h"
#include "spr_rng.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <pthread.h>
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

/* --- ziggurat ----------------------------------------------------------
 *
 * Marsaglia and Tsang (2000) with the layer index and the abscissa taken
 * from disjoint bits of one 64-bit output (Doornik 2005: sharing bits
 * correlates them), as in rand_distr.  f(x) = exp(-x^2/2) (unnormalised)
 * is covered by ZIG_N layers of equal area v:
 *   layer 0:        [0, x_0] x [0, f(r)], x_0 = v / f(r), x_1 = r; the part
 *                   beyond r stands for the tail, whose area is v - r f(r)
 *   layer i >= 1:   [0, x_i] x [f(x_i), f(x_{i+1})], x_ZIG_N = 0,
 *                   x_{i+1} = f^-1(f(x_i) + v / x_i).
 * A point uniform in a random layer is accepted at once when |x| < x_{i+1}
 * (inside the curve); otherwise layer 0 samples the tail exactly
 * (Marsaglia 1964: x = r + e1 / r while e2 > (e1/r)^2 / 2, e1, e2 standard
 * exponentials) and other layers test the wedge y < f(x).  With r as below
 * the recursion closes, f(x_255) + v / x_255 = 1 (the top layer has area
 * v), to 3e-15 in double precision: the tables are exact to that level. */
#define ZIG_N 256
#define ZIG_R 3.6541528853610088 /* Marsaglia and Tsang, 256 layers */
static double zig_x[ZIG_N + 1], zig_f[ZIG_N + 1];
static pthread_once_t zig_once = PTHREAD_ONCE_INIT;

static void zig_init(void) {
  const double r = ZIG_R, fr = exp(-0.5 * r * r);
  /* tail area int_r^inf f = sqrt(pi/2) erfc(r / sqrt 2) */
  const double v = r * fr + 1.2533141373155002512 * erfc(r * 0.70710678118654752440);
  zig_x[0] = v / fr;
  zig_x[1] = r;
  for (int i = 2; i < ZIG_N; i++)
    zig_x[i] = sqrt(-2.0 * log(v / zig_x[i - 1] + exp(-0.5 * zig_x[i - 1] * zig_x[i - 1])));
  zig_x[ZIG_N] = 0.0;
  /* zig_f[0] is never read: layer 0 has no wedge */
  for (int i = 0; i <= ZIG_N; i++) zig_f[i] = exp(-0.5 * zig_x[i] * zig_x[i]);
}

/* uniform on (0, 1] with 53-bit resolution (log-safe) */
static inline double u01_open0(xoshiro_state *st) {
  return (double)((xoshiro_next(st) >> 11) + 1) * 0x1.0p-53;
}

#if defined(__GNUC__)
#define ZIG_INLINE inline __attribute__((always_inline))
#define ZIG_COLD __attribute__((noinline, cold))
#else
#define ZIG_INLINE inline
#define ZIG_COLD
#endif

/* Layer 0 beyond r: an exact tail draw.  Layer i >= 1 outside the inner
 * rectangle: accept x when a uniform height in the layer falls under f.
 * Returns 1 with *x set, or 0 to draw again. */
ZIG_COLD static int zig_slow(xoshiro_state *st, int i, double u, double *x) {
  if (i == 0) {
    double e1, e2;
    do {
      e1 = -log(u01_open0(st)) / ZIG_R;
      e2 = -log(u01_open0(st));
    } while (2.0 * e2 < e1 * e1);
    *x = u < 0 ? -(ZIG_R + e1) : ZIG_R + e1;
    return 1;
  }
  const double y = zig_f[i] + (zig_f[i + 1] - zig_f[i]) * x_get_double(st);
  return y < exp(-0.5 * *x * *x);
}

/* One standard normal from the state s, a local copy (forced inline, so
 * the compiler keeps the state in registers; the slow path, taken ~1% of
 * the time, goes through memory). */
static ZIG_INLINE double zig_normal(xoshiro_state *s) {
  for (;;) {
    const uint64_t b = xoshiro_next(s);
    const int i = (int)(b & 0xff);
    /* u uniform on [-1, 1) from the upper 52 bits, disjoint from i: the
     * bits are the mantissa of a double in [2, 4) */
    const uint64_t ub = (b >> 12) | UINT64_C(0x4000000000000000);
    double u;
    memcpy(&u, &ub, sizeof u);
    u -= 3.0;
    double x = u * zig_x[i];
    if (fabs(x) < zig_x[i + 1]) return x;
    xoshiro_state t = *s;
    const int ok = zig_slow(&t, i, u, &x);
    *s = t;
    if (ok) return x;
  }
}

double spr_rng_normal(gsl_rng *r) {
  if (r->type != &x_type) return gsl_ran_gaussian_ziggurat(r, 1.0);
  pthread_once(&zig_once, zig_init);
  xoshiro_state s = *(xoshiro_state *)r->state;
  const double x = zig_normal(&s);
  *(xoshiro_state *)r->state = s;
  return x;
}

void spr_rng_normals(gsl_rng *r, double *out, size_t n, size_t stride) {
  if (r->type != &x_type) {
    for (size_t i = 0; i < n; i++) out[i * stride] = gsl_ran_gaussian_ziggurat(r, 1.0);
    return;
  }
  pthread_once(&zig_once, zig_init);
  xoshiro_state s = *(xoshiro_state *)r->state;
  for (size_t i = 0; i < n; i++) out[i * stride] = zig_normal(&s);
  *(xoshiro_state *)r->state = s;
}

void spr_rng_gaussian(gsl_rng *r, float *out, size_t n) {
  if (r->type != &x_type) {
    for (size_t i = 0; i < n; i++) out[i] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
    return;
  }
  pthread_once(&zig_once, zig_init);
  /* a local copy of the state lets the compiler keep it in registers */
  xoshiro_state s = *(xoshiro_state *)r->state;
  for (size_t i = 0; i < n; i++) out[i] = (float)zig_normal(&s);
  *(xoshiro_state *)r->state = s;
}
