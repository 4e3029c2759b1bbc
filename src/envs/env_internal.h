// SPDX-License-Identifier: MIT
// The task interface behind dtEnv: each task family implements this vtable.
#ifndef DIFFTOP_ENV_INTERNAL_H
#define DIFFTOP_ENV_INTERNAL_H

#include "difftop/env.h"

// One task family (DMC-on-MuJoCo, Push-T, ...) registers a table of these.
typedef struct dtTaskDef {
  const char* name;              // "cartpole-swingup"
  int default_action_repeat;     // TD-MPC's
  int default_max_steps;         // env steps at action repeat 1 (1000 for DMC, 300 for Push-T)
  // create the task's private state; fills obs/action spaces
  dtStatus (*create)(const struct dtTaskDef* def, const dtEnvOpts* opts, void** impl,
                     dtSpace* obs_space, dtSpace* act_space);
  void (*destroy)(void* impl);
  // reset physics with the generator, write the state observation (float) or nothing (pixels)
  dtStatus (*reset)(void* impl, dtRng* rng);
  // one control step (action already validated); returns the reward of this control step
  dtStatus (*step)(void* impl, const float* action, float* reward, int* terminated, int* success);
  // state observation into obs (float32)
  void (*observe)(void* impl, float* obs);
  // RGB render, top row first
  dtStatus (*render)(void* impl, int width, int height, int camera, uint8_t* rgb);
  int (*state_size)(void* impl);
  void (*get_state)(void* impl, double* state);
  void (*set_state)(void* impl, const double* state);
} dtTaskDef;

// The task's private state behind an env (for experts and tools in src/envs/).
void* dt_env_impl(const dtEnv* env);

// The task definition behind an env.
const dtTaskDef* dt_env_def(const dtEnv* env);

#endif
