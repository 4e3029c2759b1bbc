// SPDX-License-Identifier: MIT
// Imitation learning: demonstration datasets (robomimic's HDF5 layout), min/max normalisers,
// base policies (BC, diffusion), the residual baseline, DiffTOP-IL (a learned objective and
// latent dynamics decoded by the differentiable trajectory optimizer, optionally as a CVAE)
// and Push-T evaluation with the upstream metric.
#ifndef DIFFTOP_IL_H
#define DIFFTOP_IL_H

#include "pusht.h"
#include "trajopt.h"

#ifdef __cplusplus
extern "C" {
#endif

//---------------------------------------------------------------------------------------------
// normalisation (diffusion_policy's "limits" LinearNormalizer: min/max to [-1, 1] per dim)

// Most dimensions a normaliser holds.
#define DT_NORM_MAX_DIM 64

// Per-dimension affine map x_n = scale * x + offset with scale = 2 / (max - min) and
// offset = -1 - scale * min; a dimension whose range is below 1e-4 maps to 0 (scale 1,
// offset -min), as upstream does with its range_eps.
typedef struct dtNormalizer {
  int dim;
  float min[DT_NORM_MAX_DIM], max[DT_NORM_MAX_DIM];
  float scale[DT_NORM_MAX_DIM], offset[DT_NORM_MAX_DIM];
} dtNormalizer;

// Fit to rows x [n, dim] (n >= 1).
DTAPI dtStatus dt_norm_fit(dtNormalizer* nz, const float* x, int64_t n, int dim);

// Set from known min/max.
DTAPI dtStatus dt_norm_set(dtNormalizer* nz, int dim, const float* min, const float* max);

// Normalise rows in place (x [n, dim]).
DTAPI void dt_norm_apply(const dtNormalizer* nz, float* x, int64_t n);

// Undo the normalisation of rows in place.
DTAPI void dt_norm_unapply(const dtNormalizer* nz, float* x, int64_t n);

//---------------------------------------------------------------------------------------------
// demonstration datasets

// Demonstrations held in memory: demos concatenated, obs of one key (or several keys
// concatenated per row), actions, rewards and dones per step.
typedef struct dtDemoSet {
  int n_demos;
  int obs_dim, act_dim;
  int64_t total;            // steps over all demos
  int64_t* start;           // [n_demos + 1] first step of each demo (start[n_demos] = total)
  int* demo_index;          // [n_demos] k of data/demo_k
  float* obs;               // [total, obs_dim]
  float* actions;           // [total, act_dim]
  float* rewards;           // [total]
  uint8_t* dones;           // [total]
  char obs_keys[256];       // comma-separated obs keys concatenated into obs
  char env_args[1024];      // data attribute env_args (JSON)
  dtNormalizer obs_norm;    // fitted on all obs
  dtNormalizer act_norm;    // fitted on all actions
  // an image observation (one key of obs_keys, not part of obs): uint8 HWC frames as stored
  // (robomimic's agentview_image); images == NULL and image_key "" when the obs have none
  char image_key[64];
  int img_h, img_w, img_c;
  uint8_t* images;          // [total, img_h, img_w, img_c]
  // multimodal Push-T demos: the expert's mode per demo (written as the demo attribute
  // expert_mode; not read back); NULL otherwise
  int* modes;               // [n_demos]
} dtDemoSet;

// Most channels of an image observation (1: grey, 3: RGB).
#define DT_IMAGE_MAX_CHANNELS 3

// Convert one uint8 HWC image [h, w, c] to float CHW [c, h, w] in [0, 1].
DTAPI void dt_image_hwc_to_chw(const uint8_t* hwc, int h, int w, int c, float* chw);

// Options of the Push-T demonstration generator.
typedef struct dtPushtDemoOpts {
  int episodes;             // successful demos to keep (default 200)
  uint64_t seed;            // master seed (episode seeds and expert seeds derive from it)
  int max_steps;            // per episode (default 300)
  int max_attempts;         // episodes tried at most (default 3 * episodes)
  int keep_failures;        // 1: keep unsuccessful episodes too (default 0)
  int verbose;              // 1: one line per episode on stderr
  const dtPushtExpertOpts* expert;  // expert settings (NULL: the default smooth expert)
  int image_size;           // > 0: also render image_size^2 RGB frames (obs key "image") and
                            // store obs key "agent_pos" (obs_keys "state,agent_pos,image")
} dtPushtDemoOpts;

// Default Push-T generator options.
DTAPI dtPushtDemoOpts dt_pusht_demo_default_opts(void);

// Roll out the Push-T expert (sampling MPC on the true simulator, smooth unless opts->expert
// says otherwise) from dt_pusht_reset seeds that
// never overlap the evaluation seeds; obs key "state" (5-D), pixel actions. Deterministic for
// a seed. With opts->expert->multimodal, out->modes holds each kept demo's mode.
DTAPI dtStatus dt_demos_generate_pusht(const dtPushtDemoOpts* opts, dtDemoSet* out);

// Options of the DMC demonstration generator (tasks with an analytic expert, dt_expert_names).
typedef struct dtDmcDemoOpts {
  int episodes;             // demos to record (default 10)
  uint64_t seed;            // master seed (episode seeds and noise derive from it)
  int action_repeat;        // 0: the task's default (TD-MPC's, the one the experts are tuned for)
  float noise;              // DART: std of Gaussian noise added to the executed action (the
                            // recorded label stays the clean expert action); default 0
  int verbose;              // 1: one line per episode on stderr
} dtDmcDemoOpts;

// Default DMC generator options.
DTAPI dtDmcDemoOpts dt_dmc_demo_default_opts(void);

// Roll out a task's analytic expert (dt_expert_new) for whole episodes from dt_env_reset seeds
// at or above 2^62 (never an evaluation seed); obs key "state" (the env's observation), actions
// in [-1, 1], rewards summed over the action repeat. env_args names the task, the action repeat
// and the generator. Deterministic for a seed.
DTAPI dtStatus dt_demos_generate_dmc(const char* task, const dtDmcDemoOpts* opts, dtDemoSet* out);

// Copy demos [first, first + count) of src into out (a new dataset with its own normalisers,
// fitted on the copied rows; obs_keys and env_args are kept).
DTAPI dtStatus dt_demos_subset(const dtDemoSet* src, int first, int count, dtDemoSet* out);

// The task named by a dataset's env_args ("env_name"), into name (size bytes); 0 if found.
DTAPI int dt_demos_task(const dtDemoSet* ds, char* name, size_t size);

// The action repeat recorded in a dataset's env_args (0 when absent).
DTAPI int dt_demos_action_repeat(const dtDemoSet* ds);

// Free a dataset's arrays (the struct may be reused).
DTAPI void dt_demos_free(dtDemoSet* ds);

// Write robomimic's layout: data/demo_k/{obs/<key>, actions, rewards, dones}, data attrs total
// and env_args, each demo attr num_samples; plus stats/{obs,actions}/{min,max} (float32).
// With several obs keys, obs is split back by the dims given in key_dims (NULL: one key); the
// image key (ds->image_key) is written from ds->images as uint8 [T, H, W, C] and its key_dims
// entry is ignored.
DTAPI dtStatus dt_demos_write_hdf5(const dtDemoSet* ds, const char* path, const int* key_dims);

// Read a robomimic-layout file. obs_keys: comma-separated keys under data/demo_k/obs
// concatenated in that order (NULL or "": every 1-D or 2-D float key, by name). One key may be
// a rank-4 uint8 image [T, H, W, C] (C 1 or 3): it goes to out->images (HWC, uint8; convert
// rows with dt_image_hwc_to_chw) and needs at least one low-dimensional key beside it.
// Validates every demo: missing groups or keys, wrong ranks or types, image extents that
// differ between demos, row counts that disagree with actions or num_samples, NaN/Inf; the
// message names the file, the demo and the key.
DTAPI dtStatus dt_demos_read_hdf5(const char* path, const char* obs_keys, dtDemoSet* out);

// 1 when built with HDF5.
DTAPI int dt_il_have_hdf5(void);

//---------------------------------------------------------------------------------------------
// policies

// Policy kinds.
typedef enum dtILKind {
  DT_IL_BC = 0,          // MLP: obs history -> action chunk, MSE
  DT_IL_DIFFUSION,       // DDPM-trained noise MLP, DDIM sampling of an action chunk
  DT_IL_RESIDUAL,        // frozen base + MLP residual (MSE)
  DT_IL_DIFFTOP,         // frozen base as initialiser + differentiable trajectory optimizer
  DT_IL_IBC              // implicit BC: InfoNCE energy, derivative-free optimisation (optionally
                         // started from a frozen base's chunk: IBC + BC / diffusion)
} dtILKind;

// Initialisation of DiffTOP's decision variables.
typedef enum dtILInit { DT_IL_INIT_BASE = 0, DT_IL_INIT_ZERO, DT_IL_INIT_RANDOM } dtILInit;

// Learning-rate schedule of IL training.
typedef enum dtILSchedule {
  DT_IL_LR_CONSTANT = 0,   // lr throughout (after any warm-up)
  DT_IL_LR_COSINE = 1      // half a cosine from lr to 0 over the run (diffusers' "cosine")
} dtILSchedule;

// Noise network of the diffusion policy.
typedef enum dtILNoiseNet {
  DT_IL_NOISE_MLP = 0,     // MLP on [x_t, sinusoidal t, features] (hidden, layers + 1)
  DT_IL_NOISE_UNET = 1     // 1-D temporal U-Net over the chunk (dtUnet1D; FiLM on [t, features])
} dtILNoiseNet;

// Settings of an IL policy and its training (config keys in dt_il_config_set).
typedef struct dtILConfig {
  dtILKind kind;
  char base[512];          // run directory of the base policy (residual, DiffTOP with base init)
  dtILInit init;
  int cvae;                // DiffTOP: CVAE posterior over a 64-d z~ (paper App. E)
  int horizon;             // DiffTOP planning horizon H (in executed chunks)
  int obs_steps;           // T_o frames of history (default 2, at most 16)
  int act_steps;           // actions executed per policy call (default 4)
  int pred_steps;          // actions predicted by BC/diffusion (default 8, >= act_steps)
  int hidden;              // hidden width (default 256)
  int layers;              // hidden layers (default 2)
  int latent_dim;          // DiffTOP z^s (default 50)
  int posterior_dim;       // CVAE z~ (default 64)
  float kl_weight;         // CVAE beta
  float gamma;             // discount of eq. 7
  int diffusion_steps;     // DDPM training steps (default 100)
  int ddim_steps;          // DDIM inference steps (default 10)
  int epochs, batch;
  float lr;
  dtSolver solver;
  int iters;
  float step;
  dtBackward backward;
  int backward_iters;
  uint64_t seed;
  char task[64];           // environment the policy acts in ("" or "pusht": Push-T; a DMC task)
  int action_repeat;       // DMC: simulator steps per env step (0: the task's default)
  int conv_channels;       // BC on images: channels of each conv of the encoder (default 32)
  int conv_out;            // BC on images: features per frame out of the encoder (default 64)
  float prox;              // DiffTOP: G(a) - prox/2 |a|^2 (default 0): strongly concave where f's
                           // curvature is below prox, so the solver's fixed point is G's maximiser
  int ibc_negatives;       // IBC: uniform counter-examples per training row (default 64)
  int ibc_samples;         // IBC: population of the derivative-free optimiser (default 1024)
  int ibc_iters;           // IBC: its resample-and-perturb rounds (default 3)
  float ibc_noise;         // IBC: first round's perturbation std (default 0.33)
  float ibc_shrink;        // IBC: std factor per round (default 0.5)
  float ibc_init_std;      // IBC with a base: population = base chunk + N(0, std^2) (default 0.1)
  int ema;                 // 1: keep an exponential moving average of the weights and end training
                           // with it, so it is what acts and is saved (diffusion_policy's EMAModel)
  float ema_power;         // EMA decay after k updates: 1 - (1 + k)^-power (default 0.75)
  float ema_max;           // the decay's ceiling (default 0.9999)
  dtILSchedule lr_schedule;  // learning rate over the run (default constant)
  int warmup_steps;        // linear warm-up of the learning rate over this many updates (default 0)
  dtILNoiseNet noise_net;  // diffusion: the noise network (default mlp)
  int unet_dims[DT_UNET_MAX_LEVELS];  // U-Net channels per level, 0 after the last (default 64, 128;
                           // pred_steps must halve once per level after the first)
  int unet_kernel;         // U-Net conv kernel, odd (default 5)
  int unet_groups;         // U-Net GroupNorm groups, dividing every unet_dims entry (default 8)
  int unet_step_dim;       // U-Net diffusion-step embedding (default 64)
  int gmm_modes;           // BC: 0 = a deterministic MSE head (default); K >= 1 = a K-component
                           // Gaussian-mixture head (robomimic's GMM; its default K = 5), trained by
                           // likelihood, acting with a sampled component's mean
  float gmm_min_std;       // BC with gmm_modes: the floor added to every std (default 1e-4)
  int rnn_hidden;          // BC: 0 = an MLP on the T_o frames side by side (default); N >= 1 = an
                           // LSTM of width N over the T_o frames, oldest first, whose last h feeds
                           // the MLP head (robomimic's BC-RNN, the paper's base, over a window)
  int rnn_layers;          // BC with rnn_hidden: stacked LSTM layers (default 2, robomimic's)
} dtILConfig;

// Defaults (BC, H = 1, T_o = 2, 4 executed of 8 predicted, hidden 256).
DTAPI void dt_il_config_default(dtILConfig* c);

// Set one key ("policy", "base", "init", "cvae", "horizon", ...) from text; unet_dims takes a
// comma-separated list ("64,128").
DTAPI dtStatus dt_il_config_set(dtILConfig* c, const char* key, const char* value);

// Learning rate of update k (from 0) of a run of total updates: linear warm-up from 0 over
// warmup_steps, then lr, or half a cosine from lr to 0 at update total (diffusers' "cosine";
// total <= 0: no decay).
DTAPI float dt_il_lr_at(const dtILConfig* c, int64_t k, int64_t total);

// EMA decay applied at update k (from 0), as diffusion_policy's EMAModel (inv_gamma 1):
// 0 for k <= 1, then min(1 - k^-ema_power, ema_max).
DTAPI float dt_il_ema_decay(const dtILConfig* c, int64_t k);

// Write every key as YAML (atomic).
DTAPI dtStatus dt_il_config_write(const dtILConfig* c, const char* path);

// Read a config.yaml written by dt_il_config_write.
DTAPI dtStatus dt_il_config_read(dtILConfig* c, const char* path);

// Name of a kind ("bc", "diffusion", "residual", "difftop").
DTAPI const char* dt_il_kind_name(dtILKind k);

// A trained or training policy.
typedef struct dtILPolicy dtILPolicy;

// Create a policy for a dataset's dims (the normalisers are copied from ds); loads the frozen
// base from c->base when the kind needs one. A dataset with an image key (ds->images) gives
// BC a conv encoder (TD-MPC's, dt_convnet_spec_tdmpc with conv_channels and conv_out, on
// float CHW images in [0, 1], shared over the T_o frames) whose features are concatenated with
// the low-dimensional ones before the MLP; the other kinds reject image datasets.
DTAPI dtStatus dt_il_policy_new(const dtILConfig* c, const dtDemoSet* ds, dtILPolicy** out);

// Free a policy (NULL allowed).
DTAPI void dt_il_policy_free(dtILPolicy* p);

// Load a policy from a run directory (config.yaml + model.safetensors).
DTAPI dtStatus dt_il_policy_load(const char* run_dir, dtILPolicy** out);

// Save config.yaml and model.safetensors (parameters and normalisers) into run_dir.
DTAPI dtStatus dt_il_policy_save(const dtILPolicy* p, const char* run_dir);

// The policy's config.
DTAPI const dtILConfig* dt_il_policy_config(const dtILPolicy* p);

// The policy's action normaliser (maps dataset actions to the policy's [-1, 1]).
DTAPI const dtNormalizer* dt_il_policy_action_norm(const dtILPolicy* p);

// Training progress of one epoch.
typedef struct dtILEpoch {
  int epoch;
  double loss;
  double seconds;
  double samples_per_s;
} dtILEpoch;

// Train on ds for c->epochs; calls cb (may be NULL) after every epoch.
DTAPI dtStatus dt_il_train(dtILPolicy* p, const dtDemoSet* ds,
                           void (*cb)(void* user, const dtILEpoch* e), void* user);

// One training step on a batch of dataset rows idx[0..B); writes the loss.
DTAPI dtStatus dt_il_train_step(dtILPolicy* p, const dtDemoSet* ds, const int64_t* idx, int B,
                                double* loss);

// Mean training loss over every row of ds without updating anything (for a held-out split);
// the policy's random stream is restored afterwards, so training is unchanged by calling it.
DTAPI dtStatus dt_il_loss(dtILPolicy* p, const dtDemoSet* ds, double* loss);

// Actions for an observation history obs [obs_steps, obs_dim] (oldest first, raw units):
// writes act_steps actions [act_steps, act_dim] in raw units. Not for image policies.
DTAPI dtStatus dt_il_act(dtILPolicy* p, const float* obs_hist, float* actions);

// Actions of an image policy: obs_hist as in dt_il_act (the low-dimensional keys) and images
// [obs_steps, H, W, C] uint8 HWC frames (oldest first) of the extent the policy was trained on.
DTAPI dtStatus dt_il_act_image(dtILPolicy* p, const float* obs_hist, const uint8_t* images,
                               float* actions);

// Image extent an image policy takes (*h, *w, *c); 0 when the policy takes no images.
DTAPI int dt_il_policy_image(const dtILPolicy* p, int* h, int* w, int* c);

// Comma-separated obs keys of the dataset the policy was created for ("" when unknown).
DTAPI const char* dt_il_policy_obs_keys(const dtILPolicy* p);

// Normalised base and refined first chunk at one obs history, for plots: writes a_init and
// a_final [H * act_steps * act_dim]; z_tilde (posterior_dim floats, NULL: drawn from N(0, I))
// selects a CVAE objective.
DTAPI dtStatus dt_il_refine(dtILPolicy* p, const float* obs_hist, const float* z_tilde,
                            float* a_init, float* a_final);

// Objective G(a) of the DiffTOP policy at one obs history for a batch of normalised
// decisions a [n, H * act_steps * act_dim] (z_tilde as in dt_il_refine); writes G [n].
DTAPI dtStatus dt_il_objective_values(dtILPolicy* p, const float* obs_hist, const float* z_tilde,
                                      int n, const float* a, float* G);

// Push-T evaluation: the upstream metric.
typedef struct dtILEvalResult {
  int episodes;
  double mean_score;       // mean over episodes of the episode-max reward
  double success_rate;     // fraction with coverage > 0.95
  double ms_per_call;      // policy inference per call (act_steps actions)
  double ms_per_action;
  double sd_score;         // standard deviation of the per-episode scores
} dtILEvalResult;

// Seed of a stochastic policy's draws during evaluation (diffusion noise, CVAE latents, random
// initialisations, IBC samples; default 0). Each episode reseeds them from this and its env seed,
// so a score depends neither on the training history nor on the episodes evaluated before it;
// the policy's generators are restored afterwards.
DTAPI void dt_il_policy_set_sample_seed(dtILPolicy* p, uint64_t seed);

// Evaluate on Push-T from dt_pusht_reset_numpy(seed0 + i), i < episodes, max_steps each. The
// policy's obs keys pick its observation: "state" (5-D), "agent_pos" (2-D) or both; an image
// policy gets an H x W render (dt_pusht_render) of every step.
DTAPI dtStatus dt_il_eval_pusht(dtILPolicy* p, int episodes, uint32_t seed0, int max_steps,
                                dtILEvalResult* res, double* scores);

// Evaluation on a DMC task: episodes from dt_env_reset(env, seed0 + i), i < episodes, run to the
// time limit at the given action repeat (0: the task's default); the policy executes act_steps
// actions per call. mean_score = mean return, sd_score its sd over episodes, success_rate = -1.
// The policy's obs/action dims must match the task's.
DTAPI dtStatus dt_il_eval_dmc(dtILPolicy* p, const char* task, int action_repeat, int episodes,
                              uint64_t seed0, dtILEvalResult* res, double* returns);

// The task's analytic expert on the same episodes as dt_il_eval_dmc (for reference).
DTAPI dtStatus dt_il_eval_expert_dmc(const char* task, int action_repeat, int episodes,
                                     uint64_t seed0, dtILEvalResult* res, double* returns);

#ifdef __cplusplus
}
#endif
#endif
