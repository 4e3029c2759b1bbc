// SPDX-License-Identifier: MIT
// Timers, BLAS thread control and the CPU model string (src/base/system.c).
#define _POSIX_C_SOURCE 200809L
#include <time.h>

// CHECK(cond) with no message expands to an empty format string
#pragma GCC diagnostic ignored "-Wformat-zero-length"
#include "test.h"

static void test_timers(void) {
  uint64_t t0 = dt_time_ns();
  double s0 = dt_time_s();
  uint64_t t0_after = dt_time_ns();  // brackets s0: the reads are not simultaneous
  int monotonic = 1;
  uint64_t prev = t0;
  for (int i = 0; i < 1000; i++) {
    uint64_t t = dt_time_ns();
    monotonic &= t >= prev;
    prev = t;
  }
  CHECK(monotonic);
  struct timespec req = {0, 20 * 1000 * 1000};  // 20 ms
  nanosleep(&req, NULL);
  uint64_t t1 = dt_time_ns();
  double s1 = dt_time_s();
  uint64_t t1_after = dt_time_ns();
  double dns = (double)(t1 - t0) * 1e-9, ds = s1 - s0;
  // a sleep lasts at least what was asked; 5 s bounds it on a loaded machine
  CHECK(dns >= 0.020 && dns < 5.0, "slept %g s by dt_time_ns", dns);
  CHECK(ds >= 0.019 && ds < 5.0, "slept %g s by dt_time_s", ds);
  // the two clocks agree (both read CLOCK_MONOTONIC): s1 - s0 lies within what dt_time_ns saw
  // between the outer pair of reads and the inner pair (plus rounding of the seconds)
  double inner = (double)(t1 - t0_after) * 1e-9, outer = (double)(t1_after - t0) * 1e-9;
  CHECK(ds >= inner - 1e-6 && ds <= outer + 1e-6, "%g s not in [%g, %g]", ds, inner, outer);
}

static void test_threads_and_cpu(void) {
  int n = dt_get_num_threads();
  CHECK(n >= 1, "%d BLAS threads", n);
  dt_set_num_threads(0);  // keeps the setting
  CHECK(dt_get_num_threads() == n);
  dt_set_num_threads(1);
  CHECK(dt_get_num_threads() == 1);
  dt_set_num_threads(n);
  const char* m = dt_cpu_model();
  CHECK(m && m[0] && strchr(m, '\n') == NULL, "cpu model '%s'", m ? m : "(null)");
  CHECK(dt_cpu_model() == m, "the model string is cached");
}

DT_TEST_MAIN("system", TEST(test_timers), TEST(test_threads_and_cpu))
