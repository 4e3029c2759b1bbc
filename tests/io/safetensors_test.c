// SPDX-License-Identifier: MIT
// safetensors: round trips, metadata, conversions, every malformed case, atomic writes, params.
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "difftop/io.h"
#include "io/io_internal.h"
// CHECK without a message expands to an empty format string
#pragma GCC diagnostic ignored "-Wformat-zero-length"
#include "test.h"

static char tmpdir[64];

// a fresh temporary directory for this test program
static const char* tmp_path(const char* name) {
  static char buf[256];
  if (!tmpdir[0]) {
    strcpy(tmpdir, "/tmp/dt_st_test_XXXXXX");
    if (!mkdtemp(tmpdir)) abort();
  }
  snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
  return buf;
}

static unsigned char* read_all(const char* path, size_t* n) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

static void write_all(const char* path, const void* data, size_t n) {
  FILE* f = fopen(path, "wb");
  fwrite(data, 1, n, f);
  fclose(f);
}

// a safetensors image from a header text and a buffer of buf_len bytes (zeros if buf is NULL)
static unsigned char* image(const char* header, const void* buf, size_t buf_len, size_t* n) {
  size_t h = strlen(header);
  *n = 8 + h + buf_len;
  unsigned char* b = calloc(1, *n + 1);
  for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)h >> (8 * k));
  memcpy(b + 8, header, h);
  if (buf) memcpy(b + 8 + h, buf, buf_len);
  return b;
}

// open an image from memory, expecting status; the message must contain every needle
static void expect_image(const char* header, size_t buf_len, dtStatus want, const char* needle1,
                         const char* needle2, int line) {
  size_t n;
  unsigned char* b = image(header, NULL, buf_len, &n);
  dtSafetensors* st = NULL;
  dtStatus s = dt_st_open_memory(b, n, "case.safetensors", 0, &st);
  CHECK(s == want, "line %d: got %s (%s) for header %.120s", line, dt_status_string(s),
        dt_last_error(), header);
  if (want != DT_OK) {
    CHECK(st == NULL, "line %d", line);
    CHECK(strstr(dt_last_error(), "case.safetensors"), "line %d: no file name in '%s'", line,
          dt_last_error());
    if (needle1) CHECK(strstr(dt_last_error(), needle1), "line %d: '%s' not in '%s'", line, needle1, dt_last_error());
    if (needle2) CHECK(strstr(dt_last_error(), needle2), "line %d: '%s' not in '%s'", line, needle2, dt_last_error());
  }
  dt_st_close(st);
  free(b);
}
#define EXPECT_OK(h, len) expect_image(h, len, DT_OK, NULL, NULL, __LINE__)
#define EXPECT_BAD(h, len, n1, n2) expect_image(h, len, DT_ERR_FORMAT, n1, n2, __LINE__)

static void test_round_trip(void) {
  float a[6] = {1.5f, -0.0f, 3.0e-42f /* subnormal */, INFINITY, -INFINITY, 0};
  uint32_t nan_bits = 0x7fc12345u;  // a NaN with a payload must survive bit-exactly
  memcpy(&a[5], &nan_bits, 4);
  double b[3] = {1.0 / 3.0, -2.5e300, 7};
  int32_t c[2] = {-7, 123456789};
  uint8_t d[3] = {1, 0, 1};
  float scalar = 42.0f;
  int sa[2] = {2, 3}, sb[1] = {3}, sc[2] = {1, 2}, sd[1] = {3}, se[2] = {0, 5};
  dtStEntry e[] = {
      {"layer.0.weight", DT_DTYPE_F32, 2, sa, a},
      {"b64", DT_DTYPE_F64, 1, sb, b},
      {"ints", DT_DTYPE_I32, 2, sc, c},
      {"mask", DT_DTYPE_BOOL, 1, sd, d},
      {"scalar", DT_DTYPE_F32, 0, NULL, &scalar},
      {"empty", DT_DTYPE_F32, 2, se, NULL},
  };
  const char* meta[] = {"format", "pt", "hidden", "512"};
  const char* path = tmp_path("rt.safetensors");
  CHECK_OK(dt_st_write(path, e, 6, meta, 2));

  // header framing: length a multiple of 8, JSON first
  size_t n;
  unsigned char* raw = read_all(path, &n);
  uint64_t hlen = 0;
  for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | raw[k];
  CHECK(hlen % 8 == 0, "header length %llu", (unsigned long long)hlen);
  CHECK(raw[8] == '{');
  // Python's layout: F64 first (larger dtype rank), then F32 by name, ...
  const char* hdr = (const char*)raw + 8;
  CHECK(strstr(hdr, "\"b64\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,24]}"), "%.300s", hdr);
  const char* meta_json = "{\"__metadata__\":{\"format\":\"pt\",\"hidden\":\"512\"},";
  CHECK(strncmp(hdr, meta_json, strlen(meta_json)) == 0, "%.80s", hdr);
  free(raw);

  dtSafetensors* st;
  CHECK_OK(dt_st_open(path, &st));
  if (!st) return;
  CHECK(dt_st_count(st) == 6);
  // name order
  dtStInfo info;
  CHECK_OK(dt_st_info(st, 0, &info));
  CHECK(strcmp(info.name, "b64") == 0, "%s", info.name);
  CHECK_OK(dt_st_find(st, "layer.0.weight", &info));
  CHECK(info.dtype == DT_DTYPE_F32 && info.ndim == 2 && info.shape[0] == 2 && info.shape[1] == 3);
  CHECK(info.numel == 6 && info.nbytes == 24 && memcmp(info.data, a, 24) == 0);
  float got[6];
  CHECK_OK(dt_st_read_f32(st, "layer.0.weight", got, 2, sa));
  CHECK(memcmp(got, a, sizeof a) == 0, "not bit-exact");
  CHECK_OK(dt_st_find(st, "b64", &info));
  CHECK(info.dtype == DT_DTYPE_F64 && memcmp(info.data, b, 24) == 0);
  CHECK_OK(dt_st_find(st, "ints", &info));
  CHECK(info.dtype == DT_DTYPE_I32 && memcmp(info.data, c, 8) == 0);
  CHECK_OK(dt_st_find(st, "mask", &info));
  CHECK(info.dtype == DT_DTYPE_BOOL && memcmp(info.data, d, 3) == 0);
  CHECK_OK(dt_st_find(st, "scalar", &info));
  CHECK(info.ndim == 0 && info.numel == 1);
  float s1 = 0;
  CHECK_OK(dt_st_read_f32(st, "scalar", &s1, 0, NULL));
  CHECK(s1 == 42.0f);
  CHECK_OK(dt_st_find(st, "empty", &info));
  CHECK(info.numel == 0 && info.nbytes == 0);
  CHECK(dt_st_find(st, "nope", &info) == DT_ERR_NOT_FOUND);
  CHECK(strstr(dt_last_error(), "nope") && strstr(dt_last_error(), "rt.safetensors"), "%s", dt_last_error());
  // metadata
  CHECK(dt_st_metadata_count(st) == 2);
  CHECK(dt_st_metadata(st, "hidden") && strcmp(dt_st_metadata(st, "hidden"), "512") == 0);
  CHECK(dt_st_metadata(st, "absent") == NULL);
  const char *k, *v;
  CHECK_OK(dt_st_metadata_at(st, 0, &k, &v));
  CHECK(strcmp(k, "format") == 0 && strcmp(v, "pt") == 0);
  CHECK(dt_st_metadata_at(st, 2, &k, &v) == DT_ERR_ARG);
  dt_st_close(st);

  // the same file opened from memory, borrowed and copied
  raw = read_all(path, &n);
  for (int copy = 0; copy < 2; copy++) {
    CHECK_OK(dt_st_open_memory(raw, n, "mem", copy, &st));
    CHECK(dt_st_count(st) == 6);
    dt_st_close(st);
  }
  free(raw);
}

static void test_conversions(void) {
  // F64, F16, BF16 to float32, and the errors of read_f32
  double f64[4] = {0.1, -2.0, 1e-300, NAN};
  uint16_t f16[6] = {0x3C00 /* 1 */, 0xC000 /* -2 */, 0x0001 /* 2^-24 */, 0x7C00 /* inf */,
                     0x3555 /* 0.333251953125 */, 0x8000 /* -0 */};
  uint16_t bf16[3] = {0x3F80 /* 1 */, 0xC0A0 /* -5 */, 0x4049 /* 3.140625 */};
  int64_t i64[1] = {5};
  double big[1] = {1e300};
  int s4[1] = {4}, s6[2] = {2, 3}, s3[1] = {3}, s1[1] = {1};
  dtStEntry e[] = {
      {"f64", DT_DTYPE_F64, 1, s4, f64},  {"f16", DT_DTYPE_F16, 2, s6, f16},
      {"bf16", DT_DTYPE_BF16, 1, s3, bf16}, {"i64", DT_DTYPE_I64, 1, s1, i64},
      {"big", DT_DTYPE_F64, 1, s1, big},
  };
  const char* path = tmp_path("conv.safetensors");
  CHECK_OK(dt_st_write(path, e, 5, NULL, 0));
  dtSafetensors* st;
  CHECK_OK(dt_st_open(path, &st));
  if (!st) return;
  float out[6];
  CHECK_OK(dt_st_read_f32(st, "f64", out, 1, s4));
  CHECK(out[0] == 0.1f && out[1] == -2.0f && out[2] == 0.0f && isnan(out[3]));
  CHECK_OK(dt_st_read_f32(st, "f16", out, 2, s6));
  CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == ldexpf(1.0f, -24) && isinf(out[3]));
  CHECK(out[4] == 0.333251953125f && out[5] == 0.0f && signbit(out[5]));
  CHECK_OK(dt_st_read_f32(st, "bf16", out, 1, s3));
  CHECK(out[0] == 1.0f && out[1] == -5.0f && out[2] == 3.140625f);
  // wrong shape, unsupported dtype, overflow
  int wrong[2] = {3, 2};
  CHECK(dt_st_read_f32(st, "f16", out, 2, wrong) == DT_ERR_SHAPE);
  CHECK(strstr(dt_last_error(), "'f16'") && strstr(dt_last_error(), "[2, 3]") &&
        strstr(dt_last_error(), "[3, 2]"), "%s", dt_last_error());
  CHECK(dt_st_read_f32(st, "f16", out, 1, s6) == DT_ERR_SHAPE);
  CHECK(dt_st_read_f32(st, "i64", out, 1, s1) == DT_ERR_FORMAT);
  CHECK(strstr(dt_last_error(), "I64"), "%s", dt_last_error());
  CHECK(dt_st_read_f32(st, "big", out, 1, s1) == DT_ERR_NONFINITE);
  CHECK(dt_st_read_f32(st, "absent", out, 1, s1) == DT_ERR_NOT_FOUND);
  dt_st_close(st);
  // every dtype name parses back
  for (int d = 0; d < DT_DTYPE_COUNT; d++) {
    dtDtype back;
    CHECK_OK(dt_dtype_parse(dt_dtype_name((dtDtype)d), &back));
    CHECK(back == (dtDtype)d);
    CHECK(dt_dtype_size((dtDtype)d) > 0);
  }
}

#define T1 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static void test_framing(void) {
  dtSafetensors* st = NULL;
  unsigned char small[5] = {0};
  CHECK(dt_st_open_memory(small, 5, "short.st", 0, &st) == DT_ERR_FORMAT && !st);
  CHECK(strstr(dt_last_error(), "short.st") && strstr(dt_last_error(), "too short"), "%s", dt_last_error());
  CHECK(dt_st_open_memory(small, 0, "empty.st", 0, &st) == DT_ERR_FORMAT);
  // header length larger than the file, and over the 100 MB limit
  unsigned char b[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
  CHECK(dt_st_open_memory(b, 16, "len.st", 0, &st) == DT_ERR_FORMAT);
  CHECK(strstr(dt_last_error(), "header length 200"), "%s", dt_last_error());
  uint64_t huge = 100000001ULL;
  for (int k = 0; k < 8; k++) b[k] = (unsigned char)(huge >> (8 * k));
  CHECK(dt_st_open_memory(b, 16, "huge.st", 0, &st) == DT_ERR_FORMAT);
  CHECK(strstr(dt_last_error(), "limit"), "%s", dt_last_error());
  memset(b, 0xff, 8);
  CHECK(dt_st_open_memory(b, 16, "max.st", 0, &st) == DT_ERR_FORMAT);
  // valid minimal files
  EXPECT_OK("{}", 0);
  EXPECT_OK("{}      ", 0);
  EXPECT_OK("{ \"__metadata__\" : null }\n", 0);
  EXPECT_OK("{" T1 "}", 8);
  EXPECT_OK("{\r\n\t" T1 " , \"__metadata__\":{\"k\":\"v\",\"x\":\"\"}}  ", 8);
  // header start
  EXPECT_BAD(" {}", 0, "start with '{'", NULL);
  EXPECT_BAD("[]", 0, "start with '{'", NULL);
  size_t n;
  unsigned char* img = image("", NULL, 0, &n);
  CHECK(dt_st_open_memory(img, n, "zero.st", 0, &st) == DT_ERR_FORMAT);
  free(img);
  // on disk: a missing file, a directory, every truncation of a valid file
  CHECK(dt_st_open(tmp_path("does-not-exist"), &st) == DT_ERR_IO && !st);
  CHECK(strstr(dt_last_error(), "does-not-exist"), "%s", dt_last_error());
  CHECK(dt_st_open(tmpdir, &st) == DT_ERR_IO);
  float v[3] = {1, 2, 3};
  int s3 = 3;
  dtStEntry e = {"v", DT_DTYPE_F32, 1, &s3, v};
  const char* path = tmp_path("trunc.safetensors");
  CHECK_OK(dt_st_write(path, &e, 1, NULL, 0));
  unsigned char* full = read_all(path, &n);
  int all_failed = 1;
  for (size_t len = 0; len < n; len++) {
    write_all(path, full, len);
    dtStatus s = dt_st_open(path, &st);
    if (s != DT_ERR_FORMAT || st) all_failed = 0;
    dt_st_close(st);
  }
  CHECK(all_failed, "a truncated file was accepted");
  free(full);
}

static void test_malformed_json(void) {
  EXPECT_BAD("{" T1, 8, "expected ',' or '}'", NULL);
  EXPECT_BAD("{\"a\" {}}", 0, "expected ':'", NULL);
  EXPECT_BAD("{\"a:{}}", 0, "unterminated string", NULL);
  EXPECT_BAD("{}x", 0, "trailing", NULL);
  EXPECT_BAD("{} {}", 0, "trailing", NULL);
  EXPECT_BAD("{" T1 ",}", 8, "expected a string", NULL);
  EXPECT_BAD("{,}", 0, NULL, NULL);
  EXPECT_BAD("{\"a\\q\":{}}", 0, "invalid escape", NULL);
  EXPECT_BAD("{\"a\\u12G4\":{}}", 0, "\\u escape", NULL);
  EXPECT_BAD("{\"a\\u12", 0, NULL, NULL);
  EXPECT_BAD("{\"\\ud800\":{}}", 0, "unpaired high surrogate", NULL);
  EXPECT_BAD("{\"\\ud800\\u0041\":{}}", 0, "unpaired high surrogate", NULL);
  EXPECT_BAD("{\"\\udc00\":{}}", 0, "unpaired low surrogate", NULL);
  EXPECT_BAD("{\"a\\u0000b\":{}}", 0, "NUL", NULL);
  EXPECT_BAD("{\"a\tb\":{}}", 0, "control character", NULL);
  EXPECT_BAD("{\"caf\xc3\":{}}", 0, "UTF-8", NULL);
  EXPECT_BAD("{\"\xc0\xaf\":{}}", 0, "UTF-8", NULL);        // overlong
  EXPECT_BAD("{\"\xed\xa0\x80\":{}}", 0, "UTF-8", NULL);    // encoded surrogate
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":tru}}", 8,
             "JSON value", NULL);
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1.}}", 8,
             "number", NULL);
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":[1,]}}", 8,
             "JSON value", NULL);
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":{\"k\":1,\"k\":2}}}",
             8, "duplicate key 'k'", NULL);
  // unknown fields are skipped when they are valid JSON
  EXPECT_OK("{\"a\":{\"dtype\":\"F32\",\"x\":{\"y\":[1,-2.5e+3,true,false,null,\"s\\n\",{}]},"
            "\"shape\":[2],\"data_offsets\":[0,8]}}",
            8);
  // escapes decode: caf\u00e9 and a surrogate pair
  size_t n;
  unsigned char* img = image(
      "{\"caf\\u00e9\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
      "\"\\ud83d\\ude00\\/\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
      NULL, 2, &n);
  dtSafetensors* st;
  CHECK_OK(dt_st_open_memory(img, n, "esc", 0, &st));
  CHECK_OK(dt_st_find(st, "caf\xc3\xa9", NULL));
  CHECK_OK(dt_st_find(st, "\xf0\x9f\x98\x80/", NULL));
  dt_st_close(st);
  free(img);
  // nesting too deep inside a skipped field
  char deep[600];
  strcpy(deep, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":");
  for (int k = 0; k < 100; k++) strcat(deep, "[");
  for (int k = 0; k < 100; k++) strcat(deep, "]");
  strcat(deep, "}}");
  EXPECT_BAD(deep, 8, "nested deeper", NULL);
}

static void test_malformed_entries(void) {
  // duplicates
  EXPECT_BAD("{" T1 "," T1 "}", 16, "duplicate tensor name 'a'", NULL);
  EXPECT_BAD("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate key '__metadata__'", NULL);
  EXPECT_BAD("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "duplicate __metadata__ key 'k'", NULL);
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
             "'a'", "duplicate field 'dtype'");
  // metadata values must be strings
  EXPECT_BAD("{\"__metadata__\":{\"lr\":0.1}}", 0, "'lr'", "must be a string");
  EXPECT_BAD("{\"__metadata__\":[\"x\"]}", 0, "__metadata__", NULL);
  // entry structure
  EXPECT_BAD("{\"a\":[1]}", 0, "'a'", "must be an object");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "'a'", "missing field 'data_offsets'");
  EXPECT_BAD("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a'", "missing field 'dtype'");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", 8, "'a'", "data_offsets");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "'a'", "exactly 2");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "'a'", "must be an array");
  EXPECT_BAD("{\"a\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype", NULL);
  // dtype and numbers
  EXPECT_BAD("{\"a\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a'", "unknown dtype 'F31'");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "'a'", "non-negative");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "'a'", "integers");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]}}", 8, "'a'", "integers");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8, "'a'", "leading zero");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}}", 8,
             "'a'", "overflows");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
             "'a'", "more than 8");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,4]}}", 4,
             "'a'", "too large");
  // shape product overflow (and a byte-size overflow)
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
             "'a'", "too many elements");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8,
             "'a'", "overflows");
  // a zero extent makes an empty tensor even next to huge ones
  EXPECT_OK("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,0,4294967296],\"data_offsets\":[0,0]}}", 0);
  // offsets: size mismatch, reversed, out of range, overlap, hole, trailing bytes
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12, "'a'", "needs 8");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "'a'", "reversed");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "'a'", "past the end");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             12, "'b'", "overlaps tensor 'a'");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
             12, "'b'", "hole of 4 bytes");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "'a'", "hole");
  EXPECT_BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "'a'", "4 trailing bytes");
  EXPECT_BAD("{}", 3, "3 trailing bytes", NULL);
  // zero-size tensors may share an offset
  EXPECT_OK("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"c\":{\"dtype\":\"I8\",\"shape\":[0,3],\"data_offsets\":[4,4]}}",
            4);
}

// list the names in tmpdir that contain ".tmp."
static int temp_files_left(void) {
  DIR* d = opendir(tmpdir);
  int count = 0;
  struct dirent* de;
  while ((de = readdir(d)))
    if (strstr(de->d_name, ".tmp.")) count++;
  closedir(d);
  return count;
}

static void test_atomic_write(void) {
  float v[2] = {1, 2}, w[2] = {3, 4};
  int s2 = 2;
  dtStEntry e = {"v", DT_DTYPE_F32, 1, &s2, v};
  const char* path = tmp_path("atomic.safetensors");
  char keep[256];
  strcpy(keep, path);
  CHECK_OK(dt_st_write(keep, &e, 1, NULL, 0));
  size_t n0;
  unsigned char* before = read_all(keep, &n0);
  // every failure stage leaves the old file and no temporary file
  e.data = w;
  for (int stage = DT_IO_FAIL_OPEN; stage <= DT_IO_FAIL_RENAME; stage++) {
    dt_io_inject_failure((dtIoFail)stage);
    dtStatus s = dt_st_write(keep, &e, 1, NULL, 0);
    CHECK(s == DT_ERR_IO, "stage %d: %s", stage, dt_status_string(s));
    CHECK(strstr(dt_last_error(), "atomic.safetensors"), "%s", dt_last_error());
    size_t n1;
    unsigned char* after = read_all(keep, &n1);
    CHECK(n1 == n0 && memcmp(before, after, n0) == 0, "stage %d changed the file", stage);
    free(after);
    CHECK(temp_files_left() == 0, "stage %d left a temporary file", stage);
  }
  // the hook fires once: the next write succeeds and replaces the file
  CHECK_OK(dt_st_write(keep, &e, 1, NULL, 0));
  dtSafetensors* st;
  float out[2] = {0};
  CHECK_OK(dt_st_open(keep, &st));
  CHECK_OK(dt_st_read_f32(st, "v", out, 1, &s2));
  CHECK(out[0] == 3 && out[1] == 4);
  dt_st_close(st);
  // a target in a missing directory, and in a read-only one (root ignores permissions)
  CHECK(dt_st_write(tmp_path("no/such/dir.safetensors"), &e, 1, NULL, 0) == DT_ERR_IO);
  CHECK(strstr(dt_last_error(), "dir.safetensors"), "%s", dt_last_error());
  if (geteuid() != 0) {
    char ro[256];
    strcpy(ro, tmp_path("ro"));
    mkdir(ro, 0755);
    char target[300];
    snprintf(target, sizeof target, "%s/x.safetensors", ro);
    CHECK_OK(dt_st_write(target, &e, 1, NULL, 0));
    chmod(ro, 0555);
    e.data = v;
    CHECK(dt_st_write(target, &e, 1, NULL, 0) == DT_ERR_IO);
    CHECK_OK(dt_st_open(target, &st));
    CHECK_OK(dt_st_read_f32(st, "v", out, 1, &s2));
    CHECK(out[0] == 3, "old file changed");
    dt_st_close(st);
    chmod(ro, 0755);
    unlink(target);
    rmdir(ro);
  }
  // writer argument checks
  dtStEntry dup[2] = {e, e};
  CHECK(dt_st_write(path, dup, 2, NULL, 0) == DT_ERR_ARG);
  CHECK(strstr(dt_last_error(), "duplicate tensor name 'v'"), "%s", dt_last_error());
  dtStEntry reserved = {"__metadata__", DT_DTYPE_F32, 1, &s2, v};
  CHECK(dt_st_write(path, &reserved, 1, NULL, 0) == DT_ERR_ARG);
  const char* meta_dup[] = {"k", "1", "k", "2"};
  CHECK(dt_st_write(path, &e, 1, meta_dup, 2) == DT_ERR_ARG);
  int neg = -1;
  dtStEntry bad = {"neg", DT_DTYPE_F32, 1, &neg, v};
  CHECK(dt_st_write(path, &bad, 1, NULL, 0) == DT_ERR_ARG);
  dtStEntry badutf = {"\xff", DT_DTYPE_F32, 1, &s2, v};
  CHECK(dt_st_write(path, &badutf, 1, NULL, 0) == DT_ERR_ARG);
  CHECK(temp_files_left() == 0);
  free(before);
}

static void test_json_escaping(void) {
  // names and metadata with quotes, backslashes and control characters survive
  float v = 1;
  dtStEntry e = {"we\"ird\\na\tme\x01", DT_DTYPE_F32, 0, NULL, &v};
  const char* meta[] = {"k\"ey", "line1\nline2 \xc3\xa9"};
  const char* path = tmp_path("esc.safetensors");
  CHECK_OK(dt_st_write(path, &e, 1, meta, 1));
  dtSafetensors* st;
  CHECK_OK(dt_st_open(path, &st));
  if (!st) return;
  CHECK_OK(dt_st_find(st, e.name, NULL));
  CHECK(dt_st_metadata(st, "k\"ey") && strcmp(dt_st_metadata(st, "k\"ey"), meta[1]) == 0);
  dt_st_close(st);
}

static void test_params(void) {
  int sw[2] = {3, 2}, sb[1] = {3};
  dtTensor* W = dt_param_new("enc.0.weight", 2, sw);
  dtTensor* b = dt_param_new("enc.0.bias", 1, sb);
  for (int i = 0; i < 6; i++) W->val[i] = 0.5f * (float)i - 1;
  for (int i = 0; i < 3; i++) b->val[i] = (float)i + 0.25f;
  dtTensor* params[2] = {W, b};
  const char* meta[] = {"Z", "64", "activation", "elu"};
  const char* path = tmp_path("params.safetensors");
  CHECK_OK(dt_params_save(path, params, 2, meta, 2));

  dtTensor* W2 = dt_param_new("enc.0.weight", 2, sw);
  dtTensor* b2 = dt_param_new("enc.0.bias", 1, sb);
  dtTensor* loaded[2] = {b2, W2};  // order does not matter
  CHECK_OK(dt_params_load(path, loaded, 2));
  CHECK(memcmp(W2->val, W->val, 6 * sizeof(float)) == 0);
  CHECK(memcmp(b2->val, b->val, 3 * sizeof(float)) == 0);

  // missing: nothing is written (all-or-nothing)
  dtTensor* extra = dt_param_new("dyn.0.weight", 2, sw);
  for (int i = 0; i < 6; i++) W2->val[i] = 99;
  dtTensor* with_extra[3] = {W2, b2, extra};
  CHECK(dt_params_load(path, with_extra, 3) == DT_ERR_NOT_FOUND);
  CHECK(strstr(dt_last_error(), "1 missing tensor ('dyn.0.weight')") &&
        strstr(dt_last_error(), "params.safetensors"), "%s", dt_last_error());
  CHECK(W2->val[0] == 99, "a failed load wrote values");
  CHECK_OK(dt_params_load_ex(path, with_extra, 3, DT_LOAD_ALLOW_MISSING));
  CHECK(W2->val[0] == W->val[0] && extra->val[0] == 0);
  // unexpected
  dtTensor* only_w[1] = {W2};
  CHECK(dt_params_load(path, only_w, 1) == DT_ERR_NOT_FOUND);
  CHECK(strstr(dt_last_error(), "1 unexpected tensor ('enc.0.bias')"), "%s", dt_last_error());
  CHECK_OK(dt_params_load_ex(path, only_w, 1, DT_LOAD_ALLOW_UNEXPECTED));
  // wrong shape: nothing written, message names tensor and both shapes
  int sw_t[2] = {2, 3};
  dtTensor* Wt = dt_param_new("enc.0.weight", 2, sw_t);
  b2->val[0] = 77;
  dtTensor* shape_bad[2] = {b2, Wt};
  CHECK(dt_params_load(path, shape_bad, 2) == DT_ERR_SHAPE);
  CHECK(strstr(dt_last_error(), "'enc.0.weight'") && strstr(dt_last_error(), "[3, 2]") &&
        strstr(dt_last_error(), "[2, 3]"), "%s", dt_last_error());
  CHECK(b2->val[0] == 77, "a failed load wrote values");
  // duplicate parameter names, NULL parameters
  dtTensor* twice[2] = {W2, W2};
  CHECK(dt_params_load(path, twice, 2) == DT_ERR_ARG);
  dtTensor* null_param[1] = {NULL};
  CHECK(dt_params_load(path, null_param, 1) == DT_ERR_ARG);
  CHECK(dt_params_save(path, null_param, 1, NULL, 0) == DT_ERR_ARG);
  // metadata came along
  dtSafetensors* st;
  CHECK_OK(dt_st_open(path, &st));
  CHECK(dt_st_metadata(st, "activation") && strcmp(dt_st_metadata(st, "activation"), "elu") == 0);
  dt_st_close(st);
  dt_param_free(W);
  dt_param_free(b);
  dt_param_free(W2);
  dt_param_free(b2);
  dt_param_free(extra);
  dt_param_free(Wt);
}

static void cleanup(void) {
  DIR* d = opendir(tmpdir);
  struct dirent* de;
  char p[512];
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(tmpdir);
}

DT_TEST_MAIN("safetensors", TEST(test_round_trip), TEST(test_conversions), TEST(test_framing),
             TEST(test_malformed_json), TEST(test_malformed_entries), TEST(test_atomic_write),
             TEST(test_json_escaping), TEST(test_params), TEST(cleanup))
