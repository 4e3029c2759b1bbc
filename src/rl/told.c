// SPDX-License-Identifier: MIT
// The TOLD world model (TD-MPC) with DiffTOP's state critics.
#include <string.h>

#include "difftop/rl.h"

// create or bind every network of the model (rng NULL binds to existing parameters)
static dtStatus build(dtTold* m, dtRng* rng) {
  int Z = m->latent_dim, A = m->action_dim, S = m->obs_dim, H = m->mlp_dim;
  struct {
    dtMLP* mlp;
    dtMLPSpec spec;
    const char* name;
  } nets[8];
  int k = 0;
  nets[k++] = (typeof(nets[0])){&m->enc, dt_mlp_spec_elu(S, m->enc_dim, 1, Z), "_encoder"};
  nets[k++] = (typeof(nets[0])){&m->dyn, dt_mlp_spec_elu(Z + A, H, 2, Z), "_dynamics"};
  nets[k++] = (typeof(nets[0])){&m->rew, dt_mlp_spec_elu(Z + A, H, 2, 1), "_reward"};
  nets[k++] = (typeof(nets[0])){&m->pi, dt_mlp_spec_elu(Z, H, 2, A), "_pi"};
  nets[k++] = (typeof(nets[0])){&m->q1, dt_mlp_spec_q(Z + A, H), "_Q1"};
  nets[k++] = (typeof(nets[0])){&m->q2, dt_mlp_spec_q(Z + A, H), "_Q2"};
  if (m->state_critics) {
    nets[k++] = (typeof(nets[0])){&m->qs1, dt_mlp_spec_q(S + A, H), "_Qs1"};
    nets[k++] = (typeof(nets[0])){&m->qs2, dt_mlp_spec_q(S + A, H), "_Qs2"};
  }
  // TD-MPC zeroes the last layer of the reward and every Q
  for (int i = 0; i < k; i++) {
    const char* n = nets[i].name;
    nets[i].spec.zero_last = !strcmp(n, "_reward") || !strncmp(n, "_Q", 2);
    dtStatus st = rng ? dt_mlp_create(nets[i].mlp, &nets[i].spec, &m->params, n, rng)
                      : dt_mlp_bind(nets[i].mlp, &nets[i].spec, &m->params, n);
    if (st) return st;
  }
  return DT_OK;
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
  p->encoder = &m->enc;
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
