#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""PyTorch side of `difftop bench nn`: the same computations on the TOLD shapes.

Prints one JSON object per line: {"net", "batch", "mode", "median_ms", "reps"} for
  forward  y = net(x) with autograd recording (as difftop's tape does)
  fwd+bwd  forward, then gradients of sum(r * y) w.r.t. x and every parameter
  hvp      forward, gradients (create_graph=True), then the gradients of w . df/dx w.r.t. x and
           every parameter: value, gradient, Hessian-vector product and mixed products, by
           double backward (reverse-over-reverse, torch's standard route)
plus a first line {"torch": version, "threads": torch.get_num_threads(), ...}.
Exit status 3 when torch is not importable.
"""
import argparse
import json
import os
import sys
import time

try:
    import torch
except Exception as e:  # noqa: BLE001
    print(json.dumps({"error": f"torch not importable: {e}"}))
    sys.exit(3)


def nets():
    z, a, h = 50, 6, 512
    dyn = torch.nn.Sequential(torch.nn.Linear(z + a, h), torch.nn.ELU(), torch.nn.Linear(h, h),
                              torch.nn.ELU(), torch.nn.Linear(h, z))
    q = torch.nn.Sequential(torch.nn.Linear(z + a, h), torch.nn.LayerNorm(h), torch.nn.Tanh(),
                            torch.nn.Linear(h, h), torch.nn.ELU(), torch.nn.Linear(h, 1))
    return {"dyn": dyn, "q": q}


def median_ms(fn, reps, warmup, clock):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = clock()
        fn()
        ts.append((clock() - t0) * 1e3)
    ts.sort()
    n = len(ts)
    return ts[n // 2] if n % 2 else 0.5 * (ts[n // 2 - 1] + ts[n // 2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batches", default="1,256,1024")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall time, or process CPU time (time.process_time)")
    ap.add_argument("--json", action="store_true", help="JSON lines (the only output format)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "clock": args.clock,
                      "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                      "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}), flush=True)
    for name, net in nets().items():
        params = list(net.parameters())
        out = net[-1].out_features
        for b in [int(s) for s in args.batches.split(",")]:
            x = torch.randn(b, 56, requires_grad=True)
            w = torch.randn(b, 56)
            r = torch.randn(b, out)

            def forward():
                return net(x)

            def fwd_bwd():
                y = net(x)
                return torch.autograd.grad((r * y).sum(), [x] + params)

            def hvp():
                y = net(x)
                g = torch.autograd.grad((r * y).sum(), [x] + params, create_graph=True)
                s = (g[0] * w).sum()
                return torch.autograd.grad(s, [x] + params, allow_unused=True)

            for mode, fn in (("forward", forward), ("fwd+bwd", fwd_bwd), ("hvp", hvp)):
                clock = time.process_time if args.clock == "cpu" else time.perf_counter
                ms = median_ms(fn, args.reps, args.warmup, clock)
                print(json.dumps({"net": name, "batch": b, "mode": mode, "median_ms": ms,
                                  "reps": args.reps}), flush=True)


if __name__ == "__main__":
    main()
