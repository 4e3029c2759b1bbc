// SPDX-License-Identifier: MIT
// The tape: arena-backed nodes, leaves, parameters, sticky errors and the backward driver.
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tensor_internal.h"

dtTapeOpts dt_tape_default_opts(void) {
  dtTapeOpts o = {64u << 20, 0};
  return o;
}

dtTape* dt_tape_new(const dtTapeOpts* opts) {
  dtTapeOpts o = opts ? *opts : dt_tape_default_opts();
  dtTape* t = dt_calloc(1, sizeof *t);
  if (!t) return NULL;
  if (dt_arena_init(&t->arena, o.arena_bytes) != DT_OK) {
    dt_free(t);
    return NULL;
  }
  t->check_finite = o.check_finite;
  return t;
}

void dt_tape_free(dtTape* t) {
  if (!t) return;
  dt_arena_destroy(&t->arena);
  dt_free(t);
}

void dt_tape_reset(dtTape* t) {
  if (!t) return;
  dt_arena_release(&t->arena, 0);
  t->last = NULL;
  t->count = 0;
  t->second_order = 0;
  t->status = DT_OK;
  t->msg[0] = 0;
}

dtStatus dt_tape_status(const dtTape* t) { return t ? t->status : DT_ERR_ARG; }

const char* dt_tape_error(const dtTape* t) { return t ? t->msg : "tape is NULL"; }

void dt_tape_set_check_finite(dtTape* t, int on) {
  if (t) t->check_finite = on;
}

void dt_tape_set_param_grads(dtTape* t, int on) {
  if (t) t->no_param_grads = !on;
}

void dt_tape_memory(const dtTape* t, size_t* used, size_t* high_water, size_t* capacity) {
  if (used) *used = t->arena.used;
  if (high_water) *high_water = t->arena.high_water;
  if (capacity) *capacity = t->arena.capacity;
}

size_t dt_tape_mark(const dtTape* t) { return t->arena.used; }

// 1 if p points into the arena at or past mark (memory that a rewind to mark releases)
static int past_mark(const dtTape* t, const void* p, size_t mark) {
  uintptr_t a = (uintptr_t)p, lo = (uintptr_t)t->arena.base + mark;
  return p && a >= lo && a < (uintptr_t)t->arena.base + t->arena.capacity;
}

void dt_tape_rewind(dtTape* t, size_t mark) {
  // nodes are allocated in order, so those past the mark sit above it in the arena
  while (t->last && past_mark(t, t->last, mark)) {
    t->last = t->last->prev;
    t->count--;
  }
  // earlier nodes may own buffers allocated after the mark (adjoints from a backward through
  // the dropped nodes, a late tangent): they are released too, so forget them (a backward
  // allocates them again) instead of leaving them to alias the next nodes
  for (dtTensor* n = t->last; n; n = n->prev) {
    if (past_mark(t, n->dot, mark)) n->dot = NULL;
    if (past_mark(t, n->grad, mark)) n->grad = NULL;
    if (past_mark(t, n->gdot, mark)) n->gdot = NULL;
  }
  dt_arena_release(&t->arena, mark);
}

float* dt_tape_floats(dtTape* t, int64_t n) {
  if (!t || n < 0) return NULL;
  float* p = dt_arena_alloc(&t->arena, (size_t)n * sizeof(float));
  if (!p) dt_tape_fail(t, DT_ERR_NOMEM, "tape arena full (%zu bytes): raise arena_bytes",
                       t->arena.capacity);
  return p;
}

//---------------------------------------------------------------------------------------------
// errors

dtStatus dt_tape_fail(dtTape* t, dtStatus status, const char* fmt, ...) {
  // the first error wins: later ones are consequences
  if (t && t->status == DT_OK) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof t->msg, fmt, ap);
    va_end(ap);
    t->status = status;
    dt_error(status, "%s", t->msg);
  }
  return status;
}

const char* dt_label(const dtTensor* x, char* buf, size_t n) {
  if (!x) {
    snprintf(buf, n, "(null)");
  } else if (x->name) {
    snprintf(buf, n, "'%s'", x->name);
  } else {
    snprintf(buf, n, "%s#%d", dt_op_name(x->op), x->id);
  }
  return buf;
}

const char* dt_shape_str(const dtTensor* x, char* buf, size_t n) {
  if (!x) {
    snprintf(buf, n, "(null)");
    return buf;
  }
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < x->ndim && k < n; i++) {
    k += (size_t)snprintf(buf + k, n - k, i ? ", %d" : "%d", x->shape[i]);
  }
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

//---------------------------------------------------------------------------------------------
// nodes

static int64_t shape_size(int ndim, const int* shape) {
  int64_t s = 1;
  for (int i = 0; i < ndim; i++) s *= shape[i];
  return s;
}

dtTensor* dt_node(dtTape* t, int op, int ndim, const int* shape) {
  if (t->status != DT_OK) return NULL;
  if (ndim < 0 || ndim > DT_MAX_DIMS) {
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_%s: %d dimensions (at most %d)", dt_op_name(op), ndim,
                 DT_MAX_DIMS);
    return NULL;
  }
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      dt_tape_fail(t, DT_ERR_SHAPE, "dt_%s: negative extent %d", dt_op_name(op), shape[i]);
      return NULL;
    }
  }
  dtTensor* x = dt_arena_calloc(&t->arena, sizeof *x);
  int64_t size = shape_size(ndim, shape);
  float* val = x ? dt_arena_alloc(&t->arena, (size_t)size * sizeof(float)) : NULL;
  if (!x || !val) {
    dt_tape_fail(t, DT_ERR_NOMEM, "dt_%s: tape arena full (%zu bytes): raise arena_bytes",
                 dt_op_name(op), t->arena.capacity);
    return NULL;
  }
  x->ndim = ndim;
  for (int i = 0; i < ndim; i++) x->shape[i] = shape[i];
  x->size = size;
  x->val = val;
  x->op = op;
  x->prev = t->last;
  x->id = t->count++;
  t->last = x;
  return x;
}

float* dt_node_floats(dtTape* t, int64_t n, int zero) {
  float* p = zero ? dt_arena_calloc(&t->arena, (size_t)n * sizeof(float))
                  : dt_arena_alloc(&t->arena, (size_t)n * sizeof(float));
  if (!p && t->status == DT_OK) {
    dt_tape_fail(t, DT_ERR_NOMEM, "tape arena full (%zu bytes): raise arena_bytes",
                 t->arena.capacity);
  }
  return p;
}

void dt_tape_set_param_gdot_only(dtTape* t, int on) {
  if (t) t->param_gdot_only = on;
}

int dt_ensure_dot(dtTape* t, dtTensor* y) {
  if (!y->dot) y->dot = dt_node_floats(t, y->size, 1);
  return y->dot != NULL;
}

int dt_claim_grad(dtTape* t, dtTensor* x) {
  int fresh = 0;
  if (!x->grad) {
    x->grad = dt_node_floats(t, x->size, 0);
    fresh |= DT_FRESH_GRAD;
  }
  if (t->second_order && !x->gdot) {
    x->gdot = dt_node_floats(t, x->size, 0);
    fresh |= DT_FRESH_GDOT;
  }
  if (x->flags & DT_PARAM) x->flags |= DT_GRAD_TOUCHED;
  return x->grad && (!t->second_order || x->gdot) ? fresh : -1;
}

int dt_ensure_grad(dtTape* t, dtTensor* x) {
  if (!x->grad) x->grad = dt_node_floats(t, x->size, 1);
  if (t->second_order && !x->gdot) x->gdot = dt_node_floats(t, x->size, 1);
  if (x->flags & DT_PARAM) x->flags |= DT_GRAD_TOUCHED;
  return x->grad && (!t->second_order || x->gdot);
}

dtTensor* dt_input(dtTape* t, int ndim, const int* shape, const float* data, const char* name) {
  if (!t) return NULL;
  dtTensor* x = dt_node(t, DT_OP_LEAF, ndim, shape);
  if (!x) return NULL;
  if (data) {
    memcpy(x->val, data, (size_t)x->size * sizeof(float));
  } else {
    memset(x->val, 0, (size_t)x->size * sizeof(float));
  }
  x->name = name;
  return x;
}

dtTensor* dt_input2(dtTape* t, int rows, int cols, const float* data, const char* name) {
  int shape[2] = {rows, cols};
  return dt_input(t, 2, shape, data, name);
}

dtStatus dt_requires_grad(dtTape* t, dtTensor* x) {
  if (!t || !x) return t ? t->status ? t->status : DT_ERR_ARG : DT_ERR_ARG;
  x->flags |= DT_REQUIRES_GRAD;
  return DT_OK;
}

dtStatus dt_set_tangent(dtTape* t, dtTensor* x, const float* dot) {
  if (!t || !x) return t && t->status ? t->status : dt_error(DT_ERR_ARG, "dt_set_tangent: NULL");
  if (x->op != DT_OP_LEAF || (x->flags & DT_PARAM)) {
    char b[64];
    return dt_tape_fail(t, DT_ERR_ARG, "dt_set_tangent: %s is not an input leaf",
                        dt_label(x, b, sizeof b));
  }
  if (!dt_ensure_dot(t, x)) return t->status;
  if (dot) memcpy(x->dot, dot, (size_t)x->size * sizeof(float));
  t->second_order = 1;
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// parameters

dtTensor* dt_param_new(const char* name, int ndim, const int* shape) {
  if (ndim < 0 || ndim > DT_MAX_DIMS) {
    dt_error(DT_ERR_SHAPE, "dt_param_new: '%s' has %d dimensions (at most %d)",
             name ? name : "?", ndim, DT_MAX_DIMS);
    return NULL;
  }
  int64_t size = shape_size(ndim, shape);
  size_t name_len = name ? strlen(name) + 1 : 0;
  dtTensor* p = dt_calloc(1, sizeof *p + name_len);
  if (!p) return NULL;
  p->val = dt_calloc((size_t)size ? (size_t)size : 1, sizeof(float));
  p->grad = dt_calloc((size_t)size ? (size_t)size : 1, sizeof(float));
  p->gdot = dt_calloc((size_t)size ? (size_t)size : 1, sizeof(float));
  if (!p->val || !p->grad || !p->gdot) {
    dt_param_free(p);
    return NULL;
  }
  p->ndim = ndim;
  for (int i = 0; i < ndim; i++) p->shape[i] = shape[i];
  p->size = size;
  if (name) {
    char* copy = (char*)(p + 1);
    memcpy(copy, name, name_len);
    p->name = copy;
  }
  p->flags = DT_PARAM | DT_REQUIRES_GRAD;
  p->op = DT_OP_LEAF;
  return p;
}

void dt_param_free(dtTensor* p) {
  if (!p) return;
  dt_free(p->val);
  dt_free(p->grad);
  dt_free(p->gdot);
  dt_free(p);
}

void dt_param_zero_grad(dtTensor* p) {
  if (!p) return;
  memset(p->grad, 0, (size_t)p->size * sizeof(float));
  memset(p->gdot, 0, (size_t)p->size * sizeof(float));
  p->flags &= ~DT_GRAD_TOUCHED;
}

void dt_param_set_trainable(dtTensor* p, int on) {
  if (!p) return;
  if (on) {
    p->flags |= DT_REQUIRES_GRAD;
  } else {
    p->flags &= ~DT_REQUIRES_GRAD;
  }
}

//---------------------------------------------------------------------------------------------
// backward driver

dtStatus dt_backward(dtTape* t, dtTensor* y, const float* seed) {
  return dt_backward_ex(t, y, seed, NULL);
}

dtStatus dt_backward_ex(dtTape* t, dtTensor* y, const float* seed, const float* seed_dot) {
  if (!t) return dt_error(DT_ERR_ARG, "dt_backward: tape is NULL");
  if (t->status != DT_OK) return t->status;
  if (!y) return dt_tape_fail(t, DT_ERR_ARG, "dt_backward: output is NULL");
  if (!(y->flags & DT_REQUIRES_GRAD)) return DT_OK;  // nothing to differentiate
  if (seed_dot) t->second_order = 1;

  // start from clean adjoints on every tape node (parameters accumulate)
  for (dtTensor* n = t->last; n; n = n->prev) {
    if (n->grad) memset(n->grad, 0, (size_t)n->size * sizeof(float));
    if (n->gdot) memset(n->gdot, 0, (size_t)n->size * sizeof(float));
  }
  if (!dt_ensure_grad(t, y)) return t->status;
  for (int64_t i = 0; i < y->size; i++) y->grad[i] = seed ? seed[i] : 1.0f;
  if (t->second_order && seed_dot) memcpy(y->gdot, seed_dot, (size_t)y->size * sizeof(float));

  // reverse creation order is a reverse topological order
  for (dtTensor* n = y; n; n = n->prev) {
    if (n->op == DT_OP_LEAF || !n->grad || !(n->flags & DT_REQUIRES_GRAD)) continue;
    dt_op_table[n->op].backward(t, n);
    if (t->status != DT_OK) return t->status;
  }
  return DT_OK;
}
