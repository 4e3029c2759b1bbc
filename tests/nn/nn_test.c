// SPDX-License-Identifier: MIT
// The NN layer on its own: initialisation, state_dict names, binding, zero_last, Adam's skipping
// rules, gradient clipping, error messages, and second order against finite differences (so
// that HVPs are checked even where PyTorch is absent; torch_crosscheck_test.c does the rest).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

// W W^T (wide) or W^T W (tall) against gain^2 I: the largest deviation
static double orthogonality_error(const dtTensor* W, float gain) {
  int rows = W->shape[0], cols = W->shape[1];
  int n = rows < cols ? rows : cols;
  double worst = 0;
  for (int a = 0; a < n; a++) {
    for (int b = 0; b < n; b++) {
      double s = 0;
      if (rows <= cols) {  // rows are orthonormal
        for (int k = 0; k < cols; k++) s += (double)W->val[a * cols + k] * W->val[b * cols + k];
      } else {  // columns are orthonormal
        for (int k = 0; k < rows; k++) s += (double)W->val[k * cols + a] * W->val[k * cols + b];
      }
      double want = a == b ? (double)gain * gain : 0.0;
      if (fabs(s - want) > worst) worst = fabs(s - want);
    }
  }
  return worst;
}

static void test_orthogonal_init(void) {
  const int shapes[4][2] = {{512, 56}, {50, 512}, {64, 64}, {1, 512}};
  const float gains[2] = {1.0f, 1.41421356f};
  for (int s = 0; s < 4; s++) {
    for (int g = 0; g < 2; g++) {
      dtTensor* W = dt_param_new("W", 2, shapes[s]);
      dtRng rng;
      dt_rng_seed(&rng, 7);
      CHECK_OK(dt_init_orthogonal(W, gains[g], &rng));
      double err = orthogonality_error(W, gains[g]);
      // float32 Householder QR: errors ~ n * eps = 512 * 6e-8 at worst
      CHECK(err < 3e-5, "[%d, %d] gain %g: orthogonality error %.3g", shapes[s][0], shapes[s][1],
            (double)gains[g], err);
      dt_param_free(W);
    }
  }
}

// signs: the same seed gives the same matrix, and as in torch.nn.init.orthogonal_ the signs
// make R = Q^T A (A the normal matrix drawn from the seed) have a positive diagonal
static void test_orthogonal_signs(void) {
  const int shapes[2][2] = {{40, 12}, {12, 40}};
  for (int s = 0; s < 2; s++) {
    int rows = shapes[s][0], cols = shapes[s][1];
    int m = rows > cols ? rows : cols, n = rows > cols ? cols : rows;
    dtTensor* W1 = dt_param_new("W1", 2, shapes[s]);
    dtTensor* W2 = dt_param_new("W2", 2, shapes[s]);
    dtTensor* W3 = dt_param_new("W3", 2, shapes[s]);
    dtRng r1, r2, r3;
    dt_rng_seed(&r1, 42), dt_rng_seed(&r2, 42), dt_rng_seed(&r3, 43);
    CHECK_OK(dt_init_orthogonal(W1, 2.0f, &r1));
    CHECK_OK(dt_init_orthogonal(W2, 2.0f, &r2));
    CHECK_OK(dt_init_orthogonal(W3, 2.0f, &r3));
    CHECK(!memcmp(W1->val, W2->val, (size_t)W1->size * sizeof(float)), "same seed differs");
    CHECK(memcmp(W1->val, W3->val, (size_t)W1->size * sizeof(float)), "seeds 42 and 43 agree");
    // the normal matrix A (m x n, column-major) the init drew from the seed
    float* A = malloc((size_t)m * n * sizeof(float));
    dtRng ra;
    dt_rng_seed(&ra, 42);
    dt_rng_fill_normal(&ra, A, (size_t)m * n, 0.0f, 1.0f);
    int min_diag_ok = 1;
    double lower = 0;
    for (int k = 0; k < n; k++) {
      for (int j = 0; j < n; j++) {
        double r = 0;  // R[k][j] = sum_i Q[i][k] A[i][j], Q = W / gain in the taller orientation
        for (int i = 0; i < m; i++) {
          float q = rows >= cols ? W1->val[i * cols + k] : W1->val[k * cols + i];
          r += (double)q / 2.0 * A[(size_t)j * m + i];
        }
        if (k == j && !(r > 0)) min_diag_ok = 0;
        if (k > j && fabs(r) > lower) lower = fabs(r);
      }
    }
    CHECK(min_diag_ok, "[%d, %d]: diag(Q^T A) not positive", rows, cols);
    CHECK(lower < 1e-4, "[%d, %d]: Q^T A not upper triangular (%.3g)", rows, cols, lower);
    free(A);
    dt_param_free(W1), dt_param_free(W2), dt_param_free(W3);
  }
  // a 1-D parameter is refused with its name in the message
  int shape1[1] = {5};
  dtTensor* v = dt_param_new("enc.0.bias", 1, shape1);
  dtRng rng;
  dt_rng_seed(&rng, 1);
  CHECK(dt_init_orthogonal(v, 1.0f, &rng) == DT_ERR_SHAPE, "1-D orthogonal init accepted");
  CHECK(strstr(dt_last_error(), "enc.0.bias") != NULL, "message: %s", dt_last_error());
  dt_param_free(v);
}

static void test_torch_default_init(void) {
  dtMLPSpec spec = dt_mlp_spec_q(56, 512);
  spec.init = DT_INIT_TORCH_DEFAULT;
  dtParams ps;
  dt_params_init(&ps);
  dtRng rng;
  dt_rng_seed(&rng, 3);
  dtMLP mlp;
  CHECK_OK(dt_mlp_create(&mlp, &spec, &ps, "q", &rng));
  for (int l = 0; l < spec.layers; l++) {
    float bound = 1.0f / sqrtf((float)spec.dims[l]);
    const dtTensor* ts[2] = {mlp.weight[l], mlp.bias[l]};
    for (int k = 0; k < 2; k++) {
      const dtTensor* p = ts[k];
      double mx = 0, mean = 0;
      int inside = 1;
      for (int64_t i = 0; i < p->size; i++) {
        if (p->val[i] < -bound || p->val[i] >= bound) inside = 0;
        mx = fabs(p->val[i]) > mx ? fabs(p->val[i]) : mx;
        mean += p->val[i];
      }
      mean /= (double)p->size;
      CHECK(inside, "%s outside [-%g, %g)", p->name, (double)bound, (double)bound);
      // U(-b, b): the mean has standard deviation b / sqrt(3 n): 6 of them
      CHECK(fabs(mean) < 6.0 * bound / sqrt(3.0 * (double)p->size) + 1e-7, "%s mean %g",
            p->name, mean);
      // the range is used: with n >= 512 draws the max is within 2% of the bound (P ~ 1e-4.4)
      if (p->size >= 512) CHECK(mx > 0.98 * bound, "%s max %g of %g", p->name, mx, (double)bound);
    }
  }
  // LayerNorm keeps torch's defaults
  for (int i = 0; i < 512; i++) {
    CHECK(mlp.ln_gain[0]->val[i] == 1.0f && mlp.ln_bias[0]->val[i] == 0.0f, "LN init at %d", i);
    if (mlp.ln_gain[0]->val[i] != 1.0f) break;
  }
  dt_params_free(&ps);
}

static void check_names(const dtParams* ps, const char* const* names, const int (*shapes)[2],
                        int n) {
  CHECK(ps->count == n, "%d parameters, want %d", ps->count, n);
  for (int i = 0; i < n && i < ps->count; i++) {
    const dtTensor* p = ps->items[i];
    CHECK(!strcmp(p->name, names[i]), "parameter %d is '%s', want '%s'", i, p->name, names[i]);
    int nd = shapes[i][1] ? 2 : 1;
    CHECK(p->ndim == nd && p->shape[0] == shapes[i][0] && (nd == 1 || p->shape[1] == shapes[i][1]),
          "'%s' shape", p->name);
  }
}

static void test_state_dict_names(void) {
  dtRng rng;
  dt_rng_seed(&rng, 1);
  dtParams ps;
  dt_params_init(&ps);
  dtMLP dyn, q;
  dtMLPSpec sd = dt_mlp_spec_elu(56, 512, 2, 50), sq = dt_mlp_spec_q(56, 512);
  CHECK_OK(dt_mlp_create(&dyn, &sd, &ps, "_dynamics", &rng));
  CHECK_OK(dt_mlp_create(&q, &sq, &ps, "_Q1", &rng));
  static const char* const names[] = {
      "_dynamics.0.weight", "_dynamics.0.bias", "_dynamics.2.weight", "_dynamics.2.bias",
      "_dynamics.4.weight", "_dynamics.4.bias", "_Q1.0.weight", "_Q1.0.bias", "_Q1.1.weight",
      "_Q1.1.bias", "_Q1.3.weight", "_Q1.3.bias", "_Q1.5.weight", "_Q1.5.bias"};
  static const int shapes[][2] = {{512, 56}, {512, 0}, {512, 512}, {512, 0}, {50, 512}, {50, 0},
                                  {512, 56}, {512, 0}, {512, 0},   {512, 0}, {512, 512},
                                  {512, 0},  {1, 512}, {1, 0}};
  check_names(&ps, names, shapes, 14);
  // numbers of parameters as in torch: sum(p.numel() for p in net.parameters())
  CHECK(dt_params_numel(&ps) == (56 * 512 + 512) + (512 * 512 + 512) + (512 * 50 + 50) +
                                   (56 * 512 + 512) + 1024 + (512 * 512 + 512) + (512 + 1),
        "numel %lld", (long long)dt_params_numel(&ps));
  // FLOP model: 2 per multiply-add
  CHECK(dt_mlp_flops(&sd) == 2.0 * (56 * 512 + 512 * 512 + 512 * 50), "flops %g",
        dt_mlp_flops(&sd));
  // an empty prefix gives bare Sequential names
  dtParams bare;
  dt_params_init(&bare);
  dtMLP m;
  dtMLPSpec s1 = dt_mlp_spec_elu(3, 4, 1, 2);
  CHECK_OK(dt_mlp_create(&m, &s1, &bare, "", &rng));
  CHECK(bare.count == 4 && !strcmp(bare.items[0]->name, "0.weight") &&
        !strcmp(bare.items[3]->name, "2.bias"), "bare names");
  // orthogonal init: zero biases
  for (int i = 0; i < 512; i++) CHECK(dyn.bias[0]->val[i] == 0.0f, "bias %d", i);
  dt_params_free(&bare);
  dt_params_free(&ps);
}

// forward of mlp on x [rows, in] into out
static void run_forward(const dtMLP* mlp, const float* x, int rows, float* out) {
  dtTape* t = dt_tape_new(NULL);
  dtTensor* y = dt_mlp_forward(t, mlp, dt_input2(t, rows, mlp->spec.dims[0], x, "x"));
  CHECK(y != NULL, "forward: %s", dt_tape_error(t));
  if (y) memcpy(out, y->val, (size_t)y->size * sizeof(float));
  dt_tape_free(t);
}

static void test_bind_clone(void) {
  dtRng rng;
  dt_rng_seed(&rng, 5);
  dtParams online, target;
  dt_params_init(&online);
  dtMLP q, qt;
  dtMLPSpec spec = dt_mlp_spec_q(10, 32);
  CHECK_OK(dt_mlp_create(&q, &spec, &online, "_Q1", &rng));
  CHECK_OK(dt_params_clone(&target, &online));
  CHECK_OK(dt_mlp_bind(&qt, &spec, &target, "_Q1"));
  CHECK(qt.weight[0] != q.weight[0] && qt.weight[0] == dt_params_find(&target, "_Q1.0.weight"),
        "bind did not pick the clone's parameters");
  CHECK(qt.ln_gain[0] == dt_params_find(&target, "_Q1.1.weight"), "LayerNorm not bound");
  float x[3 * 10], y1[3], y2[3], y3[3];
  dt_rng_fill_normal(&rng, x, 30, 0, 1);
  run_forward(&q, x, 3, y1);
  run_forward(&qt, x, 3, y2);
  CHECK(!memcmp(y1, y2, sizeof y1), "clone gives a different output");
  // the clone is deep: changing the online weights leaves it alone
  for (int64_t i = 0; i < q.weight[2]->size; i++) q.weight[2]->val[i] += 0.5f;
  run_forward(&q, x, 3, y1);
  run_forward(&qt, x, 3, y3);
  CHECK(!memcmp(y2, y3, sizeof y2), "clone shares storage with the original");
  CHECK(memcmp(y1, y3, sizeof y1), "changing the weights changed nothing");
  // EMA with tau = 1 copies, then the outputs agree again
  CHECK_OK(dt_params_ema(&target, &online, 1.0f));
  run_forward(&qt, x, 3, y3);
  CHECK(!memcmp(y1, y3, sizeof y1), "EMA tau=1 is not a copy");
  dt_params_free(&target);
  dt_params_free(&online);
}

static void test_zero_last(void) {
  dtRng rng;
  dt_rng_seed(&rng, 9);
  dtParams ps;
  dt_params_init(&ps);
  dtMLPSpec spec = dt_mlp_spec_q(8, 16);
  spec.zero_last = 1;
  dtMLP q;
  CHECK_OK(dt_mlp_create(&q, &spec, &ps, "_Q1", &rng));
  const dtTensor *W = q.weight[2], *b = q.bias[2];
  for (int64_t i = 0; i < W->size; i++) CHECK(W->val[i] == 0.0f, "last weight %lld", (long long)i);
  CHECK(b->val[0] == 0.0f, "last bias");
  CHECK(orthogonality_error(q.weight[1], 1.0f) < 1e-5, "hidden layer not orthogonal");
  // output 0 for any input; the gradient reaches only the last layer
  dtTape* t = dt_tape_new(NULL);
  float x[4 * 8];
  dt_rng_fill_normal(&rng, x, 32, 0, 1);
  dtTensor* xt = dt_input2(t, 4, 8, x, "x");
  dt_requires_grad(t, xt);
  dtTensor* y = dt_mlp_forward(t, &q, xt);
  CHECK_OK(dt_backward(t, y, NULL));
  double gsum = 0, gfirst = 0, gx = 0;
  for (int i = 0; i < 4; i++) CHECK(y->val[i] == 0.0f, "output %d = %g", i, (double)y->val[i]);
  for (int64_t i = 0; i < W->size; i++) gsum += fabs(W->grad[i]);
  for (int64_t i = 0; i < q.weight[0]->size; i++) gfirst += fabs(q.weight[0]->grad[i]);
  for (int i = 0; i < 32; i++) gx += fabs(xt->grad[i]);
  CHECK(gsum > 0 && b->grad[0] == 4.0f, "last layer gradients %g, %g", gsum, (double)b->grad[0]);
  CHECK(gfirst == 0 && gx == 0, "gradient passed a zero layer: %g %g", gfirst, gx);
  dt_tape_free(t);
  dt_params_free(&ps);
}

static void test_adam_skips(void) {
  dtParams ps;
  dt_params_init(&ps);
  int shape[1] = {3};
  dtTensor* a = dt_params_add(&ps, "a", 1, shape);
  dtTensor* b = dt_params_add(&ps, "b", 1, shape);  // never used: its grad stays untouched
  dtTensor* c = dt_params_add(&ps, "c", 1, shape);  // frozen
  for (int i = 0; i < 3; i++) a->val[i] = b->val[i] = c->val[i] = 1.0f + (float)i;
  dt_params_set_trainable(&ps, "c", 0);
  dtAdam* adam = dt_adam_new(&ps, NULL);
  dtTape* t = dt_tape_new(NULL);
  // loss = sum(a * c): a gets a gradient, frozen c does not
  dtTensor* y = dt_sum(t, dt_mul(t, a, c), DT_AXIS_ALL);
  dt_params_zero_grad(&ps);
  CHECK_OK(dt_backward(t, y, NULL));
  CHECK((a->flags & DT_GRAD_TOUCHED) && !(b->flags & DT_GRAD_TOUCHED) &&
        !(c->flags & DT_GRAD_TOUCHED), "touched flags %d %d %d", a->flags, b->flags, c->flags);
  CHECK_OK(dt_adam_step(adam));
  int64_t *sa, *sb, *sc;
  dt_adam_state(adam, 0, NULL, NULL, &sa);
  dt_adam_state(adam, 1, NULL, NULL, &sb);
  dt_adam_state(adam, 2, NULL, NULL, &sc);
  CHECK(*sa == 1 && *sb == 0 && *sc == 0, "steps %lld %lld %lld", (long long)*sa,
        (long long)*sb, (long long)*sc);
  // first Adam step moves by lr * sign(g) (bias-corrected m / sqrt(v) = sign(g))
  for (int i = 0; i < 3; i++) {
    CHECK_NEAR(a->val[i], 1.0f + (float)i - 1e-3f, 1e-6);
    CHECK(b->val[i] == 1.0f + (float)i && c->val[i] == 1.0f + (float)i, "b or c moved");
  }
  // zero_grad then step without backward: nothing moves (torch with set_to_none=True)
  float before = a->val[0];
  dt_params_zero_grad(&ps);
  CHECK_OK(dt_adam_step(adam));
  CHECK(a->val[0] == before && *sa == 1, "an untouched gradient was applied");
  // a parameter frozen after its gradient was written is still skipped
  dt_tape_reset(t);
  dt_params_set_trainable(&ps, "", 1);
  y = dt_sum(t, dt_mul(t, a, c), DT_AXIS_ALL);
  CHECK_OK(dt_backward(t, y, NULL));
  dt_params_set_trainable(&ps, "c", 0);
  float c0 = c->val[0];
  CHECK_OK(dt_adam_step(adam));
  CHECK(c->val[0] == c0 && *sc == 0 && *sa == 2, "frozen parameter updated");
  // lr changes apply
  dt_adam_set_lr(adam, 0.0f);
  before = a->val[1];
  CHECK_OK(dt_adam_step(adam));  // a still touched (no zero_grad): lr 0 leaves it
  CHECK(a->val[1] == before, "lr 0 moved the parameter");
  // adding a parameter after creating the optimizer is an error naming the counts
  dt_params_add(&ps, "d", 1, shape);
  CHECK(dt_adam_step(adam) == DT_ERR_STATE, "step after the set grew");
  CHECK(strstr(dt_last_error(), "3 -> 4") != NULL, "message: %s", dt_last_error());
  dt_tape_free(t);
  dt_adam_free(adam);
  dt_params_free(&ps);
}

static void test_clip(void) {
  dtParams ps;
  dt_params_init(&ps);
  int s1[1] = {2}, s2[2] = {1, 2};
  dtTensor* p = dt_params_add(&ps, "p", 1, s1);
  dtTensor* q = dt_params_add(&ps, "q", 2, s2);
  p->grad[0] = 3, p->grad[1] = 0, q->grad[0] = 0, q->grad[1] = 4;  // norm 5
  CHECK_NEAR(dt_params_grad_norm(&ps), 5.0, 1e-12);
  double n = dt_params_clip_grad_norm(&ps, 10.0);  // below: unchanged
  CHECK_NEAR(n, 5.0, 1e-12);
  CHECK(p->grad[0] == 3.0f && q->grad[1] == 4.0f, "clipped below max_norm");
  n = dt_params_clip_grad_norm(&ps, 1.0);  // above: scaled by max_norm / (norm + 1e-6)
  CHECK_NEAR(n, 5.0, 1e-12);
  CHECK_NEAR(p->grad[0], 3.0 / (5.0 + 1e-6), 1e-7);
  CHECK_NEAR(q->grad[1], 4.0 / (5.0 + 1e-6), 1e-7);
  CHECK_NEAR(dt_params_grad_norm(&ps), 1.0, 1e-6);
  // non-finite gradients are reported
  CHECK(!dt_params_grad_nonfinite(&ps), "finite gradients reported non-finite");
  q->grad[0] = NAN;
  CHECK(dt_params_grad_nonfinite(&ps), "NaN gradient not reported");
  dt_params_free(&ps);
}

static void test_errors_name_parameters(void) {
  dtParams ps;
  dt_params_init(&ps);
  int shape[2] = {4, 3};
  CHECK(dt_params_add(&ps, "_encoder.0.weight", 2, shape) != NULL, "%s", dt_last_error());
  dt_clear_error();
  CHECK(dt_params_add(&ps, "_encoder.0.weight", 2, shape) == NULL, "duplicate accepted");
  CHECK(strstr(dt_last_error(), "_encoder.0.weight") && strstr(dt_last_error(), "duplicate"),
        "message: %s", dt_last_error());
  CHECK(ps.count == 1, "duplicate added");
  dtMLP m;
  dtMLPSpec spec = dt_mlp_spec_elu(3, 4, 1, 2);
  // a missing parameter
  CHECK(dt_mlp_bind(&m, &spec, &ps, "_encoder") == DT_ERR_NOT_FOUND, "missing not reported");
  CHECK(strstr(dt_last_error(), "_encoder.0.bias"), "message: %s", dt_last_error());
  // a wrong shape: _encoder.0.weight is [4, 3], the spec wants [4, 3]; make layer 2 wrong
  int b0[1] = {4}, w2[2] = {2, 5}, b2[1] = {2};
  dt_params_add(&ps, "_encoder.0.bias", 1, b0);
  dt_params_add(&ps, "_encoder.2.weight", 2, w2);
  dt_params_add(&ps, "_encoder.2.bias", 1, b2);
  CHECK(dt_mlp_bind(&m, &spec, &ps, "_encoder") == DT_ERR_SHAPE, "wrong shape accepted");
  CHECK(strstr(dt_last_error(), "_encoder.2.weight"), "message: %s", dt_last_error());
  // copy_values and ema name the parameter that does not fit
  dtParams other;
  dt_params_init(&other);
  dt_params_add(&other, "_encoder.0.weight", 2, shape);
  CHECK(dt_params_copy_values(&ps, &other) == DT_ERR_NOT_FOUND, "missing source accepted");
  CHECK(strstr(dt_last_error(), "_encoder.0.bias"), "message: %s", dt_last_error());
  dt_params_add(&other, "_encoder.0.bias", 1, b0);
  dt_params_add(&other, "_encoder.2.weight", 2, shape);  // 12 values, ps has 10
  dt_params_add(&other, "_encoder.2.bias", 1, b2);
  CHECK(dt_params_copy_values(&ps, &other) == DT_ERR_SHAPE, "size mismatch accepted");
  CHECK(strstr(dt_last_error(), "_encoder.2.weight"), "message: %s", dt_last_error());
  CHECK(dt_params_ema(&ps, &other, 0.5f) == DT_ERR_SHAPE, "EMA size mismatch accepted");
  CHECK(strstr(dt_last_error(), "_encoder.2.weight"), "message: %s", dt_last_error());
  dt_params_free(&other);
  dt_params_free(&ps);
}

// second order against central differences of the gradients, on a small Q-shaped net:
// HVP(x) = d/dx (w . df/dx) ~ (gx(x + h w) - gx(x - h w)) / 2h, mixed likewise with grad.P
static void grads_at(const dtMLP* q, dtParams* ps, const float* x, int rows, const float* r,
                     float* gx, float* gp) {
  dtTape* t = dt_tape_new(NULL);
  dt_params_zero_grad(ps);
  dtTensor* xt = dt_input2(t, rows, q->spec.dims[0], x, "x");
  dt_requires_grad(t, xt);
  dtTensor* y = dt_mlp_forward(t, q, xt);
  CHECK_OK(dt_backward(t, y, r));
  memcpy(gx, xt->grad, (size_t)xt->size * sizeof(float));
  for (int i = 0, k = 0; i < ps->count; k += (int)ps->items[i]->size, i++)
    memcpy(gp + k, ps->items[i]->grad, (size_t)ps->items[i]->size * sizeof(float));
  dt_tape_free(t);
}

static double max_err_rel(const float* a, const double* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    num = fmax(num, fabs((double)a[i] - b[i]));
    den = fmax(den, fabs(b[i]));
  }
  return den > 0 ? num / den : num;
}

static void test_second_order_finite_differences(void) {
  dtRng rng;
  dt_rng_seed(&rng, 11);
  dtParams ps;
  dt_params_init(&ps);
  dtMLPSpec spec = dt_mlp_spec_q(6, 16);
  spec.init = DT_INIT_TORCH_DEFAULT;
  dtMLP q;
  CHECK_OK(dt_mlp_create(&q, &spec, &ps, "q", &rng));
  for (int i = 0; i < 16; i++) q.ln_gain[0]->val[i] = 1.0f + 0.2f * dt_rng_normal(&rng);
  enum { ROWS = 3, IN = 6 };
  int64_t np = dt_params_numel(&ps);
  float x[ROWS * IN], w[ROWS * IN], r[ROWS], xp[ROWS * IN], xm[ROWS * IN];
  dt_rng_fill_normal(&rng, x, ROWS * IN, 0, 1);
  dt_rng_fill_normal(&rng, w, ROWS * IN, 0, 1);
  dt_rng_fill_normal(&rng, r, ROWS, 0, 1);
  // the tape's forward-over-reverse result
  dtTape* t = dt_tape_new(NULL);
  dt_params_zero_grad(&ps);
  dtTensor* xt = dt_input2(t, ROWS, IN, x, "x");
  dt_requires_grad(t, xt);
  dt_set_tangent(t, xt, w);
  dtTensor* y = dt_mlp_forward(t, &q, xt);
  CHECK_OK(dt_backward(t, y, r));
  float hvp[ROWS * IN];
  float* mixed = malloc((size_t)np * sizeof(float));
  memcpy(hvp, xt->gdot, sizeof hvp);
  for (int i = 0, k = 0; i < ps.count; k += (int)ps.items[i]->size, i++)
    memcpy(mixed + k, ps.items[i]->gdot, (size_t)ps.items[i]->size * sizeof(float));
  dt_tape_free(t);
  // central differences in float32 with h = 1e-2: truncation ~h^2 ~ 1e-4, rounding
  // ~ 6e-8 / h ~ 1e-5 relative: tolerance 2e-3 relative to the largest entry
  const float h = 1e-2f;
  for (int i = 0; i < ROWS * IN; i++) xp[i] = x[i] + h * w[i], xm[i] = x[i] - h * w[i];
  float gxp[ROWS * IN], gxm[ROWS * IN];
  float* gpp = malloc((size_t)np * sizeof(float));
  float* gpm = malloc((size_t)np * sizeof(float));
  grads_at(&q, &ps, xp, ROWS, r, gxp, gpp);
  grads_at(&q, &ps, xm, ROWS, r, gxm, gpm);
  double fd_x[ROWS * IN];
  double* fd_p = malloc((size_t)np * sizeof(double));
  for (int i = 0; i < ROWS * IN; i++) fd_x[i] = ((double)gxp[i] - gxm[i]) / (2.0 * h);
  for (int64_t i = 0; i < np; i++) fd_p[i] = ((double)gpp[i] - gpm[i]) / (2.0 * h);
  double ex = max_err_rel(hvp, fd_x, ROWS * IN), ep = max_err_rel(mixed, fd_p, np);
  printf("     second order vs central differences: HVP %.3g, mixed %.3g (relative to max)\n", ex,
         ep);
  CHECK(ex < 2e-3, "HVP differs from finite differences by %.3g", ex);
  CHECK(ep < 2e-3, "mixed product differs from finite differences by %.3g", ep);
  free(mixed), free(gpp), free(gpm), free(fd_p);
  dt_params_free(&ps);
}

DT_TEST_MAIN("nn/nn", TEST(test_orthogonal_init), TEST(test_orthogonal_signs),
             TEST(test_torch_default_init), TEST(test_state_dict_names), TEST(test_bind_clone),
             TEST(test_zero_last), TEST(test_adam_skips), TEST(test_clip),
             TEST(test_errors_name_parameters), TEST(test_second_order_finite_differences))
