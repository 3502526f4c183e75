/* spr_output.h - internal: output files that are complete or absent.
 *
 * Every writer of the library writes to a fresh "<path>.tmp.XXXXXX"
 * (mkstemp: runs writing the same path never touch each other's file),
 * verifies the close (every HDF5 close and flush checked, the data
 * flushed to the disk with fsync, the closed size as expected), and only
 * then renames it to <path>; on any failure the temporary is deleted, so
 * a full disk, a quota or a file-size limit never leaves a file that
 * looks complete.  docs/isolation.md, "Writing".
 */
#ifndef SPR_OUTPUT_H
#define SPR_OUTPUT_H

#include <hdf5.h>
#include <stdio.h>

/* Create the temporary of `path` (mode 0666 minus the umask, like any new
 * file) and return its name in *tmp (free() it).  Errors: SPR_EIO (path
 * names a folder or ends in '/', the folder is missing or not writable:
 * "<tmp>: cannot create: <reason>"), SPR_EINVAL (empty path),
 * SPR_ENOMEM. */
int spr__out_begin(const char *path, char **tmp);

/* Flush the temporary to the disk (fsync), rename it to `path` and flush
 * the folder.  Errors: SPR_EIO naming both files; the temporary is then
 * deleted, except when only the rename failed and keep is set (a
 * complete trace stays at its temporary name). */
int spr__out_commit(const char *tmp, const char *path, int keep);

/* Delete the temporary (a missing file is no error). */
void spr__out_discard(const char *tmp);

/* Finish a stdio output opened on tmp: flush, fsync, fclose, each
 * checked.  Returns rc, or the first error here (SPR_EIO naming tmp and
 * the reason: "No space left on device", "File too large", ...). */
int spr__out_fclose(FILE *f, const char *tmp, int rc);

/* SPR_EHDF5 "<tmp>: <fmt...> (HDF5: <libhdf5's innermost cause>)", for
 * example "... (HDF5: file write failed: No space left on device)".  Call
 * right after the failing HDF5 call, before any other clears its error
 * stack. */
int spr__h5_fail(const char *tmp, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Close the HDF5 output file f, written at tmp, after the writer's status
 * rc (0: everything written; call with HDF5 errors silenced, inside
 * spr__h5_quiet_on).  With rc == 0: no object of f may still be open,
 * then flush, fsync, close, and the closed file must have the size
 * libhdf5 reported after the flush; a failure is an error naming tmp and
 * libhdf5's innermost cause.  When rc != 0 or a step fails, the file's
 * descriptor is first redirected to an anonymous memory file so that
 * libhdf5 can finish closing without the disk: libhdf5 1.10.8 leaves a
 * file whose H5Fclose failed half-closed and crashes on it at exit.  The
 * temporary's content is then garbage, for the caller to delete.
 * Returns rc, or the first error here. */
int spr__h5_close_output(hid_t f, const char *tmp, int rc);

#endif
