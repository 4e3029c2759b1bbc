// SPDX-License-Identifier: MIT
// Vectorised elementwise kernels (internal).
#ifndef DIFFTOP_VECMATH_H
#define DIFFTOP_VECMATH_H

#include <stdint.h>

// y = elu(x) (alpha 1).
void dt_vec_elu(const float* x, float* y, int64_t n);

// gx += g * elu'(x), with elu'(x) = y + 1 for x <= 0.
void dt_vec_elu_backward(const float* x, const float* y, const float* g, float* gx, int64_t n);

// y = tanh(x).
void dt_vec_tanh(const float* x, float* y, int64_t n);

#endif
