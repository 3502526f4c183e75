/* test_config.c - configuration table, INI parser, validation and output
 * (core/spr_config.c).  Expected values are literal numbers from the table
 * and the presets (docs/workloads.md), not values read back from the code
 * under test.  Every error path is provoked and its message is checked for
 * the file, the line, the key and the value.  Scratch INI files go to
 * $top_builddir/tests (spr_test_path) and are removed. */
#include "config.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_params.h"
#include "spr_test.h"

#include <sys/stat.h>

#include <ctype.h>
#include <unistd.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>

/* --- helpers -------------------------------------------------------------- */

static int n_files; /* distinct names per test program run */

/* Write `text` to a fresh scratch file; its name goes to path. */
static void write_file(char *path, size_t n, const char *text) {
  char tag[32];
  snprintf(tag, sizeof tag, "config-%d", n_files++);
  spr_test_path(path, n, tag, ".ini");
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  CU_ASSERT_EQUAL(fclose(f), 0);
}

/* Load `text` over *c (defaults when c is fresh); the scratch file's name is
 * left in path (the file itself is removed). */
static int load_text(spr_config *c, const char *text, char *path, size_t n) {
  write_file(path, n, text);
  spr_error_clear();
  int rc = spr_config_load(c, path);
  remove(path);
  return rc;
}

/* Load `text` over the defaults and expect code `want`; the message must
 * contain "<path>:<line>: " (or "<path>: " when line is 0) and every one of
 * the NULL-terminated needles. */
static void expect_error(const char *text, int want, int line, ...) {
  spr_config c;
  spr_config_default(&c);
  char path[512], pre[600];
  int rc = load_text(&c, text, path, sizeof path);
  if (rc != want) fprintf(stderr, "\n  rc %d (want %d) for:\n%s  msg: %s\n", rc, want, text, spr_errmsg());
  CU_ASSERT_EQUAL(rc, want);
  if (line > 0) snprintf(pre, sizeof pre, "%s:%d: ", path, line);
  else snprintf(pre, sizeof pre, "%s: ", path);
  SPR_ASSERT_CONTAINS(spr_errmsg(), pre);
  /* the message starts with the position, followed directly by words */
  size_t pl = strlen(pre);
  CU_ASSERT(strncmp(spr_errmsg(), pre, pl) == 0 && strlen(spr_errmsg()) > pl &&
            (islower((unsigned char)spr_errmsg()[pl]) || !strncmp(spr_errmsg() + pl, "key", 3)));
  va_list ap;
  va_start(ap, line);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL;) SPR_ASSERT_CONTAINS(spr_errmsg(), s);
  va_end(ap);
}

/* spr_config_set on the defaults must fail with SPR_ECONFIG; the message
 * starts with the origin and contains the needles. */
static void expect_set_error(const char *sec, const char *key, const char *value,
                             const char *origin, ...) {
  spr_config c;
  spr_config_default(&c);
  spr_error_clear();
  int rc = spr_config_set(&c, sec, key, value, origin);
  if (rc != SPR_ECONFIG) fprintf(stderr, "\n  %s.%s = '%s' accepted\n", sec, key, value);
  CU_ASSERT_EQUAL(rc, SPR_ECONFIG);
  char pre[256];
  snprintf(pre, sizeof pre, "%s: ", origin);
  CU_ASSERT_EQUAL(strncmp(spr_errmsg(), pre, strlen(pre)), 0);
  va_list ap;
  va_start(ap, origin);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL;) SPR_ASSERT_CONTAINS(spr_errmsg(), s);
  va_end(ap);
}

static int key_index(const char *sec, const char *name) {
  for (int i = 0; i < spr_config_nkeys(); i++) {
    const spr_config_key_info *k = spr_config_key(i);
    if (!strcmp(k->section, sec) && !strcmp(k->name, name)) return i;
  }
  return -1;
}

static int close_rel(double a, double b, double rel) {
  return fabs(a - b) <= rel * fabs(b);
}

/* Every key of a and b formats identically; names the keys that do not. */
static int same_config(const spr_config *a, const spr_config *b) {
  int same = 1;
  for (int i = 0; i < spr_config_nkeys(); i++) {
    char x[65536], y[65536];
    spr_config_format(a, i, x, sizeof x);
    spr_config_format(b, i, y, sizeof y);
    if (strcmp(x, y)) {
      const spr_config_key_info *k = spr_config_key(i);
      fprintf(stderr, "\n  key %s.%s: '%.300s' != '%.300s'", k->section, k->name, x, y);
      same = 0;
    }
  }
  return same;
}

/* to_ini, write, load over the defaults, compare every key with c. */
static void round_trip(const spr_config *c) {
  char *ini = spr_config_to_ini(c);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ini);
  spr_config d;
  spr_config_default(&d);
  char path[512];
  int rc = load_text(&d, ini, path, sizeof path);
  if (rc) fprintf(stderr, "\n  reload failed: %s", spr_errmsg());
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT_TRUE(same_config(c, &d));
  CU_ASSERT_EQUAL(d.seed, c->seed);
  CU_ASSERT_EQUAL(d.thr.n_values, c->thr.n_values);
  for (int j = 0; j < c->thr.n_values && j < d.thr.n_values; j++)
    CU_ASSERT_EQUAL(memcmp(&d.thr.values[j], &c->thr.values[j], sizeof(double)), 0);
  free(ini);
}

/* --- the table and the defaults ------------------------------------------- */

static void test_key_table(void) {
  int n = spr_config_nkeys();
  CU_ASSERT(n >= 40); /* 42 keys in the table today */
  CU_ASSERT_PTR_NULL(spr_config_key(-1));
  CU_ASSERT_PTR_NULL(spr_config_key(n));
  CU_ASSERT_PTR_NOT_NULL(spr_config_key(0));
  CU_ASSERT_PTR_NOT_NULL(spr_config_key(n - 1));
  for (int i = 0; i < n; i++) {
    const spr_config_key_info *k = spr_config_key(i);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT(k->section && k->section[0] && k->name && k->name[0] && k->doc && k->doc[0]);
    CU_ASSERT_PTR_NOT_NULL(k->unit);
    CU_ASSERT_EQUAL(k->type == SPR_KEY_ENUM, k->choices != NULL);
    for (int j = 0; j < i; j++) { /* (section, name) unique */
      const spr_config_key_info *o = spr_config_key(j);
      CU_ASSERT(strcmp(o->section, k->section) || strcmp(o->name, k->name));
    }
  }
  int i = key_index("crossbar", "g_max");
  CU_ASSERT_FATAL(i >= 0);
  CU_ASSERT_STRING_EQUAL(spr_config_key(i)->unit, "S");
  CU_ASSERT_EQUAL(spr_config_key(i)->type, SPR_KEY_DOUBLE);
  CU_ASSERT_STRING_EQUAL(spr_config_key(key_index("crossbar", "r_wl"))->unit, "ohm");
  CU_ASSERT_STRING_EQUAL(spr_config_key(key_index("analog", "bandwidth"))->unit, "Hz");
  CU_ASSERT_STRING_EQUAL(spr_config_key(key_index("crossbar", "prog_sigma"))->unit, "");
  CU_ASSERT_EQUAL(spr_config_key(key_index("run", "seed"))->type, SPR_KEY_U64);
  CU_ASSERT_EQUAL(spr_config_key(key_index("threshold", "values"))->type, SPR_KEY_LIST);
  CU_ASSERT_STRING_EQUAL(spr_config_key(key_index("run", "trace"))->choices, "summary|masks|full");
  CU_ASSERT_STRING_EQUAL(spr_config_key(key_index("workload", "preset"))->choices, "bert-base|vit-base");
  CU_ASSERT_STRING_EQUAL(spr_config_key(key_index("crossbar", "ir_drop"))->choices, "off|first_order|nodal");
  CU_ASSERT_STRING_EQUAL(spr_config_key(key_index("threshold", "mode"))->choices, "keep_rate|direct|learned|analog_keep_rate");
  CU_ASSERT_STRING_EQUAL(spr_config_key(key_index("workload", "source"))->choices, "synthetic|qkv|model|vit");
  CU_ASSERT_EQUAL(spr_config_key(key_index("workload", "model"))->type, SPR_KEY_STRING);
}

static void test_defaults(void) {
  spr_config c;
  memset(&c, 0xA5, sizeof c); /* garbage: every field must be written */
  spr_config_default(&c);
  CU_ASSERT_EQUAL(c.seed, 1);
  CU_ASSERT_EQUAL(c.trace, SPR_TRACE_SUMMARY);
  CU_ASSERT_EQUAL(c.wl.preset, SPR_PRESET_BERT_BASE);
  CU_ASSERT_EQUAL(c.wl.seq_len, 0); /* "preset's value" until resolved */
  CU_ASSERT_EQUAL(c.wl.n_layers, 0);
  CU_ASSERT_EQUAL(c.xbar.rows, 64);
  CU_ASSERT_EQUAL(c.xbar.cols, 64);
  CU_ASSERT_EQUAL(c.xbar.cell_bits, 4);
  CU_ASSERT_EQUAL(c.xbar.key_bits, 8);
  CU_ASSERT_EQUAL(c.xbar.key_msb_bits, 4);
  CU_ASSERT_DOUBLE_EQUAL(c.xbar.g_min_S, 1e-6, 1e-20);
  CU_ASSERT_DOUBLE_EQUAL(c.xbar.g_max_S, 1e-4, 1e-18);
  CU_ASSERT_EQUAL(c.xbar.variation, 1);
  CU_ASSERT_DOUBLE_EQUAL(c.xbar.prog_sigma, 0.05, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(c.xbar.stuck_on_rate, 0.001, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(c.xbar.drift_t_s, 3600, 1e-9);
  CU_ASSERT_EQUAL(c.xbar.ir_drop, SPR_IR_FIRST_ORDER);
  CU_ASSERT_DOUBLE_EQUAL(c.xbar.r_wl_ohm, 2.5, 1e-15);
  CU_ASSERT_EQUAL(c.an.query_bits, 4);
  CU_ASSERT_DOUBLE_EQUAL(c.an.v_read_V, 0.2, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(c.an.temperature_K, 300, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(c.an.bandwidth_Hz, 1e8, 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(c.an.cmp_offset_sigma_A, 2e-8, 1e-22);
  CU_ASSERT_DOUBLE_EQUAL(c.an.cmp_noise_sigma_A, 1e-8, 1e-22);
  CU_ASSERT_EQUAL(c.thr.mode, SPR_THR_KEEP_RATE);
  CU_ASSERT_DOUBLE_EQUAL(c.thr.keep_rate, 0.15, 1e-15);
  CU_ASSERT_EQUAL(c.thr.per_head, 0);
  CU_ASSERT_EQUAL(c.thr.n_values, 0);
  CU_ASSERT_EQUAL(c.thr.bits, 5);
  CU_ASSERT_DOUBLE_EQUAL(c.thr.range, 0, 0);
}

/* Every default is itself a valid value of its key. */
static void test_defaults_accepted(void) {
  spr_config c, d;
  spr_config_default(&c);
  spr_config_default(&d);
  for (int i = 0; i < spr_config_nkeys(); i++) {
    const spr_config_key_info *k = spr_config_key(i);
    if (k->type == SPR_KEY_LIST) continue; /* empty by default */
    char v[128];
    spr_config_format(&c, i, v, sizeof v);
    int rc = spr_config_set(&d, k->section, k->name, v, "default");
    if (rc) fprintf(stderr, "\n  default %s.%s = %s refused: %s", k->section, k->name, v, spr_errmsg());
    CU_ASSERT_EQUAL(rc, 0);
  }
  CU_ASSERT_TRUE(same_config(&c, &d));
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "defaults"), 0);
}

static void test_resolve_presets(void) {
  spr_config c;
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "test"), 0);
  CU_ASSERT_EQUAL(c.wl.seq_len, 512);
  CU_ASSERT_EQUAL(c.wl.n_layers, 12);
  CU_ASSERT_EQUAL(c.wl.n_heads, 12);
  CU_ASSERT_EQUAL(c.wl.head_dim, 64);

  spr_config_default(&c);
  c.wl.preset = SPR_PRESET_VIT_BASE;
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "test"), 0);
  CU_ASSERT_EQUAL(c.wl.seq_len, 197);
  CU_ASSERT_EQUAL(c.wl.n_layers, 12);
  CU_ASSERT_EQUAL(c.wl.n_heads, 12);
  CU_ASSERT_EQUAL(c.wl.head_dim, 64);

  /* explicit values are kept */
  spr_config_default(&c);
  c.wl.preset = SPR_PRESET_VIT_BASE;
  c.wl.seq_len = 50;
  c.wl.n_heads = 4;
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "test"), 0);
  CU_ASSERT_EQUAL(c.wl.seq_len, 50);
  CU_ASSERT_EQUAL(c.wl.n_layers, 12);
  CU_ASSERT_EQUAL(c.wl.n_heads, 4);

  /* through a file */
  spr_config_default(&c);
  char path[512];
  CU_ASSERT_EQUAL(load_text(&c, "[workload]\npreset = vit-base\nhead_dim = 32\n", path, sizeof path), 0);
  CU_ASSERT_EQUAL(c.wl.preset, SPR_PRESET_VIT_BASE);
  CU_ASSERT_EQUAL(c.wl.seq_len, 197);
  CU_ASSERT_EQUAL(c.wl.head_dim, 32);

  CU_ASSERT_STRING_EQUAL(spr_preset_name(SPR_PRESET_BERT_BASE), "bert-base");
  CU_ASSERT_STRING_EQUAL(spr_preset_name(SPR_PRESET_VIT_BASE), "vit-base");
}

/* --- valid files ---------------------------------------------------------- */

static const char valid_ini[] =
    "; sprintsim test configuration\n"
    "# a hash comment\n"
    "\n"
    "[run]\n"
    "seed = 18446744073709551615\n"
    "trace = full\n"
    "\n"
    "[workload]\n"
    "preset = vit-base\n"
    "layers = 2\n"
    "heads = 3\n"
    "\n"
    "[crossbar]\n"
    "g_max = 100 uS   ; LRS\n"
    "g_min = 1uS\n"
    "r_wl = 2.5 ohm\n"
    "r_bl = 1.25ohm\n"
    "drift_time = 1 ks\n"
    "drift_t0 = 10 ms\n"
    "ir_drop = off\n"
    "variation = no\n"
    "stuck_at = off\n"
    "drift = 0\n"
    "prog_sigma = 0.1\n"
    "cols = 128\n"
    "rows=32\n"
    "\n"
    "[analog]\n"
    "bandwidth = 200 MHz\n"
    "cmp_offset_sigma = 20 nA\n"
    "cmp_noise_sigma = 5e-9 A\n"
    "v_read = 150 mV\n"
    "temperature = 350 K\n"
    "dac_error = yes\n"
    "read_noise = on\n"
    "cmp_offset = true\n"
    "cmp_noise = 1\n"
    "\n"
    "[threshold]\n"
    "mode = direct\n"
    "per_head = false\n"
    "values = 1.5, -2.25\n"
    "bits = 6\n"
    "range = 10 score\n";

static void test_valid_file(void) {
  spr_config c;
  spr_config_default(&c);
  c.xbar.key_bits = 7; /* not in the file: must survive the load */
  char path[512];
  int rc = load_text(&c, valid_ini, path, sizeof path);
  if (rc) fprintf(stderr, "\n  %s", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_EQUAL(c.seed, UINT64_C(18446744073709551615));
  CU_ASSERT_EQUAL(c.trace, SPR_TRACE_FULL);
  CU_ASSERT_EQUAL(c.wl.preset, SPR_PRESET_VIT_BASE);
  CU_ASSERT_EQUAL(c.wl.seq_len, 197);
  CU_ASSERT_EQUAL(c.wl.n_layers, 2);
  CU_ASSERT_EQUAL(c.wl.n_heads, 3);
  CU_ASSERT_EQUAL(c.wl.head_dim, 64);
  CU_ASSERT(close_rel(c.xbar.g_max_S, 1e-4, 1e-12));
  CU_ASSERT(close_rel(c.xbar.g_min_S, 1e-6, 1e-12));
  CU_ASSERT(close_rel(c.xbar.r_wl_ohm, 2.5, 1e-12));
  CU_ASSERT(close_rel(c.xbar.r_bl_ohm, 1.25, 1e-12));
  CU_ASSERT(close_rel(c.xbar.drift_t_s, 1000, 1e-12));
  CU_ASSERT(close_rel(c.xbar.drift_t0_s, 0.01, 1e-12));
  CU_ASSERT_EQUAL(c.xbar.ir_drop, SPR_IR_OFF);
  CU_ASSERT_EQUAL(c.xbar.variation, 0);
  CU_ASSERT_EQUAL(c.xbar.stuck, 0);
  CU_ASSERT_EQUAL(c.xbar.drift, 0);
  CU_ASSERT(close_rel(c.xbar.prog_sigma, 0.1, 1e-15));
  CU_ASSERT_EQUAL(c.xbar.cols, 128);
  CU_ASSERT_EQUAL(c.xbar.rows, 32);
  CU_ASSERT_EQUAL(c.xbar.key_bits, 7);   /* untouched */
  CU_ASSERT_EQUAL(c.xbar.cell_bits, 4);  /* untouched default */
  CU_ASSERT(close_rel(c.an.bandwidth_Hz, 2e8, 1e-12));
  CU_ASSERT(close_rel(c.an.cmp_offset_sigma_A, 2e-8, 1e-12));
  CU_ASSERT(close_rel(c.an.cmp_noise_sigma_A, 5e-9, 1e-12));
  CU_ASSERT(close_rel(c.an.v_read_V, 0.15, 1e-12));
  CU_ASSERT(close_rel(c.an.temperature_K, 350, 1e-15));
  CU_ASSERT_EQUAL(c.an.dac_error, 1);
  CU_ASSERT_EQUAL(c.an.read_noise, 1);
  CU_ASSERT_EQUAL(c.an.cmp_offset, 1);
  CU_ASSERT_EQUAL(c.an.cmp_noise, 1);
  CU_ASSERT_EQUAL(c.thr.mode, SPR_THR_DIRECT);
  CU_ASSERT_EQUAL(c.thr.per_head, 0);
  CU_ASSERT_EQUAL_FATAL(c.thr.n_values, 2);
  CU_ASSERT_EQUAL(c.thr.values[0], 1.5);
  CU_ASSERT_EQUAL(c.thr.values[1], -2.25);
  CU_ASSERT_EQUAL(c.thr.bits, 6);
  CU_ASSERT_EQUAL(c.thr.range, 10);
}

/* Every SI prefix on every unit kind, through spr_config_set. */
static void test_units(void) {
  static const struct {
    const char *sec, *key, *val;
    double want;
  } t[] = {
      {"crossbar", "g_max", "100 uS", 1e-4},   {"crossbar", "g_max", "100uS", 1e-4},
      {"crossbar", "g_max", "0.1 mS", 1e-4},   {"crossbar", "g_max", "1e-4 S", 1e-4},
      {"crossbar", "g_max", "1e-4", 1e-4},     {"crossbar", "g_min", "500 nS", 5e-7},
      {"crossbar", "g_min", "2000 pS", 2e-9},  {"crossbar", "g_min", "5e6 fS", 5e-9},
      {"crossbar", "r_wl", "2.5 ohm", 2.5},    {"crossbar", "r_wl", "2.5ohm", 2.5},
      {"crossbar", "r_wl", "1.5 kohm", 1500},  {"crossbar", "r_bl", "0.5 Mohm", 5e5},
      {"crossbar", "r_bl", "250 mohm", 0.25},  {"crossbar", "drift_time", "1 ks", 1000},
      {"crossbar", "drift_time", "2 Ms", 2e6}, {"crossbar", "drift_time", "1 Gs", 1e9},
      {"crossbar", "drift_t0", "100 us", 1e-4},{"crossbar", "drift_t0", "3 ns", 3e-9},
      {"analog", "bandwidth", "200 MHz", 2e8}, {"analog", "bandwidth", "1 GHz", 1e9},
      {"analog", "bandwidth", "10 kHz", 1e4},  {"analog", "cmp_offset_sigma", "20 nA", 2e-8},
      {"analog", "cmp_noise_sigma", "1.5 uA", 1.5e-6}, {"analog", "v_read", "150 mV", 0.15},
      {"analog", "v_read", "0.3V", 0.3},    {"analog", "temperature", "77 K", 77},
      {"crossbar", "prog_sigma", "0.25", 0.25},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    spr_config c;
    spr_config_default(&c);
    int rc = spr_config_set(&c, t[i].sec, t[i].key, t[i].val, "units");
    if (rc) fprintf(stderr, "\n  %s.%s = '%s': %s", t[i].sec, t[i].key, t[i].val, spr_errmsg());
    CU_ASSERT_EQUAL(rc, 0);
    char v[64];
    spr_config_format(&c, key_index(t[i].sec, t[i].key), v, sizeof v);
    double got = strtod(v, NULL);
    if (!close_rel(got, t[i].want, 1e-12))
      fprintf(stderr, "\n  %s.%s = '%s' gave %s, want %g", t[i].sec, t[i].key, t[i].val, v, t[i].want);
    CU_ASSERT(close_rel(got, t[i].want, 1e-12));
  }
}

static void test_booleans(void) {
  static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
  spr_config c;
  spr_config_default(&c);
  for (int i = 0; i < 4; i++) {
    c.xbar.variation = 0;
    CU_ASSERT_EQUAL(spr_config_set(&c, "crossbar", "variation", yes[i], "t"), 0);
    CU_ASSERT_EQUAL(c.xbar.variation, 1);
    c.an.cmp_noise = 1;
    CU_ASSERT_EQUAL(spr_config_set(&c, "analog", "cmp_noise", no[i], "t"), 0);
    CU_ASSERT_EQUAL(c.an.cmp_noise, 0);
  }
  /* through a file, with the per_head bool */
  char path[512];
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[threshold]\nper_head = yes\n[crossbar]\ndrift = off\n", path, sizeof path), 0);
  CU_ASSERT_EQUAL(c.thr.per_head, 1);
  CU_ASSERT_EQUAL(c.xbar.drift, 0);
}

/* workload.causal: off by default, a boolean like the others, for every
 * source (synthetic, qkv, vit), kept by resolve, in the INI text. */
static void test_causal_key(void) {
  spr_config c;
  memset(&c, 0x5A, sizeof c);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(c.wl.causal, 0);
  char path[512];
  CU_ASSERT_EQUAL(load_text(&c, "[workload]\ncausal = yes\nseq_len = 13\nhead_dim = 5\n", path,
                            sizeof path), 0);
  CU_ASSERT_EQUAL(c.wl.causal, 1);
  CU_ASSERT_EQUAL(c.wl.seq_len, 13);
  char *ini = spr_config_to_ini(&c);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ini);
  SPR_ASSERT_CONTAINS(ini, "\ncausal = true\n");
  free(ini);
  CU_ASSERT_EQUAL(load_text(&c, "[workload]\nsource = qkv\nqkv_file = /d/x.h5\ncausal = on\n", path,
                            sizeof path), 0);
  CU_ASSERT_EQUAL(c.wl.causal, 1);
  CU_ASSERT_EQUAL(load_text(&c, "[workload]\ncausal = off\n", path, sizeof path), 0);
  CU_ASSERT_EQUAL(c.wl.causal, 0);
  expect_error("[workload]\n\ncausal = 2\n", SPR_ECONFIG, 3, "workload.causal", "'2'", NULL);
}

static void test_enums(void) {
  spr_config c;
  spr_config_default(&c);
  static const struct { const char *sec, *key, *val; int want; } t[] = {
      {"run", "trace", "masks", SPR_TRACE_MASKS},        {"run", "trace", "full", SPR_TRACE_FULL},
      {"run", "trace", "summary", SPR_TRACE_SUMMARY},    {"workload", "preset", "vit-base", SPR_PRESET_VIT_BASE},
      {"workload", "preset", "bert-base", SPR_PRESET_BERT_BASE},
      {"crossbar", "ir_drop", "off", SPR_IR_OFF},        {"crossbar", "ir_drop", "first_order", SPR_IR_FIRST_ORDER},
      {"crossbar", "ir_drop", "nodal", SPR_IR_NODAL},
      {"threshold", "mode", "direct", SPR_THR_DIRECT},   {"threshold", "mode", "keep_rate", SPR_THR_KEEP_RATE},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    CU_ASSERT_EQUAL(spr_config_set(&c, t[i].sec, t[i].key, t[i].val, "t"), 0);
    int k = key_index(t[i].sec, t[i].key);
    char v[64];
    spr_config_format(&c, k, v, sizeof v);
    CU_ASSERT_STRING_EQUAL(v, t[i].val); /* format gives the name back */
  }
  CU_ASSERT_EQUAL(c.xbar.ir_drop, SPR_IR_NODAL); /* the last ir_drop set */
  c.trace = SPR_TRACE_FULL;
  c.wl.preset = SPR_PRESET_VIT_BASE;
  c.xbar.ir_drop = SPR_IR_OFF;
  c.thr.mode = SPR_THR_DIRECT;
  CU_ASSERT_EQUAL(c.trace, 2);
  char v[64];
  spr_config_format(&c, key_index("run", "trace"), v, sizeof v);
  CU_ASSERT_STRING_EQUAL(v, "full");
  spr_config_format(&c, key_index("workload", "preset"), v, sizeof v);
  CU_ASSERT_STRING_EQUAL(v, "vit-base");
  spr_config_format(&c, key_index("crossbar", "ir_drop"), v, sizeof v);
  CU_ASSERT_STRING_EQUAL(v, "off");
  spr_config_format(&c, key_index("threshold", "mode"), v, sizeof v);
  CU_ASSERT_STRING_EQUAL(v, "direct");
  /* prefixes of a name are not names */
  CU_ASSERT_EQUAL(spr_config_set(&c, "run", "trace", "mask", "t"), SPR_ECONFIG);
  CU_ASSERT_EQUAL(spr_config_set(&c, "run", "trace", "fullx", "t"), SPR_ECONFIG);
  CU_ASSERT_EQUAL(spr_config_set(&c, "run", "trace", "", "t"), SPR_ECONFIG);
}

/* spr_error_prefix names the context before the last message, keeps the
 * code, and cuts at the message buffer's end like spr_error. */
static void test_error_prefix(void) {
  CU_ASSERT_EQUAL(spr_error(SPR_EIO, "f.h5: cannot open"), SPR_EIO);
  CU_ASSERT_EQUAL(spr_error_prefix(SPR_EIO, "layer %d head %d", 2, 3), SPR_EIO);
  CU_ASSERT_STRING_EQUAL(spr_errmsg(), "layer 2 head 3: f.h5: cannot open");
  CU_ASSERT_EQUAL(spr_error_prefix(SPR_ECONFIG, "run.device_model"), SPR_ECONFIG);
  CU_ASSERT_STRING_EQUAL(spr_errmsg(), "run.device_model: layer 2 head 3: f.h5: cannot open");
  char big[3000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  spr_error(SPR_EINVAL, "%s", big);
  const size_t full = strlen(spr_errmsg());
  spr_error_prefix(SPR_EINVAL, "p");
  CU_ASSERT_EQUAL(strlen(spr_errmsg()), full); /* cut at the same length */
  CU_ASSERT_EQUAL(strncmp(spr_errmsg(), "p: xxx", 6), 0);
}

/* String keys: any text below SPR_STRING_MAX bytes, "" unsets. */
static void test_strings(void) {
  spr_config c;
  spr_config_default(&c);
  CU_ASSERT_STRING_EQUAL(c.device_model, "");
  CU_ASSERT_EQUAL(spr_config_set(&c, "run", "device_model", "a b/c,d.h5", "t"), 0);
  CU_ASSERT_STRING_EQUAL(c.device_model, "a b/c,d.h5");
  char buf[64];
  int i = key_index("run", "device_model");
  CU_ASSERT_EQUAL(spr_config_key(i)->type, SPR_KEY_STRING);
  CU_ASSERT_EQUAL(spr_config_format(&c, i, buf, sizeof buf), 10);
  CU_ASSERT_STRING_EQUAL(buf, "a b/c,d.h5");
  static char big[SPR_STRING_MAX + 1];
  memset(big, 'x', SPR_STRING_MAX);
  big[SPR_STRING_MAX] = '\0';
  CU_ASSERT_EQUAL(spr_config_set(&c, "run", "device_model", big, "t:3"), SPR_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(spr_errmsg(), "t:3: key 'run.device_model'"));
  CU_ASSERT_PTR_NOT_NULL(strstr(spr_errmsg(), "at most 1023"));
  CU_ASSERT_STRING_EQUAL(c.device_model, "a b/c,d.h5"); /* unchanged */
  big[SPR_STRING_MAX - 1] = '\0';                        /* 1023 bytes: fits */
  CU_ASSERT_EQUAL(spr_config_set(&c, "run", "device_model", big, "t"), 0);
  CU_ASSERT_EQUAL(strlen(c.device_model), SPR_STRING_MAX - 1);
  CU_ASSERT_EQUAL(spr_config_set(&c, "run", "device_model", "", "t"), 0);
  CU_ASSERT_STRING_EQUAL(c.device_model, "");
}

/* The absolute name of `name` given in the configuration file `path`:
 * its folder joined to name, made absolute from the current directory
 * (what loading and resolving do to every string key). */
static void beside(char *want, size_t n, const char *path, const char *name) {
  char rel[800], cwd[1024];
  snprintf(rel, sizeof rel, "%.*s%s", (int)(strrchr(path, '/') - path + 1), path, name);
  if (rel[0] == '/') {
    CU_ASSERT_FATAL(snprintf(want, n, "%s", rel) < (int)n);
    return;
  }
  CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof cwd));
  CU_ASSERT_FATAL(snprintf(want, n, "%s/%s", cwd, rel[0] == '.' && rel[1] == '/' ? rel + 2 : rel) <
                  (int)n);
}

/* workload.source, qkv_file, qkv_item: requirements between the keys, and
 * a relative qkv_file taken from the configuration file's folder. */
static void test_qkv_keys(void) {
  expect_error("[workload]\nsource = qkv\n", SPR_ECONFIG, 2,
               "key 'workload.qkv_file' is required when workload.source = qkv", NULL);
  expect_error("[workload]\nqkv_file = a.h5\n", SPR_ECONFIG, 2,
               "key 'workload.qkv_file'", "/a.h5')", "source is synthetic", NULL);
  expect_error("[workload]\nqkv_item = 2\n", SPR_ECONFIG, 2, "key 'workload.qkv_item' (2)",
               "source is synthetic", NULL);
  expect_error("[workload]\nsource = file\n", SPR_ECONFIG, 2, "'file'", "synthetic|qkv", NULL);
  expect_error("[workload]\nsource = qkv\nqkv_file = a.h5\nqkv_item = -1\n", SPR_ECONFIG, 4,
               "'workload.qkv_item'", "out of range", NULL);
  spr_config c;
  char path[512], want[600];
  /* relative: beside the configuration file; the sizes stay 0 (the file's,
   * filled by spr_qkv_resolve) */
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[workload]\nsource = qkv\nqkv_file = sub/x y.h5\nqkv_item = 7\n", path,
                            sizeof path), 0);
  beside(want, sizeof want, path, "sub/x y.h5");
  CU_ASSERT_STRING_EQUAL(c.wl.qkv_file, want);
  CU_ASSERT_EQUAL(c.wl.qkv_item, 7);
  CU_ASSERT_EQUAL(c.wl.seq_len, 0);
  CU_ASSERT_EQUAL(c.wl.n_layers, 0);
  CU_ASSERT_EQUAL(c.wl.n_heads, 0);
  CU_ASSERT_EQUAL(c.wl.head_dim, 0);
  /* absolute: unchanged */
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[workload]\nsource = qkv\nqkv_file = /d/x.h5\n", path, sizeof path), 0);
  CU_ASSERT_STRING_EQUAL(c.wl.qkv_file, "/d/x.h5");
  /* every string key is a path: run.device_model too */
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[run]\ndevice_model = m/dev.h5\n", path, sizeof path), 0);
  beside(want, sizeof want, path, "m/dev.h5");
  CU_ASSERT_STRING_EQUAL(c.device_model, want);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[run]\ndevice_model = /m/dev.h5\n", path, sizeof path), 0);
  CU_ASSERT_STRING_EQUAL(c.device_model, "/m/dev.h5");
  /* threshold values are counted once the file's sizes are known */
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[workload]\nsource = qkv\nqkv_file = /d/x.h5\n[threshold]\nmode = direct\nvalues = 1, 2, 3\n",
                            path, sizeof path), 0);
  c.wl.n_layers = 2;
  c.wl.n_heads = 2;
  c.wl.seq_len = 10;
  c.wl.head_dim = 8;
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "t"), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "3 values given; needs 1 or one per layer (2)");
  /* joined path too long: a configuration 5 folders of 200 characters deep */
  char dir[1200], comp[201], cfg[1300];
  memset(comp, 'd', 200);
  comp[200] = '\0';
  spr_test_path(dir, 200, "config-deep", "");
  const size_t root_len = strlen(dir);
  CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0777), 0);
  for (int k = 0; k < 5; k++) {
    size_t l = strlen(dir);
    snprintf(dir + l, sizeof dir - l, "/%s", comp);
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0777), 0);
  }
  snprintf(cfg, sizeof cfg, "%s/c.ini", dir);
  FILE *f = fopen(cfg, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[workload]\nsource = qkv\nqkv_file = %.150s.h5\n", comp);
  fclose(f);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_load(&c, cfg), SPR_ECONFIG);
  /* the message starts with the 1000-character path and is cut at 1023
   * bytes; the key was parsed (not a line-length error) and left unjoined */
  SPR_ASSERT_CONTAINS(spr_errmsg(), "tmp-config-deep");
  CU_ASSERT_EQUAL(strlen(c.wl.qkv_file), 153);
  CU_ASSERT_EQUAL(strcmp(c.wl.qkv_file + 150, ".h5"), 0);
  remove(cfg);
  for (int k = 0; k < 6; k++) {
    CU_ASSERT_EQUAL(rmdir(dir), 0);
    if (strlen(dir) > root_len) *strrchr(dir, '/') = '\0';
  }
}

static void test_seed_and_lists(void) {
  spr_config c;
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_set(&c, "run", "seed", "18446744073709551615", "t"), 0);
  CU_ASSERT_EQUAL(c.seed, UINT64_MAX);
  CU_ASSERT_EQUAL(spr_config_set(&c, "run", "seed", "9223372036854775809", "t"), 0);
  CU_ASSERT_EQUAL(c.seed, UINT64_C(9223372036854775809)); /* above 2^63, exact */
  CU_ASSERT_EQUAL(spr_config_set(&c, "run", "seed", "0", "t"), 0);
  CU_ASSERT_EQUAL(c.seed, 0);

  /* threshold values and range are in score units */
  CU_ASSERT_EQUAL(spr_config_set(&c, "threshold", "values", "1.5 score, -2score", "t"), 0);
  CU_ASSERT_EQUAL_FATAL(c.thr.n_values, 2);
  CU_ASSERT_EQUAL(c.thr.values[0], 1.5);
  CU_ASSERT_EQUAL(c.thr.values[1], -2);
  CU_ASSERT_EQUAL(spr_config_set(&c, "threshold", "range", "12.5 score", "t"), 0);
  CU_ASSERT_EQUAL(c.thr.range, 12.5);
  CU_ASSERT_EQUAL(spr_config_set(&c, "threshold", "values", "3", "t"), 0);
  CU_ASSERT_EQUAL(c.thr.n_values, 1);
  CU_ASSERT_EQUAL(c.thr.values[0], 3);
  CU_ASSERT_EQUAL(spr_config_set(&c, "threshold", "values", "1.5,-2.25 , 1e3,0", "t"), 0);
  CU_ASSERT_EQUAL_FATAL(c.thr.n_values, 4);
  CU_ASSERT_EQUAL(c.thr.values[0], 1.5);
  CU_ASSERT_EQUAL(c.thr.values[1], -2.25);
  CU_ASSERT_EQUAL(c.thr.values[2], 1000);
  CU_ASSERT_EQUAL(c.thr.values[3], 0);
  char v[128];
  int n = spr_config_format(&c, key_index("threshold", "values"), v, sizeof v);
  CU_ASSERT_STRING_EQUAL(v, "1.5, -2.25, 1000, 0");
  CU_ASSERT_EQUAL(n, (int)strlen("1.5, -2.25, 1000, 0"));

  /* per_head with layers x heads values is accepted */
  char path[512];
  spr_config_default(&c);
  int rc = load_text(&c,
                     "[workload]\nlayers = 2\nheads = 3\n"
                     "[threshold]\nmode = direct\nper_head = true\nvalues = 1, 2, 3, 4, 5, -6\n",
                     path, sizeof path);
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT_EQUAL(c.thr.n_values, 6);
  CU_ASSERT_EQUAL(c.thr.values[5], -6);
  /* ... and so is a single value, per layer or per head */
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[threshold]\nmode = direct\nper_head = on\nvalues = 0.5\n", path, sizeof path), 0);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[workload]\nlayers = 3\n[threshold]\nmode = direct\nvalues = 1,2,3\n", path, sizeof path), 0);
}

/* --- errors in files ------------------------------------------------------ */

static void test_missing_file(void) {
  spr_config c;
  spr_config_default(&c);
  char path[512];
  spr_test_path(path, sizeof path, "config-missing", "/no/such.ini");
  spr_error_clear();
  CU_ASSERT_EQUAL(spr_config_load(&c, path), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), path);
  /* a directory opens but cannot be read */
  char dir[512];
  const char *b = getenv("top_builddir");
  snprintf(dir, sizeof dir, "%s/tests", b ? b : ".");
  spr_error_clear();
  CU_ASSERT_EQUAL(spr_config_load(&c, dir), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), dir);
}

static void test_syntax_error(void) {
  expect_error("[crossbar]\nrows = 32\nthis line has no equals sign\ncols = 32\n", SPR_ECONFIG, 3,
               "syntax", NULL);
  expect_error("[crossbar]\nrows\n", SPR_ECONFIG, 2, "syntax", NULL); /* a key without value */
  /* an unclosed section header: the error is the header's, not that of the
   * key below it (which then sits in no section) */
  expect_error("; comment\n\n[crossbar\nrows = 32\n", SPR_ECONFIG, 3, "syntax", NULL);
}

static void test_unknown_section_and_key(void) {
  expect_error("[run]\nseed = 3\n\n[crosbar]\nrows = 32\n", SPR_ECONFIG, 5, "crosbar", "rows", NULL);
  /* a key before any section */
  expect_error("; top\nseed = 3\n", SPR_ECONFIG, 2, "section", "seed", NULL);
  expect_error("[crossbar]\n; c\nrowz = 32\n", SPR_ECONFIG, 3, "crossbar.rowz", "'32'", NULL);
  /* a key of another section */
  expect_error("[analog]\n\n\nrows = 32\n", SPR_ECONFIG, 4, "analog.rows", "'32'", NULL);
}

/* The header promises that unknown sections are errors; an unknown section
 * with no keys (a misspelt section whose keys were commented out, or a
 * trailing one) must be refused too. */
static void test_unknown_empty_section(void) {
  expect_error("[crossbar]\nrows = 32\n\n[analogue]\n; v_read = 0.1\n", SPR_ECONFIG, 4, "analogue", NULL);
}

static void test_duplicate_key(void) {
  expect_error("[crossbar]\nrows = 32\ncols = 32\nrows = 16\n", SPR_ECONFIG, 4, "crossbar.rows", "twice",
               "'16'", NULL);
  /* the same key in a reopened section */
  expect_error("[crossbar]\nrows = 32\n[analog]\nv_read = 0.1\n[crossbar]\nrows = 32\n", SPR_ECONFIG, 6,
               "crossbar.rows", "twice", NULL);
  /* a repeated section header with different keys is fine */
  spr_config c;
  spr_config_default(&c);
  char path[512];
  CU_ASSERT_EQUAL(load_text(&c, "[crossbar]\nrows = 32\n[analog]\nv_read = 0.1\n[crossbar]\ncols = 32\n", path, sizeof path), 0);
  CU_ASSERT_EQUAL(c.xbar.rows, 32);
  CU_ASSERT_EQUAL(c.xbar.cols, 32);
}

static void test_bad_numbers(void) {
  expect_error("[crossbar]\ng_max = abc\n", SPR_ECONFIG, 2, "crossbar.g_max", "'abc'", "not a finite number", NULL);
  expect_error("[crossbar]\ng_max = nan\n", SPR_ECONFIG, 2, "crossbar.g_max", "'nan'", NULL);
  expect_error("[crossbar]\ng_max = inf S\n", SPR_ECONFIG, 2, "crossbar.g_max", "'inf S'", NULL);
  expect_error("[crossbar]\ng_max = 1e999\n", SPR_ECONFIG, 2, "crossbar.g_max", "'1e999'", NULL);
  expect_error("[crossbar]\ncols = 32\nrows = 64x\n", SPR_ECONFIG, 3, "crossbar.rows", "'64x'", "not an integer", NULL);
  expect_error("[crossbar]\nrows = 6.5\n", SPR_ECONFIG, 2, "crossbar.rows", "'6.5'", "not an integer", NULL);
  expect_error("[crossbar]\nrows = 1e2\n", SPR_ECONFIG, 2, "crossbar.rows", "'1e2'", NULL);
  expect_error("[workload]\nseq_len = 99999999999999999999\n", SPR_ECONFIG, 2, "workload.seq_len", NULL);
  expect_error("[workload]\nlayers = twelve\n", SPR_ECONFIG, 2, "workload.layers", "'twelve'", NULL);
}

static void test_out_of_range(void) {
  expect_error("[threshold]\nkeep_rate = 1.5\n", SPR_ECONFIG, 2, "threshold.keep_rate", "'1.5'", "out of range", NULL);
  expect_error("[threshold]\nkeep_rate = 0\n", SPR_ECONFIG, 2, "threshold.keep_rate", "'0'", "out of range", NULL);
  expect_error("[crossbar]\n\nrows = 0\n", SPR_ECONFIG, 3, "crossbar.rows", "'0'", "out of range", NULL);
  expect_error("[crossbar]\nrows = -64\n", SPR_ECONFIG, 2, "crossbar.rows", "'-64'", "out of range", NULL);
  expect_error("[crossbar]\ncell_bits = 9\n", SPR_ECONFIG, 2, "crossbar.cell_bits", "'9'", "out of range", NULL);
  expect_error("[workload]\nlayers = 65\n", SPR_ECONFIG, 2, "workload.layers", "'65'", "out of range", NULL);
  expect_error("[crossbar]\ng_max = 2 S\n", SPR_ECONFIG, 2, "crossbar.g_max", "'2 S'", "out of range", NULL);
  expect_error("[crossbar]\nprog_sigma = -0.1\n", SPR_ECONFIG, 2, "crossbar.prog_sigma", "out of range", NULL);
  expect_error("[threshold]\nbits = 17\n", SPR_ECONFIG, 2, "threshold.bits", "'17'", NULL);
}

static void test_bad_units(void) {
  expect_error("[crossbar]\ng_max = 100 mV\n", SPR_ECONFIG, 2, "crossbar.g_max", "'100 mV'", "unit 'mV'",
               "expected S", NULL);
  expect_error("[crossbar]\ng_max = 100 uA\n", SPR_ECONFIG, 2, "crossbar.g_max", "unit 'uA'", NULL);
  expect_error("[crossbar]\ng_max = 100 xS\n", SPR_ECONFIG, 2, "crossbar.g_max", "unit 'xS'", NULL);
  expect_error("[crossbar]\ng_max = 100 u S\n", SPR_ECONFIG, 2, "crossbar.g_max", "'100 u S'", NULL);
  expect_error("[crossbar]\nr_wl = 2 ohms\n", SPR_ECONFIG, 2, "crossbar.r_wl", "'2 ohms'", "expected ohm", NULL);
  expect_error("[analog]\nbandwidth = 200 MHZ\n", SPR_ECONFIG, 2, "analog.bandwidth", "expected Hz", NULL);
  expect_error("[crossbar]\nprog_sigma = 0.1 S\n", SPR_ECONFIG, 2, "crossbar.prog_sigma", "'0.1 S'",
               "dimensionless", NULL);
  expect_error("[threshold]\nkeep_rate = 15 %\n", SPR_ECONFIG, 2, "threshold.keep_rate", "'15 %'", NULL);
}

static void test_bad_bool_enum_seed(void) {
  expect_error("[crossbar]\nvariation = maybe\n", SPR_ECONFIG, 2, "crossbar.variation", "'maybe'", "boolean", NULL);
  expect_error("[crossbar]\nvariation = 2\n", SPR_ECONFIG, 2, "crossbar.variation", "'2'", NULL);
  expect_error("[crossbar]\nir_drop = second_order\n", SPR_ECONFIG, 2, "crossbar.ir_drop", "'second_order'",
               "off|first_order", NULL);
  expect_error("[workload]\npreset = gpt2\n", SPR_ECONFIG, 2, "workload.preset", "'gpt2'", NULL);
  expect_error("[run]\nseed = -5\n", SPR_ECONFIG, 2, "run.seed", "'-5'", NULL);
  expect_error("[run]\nseed = 18446744073709551616\n", SPR_ECONFIG, 2, "run.seed", "'18446744073709551616'", NULL);
  expect_error("[run]\nseed = 12abc\n", SPR_ECONFIG, 2, "run.seed", "'12abc'", NULL);
  expect_error("[run]\nseed = +5\n", SPR_ECONFIG, 2, "run.seed", "'+5'", NULL);
}

static void test_bad_lists_and_empty(void) {
  expect_error("[threshold]\nvalues = 1.5, abc, 2\n", SPR_ECONFIG, 2, "threshold.values", "abc", NULL);
  expect_error("[threshold]\nvalues = 1.5, 2e10\n", SPR_ECONFIG, 2, "threshold.values", "2e10", "out of range", NULL);
  expect_error("[threshold]\nvalues = 1.5,,2\n", SPR_ECONFIG, 2, "threshold.values", NULL);
  expect_error("[threshold]\nvalues = 1.5, 2,\n", SPR_ECONFIG, 2, "threshold.values", NULL);
  expect_error("[threshold]\nvalues = 1 S\n", SPR_ECONFIG, 2, "threshold.values", "unit 'S'", "expected score", NULL);
  expect_error("[threshold]\nvalues = 1 score, 2 V\n", SPR_ECONFIG, 2, "threshold.values", "unit 'V'", NULL);
  expect_error("[threshold]\nvalues =\n", SPR_ECONFIG, 2, "threshold.values", "empty", NULL);
  expect_error("[crossbar]\ng_max =\n", SPR_ECONFIG, 2, "crossbar.g_max", "empty", NULL);
  expect_error("[crossbar]\nrows =\n", SPR_ECONFIG, 2, "crossbar.rows", "''", NULL);
  expect_error("[crossbar]\nvariation =\n", SPR_ECONFIG, 2, "crossbar.variation", "''", NULL);
  expect_error("[run]\nseed =\n", SPR_ECONFIG, 2, "run.seed", "''", NULL);
  expect_error("[run]\ntrace =\n", SPR_ECONFIG, 2, "run.trace", "''", NULL);
}

/* Relations between keys, checked by spr_config_resolve after the parse. */
static void test_cross_key_errors(void) {
  expect_error("[crossbar]\ng_min = 100 uS\ng_max = 100 uS\n", SPR_ECONFIG, 3, "crossbar.g_min",
               "crossbar.g_max", "0.0001", NULL);
  expect_error("[crossbar]\ng_min = 1 mS\n", SPR_ECONFIG, 2, "crossbar.g_min", "crossbar.g_max", "0.001", NULL);
  expect_error("[crossbar]\ncols = 63\n", SPR_ECONFIG, 2, "crossbar.cols", "63", "odd", NULL);
  expect_error("[crossbar]\nkey_bits = 4\nkey_msb_bits = 5\n", SPR_ECONFIG, 3, "crossbar.key_msb_bits", "5",
               "key_bits", NULL);
  /* a signed b-bit MSB key needs magnitudes up to 2^(b-1) <= 2^cell_bits - 1 */
  expect_error("[crossbar]\ncell_bits = 2\nkey_msb_bits = 4\n", SPR_ECONFIG, 3, "crossbar.key_msb_bits", "4",
               "2-bit", NULL);
  expect_error("[crossbar]\ncell_bits = 2\nkey_msb_bits = 3\n", SPR_ECONFIG, 3, "crossbar.key_msb_bits", "3", NULL);
  expect_error("[crossbar]\ncell_bits = 1\nkey_msb_bits = 2\n", SPR_ECONFIG, 3, "crossbar.key_msb_bits", NULL);
  expect_error("[crossbar]\nstuck_on_rate = 0.6\nstuck_off_rate = 0.5\n", SPR_ECONFIG, 3,
               "crossbar.stuck_on_rate", "crossbar.stuck_off_rate", "0.6", "0.5", NULL);
  expect_error("[threshold]\nmode = direct\n", SPR_ECONFIG, 2, "threshold.values", "direct", NULL);
  /* 12 layers by default: 2 values are neither 1 nor 12 */
  expect_error("[threshold]\nmode = direct\nvalues = 1, 2\n", SPR_ECONFIG, 3, "threshold.values", "2 values",
               "12", NULL);
  /* per_head, 2 x 3: one per layer (2) is wrong, 1 or 6 are right */
  expect_error("[workload]\nlayers = 2\nheads = 3\n[threshold]\nmode = direct\nper_head = true\nvalues = 1, 2\n",
               SPR_ECONFIG, 7, "threshold.values", "2 values", "6", NULL);
  expect_error("[workload]\nlayers = 2\nheads = 3\n[threshold]\nmode = direct\nper_head = true\nvalues = 1,2,3,4,5,6,7\n",
               SPR_ECONFIG, 7, "threshold.values", "7 values", NULL);
  expect_error("[workload]\nseq_len = 1\n", SPR_ECONFIG, 2, "workload.seq_len", "1", NULL);
  /* drift runs forward; a threshold range is 0 (auto) or a real scale */
  expect_error("[crossbar]\ndrift_t0 = 10 s\ndrift_time = 5 s\n", SPR_ECONFIG, 3, "crossbar.drift_time",
               "5 s", "drift_t0 (10 s)", NULL);
  expect_error("[threshold]\nrange = 1e-300\n", SPR_ECONFIG, 2, "threshold.range", "1e-300", NULL);
  /* a nonlinear cell whose sinh(v_read / V0) is beyond sinh(20) */
  expect_error("[crossbar]\ncell_v0 = 5 mV\n", SPR_ECONFIG, 2, "crossbar.cell_v0", "0.005 V",
               "v_read / 20 (0.01 V)", NULL);
  /* a list continued on indented lines, also after a trailing comma */
  expect_error("[threshold]\nmode = direct\nvalues = 1, 2,\n  3, x\n", SPR_ECONFIG, 3, "threshold.values",
               "x' is not a finite number", NULL);
  /* a relation error names the key's own line, or its partner's */
  expect_error("[crossbar]\nrows = 8\n\ncols = 7\n", SPR_ECONFIG, 4, "crossbar.cols", NULL);
  expect_error("; only the key count is wrong\n[workload]\nlayers = 3\n[threshold]\nmode = direct\n"
               "values = 1,\n  2\n", SPR_ECONFIG, 6, "2 values", NULL);

  /* the boundaries are accepted */
  spr_config c;
  char path[512];
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[threshold]\nmode = direct\nvalues = 10, 20,\n  30, 40,\n"
                                "  50, 60, 70, 80, 90, 100, 110, 120\n", path, sizeof path), 0);
  CU_ASSERT_EQUAL(c.thr.n_values, 12);
  CU_ASSERT_DOUBLE_EQUAL(c.thr.values[11], 120, 0);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[crossbar]\ng_min = 1e-320 S\n", path, sizeof path), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "out of range"); /* underflow parses, then the range applies */
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[crossbar]\ncell_bits = 2\nkey_msb_bits = 2\n", path, sizeof path), 0);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[crossbar]\nkey_bits = 4\nkey_msb_bits = 4\n", path, sizeof path), 0);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[crossbar]\nstuck_on_rate = 0.5\nstuck_off_rate = 0.5\n", path, sizeof path), 0);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, "[crossbar]\ncols = 2\n[workload]\nseq_len = 2\n", path, sizeof path), 0);

  /* resolve called directly names its origin */
  spr_config_default(&c);
  c.xbar.cols = 33;
  spr_error_clear();
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "cmdline"), SPR_ECONFIG);
  CU_ASSERT_EQUAL(strncmp(spr_errmsg(), "cmdline: ", 9), 0);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "33");
}

/* The reported line is the line of the offending key, after comments,
 * blank lines and section headers. */
static void test_error_line(void) {
  const char *text =
      "; header comment\n"          /* 1 */
      "\n"                          /* 2 */
      "[crossbar]\n"                /* 3 */
      "rows = 32   ; inline\n"      /* 4 */
      "# another comment\n"         /* 5 */
      "\n"                          /* 6 */
      "[analog]\n"                  /* 7 */
      "v_read = 0.1 V\n"            /* 8 */
      "temperature = 300 C\n"       /* 9 */
      "bandwidth = 1 MHz\n";        /* 10 */
  expect_error(text, SPR_ECONFIG, 9, "analog.temperature", "'300 C'", "expected K", NULL);
}

/* The first error of the file is the one reported, with its own line: a
 * syntax error on line 2 followed by a bad value on line 3 must not give
 * line 2 with the message of line 3 (or the reverse). */
static void test_first_error_reported(void) {
  expect_error("[crossbar]\nrows = 0\ngarbage\n", SPR_ECONFIG, 2, "crossbar.rows", "'0'", NULL);
  expect_error("[crossbar]\ngarbage\nrows = 0\n", SPR_ECONFIG, 2, "syntax", NULL);
}

/* --- spr_config_set and its origin ---------------------------------------- */

static void test_set_origin(void) {
  expect_set_error("run", "seed", "-1", "--seed", "run.seed", "'-1'", NULL);
  expect_set_error("run", "seed", "x", "--seed", "run.seed", "'x'", NULL);
  expect_set_error("crossbar", "g_max", "100 mV", "--set crossbar.g_max", "crossbar.g_max", "'100 mV'", "unit 'mV'",
                   NULL);
  expect_set_error("crossbar", "rows", "0", "run.ini:12", "crossbar.rows", "'0'", "out of range", NULL);
  expect_set_error("crossbar", "nope", "1", "--set", "crossbar.nope", "'1'", NULL);
  expect_set_error("nosuch", "rows", "1", "--set", "nosuch", "rows", NULL);
  expect_set_error("threshold", "mode", "auto", "-m", "threshold.mode", "'auto'", NULL);
  expect_set_error("analog", "read_noise", "enabled", "--noise", "analog.read_noise", "'enabled'", NULL);
  expect_set_error("threshold", "values", "1;2", "--thr", "threshold.values", NULL);
  /* list limits: an item of 200 characters, and SPR_MAX_THRESHOLDS + 1 items */
  {
    char item[201];
    memset(item, '1', 200);
    item[200] = '\0';
    expect_set_error("threshold", "values", item, "--thr", "threshold.values", "too long", NULL);
    size_t n = 2 * (SPR_MAX_THRESHOLDS + 1);
    char *many = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(many);
    for (size_t i = 0; i < n; i += 2) memcpy(many + i, i + 2 < n ? "0," : "0", 2);
    many[n - 1] = '\0';
    expect_set_error("threshold", "values", many, "--thr", "threshold.values", "4096", NULL);
    /* exactly SPR_MAX_THRESHOLDS values are accepted */
    many[n - 3] = '\0';
    spr_config c;
    spr_config_default(&c);
    CU_ASSERT_EQUAL(spr_config_set(&c, "threshold", "values", many, "--thr"), 0);
    CU_ASSERT_EQUAL(c.thr.n_values, SPR_MAX_THRESHOLDS);
    free(many);
  }

  spr_config c;
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_set(&c, "run", "seed", "42", "--seed"), 0);
  CU_ASSERT_EQUAL(c.seed, 42);
  /* a refused value leaves the field alone */
  CU_ASSERT_EQUAL(spr_config_set(&c, "crossbar", "rows", "0", "--rows"), SPR_ECONFIG);
  CU_ASSERT_EQUAL(c.xbar.rows, 64);
  CU_ASSERT_EQUAL(spr_config_set(&c, "crossbar", "g_max", "1 V", "--g"), SPR_ECONFIG);
  CU_ASSERT_DOUBLE_EQUAL(c.xbar.g_max_S, 1e-4, 1e-18);
}

/* --- output --------------------------------------------------------------- */

static void test_format(void) {
  spr_config c;
  spr_config_default(&c);
  c.seed = UINT64_MAX;
  char v[64];
  int is = key_index("run", "seed");
  CU_ASSERT_EQUAL(spr_config_format(&c, is, v, sizeof v), 20);
  CU_ASSERT_STRING_EQUAL(v, "18446744073709551615");
  /* truncation: snprintf semantics */
  CU_ASSERT_EQUAL(spr_config_format(&c, is, v, 5), 20);
  CU_ASSERT_STRING_EQUAL(v, "1844");
  CU_ASSERT_EQUAL(spr_config_format(&c, is, NULL, 0), 20);

  spr_config_format(&c, key_index("crossbar", "variation"), v, sizeof v);
  CU_ASSERT_STRING_EQUAL(v, "true");
  spr_config_format(&c, key_index("threshold", "per_head"), v, sizeof v);
  CU_ASSERT_STRING_EQUAL(v, "false");
  spr_config_format(&c, key_index("crossbar", "rows"), v, sizeof v);
  CU_ASSERT_STRING_EQUAL(v, "64");
  spr_config_format(&c, key_index("crossbar", "g_max"), v, sizeof v);
  CU_ASSERT_EQUAL(strtod(v, NULL), 1e-4); /* %.17g: exact */
  spr_config_format(&c, key_index("threshold", "keep_rate"), v, sizeof v);
  CU_ASSERT_EQUAL(strtod(v, NULL), 0.15);
  spr_config_format(&c, key_index("run", "trace"), v, sizeof v);
  CU_ASSERT_STRING_EQUAL(v, "summary");

  /* lists: empty, and truncated */
  int iv = key_index("threshold", "values");
  strcpy(v, "junk");
  CU_ASSERT_EQUAL(spr_config_format(&c, iv, v, sizeof v), 0);
  CU_ASSERT_STRING_EQUAL(v, "");
  c.thr.n_values = 3;
  c.thr.values[0] = 1.5;
  c.thr.values[1] = -2;
  c.thr.values[2] = 0.25;
  CU_ASSERT_EQUAL(spr_config_format(&c, iv, v, sizeof v), 13);
  CU_ASSERT_STRING_EQUAL(v, "1.5, -2, 0.25");
  CU_ASSERT_EQUAL(spr_config_format(&c, iv, v, 6), 13);
  CU_ASSERT_STRING_EQUAL(v, "1.5, ");
  CU_ASSERT_EQUAL(spr_config_format(&c, iv, NULL, 0), 13);

  /* bad index */
  CU_ASSERT_EQUAL(spr_config_format(&c, -1, v, sizeof v), 1);
  CU_ASSERT_STRING_EQUAL(v, "?");
  CU_ASSERT_EQUAL(spr_config_format(&c, spr_config_nkeys(), v, sizeof v), 1);
}

static void test_to_ini_text(void) {
  spr_config c;
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_resolve(&c, "t"), 0);
  char *ini = spr_config_to_ini(&c);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ini);
  SPR_ASSERT_CONTAINS(ini, "[run]\n");
  SPR_ASSERT_CONTAINS(ini, "\n[crossbar]\n");
  SPR_ASSERT_CONTAINS(ini, "\n[threshold]\n");
  SPR_ASSERT_CONTAINS(ini, "\nseed = 1\n");
  SPR_ASSERT_CONTAINS(ini, "\nseq_len = 512\n"); /* resolved */
  SPR_ASSERT_CONTAINS(ini, "\nrows = 64\n");
  SPR_ASSERT_CONTAINS(ini, "\ng_max = 0.0001\n");
  SPR_ASSERT_CONTAINS(ini, "\nir_drop = first_order\n");
  SPR_ASSERT_CONTAINS(ini, "[S]");   /* units as comments */
  SPR_ASSERT_CONTAINS(ini, "[ohm]");
  SPR_ASSERT_CONTAINS(ini, "; one of: summary|masks|full\n");
  SPR_ASSERT_CONTAINS(ini, "\n; values = (none)\n");
  /* every key appears once as "name = " at the start of a line (values as
   * a comment here), in its section */
  for (int i = 0; i < spr_config_nkeys(); i++) {
    const spr_config_key_info *k = spr_config_key(i);
    char needle[128];
    snprintf(needle, sizeof needle, "\n%s%s = ", k->type == SPR_KEY_LIST ? "; " : "", k->name);
    const char *at = strstr(ini, needle);
    CU_ASSERT_PTR_NOT_NULL(at);
    if (at) CU_ASSERT_PTR_NULL(strstr(at + 1, needle));
    snprintf(needle, sizeof needle, "[%s]\n", k->section);
    const char *sec = strstr(ini, needle);
    CU_ASSERT(sec && at && sec < at);
  }
  /* the defaults write short lines (long ones read back too:
   * test_long_lines) */
  for (const char *p = ini; *p;) {
    const char *e = strchr(p, '\n');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    CU_ASSERT(l < 200);
    p += l + (e != NULL);
  }
  free(ini);
}

/* A configuration differing from the defaults in every key. */
static void nondefault(spr_config *c) {
  spr_config_default(c);
  c->seed = UINT64_C(0xFEDCBA9876543210);
  c->trace = SPR_TRACE_MASKS;
  c->block_rows = 128;
  strcpy(c->device_model, "/calib/dev ice, v2.h5"); /* absolute: a file keeps it */
  c->wl.preset = SPR_PRESET_VIT_BASE;
  c->wl.seq_len = 100;
  c->wl.n_layers = 3;
  c->wl.n_heads = 2;
  c->wl.head_dim = 32;
  c->wl.source = SPR_SOURCE_MODEL;
  strcpy(c->wl.model, "m/vit 2.h5");
  strcpy(c->wl.dataset, "/data/fm, nist");
  c->wl.images = 123;
  c->wl.first_image = 45;
  c->wl.causal = 1;
  strcpy(c->wl.reference_model, "m/dense ref.h5");
  c->wl.windows = 7;
  c->wl.first_window = 11;
  c->thr.offset = -0.2385;
  c->xbar.rows = 128;
  c->xbar.cols = 96;
  c->xbar.cell_bits = 3;
  c->xbar.key_bits = 6;
  c->xbar.key_msb_bits = 3;
  c->xbar.g_min_S = 1.234567890123e-6;
  c->xbar.g_max_S = 8.7654321e-5;
  c->xbar.variation = 0;
  c->xbar.prog_sigma = 0.123456789;
  c->xbar.stuck = 0;
  c->xbar.stuck_on_rate = 1e-3 / 3;
  c->xbar.stuck_off_rate = 2e-4;
  c->xbar.drift = 0;
  c->xbar.drift_nu = 0.0071;
  c->xbar.drift_t_s = 1234.5678;
  c->xbar.drift_t0_s = 0.1;
  c->xbar.ir_drop = SPR_IR_OFF;
  c->xbar.r_wl_ohm = 1.0 / 3;
  c->xbar.r_bl_ohm = 3.75;
  c->xbar.ir_alpha_wl = 0.8125;
  c->xbar.ir_alpha_bl = 1.2385;
  c->xbar.cell_v0_V = 0.2385;
  c->an.query_bits = 6;
  c->an.v_read_V = 0.15;
  c->an.dac_error = 0;
  c->an.dac_gain_sigma = 0.0123;
  c->an.read_noise = 0;
  c->an.temperature_K = 310.15;
  c->an.bandwidth_Hz = 2.5e8;
  c->an.read_rel_sigma = 0.0321;
  c->an.thermal_excess = 1.75;
  c->an.cmp_offset = 0;
  c->an.cmp_offset_sigma_A = 1.7e-8;
  c->an.cmp_noise = 0;
  c->an.cmp_noise_sigma_A = 3.3e-9;
  c->thr.mode = SPR_THR_DIRECT;
  c->thr.keep_rate = 0.3;
  c->thr.per_head = 0;
  c->thr.n_values = 3;
  c->thr.values[0] = 0.1;
  c->thr.values[1] = -2.5e-3;
  c->thr.values[2] = 1.0 / 3;
  c->thr.bits = 7;
  c->thr.range = 12.5;
  c->energy.reram_write_J_per_bit = 12.2e-12;
  c->energy.reram_read_J_per_bit = 2.5e-12;
  c->energy.imc_mac_J = 0.125e-12;
  c->energy.cmp_J = 3.7e-14;
  c->energy.digital_scale = 1.235;
  c->energy.prune_read_J_per_bit = 0.2e-12;
  c->energy.sram_8k_J_per_word = 7.5e-12;
  c->energy.sram_32k_J_per_word = 22.5e-12;
  c->energy.sram_1m_J_per_word = 90e-12;
  c->energy.sram_write_ratio = 1.2;
  c->energy.mac8_J = 0.35e-12;
  c->energy.v_mac_J = 0.45e-12;
  c->energy.exp_J = 2.385e-12;
  c->energy.div_J = 3.3e-12;
  c->energy.mac4_J = 0.09e-12;
  c->energy.bitmac_J = 0.07e-12;
  c->energy.pred_add_J = 0.03e-12;
  c->energy.pred_mul_J = 0.2e-12;
  c->energy.pred_cmp_J = 0.05e-12;
  c->energy.xbar_write_J_per_bit = 12.2e-12;
  c->energy.xbar_write_J_per_cell = 2.385e-12;
  c->wear.endurance = 2.385e9;
  c->wear.sequence_rate_Hz = 120;
  c->wear.scoring_cells = 1e9;
  c->energy.clock_Hz = 8e8;
  c->energy.threshold_cycles = 7.5;
  c->energy.reram_read_bytes_per_cycle = 12.8;
  c->energy.mac_units = 128;
  c->energy.softmax_units = 4;
  c->energy.pred_units = 1024;
  c->energy.overlap = 0;
  c->dig.buffer_bytes = 32768;
  c->dig.policy = 1;
  c->dig.query_bits = 6;
  c->dig.value_bits = 7;
  c->dig.top_k = 3;
  c->dig.tile_tokens = 24;
  c->bl.oracle = 0;
  c->bl.topk = 0;
  c->bl.sanger = 0;
  c->bl.leopard = 0;
  c->bl.window = 0;
  c->bl.topk_fraction = 0.2385;
  c->bl.sanger_threshold = 1e-3;
  c->bl.window_half_width = 17;
  c->bl.window_globals = 3;
  c->bl.dense_tiled = 0;
  c->bl.match = SPR_MATCH_SPRINT;
}

static void test_round_trip(void) {
  spr_config c, d;
  nondefault(&c);
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "t"), 0);
  /* the fixture really differs from the defaults in every key (except
   * per_head and the qkv keys, which source vit forbids: both exercised
   * below) */
  spr_config_default(&d);
  for (int i = 0; i < spr_config_nkeys(); i++) {
    char x[256], y[256];
    spr_config_format(&c, i, x, sizeof x);
    spr_config_format(&d, i, y, sizeof y);
    const spr_config_key_info *k = spr_config_key(i);
    if (!strcmp(k->name, "per_head") || !strncmp(k->name, "qkv_", 4)) continue;
    if (!strcmp(x, y)) fprintf(stderr, "\n  fixture leaves %s.%s at its default", k->section, k->name);
    CU_ASSERT(strcmp(x, y) != 0);
  }
  round_trip(&c);

  /* per head: 3 x 2 values */
  c.thr.per_head = 1;
  c.thr.n_values = 6;
  for (int j = 0; j < 6; j++) c.thr.values[j] = (j - 2.5) / 7.0;
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "t"), 0);
  round_trip(&c);

  /* source qkv with its keys (the sizes as a file would give them) */
  nondefault(&c);
  c.wl.source = SPR_SOURCE_QKV;
  strcpy(c.wl.qkv_file, "/data/my q,k,v; v1.h5");
  c.wl.qkv_item = 3;
  c.thr.mode = SPR_THR_DIRECT;
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "t"), 0);
  round_trip(&c);

  /* no values: the "(none)" comment line */
  nondefault(&c);
  c.thr.mode = SPR_THR_KEEP_RATE;
  c.thr.n_values = 0;
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "t"), 0);
  char *ini = spr_config_to_ini(&c);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ini);
  SPR_ASSERT_CONTAINS(ini, "; values = (none)\n");
  free(ini);
  round_trip(&c);

  /* the defaults, resolved */
  spr_config_default(&c);
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "t"), 0);
  round_trip(&c);
}

/* One threshold per layer of BERT-base (12 values written with %.17g) is an
 * ordinary configuration; to_ini must produce a file that loads back. */
static void test_round_trip_long_list(void) {
  spr_config c;
  spr_config_default(&c);
  c.thr.mode = SPR_THR_DIRECT;
  c.thr.n_values = 12;
  for (int j = 0; j < 12; j++) c.thr.values[j] = (j + 1) / 7.0;
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "t"), 0);
  round_trip(&c);
}

/* Lines of any length (F2): what sprintsim writes reads back, with long
 * absolute paths (up to the 1023 bytes of a string key) and long lists on
 * one line, and long lines follow inih's rules exactly as short ones do
 * (inline comments after a blank, blanks around, continuation lines). */
static void test_long_lines(void) {
  spr_config c;
  char path[512], text[8192], dir[1100];
  /* a 1000-byte absolute path */
  memset(dir, 0, sizeof dir);
  strcpy(dir, "/");
  while (strlen(dir) < 990) strcat(dir, "sub-folder_2385/");
  strcat(dir, "q.h5");
  CU_ASSERT(strlen(dir) > 990 && strlen(dir) < SPR_STRING_MAX);
  snprintf(text, sizeof text, "[workload]\nsource = qkv\nqkv_file =   %s   ; the file\nlayers = 2\n", dir);
  spr_config_default(&c);
  CU_ASSERT_EQUAL_FATAL(load_text(&c, text, path, sizeof path), 0);
  CU_ASSERT_STRING_EQUAL(c.wl.qkv_file, dir);
  CU_ASSERT_EQUAL(c.wl.n_layers, 2); /* the line after it is read */
  /* ... and round trips through to_ini (the reader takes the line whole) */
  c.thr.mode = SPR_THR_DIRECT;
  c.thr.n_values = 2;
  c.thr.values[0] = 1.5;
  c.thr.values[1] = 2.385;
  c.wl.seq_len = 64;
  c.wl.n_heads = 2;
  c.wl.head_dim = 16;
  CU_ASSERT_EQUAL_FATAL(spr_config_resolve(&c, "t"), 0);
  round_trip(&c);
  /* too long for the key: its own error, naming the key */
  char big[1400];
  memset(big, 'x', sizeof big - 1);
  big[0] = '/';
  big[sizeof big - 1] = '\0';
  snprintf(text, sizeof text, "[run]\ndevice_model = %s\n", big);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, text, path, sizeof path), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), ":2: key 'run.device_model'");
  /* 40 per-layer thresholds on one line of about 700 characters, and a
   * continuation line longer than inih's buffer */
  char list[4096] = "";
  for (int j = 0; j < 40; j++) {
    size_t l = strlen(list);
    snprintf(list + l, sizeof list - l, "%s%.17g", j ? ", " : "", (j + 1) / 7.0 + 1e-3);
  }
  snprintf(text, sizeof text,
           "[workload]\nlayers = 60\nheads = 1\nseq_len = 32\n[threshold]\nmode = direct\nvalues = %s,\n   %s ; twenty more\n",
           list, list);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, text, path, sizeof path), SPR_ECONFIG); /* 80 values, 60 layers */
  SPR_ASSERT_CONTAINS(spr_errmsg(), "80 values given; needs 1 or one per layer (60)");
  snprintf(text, sizeof text,
           "[workload]\nlayers = 40\nheads = 1\nseq_len = 32\n[threshold]\nmode = direct\nvalues = %s   ;   forty values\n",
           list);
  spr_config_default(&c);
  CU_ASSERT_EQUAL_FATAL(load_text(&c, text, path, sizeof path), 0);
  CU_ASSERT_EQUAL(c.thr.n_values, 40);
  for (int j = 0; j < 40; j++) CU_ASSERT_EQUAL(c.thr.values[j], (j + 1) / 7.0 + 1e-3);
  round_trip(&c);
  /* a long comment line is a comment; a long line with ';' not after a
   * blank keeps it in the value; no '=' is a syntax error on its line */
  char cmt[600];
  memset(cmt, 'c', sizeof cmt - 1);
  cmt[0] = ';';
  cmt[sizeof cmt - 1] = '\0';
  snprintf(text, sizeof text, "%s\n[workload]\nseq_len = 96\n", cmt);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, text, path, sizeof path), 0);
  CU_ASSERT_EQUAL(c.wl.seq_len, 96);
  snprintf(text, sizeof text, "[run]\ndevice_model = /a;b/%.300s\n", big + 1);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(load_text(&c, text, path, sizeof path), 0);
  CU_ASSERT_EQUAL(strncmp(c.device_model, "/a;b/xxx", 8), 0);
  CU_ASSERT_EQUAL(strlen(c.device_model), 305);
  snprintf(text, sizeof text, "[run]\nseed = 1\n%.300s\n", big + 1);
  expect_error(text, SPR_ECONFIG, 3, "syntax error", NULL);
  /* a control character 0x1f is refused */
  expect_error("[run]\nseed = 1\x1f\n", SPR_ECONFIG, 2, "control character 0x1f", NULL);
}

/* spr_config_parse: the extra section's keys reach the handler in file
 * order with their lines (continuations joined), the rest is parsed as
 * usual but not resolved, and a handler error carries its key's line. */
typedef struct {
  int n;
  char names[4][32], values[4][64];
  int lines[4];
  int fail_on; /* call index that fails, -1: none */
} extra_log;

static int log_extra(void *user, const char *name, const char *value, int line, const char *origin) {
  extra_log *x = user;
  if (x->n == x->fail_on) return spr_error(SPR_ECONFIG, "%s: handler refuses '%s'", origin, name);
  if (x->n < 4) {
    snprintf(x->names[x->n], sizeof x->names[0], "%s", name);
    snprintf(x->values[x->n], sizeof x->values[0], "%s", value);
    x->lines[x->n] = line;
  }
  x->n++;
  return 0;
}

static void test_parse_extra_section(void) {
  char path[512];
  write_file(path, sizeof path,
             "[workload]\nlayers = 3\n[extra]\nalpha.beta = 1, 2,\n  3\n; comment\n"
             "gamma = x | y\n[crossbar]\nrows = 32\n[extra]\ndelta = 2.385\n");
  spr_config c;
  spr_config_default(&c);
  extra_log x = {.fail_on = -1};
  CU_ASSERT_EQUAL(spr_config_parse(&c, path, "extra", log_extra, &x), 0);
  CU_ASSERT_EQUAL(x.n, 3);
  CU_ASSERT_STRING_EQUAL(x.names[0], "alpha.beta");
  CU_ASSERT_STRING_EQUAL(x.values[0], "1, 2, 3");
  CU_ASSERT_EQUAL(x.lines[0], 4);
  CU_ASSERT_STRING_EQUAL(x.values[1], "x | y");
  CU_ASSERT_EQUAL(x.lines[1], 7);
  CU_ASSERT_STRING_EQUAL(x.names[2], "delta");
  CU_ASSERT_EQUAL(x.lines[2], 11);
  CU_ASSERT_EQUAL(c.wl.n_layers, 3);
  CU_ASSERT_EQUAL(c.xbar.rows, 32);
  CU_ASSERT_EQUAL(c.wl.seq_len, 0); /* not resolved */
  /* a handler error names the file and its key's line */
  spr_config_default(&c);
  extra_log y = {.fail_on = 1};
  CU_ASSERT_EQUAL(spr_config_parse(&c, path, "extra", log_extra, &y), SPR_ECONFIG);
  char want[600];
  snprintf(want, sizeof want, "%s:7: handler refuses 'gamma'", path);
  CU_ASSERT_STRING_EQUAL(spr_errmsg(), want);
  /* a configuration section cannot be the extra one; without it, [extra] is unknown */
  CU_ASSERT_EQUAL(spr_config_parse(&c, path, "crossbar", log_extra, &x), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_config_parse(&c, path, "extra", NULL, &x), SPR_EINVAL);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_load(&c, path), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), ":4: unknown section '[extra]'");
  remove(path);
  int k = spr_config_find("crossbar", "rows");
  CU_ASSERT_FATAL(k >= 0 && k < spr_config_nkeys());
  CU_ASSERT_STRING_EQUAL(spr_config_key(k)->section, "crossbar");
  CU_ASSERT_STRING_EQUAL(spr_config_key(k)->name, "rows");
  CU_ASSERT_STRING_EQUAL(spr_config_key(spr_config_find("analog", "cmp_noise_sigma"))->name, "cmp_noise_sigma");
  CU_ASSERT_EQUAL(spr_config_find("crossbar", "nope"), -1);
  CU_ASSERT_EQUAL(spr_config_find("nope", "rows"), -1);
}

/* --- sources (spr_config_src): a text, overrides --------------------------- */

static int load_src(spr_config *c, const char *name, const char *text, const char *const *set,
                    int n_set) {
  const spr_config_src src = {name, text, set, n_set, "--set"};
  spr_config_default(c);
  spr_error_clear();
  return spr_config_load_src(c, &src);
}

static void test_src_overrides(void) {
  spr_config c, want;
  /* a text: the same configuration as the file holding it */
  static const char text[] = "[crossbar]\ng_max = 80 uS\nrows = 32\n[threshold]\nkeep_rate = 0.2\n";
  char path[512];
  spr_config_default(&want);
  CU_ASSERT_EQUAL(load_text(&want, text, path, sizeof path), 0);
  CU_ASSERT_EQUAL(load_src(&c, "stdin", text, NULL, 0), 0);
  CU_ASSERT(same_config(&c, &want));
  /* its errors name the text's name and line */
  CU_ASSERT_EQUAL(load_src(&c, "stdin", "[crossbar]\nrows = 32\nbogus = 1\n", NULL, 0), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "stdin:3: unknown key 'crossbar.bogus'");
  /* overrides win over the text, in any number; spaces are trimmed */
  const char *set[] = {"crossbar.rows = 48", " threshold.keep_rate=0.35 ", "analog.v_read=150 mV"};
  CU_ASSERT_EQUAL(load_src(&c, "stdin", text, set, 3), 0);
  CU_ASSERT_EQUAL(c.xbar.rows, 48);
  CU_ASSERT_DOUBLE_EQUAL(c.thr.keep_rate, 0.35, 0);
  CU_ASSERT_DOUBLE_EQUAL(c.an.v_read_V, 0.15, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(c.xbar.g_max_S, 80e-6, 1e-18);
  /* an empty text: the defaults, with the overrides */
  CU_ASSERT_EQUAL(load_src(&c, "built-in default", "", set, 1), 0);
  spr_config_default(&want);
  CU_ASSERT_EQUAL(spr_config_resolve(&want, "x"), 0);
  want.xbar.rows = 48;
  CU_ASSERT(same_config(&c, &want));
  /* every override error is SPR_EUSAGE, naming the override */
  static const struct {
    const char *set, *needle;
  } bad[] = {
      {"crossbar.rows", "--set crossbar.rows: expected section.key=value"},
      {"rows=3", "--set rows=3: expected section.key=value"},
      {".rows=3", "expected section.key=value (a section and a key name)"},
      {"crossbar.=3", "expected section.key=value (a section and a key name)"},
      {"nosuch.rows=3", "--set nosuch.rows=3: unknown section '[nosuch]'"},
      {"crossbar.nosuch=3", "--set crossbar.nosuch=3: unknown key 'crossbar.nosuch' (value '3')"},
      {"crossbar.rows=many", "--set crossbar.rows=many: key 'crossbar.rows': value 'many' is not an integer"},
      {"crossbar.rows=0", "key 'crossbar.rows': value '0' out of range [1, 4096]"},
      {"crossbar.g_max=3 V", "value '3 V' has unit 'V', expected S"},
      {"sweep.run.seed=1", "--set sweep.run.seed=1: unknown section '[sweep]'"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    const char *one[] = {bad[k].set};
    CU_ASSERT_EQUAL(load_src(&c, "stdin", text, one, 1), SPR_EUSAGE);
    SPR_ASSERT_CONTAINS(spr_errmsg(), bad[k].needle);
  }
  const char *twice[] = {"crossbar.rows=8", "crossbar.rows = 16"};
  CU_ASSERT_EQUAL(load_src(&c, "stdin", text, twice, 2), SPR_EUSAGE);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "--set crossbar.rows = 16: key 'crossbar.rows' given twice (first: --set crossbar.rows=8)");
  /* a relation broken by an override names it as the place */
  const char *gmin[] = {"crossbar.g_min=90 uS"};
  CU_ASSERT_EQUAL(load_src(&c, "stdin", text, gmin, 1), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "stdin:2 (--set crossbar.g_min): keys 'crossbar.g_min'");
  const char *both[] = {"crossbar.g_min=90 uS", "crossbar.g_max=85 uS"};
  CU_ASSERT_EQUAL(load_src(&c, "stdin", text, both, 2), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "stdin (--set crossbar.g_max): keys 'crossbar.g_min'");
  /* without set_name: "override" */
  const spr_config_src plain = {"x.ini", text, twice, 2, NULL};
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_load_src(&c, &plain), SPR_EUSAGE);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "override crossbar.rows = 16: key");
  /* a file's relative names are taken from its folder, a text's and an
   * override's from the current folder */
  char cwd[1024];
  CU_ASSERT_FATAL(getcwd(cwd, sizeof cwd) != NULL);
  CU_ASSERT_EQUAL(load_src(&c, "/some/folder/run.ini", "[run]\ndevice_model = d.h5\n", NULL, 0), 0);
  char want_path[1200];
  snprintf(want_path, sizeof want_path, "%s/d.h5", cwd);
  CU_ASSERT_STRING_EQUAL(c.device_model, want_path);
  write_file(path, sizeof path, "[run]\ndevice_model = d.h5\n");
  const char *dm[] = {"run.device_model=e.h5"};
  const spr_config_src file = {path, NULL, dm, 1, "--set"};
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_load_src(&c, &file), 0);
  snprintf(want_path, sizeof want_path, "%s/e.h5", cwd);
  CU_ASSERT_STRING_EQUAL(c.device_model, want_path);
  const spr_config_src file0 = {path, NULL, NULL, 0, NULL};
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_load_src(&c, &file0), 0);
  CU_ASSERT(strstr(c.device_model, "/tests/") != NULL && strstr(c.device_model, "d.h5") != NULL);
  remove(path);
}

/* A handler that records the keys of an extra section. */
typedef struct {
  char seen[512];
  int fail_on_value; /* return an error for value "bad" */
} srclog;

static int srclog_key(void *user, const char *name, const char *value, int line, const char *origin) {
  srclog *l = user;
  size_t n = strlen(l->seen);
  snprintf(l->seen + n, sizeof l->seen - n, "%s=%s@%d;", name, value, line);
  if (l->fail_on_value && !strcmp(value, "bad"))
    return spr_error(SPR_ECONFIG, "%s: key '%s': value 'bad'", origin, name);
  return 0;
}

static void test_src_extra_overrides(void) {
  static const char text[] = "[crossbar]\nrows = 32\n[extra]\na = 1\nb = 2,\n  3\nc = 4\n";
  spr_config c;
  srclog l;
  /* the override takes the key's place (its continuation dropped, line 0);
   * new keys come after the text's */
  const char *set[] = {"extra.b=20", "extra.d = 5", "crossbar.rows=16"};
  const spr_config_src src = {"in.ini", text, set, 3, "--set"};
  memset(&l, 0, sizeof l);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_parse_src(&c, &src, "extra", srclog_key, &l), 0);
  CU_ASSERT_STRING_EQUAL(l.seen, "a=1@4;b=20@0;c=4@7;d=5@0;");
  CU_ASSERT_EQUAL(c.xbar.rows, 16);
  /* the handler's error for an override names the override, SPR_EUSAGE */
  const char *badset[] = {"extra.c=bad"};
  const spr_config_src bsrc = {"in.ini", text, badset, 1, "--set"};
  memset(&l, 0, sizeof l);
  l.fail_on_value = 1;
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_parse_src(&c, &bsrc, "extra", srclog_key, &l), SPR_EUSAGE);
  CU_ASSERT_STRING_EQUAL(spr_errmsg(), "--set extra.c=bad: key 'c': value 'bad'");
  const char *newbad[] = {"extra.e=bad"};
  const spr_config_src nsrc = {"in.ini", text, newbad, 1, "--set"};
  memset(&l, 0, sizeof l);
  l.fail_on_value = 1;
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_parse_src(&c, &nsrc, "extra", srclog_key, &l), SPR_EUSAGE);
  CU_ASSERT_STRING_EQUAL(spr_errmsg(), "--set extra.e=bad: key 'e': value 'bad'");
  /* a key of the text still names its line */
  static const char badtext[] = "[extra]\na = bad\n";
  const spr_config_src tsrc = {"in.ini", badtext, NULL, 0, "--set"};
  memset(&l, 0, sizeof l);
  l.fail_on_value = 1;
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_parse_src(&c, &tsrc, "extra", srclog_key, &l), SPR_ECONFIG);
  CU_ASSERT_STRING_EQUAL(spr_errmsg(), "in.ini:2: key 'a': value 'bad'");
}

static const CU_TestInfo tests[] = {
    {"key table", test_key_table},
    {"defaults from the table", test_defaults},
    {"every default is a valid value", test_defaults_accepted},
    {"resolve fills preset values", test_resolve_presets},
    {"valid file: comments, sections, units, bools, enums, list", test_valid_file},
    {"SI prefixes and units", test_units},
    {"booleans", test_booleans},
    {"workload.causal", test_causal_key},
    {"enums and their names", test_enums},
    {"u64 seed and lists", test_seed_and_lists},
    {"string keys", test_strings},
    {"spr_error_prefix", test_error_prefix},
    {"qkv workload keys", test_qkv_keys},
    {"missing or unreadable file: SPR_EIO", test_missing_file},
    {"syntax error", test_syntax_error},
    {"unknown section or key", test_unknown_section_and_key},
    {"unknown section without keys", test_unknown_empty_section},
    {"duplicate key", test_duplicate_key},
    {"malformed numbers", test_bad_numbers},
    {"values out of range", test_out_of_range},
    {"wrong units", test_bad_units},
    {"bad bool, enum, seed", test_bad_bool_enum_seed},
    {"bad lists and empty values", test_bad_lists_and_empty},
    {"cross-key errors (resolve)", test_cross_key_errors},
    {"error names the right line", test_error_line},
    {"first error is reported with its line", test_first_error_reported},
    {"spr_config_set origin", test_set_origin},
    {"spr_config_format", test_format},
    {"spr_config_to_ini text", test_to_ini_text},
    {"round trip through to_ini", test_round_trip},
    {"round trip of 12 per-layer values", test_round_trip_long_list},
    {"lines of any length", test_long_lines},
    {"spr_config_parse with an extra section", test_parse_extra_section},
    {"sources: a text, overrides", test_src_overrides},
    {"overrides of an extra section", test_src_extra_overrides},
    CU_TEST_INFO_NULL,
};

int main(void) { return spr_test_run("config", tests); }
