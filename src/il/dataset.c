// SPDX-License-Identifier: MIT
// Demonstration datasets in robomimic's HDF5 layout, limits normalisers and the demonstration
// generators (Push-T's sampling-MPC expert, the DMC tasks' analytic experts).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "difftop/env.h"
#include "difftop/il.h"
#include "difftop/pusht.h"

#ifdef DT_HAVE_HDF5
#include <hdf5.h>
#endif

//---------------------------------------------------------------------------------------------
// normalisers

static void norm_finish(dtNormalizer* nz) {
  for (int j = 0; j < nz->dim; j++) {
    float range = nz->max[j] - nz->min[j];
    if (range < 1e-4f) {
      nz->scale[j] = 1.0f;
      nz->offset[j] = -nz->min[j];
    } else {
      nz->scale[j] = 2.0f / range;
      nz->offset[j] = -1.0f - nz->scale[j] * nz->min[j];
    }
  }
}

dtStatus dt_norm_set(dtNormalizer* nz, int dim, const float* min, const float* max) {
  if (!nz || !min || !max || dim < 1 || dim > DT_NORM_MAX_DIM)
    return dt_error(DT_ERR_ARG, "dt_norm_set: dim %d outside 1..%d or NULL argument", dim,
                    DT_NORM_MAX_DIM);
  memset(nz, 0, sizeof *nz);
  nz->dim = dim;
  for (int j = 0; j < dim; j++) {
    if (!isfinite(min[j]) || !isfinite(max[j]) || min[j] > max[j])
      return dt_error(DT_ERR_ARG, "dt_norm_set: dimension %d has min %g, max %g", j,
                      (double)min[j], (double)max[j]);
    nz->min[j] = min[j];
    nz->max[j] = max[j];
  }
  norm_finish(nz);
  return DT_OK;
}

dtStatus dt_norm_fit(dtNormalizer* nz, const float* x, int64_t n, int dim) {
  if (!nz || !x || n < 1 || dim < 1 || dim > DT_NORM_MAX_DIM)
    return dt_error(DT_ERR_ARG, "dt_norm_fit: %lld rows of dim %d (dim must be 1..%d)",
                    (long long)n, dim, DT_NORM_MAX_DIM);
  float lo[DT_NORM_MAX_DIM], hi[DT_NORM_MAX_DIM];
  for (int j = 0; j < dim; j++) lo[j] = hi[j] = x[j];
  for (int64_t i = 1; i < n; i++) {
    for (int j = 0; j < dim; j++) {
      float v = x[i * dim + j];
      if (v < lo[j]) lo[j] = v;
      if (v > hi[j]) hi[j] = v;
    }
  }
  return dt_norm_set(nz, dim, lo, hi);
}

void dt_norm_apply(const dtNormalizer* nz, float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < nz->dim; j++) x[i * nz->dim + j] = x[i * nz->dim + j] * nz->scale[j] + nz->offset[j];
}

void dt_norm_unapply(const dtNormalizer* nz, float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < nz->dim; j++)
      x[i * nz->dim + j] = (x[i * nz->dim + j] - nz->offset[j]) / nz->scale[j];
}

//---------------------------------------------------------------------------------------------
// datasets in memory

void dt_demos_free(dtDemoSet* ds) {
  if (!ds) return;
  free(ds->start);
  free(ds->demo_index);
  free(ds->obs);
  free(ds->actions);
  free(ds->rewards);
  free(ds->dones);
  free(ds->images);
  free(ds->modes);
  memset(ds, 0, sizeof *ds);
}

void dt_image_hwc_to_chw(const uint8_t* hwc, int h, int w, int c, float* chw) {
  size_t plane = (size_t)h * w;
  for (size_t i = 0; i < plane; i++)
    for (int k = 0; k < c; k++) chw[k * plane + i] = hwc[i * c + k] * (1.0f / 255.0f);
}

// allocate room for total images of h x w x c (sets the extents)
static dtStatus images_alloc(dtDemoSet* ds, int64_t total, int h, int w, int c) {
  ds->img_h = h, ds->img_w = w, ds->img_c = c;
  ds->images = malloc((size_t)(total ? total : 1) * h * w * c);
  if (!ds->images)
    return dt_error(DT_ERR_NOMEM, "demonstrations: out of memory for %lld images of %dx%dx%d",
                    (long long)total, h, w, c);
  return DT_OK;
}

// allocate arrays for n demos of total steps
static dtStatus demos_alloc(dtDemoSet* ds, int n, int64_t total, int obs_dim, int act_dim) {
  ds->n_demos = n;
  ds->total = total;
  ds->obs_dim = obs_dim;
  ds->act_dim = act_dim;
  ds->start = calloc((size_t)n + 1, sizeof *ds->start);
  ds->demo_index = calloc((size_t)n + 1, sizeof *ds->demo_index);
  ds->obs = malloc((size_t)(total ? total : 1) * obs_dim * sizeof(float));
  ds->actions = malloc((size_t)(total ? total : 1) * act_dim * sizeof(float));
  ds->rewards = calloc((size_t)(total ? total : 1), sizeof(float));
  ds->dones = calloc((size_t)(total ? total : 1), 1);
  if (!ds->start || !ds->demo_index || !ds->obs || !ds->actions || !ds->rewards || !ds->dones) {
    dt_demos_free(ds);
    return dt_error(DT_ERR_NOMEM, "demonstrations: out of memory for %lld steps", (long long)total);
  }
  return DT_OK;
}

static dtStatus demos_fit_norms(dtDemoSet* ds) {
  if (ds->total < 1) return dt_error(DT_ERR_FORMAT, "demonstrations: no steps at all");
  dtStatus st = dt_norm_fit(&ds->obs_norm, ds->obs, ds->total, ds->obs_dim);
  if (!st) st = dt_norm_fit(&ds->act_norm, ds->actions, ds->total, ds->act_dim);
  return st;
}

//---------------------------------------------------------------------------------------------
// Push-T generator

dtPushtDemoOpts dt_pusht_demo_default_opts(void) {
  dtPushtDemoOpts o;
  memset(&o, 0, sizeof o);
  o.episodes = 200;
  o.seed = 0;
  o.max_steps = 300;
  o.max_attempts = 0;
  return o;
}

dtStatus dt_demos_generate_pusht(const dtPushtDemoOpts* opts, dtDemoSet* out) {
#ifndef DT_HAVE_CHIPMUNK
  (void)opts, (void)out;
  return dt_error(DT_ERR_UNSUPPORTED, "Push-T demonstrations need a build with Chipmunk2D");
#else
  if (!opts || !out) return dt_error(DT_ERR_ARG, "dt_demos_generate_pusht: NULL argument");
  if (opts->episodes < 1 || opts->max_steps < 1)
    return dt_error(DT_ERR_ARG, "dt_demos_generate_pusht: episodes %d and max_steps %d must be >= 1",
                    opts->episodes, opts->max_steps);
  memset(out, 0, sizeof *out);
  int want = opts->episodes, T = opts->max_steps;
  int attempts = opts->max_attempts > 0 ? opts->max_attempts : 3 * want;
  // worst case: every kept episode is max_steps long
  int64_t cap = (int64_t)want * T;
  int N = opts->image_size;
  if (N < 0 || N > 1024)
    return dt_error(DT_ERR_ARG, "dt_demos_generate_pusht: image_size %d outside 0..1024", N);
  int od = N > 0 ? 7 : 5;  // state, then agent_pos with images
  dtStatus st = demos_alloc(out, want, cap, od, 2);
  if (!st && N > 0) st = images_alloc(out, cap, N, N, 3);
  int multimodal = opts->expert && opts->expert->multimodal;
  if (!st && multimodal && !(out->modes = calloc((size_t)want, sizeof *out->modes)))
    st = dt_error(DT_ERR_NOMEM, "Push-T demos: out of memory");
  if (st) {
    dt_demos_free(out);
    return st;
  }
  dtPusht* sim = NULL;
  dtPushtExpert* ex = NULL;
  double* states = NULL;
  if ((st = dt_pusht_new(&sim))) goto done;
  dtRng rng;
  dt_rng_seed(&rng, opts->seed ^ 0x9e3779b97f4a7c15ULL);
  int kept = 0;
  int64_t pos = 0;
  double state[DT_PUSHT_STATE_SIZE];
  for (int a = 0; a < attempts && kept < want; a++) {
    // episode seeds from the master stream: PCG32 resets never reproduce the numpy eval seeds
    uint64_t ep_seed = ((uint64_t)dt_rng_u32(&rng) << 32) | dt_rng_u32(&rng);
    dt_pusht_expert_free(ex);
    ex = NULL;
    if ((st = dt_pusht_expert_new(ep_seed + 1, opts->expert, &ex))) goto done;
    if ((st = dt_pusht_reset(sim, ep_seed))) goto done;
    int64_t s0 = pos;
    int success = 0;
    double max_rew = 0;
    for (int t = 0; t < T; t++) {
      double obs[5];
      dt_pusht_observe(sim, obs);
      if ((st = dt_pusht_get_state(sim, state))) goto done;
      if (N > 0 && (st = dt_pusht_render(sim, N, N, out->images + pos * N * N * 3))) goto done;
      float act[2];
      if ((st = dt_pusht_expert_act(ex, state, act))) goto done;
      double a2[2] = {act[0], act[1]}, rew = 0, cov = 0;
      if ((st = dt_pusht_step(sim, a2, &rew, &cov, &success))) goto done;
      for (int j = 0; j < 5; j++) out->obs[pos * od + j] = (float)obs[j];
      if (N > 0) out->obs[pos * od + 5] = (float)obs[0], out->obs[pos * od + 6] = (float)obs[1];
      out->actions[pos * 2] = act[0];
      out->actions[pos * 2 + 1] = act[1];
      out->rewards[pos] = (float)rew;
      out->dones[pos] = (uint8_t)(success || t == T - 1);
      if (rew > max_rew) max_rew = rew;
      pos++;
      if (success) break;
    }
    if (opts->verbose)
      fprintf(stderr, "demo attempt %d: %lld steps, max reward %.3f%s\n", a, (long long)(pos - s0),
              max_rew, success ? "" : " (failed)");
    if (opts->verbose && multimodal) fprintf(stderr, "  expert mode %d\n", dt_pusht_expert_mode(ex));
    if (success || opts->keep_failures) {
      if (multimodal) out->modes[kept] = dt_pusht_expert_mode(ex);
      out->start[kept] = s0;
      out->demo_index[kept] = kept;
      kept++;
    } else {
      pos = s0;  // drop the failed episode
    }
  }
  if (kept < want) {
    st = dt_error(DT_ERR_STATE, "Push-T demos: only %d of %d episodes succeeded in %d attempts",
                  kept, want, attempts);
    goto done;
  }
  out->start[kept] = pos;
  out->total = pos;
  char mm[96] = "";
  if (multimodal)
    snprintf(mm, sizeof mm, ", \"multimodal\": 1, \"detour\": %.6g, \"modes\": \"demo attribute expert_mode\"",
             opts->expert->detour);
  snprintf(out->obs_keys, sizeof out->obs_keys, N > 0 ? "state,agent_pos,image" : "state");
  if (N > 0) snprintf(out->image_key, sizeof out->image_key, "image");
  snprintf(out->env_args, sizeof out->env_args,
           "{\"env_name\": \"pusht\", \"type\": \"difftop\", \"env_kwargs\": {\"max_steps\": %d, "
           "\"control_hz\": 10, \"action\": \"absolute target in pixels [0, 512]\", \"obs\": "
           "\"[agent x, agent y, block x, block y, block angle]\"}, \"generator\": {\"expert\": "
           "\"%s\", \"seed\": %llu, \"attempts\": %d, \"keep_failures\": %d%s}}",
           T, !opts->expert || opts->expert->smooth ? "sampling-mpc-smooth" : "sampling-mpc-waypoints",
           (unsigned long long)opts->seed, attempts, opts->keep_failures, mm);
  st = demos_fit_norms(out);
done:
  free(states);
  dt_pusht_expert_free(ex);
  dt_pusht_free(sim);
  if (st) dt_demos_free(out);
  return st;
#endif
}

//---------------------------------------------------------------------------------------------
// DMC generator (analytic experts)

dtDmcDemoOpts dt_dmc_demo_default_opts(void) {
  dtDmcDemoOpts o;
  memset(&o, 0, sizeof o);
  o.episodes = 10;
  return o;
}

dtStatus dt_demos_generate_dmc(const char* task, const dtDmcDemoOpts* opts, dtDemoSet* out) {
  if (!task || !opts || !out) return dt_error(DT_ERR_ARG, "dt_demos_generate_dmc: NULL argument");
  memset(out, 0, sizeof *out);
  if (opts->episodes < 1 || opts->action_repeat < 0 || !(opts->noise >= 0) || !isfinite(opts->noise))
    return dt_error(DT_ERR_ARG, "dt_demos_generate_dmc: episodes %d must be >= 1, action_repeat %d >= 0, "
                    "noise %g finite and >= 0", opts->episodes, opts->action_repeat, (double)opts->noise);
  dtExpert* ex = NULL;
  dtEnv* env = NULL;
  float *obs = NULL, *act = NULL, *noisy = NULL;
  dtEnvOpts eo = dt_env_default_opts();
  eo.action_repeat = opts->action_repeat;
  dtStatus st = dt_env_make(task, &eo, &env);  // unknown names: the message lists the tasks
  if (st) return st;
  if ((st = dt_expert_new(task, opts->seed, &ex))) goto done;
  int od = (int)dt_env_obs_space(env)->size, ad = (int)dt_env_action_space(env)->size;
  int T = dt_env_max_steps(env), ar = dt_env_action_repeat(env);
  if (od > DT_NORM_MAX_DIM || ad > DT_NORM_MAX_DIM) {
    st = dt_error(DT_ERR_ARG, "dt_demos_generate_dmc: %s has %d obs / %d action dims (most %d)", task, od, ad,
                  DT_NORM_MAX_DIM);
    goto done;
  }
  if ((st = demos_alloc(out, opts->episodes, (int64_t)opts->episodes * T, od, ad))) goto done;
  obs = malloc(sizeof(float) * (size_t)od);
  act = malloc(sizeof(float) * (size_t)ad);
  noisy = malloc(sizeof(float) * (size_t)ad);
  if (!obs || !act || !noisy) {
    st = dt_error(DT_ERR_NOMEM, "dt_demos_generate_dmc: out of memory");
    goto done;
  }
  dtRng rng;
  dt_rng_seed(&rng, opts->seed ^ 0x6a09e667f3bcc909ULL);
  int64_t pos = 0;
  double sum_ret = 0;
  for (int e = 0; e < opts->episodes; e++) {
    // episode seeds from the master stream, at or above 2^62: evaluation seeds are small
    uint64_t ep = ((uint64_t)dt_rng_u32(&rng) << 32) | dt_rng_u32(&rng);
    ep = (ep & ((1ULL << 62) - 1)) | (1ULL << 62);
    if ((st = dt_env_reset(env, (int64_t)ep, obs))) goto done;
    out->start[e] = pos;
    out->demo_index[e] = e;
    double ret = 0;
    dtStepInfo info = {0};
    for (int t = 0; t < T && !info.truncated && !info.terminated; t++) {
      if ((st = dt_expert_act(ex, env, act))) goto done;
      for (int j = 0; j < ad; j++) {
        float v = act[j];
        if (opts->noise > 0) v += opts->noise * (float)dt_rng_normal(&rng);
        noisy[j] = v < -1 ? -1 : v > 1 ? 1 : v;
      }
      memcpy(out->obs + pos * od, obs, sizeof(float) * (size_t)od);
      memcpy(out->actions + pos * ad, act, sizeof(float) * (size_t)ad);  // the clean label
      if ((st = dt_env_step(env, noisy, ad, obs, &info))) goto done;
      out->rewards[pos] = info.reward;
      out->dones[pos] = (uint8_t)(info.truncated || info.terminated);
      ret += info.reward;
      pos++;
    }
    out->dones[pos - 1] = 1;
    sum_ret += ret;
    if (opts->verbose) fprintf(stderr, "demo %d: %lld steps, return %.1f\n", e, (long long)(pos - out->start[e]), ret);
  }
  out->start[opts->episodes] = pos;
  out->total = pos;
  snprintf(out->obs_keys, sizeof out->obs_keys, "state");
  snprintf(out->env_args, sizeof out->env_args,
           "{\"env_name\": \"%s\", \"type\": \"difftop-dmc\", \"env_kwargs\": {\"action_repeat\": %d, "
           "\"max_steps\": %d, \"action\": \"[-1, 1] per actuator\", \"obs\": \"the env's state vector\"}, "
           "\"generator\": {\"expert\": \"analytic\", \"seed\": %llu, \"noise\": %.9g, "
           "\"labels\": \"clean expert actions\", \"mean_return\": %.3f}}",
           task, ar, T, (unsigned long long)opts->seed, (double)opts->noise, sum_ret / opts->episodes);
  st = demos_fit_norms(out);
done:
  free(obs), free(act), free(noisy);
  dt_env_free(env);
  dt_expert_free(ex);
  if (st) dt_demos_free(out);
  return st;
}

dtStatus dt_demos_subset(const dtDemoSet* src, int first, int count, dtDemoSet* out) {
  if (!src || !out || !src->start) return dt_error(DT_ERR_ARG, "dt_demos_subset: NULL argument");
  memset(out, 0, sizeof *out);
  if (first < 0 || count < 1 || first + count > src->n_demos)
    return dt_error(DT_ERR_ARG, "dt_demos_subset: demos [%d, %d) outside the dataset's %d", first,
                    first + count, src->n_demos);
  int64_t s0 = src->start[first], n = src->start[first + count] - s0;
  dtStatus st = demos_alloc(out, count, n, src->obs_dim, src->act_dim);
  if (st) return st;
  for (int d = 0; d <= count; d++) out->start[d] = src->start[first + d] - s0;
  for (int d = 0; d < count; d++) out->demo_index[d] = src->demo_index[first + d];
  memcpy(out->obs, src->obs + s0 * src->obs_dim, sizeof(float) * (size_t)(n * src->obs_dim));
  memcpy(out->actions, src->actions + s0 * src->act_dim, sizeof(float) * (size_t)(n * src->act_dim));
  memcpy(out->rewards, src->rewards + s0, sizeof(float) * (size_t)n);
  memcpy(out->dones, src->dones + s0, (size_t)n);
  if (src->images) {
    size_t px = (size_t)src->img_h * src->img_w * src->img_c;
    if ((st = images_alloc(out, n, src->img_h, src->img_w, src->img_c))) {
      dt_demos_free(out);
      return st;
    }
    memcpy(out->images, src->images + s0 * px, px * (size_t)n);
    memcpy(out->image_key, src->image_key, sizeof out->image_key);
  }
  if (src->modes) {
    if (!(out->modes = malloc(sizeof *out->modes * (size_t)count))) {
      dt_demos_free(out);
      return dt_error(DT_ERR_NOMEM, "dt_demos_subset: out of memory");
    }
    memcpy(out->modes, src->modes + first, sizeof *out->modes * (size_t)count);
  }
  memcpy(out->obs_keys, src->obs_keys, sizeof out->obs_keys);
  memcpy(out->env_args, src->env_args, sizeof out->env_args);
  st = demos_fit_norms(out);
  if (st) dt_demos_free(out);
  return st;
}

// the value of "key": in a flat scan of a JSON text: a string into buf, or a number's text
static int json_find(const char* json, const char* key, char* buf, size_t size) {
  char pat[80];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  const char* p = json ? strstr(json, pat) : NULL;
  if (!p || size < 2) return 1;
  p += strlen(pat);
  while (*p == ' ' || *p == '\t' || *p == '\n') p++;
  if (*p++ != ':') return 1;
  while (*p == ' ' || *p == '\t' || *p == '\n') p++;
  size_t n = 0;
  if (*p == '"') {
    for (p++; *p && *p != '"' && n + 1 < size; p++) buf[n++] = *p;
    if (*p != '"') return 1;
  } else {
    for (; *p && (strchr("+-.eE", *p) || (*p >= '0' && *p <= '9')) && n + 1 < size; p++) buf[n++] = *p;
  }
  buf[n] = 0;
  return n == 0;
}

int dt_demos_task(const dtDemoSet* ds, char* name, size_t size) {
  if (!ds || !name || size < 1) return 1;
  name[0] = 0;
  return json_find(ds->env_args, "env_name", name, size);
}

int dt_demos_action_repeat(const dtDemoSet* ds) {
  char buf[32];
  if (!ds || json_find(ds->env_args, "action_repeat", buf, sizeof buf)) return 0;
  int v = atoi(buf);
  return v > 0 ? v : 0;
}

//---------------------------------------------------------------------------------------------
// HDF5

int dt_il_have_hdf5(void) {
#ifdef DT_HAVE_HDF5
  return 1;
#else
  return 0;
#endif
}

#ifndef DT_HAVE_HDF5
dtStatus dt_demos_write_hdf5(const dtDemoSet* ds, const char* path, const int* key_dims) {
  (void)ds, (void)key_dims;
  return dt_error(DT_ERR_UNSUPPORTED, "%s: this build has no HDF5 (DT_WITH_HDF5=OFF)", path);
}
dtStatus dt_demos_read_hdf5(const char* path, const char* obs_keys, dtDemoSet* out) {
  (void)obs_keys, (void)out;
  return dt_error(DT_ERR_UNSUPPORTED, "%s: this build has no HDF5 (DT_WITH_HDF5=OFF)", path);
}
#else

// write a float32 (or uint8) dataset of rank 1 or 2 under loc
static int h5_write(hid_t loc, const char* name, hid_t mem_type, hid_t file_type, int rank,
                    hsize_t d0, hsize_t d1, const void* data) {
  hsize_t dims[2] = {d0, d1};
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  if (sp < 0) return -1;
  hid_t d = H5Dcreate2(loc, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc = -1;
  if (d >= 0) {
    rc = (d0 == 0 || H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0) ? 0 : -1;
    H5Dclose(d);
  }
  H5Sclose(sp);
  return rc;
}

// write images [T, H, W, C] as a uint8 dataset under loc
static int h5_write_images(hid_t loc, const char* name, int64_t T, int h, int w, int c,
                           const uint8_t* data) {
  hsize_t dims[4] = {(hsize_t)T, (hsize_t)h, (hsize_t)w, (hsize_t)c};
  hid_t sp = H5Screate_simple(4, dims, NULL);
  if (sp < 0) return -1;
  hid_t d = H5Dcreate2(loc, name, H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc = -1;
  if (d >= 0) {
    rc = (T == 0 || H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0) ? 0 : -1;
    H5Dclose(d);
  }
  H5Sclose(sp);
  return rc;
}

static int h5_attr_i64(hid_t loc, const char* name, long long v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  int rc = (a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, &v) >= 0) ? 0 : -1;
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  return rc;
}

static int h5_attr_str(hid_t loc, const char* name, const char* s) {
  hid_t ty = H5Tcopy(H5T_C_S1);
  H5Tset_size(ty, H5T_VARIABLE);
  H5Tset_cset(ty, H5T_CSET_UTF8);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
  int rc = (a >= 0 && H5Awrite(a, ty, &s) >= 0) ? 0 : -1;
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(ty);
  return rc;
}

// split a comma-separated key list; returns the count
static int split_keys(const char* list, char keys[][64], int max) {
  int n = 0;
  const char* p = list;
  while (p && *p && n < max) {
    const char* e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    while (len && *p == ' ') p++, len--;
    if (len >= 64) len = 63;
    if (len) {
      memcpy(keys[n], p, len);
      keys[n][len] = 0;
      n++;
    }
    p = e ? e + 1 : NULL;
  }
  return n;
}

dtStatus dt_demos_write_hdf5(const dtDemoSet* ds, const char* path, const int* key_dims) {
  if (!ds || !path || !ds->start) return dt_error(DT_ERR_ARG, "dt_demos_write_hdf5: NULL argument");
  char keys[16][64];
  int nk = split_keys(ds->obs_keys[0] ? ds->obs_keys : "obs", keys, 16);
  int dims[16], is_img[16];
  int sum = 0, n_low = 0;
  for (int k = 0; k < nk; k++) n_low += !(is_img[k] = ds->images && !strcmp(keys[k], ds->image_key));
  for (int k = 0; k < nk; k++) {
    dims[k] = is_img[k] ? 0 : key_dims ? key_dims[k] : (n_low == 1 ? ds->obs_dim : 0);
    sum += dims[k];
  }
  if (sum != ds->obs_dim)
    return dt_error(DT_ERR_ARG, "%s: obs keys '%s' have %d dims in all, obs has %d", path,
                    ds->obs_keys, sum, ds->obs_dim);
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return dt_error(DT_ERR_IO, "%s: cannot create the HDF5 file", tmp);
  int rc = 0;
  float* buf = malloc((size_t)(ds->total ? ds->total : 1) * ds->obs_dim * sizeof(float));
  hid_t data = H5Gcreate2(f, "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  rc |= data < 0 || !buf;
  if (!rc) rc |= h5_attr_i64(data, "total", (long long)ds->total);
  if (!rc) rc |= h5_attr_str(data, "env_args", ds->env_args[0] ? ds->env_args : "{}");
  for (int d = 0; d < ds->n_demos && !rc; d++) {
    char name[64];
    snprintf(name, sizeof name, "demo_%d", ds->demo_index[d]);
    int64_t s0 = ds->start[d], T = ds->start[d + 1] - s0;
    hid_t g = H5Gcreate2(data, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) { rc = 1; break; }
    rc |= h5_attr_i64(g, "num_samples", (long long)T);
    if (ds->modes) rc |= h5_attr_i64(g, "expert_mode", (long long)ds->modes[d]);
    hid_t og = H5Gcreate2(g, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= og < 0;
    int off = 0;
    for (int k = 0; k < nk && !rc; k++) {
      if (is_img[k]) {
        size_t px = (size_t)ds->img_h * ds->img_w * ds->img_c;
        rc |= h5_write_images(og, keys[k], T, ds->img_h, ds->img_w, ds->img_c, ds->images + s0 * px);
        continue;
      }
      for (int64_t t = 0; t < T; t++)
        memcpy(buf + t * dims[k], ds->obs + (s0 + t) * ds->obs_dim + off, dims[k] * sizeof(float));
      rc |= h5_write(og, keys[k], H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, T, dims[k], buf);
      off += dims[k];
    }
    if (og >= 0) H5Gclose(og);
    rc |= h5_write(g, "actions", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, T, ds->act_dim,
                   ds->actions + s0 * ds->act_dim);
    rc |= h5_write(g, "rewards", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, T, 0, ds->rewards + s0);
    rc |= h5_write(g, "dones", H5T_NATIVE_UINT8, H5T_STD_U8LE, 1, T, 0, ds->dones + s0);
    H5Gclose(g);
  }
  // the normalisers' statistics
  if (!rc) {
    hid_t sg = H5Gcreate2(f, "stats", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t so = sg >= 0 ? H5Gcreate2(sg, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    hid_t sa = sg >= 0 ? H5Gcreate2(sg, "actions", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    rc |= so < 0 || sa < 0;
    if (!rc) {
      rc |= h5_write(so, "min", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, ds->obs_dim, 0, ds->obs_norm.min);
      rc |= h5_write(so, "max", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, ds->obs_dim, 0, ds->obs_norm.max);
      rc |= h5_write(sa, "min", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, ds->act_dim, 0, ds->act_norm.min);
      rc |= h5_write(sa, "max", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, ds->act_dim, 0, ds->act_norm.max);
      rc |= h5_attr_str(sg, "normalizer", "limits: x_n = 2 (x - min) / (max - min) - 1 per dim");
    }
    if (so >= 0) H5Gclose(so);
    if (sa >= 0) H5Gclose(sa);
    if (sg >= 0) H5Gclose(sg);
  }
  if (data >= 0) H5Gclose(data);
  free(buf);
  if (H5Fclose(f) < 0) rc = 1;
  if (rc) {
    remove(tmp);
    return dt_error(DT_ERR_IO, "%s: writing the HDF5 file failed", path);
  }
  if (rename(tmp, path) != 0) {
    remove(tmp);
    return dt_error(DT_ERR_IO, "%s: cannot move %s into place", path, tmp);
  }
  return DT_OK;
}

// names of the links of a group
typedef struct nameList {
  char (*names)[64];
  int n, cap;
} nameList;

static herr_t collect_name(hid_t g, const char* name, const H5L_info_t* info, void* user) {
  (void)g, (void)info;
  nameList* l = user;
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 64;
    void* p = realloc(l->names, (size_t)cap * 64);
    if (!p) return -1;
    l->names = p;
    l->cap = cap;
  }
  snprintf(l->names[l->n++], 64, "%s", name);
  return 0;
}

static int cmp_demo(const void* a, const void* b) {
  const char *x = a, *y = b;
  long u = strtol(x + 5, NULL, 10), v = strtol(y + 5, NULL, 10);
  return u < v ? -1 : u > v;
}

static int cmp_str(const void* a, const void* b) { return strcmp(a, b); }

// rank and extents of a dataset; -1 if it cannot be opened
static int h5_shape(hid_t loc, const char* name, hsize_t dims[4]) {
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) return -1;
  hid_t sp = H5Dget_space(d);
  int r = H5Sget_simple_extent_ndims(sp);
  if (r > 4 || r < 0) r = 5;
  else H5Sget_simple_extent_dims(sp, dims, NULL);
  H5Sclose(sp);
  H5Dclose(d);
  return r;
}

static int h5_is_float(hid_t loc, const char* name) {
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) return 0;
  hid_t ty = H5Dget_type(d);
  int f = H5Tget_class(ty) == H5T_FLOAT;
  H5Tclose(ty);
  H5Dclose(d);
  return f;
}

// 1 when a dataset holds 1-byte integers (uint8 images)
static int h5_is_u8(hid_t loc, const char* name) {
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) return 0;
  hid_t ty = H5Dget_type(d);
  int u = H5Tget_class(ty) == H5T_INTEGER && H5Tget_size(ty) == 1;
  H5Tclose(ty);
  H5Dclose(d);
  return u;
}

// the image key of a read: its index among the keys and its extents
typedef struct imgKey {
  int k, h, w, c;
} imgKey;

// check a rank-4 obs key of demo d (dims [T, H, W, C]) against the image seen so far
static dtStatus check_image_key(const char* path, const char* dn, const char* d0, const char* key,
                                hid_t g, const char* kp, const hsize_t* dims, int d, int k,
                                imgKey* im) {
  if (im->k >= 0 && im->k != k)
    return dt_error(DT_ERR_FORMAT, "%s: obs keys name two images (%d and %d in the list); at most one",
                    path, im->k, k);
  if (!h5_is_u8(g, kp))
    return dt_error(DT_ERR_FORMAT, "%s: data/%s/obs/%s: an image key must hold uint8 [T, H, W, C]", path,
                    dn, key);
  if ((dims[3] != 1 && dims[3] != 3) || dims[1] < 1 || dims[2] < 1 || dims[1] > 4096 || dims[2] > 4096)
    return dt_error(DT_ERR_FORMAT, "%s: data/%s/obs/%s: image %llux%llux%llu (H, W up to 4096, C 1 or 3)",
                    path, dn, key, (unsigned long long)dims[1], (unsigned long long)dims[2],
                    (unsigned long long)dims[3]);
  if (d > 0 && (im->h != (int)dims[1] || im->w != (int)dims[2] || im->c != (int)dims[3]))
    return dt_error(DT_ERR_FORMAT, "%s: data/%s/obs/%s: image %dx%dx%d, demo %s has %dx%dx%d", path, dn,
                    key, (int)dims[1], (int)dims[2], (int)dims[3], d0, im->h, im->w, im->c);
  im->k = k, im->h = (int)dims[1], im->w = (int)dims[2], im->c = (int)dims[3];
  return DT_OK;
}

static int h5_read(hid_t loc, const char* name, hid_t mem_type, void* dst) {
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  if (d < 0) return -1;
  int rc = H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) >= 0 ? 0 : -1;
  H5Dclose(d);
  return rc;
}

static int link_exists(hid_t loc, const char* name) { return H5Lexists(loc, name, H5P_DEFAULT) > 0; }

// first non-finite value of x [rows, cols]: returns 1 and its position
static int find_nonfinite(const float* x, int64_t rows, int cols, int64_t* r, int* c) {
  for (int64_t i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++)
      if (!isfinite(x[i * cols + j])) {
        *r = i;
        *c = j;
        return 1;
      }
  return 0;
}

dtStatus dt_demos_read_hdf5(const char* path, const char* obs_keys, dtDemoSet* out) {
  if (!path || !out) return dt_error(DT_ERR_ARG, "dt_demos_read_hdf5: NULL argument");
  memset(out, 0, sizeof *out);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  FILE* probe = fopen(path, "rb");
  if (!probe) return dt_error(DT_ERR_IO, "%s: cannot open", path);
  fclose(probe);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return dt_error(DT_ERR_FORMAT, "%s: not an HDF5 file", path);
  dtStatus st = DT_OK;
  nameList demos = {0}, okeys = {0};
  float* tmp = NULL;
  hid_t data = -1;
  if (!link_exists(f, "data")) {
    st = dt_error(DT_ERR_FORMAT, "%s: missing group 'data' (robomimic layout: data/demo_k/...)", path);
    goto done;
  }
  data = H5Gopen2(f, "data", H5P_DEFAULT);
  if (data < 0 || H5Literate(data, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, collect_name, &demos) < 0) {
    st = dt_error(DT_ERR_FORMAT, "%s: cannot list group 'data'", path);
    goto done;
  }
  // keep demo_<k> entries, in numeric order
  int nd = 0;
  for (int i = 0; i < demos.n; i++) {
    char* end = NULL;
    if (!strncmp(demos.names[i], "demo_", 5) && demos.names[i][5]) {
      strtol(demos.names[i] + 5, &end, 10);
      if (end && !*end) memmove(demos.names[nd++], demos.names[i], 64);
    }
  }
  if (nd == 0) {
    st = dt_error(DT_ERR_FORMAT, "%s: group 'data' holds no demo_k groups", path);
    goto done;
  }
  qsort(demos.names, nd, 64, cmp_demo);
  // obs keys: given, or every 1-D/2-D float key of the first demo
  char keys[16][64];
  int nk = 0;
  if (obs_keys && *obs_keys) {
    nk = split_keys(obs_keys, keys, 16);
  } else {
    char p0[160];
    snprintf(p0, sizeof p0, "%s/obs", demos.names[0]);
    hid_t og = link_exists(data, demos.names[0]) && H5Lexists(data, p0, H5P_DEFAULT) > 0
                   ? H5Gopen2(data, p0, H5P_DEFAULT) : -1;
    if (og < 0) {
      st = dt_error(DT_ERR_FORMAT, "%s: data/%s: missing group 'obs'", path, demos.names[0]);
      goto done;
    }
    H5Literate(og, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, collect_name, &okeys);
    qsort(okeys.names, okeys.n, 64, cmp_str);
    for (int i = 0; i < okeys.n && nk < 16; i++) {
      hsize_t dims[4];
      int r = h5_shape(og, okeys.names[i], dims);
      if ((r == 1 || r == 2) && h5_is_float(og, okeys.names[i])) snprintf(keys[nk++], 64, "%s", okeys.names[i]);
    }
    H5Gclose(og);
    if (nk == 0) {
      st = dt_error(DT_ERR_FORMAT, "%s: data/%s/obs has no 1-D or 2-D float keys", path, demos.names[0]);
      goto done;
    }
  }
  // first pass: validate shapes and count steps
  int key_dim[16] = {0}, act_dim = 0;
  imgKey im = {-1, 0, 0, 0};
  int64_t total = 0;
  int64_t* lens = calloc((size_t)nd, sizeof *lens);
  if (!lens) { st = dt_error(DT_ERR_NOMEM, "%s: out of memory", path); goto done; }
  for (int d = 0; d < nd && !st; d++) {
    const char* dn = demos.names[d];
    hid_t g = H5Gopen2(data, dn, H5P_DEFAULT);
    if (g < 0) { st = dt_error(DT_ERR_FORMAT, "%s: data/%s is not a group", path, dn); break; }
    hsize_t dims[4];
    int r = link_exists(g, "actions") ? h5_shape(g, "actions", dims) : -2;
    if (r == -2) st = dt_error(DT_ERR_FORMAT, "%s: data/%s: missing key 'actions'", path, dn);
    else if (r != 2) st = dt_error(DT_ERR_FORMAT, "%s: data/%s/actions: rank %d, expected 2 (T, action_dim)", path, dn, r);
    else if (dims[0] == 0) st = dt_error(DT_ERR_FORMAT, "%s: data/%s/actions: no steps", path, dn);
    else if (d > 0 && (int)dims[1] != act_dim)
      st = dt_error(DT_ERR_FORMAT, "%s: data/%s/actions: %d action dims, demo %s has %d", path, dn,
                    (int)dims[1], demos.names[0], act_dim);
    else if (dims[1] > DT_NORM_MAX_DIM)
      st = dt_error(DT_ERR_FORMAT, "%s: data/%s/actions: %d dims (most %d)", path, dn, (int)dims[1], DT_NORM_MAX_DIM);
    int64_t T = (int64_t)dims[0];
    if (!st) act_dim = (int)dims[1];
    if (!st && H5Aexists(g, "num_samples") > 0) {
      long long ns = -1;
      hid_t a = H5Aopen(g, "num_samples", H5P_DEFAULT);
      if (a < 0 || H5Aread(a, H5T_NATIVE_LLONG, &ns) < 0) ns = -1;
      if (a >= 0) H5Aclose(a);
      if (ns != T)
        st = dt_error(DT_ERR_FORMAT, "%s: data/%s: attribute num_samples = %lld but actions has %lld rows",
                      path, dn, ns, (long long)T);
    }
    if (!st && !link_exists(g, "obs")) st = dt_error(DT_ERR_FORMAT, "%s: data/%s: missing group 'obs'", path, dn);
    for (int k = 0; k < nk && !st; k++) {
      char kp[160];
      snprintf(kp, sizeof kp, "obs/%s", keys[k]);
      r = H5Lexists(g, kp, H5P_DEFAULT) > 0 ? h5_shape(g, kp, dims) : -2;
      if (r == -2) { st = dt_error(DT_ERR_FORMAT, "%s: data/%s: missing key 'obs/%s'", path, dn, keys[k]); break; }
      if (r != 1 && r != 2 && r != 4) {
        st = dt_error(DT_ERR_FORMAT, "%s: data/%s/obs/%s: rank %d, expected 1 or 2 (low-dimensional) or 4 "
                      "(uint8 image T, H, W, C)", path, dn, keys[k], r);
        break;
      }
      if (r == 4 && (st = check_image_key(path, dn, demos.names[0], keys[k], g, kp, dims, d, k, &im))) break;
      int kd = r == 1 ? 1 : r == 2 ? (int)dims[1] : 0;
      if ((int64_t)dims[0] != T) {
        st = dt_error(DT_ERR_FORMAT, "%s: data/%s/obs/%s: %lld rows but actions has %lld", path, dn,
                      keys[k], (long long)dims[0], (long long)T);
        break;
      }
      if (d > 0 && kd != key_dim[k]) {
        st = dt_error(DT_ERR_FORMAT, "%s: data/%s/obs/%s: %d dims, demo %s has %d", path, dn, keys[k],
                      kd, demos.names[0], key_dim[k]);
        break;
      }
      key_dim[k] = kd;
    }
    const char* opt[2] = {"rewards", "dones"};
    for (int i = 0; i < 2 && !st; i++) {
      if (!link_exists(g, opt[i])) continue;
      r = h5_shape(g, opt[i], dims);
      if (r != 1 || (int64_t)dims[0] != T)
        st = dt_error(DT_ERR_FORMAT, "%s: data/%s/%s: shape must be (%lld,), got rank %d with %lld rows",
                      path, dn, opt[i], (long long)T, r, r >= 1 ? (long long)dims[0] : 0LL);
    }
    lens[d] = T;
    total += T;
    H5Gclose(g);
  }
  int obs_dim = 0;
  for (int k = 0; k < nk; k++) obs_dim += key_dim[k];
  if (!st && obs_dim > DT_NORM_MAX_DIM)
    st = dt_error(DT_ERR_FORMAT, "%s: obs keys give %d dims (most %d)", path, obs_dim, DT_NORM_MAX_DIM);
  if (!st && obs_dim == 0)
    st = dt_error(DT_ERR_FORMAT, "%s: obs keys '%s' have no low-dimensional key; an image needs one "
                  "beside it (e.g. image,agent_pos)", path, obs_keys ? obs_keys : "");
  if (!st) st = demos_alloc(out, nd, total, obs_dim, act_dim);
  if (!st && im.k >= 0) {
    st = images_alloc(out, total, im.h, im.w, im.c);
    snprintf(out->image_key, sizeof out->image_key, "%s", keys[im.k]);
  }
  if (!st) tmp = malloc((size_t)total * (obs_dim > act_dim ? obs_dim : act_dim) * sizeof(float) + 64);
  if (!st && !tmp) st = dt_error(DT_ERR_NOMEM, "%s: out of memory", path);
  // second pass: read and check values
  int64_t pos = 0;
  for (int d = 0; d < nd && !st; d++) {
    const char* dn = demos.names[d];
    int64_t T = lens[d];
    hid_t g = H5Gopen2(data, dn, H5P_DEFAULT);
    out->start[d] = pos;
    out->demo_index[d] = (int)strtol(dn + 5, NULL, 10);
    int64_t r; int c;
    if (h5_read(g, "actions", H5T_NATIVE_FLOAT, out->actions + pos * act_dim) < 0)
      st = dt_error(DT_ERR_FORMAT, "%s: data/%s/actions: cannot be read as float", path, dn);
    else if (find_nonfinite(out->actions + pos * act_dim, T, act_dim, &r, &c))
      st = dt_error(DT_ERR_NONFINITE, "%s: data/%s/actions: NaN or Inf at step %lld, dim %d", path, dn, (long long)r, c);
    int off = 0;
    for (int k = 0; k < nk && !st; k++) {
      char kp[160];
      snprintf(kp, sizeof kp, "obs/%s", keys[k]);
      if (k == im.k) {
        size_t px = (size_t)im.h * im.w * im.c;
        if (h5_read(g, kp, H5T_NATIVE_UINT8, out->images + (size_t)pos * px) < 0)
          st = dt_error(DT_ERR_FORMAT, "%s: data/%s/obs/%s: cannot be read as uint8", path, dn, keys[k]);
        continue;
      }
      if (h5_read(g, kp, H5T_NATIVE_FLOAT, tmp) < 0) {
        st = dt_error(DT_ERR_FORMAT, "%s: data/%s/obs/%s: cannot be read as float", path, dn, keys[k]);
        break;
      }
      if (find_nonfinite(tmp, T, key_dim[k], &r, &c)) {
        st = dt_error(DT_ERR_NONFINITE, "%s: data/%s/obs/%s: NaN or Inf at step %lld, dim %d", path, dn, keys[k], (long long)r, c);
        break;
      }
      for (int64_t t = 0; t < T; t++)
        memcpy(out->obs + (pos + t) * obs_dim + off, tmp + t * key_dim[k], key_dim[k] * sizeof(float));
      off += key_dim[k];
    }
    if (!st && link_exists(g, "rewards") && h5_read(g, "rewards", H5T_NATIVE_FLOAT, out->rewards + pos) < 0)
      st = dt_error(DT_ERR_FORMAT, "%s: data/%s/rewards: cannot be read as float", path, dn);
    if (!st && link_exists(g, "dones") && h5_read(g, "dones", H5T_NATIVE_UINT8, out->dones + pos) < 0)
      st = dt_error(DT_ERR_FORMAT, "%s: data/%s/dones: cannot be read", path, dn);
    if (!st && !link_exists(g, "dones")) out->dones[pos + T - 1] = 1;
    pos += T;
    H5Gclose(g);
  }
  free(lens);
  if (!st) {
    out->start[nd] = pos;
    // obs key list and env_args
    char* p = out->obs_keys;
    size_t left = sizeof out->obs_keys;
    for (int k = 0; k < nk; k++) {
      int w = snprintf(p, left, "%s%s", k ? "," : "", keys[k]);
      if (w < 0 || (size_t)w >= left) break;
      p += w, left -= (size_t)w;
    }
    snprintf(out->env_args, sizeof out->env_args, "{}");
    if (H5Aexists(data, "env_args") > 0) {
      hid_t a = H5Aopen(data, "env_args", H5P_DEFAULT);
      hid_t ty = H5Aget_type(a);
      if (H5Tis_variable_str(ty) > 0) {
        hid_t mt = H5Tcopy(ty);  // the file's own string type (ASCII or UTF-8)
        char* s = NULL;
        if (H5Aread(a, mt, &s) >= 0 && s) {
          snprintf(out->env_args, sizeof out->env_args, "%s", s);
          H5free_memory(s);
        }
        H5Tclose(mt);
      } else if (H5Tget_class(ty) == H5T_STRING) {
        size_t n = H5Tget_size(ty);
        char* s = calloc(n + 1, 1);
        if (s && H5Aread(a, ty, s) >= 0) snprintf(out->env_args, sizeof out->env_args, "%s", s);
        free(s);
      }
      H5Tclose(ty);
      H5Aclose(a);
    }
    st = demos_fit_norms(out);
  }
done:
  free(tmp);
  free(demos.names);
  free(okeys.names);
  if (data >= 0) H5Gclose(data);
  H5Fclose(f);
  if (st) dt_demos_free(out);
  return st;
}
#endif
