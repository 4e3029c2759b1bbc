// SPDX-License-Identifier: MIT
// difftop render: roll out a policy in a task and write an animated GIF (own encoder: a fixed
// 6x7x6 colour cube with ordered dithering, LZW; no image library needed).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

//---------------------------------------------------------------------------------------------
// GIF writer

typedef struct gifOut {
  FILE* f;
  uint8_t block[255];
  int nblock;
  uint32_t bits;
  int nbits;
} gifOut;

static void gif_byte(gifOut* g, uint8_t b) {
  g->block[g->nblock++] = b;
  if (g->nblock == 255) {
    fputc(255, g->f);
    fwrite(g->block, 1, 255, g->f);
    g->nblock = 0;
  }
}

static void gif_code(gifOut* g, int code, int size) {
  g->bits |= (uint32_t)code << g->nbits;
  g->nbits += size;
  while (g->nbits >= 8) {
    gif_byte(g, (uint8_t)(g->bits & 0xff));
    g->bits >>= 8;
    g->nbits -= 8;
  }
}

// LZW-compress one frame of 8-bit indices
static int gif_lzw(FILE* f, const uint8_t* idx, int n) {
  enum { MIN = 8, CLEAR = 256, END = 257, MAXC = 4096 };
  // dictionary as a trie: child[code][byte] (0 = none)
  uint16_t* child = calloc((size_t)MAXC * 256, sizeof(uint16_t));
  if (!child) return -1;
  gifOut g = {f, {0}, 0, 0, 0};
  fputc(MIN, f);
  int next = END + 1, size = MIN + 1;
  gif_code(&g, CLEAR, size);
  int cur = idx[0];
  for (int i = 1; i < n; i++) {
    int b = idx[i];
    uint16_t c = child[(size_t)cur * 256 + b];
    if (c) {
      cur = c;
      continue;
    }
    gif_code(&g, cur, size);
    if (next < MAXC) {
      child[(size_t)cur * 256 + b] = (uint16_t)next++;
      if (next > (1 << size) && size < 12) size++;
    } else {
      gif_code(&g, CLEAR, size);
      memset(child, 0, (size_t)MAXC * 256 * sizeof(uint16_t));
      next = END + 1;
      size = MIN + 1;
    }
    cur = b;
  }
  gif_code(&g, cur, size);
  gif_code(&g, END, size);
  if (g.nbits) gif_byte(&g, (uint8_t)(g.bits & 0xff));
  if (g.nblock) {
    fputc(g.nblock, f);
    fwrite(g.block, 1, (size_t)g.nblock, f);
  }
  fputc(0, f);
  free(child);
  return 0;
}

static void gif_u16(FILE* f, int v) {
  fputc(v & 0xff, f);
  fputc((v >> 8) & 0xff, f);
}

// header, 6x7x6 palette, and the looping extension
static void gif_begin(FILE* f, int w, int h) {
  fwrite("GIF89a", 1, 6, f);
  gif_u16(f, w);
  gif_u16(f, h);
  fputc(0xf7, f);  // global colour table of 256 entries
  fputc(0, f);
  fputc(0, f);
  for (int i = 0; i < 256; i++) {
    int r = 0, g = 0, b = 0;
    if (i < 252) r = (i / 42) * 255 / 5, g = ((i / 6) % 7) * 255 / 6, b = (i % 6) * 255 / 5;
    fputc(r, f);
    fputc(g, f);
    fputc(b, f);
  }
  const uint8_t loop[] = {0x21, 0xff, 0x0b, 'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0', 3, 1, 0, 0, 0};
  fwrite(loop, 1, sizeof loop, f);
}

// one RGB frame (rows top first), delay in 1/100 s
static int gif_frame(FILE* f, const uint8_t* rgb, int w, int h, int delay, uint8_t* idx) {
  static const int bayer[4][4] = {{0, 8, 2, 10}, {12, 4, 14, 6}, {3, 11, 1, 9}, {15, 7, 13, 5}};
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const uint8_t* p = rgb + ((size_t)y * w + x) * 3;
      double t = (bayer[y & 3][x & 3] + 0.5) / 16.0;
      int r = (int)(p[0] * 5 / 255.0 + t), g = (int)(p[1] * 6 / 255.0 + t), b = (int)(p[2] * 5 / 255.0 + t);
      r = r > 5 ? 5 : r, g = g > 6 ? 6 : g, b = b > 5 ? 5 : b;
      idx[(size_t)y * w + x] = (uint8_t)(r * 42 + g * 6 + b);
    }
  const uint8_t gce[] = {0x21, 0xf9, 4, 0, (uint8_t)(delay & 0xff), (uint8_t)(delay >> 8), 0, 0};
  fwrite(gce, 1, sizeof gce, f);
  fputc(0x2c, f);
  gif_u16(f, 0);
  gif_u16(f, 0);
  gif_u16(f, w);
  gif_u16(f, h);
  fputc(0, f);
  return gif_lzw(f, idx, w * h);
}

//---------------------------------------------------------------------------------------------
// the command

static int usage(void) {
  fprintf(stderr,
          "usage: difftop render --task NAME [--policy expert|random] [--out FILE.gif] [--frames N]\n"
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
  if (!use_expert && strcmp(policy, "random")) {
    fprintf(stderr, "difftop render: --policy must be expert or random, got '%s'\n", policy);
    return 2;
  }
  char path[512];
  if (!out) {
    snprintf(path, sizeof path, "%s-%s.gif", task, policy);
    out = path;
  }
  dtEnvOpts o = dt_env_default_opts();
  o.seed = (uint64_t)seed;
  dtEnv* env = NULL;
  dtExpert* ex = NULL;
  if (dt_env_make(task, &o, &env) || (use_expert && dt_expert_new(task, (uint64_t)seed, &ex))) {
    fprintf(stderr, "difftop render: %s\n", dt_last_error());
    dt_env_free(env);
    return 1;
  }
  int na = (int)dt_env_action_space(env)->size;
  float* obs = malloc(sizeof(float) * (size_t)dt_env_obs_space(env)->size);
  float* act = malloc(sizeof(float) * (size_t)na);
  uint8_t* rgb = malloc((size_t)size * size * 3);
  uint8_t* idx = malloc((size_t)size * size);
  FILE* f = fopen(out, "wb");
  int rc = 0;
  if (!obs || !act || !rgb || !idx || !f) {
    fprintf(stderr, "difftop render: cannot write '%s' (or out of memory)\n", out);
    rc = 1;
    goto done;
  }
  gif_begin(f, size, size);
  dtRng rng;
  dt_rng_seed(&rng, (uint64_t)seed + 1);
  // one frame per env step, shown at the env's control rate
  int delay = 4 * dt_env_action_repeat(env) / 2;
  if (delay < 2) delay = 2;
  double ret = 0;
  dtStepInfo info = {0};
  if (dt_env_reset(env, -1, obs)) goto fail;
  for (int t = 0; t < frames; t++) {
    if (dt_env_render(env, size, size, camera, rgb) || gif_frame(f, rgb, size, size, delay, idx)) goto fail;
    if (use_expert) {
      if (dt_expert_act(ex, env, act)) goto fail;
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
  fputc(0x3b, f);
  printf("wrote %s: %d frames of %dx%d (%s policy, return so far %.1f)\n", out, frames, size, size, policy, ret);
  goto done;
fail:
  fprintf(stderr, "difftop render: %s\n", dt_last_error());
  rc = 1;
done:
  if (f) fclose(f);
  free(obs);
  free(act);
  free(rgb);
  free(idx);
  dt_expert_free(ex);
  dt_env_free(env);
  return rc;
}
