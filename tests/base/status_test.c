// SPDX-License-Identifier: MIT
// Status codes, per-thread error messages and versions (src/base/status.c).
#include <pthread.h>

// CHECK(cond) with no message expands to an empty format string
#pragma GCC diagnostic ignored "-Wformat-zero-length"
#include "test.h"

static void test_status_strings(void) {
  static const struct {
    dtStatus s;
    const char* text;
  } table[] = {
      {DT_OK, "ok"},
      {DT_ERR_ARG, "invalid argument"},
      {DT_ERR_SHAPE, "shape mismatch"},
      {DT_ERR_NOMEM, "out of memory"},
      {DT_ERR_IO, "input/output error"},
      {DT_ERR_FORMAT, "malformed input"},
      {DT_ERR_NONFINITE, "non-finite value"},
      {DT_ERR_NOT_FOUND, "not found"},
      {DT_ERR_STATE, "invalid state"},
      {DT_ERR_UNSUPPORTED, "unsupported"},
      {DT_ERR_INTERNAL, "internal error"},
  };
  int n = (int)(sizeof table / sizeof table[0]);
  CHECK(n == DT_ERR_INTERNAL + 1, "every code 0..DT_ERR_INTERNAL is listed");
  for (int i = 0; i < n; i++) {
    CHECK((int)table[i].s == i);
    CHECK(strcmp(dt_status_string(table[i].s), table[i].text) == 0, "%d: '%s'", i,
          dt_status_string(table[i].s));
    for (int j = 0; j < i; j++)
      CHECK(strcmp(dt_status_string(table[i].s), dt_status_string(table[j].s)) != 0);
  }
  CHECK(strcmp(dt_status_string((dtStatus)99), "unknown status") == 0);
  CHECK(strcmp(dt_status_string((dtStatus)-1), "unknown status") == 0);
}

static void test_error_formatting(void) {
  dt_clear_error();
  CHECK(dt_last_status() == DT_OK && dt_last_error()[0] == 0);
  dtStatus s = dt_error(DT_ERR_SHAPE, "dt_%s: %d x %s (%.2f)", "add", 42, "[2, 3]", 0.5);
  CHECK(s == DT_ERR_SHAPE);
  CHECK(dt_last_status() == DT_ERR_SHAPE);
  CHECK(strcmp(dt_last_error(), "dt_add: 42 x [2, 3] (0.50)") == 0, "'%s'", dt_last_error());
  // a later error replaces the message
  dt_error(DT_ERR_IO, "could not open %s", "x.bin");
  CHECK(dt_last_status() == DT_ERR_IO && strcmp(dt_last_error(), "could not open x.bin") == 0);
  // very long messages are truncated, not overflowed
  char big[3000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  dt_error(DT_ERR_FORMAT, "%s%s", big, "tail");
  size_t len = strlen(dt_last_error());
  CHECK(len > 500 && len < sizeof big, "length %zu", len);
  dt_clear_error();
  CHECK(dt_last_status() == DT_OK && strcmp(dt_last_error(), "") == 0);
}

static void test_versions(void) {
  CHECK(dt_version() == DT_VERSION_HEX);
  CHECK(strcmp(dt_version_string(), DT_VERSION_STRING) == 0);
  char expect[64];
  snprintf(expect, sizeof expect, "%d.%d.%d", DT_VERSION_MAJOR, DT_VERSION_MINOR,
           DT_VERSION_PATCH);
  CHECK(strncmp(dt_version_string(), expect, strlen(expect)) == 0, "%s",
        dt_version_string());
  CHECK(((dt_version() >> 16) & 0xff) == DT_VERSION_MAJOR);
}

// Two threads set different errors, wait for each other, then read back their own.
typedef struct ThreadArg {
  dtStatus code;
  const char* text;
  pthread_barrier_t* barrier;
  int ok;
} ThreadArg;

static void* error_thread(void* p) {
  ThreadArg* a = p;
  int ok = dt_last_status() == DT_OK && dt_last_error()[0] == 0;  // fresh thread: no error
  for (int round = 0; round < 100; round++) {
    dt_error(a->code, "%s %d", a->text, round);
    pthread_barrier_wait(a->barrier);  // both have written
    char expect[64];
    snprintf(expect, sizeof expect, "%s %d", a->text, round);
    ok &= dt_last_status() == a->code && strcmp(dt_last_error(), expect) == 0;
    pthread_barrier_wait(a->barrier);  // both have read
  }
  a->ok = ok;
  return NULL;
}

static void test_thread_local_errors(void) {
  dt_error(DT_ERR_INTERNAL, "main thread error");
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, 2);
  ThreadArg a = {DT_ERR_IO, "thread A", &barrier, 0};
  ThreadArg b = {DT_ERR_SHAPE, "thread B", &barrier, 0};
  pthread_t ta, tb;
  CHECK(pthread_create(&ta, NULL, error_thread, &a) == 0);
  CHECK(pthread_create(&tb, NULL, error_thread, &b) == 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  pthread_barrier_destroy(&barrier);
  CHECK(a.ok, "thread A saw another thread's error");
  CHECK(b.ok, "thread B saw another thread's error");
  CHECK(dt_last_status() == DT_ERR_INTERNAL &&
        strcmp(dt_last_error(), "main thread error") == 0);
  dt_clear_error();
}

// a message may quote the previous one: dt_error(st, "%s (more)", dt_last_error())
static void test_error_quotes_previous_message(void) {
  dt_error(DT_ERR_FORMAT, "inner problem %d", 7);
  dt_error(dt_last_status(), "%s (from %s)", dt_last_error(), "file.yaml:3");
  CHECK(!strcmp(dt_last_error(), "inner problem 7 (from file.yaml:3)"), "got '%s'", dt_last_error());
  CHECK(dt_last_status() == DT_ERR_FORMAT);
}

DT_TEST_MAIN("status", TEST(test_error_quotes_previous_message), TEST(test_status_strings),
             TEST(test_error_formatting),
             TEST(test_versions), TEST(test_thread_local_errors))
