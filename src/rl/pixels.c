// SPDX-License-Identifier: MIT
// The TD-MPC update (official-code.md 1.6) for pixel observations: the same losses as the
// state update in agent.c, with random-shift augmentation of o_0 and of every next observation
// (fresh shifts per aug() call, as RandomShiftsAug), conv encoders, and state critics that
// encode their own (augmented) images.
//
// Memory: a batch of 256 stacked 84x84 images is 65 MB of floats and the first conv's output
// 50 MB, so the update keeps on its tape only what the backward needs: the augmented inputs and
// the graphs with parameter gradients. Everything computed without gradients (consistency
// targets h_target(o'_t), TD targets through h, pi and the target Q and Qs) is evaluated one
// step at a time and rewound, leaving just its [B, Z] or [B] result.
#include <math.h>
#include <string.h>

#include "agent_internal.h"

static dtTensor* acc_term(dtTape* t, dtTensor* acc, dtTensor* term, float w) {
  term = dt_scale(t, term, w);
  return acc ? dt_add(t, acc, term) : term;
}

static dtTensor* as_column(dtTape* t, dtTensor* x) {
  int shape[1] = {x ? x->shape[0] : 0};
  return x ? dt_reshape(t, x, 1, shape) : NULL;
}

// a tape input [B, C, H, W] holding aug(obs) (obs: B stacked images, floats 0..255)
static dtTensor* aug_input(dtAgent* a, dtTape* t, int B, const float* obs, const char* name) {
  const dtTold* m = &a->model;
  int shape[4] = {B, m->obs_shape[0], m->obs_shape[1], m->obs_shape[2]};
  dtTensor* x = dt_input(t, 4, shape, NULL, name);
  if (!x) return NULL;
  // TD-MPC: pad = img_size / 21 (4 for 84x84)
  int pad = m->obs_shape[1] / 21;
  if (dt_shift_aug(obs, B, shape[1], shape[2], shape[3], pad, &a->rng, x->val, NULL)) return NULL;
  return x;
}

dtStatus dt_agent_update_pixels(dtAgent* a, dtReplay* r, int64_t step, dtUpdateInfo* info) {
  (void)step;
  const dtRLConfig* c = &a->cfg;
  int B = c->batch_size, H = c->horizon, S = a->S, A = a->A, Z = a->model.latent_dim;
  double t0 = dt_time_s();
  dtStatus st = dt_replay_sample(r, B, &a->rng, a->u_obs, a->u_act, a->u_rew, a->u_w, a->u_idx);
  if (st) return st;
  dtTape* t = a->tape;
  dtTold *m = &a->model, *tg = &a->target;
  int qs_on = m->state_critics;
  dt_tape_reset(t);

  // augmented inputs, in the official order of aug() calls: o_0, then o'_t = aug(o_{t+1}) for
  // t < H (the loop), then the state critics' own x_0 = aug(o_0)
  dtTensor *o0, *on[DT_MAX_HORIZON], *x0 = NULL;
  o0 = aug_input(a, t, B, a->u_obs, "obs0");
  for (int h = 0; h < H; h++) on[h] = aug_input(a, t, B, a->u_obs + (size_t)(h + 1) * B * S, "next_obs");
  if (qs_on) x0 = aug_input(a, t, B, a->u_obs, "qs_obs0");
  if ((st = dt_tape_status(t))) return dt_error(st, "pixel update: %s", dt_tape_error(t));
  int missing = !o0 || (qs_on && !x0);
  for (int h = 0; h < H; h++) missing |= !on[h];
  if (missing) return dt_last_status() ? dt_last_status() : DT_ERR_INTERNAL;

  // targets without gradients, one step at a time (rewound after each)
  float* zhat_v = dt_tape_floats(t, (int64_t)H * B * Z);
  float* y_v = dt_tape_floats(t, (int64_t)H * B);
  float* ys_v = dt_tape_floats(t, (int64_t)H * B);
  if (!zhat_v || !y_v || !ys_v) return dt_tape_status(t);
  dt_tape_set_param_grads(t, 0);
  for (int h = 0; h < H; h++) {
    size_t mark = dt_tape_mark(t);
    const float* rw = a->u_rew + (size_t)h * B;
    dtTensor* zh = dt_told_encode(t, tg, on[h]);
    dtTensor* zn = dt_told_encode(t, m, on[h]);
    dtTensor* an = dt_agent_pi(a, t, m, zn, c->min_std);
    dtTensor* q = dt_agent_min_q(t, &tg->q1, &tg->q2, zn, an);
    dtTensor* qs = qs_on ? dt_agent_min_state_q(t, tg, on[h], an) : NULL;
    if ((st = dt_tape_status(t))) {
      dt_tape_set_param_grads(t, 1);
      return dt_error(st, "pixel update targets: %s", dt_tape_error(t));
    }
    memcpy(zhat_v + (size_t)h * B * Z, zh->val, (size_t)B * Z * sizeof(float));
    for (int b = 0; b < B; b++) {
      y_v[h * B + b] = rw[b] + c->discount * q->val[b];
      if (qs) ys_v[h * B + b] = rw[b] + c->discount * qs->val[b];
    }
    dt_tape_rewind(t, mark);
  }
  dt_tape_set_param_grads(t, 1);

  // the latent rollout and the state critics with gradients
  dtTensor *Lc = NULL, *Lr = NULL, *Lv = NULL, *Lq = NULL;
  dtTensor* z = dt_told_encode(t, m, o0);
  dtTensor* zs[DT_MAX_HORIZON + 1];
  zs[0] = z;
  float rho = 1.0f;
  float* prio = a->u_prio;
  memset(prio, 0, (size_t)B * sizeof(float));
  for (int h = 0; h < H && z; h++) {
    dtTensor* at = dt_input2(t, B, A, a->u_act + (size_t)h * B * A, "action");
    dtTensor* rt = dt_input(t, 1, &B, a->u_rew + (size_t)h * B, "reward");
    dtTensor* zh = dt_input2(t, B, Z, zhat_v + (size_t)h * B * Z, "z_target");
    dtTensor* yt = dt_input(t, 1, &B, y_v + (size_t)h * B, "td_target");
    dtTensor* za = dt_concat(t, z, at, -1);
    dtTensor* q1 = as_column(t, dt_mlp_forward(t, &m->q1, za));
    dtTensor* q2 = as_column(t, dt_mlp_forward(t, &m->q2, za));
    z = dt_mlp_forward(t, &m->dyn, za);
    dtTensor* rhat = as_column(t, dt_mlp_forward(t, &m->rew, za));
    zs[h + 1] = z;
    Lc = acc_term(t, Lc, dt_mean(t, dt_square(t, dt_sub(t, z, zh)), 1), rho);
    Lr = acc_term(t, Lr, dt_square(t, dt_sub(t, rhat, rt)), rho);
    Lv = acc_term(t, Lv, dt_add(t, dt_square(t, dt_sub(t, q1, yt)),
                                dt_square(t, dt_sub(t, q2, yt))), rho);
    if (qs_on) {
      // x_0 = its own aug(o_0), x_{t+1} = o'_t (the loop's augmented next observation)
      dtTensor* xt = h == 0 ? x0 : on[h - 1];
      dtTensor* yst = dt_input(t, 1, &B, ys_v + (size_t)h * B, "qs_target");
      dtTensor* s1 = as_column(t, dt_told_state_q(t, m, 1, xt, at));
      dtTensor* s2 = as_column(t, dt_told_state_q(t, m, 2, xt, at));
      Lq = acc_term(t, Lq, dt_add(t, dt_square(t, dt_sub(t, s1, yst)),
                                  dt_square(t, dt_sub(t, s2, yst))), rho);
    }
    if (q1 && q2)
      for (int b = 0; b < B; b++)
        prio[b] += rho * (fabsf(q1->val[b] - y_v[h * B + b]) + fabsf(q2->val[b] - y_v[h * B + b]));
    rho *= c->rho;
  }
  if ((st = dt_agent_apply_td_loss(a, r, Lc, Lr, Lv, qs_on ? Lq : NULL, prio, info))) return st;

  // pi update on the detached latents (the tape is reset first: the conv graphs are done)
  float* zdet = a->u_zdet;
  for (int h = 0; h <= H; h++) memcpy(zdet + (size_t)h * B * Z, zs[h]->val, (size_t)B * Z * sizeof(float));
  dt_tape_reset(t);
  if ((st = dt_agent_pi_update(a, zdet, info))) return st;
  a->timers[1] += dt_time_s() - t0;
  return DT_OK;
}
