// SPDX-License-Identifier: MIT
// Push-T expert: sampling MPC, scored by rolling out the true simulator.
//
// Every action: K candidate plans of H steps are rolled out from the current state on a private
// simulator; the plan with the lowest summed cost wins and its first step is the action. Cost per
// step: block-to-goal distance + w_angle |angle error| + w_reach (distance of the pusher to the
// block beyond 70 px) - w_coverage * coverage (+ w_lead * target-to-pusher distance, default 0).
//
// Two plan spaces:
// - smooth (default): a plan is H target *velocities*; the target moves from the last executed one
//   by at most max_speed px per step, like a mouse trace. Candidates are the previous best plan
//   shifted by one step (and 1/4 of them a standing target) plus random walks of the velocity
//   (sigma_accel per step), so consecutive actions differ by a few pixels and the target stays
//   within about 2 max_speed of the pusher (the PD lag of a critically damped follower).
// - waypoints (smooth = 0, the original expert): a plan is H free pixel targets, random walks of
//   sigma px per step around the shifted plan (3/4) or the pusher (1/4); it succeeds fast but its
//   targets jump by tens of pixels between steps.
// Multimodal option (multimodal = 1): at the first action of an episode the expert draws a mode
// from its RNG and first steers the pusher to a detour point on that side of the block (cost:
// pusher-to-point distance + how far the block moved), going around it one way or the other;
// once within 25 px of the point (or after 60 steps) it plans for the task as above.
// Everything is allocated at creation.
#include <math.h>
#include <string.h>

#include "envs/pusht.h"

dtPushtExpertOpts dt_pusht_expert_waypoint_opts(void) {
  dtPushtExpertOpts o;
  o.samples = 128;
  o.horizon = 10;
  o.sigma = 30.0;
  o.w_angle = 60.0;
  o.w_reach = 0.1;
  o.w_coverage = 200.0;
  o.smooth = 0;
  o.max_speed = 12.0;
  o.sigma_accel = 4.0;
  o.w_lead = 0.0;
  o.multimodal = 0;
  o.detour = 110.0;
  return o;
}

// the smooth planner moves the target slowly, so it needs a longer horizon (25 steps = 2.5 s,
// at most 300 px of target travel) to see a push pay off; fewer plans keep the cost per action
dtPushtExpertOpts dt_pusht_expert_default_opts(void) {
  dtPushtExpertOpts o = dt_pusht_expert_waypoint_opts();
  o.samples = 64;
  o.horizon = 25;
  o.smooth = 1;
  return o;
}

#ifdef DT_HAVE_CHIPMUNK

struct dtPushtExpert {
  dtPushtExpertOpts opts;
  dtPusht* sim;      // rollout simulator
  dtRng rng;
  double* plan;      // H x 2 best plan from the last call (waypoints, or velocities when smooth)
  double* cand;      // K x H x 2 candidate plans (same meaning)
  double* noise;     // H x 2 random walk scratch
  double start[DT_PUSHT_STATE_SIZE];
  int has_plan;
  double last[2];    // smooth: the last target this expert returned
  int has_last;
  int mode;          // multimodal: this episode's mode (0, 1), -1 before it is drawn
  int detouring;     // multimodal: 1 while steering to the detour point
  int detour_steps;  // actions spent detouring
  double via[2];     // the detour point (pixels)
  double block0[3];  // the block's pose when the mode was drawn
};

// the detour phase ends this close to the point (px) or after this many actions
#define DETOUR_REACHED 25.0
#define DETOUR_MAX_STEPS 60

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
      !isfinite(o.w_coverage) || !isfinite(o.w_lead))
    return dt_error(DT_ERR_ARG, "dt_pusht_expert_new: sigma and weights must be finite (sigma >= 0)");
  if (o.smooth && (!(o.max_speed > 0) || !isfinite(o.max_speed) || !(o.sigma_accel >= 0) ||
                   !isfinite(o.sigma_accel)))
    return dt_error(DT_ERR_ARG, "dt_pusht_expert_new: smooth needs max_speed > 0 and sigma_accel >= 0 (got %g, %g)",
                    o.max_speed, o.sigma_accel);
  if (o.multimodal && (!isfinite(o.detour) || o.detour < 0 || o.detour > 512))
    return dt_error(DT_ERR_ARG, "dt_pusht_expert_new: multimodal needs detour in [0, 512] px (got %g)", o.detour);
  dtPushtExpert* e = (dtPushtExpert*)dt_calloc(1, sizeof(dtPushtExpert));
  if (!e) return dt_error(DT_ERR_NOMEM, "dt_pusht_expert_new: out of memory");
  e->opts = o;
  dt_rng_seed(&e->rng, seed);
  e->mode = -1;
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
  if (!e) return;
  e->has_plan = e->has_last = 0;
  e->mode = -1;
  e->detouring = e->detour_steps = 0;
}

int dt_pusht_expert_mode(const dtPushtExpert* e) { return e ? e->mode : -1; }

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

// detour phase cost: pusher-to-point distance plus how far the block moved (angle via w_angle)
static double detour_cost(const dtPushtExpert* e, const double* s) {
  double pose[3];
  dt_pusht_state_block_pose(s, pose);
  double moved = hypot(pose[0] - e->block0[0], pose[1] - e->block0[1]) +
                 e->opts.w_angle * fabs(wrap_pi(pose[2] - e->block0[2]));
  return hypot(s[DT_PUSHT_S_AGENT_X] - e->via[0], s[DT_PUSHT_S_AGENT_Y] - e->via[1]) + moved;
}

// multimodal: draw the episode's mode and its detour point beside the block (file comment)
static void begin_detour(dtPushtExpert* e, const double* s) {
  e->mode = (int)(dt_rng_u32(&e->rng) & 1u);
  dt_pusht_state_block_pose(s, e->block0);
  double cx = s[DT_PUSHT_S_COG_X], cy = s[DT_PUSHT_S_COG_Y];
  double ux = cx - s[DT_PUSHT_S_AGENT_X], uy = cy - s[DT_PUSHT_S_AGENT_Y], d = hypot(ux, uy);
  if (d < 1.0) ux = 1.0, uy = 0.0, d = 1.0;
  double sign = e->mode == 0 ? 1.0 : -1.0, r = e->opts.detour / d;
  e->via[0] = fmin(fmax(cx - sign * r * uy, 20.0), 492.0);
  e->via[1] = fmin(fmax(cy + sign * r * ux, 20.0), 492.0);
  e->detouring = 1;
  e->detour_steps = 0;
}

// multimodal: draw the mode at the episode's first action, end the detour when it is done
static void update_mode(dtPushtExpert* e, const double* s) {
  if (!e->opts.multimodal) return;
  if (e->mode < 0) begin_detour(e, s);
  if (!e->detouring) return;
  double dist = hypot(s[DT_PUSHT_S_AGENT_X] - e->via[0], s[DT_PUSHT_S_AGENT_Y] - e->via[1]);
  if (dist < DETOUR_REACHED || e->detour_steps >= DETOUR_MAX_STEPS) e->detouring = 0;
  else e->detour_steps++;
}

// roll candidate k (its H targets in e->cand when !smooth; velocities from (x0, y0) when smooth)
// out from e->start; returns its summed cost, or NAN with *st set on a simulator error
static double rollout_cost(dtPushtExpert* e, int k, double x0, double y0, dtStatus* st) {
  const int H = e->opts.horizon, smooth = e->opts.smooth;
  const double* c = e->cand + (size_t)k * H * 2;
  *st = dt_pusht_set_state(e->sim, e->start);
  if (*st) return NAN;
  double s[DT_PUSHT_STATE_SIZE], cost = 0, cov = 0, tx = x0, ty = y0;
  for (int t = 0; t < H; t++) {
    double a[2];
    if (smooth) {
      tx = clip512(tx + c[2 * t]);
      ty = clip512(ty + c[2 * t + 1]);
      a[0] = tx;
      a[1] = ty;
    } else {
      a[0] = c[2 * t];
      a[1] = c[2 * t + 1];
    }
    int ok = 0;
    *st = dt_pusht_step(e->sim, a, NULL, &cov, &ok);
    if (*st) return NAN;
    dt_pusht_get_state(e->sim, s);
    double step_cost = e->detouring ? detour_cost(e, s) : state_cost(e, s, cov);
    if (e->opts.w_lead != 0) {
      double lx = a[0] - s[DT_PUSHT_S_AGENT_X], ly = a[1] - s[DT_PUSHT_S_AGENT_Y];
      step_cost += e->opts.w_lead * sqrt(lx * lx + ly * ly);
    }
    cost += step_cost;
    // success ends the episode: the rest of the horizon keeps this (good) cost
    if (ok) return cost + (H - 1 - t) * step_cost;
  }
  return cost;
}

// smooth planner: candidates are target-velocity sequences (see the file comment)
// roll every candidate out on the true dynamics; the cheapest becomes the plan
static dtStatus pick_best_plan(dtPushtExpert* e, double x0, double y0) {
  const int K = e->opts.samples, H = e->opts.horizon;
  double best_cost = INFINITY;
  int best = 0;
  for (int k = 0; k < K; k++) {
    dtStatus st = DT_OK;
    double cost = rollout_cost(e, k, x0, y0, &st);
    if (st) return st;
    if (cost < best_cost) {
      best_cost = cost;
      best = k;
    }
  }
  memcpy(e->plan, e->cand + (size_t)best * H * 2, sizeof(double) * (size_t)H * 2);
  e->has_plan = 1;
  return DT_OK;
}

static dtStatus act_smooth(dtPushtExpert* e, const double* sim_state, float action[2]) {
  const int K = e->opts.samples, H = e->opts.horizon;
  const double vmax = e->opts.max_speed, sa = e->opts.sigma_accel;
  // the target moves on from the last one applied (the state's, else ours, else the pusher)
  double x0 = sim_state[DT_PUSHT_S_AGENT_X], y0 = sim_state[DT_PUSHT_S_AGENT_Y];
  if (sim_state[DT_PUSHT_S_HAS_TARGET] != 0) {
    x0 = sim_state[DT_PUSHT_S_TARGET_X];
    y0 = sim_state[DT_PUSHT_S_TARGET_Y];
  } else if (e->has_last) {
    x0 = e->last[0];
    y0 = e->last[1];
  }
  // candidate 0: the previous plan shifted by one step, its last velocity repeated (or standing)
  double* base = e->cand;
  for (int t = 0; t < H; t++) {
    int src = t + 1 < H ? t + 1 : H - 1;
    base[2 * t] = e->has_plan ? e->plan[2 * src] : 0;
    base[2 * t + 1] = e->has_plan ? e->plan[2 * src + 1] : 0;
  }
  // the others: velocity random walks around that plan (3/4) or around a standing target (1/4)
  for (int k = 1; k < K; k++) {
    double* c = e->cand + (size_t)k * H * 2;
    int from_rest = (k % 4) == 0;
    double wx = 0, wy = 0;
    for (int t = 0; t < H; t++) {
      wx += sa * dt_rng_normal(&e->rng);
      wy += sa * dt_rng_normal(&e->rng);
      double vx = (from_rest ? 0 : base[2 * t]) + wx, vy = (from_rest ? 0 : base[2 * t + 1]) + wy;
      double sp = sqrt(vx * vx + vy * vy);
      if (sp > vmax) {
        vx *= vmax / sp;
        vy *= vmax / sp;
      }
      c[2 * t] = vx;
      c[2 * t + 1] = vy;
    }
  }
  dtStatus st = pick_best_plan(e, x0, y0);
  if (st) return st;
  e->last[0] = clip512(x0 + e->plan[0]);
  e->last[1] = clip512(y0 + e->plan[1]);
  e->has_last = 1;
  action[0] = (float)e->last[0];
  action[1] = (float)e->last[1];
  return DT_OK;
}

dtStatus dt_pusht_expert_act(dtPushtExpert* e, const double* sim_state, float action[2]) {
  if (!e || !sim_state || !action) return dt_error(DT_ERR_ARG, "dt_pusht_expert_act: NULL argument");
  dtStatus st = dt_pusht_set_state(e->sim, sim_state);
  if (st) return st;
  memcpy(e->start, sim_state, sizeof e->start);
  update_mode(e, sim_state);
  if (e->opts.smooth) return act_smooth(e, sim_state, action);
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

  if ((st = pick_best_plan(e, 0, 0))) return st;
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
int dt_pusht_expert_mode(const dtPushtExpert* e) { (void)e; return -1; }
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
