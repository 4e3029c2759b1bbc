// SPDX-License-Identifier: MIT
// Deferred weight-gradient tangents of Linear layers at small batch.
//
// A second-order pass adds gW' += g'^T x + g^T x' at every use of a Linear weight. At B = 1
// each use is a rank-2 update that reads and writes the whole weight-sized accumulator: the
// trajopt backward through k solver steps at horizon H does that k*H times per dynamics
// weight. The stage keeps the rows instead and adds them with one product per weight when its
// rows are full or when it is flushed: the accumulator is read and written once.
#include <cblas.h>
#include <string.h>

#include "tensor_internal.h"

// a use stages its rows only when they are few against the capacity (at larger batch the
// product is already efficient and copying the rows would be extra work)
#define DT_STAGE_MAX_USE_FRACTION 4

static void flush_slot(dtGradStage* s, int i) {
  dtTensor* W = s->w[i];
  int out = W->shape[0], in = W->shape[1];
  if (s->rows[i] > 0 && W->gdot)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, s->rows[i], 1.0f, s->g[i],
                out, s->x[i], in, 1.0f, W->gdot, in);
  s->rows[i] = 0;
}

dtStatus dt_grad_stage_init(dtGradStage* s, const dtParams* ps, int cap_rows) {
  memset(s, 0, sizeof *s);
  if (!ps || ps->count == 0) return DT_OK;
  s->cap = cap_rows;
  s->w = dt_calloc((size_t)ps->count, sizeof *s->w);
  s->g = dt_calloc((size_t)ps->count, sizeof *s->g);
  s->x = dt_calloc((size_t)ps->count, sizeof *s->x);
  s->rows = dt_calloc((size_t)ps->count, sizeof *s->rows);
  if (!s->w || !s->g || !s->x || !s->rows) goto nomem;
  for (int i = 0; i < ps->count; i++) {
    dtTensor* p = ps->items[i];
    if (p->ndim != 2) continue;  // Linear weights are [out, in]
    int k = s->count++;
    s->w[k] = p;
    s->g[k] = dt_malloc((size_t)cap_rows * p->shape[0] * sizeof(float));
    s->x[k] = dt_malloc((size_t)cap_rows * p->shape[1] * sizeof(float));
    if (!s->g[k] || !s->x[k]) goto nomem;
  }
  return DT_OK;
nomem:
  dt_grad_stage_free(s);
  return dt_error(DT_ERR_NOMEM, "gradient stage: out of memory for %d rows", cap_rows);
}

void dt_grad_stage_free(dtGradStage* s) {
  if (!s) return;
  for (int i = 0; i < s->count; i++) dt_free(s->g[i]), dt_free(s->x[i]);
  dt_free(s->w), dt_free(s->g), dt_free(s->x), dt_free(s->rows);
  memset(s, 0, sizeof *s);
}

int dt_grad_stage_linear(dtGradStage* s, int M, const dtTensor* y, const dtTensor* x,
                         const dtTensor* W) {
  int need = x->dot ? 2 * M : M;
  if (!s || need * DT_STAGE_MAX_USE_FRACTION > s->cap) return 0;
  int i = 0;
  while (i < s->count && s->w[i] != W) i++;
  if (i == s->count) return 0;
  if (s->rows[i] + need > s->cap) flush_slot(s, i);
  int out = W->shape[0], in = W->shape[1], r = s->rows[i];
  size_t go = (size_t)M * out, xi = (size_t)M * in;
  // rows pair up: g' with x, then g with x'
  float* g = s->g[i] + (size_t)r * out;
  float* xr = s->x[i] + (size_t)r * in;
  memcpy(g, y->gdot, go * sizeof(float));
  memcpy(xr, x->val, xi * sizeof(float));
  if (x->dot) {
    memcpy(g + go, y->grad, go * sizeof(float));
    memcpy(xr + xi, x->dot, xi * sizeof(float));
  }
  s->rows[i] = r + need;
  return 1;
}

void dt_grad_stage_flush(dtGradStage* s) {
  for (int i = 0; s && i < s->count; i++) flush_slot(s, i);
}

void dt_grad_stage_discard(dtGradStage* s) {
  for (int i = 0; s && i < s->count; i++) s->rows[i] = 0;
}

void dt_tape_set_grad_stage(dtTape* t, dtGradStage* s) {
  if (t) t->stage = s;
}
