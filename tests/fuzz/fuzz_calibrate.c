/* fuzz_calibrate.c - the [calibrate] grammar (calibration/spr_calibrate.c)
 * with the configuration around it.
 *
 * Input: a configuration file with a [calibrate] section.  Properties: a
 * refused file gives an error naming it; an accepted one (parsed,
 * resolved, checked as `sprintsim calibrate` does before any SPICE run)
 * is written back as the device file's /provenance/config is (the
 * resolved configuration, then spr_cal_params_to_ini) and reads back to
 * the same text. */
#include "config.h"
#include "fuzz_common.h"
#include "spr_calibrate.h"
#include "spr_config.h"

static int on_key(void *user, const char *name, const char *value, int line, const char *origin) {
  return spr_cal_params_set(user, name, value, origin);
}

/* Parse, resolve, check path into c, p; *checked = 1 when the failure
 * came from spr_cal_params_check (its message names the section and the
 * keys; the command adds the file and line). */
static int load(const char *path, spr_config *c, spr_cal_params *p, int *checked) {
  spr_config_default(c);
  spr_cal_params_default(p);
  *checked = 0;
  int rc = spr_config_parse(c, path, "calibrate", on_key, p);
  if (!rc) rc = spr_config_resolve(c, path);
  if (!rc && (rc = spr_cal_params_check(p, c))) *checked = 1;
  return rc;
}

static char *text_of(const spr_config *c, const spr_cal_params *p) {
  char *a = spr_config_to_ini(c), *b = spr_cal_params_to_ini(p);
  FUZZ_CHECK(a && b, "to_ini");
  char *t = malloc(strlen(a) + strlen(b) + 2);
  FUZZ_CHECK(t != NULL, "out of memory");
  sprintf(t, "%s\n%s", a, b);
  free(a);
  free(b);
  return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  if (size > 1 << 16) return 0;
  const char *path = fuzz_path("cal.ini"), *back = fuzz_path("cal-back.ini");
  fuzz_write(path, data, size);
  spr_config c, c2;
  spr_cal_params p, p2;
  int checked;
  int rc = load(path, &c, &p, &checked);
  if (rc && checked) FUZZ_CHECK(strstr(spr_errmsg(), "[calibrate]") != NULL, "the message names no section");
  else if (rc) fuzz_check_names(rc, path);
  if (rc) return 0;
  char *t = text_of(&c, &p);
  fuzz_write(back, t, strlen(t));
  rc = load(back, &c2, &p2, &checked);
  FUZZ_CHECK(rc == 0, "the written configuration does not read back:\n%s", t);
  char *t2 = text_of(&c2, &p2);
  FUZZ_CHECK(!strcmp(t, t2), "read back differently:\n%s\n---\n%s", t, t2);
  free(t);
  free(t2);
  return 0;
}
