// SPDX-License-Identifier: MIT
// Gaussian-mixture head (src/il/gmm.c): the negative log-likelihood against a direct
// computation in double, its gradient against central differences, and the sampler's
// component frequencies against softmax(logits).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "il/gmm.h"
#include "test.h"

enum { K = 3, N = 4, MAXB = 6 };
#define MIN_STD 1e-2f

// -mean_b log sum_k softmax(logits)_k prod_j N(target_j; tanh(mu_kj), softplus(s_kj) + MIN_STD)
static double nll_direct(const float* out, int B, const float* target) {
  int w = dt_gmm_width(K, N);
  double total = 0;
  for (int b = 0; b < B; b++) {
    const float* r = out + (size_t)b * w;
    double lognorm = 0, mix = 0;
    for (int k = 0; k < K; k++) lognorm += exp(r[k]);
    for (int k = 0; k < K; k++) {
      double logp = r[k] - log(lognorm);
      for (int j = 0; j < N; j++) {
        double mu = tanh(r[K + k * N + j]), sd = log1p(exp(r[K + K * N + k * N + j])) + MIN_STD;
        double z = (target[b * N + j] - mu) / sd;
        logp += -0.5 * z * z - log(sd) - 0.5 * log(2 * M_PI);
      }
      mix += exp(logp);
    }
    total -= log(mix);
  }
  return total / B;
}

static double nll_tape(dtTape* t, float* out, int B, const float* target, int backward,
                       float* grad) {
  dt_tape_reset(t);
  int shape[2] = {B, dt_gmm_width(K, N)};
  dtTensor* x = dt_input(t, 2, shape, out, "out");
  CHECK_OK(dt_requires_grad(t, x));
  dtTensor* l = dt_gmm_nll(t, x, K, N, target, MIN_STD);
  if (!l) return NAN;
  if (backward) {
    CHECK_OK(dt_backward(t, l, NULL));
    memcpy(grad, x->grad, sizeof(float) * (size_t)x->size);
  }
  return l->val[0];
}

static void fill(float* out, float* target, int B, uint64_t seed) {
  dtRng rng;
  dt_rng_seed(&rng, seed);
  dt_rng_fill_normal(&rng, out, (size_t)B * dt_gmm_width(K, N), 0.0f, 0.8f);
  dt_rng_fill_uniform(&rng, target, (size_t)B * N, -0.9f, 0.9f);
}

static void test_nll_value_and_gradient(void) {
  int w = dt_gmm_width(K, N);
  CHECK(w == K + 2 * K * N);
  dtTape* t = dt_tape_new(NULL);
  float out[MAXB * (K + 2 * K * N)], target[MAXB * N], grad[MAXB * (K + 2 * K * N)];
  // B = K too: the log-sum-exp shifts must broadcast per row, not per component
  int batches[3] = {MAXB, K, 1};
  for (int c = 0; c < 3; c++) {
    int B = batches[c];
    fill(out, target, B, 7 + c);
    double l = nll_tape(t, out, B, target, 1, grad);
    CHECK_NEAR(l, nll_direct(out, B, target), 1e-4 * fmax(1.0, fabs(l)));
    double worst = 0;
    for (int i = 0; i < B * w; i++) {
      // central differences of the double-precision loss over the float steps actually taken
      float v = out[i], hi = v + 1e-3f, lo = v - 1e-3f;
      out[i] = hi;
      double lp = nll_direct(out, B, target);
      out[i] = lo;
      double lm = nll_direct(out, B, target);
      out[i] = v;
      double fd = (lp - lm) / ((double)hi - (double)lo);
      worst = fmax(worst, fabs(fd - grad[i]) / fmax(1e-2, fabs(fd) + fabs(grad[i])));
    }
    printf("  B %d: nll %.5f, %d derivatives, worst relative error %.2e\n", B, l, B * w, worst);
    CHECK(worst < 2e-3, "B %d: worst relative error %g", B, worst);
  }
  dt_tape_free(t);
}

static void test_sampler(void) {
  // logits log(0.2), log(0.5), log(0.3) + 1 (the shift must not matter), distinct means
  int w = dt_gmm_width(K, N);
  float row[K + 2 * K * N];
  memset(row, 0, sizeof row);
  const double prob[K] = {0.2, 0.5, 0.3};
  for (int k = 0; k < K; k++) row[k] = (float)log(prob[k]) + 1.0f;
  for (int k = 0; k < K; k++)
    for (int j = 0; j < N; j++) row[K + k * N + j] = 0.3f * (float)(k + 1) * (j % 2 ? -1.0f : 1.0f);
  enum { DRAWS = 20000 };
  int count[K] = {0};
  dtRng rng;
  dt_rng_seed(&rng, 3);
  float a[N];
  for (int d = 0; d < DRAWS; d++) {
    dt_gmm_sample(row, 1, K, N, &rng, a);
    int k = -1;
    for (int c = 0; c < K; c++)
      if (fabsf(a[0] - tanhf(row[K + c * N])) < 1e-6f) k = c;
    CHECK(k >= 0, "draw %d is no component's mean", d);
    if (k < 0) return;
    for (int j = 0; j < N; j++) CHECK_NEAR(a[j], tanhf(row[K + k * N + j]), 1e-6);
    count[k]++;
  }
  for (int k = 0; k < K; k++) {
    double f = (double)count[k] / DRAWS, sd = sqrt(prob[k] * (1 - prob[k]) / DRAWS);
    printf("  component %d: frequency %.4f (softmax %.2f)\n", k, f, prob[k]);
    CHECK(fabs(f - prob[k]) < 5 * sd, "component %d: %g vs %g", k, f, prob[k]);
  }
  // rows of a batch draw independently from their own logits
  float two[2 * (K + 2 * K * N)], b2[2 * N];
  memcpy(two, row, sizeof row);
  memcpy(two + w, row, sizeof row);
  two[w + 0] = 50.0f;  // row 1: component 0 only
  dt_gmm_sample(two, 2, K, N, &rng, b2);
  CHECK_NEAR(b2[N], tanhf(row[K]), 1e-6);
}

DT_TEST_MAIN("il/gmm", TEST(test_nll_value_and_gradient), TEST(test_sampler))
