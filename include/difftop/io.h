// SPDX-License-Identifier: MIT
// I/O layer: safetensors weights, YAML configs, CSV logs, PNG/GIF images.
//
// Every reader validates its input completely before trusting it and reports the first problem
// as DT_ERR_FORMAT (malformed content) or DT_ERR_IO (the file system failed) with a message
// that names the file and the tensor, key, line or column that was wrong. Writers of whole
// files (safetensors, YAML, PNG, GIF) are atomic: they write a temporary file in the target's
// directory, fsync it, rename it over the target and fsync the directory, so a crash or an
// error leaves either the old file or the new one, never a mix.
#ifndef DIFFTOP_IO_H
#define DIFFTOP_IO_H

#include <stdint.h>

#include "base.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

//---------------------------------------------------------------------------------------------
// safetensors (huggingface/safetensors format)
//
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON (an object, padded with
// spaces), then the data buffer. Header entries map a tensor name to
// {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} with offsets relative to the
// buffer; "__metadata__" maps strings to strings. Tensors must tile the buffer exactly.

// Largest header a reader accepts, as in the reference implementation.
#define DT_ST_MAX_HEADER 100000000ULL

// Most dimensions a safetensors tensor may have in this reader.
#define DT_ST_MAX_DIMS 8

// Element types of safetensors; DT_DTYPE_F32 is zero so that zeroed entries are float32.
typedef enum dtDtype {
  DT_DTYPE_F32 = 0,
  DT_DTYPE_F64,
  DT_DTYPE_F16,
  DT_DTYPE_BF16,
  DT_DTYPE_I64,
  DT_DTYPE_I32,
  DT_DTYPE_I16,
  DT_DTYPE_I8,
  DT_DTYPE_U64,
  DT_DTYPE_U32,
  DT_DTYPE_U16,
  DT_DTYPE_U8,
  DT_DTYPE_BOOL,
  DT_DTYPE_F8_E4M3,
  DT_DTYPE_F8_E5M2,
  DT_DTYPE_COUNT
} dtDtype;

// Name of a dtype as written in safetensors headers ("F32", "BF16", ...; "?" if out of range).
DTAPI const char* dt_dtype_name(dtDtype dtype);

// Bytes per element of a dtype (0 if out of range).
DTAPI size_t dt_dtype_size(dtDtype dtype);

// Parse a safetensors dtype name; DT_ERR_NOT_FOUND for an unknown one.
DTAPI dtStatus dt_dtype_parse(const char* name, dtDtype* out);

// An opened, fully validated safetensors file.
typedef struct dtSafetensors dtSafetensors;

// Description of one tensor of an opened file (pointers live until dt_st_close).
typedef struct dtStInfo {
  const char* name;                  // tensor name (a PyTorch state_dict key)
  dtDtype dtype;                     // element type
  int ndim;                          // number of dimensions (0 for a scalar)
  int64_t shape[DT_ST_MAX_DIMS];     // extents, row-major
  int64_t numel;                     // product of the extents
  size_t nbytes;                     // numel * dt_dtype_size(dtype)
  const void* data;                  // little-endian bytes; may be unaligned
} dtStInfo;

// Open and validate a safetensors file (memory-mapped); *out is NULL on failure.
DTAPI dtStatus dt_st_open(const char* path, dtSafetensors** out);

// Validate a safetensors image in memory; label names it in messages (NULL: "<memory>").
// copy = 1 copies the bytes; copy = 0 borrows them, and they must outlive the handle.
DTAPI dtStatus dt_st_open_memory(const void* data, size_t size, const char* label, int copy,
                                 dtSafetensors** out);

// Close a file opened by dt_st_open or dt_st_open_memory (NULL is allowed).
DTAPI void dt_st_close(dtSafetensors* st);

// Number of tensors in the file.
DTAPI int dt_st_count(const dtSafetensors* st);

// Tensor i in name order (strcmp), 0 <= i < dt_st_count.
DTAPI dtStatus dt_st_info(const dtSafetensors* st, int i, dtStInfo* info);

// Look a tensor up by name; DT_ERR_NOT_FOUND (naming the file and tensor) if absent.
DTAPI dtStatus dt_st_find(const dtSafetensors* st, const char* name, dtStInfo* info);

// Number of "__metadata__" entries.
DTAPI int dt_st_metadata_count(const dtSafetensors* st);

// Metadata entry i in key order.
DTAPI dtStatus dt_st_metadata_at(const dtSafetensors* st, int i, const char** key,
                                 const char** value);

// Value of a metadata key, or NULL when absent.
DTAPI const char* dt_st_metadata(const dtSafetensors* st, const char* key);

// Label of the file in messages (its path, or the label given to dt_st_open_memory).
DTAPI const char* dt_st_path(const dtSafetensors* st);

// Copy a tensor into dst as float32 after checking its shape is exactly shape[0..ndim).
// F32 is copied bit-exactly; F64, F16 and BF16 are converted; other dtypes are an error.
DTAPI dtStatus dt_st_read_f32(const dtSafetensors* st, const char* name, float* dst, int ndim,
                              const int* shape);

// A tensor to write: data holds numel elements of dtype, row-major, native byte order.
typedef struct dtStEntry {
  const char* name;    // unique, not "__metadata__", valid UTF-8
  dtDtype dtype;       // DT_DTYPE_F32 when zero-initialised
  int ndim;            // 0..DT_ST_MAX_DIMS
  const int* shape;    // ndim extents (>= 0); may be NULL when ndim is 0
  const void* data;    // may be NULL only when the tensor has no elements
} dtStEntry;

// Write a safetensors file atomically. The layout follows the Python library: tensors sorted
// by decreasing element size, then by name; compact JSON header padded with spaces to a
// multiple of 8. meta_kv holds n_meta key/value pairs (key0, value0, key1, value1, ...).
DTAPI dtStatus dt_st_write(const char* path, const dtStEntry* entries, int n,
                           const char* const* meta_kv, int n_meta);

// Flags of dt_st_load_params / dt_params_load_ex.
enum {
  DT_LOAD_ALLOW_MISSING = 1 << 0,     // parameters absent from the file keep their values
  DT_LOAD_ALLOW_UNEXPECTED = 1 << 1   // tensors of the file that match no parameter are ignored
};

// Save parameters (float32, by their names) atomically with optional metadata pairs.
DTAPI dtStatus dt_params_save(const char* path, dtTensor* const* params, int n,
                              const char* const* meta_kv, int n_meta);

// Load parameters by name into p->val: strict (no missing, no unexpected), shapes checked,
// all-or-nothing (nothing is written unless every check passes).
DTAPI dtStatus dt_params_load(const char* path, dtTensor* const* params, int n);

// dt_params_load with DT_LOAD_* flags.
DTAPI dtStatus dt_params_load_ex(const char* path, dtTensor* const* params, int n, int flags);

// Load parameters from an opened file (as dt_params_load_ex).
DTAPI dtStatus dt_st_load_params(const dtSafetensors* st, dtTensor* const* params, int n,
                                 int flags);

//---------------------------------------------------------------------------------------------
// YAML configs
//
// A config is an ordered map from dotted keys to string values. Nested mappings flatten to
// dotted keys ("solver: {iters: 5}" gives "solver.iters" = "5"); a sequence of scalars becomes
// the string "[a, b, c]"; sequences of mappings or sequences, anchors and aliases are
// rejected. Each value remembers the file and line it came from, for messages.

// An ordered key -> string map with the source of each value.
typedef struct dtConfig dtConfig;

// Create an empty config.
DTAPI dtStatus dt_config_new(dtConfig** out);

// Free a config (NULL is allowed).
DTAPI void dt_config_free(dtConfig* cfg);

// Merge a YAML file into cfg: its keys override existing ones (which keep their position).
DTAPI dtStatus dt_config_load_file(dtConfig* cfg, const char* path);

// Merge YAML text into cfg; label names it in messages (NULL: "<string>").
DTAPI dtStatus dt_config_load_string(dtConfig* cfg, const char* text, const char* label);

// Merge dir/default.yaml, then dir/tasks/<task>.yaml (task may be NULL: default only).
DTAPI dtStatus dt_config_load_task(dtConfig* cfg, const char* dir, const char* task);

// Apply a command-line override "key=value" (the value is taken verbatim).
DTAPI dtStatus dt_config_override(dtConfig* cfg, const char* assignment);

// Set key to value; source describes where it came from (NULL: "<set>").
DTAPI dtStatus dt_config_set(dtConfig* cfg, const char* key, const char* value,
                             const char* source);

// Number of keys.
DTAPI int dt_config_count(const dtConfig* cfg);

// Key i in insertion order, its value and its source ("file:line"); outputs may be NULL.
DTAPI dtStatus dt_config_at(const dtConfig* cfg, int i, const char** key, const char** value,
                            const char** source);

// Value of a key, or NULL when absent.
DTAPI const char* dt_config_get(const dtConfig* cfg, const char* key);

// Source of a key's value ("file:line"), or NULL when absent.
DTAPI const char* dt_config_source(const dtConfig* cfg, const char* key);

// Integer value of key (def when absent); DT_ERR_FORMAT naming key and source if malformed.
DTAPI dtStatus dt_config_get_int(const dtConfig* cfg, const char* key, int def, int* out);

// 64-bit integer value of key (def when absent).
DTAPI dtStatus dt_config_get_int64(const dtConfig* cfg, const char* key, int64_t def,
                                   int64_t* out);

// Float value of key (def when absent); "inf"/"nan" are rejected.
DTAPI dtStatus dt_config_get_float(const dtConfig* cfg, const char* key, float def, float* out);

// Double value of key (def when absent); "inf"/"nan" are rejected.
DTAPI dtStatus dt_config_get_double(const dtConfig* cfg, const char* key, double def,
                                    double* out);

// Boolean value of key (def when absent): true/false, yes/no, on/off, 1/0, any case.
DTAPI dtStatus dt_config_get_bool(const dtConfig* cfg, const char* key, int def, int* out);

// String value of key (def when absent); the pointer lives as long as the config entry.
DTAPI dtStatus dt_config_get_str(const dtConfig* cfg, const char* key, const char* def,
                                 const char** out);

// DT_ERR_NOT_FOUND for the first key not in known[0..n), with a "did you mean" suggestion.
DTAPI dtStatus dt_config_check_keys(const dtConfig* cfg, const char* const* known, int n);

// Write the resolved config as YAML (nested mappings, insertion order), atomically.
DTAPI dtStatus dt_config_write(const dtConfig* cfg, const char* path);

//---------------------------------------------------------------------------------------------
// CSV logs

// An append-only CSV file with a fixed header.
typedef struct dtCsv dtCsv;

// CSV open modes.
typedef enum dtCsvMode {
  DT_CSV_CREATE = 0,   // create or truncate, then write the header
  DT_CSV_RESUME = 1    // append; an existing header must match (a torn last row is dropped)
} dtCsvMode;

// Open a CSV log with n column names.
DTAPI dtStatus dt_csv_open(const char* path, const char* const* columns, int n, dtCsvMode mode,
                           dtCsv** out);

// Append a row of n numbers (shortest round-trip text; nan/inf spelled so) and flush.
DTAPI dtStatus dt_csv_row(dtCsv* csv, const double* values);

// Append a row of n text cells (quoted per RFC 4180 when needed; NULL is empty) and flush.
DTAPI dtStatus dt_csv_row_str(dtCsv* csv, const char* const* cells);

// Number of columns.
DTAPI int dt_csv_columns(const dtCsv* csv);

// Close the log (NULL is allowed); DT_ERR_IO if the final flush fails.
DTAPI dtStatus dt_csv_close(dtCsv* csv);

//---------------------------------------------------------------------------------------------
// images

// Write an 8-bit RGB image (w*h*3 bytes, rows top to bottom) as PNG, atomically.
DTAPI dtStatus dt_png_write(const char* path, int w, int h, const uint8_t* rgb);

// An animated GIF being written.
typedef struct dtGif dtGif;

// Start an animated GIF of w x h frames shown delay_cs hundredths of a second each, looping.
DTAPI dtStatus dt_gif_open(const char* path, int w, int h, int delay_cs, dtGif** out);

// Append an RGB frame (w*h*3 bytes), quantised to a fixed 6x7x6 colour cube.
DTAPI dtStatus dt_gif_add_frame(dtGif* gif, const uint8_t* rgb);

// Finish the GIF and move it into place atomically; frees gif even on error.
DTAPI dtStatus dt_gif_close(dtGif* gif);

#ifdef __cplusplus
}
#endif
#endif
