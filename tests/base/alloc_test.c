// SPDX-License-Identifier: MIT
// Allocator hooks, dt_malloc/dt_calloc/dt_free, dt_alloc_count and the arena
// (src/base/alloc.c).
#include <stdint.h>

// CHECK(cond) with no message expands to an empty format string
#pragma GCC diagnostic ignored "-Wformat-zero-length"
#include "test.h"

//---------------------------------------------------------------------------------------------
// a counting allocator over malloc that records the requested alignment

typedef struct Counter {
  int allocs, frees, fail;
  size_t last_size, last_align;
  unsigned char fill;  // garbage written into fresh blocks (to see that calloc zeroes)
} Counter;

static void* counting_alloc(size_t size, size_t align, void* user) {
  Counter* c = user;
  c->last_size = size;
  c->last_align = align;
  if (c->fail) return NULL;
  size_t padded = (size + align - 1) / align * align;
  void* p = aligned_alloc(align, padded ? padded : align);
  if (p) {
    c->allocs++;
    memset(p, c->fill, size);
  }
  return p;
}

static void counting_free(void* p, void* user) {
  Counter* c = user;
  c->frees++;
  free(p);
}

static void test_default_allocator(void) {
  uint64_t n0 = dt_alloc_count();
  void* a = dt_malloc(1);
  void* b = dt_malloc(1000);
  void* z = dt_malloc(0);
  float* c = dt_calloc(100, sizeof(float));
  CHECK(a && b && c && z);
  CHECK(((uintptr_t)a & 63) == 0 && ((uintptr_t)b & 63) == 0 && ((uintptr_t)c & 63) == 0,
        "dt_malloc must return 64-byte aligned memory");
  int zero = 1;
  for (int i = 0; i < 100; i++) zero &= c[i] == 0.0f;
  CHECK(zero);
  CHECK(dt_alloc_count() == n0 + 4, "alloc count went from %llu to %llu",
        (unsigned long long)n0, (unsigned long long)dt_alloc_count());
  dt_free(a);
  dt_free(b);
  dt_free(c);
  dt_free(z);
  dt_free(NULL);
  CHECK(dt_alloc_count() == n0 + 4, "dt_free must not count");
}

static void test_hooks_and_restore(void) {
  Counter c = {0};
  c.fill = 0xab;
  dtAllocator hooks = {counting_alloc, counting_free, &c};
  dt_set_allocator(&hooks);
  uint64_t n0 = dt_alloc_count();
  void* p = dt_malloc(100);
  CHECK(p && c.allocs == 1 && c.last_size == 100 && c.last_align == 64);
  float* q = dt_calloc(10, sizeof(float));
  CHECK(q && c.allocs == 2 && c.last_size == 10 * sizeof(float));
  int zero = 1;
  for (int i = 0; q && i < 10; i++) zero &= q[i] == 0.0f;
  CHECK(zero, "dt_calloc must zero memory from a user allocator");
  dt_free(p);
  dt_free(q);
  CHECK(c.frees == 2);
  CHECK(dt_alloc_count() == n0 + 2);
  // the tape allocates through the hooks too
  dtTapeOpts o = dt_tape_default_opts();
  o.arena_bytes = 4096;
  dtTape* t = dt_tape_new(&o);
  CHECK(t && c.allocs == 4, "tape + arena: %d allocations", c.allocs - 2);
  dt_tape_free(t);
  CHECK(c.frees == 4);
  // an incomplete set of hooks restores the defaults, as does NULL
  dtAllocator partial = {counting_alloc, NULL, &c};
  dt_set_allocator(&partial);
  void* r = dt_malloc(8);
  CHECK(r && c.allocs == 4, "incomplete hooks must not be used");
  dt_free(r);
  CHECK(c.frees == 4);
  dt_set_allocator(&hooks);
  dt_set_allocator(NULL);
  r = dt_malloc(8);
  CHECK(r && c.allocs == 4, "NULL must restore the default allocator");
  dt_free(r);
  CHECK(c.frees == 4);
}

static void test_allocation_failure(void) {
  Counter c = {0};
  c.fail = 1;
  dtAllocator hooks = {counting_alloc, counting_free, &c};
  dt_set_allocator(&hooks);
  dt_clear_error();
  void* p = dt_malloc(12345);
  CHECK(p == NULL);
  CHECK(dt_last_status() == DT_ERR_NOMEM);
  CHECK(strstr(dt_last_error(), "12345") != NULL, "message: %s", dt_last_error());
  dt_clear_error();
  CHECK(dt_tape_new(NULL) == NULL && dt_last_status() == DT_ERR_NOMEM);
  dtArena a;
  CHECK(dt_arena_init(&a, 1024) == DT_ERR_NOMEM);
  CHECK(dt_param_new("w", 1, (int[]){4}) == NULL);
  dt_set_allocator(NULL);
  // calloc overflow is refused before the allocator is asked
  dt_clear_error();
  c.last_size = 0;
  dt_set_allocator(&hooks);
  c.fail = 0;
  p = dt_calloc(SIZE_MAX / 2, 4);
  CHECK(p == NULL && dt_last_status() == DT_ERR_NOMEM && c.allocs == 0);
  CHECK(strstr(dt_last_error(), "overflow") != NULL, "message: %s", dt_last_error());
  dt_set_allocator(NULL);
  dt_clear_error();
}

//---------------------------------------------------------------------------------------------
// arena

static void test_arena_alignment_and_bump(void) {
  dtArena a;
  CHECK_OK(dt_arena_init(&a, 4096));
  CHECK(a.capacity == 4096 && a.used == 0 && a.high_water == 0 && a.owns == 1);
  unsigned char* p1 = dt_arena_alloc(&a, 1);
  unsigned char* p2 = dt_arena_alloc(&a, 100);
  unsigned char* p3 = dt_arena_alloc(&a, 64);
  unsigned char* p4 = dt_arena_alloc(&a, 0);
  CHECK(p1 && p2 && p3 && p4);
  CHECK(((uintptr_t)p1 & 63) == 0 && ((uintptr_t)p2 & 63) == 0 && ((uintptr_t)p3 & 63) == 0);
  CHECK(p2 == p1 + 64 && p3 == p2 + 128, "bump by rounded sizes");
  CHECK(a.used == 64 + 128 + 64, "used %zu", a.used);
  dt_arena_destroy(&a);
  CHECK(a.base == NULL && a.capacity == 0);
}

static void test_arena_placed_unaligned(void) {
  // an arena over caller memory that is not 64-byte aligned must still hand out 64-byte
  // aligned blocks (dt_arena_alloc's contract), and stay inside the buffer
  static _Alignas(64) unsigned char buf[1024 + 64];
  dtArena a;
  dt_arena_place(&a, buf + 8, 1024);
  CHECK(a.owns == 0 && a.capacity == 1024);
  int aligned = 1, inside = 1, count = 0;
  for (;;) {
    unsigned char* p = dt_arena_alloc(&a, 40);
    if (!p) break;
    count++;
    aligned &= ((uintptr_t)p & 63) == 0;
    inside &= p >= buf + 8 && p + 40 <= buf + 8 + 1024;
  }
  CHECK(aligned, "placed arena returned a block not aligned to 64");
  CHECK(inside, "placed arena returned a block outside its buffer");
  CHECK(count == 15, "%d blocks of 40 bytes from 1024 bytes at offset 8", count);
  dt_arena_destroy(&a);  // must not free caller memory
  // a placed arena over nothing has no room
  dt_arena_place(&a, NULL, 100);
  CHECK(a.capacity == 0 && dt_arena_alloc(&a, 1) == NULL);
}

static void test_arena_marks_and_high_water(void) {
  dtArena a;
  CHECK_OK(dt_arena_init(&a, 1 << 16));
  void* p = dt_arena_alloc(&a, 1000);
  size_t m = dt_arena_mark(&a);
  CHECK(m == 1000);
  void* q = dt_arena_alloc(&a, 5000);
  CHECK(q && a.used > m);
  size_t hw = a.high_water;
  CHECK(hw == a.used && hw >= 6000);
  dt_arena_release(&a, m);
  CHECK(a.used == m && a.high_water == hw, "release keeps the high water");
  void* q2 = dt_arena_alloc(&a, 10);
  CHECK(q2 == q, "memory past the mark is reused");
  dt_arena_release(&a, a.used + 100);  // a mark in the future is ignored
  CHECK(a.used == (size_t)((unsigned char*)q2 - a.base) + 10, "used %zu", a.used);
  dt_arena_release(&a, 0);
  CHECK(a.used == 0 && a.high_water == hw);
  CHECK(dt_arena_alloc(&a, 1) == p, "release to 0 restarts at the base");
  // calloc zeroes memory dirtied by earlier use
  dt_arena_release(&a, 0);
  unsigned char* d = dt_arena_alloc(&a, 256);
  memset(d, 0xff, 256);
  dt_arena_release(&a, 0);
  unsigned char* z = dt_arena_calloc(&a, 256);
  int zero = 1;
  for (int i = 0; i < 256; i++) zero &= z[i] == 0;
  CHECK(z == d && zero);
  dt_arena_destroy(&a);
}

static void test_arena_exhaustion(void) {
  dtArena a;
  CHECK_OK(dt_arena_init(&a, 256));
  CHECK(dt_arena_alloc(&a, 200) != NULL);
  dt_clear_error();
  size_t used = a.used;
  void* p = dt_arena_alloc(&a, 100);  // 200 rounds to 256: nothing is left
  CHECK(p == NULL);
  CHECK(a.used == used, "a failed allocation must not move the arena");
  CHECK(dt_last_status() == DT_ERR_NOMEM);
  const char* msg = dt_last_error();
  CHECK(strstr(msg, "arena full") && strstr(msg, "100") && strstr(msg, "256"),
        "message: %s", msg);
  // exactly the capacity fits; one more byte does not; huge sizes do not wrap around
  dt_arena_release(&a, 0);
  CHECK(dt_arena_alloc(&a, 256) != NULL);
  dt_arena_release(&a, 0);
  CHECK(dt_arena_alloc(&a, 257) == NULL);
  CHECK(dt_arena_alloc(&a, SIZE_MAX) == NULL);
  CHECK(dt_arena_alloc(&a, SIZE_MAX - 32) == NULL);
  CHECK(dt_arena_calloc(&a, 1000) == NULL);
  dt_arena_destroy(&a);
  // an owning arena of capacity 0 is valid and empty
  CHECK_OK(dt_arena_init(&a, 0));
  CHECK(dt_arena_alloc(&a, 1) == NULL);
  dt_arena_destroy(&a);
  CHECK(dt_arena_init(NULL, 10) == DT_ERR_ARG);
  dt_clear_error();
}

DT_TEST_MAIN("alloc", TEST(test_default_allocator), TEST(test_hooks_and_restore),
             TEST(test_allocation_failure), TEST(test_arena_alignment_and_bump),
             TEST(test_arena_placed_unaligned), TEST(test_arena_marks_and_high_water),
             TEST(test_arena_exhaustion))
