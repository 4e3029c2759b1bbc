// SPDX-License-Identifier: MIT
// Image observations for imitation learning: uint8 HWC image keys through the HDF5 writer and
// reader, the reader's messages on malformed image keys, Push-T demos with rendered frames.
#include <unistd.h>

#include "test.h"
#include "difftop/il.h"
#ifdef DT_HAVE_HDF5
#include <hdf5.h>
#endif

// a synthetic dataset: n demos of T steps, obs keys "agent_pos,image" (2 dims + S x S x 3
// images); each image holds a bright 3x3 square at a random spot and the action is that spot
// in pixels, so actions depend on the image only
static void synth_images(dtDemoSet* ds, int n, int T, int S, uint64_t seed) {
  memset(ds, 0, sizeof *ds);
  int64_t total = (int64_t)n * T;
  ds->n_demos = n;
  ds->total = total;
  ds->obs_dim = 2;
  ds->act_dim = 2;
  ds->start = calloc((size_t)n + 1, sizeof *ds->start);
  ds->demo_index = calloc((size_t)n, sizeof *ds->demo_index);
  ds->obs = calloc((size_t)total * 2, sizeof(float));
  ds->actions = calloc((size_t)total * 2, sizeof(float));
  ds->rewards = calloc((size_t)total, sizeof(float));
  ds->dones = calloc((size_t)total, 1);
  ds->images = calloc((size_t)total * S * S * 3, 1);
  ds->img_h = ds->img_w = S;
  ds->img_c = 3;
  snprintf(ds->image_key, sizeof ds->image_key, "image");
  snprintf(ds->obs_keys, sizeof ds->obs_keys, "agent_pos,image");
  snprintf(ds->env_args, sizeof ds->env_args, "{\"env_name\": \"synthetic\"}");
  dtRng rng;
  dt_rng_seed(&rng, seed);
  for (int d = 0; d < n; d++) {
    ds->start[d] = (int64_t)d * T;
    ds->demo_index[d] = d;
    for (int t = 0; t < T; t++) {
      int64_t i = (int64_t)d * T + t;
      int x = 1 + (int)dt_rng_below(&rng, (uint32_t)(S - 2)), y = 1 + (int)dt_rng_below(&rng, (uint32_t)(S - 2));
      uint8_t* im = ds->images + i * S * S * 3;
      for (int p = 0; p < S * S * 3; p++) im[p] = (uint8_t)(20 + (p * 7 + d) % 30);
      for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
          for (int c = 0; c < 3; c++) im[((y + dy) * S + x + dx) * 3 + c] = (uint8_t)(200 + 20 * c);
      ds->obs[i * 2] = (float)t;
      ds->obs[i * 2 + 1] = (float)d;
      ds->actions[i * 2] = (float)x;
      ds->actions[i * 2 + 1] = (float)y;
      ds->dones[i] = t == T - 1;
    }
  }
  ds->start[n] = total;
  CHECK_OK(dt_norm_fit(&ds->obs_norm, ds->obs, total, 2));
  CHECK_OK(dt_norm_fit(&ds->act_norm, ds->actions, total, 2));
}

static void test_hwc_to_chw(void) {
  uint8_t hwc[2 * 3 * 3];
  for (int i = 0; i < 18; i++) hwc[i] = (uint8_t)(i * 15);
  float chw[18];
  dt_image_hwc_to_chw(hwc, 2, 3, 3, chw);
  for (int y = 0; y < 2; y++)
    for (int x = 0; x < 3; x++)
      for (int c = 0; c < 3; c++)
        CHECK_NEAR(chw[(c * 2 + y) * 3 + x], hwc[(y * 3 + x) * 3 + c] / 255.0f, 1e-7);
  CHECK(chw[0] == 0.0f && chw[17] <= 1.0f);
}

// BC with the conv encoder: a few epochs on the synthetic images lower the loss well below
// the start; saved and loaded, the policy gives the same actions; other kinds refuse images
static void test_image_bc(void) {
  dtDemoSet ds;
  synth_images(&ds, 4, 24, 40, 3);
  dtILConfig c;
  dt_il_config_default(&c);
  c.hidden = 64;
  c.batch = 16;
  c.conv_channels = 8;
  c.conv_out = 16;
  c.act_steps = 1;
  c.pred_steps = 1;
  c.lr = 3e-3f;
  dtILPolicy* p = NULL;
  CHECK_OK(dt_il_policy_new(&c, &ds, &p));
  if (!p) return;
  int h = 0, w = 0, ch = 0;
  CHECK(dt_il_policy_image(p, &h, &w, &ch) == 1 && h == 40 && w == 40 && ch == 3);
  double l0 = 0, l1 = 0;
  CHECK_OK(dt_il_loss(p, &ds, &l0));
  dtILConfig* cc = (dtILConfig*)dt_il_policy_config(p);
  cc->epochs = 15;
  CHECK_OK(dt_il_train(p, &ds, NULL, NULL));
  CHECK_OK(dt_il_loss(p, &ds, &l1));
  CHECK(l1 < 0.5 * l0, "loss %g -> %g", l0, l1);
  // actions of an image policy need the frames
  float hist[2 * 2] = {3, 1, 4, 1}, a[2], b[2];
  CHECK(dt_il_act(p, hist, a) == DT_ERR_ARG);
  CHECK(strstr(dt_last_error(), "dt_il_act_image") != NULL, "%s", dt_last_error());
  CHECK_OK(dt_il_act_image(p, hist, ds.images + 10 * 40 * 40 * 3, a));
  char dir[512];
  snprintf(dir, sizeof dir, "%s/ilimg_%d_run", DT_BINARY_DIR, (int)getpid());
  CHECK_OK(dt_il_policy_save(p, dir));
  dtILPolicy* q = NULL;
  CHECK_OK(dt_il_policy_load(dir, &q));
  if (q) {
    CHECK(dt_il_policy_image(q, &h, &w, &ch) == 1 && h == 40 && ch == 3);
    CHECK(!strcmp(dt_il_policy_obs_keys(q), "agent_pos,image"), "%s", dt_il_policy_obs_keys(q));
    CHECK_OK(dt_il_act_image(q, hist, ds.images + 10 * 40 * 40 * 3, b));
    CHECK(a[0] == b[0] && a[1] == b[1], "%g %g vs %g %g", a[0], a[1], b[0], b[1]);
    CHECK(dt_il_config_read((dtILConfig*)&c, "/nonexistent/config.yaml") != DT_OK);
  }
#ifdef DT_HAVE_CHIPMUNK
  // Push-T evaluation renders 40x40 frames for it and feeds agent_pos as the low-dim key
  dtILEvalResult r;
  double score = -1;
  if (q) {
    CHECK_OK(dt_il_eval_pusht(q, 1, 100000, 8, &r, &score));
    CHECK(r.episodes == 1 && score >= 0 && r.ms_per_action > 0);
  }
#endif
  dt_il_policy_free(q);
  dt_il_policy_free(p);
  char path[600];
  snprintf(path, sizeof path, "%s/config.yaml", dir);
  dtILConfig rc;
  CHECK_OK(dt_il_config_read(&rc, path));  // the extra keys of a saved image policy are skipped
  CHECK(rc.conv_channels == 8 && rc.conv_out == 16);
  remove(path);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  remove(path);
  rmdir(dir);
  // diffusion (and the others) refuse image observations
  c.kind = DT_IL_DIFFUSION;
  CHECK(dt_il_policy_new(&c, &ds, &p) == DT_ERR_UNSUPPORTED);
  CHECK(strstr(dt_last_error(), "bc only") != NULL, "%s", dt_last_error());
  // a dataset without images does not fit an image policy's training
  c.kind = DT_IL_BC;
  CHECK_OK(dt_il_policy_new(&c, &ds, &p));
  dtDemoSet flat = ds;
  flat.images = NULL;
  int64_t idx[2] = {0, 1};
  CHECK(dt_il_train_step(p, &flat, idx, 2, NULL) == DT_ERR_ARG);
  CHECK(strstr(dt_last_error(), "no images") != NULL, "%s", dt_last_error());
  dt_il_policy_free(p);
  dt_demos_free(&ds);
}

#ifdef DT_HAVE_HDF5
static const char* tmp_path(const char* name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/ilimg_%d_%s", DT_BINARY_DIR, (int)getpid(), name);
  return buf[k];
}

// write a tiny dataset with images, read it back with several key lists
static void test_image_roundtrip(void) {
  dtDemoSet a, r;
  synth_images(&a, 3, 5, 8, 1);
  const char* path = tmp_path("img.hdf5");
  int dims[2] = {2, 0};
  CHECK_OK(dt_demos_write_hdf5(&a, path, dims));
  CHECK_OK(dt_demos_read_hdf5(path, "image,agent_pos", &r));
  CHECK(r.n_demos == 3 && r.total == 15 && r.obs_dim == 2 && r.act_dim == 2);
  CHECK(r.images && r.img_h == 8 && r.img_w == 8 && r.img_c == 3, "%d %d %d", r.img_h, r.img_w, r.img_c);
  CHECK(!strcmp(r.image_key, "image") && !strcmp(r.obs_keys, "image,agent_pos"), "%s", r.obs_keys);
  if (r.images && r.total == a.total) {
    CHECK(!memcmp(r.images, a.images, (size_t)a.total * 8 * 8 * 3));
    CHECK(!memcmp(r.obs, a.obs, (size_t)a.total * 2 * sizeof(float)));
    CHECK(!memcmp(r.actions, a.actions, (size_t)a.total * 2 * sizeof(float)));
    // float CHW in [0, 1] of row 7 against the raw HWC bytes
    float chw[3 * 8 * 8];
    dt_image_hwc_to_chw(r.images + 7 * 192, 8, 8, 3, chw);
    const uint8_t* raw = a.images + 7 * 192;
    CHECK_NEAR(chw[(2 * 8 + 5) * 8 + 4], raw[(5 * 8 + 4) * 3 + 2] / 255.0f, 1e-7);
  }
  // subsets carry the images
  dtDemoSet s;
  CHECK_OK(dt_demos_subset(&r, 1, 2, &s));
  CHECK(s.images && s.total == 10 && !strcmp(s.image_key, "image"));
  if (s.images) CHECK(!memcmp(s.images, a.images + 5 * 192, 10 * 192));
  dt_demos_free(&s);
  dt_demos_free(&r);
  // without the image key (and by default) the reader gives the low-dimensional keys only
  CHECK_OK(dt_demos_read_hdf5(path, NULL, &r));
  CHECK(r.images == NULL && r.obs_dim == 2 && !strcmp(r.obs_keys, "agent_pos"), "%s", r.obs_keys);
  dt_demos_free(&r);
  // an image alone: no low-dimensional key
  CHECK(dt_demos_read_hdf5(path, "image", &r) == DT_ERR_FORMAT);
  CHECK(strstr(dt_last_error(), "low-dimensional") != NULL, "%s", dt_last_error());
  CHECK(r.obs == NULL && r.images == NULL);
  dt_demos_free(&a);
  remove(path);
}

// replace data/demo_1/obs/image with a dataset of the given type and shape
static void replace_image(hid_t f, hid_t type, int rank, const hsize_t* dims) {
  H5Ldelete(f, "data/demo_1/obs/image", H5P_DEFAULT);
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  hid_t d = H5Dcreate2(f, "data/demo_1/obs/image", type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dclose(d);
  H5Sclose(sp);
}

// break the image key of a written file, then check the reader's message
static void image_corrupt_check(const char* what, const char* expect) {
  dtDemoSet a, r;
  synth_images(&a, 3, 5, 8, 2);
  const char* path = tmp_path("badimg.hdf5");
  int dims[2] = {2, 0};
  CHECK_OK(dt_demos_write_hdf5(&a, path, dims));
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  CHECK(f >= 0);
  hsize_t rank3[3] = {5, 8, 24}, rows[4] = {4, 8, 8, 3}, size[4] = {5, 8, 6, 3}, chans[4] = {5, 8, 8, 4};
  if (!strcmp(what, "rank")) replace_image(f, H5T_STD_U8LE, 3, rank3);
  else if (!strcmp(what, "rows")) replace_image(f, H5T_STD_U8LE, 4, rows);
  else if (!strcmp(what, "size")) replace_image(f, H5T_STD_U8LE, 4, size);
  else if (!strcmp(what, "channels")) replace_image(f, H5T_STD_U8LE, 4, chans);
  else if (!strcmp(what, "float")) replace_image(f, H5T_IEEE_F32LE, 4, chans);
  H5Fclose(f);
  CHECK(dt_demos_read_hdf5(path, "image,agent_pos", &r) == DT_ERR_FORMAT, "%s: %s", what, dt_last_error());
  CHECK(strstr(dt_last_error(), "data/demo_1/obs/image") && strstr(dt_last_error(), expect), "%s: %s", what,
        dt_last_error());
  CHECK(r.obs == NULL && r.images == NULL);
  dt_demos_free(&a);
  remove(path);
}

static void test_image_validation(void) {
  image_corrupt_check("rank", "rank 3");
  image_corrupt_check("rows", "4 rows but actions has 5");
  image_corrupt_check("size", "image 8x6x3, demo demo_0 has 8x8x3");
  image_corrupt_check("channels", "C 1 or 3");
  image_corrupt_check("float", "uint8");  // checked before the extents
}
#endif

#ifdef DT_HAVE_CHIPMUNK
// Push-T demos with frames: each step's image is the render of the stored state
static void test_pusht_images(void) {
  dtPushtDemoOpts o = dt_pusht_demo_default_opts();
  dtPushtExpertOpts eo = dt_pusht_expert_waypoint_opts();
  o.expert = &eo;
  o.episodes = 1;
  o.seed = 3;
  o.image_size = 24;
  dtDemoSet a, b;
  CHECK_OK(dt_demos_generate_pusht(&o, &a));
  o.image_size = 0;
  CHECK_OK(dt_demos_generate_pusht(&o, &b));
  CHECK(a.obs_dim == 7 && b.obs_dim == 5 && a.total == b.total && a.images && !b.images);
  CHECK(!strcmp(a.obs_keys, "state,agent_pos,image") && !strcmp(a.image_key, "image"), "%s", a.obs_keys);
  CHECK(a.img_h == 24 && a.img_w == 24 && a.img_c == 3);
  for (int64_t t = 0; t < a.total && t < b.total; t++) {
    for (int j = 0; j < 5; j++) CHECK(a.obs[t * 7 + j] == b.obs[t * 5 + j]);
    CHECK(a.obs[t * 7 + 5] == a.obs[t * 7] && a.obs[t * 7 + 6] == a.obs[t * 7 + 1]);
  }
  // the first frame is the render of the reset state (the agent moves, so later frames differ)
  dtPusht* sim = NULL;
  CHECK_OK(dt_pusht_new(&sim));
  uint8_t img[24 * 24 * 3];
  double ag[4] = {a.obs[0], a.obs[1], 0, 0}, bl[6] = {a.obs[2], a.obs[3], a.obs[4], 0, 0, 0};
  CHECK_OK(dt_pusht_set_bodies(sim, ag, bl));
  CHECK_OK(dt_pusht_render(sim, 24, 24, img));
  int differ = 0;  // the obs are float32 copies of the poses: an edge pixel may round otherwise
  for (size_t i = 0; i < sizeof img; i++) differ += img[i] != a.images[i];
  CHECK(differ < 20, "%d bytes differ", differ);
  CHECK(memcmp(a.images, a.images + (a.total - 1) * sizeof img, sizeof img));
  dt_pusht_free(sim);
  dt_demos_free(&a);
  dt_demos_free(&b);
}
#endif

#ifdef DT_HAVE_HDF5
#define HDF5_CASES , TEST(test_image_roundtrip), TEST(test_image_validation)
#else
#define HDF5_CASES
#endif
#ifdef DT_HAVE_CHIPMUNK
#define PUSHT_CASES , TEST(test_pusht_images)
#else
#define PUSHT_CASES
#endif

DT_TEST_MAIN("il/image", TEST(test_hwc_to_chw), TEST(test_image_bc) HDF5_CASES PUSHT_CASES)
