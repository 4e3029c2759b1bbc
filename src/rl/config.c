// SPDX-License-Identifier: MIT
// RL settings: the official defaults and a key table for text (YAML, command line) access.
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "difftop/rl.h"

void dt_rl_config_default(dtRLConfig* c) {
  memset(c, 0, sizeof *c);
  snprintf(c->task, sizeof c->task, "cartpole-swingup");
  c->algo = DT_ALGO_DIFFTOP;
  c->seed = 1;
  c->train_steps = 100000;
  c->episode_length = 1000;
  c->eval_freq = 20000;
  c->eval_episodes = 10;
  c->latent_dim = 50, c->mlp_dim = 512, c->enc_dim = 256;
  c->obs = DT_OBS_STATE;
  c->frame_stack = 3, c->img_size = 84, c->num_channels = 32;
  c->discount = 0.99f;
  c->batch_size = 512;
  c->lr = 1e-3f;
  c->horizon = 5;
  c->seed_steps = 5000;
  c->reward_coef = 0.5f, c->value_coef = 0.1f, c->consistency_coef = 2.0f, c->rho = 0.5f;
  c->grad_clip_norm = 10.0f;
  c->update_freq = 2;
  c->tau = 0.01f;
  c->max_buffer_size = 1000000;
  c->per_alpha = 0.6f, c->per_beta = 0.4f, c->per_eps = 1e-6f;
  c->horizon_start = 1, c->horizon_end = 5, c->horizon_schedule_steps = 25000;
  c->std_start = 0.5f, c->std_end = 0.05f, c->std_schedule_steps = 25000;
  c->iterations = 6, c->num_samples = 512, c->num_elites = 64;
  c->mixture_coef = 0.05f, c->min_std = 0.05f, c->temperature = 0.5f, c->momentum = 0.1f;
  c->mppi_steps = 1000;
  c->max_iterations = 50;
  c->step_size = 1e-3f, c->damping = 1e-3f;
  c->solver = DT_SOLVER_LM;
  c->backward_mode = DT_BACKWARD_TRUNCATED;
  c->backward_num_iterations = 5;
  c->grad_clip_norm_a = 100.0f;
  c->pg_coef = 1.0f;
  c->pg_mode = DT_PG_OFFICIAL;
  c->pg_every = 10;
  c->pg_batch = 32;
  c->init_std = 0.05f;
  c->threads = 1;
  c->progress = 1;
}

// one key of the table: its name, type and where it lives in the struct
typedef enum { K_INT, K_I64, K_U64, K_FLOAT, K_STR, K_ALGO, K_SOLVER, K_BACKWARD, K_PGMODE, K_OBS } kind_t;
typedef struct {
  const char* name;
  kind_t kind;
  size_t off;
} key_t_;

#define K(name, kind) {#name, kind, offsetof(dtRLConfig, name)}
static const key_t_ keys[] = {
    K(task, K_STR), K(algo, K_ALGO), K(seed, K_U64), K(train_steps, K_I64),
    K(action_repeat, K_INT), K(episode_length, K_INT), K(eval_freq, K_INT),
    K(eval_episodes, K_INT), K(save_freq, K_INT), K(latent_dim, K_INT), K(mlp_dim, K_INT),
    K(enc_dim, K_INT), K(obs, K_OBS), K(frame_stack, K_INT), K(img_size, K_INT),
    K(num_channels, K_INT), K(discount, K_FLOAT), K(batch_size, K_INT), K(lr, K_FLOAT),
    K(horizon, K_INT), K(seed_steps, K_INT), K(reward_coef, K_FLOAT), K(value_coef, K_FLOAT),
    K(consistency_coef, K_FLOAT), K(rho, K_FLOAT), K(grad_clip_norm, K_FLOAT),
    K(update_freq, K_INT), K(tau, K_FLOAT), K(max_buffer_size, K_I64), K(per_alpha, K_FLOAT),
    K(per_beta, K_FLOAT), K(per_eps, K_FLOAT), K(horizon_start, K_INT), K(horizon_end, K_INT),
    K(horizon_schedule_steps, K_INT), K(std_start, K_FLOAT), K(std_end, K_FLOAT),
    K(std_schedule_steps, K_INT), K(iterations, K_INT), K(num_samples, K_INT),
    K(num_elites, K_INT), K(mixture_coef, K_FLOAT), K(min_std, K_FLOAT),
    K(temperature, K_FLOAT), K(momentum, K_FLOAT), K(mppi_steps, K_INT),
    K(max_iterations, K_INT), K(step_size, K_FLOAT), K(damping, K_FLOAT), K(solver, K_SOLVER),
    K(backward_mode, K_BACKWARD), K(backward_num_iterations, K_INT),
    K(grad_clip_norm_a, K_FLOAT), K(pg_coef, K_FLOAT), K(pg_mode, K_PGMODE),
    K(pg_every, K_INT), K(pg_batch, K_INT), K(init_std, K_FLOAT), K(lm_project, K_INT), K(shift_init, K_INT),
    K(explore, K_INT), K(mppi_init, K_INT),
    K(no_backward, K_INT),
    K(no_pi_init, K_INT), K(no_reward_loss, K_INT), K(no_dynamics_loss, K_INT),
    K(threads, K_INT), K(progress, K_INT),
};
#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

const char* const* dt_rl_config_keys(void) {
  static const char* names[NKEYS + 1];
  if (!names[0])
    for (int i = 0; i < NKEYS; i++) names[i] = keys[i].name;
  return names;
}

// Levenshtein distance, for "did you mean" suggestions
static int edit_distance(const char* a, const char* b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la > 63 || lb > 63) return 99;
  int d[64][64];
  for (int i = 0; i <= la; i++) d[i][0] = i;
  for (int j = 0; j <= lb; j++) d[0][j] = j;
  for (int i = 1; i <= la; i++)
    for (int j = 1; j <= lb; j++) {
      int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
      d[i][j] = c;
    }
  return d[la][lb];
}

static dtStatus bad_value(const char* key, const char* value, const char* want) {
  return dt_error(DT_ERR_FORMAT, "config key '%s': '%s' is not %s", key, value, want);
}

static dtStatus parse_enum(const char* key, const char* value, int (*parse)(const char*),
                           const char* options, int* out) {
  int v = parse(value);
  if (v < 0) return dt_error(DT_ERR_FORMAT, "config key '%s': unknown value '%s' (one of %s)",
                             key, value, options);
  *out = v;
  return DT_OK;
}

static int parse_algo(const char* s) {
  return !strcmp(s, "tdmpc") ? DT_ALGO_TDMPC : !strcmp(s, "difftop") ? DT_ALGO_DIFFTOP : -1;
}

static int parse_pgmode(const char* s) {
  return !strcmp(s, "official") ? DT_PG_OFFICIAL : !strcmp(s, "batched") ? DT_PG_BATCHED : -1;
}

static int parse_obs(const char* s) {
  return !strcmp(s, "state") ? DT_OBS_STATE : !strcmp(s, "pixels") ? DT_OBS_PIXELS : -1;
}

static int parse_bool_or_int(const char* s, long long* v) {
  if (!strcmp(s, "true") || !strcmp(s, "True")) return *v = 1, 1;
  if (!strcmp(s, "false") || !strcmp(s, "False")) return *v = 0, 1;
  char* end;
  errno = 0;
  double d = strtod(s, &end);  // accepts 1e5, 100000, 5000.0
  if (end == s || *end || errno || d != (double)(long long)d) return 0;
  *v = (long long)d;
  return 1;
}

dtStatus dt_rl_config_set(dtRLConfig* c, const char* key, const char* value) {
  if (!c || !key || !value) return dt_error(DT_ERR_ARG, "dt_rl_config_set: NULL argument");
  for (int i = 0; i < NKEYS; i++) {
    if (strcmp(keys[i].name, key)) continue;
    char* field = (char*)c + keys[i].off;
    long long iv;
    char* end;
    switch (keys[i].kind) {
      case K_STR:
        if (strlen(value) >= sizeof c->task) return bad_value(key, value, "a short name");
        snprintf(field, sizeof c->task, "%s", value);
        return DT_OK;
      case K_INT:
      case K_I64:
      case K_U64:
        if (!parse_bool_or_int(value, &iv)) return bad_value(key, value, "an integer");
        if (keys[i].kind == K_INT) {
          if (iv < -2147483647LL || iv > 2147483647LL) return bad_value(key, value, "a 32-bit integer");
          *(int*)field = (int)iv;
        } else if (keys[i].kind == K_I64) {
          *(int64_t*)field = iv;
        } else {
          if (iv < 0) return bad_value(key, value, "a non-negative integer");
          *(uint64_t*)field = (uint64_t)iv;
        }
        return DT_OK;
      case K_FLOAT: {
        errno = 0;
        float f = strtof(value, &end);
        if (end == value || *end || errno) return bad_value(key, value, "a number");
        *(float*)field = f;
        return DT_OK;
      }
      case K_ALGO: return parse_enum(key, value, parse_algo, "tdmpc, difftop", (int*)field);
      case K_SOLVER:
        return parse_enum(key, value, dt_solver_parse, "lm, pga, pga-armijo, newton", (int*)field);
      case K_BACKWARD:
        return parse_enum(key, value, dt_backward_parse, "none, unroll, truncated, implicit",
                          (int*)field);
      case K_PGMODE: return parse_enum(key, value, parse_pgmode, "official, batched", (int*)field);
      case K_OBS: return parse_enum(key, value, parse_obs, "state, pixels", (int*)field);
    }
  }
  // unknown key: suggest the closest ones
  char near[256] = "";
  size_t k = 0;
  for (int i = 0; i < NKEYS && k < sizeof near - 40; i++) {
    if (edit_distance(key, keys[i].name) <= 3 || strstr(keys[i].name, key))
      k += (size_t)snprintf(near + k, sizeof near - k, "%s%s", k ? ", " : "", keys[i].name);
  }
  return dt_error(DT_ERR_NOT_FOUND, "unknown config key '%s'%s%s%s", key,
                  k ? " (did you mean: " : "", near, k ? ")" : "");
}

dtStatus dt_rl_config_dump(const dtRLConfig* c, char* buf, size_t size) {
  size_t k = 0;
  for (int i = 0; i < NKEYS; i++) {
    const char* field = (const char*)c + keys[i].off;
    char v[96];
    switch (keys[i].kind) {
      case K_STR: snprintf(v, sizeof v, "%s", field); break;
      case K_INT: snprintf(v, sizeof v, "%d", *(const int*)field); break;
      case K_I64: snprintf(v, sizeof v, "%lld", (long long)*(const int64_t*)field); break;
      case K_U64: snprintf(v, sizeof v, "%llu", (unsigned long long)*(const uint64_t*)field); break;
      case K_FLOAT: snprintf(v, sizeof v, "%.9g", (double)*(const float*)field); break;
      case K_ALGO: snprintf(v, sizeof v, "%s", *(const int*)field ? "difftop" : "tdmpc"); break;
      case K_SOLVER: snprintf(v, sizeof v, "%s", dt_solver_name(*(const int*)field)); break;
      case K_BACKWARD: snprintf(v, sizeof v, "%s", dt_backward_name(*(const int*)field)); break;
      case K_PGMODE: snprintf(v, sizeof v, "%s", *(const int*)field ? "batched" : "official"); break;
      case K_OBS: snprintf(v, sizeof v, "%s", *(const int*)field ? "pixels" : "state"); break;
    }
    int w = snprintf(buf + k, size - k, "%s: %s\n", keys[i].name, v);
    if (w < 0 || (size_t)w >= size - k)
      return dt_error(DT_ERR_NOMEM, "dt_rl_config_dump: buffer of %zu bytes too small", size);
    k += (size_t)w;
  }
  return DT_OK;
}
