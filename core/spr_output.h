/* spr_output.h - internal: output files that are complete or absent.
 *
 * Every writer of the library writes to a fresh "<path>.tmp.XXXXXX"
 * (mkstemp: runs writing the same path never touch each other's file),
 * verifies the close (every HDF5 close checked, every write of the file
 * checked by the output driver, the data flushed to the disk with fsync),
 * and only then renames it to <path>; on any failure the temporary is deleted, so
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

/* Rename the temporary (complete and flushed to the disk) to `path` and
 * flush the folder.  Errors: SPR_EIO naming both files when the rename
 * fails (the temporary is then deleted, unless `keep`: a complete trace
 * stays at its temporary name); SPR_EIO "written, but its folder cannot
 * be flushed" when only the folder's fsync fails (the file is in place). */
int spr__out_commit(const char *tmp, const char *path, int keep);

/* Delete the temporary (a missing file is no error). */
void spr__out_discard(const char *tmp);

/* Write n bytes of buf as the whole content of the temporary, fsync and
 * close it (text outputs: the sweep's CSV).  Errors: SPR_EIO naming tmp
 * and the reason ("No space left on device", "File too large"). */
int spr__out_write_file(const char *tmp, const void *buf, size_t n);

/* Test-only fault injection: from now on, writes of this module (HDF5
 * outputs through its driver, spr__out_write_file) fail with ENOSPC once
 * `budget` more bytes are written in total, as on a disk with that much
 * free space; a negative budget ends the fault.  Returns what was left of
 * the previous budget (-1: none).  The sprintsim command sets it from
 * SPRINTSIM_TEST_FREE_BYTES (tests/test_reliability.sh). */
long long spr__out_fault(long long budget);

/* SPR_EHDF5 "<tmp>: <fmt...> (HDF5: <libhdf5's innermost cause>)".  Call
 * right after the failing HDF5 call, before any other clears its error
 * stack. */
int spr__h5_fail(const char *tmp, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Make the file-access property list fapl write through the output
 * driver: a failed write is kept by the driver (never reported to
 * libhdf5, which cannot recover from a failed metadata write: a failed
 * flush or close leaves 1.10.8 with a half-closed file it crashes on at
 * exit) and reported by spr__h5_out_status and spr__h5_close_output.
 * Every HDF5 output of the library is created with it.  Errors:
 * SPR_EHDF5. */
int spr__h5_out_fapl(hid_t fapl, const char *tmp);

/* SPR_EIO "<tmp>: write failed at byte B: <reason>" when a write to the
 * output file f failed (its content is lost; call it after each step of
 * an incremental writer to stop early), else 0. */
int spr__h5_out_status(hid_t f, const char *tmp);

/* Close the output file f (created with spr__h5_out_fapl), written at tmp,
 * after the writer's status rc (0: everything written; call with HDF5
 * errors silenced, inside spr__h5_quiet_on).  With rc == 0: no object of
 * f may still be open, no write may have failed, the close (which writes
 * the metadata and fsyncs the file) must succeed; a failure is an error
 * naming tmp and its cause.  Returns rc, or the first error here; with an
 * error the caller deletes the temporary. */
int spr__h5_close_output(hid_t f, const char *tmp, int rc);

#endif
