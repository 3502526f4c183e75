/* spr_fmnist.h - Fashion-MNIST (and MNIST) images and labels from IDX
 * files, gzip-compressed or plain (Debian: dataset-fashion-mnist, in
 * /usr/share/datasets/fashion-mnist).
 *
 * IDX (LeCun's format): a big-endian header, magic = 0x00 0x00 type ndim
 * (type 0x08: unsigned bytes), then ndim big-endian uint32 sizes, then
 * the product of the sizes bytes, row-major.  Images are 3-D (count x rows
 * x cols), labels 1-D (count).
 */
#ifndef SPR_FMNIST_H
#define SPR_FMNIST_H

#include <stddef.h>
#include <stdint.h>

/* Read the IDX file `path` of unsigned bytes with `ndim` dimensions (1..4)
 * into *data (count = product of dims, to free()), dims[0..ndim) filled.
 * The file must be a regular file (a FIFO or a device is refused before
 * anything blocks) and must not change while it is read (its size and
 * modification time are compared before and after).
 * Errors (message names the file and the value): SPR_EIO (cannot open or
 * read, not a regular file, changed while read, corrupt gzip stream),
 * SPR_EINVAL (bad magic, type other than unsigned byte, wrong dimension
 * count, a zero size, more than 2^31 bytes, truncated data or bytes after
 * the data), SPR_ENOMEM. */
int spr_fmnist_read_idx(const char *path, int ndim, int *dims, uint8_t **data);

/* spr_fmnist_read_idx, and the file's checksum as read: "fnv1a64:<16
 * hex>" of its bytes (compressed, as on disk) into id (at least 25
 * bytes), its size into *bytes. */
int spr_fmnist_read_idx_id(const char *path, int ndim, int *dims, uint8_t **data, char *id,
                           size_t idn, long long *bytes);

/* Images in Fashion-MNIST's test split, t10k (Xiao et al., 2017: 60000
 * training and 10000 test images of 28 x 28 pixels) */
#define SPR_FMNIST_TEST_IMAGES 10000

typedef struct {
  int count;       /* images */
  int rows, cols;  /* pixels per image (28 x 28) */
  uint8_t *pixels; /* count x rows x cols, 0..255 */
  uint8_t *labels; /* count, 0..9 */
  /* the two files as read (spr_fmnist_load); data built by hand must
   * leave them zero (empty) */
  char images_path[2048], labels_path[2048];
  char images_id[32], labels_id[32]; /* "fnv1a64:<16 hex>" of their bytes */
  long long images_bytes, labels_bytes;
} spr_fmnist;

/* Load the split "t10k" (test) or "train" of folder dir:
 * <dir>/<split>-images-idx3-ubyte.gz and <dir>/<split>-labels-idx1-ubyte.gz.
 * Errors as spr_fmnist_read_idx, plus SPR_EINVAL when the counts of images
 * and labels differ or a label exceeds 9 (naming file, index and value),
 * or split is neither name.  On error *out holds nothing to free. */
int spr_fmnist_load(const char *dir, const char *split, spr_fmnist *out);

/* Free what spr_fmnist_load allocated and zero *f.  NULL is a no-op. */
void spr_fmnist_free(spr_fmnist *f);

#endif
