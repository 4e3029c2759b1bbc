// SPDX-License-Identifier: MIT
// Float32 tensors and a reverse-mode tape with forward-over-reverse second order.
//
// Every op computes its value and, when an input carries a tangent (a direction of
// differentiation), the tangent of its value (forward mode). dt_backward then propagates
// adjoints (reverse mode) and, on a tape with tangents, the tangents of the adjoints. Seeding
// an input x with tangent w and calling dt_backward on a scalar f therefore yields, in one pass:
//   x->grad = df/dx,   x->gdot = (d2f/dx2) w          (a Hessian-vector product)
//   p->grad = df/dp,   p->gdot = d/dp (w . df/dx)     (a mixed product, for parameters p)
// Tensors are batch-first and row-major. Intermediates live in the tape's arena: dt_tape_reset
// frees them all at once and no op allocates from the heap.
#ifndef DIFFTOP_TENSOR_H
#define DIFFTOP_TENSOR_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

// Most dimensions a tensor may have.
#define DT_MAX_DIMS 4

// Tensor flags.
enum {
  DT_REQUIRES_GRAD = 1 << 0,  // gradients flow into this tensor
  DT_PARAM = 1 << 1,          // a persistent parameter (owns its buffers, outlives tapes)
  DT_GRAD_TOUCHED = 1 << 2    // a backward pass wrote to grad since the last zero_grad
};

// A float32 tensor: value plus optional tangent, adjoint and adjoint tangent.
typedef struct dtTensor dtTensor;
struct dtTensor {
  int ndim;                  // number of dimensions (0 for a scalar)
  int shape[DT_MAX_DIMS];    // extents, row-major
  int64_t size;              // product of the extents
  float* val;                // values
  float* dot;                // tangent of the values (NULL: zero)
  float* grad;               // adjoint (NULL: not reached by backward)
  float* gdot;               // tangent of the adjoint (NULL: zero)
  const char* name;          // name used in messages (state_dict name for parameters)
  int flags;                 // DT_REQUIRES_GRAD | DT_PARAM | DT_GRAD_TOUCHED
  // graph (internal)
  int op;                    // dtOp of the node that produced it
  dtTensor* src[3];          // inputs of that node
  float fp[4];               // float parameters of the op
  int ip[4];                 // integer parameters of the op
  void* aux;                 // op scratch kept for the backward
  dtTensor* prev;            // previous node on the tape
  int id;                    // creation index on the tape
};

// The tape: an arena for intermediates and the list of nodes in creation order.
typedef struct dtTape dtTape;

// Tape options.
typedef struct dtTapeOpts {
  size_t arena_bytes;  // capacity of the tape's arena (no growth: exceeding it is an error)
  int check_finite;    // 1: every op checks its output and reports NaN/Inf by op and tensor
} dtTapeOpts;

// Default tape options (64 MiB arena, finite checks off).
DTAPI dtTapeOpts dt_tape_default_opts(void);

// Create a tape; NULL (and an error) on failure.
DTAPI dtTape* dt_tape_new(const dtTapeOpts* opts);

// Destroy a tape and everything on it.
DTAPI void dt_tape_free(dtTape* tape);

// Forget every node (parameters keep their buffers); clears the tape's sticky error.
DTAPI void dt_tape_reset(dtTape* tape);

// First error met on this tape since the last reset (DT_OK if none); ops after it return NULL.
DTAPI dtStatus dt_tape_status(const dtTape* tape);

// Message of the tape's first error ("" if none).
DTAPI const char* dt_tape_error(const dtTape* tape);

// Turn per-op finite checks on or off.
DTAPI void dt_tape_set_check_finite(dtTape* tape, int on);

// Let parameters receive gradients on this tape (on = 1, the default) or skip them (0).
DTAPI void dt_tape_set_param_grads(dtTape* tape, int on);

// Bytes of the tape's arena in use now, and the most ever used.
DTAPI void dt_tape_memory(const dtTape* tape, size_t* used, size_t* high_water,
                          size_t* capacity);

// Mark the tape position, to drop later nodes with dt_tape_rewind (earlier nodes stay valid).
DTAPI size_t dt_tape_mark(const dtTape* tape);

// Drop all nodes created after mark.
DTAPI void dt_tape_rewind(dtTape* tape, size_t mark);

// Allocate floats from the tape's arena (scratch that lives until the next reset/rewind).
DTAPI float* dt_tape_floats(dtTape* tape, int64_t n);

//---------------------------------------------------------------------------------------------
// leaves

// A new tensor on the tape, filled from data (or zeros when data is NULL).
DTAPI dtTensor* dt_input(dtTape* tape, int ndim, const int* shape, const float* data,
                         const char* name);

// A 2-D input [rows, cols] filled from data (or zeros).
DTAPI dtTensor* dt_input2(dtTape* tape, int rows, int cols, const float* data,
                          const char* name);

// Ask for the gradient of an input: backward fills x->grad (and x->gdot with tangents).
DTAPI dtStatus dt_requires_grad(dtTape* tape, dtTensor* x);

// Give an input a tangent (copied from dot, size x->size); marks the tape second order.
DTAPI dtStatus dt_set_tangent(dtTape* tape, dtTensor* x, const float* dot);

// A persistent parameter with its own val, grad and gdot buffers; NULL on failure.
DTAPI dtTensor* dt_param_new(const char* name, int ndim, const int* shape);

// Free a parameter made by dt_param_new.
DTAPI void dt_param_free(dtTensor* p);

// Zero a parameter's grad and gdot and clear its DT_GRAD_TOUCHED flag.
DTAPI void dt_param_zero_grad(dtTensor* p);

// Let gradients flow into a parameter (on = 1) or freeze it (on = 0).
DTAPI void dt_param_set_trainable(dtTensor* p, int on);

//---------------------------------------------------------------------------------------------
// ops (each returns NULL after recording an error on the tape; NULL inputs propagate)

// Identifiers of the ops; one table in tensor/ops.c holds each op's forward and backward.
typedef enum dtOp {
  DT_OP_LEAF = 0,
  DT_OP_LINEAR,     // y = x W^T + b        x [.., in], W [out, in], b [out] or NULL
  DT_OP_MATMUL,     // y = a b              a [m, k], b [k, n]
  DT_OP_ADD,        // y = a + b            b same shape, scalar, row, column or middle broadcast
  DT_OP_SUB,        // y = a - b
  DT_OP_MUL,        // y = a * b
  DT_OP_DIV,        // y = a / b
  DT_OP_MIN,        // y = min(a, b)
  DT_OP_MAX,        // y = max(a, b)
  DT_OP_AFFINE,     // y = alpha x + beta
  DT_OP_UNARY,      // y = f(x), f one of dtUnary
  DT_OP_CLAMP,      // y = clamp(x, lo, hi), optional straight-through gradient
  DT_OP_SUM,        // sum along an axis (or all)
  DT_OP_MEAN,       // mean along an axis (or all)
  DT_OP_CONCAT,     // concatenate two tensors along an axis
  DT_OP_SLICE,      // [start, start+len) along an axis
  DT_OP_RESHAPE,    // same values, new shape
  DT_OP_GATHER,     // rows of x picked by integer indices
  DT_OP_CUSTOM,     // a user function with derivative callbacks (dtScalarFn)
  DT_OP_LNORM,      // (x - mean) / sqrt(var + eps) over the last axis (LayerNorm's core)
  DT_OP_CONV2D,     // y = conv2d(x, W) + b  x [B,C,H,W], W [O,C,k,k], no padding (conv.c)
  DT_OP_CONV1D,     // y = conv1d(x, W) + b  x [B,C,L], W [O,C,k], stride, padding (conv1d.c)
  DT_OP_CONVT1D,    // y = conv_transpose1d(x, W) + b  x [B,C,L], W [C,O,k] (conv1d.c)
  DT_OP_COUNT
} dtOp;

// Elementwise functions of DT_OP_UNARY.
typedef enum dtUnary {
  DT_ELU = 0,   // alpha = 1
  DT_RELU,
  DT_TANH,
  DT_SIGMOID,
  DT_EXP,
  DT_LOG,
  DT_SOFTPLUS,
  DT_SQUARE,
  DT_SQRT,
  DT_RSQRT,
  DT_NEG,
  DT_MISH,      // x tanh(softplus(x))
  DT_UNARY_COUNT
} dtUnary;

// Reduce over every element (for dt_sum and dt_mean).
#define DT_AXIS_ALL (-100)

// y = x W^T + b over the last axis of x (b may be NULL).
DTAPI dtTensor* dt_linear(dtTape* t, dtTensor* x, dtTensor* W, dtTensor* b);

// y = a b for 2-D a [m,k] and b [k,n].
DTAPI dtTensor* dt_matmul(dtTape* t, dtTensor* a, dtTensor* b);

// Elementwise a + b (b: same shape, scalar, trailing-dims row, leading-dims column, or, as in
// numpy, extents right-aligned with a's that end in ones: b [C, 1] or [B, C, 1] against
// a [B, C, L] repeats b over L and the missing leading extents). The first that fits applies.
DTAPI dtTensor* dt_add(dtTape* t, dtTensor* a, dtTensor* b);

// Elementwise a - b, broadcasting b as in dt_add.
DTAPI dtTensor* dt_sub(dtTape* t, dtTensor* a, dtTensor* b);

// Elementwise a * b, broadcasting b as in dt_add.
DTAPI dtTensor* dt_mul(dtTape* t, dtTensor* a, dtTensor* b);

// Elementwise a / b, broadcasting b as in dt_add.
DTAPI dtTensor* dt_div(dtTape* t, dtTensor* a, dtTensor* b);

// Elementwise minimum (the gradient goes to the smaller; a on ties).
DTAPI dtTensor* dt_minimum(dtTape* t, dtTensor* a, dtTensor* b);

// Elementwise maximum (the gradient goes to the larger; a on ties).
DTAPI dtTensor* dt_maximum(dtTape* t, dtTensor* a, dtTensor* b);

// alpha * x + beta.
DTAPI dtTensor* dt_affine(dtTape* t, dtTensor* x, float alpha, float beta);

// alpha * x.
DTAPI dtTensor* dt_scale(dtTape* t, dtTensor* x, float alpha);

// f(x) elementwise for f in dtUnary.
DTAPI dtTensor* dt_unary(dtTape* t, dtTensor* x, dtUnary f);

// ELU with alpha = 1.
DTAPI dtTensor* dt_elu(dtTape* t, dtTensor* x);

// max(x, 0).
DTAPI dtTensor* dt_relu(dtTape* t, dtTensor* x);

// tanh(x).
DTAPI dtTensor* dt_tanh(dtTape* t, dtTensor* x);

// 1 / (1 + exp(-x)).
DTAPI dtTensor* dt_sigmoid(dtTape* t, dtTensor* x);

// exp(x).
DTAPI dtTensor* dt_exp(dtTape* t, dtTensor* x);

// log(x) (x must be positive; check_finite reports the op otherwise).
DTAPI dtTensor* dt_log(dtTape* t, dtTensor* x);

// log(1 + exp(x)), computed stably.
DTAPI dtTensor* dt_softplus(dtTape* t, dtTensor* x);

// x * x.
DTAPI dtTensor* dt_square(dtTape* t, dtTensor* x);

// clamp(x, lo, hi); straight_through = 1 passes the gradient unchanged (identity derivative).
DTAPI dtTensor* dt_clamp(dtTape* t, dtTensor* x, float lo, float hi, int straight_through);

// Sum along axis (keeping it as extent 1 is not done: the axis is removed), or DT_AXIS_ALL.
DTAPI dtTensor* dt_sum(dtTape* t, dtTensor* x, int axis);

// Mean along axis (removed), or DT_AXIS_ALL.
DTAPI dtTensor* dt_mean(dtTape* t, dtTensor* x, int axis);

// Concatenate a and b along axis (other extents equal); axis may be negative.
DTAPI dtTensor* dt_concat(dtTape* t, dtTensor* a, dtTensor* b, int axis);

// Elements [start, start + len) of x along axis; axis may be negative.
DTAPI dtTensor* dt_slice(dtTape* t, dtTensor* x, int axis, int start, int len);

// x with a new shape of the same size.
DTAPI dtTensor* dt_reshape(dtTape* t, dtTensor* x, int ndim, const int* shape);

// Rows of x (along axis 0) at idx[0..n): y[i] = x[idx[i]].
DTAPI dtTensor* dt_gather(dtTape* t, dtTensor* x, const int* idx, int n);

// A user scalar function f(a, x) per batch row, with derivative callbacks, for objectives
// written in plain C. Callbacks return 0 on success; anything else becomes a tape error.
typedef struct dtScalarFn {
  int na;      // values of a per row
  int nx;      // values of x per row (0: no x)
  void* user;  // passed to the callbacks
  // f [B], and its gradients ga = df/da [B, na] and gx = df/dx [B, nx] (gx NULL: not needed)
  int (*eval)(void* user, int B, const float* a, const float* x, float* f, float* ga, float* gx);
  // joint Hessian-vector product: ha = Haa da + Hax dx [B, na], hx = Hxa da + Hxx dx [B, nx]
  // (dx NULL means zero; hx NULL: not needed)
  int (*hvp)(void* user, int B, const float* a, const float* x, const float* da, const float* dx,
             float* ha, float* hx);
  const char* name;  // used in messages
} dtScalarFn;

// y [B] = f(a, x) for a [B, na] and x [B, nx] (x may be NULL when nx = 0); fn must outlive the tape.
DTAPI dtTensor* dt_custom(dtTape* t, dtTensor* a, dtTensor* x, const dtScalarFn* fn);

// (x - mean(x)) / sqrt(var(x) + eps) over the last axis (biased variance), fused.
DTAPI dtTensor* dt_normalize(dtTape* t, dtTensor* x, float eps);
// 2-D convolution as torch.nn.Conv2d(padding=0): x [B, C, H, W], W [O, C, k, k], b [O] or
// NULL, integer stride; y [B, O, (H - k) / stride + 1, (W - k) / stride + 1]. Bilinear in
// (x, W) with tangents and second-order adjoints like dt_linear.
DTAPI dtTensor* dt_conv2d(dtTape* t, dtTensor* x, dtTensor* W, dtTensor* b, int stride);

// Output extent of a convolution without padding (0 if the kernel does not fit).
DTAPI int dt_conv2d_out_size(int in, int k, int stride);

// 1-D convolution as torch.nn.Conv1d: x [B, C, L], W [O, C, k], b [O] or NULL, stride >= 1 and
// pad >= 0 zeros at both ends; y [B, O, (L + 2 pad - k) / stride + 1]. Bilinear in (x, W) with
// tangents and second-order adjoints like dt_linear.
DTAPI dtTensor* dt_conv1d(dtTape* t, dtTensor* x, dtTensor* W, dtTensor* b, int stride, int pad);

// 1-D transposed convolution as torch.nn.ConvTranspose1d (output_padding 0): x [B, C, L],
// W [C, O, k] (torch's layout), b [O] or NULL; y [B, O, (L - 1) stride - 2 pad + k]. The
// adjoint of dt_conv1d in x; tangents and second-order adjoints as dt_conv1d.
DTAPI dtTensor* dt_conv_transpose1d(dtTape* t, dtTensor* x, dtTensor* W, dtTensor* b,
                                    int stride, int pad);

// Output length of dt_conv1d (0 if the padded input is shorter than the kernel).
DTAPI int dt_conv1d_out_size(int in, int k, int stride, int pad);

// Output length of dt_conv_transpose1d (0 if it would be empty).
DTAPI int dt_conv_transpose1d_out_size(int in, int k, int stride, int pad);

// Group normalisation as torch.nn.GroupNorm: x [B, C, ...] normalised over each of `groups`
// groups of C / groups channels (all positions, biased variance), then gain [C] and bias [C]
// (either may be NULL) per channel. Composed from dt_normalize and broadcast ops.
DTAPI dtTensor* dt_groupnorm(dtTape* t, dtTensor* x, int groups, dtTensor* gain,
                             dtTensor* bias, float eps);

// Mish, x tanh(softplus(x)) (one unary op; first-order passes vectorised).
DTAPI dtTensor* dt_mish(dtTape* t, dtTensor* x);

// Layer normalisation over the last axis with optional gain and bias (PyTorch semantics).
DTAPI dtTensor* dt_layernorm(dtTape* t, dtTensor* x, dtTensor* gain, dtTensor* bias, float eps);

// Mean squared error mean((a - b)^2) over all elements, a scalar.
DTAPI dtTensor* dt_mse(dtTape* t, dtTensor* a, dtTensor* b);

// log sum_k exp(x[b, k]) of each row of a 2-D x [B, K], a [B] vector (stable: each row is
// shifted by its maximum, a constant that leaves every derivative unchanged).
DTAPI dtTensor* dt_logsumexp(dtTape* t, dtTensor* x);

//---------------------------------------------------------------------------------------------
// backward

// Backpropagate from y: seed is dL/dy (NULL: all ones, i.e. the gradient of sum(y)).
DTAPI dtStatus dt_backward(dtTape* t, dtTensor* y, const float* seed);

// Backpropagate from y with an adjoint seed and a seed for its tangent (either may be NULL).
DTAPI dtStatus dt_backward_ex(dtTape* t, dtTensor* y, const float* seed, const float* seed_dot);

//---------------------------------------------------------------------------------------------
// helpers

// Name of an op ("linear", "add", ...).
DTAPI const char* dt_op_name(int op);

// Name of a unary function ("elu", "tanh", ...).
DTAPI const char* dt_unary_name(int f);

// Shape as text, e.g. "[4, 512]", into buf.
DTAPI const char* dt_shape_str(const dtTensor* x, char* buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
