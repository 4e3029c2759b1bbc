# SPDX-License-Identifier: MIT
"""The official DiffTOP planning problem in Theseus (the reference `difftop bench trajopt`
compares against), and helpers the parity test shares.

Problem (DiffTORI `plan_theseus_update`, without the encoder: z0 is given): n = H*A actions,
G(a) = sum_t gamma^t R(z_t, clip a_t) + gamma^H min(Q1, Q2)(z_H, tanh pi(z_H)), one residual
r = 1000 - G, th.LevenbergMarquardt with th.CholeskyDenseSolver, step 1e-3, damping 1e-3,
track_best_solution, backward truncated over the last 5 iterations.

Run: OMP_WAIT_POLICY=PASSIVE python tools/bench_trajopt_theseus.py --batches 1,256 --iters 50
prints one JSON line per configuration:
{"B": 1, "iters": 50, "backward": "truncated", "conv": "off", "solve_ms": ..., "total_ms": ...}
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

Z, A, H, HID = 50, 6, 5, 512
GAMMA = 0.99
OFFSET = 1000.0


def elu_mlp(inp, out):
    return nn.Sequential(nn.Linear(inp, HID), nn.ELU(), nn.Linear(HID, HID), nn.ELU(), nn.Linear(HID, out))


def q_mlp(inp):
    return nn.Sequential(nn.Linear(inp, HID), nn.LayerNorm(HID), nn.Tanh(), nn.Linear(HID, HID), nn.ELU(),
                         nn.Linear(HID, 1))


# TD-MPC module names; the C bench and the parity test use the same prefixes
NET_NAMES = ("_dynamics", "_reward", "_Q1", "_Q2", "_pi")


def build_nets(seed=1, z=Z, a=A, init="orthogonal"):
    """TOLD's networks with orthogonal weights and zero biases (last layers NOT zeroed, so that
    G is not identically 0), or torch's default init (init="torch")."""
    torch.manual_seed(seed)
    global_hid = HID
    nets = nn.ModuleDict({
        "_dynamics": elu_mlp(z + a, z),
        "_reward": elu_mlp(z + a, 1),
        "_Q1": q_mlp(z + a),
        "_Q2": q_mlp(z + a),
        "_pi": elu_mlp(z, a),
    })
    if init == "orthogonal":
        for m in nets.modules():
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight.data)
                nn.init.zeros_(m.bias.data)
    assert global_hid == HID
    return nets


def value(nets, act, z, horizon=H, adim=A):
    """G [B] of actions act [B, H*A] from latent z [B, Z] (the official cost, NaN -> 0)."""
    ac = act.clamp(-1, 1)
    G = 0
    disc = 1.0
    for t in range(horizon):
        za = torch.cat([z, ac[:, t * adim:(t + 1) * adim]], dim=-1)
        G = G + disc * nets["_reward"](za)
        z = nets["_dynamics"](za)
        disc *= GAMMA
    aH = torch.tanh(nets["_pi"](z))
    zaH = torch.cat([z, aH], dim=-1)
    G = G + disc * torch.min(nets["_Q1"](zaH), nets["_Q2"](zaH))
    G = G.squeeze(-1)
    return torch.where(torch.isnan(G), torch.zeros_like(G), G)


def make_layer(nets, iters, step=1e-3, conv=True, horizon=H, adim=A, z=Z, dtype=torch.float32):
    import theseus as th

    a_var = th.Vector(horizon * adim, name="a", dtype=dtype)
    z_var = th.Variable(torch.zeros(1, z, dtype=dtype), name="z0")

    def err_fn(optim_vars, aux_vars):
        G = value(nets, optim_vars[0].tensor, aux_vars[0].tensor, horizon, adim)
        return (OFFSET - G).unsqueeze(1)

    w = th.ScaleCostWeight(th.Variable(torch.ones(1, 1, dtype=dtype)))
    cost = th.AutoDiffCostFunction([a_var], err_fn, 1, aux_vars=[z_var], cost_weight=w, name="residual")
    obj = th.Objective(dtype=dtype)
    obj.add(cost)
    kw = {} if conv else {"abs_err_tolerance": 0.0, "rel_err_tolerance": 0.0}
    opt = th.LevenbergMarquardt(obj, th.CholeskyDenseSolver, max_iterations=iters, step_size=step, **kw)
    return th.TheseusLayer(opt)


def solve(layer, a_init, z0, backward="truncated", k=5, damping=1e-3, track_state=False):
    kwargs = {"track_best_solution": True, "damping": damping, "track_state_history": track_state}
    if backward in ("truncated", "implicit", "unroll"):
        kwargs["backward_mode"] = backward
        if backward == "truncated":
            kwargs["backward_num_iterations"] = k
    sol, info = layer.forward(input_tensors={"a": a_init, "z0": z0}, optimizer_kwargs=kwargs)
    return sol["a"], info


def inputs(B, seed=77, z=Z, n=H * A):
    g = torch.Generator().manual_seed(seed)
    z0 = torch.randn(B, z, generator=g)
    a0 = torch.rand(B, n, generator=g) - 0.5
    dL = torch.randn(B, n, generator=g)
    return z0, a0, dL


def bench(B, iters, backward, conv, reps, nets):
    layer = make_layer(nets, iters, conv=conv)
    z0, a0, dL = inputs(B)
    ts, tt, cs, ct = [], [], [], []
    iterations = None
    for r in range(reps + 1):  # the first run warms up
        for p in nets.parameters():
            p.grad = None
        t0, c0 = time.perf_counter(), time.process_time()
        if backward == "none":
            with torch.no_grad():
                a, info = solve(layer, a0.clone(), z0, "unroll")
            t1 = t2 = time.perf_counter()
            c1 = c2 = time.process_time()
        else:
            a, info = solve(layer, a0.clone(), z0, backward)
            t1, c1 = time.perf_counter(), time.process_time()
            (dL * a).sum().backward()
            t2, c2 = time.perf_counter(), time.process_time()
        if r:
            ts.append((t1 - t0) * 1e3)
            tt.append((t2 - t0) * 1e3)
            cs.append((c1 - c0) * 1e3)
            ct.append((c2 - c0) * 1e3)
        with torch.no_grad():
            G = value(nets, a.detach(), z0).mean().item()
        iterations = int(info.converged_iter.max().item()) if hasattr(info, "converged_iter") else -1
        status = [getattr(s, "name", str(s)) for s in info.status.tolist()]
    return {"B": B, "iters": iters, "backward": backward, "conv": "official" if conv else "off",
            "solve_ms": statistics.median(ts), "total_ms": statistics.median(tt),
            "solve_cpu_ms": statistics.median(cs), "total_cpu_ms": statistics.median(ct), "G": G,
            "converged_iter": iterations, "max_iter_status": sum(1 for s in status if s == "MAX_ITERATIONS"),
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,32,256")
    ap.add_argument("--iters", default="50,100")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backward", default="", help="comma list; default: all at B=1, truncated+none above")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import theseus as th

    print(f"# theseus {th.__version__} torch {torch.__version__} threads {torch.get_num_threads()} "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}", file=sys.stderr)
    nets = build_nets(1)
    for B in [int(b) for b in args.batches.split(",") if b]:
        for iters in [int(i) for i in args.iters.split(",") if i]:
            modes = args.backward.split(",") if args.backward else (
                ["truncated", "none", "unroll", "implicit"] if B == 1 else ["truncated", "none"])
            for conv in (False, True):
                for bw in modes:
                    print(json.dumps(bench(B, iters, bw, conv, args.reps, nets)), flush=True)


if __name__ == "__main__":
    main()
