// SPDX-License-Identifier: MIT
// The latent planning objective of TD-MPC/DiffTOP:
//   G(a) = sum_{t<H} gamma^t R(z_t, clip a_t) + gamma^H V(z_H),  z_{t+1} = d(z_t, clip a_t),
// with z_0 = h(x) (an encoder inside the objective, so gradients reach it) or z_0 = x.
#include <math.h>
#include <string.h>

#include "difftop/trajopt.h"

int dt_latent_plan_n(const dtLatentPlan* p) {
  return p->horizon * p->action_dim + (p->terminal == DT_TERMINAL_ACTION ? p->action_dim : 0);
}

static dtTensor* latent_prepare(void* ctx, dtTape* t, dtTensor* x) {
  const dtLatentPlan* p = ctx;
  if (p->conv_encoder) return dt_convnet_forward(t, p->conv_encoder, x);
  return p->encoder ? dt_mlp_forward(t, p->encoder, x) : x;
}

// min(Q1, Q2)(z, a), or Q1 alone
static dtTensor* min_q(dtTape* t, const dtLatentPlan* p, dtTensor* z, dtTensor* a) {
  dtTensor* za = dt_concat(t, z, a, -1);
  dtTensor* q = dt_mlp_forward(t, p->q1, za);
  if (p->q2) q = dt_minimum(t, q, dt_mlp_forward(t, p->q2, za));
  return q;
}

// sum_t gamma^t R(z_t, a_t) over the H steps' inputs za[t] [B, Z+A], as one pass of R over
// the B*H stacked rows: at small B the reward network's weights are read once, not H times
static dtTensor* discounted_rewards(dtTape* t, const dtLatentPlan* p, dtTensor** za, int B) {
  int H = p->horizon, width = p->latent_dim + p->action_dim;
  dtTensor* rows = za[0];
  for (int step = 1; step < H; step++) rows = dt_concat(t, rows, za[step], -1);
  int shape_rows[2] = {B * H, width}, shape_bh[2] = {B, H}, shape_b[1] = {B};
  dtTensor* r = dt_mlp_forward(t, p->reward, dt_reshape(t, rows, 2, shape_rows));
  // the discounts as a constant [1, H] weight: [B, H] -> [B, 1]
  dtTensor* discount = dt_input2(t, 1, H, NULL, "discount");
  if (!discount) return NULL;
  float d = 1.0f;
  for (int step = 0; step < H; step++, d *= p->gamma) discount->val[step] = d;
  r = dt_linear(t, dt_reshape(t, r, 2, shape_bh), discount, NULL);
  return dt_reshape(t, r, 1, shape_b);
}

static dtTensor* latent_value(void* ctx, dtTape* t, dtTensor* a, dtTensor* z) {
  const dtLatentPlan* p = ctx;
  int A = p->action_dim, H = p->horizon;
  int B = a->shape[0];
  int shape1[1] = {B};
  // the action clip is inside the objective: zero gradient outside the box
  dtTensor* ac = dt_clamp(t, a, p->clip_lo, p->clip_hi, 0);
  dtTensor* za[DT_LATENT_MAX_HORIZON];
  float discount = 1.0f;
  for (int step = 0; step < H; step++) {
    dtTensor* at = dt_slice(t, ac, 1, step * A, A);
    za[step] = dt_concat(t, z, at, -1);
    z = dt_mlp_forward(t, p->dynamics, za[step]);
    discount *= p->gamma;
  }
  dtTensor* G = p->reward && H > 0 ? discounted_rewards(t, p, za, B) : NULL;
  // terminal value at z_H
  if (p->terminal != DT_TERMINAL_NONE) {
    dtTensor* aH = p->terminal == DT_TERMINAL_ACTION ? dt_slice(t, ac, 1, H * A, A)
                                                     : dt_tanh(t, dt_mlp_forward(t, p->pi, z));
    dtTensor* v = dt_reshape(t, min_q(t, p, z, aH), 1, shape1);
    v = dt_scale(t, v, discount);
    G = G ? dt_add(t, G, v) : v;
  }
  if (!G) G = dt_scale(t, dt_sum(t, a, 1), 0.0f);  // no terms at all: G = 0
  return G;
}

dtStatus dt_latent_objective(dtObjective* obj, const dtLatentPlan* p) {
  if (!obj || !p) return dt_error(DT_ERR_ARG, "dt_latent_objective: NULL argument");
  if (p->horizon < 1 || p->action_dim < 1 || p->latent_dim < 1)
    return dt_error(DT_ERR_ARG, "dt_latent_objective: horizon %d, action_dim %d, latent_dim %d "
                    "must be positive", p->horizon, p->action_dim, p->latent_dim);
  if (p->horizon > DT_LATENT_MAX_HORIZON)
    return dt_error(DT_ERR_ARG, "dt_latent_objective: horizon %d is above the limit %d",
                    p->horizon, DT_LATENT_MAX_HORIZON);
  if (!p->dynamics) return dt_error(DT_ERR_ARG, "dt_latent_objective: dynamics network is NULL");
  if (p->terminal != DT_TERMINAL_NONE && !p->q1)
    return dt_error(DT_ERR_ARG, "dt_latent_objective: a terminal value needs q1");
  if (p->terminal == DT_TERMINAL_PI && !p->pi)
    return dt_error(DT_ERR_ARG, "dt_latent_objective: DT_TERMINAL_PI needs pi");
  if (!(p->clip_lo < p->clip_hi))
    return dt_error(DT_ERR_ARG, "dt_latent_objective: clip_lo %g >= clip_hi %g",
                    (double)p->clip_lo, (double)p->clip_hi);
  // sizes must chain: [z, a] into dynamics/reward/Q, z into pi
  int za = p->latent_dim + p->action_dim;
  const dtMLP* nets[4] = {p->dynamics, p->reward, p->q1, p->q2};
  const char* names[4] = {"dynamics", "reward", "q1", "q2"};
  for (int i = 0; i < 4; i++) {
    if (nets[i] && nets[i]->spec.dims[0] != za)
      return dt_error(DT_ERR_SHAPE, "dt_latent_objective: %s takes %d inputs, expected Z+A = %d",
                      names[i], nets[i]->spec.dims[0], za);
  }
  if (p->dynamics->spec.dims[p->dynamics->spec.layers] != p->latent_dim)
    return dt_error(DT_ERR_SHAPE, "dt_latent_objective: dynamics outputs %d, expected Z = %d",
                    p->dynamics->spec.dims[p->dynamics->spec.layers], p->latent_dim);
  if (p->encoder && (p->encoder->spec.dims[0] != p->x_dim ||
                     p->encoder->spec.dims[p->encoder->spec.layers] != p->latent_dim))
    return dt_error(DT_ERR_SHAPE, "dt_latent_objective: encoder maps %d -> %d, expected %d -> %d",
                    p->encoder->spec.dims[0], p->encoder->spec.dims[p->encoder->spec.layers],
                    p->x_dim, p->latent_dim);
  if (p->conv_encoder) {
    const dtConvNetSpec* cs = &p->conv_encoder->spec;
    if (cs->in_channels * cs->in_h * cs->in_w != p->x_dim || cs->out != p->latent_dim)
      return dt_error(DT_ERR_SHAPE, "dt_latent_objective: conv encoder maps %dx%dx%d -> %d, "
                      "expected %d -> %d", cs->in_channels, cs->in_h, cs->in_w, cs->out,
                      p->x_dim, p->latent_dim);
  }
  memset(obj, 0, sizeof *obj);
  obj->n = dt_latent_plan_n(p);
  obj->nx = p->encoder || p->conv_encoder ? p->x_dim : p->latent_dim;
  obj->ctx = (void*)p;
  obj->prepare = latent_prepare;
  obj->value = latent_value;
  obj->params = p->params;
  return DT_OK;
}

dtStatus dt_latent_pi_rollout(const dtLatentPlan* p, dtTape* t, int B, const float* x, float std,
                              float noise_clip, dtRng* rng, float* a_init) {
  if (!p || !t || !x || !a_init || !p->pi)
    return dt_error(DT_ERR_ARG, "dt_latent_pi_rollout: NULL argument or no pi network");
  int A = p->action_dim, n = dt_latent_plan_n(p);
  int nx = p->encoder || p->conv_encoder ? p->x_dim : p->latent_dim;
  size_t mark = dt_tape_mark(t);
  dt_tape_set_param_grads(t, 0);
  dtTensor* z = latent_prepare((void*)p, t, dt_input2(t, B, nx, x, "x"));
  int steps = n / A;
  for (int step = 0; step < steps && z; step++) {
    // a_t = tanh(pi(z)) + clipped noise, clamped as TD-MPC does; z advances with d
    dtTensor* mu = dt_tanh(t, dt_mlp_forward(t, p->pi, z));
    if (!mu) break;
    for (int b = 0; b < B; b++) {
      for (int i = 0; i < A; i++) {
        float eps = std > 0 ? std * dt_rng_normal(rng) : 0.0f;
        if (eps > noise_clip) eps = noise_clip;
        if (eps < -noise_clip) eps = -noise_clip;
        float v = mu->val[b * A + i] + eps;
        v = fminf(fmaxf(v, -1.0f + 1e-6f), 1.0f - 1e-6f);
        mu->val[b * A + i] = v;
        a_init[(size_t)b * n + step * A + i] = v;
      }
    }
    if (step + 1 < steps) z = dt_mlp_forward(t, p->dynamics, dt_concat(t, z, mu, -1));
  }
  dtStatus st = dt_tape_status(t);
  dt_tape_rewind(t, mark);
  dt_tape_set_param_grads(t, 1);
  return st;
}

dtStatus dt_trajopt_shift_start(const float* prev, int B, int n, int A, const float* fill,
                                float* out) {
  if (!prev || !out) return dt_error(DT_ERR_ARG, "dt_trajopt_shift_start: NULL plan");
  if (B < 1 || A < 1 || n < A || n % A)
    return dt_error(DT_ERR_ARG, "dt_trajopt_shift_start: %d decisions are not whole steps of %d "
                    "actions (B = %d)", n, A, B);
  for (int b = 0; b < B; b++) {
    const float* p = prev + (size_t)b * n;
    float* o = out + (size_t)b * n;
    memmove(o, p + A, (size_t)(n - A) * sizeof(float));  // overlapping when out == prev
    if (o != p) {
      const float* last = fill ? fill + (size_t)b * A : p + n - A;
      memmove(o + n - A, last, (size_t)A * sizeof(float));  // fill may lie in out
    } else if (fill) {
      memmove(o + n - A, fill + (size_t)b * A, (size_t)A * sizeof(float));
    }  // in place without fill: the last step already holds prev's last step
  }
  return DT_OK;
}
