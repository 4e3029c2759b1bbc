// SPDX-License-Identifier: MIT
// The generic environment: a registry of task tables, options and action checks, action repeat,
// time limit, state or pixel observations with a frame stack, and state save/restore.
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "envs/env_internal.h"

//---------------------------------------------------------------------------------------------
// the registry: one line per task family

#ifdef DT_HAVE_MUJOCO
// DMC-style MuJoCo tasks (src/envs/dmc.c)
extern const dtTaskDef dt_dmc_tasks[];
extern const int dt_dmc_task_count;
#endif
#ifdef DT_HAVE_CHIPMUNK
// Push-T (src/envs/pusht.c): the default task and the pymunk-compatible variant
#include "envs/pusht.h"
static const int one_task = 1;
#endif

typedef struct dtTaskFamily {
  const dtTaskDef* defs;
  const int* count;
} dtTaskFamily;

static const dtTaskFamily families[] = {
#ifdef DT_HAVE_MUJOCO
    {dt_dmc_tasks, &dt_dmc_task_count},
#endif
#ifdef DT_HAVE_CHIPMUNK
    {&dt_pusht_task, &one_task},
    {&dt_pusht_pymunk_task, &one_task},
#endif
    {NULL, NULL},  // keeps the array non-empty in builds without any simulator
};
#define DT_NUM_FAMILIES ((int)(sizeof families / sizeof families[0]) - 1)

#define DT_MAX_TASKS 128
static const char* task_names[DT_MAX_TASKS + 1];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void build_names(void) {
  int n = 0;
  for (int f = 0; f < DT_NUM_FAMILIES; f++)
    for (int i = 0; i < *families[f].count && n < DT_MAX_TASKS; i++)
      task_names[n++] = families[f].defs[i].name;
  task_names[n] = NULL;
}

const char* const* dt_env_names(void) {
  pthread_once(&names_once, build_names);
  return task_names;
}

// find a task definition by name (NULL if unknown)
static const dtTaskDef* find_task(const char* name) {
  for (int f = 0; f < DT_NUM_FAMILIES; f++)
    for (int i = 0; i < *families[f].count; i++)
      if (!strcmp(families[f].defs[i].name, name)) return &families[f].defs[i];
  return NULL;
}

int dt_env_default_action_repeat(const char* name) {
  const dtTaskDef* def = name ? find_task(name) : NULL;
  return def ? def->default_action_repeat : 0;
}

//---------------------------------------------------------------------------------------------
// the environment

struct dtEnv {
  const dtTaskDef* def;
  void* impl;
  dtEnvOpts opts;
  dtSpace obs_space;       // what reset/step write
  dtSpace state_space;     // the task's state observation
  dtSpace act_space;
  int action_repeat;
  int max_steps;
  int64_t steps;           // env steps in this episode
  int needs_reset;         // no episode started, or the last one ended
  dtRng rng;
  float* act;              // clipped action (scratch)
  // pixels
  int img;                 // image side
  int fs;                  // frame stack
  uint8_t* frames;         // [fs][3][img][img], oldest first
  uint8_t* rgb;            // [img][img][3] scratch
  int tss;                 // task state size
  double* hist;            // task states of the fs-1 older frames, oldest first
  double* scratch_state;   // one task state
};

dtEnvOpts dt_env_default_opts(void) {
  dtEnvOpts o;
  memset(&o, 0, sizeof o);
  o.seed = 0;
  o.obs = DT_OBS_STATE;
  o.action_repeat = 0;
  o.frame_stack = 3;
  o.image_size = 0;
  o.camera = 0;
  o.max_steps = 0;
  o.render_shadows = 0;
  o.render_msaa = 0;
  return o;
}

// an error listing every known task name
static dtStatus unknown_task(const char* name) {
  char list[2048];
  size_t len = 0;
  list[0] = 0;
  for (const char* const* n = dt_env_names(); *n; n++) {
    int w = snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", *n);
    if (w < 0 || (size_t)w >= sizeof list - len) break;
    len += (size_t)w;
  }
  return dt_error(DT_ERR_NOT_FOUND, "dt_env_make: unknown task '%s' (known: %s)", name,
                  len ? list : "none in this build");
}

// check the options that do not depend on the task
static dtStatus check_opts(const dtEnvOpts* o) {
  if (o->obs != DT_OBS_STATE && o->obs != DT_OBS_PIXELS)
    return dt_error(DT_ERR_ARG, "dt_env_make: opts.obs must be DT_OBS_STATE or DT_OBS_PIXELS, got %d",
                    (int)o->obs);
  if (o->action_repeat < 0 || o->action_repeat > 1000)
    return dt_error(DT_ERR_ARG, "dt_env_make: opts.action_repeat must be in [0, 1000], got %d",
                    o->action_repeat);
  if (o->frame_stack < 1 || o->frame_stack > 16)
    return dt_error(DT_ERR_ARG, "dt_env_make: opts.frame_stack must be in [1, 16], got %d",
                    o->frame_stack);
  if (o->image_size < 0 || o->image_size > 1024)
    return dt_error(DT_ERR_ARG, "dt_env_make: opts.image_size must be in [0, 1024], got %d",
                    o->image_size);
  if (o->camera < -1)
    return dt_error(DT_ERR_ARG, "dt_env_make: opts.camera must be >= -1, got %d", o->camera);
  if (o->max_steps < 0)
    return dt_error(DT_ERR_ARG, "dt_env_make: opts.max_steps must be >= 0, got %d", o->max_steps);
  if (o->render_shadows != 0 && o->render_shadows != 1)
    return dt_error(DT_ERR_ARG, "dt_env_make: opts.render_shadows must be 0 or 1, got %d",
                    o->render_shadows);
  if (o->render_msaa < 0 || o->render_msaa > 16)
    return dt_error(DT_ERR_ARG, "dt_env_make: opts.render_msaa must be in [0, 16], got %d",
                    o->render_msaa);
  return DT_OK;
}

dtStatus dt_env_make(const char* name, const dtEnvOpts* opts, dtEnv** out) {
  if (!out) return dt_error(DT_ERR_ARG, "dt_env_make: env output pointer is NULL");
  *out = NULL;
  if (!name) return dt_error(DT_ERR_ARG, "dt_env_make: name is NULL");
  const dtTaskDef* def = find_task(name);
  if (!def) return unknown_task(name);
  dtEnvOpts o = opts ? *opts : dt_env_default_opts();
  dtStatus st = check_opts(&o);
  if (st) return st;

  dtEnv* env = dt_calloc(1, sizeof *env);
  if (!env) return DT_ERR_NOMEM;
  env->def = def;
  env->action_repeat = o.action_repeat ? o.action_repeat : def->default_action_repeat;
  if (env->action_repeat < 1) env->action_repeat = 1;
  // the time limit counts simulator control steps: 1000 of them for DMC
  env->max_steps = o.max_steps ? o.max_steps
                               : (def->default_max_steps + env->action_repeat - 1) / env->action_repeat;
  if (o.image_size == 0) o.image_size = 84;
  env->opts = o;
  env->needs_reset = 1;
  dt_rng_seed(&env->rng, o.seed);

  st = def->create(def, &o, &env->impl, &env->state_space, &env->act_space);
  if (st) {
    dt_free(env);
    return st;
  }
  env->tss = def->state_size(env->impl);
  env->act = dt_calloc((size_t)env->act_space.size, sizeof(float));
  env->scratch_state = dt_calloc((size_t)env->tss, sizeof(double));
  if (!env->act || !env->scratch_state) goto nomem;

  if (o.obs == DT_OBS_PIXELS) {
    if (!def->render) {
      dt_env_free(env);
      return dt_error(DT_ERR_UNSUPPORTED, "dt_env_make: task '%s' cannot render pixels", name);
    }
    env->img = o.image_size;
    env->fs = o.frame_stack;
    size_t frame = (size_t)3 * env->img * env->img;
    env->frames = dt_calloc((size_t)env->fs, frame);
    env->rgb = dt_calloc(1, frame);
    env->hist = dt_calloc((size_t)env->fs * (size_t)env->tss, sizeof(double));
    if (!env->frames || !env->rgb || !env->hist) goto nomem;
    dtSpace* s = &env->obs_space;
    s->ndim = 3;
    s->shape[0] = 3 * env->fs;
    s->shape[1] = env->img;
    s->shape[2] = env->img;
    s->shape[3] = 0;
    s->size = (int64_t)3 * env->fs * env->img * env->img;
    s->dtype = DT_U8;
    s->low = 0;
    s->high = 255;
    // a first render checks the camera and builds the GL context now rather than mid-episode
    st = def->render(env->impl, env->img, env->img, o.camera, env->rgb);
    if (st) {
      dt_env_free(env);
      return st;
    }
  } else {
    env->obs_space = env->state_space;
  }
  *out = env;
  return DT_OK;
nomem:
  dt_env_free(env);
  return dt_error(DT_ERR_NOMEM, "dt_env_make: out of memory for task '%s'", name);
}

void dt_env_free(dtEnv* env) {
  if (!env) return;
  if (env->impl) env->def->destroy(env->impl);
  dt_free(env->act);
  dt_free(env->scratch_state);
  dt_free(env->frames);
  dt_free(env->rgb);
  dt_free(env->hist);
  dt_free(env);
}

const char* dt_env_name(const dtEnv* env) { return env ? env->def->name : NULL; }

const dtSpace* dt_env_obs_space(const dtEnv* env) { return env ? &env->obs_space : NULL; }

const dtSpace* dt_env_action_space(const dtEnv* env) { return env ? &env->act_space : NULL; }

//---------------------------------------------------------------------------------------------
// observations

// render the current state into frame slot k (HWC scratch -> CHW)
static dtStatus render_frame(dtEnv* env, int k) {
  dtStatus st = env->def->render(env->impl, env->img, env->img, env->opts.camera, env->rgb);
  if (st) return st;
  size_t hw = (size_t)env->img * env->img;
  uint8_t* dst = env->frames + (size_t)k * 3 * hw;
  for (size_t p = 0; p < hw; p++) {
    dst[p] = env->rgb[3 * p];
    dst[hw + p] = env->rgb[3 * p + 1];
    dst[2 * hw + p] = env->rgb[3 * p + 2];
  }
  return DT_OK;
}

// write the current observation
static void write_obs(dtEnv* env, void* obs) {
  if (!obs) return;
  if (env->opts.obs == DT_OBS_PIXELS)
    memcpy(obs, env->frames, (size_t)env->obs_space.size);
  else
    env->def->observe(env->impl, (float*)obs);
}

dtStatus dt_env_reset(dtEnv* env, int64_t seed, void* obs) {
  if (!env) return dt_error(DT_ERR_ARG, "dt_env_reset: env is NULL");
  if (seed >= 0) dt_rng_seed(&env->rng, (uint64_t)seed);
  dtStatus st = env->def->reset(env->impl, &env->rng);
  if (st) return st;
  env->steps = 0;
  env->needs_reset = 0;
  if (env->opts.obs == DT_OBS_PIXELS) {
    // the first frame repeats over the whole stack
    st = render_frame(env, env->fs - 1);
    if (st) return st;
    size_t frame = (size_t)3 * env->img * env->img;
    for (int k = 0; k < env->fs - 1; k++) memcpy(env->frames + k * frame, env->frames + (env->fs - 1) * frame, frame);
    env->def->get_state(env->impl, env->scratch_state);
    for (int k = 0; k < env->fs - 1; k++)
      memcpy(env->hist + (size_t)k * env->tss, env->scratch_state, (size_t)env->tss * sizeof(double));
  }
  write_obs(env, obs);
  return DT_OK;
}

dtStatus dt_env_step(dtEnv* env, const float* action, int action_len, void* obs, dtStepInfo* info) {
  if (!env) return dt_error(DT_ERR_ARG, "dt_env_step: env is NULL");
  if (!action) return dt_error(DT_ERR_ARG, "dt_env_step: action is NULL");
  if (action_len != env->act_space.size)
    return dt_error(DT_ERR_SHAPE, "dt_env_step: task '%s' takes %lld action values, got %d",
                    env->def->name, (long long)env->act_space.size, action_len);
  for (int i = 0; i < action_len; i++)
    if (!isfinite(action[i]))
      return dt_error(DT_ERR_NONFINITE, "dt_env_step: action[%d] is %g (must be finite)", i,
                      (double)action[i]);
  if (env->needs_reset)
    return dt_error(DT_ERR_STATE, "dt_env_step: call dt_env_reset first (no episode is running on '%s')",
                    env->def->name);
  // clip into the action box
  for (int i = 0; i < action_len; i++) {
    float a = action[i];
    env->act[i] = a < env->act_space.low ? env->act_space.low : a > env->act_space.high ? env->act_space.high : a;
  }
  // the older frames' states shift by one (pixels only)
  if (env->opts.obs == DT_OBS_PIXELS && env->fs > 1) {
    memmove(env->hist, env->hist + env->tss, (size_t)(env->fs - 2) * env->tss * sizeof(double));
    env->def->get_state(env->impl, env->hist + (size_t)(env->fs - 2) * env->tss);
  }
  float total = 0;
  int terminated = 0, success = -1;
  for (int r = 0; r < env->action_repeat; r++) {
    float rew = 0;
    int term = 0, succ = -1;
    dtStatus st = env->def->step(env->impl, env->act, &rew, &term, &succ);
    if (st) {
      env->needs_reset = 1;
      return st;
    }
    total += rew;
    if (succ >= 0) success = success > succ ? success : succ;
    if (term) {
      terminated = 1;
      break;
    }
  }
  env->steps++;
  int truncated = !terminated && env->steps >= env->max_steps;
  if (terminated || truncated) env->needs_reset = 1;
  if (env->opts.obs == DT_OBS_PIXELS) {
    size_t frame = (size_t)3 * env->img * env->img;
    memmove(env->frames, env->frames + frame, (size_t)(env->fs - 1) * frame);
    dtStatus st = render_frame(env, env->fs - 1);
    if (st) return st;
  }
  write_obs(env, obs);
  if (info) {
    info->reward = total;
    info->terminated = terminated;
    info->truncated = truncated;
    info->success = success;
  }
  return DT_OK;
}

dtStatus dt_env_observe(dtEnv* env, void* obs) {
  if (!env || !obs) return dt_error(DT_ERR_ARG, "dt_env_observe: env or obs is NULL");
  write_obs(env, obs);
  return DT_OK;
}

dtStatus dt_env_render(dtEnv* env, int width, int height, int camera, uint8_t* rgb) {
  if (!env || !rgb) return dt_error(DT_ERR_ARG, "dt_env_render: env or rgb is NULL");
  if (width < 1 || height < 1 || width > 4096 || height > 4096)
    return dt_error(DT_ERR_ARG, "dt_env_render: size %dx%d out of range [1, 4096]", width, height);
  if (!env->def->render)
    return dt_error(DT_ERR_UNSUPPORTED, "dt_env_render: task '%s' cannot render", env->def->name);
  return env->def->render(env->impl, width, height, camera, rgb);
}

//---------------------------------------------------------------------------------------------
// state save/restore: [steps, needs_reset, task state, older frames' task states (pixels)]

int dt_env_state_size(const dtEnv* env) {
  if (!env) return 0;
  int n = 2 + env->tss;
  if (env->opts.obs == DT_OBS_PIXELS) n += (env->fs - 1) * env->tss;
  return n;
}

dtStatus dt_env_get_state(const dtEnv* env, double* state) {
  if (!env || !state) return dt_error(DT_ERR_ARG, "dt_env_get_state: env or state is NULL");
  state[0] = (double)env->steps;
  state[1] = (double)env->needs_reset;
  env->def->get_state(env->impl, state + 2);
  if (env->opts.obs == DT_OBS_PIXELS && env->fs > 1)
    memcpy(state + 2 + env->tss, env->hist, (size_t)(env->fs - 1) * env->tss * sizeof(double));
  return DT_OK;
}

dtStatus dt_env_set_state(dtEnv* env, const double* state) {
  if (!env || !state) return dt_error(DT_ERR_ARG, "dt_env_set_state: env or state is NULL");
  int n = dt_env_state_size(env);
  for (int i = 0; i < n; i++)
    if (!isfinite(state[i]))
      return dt_error(DT_ERR_NONFINITE, "dt_env_set_state: state[%d] is %g (must be finite)", i, state[i]);
  if (state[0] < 0 || state[0] != floor(state[0]) || (state[1] != 0 && state[1] != 1))
    return dt_error(DT_ERR_ARG, "dt_env_set_state: state[0..1] (step count %g, reset flag %g) is not a "
                    "state from dt_env_get_state", state[0], state[1]);
  if (env->opts.obs == DT_OBS_PIXELS) {
    // re-render the stack from the saved states, oldest first, then restore the current one
    for (int k = 0; k < env->fs - 1; k++) {
      const double* s = state + 2 + env->tss + (size_t)k * env->tss;
      env->def->set_state(env->impl, s);
      dtStatus st = render_frame(env, k);
      if (st) return st;
    }
    if (env->fs > 1)
      memcpy(env->hist, state + 2 + env->tss, (size_t)(env->fs - 1) * env->tss * sizeof(double));
    env->def->set_state(env->impl, state + 2);
    dtStatus st = render_frame(env, env->fs - 1);
    if (st) return st;
  } else {
    env->def->set_state(env->impl, state + 2);
  }
  env->steps = (int64_t)state[0];
  env->needs_reset = (int)state[1];
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// internal access for experts and tools in this layer

void* dt_env_impl(const dtEnv* env) { return env ? env->impl : NULL; }

const dtTaskDef* dt_env_def(const dtEnv* env) { return env ? env->def : NULL; }

int dt_env_action_repeat(const dtEnv* env) { return env ? env->action_repeat : 0; }

int dt_env_max_steps(const dtEnv* env) { return env ? env->max_steps : 0; }

int64_t dt_env_step_count(const dtEnv* env) { return env ? env->steps : 0; }

dtRng* dt_env_rng(dtEnv* env) { return env ? &env->rng : NULL; }
