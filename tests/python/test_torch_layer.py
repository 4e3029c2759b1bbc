# SPDX-License-Identifier: MIT
"""difftop.torch.TrajoptLayer (C solver + C backward) against a pure-PyTorch unrolled
implementation of the same solvers on the same weights.

Reference: the LM step of the official code  delta = g r / (lambda + |g|^2), a <- a + eta delta,
r = C - G, and projected gradient ascent a <- clip(a + alpha g), with g from
torch.autograd.grad(create_graph=True) so that autograd differentiates through every step
(unroll) or through the last k steps from the detached iterate (truncated), where
G = sum_t gamma^t R(z_t, clip a_t) + gamma^H min(Q1, Q2)(z_H, tanh(pi(z_H))), z_0 = h(x).

Tolerances. The reference runs in float64 (exact to ~1e-15 for our purposes); the C code runs
in float32. As a yardstick of what float32 arithmetic can achieve on the very same computation,
the same reference also runs in float32 (torch). Every quantity q (solution, dL/dx, dL/da_init,
dL/dtheta per parameter) must satisfy
    max|q_C - q_64| <= 10 * max|q_t32 - q_64| + 1e-4 * max|q_64|
i.e. the C solver is within an order of magnitude of PyTorch's own float32 round-off (different
summation orders and fused kernels legitimately differ by small factors), with a floor of 1e-4
relative to the quantity's scale for quantities where torch float32 happens to be nearly exact.
The floor is the a-priori size of float32 round-off through this computation: unit round-off
6e-8, times 20 solver iterations, times a network depth of ~10, times a modest conditioning
factor ~10, is ~1e-4; a derivative bug is off by O(1). (It was 1e-5 until session 10: on an
AVX-512 machine, where vecmath.c's ELU and tanh run on glibc's 16-lane expf / tanhf (up to 4 ulp)
against torch's ~1-ulp ones, C's error in the batched PGA cases reached 4.7e-5 and 6.9e-5
relative, 1.0-1.2x the old bound and 16x torch's float32 error; every other case stayed below
0.3x.)
The problems are chosen so every iterate stays strictly inside the box (asserted), where the
clipped objective is smooth, and so the iterates really move (asserted).
"""
import copy

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
difftop = pytest.importorskip("difftop")
from difftop.told import TOLD  # noqa: E402
from difftop.torch import TrajoptLayer  # noqa: E402

S, A, Z, HID, ENC, H = 6, 2, 8, 32, 16, 3
GAMMA = 0.99


def make_model(seed):
    torch.manual_seed(seed)
    m = TOLD(S, A, latent_dim=Z, mlp_dim=HID, enc_dim=ENC, state_critics=True)
    # a "trained" model: the zero-initialised heads get weights, so G varies with a
    for net in (m._reward, m._Q1, m._Q2):
        torch.nn.init.normal_(net[-1].weight, std=0.3)
        torch.nn.init.normal_(net[-1].bias, std=0.1)
    return m


def G_fn(m, x, a, encode=True):
    z = m._encoder(x) if encode else x
    ac = a.clamp(-1.0, 1.0)
    G, disc = 0.0, 1.0
    for t in range(H):
        za = torch.cat([z, ac[:, t * A:(t + 1) * A]], -1)
        G = G + disc * m._reward(za)[:, 0]
        z = m._dynamics(za)
        disc *= GAMMA
    za = torch.cat([z, torch.tanh(m._pi(z))], -1)
    return G + disc * torch.min(m._Q1(za), m._Q2(za))[:, 0]


def ref_solve(m, x, a_init, o, encode=True):
    """Pure-torch solver; returns the final iterate (differentiable as o['backward'] says) and
    every iterate (for the inside-the-box check)."""
    K = o["max_iters"]
    first_taped = 0 if o["backward"] == "unroll" else K - o["backward_iters"]
    a, iterates = a_init, [a_init.detach()]
    for k in range(K):
        taped = k >= first_taped
        if not taped:
            a = a.detach().requires_grad_()
        elif k == first_taped and k > 0:
            a = a.detach().requires_grad_()  # truncated: the window starts from a detached iterate
        G = G_fn(m, x, a, encode)
        (g,) = torch.autograd.grad(G.sum(), a, create_graph=taped)
        if o["solver"] == "lm":
            r = o["offset"] - G
            D = o["damping"] + (g * g).sum(1)
            a_new = a + o["step_size"] * g * (r / D)[:, None]
        else:
            a_new = (a + o["step_size"] * g).clamp(-1.0, 1.0)
        a = a_new if taped else a_new.detach()
        iterates.append(a.detach())
    return a, torch.stack(iterates)


def ref_grads(m, x, a_init, w, o, dtype, encode=True):
    m = copy.deepcopy(m).to(dtype)
    x = x.detach().to(dtype).requires_grad_()
    a0 = a_init.detach().to(dtype).requires_grad_()
    a, its = ref_solve(m, x, a0, o, encode)
    L = (w.to(dtype) * a).sum()
    names = [n for n, _ in m.named_parameters()]
    params = [p for _, p in m.named_parameters()]
    gs = torch.autograd.grad(L, [x, a0] + params, allow_unused=True)
    z = lambda g, ref: torch.zeros_like(ref) if g is None else g
    out = {"a": a.detach(), "dx": z(gs[0], x), "da0": z(gs[1], a0)}
    out.update({n: z(g, p) for n, g, p in zip(names, gs[2:], params)})
    return {k: v.double() for k, v in out.items()}, its


def c_grads(m, x, a_init, w, o, encode=True):
    m = copy.deepcopy(m)
    layer = TrajoptLayer(m, H, gamma=GAMMA, encoder=encode, max_batch=x.shape[0],
                         abs_tol=0.0, rel_tol=0.0, grad_tol=0.0, **o)
    x = x.detach().clone().requires_grad_()
    a0 = a_init.detach().clone().requires_grad_()
    a = layer(x, a0)
    (w * a).sum().backward()
    out = {"a": a.detach(), "dx": x.grad, "da0": a0.grad}
    for n, p in m.named_parameters():
        out[n] = p.grad if p.grad is not None else torch.zeros_like(p)
    return {k: v.double() for k, v in out.items()}


def compare(c, r64, r32, report):
    worst = 0.0
    for k in r64:
        scale = r64[k].abs().max().item()
        e_c = (c[k] - r64[k]).abs().max().item()
        e_32 = (r32[k] - r64[k]).abs().max().item()
        tol = 10 * e_32 + 1e-4 * scale
        report.append((k, e_c, e_32, scale))
        assert e_c <= tol, f"{k}: |C - ref64| = {e_c:.3g} > tol {tol:.3g} " \
                           f"(torch32 {e_32:.3g}, scale {scale:.3g})"
        worst = max(worst, e_c / max(scale, 1e-30))
    return worst


CASES = {
    # the official LM step (no projection), taped throughout
    "lm-unroll": dict(solver="lm", backward="unroll", max_iters=12, step_size=1e-4, damping=1.0,
                      offset=1000.0),
    # the official truncated mode: the last 4 of 12 iterations are differentiated
    "lm-truncated": dict(solver="lm", backward="truncated", max_iters=12, backward_iters=4,
                         step_size=1e-4, damping=1.0, offset=1000.0),
    "pga-unroll": dict(solver="pga", backward="unroll", max_iters=12, step_size=0.05),
    "pga-truncated": dict(solver="pga", backward="truncated", max_iters=12, backward_iters=5,
                          step_size=0.05),
}


@pytest.mark.parametrize("B", [1, 5])
@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_matches_torch_unrolled(case, B):
    o = dict(CASES[case])
    o.setdefault("offset", 1000.0)
    o.setdefault("damping", 1e-3)
    o.setdefault("backward_iters", 5)
    m = make_model(seed=1)
    g = torch.Generator().manual_seed(100 + B)
    x = torch.randn(B, S, generator=g)
    a_init = (0.3 * torch.randn(B, H * A, generator=g)).clamp(-0.6, 0.6)
    w = torch.randn(B, H * A, generator=g)

    r64, its = ref_grads(m, x, a_init, w, o, torch.float64)
    r32, _ = ref_grads(m, x, a_init, w, o, torch.float32)
    # preconditions: iterates strictly inside the box, and the solver moved them
    assert its.abs().max() < 0.95, "test problem leaves the box: pick a smaller step"
    assert (its[-1] - its[0]).abs().max() > 0.05, "test problem: iterates barely move"

    c = c_grads(m, x, a_init, w, o)
    report = []
    compare(c, r64, r32, report)
    if o["backward"] == "truncated":
        # truncation detaches the start: no gradient reaches a_init
        assert torch.count_nonzero(c["da0"]) == 0
        # ... but it does reach every network in G (encoder, dynamics, reward, Q1, Q2, pi)
        for prefix in ("_encoder", "_dynamics", "_reward", "_Q1", "_Q2", "_pi"):
            assert c[f"{prefix}.0.weight"].abs().max() > 0
    else:
        assert c["da0"].abs().max() > 0
    # the state critics are not in the objective
    assert c["_Qs1.0.weight"].abs().max() == 0


def test_latent_input_without_encoder():
    o = dict(CASES["lm-unroll"], backward_iters=5)
    m = make_model(seed=2)
    g = torch.Generator().manual_seed(7)
    z0 = torch.randn(3, Z, generator=g)
    a_init = (0.3 * torch.randn(3, H * A, generator=g)).clamp(-0.6, 0.6)
    w = torch.randn(3, H * A, generator=g)
    r64, its = ref_grads(m, z0, a_init, w, o, torch.float64, encode=False)
    r32, _ = ref_grads(m, z0, a_init, w, o, torch.float32, encode=False)
    assert its.abs().max() < 0.95
    c = c_grads(m, z0, a_init, w, o, encode=False)
    compare(c, r64, r32, [])
    assert c["_encoder.0.weight"].abs().max() == 0  # not part of the problem


def test_truncated_equals_torch_window_from_detached_iterate():
    """Truncated mode = torch unrolling only the last k steps, started from the C solver's
    own (detached) iterate K-k, computed by a C solve with K-k iterations."""
    m = make_model(seed=3)
    K, k = 12, 4
    g = torch.Generator().manual_seed(11)
    x = torch.randn(2, S, generator=g)
    a_init = (0.3 * torch.randn(2, H * A, generator=g)).clamp(-0.6, 0.6)
    w = torch.randn(2, H * A, generator=g)
    base = dict(solver="lm", step_size=1e-4, damping=1.0, abs_tol=0.0, rel_tol=0.0)
    pre = TrajoptLayer(copy.deepcopy(m), H, gamma=GAMMA, backward="none", max_iters=K - k, **base)
    with torch.no_grad():
        a_mid = pre(x, a_init)
    # torch: k taped steps from the detached a_mid, in float64
    o = dict(solver="lm", backward="unroll", max_iters=k, step_size=1e-4, damping=1.0,
             offset=1000.0, backward_iters=k)
    r64, _ = ref_grads(m, x, a_mid, w, o, torch.float64)
    r32, _ = ref_grads(m, x, a_mid, w, o, torch.float32)
    c = c_grads(m, x, a_init, w, dict(solver="lm", backward="truncated", max_iters=K,
                                       backward_iters=k, step_size=1e-4, damping=1.0))
    r64.pop("da0"), r32.pop("da0")
    assert torch.count_nonzero(c.pop("da0")) == 0
    compare(c, r64, r32, [])


def test_backward_after_another_solve_recomputes():
    """The C solver keeps one solve's history: backward of an older forward re-solves it."""
    m = make_model(seed=4)
    layer = TrajoptLayer(m, H, gamma=GAMMA, solver="pga", backward="unroll", max_iters=6,
                         step_size=0.05, max_batch=4)
    g = torch.Generator().manual_seed(5)
    x1, x2 = torch.randn(2, S, generator=g), torch.randn(4, S, generator=g)
    a1 = layer(x1)
    (a1 ** 2).sum().backward()
    ref = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    m.zero_grad()
    a1b = layer(x1)
    a2 = layer(x2)  # overwrites the C history (and grows nothing: B=4 fits)
    torch.testing.assert_close(a1b, a1, rtol=0, atol=0)
    (a1b ** 2).sum().backward()
    for n, gref in ref.items():
        torch.testing.assert_close(dict(m.named_parameters())[n].grad, gref, rtol=0, atol=0)
    # an in-place weight change between forward and backward cannot be recomputed
    a2 = layer(x2)
    layer(x1)
    with torch.no_grad():
        m._reward[0].weight.add_(0.01)
    with pytest.raises(RuntimeError, match="inplace operation|modified in place"):
        a2.sum().backward()


def test_batch_growth_and_input_errors():
    m = make_model(seed=5)
    layer = TrajoptLayer(m, H, solver="pga", backward="none", max_iters=3, step_size=0.05)
    x = torch.randn(7, S)
    a = layer(x)  # max_batch 1 grows to 7
    assert a.shape == (7, H * A)
    with pytest.raises(TypeError, match="float32"):
        layer(x.double())
    with pytest.raises(ValueError, match="expected"):
        layer(torch.randn(2, S + 1))
    with pytest.raises(ValueError, match="a_init"):
        layer(x, torch.zeros(7, H * A + 1))
    with pytest.raises(difftop.UnsupportedError):
        TrajoptLayer(m, H, solver="newton", backward="unroll")
    with pytest.raises(ValueError, match="unknown solver"):
        TrajoptLayer(m, H, solver="gauss")


def test_implicit_mode_runs_and_reaches_parameters():
    """Implicit backward at a PGA solution: finite gradients into the networks, none into a_init."""
    m = make_model(seed=6)
    layer = TrajoptLayer(m, H, solver="pga", backward="implicit", max_iters=40, step_size=0.05)
    x = torch.randn(2, S, requires_grad=True)
    a0 = layer.pi_init(x).requires_grad_()
    a = layer(x, a0)
    a.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().max() > 0
    assert torch.count_nonzero(a0.grad) == 0
    assert m._dynamics[0].weight.grad.abs().max() > 0


def test_projection_option_keeps_lm_iterates_in_the_box():
    """The official LM (project=False) may leave the action box with a large step; project=True
    clamps every iterate to [lo, hi]; with lo/hi narrowed, to that box."""
    m = make_model(seed=7)
    x = torch.randn(4, S, generator=torch.Generator().manual_seed(3))
    kw = dict(solver="lm", backward="unroll", max_iters=5, step_size=1.0, damping=1e-3)
    free = TrajoptLayer(m, H, max_batch=4, **kw)(x)
    assert free.abs().max() > 1.0  # the unprojected step leaves the box
    proj = TrajoptLayer(m, H, max_batch=4, project=True, **kw)(x)
    assert proj.abs().max() <= 1.0
    narrow = TrajoptLayer(m, H, max_batch=4, project=True, lo=-0.5, hi=0.5, **kw)(x)
    assert narrow.abs().max() <= 0.5 and (narrow.abs() == 0.5).any()
