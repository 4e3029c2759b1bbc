# SPDX-License-Identifier: MIT
"""Python objects over the C API: parameter sets, MLPs, the TOLD model, the agent, the latent
planning objective and the batched trajectory-optimization solver.

Arrays cross the boundary without copies: inputs must be C-contiguous numpy float32 arrays of
the documented shape (validated; a clear TypeError/ValueError otherwise) and are passed as
pointers; parameter values and gradients are exposed as numpy views of the C buffers.
"""
import collections
import ctypes
import math
import threading

import numpy as np

from . import _lib
from ._lib import lib, check, c_float_p, c_int_p, P

# ------------------------------------------------------------------------------------------
# arrays


def _fmt_shape(shape):
    return "(" + ", ".join("B" if s is None else str(s) for s in shape) + ")"


def f32_ptr(arr, shape=None, name="array", writable=False):
    """Pointer to a C-contiguous float32 array after checking its type, dtype and shape.

    `shape` may hold None for a free extent. Nothing is copied: the array must stay alive
    for the duration of the C call (the caller holds it).
    """
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of float32, got {type(arr).__name__} "
                        "(use np.asarray(x, dtype=np.float32))")
    if arr.dtype != np.float32:
        raise TypeError(f"{name}: dtype is {arr.dtype}, expected float32 "
                        "(use x.astype(np.float32))")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name}: array is not C-contiguous (use np.ascontiguousarray(x))")
    if writable and not arr.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    if shape is not None:
        ok = len(shape) == arr.ndim and all(s is None or s == d for s, d in zip(shape, arr.shape))
        if not ok:
            raise ValueError(f"{name}: shape {arr.shape}, expected {_fmt_shape(shape)}")
    return arr.ctypes.data_as(c_float_p)


def _view(ptr, shape, owner, ctype=ctypes.c_float, dtype=np.float32):
    """A numpy view of n C values at ptr that keeps `owner` alive."""
    n = int(np.prod(shape)) if len(shape) else 1
    addr = ctypes.cast(ptr, ctypes.c_void_p).value
    if not addr or n == 0:
        return np.zeros(shape, dtype)
    buf = (ctype * n).from_address(addr)
    buf._owner = owner  # the view's base chain holds the owner of the C memory
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


def _b(s):
    return s.encode() if isinstance(s, str) else s


# ------------------------------------------------------------------------------------------
# library-wide


def set_num_threads(n):
    """Number of BLAS threads difftop uses (1 is fastest on small machines)."""
    lib.dt_set_num_threads(int(n))


def get_num_threads():
    return lib.dt_get_num_threads()


class Rng:
    """difftop's PCG32 generator (same seed, same stream as the C code)."""

    def __init__(self, seed=0):
        self._rng = _lib.DtRng()
        lib.dt_rng_seed(ctypes.byref(self._rng), int(seed) & (2**64 - 1))


# ------------------------------------------------------------------------------------------
# tapes


class Tape:
    """A C tape (arena of intermediates); used for forward passes of networks from Python."""

    def __init__(self, arena_bytes=64 << 20):
        opts = lib.dt_tape_default_opts()
        opts.arena_bytes = int(arena_bytes)
        self._ptr = lib.dt_tape_new(ctypes.byref(opts))
        if not self._ptr:
            check(lib.dt_last_status() or 3, "dt_tape_new")

    def reset(self):
        lib.dt_tape_reset(self._ptr)

    def check(self, what):
        st = lib.dt_tape_status(self._ptr)
        if st:
            msg = lib.dt_tape_error(self._ptr).decode("utf-8", "replace")
            from .errors import from_status
            raise from_status(st, f"{what}: {msg}")

    def input(self, x, name="x"):
        f32_ptr(x, (None, None), name)
        t = lib.dt_input2(self._ptr, x.shape[0], x.shape[1], f32_ptr(x), _b(name))
        self.check("dt_input2")
        return t

    def close(self):
        if getattr(self, "_ptr", None):
            lib.dt_tape_free(self._ptr)
            self._ptr = None

    def __del__(self):
        self.close()


_tls = threading.local()


def _scratch_tape():
    t = getattr(_tls, "tape", None)
    if t is None:
        t = _tls.tape = Tape()
    t.reset()
    lib.dt_tape_set_param_grads(t._ptr, 0)
    return t


def _tensor_out(tape, t, what):
    tape.check(what)
    shape = tuple(t.contents.shape[: t.contents.ndim])
    return np.array(_view(t.contents.val, shape, None), copy=True)


# ------------------------------------------------------------------------------------------
# parameter sets


class Params:
    """An ordered set of named float32 parameters (PyTorch state_dict names).

    Owning (created empty) or borrowed from a model (then it lives as long as the model).
    value(name) and grad(name) are numpy views of the C buffers: writing into them changes
    the parameters (or gradients) seen by the C code.
    """

    def __init__(self, _borrow=None, _owner=None):
        if _borrow is None:
            self._ps = _lib.DtParams()
            lib.dt_params_init(ctypes.byref(self._ps))
            self._owned = True
            self._pp = ctypes.pointer(self._ps)
        else:
            self._pp = _borrow
            self._owned = False
        self._owner = _owner

    @property
    def ptr(self):
        return self._pp

    def _tensors(self):
        ps = self._pp.contents
        return [ps.items[i] for i in range(ps.count)]

    def __len__(self):
        return self._pp.contents.count

    def names(self):
        return [t.contents.name.decode() for t in self._tensors()]

    def __contains__(self, name):
        return bool(lib.dt_params_find(self._pp, _b(name)))

    def tensor(self, name):
        """The dtTensor* of a parameter (NotFoundError if absent)."""
        t = lib.dt_params_find(self._pp, _b(name))
        if not t:
            from .errors import NotFoundError
            raise NotFoundError(f"no parameter named '{name}' (have: {', '.join(self.names())})", 7)
        return t

    @staticmethod
    def _shape(t):
        return tuple(t.contents.shape[: t.contents.ndim])

    def shape(self, name):
        return self._shape(self.tensor(name))

    def value(self, name):
        t = self.tensor(name)
        return _view(t.contents.val, self._shape(t), self)

    def grad(self, name):
        t = self.tensor(name)
        return _view(t.contents.grad, self._shape(t), self)

    def numel(self):
        return int(lib.dt_params_numel(self._pp))

    def zero_grad(self):
        lib.dt_params_zero_grad(self._pp)

    def set_trainable(self, prefix="", on=True):
        lib.dt_params_set_trainable(self._pp, _b(prefix), int(bool(on)))

    def state_dict(self):
        """Copies of every value, by name."""
        return collections.OrderedDict((n, self.value(n).copy()) for n in self.names())

    def grads(self):
        """Copies of every gradient, by name."""
        return collections.OrderedDict((n, self.grad(n).copy()) for n in self.names())

    def load_state_dict(self, state, strict=True):
        """Copy values in by name (numpy arrays or anything np.asarray takes, e.g. CPU tensors)."""
        names = self.names()
        if strict:
            missing = [n for n in names if n not in state]
            unexpected = [k for k in state if k not in names]
            if missing or unexpected:
                raise KeyError(f"load_state_dict: missing {missing}, unexpected {unexpected}")
        for n in names:
            if n not in state:
                continue
            src = np.asarray(state[n], dtype=np.float32)
            dst = self.value(n)
            if src.shape != dst.shape:
                raise ValueError(f"load_state_dict: '{n}' has shape {src.shape}, "
                                 f"expected {dst.shape}")
            dst[...] = src

    def _array(self):
        ts = self._tensors()
        arr = (P(_lib.DtTensor) * max(1, len(ts)))(*ts)
        return arr, len(ts)

    def save(self, path, metadata=None):
        """Write a safetensors file (float32, by name) atomically with dt_params_save."""
        arr, n = self._array()
        meta = [x for kv in (metadata or {}).items() for x in (_b(str(kv[0])), _b(str(kv[1])))]
        marr = (ctypes.c_char_p * max(1, len(meta)))(*meta)
        check(lib.dt_params_save(_b(str(path)), arr, n, marr, len(meta) // 2), "dt_params_save")

    def load(self, path, strict=True):
        """Read a safetensors file by name (strict: no missing, no unexpected tensors)."""
        arr, n = self._array()
        flags = 0 if strict else 3
        check(lib.dt_params_load_ex(_b(str(path)), arr, n, flags), "dt_params_load")

    def __del__(self):
        if getattr(self, "_owned", False) and self._pp is not None:
            lib.dt_params_free(self._pp)
            self._pp = None


# ------------------------------------------------------------------------------------------
# MLPs

ACTS = {"none": 0, None: 0, "elu": 1, "relu": 2, "tanh": 3, "sigmoid": 4}
INITS = {"orthogonal": 0, "torch": 1, "torch_default": 1}


def mlp_spec(dims, layernorm=None, act=None, init="orthogonal", zero_last=False):
    """A dtMLPSpec: Linear layers dims[0]->dims[1]->..., optional LayerNorm and an activation
    after each (act names: none, elu, relu, tanh, sigmoid)."""
    L = len(dims) - 1
    if not 1 <= L <= _lib.DT_MLP_MAX_LAYERS:
        raise ValueError(f"mlp_spec: {L} layers (1..{_lib.DT_MLP_MAX_LAYERS})")
    s = _lib.DtMLPSpec()
    s.layers = L
    for i, d in enumerate(dims):
        s.dims[i] = int(d)
    for i in range(L):
        s.layernorm[i] = int(bool(layernorm[i])) if layernorm else 0
        a = act[i] if act else ("elu" if i < L - 1 else "none")
        if a not in ACTS:
            raise ValueError(f"mlp_spec: unknown activation {a!r} (one of elu, relu, tanh, sigmoid, none)")
        s.act[i] = ACTS[a]
    s.init = INITS[init]
    s.zero_last = int(bool(zero_last))
    return s


def spec_elu(inp, hidden, hidden_layers, out):
    """TD-MPC's mlp(): in -> hidden (ELU) x hidden_layers -> out."""
    return lib.dt_mlp_spec_elu(inp, hidden, hidden_layers, out)


def spec_q(inp, hidden):
    """TD-MPC's Q head: Linear-LayerNorm-Tanh, Linear-ELU, Linear(1)."""
    return lib.dt_mlp_spec_q(inp, hidden)


class MLP:
    """An MLP whose parameters live in a Params set under '<prefix>.<index>.weight' etc."""

    def __init__(self, _ptr, _owner):
        self._ptr = _ptr        # POINTER(DtMLP)
        self._owner = _owner    # keeps the struct and the parameters alive

    @classmethod
    def create(cls, params, prefix, spec, rng=None):
        m = _lib.DtMLP()
        rng = rng or Rng(0)
        check(lib.dt_mlp_create(ctypes.byref(m), ctypes.byref(spec), params.ptr, _b(prefix),
                                ctypes.byref(rng._rng)), f"dt_mlp_create('{prefix}')")
        return cls(ctypes.pointer(m), (m, params))

    @classmethod
    def bind(cls, params, prefix, spec):
        m = _lib.DtMLP()
        check(lib.dt_mlp_bind(ctypes.byref(m), ctypes.byref(spec), params.ptr, _b(prefix)),
              f"dt_mlp_bind('{prefix}')")
        return cls(ctypes.pointer(m), (m, params))

    @property
    def ptr(self):
        return self._ptr

    @property
    def dims(self):
        s = self._ptr.contents.spec
        return [s.dims[i] for i in range(s.layers + 1)]

    def forward(self, x):
        """Apply the MLP to x [B, in] (float32); returns a new array [B, out]."""
        f32_ptr(x, (None, self.dims[0]), "x")
        tape = _scratch_tape()
        y = lib.dt_mlp_forward(tape._ptr, self._ptr, tape.input(x))
        return _tensor_out(tape, y, "dt_mlp_forward")

    __call__ = forward


class Unet1D:
    """The conditional 1-D temporal U-Net (dtUnet1D, diffusion_policy's ConditionalUnet1D) with
    parameters in a Params set under '<prefix>.down_modules.0.0.blocks.0.block.0.weight' etc."""

    def __init__(self, _ptr, _owner):
        self._ptr = _ptr        # POINTER(DtUnet1D)
        self._owner = _owner

    @staticmethod
    def spec(in_channels, horizon, cond_dim, dims=(64, 128), kernel=5, groups=8, step_dim=64):
        """A dtUnet1DSpec (checked by dt_unet1d_check: ValueError-like DifftopError if bad)."""
        s = lib.dt_unet1d_spec_default(in_channels, horizon, cond_dim)
        if not 1 <= len(dims) <= _lib.DT_UNET_MAX_LEVELS:
            raise ValueError(f"Unet1D.spec: {len(dims)} levels (1..{_lib.DT_UNET_MAX_LEVELS})")
        s.levels = len(dims)
        for i, d in enumerate(dims):
            s.dims[i] = int(d)
        s.kernel, s.groups, s.step_dim = int(kernel), int(groups), int(step_dim)
        check(lib.dt_unet1d_check(ctypes.byref(s)), "dt_unet1d_check")
        return s

    @classmethod
    def create(cls, params, prefix, spec, rng=None):
        m = _lib.DtUnet1D()
        rng = rng or Rng(0)
        check(lib.dt_unet1d_create(ctypes.byref(m), ctypes.byref(spec), params.ptr, _b(prefix),
                                   ctypes.byref(rng._rng)), f"dt_unet1d_create('{prefix}')")
        return cls(ctypes.pointer(m), (m, params))

    def _run(self, tape, x, steps, cond, grad):
        s = self._ptr.contents.spec
        B = x.shape[0] if isinstance(x, np.ndarray) else 0
        f32_ptr(x, (None, s.in_channels, s.horizon), "x")
        f32_ptr(steps, (B,), "steps")
        shape = (ctypes.c_int * 3)(B, s.in_channels, s.horizon)
        xt = lib.dt_input(tape._ptr, 3, shape, f32_ptr(x), b"x")
        ct = None
        if s.cond_dim:
            f32_ptr(cond, (B, s.cond_dim), "cond")
            ct = tape.input(cond, "cond")
        if grad:
            lib.dt_requires_grad(tape._ptr, xt)
            if ct:
                lib.dt_requires_grad(tape._ptr, ct)
        y = lib.dt_unet1d_forward(tape._ptr, self._ptr, xt, f32_ptr(steps), ct)
        return xt, ct, y

    def forward(self, x, steps, cond=None):
        """x [B, in_channels, horizon], diffusion steps [B] and cond [B, cond_dim] (float32)
        -> a new array [B, in_channels, horizon]."""
        tape = _scratch_tape()
        _, _, y = self._run(tape, x, steps, cond, False)
        return _tensor_out(tape, y, "dt_unet1d_forward")

    __call__ = forward

    def backward(self, x, steps, cond, seed, tape=None):
        """Forward, then the adjoint of sum(seed * y): returns (y, dL/dx, dL/dcond) and adds
        dL/dparams into the parameters' gradients (zero them first with Params.zero_grad)."""
        tape = tape or Tape(256 << 20)
        tape.reset()
        xt, ct, y = self._run(tape, x, steps, cond, True)
        out = _tensor_out(tape, y, "dt_unet1d_forward")
        f32_ptr(seed, out.shape, "seed")
        check(lib.dt_backward(tape._ptr, y, f32_ptr(seed)), "dt_backward")
        gx = np.array(_view(xt.contents.grad, x.shape, None), copy=True)
        gc = np.array(_view(ct.contents.grad, cond.shape, None), copy=True) if ct else None
        return out, gx, gc


class LSTM:
    """A stacked LSTM (dtLstm, torch.nn.LSTM with batch_first and a zero initial state) with
    parameters in a Params set under '<prefix>.weight_ih_l0' etc."""

    def __init__(self, _ptr, _owner):
        self._ptr = _ptr        # POINTER(DtLstm)
        self._owner = _owner

    @staticmethod
    def spec(in_features, hidden, layers=1):
        """A dtLstmSpec (checked by dt_lstm_check)."""
        s = _lib.DtLstmSpec()
        setattr(s, "in", int(in_features))
        s.hidden, s.layers = int(hidden), int(layers)
        check(lib.dt_lstm_check(ctypes.byref(s)), "dt_lstm_check")
        return s

    @classmethod
    def create(cls, params, prefix, spec, rng=None):
        m = _lib.DtLstm()
        rng = rng or Rng(0)
        check(lib.dt_lstm_create(ctypes.byref(m), ctypes.byref(spec), params.ptr, _b(prefix),
                                 ctypes.byref(rng._rng)), f"dt_lstm_create('{prefix}')")
        return cls(ctypes.pointer(m), (m, params))

    def _run(self, tape, x, grad):
        s = self._ptr.contents.spec
        f32_ptr(x, (None, None, getattr(s, "in")), "x")
        B, T = x.shape[0], x.shape[1]
        xt = tape.input(np.ascontiguousarray(x.reshape(B, T * getattr(s, "in"))), "x")
        if grad:
            lib.dt_requires_grad(tape._ptr, xt)
        return xt, lib.dt_lstm_forward(tape._ptr, self._ptr, xt, T)

    def forward(self, x):
        """x [B, steps, in] (float32, oldest step first) -> the top layer's last h [B, hidden]."""
        tape = _scratch_tape()
        _, y = self._run(tape, x, False)
        return _tensor_out(tape, y, "dt_lstm_forward")

    __call__ = forward

    def backward(self, x, seed, tape=None):
        """Forward, then the adjoint of sum(seed * y): returns (y, dL/dx) and adds dL/dparams
        into the parameters' gradients (zero them first with Params.zero_grad)."""
        tape = tape or Tape(64 << 20)
        tape.reset()
        xt, y = self._run(tape, x, True)
        out = _tensor_out(tape, y, "dt_lstm_forward")
        f32_ptr(seed, out.shape, "seed")
        check(lib.dt_backward(tape._ptr, y, f32_ptr(seed)), "dt_backward")
        gx = np.array(_view(xt.contents.grad, (x.shape[0], x.shape[1] * x.shape[2]), None),
                      copy=True)
        return out, gx.reshape(x.shape)


# ------------------------------------------------------------------------------------------
# RL configuration, TOLD and agent


class RLConfig:
    """dtRLConfig: the official defaults (dt_rl_config_default), changed by key."""

    def __init__(self, **overrides):
        self._buf = ctypes.create_string_buffer(_lib.RL_CONFIG_BYTES)
        lib.dt_rl_config_default(self._buf)
        for k, v in overrides.items():
            self.set(k, v)

    @property
    def ptr(self):
        return self._buf

    def set(self, key, value):
        if isinstance(value, bool):
            value = int(value)
        check(lib.dt_rl_config_set(self._buf, _b(key), _b(str(value))), "dt_rl_config_set")
        return self

    def as_dict(self):
        out = ctypes.create_string_buffer(1 << 16)
        check(lib.dt_rl_config_dump(self._buf, out, len(out)), "dt_rl_config_dump")
        d = collections.OrderedDict()
        for line in out.value.decode().splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                d[k.strip()] = v.strip()
        return d

    def __getitem__(self, key):
        return self.as_dict()[key]

    @staticmethod
    def keys():
        ks, i, arr = [], 0, lib.dt_rl_config_keys()
        while arr[i]:
            ks.append(arr[i].decode())
            i += 1
        return ks


class Told:
    """The TOLD world model (encoder, dynamics, reward, pi, Q1, Q2 and DiffTOP's Qs1, Qs2),
    parameters named as the official PyTorch code."""

    NETS = {"_encoder": "enc", "_dynamics": "dyn", "_reward": "rew", "_pi": "pi",
            "_Q1": "q1", "_Q2": "q2", "_Qs1": "qs1", "_Qs2": "qs2"}

    def __init__(self, obs_dim, action_dim, config=None, state_critics=True, seed=0):
        self._m = _lib.DtTold()
        cfg = config or RLConfig()
        rng = Rng(seed)
        check(lib.dt_told_create(ctypes.byref(self._m), int(obs_dim), int(action_dim), cfg.ptr,
                                 int(bool(state_critics)), ctypes.byref(rng._rng)), "dt_told_create")
        self._pm = ctypes.pointer(self._m)
        self._owned = True
        self._owner = None
        self._setup()

    @classmethod
    def _borrow(cls, ptr, owner):
        self = cls.__new__(cls)
        self._pm, self._owned, self._owner = ptr, False, owner
        self._setup()
        return self

    def _setup(self):
        m = self._pm.contents
        self.obs_dim, self.action_dim, self.latent_dim = m.obs_dim, m.action_dim, m.latent_dim
        self.mlp_dim, self.enc_dim, self.state_critics = m.mlp_dim, m.enc_dim, m.state_critics
        base = ctypes.addressof(m)
        self.params = Params(ctypes.pointer(m.params), _owner=self)
        self.nets = {}
        for name, field in self.NETS.items():
            if name.startswith("_Qs") and not self.state_critics:
                continue
            off = getattr(_lib.DtTold, field).offset
            self.nets[name] = MLP(ctypes.cast(base + off, P(_lib.DtMLP)), self)

    @property
    def ptr(self):
        return self._pm

    # forward passes in C (numpy in, numpy out), as TOLD's methods
    def h(self, obs):
        return self.nets["_encoder"](obs)

    def next(self, z, a):
        za = np.ascontiguousarray(np.concatenate([z, a], -1), dtype=np.float32)
        return self.nets["_dynamics"](za), self.nets["_reward"](za)

    def pi(self, z):
        return np.tanh(self.nets["_pi"](z)).astype(np.float32)

    def Q(self, z, a):
        za = np.ascontiguousarray(np.concatenate([z, a], -1), dtype=np.float32)
        return self.nets["_Q1"](za), self.nets["_Q2"](za)

    def plan(self, horizon, gamma=0.99):
        """The latent planning objective of this model (encoder inside), dt_told_plan."""
        p = _lib.DtLatentPlan()
        lib.dt_told_plan(self._pm, int(horizon), float(gamma), ctypes.byref(p))
        return LatentPlan._from_struct(p, owner=self, params=self.params)

    def save(self, path, metadata=None):
        self.params.save(path, metadata)

    def load(self, path, strict=True):
        self.params.load(path, strict)

    def __del__(self):
        if getattr(self, "_owned", False) and self._pm is not None:
            lib.dt_told_free(self._pm)
            self._pm = None


class Agent:
    """A TD-MPC or DiffTOP agent (dt_agent_new) for observation and action sizes."""

    def __init__(self, config, obs_dim, action_dim):
        self.config = config
        self._ptr = ctypes.c_void_p()
        check(lib.dt_agent_new(config.ptr, int(obs_dim), int(action_dim), ctypes.byref(self._ptr)),
              "dt_agent_new")
        self.obs_dim, self.action_dim = int(obs_dim), int(action_dim)
        self.model = Told._borrow(lib.dt_agent_model(self._ptr), self)
        self.target = Told._borrow(lib.dt_agent_target(self._ptr), self)

    def act(self, obs, step, t0=False, eval=True):
        """Action for obs [obs_dim] at agent step `step` (dt_agent_act)."""
        out = np.empty(self.action_dim, np.float32)
        check(lib.dt_agent_act(self._ptr, f32_ptr(obs, (self.obs_dim,), "obs"), int(step),
                               int(bool(t0)), int(bool(eval)), out.ctypes.data_as(c_float_p)),
              "dt_agent_act")
        return out

    def planner(self, step, eval=True):
        """0 random, 1 MPPI, 2 trajectory optimization at this step."""
        return lib.dt_agent_planner(self._ptr, int(step), int(bool(eval)))

    def __del__(self):
        if getattr(self, "_ptr", None):
            # borrowed views must not outlive the agent: they hold a reference to it
            lib.dt_agent_free(self._ptr)
            self._ptr = None


# ------------------------------------------------------------------------------------------
# the latent planning objective and the solver

TERMINALS = {"pi": 0, "action": 1, "none": 2}


class LatentPlan:
    """dtLatentPlan: G(a) = sum_t gamma^t R(z_t, clip a_t) + gamma^H min(Q1,Q2)(z_H, pi(z_H))."""

    def __init__(self, horizon, action_dim, latent_dim, dynamics, params, reward=None, q1=None,
                 q2=None, pi=None, encoder=None, gamma=0.99, terminal="pi", clip=(-1.0, 1.0),
                 x_dim=None):
        p = _lib.DtLatentPlan()
        p.horizon, p.action_dim, p.latent_dim = int(horizon), int(action_dim), int(latent_dim)
        p.gamma = float(gamma)
        p.terminal = TERMINALS[terminal] if isinstance(terminal, str) else int(terminal)
        for field, net in (("encoder", encoder), ("dynamics", dynamics), ("reward", reward),
                           ("q1", q1), ("q2", q2), ("pi", pi)):
            setattr(p, field, net.ptr if net is not None else None)
        p.clip_lo, p.clip_hi = float(clip[0]), float(clip[1])
        p.x_dim = int(x_dim if x_dim is not None else
                      (encoder.dims[0] if encoder is not None else latent_dim))
        p.params = params.ptr
        self._init(p, (encoder, dynamics, reward, q1, q2, pi), params)

    @classmethod
    def _from_struct(cls, p, owner, params):
        self = cls.__new__(cls)
        self._init(p, owner, params)
        return self

    def _init(self, p, keep, params):
        self._p = p
        self._keep = keep
        self.params = params
        self.n = lib.dt_latent_plan_n(ctypes.byref(p))
        self.nx = p.x_dim if p.encoder else p.latent_dim
        self.horizon, self.action_dim = p.horizon, p.action_dim

    @property
    def ptr(self):
        return ctypes.pointer(self._p)

    def pi_rollout(self, x, std=0.0, noise_clip=0.3, seed=0):
        """Initial plans from rolling pi out from x [B, nx] with clipped N(0, std^2) noise."""
        f32_ptr(x, (None, self.nx), "x")
        B = x.shape[0]
        out = np.empty((B, self.n), np.float32)
        tape = _scratch_tape()
        rng = Rng(seed)
        check(lib.dt_latent_pi_rollout(self.ptr, tape._ptr, B, f32_ptr(x), float(std),
                                       float(noise_clip), ctypes.byref(rng._rng),
                                       out.ctypes.data_as(c_float_p)), "dt_latent_pi_rollout")
        return out


_OPT_FIELDS = [f[0] for f in _lib.DtTrajoptOpts._fields_]


def trajopt_options(**kw):
    """dtTrajoptOpts from the defaults (dt_trajopt_default_opts) with fields changed by name.

    solver: "lm", "pga", "pga-armijo", "newton"; backward: "none", "unroll", "truncated",
    "implicit"; project: bool; the others as in include/difftop/trajopt.h.
    """
    o = lib.dt_trajopt_default_opts()
    for k, v in kw.items():
        if k not in _OPT_FIELDS:
            raise TypeError(f"trajopt_options: unknown option {k!r} (known: {', '.join(_OPT_FIELDS)})")
        if k == "solver" and isinstance(v, str):
            code = lib.dt_solver_parse(_b(v))
            if code < 0:
                raise ValueError(f"unknown solver {v!r} (lm, pga, pga-armijo, newton)")
            v = code
        if k == "backward" and isinstance(v, str):
            code = lib.dt_backward_parse(_b(v))
            if code < 0:
                raise ValueError(f"unknown backward mode {v!r} (none, unroll, truncated, implicit)")
            v = code
        if isinstance(v, bool):
            v = int(v)
        setattr(o, k, v)
    return o


def options_dict(o):
    d = {k: getattr(o, k) for k in _OPT_FIELDS}
    d["solver"] = lib.dt_solver_name(o.solver).decode()
    d["backward"] = lib.dt_backward_name(o.backward).decode()
    return d


SolveResult = collections.namedtuple("SolveResult", "a_final a_best G status")


class Trajopt:
    """A batched solver bound to a latent plan: all memory taken here, none in solve/backward.

    solve() keeps what backward() needs; backward() adds dL/dtheta into the plan's parameter
    gradients (plan.params.grad(name)) and returns dL/dx and dL/da_init.
    """

    def __init__(self, plan, max_batch=1, options=None, tape_bytes=0, **kw):
        if options is None:
            options = trajopt_options(**kw)
        elif kw:
            raise TypeError("pass either options or keyword options, not both")
        self.plan = plan
        self.options = options
        self.max_batch = int(max_batch)
        self._obj = _lib.DtObjective()
        check(lib.dt_latent_objective(ctypes.byref(self._obj), plan.ptr), "dt_latent_objective")
        self.n, self.nx = self._obj.n, self._obj.nx
        self._ptr = ctypes.c_void_p()
        check(lib.dt_trajopt_new(ctypes.byref(self._obj), self.max_batch, ctypes.byref(options),
                                 int(tape_bytes), ctypes.byref(self._ptr)), "dt_trajopt_new")
        self._B = None

    def _x(self, x, B):
        if self.nx == 0:
            return None
        return f32_ptr(x, (B, self.nx), "x")

    def solve(self, x, a_init, out=None):
        """Solve B problems: x [B, nx], a_init [B, n] -> SolveResult(a_final, a_best, G, status)."""
        f32_ptr(a_init, (None, self.n), "a_init")
        B = a_init.shape[0]
        if not 1 <= B <= self.max_batch:
            raise ValueError(f"solve: batch {B} outside [1, {self.max_batch}] (max_batch)")
        if out is None:
            out = SolveResult(np.empty((B, self.n), np.float32), np.empty((B, self.n), np.float32),
                              np.empty(B, np.float32), np.empty(B, np.intc))
        else:
            for arr, shp, nm in ((out.a_final, (B, self.n), "a_final"),
                                 (out.a_best, (B, self.n), "a_best"), (out.G, (B,), "G")):
                f32_ptr(arr, shp, nm, writable=True)
        check(lib.dt_trajopt_solve(self._ptr, B, self._x(x, B), f32_ptr(a_init),
                                   out.a_final.ctypes.data_as(c_float_p),
                                   out.a_best.ctypes.data_as(c_float_p),
                                   out.G.ctypes.data_as(c_float_p),
                                   out.status.ctypes.data_as(c_int_p)), "dt_trajopt_solve")
        self._B = B
        return out

    def backward(self, dL_da):
        """Backward of the last solve: adds dL/dtheta into the parameter gradients; returns
        (dL/dx [B, nx] or None, dL/da_init [B, n])."""
        if self._B is None:
            from .errors import StateError
            raise StateError("backward: no solve to differentiate (call solve first)", 8)
        B = self._B
        dx = np.zeros((B, self.nx), np.float32) if self.nx else None
        da = np.zeros((B, self.n), np.float32)
        check(lib.dt_trajopt_backward(self._ptr, f32_ptr(dL_da, (B, self.n), "dL_da"),
                                      dx.ctypes.data_as(c_float_p) if dx is not None else None,
                                      da.ctypes.data_as(c_float_p)), "dt_trajopt_backward")
        return dx, da

    def eval(self, x, a):
        """Objective values G [B] and gradients dG/da [B, n] at a (no parameter gradients)."""
        f32_ptr(a, (None, self.n), "a")
        B = a.shape[0]
        if not 1 <= B <= self.max_batch:
            raise ValueError(f"eval: batch {B} outside [1, {self.max_batch}] (max_batch)")
        G = np.empty(B, np.float32)
        g = np.empty((B, self.n), np.float32)
        check(lib.dt_trajopt_eval(self._ptr, B, self._x(x, B), f32_ptr(a),
                                  G.ctypes.data_as(c_float_p), g.ctypes.data_as(c_float_p)),
              "dt_trajopt_eval")
        return G, g

    @property
    def stats(self):
        s = lib.dt_trajopt_stats(self._ptr).contents
        return {f[0]: getattr(s, f[0]) for f in _lib.DtTrajoptStats._fields_}

    @property
    def iterations(self):
        """Per-element iteration counts of the last solve."""
        if self._B is None:
            return np.zeros(0, np.intc)
        return np.ctypeslib.as_array(lib.dt_trajopt_iterations(self._ptr), (self._B,)).copy()

    @property
    def implicit_indefinite(self):
        return bool(lib.dt_trajopt_implicit_indefinite(self._ptr))

    def close(self):
        if getattr(self, "_ptr", None):
            lib.dt_trajopt_free(self._ptr)
            self._ptr = None

    def __del__(self):
        self.close()
