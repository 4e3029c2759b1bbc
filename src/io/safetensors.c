// SPDX-License-Identifier: MIT
// safetensors reader (validates everything before trusting it) and atomic writer.
//
// The header parser is a strict JSON parser for what a header may hold: the top level must be
// an object of tensor entries and an optional "__metadata__" object of strings. Unknown fields
// inside a tensor entry are skipped like the reference implementation does, but they must
// still be valid JSON, without duplicate keys, nested at most DT_ST_MAX_DEPTH deep. Strings
// may not contain U+0000 (names are C strings).
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_internal.h"

// deepest JSON nesting accepted inside skipped fields
#define DT_ST_MAX_DEPTH 64

//---------------------------------------------------------------------------------------------
// dtypes

// rank: the order of the reference Dtype enum, which the Python writer sorts by (descending)
static const struct {
  const char* name;
  size_t size;
  int rank;
} dtype_table[DT_DTYPE_COUNT] = {
    [DT_DTYPE_F32] = {"F32", 4, 11},          [DT_DTYPE_F64] = {"F64", 8, 12},
    [DT_DTYPE_F16] = {"F16", 2, 7},           [DT_DTYPE_BF16] = {"BF16", 2, 8},
    [DT_DTYPE_I64] = {"I64", 8, 13},          [DT_DTYPE_I32] = {"I32", 4, 9},
    [DT_DTYPE_I16] = {"I16", 2, 5},           [DT_DTYPE_I8] = {"I8", 1, 2},
    [DT_DTYPE_U64] = {"U64", 8, 14},          [DT_DTYPE_U32] = {"U32", 4, 10},
    [DT_DTYPE_U16] = {"U16", 2, 6},           [DT_DTYPE_U8] = {"U8", 1, 1},
    [DT_DTYPE_BOOL] = {"BOOL", 1, 0},         [DT_DTYPE_F8_E4M3] = {"F8_E4M3", 1, 4},
    [DT_DTYPE_F8_E5M2] = {"F8_E5M2", 1, 3},
};

const char* dt_dtype_name(dtDtype dtype) {
  return ((unsigned)dtype < DT_DTYPE_COUNT) ? dtype_table[dtype].name : "?";
}

size_t dt_dtype_size(dtDtype dtype) {
  return ((unsigned)dtype < DT_DTYPE_COUNT) ? dtype_table[dtype].size : 0;
}

dtStatus dt_dtype_parse(const char* name, dtDtype* out) {
  if (!name || !out) return dt_error(DT_ERR_ARG, "dt_dtype_parse: NULL argument");
  for (int d = 0; d < DT_DTYPE_COUNT; d++) {
    if (strcmp(name, dtype_table[d].name) == 0) {
      *out = (dtDtype)d;
      return DT_OK;
    }
  }
  return dt_error(DT_ERR_NOT_FOUND, "unknown safetensors dtype '%.40s'", name);
}

//---------------------------------------------------------------------------------------------
// the handle

typedef struct stTensor {
  const char* name;
  dtDtype dtype;
  int ndim;
  int64_t shape[DT_ST_MAX_DIMS];
  int64_t numel;
  uint64_t begin, end;  // offsets into the data buffer
  size_t pos;           // byte of the header where the entry starts (for messages)
} stTensor;

typedef struct stMeta {
  const char* key;
  const char* value;
} stMeta;

struct dtSafetensors {
  char* label;                 // path or label, for messages
  const unsigned char* bytes;  // the whole file
  size_t size;
  void* owned;                 // dt_malloc'ed copy, or NULL
  void* map;                   // mmap'ed file, or NULL
  size_t map_size;
  const unsigned char* buffer;  // data buffer (after the header)
  size_t buffer_size;
  stTensor* tensors;           // sorted by name
  int n;
  size_t cap;
  stMeta* meta;                // sorted by key
  int n_meta;
  size_t meta_cap;
  char* strings;               // decoded JSON strings
};

//---------------------------------------------------------------------------------------------
// header parser

typedef struct Parser {
  dtSafetensors* st;
  const unsigned char* s;  // header text
  size_t n;
  size_t i;
  char* out;  // next free byte of st->strings
} Parser;

// record a header error at the current position, prefixed with the file name
static dtStatus perr(Parser* p, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static dtStatus perr(Parser* p, const char* fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return dt_error(DT_ERR_FORMAT, "%s: header byte %zu: %s", p->st->label, p->i, msg);
}

static void skip_ws(Parser* p) {
  while (p->i < p->n) {
    unsigned char c = p->s[p->i];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->i++;
  }
}

// the current character, or 0 at the end
static int peek(Parser* p) { return p->i < p->n ? p->s[p->i] : 0; }

// a printable description of the current character for messages
static const char* here(Parser* p, char* buf) {
  if (p->i >= p->n) return "end of header";
  unsigned char c = p->s[p->i];
  if (c >= 0x20 && c < 0x7f) {
    snprintf(buf, 16, "'%c'", c);
  } else {
    snprintf(buf, 16, "byte 0x%02x", c);
  }
  return buf;
}

// after an element: 1 if a ',' follows (consumed: another element), 0 if `close` follows
// (consumed: the container ends), -1 otherwise (the caller reports its own context)
static int next_item(Parser* p, char close) {
  skip_ws(p);
  char c = peek(p);
  if (c != ',' && c != close) return -1;
  p->i++;
  return c == ',';
}


static dtStatus expect(Parser* p, char c, const char* where) {
  skip_ws(p);
  if (peek(p) != c) {
    char b[16];
    return perr(p, "expected '%c' %s, found %s", c, where, here(p, b));
  }
  p->i++;
  return DT_OK;
}

static int hex4(const unsigned char* s, unsigned* out) {
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    unsigned c = s[k], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return 0;
    v = v * 16 + d;
  }
  *out = v;
  return 1;
}

static char* put_utf8(char* o, unsigned cp) {
  if (cp < 0x80) {
    *o++ = (char)cp;
  } else if (cp < 0x800) {
    *o++ = (char)(0xC0 | (cp >> 6));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *o++ = (char)(0xE0 | (cp >> 12));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *o++ = (char)(0xF0 | (cp >> 18));
    *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  }
  return o;
}

// parse a JSON string at the current position into st->strings (decoded never exceeds raw)
static dtStatus parse_string(Parser* p, const char** out, const char* what) {
  skip_ws(p);
  if (peek(p) != '"') {
    char b[16];
    return perr(p, "expected a string (%s), found %s", what, here(p, b));
  }
  size_t start = p->i++;
  char* o = p->out;
  char* begin = o;
  for (;;) {
    if (p->i >= p->n) {
      p->i = start;
      return perr(p, "unterminated string (%s)", what);
    }
    unsigned char c = p->s[p->i];
    if (c == '"') {
      p->i++;
      break;
    }
    if (c < 0x20) return perr(p, "control character 0x%02x in a string (%s)", c, what);
    if (c != '\\') {
      *o++ = (char)c;
      p->i++;
      continue;
    }
    // escapes
    if (p->n - p->i < 2) return perr(p, "truncated escape in a string (%s)", what);
    unsigned char e = p->s[p->i + 1];
    const char* simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      static const char decoded[] = "\"\\/\b\f\n\r\t";
      *o++ = decoded[simple - "\"\\/bfnrt"];
      p->i += 2;
      continue;
    }
    if (e != 'u') return perr(p, "invalid escape '\\%c' in a string (%s)", e >= 0x20 && e < 0x7f ? e : '?', what);
    unsigned cp;
    if (p->n - p->i < 6 || !hex4(p->s + p->i + 2, &cp))
      return perr(p, "invalid \\u escape in a string (%s)", what);
    p->i += 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
      p->i -= 6;
      return perr(p, "unpaired low surrogate \\u%04X in a string (%s)", cp, what);
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      unsigned lo;
      if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u' ||
          !hex4(p->s + p->i + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
        p->i -= 6;
        return perr(p, "unpaired high surrogate \\u%04X in a string (%s)", cp, what);
      }
      p->i += 6;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp == 0) {
      p->i -= 6;
      return perr(p, "\\u0000 in a string (%s): names and values may not contain NUL", what);
    }
    o = put_utf8(o, cp);
  }
  *o++ = 0;
  p->out = o;
  *out = begin;
  return DT_OK;
}

// a JSON number that must be a non-negative integer fitting in u64
static dtStatus parse_u64(Parser* p, uint64_t* out, const char* what, const char* tensor) {
  skip_ws(p);
  int c = peek(p);
  if (c == '-')
    return perr(p, "tensor '%.80s': %s must be non-negative", tensor, what);
  if (c < '0' || c > '9') {
    char b[16];
    return perr(p, "tensor '%.80s': expected an integer in %s, found %s", tensor, what, here(p, b));
  }
  size_t start = p->i;
  uint64_t v = 0;
  while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
    unsigned d = p->s[p->i] - '0';
    if (v > (UINT64_MAX - d) / 10) {
      p->i = start;
      return perr(p, "tensor '%.80s': integer in %s overflows 64 bits", tensor, what);
    }
    v = v * 10 + d;
    p->i++;
  }
  if (p->i - start > 1 && p->s[start] == '0') {
    p->i = start;
    return perr(p, "tensor '%.80s': leading zero in an integer of %s", tensor, what);
  }
  c = peek(p);
  if (c == '.' || c == 'e' || c == 'E')
    return perr(p, "tensor '%.80s': %s must hold integers, not fractions or exponents", tensor, what);
  *out = v;
  return DT_OK;
}

static int cmp_str_ptr(const void* a, const void* b) {
  return strcmp(*(const char* const*)a, *(const char* const*)b);
}

static dtStatus skip_value(Parser* p, int depth);

// skip a JSON number (full grammar)
static dtStatus skip_number(Parser* p) {
  size_t start = p->i;
  if (peek(p) == '-') p->i++;
  if (peek(p) == '0') {
    p->i++;
  } else if (peek(p) >= '1' && peek(p) <= '9') {
    while (peek(p) >= '0' && peek(p) <= '9') p->i++;
  } else {
    p->i = start;
    return perr(p, "invalid number");
  }
  if (peek(p) == '.') {
    p->i++;
    if (!(peek(p) >= '0' && peek(p) <= '9')) return perr(p, "invalid number: digits expected after '.'");
    while (peek(p) >= '0' && peek(p) <= '9') p->i++;
  }
  if (peek(p) == 'e' || peek(p) == 'E') {
    p->i++;
    if (peek(p) == '+' || peek(p) == '-') p->i++;
    if (!(peek(p) >= '0' && peek(p) <= '9')) return perr(p, "invalid number: digits expected in the exponent");
    while (peek(p) >= '0' && peek(p) <= '9') p->i++;
  }
  return DT_OK;
}

// skip an object, checking its keys are unique
static dtStatus skip_object(Parser* p, int depth) {
  p->i++;  // '{'
  const char** keys = NULL;
  size_t n = 0, cap = 0;
  dtStatus s = DT_OK;
  skip_ws(p);
  if (peek(p) == '}') {
    p->i++;
    return DT_OK;
  }
  for (;;) {
    const char* key;
    if ((s = parse_string(p, &key, "object key")) != DT_OK) break;
    if (!dt_grow((void**)&keys, &cap, n + 1, sizeof *keys)) {
      s = DT_ERR_NOMEM;
      break;
    }
    keys[n++] = key;
    if ((s = expect(p, ':', "after an object key")) != DT_OK) break;
    if ((s = skip_value(p, depth + 1)) != DT_OK) break;
    int more = next_item(p, '}');
    if (more > 0) continue;
    if (more == 0) break;
    char b[16];
    s = perr(p, "expected ',' or '}' in an object, found %s", here(p, b));
    break;
  }
  if (s == DT_OK && n > 1) {
    qsort(keys, n, sizeof *keys, cmp_str_ptr);
    for (size_t k = 1; k < n; k++) {
      if (strcmp(keys[k - 1], keys[k]) == 0) {
        s = perr(p, "duplicate key '%.80s' in a nested object", keys[k]);
        break;
      }
    }
  }
  dt_free(keys);
  return s;
}

// skip any JSON value (for fields we do not interpret)
static dtStatus skip_value(Parser* p, int depth) {
  skip_ws(p);
  if (depth > DT_ST_MAX_DEPTH) return perr(p, "JSON nested deeper than %d levels", DT_ST_MAX_DEPTH);
  int c = peek(p);
  if (c == '{') return skip_object(p, depth);
  if (c == '[') {
    p->i++;
    skip_ws(p);
    if (peek(p) == ']') {
      p->i++;
      return DT_OK;
    }
    for (;;) {
      dtStatus s = skip_value(p, depth + 1);
      if (s) return s;
      int more = next_item(p, ']');
      if (more > 0) continue;
      if (more == 0) return DT_OK;
      char b[16];
      return perr(p, "expected ',' or ']' in an array, found %s", here(p, b));
    }
  }
  if (c == '"') {
    const char* tmp;
    return parse_string(p, &tmp, "value");
  }
  if (c == '-' || (c >= '0' && c <= '9')) return skip_number(p);
  static const char* const words[] = {"true", "false", "null"};
  for (int k = 0; k < 3; k++) {
    size_t len = strlen(words[k]);
    if (p->n - p->i >= len && memcmp(p->s + p->i, words[k], len) == 0) {
      p->i += len;
      return DT_OK;
    }
  }
  char b[16];
  return perr(p, "expected a JSON value, found %s", here(p, b));
}

// an array of non-negative integers: at most max entries
static dtStatus parse_u64_array(Parser* p, uint64_t* vals, int max, int* count, const char* what,
                                const char* tensor) {
  skip_ws(p);
  if (peek(p) != '[') {
    char b[16];
    return perr(p, "tensor '%.80s': %s must be an array, found %s", tensor, what, here(p, b));
  }
  p->i++;
  int k = 0;
  skip_ws(p);
  if (peek(p) == ']') {
    p->i++;
    *count = 0;
    return DT_OK;
  }
  for (;;) {
    if (k == max) return perr(p, "tensor '%.80s': %s has more than %d entries", tensor, what, max);
    dtStatus s = parse_u64(p, &vals[k++], what, tensor);
    if (s) return s;
    int more = next_item(p, ']');
    if (more > 0) continue;
    if (more == 0) break;
    char b[16];
    return perr(p, "tensor '%.80s': expected ',' or ']' in %s, found %s", tensor, what, here(p, b));
  }
  *count = k;
  return DT_OK;
}

// one tensor entry {"dtype": .., "shape": [..], "data_offsets": [b, e]} (other fields skipped)
static dtStatus parse_tensor(Parser* p, const char* name) {
  dtSafetensors* st = p->st;
  skip_ws(p);
  size_t pos = p->i;
  if (peek(p) != '{') {
    char b[16];
    return perr(p, "tensor '%.80s': entry must be an object, found %s", name, here(p, b));
  }
  p->i++;
  if (!dt_grow((void**)&st->tensors, &st->cap, (size_t)st->n + 1, sizeof *st->tensors))
    return DT_ERR_NOMEM;
  if (st->n == INT32_MAX) return perr(p, "too many tensors");
  stTensor* t = &st->tensors[st->n];
  memset(t, 0, sizeof *t);
  t->name = name;
  t->pos = pos;
  int have_dtype = 0, have_shape = 0, have_offsets = 0;
  skip_ws(p);
  if (peek(p) == '}') {
    p->i++;
  } else {
    for (;;) {
      const char* field;
      dtStatus s = parse_string(p, &field, "field name");
      if (s) return s;
      if ((s = expect(p, ':', "after a field name"))) return s;
      int* seen = NULL;
      if (strcmp(field, "dtype") == 0) seen = &have_dtype;
      else if (strcmp(field, "shape") == 0) seen = &have_shape;
      else if (strcmp(field, "data_offsets") == 0) seen = &have_offsets;
      if (seen && *seen) return perr(p, "tensor '%.80s': duplicate field '%s'", name, field);
      if (seen) *seen = 1;
      if (seen == &have_dtype) {
        const char* dtype;
        if ((s = parse_string(p, &dtype, "dtype"))) return s;
        int d;
        for (d = 0; d < DT_DTYPE_COUNT; d++)
          if (strcmp(dtype, dtype_table[d].name) == 0) break;
        if (d == DT_DTYPE_COUNT)
          return perr(p, "tensor '%.80s': unknown dtype '%.40s'", name, dtype);
        t->dtype = (dtDtype)d;
      } else if (seen == &have_shape) {
        uint64_t dims[DT_ST_MAX_DIMS];
        if ((s = parse_u64_array(p, dims, DT_ST_MAX_DIMS, &t->ndim, "shape", name))) return s;
        for (int k = 0; k < t->ndim; k++) {
          if (dims[k] > (uint64_t)INT64_MAX)
            return perr(p, "tensor '%.80s': shape extent %llu is too large", name,
                        (unsigned long long)dims[k]);
          t->shape[k] = (int64_t)dims[k];
        }
      } else if (seen == &have_offsets) {
        uint64_t offs[2];
        int count;
        if ((s = parse_u64_array(p, offs, 2, &count, "data_offsets", name))) return s;
        if (count != 2)
          return perr(p, "tensor '%.80s': data_offsets must hold exactly 2 integers, not %d", name, count);
        t->begin = offs[0];
        t->end = offs[1];
      } else if ((s = skip_value(p, 2))) {
        return s;
      }
      int more = next_item(p, '}');
      if (more > 0) continue;
      if (more == 0) break;
      char b[16];
      return perr(p, "tensor '%.80s': expected ',' or '}', found %s", name, here(p, b));
    }
  }
  if (!have_dtype || !have_shape || !have_offsets) {
    p->i = pos;
    return perr(p, "tensor '%.80s': missing field '%s'", name,
                !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
  }
  st->n++;
  return DT_OK;
}

// "__metadata__": null or an object of strings
static dtStatus parse_metadata(Parser* p) {
  dtSafetensors* st = p->st;
  skip_ws(p);
  if (p->n - p->i >= 4 && memcmp(p->s + p->i, "null", 4) == 0) {
    p->i += 4;
    return DT_OK;
  }
  if (peek(p) != '{') {
    char b[16];
    return perr(p, "__metadata__ must be an object of strings, found %s", here(p, b));
  }
  p->i++;
  skip_ws(p);
  if (peek(p) == '}') {
    p->i++;
    return DT_OK;
  }
  for (;;) {
    const char *key, *value;
    dtStatus s = parse_string(p, &key, "metadata key");
    if (s) return s;
    if ((s = expect(p, ':', "after a metadata key"))) return s;
    skip_ws(p);
    if (peek(p) != '"')
      return perr(p, "__metadata__ key '%.80s': value must be a string", key);
    if ((s = parse_string(p, &value, "metadata value"))) return s;
    if (!dt_grow((void**)&st->meta, &st->meta_cap, (size_t)st->n_meta + 1, sizeof *st->meta))
      return DT_ERR_NOMEM;
    if (st->n_meta == INT32_MAX) return perr(p, "too many metadata entries");
    st->meta[st->n_meta++] = (stMeta){key, value};
    int more = next_item(p, '}');
    if (more > 0) continue;
    if (more == 0) return DT_OK;
    char b[16];
    return perr(p, "__metadata__: expected ',' or '}', found %s", here(p, b));
  }
}

// the whole header: {"name": entry, ..., "__metadata__": {...}} then only whitespace
static dtStatus parse_header(Parser* p) {
  p->i = 1;  // the caller checked the '{'
  int seen_meta = 0;
  skip_ws(p);
  if (peek(p) == '}') {
    p->i++;
  } else {
    for (;;) {
      const char* key;
      dtStatus s = parse_string(p, &key, "tensor name");
      if (s) return s;
      if ((s = expect(p, ':', "after a tensor name"))) return s;
      if (strcmp(key, "__metadata__") == 0) {
        if (seen_meta) return perr(p, "duplicate key '__metadata__'");
        seen_meta = 1;
        s = parse_metadata(p);
      } else {
        s = parse_tensor(p, key);
      }
      if (s) return s;
      int more = next_item(p, '}');
      if (more > 0) continue;
      if (more == 0) break;
      char b[16];
      return perr(p, "expected ',' or '}' after the entry of '%.80s', found %s", key, here(p, b));
    }
  }
  skip_ws(p);
  if (p->i != p->n) {
    char b[16];
    return perr(p, "trailing characters after the header object (%s)", here(p, b));
  }
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// validation of the parsed entries against the buffer

static int cmp_by_offset(const void* a, const void* b) {
  const stTensor *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int cmp_by_name(const void* a, const void* b) {
  return strcmp(((const stTensor*)a)->name, ((const stTensor*)b)->name);
}

static int cmp_meta(const void* a, const void* b) {
  return strcmp(((const stMeta*)a)->key, ((const stMeta*)b)->key);
}

static void shape_text(const int64_t* shape, int ndim, char* buf, size_t n) {
  size_t used = 0;
  used += (size_t)snprintf(buf, n, "[");
  for (int k = 0; k < ndim && used < n; k++)
    used += (size_t)snprintf(buf + used, n - used, k ? ", %lld" : "%lld", (long long)shape[k]);
  if (used < n) snprintf(buf + used, n - used, "]");
}

static dtStatus validate(dtSafetensors* st) {
  const char* L = st->label;
  // names and metadata keys are unique
  if (st->n > 1) qsort(st->tensors, (size_t)st->n, sizeof *st->tensors, cmp_by_name);
  for (int k = 1; k < st->n; k++)
    if (strcmp(st->tensors[k - 1].name, st->tensors[k].name) == 0)
      return dt_error(DT_ERR_FORMAT, "%s: duplicate tensor name '%.80s'", L, st->tensors[k].name);
  // sizes: shape product and byte count without overflow, offsets inside the buffer
  for (int k = 0; k < st->n; k++) {
    stTensor* t = &st->tensors[k];
    uint64_t numel = 1;
    int zero = 0;
    for (int d = 0; d < t->ndim; d++) zero |= (t->shape[d] == 0);
    for (int d = 0; d < t->ndim && !zero; d++) {
      if (__builtin_mul_overflow(numel, (uint64_t)t->shape[d], &numel) || numel > (uint64_t)INT64_MAX) {
        char sh[160];
        shape_text(t->shape, t->ndim, sh, sizeof sh);
        return dt_error(DT_ERR_FORMAT, "%s: tensor '%.80s': shape %s has too many elements", L,
                        t->name, sh);
      }
    }
    if (zero) numel = 0;
    t->numel = (int64_t)numel;
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, (uint64_t)dtype_table[t->dtype].size, &nbytes))
      return dt_error(DT_ERR_FORMAT, "%s: tensor '%.80s': byte size overflows", L, t->name);
    if (t->begin > t->end)
      return dt_error(DT_ERR_FORMAT, "%s: tensor '%.80s': data_offsets [%llu, %llu] are reversed", L,
                      t->name, (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > st->buffer_size)
      return dt_error(DT_ERR_FORMAT,
                      "%s: tensor '%.80s': data_offsets [%llu, %llu] go past the end of the "
                      "%zu-byte data buffer (truncated file?)",
                      L, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                      st->buffer_size);
    if (t->end - t->begin != nbytes) {
      char sh[160];
      shape_text(t->shape, t->ndim, sh, sizeof sh);
      return dt_error(DT_ERR_FORMAT,
                      "%s: tensor '%.80s': data_offsets [%llu, %llu] span %llu bytes but %s %s "
                      "needs %llu",
                      L, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                      (unsigned long long)(t->end - t->begin), dtype_table[t->dtype].name, sh,
                      (unsigned long long)nbytes);
    }
  }
  // the tensors tile the buffer: no overlap, no hole, nothing after the last one
  if (st->n > 1) qsort(st->tensors, (size_t)st->n, sizeof *st->tensors, cmp_by_offset);
  uint64_t expected = 0;
  const char* prev = NULL;
  for (int k = 0; k < st->n; k++) {
    stTensor* t = &st->tensors[k];
    if (t->begin < expected)
      return dt_error(DT_ERR_FORMAT, "%s: tensor '%.80s' (bytes %llu..%llu) overlaps tensor '%.80s'",
                      L, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                      prev ? prev : "?");
    if (t->begin > expected)
      return dt_error(DT_ERR_FORMAT,
                      "%s: hole of %llu bytes in the data buffer before tensor '%.80s' (at %llu)",
                      L, (unsigned long long)(t->begin - expected), t->name,
                      (unsigned long long)t->begin);
    expected = t->end;
    prev = t->name;
  }
  if (expected != st->buffer_size)
    return dt_error(DT_ERR_FORMAT,
                    "%s: %llu trailing bytes after the last tensor%s%.80s%s in the data buffer", L,
                    (unsigned long long)(st->buffer_size - expected), prev ? " '" : "",
                    prev ? prev : "", prev ? "'" : "");
  // back to name order for lookups
  if (st->n > 1) qsort(st->tensors, (size_t)st->n, sizeof *st->tensors, cmp_by_name);
  if (st->n_meta > 1) qsort(st->meta, (size_t)st->n_meta, sizeof *st->meta, cmp_meta);
  for (int k = 1; k < st->n_meta; k++)
    if (strcmp(st->meta[k - 1].key, st->meta[k].key) == 0)
      return dt_error(DT_ERR_FORMAT, "%s: duplicate __metadata__ key '%.80s'", L, st->meta[k].key);
  return DT_OK;
}

// check the framing, parse and validate the header of st->bytes[0..size)
static dtStatus load(dtSafetensors* st) {
  const char* L = st->label;
  if (st->size < 8)
    return dt_error(DT_ERR_FORMAT, "%s: file too short (%zu bytes) for the 8-byte header length", L,
                    st->size);
  uint64_t n = 0;
  for (int k = 7; k >= 0; k--) n = (n << 8) | st->bytes[k];
  if (n > DT_ST_MAX_HEADER)
    return dt_error(DT_ERR_FORMAT, "%s: header length %llu exceeds the limit of %llu bytes", L,
                    (unsigned long long)n, (unsigned long long)DT_ST_MAX_HEADER);
  if (n > st->size - 8)
    return dt_error(DT_ERR_FORMAT,
                    "%s: header length %llu exceeds the %zu bytes that follow it (truncated file?)",
                    L, (unsigned long long)n, st->size - 8);
  const unsigned char* h = st->bytes + 8;
  if (n == 0 || h[0] != '{')
    return dt_error(DT_ERR_FORMAT, "%s: header does not start with '{'", L);
  size_t valid = dt_utf8_valid_prefix(h, (size_t)n);
  if (valid != n)
    return dt_error(DT_ERR_FORMAT, "%s: header byte %zu: invalid UTF-8", L, valid);
  st->buffer = h + n;
  st->buffer_size = st->size - 8 - (size_t)n;
  st->strings = dt_malloc((size_t)n + 1);
  if (!st->strings) return DT_ERR_NOMEM;
  Parser p = {st, h, (size_t)n, 0, st->strings};
  dtStatus s = parse_header(&p);
  if (s) return s;
  return validate(st);
}

static dtSafetensors* handle_new(const char* label) {
  dtSafetensors* st = dt_calloc(1, sizeof *st);
  if (!st) return NULL;
  st->label = dt_strdup(label);
  if (!st->label) {
    dt_free(st);
    return NULL;
  }
  return st;
}

void dt_st_close(dtSafetensors* st) {
  if (!st) return;
  if (st->map) munmap(st->map, st->map_size);
  dt_free(st->owned);
  dt_free(st->tensors);
  dt_free(st->meta);
  dt_free(st->strings);
  dt_free(st->label);
  dt_free(st);
}

dtStatus dt_st_open_memory(const void* data, size_t size, const char* label, int copy,
                           dtSafetensors** out) {
  if (!out) return dt_error(DT_ERR_ARG, "dt_st_open_memory: out is NULL");
  *out = NULL;
  if (!data && size) return dt_error(DT_ERR_ARG, "dt_st_open_memory: data is NULL");
  dtSafetensors* st = handle_new(label ? label : "<memory>");
  if (!st) return DT_ERR_NOMEM;
  if (copy && size) {
    st->owned = dt_malloc(size);
    if (!st->owned) {
      dt_st_close(st);
      return DT_ERR_NOMEM;
    }
    memcpy(st->owned, data, size);
    st->bytes = st->owned;
  } else {
    st->bytes = data;
  }
  st->size = size;
  dtStatus s = load(st);
  if (s) {
    dt_st_close(st);
    return s;
  }
  *out = st;
  return DT_OK;
}

dtStatus dt_st_open(const char* path, dtSafetensors** out) {
  if (!out) return dt_error(DT_ERR_ARG, "dt_st_open: out is NULL");
  *out = NULL;
  if (!path) return dt_error(DT_ERR_ARG, "dt_st_open: path is NULL");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return dt_error(DT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return dt_error(DT_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return dt_error(DT_ERR_IO, "%s: not a regular file", path);
  }
  dtSafetensors* st = handle_new(path);
  if (!st) {
    close(fd);
    return DT_ERR_NOMEM;
  }
  st->size = (size_t)sb.st_size;
  if (st->size > 0) {
    // map the file read-only: the data of every tensor is used in place
    void* m = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      int e = errno;
      close(fd);
      dt_st_close(st);
      return dt_error(DT_ERR_IO, "%s: cannot map %zu bytes: %s", path, (size_t)sb.st_size,
                      strerror(e));
    }
    st->map = m;
    st->map_size = st->size;
    st->bytes = m;
  } else {
    st->bytes = (const unsigned char*)"";
  }
  close(fd);
  dtStatus s = load(st);
  if (s) {
    dt_st_close(st);
    return s;
  }
  *out = st;
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// queries

int dt_st_count(const dtSafetensors* st) { return st ? st->n : 0; }

int dt_st_metadata_count(const dtSafetensors* st) { return st ? st->n_meta : 0; }

const char* dt_st_path(const dtSafetensors* st) { return st ? st->label : ""; }

static void fill_info(const dtSafetensors* st, const stTensor* t, dtStInfo* info) {
  info->name = t->name;
  info->dtype = t->dtype;
  info->ndim = t->ndim;
  for (int d = 0; d < DT_ST_MAX_DIMS; d++) info->shape[d] = d < t->ndim ? t->shape[d] : 0;
  info->numel = t->numel;
  info->nbytes = (size_t)(t->end - t->begin);
  info->data = st->buffer + t->begin;
}

dtStatus dt_st_info(const dtSafetensors* st, int i, dtStInfo* info) {
  if (!st || !info) return dt_error(DT_ERR_ARG, "dt_st_info: NULL argument");
  if (i < 0 || i >= st->n)
    return dt_error(DT_ERR_ARG, "%s: tensor index %d out of range [0, %d)", st->label, i, st->n);
  fill_info(st, &st->tensors[i], info);
  return DT_OK;
}

static const stTensor* lookup(const dtSafetensors* st, const char* name) {
  int lo = 0, hi = st->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int c = strcmp(name, st->tensors[mid].name);
    if (c == 0) return &st->tensors[mid];
    if (c < 0) hi = mid - 1;
    else lo = mid + 1;
  }
  return NULL;
}

dtStatus dt_st_find(const dtSafetensors* st, const char* name, dtStInfo* info) {
  if (!st || !name) return dt_error(DT_ERR_ARG, "dt_st_find: NULL argument");
  const stTensor* t = lookup(st, name);
  if (!t) return dt_error(DT_ERR_NOT_FOUND, "%s: no tensor named '%.80s'", st->label, name);
  if (info) fill_info(st, t, info);
  return DT_OK;
}

dtStatus dt_st_metadata_at(const dtSafetensors* st, int i, const char** key, const char** value) {
  if (!st) return dt_error(DT_ERR_ARG, "dt_st_metadata_at: NULL handle");
  if (i < 0 || i >= st->n_meta)
    return dt_error(DT_ERR_ARG, "%s: metadata index %d out of range [0, %d)", st->label, i,
                    st->n_meta);
  if (key) *key = st->meta[i].key;
  if (value) *value = st->meta[i].value;
  return DT_OK;
}

const char* dt_st_metadata(const dtSafetensors* st, const char* key) {
  if (!st || !key) return NULL;
  int lo = 0, hi = st->n_meta - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int c = strcmp(key, st->meta[mid].key);
    if (c == 0) return st->meta[mid].value;
    if (c < 0) hi = mid - 1;
    else lo = mid + 1;
  }
  return NULL;
}

//---------------------------------------------------------------------------------------------
// conversion to float32

static uint16_t load_u16(const unsigned char* p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t load_u32(const unsigned char* p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t load_u64(const unsigned char* p) {
  return (uint64_t)load_u32(p) | ((uint64_t)load_u32(p + 4) << 32);
}

static float bits_f32(uint32_t b) {
  float f;
  memcpy(&f, &b, 4);
  return f;
}

// IEEE binary16 to binary32, exact (subnormals, infinities and NaN payloads kept)
static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  if (exp == 0) {
    if (mant == 0) return bits_f32(sign);
    exp = 127 - 15 + 1;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      exp--;
    }
    mant &= 0x3FFu;
    return bits_f32(sign | (exp << 23) | (mant << 13));
  }
  if (exp == 31) return bits_f32(sign | 0x7F800000u | (mant << 13));
  return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

static int host_little_endian(void) {
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

static void shape_text_int(const int* shape, int ndim, char* buf, size_t n) {
  int64_t s[DT_ST_MAX_DIMS];
  for (int k = 0; k < ndim && k < DT_ST_MAX_DIMS; k++) s[k] = shape[k];
  shape_text(s, ndim < DT_ST_MAX_DIMS ? ndim : DT_ST_MAX_DIMS, buf, n);
}

// check that t can be read as float32 with the given shape
static dtStatus check_f32(const dtSafetensors* st, const stTensor* t, int ndim, const int* shape,
                          const char* param) {
  int ok = (ndim == t->ndim);
  for (int d = 0; ok && d < ndim; d++) ok = (shape[d] == t->shape[d]);
  if (!ok) {
    char have[160], want[160];
    shape_text(t->shape, t->ndim, have, sizeof have);
    shape_text_int(shape, ndim, want, sizeof want);
    return dt_error(DT_ERR_SHAPE, "%s: tensor '%.80s' has shape %s but %s%s%s expects %s",
                    st->label, t->name, have, param ? "parameter '" : "the caller",
                    param ? param : "", param ? "'" : "", want);
  }
  if (t->dtype != DT_DTYPE_F32 && t->dtype != DT_DTYPE_F64 && t->dtype != DT_DTYPE_F16 &&
      t->dtype != DT_DTYPE_BF16)
    return dt_error(DT_ERR_FORMAT,
                    "%s: tensor '%.80s' has dtype %s; only F32, F64, F16 and BF16 convert to float32",
                    st->label, t->name, dtype_table[t->dtype].name);
  if (t->dtype == DT_DTYPE_F64) {
    const unsigned char* src = st->buffer + t->begin;
    for (int64_t k = 0; k < t->numel; k++) {
      uint64_t b = load_u64(src + 8 * k);
      double v;
      memcpy(&v, &b, 8);
      if (isfinite(v) && fabs(v) > FLT_MAX)
        return dt_error(DT_ERR_NONFINITE,
                        "%s: tensor '%.80s': F64 value %g at index %lld overflows float32",
                        st->label, t->name, v, (long long)k);
    }
  }
  return DT_OK;
}

// convert t into dst (check_f32 passed)
static void convert_f32(const dtSafetensors* st, const stTensor* t, float* dst) {
  const unsigned char* src = st->buffer + t->begin;
  int64_t n = t->numel;
  switch (t->dtype) {
    case DT_DTYPE_F32:
      if (host_little_endian()) {
        if (n) memcpy(dst, src, (size_t)n * 4);
      } else {
        for (int64_t k = 0; k < n; k++) dst[k] = bits_f32(load_u32(src + 4 * k));
      }
      break;
    case DT_DTYPE_F64:
      for (int64_t k = 0; k < n; k++) {
        uint64_t b = load_u64(src + 8 * k);
        double v;
        memcpy(&v, &b, 8);
        dst[k] = (float)v;
      }
      break;
    case DT_DTYPE_F16:
      for (int64_t k = 0; k < n; k++) dst[k] = half_to_float(load_u16(src + 2 * k));
      break;
    case DT_DTYPE_BF16:
      for (int64_t k = 0; k < n; k++) dst[k] = bits_f32((uint32_t)load_u16(src + 2 * k) << 16);
      break;
    default:
      break;
  }
}

dtStatus dt_st_read_f32(const dtSafetensors* st, const char* name, float* dst, int ndim,
                        const int* shape) {
  if (!st || !name || (!shape && ndim > 0))
    return dt_error(DT_ERR_ARG, "dt_st_read_f32: NULL argument");
  const stTensor* t = lookup(st, name);
  if (!t) return dt_error(DT_ERR_NOT_FOUND, "%s: no tensor named '%.80s'", st->label, name);
  if (!dst && t->numel > 0) return dt_error(DT_ERR_ARG, "dt_st_read_f32: dst is NULL");
  dtStatus s = check_f32(st, t, ndim, shape, NULL);
  if (s) return s;
  convert_f32(st, t, dst);
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// writer

// JSON string with the escapes serde_json uses
static void json_string(dtBuf* b, const char* s) {
  dt_buf_put(b, "\"", 1);
  for (const unsigned char* c = (const unsigned char*)s; *c; c++) {
    switch (*c) {
      case '"': dt_buf_put(b, "\\\"", 2); break;
      case '\\': dt_buf_put(b, "\\\\", 2); break;
      case '\b': dt_buf_put(b, "\\b", 2); break;
      case '\f': dt_buf_put(b, "\\f", 2); break;
      case '\n': dt_buf_put(b, "\\n", 2); break;
      case '\r': dt_buf_put(b, "\\r", 2); break;
      case '\t': dt_buf_put(b, "\\t", 2); break;
      default:
        if (*c < 0x20) dt_buf_printf(b, "\\u%04x", *c);
        else dt_buf_put(b, c, 1);
    }
  }
  dt_buf_put(b, "\"", 1);
}

typedef struct wEntry {
  const dtStEntry* e;
  uint64_t nbytes;
} wEntry;

static int cmp_write_order(const void* a, const void* b) {
  const dtStEntry *x = ((const wEntry*)a)->e, *y = ((const wEntry*)b)->e;
  int rx = dtype_table[x->dtype].rank, ry = dtype_table[y->dtype].rank;
  if (rx != ry) return ry - rx;
  return strcmp(x->name, y->name);
}

static int cmp_wentry_name(const void* a, const void* b) {
  return strcmp(((const wEntry*)a)->e->name, ((const wEntry*)b)->e->name);
}

static int valid_utf8(const char* s) {
  size_t n = strlen(s);
  return dt_utf8_valid_prefix((const unsigned char*)s, n) == n;
}

// check every entry and compute byte sizes before touching the disk
static dtStatus check_entries(const char* path, const dtStEntry* entries, int n,
                              const char* const* kv, int n_meta, wEntry* w) {
  for (int i = 0; i < n; i++) {
    const dtStEntry* e = &entries[i];
    if (!e->name) return dt_error(DT_ERR_ARG, "%s: entry %d has no name", path, i);
    if (!valid_utf8(e->name))
      return dt_error(DT_ERR_ARG, "%s: entry %d: name is not valid UTF-8", path, i);
    if (strcmp(e->name, "__metadata__") == 0)
      return dt_error(DT_ERR_ARG, "%s: '__metadata__' is reserved and cannot name a tensor", path);
    if ((unsigned)e->dtype >= DT_DTYPE_COUNT)
      return dt_error(DT_ERR_ARG, "%s: tensor '%.80s': invalid dtype %d", path, e->name, (int)e->dtype);
    if (e->ndim < 0 || e->ndim > DT_ST_MAX_DIMS || (e->ndim > 0 && !e->shape))
      return dt_error(DT_ERR_ARG, "%s: tensor '%.80s': invalid ndim %d or NULL shape", path,
                      e->name, e->ndim);
    uint64_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
      if (e->shape[d] < 0)
        return dt_error(DT_ERR_ARG, "%s: tensor '%.80s': negative extent %d", path, e->name,
                        e->shape[d]);
      if (__builtin_mul_overflow(numel, (uint64_t)e->shape[d], &numel))
        return dt_error(DT_ERR_ARG, "%s: tensor '%.80s': too many elements", path, e->name);
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, (uint64_t)dtype_table[e->dtype].size, &nbytes) ||
        nbytes > (uint64_t)INT64_MAX)
      return dt_error(DT_ERR_ARG, "%s: tensor '%.80s': too many bytes", path, e->name);
    if (nbytes && !e->data)
      return dt_error(DT_ERR_ARG, "%s: tensor '%.80s': data is NULL", path, e->name);
    w[i] = (wEntry){e, nbytes};
  }
  for (int i = 0; i < 2 * n_meta; i++) {
    if (!kv[i])
      return dt_error(DT_ERR_ARG, "%s: metadata %s %d is NULL", path, i % 2 ? "value" : "key", i / 2);
    if (!valid_utf8(kv[i]))
      return dt_error(DT_ERR_ARG, "%s: metadata %s '%.80s' is not valid UTF-8", path,
                      i % 2 ? "value" : "key", kv[i]);
  }
  for (int i = 0; i < n_meta; i++)
    for (int j = 0; j < i; j++)
      if (strcmp(kv[2 * i], kv[2 * j]) == 0)
        return dt_error(DT_ERR_ARG, "%s: duplicate metadata key '%.80s'", path, kv[2 * i]);
  // names must be unique: check on a name-sorted copy
  if (n > 1) {
    wEntry* byname = dt_malloc((size_t)n * sizeof *byname);
    if (!byname) return DT_ERR_NOMEM;
    memcpy(byname, w, (size_t)n * sizeof *byname);
    qsort(byname, (size_t)n, sizeof *byname, cmp_wentry_name);
    for (int i = 1; i < n; i++) {
      if (strcmp(byname[i - 1].e->name, byname[i].e->name) == 0) {
        dtStatus s = dt_error(DT_ERR_ARG, "%s: duplicate tensor name '%.80s'", path, byname[i].e->name);
        dt_free(byname);
        return s;
      }
    }
    dt_free(byname);
  }
  return DT_OK;
}

// write nbytes of data as little-endian elements of elem bytes
static void write_le(dtAtomicFile* af, const void* data, uint64_t nbytes, size_t elem) {
  if (host_little_endian() || elem == 1) {
    dt_atomic_write(af, data, (size_t)nbytes);
    return;
  }
  unsigned char chunk[4096];
  const unsigned char* src = data;
  size_t per = sizeof chunk / elem * elem;
  for (uint64_t off = 0; off < nbytes; off += per) {
    size_t len = (size_t)((nbytes - off < per) ? nbytes - off : per);
    for (size_t k = 0; k < len; k += elem)
      for (size_t b = 0; b < elem; b++) chunk[k + b] = src[off + k + elem - 1 - b];
    dt_atomic_write(af, chunk, len);
  }
}

dtStatus dt_st_write(const char* path, const dtStEntry* entries, int n, const char* const* meta_kv,
                     int n_meta) {
  if (!path) return dt_error(DT_ERR_ARG, "dt_st_write: path is NULL");
  if (n < 0 || (n > 0 && !entries) || n_meta < 0 || (n_meta > 0 && !meta_kv))
    return dt_error(DT_ERR_ARG, "%s: invalid entry or metadata count", path);
  wEntry* w = dt_malloc((size_t)(n ? n : 1) * sizeof *w);
  if (!w) return DT_ERR_NOMEM;
  dtStatus s = check_entries(path, entries, n, meta_kv, n_meta, w);
  if (s) {
    dt_free(w);
    return s;
  }
  // layout: decreasing dtype rank, then name (the Python library's order)
  if (n > 1) qsort(w, (size_t)n, sizeof *w, cmp_write_order);
  dtBuf h = {0};
  dt_buf_put(&h, "{", 1);
  int first = 1;
  if (n_meta > 0) {
    dt_buf_puts(&h, "\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
      if (i) dt_buf_put(&h, ",", 1);
      json_string(&h, meta_kv[2 * i]);
      dt_buf_put(&h, ":", 1);
      json_string(&h, meta_kv[2 * i + 1]);
    }
    dt_buf_put(&h, "}", 1);
    first = 0;
  }
  uint64_t offset = 0;
  for (int i = 0; i < n; i++) {
    const dtStEntry* e = w[i].e;
    if (!first) dt_buf_put(&h, ",", 1);
    first = 0;
    json_string(&h, e->name);
    dt_buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dtype_table[e->dtype].name);
    for (int d = 0; d < e->ndim; d++) dt_buf_printf(&h, d ? ",%d" : "%d", e->shape[d]);
    dt_buf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                  (unsigned long long)(offset + w[i].nbytes));
    offset += w[i].nbytes;
  }
  dt_buf_put(&h, "}", 1);
  while (!h.oom && h.len % 8) dt_buf_put(&h, " ", 1);
  if (h.oom) {
    dt_buf_free(&h);
    dt_free(w);
    return dt_error(DT_ERR_NOMEM, "%s: out of memory building the header", path);
  }
  if (h.len > DT_ST_MAX_HEADER) {
    dt_buf_free(&h);
    dt_free(w);
    return dt_error(DT_ERR_ARG, "%s: header of %zu bytes exceeds the safetensors limit", path, h.len);
  }
  dtAtomicFile af;
  s = dt_atomic_begin(&af, path);
  if (s == DT_OK) {
    unsigned char len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)h.len >> (8 * k));
    dt_atomic_write(&af, len8, 8);
    dt_atomic_write(&af, h.data, h.len);
    for (int i = 0; i < n; i++)
      if (w[i].nbytes) write_le(&af, w[i].e->data, w[i].nbytes, dtype_table[w[i].e->dtype].size);
    s = dt_atomic_commit(&af);
  }
  dt_buf_free(&h);
  dt_free(w);
  return s;
}

//---------------------------------------------------------------------------------------------
// parameters

dtStatus dt_params_save(const char* path, dtTensor* const* params, int n,
                        const char* const* meta_kv, int n_meta) {
  if (!path) return dt_error(DT_ERR_ARG, "dt_params_save: path is NULL");
  if (n < 0 || (n > 0 && !params)) return dt_error(DT_ERR_ARG, "%s: invalid parameter list", path);
  dtStEntry* e = dt_calloc((size_t)(n ? n : 1), sizeof *e);
  if (!e) return DT_ERR_NOMEM;
  for (int i = 0; i < n; i++) {
    const dtTensor* p = params[i];
    if (!p || !p->name) {
      dt_free(e);
      return dt_error(DT_ERR_ARG, "%s: parameter %d is NULL or has no name", path, i);
    }
    e[i] = (dtStEntry){p->name, DT_DTYPE_F32, p->ndim, p->shape, p->val};
  }
  dtStatus s = dt_st_write(path, e, n, meta_kv, n_meta);
  dt_free(e);
  return s;
}

// append a name to a comma-separated list of at most 8 names
static void list_add(dtBuf* b, int* count, const char* name) {
  if (*count < 8) {
    if (*count) dt_buf_puts(b, ", ");
    dt_buf_printf(b, "'%.60s'", name);
  } else if (*count == 8) {
    dt_buf_puts(b, ", ...");
  }
  (*count)++;
}

static int cmp_param_name(const void* a, const void* b) {
  return strcmp((*(dtTensor* const*)a)->name, (*(dtTensor* const*)b)->name);
}

dtStatus dt_st_load_params(const dtSafetensors* st, dtTensor* const* params, int n, int flags) {
  if (!st) return dt_error(DT_ERR_ARG, "dt_st_load_params: NULL handle");
  if (n < 0 || (n > 0 && !params))
    return dt_error(DT_ERR_ARG, "%s: invalid parameter list", st->label);
  for (int i = 0; i < n; i++)
    if (!params[i] || !params[i]->name || (!params[i]->val && params[i]->size > 0))
      return dt_error(DT_ERR_ARG, "%s: parameter %d is NULL, unnamed or has no values", st->label, i);
  dtTensor** sorted = dt_malloc((size_t)(n ? n : 1) * sizeof *sorted);
  if (!sorted) return DT_ERR_NOMEM;
  if (n) memcpy(sorted, params, (size_t)n * sizeof *sorted);
  if (n > 1) qsort(sorted, (size_t)n, sizeof *sorted, cmp_param_name);
  dtStatus s = DT_OK;
  for (int i = 1; i < n && !s; i++)
    if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
      s = dt_error(DT_ERR_ARG, "%s: two parameters are named '%.80s'", st->label, sorted[i]->name);
  // every check before any write: missing, unexpected, shape and dtype
  dtBuf missing = {0}, unexpected = {0};
  int n_missing = 0, n_unexpected = 0;
  for (int i = 0; i < n && !s; i++)
    if (!lookup(st, sorted[i]->name)) list_add(&missing, &n_missing, sorted[i]->name);
  for (int k = 0; k < st->n && !s; k++) {
    const char* name = st->tensors[k].name;
    int lo = 0, hi = n - 1, found = 0;
    while (lo <= hi && !found) {
      int mid = lo + (hi - lo) / 2;
      int c = strcmp(name, sorted[mid]->name);
      if (c == 0) found = 1;
      else if (c < 0) hi = mid - 1;
      else lo = mid + 1;
    }
    if (!found) list_add(&unexpected, &n_unexpected, name);
  }
  if (!s && (missing.oom || unexpected.oom)) s = DT_ERR_NOMEM;
  int bad_missing = n_missing && !(flags & DT_LOAD_ALLOW_MISSING);
  int bad_unexpected = n_unexpected && !(flags & DT_LOAD_ALLOW_UNEXPECTED);
  if (!s && (bad_missing || bad_unexpected)) {
    s = dt_error(DT_ERR_NOT_FOUND, "%s: %s%d missing tensor%s (%s)%s%d unexpected tensor%s (%s)",
                 st->label, bad_missing ? "" : "[allowed] ", n_missing, n_missing == 1 ? "" : "s",
                 n_missing ? missing.data : "none", bad_unexpected ? "; " : "; [allowed] ",
                 n_unexpected, n_unexpected == 1 ? "" : "s",
                 n_unexpected ? unexpected.data : "none");
  }
  for (int i = 0; i < n && !s; i++) {
    const stTensor* t = lookup(st, params[i]->name);
    if (t) s = check_f32(st, t, params[i]->ndim, params[i]->shape, params[i]->name);
  }
  // all checks passed: copy
  for (int i = 0; i < n && !s; i++) {
    const stTensor* t = lookup(st, params[i]->name);
    if (t) convert_f32(st, t, params[i]->val);
  }
  dt_buf_free(&missing);
  dt_buf_free(&unexpected);
  dt_free(sorted);
  return s;
}

dtStatus dt_params_load_ex(const char* path, dtTensor* const* params, int n, int flags) {
  dtSafetensors* st;
  dtStatus s = dt_st_open(path, &st);
  if (s) return s;
  s = dt_st_load_params(st, params, n, flags);
  dt_st_close(st);
  return s;
}

dtStatus dt_params_load(const char* path, dtTensor* const* params, int n) {
  return dt_params_load_ex(path, params, n, 0);
}
