/* test_sweep.c - the [sweep] section, grid expansion, point configurations,
 * every error path, evaluation independent of threads and order, outputs. */
#include "spr_config.h"
#include "spr_device.h"
#include "spr_error.h"
#include "spr_eval.h"
#include "spr_pipeline.h"
#include "spr_sweep.h"
#include "spr_output.h"
#include "spr_test.h"
#include "spr_test_device.h"
#include "spr_model_eval.h"
#include "spr_test_model.h"

#include <math.h>
#include <stdint.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

/* Write `text` to a scratch file; returns its path (static buffer per slot). */
static const char *write_ini(int slot, const char *text) {
  static char paths[8][512];
  char tag[32];
  snprintf(tag, sizeof tag, "sweep%d", slot);
  spr_test_path(paths[slot], sizeof paths[slot], tag, ".ini");
  FILE *f = fopen(paths[slot], "w");
  CU_ASSERT_FATAL(f != NULL);
  fputs(text, f);
  fclose(f);
  return paths[slot];
}

static const char *SMALL =
    "[workload]\nseq_len = 32\nlayers = 1\nheads = 2\nhead_dim = 16\n";

/* A file = SMALL + extra text; load it expecting success. */
static spr_sweep *load_ok(const char *extra) {
  char text[4096];
  snprintf(text, sizeof text, "%s%s", SMALL, extra);
  spr_sweep *sw = NULL;
  int rc = spr_sweep_load(write_ini(0, text), &sw);
  if (rc) fprintf(stderr, "\n  unexpected error: %s\n", spr_errmsg());
  CU_ASSERT_EQUAL(rc, 0);
  return sw;
}

/* Load expecting SPR_ECONFIG with `needle` (and a second needle, may be NULL). */
static void load_fails(const char *text, const char *needle, const char *needle2) {
  spr_sweep *sw = NULL;
  const char *path = write_ini(1, text);
  int rc = spr_sweep_load(path, &sw);
  CU_ASSERT_EQUAL(rc, SPR_ECONFIG);
  CU_ASSERT_PTR_NULL(sw);
  SPR_ASSERT_CONTAINS(spr_errmsg(), needle);
  if (needle2) SPR_ASSERT_CONTAINS(spr_errmsg(), needle2);
  SPR_ASSERT_CONTAINS(spr_errmsg(), path);
  spr_sweep_free(sw);
}

static void test_grid_order(void) {
  spr_sweep *sw = load_ok("[sweep]\n"
                          "threshold.keep_rate = 0.05, 0.1, 0.2\n"
                          "analog.cmp_noise_sigma = 0, 20 nA\n"
                          "crossbar.cell_bits = 4, 5\n");
  CU_ASSERT_FATAL(sw != NULL);
  CU_ASSERT_EQUAL(spr_sweep_npoints(sw), 12);
  CU_ASSERT_EQUAL(spr_sweep_naxes(sw), 3);
  CU_ASSERT_STRING_EQUAL(spr_sweep_axis_key(sw, 1), "analog.cmp_noise_sigma");
  CU_ASSERT_STRING_EQUAL(spr_sweep_axis_text(sw, 1, 1), "20 nA");
  /* first axis slowest: point p = ((i0 * 2) + i1) * 2 + i2 */
  for (int p = 0; p < 12; p++) {
    CU_ASSERT_EQUAL(spr_sweep_point_value(sw, p, 0), p / 4);
    CU_ASSERT_EQUAL(spr_sweep_point_value(sw, p, 1), (p / 2) % 2);
    CU_ASSERT_EQUAL(spr_sweep_point_value(sw, p, 2), p % 2);
  }
  char label[256];
  spr_sweep_point_label(sw, 7, label, sizeof label);
  CU_ASSERT_STRING_EQUAL(label, "threshold.keep_rate = 0.1, analog.cmp_noise_sigma = 20 nA, crossbar.cell_bits = 5");
  spr_config c;
  CU_ASSERT_EQUAL(spr_sweep_point_config(sw, 7, &c), 0);
  CU_ASSERT_EQUAL(c.thr.keep_rate, 0.1);
  CU_ASSERT_EQUAL(c.an.cmp_noise_sigma_A, 20e-9);
  CU_ASSERT_EQUAL(c.xbar.cell_bits, 5);
  CU_ASSERT_EQUAL(c.wl.seq_len, 32);
  CU_ASSERT_EQUAL(c.wl.n_layers, 1);
  CU_ASSERT_EQUAL(spr_sweep_point_config(sw, 12, &c), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_sweep_point_value(sw, 12, 0), -1);
  spr_sweep_free(sw);
  spr_sweep_free(NULL);
}

/* A point's configuration equals the same values written in a plain file. */
static void test_point_config_equals_plain_file(void) {
  spr_sweep *sw = load_ok("[crossbar]\ndrift_time = 2 ks\n"
                          "[sweep]\n"
                          "threshold.keep_rate = 0.05, 0.3\n"
                          "crossbar.rows = 32, 128\n"
                          "schemes = sprint, dense, topk\n");
  CU_ASSERT_FATAL(sw != NULL);
  spr_config a, b;
  CU_ASSERT_EQUAL(spr_sweep_point_config(sw, 2, &a), 0);
  spr_config_default(&b);
  char text[1024];
  snprintf(text, sizeof text,
           "%s[crossbar]\ndrift_time = 2 ks\nrows = 32\n[threshold]\nkeep_rate = 0.3\n"
           "[baselines]\ndense_tiled = false\noracle = false\nsanger = false\nleopard = false\n"
           "window = false\n",
           SMALL);
  CU_ASSERT_EQUAL_FATAL(spr_config_load(&b, write_ini(2, text)), 0);
  char *ia = spr_config_to_ini(&a), *ib = spr_config_to_ini(&b);
  CU_ASSERT_STRING_EQUAL(ia, ib);
  free(ia);
  free(ib);
  CU_ASSERT_EQUAL(spr_sweep_nschemes(sw), 3);
  CU_ASSERT_EQUAL(spr_sweep_scheme(sw, 2), SPR_SCHEME_TOPK);
  spr_sweep_free(sw);
}

/* Keys linked with '+' take the same value at each point. */
static void test_linked_keys(void) {
  spr_sweep *sw = load_ok("[sweep]\nthreshold.keep_rate + baselines.topk_fraction = 0.1, 0.25\n"
                          "analog.cmp_noise_sigma = 0, 5 nA\n");
  CU_ASSERT_FATAL(sw != NULL);
  CU_ASSERT_EQUAL(spr_sweep_npoints(sw), 4);
  spr_config c;
  CU_ASSERT_EQUAL(spr_sweep_point_config(sw, 3, &c), 0);
  CU_ASSERT_EQUAL(c.thr.keep_rate, 0.25);
  CU_ASSERT_EQUAL(c.bl.topk_fraction, 0.25);
  CU_ASSERT_EQUAL(c.an.cmp_noise_sigma_A, 5e-9);
  CU_ASSERT_EQUAL(spr_sweep_point_config(sw, 1, &c), 0);
  CU_ASSERT_EQUAL(c.bl.topk_fraction, 0.1);
  CU_ASSERT_STRING_EQUAL(spr_sweep_axis_key(sw, 0), "threshold.keep_rate + baselines.topk_fraction");
  spr_sweep_free(sw);
}

/* '|' separates points whose values hold commas (a list key); continuation
 * lines join; the default schemes are sprint, dense and the baselines on. */
static void test_lists_and_defaults(void) {
  spr_sweep *sw = load_ok("[threshold]\nmode = direct\n[baselines]\nsanger = off\n"
                          "[sweep]\nthreshold.values = 40 | 60 |\n  80\n");
  CU_ASSERT_FATAL(sw != NULL);
  CU_ASSERT_EQUAL(spr_sweep_npoints(sw), 3);
  spr_config c;
  CU_ASSERT_EQUAL(spr_sweep_point_config(sw, 2, &c), 0);
  CU_ASSERT_EQUAL(c.thr.n_values, 1);
  CU_ASSERT_EQUAL(c.thr.values[0], 80);
  CU_ASSERT_EQUAL(spr_sweep_nschemes(sw), 7); /* all but sanger */
  for (int k = 0; k < spr_sweep_nschemes(sw); k++) CU_ASSERT_NOT_EQUAL(spr_sweep_scheme(sw, k), SPR_SCHEME_SANGER);
  spr_sweep_free(sw);
  /* a list per point: one value per layer */
  sw = load_ok("[threshold]\nmode = direct\n[sweep]\nworkload.layers = 2\n"
               "threshold.values = 40, 50 | 61.5, 70\n");
  CU_ASSERT_FATAL(sw != NULL);
  CU_ASSERT_EQUAL(spr_sweep_npoints(sw), 2);
  CU_ASSERT_EQUAL(spr_sweep_point_config(sw, 1, &c), 0);
  CU_ASSERT_EQUAL(c.wl.n_layers, 2);
  CU_ASSERT_EQUAL(c.thr.n_values, 2);
  CU_ASSERT_EQUAL(c.thr.values[0], 61.5);
  CU_ASSERT_EQUAL(c.thr.values[1], 70);
  spr_sweep_free(sw);
  /* no [sweep] section: one point, the configuration itself */
  sw = load_ok("");
  CU_ASSERT_FATAL(sw != NULL);
  CU_ASSERT_EQUAL(spr_sweep_npoints(sw), 1);
  CU_ASSERT_EQUAL(spr_sweep_naxes(sw), 0);
  spr_sweep_free(sw);
}

static void test_errors(void) {
  char t[2048];
#define WITH(extra) (snprintf(t, sizeof t, "%s%s", SMALL, extra), t)
  load_fails(WITH("[sweep]\nanalog.cmp_noise_sgma = 0, 1 nA\n"),
             ":7: [sweep] key 'analog.cmp_noise_sgma' names no configuration key", NULL);
  load_fails(WITH("[sweep]\nfoo = 1, 2\n"), ":7: unknown [sweep] key 'foo'", NULL);
  load_fails(WITH("[sweep]\nthreshold.keep_rate = 0.1\nanalog.cmp_noise_sigma = 0, 50 V\n"),
             ":8: [sweep] point 2 of 2 (threshold.keep_rate = 0.1, analog.cmp_noise_sigma = 50 V)",
             "key 'analog.cmp_noise_sigma': value '50 V' has unit 'V', expected A");
  load_fails(WITH("[sweep]\nthreshold.keep_rate = 0.1, 0.2, 7\n"),
             "point 3 of 3 (threshold.keep_rate = 7)", "out of range");
  load_fails(WITH("[sweep]\nthreshold.keep_rate =\n"), ":7: [sweep] axis 'threshold.keep_rate' has no values", NULL);
  load_fails(WITH("[sweep]\nthreshold.keep_rate = 0.1,, 0.2\n"), "value 2 of 3 is empty", NULL);
  load_fails(WITH("[sweep]\nthreshold.keep_rate = 0.1\nthreshold.keep_rate = 0.2\n"),
             ":8: [sweep] key 'threshold.keep_rate' on two axes ('threshold.keep_rate' on line 7", NULL);
  load_fails(WITH("[sweep]\nthreshold.keep_rate = 0.1\nbaselines.topk_fraction + threshold.keep_rate = 0.2\n"),
             ":8: [sweep] key 'threshold.keep_rate' on two axes", "link keys with '+'");
  load_fails(WITH("[sweep]\nthreshold.keep_rate + baselines.topk_frac = 0.1\n"),
             ":7: [sweep] key 'threshold.keep_rate + baselines.topk_frac' names no configuration key", NULL);
  load_fails(WITH("[sweep]\nthreshold.keep_rate + threshold.keep_rate = 0.1\n"), "links key 'threshold.keep_rate' twice", NULL);
  load_fails(WITH("[sweep]\nthreshold.keep_rate + crossbar.rows = 0.1\n"),
             "point 1 of 1 (threshold.keep_rate + crossbar.rows = 0.1)", "key 'crossbar.rows': value '0.1' is not an integer");
  const char *eleven = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11";
  char big[1024];
  snprintf(big, sizeof big, "[sweep]\nrun.seed = %s\nanalog.temperature = %s\nanalog.v_read = %s\n", eleven, eleven, eleven);
  load_fails(WITH(big), "3 axes make 1331 points, more than max_points = 1000", NULL);
  load_fails(WITH("[sweep]\nmax_points = 0\n"), "'max_points': value '0' is not an integer", NULL);
  load_fails(WITH("[sweep]\nschemes = sprint, bogus\n"), "'bogus' is not a scheme", NULL);
  load_fails(WITH("[sweep]\nschemes = sprint, sprint\n"), "'sprint' listed twice", NULL);
  load_fails(WITH("[sweep]\nschemes = sprint,,dense\n"), "has an empty item", NULL);
  load_fails(WITH("[baselines]\nsanger = false\n[sweep]\nschemes = sprint, sanger\n"),
             "scheme 'sanger' is reported", "baselines.sanger = false");
  /* a combination that resolve refuses names the point */
  load_fails(WITH("[sweep]\ncrossbar.cell_bits = 4, 2\n"), "point 2 of 2 (crossbar.cell_bits = 2)",
             "key 'crossbar.key_msb_bits'");
  /* the rest of the file keeps the normal parser's strictness */
  load_fails(WITH("[analog]\nvread = 0.2\n[sweep]\nthreshold.keep_rate = 0.1\n"),
             ":7: unknown key 'analog.vread'", NULL);
  load_fails(WITH("[sweeps]\nthreshold.keep_rate = 0.1\n"), "unknown section '[sweeps]'", NULL);
  /* and a normal load refuses [sweep] */
  spr_config c;
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_load(&c, write_ini(3, WITH("[sweep]\nthreshold.keep_rate = 0.1\n"))), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "unknown section '[sweep]'");
  CU_ASSERT_EQUAL(spr_sweep_load("/nonexistent/x.ini", &(spr_sweep *){NULL}), SPR_EIO);
#undef WITH
}

/* max_points raises the limit; a grid of 1331 points then loads. */
static void test_max_points(void) {
  const char *eleven = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11";
  char big[1024];
  snprintf(big, sizeof big, "[sweep]\nmax_points = 1331\nrun.seed = %s\nanalog.temperature = %s\nthreshold.bits = %s\n",
           eleven, eleven, eleven);
  spr_sweep *sw = load_ok(big);
  CU_ASSERT_FATAL(sw != NULL);
  CU_ASSERT_EQUAL(spr_sweep_npoints(sw), 1331);
  spr_sweep_free(sw);
}

/* Evaluating the points in any order on any thread gives the same rows,
 * and those rows are the totals of a separate run of the point's config. */
static void test_eval_independent_of_threads(void) {
  const char *extra = "[sweep]\nthreshold.keep_rate = 0.1, 0.25\nanalog.cmp_noise_sigma = 0, 80 nA\n"
                      "schemes = sprint, dense, oracle, window\n";
  spr_sweep *a = load_ok(extra), *b = load_ok(extra);
  CU_ASSERT_FATAL(a && b);
  const int P = spr_sweep_npoints(a);
  CU_ASSERT_PTR_NULL(spr_sweep_row(a, 0, SPR_SCHEME_SPRINT)); /* not yet evaluated */
  for (int p = 0; p < P; p++) CU_ASSERT_EQUAL(spr_sweep_eval_point(a, p, NULL, NULL), 0);
  int fails = 0;
#pragma omp parallel for num_threads(2) schedule(dynamic, 1) reduction(+ : fails)
  for (int i = 0; i < P; i++) fails += spr_sweep_eval_point(b, P - 1 - i, NULL, NULL) != 0;
  CU_ASSERT_EQUAL(fails, 0);
  for (int p = 0; p < P; p++)
    for (int s = 0; s < SPR_N_SCHEMES; s++)
      CU_ASSERT_EQUAL(memcmp(spr_sweep_row(a, p, s), spr_sweep_row(b, p, s), sizeof(spr_eval_row)), 0);
  /* schemes not reported did not run */
  CU_ASSERT_EQUAL(spr_sweep_row(a, 1, SPR_SCHEME_TOPK)->ran, 0);
  CU_ASSERT_EQUAL(spr_sweep_row(a, 1, SPR_SCHEME_WINDOW)->ran, 1);
  /* point 3 against a run of its configuration with 2 threads, summed here */
  spr_config c;
  CU_ASSERT_EQUAL_FATAL(spr_sweep_point_config(a, 3, &c), 0);
  spr_run *run = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_run_alloc(&c, 2, &run), 0);
  for (int l = 0; l < c.wl.n_layers; l++) CU_ASSERT_EQUAL(spr_run_layer(run, l), 0);
  const spr_head_result *res = spr_run_results(run);
  const int LH = c.wl.n_layers * c.wl.n_heads;
  for (int s = 0; s < SPR_N_SCHEMES; s++) {
    const spr_eval_row *r = spr_sweep_row(a, 3, s);
    double e = 0, mass = 0, keep = 0;
    long long bytes = 0;
    for (int k = 0; k < LH; k++) {
      e += res[k].scheme[s].energy_total_J;
      mass += res[k].scheme[s].mass_retained;
      keep += res[k].scheme[s].keep_rate;
      bytes += res[k].scheme[s].bytes_fetched;
    }
    CU_ASSERT_EQUAL(r->ran, res[0].scheme[s].ran);
    if (!r->ran) continue;
    CU_ASSERT_DOUBLE_EQUAL(r->energy_J, e, 1e-12 * e);
    CU_ASSERT_DOUBLE_EQUAL(r->acc[0], mass / LH, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r->keep_rate, keep / LH, 1e-12);
    CU_ASSERT_EQUAL(r->bytes_fetched, bytes);
  }
  /* more noise moves SPRINT but not dense (analog noise only touches the analog masks) */
  CU_ASSERT_EQUAL(spr_sweep_row(a, 2, SPR_SCHEME_DENSE)->energy_J, spr_sweep_row(a, 3, SPR_SCHEME_DENSE)->energy_J);
  CU_ASSERT_NOT_EQUAL(spr_sweep_row(a, 2, SPR_SCHEME_SPRINT)->keep_rate,
                      spr_sweep_row(a, 3, SPR_SCHEME_SPRINT)->keep_rate);
  spr_run_free(run);
  spr_sweep_free(a);
  spr_sweep_free(b);
}

static long count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long n = 0;
  int ch;
  while ((ch = fgetc(f)) != EOF) n += ch == '\n';
  fclose(f);
  return n;
}

static void test_outputs(void) {
  spr_sweep *sw = load_ok("[sweep]\nthreshold.keep_rate = 0.1, 0.2, 0.3\nschemes = dense, sprint\n");
  CU_ASSERT_FATAL(sw != NULL);
  char h5[512], dir[512];
  spr_test_path(h5, sizeof h5, "sweep-out", ".h5");
  char *csv = spr_sweep_csv_path(h5);
  CU_ASSERT_FATAL(csv != NULL);
  CU_ASSERT_STRING_EQUAL(csv + strlen(csv) - 4, ".csv");
  CU_ASSERT_EQUAL(strncmp(csv, h5, strlen(h5) - 3), 0);
  /* not every point evaluated: refused, nothing left */
  spr_sweep_out *o = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_sweep_out_open(h5, csv, &o), 0);
  CU_ASSERT_EQUAL(spr_sweep_eval_point(sw, 0, NULL, NULL), 0);
  CU_ASSERT_EQUAL(spr_sweep_out_commit(o, sw, "test"), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "point 2 of 3 was not evaluated");
  struct stat st;
  CU_ASSERT_NOT_EQUAL(stat(h5, &st), 0);
  CU_ASSERT_NOT_EQUAL(stat(csv, &st), 0);
  /* a cancelled point stops with SPR_ECANCELED and stays unevaluated */
  volatile sig_atomic_t stop = 1;
  CU_ASSERT_EQUAL(spr_sweep_eval_point(sw, 1, &stop, NULL), SPR_ECANCELED);
  CU_ASSERT_PTR_NULL(spr_sweep_row(sw, 1, SPR_SCHEME_DENSE));
  for (int p = 1; p < 3; p++) CU_ASSERT_EQUAL(spr_sweep_eval_point(sw, p, NULL, NULL), 0);
  CU_ASSERT_EQUAL_FATAL(spr_sweep_out_open(h5, csv, &o), 0);
  CU_ASSERT_EQUAL(spr_sweep_out_commit(o, sw, "test"), 0);
  CU_ASSERT_EQUAL(count_lines(csv), 1 + 3 * 2);
  FILE *f = fopen(csv, "r");
  char line[1024];
  CU_ASSERT_FATAL(f && fgets(line, sizeof line, f));
  CU_ASSERT_STRING_EQUAL(line, "point,threshold.keep_rate,scheme,mass_retained,rel_fro,top1_recall,cos_mean,"
                               "energy_J,cycles,keep_rate,bytes_fetched,speedup,energy_reduction,bytes_vs_dense,"
                               "speedup_vs_tiled,energy_reduction_vs_tiled\n");
  CU_ASSERT_FATAL(fgets(line, sizeof line, f) != NULL);
  CU_ASSERT_EQUAL(strncmp(line, "0,0.1,dense,", 12), 0);
  /* dense against itself; no dense_tiled at these points: NaN */
  CU_ASSERT_STRING_EQUAL(line + strlen(line) - 15, ",1,1,1,nan,nan\n");
  fclose(f);
  unlink(h5);
  unlink(csv);
  /* directory as output; same name twice */
  spr_test_path(dir, sizeof dir, "sweep-dir", "");
  mkdir(dir, 0777);
  CU_ASSERT_EQUAL(spr_sweep_out_open(dir, csv, &o), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "is a directory");
  CU_ASSERT_EQUAL(spr_sweep_out_open(h5, h5, &o), SPR_EINVAL);
  rmdir(dir);
  spr_sweep_out_abort(NULL);
  free(csv);
  spr_sweep_free(sw);
}

static int no_temps(const char *path) {
  char pat[600];
  snprintf(pat, sizeof pat, "%s.tmp.*", path);
  glob_t g;
  int n = glob(pat, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
  if (n) globfree(&g);
  return n == 0;
}

/* Both outputs with the disk's free space at several sizes (the library's
 * test-only fault hook: writes fail with ENOSPC past a byte budget): an
 * error naming the file, neither output, no temporary, in-process (the
 * HDF5 file goes through the output driver, so libhdf5 is never left
 * with a failed close: F5). */
static void test_outputs_full_disk(void) {
  spr_sweep *sw = load_ok("[sweep]\nthreshold.keep_rate = 0.1, 0.2, 0.3\nschemes = dense, sprint\n");
  CU_ASSERT_FATAL(sw != NULL);
  for (int p = 0; p < 3; p++) CU_ASSERT_EQUAL(spr_sweep_eval_point(sw, p, NULL, NULL), 0);
  char h5[512];
  spr_test_path(h5, sizeof h5, "sweep-full", ".h5");
  char *csv = spr_sweep_csv_path(h5);
  spr_sweep_out *o = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_sweep_out_open(h5, csv, &o), 0);
  const long long big = 1LL << 50;
  spr__out_fault(big);
  CU_ASSERT_EQUAL_FATAL(spr_sweep_out_commit(o, sw, "test"), 0);
  const long long total = big - spr__out_fault(-1); /* bytes written */
  struct stat a, b;
  stat(h5, &a);
  stat(csv, &b);
  CU_ASSERT(total >= b.st_size && total <= a.st_size + b.st_size + 1);
  unlink(h5);
  unlink(csv);
  const long long lv[] = {0, 1, 100, b.st_size - 1, b.st_size, b.st_size + 4096, total / 2, total - 4096, total - 1};
  for (size_t i = 0; i < sizeof lv / sizeof lv[0]; i++) {
    CU_ASSERT_EQUAL_FATAL(spr_sweep_out_open(h5, csv, &o), 0);
    spr__out_fault(lv[i]);
    int rc = spr_sweep_out_commit(o, sw, "test");
    spr__out_fault(-1);
    if (getenv("SPR_TEST_VERBOSE")) fprintf(stderr, "\n  free %lld (of %lld): rc %d: %s", lv[i], total, rc, spr_errmsg());
    CU_ASSERT_EQUAL(rc, SPR_EIO);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "No space left on device");
    SPR_ASSERT_CONTAINS(spr_errmsg(), "sweep-full");
    CU_ASSERT(stat(h5, &a) != 0 && stat(csv, &b) != 0);
    CU_ASSERT(no_temps(h5) && no_temps(csv));
  }
  /* enough space: both written */
  CU_ASSERT_EQUAL_FATAL(spr_sweep_out_open(h5, csv, &o), 0);
  spr__out_fault(total);
  CU_ASSERT_EQUAL(spr_sweep_out_commit(o, sw, "test"), 0);
  spr__out_fault(-1);
  CU_ASSERT(stat(h5, &a) == 0 && stat(csv, &b) == 0);
  unlink(h5);
  unlink(csv);
  free(csv);
  spr_sweep_free(sw);
}

/* Points of sweep a evaluated in order, of sweep b (the same file) in
 * reverse order on 2 threads: the rows must be identical.  Both read
 * their inputs first (spr_sweep_check_memory), as every caller does, so
 * no point opens a file while another runs. */
static void eval_both_ways(spr_sweep *a, spr_sweep *b) {
  const int P = spr_sweep_npoints(a);
  CU_ASSERT_EQUAL_FATAL(spr_sweep_check_memory(a, 1, 0), 0);
  CU_ASSERT_EQUAL_FATAL(spr_sweep_check_memory(b, 2, 0), 0);
  int fails = 0;
  for (int p = 0; p < P; p++)
    if (spr_sweep_eval_point(a, p, NULL, NULL)) {
      fprintf(stderr, "\n  %s\n", spr_errmsg());
      fails++;
    }
#pragma omp parallel for num_threads(2) schedule(dynamic, 1) reduction(+ : fails)
  for (int i = 0; i < P; i++)
    if (spr_sweep_eval_point(b, P - 1 - i, NULL, NULL)) {
#pragma omp critical(test_sweep_msg)
      fprintf(stderr, "\n  %s\n", spr_errmsg());
      fails++;
    }
  CU_ASSERT_EQUAL_FATAL(fails, 0);
  for (int p = 0; p < P; p++)
    for (int s = 0; s < SPR_N_SCHEMES; s++)
      CU_ASSERT_EQUAL(memcmp(spr_sweep_row(a, p, s), spr_sweep_row(b, p, s), sizeof(spr_eval_row)), 0);
}

/* The model evaluators: chosen by workload.source = model and the model's
 * input; a sweep point's rows equal a separate spr_model_eval of the
 * point's configuration with 2 threads, with the metrics recomputed here
 * from the per-item predictions or nats; rows independent of thread and
 * order; a missing model is an error of the point when the sweep is
 * loaded. */
static void test_model_evaluators(void) {
  spr_config c;
  spr_config_default(&c);
  CU_ASSERT_PTR_EQUAL(spr_evaluator_for(&c), &spr_eval_attention);
  c.wl.source = SPR_SOURCE_MODEL;
  CU_ASSERT_STRING_EQUAL(spr_eval_image_model.acc[spr_eval_image_model.primary].name, "top1");
  CU_ASSERT_STRING_EQUAL(spr_eval_image_model.acc[4].name, "loss_pp");
  CU_ASSERT_EQUAL(spr_eval_image_model.acc[4].higher_better, 0);
  CU_ASSERT_STRING_EQUAL(spr_eval_text_model.acc[spr_eval_text_model.primary].name, "bpc");
  CU_ASSERT_EQUAL(spr_eval_text_model.acc[0].higher_better, 0);
  CU_ASSERT_STRING_EQUAL(spr_eval_text_model.acc[3].name, "loss_pct");

  /* a synthetic causal text model and its reference */
  char tm[512], tr[512], text[4096];
  spr_test_path(tm, sizeof tm, "sweep-lm", ".h5");
  spr_test_path(tr, sizeof tr, "sweep-lm-ref", ".h5");
  write_model(tm, 1, OK, 2385);
  write_model(tr, 1, NO_THETA, 2386);
  snprintf(c.wl.model, sizeof c.wl.model, "%s", tm);
  CU_ASSERT_PTR_EQUAL(spr_evaluator_for(&c), &spr_eval_text_model);
  snprintf(c.wl.model, sizeof c.wl.model, "%s.absent", tm);
  CU_ASSERT_PTR_EQUAL(spr_evaluator_for(&c), &spr_eval_image_model); /* its error comes later */
  char cwd[512];
  CU_ASSERT_FATAL(getcwd(cwd, sizeof cwd) != NULL);
  const char *sl = tm[0] == '/' ? "" : "/";
  /* a missing model is an error of the point, naming the file */
  snprintf(text, sizeof text,
           "[workload]\nsource = model\nmodel = %s%s%s.absent\nwindows = 2\n[sweep]\n"
           "analog.cmp_noise_sigma = 0, 50 nA\nschemes = sprint, dense\n", tm[0] == '/' ? "" : cwd,
           sl, tm);
  spr_sweep *sw = NULL;
  /* the model is read when the points are built, before anything runs */
  CU_ASSERT_EQUAL(spr_sweep_load(write_ini(2, text), &sw), SPR_EIO);
  CU_ASSERT_PTR_NULL(sw);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "point 1 of 2 (analog.cmp_noise_sigma = 0)");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "sweep-lm-");
  SPR_ASSERT_CONTAINS(spr_errmsg(), ".h5.absent: cannot open the model");
  /* the text evaluator */
  snprintf(text, sizeof text,
           "[workload]\nsource = model\nmodel = %s%s%s\nreference_model = %s%s%s\nwindows = 3\n"
           "first_window = 1\n[threshold]\nmode = keep_rate\nbits = 7\n[sweep]\n"
           "threshold.keep_rate + baselines.topk_fraction = 0.35, 0.85\n"
           "analog.cmp_noise_sigma = 0, 300 nA\nschemes = sprint, dense, topk\n",
           tm[0] == '/' ? "" : cwd, sl, tm, tr[0] == '/' ? "" : cwd, sl, tr);
  spr_sweep *a = NULL, *b = NULL;
  if (spr_sweep_load(write_ini(2, text), &a)) fprintf(stderr, "\n  %s\n", spr_errmsg());
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_EQUAL_FATAL(spr_sweep_load(write_ini(2, text), &b), 0);
  CU_ASSERT_PTR_EQUAL(spr_sweep_evaluator(a), &spr_eval_text_model);
  const int P = spr_sweep_npoints(a);
  CU_ASSERT_EQUAL_FATAL(P, 4);
  eval_both_ways(a, b);
  for (int p = 0; p < P; p++) {
    spr_config pc;
    spr_model_eval_result r;
    CU_ASSERT_EQUAL_FATAL(spr_sweep_point_config(a, p, &pc), 0);
    CU_ASSERT_EQUAL_FATAL(spr_model_eval(&pc, 2, NULL, NULL, &r), 0);
    CU_ASSERT_EQUAL_FATAL(r.n_items, 3);
    const double bits = 3.0 * 24 * log(2.0);
    double nref = 0, nexact = 0;
    for (int i = 0; i < 3; i++) {
      nref += r.nats[SPR_MEVAL_REFERENCE][i];
      nexact += r.nats[SPR_MEVAL_EXACT][i];
    }
    for (int s = 0; s < SPR_N_SCHEMES; s++) {
      const spr_eval_row *w = spr_sweep_row(a, p, s);
      CU_ASSERT_EQUAL(w->ran, s == SPR_SCHEME_SPRINT || s == SPR_SCHEME_DENSE || s == SPR_SCHEME_TOPK);
      CU_ASSERT_EQUAL(w->ran, r.scheme[s].ran);
      if (!w->ran) continue;
      double nats = 0;
      long long bytes = 0;
      for (int i = 0; i < 3; i++) {
        nats += r.nats[s][i];
        bytes += r.bytes_fetched[s][i];
      }
      CU_ASSERT_DOUBLE_EQUAL(w->acc[0], nats / bits, 1e-12);
      CU_ASSERT_DOUBLE_EQUAL(w->acc[1], nexact / bits, 1e-12);
      CU_ASSERT_DOUBLE_EQUAL(w->acc[2], nref / bits, 1e-12);
      CU_ASSERT_DOUBLE_EQUAL(w->acc[3], 100 * (nats - nref) / nref, 1e-9);
      CU_ASSERT_EQUAL(w->energy_J, r.scheme[s].energy_J);
      CU_ASSERT_EQUAL(w->cycles, r.scheme[s].cycles);
      CU_ASSERT_EQUAL(w->keep_rate, r.scheme[s].keep_rate);
      CU_ASSERT_EQUAL(w->bytes_fetched, bytes);
      CU_ASSERT(isfinite(w->energy_J) && w->energy_J > 0);
    }
    spr_model_eval_result_free(&r);
  }
  /* the keep-rate target moves SPRINT and top-k, noise moves SPRINT only */
  CU_ASSERT(spr_sweep_row(a, 0, SPR_SCHEME_SPRINT)->keep_rate <
            spr_sweep_row(a, 2, SPR_SCHEME_SPRINT)->keep_rate - 0.2);
  CU_ASSERT(spr_sweep_row(a, 0, SPR_SCHEME_TOPK)->keep_rate <
            spr_sweep_row(a, 2, SPR_SCHEME_TOPK)->keep_rate - 0.2);
  CU_ASSERT_NOT_EQUAL(spr_sweep_row(a, 0, SPR_SCHEME_SPRINT)->energy_J, spr_sweep_row(a, 1, SPR_SCHEME_SPRINT)->energy_J);
  CU_ASSERT_EQUAL(spr_sweep_row(a, 0, SPR_SCHEME_DENSE)->energy_J, spr_sweep_row(a, 3, SPR_SCHEME_DENSE)->energy_J);
  CU_ASSERT_EQUAL(spr_sweep_row(a, 0, SPR_SCHEME_TOPK)->energy_J, spr_sweep_row(a, 1, SPR_SCHEME_TOPK)->energy_J);
  spr_sweep_free(a);
  spr_sweep_free(b);
  unlink(tm);
  unlink(tr);

  /* the image evaluator on the committed ViT and the Fashion-MNIST test split */
  char model[1024];
  const char *top = getenv("top_srcdir");
  snprintf(model, sizeof model, "%s/models/vit-fmnist.h5", top ? top : ".");
  /* absolute: a relative name in a configuration file is taken from the
   * file's folder */
  if (model[0] != '/') {
    char rel[480];
    snprintf(rel, sizeof rel, "%.479s", model);
    snprintf(model, sizeof model, "%s/%s", cwd, rel);
  }
  if (access(model, R_OK) || access("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", R_OK)) {
    fprintf(stderr, "\n  SKIP: the ViT model or the Fashion-MNIST test split is absent\n");
    return;
  }
  snprintf(text, sizeof text,
           "[workload]\nsource = model\nmodel = %s\nimages = 5\nfirst_image = 4242\n"
           "[threshold]\nmode = keep_rate\nbits = 7\n[sweep]\n"
           "threshold.keep_rate + baselines.topk_fraction = 0.35, 0.85\n"
           "analog.cmp_noise_sigma = 0, 300 nA\nschemes = sprint, dense, topk\n", model);
  CU_ASSERT_EQUAL_FATAL(spr_sweep_load(write_ini(2, text), &a), 0);
  CU_ASSERT_EQUAL_FATAL(spr_sweep_load(write_ini(2, text), &b), 0);
  CU_ASSERT_PTR_EQUAL(spr_sweep_evaluator(a), &spr_eval_image_model);
  eval_both_ways(a, b);
  for (int p = 0; p < P; p++) {
    spr_config pc;
    spr_model_eval_result r;
    CU_ASSERT_EQUAL_FATAL(spr_sweep_point_config(a, p, &pc), 0);
    CU_ASSERT_EQUAL_FATAL(spr_model_eval(&pc, 2, NULL, NULL, &r), 0);
    CU_ASSERT_EQUAL_FATAL(r.n_items, 5);
    int ok_exact = 0, ok_ref = 0;
    for (int i = 0; i < 5; i++) {
      ok_exact += r.pred[SPR_MEVAL_EXACT][i] == r.labels[i];
      ok_ref += r.pred[SPR_MEVAL_REFERENCE][i] == r.labels[i];
    }
    for (int s = 0; s < SPR_N_SCHEMES; s++) {
      const spr_eval_row *w = spr_sweep_row(a, p, s);
      CU_ASSERT_EQUAL(w->ran, r.scheme[s].ran);
      if (!w->ran) continue;
      int ok = 0, agree = 0;
      long long bytes = 0;
      for (int i = 0; i < 5; i++) {
        ok += r.pred[s][i] == r.labels[i];
        agree += r.pred[s][i] == r.pred[SPR_MEVAL_EXACT][i];
        bytes += r.bytes_fetched[s][i];
      }
      CU_ASSERT_EQUAL(w->acc[0], ok / 5.0);
      CU_ASSERT_EQUAL(w->acc[1], agree / 5.0);
      CU_ASSERT_EQUAL(w->acc[2], ok_exact / 5.0);
      CU_ASSERT_EQUAL(w->acc[3], ok_ref / 5.0);
      CU_ASSERT_EQUAL(w->acc[4], 100.0 * (ok_ref - ok) / 5.0);
      CU_ASSERT_EQUAL(w->energy_J, r.scheme[s].energy_J);
      CU_ASSERT_EQUAL(w->keep_rate, r.scheme[s].keep_rate);
      CU_ASSERT_EQUAL(w->bytes_fetched, bytes);
    }
    spr_model_eval_result_free(&r);
  }
  spr_sweep_free(a);
  spr_sweep_free(b);
}

/* The points run at once are checked together against a memory limit. */
static void test_memory_together(void) {
  spr_sweep *sw = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_sweep_load(write_ini(3, "[workload]\nlayers = 1\nheads = 4\n"
                                                    "[sweep]\nworkload.seq_len = 256, 1024, 512\n"),
                                       &sw), 0);
  spr_config c;
  double need[3];
  for (int p = 0; p < 3; p++) {
    CU_ASSERT_EQUAL_FATAL(spr_sweep_point_config(sw, p, &c), 0);
    need[p] = spr_run_mem_bytes(&c, 1);
  }
  CU_ASSERT(need[1] > need[2] && need[2] > need[0]);
  /* the two largest points together exceed 80% of the limit, one fits */
  const double limit = (need[1] + need[2]) / 0.8 * 0.99;
  CU_ASSERT_EQUAL(spr_sweep_check_memory(sw, 1, limit), 0);
  CU_ASSERT_EQUAL(spr_sweep_check_memory(sw, 2, limit), SPR_ENOMEM);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "2 points at once need about");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "point 2 (workload.seq_len = 1024)");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "at most 1 at once fit: --threads 1");
  /* more threads than points: all points, which fit when the sum does */
  CU_ASSERT_EQUAL(spr_sweep_check_memory(sw, 8, (need[0] + need[1] + need[2]) / 0.8 * 1.01), 0);
  CU_ASSERT_EQUAL(spr_sweep_check_memory(sw, 8, (need[0] + need[1] + need[2]) / 0.8 * 0.99), SPR_ENOMEM);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "3 points at once");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "at most 2 at once fit: --threads 2");
  /* a point too large alone is named before anything runs */
  CU_ASSERT_EQUAL(spr_sweep_check_memory(sw, 1, need[1] / 0.8 * 0.99), SPR_ENOMEM);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "point 2 of 3 (workload.seq_len = 1024) needs about");
  /* the machine's own limit: these points fit */
  CU_ASSERT_EQUAL(spr_sweep_check_memory(sw, 2, 0), 0);
  spr_sweep_free(sw);
}

/* A model sweep's points are checked together as well: each point counts
 * its model, its reference and one thread's scratch under the point's
 * configuration (spr_model_eval_mem_bytes of each model, composed here). */
static void test_memory_models(void) {
  char tm[512], tr[512], text[4096], cwd[512];
  spr_test_path(tm, sizeof tm, "mem-lm", ".h5");
  spr_test_path(tr, sizeof tr, "mem-lm-ref", ".h5");
  write_model(tm, 1, OK, 2385);
  write_model(tr, 1, NO_THETA, 2386);
  CU_ASSERT_FATAL(getcwd(cwd, sizeof cwd) != NULL);
  const char *sl = tm[0] == '/' ? "" : "/";
  snprintf(text, sizeof text,
           "[workload]\nsource = model\nmodel = %s%s%s\nreference_model = %s%s%s\nwindows = 1\n"
           "[threshold]\nmode = keep_rate\n[sweep]\nthreshold.keep_rate = 0.2, 0.4, 0.6\n"
           "schemes = sprint, dense\n",
           tm[0] == '/' ? "" : cwd, sl, tm, tr[0] == '/' ? "" : cwd, sl, tr);
  spr_sweep *sw = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_sweep_load(write_ini(3, text), &sw), 0);
  spr_model m, ref;
  CU_ASSERT_EQUAL_FATAL(spr_model_load(tm, &m), 0);
  CU_ASSERT_EQUAL_FATAL(spr_model_load(tr, &ref), 0);
  spr_config c, mc, rcfg, rc_cfg;
  CU_ASSERT_EQUAL_FATAL(spr_sweep_point_config(sw, 0, &c), 0);
  CU_ASSERT_EQUAL_FATAL(spr_model_config(&c, &m, tm, &mc), 0);
  rcfg = c;
  rcfg.thr.mode = SPR_THR_KEEP_RATE;
  CU_ASSERT_EQUAL_FATAL(spr_model_config(&rcfg, &ref, tr, &rc_cfg), 0);
  const double one = spr_model_eval_mem_bytes(&mc, &m, 1) + spr_model_eval_mem_bytes(&rc_cfg, &ref, 1);
  /* at least both models' weights and one head's N x N scores */
  CU_ASSERT(one > spr_model_bytes(&m) + spr_model_bytes(&ref) + 4.0 * m.tokens * m.tokens);
  spr_model_store *st = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_model_store_new(&st), 0);
  double got = 0;
  CU_ASSERT_EQUAL(spr_model_store_need_bytes(st, &c, &got), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "were not read into the store");
  for (int p = 0; p < 3; p++) {
    CU_ASSERT_EQUAL(spr_sweep_point_config(sw, p, &c), 0);
    CU_ASSERT_EQUAL(spr_model_store_add(st, &c), 0);
    CU_ASSERT_EQUAL(spr_model_store_need_bytes(st, &c, &got), 0);
    CU_ASSERT_DOUBLE_EQUAL(got, one, 1e-9 * one);
  }
  /* a reference that cannot be read is named */
  spr_config bad = c;
  snprintf(bad.wl.reference_model, sizeof bad.wl.reference_model, "%s.absent", tr);
  CU_ASSERT_NOT_EQUAL(spr_model_store_add(st, &bad), 0);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "the reference model of");
  SPR_ASSERT_CONTAINS(spr_errmsg(), ".absent");
  spr_model_eval_result r1, r2;
  CU_ASSERT_EQUAL_FATAL(spr_model_eval(&c, 1, NULL, NULL, &r1), 0);
  /* three points at once: 3 x one */
  CU_ASSERT_EQUAL(spr_sweep_check_memory(sw, 3, 3 * one / 0.8 * 1.01), 0);
  CU_ASSERT_EQUAL(spr_sweep_check_memory(sw, 3, 3 * one / 0.8 * 0.99), SPR_ENOMEM);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "3 points at once need about");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "at most 2 at once fit: --threads 2");
  CU_ASSERT_EQUAL(spr_sweep_check_memory(sw, 1, one / 0.8 * 0.99), SPR_ENOMEM);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "needs about");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "a smaller model");
  /* the files read once: with them gone, the store and the sweep (whose
   * check read them) still evaluate, equal to a read of the files; a
   * plain evaluation now fails */
  remove(tm);
  remove(tr);
  CU_ASSERT_NOT_EQUAL(spr_model_eval(&c, 1, NULL, NULL, &r2), 0);
  CU_ASSERT_EQUAL_FATAL(spr_model_eval_from(st, &c, 1, NULL, NULL, &r2), 0);
  for (int s2 = 0; s2 < SPR_MEVAL_N_SCHEMES; s2++) {
    CU_ASSERT_EQUAL(r1.scheme[s2].ran, r2.scheme[s2].ran);
    if (r1.scheme[s2].ran) {
      CU_ASSERT_EQUAL(r1.scheme[s2].metric, r2.scheme[s2].metric);
      CU_ASSERT_EQUAL(memcmp(&r1.scheme[s2].energy_J, &r2.scheme[s2].energy_J, sizeof(double)), 0);
    }
  }
  spr_model_eval_result_free(&r1);
  spr_model_eval_result_free(&r2);
  if (spr_sweep_eval_point(sw, 2, NULL, NULL)) {
    fprintf(stderr, "\n  %s\n", spr_errmsg());
    CU_FAIL("the sweep point from its store");
  }
  CU_ASSERT_PTR_NOT_NULL(spr_sweep_row(sw, 2, SPR_SCHEME_SPRINT));
  spr_model_store_free(st);
  spr_model_free(&m);
  spr_model_free(&ref);
  spr_sweep_free(sw);
}

/* FNV-1a 64, written here from its definition (offset basis
 * 0xcbf29ce484222325, prime 0x100000001b3), checked on published values. */
static uint64_t fnv(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}

/* Little-endian bytes of a double's bits, by hand. */
static void le_bits(double x, unsigned char out[8]) {
  union {
    double d;
    uint64_t u;
  } v = {x};
  for (int i = 0; i < 8; i++) out[i] = (unsigned char)(v.u >> (8 * i) & 0xff);
}

/* A point's rows as bytes and back, bit for bit; the configuration hash;
 * the files the points name. */
static void test_pack_hash_inputs(void) {
  CU_ASSERT_EQUAL(fnv(""), 0xcbf29ce484222325ULL);
  CU_ASSERT_EQUAL(fnv("a"), 0xaf63dc4c8601ec8cULL);
  CU_ASSERT_EQUAL(fnv("foobar"), 0x85944171f73967e8ULL);
  const char *extra = "[sweep]\nthreshold.keep_rate = 0.12, 0.31\nanalog.cmp_noise_sigma = 0, 2.385 uA\n"
                      "schemes = sprint, dense, topk\n";
  spr_sweep *a = load_ok(extra), *b = load_ok(extra);
  CU_ASSERT_FATAL(a && b);
  const int P = spr_sweep_npoints(a);
  CU_ASSERT_EQUAL(SPR_SWEEP_POINT_BYTES, SPR_N_SCHEMES * (4 + 8 * (SPR_EVAL_MAX_ACC + 4)));
  unsigned char buf[SPR_SWEEP_POINT_BYTES], le[8];
  /* hashes: FNV-1a 64 of the resolved configuration's INI text */
  spr_config c;
  for (int p = 0; p < P; p++) {
    CU_ASSERT_EQUAL_FATAL(spr_sweep_point_config(a, p, &c), 0);
    char *ini = spr_config_to_ini(&c);
    CU_ASSERT_EQUAL(spr_sweep_point_hash(a, p), fnv(ini));
    CU_ASSERT_EQUAL(spr_sweep_point_hash(b, p), fnv(ini));
    free(ini);
    for (int q = 0; q < p; q++) CU_ASSERT_NOT_EQUAL(spr_sweep_point_hash(a, p), spr_sweep_point_hash(a, q));
  }
  CU_ASSERT_EQUAL(spr_sweep_point_hash(a, P), 0);
  /* not evaluated: nothing to pack */
  CU_ASSERT_EQUAL(spr_sweep_point_pack(a, 1, buf), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "point 2 of 4 is not evaluated");
  CU_ASSERT_EQUAL(spr_sweep_point_done(a, 1), 0);
  for (int p = 0; p < P; p++) {
    CU_ASSERT_EQUAL_FATAL(spr_sweep_eval_point(a, p, NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(spr_sweep_point_pack(a, p, buf), 0);
    /* the layout, by hand: scheme s at s x 100 bytes: ran, 3 zero bytes,
     * 8 metrics, energy, cycles, keep rate, bytes fetched */
    const int stride = 4 + 8 * (SPR_EVAL_MAX_ACC + 4);
    const spr_eval_row *r = spr_sweep_row(a, p, SPR_SCHEME_TOPK);
    const unsigned char *t = buf + SPR_SCHEME_TOPK * stride;
    CU_ASSERT(t[0] == 1 && t[1] == 0 && t[2] == 0 && t[3] == 0);
    le_bits(r->acc[0], le);
    CU_ASSERT_EQUAL(memcmp(t + 4, le, 8), 0);
    le_bits(r->energy_J, le);
    CU_ASSERT_EQUAL(memcmp(t + 4 + 8 * SPR_EVAL_MAX_ACC, le, 8), 0);
    int64_t by = 0;
    for (int i = 0; i < 8; i++) by |= (int64_t)t[stride - 8 + i] << (8 * i);
    CU_ASSERT_EQUAL(by, r->bytes_fetched);
    CU_ASSERT(r->bytes_fetched > 0);
    CU_ASSERT_EQUAL(buf[SPR_SCHEME_ORACLE * stride], 0); /* not reported: did not run */
  }
  /* into the other sweep: the same rows, bit for bit */
  for (int p = 0; p < P; p++) {
    CU_ASSERT_EQUAL_FATAL(spr_sweep_point_pack(a, p, buf), 0);
    CU_ASSERT_EQUAL(spr_sweep_point_unpack(b, p, buf, sizeof buf), 0);
    CU_ASSERT(spr_sweep_point_done(b, p));
    for (int s = 0; s < SPR_N_SCHEMES; s++)
      CU_ASSERT_EQUAL(memcmp(spr_sweep_row(a, p, s), spr_sweep_row(b, p, s), sizeof(spr_eval_row)), 0);
  }
  /* bad packs change nothing */
  CU_ASSERT_EQUAL_FATAL(spr_sweep_point_pack(a, 0, buf), 0);
  CU_ASSERT_EQUAL(spr_sweep_point_unpack(b, 0, buf, sizeof buf - 1), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "expected");
  CU_ASSERT_EQUAL(spr_sweep_point_unpack(b, P, buf, sizeof buf), SPR_EINVAL);
  unsigned char bad[SPR_SWEEP_POINT_BYTES];
  memcpy(bad, buf, sizeof bad);
  bad[SPR_SCHEME_DENSE * (4 + 8 * (SPR_EVAL_MAX_ACC + 4))] = 2;
  CU_ASSERT_EQUAL(spr_sweep_point_unpack(b, 0, bad, sizeof bad), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "scheme 'dense': bad 'ran' flag");
  memcpy(bad, buf, sizeof bad);
  bad[SPR_SCHEME_TOPK * (4 + 8 * (SPR_EVAL_MAX_ACC + 4))] = 0;
  CU_ASSERT_EQUAL(spr_sweep_point_unpack(b, 0, bad, sizeof bad), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "scheme 'topk' is reported but did not run");
  CU_ASSERT_EQUAL(memcmp(spr_sweep_row(a, 0, SPR_SCHEME_TOPK), spr_sweep_row(b, 0, SPR_SCHEME_TOPK),
                         sizeof(spr_eval_row)), 0);
  /* the sweep's text and name */
  CU_ASSERT(strstr(spr_sweep_source(a), "2.385 uA") != NULL);
  char name[512];
  spr_test_path(name, sizeof name, "sweep0", ".ini");
  CU_ASSERT_STRING_EQUAL(spr_sweep_path(a), name);
  CU_ASSERT_EQUAL(spr_sweep_ninputs(a), 0);
  spr_sweep_free(a);
  spr_sweep_free(b);
  /* files named by string keys, once each (a folder or "none" is not) */
  char f1[512], f2[512], cwd[512], text[4096];
  spr_test_path(f1, sizeof f1, "sweep-in1", ".h5");
  spr_test_path(f2, sizeof f2, "sweep-in2", ".h5");
  write_model(f1, 1, OK, 2385);
  write_model(f2, 1, OK, 2386);
  CU_ASSERT_FATAL(getcwd(cwd, sizeof cwd) != NULL);
  const char *d = f1[0] == '/' ? "" : cwd, *sl = f1[0] == '/' ? "" : "/";
  snprintf(text, sizeof text,
           "[workload]\nsource = model\nreference_model = none\nwindows = 1\n[sweep]\n"
           "workload.model = %s%s%s, %s%s%s, %s%s%s\nschemes = sprint, dense\n",
           d, sl, f1, d, sl, f2, d, sl, f1);
  spr_sweep *m = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_sweep_load(write_ini(2, text), &m), 0);
  CU_ASSERT_EQUAL(spr_sweep_ninputs(m), 2);
  CU_ASSERT_STRING_EQUAL(spr_sweep_input_key(m, 0), "workload.model");
  CU_ASSERT(strstr(spr_sweep_input_path(m, 0), "sweep-in1-") != NULL);
  CU_ASSERT(strstr(spr_sweep_input_path(m, 1), "sweep-in2-") != NULL);
  CU_ASSERT_PTR_NULL(spr_sweep_input_key(m, 2));
  /* an input's identity: its size and the FNV-1a 64 of its bytes */
  long long size = 0;
  uint64_t h = 0;
  FILE *fi = fopen(f2, "w");
  CU_ASSERT_FATAL(fi != NULL);
  fputs("2.385 V", fi);
  fclose(fi);
  CU_ASSERT_EQUAL(spr_sweep_input_id(f2, &size, &h), 0);
  CU_ASSERT(size == 7 && h == fnv("2.385 V"));
  CU_ASSERT_EQUAL(spr_sweep_input_id("/nonexistent/x.h5", &size, &h), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "/nonexistent/x.h5: cannot read");
  write_model(f2, 1, OK, 2386);
  CU_ASSERT_PTR_NULL(spr_sweep_input_path(m, -1));
  /* the same model at points 0 and 2: the same configuration, the same hash */
  CU_ASSERT_EQUAL(spr_sweep_point_hash(m, 0), spr_sweep_point_hash(m, 2));
  CU_ASSERT_NOT_EQUAL(spr_sweep_point_hash(m, 0), spr_sweep_point_hash(m, 1));
  spr_sweep_free(m);
  /* a named reference model is an input too; an unused key is not (the
   * default workload.model of a synthetic sweep) */
  snprintf(text, sizeof text,
           "[workload]\nsource = model\nmodel = %s%s%s\nreference_model = %s%s%s\nwindows = 1\n"
           "[sweep]\nanalog.cmp_noise_sigma = 0, 1 nA\nschemes = sprint, dense\n", d, sl, f1, d, sl, f2);
  CU_ASSERT_EQUAL_FATAL(spr_sweep_load(write_ini(2, text), &m), 0);
  CU_ASSERT_EQUAL(spr_sweep_ninputs(m), 2);
  CU_ASSERT_STRING_EQUAL(spr_sweep_input_key(m, 1), "workload.reference_model");
  CU_ASSERT(strstr(spr_sweep_input_path(m, 1), "sweep-in2-") != NULL);
  spr_sweep_free(m);
  snprintf(text, sizeof text, "%s[workload]\nmodel = %s%s%s\n[sweep]\nanalog.cmp_noise_sigma = 0, 1 nA\n",
           SMALL, d, sl, f1);
  CU_ASSERT_EQUAL_FATAL(spr_sweep_load(write_ini(2, text), &m), 0);
  CU_ASSERT_EQUAL(spr_sweep_ninputs(m), 0);
  spr_sweep_free(m);
  unlink(f1);
  unlink(f2);
}

/* A sweep's device model (run.device_model) is read once, by
 * spr_sweep_check_memory, before any point runs: its points then read no
 * file (each read forks an HDF5 reader, which must not happen beside a
 * running point under AddressSanitizer: core/spr_h5r.h).  Checked by
 * removing the file after the check: the points still get its values.
 * Without the check each point reads the file itself; a missing file is
 * the check's error, naming the point and the key. */
static void test_device_model_once(void) {
  char dev[512], text[2048];
  spr_test_path(dev, sizeof dev, "sweepdev", ".h5");
  spr_device d;
  spr_device_init(&d);
  spr_device_param p;
  spr_test_ir_alpha_param(&p);
  CU_ASSERT_EQUAL_FATAL(spr_device_add(&d, &p), 0);
  snprintf(d.ngspice_version, sizeof d.ngspice_version, "test");
  snprintf(d.sprintsim_version, sizeof d.sprintsim_version, "test");
  if (spr_device_write(dev, &d)) fprintf(stderr, "\n  %s\n", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(access(dev, R_OK), 0);
  spr_device_free(&d);
  snprintf(text, sizeof text,
           "%s[run]\ndevice_model = %s\n[sweep]\nanalog.thermal_excess = 1, 3\nschemes = sprint\n",
           SMALL, strrchr(dev, '/') ? strrchr(dev, '/') + 1 : dev); /* beside the INI */
  spr_sweep *a = NULL, *b = NULL;
  if (spr_sweep_load(write_ini(2, text), &a)) fprintf(stderr, "\n  %s\n", spr_errmsg());
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_EQUAL_FATAL(spr_sweep_load(write_ini(2, text), &b), 0);
  CU_ASSERT_EQUAL_FATAL(spr_sweep_check_memory(a, 2, 0), 0);
  CU_ASSERT_EQUAL(unlink(dev), 0);
  spr_config c;
  for (int q = 0; q < 2; q++) {
    const int prc = spr_sweep_point_config(a, q, &c);
    if (prc) fprintf(stderr, "\n  %s\n", spr_errmsg());
    CU_ASSERT_EQUAL(prc, 0);
    CU_ASSERT_DOUBLE_EQUAL(c.xbar.ir_alpha_wl, 0.9385, 0);
    CU_ASSERT_DOUBLE_EQUAL(c.an.thermal_excess, q ? 3.0 : 1.0, 0);
    CU_ASSERT_EQUAL(spr_sweep_eval_point(a, q, NULL, NULL), 0);
  }
  /* the sweep that did not check reads the file at each point: gone */
  CU_ASSERT_NOT_EQUAL(spr_sweep_eval_point(b, 0, NULL, NULL), 0);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "run.device_model");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "point 1 of 2");
  /* and the check reports it, naming the point and the key */
  CU_ASSERT_NOT_EQUAL(spr_sweep_check_memory(b, 2, 0), 0);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "run.device_model");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "point 1 of 2");
  SPR_ASSERT_CONTAINS(spr_errmsg(), strrchr(dev, '/') ? strrchr(dev, '/') + 1 : dev);
  spr_sweep_free(a);
  spr_sweep_free(b);
}

int main(void) {
  static const CU_TestInfo tests[] = {
      {"grid order and point values", test_grid_order},
      {"point config equals a plain file", test_point_config_equals_plain_file},
      {"'|' lists, continuations, default schemes", test_lists_and_defaults},
      {"linked keys", test_linked_keys},
      {"error paths", test_errors},
      {"max_points", test_max_points},
      {"evaluation independent of threads and order", test_eval_independent_of_threads},
      {"outputs", test_outputs},
      {"outputs on a full disk (fault hook)", test_outputs_full_disk},
      {"model evaluators", test_model_evaluators},
      {"memory of the points run at once", test_memory_together},
      {"memory of model points run at once", test_memory_models},
      {"rows as bytes, configuration hashes, input files", test_pack_hash_inputs},
      {"a device model read once, before the points", test_device_model_once},
      {NULL, NULL},
  };
  int rc = spr_test_run("sweep", tests);
  for (int i = 0; i < 4; i++) {
    char p[512], tag[32];
    snprintf(tag, sizeof tag, "sweep%d", i);
    spr_test_path(p, sizeof p, tag, ".ini");
    unlink(p);
  }
  return rc;
}
