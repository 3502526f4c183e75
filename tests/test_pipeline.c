/* test_pipeline.c - the whole layer pipeline against brute force, and
 * reproducibility across thread counts (results and trace files). */
#include "config.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_pipeline.h"
#include "spr_quant.h"
#include "spr_synth.h"
#include "spr_test.h"
#include "spr_trace.h"
#include "spr_report.h"
#include "spr_baselines.h"
#include "spr_analog.h"

#include <hdf5.h>
#include <math.h>

static void small_config(spr_config *c, int all_off) {
  spr_config_default(c);
  c->wl.n_layers = 2;
  c->wl.n_heads = 3;
  c->wl.seq_len = 72;
  c->wl.head_dim = 24;
  c->xbar.rows = 16; /* 2 row tiles, 5 column tiles (8 keys each... 72/8 = 9) */
  c->xbar.cols = 16;
  c->seed = 2385;
  c->trace = SPR_TRACE_FULL;
  if (all_off) {
    spr_xbar_params *x = &c->xbar;
    x->variation = x->stuck = x->drift = 0;
    x->ir_drop = SPR_IR_OFF;
    spr_analog_params *a = &c->an;
    a->dac_error = a->read_noise = a->cmp_offset = a->cmp_noise = 0;
  }
  CU_ASSERT_FATAL(spr_config_resolve(c, "test") == 0);
}

static int bit(const uint8_t *m, int n, int i, int j) {
  return m[(size_t)i * spr_mask_row_bytes(n) + j / 8] >> (j % 8) & 1;
}

/* Everything off: analog masks equal brute-force thresholding of the
 * quantized scores, which are recomputed here from the workload. */
static void test_ideal_equals_brute_force(void) {
  spr_config c;
  small_config(&c, 1);
  spr_run *run;
  CU_ASSERT_FATAL(spr_run_alloc(&c, 2, &run) == 0);
  const int n = c.wl.seq_len, d = c.wl.head_dim;
  float *Q = malloc(n * d * sizeof *Q), *K = malloc(n * d * sizeof *K);
  int8_t *q = malloc(n * d), *k = malloc(n * d), *km = malloc(n * d);
  for (int l = 0; l < c.wl.n_layers; l++) {
    CU_ASSERT_FATAL(spr_run_layer(run, l) == 0);
    for (int h = 0; h < c.wl.n_heads; h++) {
      const spr_head_result *r = spr_run_result(run, l, h);
      float qs, ks;
      CU_ASSERT_FATAL(spr_synth_head(&c.wl, c.seed, l, h, Q, K, NULL) == 0);
      spr_quant_sym(Q, (size_t)n * d, 4, q, &qs);
      spr_quant_sym(K, (size_t)n * d, 8, k, &ks);
      for (int t = 0; t < n * d; t++) km[t] = (int8_t)floor(k[t] / 16.0);
      CU_ASSERT_EQUAL(memcmp(q, r->q_int, n * d), 0);
      CU_ASSERT_EQUAL(memcmp(km, r->k_msb, n * d), 0);
      int bad = 0;
      int64_t kept = 0;
      double mass = 0;
      for (int i = 0; i < n; i++) {
        double z = 0, zk = 0, mx = -1e300, srow[512];
        for (int j = 0; j < n; j++) {
          double sf = 0;
          for (int t = 0; t < d; t++) sf += (double)Q[i * d + t] * K[j * d + t];
          srow[j] = sf / sqrt((double)d);
          mx = fmax(mx, srow[j]);
        }
        for (int j = 0; j < n; j++) {
          int s = 0;
          for (int t = 0; t < d; t++) s += q[i * d + t] * km[j * d + t];
          int keep = s >= r->threshold;
          kept += keep;
          if (r->ideal_scores[i * n + j] != s) bad++;
          if (bit(r->mask_analog, n, i, j) != keep || bit(r->mask_ideal, n, i, j) != keep) bad++;
          double e = exp(srow[j] - mx);
          z += e;
          if (keep) zk += e;
        }
        mass += zk / z;
      }
      CU_ASSERT_EQUAL(bad, 0);
      CU_ASSERT_EQUAL(r->n_kept, kept);
      CU_ASSERT_EQUAL(r->false_prunes, 0);
      CU_ASSERT_EQUAL(r->false_keeps, 0);
      CU_ASSERT_DOUBLE_EQUAL(r->mass_retained, mass / n, 1e-5);
      CU_ASSERT_DOUBLE_EQUAL(r->keep_rate, r->ideal_keep_rate, 0);
    }
  }
  free(Q); free(K); free(q); free(k); free(km);
  spr_run_free(run);
}

/* keep_rate mode picks, per layer, the code whose pooled ideal keep rate is
 * nearest the target (checked over every code by brute force). */
static void test_keep_rate_calibration(void) {
  spr_config c;
  small_config(&c, 1);
  c.thr.keep_rate = 0.237;
  spr_run *run;
  CU_ASSERT_FATAL(spr_run_alloc(&c, 1, &run) == 0);
  CU_ASSERT_FATAL(spr_run_layer(run, 1) == 0);
  const int n = c.wl.seq_len, H = c.wl.n_heads;
  int32_t maxabs = 0;
  for (int h = 0; h < H; h++) {
    const spr_head_result *r = spr_run_result(run, 1, h);
    for (int k = 0; k < n * n; k++) maxabs = abs(r->ideal_scores[k]) > maxabs ? abs(r->ideal_scores[k]) : maxabs;
  }
  double best_err = 1e9;
  int best = 99;
  for (int code = -16; code < 16; code++) {
    double th = code * (double)maxabs / 16, kept = 0;
    for (int h = 0; h < H; h++) {
      const spr_head_result *r = spr_run_result(run, 1, h);
      for (int k = 0; k < n * n; k++) kept += r->ideal_scores[k] >= th;
    }
    double err = fabs(kept / (H * (double)n * n) - 0.237);
    if (err < best_err) { best_err = err; best = code; }
  }
  for (int h = 0; h < H; h++) {
    const spr_head_result *r = spr_run_result(run, 1, h);
    CU_ASSERT_EQUAL(r->threshold_code, best);
    CU_ASSERT_DOUBLE_EQUAL(r->range, (double)maxabs, 0);
    CU_ASSERT_DOUBLE_EQUAL(r->threshold, best * (double)maxabs / 16, 1e-12);
  }
  spr_run_free(run);
}

static int check_first; /* run_all calls spr_run_check before the layers */

static void run_all(const spr_config *c, int threads, spr_head_result *out, float **scores,
                    uint8_t **masks, const char *trace_path) {
  spr_run *run;
  spr_trace *tr = NULL;
  CU_ASSERT_FATAL(spr_run_alloc(c, threads, &run) == 0);
  if (check_first) CU_ASSERT_FATAL(spr_run_check(run) == 0);
  if (trace_path) CU_ASSERT_FATAL(spr_trace_create(trace_path, c, "test", &tr) == 0);
  const int H = c->wl.n_heads, n = c->wl.seq_len;
  for (int l = 0; l < c->wl.n_layers; l++) {
    CU_ASSERT_FATAL(spr_run_layer(run, l) == 0);
    for (int h = 0; h < H; h++) {
      const spr_head_result *r = spr_run_result(run, l, h);
      out[l * H + h] = *r;
      memcpy(scores[l * H + h], r->analog_scores, (size_t)n * n * sizeof(float));
      memcpy(masks[l * H + h], r->mask_analog, (size_t)n * spr_mask_row_bytes(n));
      if (tr) CU_ASSERT(spr_trace_write_head(tr, r) == 0);
    }
  }
  if (tr) {
    CU_ASSERT(spr_trace_write_summary(tr, spr_run_results(run)) == 0);
    CU_ASSERT(spr_trace_close(tr, 1) == 0);
  }
  spr_run_free(run);
}

static long file_bytes(const char *p, unsigned char **buf) {
  FILE *f = fopen(p, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  *buf = malloc((size_t)n);
  if (fread(*buf, 1, (size_t)n, f) != (size_t)n) n = -1;
  fclose(f);
  return n;
}

/* Every non-ideality on: 1 and 2 threads give identical results and
 * byte-identical trace files; another seed gives different decisions. */
static void test_threads_bit_identical(void) {
  spr_config c;
  small_config(&c, 0);
  const int LH = c.wl.n_layers * c.wl.n_heads, n = c.wl.seq_len;
  spr_head_result r1[6], r2[6], r3[6];
  float *s1[6], *s2[6], *s3[6];
  uint8_t *m1[6], *m2[6], *m3[6];
  for (int k = 0; k < LH; k++) {
    s1[k] = malloc((size_t)n * n * 4); s2[k] = malloc((size_t)n * n * 4); s3[k] = malloc((size_t)n * n * 4);
    m1[k] = malloc((size_t)n * 9); m2[k] = malloc((size_t)n * 9); m3[k] = malloc((size_t)n * 9);
  }
  char p1[256], p2[256];
  spr_test_path(p1, sizeof p1, "thr1", ".h5");
  spr_test_path(p2, sizeof p2, "thr2", ".h5");
  run_all(&c, 1, r1, s1, m1, p1);
  run_all(&c, 2, r2, s2, m2, p2);
  int diff = 0, fp = 0;
  for (int k = 0; k < LH; k++) {
    diff += memcmp(s1[k], s2[k], (size_t)n * n * 4) != 0;
    diff += memcmp(m1[k], m2[k], (size_t)n * spr_mask_row_bytes(n)) != 0;
    diff += r1[k].n_kept != r2[k].n_kept || r1[k].mass_retained != r2[k].mass_retained;
    fp += r1[k].false_prunes + r1[k].false_keeps;
  }
  CU_ASSERT_EQUAL(diff, 0);
  CU_ASSERT(fp > 0); /* the non-idealities really act */
  unsigned char *b1 = NULL, *b2 = NULL;
  long n1 = file_bytes(p1, &b1), n2 = file_bytes(p2, &b2);
  CU_ASSERT(n1 > 0 && n1 == n2);
  if (n1 > 0 && n1 == n2) CU_ASSERT_EQUAL(memcmp(b1, b2, (size_t)n1), 0);
  if (n1 > 0) free(b1);
  if (n2 > 0) free(b2);
  remove(p1);
  remove(p2);
  c.seed = 2386;
  run_all(&c, 2, r3, s3, m3, NULL);
  int same = 0;
  for (int k = 0; k < LH; k++) same += memcmp(s1[k], s3[k], (size_t)n * n * 4) == 0;
  CU_ASSERT_EQUAL(same, 0);
  for (int k = 0; k < LH; k++) {
    free(s1[k]); free(s2[k]); free(s3[k]); free(m1[k]); free(m2[k]); free(m3[k]);
  }
}

/* The run's progress (spr_progress.h): one stage of head passes, a pass
 * counted as each head finishes it, layers x heads x passes at the end
 * (ideal, the keep-rate count, SPRINT's analog pass with baselines.match =
 * sprint, the row-block pass); the NULL progress and the reader's clamp. */
static void test_progress(void) {
  spr_progress_begin(NULL, "x", 3); /* NULL: no-ops */
  spr_progress_add(NULL, 1);
  spr_progress_set(NULL, 1);
  const char *u;
  long long d, t;
  int st;
  spr_progress_read(NULL, &u, &d, &t, &st);
  CU_ASSERT(!strcmp(u, "") && d == 0 && t == 0 && st == 0);
  spr_progress p;
  spr_progress_init(&p);
  spr_progress_begin(&p, "items", 3);
  spr_progress_add(&p, 5);
  spr_progress_read(&p, &u, &d, &t, &st);
  CU_ASSERT(!strcmp(u, "items") && d == 3 && t == 3 && st == 1); /* clamped */
  spr_progress_begin(&p, "more", -2);
  spr_progress_read(&p, &u, &d, &t, &st);
  CU_ASSERT(d == 0 && t == 0 && st == 2);
  for (int mode = 0; mode < 4; mode++) {
    spr_config c;
    small_config(&c, 0);
    const int direct = mode & 1, match = mode >> 1;
    if (direct) {
      c.thr.mode = SPR_THR_DIRECT;
      c.thr.n_values = 1;
      c.thr.values[0] = 40;
    }
    if (match) c.bl.match = SPR_MATCH_SPRINT;
    spr_run *run = NULL;
    CU_ASSERT_FATAL(spr_run_alloc(&c, 2, &run) == 0);
    spr_progress_init(&p);
    spr_run_set_progress(run, &p);
    const int L = c.wl.n_layers, H = c.wl.n_heads, passes = 2 + !direct + match;
    CU_ASSERT_EQUAL(spr_run_check(run), 0);
    spr_progress_read(&p, &u, &d, &t, &st);
    CU_ASSERT(!strcmp(u, "head passes") && d == 0 && t == (long long)L * H * passes && st == 1);
    for (int l = 0; l < L; l++) {
      CU_ASSERT_FATAL(spr_run_layer(run, l) == 0);
      spr_progress_read(&p, NULL, &d, NULL, NULL);
      CU_ASSERT_EQUAL(d, (long long)(l + 1) * H * passes);
    }
    spr_run_free(run);
  }
}

/* spr_run_check: the first-order IR drop's range before any layer runs;
 * a run checked first gives the same results, bit for bit. */
static void test_run_check(void) {
  spr_config c;
  small_config(&c, 0);
  const int LH = c.wl.n_layers * c.wl.n_heads, n = c.wl.seq_len;
  spr_head_result r1[6], r2[6];
  float *s1[6], *s2[6];
  uint8_t *m1[6], *m2[6];
  for (int k = 0; k < LH; k++) {
    s1[k] = malloc((size_t)n * n * 4); s2[k] = malloc((size_t)n * n * 4);
    m1[k] = malloc((size_t)n * 9); m2[k] = malloc((size_t)n * 9);
  }
  run_all(&c, 2, r1, s1, m1, NULL);
  check_first = 1;
  run_all(&c, 2, r2, s2, m2, NULL);
  check_first = 0;
  int diff = 0;
  for (int k = 0; k < LH; k++) {
    diff += memcmp(s1[k], s2[k], (size_t)n * n * 4) != 0;
    diff += memcmp(m1[k], m2[k], (size_t)n * spr_mask_row_bytes(n)) != 0;
    diff += r1[k].n_kept != r2[k].n_kept || r1[k].mass_retained != r2[k].mass_retained ||
            r1[k].threshold != r2[k].threshold || r1[k].scheme[SPR_SCHEME_DENSE].energy_total_J !=
                                                     r2[k].scheme[SPR_SCHEME_DENSE].energy_total_J;
  }
  CU_ASSERT_EQUAL(diff, 0);
  for (int k = 0; k < LH; k++) {
    free(s1[k]); free(s2[k]); free(m1[k]); free(m2[k]);
  }
  /* wires beyond the first-order range: refused by the check, naming the
   * first head, before any layer */
  c.xbar.r_wl_ohm = 61.3;
  c.xbar.r_bl_ohm = 57.9;
  spr_run *run;
  CU_ASSERT_FATAL(spr_run_alloc(&c, 2, &run) == 0);
  CU_ASSERT_EQUAL(spr_run_check(run), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 0 head 0: crossbar: first-order IR drop out of its range");
  spr_run_free(run);
  /* the same wires under another model: nothing to check */
  for (int m = 0; m < 2; m++) {
    c.xbar.ir_drop = m ? SPR_IR_NODAL : SPR_IR_OFF;
    CU_ASSERT_FATAL(spr_run_alloc(&c, 1, &run) == 0);
    CU_ASSERT_EQUAL(spr_run_check(run), 0);
    spr_run_free(run);
  }
  /* a set cancel flag stops it */
  volatile sig_atomic_t stop = 1;
  c.xbar.ir_drop = SPR_IR_FIRST_ORDER;
  c.xbar.r_wl_ohm = c.xbar.r_bl_ohm = 2.5;
  CU_ASSERT_FATAL(spr_run_alloc(&c, 1, &run) == 0);
  spr_run_set_cancel(run, &stop);
  CU_ASSERT_EQUAL(spr_run_check(run), SPR_ECANCELED);
  spr_run_free(run);
}

/* crossbar.ir_drop = nodal in a run: wires the first-order model refuses
 * run; 1 and 2 threads (one solver workspace each) give bit-identical
 * results; the exact model changes the decisions of the first-order one
 * at the defaults; the memory estimate counts the workspaces. */
static void test_nodal_run(void) {
  spr_config c;
  small_config(&c, 0);
  const int LH = c.wl.n_layers * c.wl.n_heads, n = c.wl.seq_len;
  const size_t nn = (size_t)n * n, mb = (size_t)n * spr_mask_row_bytes(n);
  spr_head_result r1[6], r2[6], r3[6];
  float *s1[6], *s2[6], *s3[6];
  uint8_t *m1[6], *m2[6], *m3[6];
  for (int k = 0; k < LH; k++) {
    s1[k] = malloc(nn * 4); s2[k] = malloc(nn * 4); s3[k] = malloc(nn * 4);
    m1[k] = malloc(mb); m2[k] = malloc(mb); m3[k] = malloc(mb);
  }
  /* 16 x 16 arrays at 60 ohm: beyond the first-order model */
  c.xbar.r_wl_ohm = 61.3;
  c.xbar.r_bl_ohm = 57.9;
  spr_run *run;
  CU_ASSERT_FATAL(spr_run_alloc(&c, 1, &run) == 0);
  CU_ASSERT_EQUAL(spr_run_layer(run, 0), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "first-order IR drop out of its range");
  spr_run_free(run);
  c.xbar.ir_drop = SPR_IR_NODAL;
  run_all(&c, 1, r1, s1, m1, NULL);
  run_all(&c, 2, r2, s2, m2, NULL);
  int diff = 0;
  for (int k = 0; k < LH; k++) {
    diff += memcmp(s1[k], s2[k], nn * 4) != 0 || memcmp(m1[k], m2[k], mb) != 0;
    diff += r1[k].n_kept != r2[k].n_kept || r1[k].mass_retained != r2[k].mass_retained ||
            r1[k].false_prunes != r2[k].false_prunes;
  }
  CU_ASSERT_EQUAL(diff, 0);
  /* at the default 2.5 ohm the exact model moves analog scores of the
   * first-order one (same streams otherwise) */
  c.xbar.r_wl_ohm = c.xbar.r_bl_ohm = 2.5;
  run_all(&c, 2, r1, s1, m1, NULL);
  c.xbar.ir_drop = SPR_IR_FIRST_ORDER;
  run_all(&c, 2, r3, s3, m3, NULL);
  int same = 0;
  for (int k = 0; k < LH; k++) same += memcmp(s1[k], s3[k], nn * 4) == 0;
  CU_ASSERT_EQUAL(same, 0);
  /* 4096 x 4096 arrays: the solver's workspace alone is 2 TB a thread */
  c.xbar.ir_drop = SPR_IR_NODAL;
  c.xbar.rows = c.xbar.cols = 4096;
  CU_ASSERT_EQUAL(spr_run_alloc(&c, 2, &run), SPR_ENOMEM);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "nodal IR-drop workspaces of 2 threads for 4096 x 4096 arrays");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "crossbar.ir_drop = first_order); lower workload.seq_len");
  for (int k = 0; k < LH; k++) {
    free(s1[k]); free(s2[k]); free(s3[k]); free(m1[k]); free(m2[k]); free(m3[k]);
  }
}

/* Direct thresholds: per layer values land on the generator grid. */
static void test_direct_thresholds(void) {
  spr_config c;
  small_config(&c, 1);
  CU_ASSERT_FATAL(spr_config_set(&c, "threshold", "mode", "direct", "test") == 0);
  CU_ASSERT_FATAL(spr_config_set(&c, "threshold", "values", "12.3, -4", "test") == 0);
  CU_ASSERT_FATAL(spr_config_set(&c, "threshold", "range", "64", "test") == 0);
  CU_ASSERT_FATAL(spr_config_resolve(&c, "test") == 0);
  spr_run *run;
  CU_ASSERT_FATAL(spr_run_alloc(&c, 2, &run) == 0);
  CU_ASSERT_FATAL(spr_run_layer(run, 0) == 0);
  CU_ASSERT_FATAL(spr_run_layer(run, 1) == 0);
  CU_ASSERT_DOUBLE_EQUAL(spr_run_result(run, 0, 2)->threshold, 12.0, 0); /* code 3, step 4 */
  CU_ASSERT_DOUBLE_EQUAL(spr_run_result(run, 1, 0)->threshold, -4.0, 0);
  /* the previous layer's arrays are released, its statistics kept */
  CU_ASSERT_PTR_NULL(spr_run_result(run, 0, 0)->mask_analog);
  CU_ASSERT(spr_run_result(run, 0, 0)->n_kept > 0);
  CU_ASSERT_PTR_NULL(spr_run_result(run, 2, 0));
  spr_run_free(run);
}

static void test_errors(void) {
  spr_config c;
  small_config(&c, 1);
  spr_run *run = NULL;
  CU_ASSERT_EQUAL(spr_run_alloc(&c, 0, &run), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "thread count 0");
  CU_ASSERT_PTR_NULL(run);
  spr_config u;
  spr_config_default(&u); /* unresolved: seq_len 0 */
  CU_ASSERT_EQUAL(spr_run_alloc(&u, 1, &run), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "seq_len 0");
  /* scoring arrays smaller than one head's 2 n d = 3456 cells, refused
   * before the run */
  spr_config sw = c;
  sw.wear.scoring_cells = 3455;
  CU_ASSERT_EQUAL(spr_run_alloc(&sw, 1, &run), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "run: wear.scoring_cells = 3455");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "at least 3456 cells");
  CU_ASSERT_PTR_NULL(run);
  CU_ASSERT_FATAL(spr_run_alloc(&c, 1, &run) == 0);
  CU_ASSERT_EQUAL(spr_run_layer(run, 2), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 2 outside [0, 2)");
  CU_ASSERT_EQUAL(spr_run_layer(run, -1), SPR_EINVAL);
  spr_run_free(run);
  /* an error inside a parallel head is reported with its layer and head */
  c.an.dac_gain_sigma = 1e3; /* bypasses the config range: a gain <= 0 */
  c.an.dac_error = 1;
  CU_ASSERT_FATAL(spr_run_alloc(&c, 2, &run) == 0);
  CU_ASSERT_EQUAL(spr_run_layer(run, 0), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 0 head 0: analog: DAC");
  spr_run_free(run);
  spr_run_free(NULL);
  /* thresholds the 5-bit generator cannot produce */
  small_config(&c, 1);
  c.thr.range = 1e9; /* every code but 0 lies above all scores */
  CU_ASSERT_FATAL(spr_run_alloc(&c, 1, &run) == 0);
  CU_ASSERT_EQUAL(spr_run_layer(run, 0), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "threshold.keep_rate 0.15 cannot be reached");
  spr_run_free(run);
  small_config(&c, 1);
  CU_ASSERT_FATAL(spr_config_set(&c, "threshold", "mode", "direct", "test") == 0);
  CU_ASSERT_FATAL(spr_config_set(&c, "threshold", "values", "2385", "test") == 0);
  CU_ASSERT_FATAL(spr_config_set(&c, "threshold", "range", "64", "test") == 0);
  CU_ASSERT_FATAL(spr_config_resolve(&c, "test") == 0);
  CU_ASSERT_FATAL(spr_run_alloc(&c, 1, &run) == 0);
  CU_ASSERT_EQUAL(spr_run_layer(run, 0), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "threshold.values 2385 outside the 5-bit threshold generator's range [-64, 60]");
  spr_run_free(run);
  /* just inside: 61.9 rounds to the top code (60) */
  CU_ASSERT_FATAL(spr_config_set(&c, "threshold", "values", "61.9", "test") == 0);
  CU_ASSERT_FATAL(spr_run_alloc(&c, 1, &run) == 0);
  CU_ASSERT_EQUAL(spr_run_layer(run, 0), 0);
  CU_ASSERT_DOUBLE_EQUAL(spr_run_result(run, 0, 0)->threshold, 60.0, 0);
  spr_run_free(run);
}

/* The digital path and ledger of every scheme, against counts derived
 * independently from the masks and the energy table. */
static void test_digital_and_ledger(void) {
  spr_config c;
  small_config(&c, 0);
  spr_run *run;
  CU_ASSERT_FATAL(spr_run_alloc(&c, 2, &run) == 0);
  CU_ASSERT_FATAL(spr_run_layer(run, 0) == 0);
  const int n = c.wl.seq_len, d = c.wl.head_dim;
  const double nn = (double)n * n, token = 2.0 * d; /* 8-bit K and V */
  const spr_energy_params *e = &c.energy;
  for (int h = 0; h < c.wl.n_heads; h++) {
    const spr_head_result *r = spr_run_result(run, 0, h);
    const spr_scheme_result *sp = &r->scheme[SPR_SCHEME_SPRINT], *dn = &r->scheme[SPR_SCHEME_DENSE];
    for (int s = 0; s < SPR_N_SCHEMES; s++) CU_ASSERT(r->scheme[s].ran); /* all on by default */
    /* dense keeps everything and loses nothing but quantization */
    CU_ASSERT_DOUBLE_EQUAL(dn->keep_rate, 1.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(dn->mass_retained, 1.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(dn->top1_recall, 1.0, 0);
    CU_ASSERT(dn->rel_fro < 0.05);
    /* every use of a token is a hit or a fetch */
    CU_ASSERT_DOUBLE_EQUAL((double)(dn->bytes_fetched + dn->bytes_reused), nn * token, 0);
    CU_ASSERT_DOUBLE_EQUAL((double)(sp->bytes_fetched + sp->bytes_reused), r->n_kept * token, 0);
    CU_ASSERT_DOUBLE_EQUAL(sp->keep_rate, r->keep_rate, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sp->mass_retained, r->mass_retained, 1e-5);
    for (int s = 0; s < SPR_N_SCHEMES; s++) {
      const spr_scheme_result *x = &r->scheme[s];
      double sum = 0;
      for (int k = 0; k < SPR_LEDGER_NE; k++) sum += x->energy_J[k];
      CU_ASSERT_DOUBLE_EQUAL(x->energy_total_J, sum, 1e-9 * sum);
      /* the sequence's K and V are written once, whatever the scheme */
      const double wr = (double)n * d * (8 + 8) * e->reram_write_J_per_bit;
      CU_ASSERT_DOUBLE_EQUAL(x->energy_J[SPR_LEDGER_E_RERAM_WRITE], wr, 1e-9 * wr);
      /* ReRAM reads: the fetched tokens, plus a digital prediction's key
       * operand; at N = 72, d = 24 the sequence's K (1728 B at 8 bits)
       * fits the 16 KB buffer beside any query's survivors (72 x 48 B at
       * most), so it is loaded once (docs/energy.md section 9) */
      double bits = (double)x->bytes_fetched * 8;
      const int pred = s == SPR_SCHEME_ORACLE || s == SPR_SCHEME_TOPK || s == SPR_SCHEME_SANGER ||
                       s == SPR_SCHEME_LEOPARD;
      CU_ASSERT_EQUAL(x->key_resident, pred);
      if (s == SPR_SCHEME_ORACLE || s == SPR_SCHEME_TOPK || s == SPR_SCHEME_LEOPARD) bits += n * d * 8;
      if (s == SPR_SCHEME_SANGER) bits += n * d * 4;
      CU_ASSERT_DOUBLE_EQUAL(x->energy_J[SPR_LEDGER_E_RERAM_READ], bits * e->reram_read_J_per_bit,
                             1e-9 * bits * e->reram_read_J_per_bit);
      /* schemes that computed exact scores while predicting fetch values
       * only and recompute no score */
      const int known = s == SPR_SCHEME_ORACLE || s == SPR_SCHEME_TOPK || s == SPR_SCHEME_LEOPARD;
      const double tok = known ? (double)d : token;
      CU_ASSERT_DOUBLE_EQUAL((double)(x->bytes_fetched + x->bytes_reused), x->keep_rate * nn * tok, 1e-6);
      if (known) CU_ASSERT_EQUAL(x->energy_J[SPR_LEDGER_E_SCORE_MAC], 0.0);
      if (!known) CU_ASSERT(x->energy_J[SPR_LEDGER_E_SCORE_MAC] > 0);
      CU_ASSERT(x->cycles_total > 0);
    }
    /* only SPRINT scores in memory: n^2 d MACs and n^2 decisions */
    CU_ASSERT_DOUBLE_EQUAL(sp->energy_J[SPR_LEDGER_E_IMC_MAC], nn * d * e->imc_mac_J, 1e-9 * nn * d * e->imc_mac_J);
    CU_ASSERT_DOUBLE_EQUAL(sp->energy_J[SPR_LEDGER_E_CMP], nn * e->cmp_J, 1e-9 * nn * e->cmp_J);
    CU_ASSERT_EQUAL(dn->energy_J[SPR_LEDGER_E_IMC_MAC], 0.0);
    /* only SPRINT programs scoring arrays: 2 cells of cell_bits bits per
     * key element, once per sequence */
    const double xw = 2.0 * n * d * c.xbar.cell_bits * e->xbar_write_J_per_bit;
    CU_ASSERT(xw > 0);
    CU_ASSERT_DOUBLE_EQUAL(sp->energy_J[SPR_LEDGER_E_XBAR_WRITE], xw, 1e-9 * xw);
    for (int s = SPR_SCHEME_DENSE; s < SPR_N_SCHEMES; s++)
      CU_ASSERT_EQUAL(r->scheme[s].energy_J[SPR_LEDGER_E_XBAR_WRITE], 0.0);
    CU_ASSERT(sp->energy_total_J < dn->energy_total_J);
    /* LeOPArd's mask is the oracle's; its bit-serial prediction costs more */
    CU_ASSERT_DOUBLE_EQUAL(r->scheme[SPR_SCHEME_LEOPARD].keep_rate, r->scheme[SPR_SCHEME_ORACLE].keep_rate, 0);
    CU_ASSERT_DOUBLE_EQUAL(r->scheme[SPR_SCHEME_LEOPARD].mass_retained, r->scheme[SPR_SCHEME_ORACLE].mass_retained, 0);
  }
  spr_run_free(run);
  /* baselines switched off are not run */
  small_config(&c, 0);
  c.bl.oracle = c.bl.topk = c.bl.sanger = c.bl.leopard = c.bl.window = 0;
  CU_ASSERT_FATAL(spr_run_alloc(&c, 1, &run) == 0);
  CU_ASSERT_FATAL(spr_run_layer(run, 1) == 0);
  CU_ASSERT(spr_run_result(run, 1, 2)->scheme[SPR_SCHEME_DENSE].ran);
  CU_ASSERT(!spr_run_result(run, 1, 2)->scheme[SPR_SCHEME_TOPK].ran);
  spr_run_free(run);
}

/* threshold.mode = analog_keep_rate, every effect on, causal and not: the
 * layer's code is the one whose keep rate of the recorded analog scores
 * (one per decided pair, drawn before the threshold) over the layer's
 * heads is nearest the target, ties to the lower code, recounted here by
 * brute force from the scores; every head's mask is scores >= threshold;
 * 1 and 2 threads give the same bits. */
static void test_analog_keep_rate(void) {
  for (int causal = 0; causal < 2; causal++) {
    spr_config c;
    small_config(&c, 0);
    c.thr.mode = SPR_THR_ANALOG_KEEP_RATE;
    c.thr.keep_rate = 0.2385;
    c.wl.causal = causal;
    const int L = c.wl.n_layers, H = c.wl.n_heads, n = c.wl.seq_len, LH = L * H;
    const size_t rb = spr_mask_row_bytes(n);
    spr_head_result r1[6], r2[6];
    float *s1[6], *s2[6];
    uint8_t *m1[6], *m2[6];
    for (int k = 0; k < LH; k++) {
      s1[k] = malloc((size_t)n * n * 4);
      s2[k] = malloc((size_t)n * n * 4);
      m1[k] = malloc((size_t)n * rb);
      m2[k] = malloc((size_t)n * rb);
    }
    run_all(&c, 1, r1, s1, m1, NULL);
    run_all(&c, 2, r2, s2, m2, NULL);
    const int64_t P = causal ? (int64_t)n * (n + 1) / 2 : (int64_t)n * n;
    for (int l = 0; l < L; l++) {
      const double range = r1[l * H].range;
      int best = 0;
      double best_err = INFINITY;
      for (int code = -16; code < 16; code++) {
        int64_t kept = 0;
        for (int h = 0; h < H; h++)
          for (int i = 0; i < n; i++)
            for (int j = 0; j < (causal ? i + 1 : n); j++)
              kept += (double)s1[l * H + h][i * n + j] >= spr_thr_level(code, range, 5);
        const double err = fabs((double)kept / (double)(P * H) - c.thr.keep_rate);
        if (err < best_err) best_err = err, best = code;
      }
      for (int h = 0; h < H; h++) {
        const int k = l * H + h;
        CU_ASSERT_EQUAL(r1[k].threshold_code, best);
        int64_t kept = 0, bad = 0;
        for (int i = 0; i < n; i++)
          for (int j = 0; j < n; j++) {
            const float a = s1[k][i * n + j];
            const int keep = !(causal && j > i) && (double)a >= r1[k].threshold;
            if (causal && j > i) bad += !isnan(a);
            kept += keep;
            bad += (m1[k][i * rb + j / 8] >> (j % 8) & 1) != keep;
          }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(r1[k].n_kept, kept);
        CU_ASSERT_DOUBLE_EQUAL(r1[k].keep_rate, (double)kept / (double)P, 1e-15);
        CU_ASSERT_DOUBLE_EQUAL(r1[k].scheme[SPR_SCHEME_SPRINT].keep_rate, r1[k].keep_rate, 1e-15);
        /* threads: the same bits */
        CU_ASSERT_EQUAL(memcmp(s1[k], s2[k], (size_t)n * n * 4), 0);
        CU_ASSERT_EQUAL(memcmp(m1[k], m2[k], (size_t)n * rb), 0);
        CU_ASSERT_EQUAL(r1[k].scheme[SPR_SCHEME_SPRINT].energy_total_J,
                        r2[k].scheme[SPR_SCHEME_SPRINT].energy_total_J);
      }
      /* the layer's analog keep rate lands near the target (5-bit grid) */
      double layer_keep = 0;
      for (int h = 0; h < H; h++) layer_keep += r1[l * H + h].keep_rate / H;
      CU_ASSERT(fabs(layer_keep - c.thr.keep_rate) < 0.05);
    }
    for (int k = 0; k < LH; k++) {
      free(s1[k]);
      free(s2[k]);
      free(m1[k]);
      free(m2[k]);
    }
  }
}

/* baselines.match = sprint, causal and not: each baseline's knob is the
 * one its own search gives for SPRINT's realised keep rate of the layer
 * (kept pairs of the layer's heads over their pairs, recounted here), and
 * its keep rate lands near that rate. */
static void test_match_sprint(void) {
  for (int causal = 0; causal < 2; causal++) {
    spr_config c;
    small_config(&c, 0);
    c.bl.match = SPR_MATCH_SPRINT;
    c.wl.causal = causal;
    c.bl.topk_fraction = 0.5; /* the configured knobs, far from SPRINT's rate */
    c.bl.window_half_width = 30;
    c.trace = SPR_TRACE_SUMMARY;
    spr_run *run;
    CU_ASSERT_FATAL(spr_run_alloc(&c, 2, &run) == 0);
    const int H = c.wl.n_heads, n = c.wl.seq_len, d = c.wl.head_dim;
    const double P = causal ? n * (n + 1) / 2.0 : (double)n * n;
    spr_bl_ws bw;
    CU_ASSERT_FATAL(spr_bl_ws_alloc(&bw, n, d) == 0);
    float *Q = malloc((size_t)n * d * 4), *K = malloc((size_t)n * d * 4);
    for (int l = 0; l < c.wl.n_layers; l++) {
      CU_ASSERT_FATAL(spr_run_layer(run, l) == 0);
      int64_t kept = 0;
      for (int h = 0; h < H; h++) kept += spr_run_result(run, l, h)->n_kept;
      const double target = (double)kept / (P * H);
      double f, pw;
      int w;
      CU_ASSERT_FATAL(spr_bl_topk_match(n, causal, target, &f, NULL) == 0);
      spr_bl_window_params wp = {0, c.bl.window_globals, NULL, causal};
      CU_ASSERT_FATAL(spr_bl_window_match(&wp, n, target, &w, NULL) == 0);
      for (int h = 0; h < H; h++) {
        const spr_head_result *r = spr_run_result(run, l, h);
        CU_ASSERT_FATAL(spr_synth_head(&c.wl, c.seed, l, h, Q, K, NULL) == 0);
        spr_bl_oracle_params op;
        spr_bl_oracle_default(&op);
        op.causal = causal;
        double th;
        CU_ASSERT_FATAL(spr_bl_oracle_calibrate(&op, Q, K, n, d, target, &bw, &th, NULL) == 0);
        spr_bl_sanger_params sp;
        spr_bl_sanger_default(&sp);
        sp.causal = causal;
        CU_ASSERT_FATAL(spr_bl_sanger_calibrate(&sp, Q, K, n, d, target, &bw, &pw, NULL) == 0);
        CU_ASSERT_EQUAL(r->scheme[SPR_SCHEME_ORACLE].knob, th);
        CU_ASSERT_EQUAL(r->scheme[SPR_SCHEME_LEOPARD].knob, th);
        CU_ASSERT_EQUAL(r->scheme[SPR_SCHEME_TOPK].knob, f);
        CU_ASSERT_EQUAL(r->scheme[SPR_SCHEME_SANGER].knob, pw);
        CU_ASSERT_EQUAL(r->scheme[SPR_SCHEME_WINDOW].knob, (double)w);
        CU_ASSERT(isnan(r->scheme[SPR_SCHEME_SPRINT].knob) && isnan(r->scheme[SPR_SCHEME_DENSE].knob));
        for (int s = SPR_SCHEME_ORACLE; s < SPR_N_SCHEMES; s++)
          CU_ASSERT(fabs(r->scheme[s].keep_rate - target) < 0.05);
      }
    }
    free(Q);
    free(K);
    spr_bl_ws_free(&bw);
    spr_run_free(run);
  }
}

/* Replace /schemes/dense/energy_by_component of trace p by an (L, H, k)
 * table of the value v (component 0) and v + 1 (component 1 ...), its
 * attribute components = names. */
static void set_components(const char *p, int L, int H, int k, double v, const char *names) {
  hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  const char *d = "/schemes/dense/energy_by_component";
  CU_ASSERT_FATAL(H5Ldelete(f, d, H5P_DEFAULT) >= 0);
  hsize_t dims[3] = {(hsize_t)L, (hsize_t)H, (hsize_t)k};
  double buf[6 * 4];
  for (int i = 0; i < L * H * k; i++) buf[i] = v + (i % k);
  hid_t sp = H5Screate_simple(3, dims, NULL);
  hid_t ds = H5Dcreate2(f, d, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  CU_ASSERT_FATAL(ds >= 0);
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  hid_t ty = H5Tcopy(H5T_C_S1), as = H5Screate(H5S_SCALAR);
  H5Tset_size(ty, strlen(names) + 1);
  hid_t a = H5Acreate2(ds, "components", ty, as, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, ty, names);
  H5Aclose(a);
  H5Sclose(as);
  H5Tclose(ty);
  H5Dclose(ds);
  H5Sclose(sp);
  H5Fclose(f);
}

/* The dense column of row `comp` of the report's energy-by-component
 * table (uJ), or NAN. */
static double report_component(const char *p, const char *out, const char *comp) {
  FILE *f = fopen(out, "w+");
  if (!f || spr_report_print(p, f)) {
    if (f) fclose(f);
    return NAN;
  }
  rewind(f);
  char line[512], name[32];
  double sprint, dense, v = NAN;
  int in = 0;
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, "energy by component", 19)) in = 1;
    if (in && sscanf(line, "%31s %lf %lf", name, &sprint, &dense) == 3 && !strcmp(name, comp))
      v = dense;
  }
  fclose(f);
  return v;
}

/* The report reads a trace back: dense is the reference of every ratio. */
static void test_report(void) {
  spr_config c;
  small_config(&c, 0);
  c.trace = SPR_TRACE_SUMMARY;
  const int LH = c.wl.n_layers * c.wl.n_heads, n = c.wl.seq_len;
  spr_head_result r[6];
  float *sc[6];
  uint8_t *m[6];
  for (int k = 0; k < LH; k++) {
    sc[k] = malloc((size_t)n * n * 4);
    m[k] = malloc((size_t)n * 9);
  }
  char p[256], out[256];
  spr_test_path(p, sizeof p, "report", ".h5");
  spr_test_path(out, sizeof out, "report", ".txt");
  c.trace = SPR_TRACE_FULL; /* run_all copies the full arrays */
  run_all(&c, 2, r, sc, m, p);
  FILE *f = fopen(out, "w+");
  CU_ASSERT_FATAL(f != NULL);
  CU_ASSERT_EQUAL(spr_report_print(p, f), 0);
  rewind(f);
  char line[512];
  int found_dense = 0, found_sprint = 0;
  double e_dense = 0, e_sprint = 0;
  while (fgets(line, sizeof line, f)) {
    char label[16], scheme[16];
    double keep, fb, rb, en;
    if (sscanf(line, "%15s %15s %lf %lf %lf %lf", label, scheme, &keep, &fb, &rb, &en) == 6 &&
        !strcmp(label, "all")) {
      if (!strcmp(scheme, "dense")) { found_dense = 1; e_dense = en; }
      if (!strcmp(scheme, "sprint")) { found_sprint = 1; e_sprint = en; }
    }
  }
  CU_ASSERT(found_dense && found_sprint);
  /* the wear line: LH heads of 2 n d = 3456 cells each, one write per cell
   * per sequence, 1e6 sequences at the run's rate, clock / SPRINT's
   * summed latency */
  {
    double lat = 0;
    for (int k = 0; k < LH; k++) {
      CU_ASSERT_EQUAL(r[k].scheme[SPR_SCHEME_SPRINT].xbar_cells_written, 2 * 72 * 24);
      CU_ASSERT_EQUAL(r[k].scheme[SPR_SCHEME_DENSE].xbar_cells_written, 0);
      lat += r[k].scheme[SPR_SCHEME_SPRINT].cycles_total;
    }
    char want[160];
    snprintf(want, sizeof want, "wear: 1 writes per scoring cell per sequence (arrays per head); "
             "endurance 1e+06 writes: 1e+06 sequences, %.4g s at %.4g sequences/s", 1e6 * lat / 1e9,
             1e9 / lat);
    CU_ASSERT(1e6 * lat / 1e9 < 60); /* printed in seconds */
    rewind(f);
    int seen = 0;
    while (fgets(line, sizeof line, f))
      if (!strncmp(line, "wear:", 5)) {
        seen = 1;
        SPR_ASSERT_CONTAINS(line, want);
      }
    CU_ASSERT(seen);
  }
  fclose(f);
  /* the printed totals (uJ, 2 decimals) are the sums of the heads' energies */
  double want_d = 0, want_s = 0;
  for (int k = 0; k < LH; k++) {
    want_d += r[k].scheme[SPR_SCHEME_DENSE].energy_total_J * 1e6;
    want_s += r[k].scheme[SPR_SCHEME_SPRINT].energy_total_J * 1e6;
  }
  CU_ASSERT_DOUBLE_EQUAL(e_dense, want_d, 0.006);
  CU_ASSERT_DOUBLE_EQUAL(e_sprint, want_s, 0.006);
  /* components are read by the names of the attribute 'components': a
   * trace written before a component existed (here: two components,
   * reram_write and reram_read, 1.5 J and 2.5 J per head) reads 0 for the
   * others, and in any order */
  set_components(p, c.wl.n_layers, c.wl.n_heads, 2, 1.5, "reram_write,reram_read");
  CU_ASSERT_DOUBLE_EQUAL(report_component(p, out, "reram_read"), 2.5e6 * LH, 1e-3);
  CU_ASSERT_DOUBLE_EQUAL(report_component(p, out, "reram_write"), 1.5e6 * LH, 1e-3);
  CU_ASSERT_EQUAL(report_component(p, out, "xbar_write"), 0.0);
  set_components(p, c.wl.n_layers, c.wl.n_heads, 2, 1.5, "reram_read,xbar_write");
  CU_ASSERT_DOUBLE_EQUAL(report_component(p, out, "reram_read"), 1.5e6 * LH, 1e-3);
  CU_ASSERT_DOUBLE_EQUAL(report_component(p, out, "xbar_write"), 2.5e6 * LH, 1e-3);
  /* an unknown component, or names that do not count the columns */
  set_components(p, c.wl.n_layers, c.wl.n_heads, 2, 1.5, "reram_read,flux");
  CU_ASSERT_EQUAL(spr_report_print(p, stdout), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "energy_by_component': component 'flux' is unknown");
  set_components(p, c.wl.n_layers, c.wl.n_heads, 2, 1.5, "reram_read");
  CU_ASSERT_EQUAL(spr_report_print(p, stdout), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "names 1 components for 2 columns");
  /* a trace without the digital path (no /schemes) is refused by name */
  {
    spr_config cs = c;
    cs.trace = SPR_TRACE_SUMMARY;
    spr_head_result bare[6];
    for (int k = 0; k < LH; k++) {
      bare[k] = r[k];
      memset(bare[k].scheme, 0, sizeof bare[k].scheme);
    }
    spr_trace *t;
    CU_ASSERT_FATAL(spr_trace_create(p, &cs, "test", &t) == 0);
    for (int k = 0; k < LH; k++) CU_ASSERT(spr_trace_write_head(t, &bare[k]) == 0);
    CU_ASSERT(spr_trace_write_summary(t, bare) == 0);
    CU_ASSERT(spr_trace_close(t, 1) == 0);
    CU_ASSERT_EQUAL(spr_report_print(p, stdout), SPR_EHDF5);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "group '/schemes/dense' is missing");
  }
  /* errors: missing file, a file that is not HDF5 */
  CU_ASSERT_EQUAL(spr_report_print(out, stdout), SPR_EHDF5);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "not an HDF5 file");
  remove(out);
  remove(p);
  CU_ASSERT_EQUAL(spr_report_print(p, stdout), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cannot open trace");
  for (int k = 0; k < LH; k++) {
    free(sc[k]);
    free(m[k]);
  }
}

/* ---- causal attention (docs/model.md section 6) --------------------------- */

static void causal_config(spr_config *c, int all_off, int n, int d) {
  small_config(c, all_off);
  c->wl.seq_len = n;
  c->wl.head_dim = d;
  c->wl.causal = 1;
  c->thr.keep_rate = 0.3;
  c->bl.window_half_width = 3;
  CU_ASSERT_FATAL(spr_config_resolve(c, "test") == 0);
}

/* Everything off, causal: per layer, the threshold range is max |s| over
 * the causal pairs of the layer's heads and the code is the one whose
 * pooled keep rate over the causal pairs is nearest the target (every
 * code tried); per head, the analog and ideal masks are the brute-force
 * thresholding of the recomputed scores for j <= i and 0 beyond, the
 * analog scores NaN beyond, the counts, keep rates and masses those of
 * the causal pairs (softmax over j <= i); the digital path: dense keeps
 * and fetches exactly the lower triangle, SPRINT's scheme keeps the
 * analog mask with the same mass, top-k keeps sum_i max(1, round(0.15
 * (i + 1))) pairs, the window |i - j| <= 3 or j = 0 or i = 0 with j <= i,
 * and the oracle and LeOPArd the same mask. */
static void check_causal_brute(int n, int d) {
  spr_config c;
  causal_config(&c, 1, n, d);
  spr_run *run;
  CU_ASSERT_FATAL(spr_run_alloc(&c, 2, &run) == 0);
  const int H = c.wl.n_heads;
  const double P = (double)n * (n + 1) / 2;
  float *Q = malloc(n * d * sizeof *Q), *K = malloc(n * d * sizeof *K);
  int8_t *q = malloc(n * d), *k = malloc(n * d), *km = malloc(n * d);
  int32_t *S = malloc((size_t)H * n * n * sizeof *S);
  for (int l = 0; l < c.wl.n_layers; l++) {
    CU_ASSERT_FATAL(spr_run_layer(run, l) == 0);
    /* scores by hand, the layer's range and code */
    int32_t maxabs = 0;
    for (int h = 0; h < H; h++) {
      float qs, ks;
      CU_ASSERT_FATAL(spr_synth_head(&c.wl, c.seed, l, h, Q, K, NULL) == 0);
      spr_quant_sym(Q, (size_t)n * d, 4, q, &qs);
      spr_quant_sym(K, (size_t)n * d, 8, k, &ks);
      for (int t = 0; t < n * d; t++) km[t] = (int8_t)floor(k[t] / 16.0);
      for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
          int sc = 0;
          for (int t = 0; t < d; t++) sc += q[i * d + t] * km[j * d + t];
          S[(h * n + i) * n + j] = sc;
          if (j <= i && abs(sc) > maxabs) maxabs = abs(sc);
        }
    }
    double best_err = 1e9;
    int best = 99;
    for (int code = -16; code < 16; code++) {
      double th = code * (double)maxabs / 16, kept = 0;
      for (int h = 0; h < H; h++)
        for (int i = 0; i < n; i++)
          for (int j = 0; j <= i; j++) kept += S[(h * n + i) * n + j] >= th;
      double err = fabs(kept / (H * P) - 0.3);
      if (err < best_err) { best_err = err; best = code; }
    }
    for (int h = 0; h < H; h++) {
      const spr_head_result *r = spr_run_result(run, l, h);
      CU_ASSERT_EQUAL(r->causal, 1);
      CU_ASSERT_DOUBLE_EQUAL(r->range, (double)maxabs, 0);
      CU_ASSERT_EQUAL(r->threshold_code, best);
      CU_ASSERT_FATAL(spr_synth_head(&c.wl, c.seed, l, h, Q, K, NULL) == 0);
      int bad = 0;
      int64_t kept = 0;
      double mass = 0;
      for (int i = 0; i < n; i++) {
        double z = 0, zk = 0, mx = -1e300, srow[128];
        for (int j = 0; j <= i; j++) {
          double sf = 0;
          for (int t = 0; t < d; t++) sf += (double)Q[i * d + t] * K[j * d + t];
          srow[j] = sf / sqrt((double)d);
          mx = fmax(mx, srow[j]);
        }
        for (int j = 0; j < n; j++) {
          const int32_t sc = S[(h * n + i) * n + j];
          const int keep = j <= i && sc >= r->threshold;
          kept += keep;
          if (r->ideal_scores[i * n + j] != sc) bad++;
          if (bit(r->mask_analog, n, i, j) != keep || bit(r->mask_ideal, n, i, j) != keep) bad++;
          if (j > i ? !isnan(r->analog_scores[i * n + j]) : r->analog_scores[i * n + j] != (float)sc)
            bad++;
          if (j > i) continue;
          double e = exp(srow[j] - mx);
          z += e;
          if (keep) zk += e;
        }
        mass += zk / z;
      }
      CU_ASSERT_EQUAL(bad, 0);
      CU_ASSERT_EQUAL(r->n_kept, kept);
      CU_ASSERT_EQUAL(r->n_ideal_kept, kept);
      CU_ASSERT_EQUAL(r->false_prunes + r->false_keeps, 0);
      CU_ASSERT_DOUBLE_EQUAL(r->keep_rate, kept / P, 1e-15);
      CU_ASSERT_DOUBLE_EQUAL(r->mass_retained, mass / n, 1e-5);
      /* the schemes */
      const spr_scheme_result *sp = &r->scheme[SPR_SCHEME_SPRINT], *dn = &r->scheme[SPR_SCHEME_DENSE];
      const double token = 2.0 * d;
      CU_ASSERT_DOUBLE_EQUAL(dn->keep_rate, 1.0, 0);
      CU_ASSERT_DOUBLE_EQUAL((double)(dn->bytes_fetched + dn->bytes_reused), P * token, 0);
      CU_ASSERT_DOUBLE_EQUAL(dn->mass_retained, 1.0, 1e-6);
      CU_ASSERT_DOUBLE_EQUAL(dn->top1_recall, 1.0, 0);
      CU_ASSERT_DOUBLE_EQUAL(dn->topk_recall, 1.0, 0);
      /* dense loses only the 8-bit quantization of the recompute (0.08 at
       * worst for these 13 x 5 heads, whose few outputs cancel more) */
      CU_ASSERT(dn->rel_fro < 0.1 && dn->cos_mean > 0.99);
      CU_ASSERT_DOUBLE_EQUAL(sp->keep_rate, r->keep_rate, 1e-15);
      CU_ASSERT_DOUBLE_EQUAL((double)(sp->bytes_fetched + sp->bytes_reused), kept * token, 0);
      CU_ASSERT_DOUBLE_EQUAL(sp->mass_retained, r->mass_retained, 1e-5);
      int64_t topk = 0, window = 0;
      for (int i = 0; i < n; i++) {
        const long ki = lround(0.15 * (i + 1));
        topk += ki < 1 ? 1 : ki;
        for (int j = 0; j <= i; j++) window += i - j <= 3 || j == 0 || i == 0;
      }
      CU_ASSERT_DOUBLE_EQUAL(r->scheme[SPR_SCHEME_TOPK].keep_rate, topk / P, 1e-15);
      CU_ASSERT_DOUBLE_EQUAL(r->scheme[SPR_SCHEME_WINDOW].keep_rate, window / P, 1e-15);
      CU_ASSERT_DOUBLE_EQUAL(r->scheme[SPR_SCHEME_LEOPARD].keep_rate,
                             r->scheme[SPR_SCHEME_ORACLE].keep_rate, 0);
      CU_ASSERT(fabs(r->scheme[SPR_SCHEME_ORACLE].keep_rate - 0.3) < 0.1);
      for (int s = 0; s < SPR_N_SCHEMES; s++) {
        const spr_scheme_result *x = &r->scheme[s];
        CU_ASSERT(x->ran);
        CU_ASSERT(x->keep_rate > 0 && x->keep_rate <= 1);
        CU_ASSERT(x->mass_retained > 0 && x->mass_retained <= 1 + 1e-6);
      }
      /* in-memory work of the causal pairs only */
      CU_ASSERT_DOUBLE_EQUAL(sp->energy_J[SPR_LEDGER_E_IMC_MAC], P * d * c.energy.imc_mac_J,
                             1e-9 * P * d * c.energy.imc_mac_J);
      CU_ASSERT_DOUBLE_EQUAL(sp->energy_J[SPR_LEDGER_E_CMP], P * c.energy.cmp_J, 1e-9 * P * c.energy.cmp_J);
    }
  }
  free(Q); free(K); free(q); free(k); free(km); free(S);
  spr_run_free(run);
}

static void test_causal_brute_force(void) {
  check_causal_brute(13, 5);
  check_causal_brute(72, 24);
}

/* Every non-ideality on, causal: 1 and 2 threads give identical results,
 * masks, scores (NaN above the diagonal) and trace files; the masks are
 * lower-triangular and the non-idealities act; the non-causal run of the
 * same workload differs; the report names the causal trace. */
static void test_causal_threads(void) {
  spr_config c;
  causal_config(&c, 0, 40, 11);
  const int LH = c.wl.n_layers * c.wl.n_heads, n = c.wl.seq_len;
  const size_t nn = (size_t)n * n, mb = (size_t)n * spr_mask_row_bytes(n);
  spr_head_result r1[6], r2[6], r3[6];
  float *s1[6], *s2[6], *s3[6];
  uint8_t *m1[6], *m2[6], *m3[6];
  for (int k = 0; k < LH; k++) {
    s1[k] = malloc(nn * 4); s2[k] = malloc(nn * 4); s3[k] = malloc(nn * 4);
    m1[k] = malloc(mb); m2[k] = malloc(mb); m3[k] = malloc(mb);
  }
  char p1[256], p2[256], out[256];
  spr_test_path(p1, sizeof p1, "causal1", ".h5");
  spr_test_path(p2, sizeof p2, "causal2", ".h5");
  spr_test_path(out, sizeof out, "causal", ".txt");
  run_all(&c, 1, r1, s1, m1, p1);
  run_all(&c, 2, r2, s2, m2, p2);
  int diff = 0, upper = 0, nan_ok = 0;
  int64_t fp = 0;
  for (int k = 0; k < LH; k++) {
    diff += memcmp(s1[k], s2[k], nn * 4) != 0 || memcmp(m1[k], m2[k], mb) != 0;
    diff += r1[k].n_kept != r2[k].n_kept || r1[k].mass_retained != r2[k].mass_retained ||
            r1[k].false_prunes != r2[k].false_prunes;
    diff += memcmp(r1[k].scheme, r2[k].scheme, sizeof r1[k].scheme) != 0;
    fp += r1[k].false_prunes + r1[k].false_keeps;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        if (j > i) upper += bit(m1[k], n, i, j), nan_ok += isnan(s1[k][i * n + j]);
        else nan_ok += !isnan(s1[k][i * n + j]);
      }
  }
  CU_ASSERT_EQUAL(diff, 0);
  CU_ASSERT_EQUAL(upper, 0);
  CU_ASSERT_EQUAL(nan_ok, LH * n * n);
  CU_ASSERT(fp > 0);
  unsigned char *b1 = NULL, *b2 = NULL;
  long n1 = file_bytes(p1, &b1), n2 = file_bytes(p2, &b2);
  CU_ASSERT(n1 > 0 && n1 == n2);
  if (n1 > 0 && n1 == n2) CU_ASSERT_EQUAL(memcmp(b1, b2, (size_t)n1), 0);
  if (n1 > 0) free(b1);
  if (n2 > 0) free(b2);
  FILE *f = fopen(out, "w+");
  CU_ASSERT_FATAL(f != NULL);
  CU_ASSERT_EQUAL(spr_report_print(p1, f), 0);
  rewind(f);
  char line[512] = "";
  CU_ASSERT(fgets(line, sizeof line, f) != NULL);
  SPR_ASSERT_CONTAINS(line, "N = 40, causal (query i sees keys j <= i");
  fclose(f);
  remove(out);
  remove(p1);
  remove(p2);
  /* the same workload without causality decides other pairs */
  c.wl.causal = 0;
  run_all(&c, 2, r3, s3, m3, NULL);
  int same = 0;
  for (int k = 0; k < LH; k++) same += r3[k].n_kept == r1[k].n_kept;
  CU_ASSERT(same < LH);
  for (int k = 0; k < LH; k++) {
    free(s1[k]); free(s2[k]); free(s3[k]); free(m1[k]); free(m2[k]); free(m3[k]);
  }
}

int main(void) {
  CU_TestInfo tests[] = {{"all effects off equals brute force", test_ideal_equals_brute_force},
                         {"keep-rate calibration", test_keep_rate_calibration},
                         {"1 and 2 threads bit-identical", test_threads_bit_identical},
                         {"spr_run_check", test_run_check},
                         {"progress: head passes", test_progress},
                         {"ir_drop nodal: any resistance, threads bit-identical", test_nodal_run},
                         {"direct thresholds", test_direct_thresholds},
                         {"digital path and ledger", test_digital_and_ledger},
                         {"report from a trace", test_report},
                         {"analog keep rate: the layer code by brute force, threads", test_analog_keep_rate},
                         {"baselines matched to SPRINT's keep rate per layer", test_match_sprint},
                         {"error paths", test_errors},
                         {"causal, all effects off, equals brute force", test_causal_brute_force},
                         {"causal: 1 and 2 threads bit-identical, trace, report", test_causal_threads},
                         CU_TEST_INFO_NULL};
  return spr_test_run("pipeline", tests);
}
