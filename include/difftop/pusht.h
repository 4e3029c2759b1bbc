// SPDX-License-Identifier: MIT
// Push-T on Chipmunk2D: a plain simulator API (beside the generic dtEnv task "pusht") and its expert.
#ifndef DIFFTOP_PUSHT_H
#define DIFFTOP_PUSHT_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

// A Push-T simulator: a kinematic disk pusher, a T block, four walls (one per thread).
typedef struct dtPusht dtPusht;

// Doubles in a simulator state (dt_pusht_get_state / dt_pusht_set_state).
#define DT_PUSHT_STATE_SIZE 17

// Layout of a simulator state: agent position and velocity, block centre of gravity (world),
// angle, velocity, angular velocity, the solver's bias velocities, the last target, step count.
enum {
  DT_PUSHT_S_AGENT_X = 0, DT_PUSHT_S_AGENT_Y = 1, DT_PUSHT_S_AGENT_VX = 2, DT_PUSHT_S_AGENT_VY = 3,
  DT_PUSHT_S_COG_X = 4, DT_PUSHT_S_COG_Y = 5, DT_PUSHT_S_ANGLE = 6,
  DT_PUSHT_S_VX = 7, DT_PUSHT_S_VY = 8, DT_PUSHT_S_W = 9,
  DT_PUSHT_S_BIAS_VX = 10, DT_PUSHT_S_BIAS_VY = 11, DT_PUSHT_S_BIAS_W = 12,
  DT_PUSHT_S_TARGET_X = 13, DT_PUSHT_S_TARGET_Y = 14, DT_PUSHT_S_HAS_TARGET = 15,
  DT_PUSHT_S_STEPS = 16
};

// Success threshold on coverage (reward = clip(coverage / 0.95, 0, 1)).
#define DT_PUSHT_SUCCESS_COVERAGE 0.95

// Create a simulator in the default start pose (agent (256,400), block (256,300) at angle 0).
DTAPI dtStatus dt_pusht_new(dtPusht** out);

// Free a simulator (NULL is allowed).
DTAPI void dt_pusht_free(dtPusht* sim);

// Start an episode from a PCG32 seed: agent U{50..449}^2, block U{100..399}^2, angle 2*pi*N(0,1) - pi.
DTAPI dtStatus dt_pusht_reset(dtPusht* sim, uint64_t seed);

// Start an episode exactly as diffusion_policy's PushTEnv.reset(seed) does (numpy RandomState stream).
DTAPI dtStatus dt_pusht_reset_numpy(dtPusht* sim, uint32_t seed);

// Start an episode from pose = [agent x, agent y, block x, block y, block angle]; legacy = 1 sets the
// block position before its angle (gym-pusht's order), 0 the angle first (diffusion_policy's). Then
// one 0.01 s physics step, as upstream.
DTAPI dtStatus dt_pusht_reset_to(dtPusht* sim, const double pose[5], int legacy);

// One control step (10 physics substeps of the PD-driven pusher) towards target = action[0..1]
// in pixels; the target is clipped to [0, 512]. reward, coverage and success may be NULL.
DTAPI dtStatus dt_pusht_step(dtPusht* sim, const double action[2], double* reward, double* coverage,
                             int* success);

// Copy the full simulator state (DT_PUSHT_STATE_SIZE doubles).
DTAPI dtStatus dt_pusht_get_state(const dtPusht* sim, double* state);

// Restore a state from dt_pusht_get_state; the following steps then repeat bit for bit.
DTAPI dtStatus dt_pusht_set_state(dtPusht* sim, const double* state);

// Set body poses and velocities directly: agent = [x, y, vx, vy], block = [x, y, angle, vx, vy, w]
// with (x, y) the block's origin (midpoint of the crossbar's outer edge); no physics step.
DTAPI dtStatus dt_pusht_set_bodies(dtPusht* sim, const double agent[4], const double block[6]);

// Observation [agent x, agent y, block x, block y, block angle mod 2*pi] of the current state.
DTAPI void dt_pusht_observe(const dtPusht* sim, double obs[5]);

// Observation of a state vector from dt_pusht_get_state (no simulator needed).
DTAPI dtStatus dt_pusht_state_obs(const double* state, double obs[5]);

// Coverage of the goal by the block now: area(T & goal) / area(goal) in [0, 1].
DTAPI double dt_pusht_coverage(const dtPusht* sim);

// Coverage of the goal by a block at origin (x, y) and angle, by exact polygon intersection.
DTAPI double dt_pusht_coverage_of_pose(double x, double y, double angle);

// Reward of a coverage: clip(coverage / 0.95, 0, 1).
DTAPI double dt_pusht_reward_of_coverage(double coverage);

// Control steps taken since the last reset.
DTAPI int64_t dt_pusht_steps(const dtPusht* sim);

// Solver mode: 0 (default) drops cached contact impulses and rebuilds the broadphase at every control
// step, so a state fully determines the future (exact clone/restore); 1 keeps them across control
// steps as pymunk does (closer to upstream trajectories, but restoring a state is then approximate).
DTAPI void dt_pusht_set_upstream_solver(dtPusht* sim, int on);

// Render the scene as RGB (height x width x 3, top row = y 0, like upstream) at any size.
DTAPI dtStatus dt_pusht_render(const dtPusht* sim, int width, int height, uint8_t* rgb);

// Map an action in [-1, 1]^2 to the original pixel action: 256 + 256 * u (then clipped to [0, 512]).
DTAPI void dt_pusht_action_from_unit(const float unit[2], float pixels[2]);

//---------------------------------------------------------------------------------------------
// expert: sampling MPC on the true simulator (smooth target velocities by default, or the original
// free waypoints)

// A Push-T expert (its own simulator copy and plan buffers, allocated once).
typedef struct dtPushtExpert dtPushtExpert;

// Expert settings; start from dt_pusht_expert_default_opts().
typedef struct dtPushtExpertOpts {
  int samples;         // candidate plans per action (default 64; waypoints: 128)
  int horizon;         // control steps per plan (default 25; waypoints: 10)
  double sigma;        // waypoints: random-walk step of the waypoint noise in pixels (default 30)
  double w_angle;      // cost per radian of angle error (default 60)
  double w_reach;      // cost per pixel of pusher-to-block distance beyond 70 px (default 0.1)
  double w_coverage;   // reward per unit coverage (default 200)
  int smooth;          // 1 (default): plan target velocities, a smooth mouse-like trace; 0: the
                       // original planner over free waypoint random walks (jumpy targets)
  double max_speed;    // smooth: top speed of the target in pixels per control step (default 12)
  double sigma_accel;  // smooth: random-walk step of the target velocity, px/step^2 (default 4)
  double w_lead;       // cost per pixel of target-to-pusher distance (default 0)
  int multimodal;      // 1: multimodal demos. At its first action of an episode the expert draws
                       // (from its seeded RNG) a mode and keeps it: it first steers the pusher to a
                       // detour point beside the block, C + s R p with C the block's centre, p the
                       // unit vector perpendicular to the pusher-to-block direction (u rotated by
                       // +90 degrees in pixel coordinates) and s = +1 (mode 0) or -1 (mode 1), i.e.
                       // it goes around the block on one side or the other, then plans for the
                       // task as usual. Default 0 (unimodal; no extra random draw).
  double detour;       // multimodal: R, the detour point's distance from the block's centre in px
                       // (default 110)
} dtPushtExpertOpts;

// Default expert settings: the smooth planner (smooth = 1).
DTAPI dtPushtExpertOpts dt_pusht_expert_default_opts(void);

// Settings of the original waypoint expert: smooth = 0, 128 plans of 10 steps, sigma 30 px.
DTAPI dtPushtExpertOpts dt_pusht_expert_waypoint_opts(void);

// Create an expert; opts may be NULL for the defaults. Deterministic for a seed.
DTAPI dtStatus dt_pusht_expert_new(uint64_t seed, const dtPushtExpertOpts* opts,
                                   dtPushtExpert** out);

// Forget the previous plan (call at every episode start).
DTAPI void dt_pusht_expert_reset(dtPushtExpert* expert);

// Choose the next action (pixel target) for a simulator state from dt_pusht_get_state.
DTAPI dtStatus dt_pusht_expert_act(dtPushtExpert* expert, const double* sim_state, float action[2]);

// The mode of the current episode when multimodal (0 or 1; drawn at the episode's first action),
// else -1 (also before that first action).
DTAPI int dt_pusht_expert_mode(const dtPushtExpert* expert);

// Free an expert (NULL is allowed).
DTAPI void dt_pusht_expert_free(dtPushtExpert* expert);

// Run one expert episode of at most max_steps from dt_pusht_reset_numpy(seed) (numpy = 1) or
// dt_pusht_reset(seed); writes the episode's max reward (the upstream score) and steps taken.
DTAPI dtStatus dt_pusht_expert_episode(dtPushtExpert* expert, dtPusht* sim, uint64_t seed, int numpy,
                                       int max_steps, double* score, int* steps);

#ifdef __cplusplus
}
#endif
#endif
