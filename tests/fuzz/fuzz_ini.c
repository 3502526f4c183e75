/* fuzz_ini.c - the INI configuration parser (core/spr_config.c).
 *
 * Input: the bytes of a configuration file.  Properties: a refused file
 * gives an error naming it; an accepted one is resolved, written back by
 * spr_config_to_ini (what `sprintsim config` prints and traces record),
 * and that text parses to the same value of every key, and to the same
 * text again. */
#include "config.h"
#include "fuzz_common.h"
#include "spr_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  if (size > 1 << 16) return 0;
  const char *path = fuzz_path("in.ini"), *back = fuzz_path("back.ini");
  fuzz_write(path, data, size);
  spr_config c, d;
  spr_config_default(&c);
  int rc = spr_config_load(&c, path);
  if (rc) {
    fuzz_check_names(rc, path);
    return 0;
  }
  char *ini = spr_config_to_ini(&c);
  FUZZ_CHECK(ini != NULL, "to_ini");
  fuzz_write(back, ini, strlen(ini));
  spr_config_default(&d);
  rc = spr_config_load(&d, back);
  FUZZ_CHECK(rc == 0, "the written configuration does not read back:\n%s", ini);
  for (int i = 0; i < spr_config_nkeys(); i++) {
    char a[4096], b[4096];
    spr_config_format(&c, i, a, sizeof a);
    spr_config_format(&d, i, b, sizeof b);
    const spr_config_key_info *k = spr_config_key(i);
    FUZZ_CHECK(!strcmp(a, b), "key %s.%s: '%s' read back as '%s'", k->section, k->name, a, b);
  }
  char *ini2 = spr_config_to_ini(&d);
  FUZZ_CHECK(ini2 && !strcmp(ini, ini2), "the written text changes when read and written again");
  free(ini);
  free(ini2);
  return 0;
}
