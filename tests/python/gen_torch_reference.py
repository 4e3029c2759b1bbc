#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reference values from PyTorch for tests/nn/torch_crosscheck_test.c.

Writes OUT/torch_ref.safetensors (all tensors float32, little-endian) holding, for the TOLD
shapes (dynamics ELU MLP 56-512-512-50 and the Q head 56-512(LN,Tanh)-512(ELU)-1, batch 4):
weights, inputs x, tangents w and projections r, and what torch computes for the scalar
f = sum(r * net(x)):
  y       = net(x)
  gx      = df/dx
  grad.P  = df/dP                      for every parameter P (state_dict name)
  hvp     = d/dx (w . df/dx)           (Hessian-vector product, double backward)
  mixed.P = d/dP (w . df/dx)           (mixed second derivative)
once in float32 ("ref32.") and once in float64 ("ref64.", rounded to float32 when stored), so
the C test can compare itself with both and report torch's own float32 error beside its own.
Also: 5 Adam steps (with and without weight decay), clip_grad_norm_ and lerp_ (EMA).

Exit status 3 when torch is not importable (the C test then reports SKIP).
"""
import argparse
import json
import os
import struct
import sys

try:
    import numpy as np
    import torch
except Exception as e:  # noqa: BLE001
    print(f"gen_torch_reference: torch/numpy not importable: {e}", file=sys.stderr)
    sys.exit(3)

BATCH = 4
Z, A, HIDDEN = 50, 6, 512


def write_safetensors(path, tensors, metadata):
    """Minimal safetensors writer: 8-byte LE header length, JSON header, raw buffer."""
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)  # align the buffer to 8 bytes (spaces are allowed)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def np32(t):
    # a copy: .numpy() shares memory, and the tensors are updated in place afterwards
    return t.detach().to(torch.float32).numpy().copy()


def make_nets():
    dyn = torch.nn.Sequential(
        torch.nn.Linear(Z + A, HIDDEN), torch.nn.ELU(),
        torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ELU(),
        torch.nn.Linear(HIDDEN, Z))
    q = torch.nn.Sequential(
        torch.nn.Linear(Z + A, HIDDEN), torch.nn.LayerNorm(HIDDEN), torch.nn.Tanh(),
        torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ELU(),
        torch.nn.Linear(HIDDEN, 1))
    # torch's default init for Linear; LayerNorm gain and bias moved off (1, 0) so that their
    # gradients and the gain's part in the second derivatives are exercised
    with torch.no_grad():
        q[1].weight.copy_(1.0 + 0.1 * torch.randn(HIDDEN))
        q[1].bias.copy_(0.1 * torch.randn(HIDDEN))
    return {"dyn": dyn, "q": q}


def derivatives(net, x, w, r, dtype):
    net = net.to(dtype)
    params = dict(net.named_parameters())
    x = x.to(dtype).clone().requires_grad_(True)
    w, r = w.to(dtype), r.to(dtype)
    y = net(x)
    f = (r * y).sum()
    gx, = torch.autograd.grad(f, x, create_graph=True)
    gp = torch.autograd.grad(f, list(params.values()), retain_graph=True)
    s = (gx * w).sum()
    hvp, = torch.autograd.grad(s, x, retain_graph=True)
    mixed = torch.autograd.grad(s, list(params.values()), allow_unused=True)
    out = {"y": y, "gx": gx, "hvp": hvp}
    for (name, p), g, m in zip(params.items(), gp, mixed):
        out["grad." + name] = g
        out["mixed." + name] = m if m is not None else torch.zeros_like(p)
    return out


def adam_reference(t, gen):
    shapes = [(3, 7), (5,)]
    p0 = [torch.randn(s, generator=gen) for s in shapes]
    # gradients over five decades so that eps and the bias corrections matter
    grads = [[torch.randn(s, generator=gen) * 10.0 ** (5 * torch.rand(s, generator=gen) - 4)
              for s in shapes] for _ in range(5)]
    for i, p in enumerate(p0):
        t[f"adam.p0.{i}"] = np32(p)
    for k in range(5):
        for i in range(len(shapes)):
            t[f"adam.g.{k}.{i}"] = np32(grads[k][i])
    configs = {"A": dict(lr=1e-3),
               "B": dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)}
    for tag, cfg in configs.items():
        params = [p.clone().requires_grad_(True) for p in p0]
        opt = torch.optim.Adam(params, **cfg)
        for k in range(5):
            for p, g in zip(params, grads[k]):
                p.grad = g.clone()
            opt.step()
            for i, p in enumerate(params):
                t[f"adam.{tag}.step{k}.{i}"] = np32(p)
        for i, p in enumerate(params):
            st = opt.state[p]
            t[f"adam.{tag}.exp_avg.{i}"] = np32(st["exp_avg"])
            t[f"adam.{tag}.exp_avg_sq.{i}"] = np32(st["exp_avg_sq"])


def clip_reference(t, gen):
    shapes = [(4, 6), (6,), (2, 3)]
    for tag, max_norm in (("clip", 1.0), ("noclip", 1000.0)):
        params = [torch.zeros(s, requires_grad=True) for s in shapes]
        for i, p in enumerate(params):
            p.grad = torch.randn(p.shape, generator=gen) * 2.0
            t[f"{tag}.g.{i}"] = np32(p.grad)
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        t[f"{tag}.max_norm"] = np.array([max_norm], dtype=np.float32)
        t[f"{tag}.norm"] = np.array([float(norm)], dtype=np.float32)
        for i, p in enumerate(params):
            t[f"{tag}.out.{i}"] = np32(p.grad)


def ema_reference(t, gen):
    shapes = [(8, 5), (5,)]
    for tag, tau in (("ema01", 0.01), ("ema07", 0.7)):
        for i, s in enumerate(shapes):
            dst = torch.randn(s, generator=gen)
            src = torch.randn(s, generator=gen)
            t[f"{tag}.dst.{i}"] = np32(dst)
            t[f"{tag}.src.{i}"] = np32(src)
            t[f"{tag}.out.{i}"] = np32(dst.clone().lerp_(src, tau))
        t[f"{tag}.tau"] = np.array([tau], dtype=np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(args.seed + 1)

    t = {}
    for prefix, net in make_nets().items():
        out_dim = net[-1].out_features
        x = torch.randn(BATCH, Z + A, generator=gen)
        w = torch.randn(BATCH, Z + A, generator=gen)
        r = torch.randn(BATCH, out_dim, generator=gen)
        for name, p in net.state_dict().items():
            t[f"{prefix}.{name}"] = np32(p)
        t[f"{prefix}.x"], t[f"{prefix}.w"], t[f"{prefix}.r"] = np32(x), np32(w), np32(r)
        # the float32 weights are the reference: the float64 run starts from the same values
        for tag, dtype in (("ref32", torch.float32), ("ref64", torch.float64)):
            for k, v in derivatives(net, x, w, r, dtype).items():
                t[f"{tag}.{prefix}.{k}"] = np32(v)
    adam_reference(t, gen)
    clip_reference(t, gen)
    ema_reference(t, gen)
    meta = {"torch": torch.__version__, "numpy": np.__version__, "seed": str(args.seed),
            "generator": "tests/python/gen_torch_reference.py"}
    path = os.path.join(args.out, "torch_ref.safetensors")
    write_safetensors(path, t, meta)
    print(f"gen_torch_reference: wrote {len(t)} tensors to {path} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
