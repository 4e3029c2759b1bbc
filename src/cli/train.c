// SPDX-License-Identifier: MIT
// difftop train: resolve the configuration (defaults, configs/default.yaml, the task's file,
// --config, key=value) and run dt_rl_train.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

// the configs directory: $DT_CONFIG_DIR, the source tree's, or the installed one
const char* cli_config_dir(void) {
  const char* env = getenv("DT_CONFIG_DIR");
  if (env && *env) return env;
  static const char* candidates[] = {"configs", DT_SOURCE_DIR "/configs",
                                     "/usr/local/share/difftop/configs",
                                     "/usr/share/difftop/configs"};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/default.yaml", candidates[i]);
    if (access(path, R_OK) == 0) return candidates[i];
  }
  return NULL;
}

// copy every key of a loaded YAML config into the RL settings
static dtStatus apply_config(dtRLConfig* rl, const dtConfig* cfg) {
  for (int i = 0; i < dt_config_count(cfg); i++) {
    const char *key, *value, *source;
    dt_config_at(cfg, i, &key, &value, &source);
    if (dt_rl_config_set(rl, key, value) != DT_OK) {
      // copy the message: dt_error formats into the buffer dt_last_error() points at
      char msg[512];
      snprintf(msg, sizeof msg, "%s", dt_last_error());
      return dt_error(dt_last_status(), "%s (from %s)", msg, source ? source : "?");
    }
  }
  return DT_OK;
}

dtStatus cli_resolve_config(dtRLConfig* rl, const char* task, const char* extra_file,
                            char** overrides, int n_overrides) {
  dt_rl_config_default(rl);
  if (task && dt_rl_config_set(rl, "task", task)) return dt_last_status();
  dtConfig* cfg = NULL;
  dtStatus st = dt_config_new(&cfg);
  if (st) return st;
  const char* dir = cli_config_dir();
  if (dir) {
    // the task's own file, or tasks/default.yaml for tasks without one
    char path[1024];
    snprintf(path, sizeof path, "%s/tasks/%s.yaml", dir, rl->task);
    st = dt_config_load_task(cfg, dir, access(path, R_OK) == 0 ? rl->task : "default");
  }
  if (!st && extra_file) st = dt_config_load_file(cfg, extra_file);
  for (int i = 0; !st && i < n_overrides; i++) st = dt_config_override(cfg, overrides[i]);
  if (!st) st = apply_config(rl, cfg);
  dt_config_free(cfg);
  if (!st && task) st = dt_rl_config_set(rl, "task", task);
  return st;
}

static void train_usage(FILE* f) {
  fprintf(f,
          "usage: difftop train --algo tdmpc|difftop --task NAME [--seed N] [--steps N]\n"
          "                     [--out RUN_DIR] [--config FILE] [key=value ...]\n"
          "       difftop train --resume RUN_DIR [--steps N]\n"
          "Configuration: configs/default.yaml, then configs/tasks/<task>.yaml, then --config,\n"
          "then key=value (any key of configs/default.yaml). Writes RUN_DIR/config.yaml,\n"
          "train.csv, eval.csv and checkpoints.\n");
}

int cmd_train(int argc, char** argv) {
  const char *algo = NULL, *task = NULL, *seed = NULL, *steps = NULL, *out = NULL, *file = NULL;
  const char* resume = NULL;
  char* overrides[128];
  int n_over = 0;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char** slot = !strcmp(a, "--algo")     ? &algo
                        : !strcmp(a, "--task")   ? &task
                        : !strcmp(a, "--seed")   ? &seed
                        : !strcmp(a, "--steps")  ? &steps
                        : !strcmp(a, "--out")    ? &out
                        : !strcmp(a, "--config") ? &file
                        : !strcmp(a, "--resume") ? &resume
                                                 : NULL;
    if (slot) {
      if (i + 1 >= argc) {
        fprintf(stderr, "difftop train: %s needs a value\n", a);
        return 2;
      }
      *slot = argv[++i];
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      train_usage(stdout);
      return 0;
    } else if (strchr(a, '=') && a[0] != '-' && n_over < 128) {
      overrides[n_over++] = argv[i];
    } else {
      fprintf(stderr, "difftop train: unknown argument '%s'\n", a);
      train_usage(stderr);
      return 2;
    }
  }
  if (!task && !resume) {
    fprintf(stderr, "difftop train: --task is required (e.g. cartpole-swingup)\n");
    train_usage(stderr);
    return 2;
  }
  dtRLConfig cfg;
  dtStatus st;
  if (resume) {
    // the run's own resolved config; only --steps may extend it
    st = cli_run_config(resume, &cfg);
    out = resume;
    if (!st && (task || algo || seed || file || n_over))
      st = dt_error(DT_ERR_ARG, "--resume takes the run's config as it is (only --steps may change)");
  } else {
    st = cli_resolve_config(&cfg, task, file, overrides, n_over);
  }
  if (!st && algo) st = dt_rl_config_set(&cfg, "algo", algo);
  if (!st && seed) st = dt_rl_config_set(&cfg, "seed", seed);
  if (!st && steps) st = dt_rl_config_set(&cfg, "train_steps", steps);
  if (st) {
    fprintf(stderr, "difftop train: %s\n", dt_last_error());
    return 1;
  }
  char dir[1024];
  if (out) {
    snprintf(dir, sizeof dir, "%s", out);
  } else {
    snprintf(dir, sizeof dir, "runs/%s-%s-s%llu", cfg.algo ? "difftop" : "tdmpc", cfg.task,
             (unsigned long long)cfg.seed);
  }
  fprintf(stderr, "difftop train: %s on %s, seed %llu, %lld env steps -> %s (threads %d, %s)\n",
          cfg.algo ? "difftop" : "tdmpc", cfg.task, (unsigned long long)cfg.seed,
          (long long)cfg.train_steps, dir, cfg.threads, dt_cpu_model());
  dtTrainResult res;
  st = dt_rl_train_ex(&cfg, dir, resume != NULL, &res);
  if (st) {
    fprintf(stderr, "difftop train: %s\n", dt_last_error());
    return 1;
  }
  printf("run: %s\nfinal evaluation: %.1f (best %.1f) after %lld env steps, %d episodes, %.0f s\n"
         "time: planning %.0f s, model updates %.0f s, policy-gradient backward %.0f s\n",
         dir, res.final_eval, res.best_eval, (long long)res.env_steps, res.episodes, res.seconds,
         res.phase_seconds[0], res.phase_seconds[1], res.phase_seconds[2]);
  return 0;
}
