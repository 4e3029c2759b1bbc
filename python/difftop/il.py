# SPDX-License-Identifier: MIT
"""Imitation-learning policies (include/difftop/il.h) trained by `difftop il-train`.

    import difftop.il
    with difftop.il.Policy.load("runs/il/diffusion-s1") as pol:
        actions = pol.act(obs_hist)            # [obs_steps, obs_dim] -> [act_steps, act_dim]
        r = pol.eval_pusht(episodes=50)        # the same score il-train writes to eval.json
        print(r.mean_score, r.success_rate, r.scores)

A run directory holds config.yaml (flat `key: value` YAML) and model.safetensors. The C policy
(dtILPolicy) is an opaque pointer; its settings are read from config.yaml by the small parser
below, so dtILConfig is never mirrored. Observations and actions are raw (un-normalised) units:
the policy applies the normalisers it was trained with.
"""
import ctypes
import dataclasses
import math
import os
import re

import numpy as np

from . import _lib
from ._lib import lib, check, c_float_p, c_double_p
from .core import _b

__all__ = ["Policy", "EvalResult", "read_config", "kinds", "have_hdf5", "eval_expert_dmc"]

_U64 = 2**64


def have_hdf5():
    """True when the library reads and writes demonstration files (built with HDF5)."""
    return bool(lib.dt_il_have_hdf5())


def kinds():
    """Names of the policy kinds the library knows ("bc", "diffusion", ...)."""
    out = []
    while len(out) < 64:
        name = lib.dt_il_kind_name(len(out))
        if not name or name == b"?":
            break
        out.append(name.decode())
    return out


# ------------------------------------------------------------------------------------------
# config.yaml

_INT = re.compile(r"[-+]?\d+\Z")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\Z|[-+]?\.(inf|Inf|INF)\Z|\.(nan|NaN|NAN)\Z")


def _scalar(text):
    """One YAML scalar as difftop writes them: plain, 'single' or "double" quoted."""
    v = text.strip()
    if len(v) >= 2 and v[0] == v[-1] == "'":
        v = v[1:-1].replace("''", "'")
    elif len(v) >= 2 and v[0] == v[-1] == '"':
        v = v[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    else:
        if _INT.match(v):
            return int(v)
        if _FLOAT.match(v):
            return float(v.replace(".inf", "inf").replace(".Inf", "inf").replace(".INF", "inf")
                         .replace(".nan", "nan").replace(".NaN", "nan").replace(".NAN", "nan"))
        return v
    # the C config writes an empty string as the literal '""' (base, task)
    return "" if v == '""' else v


def read_config(path):
    """A run's config.yaml (or the file at path) as a dict: ints, floats and strings.

    Only the flat `key: value` mapping that difftop writes is understood; comments, blank
    lines and document markers are skipped. A line of another shape is a FormatError that
    names the file and the line.
    """
    if os.path.isdir(path):
        path = os.path.join(path, "config.yaml")
    cfg = {}
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            s = line.rstrip("\n")
            if not s.strip() or s.lstrip().startswith("#") or s.strip() in ("---", "..."):
                continue
            key, sep, val = s.partition(":")
            if not sep or s[0].isspace() or not key.strip():
                from .errors import FormatError
                raise FormatError(f"{path}:{no}: expected a flat 'key: value' line, got {s!r}", 5)
            cfg[key.strip()] = _scalar(val)
    return cfg


# ------------------------------------------------------------------------------------------
# results


@dataclasses.dataclass
class EvalResult:
    """An evaluation (dtILEvalResult plus the per-episode values).

    Push-T: mean_score is the mean over episodes of the episode-max reward (coverage), and
    success_rate the fraction of episodes above 0.95 coverage. DMC: mean_score is the mean
    return, scores the returns, and success_rate None.
    """
    episodes: int
    mean_score: float
    success_rate: float
    sd_score: float
    ms_per_call: float
    ms_per_action: float
    scores: list

    @property
    def returns(self):
        """The per-episode values (returns, on a DMC task)."""
        return self.scores

    def as_dict(self):
        return dataclasses.asdict(self)


def _result(r, values, dmc):
    return EvalResult(episodes=int(r.episodes), mean_score=float(r.mean_score),
                      success_rate=None if dmc else float(r.success_rate),
                      sd_score=float(r.sd_score), ms_per_call=float(r.ms_per_call),
                      ms_per_action=float(r.ms_per_action), scores=[float(v) for v in values])


def _episodes(episodes):
    n = int(episodes)
    if n != episodes or n < 1:
        raise ValueError(f"episodes must be a positive integer, got {episodes!r}")
    return n


def _sd(values):
    """Sample standard deviation (n - 1), as dt_il_eval_dmc computes sd_score; 0 for one value."""
    if len(values) < 2:
        return 0.0
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def eval_expert_dmc(task, action_repeat=0, episodes=10, seed0=100000):
    """The task's analytic expert on the episodes Policy.eval_dmc runs (for reference)."""
    n = _episodes(episodes)
    if not 0 <= int(seed0) < 2**63:
        raise ValueError(f"seed0 {seed0} must be a non-negative 63-bit integer")
    r = _lib.DtILEvalResult()
    vals = (ctypes.c_double * n)()
    check(lib.dt_il_eval_expert_dmc(_b(task), int(action_repeat), n, int(seed0), ctypes.byref(r),
                                    ctypes.cast(vals, c_double_p)), "dt_il_eval_expert_dmc")
    return _result(r, vals, dmc=True)


# ------------------------------------------------------------------------------------------
# the policy


class Policy:
    """A trained IL policy (dtILPolicy) loaded from a run directory.

    Not thread-safe: act() and the evaluations use the policy's buffers and random stream.
    """

    def __init__(self, ptr, run_dir, config):
        # use Policy.load(run_dir)
        self._ptr = ptr
        self.run_dir = str(run_dir)
        self._config = config
        self._sample_seed = 0

    @classmethod
    def load(cls, run_dir):
        """Load config.yaml and model.safetensors of run_dir (dt_il_policy_load).

        A missing or malformed directory raises the DifftopError subclass of the C status
        (DifftopIOError, FormatError, ...) with the C message, which names the file.
        """
        run_dir = os.fspath(run_dir)
        ptr = ctypes.c_void_p()
        check(lib.dt_il_policy_load(_b(run_dir), ctypes.byref(ptr)), "dt_il_policy_load")
        try:
            config = read_config(os.path.join(run_dir, "config.yaml"))
        except BaseException:
            lib.dt_il_policy_free(ptr)
            raise
        return cls(ptr, run_dir, config)

    # --- lifetime ----------------------------------------------------------------------------
    def close(self):
        """Free the C policy (idempotent); any further call raises a StateError."""
        if getattr(self, "_ptr", None):
            lib.dt_il_policy_free(self._ptr)
            self._ptr = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _live(self):
        if not getattr(self, "_ptr", None):
            from .errors import StateError
            raise StateError(f"policy {self.run_dir} is closed", 8)
        return self._ptr

    def __repr__(self):
        state = "" if getattr(self, "_ptr", None) else ", closed"
        return (f"Policy({self.kind!r}, task={self.task!r}, obs {self.obs_steps}x{self.obs_dim}, "
                f"actions {self.act_steps}x{self.act_dim}, {self.run_dir!r}{state})")

    # --- settings (config.yaml) ---------------------------------------------------------------
    @property
    def config(self):
        """config.yaml as a dict (a copy)."""
        return dict(self._config)

    def _int(self, key, default=None):
        v = self._config.get(key, default)
        if v is None:
            from .errors import FormatError
            raise FormatError(f"{self.run_dir}/config.yaml: no key '{key}'", 5)
        return int(v)

    @property
    def kind(self):
        """Policy kind: "bc", "diffusion", "residual", "difftop" or "ibc"."""
        return str(self._config.get("policy", ""))

    @property
    def obs_dim(self):
        return self._int("obs_dim")

    @property
    def act_dim(self):
        return self._int("act_dim")

    @property
    def obs_steps(self):
        """Frames of observation history act() takes (T_o)."""
        return self._int("obs_steps")

    @property
    def act_steps(self):
        """Actions act() returns (executed per call)."""
        return self._int("act_steps")

    @property
    def task(self):
        """Environment the policy acts in: "pusht" (or "") for Push-T, else a DMC task."""
        return str(self._config.get("task", ""))

    @property
    def action_repeat(self):
        """DMC action repeat of the policy (0: the task's default)."""
        return self._int("action_repeat", 0)

    @property
    def seed(self):
        """Training seed."""
        return self._int("seed", 0)

    @property
    def obs_keys(self):
        """Observation keys the policy was trained on, e.g. ["state"] or ["image", "agent_pos"]."""
        keys = lib.dt_il_policy_obs_keys(self._live())
        return [k for k in (keys.decode() if keys else "").split(",") if k]

    @property
    def image_shape(self):
        """(H, W, C) of the frames an image policy takes; None for a policy without images."""
        h, w, c = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        if not lib.dt_il_policy_image(self._live(), ctypes.byref(h), ctypes.byref(w), ctypes.byref(c)):
            return None
        return h.value, w.value, c.value

    @property
    def is_dmc(self):
        return self.task not in ("", "pusht")

    # --- sampling seed ------------------------------------------------------------------------
    @property
    def sample_seed(self):
        """Seed of a stochastic policy's draws during evaluation (default 0; see set_sample_seed)."""
        return self._sample_seed

    @sample_seed.setter
    def sample_seed(self, seed):
        self.set_sample_seed(seed)

    def set_sample_seed(self, seed):
        """dt_il_policy_set_sample_seed: every evaluation episode reseeds the policy's draws
        (diffusion noise, CVAE latents, IBC samples) from this seed and its env seed, so a
        score depends only on (policy, sample seed, episodes). 0 is what il-train uses."""
        s = int(seed)
        if s != seed or not 0 <= s < _U64:
            raise ValueError(f"sample seed {seed!r} must be an integer in [0, 2^64)")
        lib.dt_il_policy_set_sample_seed(self._live(), s)
        self._sample_seed = s

    # --- acting -------------------------------------------------------------------------------
    def act(self, obs_hist, images=None):
        """Actions for an observation history (dt_il_act).

        obs_hist: array-like [obs_steps, obs_dim] of raw observations, oldest first (a numpy
        array or nested lists; converted to float32). Returns a new float32 array
        [act_steps, act_dim] of raw actions. An image policy also takes images: uint8
        [obs_steps, H, W, C] frames, oldest first (dt_il_act_image). A stochastic policy draws
        from its own random stream, which evaluations leave where it was.
        """
        ptr = self._live()
        To, od = self.obs_steps, self.obs_dim
        try:
            h = np.array(obs_hist, dtype=np.float32, order="C")  # a copy: C never sees the caller's
        except (TypeError, ValueError) as e:
            raise ValueError(f"act: obs_hist is not a numeric array of shape ({To}, {od}): {e}") from e
        if h.shape != (To, od):
            raise ValueError(f"act: obs_hist has shape {h.shape}, expected (obs_steps, obs_dim) = "
                             f"({To}, {od}) (oldest frame first)")
        if not np.all(np.isfinite(h)):
            bad = np.argwhere(~np.isfinite(h))[0]
            raise ValueError(f"act: obs_hist has a non-finite value ({h[tuple(bad)]}) at frame "
                             f"{bad[0]}, dim {bad[1]}")
        out = np.empty((self.act_steps, self.act_dim), np.float32)
        shape = self.image_shape
        if shape is None:
            if images is not None:
                raise ValueError("act: this policy takes no images (images must be None)")
            check(lib.dt_il_act(ptr, h.ctypes.data_as(c_float_p), out.ctypes.data_as(c_float_p)),
                  "dt_il_act")
            return out
        if images is None:
            raise ValueError(f"act: this image policy needs images, uint8 [{To}, {shape[0]}, "
                             f"{shape[1]}, {shape[2]}] (oldest first)")
        im = np.asarray(images)
        if im.dtype != np.uint8:
            raise ValueError(f"act: images have dtype {im.dtype}, expected uint8 (HWC, 0..255)")
        if im.shape != (To,) + shape:
            raise ValueError(f"act: images have shape {im.shape}, expected {(To,) + shape}")
        im = np.ascontiguousarray(im)
        check(lib.dt_il_act_image(ptr, h.ctypes.data_as(c_float_p), im.ctypes.data_as(ctypes.c_void_p),
                                  out.ctypes.data_as(c_float_p)), "dt_il_act_image")
        return out

    __call__ = act

    # --- evaluation ---------------------------------------------------------------------------
    def eval_pusht(self, episodes=50, seed0=100000, max_steps=300):
        """Push-T evaluation with the upstream metric (dt_il_eval_pusht): episodes from
        dt_pusht_reset_numpy(seed0 + i). With the defaults and sample seed 0 this is the score
        `difftop il-train` writes to eval.json (mean_score to its 6 printed decimals)."""
        ptr = self._live()
        if self.is_dmc:
            raise ValueError(f"eval_pusht: the policy acts in {self.task!r}; use eval_dmc")
        n = _episodes(episodes)
        s0, ms = int(seed0), int(max_steps)
        if s0 != seed0 or not 0 <= s0 or s0 + n > 2**32:
            raise ValueError(f"eval_pusht: seed0 {seed0!r} must be an integer with seed0 + episodes "
                             "<= 2^32 (numpy seeds)")
        if ms != max_steps or ms < 1:
            raise ValueError(f"eval_pusht: max_steps must be a positive integer, got {max_steps!r}")
        r = _lib.DtILEvalResult()
        vals = (ctypes.c_double * n)()
        check(lib.dt_il_eval_pusht(ptr, n, s0, ms, ctypes.byref(r), ctypes.cast(vals, c_double_p)),
              "dt_il_eval_pusht")
        # dt_il_eval_pusht leaves sd_score 0: fill it from the scores as dt_il_eval_dmc does
        res = _result(r, vals, dmc=False)
        res.sd_score = _sd(res.scores)
        return res

    def eval_dmc(self, episodes=10, seed0=100000, task=None, action_repeat=None):
        """Mean return on the policy's DMC task (dt_il_eval_dmc): episodes from
        dt_env_reset(seed0 + i), each to the time limit. task and action_repeat default to
        the config's (il-train's evaluation uses the same, with seed0 100000)."""
        ptr = self._live()
        task = self.task if task is None else str(task)
        if task in ("", "pusht"):
            raise ValueError(f"eval_dmc: the policy's task is {self.task or 'Push-T'!r}, not a DMC "
                             "task; use eval_pusht (or pass task=)")
        ar = self.action_repeat if action_repeat is None else int(action_repeat)
        n = _episodes(episodes)
        s0 = int(seed0)
        if s0 != seed0 or not 0 <= s0 or s0 + n > 2**63:
            raise ValueError(f"eval_dmc: seed0 {seed0!r} must be a non-negative 63-bit integer")
        r = _lib.DtILEvalResult()
        vals = (ctypes.c_double * n)()
        check(lib.dt_il_eval_dmc(ptr, _b(task), ar, n, s0, ctypes.byref(r),
                                 ctypes.cast(vals, c_double_p)), "dt_il_eval_dmc")
        return _result(r, vals, dmc=True)
