// SPDX-License-Identifier: MIT
// difftop plot RUN_DIR... [--out FILE]: learning curves through tools/plot_curves.py
// (matplotlib), with the published TD-MPC curves overlaid.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

// the plotting script: the source tree's, or the installed one
static const char* script_path(void) {
  static const char* candidates[] = {"tools/plot_curves.py", DT_SOURCE_DIR "/tools/plot_curves.py",
                                     "/usr/local/share/difftop/tools/plot_curves.py",
                                     "/usr/share/difftop/tools/plot_curves.py"};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
    if (access(candidates[i], R_OK) == 0) return candidates[i];
  return NULL;
}

int cmd_plot(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: difftop plot RUN_DIR... [--out FILE] [--max-step N]\n");
    return 2;
  }
  const char* script = script_path();
  if (!script) {
    fprintf(stderr, "difftop plot: tools/plot_curves.py not found\n");
    return 1;
  }
  // python3 with matplotlib: Debian's interpreter first
  const char* python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
  char** args = calloc((size_t)argc + 3, sizeof(char*));
  if (!args) return 1;
  args[0] = (char*)python;
  args[1] = (char*)script;
  for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
  pid_t pid = fork();
  if (pid == 0) {
    execvp(python, args);
    perror("difftop plot: python3");
    _exit(127);
  }
  int status = 1;
  if (pid > 0) waitpid(pid, &status, 0);
  free(args);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
