// SPDX-License-Identifier: MIT
// Model-based RL: the TOLD world model, prioritized replay, MPPI, the TD-MPC update and the
// DiffTOP agent that plans by differentiable trajectory optimization.
#ifndef DIFFTOP_RL_H
#define DIFFTOP_RL_H

#include "env.h"
#include "trajopt.h"

#ifdef __cplusplus
extern "C" {
#endif

//---------------------------------------------------------------------------------------------
// configuration (every key of configs/default.yaml)

// Algorithms.
typedef enum dtAlgo { DT_ALGO_TDMPC = 0, DT_ALGO_DIFFTOP = 1 } dtAlgo;

// Where the DiffTOP policy-gradient loss is taken.
typedef enum dtPgMode {
  DT_PG_OFFICIAL = 0,  // live states, batch 1, summed over the episode, one step per episode
  DT_PG_BATCHED = 1    // replay states through the batched solver every pg_every updates
} dtPgMode;

// All settings of an RL run; dt_rl_config_default() gives the official values.
typedef struct dtRLConfig {
  // run
  char task[64];
  int algo;                 // dtAlgo
  uint64_t seed;
  int64_t train_steps;      // env steps (simulator control steps)
  int action_repeat;        // 0: the task's default
  int episode_length;       // env steps per episode (1000)
  int eval_freq;            // env steps between evaluations
  int eval_episodes;
  int save_freq;            // env steps between checkpoints (0: only at evaluations)
  // model
  int latent_dim, mlp_dim, enc_dim;
  // observations (official pixels.yaml: obs pixels, frame_stack 3, img_size 84, 32 channels)
  int obs;                  // dtObsType: DT_OBS_STATE or DT_OBS_PIXELS (config "state"/"pixels")
  int frame_stack;          // pixels: RGB frames stacked on the channels (3)
  int img_size;             // pixels: square image side (84)
  int num_channels;         // pixels: channels of every conv of the encoders (32)
  // optimisation
  float discount;
  int batch_size;
  float lr;
  int horizon;              // loss horizon
  int seed_steps;           // agent steps of uniform random actions
  float reward_coef, value_coef, consistency_coef, rho;
  float grad_clip_norm;
  int update_freq;          // EMA period (updates)
  float tau;
  int64_t max_buffer_size;
  float per_alpha, per_beta, per_eps;
  // schedules (linear over horizon_schedule_steps / std_schedule_steps agent steps)
  int horizon_start, horizon_end, horizon_schedule_steps;
  float std_start, std_end;
  int std_schedule_steps;
  // MPPI
  int iterations, num_samples, num_elites;
  float mixture_coef, min_std, temperature, momentum;
  // DiffTOP
  int mppi_steps;           // agent steps of MPPI after the seed steps (official 1000)
  int max_iterations;
  float step_size, damping;
  int solver;               // dtSolver
  int backward_mode;        // dtBackward
  int backward_num_iterations;
  float grad_clip_norm_a;
  float pg_coef;            // c0
  int pg_mode;              // dtPgMode
  int pg_every;             // batched mode: a PG step every pg_every model updates
  int pg_batch;             // batched mode: replay states per PG step
  float init_std;           // noise of the pi-rollout initialisation (0.05)
  int lm_project;           // 1: LM iterates stay in the action box (0: official)
  int shift_init;           // 1: within an episode, start from the previous plan advanced by one
                            // step, its last step from the pi rollout (0: the pi rollout)
  int explore;              // 1: while training, add N(0, s^2) to the trajectory optimizer's
                            // executed action, s = TD-MPC's std schedule, or with mppi_init the
                            // MPPI elites' std of the first action as TD-MPC (0: official, none)
  int mppi_init;            // 1: start the solver from the MPPI elite TD-MPC would execute (its
                            // 25 pi trajectories included) instead of the pi rollout (0: official)
  // ablations
  int no_backward;          // solve without differentiating (paper App. B.1)
  int no_pi_init;           // zero initialisation instead of the pi rollout
  int no_reward_loss;
  int no_dynamics_loss;
  // housekeeping
  int threads;              // BLAS threads (1 is fastest on this 2-vCPU machine)
  int progress;             // 1: progress bar on stderr
} dtRLConfig;

// The official settings (TD-MPC state-based DMC defaults plus DiffTORI's block).
DTAPI void dt_rl_config_default(dtRLConfig* cfg);

// Set one key from text ("lr", "1e-3"); unknown keys list near matches in the error.
DTAPI dtStatus dt_rl_config_set(dtRLConfig* cfg, const char* key, const char* value);

// Every key as text, one "key: value" per line, into buf (for resolved configs).
DTAPI dtStatus dt_rl_config_dump(const dtRLConfig* cfg, char* buf, size_t size);

// Names of all keys, NULL-terminated.
DTAPI const char* const* dt_rl_config_keys(void);

//---------------------------------------------------------------------------------------------
// the TOLD world model

// TOLD networks: encoder h, dynamics d, reward R, policy pi, twin latent Q, and DiffTOP's twin
// state critics Qs (on the raw state). state_dict names follow the official code.
//
// Pixel mode (cfg->obs = DT_OBS_PIXELS): observations are images [C, S, S] (C = 3 frame_stack)
// given as floats 0..255 (uint8 values), obs_dim = C S S. The encoder h is then the conv net
// cenc ("_encoder.{1,3,5,7}" convs, "_encoder.10" Linear: torch.nn.Sequential indices with
// NormalizeImg at 0) instead of the MLP enc, and each state critic Qs_i has its own conv encoder
// cqs_i ("_Qs1_enc.*", "_Qs2_enc.*", same shape as h) followed by its usual head "_Qs1.*" on
// [feature (Z), a]. Use dt_told_encode / dt_told_state_q, which serve both modes.
typedef struct dtTold {
  int obs_dim, action_dim, latent_dim, mlp_dim, enc_dim, state_critics;
  dtParams params;
  dtMLP enc, dyn, rew, pi, q1, q2, qs1, qs2;
  int pixels;                        // 1: pixel mode
  int obs_shape[3];                  // pixels: [C, H, W]
  dtConvNet cenc, cqs1, cqs2;        // pixels: the conv encoders of h, Qs1 and Qs2
} dtTold;

// Create a TOLD with TD-MPC's initialisation (orthogonal, zero last layers of R, Q, Qs).
DTAPI dtStatus dt_told_create(dtTold* m, int obs_dim, int action_dim, const dtRLConfig* cfg,
                              int state_critics, dtRng* rng);

// A deep copy (the target network).
DTAPI dtStatus dt_told_clone(dtTold* dst, const dtTold* src);

// Free a model's parameters.
DTAPI void dt_told_free(dtTold* m);

// z = h(obs) for obs [B, obs_dim] (or [B, C, H, W] in pixel mode) on the tape.
DTAPI dtTensor* dt_told_encode(dtTape* t, const dtTold* m, dtTensor* obs);

// The state critic Qs_which (1 or 2) at (obs, action): [B, 1]; pixel mode encodes obs with the
// critic's own conv encoder.
DTAPI dtTensor* dt_told_state_q(dtTape* t, const dtTold* m, int which, dtTensor* obs,
                                dtTensor* action);

// The latent planning objective of a model (encoder inside) for trajopt.
DTAPI void dt_told_plan(const dtTold* m, int horizon, float gamma, dtLatentPlan* plan);

//---------------------------------------------------------------------------------------------
// prioritized replay (whole episodes, TD-MPC's rules)

// Episodes of fixed length with PER priorities.
typedef struct dtReplay dtReplay;

// Create a buffer for capacity transitions of episodes of episode_len steps.
DTAPI dtStatus dt_replay_new(int obs_dim, int action_dim, int episode_len, int64_t capacity,
                             int horizon, const dtRLConfig* cfg, dtReplay** out);

// Create a buffer for pixel observations [3 frame_stack, height, width] (uint8 values). Only
// the newest RGB frame of each step is stored; dt_replay_sample rebuilds the stacks (oldest
// frame first, the episode's first frame repeated before its start, as the env's reset does)
// and writes them as floats 0..255.
DTAPI dtStatus dt_replay_new_pixels(int frame_stack, int height, int width, int action_dim,
                                    int episode_len, int64_t capacity, int horizon,
                                    const dtRLConfig* cfg, dtReplay** out);

// Add an episode to a pixel buffer: obs [L+1, 3 frame_stack, H, W] uint8 (newest frame last).
DTAPI dtStatus dt_replay_add_pixels(dtReplay* r, const uint8_t* obs, const float* actions,
                                    const float* rewards);

// Free a buffer.
DTAPI void dt_replay_free(dtReplay* r);

// Add an episode: obs [L+1, obs_dim], actions [L, A], rewards [L].
DTAPI dtStatus dt_replay_add(dtReplay* r, const float* obs, const float* actions,
                             const float* rewards);

// Transitions stored.
DTAPI int64_t dt_replay_size(const dtReplay* r);

// Sample B sequences of horizon+1 steps: obs [H+1, B, obs], actions [H, B, A], rewards
// [H, B], importance weights [B], indices [B] (for dt_replay_update).
DTAPI dtStatus dt_replay_sample(dtReplay* r, int B, dtRng* rng, float* obs, float* actions,
                                float* rewards, float* weights, int64_t* idx);

// New priorities for sampled indices.
DTAPI void dt_replay_update(dtReplay* r, const int64_t* idx, const float* prio, int B);

//---------------------------------------------------------------------------------------------
// the agent

// A TD-MPC or DiffTOP agent: model, target, optimizers, planner state and scratch.
typedef struct dtAgent dtAgent;

// Loss terms of the last update.
typedef struct dtUpdateInfo {
  float consistency, reward, value, state_value, pi, total, grad_norm;
  float weighted_loss;
} dtUpdateInfo;

// Create an agent for an environment's spaces.
DTAPI dtStatus dt_agent_new(const dtRLConfig* cfg, int obs_dim, int action_dim, dtAgent** out);

// Free an agent.
DTAPI void dt_agent_free(dtAgent* a);

// The model (for checkpoints and inspection).
DTAPI dtTold* dt_agent_model(dtAgent* a);

// The target model.
DTAPI dtTold* dt_agent_target(dtAgent* a);

// Choose an action for obs at agent step `step` (sets the schedules); t0 = 1 on an episode's
// first step; eval = 1 disables exploration noise.
DTAPI dtStatus dt_agent_act(dtAgent* a, const float* obs, int64_t step, int t0, int eval,
                            float* action);

// One TD-MPC model update (plus the state critics) from replay at agent step `step`.
DTAPI dtStatus dt_agent_update(dtAgent* a, dtReplay* r, int64_t step, dtUpdateInfo* info);

// DiffTOP official scheme: accumulate the PG gradient of the last planned action (after
// dt_agent_act at a TO step); dt_agent_pg_step applies it at episode end.
DTAPI dtStatus dt_agent_pg_accumulate(dtAgent* a, const float* obs);

// Apply the accumulated PG gradient (clip grad_clip_norm_a, separate Adam) and reset it.
DTAPI dtStatus dt_agent_pg_step(dtAgent* a, float* grad_norm);

// Batched scheme: one PG step on B replay states through the batched solver.
DTAPI dtStatus dt_agent_pg_batch(dtAgent* a, dtReplay* r, float* pg_loss);

// Which planner dt_agent_act uses at this step: 0 random, 1 MPPI, 2 trajectory optimization.
DTAPI int dt_agent_planner(const dtAgent* a, int64_t step, int eval);

// Per-phase wall-clock totals in seconds: [0] planning, [1] model update, [2] PG backward.
DTAPI const double* dt_agent_timers(const dtAgent* a);

// Generator of the agent (for checkpoints).
DTAPI dtRng* dt_agent_rng(dtAgent* a);

// Optimizers (model, pi, PG) for checkpoints.
DTAPI dtAdam* dt_agent_adam(dtAgent* a, int which);

#ifdef __cplusplus
}
#endif
#endif
