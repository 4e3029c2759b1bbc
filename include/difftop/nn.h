// SPDX-License-Identifier: MIT
// Neural-network building blocks on the tape: parameter sets, MLPs, init, EMA, clipping, Adam.
#ifndef DIFFTOP_NN_H
#define DIFFTOP_NN_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

//---------------------------------------------------------------------------------------------
// parameter sets

// An ordered set of parameters (owned), addressed by PyTorch state_dict names.
typedef struct dtParams {
  dtTensor** items;
  int count;
  int capacity;
} dtParams;

// Initialise an empty set.
DTAPI void dt_params_init(dtParams* ps);

// Free every parameter in the set and the set's storage.
DTAPI void dt_params_free(dtParams* ps);

// Create a parameter named name (copied) and add it; NULL on failure or a duplicate name.
DTAPI dtTensor* dt_params_add(dtParams* ps, const char* name, int ndim, const int* shape);

// The parameter with this name, or NULL.
DTAPI dtTensor* dt_params_find(const dtParams* ps, const char* name);

// Total number of scalars in the set.
DTAPI int64_t dt_params_numel(const dtParams* ps);

// Zero every gradient (and gradient tangent) and clear the touched flags.
DTAPI void dt_params_zero_grad(dtParams* ps);

// Freeze (0) or unfreeze (1) every parameter whose name starts with prefix ("" = all).
DTAPI void dt_params_set_trainable(dtParams* ps, const char* prefix, int on);

// Global L2 norm of the gradients.
DTAPI double dt_params_grad_norm(const dtParams* ps);

// Scale gradients so their global norm is at most max_norm (torch.nn.utils.clip_grad_norm_);
// returns the norm before clipping.
DTAPI double dt_params_clip_grad_norm(dtParams* ps, double max_norm);

// Make dst a deep copy of src (same names and values), e.g. a target network.
DTAPI dtStatus dt_params_clone(dtParams* dst, const dtParams* src);

// Copy values from src into dst (same names and shapes, any order).
DTAPI dtStatus dt_params_copy_values(dtParams* dst, const dtParams* src);

// Exponential moving average dst <- (1 - tau) dst + tau src (torch lerp_), matched by position.
DTAPI dtStatus dt_params_ema(dtParams* dst, const dtParams* src, float tau);

// 1 if any gradient is NaN or Inf.
DTAPI int dt_params_grad_nonfinite(const dtParams* ps);

//---------------------------------------------------------------------------------------------
// initialisation

// Orthogonal init (torch.nn.init.orthogonal_) of a 2-D+ parameter with gain, from rng.
DTAPI dtStatus dt_init_orthogonal(dtTensor* p, float gain, dtRng* rng);

// Uniform init in [lo, hi).
DTAPI void dt_init_uniform(dtTensor* p, float lo, float hi, dtRng* rng);

// Fill a parameter with a constant.
DTAPI void dt_init_constant(dtTensor* p, float value);

//---------------------------------------------------------------------------------------------
// multilayer perceptrons

// Most Linear layers in one MLP.
#define DT_MLP_MAX_LAYERS 8

// Activations applied after a layer.
typedef enum dtAct {
  DT_ACT_NONE = 0,
  DT_ACT_ELU,
  DT_ACT_RELU,
  DT_ACT_TANH,
  DT_ACT_SIGMOID
} dtAct;

// Weight initialisations.
typedef enum dtInit {
  DT_INIT_ORTHOGONAL = 0,   // TD-MPC: orthogonal weights (gain 1), zero biases
  DT_INIT_TORCH_DEFAULT     // nn.Linear default: U(-1/sqrt(in), 1/sqrt(in)) for W and b
} dtInit;

// The shape of an MLP: Linear layers, each optionally followed by LayerNorm, then an activation.
typedef struct dtMLPSpec {
  int layers;                              // number of Linear layers
  int dims[DT_MLP_MAX_LAYERS + 1];         // dims[0] input, dims[i+1] output of layer i
  int layernorm[DT_MLP_MAX_LAYERS];        // 1: LayerNorm after layer i (before its activation)
  dtAct act[DT_MLP_MAX_LAYERS];            // activation after layer i
  dtInit init;
  int zero_last;                           // 1: last layer's weight and bias start at zero
} dtMLPSpec;

// An MLP whose parameters live in a dtParams set under "<prefix>.<module index>.weight" etc.,
// numbered as in torch.nn.Sequential (Linear, LayerNorm and activations each take an index).
typedef struct dtMLP {
  dtMLPSpec spec;
  dtTensor* weight[DT_MLP_MAX_LAYERS];
  dtTensor* bias[DT_MLP_MAX_LAYERS];
  dtTensor* ln_gain[DT_MLP_MAX_LAYERS];
  dtTensor* ln_bias[DT_MLP_MAX_LAYERS];
} dtMLP;

// An ELU MLP spec in -> hidden... -> out (no activation on the output): TD-MPC's mlp().
DTAPI dtMLPSpec dt_mlp_spec_elu(int in, int hidden, int hidden_layers, int out);

// TD-MPC's Q head: Linear-LayerNorm-Tanh, Linear-ELU, Linear(1).
DTAPI dtMLPSpec dt_mlp_spec_q(int in, int hidden);

// Create an MLP's parameters in ps under prefix and initialise them from rng.
DTAPI dtStatus dt_mlp_create(dtMLP* mlp, const dtMLPSpec* spec, dtParams* ps, const char* prefix,
                             dtRng* rng);

// Bind an MLP to existing parameters in ps (e.g. a cloned target set) by name.
DTAPI dtStatus dt_mlp_bind(dtMLP* mlp, const dtMLPSpec* spec, const dtParams* ps,
                           const char* prefix);

// Apply the MLP to x [.., in] on the tape.
DTAPI dtTensor* dt_mlp_forward(dtTape* t, const dtMLP* mlp, dtTensor* x);

// Floating-point operations of one forward pass per batch row (2 per multiply-add).
DTAPI double dt_mlp_flops(const dtMLPSpec* spec);

//---------------------------------------------------------------------------------------------
// convolutional encoders (pixel observations)

// Most Conv2d layers in one conv net.
#define DT_CONV_MAX_LAYERS 6

// A conv net as TD-MPC's pixel encoder: x * in_scale -> [Conv2d(no padding) -> ReLU] x layers
// -> flatten -> Linear(flat -> out) (no activation). state_dict names follow torch.nn.Sequential
// with the input scaling as module 0 (NormalizeImg) when first_index = 1: convs at 1, 3, 5, 7,
// ReLUs at 2, 4, 6, 8, Flatten at 9 and the Linear at 10.
typedef struct dtConvNetSpec {
  int in_channels, in_h, in_w;          // input [C, H, W]
  int layers;                           // Conv2d layers
  int channels[DT_CONV_MAX_LAYERS];     // output channels of each conv
  int kernel[DT_CONV_MAX_LAYERS];       // square kernel size
  int stride[DT_CONV_MAX_LAYERS];
  int out;                              // Linear output (0: no Linear; the flat features out)
  float in_scale;                       // the input is multiplied by this (1/255), 1: none
  int first_index;                      // Sequential index of the first conv (1: NormalizeImg first)
  float conv_gain;                      // orthogonal gain of the convs (sqrt(2): ReLU gain)
} dtConvNetSpec;

// A conv net's parameters (owned by a dtParams set).
typedef struct dtConvNet {
  dtConvNetSpec spec;
  dtTensor* weight[DT_CONV_MAX_LAYERS];  // [O, C, k, k]
  dtTensor* bias[DT_CONV_MAX_LAYERS];    // [O]
  dtTensor* lin_weight;                  // [out, flat]
  dtTensor* lin_bias;                    // [out]
} dtConvNet;

// TD-MPC's pixel encoder: x/255, Conv(C->ch, k7 s2), Conv(k5 s2), Conv(k3 s2), Conv(k3 s2), each
// with ReLU, flatten, Linear(-> out). For 84x84: 84 -> 39 -> 18 -> 8 -> 3, flat = ch * 9.
DTAPI dtConvNetSpec dt_convnet_spec_tdmpc(int in_channels, int img_size, int channels, int out);

// Spatial extent after the convs (*h, *w) and the flattened feature size (0: the kernels do not fit).
DTAPI int dt_convnet_flat_dim(const dtConvNetSpec* spec, int* h, int* w);

// Create the parameters in ps under prefix and initialise them (orthogonal: convs with
// conv_gain, the Linear with gain 1; zero biases).
DTAPI dtStatus dt_convnet_create(dtConvNet* net, const dtConvNetSpec* spec, dtParams* ps,
                                 const char* prefix, dtRng* rng);

// Bind a conv net to existing parameters in ps by name.
DTAPI dtStatus dt_convnet_bind(dtConvNet* net, const dtConvNetSpec* spec, const dtParams* ps,
                               const char* prefix);

// Apply the net to x [B, C, H, W] (or [B, C*H*W], viewed as images) on the tape: [B, out].
DTAPI dtTensor* dt_convnet_forward(dtTape* t, const dtConvNet* net, dtTensor* x);

// Floating-point operations of one forward pass per image (2 per multiply-add).
DTAPI double dt_convnet_flops(const dtConvNetSpec* spec);

// Random-shift augmentation (DrQ / TD-MPC RandomShiftsAug) of B images x [B, C, H, W] into out
// (same shape, not in place): replicate-pad by pad pixels, then crop H x W at an integer offset
// (dx, dy) in {0..2 pad}^2 drawn per image from rng (dx first):
//   out[b, c, i, j] = x[b, c, clamp(i + dy - pad, 0, H-1), clamp(j + dx - pad, 0, W-1)].
// This is exactly grid_sample(align_corners=False) at the integer shifts of the original.
// shifts, if not NULL, receives (dx, dy) per image [B, 2].
DTAPI dtStatus dt_shift_aug(const float* x, int B, int C, int H, int W, int pad, dtRng* rng,
                            float* out, int* shifts);

//---------------------------------------------------------------------------------------------
// Adam (torch.optim.Adam semantics)

// Adam settings.
typedef struct dtAdamOpts {
  float lr;            // default 1e-3
  float beta1, beta2;  // default 0.9, 0.999
  float eps;           // default 1e-8
  float weight_decay;  // L2 added to the gradient (torch's Adam, not AdamW); default 0
} dtAdamOpts;

// Adam state: moments and a step count per parameter.
typedef struct dtAdam dtAdam;

// Default Adam settings (lr 1e-3, betas 0.9/0.999, eps 1e-8, no weight decay).
DTAPI dtAdamOpts dt_adam_default_opts(void);

// Create Adam over the parameters of ps (the set must outlive the optimizer).
DTAPI dtAdam* dt_adam_new(const dtParams* ps, const dtAdamOpts* opts);

// Free an optimizer.
DTAPI void dt_adam_free(dtAdam* adam);

// One update of every parameter whose gradient was written since the last zero_grad
// (torch skips parameters whose .grad is None).
DTAPI dtStatus dt_adam_step(dtAdam* adam);

// Change the learning rate.
DTAPI void dt_adam_set_lr(dtAdam* adam, float lr);

// Moment buffers of parameter i (for checkpoints); step is the per-parameter step count.
DTAPI dtStatus dt_adam_state(dtAdam* adam, int i, float** exp_avg, float** exp_avg_sq,
                             int64_t** step);

#ifdef __cplusplus
}
#endif
#endif
