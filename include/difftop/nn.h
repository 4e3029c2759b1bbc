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
// 1-D temporal U-Net (diffusion_policy's ConditionalUnet1D, Chi et al. 2023)

// Most resolutions (entries of dims) of a U-Net.
#define DT_UNET_MAX_LEVELS 4

// The shape of a conditional 1-D U-Net over x [B, in_channels, horizon]:
//   step encoder: sinusoidal(step_dim) -> Linear(step_dim, 4 step_dim) -> Mish -> Linear(-> step_dim)
//   condition c = [step features, cond]; every residual block applies FiLM from Mish(c)
//   down: per level two residual blocks to dims[l], then Conv1d(k3, s2, p1) except at the last
//   mid: two residual blocks at dims[levels - 1]
//   up: per level below the last, the skip of the level above concatenated, two residual blocks
//       to dims[l], then ConvTranspose1d(k4, s2, p1)
//   final: Conv1dBlock(dims[0]) -> 1x1 Conv1d to in_channels
// Residual block (in -> out): Conv1dBlock(in, out) -> scale * h + bias with [scale, bias] =
// Linear(Mish(c)) per channel -> Conv1dBlock(out, out), plus x (1x1 Conv1d when in != out).
// Conv1dBlock = Conv1d(kernel, padding kernel/2) -> GroupNorm(groups) -> Mish.
typedef struct dtUnet1DSpec {
  int in_channels;                // channels of x and of the output (an action's dims)
  int horizon;                    // time axis: must halve levels - 1 times
  int cond_dim;                   // global condition features beside the step's (0: none)
  int levels;                     // resolutions (1..DT_UNET_MAX_LEVELS)
  int dims[DT_UNET_MAX_LEVELS];   // channels per resolution (upstream's down_dims)
  int kernel;                     // odd conv kernel (upstream 5)
  int groups;                     // GroupNorm groups; every dims[l] a multiple (upstream 8)
  int step_dim;                   // diffusion-step embedding, even and >= 4 (upstream dsed 256)
} dtUnet1DSpec;

// Conv1d -> GroupNorm -> Mish ("<name>.block.0" conv, "<name>.block.1" norm).
typedef struct dtConv1dBlock {
  dtTensor *weight, *bias;        // [out, in, kernel], [out]
  dtTensor *gn_weight, *gn_bias;  // [out], [out]
} dtConv1dBlock;

// A residual block with FiLM ("<name>.blocks.{0,1}", ".cond_encoder.1", ".residual_conv").
typedef struct dtResBlock1D {
  int in_ch, out_ch;                  // channels in and out
  dtConv1dBlock block[2];
  dtTensor *cond_weight, *cond_bias;  // [2 out, step_dim + cond_dim], [2 out]: scale, then bias
  dtTensor *res_weight, *res_bias;    // [out, in, 1], [out]; NULL when in == out
} dtResBlock1D;

// A U-Net's parameters (owned by a dtParams set), named as ConditionalUnet1D's state_dict.
typedef struct dtUnet1D {
  dtUnet1DSpec spec;
  dtTensor *step_w1, *step_b1, *step_w2, *step_b2;  // diffusion_step_encoder.1 and .3
  dtResBlock1D down[DT_UNET_MAX_LEVELS][2];         // down_modules.l.{0,1}
  dtTensor *down_w[DT_UNET_MAX_LEVELS];             // down_modules.l.2.conv (NULL at the last)
  dtTensor *down_b[DT_UNET_MAX_LEVELS];
  dtResBlock1D mid[2];                              // mid_modules.{0,1}
  dtResBlock1D up[DT_UNET_MAX_LEVELS - 1][2];       // up_modules.u.{0,1}
  dtTensor *up_w[DT_UNET_MAX_LEVELS - 1];           // up_modules.u.2.conv [d, d, 4]
  dtTensor *up_b[DT_UNET_MAX_LEVELS - 1];
  dtConv1dBlock final_block;                        // final_conv.0
  dtTensor *final_w, *final_b;                      // final_conv.1 [in_channels, dims[0], 1]
} dtUnet1D;

// A CPU-sized spec: dims 64, 128, kernel 5, 8 groups, step_dim 64.
DTAPI dtUnet1DSpec dt_unet1d_spec_default(int in_channels, int horizon, int cond_dim);

// DT_OK if the spec describes a U-Net; otherwise an error that says which setting is wrong.
DTAPI dtStatus dt_unet1d_check(const dtUnet1DSpec* spec);

// Create the parameters in ps under prefix, initialised as PyTorch's defaults (Conv1d, Linear:
// U(+-1/sqrt(fan_in)); ConvTranspose1d: fan_in = out channels * kernel; GroupNorm 1 and 0).
DTAPI dtStatus dt_unet1d_create(dtUnet1D* net, const dtUnet1DSpec* spec, dtParams* ps,
                                const char* prefix, dtRng* rng);

// Bind a U-Net to existing parameters in ps by name.
DTAPI dtStatus dt_unet1d_bind(dtUnet1D* net, const dtUnet1DSpec* spec, const dtParams* ps,
                              const char* prefix);

// The network on the tape: x [B, in_channels, horizon], diffusion steps [B] (host floats) and
// cond [B, cond_dim] (NULL when cond_dim is 0); returns [B, in_channels, horizon].
DTAPI dtTensor* dt_unet1d_forward(dtTape* t, const dtUnet1D* net, dtTensor* x,
                                  const float* steps, dtTensor* cond);

// Tape arena bytes that a forward and backward pass at batch B need (an upper bound).
DTAPI size_t dt_unet1d_tape_bytes(const dtUnet1DSpec* spec, int batch);

//---------------------------------------------------------------------------------------------
// LSTM (torch.nn.LSTM with batch_first, zero initial state)

// Most stacked layers of an LSTM.
#define DT_LSTM_MAX_LAYERS 4

// Most time steps one forward pass unrolls.
#define DT_LSTM_MAX_STEPS 64

// The shape of a stacked LSTM. Per step and layer, with x the step's input (layer 0) or the
// layer below's h: [i, f, g, o] = x W_ih^T + b_ih + h W_hh^T + b_hh (torch's gate order),
// c = sigmoid(f) c + sigmoid(i) tanh(g), h = sigmoid(o) tanh(c).
typedef struct dtLstmSpec {
  int in;      // features per time step
  int hidden;  // width of h and c in every layer
  int layers;  // stacked layers (1..DT_LSTM_MAX_LAYERS)
} dtLstmSpec;

// An LSTM's parameters (owned by a dtParams set), named as torch.nn.LSTM's state_dict.
typedef struct dtLstm {
  dtLstmSpec spec;
  dtTensor* w_ih[DT_LSTM_MAX_LAYERS];  // weight_ih_l<k> [4 hidden, in (k = 0) or hidden]
  dtTensor* w_hh[DT_LSTM_MAX_LAYERS];  // weight_hh_l<k> [4 hidden, hidden]
  dtTensor* b_ih[DT_LSTM_MAX_LAYERS];  // bias_ih_l<k> [4 hidden]
  dtTensor* b_hh[DT_LSTM_MAX_LAYERS];  // bias_hh_l<k> [4 hidden]
} dtLstm;

// DT_OK if the spec describes an LSTM; otherwise an error that says which setting is wrong.
DTAPI dtStatus dt_lstm_check(const dtLstmSpec* spec);

// Create the parameters in ps under prefix, initialised as torch's: U(+-1/sqrt(hidden)).
DTAPI dtStatus dt_lstm_create(dtLstm* net, const dtLstmSpec* spec, dtParams* ps,
                              const char* prefix, dtRng* rng);

// Bind an LSTM to existing parameters in ps by name.
DTAPI dtStatus dt_lstm_bind(dtLstm* net, const dtLstmSpec* spec, const dtParams* ps,
                            const char* prefix);

// The network on the tape over a sequence x [B, steps * in] (step s in columns s in ..
// (s + 1) in - 1, oldest first) from h = c = 0; returns the top layer's last h [B, hidden].
DTAPI dtTensor* dt_lstm_forward(dtTape* t, const dtLstm* net, dtTensor* x, int steps);

// Multiply-adds of one sample's forward pass over steps.
DTAPI double dt_lstm_flops(const dtLstmSpec* spec, int steps);

// Tape arena bytes that a forward and backward pass at batch B over steps need (an upper bound).
DTAPI size_t dt_lstm_tape_bytes(const dtLstmSpec* spec, int batch, int steps);

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
