// SPDX-License-Identifier: MIT
// Append-only CSV logs (RFC 4180 quoting), flushed after every row, resumable.
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_internal.h"

struct dtCsv {
  FILE* fp;
  char* path;
  int n;  // columns
};

// append one cell, quoted when it holds a comma, a quote or a line break
static void put_cell(dtBuf* b, const char* s) {
  if (!s) return;
  if (!strpbrk(s, ",\"\r\n")) {
    dt_buf_puts(b, s);
    return;
  }
  dt_buf_put(b, "\"", 1);
  for (; *s; s++) {
    if (*s == '"') dt_buf_put(b, "\"", 1);
    dt_buf_put(b, s, 1);
  }
  dt_buf_put(b, "\"", 1);
}

// shortest text that reads back as the same double; integers without exponent
static void format_double(double v, char* buf, size_t n) {
  if (isnan(v)) {
    snprintf(buf, n, "nan");
  } else if (isinf(v)) {
    snprintf(buf, n, v > 0 ? "inf" : "-inf");
  } else if (v == floor(v) && fabs(v) < 1e15) {
    snprintf(buf, n, "%.0f", v);
    if (strcmp(buf, "-0") == 0) snprintf(buf, n, "-0");
  } else {
    for (int p = 6; p <= 17; p++) {
      snprintf(buf, n, "%.*g", p, v);
      if (strtod(buf, NULL) == v) break;
    }
  }
}

// split one CSV line (no line break) into cells; returns the count (at most max)
static int split_line(const char* line, char** cells, int max, dtBuf* store) {
  // cells are stored NUL-separated in store; offsets first, pointers after
  size_t offs[1024];
  int count = 0;
  const char* p = line;
  for (;;) {
    if (count < max && count < 1024) offs[count] = store->len;
    if (*p == '"') {
      p++;
      while (*p) {
        if (*p == '"' && p[1] == '"') {
          dt_buf_put(store, "\"", 1);
          p += 2;
        } else if (*p == '"') {
          p++;
          break;
        } else {
          dt_buf_put(store, p++, 1);
        }
      }
      while (*p && *p != ',') dt_buf_put(store, p++, 1);
    } else {
      while (*p && *p != ',') dt_buf_put(store, p++, 1);
    }
    dt_buf_put(store, "", 1);
    count++;
    if (*p != ',') break;
    p++;
  }
  if (store->oom) return -1;
  for (int k = 0; k < count && k < max && k < 1024; k++) cells[k] = store->data + offs[k];
  return count;
}

// compare the existing header with the expected one; the message names the first difference
static dtStatus check_header(const char* path, const char* have, const char* const* cols, int n) {
  dtBuf store = {0};
  char* cells[1024];
  int count = split_line(have, cells, 1024, &store);
  dtStatus s = DT_OK;
  if (count < 0) {
    s = DT_ERR_NOMEM;
  } else {
    int k;
    for (k = 0; k < n && k < count && k < 1024; k++)
      if (strcmp(cells[k], cols[k] ? cols[k] : "") != 0) break;
    if (k < n || count != n) {
      if (k < n && k < count && k < 1024)
        s = dt_error(DT_ERR_FORMAT, "%s: cannot resume: header column %d is '%.60s', expected '%.60s'",
                     path, k + 1, cells[k], cols[k] ? cols[k] : "");
      else
        s = dt_error(DT_ERR_FORMAT, "%s: cannot resume: header has %d columns, expected %d", path,
                     count, n);
    }
  }
  dt_buf_free(&store);
  return s;
}

// resume: check the header, drop a torn last row, position at the end
static dtStatus resume(dtCsv* csv, const char* header, const char* const* cols) {
  FILE* fp = csv->fp;
  // first line
  dtBuf first = {0};
  int c;
  while ((c = fgetc(fp)) != EOF && c != '\n') {
    char ch = (char)c;
    dt_buf_put(&first, &ch, 1);
  }
  int header_newline = (c == '\n');
  if (ferror(fp)) {
    dt_buf_free(&first);
    return dt_error(DT_ERR_IO, "%s: cannot read: %s", csv->path, strerror(errno));
  }
  if (first.oom) {
    dt_buf_free(&first);
    return DT_ERR_NOMEM;
  }
  if (first.len && first.data[first.len - 1] == '\r') first.data[--first.len] = 0;
  if (first.len == 0 && !header_newline) {
    // empty file: write the header
    dt_buf_free(&first);
    if (fputs(header, fp) == EOF || fflush(fp) != 0)
      return dt_error(DT_ERR_IO, "%s: cannot write the header: %s", csv->path, strerror(errno));
    return DT_OK;
  }
  dtStatus s = check_header(csv->path, first.len ? first.data : "", cols, csv->n);
  dt_buf_free(&first);
  if (s) return s;
  // a row torn by a crash (no final newline) is dropped
  if (fseek(fp, 0, SEEK_END) != 0) return dt_error(DT_ERR_IO, "%s: cannot seek", csv->path);
  long end = ftell(fp);
  long keep = end;
  while (keep > 0) {
    if (fseek(fp, keep - 1, SEEK_SET) != 0) return dt_error(DT_ERR_IO, "%s: cannot seek", csv->path);
    if (fgetc(fp) == '\n') break;
    keep--;
  }
  if (!header_newline) {
    // the file is just the header without its newline
    if (fseek(fp, 0, SEEK_END) != 0 || fputc('\n', fp) == EOF || fflush(fp) != 0)
      return dt_error(DT_ERR_IO, "%s: cannot write: %s", csv->path, strerror(errno));
    return DT_OK;
  }
  if (keep < end) {
    fflush(fp);
    if (ftruncate(fileno(fp), keep) != 0)
      return dt_error(DT_ERR_IO, "%s: cannot drop the torn last row: %s", csv->path, strerror(errno));
  }
  if (fseek(fp, 0, SEEK_END) != 0) return dt_error(DT_ERR_IO, "%s: cannot seek", csv->path);
  return DT_OK;
}

dtStatus dt_csv_open(const char* path, const char* const* columns, int n, dtCsvMode mode,
                     dtCsv** out) {
  if (!out) return dt_error(DT_ERR_ARG, "dt_csv_open: out is NULL");
  *out = NULL;
  if (!path || !columns || n <= 0 || n > 1024)
    return dt_error(DT_ERR_ARG, "dt_csv_open: %s: need a path and 1..1024 columns", path ? path : "(null)");
  for (int k = 0; k < n; k++)
    if (!columns[k] || !*columns[k])
      return dt_error(DT_ERR_ARG, "%s: column %d has no name", path, k + 1);
  if (mode != DT_CSV_CREATE && mode != DT_CSV_RESUME)
    return dt_error(DT_ERR_ARG, "%s: invalid CSV mode %d", path, (int)mode);
  dtBuf header = {0};
  for (int k = 0; k < n; k++) {
    if (k) dt_buf_put(&header, ",", 1);
    put_cell(&header, columns[k]);
  }
  dt_buf_put(&header, "\n", 1);
  if (header.oom) {
    dt_buf_free(&header);
    return DT_ERR_NOMEM;
  }
  dtCsv* csv = dt_calloc(1, sizeof *csv);
  char* p = dt_strdup(path);
  if (!csv || !p) {
    dt_free(csv);
    dt_free(p);
    dt_buf_free(&header);
    return DT_ERR_NOMEM;
  }
  csv->path = p;
  csv->n = n;
  dtStatus s = DT_OK;
  if (mode == DT_CSV_RESUME) {
    csv->fp = fopen(path, "r+b");
    if (!csv->fp && errno == ENOENT) mode = DT_CSV_CREATE;
    else if (!csv->fp) s = dt_error(DT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    else s = resume(csv, header.data, columns);
  }
  if (!s && mode == DT_CSV_CREATE) {
    csv->fp = fopen(path, "wb");
    if (!csv->fp) s = dt_error(DT_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    else if (fputs(header.data, csv->fp) == EOF || fflush(csv->fp) != 0)
      s = dt_error(DT_ERR_IO, "%s: cannot write the header: %s", path, strerror(errno));
  }
  dt_buf_free(&header);
  if (s) {
    if (csv->fp) fclose(csv->fp);
    dt_free(csv->path);
    dt_free(csv);
    return s;
  }
  *out = csv;
  return DT_OK;
}

// write one finished line and flush it
static dtStatus put_line(dtCsv* csv, dtBuf* b) {
  dt_buf_put(b, "\n", 1);
  if (b->oom) return DT_ERR_NOMEM;
  if (fwrite(b->data, 1, b->len, csv->fp) != b->len || fflush(csv->fp) != 0)
    return dt_error(DT_ERR_IO, "%s: cannot append a row: %s", csv->path, strerror(errno));
  return DT_OK;
}

dtStatus dt_csv_row(dtCsv* csv, const double* values) {
  if (!csv || !values) return dt_error(DT_ERR_ARG, "dt_csv_row: NULL argument");
  dtBuf b = {0};
  char cell[40];
  for (int k = 0; k < csv->n; k++) {
    if (k) dt_buf_put(&b, ",", 1);
    format_double(values[k], cell, sizeof cell);
    dt_buf_puts(&b, cell);
  }
  dtStatus s = put_line(csv, &b);
  dt_buf_free(&b);
  return s;
}

dtStatus dt_csv_row_str(dtCsv* csv, const char* const* cells) {
  if (!csv || !cells) return dt_error(DT_ERR_ARG, "dt_csv_row_str: NULL argument");
  dtBuf b = {0};
  for (int k = 0; k < csv->n; k++) {
    if (k) dt_buf_put(&b, ",", 1);
    put_cell(&b, cells[k]);
  }
  dtStatus s = put_line(csv, &b);
  dt_buf_free(&b);
  return s;
}

int dt_csv_columns(const dtCsv* csv) { return csv ? csv->n : 0; }

dtStatus dt_csv_close(dtCsv* csv) {
  if (!csv) return DT_OK;
  dtStatus s = DT_OK;
  if (fclose(csv->fp) != 0) s = dt_error(DT_ERR_IO, "%s: close failed: %s", csv->path, strerror(errno));
  dt_free(csv->path);
  dt_free(csv);
  return s;
}
