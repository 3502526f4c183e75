/* main.c - the sprintsim command: top-level usage and help, and the
 * dispatch to one file per command (sim/cmd_<command>.c, shared parts in
 * sim/cmd_common.c, declared in sim/cmd.h). */
#include "config.h"
#include "cmd.h"
#include "cmd_mpi.h"
#include "spr_error.h"
#include "spr_h5r.h"
#include "spr_output.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage_main(FILE *f) {
  fprintf(f,
          "usage: sprintsim COMMAND [ARGS]\n"
          "\n"
          "Simulate ReRAM in-memory attention pruning (SPRINT, MICRO 2022).\n"
          "\n"
          "commands:\n"
          "  run [CONFIG] [options]   simulate a workload through crossbar scoring and\n"
          "                           threshold comparators; write an HDF5 trace\n"
          "  sweep CONFIG [-o SWEEP.h5] [--threads N]\n"
          "                           run every point of the grid in CONFIG's [sweep]\n"
          "                           section; write SWEEP.h5 and SWEEP.csv\n"
          "  report FILE.h5 [--format text|csv|json]\n"
          "                           per-layer and total tables of every scheme in a\n"
          "                           trace: keep rate, bytes, energy by component,\n"
          "                           cycles, speedup and energy reduction over dense,\n"
          "                           accuracy against dense attention\n"
          "  crossbar --g G.h5 --v V.h5 --model M [--r-wl OHM --r-bl OHM] -o I.h5\n"
          "                           column currents of your own conductance matrix\n"
          "                           and inputs under a model (ideal, analytic, nodal,\n"
          "                           spice)\n"
          "  config [CONFIG]          print the resolved configuration (every key with\n"
          "                           its value, unit and meaning) as INI text; of a\n"
          "                           sweep file, its base and its grid\n"
          "  calibrate CONFIG [-o DEVICE.h5] [--seed N]\n"
          "                           measure the cell, crossbar and comparator with\n"
          "                           ngspice, fit the device model, write DEVICE.h5\n"
          "                           (use it with run.device_model)\n"
          "  synth [CONFIG] -o FILE.h5 [--batch B --pad P]\n"
          "                           write the synthetic generator's Q, K, V as a\n"
          "                           sprintsim-qkv file (docs/qkv.md)\n"
          "  help [COMMAND]           show help\n"
          "\n"
          "  sprintsim --version      print the version and whether MPI is built in\n"
          "\n"
          "Every command that reads a configuration takes --set SECTION.KEY=VALUE\n"
          "(repeatable) over it, and '-' as CONFIG for standard input.  'sprintsim help\n"
          "COMMAND' shows a command's options; docs/ has the model, the configuration\n"
          "keys and the trace schema.\n");
}

/* Under an MPI launcher with several processes: a command that only
 * reads and prints may run in each (MPI_SAFE); sweep spreads its points
 * over them when built with MPI (MPI_SWEEP); the others would run once
 * per process, each writing the same files, and are refused. */
enum { MPI_REFUSE, MPI_SAFE, MPI_SWEEP };

/* The commands, their functions and help texts. */
static const struct {
  const char *name;
  int (*fn)(int, char **);
  void (*usage)(FILE *);
  int mpi;
} commands[] = {
    {"run", cmd_run, cmd_usage_run, MPI_REFUSE},
    {"sweep", cmd_sweep, cmd_usage_sweep, MPI_SWEEP},
    {"report", cmd_report, cmd_usage_report, MPI_SAFE},
    {"crossbar", cmd_crossbar, cmd_usage_crossbar, MPI_REFUSE},
    {"config", cmd_config, cmd_usage_config, MPI_SAFE},
    {"calibrate", cmd_calibrate, cmd_usage_calibrate, MPI_REFUSE},
    {"synth", cmd_synth, cmd_usage_synth, MPI_REFUSE},
};

/* A command started among `ranks` processes that cannot share its work:
 * rank 0 says why, every process exits 2. */
static int refuse_mpi(const char *cmd, int sweep, int ranks, int rank) {
  if (rank != 0) return CMD_EXIT_USAGE;
  if (sweep)
    fprintf(stderr,
            "%s: sweep: started by an MPI launcher with %d processes, but this sprintsim was "
            "built without MPI: each process would run the whole sweep and write the same "
            "files; start it without mpirun/srun, or install Open MPI (libopenmpi-dev, "
            "openmpi-bin; scripts/setup does) and rebuild (./configure finds it)\n",
            cmd_prog, ranks);
  else
    fprintf(stderr,
            "%s: %s: started by an MPI launcher with %d processes: only sweep spreads its work "
            "over MPI ranks; %s would run %d times, each writing the same files; start it "
            "without mpirun/srun\n",
            cmd_prog, cmd, ranks, cmd, ranks);
  return CMD_EXIT_USAGE;
}
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

/* sprintsim help [TOPIC]: a command's help, or the overview. */
static int help(int argc, char **argv) {
  if (argc > 3) {
    fprintf(stderr, "%s: help: one topic at most (see 'sprintsim help')\n", cmd_prog);
    return CMD_EXIT_USAGE;
  }
  if (argc < 3 || !strcmp(argv[2], "help")) {
    usage_main(stdout);
    return 0;
  }
  for (int k = 0; k < N_COMMANDS; k++)
    if (!strcmp(argv[2], commands[k].name)) {
      commands[k].usage(stdout);
      return 0;
    }
  fprintf(stderr, "%s: help: no help topic '%s'; topics:", cmd_prog, argv[2]);
  for (int k = 0; k < N_COMMANDS; k++) fprintf(stderr, " %s", commands[k].name);
  fprintf(stderr, "\n");
  return CMD_EXIT_USAGE;
}

int main(int argc, char **argv) {
  /* libhdf5 1.10.8 can crash in its exit handler after a failed write
   * (an H5Fclose that failed leaves a half-closed file behind): never run
   * it.  Every file the command writes is closed explicitly. */
  H5dont_atexit();
  /* limits of the child processes that read input HDF5 files
   * (docs/isolation.md) */
  const char *lim = getenv("SPRINTSIM_H5_LIMITS");
  if (lim && *lim) {
    spr_h5r_limits l;
    spr_h5r_get_limits(&l);
    if (spr_h5r_parse_limits(lim, &l) || spr_h5r_set_limits(&l)) {
      fprintf(stderr, "%s: environment variable SPRINTSIM_H5_LIMITS: %s\n", cmd_prog, spr_errmsg());
      return CMD_EXIT_USAGE;
    }
  }
  /* test-only (tests/test_reliability.sh): output writes fail with ENOSPC
   * once this many bytes are written, as on a disk with that much space */
  const char *freeb = getenv("SPRINTSIM_TEST_FREE_BYTES");
  if (freeb && *freeb) spr__out_fault(atoll(freeb));
  if (argc < 2) {
    usage_main(stderr);
    return CMD_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
    usage_main(stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version")) {
    printf("sprintsim %s\n", PACKAGE_VERSION);
    printf("MPI: %s\n", cmd_mpi_available() ? "yes (sweep spreads its points over MPI ranks)"
                                             : "no (built without it: sweep runs in one process)");
    return 0;
  }
  if (!strcmp(cmd, "help")) return help(argc, argv);
  for (int k = 0; k < N_COMMANDS; k++)
    if (!strcmp(cmd, commands[k].name)) {
      int rank, ranks = cmd_mpi_launched(&rank);
      if (ranks > 1 && commands[k].mpi != MPI_SAFE &&
          !(commands[k].mpi == MPI_SWEEP && cmd_mpi_available()))
        return refuse_mpi(cmd, commands[k].mpi == MPI_SWEEP, ranks, rank);
      int status = commands[k].fn(argc - 1, argv + 1);
      cmd_cleanup();
      return status;
    }
  fprintf(stderr, "%s: unknown command '%s' (see 'sprintsim --help')\n", cmd_prog, cmd);
  return CMD_EXIT_USAGE;
}
