// SPDX-License-Identifier: MIT
// Checkpoints in safetensors: the model under its state_dict names (loadable from PyTorch), and
// for resuming, the target network, the three Adam states, the replay buffer (a pixel buffer's
// uint8 frames as U8), every generator and the loop counters. Files are written atomically by
// dt_st_write.
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "difftop/io.h"
#include "rl_internal.h"

#define MAX_ENTRIES 4096

typedef struct entryList {
  dtStEntry e[MAX_ENTRIES];
  int shapes[MAX_ENTRIES][5];
  char names[MAX_ENTRIES][96];
  int n;
} entryList;

static dtStatus add(entryList* l, const char* prefix, const char* name, dtDtype dtype, int ndim,
                    const int* shape, const void* data) {
  if (l->n >= MAX_ENTRIES) return dt_error(DT_ERR_NOMEM, "checkpoint: more than %d tensors", MAX_ENTRIES);
  int i = l->n++;
  snprintf(l->names[i], sizeof l->names[i], "%s%s", prefix, name);
  for (int k = 0; k < ndim; k++) l->shapes[i][k] = shape[k];
  l->e[i] = (dtStEntry){l->names[i], dtype, ndim, l->shapes[i], data};
  return DT_OK;
}

static dtStatus add_params(entryList* l, const char* prefix, const dtParams* ps) {
  for (int i = 0; i < ps->count; i++) {
    const dtTensor* p = ps->items[i];
    dtStatus st = add(l, prefix, p->name, DT_DTYPE_F32, p->ndim, p->shape, p->val);
    if (st) return st;
  }
  return DT_OK;
}

// Adam moments per parameter, and the step counts as one int64 tensor
static dtStatus add_adam(entryList* l, const char* prefix, dtAdam* adam, const dtParams* ps,
                         int64_t* steps) {
  for (int i = 0; i < ps->count; i++) {
    float *m, *v;
    int64_t* s;
    dtStatus st = dt_adam_state(adam, i, &m, &v, &s);
    if (st) return st;
    steps[i] = *s;
    char name[128];
    const dtTensor* p = ps->items[i];
    snprintf(name, sizeof name, "%s.exp_avg", p->name);
    if ((st = add(l, prefix, name, DT_DTYPE_F32, p->ndim, p->shape, m))) return st;
    snprintf(name, sizeof name, "%s.exp_avg_sq", p->name);
    if ((st = add(l, prefix, name, DT_DTYPE_F32, p->ndim, p->shape, v))) return st;
  }
  int n = ps->count;
  return add(l, prefix, "steps", DT_DTYPE_I64, 1, &n, steps);
}

// metadata describing the run, for dt_rl_load_model and for people
static int add_meta(const char** kv, char bufs[][64], int k, const char* key, const char* fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int add_meta(const char** kv, char bufs[][64], int k, const char* key, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(bufs[k / 2], 64, fmt, ap);
  va_end(ap);
  kv[k] = key;
  kv[k + 1] = bufs[k / 2];
  return k + 2;
}

dtStatus dt_rl_save_model(const char* path, dtAgent* a, int64_t env_step) {
  const char* kv[16];
  char bufs[8][64];
  int k = 0;
  k = add_meta(kv, bufs, k, "format", "difftop-told-1");
  k = add_meta(kv, bufs, k, "task", "%s", a->cfg.task);
  k = add_meta(kv, bufs, k, "algo", "%s", a->cfg.algo ? "difftop" : "tdmpc");
  k = add_meta(kv, bufs, k, "env_step", "%lld", (long long)env_step);
  k = add_meta(kv, bufs, k, "obs_dim", "%d", a->S);
  k = add_meta(kv, bufs, k, "action_dim", "%d", a->A);
  k = add_meta(kv, bufs, k, "mlp_dim", "%d", a->cfg.mlp_dim);
  k = add_meta(kv, bufs, k, "latent_dim", "%d", a->cfg.latent_dim);
  return dt_params_save(path, a->model.params.items, a->model.params.count, kv, k / 2);
}

dtStatus dt_rl_load_model(const char* path, dtAgent* a) {
  return dt_params_load(path, a->model.params.items, a->model.params.count);
}

dtStatus dt_rl_save_checkpoint(const char* path, dtAgent* a, dtReplay* r, const dtRunState* rs) {
  entryList* l = dt_calloc(1, sizeof *l);
  int64_t* steps = dt_calloc((size_t)a->model.params.count * 3 + 3, sizeof(int64_t));
  if (!l || !steps) {
    dt_free(l), dt_free(steps);
    return DT_ERR_NOMEM;
  }
  dtReplayView v;
  dtStatus st = dt_replay_view(r, &v);
  int np = a->model.params.count;
  if (!st) st = add_params(l, "", &a->model.params);
  if (!st) st = add_params(l, "target.", &a->target.params);
  if (!st) st = add_adam(l, "optim.", a->adam, &a->model.params, steps);
  if (!st) st = add_adam(l, "pi_optim.", a->pi_adam, &a->pi_view, steps + np);
  if (!st) st = add_adam(l, "pg_optim.", a->pg_adam, &a->model.params, steps + 2 * np);
  int L = v.episode_len, S = v.obs_dim, A = v.action_dim, sl = v.slots;
  int so[3] = {sl, L + 1, S}, sa[3] = {sl, L, A}, sr[2] = {sl, L};
  int sf[5] = {sl, L + 1, 3, v.frame_h, v.frame_w};
  if (!st && !v.pixels) st = add(l, "replay.", "obs", DT_DTYPE_F32, 3, so, v.obs);
  if (!st && v.pixels) st = add(l, "replay.", "frames", DT_DTYPE_U8, 5, sf, v.frames);
  if (!st) st = add(l, "replay.", "actions", DT_DTYPE_F32, 3, sa, v.actions);
  if (!st) st = add(l, "replay.", "rewards", DT_DTYPE_F32, 2, sr, v.rewards);
  if (!st) st = add(l, "replay.", "priorities", DT_DTYPE_F32, 2, sr, v.prio);
  // counters and generators as metadata (exact integers in text)
  const char* kv[40];
  char bufs[20][64];
  int k = 0;
  k = add_meta(kv, bufs, k, "format", "difftop-checkpoint-1");
  k = add_meta(kv, bufs, k, "task", "%s", a->cfg.task);
  k = add_meta(kv, bufs, k, "step", "%lld", (long long)rs->step);
  k = add_meta(kv, bufs, k, "episode", "%d", rs->episode);
  k = add_meta(kv, bufs, k, "next_eval", "%lld", (long long)rs->next_eval);
  k = add_meta(kv, bufs, k, "first_update", "%d", rs->first_update);
  k = add_meta(kv, bufs, k, "best_eval", "%.17g", rs->best);
  k = add_meta(kv, bufs, k, "last_eval", "%.17g", rs->last_eval);
  k = add_meta(kv, bufs, k, "updates", "%lld", (long long)a->updates);
  k = add_meta(kv, bufs, k, "replay", "%d %d %.9g", *v.filled, *v.next, (double)*v.max_prio);
  const dtRng* rngs[3] = {&a->rng, rs->env_rng, rs->eval_rng};
  const char* names[3] = {"rng.agent", "rng.env", "rng.eval_env"};
  for (int i = 0; i < 3; i++)
    k = add_meta(kv, bufs, k, names[i], "%" PRIx64 " %" PRIx64 " %d %a", rngs[i]->state,
                 rngs[i]->inc, rngs[i]->has_spare, (double)rngs[i]->spare);
  if (!st) st = dt_st_write(path, l->e, l->n, kv, k / 2);
  dt_free(l), dt_free(steps);
  return st;
}

//---------------------------------------------------------------------------------------------
// loading

static dtStatus read_tensor(const dtSafetensors* f, const char* prefix, const char* name,
                            float* dst, int ndim, const int* shape) {
  char full[160];
  snprintf(full, sizeof full, "%s%s", prefix, name);
  return dt_st_read_f32(f, full, dst, ndim, shape);
}

// a replay array saved with `saved` slots into a buffer of at least as many slots
static dtStatus read_slots(const dtSafetensors* f, const char* name, float* dst, int slots,
                           int64_t per_slot, int* saved) {
  char full[64];
  snprintf(full, sizeof full, "replay.%s", name);
  dtStInfo info;
  dtStatus st = dt_st_find(f, full, &info);
  if (st) return st;
  int64_t inner = 1;
  for (int k = 1; k < info.ndim; k++) inner *= info.shape[k];
  if (info.dtype != DT_DTYPE_F32 || info.ndim < 2 || inner != per_slot || info.shape[0] > slots)
    return dt_error(DT_ERR_FORMAT, "checkpoint %s: '%s' does not fit a buffer of %d slots of %lld "
                    "values (a resumed run may grow the buffer, not change its episodes)",
                    dt_st_path(f), full, slots, (long long)per_slot);
  memcpy(dst, info.data, info.nbytes);
  *saved = (int)info.shape[0];
  return DT_OK;
}

// a pixel buffer's frames [saved, L + 1, 3, H, W] (U8) into a buffer of at least as many slots
static dtStatus read_frames(const dtSafetensors* f, const dtReplayView* v, int* saved) {
  dtStInfo info;
  dtStatus st = dt_st_find(f, "replay.frames", &info);
  if (st) return st;
  int want[4] = {v->episode_len + 1, 3, v->frame_h, v->frame_w};
  int fits = info.dtype == DT_DTYPE_U8 && info.ndim == 5 && info.shape[0] <= v->slots;
  for (int k = 0; fits && k < 4; k++) fits = info.shape[k + 1] == want[k];
  if (!fits)
    return dt_error(DT_ERR_FORMAT, "checkpoint %s: 'replay.frames' is not U8 [<= %d, %d, 3, %d, "
                    "%d] (the run's episode length and image size)", dt_st_path(f), v->slots,
                    want[0], want[2], want[3]);
  memcpy(v->frames, info.data, info.nbytes);
  *saved = (int)info.shape[0];
  return DT_OK;
}

static dtStatus read_params(const dtSafetensors* f, const char* prefix, dtParams* ps) {
  for (int i = 0; i < ps->count; i++) {
    dtTensor* p = ps->items[i];
    dtStatus st = read_tensor(f, prefix, p->name, p->val, p->ndim, p->shape);
    if (st) return st;
  }
  return DT_OK;
}

static dtStatus read_adam(const dtSafetensors* f, const char* prefix, dtAdam* adam,
                          const dtParams* ps) {
  char full[160];
  snprintf(full, sizeof full, "%ssteps", prefix);
  dtStInfo info;
  dtStatus st = dt_st_find(f, full, &info);
  if (st) return st;
  if (info.dtype != DT_DTYPE_I64 || info.numel != ps->count)
    return dt_error(DT_ERR_FORMAT, "checkpoint %s: '%s' must be %d int64 steps", dt_st_path(f),
                    full, ps->count);
  for (int i = 0; i < ps->count; i++) {
    float *m, *v;
    int64_t* s;
    if ((st = dt_adam_state(adam, i, &m, &v, &s))) return st;
    memcpy(s, (const char*)info.data + 8 * (size_t)i, 8);
    const dtTensor* p = ps->items[i];
    char name[128];
    snprintf(name, sizeof name, "%s.exp_avg", p->name);
    if ((st = read_tensor(f, prefix, name, m, p->ndim, p->shape))) return st;
    snprintf(name, sizeof name, "%s.exp_avg_sq", p->name);
    if ((st = read_tensor(f, prefix, name, v, p->ndim, p->shape))) return st;
  }
  return DT_OK;
}

static dtStatus meta_ll(const dtSafetensors* f, const char* key, long long* out) {
  const char* s = dt_st_metadata(f, key);
  char* end;
  if (!s) return dt_error(DT_ERR_FORMAT, "checkpoint %s: metadata '%s' missing", dt_st_path(f), key);
  *out = strtoll(s, &end, 10);
  if (end == s) return dt_error(DT_ERR_FORMAT, "checkpoint %s: metadata '%s' = '%s' is not an integer", dt_st_path(f), key, s);
  return DT_OK;
}

static dtStatus meta_rng(const dtSafetensors* f, const char* key, dtRng* rng) {
  const char* s = dt_st_metadata(f, key);
  double spare;
  uint64_t state, inc;
  int has;
  if (!s || sscanf(s, "%" SCNx64 " %" SCNx64 " %d %la", &state, &inc, &has, &spare) != 4)
    return dt_error(DT_ERR_FORMAT, "checkpoint %s: generator '%s' missing or malformed",
                    dt_st_path(f), key);
  rng->state = state, rng->inc = inc, rng->has_spare = has, rng->spare = (float)spare;
  return DT_OK;
}

dtStatus dt_rl_load_checkpoint(const char* path, dtAgent* a, dtReplay* r, dtRunState* rs) {
  dtSafetensors* f;
  dtStatus st = dt_st_open(path, &f);
  if (st) return st;
  const char* fmt = dt_st_metadata(f, "format");
  if (!fmt || strcmp(fmt, "difftop-checkpoint-1")) {
    st = dt_error(DT_ERR_FORMAT, "checkpoint %s: not a difftop training checkpoint (format '%s')",
                  path, fmt ? fmt : "missing");
    dt_st_close(f);
    return st;
  }
  dtReplayView v;
  long long step, episode, next_eval, first, updates;
  int filled, next;
  double maxp;
  if (!st) st = dt_replay_view(r, &v);
  if (!st) st = meta_ll(f, "step", &step);
  if (!st) st = meta_ll(f, "episode", &episode);
  if (!st) st = meta_ll(f, "next_eval", &next_eval);
  if (!st) st = meta_ll(f, "first_update", &first);
  if (!st) st = meta_ll(f, "updates", &updates);
  const char* rep = dt_st_metadata(f, "replay");
  if (!st && (!rep || sscanf(rep, "%d %d %lf", &filled, &next, &maxp) != 3 || filled < 0 ||
              filled > v.slots || next < 0 || next > v.slots))
    st = dt_error(DT_ERR_FORMAT, "checkpoint %s: replay counters missing or out of range", path);
  // all checks pass before anything is overwritten? the reads below are shape-checked one by
  // one; on failure the agent is left partially loaded and the caller must discard it
  if (!st) st = read_params(f, "", &a->model.params);
  if (!st) st = read_params(f, "target.", &a->target.params);
  if (!st) st = read_adam(f, "optim.", a->adam, &a->model.params);
  if (!st) st = read_adam(f, "pi_optim.", a->pi_adam, &a->pi_view);
  if (!st) st = read_adam(f, "pg_optim.", a->pg_adam, &a->model.params);
  int L = v.episode_len, S = v.obs_dim, A = v.action_dim, sl = v.slots, saved = 0;
  // pixel checkpoints of earlier versions held no frames
  if (!st && dt_st_metadata(f, "replay_frames"))
    st = dt_error(DT_ERR_UNSUPPORTED, "checkpoint %s: written without its replay frames (an "
                  "earlier difftop); a pixel run resumes only from a checkpoint that has them", path);
  if (!st && v.pixels) st = read_frames(f, &v, &saved);
  if (!st && !v.pixels) st = read_slots(f, "obs", v.obs, sl, (int64_t)(L + 1) * S, &saved);
  if (!st) st = read_slots(f, "actions", v.actions, sl, (int64_t)L * A, &saved);
  if (!st) st = read_slots(f, "rewards", v.rewards, sl, L, &saved);
  if (!st) st = read_slots(f, "priorities", v.prio, sl, L, &saved);
  if (!st && (filled > saved || next > saved))
    st = dt_error(DT_ERR_FORMAT, "checkpoint %s: replay counters exceed its %d saved episodes",
                  path, saved);
  if (!st) st = meta_rng(f, "rng.agent", &a->rng);
  if (!st) st = meta_rng(f, "rng.env", rs->env_rng);
  if (!st) st = meta_rng(f, "rng.eval_env", rs->eval_rng);
  if (!st) {
    // a larger buffer continues after the saved episodes
    *v.filled = filled, *v.next = next % v.slots, *v.max_prio = (float)maxp;
    a->updates = updates;
    rs->step = step, rs->episode = (int)episode, rs->next_eval = next_eval;
    rs->first_update = (int)first;
    const char* b = dt_st_metadata(f, "best_eval");
    const char* le = dt_st_metadata(f, "last_eval");
    rs->best = b ? strtod(b, NULL) : -1e300;
    rs->last_eval = le ? strtod(le, NULL) : 0;
  }
  dt_st_close(f);
  return st;
}
