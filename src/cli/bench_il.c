// SPDX-License-Identifier: MIT
// difftop bench il: training samples/s and inference ms per action of every IL policy on
// Push-T-shaped data (a few expert demos generated on the spot).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "difftop/il.h"

typedef struct benchRow {
  const char* name;
  const char* kv[4];  // key=value settings
  int needs_base;     // 1: base = the BC run, 2: the diffusion run
} benchRow;

static int apply(dtILConfig* c, const char* const* kv) {
  for (int i = 0; i < 4 && kv[i]; i++) {
    char k[64];
    const char* eq = strchr(kv[i], '=');
    snprintf(k, sizeof k, "%.*s", (int)(eq - kv[i]), kv[i]);
    if (dt_il_config_set(c, k, eq + 1)) return 1;
  }
  return 0;
}

int bench_il(int argc, char** argv) {
  int json = 0, steps = 5, calls = 200;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--calls") && i + 1 < argc) calls = atoi(argv[++i]);
  }
  dtPushtDemoOpts o = dt_pusht_demo_default_opts();
  o.episodes = 8;
  o.seed = 123;
  dtDemoSet ds;
  if (dt_demos_generate_pusht(&o, &ds)) {
    fprintf(stderr, "difftop bench il: %s\n", dt_last_error());
    return 1;
  }
  char dirs[2][200];
  snprintf(dirs[0], sizeof dirs[0], "/tmp/difftop-bench-il-%d-bc", (int)getpid());
  snprintf(dirs[1], sizeof dirs[1], "/tmp/difftop-bench-il-%d-diffusion", (int)getpid());
  const benchRow rows[] = {
      {"bc", {"policy=bc"}, 0},
      {"diffusion", {"policy=diffusion"}, 0},
      {"diffusion-unet", {"policy=diffusion", "noise_net=unet"}, 0},
      {"residual+bc", {"policy=residual"}, 1},
      {"difftop+bc", {"policy=difftop"}, 1},
      {"difftop+diffusion", {"policy=difftop"}, 2},
      {"difftop-zero", {"policy=difftop", "init=zero"}, 0},
      {"difftop+bc H=3", {"policy=difftop", "horizon=3"}, 1},
      {"difftop+bc H=5", {"policy=difftop", "horizon=5"}, 1},
      {"difftop-cvae+bc", {"policy=difftop", "cvae=1"}, 1},
      {"ibc", {"policy=ibc"}, 0},
      {"ibc+diffusion", {"policy=ibc"}, 2},
      {"bc-gmm (5 modes)", {"policy=bc", "gmm_modes=5"}, 0},
      {"bc-rnn-gmm (8 frames)", {"policy=bc", "gmm_modes=5", "rnn_hidden=128", "obs_steps=8"}, 0},
  };
  int nrows = (int)(sizeof rows / sizeof rows[0]);
  if (json) printf("{\"suite\": \"il\", \"cpu\": \"%s\", \"blas_threads\": %d, \"results\": [\n", dt_cpu_model(), dt_get_num_threads());
  else printf("difftop bench il (%s, BLAS threads %d; Push-T state, default config: hidden 256, batch 256,\n"
              "PGA 10 iterations with unrolled backward; IBC 64 counter-examples, DFO 1024 x 3 rounds;\n"
              "diffusion: DDIM 10 steps, noise MLP or U-Net (unet_dims 64,128, kernel 5, step_dim 64);\n"
              "inference = one call of 4 actions)\n"
              "%-20s %14s %14s\n", dt_cpu_model(), dt_get_num_threads(), "policy", "train samp/s", "ms/action");
  int rc = 0;
  int64_t* idx = malloc(256 * sizeof *idx);
  for (int r = 0; r < nrows && !rc; r++) {
    dtILConfig c;
    dt_il_config_default(&c);
    if (apply(&c, rows[r].kv)) { rc = 1; break; }
    if (rows[r].needs_base) snprintf(c.base, sizeof c.base, "%s", dirs[rows[r].needs_base - 1]);
    dtILPolicy* p = NULL;
    if (dt_il_policy_new(&c, &ds, &p)) { rc = 1; break; }
    dtRng rng;
    dt_rng_seed(&rng, 1);
    int B = c.batch;
    double l;
    for (int i = 0; i < B; i++) idx[i] = dt_rng_below(&rng, (uint32_t)ds.total);
    if (dt_il_train_step(p, &ds, idx, B, &l)) { rc = 1; dt_il_policy_free(p); break; }  // warm-up + base cache
    double t0 = dt_time_s();
    for (int s = 0; s < steps && !rc; s++) {
      for (int i = 0; i < B; i++) idx[i] = dt_rng_below(&rng, (uint32_t)ds.total);
      rc = dt_il_train_step(p, &ds, idx, B, &l) != DT_OK;
    }
    double train_sps = (double)steps * B / (dt_time_s() - t0);
    float hist[16 * 5], act[64];  // obs_steps (at most 16) copies of one Push-T observation
    for (int k = 0; k < c.obs_steps; k++) memcpy(hist + 5 * k, ds.obs + 5 * 10, 5 * sizeof(float));
    t0 = dt_time_s();
    for (int i = 0; i < calls && !rc; i++) rc = dt_il_act(p, hist, act) != DT_OK;
    double ms = 1e3 * (dt_time_s() - t0) / calls / c.act_steps;
    if (!rc && r < 2) rc = dt_il_policy_save(p, dirs[r]) != DT_OK;
    dt_il_policy_free(p);
    if (rc) break;
    if (json)
      printf("  {\"policy\": \"%s\", \"train_samples_per_s\": %.1f, \"ms_per_action\": %.4f, \"batch\": %d}%s\n",
             rows[r].name, train_sps, ms, B, r + 1 < nrows ? "," : "");
    else
      printf("%-20s %14.0f %14.4f\n", rows[r].name, train_sps, ms);
    fflush(stdout);
  }
  if (json) printf("]}\n");
  if (rc) fprintf(stderr, "difftop bench il: %s\n", dt_last_error());
  for (int k = 0; k < 2; k++) {
    char pth[512];
    snprintf(pth, sizeof pth, "%s/config.yaml", dirs[k]);
    remove(pth);
    snprintf(pth, sizeof pth, "%s/model.safetensors", dirs[k]);
    remove(pth);
    rmdir(dirs[k]);
  }
  free(idx);
  dt_demos_free(&ds);
  return rc;
}
