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
int bench_trajopt(int argc, char** argv);

#endif
