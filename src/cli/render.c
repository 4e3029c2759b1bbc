// SPDX-License-Identifier: MIT
// difftop render: roll out a policy (expert, random, or a trained run's model) in a task and
// write an animated GIF (through dt_gif_*, giflib).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "rl/rl_internal.h"

// a trained run's agent, its model loaded from RUN_DIR/best.safetensors
static dtStatus load_run_policy(const char* dir, dtEnv* env, dtAgent** agent, int64_t* step) {
  dtRLConfig c;
  dtStatus st = cli_run_config(dir, &c);
  if (st) return st;
  if (strcmp(c.task, dt_env_name(env)))
    return dt_error(DT_ERR_ARG, "run %s was trained on %s, not %s", dir, c.task, dt_env_name(env));
  st = dt_agent_new(&c, (int)dt_env_obs_space(env)->size, dt_env_action_space(env)->shape[0], agent);
  char path[1024];
  snprintf(path, sizeof path, "%s/best.safetensors", dir);
  if (!st) st = dt_rl_load_model(path, *agent);
  dtSafetensors* f = NULL;
  if (!st && !dt_st_open(path, &f)) {
    const char* s = dt_st_metadata(f, "env_step");
    *step = (s ? atoll(s) : 0) / (dt_env_action_repeat(env) > 0 ? dt_env_action_repeat(env) : 1);
    dt_st_close(f);
  }
  return st;
}

//---------------------------------------------------------------------------------------------
// the command

static int usage(void) {
  fprintf(stderr,
          "usage: difftop render --task NAME [--policy expert|random|RUN_DIR] [--out FILE.gif] [--frames N]\n"
          "                      [--size PX] [--seed S] [--camera C]\n");
  return 2;
}

int cmd_render(int argc, char** argv) {
  const char* task = NULL;
  const char* policy = "random";
  const char* out = NULL;
  int frames = 200, size = 240, camera = 0;
  long seed = 0;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage() - 2;
    if (!v) {
      fprintf(stderr, "difftop render: %s needs a value\n", a);
      return usage();
    }
    if (!strcmp(a, "--task")) task = v;
    else if (!strcmp(a, "--policy")) policy = v;
    else if (!strcmp(a, "--out")) out = v;
    else if (!strcmp(a, "--frames")) frames = atoi(v);
    else if (!strcmp(a, "--size")) size = atoi(v);
    else if (!strcmp(a, "--seed")) seed = atol(v);
    else if (!strcmp(a, "--camera")) camera = atoi(v);
    else {
      fprintf(stderr, "difftop render: unknown option '%s'\n", a);
      return usage();
    }
    i++;
  }
  if (!task) return usage();
  if (frames < 1 || frames > 100000 || size < 16 || size > 1024) {
    fprintf(stderr, "difftop render: --frames must be in [1, 100000] and --size in [16, 1024]\n");
    return 2;
  }
  int use_expert = !strcmp(policy, "expert");
  struct stat sb;
  int use_run = !use_expert && strcmp(policy, "random") && stat(policy, &sb) == 0 && S_ISDIR(sb.st_mode);
  if (!use_expert && !use_run && strcmp(policy, "random")) {
    fprintf(stderr, "difftop render: --policy must be expert, random or a run directory, got '%s'\n", policy);
    return 2;
  }
  char path[512];
  if (!out) {
    snprintf(path, sizeof path, "%s-%s.gif", task, use_run ? "run" : policy);
    out = path;
  }
  dtEnvOpts o = dt_env_default_opts();
  o.seed = (uint64_t)seed;
  dtEnv* env = NULL;
  dtExpert* ex = NULL;
  dtAgent* agent = NULL;
  int64_t agent_step = 0;
  if (dt_env_make(task, &o, &env) || (use_expert && dt_expert_new(task, (uint64_t)seed, &ex)) ||
      (use_run && load_run_policy(policy, env, &agent, &agent_step))) {
    fprintf(stderr, "difftop render: %s\n", dt_last_error());
    dt_env_free(env);
    return 1;
  }
  int na = (int)dt_env_action_space(env)->size;
  float* obs = malloc(sizeof(float) * (size_t)dt_env_obs_space(env)->size);
  float* act = malloc(sizeof(float) * (size_t)na);
  uint8_t* rgb = malloc((size_t)size * size * 3);
  dtGif* gif = NULL;
  int rc = 0;
  if (!obs || !act || !rgb) {
    fprintf(stderr, "difftop render: out of memory\n");
    rc = 1;
    goto done;
  }
  dtRng rng;
  dt_rng_seed(&rng, (uint64_t)seed + 1);
  // one frame per env step, shown at the env's control rate
  int delay = 4 * dt_env_action_repeat(env) / 2;
  if (delay < 2) delay = 2;
  if (dt_gif_open(out, size, size, delay, &gif)) goto fail;
  double ret = 0;
  dtStepInfo info = {0};
  if (dt_env_reset(env, -1, obs)) goto fail;
  for (int t = 0; t < frames; t++) {
    if (dt_env_render(env, size, size, camera, rgb) || dt_gif_add_frame(gif, rgb)) goto fail;
    if (use_expert) {
      if (dt_expert_act(ex, env, act)) goto fail;
    } else if (use_run) {
      if (dt_agent_act(agent, obs, agent_step, dt_env_step_count(env) == 0, 1, act)) goto fail;
    } else {
      dt_rng_fill_uniform(&rng, act, (size_t)na, -1, 1);
    }
    if (dt_env_step(env, act, na, obs, &info)) goto fail;
    ret += info.reward;
    if (info.truncated || info.terminated) {
      printf("episode return %.1f\n", ret);
      ret = 0;
      if (dt_env_reset(env, -1, obs)) goto fail;
    }
  }
  if (dt_gif_close(gif)) {
    gif = NULL;
    goto fail;
  }
  gif = NULL;
  printf("wrote %s: %d frames of %dx%d (%s policy, return so far %.1f)\n", out, frames, size, size, policy, ret);
  goto done;
fail:
  fprintf(stderr, "difftop render: %s\n", dt_last_error());
  rc = 1;
done:
  if (gif) dt_gif_close(gif);
  free(obs);
  free(act);
  free(rgb);
  dt_expert_free(ex);
  dt_agent_free(agent);
  dt_env_free(env);
  return rc;
}
