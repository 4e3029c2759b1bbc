# SPDX-License-Identifier: MIT
"""PNG and GIF files written by difftop decode in PIL with the expected pixels.

    DT_LIB=build/libdifftop.so python3 -m pytest tests/python/test_images.py
"""
import ctypes
import os

import pytest

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB_PATH = os.environ.get("DT_LIB", os.path.join(ROOT, "build", "libdifftop.so"))


@pytest.fixture(scope="module")
def lib():
    if not os.path.exists(LIB_PATH):
        pytest.skip(f"{LIB_PATH} not built (set DT_LIB)")
    L = ctypes.CDLL(LIB_PATH)
    L.dt_last_error.restype = ctypes.c_char_p
    L.dt_png_write.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    L.dt_gif_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.POINTER(ctypes.c_void_p)]
    L.dt_gif_add_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    L.dt_gif_close.argtypes = [ctypes.c_void_p]
    return L


def frames(w, h, n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        if t % 2:
            f = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        else:
            y, x = np.mgrid[0:h, 0:w]
            f = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y + 9 * t) % 256],
                         axis=-1).astype(np.uint8)
        out.append(np.ascontiguousarray(f))
    return out


def test_png(lib, tmp_path):
    img = frames(53, 31, 2)[1]
    path = str(tmp_path / "a.png")
    assert lib.dt_png_write(path.encode(), 53, 31, img.ctypes.data) == 0, lib.dt_last_error()
    back = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(back, img)


@pytest.mark.parametrize("w,h", [(1, 1), (255, 2), (256, 1), (97, 61), (320, 240)])
def test_gif(lib, tmp_path, w, h):
    fs = frames(w, h, 4, seed=w)
    path = str(tmp_path / "a.gif")
    g = ctypes.c_void_p()
    assert lib.dt_gif_open(path.encode(), w, h, 4, ctypes.byref(g)) == 0, lib.dt_last_error()
    for f in fs:
        assert lib.dt_gif_add_frame(g, f.ctypes.data) == 0
    assert lib.dt_gif_close(g) == 0
    im = Image.open(path)
    assert im.n_frames == len(fs) and im.size == (w, h)
    assert im.info.get("loop") == 0 and im.info.get("duration") == 40
    levels = {0: 5, 1: 6, 2: 5}
    for k, f in enumerate(fs):
        im.seek(k)
        got = np.asarray(im.convert("RGB")).astype(int)
        # the nearest level of the 6x7x6 cube in every channel
        for c, steps in levels.items():
            q = (f[..., c].astype(int) * steps + 127) // 255 * 255 // steps
            assert np.array_equal(got[..., c], q), (k, c)
