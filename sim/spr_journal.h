/* spr_journal.h - the journal of a sweep's finished points: checkpoint and
 * resume (docs/sweep.md, "Interrupted sweeps").
 *
 * A journal sits beside the sweep's output (SWEEP.journal for SWEEP.h5).
 * It is a text file: a header that names the program version, the sweep
 * (its name, evaluator, schemes, points, its whole text and the size and
 * content hash of every file its points read) and ends with a CRC-32 of
 * the header, then one line per finished point:
 *
 *   point <p> <configuration hash, 16 hex> <rows, 2 x SPR_SWEEP_POINT_BYTES hex> <CRC-32, 8 hex>
 *
 * (p 0-based; the hash is spr_sweep_point_hash; the rows are
 * spr_sweep_point_pack's bytes; the CRC-32 (zlib's, ISO-HDLC) covers the
 * line up to and including the space before it).  Each record is one
 * write() followed by fsync(), so a finished point survives a signal, a
 * crash or kill -9 of the program; the journal is created under a
 * temporary name and renamed once its header is on disk, so it exists
 * whole or not at all.  While open it is locked (flock), so two sweeps
 * cannot write one journal.
 *
 * A resume checks the header against the sweep loaded now (program
 * version, sweep name, text line by line, evaluator, schemes, points,
 * every input file's size and content) and every record's hash against
 * its point's configuration, so the points of two configurations never
 * mix; a damaged or cut record (its checksum) stops the resume with a
 * message naming the journal, the line and what to do.
 */
#ifndef SPR_JOURNAL_H
#define SPR_JOURNAL_H

#include "spr_sweep.h"

typedef struct spr_journal spr_journal;

/* The journal's name for output h5path: h5path without ".h5", plus
 * ".journal".  A string to free(); NULL when out of memory. */
char *spr_journal_path(const char *h5path);

/* Create the journal `path` of sweep sw written by program `version`:
 * refused (SPR_EIO) when the file exists; the header is written to
 * "<path>.tmp.XXXXXX", synced, renamed and its folder synced.  Reads every
 * input file of sw once (its content hash).  *out receives the open,
 * locked journal.  Errors: SPR_EIO (names the file and the reason),
 * SPR_ENOMEM. */
int spr_journal_create(const char *path, const spr_sweep *sw, const char *version,
                       spr_journal **out);

/* Open the existing journal `path`, lock it, check that it belongs to sw
 * and `version` and load its finished points into sw
 * (spr_sweep_point_unpack); *loaded receives how many.  Errors, each
 * naming the journal and what to do:
 *   SPR_EIO     not readable, in use by another sweep (locked), not a
 *               journal, a damaged header, a damaged or cut record (line);
 *   SPR_ECONFIG another version, sweep name, text (the first differing
 *               line, both texts), evaluator, schemes, number of points,
 *               a changed input file, or a record whose configuration
 *               hash is not its point's;
 *   SPR_ENOMEM.
 * On error sw keeps no point of the journal (every point is cleared). */
int spr_journal_resume(const char *path, spr_sweep *sw, const char *version, spr_journal **out,
                       int *loaded);

/* Record finished point p (evaluated or unpacked in sw) durably: one line
 * written and fsync'ed.  Errors: SPR_EINVAL (p not finished), SPR_EIO (a
 * failed or short write, e.g. a full disk: the journal is cut back to its
 * last whole record). */
int spr_journal_append(spr_journal *j, const spr_sweep *sw, int p);

/* Close (and unlock) the journal, keeping the file.  NULL: no-op. */
void spr_journal_close(spr_journal *j);

/* Delete the journal (the sweep's outputs are in place) and close it.
 * Returns 0 or SPR_EIO. */
int spr_journal_remove(spr_journal *j);

#endif
