// SPDX-License-Identifier: MIT
// MLPs built from Linear, LayerNorm and activations, named as torch.nn.Sequential.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "difftop/nn.h"

dtMLPSpec dt_mlp_spec_elu(int in, int hidden, int hidden_layers, int out) {
  dtMLPSpec s;
  memset(&s, 0, sizeof s);
  s.layers = hidden_layers + 1;
  s.dims[0] = in;
  for (int i = 0; i < hidden_layers; i++) {
    s.dims[i + 1] = hidden;
    s.act[i] = DT_ACT_ELU;
  }
  s.dims[s.layers] = out;
  s.init = DT_INIT_ORTHOGONAL;
  return s;
}

dtMLPSpec dt_mlp_spec_q(int in, int hidden) {
  dtMLPSpec s = dt_mlp_spec_elu(in, hidden, 2, 1);
  s.layernorm[0] = 1;
  s.act[0] = DT_ACT_TANH;
  return s;
}

static dtStatus check_spec(const dtMLPSpec* s) {
  if (s->layers < 1 || s->layers > DT_MLP_MAX_LAYERS)
    return dt_error(DT_ERR_ARG, "MLP spec: %d layers (1..%d)", s->layers, DT_MLP_MAX_LAYERS);
  for (int i = 0; i <= s->layers; i++)
    if (s->dims[i] <= 0) return dt_error(DT_ERR_ARG, "MLP spec: dims[%d] = %d", i, s->dims[i]);
  return DT_OK;
}

// torch.nn.Sequential index of each Linear and LayerNorm: activations take an index too
static void module_indices(const dtMLPSpec* s, int* lin_idx, int* ln_idx) {
  int k = 0;
  for (int i = 0; i < s->layers; i++) {
    lin_idx[i] = k++;
    ln_idx[i] = s->layernorm[i] ? k++ : -1;
    if (s->act[i] != DT_ACT_NONE) k++;
  }
}

static dtStatus bind_or_create(dtMLP* mlp, const dtMLPSpec* spec, dtParams* ps,
                               const char* prefix, dtRng* rng) {
  dtStatus st = check_spec(spec);
  if (st) return st;
  memset(mlp, 0, sizeof *mlp);
  mlp->spec = *spec;
  int lin[DT_MLP_MAX_LAYERS], ln[DT_MLP_MAX_LAYERS];
  module_indices(spec, lin, ln);
  char name[256];
  for (int i = 0; i < spec->layers; i++) {
    int in = spec->dims[i], out = spec->dims[i + 1];
    int wshape[2] = {out, in}, bshape[1] = {out};
    dtTensor** slots[4] = {&mlp->weight[i], &mlp->bias[i], &mlp->ln_gain[i], &mlp->ln_bias[i]};
    const char* suffix[4] = {"weight", "bias", "weight", "bias"};
    for (int k = 0; k < 4; k++) {
      int idx = k < 2 ? lin[i] : ln[i];
      if (idx < 0) continue;
      snprintf(name, sizeof name, "%s%s%d.%s", prefix ? prefix : "", prefix && *prefix ? "." : "",
               idx, suffix[k]);
      const int* shape = k == 0 ? wshape : bshape;
      int ndim = k == 0 ? 2 : 1;
      dtTensor* p = rng ? dt_params_add(ps, name, ndim, shape) : dt_params_find(ps, name);
      if (!p) return rng ? dt_last_status() : dt_error(DT_ERR_NOT_FOUND, "MLP: no parameter '%s'", name);
      if (p->ndim != ndim || p->shape[0] != shape[0] || (ndim == 2 && p->shape[1] != in))
        return dt_error(DT_ERR_SHAPE, "MLP: parameter '%s' has the wrong shape", name);
      *slots[k] = p;
    }
    if (!rng) continue;
    // initialise: LayerNorm gain 1, bias 0; Linear per the spec
    if (mlp->ln_gain[i]) dt_init_constant(mlp->ln_gain[i], 1.0f);
    if (mlp->ln_bias[i]) dt_init_constant(mlp->ln_bias[i], 0.0f);
    if (spec->zero_last && i == spec->layers - 1) {
      dt_init_constant(mlp->weight[i], 0.0f);
      dt_init_constant(mlp->bias[i], 0.0f);
    } else if (spec->init == DT_INIT_ORTHOGONAL) {
      st = dt_init_orthogonal(mlp->weight[i], 1.0f, rng);
      if (st) return st;
      dt_init_constant(mlp->bias[i], 0.0f);
    } else {
      float bound = 1.0f / sqrtf((float)in);
      dt_init_uniform(mlp->weight[i], -bound, bound, rng);
      dt_init_uniform(mlp->bias[i], -bound, bound, rng);
    }
  }
  return DT_OK;
}

dtStatus dt_mlp_create(dtMLP* mlp, const dtMLPSpec* spec, dtParams* ps, const char* prefix,
                       dtRng* rng) {
  if (!mlp || !spec || !ps || !rng) return dt_error(DT_ERR_ARG, "dt_mlp_create: NULL argument");
  return bind_or_create(mlp, spec, ps, prefix, rng);
}

dtStatus dt_mlp_bind(dtMLP* mlp, const dtMLPSpec* spec, const dtParams* ps, const char* prefix) {
  if (!mlp || !spec || !ps) return dt_error(DT_ERR_ARG, "dt_mlp_bind: NULL argument");
  return bind_or_create(mlp, spec, (dtParams*)ps, prefix, NULL);
}

static dtTensor* activate(dtTape* t, dtTensor* x, dtAct act) {
  switch (act) {
    case DT_ACT_ELU: return dt_elu(t, x);
    case DT_ACT_RELU: return dt_relu(t, x);
    case DT_ACT_TANH: return dt_tanh(t, x);
    case DT_ACT_SIGMOID: return dt_sigmoid(t, x);
    case DT_ACT_NONE: break;
  }
  return x;
}

dtTensor* dt_mlp_forward(dtTape* t, const dtMLP* mlp, dtTensor* x) {
  const dtMLPSpec* s = &mlp->spec;
  for (int i = 0; i < s->layers; i++) {
    x = dt_linear(t, x, mlp->weight[i], mlp->bias[i]);
    if (s->layernorm[i]) x = dt_layernorm(t, x, mlp->ln_gain[i], mlp->ln_bias[i], 1e-5f);
    x = activate(t, x, s->act[i]);
  }
  return x;
}

double dt_mlp_flops(const dtMLPSpec* s) {
  double f = 0;
  for (int i = 0; i < s->layers; i++) f += 2.0 * s->dims[i] * s->dims[i + 1];
  return f;
}
