// SPDX-License-Identifier: MIT
// TD-MPC's MPPI planner: 512 Gaussian samples plus 25 pi trajectories, 64 elites,
// exponential weights with temperature 0.5, momentum 0.1, warm start from the shifted mean.
#include <math.h>
#include <string.h>

#include "agent_internal.h"

int dt_agent_horizon(const dtRLConfig* c, int64_t step) {
  double frac = c->horizon_schedule_steps > 0 ? (double)step / c->horizon_schedule_steps : 1.0;
  if (frac > 1) frac = 1;
  int h = (int)floor(c->horizon_start + frac * (c->horizon_end - c->horizon_start));
  if (h < 1) h = 1;
  if (h > DT_MAX_HORIZON) h = DT_MAX_HORIZON;
  return h;
}

float dt_agent_min_std(const dtRLConfig* c, int64_t step) {
  double frac = c->std_schedule_steps > 0 ? (double)step / c->std_schedule_steps : 1.0;
  if (frac > 1) frac = 1;
  return (float)(c->std_start + frac * (c->std_end - c->std_start));
}

dtTensor* dt_agent_pi(dtAgent* a, dtTape* t, const dtTold* m, dtTensor* z, float std) {
  dtTensor* mu = dt_tanh(t, dt_mlp_forward(t, &m->pi, z));
  if (!mu || std <= 0) return mu;
  // eps ~ N(0, std^2) clipped to +-0.3; the sum clamped with a straight-through gradient
  float* eps = dt_tape_floats(t, mu->size);
  if (!eps) return NULL;
  for (int64_t i = 0; i < mu->size; i++) {
    float e = std * dt_rng_normal(&a->rng);
    eps[i] = e > 0.3f ? 0.3f : (e < -0.3f ? -0.3f : e);
  }
  dtTensor* noise = dt_input(t, mu->ndim, mu->shape, eps, "pi_noise");
  return dt_clamp(t, dt_add(t, mu, noise), -1.0f + 1e-6f, 1.0f - 1e-6f, 1);
}

dtTensor* dt_agent_min_q(dtTape* t, const dtMLP* q1, const dtMLP* q2, dtTensor* z,
                         dtTensor* action) {
  dtTensor* za = dt_concat(t, z, action, -1);
  dtTensor* q = dt_minimum(t, dt_mlp_forward(t, q1, za), dt_mlp_forward(t, q2, za));
  if (!q) return NULL;
  int shape[1] = {q->shape[0]};
  return dt_reshape(t, q, 1, shape);
}

// value of N action sequences [H, N, A] from latent z0 (replicated): sum gamma^t R + gamma^H V
static dtStatus estimate_values(dtAgent* a, dtTape* t, const float* z0, int N, int H,
                                const float* actions, float* value) {
  const dtTold* m = &a->model;
  int Z = m->latent_dim, A = a->A;
  size_t mark = dt_tape_mark(t);
  float* zrep = dt_tape_floats(t, (int64_t)N * Z);
  if (!zrep) return dt_tape_status(t);
  for (int i = 0; i < N; i++) memcpy(zrep + (size_t)i * Z, z0, (size_t)Z * sizeof(float));
  dtTensor* z = dt_input2(t, N, Z, zrep, "z");
  dtTensor* G = NULL;
  float disc = 1.0f;
  for (int h = 0; h < H; h++) {
    dtTensor* at = dt_input2(t, N, A, actions + (size_t)h * N * A, "a");
    dtTensor* za = dt_concat(t, z, at, -1);
    int shape[1] = {N};
    dtTensor* r = dt_scale(t, dt_reshape(t, dt_mlp_forward(t, &m->rew, za), 1, shape), disc);
    G = G ? dt_add(t, G, r) : r;
    z = dt_mlp_forward(t, &m->dyn, za);
    disc *= a->cfg.discount;
  }
  dtTensor* v = dt_agent_min_q(t, &m->q1, &m->q2, z, dt_agent_pi(a, t, m, z, a->cfg.min_std));
  G = dt_add(t, G, dt_scale(t, v, disc));
  dtStatus st = dt_tape_status(t);
  if (!st)
    for (int i = 0; i < N; i++) value[i] = isfinite(G->val[i]) ? G->val[i] : 0.0f;  // NaN -> 0
  dt_tape_rewind(t, mark);
  return st;
}

dtStatus dt_agent_mppi_plan(dtAgent* a, const float* obs, int H, int64_t step, int t0,
                            int* elite) {
  const dtRLConfig* c = &a->cfg;
  dtTape* t = a->tape;
  int A = a->A, Z = a->model.latent_dim;
  int npi = (int)(c->mixture_coef * c->num_samples);
  int N = c->num_samples + npi, E = c->num_elites < N ? c->num_elites : N;
  dt_tape_reset(t);
  dt_tape_set_param_grads(t, 0);

  // z0 = h(s); the pi trajectories are drawn once and kept for all iterations
  dtTensor* z = dt_told_encode(t, &a->model, dt_agent_obs_input(a, t, 1, obs));
  if (!z) return dt_tape_status(t);
  float* z0 = dt_tape_floats(t, Z);
  if (!z0) return dt_tape_status(t);
  memcpy(z0, z->val, (size_t)Z * sizeof(float));
  if (npi > 0) {
    float* zr = dt_tape_floats(t, (int64_t)npi * Z);
    if (!zr) return dt_tape_status(t);
    for (int i = 0; i < npi; i++) memcpy(zr + (size_t)i * Z, z0, (size_t)Z * sizeof(float));
    dtTensor* zp = dt_input2(t, npi, Z, zr, "z");
    for (int h = 0; h < H && zp; h++) {
      dtTensor* ap = dt_agent_pi(a, t, &a->model, zp, c->min_std);
      if (!ap) break;
      for (int i = 0; i < npi; i++)
        memcpy(a->mppi_actions + ((size_t)h * N + c->num_samples + i) * A, ap->val + (size_t)i * A,
               (size_t)A * sizeof(float));
      zp = dt_mlp_forward(t, &a->model.dyn, dt_concat(t, zp, ap, -1));
    }
    if (dt_tape_status(t)) return dt_tape_status(t);
  }

  // warm start: the previous mean shifted by one step
  float* mean = a->mppi_mean;
  float* std = a->mppi_std;
  if (t0 || a->mppi_prev_h != H) {
    memset(mean, 0, (size_t)H * A * sizeof(float));
  } else {
    memmove(mean, mean + A, (size_t)(H - 1) * A * sizeof(float));
  }
  for (int i = 0; i < H * A; i++) std[i] = 2.0f;
  float floor_std = dt_agent_min_std(c, step);

  for (int it = 0; it < c->iterations; it++) {
    // sample around the mean, clipped to the action box
    for (int h = 0; h < H; h++)
      for (int i = 0; i < c->num_samples; i++)
        for (int j = 0; j < A; j++) {
          float v = mean[h * A + j] + std[h * A + j] * dt_rng_normal(&a->rng);
          a->mppi_actions[((size_t)h * N + i) * A + j] = v > 1 ? 1 : (v < -1 ? -1 : v);
        }
    dtStatus st = estimate_values(a, t, z0, N, H, a->mppi_actions, a->mppi_value);
    if (st) return st;
    // top-E elites by value (partial selection sort: E is small)
    for (int i = 0; i < N; i++) a->mppi_order[i] = i;
    for (int e = 0; e < E; e++) {
      int best = e;
      for (int i = e + 1; i < N; i++)
        if (a->mppi_value[a->mppi_order[i]] > a->mppi_value[a->mppi_order[best]]) best = i;
      int tmp = a->mppi_order[e];
      a->mppi_order[e] = a->mppi_order[best];
      a->mppi_order[best] = tmp;
    }
    float vmax = a->mppi_value[a->mppi_order[0]];
    double total = 0;
    for (int e = 0; e < E; e++) {
      a->mppi_score[e] = expf(c->temperature * (a->mppi_value[a->mppi_order[e]] - vmax));
      total += a->mppi_score[e];
    }
    for (int e = 0; e < E; e++) a->mppi_score[e] = (float)(a->mppi_score[e] / total);
    // weighted mean and std of the elites; momentum on the mean
    for (int h = 0; h < H; h++)
      for (int j = 0; j < A; j++) {
        double mu = 0, var = 0;
        for (int e = 0; e < E; e++)
          mu += a->mppi_score[e] * a->mppi_actions[((size_t)h * N + a->mppi_order[e]) * A + j];
        for (int e = 0; e < E; e++) {
          double d = a->mppi_actions[((size_t)h * N + a->mppi_order[e]) * A + j] - mu;
          var += a->mppi_score[e] * d * d;
        }
        float s = (float)sqrt(var);
        s = s < floor_std ? floor_std : (s > 2.0f ? 2.0f : s);
        mean[h * A + j] = c->momentum * mean[h * A + j] + (1 - c->momentum) * (float)mu;
        std[h * A + j] = s;
      }
  }
  // pick one elite by its score
  double u = dt_rng_uniform(&a->rng), acc = 0;
  int pick = E - 1;
  for (int e = 0; e < E; e++) {
    acc += a->mppi_score[e];
    if (u < acc) {
      pick = e;
      break;
    }
  }
  *elite = a->mppi_order[pick];
  a->mppi_prev_h = H;
  return DT_OK;
}

dtStatus dt_agent_mppi(dtAgent* a, const float* obs, int64_t step, int t0, int eval,
                       float* action) {
  int A = a->A, elite;
  dtStatus st = dt_agent_mppi_plan(a, obs, dt_agent_horizon(&a->cfg, step), step, t0, &elite);
  if (st) return st;
  // the elite's first action; exploration noise in training (not re-clipped, as TD-MPC)
  for (int j = 0; j < A; j++) {
    float v = a->mppi_actions[(size_t)elite * A + j];
    if (!eval) v += a->mppi_std[j] * dt_rng_normal(&a->rng);
    action[j] = v;
  }
  return DT_OK;
}

void dt_agent_mppi_sequence(const dtAgent* a, int elite, int H, float* seq) {
  const dtRLConfig* c = &a->cfg;
  int A = a->A, N = c->num_samples + (int)(c->mixture_coef * c->num_samples);
  for (int h = 0; h < H; h++)
    memcpy(seq + (size_t)h * A, a->mppi_actions + ((size_t)h * N + elite) * A,
           (size_t)A * sizeof(float));
}
