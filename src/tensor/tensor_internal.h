// SPDX-License-Identifier: MIT
// Internal declarations shared by the tape and the op table.
#ifndef DIFFTOP_TENSOR_INTERNAL_H
#define DIFFTOP_TENSOR_INTERNAL_H

#include "difftop/nn.h"
#include "difftop/tensor.h"

// Rows of Linear weight-gradient tangents kept for one product per weight (tensor/stage.c).
typedef struct dtGradStage {
  int count;      // weights with a slot
  int cap;        // rows per slot
  dtTensor** w;   // the weights (2-D parameters)
  float** g;      // [cap, out] adjoint (tangent) rows per slot
  float** x;      // [cap, in] input rows paired with them
  int* rows;      // rows held per slot
} dtGradStage;

struct dtTape {
  dtArena arena;
  dtTensor* last;    // most recent node
  int count;         // nodes since the last reset
  int second_order;  // some input carries a tangent: backward also propagates gdot
  int check_finite;
  int no_param_grads;  // parameters get no gradients (solver iterations)
  int param_gdot_only;  // second order: Linear weights/biases get gdot but not grad (whose
                        // first-order value the caller discards, e.g. the trajopt backward)
  dtGradStage* stage;  // second order: Linear weight gdot rows are kept here (NULL: added)
  dtStatus status;   // first error since the last reset
  char msg[512];
};

// One row of the op table: the forward (values and tangents) beside the backward.
typedef struct dtOpDef {
  const char* name;
  void (*forward)(dtTape* t, dtTensor* y);   // fills y->val (and y->dot when inputs have one)
  void (*backward)(dtTape* t, dtTensor* y);  // adds into the inputs' grad (and gdot)
} dtOpDef;

extern const dtOpDef dt_op_table[DT_OP_COUNT];

// Record the tape's first error (and this thread's last error); returns status.
dtStatus dt_tape_fail(dtTape* t, dtStatus status, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

// A new node on the tape with uninitialised values.
dtTensor* dt_node(dtTape* t, int op, int ndim, const int* shape);

// Floats from the tape arena (zeroed when zero != 0); records an error on failure.
float* dt_node_floats(dtTape* t, int64_t n, int zero);

// Allocate y->dot (zeros) if missing; 0 on failure.
int dt_ensure_dot(dtTape* t, dtTensor* y);

// Allocate x->grad (and x->gdot on second-order tapes) if missing; 0 on failure.
int dt_ensure_grad(dtTape* t, dtTensor* x);

// The adjoint buffers that dt_claim_grad allocated uninitialised (bit mask).
enum { DT_FRESH_GRAD = 1, DT_FRESH_GDOT = 2 };

// As dt_ensure_grad, but buffers it allocates are left uninitialised: returns the DT_FRESH_*
// bits of those (the caller must then overwrite them entirely instead of adding), -1 on failure.
int dt_claim_grad(dtTape* t, dtTensor* x);

// The conv2d op's table entries (tensor/conv.c).
void dt_conv2d_forward(dtTape* t, dtTensor* y);
void dt_conv2d_backward(dtTape* t, dtTensor* y);

// The conv1d and conv_transpose1d ops' table entries (tensor/conv1d.c).
void dt_conv1d_forward(dtTape* t, dtTensor* y);
void dt_conv1d_backward(dtTape* t, dtTensor* y);
void dt_convt1d_forward(dtTape* t, dtTensor* y);
void dt_convt1d_backward(dtTape* t, dtTensor* y);

// Let Linear layers skip the first-order gradient of their parameters on second-order passes
// (on = 1): only the adjoint tangents (gdot) are accumulated. A setting: reset keeps it.
void dt_tape_set_param_gdot_only(dtTape* t, int on);

// Slots of cap_rows rows for every 2-D parameter of ps (nothing is staged until a tape uses it).
dtStatus dt_grad_stage_init(dtGradStage* s, const dtParams* ps, int cap_rows);

// Free the slots.
void dt_grad_stage_free(dtGradStage* s);

// Keep the rows of one use of W (gW' += g'^T x + g^T x'); 0 when W has no slot or the rows
// are too many to be worth keeping (the caller adds them itself).
int dt_grad_stage_linear(dtGradStage* s, int M, const dtTensor* y, const dtTensor* x,
                         const dtTensor* W);

// Add every slot's rows into its weight's gdot (which must be the buffer the rows belong to).
void dt_grad_stage_flush(dtGradStage* s);

// Drop the rows (after a failed pass).
void dt_grad_stage_discard(dtGradStage* s);

// Let the tape's second-order Linear backward keep weight gdot rows in s (NULL: add them).
// A setting: reset keeps it.
void dt_tape_set_grad_stage(dtTape* t, dtGradStage* s);

// 'name' or op#id of a tensor, for messages.
const char* dt_label(const dtTensor* x, char* buf, size_t n);

#endif
