// SPDX-License-Identifier: MIT
// Push-T: coverage geometry, determinism, clone/restore, input checks, rendering, the task table
// and the expert's score.
#include "test.h"

// CHECK without a message passes an empty format string
#pragma GCC diagnostic ignored "-Wformat-zero-length"

#include "difftop/pusht.h"
#include "envs/pusht.h"

#ifdef DT_HAVE_CHIPMUNK

#define GOAL_A 0.78539816339744830962

// block pose shifted from the goal by (lx, ly) in the goal's own frame
static double shifted_coverage(double lx, double ly) {
  double c = cos(GOAL_A), s = sin(GOAL_A);
  return dt_pusht_coverage_of_pose(256 + c * lx - s * ly, 256 + s * lx + c * ly, GOAL_A);
}

static void test_coverage_values(void) {
  CHECK_NEAR(dt_pusht_coverage_of_pose(256, 256, GOAL_A), 1.0, 1e-12);
  CHECK_NEAR(dt_pusht_coverage_of_pose(256, 256, GOAL_A + 2 * M_PI), 1.0, 1e-12);
  CHECK_NEAR(dt_pusht_coverage_of_pose(60, 450, 0.3), 0.0, 0.0);
  CHECK_NEAR(dt_pusht_coverage_of_pose(1000, -1000, 0.0), 0.0, 0.0);
  // along the crossbar by 10: crossbars overlap 110x30, stems 20x90, cross terms touch only
  CHECK_NEAR(shifted_coverage(10, 0), (110.0 * 30 + 20.0 * 90) / 6300.0, 1e-12);
  CHECK_NEAR(shifted_coverage(-10, 0), (110.0 * 30 + 20.0 * 90) / 6300.0, 1e-12);
  // along the stem by 15: 120x15 + 30x75 + the block's crossbar inside the goal's stem 30x15
  CHECK_NEAR(shifted_coverage(0, 15), (120.0 * 15 + 30.0 * 75 + 30.0 * 15) / 6300.0, 1e-12);
  // rotated by pi about the goal origin: only the crossbars (reflected onto y in [-30, 0]) touch
  CHECK_NEAR(dt_pusht_coverage_of_pose(256, 256, GOAL_A + M_PI), 0.0, 1e-12);
  // the probe's reference values (30 px world shift; angle 0 instead of pi/4)
  CHECK_NEAR(dt_pusht_coverage_of_pose(286, 256, GOAL_A), 0.335, 0.001);
  CHECK_NEAR(dt_pusht_coverage_of_pose(256, 256, 0.0), 0.324, 0.001);
  CHECK_NEAR(dt_pusht_reward_of_coverage(0.5), 0.5 / 0.95, 1e-15);
  CHECK_NEAR(dt_pusht_reward_of_coverage(0.97), 1.0, 0.0);
  CHECK_NEAR(dt_pusht_reward_of_coverage(-1), 0.0, 0.0);
  CHECK(dt_pusht_coverage_of_pose(NAN, 0, 0) == 0.0);
}

// the simulator's coverage at the goal pose
static void test_sim_at_goal(void) {
  dtPusht* sim = NULL;
  CHECK_OK(dt_pusht_new(&sim));
  double pose[5] = {50, 450, 256, 256, GOAL_A};
  CHECK_OK(dt_pusht_reset_to(sim, pose, 0));
  CHECK_NEAR(dt_pusht_coverage(sim), 1.0, 1e-9);
  double obs[5];
  dt_pusht_observe(sim, obs);
  CHECK_NEAR(obs[2], 256, 1e-9);
  CHECK_NEAR(obs[3], 256, 1e-9);
  CHECK_NEAR(obs[4], GOAL_A, 1e-12);
  // a step away from the block leaves it (quasi-static: no pushing, no motion)
  double a[2] = {60, 440}, r = 0, cov = 0;
  int ok = 0;
  CHECK_OK(dt_pusht_step(sim, a, &r, &cov, &ok));
  CHECK_NEAR(cov, 1.0, 1e-9);
  CHECK(r == 1.0 && ok == 1);
  dt_pusht_free(sim);
}

// the numpy-compatible reset reproduces diffusion_policy's start for seed 100000
static void test_numpy_reset(void) {
  dtPusht* sim = NULL;
  CHECK_OK(dt_pusht_new(&sim));
  CHECK_OK(dt_pusht_reset_numpy(sim, 100000));
  double obs[5];
  dt_pusht_observe(sim, obs);
  // RandomState(100000): randint(50,450) x2 = 235, 124; randint(100,400) x2 = 335, 128;
  // randn()*2pi - pi = -0.9049274284249247 -> mod 2pi 5.3782578787546615
  CHECK_NEAR(obs[0], 235, 1e-12);
  CHECK_NEAR(obs[1], 124, 1e-12);
  CHECK_NEAR(obs[2], 335, 1e-9);
  CHECK_NEAR(obs[3], 128, 1e-9);
  CHECK_NEAR(obs[4], 5.3782578787546615, 1e-12);
  CHECK(dt_pusht_steps(sim) == 0);
  dt_pusht_free(sim);
}

// a scripted rollout that pushes into the block, recording states
static void rollout(dtPusht* sim, uint64_t seed, int n, double* states, double* rewards) {
  dtRng rng;
  dt_rng_seed(&rng, seed);
  for (int t = 0; t < n; t++) {
    double obs[5];
    dt_pusht_observe(sim, obs);
    double a[2] = {obs[2] + 80 * (dt_rng_uniform(&rng) - 0.5), obs[3] + 80 * (dt_rng_uniform(&rng) - 0.5)};
    double r = -1;
    CHECK_OK(dt_pusht_step(sim, a, &r, NULL, NULL));
    if (rewards) rewards[t] = r;
    if (states) dt_pusht_get_state(sim, states + (size_t)t * DT_PUSHT_STATE_SIZE);
  }
}

static void test_determinism(void) {
  enum { N = 120 };
  static double s1[N * DT_PUSHT_STATE_SIZE], s2[N * DT_PUSHT_STATE_SIZE], r1[N];
  dtPusht *a = NULL, *b = NULL;
  CHECK_OK(dt_pusht_new(&a));
  CHECK_OK(dt_pusht_new(&b));
  CHECK_OK(dt_pusht_reset(a, 7));
  // b runs another episode first: its history must not matter
  CHECK_OK(dt_pusht_reset(b, 3));
  rollout(b, 11, 40, NULL, NULL);
  CHECK_OK(dt_pusht_reset(b, 7));
  rollout(a, 5, N, s1, r1);
  rollout(b, 5, N, s2, NULL);
  CHECK(memcmp(s1, s2, sizeof s1) == 0, "same seed and actions gave different trajectories");
  int moved = 0;
  for (int t = 0; t < N; t++) {
    CHECK(r1[t] >= 0.0 && r1[t] <= 1.0, "reward %g", r1[t]);
    if (s1[t * DT_PUSHT_STATE_SIZE + DT_PUSHT_S_COG_X] != s1[DT_PUSHT_S_COG_X]) moved = 1;
  }
  CHECK(moved, "the scripted pusher never moved the block");
  dt_pusht_free(a);
  dt_pusht_free(b);
}

// pymunk mode: contacts persist across control steps; a reset still makes runs history-free
static void test_pymunk_mode(void) {
  enum { N = 80 };
  static double s1[N * DT_PUSHT_STATE_SIZE], s2[N * DT_PUSHT_STATE_SIZE], s3[N * DT_PUSHT_STATE_SIZE];
  dtPusht *a = NULL, *b = NULL, *c = NULL;
  CHECK_OK(dt_pusht_new(&a));
  CHECK_OK(dt_pusht_new(&b));
  CHECK_OK(dt_pusht_new(&c));
  dt_pusht_set_upstream_solver(a, 1);
  dt_pusht_set_upstream_solver(b, 1);
  CHECK_OK(dt_pusht_reset(b, 4));
  rollout(b, 9, 30, NULL, NULL);
  CHECK_OK(dt_pusht_reset(a, 12));
  CHECK_OK(dt_pusht_reset(b, 12));
  CHECK_OK(dt_pusht_reset(c, 12));
  rollout(a, 6, N, s1, NULL);
  rollout(b, 6, N, s2, NULL);
  rollout(c, 6, N, s3, NULL);
  CHECK(memcmp(s1, s2, sizeof s1) == 0, "pymunk mode depends on history");
  // the first control step is the same in both modes (nothing is cached after a reset)
  CHECK(memcmp(s1, s3, DT_PUSHT_STATE_SIZE * sizeof(double)) == 0, "first steps differ between modes");
  dtEnvOpts opts;
  memset(&opts, 0, sizeof opts);
  void* impl = NULL;
  dtSpace os, as;
  CHECK_OK(dt_pusht_pymunk_task.create(&dt_pusht_pymunk_task, &opts, &impl, &os, &as));
  CHECK(strcmp(dt_pusht_pymunk_task.name, "pusht-pymunk") == 0 && os.size == 5 && as.size == 2);
  dt_pusht_pymunk_task.destroy(impl);
  dt_pusht_free(a);
  dt_pusht_free(b);
  dt_pusht_free(c);
}

static void test_rewards_in_range(void) {
  dtPusht* sim = NULL;
  CHECK_OK(dt_pusht_new(&sim));
  double r[300];
  for (uint64_t seed = 0; seed < 5; seed++) {
    CHECK_OK(dt_pusht_reset(sim, seed));
    rollout(sim, seed + 100, 300, NULL, r);
    for (int t = 0; t < 300; t++) CHECK(r[t] >= 0.0 && r[t] <= 1.0 && isfinite(r[t]), "reward %g", r[t]);
  }
  dt_pusht_free(sim);
}

// clone in the middle of contact-rich pushing, restore (also into another simulator), replay
static void test_clone_restore(void) {
  enum { N = 60 };
  static double ref[N * DT_PUSHT_STATE_SIZE], again[N * DT_PUSHT_STATE_SIZE], other[N * DT_PUSHT_STATE_SIZE];
  dtPusht *sim = NULL, *sim2 = NULL;
  CHECK_OK(dt_pusht_new(&sim));
  CHECK_OK(dt_pusht_new(&sim2));
  CHECK_OK(dt_pusht_reset(sim, 21));
  rollout(sim, 1, 25, NULL, NULL);
  double saved[DT_PUSHT_STATE_SIZE];
  CHECK_OK(dt_pusht_get_state(sim, saved));
  rollout(sim, 2, N, ref, NULL);
  CHECK_OK(dt_pusht_set_state(sim, saved));
  double now[DT_PUSHT_STATE_SIZE];
  dt_pusht_get_state(sim, now);
  CHECK(memcmp(now, saved, sizeof now) == 0, "get_state after set_state differs");
  rollout(sim, 2, N, again, NULL);
  CHECK(memcmp(ref, again, sizeof ref) == 0, "restored trajectory differs");
  CHECK_OK(dt_pusht_reset(sim2, 99));
  rollout(sim2, 3, 10, NULL, NULL);
  CHECK_OK(dt_pusht_set_state(sim2, saved));
  rollout(sim2, 2, N, other, NULL);
  CHECK(memcmp(ref, other, sizeof ref) == 0, "trajectory restored into another simulator differs");
  CHECK(dt_pusht_steps(sim2) == (int64_t)saved[DT_PUSHT_S_STEPS] + N);
  dt_pusht_free(sim);
  dt_pusht_free(sim2);
}

static void test_bad_inputs(void) {
  dtPusht* sim = NULL;
  CHECK_OK(dt_pusht_new(&sim));
  CHECK_OK(dt_pusht_reset(sim, 1));
  double before[DT_PUSHT_STATE_SIZE], after[DT_PUSHT_STATE_SIZE];
  dt_pusht_get_state(sim, before);
  double bad[4][2] = {{NAN, 100}, {100, INFINITY}, {-INFINITY, 0}, {NAN, NAN}};
  for (int i = 0; i < 4; i++) CHECK(dt_pusht_step(sim, bad[i], NULL, NULL, NULL) == DT_ERR_NONFINITE);
  dt_pusht_get_state(sim, after);
  CHECK(memcmp(before, after, sizeof before) == 0, "a rejected action changed the state");
  // huge but finite targets are clipped to the workspace
  double far[2] = {1e300, -1e300};
  CHECK_OK(dt_pusht_step(sim, far, NULL, NULL, NULL));
  dt_pusht_get_state(sim, after);
  CHECK(after[DT_PUSHT_S_TARGET_X] == 512 && after[DT_PUSHT_S_TARGET_Y] == 0);
  // invalid states are refused and leave the simulator unchanged
  dt_pusht_get_state(sim, before);
  double s[DT_PUSHT_STATE_SIZE];
  int bad_idx[4] = {DT_PUSHT_S_COG_X, DT_PUSHT_S_ANGLE, DT_PUSHT_S_W, DT_PUSHT_S_BIAS_VX};
  for (int i = 0; i < 4; i++) {
    memcpy(s, before, sizeof s);
    s[bad_idx[i]] = NAN;
    CHECK(dt_pusht_set_state(sim, s) == DT_ERR_NONFINITE);
    s[bad_idx[i]] = 1e200;
    CHECK(dt_pusht_set_state(sim, s) == DT_ERR_ARG);
  }
  memcpy(s, before, sizeof s);
  s[DT_PUSHT_S_STEPS] = 2.5;
  CHECK(dt_pusht_set_state(sim, s) == DT_ERR_ARG);
  dt_pusht_get_state(sim, after);
  CHECK(memcmp(before, after, sizeof before) == 0, "a rejected state changed the simulator");
  double pose[5] = {1, 2, NAN, 4, 5};
  CHECK(dt_pusht_reset_to(sim, pose, 0) == DT_ERR_ARG);
  CHECK(dt_pusht_step(NULL, far, NULL, NULL, NULL) == DT_ERR_ARG);
  CHECK(dt_pusht_new(NULL) == DT_ERR_ARG);
  uint8_t px[3];
  CHECK(dt_pusht_render(sim, 0, 10, px) == DT_ERR_ARG);
  CHECK(dt_pusht_render(sim, 10, -1, px) == DT_ERR_ARG);
  dt_pusht_free(sim);
}

// pixels close to a colour
static int count_color(const uint8_t* rgb, int n, int r, int g, int b, int tol) {
  int c = 0;
  for (int i = 0; i < n; i++)
    if (abs(rgb[3 * i] - r) <= tol && abs(rgb[3 * i + 1] - g) <= tol && abs(rgb[3 * i + 2] - b) <= tol) c++;
  return c;
}

// pixels where blue clearly dominates (the agent and its anti-aliased rim)
static int count_blue(const uint8_t* rgb, int n) {
  int c = 0;
  for (int i = 0; i < n; i++)
    if (rgb[3 * i + 2] >= 200 && rgb[3 * i + 2] - rgb[3 * i] >= 60 && rgb[3 * i + 2] - rgb[3 * i + 1] >= 40) c++;
  return c;
}

static void test_render(void) {
  dtPusht* sim = NULL;
  CHECK_OK(dt_pusht_new(&sim));
  // block and agent far from the goal: goal, T and agent all visible
  double pose[5] = {420, 90, 120, 380, 0.3};
  CHECK_OK(dt_pusht_reset_to(sim, pose, 0));
  int sizes[2] = {96, 256};
  for (int k = 0; k < 2; k++) {
    int n = sizes[k];
    uint8_t* rgb = (uint8_t*)malloc((size_t)n * n * 3);
    CHECK_OK(dt_pusht_render(sim, n, n, rgb));
    double px_area = (512.0 / n) * (512.0 / n);
    int goal = count_color(rgb, n * n, 144, 238, 144, 3);
    int fill = count_color(rgb, n * n, 142, 163, 183, 3);
    int agent = count_blue(rgb, n * n);
    int white = count_color(rgb, n * n, 255, 255, 255, 0);
    // goal T of area 6300, block fill a bit less (outline), agent disk of radius 15
    CHECK(goal * px_area > 0.8 * 6300 && goal * px_area < 1.05 * 6300, "size %d goal %d px", n, goal);
    CHECK(fill * px_area > 0.5 * 6300 && fill * px_area < 1.0 * 6300, "size %d fill %d px", n, fill);
    CHECK(agent * px_area > 0.7 * M_PI * 225 && agent * px_area < 1.3 * M_PI * 225, "size %d agent %d px", n, agent);
    CHECK(white > n * n * 8 / 10, "size %d white %d px", n, white);
    // the goal's centre region (goal frame (0, 60), inside the stem) is green; y is the image row
    double gx = 256 + cos(GOAL_A) * 0 - sin(GOAL_A) * 60, gy = 256 + sin(GOAL_A) * 0 + cos(GOAL_A) * 60;
    const uint8_t* p = rgb + ((size_t)(gy * n / 512) * n + (size_t)(gx * n / 512)) * 3;
    CHECK(p[0] == 144 && p[1] == 238 && p[2] == 144, "size %d goal pixel %d %d %d", n, p[0], p[1], p[2]);
    // the agent's centre pixel
    p = rgb + ((size_t)(90.0 * n / 512) * n + (size_t)(420.0 * n / 512)) * 3;
    CHECK(p[0] == 78 && p[1] == 126 && p[2] == 255, "size %d agent pixel %d %d %d", n, p[0], p[1], p[2]);
    free(rgb);
  }
  // non-square sizes work too
  uint8_t* rgb = (uint8_t*)malloc(64 * 200 * 3);
  CHECK_OK(dt_pusht_render(sim, 200, 64, rgb));
  free(rgb);
  dt_pusht_free(sim);
}

//---------------------------------------------------------------------------------------------
// the task table, driven directly and through a tiny dtEnv-like shim

typedef struct shimEnv {
  void* impl;
  dtSpace obs, act;
  dtRng rng;
  int t, max_steps;
} shimEnv;

static dtStatus shim_make(shimEnv* env, uint64_t seed) {
  dtEnvOpts opts;
  memset(&opts, 0, sizeof opts);
  opts.seed = seed;
  env->t = 0;
  env->max_steps = dt_pusht_task.default_max_steps;
  dt_rng_seed(&env->rng, seed);
  return dt_pusht_task.create(&dt_pusht_task, &opts, &env->impl, &env->obs, &env->act);
}

static dtStatus shim_reset(shimEnv* env, float* obs) {
  env->t = 0;
  dtStatus st = dt_pusht_task.reset(env->impl, &env->rng);
  if (!st) dt_pusht_task.observe(env->impl, obs);
  return st;
}

// like the generic layer: validate, step, observe, truncate at the time limit
static dtStatus shim_step(shimEnv* env, const float* action, float* obs, dtStepInfo* info) {
  for (int i = 0; i < 2; i++)
    if (!isfinite(action[i])) return dt_error(DT_ERR_NONFINITE, "shim: action[%d] not finite", i);
  dtStatus st = dt_pusht_task.step(env->impl, action, &info->reward, &info->terminated, &info->success);
  if (st) return st;
  dt_pusht_task.observe(env->impl, obs);
  info->truncated = ++env->t >= env->max_steps;
  return DT_OK;
}

static void test_task_table(void) {
  CHECK(strcmp(dt_pusht_task.name, "pusht") == 0);
  CHECK(dt_pusht_task.default_max_steps == 300);
  CHECK(dt_pusht_task.default_action_repeat == 1);
  shimEnv a, b;
  CHECK_OK(shim_make(&a, 42));
  CHECK_OK(shim_make(&b, 42));
  CHECK(a.obs.size == 5 && a.obs.dtype == DT_F32 && a.act.size == 2);
  CHECK(a.act.low == 0.0f && a.act.high == 512.0f);
  int ss = dt_pusht_task.state_size(a.impl);
  CHECK(ss == DT_PUSHT_STATE_SIZE);
  float oa[5], ob[5];
  CHECK_OK(shim_reset(&a, oa));
  CHECK_OK(shim_reset(&b, ob));
  CHECK(memcmp(oa, ob, sizeof oa) == 0);
  for (int i = 0; i < 5; i++) CHECK(isfinite(oa[i]));
  CHECK(oa[4] >= 0.0f && oa[4] < 6.2832f);
  double saved[DT_PUSHT_STATE_SIZE];
  float obs_saved[5];
  dtStepInfo info;
  int truncated_at = -1;
  for (int t = 0; t < 300; t++) {
    float act[2] = {oa[2] + 30.0f * (float)((t * 7) % 5 - 2), oa[3] + 30.0f * (float)((t * 3) % 5 - 2)};
    CHECK_OK(shim_step(&a, act, oa, &info));
    CHECK_OK(shim_step(&b, act, ob, &info));
    CHECK(info.reward >= 0.0f && info.reward <= 1.0f);
    if (t == 49) {
      dt_pusht_task.get_state(a.impl, saved);
      memcpy(obs_saved, oa, sizeof oa);
    }
    if (info.truncated && truncated_at < 0) truncated_at = t;
  }
  CHECK(memcmp(oa, ob, sizeof oa) == 0, "same seed, same actions, different observations");
  CHECK(truncated_at == 299);
  // restore through the table and replay a step on both
  dt_pusht_task.set_state(b.impl, saved);
  dt_pusht_task.observe(b.impl, ob);
  CHECK(memcmp(ob, obs_saved, sizeof ob) == 0);
  // NaN actions never reach the simulator through the shim, and the table's own step refuses them
  float nan_act[2] = {NAN, 1};
  CHECK(shim_step(&a, nan_act, oa, &info) == DT_ERR_NONFINITE);
  CHECK(dt_pusht_task.step(a.impl, nan_act, &info.reward, &info.terminated, &info.success) == DT_ERR_NONFINITE);
  // an invalid state through the table leaves the simulator unchanged
  double bad[DT_PUSHT_STATE_SIZE], cur[DT_PUSHT_STATE_SIZE], cur2[DT_PUSHT_STATE_SIZE];
  dt_pusht_task.get_state(a.impl, cur);
  memcpy(bad, cur, sizeof bad);
  bad[DT_PUSHT_S_AGENT_X] = INFINITY;
  dt_pusht_task.set_state(a.impl, bad);
  dt_pusht_task.get_state(a.impl, cur2);
  CHECK(memcmp(cur, cur2, sizeof cur) == 0);
  uint8_t* rgb = (uint8_t*)malloc(96 * 96 * 3);
  CHECK_OK(dt_pusht_task.render(a.impl, 96, 96, 0, rgb));
  CHECK_OK(dt_pusht_task.render(a.impl, 96, 96, -1, rgb));
  CHECK(dt_pusht_task.render(a.impl, 96, 96, 3, rgb) == DT_ERR_ARG);
  free(rgb);
  dt_pusht_task.destroy(a.impl);
  dt_pusht_task.destroy(b.impl);
  dt_pusht_task.destroy(NULL);
}

//---------------------------------------------------------------------------------------------
// expert

// the original waypoint expert's upstream score (the smooth default is tested in
// pusht_expert_test.c): max reward over <= 300 steps, averaged over the test seeds 100000.. (numpy starts);
// DT_PUSHT_EXPERT_SEEDS overrides the count (default 20; the documented figure uses 50);
// DT_PUSHT_EXPERT_MODE=pymunk executes the
// episodes in pymunk mode (the expert still plans in the default mode)
static void test_expert_score(void) {
  int n = 20;
  const char* env = getenv("DT_PUSHT_EXPERT_SEEDS");
  if (env && atoi(env) > 0) n = atoi(env);
  const char* mode = getenv("DT_PUSHT_EXPERT_MODE");
  int pymunk = mode && strcmp(mode, "pymunk") == 0;
  dtPushtExpert* e = NULL;
  dtPusht* sim = NULL;
  dtPushtExpertOpts wo = dt_pusht_expert_waypoint_opts();
  CHECK_OK(dt_pusht_expert_new(0, &wo, &e));
  CHECK_OK(dt_pusht_new(&sim));
  dt_pusht_set_upstream_solver(sim, pymunk);
  double total = 0, t0 = dt_time_s();
  int successes = 0, steps_total = 0;
  for (int i = 0; i < n; i++) {
    double score = 0;
    int steps = 0;
    CHECK_OK(dt_pusht_expert_episode(e, sim, 100000 + (uint64_t)i, 1, 300, &score, &steps));
    total += score;
    successes += score >= 1.0;
    steps_total += steps;
  }
  double mean = total / n;
  printf("  waypoint expert (%s mode): mean score %.4f over %d seeds (100000..%d), %d successes, %.1f steps/episode, %.2f s\n",
         pymunk ? "pymunk" : "default", mean, n, 100000 + n - 1, successes, (double)steps_total / n, dt_time_s() - t0);
  CHECK(mean >= 0.9, "expert mean score %.4f < 0.9", mean);
  dt_pusht_expert_free(e);
  dt_pusht_free(sim);
}

static void test_speed(void) {
  dtPusht* sim = NULL;
  CHECK_OK(dt_pusht_new(&sim));
  CHECK_OK(dt_pusht_reset(sim, 5));
  double t0 = dt_time_s();
  int n = 0;
  for (int ep = 0; ep < 10; ep++) {
    CHECK_OK(dt_pusht_reset(sim, (uint64_t)ep));
    rollout(sim, (uint64_t)ep, 300, NULL, NULL);
    n += 300;
  }
  double dt1 = dt_time_s() - t0;
  uint8_t* rgb = (uint8_t*)malloc(96 * 96 * 3);
  t0 = dt_time_s();
  for (int i = 0; i < 200; i++) dt_pusht_render(sim, 96, 96, rgb);
  double dt2 = dt_time_s() - t0;
  free(rgb);
  printf("  speed: %.0f control steps/s (scripted pushing), render 96x96 %.3f ms\n", n / dt1, 1e3 * dt2 / 200);
  dt_pusht_free(sim);
}

DT_TEST_MAIN("pusht", TEST(test_coverage_values), TEST(test_sim_at_goal), TEST(test_numpy_reset),
             TEST(test_determinism), TEST(test_pymunk_mode), TEST(test_rewards_in_range), TEST(test_clone_restore),
             TEST(test_bad_inputs), TEST(test_render), TEST(test_task_table),
             TEST(test_expert_score), TEST(test_speed))

#else

static void test_skipped(void) { printf("  Push-T skipped: built without Chipmunk\n"); }
DT_TEST_MAIN("pusht", TEST(test_skipped))

#endif
