// SPDX-License-Identifier: MIT
// Vectorised elementwise kernels. This file alone is built with -ffast-math -fopenmp-simd so
// that GCC calls glibc's libmvec (expf, tanhf on 4/8/16 lanes) and vectorises reductions;
// target_clones picks AVX-512, AVX2 or SSE2 at load time. Nothing here tests for NaN: callers
// check finiteness elsewhere.
//
// Notation as in ops.c: ' = tangent, g = adjoint, g' = adjoint tangent. A NULL tangent or
// adjoint-tangent pointer drops the terms it would carry, so each kernel covers the first- and
// second-order tapes in one pass over memory.
#include <math.h>
#include <stdint.h>

#include "vecmath.h"

#define DT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

//---------------------------------------------------------------------------------------------
// ELU: y = x (x > 0), e^x - 1; f' = 1 or y + 1, f'' = 0 or y + 1

DT_CLONES void dt_vec_elu(const float* restrict x, float* restrict y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : expf(x[i]) - 1.0f;
}

DT_CLONES void dt_vec_elu_jvp(const float* restrict x, const float* restrict xd,
                              float* restrict y, float* restrict yd, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float e = x[i] > 0 ? x[i] : expf(x[i]) - 1.0f;
    y[i] = e;
    yd[i] = x[i] > 0 ? xd[i] : (e + 1.0f) * xd[i];
  }
}

// for (i < n) the body, in two copies: ACC = 1 (add into the outputs) or 0 (overwrite them)
#define ACC_LOOP(acc, n, ...)                     \
  do {                                            \
    if (acc) {                                    \
      enum { ACC = 1 };                           \
      _Pragma("omp simd") for (int64_t i = 0; i < (n); i++) __VA_ARGS__ \
    } else {                                      \
      enum { ACC = 0 };                           \
      _Pragma("omp simd") for (int64_t i = 0; i < (n); i++) __VA_ARGS__ \
    }                                             \
  } while (0)

// out = v or out += v
#define PUT(out, v) ((out) = ACC ? (out) + (v) : (v))

DT_CLONES void dt_vec_elu_backward(const float* restrict x, const float* restrict y,
                                   const float* restrict g, float* restrict gx, int acc,
                                   int64_t n) {
  ACC_LOOP(acc, n, { PUT(gx[i], x[i] > 0 ? g[i] : g[i] * (y[i] + 1.0f)); });
}

DT_CLONES void dt_vec_elu_backward2(const float* restrict x, const float* restrict y,
                                    const float* restrict xd, const float* restrict g,
                                    const float* restrict gd, float* restrict gx,
                                    float* restrict gxd, int acc, int64_t n) {
  if (xd) {
    ACC_LOOP(acc, n, {
      float d = x[i] > 0 ? 1.0f : y[i] + 1.0f, d2 = x[i] > 0 ? 0.0f : d;
      PUT(gx[i], g[i] * d);
      PUT(gxd[i], gd[i] * d + g[i] * d2 * xd[i]);
    });
  } else {
    ACC_LOOP(acc, n, {
      float d = x[i] > 0 ? 1.0f : y[i] + 1.0f;
      PUT(gx[i], g[i] * d);
      PUT(gxd[i], gd[i] * d);
    });
  }
}

//---------------------------------------------------------------------------------------------
// tanh: f' = 1 - y^2, f'' = -2 y (1 - y^2)

DT_CLONES void dt_vec_tanh(const float* restrict x, float* restrict y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

DT_CLONES void dt_vec_tanh_jvp(const float* restrict x, const float* restrict xd,
                               float* restrict y, float* restrict yd, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float v = tanhf(x[i]);
    y[i] = v;
    yd[i] = (1.0f - v * v) * xd[i];
  }
}

DT_CLONES void dt_vec_tanh_backward(const float* restrict y, const float* restrict xd,
                                    const float* restrict g, const float* restrict gd,
                                    float* restrict gx, float* restrict gxd, int acc,
                                    int64_t n) {
  if (!gd) {
    ACC_LOOP(acc, n, { PUT(gx[i], g[i] * (1.0f - y[i] * y[i])); });
  } else if (xd) {
    ACC_LOOP(acc, n, {
      float d = 1.0f - y[i] * y[i];
      PUT(gx[i], g[i] * d);
      PUT(gxd[i], gd[i] * d + g[i] * (-2.0f * y[i] * d) * xd[i]);
    });
  } else {
    ACC_LOOP(acc, n, {
      float d = 1.0f - y[i] * y[i];
      PUT(gx[i], g[i] * d);
      PUT(gxd[i], gd[i] * d);
    });
  }
}

//---------------------------------------------------------------------------------------------
// Mish: with e = exp(min(x, 20)), n = e (e + 2): tanh(softplus(x)) = n / (n + 2) (1 in float
// past 20), f' = tanh(softplus(x)) + x (1 - tanh^2) sigmoid(x), 1 - tanh^2 = 4 (n + 1) / (n + 2)^2

DT_CLONES void dt_vec_mish(const float* restrict x, float* restrict y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    float e = expf(fminf(x[i], 20.0f)), m = e * (e + 2.0f);
    y[i] = x[i] * m / (m + 2.0f);
  }
}

DT_CLONES void dt_vec_mish_backward(const float* restrict x, const float* restrict g,
                                    float* restrict gx, int acc, int64_t n) {
  ACC_LOOP(acc, n, {
    float e = expf(fminf(x[i], 20.0f)), m = e * (e + 2.0f), q = 1.0f / (m + 2.0f);
    float d = m * q + x[i] * 4.0f * (m + 1.0f) * q * q * e / (1.0f + e);
    PUT(gx[i], g[i] * d);
  });
}
