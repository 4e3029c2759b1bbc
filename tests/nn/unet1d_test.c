// SPDX-License-Identifier: MIT
// The 1-D temporal U-Net (dtUnet1D): spec checks, state_dict names and shapes, output shapes,
// bind on a clone, the gradient of the whole module against central differences, and the tape
// memory bound. Parity with a PyTorch ConditionalUnet1D: tests/python/test_unet1d_torch.py.
#include "test.h"

// a tiny U-Net: 2 channels over 8 steps, 3 condition features, levels 4 and 8 wide
static dtUnet1DSpec tiny_spec(void) {
  dtUnet1DSpec s = dt_unet1d_spec_default(2, 8, 3);
  s.dims[0] = 4, s.dims[1] = 8;
  s.kernel = 3, s.groups = 2, s.step_dim = 4;
  return s;
}

static void expect_spec_error(dtUnet1DSpec s, const char* words) {
  CHECK(dt_unet1d_check(&s) == DT_ERR_ARG && strstr(dt_last_error(), words), "want '%s': %s",
        words, dt_last_error());
}

static void test_spec_checks(void) {
  dtUnet1DSpec s = dt_unet1d_spec_default(2, 8, 12);
  CHECK_OK(dt_unet1d_check(&s));
  CHECK(s.levels == 2 && s.dims[0] == 64 && s.dims[1] == 128 && s.kernel == 5 && s.groups == 8 &&
        s.step_dim == 64);
  dtUnet1DSpec b = s;
  b.levels = 4, b.dims[2] = 256, b.dims[3] = 512;  // 8 halves 3 times: fine
  CHECK_OK(dt_unet1d_check(&b));
  b.horizon = 12;  // but 12 does not
  expect_spec_error(b, "cannot be halved 3 times");
  b = s, b.horizon = 6;
  CHECK_OK(dt_unet1d_check(&b));  // 6 halves once
  b = s, b.kernel = 4;
  expect_spec_error(b, "must be odd");
  b = s, b.groups = 48;
  expect_spec_error(b, "multiple of the 48 GroupNorm groups");
  b = s, b.dims[1] = 100;
  expect_spec_error(b, "100 channels at level 1");
  b = s, b.levels = 0;
  expect_spec_error(b, "0 levels");
  b = s, b.levels = DT_UNET_MAX_LEVELS + 1;
  expect_spec_error(b, "levels");
  b = s, b.step_dim = 6 + 1;
  expect_spec_error(b, "step_dim 7");
  b = s, b.in_channels = 0;
  expect_spec_error(b, "0 channels");
  CHECK(dt_unet1d_check(NULL) == DT_ERR_ARG);
  dt_clear_error();
}

static void expect_param(const dtParams* ps, const char* name, int ndim, int d0, int d1, int d2) {
  dtTensor* p = dt_params_find(ps, name);
  CHECK(p != NULL, "no parameter %s", name);
  if (!p) return;
  int want[3] = {d0, d1, d2};
  int ok = p->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++) ok = p->shape[i] == want[i];
  char buf[64];
  CHECK(ok, "%s has shape %s", name, dt_shape_str(p, buf, sizeof buf));
}

// names and shapes as torch's ConditionalUnet1D(input_dim 2, global_cond_dim 3,
// diffusion_step_embed_dim 4, down_dims [4, 8], kernel_size 3, n_groups 2) state_dict
static void test_names_and_shapes(void) {
  dtUnet1DSpec s = tiny_spec();
  dtParams ps;
  dt_params_init(&ps);
  dtRng rng;
  dt_rng_seed(&rng, 1);
  dtUnet1D net;
  CHECK_OK(dt_unet1d_create(&net, &s, &ps, "model", &rng));
  expect_param(&ps, "model.diffusion_step_encoder.1.weight", 2, 16, 4, 0);
  expect_param(&ps, "model.diffusion_step_encoder.3.bias", 1, 4, 0, 0);
  expect_param(&ps, "model.down_modules.0.0.blocks.0.block.0.weight", 3, 4, 2, 3);
  expect_param(&ps, "model.down_modules.0.0.blocks.0.block.1.weight", 1, 4, 0, 0);
  expect_param(&ps, "model.down_modules.0.0.blocks.1.block.0.weight", 3, 4, 4, 3);
  expect_param(&ps, "model.down_modules.0.0.cond_encoder.1.weight", 2, 8, 7, 0);
  expect_param(&ps, "model.down_modules.0.0.residual_conv.weight", 3, 4, 2, 1);
  expect_param(&ps, "model.down_modules.0.2.conv.weight", 3, 4, 4, 3);
  expect_param(&ps, "model.down_modules.1.0.residual_conv.weight", 3, 8, 4, 1);
  expect_param(&ps, "model.mid_modules.1.cond_encoder.1.bias", 1, 16, 0, 0);
  expect_param(&ps, "model.up_modules.0.0.blocks.0.block.0.weight", 3, 4, 16, 3);
  expect_param(&ps, "model.up_modules.0.0.residual_conv.weight", 3, 4, 16, 1);
  expect_param(&ps, "model.up_modules.0.2.conv.weight", 3, 4, 4, 4);
  expect_param(&ps, "model.final_conv.0.block.1.bias", 1, 4, 0, 0);
  expect_param(&ps, "model.final_conv.1.weight", 3, 2, 4, 1);
  // no residual conv where the channels agree, no down step at the last level
  CHECK(!dt_params_find(&ps, "model.down_modules.0.1.residual_conv.weight"));
  CHECK(!dt_params_find(&ps, "model.mid_modules.0.residual_conv.weight"));
  CHECK(!dt_params_find(&ps, "model.down_modules.1.2.conv.weight"));
  CHECK(!dt_params_find(&ps, "model.up_modules.1.0.blocks.0.block.0.weight"));
  // tensors: step encoder 4; down 12 + 10 + 2 and 12 + 10; mid 2 x 10; up 12 + 10 + 2; final
  // 4 + 2 (a residual block has 12 with a residual conv, 10 without); the Python parity test
  // compares every name and shape with torch's state_dict
  CHECK(ps.count == 100, "%d tensors", ps.count);
  // init: GroupNorm 1 and 0, conv weights within 1/sqrt(in k), transposed within 1/sqrt(out k)
  dtTensor* g = dt_params_find(&ps, "model.mid_modules.0.blocks.1.block.1.weight");
  dtTensor* w = dt_params_find(&ps, "model.up_modules.0.0.blocks.0.block.0.weight");
  dtTensor* wt = dt_params_find(&ps, "model.up_modules.0.2.conv.weight");
  CHECK(g && g->val[0] == 1.0f && g->val[7] == 1.0f);
  float mw = 0, mt = 0;
  for (int64_t i = 0; w && i < w->size; i++) mw = fmaxf(mw, fabsf(w->val[i]));
  for (int64_t i = 0; wt && i < wt->size; i++) mt = fmaxf(mt, fabsf(wt->val[i]));
  CHECK(mw <= 1.0f / sqrtf(48.0f) && mw > 0.5f / sqrtf(48.0f), "conv init max %g", (double)mw);
  CHECK(mt <= 1.0f / sqrtf(16.0f) && mt > 0.5f / sqrtf(16.0f), "transposed init max %g", (double)mt);
  dt_params_free(&ps);
}

// inputs of a batch: x [B, 2, 8], steps, cond [B, 3]
static dtTensor* run(dtTape* t, const dtUnet1D* net, int B, const float* xv, const float* steps,
                     const float* cv, dtTensor** x, dtTensor** c) {
  const dtUnet1DSpec* s = &net->spec;
  *x = dt_input(t, 3, (int[]){B, s->in_channels, s->horizon}, xv, "x");
  *c = dt_input2(t, B, s->cond_dim, cv, "cond");
  return dt_unet1d_forward(t, net, *x, steps, *c);
}

static void test_forward_shapes_bind_and_errors(void) {
  dtUnet1DSpec s = tiny_spec();
  dtParams ps, clone;
  dt_params_init(&ps);
  dt_params_init(&clone);
  dtRng rng;
  dt_rng_seed(&rng, 2);
  dtUnet1D net, bound;
  CHECK_OK(dt_unet1d_create(&net, &s, &ps, "model", &rng));
  CHECK_OK(dt_params_clone(&clone, &ps));
  CHECK_OK(dt_unet1d_bind(&bound, &s, &clone, "model"));
  enum { B = 3 };
  float xv[B * 16], cv[B * 3], steps[B] = {0, 17, 99};
  dt_rng_fill_normal(&rng, xv, B * 16, 0, 1);
  dt_rng_fill_normal(&rng, cv, B * 3, 0, 1);
  dtTape* t = dt_tape_new(NULL);
  dtTensor *x, *c;
  dtTensor* y = run(t, &net, B, xv, steps, cv, &x, &c);
  dtTensor* y2 = run(t, &bound, B, xv, steps, cv, &x, &c);
  CHECK(y && y->ndim == 3 && y->shape[0] == B && y->shape[1] == 2 && y->shape[2] == 8);
  int same = y && y2;
  for (int i = 0; same && i < B * 16; i++) same = y->val[i] == y2->val[i];
  CHECK(same, "the bound clone computes something else");
  // the step matters (FiLM), and so does the condition
  float steps2[B] = {1, 17, 99};
  dtTensor* y3 = run(t, &net, B, xv, steps2, cv, &x, &c);
  double d0 = 0, d1 = 0;
  for (int i = 0; y && y3 && i < 16; i++) d0 += fabs(y->val[i] - y3->val[i]);
  for (int i = 16; y && y3 && i < B * 16; i++) d1 += fabs(y->val[i] - y3->val[i]);
  CHECK(d0 > 1e-4 && d1 == 0, "step change: sample 0 moved %g, the others %g", d0, d1);
  // wrong shapes are tape errors that name what was expected
  dt_tape_reset(t);
  x = dt_input(t, 3, (int[]){B, 2, 6}, NULL, "x");
  c = dt_input2(t, B, 3, NULL, "cond");
  CHECK(dt_unet1d_forward(t, &net, x, steps, c) == NULL && dt_tape_status(t) == DT_ERR_SHAPE &&
        strstr(dt_tape_error(t), "want [B, 2, 8]"), "%s", dt_tape_error(t));
  dt_tape_reset(t);
  x = dt_input(t, 3, (int[]){B, 2, 8}, NULL, "x");
  CHECK(dt_unet1d_forward(t, &net, x, steps, NULL) == NULL && dt_tape_status(t) == DT_ERR_SHAPE);
  dt_tape_reset(t);
  x = dt_input(t, 3, (int[]){B, 2, 8}, NULL, "x");
  c = dt_input2(t, B, 3, NULL, "cond");
  CHECK(dt_unet1d_forward(t, &net, x, NULL, c) == NULL && dt_tape_status(t) == DT_ERR_ARG);
  // binding to a set without the parameters names the missing one
  dtParams empty;
  dt_params_init(&empty);
  CHECK(dt_unet1d_bind(&bound, &s, &empty, "model") == DT_ERR_NOT_FOUND &&
        strstr(dt_last_error(), "model.diffusion_step_encoder.1.weight"), "%s", dt_last_error());
  dt_tape_free(t);
  dt_params_free(&ps);
  dt_params_free(&clone);
  dt_clear_error();
}

// L = sum_i c_i y_i in double
static double loss(dtTape* t, const dtUnet1D* net, int B, const float* xv, const float* steps,
                   const float* cv, const float* proj) {
  dt_tape_reset(t);
  dtTensor *x, *c;
  dtTensor* y = run(t, net, B, xv, steps, cv, &x, &c);
  double L = 0;
  for (int64_t i = 0; y && i < y->size; i++) L += (double)proj[i] * y->val[i];
  return y ? L : NAN;
}

// |ad - fd| <= 2e-3 + 2e-2 |fd|: central differences at eps 1e-2 on a float32 network of ~40
// ops (round-off ~1e-7 * depth * |L| / eps ~ 1e-4; truncation eps^2/6 |f'''| ~ 1e-4 |f'|)
static int close_enough(double ad, double fd) { return fabs(ad - fd) <= 2e-3 + 2e-2 * fabs(fd); }

static void test_gradient_matches_finite_differences(void) {
  enum { B = 2, NY = B * 16 };
  dtUnet1DSpec s = tiny_spec();
  dtParams ps;
  dt_params_init(&ps);
  dtRng rng;
  dt_rng_seed(&rng, 3);
  dtUnet1D net;
  CHECK_OK(dt_unet1d_create(&net, &s, &ps, "model", &rng));
  // move GroupNorm's gain and bias away from 1 and 0 so that their gradients are generic
  for (int i = 0; i < ps.count; i++)
    if (ps.items[i]->ndim == 1)
      for (int64_t k = 0; k < ps.items[i]->size; k++) ps.items[i]->val[k] += 0.2f * (float)dt_rng_normal(&rng);
  float xv[NY], cv[B * 3], proj[NY], steps[B] = {3, 42};
  dt_rng_fill_normal(&rng, xv, NY, 0, 1);
  dt_rng_fill_normal(&rng, cv, B * 3, 0, 1);
  dt_rng_fill_uniform(&rng, proj, NY, -1, 1);
  dtTape* t = dt_tape_new(NULL);
  dt_params_zero_grad(&ps);
  // the inputs ask for gradients before the graph is built
  dtTensor* x = dt_input(t, 3, (int[]){B, 2, 8}, xv, "x");
  dtTensor* c = dt_input2(t, B, 3, cv, "cond");
  dt_requires_grad(t, x);
  dt_requires_grad(t, c);
  dtTensor* y = dt_unet1d_forward(t, &net, x, steps, c);
  CHECK(y != NULL, "%s", dt_tape_error(t));
  if (!y) return;
  CHECK_OK(dt_backward(t, y, proj));
  static float gx[NY], gc[B * 3];
  memcpy(gx, x->grad, sizeof gx);
  memcpy(gc, c->grad, sizeof gc);
  const float eps = 1e-2f;
  int bad = 0, checked = 0;
  double worst = 0;
  // every element of x and cond, up to 12 elements of every parameter
  for (int k = 0; k < NY + B * 3; k++) {
    float* v = k < NY ? xv + k : cv + (k - NY);
    float v0 = *v;
    *v = v0 + eps;
    double lp = loss(t, &net, B, xv, steps, cv, proj);
    *v = v0 - eps;
    double lm = loss(t, &net, B, xv, steps, cv, proj);
    *v = v0;
    double fd = (lp - lm) / (2 * eps), ad = k < NY ? gx[k] : gc[k - NY];
    bad += !close_enough(ad, fd), checked++;
    worst = fmax(worst, fabs(ad - fd) / (2e-3 + 2e-2 * fabs(fd)));
  }
  for (int j = 0; j < ps.count; j++) {
    dtTensor* p = ps.items[j];
    int64_t stride = p->size > 12 ? p->size / 12 : 1;
    for (int64_t i = 0; i < p->size; i += stride) {
      float v0 = p->val[i];
      p->val[i] = v0 + eps;
      double lp = loss(t, &net, B, xv, steps, cv, proj);
      p->val[i] = v0 - eps;
      double lm = loss(t, &net, B, xv, steps, cv, proj);
      p->val[i] = v0;
      double fd = (lp - lm) / (2 * eps), ad = p->grad[i];
      if (!close_enough(ad, fd) && bad < 5)
        fprintf(stderr, "  %s[%lld]: autodiff %.6g, finite diff %.6g\n", p->name, (long long)i, ad, fd);
      bad += !close_enough(ad, fd), checked++;
      worst = fmax(worst, fabs(ad - fd) / (2e-3 + 2e-2 * fabs(fd)));
    }
  }
  if (getenv("DT_TEST_VERBOSE")) printf("  %d derivatives, worst err/tol %.3f\n", checked, worst);
  CHECK(bad == 0, "%d of %d derivatives differ from central differences (worst err/tol %.2f)", bad,
        checked, worst);
  CHECK(checked > 800, "only %d derivatives checked", checked);
  dt_tape_free(t);
  dt_params_free(&ps);
}

// dt_unet1d_tape_bytes bounds a training step's arena (forward + backward) without wasting
// more than a few times what it needs: the default spec and a three-level one
static void tape_bytes_bound(const dtUnet1DSpec* s) {
  dtParams ps;
  dt_params_init(&ps);
  dtRng rng;
  dt_rng_seed(&rng, 4);
  dtUnet1D net;
  CHECK_OK(dt_unet1d_create(&net, s, &ps, "model", &rng));
  int batches[2] = {8, 256}, C = s->in_channels, T = s->horizon, F = s->cond_dim;
  size_t hw[2] = {0, 0};
  static float xv[256 * 64], cv[256 * 64], steps[256];
  dt_rng_fill_normal(&rng, xv, 256 * 64, 0, 1);
  dt_rng_fill_normal(&rng, cv, 256 * 64, 0, 1);
  for (int k = 0; k < 2; k++) {
    int B = batches[k];
    size_t bound = dt_unet1d_tape_bytes(s, B);
    dtTapeOpts o = dt_tape_default_opts();
    o.arena_bytes = bound;
    dtTape* t = dt_tape_new(&o);
    dtTensor* x = dt_input(t, 3, (int[]){B, C, T}, xv, "x");
    dtTensor* c = dt_input2(t, B, F, cv, "cond");
    dtTensor* y = dt_unet1d_forward(t, &net, x, steps, c);
    dtTensor* l = dt_mse(t, y, dt_input(t, 3, (int[]){B, C, T}, NULL, "eps"));
    CHECK(l != NULL, "batch %d in %zu bytes: %s", B, bound, dt_tape_error(t));
    if (l) CHECK_OK(dt_backward(t, l, NULL));
    dt_tape_memory(t, NULL, &hw[k], NULL);
    dt_tape_free(t);
  }
  // per sample, the bound's slope against the measured one
  double meas = (double)(hw[1] - hw[0]) / 248.0;
  double est = (double)(dt_unet1d_tape_bytes(s, 256) - dt_unet1d_tape_bytes(s, 8)) / 248.0;
  if (getenv("DT_TEST_VERBOSE"))
    printf("  %d levels: tape per sample: measured %.0f bytes, bound %.0f; high water at 256: %zu\n",
           s->levels, meas, est, hw[1]);
  CHECK(est >= meas && est <= 2.5 * meas, "bound %.0f bytes per sample, measured %.0f", est, meas);
  dt_params_free(&ps);
}

static void test_tape_bytes_bound(void) {
  dtUnet1DSpec s = dt_unet1d_spec_default(2, 8, 12);
  tape_bytes_bound(&s);
  s = dt_unet1d_spec_default(3, 16, 20);
  s.levels = 3, s.dims[0] = 32, s.dims[1] = 64, s.dims[2] = 128, s.kernel = 3, s.step_dim = 32;
  tape_bytes_bound(&s);
}

DT_TEST_MAIN("unet1d", TEST(test_spec_checks), TEST(test_names_and_shapes),
             TEST(test_forward_shapes_bind_and_errors),
             TEST(test_gradient_matches_finite_differences), TEST(test_tape_bytes_bound))
