// SPDX-License-Identifier: MIT
// libFuzzer target: the safetensors reader on arbitrary bytes.
//
// Build: cmake -S . -B build-fuzz -DDT_FUZZ=ON -DCMAKE_C_COMPILER=clang ...; run:
//   build-fuzz/safetensors_fuzz -max_total_time=600 corpus_dir
// tests/io/st_replay_test.c includes this file to replay seeds and reproducers without libFuzzer.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "difftop/io.h"

// a failed check of an invariant the reader promises: crash so the fuzzer records the input
static void fuzz_assert(int cond) {
  if (!cond) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dtSafetensors* st = NULL;
  // borrowed bytes: any read outside [data, data + size) is caught by ASan
  dtStatus s = dt_st_open_memory(data, size, "fuzz.safetensors", 0, &st);
  if (s != DT_OK) {
    // errors name the file and leave no handle
    fuzz_assert(st == NULL);
    fuzz_assert(strstr(dt_last_error(), "fuzz.safetensors") != NULL);
    return 0;
  }
  int n = dt_st_count(st);
  size_t total = 0;
  unsigned sum = 0;
  for (int i = 0; i < n; i++) {
    dtStInfo info, again;
    fuzz_assert(dt_st_info(st, i, &info) == DT_OK);
    fuzz_assert(dt_st_find(st, info.name, &again) == DT_OK && again.data == info.data);
    fuzz_assert(info.nbytes == (size_t)info.numel * dt_dtype_size(info.dtype));
    // touch every byte of the tensor
    const unsigned char* p = info.data;
    for (size_t k = 0; k < info.nbytes; k++) sum += p[k];
    total += info.nbytes;
    // convert small float tensors whose extents fit in int
    int shape[DT_ST_MAX_DIMS], fits = info.numel <= (1 << 16);
    for (int d = 0; d < info.ndim; d++) {
      fits &= info.shape[d] <= INT32_MAX;
      shape[d] = (int)info.shape[d];
    }
    if (fits) {
      float* dst = malloc((size_t)(info.numel ? info.numel : 1) * sizeof(float));
      dtStatus r = dt_st_read_f32(st, info.name, dst, info.ndim, shape);
      fuzz_assert(r == DT_OK || r == DT_ERR_FORMAT || r == DT_ERR_NONFINITE);
      free(dst);
    }
  }
  // the tensors tile the buffer, which ends the input
  fuzz_assert(total <= size);
  for (int i = 0; i < dt_st_metadata_count(st); i++) {
    const char *k, *v;
    fuzz_assert(dt_st_metadata_at(st, i, &k, &v) == DT_OK);
    fuzz_assert(dt_st_metadata(st, k) == v);
  }
  dt_st_close(st);
  return (int)(sum & 0);
}
