// SPDX-License-Identifier: MIT
// Monotonic timers, BLAS thread control and the CPU model string.
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "difftop/base.h"

// provided by OpenBLAS
extern void openblas_set_num_threads(int n);
extern int openblas_get_num_threads(void);

uint64_t dt_time_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double dt_time_s(void) { return (double)dt_time_ns() * 1e-9; }

void dt_set_num_threads(int n) {
  if (n > 0) openblas_set_num_threads(n);
}

int dt_get_num_threads(void) { return openblas_get_num_threads(); }

const char* dt_cpu_model(void) {
  static char model[256];
  if (model[0]) return model;
  snprintf(model, sizeof model, "unknown");
  FILE* f = fopen("/proc/cpuinfo", "r");
  if (!f) return model;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) == 0) {
      char* colon = strchr(line, ':');
      if (colon) {
        colon += 2;
        colon[strcspn(colon, "\n")] = 0;
        snprintf(model, sizeof model, "%s", colon);
      }
      break;
    }
  }
  fclose(f);
  return model;
}
