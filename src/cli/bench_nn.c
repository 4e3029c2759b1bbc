// SPDX-License-Identifier: MIT
// difftop bench nn: forward, forward+backward and forward-over-reverse (HVP) timings of the
// TOLD networks, against OpenBLAS sgemm measured in the same run and against PyTorch.
//
// FLOP model (2 FLOP per multiply-add, matrix products only; F = sum_l 2 in_l out_l B):
//   forward  F   y = x W^T per layer
//   fwd+bwd  3F  forward, then input gradient g W and weight gradient g^T x per layer
//   hvp      7F  forward F, tangent forward x' W^T F, backward 2F, tangent backward
//                g' W (F) and g'^T x + g^T x' (2F): value, gradients, HVP and mixed products
// Elementwise work (bias, ELU, LayerNorm, tanh) is not counted: GFLOP/s are matrix FLOP/s.
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

enum { MODE_FORWARD = 0, MODE_FWD_BWD, MODE_HVP, MODE_COUNT };
static const char* const mode_names[MODE_COUNT] = {"forward", "fwd+bwd", "hvp"};
static const int mode_flop_factor[MODE_COUNT] = {1, 3, 7};

#define MAX_BATCHES 8

// the clock: wall time (default), or this process's CPU time (--clock cpu), which leaves out the
// time other jobs hold the cores on a shared machine (meaningful with --threads 1 only: with
// more threads it adds up the threads' CPU time)
static int g_cpu_clock;

static double now_s(void) {
  if (!g_cpu_clock) return dt_time_s();
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct Opts {
  int json;
  int threads;
  int reps;
  int warmup;
  int torch;  // 0: skip the PyTorch comparison
  int batches[MAX_BATCHES];
  int nbatches;
} Opts;

// one measured row, with the PyTorch time filled in later
typedef struct Row {
  const char* net;
  int batch;
  int mode;
  double ms;         // median
  double ms_min;
  double gemm_ms;    // the same mode's matrix products alone (median)
  double gflop;      // model FLOP of one call / 1e9
  double ceil_gflops;  // sgemm [B,512]x[512,512]^T, timed in the same reps (drift-proof)
  double torch_ms;   // < 0: not measured
} Row;

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double median(double* v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

//---------------------------------------------------------------------------------------------
// the networks on the tape

// one call of mode on a fresh tape; returns the tape status
static dtStatus run_mode(dtTape* t, const dtMLP* mlp, int batch, int mode, const float* x,
                         const float* w, const float* r) {
  dt_tape_reset(t);
  dtTensor* xt = dt_input2(t, batch, mlp->spec.dims[0], x, "x");
  if (mode >= MODE_FWD_BWD) dt_requires_grad(t, xt);
  if (mode == MODE_HVP) dt_set_tangent(t, xt, w);
  dtTensor* y = dt_mlp_forward(t, mlp, xt);
  if (y && mode >= MODE_FWD_BWD) dt_backward(t, y, r);
  return dt_tape_status(t);
}

//---------------------------------------------------------------------------------------------
// the same mode's matrix products alone, with the shapes and BLAS routines the tape uses

typedef struct GemmBufs {
  float *a, *b, *c;
} GemmBufs;

// y[m,n] = a[m,k] b[n,k]^T (sgemv when m = 1, as tensor/ops.c)
static void k_nt(int m, int n, int k, const GemmBufs* g) {
  if (m == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, g->b, k, g->a, 1, 0.0f, g->c, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, g->a, k, g->b, k, 0.0f,
                g->c, n);
  }
}

// y[m,n] += a[m,k] b[k,n]
static void k_nn(int m, int n, int k, const GemmBufs* g) {
  if (m == 1) {
    cblas_sgemv(CblasRowMajor, CblasTrans, k, n, 1.0f, g->b, n, g->a, 1, 1.0f, g->c, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, g->a, k, g->b, n, 1.0f,
                g->c, n);
  }
}

// y[m,n] += a[k,m]^T b[k,n]
static void k_tn(int m, int n, int k, const GemmBufs* g) {
  if (k == 1) {
    cblas_sger(CblasRowMajor, m, n, 1.0f, g->a, 1, g->b, 1, g->c, n);
  } else {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, 1.0f, g->a, m, g->b, n, 1.0f,
                g->c, n);
  }
}

static void gemm_only(const dtMLPSpec* s, int batch, int mode, const GemmBufs* g) {
  for (int l = 0; l < s->layers; l++) {
    int in = s->dims[l], out = s->dims[l + 1];
    k_nt(batch, out, in, g);  // value
    if (mode == MODE_HVP) k_nt(batch, out, in, g);  // tangent
  }
  if (mode == MODE_FORWARD) return;
  for (int l = s->layers - 1; l >= 0; l--) {
    int in = s->dims[l], out = s->dims[l + 1];
    k_nn(batch, in, out, g);   // input gradient
    k_tn(out, in, batch, g);   // weight gradient
    if (mode == MODE_HVP) {
      k_nn(batch, in, out, g);  // input gradient tangent
      k_tn(out, in, batch, g);  // weight gradient tangent: g'^T x
      k_tn(out, in, batch, g);  //                         + g^T x'
    }
  }
}

//---------------------------------------------------------------------------------------------
// the reference ceiling: sgemm [B,512] x [512,512]^T (sgemv at B = 1)

static double ceiling_gflops(int batch, int reps, int warmup, const GemmBufs* g, double* ms_out) {
  double* ts = malloc((size_t)reps * sizeof(double));
  for (int i = 0; i < warmup + reps; i++) {
    double t0 = now_s();
    k_nt(batch, 512, 512, g);
    double t1 = now_s();
    if (i >= warmup) ts[i - warmup] = (t1 - t0) * 1e3;
  }
  double ms = median(ts, reps);
  free(ts);
  if (ms_out) *ms_out = ms;
  return 2.0 * batch * 512.0 * 512.0 / (ms * 1e-3) * 1e-9;
}

//---------------------------------------------------------------------------------------------
// PyTorch, in a child process

static const char* torch_python(void) {
  const char* py = getenv("DT_TORCH_PYTHON");
  return py && *py ? py : "/usr/bin/python3";
}

// run tools/bench_nn_torch.py and fill rows[].torch_ms; returns 0 when torch could not be run
static int run_torch(const Opts* o, Row* rows, int nrows, char* version, size_t vlen,
                     int* torch_threads) {
  char batches[128] = "";
  for (int i = 0; i < o->nbatches; i++) {
    size_t k = strlen(batches);
    snprintf(batches + k, sizeof batches - k, i ? ",%d" : "%d", o->batches[i]);
  }
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d MKL_NUM_THREADS=%d '%s' "
           "'%s/tools/bench_nn_torch.py' --threads %d --reps %d --warmup %d --batches %s "
           "--clock %s --json",
           o->threads, o->threads, o->threads, torch_python(), DT_SOURCE_DIR, o->threads,
           o->reps, o->warmup, batches, g_cpu_clock ? "cpu" : "wall");
  FILE* p = popen(cmd, "r");
  if (!p) return 0;
  char line[1024];
  int got = 0;
  while (fgets(line, sizeof line, p)) {
    const char* v = strstr(line, "\"torch\": \"");
    if (v) {
      snprintf(version, vlen, "%.*s", (int)strcspn(v + 10, "\""), v + 10);
      const char* th = strstr(line, "\"threads\": ");
      if (th) *torch_threads = atoi(th + 11);
      continue;
    }
    char net[16] = "", mode[16] = "";
    int batch = 0;
    double ms = -1;
    const char *pn = strstr(line, "\"net\": \""), *pb = strstr(line, "\"batch\": "),
               *pm = strstr(line, "\"mode\": \""), *pt = strstr(line, "\"median_ms\": ");
    if (!pn || !pb || !pm || !pt) continue;
    sscanf(pn + 8, "%15[^\"]", net);
    batch = atoi(pb + 9);
    sscanf(pm + 9, "%15[^\"]", mode);
    ms = atof(pt + 13);
    for (int i = 0; i < nrows; i++) {
      if (!strcmp(rows[i].net, net) && rows[i].batch == batch &&
          !strcmp(mode_names[rows[i].mode], mode)) {
        rows[i].torch_ms = ms;
        got++;
      }
    }
  }
  int rc = pclose(p);
  return got > 0 && rc == 0;
}

//---------------------------------------------------------------------------------------------

static void usage(FILE* f) {
  fprintf(f,
          "usage: difftop bench nn [--json] [--threads N] [--reps N] [--warmup N]\n"
          "                        [--batches 1,256,1024] [--clock wall|cpu] [--no-torch]\n"
          "  times forward, forward+backward and HVP (forward-over-reverse) of the TOLD\n"
          "  dynamics MLP 56-512-512-50 (ELU) and Q head 56-512(LN,Tanh)-512(ELU)-1;\n"
          "  compares with OpenBLAS sgemm [B,512]x[512,512] and with PyTorch\n"
          "  (%s tools/bench_nn_torch.py; DT_TORCH_PYTHON overrides).\n"
          "  --threads N: OpenBLAS and torch threads (default: OpenBLAS' current count);\n"
          "  --reps N: timed repetitions per row, median reported (default 30);\n"
          "  --clock cpu: process CPU time instead of wall time (shared machines, 1 thread).\n",
          torch_python());
}

static int parse(int argc, char** argv, Opts* o) {
  memset(o, 0, sizeof *o);
  o->threads = 0;
  o->reps = 30;
  o->warmup = 3;
  o->torch = 1;
  o->nbatches = 3;
  o->batches[0] = 1, o->batches[1] = 256, o->batches[2] = 1024;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (!strcmp(a, "--json")) {
      o->json = 1;
    } else if (!strcmp(a, "--clock") && i + 1 < argc) {
      const char* c = argv[++i];
      if (strcmp(c, "wall") && strcmp(c, "cpu")) {
        fprintf(stderr, "difftop bench nn: --clock wall|cpu, not '%s'\n", c);
        return 2;
      }
      g_cpu_clock = !strcmp(c, "cpu");
    } else if (!strcmp(a, "--no-torch")) {
      o->torch = 0;
    } else if (!strcmp(a, "--threads") && i + 1 < argc) {
      o->threads = atoi(argv[++i]);
    } else if (!strcmp(a, "--reps") && i + 1 < argc) {
      o->reps = atoi(argv[++i]);
    } else if (!strcmp(a, "--warmup") && i + 1 < argc) {
      o->warmup = atoi(argv[++i]);
    } else if (!strcmp(a, "--batches") && i + 1 < argc) {
      o->nbatches = 0;
      for (char* s = argv[++i]; *s && o->nbatches < MAX_BATCHES;) {
        o->batches[o->nbatches++] = (int)strtol(s, &s, 10);
        if (*s == ',') s++;
        else if (*s) break;
      }
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 1;
    } else {
      fprintf(stderr, "difftop bench nn: unknown or incomplete option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (o->reps < 1 || o->warmup < 0 || o->nbatches < 1) {
    fprintf(stderr, "difftop bench nn: --reps must be >= 1 and --batches non-empty\n");
    return 2;
  }
  for (int i = 0; i < o->nbatches; i++) {
    if (o->batches[i] < 1) {
      fprintf(stderr, "difftop bench nn: batch %d\n", o->batches[i]);
      return 2;
    }
  }
  return 0;
}

int bench_nn(int argc, char** argv) {
  Opts o;
  int rc = parse(argc, argv, &o);
  if (rc) return rc == 1 ? 0 : rc;
  const char* env_threads = getenv("OPENBLAS_NUM_THREADS");
  if (o.threads <= 0) o.threads = dt_get_num_threads();
  dt_set_num_threads(o.threads);
  // the child (PyTorch) and anything else spawned from here get the same setting
  char nbuf[16];
  snprintf(nbuf, sizeof nbuf, "%d", o.threads);
  setenv("OPENBLAS_NUM_THREADS", nbuf, 1);
  setenv("OMP_NUM_THREADS", nbuf, 1);
  int blas_threads = dt_get_num_threads();

  struct {
    const char* name;
    dtMLPSpec spec;
  } nets[2] = {{"dyn", dt_mlp_spec_elu(56, 512, 2, 50)}, {"q", dt_mlp_spec_q(56, 512)}};

  int maxb = 1;
  for (int i = 0; i < o.nbatches; i++) maxb = o.batches[i] > maxb ? o.batches[i] : maxb;
  dtRng rng;
  dt_rng_seed(&rng, 0);
  size_t nbuf_f = (size_t)maxb * 512;
  float* x = malloc(nbuf_f * sizeof(float));
  float* w = malloc(nbuf_f * sizeof(float));
  float* r = malloc(nbuf_f * sizeof(float));
  GemmBufs g = {malloc((size_t)maxb * 512 * sizeof(float)), malloc(512 * 512 * sizeof(float)),
                malloc((size_t)maxb * 512 * sizeof(float) > 512 * 512 * sizeof(float)
                           ? (size_t)maxb * 512 * sizeof(float)
                           : 512 * 512 * sizeof(float))};
  // gemm_only's weight-gradient products write [out, in] = up to 512 x 512 into c, and read
  // [B, 512] from a and b: size b for the larger of the two
  free(g.b);
  g.b = malloc(((size_t)maxb > 512 ? (size_t)maxb : 512) * 512 * sizeof(float));
  if (!x || !w || !r || !g.a || !g.b || !g.c) {
    fprintf(stderr, "difftop bench nn: out of memory\n");
    return 1;
  }
  dt_rng_fill_normal(&rng, x, nbuf_f, 0, 1);
  dt_rng_fill_normal(&rng, w, nbuf_f, 0, 1);
  dt_rng_fill_normal(&rng, r, nbuf_f, 0, 1);
  dt_rng_fill_normal(&rng, g.a, (size_t)maxb * 512, 0, 1);
  dt_rng_fill_normal(&rng, g.b, ((size_t)maxb > 512 ? (size_t)maxb : 512) * 512, 0, 0.05f);
  memset(g.c, 0, (size_t)maxb * 512 * sizeof(float) > 512 * 512 * sizeof(float)
                     ? (size_t)maxb * 512 * sizeof(float)
                     : 512 * 512 * sizeof(float));

  dtTapeOpts topts = dt_tape_default_opts();
  topts.arena_bytes = (size_t)1 << 30;  // B = 1024 HVP of the Q head needs ~150 MiB
  dtTape* t = dt_tape_new(&topts);
  if (!t) {
    fprintf(stderr, "difftop bench nn: cannot create a tape: %s\n", dt_last_error());
    return 1;
  }

  // ceilings first (they also warm up the BLAS threads)
  double ceil_gf[MAX_BATCHES], ceil_ms[MAX_BATCHES];
  for (int bi = 0; bi < o.nbatches; bi++)
    ceil_gf[bi] = ceiling_gflops(o.batches[bi], o.reps < 20 ? 20 : o.reps, o.warmup + 2, &g,
                                 &ceil_ms[bi]);

  Row rows[2 * MAX_BATCHES * MODE_COUNT];
  int nrows = 0;
  double* ts = malloc((size_t)o.reps * sizeof(double));
  double* tg = malloc((size_t)o.reps * sizeof(double));
  double* tc = malloc((size_t)o.reps * sizeof(double));
  for (int ni = 0; ni < 2; ni++) {
    dtParams ps;
    dt_params_init(&ps);
    dtMLP mlp;
    dtMLPSpec spec = nets[ni].spec;
    spec.init = DT_INIT_TORCH_DEFAULT;  // as the PyTorch side (orthogonal costs the same)
    if (dt_mlp_create(&mlp, &spec, &ps, nets[ni].name, &rng) != DT_OK) {
      fprintf(stderr, "difftop bench nn: %s\n", dt_last_error());
      return 1;
    }
    for (int bi = 0; bi < o.nbatches; bi++) {
      int b = o.batches[bi];
      for (int mode = 0; mode < MODE_COUNT; mode++) {
        for (int i = 0; i < o.warmup + o.reps; i++) {
          double t0 = now_s();
          dtStatus st = run_mode(t, &mlp, b, mode, x, w, r);
          double t1 = now_s();
          if (st != DT_OK) {
            fprintf(stderr, "difftop bench nn: %s B=%d %s: %s\n", nets[ni].name, b,
                    mode_names[mode], dt_tape_error(t));
            return 1;
          }
          gemm_only(&spec, b, mode, &g);
          double t2 = now_s();
          k_nt(b, 512, 512, &g);  // the ceiling, interleaved so that load changes hit both
          double t3 = now_s();
          if (i >= o.warmup) {
            ts[i - o.warmup] = (t1 - t0) * 1e3;
            tg[i - o.warmup] = (t2 - t1) * 1e3;
            tc[i - o.warmup] = (t3 - t2) * 1e3;
          }
        }
        Row* row = &rows[nrows++];
        row->net = nets[ni].name;
        row->batch = b;
        row->mode = mode;
        row->ms = median(ts, o.reps);
        row->ms_min = ts[0];  // sorted by median()
        row->gemm_ms = median(tg, o.reps);
        row->ceil_gflops = 2.0 * b * 512.0 * 512.0 / (median(tc, o.reps) * 1e-3) * 1e-9;
        row->gflop = mode_flop_factor[mode] * dt_mlp_flops(&spec) * b * 1e-9;
        row->torch_ms = -1;
      }
    }
    dt_params_free(&ps);
  }
  free(ts), free(tg), free(tc);
  dt_tape_free(t);

  char torch_version[64] = "";
  int torch_threads = 0, have_torch = 0;
  if (o.torch) {
    fflush(stdout);
    have_torch = run_torch(&o, rows, nrows, torch_version, sizeof torch_version, &torch_threads);
    if (!have_torch)
      fprintf(stderr, "difftop bench nn: PyTorch comparison unavailable (%s with torch needed)\n",
              torch_python());
  }

  const char* cpu = dt_cpu_model();
  if (o.json) {
    printf("{\"suite\":\"nn\",\"record\":\"setup\",\"cpu\":\"%s\",\"threads\":%d,"
           "\"openblas_threads\":%d,\"OPENBLAS_NUM_THREADS_env\":\"%s\",\"openblas\":\"%s\","
           "\"reps\":%d,\"warmup\":%d,\"clock\":\"%s\",\"torch\":\"%s\",\"torch_threads\":%d,"
           "\"flop_model\":\"forward F, fwd+bwd 3F, hvp 7F; F = sum 2*in*out*B\"}\n",
           cpu, o.threads, blas_threads, env_threads ? env_threads : "", openblas_get_config(),
           o.reps, o.warmup, g_cpu_clock ? "cpu" : "wall", have_torch ? torch_version : "",
           torch_threads);
    for (int bi = 0; bi < o.nbatches; bi++)
      printf("{\"suite\":\"nn\",\"record\":\"ceiling\",\"kernel\":\"%s\",\"m\":%d,\"n\":512,"
             "\"k\":512,\"median_ms\":%.6f,\"gflops\":%.3f}\n",
             o.batches[bi] == 1 ? "sgemv" : "sgemm", o.batches[bi], ceil_ms[bi], ceil_gf[bi]);
    for (int i = 0; i < nrows; i++) {
      const Row* rw = &rows[i];
      double gf = rw->gflop / (rw->ms * 1e-3);
      printf("{\"suite\":\"nn\",\"record\":\"time\",\"net\":\"%s\",\"batch\":%d,\"mode\":\"%s\","
             "\"median_ms\":%.6f,\"min_ms\":%.6f,\"gemm_only_ms\":%.6f,\"gflop\":%.6f,"
             "\"gflops\":%.3f,\"sgemm_gflops\":%.3f,\"pct_of_sgemm\":%.2f",
             rw->net, rw->batch, mode_names[rw->mode], rw->ms, rw->ms_min, rw->gemm_ms, rw->gflop,
             gf, rw->ceil_gflops, 100.0 * gf / rw->ceil_gflops);
      if (rw->torch_ms > 0)
        printf(",\"torch_ms\":%.6f,\"c_over_torch\":%.4f", rw->torch_ms, rw->ms / rw->torch_ms);
      printf(",\"threads\":%d}\n", o.threads);
    }
    return 0;
  }

  printf("difftop bench nn: %s; %d thread%s (OpenBLAS %d, OPENBLAS_NUM_THREADS=%s); median of %d "
         "reps after %d warm-up; %s time\n",
         cpu, o.threads, o.threads == 1 ? "" : "s", blas_threads,
         env_threads ? env_threads : "(unset)", o.reps, o.warmup,
         g_cpu_clock ? "process CPU" : "wall");
  printf("OpenBLAS: %s\n", openblas_get_config());
  if (have_torch)
    printf("PyTorch %s, torch.set_num_threads(%d)\n", torch_version, torch_threads);
  printf("FLOP model (matrix products, 2 per multiply-add): forward F, fwd+bwd 3F, hvp 7F;\n"
         "F = sum_l 2 in_l out_l B (dyn %.3f MFLOP/row, q %.3f MFLOP/row)\n",
         dt_mlp_flops(&nets[0].spec) * 1e-6, dt_mlp_flops(&nets[1].spec) * 1e-6);
  printf("ceiling: ");
  for (int bi = 0; bi < o.nbatches; bi++)
    printf("%s%s [%d,512]x[512,512]^T %.1f GFLOP/s", bi ? "; " : "",
           o.batches[bi] == 1 ? "sgemv" : "sgemm", o.batches[bi], ceil_gf[bi]);
  printf("\n(up front, for reference; each row's sgemm figure is timed inside its own reps)\n");
  printf("\n%-4s %5s %-8s %10s %9s %7s %8s %11s %10s %9s\n", "net", "batch", "mode",
         "median ms", "GFLOP/s", "sgemm", "%sgemm", "gemm-only", "torch ms", "C/torch");
  for (int i = 0; i < nrows; i++) {
    const Row* rw = &rows[i];
    double gf = rw->gflop / (rw->ms * 1e-3);
    printf("%-4s %5d %-8s %10.4f %9.2f %7.1f %7.1f%% %8.4f ms", rw->net, rw->batch,
           mode_names[rw->mode], rw->ms, gf, rw->ceil_gflops, 100.0 * gf / rw->ceil_gflops,
           rw->gemm_ms);
    if (rw->torch_ms > 0) {
      printf(" %10.4f %8.2fx\n", rw->torch_ms, rw->ms / rw->torch_ms);
    } else {
      printf(" %10s %9s\n", "-", "-");
    }
  }
  printf("\nC/torch < 1: difftop faster. gemm-only: the same mode's BLAS calls alone (floor).\n");
  free(x), free(w), free(r), free(g.a), free(g.b), free(g.c);
  return 0;
}
