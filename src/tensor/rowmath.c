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
// Reductions keep 16 partial sums, element j going to lane j % 16, combined in a fixed tree:
// the order of the additions depends on n only, not on the vector width chosen at load time
// nor on the buffers' alignment (a tape with tangents lays out memory differently from one
// without, and both must give the same values). The lanes are a GCC vector type: one zmm
// register with AVX-512, two ymm or four xmm registers otherwise.

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4), may_alias));

// (macros and pointers rather than functions taking or returning v16: the SSE2 clone would
// pass them differently from the AVX-512 one, which GCC warns about)

// 16 floats from p (any alignment)
#define ld(p) (*(const v16u*)(p))

// the m < 16 floats from p in the first lanes, zeros after them
#define ld_tail(p, m) ({ v16 t_; ld_tail_to(&t_, (p), (m)); t_; })
static inline void ld_tail_to(v16* t, const float* p, int64_t m) {
  for (int k = 0; k < 16; k++) (*t)[k] = k < m ? p[k] : 0.0f;
}

// the 16 lanes' sum, in a fixed tree
#define lanes_sum(a) lanes_sum_of(&(a))
static inline float lanes_sum_of(const v16* a) {
  float s8[8], s4[4];
  for (int k = 0; k < 8; k++) s8[k] = (*a)[k] + (*a)[k + 8];
  for (int k = 0; k < 4; k++) s4[k] = s8[k] + s8[k + 4];
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
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

// three passes over the row: the sum; the centred values and their squares; the scaling
// (with the affine output)
DT_CLONES float dt_vec_lnorm_row(const float* restrict x, float* restrict h,
                                 const float* restrict gain, const float* restrict bias,
                                 float* restrict y, int n, float eps) {
  v16 s = {0}, q = {0};
  int j = 0;
  for (; j + 16 <= n; j += 16) s += ld(x + j);
  if (j < n) s += ld_tail(x + j, n - j);
  float mu = lanes_sum(s) / n;
  for (j = 0; j + 16 <= n; j += 16) {
    v16 c = ld(x + j) - mu;
    *(v16u*)(h + j) = c;
    q += c * c;
  }
  if (j < n) {
    for (int k = j; k < n; k++) h[k] = x[k] - mu;
    v16 c = ld_tail(h + j, n - j);
    q += c * c;
  }
  float r = 1.0f / sqrtf(lanes_sum(q) / n + eps);
  if (!y) {
#pragma omp simd
    for (j = 0; j < n; j++) h[j] *= r;
  } else if (gain && bias) {
#pragma omp simd
    for (j = 0; j < n; j++) {
      float v = h[j] * r;
      h[j] = v;
      y[j] = v * gain[j] + bias[j];
    }
  } else if (gain) {
#pragma omp simd
    for (j = 0; j < n; j++) {
      float v = h[j] * r;
      h[j] = v;
      y[j] = v * gain[j];
    }
  } else {
#pragma omp simd
    for (j = 0; j < n; j++) {
      float v = h[j] * r;
      h[j] = v;
      y[j] = bias ? v + bias[j] : v;
    }
  }
  return r;
}

DT_CLONES void dt_vec_lnorm_j(const float* restrict h, const float* restrict v, float r, int n,
                              float* restrict out, int acc) {
  v16 s = {0}, d = {0};
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    v16 vv = ld(v + j);
    s += vv, d += ld(h + j) * vv;
  }
  if (j < n) {
    v16 vv = ld_tail(v + j, n - j);
    s += vv, d += ld_tail(h + j, n - j) * vv;
  }
  float a = lanes_sum(s) / n, b = lanes_sum(d) / n;
  if (acc) {
#pragma omp simd
    for (j = 0; j < n; j++) out[j] += r * (v[j] - a - h[j] * b);
  } else {
#pragma omp simd
    for (j = 0; j < n; j++) out[j] = r * (v[j] - a - h[j] * b);
  }
}

DT_CLONES void dt_vec_lnorm_j2(const float* restrict h, const float* restrict hd,
                               const float* restrict xd, const float* restrict u, float r, int n,
                               float* restrict out) {
  v16 am = {0}, ahu = {0}, ahdu = {0}, asu = {0};
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    v16 hv = ld(h + j), uv = ld(u + j);
    am += hv * ld(xd + j), ahu += hv * uv, ahdu += ld(hd + j) * uv, asu += uv;
  }
  if (j < n) {
    int m = n - j;
    v16 hv = ld_tail(h + j, m), uv = ld_tail(u + j, m);
    am += hv * ld_tail(xd + j, m), ahu += hv * uv, ahdu += ld_tail(hd + j, m) * uv, asu += uv;
  }
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
