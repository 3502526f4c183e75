/* bench_h5r.c - the cost of reading an HDF5 file through the isolated
 * reader (core/spr_h5r.h) against the same requests served in-process,
 * i.e. libhdf5 called directly (docs/isolation.md, "Overhead").
 *
 *   bench/bench_h5r FILE.h5 [REPEATS]
 *   bench/bench_h5r --qkv FILE.h5 [REPEATS]
 *
 * Each repeat opens the file, walks every group, inspects every dataset
 * and reads every numeric one whole as float64 (what a model reader does
 * at load), then closes it.  Prints the median time of each mode, the
 * requests made and the bytes read.  With --qkv the file is a sprintsim-qkv
 * file read as a run reads it: spr_qkv_open, then every head of item 0
 * (spr_qkv_read_head), then its content id (the trace's provenance). */
#include "config.h"
#include "bench_util.h"
#include "spr_error.h"
#include "spr_h5r.h"
#include "spr_qkv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  long requests;
  double bytes;
} tally;

static int walk(spr_h5r *h, const char *group, tally *t) {
  char **names;
  int n, rc = spr_h5r_list(h, group, 100000, &names, &n);
  t->requests++;
  for (int i = 0; i < n && !rc; i++) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", strcmp(group, "/") ? group : "", names[i]);
    int kind;
    rc = spr_h5r_kind(h, path, &kind);
    t->requests++;
    if (rc) break;
    if (kind == SPR_H5R_GROUP) {
      rc = walk(h, path, t);
    } else if (kind == SPR_H5R_DATASET) {
      spr_h5r_info in;
      rc = spr_h5r_dset_info(h, path, &in);
      t->requests++;
      if (!rc && (in.cls == SPR_H5R_FLOAT || in.cls == SPR_H5R_INTEGER) && in.standard && in.npoints > 0) {
        double *v = malloc(8 * in.npoints);
        rc = spr_h5r_read(h, path, SPR_H5R_F64, 0, NULL, NULL, v, 8 * in.npoints);
        t->requests++;
        t->bytes += 8.0 * (double)in.npoints;
        free(v);
      }
    }
  }
  free(names);
  return rc;
}

/* A run's reading of a Q/K/V file; the requests into t. */
static int read_qkv(const char *path, int with_id, tally *t) {
  spr_qkv *q;
  int rc = spr_qkv_open(path, &q);
  if (rc) return rc;
  const spr_qkv_info *in = spr_qkv_get_info(q);
  int n = 0;
  if ((rc = spr_qkv_item_tokens(q, 0, &n))) return rc;
  size_t nd = (size_t)n * in->head_dim;
  float *b = malloc(3 * nd * sizeof *b);
  for (int l = 0; l < in->n_layers && !rc; l++)
    for (int h = 0; h < in->n_heads && !rc; h++) {
      rc = spr_qkv_read_head(q, l, h, 0, b, b + nd, b + 2 * nd);
      t->requests += 3;
      t->bytes += 3.0 * 8 * (double)in->seq_len * in->head_dim;
    }
  char id[32];
  if (!rc && with_id) rc = spr_qkv_content_id(q, id, sizeof id);
  free(b);
  spr_qkv_close(q);
  return rc;
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "--qkv")) {
    const int reps = argc > 3 ? atoi(argv[3]) : 5;
    double med[3];
    tally t = {0, 0};
    for (int mode = 0; mode < 3; mode++) { /* in-process; isolated; isolated + content id */
      spr_h5r_limits l;
      spr_h5r_limits_default(&l);
      l.in_process = mode == 0;
      spr_h5r_set_limits(&l);
      double *s = malloc(sizeof *s * (size_t)reps);
      for (int r = 0; r < reps; r++) {
        t.requests = 0;
        t.bytes = 0;
        double t0 = now();
        if (read_qkv(argv[2], mode == 2, &t)) {
          fprintf(stderr, "%s\n", spr_errmsg());
          return 1;
        }
        s[r] = now() - t0;
      }
      med[mode] = median(s, reps);
      free(s);
    }
    printf("%s: %ld head reads, %.1f MB as float64; median of %d: in-process %.1f ms, isolated %.1f ms "
           "(+%.1f ms, %.0f us per read), with the content id %.1f ms\n",
           argv[2], t.requests, t.bytes / 1e6, reps, 1e3 * med[0], 1e3 * med[1], 1e3 * (med[1] - med[0]),
           1e6 * (med[1] - med[0]) / (double)t.requests, 1e3 * med[2]);
    return 0;
  }
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE.h5 [REPEATS]\n", argv[0]);
    return 2;
  }
  const int reps = argc > 2 ? atoi(argv[2]) : 20;
  double med[2];
  tally t = {0, 0};
  for (int mode = 0; mode < 2; mode++) {
    spr_h5r_limits l;
    spr_h5r_limits_default(&l);
    l.in_process = mode == 0;
    double *s = malloc(sizeof *s * (size_t)reps);
    for (int r = 0; r < reps; r++) {
      t.requests = 0;
      t.bytes = 0;
      double t0 = now();
      spr_h5r *h;
      int rc = spr_h5r_open(argv[1], "file", &l, &h);
      if (!rc) {
        rc = walk(h, "/", &t);
        spr_h5r_close(h);
      }
      s[r] = now() - t0;
      if (rc) {
        fprintf(stderr, "%s\n", spr_errmsg());
        return 1;
      }
    }
    med[mode] = median(s, reps);
    free(s);
  }
  printf("%s: %ld requests, %.1f kB read; median of %d: in-process %.2f ms, isolated %.2f ms "
         "(+%.2f ms, %.1f us per request)\n",
         argv[1], t.requests, t.bytes / 1e3, reps, 1e3 * med[0], 1e3 * med[1], 1e3 * (med[1] - med[0]),
         1e6 * (med[1] - med[0]) / (double)t.requests);
  return 0;
}
