# SPDX-License-Identifier: MIT
"""The TOLD world model of TD-MPC (plus DiffTOP's state critics) in PyTorch, with the module
and state_dict names of the official code, the same architecture as src/rl/told.c:

  _encoder   Linear(S, enc_dim) ELU Linear(enc_dim, Z)
  _dynamics  Linear(Z+A, H) ELU Linear(H, H) ELU Linear(H, Z)
  _reward    Linear(Z+A, H) ELU Linear(H, H) ELU Linear(H, 1)
  _pi        Linear(Z, H) ELU Linear(H, H) ELU Linear(H, A)      (tanh applied in pi())
  _Q1, _Q2   Linear(Z+A, H) LayerNorm(H) Tanh Linear(H, H) ELU Linear(H, 1)
  _Qs1, _Qs2 the same head on the raw state [s, a] (DiffTOP only)

Initialisation as TD-MPC: orthogonal weights, zero biases, zero last layer of R and every Q.
Weights move to and from the C library through safetensors files (save_safetensors /
load_safetensors) or directly (difftop.torch.copy_to_params).
"""
import torch
import torch.nn as nn

from . import safetensors as _st


def mlp(in_dim, mlp_dim, out_dim):
    if isinstance(mlp_dim, int):
        mlp_dim = [mlp_dim, mlp_dim]
    return nn.Sequential(nn.Linear(in_dim, mlp_dim[0]), nn.ELU(), nn.Linear(mlp_dim[0], mlp_dim[1]),
                         nn.ELU(), nn.Linear(mlp_dim[1], out_dim))


def enc(obs_dim, enc_dim, latent_dim):
    return nn.Sequential(nn.Linear(obs_dim, enc_dim), nn.ELU(), nn.Linear(enc_dim, latent_dim))


def q(in_dim, mlp_dim):
    return nn.Sequential(nn.Linear(in_dim, mlp_dim), nn.LayerNorm(mlp_dim), nn.Tanh(),
                         nn.Linear(mlp_dim, mlp_dim), nn.ELU(), nn.Linear(mlp_dim, 1))


def orthogonal_init(m):
    if isinstance(m, nn.Linear):
        nn.init.orthogonal_(m.weight.data)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def _set_requires_grad(net, value):
    for p in net.parameters():
        p.requires_grad_(value)


class TOLD(nn.Module):
    """Task-Oriented Latent Dynamics model (state observations)."""

    def __init__(self, obs_dim, action_dim, latent_dim=50, mlp_dim=512, enc_dim=256,
                 state_critics=True):
        super().__init__()
        S, A, Z = obs_dim, action_dim, latent_dim
        self.obs_dim, self.action_dim, self.latent_dim = S, A, Z
        self.mlp_dim, self.enc_dim, self.state_critics = mlp_dim, enc_dim, state_critics
        self._encoder = enc(S, enc_dim, Z)
        self._dynamics = mlp(Z + A, mlp_dim, Z)
        self._reward = mlp(Z + A, mlp_dim, 1)
        self._pi = mlp(Z, mlp_dim, A)
        self._Q1, self._Q2 = q(Z + A, mlp_dim), q(Z + A, mlp_dim)
        if state_critics:
            self._Qs1, self._Qs2 = q(S + A, mlp_dim), q(S + A, mlp_dim)
        self.apply(orthogonal_init)
        heads = [self._reward, self._Q1, self._Q2]
        if state_critics:
            heads += [self._Qs1, self._Qs2]
        for m in heads:
            m[-1].weight.data.fill_(0)
            m[-1].bias.data.fill_(0)

    @classmethod
    def from_config(cls, obs_dim, action_dim, config, state_critics=None):
        """A TOLD sized like a difftop.RLConfig (latent_dim, mlp_dim, enc_dim, algo)."""
        d = config.as_dict()
        if state_critics is None:
            state_critics = d.get("algo", "difftop") in ("difftop", "1")
        return cls(obs_dim, action_dim, int(d["latent_dim"]), int(d["mlp_dim"]),
                   int(d["enc_dim"]), state_critics)

    def track_q_grad(self, enable=True):
        for m in [self._Q1, self._Q2]:
            _set_requires_grad(m, enable)

    def h(self, obs):
        return self._encoder(obs)

    def next(self, z, a):
        x = torch.cat([z, a], dim=-1)
        return self._dynamics(x), self._reward(x)

    def pi(self, z, std=0.0, noise_clip=0.3):
        """tanh(MLP(z)); with std > 0, plus N(0, std^2) noise clipped to +-noise_clip, the sum
        clamped to [-1+1e-6, 1-1e-6] with a straight-through gradient (TD-MPC)."""
        mu = torch.tanh(self._pi(z))
        if std > 0:
            eps = (torch.randn_like(mu) * std).clamp(-noise_clip, noise_clip)
            x = mu + eps
            clamped = x.clamp(-1 + 1e-6, 1 - 1e-6)
            return x - x.detach() + clamped.detach()
        return mu

    def Q(self, z, a):
        x = torch.cat([z, a], dim=-1)
        return self._Q1(x), self._Q2(x)

    def Qs(self, s, a):
        x = torch.cat([s, a], dim=-1)
        return self._Qs1(x), self._Qs2(x)

    def plan_value(self, x, a, horizon, gamma=0.99, encode=True, clip=(-1.0, 1.0)):
        """The latent planning objective G(a) [B] of dt_told_plan, a [B, horizon * A]:
        sum_t gamma^t R(z_t, clip a_t) + gamma^H min(Q1, Q2)(z_H, tanh(pi(z_H)))."""
        A = self.action_dim
        z = self.h(x) if encode else x
        ac = a.clamp(clip[0], clip[1])
        G, discount = 0.0, 1.0
        for t in range(horizon):
            z, r = self.next(z, ac[:, t * A:(t + 1) * A])
            G = G + discount * r[:, 0]
            discount *= gamma
        q1, q2 = self.Q(z, self.pi(z))
        return G + discount * torch.min(q1, q2)[:, 0]

    def pi_rollout(self, x, horizon, std=0.0, noise_clip=0.3, encode=True):
        """Initial plans [B, horizon * A] from rolling pi out (no gradient), as the planner."""
        with torch.no_grad():
            z = self.h(x) if encode else x
            acts = []
            for t in range(horizon):
                a = self.pi(z, std, noise_clip)
                acts.append(a)
                if t + 1 < horizon:
                    z, _ = self.next(z, a)
            return torch.cat(acts, dim=-1)

    def save_safetensors(self, path, metadata=None):
        """Write the state_dict (float32) as a safetensors file the C library loads."""
        _st.save_file({k: v.float() for k, v in self.state_dict().items()}, path, metadata)

    def load_safetensors(self, path, strict=True):
        tensors, _ = _st.load_file(path)
        self.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=strict)
