/* test_ledger.c - the energy and cycles ledger (core/spr_ledger.c) and its
 * [energy] / [timing] config keys.  Expected values are written out by hand
 * from the figures documented in docs/energy.md (SPRINT 65 nm, Horowitz
 * 45 nm times 65/45), never read back from the code under test.  Every
 * error path is provoked and its message checked. */
#include "config.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_attend.h"
#include "spr_baselines.h"
#include "spr_ledger.h"
#include "spr_params.h"
#include "spr_result.h"
#include "spr_synth.h"
#include "spr_test.h"
#include "spr_wear.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define S45 (65.0 / 45.0) /* the documented scaling rule, 45 nm -> 65 nm */
#define PJ 1e-12

static int close_rel(double a, double b, double rel) {
  return fabs(a - b) <= rel * fabs(b);
}

#define ASSERT_REL(a, b)                                                       \
  do {                                                                         \
    double a_ = (a), b_ = (b);                                                 \
    if (!close_rel(a_, b_, 1e-12))                                             \
      fprintf(stderr, "\n  %s = %.17g, want %.17g", #a, a_, b_);               \
    CU_ASSERT(close_rel(a_, b_, 1e-12));                                       \
  } while (0)

static spr_energy_params defaults(void) {
  spr_config c;
  spr_config_default(&c);
  return c.energy;
}

/* --- defaults are the documented figures ----------------------------------- */

static void test_defaults(void) {
  spr_config c;
  memset(&c, 0x5A, sizeof c);
  spr_config_default(&c);
  const spr_energy_params *e = &c.energy;
  /* SPRINT (MICRO 2022), 65 nm */
  ASSERT_REL(e->reram_write_J_per_bit, 24.4e-12);
  ASSERT_REL(e->reram_read_J_per_bit, 3.1e-12);
  ASSERT_REL(e->imc_mac_J, 0.10e-12);
  ASSERT_REL(e->clock_Hz, 1e9);
  ASSERT_REL(e->threshold_cycles, 8);
  /* design choices */
  ASSERT_REL(e->cmp_J, 0.05e-12);
  ASSERT_REL(e->sram_write_ratio, 1);
  ASSERT_REL(e->reram_read_bytes_per_cycle, 64);
  ASSERT_REL(e->mac_units, 64);
  ASSERT_REL(e->softmax_units, 1);
  ASSERT_REL(e->pred_units, 256);
  CU_ASSERT_EQUAL(e->overlap, 1);
  /* Horowitz (ISSCC 2014), 45 nm, and what is built from it */
  ASSERT_REL(e->digital_scale, 1.4444444444444444);
  ASSERT_REL(e->sram_8k_J_per_word, 10e-12);
  ASSERT_REL(e->sram_32k_J_per_word, 20e-12);
  ASSERT_REL(e->sram_1m_J_per_word, 100e-12);
  ASSERT_REL(e->prune_read_J_per_bit, 10e-12 / 64);
  ASSERT_REL(e->mac8_J, (0.2 + 0.1) * PJ);             /* 8b mult + 32b add */
  ASSERT_REL(e->v_mac_J, (0.2 + 0.1) * PJ);
  ASSERT_REL(e->exp_J, 4 * (1.1 + 0.4) * PJ);          /* 4 fp16 FMAs */
  ASSERT_REL(e->div_J, 3 * (1.1 + 0.4) * PJ);          /* 3 fp16 FMAs */
  ASSERT_REL(e->mac4_J, (0.2 * 16 / 64 + 2 * 0.03) * PJ);
  ASSERT_REL(e->bitmac_J, (0.2 * 8 / 64 + 2 * 0.03) * PJ);
  ASSERT_REL(e->pred_add_J, 0.4e-12);
  ASSERT_REL(e->pred_mul_J, 1.1e-12);
  ASSERT_REL(e->pred_cmp_J, 0.1e-12);

  spr_energy_params d;
  memset(&d, 0x5A, sizeof d);
  spr_energy_default(&d);
  CU_ASSERT_EQUAL(memcmp(&d, e, sizeof d), 0);
  CU_ASSERT_EQUAL(spr_energy_check(&d), 0);
}

/* --- config keys parse with units ------------------------------------------ */

static void test_config_units(void) {
  static const struct {
    const char *sec, *key, *val;
    double want;
    size_t off;
  } t[] = {
#define O(f) offsetof(spr_energy_params, f)
      {"energy", "reram_read_per_bit", "3.1 pJ", 3.1e-12, O(reram_read_J_per_bit)},
      {"energy", "reram_write_per_bit", "24.4pJ", 24.4e-12, O(reram_write_J_per_bit)},
      {"energy", "reram_write_per_bit", "0.0305 nJ", 30.5e-12, O(reram_write_J_per_bit)},
      {"energy", "imc_mac_per_op", "125 fJ", 0.125e-12, O(imc_mac_J)},
      {"energy", "cmp_per_decision", "3.7e-14 J", 3.7e-14, O(cmp_J)},
      {"energy", "sram_32k_read_per_word", "22.5 pJ", 22.5e-12, O(sram_32k_J_per_word)},
      {"energy", "digital_scale", "1.235", 1.235, O(digital_scale)},
      {"energy", "exp_per_op", "2.385 pJ", 2.385e-12, O(exp_J)},
      {"timing", "clock", "500 MHz", 5e8, O(clock_Hz)},
      {"timing", "clock", "1.25 GHz", 1.25e9, O(clock_Hz)},
      {"timing", "clock", "2e9 Hz", 2e9, O(clock_Hz)},
      {"timing", "threshold_cycles", "7.5", 7.5, O(threshold_cycles)},
      {"timing", "reram_read_bytes_per_cycle", "12.8", 12.8, O(reram_read_bytes_per_cycle)},
      {"timing", "mac_units", "128", 128, O(mac_units)},
#undef O
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    spr_config c;
    spr_config_default(&c);
    int rc = spr_config_set(&c, t[i].sec, t[i].key, t[i].val, "ledger-test");
    if (rc) fprintf(stderr, "\n  %s.%s = '%s': %s", t[i].sec, t[i].key, t[i].val, spr_errmsg());
    CU_ASSERT_EQUAL(rc, 0);
    double got = *(const double *)((const char *)&c.energy + t[i].off);
    if (!close_rel(got, t[i].want, 1e-12))
      fprintf(stderr, "\n  %s.%s = '%s' gave %.17g", t[i].sec, t[i].key, t[i].val, got);
    CU_ASSERT(close_rel(got, t[i].want, 1e-12));
  }
  spr_config c;
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_set(&c, "timing", "overlap", "off", "t"), 0);
  CU_ASSERT_EQUAL(c.energy.overlap, 0);

  /* wrong units and out-of-range values are refused with the key named */
  static const struct {
    const char *sec, *key, *val, *needle;
  } bad[] = {
      {"energy", "reram_read_per_bit", "3.1 pS", "expected J"},
      {"energy", "reram_read_per_bit", "3.1 pW", "expected J"},
      {"energy", "reram_read_per_bit", "-3.1 pJ", "out of range"},
      {"energy", "digital_scale", "1.4 J", "dimensionless"},
      {"timing", "clock", "1 GJ", "expected Hz"},
      {"timing", "clock", "0", "out of range"},
      {"timing", "reram_read_bytes_per_cycle", "0", "out of range"},
      {"timing", "threshold_cycles", "8 cycles", "dimensionless"},
      {"timing", "mac_units", "0", "out of range"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    spr_config_default(&c);
    spr_error_clear();
    int rc = spr_config_set(&c, bad[i].sec, bad[i].key, bad[i].val, "ledger-test");
    CU_ASSERT_EQUAL(rc, SPR_ECONFIG);
    char key[96];
    snprintf(key, sizeof key, "'%s.%s'", bad[i].sec, bad[i].key);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "ledger-test: ");
    SPR_ASSERT_CONTAINS(spr_errmsg(), key);
    SPR_ASSERT_CONTAINS(spr_errmsg(), bad[i].val);
    SPR_ASSERT_CONTAINS(spr_errmsg(), bad[i].needle);
  }
}

/* An INI file with both sections, through spr_config_load. */
static void test_config_file(void) {
  char path[512];
  spr_test_path(path, sizeof path, "ledger", ".ini");
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("[energy]\n"
        "reram_read_per_bit = 3.1 pJ\n"
        "reram_write_per_bit = 12.2 pJ ; half the paper's figure\n"
        "sram_8k_read_per_word = 7.5 pJ\n"
        "[timing]\n"
        "clock = 800 MHz\n"
        "reram_read_bytes_per_cycle = 32\n"
        "overlap = no\n",
        f);
  CU_ASSERT_EQUAL(fclose(f), 0);
  spr_config c;
  spr_config_default(&c);
  int rc = spr_config_load(&c, path);
  if (rc) fprintf(stderr, "\n  %s", spr_errmsg());
  CU_ASSERT_EQUAL(rc, 0);
  ASSERT_REL(c.energy.reram_read_J_per_bit, 3.1e-12);
  ASSERT_REL(c.energy.reram_write_J_per_bit, 12.2e-12);
  ASSERT_REL(c.energy.sram_8k_J_per_word, 7.5e-12);
  ASSERT_REL(c.energy.sram_32k_J_per_word, 20e-12); /* untouched */
  ASSERT_REL(c.energy.clock_Hz, 8e8);
  ASSERT_REL(c.energy.reram_read_bytes_per_cycle, 32);
  CU_ASSERT_EQUAL(c.energy.overlap, 0);

  /* wrong unit in a file: file, line, key, value */
  f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("[timing]\nmac_units = 32\nclock = 1 GV\n", f);
  CU_ASSERT_EQUAL(fclose(f), 0);
  spr_config_default(&c);
  CU_ASSERT_EQUAL(spr_config_load(&c, path), SPR_ECONFIG);
  char pre[600];
  snprintf(pre, sizeof pre, "%s:3: ", path);
  SPR_ASSERT_CONTAINS(spr_errmsg(), pre);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "timing.clock");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "1 GV");
  remove(path);
}

/* --- SRAM energy per access: log-size interpolation --------------------- */

static void test_sram_interpolation(void) {
  spr_energy_params e = defaults();
  static const struct {
    int64_t bytes;
    double pj45; /* hand values of the 45 nm rule */
  } t[] = {
      {1, 10},          /* below 8 KB: the 8 KB entry */
      {4096, 10},
      {8192, 10},
      {16384, 15},      /* 10 + 10 ln2 / ln4 */
      {24576, 17.924812503605781}, /* 10 + 10 ln3 / ln4 */
      {32768, 20},
      {65536, 36},      /* 20 + 80 ln2 / ln32 */
      {100000, 45.754247590989311}, /* 20 + 80 log2(100000/32768) / 5 */
      {1048576, 100},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    double J = -1;
    CU_ASSERT_EQUAL(spr_ledger_sram_word_J(&e, t[i].bytes, &J), 0);
    if (!close_rel(J, t[i].pj45 * PJ * S45, 1e-12))
      fprintf(stderr, "\n  %lld bytes: %.17g J, want %.17g", (long long)t[i].bytes, J,
              t[i].pj45 * PJ * S45);
    CU_ASSERT(close_rel(J, t[i].pj45 * PJ * S45, 1e-12));
  }
  /* user table and scale: 16 KB halfway (in ln size) between 8 and 32 KB */
  e.sram_8k_J_per_word = 6e-12;
  e.sram_32k_J_per_word = 13e-12;
  e.digital_scale = 1.25;
  double J;
  CU_ASSERT_EQUAL(spr_ledger_sram_word_J(&e, 16384, &J), 0);
  ASSERT_REL(J, 9.5e-12 * 1.25);
}

/* --- a crafted head priced by hand ------------------------------------------ */

/* 3 queries over 8 keys (d = 64, 8-bit K and V, token 128 B = 16 words),
 * 7 survivors in all, 5 tokens fetched, 16 KB buffer. */
static spr_ledger_counts crafted(void) {
  spr_ledger_counts c;
  memset(&c, 0, sizeof c);
  c.reram_bits_written = 4096; /* 8 keys x 64 x 8 bits */
  c.xbar_cells_written = 1024; /* 8 keys x 64 x 2 cells */
  c.xbar_bits_written = 4096;  /* x 4 bits */
  c.imc_queries = 3;
  c.imc_macs = 1536;           /* 3 x 8 x 64 */
  c.cmp_decisions = 24;
  c.prune_bits_read = 24;
  c.reram_bits_read = 5120;    /* 5 tokens x 128 B x 8 */
  c.sram_words_written = 80;   /* 5 x 16 */
  c.sram_words_read = 112;     /* 7 x 16 */
  c.buffer_bytes = 16384;
  c.score_macs = 448;          /* 7 x 64 */
  c.exps = 7;
  c.divs = 7;
  c.v_macs = 448;
  return c;
}

static void test_price_by_hand(void) {
  spr_energy_params e = defaults();
  spr_ledger_counts c = crafted();
  spr_ledger_result r;
  memset(&r, 0x5A, sizeof r);
  CU_ASSERT_EQUAL_FATAL(spr_ledger_price(&e, &c, &r), 0);
  const double *E = r.energy_J;
  ASSERT_REL(E[SPR_LEDGER_E_RERAM_WRITE], 99942.4 * PJ); /* 4096 x 24.4 */
  ASSERT_REL(E[SPR_LEDGER_E_XBAR_WRITE], 99942.4 * PJ); /* 4096 x 24.4 + 1024 x 0 */
  ASSERT_REL(E[SPR_LEDGER_E_IMC_MAC], 153.6 * PJ);      /* 1536 x 0.1 */
  ASSERT_REL(E[SPR_LEDGER_E_CMP], 1.2 * PJ);            /* 24 x 0.05 */
  ASSERT_REL(E[SPR_LEDGER_E_PRUNE_READ], 3.75 * S45 * PJ); /* 24 x 10/64 */
  ASSERT_REL(E[SPR_LEDGER_E_RERAM_READ], 15872 * PJ);   /* 5120 x 3.1 */
  ASSERT_REL(E[SPR_LEDGER_E_SRAM_WRITE], 1200 * S45 * PJ); /* 80 x 15 */
  ASSERT_REL(E[SPR_LEDGER_E_SRAM_READ], 1680 * S45 * PJ);  /* 112 x 15 */
  ASSERT_REL(E[SPR_LEDGER_E_SCORE_MAC], 134.4 * S45 * PJ); /* 448 x 0.3 */
  ASSERT_REL(E[SPR_LEDGER_E_EXP], 42 * S45 * PJ);          /* 7 x 6 */
  ASSERT_REL(E[SPR_LEDGER_E_DIV], 31.5 * S45 * PJ);        /* 7 x 4.5 */
  ASSERT_REL(E[SPR_LEDGER_E_V_MAC], 134.4 * S45 * PJ);
  for (int i = SPR_LEDGER_E_PRED_MAC8; i <= SPR_LEDGER_E_PRED_CMP; i++)
    CU_ASSERT_EQUAL(E[i], 0);
  /* 215911.6 pJ as given + 3226.05 pJ at 45 nm x 65/45 = 220571.45 pJ */
  ASSERT_REL(r.total_J, (215911.6 + 3226.05 * S45) * PJ);
  CU_ASSERT(fabs(r.total_J - 220571.45e-12) < 0.01e-12);
  /* a per-cell price adds cells x price: 1024 x 3.5 pJ */
  e.xbar_write_J_per_cell = 3.5e-12;
  CU_ASSERT_EQUAL_FATAL(spr_ledger_price(&e, &c, &r), 0);
  ASSERT_REL(r.energy_J[SPR_LEDGER_E_XBAR_WRITE], (99942.4 + 3584) * PJ);
  e.xbar_write_J_per_cell = 0;

  /* cycles: threshold 3 x 8, fetch 640 B / 64, score 448 / 64,
   * softmax 14 / 1, v 448 / 64 */
  ASSERT_REL(r.cycles[SPR_LEDGER_C_THRESHOLD], 24);
  CU_ASSERT_EQUAL(r.cycles[SPR_LEDGER_C_PRED], 0);
  ASSERT_REL(r.cycles[SPR_LEDGER_C_FETCH], 10);
  ASSERT_REL(r.cycles[SPR_LEDGER_C_SCORE], 7);
  ASSERT_REL(r.cycles[SPR_LEDGER_C_SOFTMAX], 14);
  ASSERT_REL(r.cycles[SPR_LEDGER_C_V], 7);
  ASSERT_REL(r.memory_cycles, 34);
  ASSERT_REL(r.compute_cycles, 28);
  ASSERT_REL(r.serial_cycles, 62);
  ASSERT_REL(r.total_cycles, 62);
  ASSERT_REL(r.time_s, 62e-9);
  CU_ASSERT_EQUAL(r.queries, 1);

  /* other constants: 2.5 pJ/bit read, 800 MHz, 32 B per cycle */
  e.reram_read_J_per_bit = 2.5e-12;
  e.clock_Hz = 8e8;
  e.reram_read_bytes_per_cycle = 32;
  CU_ASSERT_EQUAL_FATAL(spr_ledger_price(&e, &c, &r), 0);
  ASSERT_REL(r.energy_J[SPR_LEDGER_E_RERAM_READ], 12800 * PJ);
  ASSERT_REL(r.cycles[SPR_LEDGER_C_FETCH], 20);
  ASSERT_REL(r.total_cycles, 72);
  ASSERT_REL(r.time_s, 90e-9); /* 72 / 0.8 GHz */
}

/* Prediction costs of the digital baselines, by hand. */
static void test_prediction(void) {
  spr_energy_params e = defaults();
  spr_ledger_counts c;
  memset(&c, 0, sizeof c);
  /* Sanger-like at n = 4, d = 8 (docs/baselines.md counts) */
  c.pred_mac4 = 128; /* 4 x 4 x 8 */
  c.pred_adds = 28;  /* 16 + 12 */
  c.pred_muls = 20;  /* 16 + 4 */
  c.pred_cmps = 28;  /* 12 + 16 */
  c.pred_exps = 16;
  spr_ledger_result r;
  CU_ASSERT_EQUAL_FATAL(spr_ledger_price(&e, &c, &r), 0);
  ASSERT_REL(r.energy_J[SPR_LEDGER_E_PRED_MAC4], 14.08 * S45 * PJ); /* 128 x 0.11 */
  ASSERT_REL(r.energy_J[SPR_LEDGER_E_PRED_ADD], 11.2 * S45 * PJ);   /* 28 x 0.4 */
  ASSERT_REL(r.energy_J[SPR_LEDGER_E_PRED_MUL], 22 * S45 * PJ);     /* 20 x 1.1 */
  ASSERT_REL(r.energy_J[SPR_LEDGER_E_PRED_CMP], 2.8 * S45 * PJ);    /* 28 x 0.1 */
  ASSERT_REL(r.energy_J[SPR_LEDGER_E_PRED_EXP], 96 * S45 * PJ);     /* 16 x 6 */
  ASSERT_REL(r.total_J, 146.08 * S45 * PJ);
  /* (128 + 28 + 20 + 28) / 256 + 16 / 1 */
  ASSERT_REL(r.cycles[SPR_LEDGER_C_PRED], 16.796875);
  ASSERT_REL(r.memory_cycles, 16.796875);
  CU_ASSERT_EQUAL(r.compute_cycles, 0);

  /* top-k and LeOPArd-like operations */
  memset(&c, 0, sizeof c);
  c.pred_mac8 = 640;     /* 2.5 cycles on 256 prediction units */
  c.pred_bitmacs = 1536; /* 6 cycles on the same units */
  CU_ASSERT_EQUAL_FATAL(spr_ledger_price(&e, &c, &r), 0);
  ASSERT_REL(r.energy_J[SPR_LEDGER_E_PRED_MAC8], 192 * S45 * PJ);    /* 640 x 0.3 */
  ASSERT_REL(r.energy_J[SPR_LEDGER_E_PRED_BITMAC], 130.56 * S45 * PJ); /* 1536 x 0.085 */
  ASSERT_REL(r.cycles[SPR_LEDGER_C_PRED], 8.5);
  ASSERT_REL(r.total_cycles, 8.5);
}

/* Dense and pruned on the same memory system and digital units: n = 8,
 * d = 4, 8-bit K and V (token 8 B = one word).  Dense: every pair, the
 * 8 tokens fetched once.  SPRINT: 2 survivors per query, 5 tokens
 * fetched, in-memory scoring of the 64 pairs. */
static void test_dense_vs_pruned(void) {
  spr_energy_params e = defaults();
  spr_ledger_counts d, p;
  memset(&d, 0, sizeof d);
  d.reram_bits_written = 256; /* 8 keys x 4 x 8 bits, both schemes */
  d.reram_bits_read = 512;    /* 8 tokens x 64 bits */
  d.sram_words_written = 8;
  d.sram_words_read = 64;     /* 64 uses */
  d.buffer_bytes = 16384;
  d.score_macs = 256;         /* 64 x 4 */
  d.exps = 64;
  d.divs = 64;
  d.v_macs = 256;
  memset(&p, 0, sizeof p);
  p.reram_bits_written = 256;
  p.imc_queries = 8;
  p.imc_macs = 256;           /* 8 x 8 x 4 */
  p.cmp_decisions = 64;
  p.prune_bits_read = 64;
  p.reram_bits_read = 320;    /* 5 tokens */
  p.sram_words_written = 5;
  p.sram_words_read = 16;
  p.buffer_bytes = 16384;
  p.score_macs = 64;
  p.exps = 16;
  p.divs = 16;
  p.v_macs = 64;
  spr_ledger_result rd, rp;
  CU_ASSERT_EQUAL_FATAL(spr_ledger_price(&e, &d, &rd), 0);
  CU_ASSERT_EQUAL_FATAL(spr_ledger_price(&e, &p, &rp), 0);
  /* dense: 6246.4 + 1587.2 pJ as given; 1080 + 76.8 + 384 + 288 + 76.8
   * pJ at 45 nm.  SPRINT: 6246.4 + 25.6 + 3.2 + 992; 10 + 315 + 19.2 + 96
   * + 72 + 19.2 */
  double Ed = (7833.6 + 1905.6 * S45) * PJ, Ep = (7267.2 + 531.4 * S45) * PJ;
  ASSERT_REL(rd.total_J, Ed);
  ASSERT_REL(rp.total_J, Ep);
  ASSERT_REL(rd.total_J / rp.total_J, 1.3175390317093745);
  /* cycles: dense 1 + 4 + 128 + 4; SPRINT 64 + 0.625 + 1 + 32 + 1 */
  ASSERT_REL(rd.total_cycles, 137);
  ASSERT_REL(rp.total_cycles, 98.625);
  ASSERT_REL(rd.total_cycles / rp.total_cycles, 137 / 98.625);
  /* without the (shared) key writes the reduction is larger */
  d.reram_bits_written = p.reram_bits_written = 0;
  CU_ASSERT_EQUAL_FATAL(spr_ledger_price(&e, &d, &rd), 0);
  CU_ASSERT_EQUAL_FATAL(spr_ledger_price(&e, &p, &rp), 0);
  ASSERT_REL(rd.total_J / rp.total_J, (1587.2 + 1905.6 * S45) / (1020.8 + 531.4 * S45));
}

/* --- overlap of fetch and compute between queries ------------------------ */

/* Three queries whose stages are, at the defaults (8-cycle threshold,
 * 64 B per cycle, 64 MAC units, 1 softmax op per cycle):
 *   A = 8 + 2, 8 + 0, 8 + 16      C = 2 + 2 + 1, 4 + 8 + 4, 1 + 2 + 1 */
static void three_queries(spr_ledger_counts q[3]) {
  memset(q, 0, 3 * sizeof q[0]);
  for (int i = 0; i < 3; i++) q[i].imc_queries = 1;
  q[0].reram_bits_read = 1024; /* 128 B */
  q[0].score_macs = 128;
  q[0].exps = q[0].divs = 1;
  q[0].v_macs = 64;
  q[1].score_macs = 256;
  q[1].exps = q[1].divs = 4;
  q[1].v_macs = 256;
  q[2].reram_bits_read = 8192; /* 1024 B */
  q[2].score_macs = 64;
  q[2].exps = q[2].divs = 1;
  q[2].v_macs = 64;
}

static void test_overlap(void) {
  spr_energy_params e = defaults();
  spr_ledger_counts q[3];
  three_queries(q);
  spr_ledger_acc a;
  CU_ASSERT_EQUAL_FATAL(spr_ledger_acc_init(&a, &e), 0);
  for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(spr_ledger_acc_step(&a, &q[i]), 0);
  spr_ledger_result r;
  CU_ASSERT_EQUAL_FATAL(spr_ledger_acc_result(&a, &r), 0);
  /* A = 10, 8, 24; C = 5, 16, 4:
   * total = A0 + max(A1, C0) + max(A2, C1) + C2 = 10 + 8 + 24 + 4 */
  ASSERT_REL(r.total_cycles, 46);
  ASSERT_REL(r.memory_cycles, 42);
  ASSERT_REL(r.compute_cycles, 25);
  ASSERT_REL(r.serial_cycles, 67);
  ASSERT_REL(r.time_s, 46e-9);
  CU_ASSERT_EQUAL(r.queries, 3);
  ASSERT_REL(r.cycles[SPR_LEDGER_C_THRESHOLD], 24);
  ASSERT_REL(r.cycles[SPR_LEDGER_C_FETCH], 18);
  ASSERT_REL(r.cycles[SPR_LEDGER_C_SCORE], 7);
  ASSERT_REL(r.cycles[SPR_LEDGER_C_SOFTMAX], 12); /* (1+1) + (4+4) + (1+1) */
  ASSERT_REL(r.cycles[SPR_LEDGER_C_V], 6);
  /* energy of the steps = energy of the summed counts */
  spr_ledger_counts sum;
  memset(&sum, 0, sizeof sum);
  for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(spr_ledger_add(&sum, &q[i]), 0);
  CU_ASSERT_EQUAL(sum.reram_bits_read, 9216);
  CU_ASSERT_EQUAL(sum.v_macs, 384);
  spr_ledger_result whole;
  CU_ASSERT_EQUAL_FATAL(spr_ledger_price(&e, &sum, &whole), 0);
  for (int i = 0; i < SPR_LEDGER_NE; i++) CU_ASSERT_EQUAL(r.energy_J[i], whole.energy_J[i]);
  ASSERT_REL(whole.total_cycles, 67); /* priced at once: no overlap */
  /* 9216 bits x 3.1 pJ + 3 x 8 x 0 in-memory MACs + 6 exps + 6 divs + ... */
  ASSERT_REL(r.total_J, (28569.6 + (448 * 0.3 + 6 * 6 + 6 * 4.5 + 384 * 0.3) * S45) * PJ);

  /* the other branch of each max: C0 = 5 > A1 when A1 = 4 */
  e.threshold_cycles = 2; /* A = 4, 2, 18 */
  CU_ASSERT_EQUAL_FATAL(spr_ledger_acc_init(&a, &e), 0);
  for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(spr_ledger_acc_step(&a, &q[i]), 0);
  CU_ASSERT_EQUAL_FATAL(spr_ledger_acc_result(&a, &r), 0);
  ASSERT_REL(r.total_cycles, 4 + 5 + 18 + 4); /* max(2,5) + max(18,16) */

  /* overlap off: the serial sum; clock 1.25 GHz */
  e = defaults();
  e.overlap = 0;
  e.clock_Hz = 1.25e9;
  CU_ASSERT_EQUAL_FATAL(spr_ledger_acc_init(&a, &e), 0);
  for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(spr_ledger_acc_step(&a, &q[i]), 0);
  CU_ASSERT_EQUAL_FATAL(spr_ledger_acc_result(&a, &r), 0);
  ASSERT_REL(r.total_cycles, 67);
  ASSERT_REL(r.time_s, 53.6e-9);

  /* no step: zero latency; one step equals spr_ledger_price */
  e = defaults();
  CU_ASSERT_EQUAL_FATAL(spr_ledger_acc_init(&a, &e), 0);
  CU_ASSERT_EQUAL_FATAL(spr_ledger_acc_result(&a, &r), 0);
  CU_ASSERT_EQUAL(r.total_cycles, 0);
  CU_ASSERT_EQUAL(r.total_J, 0);
  CU_ASSERT_EQUAL(r.queries, 0);
  spr_ledger_counts c = crafted();
  CU_ASSERT_EQUAL(spr_ledger_acc_step(&a, &c), 0);
  CU_ASSERT_EQUAL_FATAL(spr_ledger_acc_result(&a, &r), 0);
  CU_ASSERT_EQUAL_FATAL(spr_ledger_price(&e, &c, &whole), 0);
  ASSERT_REL(r.total_cycles, 62);
  ASSERT_REL(r.total_J, whole.total_J);
}

/* --- names --------------------------------------------------------------- */

static void test_names(void) {
  CU_ASSERT_STRING_EQUAL(spr_ledger_energy_name(SPR_LEDGER_E_RERAM_WRITE), "reram_write");
  CU_ASSERT_STRING_EQUAL(spr_ledger_energy_name(SPR_LEDGER_E_RERAM_READ), "reram_read");
  CU_ASSERT_STRING_EQUAL(spr_ledger_energy_name(SPR_LEDGER_E_V_MAC), "v_mac");
  CU_ASSERT_STRING_EQUAL(spr_ledger_energy_name(SPR_LEDGER_E_PRED_CMP), "pred_cmp");
  CU_ASSERT_STRING_EQUAL(spr_ledger_cycle_name(SPR_LEDGER_C_THRESHOLD), "threshold");
  CU_ASSERT_STRING_EQUAL(spr_ledger_cycle_name(SPR_LEDGER_C_FETCH), "fetch");
  CU_ASSERT_STRING_EQUAL(spr_ledger_cycle_name(SPR_LEDGER_C_V), "v");
  CU_ASSERT_PTR_NULL(spr_ledger_energy_name(-1));
  CU_ASSERT_PTR_NULL(spr_ledger_energy_name(SPR_LEDGER_NE));
  CU_ASSERT_PTR_NULL(spr_ledger_cycle_name(-1));
  CU_ASSERT_PTR_NULL(spr_ledger_cycle_name(SPR_LEDGER_NC));
  for (int i = 0; i < SPR_LEDGER_NE; i++) {
    CU_ASSERT_PTR_NOT_NULL(spr_ledger_energy_name(i));
    for (int j = 0; j < i; j++)
      CU_ASSERT(strcmp(spr_ledger_energy_name(i), spr_ledger_energy_name(j)) != 0);
  }
  for (int i = 0; i < SPR_LEDGER_NC; i++) CU_ASSERT_PTR_NOT_NULL(spr_ledger_cycle_name(i));
}

/* --- every error path ----------------------------------------------------- */

/* rc must be SPR_EINVAL and the message must contain the needles. */
static void expect(int rc, ...) {
  CU_ASSERT_EQUAL(rc, SPR_EINVAL);
  va_list ap;
  va_start(ap, rc);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL;) SPR_ASSERT_CONTAINS(spr_errmsg(), s);
  va_end(ap);
  spr_error_clear();
}

static void test_errors_price(void) {
  spr_energy_params e = defaults();
  spr_ledger_counts c = crafted();
  spr_ledger_result r;
  expect(spr_ledger_price(NULL, &c, &r), "spr_ledger_price", "NULL argument 'e'", NULL);
  expect(spr_ledger_price(&e, NULL, &r), "spr_ledger_price", "NULL argument 'c'", NULL);
  expect(spr_ledger_price(&e, &c, NULL), "spr_ledger_price", "NULL argument 'out'", NULL);

  /* every count, negative */
  static const size_t offs[] = {
#define O(f) offsetof(spr_ledger_counts, f)
      O(reram_bits_written), O(xbar_cells_written), O(xbar_bits_written), O(imc_queries), O(imc_macs), O(cmp_decisions),
      O(prune_bits_read), O(reram_bits_read), O(sram_words_written),
      O(sram_words_read), O(buffer_bytes), O(score_macs), O(exps), O(divs),
      O(v_macs), O(pred_mac8), O(pred_mac4), O(pred_bitmacs), O(pred_adds),
      O(pred_muls), O(pred_exps), O(pred_cmps),
#undef O
  };
  static const char *names[] = {
      "reram_bits_written", "xbar_cells_written", "xbar_bits_written", "imc_queries", "imc_macs", "cmp_decisions",
      "prune_bits_read", "reram_bits_read", "sram_words_written",
      "sram_words_read", "buffer_bytes", "score_macs", "exps", "divs",
      "v_macs", "pred_mac8", "pred_mac4", "pred_bitmacs", "pred_adds",
      "pred_muls", "pred_exps", "pred_cmps",
  };
  CU_ASSERT_EQUAL(sizeof offs / sizeof offs[0], sizeof(spr_ledger_counts) / sizeof(int64_t));
  for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
    spr_ledger_counts b = crafted();
    *(int64_t *)((char *)&b + offs[i]) = -3;
    char want[96];
    snprintf(want, sizeof want, "count '%s' is negative (-3)", names[i]);
    expect(spr_ledger_price(&e, &b, &r), "spr_ledger_price", want, NULL);
  }

  /* SRAM accesses need a buffer of 1 .. 1 MB */
  c.buffer_bytes = 0;
  expect(spr_ledger_price(&e, &c, &r), "buffer_bytes 0 outside 1 .. 1048576", "112 words read", NULL);
  c.buffer_bytes = 2097152;
  expect(spr_ledger_price(&e, &c, &r), "buffer_bytes 2097152 outside", NULL);
  c.sram_words_read = c.sram_words_written = 0; /* no SRAM: no buffer needed */
  c.buffer_bytes = 0;
  CU_ASSERT_EQUAL(spr_ledger_price(&e, &c, &r), 0);

  /* parameters: zero clock, bandwidth, unit rates; negative energies; NaN */
  c = crafted();
  spr_energy_params b = e;
  b.clock_Hz = 0;
  expect(spr_ledger_price(&b, &c, &r), "parameter 'timing.clock' must be > 0 (got 0 Hz)", NULL);
  b = e;
  b.reram_read_bytes_per_cycle = 0;
  expect(spr_ledger_price(&b, &c, &r), "'timing.reram_read_bytes_per_cycle' must be > 0 (got 0)", NULL);
  b = e;
  b.mac_units = -64;
  expect(spr_ledger_price(&b, &c, &r), "'timing.mac_units' must be > 0 (got -64)", NULL);
  b = e;
  b.softmax_units = 0;
  expect(spr_ledger_price(&b, &c, &r), "'timing.softmax_units' must be > 0", NULL);
  b = e;
  b.pred_units = 0;
  expect(spr_ledger_price(&b, &c, &r), "'timing.pred_units' must be > 0", NULL);
  b = e;
  b.threshold_cycles = -8;
  expect(spr_ledger_price(&b, &c, &r), "'timing.threshold_cycles' must be >= 0 (got -8)", NULL);
  b = e;
  b.reram_read_J_per_bit = -3.1e-12;
  expect(spr_ledger_price(&b, &c, &r), "'energy.reram_read_per_bit' must be >= 0 (got -3.1e-12 J)", NULL);
  b = e;
  b.xbar_write_J_per_cell = -2e-12;
  expect(spr_ledger_price(&b, &c, &r), "'energy.xbar_write_per_cell' must be >= 0 (got -2e-12 J)", NULL);
  b = e;
  b.xbar_write_J_per_bit = NAN;
  expect(spr_ledger_price(&b, &c, &r), "'energy.xbar_write_per_bit' is not finite", NULL);
  b = e;
  b.digital_scale = -1.5;
  expect(spr_ledger_price(&b, &c, &r), "'energy.digital_scale' must be >= 0 (got -1.5)", NULL);
  b = e;
  b.exp_J = NAN;
  expect(spr_ledger_price(&b, &c, &r), "'energy.exp_per_op' is not finite", NULL);
  b = e;
  b.clock_Hz = INFINITY;
  expect(spr_ledger_price(&b, &c, &r), "'timing.clock' is not finite", NULL);
  b = e;
  b.pred_cmp_J = -1e-15;
  expect(spr_energy_check(&b), "spr_energy_check", "energy.pred_cmp_per_op", NULL);
  expect(spr_energy_check(NULL), "spr_energy_check", "NULL argument 'e'", NULL);
  /* zero energies are legal (a component switched off) */
  b = e;
  b.reram_write_J_per_bit = 0;
  CU_ASSERT_EQUAL(spr_ledger_price(&b, &c, &r), 0);
  CU_ASSERT_EQUAL(r.energy_J[SPR_LEDGER_E_RERAM_WRITE], 0);

  double J;
  expect(spr_ledger_sram_word_J(NULL, 16384, &J), "spr_ledger_sram_word_J", "NULL argument 'e'", NULL);
  expect(spr_ledger_sram_word_J(&e, 16384, NULL), "NULL argument 'J'", NULL);
  expect(spr_ledger_sram_word_J(&e, 0, &J), "buffer_bytes 0 outside 1 .. 1048576", NULL);
  expect(spr_ledger_sram_word_J(&e, 1048577, &J), "buffer_bytes 1048577", "1 MB", NULL);
  b = e;
  b.sram_1m_J_per_word = NAN;
  expect(spr_ledger_sram_word_J(&b, 65536, &J), "energy.sram_1m_read_per_word", NULL);
}

/* Steps 1-4 of spr_attend on head 0 of layer 0 of c's synthetic workload. */
static void attend_head(const spr_config *c, spr_attend_head *h, spr_attend_ws *w,
                        spr_head_result *res) {
  CU_ASSERT_FATAL(spr_synth_head(&c->wl, c->seed, 0, 0, h->Q, h->K, h->V) == 0);
  CU_ASSERT_FATAL(spr_attend_ideal(c, 0, 0, h, w, res) == 0);
  spr_attend_range(c, h, 1, res);
  CU_ASSERT_FATAL(spr_attend_count(c, h, res) == 0);
  CU_ASSERT_FATAL(spr_attend_thresholds(c, 0, h, 1, 0.0, w, res, NULL) == 0);
  CU_ASSERT_FATAL(spr_attend_analog(c, 0, 0, 0, h, w, res) == 0);
  CU_ASSERT_FATAL(spr_attend_digital(c, h, w) == 0);
}

/* A digital predictor's key operand (docs/energy.md section 9) on a
 * BERT-base head, d = 64, 16 KB buffer: at N = 128 the sequence's K (8 KB
 * at 8 bits, 4 KB at Sanger's 4) fits beside the survivors and is loaded
 * once, then read from SRAM; at N = 512 (32 KB, 16 KB) it does not and is
 * streamed from ReRAM for every query.  Causal and not.  The ReRAM bits
 * and SRAM words are written out from the formulas: survivors' tokens
 * (fetch counts of the scheme's own result) plus
 *   resident: n d kb bits loaded, P kw words read (kw = d kb / 64 words
 *             per key; LeOPArd: one word per plane read)
 *   streamed: P d kb bits (LeOPArd: its planes x d)
 * with P the pairs (n^2 or n (n + 1) / 2). */
static void test_predictor_keys(void) {
  for (int t = 0; t < 4; t++) {
    const int n = t < 2 ? 128 : 512, causal = t & 1, d = 64;
    spr_config c;
    spr_config_default(&c);
    c.wl.seq_len = n;
    c.wl.n_layers = c.wl.n_heads = 1;
    c.wl.causal = causal;
    c.seed = 2385;
    CU_ASSERT_FATAL(spr_config_resolve(&c, "test") == 0);
    spr_attend_head h;
    spr_attend_ws *w;
    CU_ASSERT_FATAL(spr_attend_head_alloc(&h, &c, n, d, 0) == 0);
    CU_ASSERT_FATAL(spr_attend_ws_alloc(&c, n, d, &w) == 0);
    spr_head_result res;
    attend_head(&c, &h, w, &res);
    const double P = causal ? n * (n + 1) / 2.0 : (double)n * n;
    double word;
    CU_ASSERT_FATAL(spr_ledger_sram_word_J(&c.energy, 16384, &word) == 0);
    const int schemes[4] = {SPR_SCHEME_ORACLE, SPR_SCHEME_TOPK, SPR_SCHEME_SANGER, SPR_SCHEME_LEOPARD};
    for (int k = 0; k < 4; k++) {
      const int sc = schemes[k];
      spr_scheme_result out;
      CU_ASSERT_FATAL(spr_attend_scheme(&c, sc, &h, w, &out, NULL) == 0);
      const int kb = sc == SPR_SCHEME_SANGER ? 4 : 8;
      const int known = sc != SPR_SCHEME_SANGER;
      const double tok = known ? 64 : 128, tokw = tok / 8;
      /* busiest query: its survivors are uses / queries at most n */
      const double kbytes = n * d * kb / 8.0;
      if (n == 128 && known) CU_ASSERT_EQUAL(out.key_resident, 1); /* 8 KB + <= 8 KB of values */
      if (n == 512) CU_ASSERT_EQUAL(out.key_resident, 0);          /* 32 KB, or 16 KB + a token */
      /* the scheme's mask from the baseline itself: its busiest query */
      int64_t lbits = 0, ms = 0;
      {
        spr_bl_ws bw;
        CU_ASSERT_FATAL(spr_bl_ws_alloc(&bw, n, d) == 0);
        const size_t rb = spr_mask_row_bytes(n);
        uint8_t *mk = malloc((size_t)n * rb);
        spr_bl_oracle_params op;
        spr_bl_oracle_default(&op);
        op.causal = causal;
        double th;
        CU_ASSERT_FATAL(spr_bl_oracle_calibrate(&op, h.Q, h.K, n, d, c.thr.keep_rate, &bw, &th, NULL) == 0);
        op.threshold = th;
        spr_bl_stats st;
        if (sc == SPR_SCHEME_ORACLE) CU_ASSERT_FATAL(spr_bl_oracle(&op, h.Q, h.K, n, d, &bw, mk, &st) == 0);
        if (sc == SPR_SCHEME_LEOPARD) {
          spr_bl_leopard_params lp = {8, 8, th, causal};
          CU_ASSERT_FATAL(spr_bl_leopard(&lp, h.Q, h.K, n, d, &bw, mk, &st) == 0);
          lbits = st.key_bits_processed;
        }
        if (sc == SPR_SCHEME_TOPK) {
          spr_bl_topk_params tp;
          spr_bl_topk_default(&tp);
          tp.keep_fraction = c.bl.topk_fraction;
          tp.causal = causal;
          CU_ASSERT_FATAL(spr_bl_topk(&tp, h.Q, h.K, n, d, &bw, mk, &st) == 0);
        }
        if (sc == SPR_SCHEME_SANGER) {
          spr_bl_sanger_params sp;
          spr_bl_sanger_default(&sp);
          sp.causal = causal;
          CU_ASSERT_FATAL(spr_bl_sanger(&sp, h.Q, h.K, n, d, &bw, mk, &st) == 0);
        }
        for (int i = 0; i < n; i++) {
          int64_t kept = 0;
          for (int j = 0; j < n; j++) kept += mk[(size_t)i * rb + j / 8] >> (j % 8) & 1;
          ms = kept > ms ? kept : ms;
        }
        free(mk);
        spr_bl_ws_free(&bw);
      }
      const int fits = kbytes + (double)(ms > 1 ? ms : 1) * tok <= 16384;
      CU_ASSERT_EQUAL(out.key_resident, fits);
      double bits = (double)out.bytes_fetched * 8, rwords = (double)(out.hits + out.fetches - out.overflow_tokens) * tokw;
      if (out.key_resident) {
        bits += (double)n * d * kb;
        rwords += sc == SPR_SCHEME_LEOPARD ? (double)lbits : P * d * kb / 64;
      } else {
        bits += sc == SPR_SCHEME_LEOPARD ? (double)lbits * d : P * d * kb;
      }
      const double rr = bits * c.energy.reram_read_J_per_bit;
      ASSERT_REL(out.energy_J[SPR_LEDGER_E_RERAM_READ], rr);
      ASSERT_REL(out.energy_J[SPR_LEDGER_E_SRAM_READ], rwords * word);
      CU_ASSERT_DOUBLE_EQUAL(out.keep_rate * P, (double)(out.hits + out.fetches), 1e-6);
    }
    spr_attend_ws_free(w);
    spr_attend_head_free(&h);
  }
}

/* Wear of the scoring arrays (core/spr_wear.h) by hand. */
static void test_wear(void) {
  spr_config c;
  spr_config_default(&c);
  /* defaults: 1e6 writes, the run's rate, arrays per head */
  CU_ASSERT_EQUAL(c.wear.endurance, 1e6);
  CU_ASSERT_EQUAL(c.wear.sequence_rate_Hz, 0);
  CU_ASSERT_EQUAL(c.wear.scoring_cells, 0);
  spr_wear_params w = {2.5e6, 0, 0};
  spr_wear_result r;
  /* 6 heads of 2 x 72 x 24 = 3456 cells; SPRINT takes 2e6 cycles per
   * sequence at 1 GHz: 500 sequences/s; one write per cell per sequence */
  CU_ASSERT_EQUAL_FATAL(spr_wear_estimate(&w, 20736, 3456, 2e6, 1e9, &r), 0);
  CU_ASSERT_EQUAL(r.writes_per_cell, 1.0);
  CU_ASSERT_EQUAL(r.sequences, 2.5e6);
  ASSERT_REL(r.rate_Hz, 500);
  CU_ASSERT_EQUAL(r.rate_is_run, 1);
  ASSERT_REL(r.seconds, 5000); /* 2.5e6 / 500 */
  char line[512];
  spr_wear_format(&w, &r, line, sizeof line);
  SPR_ASSERT_CONTAINS(line, "1 writes per scoring cell per sequence (arrays per head)");
  SPR_ASSERT_CONTAINS(line, "2.5e+06 sequences, 1.389 hours at 500 sequences/s, the run's back-to-back rate");
  /* shared arrays of 6912 cells (two heads' worth): 3 writes per cell per
   * sequence; a stated rate of 40 Hz */
  w.scoring_cells = 6912;
  w.sequence_rate_Hz = 40;
  CU_ASSERT_EQUAL_FATAL(spr_wear_estimate(&w, 20736, 3456, 2e6, 1e9, &r), 0);
  CU_ASSERT_EQUAL(r.writes_per_cell, 3.0);
  ASSERT_REL(r.sequences, 2.5e6 / 3);
  CU_ASSERT_EQUAL(r.rate_is_run, 0);
  ASSERT_REL(r.seconds, 2.5e6 / 3 / 40); /* 20833.3 s */
  spr_wear_format(&w, &r, line, sizeof line);
  SPR_ASSERT_CONTAINS(line, "3 writes per scoring cell per sequence (arrays shared");
  SPR_ASSERT_CONTAINS(line, "5.787 hours at 40 sequences/s, wear.sequence_rate");
  /* errors name the key */
  spr_wear_params b = w;
  b.endurance = 0;
  expect(spr_wear_estimate(&b, 20736, 3456, 2e6, 1e9, &r), "wear.endurance = 0", "must be > 0", NULL);
  b.endurance = -5;
  expect(spr_wear_estimate(&b, 20736, 3456, 2e6, 1e9, &r), "wear.endurance = -5", NULL);
  b = w;
  b.sequence_rate_Hz = -1;
  expect(spr_wear_estimate(&b, 20736, 3456, 2e6, 1e9, &r), "wear.sequence_rate = -1 Hz", NULL);
  b = w;
  b.scoring_cells = 3455;
  expect(spr_wear_estimate(&b, 20736, 3456, 2e6, 1e9, &r), "wear.scoring_cells = 3455",
         "at least 3456 cells", NULL);
  b = w;
  b.sequence_rate_Hz = 0;
  expect(spr_wear_estimate(&b, 20736, 3456, 0, 1e9, &r), "wear.sequence_rate = 0 needs the run's rate", NULL);
  expect(spr_wear_estimate(&w, 0, 0, 2e6, 1e9, &r), "0 cells programmed per sequence", NULL);
  expect(spr_wear_estimate(NULL, 1, 1, 1, 1, &r), "NULL argument 'w'", NULL);
  /* the keys: 0 or a negative endurance refused by the parser, naming it */
  char path[512];
  spr_test_path(path, sizeof path, "wear", ".ini");
  const char *bad[] = {"endurance = 0\n", "endurance = -1e6\n", "scoring_cells = -2\n",
                       "sequence_rate = -3 Hz\n"};
  const char *key[] = {"'wear.endurance'", "'wear.endurance'", "'wear.scoring_cells'",
                       "'wear.sequence_rate'"};
  for (int k = 0; k < 4; k++) {
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "[wear]\n%s", bad[k]);
    fclose(f);
    spr_config_default(&c);
    CU_ASSERT_EQUAL(spr_config_load(&c, path), SPR_ECONFIG);
    SPR_ASSERT_CONTAINS(spr_errmsg(), ":2:");
    SPR_ASSERT_CONTAINS(spr_errmsg(), key[k]);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "out of range");
  }
  remove(path);
}

static void test_errors_acc(void) {
  spr_energy_params e = defaults();
  spr_ledger_acc a;
  spr_ledger_result r;
  expect(spr_ledger_acc_init(NULL, &e), "spr_ledger_acc_init", "NULL argument 'a'", NULL);
  expect(spr_ledger_acc_init(&a, NULL), "spr_ledger_acc_init", "NULL argument 'e'", NULL);
  spr_energy_params b = e;
  b.reram_read_bytes_per_cycle = 0;
  expect(spr_ledger_acc_init(&a, &b), "spr_ledger_acc_init", "timing.reram_read_bytes_per_cycle", NULL);

  CU_ASSERT_EQUAL_FATAL(spr_ledger_acc_init(&a, &e), 0);
  spr_ledger_counts q[3];
  three_queries(q);
  CU_ASSERT_EQUAL(spr_ledger_acc_step(&a, &q[0]), 0);
  spr_ledger_acc before;
  memcpy(&before, &a, sizeof a);
  expect(spr_ledger_acc_step(NULL, &q[1]), "spr_ledger_acc_step", "NULL argument 'a'", NULL);
  expect(spr_ledger_acc_step(&a, NULL), "spr_ledger_acc_step", "NULL argument 'q'", NULL);
  spr_ledger_counts bad = q[1];
  bad.exps = -1;
  expect(spr_ledger_acc_step(&a, &bad), "spr_ledger_acc_step", "count 'exps' is negative (-1)", NULL);
  bad = q[1];
  bad.xbar_cells_written = -2;
  expect(spr_ledger_acc_step(&a, &bad), "count 'xbar_cells_written' is negative (-2)", NULL);
  CU_ASSERT_EQUAL(memcmp(&a, &before, sizeof a), 0); /* unchanged */
  /* buffer sizes must agree between steps */
  bad = q[1];
  bad.sram_words_read = 4;
  bad.buffer_bytes = 16384;
  CU_ASSERT_EQUAL(spr_ledger_acc_step(&a, &bad), 0);
  memcpy(&before, &a, sizeof a);
  bad.buffer_bytes = 32768;
  expect(spr_ledger_acc_step(&a, &bad), "buffer_bytes 32768 differs from the 16384 bytes", NULL);
  CU_ASSERT_EQUAL(memcmp(&a, &before, sizeof a), 0);
  /* overflow of a summed count */
  bad = q[2];
  bad.v_macs = INT64_MAX;
  expect(spr_ledger_acc_step(&a, &bad), "count 'v_macs' overflows", NULL);
  CU_ASSERT_EQUAL(memcmp(&a, &before, sizeof a), 0);

  expect(spr_ledger_acc_result(NULL, &r), "spr_ledger_acc_result", "NULL argument 'a'", NULL);
  expect(spr_ledger_acc_result(&a, NULL), "spr_ledger_acc_result", "NULL argument 'out'", NULL);

  spr_ledger_counts sum, c = crafted();
  memset(&sum, 0, sizeof sum);
  expect(spr_ledger_add(NULL, &c), "spr_ledger_add", "NULL argument 'sum'", NULL);
  expect(spr_ledger_add(&sum, NULL), "spr_ledger_add", "NULL argument 'c'", NULL);
  c.pred_exps = -7;
  expect(spr_ledger_add(&sum, &c), "spr_ledger_add", "count 'pred_exps' is negative (-7)", NULL);
  c = crafted();
  sum.cmp_decisions = INT64_MAX - 10;
  expect(spr_ledger_add(&sum, &c), "count 'cmp_decisions' overflows", NULL);
  CU_ASSERT_EQUAL(sum.cmp_decisions, INT64_MAX - 10);
  CU_ASSERT_EQUAL(sum.score_macs, 0); /* nothing added */
  memset(&sum, 0, sizeof sum);
  sum.buffer_bytes = 65536;
  expect(spr_ledger_add(&sum, &c), "buffer_bytes 16384 differs from the 65536 bytes", NULL);
  sum.buffer_bytes = 0;
  CU_ASSERT_EQUAL(spr_ledger_add(&sum, &c), 0);
  CU_ASSERT_EQUAL(sum.buffer_bytes, 16384);
  CU_ASSERT_EQUAL(spr_ledger_add(&sum, &c), 0);
  CU_ASSERT_EQUAL(sum.buffer_bytes, 16384);
  CU_ASSERT_EQUAL(sum.imc_macs, 3072);
  /* every field's overflow and negative sum is named (the checks run on
   * all fields at once); one count short of overflow adds */
  static const struct {
    const char *name;
    size_t off;
  } f[] = {
#define F(x) {#x, offsetof(spr_ledger_counts, x)}
      F(reram_bits_written), F(xbar_cells_written), F(xbar_bits_written), F(imc_queries), F(imc_macs),
      F(cmp_decisions), F(prune_bits_read), F(reram_bits_read), F(sram_words_written),
      F(sram_words_read), F(score_macs), F(exps), F(divs), F(v_macs), F(pred_mac8),
      F(pred_mac4), F(pred_bitmacs), F(pred_adds), F(pred_muls), F(pred_exps), F(pred_cmps),
#undef F
  };
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    spr_ledger_counts one;
    memset(&one, 0, sizeof one);
    memset(&sum, 0, sizeof sum);
    one.buffer_bytes = 16384; /* for the SRAM counts */
    *(int64_t *)((char *)&one + f[i].off) = 5;
    *(int64_t *)((char *)&sum + f[i].off) = INT64_MAX - 4;
    char want[96];
    snprintf(want, sizeof want, "count '%s' overflows (%lld + 5)", f[i].name, (long long)(INT64_MAX - 4));
    expect(spr_ledger_add(&sum, &one), "spr_ledger_add", want, NULL);
    *(int64_t *)((char *)&sum + f[i].off) = INT64_MAX - 5;
    CU_ASSERT_EQUAL(spr_ledger_add(&sum, &one), 0);
    CU_ASSERT_EQUAL(*(int64_t *)((char *)&sum + f[i].off), INT64_MAX);
    *(int64_t *)((char *)&sum + f[i].off) = -2;
    snprintf(want, sizeof want, "summed count '%s' is negative (-2)", f[i].name);
    expect(spr_ledger_add(&sum, &one), "spr_ledger_add", want, NULL);
  }
}

/* --- the causal ledger of one head (sim/spr_attend.c, docs/energy.md 7) -- */

static uint64_t cz_state;
static double cz_unif(void) { /* splitmix64 */
  uint64_t z = (cz_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}

static int cz_bit(const uint8_t *m, int n, int i, int j) {
  return m[(size_t)i * spr_mask_row_bytes(n) + j / 8] >> (j % 8) & 1;
}

/* query i's share of a head total spread in proportion to i + 1:
 * floor(total T(i+1) / P) - floor(total T(i) / P), T(m) = m (m + 1) / 2 */
static int64_t cz_share(int64_t total, int i, int n) {
  const int64_t P = (int64_t)n * (n + 1) / 2, t0 = (int64_t)i * (i + 1) / 2, t1 = t0 + i + 1;
  return total * t1 / P - total * t0 / P;
}

/* n = 13, d = 5, causal, every energy price 1 J per counted event (so each
 * energy component is its count), default timing.  For every scheme the
 * mask is taken (SPRINT: the analog mask; the baselines recomputed with
 * their causal flags), its buffer traffic simulated here (SPRINT policy:
 * keep the previous query's resident survivors that are needed again,
 * admit misses in key order into free slots, stream the rest), and every
 * count of every query written out:
 *   K, V written once: n d (8 + 8) = 1040 bits;
 *   SPRINT programs its scoring arrays once: 2 n d = 130 cells of
 *   cell_bits = 4 bits (520 bits), at 1 J per cell and per bit: 650 J;
 *   SPRINT: sum_i (i + 1) d = 91 x 5 = 455 in-memory MACs, 91 comparator
 *   decisions, 91 pruning bits, 13 in-memory queries;
 *   oracle and top-k: 91 x 5 = 455 8-bit MACs, 91 comparisons or selection
 *   inputs (top-k: 2 levels for k = round(0.3 x 13) = 4); Sanger: 455
 *   4-bit MACs, 91 exponentials, 78 + 91 comparisons, 91 + 78 additions,
 *   91 + 13 multiplications; LeOPArd: its bit planes; spread over queries
 *   in proportion to i + 1;
 *   a prediction's key stream: (i + 1) d key bits at its width per query
 *   (LeOPArd: its planes, spread);
 *   survivors m_i: m_i d score MACs (none when the prediction computed the
 *   scores), m_i exponentials and divisions, m_i d V MACs; fetched tokens
 *   f_i: f_i x token bytes x 8 ReRAM bits; SRAM words (f_i - o_i) and
 *   (m_i - o_i) token words.
 * The energies must equal these sums exactly and the latency the overlap
 * formula over these per-query stages. */
/* dense_tiled on the causal head of test_causal_head_ledger (n = 13,
 * d = 5, 8-bit K, V and queries, 128-byte buffer, tiles of 4 tokens,
 * every price 1 J), counted pair by pair: a token is 10 B (2 words), a
 * query's codes 5 B (1 word), its fp32 accumulators 4 x 5 + 8 = 28 B
 * (4 words), so (128 - 40) / 33 = 2 queries a block.  Block b holds
 * queries 2b, 2b + 1 (the last block query 12 alone); it steps through
 * the tiles of 4 keys that hold a key <= its last query, fetching only
 * those keys; query i uses the keys j <= i of the tile. */
static void tiled_by_hand(const spr_config *c, const spr_scheme_result *out) {
  const int n = 13, d = 5, bq = 2, bk = 4;
  const double tw = 2, qw = 1, aw = 4;
  double E[SPR_LEDGER_NE] = {0}, A[64], C[64];
  int steps = 0;
  int64_t fetched = 0, uses = 0;
  for (int i0 = 0; i0 < n; i0 += bq) {
    const int i1 = i0 + bq < n ? i0 + bq : n, last = i1 - 1;
    const int ntiles = last / bk + 1;
    for (int t = 0; t < ntiles; t++) {
      double f = 0, keys = 0, a = 0, a2 = 0;
      for (int j = t * bk; j < t * bk + bk && j < n; j++) f += j <= last;
      for (int i = i0; i < i1; i++) {
        double k = 0;
        for (int j = t * bk; j < t * bk + bk && j < n; j++) k += j <= i;
        keys += k;
        a += k > 0;
        a2 += k > 0 && t > 0;
      }
      const int fin = t == ntiles - 1;
      E[SPR_LEDGER_E_RERAM_READ] += f * 10 * 8;
      E[SPR_LEDGER_E_SRAM_WRITE] += f * tw + (t == 0 ? (i1 - i0) * qw : 0) + a * aw;
      E[SPR_LEDGER_E_SRAM_READ] += keys * tw + a * qw + a2 * aw + (fin ? (i1 - i0) * aw : 0);
      E[SPR_LEDGER_E_SCORE_MAC] += keys * d;
      E[SPR_LEDGER_E_EXP] += keys + a2;
      E[SPR_LEDGER_E_V_MAC] += keys * d + a2 * (d + 1);
      E[SPR_LEDGER_E_DIV] += fin ? (i1 - i0) * d : 0;
      A[steps] = f * 10 / c->energy.reram_read_bytes_per_cycle;
      C[steps] = (2 * keys * d + a2 * (d + 1)) / c->energy.mac_units +
                 (keys + a2 + (fin ? (i1 - i0) * d : 0)) / c->energy.softmax_units;
      steps++;
      fetched += (int64_t)f;
      uses += (int64_t)keys;
    }
  }
  E[SPR_LEDGER_E_RERAM_WRITE] = n * d * 16; /* K and V written once */
  CU_ASSERT_EQUAL(steps, 1 + 1 + 2 + 2 + 3 + 3 + 4); /* tiles of blocks 0 .. 6 */
  CU_ASSERT_EQUAL(uses, 91);
  CU_ASSERT_EQUAL(fetched, 2 + 4 + 6 + 8 + 10 + 12 + 13);
  CU_ASSERT_EQUAL(out->fetches, fetched);
  CU_ASSERT_EQUAL(out->hits, 91 - fetched);
  CU_ASSERT_EQUAL(out->bytes_fetched, fetched * 10);
  CU_ASSERT_EQUAL(out->tile_queries, 2);
  CU_ASSERT_EQUAL(out->tile_tokens, 4);
  CU_ASSERT_EQUAL(out->keep_rate, 1.0);
  int bad = 0;
  for (int k = 0; k < SPR_LEDGER_NE; k++)
    if (out->energy_J[k] != E[k]) {
      fprintf(stderr, "\n  dense_tiled %s: %.17g, want %.17g", spr_ledger_energy_name(k),
              out->energy_J[k], E[k]);
      bad++;
    }
  CU_ASSERT_EQUAL(bad, 0);
  double total = A[0];
  for (int s = 1; s < steps; s++) total += A[s] > C[s - 1] ? A[s] : C[s - 1];
  total += C[steps - 1];
  ASSERT_REL(out->cycles_total, total);
}

static void test_causal_head_ledger(void) {
  const int n = 13, d = 5, H = 1;
  spr_config c;
  spr_config_default(&c);
  c.wl.causal = 1;
  c.wl.seq_len = n;
  c.wl.head_dim = d;
  c.wl.n_layers = 1;
  c.wl.n_heads = H;
  c.thr.keep_rate = 0.3;
  c.bl.topk_fraction = 0.3;
  c.bl.window_half_width = 2;
  c.bl.window_globals = 1;
  c.dig.buffer_bytes = 128; /* 12 tokens of 10 bytes: the last queries stream */
  c.dig.tile_tokens = 4;    /* dense_tiled: blocks of (128 - 4 x 10) / 33 = 2 queries */
  spr_energy_params *e = &c.energy;
  e->reram_write_J_per_bit = e->reram_read_J_per_bit = e->imc_mac_J = e->cmp_J = 1;
  e->xbar_write_J_per_bit = e->xbar_write_J_per_cell = 1;
  e->digital_scale = e->prune_read_J_per_bit = e->sram_write_ratio = 1;
  e->sram_8k_J_per_word = e->sram_32k_J_per_word = e->sram_1m_J_per_word = 1;
  e->mac8_J = e->v_mac_J = e->exp_J = e->div_J = e->mac4_J = e->bitmac_J = 1;
  e->pred_add_J = e->pred_mul_J = e->pred_cmp_J = 1;
  CU_ASSERT_FATAL(spr_config_resolve(&c, "test") == 0);
  spr_attend_head h;
  spr_attend_ws *w;
  CU_ASSERT_FATAL(spr_attend_head_alloc(&h, &c, n, d, 1) == 0);
  CU_ASSERT_FATAL(spr_attend_ws_alloc(&c, n, d, &w) == 0);
  cz_state = 2385;
  for (int t = 0; t < n * d; t++) {
    h.Q[t] = (float)(2.385 * (2 * cz_unif() - 1));
    h.K[t] = (float)(2.385 * (2 * cz_unif() - 1));
    h.V[t] = (float)(1.7 * (2 * cz_unif() - 1));
  }
  spr_head_result res;
  CU_ASSERT_FATAL(spr_attend_ideal(&c, 0, 0, &h, w, &res) == 0);
  spr_attend_range(&c, &h, H, &res);
  CU_ASSERT_FATAL(spr_attend_count(&c, &h, &res) == 0);
  CU_ASSERT_FATAL(spr_attend_thresholds(&c, 0, &h, H, 0.0, w, &res, NULL) == 0);
  CU_ASSERT_FATAL(spr_attend_analog(&c, 0, 0, 0, &h, w, &res) == 0);
  CU_ASSERT_FATAL(spr_attend_digital(&c, &h, w) == 0);
  CU_ASSERT_EQUAL(res.causal, 1);

  /* the baselines' masks and stats, as the head computes them */
  spr_bl_ws bw;
  CU_ASSERT_FATAL(spr_bl_ws_alloc(&bw, n, d) == 0);
  const size_t rb = spr_mask_row_bytes(n);
  uint8_t masks[SPR_N_SCHEMES][13 * 2];
  spr_bl_stats bst[SPR_N_SCHEMES];
  memset(bst, 0, sizeof bst);
  memcpy(masks[SPR_SCHEME_SPRINT], h.mask_a, n * rb);
  CU_ASSERT_FATAL(spr_bl_dense_causal(n, masks[SPR_SCHEME_DENSE], NULL) == 0);
  spr_bl_oracle_params op;
  spr_bl_oracle_default(&op);
  op.causal = 1;
  CU_ASSERT_FATAL(spr_bl_oracle_calibrate(&op, h.Q, h.K, n, d, 0.3, &bw, &op.threshold, NULL) == 0);
  CU_ASSERT_FATAL(spr_bl_oracle(&op, h.Q, h.K, n, d, &bw, masks[SPR_SCHEME_ORACLE], NULL) == 0);
  spr_bl_leopard_params lp = {8, 8, op.threshold, 1};
  CU_ASSERT_FATAL(spr_bl_leopard(&lp, h.Q, h.K, n, d, &bw, masks[SPR_SCHEME_LEOPARD],
                                 &bst[SPR_SCHEME_LEOPARD]) == 0);
  spr_bl_topk_params tp;
  spr_bl_topk_default(&tp);
  tp.keep_fraction = 0.3;
  tp.causal = 1;
  CU_ASSERT_FATAL(spr_bl_topk(&tp, h.Q, h.K, n, d, &bw, masks[SPR_SCHEME_TOPK], NULL) == 0);
  spr_bl_sanger_params sp;
  spr_bl_sanger_default(&sp);
  sp.causal = 1;
  CU_ASSERT_FATAL(spr_bl_sanger(&sp, h.Q, h.K, n, d, &bw, masks[SPR_SCHEME_SANGER], NULL) == 0);
  spr_bl_window_params wp = {2, 1, NULL, 1};
  CU_ASSERT_FATAL(spr_bl_window(&wp, n, masks[SPR_SCHEME_WINDOW], NULL) == 0);
  const int64_t lbits = bst[SPR_SCHEME_LEOPARD].key_bits_processed;
  CU_ASSERT(lbits > 91 && lbits < 91 * 8); /* some pairs stop early */

  for (int sc = 0; sc < SPR_N_SCHEMES; sc++) {
    spr_scheme_result out;
    CU_ASSERT_FATAL(spr_attend_scheme(&c, sc, &h, w, &out, NULL) == 0);
    if (sc == SPR_SCHEME_DENSE_TILED) {
      tiled_by_hand(&c, &out);
      continue;
    }
    const uint8_t *m = masks[sc];
    const int known = sc == SPR_SCHEME_ORACLE || sc == SPR_SCHEME_TOPK || sc == SPR_SCHEME_LEOPARD;
    const int64_t tok = (known ? 0 : d) + d, words = (tok + 7) / 8;
    /* a digital predictor keeps the sequence's K at its width (8 bits,
     * Sanger 4) in the buffer when it fits beside the busiest query's
     * survivors (docs/energy.md section 9): K_b = 13 ceil(5 kb / 8) */
    const int pred = sc == SPR_SCHEME_ORACLE || sc == SPR_SCHEME_TOPK ||
                     sc == SPR_SCHEME_SANGER || sc == SPR_SCHEME_LEOPARD;
    const int kb = sc == SPR_SCHEME_SANGER ? 4 : 8;
    const int64_t kbytes = (int64_t)n * ((d * kb + 7) / 8);
    int64_t ms = 0;
    for (int i = 0; i < n; i++) {
      int64_t k = 0;
      for (int j = 0; j < n; j++) k += cz_bit(m, n, i, j);
      ms = k > ms ? k : ms;
    }
    const int kres = pred && kbytes + (ms > 1 ? ms : 1) * tok <= 128;
    const int64_t cap = (128 - (kres ? kbytes : 0)) / tok;
    CU_ASSERT_EQUAL(out.key_resident, kres);
    if (sc == SPR_SCHEME_ORACLE) CU_ASSERT_EQUAL(kres, 1); /* 65 B + 5 B survivors */
    if (sc == SPR_SCHEME_SANGER) CU_ASSERT_EQUAL(kres, 0); /* 39 B + 10 B survivors */
    /* the head totals of the prediction (hand formulas above) */
    int64_t p_mac = 0, p_add = 0, p_mul = 0, p_exp = 0, p_cmp = 0, p_bits = 0;
    int mac_kind = 0; /* 8: mac8, 4: mac4, 1: bit-serial */
    if (sc == SPR_SCHEME_ORACLE) mac_kind = 8, p_mac = 455, p_cmp = 91, p_bits = 8;
    if (sc == SPR_SCHEME_TOPK) mac_kind = 8, p_mac = 455, p_cmp = 91 * 2, p_bits = 8;
    if (sc == SPR_SCHEME_SANGER)
      mac_kind = 4, p_mac = 455, p_exp = 91, p_cmp = 78 + 91, p_add = 91 + 78, p_mul = 91 + 13,
      p_bits = 4;
    if (sc == SPR_SCHEME_LEOPARD)
      mac_kind = 1, p_mac = lbits * d, p_add = lbits + n * d + n * 8, p_cmp = lbits;
    double E[SPR_LEDGER_NE] = {0}, A[13], C[13], cyc[SPR_LEDGER_NC] = {0};
    int resident[13] = {0}, upper = 0;
    int64_t uses = 0;
    for (int i = 0; i < n; i++) {
      /* buffer: hits pinned, misses in key order into free slots */
      int hits = 0, fetch = 0, over = 0, mi = 0, next[13] = {0};
      for (int j = 0; j < n; j++) {
        if (j > i) {
          upper += cz_bit(m, n, i, j);
          continue;
        }
        if (!cz_bit(m, n, i, j)) continue;
        mi++;
        if (resident[j]) hits++, next[j] = 1;
      }
      int64_t free_slots = cap - hits;
      for (int j = 0; j <= i; j++)
        if (cz_bit(m, n, i, j) && !resident[j]) {
          fetch++;
          if (free_slots > 0) free_slots--, next[j] = 1;
          else over++;
        }
      memcpy(resident, next, sizeof resident);
      uses += mi;
      /* query i's counts, priced at 1 J each */
      const double wr = i == 0 ? n * d * 16.0 : 0;
      double rr = (double)fetch * tok * 8;
      const double imc = sc == SPR_SCHEME_SPRINT ? (double)(i + 1) * d : 0;
      const double dec = sc == SPR_SCHEME_SPRINT ? i + 1 : 0;
      const double mac = cz_share(p_mac, i, n), add = cz_share(p_add, i, n),
                   mul = cz_share(p_mul, i, n), ex = cz_share(p_exp, i, n),
                   cmp = cz_share(p_cmp, i, n);
      double kw = 0, kr = 0; /* SRAM words of a resident K: written, read */
      if (kres) {
        /* key i loaded on query i (one 64-bit word at d = 5), every key
         * the query sees read from the buffer (LeOPArd: its planes) */
        rr += (double)d * kb;
        kw = 1;
        kr = sc == SPR_SCHEME_LEOPARD ? (double)cz_share(lbits, i, n) : i + 1;
      } else if (sc == SPR_SCHEME_LEOPARD) {
        rr += cz_share(lbits * d, i, n);
      } else {
        rr += (double)(i + 1) * d * p_bits;
      }
      const double smac = known ? 0 : (double)mi * d;
      E[SPR_LEDGER_E_RERAM_WRITE] += wr;
      /* SPRINT programs 2 n d = 130 cells of 4 bits on the first query */
      E[SPR_LEDGER_E_XBAR_WRITE] += sc == SPR_SCHEME_SPRINT && i == 0 ? 130 + 130 * 4 : 0;
      E[SPR_LEDGER_E_IMC_MAC] += imc;
      E[SPR_LEDGER_E_CMP] += dec;
      E[SPR_LEDGER_E_PRUNE_READ] += dec;
      E[SPR_LEDGER_E_RERAM_READ] += rr;
      E[SPR_LEDGER_E_SRAM_WRITE] += (double)(fetch - over) * words + kw;
      E[SPR_LEDGER_E_SRAM_READ] += (double)(mi - over) * words + kr;
      E[SPR_LEDGER_E_SCORE_MAC] += smac;
      E[SPR_LEDGER_E_EXP] += mi;
      E[SPR_LEDGER_E_DIV] += mi;
      E[SPR_LEDGER_E_V_MAC] += (double)mi * d;
      E[mac_kind == 8 ? SPR_LEDGER_E_PRED_MAC8 : mac_kind == 4 ? SPR_LEDGER_E_PRED_MAC4
                                                               : SPR_LEDGER_E_PRED_BITMAC] += mac;
      E[SPR_LEDGER_E_PRED_ADD] += add;
      E[SPR_LEDGER_E_PRED_MUL] += mul;
      E[SPR_LEDGER_E_PRED_EXP] += ex;
      E[SPR_LEDGER_E_PRED_CMP] += cmp;
      /* stages: memory A_i and compute C_i (docs/energy.md section 5) */
      const double th = sc == SPR_SCHEME_SPRINT ? e->threshold_cycles : 0;
      const double pr = (mac + add + mul + cmp) / e->pred_units + ex / e->softmax_units;
      const double fe = rr / 8 / e->reram_read_bytes_per_cycle;
      A[i] = th + pr + fe;
      C[i] = (smac + (double)mi * d) / e->mac_units + 2.0 * mi / e->softmax_units;
      cyc[SPR_LEDGER_C_THRESHOLD] += th;
      cyc[SPR_LEDGER_C_PRED] += pr;
      cyc[SPR_LEDGER_C_FETCH] += fe;
    }
    CU_ASSERT_EQUAL(upper, 0); /* every mask is causal */
    CU_ASSERT_DOUBLE_EQUAL(out.keep_rate, (double)uses / 91, 1e-15);
    int bad = 0;
    for (int k = 0; k < SPR_LEDGER_NE; k++)
      if (out.energy_J[k] != E[k]) {
        fprintf(stderr, "\n  %s %s: %.17g, want %.17g", spr_scheme_name(sc),
                spr_ledger_energy_name(k), out.energy_J[k], E[k]);
        bad++;
      }
    CU_ASSERT_EQUAL(bad, 0);
    double total = A[0];
    for (int i = 1; i < n; i++) total += A[i] > C[i - 1] ? A[i] : C[i - 1];
    total += C[n - 1];
    ASSERT_REL(out.cycles_total, total);
    for (int k = 0; k < 3; k++) ASSERT_REL(out.cycles[k] + 1e-300, cyc[k] + 1e-300);
    if (sc == SPR_SCHEME_SPRINT) {
      CU_ASSERT_EQUAL(out.energy_J[SPR_LEDGER_E_IMC_MAC], 455.0);
      CU_ASSERT_EQUAL(out.energy_J[SPR_LEDGER_E_CMP], 91.0);
      CU_ASSERT_EQUAL(out.energy_J[SPR_LEDGER_E_PRUNE_READ], 91.0);
      CU_ASSERT_EQUAL(out.energy_J[SPR_LEDGER_E_XBAR_WRITE], 650.0);
      CU_ASSERT_DOUBLE_EQUAL(out.keep_rate, res.keep_rate, 1e-15);
    }
    if (sc == SPR_SCHEME_DENSE) {
      CU_ASSERT_EQUAL(out.keep_rate, 1.0);
      CU_ASSERT_DOUBLE_EQUAL(out.mass_retained, 1.0, 1e-6);
      CU_ASSERT_EQUAL(out.top1_recall, 1.0);
      CU_ASSERT_EQUAL(out.topk_recall, 1.0);
      CU_ASSERT(out.overflow_tokens > 0); /* the buffer binds: streaming counted */
    }
    if (sc == SPR_SCHEME_ORACLE || sc == SPR_SCHEME_TOPK)
      CU_ASSERT_EQUAL(out.energy_J[SPR_LEDGER_E_PRED_MAC8], 455.0);
    if (sc == SPR_SCHEME_SANGER) CU_ASSERT_EQUAL(out.energy_J[SPR_LEDGER_E_PRED_EXP], 91.0);
  }
  spr_bl_ws_free(&bw);
  spr_attend_ws_free(w);
  spr_attend_head_free(&h);
}

int main(void) {
  static const CU_TestInfo tests[] = {
      {"defaults are the documented figures", test_defaults},
      {"config keys parse with units", test_config_units},
      {"config file with [energy] and [timing]", test_config_file},
      {"SRAM energy: log-size interpolation", test_sram_interpolation},
      {"crafted head priced by hand", test_price_by_hand},
      {"prediction costs of the baselines", test_prediction},
      {"dense vs pruned on the same ledger", test_dense_vs_pruned},
      {"overlap of fetch and compute, 3 queries", test_overlap},
      {"component names", test_names},
      {"errors: price, parameters, SRAM", test_errors_price},
      {"errors: accumulator and sums", test_errors_acc},
      {"causal head: every count of every scheme by hand", test_causal_head_ledger},
      {"wear of the scoring arrays by hand, errors", test_wear},
      {"predictor keys: resident at N = 128, streamed at N = 512, causal too", test_predictor_keys},
      CU_TEST_INFO_NULL,
  };
  return spr_test_run("ledger", tests);
}
