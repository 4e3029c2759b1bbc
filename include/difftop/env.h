// SPDX-License-Identifier: MIT
// Environments in gymnasium's shape: make by name, reset, step, specs, render, state save/restore.
#ifndef DIFFTOP_ENV_H
#define DIFFTOP_ENV_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

// An environment instance (one per thread).
typedef struct dtEnv dtEnv;

// Observation kinds.
typedef enum dtObsType {
  DT_OBS_STATE = 0,   // float32 vector
  DT_OBS_PIXELS = 1   // uint8 [3 * frame_stack, H, W] (CHW, frames stacked on channels)
} dtObsType;

// Element types of observations.
typedef enum dtElemType { DT_F32 = 0, DT_U8 = 1 } dtElemType;

// Options for dt_env_make; start from dt_env_default_opts().
typedef struct dtEnvOpts {
  uint64_t seed;        // seed of the first reset
  dtObsType obs;        // state or pixels
  int action_repeat;    // simulator control steps per env step; 0 = the task's default
  int frame_stack;      // frames stacked for pixels (default 3)
  int image_size;       // square image side for pixels (0 = task default: 84, Push-T 96)
  int camera;           // camera index for pixels (default 0)
  int max_steps;        // env steps per episode; 0 = the task's default (1000 / action_repeat)
  int render_shadows;   // 1: shadows on (slower); default 0
  int render_msaa;      // multisample count; 0 = off (default)
} dtEnvOpts;

// Shape, type and bounds of an observation or action.
typedef struct dtSpace {
  int ndim;
  int shape[4];
  int64_t size;         // product of the shape
  dtElemType dtype;
  float low, high;      // bounds (-inf/inf when unbounded)
} dtSpace;

// What a step reports besides the observation.
typedef struct dtStepInfo {
  float reward;         // summed over the action repeat
  int terminated;       // the task ended (Push-T success); DMC tasks never terminate
  int truncated;        // the time limit was reached
  int success;          // 1/0 where the task defines success, -1 otherwise
} dtStepInfo;

// Default options: seed 0, state observations, task defaults elsewhere.
DTAPI dtEnvOpts dt_env_default_opts(void);

// Make an environment by name (e.g. "cartpole-swingup", "pusht"); lists known names on error.
DTAPI dtStatus dt_env_make(const char* name, const dtEnvOpts* opts, dtEnv** env);

// Free an environment (NULL is allowed).
DTAPI void dt_env_free(dtEnv* env);

// Names of all tasks, NULL-terminated.
DTAPI const char* const* dt_env_names(void);

// Name of this environment's task.
DTAPI const char* dt_env_name(const dtEnv* env);

// Observation space.
DTAPI const dtSpace* dt_env_obs_space(const dtEnv* env);

// Action space (float32, bounds [-1, 1] for DMC tasks).
DTAPI const dtSpace* dt_env_action_space(const dtEnv* env);

// Start an episode; seed < 0 continues the env's own stream. Writes the first observation.
DTAPI dtStatus dt_env_reset(dtEnv* env, int64_t seed, void* obs);

// Apply an action of action_len floats; writes the next observation and the step's info.
// NaN/Inf or a wrong length is an error and leaves the env unchanged.
DTAPI dtStatus dt_env_step(dtEnv* env, const float* action, int action_len, void* obs,
                           dtStepInfo* info);

// Write the current observation again (e.g. after dt_env_set_state) without stepping.
DTAPI dtStatus dt_env_observe(dtEnv* env, void* obs);

// Render the current state as RGB (H x W x 3, top row first) from a camera (-1 = free camera).
DTAPI dtStatus dt_env_render(dtEnv* env, int width, int height, int camera, uint8_t* rgb);

// Number of doubles in the simulator state (for clone/restore).
DTAPI int dt_env_state_size(const dtEnv* env);

// Copy the full simulator state (physics, time, step counter) into state.
DTAPI dtStatus dt_env_get_state(const dtEnv* env, double* state);

// Restore a state from dt_env_get_state; observations after it match the original's.
DTAPI dtStatus dt_env_set_state(dtEnv* env, const double* state);

// The env's own generator (resets draw from it); for checkpoints that resume exactly.
DTAPI dtRng* dt_env_rng(dtEnv* env);

// Default action repeat of a task (TD-MPC's), 0 if unknown.
DTAPI int dt_env_default_action_repeat(const char* name);

// Simulator control steps per env step of this env.
DTAPI int dt_env_action_repeat(const dtEnv* env);

// Env steps per episode (the time limit) of this env.
DTAPI int dt_env_max_steps(const dtEnv* env);

// Env steps taken in the current episode.
DTAPI int64_t dt_env_step_count(const dtEnv* env);

//---------------------------------------------------------------------------------------------
// experts: controllers with access to the true simulator state, for demonstrations

// An expert policy for one task.
typedef struct dtExpert dtExpert;

// Make the expert of a task (DT_ERR_NOT_FOUND, listing the tasks that have one, if none).
DTAPI dtStatus dt_expert_new(const char* env_name, uint64_t seed, dtExpert** expert);

// Free an expert (NULL is allowed).
DTAPI void dt_expert_free(dtExpert* expert);

// Names of the tasks that have an expert, NULL-terminated.
DTAPI const char* const* dt_expert_names(void);

// The expert's action for env's current state (env must be the expert's task); writes
// dt_env_action_space(env)->size floats in [-1, 1].
DTAPI dtStatus dt_expert_act(dtExpert* expert, const dtEnv* env, float* action);

#ifdef __cplusplus
}
#endif
#endif
