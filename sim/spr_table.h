/* spr_table.h - tables with named columns, printed as aligned text, CSV or
 * JSON (`sprintsim run --format`, `sprintsim report --format`).
 *
 * One document on one stream, written as it goes (a run prints its rows
 * as layers finish):
 *
 *   spr_table *t;
 *   spr_table_open(stdout, SPR_TABLE_JSON, &t);
 *   spr_table_meta_str(t, "sprintsim", "0.1.0");  // JSON member; text, CSV: nothing
 *   spr_table_text(t, "%d layers\n", L);           // text only
 *   spr_table_begin(t, "schemes", NULL, cols, ncols);
 *   spr_table_row(t, cells);                        // one cell per column
 *   spr_table_end(t);
 *   spr_table_close(t, 1);                          // stream errors; frees t
 *
 * Text: a table is its title line (if any), a header of the columns'
 * titles and one line per row, each cell right-aligned in its width
 * (left with SPR_COL_LEFT), one space between cells, no trailing spaces;
 * numbers are value * scale in the column's printf format, then the
 * suffix.  CSV (RFC 4180): per table a header of the columns' names, one
 * line per row; tables are separated by one empty line.  JSON: one
 * object whose members are the meta values and the tables, in the order
 * written; a table is an array of row objects keyed by column name.  CSV
 * and JSON carry the values unscaled (SI units, rates as fractions:
 * columns are named like the sweep CSV's, "energy_J", "keep_rate") with
 * full precision (the shortest of %.15g and %.17g that reads back); NaN
 * and infinities are empty in CSV and null in JSON.  A JSON document
 * that was not closed does not parse: an interrupted output never looks
 * complete.
 *
 * Columns marked SPR_COL_TEXT_ONLY exist in text alone (a "96..99" range
 * as one cell), SPR_COL_DATA_ONLY in CSV and JSON alone (its two ends as
 * numbers).  A cell is a string (s non-NULL) or a number; one column may
 * mix them (layer 0, 1, ..., "all").
 */
#ifndef SPR_TABLE_H
#define SPR_TABLE_H

#include <stdio.h>

enum { SPR_TABLE_TEXT = 0, SPR_TABLE_CSV = 1, SPR_TABLE_JSON = 2 };

/* One CSV field of text s (RFC 4180): as is, or quoted with its quotes
 * doubled when it holds a comma, a quote or a line break. */
void spr_csv_field(FILE *f, const char *s);

/* "text", "csv", "json" -> SPR_TABLE_*; -1 for anything else. */
int spr_table_format_of(const char *name);

enum { SPR_COL_LEFT = 1, SPR_COL_TEXT_ONLY = 2, SPR_COL_DATA_ONLY = 4 };

typedef struct {
  const char *name;   /* CSV header and JSON key: "energy_J" */
  const char *title;  /* text header: "energy uJ" (NULL: name) */
  int width;          /* text: cell width (a longer cell is not cut) */
  const char *fmt;    /* text: printf format of a number cell times scale,
                         "%.2f" (NULL: "%g") */
  double scale;       /* text: the number shown is value * scale (0: 1) */
  const char *suffix; /* text: after a number ("x"; NULL: none) */
  unsigned flags;     /* SPR_COL_* */
} spr_table_col;

typedef struct {
  const char *s; /* a string cell; NULL: the number x */
  double x;
} spr_table_cell;

typedef struct spr_table spr_table;

/* Start a document on out (the caller's stream, not closed here) in
 * format SPR_TABLE_*.  Returns 0, SPR_EINVAL (format) or SPR_ENOMEM. */
int spr_table_open(FILE *out, int format, spr_table **t);

/* The document's format. */
int spr_table_format(const spr_table *t);

/* A top-level member of the JSON document (text and CSV: nothing).
 * Keys must differ from each other and from the tables' names. */
int spr_table_meta_str(spr_table *t, const char *key, const char *value);
int spr_table_meta_num(spr_table *t, const char *key, double value);
/* An integer member written with all its digits (a 64-bit seed). */
int spr_table_meta_u64(spr_table *t, const char *key, unsigned long long value);

/* printf to the stream in text format only (titles, notes, blank lines). */
int spr_table_text(spr_table *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Begin table `name` (JSON key) with ncols columns (copied); title: a
 * line printed above the header in text (NULL: none).  Returns 0 or
 * SPR_EINVAL (a table already open, no columns). */
int spr_table_begin(spr_table *t, const char *name, const char *title, const spr_table_col *cols,
                    int ncols);

/* One row: ncols cells, in the columns' order. */
int spr_table_row(spr_table *t, const spr_table_cell *cells);

/* End the current table. */
int spr_table_end(spr_table *t);

/* End the document, flush, and free t (NULL: no-op).  complete: 1 ends
 * it (JSON: closes the open table and the object); 0 leaves it unfinished
 * (after a failure: a JSON document then does not parse).  Returns 0, or
 * SPR_EIO when the stream had an error. */
int spr_table_close(spr_table *t, int complete);

#endif
