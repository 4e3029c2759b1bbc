// SPDX-License-Identifier: MIT
// Backward modes of src/trajopt/backward.c against central finite differences of the WHOLE
// solve: L = dL . a_final(theta, x, a_init), differentiated along random directions in the
// parameters theta (all networks, encoder included), the data x and the start a_init, each
// direction on its own. The tiny plan of fixture.h has every nonlinearity of the real one.
//
// Regimes. A finite difference of a solve is meaningful only where the solve map is smooth
// along the perturbation: no iterate may cross the objective's action clip, a projection
// bound, the Q1/Q2 min switch or an Armijo acceptance boundary within +-eps. LM iterates that
// jump across the clip (|a| > 1) make the FD depend on eps (seen while designing these tests:
// FD -292 against +27 at one eps), so the LM and PGA cases use a wide clip (+-3) with steps
// that keep every iterate inside it (asserted on all recorded iterates), plus one PGA case
// with active bounds where coordinates sit on the bound (asserted: at least one). The LM
// cases include small damping (lambda = 0.01, 0.1 with |g|^2 ~ lambda), where the d(r/D)/d.
// terms of the step backward are O(1): dropping either of them (the seed tangent -eta g.v/D,
// or the -2 r (g.v)/D^2 g part of w) fails these cases by 3x..30x the tolerance (checked by
// mutating backward.c while writing this file).
// Networks. Every case runs twice: with tanh instead of ELU (the solve map is then smooth away
// from the clip and the min) and with the real ELU networks. ELU's second derivative jumps at
// 0 and the solve map's derivative contains second derivatives of G, so with ELU the map is
// only piecewise C^1: an FD across a kink has an error linear in eps (measured: 0.06, 0.014,
// 0.004, 0.0007 at eps 3e-3, 1e-3, 3e-4, 1e-4), hence eps = 3e-4 and atol 1e-2 for ELU.
//
// Tolerances (float32 solves, L summed in double). A solve of K iterations carries a
// round-off of a few ulps per iteration; the FD divides the difference of two solves by
// 2 eps: noise ~ K u |L| / eps ~ 20 * 6e-8 * 5 / 1e-3 = 6e-3 at worst (observed 10-100x less).
// Truncation: along x and a_init (eps^2 / 6) times the third derivative is negligible at
// eps = 3e-3; along theta (every weight moved by N(0,1) eps) the FD error was measured to
// grow as ~200 eps^2, so eps = 1e-3 there (2e-4). A comparison passes when
// |an - fd| <= atol + 3e-3 max(|an|, |fd|), atol 5e-3 (tanh) or 1e-2 (ELU). Observed err/tol:
// <= 0.25 with tanh, <= 0.6 with ELU (DT_TEST_VERBOSE=1 prints every comparison).
#include "fixture.h"

#define FD_ATOL 5e-3
#define FD_RTOL 3e-3
#define FD_EPS_SMOOTH 3e-3
#define FD_EPS_ELU 3e-4
#define FD_ATOL_ELU 1e-2

static int near_rel(double an, double fd, double atol, double rtol) {
  return fabs(an - fd) <= atol + rtol * fmax(fabs(an), fabs(fd));
}

typedef struct Case {
  const char* name;
  dtSolver solver;
  dtBackward bw;
  int iters, kwin;
  float step, clip, box, kappa;
  int want_active;  // 1: at least one coordinate must end on a bound
  float damping;    // LM lambda (0: fx_opts' 0.1)
  double eps;       // FD step (0: FD_EPS_SMOOTH / FD_EPS_ELU)
} Case;

// data of a case: x ~ N(0,1), a0 ~ U(-0.5, 0.5), dL ~ N(0,1)
static void case_data(int B, uint64_t seed, float* x, float* a0, float* dL) {
  dtRng r;
  dt_rng_seed(&r, seed);
  dt_rng_fill_normal(&r, x, (size_t)B * FX_X, 0, 1);
  dt_rng_fill_uniform(&r, a0, (size_t)B * FX_N, -0.5f, 0.5f);
  dt_rng_fill_normal(&r, dL, (size_t)B * FX_N, 0, 1);
}

// max |a| over the iterates the solver recorded (unroll/truncated) and the final one
static float max_abs_iterate(const dtTrajopt* s, const float* af) {
  float m = 0;
  for (int k = 0; k < s->steps_len; k++)
    for (int i = 0; i < s->B * s->n; i++) m = fmaxf(m, fabsf(s->steps[k].a[i]));
  for (int i = 0; i < s->B * s->n; i++) m = fmaxf(m, fabsf(af[i]));
  return m;
}

static void run_case(const Case* c, int smooth) {
  enum { B = 2 };
  Fix f;
  fx_init_ex(&f, 3, c->clip, c->kappa, smooth);
  double eps0 = smooth ? FD_EPS_SMOOTH : FD_EPS_ELU;
  if (c->eps) eps0 = c->eps;
  double atol = smooth ? FD_ATOL : FD_ATOL_ELU;
  dtTrajoptOpts o = fx_opts(c->solver, c->bw, c->iters, c->step);
  if (c->kwin) o.backward_iters = c->kwin;
  if (c->damping) o.damping = c->damping;
  o.lo = -c->box, o.hi = c->box;
  dtTrajopt* s = NULL;
  CHECK_OK(dt_trajopt_new(&f.obj, B, &o, 0, &s));
  if (!s) return;
  float x[B * FX_X], a0[B * FX_N], dL[B * FX_N], af[B * FX_N];
  int st[B];
  case_data(B, 11, x, a0, dL);
  CHECK_OK(dt_trajopt_solve(s, B, x, a0, af, NULL, NULL, st));
  for (int b = 0; b < B; b++) CHECK(st[b] != DT_SOLVE_NONFINITE, "%s", c->name);
  float m = max_abs_iterate(s, af);
  if (c->want_active) {
    int on = 0;
    for (int i = 0; i < B * FX_N; i++) on += fabsf(af[i]) == c->box;
    CHECK(on > 0, "%s: no coordinate on the bound: the active-set regime is not exercised", c->name);
  } else {
    // the smooth regime: every iterate strictly inside the clip
    CHECK(m < 0.95f * c->clip, "%s: an iterate reached |a| = %g (clip %g): FD not meaningful",
          c->name, (double)m, (double)c->clip);
  }
  const char* dname[3] = {"theta", "x", "a_init"};
  // truncated and implicit detach the start: their dL/da_init is 0 by definition (checked)
  int ndir = c->bw == DT_BACKWARD_UNROLL ? 3 : 2;
  for (int dir = 0; dir < ndir; dir++) {
    Dirs d;
    fx_dirs(&f, &d, B, 1 << dir, 100 + dir);
    CHECK_OK(dt_trajopt_solve(s, B, x, a0, af, NULL, NULL, NULL));
    float da[B * FX_N];
    double an = fx_backward_dir(s, &f, B, dL, &d, NULL, da);
    if (ndir == 2)
      for (int i = 0; i < B * FX_N; i++) CHECK(da[i] == 0.0f, "%s: dL/da_init != 0", c->name);
    double eps = smooth && dir == 0 && !c->eps ? 1e-3 : eps0;
    double fd = fx_fd(s, &f, B, x, a0, dL, &d, eps);
    if (fx_verbose())
      printf("  %-22s %-4s %-6s analytic %+.7f fd %+.7f  err/tol %.3f (max|a| %.3f)\n", c->name,
             smooth ? "tanh" : "elu", dname[dir], an, fd,
             fabs(an - fd) / (atol + FD_RTOL * fmax(fabs(an), fabs(fd))), (double)m);
    CHECK(near_rel(an, fd, atol, FD_RTOL), "%s (%s nets) along %s: analytic %.7g vs fd %.7g",
          c->name, smooth ? "tanh" : "elu", dname[dir], an, fd);
    free(d.p);
  }
  dt_trajopt_free(s);
  fx_free(&f);
}

// unrolled backward of every differentiable solver against FD of the whole solve
static void test_unroll_vs_fd(void) {
  static const Case cases[] = {
      // LM, the official step with a small offset so steps stay inside the clip
      {"lm/unroll", DT_SOLVER_LM, DT_BACKWARD_UNROLL, 20, 0, 0.1f, 3, 3, 0, 0, 10, 0},
      {"lm/unroll big steps", DT_SOLVER_LM, DT_BACKWARD_UNROLL, 20, 0, 0.3f, 3, 3, 0, 0, 10, 0},
      {"lm/unroll lam.01 s.02", DT_SOLVER_LM, DT_BACKWARD_UNROLL, 5, 0, 0.02f, 3, 3, 0, 0, 0.01f, 0},
      {"lm/unroll lam.1 s.05", DT_SOLVER_LM, DT_BACKWARD_UNROLL, 5, 0, 0.05f, 3, 3, 0, 0, 0.1f, 0},
      {"lm/unroll lam.1 s.02", DT_SOLVER_LM, DT_BACKWARD_UNROLL, 10, 0, 0.02f, 3, 3, 0, 0, 0.1f, 0},
      {"lm/unroll kappa", DT_SOLVER_LM, DT_BACKWARD_UNROLL, 20, 0, 0.1f, 3, 3, 0.5f, 0, 1, 0},
      {"pga/unroll", DT_SOLVER_PGA, DT_BACKWARD_UNROLL, 20, 0, 0.1f, 3, 3, 0, 0, 0, 0},
      // active bounds: the nearest projection switch along theta lies between 1e-3 and 3e-3
      // (the FD jumps to 5.16 at 3e-3): eps = 1e-3 stays on one side of it
      {"pga/unroll active", DT_SOLVER_PGA, DT_BACKWARD_UNROLL, 20, 0, 0.4f, 1, 0.3f, 0, 1, 0, 1e-3},
      {"pga-armijo/unroll", DT_SOLVER_PGA_ARMIJO, DT_BACKWARD_UNROLL, 15, 0, 0.5f, 3, 3, 0, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (int smooth = 1; smooth >= 0; smooth--) run_case(&cases[i], smooth);
}

static void test_truncated_vs_fd(void) {
  // truncated over a window of k = 20: the whole solve is the window, so this is FD of the
  // whole solve with a_init held (the start is detached by definition: dL/da_init = 0)
  static const Case cases[] = {
      {"lm/truncated k=K", DT_SOLVER_LM, DT_BACKWARD_TRUNCATED, 10, 10, 0.02f, 3, 3, 0, 0, 0.1f, 0},
      {"pga/truncated k=K", DT_SOLVER_PGA, DT_BACKWARD_TRUNCATED, 20, 20, 0.1f, 3, 3, 0, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (int smooth = 1; smooth >= 0; smooth--) run_case(&cases[i], smooth);
}


// truncated(K, k) == unroll over k steps started from the (detached) iterate at K - k, for LM
// and PGA; and that k-step unroll against FD of the k-step map from the fixed start. The same
// float operations run in the same order, so the equality is exact up to the order in which
// the parameter gradient accumulates (it does not differ here: bit-identical observed; the
// check allows 1e-6 relative).
static void window_case(dtSolver solver, float step, float damping) {
  enum { B = 2, K = 10, KW = 5 };
  Fix f;
  fx_init_ex(&f, 3, 3, 0, 1);
  float x[B * FX_X], a0[B * FX_N], dL[B * FX_N];
  case_data(B, 11, x, a0, dL);
  dtTrajoptOpts ot = fx_opts(solver, DT_BACKWARD_TRUNCATED, K, step);
  ot.backward_iters = KW;
  ot.damping = damping;
  dtTrajoptOpts o0 = ot, ou = ot;
  o0.backward = DT_BACKWARD_NONE, o0.max_iters = K - KW;
  ou.backward = DT_BACKWARD_UNROLL, ou.max_iters = KW;
  dtTrajopt *st = NULL, *s0 = NULL, *su = NULL;
  CHECK_OK(dt_trajopt_new(&f.obj, B, &ot, 0, &st));
  CHECK_OK(dt_trajopt_new(&f.obj, B, &o0, 0, &s0));
  CHECK_OK(dt_trajopt_new(&f.obj, B, &ou, 0, &su));
  if (!st || !s0 || !su) return;
  float at[B * FX_N], amid[B * FX_N], au[B * FX_N];
  CHECK_OK(dt_trajopt_solve(st, B, x, a0, at, NULL, NULL, NULL));
  CHECK_OK(dt_trajopt_solve(s0, B, x, a0, amid, NULL, NULL, NULL));
  CHECK_OK(dt_trajopt_solve(su, B, x, amid, au, NULL, NULL, NULL));
  CHECK(!memcmp(at, au, sizeof at), "%s: truncated final iterate != unroll-%d from iterate %d",
        dt_solver_name(solver), KW, K - KW);
  CHECK(st->steps_len == KW, "%d steps recorded", st->steps_len);
  // gradients: theta and x
  int64_t np = dt_params_numel(&f.ps);
  float* gt = malloc((size_t)np * sizeof(float));
  float dxt[B * FX_X], dxu[B * FX_X], dat[B * FX_N], dau[B * FX_N];
  dt_params_zero_grad(&f.ps);
  CHECK_OK(dt_trajopt_backward(st, dL, dxt, dat));
  fx_save_grads(&f.ps, gt);
  dt_params_zero_grad(&f.ps);
  CHECK_OK(dt_trajopt_backward(su, dL, dxu, dau));
  double maxd, max_saved, max_current;
  fx_grad_diff(&f.ps, gt, &maxd, &max_saved, &max_current);
  double maxg = max_current;
  CHECK(maxd <= 1e-6 * maxg, "%s: truncated vs window unroll: max |dtheta diff| %g (max %g)",
        dt_solver_name(solver), maxd, maxg);
  for (int i = 0; i < B * FX_X; i++) CHECK_NEAR(dxt[i], dxu[i], 1e-6 * (fabs(dxu[i]) + 1e-3));
  for (int i = 0; i < B * FX_N; i++) CHECK(dat[i] == 0.0f, "truncated dL/da_init must be 0");
  // the window unroll against FD of the k-step map from the detached start amid
  for (int dir = 0; dir < 3; dir++) {
    Dirs d;
    fx_dirs(&f, &d, B, 1 << dir, 200 + dir);
    CHECK_OK(dt_trajopt_solve(su, B, x, amid, au, NULL, NULL, NULL));
    double an = fx_backward_dir(su, &f, B, dL, &d, NULL, NULL);
    double fd = fx_fd(su, &f, B, x, amid, dL, &d, dir == 0 ? 1e-3 : FD_EPS_SMOOTH);
    if (fx_verbose())
      printf("  %s window unroll-%d dir %d: analytic %+.7f fd %+.7f\n", dt_solver_name(solver),
             KW, dir, an, fd);
    CHECK(near_rel(an, fd, FD_ATOL, FD_RTOL), "%s window: %.7g vs fd %.7g",
          dt_solver_name(solver), an, fd);
    free(d.p);
  }
  free(gt);
  dt_trajopt_free(st), dt_trajopt_free(s0), dt_trajopt_free(su);
  fx_free(&f);
}

static void test_truncated_is_window_unroll(void) {
  window_case(DT_SOLVER_LM, 0.02f, 0.1f);
  window_case(DT_SOLVER_PGA, 0.1f, 0.1f);
}

//---------------------------------------------------------------------------------------------
// implicit differentiation on a strictly concave problem: G - kappa |a|^2 with kappa large
// enough that -H is positive definite at the solution (the library's implicit_indefinite flag
// must stay 0), solution strictly inside the clip (no active set). The finite differences are
// taken of a whole Newton solve run to convergence (until no Armijo ascent is resolvable in
// float32: |g| ~ 1e-6 observed), i.e. of the implicit function a*(theta, x) itself.
// pga-armijo reaches only |g| ~ 5e-4 in float32 (its Armijo test compares G values, and a
// gradient step's gain alpha |g|^2 drops below G's rounding there), so FD of ITS whole solve is
// noise (|delta a*| ~ |g| / mu over 2 eps); its implicit gradient, taken at its own solution,
// is therefore checked against the FD of the Newton solution map, which it must match up to
// O(|g| / mu) relative. FD steps: along theta the third derivative is large (the FD error was
// measured to scale as ~200 eps^2), so eps = 1e-3 there (2e-4 truncation); 3e-3 along x and
// a_init; 3e-4 everywhere with ELU networks (see the header on kinks).

#define KAPPA 2.0f

static void implicit_case(dtSolver solver, int smooth) {
  enum { B = 2 };
  Fix f;
  fx_init_ex(&f, 5, 3, KAPPA, smooth);
  dtTrajoptOpts o = fx_opts(solver, DT_BACKWARD_IMPLICIT, solver == DT_SOLVER_NEWTON ? 50 : 400,
                            solver == DT_SOLVER_NEWTON ? 1.0f : 0.5f);
  dtTrajoptOpts on = fx_opts(DT_SOLVER_NEWTON, DT_BACKWARD_IMPLICIT, 50, 1.0f);
  dtTrajopt *s = NULL, *sn = NULL;
  CHECK_OK(dt_trajopt_new(&f.obj, B, &o, 0, &s));
  CHECK_OK(dt_trajopt_new(&f.obj, B, &on, 0, &sn));
  if (!s || !sn) return;
  float x[B * FX_X], a0[B * FX_N], dL[B * FX_N], af[B * FX_N], an_[B * FX_N];
  int stt[B];
  case_data(B, 13, x, a0, dL);
  CHECK_OK(dt_trajopt_solve(s, B, x, a0, af, NULL, NULL, stt));
  CHECK_OK(dt_trajopt_solve(sn, B, x, a0, an_, NULL, NULL, NULL));
  float m = 0;
  for (int i = 0; i < B * FX_N; i++) m = fmaxf(m, fabsf(af[i]));
  CHECK(m < 2.5f, "solution %g not strictly inside the clip 3", (double)m);
  for (int b = 0; b < B; b++)
    CHECK(solver != DT_SOLVER_NEWTON ? stt[b] != DT_SOLVE_NONFINITE : stt[b] == DT_SOLVE_CONVERGED,
          "%s: status %d", dt_solver_name(solver), stt[b]);
  // stationarity at the solution: |g| small (newton 1e-5, pga-armijo 2e-3: see above), and
  // the same maximiser as Newton's
  float G[B], g[B * FX_N];
  CHECK_OK(dt_trajopt_eval(s, B, x, af, G, g));
  double gm = 0;
  for (int i = 0; i < B * FX_N; i++) gm = fmax(gm, fabsf(g[i]));
  CHECK(gm < (solver == DT_SOLVER_NEWTON ? 1e-5 : 2e-3), "%s: max |g| %g at the solution",
        dt_solver_name(solver), gm);
  for (int i = 0; i < B * FX_N; i++) CHECK_NEAR(af[i], an_[i], solver == DT_SOLVER_NEWTON ? 0 : 1e-3);
  const char* dname[3] = {"theta", "x", "a_init"};
  for (int dir = 0; dir < 3; dir++) {
    Dirs d;
    fx_dirs(&f, &d, B, 1 << dir, 300 + dir);
    CHECK_OK(dt_trajopt_solve(s, B, x, a0, af, NULL, NULL, NULL));
    double an = fx_backward_dir(s, &f, B, dL, &d, NULL, NULL);
    CHECK(dt_trajopt_implicit_indefinite(s) == 0, "the Hessian at the solution is not negative definite");
    double eps = !smooth ? FD_EPS_ELU : dir == 0 ? 1e-3 : FD_EPS_SMOOTH;
    double fd = fx_fd(sn, &f, B, x, a0, dL, &d, eps);
    double atol = smooth ? FD_ATOL : FD_ATOL_ELU;
    if (fx_verbose())
      printf("  implicit %-10s %-4s %-6s analytic %+.7f fd %+.7f err/tol %.3f (max|g| %.2g)\n",
             dt_solver_name(solver), smooth ? "tanh" : "elu", dname[dir], an, fd,
             fabs(an - fd) / (atol + FD_RTOL * fmax(fabs(an), fabs(fd))), gm);
    // a_init: the converged solution does not depend on the start (an = 0 by construction)
    CHECK(near_rel(an, fd, atol, FD_RTOL), "implicit %s (%s) along %s: %.7g vs fd %.7g",
          dt_solver_name(solver), smooth ? "tanh" : "elu", dname[dir], an, fd);
    free(d.p);
  }
  dt_trajopt_free(s), dt_trajopt_free(sn);
  fx_free(&f);
}

// Newton with conjugate-gradient directions (newton_cg > 0) converges to the full-Hessian
// Newton solution on the strictly concave problem, and its implicit gradients (taken at that
// solution) are the same: CG on a positive definite -H_FF solves the same Newton system
static void test_newton_cg_matches_full_newton(void) {
  enum { B = 2 };
  Fix f;
  fx_init_ex(&f, 5, 3, KAPPA, 1);
  dtTrajoptOpts on = fx_opts(DT_SOLVER_NEWTON, DT_BACKWARD_IMPLICIT, 50, 1.0f);
  dtTrajoptOpts oc = on;
  oc.newton_cg = 40;
  dtTrajopt *sn = NULL, *sc = NULL;
  CHECK_OK(dt_trajopt_new(&f.obj, B, &on, 0, &sn));
  CHECK_OK(dt_trajopt_new(&f.obj, B, &oc, 0, &sc));
  if (!sn || !sc) return;
  float x[B * FX_X], a0[B * FX_N], dL[B * FX_N], an_[B * FX_N], ac[B * FX_N];
  int stn[B], stc[B];
  case_data(B, 13, x, a0, dL);
  CHECK_OK(dt_trajopt_solve(sn, B, x, a0, an_, NULL, NULL, stn));
  CHECK_OK(dt_trajopt_solve(sc, B, x, a0, ac, NULL, NULL, stc));
  for (int b = 0; b < B; b++) CHECK(stc[b] == DT_SOLVE_CONVERGED, "newton-cg status %d", stc[b]);
  // both stop at |Pg| < 1e-4 on a problem with curvature >= 2 kappa: |a - a*| < 1e-4 / 4
  for (int i = 0; i < B * FX_N; i++) CHECK_NEAR(ac[i], an_[i], 1e-4);
  float dxn[B * FX_X], dxc[B * FX_X];
  dt_params_zero_grad(&f.ps);
  CHECK_OK(dt_trajopt_backward(sn, dL, dxn, NULL));
  CHECK_OK(dt_trajopt_backward(sc, dL, dxc, NULL));
  for (int i = 0; i < B * FX_X; i++) CHECK_NEAR(dxc[i], dxn[i], 1e-3 + 1e-3 * fabs(dxn[i]));
  dt_trajopt_free(sn), dt_trajopt_free(sc);
  fx_free(&f);
}

static void test_implicit_vs_fd(void) {
  for (int smooth = 1; smooth >= 0; smooth--) {
    implicit_case(DT_SOLVER_NEWTON, smooth);
    implicit_case(DT_SOLVER_PGA_ARMIJO, smooth);
  }
}

// implicit == unroll to convergence: fixed-step PGA is a contraction near a strict maximum
// (step 0.1 < 2 / |H|), so d a_K / d(theta, x) converges geometrically to the implicit
// derivative and d a_K / d a_init to 0. After 600 iterations the remainder is below float
// round-off of the accumulated sums (~1e-5 relative); tolerance 1e-4 relative + 1e-5.
static void test_implicit_equals_unroll(void) {
  enum { B = 2, K = 600 };
  Fix f;
  fx_init_ex(&f, 5, 3, KAPPA, 0);
  dtTrajoptOpts oi = fx_opts(DT_SOLVER_NEWTON, DT_BACKWARD_IMPLICIT, 50, 1.0f);
  dtTrajoptOpts ou = fx_opts(DT_SOLVER_PGA, DT_BACKWARD_UNROLL, K, 0.1f);
  dtTrajopt *si = NULL, *su = NULL;
  CHECK_OK(dt_trajopt_new(&f.obj, B, &oi, 0, &si));
  CHECK_OK(dt_trajopt_new(&f.obj, B, &ou, 0, &su));
  if (!si || !su) return;
  float x[B * FX_X], a0[B * FX_N], dL[B * FX_N], ai[B * FX_N], au[B * FX_N];
  case_data(B, 13, x, a0, dL);
  CHECK_OK(dt_trajopt_solve(si, B, x, a0, ai, NULL, NULL, NULL));
  CHECK_OK(dt_trajopt_solve(su, B, x, a0, au, NULL, NULL, NULL));
  for (int i = 0; i < B * FX_N; i++) CHECK_NEAR(ai[i], au[i], 1e-5);
  int64_t np = dt_params_numel(&f.ps);
  float* gi = malloc((size_t)np * sizeof(float));
  float dxi[B * FX_X], dxu[B * FX_X], dai[B * FX_N], dau[B * FX_N];
  dt_params_zero_grad(&f.ps);
  CHECK_OK(dt_trajopt_backward(si, dL, dxi, dai));
  fx_save_grads(&f.ps, gi);
  dt_params_zero_grad(&f.ps);
  CHECK_OK(dt_trajopt_backward(su, dL, dxu, dau));
  double maxd, max_saved, max_current;
  fx_grad_diff(&f.ps, gi, &maxd, &max_saved, &max_current);
  double maxg = max_saved;
  if (fx_verbose()) printf("  implicit vs unroll-%d: max |dtheta diff| %.3g of max %.3g\n", K, maxd, maxg);
  CHECK(maxd <= 1e-4 * maxg + 1e-5, "implicit vs unroll-to-convergence: %g (max %g)", maxd, maxg);
  for (int i = 0; i < B * FX_X; i++) CHECK_NEAR(dxi[i], dxu[i], 1e-4 * fabs(dxi[i]) + 1e-5);
  for (int i = 0; i < B * FX_N; i++) CHECK_NEAR(dau[i], 0.0, 1e-5);  // the start is forgotten
  free(gi);
  dt_trajopt_free(si), dt_trajopt_free(su);
  fx_free(&f);
}

int main(void) {
  static const dtTestCase cases[] = {TEST(test_unroll_vs_fd), TEST(test_truncated_vs_fd),
                                     TEST(test_truncated_is_window_unroll),
                                     TEST(test_implicit_vs_fd), TEST(test_newton_cg_matches_full_newton), TEST(test_implicit_equals_unroll)};
  return dt_test_run(cases, (int)(sizeof cases / sizeof cases[0]), "backward");
}
