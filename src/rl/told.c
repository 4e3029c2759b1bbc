// SPDX-License-Identifier: MIT
// The TOLD world model (TD-MPC) with DiffTOP's state critics.
#include <string.h>

#include "difftop/rl.h"

// the conv encoders of pixel mode: h as "_encoder", the state critics' as "_Qs<i>_enc";
// created in the order of the official module (encoder first; the critics' after theirs)
static dtStatus build_conv(dtTold* m, dtConvNet* net, const char* name, int channels,
                           dtRng* rng) {
  dtConvNetSpec s = dt_convnet_spec_tdmpc(m->obs_shape[0], m->obs_shape[1], channels,
                                          m->latent_dim);
  s.in_w = m->obs_shape[2];
  return rng ? dt_convnet_create(net, &s, &m->params, name, rng)
             : dt_convnet_bind(net, &s, &m->params, name);
}

// create or bind every network of the model (rng NULL binds to existing parameters)
static dtStatus build(dtTold* m, dtRng* rng) {
  int Z = m->latent_dim, A = m->action_dim, S = m->obs_dim, H = m->mlp_dim;
  // pixel mode: the state critics' heads take [feature (Z), a]
  int qs_in = m->pixels ? Z : S;
  int channels = m->pixels ? m->cenc.spec.channels[0] : 0;
  struct {
    dtMLP* mlp;
    dtMLPSpec spec;
    const char* name;
  } nets[8];
  int k = 0;
  dtStatus st;
  if (m->pixels) {
    if ((st = build_conv(m, &m->cenc, "_encoder", channels, rng))) return st;
  } else {
    nets[k++] = (typeof(nets[0])){&m->enc, dt_mlp_spec_elu(S, m->enc_dim, 1, Z), "_encoder"};
  }
  nets[k++] = (typeof(nets[0])){&m->dyn, dt_mlp_spec_elu(Z + A, H, 2, Z), "_dynamics"};
  nets[k++] = (typeof(nets[0])){&m->rew, dt_mlp_spec_elu(Z + A, H, 2, 1), "_reward"};
  nets[k++] = (typeof(nets[0])){&m->pi, dt_mlp_spec_elu(Z, H, 2, A), "_pi"};
  nets[k++] = (typeof(nets[0])){&m->q1, dt_mlp_spec_q(Z + A, H), "_Q1"};
  nets[k++] = (typeof(nets[0])){&m->q2, dt_mlp_spec_q(Z + A, H), "_Q2"};
  if (m->state_critics) {
    nets[k++] = (typeof(nets[0])){&m->qs1, dt_mlp_spec_q(qs_in + A, H), "_Qs1"};
    nets[k++] = (typeof(nets[0])){&m->qs2, dt_mlp_spec_q(qs_in + A, H), "_Qs2"};
  }
  // TD-MPC zeroes the last layer of the reward and every Q
  for (int i = 0; i < k; i++) {
    const char* n = nets[i].name;
    nets[i].spec.zero_last = !strcmp(n, "_reward") || !strncmp(n, "_Q", 2);
    // pixel mode: each state critic's own conv encoder comes before its head
    if (m->pixels && !strcmp(n, "_Qs1") && (st = build_conv(m, &m->cqs1, "_Qs1_enc", channels, rng)))
      return st;
    if (m->pixels && !strcmp(n, "_Qs2") && (st = build_conv(m, &m->cqs2, "_Qs2_enc", channels, rng)))
      return st;
    st = rng ? dt_mlp_create(nets[i].mlp, &nets[i].spec, &m->params, n, rng)
             : dt_mlp_bind(nets[i].mlp, &nets[i].spec, &m->params, n);
    if (st) return st;
  }
  return DT_OK;
}

dtTensor* dt_told_encode(dtTape* t, const dtTold* m, dtTensor* obs) {
  return m->pixels ? dt_convnet_forward(t, &m->cenc, obs) : dt_mlp_forward(t, &m->enc, obs);
}

dtTensor* dt_told_state_q(dtTape* t, const dtTold* m, int which, dtTensor* obs,
                          dtTensor* action) {
  const dtMLP* head = which == 2 ? &m->qs2 : &m->qs1;
  dtTensor* f = m->pixels ? dt_convnet_forward(t, which == 2 ? &m->cqs2 : &m->cqs1, obs) : obs;
  return dt_mlp_forward(t, head, dt_concat(t, f, action, -1));
}

dtStatus dt_told_create(dtTold* m, int obs_dim, int action_dim, const dtRLConfig* cfg,
                        int state_critics, dtRng* rng) {
  if (!m || !cfg || !rng) return dt_error(DT_ERR_ARG, "dt_told_create: NULL argument");
  if (obs_dim < 1 || action_dim < 1)
    return dt_error(DT_ERR_ARG, "dt_told_create: obs_dim %d, action_dim %d", obs_dim, action_dim);
  memset(m, 0, sizeof *m);
  m->obs_dim = obs_dim;
  m->action_dim = action_dim;
  m->latent_dim = cfg->latent_dim;
  m->mlp_dim = cfg->mlp_dim;
  m->enc_dim = cfg->enc_dim;
  m->state_critics = state_critics;
  if (cfg->obs == DT_OBS_PIXELS) {
    int C = 3 * cfg->frame_stack, S = cfg->img_size;
    if (cfg->frame_stack < 1 || S < 1 || cfg->num_channels < 1 || (int64_t)C * S * S != obs_dim)
      return dt_error(DT_ERR_ARG, "dt_told_create: pixel observations of %d values do not match "
                      "frame_stack %d x 3 channels x %dx%d images", obs_dim, cfg->frame_stack, S,
                      S);
    m->pixels = 1;
    m->obs_shape[0] = C, m->obs_shape[1] = S, m->obs_shape[2] = S;
    m->cenc.spec.channels[0] = cfg->num_channels;  // read by build()
  }
  dt_params_init(&m->params);
  dtStatus st = build(m, rng);
  if (st) dt_told_free(m);
  return st;
}

dtStatus dt_told_clone(dtTold* dst, const dtTold* src) {
  *dst = *src;
  dtStatus st = dt_params_clone(&dst->params, &src->params);
  if (st) return st;
  st = build(dst, NULL);
  if (st) dt_told_free(dst);
  return st;
}

void dt_told_free(dtTold* m) {
  if (m) dt_params_free(&m->params);
}

void dt_told_plan(const dtTold* m, int horizon, float gamma, dtLatentPlan* p) {
  memset(p, 0, sizeof *p);
  p->horizon = horizon;
  p->action_dim = m->action_dim;
  p->latent_dim = m->latent_dim;
  p->gamma = gamma;
  p->terminal = DT_TERMINAL_PI;
  p->encoder = m->pixels ? NULL : &m->enc;
  p->conv_encoder = m->pixels ? &m->cenc : NULL;
  p->dynamics = &m->dyn;
  p->reward = &m->rew;
  p->q1 = &m->q1;
  p->q2 = &m->q2;
  p->pi = &m->pi;
  p->clip_lo = -1.0f;
  p->clip_hi = 1.0f;
  p->x_dim = m->obs_dim;
  p->params = (dtParams*)&m->params;
}
