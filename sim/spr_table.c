/* spr_table.c - tables as aligned text, CSV or JSON (spr_table.h). */
#include "config.h"
#include "spr_table.h"
#include "spr_error.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct spr_table {
  FILE *out;
  int format;
  int members; /* JSON members written */
  int tables;  /* tables begun */
  int open;    /* a table is open */
  int rows;    /* rows of the open table */
  spr_table_col *cols;
  int ncols;
};

int spr_table_format_of(const char *name) {
  if (!name) return -1;
  if (!strcmp(name, "text")) return SPR_TABLE_TEXT;
  if (!strcmp(name, "csv")) return SPR_TABLE_CSV;
  if (!strcmp(name, "json")) return SPR_TABLE_JSON;
  return -1;
}

int spr_table_open(FILE *out, int format, spr_table **t) {
  *t = NULL;
  if (!out || format < SPR_TABLE_TEXT || format > SPR_TABLE_JSON)
    return spr_error(SPR_EINVAL, "spr_table_open: %s", out ? "unknown format" : "no stream");
  spr_table *d = calloc(1, sizeof *d);
  if (!d) return spr_error(SPR_ENOMEM, "spr_table_open: out of memory");
  d->out = out;
  d->format = format;
  if (format == SPR_TABLE_JSON) fputs("{", out);
  *t = d;
  return 0;
}

int spr_table_format(const spr_table *t) { return t->format; }

/* A JSON string literal. */
static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p == '\n') fputs("\\n", f);
    else if (*p == '\t') fputs("\\t", f);
    else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

/* Shortest of %.15g / %.17g that reads back as the same double. */
static void num(char *buf, size_t n, double x) {
  snprintf(buf, n, "%.15g", x);
  if (strtod(buf, NULL) != x) snprintf(buf, n, "%.17g", x);
}

/* A JSON value of a cell. */
static void json_cell(FILE *f, const spr_table_cell *c) {
  if (c->s) {
    json_str(f, c->s);
  } else if (!isfinite(c->x)) {
    fputs("null", f);
  } else {
    char b[40];
    num(b, sizeof b, c->x);
    fputs(b, f);
  }
}

void spr_csv_field(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\n\r")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static void json_member(spr_table *t, const char *key) {
  fputs(t->members++ ? ",\n" : "\n", t->out);
  fputs("  ", t->out);
  json_str(t->out, key);
  fputs(": ", t->out);
}

int spr_table_meta_str(spr_table *t, const char *key, const char *value) {
  if (t->open) return spr_error(SPR_EINVAL, "spr_table_meta_str: '%s' inside a table", key);
  if (t->format != SPR_TABLE_JSON) return 0;
  json_member(t, key);
  json_str(t->out, value ? value : "");
  return 0;
}

int spr_table_meta_num(spr_table *t, const char *key, double value) {
  if (t->open) return spr_error(SPR_EINVAL, "spr_table_meta_num: '%s' inside a table", key);
  if (t->format != SPR_TABLE_JSON) return 0;
  json_member(t, key);
  const spr_table_cell c = {NULL, value};
  json_cell(t->out, &c);
  return 0;
}

int spr_table_meta_u64(spr_table *t, const char *key, unsigned long long value) {
  if (t->open) return spr_error(SPR_EINVAL, "spr_table_meta_u64: '%s' inside a table", key);
  if (t->format != SPR_TABLE_JSON) return 0;
  json_member(t, key);
  fprintf(t->out, "%llu", value);
  return 0;
}

int spr_table_text(spr_table *t, const char *fmt, ...) {
  if (t->format != SPR_TABLE_TEXT) return 0;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(t->out, fmt, ap);
  va_end(ap);
  return 0;
}

static int shown(const spr_table *t, const spr_table_col *c) {
  return t->format == SPR_TABLE_TEXT ? !(c->flags & SPR_COL_DATA_ONLY) : !(c->flags & SPR_COL_TEXT_ONLY);
}

/* Text: cells padded to their widths, one space apart, no trailing
 * spaces. */
static void text_line(spr_table *t, const char *const *cells) {
  char line[4096];
  size_t len = 0;
  int first = 1;
  for (int k = 0; k < t->ncols; k++) {
    const spr_table_col *c = &t->cols[k];
    if (!shown(t, c)) continue;
    int w = snprintf(line + len, sizeof line - len, (c->flags & SPR_COL_LEFT) ? "%s%-*s" : "%s%*s",
                     first ? "" : " ", c->width, cells[k]);
    if (w > 0) len += (size_t)w;
    if (len >= sizeof line) len = sizeof line - 1;
    first = 0;
  }
  while (len > 0 && line[len - 1] == ' ') len--;
  line[len] = '\0';
  fprintf(t->out, "%s\n", line);
}

int spr_table_begin(spr_table *t, const char *name, const char *title, const spr_table_col *cols,
                    int ncols) {
  if (t->open) return spr_error(SPR_EINVAL, "spr_table_begin: '%s' while a table is open", name);
  if (!cols || ncols < 1 || ncols > 256)
    return spr_error(SPR_EINVAL, "spr_table_begin: '%s' has %d columns", name, ncols);
  spr_table_col *copy = malloc((size_t)ncols * sizeof *copy);
  if (!copy) return spr_error(SPR_ENOMEM, "spr_table_begin: out of memory");
  memcpy(copy, cols, (size_t)ncols * sizeof *copy);
  free(t->cols);
  t->cols = copy;
  t->ncols = ncols;
  t->open = 1;
  t->rows = 0;
  FILE *f = t->out;
  if (t->format == SPR_TABLE_TEXT) {
    if (title) fprintf(f, "%s\n", title);
    const char *heads[256];
    for (int k = 0; k < ncols; k++) heads[k] = cols[k].title ? cols[k].title : cols[k].name;
    text_line(t, heads);
  } else if (t->format == SPR_TABLE_CSV) {
    if (t->tables) fputc('\n', f);
    int first = 1;
    for (int k = 0; k < ncols; k++) {
      if (!shown(t, &cols[k])) continue;
      if (!first) fputc(',', f);
      spr_csv_field(f, cols[k].name);
      first = 0;
    }
    fputc('\n', f);
  } else {
    json_member(t, name);
    fputs("[", f);
  }
  t->tables++;
  return 0;
}

int spr_table_row(spr_table *t, const spr_table_cell *cells) {
  if (!t->open) return spr_error(SPR_EINVAL, "spr_table_row: no table open");
  FILE *f = t->out;
  if (t->format == SPR_TABLE_TEXT) {
    char buf[256][96];
    const char *txt[256];
    for (int k = 0; k < t->ncols; k++) {
      const spr_table_col *c = &t->cols[k];
      txt[k] = buf[k];
      if (!shown(t, c)) {
        buf[k][0] = '\0';
      } else if (cells[k].s) {
        txt[k] = cells[k].s;
      } else {
        const double v = cells[k].x * (c->scale != 0 ? c->scale : 1);
        int w = snprintf(buf[k], sizeof buf[k], c->fmt ? c->fmt : "%g", v);
        if (c->suffix && w >= 0 && (size_t)w < sizeof buf[k])
          snprintf(buf[k] + w, sizeof buf[k] - (size_t)w, "%s", c->suffix);
      }
    }
    text_line(t, txt);
  } else if (t->format == SPR_TABLE_CSV) {
    int first = 1;
    for (int k = 0; k < t->ncols; k++) {
      if (!shown(t, &t->cols[k])) continue;
      if (!first) fputc(',', f);
      first = 0;
      if (cells[k].s) {
        spr_csv_field(f, cells[k].s);
      } else if (isfinite(cells[k].x)) {
        char b[40];
        num(b, sizeof b, cells[k].x);
        fputs(b, f);
      }
    }
    fputc('\n', f);
  } else {
    fputs(t->rows ? ",\n    {" : "\n    {", f);
    int first = 1;
    for (int k = 0; k < t->ncols; k++) {
      if (!shown(t, &t->cols[k])) continue;
      if (!first) fputs(", ", f);
      first = 0;
      json_str(f, t->cols[k].name);
      fputs(": ", f);
      json_cell(f, &cells[k]);
    }
    fputs("}", f);
  }
  t->rows++;
  return 0;
}

int spr_table_end(spr_table *t) {
  if (!t->open) return spr_error(SPR_EINVAL, "spr_table_end: no table open");
  if (t->format == SPR_TABLE_JSON) fputs(t->rows ? "\n  ]" : "]", t->out);
  t->open = 0;
  return 0;
}

int spr_table_close(spr_table *t, int complete) {
  if (!t) return 0;
  if (complete && t->open) spr_table_end(t);
  if (complete && t->format == SPR_TABLE_JSON) fputs(t->members ? "\n}\n" : "}\n", t->out);
  if (!complete && t->format != SPR_TABLE_TEXT) fputc('\n', t->out);
  int bad = fflush(t->out) != 0 || ferror(t->out);
  free(t->cols);
  free(t);
  return bad ? spr_error(SPR_EIO, "tables: write error on the output stream") : 0;
}
