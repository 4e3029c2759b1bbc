# SPDX-License-Identifier: MIT
"""The C stacked LSTM (dtLstm, src/nn/lstm.c) against torch.nn.LSTM(batch_first=True): identical
weights go in by state_dict name, and the last hidden state of the top layer, the input
gradients and every parameter gradient of L = sum(seed * h_T) come out the same.

Reference: torch in float64 on the float32 weights; a tensor passes when
max|C - ref64| / max|ref64| <= 1e-4, torch's own float32 error printed beside it (pytest -s).
"""
import copy

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
difftop = pytest.importorskip("difftop")
from parity_util import check_parity, rel  # noqa: E402

TOL = 1e-4
# the BC-RNN's shape (Push-T frames of 6 features, 8 steps) and a deeper, narrower one
CONFIGS = {"bc_rnn": dict(inp=6, H=32, layers=2, T=8, B=4),
           "three_layers": dict(inp=3, H=5, layers=3, T=11, B=2)}


class LastHidden(torch.nn.Module):
    def __init__(self, inp, H, layers):
        super().__init__()
        self.rnn = torch.nn.LSTM(inp, H, num_layers=layers, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0][:, -1]


@pytest.fixture(scope="module", params=list(CONFIGS))
def case(request):
    cfg = CONFIGS[request.param]
    torch.manual_seed(0)
    net = LastHidden(cfg["inp"], cfg["H"], cfg["layers"])
    with torch.no_grad():  # weights larger than the init, so the gates leave their linear range
        for p in net.parameters():
            p.mul_(3.0)
    params = difftop.Params()
    lstm = difftop.LSTM.create(params, "rnn", difftop.LSTM.spec(cfg["inp"], cfg["H"],
                                                                 cfg["layers"]))
    return request.param, cfg, net, params, lstm


def test_state_dict_names_and_shapes(case):
    _, _, net, params, _ = case
    sd = net.state_dict()
    assert sorted(params.names()) == sorted(sd), "C and torch state_dict names differ"
    for n, v in sd.items():
        assert params.shape(n) == tuple(v.shape), n


def test_outputs_and_gradients_match(case):
    name, cfg, net, params, lstm = case
    params.load_state_dict({k: v.numpy() for k, v in net.state_dict().items()})
    rng = np.random.default_rng(1)
    B, T = cfg["B"], cfg["T"]
    x = rng.standard_normal((B, T, cfg["inp"])).astype(np.float32)
    seed = rng.standard_normal((B, cfg["H"])).astype(np.float32)
    params.zero_grad()
    y, gx = lstm.backward(x, seed)
    gp = params.grads()
    assert np.array_equal(y, lstm(x)), "forward and backward's forward differ"

    def torch_run(model, dtype):
        xt = torch.tensor(x, dtype=dtype, requires_grad=True)
        model.zero_grad()
        yt = model(xt)
        (yt * torch.tensor(seed, dtype=dtype)).sum().backward()
        grads = {k: p.grad.detach().numpy() for k, p in model.named_parameters()}
        return yt.detach().numpy(), xt.grad.numpy(), grads

    y64, gx64, gp64 = torch_run(copy.deepcopy(net).double(), torch.float64)
    y32, gx32, gp32 = torch_run(net, torch.float32)
    worst = {"h_T": (rel(y, y64), rel(y32, y64)), "dL/dx": (rel(gx, gx64), rel(gx32, gx64))}
    check_parity(name, worst, gp, gp32, gp64, TOL)
    # the oldest step reaches the output: its input gradient is not negligible
    assert np.abs(gx[:, 0]).max() > 1e-3 * np.abs(gx).max()
