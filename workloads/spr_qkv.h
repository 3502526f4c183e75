/* spr_qkv.h - users' own attention: Q, K, V per layer and head from a
 * sprintsim-qkv HDF5 file (format: docs/qkv.md).
 *
 *   root attributes  format = "sprintsim-qkv", version = 1
 *   /layer_<l>/Q, K, V   float32 or float64, (batch, heads, N, d) or (heads, N, d)
 *   /mask                optional integer 0/1, (batch, N) or (N): 1 = real token
 *
 * spr_qkv_open() checks the whole structure (attributes, groups, shapes,
 * types, limits, the mask); the values are read and checked (finite,
 * within float32) per (layer, head, item) by spr_qkv_read_head(), so a
 * file is never loaded whole.  Padding tokens (mask 0) are dropped: an
 * item's sequence is its real tokens, in file order.
 *
 * The file is read by the isolated reader (core/spr_h5r.h): libhdf5 runs
 * in a child process under resource limits, so a crafted or damaged file
 * that crashes or loops it is an SPR_EHDF5 error naming the file.  The
 * file's size and modification time are recorded at open and checked
 * around every read: a file changed or truncated during a run is refused
 * (SPR_EIO naming it) instead of being read as zeros.
 *
 * A handle is used from one thread at a time; handles may be used from
 * different threads at once.
 */
#ifndef SPR_QKV_H
#define SPR_QKV_H

#include <stddef.h>
#include <stdint.h>

#include "spr_params.h"

#define SPR_QKV_FORMAT "sprintsim-qkv"
#define SPR_QKV_VERSION 1
/* Most elements of /mask (batch x N), read whole at open: 256 MiB. */
#define SPR_QKV_MAX_MASK (1 << 28)

typedef struct spr_qkv spr_qkv;

typedef struct {
  int n_layers;  /* groups layer_0 .. layer_<n_layers - 1> */
  int n_heads;
  int seq_len;   /* N of the datasets, padding included */
  int head_dim;  /* d */
  int batch;     /* items; 1 when the datasets have no batch axis */
  int batched;   /* 1: datasets (batch, heads, N, d); 0: (heads, N, d) */
  int has_mask;  /* /mask present (otherwise every token is real) */
  int float_bits; /* 32 or 64: element type of the datasets */
} spr_qkv_info;

/* Open the sprintsim-qkv file `path` read-only and check its structure.
 * *out is set to a handle to spr_qkv_close().  Errors, each naming the
 * file and, where it applies, the attribute, dataset, index and value:
 * SPR_EIO (cannot open), SPR_EHDF5 (not HDF5; format or version attribute
 * missing or wrong; no layer_0; a layer group misnumbered or not a group;
 * Q, K or V missing, not a dataset, not float32/float64, rank not 3 or 4,
 * empty, shapes differing within a layer or across layers; more than
 * SPR_MAX_LAYERS layers or SPR_MAX_HEADS heads, N above SPR_QKV_MAX_SEQ or
 * below 2, d above SPR_QKV_MAX_DIM, more than SPR_QKV_MAX_BATCH items;
 * mask not integer, of the wrong shape, larger than SPR_QKV_MAX_MASK
 * elements, holding a value other than 0 and 1, or an item of padding
 * only), SPR_ENOMEM (also when the reader's
 * buffers would exceed 80% of physical memory). */
int spr_qkv_open(const char *path, spr_qkv **out);

/* Close the file and free the handle; NULL is a no-op. */
void spr_qkv_close(spr_qkv *f);

/* Shape of the open file. */
const spr_qkv_info *spr_qkv_get_info(const spr_qkv *f);

/* "fnv1a64:<16 hex>" of the file's bytes into out (n >= 25): a content
 * identity recorded in traces.  Errors: SPR_EIO (read error, the file
 * changed since open). */
int spr_qkv_content_id(spr_qkv *f, char *out, size_t n);

/* Size of the file in bytes (at open). */
long long spr_qkv_file_size(const spr_qkv *f);

/* SPR_EIO naming the file when its size or modification time differ
 * from the open's (spr_qkv_read_head checks this itself). */
int spr_qkv_check(spr_qkv *f);

/* Real (mask 1) tokens of batch item `item` into *n_real.  Errors:
 * SPR_EINVAL (item outside [0, batch)), SPR_EHDF5 (fewer than 2 real
 * tokens: nothing to simulate). */
int spr_qkv_item_tokens(const spr_qkv *f, int item, int *n_real);

/* Read head (layer, head) of batch item `item`: Q, K and V (V may be
 * NULL), each caller-owned n_real x d floats, row-major, the item's real
 * tokens in file order.  Values of padding tokens are neither read into
 * the output nor checked.  Errors: SPR_EINVAL (indices out of range),
 * SPR_EIO (the file changed since open), SPR_EHDF5 (read failed; an
 * element NaN, infinite, or beyond float32's range: the message names the
 * dataset and the element's full index). */
int spr_qkv_read_head(spr_qkv *f, int layer, int head, int item, float *Q, float *K, float *V);

/* With c->wl.source = qkv: open c->wl.qkv_file, take the sizes from it and
 * the item c->wl.qkv_item, replace qkv_file by its canonical absolute path
 * (so the configuration names the file from anywhere), then
 * spr_config_resolve(c, origin).  Sizes left at 0 become the file's:
 * seq_len = the item's real tokens, layers, heads, head_dim; a non-zero
 * layers or heads up to the file's selects the first ones; any other
 * non-zero size that differs from the file's is an error.  With source
 * synthetic: spr_config_resolve(c, origin) only.  Errors: those of
 * spr_qkv_open and spr_qkv_item_tokens, SPR_ECONFIG (a size or the item
 * does not fit the file; the message names key, value and file). */
int spr_qkv_resolve(spr_config *c, const char *origin);

/* --- writing ------------------------------------------------------------- */

typedef struct spr_qkv_writer spr_qkv_writer;

/* Create a sprintsim-qkv file at `path` (written under a unique
 * "<path>.tmp.XXXXXX" and renamed by spr_qkv_finish) with float32
 * datasets of `layers` x `heads`, N = seq_len, d = head_dim; batch > 0
 * gives datasets (batch, heads, N, d), batch = 0 gives (heads, N, d).
 * mask: NULL (no /mask) or max(batch, 1) x seq_len values 0/1, written as
 * uint8 /mask of shape (batch, N) (or (N) when batch = 0).  Errors:
 * SPR_EINVAL (sizes out of the limits of spr_qkv_open, a bad mask),
 * SPR_EIO, SPR_EHDF5, SPR_ENOMEM. */
int spr_qkv_create(const char *path, int layers, int heads, int batch, int seq_len, int head_dim,
                   const uint8_t *mask, spr_qkv_writer **out);

/* Write head (layer, head) of item `item` (0 when batch = 0): Q, K, V
 * each seq_len x head_dim floats, padding rows included.  Each once.
 * Errors: SPR_EINVAL (indices, written twice, non-finite value),
 * SPR_EHDF5. */
int spr_qkv_write_head(spr_qkv_writer *w, int layer, int head, int item, const float *Q,
                       const float *K, const float *V);

/* commit = 1: check every head of every item was written, close and
 * rename to the final path (SPR_EINVAL and nothing left when not);
 * commit = 0: close and delete.  Frees w (NULL: no-op returning 0).
 * Errors: SPR_EINVAL, SPR_EHDF5, SPR_EIO. */
int spr_qkv_finish(spr_qkv_writer *w, int commit);

#endif
