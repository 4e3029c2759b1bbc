// SPDX-License-Identifier: MIT
// Gaussian-mixture action head (see gmm.h). Our own implementation of the mixture density
// network of robomimic's GMM policy, from its description.
#include "gmm.h"

#include <math.h>
#include <string.h>

int dt_gmm_width(int K, int n) { return K + 2 * K * n; }

dtTensor* dt_gmm_nll(dtTape* t, dtTensor* out, int K, int n, const float* target, float min_std) {
  if (!out) return NULL;
  int B = out->shape[0], s3[3] = {B, K, n};
  // the target repeated for every component [B, K, n], in the tape's arena
  float* tk = dt_tape_floats(t, (int64_t)B * K * n);
  if (!tk) return NULL;
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
  dtTensor* joint = dt_logsumexp(t, dt_add(t, logits, comp));
  dtTensor* norm = dt_logsumexp(t, logits);
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
