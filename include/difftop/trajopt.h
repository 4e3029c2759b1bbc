// SPDX-License-Identifier: MIT
// Differentiable trajectory optimization: batched solvers with box-bounded actions and
// unrolled, truncated and implicit backward modes.
//
// The problem, per batch element b:   maximise G(a; x_b, theta) over a in [lo, hi]^n,
// where x_b is the problem data (a latent start z0, or an observation that an encoder inside
// the objective turns into z0) and theta are the networks' parameters. The objective is built
// on a tape (dtObjective), so its gradient, Hessian-vector products and mixed products with
// respect to theta and x come from the tape's forward-over-reverse derivatives.
#ifndef DIFFTOP_TRAJOPT_H
#define DIFFTOP_TRAJOPT_H

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

//---------------------------------------------------------------------------------------------
// the objective

// An objective G(a; x) on the tape, one value per batch row.
typedef struct dtObjective {
  int n;            // decision variables per element (e.g. H * A)
  int nx;           // problem data per element (0: none)
  void* ctx;        // passed to the callbacks
  // constant part built once per solve from x [B, nx] (e.g. an encoder); NULL: x itself
  dtTensor* (*prepare)(void* ctx, dtTape* t, dtTensor* x);
  // G [B] from decisions a [B, n] and the prepared tensor c
  dtTensor* (*value)(void* ctx, dtTape* t, dtTensor* a, dtTensor* c);
  dtParams* params; // parameters G depends on (gradients accumulate here); may be NULL
} dtObjective;

//---------------------------------------------------------------------------------------------
// the TD-MPC / DiffTOP latent planning objective

// Terminal value of the latent planning objective.
typedef enum dtTerminal {
  DT_TERMINAL_PI = 0,   // gamma^H min(Q1, Q2)(z_H, pi(z_H)) (the official code)
  DT_TERMINAL_ACTION,   // gamma^H min(Q1, Q2)(z_H, a_H), a_H a decision variable (paper eq. 4)
  DT_TERMINAL_NONE      // no terminal value (e.g. imitation objectives)
} dtTerminal;

// Longest planning horizon a latent plan may have.
#define DT_LATENT_MAX_HORIZON 64

// Networks and sizes of  G(a) = sum_t gamma^t R(z_t, clip a_t) + gamma^H V(z_H).
typedef struct dtLatentPlan {
  int horizon;              // H
  int action_dim;           // A
  int latent_dim;           // Z
  float gamma;              // discount
  dtTerminal terminal;
  const dtMLP* encoder;     // x -> z0 inside the objective (NULL: x is z0)
  const dtMLP* dynamics;    // [z, a] -> z'
  const dtMLP* reward;      // [z, a] -> r (NULL: no running reward)
  const dtMLP* q1;          // [z, a] -> Q (NULL with DT_TERMINAL_NONE)
  const dtMLP* q2;          // second Q (NULL: only q1)
  const dtMLP* pi;          // z -> tanh(.) action, for DT_TERMINAL_PI
  float clip_lo, clip_hi;   // actions are clipped to these inside the objective
  int x_dim;                // size of x (observation with an encoder, else Z)
  dtParams* params;         // the set holding all these networks' parameters
  const dtConvNet* conv_encoder;  // pixels: x (images [C, H, W] flattened) -> z0; replaces encoder
} dtLatentPlan;

// Fill obj with the latent planning objective of plan (plan must outlive obj).
DTAPI dtStatus dt_latent_objective(dtObjective* obj, const dtLatentPlan* plan);

// Decision variables of a plan: H * A, plus A with DT_TERMINAL_ACTION.
DTAPI int dt_latent_plan_n(const dtLatentPlan* plan);

// Roll out pi from x with N(0, std^2) noise clipped to +-noise_clip (no gradient): a_init [B, n].
DTAPI dtStatus dt_latent_pi_rollout(const dtLatentPlan* plan, dtTape* t, int B, const float* x,
                                    float std, float noise_clip, dtRng* rng, float* a_init);

// Warm start from a previous plan: out[b] = prev[b] advanced by one step of A actions (n must be a
// multiple of A); the freed last step takes fill[b] ([B, A]) or, when fill is NULL, repeats
// prev's last step. out may equal prev.
DTAPI dtStatus dt_trajopt_shift_start(const float* prev, int B, int n, int A, const float* fill,
                                      float* out);

//---------------------------------------------------------------------------------------------
// solvers and options

// Solvers.
typedef enum dtSolver {
  DT_SOLVER_LM = 0,       // the official DiffTORI step: delta = g r / (lambda + |g|^2), a += eta delta
  DT_SOLVER_PGA,          // projected gradient ascent with a fixed step
  DT_SOLVER_PGA_ARMIJO,   // projected gradient ascent with Armijo backtracking
  DT_SOLVER_NEWTON        // projected Newton: exact Hessian on the free set, eigenvalue-safe,
                          // projected Armijo line search
} dtSolver;

// Backward modes.
typedef enum dtBackward {
  DT_BACKWARD_NONE = 0,   // no gradient through the solver (the w/o-backward ablation)
  DT_BACKWARD_UNROLL,     // through every iteration
  DT_BACKWARD_TRUNCATED,  // through the last k iterations (the official code: k = 5)
  DT_BACKWARD_IMPLICIT    // implicit-function theorem at the returned solution
} dtBackward;

// Per-element outcome of a solve.
typedef enum dtSolveStatus {
  DT_SOLVE_CONVERGED = 0,
  DT_SOLVE_MAX_ITER = 1,
  DT_SOLVE_NONFINITE = 2   // the objective or its gradient was NaN/Inf: the element stopped
} dtSolveStatus;

// Solver settings (an immutable part of the solver once created).
typedef struct dtTrajoptOpts {
  dtSolver solver;
  int max_iters;           // iterations (LM: total, including the backward window)
  float step_size;         // eta (LM, PGA) or the initial step (Armijo)
  float damping;           // lambda (LM)
  float offset;            // C in the LM residual r = C - G (official: 1000)
  float abs_tol;           // convergence: |E| or |dE| below (LM: Theseus's 1e-10)
  float rel_tol;           // convergence: |dE| / E below (LM: Theseus's 1e-8)
  float grad_tol;          // projected-gradient norm below which PGA/Newton stop
  float lo, hi;            // action bounds for the projected solvers (default -1, 1)
  float armijo_c;          // sufficient increase constant (1e-4)
  float armijo_shrink;     // step shrink factor (0.5)
  int armijo_max;          // most backtracking steps (20)
  float newton_min_curv;   // eigenvalues of -H are raised to at least this (1e-4)
  dtBackward backward;
  int backward_iters;      // k for the truncated mode (default 5)
  float implicit_reg;      // implicit: eigenvalues of -H_FF are raised to at least this
  float bound_tol;         // a coordinate within this of a bound counts as active (1e-6)
  int newton_cg;           // newton: 0 builds the full Hessian each iteration; k > 0 solves
                           // the Newton system by k conjugate-gradient steps of Hessian-vector
                           // products instead (stopping at negative curvature)
  int project;             // LM: 1 projects every iterate onto [lo, hi] (the official LM does
                           // not: its iterates may leave the box, where the clipped objective
                           // is flat and gradients vanish); the other solvers always project
  int newton_gradient_first; // newton: 1 (default) tries the projected-gradient step first
                           // (from the end of its arc) while the last iteration met curvature
                           // below newton_min_curv, and builds a Newton direction only when
                           // that trial is rejected; 0: a Newton direction every iteration
} dtTrajoptOpts;

// Defaults of the official planner: LM, 50 iterations, step 1e-3, damping 1e-3, offset 1000,
// truncated backward over 5 iterations.
DTAPI dtTrajoptOpts dt_trajopt_default_opts(void);

// Solver name as text ("lm", "pga", "pga-armijo", "newton"), and parsing; -1 if unknown.
DTAPI const char* dt_solver_name(dtSolver s);
DTAPI int dt_solver_parse(const char* name);

// Backward mode name ("none", "unroll", "truncated", "implicit"), and parsing; -1 if unknown.
DTAPI const char* dt_backward_name(dtBackward b);
DTAPI int dt_backward_parse(const char* name);

//---------------------------------------------------------------------------------------------
// the solver

// A solver bound to an objective with room for max_batch elements: all memory is taken at
// creation, none during solve or backward.
typedef struct dtTrajopt dtTrajopt;

// Statistics of the last solve.
typedef struct dtTrajoptStats {
  int iterations;            // largest iteration count over the batch
  int converged;             // elements that converged
  int nonfinite;             // elements stopped by NaN/Inf
  double solve_ms;           // wall time of the last solve
  double backward_ms;        // wall time of the last backward
  size_t tape_high_water;    // bytes of tape arena used at most
  size_t tape_capacity;      // bytes of tape arena
  size_t history_bytes;      // bytes kept for the backward (iterates of the taped window)
  // passes over the objective by the last solve, each over the whole batch (an implicit
  // backward adds the passes of its Hessian)
  int value_passes;          // G alone (line-search trials)
  int paired_passes;         // G at two step lengths per element (backtracking at B <= 2)
  int gradient_passes;       // G and dG/da
  int hvp_passes;            // Hessian-vector products (Newton; a full Hessian counts its passes)
} dtTrajoptStats;

// Create a solver; tape_bytes = 0 sizes the tape from a trial evaluation at max_batch.
DTAPI dtStatus dt_trajopt_new(const dtObjective* obj, int max_batch, const dtTrajoptOpts* opts,
                              size_t tape_bytes, dtTrajopt** out);

// Free a solver.
DTAPI void dt_trajopt_free(dtTrajopt* s);

// Solve B problems: x [B, nx] data, a_init [B, n] start; writes the final iterate a_final
// [B, n], optionally the best iterate a_best, the objective at the final iterate G [B], and
// per-element status [B]. Keeps what the backward needs.
DTAPI dtStatus dt_trajopt_solve(dtTrajopt* s, int B, const float* x, const float* a_init,
                                float* a_final, float* a_best, float* G, int* status);

// Backward of the last solve: given dL/da_final [B, n], adds dL/dtheta into the objective's
// parameter gradients, writes dL/dx [B, nx] and dL/da_init [B, n] (either may be NULL).
// Elements with a non-finite status contribute nothing.
DTAPI dtStatus dt_trajopt_backward(dtTrajopt* s, const float* dL_da, float* dL_dx,
                                   float* dL_dainit);

// Statistics of the last solve and backward.
DTAPI const dtTrajoptStats* dt_trajopt_stats(const dtTrajopt* s);

// Per-element iteration counts of the last solve [B].
DTAPI const int* dt_trajopt_iterations(const dtTrajopt* s);

// The solver's options.
DTAPI const dtTrajoptOpts* dt_trajopt_opts(const dtTrajopt* s);

// Objective values G [B] and gradients dG/da [B, n] at a (no parameter gradients).
DTAPI dtStatus dt_trajopt_eval(dtTrajopt* s, int B, const float* x, const float* a, float* G,
                               float* grad);

// Flag from the last implicit backward: 1 if some element's Hessian on its free set was not
// negative definite (the returned point is not a strict local maximum), else 0.
DTAPI int dt_trajopt_implicit_indefinite(const dtTrajopt* s);

#ifdef __cplusplus
}
#endif
#endif
