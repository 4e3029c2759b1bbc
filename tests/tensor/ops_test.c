// SPDX-License-Identifier: MIT
// Every op of the tape (src/tensor/ops.c) against finite differences, first and second order,
// plus the tape's error handling, memory behaviour and accumulation semantics.
//
// The gradient checker (modelled on ggml's test-backend-ops "grad" mode) is driven by tables
// of cases: one row per op configuration, so adding an op means adding a row. For a row it
//   1. draws inputs x_k (tape tensors), parameters p_j, input tangents w_k and a projection c
//      from a fixed seed, and builds y = op(x, p) on a tape; L = sum_i c_i y_i, i.e. the
//      backward is seeded with c;
//   2. checks the value y against a double-precision reference when the row has one;
//   3. first order: dL/dx_k and dL/dp_j (x->grad, p->grad) against central differences
//      (L(v + eps e_i) - L(v - eps e_i)) / 2 eps for every element i of every operand;
//   4. forward tangent (JVP): y->dot against (y(x + eps w) - y(x - eps w)) / 2 eps;
//   5. second order: x_k->gdot (the Hessian-vector product H w, including mixed terms for
//      inputs without a tangent) against (grad_x L(x + eps w) - grad_x L(x - eps w)) / 2 eps,
//      and p_j->gdot (the mixed product d/dp (w . dL/dx)) against
//      (grad_p L(x + eps w) - grad_p L(x - eps w)) / 2 eps;
//   6. the first-order tape (no tangents) gives the same values and gradients as the
//      second-order one.
// Differences are taken in float32 on the graph itself; L is summed in double.
//
// Tolerances: a comparison passes when |ad - fd| <= atol + rtol * max(|ad|, |fd|).
//  - Round-off: the values and gradients the differences are made of carry a relative error
//    of a few float32 ulps (u = 6e-8) times the accumulation depth k (<= ~10 here), on sums
//    S = sum |c_i y_i| <= ~10 for these sizes (|c| <= 1, |y| <= ~3, <= 24 outputs). A central
//    difference divides that by 2 eps: <= 2 * 6e-8 * 10 * 10 / (2 * 1e-2) = 6e-4 in the worst
//    case (typically 100x less, the errors being random). Hence atol = 1e-3 at eps = 1e-2.
//  - Truncation: a central difference is off by eps^2/6 f''' relative to f' (eps^2/6 f''''
//    for the differences of gradients): 1.7e-5 |f'''/f'| at eps = 1e-2. The worst ratio in
//    these rows is rsqrt/layernorm-like, |f''''/f''| ~ 35 at x = 0.5, i.e. 6e-4; rtol = 5e-3
//    keeps an 8x margin. Piecewise-linear ops have no truncation error at all, so they use a
//    larger eps (fewer round-off) bounded by their distance to a kink.
//  - What is caught: a wrong or missing term shows as an error of the size of the term, i.e.
//    O(1e-1..1) here; the self-test below checks that a 2% error in one element is flagged.
//    With these settings the worst observed err/tol over all rows is ~0.35 (layer norm's
//    HVP; DT_TEST_VERBOSE=1 prints it per row), i.e. the bounds above are not tight but
//    not loose by orders of magnitude either.
// Kinks: relu, elu (second derivative), clamp and minimum/maximum are not differentiated
// across their switching points: their data keep at least 0.08 away from them (see INIT_*),
// while a step moves an operand by at most eps * max|w| <= 0.02.
#pragma GCC diagnostic ignored "-Wformat-zero-length"  // CHECK(cond) without a message
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"  // table rows name what they set
#include <stdint.h>

#include "test.h"

enum { MAXIN = 3, MAXPAR = 10, MAXN = 256 };

// how an operand is drawn
enum {
  INIT_UNIF = 0,   // uniform in [lo, hi]
  INIT_AWAY0,      // |v| uniform in [lo, hi], random sign (relu, elu, divisors)
  INIT_GRID,       // a multiple of 1/4 in [lo, hi] plus jitter in [-0.02, 0.02]
  INIT_GRID_HALF   // an odd multiple of 1/8 plus jitter: >= 0.085 away from any GRID value
};

typedef struct Spec {
  int ndim;
  int shape[DT_MAX_DIMS];
  int init;
  float lo, hi;
} Spec;

typedef struct OpCase OpCase;
// v: the tape inputs followed by the parameters; n = nx + np
typedef dtTensor* (*BuildFn)(dtTape* t, dtTensor** v, int n, const OpCase* c);
typedef void (*RefFn)(const OpCase* c, dtTensor** v, int n, double* y);
typedef int (*AcceptFn)(const OpCase* c);

struct OpCase {
  const char* name;
  BuildFn build;
  RefFn ref;        // double-precision reference of the value (optional)
  int nx;           // tape inputs (all require grad)
  Spec x[MAXIN];
  int np;           // parameters (dt_param_new)
  Spec p[MAXPAR];
  int tan;          // bit k: input k gets a tangent (0: all inputs)
  int iarg[5];
  float farg[4];
  const int* idx;   // gather indices
  int nidx;
  float eps, atol, rtol;  // 0: defaults below
  AcceptFn accept;  // optional: reject ill-conditioned data (a new seed is drawn)
};

#define DEF_EPS 1e-2f
#define DEF_ATOL 1e-3f
#define DEF_RTOL 5e-3f

// shapes: default init is uniform in [-1, 1]
#define S0() {0, {0}, INIT_UNIF, -1, 1}
#define S0I(i, l, h) {0, {0}, i, l, h}
#define S1(a) {1, {a}, INIT_UNIF, -1, 1}
#define S2(a, b) {2, {a, b}, INIT_UNIF, -1, 1}
#define S3(a, b, c) {3, {a, b, c}, INIT_UNIF, -1, 1}
#define S4(a, b, c, d) {4, {a, b, c, d}, INIT_UNIF, -1, 1}
#define S1I(a, i, l, h) {1, {a}, i, l, h}
#define S4I(a, b, c, d, i, l, h) {4, {a, b, c, d}, i, l, h}
#define S2I(a, b, i, l, h) {2, {a, b}, i, l, h}
#define S3I(a, b, c, i, l, h) {3, {a, b, c}, i, l, h}

//---------------------------------------------------------------------------------------------
// builders

static dtTensor* b_linear(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)c;
  return dt_linear(t, v[0], v[1], n > 2 ? v[2] : NULL);
}

static dtTensor* b_matmul(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n, (void)c;
  return dt_matmul(t, v[0], v[1]);
}

static dtTensor* b_binary(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n;
  switch (c->iarg[0]) {
    case DT_OP_ADD: return dt_add(t, v[0], v[1]);
    case DT_OP_SUB: return dt_sub(t, v[0], v[1]);
    case DT_OP_MUL: return dt_mul(t, v[0], v[1]);
    case DT_OP_DIV: return dt_div(t, v[0], v[1]);
    case DT_OP_MIN: return dt_minimum(t, v[0], v[1]);
    case DT_OP_MAX: return dt_maximum(t, v[0], v[1]);
  }
  return NULL;
}

static dtTensor* b_affine(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n;
  return dt_affine(t, v[0], c->farg[0], c->farg[1]);
}

static dtTensor* b_unary(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n;
  return dt_unary(t, v[0], (dtUnary)c->iarg[0]);
}

static dtTensor* b_clamp(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n;
  return dt_clamp(t, v[0], c->farg[0], c->farg[1], c->iarg[0]);
}

static dtTensor* b_reduce(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n;
  return c->iarg[0] == DT_OP_SUM ? dt_sum(t, v[0], c->iarg[1]) : dt_mean(t, v[0], c->iarg[1]);
}

static dtTensor* b_concat(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n;
  return dt_concat(t, v[0], v[1], c->iarg[0]);
}

static dtTensor* b_slice(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n;
  return dt_slice(t, v[0], c->iarg[0], c->iarg[1], c->iarg[2]);
}

static dtTensor* b_reshape(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n;
  return dt_reshape(t, v[0], c->iarg[0], &c->iarg[1]);
}

static dtTensor* b_gather(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n;
  return dt_gather(t, v[0], c->idx, c->nidx);
}

// iarg[0]: has gain, iarg[1]: has bias (in that order after x); farg[0]: eps
static dtTensor* b_layernorm(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n;
  dtTensor* gain = c->iarg[0] ? v[1] : NULL;
  dtTensor* bias = c->iarg[1] ? v[1 + c->iarg[0]] : NULL;
  return dt_layernorm(t, v[0], gain, bias, c->farg[0]);
}

static dtTensor* b_mse(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n, (void)c;
  return dt_mse(t, v[0], v[1]);
}

static dtTensor* b_logsumexp(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n, (void)c;
  return dt_logsumexp(t, v[0]);
}

// an intermediate used twice: y = tanh(x) * exp(tanh(x)) + tanh(x) (adjoints must add up)
static dtTensor* b_fanout(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n, (void)c;
  dtTensor* h = dt_tanh(t, v[0]);
  return dt_add(t, dt_mul(t, h, dt_exp(t, h)), h);
}

// A TD-MPC-like Q function: q = W4 tanh(LN(W3 elu(W2 elu(W1 [s, a] + b1) + b2) + b3)) + b4
static dtTensor* net_z[2];  // the ELU pre-activations of the last build (for accept)
static dtTensor* b_network(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n, (void)c;
  dtTensor *s = v[0], *a = v[1], **p = v + 2;
  dtTensor* x = dt_concat(t, s, a, -1);
  net_z[0] = dt_linear(t, x, p[0], p[1]);
  net_z[1] = dt_linear(t, dt_elu(t, net_z[0]), p[2], p[3]);
  dtTensor* h = dt_linear(t, dt_elu(t, net_z[1]), p[4], p[5]);
  h = dt_tanh(t, dt_layernorm(t, h, p[6], p[7], 1e-5f));
  return dt_linear(t, h, p[8], p[9]);
}

// conv2d: iarg[0] stride, iarg[1] 1 when a bias follows x and W
static dtTensor* b_conv(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n;
  return dt_conv2d(t, v[0], v[1], c->iarg[1] ? v[2] : NULL, c->iarg[0]);
}

// two convolutions with a tanh between them (a curved composition for the HVP):
// y = conv(tanh(conv(x, W1, b1, 2)), W2, b2, 1)
static dtTensor* b_convnet(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n, (void)c;
  dtTensor* h = dt_tanh(t, dt_conv2d(t, v[0], v[1], v[2], 2));
  return dt_conv2d(t, h, v[3], v[4], 1);
}

// conv1d / conv_transpose1d: iarg[0] stride, iarg[1] padding, iarg[2] 1 when a bias follows
// x and W, iarg[3] 1 for the transposed convolution
static dtTensor* b_conv1d(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n;
  dtTensor* b = c->iarg[2] ? v[2] : NULL;
  if (c->iarg[3]) return dt_conv_transpose1d(t, v[0], v[1], b, c->iarg[0], c->iarg[1]);
  return dt_conv1d(t, v[0], v[1], b, c->iarg[0], c->iarg[1]);
}

// the U-Net's down and up steps with a curve between them (for the HVP):
// y = conv_transpose1d(tanh(conv1d(x, W1, b1, stride 2, pad 1)), W2, b2, stride 2, pad 1)
static dtTensor* b_conv1d_net(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n, (void)c;
  dtTensor* h = dt_tanh(t, dt_conv1d(t, v[0], v[1], v[2], 2, 1));
  return dt_conv_transpose1d(t, h, v[3], v[4], 2, 1);
}

// iarg[0] groups, iarg[1] has gain, iarg[2] has bias (in that order after x); farg[0] eps
static dtTensor* b_groupnorm(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n;
  dtTensor* gain = c->iarg[1] ? v[1] : NULL;
  dtTensor* bias = c->iarg[2] ? v[1 + c->iarg[1]] : NULL;
  return dt_groupnorm(t, v[0], c->iarg[0], gain, bias, c->farg[0]);
}

static dtTensor* b_mish(dtTape* t, dtTensor** v, int n, const OpCase* c) {
  (void)n, (void)c;
  return dt_mish(t, v[0]);
}

//---------------------------------------------------------------------------------------------
// double-precision references of the values

// direct convolution by its definition (no im2col)
static void r_conv(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)n;
  const dtTensor *x = v[0], *W = v[1], *b = c->iarg[1] ? v[2] : NULL;
  int B = x->shape[0], C = x->shape[1], H = x->shape[2], Wd = x->shape[3];
  int O = W->shape[0], k = W->shape[2], s = c->iarg[0];
  int OH = (H - k) / s + 1, OW = (Wd - k) / s + 1;
  for (int bb = 0; bb < B; bb++)
    for (int o = 0; o < O; o++)
      for (int i = 0; i < OH; i++)
        for (int j = 0; j < OW; j++) {
          double acc = b ? b->val[o] : 0.0;
          for (int ch = 0; ch < C; ch++)
            for (int p = 0; p < k; p++)
              for (int q = 0; q < k; q++)
                acc += (double)x->val[((bb * C + ch) * H + i * s + p) * Wd + j * s + q] *
                       W->val[((o * C + ch) * k + p) * k + q];
          y[((bb * O + o) * OH + i) * OW + j] = acc;
        }
}

// 1-D convolution and transposed convolution by their definitions (torch's formulas):
//   conv:  y[b, o, l] = bias[o] + sum_{c, i} x[b, c, l s + i - p] W[o, c, i]  (0 outside x)
//   convT: y[b, o, q] = bias[o] + sum_{c, l, i: l s + i - p = q} x[b, c, l] W[c, o, i]
static void r_conv1d(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)n;
  const dtTensor *x = v[0], *W = v[1], *b = c->iarg[2] ? v[2] : NULL;
  int B = x->shape[0], C = x->shape[1], L = x->shape[2], k = W->shape[2];
  int s = c->iarg[0], p = c->iarg[1], tr = c->iarg[3];
  int O = tr ? W->shape[1] : W->shape[0];
  int Ly = tr ? (L - 1) * s - 2 * p + k : (L + 2 * p - k) / s + 1;
  for (int bb = 0; bb < B; bb++)
    for (int o = 0; o < O; o++)
      for (int q = 0; q < Ly; q++) y[(bb * O + o) * Ly + q] = b ? b->val[o] : 0.0;
  for (int bb = 0; bb < B; bb++)
    for (int ch = 0; ch < C; ch++)
      for (int o = 0; o < O; o++)
        for (int i = 0; i < k; i++) {
          if (!tr) {
            for (int l = 0; l < Ly; l++) {
              int q = l * s + i - p;
              if (q >= 0 && q < L)
                y[(bb * O + o) * Ly + l] +=
                    (double)x->val[(bb * C + ch) * L + q] * W->val[(o * C + ch) * k + i];
            }
          } else {
            for (int l = 0; l < L; l++) {
              int q = l * s + i - p;
              if (q >= 0 && q < Ly)
                y[(bb * O + o) * Ly + q] +=
                    (double)x->val[(bb * C + ch) * L + l] * W->val[(ch * O + o) * k + i];
            }
          }
        }
}

// group norm as torch.nn.GroupNorm: statistics over the C/G channels of a group and all positions
static void r_groupnorm(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)n;
  const dtTensor* x = v[0];
  const dtTensor* gain = c->iarg[1] ? v[1] : NULL;
  const dtTensor* bias = c->iarg[2] ? v[1 + c->iarg[1]] : NULL;
  int B = x->shape[0], C = x->shape[1], G = c->iarg[0];
  int64_t L = x->size / ((int64_t)B * C), gs = (C / G) * L;
  for (int bb = 0; bb < B; bb++)
    for (int g = 0; g < G; g++) {
      const float* xr = x->val + (bb * G + g) * gs;
      double mu = 0, var = 0;
      for (int64_t k = 0; k < gs; k++) mu += xr[k];
      mu /= gs;
      for (int64_t k = 0; k < gs; k++) var += (xr[k] - mu) * (xr[k] - mu);
      var /= gs;
      for (int64_t k = 0; k < gs; k++) {
        int ch = g * (C / G) + (int)(k / L);
        double z = (xr[k] - mu) / sqrt(var + c->farg[0]);
        if (gain) z *= gain->val[ch];
        if (bias) z += bias->val[ch];
        y[(bb * G + g) * gs + k] = z;
      }
    }
}

static void r_mish(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)c, (void)n;
  for (int64_t i = 0; i < v[0]->size; i++) {
    double x = v[0]->val[i];
    y[i] = x * tanh(log1p(exp(x)));
  }
}

static void r_linear(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)c;
  const dtTensor *x = v[0], *W = v[1], *b = n > 2 ? v[2] : NULL;
  int out = W->shape[0], in = W->shape[1], M = (int)(x->size / in);
  for (int i = 0; i < M; i++)
    for (int o = 0; o < out; o++) {
      double s = b ? b->val[o] : 0.0;
      for (int k = 0; k < in; k++) s += (double)x->val[i * in + k] * W->val[o * in + k];
      y[i * out + o] = s;
    }
}

static void r_matmul(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)c, (void)n;
  const dtTensor *a = v[0], *b = v[1];
  int m = a->shape[0], k = a->shape[1], nn = b->shape[1];
  for (int i = 0; i < m; i++)
    for (int j = 0; j < nn; j++) {
      double s = 0;
      for (int l = 0; l < k; l++) s += (double)a->val[i * k + l] * b->val[l * nn + j];
      y[i * nn + j] = s;
    }
}

// iarg[1]: the broadcast the row means (0 same, 1 scalar, 2 row, 3 column, 4 middle with
// iarg[2] = the inner extent b repeats over)
static void r_binary(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)n;
  const dtTensor *a = v[0], *b = v[1];
  for (int64_t i = 0; i < a->size; i++) {
    int64_t j = c->iarg[1] == 0 ? i : c->iarg[1] == 1 ? 0 : c->iarg[1] == 2 ? i % b->size
              : c->iarg[1] == 4 ? (i / c->iarg[2]) % b->size : i / (a->size / b->size);
    double p = a->val[i], q = b->val[j];
    switch (c->iarg[0]) {
      case DT_OP_ADD: y[i] = p + q; break;
      case DT_OP_SUB: y[i] = p - q; break;
      case DT_OP_MUL: y[i] = p * q; break;
      case DT_OP_DIV: y[i] = p / q; break;
      case DT_OP_MIN: y[i] = p < q ? p : q; break;
      case DT_OP_MAX: y[i] = p > q ? p : q; break;
    }
  }
}

static void r_affine(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)n;
  for (int64_t i = 0; i < v[0]->size; i++) y[i] = (double)c->farg[0] * v[0]->val[i] + c->farg[1];
}

static void r_unary(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)n;
  for (int64_t i = 0; i < v[0]->size; i++) {
    double x = v[0]->val[i];
    switch (c->iarg[0]) {
      case DT_ELU: y[i] = x > 0 ? x : expm1(x); break;
      case DT_RELU: y[i] = x > 0 ? x : 0; break;
      case DT_TANH: y[i] = tanh(x); break;
      case DT_SIGMOID: y[i] = 1 / (1 + exp(-x)); break;
      case DT_EXP: y[i] = exp(x); break;
      case DT_LOG: y[i] = log(x); break;
      case DT_SOFTPLUS: y[i] = log1p(exp(x)); break;
      case DT_SQUARE: y[i] = x * x; break;
      case DT_SQRT: y[i] = sqrt(x); break;
      case DT_RSQRT: y[i] = 1 / sqrt(x); break;
      case DT_NEG: y[i] = -x; break;
    }
  }
}

static void r_clamp(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)n;
  for (int64_t i = 0; i < v[0]->size; i++) {
    double x = v[0]->val[i];
    y[i] = x < c->farg[0] ? c->farg[0] : x > c->farg[1] ? c->farg[1] : x;
  }
}

// reduce over an axis by explicit multi-index arithmetic (independent of the op's split)
static void r_reduce(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)n;
  const dtTensor* x = v[0];
  int axis = c->iarg[1], mean = c->iarg[0] == DT_OP_MEAN;
  if (axis == DT_AXIS_ALL) {
    double s = 0;
    for (int64_t i = 0; i < x->size; i++) s += x->val[i];
    y[0] = mean ? s / (double)x->size : s;
    return;
  }
  if (axis < 0) axis += x->ndim;
  int64_t ny = x->size / x->shape[axis];
  for (int64_t j = 0; j < ny; j++) y[j] = 0;
  for (int64_t i = 0; i < x->size; i++) {
    // unravel i, drop the axis, ravel into y
    int64_t rem = i, j = 0, stride = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
      int id = (int)(rem % x->shape[d]);
      rem /= x->shape[d];
      if (d != axis) {
        j += id * stride;
        stride *= x->shape[d];
      }
    }
    y[j] += x->val[i];
  }
  if (mean)
    for (int64_t j = 0; j < ny; j++) y[j] /= x->shape[axis];
}

static void unravel(const dtTensor* x, int64_t i, int* id) {
  for (int d = x->ndim - 1; d >= 0; d--) {
    id[d] = (int)(i % x->shape[d]);
    i /= x->shape[d];
  }
}

static int64_t ravel(int ndim, const int* shape, const int* id) {
  int64_t i = 0;
  for (int d = 0; d < ndim; d++) i = i * shape[d] + id[d];
  return i;
}

static void r_concat(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)n;
  const dtTensor *a = v[0], *b = v[1];
  int axis = c->iarg[0] < 0 ? c->iarg[0] + a->ndim : c->iarg[0];
  int shape[DT_MAX_DIMS], id[DT_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  shape[axis] += b->shape[axis];
  for (int64_t i = 0; i < a->size; i++) {
    unravel(a, i, id);
    y[ravel(a->ndim, shape, id)] = a->val[i];
  }
  for (int64_t i = 0; i < b->size; i++) {
    unravel(b, i, id);
    id[axis] += a->shape[axis];
    y[ravel(a->ndim, shape, id)] = b->val[i];
  }
}

static void r_slice(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)n;
  const dtTensor* x = v[0];
  int axis = c->iarg[0] < 0 ? c->iarg[0] + x->ndim : c->iarg[0];
  int start = c->iarg[1], len = c->iarg[2], shape[DT_MAX_DIMS], id[DT_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[axis] = len;
  for (int64_t i = 0; i < x->size; i++) {
    unravel(x, i, id);
    if (id[axis] < start || id[axis] >= start + len) continue;
    id[axis] -= start;
    y[ravel(x->ndim, shape, id)] = x->val[i];
  }
}

static void r_reshape(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)c, (void)n;
  for (int64_t i = 0; i < v[0]->size; i++) y[i] = v[0]->val[i];
}

static void r_gather(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)n;
  const dtTensor* x = v[0];
  int64_t row = x->size / x->shape[0];
  for (int i = 0; i < c->nidx; i++)
    for (int64_t k = 0; k < row; k++) y[i * row + k] = x->val[c->idx[i] * row + k];
}

static void r_layernorm(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)n;
  const dtTensor* x = v[0];
  const dtTensor* gain = c->iarg[0] ? v[1] : NULL;
  const dtTensor* bias = c->iarg[1] ? v[1 + c->iarg[0]] : NULL;
  int d = x->shape[x->ndim - 1];
  int64_t rows = x->size / d;
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x->val + r * d;
    double mu = 0, var = 0;
    for (int k = 0; k < d; k++) mu += xr[k];
    mu /= d;
    for (int k = 0; k < d; k++) var += (xr[k] - mu) * (xr[k] - mu);
    var /= d;
    for (int k = 0; k < d; k++) {
      double z = (xr[k] - mu) / sqrt(var + c->farg[0]);
      if (gain) z *= gain->val[k];
      if (bias) z += bias->val[k];
      y[r * d + k] = z;
    }
  }
}

static void r_mse(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)c, (void)n;
  double s = 0;
  for (int64_t i = 0; i < v[0]->size; i++) {
    double e = (double)v[0]->val[i] - v[1]->val[i];
    s += e * e;
  }
  y[0] = s / (double)v[0]->size;
}

static void r_logsumexp(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)c, (void)n;
  int B = v[0]->shape[0], K = v[0]->shape[1];
  for (int b = 0; b < B; b++) {
    double s = 0;
    for (int k = 0; k < K; k++) s += exp((double)v[0]->val[(size_t)b * K + k]);
    y[b] = log(s);
  }
}

static void r_fanout(const OpCase* c, dtTensor** v, int n, double* y) {
  (void)c, (void)n;
  for (int64_t i = 0; i < v[0]->size; i++) {
    double h = tanh(v[0]->val[i]);
    y[i] = h * exp(h) + h;
  }
}

//---------------------------------------------------------------------------------------------
// the checker

typedef struct Result {
  int64_t ny;
  double L;
  float y[MAXN], ydot[MAXN];
  float gx[MAXIN][MAXN], gxdot[MAXIN][MAXN];
  float gp[MAXPAR][MAXN], gpdot[MAXPAR][MAXN];
} Result;

typedef struct Ctx {
  dtTape* t;
  dtTensor* par[MAXPAR];
  float xv[MAXIN][MAXN], wv[MAXIN][MAXN], pv[MAXPAR][MAXN];
  float c[MAXN];
  int64_t xn[MAXIN], pn[MAXPAR];
  int tanmask;
} Ctx;

static Ctx C;
static Result R0, R1, Rp, Rm;
static float xs[MAXIN][MAXN], ps[MAXPAR][MAXN];  // perturbed copies
static int g_verbose, g_quiet;
// self-test knob: 0 none, 1 corrupt a grad, 2 a gdot, 3 a forward tangent, 4 a parameter gdot
static int g_corrupt;

static int64_t spec_size(const Spec* s) {
  int64_t n = 1;
  for (int i = 0; i < s->ndim; i++) n *= s->shape[i];
  return n;
}

static float draw(dtRng* r, const Spec* s) {
  double u = dt_rng_uniform(r);
  switch (s->init) {
    case INIT_AWAY0: {
      float m = s->lo + (s->hi - s->lo) * (float)u;
      return dt_rng_uniform(r) < 0.5 ? -m : m;
    }
    case INIT_GRID:
    case INIT_GRID_HALF: {
      // grid points of the range, then an offset of 1/8 (HALF) and jitter
      float v = s->lo + (s->hi - s->lo) * (float)u;
      float g = roundf(v * 4.0f) / 4.0f;
      if (s->init == INIT_GRID_HALF) g += g + 0.125f <= s->hi ? 0.125f : -0.125f;
      return g + 0.04f * ((float)dt_rng_uniform(r) - 0.5f);
    }
    default:
      return s->lo + (s->hi - s->lo) * (float)u;
  }
}

// Build the row on the tape from operand values xv/pv (tangents wv when tangents != 0),
// backpropagate with seed c and copy out what is needed. Returns 0 on a tape error.
static int run(const OpCase* oc, float (*xv)[MAXN], float (*pv)[MAXN], int tangents, int poison,
               Result* r) {
  dtTape* t = C.t;
  dt_tape_reset(t);
  if (poison) {
    // fill the arena with NaN: an op that reads memory it did not write shows up at once
    size_t cap;
    dt_tape_memory(t, NULL, NULL, &cap);
    int64_t nf = (int64_t)(cap / sizeof(float)) - 64;
    float* junk = dt_tape_floats(t, nf);
    for (int64_t i = 0; junk && i < nf; i++) junk[i] = NAN;
    dt_tape_reset(t);
  }
  dtTensor* v[MAXIN + MAXPAR];
  static const char* names[MAXIN] = {"x0", "x1", "x2"};
  for (int k = 0; k < oc->nx; k++) {
    v[k] = dt_input(t, oc->x[k].ndim, oc->x[k].shape, xv[k], names[k]);
    dt_requires_grad(t, v[k]);
    if (tangents && (C.tanmask >> k & 1)) dt_set_tangent(t, v[k], C.wv[k]);
  }
  for (int j = 0; j < oc->np; j++) {
    memcpy(C.par[j]->val, pv[j], (size_t)C.pn[j] * sizeof(float));
    dt_param_zero_grad(C.par[j]);
    v[oc->nx + j] = C.par[j];
  }
  dtTensor* y = oc->build(t, v, oc->nx + oc->np, oc);
  if (!y || y->size > MAXN) {
    CHECK(0, "%s: build failed: %s", oc->name, dt_tape_error(t));
    return 0;
  }
  r->ny = y->size;
  memcpy(r->y, y->val, (size_t)y->size * sizeof(float));
  CHECK(!tangents || y->dot, "%s: no forward tangent on the output", oc->name);
  CHECK(tangents || !y->dot, "%s: a forward tangent without tangent inputs", oc->name);
  for (int64_t i = 0; i < y->size; i++) r->ydot[i] = y->dot ? y->dot[i] : 0.0f;
  r->L = 0;
  for (int64_t i = 0; i < y->size; i++) r->L += (double)C.c[i] * y->val[i];
  dtStatus st = dt_backward(t, y, C.c);
  if (st != DT_OK) {
    CHECK(0, "%s: backward failed: %s", oc->name, dt_tape_error(t));
    return 0;
  }
  for (int k = 0; k < oc->nx; k++)
    for (int64_t i = 0; i < C.xn[k]; i++) {
      r->gx[k][i] = v[k]->grad ? v[k]->grad[i] : 0.0f;
      r->gxdot[k][i] = v[k]->gdot ? v[k]->gdot[i] : 0.0f;
    }
  for (int j = 0; j < oc->np; j++)
    for (int64_t i = 0; i < C.pn[j]; i++) {
      r->gp[j][i] = C.par[j]->grad[i];
      r->gpdot[j][i] = C.par[j]->gdot[i];
    }
  if (oc->ref && poison && tangents) {
    // the value against the double reference: float32 ops of depth <= ~10 on |v| <= ~3 are
    // within 1e-5 (absolute) + 1e-5 (relative) of it
    static double ref[MAXN];
    oc->ref(oc, v, oc->nx + oc->np, ref);
    int shown = 0;
    for (int64_t i = 0; i < y->size && shown < 3; i++) {
      int ok = fabs(y->val[i] - ref[i]) <= 1e-5 + 1e-5 * fabs(ref[i]);
      CHECK(ok, "%s: y[%lld] = %.8g, reference %.8g", oc->name, (long long)i,
            (double)y->val[i], ref[i]);
      shown += !ok;
    }
  }
  return 1;
}

typedef struct Tally {
  int bad, printed;
  double worst[5];  // grad, param grad, jvp, hvp, mixed: worst err / tol
} Tally;

static void cmp(Tally* ty, const OpCase* oc, int kind, const char* what, int k, int64_t i,
                double ad, double fd, double atol, double rtol) {
  static const char* kinds[5] = {"grad", "param grad", "jvp", "hvp", "mixed"};
  double err = fabs(ad - fd), tol = atol + rtol * fmax(fabs(ad), fabs(fd));
  if (err / tol > ty->worst[kind]) ty->worst[kind] = err / tol;
  if (!(err <= tol)) {  // also catches NaN
    ty->bad++;
    if (!g_quiet && ty->printed++ < 6)
      fprintf(stderr, "  %s: %s %s%d[%lld]: autodiff %.8g, finite diff %.8g (err %.2g, tol "
              "%.2g)\n", oc->name, kinds[kind], what, k, (long long)i, ad, fd, err, tol);
  }
}

static int64_t out_size(const OpCase* oc) {
  dtTensor* v[MAXIN + MAXPAR];
  dt_tape_reset(C.t);
  for (int k = 0; k < oc->nx; k++) v[k] = dt_input(C.t, oc->x[k].ndim, oc->x[k].shape, NULL, "");
  for (int j = 0; j < oc->np; j++) v[oc->nx + j] = C.par[j];
  dtTensor* y = oc->build(C.t, v, oc->nx + oc->np, oc);
  return y ? y->size : -1;
}

// Draw data for the row (seed from the row index) and run every check; returns mismatches.
static int check_case(const OpCase* oc, int row) {
  float eps = oc->eps ? oc->eps : DEF_EPS;
  double atol = oc->atol ? oc->atol : DEF_ATOL, rtol = oc->rtol ? oc->rtol : DEF_RTOL;
  Tally ty = {0};
  C.tanmask = oc->tan ? oc->tan : (1 << oc->nx) - 1;
  for (int j = 0; j < oc->np; j++) {
    C.par[j] = dt_param_new("p", oc->p[j].ndim, oc->p[j].shape);
    C.pn[j] = spec_size(&oc->p[j]);
  }
  for (int k = 0; k < oc->nx; k++) C.xn[k] = spec_size(&oc->x[k]);
  int64_t ny = out_size(oc);
  CHECK(ny > 0 && ny <= MAXN, "%s: output size %lld: %s", oc->name, (long long)ny,
        dt_tape_error(C.t));
  if (ny <= 0 || ny > MAXN) return 1;

  // data: redrawn (next seed) while the row's accept() rejects it
  int attempt = 0;
  for (;; attempt++) {
    dtRng rng;
    dt_rng_seed(&rng, 1000u * (uint64_t)(row + 1) + (uint64_t)attempt);
    for (int k = 0; k < oc->nx; k++)
      for (int64_t i = 0; i < C.xn[k]; i++) {
        C.xv[k][i] = draw(&rng, &oc->x[k]);
        C.wv[k][i] = 2.0f * (float)dt_rng_uniform(&rng) - 1.0f;
      }
    for (int j = 0; j < oc->np; j++)
      for (int64_t i = 0; i < C.pn[j]; i++) C.pv[j][i] = draw(&rng, &oc->p[j]);
    for (int64_t i = 0; i < ny; i++) C.c[i] = 2.0f * (float)dt_rng_uniform(&rng) - 1.0f;
    if (!oc->accept) break;
    if (!run(oc, C.xv, C.pv, 1, 0, &R0)) return 1;
    if (oc->accept(oc)) break;
    if (attempt == 100) {
      CHECK(0, "%s: no well-conditioned data in 100 draws", oc->name);
      return 1;
    }
  }

  // base point with tangents (second order) and without (first order)
  if (!run(oc, C.xv, C.pv, 1, 1, &R0) || !run(oc, C.xv, C.pv, 0, 1, &R1)) return 1;
  switch (g_corrupt) {  // the self-test: one element off by 2% + 1e-2
    case 1: R0.gx[0][0] = R0.gx[0][0] * 1.02f + 1e-2f; break;
    case 2: R0.gxdot[0][0] = R0.gxdot[0][0] * 1.02f + 1e-2f; break;
    case 3: R0.ydot[0] = R0.ydot[0] * 1.02f + 1e-2f; break;
    case 4: R0.gpdot[0][0] = R0.gpdot[0][0] * 1.02f + 1e-2f; break;
  }
  // the first-order tape agrees with the second-order one to 1e-6 relative: the same arithmetic,
  // but at small batch a linear layer multiplies a value and its tangent in one stacked product,
  // whose BLAS kernel may sum in another order than the single-row one
  for (int64_t i = 0; i < ny; i++)
    CHECK(fabsf(R0.y[i] - R1.y[i]) <= 1e-6f * (1 + fabsf(R1.y[i])), "%s: y[%lld] depends on "
          "tangents", oc->name, (long long)i);
  for (int k = 0; k < oc->nx; k++)
    for (int64_t i = 0; i < C.xn[k]; i++) {
      CHECK(fabsf(R0.gx[k][i] - R1.gx[k][i]) <= 1e-6f * (1 + fabsf(R1.gx[k][i])) ||
                g_corrupt, "%s: x%d grad[%lld] depends on tangents", oc->name, k, (long long)i);
      CHECK(R1.gxdot[k][i] == 0.0f, "%s: gdot on a first-order tape", oc->name);
    }
  for (int j = 0; j < oc->np; j++)
    for (int64_t i = 0; i < C.pn[j]; i++)
      CHECK(fabsf(R0.gp[j][i] - R1.gp[j][i]) <= 1e-6f * (1 + fabsf(R1.gp[j][i])),
            "%s: p%d grad[%lld] depends on tangents", oc->name, j, (long long)i);

  // first order: every element of every input and parameter
  for (int k = 0; k < oc->nx; k++) {
    for (int64_t i = 0; i < C.xn[k]; i++) {
      memcpy(xs, C.xv, sizeof xs);
      xs[k][i] = C.xv[k][i] + eps;
      if (!run(oc, xs, C.pv, 0, 0, &Rp)) return 1;
      xs[k][i] = C.xv[k][i] - eps;
      if (!run(oc, xs, C.pv, 0, 0, &Rm)) return 1;
      cmp(&ty, oc, 0, "x", k, i, R0.gx[k][i], (Rp.L - Rm.L) / (2.0 * eps), atol, rtol);
    }
  }
  for (int j = 0; j < oc->np; j++) {
    for (int64_t i = 0; i < C.pn[j]; i++) {
      memcpy(ps, C.pv, sizeof ps);
      ps[j][i] = C.pv[j][i] + eps;
      if (!run(oc, C.xv, ps, 0, 0, &Rp)) return 1;
      ps[j][i] = C.pv[j][i] - eps;
      if (!run(oc, C.xv, ps, 0, 0, &Rm)) return 1;
      cmp(&ty, oc, 1, "p", j, i, R0.gp[j][i], (Rp.L - Rm.L) / (2.0 * eps), atol, rtol);
    }
  }

  // along the tangents: x +- eps w
  memcpy(xs, C.xv, sizeof xs);
  for (int k = 0; k < oc->nx; k++)
    if (C.tanmask >> k & 1)
      for (int64_t i = 0; i < C.xn[k]; i++) xs[k][i] = C.xv[k][i] + eps * C.wv[k][i];
  if (!run(oc, xs, C.pv, 0, 0, &Rp)) return 1;
  for (int k = 0; k < oc->nx; k++)
    if (C.tanmask >> k & 1)
      for (int64_t i = 0; i < C.xn[k]; i++) xs[k][i] = C.xv[k][i] - eps * C.wv[k][i];
  if (!run(oc, xs, C.pv, 0, 0, &Rm)) return 1;
  for (int64_t i = 0; i < ny; i++)
    cmp(&ty, oc, 2, "y", 0, i, R0.ydot[i], ((double)Rp.y[i] - Rm.y[i]) / (2.0 * eps), atol,
        rtol);
  for (int k = 0; k < oc->nx; k++)
    for (int64_t i = 0; i < C.xn[k]; i++)
      cmp(&ty, oc, 3, "x", k, i, R0.gxdot[k][i], ((double)Rp.gx[k][i] - Rm.gx[k][i]) / (2.0 * eps),
          atol, rtol);
  for (int j = 0; j < oc->np; j++)
    for (int64_t i = 0; i < C.pn[j]; i++)
      cmp(&ty, oc, 4, "p", j, i, R0.gpdot[j][i],
          ((double)Rp.gp[j][i] - Rm.gp[j][i]) / (2.0 * eps), atol, rtol);

  if (g_verbose)
    printf("  %-26s eps %.0e  worst err/tol: grad %.3f  pgrad %.3f  jvp %.3f  hvp %.3f  mixed "
           "%.3f%s\n", oc->name, (double)eps, ty.worst[0], ty.worst[1], ty.worst[2],
           ty.worst[3], ty.worst[4], attempt ? " (redrawn)" : "");
  for (int j = 0; j < oc->np; j++) dt_param_free(C.par[j]);
  return ty.bad;
}

static void check_table(const OpCase* rows, int n, int row0) {
  dtTapeOpts o = dt_tape_default_opts();
  o.arena_bytes = 1u << 20;
  C.t = dt_tape_new(&o);
  CHECK(C.t != NULL);
  if (!C.t) return;
  g_verbose = getenv("DT_TEST_VERBOSE") != NULL;
  for (int i = 0; i < n; i++) {
    int bad = check_case(&rows[i], row0 + i);
    CHECK(bad == 0, "%s: %d derivative mismatches", rows[i].name, bad);
  }
  dt_tape_free(C.t);
  C.t = NULL;
}

#define ROWS(a) (a), (int)(sizeof(a) / sizeof((a)[0]))

//---------------------------------------------------------------------------------------------
// the tables

// x [.., in] with W [out, in] and b [out]: parameters (mixed products) or tape tensors with
// tangents (second-order terms through W); batch 1 uses gemv/ger, batch > 1 gemm.
static const OpCase linear_rows[] = {
    {"linear_b1_bias", b_linear, r_linear, 1, {S2(1, 3)}, 2, {S2(4, 3), S1(4)}},
    {"linear_b3_bias", b_linear, r_linear, 1, {S2(3, 3)}, 2, {S2(4, 3), S1(4)}},
    {"linear_b2_nobias", b_linear, r_linear, 1, {S2(2, 3)}, 1, {S2(4, 3)}},
    {"linear_1d_bias", b_linear, r_linear, 1, {S1(3)}, 2, {S2(2, 3), S1(2)}},
    {"linear_1d_nobias", b_linear, r_linear, 1, {S1(3)}, 1, {S2(2, 3)}},
    {"linear_3d_bias", b_linear, r_linear, 1, {S3(2, 2, 3)}, 2, {S2(4, 3), S1(4)}},
    {"linear_tapeW_b2", b_linear, r_linear, 3, {S2(2, 3), S2(4, 3), S1(4)}},
    {"linear_tapeW_b1", b_linear, r_linear, 3, {S2(1, 3), S2(4, 3), S1(4)}},
    {"linear_tapeW_nobias", b_linear, r_linear, 2, {S2(3, 3), S2(2, 3)}},
    {"linear_tapeW_tanW_only", b_linear, r_linear, 3, {S2(2, 3), S2(4, 3), S1(4)}, .tan = 2},
    {"linear_tapeW_tanx_only", b_linear, r_linear, 3, {S2(2, 3), S2(4, 3), S1(4)}, .tan = 1},
    {"matmul", b_matmul, r_matmul, 2, {S2(2, 3), S2(3, 4)}},
    {"matmul_m1", b_matmul, r_matmul, 2, {S2(1, 3), S2(3, 2)}},
    {"matmul_k1", b_matmul, r_matmul, 2, {S2(3, 1), S2(1, 2)}},
    {"matmul_tan_b_only", b_matmul, r_matmul, 2, {S2(2, 3), S2(3, 4)}, .tan = 2},
    {"matmul_param_b", b_matmul, r_matmul, 1, {S2(2, 3)}, 1, {S2(3, 4)}},
};

// broadcast modes: iarg = {op, mode}; a [2,3] (or [2,3,2]) against b of the same shape, a
// scalar (0-d or [1]), a trailing row ([3] / [3,2]) or a leading column ([2] / [2,3]).
// Piecewise-linear in each operand except mul/div: add/sub use eps 0.05 (no truncation
// error); div keeps divisors in [0.5, 1.5] (|1/b'''| <= 48 -> rtol budget as rsqrt).
#define BIN(nm, op, mode, sa, sb) {nm, b_binary, r_binary, 2, {sa, sb}, .iarg = {op, mode}}
#define BIN_E(nm, op, mode, sa, sb, e) \
  {nm, b_binary, r_binary, 2, {sa, sb}, .iarg = {op, mode}, .eps = e}
#define DIVB(a) S1I(a, INIT_AWAY0, 0.5f, 1.5f)
#define BIN_MID(nm, op, sa, sb, inner, ...) \
  {nm, b_binary, r_binary, 2, {sa, sb}, .iarg = {op, 4, inner}, __VA_ARGS__}
#define MINA2 S2I(2, 3, INIT_GRID_HALF, -1, 1)
static const OpCase binary_rows[] = {
    BIN_E("add_same", DT_OP_ADD, 0, S2(2, 3), S2(2, 3), 0.05f),
    BIN_E("add_scalar0d", DT_OP_ADD, 1, S2(2, 3), S0(), 0.05f),
    BIN_E("add_scalar1", DT_OP_ADD, 1, S2(2, 3), S1(1), 0.05f),
    BIN_E("add_row", DT_OP_ADD, 2, S2(2, 3), S1(3), 0.05f),
    BIN_E("add_col", DT_OP_ADD, 3, S2(2, 3), S1(2), 0.05f),
    BIN_E("add_row3d", DT_OP_ADD, 2, S3(2, 3, 2), S2(3, 2), 0.05f),
    BIN_E("add_col3d", DT_OP_ADD, 3, S3(2, 3, 2), S2(2, 3), 0.05f),
    BIN_E("sub_same", DT_OP_SUB, 0, S2(2, 3), S2(2, 3), 0.05f),
    BIN_E("sub_scalar", DT_OP_SUB, 1, S2(2, 3), S0(), 0.05f),
    BIN_E("sub_row", DT_OP_SUB, 2, S2(2, 3), S1(3), 0.05f),
    BIN_E("sub_col", DT_OP_SUB, 3, S2(2, 3), S1(2), 0.05f),
    BIN("mul_same", DT_OP_MUL, 0, S2(2, 3), S2(2, 3)),
    BIN("mul_scalar", DT_OP_MUL, 1, S2(2, 3), S0()),
    BIN("mul_row", DT_OP_MUL, 2, S2(2, 3), S1(3)),
    BIN("mul_col", DT_OP_MUL, 3, S2(2, 3), S1(2)),
    BIN("mul_row3d", DT_OP_MUL, 2, S3(2, 3, 2), S2(3, 2)),
    BIN("mul_col3d", DT_OP_MUL, 3, S3(2, 3, 2), S2(2, 3)),
    BIN("mul_self_shape_sq", DT_OP_MUL, 2, S2(3, 3), S1(3)),  // [3,3] * [3]: row, not column
    {"mul_same_tan_a_only", b_binary, r_binary, 2, {S2(2, 3), S2(2, 3)}, .tan = 1,
     .iarg = {DT_OP_MUL, 0}},
    {"mul_col_tan_b_only", b_binary, r_binary, 2, {S2(2, 3), S1(2)}, .tan = 2,
     .iarg = {DT_OP_MUL, 3}},
    BIN("div_same", DT_OP_DIV, 0, S2(2, 3), S2I(2, 3, INIT_AWAY0, 0.5f, 1.5f)),
    BIN("div_scalar", DT_OP_DIV, 1, S2(2, 3), S0I(INIT_AWAY0, 0.5f, 1.5f)),
    BIN("div_row", DT_OP_DIV, 2, S2(2, 3), DIVB(3)),
    BIN("div_col", DT_OP_DIV, 3, S2(2, 3), DIVB(2)),
    BIN("div_col3d", DT_OP_DIV, 3, S3(2, 3, 2), S2I(2, 3, INIT_AWAY0, 0.5f, 1.5f)),
    {"div_same_tan_b_only", b_binary, r_binary, 2, {S2(2, 3), S2I(2, 3, INIT_AWAY0, 0.5f, 1.5f)},
     .tan = 2, .iarg = {DT_OP_DIV, 0}},
    {"div_row_tan_a_only", b_binary, r_binary, 2, {S2(2, 3), DIVB(3)}, .tan = 1,
     .iarg = {DT_OP_DIV, 2}},
    // min/max: a on odd multiples of 1/8, b on multiples of 1/4 (+-0.02 jitter each), so
    // |a - b| >= 0.085 while a step moves each by <= eps = 0.02: no tie is ever crossed
    BIN_E("min_same", DT_OP_MIN, 0, MINA2, S2I(2, 3, INIT_GRID, -1, 1), 0.02f),
    BIN_E("min_scalar", DT_OP_MIN, 1, MINA2, S0I(INIT_GRID, -0.3f, 0.3f), 0.02f),
    BIN_E("min_row", DT_OP_MIN, 2, MINA2, S1I(3, INIT_GRID, -1, 1), 0.02f),
    BIN_E("min_col", DT_OP_MIN, 3, MINA2, S1I(2, INIT_GRID, -1, 1), 0.02f),
    BIN_E("max_same", DT_OP_MAX, 0, MINA2, S2I(2, 3, INIT_GRID, -1, 1), 0.02f),
    BIN_E("max_scalar", DT_OP_MAX, 1, MINA2, S0I(INIT_GRID, -0.3f, 0.3f), 0.02f),
    BIN_E("max_row", DT_OP_MAX, 2, MINA2, S1I(3, INIT_GRID, -1, 1), 0.02f),
    BIN_E("max_col", DT_OP_MAX, 3, MINA2, S1I(2, INIT_GRID, -1, 1), 0.02f),
    // middle (numpy-style trailing ones): b [3, 1] or [2, 3, 1] against a [2, 3, 2] repeats b
    // over the last axis; [2, 2, 2] against [2, 1] and [3, 3, 3] against [3, 3, 1] (FiLM with
    // B = C = L) must broadcast over the last axis, not as a row
    BIN_MID("add_mid", DT_OP_ADD, S3(2, 3, 2), S2(3, 1), 2, .eps = 0.05f),
    BIN_MID("sub_mid_full_rank", DT_OP_SUB, S3(2, 3, 2), S3(2, 3, 1), 2, .eps = 0.05f),
    BIN_MID("mul_mid", DT_OP_MUL, S3(2, 3, 2), S2(3, 1), 2),
    BIN_MID("mul_mid_cube", DT_OP_MUL, S3(2, 2, 2), S2(2, 1), 2),
    BIN_MID("mul_mid_film", DT_OP_MUL, S3(3, 3, 3), S3(3, 3, 1), 3),
    BIN_MID("mul_mid_4d", DT_OP_MUL, S4(2, 3, 2, 2), S3(3, 1, 1), 4),
    BIN_MID("mul_mid_tan_b_only", DT_OP_MUL, S3(2, 3, 2), S2(3, 1), 2, .tan = 2),
    BIN_MID("div_mid", DT_OP_DIV, S3(2, 3, 2), S2I(3, 1, INIT_AWAY0, 0.5f, 1.5f), 2),
    BIN_MID("min_mid", DT_OP_MIN, S3I(2, 3, 2, INIT_GRID_HALF, -1, 1),
            S2I(3, 1, INIT_GRID, -1, 1), 2, .eps = 0.02f),
    BIN_MID("max_mid", DT_OP_MAX, S3I(2, 3, 2, INIT_GRID_HALF, -1, 1),
            S2I(3, 1, INIT_GRID, -1, 1), 2, .eps = 0.02f),
};

// unary functions on ranges where they are smooth and well conditioned: log/sqrt/rsqrt on
// [0.5, 2] (rsqrt's |f''''/f''| = 35/(4x^2) <= 35 there, the worst of the table), relu and elu
// on |x| in [0.1, 1.5] with both signs (elu's second derivative jumps at 0: a step of
// <= 0.01 never crosses it); sigmoid and softplus over [-3, 3] cover both of their branches.
#define UN(nm, f, sp) {nm, b_unary, r_unary, 1, {sp}, .iarg = {f}}
static const OpCase unary_rows[] = {
    UN("elu", DT_ELU, S2I(3, 4, INIT_AWAY0, 0.1f, 1.5f)),
    UN("relu", DT_RELU, S2I(3, 4, INIT_AWAY0, 0.1f, 1.0f)),
    UN("tanh", DT_TANH, S2I(3, 4, INIT_UNIF, -1.5f, 1.5f)),
    // rows of 37: the vectorised kernels' 16-lane body and their tail
    UN("elu_wide", DT_ELU, S2I(2, 37, INIT_AWAY0, 0.1f, 1.5f)),
    UN("tanh_wide", DT_TANH, S2I(2, 37, INIT_UNIF, -1.5f, 1.5f)),
    UN("sigmoid", DT_SIGMOID, S2I(3, 4, INIT_UNIF, -3, 3)),
    UN("exp", DT_EXP, S2I(3, 4, INIT_UNIF, -1, 1)),
    UN("log", DT_LOG, S2I(3, 4, INIT_UNIF, 0.5f, 2)),
    UN("softplus", DT_SOFTPLUS, S2I(3, 4, INIT_UNIF, -3, 3)),
    UN("square", DT_SQUARE, S2I(3, 4, INIT_UNIF, -1.5f, 1.5f)),
    UN("sqrt", DT_SQRT, S2I(3, 4, INIT_UNIF, 0.5f, 2)),
    UN("rsqrt", DT_RSQRT, S2I(3, 4, INIT_UNIF, 0.5f, 2)),
    UN("neg", DT_NEG, S2I(3, 4, INIT_UNIF, -1, 1)),
    {"affine", b_affine, r_affine, 1, {S2(2, 3)}, .farg = {-1.5f, 0.3f}, .eps = 0.05f},
    // clamp to [-0.5, 0.5]: x on odd multiples of 1/8 in [-1, 1] lies >= 0.1 from +-0.5, so
    // half the entries are inside and half outside and no step of 0.05 crosses a bound
    {"clamp", b_clamp, r_clamp, 1, {S3I(2, 3, 4, INIT_GRID_HALF, -1, 1)},
     .farg = {-0.5f, 0.5f}, .iarg = {0}, .eps = 0.05f},
    // straight-through: the derivative is 1 everywhere by design, so it matches finite
    // differences only inside [lo, hi] (x in [-0.375, 0.375] here); the outside is checked
    // against the identity in test_clamp_straight_through_outside
    {"clamp_straight_through", b_clamp, r_clamp, 1, {S3I(2, 3, 4, INIT_GRID_HALF, -0.4f, 0.4f)},
     .farg = {-0.5f, 0.5f}, .iarg = {1}, .eps = 0.05f},
};

// linear maps: sums, means, concat, slice, reshape, gather are exact in exact arithmetic,
// eps 0.1 leaves only round-off
#define RED(nm, op, ax) {nm, b_reduce, r_reduce, 1, {S3(2, 3, 4)}, .iarg = {op, ax}, .eps = 0.1f}
static const int gather_idx[] = {2, 0, 2, 3, 2};
static const int gather_idx1[] = {4, 4, 1};
static const OpCase shape_rows[] = {
    RED("sum_axis0", DT_OP_SUM, 0),
    RED("sum_axis1", DT_OP_SUM, 1),
    RED("sum_axis2", DT_OP_SUM, 2),
    RED("sum_axis_neg1", DT_OP_SUM, -1),
    RED("sum_all", DT_OP_SUM, DT_AXIS_ALL),
    RED("mean_axis0", DT_OP_MEAN, 0),
    RED("mean_axis1", DT_OP_MEAN, 1),
    RED("mean_axis2", DT_OP_MEAN, 2),
    RED("mean_axis_neg2", DT_OP_MEAN, -2),
    RED("mean_all", DT_OP_MEAN, DT_AXIS_ALL),
    {"sum_1d_axis0", b_reduce, r_reduce, 1, {S1(5)}, .iarg = {DT_OP_SUM, 0}, .eps = 0.1f},
    {"concat_axis0", b_concat, r_concat, 2, {S2(2, 3), S2(1, 3)}, .iarg = {0}, .eps = 0.1f},
    {"concat_axis1", b_concat, r_concat, 2, {S2(2, 3), S2(2, 2)}, .iarg = {1}, .eps = 0.1f},
    {"concat_axis_neg1", b_concat, r_concat, 2, {S2(2, 3), S2(2, 2)}, .iarg = {-1},
     .eps = 0.1f},
    {"concat_3d_axis1", b_concat, r_concat, 2, {S3(2, 2, 3), S3(2, 1, 3)}, .iarg = {1},
     .eps = 0.1f},
    {"concat_tan_a_only", b_concat, r_concat, 2, {S2(2, 3), S2(2, 2)}, .iarg = {1}, .tan = 1,
     .eps = 0.1f},
    {"slice_axis0", b_slice, r_slice, 1, {S3(3, 4, 2)}, .iarg = {0, 1, 2}, .eps = 0.1f},
    {"slice_axis1", b_slice, r_slice, 1, {S3(3, 4, 2)}, .iarg = {1, 1, 2}, .eps = 0.1f},
    {"slice_axis2", b_slice, r_slice, 1, {S3(3, 4, 2)}, .iarg = {2, 1, 1}, .eps = 0.1f},
    {"slice_axis_neg1", b_slice, r_slice, 1, {S2(2, 5)}, .iarg = {-1, 2, 3}, .eps = 0.1f},
    {"reshape_2d_3d", b_reshape, r_reshape, 1, {S2(2, 6)}, .iarg = {3, 3, 2, 2}, .eps = 0.1f},
    {"reshape_to_1d", b_reshape, r_reshape, 1, {S2(2, 3)}, .iarg = {1, 6}, .eps = 0.1f},
    {"gather_repeated", b_gather, r_gather, 1, {S2(4, 3)}, .idx = gather_idx, .nidx = 5,
     .eps = 0.1f},
    {"gather_1d", b_gather, r_gather, 1, {S1(5)}, .idx = gather_idx1, .nidx = 3, .eps = 0.1f},
};

// composites: layer norm (PyTorch semantics, biased variance, eps 1e-5) with and without
// gain/bias as parameters or tape tensors, on shapes where the batch extents equal the
// feature extent (a broadcast of the row statistics must still be per row); rows of 4-5
// uniform values have variance ~1/3, so 1/sigma^3 ~ 5 keeps the Hessian moderate.
#define LN(nm, sx, ng, nb, ...) \
  {nm, b_layernorm, r_layernorm, 1, {sx}, ng + nb, {__VA_ARGS__}, .iarg = {ng, nb}, \
   .farg = {1e-5f}}
static const OpCase composite_rows[] = {
    LN("layernorm_plain", S2(3, 5), 0, 0, S1(5)),
    LN("layernorm_gain_bias", S2(3, 5), 1, 1, S1I(5, INIT_UNIF, 0.5f, 1.5f), S1(5)),
    LN("layernorm_gain_only", S2(2, 4), 1, 0, S1I(4, INIT_UNIF, 0.5f, 1.5f)),
    LN("layernorm_bias_only", S2(2, 4), 0, 1, S1(4)),
    LN("layernorm_square", S2(4, 4), 1, 1, S1I(4, INIT_UNIF, 0.5f, 1.5f), S1(4)),
    LN("layernorm_cube", S3(2, 2, 2), 0, 0, S1(2)),
    LN("layernorm_3d", S3(2, 3, 4), 1, 1, S1I(4, INIT_UNIF, 0.5f, 1.5f), S1(4)),
    LN("layernorm_1d", S1(5), 1, 1, S1I(5, INIT_UNIF, 0.5f, 1.5f), S1(5)),
    {"layernorm_tape_gain_bias", b_layernorm, r_layernorm, 3,
     {S2(3, 5), S1I(5, INIT_UNIF, 0.5f, 1.5f), S1(5)}, .iarg = {1, 1}, .farg = {1e-5f}},
    // rows of 37 = 2 x 16 + 5: the row kernels' 16-lane blocks and their tail; fused (gain and
    // bias as parameters) and composite (as tape tensors, which carry tangents)
    LN("layernorm_wide", S2(2, 37), 1, 1, S1I(37, INIT_UNIF, 0.5f, 1.5f), S1(37)),
    {"layernorm_tape_gain_bias_wide", b_layernorm, r_layernorm, 3,
     {S2(2, 37), S1I(37, INIT_UNIF, 0.5f, 1.5f), S1(37)}, .iarg = {1, 1}, .farg = {1e-5f}},
    {"mse", b_mse, r_mse, 2, {S2(2, 3), S2(2, 3)}},
    {"mse_tan_a_only", b_mse, r_mse, 2, {S2(3, 2), S2(3, 2)}, .tan = 1},
    {"fanout_tanh_exp", b_fanout, r_fanout, 1, {S2(2, 3)}},
    // log-sum-exp of rows; 4 x 4: the row maxima must broadcast per row, not per column
    {"logsumexp", b_logsumexp, r_logsumexp, 1, {S2(3, 5)}},
    {"logsumexp_square", b_logsumexp, r_logsumexp, 1, {S2(4, 4)}},
    {"logsumexp_one_row", b_logsumexp, r_logsumexp, 1, {S2(1, 3)}},
};

// conv2d: bilinear in (x, W), so every difference is exact up to round-off (eps 0.05); the
// rows cover stride 1, 2 and 3 (3 leaves a row and a column of x unused), 1x1 kernels, batch
// 1 and 2, bias or not, W and b as tape tensors with tangents (the x-W cross terms of the
// HVP) or as parameters (mixed products), and tangents on one operand only.
#define CONV(nm, sx, sw, st, ...) \
  {nm, b_conv, r_conv, 2, {sx, sw}, .iarg = {st, 0}, .eps = 0.05f, __VA_ARGS__}
static const OpCase conv_rows[] = {
    {"conv_s1_bias", b_conv, r_conv, 3, {S4(2, 2, 4, 4), S4(3, 2, 2, 2), S1(3)},
     .iarg = {1, 1}, .eps = 0.05f},
    {"conv_s2_k3_bias", b_conv, r_conv, 3, {S4(2, 2, 7, 7), S4(2, 2, 3, 3), S1(2)},
     .iarg = {2, 1}, .eps = 0.05f},
    CONV("conv_s3_nobias_leftover", S4(1, 3, 7, 7), S4(2, 3, 3, 3), 3),
    CONV("conv_k1", S4(2, 3, 3, 3), S4(2, 3, 1, 1), 1),
    CONV("conv_rect_s2", S4(1, 2, 5, 8), S4(2, 2, 3, 3), 2),
    CONV("conv_tanW_only", S4(2, 2, 5, 5), S4(2, 2, 3, 3), 2, .tan = 2),
    CONV("conv_tanx_only", S4(2, 2, 5, 5), S4(2, 2, 3, 3), 2, .tan = 1),
    {"conv_param_W_b", b_conv, r_conv, 1, {S4(2, 2, 5, 5)}, 2, {S4(3, 2, 3, 3), S1(3)},
     .iarg = {2, 1}, .eps = 0.05f},
    {"conv_tanh_conv_params", b_convnet, NULL, 1, {S4(1, 2, 7, 7)}, 4,
     {S4I(2, 2, 3, 3, INIT_UNIF, -0.5f, 0.5f), S1I(2, INIT_UNIF, -0.3f, 0.3f),
      S4I(2, 2, 2, 2, INIT_UNIF, -0.5f, 0.5f), S1I(2, INIT_UNIF, -0.3f, 0.3f)}},
};

// conv1d / conv_transpose1d: bilinear, so eps 0.05 leaves only round-off. The rows cover
// the U-Net's shapes (kernel 5 with padding 2, the stride-2 down step k3 p1, the 1x1 residual,
// the k4 s2 p1 up step), stride 3 with leftover input, padding wider than half the kernel
// (outputs that see only zeros), an odd length halved, a transposed stride above the kernel
// (outputs no input reaches), W and b as tape tensors with tangents or as parameters, tangents
// on one operand only, and the down and up steps composed through a tanh (curved: HVP).
#define C1(nm, sx, sw, st, pd, tr, ...) \
  {nm, b_conv1d, r_conv1d, 2, {sx, sw}, .iarg = {st, pd, 0, tr}, .eps = 0.05f, __VA_ARGS__}
static const OpCase conv1d_rows[] = {
    {"conv1d_k5_p2_bias", b_conv1d, r_conv1d, 3, {S3(2, 3, 6), S3(4, 3, 5), S1(4)},
     .iarg = {1, 2, 1, 0}, .eps = 0.05f},
    C1("conv1d_down_s2_p1", S3(2, 2, 8), S3(3, 2, 3), 2, 1, 0),
    C1("conv1d_k1", S3(2, 3, 4), S3(2, 3, 1), 1, 0, 0),
    C1("conv1d_s3_leftover", S3(1, 2, 8), S3(2, 2, 3), 3, 0, 0),
    C1("conv1d_pad_wide", S3(1, 2, 4), S3(2, 2, 3), 2, 3, 0),
    C1("conv1d_odd_len_s2", S3(2, 2, 7), S3(2, 2, 3), 2, 1, 0),
    C1("conv1d_tanW_only", S3(2, 2, 5), S3(2, 2, 3), 1, 1, 0, .tan = 2),
    C1("conv1d_tanx_only", S3(2, 2, 5), S3(2, 2, 3), 2, 1, 0, .tan = 1),
    {"conv1d_param_W_b", b_conv1d, r_conv1d, 1, {S3(2, 2, 5)}, 2, {S3(3, 2, 3), S1(3)},
     .iarg = {1, 1, 1, 0}, .eps = 0.05f},
    {"convt1d_up_k4_s2_p1_bias", b_conv1d, r_conv1d, 3, {S3(2, 3, 4), S3(3, 2, 4), S1(2)},
     .iarg = {2, 1, 1, 1}, .eps = 0.05f},
    C1("convt1d_s1_p0", S3(2, 2, 3), S3(2, 3, 2), 1, 0, 1),
    C1("convt1d_s3_p1_gaps", S3(1, 2, 3), S3(2, 2, 2), 3, 1, 1),
    C1("convt1d_tanW_only", S3(2, 2, 3), S3(2, 2, 4), 2, 1, 1, .tan = 2),
    C1("convt1d_tanx_only", S3(2, 2, 3), S3(2, 2, 4), 2, 1, 1, .tan = 1),
    {"convt1d_param_W_b", b_conv1d, r_conv1d, 1, {S3(2, 2, 3)}, 2, {S3(2, 3, 4), S1(3)},
     .iarg = {2, 1, 1, 1}, .eps = 0.05f},
    {"conv1d_tanh_convt1d_params", b_conv1d_net, NULL, 1, {S3(1, 2, 8)}, 4,
     {S3I(3, 2, 3, INIT_UNIF, -0.5f, 0.5f), S1I(3, INIT_UNIF, -0.3f, 0.3f),
      S3I(3, 2, 4, INIT_UNIF, -0.5f, 0.5f), S1I(2, INIT_UNIF, -0.3f, 0.3f)}},
};

// group norm (torch semantics, eps 1e-5) with groups of 4..12 values (like the layer-norm rows'
// 4-5), gain and bias as parameters or tape tensors, one group, one channel per group, [B, C]
// and [B, C, H, W] inputs, and [4, 4, 4] where a per-channel [C] could be mistaken for a row;
// Mish (x tanh(softplus(x))) over [-3, 3], on rows of 37 (the vectorised kernel's body and
// tail), at |x| in [3, 8] and across x = 20 where the kernel stops evaluating exp.
#define GN(nm, sx, G, ng, nb, ...) \
  {nm, b_groupnorm, r_groupnorm, 1, {sx}, ng + nb, {__VA_ARGS__}, .iarg = {G, ng, nb}, \
   .farg = {1e-5f}}
#define GAIN(c) S1I(c, INIT_UNIF, 0.5f, 1.5f)
static const OpCase norm_rows[] = {
    GN("groupnorm_g2_gain_bias", S3(2, 4, 3), 2, 1, 1, GAIN(4), S1(4)),
    GN("groupnorm_plain", S3(2, 4, 2), 2, 0, 0, S1(4)),
    GN("groupnorm_one_group", S3(2, 3, 2), 1, 1, 1, GAIN(3), S1(3)),
    GN("groupnorm_group_per_channel", S3(2, 2, 4), 2, 1, 1, GAIN(2), S1(2)),
    GN("groupnorm_cube", S3(4, 4, 4), 2, 1, 1, GAIN(4), S1(4)),
    GN("groupnorm_2d", S2(3, 8), 2, 1, 1, GAIN(8), S1(8)),
    GN("groupnorm_4d", S4(2, 4, 2, 2), 2, 1, 1, GAIN(4), S1(4)),
    GN("groupnorm_gain_only", S3(2, 4, 2), 2, 1, 0, GAIN(4)),
    {"groupnorm_tape_gain_bias", b_groupnorm, r_groupnorm, 3, {S3(2, 4, 3), GAIN(4), S1(4)},
     .iarg = {2, 1, 1}, .farg = {1e-5f}},
    {"mish", b_mish, r_mish, 1, {S2I(3, 4, INIT_UNIF, -3, 3)}},
    {"mish_wide", b_mish, r_mish, 1, {S2I(2, 37, INIT_UNIF, -3, 3)}},
    {"mish_far", b_mish, r_mish, 1, {S2I(3, 4, INIT_AWAY0, 3, 8)}},
    {"mish_past_clamp", b_mish, r_mish, 1, {S2I(2, 4, INIT_UNIF, 18, 22)}},
};

//---------------------------------------------------------------------------------------------
// gradient-check tests

static void test_linear_matmul(void) { check_table(ROWS(linear_rows), 0); }
static void test_binary_broadcast(void) { check_table(ROWS(binary_rows), 100); }
static void test_unary_affine_clamp(void) { check_table(ROWS(unary_rows), 200); }
static void test_reductions_and_shape_ops(void) { check_table(ROWS(shape_rows), 300); }
static void test_composites(void) { check_table(ROWS(composite_rows), 400); }
static void test_conv2d(void) { check_table(ROWS(conv_rows), 600); }
static dtTape* small_tape(size_t bytes);

static void test_conv1d(void) { check_table(ROWS(conv1d_rows), 700); }

// Mish's op equals x tanh(softplus(x)) composed from the primitives, on the vectorised
// first-order path and on the scalar path of a tape with tangents, from -30 to 30
static void test_mish_matches_composite(void) {
  enum { N = 241 };
  float xv[N];
  for (int i = 0; i < N; i++) xv[i] = -30.0f + 0.25f * (float)i;
  dtTape* t = small_tape(1 << 20);
  double worst[2] = {0, 0};
  for (int tangent = 0; tangent < 2; tangent++) {
    dt_tape_reset(t);
    dtTensor* x = dt_input2(t, 1, N, xv, "x");
    if (tangent) dt_set_tangent(t, x, NULL);
    dtTensor* m = dt_mish(t, x);
    dtTensor* c = dt_mul(t, x, dt_tanh(t, dt_softplus(t, x)));
    for (int i = 0; m && c && i < N; i++)
      worst[tangent] = fmax(worst[tangent], fabs(m->val[i] - c->val[i]) / (1e-30 + fabs(c->val[i])));
    CHECK(m && c);
  }
  CHECK(worst[0] < 2e-6 && worst[1] < 2e-6, "relative difference %.3g (vectorised), %.3g (scalar)",
        worst[0], worst[1]);
  dt_tape_free(t);
}
static void test_groupnorm_mish(void) { check_table(ROWS(norm_rows), 800); }

// conv2d's errors name the op and the tensors; a kernel larger than the image, a channel
// mismatch, a bad bias and stride 0 are all rejected without output
static void test_conv2d_errors(void) {
  dtTapeOpts o = dt_tape_default_opts();
  o.arena_bytes = 1u << 20;
  dtTape* t = dt_tape_new(&o);
  dtTensor* x = dt_input(t, 4, (int[]){1, 2, 4, 4}, NULL, "img");
  dtTensor* w = dt_input(t, 4, (int[]){3, 2, 5, 5}, NULL, "kern");
  CHECK(dt_conv2d(t, x, w, NULL, 1) == NULL);
  CHECK(strstr(dt_tape_error(t), "dt_conv2d") && strstr(dt_tape_error(t), "'img'") &&
        strstr(dt_tape_error(t), "'kern'"), "%s", dt_tape_error(t));
  dt_tape_reset(t);
  x = dt_input(t, 4, (int[]){1, 2, 4, 4}, NULL, "img");
  w = dt_input(t, 4, (int[]){3, 1, 3, 3}, NULL, "kern");
  CHECK(dt_conv2d(t, x, w, NULL, 1) == NULL && dt_tape_status(t) == DT_ERR_SHAPE);
  dt_tape_reset(t);
  x = dt_input(t, 4, (int[]){1, 2, 4, 4}, NULL, "img");
  w = dt_input(t, 4, (int[]){3, 2, 3, 3}, NULL, "kern");
  dtTensor* b = dt_input(t, 1, (int[]){2}, NULL, "bias");
  CHECK(dt_conv2d(t, x, w, b, 1) == NULL && strstr(dt_tape_error(t), "'bias'"), "%s",
        dt_tape_error(t));
  dt_tape_reset(t);
  x = dt_input(t, 4, (int[]){1, 2, 4, 4}, NULL, "img");
  w = dt_input(t, 4, (int[]){3, 2, 3, 3}, NULL, "kern");
  CHECK(dt_conv2d(t, x, w, NULL, 0) == NULL && dt_tape_status(t) == DT_ERR_ARG);
  dt_tape_reset(t);
  x = dt_input(t, 4, (int[]){2, 2, 9, 9}, NULL, "img");
  w = dt_input(t, 4, (int[]){3, 2, 3, 3}, NULL, "kern");
  dtTensor* y = dt_conv2d(t, x, w, NULL, 2);
  CHECK(y && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 4 && y->shape[3] == 4);
  CHECK(dt_conv2d_out_size(84, 7, 2) == 39 && dt_conv2d_out_size(39, 5, 2) == 18 &&
        dt_conv2d_out_size(18, 3, 2) == 8 && dt_conv2d_out_size(8, 3, 2) == 3 &&
        dt_conv2d_out_size(2, 3, 1) == 0);
  // the im2col scratch is released: the arena holds the output and nothing after it
  size_t before, used;
  dt_tape_memory(t, &before, NULL, NULL);
  dtTensor* y2 = dt_conv2d(t, x, w, NULL, 2);
  dt_tape_memory(t, &used, NULL, NULL);
  CHECK(y2 && used - before <= sizeof(dtTensor) + 64 * 3 + (size_t)y2->size * sizeof(float),
        "conv2d kept %zu bytes for an output of %lld floats", used - before, (long long)y2->size);
  dt_tape_free(t);
}

// conv1d / conv_transpose1d / groupnorm errors name the op and the tensors and leave no output
static void test_conv1d_errors(void) {
  dtTapeOpts o = dt_tape_default_opts();
  o.arena_bytes = 1u << 20;
  dtTape* t = dt_tape_new(&o);
  dtTensor* x = dt_input(t, 3, (int[]){2, 3, 8}, NULL, "seq");
  dtTensor* w = dt_input(t, 3, (int[]){4, 2, 3}, NULL, "kern");
  CHECK(dt_conv1d(t, x, w, NULL, 1, 1) == NULL && dt_tape_status(t) == DT_ERR_SHAPE);
  CHECK(strstr(dt_tape_error(t), "dt_conv1d") && strstr(dt_tape_error(t), "'seq'") &&
        strstr(dt_tape_error(t), "'kern'"), "%s", dt_tape_error(t));
  dt_tape_reset(t);
  x = dt_input(t, 3, (int[]){2, 3, 2}, NULL, "seq");
  w = dt_input(t, 3, (int[]){4, 3, 5}, NULL, "kern");
  CHECK(dt_conv1d(t, x, w, NULL, 1, 1) == NULL && strstr(dt_tape_error(t), "shorter"), "%s",
        dt_tape_error(t));
  dt_tape_reset(t);
  x = dt_input(t, 3, (int[]){2, 3, 8}, NULL, "seq");
  w = dt_input(t, 3, (int[]){4, 3, 3}, NULL, "kern");
  CHECK(dt_conv1d(t, x, w, NULL, 0, 1) == NULL && dt_tape_status(t) == DT_ERR_ARG);
  dt_tape_reset(t);
  x = dt_input(t, 3, (int[]){2, 3, 8}, NULL, "seq");
  w = dt_input(t, 3, (int[]){4, 3, 3}, NULL, "kern");
  CHECK(dt_conv1d(t, x, w, NULL, 1, -1) == NULL && dt_tape_status(t) == DT_ERR_ARG);
  dt_tape_reset(t);
  // the transposed weight is [C_in, C_out, k]: torch's Conv1d layout is rejected, and so is a
  // bias of C_in
  x = dt_input(t, 3, (int[]){2, 3, 4}, NULL, "seq");
  w = dt_input(t, 3, (int[]){5, 3, 4}, NULL, "kern");
  CHECK(dt_conv_transpose1d(t, x, w, NULL, 2, 1) == NULL &&
        strstr(dt_tape_error(t), "dt_conv_transpose1d") && strstr(dt_tape_error(t), "[C, O, k]"),
        "%s", dt_tape_error(t));
  dt_tape_reset(t);
  x = dt_input(t, 3, (int[]){2, 3, 4}, NULL, "seq");
  w = dt_input(t, 3, (int[]){3, 5, 4}, NULL, "kern");
  dtTensor* b = dt_input(t, 1, (int[]){3}, NULL, "bias");
  CHECK(dt_conv_transpose1d(t, x, w, b, 2, 1) == NULL && strstr(dt_tape_error(t), "'bias'"),
        "%s", dt_tape_error(t));
  dt_tape_reset(t);
  x = dt_input(t, 3, (int[]){2, 3, 1}, NULL, "seq");
  w = dt_input(t, 3, (int[]){3, 5, 2}, NULL, "kern");
  CHECK(dt_conv_transpose1d(t, x, w, NULL, 1, 1) == NULL && dt_tape_status(t) == DT_ERR_SHAPE);
  dt_tape_reset(t);
  // shapes: the U-Net's down step halves, its up step doubles
  x = dt_input(t, 3, (int[]){2, 3, 8}, NULL, "seq");
  w = dt_input(t, 3, (int[]){3, 3, 3}, NULL, "kern");
  dtTensor* y = dt_conv1d(t, x, w, NULL, 2, 1);
  CHECK(y && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 4);
  dtTensor* wt = dt_input(t, 3, (int[]){3, 5, 4}, NULL, "kern_t");
  dtTensor* z = dt_conv_transpose1d(t, y, wt, NULL, 2, 1);
  CHECK(z && z->shape[0] == 2 && z->shape[1] == 5 && z->shape[2] == 8);
  CHECK(dt_conv1d_out_size(8, 3, 2, 1) == 4 && dt_conv1d_out_size(7, 3, 2, 1) == 4 &&
        dt_conv1d_out_size(8, 5, 1, 2) == 8 && dt_conv1d_out_size(2, 5, 1, 1) == 0 &&
        dt_conv_transpose1d_out_size(4, 4, 2, 1) == 8 &&
        dt_conv_transpose1d_out_size(1, 2, 1, 1) == 0);
  // the scratch is released: the arena holds the output and nothing after it
  size_t before, used;
  dt_tape_memory(t, &before, NULL, NULL);
  dtTensor* y2 = dt_conv1d(t, x, w, NULL, 2, 1);
  dt_tape_memory(t, &used, NULL, NULL);
  CHECK(y2 && used - before <= sizeof(dtTensor) + 64 * 3 + (size_t)y2->size * sizeof(float),
        "conv1d kept %zu bytes for an output of %lld floats", used - before, (long long)y2->size);
  // group norm: channels that do not split into the groups, and a gain of the wrong size
  dt_tape_reset(t);
  x = dt_input(t, 3, (int[]){2, 6, 4}, NULL, "feat");
  CHECK(dt_groupnorm(t, x, 4, NULL, NULL, 1e-5f) == NULL && dt_tape_status(t) == DT_ERR_ARG &&
        strstr(dt_tape_error(t), "'feat'") && strstr(dt_tape_error(t), "4 groups"), "%s",
        dt_tape_error(t));
  dt_tape_reset(t);
  x = dt_input(t, 3, (int[]){2, 6, 4}, NULL, "feat");
  dtTensor* g = dt_input(t, 1, (int[]){4}, NULL, "gn_gain");
  CHECK(dt_groupnorm(t, x, 3, g, NULL, 1e-5f) == NULL && strstr(dt_tape_error(t), "'gn_gain'"),
        "%s", dt_tape_error(t));
  dt_tape_free(t);
  dt_clear_error();
}

// a batch larger than one chunk of the im2col scratch (several GEMM chunks, the last one short)
// gives the values and gradients of the samples run one at a time
static void chunked_matches_single(int transposed) {
  enum { B = 120, C = 64, L = 64, O = 32, K = 5 };  // 51 + 51 + 18 (conv), 102 + 18 (transposed)
  dtTape* t = small_tape((size_t)96 << 20);
  dtRng rng;
  dt_rng_seed(&rng, 11);
  static float xv[B * C * L], wv[C * O * K], gy[B * O * L * 2];
  dt_rng_fill_normal(&rng, xv, B * C * L, 0.0f, 1.0f);
  dt_rng_fill_normal(&rng, wv, C * O * K, 0.0f, 0.1f);
  dt_rng_fill_normal(&rng, gy, B * O * L * 2, 0.0f, 1.0f);
  int ws[3] = {transposed ? C : O, transposed ? O : C, K};
  dtTensor* w = dt_param_new("w", 3, ws);
  memcpy(w->val, wv, sizeof wv);
  // conv: [B, C, L] -> [B, O, L]; transposed (stride 1, pad 2): [B, C, L] -> [B, O, L]
  dtTensor* x = dt_input(t, 3, (int[]){B, C, L}, xv, "x");
  dt_requires_grad(t, x);
  dtTensor* y = transposed ? dt_conv_transpose1d(t, x, w, NULL, 1, 2) : dt_conv1d(t, x, w, NULL, 1, 2);
  CHECK(y && y->size == (int64_t)B * O * L);
  if (!y) return;
  CHECK_OK(dt_backward(t, y, gy));
  static float yall[B * O * L], gxall[B * C * L], gwall[C * O * K];
  memcpy(yall, y->val, sizeof yall);
  memcpy(gxall, x->grad, sizeof gxall);
  memcpy(gwall, w->grad, sizeof gwall);
  dt_param_zero_grad(w);
  double ey = 0, ex = 0, ew = 0;
  for (int n = 0; n < B; n++) {
    dt_tape_reset(t);
    dtTensor* x1 = dt_input(t, 3, (int[]){1, C, L}, xv + (size_t)n * C * L, "x1");
    dt_requires_grad(t, x1);
    dtTensor* y1 = transposed ? dt_conv_transpose1d(t, x1, w, NULL, 1, 2)
                              : dt_conv1d(t, x1, w, NULL, 1, 2);
    if (!y1 || dt_backward(t, y1, gy + (size_t)n * O * L)) break;
    for (int i = 0; i < O * L; i++) ey = fmax(ey, fabs(y1->val[i] - yall[n * O * L + i]));
    for (int i = 0; i < C * L; i++) ex = fmax(ex, fabs(x1->grad[i] - gxall[n * C * L + i]));
  }
  double gmax = 0;
  for (int i = 0; i < C * O * K; i++) gmax = fmax(gmax, fabs(gwall[i]));
  for (int i = 0; i < C * O * K; i++) ew = fmax(ew, fabs(w->grad[i] - gwall[i]));
  ew /= gmax;  // the weight gradient sums B L products in another order: float round-off only
  CHECK(ey < 1e-5 && ex < 1e-5 && ew < 1e-5, "%s: chunked vs one sample at a time: y %.3g, gx %.3g, "
        "gW %.3g (relative to its largest)", transposed ? "conv_transpose1d" : "conv1d", ey, ex, ew);
  dt_param_free(w);
  dt_tape_free(t);
}

static void test_conv1d_chunks(void) {
  chunked_matches_single(0);
  chunked_matches_single(1);
}

// ELU's second derivative jumps at 0: accept only data where no finite-difference step
// crosses that kink. A step along w moves a pre-activation z by ~eps |z'| (z' = its forward
// tangent, known from the accept run), so |z| >= 3 eps |z'| is asked; a step of one input or
// parameter element moves it by eps |dz/dv| with |dz/dv| <= max(|x| |W1|, |W2| |W1| 8,
// |elu(z1)|) <= ~4, i.e. <= 8e-3, so |z| >= 0.01 is asked too.
static int network_accept(const OpCase* c) {
  float eps = c->eps;
  for (int l = 0; l < 2; l++)
    for (int64_t i = 0; i < net_z[l]->size; i++) {
      float z = fabsf(net_z[l]->val[i]), zd = net_z[l]->dot ? fabsf(net_z[l]->dot[i]) : 1e9f;
      if (z < 0.01f || z < 3 * eps * zd) return 0;
    }
  return 1;
}

// The whole network: HVP w.r.t. the state and action inputs and mixed products for all ten
// parameters. Depth ~12 ops and |L| ~ 1 give round-off ~1e-7 * 12 / (2 * 2e-3) ~ 3e-4 on the
// differences, hence atol 2e-3; eps is smaller than the op rows' to stay clear of the ELU kinks.
static const OpCase network_rows[] = {
    {"td_mpc_q_network", b_network, NULL, 2, {S2(3, 4), S2(3, 2)}, 10,
     {S2I(8, 6, INIT_UNIF, -0.6f, 0.6f), S1I(8, INIT_UNIF, -0.3f, 0.3f),
      S2I(8, 8, INIT_UNIF, -0.5f, 0.5f), S1I(8, INIT_UNIF, -0.3f, 0.3f),
      S2I(8, 8, INIT_UNIF, -0.5f, 0.5f), S1I(8, INIT_UNIF, -0.3f, 0.3f),
      S1I(8, INIT_UNIF, 0.5f, 1.5f), S1I(8, INIT_UNIF, -0.3f, 0.3f),
      S2I(1, 8, INIT_UNIF, -0.5f, 0.5f), S1I(1, INIT_UNIF, -0.3f, 0.3f)},
     .eps = 2e-3f, .atol = 2e-3f, .rtol = 5e-3f, .accept = network_accept},
};

static void test_network_hvp_and_mixed(void) { check_table(ROWS(network_rows), 500); }

// The checker itself must flag a 2% error in one element of each kind of result.
static void test_checker_detects_errors(void) {
  dtTapeOpts o = dt_tape_default_opts();
  o.arena_bytes = 1u << 20;
  C.t = dt_tape_new(&o);
  const OpCase* mul = &binary_rows[11];      // mul_same
  const OpCase* lin = &linear_rows[0];       // linear_b1_bias
  CHECK(strcmp(mul->name, "mul_same") == 0 && strcmp(lin->name, "linear_b1_bias") == 0);
  g_quiet = 1;
  for (int k = 1; k <= 4; k++) {
    g_corrupt = k;
    int bad = check_case(k == 4 ? lin : mul, 999);
    CHECK(bad > 0, "corruption %d went unnoticed", k);
  }
  g_corrupt = 0;
  g_quiet = 0;
  CHECK(check_case(mul, 999) == 0);
  dt_tape_free(C.t);
  C.t = NULL;
}

//---------------------------------------------------------------------------------------------
// tape behaviour

static dtTape* small_tape(size_t bytes) {
  dtTapeOpts o = dt_tape_default_opts();
  o.arena_bytes = bytes;
  return dt_tape_new(&o);
}

static void test_shape_errors_name_op_and_tensors(void) {
  dtTape* t = small_tape(1 << 16);
  dtTensor* a = dt_input2(t, 2, 3, NULL, "a");
  dtTensor* b = dt_input(t, 1, (int[]){4}, NULL, "b");
  dt_clear_error();
  CHECK(dt_add(t, a, b) == NULL);
  CHECK(dt_tape_status(t) == DT_ERR_SHAPE);
  const char* m = dt_tape_error(t);
  CHECK(strstr(m, "add") && strstr(m, "'a'") && strstr(m, "'b'") && strstr(m, "[2, 3]") &&
            strstr(m, "[4]"), "message: %s", m);
  CHECK(dt_last_status() == DT_ERR_SHAPE && strcmp(dt_last_error(), m) == 0);

  // one message per kind of mismatch: op name, tensors and shapes
  struct {
    const char* op;
    const char* must;
  } expect[] = {{"linear", "'W'"}, {"matmul", "'m'"}, {"concat", "'c'"}, {"reshape", "[2, 3]"},
                {"slice", "'a'"}, {"gather", "'a'"}, {"sum", "'a'"}, {"div", "'b'"},
                {"clamp", "lo"}, {"unary", "unknown"}, {"linear", "bias"}};
  int n = (int)(sizeof expect / sizeof expect[0]);
  for (int i = 0; i < n; i++) {
    dt_tape_reset(t);
    a = dt_input2(t, 2, 3, NULL, "a");
    b = dt_input(t, 1, (int[]){4}, NULL, "b");
    dtTensor* W = dt_input2(t, 4, 2, NULL, "W");
    dtTensor* mm = dt_input2(t, 2, 3, NULL, "m");
    dtTensor* c = dt_input2(t, 3, 2, NULL, "c");
    dtTensor* bias = dt_input(t, 1, (int[]){3}, NULL, "bias");
    dtTensor* y = NULL;
    dtStatus want = DT_ERR_SHAPE;
    switch (i) {
      case 0: y = dt_linear(t, a, W, NULL); break;
      case 1: y = dt_matmul(t, a, mm); break;
      case 2: y = dt_concat(t, a, c, 0); break;
      case 3: y = dt_reshape(t, a, 2, (int[]){4, 2}); break;
      case 4: y = dt_slice(t, a, 1, 2, 2), want = DT_ERR_ARG; break;
      case 5: y = dt_gather(t, a, (int[]){0, 2}, 2), want = DT_ERR_ARG; break;
      case 6: y = dt_sum(t, a, 2), want = DT_ERR_ARG; break;
      case 7: y = dt_div(t, a, b); break;
      case 8: y = dt_clamp(t, a, 1.0f, -1.0f, 0), want = DT_ERR_ARG; break;
      case 9: y = dt_unary(t, a, DT_UNARY_COUNT), want = DT_ERR_ARG; break;
      case 10: y = dt_linear(t, a, dt_input2(t, 4, 3, NULL, "W3"), bias); break;
    }
    m = dt_tape_error(t);
    CHECK(y == NULL && dt_tape_status(t) == want, "%s: status %d", expect[i].op,
          dt_tape_status(t));
    CHECK(strstr(m, expect[i].op) && strstr(m, expect[i].must), "%s: message '%s'",
          expect[i].op, m);
  }
  dt_tape_free(t);
  dt_clear_error();
}

static void test_null_propagation_keeps_first_error(void) {
  dtTape* t = small_tape(1 << 16);
  dtTensor* a = dt_input2(t, 2, 3, NULL, "a");
  dtTensor* b = dt_input(t, 1, (int[]){4}, NULL, "b");
  dt_requires_grad(t, a);
  dtTensor* y = dt_mul(t, a, b);  // the first error
  CHECK(y == NULL);
  char first[512];
  snprintf(first, sizeof first, "%s", dt_tape_error(t));
  // every op fed the NULL returns NULL without touching the message
  dtTensor* z = dt_tanh(t, y);
  z = dt_add(t, z, a);
  z = dt_add(t, a, z);
  z = dt_linear(t, z, a, NULL);
  z = dt_matmul(t, z, z);
  z = dt_layernorm(t, z, NULL, NULL, 1e-5f);
  z = dt_concat(t, z, a, 0);
  z = dt_slice(t, z, 0, 0, 1);
  z = dt_reshape(t, z, 1, (int[]){6});
  z = dt_gather(t, z, (int[]){0}, 1);
  z = dt_sum(t, z, DT_AXIS_ALL);
  z = dt_mse(t, z, a);
  z = dt_clamp(t, z, 0, 1, 0);
  // even valid ops on valid inputs stop after an error (the tape is sticky)
  CHECK(dt_tanh(t, a) == NULL);
  CHECK(z == NULL && dt_tape_status(t) == DT_ERR_SHAPE);
  CHECK(strcmp(dt_tape_error(t), first) == 0, "first error replaced by '%s'", dt_tape_error(t));
  CHECK(dt_backward(t, z, NULL) == DT_ERR_SHAPE);
  CHECK(strcmp(dt_tape_error(t), first) == 0);
  // reset clears it
  dt_tape_reset(t);
  CHECK(dt_tape_status(t) == DT_OK && dt_tape_error(t)[0] == 0);
  // a NULL input on a clean tape is an argument error that names the op
  a = dt_input2(t, 2, 3, NULL, "a");
  CHECK(dt_exp(t, NULL) == NULL && dt_tape_status(t) == DT_ERR_ARG);
  CHECK(strstr(dt_tape_error(t), "unary") != NULL, "%s", dt_tape_error(t));
  dt_tape_reset(t);
  a = dt_input2(t, 2, 3, NULL, "a");
  CHECK(dt_add(t, a, NULL) == NULL && dt_tape_status(t) == DT_ERR_ARG);
  CHECK(strstr(dt_tape_error(t), "add") && strstr(dt_tape_error(t), "'a'"), "%s",
        dt_tape_error(t));
  dt_tape_reset(t);
  a = dt_input2(t, 2, 3, NULL, "a");
  CHECK(dt_backward(t, NULL, NULL) == DT_ERR_ARG);
  // a NULL tape is reported per thread
  dt_clear_error();
  CHECK(dt_add(NULL, a, a) == NULL && dt_last_status() == DT_ERR_ARG);
  CHECK(dt_backward(NULL, a, NULL) == DT_ERR_ARG);
  CHECK(dt_input2(NULL, 1, 1, NULL, "x") == NULL);
  dt_tape_free(t);
  dt_tape_free(NULL);
  dt_clear_error();
}

static void test_check_finite(void) {
  dtTape* t = small_tape(1 << 16);
  dt_tape_set_check_finite(t, 1);
  float xv[3] = {1.0f, -1.0f, 2.0f};
  dtTensor* x = dt_input(t, 1, (int[]){3}, xv, "x");
  CHECK(dt_log(t, x) == NULL);
  CHECK(dt_tape_status(t) == DT_ERR_NONFINITE);
  const char* m = dt_tape_error(t);
  CHECK(strstr(m, "log") && strstr(m, "nan") && strstr(m, "'x'") && strstr(m, "element 1"),
        "message: %s", m);
  // division by zero names div
  dt_tape_reset(t);
  x = dt_input(t, 1, (int[]){3}, xv, "x");
  dtTensor* z = dt_input(t, 0, NULL, NULL, "zero");
  CHECK(dt_div(t, x, z) == NULL && dt_tape_status(t) == DT_ERR_NONFINITE);
  CHECK(strstr(dt_tape_error(t), "div") && strstr(dt_tape_error(t), "inf"), "%s",
        dt_tape_error(t));
  // off: the NaN flows through silently
  dt_tape_reset(t);
  dt_tape_set_check_finite(t, 0);
  x = dt_input(t, 1, (int[]){3}, xv, "x");
  dtTensor* y = dt_log(t, x);
  CHECK(y && isnan(y->val[1]) && dt_tape_status(t) == DT_OK);
  // the option also works from dt_tape_new
  dt_tape_free(t);
  dtTapeOpts o = dt_tape_default_opts();
  o.arena_bytes = 1 << 16;
  o.check_finite = 1;
  t = dt_tape_new(&o);
  x = dt_input(t, 1, (int[]){3}, xv, "x");
  CHECK(dt_unary(t, x, DT_SQRT) == NULL && dt_tape_status(t) == DT_ERR_NONFINITE);
  CHECK(strstr(dt_tape_error(t), "sqrt"), "%s", dt_tape_error(t));
  dt_tape_free(t);
  dt_clear_error();
}

static void test_arena_exhaustion_is_an_error(void) {
  dtTape* t = small_tape(4096);
  CHECK(t != NULL);
  dtTensor* y = dt_input2(t, 4, 8, NULL, "x");
  int steps = 0;
  while (y && steps < 1000) y = dt_tanh(t, y), steps++;
  CHECK(y == NULL && steps < 1000);
  CHECK(dt_tape_status(t) == DT_ERR_NOMEM);
  const char* m = dt_tape_error(t);
  CHECK(strstr(m, "arena full") && strstr(m, "4096") && strstr(m, "unary"), "message: %s", m);
  size_t used, hw, cap;
  dt_tape_memory(t, &used, &hw, &cap);
  CHECK(cap == 4096 && used <= cap && hw <= cap && hw >= used);

  // a forward that fits but whose adjoints do not: dt_backward reports NOMEM, no crash
  dt_tape_reset(t);
  CHECK(dt_tape_status(t) == DT_OK);
  float w[32];
  for (int i = 0; i < 32; i++) w[i] = 0.01f * (float)i;
  dtTensor* x = dt_input2(t, 4, 8, w, "x");
  dt_requires_grad(t, x);
  dt_set_tangent(t, x, w);  // second order: val + dot forward, grad + gdot backward
  y = x;
  for (;;) {
    dt_tape_memory(t, &used, NULL, NULL);
    if (used > cap * 3 / 4) break;
    y = dt_tanh(t, y);
  }
  CHECK(y != NULL && dt_tape_status(t) == DT_OK);
  CHECK(dt_backward(t, y, NULL) == DT_ERR_NOMEM);
  CHECK(strstr(dt_tape_error(t), "arena full"), "%s", dt_tape_error(t));
  // and the tape is usable again after a reset
  dt_tape_reset(t);
  x = dt_input2(t, 1, 2, w, "x");
  dt_requires_grad(t, x);
  y = dt_sum(t, dt_square(t, x), DT_AXIS_ALL);
  CHECK_OK(dt_backward(t, y, NULL));
  CHECK(x->grad && x->grad[1] == 2 * w[1]);
  dt_tape_free(t);
  // a tape whose arena cannot even hold one node
  t = small_tape(64);
  CHECK(t && dt_input2(t, 2, 2, NULL, "x") == NULL && dt_tape_status(t) == DT_ERR_NOMEM);
  dt_tape_free(t);
  dt_clear_error();
}

// Rewinding drops the later nodes; the earlier ones (and their values) stay valid, even when
// a backward through the dropped branch gave them adjoints in the released memory.
static void test_rewind(void) {
  dtTape* t = small_tape(1 << 16);
  float xv[6] = {-0.9f, -0.4f, 0.1f, 0.3f, 0.7f, 1.2f};
  dtTensor* x = dt_input2(t, 2, 3, xv, "x");
  dt_requires_grad(t, x);
  dtTensor* h = dt_tanh(t, x);
  size_t mark = dt_tape_mark(t);
  // branch A: sum(h^2)
  dtTensor* sq = dt_square(t, h);
  dtTensor* a = dt_sum(t, sq, DT_AXIS_ALL);
  CHECK_OK(dt_backward(t, a, NULL));
  for (int i = 0; i < 6; i++) {
    double th = tanh(xv[i]);
    CHECK_NEAR(x->grad[i], 2 * th * (1 - th * th), 1e-5);
  }
  dt_tape_rewind(t, mark);
  size_t used;
  dt_tape_memory(t, &used, NULL, NULL);
  CHECK(used == mark, "used %zu, mark %zu", used, mark);
  // branch B (bigger than A, so it reuses the memory A and its adjoints had):
  // sum(exp(0.5 tanh(h) + 0.1))
  dtTensor* u = dt_tanh(t, h);
  CHECK(u->prev == h && u->id == sq->id, "dropped nodes are gone: prev %p id %d", (void*)u->prev,
        u->id);
  dtTensor* v = dt_affine(t, u, 0.5f, 0.1f);
  dtTensor* e = dt_exp(t, v);
  dtTensor* b = dt_sum(t, e, DT_AXIS_ALL);
  double expect_b = 0;
  for (int i = 0; i < 6; i++) expect_b += exp(0.5 * tanh(tanh(xv[i])) + 0.1);
  CHECK_NEAR(b->val[0], expect_b, 1e-5 * expect_b);
  CHECK_OK(dt_backward(t, b, NULL));
  // values survive the backward and the gradient is that of branch B alone
  CHECK_NEAR(b->val[0], expect_b, 1e-5 * expect_b);
  for (int i = 0; i < 6; i++) {
    double hh = tanh(xv[i]), uu = tanh(hh), ee = exp(0.5 * uu + 0.1);
    CHECK_NEAR(h->val[i], hh, 1e-6);
    CHECK_NEAR(e->val[i], ee, 1e-5);
    CHECK(x->grad != NULL);
    if (x->grad) CHECK_NEAR(x->grad[i], ee * 0.5 * (1 - uu * uu) * (1 - hh * hh), 1e-5);
  }
  // a tangent given to an earlier leaf after the mark is released with it
  dt_tape_rewind(t, mark);
  CHECK_OK(dt_set_tangent(t, x, xv));
  dt_tape_rewind(t, mark);
  CHECK(x->dot == NULL && x->grad == NULL, "buffers past the mark must be forgotten");
  CHECK(h->val[0] == tanhf(xv[0]));
  // rewinding to the start empties the tape
  dt_tape_rewind(t, 0);
  dt_tape_memory(t, &used, NULL, NULL);
  CHECK(used == 0);
  x = dt_input2(t, 1, 1, xv, "x");
  CHECK(x->prev == NULL && x->id == 0);
  dt_tape_free(t);
}

// PyTorch semantics: a backward recomputes the adjoints of tape nodes (inputs) from scratch
// but adds into parameters' grad until dt_param_zero_grad.
static void test_backward_twice(void) {
  dtTape* t = small_tape(1 << 16);
  dtTensor* W = dt_param_new("W", 2, (int[]){3, 4});
  dtTensor* bb = dt_param_new("b", 1, (int[]){3});
  dtRng r;
  dt_rng_seed(&r, 8);
  dt_rng_fill_uniform(&r, W->val, 12, -1, 1);
  dt_rng_fill_uniform(&r, bb->val, 3, -1, 1);
  float xv[8], wv[8];
  dt_rng_fill_uniform(&r, xv, 8, -1, 1);
  dt_rng_fill_uniform(&r, wv, 8, -1, 1);
  dtTensor* x = dt_input2(t, 2, 4, xv, "x");
  dt_requires_grad(t, x);
  dt_set_tangent(t, x, wv);
  dtTensor* y = dt_sum(t, dt_tanh(t, dt_linear(t, x, W, bb)), DT_AXIS_ALL);
  CHECK_OK(dt_backward(t, y, NULL));
  float gx[8], gxd[8], gW[12], gWd[12], gb[3];
  memcpy(gx, x->grad, sizeof gx);
  memcpy(gxd, x->gdot, sizeof gxd);
  memcpy(gW, W->grad, sizeof gW);
  memcpy(gWd, W->gdot, sizeof gWd);
  memcpy(gb, bb->grad, sizeof gb);
  CHECK(W->flags & DT_GRAD_TOUCHED);
  CHECK_OK(dt_backward(t, y, NULL));
  for (int i = 0; i < 8; i++) {
    CHECK(x->grad[i] == gx[i], "input grad %d changed: %g vs %g", i, x->grad[i], gx[i]);
    CHECK(x->gdot[i] == gxd[i], "input gdot %d changed", i);
  }
  for (int i = 0; i < 12; i++) {
    CHECK_NEAR(W->grad[i], 2 * gW[i], 1e-6 * (1 + fabsf(gW[i])));
    CHECK_NEAR(W->gdot[i], 2 * gWd[i], 1e-6 * (1 + fabsf(gWd[i])));
  }
  for (int i = 0; i < 3; i++) CHECK_NEAR(bb->grad[i], 2 * gb[i], 1e-6 * (1 + fabsf(gb[i])));
  dt_param_zero_grad(W);
  CHECK(!(W->flags & DT_GRAD_TOUCHED));
  int zero = 1;
  for (int i = 0; i < 12; i++) zero &= W->grad[i] == 0 && W->gdot[i] == 0;
  CHECK(zero);
  CHECK_OK(dt_backward(t, y, NULL));
  for (int i = 0; i < 12; i++) CHECK(W->grad[i] == gW[i]);
  dt_param_free(W);
  dt_param_free(bb);
  dt_tape_free(t);
}

static void test_frozen_params(void) {
  dtTape* t = small_tape(1 << 16);
  dtTensor* W = dt_param_new("W", 2, (int[]){3, 4});
  dtTensor* bb = dt_param_new("b", 1, (int[]){3});
  CHECK(W && strcmp(W->name, "W") == 0 && (W->flags & DT_PARAM) && (W->flags & DT_REQUIRES_GRAD));
  dtRng r;
  dt_rng_seed(&r, 9);
  dt_rng_fill_uniform(&r, W->val, 12, -1, 1);
  dt_rng_fill_uniform(&r, bb->val, 3, -1, 1);
  float xv[8], wv[8], gx[8];
  dt_rng_fill_uniform(&r, xv, 8, -1, 1);
  dt_rng_fill_uniform(&r, wv, 8, -1, 1);
  // reference run with everything trainable
  dtTensor* x = dt_input2(t, 2, 4, xv, "x");
  dt_requires_grad(t, x);
  dt_set_tangent(t, x, wv);
  CHECK_OK(dt_backward(t, dt_sum(t, dt_elu(t, dt_linear(t, x, W, bb)), DT_AXIS_ALL), NULL));
  memcpy(gx, x->grad, sizeof gx);
  dt_param_zero_grad(W);
  dt_param_zero_grad(bb);
  // W frozen: no grad, no gdot, not touched; b and x unaffected
  dt_param_set_trainable(W, 0);
  CHECK(!(W->flags & DT_REQUIRES_GRAD));
  dt_tape_reset(t);
  x = dt_input2(t, 2, 4, xv, "x");
  dt_requires_grad(t, x);
  dt_set_tangent(t, x, wv);
  CHECK_OK(dt_backward(t, dt_sum(t, dt_elu(t, dt_linear(t, x, W, bb)), DT_AXIS_ALL), NULL));
  int zero = 1, bnz = 0;
  for (int i = 0; i < 12; i++) zero &= W->grad[i] == 0 && W->gdot[i] == 0;
  for (int i = 0; i < 3; i++) bnz |= bb->grad[i] != 0;
  CHECK(zero, "a frozen parameter got a gradient");
  CHECK(!(W->flags & DT_GRAD_TOUCHED));
  CHECK(bnz && (bb->flags & DT_GRAD_TOUCHED));
  for (int i = 0; i < 8; i++) CHECK(x->grad[i] == gx[i]);
  // everything frozen and an input without requires_grad: nothing to differentiate
  dt_param_set_trainable(bb, 0);
  dt_param_zero_grad(bb);
  dt_tape_reset(t);
  x = dt_input2(t, 2, 4, xv, "x");
  dtTensor* y = dt_sum(t, dt_linear(t, x, W, bb), DT_AXIS_ALL);
  CHECK(!(y->flags & DT_REQUIRES_GRAD));
  CHECK_OK(dt_backward(t, y, NULL));
  CHECK(x->grad == NULL && bb->grad[0] == 0 && !(bb->flags & DT_GRAD_TOUCHED));
  // and thawing restores the gradient
  dt_param_set_trainable(W, 1);
  dt_tape_reset(t);
  x = dt_input2(t, 2, 4, xv, "x");
  CHECK_OK(dt_backward(t, dt_sum(t, dt_linear(t, x, W, bb), DT_AXIS_ALL), NULL));
  CHECK(W->grad[0] != 0 && bb->grad[0] == 0);
  dt_param_free(W);
  dt_param_free(bb);
  dt_tape_free(t);
}

// Every op, forward and backward with tangents, on a warm tape: no heap allocation.
static void test_no_heap_allocation_on_warm_tape(void) {
  dtTape* t = small_tape(1 << 20);
  dtTensor* W1 = dt_param_new("W1", 2, (int[]){8, 6});
  dtTensor* b1 = dt_param_new("b1", 1, (int[]){8});
  dtTensor* g = dt_param_new("g", 1, (int[]){8});
  dtTensor* W2 = dt_param_new("W2", 2, (int[]){8, 3});
  float sv[12], av[6], wv[12], tv[3];
  dtRng r;
  dt_rng_seed(&r, 10);
  dt_rng_fill_uniform(&r, W1->val, 48, -0.5f, 0.5f);
  dt_rng_fill_uniform(&r, b1->val, 8, -0.5f, 0.5f);
  dt_rng_fill_uniform(&r, g->val, 8, 0.5f, 1.5f);
  dt_rng_fill_uniform(&r, W2->val, 24, -0.5f, 0.5f);
  dt_rng_fill_uniform(&r, sv, 12, -1, 1);
  dt_rng_fill_uniform(&r, av, 6, -1, 1);
  dt_rng_fill_uniform(&r, wv, 12, -1, 1);
  dt_rng_fill_uniform(&r, tv, 3, -1, 1);
  uint64_t count = 0;
  for (int pass = 0; pass < 3; pass++) {
    if (pass == 1) count = dt_alloc_count();
    dt_tape_reset(t);
    dtTensor* s = dt_input2(t, 3, 4, sv, "s");
    dtTensor* a = dt_input2(t, 3, 2, av, "a");
    dtTensor* tg = dt_input(t, 1, (int[]){3}, tv, "target");
    dt_requires_grad(t, s);
    dt_requires_grad(t, a);
    dt_set_tangent(t, s, wv);
    dtTensor* x = dt_concat(t, s, a, -1);
    dtTensor* h = dt_elu(t, dt_linear(t, x, W1, b1));
    h = dt_layernorm(t, h, g, NULL, 1e-5f);
    h = dt_maximum(t, dt_relu(t, h), dt_sigmoid(t, h));
    h = dt_div(t, dt_softplus(t, h), dt_affine(t, dt_exp(t, h), 1.0f, 1.0f));
    h = dt_matmul(t, dt_slice(t, h, 0, 0, 2), W1);  // [2,8] x [8,6]
    h = dt_gather(t, dt_reshape(t, h, 2, (int[]){4, 3}), (int[]){3, 0, 3}, 3);
    h = dt_clamp(t, dt_minimum(t, h, dt_unary(t, dt_affine(t, dt_square(t, h), 1, 1), DT_SQRT)), -1, 1, 1);
    h = dt_linear(t, dt_tanh(t, h), dt_input2(t, 3, 3, NULL, "I"), NULL);
    h = dt_sub(t, dt_mean(t, dt_sum(t, dt_reshape(t, h, 3, (int[]){3, 1, 3}), 1), 0), tg);
    dtTensor* loss = dt_mse(t, dt_log(t, dt_affine(t, dt_square(t, h), 1, 2)), tg);
    CHECK(loss != NULL, "%s", dt_tape_error(t));
    if (!loss) break;
    CHECK_OK(dt_backward(t, loss, NULL));
    CHECK(s->gdot != NULL && W1->flags & DT_GRAD_TOUCHED);
    (void)W2;
  }
  CHECK(dt_alloc_count() == count, "%llu heap allocations on a warm tape",
        (unsigned long long)(dt_alloc_count() - count));
  dt_param_free(W1);
  dt_param_free(b1);
  dt_param_free(g);
  dt_param_free(W2);
  dt_tape_free(t);
}

// Outside [lo, hi] the straight-through clamp passes adjoints, their tangents and forward
// tangents through unchanged, while the value is clamped; the plain clamp blocks all three.
static void test_clamp_straight_through_outside(void) {
  dtTape* t = small_tape(1 << 16);
  float xv[4] = {-2.0f, -0.2f, 0.3f, 1.5f}, wv[4] = {0.5f, -1.0f, 2.0f, -3.0f};
  float c[4] = {1.0f, 2.0f, 3.0f, 4.0f}, d[4] = {-1.0f, 0.25f, 0.5f, 2.0f};
  for (int st = 0; st <= 1; st++) {
    dt_tape_reset(t);
    dtTensor* x = dt_input(t, 1, (int[]){4}, xv, "x");
    dt_requires_grad(t, x);
    dt_set_tangent(t, x, wv);
    dtTensor* y = dt_clamp(t, x, -1.0f, 1.0f, st);
    CHECK_OK(dt_backward_ex(t, y, c, d));
    static const float val[4] = {-1.0f, -0.2f, 0.3f, 1.0f};
    for (int i = 0; i < 4; i++) {
      int pass = st || (i == 1 || i == 2);
      CHECK(y->val[i] == val[i], "st %d: y[%d] = %g", st, i, y->val[i]);
      CHECK(y->dot[i] == (pass ? wv[i] : 0.0f), "st %d: dot[%d] = %g", st, i, y->dot[i]);
      CHECK(x->grad[i] == (pass ? c[i] : 0.0f), "st %d: grad[%d] = %g", st, i, x->grad[i]);
      CHECK(x->gdot[i] == (pass ? d[i] : 0.0f), "st %d: gdot[%d] = %g", st, i, x->gdot[i]);
    }
  }
  dt_tape_free(t);
}

static void test_backward_seeds(void) {
  dtTape* t = small_tape(1 << 16);
  float xv[3] = {0.5f, -1.0f, 2.0f}, c[3] = {1.0f, 2.0f, -1.0f}, d[3] = {0.5f, -0.25f, 3.0f};
  dtTensor* x = dt_input(t, 1, (int[]){3}, xv, "x");
  dt_requires_grad(t, x);
  dtTensor* y = dt_square(t, x);
  // NULL seed: the gradient of sum(y)
  CHECK_OK(dt_backward(t, y, NULL));
  for (int i = 0; i < 3; i++) CHECK_NEAR(x->grad[i], 2 * xv[i], 1e-6);
  CHECK(x->gdot == NULL);
  // a seed and a seed for its tangent with no input tangent: gdot = J^T seed_dot
  CHECK_OK(dt_backward_ex(t, y, c, d));
  for (int i = 0; i < 3; i++) {
    CHECK_NEAR(x->grad[i], 2 * xv[i] * c[i], 1e-6);
    CHECK(x->gdot != NULL);
    if (x->gdot) CHECK_NEAR(x->gdot[i], 2 * xv[i] * d[i], 1e-6);
  }
  // an output that does not require grad: nothing happens
  dtTensor* z = dt_input(t, 1, (int[]){3}, xv, "z");
  CHECK_OK(dt_backward(t, dt_exp(t, z), NULL));
  CHECK(z->grad == NULL);
  dt_tape_free(t);
}

static void test_tangent_rules(void) {
  dtTape* t = small_tape(1 << 16);
  dtTensor* x = dt_input2(t, 1, 2, NULL, "x");
  dtTensor* y = dt_tanh(t, x);
  CHECK(dt_set_tangent(t, y, NULL) == DT_ERR_ARG);
  CHECK(strstr(dt_tape_error(t), "not an input leaf"), "%s", dt_tape_error(t));
  dt_tape_reset(t);
  dtTensor* p = dt_param_new("p", 1, (int[]){2});
  CHECK(dt_set_tangent(t, p, NULL) == DT_ERR_ARG);
  CHECK(strstr(dt_tape_error(t), "'p'"), "%s", dt_tape_error(t));
  dt_tape_reset(t);
  // a NULL tangent is a zero tangent
  x = dt_input2(t, 1, 2, (float[]){1, 2}, "x");
  CHECK_OK(dt_set_tangent(t, x, NULL));
  CHECK(x->dot && x->dot[0] == 0 && x->dot[1] == 0);
  y = dt_exp(t, x);
  CHECK(y->dot && y->dot[0] == 0 && y->dot[1] == 0);
  CHECK(dt_set_tangent(t, NULL, NULL) == DT_ERR_ARG);
  dt_param_free(p);
  dt_tape_free(t);
  dt_clear_error();
}

static void test_names(void) {
  static const char* ops[DT_OP_COUNT] = {"leaf", "linear", "matmul", "add", "sub", "mul",
                                         "div", "minimum", "maximum", "affine", "unary",
                                         "clamp", "sum", "mean", "concat", "slice", "reshape",
                                         "gather", "custom", "normalize", "conv2d", "conv1d",
                                         "conv_transpose1d"};
  for (int i = 0; i < DT_OP_COUNT; i++)
    CHECK(strcmp(dt_op_name(i), ops[i]) == 0, "op %d: %s", i, dt_op_name(i));
  CHECK(strcmp(dt_op_name(-1), "unknown") == 0 && strcmp(dt_op_name(DT_OP_COUNT), "unknown") == 0);
  static const char* fns[DT_UNARY_COUNT] = {"elu",      "relu",   "tanh", "sigmoid",
                                            "exp",      "log",    "softplus", "square",
                                            "sqrt",     "rsqrt",  "neg", "mish"};
  for (int i = 0; i < DT_UNARY_COUNT; i++)
    CHECK(strcmp(dt_unary_name(i), fns[i]) == 0, "unary %d: %s", i, dt_unary_name(i));
  CHECK(strcmp(dt_unary_name(DT_UNARY_COUNT), "unknown") == 0);
  dtTape* t = small_tape(1 << 12);
  char buf[64];
  dtTensor* s = dt_input(t, 0, NULL, NULL, "s");
  CHECK(strcmp(dt_shape_str(s, buf, sizeof buf), "[]") == 0, "%s", buf);
  dtTensor* x = dt_input(t, 3, (int[]){2, 30, 4}, NULL, NULL);
  CHECK(strcmp(dt_shape_str(x, buf, sizeof buf), "[2, 30, 4]") == 0, "%s", buf);
  char tiny[6];
  dt_shape_str(x, tiny, sizeof tiny);
  CHECK(strlen(tiny) == 5, "truncated to the buffer: '%s'", tiny);
  CHECK(strcmp(dt_shape_str(NULL, buf, sizeof buf), "(null)") == 0);
  dt_tape_free(t);
}

DT_TEST_MAIN("ops", TEST(test_checker_detects_errors), TEST(test_linear_matmul),
             TEST(test_binary_broadcast), TEST(test_unary_affine_clamp),
             TEST(test_reductions_and_shape_ops), TEST(test_composites),
             TEST(test_network_hvp_and_mixed), TEST(test_conv2d), TEST(test_conv2d_errors), TEST(test_conv1d), TEST(test_groupnorm_mish), TEST(test_mish_matches_composite), TEST(test_conv1d_errors), TEST(test_conv1d_chunks), TEST(test_shape_errors_name_op_and_tensors),
             TEST(test_null_propagation_keeps_first_error), TEST(test_check_finite),
             TEST(test_arena_exhaustion_is_an_error), TEST(test_rewind),
             TEST(test_backward_twice), TEST(test_frozen_params),
             TEST(test_no_heap_allocation_on_warm_tape), TEST(test_clamp_straight_through_outside), TEST(test_backward_seeds),
             TEST(test_tangent_rules), TEST(test_names))
