// SPDX-License-Identifier: MIT
// The agent: planner schedule, updates that learn, the DiffTOP policy gradient with frozen
// pi and state critics, bad input, and training runs that resume exactly.
#include <sys/stat.h>

#include "rl/agent_internal.h"
#include "test.h"

enum { S = 5, A = 2, L = 20 };

static void small_config(dtRLConfig* c, int algo) {
  dt_rl_config_default(c);
  c->algo = algo;
  c->mlp_dim = 32, c->enc_dim = 32, c->latent_dim = 16;
  c->batch_size = 16, c->num_samples = 32, c->num_elites = 4, c->iterations = 2;
  c->seed_steps = 100, c->mppi_steps = 50;
  c->horizon = 3, c->horizon_end = 3, c->horizon_schedule_steps = 10;
  c->max_iterations = 10;
  c->lm_project = 1;
  c->progress = 0;
}

// a buffer of synthetic episodes: reward = first obs coordinate, obs drift with the action
static dtReplay* synthetic_replay(const dtRLConfig* c, dtRng* rng) {
  dtReplay* r = NULL;
  CHECK_OK(dt_replay_new(S, A, L, 10 * L, c->horizon, c, &r));
  float obs[(L + 1) * S], act[L * A], rew[L];
  for (int e = 0; e < 8; e++) {
    dt_rng_fill_normal(rng, obs, S, 0, 1);
    for (int t = 0; t < L; t++) {
      dt_rng_fill_uniform(rng, act + t * A, A, -1, 1);
      for (int i = 0; i < S; i++) obs[(t + 1) * S + i] = 0.9f * obs[t * S + i] + 0.1f * act[t * A + i % A];
      rew[t] = 0.5f + 0.5f * tanhf(obs[t * S]);
    }
    CHECK_OK(dt_replay_add(r, obs, act, rew));
  }
  return r;
}

static void test_planner_schedule(void) {
  dtRLConfig c;
  small_config(&c, DT_ALGO_DIFFTOP);
  dtAgent* a = NULL;
  CHECK_OK(dt_agent_new(&c, S, A, &a));
  CHECK(dt_agent_planner(a, 0, 0) == 0, "random during the seed steps");
  CHECK(dt_agent_planner(a, 0, 1) == 1, "evaluation never acts randomly");
  CHECK(dt_agent_planner(a, 120, 0) == 1, "MPPI after the seed steps");
  CHECK(dt_agent_planner(a, 150, 0) == 2, "trajectory optimization after the MPPI steps");
  dt_agent_free(a);
  small_config(&c, DT_ALGO_TDMPC);
  CHECK_OK(dt_agent_new(&c, S, A, &a));
  CHECK(dt_agent_planner(a, 100000, 0) == 1, "TD-MPC always plans with MPPI");
  dt_agent_free(a);
}

static void test_updates_reduce_the_loss(void) {
  dtRLConfig c;
  small_config(&c, DT_ALGO_DIFFTOP);
  dtRng rng;
  dt_rng_seed(&rng, 4);
  dtReplay* r = synthetic_replay(&c, &rng);
  dtAgent* a = NULL;
  CHECK_OK(dt_agent_new(&c, S, A, &a));
  dtUpdateInfo info;
  double first = 0, last = 0;
  for (int i = 0; i < 300; i++) {
    CHECK_OK(dt_agent_update(a, r, i, &info));
    CHECK(isfinite(info.weighted_loss) && isfinite(info.grad_norm));
    if (i < 20) first += info.reward / 20;
    if (i >= 280) last += info.reward / 20;
  }
  CHECK(last < 0.5 * first, "reward loss %g -> %g", first, last);
  dt_agent_free(a);
  dt_replay_free(r);
}

static void test_policy_gradient_freezes_pi_and_state_critics(void) {
  dtRLConfig c;
  small_config(&c, DT_ALGO_DIFFTOP);
  dtRng rng;
  dt_rng_seed(&rng, 5);
  dtReplay* r = synthetic_replay(&c, &rng);
  dtAgent* a = NULL;
  CHECK_OK(dt_agent_new(&c, S, A, &a));
  dtUpdateInfo info;
  for (int i = 0; i < 50; i++) CHECK_OK(dt_agent_update(a, r, i, &info));  // non-zero critics
  dtTold* m = dt_agent_model(a);
  dtParams before;
  CHECK_OK(dt_params_clone(&before, &m->params));
  float obs[S], act[A];
  float gnorm = 0;
  for (int t = 0; t < 10; t++) {
    dt_rng_fill_normal(&rng, obs, S, 0, 1);
    CHECK_OK(dt_agent_act(a, obs, 1000, t == 0, 0, act));
    CHECK(fabsf(act[0]) <= 1 && fabsf(act[1]) <= 1 && isfinite(act[0]));
    CHECK_OK(dt_agent_pg_accumulate(a, obs));
  }
  CHECK_OK(dt_agent_pg_step(a, &gnorm));
  CHECK(gnorm > 0 && isfinite(gnorm), "policy-gradient norm %g", gnorm);
  int changed_enc = 0, changed_frozen = 0;
  for (int i = 0; i < m->params.count; i++) {
    dtTensor *p = m->params.items[i], *q = before.items[i];
    int diff = memcmp(p->val, q->val, (size_t)p->size * sizeof(float)) != 0;
    if (!strncmp(p->name, "_encoder", 8) || !strncmp(p->name, "_dynamics", 9)) changed_enc |= diff;
    if (!strncmp(p->name, "_pi", 3) || !strncmp(p->name, "_Qs", 3)) changed_frozen |= diff;
  }
  CHECK(changed_enc, "the encoder and dynamics must move with the policy gradient");
  CHECK(!changed_frozen, "pi and the state critics must stay frozen");
  dt_params_free(&before);
  dt_agent_free(a);
  dt_replay_free(r);
}

// explore: in the trajectory-optimisation phase a training action is the solver's best first
// action plus N(0, s^2) with s the std schedule's value; evaluation actions are the solver's
static void test_explore_noise(void) {
  float obs[S] = {0.1f, -0.2f, 0.3f, 0.0f, 0.5f}, act[2][A], best[2][A];
  int64_t step = 200;  // seed 100 + MPPI 50 steps: the solver's phase
  for (int eval = 0; eval <= 1; eval++) {
    for (int e = 0; e <= 1; e++) {
      dtRLConfig c;
      small_config(&c, DT_ALGO_DIFFTOP);
      c.explore = e;
      c.std_start = 0.5f, c.std_end = 0.05f, c.std_schedule_steps = 400;  // s = 0.275 at step 200
      dtAgent* a = NULL;
      CHECK_OK(dt_agent_new(&c, S, A, &a));
      if (!a) return;
      CHECK(dt_agent_planner(a, step, eval) == 2);
      CHECK_OK(dt_agent_act(a, obs, step, 1, eval, act[e]));
      memcpy(best[e], a->a_best, sizeof best[e]);
      dt_agent_free(a);
    }
    // the same solve either way (the noise is drawn after it)
    CHECK(!memcmp(best[0], best[1], sizeof best[0]));
    double moved = 0;
    for (int j = 0; j < A; j++) moved += fabs(act[1][j] - act[0][j]);
    if (eval) CHECK(moved == 0, "evaluation actions must not get exploration noise (moved %g)", moved);
    else CHECK(moved > 0.01 && moved < 4 * 0.275 * A, "training noise moved the action by %g", moved);
  }
}

// shift_init: within an episode the solver starts from the previous plan advanced by one step;
// at an episode start, or without the option, from the pi rollout
static void test_shift_init_warm_start(void) {
  for (int shift = 0; shift <= 1; shift++) {
    dtRLConfig c;
    small_config(&c, DT_ALGO_DIFFTOP);
    c.shift_init = shift;
    dtAgent* a = NULL;
    CHECK_OK(dt_agent_new(&c, S, A, &a));
    float obs[S] = {0.1f, -0.2f, 0.3f, 0.0f, 0.5f}, act[A], prev[16];
    int n = c.horizon * A;
    for (int t = 0; t < 3; t++) {
      CHECK_OK(dt_agent_act(a, obs, 1000, t == 0, 0, act));
      if (t > 0) {
        int same = !memcmp(a->a_init, prev + A, (size_t)(n - A) * sizeof(float));
        CHECK(same == shift, "shift_init=%d step %d: start %s the shifted plan", shift, t,
              same ? "is" : "is not");
      }
      memcpy(prev, a->a_best, (size_t)n * sizeof(float));
    }
    // a new episode starts from the pi rollout again
    CHECK_OK(dt_agent_act(a, obs, 1000, 1, 0, act));
    CHECK(memcmp(a->a_init, prev + A, (size_t)(n - A) * sizeof(float)) != 0);
    dt_agent_free(a);
  }
}

// mppi_init: the solver starts from the MPPI elite a twin agent's MPPI draws (the same
// generator state), executes a plan at least as good as that start, and still gets a policy
// gradient; without the option the start is the pi rollout
static void test_mppi_init(void) {
  float obs[S] = {0.1f, -0.2f, 0.3f, 0.0f, 0.5f}, act[A], seq[16];
  int64_t step = 1000;
  for (int mi = 0; mi <= 1; mi++) {
    dtRLConfig c;
    small_config(&c, DT_ALGO_DIFFTOP);
    c.mppi_init = mi;
    dtRng rng;
    dt_rng_seed(&rng, 6);
    dtReplay* r = synthetic_replay(&c, &rng);
    dt_rng_seed(&rng, 6);
    dtReplay* r2 = synthetic_replay(&c, &rng);  // own priorities: the same samples as r
    dtAgent *a = NULL, *twin = NULL;
    CHECK_OK(dt_agent_new(&c, S, A, &a));
    CHECK_OK(dt_agent_new(&c, S, A, &twin));
    if (!a || !twin) return;
    dtUpdateInfo info;
    for (int i = 0; i < 50; i++) {  // non-zero reward and values, identical in both
      CHECK_OK(dt_agent_update(a, r, i, &info));
      CHECK_OK(dt_agent_update(twin, r2, i, &info));
    }
    int h = dt_agent_horizon(&c, step), n = h * A, elite = -1;
    CHECK_OK(dt_agent_act(a, obs, step, 1, 0, act));
    CHECK_OK(dt_agent_mppi_plan(twin, obs, h, step, 1, &elite));
    CHECK(elite >= 0);
    dt_agent_mppi_sequence(twin, elite, h, seq);
    int same = !memcmp(a->a_init, seq, (size_t)n * sizeof(float));
    CHECK(same == mi, "mppi_init=%d: the start %s the MPPI elite", mi, same ? "is" : "is not");
    float gnorm = 0, g_init, g_best;
    CHECK_OK(dt_agent_pg_accumulate(a, obs));
    // the executed plan is the best iterate, never worse than the start (evaluated after the
    // backward: an evaluation replaces the solve's saved state)
    CHECK_OK(dt_trajopt_eval(a->solvers[h], 1, obs, a->a_init, &g_init, NULL));
    CHECK_OK(dt_trajopt_eval(a->solvers[h], 1, obs, a->a_best, &g_best, NULL));
    CHECK(g_best >= g_init, "best %g below the start %g", g_best, g_init);
    // more states of the episode (a single one may end with its first action on the box,
    // where the projected solve's derivative is zero)
    for (int t = 1; t < 10; t++) {
      float o[S];
      dt_rng_fill_normal(&rng, o, S, 0, 1);
      CHECK_OK(dt_agent_act(a, o, step, 0, 0, act));
      CHECK_OK(dt_agent_pg_accumulate(a, o));
    }
    CHECK_OK(dt_agent_pg_step(a, &gnorm));
    CHECK(gnorm > 0 && isfinite(gnorm), "policy-gradient norm %g", gnorm);
    dt_agent_free(a);
    dt_agent_free(twin);
    dt_replay_free(r);
    dt_replay_free(r2);
  }
}

// explore with mppi_init: the training action is the solver's best first action plus TD-MPC's
// noise, the MPPI elites' std of the first action times N(0, 1), clipped to the box (a twin
// agent without explore draws the same normals next)
static void test_mppi_init_explore(void) {
  float obs[S] = {0.1f, -0.2f, 0.3f, 0.0f, 0.5f}, act[2][A];
  int64_t step = 1000;
  dtAgent* ag[2] = {NULL, NULL};
  dtReplay* rp[2] = {NULL, NULL};
  for (int e = 0; e <= 1; e++) {
    dtRLConfig c;
    small_config(&c, DT_ALGO_DIFFTOP);
    c.mppi_init = 1, c.explore = e;
    c.std_start = c.std_end = 0.01f;  // a low floor: the elites' std is above it
    dtRng rng;
    dt_rng_seed(&rng, 8);
    rp[e] = synthetic_replay(&c, &rng);
    CHECK_OK(dt_agent_new(&c, S, A, &ag[e]));
    if (!ag[e]) return;
    dtUpdateInfo info;
    for (int i = 0; i < 30; i++) CHECK_OK(dt_agent_update(ag[e], rp[e], i, &info));
    CHECK_OK(dt_agent_act(ag[e], obs, step, 1, 0, act[e]));
  }
  dtAgent *noisy = ag[1], *plain = ag[0];
  CHECK(!memcmp(noisy->a_best, plain->a_best, A * sizeof(float)), "the same solve either way");
  float floor_std = dt_agent_min_std(&noisy->cfg, step);
  int above = 0;
  for (int j = 0; j < A; j++) {
    above |= noisy->mppi_std[j] > floor_std * 1.01f;
    float v = plain->a_best[j] + noisy->mppi_std[j] * dt_rng_normal(&plain->rng);
    v = v > 1 ? 1 : (v < -1 ? -1 : v);
    CHECK_NEAR(act[1][j], v, 1e-6);
  }
  CHECK(above, "the elites' std should exceed the floor %g here (else the test cannot tell)", floor_std);
  for (int e = 0; e <= 1; e++) dt_agent_free(ag[e]), dt_replay_free(rp[e]);
}

static void test_bad_observation(void) {
  dtRLConfig c;
  small_config(&c, DT_ALGO_DIFFTOP);
  dtAgent* a = NULL;
  CHECK_OK(dt_agent_new(&c, S, A, &a));
  float obs[S] = {0, 0, NAN, 0, 0}, act[A];
  CHECK(dt_agent_act(a, obs, 1000, 1, 0, act) == DT_ERR_NONFINITE);
  dt_agent_free(a);
  c.horizon = 0;
  CHECK(dt_agent_new(&c, S, A, &a) == DT_ERR_ARG);
}

#ifdef DT_HAVE_MUJOCO
static int read_file(const char* path, char* buf, size_t n) {
  FILE* f = fopen(path, "rb");
  if (!f) return -1;
  size_t k = fread(buf, 1, n - 1, f);
  buf[k] = 0;
  fclose(f);
  return (int)k;
}

static void test_resume_is_exact(void) {
  dtRLConfig c;
  small_config(&c, DT_ALGO_DIFFTOP);
  snprintf(c.task, sizeof c.task, "cartpole-swingup");
  c.action_repeat = 8, c.eval_freq = 1000, c.eval_episodes = 1, c.seed_steps = 125;
  c.mppi_steps = 50;
  const char *da = DT_BINARY_DIR "/rl_resume_a", *db = DT_BINARY_DIR "/rl_resume_b";
  // straight through 3000 env steps, and 2000 then resumed to 3000
  c.train_steps = 3000;
  CHECK_OK(dt_rl_train(&c, da, NULL));
  c.train_steps = 2000;
  CHECK_OK(dt_rl_train(&c, db, NULL));
  c.train_steps = 3000;
  CHECK_OK(dt_rl_train_ex(&c, db, 1, NULL));
  static char x[1 << 16], y[1 << 16];
  char pa[512], pb[512];
  // evaluations: identical but for the wall-time column (the last one)
  snprintf(pa, sizeof pa, "%s/eval.csv", da);
  snprintf(pb, sizeof pb, "%s/eval.csv", db);
  CHECK(read_file(pa, x, sizeof x) > 0 && read_file(pb, y, sizeof y) > 0);
  int lines = 0;
  for (char *px = x, *py = y; *px && *py; lines++) {
    char *ex = strchr(px, '\n'), *ey = strchr(py, '\n');
    if (!ex || !ey) break;
    char *cx = ex, *cy = ey;
    while (cx > px && *cx != ',') cx--;
    while (cy > py && *cy != ',') cy--;
    CHECK(cx - px == cy - py && memcmp(px, py, (size_t)(cx - px)) == 0, "eval line %d differs", lines);
    px = ex + 1, py = ey + 1;
  }
  CHECK(lines == 5, "expected a header and 4 evaluations (0..3000), got %d lines", lines);
  // the final model: byte-identical
  snprintf(pa, sizeof pa, "%s/latest.safetensors", da);
  snprintf(pb, sizeof pb, "%s/latest.safetensors", db);
  int na = read_file(pa, x, sizeof x), nb = read_file(pb, y, sizeof y);
  CHECK(na > 0 && na == nb && memcmp(x, y, (size_t)na) == 0, "the resumed run's model differs");
}
#endif

DT_TEST_MAIN("rl/agent", TEST(test_planner_schedule), TEST(test_updates_reduce_the_loss),
             TEST(test_policy_gradient_freezes_pi_and_state_critics), TEST(test_shift_init_warm_start), TEST(test_explore_noise), TEST(test_mppi_init), TEST(test_mppi_init_explore),
             TEST(test_bad_observation)
#ifdef DT_HAVE_MUJOCO
             , TEST(test_resume_is_exact)
#endif
)
