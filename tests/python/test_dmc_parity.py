# SPDX-License-Identifier: MIT
"""Parity of difftop's MuJoCo tasks with dm_control (the originals).

For every task: take states from dm_control's own reset distribution and its trajectories under
random actions, copy each state into the C env (through a small ctypes shim over
build/libdifftop.so, path from $DT_LIB), apply the same action for one control step on both, and
compare the reward and the next observation. The C env is re-synchronised to dm_control's state
before every step, so errors do not accumulate: the figures are one-step differences.

difftop runs MuJoCo 2.2.2 (Debian) on its own MJCF files; dm_control runs MuJoCo 3.x on the
upstream ones. Rewards are computed by the same formulas, so they agree to float32 rounding where
the next states agree; the next state differs by solver and model-detail drift, which is tiny
without contacts and larger with them. Tolerances per task are below, with the reason.

Run: DT_LIB=build/libdifftop.so python3 -m pytest -q tests/python/test_dmc_parity.py
"""
import ctypes
import os

import numpy as np
import pytest

suite = pytest.importorskip("dm_control.suite")

# --------------------------------------------------------------------------------------------
# ctypes shim


class EnvOpts(ctypes.Structure):
    _fields_ = [("seed", ctypes.c_uint64), ("obs", ctypes.c_int), ("action_repeat", ctypes.c_int),
                ("frame_stack", ctypes.c_int), ("image_size", ctypes.c_int), ("camera", ctypes.c_int),
                ("max_steps", ctypes.c_int), ("render_shadows", ctypes.c_int),
                ("render_msaa", ctypes.c_int)]


class Space(ctypes.Structure):
    _fields_ = [("ndim", ctypes.c_int), ("shape", ctypes.c_int * 4), ("size", ctypes.c_int64),
                ("dtype", ctypes.c_int), ("low", ctypes.c_float), ("high", ctypes.c_float)]


class StepInfo(ctypes.Structure):
    _fields_ = [("reward", ctypes.c_float), ("terminated", ctypes.c_int),
                ("truncated", ctypes.c_int), ("success", ctypes.c_int)]


def _load_lib():
    path = os.environ.get("DT_LIB", "build/libdifftop.so")
    if not os.path.exists(path):
        pytest.skip(f"{path} not built (set DT_LIB)")
    lib = ctypes.CDLL(os.path.abspath(path))
    lib.dt_env_default_opts.restype = EnvOpts
    lib.dt_env_make.argtypes = [ctypes.c_char_p, ctypes.POINTER(EnvOpts), ctypes.POINTER(ctypes.c_void_p)]
    lib.dt_env_free.argtypes = [ctypes.c_void_p]
    lib.dt_env_obs_space.restype = ctypes.POINTER(Space)
    lib.dt_env_obs_space.argtypes = [ctypes.c_void_p]
    lib.dt_env_action_space.restype = ctypes.POINTER(Space)
    lib.dt_env_action_space.argtypes = [ctypes.c_void_p]
    lib.dt_env_reset.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    lib.dt_env_step.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                ctypes.POINTER(StepInfo)]
    lib.dt_env_observe.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.dt_env_state_size.argtypes = [ctypes.c_void_p]
    lib.dt_env_get_state.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.dt_env_set_state.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.dt_last_error.restype = ctypes.c_char_p
    return lib


class CEnv:
    """The C env with action repeat 1 (one DMC control step per step)."""

    def __init__(self, lib, name):
        self.lib = lib
        opts = lib.dt_env_default_opts()
        opts.action_repeat = 1
        self.ptr = ctypes.c_void_p()
        st = lib.dt_env_make(name.encode(), ctypes.byref(opts), ctypes.byref(self.ptr))
        assert st == 0, lib.dt_last_error().decode()
        self.obs_dim = lib.dt_env_obs_space(self.ptr).contents.size
        self.act_dim = lib.dt_env_action_space(self.ptr).contents.size
        self.state = np.zeros(lib.dt_env_state_size(self.ptr), np.float64)
        self.obs = np.zeros(self.obs_dim, np.float32)
        assert lib.dt_env_reset(self.ptr, 0, self.obs.ctypes.data) == 0

    def get_state(self):
        self.lib.dt_env_get_state(self.ptr, self.state.ctypes.data)
        return self.state.copy()

    def set_state(self, s):
        s = np.ascontiguousarray(s, np.float64)
        assert self.lib.dt_env_set_state(self.ptr, s.ctypes.data) == 0, self.lib.dt_last_error().decode()

    def observe(self):
        self.lib.dt_env_observe(self.ptr, self.obs.ctypes.data)
        return self.obs.copy()

    def step(self, a):
        a = np.ascontiguousarray(a, np.float32)
        info = StepInfo()
        st = self.lib.dt_env_step(self.ptr, a.ctypes.data, len(a), self.obs.ctypes.data, ctypes.byref(info))
        assert st == 0, self.lib.dt_last_error().decode()
        return self.obs.copy(), float(info.reward)

    def __del__(self):
        if getattr(self, "ptr", None):
            self.lib.dt_env_free(self.ptr)


# --------------------------------------------------------------------------------------------
# tasks: (difftop name, dm_control domain, task, sensors in our order, mocap source)
# Our state layout (dmc.c): [steps, reset flag, time, qpos, qvel, act, ctrl, qacc_warmstart,
# mocap_pos, sensordata]. Targets that DMC keeps in the model (reacher geom, finger site) are
# mocap bodies in our models.

TASKS = [
    ("cartpole-balance", "cartpole", "balance", [], None),
    ("cartpole-swingup", "cartpole", "swingup", [], None),
    ("cartpole-swingup-sparse", "cartpole", "swingup_sparse", [], None),
    ("pendulum-swingup", "pendulum", "swingup", [], None),
    ("reacher-easy", "reacher", "easy", [], ("geom", "target")),
    ("reacher-hard", "reacher", "hard", [], ("geom", "target")),
    ("finger-spin", "finger", "spin", ["touchtop", "touchbottom"], ("site", "target")),
    ("finger-turn-easy", "finger", "turn_easy", ["touchtop", "touchbottom"], ("site", "target")),
    ("finger-turn-hard", "finger", "turn_hard", ["touchtop", "touchbottom"], ("site", "target")),
    ("cup-catch", "ball_in_cup", "catch", [], None),
    ("cheetah-run", "cheetah", "run", ["torso_subtreelinvel"], None),
    ("walker-stand", "walker", "stand", ["torso_subtreelinvel"], None),
    ("walker-walk", "walker", "walk", ["torso_subtreelinvel"], None),
    ("walker-run", "walker", "run", ["torso_subtreelinvel"], None),
    ("hopper-stand", "hopper", "stand", ["torso_subtreelinvel", "touch_toe", "touch_heel"], None),
    ("hopper-hop", "hopper", "hop", ["torso_subtreelinvel", "touch_toe", "touch_heel"], None),
    ("acrobot-swingup", "acrobot", "swingup", [], None),
    ("acrobot-swingup-sparse", "acrobot", "swingup_sparse", [], None),
]

# Tolerances, measured (docs/envs.md) and set with headroom.
#  OBS_TOL: max |next obs difference| after one control step from the same state and action
#  REW_TOL: max |reward difference| (smooth rewards); binary rewards could flip where a state sits
#           exactly on a threshold, so for them we bound the fraction of mismatches (FLIP_FRAC).
# Measured with MuJoCo 2.2.2 (C) against mujoco 3.17.0 + dm_control 1.0.50: every task stays
# within 1.6e-6 (next obs) and 3e-8 (reward), contacts included, i.e. float32 rounding of the
# observation. The bounds leave 60x headroom for other 3.x releases; a model mistake (a wrong
# friction, axis or geom) shows up as 1e-2 or more.
OBS_TOL = 1e-4
# The exception: ball-cup contacts in cup-catch (two light bodies touching, pyramidal cones) give
# one-step velocity differences up to 5.1e-2 m/s (positions 2.7e-4) while every contact-free step
# matches to 1e-7. Friction, condim, cone, impratio, solref and warmstart variations of our model
# all made it worse or left it unchanged, so we attribute it to the 2.2.2 -> 3.x solver changes.
OBS_TOL_TASK = {"cup-catch": 0.1}
REW_TOL = 1e-5
FLIP_FRAC = 0.005

BINARY = {"cartpole-swingup-sparse", "pendulum-swingup", "reacher-easy", "reacher-hard", "finger-spin",
          "finger-turn-easy", "finger-turn-hard", "cup-catch", "acrobot-swingup-sparse"}


@pytest.fixture(scope="module")
def lib():
    return _load_lib()


def _sync(cenv, physics, template, sensors, mocap):
    """Copy dm_control's physics state into the C env (template: a C state to fill)."""
    m, d = physics.model, physics.data
    s = template.copy()
    nq, nv, na, nu = m.nq, m.nv, m.na, m.nu
    k = 2
    s[k] = d.time
    k += 1
    s[k:k + nq] = d.qpos
    k += nq
    s[k:k + nv] = d.qvel
    k += nv
    s[k:k + na] = d.act
    k += na
    s[k:k + nu] = d.ctrl
    k += nu
    s[k:k + nv] = d.qacc_warmstart
    k += nv
    if mocap is not None:
        kind, name = mocap
        pos = physics.named.model.geom_pos[name] if kind == "geom" else physics.named.model.site_pos[name]
        s[k:k + 3] = pos
        k += 3
    for name in sensors:
        v = np.atleast_1d(physics.named.data.sensordata[name])
        s[k:k + len(v)] = v
        k += len(v)
    s[0] = 0
    s[1] = 0
    cenv.set_state(s)


def _dmc_obs(ts):
    return np.concatenate([np.asarray(v, np.float64).ravel() for v in ts.observation.values()])


@pytest.mark.parametrize("name,domain,task,sensors,mocap", TASKS, ids=[t[0] for t in TASKS])
def test_parity(lib, name, domain, task, sensors, mocap):
    rng = np.random.default_rng(0)
    dmc = suite.load(domain, task, task_kwargs={"random": 1})
    cenv = CEnv(lib, name)
    template = cenv.get_state()
    max_obs0 = max_obs = max_rew = 0.0
    flips = n = ncon = 0
    for episode in range(3):
        ts = dmc.reset()
        p = dmc.physics
        if domain == "ball_in_cup" and episode > 0:
            # drop the ball into the cup so that the cup's contacts are exercised too
            p.named.data.qpos["ball_x"] = p.named.data.qpos["cup_x"]
            p.named.data.qpos["ball_z"] = p.named.data.qpos["cup_z"] + .34
            p.data.qvel[:] = 0
            p.forward()
        _sync(cenv, p, template, sensors, mocap)
        # observation layout parity at the initial state
        o_d = np.concatenate([np.asarray(v, np.float64).ravel()
                              for v in dmc.task.get_observation(p).values()])
        o_c = cenv.observe()
        assert o_c.shape == o_d.shape, f"{name}: obs dim {o_c.shape} vs dm_control {o_d.shape}"
        max_obs0 = max(max_obs0, float(np.max(np.abs(o_c - o_d))))
        for t in range(200):
            a = rng.uniform(-1, 1, cenv.act_dim).astype(np.float32)
            _sync(cenv, dmc.physics, template, sensors, mocap)
            o_c, r_c = cenv.step(a)
            ts = dmc.step(a.astype(np.float64))
            o_d, r_d = _dmc_obs(ts), float(ts.reward)
            ncon += dmc.physics.data.ncon > 0
            max_obs = max(max_obs, float(np.max(np.abs(o_c - o_d))))
            dr = abs(r_c - r_d)
            if name in BINARY:
                flips += dr > 0.5
            else:
                max_rew = max(max_rew, dr)
            n += 1
    print(f"\n{name}: initial obs max|diff| {max_obs0:.2e}, next obs max|diff| {max_obs:.2e}, "
          f"reward max|diff| {max_rew:.2e}, binary flips {flips}/{n}, steps in contact {ncon}/{n}")
    assert max_obs0 <= 1e-5, f"{name}: initial observation differs by {max_obs0}"
    assert max_obs <= OBS_TOL_TASK.get(name, OBS_TOL), f"{name}: next observation differs by {max_obs}"
    assert max_rew <= REW_TOL, f"{name}: reward differs by {max_rew}"
    assert flips <= FLIP_FRAC * n, f"{name}: {flips}/{n} binary rewards differ"
