// SPDX-License-Identifier: MIT
// A tiny test harness: each *_test.c defines tests and calls DT_TEST_MAIN.
#ifndef DIFFTOP_TEST_H
#define DIFFTOP_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "difftop/difftop.h"

static int dt_test_failures;

// print an optional failure note (a function, so an empty message is not a format warning)
static inline void dt_test_note(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void dt_test_note(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
}

// Fail the current test (and keep going) unless cond holds.
#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      dt_test_failures++;                                                  \
      fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
      dt_test_note("" __VA_ARGS__);                                        \
      fprintf(stderr, "\n");                                               \
    }                                                                      \
  } while (0)

// Fail unless |a - b| <= tol.
#define CHECK_NEAR(a, b, tol)                                                         \
  CHECK(fabs((double)(a) - (double)(b)) <= (tol), "%.9g vs %.9g (tol %.3g)", (double)(a), \
        (double)(b), (double)(tol))

// Fail unless a status is DT_OK, printing the library's message.
#define CHECK_OK(expr)                                                          \
  do {                                                                          \
    dtStatus st_ = (expr);                                                      \
    CHECK(st_ == DT_OK, "%s: %s", dt_status_string(st_), dt_last_error());      \
  } while (0)

typedef struct dtTestCase {
  const char* name;
  void (*fn)(void);
} dtTestCase;

// Run every test, print one line per test and the closing "N passed, M failed" line.
static inline int dt_test_run(const dtTestCase* cases, int n, const char* suite) {
  int passed = 0, failed = 0;
  for (int i = 0; i < n; i++) {
    int before = dt_test_failures;
    cases[i].fn();
    if (dt_test_failures == before) {
      passed++;
      printf("ok   %s/%s\n", suite, cases[i].name);
    } else {
      failed++;
      printf("FAIL %s/%s\n", suite, cases[i].name);
    }
    fflush(stdout);
  }
  printf("%s: %d passed, %d failed\n", suite, passed, failed);
  return failed ? 1 : 0;
}

#define TEST(name) {#name, name}
#define DT_TEST_MAIN(suite, ...)                                   \
  int main(void) {                                                 \
    static const dtTestCase cases[] = {__VA_ARGS__};               \
    return dt_test_run(cases, (int)(sizeof cases / sizeof cases[0]), suite); \
  }

#endif
