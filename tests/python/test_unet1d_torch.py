# SPDX-License-Identifier: MIT
"""The C 1-D temporal U-Net (dtUnet1D, src/nn/unet1d.c) against the same network written here in
PyTorch from diffusion policy's description (Chi et al. 2023, ConditionalUnet1D): identical
weights go in by state_dict name, and the outputs, the input gradients and every parameter
gradient of L = sum(seed * y) come out the same.

Reference: torch in float64 on the float32 weights. A tensor passes when
max|C - ref64| / max|ref64| <= 1e-4; torch's own float32 error on the same computation is
printed beside it (pytest -s). The C side computes the sinusoidal step embedding in float32 at
steps up to 99 rad, which alone puts ~1e-6 into it.
"""
import copy
import math

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
difftop = pytest.importorskip("difftop")
from parity_util import check_parity, rel  # noqa: E402
nn = torch.nn

TOL = 1e-4


class SinusoidalStep(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        freq = torch.exp(torch.arange(half, dtype=t.dtype) * -(math.log(10000.0) / (half - 1)))
        e = t[:, None] * freq[None, :]
        return torch.cat([e.sin(), e.cos()], dim=-1)


class Conv1dBlock(nn.Module):
    def __init__(self, cin, cout, k, groups):
        super().__init__()
        self.block = nn.Sequential(nn.Conv1d(cin, cout, k, padding=k // 2),
                                   nn.GroupNorm(groups, cout), nn.Mish())

    def forward(self, x):
        return self.block(x)


class ResBlock(nn.Module):
    """Conv1dBlock -> FiLM (scale, bias per channel from Mish -> Linear of the condition) ->
    Conv1dBlock, plus the input (a 1x1 conv when the channels change)."""

    def __init__(self, cin, cout, cond_dim, k, groups):
        super().__init__()
        self.cout = cout
        self.blocks = nn.ModuleList([Conv1dBlock(cin, cout, k, groups),
                                     Conv1dBlock(cout, cout, k, groups)])
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * cout))
        self.residual_conv = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, c):
        h = self.blocks[0](x)
        e = self.cond_encoder(c).reshape(x.shape[0], 2, self.cout, 1)
        h = e[:, 0] * h + e[:, 1]
        return self.blocks[1](h) + self.residual_conv(x)


class Down(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.conv = nn.Conv1d(d, d, 3, 2, 1)

    def forward(self, x):
        return self.conv(x)


class Up(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.conv = nn.ConvTranspose1d(d, d, 4, 2, 1)

    def forward(self, x):
        return self.conv(x)


class Unet1D(nn.Module):
    def __init__(self, inp, cond, dims, k, groups, dsed):
        super().__init__()
        self.diffusion_step_encoder = nn.Sequential(
            SinusoidalStep(dsed), nn.Linear(dsed, 4 * dsed), nn.Mish(), nn.Linear(4 * dsed, dsed))
        cd = dsed + cond
        pairs = list(zip([inp] + list(dims[:-1]), dims))
        self.down_modules = nn.ModuleList([
            nn.ModuleList([ResBlock(a, b, cd, k, groups), ResBlock(b, b, cd, k, groups),
                           Down(b) if i + 1 < len(pairs) else nn.Identity()])
            for i, (a, b) in enumerate(pairs)])
        top = dims[-1]
        self.mid_modules = nn.ModuleList([ResBlock(top, top, cd, k, groups),
                                          ResBlock(top, top, cd, k, groups)])
        self.up_modules = nn.ModuleList([
            nn.ModuleList([ResBlock(2 * b, a, cd, k, groups), ResBlock(a, a, cd, k, groups), Up(a)])
            for a, b in reversed(pairs[1:])])
        self.final_conv = nn.Sequential(Conv1dBlock(dims[0], dims[0], k, groups),
                                        nn.Conv1d(dims[0], inp, 1))

    def forward(self, x, steps, cond):
        c = torch.cat([self.diffusion_step_encoder(steps), cond], dim=-1)
        skips = []
        for res1, res2, down in self.down_modules:
            x = res2(res1(x, c), c)
            skips.append(x)
            x = down(x)
        for res in self.mid_modules:
            x = res(x, c)
        for res1, res2, up in self.up_modules:
            x = torch.cat([x, skips.pop()], dim=1)
            x = up(res2(res1(x, c), c))
        return self.final_conv(x)


# the policy's default (CPU-sized) network and a three-level one (two up levels: skip order)
CONFIGS = {
    "default": dict(inp=2, T=8, cond=12, dims=(64, 128), k=5, groups=8, dsed=64, B=4),
    "three_levels": dict(inp=3, T=8, cond=5, dims=(8, 16, 32), k=3, groups=4, dsed=16, B=3),
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def case(request):
    cfg = CONFIGS[request.param]
    torch.manual_seed(0)
    net = Unet1D(cfg["inp"], cfg["cond"], cfg["dims"], cfg["k"], cfg["groups"], cfg["dsed"])
    with torch.no_grad():  # a trained-looking network: GroupNorm away from 1 and 0
        for p in net.parameters():
            p.add_(torch.randn_like(p) * (0.05 if p.dim() > 1 else 0.2))
    params = difftop.Params()
    spec = difftop.Unet1D.spec(cfg["inp"], cfg["T"], cfg["cond"], cfg["dims"], cfg["k"],
                               cfg["groups"], cfg["dsed"])
    unet = difftop.Unet1D.create(params, "model", spec)
    return request.param, cfg, net, params, unet


def test_state_dict_names_and_shapes(case):
    _, cfg, net, params, _ = case
    sd = {"model." + k: v for k, v in net.state_dict().items()}
    assert sorted(params.names()) == sorted(sd), "C and torch state_dict names differ"
    for n, v in sd.items():
        assert params.shape(n) == tuple(v.shape), n


def test_outputs_and_gradients_match(case):
    name, cfg, net, params, unet = case
    params.load_state_dict({"model." + k: v.numpy() for k, v in net.state_dict().items()})
    rng = np.random.default_rng(1)
    B = cfg["B"]
    x = rng.standard_normal((B, cfg["inp"], cfg["T"])).astype(np.float32)
    cond = rng.standard_normal((B, cfg["cond"])).astype(np.float32)
    steps = np.array([0, 7, 42, 99][:B], np.float32)
    seed = rng.standard_normal((B, cfg["inp"], cfg["T"])).astype(np.float32)
    params.zero_grad()
    y, gx, gc = unet.backward(x, steps, cond, seed)
    gp = params.grads()

    def torch_run(model, dtype):
        xt = torch.tensor(x, dtype=dtype, requires_grad=True)
        ct = torch.tensor(cond, dtype=dtype, requires_grad=True)
        model.zero_grad()
        yt = model(xt, torch.tensor(steps, dtype=dtype), ct)
        (yt * torch.tensor(seed, dtype=dtype)).sum().backward()
        grads = {"model." + k: p.grad.detach().numpy() for k, p in model.named_parameters()}
        return yt.detach().numpy(), xt.grad.numpy(), ct.grad.numpy(), grads

    y64, gx64, gc64, gp64 = torch_run(copy.deepcopy(net).double(), torch.float64)
    y32, gx32, gc32, gp32 = torch_run(net, torch.float32)
    worst = {"y": (rel(y, y64), rel(y32, y64)), "dL/dx": (rel(gx, gx64), rel(gx32, gx64)),
             "dL/dcond": (rel(gc, gc64), rel(gc32, gc64))}
    check_parity(name, worst, gp, gp32, gp64, TOL, width=60)
