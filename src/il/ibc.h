// SPDX-License-Identifier: MIT
// Implicit behaviour cloning (IBC, Florence et al. 2021), library-internal: an energy
// E(x, a) -> scalar (an MLP over [x, a]) trained with InfoNCE against counter-examples drawn
// uniformly from the normalised action box [-1, 1]^n, and acted by derivative-free optimisation
// (sample a population, then repeatedly resample it by softmax(-E) and perturb it with a
// shrinking Gaussian; return the lowest-energy member).
#ifndef DT_IL_IBC_H
#define DT_IL_IBC_H

#include "difftop/nn.h"

// derivative-free optimisation settings
typedef struct dtIbcOpts {
  int samples;   // population size
  int iters;     // resample-and-perturb rounds
  float noise;   // standard deviation of the first round's perturbation
  float shrink;  // factor on the standard deviation after each round
  float init_std;  // with an initial action: population = init + N(0, init_std^2), clipped
} dtIbcOpts;

// Floats of the row buffer dt_ibc_loss needs: B (N + 1) rows of F + n.
size_t dt_ibc_loss_rows(int B, int F, int n, int negatives);

// InfoNCE loss (mean over the batch) on tape t: for each of the B rows, the demonstrated
// action target[b] against `negatives` uniform counter-examples, logits -E([feat[b], a]).
// rows: scratch of dt_ibc_loss_rows floats. NULL on a tape error.
dtTensor* dt_ibc_loss(dtTape* t, const dtMLP* energy, int B, int F, int n, const float* feat,
                      const float* target, int negatives, dtRng* rng, float* rows);

// Floats of the scratch dt_ibc_act needs for a population of S.
size_t dt_ibc_act_scratch(int S, int F, int n);

// One decision by derivative-free optimisation: features feat [F], initial action init [n]
// (NULL: the population starts uniform in [-1, 1]^n); writes out [n] and, when energy_out is
// not NULL, the chosen member's energy. scratch: dt_ibc_act_scratch floats; idx: S ints.
dtStatus dt_ibc_act(dtTape* t, const dtMLP* energy, int F, int n, const float* feat,
                    const float* init, const dtIbcOpts* o, dtRng* rng, float* scratch, int* idx,
                    float* out, float* energy_out);

#endif
