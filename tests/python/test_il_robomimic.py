# SPDX-License-Identifier: MIT
"""A robomimic-format HDF5 file written by h5py loads in difftop's C reader (difftop demos --check),
and malformed files are rejected with a message naming the demo and the key.

Run: /usr/bin/python3 -m pytest -s tests/python/test_il_robomimic.py (needs build/difftop).
"""
import json
import os
import subprocess

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXE = os.environ.get("DT_EXE", os.path.join(ROOT, "build", "difftop"))
if not os.path.exists(EXE):
    pytest.skip(f"{EXE} not built", allow_module_level=True)


def write_robomimic(path, lengths=(7, 5, 9), corrupt=None):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        total = 0
        for k, T in enumerate(lengths):
            g = data.create_group(f"demo_{k}")
            g.attrs["num_samples"] = T
            g.create_dataset("obs/robot0_eef_pos", data=rng.normal(size=(T, 3)))  # float64
            g.create_dataset("obs/robot0_gripper_qpos", data=rng.normal(size=(T, 2)).astype(np.float32))
            g.create_dataset("obs/agentview_image", data=np.zeros((T, 8, 8, 3), np.uint8))
            g.create_dataset("actions", data=rng.uniform(-1, 1, size=(T, 7)))
            g.create_dataset("rewards", data=np.zeros(T))
            g.create_dataset("dones", data=np.eye(T)[-1].astype(np.int64))
            total += T
        data.attrs["total"] = total
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {}})
        if corrupt == "nan":
            data["demo_1/actions"][2, 4] = np.nan
        elif corrupt == "missing":
            del data["demo_2/obs/robot0_gripper_qpos"]
        elif corrupt == "num_samples":
            data["demo_0"].attrs["num_samples"] = 99
    return path


def check(path, keys=None):
    cmd = [EXE, "demos", "--check", str(path)]
    if keys:
        cmd += ["--obs-keys", keys]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_robomimic_file_loads(tmp_path):
    path = write_robomimic(tmp_path / "rm.hdf5")
    r = check(path)
    assert r.returncode == 0, r.stderr
    # every 1-D/2-D float key by name (the image is skipped): eef_pos (3) + gripper (2)
    assert "3 demos, 21 steps" in r.stdout
    assert "obs 'robot0_eef_pos,robot0_gripper_qpos' (5 dims), actions 7 dims" in r.stdout
    with h5py.File(path) as f:
        acts = np.concatenate([f[f"data/demo_{k}/actions"][:] for k in range(3)])
    lo = acts.min(axis=0)
    for j in range(7):
        line = [x for x in r.stdout.splitlines() if x.strip().startswith(f"action[{j}]")][0]
        got = float(line.split("[")[2].split(",")[0])
        assert abs(got - lo[j]) < 1e-5


def test_robomimic_key_selection(tmp_path):
    path = write_robomimic(tmp_path / "rm.hdf5")
    r = check(path, "robot0_gripper_qpos")
    assert r.returncode == 0, r.stderr
    assert "(2 dims)" in r.stdout


@pytest.mark.parametrize("corrupt,words", [
    ("nan", ["data/demo_1/actions", "NaN", "step 2, dim 4"]),
    ("missing", ["data/demo_2", "obs/robot0_gripper_qpos"]),
    ("num_samples", ["data/demo_0", "num_samples = 99"]),
])
def test_robomimic_invalid(tmp_path, corrupt, words):
    path = write_robomimic(tmp_path / f"bad_{corrupt}.hdf5", corrupt=corrupt)
    r = check(path)
    assert r.returncode == 1
    for w in words:
        assert w in r.stderr, r.stderr


def test_difftop_file_reads_in_h5py(tmp_path):
    out = tmp_path / "pusht.hdf5"
    r = subprocess.run([EXE, "demos", "--task", "pusht", "--episodes", "2", "--seed", "4", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with h5py.File(out) as f:
        assert f["data"].attrs["total"] == sum(f[f"data/{k}/actions"].shape[0] for k in f["data"])
        assert json.loads(f["data"].attrs["env_args"])["env_name"] == "pusht"
        for k in f["data"]:
            g = f[f"data/{k}"]
            T = g.attrs["num_samples"]
            assert g["obs/state"].shape == (T, 5) and g["actions"].shape == (T, 2)
            assert g["dones"][-1] == 1
        acts = np.concatenate([f[f"data/{k}/actions"][:] for k in f["data"]])
        np.testing.assert_allclose(f["stats/actions/min"][:], acts.min(axis=0))
        np.testing.assert_allclose(f["stats/actions/max"][:], acts.max(axis=0))
