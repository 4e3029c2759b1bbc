// SPDX-License-Identifier: MIT
// difftop demos / il-train / il-eval: imitation learning from demonstrations.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "difftop/il.h"

// value of --name in argv (NULL if absent); flags with no value are not handled here
static const char* opt_get(int argc, char** argv, const char* name) {
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp(argv[i], name)) return argv[i + 1];
  return NULL;
}

static int has_flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], name)) return 1;
  return 0;
}

// difftop demos --task DMC_TASK: the analytic expert's episodes
static int demos_dmc(int argc, char** argv, const char* task, const char* out) {
  dtDmcDemoOpts o = dt_dmc_demo_default_opts();
  const char* v;
  char* end = NULL;
  if ((v = opt_get(argc, argv, "--episodes"))) o.episodes = (int)strtol(v, &end, 10);
  if (v && (*end || o.episodes < 1)) {
    fprintf(stderr, "difftop demos: --episodes '%s' must be an integer >= 1\n", v);
    return 2;
  }
  if ((v = opt_get(argc, argv, "--seed"))) o.seed = strtoull(v, NULL, 10);
  if ((v = opt_get(argc, argv, "--action-repeat"))) o.action_repeat = atoi(v);
  if ((v = opt_get(argc, argv, "--noise"))) o.noise = strtof(v, &end);
  if (v && (*end || !(o.noise >= 0) || !isfinite(o.noise))) {
    fprintf(stderr, "difftop demos: --noise '%s' must be a number >= 0\n", v);
    return 2;
  }
  o.verbose = has_flag(argc, argv, "--verbose");
  double t0 = dt_time_s();
  dtDemoSet ds;
  dtStatus st = dt_demos_generate_dmc(task, &o, &ds);
  if (!st) st = dt_demos_write_hdf5(&ds, out, NULL);
  if (st) {
    fprintf(stderr, "difftop demos: %s\n", dt_last_error());
    return 1;
  }
  double ret = 0;
  for (int64_t t = 0; t < ds.total; t++) ret += ds.rewards[t];
  printf("%s: %s, %d demos, %lld steps, action repeat %d, noise %g, mean return %.1f, seed %llu, %.1f s\n",
         out, task, ds.n_demos, (long long)ds.total, dt_demos_action_repeat(&ds), (double)o.noise,
         ret / ds.n_demos, (unsigned long long)o.seed, dt_time_s() - t0);
  dt_demos_free(&ds);
  return 0;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

// Push-T demos: how far the pixel target moves between steps and how far it is from the pusher
// (obs[0..1]), as medians and 90th percentiles (a human mouse trace: a few px to ~20 px)
static void pusht_trace_stats(const dtDemoSet* ds) {
  double* step = malloc(sizeof(double) * (size_t)ds->total);
  double* lead = malloc(sizeof(double) * (size_t)ds->total);
  if (!step || !lead) goto done;
  int64_t ns = 0, nl = 0;
  for (int d = 0; d < ds->n_demos; d++)
    for (int64_t t = ds->start[d]; t < ds->start[d + 1]; t++) {
      const float *a = ds->actions + 2 * t, *o = ds->obs + 5 * t;
      lead[nl++] = hypot(a[0] - o[0], a[1] - o[1]);
      if (t > ds->start[d]) step[ns++] = hypot(a[0] - a[-2], a[1] - a[-1]);
    }
  if (ns < 1) goto done;
  int64_t standing = 0;
  for (int64_t i = 0; i < ns; i++) standing += step[i] < 0.5;
  qsort(step, (size_t)ns, sizeof(double), cmp_double);
  qsort(lead, (size_t)nl, sizeof(double), cmp_double);
  printf("  target step median %.1f p90 %.1f px (standing, < 0.5 px: %.1f%%); target-to-pusher median %.1f "
         "p90 %.1f px\n",
         step[ns / 2], step[ns * 9 / 10], 100.0 * (double)standing / (double)ns, lead[nl / 2], lead[nl * 9 / 10]);
done:
  free(step);
  free(lead);
}

// --threads N: BLAS threads (default 1, as `train`: on a 2-vCPU machine a second OpenBLAS
// thread is slower, and it oversubscribes the cores when other jobs run); 0 if valid
static int set_threads(const char* v, const char* cmd) {
  char* end = NULL;
  long n = v ? strtol(v, &end, 10) : 1;
  if (v && (!end || *end || n < 1 || n > 256)) {
    fprintf(stderr, "difftop %s: --threads '%s' must be an integer in [1, 256]\n", cmd, v);
    return 2;
  }
  dt_set_num_threads((int)n);
  return 0;
}

// 1 if the folder that will hold path exists and is writable; otherwise says which and why
static int out_dir_writable(const char* who, const char* path) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", path);
  char* slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == dir) dir[1] = 0;
  else *slash = 0;
  if (access(dir, W_OK) == 0) return 1;
  fprintf(stderr, "%s: cannot write %s: the folder %s %s\n", who, path, dir,
          errno == ENOENT ? "does not exist (create it first)" : strerror(errno));
  return 0;
}

int cmd_demos(int argc, char** argv) {
  if (has_flag(argc, argv, "-h") || has_flag(argc, argv, "--help") || argc < 2) {
    fprintf(argc < 2 ? stderr : stdout,
            "usage: difftop demos --task pusht [--episodes 200] [--seed S] [--max-steps 300]\n"
            "                     [--expert smooth|waypoints] [--keep-failures] [--image N] [--verbose]\n"
            "                     [--multimodal [--detour PX]] --out FILE.hdf5\n"
            "         --image N also stores obs/image, uint8 [T, N, N, 3] RGB frames rendered from the\n"
            "         state of each step, and obs/agent_pos\n"
            "         --multimodal: each episode the expert draws one of two modes (seeded) and first\n"
            "         goes around the block on that side, to a point PX (default 110) from its centre\n"
            "         beside the pusher-to-block line; the mode is the demo attribute expert_mode\n"
            "       difftop demos --task DMC_TASK [--episodes 10] [--seed S] [--noise SIGMA]\n"
            "                     [--action-repeat N] [--verbose] --out FILE.hdf5\n"
            "         DMC_TASK: a task with an analytic expert (cartpole-*, pendulum-swingup,\n"
            "         reacher-easy, reacher-hard); --noise adds N(0, SIGMA^2) to the executed action\n"
            "         while the recorded label stays the expert's (DART)\n"
            "       difftop demos --check FILE.hdf5 [--obs-keys k1,k2]   (validate and summarise)\n"
            "Expert demonstrations in robomimic's HDF5 layout (data/demo_k/{obs/state, actions,\n"
            "rewards, dones}), plus stats/{obs,actions}/{min,max} for the [-1, 1] normaliser.\n");
    return argc < 2 ? 2 : 0;
  }
  const char* check = opt_get(argc, argv, "--check");
  if (check) {
    dtDemoSet ds;
    if (dt_demos_read_hdf5(check, opt_get(argc, argv, "--obs-keys"), &ds)) {
      fprintf(stderr, "difftop demos: %s\n", dt_last_error());
      return 1;
    }
    printf("%s: %d demos, %lld steps, obs '%s' (%d dims), actions %d dims\n", check, ds.n_demos,
           (long long)ds.total, ds.obs_keys, ds.obs_dim, ds.act_dim);
    if (ds.images) printf("  image '%s': uint8 %dx%dx%d per step\n", ds.image_key, ds.img_h, ds.img_w, ds.img_c);
    for (int j = 0; j < ds.obs_dim; j++)
      printf("  obs[%d] in [%g, %g]\n", j, (double)ds.obs_norm.min[j], (double)ds.obs_norm.max[j]);
    for (int j = 0; j < ds.act_dim; j++)
      printf("  action[%d] in [%g, %g]\n", j, (double)ds.act_norm.min[j], (double)ds.act_norm.max[j]);
    double succ = 0;
    for (int d = 0; d < ds.n_demos; d++) {
      double m = 0;
      for (int64_t t = ds.start[d]; t < ds.start[d + 1]; t++) m = ds.rewards[t] > m ? ds.rewards[t] : m;
      succ += m;
    }
    double ret = 0;
    for (int64_t t = 0; t < ds.total; t++) ret += ds.rewards[t];
    char task[64];
    printf("  mean episode-max reward %.3f, mean return %.1f, mean length %.1f\n", succ / ds.n_demos,
           ret / ds.n_demos, (double)ds.total / ds.n_demos);
    if (!dt_demos_task(&ds, task, sizeof task))
      printf("  task %s, action repeat %d\n", task, dt_demos_action_repeat(&ds));
    if (strstr(ds.env_args, "pusht") && ds.obs_dim == 5 && ds.act_dim == 2) pusht_trace_stats(&ds);
    dt_demos_free(&ds);
    return 0;
  }
  const char* task = opt_get(argc, argv, "--task");
  const char* out = opt_get(argc, argv, "--out");
  if (!task || !out) {
    fprintf(stderr, "difftop demos: --task and --out are required\n");
    return 2;
  }
  // before minutes of rollouts: the file must be creatable where it goes
  if (!out_dir_writable("difftop demos", out)) return 1;
  if (strcmp(task, "pusht")) return demos_dmc(argc, argv, task, out);
  dtPushtDemoOpts o = dt_pusht_demo_default_opts();
  const char* v;
  if ((v = opt_get(argc, argv, "--episodes"))) o.episodes = atoi(v);
  if ((v = opt_get(argc, argv, "--seed"))) o.seed = strtoull(v, NULL, 10);
  if ((v = opt_get(argc, argv, "--max-steps"))) o.max_steps = atoi(v);
  dtPushtExpertOpts eo = dt_pusht_expert_default_opts();
  if ((v = opt_get(argc, argv, "--expert"))) {
    if (!strcmp(v, "waypoints")) {
      eo = dt_pusht_expert_waypoint_opts();
    } else if (strcmp(v, "smooth")) {
      fprintf(stderr, "difftop demos: --expert must be smooth or waypoints, got '%s'\n", v);
      return 2;
    }
  }
  eo.multimodal = has_flag(argc, argv, "--multimodal");
  if ((v = opt_get(argc, argv, "--detour"))) {
    char* end = NULL;
    eo.detour = strtod(v, &end);
    if (*end || !eo.multimodal || !(eo.detour >= 0 && eo.detour <= 512)) {
      fprintf(stderr, "difftop demos: --detour '%s' needs --multimodal and a number of pixels in [0, 512]\n", v);
      return 2;
    }
  }
  o.expert = &eo;
  o.keep_failures = has_flag(argc, argv, "--keep-failures");
  if ((v = opt_get(argc, argv, "--image"))) {
    char* end = NULL;
    o.image_size = (int)strtol(v, &end, 10);
    if (*end || o.image_size < 16 || o.image_size > 512) {
      fprintf(stderr, "difftop demos: --image '%s' must be an integer in [16, 512]\n", v);
      return 2;
    }
  }
  o.verbose = has_flag(argc, argv, "--verbose");
  double t0 = dt_time_s();
  dtDemoSet ds;
  dtStatus st = dt_demos_generate_pusht(&o, &ds);
  int key_dims[3] = {5, 2, 0};  // state, agent_pos, image (with --image)
  if (!st) st = dt_demos_write_hdf5(&ds, out, ds.images ? key_dims : NULL);
  if (st) {
    fprintf(stderr, "difftop demos: %s\n", dt_last_error());
    return 1;
  }
  printf("%s: %d demos, %lld steps (mean length %.1f), seed %llu, %.1f s\n", out, ds.n_demos,
         (long long)ds.total, (double)ds.total / ds.n_demos, (unsigned long long)o.seed,
         dt_time_s() - t0);
  if (ds.modes) {
    int m1 = 0;
    for (int d = 0; d < ds.n_demos; d++) m1 += ds.modes[d] == 1;
    printf("  expert modes: %d demos mode 0, %d mode 1\n", ds.n_demos - m1, m1);
  }
  dt_demos_free(&ds);
  return 0;
}

static void il_train_usage(FILE* f) {
  fprintf(f,
          "usage: difftop il-train --demos FILE.hdf5 --policy bc|diffusion|residual|difftop|ibc\n"
          "                        --out RUN_DIR\n"
          "                        [--seed N] [--epochs N] [--base RUN_DIR] [--obs-keys k1,k2]\n"
          "                        [--eval-episodes 50] [--eval-seed 100000] [--val-demos K]\n"
          "                        [--threads 1]\n"
          "                        [key=value ...]\n"
          "keys: init=base|zero|random cvae=0|1 horizon obs_steps act_steps pred_steps hidden layers\n"
          "      latent_dim posterior_dim kl_weight gamma diffusion_steps ddim_steps batch lr\n"
          "      solver=lm|pga|pga-armijo|newton iters step backward=none|unroll|truncated|implicit\n"
          "      backward_iters task action_repeat conv_channels conv_out prox\n"
          "      ibc_negatives ibc_samples ibc_iters ibc_noise ibc_shrink ibc_init_std\n"
          "      ema=0|1 ema_power ema_max lr_schedule=constant|cosine warmup_steps\n"
          "      noise_net=mlp|unet unet_dims=64,128 unet_kernel unet_groups unet_step_dim\n"
          "      gmm_modes gmm_min_std rnn_hidden rnn_layers\n"
          "bc gmm_modes=K (K >= 1): a K-component Gaussian-mixture head (robomimic's GMM, K = 5 there)\n"
          "trained by likelihood; acting draws a component and returns its mean (a stochastic base).\n"
          "bc rnn_hidden=N (N >= 1): an LSTM of width N (rnn_layers deep) reads the obs_steps frames\n"
          "oldest first and its last state feeds the head (robomimic's BC-RNN over a window; with\n"
          "gmm_modes the paper's BC-RNN-GMM base). A residual or DiffTOP on it needs obs_steps >= its.\n"
          "diffusion noise_net=unet: a 1-D temporal U-Net over the predicted chunk (diffusion policy's\n"
          "ConditionalUnet1D, CPU-sized); pred_steps must halve once per unet_dims entry after the first.\n"
          "ibc: implicit BC (InfoNCE energy, derivative-free optimiser); with --base its population\n"
          "starts at the base's chunk (IBC + BC / diffusion).\n"
          "--obs-keys with an image key (e.g. image,agent_pos; demos --image N) trains BC with a conv\n"
          "encoder on the frames (conv_channels, conv_out); Push-T evaluation renders them.\n"
          "The task comes from the file's env_args (env_name). DMC tasks default to act_steps=1\n"
          "pred_steps=1 and the demos' action repeat. --val-demos K holds out the last K demos and\n"
          "adds their loss to train.csv (val_loss) after every epoch.\n"
          "Writes RUN_DIR/config.yaml, model.safetensors, train.csv and (with --eval-episodes > 0)\n"
          "eval.json: Push-T score (episode-max reward, numpy seeds 100000..) or, on a DMC task, the\n"
          "mean return over episodes from env seeds 100000.. with the expert's return on the same.\n");
}

typedef struct epochCtx {
  dtCsv* csv;
  dtILPolicy* p;
  const dtDemoSet* val;
} epochCtx;

static void epoch_cb(void* user, const dtILEpoch* e) {
  epochCtx* ctx = user;
  double vl = NAN;
  if (ctx->val && dt_il_loss(ctx->p, ctx->val, &vl)) {
    fprintf(stderr, "difftop il-train: validation loss: %s\n", dt_last_error());
    vl = NAN;
  }
  double row[5] = {e->epoch, e->loss, e->seconds, e->samples_per_s, vl};
  if (ctx->csv) dt_csv_row(ctx->csv, row);
  if (e->epoch % 10 == 0 || getenv("DT_IL_VERBOSE")) {
    if (ctx->val)
      fprintf(stderr, "epoch %d: loss %.6f, val %.6f (%.2f s, %.0f samples/s)\n", e->epoch, e->loss, vl,
              e->seconds, e->samples_per_s);
    else
      fprintf(stderr, "epoch %d: loss %.6f (%.2f s, %.0f samples/s)\n", e->epoch, e->loss, e->seconds,
              e->samples_per_s);
  }
}

// DIR/eval.json opened for writing with the policy's fields begun ("{... \"seed\": N, "), or NULL
static FILE* open_eval_json(const char* dir, const dtILPolicy* p) {
  char path[1200];
  snprintf(path, sizeof path, "%s/eval.json", dir);
  FILE* f = fopen(path, "w");
  const dtILConfig* c = dt_il_policy_config(p);
  if (f)
    fprintf(f, "{\"policy\": \"%s\", \"init\": %d, \"cvae\": %d, \"horizon\": %d, \"seed\": %llu, ",
            dt_il_kind_name(c->kind), (int)c->init, c->cvae, c->horizon, (unsigned long long)c->seed);
  return f;
}

// eval.json of a Push-T evaluation; with n_ss > 1 sample seeds, r is their average and
// scores[] the score of each
static int write_eval(const char* dir, const dtILPolicy* p, const dtILEvalResult* r, uint32_t seed0,
                      int max_steps, unsigned long long ss0, int n_ss, const double* scores) {
  FILE* f = open_eval_json(dir, p);
  if (!f) return 1;
  fprintf(f,
          "\"episodes\": %d, \"seed0\": %u, \"max_steps\": %d, \"mean_score\": %.6f, "
          "\"success_rate\": %.6f, \"ms_per_call\": %.4f, \"ms_per_action\": %.4f, "
          "\"sample_seed0\": %llu, \"sample_seeds\": %d",
          r->episodes, seed0, max_steps, r->mean_score, r->success_rate, r->ms_per_call,
          r->ms_per_action, ss0, n_ss);
  if (n_ss > 1) {
    fprintf(f, ", \"score_by_sample_seed\": [");
    for (int i = 0; i < n_ss; i++) fprintf(f, "%s%.6f", i ? ", " : "", scores[i]);
    fprintf(f, "]");
  }
  fprintf(f, "}\n");
  fclose(f);
  return 0;
}

// eval.json of a DMC evaluation: the policy's returns and the expert's on the same episodes;
// with n_ss > 1 sample seeds, returns holds n_ss runs of the episodes (sample seed by sample
// seed), r their pooled mean and sd, by_ss the mean return of each sample seed
static int write_eval_dmc(const char* dir, const dtILPolicy* p, const dtILEvalResult* r,
                          const double* rets, const dtILEvalResult* ex, uint64_t seed0,
                          unsigned long long ss0, int n_ss, const double* by_ss) {
  FILE* f = open_eval_json(dir, p);
  if (!f) return 1;
  const dtILConfig* c = dt_il_policy_config(p);
  fprintf(f,
          "\"task\": \"%s\", \"action_repeat\": %d, \"obs_steps\": %d, \"act_steps\": %d, "
          "\"metric\": \"return\", \"episodes\": %d, \"seed0\": %llu, \"mean_score\": %.6f, "
          "\"mean_return\": %.6f, \"sd_return\": %.6f, \"expert_return\": %.6f, "
          "\"success_rate\": null, \"ms_per_call\": %.4f, \"ms_per_action\": %.4f, \"returns\": [",
          c->task, c->action_repeat, c->obs_steps, c->act_steps, r->episodes, (unsigned long long)seed0,
          r->mean_score, r->mean_score, r->sd_score, ex->mean_score, r->ms_per_call, r->ms_per_action);
  for (int i = 0; i < r->episodes * n_ss; i++) fprintf(f, "%s%.3f", i ? ", " : "", rets[i]);
  fprintf(f, "], \"sample_seed0\": %llu, \"sample_seeds\": %d", ss0, n_ss);
  if (n_ss > 1) {
    fprintf(f, ", \"return_by_sample_seed\": [");
    for (int i = 0; i < n_ss; i++) fprintf(f, "%s%.6f", i ? ", " : "", by_ss[i]);
    fprintf(f, "]");
  }
  fprintf(f, "}\n");
  fclose(f);
  return 0;
}

static int is_dmc_task(const char* task) { return task[0] && strcmp(task, "pusht"); }

// the score of each sample seed, their mean and sd (nothing for one sample seed)
static void print_by_sample_seed(unsigned long long ss0, const double* v, int n, double mean,
                                 int decimals) {
  if (n < 2) return;
  double sq = 0;
  printf("  by sample seed (%llu..):", ss0);
  for (int i = 0; i < n; i++) {
    printf(" %.*f", decimals, v[i]);
    sq += (v[i] - mean) * (v[i] - mean);
  }
  printf("; mean %.*f, sd %.*f\n", decimals, mean, decimals, sqrt(sq / (n - 1)));
}

// evaluate on the policy's DMC task with sample seeds ss0..ss0+n_ss-1 (the same env seeds
// for each), compare with the expert, write eval.json
static int eval_dmc_run(dtILPolicy* p, const char* dir, int episodes, uint64_t seed0,
                        unsigned long long ss0, int n_ss) {
  const dtILConfig* c = dt_il_policy_config(p);
  double* rets = malloc(sizeof(double) * (size_t)episodes * (size_t)n_ss);
  double* by_ss = malloc(sizeof(double) * (size_t)n_ss);
  dtILEvalResult r, ex, sum;
  memset(&sum, 0, sizeof sum);
  dtStatus st = rets && by_ss ? DT_OK : DT_ERR_NOMEM;
  for (int k = 0; k < n_ss && !st; k++) {
    dt_il_policy_set_sample_seed(p, ss0 + (unsigned long long)k);
    st = dt_il_eval_dmc(p, c->task, c->action_repeat, episodes, seed0, &r, rets + (size_t)k * episodes);
    by_ss[k] = r.mean_score;
    sum.mean_score += r.mean_score / n_ss;
    sum.ms_per_call += r.ms_per_call / n_ss;
    sum.ms_per_action += r.ms_per_action / n_ss;
  }
  if (!st) st = dt_il_eval_expert_dmc(c->task, c->action_repeat, episodes, seed0, &ex, NULL);
  if (st) {
    fprintf(stderr, "difftop: evaluation on %s: %s\n", c->task, dt_last_error());
    free(rets), free(by_ss);
    return 1;
  }
  // the sd over all n_ss x episodes returns
  double sq = 0;
  for (int i = 0; i < episodes * n_ss; i++) sq += (rets[i] - sum.mean_score) * (rets[i] - sum.mean_score);
  sum.sd_score = episodes * n_ss > 1 ? sqrt(sq / (episodes * n_ss - 1)) : 0;
  sum.episodes = episodes;
  sum.success_rate = -1;
  write_eval_dmc(dir, p, &sum, rets, &ex, seed0, ss0, n_ss, by_ss);
  printf("%s: %s, return %.1f ± %.1f over %d episodes (env seeds %llu..), expert %.1f, %.3f ms/action\n",
         c->task, dt_il_kind_name(c->kind), sum.mean_score, sum.sd_score, episodes * n_ss,
         (unsigned long long)seed0, ex.mean_score, sum.ms_per_action);
  print_by_sample_seed(ss0, by_ss, n_ss, sum.mean_score, 1);
  free(rets), free(by_ss);
  return 0;
}

// the demos' task against the config: fills c->task / action_repeat / DMC chunk defaults and
// checks the task's dims against the data
static dtStatus resolve_task(dtILConfig* c, const dtDemoSet* ds, int user_act, int user_pred) {
  char dtask[64] = "";
  dt_demos_task(ds, dtask, sizeof dtask);
  if (c->task[0] && dtask[0] && strcmp(c->task, dtask))
    return dt_error(DT_ERR_ARG, "task=%s given, but the demos were recorded on '%s'", c->task, dtask);
  if (!c->task[0]) snprintf(c->task, sizeof c->task, "%s", dtask);
  if (!is_dmc_task(c->task)) return DT_OK;
  int ar = dt_demos_action_repeat(ds);
  if (!c->action_repeat) c->action_repeat = ar;
  if (ar && c->action_repeat != ar)
    fprintf(stderr, "difftop il-train: warning: action_repeat %d, the demos used %d\n", c->action_repeat, ar);
  if (!user_act) c->act_steps = 1;
  if (!user_pred) c->pred_steps = c->act_steps;
  dtEnvOpts o = dt_env_default_opts();
  o.action_repeat = c->action_repeat;
  dtEnv* env = NULL;
  dtStatus st = dt_env_make(c->task, &o, &env);
  if (st) return st;
  int od = (int)dt_env_obs_space(env)->size, ad = (int)dt_env_action_space(env)->size;
  if (!c->action_repeat) c->action_repeat = dt_env_action_repeat(env);
  dt_env_free(env);
  if (od != ds->obs_dim || ad != ds->act_dim)
    return dt_error(DT_ERR_ARG, "the demos have obs/action dims %d/%d, task %s has %d/%d", ds->obs_dim,
                    ds->act_dim, c->task, od, ad);
  return DT_OK;
}

int cmd_il_train(int argc, char** argv) {
  const char *demos = NULL, *policy = NULL, *out = NULL, *seed = NULL, *epochs = NULL, *base = NULL;
  const char *keys = NULL, *evn = NULL, *eseed = NULL, *valn = NULL, *threads = NULL;
  char* over[64];
  int n_over = 0;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char** slot = !strcmp(a, "--demos")           ? &demos
                        : !strcmp(a, "--policy")        ? &policy
                        : !strcmp(a, "--out")           ? &out
                        : !strcmp(a, "--seed")          ? &seed
                        : !strcmp(a, "--epochs")        ? &epochs
                        : !strcmp(a, "--base")          ? &base
                        : !strcmp(a, "--obs-keys")      ? &keys
                        : !strcmp(a, "--eval-episodes") ? &evn
                        : !strcmp(a, "--eval-seed")     ? &eseed
                        : !strcmp(a, "--val-demos")     ? &valn
                        : !strcmp(a, "--threads")       ? &threads
                                                        : NULL;
    if (slot) {
      if (i + 1 >= argc) {
        fprintf(stderr, "difftop il-train: %s needs a value\n", a);
        return 2;
      }
      *slot = argv[++i];
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      il_train_usage(stdout);
      return 0;
    } else if (strchr(a, '=') && a[0] != '-' && n_over < 64) {
      over[n_over++] = argv[i];
    } else {
      fprintf(stderr, "difftop il-train: unknown argument '%s'\n", a);
      il_train_usage(stderr);
      return 2;
    }
  }
  if (set_threads(threads, "il-train")) return 2;
  if (!demos || !policy || !out) {
    fprintf(stderr, "difftop il-train: --demos, --policy and --out are required\n");
    il_train_usage(stderr);
    return 2;
  }
  int nval = valn ? atoi(valn) : 0;
  if (nval < 0) {
    fprintf(stderr, "difftop il-train: --val-demos must be >= 0\n");
    return 2;
  }
  dtILConfig c;
  dt_il_config_default(&c);
  dtStatus st = dt_il_config_set(&c, "policy", policy);
  if (!st && seed) st = dt_il_config_set(&c, "seed", seed);
  if (!st && epochs) st = dt_il_config_set(&c, "epochs", epochs);
  if (!st && base) st = dt_il_config_set(&c, "base", base);
  int user_act = 0, user_pred = 0;
  for (int i = 0; !st && i < n_over; i++) {
    char k[128];
    const char* eq = strchr(over[i], '=');
    snprintf(k, sizeof k, "%.*s", (int)(eq - over[i]), over[i]);
    user_act |= !strcmp(k, "act_steps");
    user_pred |= !strcmp(k, "pred_steps");
    st = dt_il_config_set(&c, k, eq + 1);
  }
  dtDemoSet all, ds, val;
  memset(&all, 0, sizeof all);
  memset(&ds, 0, sizeof ds);
  memset(&val, 0, sizeof val);
  if (!st) st = dt_demos_read_hdf5(demos, keys, &all);
  if (!st) st = resolve_task(&c, &all, user_act, user_pred);
  if (!st && nval >= all.n_demos)
    st = dt_error(DT_ERR_ARG, "--val-demos %d leaves no training demos (%d in %s)", nval, all.n_demos, demos);
  if (!st && nval > 0) {
    st = dt_demos_subset(&all, 0, all.n_demos - nval, &ds);
    if (!st) st = dt_demos_subset(&all, all.n_demos - nval, nval, &val);
    dt_demos_free(&all);
  } else if (!st) {
    ds = all;
    memset(&all, 0, sizeof all);
  }
  dtILPolicy* p = NULL;
  if (!st) st = dt_il_policy_new(&c, &ds, &p);
  if (st) {
    fprintf(stderr, "difftop il-train: %s\n", dt_last_error());
    dt_demos_free(&all);
    dt_demos_free(&ds);
    dt_demos_free(&val);
    return 1;
  }
  mkdir(out, 0755);
  char path[1200];
  snprintf(path, sizeof path, "%s/train.csv", out);
  const char* cols[5] = {"epoch", "loss", "seconds", "samples_per_s", "val_loss"};
  epochCtx ctx = {NULL, p, nval > 0 ? &val : NULL};
  if (dt_csv_open(path, cols, nval > 0 ? 5 : 4, DT_CSV_CREATE, &ctx.csv))
    fprintf(stderr, "difftop il-train: %s\n", dt_last_error());
  fprintf(stderr, "difftop il-train: %s on %s (%d demos, %lld steps%s), task %s, seed %llu, %d epochs -> %s\n",
          dt_il_kind_name(c.kind), demos, ds.n_demos, (long long)ds.total, nval > 0 ? ", last demos held out" : "",
          c.task[0] ? c.task : "?", (unsigned long long)c.seed, c.epochs, out);
  double t0 = dt_time_s();
  st = dt_il_train(p, &ds, epoch_cb, &ctx);
  double secs = dt_time_s() - t0;
  dt_csv_close(ctx.csv);
  if (!st) st = dt_il_policy_save(p, out);
  if (st) {
    fprintf(stderr, "difftop il-train: %s\n", dt_last_error());
    dt_il_policy_free(p);
    dt_demos_free(&ds);
    dt_demos_free(&val);
    return 1;
  }
  printf("trained %s in %.1f s -> %s\n", dt_il_kind_name(c.kind), secs, out);
  int ne = evn ? atoi(evn) : 50;
  int rc = 0;
  if (ne > 0 && is_dmc_task(c.task)) {
    rc = eval_dmc_run(p, out, ne, eseed ? strtoull(eseed, NULL, 10) : 100000, 0, 1);
  } else if (ne > 0) {
    dtILEvalResult r;
    st = dt_il_eval_pusht(p, ne, 100000, 300, &r, NULL);
    if (st) {
      fprintf(stderr, "difftop il-train: evaluation: %s\n", dt_last_error());
      rc = 1;
    } else {
      write_eval(out, p, &r, 100000, 300, 0, 1, NULL);
      printf("Push-T: score %.4f, success %.3f over %d episodes (seeds 100000..), %.3f ms/action\n",
             r.mean_score, r.success_rate, r.episodes, r.ms_per_action);
    }
  }
  dt_il_policy_free(p);
  dt_demos_free(&ds);
  dt_demos_free(&val);
  return rc;
}


// a simple perceptual colour map (dark blue -> teal -> yellow) for t in [0, 1]
static void cmap(double t, uint8_t* rgb) {
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  double r = 0.27 + t * (0.99 - 0.27) * t, g = 0.00 + 0.91 * t, b = 0.33 + 0.5 * sin(3.1416 * t) - 0.2 * t;
  rgb[0] = (uint8_t)(255 * (r < 0 ? 0 : r > 1 ? 1 : r));
  rgb[1] = (uint8_t)(255 * (g < 0 ? 0 : g > 1 ? 1 : g));
  rgb[2] = (uint8_t)(255 * (b < 0 ? 0 : b > 1 ? 1 : b));
}

static void mark(uint8_t* img, int W, int H, int x0, int y0, int x, int y, const uint8_t* c, int rad) {
  for (int dy = -rad; dy <= rad; dy++)
    for (int dx = -rad; dx <= rad; dx++) {
      int u = x0 + x + dx, v = y0 + y + dy;
      if (dx * dx + dy * dy > rad * rad || u < 0 || v < 0 || u >= W || v >= H) continue;
      memcpy(img + ((size_t)v * W + u) * 3, c, 3);
    }
}

// the square of normalised first actions that both objective panels show
typedef struct plotWin {
  double cx, cy, half;
  int act;  // the plotted action of the chunk (0: the first)
} plotWin;

// the pair of samples whose refined action `act` of the chunk lie farthest apart
static void farthest_pair(float af[][256], int ns, int act, int pick[2]) {
  double best = -1;
  pick[0] = 0, pick[1] = 1;
  for (int s = 0; s < ns; s++)
    for (int t = s + 1; t < ns; t++) {
      double d = hypot(af[s][2 * act] - af[t][2 * act], af[s][2 * act + 1] - af[t][2 * act + 1]);
      if (d > best) best = d, pick[0] = s, pick[1] = t;
    }
}

// half > 0: that half-width around the markers' centre; 0: zoom so the four markers (two
// initial, two refined actions, each a pointer to an (x, y)) fill about the middle 60%; the
// window stays in [-1, 1]^2
static plotWin plot_window(const float* pts[4], double half, int act) {
  double lo[2] = {1e9, 1e9}, hi[2] = {-1e9, -1e9};
  for (int k = 0; k < 4; k++)
    for (int d = 0; d < 2; d++) lo[d] = fmin(lo[d], pts[k][d]), hi[d] = fmax(hi[d], pts[k][d]);
  plotWin w = {0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), half, act};
  if (!(half > 0)) w.half = fmax(0.1, 0.8 * fmax(hi[0] - lo[0], hi[1] - lo[1]));
  if (w.half >= 1) return (plotWin){0, 0, 1, act};
  w.cx = fmin(fmax(w.cx, -1 + w.half), 1 - w.half);
  w.cy = fmin(fmax(w.cy, -1 + w.half), 1 - w.half);
  return w;
}

// panel pixel (0..G-1) of a normalised coordinate v on an axis centred at c
static int win_px(const plotWin* w, double v, double c, int G) {
  return (int)lround((v - (c - w->half)) / (2 * w->half) * (G - 1));
}

static const uint8_t PLOT_COL[2][3] = {{230, 30, 30}, {0, 220, 255}};  // sample 0 red, 1 cyan

// one panel: G over the first action (the rest of the chunk at sample k's refined values), the
// initial action (white), sample k's refined action (large) and the other sample's (small), in
// their colours; grid values every 4th cell to csv. a, val: scratch for G*G decisions
static int draw_panel(dtILPolicy* p, const float* hist, const float* z, const float* ai, const float* af,
                      const float* other, const plotWin* w, int k, uint8_t* img, int W, int Hh, float* a,
                      float* val, FILE* csv) {
  enum { G = 200, PAD = 8 };
  int n = dt_il_policy_config(p)->horizon * dt_il_policy_config(p)->act_steps * 2, o = 2 * w->act;
  for (int i = 0; i < G; i++)
    for (int j = 0; j < G; j++) {
      float* r = a + ((size_t)i * G + j) * n;
      memcpy(r, af, n * sizeof(float));
      r[2 * w->act] = (float)(w->cx - w->half + 2 * w->half * j / (G - 1));      // x: image column
      r[2 * w->act + 1] = (float)(w->cy - w->half + 2 * w->half * i / (G - 1));  // y: image row (y down)
    }
  if (dt_il_objective_values(p, hist, z, G * G, a, val)) return 1;
  int imax = 0;
  for (int i = 1; i < G * G; i++) imax = val[i] > val[imax] ? i : imax;
  float lo = val[0], hi = val[imax];
  for (int i = 0; i < G * G; i++) lo = val[i] < lo ? val[i] : lo;
  int x0 = PAD + (k + 1) * (G + PAD), y0 = PAD;
  for (int i = 0; i < G; i++)
    for (int j = 0; j < G; j++) {
      float v = val[i * G + j];
      cmap(hi > lo ? (v - lo) / (hi - lo) : 0.5, img + ((size_t)(y0 + i) * W + x0 + j) * 3);
      if ((i % 4) == 0 && (j % 4) == 0)
        fprintf(csv, "%d,%.4f,%.4f,%.6g\n", k, a[((size_t)i * G + j) * n + o], a[((size_t)i * G + j) * n + o + 1], v);
    }
  const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0};
  const float* pts[3] = {other + o, ai + o, af + o};
  const uint8_t* col[3] = {PLOT_COL[1 - k], white, PLOT_COL[k]};
  for (int m = 0; m < 3; m++) {
    int px = win_px(w, pts[m][0], w->cx, G), py = win_px(w, pts[m][1], w->cy, G);
    if (px < 0 || py < 0 || px >= G || py >= G) continue;
    mark(img, W, Hh, x0, y0, px, py, black, m ? 5 : 4);
    mark(img, W, Hh, x0, y0, px, py, col[m], m ? 3 : 2);
  }
  printf("panel %d: a_init (%.3f, %.3f) -> refined (%.3f, %.3f); grid max of G %.4g at (%.3f, %.3f), min %.4g\n",
         k + 1, ai[o], ai[o + 1], af[o], af[o + 1], hi, a[(size_t)imax * n + o], a[(size_t)imax * n + o + 1], lo);
  return 0;
}

// the scene panel (paper Fig. 5, left): the Push-T frame with the initial chunk (white) and the
// two samples' refined chunks (red, cyan) as pixel targets, first action largest
static int draw_scene(dtILPolicy* p, const dtPusht* sim, const float* ai, float af[2][256], uint8_t* img,
                      int W, int Hh) {
  enum { G = 200, PAD = 8 };
  uint8_t* rgb = malloc((size_t)G * G * 3);
  if (!rgb || dt_pusht_render(sim, G, G, rgb)) {
    free(rgb);
    return 1;
  }
  for (int i = 0; i < G; i++) memcpy(img + ((size_t)(PAD + i) * W + PAD) * 3, rgb + (size_t)i * G * 3, (size_t)G * 3);
  free(rgb);
  const dtNormalizer* nz = dt_il_policy_action_norm(p);
  const dtILConfig* c = dt_il_policy_config(p);
  const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0};
  const float* chunks[3] = {ai, af[0], af[1]};
  const uint8_t* col[3] = {white, PLOT_COL[0], PLOT_COL[1]};
  printf("scene (pixels):");
  for (int m = 0; m < 3; m++) {
    for (int t = c->horizon * c->act_steps - 1; t >= 0; t--) {
      float px[2] = {chunks[m][2 * t], chunks[m][2 * t + 1]};
      dt_norm_unapply(nz, px, 1);
      int u = (int)lround(px[0] / 512.0 * (G - 1)), v = (int)lround(px[1] / 512.0 * (G - 1));
      mark(img, W, Hh, PAD, PAD, u, v, black, t ? 3 : 5);
      mark(img, W, Hh, PAD, PAD, u, v, col[m], t ? 2 : 3);
      if (t == 0) printf(" %s first action (%.1f, %.1f)", m == 0 ? "init" : m == 1 ? "sample 1" : "sample 2", px[0], px[1]);
    }
  }
  printf("\n");
  return 0;
}

// Paper Fig. 5: the scene with the initial and two refined chunks, then the learned objective over
// action `act` of the chunk (the others held at each sample's refined values) for two prior
// latents of a CVAE DiffTOP policy (16 drawn; the two whose refined action `act` lie farthest
// apart), in a window around the actions (half-width `half`, 0: automatic). Writes FILE.png and
// FILE.csv.
static int plot_objective(dtILPolicy* p, const char* out, uint32_t seed, double half, int act) {
  const dtILConfig* c = dt_il_policy_config(p);
  if (c->kind != DT_IL_DIFFTOP || !c->cvae || is_dmc_task(c->task)) {
    fprintf(stderr, "difftop il-eval: --plot-objective needs a Push-T DiffTOP policy with cvae=1\n");
    return 1;
  }
  dtPusht* sim = NULL;
  if (dt_pusht_new(&sim) || dt_pusht_reset_numpy(sim, seed)) {
    fprintf(stderr, "difftop il-eval: %s\n", dt_last_error());
    dt_pusht_free(sim);
    return 1;
  }
  double o[5];
  dt_pusht_observe(sim, o);
  float hist[8 * 5];
  for (int k = 0; k < c->obs_steps; k++)
    for (int j = 0; j < 5; j++) hist[k * 5 + j] = (float)o[j];
  enum { NS = 16, G = 200, PAD = 8 };
  float z[NS][256], ai[NS][256], af[NS][256];
  dtRng rng;
  dt_rng_seed(&rng, seed);
  for (int s = 0; s < NS; s++) {
    dt_rng_fill_normal(&rng, z[s], (size_t)c->posterior_dim, 0.0f, 1.0f);
    if (dt_il_refine(p, hist, z[s], ai[s], af[s])) {
      dt_pusht_free(sim);
      return 1;
    }
  }
  int pick[2];
  farthest_pair(af, NS, act, pick);
  const float* pts[4] = {ai[pick[0]] + 2 * act, af[pick[0]] + 2 * act, ai[pick[1]] + 2 * act, af[pick[1]] + 2 * act};
  plotWin w = plot_window(pts, half, act);
  int n = c->horizon * c->act_steps * 2, W = 3 * G + 4 * PAD, Hh = G + 2 * PAD, rc = 1;
  uint8_t* img = malloc((size_t)W * Hh * 3);
  float* a = malloc((size_t)G * G * n * sizeof(float));
  float* val = malloc((size_t)G * G * sizeof(float));
  char path[1200];
  snprintf(path, sizeof path, "%s.csv", out);
  FILE* csv = fopen(path, "w");
  if (img && a && val && csv) {
    memset(img, 255, (size_t)W * Hh * 3);
    fprintf(csv, "panel,a0,a1,G\n");
    printf("Push-T state of numpy seed %u: agent (%.1f, %.1f), block (%.1f, %.1f, %.3f rad); window "
           "x %.3f..%.3f, y %.3f..%.3f (normalised action %d of the chunk); z~ samples %d and %d of %d\n",
           seed, o[0], o[1], o[2], o[3], o[4], w.cx - w.half, w.cx + w.half, w.cy - w.half,
           w.cy + w.half, act, pick[0], pick[1], NS);
    float two[2][256];
    memcpy(two[0], af[pick[0]], sizeof two[0]);
    memcpy(two[1], af[pick[1]], sizeof two[1]);
    rc = draw_scene(p, sim, ai[pick[0]], two, img, W, Hh);
    for (int k = 0; k < 2 && !rc; k++)
      rc = draw_panel(p, hist, z[pick[k]], ai[pick[k]], af[pick[k]], af[pick[1 - k]], &w, k, img, W, Hh, a,
                      val, csv);
  }
  if (csv) fclose(csv);
  dt_pusht_free(sim);
  if (!rc && dt_png_write(out, W, Hh, img)) rc = 1;
  if (rc && !(img && a && val && csv)) fprintf(stderr, "difftop il-eval: out of memory or cannot write %s\n", path);
  else if (rc) fprintf(stderr, "difftop il-eval: %s\n", dt_last_error());
  free(img), free(a), free(val);
  if (!rc) printf("wrote %s and %s.csv\n", out, out);
  return rc;
}

#define MAX_SAMPLE_SEEDS 100

// Push-T evaluation with sample seeds ss0..ss0+n-1: scores[k] each, r their average
static dtStatus eval_pusht_sample_seeds(dtILPolicy* p, int episodes, uint32_t seed0, int max_steps,
                                        unsigned long long ss0, int n, dtILEvalResult* r,
                                        double* scores) {
  dtILEvalResult sum;
  memset(&sum, 0, sizeof sum);
  for (int k = 0; k < n; k++) {
    dt_il_policy_set_sample_seed(p, ss0 + (unsigned long long)k);
    dtStatus st = dt_il_eval_pusht(p, episodes, seed0, max_steps, r, NULL);
    if (st) return st;
    scores[k] = r->mean_score;
    sum.mean_score += r->mean_score / n;
    sum.success_rate += r->success_rate / n;
    sum.ms_per_call += r->ms_per_call / n;
    sum.ms_per_action += r->ms_per_action / n;
  }
  sum.episodes = r->episodes;
  *r = sum;
  return DT_OK;
}

int cmd_il_eval(int argc, char** argv) {
  if (argc < 2 || has_flag(argc, argv, "-h") || has_flag(argc, argv, "--help")) {
    fprintf(argc < 2 ? stderr : stdout,
            "usage: difftop il-eval RUN_DIR [--episodes 50] [--seed 100000] [--max-steps 300]\n"
            "                       [--sample-seed 0] [--sample-seeds 1] [--threads 1]\n"
            "       difftop il-eval RUN_DIR --plot-objective FILE.png [--seed S] [--plot-window H]\n"
            "                       [--plot-action K]\n"
            "         (CVAE DiffTOP; G over action K of the chunk, default 0 = the first; H: half-width\n"
            "         of the plotted square of normalised actions, default 0 = zoom on the actions,\n"
            "         1 = all of [-1, 1]^2)\n"
            "Push-T score: episode-max reward averaged over episodes from the numpy seeds\n"
            "seed..seed+episodes-1 (diffusion_policy's test seeds), success = coverage > 0.95.\n"
            "DMC tasks (the run's config names the task): mean return over episodes from env seeds\n"
            "seed.., next to the expert's return on the same episodes.\n"
            "--sample-seed: the draws of a stochastic policy (diffusion noise, CVAE latents, IBC\n"
            "samples) in each episode come from (this, the episode's seed); il-train evaluates with 0.\n"
            "--sample-seeds N: evaluate with sample seeds S..S+N-1 (the same env seeds each time)\n"
            "and report each score (DMC: mean return), their mean and sd (the sampling noise of a\n"
            "stochastic policy's score).\n");
    return argc < 2 ? 2 : 0;
  }
  const char* v;
  if (set_threads(opt_get(argc, argv, "--threads"), "il-eval")) return 2;
  int episodes = (v = opt_get(argc, argv, "--episodes")) ? atoi(v) : 50;
  uint32_t seed0 = (v = opt_get(argc, argv, "--seed")) ? (uint32_t)strtoul(v, NULL, 10) : 100000;
  int max_steps = (v = opt_get(argc, argv, "--max-steps")) ? atoi(v) : 300;
  char* ss_end = NULL;
  v = opt_get(argc, argv, "--sample-seed");
  unsigned long long sample_seed = v ? strtoull(v, &ss_end, 10) : 0;
  if (v && (!*v || *ss_end || *v == '-')) {
    fprintf(stderr, "difftop il-eval: --sample-seed '%s' must be an integer >= 0\n", v);
    return 2;
  }
  int n_ss = (v = opt_get(argc, argv, "--sample-seeds")) ? atoi(v) : 1;
  if (n_ss < 1 || n_ss > MAX_SAMPLE_SEEDS) {
    fprintf(stderr, "difftop il-eval: --sample-seeds '%s' must be an integer in [1, %d]\n", v, MAX_SAMPLE_SEEDS);
    return 2;
  }
  dtILPolicy* p = NULL;
  dtILEvalResult r;
  dtStatus st = dt_il_policy_load(argv[1], &p);
  if (!st) dt_il_policy_set_sample_seed(p, sample_seed);
  const char* png = opt_get(argc, argv, "--plot-objective");
  if (!st && png) {
    const char* hw = opt_get(argc, argv, "--plot-window");
    char* end = NULL;
    double half = hw ? strtod(hw, &end) : 0.0;
    if (hw && (*end || !(half >= 0 && half <= 1))) {
      fprintf(stderr, "difftop il-eval: --plot-window '%s' must be a number in [0, 1]\n", hw);
      dt_il_policy_free(p);
      return 2;
    }
    const char* pa = opt_get(argc, argv, "--plot-action");
    int act = pa ? (int)strtol(pa, &end, 10) : 0, n_act = dt_il_policy_config(p)->horizon * dt_il_policy_config(p)->act_steps;
    if (pa && (*end || act < 0 || act >= n_act)) {
      fprintf(stderr, "difftop il-eval: --plot-action '%s' must be an action index 0..%d of the chunk\n", pa, n_act - 1);
      dt_il_policy_free(p);
      return 2;
    }
    int rc = plot_objective(p, png, seed0, half, act);
    dt_il_policy_free(p);
    return rc;
  }
  if (!st && is_dmc_task(dt_il_policy_config(p)->task)) {
    int rc = eval_dmc_run(p, argv[1], episodes, seed0, sample_seed, n_ss);
    dt_il_policy_free(p);
    return rc;
  }
  double scores[MAX_SAMPLE_SEEDS];
  if (!st) st = eval_pusht_sample_seeds(p, episodes, seed0, max_steps, sample_seed, n_ss, &r, scores);
  if (st) {
    fprintf(stderr, "difftop il-eval: %s\n", dt_last_error());
    dt_il_policy_free(p);
    return 1;
  }
  write_eval(argv[1], p, &r, seed0, max_steps, sample_seed, n_ss, scores);
  printf("%s: %s, score %.4f, success %.3f over %d episodes (seeds %u..), %.3f ms/action\n", argv[1],
         dt_il_kind_name(dt_il_policy_config(p)->kind), r.mean_score, r.success_rate, r.episodes,
         seed0, r.ms_per_action);
  print_by_sample_seed(sample_seed, scores, n_ss, r.mean_score, 4);
  dt_il_policy_free(p);
  return 0;
}

