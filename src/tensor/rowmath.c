// SPDX-License-Identifier: MIT
// Vectorised row kernels: reductions and the layer-norm rows. Built with -O3 -fopenmp-simd but
// without -ffast-math: the order of every addition is fixed by the code, so results do not
// depend on the vector width picked at load time (target_clones: AVX-512, AVX2, SSE2) nor on
// the buffers' alignment.
#include <math.h>
#include <stdint.h>

#include "vecmath.h"

#define DT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

//---------------------------------------------------------------------------------------------
// reductions and row updates
//
// Reductions keep L = 16 partial sums, element j going to lane j % L, combined in a fixed
// tree: the order of the additions depends on n only, not on the vector width chosen at load
// time nor on the buffers' alignment (a tape with tangents lays out memory differently from
// one without, and both must give the same values).

enum { L = 16 };

static inline float lanes_sum(const float* acc) {
  float s8[8], s4[4];
  for (int k = 0; k < 8; k++) s8[k] = acc[k] + acc[k + 8];
  for (int k = 0; k < 4; k++) s4[k] = s8[k] + s8[k + 4];
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

DT_CLONES float dt_vec_sum(const float* restrict a, int64_t n) {
  float acc[L] = {0};
  int64_t j = 0;
  for (; j + L <= n; j += L)
    for (int k = 0; k < L; k++) acc[k] += a[j + k];
  for (int k = 0; j + k < n; k++) acc[k] += a[j + k];
  return lanes_sum(acc);
}

DT_CLONES float dt_vec_dot(const float* restrict a, const float* restrict b, int64_t n) {
  float acc[L] = {0};
  int64_t j = 0;
  for (; j + L <= n; j += L)
    for (int k = 0; k < L; k++) acc[k] += a[j + k] * b[j + k];
  for (int k = 0; j + k < n; k++) acc[k] += a[j + k] * b[j + k];
  return lanes_sum(acc);
}

DT_CLONES void dt_vec_add(float* restrict y, const float* restrict a, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] += a[i];
}

DT_CLONES void dt_vec_fma(float* restrict y, const float* restrict a, const float* restrict b,
                          int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] += a[i] * b[i];
}

//---------------------------------------------------------------------------------------------
// layer normalisation rows (see lnorm in ops.c)

DT_CLONES float dt_vec_lnorm_row(const float* restrict x, float* restrict h, int n, float eps) {
  float mu = dt_vec_sum(x, n) / n;
#pragma omp simd
  for (int j = 0; j < n; j++) h[j] = x[j] - mu;
  float r = 1.0f / sqrtf(dt_vec_dot(h, h, n) / n + eps);
#pragma omp simd
  for (int j = 0; j < n; j++) h[j] *= r;
  return r;
}

DT_CLONES void dt_vec_lnorm_j(const float* restrict h, const float* restrict v, float r, int n,
                              float* restrict out) {
  float s[L] = {0}, d[L] = {0};
  int j = 0;
  for (; j + L <= n; j += L)
    for (int k = 0; k < L; k++) s[k] += v[j + k], d[k] += h[j + k] * v[j + k];
  for (int k = 0; j + k < n; k++) s[k] += v[j + k], d[k] += h[j + k] * v[j + k];
  float a = lanes_sum(s) / n, b = lanes_sum(d) / n;
#pragma omp simd
  for (j = 0; j < n; j++) out[j] += r * (v[j] - a - h[j] * b);
}

DT_CLONES void dt_vec_lnorm_affine(const float* restrict h, const float* restrict hd,
                                   const float* restrict gain, const float* restrict bias,
                                   float* restrict y, float* restrict yd, int n) {
  if (gain && bias) {
#pragma omp simd
    for (int j = 0; j < n; j++) y[j] = h[j] * gain[j] + bias[j];
  } else if (gain) {
#pragma omp simd
    for (int j = 0; j < n; j++) y[j] = h[j] * gain[j];
  } else {
#pragma omp simd
    for (int j = 0; j < n; j++) y[j] = h[j] + bias[j];
  }
  if (!yd) return;
  if (gain) {
#pragma omp simd
    for (int j = 0; j < n; j++) yd[j] = hd[j] * gain[j];
  } else {
#pragma omp simd
    for (int j = 0; j < n; j++) yd[j] = hd[j];
  }
}

DT_CLONES void dt_vec_lnorm_j2(const float* restrict h, const float* restrict hd,
                               const float* restrict xd, const float* restrict u, float r, int n,
                               float* restrict out) {
  float am[L] = {0}, ahu[L] = {0}, ahdu[L] = {0}, asu[L] = {0};
  int j = 0;
#define J2_ACC(k)                                                                         \
  am[k] += h[j + k] * xd[j + k], ahu[k] += h[j + k] * u[j + k], ahdu[k] += hd[j + k] * u[j + k], \
      asu[k] += u[j + k]
  for (; j + L <= n; j += L)
    for (int k = 0; k < L; k++) J2_ACC(k);
  for (int k = 0; j + k < n; k++) J2_ACC(k);
#undef J2_ACC
  float m = lanes_sum(am) / n, hu = lanes_sum(ahu), hdu = lanes_sum(ahdu);
  float mu = lanes_sum(asu) / n, mhu = hu / n, rn = r / n;
#pragma omp simd
  for (j = 0; j < n; j++) {
    float ju = r * (u[j] - mu - h[j] * mhu);
    out[j] += -r * m * ju - rn * (hd[j] * hu + h[j] * hdu);
  }
}

DT_CLONES void dt_vec_mul(float* restrict y, const float* restrict a, const float* restrict b,
                          int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}
