/* cmd_synth.c - sprintsim synth: the generator's Q, K, V as a file
 * (docs/qkv.md). */
#include "config.h"
#include "cmd.h"
#include "spr_config.h"
#include "spr_qkv.h"
#include "spr_synth.h"

#include <cblas.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cmd_usage_synth(FILE *f) {
  fprintf(f,
          "usage: sprintsim synth [CONFIG] -o FILE.h5 [--batch B] [--pad P]\n"
          "                       [--set SECTION.KEY=VALUE ...]\n"
          "\n"
          "Write the synthetic generator's Q, K, V (workload keys of CONFIG: preset,\n"
          "seq_len, layers, heads, head_dim; run.seed) as a sprintsim-qkv file\n"
          "(docs/qkv.md), float32.\n"
          "\n"
          "  -o, --output FILE  output, written atomically (not CONFIG itself)\n"
          "  --batch B          B items (datasets (B, heads, N, d) and a /mask (B, N));\n"
          "                     item b is the generator's output for seed run.seed + b\n"
          "                     with N - b P real tokens, then P b padding tokens of\n"
          "                     zeros (mask 0); without --batch: datasets (heads, N, d),\n"
          "                     no mask\n"
          "  --pad P            padding tokens added per item (default 0)\n");
  cmd_usage_set(f, NULL);
  fprintf(f,
          "  -h, --help         this help\n"
          "\n"
          "Exit status: 0 success, 1 error, 2 bad command line, 130 interrupted.\n");
}

/* The generator's Q, K, V in the sprintsim-qkv format. */
int cmd_synth(int argc, char **argv) {
  cmd_opts o = {.cmd = "synth", .usage = cmd_usage_synth, .config_what = "at most",
                .allow = CMD_OPT_OUT | CMD_OPT_SET | CMD_OPT_BATCH};
  int st = cmd_parse_opts(argc, argv, &o);
  if (st >= 0) return st;
  const char *cfg_path = o.config, *out = o.out;
  const long batch = o.batch, pad = o.pad;
  if (!out) {
    fprintf(stderr, "%s: synth: -o FILE.h5 is required (see 'sprintsim synth --help')\n", cmd_prog);
    return CMD_EXIT_USAGE;
  }
  spr_config c;
  spr_config_default(&c);
  spr_config_src src;
  if (cmd_config_src(&o, &src)) return 1;
  int rc = spr_config_load_src(&c, &src);
  if (rc) return cmd_fail_rc(rc, NULL);
  if ((st = cmd_check_inputs(&o, "-o", out, &c))) return st;
  if (c.wl.source != SPR_SOURCE_SYNTHETIC) {
    fprintf(stderr, "%s: synth: %s: workload.source must be synthetic\n", cmd_prog,
            cfg_path ? src.name : "built-in default");
    return 1;
  }
  const int L = c.wl.n_layers, H = c.wl.n_heads, N = c.wl.seq_len, D = c.wl.head_dim;
  const int items = batch ? (int)batch : 1;
  if (pad && !batch) {
    fprintf(stderr, "%s: synth: --pad needs --batch\n", cmd_prog);
    return CMD_EXIT_USAGE;
  }
  if ((long)N - (items - 1) * pad < 2) {
    fprintf(stderr, "%s: synth: item %d would have %ld real tokens (N %d - %d x pad %ld); at least 2\n",
            cmd_prog, items - 1, (long)N - (items - 1) * pad, N, items - 1, pad);
    return CMD_EXIT_USAGE;
  }
  /* BLAS on one thread, as `sprintsim run` calls it: the file holds the
   * bits of the run's own Q, K, V (docs/workloads.md 2.8) */
  openblas_set_num_threads(1);
  const size_t nd = (size_t)N * D;
  uint8_t *mask = batch ? calloc((size_t)items * N, 1) : NULL;
  float *Q = calloc(nd, sizeof *Q), *K = calloc(nd, sizeof *K), *V = calloc(nd, sizeof *V);
  spr_qkv_writer *w = NULL;
  int status = 0;
  if ((batch && !mask) || !Q || !K || !V) {
    fprintf(stderr, "%s: synth: out of memory\n", cmd_prog);
    status = 1;
  }
  for (int b = 0; !status && mask && b < items; b++)
    memset(mask + (size_t)b * N, 1, (size_t)(N - b * pad));
  cmd_signals();
  if (!status && spr_qkv_create(out, L, H, (int)batch, N, D, mask, &w)) status = cmd_fail(1, NULL);
  for (int b = 0; !status && !cmd_interrupted && b < items; b++) {
    spr_workload_params wl = c.wl;
    wl.seq_len = N - (int)(b * pad);
    for (int l = 0; !status && !cmd_interrupted && l < L; l++)
      for (int h = 0; !status && !cmd_interrupted && h < H; h++) {
        /* the item's tokens first, zero rows of padding after */
        memset(Q, 0, nd * sizeof *Q);
        memset(K, 0, nd * sizeof *K);
        memset(V, 0, nd * sizeof *V);
        if (spr_synth_head(&wl, c.seed + (uint64_t)b, l, h, Q, K, V) ||
            spr_qkv_write_head(w, l, h, b, Q, K, V))
          status = cmd_fail(1, out);
      }
  }
  if (cmd_interrupted) { /* stopped between heads, or a write past the file size limit */
    const char *why;
    const int st = cmd_stop_status(&why);
    fprintf(stderr, "%s: %s; %s not written\n", cmd_prog, why, out);
    if (!status) status = st;
  }
  if (w && spr_qkv_finish(w, !status) && !status) status = cmd_fail(1, NULL);
  if (!status && cmd_interrupted == SIGXFSZ) { /* a write past the limit while finishing */
    unlink(out);
    fprintf(stderr, "%s: the file size limit (ulimit -f) was reached; %s not written\n", cmd_prog, out);
    status = 1;
  }
  if (!status)
    printf("synth: %s: %d layers x %d heads, N = %d, d = %d, %d item%s (%ld padding tokens per item), seed %llu\n",
           out, L, H, N, D, items, items == 1 ? "" : "s", pad, (unsigned long long)c.seed);
  free(mask);
  free(Q);
  free(K);
  free(V);
  return status;
}
