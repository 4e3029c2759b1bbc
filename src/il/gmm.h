// SPDX-License-Identifier: MIT
// Gaussian-mixture action head for BC (robomimic's GMM policy head, the paper's BC-RNN-GMM base),
// library-internal. A network's output row of K + 2 K n numbers is read as K mixture logits, then
// K raw means and K raw scales of n-dimensional diagonal Gaussians: mean = tanh(raw mean),
// std = softplus(raw scale) + min_std. Training minimises the negative log-likelihood of the
// demonstrated chunk; acting draws a component from softmax(logits) and returns its mean
// (robomimic's low-noise evaluation), so the policy is stochastic across modes only.
#ifndef DT_IL_GMM_H
#define DT_IL_GMM_H

#include "difftop/base.h"
#include "difftop/tensor.h"

// Output width of a K-component head over n numbers.
int dt_gmm_width(int K, int n);

// Mean over the B rows of -log p(target[b]) under the mixture in out [B, dt_gmm_width(K, n)], on
// tape t (gradients flow into out). NULL on a tape error.
dtTensor* dt_gmm_nll(dtTape* t, dtTensor* out, int K, int n, const float* target, float min_std);

// One action per row of out [B, dt_gmm_width(K, n)] (values, no tape): component k ~
// softmax(logits) with rng, then its mean tanh(raw mean_k) into dst [B, n].
void dt_gmm_sample(const float* out, int B, int K, int n, dtRng* rng, float* dst);

#endif
