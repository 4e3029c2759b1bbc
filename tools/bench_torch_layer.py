#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Time one solve + backward through difftop.torch.TrajoptLayer against the same solver written
in pure PyTorch (autograd with create_graph=True through the taped iterations), one thread each.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/bench_torch_layer.py [--reps 7]

Problem: the official TOLD sizes (latent 50, mlp 512, enc 256), obs 24, actions 6, horizon 5,
the official LM (50 iterations, step 1e-3 scaled down to 1e-4 so iterates stay in the box,
damping 1e-3) with the truncated backward over the last 5 iterations, and a 12-iteration fully
unrolled LM. The loss is sum(w * a_final). Prints the median wall time of `reps` runs.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
import torch  # noqa: E402

import difftop  # noqa: E402
from difftop.told import TOLD  # noqa: E402
from difftop.torch import TrajoptLayer  # noqa: E402

S, A, H, GAMMA = 24, 6, 5, 0.99


def torch_solve(m, x, a, iters, k, eta, lam, C=1000.0):
    first = iters - k
    for it in range(iters):
        taped = it >= first
        if not taped or it == first:
            a = a.detach().requires_grad_()
        G = m.plan_value(x, a, H, GAMMA)
        (g,) = torch.autograd.grad(G.sum(), a, create_graph=taped)
        a = a + eta * g * ((C - G) / (lam + (g * g).sum(1)))[:, None]
        if not taped:
            a = a.detach()
    return a


def bench(fn, reps):
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    difftop.set_num_threads(1)
    torch.manual_seed(0)
    m = TOLD(S, A)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    print(f"# torch {torch.__version__} threads {torch.get_num_threads()}, difftop "
          f"{difftop.library_version_string()} BLAS threads {difftop.get_num_threads()}, "
          f"CPU {difftop._lib.lib.dt_cpu_model().decode()}")
    print("| mode | B | difftop.torch layer (ms) | pure PyTorch (ms) | speed-up |")
    print("|---|---|---|---|---|")
    for mode, iters, k in (("LM 50 it, truncated k=5", 50, 5), ("LM 12 it, unrolled", 12, 12)):
        backward = "truncated" if k < iters else "unroll"
        for B in (1, 32):
            x = torch.randn(B, S)
            a0 = m.pi_rollout(x, H)
            w = torch.randn(B, H * A)
            layer = TrajoptLayer(m, H, gamma=GAMMA, max_batch=B, solver="lm", backward=backward,
                                 max_iters=iters, backward_iters=k, step_size=1e-4,
                                 damping=1e-3, abs_tol=0.0, rel_tol=0.0)

            def run_c():
                m.zero_grad()
                xx = x.clone().requires_grad_()
                (w * layer(xx, a0)).sum().backward()

            def run_t():
                m.zero_grad()
                xx = x.clone().requires_grad_()
                (w * torch_solve(m, xx, a0, iters, k, 1e-4, 1e-3)).sum().backward()

            tc, tt = bench(run_c, args.reps), bench(run_t, args.reps)
            print(f"| {mode} | {B} | {tc * 1e3:.1f} | {tt * 1e3:.1f} | {tt / tc:.2f}x |")


if __name__ == "__main__":
    main()
