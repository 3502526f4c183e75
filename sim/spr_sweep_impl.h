/* spr_sweep_impl.h - what the files of the sweep module share (internal:
 * not installed).  spr_sweep.c holds the grid (the [sweep] section, the
 * points, their rows), spr_sweep_out.c the HDF5 file and the CSV,
 * spr_journal.c the journal of finished points. */
#ifndef SPR_SWEEP_IMPL_H
#define SPR_SWEEP_IMPL_H

#include "spr_sweep.h"
#include "spr_device.h"
#include "spr_model_eval.h"

#include <stdint.h>

#define MAX_LINKED 4 /* keys one axis may set together ("a.b + c.d") */

typedef struct {
  int key;       /* index in the configuration table of the first key */
  char name[200]; /* "section.key", or "section.key + section.key" */
  int nkeys;     /* keys set to each value: 1, or more when linked */
  int keys[MAX_LINKED];
  char section[MAX_LINKED][48], kname[MAX_LINKED][48];
  int line;      /* line in the file */
  int n;         /* values */
  char **text;   /* as written */
  char **canon;  /* spr_config_format of the value once set */
  double *num;   /* numeric value (SI), NaN when the key is not numeric */
} axis;

struct spr_sweep {
  char *path;
  char *source;        /* the file's text */
  spr_config *base;    /* parsed, not resolved */
  int naxes;
  axis ax[SPR_SWEEP_MAX_AXES];
  int npoints;
  int max_points, max_points_line;
  int schemes_line;    /* 0: schemes not given */
  int nschemes;
  int scheme[SPR_N_SCHEMES];
  const spr_evaluator *ev;
  spr_eval_row *rows;  /* npoints x SPR_N_SCHEMES */
  unsigned char *done; /* npoints */
  uint64_t *hash;      /* npoints: FNV-1a 64 of each point's resolved INI text */
  spr_model_store *store; /* a model sweep's inputs, read once (check_memory) */
  /* the device models (run.device_model) the points name, read once by
   * spr_sweep_check_memory before any point runs: the points then read
   * no file while others run (each read forks a reader: core/spr_h5r.h) */
  int ndev;
  char **dev_path;
  spr_device *dev;
  int ninputs;         /* distinct files the points read (string keys) */
  char **input_key, **input_path;
};

/* FNV-1a 64 of n bytes, continuing from h (start: SPR__FNV_OFFSET). */
#define SPR__FNV_OFFSET 0xcbf29ce484222325ULL
uint64_t spr__fnv1a64(uint64_t h, const void *data, size_t n);


/* h5path with a final ".h5" replaced by ext (or ext appended), malloc'd;
 * NULL when out of memory: the CSV's and the journal's names. */
char *spr__sweep_sibling(const char *h5path, const char *ext);

/* Index of point p's value on axis a (the first axis varies slowest). */
int spr__sweep_value_index(const spr_sweep *sw, int p, int a);

/* Build point p's resolved configuration into *c; errors name the point. */
int spr__sweep_build_point(const spr_sweep *sw, int p, spr_config *c);

#endif
