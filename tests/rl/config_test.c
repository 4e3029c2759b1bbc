// SPDX-License-Identifier: MIT
// RL settings: defaults, text setters, errors with suggestions, dump round trip.
#include "test.h"

static void test_defaults_are_official(void) {
  dtRLConfig c;
  dt_rl_config_default(&c);
  CHECK(c.latent_dim == 50 && c.mlp_dim == 512 && c.enc_dim == 256);
  CHECK(c.batch_size == 512 && c.horizon == 5 && c.seed_steps == 5000);
  CHECK_NEAR(c.lr, 1e-3, 1e-9);
  CHECK_NEAR(c.rho, 0.5, 0);
  CHECK(c.num_samples == 512 && c.num_elites == 64 && c.iterations == 6);
  CHECK(c.max_iterations == 50 && c.backward_mode == DT_BACKWARD_TRUNCATED && c.backward_num_iterations == 5);
  CHECK_NEAR(c.grad_clip_norm_a, 100, 0);
}

static void test_set_each_kind(void) {
  dtRLConfig c;
  dt_rl_config_default(&c);
  CHECK_OK(dt_rl_config_set(&c, "lr", "3e-4"));
  CHECK_NEAR(c.lr, 3e-4, 1e-9);
  CHECK_OK(dt_rl_config_set(&c, "train_steps", "1e6"));
  CHECK(c.train_steps == 1000000);
  CHECK_OK(dt_rl_config_set(&c, "algo", "tdmpc"));
  CHECK(c.algo == DT_ALGO_TDMPC);
  CHECK_OK(dt_rl_config_set(&c, "solver", "newton"));
  CHECK(c.solver == DT_SOLVER_NEWTON);
  CHECK_OK(dt_rl_config_set(&c, "backward_mode", "implicit"));
  CHECK(c.backward_mode == DT_BACKWARD_IMPLICIT);
  CHECK_OK(dt_rl_config_set(&c, "no_backward", "true"));
  CHECK(c.no_backward == 1);
  CHECK_OK(dt_rl_config_set(&c, "task", "walker-walk"));
  CHECK(!strcmp(c.task, "walker-walk"));
}

static void test_errors_name_the_key(void) {
  dtRLConfig c;
  dt_rl_config_default(&c);
  CHECK(dt_rl_config_set(&c, "lerning_rate", "1") == DT_ERR_NOT_FOUND);
  CHECK(dt_rl_config_set(&c, "bach_size", "1") == DT_ERR_NOT_FOUND);
  CHECK(strstr(dt_last_error(), "batch_size") != NULL, "%s", dt_last_error());
  CHECK(dt_rl_config_set(&c, "batch_size", "12x") == DT_ERR_FORMAT);
  CHECK(strstr(dt_last_error(), "batch_size") && strstr(dt_last_error(), "12x"), "%s", dt_last_error());
  CHECK(dt_rl_config_set(&c, "batch_size", "1.5") == DT_ERR_FORMAT);
  CHECK(dt_rl_config_set(&c, "solver", "sgd") == DT_ERR_FORMAT);
  CHECK(strstr(dt_last_error(), "newton") != NULL, "%s", dt_last_error());
  CHECK(dt_rl_config_set(&c, "lr", "") == DT_ERR_FORMAT);
  CHECK(c.batch_size == 512, "a failed set must not change the value");
}

static void test_dump_round_trip(void) {
  dtRLConfig a, b;
  dt_rl_config_default(&a);
  dt_rl_config_set(&a, "lr", "0.000123");
  dt_rl_config_set(&a, "pg_mode", "batched");
  dt_rl_config_set(&a, "seed", "77");
  char buf[8192];
  CHECK_OK(dt_rl_config_dump(&a, buf, sizeof buf));
  dt_rl_config_default(&b);
  // parse "key: value" lines back
  for (char* line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
    char* colon = strchr(line, ':');
    CHECK(colon != NULL);
    if (!colon) break;
    *colon = 0;
    CHECK_OK(dt_rl_config_set(&b, line, colon + 2));
  }
  CHECK(memcmp(&a, &b, sizeof a) == 0, "dumped config did not read back identically");
  char small[16];
  CHECK(dt_rl_config_dump(&a, small, sizeof small) == DT_ERR_NOMEM);
}

// apply every key of configs/<file> to c; each must be an RL setting with a value it takes
static void apply_preset(dtRLConfig* c, const char* file) {
  char path[512];
  snprintf(path, sizeof path, "%s/configs/%s", DT_SOURCE_DIR, file);
  dtConfig* cfg = NULL;
  CHECK_OK(dt_config_new(&cfg));
  CHECK_OK(dt_config_load_file(cfg, path));
  int n = dt_config_count(cfg);
  CHECK(n > 3, "%s: %d keys", file, n);
  for (int i = 0; i < n; i++) {
    const char *k, *v;
    CHECK_OK(dt_config_at(cfg, i, &k, &v, NULL));
    CHECK(dt_rl_config_set(c, k, v) == DT_OK, "%s: %s = %s: %s", file, k, v, dt_last_error());
  }
  dt_config_free(cfg);
}

// the shipped presets (configs/default.yaml, cpu.yaml, pixels.yaml, pixels-cpu.yaml) load;
// pixels.yaml gives the official pixel values, pixels-cpu.yaml the CPU profile's
static void test_shipped_presets_apply(void) {
  const char* files[3] = {"default.yaml", "cpu.yaml", "pixels.yaml"};
  dtRLConfig c;
  dt_rl_config_default(&c);
  for (int f = 0; f < 3; f++) apply_preset(&c, files[f]);
  // after default, cpu and pixels: the pixel values, on the CPU profile's networks
  CHECK(c.obs == DT_OBS_PIXELS && c.frame_stack == 3 && c.img_size == 84 && c.num_channels == 32);
  CHECK(c.batch_size == 256 && c.train_steps == 1000000 && c.mlp_dim == 128);
  CHECK_NEAR(c.lr, 3e-4, 1e-9);
  dt_rl_config_default(&c);
  apply_preset(&c, "pixels-cpu.yaml");
  CHECK(c.obs == DT_OBS_PIXELS && c.img_size == 64 && c.num_channels == 16 && c.batch_size == 32);
  CHECK(c.mlp_dim == 128 && c.seed_steps == 1000);
}

DT_TEST_MAIN("rl/config", TEST(test_defaults_are_official), TEST(test_set_each_kind),
             TEST(test_errors_name_the_key), TEST(test_dump_round_trip),
             TEST(test_shipped_presets_apply))
