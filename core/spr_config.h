/* spr_config.h - INI configuration: defaults, parsing, validation, output.
 *
 * All keys live in one table (core/spr_config.c) with their default, unit,
 * range and documentation.  A file is parsed over the defaults; unknown
 * sections or keys, duplicate keys, malformed numbers, values out of range
 * and values whose unit does not match the key's are errors whose message
 * names the file, line, key and value.
 *
 * Numeric values may carry the key's unit with an SI prefix:
 * "g_max = 100 uS", "r_wl = 2.5ohm", "drift_time = 1 ks".  Units are SI
 * symbols (S, V, A, ohm, s, K, Hz), "score" for score units (the integer
 * product of quantized query and programmed key codes), or "" for
 * dimensionless keys.
 */
#ifndef SPR_CONFIG_H
#define SPR_CONFIG_H

#include <stddef.h>
#include "spr_params.h"

enum spr_key_type {
  SPR_KEY_INT,
  SPR_KEY_U64,
  SPR_KEY_DOUBLE,
  SPR_KEY_BOOL,
  SPR_KEY_ENUM,
  SPR_KEY_LIST,  /* comma-separated doubles */
  SPR_KEY_STRING /* text up to SPR_STRING_MAX - 1 bytes (file paths); "" = unset */
};

typedef struct {
  const char *section; /* "crossbar" */
  const char *name;    /* "g_max" */
  int type;            /* enum spr_key_type */
  const char *unit;    /* SI symbol ("S") or "" when dimensionless */
  const char *doc;     /* one line */
  const char *choices; /* SPR_KEY_ENUM: "|"-separated names, else NULL */
} spr_config_key_info;

/* Fill *c with the defaults of every key. */
void spr_config_default(spr_config *c);

/* Parse the INI file `path` over the current contents of *c, then resolve
 * (spr_config_resolve).  On error *c may be partly updated; the message
 * names path, line, key and value.  Returns 0, SPR_EIO or SPR_ECONFIG. */
int spr_config_load(spr_config *c, const char *path);

/* Handler of an extra section (spr_config_parse): key `name` with its
 * value, continuation lines joined like a list's, first given on `line`
 * of the file.  Errors must be raised
 * with spr_error and a message starting with `origin` followed by ": "
 * (the parser replaces it by "path:line").  Returns 0 or an error code. */
typedef int (*spr_config_section_fn)(void *user, const char *name, const char *value,
                                     int line, const char *origin);

/* Parse the INI file `path` over *c like spr_config_load, WITHOUT
 * resolving (spr_config_resolve is the caller's), except that the keys of
 * the one extra section `section` (not a configuration section, e.g.
 * "sweep") are passed in file order to fn instead of being refused.
 * Every other rule of spr_config_load holds.  Returns 0, SPR_EIO,
 * SPR_ECONFIG (the message names path:line), SPR_ENOMEM, SPR_EINVAL
 * (section is a configuration section, or fn is NULL), or fn's error with
 * the line of its key. */
int spr_config_parse(spr_config *c, const char *path, const char *section,
                     spr_config_section_fn fn, void *user);

/* Where a configuration comes from: a file or a text, and overrides (the
 * command line's --set).
 * name: the file to read, or the text's name in messages ("stdin").
 * text: NULL to read the file; else the configuration's text (read by the
 *   caller, e.g. from standard input).  Relative file names in a file are
 *   taken from its folder; in a text, as in overrides, from the current
 *   folder.
 * set: n_set overrides "section.key=value" (spaces around the parts are
 *   ignored), applied after the text and before resolving: a key the text
 *   gives too takes the override's value.  A key of the extra section of
 *   spr_config_parse_src ("calibrate.timeout=5 s"; the key is everything
 *   after the first dot: "sweep.analog.v_read=0.1, 0.2") reaches the
 *   section's handler once, in the place of the text's key or after the
 *   text's keys, with line 0 and the override as its origin.  Errors of
 *   overrides (no '=' or '.', unknown section or key, a key given twice,
 *   a bad value) are SPR_EUSAGE, their messages start with
 *   "<set_name> section.key=value: "; an error between keys that names an
 *   overridden key names "<set_name> section.key" as its place.
 * set_name: how overrides are named in messages ("--set"; NULL:
 *   "override"). */
typedef struct {
  const char *name;
  const char *text;
  const char *const *set;
  int n_set;
  const char *set_name;
} spr_config_src;

/* spr_config_load and spr_config_parse of a source (above). */
int spr_config_load_src(spr_config *c, const spr_config_src *src);
int spr_config_parse_src(spr_config *c, const spr_config_src *src, const char *section,
                         spr_config_section_fn fn, void *user);

/* Index of key section.name in the table (spr_config_key), -1 if none. */
int spr_config_find(const char *section, const char *name);

/* Set one key from its textual value.  `origin` names where the value came
 * from in error messages ("run.ini:12", "--seed").  Returns 0 or
 * SPR_ECONFIG. */
int spr_config_set(spr_config *c, const char *section, const char *name,
                   const char *value, const char *origin);

/* Replace the 0 ("preset's value") workload fields by the preset's values
 * and check relations between keys (g_min < g_max, even cols, ...).
 * `origin` names the source in messages.  Returns 0 or SPR_ECONFIG. */
int spr_config_resolve(spr_config *c, const char *origin);

/* Number of keys and their descriptions, in table order. */
int spr_config_nkeys(void);
const spr_config_key_info *spr_config_key(int i);

/* Value of key i as text (as it would be written in a file, without unit;
 * lists comma-separated).  Returns the number of characters that the full
 * text needs, like snprintf. */
int spr_config_format(const spr_config *c, int i, char *buf, size_t n);

/* The resolved configuration as INI text, with units and documentation as
 * comments; parsing it gives back the same configuration.  Returns a string
 * to free(), or NULL when out of memory. */
char *spr_config_to_ini(const spr_config *c);

/* Short name of the workload preset ("bert-base"). */
const char *spr_preset_name(int preset);

#endif
