// SPDX-License-Identifier: MIT
// Image output: PNG through libpng (when built with it) and animated GIF with our own encoder.
//
// The GIF encoder is self-contained (LZW, a fixed 6x7x6 colour cube, ~150 lines), which saves
// a dependency on giflib: quantising to a fixed cube is what rollout videos and plots need,
// and the output decodes in every browser and in PIL.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"

#ifdef DT_HAVE_PNG
#include <png.h>
#endif

#define DT_IMAGE_MAX_SIDE 16384

static dtStatus check_size(const char* path, int w, int h, const void* rgb) {
  if (!path) return dt_error(DT_ERR_ARG, "image: path is NULL");
  if (w <= 0 || h <= 0 || w > DT_IMAGE_MAX_SIDE || h > DT_IMAGE_MAX_SIDE)
    return dt_error(DT_ERR_ARG, "%s: image size %dx%d out of range (1..%d)", path, w, h,
                    DT_IMAGE_MAX_SIDE);
  if (!rgb) return dt_error(DT_ERR_ARG, "%s: pixels are NULL", path);
  return DT_OK;
}

//---------------------------------------------------------------------------------------------
// PNG

#ifdef DT_HAVE_PNG
// libpng reports errors through longjmp; the write callbacks feed our atomic file
static void png_write_cb(png_structp png, png_bytep data, size_t n) {
  dt_atomic_write((dtAtomicFile*)png_get_io_ptr(png), data, n);
}

static void png_flush_cb(png_structp png) { (void)png; }

dtStatus dt_png_write(const char* path, int w, int h, const uint8_t* rgb) {
  dtStatus s = check_size(path, w, h, rgb);
  if (s) return s;
  dtAtomicFile af;
  if ((s = dt_atomic_begin(&af, path))) return s;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!png || !info) {
    png_destroy_write_struct(&png, NULL);
    dt_atomic_abort(&af);
    return dt_error(DT_ERR_NOMEM, "%s: libpng could not start", path);
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    dt_atomic_abort(&af);
    return dt_error(DT_ERR_IO, "%s: libpng failed to encode the image", path);
  }
  png_set_write_fn(png, &af, png_write_cb, png_flush_cb);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * (size_t)w * 3));
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return dt_atomic_commit(&af);
}
#else
dtStatus dt_png_write(const char* path, int w, int h, const uint8_t* rgb) {
  dtStatus s = check_size(path, w, h, rgb);
  if (s) return s;
  return dt_error(DT_ERR_UNSUPPORTED, "%s: this build has no PNG support (libpng)", path);
}
#endif

//---------------------------------------------------------------------------------------------
// GIF

#define GIF_HASH 8192  // open-addressing table of (prefix, byte) -> code, > 4096 entries

struct dtGif {
  dtAtomicFile af;
  int w, h, delay;
  uint8_t* index;       // one frame of palette indices
  int32_t* keys;        // hash keys, -1 when empty
  uint16_t* codes;      // hash values
  uint8_t block[256];   // a sub-block being filled (block[0] is its length)
  uint32_t bits;        // pending bits
  int nbits;
};

// palette entry of an RGB colour: 6 reds x 7 greens x 6 blues, rounded to the nearest level
static uint8_t cube_index(const uint8_t* p) {
  int r = (p[0] * 5 + 127) / 255, g = (p[1] * 6 + 127) / 255, b = (p[2] * 5 + 127) / 255;
  return (uint8_t)((r * 7 + g) * 6 + b);
}

static void put(dtGif* g, const void* data, size_t n) { dt_atomic_write(&g->af, data, n); }

static void put_u16(dtGif* g, int v) {
  uint8_t b[2] = {(uint8_t)(v & 0xff), (uint8_t)((v >> 8) & 0xff)};
  put(g, b, 2);
}

static void flush_block(dtGif* g) {
  if (g->block[0]) put(g, g->block, (size_t)g->block[0] + 1);
  g->block[0] = 0;
}

static void put_code(dtGif* g, unsigned code, int size) {
  g->bits |= (uint32_t)code << g->nbits;
  g->nbits += size;
  while (g->nbits >= 8) {
    g->block[1 + g->block[0]++] = (uint8_t)(g->bits & 0xff);
    if (g->block[0] == 255) flush_block(g);
    g->bits >>= 8;
    g->nbits -= 8;
  }
}

dtStatus dt_gif_open(const char* path, int w, int h, int delay_cs, dtGif** out) {
  if (!out) return dt_error(DT_ERR_ARG, "dt_gif_open: out is NULL");
  *out = NULL;
  dtStatus s = check_size(path, w, h, "");
  if (s) return s;
  if (w > 65535 || h > 65535 || delay_cs < 0 || delay_cs > 65535)
    return dt_error(DT_ERR_ARG, "%s: GIF size or delay out of range", path);
  dtGif* g = dt_calloc(1, sizeof *g);
  if (!g) return DT_ERR_NOMEM;
  g->w = w;
  g->h = h;
  g->delay = delay_cs;
  g->index = dt_malloc((size_t)w * (size_t)h);
  g->keys = dt_malloc(GIF_HASH * sizeof *g->keys);
  g->codes = dt_malloc(GIF_HASH * sizeof *g->codes);
  if (!g->index || !g->keys || !g->codes) {
    dt_free(g->index);
    dt_free(g->keys);
    dt_free(g->codes);
    dt_free(g);
    return DT_ERR_NOMEM;
  }
  if ((s = dt_atomic_begin(&g->af, path))) {
    dt_free(g->index);
    dt_free(g->keys);
    dt_free(g->codes);
    dt_free(g);
    return s;
  }
  // header, screen with a 256-entry global palette, loop forever
  put(g, "GIF89a", 6);
  put_u16(g, w);
  put_u16(g, h);
  uint8_t screen[3] = {0xF7, 0, 0};
  put(g, screen, 3);
  uint8_t pal[256 * 3] = {0};
  for (int r = 0; r < 6; r++)
    for (int gg = 0; gg < 7; gg++)
      for (int b = 0; b < 6; b++) {
        int i = (r * 7 + gg) * 6 + b;
        pal[3 * i] = (uint8_t)(r * 255 / 5);
        pal[3 * i + 1] = (uint8_t)(gg * 255 / 6);
        pal[3 * i + 2] = (uint8_t)(b * 255 / 5);
      }
  put(g, pal, sizeof pal);
  static const uint8_t loop[19] = {0x21, 0xFF, 0x0B, 'N', 'E', 'T', 'S', 'C', 'A', 'P',
                                   'E', '2', '.', '0', 0x03, 0x01, 0x00, 0x00, 0x00};
  put(g, loop, sizeof loop);
  *out = g;
  return DT_OK;
}

dtStatus dt_gif_add_frame(dtGif* g, const uint8_t* rgb) {
  if (!g || !rgb) return dt_error(DT_ERR_ARG, "dt_gif_add_frame: NULL argument");
  size_t n = (size_t)g->w * (size_t)g->h;
  for (size_t i = 0; i < n; i++) g->index[i] = cube_index(rgb + 3 * i);
  // graphic control (delay, no transparency) and image descriptor
  uint8_t gce[4] = {0x21, 0xF9, 0x04, 0x04};
  put(g, gce, 4);
  put_u16(g, g->delay);
  uint8_t gce_end[2] = {0, 0};
  put(g, gce_end, 2);
  uint8_t desc[1] = {0x2C};
  put(g, desc, 1);
  put_u16(g, 0);
  put_u16(g, 0);
  put_u16(g, g->w);
  put_u16(g, g->h);
  uint8_t flags_min[2] = {0x00, 8};  // no local palette; LZW minimum code size 8
  put(g, flags_min, 2);
  // LZW: 9..12-bit codes, clear = 256, end = 257
  const unsigned clear = 256, eoi = 257;
  int size = 9;
  unsigned next = eoi + 1;
  memset(g->keys, 0xff, GIF_HASH * sizeof *g->keys);
  g->bits = 0;
  g->nbits = 0;
  g->block[0] = 0;
  put_code(g, clear, size);
  unsigned prefix = g->index[0];
  for (size_t i = 1; i < n; i++) {
    uint8_t c = g->index[i];
    int32_t key = (int32_t)((prefix << 8) | c);
    uint32_t hsh = ((uint32_t)key * 2654435761u) >> 19;  // 13 bits
    while (g->keys[hsh] != -1 && g->keys[hsh] != key) hsh = (hsh + 1) & (GIF_HASH - 1);
    if (g->keys[hsh] == key) {
      prefix = g->codes[hsh];
      continue;
    }
    put_code(g, prefix, size);
    g->keys[hsh] = key;
    g->codes[hsh] = (uint16_t)next++;
    if (next > (1u << size) && size < 12) size++;
    if (next >= 4095) {
      // table full: restart it
      put_code(g, clear, size);
      memset(g->keys, 0xff, GIF_HASH * sizeof *g->keys);
      size = 9;
      next = eoi + 1;
    }
    prefix = c;
  }
  put_code(g, prefix, size);
  // the decoder counts this last code as if it made an entry: follow its code size
  if (next + 1 > (1u << size) && size < 12) size++;
  put_code(g, eoi, size);
  if (g->nbits > 0) put_code(g, 0, 8 - g->nbits);
  flush_block(g);
  uint8_t end = 0;
  put(g, &end, 1);
  if (g->af.failed)
    return dt_error(DT_ERR_IO, "%s: write failed: %s", g->af.path, strerror(g->af.failed));
  return DT_OK;
}

dtStatus dt_gif_close(dtGif* g) {
  if (!g) return DT_OK;
  uint8_t trailer = 0x3B;
  put(g, &trailer, 1);
  dtStatus s = dt_atomic_commit(&g->af);
  dt_free(g->index);
  dt_free(g->keys);
  dt_free(g->codes);
  dt_free(g);
  return s;
}
