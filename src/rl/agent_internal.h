// SPDX-License-Identifier: MIT
// Internal state of the RL agent, shared by the planner, the update and the policy gradient.
#ifndef DIFFTOP_AGENT_INTERNAL_H
#define DIFFTOP_AGENT_INTERNAL_H

#include "difftop/rl.h"

#define DT_MAX_HORIZON 16

struct dtAgent {
  dtRLConfig cfg;
  int S, A;                  // observation and action sizes
  dtTold model, target;
  dtParams pi_view;          // the pi parameters (not owned) for the pi optimizer
  dtAdam* adam;              // model (TD-MPC loss)
  dtAdam* pi_adam;           // pi loss
  dtAdam* pg_adam;           // DiffTOP policy gradient (the official optim_a)
  dtRng rng;
  dtTape* tape;              // updates and planning
  int64_t updates;           // model updates done

  // MPPI state
  float* mppi_mean;          // [H, A] warm start
  float* mppi_std;           // [H, A]
  float* mppi_actions;       // [H, N, A]
  float* mppi_value;         // [N]
  int* mppi_order;           // [N]
  float* mppi_score;         // [elites]
  int mppi_prev_h;

  // DiffTOP planning
  dtLatentPlan plans[DT_MAX_HORIZON + 1];
  dtObjective objs[DT_MAX_HORIZON + 1];
  dtTrajopt* solvers[DT_MAX_HORIZON + 1];   // one per horizon (batch 1)
  dtTrajopt* bsolvers[DT_MAX_HORIZON + 1];  // batched PG (batch pg_batch)
  int episode_h;             // horizon fixed at the episode's start
  int last_h;                // horizon of the last TO solve
  int64_t act_calls;         // dt_agent_act calls so far
  int64_t plan_call;         // the call whose TO solve left its plan in a_best (-1: none)
  float* a_init;             // [max(pg_batch,1), n_max]
  float* a_final;
  float* a_best;
  float* dL_da;
  int* status;
  int pg_count;              // PG terms accumulated since the last PG step

  // update scratch
  float *u_obs, *u_act, *u_rew, *u_w, *u_prio;
  int64_t* u_idx;
  float* u_zdet;             // pixels: detached latents [H+1, B, Z] for the pi update

  double timers[3];          // planning, update, PG backward (seconds)
};

// Direct access to a replay buffer's storage (for checkpoints).
typedef struct dtReplayView {
  int obs_dim, action_dim, episode_len, slots;
  int *filled, *next;
  float* max_prio;
  float *obs, *actions, *rewards, *prio;  // [slots, L+1, S], [slots, L, A], [slots, L] x2
  int pixels;                             // 1: a pixel buffer (obs is NULL; frames instead)
  uint8_t* frames;                        // pixels: [slots, L+1, 3, H, W] newest frames
  int frame_h, frame_w;                   // pixels: H, W
} dtReplayView;

// Fill v with pointers into r's storage.
dtStatus dt_replay_view(dtReplay* r, dtReplayView* v);

// The TD-MPC update for pixel observations (rl/pixels.c).
dtStatus dt_agent_update_pixels(dtAgent* a, dtReplay* r, int64_t step, dtUpdateInfo* info);

// The end of a TD-MPC update: combine the per-sample loss terms, step the model, refresh the
// PER priorities and fill info (shared by the state and pixel updates).
dtStatus dt_agent_apply_td_loss(dtAgent* a, dtReplay* r, dtTensor* cons, dtTensor* rew,
                                dtTensor* val, dtTensor* qs, float* prio, dtUpdateInfo* info);

// TD-MPC's pi update on detached latents zdet [H+1, B, Z] (Q frozen), then the EMA of the
// target network every update_freq updates.
dtStatus dt_agent_pi_update(dtAgent* a, const float* zdet, dtUpdateInfo* info);

// MPPI planning (TD-MPC's plan); writes the action for obs.
dtStatus dt_agent_mppi(dtAgent* a, const float* obs, int64_t step, int t0, int eval,
                       float* action);

// MPPI's iterations over horizon H (mean and std in the agent, warm-started from the previous
// call unless t0); *elite is the index of the sequence drawn from the elites by their scores.
dtStatus dt_agent_mppi_plan(dtAgent* a, const float* obs, int H, int64_t step, int t0,
                            int* elite);

// The H actions [H, A] of MPPI sample `elite` from the last dt_agent_mppi_plan.
void dt_agent_mppi_sequence(const dtAgent* a, int elite, int H, float* seq);

// Horizon of the planner at agent step `step` (linear schedule, floored).
int dt_agent_horizon(const dtRLConfig* c, int64_t step);

// Minimum MPPI std at agent step `step` (linear schedule).
float dt_agent_min_std(const dtRLConfig* c, int64_t step);

// pi(z) with TD-MPC's clipped exploration noise (std > 0) on the tape; straight-through clamp.
dtTensor* dt_agent_pi(dtAgent* a, dtTape* t, const dtTold* m, dtTensor* z, float std);

// An observation batch [B, S] on the tape ([B, C, H, W] images in pixel mode).
dtTensor* dt_agent_obs_input(dtAgent* a, dtTape* t, int B, const float* obs);

// min(Qs1, Qs2)(obs, action) of a model's state critics as [B] (either modality).
dtTensor* dt_agent_min_state_q(dtTape* t, const dtTold* m, dtTensor* obs, dtTensor* action);

// min(Q1, Q2) of a model at (z, action) as [B].
dtTensor* dt_agent_min_q(dtTape* t, const dtMLP* q1, const dtMLP* q2, dtTensor* z,
                         dtTensor* action);

#endif
