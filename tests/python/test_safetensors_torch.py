# SPDX-License-Identifier: MIT
"""Cross-check difftop's safetensors reader and writer against PyTorch, bit for bit.

The C side is driven through ctypes on the shared library (DT_LIB, default build/libdifftop.so).
Python writes and reads the format by hand (struct + json + numpy), following the reference
layout; when the `safetensors` package is installed, the same checks also run through it.

    DT_LIB=build/libdifftop.so python3 -m pytest tests/python/test_safetensors_torch.py
"""
import ctypes
import json
import os
import struct

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB_PATH = os.environ.get("DT_LIB", os.path.join(ROOT, "build", "libdifftop.so"))

# dtDtype values of include/difftop/io.h
DT = {"F32": 0, "F64": 1, "F16": 2, "BF16": 3, "I64": 4, "I32": 5, "I16": 6, "I8": 7,
      "U64": 8, "U32": 9, "U16": 10, "U8": 11, "BOOL": 12}
TORCH_TO_ST = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16",
               torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
               torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}
ST_TO_TORCH = {v: k for k, v in TORCH_TO_ST.items()}
MAX_DIMS = 8


class StEntry(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("ndim", ctypes.c_int),
                ("shape", ctypes.POINTER(ctypes.c_int)), ("data", ctypes.c_void_p)]


class StInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * MAX_DIMS), ("numel", ctypes.c_int64),
                ("nbytes", ctypes.c_size_t), ("data", ctypes.c_void_p)]


@pytest.fixture(scope="module")
def lib():
    if not os.path.exists(LIB_PATH):
        pytest.skip(f"{LIB_PATH} not built (set DT_LIB)")
    L = ctypes.CDLL(LIB_PATH)
    L.dt_last_error.restype = ctypes.c_char_p
    L.dt_st_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    L.dt_st_close.argtypes = [ctypes.c_void_p]
    L.dt_st_count.argtypes = [ctypes.c_void_p]
    L.dt_st_info.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(StInfo)]
    L.dt_st_find.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(StInfo)]
    L.dt_st_metadata.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    L.dt_st_metadata.restype = ctypes.c_char_p
    L.dt_st_read_f32.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int,
                                 ctypes.POINTER(ctypes.c_int)]
    L.dt_st_write.argtypes = [ctypes.c_char_p, ctypes.POINTER(StEntry), ctypes.c_int,
                              ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
    return L


def raw_bytes(t):
    """Little-endian bytes of a tensor, row-major (bfloat16 via its int16 view)."""
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def from_bytes(b, dtype, shape):
    if dtype == "BF16":
        arr = np.frombuffer(b, dtype="<i2").copy()
        return torch.from_numpy(arr).view(torch.bfloat16).reshape(shape)
    npdt = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
            "I8": "i1", "U8": "u1", "BOOL": "?"}[dtype]
    return torch.from_numpy(np.frombuffer(b, dtype=npdt).copy()).reshape(shape)


def py_write(path, tensors, metadata=None):
    """The reference layout: sort by dtype (largest first), then name; pad with spaces to 8."""
    rank = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32",
            "U32", "F32", "F64", "I64", "U64"]
    items = sorted(tensors.items(), key=lambda kv: (-rank.index(TORCH_TO_ST[kv[1].dtype]), kv[0]))
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in items:
        b = raw_bytes(t)
        header[name] = {"dtype": TORCH_TO_ST[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def py_read(path):
    """Parse and check a file by hand; returns (tensors, metadata, header bytes)."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    hb = data[8:8 + n]
    assert hb[:1] == b"{" and n % 8 == 0
    header = json.loads(hb.decode())
    meta = header.pop("__metadata__", None)
    buf = data[8 + n:]
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1]) for v in header.values())
    pos = 0
    for b, e in spans:  # no hole, no overlap, nothing after the end
        assert b == pos
        pos = e
    assert pos == len(buf)
    out = {k: from_bytes(buf[v["data_offsets"][0]:v["data_offsets"][1]], v["dtype"], v["shape"])
           for k, v in header.items()}
    return out, meta, hb


def sample_tensors():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 17, generator=g)
    w[0, :4] = torch.tensor([float("inf"), -float("inf"), -0.0, 1e-42])  # specials, subnormal
    w_bits = w.view(torch.int32)
    w_bits[1, 0] = 0x7FC12345  # NaN with a payload
    return {
        "enc.0.weight": w,
        "enc.0.bias": torch.randn(64, generator=g),
        "dyn.2.weight": torch.randn(3, 4, 5, generator=g, dtype=torch.float64),
        "half": (torch.randn(7, 3, generator=g) * 100).half(),
        "bf": torch.randn(11, generator=g).bfloat16(),
        "step": torch.tensor(12345, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 5),
    }


def c_open(lib, path):
    h = ctypes.c_void_p()
    st = lib.dt_st_open(path.encode(), ctypes.byref(h))
    assert st == 0, lib.dt_last_error().decode()
    return h


def c_read_f32(lib, h, name, shape):
    out = np.empty(shape, dtype=np.float32)
    shp = (ctypes.c_int * max(len(shape), 1))(*shape)
    st = lib.dt_st_read_f32(h, name.encode(), out.ctypes.data, len(shape), shp)
    assert st == 0, lib.dt_last_error().decode()
    return torch.from_numpy(out)


def same_bits(a, b):
    if a.dtype == torch.bfloat16:
        a, b = a.view(torch.int16), b.view(torch.int16)
    return a.shape == b.shape and a.dtype == b.dtype and raw_bytes(a) == raw_bytes(b)


def test_python_to_c(lib, tmp_path):
    tensors = sample_tensors()
    path = str(tmp_path / "py.safetensors")
    py_write(path, tensors, {"format": "pt", "Z": "64"})
    h = c_open(lib, path)
    try:
        assert lib.dt_st_count(h) == len(tensors)
        assert lib.dt_st_metadata(h, b"Z") == b"64"
        for name, t in tensors.items():
            info = StInfo()
            assert lib.dt_st_find(h, name.encode(), ctypes.byref(info)) == 0
            assert info.dtype == DT[TORCH_TO_ST[t.dtype]]
            assert list(info.shape[:info.ndim]) == list(t.shape)
            assert ctypes.string_at(info.data, info.nbytes) == raw_bytes(t)
            if t.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
                got = c_read_f32(lib, h, name, list(t.shape))
                want = t.to(torch.float32)
                assert torch.equal(got.view(torch.int32), want.view(torch.int32)), name
    finally:
        lib.dt_st_close(h)


def c_write(lib, path, tensors, meta=None):
    keep = []
    entries = (StEntry * len(tensors))()
    for e, (name, t) in zip(entries, tensors.items()):
        b = ctypes.create_string_buffer(raw_bytes(t), max(1, t.numel() * t.element_size()))
        shp = (ctypes.c_int * max(t.dim(), 1))(*t.shape)
        keep += [b, shp]
        e.name, e.dtype, e.ndim = name.encode(), DT[TORCH_TO_ST[t.dtype]], t.dim()
        e.shape = ctypes.cast(shp, ctypes.POINTER(ctypes.c_int))
        e.data = ctypes.cast(b, ctypes.c_void_p)
    kv = [s.encode() for pair in (meta or {}).items() for s in pair]
    arr = (ctypes.c_char_p * max(1, len(kv)))(*kv)
    st = lib.dt_st_write(path.encode(), entries, len(tensors), arr, len(kv) // 2)
    assert st == 0, lib.dt_last_error().decode()


def test_c_to_python(lib, tmp_path):
    tensors = sample_tensors()
    path = str(tmp_path / "c.safetensors")
    c_write(lib, path, tensors, {"format": "pt", "note": 'quote " and caf\u00e9'})
    got, meta, _ = py_read(path)
    assert meta == {"format": "pt", "note": 'quote " and caf\u00e9'}
    assert set(got) == set(tensors)
    for name, t in tensors.items():
        assert same_bits(got[name], t), name


def test_same_bytes_as_reference_layout(lib, tmp_path):
    # with the same order of metadata, C and the Python layout give identical files
    tensors = sample_tensors()
    a, b = str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")
    py_write(a, tensors, {"format": "pt"})
    c_write(lib, b, tensors, {"format": "pt"})
    assert open(a, "rb").read() == open(b, "rb").read()


def test_safetensors_package(lib, tmp_path):
    st = pytest.importorskip("safetensors.torch")
    tensors = sample_tensors()
    a = str(tmp_path / "pkg.safetensors")
    st.save_file(tensors, a, metadata={"format": "pt"})
    h = c_open(lib, a)
    try:
        for name, t in tensors.items():
            info = StInfo()
            assert lib.dt_st_find(h, name.encode(), ctypes.byref(info)) == 0
            assert ctypes.string_at(info.data, info.nbytes) == raw_bytes(t)
    finally:
        lib.dt_st_close(h)
    b = str(tmp_path / "c.safetensors")
    c_write(lib, b, tensors, {"format": "pt"})
    loaded = st.load_file(b)
    for name, t in tensors.items():
        assert same_bits(loaded[name], t), name
