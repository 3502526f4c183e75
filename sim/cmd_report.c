/* cmd_report.c - sprintsim report: a trace's tables (sim/spr_report.h). */
#include "config.h"
#include "cmd.h"
#include "spr_report.h"
#include "spr_table.h"

#include <stdio.h>
#include <string.h>

void cmd_usage_report(FILE *f) {
  fprintf(f,
          "usage: sprintsim report FILE.h5 [--format text|csv|json]\n"
          "\n"
          "Print, from a run's trace alone (sprintsim run -o FILE.h5), per layer and in\n"
          "total for every scheme: keep rate, bytes fetched and reused, energy, cycles,\n"
          "speedup and energy reduction over dense, accuracy metrics; then energy and\n"
          "busy cycles by component, and the device model the run applied.\n"
          "\n"
          "  --format FORMAT    text (default: aligned columns), csv (one table after\n"
          "                     another, an empty line between them) or json (one\n"
          "                     object: \"layers\", \"energy_by_component_J\",\n"
          "                     \"cycles_by_component\" arrays of rows); CSV and JSON carry\n"
          "                     the values unscaled, in SI units, rates as fractions\n"
          "  -h, --help         this help\n"
          "\n"
          "A file that is not a run trace (a sweep file, a ViT evaluation, a device\n"
          "model, a Q/K/V file, ...) is named for what it is.  Exit status: 0 success,\n"
          "1 error, 2 bad command line.\n");
}

int cmd_report(int argc, char **argv) {
  const char *path = NULL;
  int format = SPR_TABLE_TEXT;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      cmd_usage_report(stdout);
      return 0;
    } else if (!strcmp(a, "--format")) {
      if (i + 1 >= argc || (format = spr_table_format_of(argv[i + 1])) < 0) {
        fprintf(stderr, "%s: report: --format '%s' is not one of text, csv, json\n", cmd_prog,
                i + 1 < argc ? argv[i + 1] : "(missing)");
        return CMD_EXIT_USAGE;
      }
      i++;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "%s: report: unknown option '%s' (see 'sprintsim help report')\n", cmd_prog, a);
      return CMD_EXIT_USAGE;
    } else if (!path) {
      path = a;
    } else {
      fprintf(stderr, "%s: report: expected one trace file, not also '%s'\n", cmd_prog, a);
      return CMD_EXIT_USAGE;
    }
  }
  if (!path) {
    fprintf(stderr, "%s: report: expected one trace file (see 'sprintsim help report')\n", cmd_prog);
    return CMD_EXIT_USAGE;
  }
  if (spr_report_write(path, stdout, format)) return cmd_fail(1, NULL);
  return 0;
}
