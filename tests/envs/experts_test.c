// SPDX-License-Identifier: MIT
// Tests of the experts: returns over several seeds against the thresholds of docs/envs.md.
// CHECK(cond) without a message expands to an empty format string
#pragma GCC diagnostic ignored "-Wformat-zero-length"
#include "test.h"

#ifdef DT_HAVE_MUJOCO

// mean return of the expert over seeds 0..n-1 at the task's default action repeat
static double expert_mean(const char* name, int n) {
  double total = 0;
  for (int s = 0; s < n; s++) {
    dtEnvOpts o = dt_env_default_opts();
    o.seed = (uint64_t)s;
    dtEnv* env = NULL;
    dtExpert* ex = NULL;
    CHECK_OK(dt_env_make(name, &o, &env));
    CHECK_OK(dt_expert_new(name, (uint64_t)s, &ex));
    if (!env || !ex) return 0;
    float obs[16], a[4];
    dtStepInfo info = {0};
    CHECK_OK(dt_env_reset(env, -1, obs));
    double ret = 0;
    do {
      CHECK_OK(dt_expert_act(ex, env, a));
      if (dt_env_step(env, a, (int)dt_env_action_space(env)->size, obs, &info) != DT_OK) {
        CHECK(0, "%s: %s", name, dt_last_error());
        break;
      }
      ret += info.reward;
    } while (!info.truncated);
    total += ret;
    dt_expert_free(ex);
    dt_env_free(env);
  }
  double mean = total / n;
  printf("  expert %s: mean return %.1f over %d seeds\n", name, mean, n);
  return mean;
}

static void test_cartpole_swingup(void) { CHECK(expert_mean("cartpole-swingup", 6) >= 750); }

static void test_pendulum_swingup(void) { CHECK(expert_mean("pendulum-swingup", 6) >= 700); }

static void test_reacher_easy(void) { CHECK(expert_mean("reacher-easy", 6) >= 900); }

static void test_errors(void) {
  dtExpert* ex = (dtExpert*)1;
  CHECK(dt_expert_new("walker-walk", 0, &ex) == DT_ERR_NOT_FOUND && ex == NULL);
  CHECK(strstr(dt_last_error(), "cartpole-swingup") != NULL, "%s", dt_last_error());
  CHECK_OK(dt_expert_new("reacher-easy", 0, &ex));
  dtEnv* env = NULL;
  CHECK_OK(dt_env_make("cartpole-swingup", NULL, &env));
  float a[2];
  CHECK(dt_expert_act(ex, env, a) == DT_ERR_ARG);
  CHECK(dt_expert_act(ex, NULL, a) == DT_ERR_ARG);
  dt_env_free(env);
  dt_expert_free(ex);
  dt_expert_free(NULL);
  int n = 0;
  for (const char* const* p = dt_expert_names(); *p; p++) n++;
  CHECK(n >= 3);
}

DT_TEST_MAIN("envs/experts", TEST(test_cartpole_swingup), TEST(test_pendulum_swingup),
             TEST(test_reacher_easy), TEST(test_errors))
#else
static void test_skipped(void) { printf("  built without MuJoCo\n"); }
DT_TEST_MAIN("envs/experts", TEST(test_skipped))
#endif
