// SPDX-License-Identifier: MIT
// PNG and GIF output: PNG read back with libpng, GIF decoded by a small LZW decoder here.
#include <unistd.h>

#include "difftop/io.h"
#pragma GCC diagnostic ignored "-Wformat-zero-length"
#include "test.h"
#ifdef DT_HAVE_PNG
#include <png.h>
#endif

static unsigned char* slurp(const char* p, size_t* n) {
  FILE* f = fopen(p, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

static void make_frame(uint8_t* rgb, int w, int h, int t, int noise) {
  dtRng rng;
  dt_rng_seed(&rng, (uint64_t)t + 1);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t* p = rgb + 3 * (y * w + x);
      if (noise) {
        p[0] = (uint8_t)dt_rng_u32(&rng);
        p[1] = (uint8_t)dt_rng_u32(&rng);
        p[2] = (uint8_t)dt_rng_u32(&rng);
      } else {
        p[0] = (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
        p[1] = (uint8_t)(y * 255 / (h > 1 ? h - 1 : 1));
        p[2] = (uint8_t)((x + y + 10 * t) & 0xff);
      }
    }
}

#ifdef DT_HAVE_PNG
static void test_png(void) {
  int w = 37, h = 21;
  uint8_t* rgb = malloc((size_t)w * h * 3);
  make_frame(rgb, w, h, 0, 1);
  char path[] = "/tmp/dt_png_test_XXXXXX";
  close(mkstemp(path));
  CHECK_OK(dt_png_write(path, w, h, rgb));
  // read back with libpng: exact pixels
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  CHECK(png_image_begin_read_from_file(&img, path), "%s", img.message);
  img.format = PNG_FORMAT_RGB;
  uint8_t* back = malloc(PNG_IMAGE_SIZE(img));
  CHECK(png_image_finish_read(&img, NULL, back, 0, NULL), "%s", img.message);
  CHECK(img.width == (unsigned)w && img.height == (unsigned)h);
  CHECK(memcmp(back, rgb, (size_t)w * h * 3) == 0, "pixels differ");
  free(back);
  CHECK(dt_png_write(path, 0, 5, rgb) == DT_ERR_ARG);
  CHECK(dt_png_write("/nonexistent-dir/x.png", w, h, rgb) == DT_ERR_IO);
  unlink(path);
  free(rgb);
}
#else
static void test_png(void) {
  uint8_t rgb[3] = {0};
  CHECK(dt_png_write("/tmp/x.png", 1, 1, rgb) == DT_ERR_UNSUPPORTED);
}
#endif

// a minimal GIF decoder for our files: returns the number of frames, checks every pixel
typedef struct Reader {
  const unsigned char* p;
  size_t n, i;
} Reader;

static int decode_lzw(const unsigned char* data, size_t len, uint8_t* out, size_t npix) {
  uint16_t prefix[4096];
  uint8_t suffix[4096], stack[4097];
  int min = 8, size = 9, clear = 256, eoi = 257, next = 258, old = -1, first = 0;
  size_t bitpos = 0, o = 0;
  for (;;) {
    if (bitpos + (size_t)size > len * 8) return -1;
    int code = 0;
    for (int b = 0; b < size; b++, bitpos++)
      code |= ((data[bitpos >> 3] >> (bitpos & 7)) & 1) << b;
    if (code == clear) {
      size = min + 1;
      next = eoi + 1;
      old = -1;
      continue;
    }
    if (code == eoi) break;
    if (old < 0) {
      if (code > 255 || o >= npix) return -2;
      out[o++] = (uint8_t)code;
      old = first = code;
      continue;
    }
    int in = code, sp = 0;
    if (code > next) return -3;
    if (code == next) {
      stack[sp++] = (uint8_t)first;
      code = old;
    }
    while (code > 255) {
      stack[sp++] = suffix[code];
      code = prefix[code];
    }
    stack[sp++] = (uint8_t)code;
    first = code;
    while (sp) {
      if (o >= npix) return -4;
      out[o++] = stack[--sp];
    }
    if (next < 4096) {
      prefix[next] = (uint16_t)old;
      suffix[next] = (uint8_t)first;
      next++;
      if (next >= (1 << size) && size < 12) size++;
    }
    old = in;
  }
  return o == npix ? 0 : -5;
}

static int decode_gif(const unsigned char* b, size_t n, int w, int h, const uint8_t* frames, int nf) {
  if (n < 13 + 768 || memcmp(b, "GIF89a", 6) != 0) return -1;
  if ((b[6] | (b[7] << 8)) != w || (b[8] | (b[9] << 8)) != h) return -2;
  const unsigned char* pal = b + 13;
  size_t i = 13 + 768;
  int count = 0;
  uint8_t* idx = malloc((size_t)w * h);
  unsigned char* data = malloc(n);
  while (i < n) {
    unsigned char tag = b[i++];
    if (tag == 0x3B) break;
    if (tag == 0x21) {  // extension: label, then sub-blocks
      i++;
      while (i < n && b[i]) i += (size_t)b[i] + 1;
      i++;
      continue;
    }
    if (tag != 0x2C) return -3;
    i += 9;          // descriptor
    i++;             // minimum code size
    size_t len = 0;  // gather sub-blocks
    while (i < n && b[i]) {
      memcpy(data + len, b + i + 1, b[i]);
      len += b[i];
      i += (size_t)b[i] + 1;
    }
    i++;
    int rc = decode_lzw(data, len, idx, (size_t)w * h);
    if (rc) return -100 + rc;
    // every pixel is within half a cube step of the source frame
    const uint8_t* src = frames + (size_t)count * w * h * 3;
    for (int k = 0; k < w * h; k++)
      for (int c = 0; c < 3; c++) {
        int steps = c == 1 ? 6 : 5, err = abs((int)pal[3 * idx[k] + c] - (int)src[3 * k + c]);
        if (err > 255 / steps / 2 + 1) return -200;
      }
    count++;
  }
  free(idx);
  free(data);
  return count == nf ? 0 : -300 - count;
}

static void test_gif(void) {
  // sizes around code-size boundaries, noise (many table resets) and gradients
  const int sizes[][2] = {{1, 1}, {16, 16}, {17, 15}, {255, 1}, {64, 48}, {160, 120}};
  for (int s = 0; s < 6; s++) {
    int w = sizes[s][0], h = sizes[s][1], nf = 3;
    uint8_t* frames = malloc((size_t)w * h * 3 * nf);
    for (int t = 0; t < nf; t++) make_frame(frames + (size_t)t * w * h * 3, w, h, t, t == 1);
    char path[] = "/tmp/dt_gif_test_XXXXXX";
    close(mkstemp(path));
    dtGif* g;
    CHECK_OK(dt_gif_open(path, w, h, 5, &g));
    for (int t = 0; t < nf; t++) CHECK_OK(dt_gif_add_frame(g, frames + (size_t)t * w * h * 3));
    CHECK_OK(dt_gif_close(g));
    size_t n;
    unsigned char* b = slurp(path, &n);
    int rc = decode_gif(b, n, w, h, frames, nf);
    CHECK(rc == 0, "%dx%d: decode error %d", w, h, rc);
    CHECK(b[n - 1] == 0x3B);
    free(b);
    free(frames);
    unlink(path);
  }
  // every run length from 1 to 600 pixels of one colour, then varied: LZW boundaries
  for (int w = 1; w <= 600; w += 7) {
    uint8_t* rgb = calloc((size_t)w * 3, 1);
    for (int x = w / 2; x < w; x++) rgb[3 * x] = (uint8_t)(x * 37);
    char path[] = "/tmp/dt_gif_test_XXXXXX";
    close(mkstemp(path));
    dtGif* g;
    CHECK_OK(dt_gif_open(path, w, 1, 0, &g));
    CHECK_OK(dt_gif_add_frame(g, rgb));
    CHECK_OK(dt_gif_close(g));
    size_t n;
    unsigned char* b = slurp(path, &n);
    int rc = decode_gif(b, n, w, 1, rgb, 1);
    CHECK(rc == 0, "width %d: decode error %d", w, rc);
    free(b);
    free(rgb);
    unlink(path);
  }
  // the handle keeps its own copy of the path
  char path[] = "/tmp/dt_gif_test_XXXXXX";
  close(mkstemp(path));
  char keep[sizeof path];
  memcpy(keep, path, sizeof path);
  dtGif* g = NULL;
  uint8_t px[3] = {1, 2, 3};
  CHECK_OK(dt_gif_open(path, 1, 1, 1, &g));
  CHECK_OK(dt_gif_add_frame(g, px));
  memset(path, 'x', sizeof path - 1);
  CHECK_OK(dt_gif_close(g));
  CHECK(access(keep, F_OK) == 0);
  unlink(keep);
  g = NULL;
  CHECK(dt_gif_open("/tmp/x.gif", 0, 1, 5, &g) == DT_ERR_ARG && !g);
  CHECK(dt_gif_open("/nonexistent-dir/x.gif", 4, 4, 5, &g) == DT_ERR_IO);
  CHECK(dt_gif_add_frame(NULL, NULL) == DT_ERR_ARG);
  CHECK_OK(dt_gif_close(NULL));
}

DT_TEST_MAIN("image", TEST(test_png), TEST(test_gif))
