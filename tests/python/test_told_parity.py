# SPDX-License-Identifier: MIT
"""A TOLD model built and initialised in PyTorch (difftop.told.TOLD, the official code's module
and state_dict names) loads into the C agent (dt_agent_new -> dt_agent_model -> dt_params_load
of a safetensors file) and computes the same latent, rewards, next latents, Q values, pi action
and trajectory-optimization plan (dt_trajopt_solve on dt_told_plan) as PyTorch.

Tolerances: torch float64 is the reference; the C library runs float32. A quantity q passes
when  max|q_C - q_64| <= 10 * max|q_t32 - q_64| + 1e-6 * max|q_64|  (within an order of
magnitude of PyTorch's own float32 round-off on the same computation; see test_torch_layer.py).
Parameters move bit-exactly (float32 in, float32 out), which is asserted with equality.
"""
import copy

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
difftop = pytest.importorskip("difftop")
from difftop.told import TOLD  # noqa: E402

S, A, B, H, GAMMA = 17, 6, 4, 5, 0.99


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = difftop.RLConfig(algo="difftop")  # official sizes: latent 50, mlp 512, enc 256
    torch.manual_seed(0)
    model = TOLD.from_config(S, A, cfg)
    assert model.state_critics
    # stand-in for a trained model: every parameter (also the zero-initialised last layers and
    # the LayerNorm gains) moves away from its initial value
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * (0.02 if p.dim() == 2 else 0.1))
    path = tmp_path_factory.mktemp("told") / "model.safetensors"
    model.save_safetensors(str(path), metadata={"source": "torch"})
    agent = difftop.Agent(cfg, S, A)
    agent.model.load(str(path))  # strict: no missing, no unexpected names
    return cfg, model, agent, path


def check(name, c, f64, f32):
    c, f64, f32 = (torch.as_tensor(np.asarray(v)).double() for v in (c, f64, f32))
    e_c = (c - f64).abs().max().item()
    e_32 = (f32 - f64).abs().max().item()
    scale = f64.abs().max().item()
    tol = 10 * e_32 + 1e-6 * scale
    assert e_c <= tol, f"{name}: |C - ref64| {e_c:.3g} > {tol:.3g} (torch32 {e_32:.3g}, scale {scale:.3g})"
    return e_c / max(scale, 1e-30)


def test_state_dict_names_and_values_identical(setup):
    cfg, model, agent, path = setup
    sd = model.state_dict()
    names = agent.model.params.names()
    assert sorted(names) == sorted(sd), "C and torch state_dict names differ"
    for n in names:
        np.testing.assert_array_equal(agent.model.params.value(n), sd[n].numpy(), err_msg=n)
    # and back: the C writer's file loads into a fresh torch TOLD bit-exactly
    out = path.parent / "from_c.safetensors"
    agent.model.save(str(out))
    m2 = TOLD.from_config(S, A, cfg)
    m2.load_safetensors(str(out))
    for n, v in m2.state_dict().items():
        assert torch.equal(v, sd[n]), n


def test_networks_match(setup):
    cfg, model, agent, _ = setup
    m64 = copy.deepcopy(model).double()
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(B, S, generator=g)
    act = torch.rand(B, A, generator=g) * 2 - 1
    c = agent.model
    o = obs.numpy()
    with torch.no_grad():
        z32, z64 = model.h(obs), m64.h(obs.double())
        check("latent h(obs)", c.h(o), z64, z32)
        zc = z32.numpy()  # all later C calls take the float32 latent, as torch32 does
        (d32, r32), (d64, r64) = model.next(z32, act), m64.next(z32.double(), act.double())
        dc, rc = c.next(zc, act.numpy())
        check("dynamics", dc, d64, d32)
        check("reward", rc, r64, r32)
        (q1_32, q2_32), (q1_64, q2_64) = model.Q(z32, act), m64.Q(z32.double(), act.double())
        q1c, q2c = c.Q(zc, act.numpy())
        check("Q1", q1c, q1_64, q1_32)
        check("Q2", q2c, q2_64, q2_32)
        check("pi", c.pi(zc), m64.pi(z32.double()), model.pi(z32))
        (s1_32, s2_32) = model.Qs(obs, act)
        (s1_64, s2_64) = m64.Qs(obs.double(), act.double())
        s1c = c.nets["_Qs1"](np.ascontiguousarray(np.concatenate([o, act.numpy()], 1)))
        check("Qs1", s1c, s1_64, s1_32)
        # the pi rollout that initialises the planner
        check("pi rollout", c.plan(H, GAMMA).pi_rollout(o), m64.pi_rollout(obs.double(), H),
              model.pi_rollout(obs, H))


def torch_lm(m, obs, a, iters, eta, lam, offset):
    """The official LM iteration in torch (no graph): a += eta g (C - G) / (lam + |g|^2)."""
    for _ in range(iters):
        a = a.detach().requires_grad_()
        G = m.plan_value(obs, a, H, GAMMA)
        (g,) = torch.autograd.grad(G.sum(), a)
        a = a + eta * g * ((offset - G) / (lam + (g * g).sum(1)))[:, None]
    with torch.no_grad():
        return a.detach(), m.plan_value(obs, a, H, GAMMA)


def test_planned_action_matches(setup):
    cfg, model, agent, _ = setup
    m64 = copy.deepcopy(model).double()
    g = torch.Generator().manual_seed(2)
    obs = torch.randn(B, S, generator=g)
    a_init = model.pi_rollout(obs, H)
    # the official solver with convergence tests off (so both sides run every iteration);
    # step and damping chosen so that every iterate stays inside the action box
    iters, eta, lam = 30, 1e-4, 1.0
    solver = difftop.Trajopt(agent.model.plan(H, GAMMA), max_batch=B, solver="lm",
                             backward="none", max_iters=iters, step_size=eta, damping=lam,
                             abs_tol=0.0, rel_tol=0.0)
    res = solver.solve(obs.numpy(), a_init.numpy())
    a64, G64 = torch_lm(m64, obs.double(), a_init.double(), iters, eta, lam, 1000.0)
    a32, G32 = torch_lm(model, obs, a_init, iters, eta, lam, 1000.0)
    assert a64.abs().max() < 0.99, "iterates left the box: the comparison would be ill-posed"
    assert (a64 - a_init.double()).abs().max() > 1e-2, "the solver did not move"
    check("planned trajectory", res.a_final, a64, a32)
    check("planned G", res.G, G64, G32)
    # the action the agent executes is the first action of the plan
    check("first action", res.a_final[:, :A], a64[:, :A], a32[:, :A])
    assert list(solver.iterations) == [iters] * B
