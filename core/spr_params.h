/* spr_params.h - the parameter structs of every module.
 *
 * Values are SI (S, V, A, ohm, s, K, Hz) or dimensionless as commented.
 * Defaults, ranges, units and documentation of every field live in ONE
 * table, in core/spr_config.c; spr_config_default() fills a struct from it.
 * The library takes these structs; it never reads files to get them.
 */
#ifndef SPR_PARAMS_H
#define SPR_PARAMS_H

#include <stdint.h>

#define SPR_MAX_LAYERS 64
#define SPR_MAX_HEADS 64
#define SPR_MAX_THRESHOLDS (SPR_MAX_LAYERS * SPR_MAX_HEADS)
/* Largest sequence length N and head dimension d of a workload (also the
 * limits of a sprintsim-qkv file), and most batch items in such a file. */
#define SPR_QKV_MAX_SEQ 16384
/* Longest synthetic sequence (workload.seq_len): heads beyond a few
 * thousand tokens run in row blocks, no N x N array held. */
#define SPR_MAX_SEQ 131072
#define SPR_QKV_MAX_DIM 1024
#define SPR_QKV_MAX_BATCH (1 << 20)
/* Size of a string key's buffer (file paths), terminator included. */
#define SPR_STRING_MAX 1024

enum spr_preset { SPR_PRESET_BERT_BASE = 0, SPR_PRESET_VIT_BASE = 1 };
enum spr_trace_level {
  SPR_TRACE_SUMMARY = 0,
  SPR_TRACE_MASKS = 1,
  SPR_TRACE_FULL = 2
};
/* IR drop of the scoring arrays (docs/model.md section 2): none, the
 * first-order model (with the fitted scales ir_alpha_*, refused beyond
 * SPR_IR_FIRST_ORDER_LIMIT), or the exact nodal solution of every
 * programmed array (raw r_wl, r_bl; crossbar/spr_nodal.h). */
enum spr_ir_model { SPR_IR_OFF = 0, SPR_IR_FIRST_ORDER = 1, SPR_IR_NODAL = 2 };
/* learned: the model file's per-layer threshold on q.k / sqrt(d) plus
 * threshold.offset (workload.source = vit only; sim/spr_attend.h). */
/* analog_keep_rate: the code whose keep rate of the ANALOG decisions (one
 * noisy score per pair drawn independent of the threshold,
 * spr_analog_scores) is nearest threshold.keep_rate (docs/model.md
 * section 7). */
enum spr_thr_mode {
  SPR_THR_KEEP_RATE = 0,
  SPR_THR_DIRECT = 1,
  SPR_THR_LEARNED = 2,
  SPR_THR_ANALOG_KEEP_RATE = 3
};
/* baselines.match (docs/baselines.md section 6). */
enum spr_bl_match { SPR_MATCH_NONE = 0, SPR_MATCH_SPRINT = 1 };

/* Where a run's attention inputs come from: the seeded generator
 * (workloads/spr_synth.h), a sprintsim-qkv HDF5 file (workloads/spr_qkv.h,
 * docs/qkv.md), or a model file (workloads/spr_model.h, docs/models.md)
 * on its evaluation items.  SPR_SOURCE_VIT is the old name of model, read
 * from configuration files and resolved to SPR_SOURCE_MODEL. */
enum spr_source {
  SPR_SOURCE_SYNTHETIC = 0,
  SPR_SOURCE_QKV = 1,
  SPR_SOURCE_MODEL = 2,
  SPR_SOURCE_VIT = 3
};

typedef struct {
  int preset;    /* enum spr_preset */
  int seq_len;   /* N, tokens per sequence (0 in a file: preset's value;
                    source qkv: the item's real tokens) */
  int n_layers;  /* (0 in a file: preset's value; source qkv: the file's) */
  int n_heads;   /* (0 in a file: preset's value; source qkv: the file's) */
  int head_dim;  /* d (0 in a file: preset's value) */
  int source;    /* enum spr_source (after the preset's fields, which
                    callers may initialise by position) */
  /* source qkv (docs/qkv.md) */
  int qkv_item;  /* batch item of the qkv file */
  char qkv_file[SPR_STRING_MAX]; /* sprintsim-qkv HDF5 file; "" = none */
  /* source model (docs/models.md) */
  char model[SPR_STRING_MAX];   /* model HDF5 file (scripts/train_model.py) */
  char reference_model[SPR_STRING_MAX]; /* its dense reference model; "" =
                                           the one the model file names,
                                           "none" = no reference */
  char dataset[SPR_STRING_MAX]; /* image models: folder of the
                                   Fashion-MNIST IDX files */
  int images;        /* image models: test images evaluated */
  int first_image;   /* index of the first one */
  int windows;       /* text models: evaluation windows */
  int first_window;  /* index of the first one */
  /* causal attention (sim/spr_attend.h, docs/model.md section 6): query i
   * attends to keys j <= i only, in every scheme; 0 = every query sees
   * every key (a causal model file makes its run causal) */
  int causal;
} spr_workload_params;

typedef struct {
  int rows, cols;     /* cells per array; cols is even (differential pairs) */
  int cell_bits;      /* bits per cell: 2^cell_bits conductance levels */
  int key_bits;       /* bits of the quantized key (signed) */
  int key_msb_bits;   /* most significant key bits programmed (signed) */
  double g_min_S;     /* conductance of level 0 */
  double g_max_S;     /* conductance of the top level */
  int variation;      /* lognormal programming variation on/off */
  double prog_sigma;  /* sigma of ln G (dimensionless) */
  int stuck;          /* stuck-at faults on/off */
  double stuck_on_rate;  /* probability a cell is stuck at g_max */
  double stuck_off_rate; /* probability a cell is stuck at g_min */
  int drift;          /* conductance drift on/off */
  double drift_nu;    /* drift exponent: G(t) = G(t0) (t/t0)^-nu */
  double drift_t_s;   /* time since programming */
  double drift_t0_s;  /* reference time of the programmed value */
  int ir_drop;        /* enum spr_ir_model */
  double r_wl_ohm;    /* word-line segment resistance (per cell pitch) */
  double r_bl_ohm;    /* bit-line segment resistance (per cell pitch) */
  double ir_alpha_wl; /* scale of the word-line term of the first-order IR
                         model (dimensionless; 1 = the plain model) */
  double ir_alpha_bl; /* scale of the bit-line term */
  double cell_v0_V;   /* cell nonlinearity I = G V0 sinh(V/V0); 0 = linear */
} spr_xbar_params;

typedef struct {
  int query_bits;        /* bits of the quantized query (signed) */
  double v_read_V;       /* row voltage of the largest query code */
  int dac_error;         /* DAC gain error on/off */
  double dac_gain_sigma; /* relative sigma of each row DAC's gain */
  int read_noise;        /* thermal + shot + relative read noise on/off */
  double temperature_K;
  double bandwidth_Hz;   /* noise bandwidth of the column sense */
  double read_rel_sigma; /* relative sigma of each cell current per read */
  double thermal_excess; /* factor F on the thermal noise 4 k T B sum G
                            (dimensionless; 1 = ideal resistors) */
  int cmp_offset;        /* comparator static offset on/off */
  double cmp_offset_sigma_A;
  int cmp_noise;         /* comparator dynamic noise on/off */
  double cmp_noise_sigma_A;
} spr_analog_params;

typedef struct {
  int mode;           /* enum spr_thr_mode */
  double keep_rate;   /* target fraction kept (mode keep_rate) */
  int per_head;       /* one threshold per head instead of per layer */
  int n_values;       /* count of values (mode direct) */
  double values[SPR_MAX_THRESHOLDS]; /* thresholds, score units */
  int bits;           /* resolution of the threshold generator */
  double range;       /* full scale of the threshold generator, score
                         units; 0 = max |ideal score| of the layer (head) */
  double offset;      /* added to the learned threshold (mode learned),
                         units of the scaled score q.k / sqrt(d) */
} spr_thr_params;

/* Energy and latency constants of the ledger (core/spr_ledger.h); each
 * one's source and the model that uses it: docs/energy.md.  Energies in J.
 * The ReRAM and analog figures (SPRINT, 65 nm) are used as given; the
 * digital and SRAM figures are 45 nm reference values (Horowitz, ISSCC
 * 2014) that the ledger multiplies by digital_scale. */
typedef struct {
  /* ReRAM and analog periphery, used as given */
  double reram_write_J_per_bit; /* ReRAM write, per bit */
  double xbar_write_J_per_bit;  /* programming a scoring-array cell, per bit */
  double xbar_write_J_per_cell; /* programming a scoring-array cell, per cell
                                   (verify and periphery beyond the bits) */
  double reram_read_J_per_bit;  /* ReRAM read of fetched data, per bit */
  double imc_mac_J;             /* one in-memory MAC */
  double cmp_J;                 /* one comparator decision */
  /* digital and SRAM: 45 nm reference, times digital_scale */
  double digital_scale;         /* 45 nm -> target node (dimensionless) */
  double prune_read_J_per_bit;  /* pruning-vector read, per bit */
  double sram_8k_J_per_word;    /* 64-bit SRAM read, 8 KB array */
  double sram_32k_J_per_word;   /* 64-bit SRAM read, 32 KB array */
  double sram_1m_J_per_word;    /* 64-bit SRAM read, 1 MB array */
  double sram_write_ratio;      /* SRAM write / read energy (dimensionless) */
  double mac8_J;                /* 8-bit score MAC of the recompute */
  double v_mac_J;               /* MAC of the V product */
  double exp_J;                 /* exponential (softmax and prediction) */
  double div_J;                 /* softmax division */
  double mac4_J;                /* 4-bit x 4-bit prediction MAC */
  double bitmac_J;              /* 1-bit key x 8-bit query MAC (bit-serial) */
  double pred_add_J;            /* prediction add or subtract */
  double pred_mul_J;            /* prediction multiply */
  double pred_cmp_J;            /* prediction comparison */
  /* latency */
  double clock_Hz;
  double threshold_cycles;      /* in-memory score + comparison of a query */
  double reram_read_bytes_per_cycle; /* ReRAM read bandwidth */
  double mac_units;             /* 8-bit MACs per cycle (recompute, V) */
  double softmax_units;         /* exponentials or divisions per cycle */
  double pred_units;            /* other prediction operations per cycle */
  int overlap;                  /* fetch of query i overlaps compute of i-1 */
} spr_energy_params;

/* Wear of SPRINT's scoring arrays (core/spr_wear.h, docs/energy.md
 * section 8). */
typedef struct {
  double endurance;        /* writes a scoring cell survives (> 0) */
  double sequence_rate_Hz; /* sequences per second; 0 = the run's
                              back-to-back rate under SPRINT */
  double scoring_cells;    /* physical scoring cells shared by every head
                              and layer; 0 = arrays per head */
} spr_wear_params;

/* The digital path (digital/spr_digital.h). */
typedef struct {
  int buffer_bytes;   /* on-chip buffer for fetched K and V */
  int policy;         /* SPR_DIG_SPRINT (0, adjacent reuse) or SPR_DIG_LRU (1) */
  int query_bits;     /* bits of the query in the digital recompute */
  int value_bits;     /* bits of the values fetched and multiplied */
  int top_k;          /* k of the top-k recall metric */
  int tile_tokens;    /* dense_tiled: K/V tile in tokens; 0 = automatic
                         (digital/spr_tiled.h) */
} spr_digital_params;

/* The baselines run beside SPRINT on the same workload and ledger
 * (digital/spr_baselines.h); dense always runs, as the reference. */
typedef struct {
  int oracle, topk, sanger, leopard, window; /* on/off */
  int dense_tiled;          /* dense tiled over query blocks, on/off */
  int match;                /* enum spr_bl_match: each baseline at its own
                               knob, or matched per layer to SPRINT's
                               realised keep rate */
  double topk_fraction;     /* keys kept per query by top-k, fraction of N */
  double sanger_threshold;  /* probability threshold of Sanger's prediction */
  int window_half_width;    /* keys on each side of the query */
  int window_globals;       /* global tokens: 0..g-1 */
} spr_baseline_params;

typedef struct {
  uint64_t seed;
  int trace;          /* enum spr_trace_level */
  int block_rows;     /* queries per row block of a head; 0 = automatic
                         (sim/spr_pipeline.h, spr_run_block_rows) */
  char device_model[SPR_STRING_MAX]; /* device-model HDF5 file from
                                        `sprintsim calibrate`; "" = none */
  spr_workload_params wl;
  spr_xbar_params xbar;
  spr_analog_params an;
  spr_thr_params thr;
  spr_energy_params energy; /* [energy] and [timing] */
  spr_wear_params wear;     /* [wear] */
  spr_digital_params dig;   /* [digital] */
  spr_baseline_params bl;   /* [baselines] */
} spr_config;

#endif
