// SPDX-License-Identifier: MIT
// Experts for demonstrations: analytic controllers that read the true MuJoCo state.
//  cartpole-swingup(-sparse), cartpole-balance(-sparse): energy-shaping swing-up, then LQR
//  pendulum-swingup: energy pumping under the 1 Nm limit, then LQR
//  reacher-easy/hard: inverse kinematics plus joint-space PD
// The LQR gains come from the simulator itself: mjd_transitionFD at the upright state of a private
// copy of the task, raised to the env's action repeat (zero-order hold), then a discrete Riccati
// iteration.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "envs/dmc_internal.h"
#include "envs/env_internal.h"

#ifdef DT_HAVE_MUJOCO

enum { EX_CARTPOLE, EX_PENDULUM, EX_REACHER };

static const struct {
  const char* name;
  int kind;
} expert_table[] = {
    {"cartpole-swingup", EX_CARTPOLE},  {"cartpole-swingup-sparse", EX_CARTPOLE},
    {"cartpole-balance", EX_CARTPOLE},  {"cartpole-balance-sparse", EX_CARTPOLE},
    {"pendulum-swingup", EX_PENDULUM},  {"reacher-easy", EX_REACHER},
    {"reacher-hard", EX_REACHER},
};
#define N_EXPERTS ((int)(sizeof expert_table / sizeof expert_table[0]))

struct dtExpert {
  int kind;
  const char* name;
  dtRng rng;
  int lqr_ar;       // action repeat the gains were computed for (0: none yet)
  double K[8];      // u = -K x, x = [dq (nv), qvel (nv)] about the upright state
};

static const char* expert_names[N_EXPERTS + 1];

const char* const* dt_expert_names(void) {
  for (int i = 0; i < N_EXPERTS; i++) expert_names[i] = expert_table[i].name;
  expert_names[N_EXPERTS] = NULL;
  return expert_names;
}

dtStatus dt_expert_new(const char* env_name, uint64_t seed, dtExpert** out) {
  if (!out || !env_name) return dt_error(DT_ERR_ARG, "dt_expert_new: env_name or expert is NULL");
  *out = NULL;
  int kind = -1;
  for (int i = 0; i < N_EXPERTS; i++)
    if (!strcmp(expert_table[i].name, env_name)) kind = expert_table[i].kind;
  if (kind < 0) {
    char list[512];
    size_t len = 0;
    list[0] = 0;
    for (int i = 0; i < N_EXPERTS; i++) {
      int w = snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", expert_table[i].name);
      if (w > 0 && (size_t)w < sizeof list - len) len += (size_t)w;
    }
    return dt_error(DT_ERR_NOT_FOUND, "dt_expert_new: no expert for '%s' (experts: %s)", env_name, list);
  }
  dtExpert* ex = dt_calloc(1, sizeof *ex);
  if (!ex) return DT_ERR_NOMEM;
  ex->kind = kind;
  for (int i = 0; i < N_EXPERTS; i++)
    if (!strcmp(expert_table[i].name, env_name)) ex->name = expert_table[i].name;
  dt_rng_seed(&ex->rng, seed);
  *out = ex;
  return DT_OK;
}

void dt_expert_free(dtExpert* ex) { dt_free(ex); }

//---------------------------------------------------------------------------------------------
// LQR for one input about qpos = qvel = 0, with the action held for ar control steps

// C = A B for n x n matrices (row-major)
static void matmul(int n, const double* A, const double* B, double* C) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int k = 0; k < n; k++) s += A[i * n + k] * B[k * n + j];
      C[i * n + j] = s;
    }
}

static dtStatus lqr_gains(dtExpert* ex, const char* task, int ar, const double* Q, double R) {
  dtEnv* env = NULL;
  dtEnvOpts o = dt_env_default_opts();
  dtStatus st = dt_env_make(task, &o, &env);
  if (st) return st;
  const mjModel* m;
  mjData* d;
  dt_dmc_physics(env, &m, &d);
  int nv = m->nv, n = 2 * nv;
  if (n > 8 || m->nu != 1 || m->na) {
    dt_env_free(env);
    return dt_error(DT_ERR_INTERNAL, "dt_expert: LQR needs one input and at most 4 dofs (%s)", task);
  }
  // one physics step's linearisation, chained over the substeps of a control step and the repeat
  double A1[64], B1[8], A[64], B[8], T[64];
  mj_resetData(m, d);
  mju_zero(d->qpos, m->nq);
  mju_zero(d->qvel, nv);
  d->ctrl[0] = 0;
  mj_forward(m, d);
  mjd_transitionFD(m, d, 1e-6, 1, A1, B1, NULL, NULL);
  double ts = m->opt.timestep;
  int nsub = 1;
  if (!strncmp(task, "cartpole", 8)) nsub = (int)lround(0.01 / ts);
  if (!strncmp(task, "pendulum", 8)) nsub = (int)lround(0.02 / ts);
  int steps = nsub * ar;
  // x_{k+steps} = A1^steps x + (sum_i A1^i) B1 u
  memset(A, 0, sizeof A);
  for (int i = 0; i < n; i++) A[i * n + i] = 1;
  double S[8] = {0};
  for (int s = 0; s < steps; s++) {
    for (int i = 0; i < n; i++) {
      double v = 0;
      for (int k = 0; k < n; k++) v += A[i * n + k] * B1[k];
      S[i] += v;
    }
    matmul(n, A1, A, T);
    memcpy(A, T, sizeof(double) * (size_t)(n * n));
  }
  memcpy(B, S, sizeof S);
  // Riccati iteration in Joseph form: K = (R + B'PB)^-1 B'PA, P = Q + K'RK + (A-BK)'P(A-BK)
  double P[64], PA[64], K[8], M[64] = {0}, PM[64];
  memset(P, 0, sizeof P);
  for (int i = 0; i < n; i++) P[i * n + i] = Q[i];
  for (int it = 0; it < 10000; it++) {
    matmul(n, P, A, PA);
    double s = R;
    for (int i = 0; i < n; i++)
      for (int k = 0; k < n; k++) s += B[i] * P[i * n + k] * B[k];
    for (int j = 0; j < n; j++) {
      double v = 0;
      for (int k = 0; k < n; k++) v += B[k] * PA[k * n + j];
      K[j] = v / s;
    }
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) M[i * n + j] = A[i * n + j] - B[i] * K[j];
    matmul(n, P, M, PM);
    double diff = 0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double v = (i == j ? Q[i] : 0) + K[i] * R * K[j];
        for (int k = 0; k < n; k++) v += M[k * n + i] * PM[k * n + j];
        diff = fmax(diff, fabs(v - P[i * n + j]));
        T[i * n + j] = v;
      }
    memcpy(P, T, sizeof(double) * (size_t)(n * n));
    if (diff < 1e-10) break;
  }
  memcpy(ex->K, K, sizeof(double) * (size_t)n);
  ex->lqr_ar = ar;
  dt_env_free(env);
  return DT_OK;
}

static double clip1(double u) { return u < -1 ? -1 : u > 1 ? 1 : u; }

static double wrap(double a) { return atan2(sin(a), cos(a)); }

//---------------------------------------------------------------------------------------------
// the controllers

static dtStatus act_cartpole(dtExpert* ex, const mjModel* m, const mjData* d, int ar, float* action) {
  if (ex->lqr_ar != ar) {
    const double Q[4] = {1, 10, 0.1, 0.1};
    dtStatus st = lqr_gains(ex, "cartpole-swingup", ar, Q, 1.0);
    if (st) return st;
  }
  double x = d->qpos[0], th = wrap(d->qpos[1]), xd = d->qvel[0], thd = d->qvel[1];
  int pole = m->jnt_bodyid[1];
  double mp = m->body_mass[pole], lc = m->body_ipos[3 * pole + 2];
  double ip = m->body_inertia[3 * pole + 1] + mp * lc * lc;
  double g = -m->opt.gravity[2];
  double u;
  if (cos(th) > cos(30.0 * M_PI / 180.0)) {
    // balance
    double s[4] = {x, th, xd, thd};
    u = 0;
    for (int i = 0; i < 4; i++) u -= ex->K[i] * s[i];
  } else {
    // swing-up: drive the pole's energy to the upright value, keep the cart near the centre
    double e = 0.5 * ip * thd * thd + mp * g * lc * (cos(th) - 1);
    double xdd = 8.0 * e * thd * cos(th) - 1.0 * x - 1.0 * xd;
    double mass = m->body_mass[m->jnt_bodyid[0]] + mp;
    u = mass * xdd / m->actuator_gear[0];
  }
  action[0] = (float)clip1(u);
  return DT_OK;
}

static dtStatus act_pendulum(dtExpert* ex, const mjModel* m, const mjData* d, int ar, float* action) {
  if (ex->lqr_ar != ar) {
    const double Q[2] = {10, 1};
    dtStatus st = lqr_gains(ex, "pendulum-swingup", ar, Q, 0.1);
    if (st) return st;
  }
  double th = wrap(d->qpos[0]), w = d->qvel[0];
  int bob = m->jnt_bodyid[0];
  double mass = m->body_mass[bob], l = m->body_ipos[3 * bob + 2];
  double ip = m->body_inertia[3 * bob + 1] + mass * l * l;
  double g = -m->opt.gravity[2];
  double e = 0.5 * ip * w * w + mass * g * l * (cos(th) - 1);
  double u;
  // catch within 20 degrees of upright (gravity torque there is 1.7 Nm, just above the limit)
  if (cos(th) > cos(20.0 * M_PI / 180.0) && fabs(e) < 1.0) {
    u = -(ex->K[0] * th + ex->K[1] * w);
  } else {
    // pump energy with full torque along the motion, aiming a little above the upright energy
    const double target = 0.3;
    u = (e < target ? 1.0 : -1.0) * (w >= 0 ? 1.0 : -1.0);
    if (fabs(w) < 1e-3) u = 1.0;
  }
  action[0] = (float)clip1(u);
  return DT_OK;
}

static dtStatus act_reacher(const mjModel* m, const mjData* d, float* action) {
  // target in the arm's frame (the arm turns about the world origin)
  double tx = d->mocap_pos[0], ty = d->mocap_pos[1];
  const double l1 = .12, l2 = .12;
  double r2 = tx * tx + ty * ty;
  double c2 = (r2 - l1 * l1 - l2 * l2) / (2 * l1 * l2);
  c2 = c2 < -1 ? -1 : c2 > 1 ? 1 : c2;
  double q2 = acos(c2);
  double lim = m->jnt_range[2 * 1 + 1] - 0.02;
  if (q2 > lim) q2 = lim;
  // the elbow solution nearer the current wrist angle
  if (d->qpos[1] < 0) q2 = -q2;
  double q1 = atan2(ty, tx) - atan2(l2 * sin(q2), l1 + l2 * cos(q2));
  double e1 = wrap(q1 - d->qpos[0]), e2 = q2 - d->qpos[1];
  // the wrist's velocity settles to about 5 rad/s per unit action within 20 ms (damping 0.01 on
  // a tiny inertia), so a large derivative gain would feed back positively across a 4-step hold
  const double kp = 1.5, kd = 0.03;
  action[0] = (float)clip1(kp * e1 - kd * d->qvel[0]);
  action[1] = (float)clip1(kp * e2 - kd * d->qvel[1]);
  return DT_OK;
}

dtStatus dt_expert_act(dtExpert* ex, const dtEnv* env, float* action) {
  if (!ex || !env || !action) return dt_error(DT_ERR_ARG, "dt_expert_act: expert, env or action is NULL");
  const char* name = dt_env_name(env);
  int kind = -1;
  for (int i = 0; i < N_EXPERTS; i++)
    if (!strcmp(expert_table[i].name, name)) kind = expert_table[i].kind;
  const mjModel* m;
  mjData* d;
  if (kind != ex->kind || !dt_dmc_physics(env, &m, &d))
    return dt_error(DT_ERR_ARG, "dt_expert_act: the '%s' expert cannot drive a '%s' env", ex->name, name);
  int ar = dt_env_action_repeat(env);
  switch (ex->kind) {
    case EX_CARTPOLE: return act_cartpole(ex, m, d, ar, action);
    case EX_PENDULUM: return act_pendulum(ex, m, d, ar, action);
    default: return act_reacher(m, d, action);
  }
}

#else  // no MuJoCo: no experts

struct dtExpert {
  int unused;
};

const char* const* dt_expert_names(void) {
  static const char* none[1] = {NULL};
  return none;
}

dtStatus dt_expert_new(const char* env_name, uint64_t seed, dtExpert** out) {
  (void)seed;
  if (out) *out = NULL;
  return dt_error(DT_ERR_UNSUPPORTED, "dt_expert_new: no expert for '%s' in a build without MuJoCo",
                  env_name ? env_name : "(null)");
}

void dt_expert_free(dtExpert* ex) { (void)ex; }

dtStatus dt_expert_act(dtExpert* ex, const dtEnv* env, float* action) {
  (void)ex, (void)env, (void)action;
  return dt_error(DT_ERR_UNSUPPORTED, "dt_expert_act: built without MuJoCo");
}

#endif
