/* bench_long.c - long sequences in row blocks: CPU time, wall time and
 * peak memory (RSS) of one layer of the BERT-base preset at growing N,
 * beside the bare GEMM of the same score shapes.
 *
 *   bench/bench_long [NMAX] [THREADS] [REPEATS]     (default 131072, 2, 1)
 *
 * Cases N = 512, 2048, 8192, 32768 with 12 heads (one layer), and 131072
 * with 1 head; those above NMAX are skipped.  Each case runs in a child
 * process of its own, so its peak RSS (getrusage) is its own: the
 * simulation of one layer (every scheme, summary trace level, the
 * automatic block rows, `threads` threads) and, for the GEMM-eq, the
 * heads' N x N x d SGEMMs on one thread, in row blocks of at most 256
 * rows (as the pipeline's own products go), the median of 3 or more rounds
 * after a warm-up.  It prints the load average, per case the block rows,
 * wall and CPU time, the CPU per head over N^2 (ns per pair), the peak
 * RSS, the ratio pipeline CPU / GEMM CPU and the four costliest stages in
 * GEMM-eq, and last the ratio at N = 512, the reference of the others.
 */
#define _DEFAULT_SOURCE /* getloadavg */
#include "config.h"
#include "spr_attend.h"
#include "spr_config.h"
#include "spr_error.h"
#include "spr_pipeline.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

static double cpu_process(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

typedef struct {
  int n, heads, block, ok;
  double wall, cpu, gemm_cpu, rss_mb;
  double stage[SPR_STAGE_N];
} result;

/* The bare GEMMs of `heads` N x N x d score matrices in row blocks: CPU
 * seconds, the median of at least 3 rounds while they take under a second
 * each (a round at N = 512 is a few ms, too short to time once). */
static double gemm_cpu(int heads, int n, int d) {
  const int rb = n < 256 ? n : 256;
  float *a = malloc((size_t)n * d * sizeof *a), *b = malloc((size_t)n * d * sizeof *b);
  float *c = malloc((size_t)rb * n * sizeof *c);
  if (!a || !b || !c) exit(1);
  for (size_t i = 0; i < (size_t)n * d; i++) {
    a[i] = (float)((i * 37) % 15 - 7);
    b[i] = (float)((i * 11) % 16 - 8);
  }
  openblas_set_num_threads(1);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rb, n, d, 1.0f, a, d, b, d, 0.0f, c, n);
  double t[9], sum = 0;
  int k = 0;
  while (k < 9 && (k < 3 || sum < 0.25) && (k == 0 || t[0] < 1.0)) {
    const double c0 = cpu_process();
    for (int h = 0; h < heads; h++)
      for (int i0 = 0; i0 < n; i0 += rb)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n - i0 < rb ? n - i0 : rb, n, d, 1.0f,
                    a + (size_t)i0 * d, d, b, d, 0.0f, c, n);
    t[k] = cpu_process() - c0;
    sum += t[k++];
  }
  free(a);
  free(b);
  free(c);
  return median(t, k);
}

/* One case in this (child) process. */
static void run_case(int n, int heads, int threads, result *out) {
  spr_config c;
  spr_config_default(&c);
  c.wl.seq_len = n;
  c.wl.n_layers = 1;
  c.wl.n_heads = heads;
  if (spr_config_resolve(&c, "bench")) {
    fprintf(stderr, "bench_long: %s\n", spr_errmsg());
    exit(1);
  }
  out->n = n;
  out->heads = heads;
  out->block = spr_run_block_rows(&c);
  spr_run *r;
  if (spr_run_alloc(&c, threads, &r)) {
    fprintf(stderr, "bench_long: N = %d: %s\n", n, spr_errmsg());
    exit(1);
  }
  const double w0 = now(), c0 = cpu_process();
  if (spr_run_layer(r, 0)) {
    fprintf(stderr, "bench_long: N = %d: %s\n", n, spr_errmsg());
    exit(1);
  }
  out->wall = now() - w0;
  out->cpu = cpu_process() - c0;
  spr_run_stages(r, out->stage);
  spr_run_free(r);
  out->gemm_cpu = gemm_cpu(heads, n, c.wl.head_dim);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  out->rss_mb = ru.ru_maxrss / 1024.0;
  out->ok = 1;
}

int main(int argc, char **argv) {
  const int nmax = argc > 1 ? atoi(argv[1]) : 131072, threads = argc > 2 ? atoi(argv[2]) : 2;
  const int reps = argc > 3 ? atoi(argv[3]) : 1;
  if (nmax < 512 || threads < 1 || threads > 64 || reps < 1 || reps > 9) {
    fprintf(stderr, "usage: bench_long [NMAX >= 512] [THREADS 1..64] [REPEATS 1..9]\n");
    return 2;
  }
  static const int cases[][2] = {{512, 12}, {2048, 12}, {8192, 12}, {32768, 12}, {131072, 1}};
  double la[3];
  printf("bench_long: one layer of BERT-base (d = 64, every scheme), %d thread%s, automatic "
         "block rows, median of %d\n", threads, threads == 1 ? "" : "s", reps);
  print_blas();
  if (getloadavg(la, 3) == 3) printf("  load average before: %.2f %.2f %.2f\n", la[0], la[1], la[2]);
  printf("  %6s %5s %6s %9s %9s %9s %11s %9s %7s\n", "N", "heads", "block", "wall s", "CPU s",
         "GEMM s", "ns/pair/hd", "RSS MiB", "GEMM-eq");
  double ratio512 = 0;
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    const int n = cases[k][0], heads = cases[k][1];
    if (n > nmax) continue;
    result rs[9];
    for (int rep = 0; rep < reps; rep++) {
      int fd[2];
      if (pipe(fd)) return 1;
      pid_t pid = fork();
      if (pid == 0) {
        close(fd[0]);
        result r;
        memset(&r, 0, sizeof r);
        run_case(n, heads, threads, &r);
        if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(1);
        _exit(0);
      }
      close(fd[1]);
      memset(&rs[rep], 0, sizeof rs[rep]);
      if (read(fd[0], &rs[rep], sizeof rs[rep]) != (ssize_t)sizeof rs[rep]) rs[rep].ok = 0;
      close(fd[0]);
      int st;
      waitpid(pid, &st, 0);
      if (!rs[rep].ok) {
        printf("  %6d: the case failed\n", n);
        break;
      }
    }
    if (!rs[0].ok) continue;
    double w[9], cpu[9], g[9], rss[9];
    for (int rep = 0; rep < reps; rep++) {
      w[rep] = rs[rep].wall;
      cpu[rep] = rs[rep].cpu;
      g[rep] = rs[rep].gemm_cpu;
      rss[rep] = rs[rep].rss_mb;
    }
    const double mw = median(w, reps), mc = median(cpu, reps), mg = median(g, reps);
    const double mr = median(rss, reps), ratio = mc / mg;
    if (n == 512) ratio512 = ratio;
    printf("  %6d %5d %6d %9.2f %9.2f %9.3f %11.2f %9.0f %7.2f\n", n, heads, rs[0].block, mw, mc,
           mg, 1e9 * mc / heads / ((double)n * n), mr, ratio);
    /* the costliest stages of the first repeat, in GEMM-eq */
    int top[4] = {-1, -1, -1, -1};
    for (int t = 0; t < 4; t++)
      for (int s = 0; s < SPR_STAGE_N; s++) {
        int taken = 0;
        for (int u = 0; u < t; u++) taken |= top[u] == s;
        if (!taken && (top[t] < 0 || rs[0].stage[s] > rs[0].stage[top[t]])) top[t] = s;
      }
    printf("         largest stages (GEMM-eq):");
    for (int t = 0; t < 4; t++) printf(" %s %.1f%s", spr_stage_name(top[t]), rs[0].stage[top[t]] / mg, t < 3 ? ";" : "\n");
    fflush(stdout);
  }
  if (getloadavg(la, 3) == 3) printf("  load average after: %.2f %.2f %.2f\n", la[0], la[1], la[2]);
  if (ratio512 > 0) printf("  GEMM-eq ratio at N = 512 (the reference of the N^2 target): %.2f\n", ratio512);
  return 0;
}
