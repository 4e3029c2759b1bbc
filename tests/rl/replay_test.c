// SPDX-License-Identifier: MIT
// Prioritized replay: TD-MPC's insertion rules, sampling distribution, weights, sequences.
#include "test.h"

enum { S = 3, A = 2, L = 10, H = 3 };

static dtReplay* filled(int episodes, int64_t capacity) {
  dtRLConfig c;
  dt_rl_config_default(&c);
  dtReplay* r = NULL;
  CHECK_OK(dt_replay_new(S, A, L, capacity, H, &c, &r));
  float obs[(L + 1) * S], act[L * A], rew[L];
  for (int e = 0; e < episodes; e++) {
    // values encode (episode, step) so that sampled sequences can be checked
    for (int t = 0; t <= L; t++)
      for (int i = 0; i < S; i++) obs[t * S + i] = (float)(1000 * e + t);
    for (int t = 0; t < L; t++) {
      for (int i = 0; i < A; i++) act[t * A + i] = (float)(1000 * e + t) + 0.5f;
      rew[t] = (float)(1000 * e + t) + 0.25f;
    }
    CHECK_OK(dt_replay_add(r, obs, act, rew));
  }
  return r;
}

static void test_sequences_and_last_positions(void) {
  dtReplay* r = filled(3, 1000);
  CHECK(dt_replay_size(r) == 3 * L);
  enum { B = 256 };
  static float obs[(H + 1) * B * S], act[H * B * A], rew[H * B], w[B];
  int64_t idx[B];
  dtRng rng;
  dt_rng_seed(&rng, 1);
  CHECK_OK(dt_replay_sample(r, B, &rng, obs, act, rew, w, idx));
  for (int b = 0; b < B; b++) {
    int t = (int)(idx[b] % L);
    // the last H positions of every episode have priority 0: never sampled
    CHECK(t < L - H, "sampled position %d of an episode of %d", t, L);
    float base = obs[b * S];
    for (int h = 0; h <= H; h++) CHECK_NEAR(obs[(h * B + b) * S], base + h, 0);
    for (int h = 0; h < H; h++) {
      CHECK_NEAR(act[(h * B + b) * A], base + h + 0.5f, 0);
      CHECK_NEAR(rew[h * B + b], base + h + 0.25f, 0);
    }
    // fresh episodes share the maximal priority: all weights equal 1
    CHECK_NEAR(w[b], 1.0, 1e-6);
  }
  dt_replay_free(r);
}

static void test_priorities_shape_sampling(void) {
  dtReplay* r = filled(2, 1000);
  // give one transition a priority 100x the others': p ~ prio^0.6
  int64_t all[2 * L];
  float prio[2 * L];
  int n = 0;
  for (int e = 0; e < 2; e++)
    for (int t = 0; t < L - H; t++) {
      all[n] = e * L + t;
      prio[n] = all[n] == 5 ? 100.0f : 1.0f;
      n++;
    }
  dt_replay_update(r, all, prio, n);
  enum { B = 4000 };
  static float obs[(H + 1) * B * S], act[H * B * A], rew[H * B], w[B];
  static int64_t idx[B];
  dtRng rng;
  dt_rng_seed(&rng, 2);
  CHECK_OK(dt_replay_sample(r, B, &rng, obs, act, rew, w, idx));
  int hits = 0;
  for (int b = 0; b < B; b++) hits += idx[b] == 5;
  double p5 = pow(100.0, 0.6) / (pow(100.0, 0.6) + (n - 1));
  double sd = sqrt(B * p5 * (1 - p5));
  CHECK(fabs(hits - B * p5) < 6 * sd, "hits %d, expected %.0f +- %.0f", hits, B * p5, sd);
  // weights (N p)^-beta normalised by the max: the frequent one is the smallest
  for (int b = 0; b < B; b++) {
    if (idx[b] == 5) {
      double wmax = pow(2.0 * L * (1 / (pow(100.0, 0.6) + n - 1)), -0.4);
      double w5 = pow(2.0 * L * p5, -0.4) / wmax;
      CHECK_NEAR(w[b], w5, 1e-5);
      break;
    }
  }
  dt_replay_free(r);
}

static void test_full_buffer_samples_without_replacement(void) {
  dtReplay* r = filled(5, 2 * L);  // room for 2 episodes: the oldest are overwritten
  CHECK(dt_replay_size(r) == 2 * L);
  enum { B = 2 * (L - H) };
  float obs[(H + 1) * B * S], act[H * B * A], rew[H * B], w[B];
  int64_t idx[B];
  dtRng rng;
  dt_rng_seed(&rng, 3);
  CHECK_OK(dt_replay_sample(r, B, &rng, obs, act, rew, w, idx));
  for (int i = 0; i < B; i++)
    for (int j = i + 1; j < B; j++) CHECK(idx[i] != idx[j], "index %lld drawn twice", (long long)idx[i]);
  // only the two newest episodes (3 and 4) remain
  for (int b = 0; b < B; b++) CHECK(obs[b * S] >= 3000, "old episode %g sampled", obs[b * S]);
  // one more than the sampleable transitions is an error, not a hang
  float o2[(H + 1) * (B + 1) * S], a2[H * (B + 1) * A], r2[H * (B + 1)], w2[B + 1];
  int64_t i2[B + 1];
  CHECK(dt_replay_sample(r, B + 1, &rng, o2, a2, r2, w2, i2) == DT_ERR_STATE);
  dt_replay_free(r);
}

static void test_bad_input(void) {
  dtRLConfig c;
  dt_rl_config_default(&c);
  dtReplay* r = NULL;
  CHECK(dt_replay_new(S, A, L, L - 1, H, &c, &r) == DT_ERR_ARG);
  CHECK(dt_replay_new(S, A, H, 100, H, &c, &r) == DT_ERR_ARG);
  CHECK_OK(dt_replay_new(S, A, L, 100, H, &c, &r));
  float obs[(L + 1) * S] = {0}, act[L * A] = {0}, rew[L] = {0};
  act[3] = NAN;
  CHECK(dt_replay_add(r, obs, act, rew) == DT_ERR_NONFINITE);
  CHECK(dt_replay_size(r) == 0, "a rejected episode must not be stored");
  float o[(H + 1) * S], a[H * A], rr[H], w[1];
  int64_t idx[1];
  dtRng rng;
  dt_rng_seed(&rng, 1);
  CHECK(dt_replay_sample(r, 1, &rng, o, a, rr, w, idx) == DT_ERR_STATE);
  dt_replay_free(r);
}

DT_TEST_MAIN("rl/replay", TEST(test_sequences_and_last_positions),
             TEST(test_priorities_shape_sampling), TEST(test_full_buffer_samples_without_replacement),
             TEST(test_bad_input))
