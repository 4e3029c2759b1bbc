// SPDX-License-Identifier: MIT
// Demonstration datasets: normaliser, Push-T and DMC generator determinism, subsets, HDF5 round
// trip and the reader's validation messages.
#include <unistd.h>

#include "test.h"
#include "difftop/il.h"
#ifdef DT_HAVE_HDF5
#include <hdf5.h>
#endif

static void test_normalizer(void) {
  float x[6] = {0, 5, 2, 5, 4, 5};  // dim 0 in [0, 4], dim 1 constant
  dtNormalizer nz;
  CHECK_OK(dt_norm_fit(&nz, x, 3, 2));
  float y[6];
  memcpy(y, x, sizeof y);
  dt_norm_apply(&nz, y, 3);
  CHECK_NEAR(y[0], -1, 1e-6);
  CHECK_NEAR(y[2], 0, 1e-6);
  CHECK_NEAR(y[4], 1, 1e-6);
  CHECK_NEAR(y[1], 0, 1e-6);  // a constant dim maps to 0
  dt_norm_unapply(&nz, y, 3);
  for (int i = 0; i < 6; i++) CHECK_NEAR(y[i], x[i], 1e-5);
  CHECK(dt_norm_fit(&nz, x, 0, 2) == DT_ERR_ARG);
  float bad[2] = {NAN, 1};
  CHECK(dt_norm_set(&nz, 1, bad, bad + 1) == DT_ERR_ARG);
}

// DMC demos from the analytic experts: deterministic, whole episodes, clean labels with noise
static void test_generate_dmc(void) {
#ifdef DT_HAVE_MUJOCO
  dtDmcDemoOpts o = dt_dmc_demo_default_opts();
  o.episodes = 2;
  o.seed = 5;
  dtDemoSet a, b, c, n;
  CHECK_OK(dt_demos_generate_dmc("reacher-easy", &o, &a));
  CHECK_OK(dt_demos_generate_dmc("reacher-easy", &o, &b));
  o.noise = 0.5f;
  CHECK_OK(dt_demos_generate_dmc("reacher-easy", &o, &n));
  o.noise = 0;
  o.seed = 6;
  CHECK_OK(dt_demos_generate_dmc("reacher-easy", &o, &c));
  CHECK(a.n_demos == 2 && a.obs_dim == 6 && a.act_dim == 2 && a.total == 500, "%d %d %d %lld", a.n_demos,
        a.obs_dim, a.act_dim, (long long)a.total);
  if (a.total == b.total && a.total == c.total && a.total == n.total) {
    CHECK(!memcmp(a.obs, b.obs, (size_t)a.total * 6 * sizeof(float)));
    CHECK(!memcmp(a.actions, b.actions, (size_t)a.total * 2 * sizeof(float)));
    CHECK(memcmp(a.obs, c.obs, (size_t)a.total * 6 * sizeof(float)));
    // the same episodes, the noise moved the states
    CHECK(!memcmp(a.obs, n.obs, 6 * sizeof(float)));
    CHECK(memcmp(a.obs, n.obs, (size_t)a.total * 6 * sizeof(float)));
  }
  double ret = 0;
  for (int64_t t = 0; t < a.total; t++) ret += a.rewards[t];
  CHECK(ret / 2 > 900, "expert return %g", ret / 2);
  for (int64_t t = 0; t < n.total * 2; t++) CHECK(n.actions[t] >= -1 && n.actions[t] <= 1);
  CHECK(a.dones[249] == 1 && a.dones[248] == 0 && a.dones[499] == 1);
  char task[64];
  CHECK(dt_demos_task(&a, task, sizeof task) == 0 && !strcmp(task, "reacher-easy"), "%s", a.env_args);
  CHECK(dt_demos_action_repeat(&a) == 4, "%s", a.env_args);
  CHECK(strstr(n.env_args, "\"noise\": 0.5") != NULL, "%s", n.env_args);
  // subsets keep rows and refit the normalisers
  dtDemoSet s;
  CHECK_OK(dt_demos_subset(&a, 1, 1, &s));
  CHECK(s.n_demos == 1 && s.total == 250 && s.start[0] == 0 && s.start[1] == 250);
  if (s.total == 250) CHECK(!memcmp(s.obs, a.obs + 250 * 6, 250 * 6 * sizeof(float)));
  CHECK(!strcmp(s.env_args, a.env_args));
  dt_demos_free(&s);
  CHECK(dt_demos_subset(&a, 1, 2, &s) == DT_ERR_ARG);
  // errors: unknown task, a task without an expert, bad options
  CHECK(dt_demos_generate_dmc("no-such-task", &o, &s) == DT_ERR_NOT_FOUND);
  CHECK(strstr(dt_last_error(), "known") != NULL, "%s", dt_last_error());
  CHECK(dt_demos_generate_dmc("walker-walk", &o, &s) == DT_ERR_NOT_FOUND);
  CHECK(strstr(dt_last_error(), "no expert") != NULL, "%s", dt_last_error());
  o.noise = NAN;
  CHECK(dt_demos_generate_dmc("reacher-easy", &o, &s) == DT_ERR_ARG);
  dt_demos_free(&a);
  dt_demos_free(&b);
  dt_demos_free(&c);
  dt_demos_free(&n);
#endif
}

// a DMC dataset written and read back: same rows, the task survives in env_args
static void test_dmc_hdf5_roundtrip(void) {
#if defined(DT_HAVE_MUJOCO) && defined(DT_HAVE_HDF5)
  dtDmcDemoOpts o = dt_dmc_demo_default_opts();
  o.episodes = 1;
  o.noise = 0.2f;
  dtDemoSet a, r;
  CHECK_OK(dt_demos_generate_dmc("pendulum-swingup", &o, &a));
  char path[512];
  snprintf(path, sizeof path, "%s/il_%d_dmc.hdf5", DT_BINARY_DIR, (int)getpid());
  CHECK_OK(dt_demos_write_hdf5(&a, path, NULL));
  CHECK_OK(dt_demos_read_hdf5(path, NULL, &r));
  CHECK(r.total == a.total && r.obs_dim == 3 && r.act_dim == 1 && !strcmp(r.obs_keys, "state"));
  if (r.total == a.total) {
    CHECK(!memcmp(r.obs, a.obs, (size_t)a.total * 3 * sizeof(float)));
    CHECK(!memcmp(r.actions, a.actions, (size_t)a.total * sizeof(float)));
    CHECK(!memcmp(r.rewards, a.rewards, (size_t)a.total * sizeof(float)));
  }
  char task[64];
  CHECK(!dt_demos_task(&r, task, sizeof task) && !strcmp(task, "pendulum-swingup"));
  CHECK(dt_demos_action_repeat(&r) == 4);
  remove(path);
  dt_demos_free(&a);
  dt_demos_free(&r);
#endif
}

#if defined(DT_HAVE_HDF5) && defined(DT_HAVE_CHIPMUNK)
static const char* tmp_path(const char* name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/il_%d_%s", DT_BINARY_DIR, (int)getpid(), name);
  return buf[k];
}

// the waypoint expert keeps this fast (its episodes are short); the smooth default is tested in
// tests/envs/pusht_expert_test.c
static void gen3(dtDemoSet* ds, uint64_t seed) {
  dtPushtDemoOpts o = dt_pusht_demo_default_opts();
  dtPushtExpertOpts eo = dt_pusht_expert_waypoint_opts();
  o.expert = &eo;
  o.episodes = 3;
  o.seed = seed;
  CHECK_OK(dt_demos_generate_pusht(&o, ds));
}

static void test_generate_deterministic(void) {
  dtDemoSet a, b, c;
  gen3(&a, 7);
  gen3(&b, 7);
  gen3(&c, 8);
  CHECK(a.n_demos == 3 && a.obs_dim == 5 && a.act_dim == 2);
  CHECK(a.total == b.total);
  if (a.total == b.total) {
    CHECK(!memcmp(a.obs, b.obs, (size_t)a.total * 5 * sizeof(float)));
    CHECK(!memcmp(a.actions, b.actions, (size_t)a.total * 2 * sizeof(float)));
  }
  CHECK(a.total != c.total || memcmp(a.actions, c.actions, (size_t)a.total * 2 * sizeof(float)));
  // every kept demo succeeds at its last step: reward 1 and done
  for (int d = 0; d < a.n_demos; d++) {
    int64_t last = a.start[d + 1] - 1;
    CHECK(a.dones[last] == 1 && a.rewards[last] >= 0.999f, "demo %d", d);
    CHECK(a.start[d + 1] > a.start[d]);
  }
  // actions are pixel targets, normalised into [-1, 1]
  for (int j = 0; j < 2; j++) CHECK(a.act_norm.min[j] >= 0 && a.act_norm.max[j] <= 512);
  dt_demos_free(&a);
  dt_demos_free(&b);
  dt_demos_free(&c);
}

static void test_hdf5_roundtrip(void) {
  dtDemoSet a, r;
  gen3(&a, 3);
  const char* path = tmp_path("rt.hdf5");
  CHECK_OK(dt_demos_write_hdf5(&a, path, NULL));
  CHECK_OK(dt_demos_read_hdf5(path, NULL, &r));
  CHECK(r.n_demos == 3 && r.total == a.total && r.obs_dim == 5 && r.act_dim == 2);
  CHECK(!strcmp(r.obs_keys, "state"), "%s", r.obs_keys);
  CHECK(strstr(r.env_args, "pusht") != NULL, "%s", r.env_args);
  if (r.total == a.total) {
    CHECK(!memcmp(a.obs, r.obs, (size_t)a.total * 5 * sizeof(float)));
    CHECK(!memcmp(a.actions, r.actions, (size_t)a.total * 2 * sizeof(float)));
    CHECK(!memcmp(a.dones, r.dones, (size_t)a.total));
    for (int d = 0; d <= 3; d++) CHECK(a.start[d] == r.start[d]);
  }
  for (int j = 0; j < 2; j++) CHECK(a.act_norm.min[j] == r.act_norm.min[j]);
  dt_demos_free(&r);
  // a key that does not exist
  CHECK(dt_demos_read_hdf5(path, "state,eef_pos", &r) == DT_ERR_FORMAT);
  CHECK(strstr(dt_last_error(), "demo_0") && strstr(dt_last_error(), "obs/eef_pos"), "%s", dt_last_error());
  dt_demos_free(&a);
  remove(path);
}

// multimodal demos (the fast waypoint planner): each kept demo's mode is recorded and written
// as the demo attribute expert_mode, deterministically for a seed; the file still reads back,
// and a subset keeps the modes
static void test_multimodal_modes(void) {
  dtPushtDemoOpts o = dt_pusht_demo_default_opts();
  dtPushtExpertOpts eo = dt_pusht_expert_waypoint_opts();
  eo.multimodal = 1;
  o.expert = &eo;
  o.episodes = 4;
  o.seed = 7;
  dtDemoSet a, b, r, sub;
  CHECK_OK(dt_demos_generate_pusht(&o, &a));
  CHECK_OK(dt_demos_generate_pusht(&o, &b));
  CHECK(a.modes && b.modes && a.total == b.total && strstr(a.env_args, "\"multimodal\": 1"), "%s", a.env_args);
  if (!a.modes || !b.modes) return;
  for (int d = 0; d < 4; d++) CHECK((a.modes[d] == 0 || a.modes[d] == 1) && a.modes[d] == b.modes[d], "demo %d", d);
  const char* path = tmp_path("mm.hdf5");
  CHECK_OK(dt_demos_write_hdf5(&a, path, NULL));
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  for (int d = 0; d < 4 && f >= 0; d++) {
    char name[64];
    snprintf(name, sizeof name, "data/demo_%d", a.demo_index[d]);
    long long m = -1;
    hid_t at = H5Aopen_by_name(f, name, "expert_mode", H5P_DEFAULT, H5P_DEFAULT);
    CHECK(at >= 0 && H5Aread(at, H5T_NATIVE_LLONG, &m) >= 0 && m == a.modes[d], "%s: expert_mode %lld", name, m);
    if (at >= 0) H5Aclose(at);
  }
  if (f >= 0) H5Fclose(f);
  CHECK_OK(dt_demos_read_hdf5(path, NULL, &r));
  CHECK(r.n_demos == 4 && r.total == a.total && r.modes == NULL);
  CHECK_OK(dt_demos_subset(&a, 1, 2, &sub));
  CHECK(sub.modes && sub.modes[0] == a.modes[1] && sub.modes[1] == a.modes[2]);
  dt_demos_free(&a), dt_demos_free(&b), dt_demos_free(&r), dt_demos_free(&sub);
  remove(path);
}

// break a written file with the HDF5 API, then check the reader's message
static void corrupt_and_check(const char* what, const char* expect1, const char* expect2, dtStatus code) {
  dtDemoSet a, r;
  gen3(&a, 5);
  const char* path = tmp_path("bad.hdf5");
  CHECK_OK(dt_demos_write_hdf5(&a, path, NULL));
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  CHECK(f >= 0);
  if (!strcmp(what, "missing")) {
    H5Ldelete(f, "data/demo_1/actions", H5P_DEFAULT);
  } else if (!strcmp(what, "nan")) {
    hid_t d = H5Dopen2(f, "data/demo_2/obs/state", H5P_DEFAULT);
    int64_t T = a.start[3] - a.start[2];
    float* buf = malloc((size_t)T * 5 * sizeof(float));
    memcpy(buf, a.obs + a.start[2] * 5, (size_t)T * 5 * sizeof(float));
    buf[1 * 5 + 3] = NAN;
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    free(buf);
    H5Dclose(d);
  } else if (!strcmp(what, "rows")) {
    H5Ldelete(f, "data/demo_0/obs/state", H5P_DEFAULT);
    hsize_t dims[2] = {2, 5};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    float z[10] = {0};
    hid_t d = H5Dcreate2(f, "data/demo_0/obs/state", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, z);
    H5Dclose(d);
    H5Sclose(sp);
  }
  H5Fclose(f);
  CHECK(dt_demos_read_hdf5(path, NULL, &r) == code, "%s: %s", what, dt_last_error());
  CHECK(strstr(dt_last_error(), expect1) && strstr(dt_last_error(), expect2), "%s: %s", what, dt_last_error());
  CHECK(r.obs == NULL);
  dt_demos_free(&a);
  remove(path);
}

static void test_validation(void) {
  corrupt_and_check("missing", "data/demo_1", "'actions'", DT_ERR_FORMAT);
  corrupt_and_check("nan", "data/demo_2/obs/state", "step 1, dim 3", DT_ERR_NONFINITE);
  corrupt_and_check("rows", "data/demo_0/obs/state", "2 rows", DT_ERR_FORMAT);
  dtDemoSet r;
  CHECK(dt_demos_read_hdf5("/nonexistent/x.hdf5", NULL, &r) == DT_ERR_IO);
  const char* path = tmp_path("noth5.hdf5");
  FILE* fp = fopen(path, "w");
  fputs("not hdf5", fp);
  fclose(fp);
  CHECK(dt_demos_read_hdf5(path, NULL, &r) == DT_ERR_FORMAT);
  CHECK(strstr(dt_last_error(), path) != NULL);
  remove(path);
}

DT_TEST_MAIN("il/dataset", TEST(test_normalizer), TEST(test_generate_deterministic),
             TEST(test_hdf5_roundtrip), TEST(test_validation), TEST(test_multimodal_modes), TEST(test_generate_dmc),
             TEST(test_dmc_hdf5_roundtrip))
#else
DT_TEST_MAIN("il/dataset", TEST(test_normalizer), TEST(test_generate_dmc), TEST(test_dmc_hdf5_roundtrip))
#endif
