// SPDX-License-Identifier: MIT
// Convolutional encoders for pixel observations (TD-MPC's enc() in pixel mode) and the
// random-shift augmentation of image batches.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "difftop/nn.h"

dtConvNetSpec dt_convnet_spec_tdmpc(int in_channels, int img_size, int channels, int out) {
  dtConvNetSpec s;
  memset(&s, 0, sizeof s);
  s.in_channels = in_channels, s.in_h = img_size, s.in_w = img_size;
  s.layers = 4;
  static const int k[4] = {7, 5, 3, 3};
  for (int i = 0; i < 4; i++) {
    s.channels[i] = channels;
    s.kernel[i] = k[i];
    s.stride[i] = 2;
  }
  s.out = out;
  s.in_scale = 1.0f / 255.0f;
  s.first_index = 1;
  s.conv_gain = sqrtf(2.0f);  // nn.init.calculate_gain('relu')
  return s;
}

int dt_convnet_flat_dim(const dtConvNetSpec* s, int* h, int* w) {
  if (!s || s->layers < 1 || s->layers > DT_CONV_MAX_LAYERS) return 0;
  int hh = s->in_h, ww = s->in_w;
  for (int i = 0; i < s->layers; i++) {
    hh = dt_conv2d_out_size(hh, s->kernel[i], s->stride[i]);
    ww = dt_conv2d_out_size(ww, s->kernel[i], s->stride[i]);
    if (hh < 1 || ww < 1 || s->channels[i] < 1) return 0;
  }
  if (h) *h = hh;
  if (w) *w = ww;
  return s->channels[s->layers - 1] * hh * ww;
}

static dtStatus check_spec(const dtConvNetSpec* s) {
  if (!s || s->layers < 1 || s->layers > DT_CONV_MAX_LAYERS)
    return dt_error(DT_ERR_ARG, "conv net spec: %d layers (1..%d)", s ? s->layers : 0,
                    DT_CONV_MAX_LAYERS);
  if (s->in_channels < 1 || s->out < 0)
    return dt_error(DT_ERR_ARG, "conv net spec: %d input channels, output %d", s->in_channels,
                    s->out);
  if (dt_convnet_flat_dim(s, NULL, NULL) < 1)
    return dt_error(DT_ERR_SHAPE, "conv net spec: the kernels and strides do not fit a %dx%d "
                    "image", s->in_h, s->in_w);
  return DT_OK;
}

// the parameter called prefix.idx.suffix: created (rng) or found, and its shape checked
static dtTensor* param(dtParams* ps, const char* prefix, int idx, const char* suffix, int ndim,
                       const int* shape, int create) {
  char name[256];
  snprintf(name, sizeof name, "%s%s%d.%s", prefix ? prefix : "", prefix && *prefix ? "." : "",
           idx, suffix);
  dtTensor* p = create ? dt_params_add(ps, name, ndim, shape) : dt_params_find(ps, name);
  if (!p) {
    if (!create) dt_error(DT_ERR_NOT_FOUND, "conv net: no parameter '%s'", name);
    return NULL;
  }
  int ok = p->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++) ok = p->shape[i] == shape[i];
  if (!ok) {
    dt_error(DT_ERR_SHAPE, "conv net: parameter '%s' has the wrong shape", name);
    return NULL;
  }
  return p;
}

static dtStatus bind_or_create(dtConvNet* net, const dtConvNetSpec* spec, dtParams* ps,
                               const char* prefix, dtRng* rng) {
  dtStatus st = check_spec(spec);
  if (st) return st;
  memset(net, 0, sizeof *net);
  net->spec = *spec;
  int idx = spec->first_index, in = spec->in_channels;
  for (int i = 0; i < spec->layers; i++, idx += 2) {
    int k = spec->kernel[i], o = spec->channels[i];
    int ws[4] = {o, in, k, k}, bs[1] = {o};
    net->weight[i] = param(ps, prefix, idx, "weight", 4, ws, rng != NULL);
    net->bias[i] = param(ps, prefix, idx, "bias", 1, bs, rng != NULL);
    if (!net->weight[i] || !net->bias[i]) return dt_last_status();
    if (rng) {
      if ((st = dt_init_orthogonal(net->weight[i], spec->conv_gain, rng))) return st;
      dt_init_constant(net->bias[i], 0.0f);
    }
    in = o;
  }
  if (spec->out > 0) {
    // ReLU after the last conv takes idx - 1, Flatten idx, the Linear idx + 1
    int flat = dt_convnet_flat_dim(spec, NULL, NULL);
    int ws[2] = {spec->out, flat}, bs[1] = {spec->out};
    net->lin_weight = param(ps, prefix, idx + 1, "weight", 2, ws, rng != NULL);
    net->lin_bias = param(ps, prefix, idx + 1, "bias", 1, bs, rng != NULL);
    if (!net->lin_weight || !net->lin_bias) return dt_last_status();
    if (rng) {
      if ((st = dt_init_orthogonal(net->lin_weight, 1.0f, rng))) return st;
      dt_init_constant(net->lin_bias, 0.0f);
    }
  }
  return DT_OK;
}

dtStatus dt_convnet_create(dtConvNet* net, const dtConvNetSpec* spec, dtParams* ps,
                           const char* prefix, dtRng* rng) {
  if (!net || !spec || !ps || !rng)
    return dt_error(DT_ERR_ARG, "dt_convnet_create: NULL argument");
  return bind_or_create(net, spec, ps, prefix, rng);
}

dtStatus dt_convnet_bind(dtConvNet* net, const dtConvNetSpec* spec, const dtParams* ps,
                         const char* prefix) {
  if (!net || !spec || !ps) return dt_error(DT_ERR_ARG, "dt_convnet_bind: NULL argument");
  return bind_or_create(net, spec, (dtParams*)ps, prefix, NULL);
}

dtTensor* dt_convnet_forward(dtTape* t, const dtConvNet* net, dtTensor* x) {
  if (!x) return NULL;
  const dtConvNetSpec* s = &net->spec;
  int B = x->shape[0];
  if (x->ndim == 2) {
    int shape[4] = {B, s->in_channels, s->in_h, s->in_w};
    x = dt_reshape(t, x, 4, shape);
  }
  for (int i = 0; i < s->layers && x; i++) {
    // x * in_scale is folded into the first weight: conv(x s, W) = conv(x, s W), and scaling
    // the [O, C, k, k] weight costs nothing next to scaling the batch of images
    dtTensor* W = net->weight[i];
    if (i == 0 && s->in_scale != 1.0f) W = dt_scale(t, W, s->in_scale);
    x = dt_relu(t, dt_conv2d(t, x, W, net->bias[i], s->stride[i]));
  }
  if (!x) return NULL;
  int flat[2] = {B, (int)(x->size / (B ? B : 1))};
  x = dt_reshape(t, x, 2, flat);
  if (s->out > 0) x = dt_linear(t, x, net->lin_weight, net->lin_bias);
  return x;
}

double dt_convnet_flops(const dtConvNetSpec* s) {
  double f = 0;
  int h = s->in_h, w = s->in_w, c = s->in_channels;
  for (int i = 0; i < s->layers; i++) {
    h = dt_conv2d_out_size(h, s->kernel[i], s->stride[i]);
    w = dt_conv2d_out_size(w, s->kernel[i], s->stride[i]);
    f += 2.0 * s->channels[i] * h * w * c * s->kernel[i] * s->kernel[i];
    c = s->channels[i];
  }
  if (s->out > 0) f += 2.0 * s->out * c * h * w;
  return f;
}

dtStatus dt_shift_aug(const float* x, int B, int C, int H, int W, int pad, dtRng* rng,
                      float* out, int* shifts) {
  if (!x || !out || !rng || B < 0 || C < 1 || H < 1 || W < 1 || pad < 0)
    return dt_error(DT_ERR_ARG, "dt_shift_aug: NULL buffer or bad size (B %d, C %d, %dx%d, "
                    "pad %d)", B, C, H, W, pad);
  if (x == out) return dt_error(DT_ERR_ARG, "dt_shift_aug: in-place augmentation");
  size_t plane = (size_t)H * W;
  for (int b = 0; b < B; b++) {
    // torch.randint(0, 2 pad + 1, (n, 1, 1, 2)): the x (width) shift first, then y
    int dx = (int)dt_rng_below(rng, (uint32_t)(2 * pad + 1));
    int dy = (int)dt_rng_below(rng, (uint32_t)(2 * pad + 1));
    if (shifts) shifts[2 * b] = dx, shifts[2 * b + 1] = dy;
    for (int c = 0; c < C; c++) {
      const float* src = x + ((size_t)b * C + c) * plane;
      float* dst = out + ((size_t)b * C + c) * plane;
      for (int i = 0; i < H; i++) {
        int si = i + dy - pad;
        si = si < 0 ? 0 : si >= H ? H - 1 : si;
        const float* row = src + (size_t)si * W;
        float* o = dst + (size_t)i * W;
        // columns: a clamped left border, a straight copy, a clamped right border
        int j = 0, off = dx - pad;
        for (; j < W && j + off < 0; j++) o[j] = row[0];
        int jend = W - off < W ? W - off : W;  // first j with j + off >= W
        if (jend > j) {
          memcpy(o + j, row + j + off, (size_t)(jend - j) * sizeof(float));
          j = jend;
        }
        for (; j < W; j++) o[j] = row[W - 1];
      }
    }
  }
  return DT_OK;
}
