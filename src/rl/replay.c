// SPDX-License-Identifier: MIT
// Prioritized replay over whole episodes with TD-MPC's rules: new episodes get the largest
// priority so far except their last H positions (priority 0: they cannot start a sequence);
// p_i ~ prio_i^alpha, sampled with replacement until the buffer is full and without after;
// weights (N p_i)^-beta normalised by their maximum.
#include <math.h>
#include <string.h>

#include "agent_internal.h"

struct dtReplay {
  int obs_dim, action_dim, L, H;
  int slots;          // episodes that fit
  int filled;         // episodes stored (<= slots)
  int next;           // slot the next episode goes to
  float* obs;         // [slots, L + 1, obs_dim]
  float* actions;     // [slots, L, A]
  float* rewards;     // [slots, L]
  float* prio;        // [slots, L]
  double* cdf;        // cumulative p^alpha [slots * L]
  uint8_t* taken;     // sampling without replacement
  float max_prio;
  float alpha, beta, eps;
  // pixels: only the newest RGB frame of each step is kept; stacks are rebuilt when sampling
  int pixels, fs, fh, fw;  // frame stack, frame height and width
  uint8_t* frames;         // [slots, L + 1, 3, fh, fw]
};

// a buffer; frame_stack > 0 makes a pixel buffer of [3 frame_stack, fh, fw] observations
static dtStatus create(int obs_dim, int action_dim, int L, int64_t capacity, int horizon,
                       const dtRLConfig* cfg, int frame_stack, int fh, int fw, dtReplay** out) {
  if (!out || !cfg) return dt_error(DT_ERR_ARG, "dt_replay_new: NULL argument");
  *out = NULL;
  if (obs_dim < 1 || action_dim < 1 || L <= horizon || horizon < 1 || capacity < L)
    return dt_error(DT_ERR_ARG, "dt_replay_new: obs %d, action %d, episode %d, horizon %d, "
                    "capacity %lld (need episode > horizon >= 1, capacity >= episode)",
                    obs_dim, action_dim, L, horizon, (long long)capacity);
  dtReplay* r = dt_calloc(1, sizeof *r);
  if (!r) return DT_ERR_NOMEM;
  r->obs_dim = obs_dim, r->action_dim = action_dim, r->L = L, r->H = horizon;
  r->slots = (int)(capacity / L);
  size_t n = (size_t)r->slots * L;
  if (frame_stack > 0) {
    r->pixels = 1, r->fs = frame_stack, r->fh = fh, r->fw = fw;
    r->frames = dt_malloc((size_t)r->slots * (L + 1) * 3 * fh * fw);
    r->obs = r->frames ? (float*)r->frames : NULL;  // (unused in pixel mode; non-NULL = allocated)
  } else {
    r->obs = dt_malloc((size_t)r->slots * (L + 1) * obs_dim * sizeof(float));
  }
  r->actions = dt_malloc(n * action_dim * sizeof(float));
  r->rewards = dt_malloc(n * sizeof(float));
  r->prio = dt_calloc(n, sizeof(float));
  r->cdf = dt_malloc(n * sizeof(double));
  r->taken = dt_calloc(n, 1);
  if (!r->obs || !r->actions || !r->rewards || !r->prio || !r->cdf || !r->taken) {
    dt_replay_free(r);
    return DT_ERR_NOMEM;
  }
  r->max_prio = 1.0f;
  r->alpha = cfg->per_alpha, r->beta = cfg->per_beta, r->eps = cfg->per_eps;
  *out = r;
  return DT_OK;
}

dtStatus dt_replay_new(int obs_dim, int action_dim, int L, int64_t capacity, int horizon,
                       const dtRLConfig* cfg, dtReplay** out) {
  return create(obs_dim, action_dim, L, capacity, horizon, cfg, 0, 0, 0, out);
}

dtStatus dt_replay_new_pixels(int frame_stack, int height, int width, int action_dim, int L,
                              int64_t capacity, int horizon, const dtRLConfig* cfg,
                              dtReplay** out) {
  if (out) *out = NULL;
  if (frame_stack < 1 || height < 1 || width < 1)
    return dt_error(DT_ERR_ARG, "dt_replay_new_pixels: frame_stack %d, image %dx%d", frame_stack,
                    height, width);
  return create(3 * frame_stack * height * width, action_dim, L, capacity, horizon, cfg,
                frame_stack, height, width, out);
}

void dt_replay_free(dtReplay* r) {
  if (!r) return;
  if (!r->pixels) dt_free(r->obs);
  dt_free(r->frames), dt_free(r->actions), dt_free(r->rewards);
  dt_free(r->prio), dt_free(r->cdf), dt_free(r->taken);
  dt_free(r);
}

int64_t dt_replay_size(const dtReplay* r) { return (int64_t)r->filled * r->L; }

static dtStatus add_rest(dtReplay* r, int s, const float* actions, const float* rewards);

dtStatus dt_replay_add(dtReplay* r, const float* obs, const float* actions,
                       const float* rewards) {
  if (!r || !obs || !actions || !rewards) return dt_error(DT_ERR_ARG, "dt_replay_add: NULL");
  if (r->pixels)
    return dt_error(DT_ERR_STATE, "dt_replay_add: a pixel buffer takes dt_replay_add_pixels");
  int L = r->L, S = r->obs_dim, A = r->action_dim;
  // reject non-finite data: it would poison every update that samples it
  for (int64_t i = 0; i < (int64_t)(L + 1) * S; i++)
    if (!isfinite(obs[i])) return dt_error(DT_ERR_NONFINITE, "dt_replay_add: observation %lld is not finite", (long long)i);
  for (int64_t i = 0; i < (int64_t)L * A; i++)
    if (!isfinite(actions[i])) return dt_error(DT_ERR_NONFINITE, "dt_replay_add: action %lld is not finite", (long long)i);
  for (int i = 0; i < L; i++)
    if (!isfinite(rewards[i])) return dt_error(DT_ERR_NONFINITE, "dt_replay_add: reward %d is not finite", i);
  int s = r->next;
  memcpy(r->obs + (size_t)s * (L + 1) * S, obs, (size_t)(L + 1) * S * sizeof(float));
  return add_rest(r, s, actions, rewards);
}

dtStatus dt_replay_add_pixels(dtReplay* r, const uint8_t* obs, const float* actions,
                              const float* rewards) {
  if (!r || !obs || !actions || !rewards) return dt_error(DT_ERR_ARG, "dt_replay_add_pixels: NULL");
  if (!r->pixels) return dt_error(DT_ERR_STATE, "dt_replay_add_pixels: not a pixel buffer");
  int L = r->L, A = r->action_dim;
  for (int64_t i = 0; i < (int64_t)L * A; i++)
    if (!isfinite(actions[i])) return dt_error(DT_ERR_NONFINITE, "dt_replay_add_pixels: action %lld is not finite", (long long)i);
  for (int i = 0; i < L; i++)
    if (!isfinite(rewards[i])) return dt_error(DT_ERR_NONFINITE, "dt_replay_add_pixels: reward %d is not finite", i);
  int s = r->next;
  // keep the newest RGB frame (the last 3 channels) of every stacked observation
  size_t frame = (size_t)3 * r->fh * r->fw, S = (size_t)r->obs_dim;
  for (int t = 0; t <= L; t++)
    memcpy(r->frames + ((size_t)s * (L + 1) + t) * frame, obs + t * S + S - frame, frame);
  return add_rest(r, s, actions, rewards);
}

// actions, rewards and priorities of the episode going to slot s
static dtStatus add_rest(dtReplay* r, int s, const float* actions, const float* rewards) {
  int L = r->L, A = r->action_dim;
  memcpy(r->actions + (size_t)s * L * A, actions, (size_t)L * A * sizeof(float));
  memcpy(r->rewards + (size_t)s * L, rewards, (size_t)L * sizeof(float));
  float* p = r->prio + (size_t)s * L;
  for (int t = 0; t < L; t++) p[t] = t < L - r->H ? r->max_prio : 0.0f;
  r->next = (s + 1) % r->slots;
  if (r->filled < r->slots) r->filled++;
  return DT_OK;
}

dtStatus dt_replay_sample(dtReplay* r, int B, dtRng* rng, float* obs, float* actions,
                          float* rewards, float* weights, int64_t* idx) {
  if (!r || !rng || !obs || !actions || !rewards || !weights || !idx || B < 1)
    return dt_error(DT_ERR_ARG, "dt_replay_sample: NULL argument or batch < 1");
  int64_t N = dt_replay_size(r);
  if (N == 0) return dt_error(DT_ERR_STATE, "dt_replay_sample: the buffer is empty");
  int full = r->filled == r->slots;
  // cumulative p^alpha (NaN priorities count as 0)
  double total = 0;
  for (int64_t i = 0; i < N; i++) {
    float p = r->prio[i];
    total += (isfinite(p) && p > 0) ? pow(p, r->alpha) : 0.0;
    r->cdf[i] = total;
  }
  if (!(total > 0)) return dt_error(DT_ERR_STATE, "dt_replay_sample: every priority is zero");
  int64_t positive = 0;
  for (int64_t i = 0; i < N; i++) positive += r->prio[i] > 0;
  if (full && positive < B)
    return dt_error(DT_ERR_STATE, "dt_replay_sample: %lld sampleable transitions for a batch of %d "
                    "without replacement", (long long)positive, B);
  double wmax = 0;
  for (int b = 0; b < B; b++) {
    int64_t i;
    for (;;) {
      // inverse-CDF draw by bisection
      double u = dt_rng_uniform(rng) * total;
      int64_t lo = 0, hi = N - 1;
      while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (r->cdf[mid] > u) hi = mid; else lo = mid + 1;
      }
      i = lo;
      if (!full || !r->taken[i]) break;
    }
    if (full) r->taken[i] = 1;
    idx[b] = i;
    double p = (r->cdf[i] - (i ? r->cdf[i - 1] : 0.0)) / total;
    weights[b] = (float)pow((double)N * p, -r->beta);
    if (weights[b] > wmax) wmax = weights[b];
  }
  for (int b = 0; b < B; b++) {
    weights[b] = (float)(weights[b] / wmax);
    if (full) r->taken[idx[b]] = 0;
  }
  // gather the sequences
  int L = r->L, S = r->obs_dim, A = r->action_dim, H = r->H;
  size_t frame = (size_t)3 * r->fh * r->fw;
  for (int b = 0; b < B; b++) {
    int64_t s = idx[b] / L, t = idx[b] % L;
    for (int h = 0; h <= H; h++) {
      int64_t tt = t + h <= L ? t + h : L;
      float* o = obs + ((size_t)h * B + b) * S;
      if (!r->pixels) {
        memcpy(o, r->obs + ((size_t)s * (L + 1) + tt) * S, (size_t)S * sizeof(float));
        continue;
      }
      // the stack of frames tt - fs + 1 .. tt (oldest first), the first frame repeated
      // before the episode's start, as floats 0..255
      for (int k = 0; k < r->fs; k++) {
        int64_t f = tt - (r->fs - 1) + k;
        const uint8_t* src = r->frames + ((size_t)s * (L + 1) + (f < 0 ? 0 : f)) * frame;
        float* dst = o + k * frame;
        for (size_t i = 0; i < frame; i++) dst[i] = (float)src[i];
      }
    }
    for (int h = 0; h < H; h++) {
      int64_t tt = t + h < L ? t + h : L - 1;
      memcpy(actions + ((size_t)h * B + b) * A, r->actions + ((size_t)s * L + tt) * A,
             (size_t)A * sizeof(float));
      rewards[(size_t)h * B + b] = r->rewards[(size_t)s * L + tt];
    }
  }
  return DT_OK;
}

dtStatus dt_replay_view(dtReplay* r, dtReplayView* v) {
  if (!r || !v) return dt_error(DT_ERR_ARG, "dt_replay_view: NULL argument");
  v->obs_dim = r->obs_dim, v->action_dim = r->action_dim, v->episode_len = r->L;
  v->slots = r->slots, v->filled = &r->filled, v->next = &r->next, v->max_prio = &r->max_prio;
  v->obs = r->pixels ? NULL : r->obs;
  v->actions = r->actions, v->rewards = r->rewards, v->prio = r->prio;
  v->pixels = r->pixels, v->frames = r->frames;
  v->frame_h = r->pixels ? r->fh : 0, v->frame_w = r->pixels ? r->fw : 0;
  return DT_OK;
}

void dt_replay_update(dtReplay* r, const int64_t* idx, const float* prio, int B) {
  for (int b = 0; b < B; b++) {
    float p = isfinite(prio[b]) ? prio[b] : 0.0f;
    r->prio[idx[b]] = p;
    if (p > r->max_prio) r->max_prio = p;
  }
}
