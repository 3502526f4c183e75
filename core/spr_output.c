/* spr_output.c - output files that are complete or absent (spr_output.h). */
#define _GNU_SOURCE /* memfd_create, copy_file_range */
#include "config.h"
#include "spr_output.h"
#include "spr_error.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
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
      rc = spr_error(SPR_EIO, "%s: cannot flush its folder %s: %s", path, dir, strerror(errno));
    close(fd);
  }
  free(copy);
  return rc;
}

int spr__out_commit(const char *tmp, const char *path, int keep) {
  int fd = open(tmp, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int rc = spr_error(SPR_EIO, "%s: cannot reopen to flush it: %s", tmp, strerror(errno));
    unlink(tmp);
    return rc;
  }
  if (fsync(fd) != 0 && errno != EINVAL) {
    int rc = spr_error(SPR_EIO, "%s: cannot flush to the disk: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    return rc;
  }
  close(fd);
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

int spr__out_fclose(FILE *f, const char *tmp, int rc) {
  int e = 0;
  if (fflush(f) != 0 || ferror(f)) e = errno ? errno : EIO;
  if (!e && fsync(fileno(f)) != 0 && errno != EINVAL) e = errno;
  if (fclose(f) != 0 && !e) e = errno ? errno : EIO;
  if (e && !rc) rc = spr_error(SPR_EIO, "%s: write failed: %s", tmp, strerror(e));
  return rc;
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

/* Point the file's descriptor at an anonymous memory file holding a copy
 * of what was written (when small: libhdf5 may read metadata back while
 * it closes), so the close's writes cannot fail.  A file-size limit
 * (RLIMIT_FSIZE) applies to memory files too: its soft limit is lifted to
 * the hard one for the close, and restored by restore_fsize(). */
static int divert(hid_t f, struct rlimit *saved) {
  saved->rlim_cur = saved->rlim_max = RLIM_INFINITY;
  int *fdp = NULL;
  if (H5Fget_vfd_handle(f, H5P_DEFAULT, (void **)&fdp) < 0 || !fdp || *fdp < 0) return -1;
  int mfd = memfd_create("sprintsim-discard", MFD_CLOEXEC);
  if (mfd < 0) return -1;
  struct rlimit rl;
  if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != rl.rlim_max) {
    *saved = rl;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_FSIZE, &rl);
  }
  struct stat st;
  if (fstat(*fdp, &st) == 0 && st.st_size > 0 && st.st_size <= ((off_t)64 << 20)) {
    off_t in = 0, left = st.st_size;
    while (left > 0) {
      ssize_t c = copy_file_range(*fdp, &in, mfd, NULL, (size_t)left, 0);
      if (c <= 0) break;
      left -= c;
    }
  }
  int rc = dup2(mfd, *fdp) < 0 ? -1 : 0;
  close(mfd);
  return rc;
}

static void restore_fsize(const struct rlimit *saved) {
  if (saved->rlim_cur != RLIM_INFINITY || saved->rlim_max != RLIM_INFINITY) setrlimit(RLIMIT_FSIZE, saved);
}

int spr__h5_close_output(hid_t f, const char *tmp, int rc) {
  if (f < 0) return rc;
  hsize_t size = 0;
  if (!rc) {
    ssize_t open_objs = H5Fget_obj_count(f, H5F_OBJ_ALL | H5F_OBJ_LOCAL);
    if (open_objs != 1)
      rc = spr_error(SPR_EINTERNAL, "%s: %zd objects still open at close (a bug of the writer)", tmp,
                     open_objs - 1);
  }
  if (!rc && H5Fflush(f, H5F_SCOPE_LOCAL) < 0) rc = h5_error(tmp, "cannot flush the file to the disk");
  if (!rc && H5Fget_filesize(f, &size) < 0) rc = h5_error(tmp, "cannot get the file's size");
  if (!rc) {
    int *fdp = NULL;
    if (H5Fget_vfd_handle(f, H5P_DEFAULT, (void **)&fdp) >= 0 && fdp && *fdp >= 0 && fsync(*fdp) != 0 &&
        errno != EINVAL)
      rc = spr_error(SPR_EIO, "%s: cannot flush to the disk: %s", tmp, strerror(errno));
  }
  struct rlimit saved = {RLIM_INFINITY, RLIM_INFINITY};
  const int diverted = rc != 0 && divert(f, &saved) == 0;
  if (H5Fclose(f) < 0 && !rc) rc = h5_error(tmp, "cannot close the file");
  if (diverted) restore_fsize(&saved);
  if (!rc) {
    struct stat st;
    if (stat(tmp, &st) != 0)
      rc = spr_error(SPR_EIO, "%s: missing after close: %s", tmp, strerror(errno));
    else if ((hsize_t)st.st_size != size)
      rc = spr_error(SPR_EIO, "%s: %lld bytes after close, %llu written", tmp, (long long)st.st_size,
                     (unsigned long long)size);
  }
  return rc;
}
