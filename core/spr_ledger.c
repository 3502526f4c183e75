/* spr_ledger.c - energy and cycles of event counts (model: spr_ledger.h,
 * constants and sources: docs/energy.md). */
#include "config.h"
#include "spr_ledger.h"
#include "spr_config.h"
#include "spr_error.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define SRAM_KB8 8192.0
#define SRAM_KB32 32768.0
#define SRAM_MB1 1048576.0

/* --- names ---------------------------------------------------------------- */

static const char *const energy_names[SPR_LEDGER_NE] = {
  "reram_write", "xbar_write", "imc_mac", "cmp", "prune_read", "reram_read", "sram_write",
  "sram_read", "score_mac", "exp", "div", "v_mac", "pred_mac8", "pred_mac4",
  "pred_bitmac", "pred_add", "pred_mul", "pred_exp", "pred_cmp",
};

static const char *const cycle_names[SPR_LEDGER_NC] = {
  "threshold", "pred", "fetch", "score", "softmax", "v",
};

const char *spr_ledger_energy_name(int i) {
  return (i >= 0 && i < SPR_LEDGER_NE) ? energy_names[i] : NULL;
}

const char *spr_ledger_cycle_name(int i) {
  return (i >= 0 && i < SPR_LEDGER_NC) ? cycle_names[i] : NULL;
}

/* --- parameters ------------------------------------------------------------ */

void spr_energy_default(spr_energy_params *e) {
  spr_config c;
  spr_config_default(&c);
  *e = c.energy;
}

enum { NONNEG, POSITIVE };

static const struct {
  const char *key; /* config key, for messages */
  size_t off;
  int kind;
  const char *unit;
} param_rows[] = {
#define P(field) offsetof(spr_energy_params, field)
  {"energy.reram_write_per_bit", P(reram_write_J_per_bit), NONNEG, "J"},
  {"energy.xbar_write_per_bit", P(xbar_write_J_per_bit), NONNEG, "J"},
  {"energy.xbar_write_per_cell", P(xbar_write_J_per_cell), NONNEG, "J"},
  {"energy.reram_read_per_bit", P(reram_read_J_per_bit), NONNEG, "J"},
  {"energy.imc_mac_per_op", P(imc_mac_J), NONNEG, "J"},
  {"energy.cmp_per_decision", P(cmp_J), NONNEG, "J"},
  {"energy.digital_scale", P(digital_scale), NONNEG, ""},
  {"energy.prune_read_per_bit", P(prune_read_J_per_bit), NONNEG, "J"},
  {"energy.sram_8k_read_per_word", P(sram_8k_J_per_word), NONNEG, "J"},
  {"energy.sram_32k_read_per_word", P(sram_32k_J_per_word), NONNEG, "J"},
  {"energy.sram_1m_read_per_word", P(sram_1m_J_per_word), NONNEG, "J"},
  {"energy.sram_write_ratio", P(sram_write_ratio), NONNEG, ""},
  {"energy.mac8_per_op", P(mac8_J), NONNEG, "J"},
  {"energy.v_mac_per_op", P(v_mac_J), NONNEG, "J"},
  {"energy.exp_per_op", P(exp_J), NONNEG, "J"},
  {"energy.div_per_op", P(div_J), NONNEG, "J"},
  {"energy.mac4_per_op", P(mac4_J), NONNEG, "J"},
  {"energy.bitmac_per_op", P(bitmac_J), NONNEG, "J"},
  {"energy.pred_add_per_op", P(pred_add_J), NONNEG, "J"},
  {"energy.pred_mul_per_op", P(pred_mul_J), NONNEG, "J"},
  {"energy.pred_cmp_per_op", P(pred_cmp_J), NONNEG, "J"},
  {"timing.clock", P(clock_Hz), POSITIVE, "Hz"},
  {"timing.threshold_cycles", P(threshold_cycles), NONNEG, ""},
  {"timing.reram_read_bytes_per_cycle", P(reram_read_bytes_per_cycle), POSITIVE, ""},
  {"timing.mac_units", P(mac_units), POSITIVE, ""},
  {"timing.softmax_units", P(softmax_units), POSITIVE, ""},
  {"timing.pred_units", P(pred_units), POSITIVE, ""},
#undef P
};

#define NPARAMS ((int)(sizeof param_rows / sizeof param_rows[0]))

static int check_params(const char *fn, const spr_energy_params *e) {
  for (int i = 0; i < NPARAMS; i++) {
    double v = *(const double *)((const char *)e + param_rows[i].off);
    const char *u = param_rows[i].unit;
    if (!isfinite(v))
      return spr_error(SPR_EINVAL, "%s: parameter '%s' is not finite (%g)", fn,
                       param_rows[i].key, v);
    if (param_rows[i].kind == POSITIVE && !(v > 0))
      return spr_error(SPR_EINVAL, "%s: parameter '%s' must be > 0 (got %g%s%s)", fn,
                       param_rows[i].key, v, u[0] ? " " : "", u);
    if (param_rows[i].kind == NONNEG && v < 0)
      return spr_error(SPR_EINVAL, "%s: parameter '%s' must be >= 0 (got %g%s%s)", fn,
                       param_rows[i].key, v, u[0] ? " " : "", u);
  }
  return 0;
}

int spr_energy_check(const spr_energy_params *e) {
  if (!e) return spr_error(SPR_EINVAL, "spr_energy_check: NULL argument 'e'");
  return check_params("spr_energy_check", e);
}

/* --- counts ---------------------------------------------------------------- */

static const struct {
  const char *name;
  size_t off;
} count_rows[] = {
#define C(field) {#field, offsetof(spr_ledger_counts, field)}
  C(reram_bits_written), C(xbar_cells_written), C(xbar_bits_written), C(imc_queries), C(imc_macs), C(cmp_decisions),
  C(prune_bits_read), C(reram_bits_read), C(sram_words_written),
  C(sram_words_read), C(buffer_bytes), C(score_macs), C(exps), C(divs),
  C(v_macs), C(pred_mac8), C(pred_mac4), C(pred_bitmacs), C(pred_adds),
  C(pred_muls), C(pred_exps), C(pred_cmps),
#undef C
};

#define NCOUNTS ((int)(sizeof count_rows / sizeof count_rows[0]))

static int64_t count_at(const spr_ledger_counts *c, int i) {
  return *(const int64_t *)((const char *)c + count_rows[i].off);
}

static int is_buffer_row(int i) {
  return count_rows[i].off == offsetof(spr_ledger_counts, buffer_bytes);
}

/* Every count >= 0; a buffer of 1 .. 1 MB when the SRAM is accessed. */
static int check_counts(const char *fn, const spr_ledger_counts *c) {
  for (int i = 0; i < NCOUNTS; i++)
    if (count_at(c, i) < 0)
      return spr_error(SPR_EINVAL, "%s: count '%s' is negative (%lld)", fn,
                       count_rows[i].name, (long long)count_at(c, i));
  if ((c->sram_words_read || c->sram_words_written) &&
      (c->buffer_bytes < 1 || c->buffer_bytes > (int64_t)SRAM_MB1))
    return spr_error(SPR_EINVAL,
                     "%s: buffer_bytes %lld outside 1 .. %lld with SRAM accesses (%lld words read, %lld written)",
                     fn, (long long)c->buffer_bytes, (long long)SRAM_MB1,
                     (long long)c->sram_words_read, (long long)c->sram_words_written);
  return 0;
}

/* The counts are NCOUNTS int64 fields, one per row of count_rows: a step
 * adds them as one array (vectorised), buffer_bytes aside. */
_Static_assert(sizeof(spr_ledger_counts) == sizeof count_rows / sizeof count_rows[0] * sizeof(int64_t),
               "spr_ledger_counts: one int64 field per row of count_rows");
enum { BUF_ = offsetof(spr_ledger_counts, buffer_bytes) / sizeof(int64_t) };

/* *sum += *c after checks; sum unchanged on error.  The checks first, in
 * one pass without a branch per count (a ledger step per query and
 * scheme): a sign bit in b, a, or a + b (for a, b >= 0, their sum wraps
 * exactly when it overflows int64); the messages only when one fails. */
static int add_counts(const char *fn, spr_ledger_counts *sum, const spr_ledger_counts *c) {
  int64_t a[NCOUNTS], b[NCOUNTS];
  memcpy(a, sum, sizeof a);
  memcpy(b, c, sizeof b);
  uint64_t sign = 0;
  for (int i = 0; i < NCOUNTS; i++) {
    const uint64_t ua = (uint64_t)a[i], ub = (uint64_t)b[i];
    sign |= ub | (i == BUF_ ? 0 : ua | (ua + ub));
  }
  const int bad = (int)(sign >> 63);
  int rc;
  if ((bad || ((c->sram_words_read || c->sram_words_written) &&
               (c->buffer_bytes < 1 || c->buffer_bytes > (int64_t)SRAM_MB1))) &&
      (rc = check_counts(fn, c)))
    return rc;
  if (sum->buffer_bytes && c->buffer_bytes && sum->buffer_bytes != c->buffer_bytes)
    return spr_error(SPR_EINVAL, "%s: buffer_bytes %lld differs from the %lld bytes counted before",
                     fn, (long long)c->buffer_bytes, (long long)sum->buffer_bytes);
  if (bad) {
    for (int i = 0; i < NCOUNTS; i++) {
      if (is_buffer_row(i)) continue;
      int64_t x = count_at(sum, i), y = count_at(c, i);
      if (x < 0)
        return spr_error(SPR_EINVAL, "%s: summed count '%s' is negative (%lld)", fn,
                         count_rows[i].name, (long long)x);
      if (x > INT64_MAX - y)
        return spr_error(SPR_EINVAL, "%s: count '%s' overflows (%lld + %lld)", fn,
                         count_rows[i].name, (long long)x, (long long)y);
    }
  }
  const int64_t buf = a[BUF_];
  for (int i = 0; i < NCOUNTS; i++) a[i] = (int64_t)((uint64_t)a[i] + (uint64_t)b[i]);
  a[BUF_] = buf ? buf : b[BUF_];
  memcpy(sum, a, sizeof a);
  return 0;
}

int spr_ledger_add(spr_ledger_counts *sum, const spr_ledger_counts *c) {
  if (!sum || !c)
    return spr_error(SPR_EINVAL, "spr_ledger_add: NULL argument '%s'", !sum ? "sum" : "c");
  return add_counts("spr_ledger_add", sum, c);
}

/* --- pricing ----------------------------------------------------------------- */

/* E(B) = E_a + (E_b - E_a) ln(B / B_a) / ln(B_b / B_a) on the segment
 * [B_a, B_b] of the table holding B; 8 KB for smaller buffers. */
static double sram_word_45nm(const spr_energy_params *e, double B) {
  double Ba = SRAM_KB8, Bb = SRAM_KB32, Ea = e->sram_8k_J_per_word, Eb = e->sram_32k_J_per_word;
  if (B <= SRAM_KB8) return Ea;
  if (B > SRAM_KB32) {
    Ba = SRAM_KB32; Bb = SRAM_MB1;
    Ea = e->sram_32k_J_per_word; Eb = e->sram_1m_J_per_word;
  }
  return Ea + (Eb - Ea) * log(B / Ba) / log(Bb / Ba);
}

int spr_ledger_sram_word_J(const spr_energy_params *e, int64_t buffer_bytes, double *J) {
  if (!e || !J)
    return spr_error(SPR_EINVAL, "spr_ledger_sram_word_J: NULL argument '%s'", !e ? "e" : "J");
  int rc;
  if ((rc = check_params("spr_ledger_sram_word_J", e))) return rc;
  if (buffer_bytes < 1 || buffer_bytes > (int64_t)SRAM_MB1)
    return spr_error(SPR_EINVAL,
                     "spr_ledger_sram_word_J: buffer_bytes %lld outside 1 .. %lld (the SRAM table ends at 1 MB)",
                     (long long)buffer_bytes, (long long)SRAM_MB1);
  *J = sram_word_45nm(e, (double)buffer_bytes) * e->digital_scale;
  return 0;
}

/* Cycles per component of c, and its memory (A) and compute (C) stages. */
static void stage_cycles(const spr_energy_params *e, const spr_ledger_counts *c,
                         double cyc[SPR_LEDGER_NC], double *A, double *C) {
  cyc[SPR_LEDGER_C_THRESHOLD] = (double)c->imc_queries * e->threshold_cycles;
  cyc[SPR_LEDGER_C_PRED] =
      ((double)c->pred_mac8 + (double)c->pred_mac4 + (double)c->pred_bitmacs + (double)c->pred_adds +
       (double)c->pred_muls + (double)c->pred_cmps) / e->pred_units +
      (double)c->pred_exps / e->softmax_units;
  cyc[SPR_LEDGER_C_FETCH] = (double)c->reram_bits_read / 8.0 / e->reram_read_bytes_per_cycle;
  cyc[SPR_LEDGER_C_SCORE] = (double)c->score_macs / e->mac_units;
  cyc[SPR_LEDGER_C_SOFTMAX] = ((double)c->exps + (double)c->divs) / e->softmax_units;
  cyc[SPR_LEDGER_C_V] = (double)c->v_macs / e->mac_units;
  *A = cyc[SPR_LEDGER_C_THRESHOLD] + cyc[SPR_LEDGER_C_PRED] + cyc[SPR_LEDGER_C_FETCH];
  *C = cyc[SPR_LEDGER_C_SCORE] + cyc[SPR_LEDGER_C_SOFTMAX] + cyc[SPR_LEDGER_C_V];
}

/* Energies of c (checked) into out. */
static void energies(const spr_energy_params *e, const spr_ledger_counts *c,
                     spr_ledger_result *out) {
  const double s = e->digital_scale;
  double word = 0;
  if (c->sram_words_read || c->sram_words_written)
    word = sram_word_45nm(e, (double)c->buffer_bytes) * s;
  double *E = out->energy_J;
  E[SPR_LEDGER_E_RERAM_WRITE] = (double)c->reram_bits_written * e->reram_write_J_per_bit;
  E[SPR_LEDGER_E_XBAR_WRITE] = (double)c->xbar_bits_written * e->xbar_write_J_per_bit +
                              (double)c->xbar_cells_written * e->xbar_write_J_per_cell;
  E[SPR_LEDGER_E_IMC_MAC] = (double)c->imc_macs * e->imc_mac_J;
  E[SPR_LEDGER_E_CMP] = (double)c->cmp_decisions * e->cmp_J;
  E[SPR_LEDGER_E_PRUNE_READ] = (double)c->prune_bits_read * e->prune_read_J_per_bit * s;
  E[SPR_LEDGER_E_RERAM_READ] = (double)c->reram_bits_read * e->reram_read_J_per_bit;
  E[SPR_LEDGER_E_SRAM_WRITE] = (double)c->sram_words_written * word * e->sram_write_ratio;
  E[SPR_LEDGER_E_SRAM_READ] = (double)c->sram_words_read * word;
  E[SPR_LEDGER_E_SCORE_MAC] = (double)c->score_macs * e->mac8_J * s;
  E[SPR_LEDGER_E_EXP] = (double)c->exps * e->exp_J * s;
  E[SPR_LEDGER_E_DIV] = (double)c->divs * e->div_J * s;
  E[SPR_LEDGER_E_V_MAC] = (double)c->v_macs * e->v_mac_J * s;
  E[SPR_LEDGER_E_PRED_MAC8] = (double)c->pred_mac8 * e->mac8_J * s;
  E[SPR_LEDGER_E_PRED_MAC4] = (double)c->pred_mac4 * e->mac4_J * s;
  E[SPR_LEDGER_E_PRED_BITMAC] = (double)c->pred_bitmacs * e->bitmac_J * s;
  E[SPR_LEDGER_E_PRED_ADD] = (double)c->pred_adds * e->pred_add_J * s;
  E[SPR_LEDGER_E_PRED_MUL] = (double)c->pred_muls * e->pred_mul_J * s;
  E[SPR_LEDGER_E_PRED_EXP] = (double)c->pred_exps * e->exp_J * s;
  E[SPR_LEDGER_E_PRED_CMP] = (double)c->pred_cmps * e->pred_cmp_J * s;
  out->total_J = 0;
  for (int i = 0; i < SPR_LEDGER_NE; i++) out->total_J += E[i];
}

int spr_ledger_price(const spr_energy_params *e, const spr_ledger_counts *c,
                     spr_ledger_result *out) {
  if (!e || !c || !out)
    return spr_error(SPR_EINVAL, "spr_ledger_price: NULL argument '%s'",
                     !e ? "e" : !c ? "c" : "out");
  int rc;
  if ((rc = check_params("spr_ledger_price", e))) return rc;
  if ((rc = check_counts("spr_ledger_price", c))) return rc;
  memset(out, 0, sizeof *out);
  energies(e, c, out);
  double A, C;
  stage_cycles(e, c, out->cycles, &A, &C);
  out->memory_cycles = A;
  out->compute_cycles = C;
  out->serial_cycles = A + C;
  out->total_cycles = A + C;
  out->time_s = out->total_cycles / e->clock_Hz;
  out->queries = 1;
  out->counts = *c;
  return 0;
}

/* --- per-query accumulation ----------------------------------------------- */

int spr_ledger_acc_init(spr_ledger_acc *a, const spr_energy_params *e) {
  if (!a || !e)
    return spr_error(SPR_EINVAL, "spr_ledger_acc_init: NULL argument '%s'", !a ? "a" : "e");
  int rc;
  if ((rc = check_params("spr_ledger_acc_init", e))) return rc;
  memset(a, 0, sizeof *a);
  a->e = *e;
  return 0;
}

/* Lock-step pipeline: run accumulates A_0 + sum_{i>=1} max(A_i, C_(i-1))
 * (overlap) or sum_i A_i + sum_{i<n-1} C_i (no overlap); the result adds
 * the last C. */
int spr_ledger_acc_step(spr_ledger_acc *a, const spr_ledger_counts *q) {
  if (!a || !q)
    return spr_error(SPR_EINVAL, "spr_ledger_acc_step: NULL argument '%s'", !a ? "a" : "q");
  int rc;
  if ((rc = add_counts("spr_ledger_acc_step", &a->sum, q))) return rc;
  double cyc[SPR_LEDGER_NC], A, C;
  stage_cycles(&a->e, q, cyc, &A, &C);
  for (int i = 0; i < SPR_LEDGER_NC; i++) a->cycles[i] += cyc[i];
  a->memory += A;
  a->compute += C;
  if (a->queries == 0) a->run = A;
  else if (a->e.overlap) a->run += fmax(A, a->prev_compute);
  else a->run += a->prev_compute + A;
  a->prev_compute = C;
  a->queries++;
  return 0;
}

int spr_ledger_acc_result(const spr_ledger_acc *a, spr_ledger_result *out) {
  if (!a || !out)
    return spr_error(SPR_EINVAL, "spr_ledger_acc_result: NULL argument '%s'", !a ? "a" : "out");
  int rc;
  if ((rc = check_params("spr_ledger_acc_result", &a->e))) return rc;
  if ((rc = check_counts("spr_ledger_acc_result", &a->sum))) return rc;
  memset(out, 0, sizeof *out);
  energies(&a->e, &a->sum, out);
  memcpy(out->cycles, a->cycles, sizeof out->cycles);
  out->memory_cycles = a->memory;
  out->compute_cycles = a->compute;
  out->serial_cycles = a->memory + a->compute;
  out->total_cycles = a->queries ? a->run + a->prev_compute : 0;
  out->time_s = out->total_cycles / a->e.clock_Hz;
  out->queries = a->queries;
  out->counts = a->sum;
  return 0;
}
