// SPDX-License-Identifier: MIT
// The training loop of TD-MPC and DiffTOP (official-code.md 1.5): seed steps of random
// actions, then MPPI, then (DiffTOP) trajectory optimization with the policy gradient; model
// updates after each episode; evaluations every eval_freq env steps; CSV logs in a run dir.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rl_internal.h"
#include "difftop/rltrain.h"

//---------------------------------------------------------------------------------------------
// helpers

// mkdir -p: the run directory and any missing parents
static dtStatus make_dir(const char* path) {
  char buf[1024];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return dt_error(DT_ERR_ARG, "run directory path too long: '%s'", path);
  for (char* p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return dt_error(DT_ERR_IO, "cannot create directory '%s': %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0755) == 0 || errno == EEXIST) return DT_OK;
  return dt_error(DT_ERR_IO, "cannot create directory '%s': %s", path, strerror(errno));
}

static FILE* open_csv(const char* dir, const char* name, const char* header, int append) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, append ? "a" : "w");
  if (!f) {
    dt_error(DT_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  if (!append) {
    fprintf(f, "%s\n", header);
    fflush(f);
  }
  return f;
}

// keep the rows of a CSV whose first column is at most limit (drops rows written after the
// checkpoint a run resumes from)
static dtStatus truncate_csv(const char* dir, const char* name, double limit) {
  char path[1024], tmp[1040], line[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE* in = fopen(path, "r");
  if (!in) return dt_error(DT_ERR_IO, "cannot read '%s' to resume: %s", path, strerror(errno));
  FILE* out = fopen(tmp, "w");
  if (!out) {
    fclose(in);
    return dt_error(DT_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
  }
  int first = 1;
  while (fgets(line, sizeof line, in)) {
    if (first || strtod(line, NULL) <= limit) fputs(line, out);
    first = 0;
  }
  fclose(in);
  int bad = fclose(out) != 0;
  if (bad || rename(tmp, path) != 0)
    return dt_error(DT_ERR_IO, "cannot replace '%s': %s", path, strerror(errno));
  return DT_OK;
}

static void progress(const dtRLConfig* c, int64_t env_step, int64_t total, double t_start,
                     double last_return, double last_eval) {
  if (!c->progress) return;
  double el = dt_time_s() - t_start;
  double rate = el > 0 ? env_step / el : 0;
  double eta = rate > 0 ? (total - env_step) / rate : 0;
  int width = 24, fill = total > 0 ? (int)(width * (double)env_step / total) : 0;
  char bar[32];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
  bar[width] = 0;
  fprintf(stderr, "\r[%s] %lld/%lld env steps | %.0f steps/s | ETA %02d:%02d:%02d | return %.1f | eval %.1f ",
          bar, (long long)env_step, (long long)total, rate, (int)(eta / 3600),
          (int)(fmod(eta, 3600) / 60), (int)fmod(eta, 60), last_return, last_eval);
  fflush(stderr);
}

//---------------------------------------------------------------------------------------------
// evaluation

// uint8 pixels to the floats 0..255 the agent takes
static void pixels_to_float(const uint8_t* u, float* f, int64_t n) {
  for (int64_t i = 0; i < n; i++) f[i] = (float)u[i];
}

dtStatus dt_rl_evaluate(dtAgent* a, dtEnv* env, int episodes, int64_t step, double* mean,
                        double* std, double* returns) {
  const dtSpace* os = dt_env_obs_space(env);
  int A = dt_env_action_space(env)->shape[0];
  float small[4096], act[64];
  int pixels = os->dtype == DT_U8;
  if ((!pixels && os->size > 4096) || A > 64)
    return dt_error(DT_ERR_UNSUPPORTED, "evaluation: observation %lld or action %d too large",
                    (long long)os->size, A);
  // pixels: the env writes uint8 images, the agent reads floats
  float* obs = pixels ? dt_malloc((size_t)os->size * sizeof(float)) : small;
  uint8_t* raw = pixels ? dt_malloc((size_t)os->size) : NULL;
  if (!obs || (pixels && !raw)) {
    if (pixels) dt_free(obs), dt_free(raw);
    return DT_ERR_NOMEM;
  }
  void* env_obs = pixels ? (void*)raw : (void*)obs;
  double sum = 0, sum2 = 0;
  dtStatus st = DT_OK;
  for (int e = 0; e < episodes && !st; e++) {
    if ((st = dt_env_reset(env, -1, env_obs))) break;
    double ret = 0;
    dtStepInfo info = {0};
    for (int t = 0; !info.terminated && !info.truncated; t++) {
      if (pixels) pixels_to_float(raw, obs, os->size);
      if ((st = dt_agent_act(a, obs, step, t == 0, 1, act))) break;
      if ((st = dt_env_step(env, act, A, env_obs, &info))) break;
      ret += info.reward;
    }
    if (st) break;
    if (returns) returns[e] = ret;
    sum += ret, sum2 += ret * ret;
  }
  if (pixels) dt_free(obs), dt_free(raw);
  if (st) return st;
  *mean = sum / episodes;
  if (std) *std = episodes > 1 ? sqrt(fmax(0, sum2 / episodes - *mean * *mean)) : 0;
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// the run

typedef struct runState {
  dtEnv *env, *eval_env;
  dtAgent* agent;
  dtReplay* replay;
  float *ep_obs, *ep_act, *ep_rew;
  uint8_t* ep_pix;   // pixels: the episode's observations [L+1, S] as the env wrote them
  FILE *train_csv, *eval_csv;
} runState;

static void run_free(runState* r) {
  dt_env_free(r->env), dt_env_free(r->eval_env);
  dt_agent_free(r->agent);
  dt_replay_free(r->replay);
  dt_free(r->ep_obs), dt_free(r->ep_act), dt_free(r->ep_rew), dt_free(r->ep_pix);
  if (r->train_csv) fclose(r->train_csv);
  if (r->eval_csv) fclose(r->eval_csv);
}

static dtStatus write_config(const dtRLConfig* c, const char* dir) {
  char buf[8192], path[1024];
  dtStatus st = dt_rl_config_dump(c, buf, sizeof buf);
  if (st) return st;
  snprintf(path, sizeof path, "%s/config.yaml", dir);
  FILE* f = fopen(path, "w");
  if (!f) return dt_error(DT_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
  fprintf(f, "# resolved configuration of this run (difftop %s)\n%s", dt_version_string(), buf);
  fclose(f);
  return DT_OK;
}

static dtStatus setup(const dtRLConfig* c, const char* dir, int resume, runState* r, int* L,
                      int* ar) {
  dtEnvOpts eo = dt_env_default_opts();
  eo.seed = c->seed;
  eo.action_repeat = c->action_repeat;
  eo.obs = c->obs == DT_OBS_PIXELS ? DT_OBS_PIXELS : DT_OBS_STATE;
  if (eo.obs == DT_OBS_PIXELS) eo.frame_stack = c->frame_stack, eo.image_size = c->img_size;
  dtStatus st = dt_env_make(c->task, &eo, &r->env);
  if (st) return st;
  eo.seed = c->seed + 1000003;  // evaluation episodes come from their own stream
  if ((st = dt_env_make(c->task, &eo, &r->eval_env))) return st;
  *ar = c->action_repeat > 0 ? c->action_repeat : dt_env_default_action_repeat(c->task);
  if (*ar < 1) *ar = 1;
  *L = c->episode_length / *ar;
  int S = (int)dt_env_obs_space(r->env)->size, A = dt_env_action_space(r->env)->shape[0];
  if ((st = dt_agent_new(c, S, A, &r->agent))) return st;
  int64_t cap = c->train_steps / *ar;
  if (cap > c->max_buffer_size) cap = c->max_buffer_size;
  if (cap < *L) cap = *L;
  if (eo.obs == DT_OBS_PIXELS) {
    // the buffer keeps the newest frame of each step; the episode is staged as uint8, and
    // ep_obs holds only the current observation as floats
    st = dt_replay_new_pixels(c->frame_stack, c->img_size, c->img_size, A, *L, cap + *L,
                              c->horizon, c, &r->replay);
    if (st) return st;
    r->ep_pix = dt_malloc((size_t)(*L + 1) * S);
    r->ep_obs = dt_malloc((size_t)S * sizeof(float));
  } else {
    if ((st = dt_replay_new(S, A, *L, cap + *L, c->horizon, c, &r->replay))) return st;
    r->ep_obs = dt_malloc((size_t)(*L + 1) * S * sizeof(float));
  }
  if (eo.obs == DT_OBS_PIXELS && !r->ep_pix) return DT_ERR_NOMEM;
  r->ep_act = dt_malloc((size_t)*L * A * sizeof(float));
  r->ep_rew = dt_malloc((size_t)*L * sizeof(float));
  if (!r->ep_obs || !r->ep_act || !r->ep_rew) return DT_ERR_NOMEM;
  if ((st = make_dir(dir))) return st;
  if (!resume && (st = write_config(c, dir))) return st;
  r->train_csv = open_csv(dir, "train.csv",
                          "episode,env_step,return,planner,episode_seconds,consistency,reward_loss,"
                          "value_loss,state_value_loss,pi_loss,grad_norm,pg_grad_norm", resume);
  r->eval_csv = open_csv(dir, "eval.csv", "env_step,mean_return,std_return,episodes,wall_seconds",
                         resume);
  if (!r->train_csv || !r->eval_csv) return dt_last_status();
  return DT_OK;
}

// one training episode: act, step, and (DiffTOP official) accumulate the PG term
static dtStatus run_episode(const dtRLConfig* c, runState* r, int L, int64_t* step,
                            double* ret, int* planner, float* pg_norm) {
  dtAgent* a = r->agent;
  int S = a->S, A = a->A;
  uint8_t* pix = r->ep_pix;  // pixels: uint8 episode staging, ep_obs is the current obs
  dtStatus st = dt_env_reset(r->env, -1, pix ? (void*)pix : (void*)r->ep_obs);
  if (st) return st;
  *ret = 0;
  *planner = dt_agent_planner(a, *step, 0);
  int pg_official = c->algo == DT_ALGO_DIFFTOP && c->pg_mode == DT_PG_OFFICIAL && *planner == 2;
  for (int t = 0; t < L; t++) {
    float* obs = pix ? r->ep_obs : r->ep_obs + (size_t)t * S;
    float* act = r->ep_act + (size_t)t * A;
    if (pix) pixels_to_float(pix + (size_t)t * S, obs, S);
    if ((st = dt_agent_act(a, obs, *step, t == 0, 0, act))) return st;
    if (pg_official && (st = dt_agent_pg_accumulate(a, obs))) return st;
    // the buffer keeps the action the env received (clipped to the box)
    for (int j = 0; j < A; j++) act[j] = act[j] > 1 ? 1 : (act[j] < -1 ? -1 : act[j]);
    dtStepInfo info;
    void* next = pix ? (void*)(pix + (size_t)(t + 1) * S) : (void*)(obs + S);
    if ((st = dt_env_step(r->env, act, A, next, &info))) return st;
    r->ep_rew[t] = info.reward;
    *ret += info.reward;
    (*step)++;
  }
  *pg_norm = 0;
  if (pg_official) st = dt_agent_pg_step(a, pg_norm);
  return st;
}

// a checkpoint of the whole run, and the model alone as latest (and best when it improved)
static dtStatus save_all(const char* dir, runState* r, const dtRunState* rs, int ar, int improved) {
  char path[1024];
  snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
  dtStatus st = dt_rl_save_checkpoint(path, r->agent, r->replay, rs);
  snprintf(path, sizeof path, "%s/latest.safetensors", dir);
  if (!st) st = dt_rl_save_model(path, r->agent, rs->step * ar);
  snprintf(path, sizeof path, "%s/best.safetensors", dir);
  if (!st && improved) st = dt_rl_save_model(path, r->agent, rs->step * ar);
  return st;
}

static dtStatus resume_run(const char* dir, runState* r, dtRunState* rs) {
  char path[1024];
  snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
  dtStatus st = dt_rl_load_checkpoint(path, r->agent, r->replay, rs);
  if (st) return st;
  // rows written after the checkpoint are dropped: the resumed run writes them again
  fclose(r->train_csv), fclose(r->eval_csv);
  r->train_csv = r->eval_csv = NULL;
  if ((st = truncate_csv(dir, "train.csv", rs->episode))) return st;
  if ((st = truncate_csv(dir, "eval.csv", (double)(rs->next_eval - 1)))) return st;
  r->train_csv = open_csv(dir, "train.csv", "", 1);
  r->eval_csv = open_csv(dir, "eval.csv", "", 1);
  return r->train_csv && r->eval_csv ? DT_OK : dt_last_status();
}

dtStatus dt_rl_train_ex(const dtRLConfig* cfg, const char* run_dir, int resume,
                        dtTrainResult* result) {
  if (!cfg || !run_dir) return dt_error(DT_ERR_ARG, "dt_rl_train: NULL config or run dir");
  dtRLConfig c = *cfg;
  dt_set_num_threads(c.threads);
  runState r;
  memset(&r, 0, sizeof r);
  int L = 0, ar = 1;
  dtStatus st = setup(&c, run_dir, resume, &r, &L, &ar);
  dtRunState rs = {0, 0, 0, 1, -INFINITY, NAN, NULL, NULL};
  if (!st) {
    rs.env_rng = dt_env_rng(r.env);
    rs.eval_rng = dt_env_rng(r.eval_env);
    if (resume) st = resume_run(run_dir, &r, &rs);
  }
  if (st) {
    run_free(&r);
    return st;
  }
  int64_t total_agent = c.train_steps / ar;
  double t_start = dt_time_s(), last_ret = NAN;
  dtUpdateInfo ui = {0};
  while (!st) {
    // evaluation every eval_freq env steps (and at 0, as TD-MPC), then a checkpoint
    if (rs.step * ar >= rs.next_eval) {
      double mean, sd;
      if ((st = dt_rl_evaluate(r.agent, r.eval_env, c.eval_episodes, rs.step, &mean, &sd, NULL))) break;
      fprintf(r.eval_csv, "%lld,%.6g,%.6g,%d,%.3f\n", (long long)(rs.step * ar), mean, sd,
              c.eval_episodes, dt_time_s() - t_start);
      fflush(r.eval_csv);
      rs.last_eval = mean;
      int improved = mean > rs.best;
      if (improved) rs.best = mean;
      rs.next_eval += c.eval_freq;
      if ((st = save_all(run_dir, &r, &rs, ar, improved))) break;
    }
    if (rs.step >= total_agent) break;
    double ret, t_ep = dt_time_s();
    int planner;
    float pg_norm;
    if ((st = run_episode(&c, &r, L, &rs.step, &ret, &planner, &pg_norm))) break;
    st = r.ep_pix ? dt_replay_add_pixels(r.replay, r.ep_pix, r.ep_act, r.ep_rew)
                  : dt_replay_add(r.replay, r.ep_obs, r.ep_act, r.ep_rew);
    if (st) break;
    // updates: a burst of seed_steps at the end of the seed phase, then one per agent step
    if (rs.step >= c.seed_steps) {
      int n = rs.first_update ? c.seed_steps : L;
      rs.first_update = 0;
      int pg_batched = c.algo == DT_ALGO_DIFFTOP && c.pg_mode == DT_PG_BATCHED &&
                       rs.step >= (int64_t)c.seed_steps + c.mppi_steps;
      for (int i = 0; i < n && !st; i++) {
        st = dt_agent_update(r.agent, r.replay, rs.step + i, &ui);
        if (!st && pg_batched && c.pg_every > 0 && (i + 1) % c.pg_every == 0)
          st = dt_agent_pg_batch(r.agent, r.replay, NULL);
      }
      if (st) break;
    }
    rs.episode++;
    last_ret = ret;
    fprintf(r.train_csv, "%d,%lld,%.6g,%s,%.3f,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", rs.episode,
            (long long)(rs.step * ar), ret, planner == 0 ? "random" : planner == 1 ? "mppi" : "trajopt",
            dt_time_s() - t_ep, ui.consistency, ui.reward, ui.value, ui.state_value, ui.pi,
            ui.grad_norm, pg_norm);
    fflush(r.train_csv);
    if (c.save_freq > 0 && (rs.step * ar) % c.save_freq < L * ar)
      if ((st = save_all(run_dir, &r, &rs, ar, 0))) break;
    progress(&c, rs.step * ar, c.train_steps, t_start, last_ret, rs.last_eval);
  }
  if (c.progress) fprintf(stderr, "\n");
  if (!st) st = save_all(run_dir, &r, &rs, ar, 0);  // the end state, to extend the run later
  if (result && !st) {
    result->final_eval = rs.last_eval;
    result->best_eval = rs.best;
    result->env_steps = rs.step * ar;
    result->episodes = rs.episode;
    result->seconds = dt_time_s() - t_start;
    memcpy(result->phase_seconds, dt_agent_timers(r.agent), sizeof result->phase_seconds);
  }
  run_free(&r);
  return st;
}

dtStatus dt_rl_train(const dtRLConfig* cfg, const char* run_dir, dtTrainResult* result) {
  return dt_rl_train_ex(cfg, run_dir, 0, result);
}
