/* spr_vit_eval.c - ViT inference with per-head schemes (spr_vit_eval.h). */
#include "config.h"
#include "spr_vit_eval.h"
#include "spr_attend.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_h5quiet.h"

#include <cblas.h>
#include <errno.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *spr_vit_scheme_name(int s) {
  return s == SPR_VIT_EXACT ? "exact" : spr_scheme_name(s);
}

int spr_vit_scheme_on(const spr_config *c, int s) {
  return s == SPR_VIT_EXACT || spr_attend_scheme_on(c, s);
}

int spr_vit_config(const spr_config *c, const spr_vit *m, const char *model_path,
                   spr_config *out) {
  *out = *c;
  out->wl.seq_len = m->tokens;
  out->wl.n_layers = m->depth;
  out->wl.n_heads = m->heads;
  out->wl.head_dim = m->head_dim;
  const spr_thr_params *t = &c->thr;
  if (t->mode == SPR_THR_DIRECT) {
    const int L = m->depth, H = m->heads;
    const int ok = t->n_values == 1 || (t->per_head ? t->n_values == L * H : t->n_values == L);
    if (!ok)
      return spr_error(SPR_ECONFIG,
                       "key 'threshold.values': %d values given; the model %s has %d layers x %d "
                       "heads, so it needs 1 or %d", t->n_values, model_path, L, H,
                       t->per_head ? L * H : L);
  }
  return 0;
}

struct spr_vit_ctx {
  spr_vit_ws *vw;
  spr_attend_ws *aw;
  spr_attend_head heads[SPR_MAX_HEADS];
  spr_head_result res[SPR_MAX_HEADS];
  float *O;      /* tokens x head_dim */
  float *logits; /* classes */
};

void spr_vit_ctx_free(spr_vit_ctx *x) {
  if (!x) return;
  spr_vit_ws_free(x->vw);
  spr_attend_ws_free(x->aw);
  for (int h = 0; h < SPR_MAX_HEADS; h++) spr_attend_head_free(&x->heads[h]);
  free(x->O);
  free(x->logits);
  free(x);
}

int spr_vit_ctx_alloc(const spr_config *mc, const spr_vit *m, spr_vit_ctx **out) {
  *out = NULL;
  spr_vit_ctx *x = calloc(1, sizeof *x);
  if (!x) return spr_error(SPR_ENOMEM, "vit: out of memory");
  int rc;
  if ((rc = spr_vit_ws_alloc(m, &x->vw)) || (rc = spr_attend_ws_alloc(mc, m->tokens, m->head_dim, &x->aw)))
    goto fail;
  for (int h = 0; h < m->heads; h++)
    if ((rc = spr_attend_head_alloc(&x->heads[h], mc, m->tokens, m->head_dim, 0))) goto fail;
  x->O = malloc((size_t)m->tokens * m->head_dim * sizeof *x->O);
  x->logits = malloc((size_t)m->classes * sizeof *x->logits);
  if (!x->O || !x->logits) {
    rc = spr_error(SPR_ENOMEM, "vit: out of memory");
    goto fail;
  }
  *out = x;
  return 0;
fail:
  spr_vit_ctx_free(x);
  return rc;
}

/* One layer's attention under scheme s: every head's output into the
 * activations of x. */
static int attend_layer(const spr_config *mc, const spr_vit *m, int s, int l, int trial,
                        spr_vit_ctx *x, spr_vit_image_stats *st) {
  const int H = m->heads, n = m->tokens;
  int rc;
  for (int h = 0; h < H; h++)
    spr_vit_head_qkv(m, x->vw, h, x->heads[h].Q, x->heads[h].K, x->heads[h].V);
  if (s == SPR_VIT_EXACT) {
    for (int h = 0; h < H; h++) {
      if ((rc = spr_attend_digital(mc, &x->heads[h], x->aw))) return rc;
      spr_vit_head_out(m, x->vw, h, spr_attend_exact_output(x->aw));
      st->kept[l] += spr_pair_count(n, mc->wl.causal);
    }
    return 0;
  }
  for (int h = 0; h < H; h++)
    if ((rc = spr_attend_ideal(mc, l, h, &x->heads[h], x->aw, &x->res[h]))) return rc;
  if (s == SPR_SCHEME_SPRINT) {
    /* thresholds of this image's layer, as the pipeline sets them for a
     * sequence, then the analog decisions */
    spr_attend_range(mc, x->heads, H, x->res);
    if (mc->thr.mode == SPR_THR_KEEP_RATE)
      for (int h = 0; h < H; h++)
        if ((rc = spr_attend_count(mc, &x->heads[h], &x->res[h]))) return rc;
    if ((rc = spr_attend_thresholds(mc, l, x->heads, H, m->layer[l].theta, x->aw, x->res,
                                    &st->theta_saturated)))
      return rc;
    for (int h = 0; h < H; h++)
      if ((rc = spr_attend_analog(mc, l, h, trial, &x->heads[h], x->aw, &x->res[h]))) return rc;
  }
  for (int h = 0; h < H; h++) {
    spr_scheme_result sr;
    if ((rc = spr_attend_digital(mc, &x->heads[h], x->aw)) ||
        (rc = spr_attend_scheme(mc, s, &x->heads[h], x->aw, &sr, x->O)))
      return rc;
    spr_vit_head_out(m, x->vw, h, x->O);
    st->kept[l] += llround(sr.keep_rate * (double)spr_pair_count(n, mc->wl.causal));
    st->bytes_fetched += sr.bytes_fetched;
    st->energy_J += sr.energy_total_J;
    st->cycles += sr.cycles_total;
  }
  return 0;
}

int spr_vit_infer(const spr_config *mc, const spr_vit *m, int s, const uint8_t *image, int trial,
                  spr_vit_ctx *x, float *logits, spr_vit_image_stats *st) {
  memset(st, 0, sizeof *st);
  if (s < 0 || s >= SPR_VIT_N_SCHEMES)
    return spr_error(SPR_EINVAL, "vit: scheme %d outside [0, %d)", s, SPR_VIT_N_SCHEMES);
  int rc = spr_vit_embed(m, image, x->vw);
  for (int l = 0; l < m->depth && !rc; l++) {
    if ((rc = spr_vit_attn_in(m, l, x->vw))) break;
    if ((rc = attend_layer(mc, m, s, l, trial, x, st))) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s", spr_errmsg());
      /* the threshold messages name the layer already */
      if (!strncmp(msg, "layer ", 6)) return spr_error(rc, "%s: %s", spr_vit_scheme_name(s), msg);
      return spr_error(rc, "%s: layer %d: %s", spr_vit_scheme_name(s), l, msg);
    }
    rc = spr_vit_attn_out(m, l, x->vw);
  }
  if (!rc) rc = spr_vit_logits(m, x->vw, logits);
  return rc;
}

void spr_vit_eval_result_free(spr_vit_eval_result *r) {
  if (!r) return;
  free(r->labels);
  for (int s = 0; s < SPR_VIT_N_SCHEMES; s++) {
    free(r->pred[s]);
    free(r->energy_J[s]);
    free(r->cycles[s]);
    free(r->keep_rate[s]);
    free(r->bytes_fetched[s]);
  }
  memset(r, 0, sizeof *r);
}

int spr_vit_eval_run(const spr_config *c, const spr_vit *m, const char *model_path,
                     const spr_fmnist *data, int threads, volatile sig_atomic_t *cancel,
                     spr_vit_eval_result *out) {
  memset(out, 0, sizeof *out);
  if (threads < 1 || threads > 1024)
    return spr_error(SPR_EINVAL, "vit: thread count %d outside [1, 1024]", threads);
  if (data->rows != m->side || data->cols != m->side)
    return spr_error(SPR_EINVAL, "vit: the images are %d x %d pixels; the model %s takes %d x %d",
                     data->rows, data->cols, model_path, m->side, m->side);
  const int N = c->wl.images, first = c->wl.first_image;
  if (N < 1 || first < 0 || (int64_t)first + N > data->count)
    return spr_error(SPR_EINVAL, "vit: workload.first_image %d + workload.images %d exceed the %d "
                     "test images", first, N, data->count);
  spr_config mc;
  int rc = spr_vit_config(c, m, model_path, &mc);
  if (rc) return rc;
  const int S = SPR_VIT_N_SCHEMES, L = m->depth;
  out->n_images = N;
  out->first_image = first;
  out->depth = L;
  out->heads = m->heads;
  out->tokens = m->tokens;
  out->classes = m->classes;
  out->head_dim = m->head_dim;
  if (threads > N) threads = N;
  spr_vit_ctx **ctx = calloc((size_t)threads, sizeof *ctx);
  spr_vit_image_stats *st = calloc((size_t)N * S, sizeof *st);
  int *rcs = calloc((size_t)N, sizeof *rcs);
  char (*msgs)[512] = calloc((size_t)N, sizeof *msgs);
  out->labels = malloc((size_t)N);
  rc = !ctx || !st || !rcs || !msgs || !out->labels;
  for (int s = 0; s < S && !rc; s++) {
    if (!spr_vit_scheme_on(c, s)) continue;
    out->scheme[s].ran = 1;
    out->pred[s] = malloc((size_t)N);
    out->energy_J[s] = malloc((size_t)N * sizeof(double));
    out->cycles[s] = malloc((size_t)N * sizeof(double));
    out->keep_rate[s] = malloc((size_t)N * sizeof(double));
    out->bytes_fetched[s] = malloc((size_t)N * sizeof(int64_t));
    rc = !out->pred[s] || !out->energy_J[s] || !out->cycles[s] || !out->keep_rate[s] ||
         !out->bytes_fetched[s];
  }
  if (rc) rc = spr_error(SPR_ENOMEM, "vit: out of memory for %d images", N);
  for (int t = 0; t < threads && !rc; t++) rc = spr_vit_ctx_alloc(&mc, m, &ctx[t]);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (!rc) {
    openblas_set_num_threads(1);
    memcpy(out->labels, data->labels + first, (size_t)N);
    /* after a failing image, images not yet started are skipped (the
     * first failing image in image order is reported below) */
    int failed = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int i = 0; i < N; i++) {
      spr_vit_ctx *x = ctx[omp_get_thread_num()];
      const uint8_t *img = data->pixels + (size_t)(first + i) * m->side * m->side;
      int r = 0, stop;
#pragma omp atomic read
      stop = failed;
      if (stop) {
        rcs[i] = SPR_ECANCELED;
        continue;
      }
      if (cancel && *cancel) r = spr_error(SPR_ECANCELED, "interrupted");
      for (int s = 0; s < S && !r; s++) {
        if (!out->scheme[s].ran) continue;
        r = spr_vit_infer(&mc, m, s, img, first + i, x, x->logits, &st[(size_t)i * S + s]);
        if (!r) out->pred[s][i] = (uint8_t)spr_vit_argmax(x->logits, m->classes);
      }
      if (r) {
        rcs[i] = r;
        snprintf(msgs[i], sizeof msgs[i], "%s", spr_errmsg());
#pragma omp atomic write
        failed = 1;
      }
    }
    /* the first real failure in image order, else an interruption */
    for (int i = 0; i < N && !rc; i++)
      if (rcs[i] && rcs[i] != SPR_ECANCELED)
        rc = spr_error(rcs[i], "vit: test image %d: %s", first + i, msgs[i]);
    for (int i = 0; i < N && !rc; i++)
      if (rcs[i]) rc = spr_error(SPR_ECANCELED, "interrupted");
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  out->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  /* totals in image order: the same sums for any thread count */
  const double pairs = (double)m->heads * (double)spr_pair_count(m->tokens, mc.wl.causal);
  for (int s = 0; s < S && !rc; s++) {
    spr_vit_metrics *mt = &out->scheme[s];
    if (!mt->ran) continue;
    int64_t correct = 0, agree = 0, kept = 0, kl[SPR_MAX_LAYERS] = {0};
    double e = 0, cy = 0, by = 0;
    for (int i = 0; i < N; i++) {
      const spr_vit_image_stats *q = &st[(size_t)i * S + s];
      int64_t ki = 0;
      for (int l = 0; l < L; l++) {
        kl[l] += q->kept[l];
        ki += q->kept[l];
      }
      kept += ki;
      correct += out->pred[s][i] == out->labels[i];
      agree += out->pred[s][i] == out->pred[SPR_VIT_EXACT][i];
      out->energy_J[s][i] = s == SPR_VIT_EXACT ? NAN : q->energy_J;
      out->cycles[s][i] = s == SPR_VIT_EXACT ? NAN : q->cycles;
      out->bytes_fetched[s][i] = s == SPR_VIT_EXACT ? 0 : q->bytes_fetched;
      out->keep_rate[s][i] = (double)ki / (pairs * L);
      e += q->energy_J;
      cy += q->cycles;
      by += (double)q->bytes_fetched;
      mt->theta_saturated += q->theta_saturated;
    }
    mt->accuracy = (double)correct / N;
    mt->agreement = (double)agree / N;
    mt->keep_rate = (double)kept / (pairs * L * N);
    for (int l = 0; l < L; l++) mt->keep_rate_layer[l] = (double)kl[l] / (pairs * N);
    mt->energy_J = s == SPR_VIT_EXACT ? NAN : e;
    mt->cycles = s == SPR_VIT_EXACT ? NAN : cy;
    mt->bytes_fetched = s == SPR_VIT_EXACT ? NAN : by;
  }
  if (ctx)
    for (int t = 0; t < threads; t++) spr_vit_ctx_free(ctx[t]);
  free(ctx);
  free(st);
  free(rcs);
  free(msgs);
  if (rc) spr_vit_eval_result_free(out);
  return rc;
}

int spr_vit_eval(const spr_config *c, int threads, spr_vit_eval_result *out) {
  memset(out, 0, sizeof *out);
  spr_vit m;
  spr_fmnist data;
  int rc = spr_vit_load(c->wl.model, &m);
  if (rc) return rc;
  if ((rc = spr_fmnist_load(c->wl.dataset, "t10k", &data))) {
    spr_vit_free(&m);
    return rc;
  }
  rc = spr_vit_eval_run(c, &m, c->wl.model, &data, threads, NULL, out);
  spr_fmnist_free(&data);
  spr_vit_free(&m);
  return rc;
}

/* ---- output ------------------------------------------------------------- */

static int put_str(hid_t loc, const char *obj, const char *name, const char *v) {
  return H5LTset_attribute_string(loc, obj, name, v) < 0 ? -1 : 0;
}

static int put_f64(hid_t loc, const char *obj, const char *name, double v) {
  return H5LTset_attribute_double(loc, obj, name, &v, 1) < 0 ? -1 : 0;
}

static int put_i64(hid_t loc, const char *obj, const char *name, int64_t v) {
  long long x = v;
  return H5LTset_attribute_long_long(loc, obj, name, &x, 1) < 0 ? -1 : 0;
}

/* 1-D dataset of n values with a unit and a description. */
static int put_vec(hid_t f, const char *name, hid_t type, hsize_t n, const void *v,
                   const char *unit, const char *desc) {
  if (H5LTmake_dataset(f, name, 1, &n, type, v) < 0) return -1;
  if (put_str(f, name, "unit", unit) || put_str(f, name, "description", desc)) return -1;
  return 0;
}

static int write_body(hid_t f, const spr_config *c, const spr_vit_eval_result *r,
                      const char *version) {
  /* the configuration as run: the workload sizes are the model's */
  spr_config *mc = malloc(sizeof *mc);
  if (!mc) return -2;
  *mc = *c;
  mc->wl.seq_len = r->tokens;
  mc->wl.n_layers = r->depth;
  mc->wl.n_heads = r->heads;
  mc->wl.head_dim = r->head_dim;
  char *ini = spr_config_to_ini(mc);
  free(mc);
  if (!ini) return -2;
  int bad = put_str(f, "/", "program", "sprintsim") || put_str(f, "/", "version", version) ||
            put_str(f, "/", "format", "sprintsim-vit-eval") ||
            put_i64(f, "/", "format_version", 1) ||
            put_str(f, "/", "model", c->wl.model) || put_str(f, "/", "dataset", c->wl.dataset) ||
            put_i64(f, "/", "first_image", r->first_image) ||
            put_i64(f, "/", "images", r->n_images) || put_i64(f, "/", "depth", r->depth) ||
            put_i64(f, "/", "heads", r->heads) || put_i64(f, "/", "tokens", r->tokens) ||
            put_f64(f, "/", "seconds", r->seconds);
  if (!bad) {
    /* the seed is a uint64: H5LT has no setter for it */
    const uint64_t seed = c->seed;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp < 0 ? -1 : H5Acreate2(f, "seed", H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    bad = a < 0 || H5Awrite(a, H5T_NATIVE_UINT64, &seed) < 0;
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
  }
  hid_t g = bad ? -1 : H5Gcreate2(f, "/config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  bad = bad || g < 0 || H5Gclose(g) < 0 || H5LTmake_dataset_string(f, "/config/ini", ini) < 0;
  free(ini);
  const hsize_t N = (hsize_t)r->n_images;
  int32_t *idx = bad ? NULL : malloc(N * sizeof *idx);
  if (!bad && !idx) return -2;
  for (hsize_t i = 0; idx && i < N; i++) idx[i] = r->first_image + (int32_t)i;
  bad = bad || put_vec(f, "/image_index", H5T_NATIVE_INT32, N, idx, "1",
                       "index of each evaluated image in the test set") ||
        put_vec(f, "/labels", H5T_NATIVE_UINT8, N, r->labels, "1", "true class of each image");
  free(idx);
  g = bad ? -1 : H5Gcreate2(f, "/schemes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  bad = bad || g < 0 || H5Gclose(g) < 0;
  for (int s = 0; s < SPR_VIT_N_SCHEMES && !bad; s++) {
    const spr_vit_metrics *mt = &r->scheme[s];
    if (!mt->ran) continue;
    char p[64], d[96];
    snprintf(p, sizeof p, "/schemes/%s", spr_vit_scheme_name(s));
    g = H5Gcreate2(f, p, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad = g < 0 || H5Gclose(g) < 0 || put_f64(f, p, "accuracy", mt->accuracy) ||
          put_f64(f, p, "agreement", mt->agreement) || put_f64(f, p, "keep_rate", mt->keep_rate) ||
          put_f64(f, p, "bytes_fetched", mt->bytes_fetched) ||
          put_f64(f, p, "energy_J", mt->energy_J) || put_f64(f, p, "cycles", mt->cycles) ||
          put_i64(f, p, "theta_saturated", mt->theta_saturated);
#define VEC(name, type, data, unit, desc) \
  (snprintf(d, sizeof d, "%s/%s", p, name), put_vec(f, d, type, N, data, unit, desc))
    bad = bad || VEC("pred", H5T_NATIVE_UINT8, r->pred[s], "1", "predicted class of each image") ||
          VEC("keep_rate", H5T_NATIVE_DOUBLE, r->keep_rate[s], "1",
              "kept (query, key) pairs over all pairs of every layer and head, per image") ||
          VEC("bytes_fetched", H5T_NATIVE_INT64, r->bytes_fetched[s], "B",
              "ReRAM bytes fetched into the on-chip buffer, per image (0 for exact)") ||
          VEC("energy_J", H5T_NATIVE_DOUBLE, r->energy_J[s], "J",
              "ledger energy of the attention of every layer and head, per image (NaN for exact)") ||
          VEC("cycles", H5T_NATIVE_DOUBLE, r->cycles[s], "1",
              "ledger latency in cycles, heads one after another, per image (NaN for exact)");
#undef VEC
    if (!bad) {
      hsize_t L = (hsize_t)r->depth;
      snprintf(d, sizeof d, "%s/keep_rate_layer", p);
      bad = put_vec(f, d, H5T_NATIVE_DOUBLE, L, mt->keep_rate_layer, "1",
                    "keep rate of each layer over the evaluated images");
    }
  }
  return bad ? -1 : 0;
}

int spr_vit_eval_write(const char *path, const spr_config *c, const spr_vit_eval_result *r,
                       const char *version) {
  size_t len = strlen(path);
  char *tmp = malloc(len + 16);
  if (!tmp) return spr_error(SPR_ENOMEM, "%s: out of memory", path);
  snprintf(tmp, len + 16, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int rc = spr_error(SPR_EIO, "%s: cannot create a temporary file: %s", path, strerror(errno));
    free(tmp);
    return rc;
  }
  /* the mode a plain create would give (mkstemp makes 0600) */
  mode_t um = umask(0);
  umask(um);
  fchmod(fd, 0666 & ~um);
  close(fd);
  spr__h5_quiet q;
  spr__h5_quiet_on(&q);
  int rc = 0;
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    rc = spr_error(SPR_EHDF5, "%s: cannot create the HDF5 file", tmp);
  } else {
    int b = write_body(f, c, r, version);
    if (H5Fclose(f) < 0 && !b) b = -1;
    if (b == -2) rc = spr_error(SPR_ENOMEM, "%s: out of memory", tmp);
    else if (b) rc = spr_error(SPR_EHDF5, "%s: cannot write the evaluation (disk full?)", tmp);
  }
  spr__h5_quiet_off(&q);
  if (!rc && rename(tmp, path))
    rc = spr_error(SPR_EIO, "%s: cannot rename %s: %s", path, tmp, strerror(errno));
  if (rc) unlink(tmp);
  free(tmp);
  return rc;
}
