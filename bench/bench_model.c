/* bench_model.c - a model's forward passes under every scheme, one thread,
 * beside PyTorch's CPU time for the exact forward of the same model on
 * the same items (when /usr/bin/python3 has torch; the bench says so when
 * it has not).
 *
 *   bench/bench_model MODEL.h5 [ITEMS] [REPEATS] [CONFIG.ini]   (200, 3)
 *
 * The items: the first ITEMS Fashion-MNIST test images (image models) or
 * evaluation windows (text models).  Per scheme (exact attention, then
 * SPRINT and the baselines), the thread CPU time of the ITEMS forward
 * passes of spr_model_infer after a warm-up item, the median of REPEATS,
 * in ms per item, and its ratio to PyTorch's exact forward
 * (scripts/bench_torch_forward.py, 1 thread, the items in one batch).
 * CONFIG (optional) sets the keys over the defaults (e.g. threshold.bits =
 * 8 when the keep-rate target is not reachable on a toy model's grid).
 */
#define _DEFAULT_SOURCE /* getloadavg, popen */
#include "config.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_fmnist.h"
#include "spr_model.h"
#include "spr_model_eval.h"
#include "spr_attend.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#ifndef SPR_SRCDIR
#define SPR_SRCDIR "."
#endif

static double tcpu(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void die(void) {
  fprintf(stderr, "bench_model: %s\n", spr_errmsg());
  exit(1);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench_model MODEL.h5 [ITEMS] [REPEATS] [CONFIG.ini]\n");
    return 2;
  }
  const char *path = argv[1];
  const int items = argc > 2 ? atoi(argv[2]) : 200, reps = argc > 3 ? atoi(argv[3]) : 3;
  if (items < 1 || reps < 1 || reps > 99) {
    fprintf(stderr, "bench_model: ITEMS >= 1, REPEATS 1..99\n");
    return 2;
  }
  spr_config c;
  spr_config_default(&c);
  if (argc > 4 && spr_config_load(&c, argv[4])) die();
  spr_model m;
  if (spr_model_load(path, &m)) die();
  c.wl.source = SPR_SOURCE_MODEL;
  snprintf(c.wl.model, sizeof c.wl.model, "%s", path);
  if (spr_config_resolve(&c, "bench")) die();
  spr_config mc;
  if (spr_model_config(&c, &m, path, &mc)) die();
  spr_fmnist data;
  const uint8_t *in0 = NULL;
  size_t stride = 0;
  if (m.input == SPR_MODEL_IMAGE) {
    if (spr_fmnist_load(c.wl.dataset, "t10k", &data)) die();
    if (items > data.count) {
      fprintf(stderr, "bench_model: %d items, %d test images\n", items, data.count);
      return 1;
    }
    in0 = data.pixels;
    stride = (size_t)m.side * m.side;
  } else {
    if (spr_model_windows(&m, m.n_eval) < items) {
      fprintf(stderr, "bench_model: %d windows asked, the file has %d\n", items,
              spr_model_windows(&m, m.n_eval));
      return 1;
    }
    in0 = m.eval_tokens;
    stride = (size_t)m.tokens;
  }
  spr_model_ctx *x;
  if (spr_model_ctx_alloc(&mc, &m, &x)) die();
  openblas_set_num_threads(1);
  float *logits = malloc((size_t)m.tokens * m.outputs * sizeof *logits);
  double la[3];
  printf("bench_model: %s (%s, %d layers x %d heads, N = %d, d = %d, dim %d), %d items, 1 "
         "thread, median of %d\n", path, spr_model_input_name(m.input), m.depth, m.heads, m.tokens,
         m.head_dim, m.dim, items, reps);
  print_blas();
  if (getloadavg(la, 3) == 3) printf("  load average before: %.2f %.2f %.2f\n", la[0], la[1], la[2]);
  /* PyTorch first: its line decides the ratio column */
  char cmd[4096], line[512] = "";
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/scripts/bench_torch_forward.py '%s' %d --data '%s' 2>&1",
           SPR_SRCDIR, path, items, c.wl.dataset);
  FILE *py = popen(cmd, "r");
  double torch_ms = 0;
  if (py) {
    if (fgets(line, sizeof line, py)) {
      const char *p = strstr(line, ": ");
      if (!strncmp(line, "torch ", 6) && p) torch_ms = atof(p + 2);
    }
    pclose(py);
  }
  line[strcspn(line, "\n")] = 0;
  if (torch_ms > 0) printf("  PyTorch exact forward: %s\n", line);
  else printf("  PyTorch: not measured (%s)\n", line[0] ? line : "/usr/bin/python3 failed");
  printf("  %-12s %12s %14s\n", "scheme", "ms per item", "x PyTorch exact");
  spr_model_item_stats st;
  const int order[] = {SPR_MEVAL_EXACT, SPR_SCHEME_SPRINT, SPR_SCHEME_DENSE, SPR_SCHEME_DENSE_TILED,
                       SPR_SCHEME_ORACLE, SPR_SCHEME_TOPK, SPR_SCHEME_SANGER, SPR_SCHEME_LEOPARD,
                       SPR_SCHEME_WINDOW};
  double worst = 0, exact_ratio = 0;
  for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
    const int s = order[k];
    if (s != SPR_MEVAL_EXACT && !spr_attend_scheme_on(&mc, s)) continue;
    if (spr_model_infer(&mc, &m, s, in0, 0, x, logits, &st)) die(); /* warm-up */
    double t[99];
    for (int r = 0; r < reps; r++) {
      const double t0 = tcpu();
      for (int i = 0; i < items; i++)
        if (spr_model_infer(&mc, &m, s, in0 + (size_t)i * stride, i, x, logits, &st)) die();
      t[r] = (tcpu() - t0) / items;
    }
    const double ms = 1e3 * median(t, reps);
    if (torch_ms > 0) {
      printf("  %-12s %12.3f %14.2f\n", spr_model_scheme_name(s), ms, ms / torch_ms);
      if (s == SPR_MEVAL_EXACT) exact_ratio = ms / torch_ms;
      else if (ms / torch_ms > worst) worst = ms / torch_ms;
    } else {
      printf("  %-12s %12.3f %14s\n", spr_model_scheme_name(s), ms, "-");
    }
  }
  if (getloadavg(la, 3) == 3) printf("  load average after: %.2f %.2f %.2f\n", la[0], la[1], la[2]);
  if (torch_ms > 0) {
    printf("  ratio exact forward / PyTorch exact:          %6.2f (issue 12: <= 1.5)\n", exact_ratio);
    printf("  ratio slowest scheme's forward / PyTorch exact: %4.2f (issue 12: <= 3)\n", worst);
  }
  free(logits);
  spr_model_ctx_free(x);
  if (m.input == SPR_MODEL_IMAGE) spr_fmnist_free(&data);
  spr_model_free(&m);
  return 0;
}
