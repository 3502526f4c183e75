/* spr_ledger.h - the energy and cycles ledger: prices the event counts of
 * one head under one scheme (SPRINT, dense, a baseline) with the constants
 * of spr_energy_params (config sections [energy] and [timing]; every
 * constant's source: docs/energy.md).  Every scheme goes through the same
 * prices, so a dense run counted on the same memory system and digital
 * units gives honest ratios.
 *
 * Energy (J), one term per component, s = digital_scale:
 *   reram_write  = reram_bits_written   * reram_write_J_per_bit
 *   xbar_write   = xbar_bits_written    * xbar_write_J_per_bit
 *                + xbar_cells_written   * xbar_write_J_per_cell
 *                  (SPRINT's programming of its scoring arrays: every
 *                  cell of the differential pairs holding the key MSBs,
 *                  cell_bits bits each, written once per sequence)
 *   imc_mac      = imc_macs             * imc_mac_J
 *   cmp          = cmp_decisions        * cmp_J
 *   prune_read   = prune_bits_read      * prune_read_J_per_bit * s
 *   reram_read   = reram_bits_read      * reram_read_J_per_bit
 *   sram_write   = sram_words_written   * E_word(buffer_bytes) * sram_write_ratio
 *   sram_read    = sram_words_read      * E_word(buffer_bytes)
 *   score_mac    = score_macs           * mac8_J   * s
 *   exp          = exps                 * exp_J    * s
 *   div          = divs                 * div_J    * s
 *   v_mac        = v_macs               * v_mac_J  * s
 *   pred_mac8    = pred_mac8            * mac8_J   * s
 *   pred_mac4    = pred_mac4            * mac4_J   * s
 *   pred_bitmac  = pred_bitmacs         * bitmac_J * s
 *   pred_add     = pred_adds            * pred_add_J * s
 *   pred_mul     = pred_muls            * pred_mul_J * s
 *   pred_exp     = pred_exps            * exp_J    * s
 *   pred_cmp     = pred_cmps            * pred_cmp_J * s
 * E_word(B) (spr_ledger_sram_word_J) is the energy of one 64-bit SRAM
 * access of a B-byte buffer: Horowitz's 8 KB / 32 KB / 1 MB reads,
 * interpolated linearly in ln(B), times s; B below 8 KB is priced as 8 KB,
 * B above 1 MB is an error.
 *
 * Cycles of one counts set (a query, or a whole head priced at once),
 * real numbers (no rounding), in two stages:
 *   memory  A = threshold + pred + fetch
 *     threshold = imc_queries * threshold_cycles
 *     pred      = (pred_mac8 + pred_mac4 + pred_bitmacs + pred_adds
 *                  + pred_muls + pred_cmps) / pred_units
 *               + pred_exps / softmax_units
 *                 (a baseline's predictor has its own unit array and
 *                 exponential unit, so it never takes the recompute's
 *                 MAC or softmax units)
 *     fetch     = (reram_bits_read / 8) / reram_read_bytes_per_cycle
 *   compute C = score + softmax + v
 *     score     = score_macs / mac_units
 *     softmax   = (exps + divs) / softmax_units
 *     v         = v_macs / mac_units
 * Queries i = 0 .. n-1 stepped in order (spr_ledger_acc_step) run in
 * lock-step: in step i the memory side serves query i while the compute
 * side finishes query i-1, so with overlap on
 *   total = A_0 + sum_{i=1}^{n-1} max(A_i, C_(i-1)) + C_(n-1)
 * and with overlap off (or for one counts set priced at once)
 *   total = sum_i (A_i + C_i).
 * ReRAM writes (of K and V, and of the scoring arrays), pruning-vector
 * reads and SRAM accesses cost energy but no cycles (docs/energy.md says
 * why).  time_s = total / clock_Hz.
 *
 * Errors: every function returns 0 or SPR_EINVAL with a message
 * (spr_errmsg) naming the function, the field and its value: a NULL
 * argument, a negative count, a parameter that is not finite, a negative
 * energy or scale, a clock, bandwidth or unit rate that is not > 0, SRAM
 * accesses with buffer_bytes < 1 or above 1 MB, a sum that overflows
 * int64.  Nothing here allocates, prints or exits.
 */
#ifndef SPR_LEDGER_H
#define SPR_LEDGER_H

#include <stdint.h>
#include "spr_params.h"

/* Event counts of one head and scheme (or of one query of it).  All >= 0.
 * Recommended mapping from the digital path and the baselines:
 * docs/energy.md, section 4. */
typedef struct {
  int64_t reram_bits_written; /* bits written to ReRAM (keys of the sequence,
                                 values too if the scheme writes them) */
  int64_t xbar_cells_written; /* scoring-array cells programmed (SPRINT:
                                 2 per key element, a differential pair) */
  int64_t xbar_bits_written;  /* their bits: cells x crossbar.cell_bits */
  int64_t imc_queries;        /* queries scored and thresholded in memory */
  int64_t imc_macs;           /* in-memory MACs (query element x key cell) */
  int64_t cmp_decisions;      /* comparator decisions */
  int64_t prune_bits_read;    /* pruning-vector bits read by the controller */
  int64_t reram_bits_read;    /* ReRAM bits read: fetched K and V (and Q) */
  int64_t sram_words_written; /* 64-bit words written to the buffer */
  int64_t sram_words_read;    /* 64-bit words read from the buffer */
  int64_t buffer_bytes;       /* buffer size the SRAM words refer to (bytes;
                                 may be 0 when both SRAM counts are 0) */
  int64_t score_macs;         /* digital 8-bit MACs of the score recompute */
  int64_t exps;               /* softmax exponentials */
  int64_t divs;               /* softmax divisions */
  int64_t v_macs;             /* MACs of the V product */
  int64_t pred_mac8;          /* prediction: 8-bit MACs (oracle, top-k) */
  int64_t pred_mac4;          /* prediction: 4-bit MACs (Sanger) */
  int64_t pred_bitmacs;       /* prediction: 1-bit key MACs (LeOPArd) */
  int64_t pred_adds;          /* prediction: adds and subtracts */
  int64_t pred_muls;          /* prediction: multiplies */
  int64_t pred_exps;          /* prediction: exponentials */
  int64_t pred_cmps;          /* prediction: comparisons */
} spr_ledger_counts;

/* Energy components (spr_ledger_result.energy_J), in the order above. */
enum {
  SPR_LEDGER_E_RERAM_WRITE,
  SPR_LEDGER_E_XBAR_WRITE,
  SPR_LEDGER_E_IMC_MAC,
  SPR_LEDGER_E_CMP,
  SPR_LEDGER_E_PRUNE_READ,
  SPR_LEDGER_E_RERAM_READ,
  SPR_LEDGER_E_SRAM_WRITE,
  SPR_LEDGER_E_SRAM_READ,
  SPR_LEDGER_E_SCORE_MAC,
  SPR_LEDGER_E_EXP,
  SPR_LEDGER_E_DIV,
  SPR_LEDGER_E_V_MAC,
  SPR_LEDGER_E_PRED_MAC8,
  SPR_LEDGER_E_PRED_MAC4,
  SPR_LEDGER_E_PRED_BITMAC,
  SPR_LEDGER_E_PRED_ADD,
  SPR_LEDGER_E_PRED_MUL,
  SPR_LEDGER_E_PRED_EXP,
  SPR_LEDGER_E_PRED_CMP,
  SPR_LEDGER_NE
};

/* Cycle components (spr_ledger_result.cycles), busy cycles summed over
 * queries. */
enum {
  SPR_LEDGER_C_THRESHOLD,
  SPR_LEDGER_C_PRED,
  SPR_LEDGER_C_FETCH,
  SPR_LEDGER_C_SCORE,
  SPR_LEDGER_C_SOFTMAX,
  SPR_LEDGER_C_V,
  SPR_LEDGER_NC
};

typedef struct {
  double energy_J[SPR_LEDGER_NE];
  double total_J;            /* sum of energy_J */
  double cycles[SPR_LEDGER_NC];
  double memory_cycles;      /* sum_i A_i = threshold + pred + fetch */
  double compute_cycles;     /* sum_i C_i = score + softmax + v */
  double serial_cycles;      /* memory_cycles + compute_cycles */
  double total_cycles;       /* latency (formula above) */
  double time_s;             /* total_cycles / clock_Hz */
  int64_t queries;           /* steps taken (1 for spr_ledger_price) */
  spr_ledger_counts counts;  /* the counts priced (summed over the steps) */
} spr_ledger_result;

/* Short names of the components ("reram_write", "fetch"), or NULL when i
 * is out of range. */
const char *spr_ledger_energy_name(int i);
const char *spr_ledger_cycle_name(int i);

/* The defaults of [energy] and [timing] (from the one key table,
 * core/spr_config.c). */
void spr_energy_default(spr_energy_params *e);

/* Check e: every field finite, energies, digital_scale, sram_write_ratio
 * and threshold_cycles >= 0; clock_Hz, reram_read_bytes_per_cycle,
 * mac_units, softmax_units and pred_units > 0.  The message names the
 * config key ("timing.clock").  Returns 0 or SPR_EINVAL. */
int spr_energy_check(const spr_energy_params *e);

/* *J = energy of one 64-bit access (read) of a buffer of buffer_bytes at
 * the target node, E_word above (including digital_scale).  Returns 0 or
 * SPR_EINVAL (NULL argument, e invalid, buffer_bytes < 1 or > 1 MB). */
int spr_ledger_sram_word_J(const spr_energy_params *e, int64_t buffer_bytes,
                           double *J);

/* Price counts c as one step: energies per component and total, cycles
 * per component, total_cycles = memory + compute (no overlap), queries
 * = 1.  out is overwritten.  Returns 0 or SPR_EINVAL. */
int spr_ledger_price(const spr_energy_params *e, const spr_ledger_counts *c,
                     spr_ledger_result *out);

/* *sum += *c, field by field (buffer_bytes: taken from c when sum's is 0;
 * two different non-zero sizes are an error).  Returns 0 or SPR_EINVAL
 * (NULL, a negative count, overflow, mismatched buffer sizes); on error
 * *sum is unchanged. */
int spr_ledger_add(spr_ledger_counts *sum, const spr_ledger_counts *c);

/* Accumulator of one head's queries, stepped in query order ("step, don't
 * call back").  Fields are internal; read the result with
 * spr_ledger_acc_result. */
typedef struct {
  spr_energy_params e;       /* copy of the parameters */
  spr_ledger_counts sum;     /* counts of all steps */
  double cycles[SPR_LEDGER_NC];
  double memory, compute;    /* sum of A_i, sum of C_i */
  double run;                /* latency so far, without the last C */
  double prev_compute;       /* C of the last step */
  int64_t queries;
} spr_ledger_acc;

/* Start an empty accumulator with a copy of e.  Returns 0 or SPR_EINVAL
 * (NULL argument, e invalid). */
int spr_ledger_acc_init(spr_ledger_acc *a, const spr_energy_params *e);

/* Add query i's counts q (queries in order).  Returns 0 or SPR_EINVAL
 * (NULL, a negative count, overflow, a buffer size different from the
 * earlier steps'); on error *a is unchanged. */
int spr_ledger_acc_step(spr_ledger_acc *a, const spr_ledger_counts *q);

/* The ledger of the steps so far: energies of the summed counts, cycles
 * per component, total_cycles by the overlap formula (0 with no step).
 * Returns 0 or SPR_EINVAL (NULL argument, SRAM pricing error). */
int spr_ledger_acc_result(const spr_ledger_acc *a, spr_ledger_result *out);

#endif
