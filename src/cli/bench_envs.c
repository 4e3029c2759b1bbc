// SPDX-License-Identifier: MIT
// difftop bench envs: control steps/s per task with state observations, and frames/s with
// 84x84 pixel observations (OSMesa, shadows and MSAA off), single thread.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

// median of n doubles (sorts in place)
static double median(double* v, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// run env steps with random actions for about budget seconds; returns env steps/s (median of 3)
static double steps_per_s(dtEnv* env, double budget, void* obs) {
  int na = (int)dt_env_action_space(env)->size;
  float act[32];
  dtRng rng;
  dt_rng_seed(&rng, 1);
  dtStepInfo info;
  double rates[3];
  if (dt_env_reset(env, -1, obs)) return -1;
  for (int rep = 0; rep < 3; rep++) {
    long n = 0;
    double t0 = dt_time_s(), t;
    do {
      for (int k = 0; k < 10; k++) {
        dt_rng_fill_uniform(&rng, act, (size_t)na, -1, 1);
        if (dt_env_step(env, act, na, obs, &info)) return -1;
        n++;
        if (info.truncated && dt_env_reset(env, -1, obs)) return -1;
      }
      t = dt_time_s() - t0;
    } while (t < budget / 3);
    rates[rep] = (double)n / t;
  }
  return median(rates, 3);
}

int bench_envs(int argc, char** argv) {
  int json = 0;
  double budget = 0.6;
  const char* only = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--budget") && i + 1 < argc) budget = atof(argv[++i]);
    else if (!strcmp(argv[i], "--task") && i + 1 < argc) only = argv[++i];
    else {
      fprintf(stderr, "usage: difftop bench envs [--json] [--task NAME] [--budget SECONDS]\n");
      return 2;
    }
  }
  if (!json) {
    printf("difftop bench envs: CPU %s, 1 thread, %.1f s per measurement, medians of 3\n", dt_cpu_model(),
           budget);
    printf("%-24s %4s %14s %14s %12s\n", "task", "ar", "ctrl steps/s", "pix steps/s", "frames/s");
  }
  float* sobs = malloc(sizeof(float) * 256);
  uint8_t* pobs = malloc((size_t)9 * 84 * 84);
  if (!sobs || !pobs) return 1;
  for (const char* const* n = dt_env_names(); *n; n++) {
    if (only && strcmp(only, *n)) continue;
    // state observations at action repeat 1: simulator control steps per second
    dtEnvOpts o = dt_env_default_opts();
    o.action_repeat = 1;
    dtEnv* env = NULL;
    if (dt_env_make(*n, &o, &env)) {
      fprintf(stderr, "%s: %s\n", *n, dt_last_error());
      continue;
    }
    double ctrl = steps_per_s(env, budget, sobs);
    dt_env_free(env);
    // pixels at the task's action repeat: one frame per env step
    o = dt_env_default_opts();
    o.obs = DT_OBS_PIXELS;
    double pix = -1;
    int ar = dt_env_default_action_repeat(*n);
    if (dt_env_make(*n, &o, &env) == DT_OK) {
      pix = steps_per_s(env, budget, pobs);
      dt_env_free(env);
    } else {
      fprintf(stderr, "%s pixels: %s\n", *n, dt_last_error());
    }
    if (json)
      printf("{\"bench\":\"envs\",\"task\":\"%s\",\"action_repeat\":%d,\"control_steps_per_s\":%.0f,"
             "\"pixel_env_steps_per_s\":%.1f,\"frames_per_s\":%.1f,\"image\":84,\"threads\":1,"
             "\"cpu\":\"%s\"}\n",
             *n, ar, ctrl, pix, pix, dt_cpu_model());
    else
      printf("%-24s %4d %14.0f %14.1f %12.1f\n", *n, ar, ctrl, pix, pix);
    fflush(stdout);
  }
  free(sobs);
  free(pobs);
  return 0;
}
