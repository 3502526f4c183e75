/* cmd_config.c - sprintsim config: the resolved configuration as INI text. */
#include "config.h"
#include "cmd.h"
#include "spr_config.h"
#include "spr_device.h"
#include "spr_qkv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_config(int argc, char **argv) {
  if (argc > 2 || (argc == 2 && argv[1][0] == '-' && argv[1][1])) {
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
      printf("usage: sprintsim config [CONFIG]\n\nPrint the resolved configuration "
             "(defaults, or CONFIG over the defaults) as INI text.\n");
      return 0;
    }
    fprintf(stderr, "%s: config: expected at most one CONFIG file\n", cmd_prog);
    return CMD_EXIT_USAGE;
  }
  spr_config c;
  spr_config_default(&c);
  int rc = argc == 2 ? spr_config_load(&c, argv[1]) : spr_config_resolve(&c, "built-in default");
  if (!rc) rc = spr_qkv_resolve(&c, argc == 2 ? argv[1] : "built-in default");
  if (rc) return cmd_fail(1, NULL);
  /* with a device model, print the configuration a run would use (the
   * list of keys it sets goes to stderr, stdout stays INI) */
  spr_device dev;
  int applied[SPR_DEVICE_MAX_PARAMS], n_applied;
  rc = cmd_load_device_model(&c, &dev, applied, &n_applied, stderr);
  spr_device_free(&dev);
  if (rc) return cmd_fail(1, NULL);
  char *ini = spr_config_to_ini(&c);
  if (!ini) {
    fprintf(stderr, "%s: out of memory\n", cmd_prog);
    return 1;
  }
  fputs(ini, stdout);
  free(ini);
  return 0;
}
