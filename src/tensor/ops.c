// SPDX-License-Identifier: MIT
// The op table: for every op, the forward (value and tangent) beside the backward (adjoint and
// adjoint tangent). Notation in the comments: y = f(x), ' = tangent (dot), g = adjoint (grad),
// g' = adjoint tangent (gdot). A backward adds J^T g into the inputs' g and
// J^T g' + (dJ^T) g into their g', where dJ is J's derivative along the input tangents.
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor_internal.h"
#include "vecmath.h"

#define LABEL(x) dt_label((x), lb_##x, sizeof lb_##x)

//---------------------------------------------------------------------------------------------
// small helpers

// OpenBLAS (0.3.21, single thread) multiplies one or two rows by a weight too large for L2 at
// GEMV speed, reading the weight once, but packs the weight for 3..12 rows: 5 rows times a
// 512x512 weight take 110 us as one call and 53 us as three calls of at most two rows. Small
// batches (the planner at B=1 stacks its H steps) therefore go through the weight in pairs.
#define DT_PAIR_MIN_WEIGHT 65536
static int split_in_pairs(int m, int n, int k, int lo) {
  return m >= lo && m <= 12 && (int64_t)n * k >= DT_PAIR_MIN_WEIGHT;
}

// y[m,n] (+)= a[m,k] * op(b): b is [n,k] when bt (x W^T), else [k,n]
static void gemm_nt(int m, int n, int k, const float* a, const float* b, float* y, float beta) {
  if (n == 1) {
    // one output column: y = a b^T with b a single row
    cblas_sgemv(CblasRowMajor, CblasNoTrans, m, k, 1.0f, a, k, b, 1, beta, y, 1);
  } else if (m == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, b, k, a, 1, beta, y, 1);
  } else if (split_in_pairs(m, n, k, 3)) {
    for (int i = 0; i < m; i += 2)
      gemm_nt(m - i < 2 ? 1 : 2, n, k, a + (size_t)i * k, b, y + (size_t)i * n, beta);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, beta, y, n);
  }
}

// y[m,n] = a[m,k] b[k,n] + beta y (beta 0 or 1; y need not be initialised when 0)
static void gemm_nn(int m, int n, int k, const float* a, const float* b, float* y, float beta) {
  if (k == 1 && beta == 0.0f) {
    // an outer product written directly (no zero fill + rank-1 update)
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) y[(size_t)i * n + j] = a[i] * b[j];
  } else if (k == 1) {
    cblas_sger(CblasRowMajor, m, n, 1.0f, a, 1, b, 1, y, n);
  } else if (m == 1) {
    cblas_sgemv(CblasRowMajor, CblasTrans, k, n, 1.0f, b, n, a, 1, beta, y, 1);
  } else if (split_in_pairs(m, n, k, 4)) {
    for (int i = 0; i < m; i += 2)
      gemm_nn(m - i < 2 ? 1 : 2, n, k, a + (size_t)i * k, b, y + (size_t)i * n, beta);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, beta, y, n);
  }
}

// y[m,n] += a[m,k] b[k,n]
static void gemm_nn_acc(int m, int n, int k, const float* a, const float* b, float* y) {
  gemm_nn(m, n, k, a, b, y, 1.0f);
}

// y[m,n] += a[k,m]^T b[k,n]
static void gemm_tn_acc(int m, int n, int k, const float* a, const float* b, float* y) {
  if (m == 1) {
    // one output row: y += a^T b with a a single column
    cblas_sgemv(CblasRowMajor, CblasTrans, k, n, 1.0f, b, n, a, 1, 1.0f, y, 1);
  } else if (k == 1) {
    cblas_sger(CblasRowMajor, m, n, 1.0f, a, 1, b, 1, y, n);
  } else {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, 1.0f, a, m, b, n, 1.0f, y, n);
  }
}

// y[m,n] += a[m,k] b[n,k]^T
static void gemm_nt_acc(int m, int n, int k, const float* a, const float* b, float* y) {
  gemm_nt(m, n, k, a, b, y, 1.0f);
}

// x receives gradients: it asks for them, and it is not a parameter on a tape that skips them
static int needs_grad(const dtTape* t, const dtTensor* x) {
  if (!x || !(x->flags & DT_REQUIRES_GRAD)) return 0;
  return !((x->flags & DT_PARAM) && t->no_param_grads);
}

static int has_dot(const dtTensor* x) { return x && x->dot; }

// x's adjoint buffers for an op that writes all of them: 1 when they were just allocated
// (uninitialised: overwrite, no zero fill), 0 when they hold sums to add to (a buffer that was
// allocated while the other already existed is zeroed), -1 on failure
static int claim_overwrite(dtTape* t, dtTensor* x) {
  int fresh = dt_claim_grad(t, x);
  if (fresh < 0) return -1;
  int all = t->second_order ? DT_FRESH_GRAD | DT_FRESH_GDOT : DT_FRESH_GRAD;
  if (fresh == all) return 1;
  if (fresh & DT_FRESH_GRAD) memset(x->grad, 0, (size_t)x->size * sizeof(float));
  if (fresh & DT_FRESH_GDOT) memset(x->gdot, 0, (size_t)x->size * sizeof(float));
  return 0;
}

// a new node for op with inputs; it requires grad if any input does
static dtTensor* new_node(dtTape* t, int op, int ndim, const int* shape, dtTensor* a,
                          dtTensor* b, dtTensor* c) {
  dtTensor* y = dt_node(t, op, ndim, shape);
  if (!y) return NULL;
  y->src[0] = a;
  y->src[1] = b;
  y->src[2] = c;
  if (needs_grad(t, a) || needs_grad(t, b) || needs_grad(t, c)) y->flags |= DT_REQUIRES_GRAD;
  return y;
}

// run the forward from the table, then the optional finite check
static dtTensor* finish(dtTape* t, dtTensor* y) {
  if (!y) return NULL;
  if (has_dot(y->src[0]) || has_dot(y->src[1]) || has_dot(y->src[2])) {
    // uninitialised: every forward writes all of y->dot
    if (!y->dot) y->dot = dt_node_floats(t, y->size, 0);
    if (!y->dot) return NULL;
  }
  dt_op_table[y->op].forward(t, y);
  if (t->status != DT_OK) return NULL;
  if (t->check_finite) {
    for (int64_t i = 0; i < y->size; i++) {
      if (!isfinite(y->val[i])) {
        char lb_y[64], lb_a[64], op[48];
        dtTensor* a = y->src[0];
        // name the function of a unary node ("unary(log)"): "unary" alone does not say which
        if (y->op == DT_OP_UNARY) {
          snprintf(op, sizeof op, "unary(%s)", dt_unary_name(y->ip[0]));
        } else {
          snprintf(op, sizeof op, "%s", dt_op_name(y->op));
        }
        dt_tape_fail(t, DT_ERR_NONFINITE, "dt_%s: non-finite value %g at element %lld of %s "
                     "(input %s)", op, (double)y->val[i], (long long)i, LABEL(y), LABEL(a));
        return NULL;
      }
    }
  }
  return y;
}

// NULL inputs propagate an earlier error; a NULL tape is a caller bug reported per thread
static int check_inputs(dtTape* t, const char* op, dtTensor* a, dtTensor* b) {
  if (!t) {
    dt_error(DT_ERR_ARG, "dt_%s: tape is NULL", op);
    return 0;
  }
  if (t->status != DT_OK) return 0;
  if (!a || (b == NULL && 0)) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_%s: input is NULL", op);
    return 0;
  }
  return 1;
}

//---------------------------------------------------------------------------------------------
// linear: y = x W^T + b over the last axis; x viewed as [M, in]

// at small batch a product over two stacked rows costs about what one row does (the weight is
// read once), so a value and its tangent, or an adjoint and its tangent, go through W together
#define DT_STACK_FLOATS 4096
static int stack_rows(int M, int out, int in) {
  return 2 * M * out <= DT_STACK_FLOATS && 2 * M * in <= DT_STACK_FLOATS;
}

// [y; y'] = [x; x'] W^T (+ b on y): the tangent part of the bias is added by the caller's rule
static void linear_forward_stacked(int M, int out, int in, const dtTensor* x, const dtTensor* W,
                                   const dtTensor* b, dtTensor* y) {
  float sx[DT_STACK_FLOATS], sy[DT_STACK_FLOATS];
  size_t xi = (size_t)M * in, yo = (size_t)M * out;
  memcpy(sx, x->val, xi * sizeof(float));
  memcpy(sx + xi, x->dot, xi * sizeof(float));
  // rows start as b (values) and 0 (tangents); the product accumulates onto them
  memset(sy, 0, 2 * yo * sizeof(float));
  for (int i = 0; b && i < M; i++) memcpy(sy + (size_t)i * out, b->val, (size_t)out * sizeof(float));
  gemm_nt(2 * M, out, in, sx, W->val, sy, 1.0f);
  memcpy(y->val, sy, yo * sizeof(float));
  memcpy(y->dot, sy + yo, yo * sizeof(float));
  if (b && b->dot)
    for (int i = 0; i < M; i++) dt_vec_add(y->dot + (size_t)i * out, b->dot, out);
}

// [gx; gx'] (+)= [g; g'] W in one product; beta 0 overwrites, 1 accumulates
static void linear_input_grad_stacked(int M, int out, int in, const dtTensor* y, const dtTensor* W,
                                      dtTensor* x, float beta) {
  float sg[DT_STACK_FLOATS], sx[DT_STACK_FLOATS];
  size_t go = (size_t)M * out, xi = (size_t)M * in;
  memcpy(sg, y->grad, go * sizeof(float));
  memcpy(sg + go, y->gdot, go * sizeof(float));
  gemm_nn(2 * M, in, out, sg, W->val, sx, 0.0f);
  if (beta == 0.0f) {
    memcpy(x->grad, sx, xi * sizeof(float));
    memcpy(x->gdot, sx + xi, xi * sizeof(float));
  } else {
    dt_vec_add(x->grad, sx, (int)xi);
    dt_vec_add(x->gdot, sx + xi, (int)xi);
  }
}

static void linear_forward(dtTape* t, dtTensor* y) {
  (void)t;
  dtTensor *x = y->src[0], *W = y->src[1], *b = y->src[2];
  int out = W->shape[0], in = W->shape[1], M = (int)(x->size / in);
  // with few rows, y and y' come from one product over [x; x']
  if (y->dot && x->dot && !W->dot && stack_rows(M, out, in)) {
    linear_forward_stacked(M, out, in, x, W, b, y);
    return;
  }
  // y = x W^T + b: rows start as b and the product accumulates onto them (no extra pass)
  if (b) {
    for (int i = 0; i < M; i++) memcpy(y->val + (size_t)i * out, b->val, (size_t)out * sizeof(float));
  }
  gemm_nt(M, out, in, x->val, W->val, y->val, b ? 1.0f : 0.0f);
  // y' = x' W^T + x W'^T + b'
  if (y->dot) {
    // the first product overwrites (beta 0): no zero fill
    float beta = 0.0f;
    if (x->dot) gemm_nt(M, out, in, x->dot, W->val, y->dot, beta), beta = 1.0f;
    if (W->dot) gemm_nt(M, out, in, x->val, W->dot, y->dot, beta), beta = 1.0f;
    if (beta == 0.0f) memset(y->dot, 0, (size_t)y->size * sizeof(float));
    if (b && b->dot)
      for (int i = 0; i < M; i++) dt_vec_add(y->dot + (size_t)i * out, b->dot, out);
  }
}

// gW' += g'^T x + g^T x'. With few rows both products are one GEMM over the stacked rows
// [g'; g] and [x; x'], so the weight-sized accumulator is read and written once, not twice
static void linear_weight_gdot(int M, int out, int in, const dtTensor* y, const dtTensor* x,
                               float* gW) {
  if (x->dot && stack_rows(M, out, in)) {
    float sg[DT_STACK_FLOATS], sx[DT_STACK_FLOATS];
    size_t go = (size_t)M * out, xi = (size_t)M * in;
    memcpy(sg, y->gdot, go * sizeof(float));
    memcpy(sg + go, y->grad, go * sizeof(float));
    memcpy(sx, x->val, xi * sizeof(float));
    memcpy(sx + xi, x->dot, xi * sizeof(float));
    gemm_tn_acc(out, in, 2 * M, sg, sx, gW);
    return;
  }
  gemm_tn_acc(out, in, M, y->gdot, x->val, gW);
  if (x->dot) gemm_tn_acc(out, in, M, y->grad, x->dot, gW);
}

static void linear_backward(dtTape* t, dtTensor* y) {
  dtTensor *x = y->src[0], *W = y->src[1], *b = y->src[2];
  int out = W->shape[0], in = W->shape[1], M = (int)(x->size / in);
  int so = t->second_order;
  // gx += g W;  gx' += g' W + g W'  (buffers allocated here are written with beta 0)
  if (needs_grad(t, x)) {
    int over = claim_overwrite(t, x);
    if (over < 0) return;
    float beta = over ? 0.0f : 1.0f;
    if (so && !W->dot && stack_rows(M, out, in)) {
      linear_input_grad_stacked(M, out, in, y, W, x, beta);
    } else {
      gemm_nn(M, in, out, y->grad, W->val, x->grad, beta);
      if (so) gemm_nn(M, in, out, y->gdot, W->val, x->gdot, beta);
      if (so && W->dot) gemm_nn_acc(M, in, out, y->grad, W->dot, x->gdot);
    }
  }
  // gW += g^T x;  gW' += g'^T x + g^T x'  (gW skipped when only gdot is wanted)
  int first = !(so && t->param_gdot_only);
  if (needs_grad(t, W)) {
    if (!dt_ensure_grad(t, W)) return;
    if (first || !(W->flags & DT_PARAM)) gemm_tn_acc(out, in, M, y->grad, x->val, W->grad);
    if (so && !dt_grad_stage_linear(t->stage, M, y, x, W))
      linear_weight_gdot(M, out, in, y, x, W->gdot);
  }
  // gb += column sums of g (and g')
  if (b && needs_grad(t, b)) {
    if (!dt_ensure_grad(t, b)) return;
    if (first || !(b->flags & DT_PARAM))
      for (int i = 0; i < M; i++) dt_vec_add(b->grad, y->grad + (size_t)i * out, out);
    if (so)
      for (int i = 0; i < M; i++) dt_vec_add(b->gdot, y->gdot + (size_t)i * out, out);
  }
}

dtTensor* dt_linear(dtTape* t, dtTensor* x, dtTensor* W, dtTensor* b) {
  if (!check_inputs(t, "linear", x, W)) return NULL;
  char lb_x[64], lb_W[64], lb_b[64], s1[64], s2[64];
  if (!W) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_linear: weight is NULL (input %s)", LABEL(x));
    return NULL;
  }
  if (W->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != W->shape[1]) {
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_linear: input %s %s does not fit weight %s %s",
                 LABEL(x), dt_shape_str(x, s1, sizeof s1), LABEL(W),
                 dt_shape_str(W, s2, sizeof s2));
    return NULL;
  }
  if (b && (b->ndim != 1 || b->shape[0] != W->shape[0])) {
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_linear: bias %s %s does not fit weight %s %s", LABEL(b),
                 dt_shape_str(b, s1, sizeof s1), LABEL(W), dt_shape_str(W, s2, sizeof s2));
    return NULL;
  }
  int shape[DT_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[x->ndim - 1] = W->shape[0];
  return finish(t, new_node(t, DT_OP_LINEAR, x->ndim, shape, x, W, b));
}

//---------------------------------------------------------------------------------------------
// matmul: y[m,n] = a[m,k] b[k,n]

static void matmul_forward(dtTape* t, dtTensor* y) {
  (void)t;
  dtTensor *a = y->src[0], *b = y->src[1];
  int m = a->shape[0], k = a->shape[1], n = b->shape[1];
  memset(y->val, 0, (size_t)y->size * sizeof(float));
  gemm_nn_acc(m, n, k, a->val, b->val, y->val);
  // y' = a' b + a b'
  if (y->dot) {
    memset(y->dot, 0, (size_t)y->size * sizeof(float));
    if (a->dot) gemm_nn_acc(m, n, k, a->dot, b->val, y->dot);
    if (b->dot) gemm_nn_acc(m, n, k, a->val, b->dot, y->dot);
  }
}

static void matmul_backward(dtTape* t, dtTensor* y) {
  dtTensor *a = y->src[0], *b = y->src[1];
  int m = a->shape[0], k = a->shape[1], n = b->shape[1];
  int so = t->second_order;
  // ga += g b^T;  ga' += g' b^T + g b'^T
  if (needs_grad(t, a)) {
    if (!dt_ensure_grad(t, a)) return;
    gemm_nt_acc(m, k, n, y->grad, b->val, a->grad);
    if (so) {
      gemm_nt_acc(m, k, n, y->gdot, b->val, a->gdot);
      if (b->dot) gemm_nt_acc(m, k, n, y->grad, b->dot, a->gdot);
    }
  }
  // gb += a^T g;  gb' += a^T g' + a'^T g
  if (needs_grad(t, b)) {
    if (!dt_ensure_grad(t, b)) return;
    gemm_tn_acc(k, n, m, a->val, y->grad, b->grad);
    if (so) {
      gemm_tn_acc(k, n, m, a->val, y->gdot, b->gdot);
      if (a->dot) gemm_tn_acc(k, n, m, a->dot, y->grad, b->gdot);
    }
  }
}

dtTensor* dt_matmul(dtTape* t, dtTensor* a, dtTensor* b) {
  if (!check_inputs(t, "matmul", a, b)) return NULL;
  char lb_a[64], lb_b[64], s1[64], s2[64];
  if (!b || a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[0]) {
    dt_tape_fail(t, b ? DT_ERR_SHAPE : DT_ERR_ARG, "dt_matmul: %s %s times %s %s", LABEL(a),
                 dt_shape_str(a, s1, sizeof s1), LABEL(b), dt_shape_str(b, s2, sizeof s2));
    return NULL;
  }
  int shape[2] = {a->shape[0], b->shape[1]};
  return finish(t, new_node(t, DT_OP_MATMUL, 2, shape, a, b, NULL));
}

//---------------------------------------------------------------------------------------------
// binary elementwise ops with broadcasting of b: ip[0] = mode, ip[1] = repeat

// BC_MID: b's extents, right-aligned against a's, end in ones (numpy broadcasting of b
// [.., C, 1] against a [B, C, L]): outer = the leading extents of a that b lacks, ip[1] = inner
// = the product of a's extents where b has its trailing ones
enum { BC_SAME = 0, BC_SCALAR, BC_ROW, BC_COL, BC_MID };

// index of b used for element i of a
static inline int64_t bidx(const dtTensor* y, int64_t i) {
  switch (y->ip[0]) {
    case BC_SAME: return i;
    case BC_SCALAR: return 0;
    case BC_ROW: return i % y->src[1]->size;
    case BC_MID: return (i / y->ip[1]) % y->src[1]->size;
    default: return i / y->ip[1];
  }
}

// run BODY for every element i of y with j the matching element of b, in loops the compiler
// can vectorise (same, scalar, row and column broadcasts)
#define BCAST_LOOP(y, BODY)                                                            \
  do {                                                                                 \
    int64_t n_ = (y)->size, nb_ = (y)->src[1]->size;                                   \
    switch ((y)->ip[0]) {                                                              \
      case BC_SAME:                                                                    \
        for (int64_t i = 0; i < n_; i++) {                                             \
          int64_t j = i;                                                               \
          BODY                                                                         \
        }                                                                              \
        break;                                                                         \
      case BC_SCALAR:                                                                  \
        for (int64_t i = 0; i < n_; i++) {                                             \
          int64_t j = 0;                                                               \
          BODY                                                                         \
        }                                                                              \
        break;                                                                         \
      case BC_ROW:                                                                     \
        for (int64_t r_ = 0; r_ < n_; r_ += nb_)                                       \
          for (int64_t j = 0; j < nb_; j++) {                                          \
            int64_t i = r_ + j;                                                        \
            BODY                                                                       \
          }                                                                            \
        break;                                                                         \
      case BC_MID: {                                                                   \
        int64_t rep_ = (y)->ip[1], outer_ = n_ / (nb_ * rep_);                         \
        for (int64_t o_ = 0; o_ < outer_; o_++)                                        \
          for (int64_t j = 0; j < nb_; j++)                                            \
            for (int64_t k_ = 0; k_ < rep_; k_++) {                                    \
              int64_t i = (o_ * nb_ + j) * rep_ + k_;                                  \
              BODY                                                                     \
            }                                                                          \
        break;                                                                         \
      }                                                                                \
      default: {                                                                       \
        int64_t rep_ = (y)->ip[1];                                                     \
        for (int64_t j = 0; j < nb_; j++)                                              \
          for (int64_t k_ = 0; k_ < rep_; k_++) {                                      \
            int64_t i = j * rep_ + k_;                                                 \
            BODY                                                                       \
          }                                                                            \
      }                                                                                \
    }                                                                                  \
  } while (0)

// BC_MID's inner extent: b right-aligned against a, its k >= 1 trailing ones over a's last k
// extents (their product) and its other extents equal to a's; 0 when b is not of that form
static int64_t mid_inner(const dtTensor* a, const dtTensor* b) {
  int k = 0;
  while (k < b->ndim && b->shape[b->ndim - 1 - k] == 1) k++;
  if (k == 0 || k == b->ndim || b->ndim > a->ndim) return 0;
  int off = a->ndim - b->ndim;
  if (memcmp(a->shape + off, b->shape, sizeof(int) * (size_t)(b->ndim - k)) != 0) return 0;
  int64_t inner = 1;
  for (int d = a->ndim - k; d < a->ndim; d++) inner *= a->shape[d];
  return inner;
}

// decide how b broadcasts against a; -1 if it does not
static int broadcast_mode(const dtTensor* a, const dtTensor* b) {
  if (a->ndim == b->ndim && memcmp(a->shape, b->shape, sizeof(int) * (size_t)a->ndim) == 0)
    return BC_SAME;
  if (b->size == 1) return BC_SCALAR;
  if (b->ndim < a->ndim) {
    int off = a->ndim - b->ndim;
    if (memcmp(a->shape + off, b->shape, sizeof(int) * (size_t)b->ndim) == 0) return BC_ROW;
    if (memcmp(a->shape, b->shape, sizeof(int) * (size_t)b->ndim) == 0) return BC_COL;
  }
  return mid_inner(a, b) > 0 ? BC_MID : -1;
}

static dtTensor* binary(dtTape* t, int op, dtTensor* a, dtTensor* b) {
  if (!check_inputs(t, dt_op_name(op), a, b)) return NULL;
  char lb_a[64], lb_b[64], s1[64], s2[64];
  if (!b) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_%s: second input is NULL (first %s)", dt_op_name(op),
                 LABEL(a));
    return NULL;
  }
  int mode = broadcast_mode(a, b);
  if (mode < 0) {
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_%s: %s %s and %s %s do not broadcast", dt_op_name(op),
                 LABEL(a), dt_shape_str(a, s1, sizeof s1), LABEL(b),
                 dt_shape_str(b, s2, sizeof s2));
    return NULL;
  }
  dtTensor* y = new_node(t, op, a->ndim, a->shape, a, b, NULL);
  if (!y) return NULL;
  y->ip[0] = mode;
  y->ip[1] = mode == BC_COL ? (int)(a->size / b->size) : mode == BC_MID ? (int)mid_inner(a, b) : 1;
  return finish(t, y);
}

// y = a + s b (s = +1 add, -1 sub); y' = a' + s b'
static void addsub_forward(dtTape* t, dtTensor* y) {
  (void)t;
  const float *av = y->src[0]->val, *bv = y->src[1]->val;
  const float *ad = y->src[0]->dot, *bd = y->src[1]->dot;
  float s = y->op == DT_OP_SUB ? -1.0f : 1.0f, *yv = y->val, *yd = y->dot;
  BCAST_LOOP(y, { yv[i] = av[i] + s * bv[j]; });
  if (yd) BCAST_LOOP(y, { yd[i] = (ad ? ad[i] : 0.0f) + (bd ? s * bd[j] : 0.0f); });
}

// ga += g, gb += s g (summed over broadcast); same for g'
static void addsub_backward(dtTape* t, dtTensor* y) {
  dtTensor *a = y->src[0], *b = y->src[1];
  float s = y->op == DT_OP_SUB ? -1.0f : 1.0f;
  const float *g = y->grad, *gd = y->gdot;
  int so = t->second_order;
  if (needs_grad(t, a)) {
    if (!dt_ensure_grad(t, a)) return;
    float *ag = a->grad, *agd = a->gdot;
    for (int64_t i = 0; i < y->size; i++) ag[i] += g[i];
    if (so)
      for (int64_t i = 0; i < y->size; i++) agd[i] += gd[i];
  }
  if (needs_grad(t, b)) {
    if (!dt_ensure_grad(t, b)) return;
    float *bg = b->grad, *bgd = b->gdot;
    BCAST_LOOP(y, { bg[j] += s * g[i]; });
    if (so) BCAST_LOOP(y, { bgd[j] += s * gd[i]; });
  }
}

// y = a b;  y' = a' b + a b'
static void mul_forward(dtTape* t, dtTensor* y) {
  (void)t;
  const float *av = y->src[0]->val, *bv = y->src[1]->val;
  const float *ad = y->src[0]->dot, *bd = y->src[1]->dot;
  float *yv = y->val, *yd = y->dot;
  BCAST_LOOP(y, { yv[i] = av[i] * bv[j]; });
  if (yd) BCAST_LOOP(y, { yd[i] = (ad ? ad[i] * bv[j] : 0.0f) + (bd ? av[i] * bd[j] : 0.0f); });
}

// ga += g b, gb += g a;  ga' += g' b + g b', gb' += g' a + g a'
static void mul_backward(dtTape* t, dtTensor* y) {
  dtTensor *a = y->src[0], *b = y->src[1];
  const float *av = a->val, *bv = b->val, *ad = a->dot, *bd = b->dot;
  const float *g = y->grad, *gd = y->gdot;
  int so = t->second_order;
  if (needs_grad(t, a)) {
    if (!dt_ensure_grad(t, a)) return;
    float *ag = a->grad, *agd = a->gdot;
    BCAST_LOOP(y, { ag[i] += g[i] * bv[j]; });
    if (so) BCAST_LOOP(y, { agd[i] += gd[i] * bv[j] + (bd ? g[i] * bd[j] : 0.0f); });
  }
  if (needs_grad(t, b)) {
    if (!dt_ensure_grad(t, b)) return;
    float *bg = b->grad, *bgd = b->gdot;
    BCAST_LOOP(y, { bg[j] += g[i] * av[i]; });
    if (so) BCAST_LOOP(y, { bgd[j] += gd[i] * av[i] + (ad ? g[i] * ad[i] : 0.0f); });
  }
}

// y = a / b;  y' = a'/b - a b'/b^2
static void div_forward(dtTape* t, dtTensor* y) {
  (void)t;
  dtTensor *a = y->src[0], *b = y->src[1];
  for (int64_t i = 0; i < y->size; i++) y->val[i] = a->val[i] / b->val[bidx(y, i)];
  if (y->dot) {
    for (int64_t i = 0; i < y->size; i++) {
      int64_t j = bidx(y, i);
      float bv = b->val[j];
      float d = a->dot ? a->dot[i] / bv : 0.0f;
      if (b->dot) d -= a->val[i] * b->dot[j] / (bv * bv);
      y->dot[i] = d;
    }
  }
}

// ga += g/b, gb += -g a/b^2
// ga' += g'/b - g b'/b^2
// gb' += -g' a/b^2 - g (a'/b^2 - 2 a b'/b^3)
static void div_backward(dtTape* t, dtTensor* y) {
  dtTensor *a = y->src[0], *b = y->src[1];
  int so = t->second_order;
  if (needs_grad(t, a)) {
    if (!dt_ensure_grad(t, a)) return;
    for (int64_t i = 0; i < y->size; i++) {
      int64_t j = bidx(y, i);
      float bv = b->val[j];
      a->grad[i] += y->grad[i] / bv;
      if (so) {
        a->gdot[i] += y->gdot[i] / bv - (b->dot ? y->grad[i] * b->dot[j] / (bv * bv) : 0.0f);
      }
    }
  }
  if (needs_grad(t, b)) {
    if (!dt_ensure_grad(t, b)) return;
    for (int64_t i = 0; i < y->size; i++) {
      int64_t j = bidx(y, i);
      float bv = b->val[j], b2 = bv * bv;
      b->grad[j] -= y->grad[i] * a->val[i] / b2;
      if (so) {
        float da = a->dot ? a->dot[i] / b2 : 0.0f;
        float db = b->dot ? 2.0f * a->val[i] * b->dot[j] / (b2 * bv) : 0.0f;
        b->gdot[j] += -y->gdot[i] * a->val[i] / b2 - y->grad[i] * (da - db);
      }
    }
  }
}

// y = a where a is selected (a <= b for min, a >= b for max), else b; linear in the selection
static int pick_a(const dtTensor* y, float av, float bv) {
  return y->op == DT_OP_MIN ? av <= bv : av >= bv;
}

static void minmax_forward(dtTape* t, dtTensor* y) {
  (void)t;
  dtTensor *a = y->src[0], *b = y->src[1];
  for (int64_t i = 0; i < y->size; i++) {
    int64_t j = bidx(y, i);
    int sel = pick_a(y, a->val[i], b->val[j]);
    y->val[i] = sel ? a->val[i] : b->val[j];
    if (y->dot) y->dot[i] = sel ? (a->dot ? a->dot[i] : 0.0f) : (b->dot ? b->dot[j] : 0.0f);
  }
}

static void minmax_backward(dtTape* t, dtTensor* y) {
  dtTensor *a = y->src[0], *b = y->src[1];
  int so = t->second_order;
  if (needs_grad(t, a) && !dt_ensure_grad(t, a)) return;
  if (needs_grad(t, b) && !dt_ensure_grad(t, b)) return;
  for (int64_t i = 0; i < y->size; i++) {
    int64_t j = bidx(y, i);
    dtTensor* dst = pick_a(y, a->val[i], b->val[j]) ? a : b;
    int64_t k = dst == a ? i : j;
    if (!needs_grad(t, dst)) continue;
    dst->grad[k] += y->grad[i];
    if (so) dst->gdot[k] += y->gdot[i];
  }
}

dtTensor* dt_add(dtTape* t, dtTensor* a, dtTensor* b) { return binary(t, DT_OP_ADD, a, b); }
dtTensor* dt_sub(dtTape* t, dtTensor* a, dtTensor* b) { return binary(t, DT_OP_SUB, a, b); }
dtTensor* dt_mul(dtTape* t, dtTensor* a, dtTensor* b) { return binary(t, DT_OP_MUL, a, b); }
dtTensor* dt_div(dtTape* t, dtTensor* a, dtTensor* b) { return binary(t, DT_OP_DIV, a, b); }
dtTensor* dt_minimum(dtTape* t, dtTensor* a, dtTensor* b) { return binary(t, DT_OP_MIN, a, b); }
dtTensor* dt_maximum(dtTape* t, dtTensor* a, dtTensor* b) { return binary(t, DT_OP_MAX, a, b); }

//---------------------------------------------------------------------------------------------
// affine: y = alpha x + beta (fp[0] = alpha, fp[1] = beta)

static void affine_forward(dtTape* t, dtTensor* y) {
  (void)t;
  const dtTensor* x = y->src[0];
  float al = y->fp[0], be = y->fp[1];
  for (int64_t i = 0; i < y->size; i++) y->val[i] = al * x->val[i] + be;
  if (y->dot)
    for (int64_t i = 0; i < y->size; i++) y->dot[i] = al * x->dot[i];
}

static void affine_backward(dtTape* t, dtTensor* y) {
  dtTensor* x = y->src[0];
  float al = y->fp[0];
  if (!needs_grad(t, x) || !dt_ensure_grad(t, x)) return;
  for (int64_t i = 0; i < y->size; i++) x->grad[i] += al * y->grad[i];
  if (t->second_order)
    for (int64_t i = 0; i < y->size; i++) x->gdot[i] += al * y->gdot[i];
}

dtTensor* dt_affine(dtTape* t, dtTensor* x, float alpha, float beta) {
  if (!check_inputs(t, "affine", x, NULL)) return NULL;
  dtTensor* y = new_node(t, DT_OP_AFFINE, x->ndim, x->shape, x, NULL, NULL);
  if (!y) return NULL;
  y->fp[0] = alpha;
  y->fp[1] = beta;
  return finish(t, y);
}

dtTensor* dt_scale(dtTape* t, dtTensor* x, float alpha) { return dt_affine(t, x, alpha, 0.0f); }

//---------------------------------------------------------------------------------------------
// unary: y = f(x) with f' and f'' (ip[0] = dtUnary)

// value, first and second derivative of f at x (y = f(x) already known when have_y)
static void unary_eval(int f, float x, float* v, float* d1, float* d2) {
  switch (f) {
    case DT_ELU:
      if (x > 0) {
        *v = x, *d1 = 1, *d2 = 0;
      } else {
        float e = expf(x);
        *v = expm1f(x), *d1 = e, *d2 = e;
      }
      return;
    case DT_RELU:
      *v = x > 0 ? x : 0, *d1 = x > 0 ? 1.0f : 0.0f, *d2 = 0;
      return;
    case DT_TANH: {
      float y = tanhf(x);
      *v = y, *d1 = 1 - y * y, *d2 = -2 * y * (1 - y * y);
      return;
    }
    case DT_SIGMOID: {
      float s = x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
      *v = s, *d1 = s * (1 - s), *d2 = s * (1 - s) * (1 - 2 * s);
      return;
    }
    case DT_EXP: {
      float e = expf(x);
      *v = e, *d1 = e, *d2 = e;
      return;
    }
    case DT_LOG:
      *v = logf(x), *d1 = 1.0f / x, *d2 = -1.0f / (x * x);
      return;
    case DT_SOFTPLUS: {
      float s = x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
      *v = x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));
      *d1 = s, *d2 = s * (1 - s);
      return;
    }
    case DT_SQUARE:
      *v = x * x, *d1 = 2 * x, *d2 = 2;
      return;
    case DT_SQRT: {
      float r = sqrtf(x);
      *v = r, *d1 = 0.5f / r, *d2 = -0.25f / (r * x);
      return;
    }
    case DT_RSQRT: {
      float r = 1.0f / sqrtf(x);
      *v = r, *d1 = -0.5f * r / x, *d2 = 0.75f * r / (x * x);
      return;
    }
    case DT_NEG:
      *v = -x, *d1 = -1, *d2 = 0;
      return;
    case DT_MISH: {
      // with e = exp(x), sigma = e / (1 + e) and n = e (e + 2): tanh(softplus(x)) = n / (n + 2),
      // 1 - tanh^2 = 4 (n + 1) / (n + 2)^2; past x = 20 tanh(softplus(x)) is 1 in float
      float e = expf(fminf(x, 20.0f)), n = e * (e + 2.0f), tn = n / (n + 2.0f);
      float dt = 4.0f * (n + 1.0f) / ((n + 2.0f) * (n + 2.0f)), sg = e / (1.0f + e);
      *v = x * tn;
      *d1 = tn + x * dt * sg;
      *d2 = dt * sg * (2.0f - 2.0f * x * tn * sg + x * (1.0f - sg));
      return;
    }
  }
  *v = *d1 = *d2 = NAN;
}

// f' and f'' from the input x and the output y = f(x): no transcendental calls where the
// output already holds them (elu, tanh, sigmoid, exp)
static inline void unary_derivs(int f, float x, float y, float* d1, float* d2) {
  switch (f) {
    case DT_ELU:
      if (x > 0) {
        *d1 = 1, *d2 = 0;
      } else {
        *d1 = *d2 = y + 1.0f;
      }
      return;
    case DT_TANH: *d1 = 1 - y * y, *d2 = -2 * y * (1 - y * y); return;
    case DT_SIGMOID: *d1 = y * (1 - y), *d2 = y * (1 - y) * (1 - 2 * y); return;
    case DT_EXP: *d1 = *d2 = y; return;
    case DT_SQRT: *d1 = 0.5f / y, *d2 = -0.25f / (y * x); return;
    case DT_RSQRT: *d1 = -0.5f * y / x, *d2 = 0.75f * y / (x * x); return;
    default: {
      float v;
      unary_eval(f, x, &v, d1, d2);
    }
  }
}

static void unary_forward(dtTape* t, dtTensor* y) {
  (void)t;
  const float* xv = y->src[0]->val;
  const float* xd = y->src[0]->dot;
  float* yv = y->val;
  int f = y->ip[0];
  // ELU and tanh: value and tangent in one vectorised pass
  if (f == DT_ELU || f == DT_TANH) {
    if (y->dot) {
      (f == DT_ELU ? dt_vec_elu_jvp : dt_vec_tanh_jvp)(xv, xd, yv, y->dot, y->size);
    } else {
      (f == DT_ELU ? dt_vec_elu : dt_vec_tanh)(xv, yv, y->size);
    }
    return;
  }
  // Mish on a first-order tape: one vectorised pass
  if (f == DT_MISH && !y->dot) {
    dt_vec_mish(xv, yv, y->size);
    return;
  }
  for (int64_t i = 0; i < y->size; i++) {
    float d1, d2;
    unary_eval(f, xv[i], &yv[i], &d1, &d2);
  }
  // y' = f'(x) x'
  if (y->dot) {
    for (int64_t i = 0; i < y->size; i++) {
      float d1, d2;
      unary_derivs(f, xv[i], yv[i], &d1, &d2);
      y->dot[i] = d1 * xd[i];
    }
  }
}

// gx += g f'(x);  gx' += g' f'(x) + g f''(x) x'
static void unary_backward(dtTape* t, dtTensor* y) {
  dtTensor* x = y->src[0];
  int f = y->ip[0], so = t->second_order;
  if (!needs_grad(t, x)) return;
  const float *xv = x->val, *yv = y->val, *g = y->grad;
  // ELU and tanh: one vectorised pass that overwrites adjoint buffers allocated here
  if (f == DT_ELU || f == DT_TANH) {
    int over = claim_overwrite(t, x);
    if (over < 0) return;
    if (f == DT_TANH) {
      dt_vec_tanh_backward(yv, x->dot, g, so ? y->gdot : NULL, x->grad, so ? x->gdot : NULL,
                           !over, y->size);
    } else if (so) {
      dt_vec_elu_backward2(xv, yv, x->dot, g, y->gdot, x->grad, x->gdot, !over, y->size);
    } else {
      dt_vec_elu_backward(xv, yv, g, x->grad, !over, y->size);
    }
    return;
  }
  if (f == DT_MISH && !so) {
    int over = claim_overwrite(t, x);
    if (over >= 0) dt_vec_mish_backward(xv, g, x->grad, !over, y->size);
    return;
  }
  if (!dt_ensure_grad(t, x)) return;
  float* xg = x->grad;
  for (int64_t i = 0; i < y->size; i++) {
    float d1, d2;
    unary_derivs(f, xv[i], yv[i], &d1, &d2);
    xg[i] += g[i] * d1;
    if (so) x->gdot[i] += y->gdot[i] * d1 + (x->dot ? g[i] * d2 * x->dot[i] : 0.0f);
  }
}

dtTensor* dt_unary(dtTape* t, dtTensor* x, dtUnary f) {
  if (!check_inputs(t, "unary", x, NULL)) return NULL;
  if ((int)f < 0 || f >= DT_UNARY_COUNT) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_unary: unknown function %d", (int)f);
    return NULL;
  }
  dtTensor* y = new_node(t, DT_OP_UNARY, x->ndim, x->shape, x, NULL, NULL);
  if (!y) return NULL;
  y->ip[0] = f;
  return finish(t, y);
}

dtTensor* dt_elu(dtTape* t, dtTensor* x) { return dt_unary(t, x, DT_ELU); }
dtTensor* dt_relu(dtTape* t, dtTensor* x) { return dt_unary(t, x, DT_RELU); }
dtTensor* dt_tanh(dtTape* t, dtTensor* x) { return dt_unary(t, x, DT_TANH); }
dtTensor* dt_sigmoid(dtTape* t, dtTensor* x) { return dt_unary(t, x, DT_SIGMOID); }
dtTensor* dt_exp(dtTape* t, dtTensor* x) { return dt_unary(t, x, DT_EXP); }
dtTensor* dt_log(dtTape* t, dtTensor* x) { return dt_unary(t, x, DT_LOG); }
dtTensor* dt_softplus(dtTape* t, dtTensor* x) { return dt_unary(t, x, DT_SOFTPLUS); }
dtTensor* dt_square(dtTape* t, dtTensor* x) { return dt_unary(t, x, DT_SQUARE); }

//---------------------------------------------------------------------------------------------
// clamp: y = min(max(x, lo), hi); derivative 1 inside [lo, hi] (PyTorch) or everywhere (ST)

static int clamp_pass(const dtTensor* y, float x) {
  return y->ip[0] || (x >= y->fp[0] && x <= y->fp[1]);
}

static void clamp_forward(dtTape* t, dtTensor* y) {
  (void)t;
  const dtTensor* x = y->src[0];
  float lo = y->fp[0], hi = y->fp[1];
  for (int64_t i = 0; i < y->size; i++) {
    float v = x->val[i];
    y->val[i] = v < lo ? lo : (v > hi ? hi : v);
    if (y->dot) y->dot[i] = clamp_pass(y, v) ? x->dot[i] : 0.0f;
  }
}

static void clamp_backward(dtTape* t, dtTensor* y) {
  dtTensor* x = y->src[0];
  if (!needs_grad(t, x) || !dt_ensure_grad(t, x)) return;
  for (int64_t i = 0; i < y->size; i++) {
    if (!clamp_pass(y, x->val[i])) continue;
    x->grad[i] += y->grad[i];
    if (t->second_order) x->gdot[i] += y->gdot[i];
  }
}

dtTensor* dt_clamp(dtTape* t, dtTensor* x, float lo, float hi, int straight_through) {
  if (!check_inputs(t, "clamp", x, NULL)) return NULL;
  if (!(lo <= hi)) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_clamp: lo %g > hi %g", (double)lo, (double)hi);
    return NULL;
  }
  dtTensor* y = new_node(t, DT_OP_CLAMP, x->ndim, x->shape, x, NULL, NULL);
  if (!y) return NULL;
  y->fp[0] = lo;
  y->fp[1] = hi;
  y->ip[0] = straight_through ? 1 : 0;
  return finish(t, y);
}

//---------------------------------------------------------------------------------------------
// reductions: x viewed as [outer, n, inner] -> y [outer, inner]; ip = {outer, n, inner},
// fp[0] = scale (1 for sum, 1/n for mean)

static void reduce_forward(dtTape* t, dtTensor* y) {
  (void)t;
  const dtTensor* x = y->src[0];
  int outer = y->ip[0], n = y->ip[1], inner = y->ip[2];
  float s = y->fp[0];
  for (int o = 0; o < outer; o++) {
    for (int i = 0; i < inner; i++) {
      double acc = 0, accd = 0;
      for (int k = 0; k < n; k++) {
        int64_t idx = ((int64_t)o * n + k) * inner + i;
        acc += x->val[idx];
        if (y->dot) accd += x->dot[idx];
      }
      y->val[(int64_t)o * inner + i] = (float)(acc * s);
      if (y->dot) y->dot[(int64_t)o * inner + i] = (float)(accd * s);
    }
  }
}

static void reduce_backward(dtTape* t, dtTensor* y) {
  dtTensor* x = y->src[0];
  if (!needs_grad(t, x) || !dt_ensure_grad(t, x)) return;
  int outer = y->ip[0], n = y->ip[1], inner = y->ip[2];
  float s = y->fp[0];
  for (int o = 0; o < outer; o++) {
    for (int k = 0; k < n; k++) {
      for (int i = 0; i < inner; i++) {
        int64_t idx = ((int64_t)o * n + k) * inner + i, j = (int64_t)o * inner + i;
        x->grad[idx] += s * y->grad[j];
        if (t->second_order) x->gdot[idx] += s * y->gdot[j];
      }
    }
  }
}

// split x's shape at axis into outer * n * inner; -1 if the axis is out of range
static int split_axis(const dtTensor* x, int axis, int* outer, int* n, int* inner) {
  if (axis < 0) axis += x->ndim;
  if (axis < 0 || axis >= x->ndim) return -1;
  *outer = 1, *inner = 1;
  for (int i = 0; i < axis; i++) *outer *= x->shape[i];
  for (int i = axis + 1; i < x->ndim; i++) *inner *= x->shape[i];
  *n = x->shape[axis];
  return axis;
}

static dtTensor* reduce(dtTape* t, int op, dtTensor* x, int axis) {
  if (!check_inputs(t, dt_op_name(op), x, NULL)) return NULL;
  int outer, n, inner, shape[DT_MAX_DIMS], ndim = 0;
  if (axis == DT_AXIS_ALL) {
    outer = 1, inner = 1, n = (int)x->size;
  } else {
    int ax = split_axis(x, axis, &outer, &n, &inner);
    if (ax < 0) {
      char lb_x[64], s1[64];
      dt_tape_fail(t, DT_ERR_ARG, "dt_%s: axis %d out of range for %s %s", dt_op_name(op),
                   axis, LABEL(x), dt_shape_str(x, s1, sizeof s1));
      return NULL;
    }
    for (int i = 0; i < x->ndim; i++)
      if (i != ax) shape[ndim++] = x->shape[i];
  }
  dtTensor* y = new_node(t, op, ndim, shape, x, NULL, NULL);
  if (!y) return NULL;
  y->ip[0] = outer, y->ip[1] = n, y->ip[2] = inner;
  y->fp[0] = op == DT_OP_MEAN ? (n ? 1.0f / (float)n : 0.0f) : 1.0f;
  return finish(t, y);
}

dtTensor* dt_sum(dtTape* t, dtTensor* x, int axis) { return reduce(t, DT_OP_SUM, x, axis); }
dtTensor* dt_mean(dtTape* t, dtTensor* x, int axis) { return reduce(t, DT_OP_MEAN, x, axis); }

//---------------------------------------------------------------------------------------------
// concat and slice along an axis: ip = {outer, inner, na, nb} / {outer, inner, n, start}

// copy blocks of a [outer, na, inner] into y [outer, ny, inner] at offset off (or back: dir<0)
static void block_copy(float* y, const float* a, int outer, int inner, int ny, int na, int off,
                       int add_back) {
  for (int o = 0; o < outer; o++) {
    float* yrow = y + ((int64_t)o * ny + off) * inner;
    const float* arow = a + (int64_t)o * na * inner;
    if (!add_back) {
      memcpy(yrow, arow, (size_t)na * (size_t)inner * sizeof(float));
    } else {
      // add_back: a is the destination (grad of the input), y the source
      float* dst = (float*)arow;
      for (int64_t k = 0; k < (int64_t)na * inner; k++) dst[k] += yrow[k];
    }
  }
}

static void concat_forward(dtTape* t, dtTensor* y) {
  (void)t;
  dtTensor *a = y->src[0], *b = y->src[1];
  int outer = y->ip[0], inner = y->ip[1], na = y->ip[2], nb = y->ip[3], ny = na + nb;
  block_copy(y->val, a->val, outer, inner, ny, na, 0, 0);
  block_copy(y->val, b->val, outer, inner, ny, nb, na, 0);
  if (y->dot) {
    memset(y->dot, 0, (size_t)y->size * sizeof(float));
    if (a->dot) block_copy(y->dot, a->dot, outer, inner, ny, na, 0, 0);
    if (b->dot) block_copy(y->dot, b->dot, outer, inner, ny, nb, na, 0);
  }
}

static void concat_backward(dtTape* t, dtTensor* y) {
  dtTensor *a = y->src[0], *b = y->src[1];
  int outer = y->ip[0], inner = y->ip[1], na = y->ip[2], nb = y->ip[3], ny = na + nb;
  if (needs_grad(t, a)) {
    if (!dt_ensure_grad(t, a)) return;
    block_copy(y->grad, a->grad, outer, inner, ny, na, 0, 1);
    if (t->second_order) block_copy(y->gdot, a->gdot, outer, inner, ny, na, 0, 1);
  }
  if (needs_grad(t, b)) {
    if (!dt_ensure_grad(t, b)) return;
    block_copy(y->grad, b->grad, outer, inner, ny, nb, na, 1);
    if (t->second_order) block_copy(y->gdot, b->gdot, outer, inner, ny, nb, na, 1);
  }
}

dtTensor* dt_concat(dtTape* t, dtTensor* a, dtTensor* b, int axis) {
  if (!check_inputs(t, "concat", a, b)) return NULL;
  char lb_a[64], lb_b[64], s1[64], s2[64];
  int outer, na, inner, ax = b ? split_axis(a, axis, &outer, &na, &inner) : -1;
  int ok = ax >= 0 && b->ndim == a->ndim;
  for (int i = 0; ok && i < a->ndim; i++)
    if (i != ax && a->shape[i] != b->shape[i]) ok = 0;
  if (!ok) {
    dt_tape_fail(t, b ? DT_ERR_SHAPE : DT_ERR_ARG, "dt_concat: %s %s and %s %s along axis %d",
                 LABEL(a), dt_shape_str(a, s1, sizeof s1), LABEL(b),
                 dt_shape_str(b, s2, sizeof s2), axis);
    return NULL;
  }
  int shape[DT_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  shape[ax] = a->shape[ax] + b->shape[ax];
  dtTensor* y = new_node(t, DT_OP_CONCAT, a->ndim, shape, a, b, NULL);
  if (!y) return NULL;
  y->ip[0] = outer, y->ip[1] = inner, y->ip[2] = na, y->ip[3] = b->shape[ax];
  return finish(t, y);
}

static void slice_forward(dtTape* t, dtTensor* y) {
  (void)t;
  const dtTensor* x = y->src[0];
  int outer = y->ip[0], inner = y->ip[1], n = y->ip[2], start = y->ip[3];
  int len = (int)(y->size / ((int64_t)outer * inner));
  for (int o = 0; o < outer; o++) {
    size_t bytes = (size_t)len * (size_t)inner * sizeof(float);
    int64_t src = ((int64_t)o * n + start) * inner, dst = (int64_t)o * len * inner;
    memcpy(y->val + dst, x->val + src, bytes);
    if (y->dot) memcpy(y->dot + dst, x->dot + src, bytes);
  }
}

static void slice_backward(dtTape* t, dtTensor* y) {
  dtTensor* x = y->src[0];
  if (!needs_grad(t, x) || !dt_ensure_grad(t, x)) return;
  int outer = y->ip[0], inner = y->ip[1], n = y->ip[2], start = y->ip[3];
  int64_t len = y->size / ((int64_t)outer * inner);
  for (int o = 0; o < outer; o++) {
    int64_t src = ((int64_t)o * n + start) * inner, dst = (int64_t)o * len * inner;
    for (int64_t k = 0; k < len * inner; k++) {
      x->grad[src + k] += y->grad[dst + k];
      if (t->second_order) x->gdot[src + k] += y->gdot[dst + k];
    }
  }
}

dtTensor* dt_slice(dtTape* t, dtTensor* x, int axis, int start, int len) {
  if (!check_inputs(t, "slice", x, NULL)) return NULL;
  int outer, n, inner, ax = split_axis(x, axis, &outer, &n, &inner);
  if (ax < 0 || start < 0 || len < 0 || start + len > n) {
    char lb_x[64], s1[64];
    dt_tape_fail(t, DT_ERR_ARG, "dt_slice: [%d, %d) along axis %d is outside %s %s", start,
                 start + len, axis, LABEL(x), dt_shape_str(x, s1, sizeof s1));
    return NULL;
  }
  int shape[DT_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[ax] = len;
  dtTensor* y = new_node(t, DT_OP_SLICE, x->ndim, shape, x, NULL, NULL);
  if (!y) return NULL;
  y->ip[0] = outer, y->ip[1] = inner, y->ip[2] = n, y->ip[3] = start;
  return finish(t, y);
}

//---------------------------------------------------------------------------------------------
// reshape: same values

static void reshape_forward(dtTape* t, dtTensor* y) {
  (void)t;
  const dtTensor* x = y->src[0];
  memcpy(y->val, x->val, (size_t)y->size * sizeof(float));
  if (y->dot) memcpy(y->dot, x->dot, (size_t)y->size * sizeof(float));
}

static void reshape_backward(dtTape* t, dtTensor* y) {
  dtTensor* x = y->src[0];
  if (!needs_grad(t, x) || !dt_ensure_grad(t, x)) return;
  for (int64_t i = 0; i < y->size; i++) x->grad[i] += y->grad[i];
  if (t->second_order)
    for (int64_t i = 0; i < y->size; i++) x->gdot[i] += y->gdot[i];
}

dtTensor* dt_reshape(dtTape* t, dtTensor* x, int ndim, const int* shape) {
  if (!check_inputs(t, "reshape", x, NULL)) return NULL;
  int64_t size = 1;
  for (int i = 0; i < ndim && ndim <= DT_MAX_DIMS; i++) size *= shape[i] < 0 ? -1 : shape[i];
  if (ndim < 0 || ndim > DT_MAX_DIMS || size != x->size) {
    char lb_x[64], s1[64];
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_reshape: %s %s cannot take a shape of %lld elements",
                 LABEL(x), dt_shape_str(x, s1, sizeof s1), (long long)size);
    return NULL;
  }
  return finish(t, new_node(t, DT_OP_RESHAPE, ndim, shape, x, NULL, NULL));
}

//---------------------------------------------------------------------------------------------
// gather rows: y[i] = x[idx[i]] along axis 0 (aux = copy of idx, ip[0] = row length)

static void gather_forward(dtTape* t, dtTensor* y) {
  (void)t;
  const dtTensor* x = y->src[0];
  const int* idx = y->aux;
  int row = y->ip[0], n = y->shape[0];
  for (int i = 0; i < n; i++) {
    memcpy(y->val + (int64_t)i * row, x->val + (int64_t)idx[i] * row, (size_t)row * sizeof(float));
    if (y->dot)
      memcpy(y->dot + (int64_t)i * row, x->dot + (int64_t)idx[i] * row,
             (size_t)row * sizeof(float));
  }
}

static void gather_backward(dtTape* t, dtTensor* y) {
  dtTensor* x = y->src[0];
  if (!needs_grad(t, x) || !dt_ensure_grad(t, x)) return;
  const int* idx = y->aux;
  int row = y->ip[0], n = y->shape[0];
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < row; k++) {
      x->grad[(int64_t)idx[i] * row + k] += y->grad[(int64_t)i * row + k];
      if (t->second_order) x->gdot[(int64_t)idx[i] * row + k] += y->gdot[(int64_t)i * row + k];
    }
  }
}

dtTensor* dt_gather(dtTape* t, dtTensor* x, const int* idx, int n) {
  if (!check_inputs(t, "gather", x, NULL)) return NULL;
  char lb_x[64], s1[64];
  if (x->ndim < 1 || n < 0 || (n > 0 && !idx)) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_gather: bad input %s %s or index list", LABEL(x),
                 dt_shape_str(x, s1, sizeof s1));
    return NULL;
  }
  for (int i = 0; i < n; i++) {
    if (idx[i] < 0 || idx[i] >= x->shape[0]) {
      dt_tape_fail(t, DT_ERR_ARG, "dt_gather: index %d at position %d is outside %s %s",
                   idx[i], i, LABEL(x), dt_shape_str(x, s1, sizeof s1));
      return NULL;
    }
  }
  int shape[DT_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[0] = n;
  dtTensor* y = new_node(t, DT_OP_GATHER, x->ndim, shape, x, NULL, NULL);
  if (!y) return NULL;
  int* copy = (int*)dt_node_floats(t, n > 0 ? n : 1, 0);  // int and float have the same size
  if (!copy) return NULL;
  memcpy(copy, idx, (size_t)n * sizeof(int));
  y->aux = copy;
  y->ip[0] = (int)(x->size / (x->shape[0] ? x->shape[0] : 1));
  return finish(t, y);
}

//---------------------------------------------------------------------------------------------
// custom scalar function: y_b = f(a_b, x_b); aux holds fn, then ga [B,na] and gx [B,nx]

typedef struct customAux {
  const dtScalarFn* fn;
  float* ga;
  float* gx;
  int B;
} customAux;

static void custom_fail(dtTape* t, const dtScalarFn* fn, const char* what, int code) {
  dt_tape_fail(t, DT_ERR_ARG, "dt_custom: callback %s of '%s' failed with code %d", what,
               fn->name ? fn->name : "user function", code);
}

static void custom_forward(dtTape* t, dtTensor* y) {
  customAux* ax = y->aux;
  const dtScalarFn* fn = ax->fn;
  dtTensor *a = y->src[0], *x = y->src[1];
  int rc = fn->eval(fn->user, ax->B, a->val, x ? x->val : NULL, y->val, ax->ga, ax->gx);
  if (rc) {
    custom_fail(t, fn, "eval", rc);
    return;
  }
  // y' = ga . a' + gx . x'
  if (y->dot) {
    for (int b = 0; b < ax->B; b++) {
      double d = 0;
      if (a->dot)
        for (int i = 0; i < fn->na; i++) d += ax->ga[b * fn->na + i] * a->dot[b * fn->na + i];
      if (x && x->dot && ax->gx)
        for (int i = 0; i < fn->nx; i++) d += ax->gx[b * fn->nx + i] * x->dot[b * fn->nx + i];
      y->dot[b] = (float)d;
    }
  }
}

// ga += g f_a;  ga' += g' f_a + g (Haa a' + Hax x');  same for x
static void custom_backward(dtTape* t, dtTensor* y) {
  customAux* ax = y->aux;
  const dtScalarFn* fn = ax->fn;
  dtTensor *a = y->src[0], *x = y->src[1];
  int B = ax->B, na = fn->na, nx = fn->nx;
  int want_a = needs_grad(t, a), want_x = x && needs_grad(t, x);
  if (want_a && !dt_ensure_grad(t, a)) return;
  if (want_x && !dt_ensure_grad(t, x)) return;
  for (int b = 0; b < B; b++) {
    if (want_a)
      for (int i = 0; i < na; i++) a->grad[b * na + i] += y->grad[b] * ax->ga[b * na + i];
    if (want_x)
      for (int i = 0; i < nx; i++) x->grad[b * nx + i] += y->grad[b] * ax->gx[b * nx + i];
  }
  if (!t->second_order) return;
  float* ha = NULL;
  float* hx = NULL;
  int tangents = a->dot || (x && x->dot);
  if (tangents) {
    ha = dt_node_floats(t, (int64_t)B * na, 1);
    hx = nx ? dt_node_floats(t, (int64_t)B * nx, 1) : NULL;
    float* da = a->dot ? a->dot : dt_node_floats(t, (int64_t)B * na, 1);
    if (!ha || !da || (nx && !hx)) return;
    int rc = fn->hvp(fn->user, B, a->val, x ? x->val : NULL, da, x ? x->dot : NULL, ha, hx);
    if (rc) {
      custom_fail(t, fn, "hvp", rc);
      return;
    }
  }
  for (int b = 0; b < B; b++) {
    if (want_a)
      for (int i = 0; i < na; i++)
        a->gdot[b * na + i] += y->gdot[b] * ax->ga[b * na + i] + (ha ? y->grad[b] * ha[b * na + i] : 0);
    if (want_x)
      for (int i = 0; i < nx; i++)
        x->gdot[b * nx + i] += y->gdot[b] * ax->gx[b * nx + i] + (hx ? y->grad[b] * hx[b * nx + i] : 0);
  }
}

dtTensor* dt_custom(dtTape* t, dtTensor* a, dtTensor* x, const dtScalarFn* fn) {
  if (!check_inputs(t, "custom", a, NULL)) return NULL;
  char lb_a[64], lb_x[64], s1[64], s2[64];
  if (!fn || !fn->eval || !fn->hvp || fn->na <= 0 || fn->nx < 0) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_custom: function description is NULL or incomplete");
    return NULL;
  }
  int B = a->ndim >= 1 ? a->shape[0] : 1;
  int ok = a->ndim == 2 && a->shape[1] == fn->na;
  if (fn->nx) ok = ok && x && x->ndim == 2 && x->shape[0] == B && x->shape[1] == fn->nx;
  if (!ok) {
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_custom: '%s' takes a [B, %d] and x [B, %d]; got %s %s and %s %s",
                 fn->name ? fn->name : "user function", fn->na, fn->nx, LABEL(a),
                 dt_shape_str(a, s1, sizeof s1), LABEL(x), dt_shape_str(x, s2, sizeof s2));
    return NULL;
  }
  int shape[1] = {B};
  dtTensor* y = new_node(t, DT_OP_CUSTOM, 1, shape, a, fn->nx ? x : NULL, NULL);
  if (!y) return NULL;
  customAux* ax = (customAux*)dt_node_floats(t, (int64_t)((sizeof(customAux) + 3) / 4), 1);
  if (!ax) return NULL;
  ax->fn = fn;
  ax->B = B;
  ax->ga = dt_node_floats(t, (int64_t)B * fn->na, 1);
  ax->gx = fn->nx ? dt_node_floats(t, (int64_t)B * fn->nx, 1) : NULL;
  if (!ax->ga || (fn->nx && !ax->gx)) return NULL;
  y->aux = ax;
  return finish(t, y);
}

//---------------------------------------------------------------------------------------------
// fused layer normalisation over the last axis: h = (x - mu) r, r = (var + eps)^-1/2 per row,
// then y = h * gain + bias when they are given (src[1], src[2]; they carry no tangent).
// fp[0] = eps, ip[0] = row length n; aux = r per row, then (with gain/bias) h and its tangent.
// The normalisation's Jacobian is symmetric,
//   J = r (I - 11'/n - h h'/n),  so  J v = r (v - mean(v) - h mean(h v)),
// and along a tangent x' (with h' = J x' and m = mean(h x')) the adjoint tangent of J u is
//   J u' - r m (J u) - (r/n) (h' (h.u) + h (h'.u)),   where u = g * gain is h's adjoint.

// the row buffers of a node: h and h' (the output itself when there is no gain or bias)
static float* lnorm_h(dtTensor* y) {
  return y->ip[1] ? (float*)y->aux + y->ip[2] : y->val;
}
static float* lnorm_hdot(dtTensor* y) {
  return y->ip[1] ? (float*)y->aux + y->ip[2] + y->size : y->dot;
}

// the row kernels (two-pass mean and centred variance, J v, J's change) are in vecmath.c
static void lnorm_forward(dtTape* t, dtTensor* y) {
  (void)t;
  const dtTensor *x = y->src[0], *gain = y->src[1], *bias = y->src[2];
  int n = y->ip[0];
  int64_t rows = n ? y->size / n : 0;
  float *rs = y->aux, *h = lnorm_h(y), *hd = lnorm_hdot(y);
  const float *gv = gain ? gain->val : NULL, *bv = bias ? bias->val : NULL;
  for (int64_t i = 0; i < rows; i++) {
    // h, and y = h gain + bias when they are given
    float* hr = h + i * n;
    float r = dt_vec_lnorm_row(x->val + i * n, hr, gv, bv, y->ip[1] ? y->val + i * n : NULL, n,
                               y->fp[0]);
    rs[i] = r;
    if (!x->dot) continue;
    // h' = J x', y' = h' gain
    float* hdr = hd + i * n;
    dt_vec_lnorm_j(hr, x->dot + i * n, r, n, hdr, 0);
    if (!y->ip[1]) continue;
    if (gv) {
      dt_vec_mul(y->dot + i * n, hdr, gv, n);
    } else {
      memcpy(y->dot + i * n, hdr, (size_t)n * sizeof(float));
    }
  }
}

// gain and bias: g_gain += sum_rows g h, g_bias += sum_rows g; tangents g' h + g h' and g'
static void lnorm_backward_affine(dtTape* t, dtTensor* y) {
  dtTensor *gain = y->src[1], *bias = y->src[2];
  int n = y->ip[0], so = t->second_order;
  int64_t rows = n ? y->size / n : 0;
  const float *h = lnorm_h(y), *hd = lnorm_hdot(y), *xd = y->src[0]->dot;
  if (gain && needs_grad(t, gain) && dt_ensure_grad(t, gain)) {
    for (int64_t i = 0; i < rows; i++) {
      dt_vec_fma(gain->grad, y->grad + i * n, h + i * n, n);
      if (so) {
        dt_vec_fma(gain->gdot, y->gdot + i * n, h + i * n, n);
        if (xd) dt_vec_fma(gain->gdot, y->grad + i * n, hd + i * n, n);
      }
    }
  }
  if (bias && needs_grad(t, bias) && dt_ensure_grad(t, bias)) {
    for (int64_t i = 0; i < rows; i++) {
      dt_vec_add(bias->grad, y->grad + i * n, n);
      if (so) dt_vec_add(bias->gdot, y->gdot + i * n, n);
    }
  }
}

static void lnorm_backward(dtTape* t, dtTensor* y) {
  dtTensor *x = y->src[0], *gain = y->src[1];
  if (y->ip[1]) lnorm_backward_affine(t, y);
  if (t->status || !needs_grad(t, x)) return;
  int over = claim_overwrite(t, x);
  if (over < 0) return;
  int n = y->ip[0];
  int64_t rows = n ? y->size / n : 0;
  const float *rs = y->aux, *h = lnorm_h(y), *hd = lnorm_hdot(y);
  // h's adjoint u = g gain (and its tangent u' = g' gain), in two row buffers after the rest
  float* ub = (float*)y->aux + y->ip[3];
  float* udb = ub + n;
  for (int64_t i = 0; i < rows; i++) {
    const float *hr = h + i * n, *g = y->grad + i * n, *gd = t->second_order ? y->gdot + i * n : NULL;
    const float *u = g, *ud = gd;
    if (gain) {
      dt_vec_mul(ub, g, gain->val, n);
      u = ub;
      if (gd) {
        dt_vec_mul(udb, gd, gain->val, n);
        ud = udb;
      }
    }
    float r = rs[i];
    dt_vec_lnorm_j(hr, u, r, n, x->grad + i * n, !over);
    if (!gd) continue;
    float* gxd = x->gdot + i * n;
    dt_vec_lnorm_j(hr, ud, r, n, gxd, !over);
    // the terms from J's own change along x'
    if (x->dot) dt_vec_lnorm_j2(hr, hd + i * n, x->dot + i * n, u, r, n, gxd);
  }
}

// the op: normalisation, with gain and bias folded in when given
static dtTensor* lnorm(dtTape* t, dtTensor* x, dtTensor* gain, dtTensor* bias, float eps) {
  int n = x->shape[x->ndim - 1];
  dtTensor* y = new_node(t, DT_OP_LNORM, x->ndim, x->shape, x, gain, bias);
  if (!y) return NULL;
  int64_t rows = y->size / n;
  int affine = gain || bias;
  y->ip[0] = n;
  y->ip[1] = affine;
  y->ip[2] = (int)rows + 1;                                   // h starts after r
  y->ip[3] = affine ? y->ip[2] + 2 * (int)y->size : y->ip[2];  // u, u' after h, h'
  y->fp[0] = eps;
  y->aux = dt_node_floats(t, y->ip[3] + 2 * (int64_t)n, 0);
  if (!y->aux) return NULL;
  return finish(t, y);
}

static int lnorm_check(dtTape* t, const char* op, dtTensor* x, float eps) {
  if (!check_inputs(t, op, x, NULL)) return 0;
  if (x->ndim < 1 || x->shape[x->ndim - 1] < 1 || !(eps >= 0)) {
    char lb_x[64], s1[64];
    dt_tape_fail(t, DT_ERR_ARG, "dt_%s: %s %s needs a non-empty last axis and eps >= 0", op,
                 LABEL(x), dt_shape_str(x, s1, sizeof s1));
    return 0;
  }
  return 1;
}

dtTensor* dt_normalize(dtTape* t, dtTensor* x, float eps) {
  return lnorm_check(t, "normalize", x, eps) ? lnorm(t, x, NULL, NULL, eps) : NULL;
}

// gain or bias of the right shape without a tangent can be folded into the fused op
static int foldable(const dtTensor* p, int n) {
  return !p || (p->ndim == 1 && p->shape[0] == n && !p->dot);
}

//---------------------------------------------------------------------------------------------
// composites (their derivatives come from the primitives above)

dtTensor* dt_layernorm(dtTape* t, dtTensor* x, dtTensor* gain, dtTensor* bias, float eps) {
  if (!lnorm_check(t, "layernorm", x, eps)) return NULL;
  // one fused op when gain and bias are plain per-feature vectors (parameters); otherwise the
  // normalisation followed by broadcast ops, which also handle tangents on gain and bias
  int n = x->shape[x->ndim - 1];
  if (foldable(gain, n) && foldable(bias, n)) return lnorm(t, x, gain, bias, eps);
  dtTensor* y = dt_normalize(t, x, eps);
  if (gain) y = dt_mul(t, y, gain);
  if (bias) y = dt_add(t, y, bias);
  return y;
}

// gain or bias of group norm: [C], viewed as [C, 1, ..] so that it broadcasts over the
// positions of x [B, C, ..] (BC_MID; BC_ROW for x [B, C])
static dtTensor* channel_view(dtTape* t, dtTensor* p, const dtTensor* x) {
  int shape[DT_MAX_DIMS] = {x->shape[1], 1, 1, 1};
  return dt_reshape(t, p, x->ndim - 1, shape);
}

static int groupnorm_check(dtTape* t, dtTensor* x, int groups, dtTensor* gain, dtTensor* bias,
                           float eps) {
  if (!check_inputs(t, "groupnorm", x, NULL)) return 0;
  char lb_x[64], s1[64];
  int C = x->ndim >= 2 ? x->shape[1] : 0;
  if (x->ndim < 2 || groups < 1 || C % groups != 0 || !(eps >= 0)) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_groupnorm: %s %s (want [B, C, ..]) cannot be split into %d "
                 "groups of channels (or eps %g < 0)", LABEL(x), dt_shape_str(x, s1, sizeof s1),
                 groups, (double)eps);
    return 0;
  }
  dtTensor* ps[2] = {gain, bias};
  for (int i = 0; i < 2; i++) {
    if (!ps[i] || (ps[i]->ndim == 1 && ps[i]->shape[0] == C)) continue;
    char lb_p[64], s2[64];
    dtTensor* p = ps[i];
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_groupnorm: %s %s %s does not fit %d channels of %s",
                 i ? "bias" : "gain", LABEL(p), dt_shape_str(p, s2, sizeof s2), C, LABEL(x));
    return 0;
  }
  return 1;
}

dtTensor* dt_groupnorm(dtTape* t, dtTensor* x, int groups, dtTensor* gain, dtTensor* bias,
                       float eps) {
  if (!groupnorm_check(t, x, groups, gain, bias, eps)) return NULL;
  int B = x->shape[0];
  int rows[3] = {B, groups, (int)(x->size / ((int64_t)B * groups))};
  dtTensor* y = dt_reshape(t, x, 3, rows);
  y = dt_reshape(t, dt_normalize(t, y, eps), x->ndim, x->shape);
  if (gain) y = dt_mul(t, y, channel_view(t, gain, x));
  if (bias) y = dt_add(t, y, channel_view(t, bias, x));
  return y;
}

dtTensor* dt_mish(dtTape* t, dtTensor* x) { return dt_unary(t, x, DT_MISH); }

dtTensor* dt_mse(dtTape* t, dtTensor* a, dtTensor* b) {
  return dt_mean(t, dt_square(t, dt_sub(t, a, b)), DT_AXIS_ALL);
}

dtTensor* dt_logsumexp(dtTape* t, dtTensor* x) {
  if (!check_inputs(t, "logsumexp", x, NULL)) return NULL;
  if (x->ndim != 2) {
    char sh[64];
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_logsumexp: x %s must be 2-D [rows, K]", dt_shape_str(x, sh, sizeof sh));
    return NULL;
  }
  int B = x->shape[0], K = x->shape[1], col[2] = {B, 1}, row[1] = {B};
  float* m = dt_tape_floats(t, B);
  if (!m) return NULL;
  for (int b = 0; b < B; b++) {
    float mx = x->val[(size_t)b * K];
    for (int k = 1; k < K; k++) mx = fmaxf(mx, x->val[(size_t)b * K + k]);
    m[b] = mx;
  }
  // the maxima as a column [B, 1]: a [B] vector would broadcast as a row when K == B
  dtTensor* mt = dt_input(t, 2, col, m, "row max");
  return dt_add(t, dt_log(t, dt_sum(t, dt_exp(t, dt_sub(t, x, mt)), 1)), dt_reshape(t, mt, 1, row));
}

//---------------------------------------------------------------------------------------------
// the table

static void leaf_forward(dtTape* t, dtTensor* y) { (void)t, (void)y; }
static void leaf_backward(dtTape* t, dtTensor* y) { (void)t, (void)y; }

const dtOpDef dt_op_table[DT_OP_COUNT] = {
    [DT_OP_LEAF] = {"leaf", leaf_forward, leaf_backward},
    [DT_OP_LINEAR] = {"linear", linear_forward, linear_backward},
    [DT_OP_MATMUL] = {"matmul", matmul_forward, matmul_backward},
    [DT_OP_ADD] = {"add", addsub_forward, addsub_backward},
    [DT_OP_SUB] = {"sub", addsub_forward, addsub_backward},
    [DT_OP_MUL] = {"mul", mul_forward, mul_backward},
    [DT_OP_DIV] = {"div", div_forward, div_backward},
    [DT_OP_MIN] = {"minimum", minmax_forward, minmax_backward},
    [DT_OP_MAX] = {"maximum", minmax_forward, minmax_backward},
    [DT_OP_AFFINE] = {"affine", affine_forward, affine_backward},
    [DT_OP_UNARY] = {"unary", unary_forward, unary_backward},
    [DT_OP_CLAMP] = {"clamp", clamp_forward, clamp_backward},
    [DT_OP_SUM] = {"sum", reduce_forward, reduce_backward},
    [DT_OP_MEAN] = {"mean", reduce_forward, reduce_backward},
    [DT_OP_CONCAT] = {"concat", concat_forward, concat_backward},
    [DT_OP_SLICE] = {"slice", slice_forward, slice_backward},
    [DT_OP_RESHAPE] = {"reshape", reshape_forward, reshape_backward},
    [DT_OP_GATHER] = {"gather", gather_forward, gather_backward},
    [DT_OP_CUSTOM] = {"custom", custom_forward, custom_backward},
    [DT_OP_LNORM] = {"normalize", lnorm_forward, lnorm_backward},
    [DT_OP_CONV2D] = {"conv2d", dt_conv2d_forward, dt_conv2d_backward},
    [DT_OP_CONV1D] = {"conv1d", dt_conv1d_forward, dt_conv1d_backward},
    [DT_OP_CONVT1D] = {"conv_transpose1d", dt_convt1d_forward, dt_convt1d_backward},
};

const char* dt_op_name(int op) {
  return op >= 0 && op < DT_OP_COUNT ? dt_op_table[op].name : "unknown";
}

const char* dt_unary_name(int f) {
  static const char* names[DT_UNARY_COUNT] = {"elu",      "relu",   "tanh", "sigmoid",
                                              "exp",      "log",    "softplus", "square",
                                              "sqrt",     "rsqrt",  "neg", "mish"};
  return f >= 0 && f < DT_UNARY_COUNT ? names[f] : "unknown";
}
