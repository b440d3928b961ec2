"""The monitor on arbitrary user modules (issue 16, Deliver 5): in-place activations, modules
called twice in one forward, recurrent layers, attention blocks, compiled ``fit``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from steadygrad.diagnostics.monitor import GradientMonitor


def _train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 3,
           every: int = 1) -> GradientMonitor:
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    with GradientMonitor(net, every=every) as mon:
        for _ in range(steps):
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            mon.step(loss)
    return mon


def _mlp(inplace: bool) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(inplace=inplace), nn.Linear(16, 16),
                         nn.ReLU(inplace=inplace), nn.Linear(16, 3))


def test_inplace_relu_gives_the_same_statistics_as_out_of_place() -> None:
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    ref = _train(_mlp(False), x, y).series()
    got = _train(_mlp(True), x, y).series()
    assert got.layers == ref.layers and [m.activation for m in got.meta] == ["relu"] * 2 + [None]
    for key in ("act_mean", "act_std", "zero_frac", "dead_frac", "weight_rms",
                "weight_grad_norm", "update_ratio"):
        np.testing.assert_allclose(got.values[key], ref.values[key], rtol=1e-5, err_msg=key)
    # the back-propagated gradient at the Linear output: with an in-place ReLU the retained
    # gradient is the one after the ReLU; the oracle is the out-of-place pre-activation one
    # masked by the ReLU derivative, which can only be smaller or equal
    assert np.all(np.isfinite(got.values["grad_rms"]))
    assert np.all(got.values["grad_rms"][:, :2] >= ref.values["grad_rms"][:, :2] - 1e-7)


class Shared(nn.Module):
    """One Linear applied twice (weight sharing) and one ReLU module reused by both blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(6, 16)
        self.shared = nn.Linear(16, 16)
        self.act = nn.ReLU()
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.inp(x))
        h = self.act(self.shared(h))
        h = torch.tanh(self.shared(h))  # second call of the same Linear
        return self.head(h)


def test_modules_called_twice_use_their_first_call() -> None:
    torch.manual_seed(0)
    net = Shared()
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    first: dict[str, torch.Tensor] = {}

    def keep(name: str):  # the oracle: the first call's output of each module
        def hook(m: nn.Module, a: object, o: torch.Tensor) -> None:
            first.setdefault(name, o.detach().clone())
        return hook

    hs = [net.act.register_forward_hook(keep("act"))]
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    with GradientMonitor(net, every=1) as mon:
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        mon.step(loss)
    for h in hs:
        h.remove()
    s = mon.series()
    assert s.layers == ["inp", "shared", "head"]
    row = s.layers.index("inp")
    assert s.meta[row].activation == "relu"
    a = first["act"]
    assert s.values["act_mean"][0, row] == pytest.approx(a.mean().item(), rel=1e-5)
    assert s.values["dead_frac"][0, row] == pytest.approx((a.amax(0) <= 0).float().mean().item())
    assert np.isfinite(s.values["grad_rms"][0]).all()


class Seq(nn.Module):
    def __init__(self, cell: type[nn.RNNBase]) -> None:
        super().__init__()
        self.rnn = cell(4, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


@pytest.mark.parametrize("cell", [nn.RNN, nn.GRU, nn.LSTM])
def test_recurrent_layers_are_rows_with_their_hidden_weight(cell: type[nn.RNNBase]) -> None:
    torch.manual_seed(0)
    net = Seq(cell)
    x, y = torch.randn(16, 5, 4), torch.randint(0, 3, (16,))
    w_before = net.rnn.weight_hh_l0.detach().clone()
    caught: dict[str, torch.Tensor] = {}

    def keep(m: nn.Module, a: object, o: tuple[torch.Tensor, object]) -> None:
        caught.setdefault("out", o[0].detach())

    net.rnn.register_forward_hook(keep)
    mon = _train(net, x, y, steps=1)
    s = mon.series()
    assert s.layers == ["rnn", "head"]
    w = net.rnn.weight_hh_l0.detach()
    assert s.values["update_ratio"][0, 0] == pytest.approx(
        ((w - w_before).norm() / w.norm()).item(), rel=1e-4)
    assert s.values["act_mean"][0, 0] == pytest.approx(caught["out"].mean().item(), rel=1e-5)
    assert s.meta[0].fan_in == 8


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        h = h + self.attn(h, h, h, need_weights=False)[0]
        return self.head((h + self.ff(h)).mean(1))


def test_attention_block_trains_under_the_monitor_every_step() -> None:
    torch.manual_seed(0)
    net = Attention()
    x, y = torch.randn(16, 5, 4), torch.randint(0, 3, (16,))
    mon = _train(net, x, y, steps=4)
    s = mon.series()
    # MultiheadAttention's out_proj is not called as a module: it has no row, no crash
    assert s.layers == ["embed", "ff.0", "ff.2", "head"]
    assert np.isfinite(s.values["grad_rms"]).all() and s.checks == 4
    assert len(s.step_loss) == 4 and np.isfinite(s.step_loss).all()


@pytest.mark.slow
def test_compiled_fit_monitor_matches_eager() -> None:
    from steadygrad.train.loop import fit

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(120, 4, generator=g), torch.randint(0, 3, (120,), generator=g)

    def run(compile: bool):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(inplace=True), nn.Linear(16, 3))
        return fit(model, (x, y), epochs=2, batch_size=10, seed=0, verbose=0, monitor=3,
                   compile=compile, optimizer={"name": "sgd", "learning_rate": 0.05})

    eager, comp = run(False).health, run(True).health
    assert comp.series.steps == eager.series.steps
    np.testing.assert_allclose(comp.series.step_loss, eager.series.step_loss, rtol=1e-5)
    np.testing.assert_allclose(comp.series.values["act_mean"], eager.series.values["act_mean"],
                               rtol=1e-4, atol=1e-6)
    assert [f.kind for f in comp.findings] == [f.kind for f in eager.findings]
    assert len(comp.series.step_loss) == 24 and not math.isnan(comp.series.step_loss[-1])


def test_attention_probe_matches_the_modules_own_weights() -> None:
    from steadygrad.diagnostics.probes import attention_logits, attention_stats

    torch.manual_seed(0)
    net = Attention()
    x, y = torch.randn(16, 5, 4), torch.randint(0, 3, (16,))
    h = net.embed(x).detach()
    _, w = net.attn(h, h, h, need_weights=True, average_attn_weights=False)  # the oracle
    p = torch.softmax(attention_logits(net.attn, h, h), -1)
    torch.testing.assert_close(p, w, rtol=1e-5, atol=1e-6)
    w = w.detach()
    ent = float(-(w * w.log()).sum(-1).mean() / math.log(5))
    top = float(attention_logits(net.attn, h, h).detach().abs().max())
    mon = _train(net, x, y, steps=1)
    s = mon.series()
    assert s.probes["attn:attn_entropy"][0] == pytest.approx(ent, rel=1e-5)
    assert s.probes["attn:attn_logit_max"][0] == pytest.approx(top, rel=1e-5)
    assert attention_stats(torch.zeros(1, 1, 3, 3)).tolist() == pytest.approx([0.0, 1.0])


@pytest.mark.parametrize("cell", [nn.RNN, nn.GRU, nn.LSTM])
def test_recurrent_probe_is_the_input_gradient_per_time_step(cell: type[nn.RNNBase]) -> None:
    torch.manual_seed(0)
    net = Seq(cell)
    x, y = torch.randn(16, 6, 4), torch.randint(0, 3, (16,))
    xr = x.clone().requires_grad_(True)  # the oracle: autograd w.r.t. the input itself
    F.cross_entropy(net(xr), y).backward()
    n = xr.grad.norm(dim=(0, 2))
    expected = math.log10(float(n[0] / n[-1]))
    net.zero_grad()
    ref = Seq(cell)
    ref.load_state_dict(net.state_dict())
    mon = _train(net, x, y, steps=2)
    assert mon.series().probes["rnn:time_orders"][0] == pytest.approx(expected, rel=1e-4)
    # the probe changes nothing: same weights as training without the monitor
    opt = torch.optim.SGD(ref.parameters(), lr=0.05)
    for _ in range(2):
        loss = F.cross_entropy(ref(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for a, b in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b)
