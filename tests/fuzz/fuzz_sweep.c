/* fuzz_sweep.c - the [sweep] grammar (sim/spr_sweep.c).
 *
 * Input: a sweep file.  Properties: a refused file gives an error naming
 * it; for an accepted one, every point's configuration (at most 64 of
 * them) is written as the sweep file's /points/config_ini holds it and
 * reads back to the same value of every key.  A sweep of a model
 * (workload.source = model, or vit, its old name) reads its model files
 * when the points are built, through the isolated reader like every
 * other input. */
#include "config.h"
#include "fuzz_common.h"
#include "spr_config.h"
#include "spr_sweep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  if (size > 1 << 16) return 0;
  const char *path = fuzz_path("sweep.ini"), *back = fuzz_path("point.ini");
  fuzz_write(path, data, size);
  spr_sweep *sw = NULL;
  int rc = spr_sweep_load(path, &sw);
  if (rc) {
    fuzz_check_names(rc, path);
    return 0;
  }
  const int np = spr_sweep_npoints(sw);
  FUZZ_CHECK(np >= 1, "%d points", np);
  for (int pt = 0; pt < np && pt < 64; pt++) {
    spr_config c, d;
    FUZZ_CHECK(spr_sweep_point_config(sw, pt, &c) == 0, "point %d", pt);
    char *ini = spr_config_to_ini(&c);
    FUZZ_CHECK(ini != NULL, "to_ini");
    fuzz_write(back, ini, strlen(ini));
    spr_config_default(&d);
    rc = spr_config_load(&d, back);
    FUZZ_CHECK(rc == 0, "point %d's configuration does not read back:\n%s", pt, ini);
    for (int i = 0; i < spr_config_nkeys(); i++) {
      char a[4096], b[4096];
      spr_config_format(&c, i, a, sizeof a);
      spr_config_format(&d, i, b, sizeof b);
      const spr_config_key_info *k = spr_config_key(i);
      FUZZ_CHECK(!strcmp(a, b), "point %d key %s.%s: '%s' read back as '%s'", pt, k->section, k->name, a, b);
    }
    free(ini);
  }
  spr_sweep_free(sw);
  return 0;
}
