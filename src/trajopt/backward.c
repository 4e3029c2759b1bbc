// SPDX-License-Identifier: MIT
// Backward through the solver. Every mode reduces to forward-over-reverse passes of the
// objective: with the decisions a carrying a tangent u and the output adjoint seeded with 1
// and adjoint tangent s, one pass yields
//   a->gdot = H u + s g                    (H = d2G/da2, g = dG/da)
//   p->gdot = d/dp (u . g) + s dG/dp       for every parameter p, and likewise for x.
// The parameters' gdot buffers are pointed at an accumulator for the duration, so the sums
// over iterations and batch elements land there; they are added to p->grad only if finite.
//
// LM step  a' = P(a + eta g r / D), r = C - G, D = lambda + |g|^2. With v = dL/da' and
// ve = (pass mask) * v:  w = (r / D) ve - (2 r (g.ve) / D^2) g, and
//   dL/da = ve + eta [H w - (g.ve) / D g],   dL/dp += eta [d/dp (w.g) - (g.ve) / D dG/dp]
// so u = eta w and s = -eta (g.ve) / D.
// PGA step a' = P(a + alpha g): u = alpha ve, s = 0, dL/da = ve + H u.
// Implicit: at a stationary point g_F(a*, p) = 0 on the free set F, so
//   dL/dp = d/dp (u . g) with u_F = (-H_FF)^-1 v_F, u = 0 off F; s = 0.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tensor/tensor_internal.h"
#include "trajopt_internal.h"

// point every parameter's adjoint buffers at the solver's scratch: grad at the discarded
// first-order part, gdot at the accumulator
static void borrow_params(dtTrajopt* s) {
  dtParams* ps = s->obj.params;
  if (!ps) return;
  memset(s->pacc, 0, (size_t)s->pcount * sizeof(float));
  int64_t off = 0;
  for (int i = 0; i < ps->count; i++) {
    dtTensor* p = ps->items[i];
    s->psave_grad[i] = p->grad;
    s->psave_gdot[i] = p->gdot;
    s->psave_flags[i] = p->flags;
    p->grad = s->pjunk + off;
    p->gdot = s->pacc + off;
    p->flags &= ~DT_GRAD_TOUCHED;
    off += p->size;
  }
}

// 1 when no value is NaN or Inf: an exponent of all ones, tested on the bits so that the loop
// has no early exit and vectorises (the accumulator holds every parameter, 6 MB officially)
static int all_finite(const float* v, int64_t n) {
  uint32_t bad = 0;
  for (int64_t k = 0; k < n; k++) {
    uint32_t u;
    memcpy(&u, v + k, sizeof u);
    bad |= (u & 0x7f800000u) == 0x7f800000u;
  }
  return !bad;
}

// give the buffers back; add the accumulated gradients when they are all finite
static dtStatus return_params(dtTrajopt* s, int add) {
  dtParams* ps = s->obj.params;
  if (!ps) return DT_OK;
  int finite = !add || all_finite(s->pacc, s->pcount);
  int64_t off = 0;
  for (int i = 0; i < ps->count; i++) {
    dtTensor* p = ps->items[i];
    int touched = p->flags & DT_GRAD_TOUCHED;
    p->grad = s->psave_grad[i];
    p->gdot = s->psave_gdot[i];
    p->flags = s->psave_flags[i];
    if (add && finite && touched) {
      const float* acc = s->pacc + off;
      for (int64_t k = 0; k < p->size; k++) p->grad[k] += acc[k];
      p->flags |= DT_GRAD_TOUCHED;
    }
    off += p->size;
  }
  if (add && !finite)
    return dt_error(DT_ERR_NONFINITE, "trajopt backward: parameter gradients came out "
                    "non-finite; they were not applied");
  return DT_OK;
}

// one forward-over-reverse pass at iterate a with tangent s->u and seed tangent s->seed_dot;
// adds the x contributions to s->xacc and writes H u + s g into hu [B, n]
static dtStatus tangent_pass(dtTrajopt* s, const float* a, float* hu) {
  int B = s->B, n = s->n, nx = s->nx;
  dtTape* t = s->tape;
  dt_tape_reset(t);
  dt_tape_set_param_grads(t, 1);
  dt_tape_set_param_gdot_only(t, 1);  // p->grad would land in pjunk: not computed at all
  // elements stopped by NaN/Inf enter with zeros and zero seeds: they contribute nothing
  memcpy(s->a_rep, a, (size_t)B * n * sizeof(float));
  if (nx) memcpy(s->x_rep, s->x, (size_t)B * nx * sizeof(float));
  for (int b = 0; b < B; b++) {
    s->alpha[b] = s->status[b] == DT_SOLVE_NONFINITE ? 0.0f : 1.0f;  // the adjoint seed
    if (s->alpha[b] == 0.0f) {
      memset(s->a_rep + (size_t)b * n, 0, (size_t)n * sizeof(float));
      if (nx) memset(s->x_rep + (size_t)b * nx, 0, (size_t)nx * sizeof(float));
      memset(s->u + (size_t)b * n, 0, (size_t)n * sizeof(float));
      s->seed_dot[b] = 0.0f;
    }
  }
  dtTensor* xt = nx ? dt_input2(t, B, nx, s->x_rep, "x") : NULL;
  if (xt) dt_requires_grad(t, xt);
  dtTensor* c = s->obj.prepare ? s->obj.prepare(s->obj.ctx, t, xt) : xt;
  dtTensor* at = dt_input2(t, B, n, s->a_rep, "a");
  dt_requires_grad(t, at);
  dt_set_tangent(t, at, s->u);
  dtTensor* Gt = s->obj.value(s->obj.ctx, t, at, c);
  dt_backward_ex(t, Gt, s->alpha, s->seed_dot);
  dtStatus st = dt_tape_status(t);
  dt_tape_set_param_grads(t, 0);
  dt_tape_set_param_gdot_only(t, 0);
  if (st) return dt_error(st, "trajopt backward pass failed: %s", dt_tape_error(t));
  if (xt && xt->gdot)
    for (size_t i = 0; i < (size_t)B * nx; i++) s->xacc[i] += xt->gdot[i];
  if (hu) {
    if (at->gdot) {
      memcpy(hu, at->gdot, (size_t)B * n * sizeof(float));
    } else {
      memset(hu, 0, (size_t)B * n * sizeof(float));
    }
  }
  return DT_OK;
}

// backward through one recorded step: s->v holds dL/da_{k+1} on entry, dL/da_k on exit
static dtStatus step_backward(dtTrajopt* s, const dtStep* step) {
  const dtTrajoptOpts* o = &s->opts;
  int B = s->B, n = s->n, lm = o->solver == DT_SOLVER_LM, any = 0;
  for (int b = 0; b < B; b++) {
    float* v = s->v + (size_t)b * n;
    float* u = s->u + (size_t)b * n;
    s->seed_dot[b] = 0.0f;
    memset(u, 0, (size_t)n * sizeof(float));
    if (!step->applied[b]) continue;  // a_{k+1} = a_k: v passes unchanged
    any = 1;
    const float* g = step->g + (size_t)b * n;
    const uint8_t* pass = step->pass + (size_t)b * n;
    for (int i = 0; i < n; i++)
      if (!pass[i]) v[i] = 0.0f;  // coordinates the projection held at a bound
    float eta = step->alpha[b];
    if (lm) {
      double gg = 0, gv = 0;
      for (int i = 0; i < n; i++) gg += (double)g[i] * g[i], gv += (double)g[i] * v[i];
      double D = o->damping + gg, r = (double)o->offset - step->G[b];
      double cw = r / D, cg = 2.0 * r * gv / (D * D);
      for (int i = 0; i < n; i++) u[i] = (float)(eta * (cw * v[i] - cg * g[i]));
      s->seed_dot[b] = (float)(-eta * gv / D);
    } else {
      for (int i = 0; i < n; i++) u[i] = eta * v[i];
    }
  }
  if (!any) return DT_OK;
  dtStatus st = tangent_pass(s, step->a, s->dir);
  if (st) return st;
  for (int b = 0; b < B; b++) {
    if (!step->applied[b]) continue;
    for (int i = 0; i < n; i++) s->v[(size_t)b * n + i] += s->dir[(size_t)b * n + i];
  }
  return DT_OK;
}

static dtStatus implicit_backward(dtTrajopt* s) {
  const dtTrajoptOpts* o = &s->opts;
  int B = s->B, n = s->n;
  s->implicit_indefinite = 0;
  dtStatus st = dt_trajopt_hessian(s, B, s->x, s->a);
  if (st) return st;
  for (int b = 0; b < B; b++) {
    const float* a = s->a + (size_t)b * n;
    uint8_t* mask = s->mask + (size_t)b * n;
    // free coordinates: strictly inside the bounds (the clip or projection holds the others)
    for (int i = 0; i < n; i++) mask[i] = a[i] > o->lo + o->bound_tol && a[i] < o->hi - o->bound_tol;
    s->seed_dot[b] = 0.0f;
    if (s->status[b] == DT_SOLVE_NONFINITE) {
      memset(s->u + (size_t)b * n, 0, (size_t)n * sizeof(float));
      continue;
    }
    s->implicit_indefinite |= dt_trajopt_free_solve(s, s->hess + (size_t)b * n * n,
                                                    s->v + (size_t)b * n, mask, o->implicit_reg,
                                                    s->u + (size_t)b * n);
  }
  return tangent_pass(s, s->a, NULL);
}

dtStatus dt_trajopt_backward(dtTrajopt* s, const float* dL_da, float* dL_dx, float* dL_dainit) {
  if (!s || !dL_da) return dt_error(DT_ERR_ARG, "dt_trajopt_backward: NULL solver or dL/da");
  if (!s->solved)
    return dt_error(DT_ERR_STATE, "dt_trajopt_backward: no solve to differentiate (call "
                    "dt_trajopt_solve first; a backward consumes its solve's history)");
  int B = s->B, n = s->n, nx = s->nx;
  for (size_t i = 0; i < (size_t)B * n; i++)
    if (!isfinite(dL_da[i]))
      return dt_error(DT_ERR_NONFINITE, "dt_trajopt_backward: dL/da has a non-finite value "
                      "at element %zu", i);
  double t0 = dt_time_s();
  memcpy(s->v, dL_da, (size_t)B * n * sizeof(float));
  for (int b = 0; b < B; b++)
    if (s->status[b] == DT_SOLVE_NONFINITE) memset(s->v + (size_t)b * n, 0, (size_t)n * sizeof(float));
  if (nx) memset(s->xacc, 0, (size_t)B * nx * sizeof(float));

  dtStatus st = DT_OK;
  dtBackward mode = s->opts.backward;
  if (mode != DT_BACKWARD_NONE) {
    borrow_params(s);
    dt_tape_set_grad_stage(s->tape, &s->stage);
    if (mode == DT_BACKWARD_IMPLICIT) {
      st = implicit_backward(s);
    } else {
      for (int k = s->steps_len - 1; k >= 0 && !st; k--) st = step_backward(s, &s->steps[k]);
    }
    // the kept weight rows land in the accumulator while the parameters still point at it
    if (st) {
      dt_grad_stage_discard(&s->stage);
    } else {
      dt_grad_stage_flush(&s->stage);
    }
    dt_tape_set_grad_stage(s->tape, NULL);
    dtStatus st2 = return_params(s, st == DT_OK);
    if (!st) st = st2;
  }
  if (st) return st;
  if (dL_dx && nx) memcpy(dL_dx, s->xacc, (size_t)B * nx * sizeof(float));
  if (dL_dainit) {
    // only the unrolled mode reaches the start; truncation and the implicit theorem detach it
    if (mode == DT_BACKWARD_UNROLL) {
      // a start outside the box was clamped into it: no sensitivity there
      for (size_t i = 0; i < (size_t)B * n; i++) dL_dainit[i] = s->init_pass[i] ? s->v[i] : 0.0f;
    } else {
      memset(dL_dainit, 0, (size_t)B * n * sizeof(float));
    }
  }
  s->stats.backward_ms = (dt_time_s() - t0) * 1e3;
  dt_tape_memory(s->tape, NULL, &s->stats.tape_high_water, NULL);
  return DT_OK;
}
