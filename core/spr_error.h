/* spr_error.h - error codes and messages of the sprintsim library.
 *
 * Contract: every function of the library that can fail returns an int,
 * 0 on success and one of the negative SPR_E* codes on failure.  Every
 * failure is raised through spr_error(), which records a message saying
 * what and where (file, line, key, dataset, value).  spr_errmsg() returns
 * the last message of the calling thread.  One breakpoint on spr_error
 * catches every error.  The library never calls exit().
 */
#ifndef SPR_ERROR_H
#define SPR_ERROR_H

enum {
  SPR_OK = 0,
  SPR_ENOMEM = -1,   /* allocation failed */
  SPR_EINVAL = -2,   /* invalid argument or parameter value */
  SPR_ECONFIG = -3,  /* bad configuration file or key */
  SPR_EIO = -4,      /* file system error */
  SPR_EHDF5 = -5,    /* HDF5 library error or bad HDF5 content */
  SPR_EUSAGE = -6,   /* bad command line */
  SPR_ESPICE = -7,   /* ngspice failure */
  SPR_EINTERNAL = -8, /* broken invariant (a bug) */
  SPR_ECANCELED = -9  /* stopped on request (a signal) */
};

/* Short fixed description of an error code ("out of memory"). */
const char *spr_strerror(int code);

/* Record a printf-style message for `code` in the calling thread and return
 * `code`.  Use as `return spr_error(SPR_EINVAL, "...", ...);`. */
int spr_error(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Record "<fmt formatted>: <the last message>" and return `code`: the
 * caller names its context before an error raised below it.  Use as
 * `return spr_error_prefix(rc, "layer %d", layer);`. */
int spr_error_prefix(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The last message recorded by spr_error() in this thread ("" if none). */
const char *spr_errmsg(void);

/* Forget the message of this thread. */
void spr_error_clear(void);

#endif
