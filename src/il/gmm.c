// SPDX-License-Identifier: MIT
// Gaussian-mixture action head (see gmm.h). Our own implementation of the mixture density
// network of robomimic's GMM policy, from its description.
#include "gmm.h"

#include <math.h>
#include <string.h>

int dt_gmm_width(int K, int n) { return K + 2 * K * n; }

size_t dt_gmm_nll_scratch(int B, int K, int n) { return (size_t)B * K * n + 2 * (size_t)B; }

// each row's maximum of x [B, K] into m [B] (a constant shift for log-sum-exp)
static void row_max(const float* x, int B, int K, float* m) {
  for (int b = 0; b < B; b++) {
    float mx = x[(size_t)b * K];
    for (int k = 1; k < K; k++) mx = fmaxf(mx, x[(size_t)b * K + k]);
    m[b] = mx;
  }
}

// log sum_k exp(x[b, k]) -> [B], shifted by each row's maximum m (the gradient does not
// depend on the shift, so m enters as a constant)
static dtTensor* logsumexp_rows(dtTape* t, dtTensor* x, float* m) {
  if (!x) return NULL;
  // m as a column [B, 1]: a [B] vector would broadcast as a row when K == B
  int B = x->shape[0], col[2] = {B, 1}, shape1[1] = {B};
  row_max(x->val, B, x->shape[1], m);
  dtTensor* mt = dt_input(t, 2, col, m, "row max");
  return dt_add(t, dt_log(t, dt_sum(t, dt_exp(t, dt_sub(t, x, mt)), 1)), dt_reshape(t, mt, 1, shape1));
}

dtTensor* dt_gmm_nll(dtTape* t, dtTensor* out, int K, int n, const float* target, float min_std,
                     float* scratch) {
  if (!out) return NULL;
  int B = out->shape[0], s3[3] = {B, K, n};
  // the target repeated for every component [B, K, n]
  float* tk = scratch;
  for (int b = 0; b < B; b++)
    for (int k = 0; k < K; k++) memcpy(tk + ((size_t)b * K + k) * n, target + (size_t)b * n, n * sizeof(float));
  dtTensor* logits = dt_slice(t, out, 1, 0, K);
  dtTensor* mu = dt_tanh(t, dt_reshape(t, dt_slice(t, out, 1, K, K * n), 3, s3));
  dtTensor* sd = dt_affine(t, dt_softplus(t, dt_reshape(t, dt_slice(t, out, 1, K + K * n, K * n), 3, s3)), 1.0f, min_std);
  // log N(a; mu, sd) per dimension: -z^2 / 2 - log sd - log(2 pi) / 2, summed over the n numbers
  dtTensor* z = dt_div(t, dt_sub(t, dt_input(t, 3, s3, tk, "a*"), mu), sd);
  dtTensor* logpdf = dt_sub(t, dt_scale(t, dt_square(t, z), -0.5f), dt_log(t, sd));
  dtTensor* comp = dt_affine(t, dt_sum(t, logpdf, 2), 1.0f, -0.5f * (float)n * logf(2.0f * (float)M_PI));
  // log p(a) = lse_k(logits + comp) - lse_k(logits)
  float* m = scratch + (size_t)B * K * n;
  dtTensor* joint = logsumexp_rows(t, dt_add(t, logits, comp), m);
  dtTensor* norm = logsumexp_rows(t, logits, m + B);
  return dt_scale(t, dt_mean(t, dt_sub(t, joint, norm), DT_AXIS_ALL), -1.0f);
}

void dt_gmm_sample(const float* out, int B, int K, int n, dtRng* rng, float* dst) {
  int w = dt_gmm_width(K, n);
  for (int b = 0; b < B; b++) {
    const float* row = out + (size_t)b * w;
    float mx = row[0];
    for (int k = 1; k < K; k++) mx = fmaxf(mx, row[k]);
    double total = 0;
    for (int k = 0; k < K; k++) total += exp((double)row[k] - mx);
    // inverse CDF of the categorical
    double u = dt_rng_uniform(rng) * total, acc = 0;
    int pick = K - 1;
    for (int k = 0; k < K; k++) {
      acc += exp((double)row[k] - mx);
      if (u < acc) { pick = k; break; }
    }
    const float* mean = row + K + (size_t)pick * n;
    for (int j = 0; j < n; j++) dst[(size_t)b * n + j] = tanhf(mean[j]);
  }
}
