/* cmd_report.c - sprintsim report: a trace's tables (sim/spr_report.h). */
#include "config.h"
#include "cmd.h"
#include "spr_report.h"

#include <stdio.h>
#include <string.h>

int cmd_report(int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
    printf("usage: sprintsim report FILE.h5\n\nPrint, from a trace alone, per layer and in total for "
           "every scheme: keep rate,\nbytes fetched and reused, energy, cycles, speedup and energy "
           "reduction over\ndense, accuracy metrics; then energy and cycles by component.\n");
    return 0;
  }
  if (argc != 2) {
    fprintf(stderr, "%s: report: expected one trace file (see 'sprintsim report --help')\n", cmd_prog);
    return CMD_EXIT_USAGE;
  }
  if (spr_report_print(argv[1], stdout)) return cmd_fail(1, NULL);
  return 0;
}
