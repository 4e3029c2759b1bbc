// SPDX-License-Identifier: MIT
// Shared pieces of the trajopt tests: a tiny latent plan (encoder inside the objective), an
// optional -kappa |a|^2 term that makes it strictly concave, and central finite differences of
// a WHOLE solve along directions in the parameters, the problem data x and the start a_init.
#ifndef DT_TRAJOPT_FIXTURE_H
#define DT_TRAJOPT_FIXTURE_H

#pragma GCC diagnostic ignored "-Wformat-zero-length"  // CHECK(cond) without a message
#include "test.h"
#include "trajopt/trajopt_internal.h"

enum { FX_Z = 3, FX_A = 2, FX_H = 3, FX_X = 4, FX_HID = 16, FX_N = FX_A * FX_H, FX_BMAX = 8 };

typedef struct Fix {
  dtParams ps;
  dtMLP enc, dyn, rew, q1, q2, pi;
  dtLatentPlan plan;
  dtObjective base;  // the latent objective as the library builds it
  dtObjective obj;   // base - kappa |a|^2 (kappa = 0: base itself)
  float kappa;
} Fix;

static inline dtTensor* fx_prepare(void* ctx, dtTape* t, dtTensor* x) {
  Fix* f = ctx;
  return f->base.prepare(f->base.ctx, t, x);
}

static inline dtTensor* fx_value(void* ctx, dtTape* t, dtTensor* a, dtTensor* c) {
  Fix* f = ctx;
  dtTensor* G = f->base.value(f->base.ctx, t, a, c);
  if (f->kappa == 0.0f) return G;
  return dt_sub(t, G, dt_scale(t, dt_sum(t, dt_square(t, a), 1), f->kappa));
}

// Tiny TD-MPC plan: Z=3, A=2, H=3, an encoder 4->16->3, ELU MLPs of width 16, LN-Tanh twin Q,
// tanh policy for the terminal action; nn.Linear default init (no zeroed last layers, so every
// network contributes). clip: the objective's action clip is [-clip, clip].
// smooth = 1 replaces every ELU by tanh: the solve map is then C-infinity away from the clip and
// the Q1/Q2 min, while with ELU (whose second derivative jumps at 0) it is only piecewise C^1.
static inline void fx_smooth(dtMLPSpec* s, int smooth) {
  for (int i = 0; smooth && i < s->layers; i++)
    if (s->act[i] == DT_ACT_ELU) s->act[i] = DT_ACT_TANH;
}

static inline void fx_init_ex(Fix* f, uint64_t seed, float clip, float kappa, int smooth) {
  memset(f, 0, sizeof *f);
  dtRng r;
  dt_rng_seed(&r, seed);
  dt_params_init(&f->ps);
  dtMLPSpec s;
  s = dt_mlp_spec_elu(FX_X, FX_HID, 1, FX_Z), s.init = DT_INIT_TORCH_DEFAULT, fx_smooth(&s, smooth);
  CHECK_OK(dt_mlp_create(&f->enc, &s, &f->ps, "enc", &r));
  s = dt_mlp_spec_elu(FX_Z + FX_A, FX_HID, 1, FX_Z), s.init = DT_INIT_TORCH_DEFAULT, fx_smooth(&s, smooth);
  CHECK_OK(dt_mlp_create(&f->dyn, &s, &f->ps, "dyn", &r));
  s = dt_mlp_spec_elu(FX_Z + FX_A, FX_HID, 1, 1), s.init = DT_INIT_TORCH_DEFAULT, fx_smooth(&s, smooth);
  CHECK_OK(dt_mlp_create(&f->rew, &s, &f->ps, "rew", &r));
  s = dt_mlp_spec_q(FX_Z + FX_A, FX_HID), s.init = DT_INIT_TORCH_DEFAULT, fx_smooth(&s, smooth);
  CHECK_OK(dt_mlp_create(&f->q1, &s, &f->ps, "q1", &r));
  CHECK_OK(dt_mlp_create(&f->q2, &s, &f->ps, "q2", &r));
  s = dt_mlp_spec_elu(FX_Z, FX_HID, 1, FX_A), s.init = DT_INIT_TORCH_DEFAULT, fx_smooth(&s, smooth);
  CHECK_OK(dt_mlp_create(&f->pi, &s, &f->ps, "pi", &r));
  f->plan = (dtLatentPlan){FX_H, FX_A, FX_Z, 0.99f, DT_TERMINAL_PI, &f->enc, &f->dyn, &f->rew,
                           &f->q1, &f->q2, &f->pi, -clip, clip, FX_X, &f->ps, NULL};
  CHECK_OK(dt_latent_objective(&f->base, &f->plan));
  f->kappa = kappa;
  f->obj = f->base;
  f->obj.ctx = f;
  f->obj.prepare = fx_prepare;
  f->obj.value = fx_value;
}

static inline void fx_init(Fix* f, uint64_t seed, float clip, float kappa) {
  fx_init_ex(f, seed, clip, kappa, 0);
}

static inline void fx_free(Fix* f) { dt_params_free(&f->ps); }

// options for FD-friendly solves: no early stopping (every iteration runs), given solver/mode
static inline dtTrajoptOpts fx_opts(dtSolver solver, dtBackward bw, int iters, float step) {
  dtTrajoptOpts o = dt_trajopt_default_opts();
  o.solver = solver;
  o.backward = bw;
  o.max_iters = iters;
  o.step_size = step;
  o.damping = 0.1f;
  o.offset = 10.0f;
  o.abs_tol = 0.0f;
  o.rel_tol = 0.0f;
  o.grad_tol = 0.0f;
  return o;
}

// directions of differentiation: parameters (flattened over the set), x [B, X], a_init [B, n]
typedef struct Dirs {
  float* p;
  float x[FX_BMAX * FX_X];
  float a[FX_BMAX * FX_N];
} Dirs;

// fill d with N(0,1) in the components selected by mask (1 params, 2 x, 4 a_init), else 0
static inline void fx_dirs(Fix* f, Dirs* d, int B, int mask, uint64_t seed) {
  dtRng r;
  dt_rng_seed(&r, seed);
  int64_t np = dt_params_numel(&f->ps);
  d->p = calloc((size_t)np, sizeof(float));
  memset(d->x, 0, sizeof d->x);
  memset(d->a, 0, sizeof d->a);
  if (mask & 1) dt_rng_fill_normal(&r, d->p, (size_t)np, 0, 1);
  if (mask & 2) dt_rng_fill_normal(&r, d->x, (size_t)B * FX_X, 0, 1);
  if (mask & 4) dt_rng_fill_normal(&r, d->a, (size_t)B * FX_N, 0, 1);
}

// sum over parameters of grad . dir
static inline double fx_pdot(const dtParams* ps, const float* dir) {
  double acc = 0;
  int64_t off = 0;
  for (int i = 0; i < ps->count; i++) {
    const dtTensor* p = ps->items[i];
    for (int64_t k = 0; k < p->size; k++) acc += (double)p->grad[k] * dir[off + k];
    off += p->size;
  }
  return acc;
}

// L = dL . a_final after a solve at (theta + e dp, x + e dx, a0 + e da); parameters restored
static inline double fx_loss_at(dtTrajopt* s, Fix* f, int B, const float* x, const float* a0,
                         const float* dL, const Dirs* d, double e, float* a_out) {
  int n = s->n, nx = s->nx;
  int64_t off = 0;
  float* save = malloc((size_t)dt_params_numel(&f->ps) * sizeof(float));
  for (int i = 0; i < f->ps.count; i++) {
    dtTensor* p = f->ps.items[i];
    memcpy(save + off, p->val, (size_t)p->size * sizeof(float));
    for (int64_t k = 0; k < p->size; k++) p->val[k] += (float)(e * d->p[off + k]);
    off += p->size;
  }
  float xs[FX_BMAX * FX_X], as[FX_BMAX * FX_N], af[FX_BMAX * FX_N];
  for (int i = 0; i < B * nx; i++) xs[i] = (float)(x[i] + e * d->x[i]);
  for (int i = 0; i < B * n; i++) as[i] = (float)(a0[i] + e * d->a[i]);
  CHECK_OK(dt_trajopt_solve(s, B, xs, as, af, NULL, NULL, NULL));
  off = 0;
  for (int i = 0; i < f->ps.count; i++) {
    dtTensor* p = f->ps.items[i];
    memcpy(p->val, save + off, (size_t)p->size * sizeof(float));
    off += p->size;
  }
  free(save);
  double L = 0;
  for (int i = 0; i < B * n; i++) L += (double)dL[i] * af[i];
  if (a_out) memcpy(a_out, af, (size_t)B * n * sizeof(float));
  return L;
}

// central difference of the whole solve along d
static inline double fx_fd(dtTrajopt* s, Fix* f, int B, const float* x, const float* a0,
                    const float* dL, const Dirs* d, double eps) {
  double lp = fx_loss_at(s, f, B, x, a0, dL, d, eps, NULL);
  double lm = fx_loss_at(s, f, B, x, a0, dL, d, -eps, NULL);
  return (lp - lm) / (2 * eps);
}

// analytic directional derivative from one backward: params, x and a_init parts
static inline double fx_backward_dir(dtTrajopt* s, Fix* f, int B, const float* dL, const Dirs* d,
                              float* dx_out, float* da_out) {
  float dx[FX_BMAX * FX_X], da[FX_BMAX * FX_N];
  dt_params_zero_grad(&f->ps);
  CHECK_OK(dt_trajopt_backward(s, dL, dx, da));
  double an = fx_pdot(&f->ps, d->p);
  for (int i = 0; i < B * s->nx; i++) an += (double)dx[i] * d->x[i];
  for (int i = 0; i < B * s->n; i++) an += (double)da[i] * d->a[i];
  if (dx_out) memcpy(dx_out, dx, sizeof(float) * (size_t)B * s->nx);
  if (da_out) memcpy(da_out, da, sizeof(float) * (size_t)B * s->n);
  return an;
}

// every parameter's gradient, flattened over the set, into out
static inline void fx_save_grads(const dtParams* ps, float* out) {
  int64_t off = 0;
  for (int i = 0; i < ps->count; i++) {
    memcpy(out + off, ps->items[i]->grad, (size_t)ps->items[i]->size * sizeof(float));
    off += ps->items[i]->size;
  }
}

// largest |saved - current| over the parameters' gradients, and the largest |saved| and |current|
static inline void fx_grad_diff(const dtParams* ps, const float* saved, double* maxd,
                                double* max_saved, double* max_current) {
  *maxd = *max_saved = *max_current = 0;
  int64_t off = 0;
  for (int i = 0; i < ps->count; i++) {
    const dtTensor* p = ps->items[i];
    for (int64_t k = 0; k < p->size; k++) {
      *maxd = fmax(*maxd, fabs((double)saved[off + k] - p->grad[k]));
      *max_saved = fmax(*max_saved, fabs((double)saved[off + k]));
      *max_current = fmax(*max_current, fabs((double)p->grad[k]));
    }
    off += p->size;
  }
}

static inline int fx_verbose(void) { return getenv("DT_TEST_VERBOSE") != NULL; }

#endif
