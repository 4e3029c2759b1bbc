// SPDX-License-Identifier: MIT
// Push-T expert (src/envs/pusht_expert.c): the smooth planner's trace statistics and score, its
// option checks and allocation-free act step. The original waypoint expert's score is tested in
// pusht_test.c.
#include "test.h"

// CHECK without a message passes an empty format string
#pragma GCC diagnostic ignored "-Wformat-zero-length"

#include "difftop/pusht.h"

#ifdef DT_HAVE_CHIPMUNK

#define MAX_STEPS 300

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

// q-quantile (0..1) of v[0..n-1] (sorts v)
static double quantile(double* v, int n, double q) {
  if (n < 1) return NAN;
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  int i = (int)(q * (n - 1) + 0.5);
  return v[i];
}

// episodes of the expert from the upstream test starts 100000..; collects the step between
// consecutive targets, the target's distance from the pusher and the change of the step
typedef struct {
  double score;
  int successes, steps, n_jump, n_lead, n_jerk;
  double *jump, *lead, *jerk;
} TraceStats;

static void run_episodes(const dtPushtExpertOpts* o, int n, TraceStats* ts) {
  memset(ts, 0, sizeof *ts);
  ts->jump = (double*)calloc((size_t)n * MAX_STEPS, sizeof(double));
  ts->lead = (double*)calloc((size_t)n * MAX_STEPS, sizeof(double));
  ts->jerk = (double*)calloc((size_t)n * MAX_STEPS, sizeof(double));
  dtPushtExpert* e = NULL;
  dtPusht* sim = NULL;
  CHECK_OK(dt_pusht_expert_new(0, o, &e));
  CHECK_OK(dt_pusht_new(&sim));
  if (!e || !sim || !ts->jump || !ts->lead || !ts->jerk) goto done;
  for (int i = 0; i < n; i++) {
    CHECK_OK(dt_pusht_reset_numpy(sim, 100000 + (uint32_t)i));
    dt_pusht_expert_reset(e);
    double s[DT_PUSHT_STATE_SIZE], prev[2] = {0, 0}, step[2] = {0, 0}, best = 0;
    int t = 0;
    for (; t < MAX_STEPS; t++) {
      float a[2];
      dt_pusht_get_state(sim, s);
      CHECK_OK(dt_pusht_expert_act(e, s, a));
      ts->lead[ts->n_lead++] = hypot(a[0] - s[DT_PUSHT_S_AGENT_X], a[1] - s[DT_PUSHT_S_AGENT_Y]);
      if (t > 0) {
        double dx = a[0] - prev[0], dy = a[1] - prev[1];
        ts->jump[ts->n_jump++] = hypot(dx, dy);
        if (t > 1) ts->jerk[ts->n_jerk++] = hypot(dx - step[0], dy - step[1]);
        step[0] = dx;
        step[1] = dy;
      }
      prev[0] = a[0];
      prev[1] = a[1];
      double ad[2] = {a[0], a[1]}, r = 0;
      int ok = 0;
      CHECK_OK(dt_pusht_step(sim, ad, &r, NULL, &ok));
      if (r > best) best = r;
      if (ok) {
        t++;
        break;
      }
    }
    ts->score += best / n;
    ts->successes += best >= 1.0;
    ts->steps += t;
  }
done:
  dt_pusht_expert_free(e);
  dt_pusht_free(sim);
}

static void free_stats(TraceStats* ts) {
  free(ts->jump);
  free(ts->lead);
  free(ts->jerk);
}

// seeds for the score tests: DT_PUSHT_EXPERT_SEEDS overrides the default
static int n_seeds(int dflt) {
  const char* env = getenv("DT_PUSHT_EXPERT_SEEDS");
  return env && atoi(env) > 0 ? atoi(env) : dflt;
}

// The smooth expert on the upstream test starts: a mouse-like trace that still succeeds. The
// target never moves more than max_speed per step (by construction); a critically damped PD
// follower (kp 100, kv 20) lags a target moving at v px per step by 2v px, so the target should
// sit within about 2.5 max_speed of the pusher. Default 3 seeds (documented: 50).
// DT_PUSHT_EXPERT_PLANNER=waypoints prints the same statistics for the original planner (only
// its score is checked).
static void test_smooth_trace(void) {
  int n = n_seeds(3);
  const char* planner = getenv("DT_PUSHT_EXPERT_PLANNER");
  int waypoints = planner && !strcmp(planner, "waypoints");
  dtPushtExpertOpts o = waypoints ? dt_pusht_expert_waypoint_opts() : dt_pusht_expert_default_opts();
  CHECK(o.smooth == !waypoints);
  TraceStats ts;
  double t0 = dt_time_s();
  run_episodes(&o, n, &ts);
  double wall = dt_time_s() - t0;
  int nj = ts.n_jump, nl = ts.n_lead, nk = ts.n_jerk;
  double jmax = quantile(ts.jump, nj, 1.0), j50 = quantile(ts.jump, nj, 0.5), j90 = quantile(ts.jump, nj, 0.9);
  double l50 = quantile(ts.lead, nl, 0.5), l90 = quantile(ts.lead, nl, 0.9);
  double k50 = quantile(ts.jerk, nk, 0.5), k90 = quantile(ts.jerk, nk, 0.9);
  printf("  %s expert: mean score %.4f over %d seeds (100000..%d), %d successes, %.1f steps/episode, %.1f s\n"
         "    target step median %.1f p90 %.1f max %.1f px; target-to-pusher median %.1f p90 %.1f px;"
         " step change median %.1f p90 %.1f px\n",
         waypoints ? "waypoint" : "smooth", ts.score, n, 100000 + n - 1, ts.successes, (double)ts.steps / n, wall, j50, j90, jmax, l50, l90, k50, k90);
  CHECK(ts.score >= 0.9, "expert mean score %.4f < 0.9", ts.score);
  if (waypoints) {
    free_stats(&ts);
    return;
  }
  CHECK(jmax <= o.max_speed + 1e-3, "a target step of %.2f px exceeds max_speed %.1f", jmax, o.max_speed);
  CHECK(l50 <= 2.5 * o.max_speed, "median target-to-pusher distance %.1f px", l50);
  CHECK(l90 <= 4.0 * o.max_speed, "90th percentile target-to-pusher distance %.1f px", l90);
  free_stats(&ts);
}

// one planner's act step allocates nothing after the first call, keeps the target on the
// table and rejects a non-finite or missing state
static void check_act_no_alloc(const dtPushtExpertOpts* o) {
  dtPushtExpert* e = NULL;
  dtPusht* sim = NULL;
  CHECK_OK(dt_pusht_expert_new(1, o, &e));
  CHECK_OK(dt_pusht_new(&sim));
  CHECK_OK(dt_pusht_reset(sim, 3));
  double s[DT_PUSHT_STATE_SIZE];
  float a[2];
  dt_pusht_get_state(sim, s);
  CHECK_OK(dt_pusht_expert_act(e, s, a));
  uint64_t before = dt_alloc_count();
  for (int t = 0; t < 5; t++) {
    dt_pusht_get_state(sim, s);
    CHECK_OK(dt_pusht_expert_act(e, s, a));
    double ad[2] = {a[0], a[1]};
    CHECK_OK(dt_pusht_step(sim, ad, NULL, NULL, NULL));
  }
  CHECK(dt_alloc_count() == before, "the expert allocated per action");
  CHECK(a[0] >= 0 && a[0] <= 512 && a[1] >= 0 && a[1] <= 512);
  s[DT_PUSHT_S_AGENT_X] = INFINITY;
  CHECK(dt_pusht_expert_act(e, s, a) == DT_ERR_NONFINITE);
  CHECK(dt_pusht_expert_act(e, NULL, a) == DT_ERR_ARG);
  dt_pusht_expert_free(e);
  dt_pusht_free(sim);
}

// the waypoint planner: no allocation per action; a zero sample count is an error
static void test_waypoints_no_alloc(void) {
  dtPushtExpertOpts wo = dt_pusht_expert_waypoint_opts();
  check_act_no_alloc(&wo);
  wo.samples = 0;
  dtPushtExpert* bad = NULL;
  CHECK(dt_pusht_expert_new(1, &wo, &bad) == DT_ERR_ARG && bad == NULL);
}

// the smooth planner: no allocation per action; bad options are errors
static void test_smooth_no_alloc_and_errors(void) {
  check_act_no_alloc(NULL);
  dtPushtExpertOpts bad[4];
  for (int i = 0; i < 4; i++) bad[i] = dt_pusht_expert_default_opts();
  bad[0].max_speed = 0;
  bad[1].sigma_accel = NAN;
  bad[2].w_lead = INFINITY;
  bad[3].horizon = 0;
  for (int i = 0; i < 4; i++) {
    dtPushtExpert* x = (dtPushtExpert*)1;
    CHECK(dt_pusht_expert_new(1, &bad[i], &x) == DT_ERR_ARG && x == NULL, "bad option set %d", i);
  }
  // the waypoint expert ignores the smooth settings
  dtPushtExpertOpts w = dt_pusht_expert_waypoint_opts();
  w.max_speed = 0;
  dtPushtExpert* x = NULL;
  CHECK_OK(dt_pusht_expert_new(1, &w, &x));
  dt_pusht_expert_free(x);
}

// the same seed gives the same actions; the first target starts from the pusher
static void test_smooth_deterministic(void) {
  dtPushtExpert *e1 = NULL, *e2 = NULL;
  dtPusht* sim = NULL;
  CHECK_OK(dt_pusht_expert_new(7, NULL, &e1));
  CHECK_OK(dt_pusht_expert_new(7, NULL, &e2));
  CHECK_OK(dt_pusht_new(&sim));
  CHECK_OK(dt_pusht_reset_numpy(sim, 100003));
  double s[DT_PUSHT_STATE_SIZE];
  dt_pusht_get_state(sim, s);
  dtPushtExpertOpts o = dt_pusht_expert_default_opts();
  for (int t = 0; t < 4; t++) {
    float a1[2], a2[2];
    CHECK_OK(dt_pusht_expert_act(e1, s, a1));
    CHECK_OK(dt_pusht_expert_act(e2, s, a2));
    CHECK(a1[0] == a2[0] && a1[1] == a2[1], "step %d: (%g, %g) vs (%g, %g)", t, a1[0], a1[1], a2[0], a2[1]);
    if (t == 0)
      CHECK(hypot(a1[0] - s[DT_PUSHT_S_AGENT_X], a1[1] - s[DT_PUSHT_S_AGENT_Y]) <= o.max_speed + 1e-3);
    double ad[2] = {a1[0], a1[1]};
    CHECK_OK(dt_pusht_step(sim, ad, NULL, NULL, NULL));
    dt_pusht_get_state(sim, s);
  }
  dt_pusht_expert_free(e1);
  dt_pusht_expert_free(e2);
  dt_pusht_free(sim);
}

// the multimodal option's first steps from one start state, for a given expert seed: the mean
// target offset from the pusher over the first 10 actions, projected on p (the pusher-to-block
// direction rotated by +90 degrees); returns the drawn mode
static int mm_first_steps(uint64_t expert_seed, uint32_t start, double* proj) {
  dtPushtExpertOpts o = dt_pusht_expert_default_opts();
  o.multimodal = 1;
  dtPushtExpert* e = NULL;
  dtPusht* sim = NULL;
  CHECK_OK(dt_pusht_expert_new(expert_seed, &o, &e));
  CHECK_OK(dt_pusht_new(&sim));
  CHECK_OK(dt_pusht_reset_numpy(sim, start));
  double s[DT_PUSHT_STATE_SIZE], mx = 0, my = 0;
  dt_pusht_get_state(sim, s);
  double ax = s[DT_PUSHT_S_AGENT_X], ay = s[DT_PUSHT_S_AGENT_Y];
  double ux = s[DT_PUSHT_S_COG_X] - ax, uy = s[DT_PUSHT_S_COG_Y] - ay, d = hypot(ux, uy);
  CHECK(dt_pusht_expert_mode(e) == -1, "mode before the first action");
  for (int t = 0; t < 10; t++) {
    float a[2];
    dt_pusht_get_state(sim, s);
    CHECK_OK(dt_pusht_expert_act(e, s, a));
    mx += (a[0] - ax) / 10;
    my += (a[1] - ay) / 10;
    double ad[2] = {a[0], a[1]};
    CHECK_OK(dt_pusht_step(sim, ad, NULL, NULL, NULL));
  }
  *proj = (-uy * mx + ux * my) / d;
  int mode = dt_pusht_expert_mode(e);
  dt_pusht_expert_free(e);
  dt_pusht_free(sim);
  return mode;
}

// multimodal: from one start state the two modes' first 10 actions head to opposite sides of
// the pusher-to-block line, and the same expert seed draws the same mode and actions
static void test_multimodal_first_actions(void) {
  double proj[2] = {NAN, NAN};
  for (uint64_t seed = 1; seed <= 20 && (isnan(proj[0]) || isnan(proj[1])); seed++) {
    double p = 0;
    int m = mm_first_steps(seed, 100000, &p);
    CHECK(m == 0 || m == 1, "mode %d", m);
    if (m == 0 || m == 1) proj[m] = p;
    double p2 = 0;
    CHECK(mm_first_steps(seed, 100000, &p2) == m && p2 == p, "seed %llu is not deterministic",
          (unsigned long long)seed);
  }
  printf("  multimodal, start 100000: mean first-10 target offset across the pusher-to-block line: "
         "mode 0 %+.1f px, mode 1 %+.1f px\n", proj[0], proj[1]);
  CHECK(proj[0] > 10 && proj[1] < -10, "modes do not separate: %+.1f, %+.1f px", proj[0], proj[1]);
  dtPushtExpert* e = NULL;
  CHECK_OK(dt_pusht_expert_new(1, NULL, &e));
  CHECK(dt_pusht_expert_mode(e) == -1 && dt_pusht_expert_default_opts().multimodal == 0);
  dt_pusht_expert_free(e);
  dtPushtExpertOpts bad = dt_pusht_expert_default_opts();
  bad.multimodal = 1;
  bad.detour = -1;
  CHECK(dt_pusht_expert_new(1, &bad, &e) == DT_ERR_ARG && e == NULL);
}

// multimodal episodes from the upstream test starts with one expert: both modes are drawn, and
// the expert still finishes the task. Measured over 50 starts (DT_PUSHT_EXPERT_SEEDS=50): modes
// 23 / 27, 44 successes (0.88; score 0.980, the unimodal expert's 42 and 0.970); the default 8
// starts (8 of 8 succeed) must reach more than half that rate.
#define MM_SUCCESS 0.88
static void test_multimodal_episodes(void) {
  int n = n_seeds(8), count[2] = {0, 0}, succ = 0, steps = 0;
  dtPushtExpertOpts o = dt_pusht_expert_default_opts();
  o.multimodal = 1;
  dtPushtExpert* e = NULL;
  dtPusht* sim = NULL;
  CHECK_OK(dt_pusht_expert_new(0, &o, &e));
  CHECK_OK(dt_pusht_new(&sim));
  if (!e || !sim) goto done;
  double score = 0;
  for (int i = 0; i < n; i++) {
    double best = 0;
    int t = 0;
    CHECK_OK(dt_pusht_expert_episode(e, sim, 100000 + (uint64_t)i, 1, MAX_STEPS, &best, &t));
    int m = dt_pusht_expert_mode(e);
    if (m == 0 || m == 1) count[m]++;
    succ += best >= 1.0;
    steps += t;
    score += best / n;
  }
  printf("  multimodal expert: %d starts, modes %d / %d, %d successes (%.2f), score %.4f, %.1f steps/episode\n",
         n, count[0], count[1], succ, (double)succ / n, score, (double)steps / n);
  CHECK(count[0] > 0 && count[1] > 0, "modes drawn %d / %d", count[0], count[1]);
  CHECK((double)succ / n > 0.5 * MM_SUCCESS, "success rate %.2f", (double)succ / n);
done:
  dt_pusht_expert_free(e);
  dt_pusht_free(sim);
}

DT_TEST_MAIN("envs/pusht_expert", TEST(test_smooth_no_alloc_and_errors), TEST(test_waypoints_no_alloc), TEST(test_smooth_deterministic),
             TEST(test_smooth_trace), TEST(test_multimodal_first_actions), TEST(test_multimodal_episodes))

#else

static void test_skipped(void) { printf("  Push-T expert skipped: built without Chipmunk\n"); }
DT_TEST_MAIN("envs/pusht_expert", TEST(test_skipped))

#endif
