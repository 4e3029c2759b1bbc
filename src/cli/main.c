// SPDX-License-Identifier: MIT
// The difftop program: subcommands for training, evaluation, benchmarks and tools.
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const dtCommand commands[] = {
    {"version", "print the library version", cmd_version},
    {"train", "train an agent: train --algo tdmpc|difftop --task NAME [--seed N] [--steps N]", cmd_train},
    {"eval", "evaluate a run: eval RUN_DIR [--checkpoint best|latest] [--episodes N]", cmd_eval},
    {"plot", "learning curves: plot RUN_DIR... [--out FILE] (PNG, published TD-MPC overlaid)", cmd_plot},
    {"demos", "expert demonstrations: demos --task pusht|DMC_TASK --episodes N --seed S --out FILE.hdf5", cmd_demos},
    {"il-train", "imitation learning: il-train --demos FILE --policy bc|diffusion|residual|difftop|ibc --out DIR", cmd_il_train},
    {"il-eval", "evaluate an IL run on Push-T: il-eval RUN_DIR [--episodes 50] [--seed 100000]", cmd_il_eval},
    {"bench", "benchmarks: bench nn|trajopt|envs|rl|il [--json]", cmd_bench},
    {"render", "roll out a task and write a GIF: render --task NAME [--policy expert|random|RUN_DIR]", cmd_render},
};

static void usage(FILE* f) {
  fprintf(f, "usage: difftop <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char** argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  }
  fprintf(stderr, "difftop: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}

int cmd_version(int argc, char** argv) {
  (void)argc, (void)argv;
  printf("difftop %s (library %s)\n", DT_VERSION_STRING, dt_version_string());
  return 0;
}
