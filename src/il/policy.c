// SPDX-License-Identifier: MIT
// Imitation-learning policies: BC, diffusion (DDPM training, DDIM sampling), the residual
// baseline, DiffTOP-IL (objective f(z, a) and latent dynamics d decoded by the
// differentiable trajectory optimizer; optionally a CVAE posterior over z~) and implicit BC
// (ibc.c: an InfoNCE energy over [features, chunk], derivative-free optimisation).
//
// Conventions. A policy sees T_o frames of history (oldest first). Each frame becomes a feature
// vector: the min/max-normalised observation, except for Push-T's 5-D state whose angle becomes
// (sin, cos) next to the 4 normalised positions. Actions are normalised to [-1, 1] per dim.
// BC and diffusion predict P = pred_steps actions; every policy executes E = act_steps of them
// per call. DiffTOP decides H chunks of E actions (n = H E A numbers); chunk l is the action of
// planning step l in eq. 7, and z_{l+1} = d(z_l, a_l).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "difftop/env.h"
#include "difftop/il.h"
#include "difftop/io.h"
#include "difftop/pusht.h"
#include "gmm.h"
#include "ibc.h"

#define TEMB 32  // diffusion timestep embedding size
#define MAX_DDPM 1000

struct dtILPolicy {
  dtILConfig c;
  int obs_dim, act_dim;
  int pusht_feat;         // 1: Push-T angle as (sin, cos)
  int frame_dim, feat_dim;
  int n;                  // numbers the policy decides per call (see header comment)
  int out_len;            // actions in the policy's raw prediction (P, or H E for DiffTOP)
  dtNormalizer obs_norm, act_norm;
  dtParams ps;
  dtMLP net;              // BC / diffusion noise net / residual net / IBC energy
  dtUnet1D unet;          // diffusion with noise_net = unet: the noise net
  dtLstm rnn;             // BC with rnn_hidden: the LSTM over the T_o frames
  int img_c, img_h, img_w;  // BC on images: the frames' extent (0: no images)
  int img_feat;           // encoder features of the T_o frames (obs_steps * conv_out)
  dtConvNet conv;         // BC on images: the encoder shared by the frames
  float* imgb;            // [img_cap * T_o, C H W] float CHW frames of a batch
  int img_cap;
  char obs_keys[256];     // the dataset's obs keys
  dtMLP enc, f, d, q;     // DiffTOP (q: CVAE posterior)
  int zdim;               // latent seen by f and d (latent_dim + posterior_dim with a CVAE)
  dtILPolicy* base;
  dtAdam* adam;
  dtParams ema;           // the moving average of ps (empty without c.ema)
  int64_t opt_step;       // optimiser updates so far
  int64_t total_steps;    // updates of the whole run (dt_il_train; 0 when unknown)
  uint64_t sample_seed;   // evaluation: the seed of each episode's draws with the env seed
  dtTape* tape;
  dtTrajopt* solver;
  int solver_cap;
  dtObjective obj;
  dtRng rng;
  float ab[MAX_DDPM];     // alpha-bar of the DDPM schedule
  // scratch for training and inference (sized for max(batch, 1))
  int cap;
  float *xb, *yb, *ainit, *afinal, *dLda, *dLdx, *tmp, *tmp2;
  // base predictions cached per dataset [total, base out_len * A]: slot 0 the first dataset
  // seen (training), slot 1 any other (a held-out split)
  float* caches[2];
  const dtDemoSet* cache_sets[2];
  float* base_cache;        // the slot of the dataset in use
  const dtDemoSet* cache_ds;
  // IBC: training candidates [cap (negatives + 1), F + n]; the optimiser's population scratch
  float *ibc_rows, *ibc_pop;
  int* ibc_idx;
  int ibc_cap;
};

//---------------------------------------------------------------------------------------------
// config

static const char* kind_names[] = {"bc", "diffusion", "residual", "difftop", "ibc"};
#define N_KINDS 5
static const char* init_names[] = {"base", "zero", "random"};
static const char* schedule_names[] = {"constant", "cosine"};
static const char* noise_net_names[] = {"mlp", "unet"};

const char* dt_il_kind_name(dtILKind k) { return (int)k >= 0 && (int)k < N_KINDS ? kind_names[k] : "?"; }

void dt_il_config_default(dtILConfig* c) {
  memset(c, 0, sizeof *c);
  c->kind = DT_IL_BC;
  c->init = DT_IL_INIT_BASE;
  c->horizon = 1;
  c->obs_steps = 2;
  c->act_steps = 4;
  c->pred_steps = 8;
  c->hidden = 256;
  c->layers = 2;
  c->latent_dim = 50;
  c->posterior_dim = 64;
  c->kl_weight = 0.003f;
  c->gamma = 0.99f;
  c->diffusion_steps = 100;
  c->ddim_steps = 10;
  c->epochs = 50;
  c->batch = 256;
  c->lr = 1e-3f;
  c->solver = DT_SOLVER_PGA;
  c->iters = 10;
  c->step = 0.1f;
  c->backward = DT_BACKWARD_UNROLL;
  c->backward_iters = 5;
  c->seed = 1;
  c->conv_channels = 32;
  c->conv_out = 64;
  c->ibc_negatives = 64;
  c->ibc_samples = 1024;
  c->ibc_iters = 3;
  c->ibc_noise = 0.33f;
  c->ibc_shrink = 0.5f;
  c->ibc_init_std = 0.1f;
  c->ema_power = 0.75f;
  c->ema_max = 0.9999f;
  c->noise_net = DT_IL_NOISE_MLP;
  c->unet_dims[0] = 64, c->unet_dims[1] = 128;
  c->unet_kernel = 5;
  c->unet_groups = 8;
  c->unet_step_dim = 64;
  c->gmm_modes = 0;
  c->gmm_min_std = 1e-4f;
  c->rnn_hidden = 0;
  c->rnn_layers = 2;
}

static int parse_enum(const char* v, const char* const* names, int n) {
  for (int i = 0; i < n; i++)
    if (!strcmp(v, names[i])) return i;
  return -1;
}

// "64,128": 1 to DT_UNET_MAX_LEVELS channel counts in [1, 4096]
static dtStatus parse_unet_dims(dtILConfig* c, const char* value) {
  int dims[DT_UNET_MAX_LEVELS] = {0}, n = 0;
  for (const char* q = value;;) {
    char* end = NULL;
    long v = strtol(q, &end, 10);
    if (end == q || v < 1 || v > 4096 || n == DT_UNET_MAX_LEVELS || (*end && *end != ','))
      return dt_error(DT_ERR_ARG, "IL config: unet_dims = '%s' must be 1 to %d channel counts in "
                      "[1, 4096] separated by commas (e.g. 64,128)", value, DT_UNET_MAX_LEVELS);
    dims[n++] = (int)v;
    if (!*end) break;
    q = end + 1;
  }
  memcpy(c->unet_dims, dims, sizeof dims);
  return DT_OK;
}

dtStatus dt_il_config_set(dtILConfig* c, const char* key, const char* value) {
  if (!c || !key || !value) return dt_error(DT_ERR_ARG, "dt_il_config_set: NULL argument");
  char* end = NULL;
  double num = strtod(value, &end);
  int is_num = end && end != value && !*end && isfinite(num);
  struct { const char* k; int* p; int lo, hi; } ints[] = {
      {"cvae", &c->cvae, 0, 1},           {"horizon", &c->horizon, 1, 16},
      {"obs_steps", &c->obs_steps, 1, 16}, {"act_steps", &c->act_steps, 1, 32},
      {"pred_steps", &c->pred_steps, 1, 32}, {"hidden", &c->hidden, 1, 4096},
      {"layers", &c->layers, 1, 6},       {"latent_dim", &c->latent_dim, 1, 1024},
      {"posterior_dim", &c->posterior_dim, 1, 1024},
      {"diffusion_steps", &c->diffusion_steps, 2, MAX_DDPM},
      {"ddim_steps", &c->ddim_steps, 1, MAX_DDPM}, {"epochs", &c->epochs, 0, 1000000},
      {"batch", &c->batch, 1, 65536},     {"iters", &c->iters, 1, 10000},
      {"backward_iters", &c->backward_iters, 1, 10000},
      {"action_repeat", &c->action_repeat, 0, 1000},
      {"conv_channels", &c->conv_channels, 1, 256}, {"conv_out", &c->conv_out, 1, 1024},
      {"ibc_negatives", &c->ibc_negatives, 1, 65536}, {"ibc_samples", &c->ibc_samples, 1, 1 << 20},
      {"ibc_iters", &c->ibc_iters, 0, 100}, {"ema", &c->ema, 0, 1},
      {"warmup_steps", &c->warmup_steps, 0, 1 << 30}, {"unet_kernel", &c->unet_kernel, 1, 31},
      {"unet_groups", &c->unet_groups, 1, 256}, {"unet_step_dim", &c->unet_step_dim, 4, 1024},
      {"gmm_modes", &c->gmm_modes, 0, 64}, {"rnn_hidden", &c->rnn_hidden, 0, 4096},
      {"rnn_layers", &c->rnn_layers, 1, DT_LSTM_MAX_LAYERS}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    if (strcmp(key, ints[i].k)) continue;
    if (!is_num || num != (int)num || num < ints[i].lo || num > ints[i].hi)
      return dt_error(DT_ERR_ARG, "IL config: %s = '%s' must be an integer in [%d, %d]", key, value,
                      ints[i].lo, ints[i].hi);
    if ((ints[i].p == &c->unet_kernel && (int)num % 2 == 0) || (ints[i].p == &c->unet_step_dim && (int)num % 2))
      return dt_error(DT_ERR_ARG, "IL config: %s = %s must be %s", key, value,
                      ints[i].p == &c->unet_kernel ? "odd (padding kernel/2 keeps the chunk's length)" : "even");
    *ints[i].p = (int)num;
    return DT_OK;
  }
  struct { const char* k; float* p; } flts[] = {
      {"kl_weight", &c->kl_weight}, {"gamma", &c->gamma}, {"lr", &c->lr}, {"step", &c->step},
      {"prox", &c->prox}, {"ibc_noise", &c->ibc_noise}, {"ibc_shrink", &c->ibc_shrink},
      {"ibc_init_std", &c->ibc_init_std}, {"ema_power", &c->ema_power},
      {"gmm_min_std", &c->gmm_min_std}};
  for (size_t i = 0; i < sizeof flts / sizeof flts[0]; i++) {
    if (strcmp(key, flts[i].k)) continue;
    if (!is_num || num < 0) return dt_error(DT_ERR_ARG, "IL config: %s = '%s' must be a number >= 0", key, value);
    *flts[i].p = (float)num;
    return DT_OK;
  }
  if (!strcmp(key, "ema_max")) {
    if (!is_num || num < 0 || num > 1) return dt_error(DT_ERR_ARG, "IL config: ema_max = '%s' must be in [0, 1]", value);
    c->ema_max = (float)num;
    return DT_OK;
  }
  if (!strcmp(key, "noise_net")) {
    int k = parse_enum(value, noise_net_names, 2);
    if (k < 0) return dt_error(DT_ERR_NOT_FOUND, "IL config: noise_net '%s' (known: mlp, unet)", value);
    c->noise_net = (dtILNoiseNet)k;
    return DT_OK;
  }
  if (!strcmp(key, "unet_dims")) return parse_unet_dims(c, value);
  if (!strcmp(key, "lr_schedule")) {
    int k = parse_enum(value, schedule_names, 2);
    if (k < 0) return dt_error(DT_ERR_NOT_FOUND, "IL config: lr_schedule '%s' (known: constant, cosine)", value);
    c->lr_schedule = (dtILSchedule)k;
    return DT_OK;
  }
  if (!strcmp(key, "seed")) {
    if (!is_num || num < 0) return dt_error(DT_ERR_ARG, "IL config: seed = '%s' must be >= 0", value);
    c->seed = strtoull(value, NULL, 10);
    return DT_OK;
  }
  if (!strcmp(key, "policy")) {
    int k = parse_enum(value, kind_names, N_KINDS);
    if (k < 0)
      return dt_error(DT_ERR_NOT_FOUND, "IL config: policy '%s' (known: bc, diffusion, residual, difftop, ibc)", value);
    c->kind = (dtILKind)k;
    return DT_OK;
  }
  if (!strcmp(key, "init")) {
    int k = parse_enum(value, init_names, 3);
    if (k < 0) return dt_error(DT_ERR_NOT_FOUND, "IL config: init '%s' (known: base, zero, random)", value);
    c->init = (dtILInit)k;
    return DT_OK;
  }
  if (!strcmp(key, "solver")) {
    int k = dt_solver_parse(value);
    if (k < 0) return dt_error(DT_ERR_NOT_FOUND, "IL config: solver '%s' (known: lm, pga, pga-armijo, newton)", value);
    c->solver = (dtSolver)k;
    return DT_OK;
  }
  if (!strcmp(key, "backward")) {
    int k = dt_backward_parse(value);
    if (k < 0) return dt_error(DT_ERR_NOT_FOUND, "IL config: backward '%s' (known: none, unroll, truncated, implicit)", value);
    c->backward = (dtBackward)k;
    return DT_OK;
  }
  if (!strcmp(key, "task")) {
    if (strlen(value) >= sizeof c->task) return dt_error(DT_ERR_ARG, "IL config: task name '%s' too long", value);
    snprintf(c->task, sizeof c->task, "%s", value);
    return DT_OK;
  }
  if (!strcmp(key, "base")) {
    if (strlen(value) >= sizeof c->base) return dt_error(DT_ERR_ARG, "IL config: base path too long");
    snprintf(c->base, sizeof c->base, "%s", value);
    return DT_OK;
  }
  return dt_error(DT_ERR_NOT_FOUND, "IL config: unknown key '%s'", key);
}

// unet_dims as "64,128"
static void unet_dims_str(const dtILConfig* c, char* buf, size_t size) {
  size_t k = 0;
  buf[0] = 0;
  for (int l = 0; l < DT_UNET_MAX_LEVELS && c->unet_dims[l] > 0 && k < size; l++)
    k += (size_t)snprintf(buf + k, size - k, "%s%d", l ? "," : "", c->unet_dims[l]);
}

static dtStatus config_to(const dtILConfig* c, dtConfig* cfg) {
  char buf[64];
  dtStatus st = dt_config_set(cfg, "policy", dt_il_kind_name(c->kind), NULL);
  if (!st) st = dt_config_set(cfg, "base", c->base[0] ? c->base : "\"\"", NULL);
  if (!st) st = dt_config_set(cfg, "init", init_names[c->init], NULL);
  if (!st) st = dt_config_set(cfg, "task", c->task[0] ? c->task : "\"\"", NULL);
  struct { const char* k; int v; } ints[] = {
      {"cvae", c->cvae}, {"horizon", c->horizon}, {"obs_steps", c->obs_steps},
      {"act_steps", c->act_steps}, {"pred_steps", c->pred_steps}, {"hidden", c->hidden},
      {"layers", c->layers}, {"latent_dim", c->latent_dim}, {"posterior_dim", c->posterior_dim},
      {"diffusion_steps", c->diffusion_steps}, {"ddim_steps", c->ddim_steps},
      {"epochs", c->epochs}, {"batch", c->batch}, {"iters", c->iters},
      {"backward_iters", c->backward_iters}, {"action_repeat", c->action_repeat},
      {"conv_channels", c->conv_channels}, {"conv_out", c->conv_out},
      {"ibc_negatives", c->ibc_negatives}, {"ibc_samples", c->ibc_samples}, {"ibc_iters", c->ibc_iters},
      {"ema", c->ema}, {"warmup_steps", c->warmup_steps}, {"unet_kernel", c->unet_kernel},
      {"unet_groups", c->unet_groups}, {"unet_step_dim", c->unet_step_dim},
      {"gmm_modes", c->gmm_modes}, {"rnn_hidden", c->rnn_hidden}, {"rnn_layers", c->rnn_layers}};
  for (size_t i = 0; !st && i < sizeof ints / sizeof ints[0]; i++) {
    snprintf(buf, sizeof buf, "%d", ints[i].v);
    st = dt_config_set(cfg, ints[i].k, buf, NULL);
  }
  struct { const char* k; float v; } flts[] = {
      {"kl_weight", c->kl_weight}, {"gamma", c->gamma}, {"lr", c->lr}, {"step", c->step},
      {"prox", c->prox}, {"ibc_noise", c->ibc_noise}, {"ibc_shrink", c->ibc_shrink},
      {"ibc_init_std", c->ibc_init_std}, {"ema_power", c->ema_power}, {"ema_max", c->ema_max},
      {"gmm_min_std", c->gmm_min_std}};
  for (size_t i = 0; !st && i < sizeof flts / sizeof flts[0]; i++) {
    snprintf(buf, sizeof buf, "%.9g", (double)flts[i].v);
    st = dt_config_set(cfg, flts[i].k, buf, NULL);
  }
  if (!st) st = dt_config_set(cfg, "solver", dt_solver_name(c->solver), NULL);
  if (!st) st = dt_config_set(cfg, "backward", dt_backward_name(c->backward), NULL);
  if (!st) st = dt_config_set(cfg, "lr_schedule", schedule_names[c->lr_schedule], NULL);
  if (!st) st = dt_config_set(cfg, "noise_net", noise_net_names[c->noise_net], NULL);
  unet_dims_str(c, buf, sizeof buf);
  if (!st) st = dt_config_set(cfg, "unet_dims", buf, NULL);
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)c->seed);
  if (!st) st = dt_config_set(cfg, "seed", buf, NULL);
  return st;
}

dtStatus dt_il_config_write(const dtILConfig* c, const char* path) {
  dtConfig* cfg = NULL;
  dtStatus st = dt_config_new(&cfg);
  if (!st) st = config_to(c, cfg);
  if (!st) st = dt_config_write(cfg, path);
  dt_config_free(cfg);
  return st;
}

// what a saved policy records beside its config: the data's dims and obs keys
typedef struct policyExtra {
  int obs_dim, act_dim, pusht_feat;
  int img[3];              // image C, H, W (0: none)
  char obs_keys[256];
} policyExtra;

// one extra key of a saved policy into ex; 0 when k is not one
static int extra_set(policyExtra* ex, const char* k, const char* v) {
  int* ints[6] = {&ex->obs_dim, &ex->act_dim, &ex->pusht_feat, &ex->img[0], &ex->img[1], &ex->img[2]};
  const char* names[6] = {"obs_dim", "act_dim", "pusht_features", "image_c", "image_h", "image_w"};
  for (int i = 0; i < 6; i++)
    if (!strcmp(k, names[i])) {
      *ints[i] = atoi(v);
      return 1;
    }
  if (strcmp(k, "obs_keys")) return 0;
  snprintf(ex->obs_keys, sizeof ex->obs_keys, "%s", strcmp(v, "\"\"") ? v : "");
  return 1;
}

// apply a loaded YAML config; the extra keys of a saved policy go to ex
static dtStatus config_from(dtILConfig* c, const dtConfig* cfg, policyExtra* ex) {
  dt_il_config_default(c);
  memset(ex, 0, sizeof *ex);
  for (int i = 0; i < dt_config_count(cfg); i++) {
    const char *k, *v, *src;
    dt_config_at(cfg, i, &k, &v, &src);
    if (extra_set(ex, k, v)) continue;
    if (!strcmp(k, "base") && (!strcmp(v, "\"\"") || !*v)) { c->base[0] = 0; continue; }
    if (!strcmp(k, "task") && (!strcmp(v, "\"\"") || !*v)) { c->task[0] = 0; continue; }
    if (dt_il_config_set(c, k, v))
      return dt_error(dt_last_status(), "%s (from %s)", dt_last_error(), src ? src : "?");
  }
  return DT_OK;
}

dtStatus dt_il_config_read(dtILConfig* c, const char* path) {
  dtConfig* cfg = NULL;
  dtStatus st = dt_config_new(&cfg);
  if (!st) st = dt_config_load_file(cfg, path);
  policyExtra ex;
  if (!st) st = config_from(c, cfg, &ex);
  dt_config_free(cfg);
  return st;
}

//---------------------------------------------------------------------------------------------
// features and targets

// per-frame features of one raw observation
static void frame_feat(const dtILPolicy* p, const float* obs, float* out) {
  if (p->pusht_feat) {
    for (int j = 0; j < 4; j++) out[j] = obs[j] * p->obs_norm.scale[j] + p->obs_norm.offset[j];
    out[4] = sinf(obs[4]);
    out[5] = cosf(obs[4]);
  } else {
    for (int j = 0; j < p->obs_dim; j++) out[j] = obs[j] * p->obs_norm.scale[j] + p->obs_norm.offset[j];
  }
}

// features of dataset row i: frames i - T_o + 1 .. i, clamped to the demo's first step
static void row_feat(const dtILPolicy* p, const dtDemoSet* ds, int64_t i, int64_t s0, float* out) {
  int To = p->c.obs_steps;
  for (int k = 0; k < To; k++) {
    int64_t r = i - (To - 1) + k;
    if (r < s0) r = s0;
    frame_feat(p, ds->obs + r * ds->obs_dim, out + k * p->frame_dim);
  }
}

// frames of dataset row i (i - T_o + 1 .. i, clamped to the demo's first step) as float CHW
static void row_images(const dtILPolicy* p, const dtDemoSet* ds, int64_t i, int64_t s0, float* out) {
  size_t px = (size_t)p->img_c * p->img_h * p->img_w;
  for (int k = 0; k < p->c.obs_steps; k++) {
    int64_t r = i - (p->c.obs_steps - 1) + k;
    if (r < s0) r = s0;
    dt_image_hwc_to_chw(ds->images + (size_t)r * px, p->img_h, p->img_w, p->img_c, out + k * px);
  }
}

// normalised actions i .. i + L - 1, clamped to the demo's last step
static void row_target(const dtILPolicy* p, const dtDemoSet* ds, int64_t i, int64_t s1, int L,
                       float* out) {
  int A = p->act_dim;
  for (int k = 0; k < L; k++) {
    int64_t r = i + k;
    if (r >= s1) r = s1 - 1;
    for (int j = 0; j < A; j++)
      out[k * A + j] = ds->actions[r * A + j] * p->act_norm.scale[j] + p->act_norm.offset[j];
  }
}

// the demo holding row i (binary search)
static int row_demo(const dtDemoSet* ds, int64_t i) {
  int lo = 0, hi = ds->n_demos - 1;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (ds->start[mid] <= i) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

//---------------------------------------------------------------------------------------------
// creation

static dtStatus objective_check(dtILPolicy* p);
static dtTensor* difftop_prepare(void* ctx, dtTape* t, dtTensor* x);
static dtTensor* difftop_value(void* ctx, dtTape* t, dtTensor* a, dtTensor* c);

static int kind_needs_base(const dtILConfig* c) {
  return c->kind == DT_IL_RESIDUAL || (c->kind == DT_IL_DIFFTOP && c->init == DT_IL_INIT_BASE) ||
         (c->kind == DT_IL_IBC && c->base[0]);
}

// tape arena for the conv encoder of a batch: inputs, each conv's output and ReLU with
// gradients, and one sample's im2col scratch
static size_t image_arena_bytes(const dtILPolicy* p) {
  if (!p->img_c) return 0;
  const dtConvNetSpec* s = &p->conv.spec;
  size_t per = (size_t)s->in_channels * s->in_h * s->in_w, col = 0;
  int h = s->in_h, w = s->in_w, c = s->in_channels;
  for (int i = 0; i < s->layers; i++) {
    h = dt_conv2d_out_size(h, s->kernel[i], s->stride[i]);
    w = dt_conv2d_out_size(w, s->kernel[i], s->stride[i]);
    size_t k = (size_t)c * s->kernel[i] * s->kernel[i] * h * w;
    col = k > col ? k : col;
    c = s->channels[i];
    per += 2 * (size_t)c * h * w;
  }
  size_t B = (size_t)(p->c.batch > 1 ? p->c.batch : 1) * p->c.obs_steps;
  return sizeof(float) * (2 * (B * per + 4 * col) + B * 4 * (size_t)p->c.conv_out) + ((size_t)16 << 20);
}

// the float CHW frame buffer for cap rows of T_o frames
static dtStatus alloc_images(dtILPolicy* p, int cap) {
  if (!p->img_c || p->img_cap >= cap) return DT_OK;
  free(p->imgb);
  p->imgb = malloc((size_t)cap * p->c.obs_steps * p->img_c * p->img_h * p->img_w * sizeof(float));
  p->img_cap = p->imgb ? cap : 0;
  return p->imgb ? DT_OK : dt_error(DT_ERR_NOMEM, "IL policy: out of memory for a batch of images");
}

static dtStatus alloc_scratch(dtILPolicy* p, int cap) {
  dtStatus st = alloc_images(p, cap);
  if (st) return st;
  if (p->cap >= cap) return DT_OK;
  float** bufs[] = {&p->xb, &p->yb, &p->ainit, &p->afinal, &p->dLda, &p->dLdx, &p->tmp, &p->tmp2};
  int w = p->feat_dim + p->c.posterior_dim + 64 * 2 + (p->c.pred_steps + p->c.horizon * p->c.act_steps) * p->act_dim + TEMB + (p->base ? p->base->n : 0);
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
    free(*bufs[i]);
    *bufs[i] = calloc((size_t)cap * w + 64, sizeof(float));
    if (!*bufs[i]) return dt_error(DT_ERR_NOMEM, "IL policy: out of memory for scratch");
  }
  p->cap = cap;
  return DT_OK;
}

// IBC's tape: the larger of a training batch's candidates (with gradients) and the
// optimiser's population, each row through the energy's layers
static size_t ibc_arena_bytes(const dtILPolicy* p) {
  const dtILConfig* c = &p->c;
  size_t per_row = (size_t)(p->feat_dim + p->n) + 2 * (size_t)c->layers * c->hidden + 4;
  size_t train = (size_t)(c->batch > 1 ? c->batch : 1) * (c->ibc_negatives + 1) * per_row * 2;
  size_t act = (size_t)c->ibc_samples * per_row;
  size_t rows = train > act ? train : act;
  return sizeof(float) * rows * 3 / 2 + ((size_t)16 << 20);
}

// IBC's candidate rows for cap training rows and the optimiser's scratch
static dtStatus alloc_ibc(dtILPolicy* p, int cap) {
  if (p->ibc_cap >= cap) return DT_OK;
  const dtILConfig* c = &p->c;
  free(p->ibc_rows);
  p->ibc_rows = malloc(dt_ibc_loss_rows(cap, p->feat_dim, p->n, c->ibc_negatives) * sizeof(float));
  if (!p->ibc_pop) p->ibc_pop = malloc(dt_ibc_act_scratch(c->ibc_samples, p->feat_dim, p->n) * sizeof(float));
  if (!p->ibc_idx) p->ibc_idx = malloc((size_t)c->ibc_samples * sizeof(int));
  if (!p->ibc_rows || !p->ibc_pop || !p->ibc_idx) return dt_error(DT_ERR_NOMEM, "IL ibc: out of memory for scratch");
  p->ibc_cap = cap;
  return DT_OK;
}

// the conv encoder of an image BC policy (BC's MLP then takes feat_dim + img_feat inputs)
static dtStatus image_encoder_create(dtILPolicy* p, const int img[3]) {
  const dtILConfig* c = &p->c;
  if (c->kind != DT_IL_BC)
    return dt_error(DT_ERR_UNSUPPORTED, "IL policy %s: image observations work with policy=bc only so far; "
                    "leave the image key out of --obs-keys", dt_il_kind_name(c->kind));
  if (img[0] < 1 || img[0] > DT_IMAGE_MAX_CHANNELS || img[1] != img[2] || img[1] < 1)
    return dt_error(DT_ERR_ARG, "IL policy: images %dx%dx%d (H x W x C): the encoder needs square images "
                    "with 1 to %d channels", img[1], img[2], img[0], DT_IMAGE_MAX_CHANNELS);
  dtConvNetSpec cs = dt_convnet_spec_tdmpc(img[0], img[1], c->conv_channels, c->conv_out);
  cs.in_scale = 1.0f;  // the frames are already in [0, 1]
  int h, w;
  if (dt_convnet_flat_dim(&cs, &h, &w) < 1)
    return dt_error(DT_ERR_ARG, "IL policy: %dx%d images are too small for the conv encoder (its "
                    "stride-2 convs need at least 39x39)", img[1], img[2]);
  p->img_c = img[0], p->img_h = img[1], p->img_w = img[2];
  p->img_feat = c->obs_steps * c->conv_out;
  return dt_convnet_create(&p->conv, &cs, &p->ps, "bc_conv", &p->rng);
}

// the U-Net noise net of a diffusion policy: the chunk's actions along time, the action dims
// as channels, the T_o frames' features as the global condition
static dtStatus unet_spec(const dtILConfig* c, int A, int F, dtUnet1DSpec* s) {
  *s = dt_unet1d_spec_default(A, c->pred_steps, F);
  s->levels = 0;
  for (int l = 0; l < DT_UNET_MAX_LEVELS && c->unet_dims[l] > 0; l++) s->dims[s->levels++] = c->unet_dims[l];
  s->kernel = c->unet_kernel, s->groups = c->unet_groups, s->step_dim = c->unet_step_dim;
  if (s->levels < 1) return dt_error(DT_ERR_ARG, "IL config: noise_net=unet needs unet_dims (e.g. 64,128)");
  int halves = 1 << (s->levels - 1);
  if (c->pred_steps % halves)
    return dt_error(DT_ERR_ARG, "IL config: noise_net=unet halves the chunk of pred_steps = %d actions %d "
                    "times (unet_dims has %d levels): use a pred_steps multiple of %d or fewer unet_dims",
                    c->pred_steps, s->levels - 1, s->levels, halves);
  for (int l = 0; l < s->levels; l++)
    if (s->dims[l] % s->groups)
      return dt_error(DT_ERR_ARG, "IL config: unet_dims entry %d is not a multiple of unet_groups = %d "
                      "(GroupNorm splits the channels into groups)", s->dims[l], s->groups);
  if (dt_unet1d_check(s)) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s", dt_last_error());
    return dt_error(DT_ERR_ARG, "IL config: noise_net=unet: %s", msg);
  }
  return DT_OK;
}

static dtStatus policy_create(const dtILConfig* c, const policyExtra* ex, const dtNormalizer* on,
                              const dtNormalizer* an, dtILPolicy** out) {
  *out = NULL;
  int obs_dim = ex->obs_dim, act_dim = ex->act_dim, pusht_feat = ex->pusht_feat;
  if (c->act_steps > c->pred_steps && c->kind != DT_IL_DIFFTOP && c->kind != DT_IL_IBC)
    return dt_error(DT_ERR_ARG, "IL config: act_steps %d > pred_steps %d", c->act_steps, c->pred_steps);
  if (on->dim != obs_dim || an->dim != act_dim)
    return dt_error(DT_ERR_ARG, "IL policy: normaliser dims %d/%d, data dims %d/%d", on->dim, an->dim,
                    obs_dim, act_dim);
  dtILPolicy* p = calloc(1, sizeof *p);
  if (!p) return dt_error(DT_ERR_NOMEM, "IL policy: out of memory");
  p->c = *c;
  p->obs_dim = obs_dim;
  p->act_dim = act_dim;
  p->pusht_feat = pusht_feat;
  p->frame_dim = pusht_feat ? 6 : obs_dim;
  p->feat_dim = p->frame_dim * c->obs_steps;
  p->obs_norm = *on;
  p->act_norm = *an;
  snprintf(p->obs_keys, sizeof p->obs_keys, "%s", ex->obs_keys);
  dt_params_init(&p->ps);
  dt_rng_seed(&p->rng, c->seed);
  dtStatus st = DT_OK;
  // act_normalised keeps one call's features and chunks on the stack
  if (p->feat_dim > 1024) {
    st = dt_error(DT_ERR_ARG, "IL policy: %d frames of %d features = %d inputs (at most 1024): "
                  "use fewer obs_steps", c->obs_steps, p->frame_dim, p->feat_dim);
    goto fail;
  }
  if (ex->img[0] && (st = image_encoder_create(p, ex->img))) goto fail;
  int A = act_dim, Hd = c->hidden, L = c->layers;
  if (kind_needs_base(c)) {
    if (!c->base[0]) {
      st = dt_error(DT_ERR_ARG, "IL policy %s with init %s needs a base policy (base=RUN_DIR)",
                    dt_il_kind_name(c->kind), init_names[c->init]);
      goto fail;
    }
    if ((st = dt_il_policy_load(c->base, &p->base))) goto fail;
    if (p->base->img_c) {
      st = dt_error(DT_ERR_UNSUPPORTED, "IL policy: base %s takes images; a base must be a state policy",
                    c->base);
      goto fail;
    }
    if (p->base->obs_dim != obs_dim || p->base->act_dim != act_dim) {
      st = dt_error(DT_ERR_ARG, "IL policy: base %s has obs/action dims %d/%d, data %d/%d", c->base,
                    p->base->obs_dim, p->base->act_dim, obs_dim, act_dim);
      goto fail;
    }
    if (p->base->c.obs_steps > c->obs_steps) {
      st = dt_error(DT_ERR_ARG, "IL policy: base %s looks at %d frames, this policy at obs_steps = %d: "
                    "set obs_steps >= %d (the base sees the last frames of this policy's history)",
                    c->base, p->base->c.obs_steps, c->obs_steps, p->base->c.obs_steps);
      goto fail;
    }
    if (p->base->c.kind != DT_IL_BC && p->base->c.kind != DT_IL_DIFFUSION) {
      st = dt_error(DT_ERR_ARG, "IL policy: base %s is a %s policy (need bc or diffusion)", c->base,
                    dt_il_kind_name(p->base->c.kind));
      goto fail;
    }
  }
  if (c->noise_net == DT_IL_NOISE_UNET && c->kind != DT_IL_DIFFUSION) {
    st = dt_error(DT_ERR_ARG, "IL config: noise_net=unet applies to policy=diffusion only (policy=%s)",
                  dt_il_kind_name(c->kind));
    goto fail;
  }
  if (c->gmm_modes > 0 && c->kind != DT_IL_BC) {
    st = dt_error(DT_ERR_ARG, "IL config: gmm_modes applies to policy=bc only (policy=%s)",
                  dt_il_kind_name(c->kind));
    goto fail;
  }
  if (c->rnn_hidden > 0 && (c->kind != DT_IL_BC || p->img_c)) {
    st = dt_error(DT_ERR_ARG, "IL config: rnn_hidden applies to policy=bc on state observations only "
                  "(policy=%s%s)", dt_il_kind_name(c->kind), p->img_c ? ", with images" : "");
    goto fail;
  }
  if (c->gmm_modes > 0 && !(c->gmm_min_std > 0)) {
    st = dt_error(DT_ERR_ARG, "IL config: gmm_min_std must be > 0 with gmm_modes (got %g)",
                  (double)c->gmm_min_std);
    goto fail;
  }
  switch (c->kind) {
    case DT_IL_BC: {
      p->n = c->pred_steps * A;
      p->out_len = c->pred_steps;
      int width = c->gmm_modes > 0 ? dt_gmm_width(c->gmm_modes, p->n) : p->n;
      int in = p->feat_dim + p->img_feat;
      if (c->rnn_hidden > 0) {
        dtLstmSpec rs = {p->frame_dim, c->rnn_hidden, c->rnn_layers};
        if ((st = dt_lstm_create(&p->rnn, &rs, &p->ps, "bc_rnn", &p->rng))) break;
        in = c->rnn_hidden;
      }
      dtMLPSpec s = dt_mlp_spec_elu(in, Hd, L, width);
      for (int i = 0; i < L; i++) s.act[i] = DT_ACT_RELU;
      s.init = DT_INIT_TORCH_DEFAULT;
      st = dt_mlp_create(&p->net, &s, &p->ps, "bc", &p->rng);
      break;
    }
    case DT_IL_DIFFUSION: {
      p->n = c->pred_steps * A;
      p->out_len = c->pred_steps;
      if (c->noise_net == DT_IL_NOISE_UNET) {
        dtUnet1DSpec us;
        st = unet_spec(c, A, p->feat_dim, &us);
        if (!st) st = dt_unet1d_create(&p->unet, &us, &p->ps, "model", &p->rng);
      } else {
        dtMLPSpec s = dt_mlp_spec_elu(p->n + TEMB + p->feat_dim, Hd, L + 1, p->n);
        for (int i = 0; i <= L; i++) s.act[i] = DT_ACT_RELU;
        s.init = DT_INIT_TORCH_DEFAULT;
        st = dt_mlp_create(&p->net, &s, &p->ps, "noise", &p->rng);
      }
      // squaredcos_cap_v2 (diffusers / diffusion_policy)
      int T = c->diffusion_steps;
      double prod = 1.0;
      for (int t = 0; t < T; t++) {
        double a0 = cos(((double)t / T + 0.008) / 1.008 * M_PI / 2), a1 = cos(((double)(t + 1) / T + 0.008) / 1.008 * M_PI / 2);
        double beta = fmin(1.0 - (a1 * a1) / (a0 * a0), 0.999);
        prod *= 1.0 - beta;
        p->ab[t] = (float)prod;
      }
      break;
    }
    case DT_IL_RESIDUAL: {
      p->n = c->act_steps * A;
      p->out_len = c->act_steps;
      dtMLPSpec s = dt_mlp_spec_elu(p->feat_dim + p->n, Hd, L, p->n);
      for (int i = 0; i < L; i++) s.act[i] = DT_ACT_RELU;
      s.init = DT_INIT_TORCH_DEFAULT;
      s.zero_last = 1;
      st = dt_mlp_create(&p->net, &s, &p->ps, "residual", &p->rng);
      break;
    }
    case DT_IL_IBC: {
      p->n = c->act_steps * A;
      p->out_len = c->act_steps;
      dtMLPSpec s = dt_mlp_spec_elu(p->feat_dim + p->n, Hd, L, 1);
      for (int i = 0; i < L; i++) s.act[i] = DT_ACT_RELU;
      s.init = DT_INIT_TORCH_DEFAULT;
      st = dt_mlp_create(&p->net, &s, &p->ps, "energy", &p->rng);
      break;
    }
    case DT_IL_DIFFTOP: {
      int EA = c->act_steps * A;
      p->n = c->horizon * EA;
      p->out_len = c->horizon * c->act_steps;
      p->zdim = c->latent_dim + (c->cvae ? c->posterior_dim : 0);
      dtMLPSpec se = dt_mlp_spec_elu(p->feat_dim, Hd, L, c->latent_dim);
      dtMLPSpec sf = dt_mlp_spec_elu(p->zdim + EA, Hd, L, 1);
      dtMLPSpec sd = dt_mlp_spec_elu(p->zdim + EA, Hd, L, p->zdim);
      se.init = sf.init = sd.init = DT_INIT_TORCH_DEFAULT;
      sf.zero_last = 1;  // G is flat at the start: the solver returns the initialisation
      st = dt_mlp_create(&p->enc, &se, &p->ps, "encoder", &p->rng);
      if (!st) st = dt_mlp_create(&p->f, &sf, &p->ps, "objective", &p->rng);
      if (!st) st = dt_mlp_create(&p->d, &sd, &p->ps, "dynamics", &p->rng);
      if (!st && c->cvae) {
        // fuser h^l([z^s, a*]) -> (mu, log sigma^2); the action encoder is the identity
        dtMLPSpec sq = dt_mlp_spec_elu(c->latent_dim + p->n, Hd, L + 1, 2 * c->posterior_dim);
        sq.dims[L + 1] = 128 > 2 * c->posterior_dim ? 128 : 2 * c->posterior_dim;
        sq.dims[L + 2] = 2 * c->posterior_dim;
        sq.init = DT_INIT_TORCH_DEFAULT;
        st = dt_mlp_create(&p->q, &sq, &p->ps, "posterior", &p->rng);
      }
      if (!st) {
        p->obj.n = p->n;
        p->obj.nx = p->feat_dim + (c->cvae ? c->posterior_dim : 0);
        p->obj.ctx = p;
        p->obj.prepare = difftop_prepare;
        p->obj.value = difftop_value;
        p->obj.params = &p->ps;
        st = objective_check(p);
      }
      break;
    }
  }
  if (st) goto fail;
  // inference works in fixed buffers (no allocation per call)
  if (p->n > 1024 || (p->base && p->base->n > 1024) || p->feat_dim + p->n > 2048 || p->img_feat > 8192 ||
      p->feat_dim + (c->cvae ? c->posterior_dim : 0) > 2048) {
    st = dt_error(DT_ERR_ARG, "IL policy: %d decisions per call and %d features exceed the limits "
                  "(1024 decisions, 2048 inputs): lower act_steps, pred_steps, horizon or posterior_dim",
                  p->n, p->feat_dim);
    goto fail;
  }
  dtTapeOpts to = dt_tape_default_opts();
  to.arena_bytes = ((size_t)256 << 20) + image_arena_bytes(p);
  if (c->kind == DT_IL_DIFFUSION && c->noise_net == DT_IL_NOISE_UNET)
    to.arena_bytes += dt_unet1d_tape_bytes(&p->unet.spec, c->batch > 1 ? c->batch : 1);
  if (c->kind == DT_IL_IBC && ibc_arena_bytes(p) > to.arena_bytes) to.arena_bytes = ibc_arena_bytes(p);
  if (c->rnn_hidden > 0) to.arena_bytes += dt_lstm_tape_bytes(&p->rnn.spec, c->batch > 1 ? c->batch : 1, c->obs_steps);
  p->tape = dt_tape_new(&to);
  if (!p->tape) { st = dt_last_status() ? dt_last_status() : DT_ERR_NOMEM; goto fail; }
  if ((st = alloc_scratch(p, c->batch > 1 ? c->batch : 1))) goto fail;
  if (c->kind == DT_IL_IBC && (st = alloc_ibc(p, c->batch > 1 ? c->batch : 1))) goto fail;
  if (c->kind == DT_IL_DIFFTOP) {
    dtTrajoptOpts o = dt_trajopt_default_opts();
    o.solver = c->solver;
    o.max_iters = c->iters;
    o.step_size = c->step;
    o.backward = c->backward;
    o.backward_iters = c->backward_iters < c->iters ? c->backward_iters : c->iters;
    o.project = 1;
    o.abs_tol = 0;
    o.rel_tol = 0;
    o.grad_tol = 0;  // a fixed number of iterations: the same computation at train and test time
    if (c->solver == DT_SOLVER_LM) o.damping = 0.01f;
    p->solver_cap = p->cap;
    if ((st = dt_trajopt_new(&p->obj, p->cap, &o, 0, &p->solver))) goto fail;
  }
  dtAdamOpts ao = dt_adam_default_opts();
  ao.lr = c->lr;
  p->adam = dt_adam_new(&p->ps, &ao);
  if (!p->adam) { st = dt_last_status() ? dt_last_status() : DT_ERR_NOMEM; goto fail; }
  if (c->ema && (st = dt_params_clone(&p->ema, &p->ps))) goto fail;
  *out = p;
  return DT_OK;
fail:
  dt_il_policy_free(p);
  return st;
}

static int is_pusht_state(const dtDemoSet* ds) {
  return ds->obs_dim == 5 && ds->act_dim == 2 && !strcmp(ds->obs_keys, "state");
}

dtStatus dt_il_policy_new(const dtILConfig* c, const dtDemoSet* ds, dtILPolicy** out) {
  if (!c || !ds || !out) return dt_error(DT_ERR_ARG, "dt_il_policy_new: NULL argument");
  policyExtra ex = {ds->obs_dim, ds->act_dim, is_pusht_state(ds), {0, 0, 0}, ""};
  if (ds->images) ex.img[0] = ds->img_c, ex.img[1] = ds->img_h, ex.img[2] = ds->img_w;
  snprintf(ex.obs_keys, sizeof ex.obs_keys, "%s", ds->obs_keys);
  return policy_create(c, &ex, &ds->obs_norm, &ds->act_norm, out);
}

int dt_il_policy_image(const dtILPolicy* p, int* h, int* w, int* c) {
  if (!p || !p->img_c) return 0;
  if (h) *h = p->img_h;
  if (w) *w = p->img_w;
  if (c) *c = p->img_c;
  return 1;
}

const char* dt_il_policy_obs_keys(const dtILPolicy* p) { return p ? p->obs_keys : ""; }

void dt_il_policy_free(dtILPolicy* p) {
  if (!p) return;
  dt_il_policy_free(p->base);
  dt_adam_free(p->adam);
  dt_trajopt_free(p->solver);
  dt_tape_free(p->tape);
  dt_params_free(&p->ps);
  dt_params_free(&p->ema);
  free(p->xb), free(p->yb), free(p->ainit), free(p->afinal), free(p->dLda), free(p->dLdx);
  free(p->tmp), free(p->tmp2), free(p->caches[0]), free(p->caches[1]);
  free(p->imgb), free(p->ibc_rows), free(p->ibc_pop), free(p->ibc_idx);
  free(p);
}

const dtILConfig* dt_il_policy_config(const dtILPolicy* p) { return &p->c; }

const dtNormalizer* dt_il_policy_action_norm(const dtILPolicy* p) { return &p->act_norm; }

//---------------------------------------------------------------------------------------------
// save / load

dtStatus dt_il_policy_save(const dtILPolicy* p, const char* dir) {
  if (!p || !dir) return dt_error(DT_ERR_ARG, "dt_il_policy_save: NULL argument");
  mkdir(dir, 0755);
  char path[1200], buf[32];
  dtConfig* cfg = NULL;
  dtStatus st = dt_config_new(&cfg);
  if (!st) st = config_to(&p->c, cfg);
  snprintf(buf, sizeof buf, "%d", p->obs_dim);
  if (!st) st = dt_config_set(cfg, "obs_dim", buf, NULL);
  snprintf(buf, sizeof buf, "%d", p->act_dim);
  if (!st) st = dt_config_set(cfg, "act_dim", buf, NULL);
  snprintf(buf, sizeof buf, "%d", p->pusht_feat);
  if (!st) st = dt_config_set(cfg, "pusht_features", buf, NULL);
  if (!st) st = dt_config_set(cfg, "obs_keys", p->obs_keys[0] ? p->obs_keys : "\"\"", NULL);
  int img[3] = {p->img_c, p->img_h, p->img_w};
  const char* ik[3] = {"image_c", "image_h", "image_w"};
  for (int i = 0; i < 3 && !st && p->img_c; i++) {
    snprintf(buf, sizeof buf, "%d", img[i]);
    st = dt_config_set(cfg, ik[i], buf, NULL);
  }
  snprintf(path, sizeof path, "%s/config.yaml", dir);
  if (!st) st = dt_config_write(cfg, path);
  dt_config_free(cfg);
  if (st) return st;
  // parameters plus the normalisers' min/max
  int np = p->ps.count;
  dtStEntry* e = calloc((size_t)np + 4, sizeof *e);
  if (!e) return dt_error(DT_ERR_NOMEM, "dt_il_policy_save: out of memory");
  for (int i = 0; i < np; i++) {
    dtTensor* t = p->ps.items[i];
    e[i].name = t->name;
    e[i].ndim = t->ndim;
    e[i].shape = t->shape;
    e[i].data = t->val;
  }
  int od[1] = {p->obs_dim}, ad[1] = {p->act_dim};
  const char* nn[4] = {"normalizer.obs.min", "normalizer.obs.max", "normalizer.action.min", "normalizer.action.max"};
  const float* nd[4] = {p->obs_norm.min, p->obs_norm.max, p->act_norm.min, p->act_norm.max};
  for (int k = 0; k < 4; k++) {
    e[np + k].name = nn[k];
    e[np + k].ndim = 1;
    e[np + k].shape = k < 2 ? od : ad;
    e[np + k].data = nd[k];
  }
  const char* meta[4] = {"format", "difftop-il", "policy", dt_il_kind_name(p->c.kind)};
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  st = dt_st_write(path, e, np + 4, meta, 2);
  free(e);
  return st;
}

dtStatus dt_il_policy_load(const char* dir, dtILPolicy** out) {
  if (!dir || !out) return dt_error(DT_ERR_ARG, "dt_il_policy_load: NULL argument");
  *out = NULL;
  char path[1200];
  snprintf(path, sizeof path, "%s/config.yaml", dir);
  dtConfig* cfg = NULL;
  dtILConfig c;
  policyExtra ex;
  memset(&ex, 0, sizeof ex);
  dtStatus st = dt_config_new(&cfg);
  if (!st) st = dt_config_load_file(cfg, path);
  if (!st) st = config_from(&c, cfg, &ex);
  int od = ex.obs_dim, ad = ex.act_dim;
  dt_config_free(cfg);
  if (st) return st;
  if (od < 1 || od > DT_NORM_MAX_DIM || ad < 1 || ad > DT_NORM_MAX_DIM)
    return dt_error(DT_ERR_FORMAT, "%s: obs_dim %d / act_dim %d missing or out of range", path, od, ad);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  dtSafetensors* sf = NULL;
  if ((st = dt_st_open(path, &sf))) return st;
  float mn[2][DT_NORM_MAX_DIM], mx[2][DT_NORM_MAX_DIM];
  int sh0[1] = {od}, sh1[1] = {ad};
  st = dt_st_read_f32(sf, "normalizer.obs.min", mn[0], 1, sh0);
  if (!st) st = dt_st_read_f32(sf, "normalizer.obs.max", mx[0], 1, sh0);
  if (!st) st = dt_st_read_f32(sf, "normalizer.action.min", mn[1], 1, sh1);
  if (!st) st = dt_st_read_f32(sf, "normalizer.action.max", mx[1], 1, sh1);
  dtNormalizer on, an;
  if (!st) st = dt_norm_set(&on, od, mn[0], mx[0]);
  if (!st) st = dt_norm_set(&an, ad, mn[1], mx[1]);
  dtILPolicy* p = NULL;
  if (!st) st = policy_create(&c, &ex, &on, &an, &p);
  if (!st) st = dt_st_load_params(sf, p->ps.items, p->ps.count, DT_LOAD_ALLOW_UNEXPECTED);
  dt_st_close(sf);
  if (st) {
    dt_il_policy_free(p);
    return st;
  }
  *out = p;
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// DiffTOP objective: G(a) = sum_l gamma^l f(z_l, a_l) - prox/2 |a|^2,  z_0 = [z~, h(s)],
// z_{l+1} = d(z_l, a_l)

static dtTensor* difftop_prepare(void* ctx, dtTape* t, dtTensor* x) {
  dtILPolicy* p = ctx;
  dtTensor* zs = dt_mlp_forward(t, &p->enc, dt_slice(t, x, 1, 0, p->feat_dim));
  if (!p->c.cvae) return zs;
  return dt_concat(t, dt_slice(t, x, 1, p->feat_dim, p->c.posterior_dim), zs, 1);
}

static dtTensor* difftop_value(void* ctx, dtTape* t, dtTensor* a, dtTensor* z) {
  dtILPolicy* p = ctx;
  int EA = p->c.act_steps * p->act_dim, B = a->shape[0];
  int shape1[1] = {B};
  dtTensor* ac = dt_clamp(t, a, -1.0f, 1.0f, 0);
  dtTensor* G = NULL;
  float disc = 1.0f;
  for (int l = 0; l < p->c.horizon; l++) {
    dtTensor* za = dt_concat(t, z, dt_slice(t, ac, 1, l * EA, EA), 1);
    dtTensor* r = dt_reshape(t, dt_mlp_forward(t, &p->f, za), 1, shape1);
    if (disc != 1.0f) r = dt_scale(t, r, disc);
    G = G ? dt_add(t, G, r) : r;
    if (l + 1 < p->c.horizon) z = dt_mlp_forward(t, &p->d, za);
    disc *= p->c.gamma;
  }
  if (p->c.prox > 0) G = dt_sub(t, G, dt_scale(t, dt_sum(t, dt_square(t, a), 1), 0.5f * p->c.prox));
  return G;
}

static dtStatus objective_check(dtILPolicy* p) {
  if (p->c.horizon < 1) return dt_error(DT_ERR_ARG, "IL config: horizon must be >= 1");
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// prediction helpers (no gradients)

// sinusoidal embedding of a diffusion timestep
static void temb(float t, float* out) {
  for (int i = 0; i < TEMB / 2; i++) {
    float fr = expf(-logf(10000.0f) * i / (TEMB / 2 - 1));
    out[i] = sinf(t * fr);
    out[TEMB / 2 + i] = cosf(t * fr);
  }
}

// a chunk [P, A] (time-major, as the dataset stores it) as the U-Net's [A, P] (channels first),
// for B rows; back = 1 the other way
static void chunk_transpose(const float* src, int B, int P, int A, float* dst, int back) {
  for (int b = 0; b < B; b++)
    for (int k = 0; k < P; k++)
      for (int a = 0; a < A; a++) {
        size_t tm = (size_t)b * P * A + (size_t)k * A + a, cm = (size_t)b * P * A + (size_t)a * P + k;
        if (back) dst[tm] = src[cm];
        else dst[cm] = src[tm];
      }
}

// the noise net's prediction eps(x_t, t) [B, n] (time-major) for noisy chunks x [B, n] at
// diffusion step t, on the policy's tape without parameter gradients; *eps points into the
// tape or the scratch and stays valid until the next use of either
static dtStatus predict_noise(dtILPolicy* p, int B, const float* x, const float* feat, int t,
                              const float** eps) {
  int n = p->n, F = p->feat_dim;
  dtTape* tp = p->tape;
  dt_tape_reset(tp);
  dt_tape_set_param_grads(tp, 0);
  dtTensor* y;
  if (p->c.noise_net == DT_IL_NOISE_UNET) {
    int P = p->c.pred_steps, A = p->act_dim, shape[3] = {B, A, P};
    chunk_transpose(x, B, P, A, p->tmp, 0);
    for (int b = 0; b < B; b++) p->ainit[b] = (float)t;
    y = dt_unet1d_forward(tp, &p->unet, dt_input(tp, 3, shape, p->tmp, "x"), p->ainit,
                          dt_input2(tp, B, F, feat, "features"));
    if (y) chunk_transpose(y->val, B, P, A, p->tmp2, 1);
    *eps = p->tmp2;
  } else {
    int in = n + TEMB + F;
    float tv[TEMB], *inp = p->tmp;  // [B, in]
    temb((float)t, tv);
    for (int b = 0; b < B; b++) {
      memcpy(inp + (size_t)b * in, x + (size_t)b * n, n * sizeof(float));
      memcpy(inp + (size_t)b * in + n, tv, TEMB * sizeof(float));
      memcpy(inp + (size_t)b * in + n + TEMB, feat + (size_t)b * F, F * sizeof(float));
    }
    y = dt_mlp_forward(tp, &p->net, dt_input2(tp, B, in, inp, "x"));
    *eps = y ? y->val : NULL;
  }
  dt_tape_set_param_grads(tp, 1);
  return y ? DT_OK : dt_tape_status(tp);
}

// DDIM sampling (eta 0, clipped x0) of B chunks from features feat [B, feat_dim] into out [B, n]
static dtStatus diffusion_sample(dtILPolicy* p, int B, const float* feat, float* out) {
  int n = p->n, T = p->c.diffusion_steps, S = p->c.ddim_steps < T ? p->c.ddim_steps : T;
  float* x = out;
  dt_rng_fill_normal(&p->rng, x, (size_t)B * n, 0.0f, 1.0f);
  if (B > p->cap) return dt_error(DT_ERR_ARG, "diffusion: batch %d above capacity %d", B, p->cap);
  for (int k = S - 1; k >= 0; k--) {
    int t = (int)((long)k * T / S), tprev = k > 0 ? (int)((long)(k - 1) * T / S) : -1;
    const float* eps = NULL;
    dtStatus st = predict_noise(p, B, x, feat, t, &eps);
    if (st) return st;
    float ab = p->ab[t], abp = tprev >= 0 ? p->ab[tprev] : 1.0f;
    float sa = sqrtf(ab), s1 = sqrtf(1 - ab), sap = sqrtf(abp), s1p = sqrtf(1 - abp);
    for (int64_t i = 0; i < (int64_t)B * n; i++) {
      float x0 = (x[i] - s1 * eps[i]) / sa;
      x0 = fminf(fmaxf(x0, -1.0f), 1.0f);
      x[i] = sap * x0 + s1p * eps[i];
    }
  }
  return DT_OK;
}

// BC's normalised chunk [B, n] on the tape from features feat [B, feat_dim] and, for an image
// policy, the frames in p->imgb [B T_o, C H W] (one encoder pass per frame, features of a
// row's frames side by side after its low-dimensional features)
static dtTensor* bc_forward(dtILPolicy* p, dtTape* t, int B, const float* feat) {
  dtTensor* x = dt_input2(t, B, p->feat_dim, feat, "x");
  if (p->c.rnn_hidden > 0) return dt_mlp_forward(t, &p->net, dt_lstm_forward(t, &p->rnn, x, p->c.obs_steps));
  if (p->img_c) {
    int px = p->img_c * p->img_h * p->img_w, shape[2] = {B, p->img_feat};
    dtTensor* e = dt_convnet_forward(t, &p->conv, dt_input2(t, B * p->c.obs_steps, px, p->imgb, "frames"));
    x = dt_concat(t, x, dt_reshape(t, e, 2, shape), 1);
  }
  return dt_mlp_forward(t, &p->net, x);
}

// the base policy's normalised chunk [B, out_len * A] for BC / diffusion policies
static dtStatus base_predict(dtILPolicy* b, int B, const float* feat, float* out) {
  if (b->c.kind == DT_IL_DIFFUSION) return diffusion_sample(b, B, feat, out);
  dt_tape_reset(b->tape);
  dt_tape_set_param_grads(b->tape, 0);
  dtTensor* y = bc_forward(b, b->tape, B, feat);
  dt_tape_set_param_grads(b->tape, 1);
  if (!y) return dt_tape_status(b->tape);
  if (b->c.gmm_modes > 0) {
    dt_gmm_sample(y->val, B, b->c.gmm_modes, b->n, &b->rng, out);
    return DT_OK;
  }
  for (int64_t i = 0; i < (int64_t)B * b->n; i++) out[i] = fminf(fmaxf(y->val[i], -1.0f), 1.0f);
  return DT_OK;
}

// copy the first L actions of base chunks [B, Lb * A] into dst [B, L * A], repeating the last
static void take_actions(const float* src, int Lb, int L, int A, int B, float* dst) {
  for (int b = 0; b < B; b++)
    for (int k = 0; k < L; k++) {
      int ks = k < Lb ? k : Lb - 1;
      memcpy(dst + ((size_t)b * L + k) * A, src + ((size_t)b * Lb + ks) * A, A * sizeof(float));
    }
}

// base chunks of dataset rows for training (cached once per dataset, two datasets at most)
static dtStatus ensure_base_cache(dtILPolicy* p, const dtDemoSet* ds) {
  if (!p->base) return DT_OK;
  for (int k = 0; k < 2; k++)
    if (p->caches[k] && p->cache_sets[k] == ds) {
      p->base_cache = p->caches[k];
      p->cache_ds = ds;
      return DT_OK;
    }
  int slot = p->caches[0] ? 1 : 0;
  dtILPolicy* b = p->base;
  int w = b->n;
  free(p->caches[slot]);
  p->cache_sets[slot] = NULL;
  p->caches[slot] = malloc((size_t)ds->total * w * sizeof(float));
  if (!p->caches[slot]) return dt_error(DT_ERR_NOMEM, "IL: out of memory for the base-action cache");
  float* feat = malloc((size_t)256 * b->feat_dim * sizeof(float));
  if (!feat) return dt_error(DT_ERR_NOMEM, "IL: out of memory");
  dtStatus st = alloc_scratch(b, 256);
  for (int64_t i0 = 0; i0 < ds->total && !st; i0 += 256) {
    int B = (int)(ds->total - i0 < 256 ? ds->total - i0 : 256);
    for (int k = 0; k < B; k++) {
      int d = row_demo(ds, i0 + k);
      row_feat(b, ds, i0 + k, ds->start[d], feat + (size_t)k * b->feat_dim);
    }
    st = base_predict(b, B, feat, p->caches[slot] + i0 * w);
  }
  free(feat);
  p->cache_sets[slot] = st ? NULL : ds;
  p->base_cache = st ? NULL : p->caches[slot];
  p->cache_ds = st ? NULL : ds;
  return st;
}

// DiffTOP initial decisions [B, n] from base chunks [B, base n] (or zero / N(0, 1))
static void difftop_init(dtILPolicy* p, int B, const float* base_chunks, float* a_init) {
  if (p->c.init == DT_IL_INIT_ZERO) {
    memset(a_init, 0, (size_t)B * p->n * sizeof(float));
  } else if (p->c.init == DT_IL_INIT_RANDOM) {
    dt_rng_fill_normal(&p->rng, a_init, (size_t)B * p->n, 0.0f, 1.0f);
  } else {
    take_actions(base_chunks, p->base->out_len, p->out_len, p->act_dim, B, a_init);
  }
}

//---------------------------------------------------------------------------------------------
// training

// the CVAE posterior on p->tape: writes z~ into x rows (after the features) and returns the
// scalar beta * KL (mean over the batch) with z~ [B, P] in *zt
static dtTensor* cvae_posterior(dtILPolicy* p, int B, const float* feat_x, const float* target,
                                dtTensor** zt, double* kl_out) {
  dtTape* t = p->tape;
  int P = p->c.posterior_dim, nx = p->obj.nx;
  // features are the first feat_dim columns of the solver input rows
  float* f = p->tmp2;
  for (int b = 0; b < B; b++) memcpy(f + (size_t)b * p->feat_dim, feat_x + (size_t)b * nx, p->feat_dim * sizeof(float));
  dtTensor* zs = dt_mlp_forward(t, &p->enc, dt_input2(t, B, p->feat_dim, f, "feat"));
  dtTensor* h = dt_mlp_forward(t, &p->q, dt_concat(t, zs, dt_input2(t, B, p->n, target, "a*"), 1));
  dtTensor* mu = dt_slice(t, h, 1, 0, P);
  dtTensor* lv = dt_clamp(t, dt_slice(t, h, 1, P, P), -10.0f, 10.0f, 0);
  float* eps = p->tmp;
  dt_rng_fill_normal(&p->rng, eps, (size_t)B * P, 0.0f, 1.0f);
  dtTensor* z = dt_add(t, mu, dt_mul(t, dt_exp(t, dt_scale(t, lv, 0.5f)), dt_input2(t, B, P, eps, "eps")));
  // KL(N(mu, s^2) || N(0, I)) = -1/2 sum (1 + lv - mu^2 - e^lv), mean over the batch
  dtTensor* kl = dt_sub(t, dt_add(t, dt_square(t, mu), dt_exp(t, lv)), dt_affine(t, lv, 1.0f, 1.0f));
  kl = dt_scale(t, dt_sum(t, kl, DT_AXIS_ALL), 0.5f / B);
  if (!z || !kl) return NULL;
  *kl_out = kl->val[0];
  *zt = z;
  return dt_scale(t, kl, p->c.kl_weight);
}

// a dataset's images against the policy's
static dtStatus check_images(const dtILPolicy* p, const dtDemoSet* ds) {
  if (!p->img_c && !ds->images) return DT_OK;
  if (!p->img_c || !ds->images || ds->img_c != p->img_c || ds->img_h != p->img_h || ds->img_w != p->img_w)
    return dt_error(DT_ERR_ARG, "IL %s: the policy takes %s images %dx%dx%d, the dataset has %s %dx%dx%d",
                    dt_il_kind_name(p->c.kind), p->img_c ? "" : "no", p->img_h, p->img_w, p->img_c,
                    ds->images ? "images" : "no images", ds->img_h, ds->img_w, ds->img_c);
  return DT_OK;
}

// the loss of a batch of rows; update = 1: backward and an Adam step (training)
float dt_il_lr_at(const dtILConfig* c, int64_t k, int64_t total) {
  if (k < c->warmup_steps) return c->lr * (float)k / (float)c->warmup_steps;
  if (c->lr_schedule != DT_IL_LR_COSINE || total <= 0) return c->lr;
  int64_t span = total - c->warmup_steps > 1 ? total - c->warmup_steps : 1;
  double progress = (double)(k - c->warmup_steps) / (double)span;
  return (float)(c->lr * fmax(0.0, 0.5 * (1.0 + cos(M_PI * progress))));
}

float dt_il_ema_decay(const dtILConfig* c, int64_t k) {
  int64_t j = k - 1;
  if (j <= 0) return 0.0f;
  double d = 1.0 - pow(1.0 + (double)j, -(double)c->ema_power);
  return (float)fmin(fmax(d, 0.0), (double)c->ema_max);
}

// one Adam update at the schedule's learning rate, then the moving average
static dtStatus optimizer_step(dtILPolicy* p) {
  dt_adam_set_lr(p->adam, dt_il_lr_at(&p->c, p->opt_step, p->total_steps));
  dtStatus st = dt_adam_step(p->adam);
  if (!st && p->c.ema) st = dt_params_ema(&p->ema, &p->ps, 1.0f - dt_il_ema_decay(&p->c, p->opt_step));
  p->opt_step++;
  return st;
}

// the DDPM loss of a batch (targets p->yb, features p->xb): MSE between the noise drawn for a
// random step t per row and the noise net's prediction from the noisy chunk
static dtTensor* diffusion_loss(dtILPolicy* p, dtTape* t, int B) {
  int n = p->n, F = p->feat_dim, unet = p->c.noise_net == DT_IL_NOISE_UNET;
  int in = unet ? n : n + TEMB + F, P = p->c.pred_steps, A = p->act_dim;
  float *inp = p->tmp, *eps = p->tmp2, *steps = p->ainit;
  // the U-Net's rows are channels-first [A, P]: its noise is drawn in that layout and the
  // targets are transposed to it (p->afinal)
  const float* y = p->yb;
  if (unet) {
    chunk_transpose(p->yb, B, P, A, p->afinal, 0);
    y = p->afinal;
  }
  dt_rng_fill_normal(&p->rng, eps, (size_t)B * n, 0.0f, 1.0f);
  for (int b = 0; b < B; b++) {
    int tt = (int)dt_rng_below(&p->rng, (uint32_t)p->c.diffusion_steps);
    float sa = sqrtf(p->ab[tt]), s1 = sqrtf(1 - p->ab[tt]);
    float* r = inp + (size_t)b * in;
    for (int j = 0; j < n; j++) r[j] = sa * y[(size_t)b * n + j] + s1 * eps[(size_t)b * n + j];
    steps[b] = (float)tt;
    if (unet) continue;
    temb((float)tt, r + n);
    memcpy(r + n + TEMB, p->xb + (size_t)b * F, F * sizeof(float));
  }
  if (!unet) {
    dtTensor* pred = dt_mlp_forward(t, &p->net, dt_input2(t, B, in, inp, "x"));
    return dt_mse(t, pred, dt_input2(t, B, n, eps, "eps"));
  }
  int shape[3] = {B, A, P};
  dtTensor* pred = dt_unet1d_forward(t, &p->unet, dt_input(t, 3, shape, inp, "x"), steps,
                                     dt_input2(t, B, F, p->xb, "features"));
  return dt_mse(t, pred, dt_input(t, 3, shape, eps, "eps"));
}

static dtStatus step_impl(dtILPolicy* p, const dtDemoSet* ds, const int64_t* idx, int B, double* loss,
                          int update) {
  if (!p || !ds || !idx || B < 1) return dt_error(DT_ERR_ARG, "dt_il_train_step: bad argument");
  if (ds->obs_dim != p->obs_dim || ds->act_dim != p->act_dim)
    return dt_error(DT_ERR_ARG, "dt_il_train_step: data dims %d/%d, policy %d/%d", ds->obs_dim,
                    ds->act_dim, p->obs_dim, p->act_dim);
  if (check_images(p, ds)) return DT_ERR_ARG;
  dtStatus st = alloc_scratch(p, B);
  if (st) return st;
  if (p->c.kind == DT_IL_DIFFTOP && B > p->solver_cap)
    return dt_error(DT_ERR_ARG, "dt_il_train_step: batch %d above the solver's capacity %d", B, p->solver_cap);
  if ((st = ensure_base_cache(p, ds))) return st;
  if (p->c.kind == DT_IL_IBC && (st = alloc_ibc(p, B))) return st;
  int A = p->act_dim, n = p->n, F = p->feat_dim;
  int nx = p->c.kind == DT_IL_DIFFTOP ? p->obj.nx : F;
  int L = p->out_len;
  for (int b = 0; b < B; b++) {
    int64_t i = idx[b];
    if (i < 0 || i >= ds->total) return dt_error(DT_ERR_ARG, "dt_il_train_step: row %lld outside the dataset", (long long)i);
    int d = row_demo(ds, i);
    row_feat(p, ds, i, ds->start[d], p->xb + (size_t)b * nx);
    row_target(p, ds, i, ds->start[d + 1], L, p->yb + (size_t)b * n);
    size_t frames = (size_t)p->c.obs_steps * p->img_c * p->img_h * p->img_w;
    if (p->img_c) row_images(p, ds, i, ds->start[d], p->imgb + (size_t)b * frames);
  }
  dtTape* t = p->tape;
  dt_tape_reset(t);
  dt_params_zero_grad(&p->ps);
  double l = 0;
  switch (p->c.kind) {
    case DT_IL_BC: {
      dtTensor* y = bc_forward(p, t, B, p->xb);
      dtTensor* ls = p->c.gmm_modes > 0
                         ? dt_gmm_nll(t, y, p->c.gmm_modes, n, p->yb, p->c.gmm_min_std)
                         : dt_mse(t, y, dt_input2(t, B, n, p->yb, "a*"));
      if (ls && update) st = dt_backward(t, ls, NULL);
      l = ls ? ls->val[0] : NAN;
      break;
    }
    case DT_IL_DIFFUSION: {
      dtTensor* ls = diffusion_loss(p, t, B);
      if (ls && update) st = dt_backward(t, ls, NULL);
      l = ls ? ls->val[0] : NAN;
      break;
    }
    case DT_IL_RESIDUAL: {
      float* in = p->tmp;
      for (int b = 0; b < B; b++) {
        memcpy(in + (size_t)b * (F + n), p->xb + (size_t)b * F, F * sizeof(float));
        take_actions(p->base_cache + idx[b] * p->base->n, p->base->out_len, L, A, 1, in + (size_t)b * (F + n) + F);
      }
      dtTensor* x = dt_input2(t, B, F + n, in, "x");
      dtTensor* y = dt_add(t, dt_slice(t, x, 1, F, n), dt_mlp_forward(t, &p->net, x));
      dtTensor* ls = dt_mse(t, y, dt_input2(t, B, n, p->yb, "a*"));
      if (ls && update) st = dt_backward(t, ls, NULL);
      l = ls ? ls->val[0] : NAN;
      break;
    }
    case DT_IL_IBC: {
      dtTensor* ls = dt_ibc_loss(t, &p->net, B, F, n, p->xb, p->yb, p->c.ibc_negatives, &p->rng, p->ibc_rows);
      if (ls && update) st = dt_backward(t, ls, NULL);
      l = ls ? ls->val[0] : NAN;
      break;
    }
    case DT_IL_DIFFTOP: {
      if (p->base)
        for (int b = 0; b < B; b++)
          memcpy(p->tmp + (size_t)b * p->base->n, p->base_cache + idx[b] * p->base->n, p->base->n * sizeof(float));
      difftop_init(p, B, p->tmp, p->ainit);
      dtTensor *klterm = NULL, *zt = NULL;
      double kl = 0;
      if (p->c.cvae) {
        klterm = cvae_posterior(p, B, p->xb, p->yb, &zt, &kl);
        if (!klterm) { st = dt_tape_status(t); break; }
        int P = p->c.posterior_dim;
        for (int b = 0; b < B; b++) memcpy(p->xb + (size_t)b * nx + F, zt->val + (size_t)b * P, P * sizeof(float));
      }
      if ((st = dt_trajopt_solve(p->solver, B, p->xb, p->ainit, p->afinal, NULL, NULL, NULL))) break;
      double se = 0;
      float scale = 2.0f / ((float)B * n);
      for (int64_t i = 0; i < (int64_t)B * n; i++) {
        float e = p->afinal[i] - p->yb[i];
        se += (double)e * e;
        p->dLda[i] = scale * e;
      }
      l = se / ((double)B * n);
      if (!update) {
        if (p->c.cvae) l += p->c.kl_weight * kl;
        break;
      }
      if ((st = dt_trajopt_backward(p->solver, p->dLda, p->c.cvae ? p->dLdx : NULL, NULL))) break;
      if (p->c.cvae) {
        // beta KL + <dL/dz~, z~> carries the reconstruction gradient into the posterior
        int P = p->c.posterior_dim;
        float* g = p->tmp;
        for (int b = 0; b < B; b++) memcpy(g + (size_t)b * P, p->dLdx + (size_t)b * nx + F, P * sizeof(float));
        dtTensor* s = dt_sum(t, dt_mul(t, zt, dt_input2(t, B, P, g, "dL/dz")), DT_AXIS_ALL);
        dtTensor* tot = dt_add(t, klterm, s);
        if (!tot) { st = dt_tape_status(t); break; }
        st = dt_backward(t, tot, NULL);
        l += p->c.kl_weight * kl;
      }
      break;
    }
  }
  if (!st) st = dt_tape_status(t);
  if (st) return st;
  if (!isfinite(l) || (update && dt_params_grad_nonfinite(&p->ps)))
    return dt_error(DT_ERR_NONFINITE, "IL %s: non-finite loss or gradient", dt_il_kind_name(p->c.kind));
  if (update && (st = optimizer_step(p))) return st;
  if (loss) *loss = l;
  return DT_OK;
}

dtStatus dt_il_train_step(dtILPolicy* p, const dtDemoSet* ds, const int64_t* idx, int B, double* loss) {
  return step_impl(p, ds, idx, B, loss, 1);
}

dtStatus dt_il_loss(dtILPolicy* p, const dtDemoSet* ds, double* loss) {
  if (!p || !ds || !loss || ds->total < 1) return dt_error(DT_ERR_ARG, "dt_il_loss: bad argument");
  dtRng saved = p->rng, saved_base = p->base ? p->base->rng : p->rng;
  int B = p->c.batch < 256 ? p->c.batch : 256;
  if (p->c.kind == DT_IL_DIFFTOP && B > p->solver_cap) B = p->solver_cap;
  int64_t idx[256];
  double sum = 0;
  dtStatus st = DT_OK;
  for (int64_t i0 = 0; i0 < ds->total && !st; i0 += B) {
    int n = (int)(ds->total - i0 < B ? ds->total - i0 : B);
    for (int k = 0; k < n; k++) idx[k] = i0 + k;
    double l = 0;
    st = step_impl(p, ds, idx, n, &l, 0);
    sum += l * n;
  }
  p->rng = saved;
  if (p->base) p->base->rng = saved_base;
  if (!st) *loss = sum / (double)ds->total;
  return st;
}

dtStatus dt_il_train(dtILPolicy* p, const dtDemoSet* ds, void (*cb)(void*, const dtILEpoch*), void* user) {
  if (!p || !ds) return dt_error(DT_ERR_ARG, "dt_il_train: NULL argument");
  int64_t N = ds->total;
  int B = p->c.batch < N ? p->c.batch : (int)N;
  int64_t* perm = malloc((size_t)N * sizeof *perm);
  if (!perm) return dt_error(DT_ERR_NOMEM, "dt_il_train: out of memory");
  for (int64_t i = 0; i < N; i++) perm[i] = i;
  p->total_steps = p->opt_step + (int64_t)p->c.epochs * (N / B);
  dtStatus st = ensure_base_cache(p, ds);
  for (int ep = 0; ep < p->c.epochs && !st; ep++) {
    double t0 = dt_time_s(), sum = 0;
    for (int64_t i = N - 1; i > 0; i--) {
      int64_t j = dt_rng_below(&p->rng, (uint32_t)(i + 1));
      int64_t tmp = perm[i];
      perm[i] = perm[j];
      perm[j] = tmp;
    }
    int steps = 0;
    for (int64_t s = 0; s + B <= N && !st; s += B, steps++) {
      double l;
      st = dt_il_train_step(p, ds, perm + s, B, &l);
      sum += l;
    }
    if (st) break;
    double dt = dt_time_s() - t0;
    dtILEpoch e = {ep, steps ? sum / steps : 0, dt, dt > 0 ? (double)steps * B / dt : 0};
    if (cb) cb(user, &e);
  }
  free(perm);
  // the moving average is the trained policy from here on
  if (!st && p->c.ema && p->c.epochs > 0) st = dt_params_copy_values(&p->ps, &p->ema);
  return st;
}

//---------------------------------------------------------------------------------------------
// inference

static void hist_feat(const dtILPolicy* p, const float* hist, float* out) {
  // hist holds the policy's own T_o frames, oldest first
  for (int k = 0; k < p->c.obs_steps; k++) frame_feat(p, hist + (size_t)k * p->obs_dim, out + k * p->frame_dim);
}

// features of the base for a history given in this policy's T_o frames
static void base_hist_feat(const dtILPolicy* p, const float* hist, float* out) {
  const dtILPolicy* b = p->base;
  for (int k = 0; k < b->c.obs_steps; k++) {
    int src = p->c.obs_steps - b->c.obs_steps + k;
    if (src < 0) src = 0;
    frame_feat(b, hist + (size_t)src * p->obs_dim, out + k * b->frame_dim);
  }
}

// normalised decisions of one call (a_init optional) into out [n]
static dtStatus act_normalised(dtILPolicy* p, const float* hist, const float* z_tilde, float* a_init_out, float* out) {
  dtStatus st = DT_OK;
  int F = p->feat_dim;
  float feat[1024], bchunk[1024];
  hist_feat(p, hist, feat);
  if (p->base) {
    float bf[1024];
    base_hist_feat(p, hist, bf);
    if ((st = base_predict(p->base, 1, bf, bchunk))) return st;
  }
  switch (p->c.kind) {
    case DT_IL_BC:
    case DT_IL_DIFFUSION:
      return base_predict(p, 1, feat, out);
    case DT_IL_RESIDUAL: {
      float in[2048];
      memcpy(in, feat, F * sizeof(float));
      take_actions(bchunk, p->base->out_len, p->out_len, p->act_dim, 1, in + F);
      dt_tape_reset(p->tape);
      dt_tape_set_param_grads(p->tape, 0);
      dtTensor* y = dt_mlp_forward(p->tape, &p->net, dt_input2(p->tape, 1, F + p->n, in, "x"));
      dt_tape_set_param_grads(p->tape, 1);
      if (!y) return dt_tape_status(p->tape);
      for (int j = 0; j < p->n; j++) out[j] = fminf(fmaxf(in[F + j] + y->val[j], -1.0f), 1.0f);
      if (a_init_out) memcpy(a_init_out, in + F, p->n * sizeof(float));
      return DT_OK;
    }
    case DT_IL_IBC: {
      const dtILConfig* c = &p->c;
      dtIbcOpts o = {c->ibc_samples, c->ibc_iters, c->ibc_noise, c->ibc_shrink, c->ibc_init_std};
      float ainit[1024];
      if (p->base) take_actions(bchunk, p->base->out_len, p->out_len, p->act_dim, 1, ainit);
      if (a_init_out) {
        if (p->base) memcpy(a_init_out, ainit, p->n * sizeof(float));
        else memset(a_init_out, 0, p->n * sizeof(float));
      }
      return dt_ibc_act(p->tape, &p->net, F, p->n, feat, p->base ? ainit : NULL, &o, &p->rng, p->ibc_pop,
                        p->ibc_idx, out, NULL);
    }
    case DT_IL_DIFFTOP: {
      float x[2048], ainit[1024];
      memcpy(x, feat, F * sizeof(float));
      if (p->c.cvae) {
        if (z_tilde) memcpy(x + F, z_tilde, p->c.posterior_dim * sizeof(float));
        else dt_rng_fill_normal(&p->rng, x + F, p->c.posterior_dim, 0.0f, 1.0f);
      }
      difftop_init(p, 1, bchunk, ainit);
      if (a_init_out) memcpy(a_init_out, ainit, p->n * sizeof(float));
      return dt_trajopt_solve(p->solver, 1, x, ainit, out, NULL, NULL, NULL);
    }
  }
  return st;
}

// act_steps raw actions from the normalised decisions of one call
static dtStatus act_raw(dtILPolicy* p, const float* hist, float* actions) {
  float out[1024];
  if (p->n > 1024) return dt_error(DT_ERR_ARG, "dt_il_act: %d decisions (most 1024)", p->n);
  dtStatus st = act_normalised(p, hist, NULL, NULL, out);
  if (st) return st;
  int EA = p->c.act_steps * p->act_dim;
  for (int j = 0; j < EA; j++) actions[j] = fminf(fmaxf(out[j], -1.0f), 1.0f);
  dt_norm_unapply(&p->act_norm, actions, p->c.act_steps);
  return DT_OK;
}

dtStatus dt_il_act(dtILPolicy* p, const float* hist, float* actions) {
  if (!p || !hist || !actions) return dt_error(DT_ERR_ARG, "dt_il_act: NULL argument");
  if (p->img_c)
    return dt_error(DT_ERR_ARG, "dt_il_act: the policy takes %dx%dx%d images: use dt_il_act_image", p->img_h,
                    p->img_w, p->img_c);
  return act_raw(p, hist, actions);
}

dtStatus dt_il_act_image(dtILPolicy* p, const float* hist, const uint8_t* images, float* actions) {
  if (!p || !hist || !images || !actions) return dt_error(DT_ERR_ARG, "dt_il_act_image: NULL argument");
  if (!p->img_c) return dt_error(DT_ERR_ARG, "dt_il_act_image: the policy takes no images: use dt_il_act");
  size_t px = (size_t)p->img_c * p->img_h * p->img_w;
  for (int k = 0; k < p->c.obs_steps; k++)
    dt_image_hwc_to_chw(images + k * px, p->img_h, p->img_w, p->img_c, p->imgb + k * px);
  return act_raw(p, hist, actions);
}

dtStatus dt_il_refine(dtILPolicy* p, const float* hist, const float* z_tilde, float* a_init, float* a_final) {
  if (!p || !hist || !a_init || !a_final) return dt_error(DT_ERR_ARG, "dt_il_refine: NULL argument");
  if (p->c.kind != DT_IL_DIFFTOP && p->c.kind != DT_IL_RESIDUAL && p->c.kind != DT_IL_IBC)
    return dt_error(DT_ERR_ARG, "dt_il_refine: a %s policy refines nothing", dt_il_kind_name(p->c.kind));
  return act_normalised(p, hist, z_tilde, a_init, a_final);
}

dtStatus dt_il_objective_values(dtILPolicy* p, const float* hist, const float* z_tilde, int n, const float* a, float* G) {
  if (!p || !hist || !a || !G || n < 1) return dt_error(DT_ERR_ARG, "dt_il_objective_values: bad argument");
  if (p->c.kind != DT_IL_DIFFTOP) return dt_error(DT_ERR_ARG, "dt_il_objective_values: not a DiffTOP policy");
  int nx = p->obj.nx, F = p->feat_dim;
  dtStatus st = DT_OK;
  for (int i0 = 0; i0 < n && !st; i0 += p->solver_cap) {
    int B = n - i0 < p->solver_cap ? n - i0 : p->solver_cap;
    for (int b = 0; b < B; b++) {
      hist_feat(p, hist, p->xb + (size_t)b * nx);
      if (p->c.cvae) memcpy(p->xb + (size_t)b * nx + F, z_tilde ? z_tilde : p->xb + F, p->c.posterior_dim * sizeof(float));
    }
    if (p->c.cvae && !z_tilde) return dt_error(DT_ERR_ARG, "dt_il_objective_values: a CVAE objective needs z_tilde");
    st = dt_trajopt_eval(p->solver, B, p->xb, a + (size_t)i0 * p->n, G + i0, NULL);
  }
  return st;
}

//---------------------------------------------------------------------------------------------
// Push-T evaluation

#ifdef DT_HAVE_CHIPMUNK
// the policy's low-dimensional frame from Push-T's observation o, by its obs keys ("state": o,
// "agent_pos": o[0..1]; an image key is skipped); returns the frame's size, -1 for a key
// Push-T cannot give (its name in bad)
static int pusht_frame(const dtILPolicy* p, const double o[5], float* out, char* bad, size_t size) {
  const char* keys = p->obs_keys[0] ? p->obs_keys : "state";
  int n = 0;
  for (const char* k = keys; k && *k;) {
    const char* e = strchr(k, ',');
    size_t len = e ? (size_t)(e - k) : strlen(k);
    if (len == 5 && !strncmp(k, "state", 5)) {
      for (int j = 0; j < 5; j++) out[n++] = (float)o[j];
    } else if (len == 9 && !strncmp(k, "agent_pos", 9)) {
      out[n++] = (float)o[0], out[n++] = (float)o[1];
    } else if (!(p->img_c && len >= 5 && !strncmp(k + len - 5, "image", 5))) {
      snprintf(bad, size, "%.*s", (int)len, k);
      return -1;
    }
    k = e ? e + 1 : NULL;
  }
  return n;
}

// append the newest frame (obs and, for an image policy, an H x W render) to the histories
static dtStatus pusht_push_frame(const dtILPolicy* p, const dtPusht* sim, float* hist, uint8_t* imgs,
                                 int fill) {
  int To = p->c.obs_steps, od = p->obs_dim;
  size_t px = (size_t)p->img_h * p->img_w * p->img_c;
  double o[5];
  char bad[64];
  dt_pusht_observe(sim, o);
  memmove(hist, hist + od, (size_t)(To - 1) * od * sizeof(float));
  pusht_frame(p, o, hist + (size_t)(To - 1) * od, bad, sizeof bad);
  if (imgs) {
    memmove(imgs, imgs + px, (size_t)(To - 1) * px);
    dtStatus st = dt_pusht_render(sim, p->img_w, p->img_h, imgs + (size_t)(To - 1) * px);
    if (st) return st;
  }
  for (int k = 0; fill && k < To - 1; k++) {
    memcpy(hist + (size_t)k * od, hist + (size_t)(To - 1) * od, od * sizeof(float));
    if (imgs) memcpy(imgs + k * px, imgs + (size_t)(To - 1) * px, px);
  }
  return DT_OK;
}

// the policy's fit to Push-T: its keys give its obs_dim, 2 actions, RGB images
static dtStatus pusht_check_policy(const dtILPolicy* p) {
  float f[DT_NORM_MAX_DIM + 8];
  double o[5] = {0};
  char bad[64] = "";
  int n = pusht_frame(p, o, f, bad, sizeof bad);
  if (n < 0)
    return dt_error(DT_ERR_ARG, "dt_il_eval_pusht: obs key '%s' of the policy is not a Push-T observation "
                    "(state, agent_pos, image)", bad);
  if (n != p->obs_dim || p->act_dim != 2 || (p->img_c && p->img_c != 3))
    return dt_error(DT_ERR_ARG, "dt_il_eval_pusht: the policy has obs/action dims %d/%d (keys '%s'), Push-T "
                    "gives %d/2", p->obs_dim, p->act_dim, p->obs_keys, n);
  return DT_OK;
}
#endif

void dt_il_policy_set_sample_seed(dtILPolicy* p, uint64_t seed) {
  if (p) p->sample_seed = seed;
}

// reseed the draws of p and its base chain for the episode from env seed s
static void episode_reseed(dtILPolicy* p, uint64_t s) {
  uint64_t mix = (s + 1) * 0x9E3779B97F4A7C15ull ^ (p->sample_seed + 0x632BE59BD9B4E019ull);
  for (dtILPolicy* q = p; q; q = q->base) dt_rng_seed(&q->rng, mix);
}

// the generators of p's base chain, saved (out) or restored (back) around an evaluation
static void rng_chain(dtILPolicy* p, dtRng saved[4], int back) {
  int k = 0;
  for (dtILPolicy* q = p; q && k < 4; q = q->base, k++) {
    if (back) q->rng = saved[k];
    else saved[k] = q->rng;
  }
}

dtStatus dt_il_eval_pusht(dtILPolicy* p, int episodes, uint32_t seed0, int max_steps, dtILEvalResult* res, double* scores) {
#ifndef DT_HAVE_CHIPMUNK
  (void)p, (void)episodes, (void)seed0, (void)max_steps, (void)res, (void)scores;
  return dt_error(DT_ERR_UNSUPPORTED, "Push-T evaluation needs a build with Chipmunk2D");
#else
  if (!p || !res || episodes < 1 || max_steps < 1) return dt_error(DT_ERR_ARG, "dt_il_eval_pusht: bad argument");
  dtStatus st = pusht_check_policy(p);
  if (st) return st;
  dtPusht* sim = NULL;
  if ((st = dt_pusht_new(&sim))) return st;
  memset(res, 0, sizeof *res);
  int To = p->c.obs_steps, E = p->c.act_steps;
  float hist[8 * DT_NORM_MAX_DIM], acts[64 * 2];
  uint8_t* imgs = p->img_c ? malloc((size_t)To * p->img_h * p->img_w * p->img_c) : NULL;
  if (p->img_c && !imgs) st = dt_error(DT_ERR_NOMEM, "dt_il_eval_pusht: out of memory for the frames");
  double sum = 0, succ = 0, act_s = 0;
  long calls = 0;
  dtRng saved[4];
  rng_chain(p, saved, 0);
  for (int e = 0; e < episodes && !st; e++) {
    episode_reseed(p, seed0 + (uint32_t)e);
    if ((st = dt_pusht_reset_numpy(sim, seed0 + (uint32_t)e))) break;
    if ((st = pusht_push_frame(p, sim, hist, imgs, 1))) break;
    double best = 0;
    int done = 0, steps = 0;
    while (!done && steps < max_steps && !st) {
      double t0 = dt_time_s();
      st = imgs ? dt_il_act_image(p, hist, imgs, acts) : dt_il_act(p, hist, acts);
      act_s += dt_time_s() - t0;
      calls++;
      for (int k = 0; k < E && !done && steps < max_steps && !st; k++) {
        double a2[2] = {acts[2 * k], acts[2 * k + 1]}, rew = 0;
        int success = 0;
        st = dt_pusht_step(sim, a2, &rew, NULL, &success);
        steps++;
        if (rew > best) best = rew;
        done = success;
        if (!st) st = pusht_push_frame(p, sim, hist, imgs, 0);
      }
    }
    if (scores) scores[e] = best;
    sum += best;
    succ += done;
  }
  rng_chain(p, saved, 1);
  free(imgs);
  dt_pusht_free(sim);
  if (st) return st;
  res->episodes = episodes;
  res->mean_score = sum / episodes;
  res->success_rate = succ / episodes;
  res->ms_per_call = calls ? 1e3 * act_s / calls : 0;
  res->ms_per_action = res->ms_per_call / E;
  return DT_OK;
#endif
}

//---------------------------------------------------------------------------------------------
// DMC evaluation: mean return

// roll out the policy p (or the expert ex) for episodes from dt_env_reset(seed0 + i)
static dtStatus eval_dmc(dtILPolicy* p, dtExpert* ex, const char* task, int ar, int episodes, uint64_t seed0,
                         dtILEvalResult* res, double* returns) {
  if (!task || !res || episodes < 1 || (!p && !ex)) return dt_error(DT_ERR_ARG, "dt_il_eval_dmc: bad argument");
  if (ar < 0) return dt_error(DT_ERR_ARG, "dt_il_eval_dmc: action_repeat %d < 0", ar);
  memset(res, 0, sizeof *res);
  dtEnvOpts o = dt_env_default_opts();
  o.action_repeat = ar;
  dtEnv* env = NULL;
  dtStatus st = dt_env_make(task, &o, &env);
  if (st) return st;
  int od = (int)dt_env_obs_space(env)->size, ad = (int)dt_env_action_space(env)->size;
  int To = p ? p->c.obs_steps : 1, E = p ? p->c.act_steps : 1;
  if (p && (p->obs_dim != od || p->act_dim != ad)) {
    dt_env_free(env);
    return dt_error(DT_ERR_ARG, "dt_il_eval_dmc: the policy has obs/action dims %d/%d, task %s has %d/%d",
                    p->obs_dim, p->act_dim, task, od, ad);
  }
  float* hist = malloc(sizeof(float) * (size_t)(To * od + od));
  float* acts = malloc(sizeof(float) * (size_t)(E * ad + ad));
  double* rets = malloc(sizeof(double) * (size_t)episodes);
  if (!hist || !acts || !rets) {
    st = dt_error(DT_ERR_NOMEM, "dt_il_eval_dmc: out of memory");
    goto done;
  }
  double act_s = 0;
  long calls = 0;
  dtRng saved[4];
  if (p) rng_chain(p, saved, 0);
  for (int e = 0; e < episodes && !st; e++) {
    if (p) episode_reseed(p, seed0 + (uint64_t)e);
    float* obs = hist + (size_t)To * od;  // the env's newest observation
    if ((st = dt_env_reset(env, (int64_t)(seed0 + (uint64_t)e), obs))) break;
    for (int k = 0; k < To; k++) memcpy(hist + (size_t)k * od, obs, sizeof(float) * (size_t)od);
    double ret = 0;
    dtStepInfo info = {0};
    while (!info.truncated && !info.terminated && !st) {
      double t0 = dt_time_s();
      st = p ? dt_il_act(p, hist, acts) : dt_expert_act(ex, env, acts);
      act_s += dt_time_s() - t0;
      calls++;
      for (int k = 0; k < E && !info.truncated && !info.terminated && !st; k++) {
        st = dt_env_step(env, acts + (size_t)k * ad, ad, obs, &info);
        if (st) break;
        ret += info.reward;
        // shift the history (oldest first) and append the new frame
        memmove(hist, hist + od, sizeof(float) * (size_t)(To - 1) * od);
        memcpy(hist + (size_t)(To - 1) * od, obs, sizeof(float) * (size_t)od);
      }
    }
    rets[e] = ret;
  }
  if (p) rng_chain(p, saved, 1);
  if (!st) {
    double sum = 0, sq = 0;
    for (int e = 0; e < episodes; e++) sum += rets[e];
    double mean = sum / episodes;
    for (int e = 0; e < episodes; e++) sq += (rets[e] - mean) * (rets[e] - mean);
    res->episodes = episodes;
    res->mean_score = mean;
    res->sd_score = episodes > 1 ? sqrt(sq / (episodes - 1)) : 0;
    res->success_rate = -1;
    res->ms_per_call = calls ? 1e3 * act_s / calls : 0;
    res->ms_per_action = res->ms_per_call / E;
    if (returns) memcpy(returns, rets, sizeof(double) * (size_t)episodes);
  }
done:
  free(hist), free(acts), free(rets);
  dt_env_free(env);
  return st;
}

dtStatus dt_il_eval_dmc(dtILPolicy* p, const char* task, int action_repeat, int episodes, uint64_t seed0,
                        dtILEvalResult* res, double* returns) {
  if (!p) return dt_error(DT_ERR_ARG, "dt_il_eval_dmc: NULL policy");
  return eval_dmc(p, NULL, task, action_repeat, episodes, seed0, res, returns);
}

dtStatus dt_il_eval_expert_dmc(const char* task, int action_repeat, int episodes, uint64_t seed0,
                               dtILEvalResult* res, double* returns) {
  dtExpert* ex = NULL;
  dtStatus st = dt_expert_new(task, seed0, &ex);
  if (!st) st = eval_dmc(NULL, ex, task, action_repeat, episodes, seed0, res, returns);
  dt_expert_free(ex);
  return st;
}
