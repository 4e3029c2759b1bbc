# SPDX-License-Identifier: MIT
"""A differentiable trajectory-optimization layer for PyTorch, backed by the C solver.

    from difftop.torch import TrajoptLayer
    layer = TrajoptLayer(told, horizon=5, solver="lm", backward="truncated")
    a = layer(obs, a_init)          # [B, H*A], differentiable w.r.t. obs, a_init, told's weights
    loss(a).backward()

The forward copies the networks' weights (by state_dict name) into a C parameter set, solves
the latent planning problem of dt_latent_objective with dt_trajopt_solve, and returns the final
iterate. The backward calls dt_trajopt_backward with dL/da_final and maps the C gradients of
every parameter back onto the torch parameters (they are inputs of the autograd Function), plus
dL/dx and dL/da_init. It plays the role Theseus's TheseusLayer plays in the official code, on
CPU, in float32, without building a dense Jacobian.

Requirements: CPU float32 tensors; the model has nn.Sequential children `_dynamics`, `_reward`,
`_Q1` (and optionally `_Q2`), `_pi` and, for observation inputs, `_encoder`, made of Linear,
LayerNorm (eps 1e-5, affine) and ELU/ReLU/Tanh/Sigmoid modules in the order Linear [LayerNorm]
[activation] (TD-MPC's TOLD, difftop.told.TOLD).
"""
import ctypes

import numpy as np
import torch
import torch.nn as nn

from . import core
from .core import Params, MLP, LatentPlan, Trajopt, trajopt_options, mlp_spec

__all__ = ["TrajoptLayer", "spec_from_sequential", "copy_to_params", "copy_from_params"]

_ACTS = {nn.ELU: "elu", nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}


def spec_from_sequential(seq, name="mlp"):
    """The dtMLPSpec of an nn.Sequential of Linear [LayerNorm] [activation] blocks."""
    if not isinstance(seq, nn.Sequential):
        raise TypeError(f"{name}: expected an nn.Sequential, got {type(seq).__name__}")
    dims, ln, act, stage = [], [], [], None
    for i, m in enumerate(seq):
        where = f"{name}[{i}] ({type(m).__name__})"
        if isinstance(m, nn.Linear):
            if m.bias is None:
                raise ValueError(f"{where}: Linear layers need a bias")
            if dims and dims[-1] != m.in_features:
                raise ValueError(f"{where}: in_features {m.in_features} != previous output {dims[-1]}")
            if not dims:
                dims.append(m.in_features)
            dims.append(m.out_features)
            ln.append(0)
            act.append("none")
            stage = "linear"
        elif isinstance(m, nn.LayerNorm):
            if stage != "linear":
                raise ValueError(f"{where}: LayerNorm must follow a Linear layer directly")
            if tuple(m.normalized_shape) != (dims[-1],) or not m.elementwise_affine:
                raise ValueError(f"{where}: LayerNorm over the last axis with affine parameters only")
            if abs(m.eps - 1e-5) > 1e-12:
                raise ValueError(f"{where}: LayerNorm eps {m.eps}; the C layer uses 1e-5")
            ln[-1] = 1
            stage = "ln"
        elif type(m) in _ACTS:
            if stage not in ("linear", "ln"):
                raise ValueError(f"{where}: an activation must follow Linear or LayerNorm")
            if isinstance(m, nn.ELU) and m.alpha != 1.0:
                raise ValueError(f"{where}: ELU alpha {m.alpha}; the C layer uses alpha = 1")
            act[-1] = _ACTS[type(m)]
            stage = "act"
        else:
            raise TypeError(f"{where}: unsupported module (Linear, LayerNorm, ELU, ReLU, Tanh, "
                            "Sigmoid only; convolutional encoders: pass latent inputs with "
                            "encoder=False)")
    if not dims:
        raise ValueError(f"{name}: no Linear layer")
    return mlp_spec(dims, ln, act)


def _check_cpu_f32(t, name):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{name}: tensor on {t.device}; the C solver runs on the CPU (.cpu())")
    if t.dtype != torch.float32:
        raise TypeError(f"{name}: dtype {t.dtype}, expected torch.float32 (.float())")


def copy_to_params(params, tensors):
    """Copy torch tensors {state_dict name: tensor} into C parameters by name (memmove)."""
    for name in params.names():
        src = tensors[name].detach()
        _check_cpu_f32(src, name)
        src = src.contiguous()
        t = params.tensor(name).contents
        if tuple(src.shape) != tuple(t.shape[: t.ndim]):
            raise ValueError(f"'{name}': torch shape {tuple(src.shape)}, C shape "
                             f"{tuple(t.shape[:t.ndim])}")
        ctypes.memmove(ctypes.cast(t.val, ctypes.c_void_p).value, src.data_ptr(), 4 * t.size)


def copy_from_params(params, which="value"):
    """{name: torch tensor} copies of the C parameters' values (or 'grad's)."""
    get = params.value if which == "value" else params.grad
    return {n: torch.from_numpy(get(n).copy()) for n in params.names()}


class _SolveFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, layer, x, a_init, *weights):
        layer._sync(weights)
        a_final, a_best, G, status = layer._solve(x, a_init)
        ctx.layer = layer
        ctx.token = layer._token
        ctx.versions = [w._version for w in weights]
        ctx.save_for_backward(x, a_init, *weights)
        ctx.mark_non_differentiable(a_best, G, status)
        return a_final, a_best, G, status

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_a, *unused):
        layer = ctx.layer
        x, a_init, *weights = ctx.saved_tensors
        if grad_a is None:
            grad_a = torch.zeros(a_init.shape, dtype=torch.float32)
        if layer._token != ctx.token:
            # the C solver keeps the history of its last solve only: solve this one again
            # (deterministic) from the saved inputs, provided the weights did not change
            if any(w._version != v for w, v in zip(weights, ctx.versions)):
                raise RuntimeError("TrajoptLayer: weights were modified in place between the "
                                   "forward and this backward, and later solves overwrote its "
                                   "history; call backward before changing the weights")
            layer._sync(weights)
            layer._solve(x, a_init)
        layer.c_params.zero_grad()
        dL_da = np.ascontiguousarray(grad_a.detach().to(torch.float32).numpy())
        dx, dainit = layer._solver.backward(dL_da)
        layer._token += 1  # a backward consumes its solve's history
        gx = torch.from_numpy(dx) if (dx is not None and ctx.needs_input_grad[1]) else None
        ga = torch.from_numpy(dainit) if ctx.needs_input_grad[2] else None
        gw = []
        for i, name in enumerate(layer._names):
            gw.append(torch.from_numpy(layer.c_params.grad(name).copy())
                      if ctx.needs_input_grad[3 + i] else None)
        return (None, gx, ga, *gw)


class TrajoptLayer(nn.Module):
    """Solve  max_a G(a; x, theta)  with the C solver; differentiable w.r.t. x, a_init, theta.

    model: an nn.Module with TOLD's children (see the module docstring); its parameters are
    read on every forward (so training steps are seen) and receive gradients in backward.
    horizon, gamma: the planning problem (G = sum_t gamma^t R + gamma^H min Q(z_H, pi(z_H))).
    encoder: True feeds observations x through model._encoder inside the objective (gradients
    reach the encoder); False takes x as the latent start z0.
    solver: "lm" (the official DiffTORI step), "pga", "pga-armijo", "newton"; backward: "none",
    "unroll", "truncated", "implicit"; the other options are dtTrajoptOpts fields (max_iters,
    step_size, damping, offset, project, backward_iters, abs_tol, rel_tol, grad_tol, lo, hi, ...).
    """

    def __init__(self, model, horizon, gamma=0.99, encoder=True, terminal="pi", clip=(-1.0, 1.0),
                 max_batch=1, solver="lm", backward="truncated", **options):
        super().__init__()
        self.model = model
        self.horizon, self.gamma, self.encoder = int(horizon), float(gamma), bool(encoder)
        self.options = trajopt_options(solver=solver, backward=backward, **options)
        self.c_params = Params()
        nets = {}
        wanted = (["_encoder"] if encoder else []) + ["_dynamics", "_reward", "_Q1", "_Q2", "_pi"]
        rng = core.Rng(0)
        for name in wanted:
            mod = getattr(model, name, None)
            if mod is None:
                if name in ("_reward", "_Q2") or (name in ("_Q1", "_pi") and terminal == "none"):
                    continue
                raise AttributeError(f"TrajoptLayer: the model has no '{name}' network")
            nets[name] = MLP.create(self.c_params, name, spec_from_sequential(mod, name), rng)
        torch_params = dict(model.named_parameters())
        self._names = self.c_params.names()
        for n in self._names:
            if n not in torch_params:
                raise KeyError(f"TrajoptLayer: C parameter '{n}' has no torch parameter of that "
                               "name (module order must be Linear [LayerNorm] [activation])")
            if tuple(torch_params[n].shape) != self.c_params.shape(n):
                raise ValueError(f"TrajoptLayer: '{n}' torch {tuple(torch_params[n].shape)} vs C "
                                 f"{self.c_params.shape(n)}")
        dyn = nets["_dynamics"]
        Z = dyn.dims[-1]
        A = dyn.dims[0] - Z
        self.action_dim, self.latent_dim = A, Z
        self.plan = LatentPlan(self.horizon, A, Z, dyn, self.c_params, reward=nets.get("_reward"),
                               q1=nets.get("_Q1"), q2=nets.get("_Q2"), pi=nets.get("_pi"),
                               encoder=nets.get("_encoder"), gamma=self.gamma, terminal=terminal,
                               clip=clip)
        self.n, self.nx = self.plan.n, self.plan.nx
        self._max_batch = int(max_batch)
        self._solver = Trajopt(self.plan, self._max_batch, self.options)
        self._token = 0
        self.last = None

    def _weights(self):
        tp = dict(self.model.named_parameters())
        return [tp[n] for n in self._names]

    def _sync(self, weights):
        for name, w in zip(self._names, weights):
            t = self.c_params.tensor(name).contents
            src = w.detach()
            _check_cpu_f32(src, name)
            src = src.contiguous()
            ctypes.memmove(ctypes.cast(t.val, ctypes.c_void_p).value, src.data_ptr(), 4 * t.size)

    def _solve(self, x, a_init):
        B = a_init.shape[0]
        if B > self._max_batch:  # grow (allocates once; solves and backwards never allocate)
            self._max_batch = B
            self._solver.close()
            self._solver = Trajopt(self.plan, B, self.options)
        xn = np.ascontiguousarray(x.detach().numpy()) if self.nx else None
        an = np.ascontiguousarray(a_init.detach().numpy())
        r = self._solver.solve(xn, an)
        self._token += 1
        self.last = r
        return (torch.from_numpy(r.a_final.copy()), torch.from_numpy(r.a_best.copy()),
                torch.from_numpy(r.G.copy()), torch.from_numpy(r.status.astype(np.int64)))

    def pi_init(self, x, std=0.0, noise_clip=0.3):
        """Initial plans from rolling model._pi out (no gradient), as the official planner."""
        m = self.model
        with torch.no_grad():
            z = m._encoder(x) if self.encoder else x
            acts = []
            for t in range(self.n // self.action_dim):
                a = torch.tanh(m._pi(z))
                if std > 0:
                    a = (a + (torch.randn_like(a) * std).clamp(-noise_clip, noise_clip)) \
                        .clamp(-1 + 1e-6, 1 - 1e-6)
                acts.append(a)
                z = m._dynamics(torch.cat([z, a], -1))
            return torch.cat(acts, -1)

    def forward(self, x, a_init=None, return_all=False):
        """x [B, nx] (observations, or latents with encoder=False), a_init [B, n] (default: the
        pi rollout). Returns a_final [B, n]; with return_all, (a_final, a_best, G, status)."""
        _check_cpu_f32(x, "x")
        if x.dim() != 2 or x.shape[1] != self.nx:
            raise ValueError(f"x: shape {tuple(x.shape)}, expected (B, {self.nx})")
        if a_init is None:
            a_init = self.pi_init(x)
        _check_cpu_f32(a_init, "a_init")
        if a_init.dim() != 2 or a_init.shape != (x.shape[0], self.n):
            raise ValueError(f"a_init: shape {tuple(a_init.shape)}, expected ({x.shape[0]}, {self.n})")
        out = _SolveFn.apply(self, x, a_init, *self._weights())
        return out if return_all else out[0]

    @property
    def stats(self):
        return self._solver.stats
