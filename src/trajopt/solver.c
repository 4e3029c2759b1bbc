// SPDX-License-Identifier: MIT
// The solvers: creation and memory, objective evaluations, LM, projected gradient ascent
// (fixed and Armijo) and projected Newton.
#include <math.h>
#include <string.h>

#include "trajopt_internal.h"

//---------------------------------------------------------------------------------------------
// options and names

dtTrajoptOpts dt_trajopt_default_opts(void) {
  dtTrajoptOpts o;
  memset(&o, 0, sizeof o);
  o.solver = DT_SOLVER_LM;
  o.max_iters = 50;
  o.step_size = 1e-3f;
  o.damping = 1e-3f;
  o.offset = 1000.0f;
  o.abs_tol = 1e-10f;
  o.rel_tol = 1e-8f;
  o.grad_tol = 1e-4f;
  o.lo = -1.0f;
  o.hi = 1.0f;
  o.armijo_c = 1e-4f;
  o.armijo_shrink = 0.5f;
  o.armijo_max = 20;
  o.newton_min_curv = 1e-4f;
  o.backward = DT_BACKWARD_TRUNCATED;
  o.backward_iters = 5;
  o.implicit_reg = 1e-4f;
  o.bound_tol = 1e-6f;
  o.newton_gradient_first = 1;
  return o;
}

static const char* solver_names[] = {"lm", "pga", "pga-armijo", "newton"};
static const char* backward_names[] = {"none", "unroll", "truncated", "implicit"};

const char* dt_solver_name(dtSolver s) {
  return (int)s >= 0 && (int)s < 4 ? solver_names[s] : "unknown";
}

const char* dt_backward_name(dtBackward b) {
  return (int)b >= 0 && (int)b < 4 ? backward_names[b] : "unknown";
}

int dt_solver_parse(const char* name) {
  for (int i = 0; name && i < 4; i++)
    if (!strcmp(name, solver_names[i])) return i;
  return -1;
}

int dt_backward_parse(const char* name) {
  for (int i = 0; name && i < 4; i++)
    if (!strcmp(name, backward_names[i])) return i;
  return -1;
}

static dtStatus check_opts(const dtTrajoptOpts* o) {
  if ((int)o->solver < 0 || (int)o->solver > DT_SOLVER_NEWTON)
    return dt_error(DT_ERR_ARG, "trajopt: unknown solver %d (lm, pga, pga-armijo, newton)",
                    (int)o->solver);
  if ((int)o->backward < 0 || (int)o->backward > DT_BACKWARD_IMPLICIT)
    return dt_error(DT_ERR_ARG, "trajopt: unknown backward mode %d", (int)o->backward);
  if (o->max_iters < 1) return dt_error(DT_ERR_ARG, "trajopt: max_iters %d < 1", o->max_iters);
  if (!(o->step_size > 0)) return dt_error(DT_ERR_ARG, "trajopt: step_size must be positive");
  if (o->solver == DT_SOLVER_LM && !(o->damping >= 0))
    return dt_error(DT_ERR_ARG, "trajopt: damping must be >= 0");
  if (!(o->lo < o->hi)) return dt_error(DT_ERR_ARG, "trajopt: bounds lo %g >= hi %g",
                                        (double)o->lo, (double)o->hi);
  if (o->backward == DT_BACKWARD_TRUNCATED && o->backward_iters < 1)
    return dt_error(DT_ERR_ARG, "trajopt: truncated backward needs backward_iters >= 1");
  if (o->solver == DT_SOLVER_NEWTON &&
      (o->backward == DT_BACKWARD_UNROLL || o->backward == DT_BACKWARD_TRUNCATED))
    return dt_error(DT_ERR_UNSUPPORTED, "trajopt: the newton solver differentiates only "
                    "with backward 'implicit' or 'none' (unrolling a Newton step needs third "
                    "derivatives); use lm or pga to unroll");
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// creation

static int needs_hessian(const dtTrajoptOpts* o) {
  return (o->solver == DT_SOLVER_NEWTON && o->newton_cg <= 0) ||
         o->backward == DT_BACKWARD_IMPLICIT;
}

// backtracking evaluates two step lengths per pass where a batch is small: the weights are
// read once for two rows (a weight-bound pass), so two trials cost about 1.2 of one
static int pairs_trials(const dtTrajoptOpts* o, int max_batch) {
  return (o->solver == DT_SOLVER_NEWTON || o->solver == DT_SOLVER_PGA_ARMIJO) && max_batch <= 2;
}

// rows a pass may carry: the batch, n Hessian columns, or two trials per element
static int replica_rows(const dtTrajoptOpts* o, int n, int max_batch) {
  int rows = max_batch;
  if (needs_hessian(o) && rows < n) rows = n;
  if (pairs_trials(o, max_batch) && rows < 2 * max_batch) rows = 2 * max_batch;
  return rows;
}

// tape bytes of one second-order pass over `rows` rows (prepare + value + backward)
static dtStatus trial_pass(const dtObjective* obj, int rows, size_t* bytes) {
  dtTapeOpts to = dt_tape_default_opts();
  to.arena_bytes = (size_t)1 << 30;  // untouched pages cost nothing
  dtTape* t = dt_tape_new(&to);
  if (!t) return dt_last_status();
  dtTensor* x = obj->nx ? dt_input2(t, rows, obj->nx, NULL, "x") : NULL;
  if (x) dt_requires_grad(t, x);
  dtTensor* c = obj->prepare ? obj->prepare(obj->ctx, t, x) : x;
  dtTensor* a = dt_input2(t, rows, obj->n, NULL, "a");
  dt_requires_grad(t, a);
  dt_set_tangent(t, a, NULL);
  dtTensor* G = obj->value(obj->ctx, t, a, c);
  dt_backward_ex(t, G, NULL, NULL);
  dtStatus st = dt_tape_status(t);
  if (st) dt_error(st, "trajopt: the objective failed on a trial evaluation: %s", dt_tape_error(t));
  dt_tape_memory(t, NULL, bytes, NULL);
  dt_tape_free(t);
  return st;
}

// every buffer the solver will use, from one block list (freed in dt_trajopt_free)
static dtStatus alloc_buffers(dtTrajopt* s) {
  int Bm = s->max_batch, n = s->n, nx = s->nx > 0 ? s->nx : 1;
  float** fbufs[] = {&s->x, &s->a, &s->a_trial, &s->a_best, &s->g, &s->g_trial, &s->dir, &s->v,
                     &s->u, &s->xacc};
  size_t fsizes[] = {(size_t)Bm * nx, (size_t)Bm * n, (size_t)Bm * n, (size_t)Bm * n,
                     (size_t)Bm * n,  (size_t)Bm * n, (size_t)Bm * n, (size_t)Bm * n,
                     (size_t)Bm * n,  (size_t)Bm * nx};
  for (size_t i = 0; i < sizeof fsizes / sizeof fsizes[0]; i++)
    if (!(*fbufs[i] = dt_calloc(fsizes[i], sizeof(float)))) return DT_ERR_NOMEM;
  float** vbufs[] = {&s->G, &s->G_trial, &s->err_last, &s->err_best, &s->alpha, &s->seed_dot};
  for (size_t i = 0; i < sizeof vbufs / sizeof vbufs[0]; i++)
    if (!(*vbufs[i] = dt_calloc((size_t)Bm, sizeof(float)))) return DT_ERR_NOMEM;
  s->status = dt_calloc((size_t)Bm, sizeof(int));
  s->iters = dt_calloc((size_t)Bm, sizeof(int));
  s->active = dt_calloc((size_t)Bm, 1);
  s->accepted = dt_calloc((size_t)Bm, 1);
  s->cg_run = dt_calloc((size_t)Bm, 1);
  s->low_curv = dt_calloc((size_t)Bm, 1);
  s->grad_tried = dt_calloc((size_t)Bm, 1);
  s->need = dt_calloc((size_t)Bm, 1);
  if (!s->cg_run || !s->low_curv || !s->grad_tried || !s->need) return DT_ERR_NOMEM;
  s->mask = dt_calloc((size_t)Bm * n, 1);
  s->init_pass = dt_calloc((size_t)Bm * n, 1);
  if (!s->status || !s->iters || !s->active || !s->accepted || !s->mask || !s->init_pass)
    return DT_ERR_NOMEM;

  // iterate history for unrolled and truncated backward
  const dtTrajoptOpts* o = &s->opts;
  s->steps_cap = o->backward == DT_BACKWARD_UNROLL      ? o->max_iters
                 : o->backward == DT_BACKWARD_TRUNCATED ? o->backward_iters
                                                        : 0;
  if (s->steps_cap) {
    s->steps = dt_calloc((size_t)s->steps_cap, sizeof(dtStep));
    if (!s->steps) return DT_ERR_NOMEM;
    for (int k = 0; k < s->steps_cap; k++) {
      dtStep* st = &s->steps[k];
      st->a = dt_malloc((size_t)Bm * n * sizeof(float));
      st->g = dt_malloc((size_t)Bm * n * sizeof(float));
      st->G = dt_malloc((size_t)Bm * sizeof(float));
      st->alpha = dt_malloc((size_t)Bm * sizeof(float));
      st->pass = dt_malloc((size_t)Bm * n);
      st->applied = dt_malloc((size_t)Bm);
      if (!st->a || !st->g || !st->G || !st->alpha || !st->pass || !st->applied)
        return DT_ERR_NOMEM;
    }
    s->history_bytes = (size_t)s->steps_cap * Bm * (2 * n * sizeof(float) + 2 * sizeof(float) +
                                                    (size_t)n + 1);
  }

  // Hessians and eigen-solves
  if (needs_hessian(o)) {
    s->hess = dt_malloc((size_t)Bm * n * n * sizeof(float));
    s->eig_w = dt_malloc((size_t)n * sizeof(float));
    s->eig_lwork = 3 * n * n + 64;
    s->eig_work = dt_malloc((size_t)s->eig_lwork * sizeof(float));
    s->free_idx = dt_malloc((size_t)n * sizeof(int));
    s->sub = dt_malloc((size_t)n * n * sizeof(float));
    s->rhs = dt_malloc((size_t)n * sizeof(float));
    if (!s->hess || !s->eig_w || !s->eig_work || !s->free_idx || !s->sub || !s->rhs)
      return DT_ERR_NOMEM;
  }
  // replicated rows for batched Hessian-vector products and backward passes
  int rows = replica_rows(o, n, s->max_batch);
  s->pair_trials = pairs_trials(o, s->max_batch);
  if (s->pair_trials && !(s->G_pairs = dt_calloc((size_t)rows, sizeof(float)))) return DT_ERR_NOMEM;
  s->x_rep = dt_malloc((size_t)rows * nx * sizeof(float));
  s->a_rep = dt_malloc((size_t)rows * n * sizeof(float));
  s->t_rep = dt_malloc((size_t)rows * n * sizeof(float));
  if (!s->x_rep || !s->a_rep || !s->t_rep) return DT_ERR_NOMEM;

  // parameter gradient scratch
  s->pcount = s->obj.params ? dt_params_numel(s->obj.params) : 0;
  if (s->pcount) {
    int np = s->obj.params->count;
    s->pacc = dt_calloc((size_t)s->pcount, sizeof(float));
    s->pjunk = dt_calloc((size_t)s->pcount, sizeof(float));
    s->psave_grad = dt_calloc((size_t)np, sizeof(float*));
    s->psave_gdot = dt_calloc((size_t)np, sizeof(float*));
    s->psave_flags = dt_calloc((size_t)np, sizeof(int));
    if (!s->pacc || !s->pjunk || !s->psave_grad || !s->psave_gdot || !s->psave_flags)
      return DT_ERR_NOMEM;
    // a backward through k steps at B = 1 keeps 2 rows per use and step (H uses per pass for
    // the dynamics): 64 rows hold the official k = 5, H = 5 window
    if (o->backward != DT_BACKWARD_NONE && dt_grad_stage_init(&s->stage, s->obj.params, 64))
      return DT_ERR_NOMEM;
  }
  return DT_OK;
}

dtStatus dt_trajopt_new(const dtObjective* obj, int max_batch, const dtTrajoptOpts* opts,
                        size_t tape_bytes, dtTrajopt** out) {
  if (!out) return dt_error(DT_ERR_ARG, "dt_trajopt_new: out is NULL");
  *out = NULL;
  if (!obj || !obj->value || obj->n < 1 || obj->nx < 0)
    return dt_error(DT_ERR_ARG, "dt_trajopt_new: objective is NULL or has no value function");
  if (max_batch < 1) return dt_error(DT_ERR_ARG, "dt_trajopt_new: max_batch %d < 1", max_batch);
  dtTrajoptOpts o = opts ? *opts : dt_trajopt_default_opts();
  dtStatus st = check_opts(&o);
  if (st) return st;

  dtTrajopt* s = dt_calloc(1, sizeof *s);
  if (!s) return DT_ERR_NOMEM;
  s->obj = *obj;
  s->opts = o;
  s->max_batch = max_batch;
  s->n = obj->n;
  s->nx = obj->nx;
  if ((st = alloc_buffers(s))) goto fail;

  // size the tape from trial passes over 1 and 2 rows: fixed part + per-row part
  if (!tape_bytes) {
    size_t b1 = 0, b2 = 0;
    if ((st = trial_pass(obj, 1, &b1)) || (st = trial_pass(obj, 2, &b2))) goto fail;
    size_t per_row = b2 > b1 ? b2 - b1 : b1;
    size_t fixed = b1 > per_row ? b1 - per_row : 0;
    int rows = replica_rows(&o, s->n, max_batch);
    tape_bytes = (size_t)((double)(fixed + per_row * (size_t)rows) * 1.25) + (1u << 20);
    s->bytes_per_row = (int64_t)per_row;
  } else {
    s->bytes_per_row = 0;
  }
  dtTapeOpts to = dt_tape_default_opts();
  to.arena_bytes = tape_bytes;
  s->tape = dt_tape_new(&to);
  if (!s->tape) {
    st = dt_last_status();
    goto fail;
  }
  s->stats.tape_capacity = tape_bytes;
  s->stats.history_bytes = s->history_bytes;
  *out = s;
  return DT_OK;
fail:
  dt_trajopt_free(s);
  return st ? st : DT_ERR_NOMEM;
}

void dt_trajopt_free(dtTrajopt* s) {
  if (!s) return;
  dt_tape_free(s->tape);
  void* bufs[] = {s->x,       s->a,      s->a_trial, s->a_best,  s->G,      s->G_trial,
                  s->g,       s->g_trial, s->err_last, s->err_best, s->dir, s->alpha, s->status,
                  s->iters,   s->active, s->accepted, s->hess,  s->eig_w,  s->eig_work,
                  s->free_idx, s->sub,   s->rhs,     s->x_rep,  s->a_rep,  s->t_rep,
                  s->v,       s->u,      s->seed_dot, s->xacc,  s->pacc,   s->pjunk,
                  s->mask,    s->init_pass, s->G_pairs, s->cg_run, s->low_curv, s->grad_tried,
                  s->need,    s->psave_grad, s->psave_gdot, s->psave_flags};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) dt_free(bufs[i]);
  for (int k = 0; s->steps && k < s->steps_cap; k++) {
    dt_free(s->steps[k].a), dt_free(s->steps[k].g), dt_free(s->steps[k].G);
    dt_free(s->steps[k].alpha), dt_free(s->steps[k].pass), dt_free(s->steps[k].applied);
  }
  dt_free(s->steps);
  dt_grad_stage_free(&s->stage);
  dt_free(s);
}

const dtTrajoptStats* dt_trajopt_stats(const dtTrajopt* s) { return s ? &s->stats : NULL; }
const int* dt_trajopt_iterations(const dtTrajopt* s) { return s ? s->iters : NULL; }
const dtTrajoptOpts* dt_trajopt_opts(const dtTrajopt* s) { return s ? &s->opts : NULL; }
int dt_trajopt_implicit_indefinite(const dtTrajopt* s) { return s ? s->implicit_indefinite : 0; }

//---------------------------------------------------------------------------------------------
// evaluations

// build the constant part for B rows of data x; later evaluations rewind to the mark after it
static dtStatus prepare(dtTrajopt* s, int B, const float* x, dtTensor** c) {
  dtTape* t = s->tape;
  dt_tape_reset(t);
  dt_tape_set_param_grads(t, 0);
  dtTensor* xt = s->nx ? dt_input2(t, B, s->nx, x, "x") : NULL;
  *c = s->obj.prepare ? s->obj.prepare(s->obj.ctx, t, xt) : xt;
  s->mark = dt_tape_mark(t);
  s->c_pairs = NULL;
  dtStatus st = dt_tape_status(t);
  if (st) return dt_error(st, "trajopt: objective preparation failed: %s", dt_tape_error(t));
  return DT_OK;
}

// G (and dG/da when grad != NULL) at a, after prepare()
static dtStatus eval_prepared(dtTrajopt* s, int B, dtTensor* c, const float* a, float* G,
                              float* grad) {
  dtTape* t = s->tape;
  dt_tape_rewind(t, s->mark);
  s->c_pairs = NULL;  // the paired rows' prepared part lay beyond the mark
  if (grad) {
    s->stats.gradient_passes++;
  } else {
    s->stats.value_passes++;
  }
  dtTensor* at = dt_input2(t, B, s->n, a, "a");
  if (grad) dt_requires_grad(t, at);
  dtTensor* Gt = s->obj.value(s->obj.ctx, t, at, c);
  if (Gt && (Gt->size != B))
    return dt_error(DT_ERR_SHAPE, "trajopt: the objective returned %lld values for %d rows",
                    (long long)Gt->size, B);
  if (grad && Gt) dt_backward(t, Gt, NULL);
  dtStatus st = dt_tape_status(t);
  if (st) return dt_error(st, "trajopt: objective evaluation failed: %s", dt_tape_error(t));
  memcpy(G, Gt->val, (size_t)B * sizeof(float));
  if (grad) {
    if (at->grad) {
      memcpy(grad, at->grad, (size_t)B * s->n * sizeof(float));
    } else {
      memset(grad, 0, (size_t)B * s->n * sizeof(float));  // G does not depend on a
    }
  }
  return DT_OK;
}

dtStatus dt_trajopt_eval_rows(dtTrajopt* s, int B, const float* x, const float* a, float* G,
                              float* grad) {
  dtTensor* c = NULL;
  dtStatus st = prepare(s, B, x, &c);
  return st ? st : eval_prepared(s, B, c, a, G, grad);
}

dtStatus dt_trajopt_eval(dtTrajopt* s, int B, const float* x, const float* a, float* G,
                         float* grad) {
  if (!s || !a || !G || (s->nx && !x))
    return dt_error(DT_ERR_ARG, "dt_trajopt_eval: NULL argument");
  if (B < 1 || B > s->max_batch)
    return dt_error(DT_ERR_ARG, "dt_trajopt_eval: batch %d outside [1, %d]", B, s->max_batch);
  return dt_trajopt_eval_rows(s, B, x, a, G, grad);
}

dtStatus dt_trajopt_hessian(dtTrajopt* s, int B, const float* x, const float* a) {
  int n = s->n, nx = s->nx;
  int rows_cap = s->max_batch > n ? s->max_batch : n;
  int m = rows_cap / B;  // Hessian columns per pass
  if (m < 1) m = 1;
  if (m > n) m = n;
  dtTape* t = s->tape;
  for (int j0 = 0; j0 < n; j0 += m) {
    int mj = j0 + m <= n ? m : n - j0, R = B * mj;
    // rows r = b * mj + jj carry element b with tangent e_{j0 + jj}
    memset(s->t_rep, 0, (size_t)R * n * sizeof(float));
    for (int b = 0; b < B; b++) {
      for (int jj = 0; jj < mj; jj++) {
        int r = b * mj + jj;
        if (nx) memcpy(s->x_rep + (size_t)r * nx, x + (size_t)b * nx, (size_t)nx * sizeof(float));
        memcpy(s->a_rep + (size_t)r * n, a + (size_t)b * n, (size_t)n * sizeof(float));
        s->t_rep[(size_t)r * n + j0 + jj] = 1.0f;
      }
    }
    dt_tape_reset(t);
    dt_tape_set_param_grads(t, 0);
    s->stats.hvp_passes++;
    dtTensor* xt = nx ? dt_input2(t, R, nx, s->x_rep, "x") : NULL;
    dtTensor* c = s->obj.prepare ? s->obj.prepare(s->obj.ctx, t, xt) : xt;
    dtTensor* at = dt_input2(t, R, n, s->a_rep, "a");
    dt_requires_grad(t, at);
    dt_set_tangent(t, at, s->t_rep);
    dtTensor* Gt = s->obj.value(s->obj.ctx, t, at, c);
    dt_backward(t, Gt, NULL);
    dtStatus st = dt_tape_status(t);
    if (st) return dt_error(st, "trajopt: Hessian pass failed: %s", dt_tape_error(t));
    for (int b = 0; b < B; b++) {
      float* H = s->hess + (size_t)b * n * n;
      for (int jj = 0; jj < mj; jj++) {
        const float* col = at->gdot ? at->gdot + (size_t)(b * mj + jj) * n : NULL;
        for (int i = 0; i < n; i++) H[(size_t)i * n + j0 + jj] = col ? col[i] : 0.0f;
      }
    }
  }
  // symmetrise away float round-off
  for (int b = 0; b < B; b++) {
    float* H = s->hess + (size_t)b * n * n;
    for (int i = 0; i < n; i++)
      for (int j = i + 1; j < n; j++) {
        float m2 = 0.5f * (H[(size_t)i * n + j] + H[(size_t)j * n + i]);
        H[(size_t)i * n + j] = H[(size_t)j * n + i] = m2;
      }
  }
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// helpers shared by the solvers

static int row_finite(const float* v, int n) {
  for (int i = 0; i < n; i++)
    if (!isfinite(v[i])) return 0;
  return 1;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

// mark elements whose G or gradient is not finite; restore their last finite iterate
static void check_finite(dtTrajopt* s, int B, const float* a_prev) {
  int n = s->n;
  for (int b = 0; b < B; b++) {
    if (!s->active[b]) continue;
    if (isfinite(s->G[b]) && row_finite(s->g + (size_t)b * n, n)) continue;
    s->active[b] = 0;
    s->status[b] = DT_SOLVE_NONFINITE;
    if (a_prev) memcpy(s->a + (size_t)b * n, a_prev + (size_t)b * n, (size_t)n * sizeof(float));
  }
}

static int any_active(const dtTrajopt* s, int B) {
  for (int b = 0; b < B; b++)
    if (s->active[b]) return 1;
  return 0;
}

// start a history record of the step about to be taken from s->a
static dtStep* record(dtTrajopt* s, int B) {
  if (!s->steps_cap) return NULL;
  dtStep* st;
  if (s->steps_len < s->steps_cap) {
    st = &s->steps[s->steps_len++];
  } else {
    // keep the last steps_cap steps: rotate the oldest record to the end
    dtStep oldest = s->steps[0];
    memmove(s->steps, s->steps + 1, (size_t)(s->steps_cap - 1) * sizeof(dtStep));
    s->steps[s->steps_cap - 1] = oldest;
    st = &s->steps[s->steps_cap - 1];
  }
  size_t bn = (size_t)B * s->n;
  memcpy(st->a, s->a, bn * sizeof(float));
  memcpy(st->g, s->g, bn * sizeof(float));
  memcpy(st->G, s->G, (size_t)B * sizeof(float));
  memset(st->pass, 1, bn);
  for (int b = 0; b < B; b++) {
    st->applied[b] = s->active[b];
    st->alpha[b] = 0.0f;
  }
  return st;
}

//---------------------------------------------------------------------------------------------
// Levenberg-Marquardt as the official code runs it (Theseus, one scalar residual):
// r = C - G, delta = g r / (lambda + |g|^2), a += eta delta; convergence on E = r^2 / 2

static float lm_err(const dtTrajopt* s, float G) {
  float r = s->opts.offset - G;
  return 0.5f * r * r;
}

// one phase of LM iterations with a fresh convergence state (Theseus's _optimize_loop)
static dtStatus lm_phase(dtTrajopt* s, int B, dtTensor* c, int iters, int recording,
                         int* total) {
  const dtTrajoptOpts* o = &s->opts;
  int n = s->n;
  for (int b = 0; b < B; b++) {
    s->active[b] = s->status[b] != DT_SOLVE_NONFINITE;
    if (s->active[b]) s->status[b] = DT_SOLVE_MAX_ITER;
    s->err_last[b] = lm_err(s, s->G[b]);
  }
  for (int it = 0; it < iters && any_active(s, B); it++) {
    dtStep* rec = recording ? record(s, B) : NULL;
    memcpy(s->a_trial, s->a, (size_t)B * n * sizeof(float));  // previous iterate
    for (int b = 0; b < B; b++) {
      if (!s->active[b]) continue;
      float* a = s->a + (size_t)b * n;
      const float* g = s->g + (size_t)b * n;
      double gg = 0;
      for (int i = 0; i < n; i++) gg += (double)g[i] * g[i];
      float scale = (float)((o->offset - s->G[b]) / (o->damping + gg)) * o->step_size;
      for (int i = 0; i < n; i++) a[i] += scale * g[i];
      if (o->project) {
        // clamp to the box; the backward stops the coordinates the clamp held
        uint8_t* pass = rec ? rec->pass + (size_t)b * n : NULL;
        for (int i = 0; i < n; i++) {
          float p = clampf(a[i], o->lo, o->hi);
          if (pass) pass[i] = p == a[i];
          a[i] = p;
        }
      }
      if (rec) rec->alpha[b] = o->step_size;
      s->iters[b]++;
    }
    dtStatus st = eval_prepared(s, B, c, s->a, s->G, s->g);
    if (st) return st;
    check_finite(s, B, s->a_trial);
    (*total)++;
    // convergence per element, as Theseus: |dE| < abs or |dE| / E_prev < rel
    double mean_abs = 0;
    for (int b = 0; b < B; b++) mean_abs += fabs(lm_err(s, s->G[b])) / B;
    for (int b = 0; b < B; b++) {
      if (!s->active[b]) continue;
      float e = lm_err(s, s->G[b]);
      float de = fabsf(s->err_last[b] - e);
      if (mean_abs < o->abs_tol || de < o->abs_tol || de / s->err_last[b] < o->rel_tol) {
        s->active[b] = 0;
        s->status[b] = DT_SOLVE_CONVERGED;
      }
      s->err_last[b] = e;
      if (e < s->err_best[b]) {
        s->err_best[b] = e;
        memcpy(s->a_best + (size_t)b * n, s->a + (size_t)b * n, (size_t)n * sizeof(float));
      }
    }
  }
  return DT_OK;
}

static dtStatus solve_lm(dtTrajopt* s, int B, dtTensor* c) {
  const dtTrajoptOpts* o = &s->opts;
  for (int b = 0; b < B; b++) s->err_best[b] = lm_err(s, s->G[b]);
  int total = 0;
  dtStatus st;
  if (o->backward == DT_BACKWARD_TRUNCATED) {
    // untaped iterations, then the taped window with a fresh convergence state
    int k = o->backward_iters < o->max_iters ? o->backward_iters : o->max_iters;
    if ((st = lm_phase(s, B, c, o->max_iters - k, 0, &total))) return st;
    return lm_phase(s, B, c, k, 1, &total);
  }
  return lm_phase(s, B, c, o->max_iters, o->backward == DT_BACKWARD_UNROLL, &total);
}

//---------------------------------------------------------------------------------------------
// projected gradient ascent: a <- P(a + alpha g); Armijo: backtrack until
// G(a') >= G(a) + c g.(a' - a)

static void project_step(const dtTrajopt* s, const float* a, const float* d, float alpha,
                         float* out, uint8_t* pass) {
  for (int i = 0; i < s->n; i++) {
    float v = a[i] + alpha * d[i];
    float p = clampf(v, s->opts.lo, s->opts.hi);
    out[i] = p;
    if (pass) pass[i] = p == v;
  }
}

// the step length beyond which P(a + alpha d) no longer moves: every coordinate with d_i != 0
// has reached its bound (infinity when some coordinate moves without bound or d = 0)
static float arc_end(const dtTrajopt* s, const float* a, const float* d) {
  float end = 0.0f;
  for (int i = 0; i < s->n; i++) {
    if (d[i] == 0.0f) continue;
    float room = d[i] > 0 ? s->opts.hi - a[i] : s->opts.lo - a[i];
    float t = room / d[i];
    if (!(t < INFINITY)) return INFINITY;
    if (t > end) end = t;
  }
  return end > 0.0f ? end : INFINITY;
}

// G at the 2B rows of a_rep (rows 2b, 2b + 1 belong to element b), after prepare(): the paired
// rows' prepared part is built once per prepare, the first time it is needed
static dtStatus eval_pairs(dtTrajopt* s, int B) {
  dtTape* t = s->tape;
  int R = 2 * B, nx = s->nx;
  if (!s->c_pairs) {
    dt_tape_rewind(t, s->mark);
    for (int j = 0; j < R && nx; j++)
      memcpy(s->x_rep + (size_t)j * nx, s->x + (size_t)(j / 2) * nx, (size_t)nx * sizeof(float));
    dtTensor* xt = nx ? dt_input2(t, R, nx, s->x_rep, "x") : NULL;
    s->c_pairs = s->obj.prepare ? s->obj.prepare(s->obj.ctx, t, xt) : xt;
    s->mark_pairs = dt_tape_mark(t);
  }
  dt_tape_rewind(t, s->mark_pairs);
  s->stats.paired_passes++;
  dtTensor* at = dt_input2(t, R, s->n, s->a_rep, "a");
  dtTensor* Gt = s->obj.value(s->obj.ctx, t, at, s->c_pairs);
  dtStatus st = dt_tape_status(t);
  if (st) return dt_error(st, "trajopt: objective evaluation failed: %s", dt_tape_error(t));
  memcpy(s->G_pairs, Gt->val, (size_t)R * sizeof(float));
  return DT_OK;
}

// the Armijo test of element b's trial at (at, G_trial)
static int armijo_holds(const dtTrajopt* s, int b, const float* at, float G_trial) {
  const float* a = s->a + (size_t)b * s->n;
  const float* g = s->g + (size_t)b * s->n;
  double gain = 0;
  for (int i = 0; i < s->n; i++) gain += (double)g[i] * (at[i] - a[i]);
  return isfinite(G_trial) && G_trial >= s->G[b] + s->opts.armijo_c * gain;
}

// backtracking after a rejected first trial, two step lengths per pass (alpha and
// alpha * shrink): the accepted length is the one one-at-a-time backtracking would accept
static dtStatus backtrack_in_pairs(dtTrajopt* s, int B, const float* d) {
  const dtTrajoptOpts* o = &s->opts;
  int n = s->n;
  for (int ls = 1; ls <= o->armijo_max; ls += 2) {
    int pending = 0;
    for (int b = 0; b < B; b++) {
      const float* a = s->a + (size_t)b * n;
      float *r0 = s->a_rep + 2 * (size_t)b * n, *r1 = r0 + n;
      if (s->accepted[b]) {
        memcpy(r0, a, (size_t)n * sizeof(float));
        memcpy(r1, a, (size_t)n * sizeof(float));
        continue;
      }
      pending = 1;
      project_step(s, a, d + (size_t)b * n, s->alpha[b], r0, NULL);
      project_step(s, a, d + (size_t)b * n, s->alpha[b] * o->armijo_shrink, r1, NULL);
    }
    if (!pending) break;
    dtStatus st = eval_pairs(s, B);
    if (st) return st;
    for (int b = 0; b < B; b++) {
      if (s->accepted[b]) continue;
      const float* r0 = s->a_rep + 2 * (size_t)b * n;
      if (armijo_holds(s, b, r0, s->G_pairs[2 * b])) {
        s->accepted[b] = 1;
      } else if (ls + 1 <= o->armijo_max && armijo_holds(s, b, r0 + n, s->G_pairs[2 * b + 1])) {
        s->alpha[b] *= o->armijo_shrink;
        s->accepted[b] = 1;
      } else {
        s->alpha[b] *= o->armijo_shrink * o->armijo_shrink;
      }
    }
  }
  return DT_OK;
}

// start a backtracking line search along the projection arc P(a + alpha d), batched over
// elements: those in `which` (NULL: every active element) search from alpha0 or just past the
// arc's end, whichever is shorter (the same point: a long step, e.g. along negative curvature,
// would otherwise re-evaluate the box corner while it backtracks); the others count as
// accepted and keep their alpha. Just past: every moving coordinate then lies strictly beyond
// its bound, so the projection holds it there as it would at alpha0 (the unrolled backward
// sees it as clamped).
static void line_search_start(dtTrajopt* s, int B, const float* d, float alpha0,
                              const uint8_t* which) {
  for (int b = 0; b < B; b++) {
    s->accepted[b] = !s->active[b] || (which && !which[b]);
    if (s->accepted[b]) continue;
    float end = 1.001f * arc_end(s, s->a + (size_t)b * s->n, d + (size_t)b * s->n);
    s->alpha[b] = alpha0 < end ? alpha0 : end;
  }
}

// how far a started line search runs
typedef enum LineSearchRun {
  LS_FULL,        // trials until every element accepted or armijo_max backtracks
  LS_FIRST_ONLY,  // the first trial alone (rejected elements keep a shrunk alpha)
  LS_BACKTRACK    // the first trial was rejected already: backtracking only
} LineSearchRun;

// run a started line search; the first trial also takes the gradient: when every element
// accepts it, the solver's next iterate is that point and needs no evaluation of its own
static dtStatus line_search_run(dtTrajopt* s, int B, dtTensor* c, const float* d,
                                LineSearchRun mode) {
  const dtTrajoptOpts* o = &s->opts;
  int n = s->n;
  s->first_trial_kept = 0;
  if (mode == LS_BACKTRACK && s->pair_trials) return backtrack_in_pairs(s, B, d);
  for (int ls = mode == LS_BACKTRACK; ls <= o->armijo_max; ls++) {
    for (int b = 0; b < B; b++) {
      const float* a = s->a + (size_t)b * n;
      float* at = s->a_trial + (size_t)b * n;
      if (s->accepted[b]) {
        memcpy(at, a, (size_t)n * sizeof(float));
      } else {
        project_step(s, a, d + (size_t)b * n, s->alpha[b], at, NULL);
      }
    }
    dtStatus st = eval_prepared(s, B, c, s->a_trial, s->G_trial, ls == 0 ? s->g_trial : NULL);
    if (st) return st;
    int pending = 0;
    for (int b = 0; b < B; b++) {
      if (s->accepted[b]) continue;
      if (armijo_holds(s, b, s->a_trial + (size_t)b * n, s->G_trial[b])) {
        s->accepted[b] = 1;
      } else {
        s->alpha[b] *= o->armijo_shrink;
        pending = 1;
      }
    }
    if (!pending) {
      s->first_trial_kept = ls == 0;
      break;
    }
    if (mode == LS_FIRST_ONLY) break;
    if (s->pair_trials) return backtrack_in_pairs(s, B, d);
  }
  return DT_OK;
}

// a whole line search along d for every active element, from alpha0
static dtStatus line_search(dtTrajopt* s, int B, dtTensor* c, const float* d, float alpha0) {
  line_search_start(s, B, d, alpha0, NULL);
  return line_search_run(s, B, c, d, LS_FULL);
}

// G and dG/da at the new iterates (G_prev, when given, receives the previous G): taken from the
// line search's first trial when every element accepted it (the same points), else evaluated
static dtStatus eval_new_iterates(dtTrajopt* s, int B, dtTensor* c, float* G_prev) {
  if (s->first_trial_kept) {
    for (int b = 0; b < B; b++) {
      float G_new = s->G_trial[b];  // G_prev may be G_trial itself
      if (G_prev) G_prev[b] = s->G[b];
      s->G[b] = G_new;
    }
    memcpy(s->g, s->g_trial, (size_t)B * s->n * sizeof(float));
    return DT_OK;
  }
  if (G_prev) memcpy(G_prev, s->G, (size_t)B * sizeof(float));
  return eval_prepared(s, B, c, s->a, s->G, s->g);
}

// projected-gradient norm |P(a + g) - a| (the first-order optimality measure on a box)
static float proj_grad_norm(const dtTrajopt* s, const float* a, const float* g) {
  double acc = 0;
  for (int i = 0; i < s->n; i++) {
    float d = clampf(a[i] + g[i], s->opts.lo, s->opts.hi) - a[i];
    acc += (double)d * d;
  }
  return (float)sqrt(acc);
}

// start a projected solve: every finite element iterates, the best so far is the start
static void start_projected(dtTrajopt* s, int B) {
  for (int b = 0; b < B; b++) {
    s->active[b] = s->status[b] != DT_SOLVE_NONFINITE;
    if (s->active[b]) s->status[b] = DT_SOLVE_MAX_ITER;
    s->err_best[b] = -s->G[b];
  }
}

// stop the elements whose projected gradient vanished; 1 while some element still iterates
static int check_projected_convergence(dtTrajopt* s, int B) {
  for (int b = 0; b < B; b++) {
    const float* a = s->a + (size_t)b * s->n;
    if (s->active[b] && proj_grad_norm(s, a, s->g + (size_t)b * s->n) < s->opts.grad_tol) {
      s->active[b] = 0;
      s->status[b] = DT_SOLVE_CONVERGED;
    }
  }
  return any_active(s, B);
}

static dtStatus solve_pga(dtTrajopt* s, int B, dtTensor* c, int armijo) {
  const dtTrajoptOpts* o = &s->opts;
  int n = s->n;
  int recording = o->backward == DT_BACKWARD_UNROLL || o->backward == DT_BACKWARD_TRUNCATED;
  start_projected(s, B);
  for (int it = 0; it < o->max_iters && check_projected_convergence(s, B); it++) {
    if (armijo) {
      dtStatus st = line_search(s, B, c, s->g, o->step_size);
      if (st) return st;
    } else {
      for (int b = 0; b < B; b++) s->alpha[b] = o->step_size;
    }
    dtStep* rec = recording ? record(s, B) : NULL;
    memcpy(s->a_trial, s->a, (size_t)B * n * sizeof(float));  // previous iterate
    for (int b = 0; b < B; b++) {
      if (!s->active[b]) continue;
      if (armijo && !s->accepted[b]) {
        // no step length gives an increase: a stationary point to float precision
        s->active[b] = 0;
        s->status[b] = DT_SOLVE_CONVERGED;
        if (rec) rec->applied[b] = 0;
        continue;
      }
      project_step(s, s->a_trial + (size_t)b * n, s->g + (size_t)b * n, s->alpha[b],
                   s->a + (size_t)b * n, rec ? rec->pass + (size_t)b * n : NULL);
      if (rec) rec->alpha[b] = s->alpha[b];
      s->iters[b]++;
    }
    dtStatus st = armijo ? eval_new_iterates(s, B, c, NULL) : eval_prepared(s, B, c, s->a, s->G, s->g);
    if (st) return st;
    check_finite(s, B, s->a_trial);
    for (int b = 0; b < B; b++) {
      if (s->status[b] != DT_SOLVE_NONFINITE && -s->G[b] < s->err_best[b]) {
        s->err_best[b] = -s->G[b];
        memcpy(s->a_best + (size_t)b * n, s->a + (size_t)b * n, (size_t)n * sizeof(float));
      }
    }
  }
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// projected Newton: on the free set F (coordinates not held at a bound by the gradient),
// d_F = (-H_FF)^+ g_F with eigenvalues of -H_FF raised to newton_min_curv; then a projected
// Armijo search along P(a + alpha d), alpha from 1

static void free_mask(const dtTrajopt* s, const float* a, const float* g, uint8_t* mask) {
  const dtTrajoptOpts* o = &s->opts;
  for (int i = 0; i < s->n; i++) {
    int at_lo = a[i] <= o->lo + o->bound_tol && g[i] < 0;
    int at_hi = a[i] >= o->hi - o->bound_tol && g[i] > 0;
    mask[i] = !(at_lo || at_hi);
  }
}

// H p for B rows at a into out [B, n]: one forward-over-reverse pass (the tape is reset)
static dtStatus hvp_rows(dtTrajopt* s, int B, const float* a, const float* p, float* out) {
  dtTape* t = s->tape;
  s->stats.hvp_passes++;
  dt_tape_reset(t);
  dt_tape_set_param_grads(t, 0);
  dtTensor* xt = s->nx ? dt_input2(t, B, s->nx, s->x, "x") : NULL;
  dtTensor* c = s->obj.prepare ? s->obj.prepare(s->obj.ctx, t, xt) : xt;
  dtTensor* at = dt_input2(t, B, s->n, a, "a");
  dt_requires_grad(t, at);
  dt_set_tangent(t, at, p);
  dt_backward(t, s->obj.value(s->obj.ctx, t, at, c), NULL);
  dtStatus st = dt_tape_status(t);
  if (st) return dt_error(st, "trajopt: Hessian-vector pass failed: %s", dt_tape_error(t));
  if (at->gdot) {
    memcpy(out, at->gdot, (size_t)B * s->n * sizeof(float));
  } else {
    memset(out, 0, (size_t)B * s->n * sizeof(float));
  }
  return DT_OK;
}

static float dot_masked(const float* a, const float* b, const uint8_t* m, int n) {
  double acc = 0;
  for (int i = 0; i < n; i++)
    if (m[i]) acc += (double)a[i] * b[i];
  return (float)acc;
}

// the first CG direction on the free set: r = p = g_F, rr = |g_F|^2
static float cg_first_direction(const dtTrajopt* s, int b, float* r, float* p) {
  int n = s->n;
  const float* g = s->g + (size_t)b * n;
  uint8_t* m = s->mask + (size_t)b * n;
  free_mask(s, s->a + (size_t)b * n, g, m);
  for (int i = 0; i < n; i++) r[i] = p[i] = m[i] ? g[i] : 0.0f;
  return dot_masked(r, r, m, n);
}

// d += (rr / (min_curv * pp)) p: the step along a direction whose curvature is below the floor,
// taken as if it had the floor's (as the full solve's eigenvalue floor does)
static void floor_curvature_step(const dtTrajopt* s, float rr, float pp, const float* p,
                                 float* d) {
  float alpha = rr / (s->opts.newton_min_curv * pp);
  for (int i = 0; i < s->n; i++) d[i] += alpha * p[i];
}

// Newton directions by truncated conjugate gradients on (-H_FF) d = g_F for the elements with
// need[b], all in lockstep (one Hessian-vector pass per step); an element stops at a small
// residual, or at a direction whose curvature is below newton_min_curv, along which it steps
// as if the curvature were that floor. Where that direction was the first, the projected
// gradient, low_curv[b] = 1 (the next iteration tries the gradient first) and grad_tried[b]
// keeps its value (a rejected gradient trial's search goes on); otherwise both become 0.
static dtStatus newton_cg_directions(dtTrajopt* s, int B, const uint8_t* need) {
  int n = s->n;
  float *r = s->v, *p = s->u, *q = s->t_rep, *rr = s->err_last, *gnorm = s->seed_dot;
  uint8_t* run = s->cg_run;
  for (int b = 0; b < B; b++) {
    float *d = s->dir + (size_t)b * n, *rb = r + (size_t)b * n, *pb = p + (size_t)b * n;
    run[b] = 0;
    memset(pb, 0, (size_t)n * sizeof(float));
    if (!need[b]) continue;
    memset(d, 0, (size_t)n * sizeof(float));
    rr[b] = cg_first_direction(s, b, rb, pb);
    gnorm[b] = sqrtf(rr[b]);
    run[b] = rr[b] > 0;
    s->low_curv[b] = 0;
    if (!run[b]) memset(pb, 0, (size_t)n * sizeof(float));
  }
  for (int k = 0; k < s->opts.newton_cg; k++) {
    int any = 0;
    for (int b = 0; b < B; b++) any |= run[b];
    if (!any) break;
    dtStatus st = hvp_rows(s, B, s->a, p, q);
    if (st) return st;
    for (int b = 0; b < B; b++) {
      if (!run[b]) continue;
      const uint8_t* m = s->mask + (size_t)b * n;
      float *d = s->dir + (size_t)b * n, *rb = r + (size_t)b * n, *pb = p + (size_t)b * n;
      float* qb = q + (size_t)b * n;
      for (int i = 0; i < n; i++) qb[i] = m[i] ? -qb[i] : 0.0f;  // (-H) p on the free set
      float pq = dot_masked(pb, qb, m, n), pp = dot_masked(pb, pb, m, n);
      if (k > 0) s->grad_tried[b] = 0;
      if (!(pq > s->opts.newton_min_curv * pp)) {
        // curvature below the floor: the projected line search cuts the long step back
        floor_curvature_step(s, rr[b], pp, pb, d);
        s->low_curv[b] = k == 0;
        run[b] = 0;
        memset(pb, 0, (size_t)n * sizeof(float));
        continue;
      }
      s->grad_tried[b] = 0;
      float alpha = rr[b] / pq;
      for (int i = 0; i < n; i++) d[i] += alpha * pb[i], rb[i] -= alpha * qb[i];
      float rr_new = dot_masked(rb, rb, m, n);
      if (sqrtf(rr_new) <= 1e-4f * gnorm[b]) {
        run[b] = 0;
        memset(pb, 0, (size_t)n * sizeof(float));
        continue;
      }
      float beta = rr_new / rr[b];
      for (int i = 0; i < n; i++) pb[i] = m[i] ? rb[i] + beta * pb[i] : 0.0f;
      rr[b] = rr_new;
    }
  }
  return DT_OK;
}

// Newton directions from full Hessians for the elements with need[b] (low_curv[b]: -H_FF had
// an eigenvalue below the floor)
static dtStatus newton_full_directions(dtTrajopt* s, int B, const uint8_t* need) {
  int n = s->n;
  dtStatus st = dt_trajopt_hessian(s, B, s->x, s->a);
  if (st) return st;
  for (int b = 0; b < B; b++) {
    if (!need[b]) continue;
    float* d = s->dir + (size_t)b * n;
    uint8_t* m = s->mask + (size_t)b * n;
    memset(d, 0, (size_t)n * sizeof(float));
    free_mask(s, s->a + (size_t)b * n, s->g + (size_t)b * n, m);
    s->low_curv[b] = dt_trajopt_free_solve(s, s->hess + (size_t)b * n * n, s->g + (size_t)b * n,
                                           m, s->opts.newton_min_curv, d) != 0;
    s->grad_tried[b] = 0;
  }
  return DT_OK;
}

// the gradient trials of an iteration: the elements whose last direction met curvature below
// the floor try the projected gradient first, in Newton-CG's arithmetic (g_F stepped as if its
// curvature were the floor), so that a rejected trial continues as the line search of the
// Newton-CG step that the same curvature would give. grad_tried: 2 accepted, 1 rejected.
static dtStatus gradient_trials(dtTrajopt* s, int B, dtTensor* c) {
  int n = s->n, any = 0;
  for (int b = 0; b < B; b++) {
    s->grad_tried[b] = 0;
    if (!s->active[b] || !s->low_curv[b]) continue;
    float *d = s->dir + (size_t)b * n, *r = s->v + (size_t)b * n, *p = s->u + (size_t)b * n;
    float rr = cg_first_direction(s, b, r, p);
    if (!(rr > 0)) continue;
    memset(d, 0, (size_t)n * sizeof(float));
    floor_curvature_step(s, rr, rr, p, d);  // p = r: CG's pp is rr, bit for bit
    s->grad_tried[b] = 1;
    any = 1;
  }
  if (!any) return DT_OK;
  line_search_start(s, B, s->dir, 1.0f, s->grad_tried);
  dtStatus st = line_search_run(s, B, c, s->dir, LS_FIRST_ONLY);
  for (int b = 0; b < B; b++)
    if (s->grad_tried[b] && s->accepted[b]) s->grad_tried[b] = 2;
  return st;
}

// the Newton line search of an iteration after its gradient trials: the elements that still
// need a step search along their Newton direction, continuing the gradient trial's
// backtracking where the direction is that same one
static dtStatus newton_line_search(dtTrajopt* s, int B, dtTensor* c, const uint8_t* need) {
  int fresh = 0, stepped = 0;
  uint8_t* start = s->cg_run;  // CG's scratch: the elements whose search starts afresh
  for (int b = 0; b < B; b++) {
    start[b] = need[b] && s->grad_tried[b] != 1;
    fresh |= start[b];
    stepped |= s->grad_tried[b] == 2;
  }
  line_search_start(s, B, s->dir, 1.0f, start);
  for (int b = 0; b < B; b++)
    if (need[b] && s->grad_tried[b] == 1) s->accepted[b] = 0;  // its alpha is shrunk already
  dtStatus st = line_search_run(s, B, c, s->dir, fresh ? LS_FULL : LS_BACKTRACK);
  // the rows of elements that stepped in their gradient trial were evaluated at the old
  // iterate: the new iterates need an evaluation of their own
  if (stepped) s->first_trial_kept = 0;
  return st;
}

static dtStatus solve_newton(dtTrajopt* s, int B, dtTensor* c) {
  const dtTrajoptOpts* o = &s->opts;
  int n = s->n;
  start_projected(s, B);
  memset(s->low_curv, o->newton_gradient_first != 0, (size_t)B);
  memset(s->grad_tried, 0, (size_t)B);
  for (int it = 0; it < o->max_iters && check_projected_convergence(s, B); it++) {
    dtStatus st;
    if (o->newton_gradient_first && (st = gradient_trials(s, B, c))) return st;
    int needs = 0;
    for (int b = 0; b < B; b++) {
      s->need[b] = s->active[b] && s->grad_tried[b] != 2;
      needs |= s->need[b];
    }
    if (needs) {
      // Newton directions: full Hessians, or truncated CG on Hessian-vector products (both
      // passes reset the tape: prepare again after)
      st = o->newton_cg > 0 ? newton_cg_directions(s, B, s->need)
                            : newton_full_directions(s, B, s->need);
      if (st || (st = prepare(s, B, s->x, &c))) return st;
      if ((st = newton_line_search(s, B, c, s->need))) return st;
    }
    memcpy(s->a_trial, s->a, (size_t)B * n * sizeof(float));
    for (int b = 0; b < B; b++) {
      if (!s->active[b]) continue;
      if (!s->accepted[b]) {
        s->active[b] = 0;
        s->status[b] = DT_SOLVE_CONVERGED;  // no ascent possible along the Newton arc
        continue;
      }
      project_step(s, s->a_trial + (size_t)b * n, s->dir + (size_t)b * n, s->alpha[b],
                   s->a + (size_t)b * n, NULL);
      s->iters[b]++;
    }
    if ((st = eval_new_iterates(s, B, c, s->G_trial))) return st;  // G_trial: G before the step
    check_finite(s, B, s->a_trial);
    for (int b = 0; b < B; b++) {
      if (s->status[b] == DT_SOLVE_NONFINITE) continue;
      if (-s->G[b] < s->err_best[b]) {
        s->err_best[b] = -s->G[b];
        memcpy(s->a_best + (size_t)b * n, s->a + (size_t)b * n, (size_t)n * sizeof(float));
      }
      // stalled: the increase is below the tolerances
      if (s->active[b] &&
          fabsf(s->G[b] - s->G_trial[b]) <= o->abs_tol + o->rel_tol * fabsf(s->G[b])) {
        s->active[b] = 0;
        s->status[b] = DT_SOLVE_CONVERGED;
      }
    }
  }
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// the entry point

dtStatus dt_trajopt_solve(dtTrajopt* s, int B, const float* x, const float* a_init,
                          float* a_final, float* a_best, float* G, int* status) {
  if (!s || !a_init || !a_final || (s->nx && !x))
    return dt_error(DT_ERR_ARG, "dt_trajopt_solve: NULL argument (solver, x, a_init or a_final)");
  if (B < 1 || B > s->max_batch)
    return dt_error(DT_ERR_ARG, "dt_trajopt_solve: batch %d outside [1, %d]", B, s->max_batch);
  double t0 = dt_time_s();
  int n = s->n;
  s->B = B;
  s->solved = 0;
  s->steps_len = 0;
  s->stats.value_passes = s->stats.paired_passes = 0;
  s->stats.gradient_passes = s->stats.hvp_passes = 0;
  if (s->nx) memcpy(s->x, x, (size_t)B * s->nx * sizeof(float));
  memcpy(s->a, a_init, (size_t)B * n * sizeof(float));
  // non-finite starts or data stop their element at once (NaN -> 0 in the start)
  for (int b = 0; b < B; b++) {
    s->iters[b] = 0;
    s->status[b] = DT_SOLVE_MAX_ITER;
    float* a = s->a + (size_t)b * n;
    int bad = !row_finite(a, n) || (s->nx && !row_finite(s->x + (size_t)b * s->nx, s->nx));
    if (bad) {
      s->status[b] = DT_SOLVE_NONFINITE;
      for (int i = 0; i < n; i++)
        if (!isfinite(a[i])) a[i] = 0.0f;
    }
  }
  // the projected solvers (and a projected LM) start inside the box; the backward masks the
  // clamped coordinates
  memset(s->init_pass, 1, (size_t)B * n);
  if (s->opts.solver != DT_SOLVER_LM || s->opts.project)
    for (size_t i = 0; i < (size_t)B * n; i++) {
      float p = clampf(s->a[i], s->opts.lo, s->opts.hi);
      s->init_pass[i] = p == s->a[i];
      s->a[i] = p;
    }
  memcpy(s->a_best, s->a, (size_t)B * n * sizeof(float));

  dtTensor* c = NULL;
  dtStatus st = prepare(s, B, s->x, &c);
  if (!st) st = eval_prepared(s, B, c, s->a, s->G, s->g);
  if (!st) {
    for (int b = 0; b < B; b++) s->active[b] = s->status[b] != DT_SOLVE_NONFINITE;
    check_finite(s, B, NULL);
    switch (s->opts.solver) {
      case DT_SOLVER_LM: st = solve_lm(s, B, c); break;
      case DT_SOLVER_PGA: st = solve_pga(s, B, c, 0); break;
      case DT_SOLVER_PGA_ARMIJO: st = solve_pga(s, B, c, 1); break;
      case DT_SOLVER_NEWTON: st = solve_newton(s, B, c); break;
    }
  }
  if (st) return st;

  // outputs
  s->stats.iterations = 0;
  s->stats.converged = 0;
  s->stats.nonfinite = 0;
  for (int b = 0; b < B; b++) {
    if (s->iters[b] > s->stats.iterations) s->stats.iterations = s->iters[b];
    s->stats.converged += s->status[b] == DT_SOLVE_CONVERGED;
    s->stats.nonfinite += s->status[b] == DT_SOLVE_NONFINITE;
    if (status) status[b] = s->status[b];
    if (G) G[b] = s->status[b] == DT_SOLVE_NONFINITE ? 0.0f : s->G[b];
  }
  memcpy(a_final, s->a, (size_t)B * n * sizeof(float));
  if (a_best) memcpy(a_best, s->a_best, (size_t)B * n * sizeof(float));
  dt_tape_memory(s->tape, NULL, &s->stats.tape_high_water, &s->stats.tape_capacity);
  s->stats.solve_ms = (dt_time_s() - t0) * 1e3;
  s->solved = 1;
  return DT_OK;
}
