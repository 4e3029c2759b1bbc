// SPDX-License-Identifier: MIT
// The NN layer against PyTorch: tests/python/gen_torch_reference.py (run here with the system
// Python that has torch) writes weights, inputs and torch's results to a safetensors file in the
// build directory; this test recomputes them with difftop and compares.
//
// Checked, for the TOLD shapes at batch 4 (dynamics ELU MLP 56-512-512-50, Q head
// 56-512(LN,Tanh)-512(ELU)-1) and the scalar f = sum(r * net(x)): outputs, input gradients,
// parameter gradients, Hessian-vector products d/dx (w . df/dx) and mixed products
// d/dtheta (w . df/dx). Then 5 Adam steps (with and without weight decay), clip_grad_norm_ and
// the EMA (lerp_).
//
// Error measure: max_i |c_i - r_i| / max_i |r_i|, r the float64 torch result (also reported
// against torch float32, and torch float32 against float64, for scale). Elementwise relative
// error is meaningless for entries that cancel to ~0 (sums of 512 terms of both signs), so the
// error is taken relative to the largest magnitude of the tensor. Tolerance 1e-5: float32 sums
// of 512 products have a worst-case relative error of ~512 * 6e-8 = 3e-5 per entry but a typical
// one of sqrt(512) * 6e-8 ~ 1.4e-6; torch's own float32 result sits at the same level.
//
// No torch (no /usr/bin/python3 or no torch module): every test prints SKIP and passes, unless
// DT_REQUIRE_TORCH=1, which turns the skip into a failure. DT_TORCH_PYTHON overrides the
// interpreter.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test.h"

//---------------------------------------------------------------------------------------------
// a test-local safetensors reader (F32 only); to be replaced by the library's dt_st_* reader

typedef struct StFile {
  char* header;     // JSON header, NUL-terminated
  uint8_t* data;    // the byte buffer after the header
  size_t data_len;
  uint8_t* blob;    // whole file
} StFile;

static StFile g_st;
static int g_have_ref = -1;  // -1 not tried, 0 skipped, 1 loaded
static char g_skip_reason[4096];

static int st_open(StFile* st, const char* path) {
  memset(st, 0, sizeof *st);
  FILE* f = fopen(path, "rb");
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  st->blob = malloc((size_t)len + 1);
  if (!st->blob || fread(st->blob, 1, (size_t)len, f) != (size_t)len || len < 8) {
    fclose(f);
    return 0;
  }
  fclose(f);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st->blob[i];
  if (hlen > (uint64_t)len - 8) return 0;
  st->header = malloc(hlen + 1);
  memcpy(st->header, st->blob + 8, hlen);
  st->header[hlen] = 0;
  st->data = st->blob + 8 + hlen;
  st->data_len = (size_t)len - 8 - hlen;
  return 1;
}

// the float32 tensor called name: its data (unaligned-safe copy) and element count; NULL if absent
static float* st_get(const StFile* st, const char* name, int64_t* count) {
  char key[256];
  snprintf(key, sizeof key, "\"%s\":{", name);
  const char* p = strstr(st->header, key);
  if (!p) return NULL;
  const char* end = strchr(p + strlen(key), '}');
  const char* dt = strstr(p, "\"dtype\":\"F32\"");
  const char* sh = strstr(p, "\"shape\":[");
  const char* off = strstr(p, "\"data_offsets\":[");
  if (!end || !dt || !sh || !off || dt > end || sh > end || off > end) return NULL;
  int64_t n = 1;
  const char* s = sh + 9;
  while (*s && *s != ']') {
    n *= strtoll(s, (char**)&s, 10);
    if (*s == ',') s++;
  }
  char* q;
  uint64_t a = strtoull(off + 16, &q, 10);
  uint64_t b = strtoull(q + 1, NULL, 10);
  if (b < a || b > st->data_len || (b - a) != (uint64_t)n * 4) return NULL;
  float* out = malloc((size_t)(n ? n : 1) * sizeof(float));
  memcpy(out, st->data + a, (size_t)n * sizeof(float));
  if (count) *count = n;
  return out;
}

//---------------------------------------------------------------------------------------------
// the reference file: generated once per run into the build directory

static int have_reference(void) {
  if (g_have_ref >= 0) return g_have_ref;
  g_have_ref = 0;
  const char* py = getenv("DT_TORCH_PYTHON");
  if (!py || !*py) py = "/usr/bin/python3";
  struct stat sb;
  if (stat(py, &sb) != 0) {
    snprintf(g_skip_reason, sizeof g_skip_reason, "%s not found", py);
    return 0;
  }
  const char* out = DT_BINARY_DIR "/torch_ref";
  char cmd[3072];
  snprintf(cmd, sizeof cmd, "'%s' '%s/tests/python/gen_torch_reference.py' --out '%s'", py,
           DT_SOURCE_DIR, out);
  int rc = system(cmd);
  int code = rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  if (code == 3) {  // the generator's "torch is not importable"
    snprintf(g_skip_reason, sizeof g_skip_reason, "%s has no torch module", py);
    return 0;
  }
  if (code != 0) {  // torch is there but the generator broke: a failure, not a skip
    snprintf(g_skip_reason, sizeof g_skip_reason, "'%s' failed (exit %d)", cmd, code);
    CHECK(0, "%s", g_skip_reason);
    return 0;
  }
  char path[1024];
  snprintf(path, sizeof path, "%s/torch_ref.safetensors", out);
  if (!st_open(&g_st, path)) {
    snprintf(g_skip_reason, sizeof g_skip_reason, "cannot read %s", path);
    // the generator ran but its output is unusable: that is a failure, not a skip
    CHECK(0, "cannot read %s", path);
    return 0;
  }
  const char* meta = strstr(g_st.header, "\"torch\":\"");
  if (meta) printf("     reference from torch %.*s\n", (int)strcspn(meta + 9, "\""), meta + 9);
  g_have_ref = 1;
  return 1;
}

// SKIP loudly (or fail when DT_REQUIRE_TORCH=1); returns 1 when the test should return
static int skip_without_torch(const char* test) {
  if (have_reference()) return 0;
  const char* req = getenv("DT_REQUIRE_TORCH");
  if (req && !strcmp(req, "1")) {
    CHECK(0, "DT_REQUIRE_TORCH=1 but no torch reference: %s", g_skip_reason);
  } else {
    printf("SKIP %s: no PyTorch reference (%s)\n", test, g_skip_reason);
  }
  return 1;
}

static float* ref(const char* fmt, const char* a, const char* b, int64_t* n) {
  char name[256];
  snprintf(name, sizeof name, fmt, a, b);
  float* v = st_get(&g_st, name, n);
  CHECK(v != NULL, "reference tensor '%s' missing", name);
  return v;
}

// max |c - r| / max |r| (absolute max |c| when r is all zero)
static double rel_err(const float* c, const float* r, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)c[i] - (double)r[i]);
    if (d > num || d != d) num = d;
    if (fabs((double)r[i]) > den) den = fabs((double)r[i]);
  }
  return den > 0 ? num / den : num;
}

static double g_worst[3];  // worst error over everything: C vs f64, C vs f32, torch f32 vs f64

// compare c with ref64 (the tolerance) and ref32 (reported), print one line
static void compare(const char* net, const char* what, const float* c, int64_t n, double tol) {
  int64_t n32 = 0, n64 = 0;
  float* r32 = ref("ref32.%s.%s", net, what, &n32);
  float* r64 = ref("ref64.%s.%s", net, what, &n64);
  if (!r32 || !r64) return;
  CHECK(n32 == n && n64 == n, "%s.%s: %lld elements, torch %lld", net, what, (long long)n,
        (long long)n64);
  if (n32 != n || n64 != n) return;
  double e64 = rel_err(c, r64, n), e32 = rel_err(c, r32, n), t32 = rel_err(r32, r64, n);
  double mx = 0;
  for (int64_t i = 0; i < n; i++) mx = fabs(r64[i]) > mx ? fabs(r64[i]) : mx;
  printf("     %-4s %-22s max|ref| %9.3g  C-vs-f64 %8.2e  C-vs-torch32 %8.2e  torch32-vs-f64 "
         "%8.2e\n", net, what, mx, e64, e32, t32);
  CHECK(e64 <= tol, "%s.%s: error %.3g vs torch float64 above %.1g", net, what, e64, tol);
  if (e64 > g_worst[0]) g_worst[0] = e64;
  if (e32 > g_worst[1]) g_worst[1] = e32;
  if (t32 > g_worst[2]) g_worst[2] = t32;
  free(r32);
  free(r64);
}

//---------------------------------------------------------------------------------------------
// networks

#define TOL_NET 1e-5

static void crosscheck_net(const char* net, dtMLPSpec spec) {
  dtParams ps;
  dt_params_init(&ps);
  dtRng rng;
  dt_rng_seed(&rng, 1);
  dtMLP mlp;
  CHECK_OK(dt_mlp_create(&mlp, &spec, &ps, net, &rng));
  // load torch's weights by state_dict name
  for (int i = 0; i < ps.count; i++) {
    int64_t n = 0;
    float* v = ref("%s.%s", net, ps.items[i]->name + strlen(net) + 1, &n);
    if (!v) continue;
    CHECK(n == ps.items[i]->size, "%s: %lld values, torch %lld", ps.items[i]->name,
          (long long)ps.items[i]->size, (long long)n);
    if (n == ps.items[i]->size) memcpy(ps.items[i]->val, v, (size_t)n * sizeof(float));
    free(v);
  }
  int64_t nx, nw, nr;
  float* x = ref("%s.%s", net, "x", &nx);
  float* w = ref("%s.%s", net, "w", &nw);
  float* r = ref("%s.%s", net, "r", &nr);
  if (!x || !w || !r) goto done;
  int batch = 4, in = spec.dims[0];
  CHECK(nx == (int64_t)batch * in && nw == nx, "input sizes");

  dtTape* t = dt_tape_new(NULL);
  dt_params_zero_grad(&ps);
  dtTensor* xt = dt_input2(t, batch, in, x, "x");
  CHECK_OK(dt_requires_grad(t, xt));
  CHECK_OK(dt_set_tangent(t, xt, w));
  dtTensor* y = dt_mlp_forward(t, &mlp, xt);
  CHECK(y != NULL, "forward: %s", dt_tape_error(t));
  if (y) {
    CHECK(y->size == nr, "output size %lld vs r %lld", (long long)y->size, (long long)nr);
    CHECK_OK(dt_backward(t, y, r));  // f = sum(r * y)
    compare(net, "y", y->val, y->size, TOL_NET);
    compare(net, "gx", xt->grad, xt->size, TOL_NET);
    compare(net, "hvp", xt->gdot, xt->size, TOL_NET);
    for (int i = 0; i < ps.count; i++) {
      char what[128];
      const dtTensor* p = ps.items[i];
      snprintf(what, sizeof what, "grad.%s", p->name + strlen(net) + 1);
      compare(net, what, p->grad, p->size, TOL_NET);
      snprintf(what, sizeof what, "mixed.%s", p->name + strlen(net) + 1);
      compare(net, what, p->gdot, p->size, TOL_NET);
    }
  }
  // first-order only (no tangent): the same gradients, and no second-order work
  dt_tape_reset(t);
  dt_params_zero_grad(&ps);
  xt = dt_input2(t, batch, in, x, "x");
  dt_requires_grad(t, xt);
  y = dt_mlp_forward(t, &mlp, xt);
  if (y) {
    CHECK_OK(dt_backward(t, y, r));
    CHECK(xt->gdot == NULL, "first-order tape allocated gdot");
    compare(net, "gx", xt->grad, xt->size, TOL_NET);
    compare(net, "grad.0.weight", mlp.weight[0]->grad, mlp.weight[0]->size, TOL_NET);
  }
  dt_tape_free(t);
done:
  free(x), free(w), free(r);
  dt_params_free(&ps);
}

static void test_dynamics_mlp(void) {
  if (skip_without_torch("dynamics_mlp")) return;
  crosscheck_net("dyn", dt_mlp_spec_elu(56, 512, 2, 50));
}

static void test_q_head(void) {
  if (skip_without_torch("q_head")) return;
  crosscheck_net("q", dt_mlp_spec_q(56, 512));
}

//---------------------------------------------------------------------------------------------
// optimiser, clipping, EMA

// a parameter set from reference tensors fmt % i, i = 0..n-1
static void params_from_ref(dtParams* ps, const char* fmt, int n) {
  dt_params_init(ps);
  for (int i = 0; i < n; i++) {
    char name[128], idx[16];
    snprintf(idx, sizeof idx, "%d", i);
    snprintf(name, sizeof name, fmt, i);
    int64_t k = 0;
    float* v = st_get(&g_st, name, &k);
    CHECK(v != NULL, "reference tensor '%s' missing", name);
    if (!v) continue;
    int shape[1] = {(int)k};
    char pname[32];
    snprintf(pname, sizeof pname, "p%d", i);
    dtTensor* p = dt_params_add(ps, pname, 1, shape);
    memcpy(p->val, v, (size_t)k * sizeof(float));
    free(v);
  }
}

static double max_abs_diff(const float* a, const float* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (d > m || d != d) m = d;
  }
  return m;
}

static void adam_run(const char* tag, dtAdamOpts o) {
  dtParams ps;
  params_from_ref(&ps, "adam.p0.%d", 2);
  dtAdam* adam = dt_adam_new(&ps, &o);
  double worst = 0, worst_state = 0;
  for (int k = 0; k < 5; k++) {
    dt_params_zero_grad(&ps);
    for (int i = 0; i < ps.count; i++) {
      char name[64];
      snprintf(name, sizeof name, "adam.g.%d.%d", k, i);
      float* g = st_get(&g_st, name, NULL);
      CHECK(g != NULL, "missing %s", name);
      if (!g) continue;
      memcpy(ps.items[i]->grad, g, (size_t)ps.items[i]->size * sizeof(float));
      ps.items[i]->flags |= DT_GRAD_TOUCHED;  // as a backward pass would
      free(g);
    }
    CHECK_OK(dt_adam_step(adam));
    for (int i = 0; i < ps.count; i++) {
      char name[64];
      snprintf(name, sizeof name, "adam.%s.step%d.%d", tag, k, i);
      float* want = st_get(&g_st, name, NULL);
      if (!want) continue;
      double d = max_abs_diff(ps.items[i]->val, want, ps.items[i]->size);
      if (d > worst) worst = d;
      free(want);
    }
  }
  for (int i = 0; i < ps.count; i++) {
    float *m, *v;
    int64_t* step;
    CHECK_OK(dt_adam_state(adam, i, &m, &v, &step));
    CHECK(*step == 5, "step count %lld", (long long)*step);
    char name[64];
    snprintf(name, sizeof name, "adam.%s.exp_avg.%d", tag, i);
    float* want_m = st_get(&g_st, name, NULL);
    snprintf(name, sizeof name, "adam.%s.exp_avg_sq.%d", tag, i);
    float* want_v = st_get(&g_st, name, NULL);
    if (want_m && want_v) {
      double em = rel_err(m, want_m, ps.items[i]->size);
      double ev = rel_err(v, want_v, ps.items[i]->size);
      if (em > worst_state) worst_state = em;
      if (ev > worst_state) worst_state = ev;
    }
    free(want_m), free(want_v);
  }
  // Parameters are O(1) and move by <= 5 lr per step; rounding in the update order
  // (torch: p + (-lr/bc1) * (m / denom)) could cost an ulp (1.2e-7 at 1) per step: 1e-6.
  // Moments: dtAdamOpts holds the betas as float, torch as Python doubles, so 1 - beta2 is
  // 1 - 0.999f = 0.00099998713 here and 0.001 in torch: exp_avg_sq and the bias correction
  // 1 - beta2^t are both 1.29e-5 smaller (relative) than torch's. The two factors cancel in
  // exp_avg_sq / (1 - beta2^t), so the parameters still agree to the last bit (measured 0);
  // the moments themselves are allowed 2e-5 (it matters only for exchanging optimizer state).
  printf("     adam %s: max |p - torch| over 5 steps %.3g; moments rel. error %.3g\n", tag, worst,
         worst_state);
  CHECK(worst <= 1e-6, "adam %s: parameters differ from torch by %.3g", tag, worst);
  CHECK(worst_state <= 2e-5, "adam %s: moments differ from torch by %.3g", tag, worst_state);
  dt_adam_free(adam);
  dt_params_free(&ps);
}

static void test_adam(void) {
  if (skip_without_torch("adam")) return;
  adam_run("A", dt_adam_default_opts());
  dtAdamOpts b = {3e-3f, 0.8f, 0.99f, 1e-6f, 0.1f};
  adam_run("B", b);
}

static void test_clip_grad_norm(void) {
  if (skip_without_torch("clip_grad_norm")) return;
  const char* tags[2] = {"clip", "noclip"};
  for (int c = 0; c < 2; c++) {
    char fmt[64];
    snprintf(fmt, sizeof fmt, "%s.g.%%d", tags[c]);
    dtParams ps;
    params_from_ref(&ps, fmt, 3);
    for (int i = 0; i < ps.count; i++) {
      memcpy(ps.items[i]->grad, ps.items[i]->val, (size_t)ps.items[i]->size * sizeof(float));
      ps.items[i]->flags |= DT_GRAD_TOUCHED;
    }
    float *mx = ref("%s.%s", tags[c], "max_norm", NULL), *nm = ref("%s.%s", tags[c], "norm", NULL);
    if (mx && nm) {
      double norm = dt_params_clip_grad_norm(&ps, mx[0]);
      CHECK_NEAR(norm, nm[0], 1e-6 * nm[0]);
      double worst = 0;
      for (int i = 0; i < ps.count; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.out.%d", tags[c], i);
        float* want = st_get(&g_st, name, NULL);
        if (want) {
          double e = rel_err(ps.items[i]->grad, want, ps.items[i]->size);
          if (e > worst) worst = e;
          free(want);
        }
      }
      printf("     %s (max_norm %g): norm %.7g vs torch %.7g; grads rel. error %.3g\n", tags[c],
             (double)mx[0], norm, (double)nm[0], worst);
      // torch multiplies in float32 by a float32 coefficient, difftop in double: 1 ulp
      CHECK(worst <= 2.5e-7, "clip %s: gradients differ from torch by %.3g", tags[c], worst);
    }
    free(mx), free(nm);
    dt_params_free(&ps);
  }
}

static void test_ema(void) {
  if (skip_without_torch("ema")) return;
  const char* tags[2] = {"ema01", "ema07"};
  for (int c = 0; c < 2; c++) {
    char fmt[64];
    dtParams dst, src;
    snprintf(fmt, sizeof fmt, "%s.dst.%%d", tags[c]);
    params_from_ref(&dst, fmt, 2);
    snprintf(fmt, sizeof fmt, "%s.src.%%d", tags[c]);
    params_from_ref(&src, fmt, 2);
    float* tau = ref("%s.%s", tags[c], "tau", NULL);
    if (tau) {
      CHECK_OK(dt_params_ema(&dst, &src, tau[0]));
      double worst = 0;
      for (int i = 0; i < dst.count; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.out.%d", tags[c], i);
        float* want = st_get(&g_st, name, NULL);
        if (want) {
          double d = rel_err(dst.items[i]->val, want, dst.items[i]->size);
          if (d > worst) worst = d;
          free(want);
        }
      }
      printf("     ema tau %g: max |target - torch lerp_| / max|target| %.3g\n",
             (double)tau[0], worst);
      // torch's lerp_ computes self + tau (end - self) for tau < 0.5 (the formula used here)
      // and end - (end - self)(1 - tau) otherwise, and its vectorised kernel may fuse the
      // multiply-add: 1-2 ulps, i.e. 2.4e-7 relative to the largest value
      CHECK(worst <= 2.4e-7, "ema tau %g: differs by %.3g", (double)tau[0], worst);
    }
    free(tau);
    dt_params_free(&dst);
    dt_params_free(&src);
  }
}

static void test_summary(void) {
  if (skip_without_torch("summary")) return;
  printf("     worst network error: C vs torch-f64 %.3g, C vs torch-f32 %.3g, torch-f32 vs f64 "
         "%.3g (tolerance %.0e vs f64)\n", g_worst[0], g_worst[1], g_worst[2], TOL_NET);
  CHECK(g_worst[0] > 0, "no network comparison ran");
}

DT_TEST_MAIN("nn/torch_crosscheck", TEST(test_dynamics_mlp), TEST(test_q_head), TEST(test_adam),
             TEST(test_clip_grad_norm), TEST(test_ema), TEST(test_summary))
