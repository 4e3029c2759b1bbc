// SPDX-License-Identifier: MIT
// Solver semantics of src/trajopt/solver.c: bounds, batching, non-finite inputs, memory, and
// the official LM (Theseus) loop control: convergence tests, best-iterate tracking and the
// truncated split into untaped and taped phases. Gradient correctness is in backward_test.c
// and quadratic_test.c.
#include "fixture.h"

enum { TB = 5 };

static void data(int B, uint64_t seed, float lo, float hi, float* x, float* a0, float* dL) {
  dtRng r;
  dt_rng_seed(&r, seed);
  dt_rng_fill_normal(&r, x, (size_t)B * FX_X, 0, 1);
  dt_rng_fill_uniform(&r, a0, (size_t)B * FX_N, lo, hi);
  if (dL) dt_rng_fill_normal(&r, dL, (size_t)B * FX_N, 0, 1);
}

static int all_finite(const float* v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i])) return 0;
  return 1;
}

static int params_grad_finite(const dtParams* ps) { return !dt_params_grad_nonfinite(ps); }

//---------------------------------------------------------------------------------------------
// bounds

// pga, pga-armijo and newton keep every iterate, the final and the best one in [lo, hi]
// (an asymmetric box, starts drawn outside it, big steps that push against it); LM is
// unconstrained, but the latent objective sees only clip(a): G and its gradient at an LM
// iterate equal those at the clipped iterate, with zero gradient outside the clip.
static void test_bounds_respected(void) {
  const dtSolver solvers[3] = {DT_SOLVER_PGA, DT_SOLVER_PGA_ARMIJO, DT_SOLVER_NEWTON};
  for (int k = 0; k < 3; k++) {
    Fix f;
    fx_init(&f, 7, 1, 0);
    dtTrajoptOpts o = fx_opts(solvers[k], solvers[k] == DT_SOLVER_NEWTON ? DT_BACKWARD_IMPLICIT
                                                                          : DT_BACKWARD_UNROLL,
                              30, solvers[k] == DT_SOLVER_PGA ? 2.0f : 1.0f);
    o.lo = -0.3f, o.hi = 0.7f;
    dtTrajopt* s = NULL;
    CHECK_OK(dt_trajopt_new(&f.obj, TB, &o, 0, &s));
    if (!s) continue;
    float x[TB * FX_X], a0[TB * FX_N], af[TB * FX_N], ab[TB * FX_N];
    data(TB, 8, -2, 2, x, a0, NULL);
    CHECK_OK(dt_trajopt_solve(s, TB, x, a0, af, ab, NULL, NULL));
    int on = 0;
    for (int i = 0; i < TB * FX_N; i++) {
      CHECK(af[i] >= o.lo && af[i] <= o.hi, "%s: a_final %g outside", dt_solver_name(o.solver), (double)af[i]);
      CHECK(ab[i] >= o.lo && ab[i] <= o.hi, "%s: a_best %g outside", dt_solver_name(o.solver), (double)ab[i]);
      on += af[i] == o.lo || af[i] == o.hi;
    }
    CHECK(on > 0, "%s: no coordinate at a bound: the box was never pushed against", dt_solver_name(o.solver));
    for (int j = 0; j < s->steps_len; j++)
      for (int i = 0; i < TB * FX_N; i++)
        CHECK(s->steps[j].a[i] >= o.lo && s->steps[j].a[i] <= o.hi, "iterate %d outside", j);
    dt_trajopt_free(s);
    fx_free(&f);
  }
  // LM and the objective's clip
  Fix f;
  fx_init(&f, 7, 1, 0);
  dtTrajoptOpts o = dt_trajopt_default_opts();  // the official settings: big steps
  dtTrajopt* s = NULL;
  CHECK_OK(dt_trajopt_new(&f.obj, TB, &o, 0, &s));
  float x[TB * FX_X], a0[TB * FX_N], af[TB * FX_N], ac[TB * FX_N];
  data(TB, 8, -0.5f, 0.5f, x, a0, NULL);
  CHECK_OK(dt_trajopt_solve(s, TB, x, a0, af, NULL, NULL, NULL));
  int outside = 0;
  for (int i = 0; i < TB * FX_N; i++) {
    outside += fabsf(af[i]) > 1;
    ac[i] = fminf(fmaxf(af[i], -1), 1);
  }
  CHECK(outside > 0, "LM stayed inside the clip: the clip is not exercised");
  float G1[TB], G2[TB], g1[TB * FX_N], g2[TB * FX_N];
  CHECK_OK(dt_trajopt_eval(s, TB, x, af, G1, g1));
  CHECK_OK(dt_trajopt_eval(s, TB, x, ac, G2, g2));
  for (int b = 0; b < TB; b++) CHECK(G1[b] == G2[b], "G(a) %g != G(clip a) %g", (double)G1[b], (double)G2[b]);
  for (int i = 0; i < TB * FX_N; i++) {
    if (fabsf(af[i]) > 1) CHECK(g1[i] == 0.0f, "gradient %g outside the clip", (double)g1[i]);
    else CHECK(g1[i] == g2[i]);
  }
  dt_trajopt_free(s);
  fx_free(&f);
}

//---------------------------------------------------------------------------------------------
// batch independence

// Each problem solved alone (B = 1) and inside a batch of 5 gives the same iterates, status,
// iteration count and gradients. Not bit-identical: at B = 1 the MLP layers run as GEMV, in a
// batch as GEMM (OpenBLAS blocks the sums differently), so values differ by float32 rounding
// (~1e-7 relative per layer). Over 20 iterations of a contracting solver (PGA, Newton) that
// stays ~1e-6 (observed <= 2.4e-7 in a, 5e-7 relative in dL/dtheta); the checks use 1e-4. LM is run at moderate steps for the same reason:
// at the official settings its iterates jump across the clip and rounding can pick a side.
static void batch_case(dtSolver solver, dtBackward bw, int iters, float step) {
  Fix f;
  fx_init(&f, 9, 3, solver == DT_SOLVER_NEWTON ? 2.0f : 0);
  dtTrajoptOpts o = fx_opts(solver, bw, iters, step);
  if (solver == DT_SOLVER_LM) o.damping = 0.1f, o.step_size = 0.02f;
  dtTrajopt* s = NULL;
  CHECK_OK(dt_trajopt_new(&f.obj, TB, &o, 0, &s));
  if (!s) return;
  float x[TB * FX_X], a0[TB * FX_N], dL[TB * FX_N], af[TB * FX_N], G[TB], dx[TB * FX_X];
  int st[TB], it[TB];
  data(TB, 10, -0.5f, 0.5f, x, a0, dL);
  CHECK_OK(dt_trajopt_solve(s, TB, x, a0, af, NULL, G, st));
  memcpy(it, dt_trajopt_iterations(s), sizeof it);
  int64_t np = dt_params_numel(&f.ps);
  float* gb = calloc((size_t)np, sizeof(float));
  float* g1 = calloc((size_t)np, sizeof(float));
  dt_params_zero_grad(&f.ps);
  CHECK_OK(dt_trajopt_backward(s, dL, dx, NULL));
  int64_t off = 0;
  for (int i = 0; i < f.ps.count; i++)
    for (int64_t k = 0; k < f.ps.items[i]->size; k++) gb[off++] = f.ps.items[i]->grad[k];
  dt_params_zero_grad(&f.ps);  // the single solves accumulate into the parameters
  double maxd = 0, maxa = 0;
  for (int b = 0; b < TB; b++) {
    float a1[FX_N], G1, dx1[FX_X];
    int st1;
    CHECK_OK(dt_trajopt_solve(s, 1, x + b * FX_X, a0 + b * FX_N, a1, NULL, &G1, &st1));
    // Newton stops when no further ascent is resolvable in float32: after it has reached the
    // point, how many trial steps still count as ascent depends on rounding (the CPU's BLAS
    // kernels and the build's vectorisation: 1 apart in release builds, 2 in the -O1 sanitizer
    // build on an AVX-512 machine), so for Newton the claim is the same status, G and point
    // (below), not the same count
    int dit = abs(dt_trajopt_iterations(s)[0] - it[b]);
    CHECK(st1 == st[b] && (solver == DT_SOLVER_NEWTON || dit == 0),
          "%s element %d: status %d/%d iters %d/%d",
          dt_solver_name(solver), b, st1, st[b], dt_trajopt_iterations(s)[0], it[b]);
    CHECK(fabs(G1 - G[b]) <= 1e-4 * (1 + fabs(G[b])), "G %g vs %g", (double)G1, (double)G[b]);
    for (int i = 0; i < FX_N; i++) {
      maxd = fmax(maxd, fabs(a1[i] - af[b * FX_N + i]));
      CHECK(fabs(a1[i] - af[b * FX_N + i]) <= 1e-4 * (1 + fabs(af[b * FX_N + i])));
    }
    CHECK_OK(dt_trajopt_backward(s, dL + b * FX_N, dx1, NULL));
    for (int j = 0; j < FX_X; j++)
      CHECK(fabs(dx1[j] - dx[b * FX_X + j]) <= 1e-4 * (1 + fabs(dx[b * FX_X + j])), "dL/dx %g vs %g",
            (double)dx1[j], (double)dx[b * FX_X + j]);
  }
  off = 0;
  double gmax = 0, gdiff = 0;
  for (int i = 0; i < f.ps.count; i++)
    for (int64_t k = 0; k < f.ps.items[i]->size; k++, off++) {
      g1[off] = f.ps.items[i]->grad[k];
      gmax = fmax(gmax, fabs(gb[off]));
      gdiff = fmax(gdiff, fabs(g1[off] - gb[off]));
    }
  maxa = gdiff;
  CHECK(gdiff <= 1e-4 * gmax, "%s/%s: summed single-problem dL/dtheta differs from the batch's "
        "by %g (max %g)", dt_solver_name(solver), dt_backward_name(bw), gdiff, gmax);
  if (fx_verbose())
    printf("  batch vs alone %s/%s: max |a diff| %.3g, max |dtheta diff| %.3g of %.3g\n",
           dt_solver_name(solver), dt_backward_name(bw), maxd, maxa, gmax);
  free(gb), free(g1);
  dt_trajopt_free(s);
  fx_free(&f);
}

static void test_batch_equals_alone(void) {
  batch_case(DT_SOLVER_LM, DT_BACKWARD_TRUNCATED, 20, 0.02f);
  batch_case(DT_SOLVER_LM, DT_BACKWARD_UNROLL, 20, 0.02f);
  batch_case(DT_SOLVER_PGA, DT_BACKWARD_UNROLL, 20, 0.1f);
  batch_case(DT_SOLVER_PGA_ARMIJO, DT_BACKWARD_TRUNCATED, 20, 0.5f);
  batch_case(DT_SOLVER_NEWTON, DT_BACKWARD_IMPLICIT, 20, 1.0f);
}

//---------------------------------------------------------------------------------------------
// non-finite inputs

static const struct {
  dtSolver solver;
  dtBackward bw;
} modes[] = {{DT_SOLVER_LM, DT_BACKWARD_TRUNCATED},        {DT_SOLVER_LM, DT_BACKWARD_UNROLL},
             {DT_SOLVER_PGA, DT_BACKWARD_UNROLL},          {DT_SOLVER_PGA_ARMIJO, DT_BACKWARD_TRUNCATED},
             {DT_SOLVER_NEWTON, DT_BACKWARD_IMPLICIT},     {DT_SOLVER_PGA_ARMIJO, DT_BACKWARD_IMPLICIT}};
#define NMODES ((int)(sizeof modes / sizeof modes[0]))

// the fixture (strictly concave for Newton and implicit) and a 10-iteration solver for modes[m]
static dtTrajopt* new_mode_solver(Fix* f, int m) {
  int needs_concave = modes[m].solver == DT_SOLVER_NEWTON || modes[m].bw == DT_BACKWARD_IMPLICIT;
  fx_init(f, 12, 1, needs_concave ? 2.0f : 0);
  dtTrajoptOpts o = fx_opts(modes[m].solver, modes[m].bw, 10, modes[m].solver == DT_SOLVER_LM ? 0.02f : 0.3f);
  dtTrajopt* s = NULL;
  CHECK_OK(dt_trajopt_new(&f->obj, TB, &o, 0, &s));
  return s;
}

// NaN in x (element 1), Inf in a_init (element 3), -Inf in x (element 4): those elements get
// DT_SOLVE_NONFINITE, finite returned actions and G = 0, no gradient; elements 0 and 2 are
// bit-identical to a batch where the bad rows hold finite data (rows never mix in the MLPs).
static void test_nonfinite_inputs(void) {
  for (int m = 0; m < NMODES; m++) {
    Fix f;
    dtTrajopt* s = new_mode_solver(&f, m);
    if (!s) continue;
    float x[TB * FX_X], a0[TB * FX_N], dL[TB * FX_N], af[TB * FX_N], ab[TB * FX_N], G[TB];
    float af_ref[TB * FX_N], G_ref[TB], dx[TB * FX_X], dx_ref[TB * FX_X];
    int st[TB];
    data(TB, 13, -0.5f, 0.5f, x, a0, dL);
    int64_t np = dt_params_numel(&f.ps);
    float* gref = calloc((size_t)np, sizeof(float));
    // reference: clean data in every row, gradients of rows 0 and 2 only
    float dL02[TB * FX_N] = {0};
    memcpy(dL02, dL, FX_N * sizeof(float));
    memcpy(dL02 + 2 * FX_N, dL + 2 * FX_N, FX_N * sizeof(float));
    CHECK_OK(dt_trajopt_solve(s, TB, x, a0, af_ref, NULL, G_ref, NULL));
    dt_params_zero_grad(&f.ps);
    CHECK_OK(dt_trajopt_backward(s, dL02, dx_ref, NULL));
    int64_t off = 0;
    for (int i = 0; i < f.ps.count; i++)
      for (int64_t k = 0; k < f.ps.items[i]->size; k++) gref[off++] = f.ps.items[i]->grad[k];
    // poison rows 1, 3, 4
    x[1 * FX_X + 2] = NAN;
    a0[3 * FX_N + 1] = INFINITY;
    x[4 * FX_X + 0] = -INFINITY;
    CHECK_OK(dt_trajopt_solve(s, TB, x, a0, af, ab, G, st));
    const char* name = dt_solver_name(modes[m].solver);
    CHECK(st[1] == DT_SOLVE_NONFINITE && st[3] == DT_SOLVE_NONFINITE && st[4] == DT_SOLVE_NONFINITE,
          "%s: statuses %d %d %d", name, st[1], st[3], st[4]);
    CHECK(st[0] != DT_SOLVE_NONFINITE && st[2] != DT_SOLVE_NONFINITE, "%s", name);
    CHECK(dt_trajopt_stats(s)->nonfinite == 3);
    CHECK(all_finite(af, TB * FX_N) && all_finite(ab, TB * FX_N) && all_finite(G, TB),
          "%s: non-finite outputs", name);
    CHECK(G[1] == 0 && G[3] == 0 && G[4] == 0);
    for (int b = 0; b < TB; b += 2) {
      if (b == 4) break;
      CHECK(!memcmp(af + b * FX_N, af_ref + b * FX_N, FX_N * sizeof(float)), "%s: element %d changed", name, b);
      CHECK(G[b] == G_ref[b]);
    }
    dt_params_zero_grad(&f.ps);
    CHECK_OK(dt_trajopt_backward(s, dL, dx, NULL));  // full dL: bad rows must contribute nothing
    CHECK(params_grad_finite(&f.ps) && all_finite(dx, TB * FX_X), "%s: non-finite gradients", name);
    for (int j = 0; j < FX_X; j++) {
      CHECK(dx[1 * FX_X + j] == 0 && dx[3 * FX_X + j] == 0 && dx[4 * FX_X + j] == 0);
      CHECK(dx[j] == dx_ref[j] && dx[2 * FX_X + j] == dx_ref[2 * FX_X + j], "%s: dL/dx changed", name);
    }
    off = 0;
    double gd = 0, gm = 0;
    for (int i = 0; i < f.ps.count; i++)
      for (int64_t k = 0; k < f.ps.items[i]->size; k++, off++) {
        gd = fmax(gd, fabs(f.ps.items[i]->grad[k] - gref[off]));
        gm = fmax(gm, fabs(gref[off]));
      }
    // rows 1, 3, 4 enter the backward passes as zeros with zero seeds: the GEMMs see other
    // values in those rows than in the reference, so sums may round differently (1e-6)
    CHECK(gd <= 1e-5 * gm, "%s: dL/dtheta of the good rows changed by %g (max %g)", name, gd, gm);
    free(gref);
    dt_trajopt_free(s);
    fx_free(&f);
  }
}

// One NaN weight in Q1's first layer poisons every element (weights are shared): all get
// DT_SOLVE_NONFINITE, actions stay finite (the start), G = 0, the backward adds nothing, and
// the parameter gradients stay finite. Also one NaN in the reward's last layer.
static void test_nonfinite_weights(void) {
  const char* which[2] = {"q1.0.weight", "rew.2.weight"};
  for (int w = 0; w < 2; w++)
    for (int m = 0; m < NMODES; m++) {
      Fix f;
      dtTrajopt* s = new_mode_solver(&f, m);
      if (!s) continue;
      dtTensor* p = dt_params_find(&f.ps, which[w]);
      CHECK(p != NULL, "no parameter %s", which[w]);
      if (!p) continue;
      p->val[3] = NAN;
      float x[TB * FX_X], a0[TB * FX_N], dL[TB * FX_N], af[TB * FX_N], ab[TB * FX_N], G[TB], dx[TB * FX_X];
      int st[TB];
      data(TB, 13, -0.5f, 0.5f, x, a0, dL);
      CHECK_OK(dt_trajopt_solve(s, TB, x, a0, af, ab, G, st));
      for (int b = 0; b < TB; b++) CHECK(st[b] == DT_SOLVE_NONFINITE, "%s %s: status %d", which[w], dt_solver_name(modes[m].solver), st[b]);
      CHECK(all_finite(af, TB * FX_N) && all_finite(ab, TB * FX_N) && all_finite(G, TB));
      dt_params_zero_grad(&f.ps);
      dtStatus bst = dt_trajopt_backward(s, dL, dx, NULL);
      // either nothing to differentiate (DT_OK) or the library refuses non-finite gradients
      CHECK(bst == DT_OK || bst == DT_ERR_NONFINITE, "%s", dt_status_string(bst));
      CHECK(params_grad_finite(&f.ps), "%s %s/%s: NaN reached the parameter gradients", which[w],
            dt_solver_name(modes[m].solver), dt_backward_name(modes[m].bw));
      CHECK(all_finite(dx, TB * FX_X));
      dt_trajopt_free(s);
      fx_free(&f);
    }
}

//---------------------------------------------------------------------------------------------
// memory

// No heap allocation inside solve or backward (dt_alloc_count unchanged, from the first solve
// on); truncated and implicit memory (history + tape high water) independent of the number of
// iterations (50 vs 200); the unrolled history grows linearly and is reported.
static void test_memory(void) {
  size_t hist[NMODES][2], high[NMODES][2];
  for (int m = 0; m < NMODES; m++) {
    for (int r = 0; r < 2; r++) {
      int iters = r ? 200 : 50;
      Fix f;
      fx_init(&f, 14, 1, modes[m].solver == DT_SOLVER_NEWTON || modes[m].bw == DT_BACKWARD_IMPLICIT ? 2.0f : 0);
      dtTrajoptOpts o = fx_opts(modes[m].solver, modes[m].bw, iters, modes[m].solver == DT_SOLVER_LM ? 0.02f : 0.1f);
      dtTrajopt* s = NULL;
      CHECK_OK(dt_trajopt_new(&f.obj, TB, &o, 0, &s));
      if (!s) continue;
      float x[TB * FX_X], a0[TB * FX_N], dL[TB * FX_N], af[TB * FX_N], ab[TB * FX_N], G[TB], dx[TB * FX_X], da[TB * FX_N];
      int st[TB];
      data(TB, 15, -0.5f, 0.5f, x, a0, dL);
      uint64_t before = dt_alloc_count();
      for (int rep = 0; rep < 2; rep++) {
        CHECK_OK(dt_trajopt_solve(s, TB, x, a0, af, ab, G, st));
        CHECK_OK(dt_trajopt_backward(s, dL, dx, da));
        CHECK_OK(dt_trajopt_solve(s, 2, x, a0, af, ab, G, st));  // a smaller batch too
        CHECK_OK(dt_trajopt_backward(s, dL, dx, da));
      }
      CHECK(dt_alloc_count() == before, "%s/%s: %llu heap allocations inside solve/backward",
            dt_solver_name(o.solver), dt_backward_name(o.backward),
            (unsigned long long)(dt_alloc_count() - before));
      CHECK_OK(dt_trajopt_solve(s, TB, x, a0, af, ab, G, st));
      CHECK_OK(dt_trajopt_backward(s, dL, dx, da));
      const dtTrajoptStats* sx = dt_trajopt_stats(s);
      hist[m][r] = sx->history_bytes;
      high[m][r] = sx->tape_high_water;
      CHECK(sx->tape_high_water <= sx->tape_capacity);
      if (fx_verbose())
        printf("  memory %-10s/%-9s %3d it: history %7zu B, tape high water %8zu B of %8zu B\n",
               dt_solver_name(o.solver), dt_backward_name(o.backward), iters, sx->history_bytes,
               sx->tape_high_water, sx->tape_capacity);
      dt_trajopt_free(s);
      fx_free(&f);
    }
    if (modes[m].bw == DT_BACKWARD_UNROLL) {
      CHECK(hist[m][1] == 4 * hist[m][0], "unrolled history %zu vs %zu: not linear", hist[m][1], hist[m][0]);
    } else {
      CHECK(hist[m][1] == hist[m][0], "%s history grows with iterations: %zu vs %zu",
            dt_backward_name(modes[m].bw), hist[m][1], hist[m][0]);
    }
    CHECK(high[m][1] == high[m][0], "tape high water grows with iterations: %zu vs %zu", high[m][1], high[m][0]);
  }
}

//---------------------------------------------------------------------------------------------
// the official LM loop control (Theseus's _optimize_loop)

typedef struct Fn1 {
  int kind;  // 0: G = 0; 1: G = c . a; 2: G = -1/2 |a|^2; 3: G = 3 sin(a_0) + sin(2 a_1);
             // 4: G = 1/2 |a - (0.3, -0.2)|^2 (convex: maximisers at corners of the box);
             // 5: G = cos(3 a_0) + cos(3 a_1) (convex where |a_i| > pi / 6, maximiser 0)
  float c;
} Fn1;

enum { LN = 2 };
static Fn1 fn1;

static int f1_eval(void* u, int B, const float* a, const float* x, float* f, float* ga, float* gx) {
  (void)u, (void)x, (void)gx;
  for (int b = 0; b < B; b++) {
    const float* ab = a + b * LN;
    float* g = ga + b * LN;
    switch (fn1.kind) {
      case 0: f[b] = 0, g[0] = g[1] = 0; break;
      case 1: f[b] = fn1.c * ab[0], g[0] = fn1.c, g[1] = 0; break;
      case 2: f[b] = -0.5f * (ab[0] * ab[0] + ab[1] * ab[1]), g[0] = -ab[0], g[1] = -ab[1]; break;
      case 4:
        g[0] = ab[0] - 0.3f, g[1] = ab[1] + 0.2f;
        f[b] = 0.5f * (g[0] * g[0] + g[1] * g[1]);
        break;
      case 5:
        f[b] = cosf(3 * ab[0]) + cosf(3 * ab[1]);
        g[0] = -3 * sinf(3 * ab[0]), g[1] = -3 * sinf(3 * ab[1]);
        break;
      default:
        f[b] = 3 * sinf(ab[0]) + sinf(2 * ab[1]), g[0] = 3 * cosf(ab[0]), g[1] = 2 * cosf(2 * ab[1]);
    }
  }
  return 0;
}

static int f1_hvp(void* u, int B, const float* a, const float* x, const float* da, const float* dx,
                  float* ha, float* hx) {
  (void)u, (void)x, (void)dx, (void)hx;
  for (int b = 0; b < B; b++) {
    const float *ab = a + b * LN, *d = da + b * LN;
    float* h = ha + b * LN;
    switch (fn1.kind) {
      case 0: case 1: h[0] = h[1] = 0; break;
      case 2: h[0] = -d[0], h[1] = -d[1]; break;
      case 4: h[0] = d[0], h[1] = d[1]; break;
      case 5: h[0] = -9 * cosf(3 * ab[0]) * d[0], h[1] = -9 * cosf(3 * ab[1]) * d[1]; break;
      default: h[0] = -3 * sinf(ab[0]) * d[0], h[1] = -4 * sinf(2 * ab[1]) * d[1];
    }
  }
  return 0;
}

static const dtScalarFn f1_fn = {LN, 0, NULL, f1_eval, f1_hvp, "fn1"};
static dtTensor* f1_value(void* ctx, dtTape* t, dtTensor* a, dtTensor* c) {
  (void)ctx, (void)c;
  return dt_custom(t, a, NULL, &f1_fn);
}

static dtTrajopt* lm_new(int iters, float step, float damping, float offset, dtBackward bw, int window) {
  static dtObjective obj = {LN, 0, NULL, NULL, f1_value, NULL};
  dtTrajoptOpts o = dt_trajopt_default_opts();
  o.max_iters = iters, o.step_size = step, o.damping = damping, o.offset = offset;
  o.backward = bw, o.backward_iters = window;
  dtTrajopt* s = NULL;
  CHECK_OK(dt_trajopt_new(&obj, 2, &o, 0, &s));
  return s;
}

// the LM recurrence of the official code on G = -1/2 |a|^2, in float as the library runs it
static int lm_predict(const float* a_init, float step, float damping, float offset, float abs_tol,
                      float rel_tol, int iters) {
  float a[LN] = {a_init[0], a_init[1]};
  float G = -0.5f * (a[0] * a[0] + a[1] * a[1]);
  float e_last = 0.5f * (offset - G) * (offset - G);
  for (int k = 1; k <= iters; k++) {
    double gg = (double)a[0] * a[0] + (double)a[1] * a[1];  // g = -a
    float scale = (float)((offset - G) / (damping + gg)) * step;
    a[0] += scale * -a[0], a[1] += scale * -a[1];
    G = -0.5f * (a[0] * a[0] + a[1] * a[1]);
    float e = 0.5f * (offset - G) * (offset - G), de = fabsf(e_last - e);
    if (e < abs_tol || de < abs_tol || de / e_last < rel_tol) return k;
    e_last = e;
  }
  return -1;
}

// Convergence tests as Theseus: mean|E| < abs, |dE| < abs, |dE| / E_prev < rel (E = r^2 / 2),
// per element, checked after each step; truncated mode runs (K - k) untaped iterations and
// then k taped ones with a FRESH convergence state (so at least one more step is taken).
static void test_lm_convergence(void) {
  float a0[2 * LN] = {0.5f, -0.25f, 0.5f, -0.25f}, af[2 * LN];
  int st[2];
  // G constant: dE = 0 after the first step -> converged after 1 iteration; truncated: 1 + 1
  fn1.kind = 0;
  dtTrajopt* s = lm_new(50, 1e-3f, 1e-3f, 1000, DT_BACKWARD_NONE, 5);
  CHECK_OK(dt_trajopt_solve(s, 2, NULL, a0, af, NULL, NULL, st));
  CHECK(st[0] == DT_SOLVE_CONVERGED && dt_trajopt_iterations(s)[0] == 1, "iters %d", dt_trajopt_iterations(s)[0]);
  dt_trajopt_free(s);
  s = lm_new(50, 1e-3f, 1e-3f, 1000, DT_BACKWARD_TRUNCATED, 5);
  CHECK_OK(dt_trajopt_solve(s, 2, NULL, a0, af, NULL, NULL, st));
  CHECK(st[0] == DT_SOLVE_CONVERGED && dt_trajopt_iterations(s)[0] == 2,
        "truncated: iters %d (1 untaped + 1 in the fresh taped window)", dt_trajopt_iterations(s)[0]);
  CHECK(s->steps_len == 1, "taped window recorded %d steps", s->steps_len);
  dt_trajopt_free(s);
  // G = C exactly (r = 0, E = 0): mean|E| < abs at the first check
  fn1.kind = 1, fn1.c = 0;
  s = lm_new(50, 1e-3f, 1e-3f, 0, DT_BACKWARD_NONE, 5);
  CHECK_OK(dt_trajopt_solve(s, 2, NULL, a0, af, NULL, NULL, st));
  CHECK(st[0] == DT_SOLVE_CONVERGED && dt_trajopt_iterations(s)[0] == 1);
  dt_trajopt_free(s);
  // the relative test: G = -1/2 |a|^2, C = 1, lambda = 1, eta = 0.5; E -> 1/2 geometrically.
  // The predicted iteration (the official recurrence, replayed) for several rel tolerances
  fn1.kind = 2;
  const float rels[3] = {1e-2f, 1e-4f, 1e-6f};
  for (int k = 0; k < 3; k++) {
    dtTrajoptOpts o = dt_trajopt_default_opts();
    static dtObjective obj = {LN, 0, NULL, NULL, f1_value, NULL};
    o.max_iters = 200, o.step_size = 0.5f, o.damping = 1, o.offset = 1, o.abs_tol = 0, o.rel_tol = rels[k];
    o.backward = DT_BACKWARD_NONE;
    CHECK_OK(dt_trajopt_new(&obj, 2, &o, 0, &s));
    CHECK_OK(dt_trajopt_solve(s, 2, NULL, a0, af, NULL, NULL, st));
    int want = lm_predict(a0, 0.5f, 1, 1, 0, rels[k], 200);
    CHECK(want > 1 && st[0] == DT_SOLVE_CONVERGED && dt_trajopt_iterations(s)[0] == want,
          "rel %g: %d iterations, predicted %d", (double)rels[k], dt_trajopt_iterations(s)[0], want);
    dt_trajopt_free(s);
  }
  // with both tolerances 0 every iteration runs (the benchmark's "convergence disabled")
  {
    dtTrajoptOpts o = dt_trajopt_default_opts();
    static dtObjective obj = {LN, 0, NULL, NULL, f1_value, NULL};
    o.max_iters = 37, o.step_size = 0.5f, o.damping = 1, o.offset = 1, o.abs_tol = 0, o.rel_tol = 0;
    o.backward = DT_BACKWARD_NONE;
    CHECK_OK(dt_trajopt_new(&obj, 2, &o, 0, &s));
    CHECK_OK(dt_trajopt_solve(s, 2, NULL, a0, af, NULL, NULL, st));
    CHECK(st[0] == DT_SOLVE_MAX_ITER && dt_trajopt_iterations(s)[0] == 37);
    dt_trajopt_free(s);
  }
}

// Best tracking: best_err starts at E(a_init) with best = a_init; after each iteration an
// iterate with smaller E replaces it; truncated merges its two phases' bests.
static void test_lm_best_tracking(void) {
  float a0[2 * LN] = {0.3f, 0.1f, -0.7f, 0.4f}, af[2 * LN], ab[2 * LN];
  int st[2];
  // diverging (eta = 2.5 on a linear G: r_{k+1} = -1.5 r_k): E grows, best stays the start
  fn1.kind = 1, fn1.c = 1;
  dtTrajopt* s = lm_new(10, 2.5f, 1e-6f, 10, DT_BACKWARD_NONE, 5);
  CHECK_OK(dt_trajopt_solve(s, 2, NULL, a0, af, ab, NULL, st));
  CHECK(!memcmp(ab, a0, sizeof a0), "best moved off a_init: %g", (double)ab[0]);
  CHECK(fabsf(af[0] - a0[0]) > 1, "the LM did not diverge");
  dt_trajopt_free(s);
  // non-monotone: best == the argmin of E over the iterates (iterate k = solve with k its)
  fn1.kind = 3;
  const int K = 12;
  for (int bw = 0; bw < 2; bw++) {
    dtBackward mode = bw ? DT_BACKWARD_TRUNCATED : DT_BACKWARD_NONE;
    s = lm_new(K, 0.9f, 0.05f, 5, mode, 5);
    CHECK_OK(dt_trajopt_solve(s, 2, NULL, a0, af, ab, NULL, st));
    for (int b = 0; b < 2; b++) {
      float best[LN] = {a0[b * LN], a0[b * LN + 1]};
      double ebest = 0.5 * pow(5 - (3 * sin(best[0]) + sin(2 * best[1])), 2);
      int rises = 0;
      double elast = ebest;
      for (int k = 1; k <= K; k++) {
        dtTrajopt* sk = lm_new(k, 0.9f, 0.05f, 5, DT_BACKWARD_NONE, 5);
        float ak[2 * LN], Gk[2];
        int stk[2];
        CHECK_OK(dt_trajopt_solve(sk, 2, NULL, a0, ak, NULL, Gk, stk));
        dt_trajopt_free(sk);
        float e = 0.5f * (5 - Gk[b]) * (5 - Gk[b]);  // as the library computes it
        rises += e > elast;
        elast = e;
        if (e < ebest) ebest = e, best[0] = ak[b * LN], best[1] = ak[b * LN + 1];
      }
      CHECK(rises > 0, "E decreased monotonically: the test does not exercise tracking");
      CHECK(ab[b * LN] == best[0] && ab[b * LN + 1] == best[1], "%s: best (%g, %g) vs argmin (%g, %g)",
            dt_backward_name(mode), (double)ab[b * LN], (double)ab[b * LN + 1], (double)best[0], (double)best[1]);
    }
    dt_trajopt_free(s);
  }
}

// dt_trajopt_shift_start: one step forward, the end filled or repeated, in place too; bad sizes
// are errors
static void test_shift_start(void) {
  const float prev[12] = {1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16};  // B = 2, n = 6, A = 2
  const float fill[4] = {-1, -2, -3, -4};
  float out[12];
  CHECK_OK(dt_trajopt_shift_start(prev, 2, 6, 2, fill, out));
  const float want_fill[12] = {3, 4, 5, 6, -1, -2, 13, 14, 15, 16, -3, -4};
  CHECK(!memcmp(out, want_fill, sizeof out), "shift with fill");
  CHECK_OK(dt_trajopt_shift_start(prev, 2, 6, 2, NULL, out));
  const float want_repeat[12] = {3, 4, 5, 6, 5, 6, 13, 14, 15, 16, 15, 16};
  CHECK(!memcmp(out, want_repeat, sizeof out), "shift repeating the last step");
  memcpy(out, prev, sizeof out);
  CHECK_OK(dt_trajopt_shift_start(out, 2, 6, 2, NULL, out));
  CHECK(!memcmp(out, want_repeat, sizeof out), "in place");
  float inplace[12];
  memcpy(inplace, prev, sizeof inplace);
  CHECK_OK(dt_trajopt_shift_start(inplace, 2, 6, 2, fill, inplace));
  CHECK(!memcmp(inplace, want_fill, sizeof inplace), "in place with fill");
  CHECK(dt_trajopt_shift_start(prev, 2, 5, 2, NULL, out) == DT_ERR_ARG);
  CHECK(strstr(dt_last_error(), "whole steps") != NULL, "%s", dt_last_error());
  CHECK(dt_trajopt_shift_start(NULL, 2, 6, 2, NULL, out) == DT_ERR_ARG);
}

//---------------------------------------------------------------------------------------------
// paired backtracking

// at max_batch <= 2 backtracking evaluates two step lengths per pass; the steps it accepts are
// those of one-at-a-time backtracking (a solver made for 3 rows, solving 1): the same
// iterations and iterates, and each paired pass stands for one or two single trials. A few
// iterations from a far start: near a stationary point the Armijo test compares G values
// equal to float precision, and a 2-row pass rounds differently from a 1-row one.
static int paired_case(dtSolver solver, int cg, float step, int iters, uint64_t seed) {
  Fix f;
  fx_init(&f, seed, 1, 0);
  dtTrajoptOpts o = fx_opts(solver, DT_BACKWARD_NONE, iters, step);
  o.newton_cg = cg;
  dtTrajopt *paired = NULL, *single = NULL;
  CHECK_OK(dt_trajopt_new(&f.obj, 1, &o, 0, &paired));
  CHECK_OK(dt_trajopt_new(&f.obj, 3, &o, 0, &single));
  if (!paired || !single) return 0;
  float x[FX_X], a0[FX_N], ap[FX_N], as[FX_N], Gp, Gs;
  data(1, seed + 1, -1, 1, x, a0, NULL);
  CHECK_OK(dt_trajopt_solve(paired, 1, x, a0, ap, NULL, &Gp, NULL));
  CHECK_OK(dt_trajopt_solve(single, 1, x, a0, as, NULL, &Gs, NULL));
  const dtTrajoptStats *sp = dt_trajopt_stats(paired), *ss = dt_trajopt_stats(single);
  const char* name = dt_solver_name(solver);
  CHECK(ss->paired_passes == 0, "%s: the 3-row solver paired its trials", name);
  CHECK(sp->iterations == ss->iterations, "%s cg %d seed %d: %d iterations paired, %d single",
        name, cg, (int)seed, sp->iterations, ss->iterations);
  for (int i = 0; i < FX_N; i++)
    CHECK(fabsf(ap[i] - as[i]) <= 1e-5f, "%s cg %d seed %d: a[%d] %g paired vs %g single", name,
          cg, (int)seed, i, (double)ap[i], (double)as[i]);
  CHECK(fabsf(Gp - Gs) <= 1e-5f * (1 + fabsf(Gs)), "%s: G %g vs %g", name, (double)Gp, (double)Gs);
  int trials = ss->value_passes, lo = sp->value_passes + sp->paired_passes;
  CHECK(trials >= lo && trials <= lo + sp->paired_passes,
        "%s: %d single trials against %d value + %d paired passes", name, trials, sp->value_passes,
        sp->paired_passes);
  CHECK(sp->gradient_passes == ss->gradient_passes, "%s: gradient passes %d vs %d", name,
        sp->gradient_passes, ss->gradient_passes);
  int paired_passes = sp->paired_passes;
  dt_trajopt_free(paired);
  dt_trajopt_free(single);
  fx_free(&f);
  return paired_passes;
}

// on G = 3 sin(a_0) + sin(2 a_1) (no matrix products: a row's G does not depend on how many
// rows share its pass) the paired solver's iterates are bit-identical to one-at-a-time
// backtracking's, whatever the regime, also at a stationary point
static int paired_exact_case(dtSolver solver, int cg, float step, const float* a0) {
  static dtObjective obj = {LN, 0, NULL, NULL, f1_value, NULL};
  fn1.kind = 3;
  dtTrajoptOpts o = fx_opts(solver, DT_BACKWARD_NONE, 12, step);
  o.newton_cg = cg;
  dtTrajopt *paired = NULL, *single = NULL;
  CHECK_OK(dt_trajopt_new(&obj, 1, &o, 0, &paired));
  CHECK_OK(dt_trajopt_new(&obj, 3, &o, 0, &single));
  if (!paired || !single) return 0;
  float ap[LN], as[LN], Gp, Gs;
  CHECK_OK(dt_trajopt_solve(paired, 1, NULL, a0, ap, NULL, &Gp, NULL));
  CHECK_OK(dt_trajopt_solve(single, 1, NULL, a0, as, NULL, &Gs, NULL));
  const dtTrajoptStats *sp = dt_trajopt_stats(paired), *ss = dt_trajopt_stats(single);
  CHECK(!memcmp(ap, as, sizeof ap) && Gp == Gs && sp->iterations == ss->iterations,
        "%s cg %d from (%g, %g): (%g, %g) in %d iterations paired, (%g, %g) in %d single",
        dt_solver_name(solver), cg, (double)a0[0], (double)a0[1], (double)ap[0], (double)ap[1],
        sp->iterations, (double)as[0], (double)as[1], ss->iterations);
  int passes = sp->paired_passes;
  dt_trajopt_free(paired);
  dt_trajopt_free(single);
  return passes;
}

static void test_paired_backtracking(void) {
  int pga = 0, exact_pga = 0, exact_newton = 0;
  for (uint64_t seed = 3; seed < 9; seed++) {
    pga += paired_case(DT_SOLVER_PGA_ARMIJO, 0, 1000.0f, 3, seed);
    paired_case(DT_SOLVER_NEWTON, 10, 1.0f, 2, seed);  // the fixture's Newton rarely backtracks
  }
  CHECK(pga > 0, "pga-armijo never backtracked in pairs: the case does not exercise them");
  const float starts[4][LN] = {{-0.9f, -0.8f}, {-0.2f, 0.9f}, {0.3f, -0.6f}, {-1.0f, 0.1f}};
  for (int k = 0; k < 4; k++) {
    exact_pga += paired_exact_case(DT_SOLVER_PGA_ARMIJO, 0, 1000.0f, starts[k]);
    exact_newton += paired_exact_case(DT_SOLVER_NEWTON, 10, 1.0f, starts[k]);
    exact_newton += paired_exact_case(DT_SOLVER_NEWTON, 0, 1.0f, starts[k]);
  }
  CHECK(exact_pga > 0 && exact_newton > 0, "paired passes on the sine objective: pga-armijo %d, "
        "newton %d: a case does not exercise them", exact_pga, exact_newton);
}

//---------------------------------------------------------------------------------------------
// Newton's gradient trials

// a Newton solver on the 2-d test objective fn1 (B rows at most)
static dtTrajopt* newton_new(int max_batch, int cg, int gradient_first, int iters) {
  static dtObjective obj = {LN, 0, NULL, NULL, f1_value, NULL};
  dtTrajoptOpts o = fx_opts(DT_SOLVER_NEWTON, DT_BACKWARD_NONE, iters, 1.0f);
  o.newton_cg = cg;
  o.newton_gradient_first = gradient_first;
  o.grad_tol = 1e-5f;
  dtTrajopt* s = NULL;
  CHECK_OK(dt_trajopt_new(&obj, max_batch, &o, 0, &s));
  return s;
}

// on a convex G every direction has curvature below the floor, so Newton-CG steps along the
// projected gradient: the gradient trials take the same steps (a rejected trial continues as
// Newton's line search), bit for bit, with fewer Hessian-vector passes
static void test_gradient_first_same_steps(void) {
  fn1.kind = 4;
  const float starts[4][LN] = {{0.31f, -0.21f}, {0.9f, 0.5f}, {-0.7f, -0.9f}, {0.25f, -0.15f}};
  int fewer = 0;
  for (int k = 0; k < 4; k++) {
    dtTrajopt *on = newton_new(1, 10, 1, 12), *off = newton_new(1, 10, 0, 12);
    if (!on || !off) return;
    float a_on[LN], a_off[LN], G_on, G_off;
    CHECK_OK(dt_trajopt_solve(on, 1, NULL, starts[k], a_on, NULL, &G_on, NULL));
    CHECK_OK(dt_trajopt_solve(off, 1, NULL, starts[k], a_off, NULL, &G_off, NULL));
    const dtTrajoptStats *son = dt_trajopt_stats(on), *soff = dt_trajopt_stats(off);
    CHECK(!memcmp(a_on, a_off, sizeof a_on) && G_on == G_off &&
              son->iterations == soff->iterations,
          "from (%g, %g): (%g, %g) in %d iterations with gradient trials, (%g, %g) in %d without",
          (double)starts[k][0], (double)starts[k][1], (double)a_on[0], (double)a_on[1],
          son->iterations, (double)a_off[0], (double)a_off[1], soff->iterations);
    // the local maximiser of 1/2 |a - c|^2 on [-1, 1]^2 ascent reaches: the corner on the
    // start's side of c in each coordinate
    float want0 = starts[k][0] > 0.3f ? 1.0f : -1.0f, want1 = starts[k][1] > -0.2f ? 1.0f : -1.0f;
    CHECK(a_on[0] == want0 && a_on[1] == want1, "from (%g, %g): ends at (%g, %g), not (%g, %g)",
          (double)starts[k][0], (double)starts[k][1], (double)a_on[0], (double)a_on[1],
          (double)want0, (double)want1);
    CHECK(son->hvp_passes <= soff->hvp_passes, "%d Hessian-vector passes with gradient trials, "
          "%d without", son->hvp_passes, soff->hvp_passes);
    fewer += son->hvp_passes < soff->hvp_passes;
    dt_trajopt_free(on);
    dt_trajopt_free(off);
  }
  CHECK(fewer > 0, "the gradient trials never saved a Hessian-vector pass");
  // a rejected gradient trial: from a start where cos(3 a) is convex the step to the box
  // corner lowers G, and Newton-CG's direction is the projected gradient again; its line
  // search goes on from the rejected trial, to the step Newton-CG takes
  fn1.kind = 5;
  const float start[LN] = {0.7f, 0.8f};
  dtTrajopt *on = newton_new(1, 10, 1, 1), *off = newton_new(1, 10, 0, 1);
  if (!on || !off) return;
  float a_on[LN], a_off[LN], G_on, G_off;
  CHECK_OK(dt_trajopt_solve(on, 1, NULL, start, a_on, NULL, &G_on, NULL));
  CHECK_OK(dt_trajopt_solve(off, 1, NULL, start, a_off, NULL, &G_off, NULL));
  const dtTrajoptStats *son = dt_trajopt_stats(on), *soff = dt_trajopt_stats(off);
  CHECK(!memcmp(a_on, a_off, sizeof a_on) && G_on == G_off,
        "one step from (0.7, 0.8): (%g, %g) with a gradient trial, (%g, %g) without",
        (double)a_on[0], (double)a_on[1], (double)a_off[0], (double)a_off[1]);
  CHECK(son->hvp_passes == 1 && son->paired_passes > 0 &&
            son->paired_passes == soff->paired_passes &&
            son->gradient_passes == soff->gradient_passes,
        "the rejected trial's search: %d Hessian-vector, %d paired, %d gradient passes (without "
        "the trial: %d paired, %d gradient)", son->hvp_passes, son->paired_passes,
        son->gradient_passes, soff->paired_passes, soff->gradient_passes);
  dt_trajopt_free(on);
  dt_trajopt_free(off);
}

// on G = 3 sin(a_0) + sin(2 a_1) and cos(3 a_0) + cos(3 a_1) (curvature of both signs) Newton
// with and without gradient trials, full Hessians and CG, reaches a stationary point of the box
// above the start from each start; and a batch mixing elements in both regimes gives each
// element what it gets alone (fn1's rows do not depend on each other: bit-identical)
static void gradient_first_mixed_case(int kind, int cg, int gf) {
  enum { NB = 6 };
  const float a0[NB * LN] = {-0.9f, -0.8f, -0.2f, 0.9f, 0.3f, -0.6f,
                             -1.0f, 0.1f,  0.8f,  0.6f, 0.7f, -0.75f};
  fn1.kind = kind;
  dtTrajopt* s = newton_new(NB, cg, gf, 30);
  if (!s) return;
  float af[NB * LN], G[NB], a1[LN], G1, G0[NB], Gf[NB], g[NB * LN];
  int st[NB];
  CHECK_OK(dt_trajopt_solve(s, NB, NULL, a0, af, NULL, G, st));
  f1_eval(NULL, NB, a0, NULL, G0, g, NULL);  // G at the starts
  f1_eval(NULL, NB, af, NULL, Gf, g, NULL);  // dG/da at the solutions
  for (int b = 0; b < NB; b++) {
    const float* a = af + b * LN;
    float p0 = fminf(fmaxf(a[0] + g[b * LN], -1.0f), 1.0f) - a[0];
    float p1 = fminf(fmaxf(a[1] + g[b * LN + 1], -1.0f), 1.0f) - a[1];
    // stationary to float precision: at the maximiser of kind 5, G = 2 resolves changes of
    // 2.4e-7 = 9 a^2 / 2, so the last resolvable step leaves |a| ~ 2.3e-4, |g| = 9 |a| ~ 2e-3
    CHECK(st[b] == DT_SOLVE_CONVERGED && G[b] >= G0[b] && sqrtf(p0 * p0 + p1 * p1) < 5e-3f,
          "kind %d cg %d gradient_first %d element %d: status %d, G %g from %g, projected "
          "gradient (%g, %g)", kind, cg, gf, b, st[b], (double)G[b], (double)G0[b], (double)p0,
          (double)p1);
    CHECK_OK(dt_trajopt_solve(s, 1, NULL, a0 + b * LN, a1, NULL, &G1, NULL));
    CHECK(!memcmp(a1, a, sizeof a1) && G1 == G[b],
          "kind %d cg %d gradient_first %d element %d: (%g, %g) alone, (%g, %g) in the batch",
          kind, cg, gf, b, (double)a1[0], (double)a1[1], (double)a[0], (double)a[1]);
  }
  dt_trajopt_free(s);
}

static void test_gradient_first_mixed(void) {
  for (int kind = 3; kind <= 5; kind += 2)
    for (int cg = 0; cg <= 10; cg += 10)
      for (int gf = 0; gf <= 1; gf++) gradient_first_mixed_case(kind, cg, gf);
}

DT_TEST_MAIN("trajopt", TEST(test_shift_start), TEST(test_bounds_respected), TEST(test_batch_equals_alone),
             TEST(test_nonfinite_inputs), TEST(test_nonfinite_weights), TEST(test_memory),
             TEST(test_lm_convergence), TEST(test_lm_best_tracking),
             TEST(test_paired_backtracking), TEST(test_gradient_first_same_steps),
             TEST(test_gradient_first_mixed))
