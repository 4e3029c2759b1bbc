// SPDX-License-Identifier: MIT
// difftop bench rl: per-phase costs of TD-MPC and DiffTOP agents (env step, MPPI planning,
// trajectory-optimization planning with and without the policy-gradient backward, our variant's
// MPPI-started solve, model update) and the agent steps/s they imply, at the official sizes and
// the CPU profile.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "rl/agent_internal.h"

typedef struct profile {
  const char* name;
  int mlp, enc, batch, samples, elites;
} profile;

static double median(double* v, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      double t = v[j];
      v[j] = v[j - 1], v[j - 1] = t;
    }
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// median ms of reps calls of one phase
#define TIME_MS(reps, expr, out)                                       \
  do {                                                                 \
    double ts_[64];                                                    \
    int n_ = (reps) < 64 ? (reps) : 64;                                \
    for (int r_ = 0; r_ < n_; r_++) {                                  \
      double t0_ = dt_time_s();                                        \
      if ((expr) != DT_OK) {                                           \
        fprintf(stderr, "bench rl: %s\n", dt_last_error());            \
        return 1;                                                      \
      }                                                                \
      ts_[r_] = (dt_time_s() - t0_) * 1e3;                             \
    }                                                                  \
    out = median(ts_, n_);                                             \
  } while (0)

static int bench_profile(const profile* p, const char* task, int reps, int json) {
  dtRLConfig c;
  dt_rl_config_default(&c);
  snprintf(c.task, sizeof c.task, "%s", task);
  c.mlp_dim = p->mlp, c.enc_dim = p->enc, c.batch_size = p->batch;
  c.num_samples = p->samples, c.num_elites = p->elites;
  c.lm_project = 1;
  dtEnv* env = NULL;
  dtEnvOpts eo = dt_env_default_opts();
  if (dt_env_make(task, &eo, &env)) {
    fprintf(stderr, "bench rl: %s\n", dt_last_error());
    return 1;
  }
  int S = (int)dt_env_obs_space(env)->size, A = dt_env_action_space(env)->shape[0];
  int L = c.episode_length / dt_env_action_repeat(env);
  dtAgent* a = NULL;
  dtReplay* r = NULL;
  if (dt_agent_new(&c, S, A, &a) || dt_replay_new(S, A, L, 20 * (int64_t)L, c.horizon, &c, &r)) {
    fprintf(stderr, "bench rl: %s\n", dt_last_error());
    return 1;
  }
  // a buffer of random episodes to update from
  float* obs = calloc((size_t)(L + 1) * S, sizeof(float));
  float* act = calloc((size_t)L * A, sizeof(float));
  float* rew = calloc((size_t)L, sizeof(float));
  dtRng rng;
  dt_rng_seed(&rng, 1);
  dtStepInfo info;
  for (int e = 0; e < 4; e++) {
    dt_env_reset(env, -1, obs);
    for (int t = 0; t < L; t++) {
      dt_rng_fill_uniform(&rng, act + t * A, (size_t)A, -1, 1);
      dt_env_step(env, act + t * A, A, obs + (t + 1) * S, &info);
      rew[t] = info.reward;
    }
    dt_replay_add(r, obs, act, rew);
  }
  dt_env_reset(env, -1, obs);
  float action[64];
  int64_t late = 100000;  // past every schedule: H = 5, MPPI floor std, TO planner
  double env_ms, mppi_ms, to_ms, to_pg_ms, upd_ms, var_pg_ms;
  TIME_MS(reps * 20, dt_env_step(env, act, A, obs, &info), env_ms);
  // updates first: fresh reward and Q heads are zero (TD-MPC's init), so G = 0 and the LM
  // would stop after one iteration; after these the planner does its real work
  TIME_MS(reps > 10 ? reps : 10, dt_agent_update(a, r, 0, NULL), upd_ms);
  TIME_MS(reps, dt_agent_mppi(a, obs, late, 1, 0, action), mppi_ms);
  a->cfg.algo = DT_ALGO_DIFFTOP;
  TIME_MS(reps, dt_agent_act(a, obs, late, 1, 0, action), to_ms);
  TIME_MS(reps, (dt_agent_act(a, obs, late, 1, 0, action) || dt_agent_pg_accumulate(a, obs)),
          to_pg_ms);
  // iterations of the last TO solve (LM with the official convergence tests)
  const dtTrajoptStats* ts = a->last_h > 0 ? dt_trajopt_stats(a->solvers[a->last_h]) : NULL;
  int to_iters = ts ? ts->iterations : 0;
  // our variant (mppi_init=1 explore=1): MPPI, then the solve started at its elite, then the PG
  a->cfg.mppi_init = 1, a->cfg.explore = 1;
  TIME_MS(reps, (dt_agent_act(a, obs, late, 1, 0, action) || dt_agent_pg_accumulate(a, obs)),
          var_pg_ms);
  // one training agent step = env + planning (+ PG backward) + one model update
  double tdmpc_sps = 1e3 / (env_ms + mppi_ms + upd_ms);
  double difftop_sps = 1e3 / (env_ms + to_pg_ms + upd_ms);
  double variant_sps = 1e3 / (env_ms + var_pg_ms + upd_ms);
  if (json) {
    printf("{\"bench\":\"rl\",\"profile\":\"%s\",\"task\":\"%s\",\"mlp_dim\":%d,\"batch\":%d,"
           "\"samples\":%d,\"env_ms\":%.4f,\"mppi_ms\":%.3f,\"trajopt_ms\":%.3f,"
           "\"trajopt_pg_ms\":%.3f,\"trajopt_iters\":%d,\"mppi_trajopt_pg_ms\":%.3f,"
           "\"update_ms\":%.3f,\"tdmpc_steps_per_s\":%.2f,\"difftop_steps_per_s\":%.2f,"
           "\"difftop_explore_steps_per_s\":%.2f,\"threads\":%d,\"cpu\":\"%s\"}\n",
           p->name, task, p->mlp, p->batch, p->samples, env_ms, mppi_ms, to_ms, to_pg_ms, to_iters,
           var_pg_ms, upd_ms, tdmpc_sps, difftop_sps, variant_sps, dt_get_num_threads(),
           dt_cpu_model());
  } else {
    printf("%-9s mlp %3d batch %3d samples %3d | env %.3f ms | MPPI %.1f ms | TO %.1f ms "
           "(%d LM iterations) | TO+PG %.1f ms | MPPI+TO+PG %.1f ms | update %.1f ms | agent "
           "steps/s: tdmpc %.1f, difftop %.1f, difftop-explore %.1f\n", p->name, p->mlp, p->batch,
           p->samples, env_ms, mppi_ms, to_ms, to_iters, to_pg_ms, var_pg_ms, upd_ms, tdmpc_sps,
           difftop_sps, variant_sps);
  }
  free(obs), free(act), free(rew);
  dt_agent_free(a);
  dt_replay_free(r);
  dt_env_free(env);
  return 0;
}

int bench_rl(int argc, char** argv) {
  int json = 0, reps = 5, threads = 1;
  const char* task = "cartpole-swingup";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--task") && i + 1 < argc) task = argv[++i];
    else {
      fprintf(stderr, "usage: difftop bench rl [--json] [--reps N] [--threads N] [--task NAME]\n");
      return 2;
    }
  }
  dt_set_num_threads(threads);
  if (!json)
    printf("bench rl: %s, %d BLAS thread(s), %s, task %s, medians of %d reps\n"
           "official anchor (GPU, paper): solve+differentiate 52 ms, MPPI 9.2 ms per step\n",
           dt_cpu_model(), dt_get_num_threads(), DT_VERSION_STRING, task, reps);
  static const profile profiles[] = {{"official", 512, 256, 512, 512, 64},
                                     {"cpu", 128, 128, 128, 256, 32}};
  for (int i = 0; i < 2; i++)
    if (bench_profile(&profiles[i], task, reps, json)) return 1;
  return 0;
}
