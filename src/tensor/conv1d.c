// SPDX-License-Identifier: MIT
// 1-D convolution and 1-D transposed convolution on the tape, as torch.nn.Conv1d and
// torch.nn.ConvTranspose1d (stride, zero padding on both ends, optional bias; no dilation,
// groups or output padding).
//
// Both ops relate a "long" sequence [C_l, L_l] and a "short" one [C_s, L_s] through one weight
// W [C_s, C_l, k], viewed as a matrix [C_s, C_l k]:
//   conv:            short = W col(long) + b        (long = x, short = y)
//   transposed conv: long  = col2im(W^T short) + b  (short = x, long = y)
// where col(long) [C_l k, L_s] is the zero-padded im2col matrix, col[(c, i), o] =
// long[c, o s + i - pad] (0 outside), and col2im its adjoint (a scatter-add). A transposed
// convolution is the adjoint of a convolution, so the two ops share three primitives:
//   down(W, long)      = W col(long)                 [C_s, L_s]
//   up(W, short)       = col2im(W^T short)           [C_l, L_l]
//   wgrad(short, long) = short col(long)^T           [C_s, C_l k]
// and, both being bilinear in (x, W), their derivative rules mirror linear's (ops.c notation):
//   conv:   y' = down(W, x') + down(W', x) + b'
//           gx += up(W, g)         gx' += up(W, g') + up(W', g)
//           gW += wgrad(g, x)      gW' += wgrad(g', x) + wgrad(g, x')
//   convT:  y' = up(W, x') + up(W', x) + b'
//           gx += down(W, g)       gx' += down(W, g') + down(W', g)
//           gW += wgrad(x, g)      gW' += wgrad(x, g') + wgrad(x', g)
//   both:   gb += sum over positions of g (and of g' for gb')
// The matrix products run over a chunk of samples at once (columns (sample, position)), so a
// short time axis still gives GEMMs of useful width. The chunk's scratch comes from the tape
// arena and is released when the op is done: the arena keeps only the op's output.
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor_internal.h"

// floats of one scratch matrix per chunk (col or the short-side matrix), at most
#define CHUNK_FLOATS (1 << 20)

typedef struct c1Geom {
  int B;
  int Cl, Ll;  // long side: the convolution's input, the transposed convolution's output
  int Cs, Ls;  // short side: the convolution's output, the transposed convolution's input
  int k, s, p;
  int K;       // C_l k, rows of col
  int nb;      // samples per chunk
} c1Geom;

static c1Geom geom(const dtTensor* y) {
  const dtTensor *x = y->src[0], *w = y->src[1];
  const dtTensor *lng = y->op == DT_OP_CONV1D ? x : y, *sht = y->op == DT_OP_CONV1D ? y : x;
  c1Geom g;
  g.B = x->shape[0];
  g.Cl = lng->shape[1], g.Ll = lng->shape[2];
  g.Cs = sht->shape[1], g.Ls = sht->shape[2];
  g.k = w->shape[2], g.s = y->ip[0], g.p = y->ip[1];
  g.K = g.Cl * g.k;
  int per = g.K > g.Cs ? g.K * g.Ls : g.Cs * g.Ls;
  g.nb = CHUNK_FLOATS / (per > 0 ? per : 1);
  g.nb = g.nb < 1 ? 1 : g.nb > g.B ? g.B : g.nb;
  return g;
}

// the outputs o whose tap i reads inside the long side, o s + i - pad in [0, L_l): [*lo, *hi)
static void tap_range(const c1Geom* g, int i, int* lo, int* hi) {
  int first = g->p - i, last = g->Ll - 1 + g->p - i;  // o s must lie in [first, last]
  *lo = first <= 0 ? 0 : (first + g->s - 1) / g->s;
  *hi = last < 0 ? 0 : last / g->s + 1;
  if (*hi > g->Ls) *hi = g->Ls;
  if (*lo > *hi) *lo = *hi;
}

// col [K, nb L_s] of samples n0.. of the long side (columns ordered (sample, position))
static void im2col(const c1Geom* g, const float* lng, int n0, int nb, float* col) {
  int N = nb * g->Ls;
  for (int i = 0; i < g->k; i++) {
    int lo, hi, off = i - g->p;
    tap_range(g, i, &lo, &hi);
    for (int c = 0; c < g->Cl; c++) {
      float* row = col + (size_t)(c * g->k + i) * N;
      for (int m = 0; m < nb; m++) {
        const float* src = lng + ((size_t)(n0 + m) * g->Cl + c) * g->Ll;
        float* r = row + (size_t)m * g->Ls;
        for (int o = 0; o < lo; o++) r[o] = 0.0f;
        if (g->s == 1) {  // rows are short (the U-Net's time axis): a loop, not memcpy
          for (int o = lo; o < hi; o++) r[o] = src[o + off];
        } else {
          for (int o = lo; o < hi; o++) r[o] = src[o * g->s + off];
        }
        for (int o = hi; o < g->Ls; o++) r[o] = 0.0f;
      }
    }
  }
}

// the adjoint of im2col: the long side of samples n0.. += scatter of col [K, nb L_s]
static void col2im_add(const c1Geom* g, const float* col, int n0, int nb, float* lng) {
  int N = nb * g->Ls;
  for (int i = 0; i < g->k; i++) {
    int lo, hi, off = i - g->p;
    tap_range(g, i, &lo, &hi);
    for (int c = 0; c < g->Cl; c++) {
      const float* row = col + (size_t)(c * g->k + i) * N;
      for (int m = 0; m < nb; m++) {
        float* dst = lng + ((size_t)(n0 + m) * g->Cl + c) * g->Ll;
        const float* r = row + (size_t)m * g->Ls;
        for (int o = lo; o < hi; o++) dst[o * g->s + off] += r[o];
      }
    }
  }
}

// mat [C_s, nb L_s] from the short side [B, C_s, L_s] of samples n0..
static void gather_short(const c1Geom* g, const float* sht, int n0, int nb, float* mat) {
  int N = nb * g->Ls;
  for (int m = 0; m < nb; m++)
    for (int c = 0; c < g->Cs; c++)
      memcpy(mat + (size_t)c * N + (size_t)m * g->Ls, sht + ((size_t)(n0 + m) * g->Cs + c) * g->Ls,
             (size_t)g->Ls * sizeof(float));
}

// the short side of samples n0.. = (or +=) mat [C_s, nb L_s]
static void scatter_short(const c1Geom* g, const float* mat, int n0, int nb, float* sht, int add) {
  int N = nb * g->Ls;
  for (int m = 0; m < nb; m++)
    for (int c = 0; c < g->Cs; c++) {
      const float* src = mat + (size_t)c * N + (size_t)m * g->Ls;
      float* dst = sht + ((size_t)(n0 + m) * g->Cs + c) * g->Ls;
      if (add) {
        for (int o = 0; o < g->Ls; o++) dst[o] += src[o];
      } else {
        memcpy(dst, src, (size_t)g->Ls * sizeof(float));
      }
    }
}

// the chunk's scratch: col [K, N] and mat [C_s, N]
typedef struct c1Scratch {
  float *col, *mat;
} c1Scratch;

// mat (beta: += ) W col(long) for samples n0..
static void down(const c1Geom* g, const float* w, const float* lng, int n0, int nb,
                 c1Scratch* s, float beta) {
  int N = nb * g->Ls;
  im2col(g, lng, n0, nb, s->col);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->Cs, N, g->K, 1.0f, w, g->K, s->col,
              N, beta, s->mat, N);
}

// col (beta: +=) W^T short for samples n0.. (col2im is left to the caller)
static void up(const c1Geom* g, const float* w, const float* sht, int n0, int nb, c1Scratch* s,
               float beta) {
  int N = nb * g->Ls;
  gather_short(g, sht, n0, nb, s->mat);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g->K, N, g->Cs, 1.0f, w, g->K, s->mat, N,
              beta, s->col, N);
}

// gW [C_s, K] += short col(long)^T over samples n0..
static void wgrad(const c1Geom* g, float* gw, const float* sht, const float* lng, int n0, int nb,
                  c1Scratch* s) {
  int N = nb * g->Ls;
  gather_short(g, sht, n0, nb, s->mat);
  im2col(g, lng, n0, nb, s->col);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->Cs, g->K, N, 1.0f, s->mat, N, s->col,
              N, 1.0f, gw, g->K);
}

// y[b, o, :] += bias[o] for every sample (C channels of length L)
static void add_bias(float* y, const float* bias, int B, int C, int L) {
  for (int n = 0; n < B; n++)
    for (int o = 0; o < C; o++) {
      float* r = y + ((size_t)n * C + o) * L;
      for (int q = 0; q < L; q++) r[q] += bias[o];
    }
}

// gb[o] += sum over samples and positions of g[b, o, :]
static void bias_grad(float* gb, const float* g, int B, int C, int L) {
  for (int o = 0; o < C; o++) {
    double acc = 0;
    for (int n = 0; n < B; n++) {
      const float* r = g + ((size_t)n * C + o) * L;
      for (int q = 0; q < L; q++) acc += r[q];
    }
    gb[o] += (float)acc;
  }
}

static int needs(const dtTape* t, const dtTensor* x) {
  if (!x || !(x->flags & DT_REQUIRES_GRAD)) return 0;
  return !((x->flags & DT_PARAM) && t->no_param_grads);
}

// the scratch of one op call (released by the caller with the mark)
static int scratch(dtTape* t, const c1Geom* g, c1Scratch* s) {
  s->col = dt_node_floats(t, (int64_t)g->K * g->nb * g->Ls, 0);
  s->mat = dt_node_floats(t, (int64_t)g->Cs * g->nb * g->Ls, 0);
  return s->col && s->mat;
}

//---------------------------------------------------------------------------------------------
// convolution: x long, y short

void dt_conv1d_forward(dtTape* t, dtTensor* y) {
  dtTensor *x = y->src[0], *w = y->src[1], *b = y->src[2];
  c1Geom g = geom(y);
  size_t mark = dt_arena_mark(&t->arena);
  c1Scratch s;
  if (!scratch(t, &g, &s)) return;
  for (int n0 = 0; n0 < g.B; n0 += g.nb) {
    int nb = g.B - n0 < g.nb ? g.B - n0 : g.nb;
    down(&g, w->val, x->val, n0, nb, &s, 0.0f);
    scatter_short(&g, s.mat, n0, nb, y->val, 0);
    if (!y->dot) continue;
    // y' = down(W, x') + down(W', x)
    if (x->dot) down(&g, w->val, x->dot, n0, nb, &s, 0.0f);
    if (w->dot) down(&g, w->dot, x->val, n0, nb, &s, x->dot ? 1.0f : 0.0f);
    if (!x->dot && !w->dot) memset(s.mat, 0, (size_t)g.Cs * nb * g.Ls * sizeof(float));
    scatter_short(&g, s.mat, n0, nb, y->dot, 0);
  }
  if (b) add_bias(y->val, b->val, g.B, g.Cs, g.Ls);
  if (y->dot && b && b->dot) add_bias(y->dot, b->dot, g.B, g.Cs, g.Ls);
  dt_arena_release(&t->arena, mark);
}

void dt_conv1d_backward(dtTape* t, dtTensor* y) {
  dtTensor *x = y->src[0], *w = y->src[1], *b = y->src[2];
  c1Geom g = geom(y);
  int so = t->second_order, gx = needs(t, x), gw = needs(t, w), gb = needs(t, b);
  // the inputs' adjoints first: the scratch after them is released at the end
  if ((gx && !dt_ensure_grad(t, x)) || (gw && !dt_ensure_grad(t, w)) ||
      (gb && !dt_ensure_grad(t, b)))
    return;
  size_t mark = dt_arena_mark(&t->arena);
  c1Scratch s;
  if (!scratch(t, &g, &s)) return;
  for (int n0 = 0; n0 < g.B; n0 += g.nb) {
    int nb = g.B - n0 < g.nb ? g.B - n0 : g.nb;
    if (gx) {
      up(&g, w->val, y->grad, n0, nb, &s, 0.0f);
      col2im_add(&g, s.col, n0, nb, x->grad);
      if (so) {
        up(&g, w->val, y->gdot, n0, nb, &s, 0.0f);
        if (w->dot) up(&g, w->dot, y->grad, n0, nb, &s, 1.0f);
        col2im_add(&g, s.col, n0, nb, x->gdot);
      }
    }
    if (gw) {
      wgrad(&g, w->grad, y->grad, x->val, n0, nb, &s);
      if (so) {
        wgrad(&g, w->gdot, y->gdot, x->val, n0, nb, &s);
        if (x->dot) wgrad(&g, w->gdot, y->grad, x->dot, n0, nb, &s);
      }
    }
  }
  if (gb) bias_grad(b->grad, y->grad, g.B, g.Cs, g.Ls);
  if (gb && so) bias_grad(b->gdot, y->gdot, g.B, g.Cs, g.Ls);
  dt_arena_release(&t->arena, mark);
}

//---------------------------------------------------------------------------------------------
// transposed convolution: x short, y long

void dt_convt1d_forward(dtTape* t, dtTensor* y) {
  dtTensor *x = y->src[0], *w = y->src[1], *b = y->src[2];
  c1Geom g = geom(y);
  size_t mark = dt_arena_mark(&t->arena);
  c1Scratch s;
  if (!scratch(t, &g, &s)) return;
  memset(y->val, 0, (size_t)y->size * sizeof(float));
  if (y->dot) memset(y->dot, 0, (size_t)y->size * sizeof(float));
  for (int n0 = 0; n0 < g.B; n0 += g.nb) {
    int nb = g.B - n0 < g.nb ? g.B - n0 : g.nb;
    up(&g, w->val, x->val, n0, nb, &s, 0.0f);
    col2im_add(&g, s.col, n0, nb, y->val);
    if (!y->dot || (!x->dot && !w->dot)) continue;
    // y' = up(W, x') + up(W', x)
    if (x->dot) up(&g, w->val, x->dot, n0, nb, &s, 0.0f);
    if (w->dot) up(&g, w->dot, x->val, n0, nb, &s, x->dot ? 1.0f : 0.0f);
    col2im_add(&g, s.col, n0, nb, y->dot);
  }
  if (b) add_bias(y->val, b->val, g.B, g.Cl, g.Ll);
  if (y->dot && b && b->dot) add_bias(y->dot, b->dot, g.B, g.Cl, g.Ll);
  dt_arena_release(&t->arena, mark);
}

void dt_convt1d_backward(dtTape* t, dtTensor* y) {
  dtTensor *x = y->src[0], *w = y->src[1], *b = y->src[2];
  c1Geom g = geom(y);
  int so = t->second_order, gx = needs(t, x), gw = needs(t, w), gb = needs(t, b);
  if ((gx && !dt_ensure_grad(t, x)) || (gw && !dt_ensure_grad(t, w)) ||
      (gb && !dt_ensure_grad(t, b)))
    return;
  size_t mark = dt_arena_mark(&t->arena);
  c1Scratch s;
  if (!scratch(t, &g, &s)) return;
  for (int n0 = 0; n0 < g.B; n0 += g.nb) {
    int nb = g.B - n0 < g.nb ? g.B - n0 : g.nb;
    if (gx) {
      down(&g, w->val, y->grad, n0, nb, &s, 0.0f);
      scatter_short(&g, s.mat, n0, nb, x->grad, 1);
      if (so) {
        down(&g, w->val, y->gdot, n0, nb, &s, 0.0f);
        if (w->dot) down(&g, w->dot, y->grad, n0, nb, &s, 1.0f);
        scatter_short(&g, s.mat, n0, nb, x->gdot, 1);
      }
    }
    if (gw) {
      wgrad(&g, w->grad, x->val, y->grad, n0, nb, &s);
      if (so) {
        wgrad(&g, w->gdot, x->val, y->gdot, n0, nb, &s);
        if (x->dot) wgrad(&g, w->gdot, x->dot, y->grad, n0, nb, &s);
      }
    }
  }
  if (gb) bias_grad(b->grad, y->grad, g.B, g.Cl, g.Ll);
  if (gb && so) bias_grad(b->gdot, y->gdot, g.B, g.Cl, g.Ll);
  dt_arena_release(&t->arena, mark);
}

//---------------------------------------------------------------------------------------------
// the public entry points

int dt_conv1d_out_size(int in, int k, int stride, int pad) {
  if (in < 1 || k < 1 || stride < 1 || pad < 0 || in + 2 * pad < k) return 0;
  return (in + 2 * pad - k) / stride + 1;
}

int dt_conv_transpose1d_out_size(int in, int k, int stride, int pad) {
  if (in < 1 || k < 1 || stride < 1 || pad < 0) return 0;
  int out = (in - 1) * stride - 2 * pad + k;
  return out > 0 ? out : 0;
}

// shape checks shared by both ops; the weight's channel axis that meets x is wax (1: conv,
// 0: transposed); 0 after recording an error
static int check_conv1d(dtTape* t, const char* op, dtTensor* x, dtTensor* W, dtTensor* b,
                        int stride, int pad, int wax) {
  char l1[64], l2[64], s1[64], s2[64];
  if (!t) {
    dt_error(DT_ERR_ARG, "dt_%s: tape is NULL", op);
    return 0;
  }
  if (t->status != DT_OK) return 0;
  if (!x || !W) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_%s: %s is NULL", op, x ? "weight" : "input");
    return 0;
  }
  if (stride < 1 || pad < 0) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_%s: stride %d, padding %d for input %s (want stride >= 1, "
                 "padding >= 0)", op, stride, pad, dt_label(x, l1, sizeof l1));
    return 0;
  }
  if (x->ndim != 3 || W->ndim != 3 || W->shape[2] < 1 || x->shape[1] != W->shape[wax]) {
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_%s: input %s %s (want [B, C, L]) does not fit weight %s %s "
                 "(want %s)", op, dt_label(x, l1, sizeof l1), dt_shape_str(x, s1, sizeof s1),
                 dt_label(W, l2, sizeof l2), dt_shape_str(W, s2, sizeof s2),
                 wax ? "[O, C, k]" : "[C, O, k]");
    return 0;
  }
  if (b && (b->ndim != 1 || b->shape[0] != W->shape[1 - wax])) {
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_%s: bias %s %s does not fit weight %s %s", op,
                 dt_label(b, l1, sizeof l1), dt_shape_str(b, s1, sizeof s1),
                 dt_label(W, l2, sizeof l2), dt_shape_str(W, s2, sizeof s2));
    return 0;
  }
  return 1;
}

// the node, its forward and the optional finite check
static dtTensor* conv1d_node(dtTape* t, int op, const int shape[3], dtTensor* x, dtTensor* W,
                             dtTensor* b, int stride, int pad) {
  dtTensor* y = dt_node(t, op, 3, shape);
  if (!y) return NULL;
  y->src[0] = x, y->src[1] = W, y->src[2] = b;
  y->ip[0] = stride, y->ip[1] = pad;
  if (needs(t, x) || needs(t, W) || needs(t, b)) y->flags |= DT_REQUIRES_GRAD;
  if ((x->dot || W->dot || (b && b->dot)) && !dt_ensure_dot(t, y)) return NULL;
  dt_op_table[op].forward(t, y);
  if (t->status != DT_OK) return NULL;
  if (!t->check_finite) return y;
  for (int64_t i = 0; i < y->size; i++) {
    if (isfinite(y->val[i])) continue;
    char l1[64], l2[64];
    dt_tape_fail(t, DT_ERR_NONFINITE, "dt_%s: non-finite value %g at element %lld of %s (input "
                 "%s)", dt_op_name(op), (double)y->val[i], (long long)i,
                 dt_label(y, l2, sizeof l2), dt_label(x, l1, sizeof l1));
    return NULL;
  }
  return y;
}

dtTensor* dt_conv1d(dtTape* t, dtTensor* x, dtTensor* W, dtTensor* b, int stride, int pad) {
  if (!check_conv1d(t, "conv1d", x, W, b, stride, pad, 1)) return NULL;
  int L = dt_conv1d_out_size(x->shape[2], W->shape[2], stride, pad);
  if (L < 1) {
    char l1[64], s1[64];
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_conv1d: input %s %s is shorter than the kernel %d with "
                 "padding %d", dt_label(x, l1, sizeof l1), dt_shape_str(x, s1, sizeof s1),
                 W->shape[2], pad);
    return NULL;
  }
  int shape[3] = {x->shape[0], W->shape[0], L};
  return conv1d_node(t, DT_OP_CONV1D, shape, x, W, b, stride, pad);
}

dtTensor* dt_conv_transpose1d(dtTape* t, dtTensor* x, dtTensor* W, dtTensor* b, int stride,
                              int pad) {
  if (!check_conv1d(t, "conv_transpose1d", x, W, b, stride, pad, 0)) return NULL;
  int L = dt_conv_transpose1d_out_size(x->shape[2], W->shape[2], stride, pad);
  if (L < 1) {
    char l1[64], s1[64];
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_conv_transpose1d: input %s %s with kernel %d, stride %d "
                 "and padding %d gives no output", dt_label(x, l1, sizeof l1),
                 dt_shape_str(x, s1, sizeof s1), W->shape[2], stride, pad);
    return NULL;
  }
  int shape[3] = {x->shape[0], W->shape[1], L};
  return conv1d_node(t, DT_OP_CONVT1D, shape, x, W, b, stride, pad);
}
