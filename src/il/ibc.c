// SPDX-License-Identifier: MIT
// Implicit behaviour cloning: InfoNCE training of an energy and derivative-free optimisation
// (see ibc.h). Our own implementation from the paper's description.
#include "ibc.h"

#include <math.h>
#include <string.h>

size_t dt_ibc_loss_rows(int B, int F, int n, int negatives) {
  return (size_t)B * (negatives + 1) * (F + n);
}

// rows [B (N + 1), F + n]: row b (N + 1) + j holds feat[b] and candidate j of sample b
// (j = 0 the demonstrated action, j >= 1 uniform counter-examples)
static void fill_candidates(int B, int F, int n, int N, const float* feat, const float* target,
                            dtRng* rng, float* rows) {
  int w = F + n;
  for (int b = 0; b < B; b++)
    for (int j = 0; j <= N; j++) {
      float* r = rows + ((size_t)b * (N + 1) + j) * w;
      memcpy(r, feat + (size_t)b * F, F * sizeof(float));
      if (j == 0) memcpy(r + F, target + (size_t)b * n, n * sizeof(float));
      else dt_rng_fill_uniform(rng, r + F, n, -1.0f, 1.0f);
    }
}

dtTensor* dt_ibc_loss(dtTape* t, const dtMLP* energy, int B, int F, int n, const float* feat,
                      const float* target, int negatives, dtRng* rng, float* rows) {
  int N = negatives, K = N + 1, shape[2] = {B, K};
  fill_candidates(B, F, n, N, feat, target, rng, rows);
  dtTensor* e = dt_mlp_forward(t, energy, dt_input2(t, B * K, F + n, rows, "candidates"));
  if (!e) return NULL;
  dtTensor* logits = dt_scale(t, dt_reshape(t, e, 2, shape), -1.0f);
  if (!logits) return NULL;
  int shape1[1] = {B};
  dtTensor* lse = dt_logsumexp(t, logits);
  dtTensor* pos = dt_reshape(t, dt_slice(t, logits, 1, 0, 1), 1, shape1);
  return dt_mean(t, dt_sub(t, lse, pos), DT_AXIS_ALL);
}

size_t dt_ibc_act_scratch(int S, int F, int n) {
  return (size_t)S * (F + n) + (size_t)S * n + (size_t)S + 16;
}

// energies of the population pop [S, n] for features feat [F] into en [S] (no gradients)
static dtStatus population_energy(dtTape* t, const dtMLP* energy, int S, int F, int n,
                                  const float* feat, const float* pop, float* rows, float* en) {
  for (int s = 0; s < S; s++) {
    memcpy(rows + (size_t)s * (F + n), feat, F * sizeof(float));
    memcpy(rows + (size_t)s * (F + n) + F, pop + (size_t)s * n, n * sizeof(float));
  }
  dt_tape_reset(t);
  dt_tape_set_param_grads(t, 0);
  dtTensor* e = dt_mlp_forward(t, energy, dt_input2(t, S, F + n, rows, "population"));
  dt_tape_set_param_grads(t, 1);
  if (!e) return dt_tape_status(t);
  memcpy(en, e->val, (size_t)S * sizeof(float));
  return DT_OK;
}

// idx [S] drawn with replacement from softmax(-en) (systematic resampling: one uniform draw)
static void resample(int S, const float* en, dtRng* rng, int* idx, float* w) {
  float lo = en[0];
  for (int s = 1; s < S; s++) lo = fminf(lo, en[s]);
  double total = 0;
  for (int s = 0; s < S; s++) total += (w[s] = expf(lo - en[s]));
  double u = dt_rng_uniform(rng) * total / S, acc = w[0];
  int k = 0;
  for (int s = 0; s < S; s++) {
    double target = u + s * total / S;
    while (acc < target && k < S - 1) acc += w[++k];
    idx[s] = k;
  }
}

static void clip_box(float* x, size_t m) {
  for (size_t i = 0; i < m; i++) x[i] = fminf(fmaxf(x[i], -1.0f), 1.0f);
}

dtStatus dt_ibc_act(dtTape* t, const dtMLP* energy, int F, int n, const float* feat,
                    const float* init, const dtIbcOpts* o, dtRng* rng, float* scratch, int* idx,
                    float* out, float* energy_out) {
  int S = o->samples;
  float* rows = scratch;
  float* pop = rows + (size_t)S * (F + n);
  float* en = pop + (size_t)S * n;
  if (init) {
    for (int s = 0; s < S; s++)
      for (int j = 0; j < n; j++) pop[(size_t)s * n + j] = init[j] + o->init_std * dt_rng_normal(rng);
    if (S > 0) memcpy(pop, init, n * sizeof(float));  // the initial action itself is a member
    clip_box(pop, (size_t)S * n);
  } else {
    dt_rng_fill_uniform(rng, pop, (size_t)S * n, -1.0f, 1.0f);
  }
  float sigma = o->noise;
  dtStatus st = DT_OK;
  for (int it = 0; it < o->iters && !st; it++) {
    if ((st = population_energy(t, energy, S, F, n, feat, pop, rows, en))) break;
    resample(S, en, rng, idx, rows);  // rows as the weights' scratch
    for (int s = 0; s < S; s++) memcpy(rows + (size_t)s * n, pop + (size_t)idx[s] * n, n * sizeof(float));
    for (size_t i = 0; i < (size_t)S * n; i++) pop[i] = rows[i] + sigma * dt_rng_normal(rng);
    clip_box(pop, (size_t)S * n);
    sigma *= o->shrink;
  }
  if (!st) st = population_energy(t, energy, S, F, n, feat, pop, rows, en);
  if (st) return st;
  int best = 0;
  for (int s = 1; s < S; s++)
    if (en[s] < en[best]) best = s;
  memcpy(out, pop + (size_t)best * n, n * sizeof(float));
  if (energy_out) *energy_out = en[best];
  return DT_OK;
}
