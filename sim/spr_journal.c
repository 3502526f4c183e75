/* spr_journal.c - the journal of a sweep's finished points (spr_journal.h,
 * docs/sweep.md). */
#define _DEFAULT_SOURCE /* flock */
#include "config.h"
#include "spr_journal.h"
#include "spr_error.h"
#include "spr_sweep_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC "sprintsim sweep journal 1"

struct spr_journal {
  char *path;
  int fd;
  off_t size; /* bytes of whole records: a failed append is cut back to it */
};

char *spr_journal_path(const char *h5path) { return spr__sweep_sibling(h5path, ".journal"); }

static uint32_t crc_of(const char *s, size_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  while (n > 0) { /* zlib takes uInt lengths */
    uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
    c = crc32(c, (const Bytef *)s, k);
    s += k;
    n -= k;
  }
  return (uint32_t)c;
}

/* --- a growing text ------------------------------------------------------ */

typedef struct {
  char *s;
  size_t len, cap;
  int bad; /* out of memory */
} text;

static void add(text *t, const char *s, size_t n) {
  if (t->bad) return;
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 1024;
    while (t->len + n + 1 > cap) cap *= 2;
    char *u = realloc(t->s, cap);
    if (!u) {
      t->bad = 1;
      return;
    }
    t->s = u;
    t->cap = cap;
  }
  memcpy(t->s + t->len, s, n);
  t->len += n;
  t->s[t->len] = '\0';
}

static void addf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(text *t, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  add(t, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* s with '\\' as "\\\\", a line break as "\\n" and other control bytes
 * as "\\xHH": one line. */
static void add_escaped(text *t, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '\\') add(t, "\\\\", 2);
    else if (c == '\n') add(t, "\\n", 2);
    else if (c < 0x20 || c == 0x7f) addf(t, "\\x%02x", c);
    else add(t, (const char *)&c, 1);
  }
}

/* Undo add_escaped in place; -1 for a bad escape. */
static int unescape(char *s) {
  char *w = s;
  for (char *r = s; *r; r++) {
    if (*r != '\\') {
      *w++ = *r;
      continue;
    }
    r++;
    if (*r == '\\') *w++ = '\\';
    else if (*r == 'n') *w++ = '\n';
    else if (*r == 'x' && r[1] && r[2]) {
      char h[3] = {r[1], r[2], 0}, *e;
      long v = strtol(h, &e, 16);
      if (*e || v < 1) return -1;
      *w++ = (char)v;
      r += 2;
    } else {
      return -1;
    }
  }
  *w = '\0';
  return 0;
}

/* --- the header ----------------------------------------------------------- */

/* The header's lines, the "end" line with its CRC included. */
static int header_text(const spr_sweep *sw, const char *version, text *t) {
  addf(t, "%s\n", MAGIC);
  add(t, "version ", 8);
  add_escaped(t, version);
  add(t, "\nsweep ", 7);
  add_escaped(t, sw->path);
  addf(t, "\nevaluator %s\nschemes ", sw->ev->name);
  for (int k = 0; k < sw->nschemes; k++)
    addf(t, "%s%s", k ? "," : "", spr_scheme_name(sw->scheme[k]));
  addf(t, "\npoints %d\n", sw->npoints);
  for (int i = 0; i < sw->ninputs; i++) {
    long long size;
    uint64_t h;
    int rc = spr_sweep_input_id(sw->input_path[i], &size, &h);
    if (rc) return rc;
    addf(t, "input %lld %016" PRIx64 " %s ", size, h, sw->input_key[i]);
    add_escaped(t, sw->input_path[i]);
    add(t, "\n", 1);
  }
  add(t, "source ", 7);
  add_escaped(t, sw->source);
  add(t, "\n", 1);
  if (t->bad) return spr_error(SPR_ENOMEM, "journal: out of memory");
  addf(t, "end %08" PRIx32 "\n", crc_of(t->s, t->len));
  return t->bad ? spr_error(SPR_ENOMEM, "journal: out of memory") : 0;
}

static int write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

/* fsync the folder of path (its new or removed name is durable). */
static void sync_folder(const char *path) {
  char *d = strdup(path);
  if (!d) return;
  int fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(d);
}

static int lock_or_fail(int fd, const char *path) {
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return 0;
  if (errno == EWOULDBLOCK)
    return spr_error(SPR_EIO, "%s: in use by another sweep into the same output (it holds the "
                     "journal's lock); wait for it to end or stop it", path);
  return 0; /* a file system without locks: go on unlocked */
}

static spr_journal *journal_new(const char *path, int fd, off_t size) {
  spr_journal *j = calloc(1, sizeof *j);
  if (!j || !(j->path = strdup(path))) {
    free(j);
    return NULL;
  }
  j->fd = fd;
  j->size = size;
  return j;
}

int spr_journal_create(const char *path, const spr_sweep *sw, const char *version,
                       spr_journal **out) {
  *out = NULL;
  struct stat st;
  if (lstat(path, &st) == 0)
    return spr_error(SPR_EIO, "%s: exists already (the journal of an unfinished sweep): resume it "
                     "with --resume, or delete it to start again", path);
  text t = {0};
  int rc = header_text(sw, version, &t);
  if (rc) {
    free(t.s);
    return rc;
  }
  size_t l = strlen(path);
  char *tmp = malloc(l + 12);
  if (!tmp) {
    free(t.s);
    return spr_error(SPR_ENOMEM, "%s: out of memory", path);
  }
  memcpy(tmp, path, l);
  memcpy(tmp + l, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    rc = spr_error(SPR_EIO, "%s: cannot create the journal: %s", path, strerror(errno));
  } else {
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    if (write_all(fd, t.s, t.len) || fsync(fd))
      rc = spr_error(SPR_EIO, "%s: cannot write the journal: %s", tmp, strerror(errno));
    else if (link(tmp, path) != 0 && /* not rename: never replace a journal made meanwhile */
             !((errno == EPERM || errno == ENOTSUP || errno == ENOSYS) && /* no hard links */
               lstat(path, &st) != 0 && rename(tmp, path) == 0))
      rc = spr_error(SPR_EIO, "%s: cannot create the journal: %s", path, strerror(errno));
    unlink(tmp);
  }
  free(tmp);
  if (!rc) {
    sync_folder(path);
    close(fd);
    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) rc = spr_error(SPR_EIO, "%s: cannot open the journal: %s", path, strerror(errno));
    else if ((rc = lock_or_fail(fd, path))) unlink(path); /* another sweep took it at once */
  }
  if (!rc && !(*out = journal_new(path, fd, (off_t)t.len)))
    rc = spr_error(SPR_ENOMEM, "%s: out of memory", path);
  if (rc && fd >= 0) close(fd);
  free(t.s);
  return rc;
}

/* --- resume ---------------------------------------------------------------- */

/* The line of text s at 0-based index k (without its line break) into buf. */
static void line_of(const char *s, int k, char *buf, size_t n) {
  for (int i = 0; i < k && s; i++) {
    s = strchr(s, '\n');
    if (s) s++;
  }
  if (!s) {
    snprintf(buf, n, "(no line: the text ends before it)");
    return;
  }
  size_t l = strcspn(s, "\n");
  if (l > 100) snprintf(buf, n, "'%.100s...'", s);
  else snprintf(buf, n, "'%.*s'", (int)l, s);
}

/* First differing line of two texts, 0-based; -1 when equal. */
static int first_diff_line(const char *a, const char *b) {
  int line = 0;
  for (;; a++, b++) {
    if (*a != *b) return line;
    if (!*a) return -1;
    if (*a == '\n') line++;
  }
}

static const char *TO_RESTART = "delete it to start the sweep again (or write to another -o)";

/* Check the header lines (hdr: the text before "end", n bytes) against sw. */
static int check_header(const char *path, char *hdr, const spr_sweep *sw, const char *version) {
  char *save = NULL, *sweep = NULL, *evaluator = NULL, *schemes = NULL, *source = NULL;
  char *ver = NULL;
  long points = -1;
  int line = 0, rc = 0;
  char want[256];
  for (char *l = strtok_r(hdr, "\n", &save); l && !rc; l = strtok_r(NULL, "\n", &save)) {
    line++;
    if (line == 1) continue; /* the magic, checked already */
    char *sp = strchr(l, ' ');
    if (!sp) return spr_error(SPR_EIO, "%s: line %d: not a journal header line", path, line);
    *sp = '\0';
    char *v = sp + 1;
    if (!strcmp(l, "version")) ver = v;
    else if (!strcmp(l, "sweep")) sweep = v;
    else if (!strcmp(l, "evaluator")) evaluator = v;
    else if (!strcmp(l, "schemes")) schemes = v;
    else if (!strcmp(l, "points")) points = strtol(v, NULL, 10);
    else if (!strcmp(l, "source")) source = v;
    else if (!strcmp(l, "input")) {
      long long size;
      uint64_t h;
      int at = 0;
      if (sscanf(v, "%lld %" SCNx64 " %n", &size, &h, &at) != 2 || !at)
        return spr_error(SPR_EIO, "%s: line %d: a bad input line", path, line);
      char *key = v + at, *ksp = strchr(key, ' ');
      if (!ksp) return spr_error(SPR_EIO, "%s: line %d: a bad input line", path, line);
      *ksp = '\0';
      char *file = ksp + 1;
      if (unescape(file)) return spr_error(SPR_EIO, "%s: line %d: a bad escape", path, line);
      long long now_size = -1;
      uint64_t now_h = 0;
      struct stat st;
      if (stat(file, &st) != 0)
        return spr_error(SPR_ECONFIG, "%s: the sweep's input %s %s is gone (the journal's points "
                         "were computed with it); restore it, or %s", path, key, file, TO_RESTART);
      if ((rc = spr_sweep_input_id(file, &now_size, &now_h))) return rc;
      if (now_size != size || now_h != h)
        return spr_error(SPR_ECONFIG, "%s: the sweep's input %s %s changed since the journal was "
                         "written (%lld bytes, fnv1a64 %016" PRIx64 " then; %lld bytes, %016"
                         PRIx64 " now): a resume would mix results of two inputs; restore it, or %s",
                         path, key, file, size, h, now_size, now_h, TO_RESTART);
    }
  }
  if (!ver || !sweep || !evaluator || !schemes || points < 0 || !source)
    return spr_error(SPR_EIO, "%s: the journal's header lacks a line (version, sweep, evaluator, "
                     "schemes, points, source): the journal is damaged; %s", path, TO_RESTART);
  if (unescape(ver) || unescape(sweep) || unescape(source))
    return spr_error(SPR_EIO, "%s: a bad escape in the header; %s", path, TO_RESTART);
  if (strcmp(ver, version) != 0)
    return spr_error(SPR_ECONFIG, "%s: written by sprintsim %s, this is sprintsim %s: a resume "
                     "would mix the results of two programs; finish the sweep with sprintsim %s, "
                     "or %s", path, ver, version, ver, TO_RESTART);
  if (strcmp(sweep, sw->path) != 0)
    return spr_error(SPR_ECONFIG, "%s: records the sweep '%s', not '%s': resume with the CONFIG "
                     "it was started with, or %s", path, sweep, sw->path, TO_RESTART);
  int d = first_diff_line(source, sw->source);
  if (d >= 0) {
    char was[160], now[160];
    line_of(source, d, was, sizeof was);
    line_of(sw->source, d, now, sizeof now);
    return spr_error(SPR_ECONFIG, "%s: the sweep %s differs from the journal's at line %d: "
                     "%s then, %s now (--set overrides are listed as comments at the end): a "
                     "resume would mix points of two configurations; resume with the sweep as it "
                     "was, or %s", path, sw->path, d + 1, was, now, TO_RESTART);
  }
  if (strcmp(evaluator, sw->ev->name) != 0)
    return spr_error(SPR_ECONFIG, "%s: evaluator '%s' then, '%s' now; %s", path, evaluator,
                     sw->ev->name, TO_RESTART);
  want[0] = '\0';
  for (int k = 0; k < sw->nschemes; k++) {
    size_t l = strlen(want);
    snprintf(want + l, sizeof want - l, "%s%s", k ? "," : "", spr_scheme_name(sw->scheme[k]));
  }
  if (strcmp(schemes, want) != 0)
    return spr_error(SPR_ECONFIG, "%s: schemes %s then, %s now; %s", path, schemes, want, TO_RESTART);
  if (points != sw->npoints)
    return spr_error(SPR_ECONFIG, "%s: %ld points then, %d now; %s", path, points, sw->npoints,
                     TO_RESTART);
  return 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* A damaged record: the message says what to keep. */
static int damaged(const char *path, int line, const char *what) {
  return spr_error(SPR_EIO, "%s: line %d: %s; the journal was changed or cut (a full disk, a "
                   "crash of the machine): keep its first %d lines (head -n %d %s > %s.ok && mv "
                   "%s.ok %s) and resume again, or %s", path, line, what, line - 1, line - 1,
                   path, path, path, path, TO_RESTART);
}

/* One record line (len bytes with its line break) into sw. */
static int read_record(const char *path, int line, char *l, size_t len, spr_sweep *sw,
                       unsigned char *rows, unsigned char *seen_rows, unsigned char *seen) {
  if (len == 0 || l[len - 1] != '\n')
    return damaged(path, line, "the last record is cut short (no line break)");
  l[--len] = '\0';
  /* "point <p> <hash> <hex> <crc>": the CRC covers everything before it */
  if (len < 10 || l[len - 9] != ' ')
    return damaged(path, line, "the record's checksum is missing");
  uint32_t crc = 0;
  for (size_t i = len - 8; i < len; i++) {
    int v = hexval((unsigned char)l[i]);
    if (v < 0) return damaged(path, line, "the record's checksum is not hexadecimal");
    crc = crc << 4 | (uint32_t)v;
  }
  if (crc_of(l, len - 8) != crc)
    return damaged(path, line, "the record's checksum does not match (a damaged record)");
  l[len - 9] = '\0';
  int p, at = 0;
  uint64_t h;
  if (sscanf(l, "point %d %16" SCNx64 " %n", &p, &h, &at) != 2 || !at || p < 0 || p >= sw->npoints)
    return damaged(path, line, "not a record of a point of this sweep");
  const char *hex = l + at;
  if (strlen(hex) != 2 * (size_t)SPR_SWEEP_POINT_BYTES)
    return damaged(path, line, "the record's rows have the wrong length");
  for (int i = 0; i < SPR_SWEEP_POINT_BYTES; i++) {
    int a = hexval((unsigned char)hex[2 * i]), b = hexval((unsigned char)hex[2 * i + 1]);
    if (a < 0 || b < 0) return damaged(path, line, "the record's rows are not hexadecimal");
    rows[i] = (unsigned char)(a << 4 | b);
  }
  if (h != sw->hash[p]) {
    char label[512];
    spr_sweep_point_label(sw, p, label, sizeof label);
    return spr_error(SPR_ECONFIG, "%s: line %d: point %d of %d (%s) was computed with another "
                     "configuration (hash %016" PRIx64 " then, %016" PRIx64 " now: a setting or a "
                     "file it reads changed): a resume would mix points of two configurations; %s",
                     path, line, p + 1, sw->npoints, label, h, sw->hash[p], TO_RESTART);
  }
  unsigned char *prev = seen_rows + (size_t)p * SPR_SWEEP_POINT_BYTES;
  if (seen[p]) { /* twice: harmless when equal */
    if (memcmp(prev, rows, SPR_SWEEP_POINT_BYTES) != 0)
      return damaged(path, line, "a second, different record of the same point");
    return 0;
  }
  int rc = spr_sweep_point_unpack(sw, p, rows, SPR_SWEEP_POINT_BYTES);
  if (rc) return damaged(path, line, spr_errmsg());
  memcpy(prev, rows, SPR_SWEEP_POINT_BYTES);
  seen[p] = 1;
  return 0;
}

int spr_journal_resume(const char *path, spr_sweep *sw, const char *version, spr_journal **out,
                       int *loaded) {
  *out = NULL;
  *loaded = 0;
  int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd < 0) return spr_error(SPR_EIO, "%s: cannot open the journal: %s", path, strerror(errno));
  int rc = lock_or_fail(fd, path);
  if (rc) {
    close(fd);
    return rc;
  }
  int fd2 = dup(fd); /* fclose closes this one; the lock stays with fd */
  FILE *f = fd2 >= 0 ? fdopen(fd2, "r") : NULL;
  if (!f) {
    if (fd2 >= 0) close(fd2);
    close(fd);
    return spr_error(SPR_EIO, "%s: cannot read the journal: %s", path, strerror(errno));
  }
  text hdr = {0};
  char *l = NULL;
  size_t cap = 0;
  ssize_t len;
  int line = 0, in_header = 1;
  unsigned char *rows = malloc(SPR_SWEEP_POINT_BYTES);
  unsigned char *seen_rows = malloc((size_t)sw->npoints * SPR_SWEEP_POINT_BYTES);
  unsigned char *seen = calloc((size_t)sw->npoints, 1);
  if (!rows || !seen_rows || !seen) rc = spr_error(SPR_ENOMEM, "%s: out of memory", path);
  off_t whole = 0;
  while (!rc && (len = getline(&l, &cap, f)) > 0) {
    line++;
    if (line == 1 && strcmp(l, MAGIC "\n") != 0) {
      rc = spr_error(SPR_EIO, "%s: not a sprintsim sweep journal (its first line is not '%s'); "
                     "move or delete it", path, MAGIC);
      break;
    }
    if (in_header) {
      if (strncmp(l, "end ", 4) != 0) {
        add(&hdr, l, (size_t)len);
        if (hdr.bad) rc = spr_error(SPR_ENOMEM, "%s: out of memory", path);
        continue;
      }
      char *e;
      unsigned long crc = strtoul(l + 4, &e, 16);
      if (e != l + 12 || *e != '\n' || hdr.bad || crc != crc_of(hdr.s, hdr.len)) {
        rc = spr_error(SPR_EIO, "%s: line %d: the journal's header is damaged (its checksum "
                       "does not match); %s", path, line, TO_RESTART);
        break;
      }
      in_header = 0;
      rc = check_header(path, hdr.s, sw, version);
      whole += (off_t)len + (off_t)hdr.len;
      continue;
    }
    rc = read_record(path, line, l, (size_t)len, sw, rows, seen_rows, seen);
    if (!rc) whole += (off_t)len;
  }
  for (int p = 0; !rc && p < sw->npoints; p++) *loaded += seen[p];
  if (!rc && ferror(f)) rc = spr_error(SPR_EIO, "%s: cannot read the journal: %s", path, strerror(errno));
  if (!rc && in_header)
    rc = spr_error(SPR_EIO, "%s: the journal's header is cut short (no 'end' line); %s", path,
                   TO_RESTART);
  free(l);
  free(hdr.s);
  free(rows);
  free(seen_rows);
  fclose(f);
  if (!rc && !(*out = journal_new(path, fd, whole))) rc = spr_error(SPR_ENOMEM, "%s: out of memory", path);
  if (rc) {
    close(fd);
    for (int p = 0; p < sw->npoints; p++)
      if (seen && seen[p]) sw->done[p] = 0; /* none of the journal's points */
    *loaded = 0;
  }
  free(seen);
  return rc;
}

int spr_journal_append(spr_journal *j, const spr_sweep *sw, int p) {
  unsigned char rows[SPR_SWEEP_POINT_BYTES];
  int rc = spr_sweep_point_pack(sw, p, rows);
  if (rc) return rc;
  enum { MAX = 64 + 2 * SPR_SWEEP_POINT_BYTES };
  char line[MAX];
  int n = snprintf(line, sizeof line, "point %d %016" PRIx64 " ", p, sw->hash[p]);
  static const char hx[] = "0123456789abcdef";
  for (int i = 0; i < SPR_SWEEP_POINT_BYTES; i++) {
    line[n++] = hx[rows[i] >> 4];
    line[n++] = hx[rows[i] & 15];
  }
  line[n++] = ' ';
  n += snprintf(line + n, sizeof line - (size_t)n, "%08" PRIx32 "\n", crc_of(line, (size_t)n));
  if (write_all(j->fd, line, (size_t)n) || fsync(j->fd)) {
    int e = errno;
    if (ftruncate(j->fd, j->size) == 0) fsync(j->fd); /* no half record stays */
    return spr_error(SPR_EIO, "%s: cannot record point %d: %s", j->path, p + 1, strerror(e));
  }
  j->size += n;
  return 0;
}

void spr_journal_close(spr_journal *j) {
  if (!j) return;
  close(j->fd); /* releases the lock */
  free(j->path);
  free(j);
}

int spr_journal_remove(spr_journal *j) {
  int rc = 0;
  if (unlink(j->path) != 0)
    rc = spr_error(SPR_EIO, "%s: cannot delete the finished sweep's journal: %s", j->path,
                   strerror(errno));
  else
    sync_folder(j->path);
  spr_journal_close(j);
  return rc;
}
