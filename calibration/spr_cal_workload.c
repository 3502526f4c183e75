/* spr_cal_workload.c - a workload's programmed keys for the calibration's
 * arrays (spr_cal_workload.h). */
#include "config.h"
#include "spr_cal_workload.h"
#include "spr_config.h"
#include "spr_digital.h"
#include "spr_error.h"
#include "spr_fmnist.h"
#include "spr_model.h"
#include "spr_qkv.h"
#include "spr_quant.h"
#include "spr_synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void spr_cal_workload_free(spr_cal_workload *w) {
  if (!w) return;
  free(w->kmsb);
  free(w->q);
  memset(w, 0, sizeof *w);
}

static int alloc_codes(spr_cal_workload *w, int heads, int n, int d) {
  w->heads = heads;
  w->n = n;
  w->d = d;
  const size_t sz = (size_t)heads * n * d;
  w->kmsb = malloc(sz);
  w->q = malloc(sz);
  if (!w->kmsb || !w->q)
    return spr_error(SPR_ENOMEM, "out of memory for the keys of %d heads of %d x %d", heads, n, d);
  return 0;
}

/* Head h's codes from its float Q and K, as the run quantizes them. */
static int codes_of(const spr_config *c, spr_cal_workload *w, int h, const float *Q,
                    const float *K, int8_t *kq) {
  const size_t nd = (size_t)w->n * w->d;
  float s;
  int rc = spr_quant_sym(Q, nd, c->an.query_bits, w->q + (size_t)h * nd, &s);
  if (!rc) rc = spr_quant_sym(K, nd, c->xbar.key_bits, kq, &s);
  if (!rc) spr_quant_msb(kq, nd, c->xbar.key_bits, c->xbar.key_msb_bits, w->kmsb + (size_t)h * nd);
  return rc;
}

static int load_synthetic(const spr_config *c, spr_cal_workload *w) {
  const spr_workload_params *wl = &c->wl;
  const int L = wl->n_layers, H = wl->n_heads, n = wl->seq_len, d = wl->head_dim;
  int rc = alloc_codes(w, L * H, n, d);
  const size_t nd = (size_t)n * d;
  float *Q = malloc(nd * sizeof *Q), *K = malloc(nd * sizeof *K);
  int8_t *kq = malloc(nd);
  if (!rc && (!Q || !K || !kq)) rc = spr_error(SPR_ENOMEM, "out of memory");
  for (int l = 0; !rc && l < L; l++)
    for (int h = 0; !rc && h < H; h++)
      if (!(rc = spr_synth_head(wl, c->seed, l, h, Q, K, NULL))) rc = codes_of(c, w, l * H + h, Q, K, kq);
  snprintf(w->what, sizeof w->what, "synthetic %s, %d layers x %d heads, N = %d, d = %d, seed %llu",
           spr_preset_name(wl->preset), L, H, n, d, (unsigned long long)c->seed);
  free(Q);
  free(K);
  free(kq);
  return rc;
}

static int load_qkv(const spr_config *c0, const char *origin, spr_cal_workload *w) {
  spr_config c = *c0;
  /* the sizes from the file, as `run` takes them: a size the file does not
   * have is refused, naming key, value and file */
  int rc = spr_qkv_resolve(&c, origin);
  if (rc) return rc;
  spr_qkv *f = NULL;
  if ((rc = spr_qkv_open(c.wl.qkv_file, &f))) return rc;
  const int L = c.wl.n_layers, H = c.wl.n_heads, n = c.wl.seq_len, d = c.wl.head_dim;
  rc = alloc_codes(w, L * H, n, d);
  const size_t nd = (size_t)n * d;
  float *Q = malloc(nd * sizeof *Q), *K = malloc(nd * sizeof *K);
  int8_t *kq = malloc(nd);
  if (!rc && (!Q || !K || !kq)) rc = spr_error(SPR_ENOMEM, "out of memory");
  for (int l = 0; !rc && l < L; l++)
    for (int h = 0; !rc && h < H; h++)
      if (!(rc = spr_qkv_read_head(f, l, h, c.wl.qkv_item, Q, K, NULL)))
        rc = codes_of(&c, w, l * H + h, Q, K, kq);
  snprintf(w->what, sizeof w->what, "qkv %.400s item %d, %d layers x %d heads, N = %d, d = %d",
           c.wl.qkv_file, c.wl.qkv_item, L, H, n, d);
  spr_qkv_close(f);
  free(Q);
  free(K);
  free(kq);
  return rc;
}

static int load_model(const spr_config *c, spr_cal_workload *w) {
  spr_model m;
  int rc = spr_model_load(c->wl.model, &m);
  if (rc) return spr_error_prefix(rc, "workload.model");
  spr_fmnist data;
  int have_data = 0;
  const uint8_t *input = NULL;
  char item[64];
  if (m.input == SPR_MODEL_IMAGE) {
    if ((rc = spr_fmnist_load(c->wl.dataset, "t10k", &data))) goto done;
    have_data = 1;
    if (data.rows != m.side || data.cols != m.side || c->wl.first_image >= data.count) {
      rc = spr_error(SPR_EINVAL, "%s: image %d of %d x %d pixels does not match the model %s "
                     "(%d x %d; %d images)", c->wl.dataset, c->wl.first_image, data.rows,
                     data.cols, c->wl.model, m.side, m.side, data.count);
      goto done;
    }
    input = data.pixels + (size_t)c->wl.first_image * m.side * m.side;
    snprintf(item, sizeof item, "image %d", c->wl.first_image);
  } else {
    if (c->wl.first_window >= spr_model_windows(&m, m.n_eval)) {
      rc = spr_error(SPR_EINVAL, "%s: workload.first_window %d is beyond the %d windows of its "
                     "evaluation split", c->wl.model, c->wl.first_window,
                     spr_model_windows(&m, m.n_eval));
      goto done;
    }
    input = m.eval_tokens + (size_t)c->wl.first_window * m.tokens;
    snprintf(item, sizeof item, "window %d", c->wl.first_window);
  }
  const int n = m.tokens, d = m.head_dim, L = m.depth, H = m.heads;
  if ((rc = alloc_codes(w, L * H, n, d))) goto done;
  {
    const size_t nd = (size_t)n * d;
    float *Q = malloc(nd * sizeof *Q), *K = malloc(nd * sizeof *K), *V = malloc(nd * sizeof *V);
    float *O = malloc(nd * sizeof *O), *P = malloc((size_t)n * n * sizeof *P);
    int8_t *kq = malloc(nd);
    spr_model_ws *mw = NULL;
    if (!Q || !K || !V || !O || !P || !kq || spr_model_ws_alloc(&m, &mw))
      rc = spr_error(SPR_ENOMEM, "out of memory for the model %s", c->wl.model);
    /* the forward pass with exact attention; each head's K and Q as the
     * keys the arrays would hold for this item */
    if (!rc) rc = m.input == SPR_MODEL_IMAGE ? spr_model_embed_image(&m, input, mw)
                                             : spr_model_embed_text(&m, input, mw);
    for (int l = 0; !rc && l < L; l++) {
      if ((rc = spr_model_attn_in(&m, l, mw))) break;
      for (int h = 0; !rc && h < H; h++) {
        spr_model_head_qkv(&m, mw, h, Q, K, V);
        if ((rc = codes_of(c, w, l * H + h, Q, K, kq))) break;
        rc = m.causal ? spr_dig_dense_causal(Q, K, V, n, d, P, O) : spr_dig_dense(Q, K, V, n, d, P, O);
        if (!rc) spr_model_head_out(&m, mw, h, O);
      }
      if (!rc) rc = spr_model_attn_out(&m, l, mw);
    }
    spr_model_ws_free(mw);
    free(Q);
    free(K);
    free(V);
    free(O);
    free(P);
    free(kq);
  }
  snprintf(w->what, sizeof w->what, "model %.400s %s, %d layers x %d heads, N = %d, d = %d",
           c->wl.model, item, L, H, n, d);
done:
  if (rc) rc = spr_error_prefix(rc, "workload.model");
  if (have_data) spr_fmnist_free(&data);
  spr_model_free(&m);
  return rc;
}

int spr_cal_workload_load(const spr_config *c, const char *origin, spr_cal_workload *w) {
  memset(w, 0, sizeof *w);
  int rc;
  if (c->wl.source == SPR_SOURCE_QKV) rc = load_qkv(c, origin, w);
  else if (c->wl.source == SPR_SOURCE_MODEL || c->wl.source == SPR_SOURCE_VIT) rc = load_model(c, w);
  else rc = load_synthetic(c, w);
  if (!rc) {
    double s2 = 0;
    const size_t all = (size_t)w->heads * w->n * w->d;
    for (size_t k = 0; k < all; k++) s2 += (double)w->q[k] * w->q[k];
    w->q_rms = sqrt(s2 / (double)all);
  }
  if (rc) {
    spr_cal_workload_free(w);
    return spr_error_prefix(rc, "[calibrate] levels = workload");
  }
  return 0;
}

void spr_cal_workload_array(const spr_cal_workload *w, const spr_xbar_params *x, int head, int k0,
                            int r0, int R, int C, double *G) {
  const double dg = (x->g_max_S - x->g_min_S) / (double)((1 << x->cell_bits) - 1);
  const int8_t *km = w->kmsb + (size_t)head * w->n * w->d;
  for (int i = 0; i < R; i++)
    for (int c = 0; c < C; c++) {
      const int dim = r0 + i, key = k0 + c / 2;
      int level = 0;
      if (dim < w->d && key < w->n) {
        const int k = km[(size_t)key * w->d + dim];
        level = c % 2 == 0 ? (k > 0 ? k : 0) : (k < 0 ? -k : 0);
      }
      G[(size_t)i * C + c] = x->g_min_S + level * dg;
    }
}
