// SPDX-License-Identifier: MIT
// The stacked LSTM (dtLstm): spec checks, state_dict names, shapes and init, one step against
// the equations by hand, bind on a clone, the gradient of the whole module against central
// differences, and the tape memory bound. Parity with torch.nn.LSTM:
// tests/python/test_lstm_torch.py.
#include "test.h"

static void expect_spec_error(dtLstmSpec s, const char* words) {
  CHECK(dt_lstm_check(&s) == DT_ERR_ARG && strstr(dt_last_error(), words), "want '%s': %s",
        words, dt_last_error());
}

static void test_spec_checks(void) {
  dtLstmSpec s = {3, 4, 2};
  CHECK_OK(dt_lstm_check(&s));
  expect_spec_error((dtLstmSpec){0, 4, 2}, "0 input features");
  expect_spec_error((dtLstmSpec){3, 0, 2}, "hidden 0");
  expect_spec_error((dtLstmSpec){3, 4, 0}, "0 layers");
  expect_spec_error((dtLstmSpec){3, 4, DT_LSTM_MAX_LAYERS + 1}, "layers");
  CHECK(dt_lstm_check(NULL) == DT_ERR_ARG);
  dt_clear_error();
}

static void expect_param(const dtParams* ps, const char* name, int ndim, int d0, int d1) {
  dtTensor* p = dt_params_find(ps, name);
  CHECK(p != NULL, "no parameter %s", name);
  if (!p) return;
  char buf[64];
  CHECK(p->ndim == ndim && p->shape[0] == d0 && (ndim == 1 || p->shape[1] == d1), "%s has shape %s",
        name, dt_shape_str(p, buf, sizeof buf));
}

// names and shapes as torch.nn.LSTM(3, 4, num_layers=2) registered as "rnn"
static void test_names_shapes_and_init(void) {
  dtLstmSpec s = {3, 4, 2};
  dtParams ps;
  dt_params_init(&ps);
  dtRng rng;
  dt_rng_seed(&rng, 1);
  dtLstm net;
  CHECK_OK(dt_lstm_create(&net, &s, &ps, "rnn", &rng));
  expect_param(&ps, "rnn.weight_ih_l0", 2, 16, 3);
  expect_param(&ps, "rnn.weight_hh_l0", 2, 16, 4);
  expect_param(&ps, "rnn.bias_ih_l0", 1, 16, 0);
  expect_param(&ps, "rnn.bias_hh_l0", 1, 16, 0);
  expect_param(&ps, "rnn.weight_ih_l1", 2, 16, 4);
  expect_param(&ps, "rnn.bias_hh_l1", 1, 16, 0);
  CHECK(ps.count == 8, "%d tensors", ps.count);
  // torch's init: every entry in U(-1/sqrt(hidden), 1/sqrt(hidden)) = U(-0.5, 0.5)
  float m = 0;
  for (int i = 0; i < ps.count; i++)
    for (int64_t k = 0; k < ps.items[i]->size; k++) m = fmaxf(m, fabsf(ps.items[i]->val[k]));
  CHECK(m <= 0.5f && m > 0.4f, "init max %g", (double)m);
  dt_params_free(&ps);
}

static float sigm(float v) { return 1.0f / (1.0f + expf(-v)); }

// one layer, one hidden unit, two steps, every weight set by hand
static void test_two_steps_by_hand(void) {
  dtLstmSpec s = {1, 1, 1};
  dtParams ps;
  dt_params_init(&ps);
  dtRng rng;
  dt_rng_seed(&rng, 2);
  dtLstm net;
  CHECK_OK(dt_lstm_create(&net, &s, &ps, "", &rng));
  CHECK(dt_params_find(&ps, "weight_ih_l0") != NULL, "an empty prefix names the bare tensor");
  float wi[4] = {0.5f, -0.3f, 0.8f, 0.2f}, wh[4] = {0.1f, 0.4f, -0.6f, 0.7f};
  float bi[4] = {0.05f, 0.1f, -0.2f, 0.3f}, bh[4] = {-0.1f, 0.2f, 0.15f, -0.05f};
  memcpy(net.w_ih[0]->val, wi, sizeof wi);
  memcpy(net.w_hh[0]->val, wh, sizeof wh);
  memcpy(net.b_ih[0]->val, bi, sizeof bi);
  memcpy(net.b_hh[0]->val, bh, sizeof bh);
  float xs[2] = {1.5f, -0.7f}, h = 0, c = 0;
  for (int k = 0; k < 2; k++) {
    float g[4];
    for (int j = 0; j < 4; j++) g[j] = wi[j] * xs[k] + bi[j] + wh[j] * h + bh[j];
    c = sigm(g[1]) * c + sigm(g[0]) * tanhf(g[2]);
    h = sigm(g[3]) * tanhf(c);
  }
  dtTape* t = dt_tape_new(NULL);
  dtTensor* y = dt_lstm_forward(t, &net, dt_input2(t, 1, 2, xs, "x"), 2);
  CHECK(y && y->shape[0] == 1 && y->shape[1] == 1);
  if (y) CHECK_NEAR(y->val[0], h, 1e-6);
  dt_tape_free(t);
  dt_params_free(&ps);
}

static void test_bind_and_errors(void) {
  dtLstmSpec s = {3, 4, 2};
  dtParams ps, clone, empty;
  dt_params_init(&ps);
  dt_params_init(&clone);
  dt_params_init(&empty);
  dtRng rng;
  dt_rng_seed(&rng, 3);
  dtLstm net, bound;
  CHECK_OK(dt_lstm_create(&net, &s, &ps, "rnn", &rng));
  CHECK_OK(dt_params_clone(&clone, &ps));
  CHECK_OK(dt_lstm_bind(&bound, &s, &clone, "rnn"));
  float xv[2 * 15];
  dt_rng_fill_normal(&rng, xv, 30, 0, 1);
  dtTape* t = dt_tape_new(NULL);
  dtTensor* y = dt_lstm_forward(t, &net, dt_input2(t, 2, 15, xv, "x"), 5);
  dtTensor* y2 = dt_lstm_forward(t, &bound, dt_input2(t, 2, 15, xv, "x"), 5);
  int same = y && y2;
  for (int i = 0; same && i < 8; i++) same = y->val[i] == y2->val[i];
  CHECK(same, "the bound clone computes something else");
  // the oldest step matters, and batch rows are independent
  xv[0] += 0.5f;
  dtTensor* y3 = dt_lstm_forward(t, &net, dt_input2(t, 2, 15, xv, "x"), 5);
  double d0 = 0, d1 = 0;
  for (int i = 0; y && y3 && i < 4; i++) d0 += fabs(y->val[i] - y3->val[i]);
  for (int i = 4; y && y3 && i < 8; i++) d1 += fabs(y->val[i] - y3->val[i]);
  CHECK(d0 > 1e-5 && d1 == 0, "first step change: row 0 moved %g, row 1 %g", d0, d1);
  // shapes and step counts are tape errors that say what was expected
  dt_tape_reset(t);
  CHECK(!dt_lstm_forward(t, &net, dt_input2(t, 2, 14, xv, "x"), 5) &&
            dt_tape_status(t) == DT_ERR_SHAPE && strstr(dt_tape_error(t), "want [B, 15]"),
        "%s", dt_tape_error(t));
  dt_tape_reset(t);
  CHECK(!dt_lstm_forward(t, &net, dt_input2(t, 2, 15, xv, "x"), 0) &&
        dt_tape_status(t) == DT_ERR_ARG && strstr(dt_tape_error(t), "0 steps"));
  CHECK(dt_lstm_bind(&bound, &s, &empty, "rnn") == DT_ERR_NOT_FOUND &&
            strstr(dt_last_error(), "rnn.weight_ih_l0"), "%s", dt_last_error());
  dtLstmSpec wide = {3, 5, 2};
  CHECK(dt_lstm_bind(&bound, &wide, &ps, "rnn") == DT_ERR_SHAPE &&
        strstr(dt_last_error(), "wrong shape"), "%s", dt_last_error());
  dt_tape_free(t);
  dt_params_free(&ps);
  dt_params_free(&clone);
  dt_params_free(&empty);
  dt_clear_error();
}

// L = sum_i c_i y_i in double
static double loss(dtTape* t, const dtLstm* net, int B, int steps, const float* xv,
                   const float* proj) {
  dt_tape_reset(t);
  dtTensor* y = dt_lstm_forward(t, net, dt_input2(t, B, steps * net->spec.in, xv, "x"), steps);
  double L = 0;
  for (int64_t i = 0; y && i < y->size; i++) L += (double)proj[i] * y->val[i];
  return y ? L : NAN;
}

// |ad - fd| <= 1e-3 + 1e-2 |fd| at eps 1e-2 (float32, smooth gates: round-off and truncation
// both ~1e-4 |f'|)
static int close_enough(double ad, double fd) { return fabs(ad - fd) <= 1e-3 + 1e-2 * fabs(fd); }

static void test_gradient_matches_finite_differences(void) {
  enum { B = 2, T = 4, IN = 3, H = 5, NX = B * T * IN };
  dtLstmSpec s = {IN, H, 2};
  dtParams ps;
  dt_params_init(&ps);
  dtRng rng;
  dt_rng_seed(&rng, 4);
  dtLstm net;
  CHECK_OK(dt_lstm_create(&net, &s, &ps, "rnn", &rng));
  // larger weights than the init so that the gates leave their linear range
  for (int i = 0; i < ps.count; i++)
    for (int64_t k = 0; k < ps.items[i]->size; k++) ps.items[i]->val[k] *= 2.0f;
  float xv[NX], proj[B * H];
  dt_rng_fill_normal(&rng, xv, NX, 0, 1);
  dt_rng_fill_uniform(&rng, proj, B * H, -1, 1);
  dtTape* t = dt_tape_new(NULL);
  dt_params_zero_grad(&ps);
  dtTensor* x = dt_input2(t, B, T * IN, xv, "x");
  dt_requires_grad(t, x);
  dtTensor* y = dt_lstm_forward(t, &net, x, T);
  CHECK(y != NULL, "%s", dt_tape_error(t));
  if (!y) return;
  CHECK_OK(dt_backward(t, y, proj));
  float gx[NX];
  memcpy(gx, x->grad, sizeof gx);
  const float eps = 1e-2f;
  int bad = 0, checked = 0;
  double worst = 0;
  // every input and every parameter entry
  for (int j = -1; j < ps.count; j++) {
    float* v = j < 0 ? xv : ps.items[j]->val;
    int64_t n = j < 0 ? NX : ps.items[j]->size;
    for (int64_t i = 0; i < n; i++) {
      float v0 = v[i];
      v[i] = v0 + eps;
      double lp = loss(t, &net, B, T, xv, proj);
      v[i] = v0 - eps;
      double lm = loss(t, &net, B, T, xv, proj);
      v[i] = v0;
      double fd = (lp - lm) / (2 * eps), ad = j < 0 ? gx[i] : ps.items[j]->grad[i];
      if (!close_enough(ad, fd) && bad < 5)
        fprintf(stderr, "  %s[%lld]: autodiff %.6g, finite diff %.6g\n",
                j < 0 ? "x" : ps.items[j]->name, (long long)i, ad, fd);
      bad += !close_enough(ad, fd), checked++;
      worst = fmax(worst, fabs(ad - fd) / (1e-3 + 1e-2 * fabs(fd)));
    }
  }
  if (getenv("DT_TEST_VERBOSE")) printf("  %d derivatives, worst err/tol %.3f\n", checked, worst);
  CHECK(bad == 0, "%d of %d derivatives differ from central differences (worst err/tol %.2f)", bad,
        checked, worst);
  CHECK(checked == NX + 4 * H * (IN + H + 2) + 4 * H * (2 * H + 2), "%d derivatives checked", checked);
  dt_tape_free(t);
  dt_params_free(&ps);
}

// dt_lstm_tape_bytes bounds a training step (forward, an MSE, backward) without wasting more
// than a few times what it needs
static void test_tape_bytes_bound(void) {
  dtLstmSpec s = {6, 64, 2};
  int T = 8, batches[2] = {8, 128};
  dtParams ps;
  dt_params_init(&ps);
  dtRng rng;
  dt_rng_seed(&rng, 5);
  dtLstm net;
  CHECK_OK(dt_lstm_create(&net, &s, &ps, "rnn", &rng));
  static float xv[128 * 8 * 6];
  dt_rng_fill_normal(&rng, xv, 128 * 48, 0, 1);
  size_t hw[2] = {0, 0};
  for (int k = 0; k < 2; k++) {
    int B = batches[k];
    dtTapeOpts o = dt_tape_default_opts();
    o.arena_bytes = dt_lstm_tape_bytes(&s, B, T);
    dtTape* t = dt_tape_new(&o);
    dtTensor* y = dt_lstm_forward(t, &net, dt_input2(t, B, T * 6, xv, "x"), T);
    dtTensor* l = dt_mse(t, y, dt_input2(t, B, 64, NULL, "target"));
    CHECK(l != NULL, "batch %d in %zu bytes: %s", B, o.arena_bytes, dt_tape_error(t));
    if (l) CHECK_OK(dt_backward(t, l, NULL));
    dt_tape_memory(t, NULL, &hw[k], NULL);
    dt_tape_free(t);
  }
  double meas = (double)(hw[1] - hw[0]) / 120.0;
  double est = (double)(dt_lstm_tape_bytes(&s, 128, T) - dt_lstm_tape_bytes(&s, 8, T)) / 120.0;
  if (getenv("DT_TEST_VERBOSE"))
    printf("  tape per sample: measured %.0f bytes, bound %.0f\n", meas, est);
  CHECK(est >= meas && est <= 2.5 * meas, "bound %.0f bytes per sample, measured %.0f", est, meas);
  CHECK(dt_lstm_flops(&s, T) == T * (4.0 * 64 * (6 + 64) + 4.0 * 64 * 128 + 20 * 64));
  dt_params_free(&ps);
}

DT_TEST_MAIN("lstm", TEST(test_spec_checks), TEST(test_names_shapes_and_init),
             TEST(test_two_steps_by_hand), TEST(test_bind_and_errors),
             TEST(test_gradient_matches_finite_differences), TEST(test_tape_bytes_bound))
