# SPDX-License-Identifier: MIT
"""difftop's environments (DMC-style MuJoCo tasks, Push-T) with gymnasium's API.

    env = difftop.envs.make("cartpole-swingup", seed=1)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    frame = env.render()                     # uint8 [H, W, 3]
    s = env.get_state(); env.set_state(s)    # exact save/restore of the simulator

When gymnasium is installed, Env is a gymnasium.Env, its spaces are gymnasium.spaces.Box, and
every task is registered as "difftop/<task>-v0" (gymnasium.make("difftop/cartpole-swingup-v0")).
Without gymnasium, the spaces are the small Box class below (shape, dtype, low, high, sample,
contains). The time limit is the C environment's own: episodes end with truncated=True.
"""
import ctypes

import numpy as np

from . import _lib
from ._lib import lib, check
from .core import _b

try:
    import gymnasium
    _Base = gymnasium.Env
except ImportError:  # gymnasium is optional
    gymnasium = None
    _Base = object

__all__ = ["make", "names", "Env", "Box", "register_envs"]


class Box:
    """A minimal stand-in for gymnasium.spaces.Box (used when gymnasium is not installed)."""

    def __init__(self, low, high, shape, dtype):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.low = np.full(self.shape, low, self.dtype)
        self.high = np.full(self.shape, high, self.dtype)
        self._rng = np.random.default_rng()

    def seed(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def sample(self):
        if self.dtype == np.uint8:
            return self._rng.integers(0, 256, self.shape, dtype=np.uint8)
        lo = np.where(np.isfinite(self.low), self.low, -1.0)
        hi = np.where(np.isfinite(self.high), self.high, 1.0)
        return self._rng.uniform(lo, hi).astype(self.dtype)

    def contains(self, x):
        x = np.asarray(x)
        return (x.shape == self.shape and x.dtype == self.dtype and
                bool(np.all(x >= self.low)) and bool(np.all(x <= self.high)))

    __contains__ = contains

    def __repr__(self):
        return f"Box({self.low.min()}, {self.high.max()}, {self.shape}, {self.dtype})"


_NP_DTYPE = {0: np.float32, 1: np.uint8}


def _space(sp):
    shape = tuple(sp.shape[i] for i in range(sp.ndim))
    dtype = _NP_DTYPE[sp.dtype]
    low, high = (0, 255) if dtype == np.uint8 else (sp.low, sp.high)
    if gymnasium is not None:
        return gymnasium.spaces.Box(low=np.full(shape, low, dtype), high=np.full(shape, high, dtype),
                                    shape=shape, dtype=dtype)
    return Box(low, high, shape, dtype)


def names():
    """Names of every task."""
    out, arr, i = [], lib.dt_env_names(), 0
    while arr[i]:
        out.append(arr[i].decode())
        i += 1
    return out


class Env(_Base):
    """One environment instance (gymnasium-shaped; a gymnasium.Env when gymnasium is installed).

    task: a name from names(); obs: "state" or "pixels"; seed: seed of the first reset;
    action_repeat, frame_stack, image_size, camera, max_steps: as dtEnvOpts (0 = task default);
    render_mode: None or "rgb_array"; render_size: (height, width) of render().
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, task, obs="state", seed=0, action_repeat=0, frame_stack=3, image_size=0,
                 camera=0, max_steps=0, render_mode=None, render_size=(240, 320), render_camera=0):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r}: only 'rgb_array' (or None)")
        if obs not in ("state", "pixels"):
            raise ValueError(f"obs {obs!r}: 'state' or 'pixels'")
        o = lib.dt_env_default_opts()
        o.seed = int(seed) & (2**64 - 1)
        o.obs = 0 if obs == "state" else 1
        o.action_repeat, o.frame_stack, o.image_size = int(action_repeat), int(frame_stack), int(image_size)
        o.camera, o.max_steps = int(camera), int(max_steps)
        self._ptr = ctypes.c_void_p()
        check(lib.dt_env_make(_b(task), ctypes.byref(o), ctypes.byref(self._ptr)), "dt_env_make")
        self.task = task
        self.render_mode = render_mode
        self.render_size = tuple(render_size)
        self.render_camera = int(render_camera)
        osp = lib.dt_env_obs_space(self._ptr).contents
        asp = lib.dt_env_action_space(self._ptr).contents
        self.observation_space = _space(osp)
        self.action_space = _space(asp)
        self._obs_shape = self.observation_space.shape
        self._obs_dtype = _NP_DTYPE[osp.dtype]
        self._act_dim = int(asp.size)
        self._state_size = lib.dt_env_state_size(self._ptr)

    # --- gymnasium API ---------------------------------------------------------------------
    def _new_obs(self):
        return np.empty(self._obs_shape, self._obs_dtype)

    def reset(self, *, seed=None, options=None):
        """Start an episode (seed=None continues the env's own random stream) -> (obs, info)."""
        if gymnasium is not None:
            super().reset(seed=seed)
        obs = self._new_obs()
        s = -1 if seed is None else int(seed)
        if s < -1 or s >= 2**63:
            raise ValueError(f"reset: seed {seed} must be a non-negative 63-bit integer")
        check(lib.dt_env_reset(self._live(), s, obs.ctypes.data_as(ctypes.c_void_p)), "dt_env_reset")
        return obs, {}

    def step(self, action):
        """Apply an action (array-like of action_dim values, converted to float32)."""
        a = np.ascontiguousarray(np.asarray(action, dtype=np.float32).reshape(-1))
        if a.size != self._act_dim:
            raise ValueError(f"step: action has {a.size} values, expected {self._act_dim}")
        obs = self._new_obs()
        info = _lib.DtStepInfo()
        check(lib.dt_env_step(self._live(), a.ctypes.data_as(_lib.c_float_p), a.size,
                              obs.ctypes.data_as(ctypes.c_void_p), ctypes.byref(info)), "dt_env_step")
        out = {}
        if info.success >= 0:
            out["success"] = bool(info.success)
        return obs, float(info.reward), bool(info.terminated), bool(info.truncated), out

    def render(self):
        """The current state as an RGB array [H, W, 3] (uint8, top row first)."""
        h, w = self.render_size
        rgb = np.empty((h, w, 3), np.uint8)
        check(lib.dt_env_render(self._live(), w, h, self.render_camera,
                                rgb.ctypes.data_as(ctypes.c_void_p)), "dt_env_render")
        return rgb

    def close(self):
        if getattr(self, "_ptr", None):
            lib.dt_env_free(self._ptr)
            self._ptr = None

    def __del__(self):
        self.close()

    # --- extras ----------------------------------------------------------------------------
    def _live(self):
        if not getattr(self, "_ptr", None):
            from .errors import StateError
            raise StateError("environment is closed", 8)
        return self._ptr

    def get_state(self):
        """The full simulator state (float64 vector) for set_state."""
        st = np.empty(self._state_size, np.float64)
        check(lib.dt_env_get_state(self._live(), st.ctypes.data_as(_lib.c_double_p)),
              "dt_env_get_state")
        return st

    def set_state(self, state):
        """Restore a state from get_state(); returns the observation there."""
        st = np.asarray(state)
        if st.dtype != np.float64 or st.shape != (self._state_size,):
            raise ValueError(f"set_state: expected float64 [{self._state_size}], got "
                             f"{st.dtype} {st.shape}")
        st = np.ascontiguousarray(st)
        check(lib.dt_env_set_state(self._live(), st.ctypes.data_as(_lib.c_double_p)),
              "dt_env_set_state")
        obs = self._new_obs()
        check(lib.dt_env_observe(self._ptr, obs.ctypes.data_as(ctypes.c_void_p)), "dt_env_observe")
        return obs

    @property
    def action_repeat(self):
        return lib.dt_env_action_repeat(self._live())

    @property
    def max_episode_steps(self):
        return lib.dt_env_max_steps(self._live())

    @property
    def step_count(self):
        return int(lib.dt_env_step_count(self._live()))

    def __repr__(self):
        return f"difftop.envs.Env({self.task!r})"


def make(name, **opts):
    """Make a task by name (see names()); options as Env's. 'difftop/<task>-v0' is accepted too."""
    if name.startswith("difftop/"):
        name = name[len("difftop/"):]
        if name.endswith("-v0"):
            name = name[:-3]
    return Env(name, **opts)


def register_envs():
    """Register every task with gymnasium as 'difftop/<task>-v0' (idempotent)."""
    if gymnasium is None:
        return []
    ids = []
    for n in names():
        env_id = f"difftop/{n}-v0"
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point="difftop.envs:Env", kwargs={"task": n})
        ids.append(env_id)
    return ids


register_envs()
