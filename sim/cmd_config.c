/* cmd_config.c - sprintsim config: the resolved configuration as INI text;
 * of a sweep file, its base configuration and its grid. */
#include "config.h"
#include "cmd.h"
#include "spr_config.h"
#include "spr_device.h"
#include "spr_error.h"
#include "spr_qkv.h"
#include "spr_sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cmd_usage_config(FILE *f) {
  fprintf(f,
          "usage: sprintsim config [CONFIG] [--set SECTION.KEY=VALUE ...]\n"
          "\n"
          "Print the resolved configuration (the defaults, or CONFIG over the defaults)\n"
          "as INI text: every key with its value, unit and meaning.  Sizes left to a\n"
          "Q/K/V file are the file's; with run.device_model set, the values are those a\n"
          "run would use (the keys the model sets are listed on standard error).  The\n"
          "text parses back to the same configuration.\n"
          "\n"
          "A sweep file (with a [sweep] section) prints as its base configuration\n"
          "(resolved as far as it goes without the axes) and then its [sweep] section:\n"
          "the axes with their values, the schemes and max_points, and the number of\n"
          "points as a comment; every point is checked as `sprintsim sweep` does.  The\n"
          "text is itself a sweep file.\n"
          "\n");
  cmd_usage_set(f, NULL);
  fprintf(f,
          "  -h, --help         this help\n"
          "\n"
          "Exit status: 0 success, 1 error in the configuration, 2 bad command line.\n");
}

/* A [sweep] key seen while parsing (cmd_config only needs to know there is one). */
static int note_sweep_key(void *user, const char *name, const char *value, int line,
                          const char *origin) {
  *(int *)user = 1;
  return 0;
}

/* The base configuration and the grid of a sweep file. */
static int config_sweep(const spr_config_src *src) {
  spr_sweep *sw = NULL;
  int rc = spr_sweep_load_src(src, &sw);
  if (rc) return cmd_fail_rc(rc, NULL);
  spr_config *c = malloc(sizeof *c);
  char *ini = NULL;
  if (c) {
    *c = *spr_sweep_base(sw);
    /* the base resolved as a run would (sizes from a Q/K/V file), when it
     * resolves without the axes; else as parsed */
    spr_config *r = malloc(sizeof *r);
    if (r) {
      *r = *c;
      if (!spr_qkv_resolve(r, src->name)) *c = *r;
      else fprintf(stderr, "%s: config: note: the base of %s does not resolve without its axes (%s); "
                   "printed as parsed\n", cmd_prog, src->name, spr_errmsg());
      free(r);
    }
    ini = spr_config_to_ini(c);
  }
  if (!c || !ini) {
    free(c);
    spr_sweep_free(sw);
    fprintf(stderr, "%s: out of memory\n", cmd_prog);
    return 1;
  }
  printf("; a sweep: its base configuration, then its grid ([sweep] at the end)\n\n");
  fputs(ini, stdout);
  const int A = spr_sweep_naxes(sw);
  printf("\n[sweep]\n; %d point%s, evaluator %s; the first axis varies slowest\n",
         spr_sweep_npoints(sw), spr_sweep_npoints(sw) == 1 ? "" : "s", spr_sweep_evaluator(sw)->name);
  for (int a = 0; a < A; a++) {
    /* '|' between values when one holds a comma (a list key); a few
     * values a line, continued on indented lines (short lines parse) */
    const int nv = spr_sweep_axis_nvalues(sw, a);
    int bar = 0;
    for (int v = 0; v < nv; v++) bar |= strchr(spr_sweep_axis_text(sw, a, v), ',') != NULL;
    printf("; %d value%s\n%s = ", nv, nv == 1 ? "" : "s", spr_sweep_axis_key(sw, a));
    size_t col = strlen(spr_sweep_axis_key(sw, a)) + 3;
    for (int v = 0; v < nv; v++) {
      const char *t = spr_sweep_axis_text(sw, a, v);
      if (v && col + strlen(t) > 100) {
        printf(bar ? " |\n  " : ",\n  ");
        col = 2;
      } else if (v) {
        printf(bar ? " | " : ", ");
        col += 3;
      }
      printf("%s", t);
      col += strlen(t);
    }
    printf("\n");
  }
  printf("schemes = ");
  for (int k = 0; k < spr_sweep_nschemes(sw); k++)
    printf("%s%s", k ? ", " : "", spr_scheme_name(spr_sweep_scheme(sw, k)));
  printf("\nmax_points = %d\n", spr_sweep_max_points(sw));
  free(ini);
  free(c);
  spr_sweep_free(sw);
  return 0;
}

int cmd_config(int argc, char **argv) {
  cmd_opts o = {.cmd = "config", .usage = cmd_usage_config, .config_what = "at most",
                .allow = CMD_OPT_SET};
  int st = cmd_parse_opts(argc, argv, &o);
  if (st >= 0) return st;
  spr_config_src src;
  if (cmd_config_src(&o, &src)) return 1;
  spr_config c;
  spr_config_default(&c);
  /* a [sweep] section makes it a sweep file */
  int sweep = 0;
  if (o.config && !spr_config_parse_src(&c, &src, "sweep", note_sweep_key, &sweep) && sweep)
    return config_sweep(&src);
  spr_config_default(&c);
  int rc = spr_config_load_src(&c, &src);
  if (!rc) rc = spr_qkv_resolve(&c, src.name);
  if (rc) return cmd_fail_rc(rc, NULL);
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
