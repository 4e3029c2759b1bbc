// SPDX-License-Identifier: MIT
// Implicit BC (src/il/ibc.c): the InfoNCE loss against a direct computation, its parameter
// gradient against finite differences, and the derivative-free optimiser on energies with a
// known minimum.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "il/ibc.h"
#include "test.h"

enum { F = 3, NA = 2, B = 4, NEG = 6 };

static const float feat[B * F] = {0.1f, -0.4f, 0.9f, 0.5f, 0.2f, -0.3f, -0.8f, 0.7f, 0.0f, 0.3f, 0.3f, 0.3f};
static const float target[B * NA] = {0.2f, -0.5f, 0.9f, 0.1f, -0.6f, -0.6f, 0.0f, 0.4f};

static void make_energy(dtParams* ps, dtMLP* e, int hidden) {
  dt_params_init(ps);
  dtRng rng;
  dt_rng_seed(&rng, 11);
  dtMLPSpec s = dt_mlp_spec_elu(F + NA, hidden, 2, 1);
  s.init = DT_INIT_TORCH_DEFAULT;
  CHECK_OK(dt_mlp_create(e, &s, ps, "energy", &rng));
}

// the loss with `neg` counter-examples from seed 5
static double loss_neg(dtTape* t, const dtMLP* e, float* rows, int neg) {
  dtRng rng;
  dt_rng_seed(&rng, 5);
  dt_tape_reset(t);
  dtTensor* l = dt_ibc_loss(t, e, B, F, NA, feat, target, neg, &rng, rows);
  return l ? l->val[0] : NAN;
}

// the loss with NEG counter-examples
static double loss_at(dtTape* t, const dtMLP* e, float* rows) { return loss_neg(t, e, rows, NEG); }

// InfoNCE by hand: the same candidates, one energy row at a time, log-sum-exp in double
static double loss_direct(dtTape* t, const dtMLP* e, int neg) {
  dtRng rng;
  dt_rng_seed(&rng, 5);
  double total = 0;
  for (int b = 0; b < B; b++) {
    double logit[NEG + 1], mx = -INFINITY, sum = 0;
    for (int j = 0; j <= neg; j++) {
      float row[F + NA];
      memcpy(row, feat + b * F, sizeof(float) * F);
      if (j == 0) memcpy(row + F, target + b * NA, sizeof(float) * NA);
      else dt_rng_fill_uniform(&rng, row + F, NA, -1.0f, 1.0f);
      dt_tape_reset(t);
      dtTensor* en = dt_mlp_forward(t, e, dt_input2(t, 1, F + NA, row, "row"));
      logit[j] = en ? -(double)en->val[0] : NAN;
      mx = fmax(mx, logit[j]);
    }
    for (int j = 0; j <= neg; j++) sum += exp(logit[j] - mx);
    total += mx + log(sum) - logit[0];
  }
  return total / B;
}

static void test_loss_value_and_gradient(void) {
  dtParams ps;
  dtMLP e;
  make_energy(&ps, &e, 16);
  dtTape* t = dt_tape_new(NULL);
  float* rows = malloc(dt_ibc_loss_rows(B, F, NA, NEG) * sizeof(float));
  double l = loss_at(t, &e, rows);
  CHECK_NEAR(l, loss_direct(t, &e, NEG), 1e-5);
  // as many candidates per row as rows: the row maxima must not broadcast as a row
  CHECK_NEAR(loss_neg(t, &e, rows, B - 1), loss_direct(t, &e, B - 1), 1e-5);
  CHECK(l > 0 && l < 10, "loss %g", l);
  // analytic gradient of every parameter against central differences of the whole loss
  dt_params_zero_grad(&ps);
  dtRng rng;
  dt_rng_seed(&rng, 5);
  dt_tape_reset(t);
  dtTensor* lt = dt_ibc_loss(t, &e, B, F, NA, feat, target, NEG, &rng, rows);
  CHECK_OK(dt_backward(t, lt, NULL));
  int checked = 0;
  double worst = 0;
  for (int i = 0; i < ps.count; i++) {
    dtTensor* p = ps.items[i];
    int64_t size = p->size;
    for (int64_t k = 0; k < size; k += 7) {
      float v = p->val[k];
      float h = 1e-2f;
      p->val[k] = v + h;
      double lp = loss_at(t, &e, rows);
      p->val[k] = v - h;
      double lm = loss_at(t, &e, rows);
      p->val[k] = v;
      double fd = (lp - lm) / (2 * h), g = p->grad[k];
      double err = fabs(fd - g) / fmax(1e-2, fabs(fd) + fabs(g));
      worst = fmax(worst, err);
      checked++;
    }
  }
  printf("  loss %.6f; %d parameter entries, worst relative error %.2e\n", l, checked, worst);
  CHECK(checked > 30 && worst < 2e-2, "%d entries, worst relative error %g", checked, worst);
  free(rows);
  dt_tape_free(t);
  dt_params_free(&ps);
}

// E(x, a) = |a_0 - c_0| + |a_1 - c_1| as a ReLU MLP: hidden units relu(+-(a_j - c_j))
static void make_abs_energy(dtParams* ps, dtMLP* e, const float c[NA]) {
  dt_params_init(ps);
  dtRng rng;
  dt_rng_seed(&rng, 1);
  dtMLPSpec s = dt_mlp_spec_elu(F + NA, 2 * NA, 1, 1);
  s.act[0] = DT_ACT_RELU;
  CHECK_OK(dt_mlp_create(e, &s, ps, "energy", &rng));
  dtTensor *w0 = e->weight[0], *b0 = e->bias[0], *w1 = e->weight[1], *b1 = e->bias[1];
  memset(w0->val, 0, sizeof(float) * w0->size);
  for (int j = 0; j < NA; j++)
    for (int sgn = 0; sgn < 2; sgn++) {
      int u = 2 * j + sgn;  // weight [out, in] (torch layout)
      float sign = sgn ? -1.0f : 1.0f;
      w0->val[u * (F + NA) + F + j] = sign;
      b0->val[u] = -sign * c[j];
      w1->val[u] = 1.0f;
    }
  b1->val[0] = 0.0f;
}

static void test_dfo_finds_the_minimum(void) {
  const float c[NA] = {0.37f, -0.62f};
  dtParams ps;
  dtMLP e;
  make_abs_energy(&ps, &e, c);
  dtTape* t = dt_tape_new(NULL);
  dtIbcOpts o = {512, 3, 0.33f, 0.5f, 0.1f};
  float* scratch = malloc(dt_ibc_act_scratch(o.samples, F, NA) * sizeof(float));
  int* idx = malloc(sizeof(int) * o.samples);
  dtRng rng;
  dt_rng_seed(&rng, 2);
  float out[NA], en;
  // the energy is exact: |a - c|_1 at a = c is 0
  CHECK_OK(dt_ibc_act(t, &e, F, NA, feat, NULL, &o, &rng, scratch, idx, out, &en));
  CHECK_NEAR(en, fabsf(out[0] - c[0]) + fabsf(out[1] - c[1]), 1e-5);
  CHECK(en < 0.04f, "uniform start: (%g, %g), energy %g", out[0], out[1], en);
  // a pure uniform draw of 512 (no rounds) is farther: the rounds do the work
  o.iters = 0;
  float out0[NA], en0;
  CHECK_OK(dt_ibc_act(t, &e, F, NA, feat, NULL, &o, &rng, scratch, idx, out0, &en0));
  printf("  |a - c|_1 after 3 rounds %.4f, after none %.4f\n", en, en0);
  CHECK(en0 > en, "no rounds %g, three rounds %g", en0, en);
  // from an initial action with no spread and no rounds the optimiser returns it
  const float init[NA] = {0.1f, -0.3f};
  o.init_std = 0.0f;
  CHECK_OK(dt_ibc_act(t, &e, F, NA, feat, init, &o, &rng, scratch, idx, out, &en));
  CHECK(out[0] == init[0] && out[1] == init[1]);
  // with rounds it moves from there to the minimum; never above the initial action's energy
  o.iters = 4;
  o.init_std = 0.1f;
  CHECK_OK(dt_ibc_act(t, &e, F, NA, feat, init, &o, &rng, scratch, idx, out, &en));
  printf("  from the initial action: |a - c|_1 %.4f\n", en);
  CHECK(en < 0.04f, "from (%g, %g): (%g, %g), energy %g", init[0], init[1], out[0], out[1], en);
  free(scratch);
  free(idx);
  dt_tape_free(t);
  dt_params_free(&ps);
}

DT_TEST_MAIN("il/ibc", TEST(test_loss_value_and_gradient), TEST(test_dfo_finds_the_minimum))
