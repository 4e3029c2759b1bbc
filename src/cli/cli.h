// SPDX-License-Identifier: MIT
// Subcommands of the difftop program.
#ifndef DIFFTOP_CLI_H
#define DIFFTOP_CLI_H

#include "difftop/difftop.h"

typedef struct dtCommand {
  const char* name;
  const char* help;
  int (*run)(int argc, char** argv);  // argv[0] is the command name
} dtCommand;

int cmd_version(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_plot(int argc, char** argv);
int cmd_demos(int argc, char** argv);
int cmd_il_train(int argc, char** argv);
int cmd_il_eval(int argc, char** argv);
int bench_il(int argc, char** argv);

// The resolved config of a run directory (RUN_DIR/config.yaml).
dtStatus cli_run_config(const char* run_dir, dtRLConfig* rl);

// The configs directory ($DT_CONFIG_DIR, ./configs, the source tree's, the installed one).
const char* cli_config_dir(void);

// Defaults, configs/default.yaml, the task's file, an extra file and key=value overrides.
dtStatus cli_resolve_config(dtRLConfig* rl, const char* task, const char* extra_file,
                            char** overrides, int n_overrides);
int cmd_render(int argc, char** argv);
int bench_envs(int argc, char** argv);
int bench_rl(int argc, char** argv);
int bench_nn(int argc, char** argv);
int bench_trajopt(int argc, char** argv);

#endif
