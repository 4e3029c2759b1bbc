// SPDX-License-Identifier: MIT
// Problems with closed-form answers, and the dt_custom op the plain-C objectives go through.
//
//  1. dt_custom itself against central finite differences: value, gradients in a and x, the
//     forward tangent, and the Hessian-vector product with tangents on BOTH a and x (ha and hx,
//     including the mixed Hax / Hxa blocks), composed with a nonlinear op after it so the
//     adjoint tangent (y->gdot) path is exercised too.
//  2. A linear-quadratic problem G(a; x) = -1/2 a'Qa + (Px)'a with Q's symmetric part S
//     positive definite, written in plain C through dt_custom: the solution a* = S^-1 P x and
//     dL/dx = P' S^-1 v (v = dL/da*) in closed form; with an active box the KKT point is found
//     by enumerating active sets (3^n) and dL/dx = P' u with u_F = S_FF^-1 v_F, u = 0 off F.
//  3. The same quadratic built from tape ops with Q and P as parameters: dL/dQ = -1/2 (u a' +
//     a u') and dL/dP = u x', summed over the batch, also in closed form.
// Tolerances: the closed forms are computed in double; the solver's float32 answers carry the
// rounding of an n = 4 solve with cond(S) <= ~20, i.e. ~1e-5 relative; checks use 1e-4.
// pga-armijo is the exception: its Armijo test compares float32 G values, so it stops once a
// gradient step's gain alpha |g|^2 falls below G's rounding (|g| ~ 1e-3 here): its solution and
// gradients are checked to 2e-3 (observed 2e-4 off).
#include "fixture.h"

enum { QN = 4, QX = 3, QB = 3 };

//---------------------------------------------------------------------------------------------
// 1. dt_custom against finite differences

// f(a, x) = sum_i sin(a_i x_{i % nx}) + 1/4 (a.a)^2
static int cf_eval(void* user, int B, const float* a, const float* x, float* f, float* ga,
                   float* gx) {
  (void)user;
  for (int b = 0; b < B; b++) {
    const float* ab = a + b * QN;
    const float* xb = x + b * QX;
    double aa = 0, v = 0;
    for (int i = 0; i < QN; i++) aa += (double)ab[i] * ab[i];
    for (int i = 0; i < QN; i++) v += sin((double)ab[i] * xb[i % QX]);
    f[b] = (float)(v + 0.25 * aa * aa);
    for (int i = 0; i < QN; i++)
      ga[b * QN + i] = (float)(xb[i % QX] * cos((double)ab[i] * xb[i % QX]) + aa * ab[i]);
    if (gx) {
      for (int j = 0; j < QX; j++) gx[b * QX + j] = 0;
      for (int i = 0; i < QN; i++)
        gx[b * QX + i % QX] += (float)(ab[i] * cos((double)ab[i] * xb[i % QX]));
    }
  }
  return 0;
}

static int cf_hvp(void* user, int B, const float* a, const float* x, const float* da,
                  const float* dx, float* ha, float* hx) {
  (void)user;
  for (int b = 0; b < B; b++) {
    const float *ab = a + b * QN, *xb = x + b * QX, *dab = da + b * QN;
    const float* dxb = dx ? dx + b * QX : NULL;
    double aa = 0, ada = 0;
    for (int i = 0; i < QN; i++) aa += (double)ab[i] * ab[i], ada += (double)ab[i] * dab[i];
    if (hx)
      for (int j = 0; j < QX; j++) hx[b * QX + j] = 0;
    for (int i = 0; i < QN; i++) {
      int j = i % QX;
      double s = sin((double)ab[i] * xb[j]), c = cos((double)ab[i] * xb[j]);
      double haa = -(double)xb[j] * xb[j] * s;          // d2/da_i2 of the sine term
      double hax = c - (double)ab[i] * xb[j] * s;       // d2/da_i dx_j
      double hxx = -(double)ab[i] * ab[i] * s;          // d2/dx_j2 (summed over i with i%nx=j)
      double dxj = dxb ? dxb[j] : 0;
      ha[b * QN + i] = (float)(haa * dab[i] + aa * dab[i] + 2 * ab[i] * ada + hax * dxj);
      if (hx) hx[b * QX + j] += (float)(hax * dab[i] + hxx * dxj);
    }
  }
  return 0;
}

static const dtScalarFn cf_fn = {QN, QX, NULL, cf_eval, cf_hvp, "sin-quartic"};

// L = sum_b c_b (y_b + 0.3 y_b^2), y = custom(a, x); tangents on a and x when da/dx given
static double cf_loss(const float* a, const float* x, const float* c, const float* da,
                      const float* dx, const float* seed_dot, float* ga, float* gx, float* hva,
                      float* hvx, float* ydot) {
  dtTape* t = dt_tape_new(NULL);
  dtTensor* at = dt_input2(t, QB, QN, a, "a");
  dtTensor* xt = dt_input2(t, QB, QX, x, "x");
  dt_requires_grad(t, at), dt_requires_grad(t, xt);
  if (da) dt_set_tangent(t, at, da);
  if (dx) dt_set_tangent(t, xt, dx);
  dtTensor* y = dt_custom(t, at, xt, &cf_fn);
  dtTensor* L = dt_add(t, y, dt_scale(t, dt_square(t, y), 0.3f));
  CHECK_OK(dt_backward_ex(t, L, c, seed_dot));
  CHECK_OK(dt_tape_status(t));
  double l = 0;
  for (int b = 0; b < QB; b++) l += (double)c[b] * L->val[b];
  if (ga) memcpy(ga, at->grad, sizeof(float) * QB * QN);
  if (gx) memcpy(gx, xt->grad, sizeof(float) * QB * QX);
  if (hva) memcpy(hva, at->gdot, sizeof(float) * QB * QN);
  if (hvx) memcpy(hvx, xt->gdot, sizeof(float) * QB * QX);
  if (ydot) memcpy(ydot, y->dot, sizeof(float) * QB);
  dt_tape_free(t);
  return l;
}

// ops_test's tolerances and step: eps 1e-2, |ad - fd| <= 1e-3 + 5e-3 max(|ad|, |fd|)
static int op_near(double ad, double fd) { return fabs(ad - fd) <= 1e-3 + 5e-3 * fmax(fabs(ad), fabs(fd)); }

static void test_custom_op_fd(void) {
  dtRng r;
  dt_rng_seed(&r, 21);
  float a[QB * QN], x[QB * QX], c[QB], da[QB * QN], dx[QB * QX], sd[QB];
  dt_rng_fill_uniform(&r, a, QB * QN, -1, 1);
  dt_rng_fill_uniform(&r, x, QB * QX, -1.5f, 1.5f);
  dt_rng_fill_uniform(&r, c, QB, -1, 1);
  dt_rng_fill_uniform(&r, da, QB * QN, -1, 1);
  dt_rng_fill_uniform(&r, dx, QB * QX, -1, 1);
  dt_rng_fill_uniform(&r, sd, QB, -1, 1);
  const double eps = 1e-2;
  // value against the formula in double
  {
    dtTape* t = dt_tape_new(NULL);
    dtTensor* y = dt_custom(t, dt_input2(t, QB, QN, a, "a"), dt_input2(t, QB, QX, x, "x"), &cf_fn);
    CHECK_OK(dt_tape_status(t));
    for (int b = 0; b < QB && y; b++) {
      double aa = 0, v = 0;
      for (int i = 0; i < QN; i++) aa += (double)a[b * QN + i] * a[b * QN + i];
      for (int i = 0; i < QN; i++) v += sin((double)a[b * QN + i] * x[b * QX + i % QX]);
      CHECK_NEAR(y->val[b], v + 0.25 * aa * aa, 1e-6 * (1 + fabs(v)));
    }
    dt_tape_free(t);
  }
  float ga[QB * QN], gx[QB * QX], hva[QB * QN], hvx[QB * QX], ydot[QB];
  cf_loss(a, x, c, da, dx, sd, ga, gx, hva, hvx, ydot);
  // first order: every element of a and x
  float ap[QB * QN], xp[QB * QX];
  for (int k = 0; k < QB * (QN + QX); k++) {
    int isa = k < QB * QN, i = isa ? k : k - QB * QN;
    float* v = isa ? ap : xp;
    double lp, lm;
    memcpy(ap, a, sizeof a), memcpy(xp, x, sizeof x);
    v[i] += (float)eps, lp = cf_loss(ap, xp, c, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    memcpy(ap, a, sizeof a), memcpy(xp, x, sizeof x);
    v[i] -= (float)eps, lm = cf_loss(ap, xp, c, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    double fd = (lp - lm) / (2 * eps), ad = isa ? ga[i] : gx[i];
    CHECK(op_near(ad, fd), "custom dL/d%s[%d]: %g vs fd %g", isa ? "a" : "x", i, ad, fd);
  }
  // forward tangent and Hessian-vector products along (da, dx) jointly, with seed tangent sd:
  // a->gdot = d/de grad_a L(a + e da, x + e dx) + (sd . dL/dy) terms, i.e. the FD of the
  // gradient of L' = sum_b (c_b + e sd_b) (...) -- taken by perturbing c along sd as well
  float gap[QB * QN], gam[QB * QN], gxp[QB * QX], gxm[QB * QX], cp[QB], cm[QB];
  float yv_p[QB], yv_m[QB];
  for (int b = 0; b < QB; b++) cp[b] = c[b] + (float)eps * sd[b], cm[b] = c[b] - (float)eps * sd[b];
  for (int i = 0; i < QB * QN; i++) ap[i] = a[i] + (float)eps * da[i];
  for (int i = 0; i < QB * QX; i++) xp[i] = x[i] + (float)eps * dx[i];
  cf_loss(ap, xp, cp, NULL, NULL, NULL, gap, gxp, NULL, NULL, NULL);
  {
    dtTape* t = dt_tape_new(NULL);
    dtTensor* y = dt_custom(t, dt_input2(t, QB, QN, ap, "a"), dt_input2(t, QB, QX, xp, "x"), &cf_fn);
    memcpy(yv_p, y->val, sizeof yv_p);
    dt_tape_free(t);
  }
  for (int i = 0; i < QB * QN; i++) ap[i] = a[i] - (float)eps * da[i];
  for (int i = 0; i < QB * QX; i++) xp[i] = x[i] - (float)eps * dx[i];
  cf_loss(ap, xp, cm, NULL, NULL, NULL, gam, gxm, NULL, NULL, NULL);
  {
    dtTape* t = dt_tape_new(NULL);
    dtTensor* y = dt_custom(t, dt_input2(t, QB, QN, ap, "a"), dt_input2(t, QB, QX, xp, "x"), &cf_fn);
    memcpy(yv_m, y->val, sizeof yv_m);
    dt_tape_free(t);
  }
  for (int b = 0; b < QB; b++)
    CHECK(op_near(ydot[b], (yv_p[b] - yv_m[b]) / (2 * eps)), "custom JVP[%d]: %g vs fd %g", b,
          (double)ydot[b], (yv_p[b] - yv_m[b]) / (2 * eps));
  for (int i = 0; i < QB * QN; i++)
    CHECK(op_near(hva[i], (gap[i] - gam[i]) / (2 * eps)), "custom HVP a[%d]: %g vs fd %g", i,
          (double)hva[i], (gap[i] - gam[i]) / (2 * eps));
  for (int i = 0; i < QB * QX; i++)
    CHECK(op_near(hvx[i], (gxp[i] - gxm[i]) / (2 * eps)), "custom HVP x[%d]: %g vs fd %g", i,
          (double)hvx[i], (gxp[i] - gxm[i]) / (2 * eps));
}

static int bad_eval(void* u, int B, const float* a, const float* x, float* f, float* ga, float* gx) {
  (void)u, (void)B, (void)a, (void)x, (void)f, (void)ga, (void)gx;
  return 7;
}

// a failing callback becomes a tape error naming the function; wrong shapes are refused
static void test_custom_op_errors(void) {
  dtScalarFn fn = cf_fn;
  fn.eval = bad_eval;
  fn.name = "broken";
  float a[QB * QN] = {0}, x[QB * QX] = {0};
  dtTape* t = dt_tape_new(NULL);
  dtTensor* y = dt_custom(t, dt_input2(t, QB, QN, a, "a"), dt_input2(t, QB, QX, x, "x"), &fn);
  (void)y;
  CHECK(dt_tape_status(t) != DT_OK);
  CHECK(strstr(dt_tape_error(t), "broken") != NULL, "%s", dt_tape_error(t));
  dt_tape_reset(t);
  y = dt_custom(t, dt_input2(t, QB, QN + 1, NULL, "a"), dt_input2(t, QB, QX, x, "x"), &cf_fn);
  CHECK(!y && dt_tape_status(t) == DT_ERR_SHAPE);
  dt_tape_free(t);
}

//---------------------------------------------------------------------------------------------
// 2. the linear-quadratic problem in plain C

typedef struct LQ {
  double Q[QN * QN];  // not symmetric: only S = (Q + Q') / 2 matters
  double P[QN * QX];
} LQ;

static void lq_make(LQ* q, uint64_t seed) {
  dtRng r;
  dt_rng_seed(&r, seed);
  double M[QN * QN];
  for (int i = 0; i < QN * QN; i++) M[i] = dt_rng_normal(&r) * 0.5;
  for (int i = 0; i < QN; i++)
    for (int j = 0; j < QN; j++) {
      double s = i == j ? 1.0 : 0.0;
      for (int k = 0; k < QN; k++) s += M[i * QN + k] * M[j * QN + k];
      q->Q[i * QN + j] = s + (i < j ? 0.3 : i > j ? -0.3 : 0);  // + an antisymmetric part
    }
  for (int i = 0; i < QN * QX; i++) q->P[i] = dt_rng_normal(&r);
}

static double lq_S(const LQ* q, int i, int j) { return 0.5 * (q->Q[i * QN + j] + q->Q[j * QN + i]); }

static int lq_eval(void* user, int B, const float* a, const float* x, float* f, float* ga, float* gx) {
  const LQ* q = user;
  for (int b = 0; b < B; b++) {
    const float *ab = a + b * QN, *xb = x + b * QX;
    double v = 0;
    for (int i = 0; i < QN; i++) {
      double Sa = 0, Px = 0;
      for (int j = 0; j < QN; j++) Sa += lq_S(q, i, j) * ab[j];
      for (int j = 0; j < QX; j++) Px += q->P[i * QX + j] * xb[j];
      v += -0.5 * ab[i] * Sa + Px * ab[i];
      ga[b * QN + i] = (float)(-Sa + Px);
    }
    f[b] = (float)v;
    if (gx)
      for (int j = 0; j < QX; j++) {
        double s = 0;
        for (int i = 0; i < QN; i++) s += q->P[i * QX + j] * ab[i];
        gx[b * QX + j] = (float)s;
      }
  }
  return 0;
}

static int lq_hvp(void* user, int B, const float* a, const float* x, const float* da,
                  const float* dx, float* ha, float* hx) {
  (void)a, (void)x;
  const LQ* q = user;
  for (int b = 0; b < B; b++) {
    for (int i = 0; i < QN; i++) {
      double s = 0;
      for (int j = 0; j < QN; j++) s -= lq_S(q, i, j) * da[b * QN + j];
      if (dx)
        for (int j = 0; j < QX; j++) s += q->P[i * QX + j] * dx[b * QX + j];
      ha[b * QN + i] = (float)s;
    }
    if (hx)
      for (int j = 0; j < QX; j++) {
        double s = 0;
        for (int i = 0; i < QN; i++) s += q->P[i * QX + j] * da[b * QN + i];
        hx[b * QX + j] = (float)s;
      }
  }
  return 0;
}

static dtScalarFn lq_fn;
static dtTensor* lq_value(void* ctx, dtTape* t, dtTensor* a, dtTensor* c) {
  (void)ctx;
  return dt_custom(t, a, c, &lq_fn);
}

// solve the m x m system A y = b in place (Gaussian elimination with partial pivoting)
static void gauss(double* A, double* b, int m) {
  for (int k = 0; k < m; k++) {
    int p = k;
    for (int i = k + 1; i < m; i++)
      if (fabs(A[i * m + k]) > fabs(A[p * m + k])) p = i;
    for (int j = 0; j < m; j++) {
      double tmp = A[k * m + j];
      A[k * m + j] = A[p * m + j], A[p * m + j] = tmp;
    }
    double tb = b[k];
    b[k] = b[p], b[p] = tb;
    for (int i = k + 1; i < m; i++) {
      double f = A[i * m + k] / A[k * m + k];
      for (int j = k; j < m; j++) A[i * m + j] -= f * A[k * m + j];
      b[i] -= f * b[k];
    }
  }
  for (int k = m - 1; k >= 0; k--) {
    for (int j = k + 1; j < m; j++) b[k] -= A[k * m + j] * b[j];
    b[k] /= A[k * m + k];
  }
}

// the box-constrained maximiser by active-set enumeration (KKT: free gradient 0, gradient
// pointing out at active bounds), and u = S_FF^-1 v_F; returns the number of active bounds
static int lq_reference(const LQ* q, const float* x, const float* v, double lo, double hi,
                        double* a, double* u) {
  double Px[QN];
  for (int i = 0; i < QN; i++) {
    Px[i] = 0;
    for (int j = 0; j < QX; j++) Px[i] += q->P[i * QX + j] * x[j];
  }
  int pow3 = 1;
  for (int i = 0; i < QN; i++) pow3 *= 3;
  for (int code = 0; code < pow3; code++) {
    int state[QN], F[QN], m = 0, c = code;
    for (int i = 0; i < QN; i++) state[i] = c % 3, c /= 3;  // 0 free, 1 at lo, 2 at hi
    for (int i = 0; i < QN; i++) {
      if (state[i] == 0) F[m++] = i;
      a[i] = state[i] == 1 ? lo : hi;
    }
    double A[QN * QN], b[QN];
    for (int r = 0; r < m; r++) {
      b[r] = Px[F[r]];
      for (int i = 0; i < QN; i++)
        if (state[i]) b[r] -= lq_S(q, F[r], i) * a[i];
      for (int s = 0; s < m; s++) A[r * m + s] = lq_S(q, F[r], F[s]);
    }
    gauss(A, b, m);
    for (int r = 0; r < m; r++) a[F[r]] = b[r];
    int ok = 1;
    for (int i = 0; i < QN && ok; i++) {
      double g = Px[i];
      for (int j = 0; j < QN; j++) g -= lq_S(q, i, j) * a[j];
      if (state[i] == 0) ok = a[i] > lo && a[i] < hi;
      if (state[i] == 1) ok = g < 0;
      if (state[i] == 2) ok = g > 0;
    }
    if (!ok) continue;
    for (int r = 0; r < m; r++) {
      b[r] = v[F[r]];
      for (int s = 0; s < m; s++) A[r * m + s] = lq_S(q, F[r], F[s]);
    }
    gauss(A, b, m);
    for (int i = 0; i < QN; i++) u[i] = 0;
    for (int r = 0; r < m; r++) u[F[r]] = b[r];
    return QN - m;
  }
  CHECK(0, "no KKT point found");
  return -1;
}

static double sol_tol(dtSolver s) { return s == DT_SOLVER_PGA_ARMIJO ? 2e-3 : 1e-4; }

static void lq_case(dtSolver solver, dtBackward bw, int iters, float step, float box, int want_active) {
  const double tol = sol_tol(solver);
  LQ q;
  lq_make(&q, 31);
  lq_fn = (dtScalarFn){QN, QX, &q, lq_eval, lq_hvp, "lq"};
  dtObjective obj = {QN, QX, NULL, NULL, lq_value, NULL};
  dtTrajoptOpts o = fx_opts(solver, bw, iters, step);
  o.lo = -box, o.hi = box;
  dtTrajopt* s = NULL;
  CHECK_OK(dt_trajopt_new(&obj, QB, &o, 0, &s));
  if (!s) return;
  dtRng r;
  dt_rng_seed(&r, 32);
  float x[QB * QX], a0[QB * QN], v[QB * QN], af[QB * QN], dx[QB * QX];
  int st[QB];
  dt_rng_fill_normal(&r, x, QB * QX, 0, 1);
  dt_rng_fill_uniform(&r, a0, QB * QN, -0.2f, 0.2f);
  dt_rng_fill_normal(&r, v, QB * QN, 0, 1);
  CHECK_OK(dt_trajopt_solve(s, QB, x, a0, af, NULL, NULL, st));
  CHECK_OK(dt_trajopt_backward(s, v, dx, NULL));
  int active = 0;
  for (int b = 0; b < QB; b++) {
    double a[QN], u[QN];
    active += lq_reference(&q, x + b * QX, v + b * QN, -box, box, a, u);
    for (int i = 0; i < QN; i++)
      CHECK(fabs(af[b * QN + i] - a[i]) <= tol * (1 + fabs(a[i])), "%s/%s a*[%d,%d]: %g vs %g",
            dt_solver_name(solver), dt_backward_name(bw), b, i, (double)af[b * QN + i], a[i]);
    for (int j = 0; j < QX; j++) {
      double ref = 0;
      for (int i = 0; i < QN; i++) ref += q.P[i * QX + j] * u[i];
      CHECK(fabs(dx[b * QX + j] - ref) <= tol * (1 + fabs(ref)), "%s/%s dL/dx[%d,%d]: %g vs %g",
            dt_solver_name(solver), dt_backward_name(bw), b, j, (double)dx[b * QX + j], ref);
    }
  }
  CHECK(want_active ? active > 0 : active == 0, "%d active bounds (wanted %s)", active,
        want_active ? "some" : "none");
  dt_trajopt_free(s);
}

static void test_lq_closed_form(void) {
  // interior solution (box 100): Newton converges in one step; implicit and unrolled gradients
  lq_case(DT_SOLVER_NEWTON, DT_BACKWARD_IMPLICIT, 10, 1.0f, 100, 0);
  lq_case(DT_SOLVER_PGA_ARMIJO, DT_BACKWARD_IMPLICIT, 500, 1.0f, 100, 0);
  lq_case(DT_SOLVER_PGA, DT_BACKWARD_UNROLL, 800, 0.1f, 100, 0);  // to convergence: contraction
  // active box (0.4): the KKT point has bounds active
  lq_case(DT_SOLVER_NEWTON, DT_BACKWARD_IMPLICIT, 30, 1.0f, 0.4f, 1);
  lq_case(DT_SOLVER_PGA_ARMIJO, DT_BACKWARD_IMPLICIT, 500, 1.0f, 0.4f, 1);
  lq_case(DT_SOLVER_PGA, DT_BACKWARD_UNROLL, 800, 0.1f, 0.4f, 1);
}

//---------------------------------------------------------------------------------------------
// 3. the quadratic on the tape, with Q and P as parameters

typedef struct TQ {
  dtParams ps;
  dtTensor *Q, *P;
} TQ;

static dtTensor* tq_value(void* ctx, dtTape* t, dtTensor* a, dtTensor* x) {
  TQ* q = ctx;
  dtTensor* quad = dt_sum(t, dt_mul(t, a, dt_linear(t, a, q->Q, NULL)), 1);  // a'Qa
  dtTensor* lin = dt_sum(t, dt_mul(t, a, dt_linear(t, x, q->P, NULL)), 1);   // (Px)'a
  return dt_add(t, dt_scale(t, quad, -0.5f), lin);
}

static void tq_case(dtSolver solver, int iters, float step, float box, int want_active) {
  const double tol = sol_tol(solver);
  LQ ref;
  lq_make(&ref, 41);
  TQ q;
  dt_params_init(&q.ps);
  q.Q = dt_params_add(&q.ps, "Q", 2, (int[]){QN, QN});
  q.P = dt_params_add(&q.ps, "P", 2, (int[]){QN, QX});
  for (int i = 0; i < QN * QN; i++) q.Q->val[i] = (float)ref.Q[i];
  for (int i = 0; i < QN * QX; i++) q.P->val[i] = (float)ref.P[i];
  for (int i = 0; i < QN * QN; i++) ref.Q[i] = q.Q->val[i];  // the float values exactly
  for (int i = 0; i < QN * QX; i++) ref.P[i] = q.P->val[i];
  dtObjective obj = {QN, QX, &q, NULL, tq_value, &q.ps};
  dtTrajoptOpts o = fx_opts(solver, DT_BACKWARD_IMPLICIT, iters, step);
  o.lo = -box, o.hi = box;
  dtTrajopt* s = NULL;
  CHECK_OK(dt_trajopt_new(&obj, QB, &o, 0, &s));
  if (!s) return;
  dtRng r;
  dt_rng_seed(&r, 42);
  float x[QB * QX], a0[QB * QN], v[QB * QN], af[QB * QN], dx[QB * QX];
  dt_rng_fill_normal(&r, x, QB * QX, 0, 1);
  dt_rng_fill_uniform(&r, a0, QB * QN, -0.2f, 0.2f);
  dt_rng_fill_normal(&r, v, QB * QN, 0, 1);
  CHECK_OK(dt_trajopt_solve(s, QB, x, a0, af, NULL, NULL, NULL));
  dt_params_zero_grad(&q.ps);
  CHECK_OK(dt_trajopt_backward(s, v, dx, NULL));
  double gQ[QN * QN] = {0}, gP[QN * QX] = {0};
  int active = 0;
  for (int b = 0; b < QB; b++) {
    double a[QN], u[QN];
    active += lq_reference(&ref, x + b * QX, v + b * QN, -box, box, a, u);
    for (int i = 0; i < QN; i++) {
      CHECK(fabs(af[b * QN + i] - a[i]) <= tol * (1 + fabs(a[i])), "tape LQ a*: %g vs %g",
            (double)af[b * QN + i], a[i]);
      for (int j = 0; j < QN; j++) gQ[i * QN + j] += -0.5 * (u[i] * a[j] + a[i] * u[j]);
      for (int j = 0; j < QX; j++) gP[i * QX + j] += u[i] * x[b * QX + j];
    }
    for (int j = 0; j < QX; j++) {
      double rx = 0;
      for (int i = 0; i < QN; i++) rx += ref.P[i * QX + j] * u[i];
      CHECK(fabs(dx[b * QX + j] - rx) <= tol * (1 + fabs(rx)), "tape LQ dL/dx: %g vs %g",
            (double)dx[b * QX + j], rx);
    }
  }
  CHECK(want_active ? active > 0 : active == 0, "%d active bounds", active);
  for (int i = 0; i < QN * QN; i++)
    CHECK(fabs(q.Q->grad[i] - gQ[i]) <= tol * (1 + fabs(gQ[i])), "%s dL/dQ[%d]: %g vs %g",
          dt_solver_name(solver), i, (double)q.Q->grad[i], gQ[i]);
  for (int i = 0; i < QN * QX; i++)
    CHECK(fabs(q.P->grad[i] - gP[i]) <= tol * (1 + fabs(gP[i])), "%s dL/dP[%d]: %g vs %g",
          dt_solver_name(solver), i, (double)q.P->grad[i], gP[i]);
  dt_trajopt_free(s);
  dt_params_free(&q.ps);
}

static void test_tape_quadratic_param_grads(void) {
  tq_case(DT_SOLVER_NEWTON, 10, 1.0f, 100, 0);
  tq_case(DT_SOLVER_NEWTON, 30, 1.0f, 0.4f, 1);
  tq_case(DT_SOLVER_PGA_ARMIJO, 500, 1.0f, 0.4f, 1);
}

DT_TEST_MAIN("quadratic", TEST(test_custom_op_fd), TEST(test_custom_op_errors),
             TEST(test_lq_closed_form), TEST(test_tape_quadratic_param_grads))
