/* spr_error.c - one place through which every error passes. */
#include "config.h"
#include "spr_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_msg[1024];

const char *spr_strerror(int code) {
  switch (code) {
  case SPR_OK: return "success";
  case SPR_ENOMEM: return "out of memory";
  case SPR_EINVAL: return "invalid argument";
  case SPR_ECONFIG: return "configuration error";
  case SPR_EIO: return "input/output error";
  case SPR_EHDF5: return "HDF5 error";
  case SPR_EUSAGE: return "usage error";
  case SPR_ESPICE: return "ngspice error";
  case SPR_EINTERNAL: return "internal error";
  case SPR_ECANCELED: return "canceled";
  default: return "unknown error";
  }
}

int spr_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_msg, sizeof last_msg, fmt, ap);
  va_end(ap);
  return code;
}

int spr_error_prefix(int code, const char *fmt, ...) {
  char old[sizeof last_msg];
  snprintf(old, sizeof old, "%s", last_msg);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(last_msg, sizeof last_msg, fmt, ap);
  va_end(ap);
  /* append ": old", cut at the buffer's end like every message */
  if (n >= 0 && (size_t)n + 2 < sizeof last_msg) {
    size_t at = (size_t)n, room = sizeof last_msg - 1 - at - 2, ol = strlen(old);
    memcpy(last_msg + at, ": ", 2);
    memcpy(last_msg + at + 2, old, ol < room ? ol : room);
    last_msg[at + 2 + (ol < room ? ol : room)] = '\0';
  }
  return code;
}

const char *spr_errmsg(void) { return last_msg; }

void spr_error_clear(void) { last_msg[0] = '\0'; }
