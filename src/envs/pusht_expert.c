// SPDX-License-Identifier: MIT
// Push-T expert: sampling MPC over pixel waypoints, scored by rolling out the true simulator.
//
// Every action: K candidate plans of H waypoints (the previous best plan shifted by one step, plus
// Gaussian random walks around it and around the pusher) are rolled out from the current state on
// a private simulator; the plan with the lowest summed cost wins and its first waypoint is the
// action. Cost per step: block-to-goal distance + w_angle |angle error| + w_reach (distance of the
// pusher to the block beyond 70 px) - w_coverage * coverage. Everything is allocated at creation.
#include <math.h>
#include <string.h>

#include "envs/pusht.h"

dtPushtExpertOpts dt_pusht_expert_default_opts(void) {
  dtPushtExpertOpts o;
  o.samples = 128;
  o.horizon = 10;
  o.sigma = 30.0;
  o.w_angle = 60.0;
  o.w_reach = 0.1;
  o.w_coverage = 200.0;
  return o;
}

#ifdef DT_HAVE_CHIPMUNK

struct dtPushtExpert {
  dtPushtExpertOpts opts;
  dtPusht* sim;      // rollout simulator
  dtRng rng;
  double* plan;      // H x 2 best plan from the last call
  double* cand;      // K x H x 2 candidate plans
  double* noise;     // H x 2 random walk scratch
  double start[DT_PUSHT_STATE_SIZE];
  int has_plan;
};

void dt_pusht_expert_free(dtPushtExpert* e) {
  if (!e) return;
  dt_pusht_free(e->sim);
  dt_free(e->plan);
  dt_free(e->cand);
  dt_free(e->noise);
  dt_free(e);
}

dtStatus dt_pusht_expert_new(uint64_t seed, const dtPushtExpertOpts* opts, dtPushtExpert** out) {
  if (!out) return dt_error(DT_ERR_ARG, "dt_pusht_expert_new: out is NULL");
  *out = NULL;
  dtPushtExpertOpts o = opts ? *opts : dt_pusht_expert_default_opts();
  if (o.samples < 1 || o.samples > 65536 || o.horizon < 1 || o.horizon > 1000)
    return dt_error(DT_ERR_ARG, "dt_pusht_expert_new: samples %d (1..65536) or horizon %d (1..1000) out of range",
                    o.samples, o.horizon);
  if (!isfinite(o.sigma) || o.sigma < 0 || !isfinite(o.w_angle) || !isfinite(o.w_reach) ||
      !isfinite(o.w_coverage))
    return dt_error(DT_ERR_ARG, "dt_pusht_expert_new: sigma and weights must be finite (sigma >= 0)");
  dtPushtExpert* e = (dtPushtExpert*)dt_calloc(1, sizeof(dtPushtExpert));
  if (!e) return dt_error(DT_ERR_NOMEM, "dt_pusht_expert_new: out of memory");
  e->opts = o;
  dt_rng_seed(&e->rng, seed);
  size_t h2 = (size_t)o.horizon * 2;
  e->plan = (double*)dt_calloc(h2, sizeof(double));
  e->noise = (double*)dt_calloc(h2, sizeof(double));
  e->cand = (double*)dt_calloc((size_t)o.samples * h2, sizeof(double));
  dtStatus st = dt_pusht_new(&e->sim);
  if (!e->plan || !e->noise || !e->cand || st) {
    dt_pusht_expert_free(e);
    return st ? st : dt_error(DT_ERR_NOMEM, "dt_pusht_expert_new: out of memory");
  }
  *out = e;
  return DT_OK;
}

void dt_pusht_expert_reset(dtPushtExpert* e) {
  if (e) e->has_plan = 0;
}

// wrap an angle to [-pi, pi]
static double wrap_pi(double a) {
  a = fmod(a + M_PI, 2 * M_PI);
  if (a < 0) a += 2 * M_PI;
  return a - M_PI;
}

// cost of the simulator's current state (lower is better)
static double state_cost(const dtPushtExpert* e, const double* s, double coverage) {
  double pose[3];
  dt_pusht_state_block_pose(s, pose);
  double dx = pose[0] - DT_PUSHT_GOAL_X, dy = pose[1] - DT_PUSHT_GOAL_Y;
  double dist = sqrt(dx * dx + dy * dy);
  double ang = fabs(wrap_pi(pose[2] - DT_PUSHT_GOAL_ANGLE));
  double ax = s[DT_PUSHT_S_AGENT_X] - s[DT_PUSHT_S_COG_X];
  double ay = s[DT_PUSHT_S_AGENT_Y] - s[DT_PUSHT_S_COG_Y];
  double reach = sqrt(ax * ax + ay * ay) - 70.0;
  if (reach < 0) reach = 0;
  return dist + e->opts.w_angle * ang + e->opts.w_reach * reach - e->opts.w_coverage * coverage;
}

static double clip512(double x) { return x < 0 ? 0 : (x > 512 ? 512 : x); }

dtStatus dt_pusht_expert_act(dtPushtExpert* e, const double* sim_state, float action[2]) {
  if (!e || !sim_state || !action) return dt_error(DT_ERR_ARG, "dt_pusht_expert_act: NULL argument");
  dtStatus st = dt_pusht_set_state(e->sim, sim_state);
  if (st) return st;
  memcpy(e->start, sim_state, sizeof e->start);
  const int K = e->opts.samples, H = e->opts.horizon;
  const double sigma = e->opts.sigma;

  // the previous plan shifted by one step (or the pusher's position held) is candidate 0
  double* base = e->cand;
  for (int t = 0; t < H; t++) {
    if (e->has_plan) {
      int src = t + 1 < H ? t + 1 : H - 1;
      base[2 * t] = e->plan[2 * src];
      base[2 * t + 1] = e->plan[2 * src + 1];
    } else {
      base[2 * t] = sim_state[DT_PUSHT_S_AGENT_X];
      base[2 * t + 1] = sim_state[DT_PUSHT_S_AGENT_Y];
    }
  }
  // the others: random walks around the shifted plan (3/4) or around the pusher (1/4)
  for (int k = 1; k < K; k++) {
    double* c = e->cand + (size_t)k * H * 2;
    int around_agent = (k % 4) == 0;
    double wx = 0, wy = 0;
    for (int t = 0; t < H; t++) {
      wx += sigma * dt_rng_normal(&e->rng);
      wy += sigma * dt_rng_normal(&e->rng);
      double bx = around_agent ? sim_state[DT_PUSHT_S_AGENT_X] : base[2 * t];
      double by = around_agent ? sim_state[DT_PUSHT_S_AGENT_Y] : base[2 * t + 1];
      c[2 * t] = clip512(bx + wx);
      c[2 * t + 1] = clip512(by + wy);
    }
  }

  // roll every candidate out on the true dynamics
  double best_cost = INFINITY;
  int best = 0;
  double s[DT_PUSHT_STATE_SIZE];
  for (int k = 0; k < K; k++) {
    const double* c = e->cand + (size_t)k * H * 2;
    if (k > 0) {
      st = dt_pusht_set_state(e->sim, e->start);
      if (st) return st;
    }
    double cost = 0, cov = 0;
    int done = 0;
    for (int t = 0; t < H; t++) {
      double step_cost;
      if (!done) {
        int ok = 0;
        st = dt_pusht_step(e->sim, c + 2 * t, NULL, &cov, &ok);
        if (st) return st;
        dt_pusht_get_state(e->sim, s);
        step_cost = state_cost(e, s, cov);
        // success ends the episode: the rest of the horizon keeps this (good) cost
        if (ok) done = 1;
        cost += step_cost;
        if (done) {
          cost += (H - 1 - t) * step_cost;
          break;
        }
      }
    }
    if (cost < best_cost) {
      best_cost = cost;
      best = k;
    }
  }
  memcpy(e->plan, e->cand + (size_t)best * H * 2, sizeof(double) * (size_t)H * 2);
  e->has_plan = 1;
  action[0] = (float)e->plan[0];
  action[1] = (float)e->plan[1];
  return DT_OK;
}

dtStatus dt_pusht_expert_episode(dtPushtExpert* e, dtPusht* sim, uint64_t seed, int numpy,
                                 int max_steps, double* score, int* steps) {
  if (!e || !sim) return dt_error(DT_ERR_ARG, "dt_pusht_expert_episode: NULL argument");
  if (max_steps < 1) return dt_error(DT_ERR_ARG, "dt_pusht_expert_episode: max_steps %d < 1", max_steps);
  if (numpy && seed > 0xffffffffull)
    return dt_error(DT_ERR_ARG, "dt_pusht_expert_episode: numpy seeds are 32-bit (got %llu)",
                    (unsigned long long)seed);
  dtStatus st = numpy ? dt_pusht_reset_numpy(sim, (uint32_t)seed) : dt_pusht_reset(sim, seed);
  if (st) return st;
  dt_pusht_expert_reset(e);
  double best = 0, s[DT_PUSHT_STATE_SIZE];
  int t = 0;
  for (; t < max_steps; t++) {
    float a[2];
    dt_pusht_get_state(sim, s);
    st = dt_pusht_expert_act(e, s, a);
    if (st) return st;
    double ad[2] = {a[0], a[1]}, r = 0;
    int ok = 0;
    st = dt_pusht_step(sim, ad, &r, NULL, &ok);
    if (st) return st;
    if (r > best) best = r;
    if (ok) {
      t++;
      break;
    }
  }
  if (score) *score = best;
  if (steps) *steps = t;
  return DT_OK;
}

#else

void dt_pusht_expert_free(dtPushtExpert* e) { (void)e; }
dtStatus dt_pusht_expert_new(uint64_t seed, const dtPushtExpertOpts* opts, dtPushtExpert** out) {
  (void)seed;
  (void)opts;
  if (out) *out = NULL;
  return dt_error(DT_ERR_UNSUPPORTED, "dt_pusht_expert_new: built without Chipmunk");
}
void dt_pusht_expert_reset(dtPushtExpert* e) { (void)e; }
dtStatus dt_pusht_expert_act(dtPushtExpert* e, const double* s, float action[2]) {
  (void)e;
  (void)s;
  (void)action;
  return dt_error(DT_ERR_UNSUPPORTED, "dt_pusht_expert_act: built without Chipmunk");
}
dtStatus dt_pusht_expert_episode(dtPushtExpert* e, dtPusht* sim, uint64_t seed, int numpy,
                                 int max_steps, double* score, int* steps) {
  (void)e; (void)sim; (void)seed; (void)numpy; (void)max_steps; (void)score; (void)steps;
  return dt_error(DT_ERR_UNSUPPORTED, "dt_pusht_expert_episode: built without Chipmunk");
}

#endif
