/* spr_output.c - output files that are complete or absent (spr_output.h). */
#define _GNU_SOURCE /* O_CLOEXEC with C11 */
#include "config.h"
#include "spr_output.h"
#include "spr_error.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int spr__out_begin(const char *path, char **tmp) {
  *tmp = NULL;
  if (!path || !*path) return spr_error(SPR_EINVAL, "output: no file name given");
  size_t pl = strlen(path);
  struct stat st;
  if (path[pl - 1] == '/' || (stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
    return spr_error(SPR_EIO, "%s: is a directory, not a file name", path);
  char *t = malloc(pl + 12);
  if (!t) return spr_error(SPR_ENOMEM, "%s: out of memory", path);
  memcpy(t, path, pl);
  memcpy(t + pl, ".tmp.XXXXXX", 12);
  int fd = mkstemp(t);
  if (fd < 0) {
    int rc = spr_error(SPR_EIO, "%s: cannot create: %s", t, strerror(errno));
    free(t);
    return rc;
  }
  mode_t mask = umask(0);
  umask(mask);
  if (fchmod(fd, 0666 & ~mask) != 0 || close(fd) != 0) {
    int rc = spr_error(SPR_EIO, "%s: cannot create: %s", t, strerror(errno));
    unlink(t);
    free(t);
    return rc;
  }
  *tmp = t;
  return 0;
}

/* fsync the folder holding `path`, so a rename survives a power cut;
 * filesystems that cannot (EINVAL) are no error. */
static int sync_dir(const char *path) {
  char *copy = strdup(path);
  if (!copy) return spr_error(SPR_ENOMEM, "%s: out of memory", path);
  const char *dir = dirname(copy);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rc = 0;
  if (fd >= 0) {
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
      rc = spr_error(SPR_EIO, "%s: written, but its folder %s cannot be flushed to the disk: %s", path,
                     dir, strerror(errno));
    close(fd);
  }
  free(copy);
  return rc;
}

int spr__out_commit(const char *tmp, const char *path, int keep) {
  if (rename(tmp, path) != 0) {
    int rc = spr_error(SPR_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (!keep) unlink(tmp);
    return rc;
  }
  return sync_dir(path);
}

void spr__out_discard(const char *tmp) {
  if (tmp) unlink(tmp);
}

/* --- HDF5 ---------------------------------------------------------------- */

/* libhdf5's innermost description of the last failure. */
static herr_t cause_cb(unsigned n, const H5E_error2_t *e, void *data) {
  char *out = data;
  if (n != 0 || !e || !e->desc) return 0;
  const char *d = e->desc, *em = strstr(d, "error message = '"), *colon = strchr(d, ':');
  if (em && colon && colon < em) { /* "file write failed: time = ..., error message = 'No space...'" */
    em += strlen("error message = '");
    const char *q = strchr(em, '\'');
    snprintf(out, 200, "%.*s: %.*s", (int)(colon - d), d, q ? (int)(q - em) : (int)strlen(em), em);
  } else {
    snprintf(out, 200, "%s", d);
  }
  for (char *p = out; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
  return 0;
}

int spr__h5_fail(const char *tmp, const char *fmt, ...) {
  char what[700], cause[200] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, cause_cb, cause);
  if (cause[0]) return spr_error(SPR_EHDF5, "%s: %s (HDF5: %s)", tmp, what, cause);
  return spr_error(SPR_EHDF5, "%s: %s", tmp, what);
}

static int h5_error(const char *tmp, const char *what) { return spr__h5_fail(tmp, "%s", what); }

/* --- the output driver -----------------------------------------------------
 *
 * libhdf5 1.10.8 cannot recover from a failed write of its metadata: a
 * flush or close that fails leaves the file half-closed, every later
 * close of it fails, and the library crashes on it in its exit handler
 * (F5).  So output files are written through this small POSIX driver
 * (pread/pwrite like libhdf5's sec2), which never reports a write error
 * to libhdf5: the first failure (ENOSPC, EDQUOT, EFBIG, EIO) is kept,
 * later writes are dropped, and the writer finds it through
 * spr__h5_out_status() and at the close, where it becomes an error and
 * the temporary file is deleted.  libhdf5 always closes cleanly.  The
 * test-only fault hook (spr__out_fault) makes writes fail with ENOSPC
 * once a byte budget is spent, as on a disk with that much free space. */

typedef struct {
  H5FD_t pub;     /* first: libhdf5's part */
  int fd;
  haddr_t eoa, eof;
  dev_t dev;
  ino_t ino;
  int err;        /* errno of the first failed write or truncate, 0 if none */
  haddr_t err_addr;
} out_file;

static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static long long fault_left = -1; /* bytes still allowed; -1: no fault */

long long spr__out_fault(long long budget) {
  pthread_mutex_lock(&fault_mu);
  long long was = fault_left;
  fault_left = budget < 0 ? -1 : budget;
  pthread_mutex_unlock(&fault_mu);
  return was;
}

/* Take n bytes from the fault budget: the bytes that may be written (n,
 * or fewer when the budget runs out). */
static size_t fault_take(size_t n) {
  pthread_mutex_lock(&fault_mu);
  size_t ok = n;
  if (fault_left >= 0) {
    if ((long long)n > fault_left) ok = (size_t)fault_left;
    fault_left -= (long long)ok;
  }
  pthread_mutex_unlock(&fault_mu);
  return ok;
}

/* Write all of buf at off (or, without off, at the current position):
 * 0, or the errno of the failure. */
static int write_all(int fd, const void *buf, size_t n, off_t off, int positioned) {
  const char *p = buf;
  while (n) {
    size_t allowed = fault_take(n);
    if (allowed == 0) return ENOSPC;
    ssize_t w = positioned ? pwrite(fd, p, allowed, off) : write(fd, p, allowed);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    if (w == 0) return EIO;
    p += w;
    n -= (size_t)w;
    off += w;
    if ((size_t)w < allowed) { /* give back what was not used */
      pthread_mutex_lock(&fault_mu);
      if (fault_left >= 0) fault_left += (long long)(allowed - (size_t)w);
      pthread_mutex_unlock(&fault_mu);
    }
  }
  return 0;
}

int spr__out_write_file(const char *tmp, const void *buf, size_t n) {
  int fd = open(tmp, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return spr_error(SPR_EIO, "%s: cannot open for writing: %s", tmp, strerror(errno));
  int e = write_all(fd, buf, n, 0, 0);
  if (!e && fsync(fd) != 0 && errno != EINVAL && errno != EROFS) e = errno;
  if (close(fd) != 0 && !e) e = errno;
  if (e) return spr_error(SPR_EIO, "%s: write failed: %s", tmp, strerror(e));
  return 0;
}

#define OUT_MAXADDR (((haddr_t)1 << (8 * sizeof(off_t) - 1)) - 1)

static H5FD_t *out_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
  if (!name || !*name || maxaddr == 0 || maxaddr == HADDR_UNDEF || maxaddr > OUT_MAXADDR) return NULL;
  int o = O_CLOEXEC | ((flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY);
  if (flags & H5F_ACC_TRUNC) o |= O_TRUNC;
  if (flags & H5F_ACC_CREAT) o |= O_CREAT;
  if (flags & H5F_ACC_EXCL) o |= O_EXCL;
  int fd = open(name, o, 0666);
  if (fd < 0) return NULL;
  struct stat st;
  out_file *f = calloc(1, sizeof *f);
  if (!f || fstat(fd, &st) != 0) {
    free(f);
    close(fd);
    return NULL;
  }
  f->fd = fd;
  f->eof = (haddr_t)st.st_size;
  f->dev = st.st_dev;
  f->ino = st.st_ino;
  return &f->pub;
}

/* What the close of a file found, for spr__h5_close_output (the driver's
 * record is freed by libhdf5's close). */
typedef struct {
  int closed, err;
  haddr_t addr;
} close_report;
static _Thread_local close_report *report_slot;

/* The close: the data to the disk (fsync), then the record reported. */
static herr_t out_close(H5FD_t *file) {
  out_file *f = (out_file *)file;
  if (!f->err && fsync(f->fd) != 0 && errno != EINVAL && errno != EROFS) {
    f->err = errno;
    f->err_addr = HADDR_UNDEF;
  }
  if (close(f->fd) != 0 && !f->err) {
    f->err = errno;
    f->err_addr = HADDR_UNDEF;
  }
  if (report_slot) {
    report_slot->closed = 1;
    report_slot->err = f->err;
    report_slot->addr = f->err_addr;
  }
  free(f);
  return 0;
}

static int out_cmp(const H5FD_t *a, const H5FD_t *b) {
  const out_file *x = (const out_file *)a, *y = (const out_file *)b;
  if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
  if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
  return 0;
}

static herr_t out_query(const H5FD_t *f, unsigned long *flags) {
  if (flags)
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA;
  return 0;
}

static haddr_t out_get_eoa(const H5FD_t *file, H5FD_mem_t type) { return ((const out_file *)file)->eoa; }

static herr_t out_set_eoa(H5FD_t *file, H5FD_mem_t type, haddr_t addr) {
  ((out_file *)file)->eoa = addr;
  return 0;
}

static haddr_t out_get_eof(const H5FD_t *file, H5FD_mem_t type) { return ((const out_file *)file)->eof; }

/* The handle is the driver's own record (spr__h5_out_status reads it). */
static herr_t out_get_handle(H5FD_t *file, hid_t fapl, void **handle) {
  *handle = file;
  return 0;
}

static herr_t out_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf) {
  out_file *f = (out_file *)file;
  if (addr == HADDR_UNDEF || addr > OUT_MAXADDR || size > OUT_MAXADDR - addr) return -1;
  char *p = buf;
  while (size) {
    ssize_t r = pread(f->fd, p, size, (off_t)addr);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) { /* past the end: zeros, as libhdf5's drivers do */
      memset(p, 0, size);
      break;
    }
    p += r;
    size -= (size_t)r;
    addr += (haddr_t)r;
  }
  return 0;
}

static herr_t out_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size,
                        const void *buf) {
  out_file *f = (out_file *)file;
  if (addr == HADDR_UNDEF || addr > OUT_MAXADDR || size > OUT_MAXADDR - addr) return -1;
  if (f->err) return 0; /* the file is lost already */
  int e = write_all(f->fd, buf, size, (off_t)addr, 1);
  if (e) {
    f->err = e;
    f->err_addr = addr;
    return 0;
  }
  if (addr + size > f->eof) f->eof = addr + size;
  return 0;
}

static herr_t out_truncate(H5FD_t *file, hid_t dxpl, hbool_t closing) {
  out_file *f = (out_file *)file;
  if (f->err || f->eoa == f->eof) return 0;
  if (f->eoa > f->eof) { /* growing: reserve through the fault budget too */
    if (fault_take(1) == 0) {
      f->err = ENOSPC;
      f->err_addr = f->eof;
      return 0;
    }
  }
  if (ftruncate(f->fd, (off_t)f->eoa) != 0) {
    f->err = errno;
    f->err_addr = f->eoa;
    return 0;
  }
  f->eof = f->eoa;
  return 0;
}

static const H5FD_class_t out_class = {
  "sprintsim_output", OUT_MAXADDR, H5F_CLOSE_WEAK,
  NULL, NULL, NULL, NULL,          /* terminate, sb_size, sb_encode, sb_decode */
  0, NULL, NULL, NULL,             /* fapl */
  0, NULL, NULL,                   /* dxpl */
  out_open, out_close, out_cmp, out_query,
  NULL, NULL, NULL,                /* get_type_map, alloc, free */
  out_get_eoa, out_set_eoa, out_get_eof, out_get_handle,
  out_read, out_write,
  NULL, out_truncate,              /* flush, truncate */
  NULL, NULL,                      /* lock, unlock */
  H5FD_FLMAP_DICHOTOMY
};

static pthread_once_t out_once = PTHREAD_ONCE_INIT;
static hid_t out_driver = -1;

static void out_register(void) { out_driver = H5FDregister(&out_class); }

int spr__h5_out_fapl(hid_t fapl, const char *tmp) {
  pthread_once(&out_once, out_register);
  if (out_driver < 0 || H5Pset_driver(fapl, out_driver, NULL) < 0)
    return spr__h5_fail(tmp, "cannot set up the output driver");
  return 0;
}

static out_file *out_of(hid_t f) {
  void *h = NULL;
  if (H5Fget_vfd_handle(f, H5P_DEFAULT, &h) < 0 || !h) return NULL;
  return h;
}

static int lost(const char *tmp, int err, haddr_t addr) {
  if (addr == HADDR_UNDEF) return spr_error(SPR_EIO, "%s: cannot flush to the disk: %s", tmp, strerror(err));
  return spr_error(SPR_EIO, "%s: write failed at byte %llu: %s", tmp, (unsigned long long)addr, strerror(err));
}

int spr__h5_out_status(hid_t f, const char *tmp) {
  out_file *o = out_of(f);
  if (!o) return spr__h5_fail(tmp, "not written through the output driver (a bug)");
  return o->err ? lost(tmp, o->err, o->err_addr) : 0;
}

int spr__h5_close_output(hid_t f, const char *tmp, int rc) {
  if (f < 0) return rc;
  if (!rc) {
    ssize_t open_objs = H5Fget_obj_count(f, H5F_OBJ_ALL | H5F_OBJ_LOCAL);
    if (open_objs != 1)
      rc = spr_error(SPR_EINTERNAL, "%s: %zd objects still open at close (a bug of the writer)", tmp,
                     open_objs - 1);
  }
  if (!rc) rc = spr__h5_out_status(f, tmp);
  close_report rep = {0, 0, 0};
  report_slot = &rep;
  const herr_t e = H5Fclose(f);
  report_slot = NULL;
  if (e < 0 && !rc) rc = h5_error(tmp, "cannot close the file");
  if (!rc && !rep.closed) rc = spr_error(SPR_EINTERNAL, "%s: still open after its close (a bug of the writer)", tmp);
  if (!rc && rep.err) rc = lost(tmp, rep.err, rep.addr);
  return rc;
}
