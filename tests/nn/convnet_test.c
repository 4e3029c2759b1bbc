// SPDX-License-Identifier: MIT
// The pixel encoder (dtConvNet) and the random-shift augmentation.
#include "test.h"

//---------------------------------------------------------------------------------------------
// augmentation

// torch's RandomShiftsAug at given integer shifts, written out as it computes: replicate
// padding, the base grid from linspace(-1 + eps, 1 - eps, H + 2 pad)[:H], the shift 2 s / (H + 2
// pad) added, then grid_sample(align_corners=False, zeros padding) with bilinear weights; all in
// float32 as on the GPU
static float grid_sample_ref(const float* img, int H, int W, int pad, int dx, int dy, int i,
                             int j) {
  int Hp = H + 2 * pad, Wp = W + 2 * pad;
  float eps = 1.0f / (float)Hp;
  float step = (2.0f - 2.0f * eps) / (float)(Hp - 1);
  float gx = (-1.0f + eps + step * (float)j) + (float)dx * (2.0f / (float)Hp);
  float gy = (-1.0f + eps + step * (float)i) + (float)dy * (2.0f / (float)Hp);
  float ix = ((gx + 1.0f) * (float)Wp - 1.0f) / 2.0f, iy = ((gy + 1.0f) * (float)Hp - 1.0f) / 2.0f;
  int x0 = (int)floorf(ix), y0 = (int)floorf(iy);
  float wx = ix - (float)x0, wy = iy - (float)y0;
  float v = 0;
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 2; b++) {
      int yy = y0 + a, xx = x0 + b;
      if (yy < 0 || yy >= Hp || xx < 0 || xx >= Wp) continue;  // zeros padding
      int sy = yy - pad < 0 ? 0 : yy - pad >= H ? H - 1 : yy - pad;  // replicate padding
      int sx = xx - pad < 0 ? 0 : xx - pad >= W ? W - 1 : xx - pad;
      v += (a ? wy : 1 - wy) * (b ? wx : 1 - wx) * img[sy * W + sx];
    }
  return v;
}

static void test_shift_aug_matches_grid_sample(void) {
  enum { B = 40, C = 3, H = 84, W = 84, PAD = 4 };
  static float x[B * C * H * W], y[B * C * H * W];
  static int shifts[2 * B];
  dtRng rng;
  dt_rng_seed(&rng, 7);
  for (int i = 0; i < B * C * H * W; i++) x[i] = (float)dt_rng_below(&rng, 256);
  CHECK_OK(dt_shift_aug(x, B, C, H, W, PAD, &rng, y, shifts));
  double worst = 0;
  int seen[2 * PAD + 1][2] = {{0}};
  for (int b = 0; b < B; b++) {
    int dx = shifts[2 * b], dy = shifts[2 * b + 1];
    CHECK(dx >= 0 && dx <= 2 * PAD && dy >= 0 && dy <= 2 * PAD, "shift (%d, %d)", dx, dy);
    seen[dx][0]++, seen[dy][1]++;
    for (int c = 0; c < C; c++)
      for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
          const float* img = x + ((size_t)b * C + c) * H * W;
          double d = fabs(y[(((size_t)b * C + c) * H + i) * W + j] -
                          grid_sample_ref(img, H, W, PAD, dx, dy, i, j));
          if (d > worst) worst = d;
        }
  }
  // float32 grid arithmetic puts the sample points within ~1e-5 pixel of the integers, so
  // torch's bilinear weights leak <= ~1e-5 * 255 into a neighbour; a wrong shift or
  // border is off by whole pixel values (>= 1 on these random 0..255 images)
  CHECK(worst < 0.05, "largest difference to grid_sample %.3g", worst);
  int covered = 0;
  for (int s = 0; s <= 2 * PAD; s++) covered += seen[s][0] > 0 && seen[s][1] > 0;
  CHECK(covered >= 7, "only %d of 9 shift values drawn in 40 images", covered);
}

static void test_shift_aug_moves_content(void) {
  enum { H = 12, W = 10, PAD = 3 };
  float x[H * W], y[H * W];
  // one bright pixel in the interior on a background that encodes the column (for borders)
  for (int i = 0; i < H; i++)
    for (int j = 0; j < W; j++) x[i * W + j] = (float)j;
  x[6 * W + 5] = 100;
  dtRng rng;
  dt_rng_seed(&rng, 3);
  for (int trial = 0; trial < 30; trial++) {
    int s[2];
    CHECK_OK(dt_shift_aug(x, 1, 1, H, W, PAD, &rng, y, s));
    int ox = s[0] - PAD, oy = s[1] - PAD;  // content moves by (-ox, -oy)
    CHECK(y[(6 - oy) * W + (5 - ox)] == 100, "shift (%d, %d): the pixel did not move there", ox,
          oy);
    int count = 0;
    for (int k = 0; k < H * W; k++) count += y[k] == 100;
    CHECK(count == 1, "shift (%d, %d): %d bright pixels", ox, oy, count);
    // replicate padding: columns shifted in from the left repeat column 0, from the right W-1
    for (int i = 0; i < H; i++) {
      if (i == 6 - oy) continue;
      for (int j = 0; j < W; j++) {
        int want = j + ox < 0 ? 0 : j + ox >= W ? W - 1 : j + ox;
        CHECK(y[i * W + j] == (float)want, "shift (%d, %d): y[%d, %d] = %g, want %d", ox, oy, i,
              j, (double)y[i * W + j], want);
      }
    }
  }
}

static void test_shift_aug_identity_and_fresh_draws(void) {
  enum { B = 8, C = 2, H = 6, W = 6 };
  float x[B * C * H * W], y[B * C * H * W], z[B * C * H * W];
  for (int i = 0; i < B * C * H * W; i++) x[i] = (float)(i % 251);
  dtRng rng;
  dt_rng_seed(&rng, 11);
  // pad 0: the only shift is 0, the identity
  CHECK_OK(dt_shift_aug(x, B, C, H, W, 0, &rng, y, NULL));
  CHECK(memcmp(x, y, sizeof x) == 0, "pad 0 must be the identity");
  // shift (pad, pad) is the identity: find such draws
  int s[2 * B], ident = 0;
  for (int trial = 0; trial < 40; trial++) {
    CHECK_OK(dt_shift_aug(x, B, C, H, W, 2, &rng, y, s));
    for (int b = 0; b < B; b++)
      if (s[2 * b] == 2 && s[2 * b + 1] == 2) {
        ident++;
        CHECK(memcmp(x + b * C * H * W, y + b * C * H * W, sizeof(float) * C * H * W) == 0,
              "a centre shift must leave image %d unchanged", b);
      }
  }
  CHECK(ident > 0, "no centre shift in 320 draws");
  // every call draws new shifts
  int s2[2 * B];
  CHECK_OK(dt_shift_aug(x, B, C, H, W, 4, &rng, y, s));
  CHECK_OK(dt_shift_aug(x, B, C, H, W, 4, &rng, z, s2));
  CHECK(memcmp(s, s2, sizeof s) != 0, "two calls drew the same shifts");
  CHECK(dt_shift_aug(x, B, C, H, W, 4, &rng, x, NULL) == DT_ERR_ARG, "in place is refused");
  CHECK(dt_shift_aug(NULL, B, C, H, W, 4, &rng, y, NULL) == DT_ERR_ARG);
}

//---------------------------------------------------------------------------------------------
// the conv net

static void test_tdmpc_encoder_names_shapes_init(void) {
  dtConvNetSpec s = dt_convnet_spec_tdmpc(9, 84, 32, 50);
  int h, w;
  CHECK(dt_convnet_flat_dim(&s, &h, &w) == 288 && h == 3 && w == 3);
  dtParams ps;
  dt_params_init(&ps);
  dtRng rng;
  dt_rng_seed(&rng, 1);
  dtConvNet net;
  CHECK_OK(dt_convnet_create(&net, &s, &ps, "_encoder", &rng));
  // torch.nn.Sequential(NormalizeImg, Conv, ReLU, Conv, ReLU, Conv, ReLU, Conv, ReLU, Flatten,
  // Linear): convs at 1, 3, 5, 7, the Linear at 10
  const char* names[] = {"_encoder.1.weight", "_encoder.1.bias", "_encoder.3.weight",
                         "_encoder.3.bias", "_encoder.5.weight", "_encoder.5.bias",
                         "_encoder.7.weight", "_encoder.7.bias", "_encoder.10.weight",
                         "_encoder.10.bias"};
  CHECK(ps.count == 10, "%d parameters", ps.count);
  for (int i = 0; i < 10; i++) CHECK(dt_params_find(&ps, names[i]) != NULL, "%s", names[i]);
  dtTensor* w1 = dt_params_find(&ps, "_encoder.1.weight");
  CHECK(w1 && w1->ndim == 4 && w1->shape[0] == 32 && w1->shape[1] == 9 && w1->shape[2] == 7);
  dtTensor* l = dt_params_find(&ps, "_encoder.10.weight");
  CHECK(l && l->shape[0] == 50 && l->shape[1] == 288);
  CHECK(dt_params_numel(&ps) == 32 * 9 * 49 + 32 * 32 * 25 + 2 * 32 * 32 * 9 + 4 * 32 + 50 * 288 + 50,
        "%lld", (long long)dt_params_numel(&ps));
  // orthogonal with gain sqrt(2): the 32 rows of the flattened [32, 441] weight satisfy
  // W W^T = 2 I; the Linear [50, 288] has orthonormal rows (gain 1); biases are zero
  double worst = 0;
  for (int a = 0; a < 32; a++)
    for (int b = 0; b < 32; b++) {
      double d = 0;
      for (int k = 0; k < 441; k++) d += (double)w1->val[a * 441 + k] * w1->val[b * 441 + k];
      worst = fmax(worst, fabs(d - (a == b ? 2.0 : 0.0)));
    }
  CHECK(worst < 1e-4, "conv weight W W^T off 2 I by %g", worst);
  worst = 0;
  for (int a = 0; a < 50; a++)
    for (int b = 0; b < 50; b++) {
      double d = 0;
      for (int k = 0; k < 288; k++) d += (double)l->val[a * 288 + k] * l->val[b * 288 + k];
      worst = fmax(worst, fabs(d - (a == b ? 1.0 : 0.0)));
    }
  CHECK(worst < 1e-4, "linear weight W W^T off I by %g", worst);
  dtTensor* b1 = dt_params_find(&ps, "_encoder.1.bias");
  for (int i = 0; i < 32; i++) CHECK(b1->val[i] == 0);
  // binding finds the same tensors; a wrong spec does not bind
  dtConvNet bound;
  CHECK_OK(dt_convnet_bind(&bound, &s, &ps, "_encoder"));
  CHECK(bound.weight[2] == net.weight[2] && bound.lin_weight == net.lin_weight);
  dtConvNetSpec s2 = dt_convnet_spec_tdmpc(6, 84, 32, 50);
  CHECK(dt_convnet_bind(&bound, &s2, &ps, "_encoder") == DT_ERR_SHAPE, "%s", dt_last_error());
  dtConvNetSpec s3 = dt_convnet_spec_tdmpc(9, 20, 32, 50);  // 20 -> 7 -> 2 -> 0: too small
  CHECK(dt_convnet_create(&bound, &s3, &ps, "_small", &rng) == DT_ERR_SHAPE);
  dt_params_free(&ps);
}

// the net against a direct double-precision evaluation of x/255 -> convs/ReLU -> Linear
static void test_convnet_forward_reference(void) {
  dtConvNetSpec s;
  memset(&s, 0, sizeof s);
  s.in_channels = 2, s.in_h = 9, s.in_w = 9, s.layers = 2;
  s.channels[0] = 3, s.kernel[0] = 3, s.stride[0] = 2;  // 9 -> 4
  s.channels[1] = 2, s.kernel[1] = 2, s.stride[1] = 1;  // 4 -> 3
  s.out = 4, s.in_scale = 1.0f / 255.0f, s.first_index = 1, s.conv_gain = sqrtf(2.0f);
  dtParams ps;
  dt_params_init(&ps);
  dtRng rng;
  dt_rng_seed(&rng, 5);
  dtConvNet net;
  CHECK_OK(dt_convnet_create(&net, &s, &ps, "enc", &rng));
  for (int i = 0; i < ps.count; i++)  // non-zero biases too
    if (ps.items[i]->ndim == 1) dt_init_uniform(ps.items[i], -0.5f, 0.5f, &rng);
  enum { B = 2 };
  float x[B * 2 * 81];
  for (int i = 0; i < B * 2 * 81; i++) x[i] = (float)dt_rng_below(&rng, 256);
  dtTape* t = dt_tape_new(NULL);
  dtTensor* in = dt_input(t, 4, (int[]){B, 2, 9, 9}, x, "img");
  dtTensor* y = dt_convnet_forward(t, &net, in);
  dtTensor* in2 = dt_input2(t, B, 2 * 81, x, "flat");
  dtTensor* y2 = dt_convnet_forward(t, &net, in2);
  CHECK(y && y2 && y->ndim == 2 && y->shape[0] == B && y->shape[1] == 4, "%s", dt_tape_error(t));
  for (int b = 0; b < B && y && y2; b++) {
    double h1[3][4][4], h2[2][3][3];
    for (int o = 0; o < 3; o++)
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
          double a = net.bias[0]->val[o];
          for (int c = 0; c < 2; c++)
            for (int p = 0; p < 3; p++)
              for (int q = 0; q < 3; q++)
                a += x[((b * 2 + c) * 9 + 2 * i + p) * 9 + 2 * j + q] / 255.0 *
                     net.weight[0]->val[((o * 2 + c) * 3 + p) * 3 + q];
          h1[o][i][j] = a > 0 ? a : 0;
        }
    for (int o = 0; o < 2; o++)
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
          double a = net.bias[1]->val[o];
          for (int c = 0; c < 3; c++)
            for (int p = 0; p < 2; p++)
              for (int q = 0; q < 2; q++)
                a += h1[c][i + p][j + q] * net.weight[1]->val[((o * 3 + c) * 2 + p) * 2 + q];
          h2[o][i][j] = a > 0 ? a : 0;
        }
    for (int k = 0; k < 4; k++) {
      double a = net.lin_bias->val[k];
      for (int f = 0; f < 18; f++) a += ((double*)h2)[f] * net.lin_weight->val[k * 18 + f];
      CHECK(fabs(y->val[b * 4 + k] - a) <= 1e-5 * (1 + fabs(a)), "y[%d, %d] = %g, want %g", b,
            k, (double)y->val[b * 4 + k], a);
      CHECK(y2->val[b * 4 + k] == y->val[b * 4 + k], "flat input gives another value");
    }
  }
  // gradients reach every parameter (the folded 1/255 scale included): check one element of
  // the first conv weight against a central difference
  dt_params_zero_grad(&ps);
  CHECK_OK(dt_backward(t, y, NULL));
  double g = net.weight[0]->grad[5];
  float keep = net.weight[0]->val[5], e = 1e-2f;
  double L[2];
  for (int sgn = 0; sgn < 2; sgn++) {
    net.weight[0]->val[5] = keep + (sgn ? -e : e);
    dt_tape_reset(t);
    dtTensor* yy = dt_convnet_forward(t, &net, dt_input(t, 4, (int[]){B, 2, 9, 9}, x, "img"));
    L[sgn] = 0;
    for (int k = 0; yy && k < yy->size; k++) L[sgn] += yy->val[k];
  }
  net.weight[0]->val[5] = keep;
  double fd = (L[0] - L[1]) / (2 * e);
  CHECK(fabs(fd - g) <= 1e-3 + 1e-2 * fabs(g) && fabs(g) > 1e-3, "grad %g, finite diff %g", g,
        fd);
  dt_tape_free(t);
  dt_params_free(&ps);
}

DT_TEST_MAIN("convnet", TEST(test_shift_aug_matches_grid_sample), TEST(test_shift_aug_moves_content),
             TEST(test_shift_aug_identity_and_fresh_draws),
             TEST(test_tdmpc_encoder_names_shapes_init), TEST(test_convnet_forward_reference))
