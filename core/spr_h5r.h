/* spr_h5r.h - untrusted HDF5 files read in a child process.
 *
 * Debian's libhdf5 1.10.8 overflows the heap, frees invalid pointers,
 * loops forever or asks for tens of gigabytes on crafted files (the
 * reproducers of tests/data/hdf5-crashers).  sprintsim reads files from
 * collaborators, so every input HDF5 file is opened through this module:
 * spr_h5r_open() forks a child process that opens the file read-only and
 * serves small requests over a socket (what kind of object a path names,
 * the names in a group, the type and shape of a dataset or attribute, a
 * hyperslab of a dataset converted to a native type, a string); the data
 * come back through the socket.  The child runs under resource limits:
 * CPU time and address space per request, no file may be written, no
 * core dump.  A crash, a loop, an absurd allocation or a hang in libhdf5
 * ends the child only and becomes one SPR_EHDF5 error that names the
 * file and the request ("<file>: the HDF5 library crashed (SIGSEGV)
 * reading dataset '/layer_0/Q'; the file is damaged or crafted"); after
 * that every request on the handle fails with the same message.  The
 * parent never calls libhdf5 for such a file and never trusts a length
 * the child sends.  Design, costs and how a reader adopts it:
 * docs/isolation.md.
 *
 * The parent keeps its own read-only descriptor of the file, taken at
 * open, so the child reads exactly that file (/proc/self/fd/N) even if the
 * path is replaced, and records its size and modification time; every
 * dataset read checks them before and after, so a file changed or
 * truncated while it is read is refused (SPR_EIO naming the file) instead
 * of yielding zeros.  spr_h5r_content_id() checksums the bytes.
 *
 * Threads: a handle is used by one thread at a time; different handles
 * may be used from different threads at once (each has its own child).
 * spr_h5r_open forks while holding the process-wide HDF5 lock
 * (spr_h5quiet.h), so no thread of the parent is inside libhdf5 at that
 * moment; the child uses neither OpenMP nor stdio, and leaves with
 * _exit().  The library never executes another program for this (no exec
 * of /proc/self/exe), so it works inside any host process (Python).
 * The child allocates memory: glibc's malloc supports that after fork in
 * a threaded process, but the allocator of GCC 12's AddressSanitizer
 * does not (a lock another thread held at the fork stays held in the
 * child, which then waits forever; seen in CI).  So a sweep reads its
 * models and device models before its points run
 * (spr_sweep_check_memory), the tests
 * open readers outside parallel regions under AddressSanitizer, and a
 * child that gets no further than wall_s + 5 s in starting or in one
 * request ends itself (SIGALRM), so none outlives a killed parent.
 */
#ifndef SPR_H5R_H
#define SPR_H5R_H

#include <stddef.h>
#include <stdint.h>

#define SPR_H5R_MAX_RANK 8

typedef struct spr_h5r spr_h5r;

/* Resource limits of the child, per request.  Requests of the readers
 * take milliseconds; the limits stop a libhdf5 in trouble. */
typedef struct {
  double cpu_s;        /* CPU seconds one request may use (RLIMIT_CPU, whole
                          seconds, at least 1): default 60 */
  double wall_s;       /* seconds the parent waits for one answer before it
                          kills the child: default 600 */
  uint64_t mem_bytes;  /* address space one request may add to the child
                          beyond twice the data it returns (RLIMIT_AS):
                          default 2 GiB */
  int in_process;      /* 1: no child; requests are served in the calling
                          process under the HDF5 lock (for debugging and
                          for fuzzing with coverage: libhdf5's crashes are
                          then the caller's).  Default 0. */
  int keep_stderr;     /* 1: the child keeps the parent's standard error
                          (sanitizer reports, debugging); 0 (default):
                          /dev/null */
} spr_h5r_limits;

/* The built-in defaults above. */
void spr_h5r_limits_default(spr_h5r_limits *l);

/* Process-wide limits used by spr_h5r_open when given NULL (every reader
 * of the library does); initially the defaults.  Set them once, before
 * threads read files (the sprintsim command takes them from the
 * environment variable SPRINTSIM_H5_LIMITS).  Errors: SPR_EINVAL (cpu_s
 * < 1, wall_s <= 0, mem_bytes < 64 MiB, non-finite values). */
int spr_h5r_set_limits(const spr_h5r_limits *l);
void spr_h5r_get_limits(spr_h5r_limits *l);

/* Parse "cpu=S,wall=S,mem=BYTES[K|M|G],inprocess=0|1,stderr=0|1" (any
 * subset, in any order) over *l.  Errors: SPR_EINVAL naming the item. */
int spr_h5r_parse_limits(const char *text, spr_h5r_limits *l);

/* Open the HDF5 file `path` read-only in a new child process.  `what`
 * names the file's role in messages ("Q/K/V file", "device model").
 * lim: NULL for the process-wide limits.  Errors: SPR_EINVAL (NULL or
 * empty path), SPR_EIO "<path>: cannot open <what>: <reason>" (missing,
 * unreadable, not a regular file), SPR_EHDF5 "<path>: not an HDF5 file"
 * or a failure of the child as above, SPR_ENOMEM. */
int spr_h5r_open(const char *path, const char *what, const spr_h5r_limits *lim, spr_h5r **out);

/* End the child (it is sent SIGKILL when it does not leave at once),
 * reap it and free h; NULL is a no-op. */
void spr_h5r_close(spr_h5r *h);

/* The path as given to spr_h5r_open. */
const char *spr_h5r_path(const spr_h5r *h);

/* What a path names.  Every prefix is checked, so "a/b/c" is MISSING when
 * "a" or "a/b" is. */
enum { SPR_H5R_MISSING = 0, SPR_H5R_GROUP, SPR_H5R_DATASET, SPR_H5R_NAMED_TYPE, SPR_H5R_OTHER };

/* Type classes (HDF5's, without depending on hdf5.h). */
enum {
  SPR_H5R_INTEGER = 1, SPR_H5R_FLOAT, SPR_H5R_STRING, SPR_H5R_ENUM, SPR_H5R_COMPOUND,
  SPR_H5R_ARRAY, SPR_H5R_VLEN, SPR_H5R_CLASS_OTHER
};

/* Memory types a read converts to. */
enum { SPR_H5R_F64 = 1, SPR_H5R_F32, SPR_H5R_I64, SPR_H5R_U64, SPR_H5R_I32, SPR_H5R_U8 };

/* Element type and dataspace of a dataset or attribute. */
typedef struct {
  int cls;            /* SPR_H5R_INTEGER, ... */
  int standard;       /* 1: an IEEE float of 4 or 8 bytes, or an integer of
                         1, 2, 4 or 8 bytes with no padding bits (either
                         byte order): the only numeric types the readers
                         accept (libhdf5's conversions of unusual types
                         are where crafted files hurt it) */
  int is_signed;      /* integers */
  int var_str;        /* a variable-length string */
  uint64_t size;      /* bytes of one element in the file */
  int rank;           /* -1: null dataspace, 0: scalar, else 1..SPR_H5R_MAX_RANK */
  uint64_t dims[SPR_H5R_MAX_RANK];
  uint64_t npoints;   /* elements: product of dims (1 when scalar) */
} spr_h5r_info;

/* *kind = what `obj` names (SPR_H5R_MISSING when nothing).  Errors:
 * SPR_EHDF5 (the child failed; a malformed path). */
int spr_h5r_kind(spr_h5r *h, const char *obj, int *kind);

/* Names of the links in group `group`, in name order, at most `max`
 * (more: SPR_EHDF5 naming the group and the limit; a name longer than
 * 255 bytes: SPR_EHDF5).  *names is one allocation holding the array and
 * the strings: free(*names).  Errors: SPR_EHDF5 (missing, not a group),
 * SPR_ENOMEM. */
int spr_h5r_list(spr_h5r *h, const char *group, int max, char ***names, int *n);

/* Type and shape of dataset `dset`.  Errors: SPR_EHDF5 (missing, not a
 * dataset, rank above SPR_H5R_MAX_RANK). */
int spr_h5r_dset_info(spr_h5r *h, const char *dset, spr_h5r_info *info);

/* Whether object `obj` has attribute `name` (*exists 0/1), and its type
 * and shape when it does (info may be NULL).  Errors: SPR_EHDF5 (obj
 * missing). */
int spr_h5r_attr_info(spr_h5r *h, const char *obj, const char *name, int *exists,
                      spr_h5r_info *info);

/* Read a hyperslab of numeric dataset `dset` converted to memory type
 * `mem` into buf (bytes bytes): start[k], count[k] for each of the
 * dataset's `rank` axes (rank = 0, start = count = NULL: the whole
 * dataset).  bytes must equal the selection's elements times the memory
 * type's size.  The file must be unchanged since open (checked before
 * and after).  Errors: SPR_EINVAL (arguments, a selection outside the
 * dataset, bytes), SPR_EIO (the file changed), SPR_EHDF5 (not numeric,
 * read or conversion failed: the message names the dataset and libhdf5's
 * innermost cause). */
int spr_h5r_read(spr_h5r *h, const char *dset, int mem, int rank, const uint64_t *start,
                 const uint64_t *count, void *buf, size_t bytes);

/* Read every element of numeric attribute `name` of `obj` as `mem` into
 * buf (bytes = elements x the memory type's size).  Errors as
 * spr_h5r_read, SPR_EHDF5 also when the attribute is missing. */
int spr_h5r_attr_read(spr_h5r *h, const char *obj, const char *name, int mem, void *buf,
                      size_t bytes);

/* A scalar string: attribute `attr` of `obj`, or dataset `obj` itself
 * when attr is NULL.  Fixed-length strings of any padding (NULLTERM,
 * NULLPAD as h5py writes np.bytes_, SPACEPAD: trailing blanks kept) and
 * variable-length ones; the text ends at its first NUL.  *out is a new
 * string (free()); at most max_len bytes (more: SPR_EHDF5 naming the
 * object and the length).  Errors: SPR_EHDF5 (missing, not a string, not
 * scalar), SPR_ENOMEM. */
int spr_h5r_read_str(spr_h5r *h, const char *obj, const char *attr, size_t max_len, char **out);

/* SPR_EIO "<path>: the <what> changed while it was being read (...)"
 * when the file's size or modification time differs from the open's. */
int spr_h5r_check(spr_h5r *h);

/* "fnv1a64:<16 hex digits>" of the file's bytes into out (at least 25
 * bytes), computed once from the parent's descriptor; the file must be
 * unchanged.  Errors: SPR_EIO. */
int spr_h5r_content_id(spr_h5r *h, char *out, size_t n);

/* Size in bytes of the file when it was opened. */
long long spr_h5r_size(const spr_h5r *h);

/* Bytes of one element of memory type mem (0 for an unknown type). */
size_t spr_h5r_mem_size(int mem);

#endif
