# SPDX-License-Identifier: MIT
"""safetensors files in pure Python (numpy only): u64 little-endian header length, a JSON
header, then the raw little-endian data, as the huggingface/safetensors reference writes it
(tensors ordered by decreasing alignment then name, header padded with spaces to 8 bytes).

Used to hand PyTorch state_dicts to the C library (dt_params_load) without the `safetensors`
package; torch tensors are accepted anywhere an array is (moved to CPU numpy).
"""
import json
import struct

import numpy as np

_DTYPES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("float16"): "F16",
           np.dtype("int64"): "I64", np.dtype("int32"): "I32", np.dtype("int16"): "I16",
           np.dtype("int8"): "I8", np.dtype("uint8"): "U8", np.dtype("bool"): "BOOL",
           np.dtype("uint16"): "U16", np.dtype("uint32"): "U32", np.dtype("uint64"): "U64"}
_NP = {v: k for k, v in _DTYPES.items()}


def _to_numpy(t):
    if hasattr(t, "detach"):  # a torch tensor
        t = t.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            raise TypeError("bfloat16 tensors: convert to float32 first")
        t = t.numpy()
    return np.ascontiguousarray(t)


def save_file(tensors, path, metadata=None):
    """Write {name: array or tensor} to path."""
    arrays = {k: _to_numpy(v) for k, v in tensors.items()}
    for k, a in arrays.items():
        if a.dtype not in _DTYPES:
            raise TypeError(f"save_file: tensor '{k}' has unsupported dtype {a.dtype}")
    order = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for k in order:
        a = arrays[k]
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[k] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape),
                     "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_file(path):
    """Read a file into {name: numpy array}; returns (tensors, metadata)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    buf = data[8 + n:]
    out = {}
    for k, info in header.items():
        b, e = info["data_offsets"]
        dt = _NP[info["dtype"]].newbyteorder("<")
        out[k] = np.frombuffer(buf[b:e], dtype=dt).astype(dt.newbyteorder("="), copy=True) \
            .reshape(info["shape"])
    return out, meta
