/* spr_synth.c - seeded synthetic attention workloads.
 *
 * Generative model (docs/workloads.md, section 2, gives the derivation and
 * section 3 every constant with the statistic it controls).  For one head,
 * latent queries and keys qt_i, kt_j in R^d are built block by block so that
 * the attention logit is a sum of designed terms,
 *
 *   l_ij = qt_i . kt_j / sqrt(d)
 *        = S [j sink]                                   (sink block)
 *        + A sum_m sum_axes cos(w_m (x_i - x_j - s))    (position block)
 *        + L u_i[c(j)]                                  (class block)
 *        + sigma h_i . g_j / sqrt(n_noise)              (noise block),
 *
 * then Q = Qt R and K = Kt R with one orthogonal d x d matrix R (so
 * Q K^T = Qt Kt^T up to float rounding), which spreads every block over all d
 * coordinates: no coordinate carries an outlier, and 4-bit symmetric
 * quantization of Q keeps its resolution.
 *
 * Heads are of three types drawn per (seed, layer, head): positional (only
 * the position block), segment and content (only the class block); every
 * head has the sink and noise blocks.
 *
 * Random numbers: stream (seed, layer, head, trial 0, SPR_STREAM_WORKLOAD)
 * for the head's parameters, Q and K, in a fixed order; V comes from trial 1
 * so that asking for V (or not) never changes Q and K.
 */
#include "config.h"
#include "spr_synth.h"
#include "spr_error.h"
#include "spr_mat.h"
#include "spr_rng.h"
#include "spr_clones.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- constants of the model (docs/workloads.md, section 3) --------------
 * All are design choices tuned so that every head of both presets meets the
 * statistics of docs/workloads.md, section 4; the comment names what each
 * controls. */

/* 3.1 head type mix, linear in depth t = layer / (n_layers - 1) */
static const double SYN_P_POS_FIRST = 0.4; /* P(positional), first layer */
static const double SYN_P_POS_LAST = 0.1;  /* P(positional), last layer */
static const double SYN_P_SEG = 0.3;       /* P(segment), every layer */

/* 3.2 logit levels */
static const double SYN_TOP_LO = 9.0;   /* class logit L, lower end */
static const double SYN_TOP_HI = 12.0;  /* class logit L, upper end */
static const double SYN_SINK_LO = -2.0; /* sink offset delta: S = peak + delta */
static const double SYN_SINK_HI = 2.0;
static const double SYN_SIG_LO = 0.6;   /* noise logit sigma, lower end */
static const double SYN_SIG_HI = 1.2;   /* noise logit sigma, upper end */

/* 3.3 position block */
#define SYN_POS_MODES 4                 /* modes per axis */
static const double SYN_POS_AMP = 4.0;  /* logit amplitude A of one mode */
static const double SYN_POS_BASE = 3.0; /* ratio of adjacent mode frequencies */
static const double SYN_W1_LO = 7.0;    /* 1-D kernel width W, tokens */
static const double SYN_W1_HI = 16.0;
static const double SYN_W2_LO = 0.9;    /* 2-D kernel width W, patches */
static const double SYN_W2_HI = 1.6;

/* 3.4 class block */
#define SYN_MAX_CLASSES 16
static const int SYN_CLS_LO = 5;        /* classes C_h per head, inclusive */
static const int SYN_CLS_HI = 12;
static const double SYN_TAU = 0.05;     /* softmax temperature of u_i */
static const double SYN_LQ1_LO = 4.0;   /* query-field length, tokens */
static const double SYN_LQ1_HI = 16.0;
static const double SYN_LQ2_LO = 4.0;   /* query-field length, patches */
static const double SYN_LQ2_HI = 12.0;
static const double SYN_LSEG1_LO = 3.0; /* segment-field length, tokens */
static const double SYN_LSEG1_HI = 10.0;
static const double SYN_LSEG2_LO = 3.0; /* segment-field length, patches */
static const double SYN_LSEG2_HI = 6.0;

/* 3.5 noise block */
static const double SYN_LH_LO = 1.0;    /* query-noise field length */
static const double SYN_LH_HI = 4.0;

enum { HEAD_POSITIONAL = 0, HEAD_SEGMENT = 1, HEAD_CONTENT = 2 };

/* Token layout: tokens [0, first) are special (no position); token t >=
 * first sits at grid cell x = (t - first) % nx, y = (t - first) / nx. */
typedef struct {
  int first, nx, ny;
} grid;

/* The parameters of one head, drawn by draw_head(). */
typedef struct {
  int type;     /* HEAD_* */
  double top;   /* L: logit of the attended class */
  double sink;  /* delta: sink logit above the peak */
  double w;     /* W: position kernel width */
  int shift;    /* s: 1-D kernel offset (+1 attends to the previous token) */
  int n_cls;    /* C_h */
  double lq;    /* correlation length of the content query field z */
  double lseg;  /* correlation length of the key-class field y (segment) */
  double sigma; /* noise logit standard deviation */
  double lh;    /* correlation length of the query noise field h */
} head_model;

static double unif(gsl_rng *r, double lo, double hi) {
  return lo + (hi - lo) * gsl_rng_uniform(r);
}

/* rho = exp(-1 / len): the AR coefficient of a correlation length in
 * tokens (patches); 0 (independent) for len <= 0. */
static double len_to_rho(double len) { return len > 0 ? exp(-1.0 / len) : 0; }

/* Draw the head's parameters; always the same number of draws, in the same
 * order, whatever the type. */
static void draw_head(gsl_rng *r, const spr_workload_params *wl, int layer,
                      int two_d, head_model *hm) {
  const double t = wl->n_layers > 1 ? (double)layer / (wl->n_layers - 1) : 0;
  const double p_pos = SYN_P_POS_FIRST + (SYN_P_POS_LAST - SYN_P_POS_FIRST) * t;
  const double u = gsl_rng_uniform(r);
  hm->type = u < p_pos ? HEAD_POSITIONAL
             : u < p_pos + SYN_P_SEG ? HEAD_SEGMENT : HEAD_CONTENT;
  hm->top = unif(r, SYN_TOP_LO, SYN_TOP_HI);
  hm->sink = unif(r, SYN_SINK_LO, SYN_SINK_HI);
  hm->w = two_d ? unif(r, SYN_W2_LO, SYN_W2_HI) : unif(r, SYN_W1_LO, SYN_W1_HI);
  hm->shift = (int)gsl_rng_uniform_int(r, 3) - 1;
  if (two_d) hm->shift = 0;
  hm->n_cls = SYN_CLS_LO + (int)gsl_rng_uniform_int(r, (unsigned long)(SYN_CLS_HI - SYN_CLS_LO + 1));
  hm->lq = two_d ? unif(r, SYN_LQ2_LO, SYN_LQ2_HI) : unif(r, SYN_LQ1_LO, SYN_LQ1_HI);
  hm->lseg = two_d ? unif(r, SYN_LSEG2_LO, SYN_LSEG2_HI) : unif(r, SYN_LSEG1_LO, SYN_LSEG1_HI);
  hm->sigma = unif(r, SYN_SIG_LO, SYN_SIG_HI);
  hm->lh = unif(r, SYN_LH_LO, SYN_LH_HI);
}

/* In place along v[0], v[stride], ..., v[(len-1) stride], which hold iid
 * N(0,1) values w_t, on nch adjacent channels at once (channel c: v[c],
 * v[stride + c], ...; its e at e[c * e_stride]; xs and ys, nch each, hold
 * the filter states; the loop over the channels vectorises, each channel
 * taking the same operations in the same order as alone): a unit-variance
 * stationary AR(1) filter applied twice,
 *   x_0 = w_0,                         x_t = rho x_(t-1) + sqrt(1-rho^2) w_t,
 *   y_0 = (x_0 + rho e) / sqrt(1+rho^2),
 *   y_t = rho y_(t-1) + (1-rho^2) / sqrt(1+rho^2) x_t,
 * where e ~ N(0,1) is independent of w (it makes (x_0, y_0) stationary).
 * Then var y_t = 1 and corr(y_t, y_(t+k)) = rho^k (1 + k (1-rho^2)/(1+rho^2)),
 * a smooth (differentiable) path, so an argmax over several such paths
 * changes cleanly instead of flickering as AR(1) paths do. */
SPR_HOT static void smooth_filter(double *restrict v, size_t stride, int len, int nch,
                                  double rho, const double *restrict e, size_t e_stride,
                                  double *restrict xs, double *restrict ys) {
  const double a = sqrt(1 - rho * rho), nb = sqrt(1 + rho * rho);
  const double b = (1 - rho * rho) / nb;
  for (int c = 0; c < nch; c++) {
    xs[c] = v[c];
    ys[c] = (xs[c] + rho * e[(size_t)c * e_stride]) / nb;
    v[c] = ys[c];
  }
  for (int t = 1; t < len; t++) {
    double *restrict vt = v + (size_t)t * stride;
    for (int c = 0; c < nch; c++) {
      xs[c] = rho * xs[c] + a * vt[c];
      ys[c] = rho * ys[c] + b * xs[c];
      vt[c] = ys[c];
    }
  }
}

/* Unit-variance stationary smooth field on the grid, channels [0, nch),
 * written to out[t * nch + c]: white noise filtered by smooth_filter along x
 * (each row), then along y (each column), so that
 * corr = c(|x - x'|) c(|y - y'|) with c(k) as above.  The start noise e of
 * the column filters is a row of white noise filtered along x, which keeps
 * the field smooth across columns.  Special tokens get independent N(0,1)
 * values.  The draws come channel by channel (the column of n values, the
 * ny row starts, then the nx column starts and theirs); the filters, which
 * draw nothing, then run on all channels at once.  scr: at least
 * nch (2 + ny + nx) doubles (nch (2 + ny) when ny = 1). */
static void smooth_field(gsl_rng *r, const grid *g, int n, double rho,
                         int nch, double *out, double *scr) {
  double *xs = scr, *ys = xs + nch, *ey = ys + nch, *ex = ey + (size_t)nch * g->ny;
  for (int c = 0; c < nch; c++) {
    spr_rng_normals(r, out + c, (size_t)n, (size_t)nch);
    spr_rng_normals(r, ey + (size_t)c * g->ny, (size_t)g->ny, 1);
    if (g->ny > 1) {
      double *erow = ex + (size_t)c * g->nx;
      spr_rng_normals(r, erow, (size_t)g->nx, 1);
      const double e0 = spr_rng_normal(r);
      smooth_filter(erow, 1, g->nx, 1, rho, &e0, 0, xs, ys);
    }
  }
  double *base = out + (size_t)g->first * nch;
  for (int y = 0; y < g->ny; y++)
    smooth_filter(base + (size_t)y * g->nx * nch, (size_t)nch, g->nx, nch, rho, ey + y,
                  (size_t)g->ny, xs, ys);
  if (g->ny > 1)
    for (int x = 0; x < g->nx; x++)
      smooth_filter(base + (size_t)x * nch, (size_t)g->nx * nch, g->ny, nch, rho, ex + x,
                    (size_t)g->nx, xs, ys);
}

/* Balanced class assignment: every non-sink token j gets one of C classes
 * and every class gets floor or ceil(n_eff / C) tokens.  The pairs (j, c)
 * are visited in decreasing y_c(j) (ties: lower j, then lower c) and j goes
 * to c while c has room: an equal-size version of c(j) = argmax_c y_c(j).
 * Sink tokens get class -1. */
typedef struct {
  double v;
  int j, c;
} cls_pair;


/* Sort key of v for descending order: the IEEE bits made unsigned-ordered
 * (negatives flipped), complemented; -0 is 0, as the comparison has it. */
static uint64_t desc_key(double v) {
  if (v == 0) v = 0.0;
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  u = u >> 63 ? ~u : u | ((uint64_t)1 << 63);
  return ~u;
}

/* The order qsort with cmp_pair gives: the pairs are generated in (j, c)
 * ascending order, so a stable sort by v descending leaves ties in (j, c)
 * order.  An LSD radix sort, stable, on the top 33 bits of desc_key in
 * three passes of 11 bits (passes whose digit is the same for all
 * skipped), then an insertion sort on the whole key, which only moves
 * pairs within runs of equal top bits (values within 2^-21 relative of
 * each other: rare): the order of a stable sort on the whole key, in
 * three passes instead of eight.  tmp: np pairs. */
static void sort_pairs(cls_pair *pairs, int np, cls_pair *tmp, uint64_t *key, uint64_t *key2) {
  enum { BITS = 11, LOW = 64 - 3 * BITS, NB = 1 << BITS };
  for (int k = 0; k < np; k++) key[k] = desc_key(pairs[k].v);
  cls_pair *src = pairs, *dst = tmp;
  uint64_t *ks = key, *kd = key2;
  for (int pass = 0; pass < 3; pass++) {
    const int sh = LOW + BITS * pass;
    int count[NB + 1] = {0};
    for (int k = 0; k < np; k++) count[((ks[k] >> sh) & (NB - 1)) + 1]++;
    int trivial = 0;
    for (int b = 0; b < NB; b++) trivial |= count[b + 1] == np;
    if (trivial) continue;
    for (int b = 0; b < NB; b++) count[b + 1] += count[b];
    for (int k = 0; k < np; k++) {
      const int at = count[(ks[k] >> sh) & (NB - 1)]++;
      dst[at] = src[k];
      kd[at] = ks[k];
    }
    cls_pair *t = src;
    src = dst;
    dst = t;
    uint64_t *tk = ks;
    ks = kd;
    kd = tk;
  }
  for (int k = 1; k < np; k++) {
    if (ks[k] >= ks[k - 1]) continue;
    const uint64_t kk = ks[k];
    const cls_pair pk = src[k];
    int t = k;
    for (; t > 0 && ks[t - 1] > kk; t--) {
      ks[t] = ks[t - 1];
      src[t] = src[t - 1];
    }
    ks[t] = kk;
    src[t] = pk;
  }
  if (src != pairs) memcpy(pairs, src, (size_t)np * sizeof *pairs);
}

static void assign_classes(const double *y, int n, int C, int sink_last,
                           cls_pair *pairs, cls_pair *tmp, uint64_t *key, int *cls) {
  int cnt[SYN_MAX_CLASSES] = {0}, np = 0;
  const int lo = 1, hi = sink_last ? n - 1 : n, n_eff = hi - lo;
  for (int j = 0; j < n; j++) cls[j] = -1;
  for (int j = lo; j < hi; j++)
    for (int c = 0; c < C; c++) pairs[np++] = (cls_pair){y[(size_t)j * C + c], j, c};
  sort_pairs(pairs, np, tmp, key, key + (size_t)n * SYN_MAX_CLASSES);
  for (int k = 0; k < np; k++) {
    const int j = pairs[k].j, c = pairs[k].c;
    const int cap = n_eff / C + (c < n_eff % C);
    if (cls[j] < 0 && cnt[c] < cap) {
      cls[j] = c;
      cnt[c]++;
    }
  }
}

/* Workspace of one head: latent matrices, rotation, fields, classes. */
struct spr_synth_ws {
  int n, d;
  gsl_rng *r;
  float *Qt, *Kt, *R;
  double *f1, *f2, *erow;
  double *dct; /* d x d: cos(pi (c + 1/2) k / d) at [k d + c], the same for every head */
  int *perm, *cls;
  cls_pair *pairs, *pairs2;
  uint64_t *keys; /* 2 n SYN_MAX_CLASSES */
};
typedef struct spr_synth_ws synth_ws;

static void ws_free(synth_ws *w) {
  if (w->r) gsl_rng_free(w->r);
  free(w->Qt); free(w->Kt); free(w->R); free(w->dct); free(w->f1); free(w->f2);
  free(w->erow); free(w->perm); free(w->cls); free(w->pairs); free(w->pairs2); free(w->keys);
}

static int ws_alloc(synth_ws *w, int n, int d) {
  const size_t nd = (size_t)n * d;
  w->n = n;
  w->d = d;
  w->r = spr_rng_alloc();
  w->Qt = calloc(nd, sizeof *w->Qt);
  w->Kt = calloc(nd, sizeof *w->Kt);
  w->R = malloc((size_t)d * d * sizeof *w->R);
  w->dct = malloc((size_t)d * d * sizeof *w->dct);
  if (w->dct)
    for (int k = 0; k < d; k++)
      for (int c = 0; c < d; c++) w->dct[(size_t)k * d + c] = cos(M_PI * (c + 0.5) * k / d);
  w->f1 = malloc(nd * sizeof *w->f1);
  w->f2 = malloc(nd * sizeof *w->f2);
  /* smooth_field's scratch: nch < d channels; a grid of n tokens has
   * ny = 1 (a row) or nx = ny <= sqrt(n) */
  w->erow = malloc((size_t)d * (3 + 2 * (size_t)sqrt((double)n)) * sizeof *w->erow);
  w->perm = malloc(2 * (size_t)d * sizeof *w->perm);
  w->cls = malloc((size_t)n * sizeof *w->cls);
  w->pairs = malloc((size_t)n * SYN_MAX_CLASSES * sizeof *w->pairs);
  w->pairs2 = malloc((size_t)n * SYN_MAX_CLASSES * sizeof *w->pairs2);
  w->keys = malloc((size_t)2 * n * SYN_MAX_CLASSES * sizeof *w->keys);
  return w->r && w->Qt && w->Kt && w->R && w->dct && w->f1 && w->f2 && w->erow && w->perm &&
         w->cls && w->pairs && w->pairs2 && w->keys;
}

int spr_synth_ws_alloc(int n, int d, spr_synth_ws **out) {
  *out = NULL;
  if (n < 2 || d < 1) return spr_error(SPR_EINVAL, "synth: workspace for %d x %d (n >= 2, d >= 1)", n, d);
  synth_ws *w = calloc(1, sizeof *w);
  if (!w || !ws_alloc(w, n, d)) {
    if (w) ws_free(w);
    free(w);
    return spr_error(SPR_ENOMEM, "synth: out of memory for a head of %d x %d", n, d);
  }
  *out = w;
  return 0;
}

void spr_synth_ws_free(spr_synth_ws *w) {
  if (!w) return;
  ws_free(w);
  free(w);
}

/* Position block (positional heads): for each of n_modes modes m and each
 * axis, features amp (cos(w_m x + phi), sin(w_m x + phi)) for queries and
 * the same at x + s for keys, amp = sqrt(A sqrt(d)), so that
 *   qt . kt / sqrt(d) = A sum_m sum_axes cos(w_m (x_i - x_j - s)).
 * Frequencies w_m = w_top base^-m with w_top = 1 / (W sqrt(A sum_m base^-2m))
 * make the curvature at the peak -1/W^2 per axis: near the peak the kernel
 * is A n_modes axes - |x_i - x_j - s|^2 / (2 W^2), a Gaussian attention window
 * of width W; the low modes (periods up to base^3 times the top one) keep
 * distant tokens from coming back into phase.  Sink keys carry no
 * position. */
static void position_block(gsl_rng *r, const grid *g, int n, int d, int o,
                           int n_modes, int axes, const head_model *hm,
                           int sink_last, float *Qt, float *Kt) {
  double ssum = 0;
  for (int m = 0; m < n_modes; m++) ssum += pow(SYN_POS_BASE, -2.0 * m);
  const double wtop = 1 / (hm->w * sqrt(SYN_POS_AMP * ssum));
  const double amp = sqrt(SYN_POS_AMP * sqrt((double)d));
  for (int m = 0; m < n_modes; m++) {
    const double om = wtop * pow(SYN_POS_BASE, -(double)m);
    for (int a = 0; a < axes; a++) {
      const double ph = 2 * M_PI * gsl_rng_uniform(r);
      const int oc = o + 2 * (m * axes + a);
      for (int t = g->first; t < n; t++) {
        const int p = t - g->first, x = a == 0 ? p % g->nx : p / g->nx;
        const double aq = om * x + ph, ak = om * (x + hm->shift) + ph;
        Qt[(size_t)t * d + oc] = (float)(amp * cos(aq));
        Qt[(size_t)t * d + oc + 1] = (float)(amp * sin(aq));
        if (t == 0 || (sink_last && t == n - 1)) continue; /* sink key */
        Kt[(size_t)t * d + oc] = (float)(amp * cos(ak));
        Kt[(size_t)t * d + oc + 1] = (float)(amp * sin(ak));
      }
    }
  }
}

/* Class block (segment and content heads).  Key classes c(j) come from a
 * smooth field y (length lseg for segment heads, independent for content
 * heads) by balanced assignment; kt_j = amp e_c(j) with amp = sqrt(L sqrt(d))
 * (sinks: 0).  Query preference: segment heads u_i = e_c(i) (a token
 * attends to its own segment), content heads u_i = softmax(z_i / tau) with
 * an independent smooth field z of length lq (a slowly drifting topic);
 * qt_i = amp u_i.  So qt_i . kt_j / sqrt(d) = L u_i[c(j)]. */
static void class_block(gsl_rng *r, const grid *g, int n, int d, int o,
                        int n_cls, const head_model *hm, int sink_last,
                        synth_ws *w) {
  const int seg = hm->type == HEAD_SEGMENT;
  smooth_field(r, g, n, seg ? len_to_rho(hm->lseg) : 0, n_cls, w->f1, w->erow);
  assign_classes(w->f1, n, n_cls, sink_last, w->pairs, w->pairs2, w->keys, w->cls);
  if (!seg) smooth_field(r, g, n, len_to_rho(hm->lq), n_cls, w->f2, w->erow);
  const double amp = sqrt(hm->top * sqrt((double)d));
  for (int t = 0; t < n; t++) {
    float *q = w->Qt + (size_t)t * d + o;
    if (seg) {
      int own = w->cls[t];
      if (own < 0) { /* a sink token's query: the argmax of its field */
        own = 0;
        for (int c = 1; c < n_cls; c++)
          if (w->f1[(size_t)t * n_cls + c] > w->f1[(size_t)t * n_cls + own]) own = c;
      }
      q[own] = (float)amp;
    } else {
      const double *z = w->f2 + (size_t)t * n_cls;
      double zmax = z[0], s = 0;
      for (int c = 1; c < n_cls; c++)
        if (z[c] > zmax) zmax = z[c];
      double e[SYN_MAX_CLASSES]; /* each exponential once */
      for (int c = 0; c < n_cls; c++) s += (e[c] = exp((z[c] - zmax) / SYN_TAU));
      for (int c = 0; c < n_cls; c++) q[c] = (float)(amp * e[c] / s);
    }
    if (w->cls[t] >= 0) w->Kt[(size_t)t * d + o + w->cls[t]] = (float)amp;
  }
}

/* R = D C' P: C' the orthonormal DCT-II matrix, C'[k][c] =
 * sqrt((k ? 2 : 1) / d) cos(pi (c + 1/2) k / d), with its rows and columns
 * permuted at random and each row's sign flipped at random.  Orthogonal, so
 * Q K^T = Qt Kt^T; every latent axis spreads evenly over all d coordinates
 * (|R_kc| <= sqrt(2/d)). */
static void rotation(gsl_rng *r, int d, const double *dct, int *perm, float *R) {
  for (int k = 0; k < 2 * d; k++) perm[k] = k % d;
  for (int h = 0; h < 2; h++) /* Fisher-Yates */
    for (int k = d - 1; k > 0; k--) {
      const int j = (int)gsl_rng_uniform_int(r, (unsigned long)k + 1);
      const int tmp = perm[h * d + k];
      perm[h * d + k] = perm[h * d + j];
      perm[h * d + j] = tmp;
    }
  for (int k = 0; k < d; k++) {
    const int kr = perm[k];
    const double sg = gsl_rng_uniform(r) < 0.5 ? -1 : 1;
    const double nrm = sqrt((kr == 0 ? 1.0 : 2.0) / d);
    for (int c = 0; c < d; c++)
      R[(size_t)k * d + perm[d + c]] = (float)(sg * nrm * dct[(size_t)kr * d + c]);
  }
}

int spr_synth_head_ws(const spr_workload_params *wl, uint64_t seed, int layer,
                      int head, float *Q, float *K, float *V, spr_synth_ws *wp) {
  if (!wl) return spr_error(SPR_EINVAL, "synth: workload parameters wl = NULL");
  if (!Q) return spr_error(SPR_EINVAL, "synth: query buffer Q = NULL");
  if (!K) return spr_error(SPR_EINVAL, "synth: key buffer K = NULL");
  const int n = wl->seq_len, d = wl->head_dim;
  if (n < 2) return spr_error(SPR_EINVAL, "synth: seq_len = %d (at least 2)", n);
  if (d < 1) return spr_error(SPR_EINVAL, "synth: head_dim = %d (at least 1)", d);
  if (layer < 0 || layer >= wl->n_layers)
    return spr_error(SPR_EINVAL, "synth: layer = %d outside [0, %d)", layer, wl->n_layers);
  if (head < 0 || head >= wl->n_heads)
    return spr_error(SPR_EINVAL, "synth: head = %d outside [0, %d)", head, wl->n_heads);

  /* ViT: a CLS token, then the patches on a square grid (when N - 1 is a
   * square); otherwise one row of tokens. */
  grid g = {0, n, 1};
  if (wl->preset == SPR_PRESET_VIT_BASE) {
    const int s = (int)lrint(sqrt((double)(n - 1)));
    if (s >= 2 && s * s == n - 1) g = (grid){1, s, s};
  }
  const int two_d = g.ny > 1, axes = two_d ? 2 : 1;
  /* sinks: 0 ([CLS]) and, for BERT only, n-1 ([SEP]); ViT: token 0 only */
  const int sink_last = wl->preset == SPR_PRESET_BERT_BASE;

  if (!wp || wp->n != n || wp->d != d)
    return spr_error(SPR_EINVAL, "synth: workspace for %d x %d, head of %d x %d", wp ? wp->n : 0,
                     wp ? wp->d : 0, n, d);
  synth_ws w = *wp; /* the arrays, cleared where the head relies on zeros */
  memset(w.Qt, 0, (size_t)n * d * sizeof *w.Qt);
  memset(w.Kt, 0, (size_t)n * d * sizeof *w.Kt);
  gsl_rng *r = w.r;
  spr_rng_key(r, seed, layer, head, 0, SPR_STREAM_WORKLOAD);
  head_model hm;
  draw_head(r, wl, layer, two_d, &hm);

  /* latent layout: [sink (1) | position (2 axes n_modes) | noise] for
   * positional heads, [sink (1) | classes (n_cls) | noise] for the others */
  const int pos = hm.type == HEAD_POSITIONAL;
  int n_modes = SYN_POS_MODES;
  while (n_modes > 0 && 1 + 2 * axes * n_modes > d) n_modes--;
  int n_cls = hm.n_cls;
  if (n_cls > d - 1) n_cls = d - 1;
  if (n_cls > n - 2) n_cls = n - 2; /* every class gets a token */
  const int o_noise = 1 + (pos ? 2 * axes * n_modes : n_cls), n_noise = d - o_noise;
  const double sqd = sqrt((double)d);

  /* sink block: qt_i[0] = kt_j[0] = sqrt(S sqrt(d)) for sink keys j, so
   * the sink logit is S = peak + delta with peak the largest non-sink logit
   * of the head's other block. */
  const double peak = pos ? SYN_POS_AMP * n_modes * axes : hm.top;
  const double s0 = sqrt(fmax(peak + hm.sink, 0) * sqd);
  for (int i = 0; i < n; i++) w.Qt[(size_t)i * d] = (float)s0;
  w.Kt[0] = (float)s0;
  if (sink_last) w.Kt[(size_t)(n - 1) * d] = (float)s0;

  if (pos && n_modes > 0)
    position_block(r, &g, n, d, 1, n_modes, axes, &hm, sink_last, w.Qt, w.Kt);
  if (!pos && n_cls > 0) class_block(r, &g, n, d, 1, n_cls, &hm, sink_last, &w);

  /* noise block: qt_i = a h_i (smooth field of length lh), kt_j = a g_j
   * (iid N(0,1)), a = sqrt(sigma sqrt(d) / sqrt(n_noise)), so the logit
   * term sigma h_i . g_j / sqrt(n_noise) has standard deviation sigma. */
  if (n_noise > 0) {
    smooth_field(r, &g, n, len_to_rho(hm.lh), n_noise, w.f1, w.erow);
    const double a = sqrt(hm.sigma * sqd / sqrt((double)n_noise));
    /* the key noise in (t, c) order: one bulk draw into f2 */
    spr_rng_normals(r, w.f2, (size_t)n * n_noise, 1);
    for (int t = 0; t < n; t++)
      for (int c = 0; c < n_noise; c++) {
        w.Qt[(size_t)t * d + o_noise + c] = (float)(a * w.f1[(size_t)t * n_noise + c]);
        w.Kt[(size_t)t * d + o_noise + c] = (float)(a * w.f2[(size_t)t * n_noise + c]);
      }
  }

  rotation(r, d, w.dct, w.perm, w.R);
  const spr_matf R = spr_matf_view(w.R, d, d);
  int rc = spr_matf_gemm(1.0f, spr_matf_view(w.Qt, n, d), 0, R, 0, 0.0f, spr_matf_view(Q, n, d));
  if (!rc)
    rc = spr_matf_gemm(1.0f, spr_matf_view(w.Kt, n, d), 0, R, 0, 0.0f, spr_matf_view(K, n, d));
  if (rc) return rc;
  /* V: iid N(0,1), from its own stream (trial 1) */
  if (V) {
    spr_rng_key(r, seed, layer, head, 1, SPR_STREAM_WORKLOAD);
    spr_rng_gaussian(r, V, (size_t)n * d);
  }
  return 0;
}

int spr_synth_head(const spr_workload_params *wl, uint64_t seed, int layer, int head, float *Q,
                   float *K, float *V) {
  if (!wl) return spr_error(SPR_EINVAL, "synth: workload parameters wl = NULL");
  spr_synth_ws *w;
  int rc = spr_synth_ws_alloc(wl->seq_len < 2 ? 2 : wl->seq_len, wl->head_dim < 1 ? 1 : wl->head_dim, &w);
  if (!rc) rc = spr_synth_head_ws(wl, seed, layer, head, Q, K, V, w);
  spr_synth_ws_free(w);
  return rc;
}

/* p_ij = exp(l_ij - max_j l_ij) / sum_j exp(l_ij - max_j l_ij) with
 * l_ij = (sum_c Q_ic K_jc) / sqrt(d), products and sums in double;
 * P_i = {j : p_ij >= p_thr}. */
int spr_attn_stats_compute(const float *Q, const float *K, int n, int d,
                           double p_thr, spr_attn_stats *out) {
  if (!Q) return spr_error(SPR_EINVAL, "attn stats: query matrix Q = NULL");
  if (!K) return spr_error(SPR_EINVAL, "attn stats: key matrix K = NULL");
  if (!out) return spr_error(SPR_EINVAL, "attn stats: output out = NULL");
  if (n < 2) return spr_error(SPR_EINVAL, "attn stats: n = %d (at least 2)", n);
  if (d < 1) return spr_error(SPR_EINVAL, "attn stats: d = %d (at least 1)", d);
  if (!(p_thr > 0 && p_thr < 1))
    return spr_error(SPR_EINVAL, "attn stats: p_thr = %g outside (0, 1)", p_thr);
  double *s = malloc((size_t)n * sizeof *s);
  unsigned char *m = calloc(2 * (size_t)n, 1);
  if (!s || !m) {
    free(s);
    free(m);
    return spr_error(SPR_ENOMEM, "attn stats: out of memory for n = %d", n);
  }
  const double sc = 1 / sqrt((double)d);
  double dens = 0, mass = 0, fresh_sum = 0;
  for (int i = 0; i < n; i++) {
    unsigned char *cur = m + (size_t)(i & 1) * n, *prev = m + (size_t)((i + 1) & 1) * n;
    const float *q = Q + (size_t)i * d;
    double mx = -INFINITY, z = 0;
    for (int j = 0; j < n; j++) {
      const float *k = K + (size_t)j * d;
      double a = 0;
      for (int c = 0; c < d; c++) a += (double)q[c] * (double)k[c];
      s[j] = a * sc;
      if (s[j] > mx) mx = s[j];
    }
    for (int j = 0; j < n; j++) z += (s[j] = exp(s[j] - mx));
    int kept = 0, fresh = 0;
    double ms = 0;
    for (int j = 0; j < n; j++) {
      const double p = s[j] / z;
      cur[j] = p >= p_thr;
      if (cur[j]) {
        kept++;
        ms += p;
        if (i > 0 && !prev[j]) fresh++;
      }
    }
    dens += (double)kept / n;
    mass += ms;
    if (i > 0) fresh_sum += (double)fresh / n;
  }
  out->density = dens / n;
  out->mass = mass / n;
  out->new_frac = fresh_sum / (n - 1);
  free(s);
  free(m);
  return 0;
}
