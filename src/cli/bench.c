// SPDX-License-Identifier: MIT
// difftop bench: dispatch to the benchmark suites.
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cmd_bench(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: difftop bench nn|trajopt|envs|rl|il [--json]\n");
    return 2;
  }
  if (!strcmp(argv[1], "envs")) return bench_envs(argc - 1, argv + 1);
  if (!strcmp(argv[1], "rl")) return bench_rl(argc - 1, argv + 1);
  if (!strcmp(argv[1], "nn")) return bench_nn(argc - 1, argv + 1);
  if (!strcmp(argv[1], "trajopt")) return bench_trajopt(argc - 1, argv + 1);
  if (!strcmp(argv[1], "il")) return bench_il(argc - 1, argv + 1);
  fprintf(stderr, "difftop bench: unknown suite '%s' (known: nn, trajopt, envs, rl, il)\n", argv[1]);
  return 2;
}
