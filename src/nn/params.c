// SPDX-License-Identifier: MIT
// Parameter sets: ownership, lookup, gradient norms and clipping, clones and EMA.
#include <math.h>
#include <string.h>

#include "difftop/nn.h"

void dt_params_init(dtParams* ps) { memset(ps, 0, sizeof *ps); }

void dt_params_free(dtParams* ps) {
  if (!ps) return;
  for (int i = 0; i < ps->count; i++) dt_param_free(ps->items[i]);
  dt_free(ps->items);
  memset(ps, 0, sizeof *ps);
}

dtTensor* dt_params_add(dtParams* ps, const char* name, int ndim, const int* shape) {
  if (!ps || !name) {
    dt_error(DT_ERR_ARG, "dt_params_add: NULL set or name");
    return NULL;
  }
  if (dt_params_find(ps, name)) {
    dt_error(DT_ERR_ARG, "dt_params_add: duplicate parameter name '%s'", name);
    return NULL;
  }
  // grow the pointer array geometrically (setup time only)
  if (ps->count == ps->capacity) {
    int cap = ps->capacity ? ps->capacity * 2 : 16;
    dtTensor** items = dt_malloc((size_t)cap * sizeof *items);
    if (!items) return NULL;
    if (ps->count) memcpy(items, ps->items, (size_t)ps->count * sizeof *items);
    dt_free(ps->items);
    ps->items = items;
    ps->capacity = cap;
  }
  dtTensor* p = dt_param_new(name, ndim, shape);
  if (p) ps->items[ps->count++] = p;
  return p;
}

dtTensor* dt_params_find(const dtParams* ps, const char* name) {
  if (!ps || !name) return NULL;
  for (int i = 0; i < ps->count; i++)
    if (!strcmp(ps->items[i]->name, name)) return ps->items[i];
  return NULL;
}

int64_t dt_params_numel(const dtParams* ps) {
  int64_t n = 0;
  for (int i = 0; i < ps->count; i++) n += ps->items[i]->size;
  return n;
}

void dt_params_zero_grad(dtParams* ps) {
  for (int i = 0; i < ps->count; i++) dt_param_zero_grad(ps->items[i]);
}

void dt_params_set_trainable(dtParams* ps, const char* prefix, int on) {
  size_t n = prefix ? strlen(prefix) : 0;
  for (int i = 0; i < ps->count; i++)
    if (!n || !strncmp(ps->items[i]->name, prefix, n)) dt_param_set_trainable(ps->items[i], on);
}

double dt_params_grad_norm(const dtParams* ps) {
  double total = 0;
  for (int i = 0; i < ps->count; i++) {
    const dtTensor* p = ps->items[i];
    for (int64_t k = 0; k < p->size; k++) total += (double)p->grad[k] * p->grad[k];
  }
  return sqrt(total);
}

double dt_params_clip_grad_norm(dtParams* ps, double max_norm) {
  // torch: coef = max_norm / (norm + 1e-6), applied only when below 1
  double norm = dt_params_grad_norm(ps);
  double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    for (int i = 0; i < ps->count; i++) {
      dtTensor* p = ps->items[i];
      for (int64_t k = 0; k < p->size; k++) p->grad[k] = (float)(p->grad[k] * coef);
    }
  }
  return norm;
}

dtStatus dt_params_clone(dtParams* dst, const dtParams* src) {
  dt_params_init(dst);
  for (int i = 0; i < src->count; i++) {
    const dtTensor* s = src->items[i];
    dtTensor* d = dt_params_add(dst, s->name, s->ndim, s->shape);
    if (!d) {
      dt_params_free(dst);
      return dt_last_status();
    }
    memcpy(d->val, s->val, (size_t)s->size * sizeof(float));
    d->flags = (d->flags & ~DT_REQUIRES_GRAD) | (s->flags & DT_REQUIRES_GRAD);
  }
  return DT_OK;
}

dtStatus dt_params_copy_values(dtParams* dst, const dtParams* src) {
  // validate everything before writing anything
  for (int i = 0; i < dst->count; i++) {
    const dtTensor* d = dst->items[i];
    const dtTensor* s = dt_params_find(src, d->name);
    if (!s) return dt_error(DT_ERR_NOT_FOUND, "dt_params_copy_values: source lacks '%s'", d->name);
    if (s->size != d->size)
      return dt_error(DT_ERR_SHAPE, "dt_params_copy_values: '%s' has %lld values, source %lld",
                      d->name, (long long)d->size, (long long)s->size);
  }
  for (int i = 0; i < dst->count; i++) {
    dtTensor* d = dst->items[i];
    memcpy(d->val, dt_params_find(src, d->name)->val, (size_t)d->size * sizeof(float));
  }
  return DT_OK;
}

dtStatus dt_params_ema(dtParams* dst, const dtParams* src, float tau) {
  if (dst->count != src->count)
    return dt_error(DT_ERR_SHAPE, "dt_params_ema: %d target vs %d source parameters",
                    dst->count, src->count);
  for (int i = 0; i < dst->count; i++)
    if (dst->items[i]->size != src->items[i]->size)
      return dt_error(DT_ERR_SHAPE, "dt_params_ema: '%s' size differs from source",
                      dst->items[i]->name);
  // torch lerp_: d + tau (s - d)
  for (int i = 0; i < dst->count; i++) {
    float* d = dst->items[i]->val;
    const float* s = src->items[i]->val;
    for (int64_t k = 0; k < dst->items[i]->size; k++) d[k] += tau * (s[k] - d[k]);
  }
  return DT_OK;
}

int dt_params_grad_nonfinite(const dtParams* ps) {
  for (int i = 0; i < ps->count; i++) {
    const dtTensor* p = ps->items[i];
    for (int64_t k = 0; k < p->size; k++)
      if (!isfinite(p->grad[k])) return 1;
  }
  return 0;
}
