// SPDX-License-Identifier: MIT
// Internal state of the trajectory optimizer, shared by the solvers and the backward.
#ifndef DIFFTOP_TRAJOPT_INTERNAL_H
#define DIFFTOP_TRAJOPT_INTERNAL_H

#include <stdint.h>

#include "difftop/trajopt.h"
#include "tensor/tensor_internal.h"

// One recorded iteration: what the backward needs to differentiate the step a_k -> a_{k+1}.
typedef struct dtStep {
  float* a;         // a_k [B, n]
  float* g;         // dG/da at a_k [B, n]
  float* G;         // G(a_k) [B]
  float* alpha;     // step scale used (PGA: step size; LM: eta) [B]
  uint8_t* pass;    // 1 where the projection let the coordinate through [B, n]
  uint8_t* applied; // 1 where the element took the step [B]
} dtStep;

struct dtTrajopt {
  dtObjective obj;
  dtTrajoptOpts opts;
  int max_batch, n, nx;
  dtTape* tape;
  size_t mark;          // tape position after the prepared part
  size_t mark_pairs;    // ... and after the prepared part of the paired trial rows
  int pair_trials;      // backtracking evaluates two step lengths per pass (small batches)
  dtTensor* c_pairs;    // prepared tensor of the 2B paired trial rows (NULL: not built)
  float* G_pairs;       // G at the paired trials [2B]
  int64_t bytes_per_row;  // tape bytes one batch row takes in a second-order pass

  // the current solve
  int B;
  float* x;             // problem data [B, nx]
  float* a;             // current iterate [B, n]
  float* a_trial;       // line-search trial [B, n]
  float* a_best;        // best iterate [B, n]
  float* G;             // G at a [B]
  float* G_trial;       // G at a_trial [B]
  float* g;             // dG/da at a [B, n]
  float* g_trial;       // dG/da at the line search's first trial [B, n]
  int first_trial_kept; // line search: every element accepted its first trial
  float* err_last;      // E at the previous iterate (LM) [B]
  float* err_best;      // best E (LM) or -G (others) [B]
  float* dir;           // search direction [B, n]
  float* alpha;         // per-element step [B]
  int* status;          // dtSolveStatus [B]
  int* iters;           // iterations per element [B]
  uint8_t* active;      // 1 while the element still iterates [B]
  uint8_t* accepted;    // line search: 1 once the element's trial was accepted [B]
  uint8_t* cg_run;      // Newton-CG: 1 while the element's CG iterates [B]
  uint8_t* low_curv;    // Newton: 1 where the last direction met curvature below the floor [B]
  uint8_t* grad_tried;  // Newton: this iteration's gradient trial: 0 none, 1 rejected, 2 taken [B]
  uint8_t* need;        // Newton: 1 where the iteration needs a Newton direction [B]
  uint8_t* mask;        // free-set flags [B, n]
  uint8_t* init_pass;   // 1 where a_init lay inside the box (the projected solvers clamp it) [B, n]

  // iterates kept for the backward
  dtStep* steps;
  int steps_cap;        // iterations that fit
  int steps_len;        // iterations recorded in the last solve
  size_t history_bytes;

  // Hessians and eigen-solves (Newton and implicit)
  float* hess;          // [B, n, n]
  float* eig_w;         // eigenvalues [n]
  float* eig_work;      // LAPACK workspace
  int eig_lwork;
  int* free_idx;        // free coordinates of one element [n]
  float* sub;           // a |F| x |F| block [n * n]
  float* rhs;           // [n]
  float* x_rep;         // replicated problem data for batched HVPs [max_batch, nx]
  float* a_rep;         // replicated iterates [max_batch, n]
  float* t_rep;         // tangents [max_batch, n]

  // backward scratch
  float* v;             // dL/da at the current step [B, n]
  float* u;             // tangent of the pass [B, n]
  float* seed_dot;      // [B]
  float* xacc;          // dL/dx accumulator [B, nx]
  float* pacc;          // parameter gradient accumulator (all parameters, flattened)
  float* pjunk;         // first-order parameter adjoints of second-order passes (discarded)
  int64_t pcount;       // total parameter scalars
  float** psave_grad;   // parameters' own buffers while a backward borrows them
  float** psave_gdot;
  int* psave_flags;
  dtGradStage stage;    // backward: Linear weight gdot rows, one product per weight at the end
  int implicit_indefinite;
  int solved;           // a solve happened and its history is valid

  dtTrajoptStats stats;
};

// G and dG/da at a for B rows of data x (no parameter gradients); grad may be NULL.
dtStatus dt_trajopt_eval_rows(dtTrajopt* s, int B, const float* x, const float* a, float* G,
                              float* grad);

// Full Hessians d2G/da2 at a [B, n] into s->hess [B, n, n] by batched Hessian-vector products.
dtStatus dt_trajopt_hessian(dtTrajopt* s, int B, const float* x, const float* a);

// Solve (-H_FF + shift) u_F = v_F on the free set of one element with eigenvalues of -H_FF
// raised to at least min_eig; u is zero off F. Returns 1 if -H_FF had an eigenvalue <= 0.
int dt_trajopt_free_solve(dtTrajopt* s, const float* H, const float* v, const uint8_t* free_mask,
                          float min_eig, float* u);

#endif
