// SPDX-License-Identifier: MIT
// A stacked LSTM as torch.nn.LSTM (batch_first, zero initial state), unrolled on the tape from
// the core ops, so its derivatives are theirs. Parameter names follow the module's state_dict
// ("<prefix>.weight_ih_l0", ...), so weights go through safetensors unchanged.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "difftop/nn.h"
#include "tensor/tensor_internal.h"

dtStatus dt_lstm_check(const dtLstmSpec* s) {
  if (!s) return dt_error(DT_ERR_ARG, "LSTM spec: NULL");
  if (s->in <= 0) return dt_error(DT_ERR_ARG, "LSTM spec: %d input features (want >= 1)", s->in);
  if (s->hidden <= 0) return dt_error(DT_ERR_ARG, "LSTM spec: hidden %d (want >= 1)", s->hidden);
  if (s->layers < 1 || s->layers > DT_LSTM_MAX_LAYERS)
    return dt_error(DT_ERR_ARG, "LSTM spec: %d layers (1..%d)", s->layers, DT_LSTM_MAX_LAYERS);
  return DT_OK;
}

// one named tensor: added and initialised (rng) or found and shape-checked
static dtTensor* lstm_param(dtParams* ps, const char* prefix, const char* what, int layer,
                            int rows, int cols, dtRng* rng) {
  char name[256];
  snprintf(name, sizeof name, "%s%s%s_l%d", prefix ? prefix : "", prefix && *prefix ? "." : "",
           what, layer);
  int shape[2] = {rows, cols}, ndim = cols ? 2 : 1;
  dtTensor* p = rng ? dt_params_add(ps, name, ndim, shape) : dt_params_find(ps, name);
  if (!p) {
    if (!rng) dt_error(DT_ERR_NOT_FOUND, "LSTM: no parameter '%s'", name);
    return NULL;
  }
  if (p->ndim != ndim || p->shape[0] != rows || (ndim == 2 && p->shape[1] != cols)) {
    dt_error(DT_ERR_SHAPE, "LSTM: parameter '%s' has the wrong shape", name);
    return NULL;
  }
  return p;
}

static dtStatus bind_or_create(dtLstm* net, const dtLstmSpec* spec, dtParams* ps,
                               const char* prefix, dtRng* rng) {
  dtStatus st = dt_lstm_check(spec);
  if (st) return st;
  memset(net, 0, sizeof *net);
  net->spec = *spec;
  int H = spec->hidden;
  float bound = 1.0f / sqrtf((float)H);
  for (int l = 0; l < spec->layers; l++) {
    int in = l ? H : spec->in;
    dtTensor** slots[4] = {&net->w_ih[l], &net->w_hh[l], &net->b_ih[l], &net->b_hh[l]};
    const char* what[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    int cols[4] = {in, H, 0, 0};
    for (int k = 0; k < 4; k++) {
      *slots[k] = lstm_param(ps, prefix, what[k], l, 4 * H, cols[k], rng);
      if (!*slots[k]) return dt_last_status();
      if (rng) dt_init_uniform(*slots[k], -bound, bound, rng);
    }
  }
  return DT_OK;
}

dtStatus dt_lstm_create(dtLstm* net, const dtLstmSpec* spec, dtParams* ps, const char* prefix,
                        dtRng* rng) {
  if (!net || !ps || !rng) return dt_error(DT_ERR_ARG, "dt_lstm_create: NULL argument");
  return bind_or_create(net, spec, ps, prefix, rng);
}

dtStatus dt_lstm_bind(dtLstm* net, const dtLstmSpec* spec, const dtParams* ps, const char* prefix) {
  if (!net || !ps) return dt_error(DT_ERR_ARG, "dt_lstm_bind: NULL argument");
  return bind_or_create(net, spec, (dtParams*)ps, prefix, NULL);
}

// one cell step: updates *h and *c from the step's input x; NULL *h and *c are the zero
// initial state (no recurrent product, no forget term)
static void cell_step(dtTape* t, const dtLstm* net, int l, dtTensor* x, dtTensor** h,
                      dtTensor** c) {
  int H = net->spec.hidden;
  dtTensor* in = dt_linear(t, x, net->w_ih[l], net->b_ih[l]);
  dtTensor* g = *h ? dt_add(t, in, dt_linear(t, *h, net->w_hh[l], net->b_hh[l]))
                   : dt_add(t, in, net->b_hh[l]);
  dtTensor* i = dt_sigmoid(t, dt_slice(t, g, 1, 0, H));
  dtTensor* f = dt_sigmoid(t, dt_slice(t, g, 1, H, H));
  dtTensor* u = dt_tanh(t, dt_slice(t, g, 1, 2 * H, H));
  dtTensor* o = dt_sigmoid(t, dt_slice(t, g, 1, 3 * H, H));
  *c = *c ? dt_add(t, dt_mul(t, f, *c), dt_mul(t, i, u)) : dt_mul(t, i, u);
  *h = dt_mul(t, o, dt_tanh(t, *c));
}

dtTensor* dt_lstm_forward(dtTape* t, const dtLstm* net, dtTensor* x, int steps) {
  if (!t || !net) {
    dt_error(DT_ERR_ARG, "dt_lstm_forward: NULL %s", t ? "net" : "tape");
    return NULL;
  }
  if (!x || dt_tape_status(t)) return NULL;
  const dtLstmSpec* s = &net->spec;
  char b[64];
  if (steps < 1 || steps > DT_LSTM_MAX_STEPS) {
    dt_tape_fail(t, DT_ERR_ARG, "dt_lstm_forward: %d steps (1..%d)", steps, DT_LSTM_MAX_STEPS);
    return NULL;
  }
  if (x->ndim != 2 || x->shape[1] != steps * s->in) {
    dt_tape_fail(t, DT_ERR_SHAPE, "dt_lstm_forward: x %s, want [B, %d] (%d steps of %d)",
                 dt_shape_str(x, b, sizeof b), steps * s->in, steps, s->in);
    return NULL;
  }
  dtTensor* seq[DT_LSTM_MAX_STEPS];
  for (int k = 0; k < steps; k++) seq[k] = dt_slice(t, x, 1, k * s->in, s->in);
  // layer by layer: each layer's h sequence is the next one's input
  dtTensor* h = NULL;
  for (int l = 0; l < s->layers; l++) {
    dtTensor* c = h = NULL;
    for (int k = 0; k < steps; k++) {
      cell_step(t, net, l, seq[k], &h, &c);
      seq[k] = h;
    }
  }
  return dt_tape_status(t) ? NULL : h;
}

double dt_lstm_flops(const dtLstmSpec* s, int steps) {
  if (dt_lstm_check(s)) return 0;
  double H = s->hidden, per = 0;
  for (int l = 0; l < s->layers; l++) per += 4 * H * ((l ? H : s->in) + H) + 10 * H;
  return per * (steps > 0 ? steps : 0);
}

size_t dt_lstm_tape_bytes(const dtLstmSpec* s, int batch, int steps) {
  if (dt_lstm_check(s) || steps < 1) return 0;
  // per step and layer: gates 3 x 4H (two projections, their sum), 4 slices and 4 activations,
  // c's 3 and h's 2 tensors of H; values and adjoints; the input slices
  double H = s->hidden, per_step = 2.0 * (3 * 4 * H + 13 * H) * s->layers + 2.0 * s->in;
  double b = batch > 1 ? batch : 1;
  return (size_t)(1.25 * b * per_step * steps * sizeof(float)) + ((size_t)1 << 20);
}
