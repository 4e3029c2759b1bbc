// SPDX-License-Identifier: MIT
// Replaceable, 64-byte aligned allocation and the arena (bump allocator).
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "difftop/base.h"

#define DT_ALIGN 64

static void* default_alloc(size_t size, size_t align, void* user) {
  (void)user;
  // round up: aligned_alloc needs a multiple of the alignment
  size_t padded = (size + align - 1) / align * align;
  return aligned_alloc(align, padded ? padded : align);
}

static void default_free(void* ptr, void* user) {
  (void)user;
  free(ptr);
}

static dtAllocator allocator = {default_alloc, default_free, NULL};
static atomic_uint_fast64_t alloc_count;

void dt_set_allocator(const dtAllocator* a) {
  if (a && a->alloc && a->free) {
    allocator = *a;
  } else {
    allocator = (dtAllocator){default_alloc, default_free, NULL};
  }
}

void* dt_malloc(size_t size) {
  atomic_fetch_add(&alloc_count, 1);
  void* p = allocator.alloc(size, DT_ALIGN, allocator.user);
  if (!p) dt_error(DT_ERR_NOMEM, "dt_malloc: could not allocate %zu bytes", size);
  return p;
}

void* dt_calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) {
    dt_error(DT_ERR_NOMEM, "dt_calloc: %zu x %zu bytes overflows", count, size);
    return NULL;
  }
  void* p = dt_malloc(count * size);
  if (p) memset(p, 0, count * size);
  return p;
}

void dt_free(void* ptr) {
  if (ptr) allocator.free(ptr, allocator.user);
}

uint64_t dt_alloc_count(void) { return atomic_load(&alloc_count); }

//---------------------------------------------------------------------------------------------
// arena

void dt_arena_place(dtArena* arena, void* mem, size_t capacity) {
  arena->base = mem;
  arena->capacity = mem ? capacity : 0;
  arena->used = 0;
  arena->high_water = 0;
  arena->owns = 0;
}

dtStatus dt_arena_init(dtArena* arena, size_t capacity) {
  if (!arena) return dt_error(DT_ERR_ARG, "dt_arena_init: arena is NULL");
  void* mem = capacity ? dt_malloc(capacity) : NULL;
  if (capacity && !mem) return DT_ERR_NOMEM;
  dt_arena_place(arena, mem, capacity);
  arena->owns = 1;
  return DT_OK;
}

void dt_arena_destroy(dtArena* arena) {
  if (!arena) return;
  if (arena->owns) dt_free(arena->base);
  memset(arena, 0, sizeof *arena);
}

void* dt_arena_alloc(dtArena* arena, size_t bytes) {
  // align the current address (not just the offset: placed memory may be unaligned), then bump
  size_t pad = (size_t)(-((uintptr_t)arena->base + arena->used)) & (size_t)(DT_ALIGN - 1);
  size_t start = arena->used + pad;
  if (start > arena->capacity || bytes > arena->capacity - start) {
    dt_error(DT_ERR_NOMEM, "arena full: %zu bytes requested, %zu of %zu in use", bytes,
             arena->used, arena->capacity);
    return NULL;
  }
  arena->used = start + bytes;
  if (arena->used > arena->high_water) arena->high_water = arena->used;
  return arena->base + start;
}

void* dt_arena_calloc(dtArena* arena, size_t bytes) {
  void* p = dt_arena_alloc(arena, bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

size_t dt_arena_mark(const dtArena* arena) { return arena->used; }

void dt_arena_release(dtArena* arena, size_t mark) {
  if (mark <= arena->used) arena->used = mark;
}
