/* spr_config.c - the one table of configuration keys, and the INI parser.
 *
 * Sources of the defaults are in docs/model.md (device and circuit values)
 * and docs/workloads.md (presets); each row's doc line says which.
 */
#include "config.h"
#include "spr_config.h"
#include "spr_error.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  spr_config_key_info info;
  size_t off;      /* offset of the field in spr_config */
  double def;      /* default (enum: index; bool: 0/1) */
  double lo, hi;   /* inclusive range */
} key_row;

#define F(field) offsetof(spr_config, field)
#define INF HUGE_VAL

/* The table.  Ranges are inclusive; open bounds are handled by giving the
 * nearest meaningful value (e.g. g_min > 0 via 1e-15). */
static const key_row keys[] = {
  {{"run", "seed", SPR_KEY_U64, "", "top-level seed of every random stream", NULL}, F(seed), 1, 0, 1.8446744073709552e19},
  {{"run", "trace", SPR_KEY_ENUM, "", "trace detail written to HDF5", "summary|masks|full"}, F(trace), 0, 0, 2},
  {{"run", "block_rows", SPR_KEY_INT, "", "queries per row block of a head: below N, no N x N array is held (long sequences; a multiple of 64); 0 = automatic: the whole head up to N = 512 (up to 4096 when run.trace = full or baselines.match = sprint with Sanger need it), else 256 rows, fewer from N = 43000 on to keep a thread's block scratch near 256 MiB", NULL}, F(block_rows), 0, 0, SPR_MAX_SEQ},
  {{"run", "device_model", SPR_KEY_STRING, "", "device-model HDF5 file from `sprintsim calibrate` (docs/calibration.md), relative to the configuration file's folder; empty = the keys below as given", NULL}, F(device_model), 0, 0, 0},

  {{"workload", "source", SPR_KEY_ENUM, "", "attention inputs: synthetic (the seeded generator, preset below), qkv (Q, K, V of workload.qkv_file, docs/qkv.md) or model (the transformer of workload.model on its evaluation items, docs/models.md; vit is its old name)", "synthetic|qkv|model|vit"}, F(wl.source), 0, 0, 3},
  {{"workload", "qkv_file", SPR_KEY_STRING, "", "sprintsim-qkv HDF5 file of Q, K, V per layer and head (source qkv; docs/qkv.md); relative to the configuration file's folder", NULL}, F(wl.qkv_file), 0, 0, 0},
  {{"workload", "qkv_item", SPR_KEY_INT, "", "batch item of workload.qkv_file to simulate (source qkv)", NULL}, F(wl.qkv_item), 0, 0, SPR_QKV_MAX_BATCH - 1},
  {{"workload", "preset", SPR_KEY_ENUM, "", "synthetic attention preset (docs/workloads.md; source synthetic)", "bert-base|vit-base"}, F(wl.preset), 0, 0, 1},
  {{"workload", "seq_len", SPR_KEY_INT, "", "tokens per sequence N; 0 = preset's (512 BERT, 197 ViT), or with source qkv the item's real (unpadded) tokens", NULL}, F(wl.seq_len), 0, 0, SPR_MAX_SEQ},
  {{"workload", "layers", SPR_KEY_INT, "", "layers; 0 = preset's (12), or with source qkv the file's (fewer: its first layers)", NULL}, F(wl.n_layers), 0, 0, SPR_MAX_LAYERS},
  {{"workload", "heads", SPR_KEY_INT, "", "heads per layer; 0 = preset's (12), or with source qkv the file's (fewer: its first heads)", NULL}, F(wl.n_heads), 0, 0, SPR_MAX_HEADS},
  {{"workload", "head_dim", SPR_KEY_INT, "", "head dimension d; 0 = preset's (64), or with source qkv the file's", NULL}, F(wl.head_dim), 0, 0, SPR_QKV_MAX_DIM},
  {{"workload", "causal", SPR_KEY_BOOL, "", "causal attention: query i attends to keys j <= i only, in every scheme (docs/model.md section 6); a causal model file (source model) is causal whatever this key says, and true refuses a model that is not causal", NULL}, F(wl.causal), 0, 0, 1},
  {{"workload", "model", SPR_KEY_STRING, "", "source model: sprintsim-model HDF5 file (docs/models.md, written by scripts/train_model.py); relative to the configuration file's folder (the default: to the current folder)", NULL}, F(wl.model), 0, 0, 0},
  {{"workload", "reference_model", SPR_KEY_STRING, "", "source model: the dense reference model whose exact-attention accuracy the losses are measured against; empty = the file the model names (its attribute 'reference'), none = no reference row (losses against exact attention); relative to the configuration file's folder", NULL}, F(wl.reference_model), 0, 0, 0},
  {{"workload", "dataset", SPR_KEY_STRING, "", "source model, image models: folder of the Fashion-MNIST IDX files t10k-{images-idx3,labels-idx1}-ubyte.gz (Debian: dataset-fashion-mnist); relative to the configuration file's folder", NULL}, F(wl.dataset), 0, 0, 0},
  {{"workload", "images", SPR_KEY_INT, "", "source model, image models: test images evaluated", NULL}, F(wl.images), 1000, 1, 10000000},
  {{"workload", "first_image", SPR_KEY_INT, "", "source model, image models: index of the first test image evaluated", NULL}, F(wl.first_image), 0, 0, 10000000},
  {{"workload", "windows", SPR_KEY_INT, "", "source model, text models: windows of the evaluation split evaluated (window w: its tokens w N .. w N + N - 1 predict the next ones)", NULL}, F(wl.windows), 16, 1, 10000000},
  {{"workload", "first_window", SPR_KEY_INT, "", "source model, text models: index of the first window evaluated", NULL}, F(wl.first_window), 0, 0, 10000000},

  {{"crossbar", "rows", SPR_KEY_INT, "", "cells per column of one array (key dimensions per array)", NULL}, F(xbar.rows), 64, 1, 4096},
  {{"crossbar", "cols", SPR_KEY_INT, "", "cells per row of one array (even: two columns per key)", NULL}, F(xbar.cols), 64, 2, 4096},
  {{"crossbar", "cell_bits", SPR_KEY_INT, "", "bits per cell (2^bits conductance levels)", NULL}, F(xbar.cell_bits), 4, 1, 8},
  {{"crossbar", "key_bits", SPR_KEY_INT, "", "bits of the signed quantized key", NULL}, F(xbar.key_bits), 8, 2, 8},
  {{"crossbar", "key_msb_bits", SPR_KEY_INT, "", "most significant key bits programmed for scoring", NULL}, F(xbar.key_msb_bits), 4, 1, 8},
  {{"crossbar", "g_min", SPR_KEY_DOUBLE, "S", "conductance of level 0 (HRS)", NULL}, F(xbar.g_min_S), 1e-6, 1e-12, 1},
  {{"crossbar", "g_max", SPR_KEY_DOUBLE, "S", "conductance of the top level (LRS)", NULL}, F(xbar.g_max_S), 1e-4, 1e-12, 1},
  {{"crossbar", "variation", SPR_KEY_BOOL, "", "lognormal programming variation", NULL}, F(xbar.variation), 1, 0, 1},
  {{"crossbar", "prog_sigma", SPR_KEY_DOUBLE, "", "sigma of ln G after programming", NULL}, F(xbar.prog_sigma), 0.05, 0, 2},
  {{"crossbar", "stuck_at", SPR_KEY_BOOL, "", "stuck-at-ON/OFF cells", NULL}, F(xbar.stuck), 1, 0, 1},
  {{"crossbar", "stuck_on_rate", SPR_KEY_DOUBLE, "", "probability a cell is stuck at g_max", NULL}, F(xbar.stuck_on_rate), 0.001, 0, 1},
  {{"crossbar", "stuck_off_rate", SPR_KEY_DOUBLE, "", "probability a cell is stuck at g_min", NULL}, F(xbar.stuck_off_rate), 0.001, 0, 1},
  {{"crossbar", "drift", SPR_KEY_BOOL, "", "power-law conductance drift", NULL}, F(xbar.drift), 1, 0, 1},
  {{"crossbar", "drift_nu", SPR_KEY_DOUBLE, "", "drift exponent nu in G(t) = G(t0) (t/t0)^-nu", NULL}, F(xbar.drift_nu), 0.005, 0, 1},
  {{"crossbar", "drift_time", SPR_KEY_DOUBLE, "s", "time t since programming", NULL}, F(xbar.drift_t_s), 3600, 1e-9, 1e10},
  {{"crossbar", "drift_t0", SPR_KEY_DOUBLE, "s", "reference time t0 of the programmed value", NULL}, F(xbar.drift_t0_s), 1, 1e-9, 1e10},
  {{"crossbar", "ir_drop", SPR_KEY_ENUM, "", "IR-drop model of word and bit lines: first_order (with the ir_alpha scales; refused beyond a 0.2 correction) or nodal (exact solve of each array with the raw r_wl, r_bl; slower; docs/model.md)", "off|first_order|nodal"}, F(xbar.ir_drop), 1, 0, 2},
  {{"crossbar", "r_wl", SPR_KEY_DOUBLE, "ohm", "word-line segment resistance per cell", NULL}, F(xbar.r_wl_ohm), 2.5, 0, 1e6},
  {{"crossbar", "r_bl", SPR_KEY_DOUBLE, "ohm", "bit-line segment resistance per cell", NULL}, F(xbar.r_bl_ohm), 2.5, 0, 1e6},
  {{"crossbar", "ir_alpha_wl", SPR_KEY_DOUBLE, "", "scale alpha_wl of the word-line term of the first-order IR model (1 = plain model; fitted by calibration, docs/calibration.md; unused by ir_drop = nodal)", NULL}, F(xbar.ir_alpha_wl), 1, 0, 10},
  {{"crossbar", "ir_alpha_bl", SPR_KEY_DOUBLE, "", "scale alpha_bl of the bit-line term of the first-order IR model (1 = plain model; unused by ir_drop = nodal)", NULL}, F(xbar.ir_alpha_bl), 1, 0, 10},
  {{"crossbar", "cell_v0", SPR_KEY_DOUBLE, "V", "cell I-V nonlinearity: I = G V0 sinh(V/V0) at row voltage V; 0 = linear cell", NULL}, F(xbar.cell_v0_V), 0, 0, 100},

  {{"analog", "query_bits", SPR_KEY_INT, "", "bits of the signed quantized query", NULL}, F(an.query_bits), 4, 2, 8},
  {{"analog", "v_read", SPR_KEY_DOUBLE, "V", "row voltage of the largest query code", NULL}, F(an.v_read_V), 0.2, 1e-6, 10},
  {{"analog", "dac_error", SPR_KEY_BOOL, "", "gain error of each row DAC", NULL}, F(an.dac_error), 1, 0, 1},
  {{"analog", "dac_gain_sigma", SPR_KEY_DOUBLE, "", "relative sigma of a row DAC's gain", NULL}, F(an.dac_gain_sigma), 0.01, 0, 0.1},
  {{"analog", "read_noise", SPR_KEY_BOOL, "", "thermal, shot and relative read noise", NULL}, F(an.read_noise), 1, 0, 1},
  {{"analog", "temperature", SPR_KEY_DOUBLE, "K", "temperature of the array (thermal noise)", NULL}, F(an.temperature_K), 300, 0, 1000},
  {{"analog", "bandwidth", SPR_KEY_DOUBLE, "Hz", "noise bandwidth of the column sense", NULL}, F(an.bandwidth_Hz), 1e8, 0, 1e12},
  {{"analog", "read_rel_sigma", SPR_KEY_DOUBLE, "", "relative sigma of a cell current per read", NULL}, F(an.read_rel_sigma), 0.01, 0, 1},
  {{"analog", "thermal_excess", SPR_KEY_DOUBLE, "", "excess factor F of the thermal noise 4 k T B sum G (1 = ideal resistors; fitted by calibration)", NULL}, F(an.thermal_excess), 1, 0, 1000},
  {{"analog", "cmp_offset", SPR_KEY_BOOL, "", "static comparator offset per column", NULL}, F(an.cmp_offset), 1, 0, 1},
  {{"analog", "cmp_offset_sigma", SPR_KEY_DOUBLE, "A", "sigma of the comparator offset (input-referred)", NULL}, F(an.cmp_offset_sigma_A), 2e-8, 0, 1},
  {{"analog", "cmp_noise", SPR_KEY_BOOL, "", "comparator noise per decision", NULL}, F(an.cmp_noise), 1, 0, 1},
  {{"analog", "cmp_noise_sigma", SPR_KEY_DOUBLE, "A", "sigma of the comparator noise per decision (input-referred)", NULL}, F(an.cmp_noise_sigma_A), 1e-8, 0, 1},

  {{"threshold", "mode", SPR_KEY_ENUM, "", "keep_rate: calibrate to a target keep rate of the ideal (exact quantized) decisions; analog_keep_rate: to a target keep rate of the analog decisions, with the same noise draws for every candidate (docs/model.md section 7); direct: use values; learned: the model file's threshold per layer plus offset (source model)", "keep_rate|direct|learned|analog_keep_rate"}, F(thr.mode), 0, 0, 3},
  {{"threshold", "keep_rate", SPR_KEY_DOUBLE, "", "target fraction of keys kept (modes keep_rate and analog_keep_rate)", NULL}, F(thr.keep_rate), 0.15, 1e-6, 1},
  {{"threshold", "per_head", SPR_KEY_BOOL, "", "one threshold per head instead of one per layer", NULL}, F(thr.per_head), 0, 0, 1},
  {{"threshold", "values", SPR_KEY_LIST, "score", "thresholds in score units (mode direct): 1, one per layer, or one per layer and head", NULL}, F(thr.values), 0, -1e9, 1e9},
  {{"threshold", "bits", SPR_KEY_INT, "", "resolution of the threshold generator", NULL}, F(thr.bits), 5, 1, 16},
  {{"threshold", "range", SPR_KEY_DOUBLE, "score", "threshold full scale in score units; 0 = max |ideal score|", NULL}, F(thr.range), 0, 0, 1e9},
  {{"threshold", "offset", SPR_KEY_DOUBLE, "", "mode learned: added to the learned threshold, in units of the scaled score q.k / sqrt(d) (docs/models.md)", NULL}, F(thr.offset), 0, -1e3, 1e3},

  /* [energy] and [timing]: the ledger's constants, sources in docs/energy.md.
   * "45 nm" figures are Horowitz (ISSCC 2014) values that the ledger
   * multiplies by digital_scale; the others are used as given. */
  {{"energy", "reram_write_per_bit", SPR_KEY_DOUBLE, "J", "ReRAM write energy per bit (SPRINT, 65 nm)", NULL}, F(energy.reram_write_J_per_bit), 24.4e-12, 0, 1e-6},
  {{"energy", "xbar_write_per_bit", SPR_KEY_DOUBLE, "J", "programming SPRINT's scoring arrays, per bit of a cell (crossbar.cell_bits per cell; SPRINT: the ReRAM write, 24.4 pJ/bit, 65 nm)", NULL}, F(energy.xbar_write_J_per_bit), 24.4e-12, 0, 1e-6},
  {{"energy", "xbar_write_per_cell", SPR_KEY_DOUBLE, "J", "programming SPRINT's scoring arrays, per cell on top of its bits (program-and-verify overhead; design choice: 0, docs/energy.md)", NULL}, F(energy.xbar_write_J_per_cell), 0, 0, 1e-6},
  {{"energy", "reram_read_per_bit", SPR_KEY_DOUBLE, "J", "ReRAM read energy per bit of fetched data (SPRINT, 65 nm)", NULL}, F(energy.reram_read_J_per_bit), 3.1e-12, 0, 1e-6},
  {{"energy", "imc_mac_per_op", SPR_KEY_DOUBLE, "J", "energy of one in-memory MAC (SPRINT, 65 nm)", NULL}, F(energy.imc_mac_J), 0.10e-12, 0, 1e-6},
  {{"energy", "cmp_per_decision", SPR_KEY_DOUBLE, "J", "energy of one comparator decision (design choice, until SPICE calibration)", NULL}, F(energy.cmp_J), 0.05e-12, 0, 1e-6},
  {{"energy", "digital_scale", SPR_KEY_DOUBLE, "", "factor from the 45 nm digital and SRAM figures below to the 65 nm node (65/45)", NULL}, F(energy.digital_scale), 65.0 / 45.0, 0, 100},
  {{"energy", "prune_read_per_bit", SPR_KEY_DOUBLE, "J", "pruning-vector read per bit (45 nm: 8 KB SRAM, 10 pJ / 64 bits)", NULL}, F(energy.prune_read_J_per_bit), 0.15625e-12, 0, 1e-6},
  {{"energy", "sram_8k_read_per_word", SPR_KEY_DOUBLE, "J", "64-bit read of an 8 KB SRAM (45 nm, Horowitz)", NULL}, F(energy.sram_8k_J_per_word), 10e-12, 0, 1e-6},
  {{"energy", "sram_32k_read_per_word", SPR_KEY_DOUBLE, "J", "64-bit read of a 32 KB SRAM (45 nm, Horowitz)", NULL}, F(energy.sram_32k_J_per_word), 20e-12, 0, 1e-6},
  {{"energy", "sram_1m_read_per_word", SPR_KEY_DOUBLE, "J", "64-bit read of a 1 MB SRAM (45 nm, Horowitz)", NULL}, F(energy.sram_1m_J_per_word), 100e-12, 0, 1e-6},
  {{"energy", "sram_write_ratio", SPR_KEY_DOUBLE, "", "SRAM write energy over read energy (design choice)", NULL}, F(energy.sram_write_ratio), 1, 0, 100},
  {{"energy", "mac8_per_op", SPR_KEY_DOUBLE, "J", "8-bit score MAC: 8-bit multiply + 32-bit add (45 nm, Horowitz)", NULL}, F(energy.mac8_J), 0.3e-12, 0, 1e-6},
  {{"energy", "v_mac_per_op", SPR_KEY_DOUBLE, "J", "MAC of the V product, 8-bit probability x 8-bit value (45 nm)", NULL}, F(energy.v_mac_J), 0.3e-12, 0, 1e-6},
  {{"energy", "exp_per_op", SPR_KEY_DOUBLE, "J", "exponential: 4 fp16 multiply-adds (45 nm; design choice)", NULL}, F(energy.exp_J), 6.0e-12, 0, 1e-6},
  {{"energy", "div_per_op", SPR_KEY_DOUBLE, "J", "softmax division: 3 fp16 multiply-adds (45 nm; design choice)", NULL}, F(energy.div_J), 4.5e-12, 0, 1e-6},
  {{"energy", "mac4_per_op", SPR_KEY_DOUBLE, "J", "4-bit prediction MAC: 4x4 multiply + 16-bit add (45 nm, scaled)", NULL}, F(energy.mac4_J), 0.11e-12, 0, 1e-6},
  {{"energy", "bitmac_per_op", SPR_KEY_DOUBLE, "J", "bit-serial MAC, 1 key bit x 8-bit query + 16-bit add (45 nm, scaled)", NULL}, F(energy.bitmac_J), 0.085e-12, 0, 1e-6},
  {{"energy", "pred_add_per_op", SPR_KEY_DOUBLE, "J", "prediction add or subtract: fp16 add (45 nm, Horowitz)", NULL}, F(energy.pred_add_J), 0.4e-12, 0, 1e-6},
  {{"energy", "pred_mul_per_op", SPR_KEY_DOUBLE, "J", "prediction multiply: fp16 multiply (45 nm, Horowitz)", NULL}, F(energy.pred_mul_J), 1.1e-12, 0, 1e-6},
  {{"energy", "pred_cmp_per_op", SPR_KEY_DOUBLE, "J", "prediction comparison: 32-bit add (45 nm, Horowitz)", NULL}, F(energy.pred_cmp_J), 0.1e-12, 0, 1e-6},

  {{"timing", "clock", SPR_KEY_DOUBLE, "Hz", "clock frequency (SPRINT: 1 GHz)", NULL}, F(energy.clock_Hz), 1e9, 1e3, 1e12},
  {{"timing", "threshold_cycles", SPR_KEY_DOUBLE, "", "cycles of the in-memory score and comparison of one query (SPRINT: under 8)", NULL}, F(energy.threshold_cycles), 8, 0, 1e9},
  {{"timing", "reram_read_bytes_per_cycle", SPR_KEY_DOUBLE, "", "ReRAM read bandwidth in bytes per cycle (design choice: 64, a 512-bit port)", NULL}, F(energy.reram_read_bytes_per_cycle), 64, 1e-6, 1e9},
  {{"timing", "mac_units", SPR_KEY_DOUBLE, "", "8-bit MACs per cycle of the recompute and V product (design choice)", NULL}, F(energy.mac_units), 64, 1e-6, 1e9},
  {{"timing", "softmax_units", SPR_KEY_DOUBLE, "", "exponentials or divisions per cycle (design choice)", NULL}, F(energy.softmax_units), 1, 1e-6, 1e9},
  {{"timing", "pred_units", SPR_KEY_DOUBLE, "", "low-bit, bit-serial, add, multiply and compare prediction operations per cycle (design choice)", NULL}, F(energy.pred_units), 256, 1e-6, 1e9},
  {{"timing", "overlap", SPR_KEY_BOOL, "", "overlap the fetch of query i with the compute of query i-1", NULL}, F(energy.overlap), 1, 0, 1},

  {{"wear", "endurance", SPR_KEY_DOUBLE, "", "writes a scoring-array cell survives (default: 1e6, HfOx RRAM with 4 levels per cell, Huang et al., IEDM 2013; docs/energy.md section 8)", NULL}, F(wear.endurance), 1e6, 1, 1e18},
  {{"wear", "sequence_rate", SPR_KEY_DOUBLE, "Hz", "sequences per second for the time to wear-out; 0 = the run's back-to-back rate (clock / SPRINT's latency of one sequence)", NULL}, F(wear.sequence_rate_Hz), 0, 0, 1e12},
  {{"wear", "scoring_cells", SPR_KEY_DOUBLE, "", "physical scoring-array cells, shared by every head and layer with ideal wear levelling; 0 = every head has arrays of its own (one write per cell per sequence)", NULL}, F(wear.scoring_cells), 0, 0, 1e18},

  {{"digital", "buffer_bytes", SPR_KEY_INT, "", "on-chip buffer for fetched keys and values, bytes (SPRINT: 16384 S-, 32768 M-, 65536 L-SPRINT)", NULL}, F(dig.buffer_bytes), 16384, 128, 1048576},
  {{"digital", "policy", SPR_KEY_ENUM, "", "buffer reuse: sprint keeps the previous query's survivors; lru keeps the most recently used", "sprint|lru"}, F(dig.policy), 0, 0, 1},
  {{"digital", "recompute_query_bits", SPR_KEY_INT, "", "bits of the query in the exact recompute", NULL}, F(dig.query_bits), 8, 2, 8},
  {{"digital", "value_bits", SPR_KEY_INT, "", "bits of the values fetched and multiplied", NULL}, F(dig.value_bits), 8, 2, 8},
  {{"digital", "tile_tokens", SPR_KEY_INT, "", "dense_tiled: tokens of a K/V tile; 0 = the power of two (or N) that makes each head cheapest in energy (docs/energy.md section 10)", NULL}, F(dig.tile_tokens), 0, 0, SPR_MAX_SEQ},
  {{"digital", "top_k", SPR_KEY_INT, "", "k of the top-k recall metric", NULL}, F(dig.top_k), 5, 1, 4096},

  {{"baselines", "dense_tiled", SPR_KEY_BOOL, "", "dense attention tiled over query blocks, each K/V tile read once per block (FlashAttention-like; docs/energy.md section 10)", NULL}, F(bl.dense_tiled), 1, 0, 1},
  {{"baselines", "match", SPR_KEY_ENUM, "", "none: every baseline at its own setting (threshold.keep_rate for the oracle and LeOPArd, topk_fraction, sanger_threshold, window_half_width); sprint: each baseline's setting searched, per layer, for SPRINT's realised (analog) keep rate of that layer (docs/baselines.md section 6)", "none|sprint"}, F(bl.match), 0, 0, 1},
  {{"baselines", "oracle", SPR_KEY_BOOL, "", "exact 8-bit scores against a threshold calibrated to threshold.keep_rate", NULL}, F(bl.oracle), 1, 0, 1},
  {{"baselines", "topk", SPR_KEY_BOOL, "", "top-k keys per query (SpAtten-like)", NULL}, F(bl.topk), 1, 0, 1},
  {{"baselines", "sanger", SPR_KEY_BOOL, "", "4-bit prediction, softmax, probability threshold (Sanger-like)", NULL}, F(bl.sanger), 1, 0, 1},
  {{"baselines", "leopard", SPR_KEY_BOOL, "", "bit-serial early termination at the oracle's threshold (LeOPArd-like)", NULL}, F(bl.leopard), 1, 0, 1},
  {{"baselines", "window", SPR_KEY_BOOL, "", "sliding window plus global tokens (SALO/Longformer-like)", NULL}, F(bl.window), 1, 0, 1},
  {{"baselines", "topk_fraction", SPR_KEY_DOUBLE, "", "keys kept per query by top-k, fraction of N", NULL}, F(bl.topk_fraction), 0.15, 1e-6, 1},
  {{"baselines", "sanger_threshold", SPR_KEY_DOUBLE, "", "probability threshold of the Sanger-like prediction (Sanger: 2e-3)", NULL}, F(bl.sanger_threshold), 2e-3, 1e-9, 1},
  {{"baselines", "window_half_width", SPR_KEY_INT, "", "keys on each side of the query in the window baseline", NULL}, F(bl.window_half_width), 32, 0, 1 << 20},
  {{"baselines", "window_globals", SPR_KEY_INT, "", "global tokens (positions 0..g-1) of the window baseline", NULL}, F(bl.window_globals), 1, 0, 1 << 20},
};

#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

/* Defaults of the string keys that have one (the others default to ""). */
static const struct {
  size_t off;
  const char *text;
} string_defaults[] = {
  {F(wl.model), "models/vit-fmnist.h5"},
  {F(wl.dataset), "/usr/share/datasets/fashion-mnist"},
};

static const char *string_default(size_t off) {
  for (size_t i = 0; i < sizeof string_defaults / sizeof string_defaults[0]; i++)
    if (string_defaults[i].off == off) return string_defaults[i].text;
  return "";
}

int spr_config_nkeys(void) { return NKEYS; }

const spr_config_key_info *spr_config_key(int i) {
  return (i >= 0 && i < NKEYS) ? &keys[i].info : NULL;
}

static void *field(spr_config *c, const key_row *k) {
  return (char *)c + k->off;
}
static const void *cfield(const spr_config *c, const key_row *k) {
  return (const char *)c + k->off;
}

void spr_config_default(spr_config *c) {
  memset(c, 0, sizeof *c);
  for (int i = 0; i < NKEYS; i++) {
    const key_row *k = &keys[i];
    switch (k->info.type) {
    case SPR_KEY_INT:
    case SPR_KEY_BOOL:
    case SPR_KEY_ENUM: *(int *)field(c, k) = (int)k->def; break;
    case SPR_KEY_U64: *(uint64_t *)field(c, k) = (uint64_t)k->def; break;
    case SPR_KEY_DOUBLE: *(double *)field(c, k) = k->def; break;
    case SPR_KEY_LIST: c->thr.n_values = 0; break;
    case SPR_KEY_STRING: snprintf((char *)field(c, k), SPR_STRING_MAX, "%s", string_default(k->off)); break;
    }
  }
}

const char *spr_preset_name(int preset) {
  return preset == SPR_PRESET_VIT_BASE ? "vit-base" : "bert-base";
}

static const key_row *find_key(const char *section, const char *name) {
  for (int i = 0; i < NKEYS; i++)
    if (!strcmp(keys[i].info.section, section) && !strcmp(keys[i].info.name, name))
      return &keys[i];
  return NULL;
}

static int section_known(const char *section) {
  for (int i = 0; i < NKEYS; i++)
    if (!strcmp(keys[i].info.section, section)) return 1;
  return 0;
}

/* Scale of an SI prefix, 0 if `p` is not one. */
static double si_prefix(char p) {
  switch (p) {
  case 'f': return 1e-15;
  case 'p': return 1e-12;
  case 'n': return 1e-9;
  case 'u': return 1e-6;
  case 'm': return 1e-3;
  case 'k': return 1e3;
  case 'M': return 1e6;
  case 'G': return 1e9;
  default: return 0;
  }
}

#define CFG_ERR(...) spr_error(SPR_ECONFIG, __VA_ARGS__)

/* Parse a number with an optional [prefix]unit suffix matching `unit`. */
static int parse_double(const char *origin, const key_row *k, const char *v,
                        double *out) {
  const char *s = v;
  while (isspace((unsigned char)*s)) s++;
  if (!*s)
    return CFG_ERR("%s: key '%s.%s': empty value", origin, k->info.section, k->info.name);
  char *end;
  errno = 0;
  double x = strtod(s, &end);
  /* ERANGE with a finite result is underflow to a tiny value: keep it */
  if (end == s || !isfinite(x) || (errno == ERANGE && fabs(x) == HUGE_VAL))
    return CFG_ERR("%s: key '%s.%s': value '%s' is not a finite number", origin,
                   k->info.section, k->info.name, v);
  while (isspace((unsigned char)*end)) end++;
  if (*end) {
    const char *unit = k->info.unit;
    size_t ul = strlen(unit), rl = strlen(end);
    double scale = 1;
    int ok = 0;
    if (ul > 0 && rl == ul && !strcmp(end, unit)) ok = 1;
    else if (ul > 0 && rl == ul + 1 && !strcmp(end + 1, unit) && (scale = si_prefix(end[0])) != 0)
      ok = 1;
    if (!ok) {
      if (ul == 0)
        return CFG_ERR("%s: key '%s.%s': value '%s' has unit '%s' but the key is dimensionless",
                       origin, k->info.section, k->info.name, v, end);
      return CFG_ERR("%s: key '%s.%s': value '%s' has unit '%s', expected %s (with an optional SI prefix f p n u m k M G)",
                     origin, k->info.section, k->info.name, v, end, unit);
    }
    x *= scale;
  }
  *out = x;
  return 0;
}

static int check_range(const char *origin, const key_row *k, const char *v, double x) {
  if (x < k->lo || x > k->hi)
    return CFG_ERR("%s: key '%s.%s': value '%s' out of range [%g, %g]", origin,
                   k->info.section, k->info.name, v, k->lo, k->hi);
  return 0;
}

static int parse_int_text(const char *origin, const key_row *k, const char *v,
                          long long *out) {
  const char *s = v;
  while (isspace((unsigned char)*s)) s++;
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  while (end && isspace((unsigned char)*end)) end++;
  if (end == s || *end || errno == ERANGE || *s == '\0')
    return CFG_ERR("%s: key '%s.%s': value '%s' is not an integer", origin,
                   k->info.section, k->info.name, v);
  *out = x;
  return 0;
}

int spr_config_set(spr_config *c, const char *section, const char *name,
                   const char *value, const char *origin) {
  const key_row *k = find_key(section, name);
  if (!k) {
    if (!section_known(section))
      return CFG_ERR("%s: unknown section '[%s]' (key '%s')", origin, section, name);
    return CFG_ERR("%s: unknown key '%s.%s' (value '%s')", origin, section, name, value);
  }
  int rc;
  switch (k->info.type) {
  case SPR_KEY_INT: {
    long long x = 0;
    if ((rc = parse_int_text(origin, k, value, &x))) return rc;
    if ((rc = check_range(origin, k, value, (double)x))) return rc;
    *(int *)field(c, k) = (int)x;
    return 0;
  }
  case SPR_KEY_U64: {
    const char *s = value;
    while (isspace((unsigned char)*s)) s++;
    char *end;
    errno = 0;
    if (*s == '-' || !isdigit((unsigned char)*s))
      return CFG_ERR("%s: key '%s.%s': value '%s' is not a non-negative integer",
                     origin, section, name, value);
    unsigned long long x = strtoull(s, &end, 10);
    while (isspace((unsigned char)*end)) end++;
    if (*end || errno == ERANGE)
      return CFG_ERR("%s: key '%s.%s': value '%s' is not an integer in [0, 2^64)",
                     origin, section, name, value);
    *(uint64_t *)field(c, k) = (uint64_t)x;
    return 0;
  }
  case SPR_KEY_DOUBLE: {
    double x;
    if ((rc = parse_double(origin, k, value, &x))) return rc;
    if ((rc = check_range(origin, k, value, x))) return rc;
    *(double *)field(c, k) = x;
    return 0;
  }
  case SPR_KEY_BOOL: {
    static const char *t[] = {"true", "yes", "on", "1"}, *f[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
      if (!strcmp(value, t[i])) { *(int *)field(c, k) = 1; return 0; }
      if (!strcmp(value, f[i])) { *(int *)field(c, k) = 0; return 0; }
    }
    return CFG_ERR("%s: key '%s.%s': value '%s' is not a boolean (true/false, yes/no, on/off, 1/0)",
                   origin, section, name, value);
  }
  case SPR_KEY_ENUM: {
    const char *ch = k->info.choices;
    int idx = 0;
    size_t vl = strlen(value);
    while (ch && *ch) {
      const char *bar = strchr(ch, '|');
      size_t l = bar ? (size_t)(bar - ch) : strlen(ch);
      if (l == vl && !strncmp(ch, value, l)) { *(int *)field(c, k) = idx; return 0; }
      idx++;
      ch = bar ? bar + 1 : NULL;
    }
    return CFG_ERR("%s: key '%s.%s': value '%s' is not one of %s", origin, section,
                   name, value, k->info.choices);
  }
  case SPR_KEY_LIST: {
    double *vals = field(c, k);
    int n = 0;
    const char *p = value;
    char item[128];
    for (;;) {
      const char *comma = strchr(p, ',');
      size_t l = comma ? (size_t)(comma - p) : strlen(p);
      if (l >= sizeof item)
        return CFG_ERR("%s: key '%s.%s': item '%.40s...' too long", origin, section, name, p);
      memcpy(item, p, l);
      item[l] = '\0';
      if (n >= SPR_MAX_THRESHOLDS)
        return CFG_ERR("%s: key '%s.%s': more than %d values", origin, section, name,
                       SPR_MAX_THRESHOLDS);
      double x;
      if ((rc = parse_double(origin, k, item, &x))) return rc;
      if ((rc = check_range(origin, k, item, x))) return rc;
      vals[n++] = x;
      if (!comma) break;
      p = comma + 1;
    }
    c->thr.n_values = n;
    return 0;
  }
  case SPR_KEY_STRING: {
    size_t l = strlen(value);
    if (l >= SPR_STRING_MAX)
      return CFG_ERR("%s: key '%s.%s': value '%.40s...' is %zu bytes long (at most %d)", origin,
                     section, name, value, l, SPR_STRING_MAX - 1);
    memcpy(field(c, k), value, l + 1);
    return 0;
  }
  }
  return spr_error(SPR_EINTERNAL, "config: key type %d", k->info.type);
}

static const int preset_defaults[2][4] = {
  /* seq_len, layers, heads, head_dim */
  {512, 12, 12, 64}, /* BERT-base (Devlin et al. 2019) */
  {197, 12, 12, 64}, /* ViT-Base/16 at 224x224 (Dosovitskiy et al. 2021) */
};

/* How overrides are named in messages (spr_config_src.set_name): set by
 * the loading thread for its resolve; "override" otherwise. */
static _Thread_local const char *override_name = "override";

/* "origin:line" of key section.name, or else of section.alt (NULL: none),
 * when the file gave that key; "origin (--set section.key)" when an
 * override gave it (line -1); otherwise origin alone. */
static const char *where(char *buf, size_t n, const char *origin, const int *lines,
                         const char *section, const char *name, const char *alt) {
  const key_row *k = find_key(section, name), *a = alt ? find_key(section, alt) : NULL;
  const int line = (lines && k) ? lines[k - keys] : 0, aline = (lines && a) ? lines[a - keys] : 0;
  const int at = line > 0 ? line : aline > 0 ? aline : 0;
  const char *over = line < 0 ? name : aline < 0 ? alt : NULL; /* given by an override */
  int w = at > 0 ? snprintf(buf, n, "%s:%d", origin, at) : snprintf(buf, n, "%s", origin);
  if (over && w >= 0 && (size_t)w < n)
    snprintf(buf + w, n - (size_t)w, " (%s %s.%s)", override_name, section, over);
  return buf;
}

/* A string key's value that names no file: reference_model's "none". */
static int names_no_file(const key_row *k, const char *f) {
  return !f[0] || f[0] == '/' || (k->off == F(wl.reference_model) && !strcmp(f, "none"));
}

/* Checks between keys; lines[i] is the line of key i in the file (or NULL). */
static int resolve(spr_config *c, const char *origin, const int *lines) {
  char w[1200];
#define AT(sec, name) where(w, sizeof w, origin, lines, sec, name, NULL)
#define AT2(sec, name, alt) where(w, sizeof w, origin, lines, sec, name, alt)
  /* file names (every string key) become absolute, so a resolved
   * configuration means the same files from any current directory (a
   * file's relative names were already taken from its folder) */
  for (int i = 0; i < NKEYS; i++) {
    const key_row *k = &keys[i];
    char *f = field(c, k);
    if (k->info.type != SPR_KEY_STRING || names_no_file(k, f)) continue;
    char cwd[SPR_STRING_MAX];
    if (!getcwd(cwd, sizeof cwd))
      return CFG_ERR("%s: key '%s.%s': cannot make '%.200s' absolute: %s",
                     AT(k->info.section, k->info.name), k->info.section, k->info.name, f,
                     strerror(errno));
    const char *rel = f[0] == '.' && f[1] == '/' ? f + 2 : f;
    size_t cl = strlen(cwd), rl = strlen(rel);
    if (cl + 1 + rl >= SPR_STRING_MAX)
      return CFG_ERR("%s: key '%s.%s': '%.200s' joined to the current directory is longer than %d bytes",
                     AT(k->info.section, k->info.name), k->info.section, k->info.name, f,
                     SPR_STRING_MAX - 1);
    memmove(f + cl + 1, rel, rl + 1);
    memcpy(f, cwd, cl);
    f[cl] = '/';
  }
  if (c->wl.source == SPR_SOURCE_VIT) c->wl.source = SPR_SOURCE_MODEL; /* the old name */
  if (c->wl.source == SPR_SOURCE_QKV) {
    /* the sizes left at 0 come from the file: spr_qkv_resolve()
     * (workloads/spr_qkv.h) fills them and calls this again */
    if (!c->wl.qkv_file[0])
      return CFG_ERR("%s: key 'workload.qkv_file' is required when workload.source = qkv",
                     AT("workload", "source"));
  } else {
    if (c->wl.qkv_file[0])
      return CFG_ERR("%s: key 'workload.qkv_file' ('%.200s') is set but workload.source is %s; set source = qkv or remove the key",
                     AT("workload", "qkv_file"), c->wl.qkv_file,
                     c->wl.source == SPR_SOURCE_MODEL ? "model" : "synthetic");
    if (c->wl.qkv_item)
      return CFG_ERR("%s: key 'workload.qkv_item' (%d) is set but workload.source is %s",
                     AT("workload", "qkv_item"), c->wl.qkv_item,
                     c->wl.source == SPR_SOURCE_MODEL ? "model" : "synthetic");
    const int *pd = preset_defaults[c->wl.preset ? 1 : 0];
    if (c->wl.seq_len == 0) c->wl.seq_len = pd[0];
    if (c->wl.n_layers == 0) c->wl.n_layers = pd[1];
    if (c->wl.n_heads == 0) c->wl.n_heads = pd[2];
    if (c->wl.head_dim == 0) c->wl.head_dim = pd[3];
  }
  if (c->wl.seq_len < 2 && !(c->wl.source == SPR_SOURCE_QKV && c->wl.seq_len == 0))
    return CFG_ERR("%s: key 'workload.seq_len': value %d is too small (at least 2)",
                   AT("workload", "seq_len"), c->wl.seq_len);
  const spr_xbar_params *x = &c->xbar;
  if (x->cols % 2)
    return CFG_ERR("%s: key 'crossbar.cols': value %d is odd; signed keys need column pairs",
                   AT("crossbar", "cols"), x->cols);
  if (!(x->g_min_S < x->g_max_S))
    return CFG_ERR("%s: keys 'crossbar.g_min' (%g S) and 'crossbar.g_max' (%g S): g_min must be below g_max",
                   AT2("crossbar", "g_max", "g_min"), x->g_min_S, x->g_max_S);
  if (x->key_msb_bits > x->key_bits)
    return CFG_ERR("%s: key 'crossbar.key_msb_bits': value %d exceeds key_bits (%d)",
                   AT2("crossbar", "key_msb_bits", "key_bits"), x->key_msb_bits, x->key_bits);
  /* A signed b-bit key has magnitude up to 2^(b-1); in a differential pair
   * one cell holds it, so it needs 2^(b-1) <= 2^cell_bits - 1 levels. */
  if ((1 << (x->key_msb_bits - 1)) > (1 << x->cell_bits) - 1)
    return CFG_ERR("%s: key 'crossbar.key_msb_bits': value %d needs magnitudes up to %d but a %d-bit cell has %d levels above g_min",
                   AT2("crossbar", "key_msb_bits", "cell_bits"), x->key_msb_bits, 1 << (x->key_msb_bits - 1),
                   x->cell_bits, (1 << x->cell_bits) - 1);
  if (x->stuck_on_rate + x->stuck_off_rate > 1)
    return CFG_ERR("%s: keys 'crossbar.stuck_on_rate' (%g) + 'crossbar.stuck_off_rate' (%g) exceed 1",
                   AT2("crossbar", "stuck_off_rate", "stuck_on_rate"), x->stuck_on_rate, x->stuck_off_rate);
  /* sinh(v_read / V0) beyond sinh(20) = 2.4e8 is no physical cell, and
   * overflows single-precision scores soon after */
  if (x->cell_v0_V > 0 && c->an.v_read_V > 20 * x->cell_v0_V)
    return CFG_ERR("%s: key 'crossbar.cell_v0': value %g V is below analog.v_read / 20 (%g V): "
                   "sinh(v_read / V0) = %.3g is outside any physical cell",
                   AT2("crossbar", "cell_v0", "v_read"), x->cell_v0_V, c->an.v_read_V / 20,
                   sinh(c->an.v_read_V / x->cell_v0_V));
  if (x->drift_t_s < x->drift_t0_s)
    return CFG_ERR("%s: key 'crossbar.drift_time': value %g s is before drift_t0 (%g s); drift runs forward only",
                   AT2("crossbar", "drift_time", "drift_t0"), x->drift_t_s, x->drift_t0_s);
  const spr_thr_params *t = &c->thr;
  if (t->range > 0 && t->range < 1e-3)
    return CFG_ERR("%s: key 'threshold.range': value %g is neither 0 (auto) nor at least 0.001 score units",
                   AT("threshold", "range"), t->range);
  if (t->mode == SPR_THR_LEARNED && c->wl.source != SPR_SOURCE_MODEL)
    return CFG_ERR("%s: key 'threshold.mode': value 'learned' needs workload.source = model "
                   "(the thresholds come from the model file)", AT("threshold", "mode"));
  if (c->wl.source == SPR_SOURCE_MODEL && c->wl.model[0] == '\0')
    return CFG_ERR("%s: key 'workload.model' is empty; source model needs a model file",
                   AT("workload", "model"));
  /* with source qkv, L and H may still be 0 (the file's): counted later */
  if (t->mode == SPR_THR_DIRECT && (t->n_values == 0 || (c->wl.n_layers > 0 && c->wl.n_heads > 0))) {
    int L = c->wl.n_layers, H = c->wl.n_heads;
    if (t->n_values == 0)
      return CFG_ERR("%s: key 'threshold.values' is required when threshold.mode = direct",
                     AT("threshold", "mode"));
    if (c->wl.source == SPR_SOURCE_MODEL) {
      /* counted against the model's depth and heads by spr_model_config */
    } else if (t->per_head) {
      if (t->n_values != 1 && t->n_values != L * H)
        return CFG_ERR("%s: key 'threshold.values': %d values given; per_head needs 1 or layers x heads = %d",
                       AT("threshold", "values"), t->n_values, L * H);
    } else if (t->n_values != 1 && t->n_values != L) {
      return CFG_ERR("%s: key 'threshold.values': %d values given; needs 1 or one per layer (%d)",
                     AT("threshold", "values"), t->n_values, L);
    }
  }
#undef AT
#undef AT2
  return 0;
}

int spr_config_resolve(spr_config *c, const char *origin) { return resolve(c, origin, NULL); }

/* --- INI file parsing ---------------------------------------------------- */

typedef struct {
  spr_config *c;
  const char *path;
  FILE *f;
  int lineno;             /* lines read so far (the line inih is parsing) */
  int cont;               /* that line starts with a blank (continuation) */
  int rc;                 /* first error code */
  int err_line;           /* its line */
  int line_of[sizeof keys / sizeof keys[0]]; /* line of each key, 0 = absent */
  const key_row *last;    /* key of the previous handler call */
  char *list;             /* text of the list being read (set when complete) */
  const key_row *list_key; /* its key, NULL when none is pending */
  int list_line;          /* its first line */
  char msg[1024];         /* message of the first error, without position */
  int bad_line;           /* line of an unknown section header with no key yet */
  char bad_sec[64];
  /* the caller's extra section (spr_config_parse) */
  const char *xsec;
  spr_config_section_fn xfn;
  void *xuser;
  char *xname, *xtext;    /* its pending key and value (continuations appended) */
  int xline;              /* line of the pending key */
  int xlast;              /* the previous handler call was in the extra section */
  const char *xorigin;    /* the pending key's override (its origin), else NULL */
  /* the overrides (spr_config_src.set) */
  struct override *ov;
  int n_ov;
  char *line;             /* the physical line being read (getline) */
  size_t line_cap;
  char **stash;           /* values of lines longer than inih's buffer */
  int n_stash, cap_stash;
} parse_ctx;

/* One override "section.key=value" (spr_config_src.set). */
struct override {
  char section[64];
  char key[256];
  char *value;        /* trimmed copy */
  char *origin;       /* "--set section.key=value", for messages */
  int used;           /* delivered to the extra section's handler */
};

static void ctx_error_at(parse_ctx *p, int rc, int line) {
  const char *m = spr_errmsg();
  if (m[0] == '@' && m[1] == ':' && m[2] == ' ') m += 3;
  p->rc = rc;
  p->err_line = line;
  snprintf(p->msg, sizeof p->msg, "%s", m);
}
static void ctx_error(parse_ctx *p, int rc) { ctx_error_at(p, rc, p->lineno); }

/* An unknown section header without any key below it. */
static void check_empty_section(parse_ctx *p) {
  if (p->bad_line && !p->rc)
    ctx_error_at(p, CFG_ERR("@: unknown section '[%s]'", p->bad_sec), p->bad_line);
  p->bad_line = 0;
}

/* Lines of any length.  inih reads a line into a buffer of its own fixed
 * size (about 200 bytes), and configurations sprintsim writes can hold
 * longer ones (absolute paths, lists).  read_line reads the whole
 * physical line; one that does not fit inih's buffer is split here as
 * inih would split it (name, '=' or ':', value; inline comments after a
 * blank and ';'; surrounding blanks dropped; an indented line continues
 * the previous key), its value kept in p->stash, and inih is handed a
 * short line "name = <TOKEN>" whose token on_ini_line replaces by the
 * value.  A token is \x1f\x1e<index>\x1e; lines holding \x1f are refused
 * (no text configuration holds that control character). */
#define TOKEN_MARK '\x1f'

/* inih's find_chars_or_comment: the first of `chars`, or an inline
 * comment (';' after a blank), or the end. */
static char *find_chars_or_comment(char *s, const char *chars) {
  int was_space = 0;
  while (*s && (!chars || !strchr(chars, *s)) && !(was_space && *s == ';')) {
    was_space = isspace((unsigned char)*s);
    s++;
  }
  return s;
}

static char *rstrip_str(char *s) {
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
  return s;
}

static char *lskip_str(char *s) {
  while (*s && isspace((unsigned char)*s)) s++;
  return s;
}

/* Keep value v; write its token into tok. */
static int stash_value(parse_ctx *p, const char *v, char *tok, size_t n) {
  if (p->n_stash == p->cap_stash) {
    int cap = p->cap_stash ? 2 * p->cap_stash : 8;
    char **t = realloc(p->stash, (size_t)cap * sizeof *t);
    if (!t) return -1;
    p->stash = t;
    p->cap_stash = cap;
  }
  if (!(p->stash[p->n_stash] = strdup(v))) return -1;
  snprintf(tok, n, "%c\x1e%d\x1e", TOKEN_MARK, p->n_stash);
  p->n_stash++;
  return 0;
}

/* The stashed value a token stands for, or the value itself. */
static const char *unstash(const parse_ctx *p, const char *value) {
  if (value[0] != TOKEN_MARK || value[1] != '\x1e') return value;
  char *end;
  long k = strtol(value + 2, &end, 10);
  if (*end != '\x1e' || end[1] || k < 0 || k >= p->n_stash) return value;
  return p->stash[k];
}

/* A line longer than inih's buffer (num bytes), without its newline, as
 * the short line inih gets: into str.  0, or -1 (an error recorded). */
static int shorten(parse_ctx *p, char *line, char *str, int num) {
  const int cont = line[0] == ' ' || line[0] == '\t';
  char *start = lskip_str(line);
  char tok[48];
  if (*start == ';' || *start == '#') { /* a long comment */
    snprintf(str, (size_t)num, ";\n");
    return 0;
  }
  if (*start == '[') {
    ctx_error(p, CFG_ERR("@: section header longer than %d characters", num - 3));
    return -1;
  }
  if (cont) { /* continuation of the previous key: the whole line is a value */
    char *end = find_chars_or_comment(start, NULL);
    *end = '\0';
    rstrip_str(start);
    if (stash_value(p, start, tok, sizeof tok)) goto oom;
    snprintf(str, (size_t)num, "  %s\n", tok);
    return 0;
  }
  char *end = find_chars_or_comment(start, "=:");
  if (*end != '=' && *end != ':') { /* no '=': inih's syntax error, kept */
    snprintf(str, (size_t)num, "%.*s\n", num - 3, start);
    return 0;
  }
  *end = '\0';
  char *name = rstrip_str(start), *value = end + 1;
  if (strlen(name) > (size_t)num / 2) {
    ctx_error(p, CFG_ERR("@: key name '%.40s...' longer than %d characters", name, num / 2));
    return -1;
  }
  end = find_chars_or_comment(value, NULL);
  *end = '\0';
  value = rstrip_str(lskip_str(value));
  if (stash_value(p, value, tok, sizeof tok)) goto oom;
  snprintf(str, (size_t)num, "%s = %s\n", name, tok);
  return 0;
oom:
  ctx_error(p, spr_error(SPR_ENOMEM, "@: out of memory"));
  return -1;
}

/* The reader inih calls: one whole physical line, counted; unknown
 * section headers noted (inih does not call the handler for a section
 * without keys). */
static char *read_line(char *str, int num, void *stream) {
  parse_ctx *p = stream;
  ssize_t got = getline(&p->line, &p->line_cap, p->f);
  if (got < 0) {
    check_empty_section(p);
    return NULL;
  }
  p->lineno++;
  char *s = p->line;
  if (memchr(s, TOKEN_MARK, (size_t)got) && !p->rc)
    ctx_error(p, CFG_ERR("@: control character 0x1f in the line"));
  size_t l = strlen(s); /* a NUL byte ends the line, as with fgets */
  if (l + 1 <= (size_t)num) {
    memcpy(str, s, l + 1);
  } else {
    while (l && (s[l - 1] == '\n' || s[l - 1] == '\r')) s[--l] = '\0';
    if (p->rc || shorten(p, s, str, num)) snprintf(str, (size_t)num, ";\n");
  }
  p->cont = s[0] == ' ' || s[0] == '\t';
  const char *t = s;
  while (isspace((unsigned char)*t)) t++;
  if (*t == '[' && !p->rc) {
    const char *e = strchr(t, ']');
    if (e) {
      check_empty_section(p);
      char sec[64];
      snprintf(sec, sizeof sec, "%.*s", (int)(e - t - 1), t + 1);
      if (!section_known(sec) && !(p->xsec && !strcmp(sec, p->xsec))) {
        p->bad_line = p->lineno;
        snprintf(p->bad_sec, sizeof p->bad_sec, "%s", sec);
      }
    }
  }
  return str;
}

/* Set the pending list key, now that its continuation lines are read. */
static void flush_list(parse_ctx *p) {
  const key_row *k = p->list_key;
  p->list_key = NULL;
  if (!k || p->rc) return;
  int rc = spr_config_set(p->c, k->info.section, k->info.name, p->list, "@");
  if (rc) ctx_error_at(p, rc, p->list_line);
}

/* Hand the pending key of the extra section to the caller's function. */
static void flush_extra(parse_ctx *p) {
  if (!p->xname) return;
  /* an overridden key: the override's value and origin, its errors as
   * they are (line -1) */
  int rc = p->rc ? 0 : p->xfn(p->xuser, p->xname, p->xtext, p->xorigin ? 0 : p->xline,
                              p->xorigin ? p->xorigin : "@");
  if (rc) ctx_error_at(p, rc, p->xorigin ? -1 : p->xline);
  free(p->xname);
  free(p->xtext);
  p->xname = p->xtext = NULL;
  p->xorigin = NULL;
}

/* The override of key `name` of section `section`, NULL when none. */
static struct override *find_override(parse_ctx *p, const char *section, const char *name) {
  for (int i = 0; i < p->n_ov; i++)
    if (!strcmp(p->ov[i].section, section) && !strcmp(p->ov[i].key, name)) return &p->ov[i];
  return NULL;
}

/* Append continuation `value` to text *t: ", " between items unless *t
 * already ends with a separator (',' or, for the extra section, '|'). */
static int append_cont(char **t, const char *value) {
  size_t l = strlen(*t);
  int sep = l && ((*t)[l - 1] == ',' || (*t)[l - 1] == '|');
  char *n = realloc(*t, l + strlen(value) + 3);
  if (!n) return -1;
  *t = n;
  sprintf(n + l, "%s%s", sep ? " " : ", ", value);
  return 0;
}

/* A key of the extra section: kept until its continuation lines are read. */
static int on_extra_line(parse_ctx *p, const char *name, const char *value) {
  if (p->cont && p->xlast && p->xname && !strcmp(p->xname, name)) {
    if (p->xorigin) return 1; /* overridden: its continuations go too */
    if (append_cont(&p->xtext, value)) { ctx_error(p, spr_error(SPR_ENOMEM, "@: out of memory")); return 0; }
    return 1;
  }
  flush_list(p);
  flush_extra(p);
  if (p->rc) return 0;
  p->last = NULL;
  p->xlast = 1;
  struct override *o = find_override(p, p->xsec, name);
  if (o) { /* the override takes the key's place */
    o->used = 1;
    value = o->value;
    p->xorigin = o->origin;
  }
  p->xname = strdup(name);
  p->xtext = strdup(value);
  p->xline = p->lineno;
  if (!p->xname || !p->xtext) { ctx_error(p, spr_error(SPR_ENOMEM, "@: out of memory")); return 0; }
  return 1;
}

static int on_ini_line(void *user, const char *section, const char *name,
                       const char *value) {
  parse_ctx *p = user;
  if (p->rc) return 0;
  value = unstash(p, value);
  p->bad_line = 0; /* spr_config_set reports the unknown section with its key */
  if (p->xsec && !strcmp(section, p->xsec)) return on_extra_line(p, name, value);
  flush_extra(p);
  if (p->rc) return 0;
  p->xlast = 0;
  const key_row *k = find_key(section, name);
  if (k && p->cont && p->last == k) { /* continuation line of `k` */
    if (k->info.type != SPR_KEY_LIST || p->list_key != k) {
      ctx_error(p, CFG_ERR("@: key '%s.%s': indented line '%s' continues a key that is not a list",
                           section, name, value));
      return 0;
    }
    if (append_cont(&p->list, value)) { ctx_error(p, spr_error(SPR_ENOMEM, "@: out of memory")); return 0; }
    return 1;
  }
  flush_list(p);
  if (p->rc) return 0;
  p->last = k;
  if (k) {
    int i = (int)(k - keys);
    if (p->line_of[i]) {
      ctx_error(p, CFG_ERR("@: key '%s.%s' given twice (second value '%s', first on line %d)",
                           section, name, value, p->line_of[i]));
      return 0;
    }
    p->line_of[i] = p->lineno;
    if (k->info.type == SPR_KEY_LIST) { /* set once its continuations are read */
      free(p->list);
      size_t vl = strlen(value) + 1;
      p->list = malloc(vl);
      if (!p->list) { ctx_error(p, spr_error(SPR_ENOMEM, "@: out of memory")); return 0; }
      memcpy(p->list, value, vl);
      p->list_key = k;
      p->list_line = p->lineno;
      return 1;
    }
  }
  /* origin is filled in by the caller, who knows the line number */
  int rc = spr_config_set(p->c, section, name, value, "@");
  if (rc) {
    ctx_error(p, rc);
    return 0;
  }
  return 1;
}

/* A relative path given in the file `path` (every string key is a file
 * name: workload.qkv_file, run.device_model, ...) names a file beside it:
 * prefix the folder of `path`, so a configuration works from any current
 * directory. */
static int relative_to(spr_config *c, const char *path, const int *lines) {
  const char *slash = strrchr(path, '/');
  if (!slash) return 0;
  const size_t dl = (size_t)(slash - path) + 1;
  for (int i = 0; i < NKEYS; i++) {
    const key_row *k = &keys[i];
    char *f = field(c, k);
    if (k->info.type != SPR_KEY_STRING || !lines[i] || names_no_file(k, f)) continue;
    const size_t fl = strlen(f);
    if (dl + fl >= SPR_STRING_MAX)
      return CFG_ERR("%s:%d: key '%s.%s': '%.40s...' joined to the folder of %s is longer than %d bytes",
                     path, lines[i], k->info.section, k->info.name, f, path, SPR_STRING_MAX - 1);
    memmove(f + dl, f, fl + 1);
    memcpy(f, path, dl);
  }
  return 0;
}

/* Split the overrides of src into p->ov; errors SPR_EUSAGE. */
static int read_overrides(parse_ctx *p, const spr_config_src *src) {
  const char *word = override_name;
  if (src->n_set < 0 || (src->n_set > 0 && !src->set))
    return spr_error(SPR_EINVAL, "config: %d overrides without a list", src->n_set);
  if (src->n_set == 0) return 0;
  p->ov = calloc((size_t)src->n_set, sizeof *p->ov);
  if (!p->ov) return spr_error(SPR_ENOMEM, "config: out of memory");
  for (int i = 0; i < src->n_set; i++) {
    const char *t = src->set[i] ? src->set[i] : "";
    struct override *o = &p->ov[p->n_ov++];
    size_t ol = strlen(word) + strlen(t) + 2;
    if (!(o->origin = malloc(ol))) return spr_error(SPR_ENOMEM, "config: out of memory");
    snprintf(o->origin, ol, "%s %s", word, t);
    const char *eq = strchr(t, '='), *dot = strchr(t, '.');
    if (!eq || !dot || dot > eq)
      return spr_error(SPR_EUSAGE, "%s: expected section.key=value", o->origin);
    /* trimmed section, key and value */
    const char *a = t, *b = dot;
    while (isspace((unsigned char)*a)) a++;
    while (b > a && isspace((unsigned char)b[-1])) b--;
    const char *k = dot + 1, *ke = eq;
    while (k < ke && isspace((unsigned char)*k)) k++;
    while (ke > k && isspace((unsigned char)ke[-1])) ke--;
    if (b == a || ke == k || (size_t)(b - a) >= sizeof o->section || (size_t)(ke - k) >= sizeof o->key)
      return spr_error(SPR_EUSAGE, "%s: expected section.key=value (a section and a key name)", o->origin);
    memcpy(o->section, a, (size_t)(b - a));
    memcpy(o->key, k, (size_t)(ke - k));
    const char *v = eq + 1, *ve = eq + 1 + strlen(eq + 1);
    while (isspace((unsigned char)*v)) v++;
    while (ve > v && isspace((unsigned char)ve[-1])) ve--;
    if (!(o->value = malloc((size_t)(ve - v) + 1))) return spr_error(SPR_ENOMEM, "config: out of memory");
    memcpy(o->value, v, (size_t)(ve - v));
    o->value[ve - v] = '\0';
    for (int j = 0; j + 1 < p->n_ov; j++)
      if (!strcmp(p->ov[j].section, o->section) && !strcmp(p->ov[j].key, o->key))
        return spr_error(SPR_EUSAGE, "%s: key '%s.%s' given twice (first: %s)", o->origin, o->section,
                         o->key, p->ov[j].origin);
    if (!section_known(o->section) && !(p->xsec && !strcmp(o->section, p->xsec)))
      return spr_error(SPR_EUSAGE, "%s: unknown section '[%s]'", o->origin, o->section);
  }
  return 0;
}

/* The overrides after the text: those of configuration sections set over
 * *c (line -1 for resolve's messages), those of the extra section that
 * the text did not give handed to its handler.  Errors SPR_EUSAGE. */
static int apply_overrides(parse_ctx *p) {
  for (int i = 0; i < p->n_ov; i++) {
    struct override *o = &p->ov[i];
    int rc;
    if (p->xsec && !strcmp(o->section, p->xsec)) {
      if (o->used) continue;
      o->used = 1;
      rc = p->xfn(p->xuser, o->key, o->value, 0, o->origin);
    } else {
      rc = spr_config_set(p->c, o->section, o->key, o->value, o->origin);
      if (!rc) p->line_of[find_key(o->section, o->key) - keys] = -1;
    }
    if (rc == SPR_ENOMEM) return rc;
    if (rc) {
      char msg[1200]; /* the message lives in the buffer spr_error writes */
      snprintf(msg, sizeof msg, "%s", spr_errmsg());
      return spr_error(SPR_EUSAGE, "%s", msg);
    }
  }
  return 0;
}

/* Parse the source over *c; extra section `xsec` (or NULL) goes to xfn.
 * Resolves when `do_resolve`. */
static int parse_src(spr_config *c, const spr_config_src *src, const char *xsec,
                     spr_config_section_fn xfn, void *xuser, int do_resolve) {
  if (!src || !src->name) return spr_error(SPR_EINVAL, "config: no source");
  const char *path = src->name;
  FILE *f = NULL;
  if (!src->text) {
    f = fopen(path, "r");
    if (!f) return spr_error(SPR_EIO, "%s: cannot open configuration: %s", path, strerror(errno));
  } else if (src->text[0] && !(f = fmemopen((void *)src->text, strlen(src->text), "r"))) {
    return spr_error(SPR_ENOMEM, "%s: cannot read the configuration's text: %s", path, strerror(errno));
  }
  parse_ctx *p = calloc(1, sizeof *p);
  if (!p) {
    if (f) fclose(f);
    return spr_error(SPR_ENOMEM, "config: out of memory");
  }
  const char *saved_name = override_name;
  override_name = src->set_name ? src->set_name : "override";
  p->c = c;
  p->path = path;
  p->f = f;
  p->xsec = xsec;
  p->xfn = xfn;
  p->xuser = xuser;
  int rc = read_overrides(p, src);
  int line = 0, ferr = 0;
  if (!rc && f) {
    line = ini_parse_stream(read_line, p, on_ini_line, p);
    flush_list(p);
    flush_extra(p);
    ferr = ferror(f);
  }
  if (f) fclose(f);
  if (rc) {
    /* an override's syntax */
  } else if (ferr) {
    rc = spr_error(SPR_EIO, "%s: read error", path);
  } else if (p->rc && p->err_line < 0) { /* an override of the extra section */
    rc = spr_error(p->rc == SPR_ENOMEM ? SPR_ENOMEM : SPR_EUSAGE, "%s", p->msg);
  } else if (p->rc && (line <= 0 || p->err_line <= line)) {
    rc = p->rc == SPR_ENOMEM ? spr_error(SPR_ENOMEM, "%s:%d: %s", path, p->err_line, p->msg)
                             : CFG_ERR("%s:%d: %s", path, p->err_line, p->msg);
  } else if (line > 0) {
    rc = CFG_ERR("%s:%d: syntax error: expected '[section]', 'key = value' or a comment", path, line);
  } else if (line != 0) {
    rc = CFG_ERR("%s: cannot parse (inih error %d)", path, line);
  }
  /* a file's relative names are taken from its folder; a text's (standard
   * input) and the overrides' from the current folder */
  if (!rc && !src->text) rc = relative_to(c, path, p->line_of);
  if (!rc) rc = apply_overrides(p);
  if (!rc && do_resolve) rc = resolve(c, path, p->line_of);
  override_name = saved_name;
  for (int i = 0; i < p->n_ov; i++) {
    free(p->ov[i].origin);
    free(p->ov[i].value);
  }
  free(p->ov);
  free(p->list);
  free(p->xname);
  free(p->xtext);
  free(p->line);
  for (int i = 0; i < p->n_stash; i++) free(p->stash[i]);
  free(p->stash);
  free(p);
  return rc;
}

int spr_config_load_src(spr_config *c, const spr_config_src *src) {
  return parse_src(c, src, NULL, NULL, NULL, 1);
}

int spr_config_parse_src(spr_config *c, const spr_config_src *src, const char *section,
                         spr_config_section_fn fn, void *user) {
  if (!section || !fn || section_known(section))
    return spr_error(SPR_EINVAL, "config: extra section '%s' is a configuration section or has no handler",
                     section ? section : "(null)");
  return parse_src(c, src, section, fn, user, 0);
}

int spr_config_load(spr_config *c, const char *path) {
  const spr_config_src src = {path, NULL, NULL, 0, NULL};
  return spr_config_load_src(c, &src);
}

int spr_config_parse(spr_config *c, const char *path, const char *section,
                     spr_config_section_fn fn, void *user) {
  const spr_config_src src = {path, NULL, NULL, 0, NULL};
  return spr_config_parse_src(c, &src, section, fn, user);
}

int spr_config_find(const char *section, const char *name) {
  const key_row *k = find_key(section, name);
  return k ? (int)(k - keys) : -1;
}

/* --- output --------------------------------------------------------------- */

/* Shortest of %.15g / %.17g that reads back as the same double. */
static int format_double(char *buf, size_t n, double x) {
  char t[40];
  snprintf(t, sizeof t, "%.15g", x);
  if (strtod(t, NULL) != x) snprintf(t, sizeof t, "%.17g", x);
  return snprintf(buf, n, "%s", t);
}

int spr_config_format(const spr_config *c, int i, char *buf, size_t n) {
  if (i < 0 || i >= NKEYS) return snprintf(buf, n, "?");
  const key_row *k = &keys[i];
  switch (k->info.type) {
  case SPR_KEY_INT: return snprintf(buf, n, "%d", *(const int *)cfield(c, k));
  case SPR_KEY_U64:
    return snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)cfield(c, k));
  case SPR_KEY_DOUBLE: return format_double(buf, n, *(const double *)cfield(c, k));
  case SPR_KEY_BOOL: return snprintf(buf, n, "%s", *(const int *)cfield(c, k) ? "true" : "false");
  case SPR_KEY_ENUM: {
    int idx = *(const int *)cfield(c, k);
    const char *ch = k->info.choices;
    for (int j = 0; j < idx && ch; j++) {
      ch = strchr(ch, '|');
      if (ch) ch++;
    }
    if (!ch) return snprintf(buf, n, "?");
    const char *bar = strchr(ch, '|');
    int l = bar ? (int)(bar - ch) : (int)strlen(ch);
    return snprintf(buf, n, "%.*s", l, ch);
  }
  case SPR_KEY_LIST: {
    size_t used = 0;
    int total = 0;
    if (n) buf[0] = '\0';
    for (int j = 0; j < c->thr.n_values; j++) {
      char one[40];
      format_double(one, sizeof one, c->thr.values[j]);
      int w = snprintf(used < n ? buf + used : NULL, used < n ? n - used : 0, "%s%s",
                       j ? ", " : "", one);
      total += w;
      used += (size_t)w;
    }
    return total;
  }
  case SPR_KEY_STRING: return snprintf(buf, n, "%s", (const char *)cfield(c, k));
  }
  return snprintf(buf, n, "?");
}

/* The documentation of key k as comment lines: "; " and the text with
 * its unit in brackets, wrapped at spaces so that no line exceeds 100
 * characters (an INI reader need accept no more than 199: libinih); a
 * continuation line starts with ";  " (two spaces), which
 * scripts/gen_config_doc.py joins back.  Returns the bytes written (n
 * must hold strlen(doc) + 64). */
static size_t doc_comment(char *out, size_t n, const key_row *k) {
  char text[2048];
  snprintf(text, sizeof text, "%s%s%s%s", k->info.doc, k->info.unit[0] ? " [" : "",
           k->info.unit, k->info.unit[0] ? "]" : "");
  size_t len = 0;
  const char *p = text;
  int first = 1;
  while (*p) {
    const size_t width = first ? 98 : 97; /* after "; " or ";  " */
    size_t l = strlen(p);
    if (l > width) {
      size_t cut = width;
      while (cut > 0 && p[cut] != ' ') cut--;
      if (cut == 0) { /* one word longer than a line: cut after it */
        cut = width;
        while (p[cut] && p[cut] != ' ') cut++;
      }
      l = cut;
    }
    len += (size_t)snprintf(out + len, n - len, "%s%.*s\n", first ? "; " : ";  ", (int)l, p);
    p += l;
    while (*p == ' ') p++;
    first = 0;
  }
  return len;
}

char *spr_config_to_ini(const spr_config *c) {
  size_t cap = 4096, len = 0;
  char *out = malloc(cap);
  if (!out) return NULL;
  out[0] = '\0';
  const char *cur = "";
  for (int i = 0; i < NKEYS; i++) {
    const key_row *k = &keys[i];
    int vl = spr_config_format(c, i, NULL, 0) + c->thr.n_values / 6 * 3;
    size_t need = (size_t)vl + strlen(k->info.doc) + 256;
    if (len + need >= cap) {
      while (len + need >= cap) cap *= 2;
      char *t = realloc(out, cap);
      if (!t) { free(out); return NULL; }
      out = t;
    }
    if (strcmp(cur, k->info.section)) {
      cur = k->info.section;
      len += (size_t)snprintf(out + len, cap - len, "%s[%s]\n", len ? "\n" : "", cur);
    }
    len += doc_comment(out + len, cap - len, k);
    if (k->info.choices)
      len += (size_t)snprintf(out + len, cap - len, "; one of: %s\n", k->info.choices);
    if (k->info.type == SPR_KEY_LIST && c->thr.n_values == 0) {
      len += (size_t)snprintf(out + len, cap - len, "; %s = (none)\n", k->info.name);
      continue;
    }
    len += (size_t)snprintf(out + len, cap - len, "%s = ", k->info.name);
    if (k->info.type == SPR_KEY_LIST) {
      /* six values a line (< 200 characters), then indented continuations */
      for (int j = 0; j < c->thr.n_values; j++) {
        char one[40];
        format_double(one, sizeof one, c->thr.values[j]);
        len += (size_t)snprintf(out + len, cap - len, "%s%s", j == 0 ? "" : j % 6 ? ", " : "\n  ", one);
      }
    } else {
      len += (size_t)spr_config_format(c, i, out + len, cap - len);
    }
    len += (size_t)snprintf(out + len, cap - len, "\n");
  }
  return out;
}
