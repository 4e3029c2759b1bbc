// SPDX-License-Identifier: MIT
// Adam with torch.optim.Adam's update order and bias corrections (single-tensor path).
#include <math.h>
#include <string.h>

#include "difftop/nn.h"

struct dtAdam {
  dtAdamOpts opts;
  const dtParams* params;
  int count;
  float** exp_avg;
  float** exp_avg_sq;
  int64_t* step;
};

dtAdamOpts dt_adam_default_opts(void) {
  dtAdamOpts o = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
  return o;
}

void dt_adam_free(dtAdam* a) {
  if (!a) return;
  for (int i = 0; i < a->count; i++) {
    if (a->exp_avg) dt_free(a->exp_avg[i]);
    if (a->exp_avg_sq) dt_free(a->exp_avg_sq[i]);
  }
  dt_free(a->exp_avg);
  dt_free(a->exp_avg_sq);
  dt_free(a->step);
  dt_free(a);
}

dtAdam* dt_adam_new(const dtParams* ps, const dtAdamOpts* opts) {
  if (!ps) {
    dt_error(DT_ERR_ARG, "dt_adam_new: parameter set is NULL");
    return NULL;
  }
  dtAdam* a = dt_calloc(1, sizeof *a);
  if (!a) return NULL;
  a->opts = opts ? *opts : dt_adam_default_opts();
  a->params = ps;
  a->count = ps->count;
  a->exp_avg = dt_calloc((size_t)ps->count + 1, sizeof(float*));
  a->exp_avg_sq = dt_calloc((size_t)ps->count + 1, sizeof(float*));
  a->step = dt_calloc((size_t)ps->count + 1, sizeof(int64_t));
  if (!a->exp_avg || !a->exp_avg_sq || !a->step) {
    dt_adam_free(a);
    return NULL;
  }
  for (int i = 0; i < ps->count; i++) {
    a->exp_avg[i] = dt_calloc((size_t)ps->items[i]->size + 1, sizeof(float));
    a->exp_avg_sq[i] = dt_calloc((size_t)ps->items[i]->size + 1, sizeof(float));
    if (!a->exp_avg[i] || !a->exp_avg_sq[i]) {
      dt_adam_free(a);
      return NULL;
    }
  }
  return a;
}

void dt_adam_set_lr(dtAdam* a, float lr) {
  if (a) a->opts.lr = lr;
}

dtStatus dt_adam_state(dtAdam* a, int i, float** exp_avg, float** exp_avg_sq, int64_t** step) {
  if (!a || i < 0 || i >= a->count) return dt_error(DT_ERR_ARG, "dt_adam_state: index %d", i);
  if (exp_avg) *exp_avg = a->exp_avg[i];
  if (exp_avg_sq) *exp_avg_sq = a->exp_avg_sq[i];
  if (step) *step = &a->step[i];
  return DT_OK;
}

dtStatus dt_adam_step(dtAdam* a) {
  if (!a) return dt_error(DT_ERR_ARG, "dt_adam_step: optimizer is NULL");
  if (a->params->count != a->count)
    return dt_error(DT_ERR_STATE, "dt_adam_step: the parameter set changed size (%d -> %d)",
                    a->count, a->params->count);
  const dtAdamOpts* o = &a->opts;
  for (int i = 0; i < a->count; i++) {
    dtTensor* p = a->params->items[i];
    if (!(p->flags & DT_GRAD_TOUCHED) || !(p->flags & DT_REQUIRES_GRAD)) continue;
    int64_t step = ++a->step[i];
    // bias corrections in double, as Python computes them
    double bc1 = 1.0 - pow(o->beta1, (double)step);
    double bc2_sqrt = sqrt(1.0 - pow(o->beta2, (double)step));
    float step_size = (float)(o->lr / bc1);
    float* m = a->exp_avg[i];
    float* v = a->exp_avg_sq[i];
    for (int64_t k = 0; k < p->size; k++) {
      float g = p->grad[k];
      if (o->weight_decay != 0.0f) g += o->weight_decay * p->val[k];
      m[k] = m[k] * o->beta1 + (1.0f - o->beta1) * g;
      v[k] = v[k] * o->beta2 + (1.0f - o->beta2) * g * g;
      float denom = sqrtf(v[k]) / (float)bc2_sqrt + o->eps;
      p->val[k] -= step_size * m[k] / denom;
    }
  }
  return DT_OK;
}
