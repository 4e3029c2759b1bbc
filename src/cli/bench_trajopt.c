// SPDX-License-Identifier: MIT
// difftop bench trajopt: the official DiffTOP planning problem (Z=50, A=6, H=5, hidden 512,
// ELU MLPs, LN-Tanh twin Q, terminal action from pi) solved by every solver and backward mode
// at B in {1, 32, 256} and {50, 100} iterations, with the official convergence tests and with
// convergence disabled (every iteration runs, as in the Theseus runs on random weights).
//
// FLOP model (per batch row; F = one forward of G = H (dynamics + reward) + pi + 2 Q, counted
// as 2 FLOP per multiply-add of the Linear layers, elementwise work ignored; F = 7.76 MFLOP):
//   solve, LM and PGA: (iterations + 1) evaluations of G and dG/da, each 2F (forward + the
//   input-gradient reverse sweep; no weight gradients are formed);
//   backward, unroll/truncated: one forward-over-reverse pass per recorded step, 6F (value and
//   tangent forward 2F, adjoint and adjoint-tangent products 2F, parameter gradients and their
//   tangents 2F). Armijo, Newton and implicit do a data-dependent amount of work (line
//   searches, n Hessian-vector passes): no GFLOP/s is printed for them.
// Peak memory = tape high water + the iterate history kept for the backward.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

// CPU time of the process in seconds: on a shared machine the wall time includes the time
// other processes held the cores; the CPU time does not (a busy SMT sibling still slows it)
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

enum { Z = 50, A = 6, H = 5, HID = 512, N = A * H };

typedef struct Net {
  dtParams ps;
  dtMLP dyn, rew, q1, q2, pi;
  dtLatentPlan plan;
  dtObjective obj;
  double F;  // forward FLOPs of G per row
} Net;

// orthogonal init as TD-MPC, but without zeroing the last layers of R and Q (zeroed, G would
// be identically 0 and every solver would stop at once)
static int g_single_q = 0;   // --single-q: V = Q1 alone, a smooth G (no min(Q1, Q2) kink)

static int net_init(Net* n, uint64_t seed) {
  dtRng r;
  dt_rng_seed(&r, seed);
  dt_params_init(&n->ps);
  dtMLPSpec se = dt_mlp_spec_elu(Z + A, HID, 2, Z), sr = dt_mlp_spec_elu(Z + A, HID, 2, 1);
  dtMLPSpec sq = dt_mlp_spec_q(Z + A, HID), sp = dt_mlp_spec_elu(Z, HID, 2, A);
  if (dt_mlp_create(&n->dyn, &se, &n->ps, "_dynamics", &r) ||
      dt_mlp_create(&n->rew, &sr, &n->ps, "_reward", &r) ||
      dt_mlp_create(&n->q1, &sq, &n->ps, "_Q1", &r) || dt_mlp_create(&n->q2, &sq, &n->ps, "_Q2", &r) ||
      dt_mlp_create(&n->pi, &sp, &n->ps, "_pi", &r))
    return 1;
  n->plan = (dtLatentPlan){H, A, Z, 0.99f, DT_TERMINAL_PI, NULL, &n->dyn, &n->rew, &n->q1, g_single_q ? NULL : &n->q2,
                           &n->pi, -1, 1, Z, &n->ps, NULL};
  n->F = H * (dt_mlp_flops(&se) + dt_mlp_flops(&sr)) + dt_mlp_flops(&sp) +
         (g_single_q ? 1 : 2) * dt_mlp_flops(&sq);
  return dt_latent_objective(&n->obj, &n->plan) != DT_OK;
}

typedef struct Cfg {
  dtSolver solver;
  dtBackward bw;
} Cfg;

static const Cfg cfgs[] = {
    {DT_SOLVER_LM, DT_BACKWARD_TRUNCATED}, {DT_SOLVER_LM, DT_BACKWARD_NONE},
    {DT_SOLVER_LM, DT_BACKWARD_UNROLL},    {DT_SOLVER_LM, DT_BACKWARD_IMPLICIT},
    {DT_SOLVER_PGA, DT_BACKWARD_TRUNCATED}, {DT_SOLVER_PGA_ARMIJO, DT_BACKWARD_TRUNCATED},
    {DT_SOLVER_NEWTON, DT_BACKWARD_IMPLICIT},
};

typedef struct Result {
  int B, iters, conv;
  Cfg c;
  double solve_ms, total_ms, G, gflops_solve, gflops_total;
  double solve_cpu_ms, total_cpu_ms;  // CPU time, medians
  int iterations;
  size_t peak;
  double theseus_solve, theseus_total;  // 0: not measured
  double theseus_solve_cpu, theseus_total_cpu;
} Result;

static int cmp_d(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double median(double* v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// step sizes: LM as the official code (eta 1e-3, lambda 1e-3, offset 1000); PGA 1e-2;
// Armijo from 1; Newton full steps
static int g_gradient_first = 1;  // --newton-gradient-first 0|1

static dtTrajoptOpts make_opts(Cfg c, int iters, int conv) {
  dtTrajoptOpts o = dt_trajopt_default_opts();
  o.newton_gradient_first = g_gradient_first;
  o.solver = c.solver;
  o.backward = c.bw;
  o.max_iters = iters;
  if (c.solver == DT_SOLVER_PGA) o.step_size = 1e-2f;
  if (c.solver == DT_SOLVER_PGA_ARMIJO || c.solver == DT_SOLVER_NEWTON) o.step_size = 1.0f;
  if (!conv) o.abs_tol = 0, o.rel_tol = 0, o.grad_tol = 0;
  return o;
}

static uint64_t g_seed = 1;  // --seed: the weights use it, the inputs it + 76

static void fill_inputs(int B, float* z0, float* a0, float* dL) {
  dtRng r;
  dt_rng_seed(&r, g_seed + 76);
  dt_rng_fill_normal(&r, z0, (size_t)B * Z, 0, 1);
  dt_rng_fill_uniform(&r, a0, (size_t)B * N, -0.5f, 0.5f);  // stands in for the pi rollout
  dt_rng_fill_normal(&r, dL, (size_t)B * N, 0, 1);
}

static int run_one(Net* net, Cfg c, int B, int iters, int conv, int reps, Result* res) {
  dtTrajoptOpts o = make_opts(c, iters, conv);
  dtTrajopt* s = NULL;
  if (dt_trajopt_new(&net->obj, B, &o, 0, &s)) {
    fprintf(stderr, "bench trajopt: %s\n", dt_last_error());
    return 1;
  }
  float* z0 = malloc(sizeof(float) * (size_t)B * Z);
  float* a0 = malloc(sizeof(float) * (size_t)B * N);
  float* dL = malloc(sizeof(float) * (size_t)B * N);
  float* af = malloc(sizeof(float) * (size_t)B * N);
  float* G = malloc(sizeof(float) * (size_t)B);
  double* ts = malloc(sizeof(double) * (size_t)reps);
  double* tt = malloc(sizeof(double) * (size_t)reps);
  double* cs = malloc(sizeof(double) * (size_t)reps);
  double* ct = malloc(sizeof(double) * (size_t)reps);
  fill_inputs(B, z0, a0, dL);
  int rc = 0;
  // warm-up (page faults of the tape, BLAS buffers)
  if (dt_trajopt_solve(s, B, z0, a0, af, NULL, G, NULL)) rc = 1;
  for (int r = 0; r < reps && !rc; r++) {
    double t0 = dt_time_s(), c0 = cpu_s();
    if (dt_trajopt_solve(s, B, z0, a0, af, NULL, G, NULL)) rc = 1;
    double t1 = dt_time_s(), c1 = cpu_s();
    ts[r] = (t1 - t0) * 1e3;
    cs[r] = (c1 - c0) * 1e3;
    if (c.bw != DT_BACKWARD_NONE) {
      dt_params_zero_grad(&net->ps);
      double t2 = dt_time_s(), c2 = cpu_s();
      if (dt_trajopt_solve(s, B, z0, a0, af, NULL, G, NULL)) rc = 1;
      if (dt_trajopt_backward(s, dL, NULL, NULL)) rc = 1;
      tt[r] = (dt_time_s() - t2) * 1e3;
      ct[r] = (cpu_s() - c2) * 1e3;
    } else {
      tt[r] = ts[r];
      ct[r] = cs[r];
    }
  }
  if (rc) fprintf(stderr, "bench trajopt: %s\n", dt_last_error());
  const dtTrajoptStats* st = dt_trajopt_stats(s);
  res->B = B, res->iters = iters, res->conv = conv, res->c = c;
  res->solve_ms = median(ts, reps);
  res->total_ms = median(tt, reps);
  res->solve_cpu_ms = median(cs, reps);
  res->total_cpu_ms = median(ct, reps);
  double g = 0;
  for (int b = 0; b < B; b++) g += G[b];
  res->G = g / B;
  res->iterations = st->iterations;
  res->peak = st->tape_high_water + st->history_bytes;
  res->gflops_solve = res->gflops_total = 0;
  if (c.solver == DT_SOLVER_LM || c.solver == DT_SOLVER_PGA) {
    double fs = (double)(st->iterations + 1) * 2 * net->F * B;
    res->gflops_solve = fs / (res->solve_ms * 1e6);
    if (c.bw == DT_BACKWARD_TRUNCATED || c.bw == DT_BACKWARD_UNROLL) {
      int passes = c.bw == DT_BACKWARD_UNROLL ? st->iterations
                                             : (o.backward_iters < st->iterations ? o.backward_iters : st->iterations);
      res->gflops_total = (fs + passes * 6.0 * net->F * B) / (res->total_ms * 1e6);
    } else if (c.bw == DT_BACKWARD_NONE) {
      res->gflops_total = res->gflops_solve;
    }
  }
  res->theseus_solve = res->theseus_total = 0;
  free(z0), free(a0), free(dL), free(af), free(G), free(ts), free(tt), free(cs), free(ct);
  dt_trajopt_free(s);
  return rc;
}

// Newton's run to an objective: iterations, G, CPU time and the passes of the timed solve
typedef struct NewtonRun {
  int iters;
  double G, cpu_ms;
  dtTrajoptStats stats;
} NewtonRun;

// Newton's time to reach an objective: the smallest iteration count whose mean G >= target
// (cg = 0: full Hessians; cg > 0: that many conjugate-gradient steps per Newton step); -1 if
// 30 iterations do not reach it
static double newton_time_to(Net* net, double target, int reps, int cg, NewtonRun* out) {
  float z0[Z], a0[N], dL[N], af[N], G;
  fill_inputs(1, z0, a0, dL);
  for (int k = 1; k <= 30; k++) {
    dtTrajoptOpts o = make_opts((Cfg){DT_SOLVER_NEWTON, DT_BACKWARD_NONE}, k, 1);
    o.newton_cg = cg;
    dtTrajopt* s = NULL;
    if (dt_trajopt_new(&net->obj, 1, &o, 0, &s)) return -1;
    dt_trajopt_solve(s, 1, z0, a0, af, NULL, &G, NULL);
    if (G >= target) {
      double t[64], tc[64];
      int n = reps < 64 ? reps : 64;
      for (int r = 0; r < n; r++) {
        double t0 = dt_time_s(), c0 = cpu_s();
        dt_trajopt_solve(s, 1, z0, a0, af, NULL, &G, NULL);
        t[r] = (dt_time_s() - t0) * 1e3;
        tc[r] = (cpu_s() - c0) * 1e3;
      }
      out->stats = *dt_trajopt_stats(s);
      out->iters = out->stats.iterations;
      out->G = G;
      out->cpu_ms = median(tc, n);
      dt_trajopt_free(s);
      return median(t, n);
    }
    dt_trajopt_free(s);
  }
  out->G = G;
  return -1;
}

// whether "solver/backward" of c is an entry of the comma-separated list
static int in_list(const char* list, Cfg c) {
  char name[64];
  snprintf(name, sizeof name, "%s/%s", dt_solver_name(c.solver), dt_backward_name(c.bw));
  size_t len = strlen(name);
  for (const char* p = list; (p = strstr(p, name)) != NULL; p += len)
    if ((p == list || p[-1] == ',') && (p[len] == ',' || p[len] == '\0')) return 1;
  return 0;
}

static const char* conv_name(int conv) { return conv ? "official" : "off"; }

// JSON lines from the Theseus script: {"B":..,"iters":..,"backward":"..","conv":"..",
// "solve_ms":..,"total_ms":..}
static double json_num(const char* line, const char* key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char* p = strstr(line, pat);
  return p ? atof(p + strlen(pat)) : NAN;
}

static int json_str(const char* line, const char* key, const char* want) {
  char pat[96];
  snprintf(pat, sizeof pat, "\"%s\": \"%s\"", key, want);
  if (strstr(line, pat)) return 1;
  snprintf(pat, sizeof pat, "\"%s\":\"%s\"", key, want);
  return strstr(line, pat) != NULL;
}

static void run_theseus(const char* python, const char* batches, const char* iters, int reps,
                        Result* res, int nres, int json) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "OMP_WAIT_POLICY=PASSIVE %s %s/tools/bench_trajopt_theseus.py --batches %s --iters %s "
           "--reps %d --threads %d",
           python, DT_SOURCE_DIR, batches, iters, reps, dt_get_num_threads());
  fprintf(stderr, "running: %s\n", cmd);
  FILE* p = popen(cmd, "r");
  if (!p) {
    fprintf(stderr, "bench trajopt: cannot run %s\n", python);
    return;
  }
  char line[1024];
  while (fgets(line, sizeof line, p)) {
    if (line[0] != '{') {
      fputs(line, stderr);
      continue;
    }
    if (json) printf("{\"theseus\": true, %s", line + 1);
    int B = (int)json_num(line, "B"), it = (int)json_num(line, "iters");
    for (int i = 0; i < nres; i++) {
      Result* r = &res[i];
      if (r->c.solver != DT_SOLVER_LM || r->B != B || r->iters != it) continue;
      if (!json_str(line, "conv", conv_name(r->conv))) continue;
      if (!json_str(line, "backward", dt_backward_name(r->c.bw))) continue;
      r->theseus_solve = json_num(line, "solve_ms");
      r->theseus_total = json_num(line, "total_ms");
      r->theseus_solve_cpu = json_num(line, "solve_cpu_ms");
      r->theseus_total_cpu = json_num(line, "total_cpu_ms");
    }
  }
  pclose(p);
}

static int parse_list(const char* s, int* out, int max) {
  int n = 0;
  while (s && *s && n < max) {
    out[n++] = atoi(s);
    s = strchr(s, ',');
    if (s) s++;
  }
  return n;
}

int bench_trajopt(int argc, char** argv) {
  int json = 0, threads = 1, reps = 0, quick = 0;
  const char* batches = "1,32,256";
  const char* iters_s = "50,100";
  const char* theseus = NULL;
  const char* only = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--batches") && i + 1 < argc) batches = argv[++i];
    else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters_s = argv[++i];
    else if (!strcmp(argv[i], "--theseus") && i + 1 < argc) theseus = argv[++i];
    else if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc) g_seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!strcmp(argv[i], "--single-q")) g_single_q = 1;
    else if (!strcmp(argv[i], "--newton-gradient-first") && i + 1 < argc)
      g_gradient_first = atoi(argv[++i]) != 0;
    else {
      fprintf(stderr,
              "usage: difftop bench trajopt [--json] [--threads N] [--reps N] [--batches 1,32,256]\n"
              "       [--iters 50,100] [--theseus PYTHON] [--quick] [--seed N]\n"
              "       [--only SOLVER/BACKWARD,...] [--single-q] [--newton-gradient-first 0|1]\n"
              "  --quick: only lm/truncated, lm/none and newton/implicit\n"
              "  --only: just these configurations, e.g. lm/truncated,newton/implicit\n"
              "  --single-q: terminal value Q1 alone instead of min(Q1, Q2) (a smooth objective)\n"
              "  --newton-gradient-first 0: a Newton direction every iteration (no gradient trial)\n");
      return 2;
    }
  }
  dt_set_num_threads(threads);
  Net net;
  if (net_init(&net, g_seed)) {
    fprintf(stderr, "bench trajopt: %s\n", dt_last_error());
    return 1;
  }
  int Bs[8], its[8];
  int nB = parse_list(batches, Bs, 8), nI = parse_list(iters_s, its, 8);
  int ncfg = (int)(sizeof cfgs / sizeof cfgs[0]);
  Result* res = calloc((size_t)nB * nI * ncfg * 2, sizeof(Result));
  int nres = 0;
  printf("# difftop bench trajopt: official planning problem Z=%d A=%d H=%d hidden=%d (n=%d), "
         "forward F = %.2f MFLOP/row%s\n", Z, A, H, HID, N, net.F / 1e6,
         g_single_q ? "; terminal value Q1 alone (--single-q)" : "");
  printf("# cpu: %s; BLAS threads: %d; lm: eta 1e-3, lambda 1e-3, offset 1000, truncated k=5\n",
         dt_cpu_model(), dt_get_num_threads());
  printf("# conv 'official': Theseus abs 1e-10 / rel 1e-8 on E = r^2/2 (pga/newton: |Pg| < 1e-4);"
         " 'off': all iterations run\n");
  if (!json)
    printf("%-11s %-9s %4s %4s %-8s %5s %10s %10s %9s %9s %11s %7s %7s %9s\n", "solver",
           "backward", "B", "K", "conv", "iters", "solve_ms", "total_ms", "solve_cpu", "total_cpu",
           "G", "GF/s", "GF/s+b", "peak_KiB");
  for (int ib = 0; ib < nB; ib++)
    for (int ii = 0; ii < nI; ii++)
      for (int conv = 0; conv < 2; conv++)
        for (int k = 0; k < ncfg; k++) {
          Cfg c = cfgs[k];
          int B = Bs[ib];
          if (quick && !(c.solver == DT_SOLVER_LM && c.bw != DT_BACKWARD_UNROLL &&
                         c.bw != DT_BACKWARD_IMPLICIT) &&
              c.solver != DT_SOLVER_NEWTON)
            continue;
          if (only && !in_list(only, c)) continue;
          // Newton (n = 30 Hessian-vector rows per iteration per element) only at B = 1;
          // implicit (the same Hessian once) and unroll (a second-order pass per iteration)
          // up to B = 32: above, each costs minutes per configuration
          if (c.solver == DT_SOLVER_NEWTON && B > 1) continue;
          if ((c.bw == DT_BACKWARD_IMPLICIT || c.bw == DT_BACKWARD_UNROLL) && B > 32) continue;
          // pga-armijo re-evaluates the whole batch for every backtracking step (up to 21 per
          // iteration): 7 s at B = 32, about a minute per solve at 256
          if (c.solver == DT_SOLVER_PGA_ARMIJO && B > 32) continue;
          if (c.solver == DT_SOLVER_NEWTON && its[ii] > 50) continue;  // converges in a few
          int r = reps ? reps : B == 1 ? 11 : B <= 32 ? 5 : 3;
          Result* out = &res[nres];
          if (run_one(&net, c, B, its[ii], conv, r, out)) return 1;
          nres++;
          if (!json)
            printf("%-11s %-9s %4d %4d %-8s %5d %10.2f %10.2f %9.2f %9.2f %11.4f %7.1f %7.1f %9.0f\n",
                   dt_solver_name(c.solver), dt_backward_name(c.bw), B, its[ii], conv_name(conv),
                   out->iterations, out->solve_ms, out->total_ms, out->solve_cpu_ms,
                   out->total_cpu_ms, out->G, out->gflops_solve, out->gflops_total,
                   out->peak / 1024.0);
          fflush(stdout);
        }
  if (theseus) run_theseus(theseus, batches, iters_s, reps ? reps : 3, res, nres, json);
  for (int i = 0; i < nres; i++) {
    Result* r = &res[i];
    if (json)
      printf("{\"solver\": \"%s\", \"backward\": \"%s\", \"B\": %d, \"iters\": %d, \"conv\": \"%s\", "
             "\"iterations\": %d, \"solve_ms\": %.4f, \"total_ms\": %.4f, \"solve_cpu_ms\": %.4f, "
             "\"total_cpu_ms\": %.4f, \"G\": %.6f, "
             "\"gflops_solve\": %.2f, \"gflops_total\": %.2f, \"peak_bytes\": %zu, \"threads\": %d, "
             "\"cpu\": \"%s\", \"theseus_solve_ms\": %.3f, \"theseus_total_ms\": %.3f}\n",
             dt_solver_name(r->c.solver), dt_backward_name(r->c.bw), r->B, r->iters,
             conv_name(r->conv), r->iterations, r->solve_ms, r->total_ms, r->solve_cpu_ms,
             r->total_cpu_ms, r->G, r->gflops_solve,
             r->gflops_total, r->peak, dt_get_num_threads(), dt_cpu_model(), r->theseus_solve,
             r->theseus_total);
  }
  if (theseus && !json) {
    printf("\n# ratios Theseus / difftop (lm, same B, iterations, backward, convergence)\n");
    printf("%-9s %4s %4s %-8s %12s %12s %7s %12s %12s %7s %9s %9s\n", "backward", "B", "K",
           "conv", "th_solve_ms", "dt_solve_ms", "ratio", "th_total_ms", "dt_total_ms", "ratio",
           "cpu_ratio", "cpu_ratio+b");
    for (int i = 0; i < nres; i++) {
      Result* r = &res[i];
      if (r->theseus_solve <= 0) continue;
      printf("%-9s %4d %4d %-8s %12.1f %12.2f %7.1f %12.1f %12.2f %7.1f %9.1f %9.1f\n",
             dt_backward_name(r->c.bw), r->B, r->iters, conv_name(r->conv), r->theseus_solve,
             r->solve_ms, r->theseus_solve / r->solve_ms, r->theseus_total, r->total_ms,
             r->theseus_total / r->total_ms, r->theseus_solve_cpu / r->solve_cpu_ms,
             r->theseus_total_cpu / r->total_cpu_ms);
    }
  }
  // Newton against the 100-iteration LM objective at B = 1
  for (int i = 0; i < nres; i++) {
    Result* r = &res[i];
    if (r->c.solver != DT_SOLVER_LM || r->c.bw != DT_BACKWARD_NONE || r->B != 1 || r->iters != 100 ||
        r->conv != 1)
      continue;
    // Theseus's 100 LM iterations (every one run) in the same run, when it ran
    double th_ms = 0, th_cpu = 0;
    for (int j = 0; j < nres; j++)
      if (res[j].c.solver == DT_SOLVER_LM && res[j].c.bw == DT_BACKWARD_NONE && res[j].B == 1 &&
          res[j].iters == 100 && res[j].conv == 0 && res[j].theseus_solve > 0)
        th_ms = res[j].theseus_solve, th_cpu = res[j].theseus_solve_cpu;
    static const int cgs[2] = {0, 10};
    for (int v = 0; v < 2; v++) {
      NewtonRun nr = {0};
      double t = newton_time_to(&net, r->G, reps ? reps : 11, cgs[v], &nr);
      const dtTrajoptStats* ps = &nr.stats;
      const char* name = cgs[v] ? "newton-cg10" : "newton";
      if (json) {
        printf("{\"newton_to_lm100\": {\"variant\": \"%s\", \"lm_G\": %.6f, \"lm_ms\": %.3f, "
               "\"lm_cpu_ms\": %.3f, \"newton_ms\": %.4f, \"newton_cpu_ms\": %.4f, "
               "\"newton_iters\": %d, \"newton_G\": %.6f, \"hvp_passes\": %d, "
               "\"gradient_passes\": %d, \"value_passes\": %d, \"paired_passes\": %d, "
               "\"gradient_first\": %d, \"theseus_lm100_ms\": %.3f, \"theseus_lm100_cpu_ms\": %.3f}}\n",
               name, r->G, r->solve_ms, r->solve_cpu_ms, t, nr.cpu_ms, nr.iters, nr.G,
               ps->hvp_passes, ps->gradient_passes, ps->value_passes, ps->paired_passes,
               g_gradient_first, th_ms, th_cpu);
      } else if (t < 0) {
        printf("\n# %s did not reach the 100-iteration LM objective %.4f in 30 iterations (G %.4f)\n",
               name, r->G, nr.G);
      } else {
        printf("\n# %s reaches the 100-iteration LM objective (G %.4f; LM in %.2f ms, CPU %.2f) "
               "in %d iterations, %.3f ms, CPU %.3f (G %.4f): %.1fx sooner than our LM (CPU %.1fx)\n"
               "#   passes: %d Hessian-vector, %d gradient, %d value, %d paired (two step lengths)\n",
               name, r->G, r->solve_ms, r->solve_cpu_ms, nr.iters, t, nr.cpu_ms, nr.G,
               r->solve_ms / t, r->solve_cpu_ms / nr.cpu_ms, ps->hvp_passes, ps->gradient_passes,
               ps->value_passes, ps->paired_passes);
        if (th_ms > 0)
          printf("#   against Theseus's 100 LM iterations in this run (%.1f ms, CPU %.1f): "
                 "%.1fx sooner (CPU %.1fx)\n", th_ms, th_cpu, th_ms / t, th_cpu / nr.cpu_ms);
      }
    }
  }
  free(res);
  dt_params_free(&net.ps);
  return 0;
}
