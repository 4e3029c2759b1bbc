// SPDX-License-Identifier: MIT
// difftop eval RUN_DIR: rebuild the agent from the run's config, load a saved model and report
// the mean return over fresh evaluation episodes. Also the config of a run for --resume.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "rl/rl_internal.h"

dtStatus cli_run_config(const char* run_dir, dtRLConfig* rl) {
  char path[1024];
  snprintf(path, sizeof path, "%s/config.yaml", run_dir);
  dt_rl_config_default(rl);
  dtConfig* cfg = NULL;
  dtStatus st = dt_config_new(&cfg);
  if (!st) st = dt_config_load_file(cfg, path);
  for (int i = 0; !st && i < dt_config_count(cfg); i++) {
    const char *key, *value, *source;
    dt_config_at(cfg, i, &key, &value, &source);
    st = dt_rl_config_set(rl, key, value);
  }
  dt_config_free(cfg);
  return st;
}

int cmd_eval(int argc, char** argv) {
  const char *dir = NULL, *which = "best", *episodes_s = NULL, *seed_s = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--checkpoint") && i + 1 < argc) {
      which = argv[++i];
    } else if (!strcmp(argv[i], "--episodes") && i + 1 < argc) {
      episodes_s = argv[++i];
    } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
      seed_s = argv[++i];
    } else if (argv[i][0] != '-' && !dir) {
      dir = argv[i];
    } else {
      fprintf(stderr, "usage: difftop eval RUN_DIR [--checkpoint best|latest] [--episodes N] [--seed N]\n");
      return 2;
    }
  }
  if (!dir) {
    fprintf(stderr, "usage: difftop eval RUN_DIR [--checkpoint best|latest] [--episodes N] [--seed N]\n");
    return 2;
  }
  dtRLConfig c;
  dtStatus st = cli_run_config(dir, &c);
  if (!st && episodes_s) st = dt_rl_config_set(&c, "eval_episodes", episodes_s);
  char path[1024];
  snprintf(path, sizeof path, "%s/%s.safetensors", dir, which);
  // the step recorded with the model selects the planner the run used at that point
  long long env_step = 0;
  dtSafetensors* f = NULL;
  if (!st) st = dt_st_open(path, &f);
  if (!st) {
    const char* s = dt_st_metadata(f, "env_step");
    env_step = s ? atoll(s) : 0;
    dt_st_close(f);
  }
  dtEnv* env = NULL;
  dtAgent* agent = NULL;
  dtEnvOpts eo = dt_env_default_opts();
  eo.seed = seed_s ? strtoull(seed_s, NULL, 10) : c.seed + 2000003;
  eo.action_repeat = c.action_repeat;
  if (!st) st = dt_env_make(c.task, &eo, &env);
  if (!st) {
    dt_set_num_threads(c.threads);
    st = dt_agent_new(&c, (int)dt_env_obs_space(env)->size, dt_env_action_space(env)->shape[0], &agent);
  }
  if (!st) st = dt_rl_load_model(path, agent);
  double mean = 0, sd = 0;
  double* rets = calloc((size_t)(c.eval_episodes > 0 ? c.eval_episodes : 1), sizeof(double));
  int ar = dt_env_action_repeat(env ? env : NULL);
  if (!st) st = dt_rl_evaluate(agent, env, c.eval_episodes, env_step / (ar > 0 ? ar : 1), &mean, &sd, rets);
  if (st) {
    fprintf(stderr, "difftop eval: %s\n", dt_last_error());
  } else {
    printf("%s (%s, %s model from env step %lld): mean return %.1f +- %.1f over %d episodes\n",
           dir, c.algo ? "difftop" : "tdmpc", which, env_step, mean, sd, c.eval_episodes);
    printf("returns:");
    for (int i = 0; i < c.eval_episodes; i++) printf(" %.1f", rets[i]);
    printf("\n");
  }
  free(rets);
  dt_agent_free(agent);
  dt_env_free(env);
  return st ? 1 : 0;
}
