/* spr_spice.h - the SPICE driver: the only code that talks to libngspice.
 *
 * Isolation: libngspice is a process-wide singleton that one bad netlist
 * line can poison for the rest of the process ("cannot recover and awaits
 * to be detached"; see /work/shared/NGSPICE.md).  So every job runs in a
 * forked child process: the child initialises the library, loads the
 * netlist, runs the commands, reads the vectors and sends them (or an
 * error message) back over a pipe, then exits with _exit().  The parent
 * never initialises ngspice, so each child starts from a clean library, a
 * failure or crash only kills that child, later jobs still work, and the
 * parent's memory stays flat however many jobs run.
 *
 * Threads: fork() of a multi-threaded process leaves only the calling
 * thread in the child, so the child's malloc may deadlock if another
 * thread held its lock.  Call these functions from a single-threaded
 * program (or before starting threads).  Jobs may run in parallel from
 * separate processes.
 *
 * Signals and lifetime: the parent reaps its own child with waitpid(); a
 * SIGCHLD set to SIG_IGN by the caller makes the exit status unavailable,
 * which is reported as an error.  The child restores the default action
 * of every signal (a caller's flag-only handler means nothing there) and
 * dies with its parent, even when the parent is killed with SIGKILL
 * (PR_SET_PDEATHSIG; Linux sends it when the thread that forked ends, one
 * more reason to call from the main thread).  With a cancel flag
 * (spr_spice_set_cancel) set by a signal handler, the running child is
 * killed and reaped within 0.1 s.  No temporary file or folder is made:
 * the child points SPICE_SCRIPTS at /dev/null (unless the caller set it),
 * where no spinit can exist.
 *
 * The circuits and measurements of the calibration build on this driver
 * in spr_circuits.h.
 */
#ifndef SPR_SPICE_H
#define SPR_SPICE_H

#include <signal.h>
#include <stddef.h>

/* Longest command or vector name accepted, including the final NUL. */
#define SPR_SPICE_CMD_MAX 512
/* Longest vector accepted from ngspice (points). */
#define SPR_SPICE_VEC_MAX 50000000

/* Cancellation of every job of the process (the driver is for
 * single-threaded callers): while *flag (NULL: no flag) is non-zero, no
 * job starts and a running job's child is killed and reaped at once (the
 * flag is looked at every 0.1 s and whenever a signal interrupts the
 * wait); the call returns SPR_ECANCELED.  For signal handlers: the flag
 * is only read.  Returns the previous flag.  spr_cal_step sets its
 * calibration's flag for the duration of a step. */
volatile sig_atomic_t *spr_spice_set_cancel(volatile sig_atomic_t *flag);

/* One whole vector read back from ngspice (owned by the caller after a
 * successful run; free the data with spr_spice_vecs_free()). */
typedef struct {
  int length;     /* number of points, >= 1 */
  int is_complex; /* 1 for complex vectors (ac analyses), else 0 */
  double *re;     /* length values: the data (SI units), or real parts */
  double *im;     /* length imaginary parts; NULL for real vectors */
} spr_spice_vec;

/* Run a sequence of ngspice commands on a netlist and read whole vectors.
 * netlist_lines: n_lines lines of a SPICE netlist (the first one is the
 *   title; a final ".end" is added if missing); copied, the caller keeps
 *   ownership.  A .control block in it runs when it is loaded, before
 *   the commands (so the decks returned by spr_circuits.h rerun).
 * commands: n_commands (>= 0) ngspice commands run in order after the
 *   netlist is loaded, e.g. "op", "dc vin 0 1 0.01", "tran 1p 5n",
 *   "noise v(out) iin dec 20 1 1e9", "setplot noise1".  Element names in
 *   command arguments must be lower case (ngspice 39 matches them
 *   case-sensitively against its lower-cased netlist).  quit, exit, bg_*,
 *   shell, source, reset and remcirc are refused (SPR_EINVAL).
 * vec_names: n_vecs vectors read after the last command.  A plain name
 *   ("v(out)", "vdd#branch", "time", "onoise_total") is looked up in the
 *   current plot, which is the plot of the last analysis that ran; a
 *   plot-qualified name ("noise1.onoise_spectrum", "dc1.v(out)") reads a
 *   named plot.  Plots are named by analysis type and one counter per
 *   job, starting at 1, that grows only when a name would repeat
 *   (ngspice 39, observed): "op", "dc", "tran" give op1, dc1, tran1, but
 *   "op", "op", "dc" give op1, op2, dc2.  A noise analysis makes two
 *   plots, noise<k> with the spectra (inoise_spectrum, onoise_spectrum,
 *   frequency; V or A per sqrt(Hz)) and noise<k+1>, current afterwards,
 *   with the totals over the analysed band (onoise_total, inoise_total;
 *   V or A rms): noise1 and noise2 when it is the job's first analysis.
 *   The DC sweep variable is "v-sweep" (voltage source) or "i-sweep"
 *   (current source).  Names match case-insensitively.
 * vecs: n_vecs outputs, zeroed on entry; on success each holds a copy of
 *   one whole vector.  On failure they hold no data.
 * timeout_s: wall-clock limit for the whole job, seconds, finite and > 0;
 *   the child is killed with SIGKILL when it runs out.
 * Returns 0, SPR_EINVAL (bad arguments; the message names the argument),
 *   SPR_ESPICE (ngspice rejected the netlist, a command failed or was
 *   unknown, an analysis did not converge, a vector is missing or not
 *   finite, the child crashed or timed out; the message names the
 *   command or vector, quotes what ngspice printed and, for a missing
 *   vector, lists the current plot's vectors), SPR_ENOMEM or SPR_EIO
 *   (fork or pipe failed). */
int spr_spice_run(const char *const *netlist_lines, int n_lines,
                  const char *const *commands, int n_commands,
                  const char *const *vec_names, int n_vecs,
                  spr_spice_vec *vecs, double timeout_s);

/* Free the data of n_vecs vectors filled by spr_spice_run() (not the
 * array itself) and zero them; NULL is a no-op. */
void spr_spice_vecs_free(spr_spice_vec *vecs, int n_vecs);

/* The version of the ngspice library, from its initialisation banner,
 * e.g. "ngspice-39 shared library; Creation Date: Sun Feb  5 13:44:35
 * UTC 2023" (for provenance records).  buf receives it (truncated to n
 * bytes with a NUL).  Runs in a child like every job.  Returns 0,
 * SPR_EINVAL (buf NULL, n < 2, bad timeout), SPR_ESPICE or SPR_EIO. */
int spr_spice_version(char *buf, size_t n, double timeout_s);

/* Operating point of a netlist, read back as scalars: spr_spice_run()
 * with the single command "op", keeping the first element of each
 * vector.
 * netlist_lines: n_lines lines of a SPICE netlist (the first one is the
 *   title, as SPICE requires; a final ".end" is added if missing); the
 *   strings are copied, the caller keeps ownership.
 * vec_names: n_vecs vector names to read after "op", e.g. "v(out)" or
 *   "vsense#branch" (the branch current of a voltage source, positive
 *   into its + terminal, amperes); names match case-insensitively.
 * values: n_vecs outputs (the first element of each vector, SI units);
 *   unspecified on failure.
 * timeout_s: wall-clock limit for the whole job (fork, load, analysis),
 *   seconds, > 0; the child is killed with SIGKILL when it runs out.
 * Returns 0, SPR_EINVAL (bad arguments), SPR_ESPICE (ngspice rejected the
 *   netlist, the analysis failed or did not converge, a vector is
 *   missing, the child crashed or timed out; the message says which line
 *   or vector and quotes what ngspice printed) or SPR_EIO (fork or pipe
 *   failed). */
int spr_spice_op_currents(const char *const *netlist_lines, int n_lines,
                          const char *const *vec_names, int n_vecs,
                          double *values, double timeout_s);

/* Netlist of one R x C crossbar array of linear cells (the
 * spr_circ_xbar_netlist() of calibration/spr_circuits.h with linear cells,
 * no capacitances and DC drivers), with the topology of
 * crossbar/spr_nodal.h (docs/crossbar.md):
 *   Vd<i>  d<i> 0 DC V[i]                 row driver (ideal source)
 *   Rdw<i> d<i> w<i>_0 r_wl               driver to word node (i,0)
 *   Rc<i>_<j> w<i>_<j> b<i>_<j> 1/G       cell (omitted when G = 0)
 *   Rw<i>_<j> w<i>_<j> w<i>_<j+1> r_wl    word-line segment
 *   Rb<i>_<j> b<i>_<j> b<i+1>_<j> r_bl    bit-line segment
 *   Rsw<j> b<R-1>_<j> s<j> r_bl           last bit node to the sense node
 *   Vs<j>  s<j> 0 DC 0                    ammeter: I_j = vs<j>#branch
 * A wire resistance of 0 is emitted as a 0 V source (an exact short)
 * instead of a resistor (V instead of R in the element name).  Numbers are printed with %.17g.
 * G: R x C conductances (row-major, siemens, finite, >= 0).
 * r_wl, r_bl: segment resistances (ohm, finite, >= 0).
 * V: R row voltages (volts, finite).
 * lines, n_lines: receive a malloc'ed array of malloc'ed lines; free it
 *   with spr_spice_netlist_free().
 * Returns 0, SPR_EINVAL (the message names the value) or SPR_ENOMEM; on
 * failure *lines is NULL and *n_lines 0. */
int spr_spice_crossbar_netlist(const double *G, int R, int C, double r_wl,
                               double r_bl, const double *V, char ***lines,
                               int *n_lines);

/* Free a netlist from spr_spice_crossbar_netlist() or the generators of
 * spr_circuits.h; NULL is a no-op. */
void spr_spice_netlist_free(char **lines, int n_lines);

/* Column currents of one crossbar array for one input vector, by ngspice:
 * the netlist above, an operating point, I[j] = vs<j>#branch (amperes,
 * C outputs).  Arguments and errors as for the two functions above. */
int spr_spice_crossbar_currents(const double *G, int R, int C, double r_wl,
                                double r_bl, const double *V, double *I,
                                double timeout_s);

#endif
