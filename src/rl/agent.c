// SPDX-License-Identifier: MIT
// The agent: creation, acting (random, MPPI or trajectory optimization), the TD-MPC update
// with DiffTOP's state critics, and the DiffTOP policy gradient through the solver.
#include <math.h>
#include <string.h>

#include "agent_internal.h"

//---------------------------------------------------------------------------------------------
// creation

static dtStatus make_pi_view(dtAgent* a) {
  dtParams* src = &a->model.params;
  dt_params_init(&a->pi_view);
  a->pi_view.items = dt_malloc((size_t)src->count * sizeof(dtTensor*));
  if (!a->pi_view.items) return DT_ERR_NOMEM;
  for (int i = 0; i < src->count; i++)
    if (!strncmp(src->items[i]->name, "_pi.", 4)) a->pi_view.items[a->pi_view.count++] = src->items[i];
  a->pi_view.capacity = src->count;
  return DT_OK;
}

static dtStatus alloc_scratch(dtAgent* a) {
  const dtRLConfig* c = &a->cfg;
  int A = a->A, S = a->S, H = c->horizon, B = c->batch_size;
  int N = c->num_samples + (int)(c->mixture_coef * c->num_samples);
  int nmax = (DT_MAX_HORIZON + 1) * A, pb = c->pg_batch > 1 ? c->pg_batch : 1;
  a->mppi_mean = dt_calloc((size_t)DT_MAX_HORIZON * A, sizeof(float));
  a->mppi_std = dt_calloc((size_t)DT_MAX_HORIZON * A, sizeof(float));
  a->mppi_actions = dt_calloc((size_t)DT_MAX_HORIZON * N * A, sizeof(float));
  a->mppi_value = dt_calloc((size_t)N, sizeof(float));
  a->mppi_order = dt_calloc((size_t)N, sizeof(int));
  a->mppi_score = dt_calloc((size_t)N, sizeof(float));
  a->a_init = dt_calloc((size_t)pb * nmax, sizeof(float));
  a->a_final = dt_calloc((size_t)pb * nmax, sizeof(float));
  a->a_best = dt_calloc((size_t)pb * nmax, sizeof(float));
  a->dL_da = dt_calloc((size_t)pb * nmax, sizeof(float));
  a->status = dt_calloc((size_t)pb, sizeof(int));
  a->u_obs = dt_calloc((size_t)(H + 1) * B * S, sizeof(float));
  a->u_act = dt_calloc((size_t)H * B * A, sizeof(float));
  a->u_rew = dt_calloc((size_t)H * B, sizeof(float));
  a->u_w = dt_calloc((size_t)B, sizeof(float));
  a->u_prio = dt_calloc((size_t)B, sizeof(float));
  a->u_idx = dt_calloc((size_t)B, sizeof(int64_t));
  a->u_zdet = dt_calloc((size_t)(H + 1) * B * c->latent_dim, sizeof(float));
  void* all[] = {a->mppi_mean, a->mppi_std, a->mppi_actions, a->mppi_value, a->mppi_order,
                 a->mppi_score, a->a_init, a->a_final, a->a_best, a->dL_da, a->status,
                 a->u_obs, a->u_act, a->u_rew, a->u_w, a->u_prio, a->u_idx, a->u_zdet};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (!all[i]) return DT_ERR_NOMEM;
  return DT_OK;
}

dtStatus dt_agent_new(const dtRLConfig* cfg, int obs_dim, int action_dim, dtAgent** out) {
  if (!cfg || !out) return dt_error(DT_ERR_ARG, "dt_agent_new: NULL argument");
  *out = NULL;
  if (cfg->horizon < 1 || cfg->horizon > DT_MAX_HORIZON || cfg->horizon_end > DT_MAX_HORIZON)
    return dt_error(DT_ERR_ARG, "dt_agent_new: horizons must lie in [1, %d]", DT_MAX_HORIZON);
  if (cfg->batch_size < 1 || cfg->num_samples < 1 || cfg->num_elites < 1 || cfg->iterations < 1)
    return dt_error(DT_ERR_ARG, "dt_agent_new: batch_size, num_samples, num_elites and "
                    "iterations must be positive");
  dtAgent* a = dt_calloc(1, sizeof *a);
  if (!a) return DT_ERR_NOMEM;
  a->plan_call = -1;  // no plan to shift yet
  a->cfg = *cfg;
  a->S = obs_dim;
  a->A = action_dim;
  dt_rng_seed(&a->rng, cfg->seed);
  dtStatus st = dt_told_create(&a->model, obs_dim, action_dim, cfg, cfg->algo == DT_ALGO_DIFFTOP,
                               &a->rng);
  if (!st) st = dt_told_clone(&a->target, &a->model);
  if (st) {
    dt_free(a);
    return st;
  }
  dt_params_set_trainable(&a->target.params, "", 0);
  if ((st = make_pi_view(a)) || (st = alloc_scratch(a))) goto fail;
  dtAdamOpts ao = dt_adam_default_opts();
  ao.lr = cfg->lr;
  a->adam = dt_adam_new(&a->model.params, &ao);
  a->pi_adam = dt_adam_new(&a->pi_view, &ao);
  a->pg_adam = dt_adam_new(&a->model.params, &ao);
  dtTapeOpts to = dt_tape_default_opts();
  // the update tape holds a batch of H-step rollouts of every network; untouched pages cost
  // nothing, so the capacity is generous
  to.arena_bytes = (size_t)3 << 30;
  if (a->model.pixels) {
    // pixels: the augmented inputs plus the conv activations (and their adjoints) of h and of
    // both state critics over the horizon: measured high-water 13.1 MiB per batch row at
    // 9x84x84 with DiffTOP's state critics (docs/pixels.md), i.e. ~54 floats per observation
    // value; 80 leaves a 1.5x margin. Address space only until touched.
    size_t per_row = (size_t)obs_dim * sizeof(float) * 80;
    size_t want = per_row * (size_t)cfg->batch_size;
    if (want > to.arena_bytes) to.arena_bytes = want;
  }
  a->tape = dt_tape_new(&to);
  if (!a->adam || !a->pi_adam || !a->pg_adam || !a->tape) {
    st = DT_ERR_NOMEM;
    goto fail;
  }
  *out = a;
  return DT_OK;
fail:
  dt_agent_free(a);
  return st;
}

void dt_agent_free(dtAgent* a) {
  if (!a) return;
  dt_told_free(&a->model);
  dt_told_free(&a->target);
  dt_free(a->pi_view.items);
  dt_adam_free(a->adam), dt_adam_free(a->pi_adam), dt_adam_free(a->pg_adam);
  dt_tape_free(a->tape);
  for (int h = 0; h <= DT_MAX_HORIZON; h++) {
    dt_trajopt_free(a->solvers[h]);
    dt_trajopt_free(a->bsolvers[h]);
  }
  void* all[] = {a->mppi_mean, a->mppi_std, a->mppi_actions, a->mppi_value, a->mppi_order,
                 a->mppi_score, a->a_init, a->a_final, a->a_best, a->dL_da, a->status,
                 a->u_obs, a->u_act, a->u_rew, a->u_w, a->u_prio, a->u_idx, a->u_zdet};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dt_free(all[i]);
  dt_free(a);
}

dtTold* dt_agent_model(dtAgent* a) { return &a->model; }
dtTold* dt_agent_target(dtAgent* a) { return &a->target; }
dtRng* dt_agent_rng(dtAgent* a) { return &a->rng; }
const double* dt_agent_timers(const dtAgent* a) { return a->timers; }

dtAdam* dt_agent_adam(dtAgent* a, int which) {
  return which == 0 ? a->adam : which == 1 ? a->pi_adam : a->pg_adam;
}

dtTensor* dt_agent_obs_input(dtAgent* a, dtTape* t, int B, const float* obs) {
  const dtTold* m = &a->model;
  if (!m->pixels) return dt_input2(t, B, a->S, obs, "obs");
  int shape[4] = {B, m->obs_shape[0], m->obs_shape[1], m->obs_shape[2]};
  return dt_input(t, 4, shape, obs, "obs");
}

dtTensor* dt_agent_min_state_q(dtTape* t, const dtTold* m, dtTensor* obs, dtTensor* action) {
  dtTensor* q = dt_minimum(t, dt_told_state_q(t, m, 1, obs, action),
                           dt_told_state_q(t, m, 2, obs, action));
  if (!q) return NULL;
  int shape[1] = {q->shape[0]};
  return dt_reshape(t, q, 1, shape);
}

//---------------------------------------------------------------------------------------------
// acting

int dt_agent_planner(const dtAgent* a, int64_t step, int eval) {
  const dtRLConfig* c = &a->cfg;
  if (!eval && step < c->seed_steps) return 0;
  if (c->algo == DT_ALGO_TDMPC) return 1;
  return step < (int64_t)c->seed_steps + c->mppi_steps ? 1 : 2;
}

// the solver for horizon h and batch B (created on first use)
static dtStatus get_solver(dtAgent* a, int h, int batched, dtTrajopt** out) {
  dtTrajopt** slot = batched ? &a->bsolvers[h] : &a->solvers[h];
  if (*slot) {
    *out = *slot;
    return DT_OK;
  }
  const dtRLConfig* c = &a->cfg;
  dt_told_plan(&a->model, h, c->discount, &a->plans[h]);
  dtStatus st = dt_latent_objective(&a->objs[h], &a->plans[h]);
  if (st) return st;
  dtTrajoptOpts o = dt_trajopt_default_opts();
  o.solver = c->solver;
  o.max_iters = c->max_iterations;
  o.step_size = c->step_size;
  o.damping = c->damping;
  o.backward = c->no_backward ? DT_BACKWARD_NONE : c->backward_mode;
  o.backward_iters = c->backward_num_iterations;
  o.project = c->lm_project;
  st = dt_trajopt_new(&a->objs[h], batched ? (c->pg_batch > 0 ? c->pg_batch : 1) : 1, &o, 0, slot);
  *out = *slot;
  return st;
}

// trajectory optimization from a pi-rollout start (or zeros, or an MPPI elite); executes the best iterate, plus
// the std schedule's Gaussian noise while training with explore = 1
static dtStatus act_trajopt(dtAgent* a, const float* obs, int64_t step, int t0, int eval, float* action) {
  const dtRLConfig* c = &a->cfg;
  if (t0 || a->episode_h < 1) a->episode_h = dt_agent_horizon(c, step);
  int h = a->episode_h, n = h * a->A;
  dtTrajopt* s;
  dtStatus st = get_solver(a, h, 0, &s);
  if (st) return st;
  int from_mppi = !c->no_pi_init && c->mppi_init;
  if (c->no_pi_init) {
    memset(a->a_init, 0, (size_t)n * sizeof(float));
  } else if (from_mppi) {
    // sampling-based search first: the solver refines the MPPI elite TD-MPC would execute
    int elite;
    if ((st = dt_agent_mppi_plan(a, obs, h, step, t0, &elite))) return st;
    dt_agent_mppi_sequence(a, elite, h, a->a_init);
  } else {
    dt_tape_reset(a->tape);
    st = dt_latent_pi_rollout(&a->plans[h], a->tape, 1, obs, c->init_std, 0.3f, &a->rng, a->a_init);
    if (st) return st;
  }
  // warm start: the plan of the previous call (same episode and horizon) advanced by one step
  if (c->shift_init && !t0 && a->plan_call == a->act_calls - 1 && a->last_h == h) {
    st = dt_trajopt_shift_start(a->a_best, 1, n, a->A, a->a_init + n - a->A, a->a_init);
    if (st) return st;
  }
  st = dt_trajopt_solve(s, 1, obs, a->a_init, a->a_final, a->a_best, NULL, a->status);
  if (st) return st;
  a->last_h = h;
  a->plan_call = a->act_calls;
  // the executed action: the best iterate's first action (NaN -> 0), plus the exploration
  // noise (the std schedule's, or with an MPPI start TD-MPC's: the elites' std of the first
  // action, at least the schedule's), clipped to the box
  float xs = c->explore && !eval ? dt_agent_min_std(c, step) : 0.0f;
  for (int j = 0; j < a->A; j++) {
    float v = a->a_best[j];
    v = !isfinite(v) ? 0.0f : v;
    if (xs > 0) v += (from_mppi ? a->mppi_std[j] : xs) * dt_rng_normal(&a->rng);
    action[j] = v > 1 ? 1 : (v < -1 ? -1 : v);
  }
  return DT_OK;
}

dtStatus dt_agent_act(dtAgent* a, const float* obs, int64_t step, int t0, int eval,
                      float* action) {
  if (!a || !obs || !action) return dt_error(DT_ERR_ARG, "dt_agent_act: NULL argument");
  for (int i = 0; i < a->S; i++)
    if (!isfinite(obs[i])) return dt_error(DT_ERR_NONFINITE, "dt_agent_act: observation %d is not finite", i);
  double t = dt_time_s();
  dtStatus st = DT_OK;
  switch (dt_agent_planner(a, step, eval)) {
    case 0: dt_rng_fill_uniform(&a->rng, action, (size_t)a->A, -1.0f, 1.0f); break;
    case 1: st = dt_agent_mppi(a, obs, step, t0, eval, action); break;
    default: st = act_trajopt(a, obs, step, t0, eval, action); break;
  }
  a->act_calls++;
  a->timers[0] += dt_time_s() - t;
  return st;
}

//---------------------------------------------------------------------------------------------
// the TD-MPC update (official-code.md 1.6)

// terms of one update, per sample, accumulated over the horizon
typedef struct {
  dtTensor *cons, *rew, *val, *qs;
} lossTerms;

static dtTensor* accumulate(dtTape* t, dtTensor* acc, dtTensor* term, float w) {
  term = dt_scale(t, term, w);
  return acc ? dt_add(t, acc, term) : term;
}

static dtTensor* column(dtTape* t, dtTensor* x) {
  int shape[1] = {x ? x->shape[0] : 0};
  return x ? dt_reshape(t, x, 1, shape) : NULL;
}

// combine the loss terms (each clamped at 1e4 with zero gradient above, then weighted), take
// the model's Adam step with the PER weights and the 1/H scale, refresh the priorities and report
dtStatus dt_agent_apply_td_loss(dtAgent* a, dtReplay* r, dtTensor* cons, dtTensor* rew,
                                dtTensor* val, dtTensor* qs, float* prio, dtUpdateInfo* info) {
  const dtRLConfig* c = &a->cfg;
  dtTape* t = a->tape;
  dtTold* m = &a->model;
  int B = c->batch_size, H = c->horizon;
  float big = 1e4f;
  dtTensor* total = dt_scale(t, dt_clamp(t, val, -INFINITY, big, 0), c->value_coef);
  if (!c->no_dynamics_loss)
    total = dt_add(t, total, dt_scale(t, dt_clamp(t, cons, -INFINITY, big, 0), c->consistency_coef));
  if (!c->no_reward_loss)
    total = dt_add(t, total, dt_scale(t, dt_clamp(t, rew, -INFINITY, big, 0), c->reward_coef));
  if (qs) total = dt_add(t, total, dt_scale(t, dt_clamp(t, qs, -INFINITY, big, 0), c->value_coef));
  dtStatus st = dt_tape_status(t);
  if (st) return dt_error(st, "update: %s", dt_tape_error(t));

  // loss = mean_b(w_b L_b), gradient scaled by 1/H: the seed is w_b / (B H)
  float* seed = dt_tape_floats(t, B);
  if (!seed) return dt_tape_status(t);
  double wl = 0;
  for (int b = 0; b < B; b++) {
    seed[b] = a->u_w[b] / ((float)B * H);
    wl += a->u_w[b] * total->val[b] / B;
  }
  dt_params_zero_grad(&m->params);
  if ((st = dt_backward(t, total, seed))) return st;
  float gnorm = (float)dt_params_clip_grad_norm(&m->params, c->grad_clip_norm);
  if (!dt_params_grad_nonfinite(&m->params)) dt_adam_step(a->adam);

  // priorities
  for (int b = 0; b < B; b++) prio[b] = (prio[b] < big ? prio[b] : big) + c->per_eps;
  dt_replay_update(r, a->u_idx, prio, B);
  if (info) {
    memset(info, 0, sizeof *info);
    double sc = 0, sr = 0, sv = 0, sq = 0;
    for (int b = 0; b < B; b++) {
      sc += cons->val[b], sr += rew->val[b], sv += val->val[b];
      if (qs) sq += qs->val[b];
    }
    info->consistency = (float)(sc / B), info->reward = (float)(sr / B);
    info->value = (float)(sv / B), info->state_value = (float)(sq / B);
    info->weighted_loss = (float)wl, info->grad_norm = gnorm;
  }
  return DT_OK;
}

// the pi update on detached latents zdet [H+1, B, Z] with the Q heads frozen (TD-MPC's
// update_pi), then the target network's EMA every update_freq updates
dtStatus dt_agent_pi_update(dtAgent* a, const float* zdet, dtUpdateInfo* info) {
  const dtRLConfig* c = &a->cfg;
  dtTape* t = a->tape;
  dtTold* m = &a->model;
  int B = c->batch_size, H = c->horizon, Z = m->latent_dim;
  dt_params_zero_grad(&m->params);
  dt_params_set_trainable(&m->params, "_Q", 0);
  dtTensor* lpi = NULL;
  float rho = 1.0f;
  for (int h = 0; h <= H; h++) {
    dtTensor* zh = dt_input2(t, B, Z, zdet + (size_t)h * B * Z, "z");
    dtTensor* q = dt_agent_min_q(t, &m->q1, &m->q2, zh, dt_agent_pi(a, t, m, zh, c->min_std));
    lpi = accumulate(t, lpi, dt_mean(t, q, DT_AXIS_ALL), -rho);
    rho *= c->rho;
  }
  dtStatus st = dt_backward(t, lpi, NULL);
  dt_params_set_trainable(&m->params, "_Q", 1);
  if (st) return st;
  dt_params_clip_grad_norm(&a->pi_view, c->grad_clip_norm);
  if (!dt_params_grad_nonfinite(&a->pi_view)) dt_adam_step(a->pi_adam);
  if (info) info->pi = lpi->val[0];
  a->updates++;
  if (c->update_freq > 0 && a->updates % c->update_freq == 0)
    dt_params_ema(&a->target.params, &m->params, c->tau);
  return DT_OK;
}

dtStatus dt_agent_update(dtAgent* a, dtReplay* r, int64_t step, dtUpdateInfo* info) {
  if (a->model.pixels) return dt_agent_update_pixels(a, r, step, info);
  (void)step;  // the schedules read the step at acting time
  const dtRLConfig* c = &a->cfg;
  int B = c->batch_size, H = c->horizon, S = a->S, A = a->A, Z = a->model.latent_dim;
  double t0 = dt_time_s();
  dtStatus st = dt_replay_sample(r, B, &a->rng, a->u_obs, a->u_act, a->u_rew, a->u_w, a->u_idx);
  if (st) return st;
  dtTape* t = a->tape;
  dtTold *m = &a->model, *tg = &a->target;
  int qs_on = m->state_critics;
  dt_tape_reset(t);

  // targets, without gradients: consistency h_target(o'), TD y with online h and pi and
  // target Q, and the state-critic target with target Qs
  dt_tape_set_param_grads(t, 0);
  dtTensor *zhat[DT_MAX_HORIZON], *y[DT_MAX_HORIZON], *ys[DT_MAX_HORIZON], *o[DT_MAX_HORIZON + 1];
  for (int h = 0; h <= H; h++) o[h] = dt_input2(t, B, S, a->u_obs + (size_t)h * B * S, "obs");
  for (int h = 0; h < H; h++) {
    dtTensor* rt = dt_input(t, 1, &B, a->u_rew + (size_t)h * B, "reward");
    zhat[h] = dt_mlp_forward(t, &tg->enc, o[h + 1]);
    dtTensor* zn = dt_mlp_forward(t, &m->enc, o[h + 1]);
    dtTensor* an = dt_agent_pi(a, t, m, zn, c->min_std);
    y[h] = dt_add(t, rt, dt_scale(t, dt_agent_min_q(t, &tg->q1, &tg->q2, zn, an), c->discount));
    if (qs_on)
      ys[h] = dt_add(t, rt, dt_scale(t, dt_agent_min_q(t, &tg->qs1, &tg->qs2, o[h + 1], an),
                                     c->discount));
  }
  dt_tape_set_param_grads(t, 1);

  // the latent rollout with gradients
  lossTerms L = {0};
  dtTensor* z = dt_mlp_forward(t, &m->enc, o[0]);
  dtTensor* zs[DT_MAX_HORIZON + 1];
  zs[0] = z;
  float rho = 1.0f;
  float* prio = a->u_prio;
  memset(prio, 0, (size_t)B * sizeof(float));
  for (int h = 0; h < H && z; h++) {
    dtTensor* at = dt_input2(t, B, A, a->u_act + (size_t)h * B * A, "action");
    dtTensor* rt = dt_input(t, 1, &B, a->u_rew + (size_t)h * B, "reward");
    dtTensor* za = dt_concat(t, z, at, -1);
    dtTensor* q1 = column(t, dt_mlp_forward(t, &m->q1, za));
    dtTensor* q2 = column(t, dt_mlp_forward(t, &m->q2, za));
    z = dt_mlp_forward(t, &m->dyn, za);
    dtTensor* rhat = column(t, dt_mlp_forward(t, &m->rew, za));
    zs[h + 1] = z;
    L.cons = accumulate(t, L.cons, dt_mean(t, dt_square(t, dt_sub(t, z, zhat[h])), 1), rho);
    L.rew = accumulate(t, L.rew, dt_square(t, dt_sub(t, rhat, rt)), rho);
    L.val = accumulate(t, L.val, dt_add(t, dt_square(t, dt_sub(t, q1, y[h])),
                                        dt_square(t, dt_sub(t, q2, y[h]))), rho);
    if (qs_on) {
      dtTensor* oa = dt_concat(t, o[h], at, -1);
      dtTensor* s1 = column(t, dt_mlp_forward(t, &m->qs1, oa));
      dtTensor* s2 = column(t, dt_mlp_forward(t, &m->qs2, oa));
      L.qs = accumulate(t, L.qs, dt_add(t, dt_square(t, dt_sub(t, s1, ys[h])),
                                        dt_square(t, dt_sub(t, s2, ys[h]))), rho);
    }
    if (q1 && q2 && y[h])
      for (int b = 0; b < B; b++)
        prio[b] += rho * (fabsf(q1->val[b] - y[h]->val[b]) + fabsf(q2->val[b] - y[h]->val[b]));
    rho *= c->rho;
  }
  if ((st = dt_agent_apply_td_loss(a, r, L.cons, L.rew, L.val, L.qs, prio, info))) return st;

  // pi update on the detached latents, Q frozen
  float* zdet = dt_tape_floats(t, (int64_t)(H + 1) * B * Z);
  if (!zdet) return dt_tape_status(t);
  for (int h = 0; h <= H; h++) memcpy(zdet + (size_t)h * B * Z, zs[h]->val, (size_t)B * Z * sizeof(float));
  if ((st = dt_agent_pi_update(a, zdet, info))) return st;
  a->timers[1] += dt_time_s() - t0;
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// the DiffTOP policy gradient: L_PG = -c0 min(Qs1, Qs2)(s, a_0(theta)), through the solver
// into the encoder, dynamics, reward and latent Q (pi and the state critics stay frozen)

// dL/da for B states: the gradient of -c0 min Qs at each first action, zero elsewhere
static dtStatus pg_action_grad(dtAgent* a, int B, const float* obs, int n, float* loss) {
  dtTape* t = a->tape;
  int A = a->A;
  dt_tape_reset(t);
  dt_tape_set_param_grads(t, 0);
  float* a0 = dt_tape_floats(t, (int64_t)B * A);
  if (!a0) return dt_tape_status(t);
  for (int b = 0; b < B; b++) {
    const float* af = a->a_final + (size_t)b * n;
    for (int j = 0; j < A; j++) a0[b * A + j] = isfinite(af[j]) ? af[j] : 0.0f;  // NaN -> 0
  }
  dtTensor* s = dt_agent_obs_input(a, t, B, obs);
  dtTensor* at = dt_input2(t, B, A, a0, "a0");
  dt_requires_grad(t, at);
  dtTensor* q = dt_agent_min_state_q(t, &a->model, s, at);
  float* seed = dt_tape_floats(t, B);
  if (!seed) return dt_tape_status(t);
  for (int b = 0; b < B; b++) seed[b] = -a->cfg.pg_coef;
  dtStatus st = dt_backward(t, q, seed);
  dt_tape_set_param_grads(t, 1);
  if (st) return st;
  memset(a->dL_da, 0, (size_t)B * n * sizeof(float));
  double l = 0;
  for (int b = 0; b < B; b++) {
    l -= a->cfg.pg_coef * q->val[b] / B;
    if (a->status[b] == DT_SOLVE_NONFINITE) continue;
    for (int j = 0; j < A; j++) a->dL_da[(size_t)b * n + j] = at->grad ? at->grad[b * A + j] : 0;
  }
  if (loss) *loss = (float)l;
  return DT_OK;
}

// backward through the last solve of s with frozen pi and state critics
static dtStatus pg_backward(dtAgent* a, dtTrajopt* s) {
  dtParams* ps = &a->model.params;
  dt_params_set_trainable(ps, "_pi", 0);
  dt_params_set_trainable(ps, "_Qs", 0);
  dtStatus st = dt_trajopt_backward(s, a->dL_da, NULL, NULL);
  dt_params_set_trainable(ps, "_pi", 1);
  dt_params_set_trainable(ps, "_Qs", 1);
  return st;
}

dtStatus dt_agent_pg_accumulate(dtAgent* a, const float* obs) {
  if (!a || !obs) return dt_error(DT_ERR_ARG, "dt_agent_pg_accumulate: NULL argument");
  if (a->cfg.no_backward || !a->model.state_critics || a->last_h < 1) return DT_OK;
  double t0 = dt_time_s();
  if (a->pg_count == 0) dt_params_zero_grad(&a->model.params);
  int n = a->last_h * a->A;
  dtStatus st = pg_action_grad(a, 1, obs, n, NULL);
  if (!st) st = pg_backward(a, a->solvers[a->last_h]);
  if (!st) a->pg_count++;
  a->timers[2] += dt_time_s() - t0;
  return st;
}

dtStatus dt_agent_pg_step(dtAgent* a, float* grad_norm) {
  if (!a) return dt_error(DT_ERR_ARG, "dt_agent_pg_step: NULL agent");
  if (grad_norm) *grad_norm = 0;
  if (a->pg_count == 0) return DT_OK;
  float g = (float)dt_params_clip_grad_norm(&a->model.params, a->cfg.grad_clip_norm_a);
  if (grad_norm) *grad_norm = g;
  if (!dt_params_grad_nonfinite(&a->model.params)) dt_adam_step(a->pg_adam);
  dt_params_zero_grad(&a->model.params);
  a->pg_count = 0;
  return DT_OK;
}

dtStatus dt_agent_pg_batch(dtAgent* a, dtReplay* r, float* pg_loss) {
  const dtRLConfig* c = &a->cfg;
  if (!a || !r) return dt_error(DT_ERR_ARG, "dt_agent_pg_batch: NULL argument");
  if (c->no_backward || !a->model.state_critics) return DT_OK;
  double t0 = dt_time_s();
  int B = c->pg_batch, h = dt_agent_horizon(c, c->horizon_schedule_steps), n = h * a->A;
  dtTrajopt* s;
  dtStatus st = get_solver(a, h, 1, &s);
  if (st) return st;
  // replay states (the first observation of each sampled sequence)
  st = dt_replay_sample(r, B, &a->rng, a->u_obs, a->u_act, a->u_rew, a->u_w, a->u_idx);
  if (st) return st;
  dt_tape_reset(a->tape);
  if (c->no_pi_init) {
    memset(a->a_init, 0, (size_t)B * n * sizeof(float));
  } else {
    st = dt_latent_pi_rollout(&a->plans[h], a->tape, B, a->u_obs, c->init_std, 0.3f, &a->rng, a->a_init);
    if (st) return st;
  }
  if ((st = dt_trajopt_solve(s, B, a->u_obs, a->a_init, a->a_final, a->a_best, NULL, a->status)))
    return st;
  dt_params_zero_grad(&a->model.params);
  if ((st = pg_action_grad(a, B, a->u_obs, n, pg_loss))) return st;
  // mean over the batch, not a sum: scale dL/da by 1/B
  for (int i = 0; i < B * n; i++) a->dL_da[i] /= (float)B;
  if ((st = pg_backward(a, s))) return st;
  dt_params_clip_grad_norm(&a->model.params, c->grad_clip_norm_a);
  if (!dt_params_grad_nonfinite(&a->model.params)) dt_adam_step(a->pg_adam);
  dt_params_zero_grad(&a->model.params);
  a->timers[2] += dt_time_s() - t0;
  return DT_OK;
}
