/* test_journal.c - the journal of finished sweep points: round trips,
 * the record format against an independent CRC-32 and hex encoding,
 * every damaged byte and every cut length of a record detected, every
 * mismatch (version, sweep name, text, input file, a record's
 * configuration) refused by name, locking, a full file. */
#include "spr_error.h"
#include "spr_journal.h"
#include "spr_sweep.h"
#include "spr_test.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char ini[512], jpath[512], other[512];

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_FATAL(f != NULL);
  fputs(text, f);
  fclose(f);
}

static char *read_file(const char *path, size_t *n) {
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *s = malloc(1 << 20);
  *n = fread(s, 1, (1 << 20) - 1, f);
  s[*n] = '\0';
  fclose(f);
  return s;
}

static void put_bytes(const char *path, const char *s, size_t n) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_FATAL(f != NULL);
  fwrite(s, 1, n, f);
  fclose(f);
}

static const char *SWEEP =
    "[workload]\nseq_len = 32\nlayers = 1\nheads = 2\nhead_dim = 16\n"
    "[sweep]\nthreshold.keep_rate = 0.12, 0.31, 0.5\nschemes = sprint, dense\n";

static spr_sweep *load(const char *text) {
  write_file(ini, text);
  spr_sweep *sw = NULL;
  int rc = spr_sweep_load(ini, &sw);
  if (rc) fprintf(stderr, "\n  %s\n", spr_errmsg());
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  return sw;
}

/* A journal of SWEEP with points 2 and 0 finished; sw evaluated in full. */
static spr_sweep *make_journal(void) {
  unlink(jpath);
  spr_sweep *sw = load(SWEEP);
  for (int p = 0; p < 3; p++) CU_ASSERT_EQUAL_FATAL(spr_sweep_eval_point(sw, p, NULL, NULL), 0);
  spr_journal *j = NULL;
  CU_ASSERT_EQUAL_FATAL(spr_journal_create(jpath, sw, "9.8.7", &j), 0);
  CU_ASSERT_EQUAL(spr_journal_append(j, sw, 2), 0);
  CU_ASSERT_EQUAL(spr_journal_append(j, sw, 0), 0);
  spr_journal_close(j);
  return sw;
}

/* Resume `jpath` into a fresh load of text; returns the code. */
static int resume(const char *text, const char *version, int *loaded, spr_sweep **keep) {
  spr_sweep *sw = load(text);
  spr_journal *j = NULL;
  int rc = spr_journal_resume(jpath, sw, version, &j, loaded);
  spr_journal_close(j);
  if (keep) *keep = sw;
  else spr_sweep_free(sw);
  return rc;
}

static void test_names(void) {
  char *p = spr_journal_path("out/sweep.h5");
  CU_ASSERT_STRING_EQUAL(p, "out/sweep.journal");
  free(p);
  p = spr_journal_path("results");
  CU_ASSERT_STRING_EQUAL(p, "results.journal");
  free(p);
}

/* Written, read back: the same rows, bit for bit; the header's lines. */
static void test_round_trip(void) {
  spr_sweep *sw = make_journal(), *b = NULL;
  int loaded = -1;
  CU_ASSERT_EQUAL_FATAL(resume(SWEEP, "9.8.7", &loaded, &b), 0);
  CU_ASSERT_EQUAL(loaded, 2);
  CU_ASSERT(spr_sweep_point_done(b, 0) && !spr_sweep_point_done(b, 1) && spr_sweep_point_done(b, 2));
  for (int s = 0; s < SPR_N_SCHEMES; s++) {
    CU_ASSERT_EQUAL(memcmp(spr_sweep_row(sw, 0, s), spr_sweep_row(b, 0, s), sizeof(spr_eval_row)), 0);
    CU_ASSERT_EQUAL(memcmp(spr_sweep_row(sw, 2, s), spr_sweep_row(b, 2, s), sizeof(spr_eval_row)), 0);
  }
  /* the resumed journal takes more records; a second resume reads all */
  spr_journal *j = NULL;
  spr_sweep_free(b);
  b = load(SWEEP);
  CU_ASSERT_EQUAL_FATAL(spr_journal_resume(jpath, b, "9.8.7", &j, &loaded), 0);
  CU_ASSERT_EQUAL(spr_sweep_eval_point(b, 1, NULL, NULL), 0);
  CU_ASSERT_EQUAL(spr_journal_append(j, b, 1), 0);
  CU_ASSERT_EQUAL(spr_journal_append(j, b, 0), 0); /* twice, the same: harmless */
  spr_journal_close(j);
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), 0);
  CU_ASSERT_EQUAL(loaded, 3); /* points, not records */
  /* the header, as docs/sweep.md describes it */
  size_t n;
  char *t = read_file(jpath, &n);
  CU_ASSERT_FATAL(t != NULL);
  CU_ASSERT_EQUAL(strncmp(t, "sprintsim sweep journal 1\nversion 9.8.7\nsweep ", 46), 0);
  SPR_ASSERT_CONTAINS(t, "\nevaluator attention\nschemes sprint,dense\npoints 3\nsource [workload]\\nseq_len = 32\\n");
  /* "end <crc>" is the CRC-32 (zlib) of everything before it */
  char *end = strstr(t, "\nend ");
  CU_ASSERT_FATAL(end != NULL);
  unsigned long want = crc32(0L, (const Bytef *)t, (uInt)(end + 1 - t));
  CU_ASSERT_EQUAL(strtoul(end + 5, NULL, 16), want);
  free(t);
  spr_sweep_free(sw);
  spr_sweep_free(b);
  /* an unevaluated point cannot be recorded */
  unlink(jpath);
  sw = load(SWEEP);
  CU_ASSERT_EQUAL_FATAL(spr_journal_create(jpath, sw, "9.8.7", &j), 0);
  CU_ASSERT_EQUAL(spr_journal_append(j, sw, 1), SPR_EINVAL);
  spr_journal_close(j);
  spr_sweep_free(sw);
}

/* A record line, recomputed here: "point p hash hex crc" with zlib's
 * CRC-32 of the line up to its last space, the rows in lower-case hex. */
static void test_record_format(void) {
  CU_ASSERT_EQUAL(crc32(0L, (const Bytef *)"123456789", 9), 0xcbf43926UL); /* the check value */
  spr_sweep *sw = make_journal();
  size_t n;
  char *t = read_file(jpath, &n);
  CU_ASSERT_FATAL(t != NULL);
  char *rec = strstr(t, "\npoint 2 ");
  CU_ASSERT_FATAL(rec != NULL);
  rec++;
  char *nl = strchr(rec, '\n');
  CU_ASSERT_FATAL(nl != NULL);
  *nl = '\0';
  char want[4096];
  int k = snprintf(want, sizeof want, "point 2 %016" PRIx64 " ", spr_sweep_point_hash(sw, 2));
  unsigned char rows[SPR_SWEEP_POINT_BYTES];
  CU_ASSERT_EQUAL_FATAL(spr_sweep_point_pack(sw, 2, rows), 0);
  for (int i = 0; i < SPR_SWEEP_POINT_BYTES; i++) k += snprintf(want + k, sizeof want - k, "%02x", rows[i]);
  want[k++] = ' ';
  snprintf(want + k, sizeof want - k, "%08lx", crc32(0L, (const Bytef *)want, (uInt)k));
  CU_ASSERT_STRING_EQUAL(rec, want);
  free(t);
  spr_sweep_free(sw);
}

/* Every byte of a record changed, and every cut inside one: refused,
 * naming the journal, the line and what to keep; a cut at a record's
 * end just loses that record. */
static void test_damage(void) {
  spr_sweep *sw = make_journal();
  spr_sweep_free(sw);
  size_t n;
  char *t = read_file(jpath, &n), *save = malloc(n + 1);
  memcpy(save, t, n + 1);
  char *last = strstr(t, "\npoint 0 ") + 1; /* the last record: line 3 of records */
  const size_t at = (size_t)(last - t);
  int lines = 0;
  for (size_t i = 0; i < at; i++) lines += t[i] == '\n';
  int refused = 0, total = 0;
  for (size_t i = at; i < n; i++) {
    for (int bit = 0; bit < 8; bit += 5) {
      memcpy(t, save, n);
      t[i] ^= (char)(1 << bit);
      put_bytes(jpath, t, n);
      int loaded;
      int rc = resume(SWEEP, "9.8.7", &loaded, NULL);
      total++;
      if (rc == SPR_EIO) {
        refused++;
        if (refused == 1) {
          SPR_ASSERT_CONTAINS(spr_errmsg(), jpath);
          SPR_ASSERT_CONTAINS(spr_errmsg(), "head -n");
          SPR_ASSERT_CONTAINS(spr_errmsg(), "delete it to start the sweep again");
        }
      } else {
        fprintf(stderr, "\n  byte %zu bit %d: rc %d %s\n", i, bit, rc, spr_errmsg());
      }
    }
  }
  CU_ASSERT_EQUAL(refused, total);
  printf("\n    %d damaged copies of a record, all refused ", total);
  /* the message names the line */
  memcpy(t, save, n);
  t[at + 20] = t[at + 20] == 'a' ? 'b' : 'a';
  put_bytes(jpath, t, n);
  int loaded;
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), SPR_EIO);
  char line[64];
  snprintf(line, sizeof line, "line %d: the record's checksum does not match", lines + 1);
  SPR_ASSERT_CONTAINS(spr_errmsg(), line);
  CU_ASSERT_EQUAL(loaded, 0);
  /* cut inside the last record: refused; at its start: one point fewer */
  int cut_refused = 0;
  for (size_t len = at + 1; len < n; len++) {
    put_bytes(jpath, save, len);
    cut_refused += resume(SWEEP, "9.8.7", &loaded, NULL) == SPR_EIO;
  }
  CU_ASSERT_EQUAL(cut_refused, (int)(n - at - 1));
  put_bytes(jpath, save, n - 1); /* no line break */
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "the last record is cut short");
  put_bytes(jpath, save, at);
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), 0);
  CU_ASSERT_EQUAL(loaded, 1);
  /* the header: damaged, cut, not a journal */
  memcpy(t, save, n);
  char *v = strstr(t, "points 3");
  v[7] = '4';
  put_bytes(jpath, t, n);
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "the journal's header is damaged (its checksum does not match)");
  put_bytes(jpath, save, (size_t)(strstr(save, "\nend ") - save) + 1);
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "the journal's header is cut short");
  put_bytes(jpath, "[workload]\nseq_len = 32\n", 24);
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "not a sprintsim sweep journal");
  /* two different records of one point */
  memcpy(t, save, n);
  char *r0 = strstr(t, "\npoint 0 ") + 1;
  size_t rl = strlen(r0);
  char *dup = malloc(n + rl + 1);
  memcpy(dup, t, n);
  memcpy(dup + n, r0, rl);
  put_bytes(jpath, dup, n + rl);
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), 0); /* the same twice */
  CU_ASSERT_EQUAL(loaded, 2);
  /* the second copy with other rows (its checksum right): refused */
  char *r1 = dup + n, *nl = strchr(r1, '\n');
  char *digit = r1 + 8 + 17 + 24; /* inside the first metric's bits */
  *digit = *digit == '0' ? '1' : '0';
  char crc[9];
  snprintf(crc, sizeof crc, "%08lx", crc32(0L, (const Bytef *)r1, (uInt)(nl - 8 - r1)));
  memcpy(nl - 8, crc, 8);
  put_bytes(jpath, dup, n + rl);
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "a second, different record of the same point");
  unlink(jpath);
  free(dup);
  free(t);
  free(save);
}

/* Replace line `key ...` of the header and recompute the header's CRC
 * (as a user's tool or another version would write it). */
static void rewrite_header(const char *key, const char *value) {
  size_t n;
  char *t = read_file(jpath, &n), out[1 << 16];
  char *end = strstr(t, "\nend ") + 1, *rest = strchr(end, '\n') + 1;
  size_t k = 0;
  for (char *l = t; l < end;) {
    char *nl = strchr(l, '\n');
    if (!strncmp(l, key, strlen(key)) && l[strlen(key)] == ' ')
      k += (size_t)snprintf(out + k, sizeof out - k, "%s %s\n", key, value);
    else {
      memcpy(out + k, l, (size_t)(nl + 1 - l));
      k += (size_t)(nl + 1 - l);
    }
    l = nl + 1;
  }
  k += (size_t)snprintf(out + k, sizeof out - k, "end %08lx\n", crc32(0L, (const Bytef *)out, (uInt)k));
  memcpy(out + k, rest, strlen(rest));
  k += strlen(rest);
  put_bytes(jpath, out, k);
  free(t);
}

/* A journal of another program, sweep, text or input refused by name; a
 * record of another configuration refused. */
static void test_mismatch(void) {
  spr_sweep_free(make_journal());
  int loaded;
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.8", &loaded, NULL), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "written by sprintsim 9.8.7, this is sprintsim 9.8.8");
  CU_ASSERT_EQUAL(loaded, 0);
  /* another value on line 7 of the sweep */
  char text[1024];
  snprintf(text, sizeof text, "%s", SWEEP);
  char *v = strstr(text, "0.31");
  v[3] = '2';
  CU_ASSERT_EQUAL(resume(text, "9.8.7", &loaded, NULL), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "differs from the journal's at line 7: "
                                    "'threshold.keep_rate = 0.12, 0.31, 0.5' then, "
                                    "'threshold.keep_rate = 0.12, 0.32, 0.5' now");
  /* another sweep name */
  rewrite_header("sweep", "elsewhere.ini");
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "records the sweep 'elsewhere.ini'");
  /* a record whose configuration hash is not its point's (a file changed
   * under the same text): the CRC is right, the hash not */
  spr_sweep_free(make_journal());
  size_t n;
  char *t = read_file(jpath, &n);
  char *rec = strstr(t, "\npoint 2 ") + 1, *nl = strchr(rec, '\n');
  rec[8] = rec[8] == '0' ? '1' : '0';
  char crc[9];
  snprintf(crc, sizeof crc, "%08lx", crc32(0L, (const Bytef *)rec, (uInt)(nl - 8 - rec)));
  memcpy(nl - 8, crc, 8);
  put_bytes(jpath, t, n);
  free(t);
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "point 3 of 3 (threshold.keep_rate = 0.5) was computed with another configuration");
  CU_ASSERT_EQUAL(loaded, 0);
  /* an input file changed (or gone) since: the header's input lines as a
   * sweep whose points read a file writes them */
  write_file(other, "2.385 V");
  char input[1200];
  spr_sweep_free(make_journal());
  snprintf(input, sizeof input, "3\ninput 7 0000000000000000 workload.model %s", other);
  rewrite_header("points", input);
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "the sweep's input workload.model");
  SPR_ASSERT_CONTAINS(spr_errmsg(), "changed since the journal was written (7 bytes, fnv1a64 "
                                    "0000000000000000 then; 7 bytes, ");
  /* the right size and FNV-1a 64 of the content: accepted */
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char *c = "2.385 V"; *c; c++) h = (h ^ (unsigned char)*c) * 0x100000001b3ULL;
  spr_sweep_free(make_journal());
  snprintf(input, sizeof input, "3\ninput 7 %016" PRIx64 " workload.model %s", h, other);
  rewrite_header("points", input);
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), 0);
  CU_ASSERT_EQUAL(loaded, 2);
  spr_sweep_free(make_journal());
  rewrite_header("points", "3\ninput 1 0 run.device_model /nonexistent/x.h5");
  CU_ASSERT_EQUAL(resume(SWEEP, "9.8.7", &loaded, NULL), SPR_ECONFIG);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "the sweep's input run.device_model /nonexistent/x.h5 is gone");
  unlink(other);
}

/* One journal per sweep: a second create refused, a second opener refused
 * while the first holds it, a failed write cut back. */
static void test_lock_exists_full(void) {
  spr_sweep *sw = make_journal();
  spr_journal *j = NULL, *k = NULL;
  CU_ASSERT_EQUAL(spr_journal_create(jpath, sw, "9.8.7", &j), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "exists already (the journal of an unfinished sweep): resume it with --resume");
  int loaded;
  CU_ASSERT_EQUAL_FATAL(spr_journal_resume(jpath, sw, "9.8.7", &j, &loaded), 0);
  spr_sweep *b = load(SWEEP);
  CU_ASSERT_EQUAL(spr_journal_resume(jpath, b, "9.8.7", &k, &loaded), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "in use by another sweep");
  CU_ASSERT_PTR_NULL(k);
  CU_ASSERT_EQUAL(spr_sweep_point_done(b, 0), 0);
  /* a write past the file-size limit fails; the journal keeps whole records */
  struct stat st0, st1;
  CU_ASSERT_EQUAL_FATAL(stat(jpath, &st0), 0);
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = (rlim_t)st0.st_size + 100;
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &lim), 0);
  CU_ASSERT_EQUAL(spr_journal_append(j, sw, 1), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cannot record point 2");
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, prev);
  CU_ASSERT_EQUAL(stat(jpath, &st1), 0);
  CU_ASSERT_EQUAL(st1.st_size, st0.st_size);
  CU_ASSERT_EQUAL(spr_journal_append(j, sw, 1), 0); /* room again */
  CU_ASSERT_EQUAL(spr_journal_remove(j), 0);
  CU_ASSERT_NOT_EQUAL(access(jpath, F_OK), 0);
  spr_journal_close(NULL);
  /* a journal in a folder that does not exist */
  char bad[600];
  snprintf(bad, sizeof bad, "%s.nodir/x.journal", jpath);
  CU_ASSERT_EQUAL(spr_journal_create(bad, sw, "9.8.7", &j), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cannot create the journal");
  CU_ASSERT_EQUAL(spr_journal_resume(bad, sw, "9.8.7", &j, &loaded), SPR_EIO);
  SPR_ASSERT_CONTAINS(spr_errmsg(), "cannot open the journal");
  spr_sweep_free(sw);
  spr_sweep_free(b);
}

int main(void) {
  spr_test_path(ini, sizeof ini, "journal", ".ini");
  spr_test_path(jpath, sizeof jpath, "journal", ".journal");
  spr_test_path(other, sizeof other, "journal-input", ".h5");
  static const CU_TestInfo tests[] = {
      {"names", test_names},
      {"round trip", test_round_trip},
      {"record format (CRC-32, hex)", test_record_format},
      {"every damaged byte and cut detected", test_damage},
      {"mismatches refused by name", test_mismatch},
      {"lock, existing journal, full file", test_lock_exists_full},
      {NULL, NULL},
  };
  int rc = spr_test_run("journal", tests);
  unlink(ini);
  unlink(jpath);
  unlink(other);
  return rc;
}
