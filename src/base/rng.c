// SPDX-License-Identifier: MIT
// PCG32 (O'Neill, pcg-random.org, XSH-RR variant) with Box-Muller normals.
#include <math.h>

#include "difftop/base.h"

void dt_rng_seed(dtRng* rng, uint64_t seed) {
  // the standard pcg32 seeding sequence with a fixed stream
  rng->state = 0;
  rng->inc = (0xda3e39cb94b95bdbULL << 1u) | 1u;
  dt_rng_u32(rng);
  rng->state += seed;
  dt_rng_u32(rng);
  rng->has_spare = 0;
  rng->spare = 0;
}

uint32_t dt_rng_u32(dtRng* rng) {
  uint64_t old = rng->state;
  rng->state = old * 6364136223846793005ULL + rng->inc;
  uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
  uint32_t rot = (uint32_t)(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

uint32_t dt_rng_below(dtRng* rng, uint32_t n) {
  if (n <= 1) return 0;
  // rejection of the short tail (Lemire's threshold)
  uint32_t threshold = (uint32_t)(-n) % n;
  for (;;) {
    uint32_t r = dt_rng_u32(rng);
    if (r >= threshold) return r % n;
  }
}

double dt_rng_uniform(dtRng* rng) {
  uint64_t hi = dt_rng_u32(rng) >> 5;  // 27 bits
  uint64_t lo = dt_rng_u32(rng) >> 6;  // 26 bits
  return (double)((hi << 26) | lo) * (1.0 / 9007199254740992.0);
}

float dt_rng_normal(dtRng* rng) {
  if (rng->has_spare) {
    rng->has_spare = 0;
    return rng->spare;
  }
  // Box-Muller on (0,1] x [0,1)
  double u1 = 1.0 - dt_rng_uniform(rng);
  double u2 = dt_rng_uniform(rng);
  double radius = sqrt(-2.0 * log(u1));
  double angle = 6.283185307179586 * u2;
  rng->spare = (float)(radius * sin(angle));
  rng->has_spare = 1;
  return (float)(radius * cos(angle));
}

void dt_rng_fill_uniform(dtRng* rng, float* x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) {
    // u < 1 in double can round up to hi in float: keep the interval half-open
    float v = lo + (hi - lo) * (float)dt_rng_uniform(rng);
    x[i] = v < hi || !(lo < hi) ? v : nextafterf(hi, lo);
  }
}

void dt_rng_fill_normal(dtRng* rng, float* x, size_t n, float mean, float std) {
  for (size_t i = 0; i < n; i++) x[i] = mean + std * dt_rng_normal(rng);
}
