// SPDX-License-Identifier: MIT
// Internals shared by the I/O layer: atomic file replacement, growable buffers, UTF-8 checks.
#ifndef DIFFTOP_IO_INTERNAL_H
#define DIFFTOP_IO_INTERNAL_H

#include <stdio.h>

#include "difftop/io.h"

// A file being written to a temporary name, renamed over its target on commit.
typedef struct dtAtomicFile {
  FILE* fp;          // the temporary file, opened for writing
  char* tmp;         // its name: "<path>.tmp.XXXXXX"
  char* path;        // the target (a copy)
  int failed;        // a write failed (reported at commit)
} dtAtomicFile;

// Create the temporary file next to path (with the target's mode, or 0666 & ~umask).
dtStatus dt_atomic_begin(dtAtomicFile* af, const char* path);

// Append bytes; errors are remembered and reported by dt_atomic_commit.
void dt_atomic_write(dtAtomicFile* af, const void* data, size_t n);

// Flush, fsync, rename over the target and fsync the directory; aborts on any failure.
dtStatus dt_atomic_commit(dtAtomicFile* af);

// Close and remove the temporary file (safe to call twice, or after a failed begin).
void dt_atomic_abort(dtAtomicFile* af);

// Stages at which tests can make the next atomic write fail.
typedef enum dtIoFail {
  DT_IO_FAIL_NONE = 0,
  DT_IO_FAIL_OPEN,    // creating the temporary file
  DT_IO_FAIL_WRITE,   // writing data
  DT_IO_FAIL_SYNC,    // fsync of the temporary file
  DT_IO_FAIL_RENAME   // renaming it over the target
} dtIoFail;

// Test hook: make the next atomic write fail at stage (reset after it fires).
void dt_io_inject_failure(dtIoFail stage);

// A growable byte buffer from dt_malloc.
typedef struct dtBuf {
  char* data;
  size_t len;
  size_t cap;
  int oom;  // an append failed; the content is incomplete
} dtBuf;

// Append n bytes (records oom on failure).
void dt_buf_put(dtBuf* b, const void* data, size_t n);

// Append a NUL-terminated string.
void dt_buf_puts(dtBuf* b, const char* s);

// Append printf-style text.
void dt_buf_printf(dtBuf* b, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Release the buffer.
void dt_buf_free(dtBuf* b);

// Grow *arr (of *cap elements of size elem) to hold at least need elements; 0 on failure.
int dt_grow(void** arr, size_t* cap, size_t need, size_t elem);

// Copy a string with dt_malloc (NULL on failure, with an error recorded).
char* dt_strdup(const char* s);

// Length of the longest valid UTF-8 prefix of s[0..n) (n when all of it is valid).
size_t dt_utf8_valid_prefix(const unsigned char* s, size_t n);

#endif
