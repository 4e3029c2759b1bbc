// SPDX-License-Identifier: MIT
// 2-D convolution on the tape (NCHW, square kernel, stride, no padding, optional bias), as
// torch.nn.Conv2d(padding=0). Per sample b, with col(x_b) the im2col matrix [C k k, OH OW]:
//   y_b = W col(x_b) + b                    (W viewed as [O, C k k])
// The op is bilinear in (x, W), so its derivative rules mirror linear's (see ops.c notation):
//   y'   = W col(x') + W' col(x) + b'
//   gx  += col2im(W^T g)          gx' += col2im(W^T g' + W'^T g)
//   gW  += g col(x)^T             gW' += g' col(x)^T + g col(x')^T
//   gb  += sum_p g                gb' += sum_p g'
// The im2col scratch (one sample at a time) comes from the tape arena and is released as soon
// as the op is done with it, so the arena holds only the op's output: no heap allocation and
// no [B, C k k, OH OW] buffer kept for the backward (the backward rebuilds col(x_b)).
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor_internal.h"

// geometry of a conv node: y [B, O, OH, OW] from x [B, C, H, W] and W [O, C, k, k]
typedef struct convGeom {
  int B, C, H, W, O, k, s, OH, OW;
  int K, P;  // C k k (rows of col), OH OW (columns of col)
} convGeom;

static convGeom geom(const dtTensor* y) {
  const dtTensor *x = y->src[0], *w = y->src[1];
  convGeom g;
  g.B = x->shape[0], g.C = x->shape[1], g.H = x->shape[2], g.W = x->shape[3];
  g.O = w->shape[0], g.k = w->shape[2], g.s = y->ip[0];
  g.OH = y->shape[2], g.OW = y->shape[3];
  g.K = g.C * g.k * g.k, g.P = g.OH * g.OW;
  return g;
}

// col [K, P] of one sample x [C, H, W]: row (c, i, j), column (oh, ow) = x[c, oh s + i, ow s + j]
static void im2col(const convGeom* g, const float* x, float* col) {
  for (int c = 0; c < g->C; c++)
    for (int i = 0; i < g->k; i++)
      for (int j = 0; j < g->k; j++) {
        float* row = col + (size_t)((c * g->k + i) * g->k + j) * g->P;
        const float* xc = x + (size_t)c * g->H * g->W + j;
        for (int oh = 0; oh < g->OH; oh++) {
          const float* xr = xc + (size_t)(oh * g->s + i) * g->W;
          float* r = row + (size_t)oh * g->OW;
          if (g->s == 1) {
            memcpy(r, xr, (size_t)g->OW * sizeof(float));
          } else {
            for (int ow = 0; ow < g->OW; ow++) r[ow] = xr[ow * g->s];
          }
        }
      }
}

// the adjoint of im2col: x [C, H, W] += scatter of col [K, P]
static void col2im_add(const convGeom* g, const float* col, float* x) {
  for (int c = 0; c < g->C; c++)
    for (int i = 0; i < g->k; i++)
      for (int j = 0; j < g->k; j++) {
        const float* row = col + (size_t)((c * g->k + i) * g->k + j) * g->P;
        float* xc = x + (size_t)c * g->H * g->W + j;
        for (int oh = 0; oh < g->OH; oh++) {
          float* xr = xc + (size_t)(oh * g->s + i) * g->W;
          const float* r = row + (size_t)oh * g->OW;
          for (int ow = 0; ow < g->OW; ow++) xr[ow * g->s] += r[ow];
        }
      }
}

// y[O, P] (+)= W[O, K] col[K, P]
static void gemm_wc(const convGeom* g, const float* w, const float* col, float* y, float beta) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->O, g->P, g->K, 1.0f, w, g->K, col,
              g->P, beta, y, g->P);
}

// dcol[K, P] (+)= W[O, K]^T gy[O, P]
static void gemm_wtg(const convGeom* g, const float* w, const float* gy, float* dcol,
                     float beta) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g->K, g->P, g->O, 1.0f, w, g->K, gy,
              g->P, beta, dcol, g->P);
}

// gW[O, K] += gy[O, P] col[K, P]^T
static void gemm_gct(const convGeom* g, const float* gy, const float* col, float* gw) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->O, g->K, g->P, 1.0f, gy, g->P, col,
              g->P, 1.0f, gw, g->K);
}

static int conv_needs_grad(const dtTape* t, const dtTensor* x) {
  if (!x || !(x->flags & DT_REQUIRES_GRAD)) return 0;
  return !((x->flags & DT_PARAM) && t->no_param_grads);
}

void dt_conv2d_forward(dtTape* t, dtTensor* y) {
  dtTensor *x = y->src[0], *w = y->src[1], *b = y->src[2];
  convGeom g = geom(y);
  size_t mark = dt_arena_mark(&t->arena);
  int tan_x = x->dot != NULL && y->dot != NULL;
  float* col = dt_node_floats(t, (int64_t)g.K * g.P, 0);
  float* cold = tan_x ? dt_node_floats(t, (int64_t)g.K * g.P, 0) : NULL;
  if (!col || (tan_x && !cold)) return;
  size_t xs = (size_t)g.C * g.H * g.W, ys = (size_t)g.O * g.P;
  for (int n = 0; n < g.B; n++) {
    float* yv = y->val + n * ys;
    im2col(&g, x->val + n * xs, col);
    gemm_wc(&g, w->val, col, yv, 0.0f);
    if (b)
      for (int o = 0; o < g.O; o++)
        for (int p = 0; p < g.P; p++) yv[(size_t)o * g.P + p] += b->val[o];
    // y' = W col(x') + W' col(x) + b'
    if (y->dot) {
      float* yd = y->dot + n * ys;
      memset(yd, 0, ys * sizeof(float));
      if (w->dot) gemm_wc(&g, w->dot, col, yd, 1.0f);
      if (tan_x) {
        im2col(&g, x->dot + n * xs, cold);
        gemm_wc(&g, w->val, cold, yd, 1.0f);
      }
      if (b && b->dot)
        for (int o = 0; o < g.O; o++)
          for (int p = 0; p < g.P; p++) yd[(size_t)o * g.P + p] += b->dot[o];
    }
  }
  dt_arena_release(&t->arena, mark);  // the scratch only
}

void dt_conv2d_backward(dtTape* t, dtTensor* y) {
  dtTensor *x = y->src[0], *w = y->src[1], *b = y->src[2];
  convGeom g = geom(y);
  int so = t->second_order;
  int gx = conv_needs_grad(t, x), gw = conv_needs_grad(t, w), gb = b && conv_needs_grad(t, b);
  // the inputs' adjoints first: the scratch after them is released at the end
  if ((gx && !dt_ensure_grad(t, x)) || (gw && !dt_ensure_grad(t, w)) ||
      (gb && !dt_ensure_grad(t, b)))
    return;
  size_t mark = dt_arena_mark(&t->arena);
  size_t xs = (size_t)g.C * g.H * g.W, ys = (size_t)g.O * g.P, cs = (size_t)g.K * g.P;
  int need_colx = gw, need_cold = gw && so && x->dot;
  float* col = need_colx ? dt_node_floats(t, (int64_t)cs, 0) : NULL;
  float* cold = need_cold ? dt_node_floats(t, (int64_t)cs, 0) : NULL;
  float* dcol = gx ? dt_node_floats(t, (int64_t)cs, 0) : NULL;
  if ((need_colx && !col) || (need_cold && !cold) || (gx && !dcol)) return;
  for (int n = 0; n < g.B; n++) {
    const float* gy = y->grad + n * ys;
    const float* gyd = so ? y->gdot + n * ys : NULL;
    if (gw) {
      // gW += g col(x)^T;  gW' += g' col(x)^T + g col(x')^T
      im2col(&g, x->val + n * xs, col);
      gemm_gct(&g, gy, col, w->grad);
      if (so) {
        gemm_gct(&g, gyd, col, w->gdot);
        if (need_cold) {
          im2col(&g, x->dot + n * xs, cold);
          gemm_gct(&g, gy, cold, w->gdot);
        }
      }
    }
    if (gx) {
      // gx += col2im(W^T g);  gx' += col2im(W^T g' + W'^T g)
      gemm_wtg(&g, w->val, gy, dcol, 0.0f);
      col2im_add(&g, dcol, x->grad + n * xs);
      if (so) {
        gemm_wtg(&g, w->val, gyd, dcol, 0.0f);
        if (w->dot) gemm_wtg(&g, w->dot, gy, dcol, 1.0f);
        col2im_add(&g, dcol, x->gdot + n * xs);
      }
    }
    if (gb) {
      for (int o = 0; o < g.O; o++) {
        double s = 0, sd = 0;
        for (int p = 0; p < g.P; p++) {
          s += gy[(size_t)o * g.P + p];
          if (so) sd += gyd[(size_t)o * g.P + p];
        }
        b->grad[o] += (float)s;
        if (so) b->gdot[o] += (float)sd;
      }
    }
  }
  dt_arena_release(&t->arena, mark);
}

static const char* lbl(const dtTensor* x, char* buf, size_t n) { return dt_label(x, buf, n); }

dtTensor* dt_conv2d(dtTape* t, dtTensor* x, dtTensor* W, dtTensor* b, int stride) {
  if (!t) {
    dt_error(DT_ERR_ARG, "dt_conv2d: tape is NULL");
    return NULL;
  }
  if (t->status != DT_OK) return NULL;
  char l1[64], l2[64], s1[64], s2[64];
  if (!x || !W) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_conv2d: %s is NULL", x ? "weight" : "input");
    return NULL;
  }
  if (stride < 1) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_conv2d: stride %d for input %s (must be >= 1)", stride,
                 lbl(x, l1, sizeof l1));
    return NULL;
  }
  if (x->ndim != 4 || W->ndim != 4 || W->shape[2] != W->shape[3] || x->shape[1] != W->shape[1] ||
      W->shape[2] < 1 || x->shape[2] < W->shape[2] || x->shape[3] < W->shape[3]) {
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_conv2d: input %s %s (want [B, C, H, W] with H, W >= k) "
                 "does not fit weight %s %s (want [O, C, k, k])", lbl(x, l1, sizeof l1),
                 dt_shape_str(x, s1, sizeof s1), lbl(W, l2, sizeof l2),
                 dt_shape_str(W, s2, sizeof s2));
    return NULL;
  }
  if (b && (b->ndim != 1 || b->shape[0] != W->shape[0])) {
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_conv2d: bias %s %s does not fit weight %s %s",
                 lbl(b, l1, sizeof l1), dt_shape_str(b, s1, sizeof s1), lbl(W, l2, sizeof l2),
                 dt_shape_str(W, s2, sizeof s2));
    return NULL;
  }
  int k = W->shape[2];
  int shape[4] = {x->shape[0], W->shape[0], (x->shape[2] - k) / stride + 1,
                  (x->shape[3] - k) / stride + 1};
  dtTensor* y = dt_node(t, DT_OP_CONV2D, 4, shape);
  if (!y) return NULL;
  y->src[0] = x, y->src[1] = W, y->src[2] = b;
  y->ip[0] = stride;
  if (conv_needs_grad(t, x) || conv_needs_grad(t, W) || conv_needs_grad(t, b))
    y->flags |= DT_REQUIRES_GRAD;
  if ((x->dot || W->dot || (b && b->dot)) && !dt_ensure_dot(t, y)) return NULL;
  dt_conv2d_forward(t, y);
  if (t->status != DT_OK) return NULL;
  if (t->check_finite) {
    for (int64_t i = 0; i < y->size; i++) {
      if (!isfinite(y->val[i])) {
        dt_tape_fail(t, DT_ERR_NONFINITE, "dt_conv2d: non-finite value %g at element %lld of "
                     "%s (input %s)", (double)y->val[i], (long long)i, lbl(y, l2, sizeof l2),
                     lbl(x, l1, sizeof l1));
        return NULL;
      }
    }
  }
  return y;
}

int dt_conv2d_out_size(int in, int k, int stride) {
  return in >= k && k >= 1 && stride >= 1 ? (in - k) / stride + 1 : 0;
}
