// SPDX-License-Identifier: MIT
// Replays the safetensors fuzz seeds and crash reproducers through the reader (no libFuzzer).
//
//   st_replay_test                 replay generated seeds + tests/fuzz/corpus/safetensors/*
//   st_replay_test --seeds DIR     write the generated seed corpus to DIR (for the fuzzer)
//   st_replay_test FILE...         replay the given files
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wformat-zero-length"
#include "test.h"
#include "../fuzz/safetensors_fuzz.c"

typedef struct Seed {
  unsigned char* data;
  size_t size;
} Seed;

static Seed seeds[64];
static int n_seeds;

static void add_raw(const void* data, size_t size) {
  if (n_seeds == 64) return;
  seeds[n_seeds].data = malloc(size ? size : 1);
  memcpy(seeds[n_seeds].data, data, size);
  seeds[n_seeds++].size = size;
}

// header text plus a zero buffer
static void add_header(const char* h, size_t buf) {
  size_t hl = strlen(h), n = 8 + hl + buf;
  unsigned char* b = calloc(1, n);
  for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)hl >> (8 * k));
  memcpy(b + 8, h, hl);
  add_raw(b, n);
  free(b);
}

static unsigned char* slurp(const char* path, size_t* n) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* b = malloc(len > 0 ? (size_t)len : 1);
  *n = fread(b, 1, (size_t)(len > 0 ? len : 0), f);
  fclose(f);
  return b;
}

// valid files from the writer, and hand-made headers that reach every branch of the parser
static void make_seeds(void) {
  char dir[] = "/tmp/dt_st_seeds_XXXXXX";
  if (!mkdtemp(dir)) return;
  char path[128];
  snprintf(path, sizeof path, "%s/w.safetensors", dir);
  float f[6] = {1, -2, 0.5f, 3, 4, 5};
  double d[2] = {1e-3, -7};
  uint16_t h[3] = {0x3C00, 0x7C00, 0x0001};
  int64_t i[2] = {1, -1};
  int s23[2] = {2, 3}, s2[1] = {2}, s3[1] = {3}, s0[1] = {0};
  dtStEntry e[] = {{"enc.0.weight", DT_DTYPE_F32, 2, s23, f},
                   {"enc.0.bias", DT_DTYPE_F64, 1, s2, d},
                   {"half", DT_DTYPE_F16, 1, s3, h},
                   {"bf", DT_DTYPE_BF16, 1, s3, h},
                   {"idx", DT_DTYPE_I64, 1, s2, i},
                   {"empty", DT_DTYPE_F32, 1, s0, NULL},
                   {"s", DT_DTYPE_F32, 0, NULL, f}};
  const char* meta[] = {"format", "pt", "note", "caf\xc3\xa9 \"q\"\n"};
  for (int k = 1; k <= 7; k += 3) {
    if (dt_st_write(path, e, k, meta, k > 1 ? 2 : 0) == DT_OK) {
      size_t n;
      unsigned char* b = slurp(path, &n);
      if (b) add_raw(b, n);
      free(b);
    }
  }
  unlink(path);
  rmdir(dir);
  add_header("{}", 0);
  add_header("{\"__metadata__\":null}  ", 0);
  add_header("{\"__metadata__\":{\"a\":\"\\u00e9\\ud83d\\ude00\\n\\/\"}}", 0);
  add_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
             "\"x\":{\"y\":[1,-2.5e+3,true,false,null,\"s\",{}]}}}", 8);
  add_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[0,4294967296],\"data_offsets\":[0,0]},"
             "\"b\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
  add_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 6);
  add_header("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1);
  add_header("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);
  add_header("{\"a\\\"\\\\\\b\\f\\r\\t\":{\"dtype\":\"I16\",\"shape\":[],\"data_offsets\":[0,2]}}", 2);
  unsigned char big[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
  add_raw(big, 16);
}

static void test_seeds(void) {
  // every seed goes through the fuzz target; it aborts on a broken invariant
  make_seeds();
  CHECK(n_seeds >= 10, "only %d seeds", n_seeds);
  int valid = 0;
  for (int k = 0; k < n_seeds; k++) {
    LLVMFuzzerTestOneInput(seeds[k].data, seeds[k].size);
    dtSafetensors* st;
    if (dt_st_open_memory(seeds[k].data, seeds[k].size, "seed", 0, &st) == DT_OK) valid++;
    dt_st_close(st);
  }
  CHECK(valid >= 8, "only %d valid seeds", valid);
}

static int replay_file(const char* path) {
  size_t n = 0;
  unsigned char* b = slurp(path, &n);
  if (!b) return 0;
  LLVMFuzzerTestOneInput(b, n);
  free(b);
  return 1;
}

static void test_corpus(void) {
  // committed reproducers of fixed crashes
  const char* src = getenv("DT_SOURCE_DIR");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/safetensors", src ? src : DT_SOURCE_DIR);
  DIR* d = opendir(dir);
  CHECK(d != NULL, "no corpus directory %s", dir);
  if (!d) return;
  int count = 0;
  struct dirent* de;
  char path[2048];
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    count += replay_file(path);
  }
  closedir(d);
  printf("  replayed %d corpus files from %s\n", count, dir);
}

static void test_mutations(void) {
  // cheap deterministic mutations of the seeds: byte flips and truncations
  dtRng rng;
  dt_rng_seed(&rng, 7);
  for (int k = 0; k < n_seeds; k++) {
    for (size_t len = 0; len <= seeds[k].size; len++) LLVMFuzzerTestOneInput(seeds[k].data, len);
    unsigned char* b = malloc(seeds[k].size + 1);
    for (int r = 0; r < 2000 && seeds[k].size; r++) {
      memcpy(b, seeds[k].data, seeds[k].size);
      for (int f = 0; f < 3; f++) {
        uint32_t at = dt_rng_below(&rng, (uint32_t)seeds[k].size);
        static const unsigned char interesting[] = {'{', '}', '[', ']', '"', '\\', ',', ':', '0', '9', '-', 'u', 0, 0xff, ' '};
        b[at] = (dt_rng_below(&rng, 2)) ? interesting[dt_rng_below(&rng, sizeof interesting)]
                                         : (unsigned char)dt_rng_u32(&rng);
      }
      LLVMFuzzerTestOneInput(b, seeds[k].size);
    }
    free(b);
  }
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "--seeds") == 0) {
    make_seeds();
    mkdir(argv[2], 0755);
    for (int k = 0; k < n_seeds; k++) {
      char path[1024];
      snprintf(path, sizeof path, "%s/seed-%02d.safetensors", argv[2], k);
      FILE* f = fopen(path, "wb");
      if (!f) return 1;
      fwrite(seeds[k].data, 1, seeds[k].size, f);
      fclose(f);
    }
    printf("wrote %d seeds to %s\n", n_seeds, argv[2]);
    return 0;
  }
  if (argc > 1) {
    for (int k = 1; k < argc; k++) replay_file(argv[k]);
    printf("replayed %d files\n", argc - 1);
    return 0;
  }
  static const dtTestCase cases[] = {TEST(test_seeds), TEST(test_corpus), TEST(test_mutations)};
  int rc = dt_test_run(cases, 3, "st_replay");
  for (int k = 0; k < n_seeds; k++) free(seeds[k].data);
  return rc;
}
