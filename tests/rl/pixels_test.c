// SPDX-License-Identifier: MIT
// Pixel observations: the frame replay rebuilds stacks exactly, a pixel agent (conv encoders,
// augmentation) updates and acts with finite outputs and trains its conv weights, and a tiny
// pixel training run on cartpole-swingup completes.
#include <sys/stat.h>

#include "test.h"

enum { FS = 3, IH = 4, IW = 5, FRAME = 3 * IH * IW, OBS = FS * FRAME, L = 6, A = 2 };

// pixel value of channel c of frame t of episode e (distinct per episode, time and channel)
static uint8_t pix(int e, int t, int c, int i) { return (uint8_t)(40 * e + 5 * t + c + (i % 2) * 100); }

// stacked observations as the env writes them: frames t-2, t-1, t (oldest first), the first
// frame repeated over the stack at reset
static void make_episode(int e, uint8_t* obs) {
  for (int t = 0; t <= L; t++)
    for (int k = 0; k < FS; k++) {
      int f = t - (FS - 1) + k;
      if (f < 0) f = 0;
      for (int c = 0; c < 3; c++)
        for (int i = 0; i < IH * IW; i++)
          obs[(size_t)t * OBS + k * FRAME + c * IH * IW + i] = pix(e, f, c, i);
    }
}

static void test_replay_rebuilds_stacks(void) {
  dtRLConfig c;
  dt_rl_config_default(&c);
  int H = 2;
  dtReplay* r = NULL;
  CHECK_OK(dt_replay_new_pixels(FS, IH, IW, A, L, 4 * L, H, &c, &r));
  if (!r) return;
  static uint8_t obs[2][(L + 1) * OBS];
  float act[L * A], rew[L];
  for (int i = 0; i < L * A; i++) act[i] = 0.1f * (float)(i % 7) - 0.3f;
  for (int e = 0; e < 2; e++) {
    make_episode(e, obs[e]);
    for (int t = 0; t < L; t++) rew[t] = (float)(10 * e + t);
    CHECK_OK(dt_replay_add_pixels(r, obs[e], act, rew));
  }
  CHECK(dt_replay_size(r) == 2 * L);
  // a pixel buffer takes no float episodes
  float fobs[(L + 1) * 4] = {0};
  CHECK(dt_replay_add(r, fobs, act, rew) == DT_ERR_STATE);
  enum { B = 32 };
  static float out[(3) * B * OBS];
  float sa[2 * B * A], sr[2 * B], w[B];
  int64_t idx[B];
  dtRng rng;
  dt_rng_seed(&rng, 9);
  int starts = 0, mismatches = 0;
  for (int round = 0; round < 4; round++) {
    CHECK_OK(dt_replay_sample(r, B, &rng, out, sa, sr, w, idx));
    for (int b = 0; b < B; b++) {
      int e = (int)(idx[b] / L), t = (int)(idx[b] % L);
      CHECK(t < L - H, "sampled a position among the last H of an episode");
      starts += t < FS - 1;
      CHECK(sr[b] == (float)(10 * e + t), "reward of the sample");
      for (int h = 0; h <= H; h++) {
        int tt = t + h;
        const float* o = out + ((size_t)h * B + b) * OBS;
        // equal to the env's stacked observation at tt, as floats 0..255
        for (int k = 0; k < OBS; k++) mismatches += o[k] != (float)obs[e][(size_t)tt * OBS + k];
      }
    }
  }
  CHECK(mismatches == 0, "%d values differ from the env's stacks", mismatches);
  CHECK(starts > 0, "no sample near an episode start (repeated first frame not exercised)");
  dt_replay_free(r);
  // a state buffer takes no pixel episodes
  CHECK_OK(dt_replay_new(4, A, L, 2 * L, H, &c, &r));
  CHECK(dt_replay_add_pixels(r, obs[0], act, rew) == DT_ERR_STATE);
  dt_replay_free(r);
}

// a tiny pixel config: 40x40 images (40 -> 17 -> 7 -> 3 -> 1), 8 channels
static void pixel_config(dtRLConfig* c, int algo) {
  dt_rl_config_default(c);
  c->algo = algo;
  CHECK_OK(dt_rl_config_set(c, "obs", "pixels"));
  CHECK_OK(dt_rl_config_set(c, "img_size", "40"));
  CHECK_OK(dt_rl_config_set(c, "num_channels", "8"));
  c->mlp_dim = 32, c->latent_dim = 16;
  c->batch_size = 8, c->num_samples = 32, c->num_elites = 4, c->iterations = 2;
  c->seed_steps = 10, c->mppi_steps = 0;
  c->horizon = 3, c->horizon_end = 3, c->horizon_schedule_steps = 10;
  c->max_iterations = 6;
  c->lm_project = 1;
  c->progress = 0;
  c->lr = 3e-4f;
}

static void test_pixel_agent_updates_and_acts(void) {
  dtRLConfig c;
  pixel_config(&c, DT_ALGO_DIFFTOP);
  int S = 9 * 40 * 40, Lp = 12;
  dtAgent* a = NULL;
  CHECK(dt_agent_new(&c, S + 1, A, &a) == DT_ERR_ARG, "a wrong obs size is refused");
  CHECK_OK(dt_agent_new(&c, S, A, &a));
  if (!a) return;
  dtTold* m = dt_agent_model(a);
  CHECK(m->pixels && m->obs_shape[0] == 9 && m->obs_shape[1] == 40);
  const char* names[] = {"_encoder.1.weight", "_encoder.7.bias", "_encoder.10.weight",
                         "_Qs1_enc.1.weight", "_Qs2_enc.10.weight", "_Qs1.0.weight",
                         "_dynamics.0.weight", "_pi.4.bias"};
  for (int i = 0; i < 8; i++) CHECK(dt_params_find(&m->params, names[i]) != NULL, "%s", names[i]);
  dtTensor* q0 = dt_params_find(&m->params, "_Qs1.0.weight");
  CHECK(q0 && q0->shape[1] == 16 + A, "the state critic head takes [feature, a]");
  CHECK(dt_params_find(&m->params, "_Qs1_enc.10.weight") !=
            dt_params_find(&m->params, "_encoder.10.weight"), "own encoders");
  dtTensor* w1 = dt_params_find(&m->params, "_encoder.1.weight");
  dtTensor* wq = dt_params_find(&m->params, "_Qs2_enc.3.weight");
  // copies of the first conv of h and a conv of Qs2's own encoder, to see them train
  float* before_w1 = dt_malloc((size_t)w1->size * sizeof(float));
  float* before_wq = dt_malloc((size_t)wq->size * sizeof(float));
  memcpy(before_w1, w1->val, (size_t)w1->size * sizeof(float));
  memcpy(before_wq, wq->val, (size_t)wq->size * sizeof(float));
  // a buffer of random-pixel episodes whose reward is the mean brightness of a patch
  dtReplay* r = NULL;
  CHECK_OK(dt_replay_new_pixels(3, 40, 40, A, Lp, 4 * Lp, c.horizon, &c, &r));
  dtRng rng;
  dt_rng_seed(&rng, 2);
  uint8_t* obs = dt_malloc((size_t)(Lp + 1) * S);
  float act[12 * A], rew[12];
  for (int e = 0; e < 3; e++) {
    for (size_t i = 0; i < (size_t)(Lp + 1) * S; i++) obs[i] = (uint8_t)dt_rng_below(&rng, 256);
    dt_rng_fill_uniform(&rng, act, Lp * A, -1, 1);
    for (int t = 0; t < Lp; t++) rew[t] = obs[(size_t)t * S + 6 * 1600] / 255.0f;
    CHECK_OK(dt_replay_add_pixels(r, obs, act, rew));
  }
  dtUpdateInfo info;
  for (int i = 0; i < 3; i++) {
    CHECK_OK(dt_agent_update(a, r, 100 + i, &info));
    CHECK(isfinite(info.consistency) && isfinite(info.reward) && isfinite(info.value) &&
              isfinite(info.state_value) && isfinite(info.pi) && isfinite(info.grad_norm),
          "update %d: losses %g %g %g %g %g", i, (double)info.consistency, (double)info.reward,
          (double)info.value, (double)info.state_value, (double)info.pi);
  }
  CHECK(info.reward > 0 && info.grad_norm > 0, "reward loss %g, grad norm %g",
        (double)info.reward, (double)info.grad_norm);
  // (the critics' heads start with a zero last layer, so their encoders get gradients from
  // the second update on)
  CHECK(memcmp(w1->val, before_w1, (size_t)w1->size * sizeof(float)) != 0,
        "the encoder's first conv did not move");
  CHECK(memcmp(wq->val, before_wq, (size_t)wq->size * sizeof(float)) != 0,
        "the state critic's own conv encoder did not move");
  dt_free(before_w1), dt_free(before_wq);
  // acting on a float pixel observation: MPPI (TD-MPC) and trajectory optimization + the PG
  float* o = dt_malloc((size_t)S * sizeof(float));
  for (int i = 0; i < S; i++) o[i] = (float)obs[i];
  float action[A];
  CHECK(dt_agent_planner(a, 100, 0) == 2);
  CHECK_OK(dt_agent_act(a, o, 100, 1, 0, action));
  CHECK(isfinite(action[0]) && isfinite(action[1]) && fabsf(action[0]) <= 1, "%g %g",
        (double)action[0], (double)action[1]);
  CHECK_OK(dt_agent_pg_accumulate(a, o));
  float pg_norm = -1;
  CHECK_OK(dt_agent_pg_step(a, &pg_norm));
  CHECK(isfinite(pg_norm) && pg_norm >= 0, "PG grad norm %g", (double)pg_norm);
  dt_agent_free(a);
  pixel_config(&c, DT_ALGO_TDMPC);
  CHECK_OK(dt_agent_new(&c, S, A, &a));
  CHECK(dt_params_find(&dt_agent_model(a)->params, "_Qs1_enc.1.weight") == NULL,
        "TD-MPC has no state critics");
  CHECK_OK(dt_agent_update(a, r, 100, &info));
  CHECK_OK(dt_agent_act(a, o, 100, 1, 0, action));
  CHECK(isfinite(action[0]) && isfinite(action[1]));
  dt_agent_free(a);
  dt_replay_free(r);
  dt_free(obs), dt_free(o);
}

static void test_pixel_train_run(void) {
  dtRLConfig c;
  pixel_config(&c, DT_ALGO_DIFFTOP);
  snprintf(c.task, sizeof c.task, "cartpole-swingup");
  c.action_repeat = 8, c.episode_length = 96;  // 12 agent steps per episode
  c.seed_steps = 12, c.train_steps = 192, c.eval_freq = 100000, c.eval_episodes = 1;
  const char* dir = DT_BINARY_DIR "/rl_pixels_run";
  dtTrainResult res;
  CHECK_OK(dt_rl_train(&c, dir, &res));
  CHECK(res.episodes == 2 && res.env_steps == 192, "%d episodes, %lld env steps", res.episodes,
        (long long)res.env_steps);
  CHECK(isfinite(res.final_eval), "evaluation return %g", res.final_eval);
  char path[512], line[1024];
  snprintf(path, sizeof path, "%s/train.csv", dir);
  FILE* f = fopen(path, "r");
  CHECK(f != NULL);
  int rows = 0, trajopt = 0;
  while (f && fgets(line, sizeof line, f)) {
    rows++;
    trajopt += strstr(line, ",trajopt,") != NULL;
    CHECK(!strstr(line, "nan") && !strstr(line, "inf"), "%s", line);
  }
  if (f) fclose(f);
  CHECK(rows == 3 && trajopt == 1, "%d rows, %d trajopt episodes", rows, trajopt);
}

static long read_all(const char* path, char* buf, size_t n) {
  FILE* f = fopen(path, "rb");
  if (!f) return -1;
  size_t k = fread(buf, 1, n, f);
  fclose(f);
  return (long)k;
}

// a pixel run resumed from its checkpoint (replay frames, optimizers, generators) ends with the
// byte-identical model of the run that went straight through
static void test_pixel_resume_is_exact(void) {
  dtRLConfig c;
  pixel_config(&c, DT_ALGO_DIFFTOP);
  snprintf(c.task, sizeof c.task, "cartpole-swingup");
  c.action_repeat = 8, c.episode_length = 96;  // 12 agent steps per episode
  c.seed_steps = 12, c.eval_freq = 100000, c.eval_episodes = 1;
  const char *da = DT_BINARY_DIR "/rl_pixels_resume_a", *db = DT_BINARY_DIR "/rl_pixels_resume_b";
  c.train_steps = 288;
  CHECK_OK(dt_rl_train(&c, da, NULL));
  c.train_steps = 192;
  CHECK_OK(dt_rl_train(&c, db, NULL));
  c.train_steps = 288;
  CHECK_OK(dt_rl_train_ex(&c, db, 1, NULL));
  static char x[1 << 20], y[1 << 20];
  char pa[512], pb[512];
  snprintf(pa, sizeof pa, "%s/latest.safetensors", da);
  snprintf(pb, sizeof pb, "%s/latest.safetensors", db);
  long na = read_all(pa, x, sizeof x), nb = read_all(pb, y, sizeof y);
  CHECK(na > 0 && na < (long)sizeof x && na == nb && memcmp(x, y, (size_t)na) == 0,
        "the resumed pixel run's model differs (%ld vs %ld bytes)", na, nb);
}

DT_TEST_MAIN("pixels", TEST(test_replay_rebuilds_stacks), TEST(test_pixel_agent_updates_and_acts),
             TEST(test_pixel_resume_is_exact),
             TEST(test_pixel_train_run))
