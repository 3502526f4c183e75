/* test_blocks.c - heads in row blocks (long sequences) against heads held
 * whole: the masks, every count and the ledger bit for bit, the metrics to
 * float rounding; masks written to the trace in row chunks; the one-pass
 * attention (spr_attend_head_begin/step/end, spr_attend_schemes) against
 * the step-by-step calls; the error paths of both. */
#include "config.h"
#include "spr_attend.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_pipeline.h"
#include "spr_synth.h"
#include "spr_test.h"
#include "spr_trace.h"

#include <hdf5.h>
#include <math.h>

/* N = 200 does not divide into the 64-row blocks: the last block is short */
static void base_config(spr_config *c) {
  spr_config_default(c);
  c->wl.n_layers = 2;
  c->wl.n_heads = 3;
  c->wl.seq_len = 200;
  c->wl.head_dim = 32;
  c->seed = 2385;
  CU_ASSERT_FATAL(spr_config_resolve(c, "test") == 0);
}

/* Every count, energy, cycle figure and knob equal; the metrics, which sum
 * floats over blocks of another shape (the GEMMs of the dense reference
 * and recompute), within 1e-6 relative plus 2e-7 absolute: a metric such
 * as rel_fro = |O - R| / |R| moves by the rounding of the float outputs,
 * a few float epsilons (6e-8) whatever its own size.  Measured: at most
 * 5.7e-8 (rel_fro 0.0401), with OpenBLAS 0.3.21's Haswell (AVX2) sgemm
 * kernels, whose last bits depend on the rows of a call; its SkylakeX
 * kernels gave under 1e-6 relative. */
static int same_results(const spr_head_result *a, const spr_head_result *b, int n) {
  int bad = 0;
  for (int k = 0; k < n; k++) {
    const spr_head_result *x = &a[k], *y = &b[k];
    bad += x->n_kept != y->n_kept || x->n_ideal_kept != y->n_ideal_kept ||
           x->false_prunes != y->false_prunes || x->false_keeps != y->false_keeps ||
           x->threshold != y->threshold || x->threshold_code != y->threshold_code ||
           x->i_unit_A != y->i_unit_A;
    bad += fabs(x->mass_retained - y->mass_retained) > 1e-6 * fabs(y->mass_retained) + 2e-7;
    for (int s = 0; s < SPR_N_SCHEMES; s++) {
      const spr_scheme_result *p = &x->scheme[s], *q = &y->scheme[s];
      bad += p->ran != q->ran || p->keep_rate != q->keep_rate || p->fetches != q->fetches ||
             p->hits != q->hits || p->bytes_fetched != q->bytes_fetched ||
             p->overflow_tokens != q->overflow_tokens || p->empty_queries != q->empty_queries ||
             p->energy_total_J != q->energy_total_J || p->cycles_total != q->cycles_total ||
             p->key_resident != q->key_resident || p->xbar_cells_written != q->xbar_cells_written ||
             memcmp(p->energy_J, q->energy_J, sizeof p->energy_J) ||
             memcmp(p->cycles, q->cycles, sizeof p->cycles) ||
             !(p->knob == q->knob || (isnan(p->knob) && isnan(q->knob)));
      if (!p->ran) continue;
      const double m[][2] = {{p->rel_fro, q->rel_fro}, {p->cos_mean, q->cos_mean},
                             {p->cos_min, q->cos_min}, {p->mass_retained, q->mass_retained},
                             {p->top1_recall, q->top1_recall}, {p->topk_recall, q->topk_recall}};
      for (size_t t = 0; t < sizeof m / sizeof *m; t++)
        bad += fabs(m[t][0] - m[t][1]) > 1e-6 * fabs(m[t][1]) + 2e-7;
    }
  }
  return bad;
}

/* The run of c on `threads` threads: results copied into res (L x H), and
 * the masks of every head (L x H of n x row bytes) into ma, mi: from the
 * results when held, from a trace written in row chunks when blocked
 * (read back with HDF5). */
static void run_masks(const spr_config *c, int threads, spr_head_result *res, uint8_t **ma,
                      uint8_t **mi, const char *trace_path) {
  spr_run *run;
  CU_ASSERT_FATAL(spr_run_alloc(c, threads, &run) == 0);
  spr_trace *tr = NULL;
  const int n = c->wl.seq_len, L = c->wl.n_layers, H = c->wl.n_heads;
  const size_t mb = (size_t)n * spr_mask_row_bytes(n);
  if (trace_path) {
    CU_ASSERT_FATAL(spr_trace_create(trace_path, c, "test", &tr) == 0);
    spr_run_set_trace(run, tr);
  }
  for (int l = 0; l < L; l++) {
    CU_ASSERT_FATAL(spr_run_layer(run, l) == 0);
    for (int h = 0; h < H; h++) {
      const spr_head_result *r = spr_run_result(run, l, h);
      if (tr) CU_ASSERT_FATAL(spr_trace_write_head(tr, r) == 0);
      if (ma && r->mask_analog) memcpy(ma[l * H + h], r->mask_analog, mb);
      if (mi && r->mask_ideal) memcpy(mi[l * H + h], r->mask_ideal, mb);
    }
  }
  memcpy(res, spr_run_results(run), (size_t)L * H * sizeof *res);
  for (int k = 0; k < L * H; k++) { /* the arrays belong to the run */
    res[k].mask_analog = res[k].mask_ideal = NULL;
    res[k].q_int = res[k].k_int = res[k].k_msb = NULL;
    res[k].ideal_scores = NULL;
    res[k].analog_scores = NULL;
  }
  if (tr) {
    CU_ASSERT_FATAL(spr_trace_write_summary(tr, spr_run_results(run)) == 0);
    CU_ASSERT_FATAL(spr_trace_close(tr, 1) == 0);
  }
  const int blocked = spr_run_blocked(run);
  spr_run_free(run);
  if (!blocked || !trace_path || !ma) return;
  hid_t f = H5Fopen(trace_path, H5F_ACC_RDONLY, H5P_DEFAULT);
  CU_ASSERT_FATAL(f >= 0);
  for (int l = 0; l < L; l++)
    for (int h = 0; h < H; h++)
      for (int m = 0; m < 2; m++) {
        char p[96];
        snprintf(p, sizeof p, "/layers/layer_%02d/head_%02d/%s", l, h, m ? "mask_ideal" : "mask_analog");
        hid_t ds = H5Dopen2(f, p, H5P_DEFAULT);
        CU_ASSERT_FATAL(ds >= 0);
        CU_ASSERT(H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                          (m ? mi : ma)[l * H + h]) >= 0);
        H5Dclose(ds);
      }
  H5Fclose(f);
}

static int file_same(const char *a, const char *b) {
  FILE *x = fopen(a, "rb"), *y = fopen(b, "rb");
  int same = x && y;
  while (same) {
    const int p = fgetc(x), q = fgetc(y);
    if (p != q) same = 0;
    if (p == EOF || q == EOF) break;
  }
  if (x) fclose(x);
  if (y) fclose(y);
  return same;
}

/* One configuration held (block rows 0: N = 200 whole) against 64-row
 * blocks on 1 and 2 threads, masks through a trace in row chunks. */
static void check_blocked(spr_config *c, const char *tag) {
  const int L = c->wl.n_layers, H = c->wl.n_heads, n = c->wl.seq_len, LH = L * H;
  const size_t mb = (size_t)n * spr_mask_row_bytes(n);
  spr_head_result *r0 = calloc(LH, sizeof *r0), *r1 = calloc(LH, sizeof *r1),
                  *r2 = calloc(LH, sizeof *r2);
  uint8_t *a0[8], *i0[8], *a1[8], *i1[8];
  CU_ASSERT_FATAL(LH <= 8);
  for (int k = 0; k < LH; k++) {
    a0[k] = calloc(1, mb); i0[k] = calloc(1, mb); a1[k] = calloc(1, mb); i1[k] = calloc(1, mb);
  }
  char p1[256], p2[256];
  spr_test_path(p1, sizeof p1, tag, "-1.h5");
  spr_test_path(p2, sizeof p2, tag, "-2.h5");
  c->trace = SPR_TRACE_MASKS;
  c->block_rows = 0;
  run_masks(c, 2, r0, a0, i0, NULL);
  c->block_rows = 64;
  run_masks(c, 1, r1, a1, i1, p1);
  run_masks(c, 2, r2, NULL, NULL, p2);
  CU_ASSERT_EQUAL(same_results(r0, r1, LH), 0);
  CU_ASSERT_EQUAL(same_results(r1, r2, LH), 0);
  /* 1 and 2 threads: the same file, byte for byte (masks in row chunks) */
  CU_ASSERT(file_same(p1, p2));
  int diff = 0, kept = 0;
  for (int k = 0; k < LH; k++) {
    diff += memcmp(a0[k], a1[k], mb) != 0 || memcmp(i0[k], i1[k], mb) != 0;
    for (size_t b = 0; b < mb; b++) kept += a0[k][b] != 0;
  }
  CU_ASSERT_EQUAL(diff, 0);
  CU_ASSERT(kept > 0); /* the masks are not trivially empty */
  for (int k = 0; k < LH; k++) {
    free(a0[k]); free(i0[k]); free(a1[k]); free(i1[k]);
  }
  free(r0); free(r1); free(r2);
  remove(p1);
  remove(p2);
}

static void test_blocked_default(void) {
  spr_config c;
  base_config(&c);
  check_blocked(&c, "blk-default");
}

static void test_blocked_causal(void) {
  spr_config c;
  base_config(&c);
  c.wl.causal = 1;
  check_blocked(&c, "blk-causal");
}

/* the analog scores drawn again per block (analog_keep_rate) and the
 * baselines matched to SPRINT's keep rate (an analog pass first) */
static void test_blocked_analog_keep_rate_match(void) {
  spr_config c;
  base_config(&c);
  c.thr.mode = SPR_THR_ANALOG_KEEP_RATE;
  c.thr.keep_rate = 0.12;
  c.bl.match = SPR_MATCH_SPRINT;
  c.bl.sanger = 0; /* its matched threshold needs the whole head (refused below) */
  check_blocked(&c, "blk-akr");
}

/* a buffer where the predictors keep K resident (their busiest query's
 * keys counted in a pass of their own), LRU, causal */
static void test_blocked_resident(void) {
  spr_config c;
  base_config(&c);
  c.dig.buffer_bytes = 65536;
  c.dig.policy = 1;
  c.wl.causal = 1;
  spr_head_result r[6];
  c.block_rows = 0;
  run_masks(&c, 1, r, NULL, NULL, NULL);
  int resident = 0;
  for (int k = 0; k < 6; k++) resident += (int)r[k].scheme[SPR_SCHEME_ORACLE].key_resident;
  CU_ASSERT(resident > 0); /* the case the pass exists for */
  check_blocked(&c, "blk-resident");
}

static void test_blocked_errors(void) {
  spr_config c;
  base_config(&c);
  spr_run *run = NULL;
  c.block_rows = 100;
  CU_ASSERT_EQUAL(spr_run_alloc(&c, 1, &run), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "run.block_rows = 100: a block below workload.seq_len = 200 must be a multiple of 64");
  c.block_rows = 64;
  c.trace = SPR_TRACE_FULL;
  CU_ASSERT_EQUAL(spr_run_alloc(&c, 1, &run), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "run.trace = full records every head's 200 x 200 scores");
  c.trace = SPR_TRACE_MASKS;
  c.bl.match = SPR_MATCH_SPRINT;
  CU_ASSERT_EQUAL(spr_run_alloc(&c, 1, &run), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "set baselines.sanger = false, or run.block_rows = 200");
  CU_ASSERT_PTR_NULL(run);
  /* a block of N or more is the whole head */
  c.bl.match = SPR_MATCH_NONE;
  c.block_rows = 4096;
  CU_ASSERT_EQUAL(spr_run_block_rows(&c), 200);
  /* automatic: whole up to SPR_RUN_WHOLE_MAX; above, whole up to
   * SPR_RUN_HELD_MAX only for a run that needs a whole head (trace = full,
   * Sanger matched to SPRINT), else blocks of SPR_RUN_BLOCK_ROWS, fewer
   * (multiples of 64) once a block's scratch would pass 256 MiB */
  c.block_rows = 0;
  c.wl.seq_len = SPR_RUN_WHOLE_MAX;
  CU_ASSERT_EQUAL(spr_run_block_rows(&c), SPR_RUN_WHOLE_MAX);
  c.wl.seq_len = SPR_RUN_WHOLE_MAX + 1;
  CU_ASSERT_EQUAL(spr_run_block_rows(&c), SPR_RUN_BLOCK_ROWS);
  c.wl.seq_len = SPR_RUN_HELD_MAX;
  CU_ASSERT_EQUAL(spr_run_block_rows(&c), SPR_RUN_BLOCK_ROWS);
  c.trace = SPR_TRACE_FULL;
  CU_ASSERT_EQUAL(spr_run_block_rows(&c), SPR_RUN_HELD_MAX);
  c.wl.seq_len = SPR_RUN_HELD_MAX + 64;
  CU_ASSERT_EQUAL(spr_run_block_rows(&c), SPR_RUN_BLOCK_ROWS); /* refused by spr_run_alloc */
  c.trace = SPR_TRACE_MASKS;
  c.wl.seq_len = SPR_RUN_HELD_MAX;
  c.bl.match = SPR_MATCH_SPRINT;
  CU_ASSERT_EQUAL(spr_run_block_rows(&c), SPR_RUN_HELD_MAX);
  c.bl.sanger = 0;
  CU_ASSERT_EQUAL(spr_run_block_rows(&c), SPR_RUN_BLOCK_ROWS);
  c.bl.sanger = 1;
  c.bl.match = SPR_MATCH_NONE;
  c.wl.seq_len = 32768; /* 24 x 32768 x 256 bytes: 192 MiB, still 256 rows */
  CU_ASSERT_EQUAL(spr_run_block_rows(&c), SPR_RUN_BLOCK_ROWS);
  c.wl.seq_len = SPR_MAX_SEQ; /* 256 MiB / (24 x 131072 + 4 d) bytes: 85, so 64 */
  CU_ASSERT_EQUAL(spr_run_block_rows(&c), 64);
  /* memory: one layer of 12 heads at N = 32768 and one head at 131072,
   * estimated below the targets of issue 12 (4 and 8 GiB) with 2 threads */
  c.wl.n_heads = 12;
  c.wl.seq_len = 32768;
  CU_ASSERT(spr_run_mem_bytes(&c, 2) < 4.0 * 1073741824.0);
  c.wl.n_heads = 1;
  c.wl.seq_len = SPR_MAX_SEQ;
  CU_ASSERT(spr_run_mem_bytes(&c, 2) < 8.0 * 1073741824.0);
  /* the same head held whole would need its N x N arrays: refused before
   * any allocation, naming the keys, the estimate and the limit */
  c.block_rows = SPR_MAX_SEQ;
  CU_ASSERT(spr_run_mem_bytes(&c, 1) > 68.0 * 1073741824.0);
  CU_ASSERT_EQUAL(spr_run_alloc(&c, 1, &run), SPR_ENOMEM);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "run: 1 heads of 131072 tokens need about");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "lower workload.seq_len or workload.heads, or set run.block_rows below 131072");
  CU_ASSERT_PTR_NULL(run);
  /* workload.seq_len's limit is SPR_MAX_SEQ */
  spr_config d;
  spr_config_default(&d);
  CU_ASSERT_EQUAL(spr_config_set(&d, "workload", "seq_len", "131073", "test"), SPR_ECONFIG);
  CU_ASSERT_EQUAL(spr_config_set(&d, "workload", "seq_len", "131072", "test"), 0);
}

/* The trace's row chunks: their errors, and a head written before all its
 * rows came. */
static void test_trace_rows_errors(void) {
  spr_config c;
  base_config(&c);
  c.wl.n_layers = 1;
  c.wl.n_heads = 1;
  c.wl.seq_len = 20; /* rows of 3 bytes: 4 padding bits */
  char p[256];
  spr_test_path(p, sizeof p, "blk-trace", ".h5");
  spr_trace *t;
  CU_ASSERT_FATAL(spr_trace_create(p, &c, "test", &t) == 0); /* level summary */
  CU_ASSERT_EQUAL(spr_trace_mask_rows_begin(t, 0), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "masks in row chunks need trace level masks (this trace: summary)");
  CU_ASSERT_EQUAL(spr_trace_close(t, 0), 0);
  c.trace = SPR_TRACE_MASKS;
  CU_ASSERT_FATAL(spr_trace_create(p, &c, "test", &t) == 0);
  uint8_t m[20 * 3] = {0};
  CU_ASSERT_EQUAL(spr_trace_write_mask_rows(t, 0, 0, 0, 4, m, m), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 0 head 0 was not begun");
  CU_ASSERT_EQUAL(spr_trace_mask_rows_begin(t, 1), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 1 out of range [0, 1)");
  CU_ASSERT_EQUAL_FATAL(spr_trace_mask_rows_begin(t, 0), 0);
  CU_ASSERT_EQUAL(spr_trace_mask_rows_begin(t, 0), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "layer 0 head 0 already begun or written");
  CU_ASSERT_EQUAL(spr_trace_write_mask_rows(t, 0, 0, 18, 4, m, m), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "rows 18 .. 21 outside [0, 20)");
  CU_ASSERT_EQUAL(spr_trace_write_mask_rows(t, 0, 0, 0, 4, m, NULL), SPR_EINVAL);
  m[2 * 3 + 2] = 0x10; /* row 2: bit 20, beyond n */
  CU_ASSERT_EQUAL(spr_trace_write_mask_rows(t, 0, 0, 0, 4, m, m), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "mask_analog row 2 has padding bits set");
  m[2 * 3 + 2] = 0x05;
  CU_ASSERT_EQUAL(spr_trace_write_mask_rows(t, 0, 0, 0, 4, m, m), 0);
  spr_head_result r;
  memset(&r, 0, sizeof r);
  r.n = 20;
  r.d = 32;
  CU_ASSERT_EQUAL(spr_trace_write_head(t, &r), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "4 of the 20 mask rows written");
  CU_ASSERT_EQUAL(spr_trace_write_mask_rows(t, 0, 0, 4, 16, m, m), 0);
  CU_ASSERT_EQUAL(spr_trace_write_head(t, &r), 0); /* its mask pointers are not read */
  CU_ASSERT_EQUAL(spr_trace_close(t, 0), 0);
  remove(p);
}

/* One pass over a held head (spr_attend_schemes) gives what the schemes
 * give one call at a time; the exact output alone; metrics switched off
 * (NaN) leave every count and energy as they were. */
static void test_attend_one_pass(void) {
  spr_config c;
  base_config(&c);
  c.wl.causal = 1;
  const int n = 200, d = 32;
  spr_attend_head h;
  spr_attend_ws *w;
  CU_ASSERT_FATAL(spr_attend_head_alloc(&h, &c, n, d, 0) == 0);
  CU_ASSERT_FATAL(spr_attend_ws_alloc(&c, n, d, &w) == 0);
  CU_ASSERT_FATAL(spr_synth_head(&c.wl, c.seed, 1, 2, h.Q, h.K, h.V) == 0);
  spr_head_result res;
  CU_ASSERT_FATAL(spr_attend_ideal(&c, 1, 2, &h, w, &res) == 0);
  spr_attend_range(&c, &h, 1, &res);
  CU_ASSERT_FATAL(spr_attend_count(&c, &h, &res) == 0);
  CU_ASSERT_FATAL(spr_attend_thresholds(&c, 1, &h, 1, 0.0, w, &res, NULL) == 0);
  CU_ASSERT_FATAL(spr_attend_analog(&c, 1, 2, 0, &h, w, &res) == 0);
  CU_ASSERT_FATAL(spr_attend_digital(&c, &h, w) == 0);
  spr_scheme_result all[SPR_N_SCHEMES], one[SPR_N_SCHEMES];
  CU_ASSERT_FATAL(spr_attend_schemes(&c, &h, w, -1.0, all) == 0);
  float *O = malloc((size_t)n * d * sizeof *O), *O2 = malloc((size_t)n * d * sizeof *O2);
  for (int s = 0; s < SPR_N_SCHEMES; s++) {
    CU_ASSERT_FATAL(spr_attend_scheme(&c, s, &h, w, &one[s], O) == 0);
    CU_ASSERT(memcmp(&all[s], &one[s], sizeof all[s]) == 0);
  }
  /* the exact output: the reference's, alone */
  memcpy(O2, spr_attend_exact_output(w), (size_t)n * d * sizeof *O2);
  CU_ASSERT_FATAL(spr_attend_exact(&c, &h, w, O) == 0);
  CU_ASSERT(memcmp(O, O2, (size_t)n * d * sizeof *O) == 0);
  /* metrics off: NaN, the rest unchanged */
  spr_attend_ws_set_metrics(w, 0);
  spr_head_result r2 = res;
  CU_ASSERT_FATAL(spr_attend_analog(&c, 1, 2, 0, &h, w, &r2) == 0);
  CU_ASSERT(isnan(r2.mass_retained) && isnan(r2.ideal_mass_retained));
  CU_ASSERT_EQUAL(r2.n_kept, res.n_kept);
  CU_ASSERT_FATAL(spr_attend_digital(&c, &h, w) == 0);
  CU_ASSERT_PTR_NULL(spr_attend_exact_output(w));
  for (int s = 0; s < SPR_N_SCHEMES; s++) {
    spr_scheme_result x;
    CU_ASSERT_FATAL(spr_attend_scheme(&c, s, &h, w, &x, NULL) == 0);
    CU_ASSERT(isnan(x.rel_fro) && isnan(x.mass_retained) && isnan(x.topk_recall));
    CU_ASSERT_EQUAL(x.energy_total_J, all[s].energy_total_J);
    CU_ASSERT_EQUAL(x.fetches, all[s].fetches);
  }
  spr_attend_ws_set_metrics(w, 1);
  /* error paths of the one-pass calls */
  spr_attend_ws *wb;
  CU_ASSERT_FATAL(spr_attend_ws_alloc_rows(&c, n, d, 64, &wb) == 0);
  CU_ASSERT_EQUAL(spr_attend_head_begin(&c, 1, 2, 0, &h, wb, &res, -1.0, 0), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "head of 200 tokens (held) on a workspace of 200 tokens in blocks of 64 rows");
  CU_ASSERT_EQUAL(spr_attend_scheme(&c, SPR_SCHEME_DENSE, &h, wb, &one[0], NULL), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "needs a head held whole");
  spr_attend_ws *w2;
  CU_ASSERT_FATAL(spr_attend_ws_alloc(&c, n, d, &w2) == 0);
  CU_ASSERT_EQUAL(spr_attend_schemes(&c, &h, w2, -1.0, all), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "call spr_attend_digital on this head first");
  spr_attend_ws *wbad = NULL;
  CU_ASSERT_EQUAL(spr_attend_ws_alloc_rows(&c, n, d, 100, &wbad), SPR_EINVAL);
  CU_ASSERT_PTR_NULL(wbad);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "block of 100 rows (a multiple of 64, or n = 200)");
  spr_attend_head hb;
  CU_ASSERT_EQUAL(spr_attend_head_alloc_rows(&hb, &c, n, d, 1, 64), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cannot hold its 200 x 200 analog scores");
  CU_ASSERT_FATAL(spr_attend_head_alloc_rows(&hb, &c, n, d, 0, 64) == 0);
  CU_ASSERT(!hb.held && !hb.ideal && !hb.ideal16 && !hb.mask_a);
  /* a held head keeps its ideal scores as int16 when they fit (max |q|
   * max |k_msb| d <= 32767) and no full trace records them as int32; the
   * int16 and int32 paths give the same masks (check_blocked: held
   * against blocks, whose scratch rows are int32) */
  spr_attend_head h16, h32;
  const int fits = (int64_t)((1 << (c.an.query_bits - 1)) - 1) * (1 << (c.xbar.key_msb_bits - 1)) * d <= 32767;
  CU_ASSERT(fits);
  CU_ASSERT_EQUAL(spr_attend_ideal16(&c, d, 0), 1);
  CU_ASSERT_EQUAL(spr_attend_ideal16(&c, d, 1), 0);
  CU_ASSERT_FATAL(spr_attend_head_alloc_rows(&h16, &c, n, d, 0, n) == 0);
  CU_ASSERT(h16.ideal16 && !h16.ideal);
  CU_ASSERT_FATAL(spr_attend_head_alloc_rows(&h32, &c, n, d, 1, n) == 0);
  CU_ASSERT(h32.ideal && !h32.ideal16);
  CU_ASSERT(spr_attend_head_bytes(&c, n, d, 0, n) + 2.0 * n * n <= spr_attend_head_bytes(&c, n, d, 1, n));
  spr_attend_head_free(&h16);
  spr_attend_head_free(&h32);
  spr_config c8 = c;
  c8.an.query_bits = 8; /* 127 x 8 x d: beyond int16 at d = 64 */
  CU_ASSERT_EQUAL(spr_attend_ideal16(&c8, 64, 0), 0);
  CU_ASSERT_EQUAL(spr_attend_head_begin(&c, 1, 2, 0, &hb, w, &res, -1.0, 1), SPR_EINVAL);
  spr_attend_ws_free(w2);
  spr_attend_ws_free(wb);
  spr_attend_head_free(&hb);
  spr_attend_ws_free(w);
  spr_attend_head_free(&h);
  free(O);
  free(O2);
}

/* Stage timers: names for every stage, time charged to the stages a run
 * goes through, nothing to an unknown stage. */
static void test_stage_timers(void) {
  for (int s = 0; s < SPR_STAGE_N; s++) CU_ASSERT_PTR_NOT_NULL(spr_stage_name(s));
  CU_ASSERT_PTR_NULL(spr_stage_name(SPR_STAGE_N));
  CU_ASSERT_PTR_NULL(spr_stage_name(-1));
  CU_ASSERT_STRING_EQUAL(spr_stage_name(SPR_STAGE_SCHEME + SPR_SCHEME_TOPK), "scheme topk");
  spr_config c;
  base_config(&c);
  c.wl.n_layers = 1;
  spr_run *run;
  CU_ASSERT_FATAL(spr_run_alloc(&c, 1, &run) == 0);
  CU_ASSERT_FATAL(spr_run_layer(run, 0) == 0);
  double st[SPR_STAGE_N];
  spr_run_stages(run, st);
  for (int s = 0; s < SPR_STAGE_N; s++)
    CU_ASSERT(st[s] > 0 || s == SPR_STAGE_SCHEME + SPR_SCHEME_DENSE_TILED); /* shares dense's */
  spr_run_free(run);
}

int main(void) {
  CU_TestInfo tests[] = {{"row blocks = whole heads", test_blocked_default},
                         {"row blocks = whole heads, causal", test_blocked_causal},
                         {"row blocks = whole heads, analog keep rate, matched baselines",
                          test_blocked_analog_keep_rate_match},
                         {"row blocks = whole heads, resident predictor keys, LRU",
                          test_blocked_resident},
                         {"row blocks: errors, automatic rows, memory", test_blocked_errors},
                         {"trace masks in row chunks: errors", test_trace_rows_errors},
                         {"one pass over a head = one call per scheme", test_attend_one_pass},
                         {"stage timers", test_stage_timers},
                         CU_TEST_INFO_NULL};
  return spr_test_run("blocks", tests);
}
