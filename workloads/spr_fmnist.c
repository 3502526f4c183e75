/* spr_fmnist.c - IDX reader (format in spr_fmnist.h). */
#include "config.h"
#include "spr_fmnist.h"
#include "spr_error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAX_BYTES ((size_t)1 << 31)

/* Read exactly n bytes; returns the count read (< n at end of file) or -1
 * on a read or decompression error. */
static long long read_full(gzFile f, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
    int r = gzread(f, (char *)buf + got, (unsigned)want);
    if (r < 0) return -1;
    if (r == 0) break;
    got += (size_t)r;
  }
  return (long long)got;
}

static int gz_fail(const char *path, gzFile f, const char *what) {
  int zerr = 0;
  const char *msg = gzerror(f, &zerr);
  return spr_error(SPR_EIO, "%s: %s: %s", path, what,
                   zerr == Z_ERRNO ? strerror(errno) : (msg && *msg ? msg : "read error"));
}

/* SPR_EIO when the file of descriptor fd differs in size or modification
 * time from *st0 (it changed while it was read). */
static int check_unchanged(const char *path, int fd, const struct stat *st0) {
  struct stat st;
  if (fstat(fd, &st) != 0) return spr_error(SPR_EIO, "%s: cannot check the file: %s", path, strerror(errno));
  if (st.st_size != st0->st_size || st.st_mtim.tv_sec != st0->st_mtim.tv_sec ||
      st.st_mtim.tv_nsec != st0->st_mtim.tv_nsec)
    return spr_error(SPR_EIO, "%s: the file changed while it was being read (size %lld bytes at "
                     "open, now %lld); its data cannot be trusted", path,
                     (long long)st0->st_size, (long long)st.st_size);
  return 0;
}

/* "fnv1a64:<16 hex>" of the bytes of fd (the same FNV-1a 64 as
 * spr_h5r_content_id); the file must still hold st0->st_size bytes. */
static int content_id(const char *path, int fd, const struct stat *st0, char *id, size_t n) {
  uint64_t x = UINT64_C(14695981039346656037);
  unsigned char buf[1 << 14];
  off_t off = 0;
  for (;;) {
    ssize_t r = pread(fd, buf, sizeof buf, off);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return spr_error(SPR_EIO, "%s: read error: %s", path, strerror(errno));
    if (r == 0) break;
    for (ssize_t i = 0; i < r; i++) {
      x ^= buf[i];
      x *= UINT64_C(1099511628211);
    }
    off += r;
  }
  if (off != st0->st_size)
    return spr_error(SPR_EIO, "%s: read %lld bytes of %lld", path, (long long)off,
                     (long long)st0->st_size);
  snprintf(id, n, "fnv1a64:%016llx", (unsigned long long)x);
  return 0;
}

int spr_fmnist_read_idx(const char *path, int ndim, int *dims, uint8_t **data) {
  char id[32];
  long long bytes;
  return spr_fmnist_read_idx_id(path, ndim, dims, data, id, sizeof id, &bytes);
}

int spr_fmnist_read_idx_id(const char *path, int ndim, int *dims, uint8_t **data, char *id,
                           size_t idn, long long *bytes) {
  *data = NULL;
  if (id && idn) id[0] = '\0';
  if (ndim < 1 || ndim > 4)
    return spr_error(SPR_EINVAL, "%s: IDX dimension count %d requested (1..4)", path, ndim);
  /* one descriptor for the data, the checks and the checksum: the file
   * read is the file checked (O_NONBLOCK: a FIFO never blocks the open) */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return spr_error(SPR_EIO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st0 = {0};
  if (fstat(fd, &st0) != 0 || !S_ISREG(st0.st_mode)) {
    const int rc = spr_error(SPR_EIO, "%s: cannot open: %s", path,
                             S_ISDIR(st0.st_mode) ? "it is a folder" : "not a regular file");
    close(fd);
    return rc;
  }
  const int dfd = dup(fd);
  errno = 0;
  gzFile f = dfd < 0 ? NULL : gzdopen(dfd, "rb");
  if (!f) {
    const int rc = spr_error(SPR_EIO, "%s: cannot open: %s", path,
                             errno ? strerror(errno) : "out of memory");
    if (dfd >= 0) close(dfd);
    close(fd);
    return rc;
  }
  int rc = 0;
  unsigned char hdr[4 + 4 * 4];
  long long got = read_full(f, hdr, 4);
  if (got < 0) {
    rc = gz_fail(path, f, "cannot read the IDX header");
    goto done;
  }
  if (got < 4) {
    rc = spr_error(SPR_EINVAL, "%s: truncated IDX header: %lld of 4 magic bytes", path, got);
    goto done;
  }
  const unsigned magic = (unsigned)hdr[0] << 24 | (unsigned)hdr[1] << 16 | (unsigned)hdr[2] << 8 | hdr[3];
  if (hdr[0] || hdr[1]) {
    rc = spr_error(SPR_EINVAL, "%s: bad IDX magic 0x%08x (expected 0x000008%02x): not an IDX file",
                   path, magic, ndim);
    goto done;
  }
  if (hdr[2] != 0x08) {
    rc = spr_error(SPR_EINVAL, "%s: IDX data type 0x%02x is not unsigned byte (0x08)", path, hdr[2]);
    goto done;
  }
  if (hdr[3] != ndim) {
    rc = spr_error(SPR_EINVAL, "%s: IDX file has %d dimensions, expected %d", path, hdr[3], ndim);
    goto done;
  }
  got = read_full(f, hdr + 4, 4 * (size_t)ndim);
  if (got < 0) {
    rc = gz_fail(path, f, "cannot read the IDX header");
    goto done;
  }
  if (got < 4 * ndim) {
    rc = spr_error(SPR_EINVAL, "%s: truncated IDX header: %lld of %d size bytes", path, got,
                   4 * ndim);
    goto done;
  }
  size_t total = 1;
  for (int k = 0; k < ndim; k++) {
    const unsigned char *p = hdr + 4 + 4 * k;
    const uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (v == 0 || v > 0x7fffffffu) {
      rc = spr_error(SPR_EINVAL, "%s: IDX size %d is %u (must be 1 .. 2^31-1)", path, k, v);
      goto done;
    }
    if (total > IDX_MAX_BYTES / v) {
      rc = spr_error(SPR_EINVAL, "%s: IDX data larger than 2^31 bytes (size %d = %u)", path, k, v);
      goto done;
    }
    total *= v;
    dims[k] = (int)v;
  }
  uint8_t *buf = malloc(total);
  if (!buf) {
    rc = spr_error(SPR_ENOMEM, "%s: out of memory for %zu bytes", path, total);
    goto done;
  }
  got = read_full(f, buf, total);
  unsigned char extra;
  long long more = got == (long long)total ? read_full(f, &extra, 1) : 0;
  if (got < 0 || more < 0) rc = gz_fail(path, f, "cannot read the IDX data");
  else if ((size_t)got < total)
    rc = spr_error(SPR_EINVAL, "%s: truncated IDX data: %lld of %zu bytes", path, got, total);
  else if (more > 0)
    rc = spr_error(SPR_EINVAL, "%s: bytes after the %zu bytes of IDX data", path, total);
  if (!rc) rc = check_unchanged(path, fd, &st0);
  if (!rc && id) rc = content_id(path, fd, &st0, id, idn);
  if (!rc) rc = check_unchanged(path, fd, &st0);
  if (rc) free(buf);
  else {
    *data = buf;
    if (bytes) *bytes = (long long)st0.st_size;
  }
done:
  gzclose(f);
  close(fd);
  return rc;
}

void spr_fmnist_free(spr_fmnist *f) {
  if (!f) return;
  free(f->pixels);
  free(f->labels);
  memset(f, 0, sizeof *f);
}

int spr_fmnist_load(const char *dir, const char *split, spr_fmnist *out) {
  memset(out, 0, sizeof *out);
  if (!split || (strcmp(split, "t10k") && strcmp(split, "train")))
    return spr_error(SPR_EINVAL, "fashion-mnist: split '%s' is neither t10k nor train",
                     split ? split : "(null)");
  char *ip = out->images_path, *lp = out->labels_path;
  snprintf(ip, sizeof out->images_path, "%s/%s-images-idx3-ubyte.gz", dir, split);
  snprintf(lp, sizeof out->labels_path, "%s/%s-labels-idx1-ubyte.gz", dir, split);
  int idims[3], ldims[1], rc;
  if ((rc = spr_fmnist_read_idx_id(ip, 3, idims, &out->pixels, out->images_id,
                                   sizeof out->images_id, &out->images_bytes))) {
    spr_fmnist_free(out);
    return rc;
  }
  if ((rc = spr_fmnist_read_idx_id(lp, 1, ldims, &out->labels, out->labels_id,
                                   sizeof out->labels_id, &out->labels_bytes))) {
    spr_fmnist_free(out);
    return rc;
  }
  if (ldims[0] != idims[0]) {
    rc = spr_error(SPR_EINVAL, "%s has %d labels but %s has %d images", lp, ldims[0], ip,
                   idims[0]);
    spr_fmnist_free(out);
    return rc;
  }
  for (int i = 0; i < ldims[0]; i++)
    if (out->labels[i] > 9) {
      rc = spr_error(SPR_EINVAL, "%s: label %d is %d (classes are 0..9)", lp, i, out->labels[i]);
      spr_fmnist_free(out);
      return rc;
    }
  out->count = idims[0];
  out->rows = idims[1];
  out->cols = idims[2];
  return 0;
}
