// SPDX-License-Identifier: MIT
// I/O helpers: atomic file replacement, growable buffers, UTF-8 validation.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_internal.h"

static dtIoFail inject_stage = DT_IO_FAIL_NONE;

void dt_io_inject_failure(dtIoFail stage) { inject_stage = stage; }

// true (once) when a test asked this stage to fail; errno is set like a real failure
static int injected(dtIoFail stage) {
  if (inject_stage != stage) return 0;
  inject_stage = DT_IO_FAIL_NONE;
  errno = EIO;
  return 1;
}

// the process umask without changing it (umask() itself is not thread-safe to query)
static mode_t current_umask(void) {
  mode_t mask = 022;
  FILE* f = fopen("/proc/self/status", "r");
  if (!f) return mask;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "Umask:", 6) == 0) {
      mask = (mode_t)strtoul(line + 6, NULL, 8);
      break;
    }
  }
  fclose(f);
  return mask;
}

dtStatus dt_atomic_begin(dtAtomicFile* af, const char* path) {
  memset(af, 0, sizeof *af);
  if (!path || !*path) return dt_error(DT_ERR_ARG, "atomic write: empty path");
  size_t n = strlen(path);
  af->path = dt_strdup(path);
  af->tmp = dt_malloc(n + 12);
  if (!af->path || !af->tmp) {
    dt_free(af->path);
    dt_free(af->tmp);
    memset(af, 0, sizeof *af);
    return DT_ERR_NOMEM;
  }
  memcpy(af->tmp, path, n);
  memcpy(af->tmp + n, ".tmp.XXXXXX", 12);
  int fd = injected(DT_IO_FAIL_OPEN) ? -1 : mkstemp(af->tmp);
  if (fd < 0) {
    int e = errno;
    dt_free(af->tmp);
    dt_free(af->path);
    memset(af, 0, sizeof *af);
    return dt_error(DT_ERR_IO, "%s: cannot create a temporary file next to it: %s", path,
                    strerror(e));
  }
  // keep the mode of the file we replace; a new file gets the usual 0666 & ~umask
  struct stat sb;
  mode_t mode = (stat(path, &sb) == 0) ? (sb.st_mode & 07777) : (0666 & ~current_umask());
  (void)fchmod(fd, mode);
  af->fp = fdopen(fd, "wb");
  if (!af->fp) {
    int e = errno;
    close(fd);
    dt_atomic_abort(af);
    return dt_error(DT_ERR_IO, "%s: cannot open the temporary file: %s", path, strerror(e));
  }
  return DT_OK;
}

void dt_atomic_write(dtAtomicFile* af, const void* data, size_t n) {
  if (af->failed || !af->fp || n == 0) return;
  if (injected(DT_IO_FAIL_WRITE) || fwrite(data, 1, n, af->fp) != n) af->failed = errno ? errno : EIO;
}

dtStatus dt_atomic_commit(dtAtomicFile* af) {
  if (!af->fp) return dt_error(DT_ERR_STATE, "atomic write: no file open");
  const char* what = NULL;
  int e = 0;
  // data to the disk before the rename makes it visible
  if (af->failed) {
    what = "write";
    e = af->failed;
  } else if (fflush(af->fp) != 0) {
    what = "write";
    e = errno;
  } else if (injected(DT_IO_FAIL_SYNC) || fsync(fileno(af->fp)) != 0) {
    what = "fsync";
    e = errno;
  }
  int close_rc = fclose(af->fp);
  af->fp = NULL;
  if (!what && close_rc != 0) {
    what = "close";
    e = errno;
  }
  if (!what && (injected(DT_IO_FAIL_RENAME) || rename(af->tmp, af->path) != 0)) {
    what = "rename";
    e = errno;
  }
  if (what) {
    dt_error(DT_ERR_IO, "%s: %s of the temporary file failed (the old file is untouched): %s",
             af->path, what, strerror(e));
    dt_atomic_abort(af);
    return DT_ERR_IO;
  }
  // make the rename durable; the new file is already in place, so failures here are ignored
  size_t n = strlen(af->path);
  while (n > 0 && af->path[n - 1] != '/') n--;
  char* dir = dt_malloc(n + 2);
  if (dir) {
    if (n == 0) {
      strcpy(dir, ".");
    } else {
      memcpy(dir, af->path, n);
      dir[n] = 0;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      (void)fsync(dfd);
      close(dfd);
    }
    dt_free(dir);
  }
  dt_free(af->tmp);
  dt_free(af->path);
  af->tmp = NULL;
  af->path = NULL;
  return DT_OK;
}

void dt_atomic_abort(dtAtomicFile* af) {
  if (af->fp) {
    fclose(af->fp);
    af->fp = NULL;
  }
  if (af->tmp) {
    unlink(af->tmp);
    dt_free(af->tmp);
    af->tmp = NULL;
  }
  dt_free(af->path);
  af->path = NULL;
}

//---------------------------------------------------------------------------------------------
// growable buffers

int dt_grow(void** arr, size_t* cap, size_t need, size_t elem) {
  if (need <= *cap) return 1;
  size_t ncap = *cap ? *cap : 8;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2) return 0;
    ncap *= 2;
  }
  if (elem && ncap > SIZE_MAX / elem) return 0;
  void* p = dt_malloc(ncap * elem);
  if (!p) return 0;
  if (*arr && *cap) memcpy(p, *arr, *cap * elem);
  dt_free(*arr);
  *arr = p;
  *cap = ncap;
  return 1;
}

void dt_buf_put(dtBuf* b, const void* data, size_t n) {
  if (b->oom) return;
  if (n > SIZE_MAX - b->len - 1 || !dt_grow((void**)&b->data, &b->cap, b->len + n + 1, 1)) {
    b->oom = 1;
    return;
  }
  if (n) memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = 0;
}

void dt_buf_puts(dtBuf* b, const char* s) { dt_buf_put(b, s, strlen(s)); }

void dt_buf_printf(dtBuf* b, const char* fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    dt_buf_put(b, small, (size_t)n);
    return;
  }
  char* big = dt_malloc((size_t)n + 1);
  if (!big) {
    b->oom = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  dt_buf_put(b, big, (size_t)n);
  dt_free(big);
}

void dt_buf_free(dtBuf* b) {
  dt_free(b->data);
  memset(b, 0, sizeof *b);
}

char* dt_strdup(const char* s) {
  size_t n = strlen(s) + 1;
  char* d = dt_malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

//---------------------------------------------------------------------------------------------
// UTF-8 (RFC 3629: no overlongs, no surrogates, at most U+10FFFF)

size_t dt_utf8_valid_prefix(const unsigned char* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (n - i < len) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; k++)
      if ((s[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return n;
}
