# SPDX-License-Identifier: MIT
"""difftop.il: IL policies trained by the CLI (`difftop demos` + `difftop il-train`, tiny
settings) load in Python, act, and evaluate to exactly the score il-train wrote to eval.json.

Run: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 -m pytest -q tests/python/test_il_python.py
(needs build/difftop and build/libdifftop.so built with HDF5 and Chipmunk2D; the DMC test also
needs MuJoCo). About 10 s, most of it the Push-T expert recording 3 demos.
"""
import gc
import json
import os
import pathlib
import subprocess

import pytest

np = pytest.importorskip("numpy")
difftop = pytest.importorskip("difftop")
from difftop import _lib  # noqa: E402
from difftop.il import Policy, read_config  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXE = os.environ.get("DT_EXE", str(ROOT / "build" / "difftop"))
IMAGE = 40  # the smallest square the image BC's conv encoder takes is 39


def _tasks():
    names, out = _lib.lib.dt_env_names(), []
    while names[len(out)]:
        out.append(names[len(out)].decode())
    return out


def _need(task):
    if not os.path.exists(EXE):
        pytest.skip(f"{EXE} not built (cmake --build build)")
    if not difftop.il.have_hdf5():
        pytest.skip("libdifftop built without HDF5: no demonstration files")
    if task not in _tasks():
        pytest.skip(f"libdifftop built without the {task} environment "
                    f"({'Chipmunk2D' if task == 'pusht' else 'MuJoCo'} missing)")


def _cli(*args, cwd):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([EXE, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, f"difftop {' '.join(map(str, args))}:\n{r.stdout}\n{r.stderr}"
    return r


def _eval_json(run):
    return json.loads((pathlib.Path(run) / "eval.json").read_text())


@pytest.fixture(scope="module")
def pusht(tmp_path_factory):
    """3 Push-T demos (with 40x40 frames) and three tiny runs: diffusion and BC on the state,
    BC on image + agent_pos; each evaluated by il-train on 3 (image: 2) episodes."""
    _need("pusht")
    d = tmp_path_factory.mktemp("il_pusht")
    _cli("demos", "--task", "pusht", "--episodes", 3, "--seed", 0, "--image", IMAGE,
         "--out", "D.hdf5", cwd=d)
    common = ["--demos", "D.hdf5", "--seed", 1, "--epochs", 2, "hidden=32"]
    _cli("il-train", *common, "--obs-keys", "state", "--policy", "diffusion", "--eval-episodes", 3,
         "--out", "diffusion", "diffusion_steps=20", "ddim_steps=4", cwd=d)
    _cli("il-train", *common, "--obs-keys", "state", "--policy", "bc", "--eval-episodes", 3,
         "--out", "bc", cwd=d)
    _cli("il-train", *common, "--obs-keys", "image,agent_pos", "--policy", "bc",
         "--eval-episodes", 2, "--out", "image", "conv_channels=4", "conv_out=8", cwd=d)
    return d


def test_config_and_properties(pusht):
    with Policy.load(pusht / "diffusion") as p:
        assert (p.kind, p.task, p.obs_dim, p.act_dim) == ("diffusion", "pusht", 5, 2)
        assert (p.obs_steps, p.act_steps, p.seed) == (2, 4, 1)
        assert p.obs_keys == ["state"] and p.image_shape is None
        cfg = p.config
        assert cfg["hidden"] == 32 and cfg["ddim_steps"] == 4 and cfg["base"] == ""
        assert isinstance(cfg["lr"], float) and abs(cfg["lr"] - 1e-3) < 1e-9
        cfg["hidden"] = 7  # a copy
        assert p.config["hidden"] == 32
        assert "diffusion" in repr(p) and p.kind in difftop.il.kinds()
    with Policy.load(pusht / "image") as p:
        assert p.kind == "bc" and p.obs_dim == 2 and p.image_shape == (IMAGE, IMAGE, 3)
        assert p.obs_keys == ["image", "agent_pos"]


def test_eval_matches_il_train(pusht):
    for run in ("diffusion", "bc", "image"):
        ref = _eval_json(pusht / run)
        with Policy.load(pusht / run) as p:
            r = p.eval_pusht(episodes=ref["episodes"])
        assert r.episodes == ref["episodes"] and len(r.scores) == r.episodes
        assert abs(r.mean_score - ref["mean_score"]) <= 1e-6, (run, r.mean_score, ref)
        assert abs(r.success_rate - ref["success_rate"]) <= 1e-6
        assert abs(np.mean(r.scores) - r.mean_score) < 1e-12
        assert all(0.0 <= s <= 1.0 for s in r.scores) and r.ms_per_action > 0
        assert r.sd_score == pytest.approx(np.std(r.scores, ddof=1))
        assert r.as_dict()["scores"] == r.scores


def test_sample_seed_changes_diffusion_and_back(pusht):
    with Policy.load(pusht / "diffusion") as p:
        assert p.sample_seed == 0
        first = p.eval_pusht(episodes=3)
        others = []
        for s in (1, 2, 3):
            p.sample_seed = s
            others.append(p.eval_pusht(episodes=3))
        assert any(o.scores != first.scores for o in others), [o.scores for o in others]
        # acting draws from the policy's own stream, which evaluations do not depend on
        h = np.zeros((p.obs_steps, p.obs_dim), np.float32)
        a1, a2 = p.act(h), p.act(h)
        assert not np.array_equal(a1, a2)  # diffusion is stochastic
        p.set_sample_seed(0)
        again = p.eval_pusht(episodes=3)
        assert again.scores == first.scores and again.mean_score == first.mean_score
        with pytest.raises(ValueError, match="sample seed"):
            p.sample_seed = -1
        with pytest.raises(ValueError, match="sample seed"):
            p.sample_seed = 2**64


def test_act_shapes_and_bc_determinism(pusht):
    with Policy.load(pusht / "bc") as p:
        rng = np.random.default_rng(0)
        # a plausible Push-T state history: agent x, y, block x, y, angle (pixels, radians)
        h = np.concatenate([rng.uniform(100, 400, (2, 4)), rng.uniform(-3, 3, (2, 1))], 1)
        a = p.act(h)  # float64 in, converted
        assert a.shape == (p.act_steps, p.act_dim) == (4, 2) and a.dtype == np.float32
        assert np.all(np.isfinite(a))
        assert np.array_equal(p.act(h.tolist()), a)  # nested lists; BC is deterministic
        assert np.array_equal(p(h.astype(np.float32)), a)
        assert h.dtype == np.float64  # the caller's array is untouched
    with Policy.load(pusht / "image") as p:
        To = p.obs_steps
        imgs = np.random.default_rng(1).integers(0, 256, (To, IMAGE, IMAGE, 3), dtype=np.uint8)
        a = p.act(np.full((To, 2), 256.0), images=imgs)
        assert a.shape == (4, 2) and np.all(np.isfinite(a))
        assert np.array_equal(p.act(np.full((To, 2), 256.0), images=imgs), a)
        with pytest.raises(ValueError, match="needs images"):
            p.act(np.zeros((To, 2)))
        with pytest.raises(ValueError, match="uint8"):
            p.act(np.zeros((To, 2)), images=imgs.astype(np.float32))
        with pytest.raises(ValueError, match="images have shape"):
            p.act(np.zeros((To, 2)), images=imgs[:, :20])


def test_bad_input(pusht):
    with Policy.load(pusht / "bc") as p:
        To, od = p.obs_steps, p.obs_dim
        for shape in [(To + 1, od), (To, od - 1), (od,), (1, To, od)]:
            with pytest.raises(ValueError, match=r"shape .*expected \(obs_steps, obs_dim\)"):
                p.act(np.zeros(shape))
        h = np.zeros((To, od))
        h[1, 3] = np.nan
        with pytest.raises(ValueError, match="non-finite value .* frame 1, dim 3"):
            p.act(h)
        h[1, 3] = np.inf
        with pytest.raises(ValueError, match="non-finite"):
            p.act(h)
        with pytest.raises(ValueError, match="not a numeric array"):
            p.act([["a"] * od] * To)
        with pytest.raises(ValueError, match="takes no images"):
            p.act(np.zeros((To, od)), images=np.zeros((To, 8, 8, 3), np.uint8))
        with pytest.raises(ValueError, match="eval_pusht"):
            p.eval_dmc()
        with pytest.raises(ValueError, match="episodes"):
            p.eval_pusht(episodes=0)
        with pytest.raises(ValueError, match="seed0"):
            p.eval_pusht(episodes=2, seed0=2**32 - 1)


def test_load_errors_name_the_file(pusht, tmp_path):
    missing = tmp_path / "no_such_run"
    with pytest.raises(difftop.DifftopError) as ei:
        Policy.load(missing)
    assert isinstance(ei.value, difftop.DifftopIOError)
    assert str(missing / "config.yaml") in str(ei.value) and "dt_il_policy_load" in str(ei.value)

    good = pusht / "bc"
    for name, data in [("garbage", b"this is not a safetensors file\x00\x01\x02" * 8),
                       ("truncated", (good / "model.safetensors").read_bytes()[:200]),
                       ("empty", b"")]:
        bad = tmp_path / name
        bad.mkdir()
        (bad / "config.yaml").write_bytes((good / "config.yaml").read_bytes())
        (bad / "model.safetensors").write_bytes(data)
        with pytest.raises(difftop.DifftopError) as ei:
            Policy.load(bad)
        assert str(bad / "model.safetensors") in str(ei.value), (name, str(ei.value))
        assert ei.value.status in (4, 5), (name, ei.value.status, str(ei.value))

    bad = tmp_path / "badconfig"
    bad.mkdir()
    (bad / "config.yaml").write_text("policy: no-such-kind\nobs_dim: 5\nact_dim: 2\n")
    (bad / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes())
    with pytest.raises(difftop.DifftopError) as ei:
        Policy.load(bad)
    assert "config.yaml" in str(ei.value)


def test_lifetime(pusht):
    p = Policy.load(pusht / "bc")
    with p as q:
        assert q is p
    assert p._ptr is None
    p.close()  # idempotent
    with pytest.raises(difftop.StateError, match="closed"):
        p.act(np.zeros((2, 5)))
    with pytest.raises(difftop.StateError):
        p.eval_pusht(episodes=1)
    assert "closed" in repr(p)
    p = Policy.load(pusht / "bc")
    del p
    gc.collect()
    Policy.__new__(Policy).__del__()  # a half-built object frees nothing and does not raise


def test_read_config(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text("# resolved config written by difftop\n---\npolicy: bc\nbase: '\"\"'\n"
                 "quoted: 'it''s'\ndq: \"a b\"\nn: -3\nx: 1.5e-3\ny: .inf\npath: /a/b:c\n\n")
    cfg = read_config(tmp_path)  # a directory means its config.yaml
    assert cfg == {"policy": "bc", "base": "", "quoted": "it's", "dq": "a b", "n": -3,
                   "x": 1.5e-3, "y": float("inf"), "path": "/a/b:c"}
    f.write_text("policy: bc\n  nested: 1\n")
    with pytest.raises(difftop.FormatError, match=r"config.yaml:2"):
        read_config(f)


def test_dmc_policy(tmp_path):
    _need("cartpole-swingup")
    _cli("demos", "--task", "cartpole-swingup", "--episodes", 2, "--seed", 0, "--out", "C.hdf5",
         cwd=tmp_path)
    _cli("il-train", "--demos", "C.hdf5", "--policy", "bc", "--seed", 1, "--epochs", 2,
         "--eval-episodes", 2, "--out", "run", "hidden=32", cwd=tmp_path)
    ref = _eval_json(tmp_path / "run")
    with Policy.load(tmp_path / "run") as p:
        assert p.task == "cartpole-swingup" and p.action_repeat == ref["action_repeat"] == 8
        assert (p.obs_steps, p.act_steps) == (ref["obs_steps"], ref["act_steps"])
        r = p.eval_dmc(episodes=2)
        assert abs(r.mean_score - ref["mean_score"]) <= 1e-6 and r.success_rate is None
        assert abs(r.sd_score - ref["sd_return"]) <= 1e-6
        assert [round(v, 3) for v in r.returns] == pytest.approx(ref["returns"], abs=1e-9)
        a = p.act(np.zeros((p.obs_steps, p.obs_dim)))
        assert a.shape == (p.act_steps, p.act_dim) == (1, 1) and -1 <= a[0, 0] <= 1
        with pytest.raises(ValueError, match="eval_dmc"):
            p.eval_pusht(episodes=1)
    ex = difftop.il.eval_expert_dmc("cartpole-swingup", 8, episodes=2)
    assert abs(ex.mean_score - ref["expert_return"]) <= 1e-6


def test_demos_refuse_a_missing_folder_up_front(tmp_path):
    """demos checks where the file goes before its rollouts (200 Push-T demos take minutes):
    a missing folder fails with a message that names it (after the rollouts, the HDF5 layer
    could only say that it cannot create the file)."""
    _need("cartpole-swingup")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([EXE, "demos", "--task", "cartpole-swingup", "--episodes", "500", "--out",
                        "nodir/C.hdf5"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "the folder nodir does not exist" in r.stderr, r.stderr
    assert not (tmp_path / "nodir").exists()


def test_dmc_sample_seeds(tmp_path):
    """il-eval --sample-seeds N on a DMC task: each sample seed's mean return equals a separate
    --sample-seed k evaluation, the reported score is their mean, and a diffusion policy's
    draws differ between sample seeds."""
    _need("cartpole-swingup")
    _cli("demos", "--task", "cartpole-swingup", "--episodes", 2, "--seed", 0, "--out", "C.hdf5",
         cwd=tmp_path)
    _cli("il-train", "--demos", "C.hdf5", "--policy", "diffusion", "--seed", 1, "--epochs", 2,
         "--eval-episodes", 0, "--out", "run", "hidden=32", cwd=tmp_path)
    _cli("il-eval", "run", "--episodes", 2, "--sample-seed", 3, "--sample-seeds", 3, cwd=tmp_path)
    multi = _eval_json(tmp_path / "run")
    by = multi["return_by_sample_seed"]
    assert multi["sample_seed0"] == 3 and multi["sample_seeds"] == 3 and len(by) == 3
    assert len(multi["returns"]) == 3 * 2
    assert multi["mean_score"] == pytest.approx(sum(by) / 3, abs=1e-5)
    for k in range(3):
        _cli("il-eval", "run", "--episodes", 2, "--sample-seed", 3 + k, cwd=tmp_path)
        one = _eval_json(tmp_path / "run")
        assert one["sample_seeds"] == 1 and "return_by_sample_seed" not in one
        assert one["mean_score"] == pytest.approx(by[k], abs=1e-5)
        assert one["returns"] == pytest.approx(multi["returns"][2 * k:2 * k + 2], abs=1e-9)
    assert max(by) - min(by) > 1e-3, f"three sample seeds drew the same returns {by}"
