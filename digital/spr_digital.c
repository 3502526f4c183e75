/* spr_digital.c - survivor fetch and buffer reuse, exact recompute over the
 * survivors, dense reference attention and accuracy metrics (model and
 * equations in spr_digital.h and docs/digital.md). */
#include "config.h"
#include "spr_digital.h"
#include "spr_error.h"
#include "spr_mat.h"
#include "spr_result.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *spr_dig_policy_name(int policy) {
  switch (policy) {
  case SPR_DIG_SPRINT: return "sprint";
  case SPR_DIG_LRU: return "lru";
  default: return NULL;
  }
}

void spr_dig_fetch_default(spr_dig_fetch_params *p) {
  p->buffer_bytes = 16384; /* S-SPRINT, 16 KB (SPRINT, MICRO 2022) */
  p->key_bits = 8;         /* all bits of the quantized key */
  p->value_bits = 8;
  p->policy = SPR_DIG_SPRINT;
}

void spr_dig_metric_default(spr_dig_metric_params *p) {
  p->top_k = 5;
  p->causal = 0;
}

int spr_dig_ws_alloc(spr_dig_ws *ws, int n, int d) {
  if (!ws) return spr_error(SPR_EINVAL, "digital: workspace is NULL");
  memset(ws, 0, sizeof *ws);
  if (n < 1 || d < 1)
    return spr_error(SPR_EINVAL, "digital: bad workspace shape n=%d d=%d", n, d);
  const size_t un = (size_t)n;
  ws->idx = malloc(un * sizeof *ws->idx);
  ws->buf = malloc(un * sizeof *ws->buf);
  ws->prev = malloc(un * sizeof *ws->prev);
  ws->next = malloc(un * sizeof *ws->next);
  ws->res = malloc(un);
  ws->heap = malloc(un * sizeof *ws->heap);
  ws->s = malloc(un * sizeof *ws->s);
  ws->acc = malloc((size_t)d * sizeof *ws->acc);
  ws->q_hits = malloc(un * sizeof *ws->q_hits);
  ws->q_fetches = malloc(un * sizeof *ws->q_fetches);
  ws->q_overflow = malloc(un * sizeof *ws->q_overflow);
  if (!ws->idx || !ws->buf || !ws->prev || !ws->next || !ws->res || !ws->heap || !ws->s ||
      !ws->acc || !ws->q_hits || !ws->q_fetches || !ws->q_overflow) {
    spr_dig_ws_free(ws);
    return spr_error(SPR_ENOMEM, "digital: out of memory for workspace n=%d d=%d", n, d);
  }
  ws->n = n;
  ws->d = d;
  return 0;
}

void spr_dig_ws_free(spr_dig_ws *ws) {
  if (!ws) return;
  free(ws->idx);
  free(ws->buf);
  free(ws->prev);
  free(ws->next);
  free(ws->res);
  free(ws->heap);
  free(ws->s);
  free(ws->acc);
  free(ws->q_hits);
  free(ws->q_fetches);
  free(ws->q_overflow);
  memset(ws, 0, sizeof *ws);
}

/* Common checks of shape and workspace; `what` names the caller. */
static int check_shape(const char *what, int n, int d, const spr_dig_ws *ws) {
  if (n < 1) return spr_error(SPR_EINVAL, "digital: %s: n=%d < 1", what, n);
  if (d < 1) return spr_error(SPR_EINVAL, "digital: %s: d=%d < 1", what, d);
  if (ws && (n > ws->n || d > ws->d))
    return spr_error(SPR_EINVAL, "digital: %s: n=%d x d=%d exceeds workspace %d x %d", what, n,
                     d, ws->n, ws->d);
  return 0;
}

/* Survivors of one mask row, ascending, into idx; returns their count.
 * Bits j >= n of the last byte are ignored. */
static int row_survivors(const uint8_t *row, int n, int *idx) {
  const int nb = (n + 7) / 8, tail = n & 7;
  int m = 0;
  for (int b = 0; b < nb; b++) {
    unsigned x = row[b];
    if (b == nb - 1 && tail) x &= (1u << tail) - 1u;
    while (x) {
      idx[m++] = 8 * b + __builtin_ctz(x);
      x &= x - 1u;
    }
  }
  return m;
}

static inline int mask_bit(const uint8_t *row, int j) { return row[j >> 3] >> (j & 7) & 1; }

/* LRU list of evictable resident tokens, least recently used at the head. */
typedef struct {
  int *prev, *next;
  int head, tail;
} lru_list;

static void lru_unlink(lru_list *l, int j) {
  if (l->prev[j] >= 0) l->next[l->prev[j]] = l->next[j];
  else l->head = l->next[j];
  if (l->next[j] >= 0) l->prev[l->next[j]] = l->prev[j];
  else l->tail = l->prev[j];
  l->prev[j] = l->next[j] = -1;
}

static void lru_append(lru_list *l, int j) {
  l->prev[j] = l->tail;
  l->next[j] = -1;
  if (l->tail >= 0) l->next[l->tail] = j;
  else l->head = j;
  l->tail = j;
}

int spr_dig_fetch(const spr_dig_fetch_params *p, const uint8_t *mask, int n,
                  int d, spr_dig_fetch_stats *out, spr_dig_ws *ws) {
  if (!p) return spr_error(SPR_EINVAL, "digital: fetch: params is NULL");
  if (!mask) return spr_error(SPR_EINVAL, "digital: fetch: mask is NULL");
  if (!out) return spr_error(SPR_EINVAL, "digital: fetch: stats is NULL");
  if (!ws) return spr_error(SPR_EINVAL, "digital: fetch: workspace is NULL");
  int rc = check_shape("fetch", n, d, ws);
  if (rc) return rc;
  if (p->key_bits < 0 || p->key_bits > 32)
    return spr_error(SPR_EINVAL, "digital: fetch: key_bits=%d outside 0..32 (0: values only)", p->key_bits);
  if (p->value_bits < 1 || p->value_bits > 32)
    return spr_error(SPR_EINVAL, "digital: fetch: value_bits=%d outside 1..32", p->value_bits);
  if (!spr_dig_policy_name(p->policy))
    return spr_error(SPR_EINVAL, "digital: fetch: unknown buffer policy %d (0 sprint, 1 lru)",
                     p->policy);
  const int64_t tok = ((int64_t)d * p->key_bits + 7) / 8 + ((int64_t)d * p->value_bits + 7) / 8;
  if (p->buffer_bytes < tok)
    return spr_error(SPR_EINVAL,
                     "digital: fetch: buffer_bytes=%lld holds no token of %lld bytes "
                     "(d=%d, key_bits=%d, value_bits=%d)",
                     (long long)p->buffer_bytes, (long long)tok, d, p->key_bits, p->value_bits);
  const int64_t cap = p->buffer_bytes / tok;

  memset(out, 0, sizeof *out);
  out->token_bytes = tok;
  out->capacity_tokens = cap;
  const size_t rb = spr_mask_row_bytes(n);
  memset(ws->res, 0, (size_t)n);
  int *idx = ws->idx;
  uint8_t *res = ws->res;
  int64_t occ = 0;  /* resident tokens */
  int nbuf = 0;     /* SPRINT: resident tokens listed in ws->buf */
  lru_list l = {ws->prev, ws->next, -1, -1};
  if (p->policy == SPR_DIG_LRU)
    for (int j = 0; j < n; j++) l.prev[j] = l.next[j] = -1;
  double new_sum = 0;

  for (int i = 0; i < n; i++) {
    const uint8_t *row = mask + (size_t)i * rb;
    const int m = row_survivors(row, n, idx);
    int h = 0, f = 0, o = 0;
    if (p->policy == SPR_DIG_SPRINT) {
      /* keep B_(i-1) AND P_i (the hits), evict B_(i-1) AND NOT P_i */
      for (int t = 0; t < nbuf; t++) {
        const int j = ws->buf[t];
        if (mask_bit(row, j)) h++;
        else res[j] = 0;
      }
      int64_t free_slots = cap - h;
      for (int t = 0; t < m; t++) {
        const int j = idx[t];
        if (res[j]) continue;
        f++;
        if (free_slots > 0) {
          res[j] = 1;
          free_slots--;
        } else {
          o++;
        }
      }
      nbuf = 0;
      for (int t = 0; t < m; t++)
        if (res[idx[t]]) ws->buf[nbuf++] = idx[t];
      occ = nbuf;
    } else {
      /* pin the hits: out of the evictable list for this query */
      for (int t = 0; t < m; t++)
        if (res[idx[t]]) {
          h++;
          lru_unlink(&l, idx[t]);
        }
      for (int t = 0; t < m; t++) {
        const int j = idx[t];
        if (res[j]) continue;
        f++;
        if (occ < cap) {
          res[j] = 1;
          occ++;
        } else if (l.head >= 0) {
          const int victim = l.head; /* smallest (last use, key index) */
          lru_unlink(&l, victim);
          res[victim] = 0;
          res[j] = 1;
        } else {
          o++; /* every slot holds a token of P_i: stream */
        }
      }
      /* tokens used by query i become the most recent, ascending key */
      for (int t = 0; t < m; t++)
        if (res[idx[t]]) lru_append(&l, idx[t]);
    }
    ws->q_hits[i] = h;
    ws->q_fetches[i] = f;
    ws->q_overflow[i] = o;
    out->uses += m;
    out->hits += h;
    out->fetches += f;
    out->overflow_tokens += o;
    if (i == 0) out->cold_fetches = f;
    else new_sum += (double)f / n;
    if (occ > out->peak_tokens) out->peak_tokens = occ;
  }
  if (out->peak_tokens > cap || out->hits + out->fetches != out->uses)
    return spr_error(SPR_EINTERNAL, "digital: fetch: broken invariant (peak %lld, capacity %lld)",
                     (long long)out->peak_tokens, (long long)cap);
  out->bytes_fetched = out->fetches * tok;
  out->bytes_reused = out->hits * tok;
  out->peak_bytes = out->peak_tokens * tok;
  out->new_fetch_frac = n > 1 ? new_sum / (n - 1) : 0.0;
  return 0;
}

static int check_scale(const char *name, float s) {
  if (!(isfinite(s) && s > 0))
    return spr_error(SPR_EINVAL, "digital: attend: %s=%g must be finite and > 0", name, (double)s);
  return 0;
}

int spr_dig_attend(const int8_t *q, float q_scale, const int8_t *k,
                   float k_scale, const int8_t *v, float v_scale,
                   const uint8_t *mask, int n, int d, float *O,
                   spr_dig_attend_stats *st, spr_dig_ws *ws) {
  if (!q) return spr_error(SPR_EINVAL, "digital: attend: q is NULL");
  if (!k) return spr_error(SPR_EINVAL, "digital: attend: k is NULL");
  if (!v) return spr_error(SPR_EINVAL, "digital: attend: v is NULL");
  if (!mask) return spr_error(SPR_EINVAL, "digital: attend: mask is NULL");
  if (!O) return spr_error(SPR_EINVAL, "digital: attend: O is NULL");
  if (!ws) return spr_error(SPR_EINVAL, "digital: attend: workspace is NULL");
  int rc = check_shape("attend", n, d, ws);
  if (rc) return rc;
  if ((rc = check_scale("q_scale", q_scale)) || (rc = check_scale("k_scale", k_scale)) ||
      (rc = check_scale("v_scale", v_scale)))
    return rc;
  /* s_ij = alpha * (q_i . k_j), the dot product exact in integers */
  const double alpha = (double)q_scale * (double)k_scale / sqrt((double)d);
  const size_t rb = spr_mask_row_bytes(n);
  int64_t surv = 0, empty = 0;
  double *s = ws->s, *acc = ws->acc;
  for (int i = 0; i < n; i++) {
    float *oi = O + (size_t)i * d;
    const int m = row_survivors(mask + (size_t)i * rb, n, ws->idx);
    surv += m;
    if (m == 0) {
      for (int u = 0; u < d; u++) oi[u] = 0.0f;
      empty++;
      continue;
    }
    const int8_t *qi = q + (size_t)i * d;
    double mx = -INFINITY;
    for (int t = 0; t < m; t++) {
      const int8_t *kj = k + (size_t)ws->idx[t] * d;
      double sv;
      if (d <= 131072) {
        /* |q_u k_u| <= 128^2, so d <= 2^17 products fit 32 bits exactly
         * (and the loop vectorises) */
        int32_t dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int u = 0; u < d; u++) dot += (int32_t)qi[u] * (int32_t)kj[u];
        sv = (double)dot;
      } else {
        int64_t dot = 0;
        for (int u = 0; u < d; u++) dot += (int32_t)qi[u] * (int32_t)kj[u];
        sv = (double)dot;
      }
      s[t] = alpha * sv;
      if (s[t] > mx) mx = s[t];
    }
    double z = 0;
    for (int t = 0; t < m; t++) {
      s[t] = exp(s[t] - mx);
      z += s[t];
    }
    for (int u = 0; u < d; u++) acc[u] = 0;
    for (int t = 0; t < m; t++) {
      const int8_t *vj = v + (size_t)ws->idx[t] * d;
      const double w = s[t];
#pragma omp simd /* lanes are separate u: the same sums as the scalar loop */
      for (int u = 0; u < d; u++) acc[u] += w * (double)vj[u];
    }
    const double f = (double)v_scale / z;
    for (int u = 0; u < d; u++) oi[u] = (float)(f * acc[u]);
  }
  if (st) {
    st->survivors = surv;
    st->empty_queries = empty;
  }
  return 0;
}

/* spr_dig_dense (causal = 0) and spr_dig_dense_causal: row i's softmax
 * over keys 0 .. nk_i - 1, nk_i = n or i + 1; P is 0 beyond. */
static int dense(const float *Q, const float *K, const float *V, int n, int d, int causal,
                 float *P, float *O) {
  if (!Q) return spr_error(SPR_EINVAL, "digital: dense: Q is NULL");
  if (!K) return spr_error(SPR_EINVAL, "digital: dense: K is NULL");
  if (!V) return spr_error(SPR_EINVAL, "digital: dense: V is NULL");
  if (!P) return spr_error(SPR_EINVAL, "digital: dense: P is NULL");
  if (!O) return spr_error(SPR_EINVAL, "digital: dense: O is NULL");
  int rc = check_shape("dense", n, d, NULL);
  if (rc) return rc;
  /* the GEMM views are read-only for Q, K, V */
  spr_matf mq = spr_matf_view((float *)Q, n, d), mk = spr_matf_view((float *)K, n, d);
  spr_matf mv = spr_matf_view((float *)V, n, d), mp = spr_matf_view(P, n, n);
  if ((rc = spr_matf_gemm((float)(1.0 / sqrt((double)d)), mq, 0, mk, 1, 0.0f, mp))) return rc;
  for (int i = 0; i < n; i++) {
    float *row = P + (size_t)i * n;
    const int nk = causal ? i + 1 : n;
    double mx = -INFINITY;
    for (int j = 0; j < nk; j++) {
      if (!isfinite(row[j]))
        return spr_error(SPR_EINVAL, "digital: dense: score of query %d, key %d is %g (not finite)",
                         i, j, (double)row[j]);
      if (row[j] > mx) mx = row[j];
    }
    double z = 0;
    for (int j = 0; j < nk; j++) z += exp((double)row[j] - mx);
    for (int j = 0; j < nk; j++) row[j] = (float)(exp((double)row[j] - mx) / z);
    for (int j = nk; j < n; j++) row[j] = 0.0f;
  }
  return spr_matf_gemm(1.0f, mp, 0, mv, 0, 0.0f, spr_matf_view(O, n, d));
}

int spr_dig_dense(const float *Q, const float *K, const float *V, int n, int d,
                  float *P, float *O) {
  return dense(Q, K, V, n, d, 0, P, O);
}

int spr_dig_dense_causal(const float *Q, const float *K, const float *V, int n, int d,
                         float *P, float *O) {
  return dense(Q, K, V, n, d, 1, P, O);
}

/* Ranking of keys by dense probability: a before b when p[a] > p[b], or
 * p[a] == p[b] and a < b. */
static inline int ranks_before(const float *p, int a, int b) {
  return p[a] > p[b] || (p[a] == p[b] && a < b);
}

/* Min-heap on the ranking: the root is the last-ranked of the kept keys. */
static void heap_sift_down(int *h, int k, int r, const float *p) {
  for (;;) {
    int c = 2 * r + 1;
    if (c >= k) return;
    if (c + 1 < k && ranks_before(p, h[c], h[c + 1])) c++;
    if (!ranks_before(p, h[r], h[c])) return;
    int t = h[r];
    h[r] = h[c];
    h[c] = t;
    r = c;
  }
}

static void heap_sift_up(int *h, int r, const float *p) {
  while (r > 0) {
    int par = (r - 1) / 2;
    if (!ranks_before(p, h[par], h[r])) return;
    int t = h[r];
    h[r] = h[par];
    h[par] = t;
    r = par;
  }
}

int spr_dig_metrics(const spr_dig_metric_params *p, const float *O,
                    const float *O_dense, const float *P_dense,
                    const uint8_t *mask, int n, int d, spr_dig_accuracy *out,
                    spr_dig_ws *ws) {
  if (!p) return spr_error(SPR_EINVAL, "digital: metrics: params is NULL");
  if (!O) return spr_error(SPR_EINVAL, "digital: metrics: O is NULL");
  if (!O_dense) return spr_error(SPR_EINVAL, "digital: metrics: O_dense is NULL");
  if (!P_dense) return spr_error(SPR_EINVAL, "digital: metrics: P_dense is NULL");
  if (!mask) return spr_error(SPR_EINVAL, "digital: metrics: mask is NULL");
  if (!out) return spr_error(SPR_EINVAL, "digital: metrics: output is NULL");
  if (!ws) return spr_error(SPR_EINVAL, "digital: metrics: workspace is NULL");
  int rc = check_shape("metrics", n, d, ws);
  if (rc) return rc;
  const int k = p->top_k;
  if (k < 1 || k > n)
    return spr_error(SPR_EINVAL, "digital: metrics: top_k=%d outside 1..n=%d", k, n);
  const size_t rb = spr_mask_row_bytes(n);
  double num = 0, den = 0, cos_sum = 0, cos_min = INFINITY, mass = 0, top1 = 0, topk = 0;
  int cos_arg = 0;
  int *h = ws->heap;
  for (int i = 0; i < n; i++) {
    const float *o = O + (size_t)i * d, *od = O_dense + (size_t)i * d;
    double dot = 0, no = 0, nd = 0;
    for (int u = 0; u < d; u++) {
      const double a = o[u], b = od[u];
      num += (a - b) * (a - b);
      dot += a * b;
      no += a * a;
      nd += b * b;
    }
    den += nd;
    double c;
    if (no == 0 && nd == 0) c = 1.0;
    else if (no == 0 || nd == 0) c = 0.0;
    else c = dot / sqrt(no * nd);
    cos_sum += c;
    if (c < cos_min) {
      cos_min = c;
      cos_arg = i;
    }
    const float *pr = P_dense + (size_t)i * n;
    const uint8_t *row = mask + (size_t)i * rb;
    /* causal: keys 0 .. i only, and at most i + 1 of them in the top k */
    const int nk = p->causal ? i + 1 : n, ki = k < nk ? k : nk;
    double mi = 0;
    int best = 0, sz = 0;
    for (int j = 0; j < nk; j++) {
      if (mask_bit(row, j)) mi += pr[j];
      if (ranks_before(pr, j, best)) best = j;
      if (sz < ki) {
        h[sz] = j;
        heap_sift_up(h, sz++, pr);
      } else if (ranks_before(pr, j, h[0])) {
        h[0] = j;
        heap_sift_down(h, ki, 0, pr);
      }
    }
    mass += mi;
    top1 += mask_bit(row, best);
    int hit = 0;
    for (int t = 0; t < ki; t++) hit += mask_bit(row, h[t]);
    topk += (double)hit / ki;
  }
  out->rel_fro = den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0.0);
  out->cos_mean = cos_sum / n;
  out->cos_min = cos_min;
  out->cos_min_query = cos_arg;
  out->mass_retained = mass / n;
  out->top1_recall = top1 / n;
  out->topk_recall = topk / n;
  out->top_k = k;
  return 0;
}
