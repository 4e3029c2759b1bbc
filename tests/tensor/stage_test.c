// SPDX-License-Identifier: MIT
// The weight-gradient stage (src/tensor/stage.c): second-order passes whose Linear weight
// tangents are kept and added later give the same gdot as passes that add them at once, also
// when a slot fills up between passes; rows too many to keep are added directly; discarded rows
// are lost; an untouched stage changes nothing.
#include "tensor/tensor_internal.h"
#include "test.h"

enum { IN = 6, HID = 8, PASSES = 3 };

typedef struct Net {
  dtParams ps;
  dtMLP mlp;
} Net;

static void net_init(Net* n) {
  dt_params_init(&n->ps);
  dtRng rng;
  dt_rng_seed(&rng, 5);
  dtMLPSpec spec = dt_mlp_spec_elu(IN, HID, 2, IN);
  CHECK_OK(dt_mlp_create(&n->mlp, &spec, &n->ps, "f", &rng));
  for (int i = 0; i < n->ps.count; i++) {
    dtTensor* p = n->ps.items[i];
    for (int64_t k = 0; k < p->size; k++) p->val[k] = 0.5f * sinf(0.7f * (float)k + (float)i);
  }
}

// one forward-over-reverse pass of sum(f(f(x))) (each weight used twice) with a tangent on x;
// pass p draws other inputs, so the passes' rows differ
static void pass(Net* n, dtTape* t, int B, int p) {
  float x[3 * IN], u[3 * IN];
  for (int i = 0; i < B * IN; i++) {
    x[i] = 0.3f * cosf(1.3f * (float)(i + 7 * p));
    u[i] = 0.2f * sinf(0.9f * (float)(i + 3 * p));
  }
  dt_tape_reset(t);
  dtTensor* xt = dt_input2(t, B, IN, x, "x");
  CHECK_OK(dt_requires_grad(t, xt));
  CHECK_OK(dt_set_tangent(t, xt, u));
  dtTensor* y = dt_mlp_forward(t, &n->mlp, dt_mlp_forward(t, &n->mlp, xt));
  CHECK_OK(dt_backward(t, dt_sum(t, dt_sum(t, y, 1), 0), NULL));
}

// gdot of every weight after PASSES passes at batch B, with the given stage (NULL: none)
static void run(int B, dtGradStage* stage, int flush, float* out) {
  Net n;
  net_init(&n);
  dtTape* t = dt_tape_new(NULL);
  dt_params_zero_grad(&n.ps);
  if (stage) CHECK_OK(dt_grad_stage_init(stage, &n.ps, 8));
  dt_tape_set_grad_stage(t, stage);
  for (int p = 0; p < PASSES; p++) pass(&n, t, B, p);
  if (stage && flush) dt_grad_stage_flush(stage);
  if (stage && !flush) dt_grad_stage_discard(stage);
  int64_t off = 0;
  for (int i = 0; i < n.ps.count; i++) {
    dtTensor* p = n.ps.items[i];
    if (p->ndim != 2) continue;
    for (int64_t k = 0; k < p->size; k++) out[off + k] = p->gdot ? p->gdot[k] : 0.0f;
    off += p->size;
  }
  if (stage) dt_grad_stage_free(stage);
  dt_tape_free(t);
  dt_params_free(&n.ps);
}

enum { NW = HID * IN + HID * HID + IN * HID };

static float max_rel_diff(const float* a, const float* b) {
  float worst = 0.0f;
  for (int k = 0; k < NW; k++) {
    float d = fabsf(a[k] - b[k]) / (1e-3f + fabsf(b[k]));
    if (d > worst) worst = d;
  }
  return worst;
}

// worst relative difference between PASSES passes at batch B with a stage (flushed or
// discarded at the end) and without one; *norm receives the direct gdot's L1 norm
static float staged_vs_direct(int B, int flush, float* norm) {
  static float direct[NW], staged[NW];
  dtGradStage stage;
  run(B, NULL, 0, direct);
  run(B, &stage, flush, staged);
  *norm = 0;
  for (int k = 0; k < NW; k++) *norm += fabsf(direct[k]);
  return max_rel_diff(staged, direct);
}

static void test_staged_equals_direct(void) {
  // B = 1: 2 rows per use, 4 per pass and weight, 12 in all: the 8-row slots fill up once
  float norm, worst = staged_vs_direct(1, 1, &norm);
  CHECK(worst < 1e-5f, "staged vs direct: %g", (double)worst);  // summation order only
  CHECK(norm > 1e-2f, "the weights received a gradient tangent (%g)", (double)norm);
}

static void test_discarded_rows_are_lost(void) {
  // without the flush the rows of the last, partly filled round never reach gdot
  float norm;
  CHECK(staged_vs_direct(1, 0, &norm) > 1e-2f, "discarding kept rows changed nothing");
}

static void test_many_rows_go_direct(void) {
  // B = 3: 6 rows per use are too many for 8-row slots: added at once, no flush needed
  float norm, worst = staged_vs_direct(3, 0, &norm);
  CHECK(worst == 0.0f, "rows of a large batch were kept (%g)", (double)worst);
}

DT_TEST_MAIN("stage", TEST(test_staged_equals_direct), TEST(test_discarded_rows_are_lost),
             TEST(test_many_rows_go_direct))
