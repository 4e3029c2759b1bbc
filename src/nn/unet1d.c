// SPDX-License-Identifier: MIT
// The conditional 1-D temporal U-Net of diffusion policy (Chi et al. 2023), written from the
// paper's description: residual blocks of Conv1d-GroupNorm-Mish with FiLM conditioning on the
// diffusion step and the observation features, stride-2 down- and up-sampling and skip
// connections. Parameter names follow the PyTorch module's state_dict (see nn.h), so weights go
// through safetensors unchanged.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "difftop/nn.h"
#include "tensor/tensor_internal.h"

#define GN_EPS 1e-5f  // torch.nn.GroupNorm's default

dtUnet1DSpec dt_unet1d_spec_default(int in_channels, int horizon, int cond_dim) {
  dtUnet1DSpec s;
  memset(&s, 0, sizeof s);
  s.in_channels = in_channels, s.horizon = horizon, s.cond_dim = cond_dim;
  s.levels = 2;
  s.dims[0] = 64, s.dims[1] = 128;
  s.kernel = 5, s.groups = 8, s.step_dim = 64;
  return s;
}

dtStatus dt_unet1d_check(const dtUnet1DSpec* s) {
  if (!s) return dt_error(DT_ERR_ARG, "U-Net spec: NULL");
  if (s->in_channels < 1 || s->horizon < 1 || s->cond_dim < 0)
    return dt_error(DT_ERR_ARG, "U-Net spec: %d channels, horizon %d, %d condition features "
                    "(want >= 1, >= 1, >= 0)", s->in_channels, s->horizon, s->cond_dim);
  if (s->levels < 1 || s->levels > DT_UNET_MAX_LEVELS)
    return dt_error(DT_ERR_ARG, "U-Net spec: %d levels (1..%d channel counts)", s->levels,
                    DT_UNET_MAX_LEVELS);
  if (s->kernel < 1 || s->kernel % 2 == 0)
    return dt_error(DT_ERR_ARG, "U-Net spec: kernel %d must be odd (padding kernel/2 keeps "
                    "the length)", s->kernel);
  if (s->step_dim < 4 || s->step_dim % 2)
    return dt_error(DT_ERR_ARG, "U-Net spec: step_dim %d must be even and >= 4", s->step_dim);
  if (s->groups < 1) return dt_error(DT_ERR_ARG, "U-Net spec: %d groups", s->groups);
  for (int l = 0; l < s->levels; l++)
    if (s->dims[l] < 1 || s->dims[l] % s->groups)
      return dt_error(DT_ERR_ARG, "U-Net spec: %d channels at level %d are not a positive "
                      "multiple of the %d GroupNorm groups", s->dims[l], l, s->groups);
  int halvings = 1 << (s->levels - 1);
  if (s->horizon % halvings)
    return dt_error(DT_ERR_ARG, "U-Net spec: a time axis of %d cannot be halved %d times (%d "
                    "levels): use a multiple of %d or fewer levels", s->horizon, s->levels - 1,
                    s->levels, halvings);
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// parameters

// how parameters are made: found by name (bind) or created and drawn from rng
typedef struct builder {
  dtParams* ps;
  const char* prefix;
  dtRng* rng;  // NULL: bind
} builder;

// the parameter prefix.name of a shape: created (U(+-bound); bound < 0: the constant -bound - 1)
// or found, its shape checked
static dtTensor* param(const builder* b, const char* name, int ndim, const int* shape,
                       float bound) {
  char full[256];
  snprintf(full, sizeof full, "%s%s%s", b->prefix ? b->prefix : "",
           b->prefix && *b->prefix ? "." : "", name);
  dtTensor* p = b->rng ? dt_params_add(b->ps, full, ndim, shape) : dt_params_find(b->ps, full);
  if (!p) {
    if (!b->rng) dt_error(DT_ERR_NOT_FOUND, "U-Net: no parameter '%s'", full);
    return NULL;
  }
  int ok = p->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++) ok = p->shape[i] == shape[i];
  if (!ok) {
    dt_error(DT_ERR_SHAPE, "U-Net: parameter '%s' has the wrong shape", full);
    return NULL;
  }
  if (b->rng && bound >= 0) dt_init_uniform(p, -bound, bound, b->rng);
  if (b->rng && bound < 0) dt_init_constant(p, -bound - 1.0f);
  return p;
}

// Linear(in -> out) as "<name>.weight" [out, in] and "<name>.bias" [out]
static int linear(const builder* b, const char* name, int in, int out, dtTensor** w,
                  dtTensor** bias) {
  char n[200];
  float bound = 1.0f / sqrtf((float)in);
  snprintf(n, sizeof n, "%s.weight", name);
  if (!(*w = param(b, n, 2, (int[]){out, in}, bound))) return 0;
  snprintf(n, sizeof n, "%s.bias", name);
  *bias = param(b, n, 1, (int[]){out}, bound);
  return *w && *bias;
}

// Conv1d(in -> out, k) as "<name>.weight" [out, in, k] and "<name>.bias"; transposed: the
// weight is [in, out, k] and torch's fan_in is out k
static int conv(const builder* b, const char* name, int in, int out, int k, int transposed,
                dtTensor** w, dtTensor** bias) {
  char n[200];
  float bound = 1.0f / sqrtf((float)((transposed ? out : in) * k));
  snprintf(n, sizeof n, "%s.weight", name);
  *w = param(b, n, 3, transposed ? (int[]){in, out, k} : (int[]){out, in, k}, bound);
  if (!*w) return 0;
  snprintf(n, sizeof n, "%s.bias", name);
  *bias = param(b, n, 1, (int[]){out}, bound);
  return *w && *bias;
}

static int conv_block(const builder* b, const char* name, int in, int out, int k,
                      dtConv1dBlock* blk) {
  char n[200];
  snprintf(n, sizeof n, "%s.block.0", name);
  if (!conv(b, n, in, out, k, 0, &blk->weight, &blk->bias)) return 0;
  snprintf(n, sizeof n, "%s.block.1.weight", name);
  if (!(blk->gn_weight = param(b, n, 1, (int[]){out}, -2.0f))) return 0;  // 1
  snprintf(n, sizeof n, "%s.block.1.bias", name);
  blk->gn_bias = param(b, n, 1, (int[]){out}, -1.0f);    // 0
  return blk->gn_weight && blk->gn_bias;
}

static int res_block(const builder* b, const char* name, int in, int out, const dtUnet1DSpec* s,
                     dtResBlock1D* r) {
  char n[200];
  memset(r, 0, sizeof *r);
  r->in_ch = in, r->out_ch = out;
  for (int i = 0; i < 2; i++) {
    snprintf(n, sizeof n, "%s.blocks.%d", name, i);
    if (!conv_block(b, n, i ? out : in, out, s->kernel, &r->block[i])) return 0;
  }
  snprintf(n, sizeof n, "%s.cond_encoder.1", name);
  if (!linear(b, n, s->step_dim + s->cond_dim, 2 * out, &r->cond_weight, &r->cond_bias)) return 0;
  if (in == out) return 1;
  snprintf(n, sizeof n, "%s.residual_conv", name);
  return conv(b, n, in, out, 1, 0, &r->res_weight, &r->res_bias);
}

// down_modules.l: two residual blocks, then the stride-2 Conv1d except at the last level
static int down_level(const builder* b, dtUnet1D* net, int l) {
  const dtUnet1DSpec* s = &net->spec;
  int in = l ? s->dims[l - 1] : s->in_channels, out = s->dims[l];
  char n[128];
  for (int i = 0; i < 2; i++) {
    snprintf(n, sizeof n, "down_modules.%d.%d", l, i);
    if (!res_block(b, n, i ? out : in, out, s, &net->down[l][i])) return 0;
  }
  if (l + 1 == s->levels) return 1;
  snprintf(n, sizeof n, "down_modules.%d.2.conv", l);
  return conv(b, n, out, out, 3, 0, &net->down_w[l], &net->down_b[l]);
}

// up_modules.u: from dims[L-1-u] (plus the skip of as many channels) to dims[L-2-u], then the
// stride-2 ConvTranspose1d
static int up_level(const builder* b, dtUnet1D* net, int u) {
  const dtUnet1DSpec* s = &net->spec;
  int hi = s->dims[s->levels - 1 - u], lo = s->dims[s->levels - 2 - u];
  char n[128];
  for (int i = 0; i < 2; i++) {
    snprintf(n, sizeof n, "up_modules.%d.%d", u, i);
    if (!res_block(b, n, i ? lo : 2 * hi, lo, s, &net->up[u][i])) return 0;
  }
  snprintf(n, sizeof n, "up_modules.%d.2.conv", u);
  return conv(b, n, lo, lo, 4, 1, &net->up_w[u], &net->up_b[u]);
}

static dtStatus bind_or_create(dtUnet1D* net, const dtUnet1DSpec* spec, dtParams* ps,
                               const char* prefix, dtRng* rng) {
  dtStatus st = dt_unet1d_check(spec);
  if (st) return st;
  memset(net, 0, sizeof *net);
  net->spec = *spec;
  const dtUnet1DSpec* s = &net->spec;
  builder b = {ps, prefix, rng};
  int d = s->step_dim, top = s->dims[s->levels - 1], ok = 1;
  ok = linear(&b, "diffusion_step_encoder.1", d, 4 * d, &net->step_w1, &net->step_b1) &&
       linear(&b, "diffusion_step_encoder.3", 4 * d, d, &net->step_w2, &net->step_b2);
  for (int l = 0; ok && l < s->levels; l++) ok = down_level(&b, net, l);
  for (int i = 0; ok && i < 2; i++) {
    char n[64];
    snprintf(n, sizeof n, "mid_modules.%d", i);
    ok = res_block(&b, n, top, top, s, &net->mid[i]);
  }
  for (int u = 0; ok && u + 1 < s->levels; u++) ok = up_level(&b, net, u);
  ok = ok && conv_block(&b, "final_conv.0", s->dims[0], s->dims[0], s->kernel, &net->final_block);
  ok = ok && conv(&b, "final_conv.1", s->dims[0], s->in_channels, 1, 0, &net->final_w,
                  &net->final_b);
  return ok ? DT_OK : dt_last_status();
}

dtStatus dt_unet1d_create(dtUnet1D* net, const dtUnet1DSpec* spec, dtParams* ps,
                          const char* prefix, dtRng* rng) {
  if (!net || !spec || !ps || !rng) return dt_error(DT_ERR_ARG, "dt_unet1d_create: NULL argument");
  return bind_or_create(net, spec, ps, prefix, rng);
}

dtStatus dt_unet1d_bind(dtUnet1D* net, const dtUnet1DSpec* spec, const dtParams* ps,
                        const char* prefix) {
  if (!net || !spec || !ps) return dt_error(DT_ERR_ARG, "dt_unet1d_bind: NULL argument");
  return bind_or_create(net, spec, (dtParams*)ps, prefix, NULL);
}

//---------------------------------------------------------------------------------------------
// forward

static dtTensor* conv_block_fwd(dtTape* t, const dtConv1dBlock* b, dtTensor* x,
                                const dtUnet1DSpec* s) {
  dtTensor* y = dt_conv1d(t, x, b->weight, b->bias, 1, s->kernel / 2);
  return dt_mish(t, dt_groupnorm(t, y, s->groups, b->gn_weight, b->gn_bias, GN_EPS));
}

// mc = Mish(condition) [B, step_dim + cond_dim], shared by every block
static dtTensor* res_block_fwd(dtTape* t, const dtResBlock1D* r, dtTensor* x, dtTensor* mc,
                               const dtUnet1DSpec* s) {
  if (!x) return NULL;
  int shape[3] = {x->shape[0], r->out_ch, 1};
  dtTensor* h = conv_block_fwd(t, &r->block[0], x, s);
  // FiLM: per-channel scale and bias, [B, out, 1] against h [B, out, L]
  dtTensor* e = dt_linear(t, mc, r->cond_weight, r->cond_bias);
  dtTensor* scale = dt_reshape(t, dt_slice(t, e, 1, 0, r->out_ch), 3, shape);
  dtTensor* bias = dt_reshape(t, dt_slice(t, e, 1, r->out_ch, r->out_ch), 3, shape);
  h = dt_add(t, dt_mul(t, h, scale), bias);
  h = conv_block_fwd(t, &r->block[1], h, s);
  dtTensor* res = r->res_weight ? dt_conv1d(t, x, r->res_weight, r->res_bias, 1, 0) : x;
  return dt_add(t, h, res);
}

// sinusoidal step embedding [B, d] (diffusion_policy's SinusoidalPosEmb): sin then cos of
// step * exp(-log(10000) i / (d/2 - 1)), i < d/2
static dtTensor* step_embedding(dtTape* t, const float* steps, int B, int d) {
  dtTensor* e = dt_input2(t, B, d, NULL, "diffusion_step");
  if (!e) return NULL;
  int half = d / 2;
  for (int i = 0; i < half; i++) {
    float fr = expf(-logf(10000.0f) * (float)i / (float)(half - 1));
    for (int b = 0; b < B; b++) {
      e->val[(size_t)b * d + i] = sinf(steps[b] * fr);
      e->val[(size_t)b * d + half + i] = cosf(steps[b] * fr);
    }
  }
  return e;
}

// Mish([step encoder(steps), cond])
static dtTensor* condition(dtTape* t, const dtUnet1D* net, const float* steps, int B,
                           dtTensor* cond) {
  dtTensor* h = step_embedding(t, steps, B, net->spec.step_dim);
  h = dt_linear(t, dt_mish(t, dt_linear(t, h, net->step_w1, net->step_b1)), net->step_w2,
                net->step_b2);
  if (cond) h = dt_concat(t, h, cond, 1);
  return dt_mish(t, h);
}

// x [B, in_channels, horizon] and cond [B, cond_dim] (or NULL); 0 after a tape error
static int check_inputs(dtTape* t, const dtUnet1D* net, dtTensor* x, const float* steps,
                        dtTensor* cond) {
  const dtUnet1DSpec* s = &net->spec;
  char b1[64], b2[64];
  if (!steps) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_unet1d_forward: steps is NULL");
    return 0;
  }
  if (x->ndim != 3 || x->shape[1] != s->in_channels || x->shape[2] != s->horizon) {
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_unet1d_forward: x %s, want [B, %d, %d]",
                 dt_shape_str(x, b1, sizeof b1), s->in_channels, s->horizon);
    return 0;
  }
  int want = s->cond_dim > 0;
  if (want != (cond != NULL) || (cond && (cond->ndim != 2 || cond->shape[0] != x->shape[0] ||
                                          cond->shape[1] != s->cond_dim))) {
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_unet1d_forward: cond %s for x %s, want %s",
                 cond ? dt_shape_str(cond, b2, sizeof b2) : "NULL",
                 dt_shape_str(x, b1, sizeof b1), want ? "[B, cond_dim]" : "NULL (cond_dim 0)");
    return 0;
  }
  return 1;
}

dtTensor* dt_unet1d_forward(dtTape* t, const dtUnet1D* net, dtTensor* x, const float* steps,
                            dtTensor* cond) {
  if (!t || !net) {
    dt_error(DT_ERR_ARG, "dt_unet1d_forward: NULL %s", t ? "net" : "tape");
    return NULL;
  }
  if (!x || dt_tape_status(t) || !check_inputs(t, net, x, steps, cond)) return NULL;
  const dtUnet1DSpec* s = &net->spec;
  int L = s->levels;
  dtTensor* mc = condition(t, net, steps, x->shape[0], cond);
  dtTensor *h = x, *skip[DT_UNET_MAX_LEVELS];
  for (int l = 0; l < L; l++) {
    h = res_block_fwd(t, &net->down[l][0], h, mc, s);
    h = skip[l] = res_block_fwd(t, &net->down[l][1], h, mc, s);
    if (l + 1 < L) h = dt_conv1d(t, h, net->down_w[l], net->down_b[l], 2, 1);
  }
  for (int i = 0; i < 2; i++) h = res_block_fwd(t, &net->mid[i], h, mc, s);
  // the skip of level L-1-u joins up level u; level 0's skip is not used (as upstream)
  for (int u = 0; u + 1 < L; u++) {
    h = dt_concat(t, h, skip[L - 1 - u], 1);
    for (int i = 0; i < 2; i++) h = res_block_fwd(t, &net->up[u][i], h, mc, s);
    h = dt_conv_transpose1d(t, h, net->up_w[u], net->up_b[u], 2, 1);
  }
  h = conv_block_fwd(t, &net->final_block, h, s);
  return dt_conv1d(t, h, net->final_w, net->final_b, 1, 0);
}

//---------------------------------------------------------------------------------------------
// memory

// floats per sample of one residual block's activations at `out` channels and length n, with
// their adjoints: each Conv1dBlock leaves 7 tensors of out n (conv, 2 reshapes, normalize, gain,
// bias, Mish), FiLM 2, the residual conv and the sum 2; the input's share of
// a concatenation or a 1x1 conv is counted by the caller
static double res_floats(int out, int n) { return 2.0 * (2 * 7 + 2 + 2) * out * n; }

size_t dt_unet1d_tape_bytes(const dtUnet1DSpec* s, int batch) {
  if (dt_unet1d_check(s)) return 0;
  double per = 0;
  int n = s->horizon;
  for (int l = 0; l < s->levels; l++, n /= 2) {
    per += 2 * res_floats(s->dims[l], n) + 2.0 * s->dims[l] * n;  // + the down step
    if (l + 1 == s->levels) per += 2 * res_floats(s->dims[l], n);  // mid
    else per += 2 * res_floats(s->dims[l], n) + 2.0 * 3 * s->dims[l] * 2 * n;  // up, concat, convT
  }
  per += res_floats(s->dims[0], s->horizon) + 4.0 * s->in_channels * s->horizon;  // final
  per += 2.0 * (s->step_dim * 8 + s->cond_dim * 2) + 64.0 * s->levels * 4 * s->dims[0];  // cond
  double b = batch > 1 ? batch : 1;
  // every node's header and alignment, and the im2col scratch of one op (two chunks of 4 MiB)
  return (size_t)(1.25 * b * per * sizeof(float)) + ((size_t)16 << 20);
}
