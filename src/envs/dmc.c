// SPDX-License-Identifier: MIT
// DeepMind-Control-style tasks on MuJoCo 2.2.2: our own MJCF models (assets/mjcf), DMC's
// rewards, observation layouts and initial-state distributions, and OSMesa offscreen rendering.
#ifdef DT_HAVE_MUJOCO

#include <GL/osmesa.h>
#include <math.h>
#include <mujoco/mujoco.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envs/dmc_internal.h"
#include "envs/env_internal.h"

//---------------------------------------------------------------------------------------------
// MuJoCo error handling: errors longjmp back to the guarded call, warnings are kept quietly

static _Thread_local jmp_buf* mj_guard;
static _Thread_local char mj_message[512];
static pthread_once_t mj_handlers_once = PTHREAD_ONCE_INIT;

static void mj_on_error(const char* msg) {
  snprintf(mj_message, sizeof mj_message, "%s", msg);
  if (mj_guard) longjmp(*mj_guard, 1);
}

static void mj_on_warning(const char* msg) { snprintf(mj_message, sizeof mj_message, "%s", msg); }

static void mj_install_handlers(void) {
  mju_user_error = mj_on_error;
  mju_user_warning = mj_on_warning;
}

void dt_mj_install_handlers(void) { pthread_once(&mj_handlers_once, mj_install_handlers); }

//---------------------------------------------------------------------------------------------
// DMC's tolerance function

enum { SIG_GAUSSIAN, SIG_LINEAR, SIG_QUADRATIC };

double dt_dmc_tolerance(double x, double lo, double hi, double margin, int sigmoid, double vmargin) {
  if (lo <= x && x <= hi) return 1.0;
  if (margin <= 0) return 0.0;
  double d = (x < lo ? lo - x : x - hi) / margin;
  switch (sigmoid) {
    case SIG_LINEAR: {
      double s = d * (1.0 - vmargin);
      return fabs(s) < 1 ? 1.0 - s : 0.0;
    }
    case SIG_QUADRATIC: {
      double s = d * sqrt(1.0 - vmargin);
      return fabs(s) < 1 ? 1.0 - s * s : 0.0;
    }
    default: {
      double s = sqrt(-2.0 * log(vmargin));
      return exp(-0.5 * (d * s) * (d * s));
    }
  }
}

// gaussian tolerance with DMC's default value_at_margin 0.1
static double tol_g(double x, double lo, double hi, double margin) {
  return dt_dmc_tolerance(x, lo, hi, margin, SIG_GAUSSIAN, 0.1);
}

//---------------------------------------------------------------------------------------------
// the task table

enum dmcKind {
  K_CARTPOLE, K_PENDULUM, K_REACHER, K_FINGER_SPIN, K_FINGER_TURN, K_CUP, K_CHEETAH, K_WALKER,
  K_HOPPER, K_ACROBOT
};

typedef struct dmcSpec {
  const char* xml;   // file under assets/mjcf
  int kind;
  int nsub;          // physics steps per control step
  int obs_dim;
  double param;      // cartpole: 1 swingup; reacher: target size; finger: target radius; walker: speed
  int sparse;        // cartpole, acrobot: sparse reward; hopper: 1 = hop
} dmcSpec;

// one row per task; the order matches dt_dmc_tasks below
static const dmcSpec specs[] = {
    {"cartpole.xml", K_CARTPOLE, 1, 5, 0, 0},       // cartpole-balance
    {"cartpole.xml", K_CARTPOLE, 1, 5, 0, 1},       // cartpole-balance-sparse
    {"cartpole.xml", K_CARTPOLE, 1, 5, 1, 0},       // cartpole-swingup
    {"cartpole.xml", K_CARTPOLE, 1, 5, 1, 1},       // cartpole-swingup-sparse
    {"pendulum.xml", K_PENDULUM, 1, 3, 0, 0},       // pendulum-swingup
    {"reacher.xml", K_REACHER, 1, 6, .05, 0},       // reacher-easy
    {"reacher.xml", K_REACHER, 1, 6, .015, 0},      // reacher-hard
    {"finger.xml", K_FINGER_SPIN, 2, 9, 0, 0},      // finger-spin
    {"finger.xml", K_FINGER_TURN, 2, 12, .07, 0},   // finger-turn-easy
    {"finger.xml", K_FINGER_TURN, 2, 12, .03, 0},   // finger-turn-hard
    {"ball_in_cup.xml", K_CUP, 10, 8, 0, 0},        // cup-catch
    {"cheetah.xml", K_CHEETAH, 1, 17, 0, 0},        // cheetah-run
    {"walker.xml", K_WALKER, 10, 24, 0, 0},         // walker-stand
    {"walker.xml", K_WALKER, 10, 24, 1, 0},         // walker-walk
    {"walker.xml", K_WALKER, 10, 24, 8, 0},         // walker-run
    {"hopper.xml", K_HOPPER, 4, 15, 0, 0},          // hopper-stand
    {"hopper.xml", K_HOPPER, 4, 15, 0, 1},          // hopper-hop
    {"acrobot.xml", K_ACROBOT, 1, 6, 0, 0},         // acrobot-swingup
    {"acrobot.xml", K_ACROBOT, 1, 6, 0, 1},         // acrobot-swingup-sparse
};

//---------------------------------------------------------------------------------------------
// per-env state

typedef struct dmcGl {
  OSMesaContext ctx;
  unsigned char* buf;   // OSMesa's default framebuffer (unused by MuJoCo's offscreen FBO)
  int bw, bh;           // offscreen buffer size
  unsigned char* tmp;   // bottom-up readback
  mjvScene scn;
  mjvCamera cam;
  mjvOption opt;
  mjvPerturb pert;
  mjrContext con;
} dmcGl;

typedef struct dmcTask {
  const dmcSpec* spec;
  mjModel* m;
  mjData* d;
  int rk4;
  int id[8];            // body/geom/site/joint/sensor ids, per kind
  int shadows, msaa;
  dmcGl* gl;
} dmcTask;

//---------------------------------------------------------------------------------------------
// assets

// find assets/mjcf/<file>: $DT_ASSET_DIR, the install dir, $DT_SOURCE_DIR/assets, the source tree
static dtStatus find_asset(const char* file, char* path, size_t size) {
  const char* dirs[4];
  const char* subs[4];
  int n = 0;
  const char* env_assets = getenv("DT_ASSET_DIR");
  const char* env_source = getenv("DT_SOURCE_DIR");
  if (env_assets && *env_assets) dirs[n] = env_assets, subs[n++] = "";
#ifdef DT_ASSET_DIR
  dirs[n] = DT_ASSET_DIR, subs[n++] = "";
#endif
  if (env_source && *env_source) dirs[n] = env_source, subs[n++] = "/assets";
#ifdef DT_SOURCE_DIR
  dirs[n] = DT_SOURCE_DIR, subs[n++] = "/assets";
#endif
  char tried[1024];
  size_t len = 0;
  tried[0] = 0;
  for (int i = 0; i < n; i++) {
    snprintf(path, size, "%s%s/mjcf/%s", dirs[i], subs[i], file);
    if (access(path, R_OK) == 0) return DT_OK;
    int w = snprintf(tried + len, sizeof tried - len, "%s%s", len ? ", " : "", path);
    if (w > 0 && (size_t)w < sizeof tried - len) len += (size_t)w;
  }
  return dt_error(DT_ERR_IO, "dmc: model file '%s' not found (tried %s; set DT_ASSET_DIR)", file,
                  len ? tried : "nothing");
}

//---------------------------------------------------------------------------------------------
// physics helpers

// DMC's legacy step: mj_step2 finishes the step that the last mj_step1 began (Euler), RK4 takes
// whole steps; a final mj_step1 brings positions and velocities up to date for observations
static void physics_step(dmcTask* t, int n) {
  if (t->rk4) {
    for (int i = 0; i < n; i++) mj_step(t->m, t->d);
  } else {
    mj_step2(t->m, t->d);
    for (int i = 1; i < n; i++) mj_step(t->m, t->d);
  }
  mj_step1(t->m, t->d);
}

static double unif(dtRng* rng, double lo, double hi) { return lo + (hi - lo) * dt_rng_uniform(rng); }

// DMC's randomize_limited_and_rotational_joints for hinge and slide joints
static void randomize_joints(const mjModel* m, mjData* d, dtRng* rng) {
  for (int j = 0; j < m->njnt; j++) {
    int adr = m->jnt_qposadr[j];
    double lo = m->jnt_range[2 * j], hi = m->jnt_range[2 * j + 1];
    if (m->jnt_type[j] == mjJNT_HINGE) {
      d->qpos[adr] = m->jnt_limited[j] ? unif(rng, lo, hi) : unif(rng, -M_PI, M_PI);
    } else if (m->jnt_type[j] == mjJNT_SLIDE && m->jnt_limited[j]) {
      d->qpos[adr] = unif(rng, lo, hi);
    }
  }
}

static int id_of(const mjModel* m, int type, const char* name, int* ok) {
  int id = mj_name2id(m, type, name);
  if (id < 0) *ok = 0;
  return id;
}

//---------------------------------------------------------------------------------------------
// rendering (OSMesa, one context per env)

static void gl_free(dmcGl* gl) {
  if (!gl) return;
  if (gl->ctx) {
    OSMesaMakeCurrent(gl->ctx, gl->buf, GL_UNSIGNED_BYTE, gl->bw, gl->bh);
    mjr_freeContext(&gl->con);
    mjv_freeScene(&gl->scn);
    OSMesaMakeCurrent(NULL, NULL, GL_UNSIGNED_BYTE, 0, 0);
    OSMesaDestroyContext(gl->ctx);
  }
  free(gl->buf);
  free(gl->tmp);
  free(gl);
}

static dtStatus gl_new(dmcTask* t, int w, int h, dmcGl** out) {
  *out = NULL;
  dmcGl* gl = calloc(1, sizeof *gl);
  if (!gl) return dt_error(DT_ERR_NOMEM, "dmc render: out of memory");
  gl->bw = w;
  gl->bh = h;
  gl->buf = malloc((size_t)w * h * 4);
  gl->tmp = malloc((size_t)w * h * 3);
  if (!gl->buf || !gl->tmp) {
    gl_free(gl);
    return dt_error(DT_ERR_NOMEM, "dmc render: out of memory for a %dx%d buffer", w, h);
  }
  gl->ctx = OSMesaCreateContextExt(OSMESA_RGBA, 24, 8, 0, NULL);
  if (!gl->ctx) {
    gl_free(gl);
    return dt_error(DT_ERR_UNSUPPORTED, "dmc render: OSMesaCreateContextExt failed");
  }
  if (!OSMesaMakeCurrent(gl->ctx, gl->buf, GL_UNSIGNED_BYTE, w, h)) {
    gl_free(gl);
    return dt_error(DT_ERR_UNSUPPORTED, "dmc render: OSMesaMakeCurrent failed");
  }
  // the model's visual settings decide the offscreen buffer: set them before the context exists
  t->m->vis.global.offwidth = w;
  t->m->vis.global.offheight = h;
  t->m->vis.quality.offsamples = t->msaa;
  mjv_defaultScene(&gl->scn);
  mjr_defaultContext(&gl->con);
  mjv_defaultOption(&gl->opt);
  mjv_defaultPerturb(&gl->pert);
  mjv_defaultCamera(&gl->cam);
  jmp_buf jb;
  jmp_buf* saved = mj_guard;
  mj_guard = &jb;
  if (setjmp(jb)) {
    mj_guard = saved;
    OSMesaMakeCurrent(NULL, NULL, GL_UNSIGNED_BYTE, 0, 0);
    OSMesaDestroyContext(gl->ctx);
    gl->ctx = NULL;
    gl_free(gl);
    return dt_error(DT_ERR_UNSUPPORTED, "dmc render: MuJoCo could not make a GL context: %s", mj_message);
  }
  mjv_makeScene(t->m, &gl->scn, 1000);
  mjr_makeContext(t->m, &gl->con, mjFONTSCALE_50);
  mjr_setBuffer(mjFB_OFFSCREEN, &gl->con);
  mj_guard = saved;
  if (gl->con.currentBuffer != mjFB_OFFSCREEN) {
    gl_free(gl);
    return dt_error(DT_ERR_UNSUPPORTED, "dmc render: the offscreen framebuffer is not available");
  }
  *out = gl;
  return DT_OK;
}

static dtStatus dmc_render(void* impl, int width, int height, int camera, uint8_t* rgb) {
  dmcTask* t = impl;
  if (camera < -1 || camera >= t->m->ncam)
    return dt_error(DT_ERR_ARG, "dmc render: camera %d out of range [-1, %d) for %s", camera,
                    t->m->ncam, t->spec->xml);
  if (!t->gl || width > t->gl->bw || height > t->gl->bh) {
    int w = width, h = height;
    if (t->gl) {
      w = w > t->gl->bw ? w : t->gl->bw;
      h = h > t->gl->bh ? h : t->gl->bh;
      gl_free(t->gl);
      t->gl = NULL;
    }
    dtStatus st = gl_new(t, w, h, &t->gl);
    if (st) return st;
  }
  dmcGl* gl = t->gl;
  if (OSMesaGetCurrentContext() != gl->ctx)
    OSMesaMakeCurrent(gl->ctx, gl->buf, GL_UNSIGNED_BYTE, gl->bw, gl->bh);
  if (camera >= 0) {
    gl->cam.type = mjCAMERA_FIXED;
    gl->cam.fixedcamid = camera;
  } else {
    mjv_defaultFreeCamera(t->m, &gl->cam);
  }
  mjv_updateScene(t->m, t->d, &gl->opt, &gl->pert, &gl->cam, mjCAT_ALL, &gl->scn);
  gl->scn.flags[mjRND_SHADOW] = (mjtByte)t->shadows;
  gl->scn.flags[mjRND_REFLECTION] = (mjtByte)t->shadows;
  mjrRect vp = {0, 0, width, height};
  mjr_render(vp, &gl->scn, &gl->con);
  mjr_readPixels(gl->tmp, NULL, vp, &gl->con);
  // OpenGL rows are bottom-up
  size_t row = (size_t)width * 3;
  for (int y = 0; y < height; y++) memcpy(rgb + (size_t)y * row, gl->tmp + (size_t)(height - 1 - y) * row, row);
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// observations and rewards

// row-major 3x3 entries of xmat
enum { XX = 0, XZ = 2, ZZ = 8 };

static void finger_tip_target(const dmcTask* t, double tip[2], double target[2]) {
  const mjData* d = t->d;
  const double* hinge = d->xanchor + 3 * t->id[2];
  const double* tp = d->site_xpos + 3 * t->id[3];
  const double* tg = d->site_xpos + 3 * t->id[4];
  tip[0] = tp[0] - hinge[0];
  tip[1] = tp[2] - hinge[2];
  target[0] = tg[0] - hinge[0];
  target[1] = tg[2] - hinge[2];
}

static double finger_dist_to_target(const dmcTask* t) {
  double tip[2], tg[2];
  finger_tip_target(t, tip, tg);
  return hypot(tg[0] - tip[0], tg[1] - tip[1]) - t->m->site_size[3 * t->id[4]];
}

static void dmc_observe(void* impl, float* obs) {
  const dmcTask* t = impl;
  const mjModel* m = t->m;
  const mjData* d = t->d;
  int k = 0;
  switch (t->spec->kind) {
    case K_CARTPOLE:
      obs[k++] = (float)d->qpos[0];
      obs[k++] = (float)d->xmat[9 * t->id[0] + ZZ];
      obs[k++] = (float)d->xmat[9 * t->id[0] + XZ];
      for (int i = 0; i < m->nv; i++) obs[k++] = (float)d->qvel[i];
      break;
    case K_PENDULUM:
      obs[k++] = (float)d->xmat[9 * t->id[0] + ZZ];
      obs[k++] = (float)d->xmat[9 * t->id[0] + XZ];
      obs[k++] = (float)d->qvel[0];
      break;
    case K_REACHER: {
      const double* f = d->geom_xpos + 3 * t->id[0];
      const double* g = d->geom_xpos + 3 * t->id[1];
      obs[k++] = (float)d->qpos[0];
      obs[k++] = (float)d->qpos[1];
      obs[k++] = (float)(g[0] - f[0]);
      obs[k++] = (float)(g[1] - f[1]);
      obs[k++] = (float)d->qvel[0];
      obs[k++] = (float)d->qvel[1];
      break;
    }
    case K_FINGER_SPIN:
    case K_FINGER_TURN: {
      double tip[2], tg[2];
      finger_tip_target(t, tip, tg);
      obs[k++] = (float)d->qpos[m->jnt_qposadr[t->id[0]]];
      obs[k++] = (float)d->qpos[m->jnt_qposadr[t->id[1]]];
      obs[k++] = (float)tip[0];
      obs[k++] = (float)tip[1];
      for (int i = 0; i < 3; i++) obs[k++] = (float)d->qvel[i];
      obs[k++] = (float)log1p(d->sensordata[t->id[5]]);
      obs[k++] = (float)log1p(d->sensordata[t->id[6]]);
      if (t->spec->kind == K_FINGER_TURN) {
        obs[k++] = (float)tg[0];
        obs[k++] = (float)tg[1];
        obs[k++] = (float)finger_dist_to_target(t);
      }
      break;
    }
    case K_CUP:
      for (int i = 0; i < 4; i++) obs[k++] = (float)d->qpos[i];
      for (int i = 0; i < 4; i++) obs[k++] = (float)d->qvel[i];
      break;
    case K_CHEETAH:
      for (int i = 1; i < m->nq; i++) obs[k++] = (float)d->qpos[i];
      for (int i = 0; i < m->nv; i++) obs[k++] = (float)d->qvel[i];
      break;
    case K_WALKER:
      for (int b = 1; b < m->nbody; b++) {
        obs[k++] = (float)d->xmat[9 * b + XX];
        obs[k++] = (float)d->xmat[9 * b + XZ];
      }
      obs[k++] = (float)d->xpos[3 * t->id[0] + 2];
      for (int i = 0; i < m->nv; i++) obs[k++] = (float)d->qvel[i];
      break;
    case K_HOPPER:
      for (int i = 1; i < m->nq; i++) obs[k++] = (float)d->qpos[i];
      for (int i = 0; i < m->nv; i++) obs[k++] = (float)d->qvel[i];
      obs[k++] = (float)log1p(d->sensordata[t->id[3]]);
      obs[k++] = (float)log1p(d->sensordata[t->id[4]]);
      break;
    case K_ACROBOT:
      obs[k++] = (float)d->xmat[9 * t->id[0] + XZ];
      obs[k++] = (float)d->xmat[9 * t->id[1] + XZ];
      obs[k++] = (float)d->xmat[9 * t->id[0] + ZZ];
      obs[k++] = (float)d->xmat[9 * t->id[1] + ZZ];
      obs[k++] = (float)d->qvel[0];
      obs[k++] = (float)d->qvel[1];
      break;
  }
}

// the reward of the current state (after a control step), in [0, 1]
static double dmc_reward(const dmcTask* t) {
  const mjModel* m = t->m;
  const mjData* d = t->d;
  const dmcSpec* s = t->spec;
  switch (s->kind) {
    case K_CARTPOLE: {
      double x = d->qpos[0], c = d->xmat[9 * t->id[0] + ZZ];
      if (s->sparse) return dt_dmc_tolerance(x, -.25, .25, 0, SIG_GAUSSIAN, .1) *
                            dt_dmc_tolerance(c, .995, 1, 0, SIG_GAUSSIAN, .1);
      double upright = (c + 1) / 2;
      double centered = (1 + tol_g(x, 0, 0, 2)) / 2;
      double small_control = (4 + dt_dmc_tolerance(d->ctrl[0], 0, 0, 1, SIG_QUADRATIC, 0)) / 5;
      double small_velocity = (1 + tol_g(d->qvel[1], 0, 0, 5)) / 2;
      return upright * small_control * small_velocity * centered;
    }
    case K_PENDULUM:
      return dt_dmc_tolerance(d->xmat[9 * t->id[0] + ZZ], cos(8.0 * M_PI / 180.0), 1, 0, SIG_GAUSSIAN, .1);
    case K_REACHER: {
      const double* f = d->geom_xpos + 3 * t->id[0];
      const double* g = d->geom_xpos + 3 * t->id[1];
      double radii = m->geom_size[3 * t->id[1]] + m->geom_size[3 * t->id[0]];
      return dt_dmc_tolerance(hypot(g[0] - f[0], g[1] - f[1]), 0, radii, 0, SIG_GAUSSIAN, .1);
    }
    case K_FINGER_SPIN:
      return d->qvel[m->jnt_dofadr[t->id[2]]] <= -15.0 ? 1.0 : 0.0;
    case K_FINGER_TURN:
      return finger_dist_to_target(t) <= 0 ? 1.0 : 0.0;
    case K_CUP: {
      const double* tg = d->site_xpos + 3 * t->id[0];
      const double* ball = d->xpos + 3 * t->id[1];
      double bs = m->geom_size[3 * t->id[2]];
      const double* ts = m->site_size + 3 * t->id[0];
      return (fabs(tg[0] - ball[0]) < ts[0] - bs && fabs(tg[2] - ball[2]) < ts[2] - bs) ? 1.0 : 0.0;
    }
    case K_CHEETAH:
      return dt_dmc_tolerance(d->sensordata[t->id[1]], 10, INFINITY, 10, SIG_LINEAR, 0);
    case K_WALKER: {
      double height = d->xpos[3 * t->id[0] + 2];
      double standing = tol_g(height, 1.2, INFINITY, 0.6);
      double upright = (1 + d->xmat[9 * t->id[0] + ZZ]) / 2;
      double stand = (3 * standing + upright) / 4;
      if (s->param == 0) return stand;
      double move = dt_dmc_tolerance(d->sensordata[t->id[1]], s->param, INFINITY, s->param / 2,
                                     SIG_LINEAR, 0.5);
      return stand * (5 * move + 1) / 6;
    }
    case K_HOPPER: {
      double height = d->xipos[3 * t->id[0] + 2] - d->xipos[3 * t->id[1] + 2];
      double standing = dt_dmc_tolerance(height, .6, 2, 0, SIG_GAUSSIAN, .1);
      if (s->sparse) {
        double hopping = dt_dmc_tolerance(d->sensordata[t->id[2]], 2, INFINITY, 1, SIG_LINEAR, 0.5);
        return standing * hopping;
      }
      double sc = 0;
      for (int i = 0; i < m->nu; i++) sc += dt_dmc_tolerance(d->ctrl[i], 0, 0, 1, SIG_QUADRATIC, 0);
      sc = (sc / m->nu + 4) / 5;
      return standing * sc;
    }
    case K_ACROBOT: {
      const double* tip = d->site_xpos + 3 * t->id[2];
      const double* tg = d->site_xpos + 3 * t->id[3];
      double dist = sqrt((tg[0] - tip[0]) * (tg[0] - tip[0]) + (tg[1] - tip[1]) * (tg[1] - tip[1]) +
                         (tg[2] - tip[2]) * (tg[2] - tip[2]));
      double radius = m->site_size[3 * t->id[3]];
      return tol_g(dist, 0, radius, s->sparse ? 0 : 1);
    }
  }
  return 0;
}

//---------------------------------------------------------------------------------------------
// reset: DMC's initial-state distributions

static dtStatus dmc_reset(void* impl, dtRng* rng) {
  dmcTask* t = impl;
  const mjModel* m = t->m;
  mjData* d = t->d;
  const dmcSpec* s = t->spec;
  jmp_buf jb;
  jmp_buf* saved = mj_guard;
  mj_guard = &jb;
  if (setjmp(jb)) {
    mj_guard = saved;
    return dt_error(DT_ERR_INTERNAL, "dmc reset: MuJoCo error: %s", mj_message);
  }
  // DMC resets, then runs forward once before the task draws its state
  mj_resetData(m, d);
  mj_forward(m, d);
  switch (s->kind) {
    case K_CARTPOLE:
      if (s->param) {
        d->qpos[0] = .01 * dt_rng_normal(rng);
        d->qpos[1] = M_PI + .01 * dt_rng_normal(rng);
      } else {
        d->qpos[0] = unif(rng, -.1, .1);
        d->qpos[1] = unif(rng, -.034, .034);
      }
      for (int i = 0; i < m->nv; i++) d->qvel[i] = .01 * dt_rng_normal(rng);
      break;
    case K_PENDULUM:
    case K_WALKER:
    case K_HOPPER:
      randomize_joints(m, d, rng);
      break;
    case K_REACHER: {
      randomize_joints(m, d, rng);
      double angle = unif(rng, 0, 2 * M_PI), radius = unif(rng, .05, .20);
      d->mocap_pos[0] = radius * sin(angle);
      d->mocap_pos[1] = radius * cos(angle);
      break;
    }
    case K_FINGER_SPIN:
    case K_FINGER_TURN:
      if (s->kind == K_FINGER_TURN) {
        double angle = unif(rng, -M_PI, M_PI);
        const double* hinge = d->xanchor + 3 * t->id[2];
        int cap1 = t->id[7];
        double radius = m->geom_size[3 * cap1] + m->geom_size[3 * cap1 + 1];
        d->mocap_pos[0] = hinge[0] + radius * sin(angle);
        d->mocap_pos[1] = hinge[1];
        d->mocap_pos[2] = hinge[2] + radius * cos(angle);
      }
      for (int tries = 0; tries < 1000; tries++) {
        randomize_joints(m, d, rng);
        mj_forward(m, d);
        if (d->ncon == 0) break;
      }
      break;
    case K_CUP:
      for (int tries = 0; tries < 1000; tries++) {
        d->qpos[m->jnt_qposadr[t->id[3]]] = unif(rng, -.2, .2);
        d->qpos[m->jnt_qposadr[t->id[4]]] = unif(rng, .2, .5);
        mj_forward(m, d);
        if (d->ncon == 0) break;
      }
      break;
    case K_CHEETAH:
      for (int j = 0; j < m->njnt; j++)
        if (m->jnt_limited[j])
          d->qpos[m->jnt_qposadr[j]] = unif(rng, m->jnt_range[2 * j], m->jnt_range[2 * j + 1]);
      for (int i = 0; i < 200; i++) physics_step(t, 1);
      d->time = 0;
      break;
    case K_ACROBOT:
      d->qpos[0] = unif(rng, -M_PI, M_PI);
      d->qpos[1] = unif(rng, -M_PI, M_PI);
      break;
  }
  mj_forward(m, d);
  mj_guard = saved;
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// step, state

static dtStatus dmc_step(void* impl, const float* action, float* reward, int* terminated, int* success) {
  dmcTask* t = impl;
  for (int i = 0; i < t->m->nu; i++) t->d->ctrl[i] = action[i];
  jmp_buf jb;
  jmp_buf* saved = mj_guard;
  mj_guard = &jb;
  if (setjmp(jb)) {
    mj_guard = saved;
    return dt_error(DT_ERR_INTERNAL, "dmc step: MuJoCo error: %s", mj_message);
  }
  physics_step(t, t->spec->nsub);
  mj_guard = saved;
  *reward = (float)dmc_reward(t);
  *terminated = 0;
  *success = -1;
  return DT_OK;
}

// [time, qpos, qvel, act, ctrl, qacc_warmstart, mocap_pos, sensordata]
static int dmc_state_size(void* impl) {
  const mjModel* m = ((dmcTask*)impl)->m;
  return 1 + m->nq + 2 * m->nv + m->na + m->nu + 3 * m->nmocap + m->nsensordata;
}

static void dmc_get_state(void* impl, double* s) {
  const dmcTask* t = impl;
  const mjModel* m = t->m;
  const mjData* d = t->d;
  *s++ = d->time;
#define DT_PUT(src, n) memcpy(s, src, sizeof(double) * (size_t)(n)), s += (n)
  DT_PUT(d->qpos, m->nq);
  DT_PUT(d->qvel, m->nv);
  DT_PUT(d->act, m->na);
  DT_PUT(d->ctrl, m->nu);
  DT_PUT(d->qacc_warmstart, m->nv);
  DT_PUT(d->mocap_pos, 3 * m->nmocap);
  DT_PUT(d->sensordata, m->nsensordata);
#undef DT_PUT
}

static void dmc_set_state(void* impl, const double* s) {
  dmcTask* t = impl;
  const mjModel* m = t->m;
  mjData* d = t->d;
  d->time = *s++;
#define DT_GET(dst, n) memcpy(dst, s, sizeof(double) * (size_t)(n)), s += (n)
  DT_GET(d->qpos, m->nq);
  DT_GET(d->qvel, m->nv);
  DT_GET(d->act, m->na);
  DT_GET(d->ctrl, m->nu);
  DT_GET(d->qacc_warmstart, m->nv);
  DT_GET(d->mocap_pos, 3 * m->nmocap);
  jmp_buf jb;
  jmp_buf* saved = mj_guard;
  mj_guard = &jb;
  if (!setjmp(jb)) mj_forward(m, d);
  mj_guard = saved;
  // touch sensors keep the value of the last substep, as after a step
  DT_GET(d->sensordata, m->nsensordata);
#undef DT_GET
}

//---------------------------------------------------------------------------------------------
// create, destroy

static void dmc_destroy(void* impl) {
  dmcTask* t = impl;
  if (!t) return;
  gl_free(t->gl);
  if (t->d) mj_deleteData(t->d);
  if (t->m) mj_deleteModel(t->m);
  dt_free(t);
}

// look up the ids each kind needs; 0 if a name is missing from the model
static int lookup_ids(dmcTask* t) {
  const mjModel* m = t->m;
  int ok = 1;
  int* id = t->id;
  switch (t->spec->kind) {
    case K_CARTPOLE: id[0] = id_of(m, mjOBJ_BODY, "pole_1", &ok); break;
    case K_PENDULUM: id[0] = id_of(m, mjOBJ_BODY, "pole", &ok); break;
    case K_REACHER:
      id[0] = id_of(m, mjOBJ_GEOM, "finger", &ok);
      id[1] = id_of(m, mjOBJ_GEOM, "target", &ok);
      break;
    case K_FINGER_SPIN:
    case K_FINGER_TURN:
      id[0] = id_of(m, mjOBJ_JOINT, "proximal", &ok);
      id[1] = id_of(m, mjOBJ_JOINT, "distal", &ok);
      id[2] = id_of(m, mjOBJ_JOINT, "hinge", &ok);
      id[3] = id_of(m, mjOBJ_SITE, "tip", &ok);
      id[4] = id_of(m, mjOBJ_SITE, "target", &ok);
      id[5] = id_of(m, mjOBJ_SENSOR, "touchtop", &ok);
      id[6] = id_of(m, mjOBJ_SENSOR, "touchbottom", &ok);
      id[7] = id_of(m, mjOBJ_GEOM, "cap1", &ok);
      if (ok) id[5] = m->sensor_adr[id[5]], id[6] = m->sensor_adr[id[6]];
      break;
    case K_CUP:
      id[0] = id_of(m, mjOBJ_SITE, "target", &ok);
      id[1] = id_of(m, mjOBJ_BODY, "ball", &ok);
      id[2] = id_of(m, mjOBJ_GEOM, "ball", &ok);
      id[3] = id_of(m, mjOBJ_JOINT, "ball_x", &ok);
      id[4] = id_of(m, mjOBJ_JOINT, "ball_z", &ok);
      break;
    case K_CHEETAH:
    case K_WALKER:
      id[0] = id_of(m, mjOBJ_BODY, "torso", &ok);
      id[1] = id_of(m, mjOBJ_SENSOR, "torso_subtreelinvel", &ok);
      if (ok) id[1] = m->sensor_adr[id[1]];
      break;
    case K_HOPPER:
      id[0] = id_of(m, mjOBJ_BODY, "torso", &ok);
      id[1] = id_of(m, mjOBJ_BODY, "foot", &ok);
      id[2] = id_of(m, mjOBJ_SENSOR, "torso_subtreelinvel", &ok);
      id[3] = id_of(m, mjOBJ_SENSOR, "touch_toe", &ok);
      id[4] = id_of(m, mjOBJ_SENSOR, "touch_heel", &ok);
      if (ok) id[2] = m->sensor_adr[id[2]], id[3] = m->sensor_adr[id[3]], id[4] = m->sensor_adr[id[4]];
      break;
    case K_ACROBOT:
      id[0] = id_of(m, mjOBJ_BODY, "upper_arm", &ok);
      id[1] = id_of(m, mjOBJ_BODY, "lower_arm", &ok);
      id[2] = id_of(m, mjOBJ_SITE, "tip", &ok);
      id[3] = id_of(m, mjOBJ_SITE, "target", &ok);
      break;
  }
  return ok;
}

static dtStatus dmc_create(const dtTaskDef* def, const dtEnvOpts* opts, void** impl, dtSpace* obs_space,
                           dtSpace* act_space) {
  dt_mj_install_handlers();
  *impl = NULL;
  int index = (int)(def - dt_dmc_tasks);
  if (index < 0 || index >= dt_dmc_task_count)
    return dt_error(DT_ERR_INTERNAL, "dmc: task '%s' is not in the DMC table", def->name);
  const dmcSpec* s = &specs[index];
  char path[1024];
  dtStatus st = find_asset(s->xml, path, sizeof path);
  if (st) return st;
  dmcTask* t = dt_calloc(1, sizeof *t);
  if (!t) return DT_ERR_NOMEM;
  t->spec = s;
  t->shadows = opts->render_shadows;
  t->msaa = opts->render_msaa;
  char err[1000] = "";
  jmp_buf jb;
  jmp_buf* saved = mj_guard;
  mj_guard = &jb;
  if (setjmp(jb)) {
    mj_guard = saved;
    dmc_destroy(t);
    return dt_error(DT_ERR_INTERNAL, "dmc: MuJoCo error while loading '%s': %s", path, mj_message);
  }
  t->m = mj_loadXML(path, NULL, err, sizeof err);
  if (t->m) t->d = mj_makeData(t->m);
  mj_guard = saved;
  if (!t->m || !t->d) {
    dmc_destroy(t);
    return dt_error(DT_ERR_FORMAT, "dmc: cannot load '%s': %s", path, err[0] ? err : "mj_makeData failed");
  }
  if (t->m->nq + t->m->nv > 1000 || !lookup_ids(t)) {
    dmc_destroy(t);
    return dt_error(DT_ERR_FORMAT, "dmc: '%s' lacks the bodies, joints, sites or sensors task '%s' needs",
                    path, def->name);
  }
  t->rk4 = t->m->opt.integrator == mjINT_RK4;
  // per-task model settings, fixed for the env's lifetime (DMC sets them at every episode)
  mjModel* m = t->m;
  if (s->kind == K_REACHER) m->geom_size[3 * t->id[1]] = s->param;
  if (s->kind == K_FINGER_SPIN) {
    m->dof_damping[m->jnt_dofadr[t->id[2]]] = .03;
    m->site_rgba[4 * t->id[3] + 3] = 0;
    m->site_rgba[4 * t->id[4] + 3] = 0;
  }
  if (s->kind == K_FINGER_TURN) m->site_size[3 * t->id[4]] = s->param;
  if (opts->obs == DT_OBS_PIXELS && (opts->camera < -1 || opts->camera >= m->ncam)) {
    int ncam = m->ncam;
    dmc_destroy(t);
    return dt_error(DT_ERR_ARG, "dt_env_make: opts.camera %d out of range [-1, %d) for task '%s'",
                    opts->camera, ncam, def->name);
  }
  obs_space->ndim = 1;
  obs_space->shape[0] = s->obs_dim;
  obs_space->shape[1] = obs_space->shape[2] = obs_space->shape[3] = 0;
  obs_space->size = s->obs_dim;
  obs_space->dtype = DT_F32;
  obs_space->low = -INFINITY;
  obs_space->high = INFINITY;
  act_space->ndim = 1;
  act_space->shape[0] = m->nu;
  act_space->shape[1] = act_space->shape[2] = act_space->shape[3] = 0;
  act_space->size = m->nu;
  act_space->dtype = DT_F32;
  act_space->low = -1;
  act_space->high = 1;
  // a valid state before the first reset
  mj_forward(m, t->d);
  *impl = t;
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// the registry table

#define DMC_TASK(name, ar)                                                                       \
  {name, ar, 1000, dmc_create, dmc_destroy, dmc_reset, dmc_step, dmc_observe, dmc_render,       \
   dmc_state_size, dmc_get_state, dmc_set_state}

const dtTaskDef dt_dmc_tasks[] = {
    DMC_TASK("cartpole-balance", 8),
    DMC_TASK("cartpole-balance-sparse", 8),
    DMC_TASK("cartpole-swingup", 8),
    DMC_TASK("cartpole-swingup-sparse", 8),
    DMC_TASK("pendulum-swingup", 4),
    DMC_TASK("reacher-easy", 4),
    DMC_TASK("reacher-hard", 4),
    DMC_TASK("finger-spin", 2),
    DMC_TASK("finger-turn-easy", 2),
    DMC_TASK("finger-turn-hard", 2),
    DMC_TASK("cup-catch", 4),
    DMC_TASK("cheetah-run", 4),
    DMC_TASK("walker-stand", 2),
    DMC_TASK("walker-walk", 2),
    DMC_TASK("walker-run", 2),
    DMC_TASK("hopper-stand", 4),
    DMC_TASK("hopper-hop", 4),
    DMC_TASK("acrobot-swingup", 4),
    DMC_TASK("acrobot-swingup-sparse", 4),
};
const int dt_dmc_task_count = (int)(sizeof dt_dmc_tasks / sizeof dt_dmc_tasks[0]);

//---------------------------------------------------------------------------------------------
// internal access for experts

int dt_dmc_physics(const dtEnv* env, const mjModel** m, mjData** d) {
  const dtTaskDef* def = dt_env_def(env);
  if (!def || def->create != dmc_create) return 0;
  dmcTask* t = dt_env_impl(env);
  if (m) *m = t->m;
  if (d) *d = t->d;
  return 1;
}

#endif  // DT_HAVE_MUJOCO
