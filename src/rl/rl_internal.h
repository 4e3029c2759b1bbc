// SPDX-License-Identifier: MIT
// Internal pieces of the training loop shared with the checkpoint code.
#ifndef DIFFTOP_RL_INTERNAL_H
#define DIFFTOP_RL_INTERNAL_H

#include "agent_internal.h"

// Counters of a training run that a checkpoint restores.
typedef struct dtRunState {
  int64_t step;        // agent steps done
  int episode;
  int64_t next_eval;   // env step of the next evaluation
  int first_update;    // the seed-phase burst is still to come
  double best, last_eval;
  dtRng* env_rng;      // the training env's generator
  dtRng* eval_rng;     // the evaluation env's generator
} dtRunState;

// Save the model alone (state_dict names, run metadata).
dtStatus dt_rl_save_model(const char* path, dtAgent* a, int64_t env_step);

// Load a model saved by dt_rl_save_model into an agent of the same shapes.
dtStatus dt_rl_load_model(const char* path, dtAgent* a);

// Save everything a resumed run needs.
dtStatus dt_rl_save_checkpoint(const char* path, dtAgent* a, dtReplay* r, const dtRunState* rs);

// Restore a training checkpoint into a freshly created agent and buffer of the same config.
dtStatus dt_rl_load_checkpoint(const char* path, dtAgent* a, dtReplay* r, dtRunState* rs);

#endif
