/* test_table.c - the table emitter (sim/spr_table.c): text alignment,
 * scales and suffixes, columns of one format only, CSV quoting, JSON
 * escaping and nulls, an unfinished document, every error path. */
#include "config.h"
#include "spr_error.h"
#include "spr_table.h"
#include "spr_test.h"

#include <math.h>

static const spr_table_col cols[] = {
    {"scheme", NULL, 8, NULL, 0, NULL, SPR_COL_LEFT},
    {"energy_J", "energy uJ", 10, "%.1f", 1e6, NULL, 0},
    {"speedup", NULL, 8, "%.2f", 0, "x", 0},
    {"range", "thr", 7, NULL, 0, NULL, SPR_COL_TEXT_ONLY},
    {"lo", NULL, 0, NULL, 0, NULL, SPR_COL_DATA_ONLY},
};

/* The document of two rows and a meta value in `format`, in a string to free(). */
static char *render(int format, int complete) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  CU_ASSERT_FATAL(f != NULL);
  spr_table *t = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_table_open(f, format, &t), 0);
  CU_ASSERT_EQUAL(spr_table_format(t), format);
  CU_ASSERT_EQUAL(spr_table_meta_str(t, "note", "a \"quoted\"\tline\n"), 0);
  CU_ASSERT_EQUAL(spr_table_meta_num(t, "n", 2.385), 0);
  CU_ASSERT_EQUAL(spr_table_meta_u64(t, "seed", 18446744073709551557ULL), 0);
  CU_ASSERT_EQUAL(spr_table_text(t, "text only %d\n", 7), 0);
  CU_ASSERT_EQUAL(spr_table_begin(t, "schemes", "the title", cols, 5), 0);
  const spr_table_cell r1[] = {{"sprint", 0}, {NULL, 6.4121e-3}, {NULL, 7.3456}, {"96..99", 0}, {NULL, 96}};
  const spr_table_cell r2[] = {{"a,\"b\"", 0}, {NULL, NAN}, {NULL, 0.1}, {"", 0}, {NULL, INFINITY}};
  CU_ASSERT_EQUAL(spr_table_row(t, r1), 0);
  CU_ASSERT_EQUAL(spr_table_row(t, r2), 0);
  if (complete) CU_ASSERT_EQUAL(spr_table_end(t), 0);
  if (complete) {
    CU_ASSERT_EQUAL(spr_table_begin(t, "empty", NULL, cols, 2), 0);
    CU_ASSERT_EQUAL(spr_table_end(t), 0);
  }
  CU_ASSERT_EQUAL(spr_table_close(t, complete), 0);
  fclose(f);
  return buf;
}

static void test_text(void) {
  char *s = render(SPR_TABLE_TEXT, 1);
  static const char want[] = "text only 7\n"
                             "the title\n"
                             "scheme    energy uJ  speedup     thr\n"
                             "sprint       6412.1    7.35x  96..99\n"
                             "a,\"b\"           nan    0.10x\n" /* no trailing spaces */
                             "scheme    energy uJ\n";
  CU_ASSERT_STRING_EQUAL(s, want);
  if (strcmp(s, want)) fprintf(stderr, "\n%s", s);
  free(s);
}

static void test_csv(void) {
  char *s = render(SPR_TABLE_CSV, 1);
  static const char want[] = "scheme,energy_J,speedup,lo\n"
                             "sprint,0.0064121,7.3456,96\n"
                             "\"a,\"\"b\"\"\",,0.1,\n"
                             "\n"
                             "scheme,energy_J\n";
  CU_ASSERT_STRING_EQUAL(s, want);
  if (strcmp(s, want)) fprintf(stderr, "\n%s", s);
  free(s);
}

static void test_json(void) {
  char *s = render(SPR_TABLE_JSON, 1);
  static const char want[] =
      "{\n"
      "  \"note\": \"a \\\"quoted\\\"\\tline\\n\",\n"
      "  \"n\": 2.385,\n"
      "  \"seed\": 18446744073709551557,\n"
      "  \"schemes\": [\n"
      "    {\"scheme\": \"sprint\", \"energy_J\": 0.0064121, \"speedup\": 7.3456, \"lo\": 96},\n"
      "    {\"scheme\": \"a,\\\"b\\\"\", \"energy_J\": null, \"speedup\": 0.1, \"lo\": null}\n"
      "  ],\n"
      "  \"empty\": []\n"
      "}\n";
  CU_ASSERT_STRING_EQUAL(s, want);
  if (strcmp(s, want)) fprintf(stderr, "\n%s", s);
  free(s);
  /* unfinished: no closing bracket or brace, so it does not parse */
  s = render(SPR_TABLE_JSON, 0);
  const size_t n = strlen(s);
  CU_ASSERT(strstr(s, "]") == NULL && n > 4 && strcmp(s + n - 3, "\n}\n") != 0);
  CU_ASSERT(strcmp(s + n - 12, "\"lo\": null}\n") == 0); /* the last row, then nothing */
  free(s);
}

static void test_full_precision(void) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  spr_table *t;
  CU_ASSERT_EQUAL_FATAL(spr_table_open(f, SPR_TABLE_CSV, &t), 0);
  const spr_table_col c1[] = {{"x", NULL, 4, "%.1f", 0, NULL, 0}};
  spr_table_begin(t, "x", NULL, c1, 1);
  const double v = 0.1 + 0.2; /* needs 17 digits */
  spr_table_row(t, (spr_table_cell[]){{NULL, v}});
  spr_table_row(t, (spr_table_cell[]){{NULL, 123456789012.0}});
  spr_table_close(t, 1);
  fclose(f);
  CU_ASSERT_STRING_EQUAL(buf, "x\n0.30000000000000004\n123456789012\n");
  CU_ASSERT_EQUAL(strtod(strchr(buf, '\n') + 1, NULL), v);
  free(buf);
}

static void test_errors(void) {
  spr_table *t = (spr_table *)1;
  CU_ASSERT_EQUAL(spr_table_open(stdout, 7, &t), SPR_EINVAL);
  CU_ASSERT_PTR_NULL(t);
  CU_ASSERT_EQUAL(spr_table_open(NULL, SPR_TABLE_TEXT, &t), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_table_format_of("text"), SPR_TABLE_TEXT);
  CU_ASSERT_EQUAL(spr_table_format_of("csv"), SPR_TABLE_CSV);
  CU_ASSERT_EQUAL(spr_table_format_of("json"), SPR_TABLE_JSON);
  CU_ASSERT_EQUAL(spr_table_format_of("JSON"), -1);
  CU_ASSERT_EQUAL(spr_table_format_of(NULL), -1);
  FILE *f = fopen("/dev/null", "w");
  CU_ASSERT_FATAL(f != NULL);
  CU_ASSERT_EQUAL_FATAL(spr_table_open(f, SPR_TABLE_JSON, &t), 0);
  CU_ASSERT_EQUAL(spr_table_row(t, (spr_table_cell[]){{"x", 0}}), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "no table open");
  CU_ASSERT_EQUAL(spr_table_end(t), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_table_begin(t, "t", NULL, cols, 0), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_table_begin(t, "t", NULL, cols, 2), 0);
  CU_ASSERT_EQUAL(spr_table_begin(t, "u", NULL, cols, 2), SPR_EINVAL);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "'u' while a table is open");
  CU_ASSERT_EQUAL(spr_table_meta_num(t, "n", 1), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_table_meta_u64(t, "s", 1), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_table_meta_str(t, "x", "y"), SPR_EINVAL);
  CU_ASSERT_EQUAL(spr_table_close(t, 1), 0);
  fclose(f);
  CU_ASSERT_EQUAL(spr_table_close(NULL, 1), 0);
  /* a full device: the stream's error at close */
  f = fopen("/dev/full", "w");
  if (f) {
    CU_ASSERT_EQUAL_FATAL(spr_table_open(f, SPR_TABLE_TEXT, &t), 0);
    spr_table_begin(t, "t", NULL, cols, 2);
    spr_table_row(t, (spr_table_cell[]){{"x", 0}, {NULL, 1}});
    CU_ASSERT_EQUAL(spr_table_close(t, 1), SPR_EIO);
    SPR_ASSERT_CONTAINS(spr_errmsg(), "write error");
    fclose(f);
  }
}

int main(void) {
  CU_TestInfo tests[] = {{"text", test_text},
                         {"CSV", test_csv},
                         {"JSON", test_json},
                         {"full precision", test_full_precision},
                         {"error paths", test_errors},
                         CU_TEST_INFO_NULL};
  return spr_test_run("table", tests);
}
