// SPDX-License-Identifier: MIT
// Vectorised elementwise kernels (internal). ' = tangent, g = adjoint, g' = adjoint tangent.
#ifndef DIFFTOP_VECMATH_H
#define DIFFTOP_VECMATH_H

#include <stdint.h>

// y = elu(x) (alpha 1).
void dt_vec_elu(const float* x, float* y, int64_t n);

// y = elu(x) and y' = elu'(x) x' in one pass.
void dt_vec_elu_jvp(const float* x, const float* xd, float* y, float* yd, int64_t n);

// The backward kernels add into gx (and gx') when acc != 0 and overwrite them when acc == 0.

// gx += g * elu'(x), with elu'(x) = y + 1 for x <= 0.
void dt_vec_elu_backward(const float* x, const float* y, const float* g, float* gx, int acc,
                         int64_t n);

// gx += g f'(x) and gx' += g' f'(x) + g f''(x) x' for ELU (xd may be NULL: no x' term).
void dt_vec_elu_backward2(const float* x, const float* y, const float* xd, const float* g,
                          const float* gd, float* gx, float* gxd, int acc, int64_t n);

// y = tanh(x).
void dt_vec_tanh(const float* x, float* y, int64_t n);

// y = tanh(x) and y' = (1 - y^2) x' in one pass.
void dt_vec_tanh_jvp(const float* x, const float* xd, float* y, float* yd, int64_t n);

// gx += g (1 - y^2); with gd, gx' += g' (1 - y^2) - 2 g y (1 - y^2) x' (xd may be NULL).
void dt_vec_tanh_backward(const float* y, const float* xd, const float* g, const float* gd,
                          float* gx, float* gxd, int acc, int64_t n);

// y = mish(x) = x tanh(softplus(x)).
void dt_vec_mish(const float* x, float* y, int64_t n);

// gx += g mish'(x) (overwrites gx when acc == 0).
void dt_vec_mish_backward(const float* x, const float* g, float* gx, int acc, int64_t n);

// y += a.
void dt_vec_add(float* y, const float* a, int64_t n);

// y = a * b elementwise.
void dt_vec_mul(float* y, const float* a, const float* b, int64_t n);

// y += a * b elementwise.
void dt_vec_fma(float* y, const float* a, const float* b, int64_t n);

// one layer-norm row: h = (x - mean) r with r = (var + eps)^-1/2 (returned); when y is given,
// also y = h gain + bias (gain or bias may be NULL).
float dt_vec_lnorm_row(const float* x, float* h, const float* gain, const float* bias, float* y,
                       int n, float eps);

// out += J v = r (v - mean(v) - h mean(h v)), J the normalisation's Jacobian at h
// (out = J v when acc == 0).
void dt_vec_lnorm_j(const float* h, const float* v, float r, int n, float* out, int acc);

// out += the change of J u along x': -r m J u - (r/n) (h' (h.u) + h (h'.u)), m = mean(h x').
void dt_vec_lnorm_j2(const float* h, const float* hd, const float* xd, const float* u, float r,
                     int n, float* out);

#endif
