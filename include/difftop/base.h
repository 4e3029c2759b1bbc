// SPDX-License-Identifier: MIT
// Base layer: status codes and messages, allocator hooks, arenas, RNG, timers, threads.
#ifndef DIFFTOP_BASE_H
#define DIFFTOP_BASE_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

//---------------------------------------------------------------------------------------------
// status codes

// Status returned by every fallible public function; DT_OK is zero.
typedef enum dtStatus {
  DT_OK = 0,
  DT_ERR_ARG = 1,           // a NULL pointer or an out-of-range argument
  DT_ERR_SHAPE = 2,         // tensor shapes do not fit together
  DT_ERR_NOMEM = 3,         // an allocation or a fixed-size workspace ran out
  DT_ERR_IO = 4,            // a file could not be opened, read or written
  DT_ERR_FORMAT = 5,        // a file or string is malformed
  DT_ERR_NONFINITE = 6,     // a NaN or Inf where a finite number is required
  DT_ERR_NOT_FOUND = 7,     // an unknown name (task, key, tensor, option)
  DT_ERR_STATE = 8,         // the object is not in a state that allows this call
  DT_ERR_UNSUPPORTED = 9,   // a valid request this build cannot serve
  DT_ERR_INTERNAL = 10      // a bug in difftop: please report it
} dtStatus;

// Short generic text for a status code, e.g. "shape mismatch".
DTAPI const char* dt_status_string(dtStatus status);

// Detailed message of the last error set in this thread ("" if none).
DTAPI const char* dt_last_error(void);

// Code of the last error set in this thread (DT_OK if none or cleared).
DTAPI dtStatus dt_last_status(void);

// Clear this thread's last error.
DTAPI void dt_clear_error(void);

// Record an error for this thread (printf-style message) and return its code.
DTAPI dtStatus dt_error(dtStatus status, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));

//---------------------------------------------------------------------------------------------
// versions

// Library version as DT_VERSION_HEX of the built library.
DTAPI int dt_version(void);

// Library version as a string.
DTAPI const char* dt_version_string(void);

//---------------------------------------------------------------------------------------------
// memory: replaceable allocator, 64-byte aligned

// User allocator hooks; all three set, or all NULL to restore the defaults.
typedef struct dtAllocator {
  void* (*alloc)(size_t size, size_t align, void* user);  // NULL on failure
  void (*free)(void* ptr, void* user);
  void* user;
} dtAllocator;

// Replace the allocator used by difftop (NULL restores malloc-based defaults).
DTAPI void dt_set_allocator(const dtAllocator* allocator);

// Allocate size bytes aligned to 64 bytes; NULL (and a DT_ERR_NOMEM error) on failure.
DTAPI void* dt_malloc(size_t size);

// Allocate and zero size bytes aligned to 64 bytes.
DTAPI void* dt_calloc(size_t count, size_t size);

// Free memory from dt_malloc or dt_calloc (NULL is allowed).
DTAPI void dt_free(void* ptr);

// Number of dt_malloc/dt_calloc calls since the process started (for no-allocation checks).
DTAPI uint64_t dt_alloc_count(void);

//---------------------------------------------------------------------------------------------
// arena: a bump allocator with marks and a high-water mark

// A bump allocator over one block of memory.
typedef struct dtArena {
  unsigned char* base;  // start of the block
  size_t capacity;      // bytes in the block
  size_t used;          // bytes handed out
  size_t high_water;    // largest 'used' ever seen
  int owns;             // 1 if the arena frees 'base' itself
} dtArena;

// Initialise an arena over caller memory (mem may be NULL when capacity is 0).
DTAPI void dt_arena_place(dtArena* arena, void* mem, size_t capacity);

// Initialise an arena that owns a fresh block of capacity bytes.
DTAPI dtStatus dt_arena_init(dtArena* arena, size_t capacity);

// Release an arena's own block (no-op for placed arenas).
DTAPI void dt_arena_destroy(dtArena* arena);

// Allocate bytes aligned to 64 from the arena; NULL (and DT_ERR_NOMEM) when it is full.
DTAPI void* dt_arena_alloc(dtArena* arena, size_t bytes);

// Allocate and zero bytes aligned to 64 from the arena.
DTAPI void* dt_arena_calloc(dtArena* arena, size_t bytes);

// Current position of the arena, to return to with dt_arena_release.
DTAPI size_t dt_arena_mark(const dtArena* arena);

// Return the arena to an earlier mark, freeing everything allocated since.
DTAPI void dt_arena_release(dtArena* arena, size_t mark);

//---------------------------------------------------------------------------------------------
// random numbers: PCG32, the same seed gives the same stream everywhere

// Random generator state (PCG32 plus a cached normal deviate).
typedef struct dtRng {
  uint64_t state;
  uint64_t inc;
  int has_spare;
  float spare;
} dtRng;

// Seed a generator; equal seeds give equal streams on every platform.
DTAPI void dt_rng_seed(dtRng* rng, uint64_t seed);

// Next 32 random bits.
DTAPI uint32_t dt_rng_u32(dtRng* rng);

// Uniform integer in [0, n) without modulo bias (n > 0).
DTAPI uint32_t dt_rng_below(dtRng* rng, uint32_t n);

// Uniform double in [0, 1) with 53 random bits.
DTAPI double dt_rng_uniform(dtRng* rng);

// Standard normal deviate (Box-Muller in double precision).
DTAPI float dt_rng_normal(dtRng* rng);

// Fill x[0..n) with uniform values in [lo, hi).
DTAPI void dt_rng_fill_uniform(dtRng* rng, float* x, size_t n, float lo, float hi);

// Fill x[0..n) with normal values of the given mean and standard deviation.
DTAPI void dt_rng_fill_normal(dtRng* rng, float* x, size_t n, float mean, float std);

//---------------------------------------------------------------------------------------------
// timers and threads

// Monotonic time in seconds from an arbitrary origin.
DTAPI double dt_time_s(void);

// Monotonic time in nanoseconds from an arbitrary origin.
DTAPI uint64_t dt_time_ns(void);

// Set the number of BLAS threads (n <= 0 keeps the current setting).
DTAPI void dt_set_num_threads(int n);

// Number of BLAS threads in use.
DTAPI int dt_get_num_threads(void);

// CPU model name of this machine (from /proc/cpuinfo; "unknown" elsewhere).
DTAPI const char* dt_cpu_model(void);

#ifdef __cplusplus
}
#endif
#endif
