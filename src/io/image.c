// SPDX-License-Identifier: MIT
// Image output: PNG through libpng and animated GIF through giflib (when built with them).
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"

#include <gif_lib.h>

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
// GIF through giflib, written through the atomic writer; frames are quantised to a fixed
// 6x7x6 colour cube (enough for rollout videos and plots)

struct dtGif {
  dtAtomicFile af;
  GifFileType* gif;
  int w, h, delay;
  GifByteType* index;  // one frame of palette indices
};

// palette entry of an RGB colour: 6 reds x 7 greens x 6 blues, rounded to the nearest level
static uint8_t cube_index(const uint8_t* p) {
  int r = (p[0] * 5 + 127) / 255, g = (p[1] * 6 + 127) / 255, b = (p[2] * 5 + 127) / 255;
  return (uint8_t)((r * 7 + g) * 6 + b);
}

// giflib's output callback: bytes go to the temporary file of the atomic writer
static int gif_write(GifFileType* gif, const GifByteType* data, int n) {
  dtGif* g = gif->UserData;
  dt_atomic_write(&g->af, data, (size_t)n);
  return g->af.failed ? 0 : n;
}

static dtStatus gif_fail(dtGif* g, const char* what, int code) {
  return dt_error(DT_ERR_IO, "%s: giflib %s failed: %s", g->af.path, what,
                  GifErrorString(code) ? GifErrorString(code) : "unknown error");
}

// header, a global palette of the colour cube, and the loop-forever extension
static dtStatus gif_begin(dtGif* g) {
  GifColorType colors[256] = {{0, 0, 0}};
  for (int r = 0; r < 6; r++)
    for (int gg = 0; gg < 7; gg++)
      for (int b = 0; b < 6; b++) {
        int i = (r * 7 + gg) * 6 + b;
        colors[i] = (GifColorType){(GifByteType)(r * 255 / 5), (GifByteType)(gg * 255 / 6),
                                   (GifByteType)(b * 255 / 5)};
      }
  ColorMapObject* map = GifMakeMapObject(256, colors);
  if (!map) return DT_ERR_NOMEM;
  EGifSetGifVersion(g->gif, true);
  int ok = EGifPutScreenDesc(g->gif, g->w, g->h, 8, 0, map) == GIF_OK;
  GifFreeMapObject(map);
  static const GifByteType app[] = "NETSCAPE2.0", loop[3] = {1, 0, 0};
  ok = ok && EGifPutExtensionLeader(g->gif, APPLICATION_EXT_FUNC_CODE) == GIF_OK &&
       EGifPutExtensionBlock(g->gif, 11, app) == GIF_OK &&
       EGifPutExtensionBlock(g->gif, 3, loop) == GIF_OK &&
       EGifPutExtensionTrailer(g->gif) == GIF_OK;
  return ok ? DT_OK : gif_fail(g, "header", g->gif->Error);
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
  g->w = w, g->h = h, g->delay = delay_cs;
  g->index = dt_malloc((size_t)w * (size_t)h);
  if (!g->index) {
    dt_free(g);
    return DT_ERR_NOMEM;
  }
  if ((s = dt_atomic_begin(&g->af, path))) {
    dt_free(g->index);
    dt_free(g);
    return s;
  }
  int err = 0;
  g->gif = EGifOpen(g, gif_write, &err);
  s = g->gif ? gif_begin(g) : gif_fail(g, "open", err);
  if (s) {
    if (g->gif) EGifCloseFile(g->gif, &err);
    dt_atomic_abort(&g->af);
    dt_free(g->index);
    dt_free(g);
    return s;
  }
  *out = g;
  return DT_OK;
}

dtStatus dt_gif_add_frame(dtGif* g, const uint8_t* rgb) {
  if (!g || !rgb) return dt_error(DT_ERR_ARG, "dt_gif_add_frame: NULL argument");
  size_t n = (size_t)g->w * (size_t)g->h;
  for (size_t i = 0; i < n; i++) g->index[i] = cube_index(rgb + 3 * i);
  GraphicsControlBlock gcb = {DISPOSAL_UNSPECIFIED, false, g->delay, NO_TRANSPARENT_COLOR};
  GifByteType ext[4];
  EGifGCBToExtension(&gcb, ext);
  int ok = EGifPutExtension(g->gif, GRAPHICS_EXT_FUNC_CODE, 4, ext) == GIF_OK &&
           EGifPutImageDesc(g->gif, 0, 0, g->w, g->h, false, NULL) == GIF_OK;
  for (int y = 0; ok && y < g->h; y++)
    ok = EGifPutLine(g->gif, g->index + (size_t)y * g->w, g->w) == GIF_OK;
  if (!ok) return gif_fail(g, "frame", g->gif->Error);
  if (g->af.failed)
    return dt_error(DT_ERR_IO, "%s: write failed: %s", g->af.path, strerror(g->af.failed));
  return DT_OK;
}

dtStatus dt_gif_close(dtGif* g) {
  if (!g) return DT_OK;
  int err = 0;
  int ok = EGifCloseFile(g->gif, &err) == GIF_OK;  // writes the trailer and frees gif
  dtStatus s = ok ? dt_atomic_commit(&g->af) : gif_fail(g, "close", err);
  if (!ok) dt_atomic_abort(&g->af);
  dt_free(g->index);
  dt_free(g);
  return s;
}
