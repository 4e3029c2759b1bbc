// SPDX-License-Identifier: MIT
// Status codes and the per-thread last-error message.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "difftop/base.h"

static _Thread_local dtStatus last_status = DT_OK;
static _Thread_local char last_message[1024];

const char* dt_status_string(dtStatus status) {
  switch (status) {
    case DT_OK: return "ok";
    case DT_ERR_ARG: return "invalid argument";
    case DT_ERR_SHAPE: return "shape mismatch";
    case DT_ERR_NOMEM: return "out of memory";
    case DT_ERR_IO: return "input/output error";
    case DT_ERR_FORMAT: return "malformed input";
    case DT_ERR_NONFINITE: return "non-finite value";
    case DT_ERR_NOT_FOUND: return "not found";
    case DT_ERR_STATE: return "invalid state";
    case DT_ERR_UNSUPPORTED: return "unsupported";
    case DT_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

const char* dt_last_error(void) { return last_message; }

dtStatus dt_last_status(void) { return last_status; }

void dt_clear_error(void) {
  last_status = DT_OK;
  last_message[0] = 0;
}

dtStatus dt_error(dtStatus status, const char* fmt, ...) {
  // format into a temporary first: callers may pass dt_last_error() itself as an argument
  char buf[sizeof last_message];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  memcpy(last_message, buf, sizeof buf);
  last_status = status;
  return status;
}

int dt_version(void) { return DT_VERSION_HEX; }

const char* dt_version_string(void) { return DT_VERSION_STRING; }
