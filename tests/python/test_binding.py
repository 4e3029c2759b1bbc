# SPDX-License-Identifier: MIT
"""The difftop ctypes binding without torch: library lookup and version check, exceptions per
status with dt_last_error()'s message, array validation, zero-copy parameter views, safetensors
round trips, and the solver's numpy API."""
import os
import pathlib
import subprocess
import sys

import pytest

np = pytest.importorskip("numpy")
difftop = pytest.importorskip("difftop")

ROOT = pathlib.Path(__file__).resolve().parents[2]


def small_told(seed=0):
    cfg = difftop.RLConfig(latent_dim=8, mlp_dim=32, enc_dim=16, algo="difftop")
    return difftop.Told(5, 2, cfg, state_critics=True, seed=seed)


def test_version_matches_package():
    assert difftop.library_version()[:2] == tuple(int(v) for v in difftop.__version__.split(".")[:2])
    assert difftop.library_version_string().startswith(".".join(map(str, difftop.library_version())))


def test_library_lookup_env_var_is_honoured(tmp_path):
    env = dict(os.environ, DIFFTOP_LIB=str(tmp_path / "nope.so"), PYTHONPATH=str(ROOT / "python"))
    p = subprocess.run([sys.executable, "-c", "import difftop"], env=env, capture_output=True,
                       text=True)
    assert p.returncode != 0 and "nope.so" in p.stderr and "DIFFTOP_LIB" in p.stderr


def test_status_exceptions_carry_last_error():
    with pytest.raises(difftop.NotFoundError) as ei:
        difftop.RLConfig(no_such_key=1)
    assert ei.value.status == 7 and "no_such_key" in str(ei.value)
    assert isinstance(ei.value, LookupError) and isinstance(ei.value, difftop.DifftopError)
    plan = small_told().plan(3)
    with pytest.raises(difftop.ArgumentError, match="max_iters"):
        difftop.Trajopt(plan, max_iters=0)
    with pytest.raises(difftop.UnsupportedError, match="newton"):
        difftop.Trajopt(plan, solver="newton", backward="truncated")
    with pytest.raises(difftop.DifftopIOError):
        small_told().load("/nonexistent/dir/x.safetensors")


def test_array_validation():
    t = small_told()
    plan = t.plan(3)
    s = difftop.Trajopt(plan, max_batch=2, solver="pga", backward="unroll", max_iters=3,
                        step_size=0.1)
    x = np.zeros((2, 5), np.float32)
    a = np.zeros((2, 6), np.float32)
    with pytest.raises(TypeError, match="float32"):
        s.solve(x, a.astype(np.float64))
    with pytest.raises(TypeError, match="ndarray"):
        s.solve(x, a.tolist())
    with pytest.raises(ValueError, match="C-contiguous"):
        s.solve(x, np.zeros((6, 2), np.float32).T)
    with pytest.raises(ValueError, match=r"x: shape \(2, 4\), expected \(2, 5\)"):
        s.solve(np.zeros((2, 4), np.float32), a)
    with pytest.raises(ValueError, match="max_batch"):
        s.solve(np.zeros((3, 5), np.float32), np.zeros((3, 6), np.float32))
    with pytest.raises(difftop.StateError, match="no solve"):
        s.backward(a)
    s.solve(x, a)
    with pytest.raises(ValueError, match="dL_da"):
        s.backward(np.zeros((1, 6), np.float32))
    with pytest.raises(difftop.NonFiniteError, match="non-finite"):
        s.backward(np.full((2, 6), np.nan, np.float32))


def test_param_views_are_zero_copy_and_save_load(tmp_path):
    t = small_told(seed=1)
    names = t.params.names()
    assert names[0] == "_encoder.0.weight" and "_Qs2.5.bias" in names
    w = t.params.value("_reward.4.weight")
    assert w.shape == (1, 32) and not w.any()  # TD-MPC zeroes the reward head
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    z = t.h(x)
    za = np.ascontiguousarray(np.concatenate([z, np.zeros((3, 2), np.float32)], 1))
    assert not t.nets["_reward"](za).any()
    w[...] = 0.5  # writes into the C buffer
    assert t.nets["_reward"](za).any()
    path = tmp_path / "m.safetensors"
    t.save(str(path), metadata={"k": "v"})
    u = small_told(seed=2)
    assert not np.array_equal(u.params.value("_encoder.0.weight"), t.params.value("_encoder.0.weight"))
    u.load(str(path))
    for n in names:
        np.testing.assert_array_equal(u.params.value(n), t.params.value(n))
    from difftop import safetensors
    tensors, meta = safetensors.load_file(str(path))
    assert meta == {"k": "v"} and set(tensors) == set(names)
    np.testing.assert_array_equal(tensors["_reward.4.weight"], w)
    # a file missing a tensor is rejected (strict), and accepted non-strictly
    tensors.pop("_pi.0.bias")
    safetensors.save_file(tensors, str(path))
    with pytest.raises(difftop.NotFoundError, match="_pi.0.bias"):
        u.load(str(path))
    u.load(str(path), strict=False)


def test_solver_numpy_api_and_gradients_accumulate():
    t = small_told(seed=3)
    rng = np.random.default_rng(1)
    for n in t.params.names():  # give the zero heads weights so G depends on a
        v = t.params.value(n)
        if not v.any():
            v[...] = 0.3 * rng.standard_normal(v.shape)
    plan = t.plan(3)
    s = difftop.Trajopt(plan, max_batch=4, solver="pga", backward="unroll", max_iters=5,
                        step_size=0.05)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    a0 = plan.pi_rollout(x)
    r = s.solve(x, a0)
    G0, g0 = s.eval(x, a0)
    assert np.all(r.G >= G0 - 1e-5)  # ascent on G (small steps)
    assert list(s.iterations) == [5] * 4
    dL = np.ones_like(r.a_final)
    t.params.zero_grad()
    dx, da = s.backward(dL)
    g1 = t.params.grad("_dynamics.0.weight").copy()
    assert dx.shape == (4, 5) and np.abs(g1).max() > 0 and np.abs(da).max() > 0
    s.solve(x, a0)
    s.backward(dL)  # adds into the gradients
    np.testing.assert_allclose(t.params.grad("_dynamics.0.weight"), 2 * g1, rtol=1e-6, atol=1e-7)
    st = s.stats
    assert st["iterations"] == 5 and st["backward_ms"] >= 0
    opts = difftop.options_dict(s.options)
    assert opts["solver"] == "pga" and opts["backward"] == "unroll"
    with pytest.raises(TypeError, match="unknown option"):
        difftop.trajopt_options(iterations=3)
