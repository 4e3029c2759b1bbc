// SPDX-License-Identifier: MIT
// Vectorised elementwise kernels. This file alone is built with -ffast-math -fopenmp-simd so
// that GCC calls glibc's libmvec (expf, tanhf on 4/8/16 lanes); target_clones picks AVX-512,
// AVX2 or SSE2 at load time. Nothing here tests for NaN: callers check finiteness elsewhere.
#include <math.h>
#include <stdint.h>

#include "vecmath.h"

#define DT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

DT_CLONES void dt_vec_elu(const float* restrict x, float* restrict y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : expf(x[i]) - 1.0f;
}

DT_CLONES void dt_vec_elu_backward(const float* restrict x, const float* restrict y,
                                   const float* restrict g, float* restrict gx, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) gx[i] += x[i] > 0 ? g[i] : g[i] * (y[i] + 1.0f);
}

DT_CLONES void dt_vec_tanh(const float* restrict x, float* restrict y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}
