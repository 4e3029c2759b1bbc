// SPDX-License-Identifier: MIT
// Training and evaluation runs of the RL agents.
#ifndef DIFFTOP_RLTRAIN_H
#define DIFFTOP_RLTRAIN_H

#include "rl.h"

#ifdef __cplusplus
extern "C" {
#endif

// Summary of a training run.
typedef struct dtTrainResult {
  double final_eval;        // mean return of the last evaluation
  double best_eval;         // best mean evaluation return
  int64_t env_steps;
  int episodes;
  double seconds;           // wall time
  double phase_seconds[3];  // planning, model update, PG backward
} dtTrainResult;

// Train an agent from cfg, writing config.yaml, train.csv and eval.csv into run_dir.
DTAPI dtStatus dt_rl_train(const dtRLConfig* cfg, const char* run_dir, dtTrainResult* result);

// Train, or with resume = 1 continue run_dir from its checkpoint.safetensors exactly (same
// config: optimizer states, replay, generators and counters are restored).
DTAPI dtStatus dt_rl_train_ex(const dtRLConfig* cfg, const char* run_dir, int resume,
                              dtTrainResult* result);

// Mean (and std) return of `episodes` evaluation episodes without exploration noise.
DTAPI dtStatus dt_rl_evaluate(dtAgent* agent, dtEnv* env, int episodes, int64_t step,
                              double* mean, double* std, double* returns);

#ifdef __cplusplus
}
#endif
#endif
