"""GradientMonitor mechanics checked against torch itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from steadygrad.diagnostics.monitor import GradientMonitor
from steadygrad.errors import ConfigError


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def _net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 8),
                         nn.ReLU(), nn.Linear(8, 3))


def test_stats_match_torch_oracle_on_one_step() -> None:
    net = _net()
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    caught: dict[str, torch.Tensor] = {}
    net[3].register_forward_hook(lambda m, a, o: caught.__setitem__("z", o) or o.retain_grad())
    net[4].register_forward_hook(lambda m, a, o: caught.__setitem__("a", o.detach()))
    w_before = net[3].weight.detach().clone()
    with GradientMonitor(net, every=1) as mon:
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        mon.step(loss)
    s = mon.series()
    assert s.layers == ["0", "3", "5"]
    assert [m.activation for m in s.meta] == ["tanh", "relu", None]
    a, z = caught["a"], caught["z"]
    v = s.values
    assert v["act_mean"][0, 1] == pytest.approx(a.mean().item(), abs=1e-6)
    assert v["act_std"][0, 1] == pytest.approx(a.std(correction=0).item(), rel=1e-4)
    assert v["zero_frac"][0, 1] == pytest.approx((a == 0).float().mean().item())
    assert v["dead_frac"][0, 1] == pytest.approx((a.amax(0) <= 0).float().mean().item())
    assert v["grad_rms"][0, 1] == pytest.approx(z.grad.pow(2).mean().sqrt().item(), rel=1e-5)
    w = net[3].weight.detach()
    assert v["weight_grad_norm"][0, 1] == pytest.approx(net[3].weight.grad.norm().item(),
                                                        rel=1e-5)
    assert v["update_ratio"][0, 1] == pytest.approx(((w - w_before).norm() / w.norm()).item(),
                                                    rel=1e-4)
    assert v["weight_rms"][0, 1] == pytest.approx(w.pow(2).mean().sqrt().item(), rel=1e-5)
    assert s.loss[0] == pytest.approx(loss.item())
    assert math.isnan(v["dead_frac"][0, 0])  # tanh: "silent" is not "dead"


def test_saturation_counts_outputs_near_the_asymptotes() -> None:
    net = nn.Sequential(nn.Linear(4, 50), nn.Sigmoid(), nn.Linear(50, 1))
    nn.init.normal_(net[0].weight, std=5.0)
    x = torch.randn(64, 4)
    with GradientMonitor(net, every=1) as mon:
        out = net(x)
        out.sum().backward()
        mon.step()
    a = torch.sigmoid(net[0](x)).detach()
    expected = ((a < 0.01) | (a > 0.99)).float().mean().item()
    assert mon.series().values["sat_frac"][0, 0] == pytest.approx(expected, abs=1e-6)
    assert expected > 0.3


@pytest.mark.parametrize(("dense", "steps"), [(0, [0, 3, 6]), (2, [0, 1, 3, 6]),
                                              (4, [0, 1, 2, 3, 6])])
def test_hooks_are_attached_only_for_sampled_steps_and_removed_on_exception(
        dense: int, steps: list[int]) -> None:
    net = _net()
    x = torch.randn(8, 6)
    mon = GradientMonitor(net, every=3, dense_start=dense)
    with pytest.raises(RuntimeError, match="boom"), mon:
        assert mon.armed and _hooks(net) > 0  # step 0 is sampled
        for i in range(7):
            net(x).sum().backward()
            mon.step()
            # sampled: the first `dense` steps, then one in `every`
            assert mon.armed == ((i + 1) % 3 == 0 or i + 1 < dense)
            assert (_hooks(net) > 0) == mon.armed
        raise RuntimeError("boom")
    assert _hooks(net) == 0 and not mon.armed
    assert mon.series().steps == steps


def test_conv_net_and_functional_activation_fall_back_to_layer_output() -> None:
    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(4 * 6 * 6, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = F.relu(self.conv(x))  # functional: invisible to the monitor
            return self.fc(h.flatten(1))

    net = Custom()
    x = torch.randn(5, 1, 8, 8)
    caught = {}
    net.conv.register_forward_hook(lambda m, a, o: caught.__setitem__("z", o.detach()))
    with GradientMonitor(net, every=1) as mon:
        net(x).sum().backward()
        mon.step()
    s = mon.series()
    assert s.layers == ["conv", "fc"] and s.meta[0].activation is None
    assert s.meta[0].units == 4  # channels are the units of a conv layer
    z = caught["z"]
    assert s.values["act_mean"][0, 0] == pytest.approx(z.mean().item(), abs=1e-6)


def test_execution_order_not_registration_order() -> None:
    class Rev(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.late = nn.Linear(4, 2)
            self.early = nn.Linear(3, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.late(torch.tanh(self.early(x)))

    net = Rev()
    with GradientMonitor(net, every=1) as mon:
        net(torch.randn(2, 3)).sum().backward()
        mon.step()
    assert mon.series().layers == ["early", "late"]


@pytest.mark.parametrize("kwargs", [{"every": 0}, {"every": 1.5}, {"bins": 1},
                                    {"thresholds": {"persistence": 2}}, {"dense_start": -1},
                                    {"dense_start": True}])
def test_bad_arguments_fail_before_any_work(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        GradientMonitor(_net(), **kwargs)
    with pytest.raises(ConfigError, match="model"):
        GradientMonitor("net")  # type: ignore[arg-type]


def test_grads_cleared_before_step_and_short_batches_are_handled() -> None:
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with GradientMonitor(net, every=1) as mon:
        for bs in (16, 16, 5, 16):
            loss = F.cross_entropy(net(torch.randn(bs, 6)), torch.randint(0, 3, (bs,)))
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)  # too early: weight-grad stats become NaN
            mon.step(loss)
    s = mon.series()
    assert s.steps == [0, 1, 2, 3]
    assert np.isnan(s.values["weight_grad_norm"]).all()
    assert np.isfinite(s.values["grad_rms"]).all()  # caught on the layer outputs
    assert np.isfinite(s.values["update_ratio"]).all()
    assert np.isfinite(s.values["dead_frac"][:, 1]).all()


def test_differently_sized_layers_share_a_padded_stack_and_match_torch() -> None:
    # the narrow sigmoid row is zero-padded to the widest row: the zeros must not count as
    # saturated (|0 - 0.5| is beyond the margin), nor as non-zero, nor change any moment
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 50), nn.ReLU(), nn.Linear(50, 5), nn.Sigmoid(),
                        nn.Linear(5, 1))
    nn.init.normal_(net[2].weight, std=3.0)
    x = torch.randn(64, 4)
    acts: dict[int, torch.Tensor] = {}
    for i in (1, 3):
        net[i].register_forward_hook(lambda m, a, o, i=i: acts.__setitem__(i, o.detach()))
    with GradientMonitor(net, every=1) as mon:
        net(x).sum().backward()
        mon.step()
    assert [g.ragged is not None for g in mon._plans[next(iter(mon._plans))].groups] == [True]
    v = mon.series().values
    relu, sig = acts[1], acts[3]
    assert v["sat_frac"][0, 1] == pytest.approx(((sig < 0.01) | (sig > 0.99)).float().mean()
                                                .item(), abs=1e-6)
    assert v["sat_frac"][0, 1] > 0.1
    assert v["zero_frac"][0, 0] == pytest.approx((relu == 0).float().mean().item())
    assert v["dead_frac"][0, 0] == pytest.approx((relu.amax(0) <= 0).float().mean().item())
    assert v["act_mean"][0, 1] == pytest.approx(sig.mean().item(), abs=1e-6)
    assert v["act_std"][0, 1] == pytest.approx(sig.std(correction=0).item(), rel=1e-4)
    assert v["act_nonfinite"][0].tolist() == [0.0, 0.0, 0.0]


def test_an_activation_feeding_the_next_layer_is_read_as_its_input() -> None:
    """After the discovery step the plan hooks the Tanh no more (its output is the next
    Linear's input, read there), keeps the ReLU's hook (a Dropout follows it), and every
    statistic still equals the torch oracle's on a later step."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 8),
                        nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    caught: dict[str, torch.Tensor] = {}
    for i, key in ((2, "tanh"), (4, "relu")):
        net[i].register_forward_hook(lambda m, a, o, key=key: caught.__setitem__(key, o.detach()))
    hooks_before = _hooks(net)
    with GradientMonitor(net, every=1) as mon:
        for _ in range(3):
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            mon.step(loss)
        planned = _hooks(net) - hooks_before
    assert planned == 4  # three weighted layers and the ReLU (not the Tanh): 6 before
    s = mon.series()
    for row, key in ((0, "tanh"), (1, "relu")):
        a = caught[key]  # the last step's activation
        assert s.values["act_mean"][-1, row] == pytest.approx(a.mean().item(), abs=1e-6)
        assert s.values["act_std"][-1, row] == pytest.approx(a.std(correction=0).item(),
                                                             rel=1e-4)


def test_a_replaced_weight_is_measured_not_the_old_one() -> None:
    """Replacing a layer's weight Parameter between steps (as a reset or a surgery does): the
    checks from the next snapshot on (taken when the following step is armed) read the new
    weight (RMS oracle), and the update ratio spans no stale copy."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))
    x = torch.randn(8, 4)
    with GradientMonitor(net, every=1) as mon:
        for step in range(4):
            if step == 2:
                net[0].weight = nn.Parameter(torch.full((5, 4), 3.0))
            net(x).pow(2).mean().backward()
            mon.step()
            net.zero_grad()
    s = mon.series()
    assert s.values["weight_rms"][1, 0] != pytest.approx(3.0)
    assert s.values["weight_rms"][3, 0] == pytest.approx(3.0)
    assert s.values["update_ratio"][3, 0] == pytest.approx(0.0)  # no optimizer step


@settings(max_examples=30, deadline=None)
@given(every=st.integers(1, 6), dense=st.integers(0, 5),
       attached=st.lists(st.booleans(), min_size=1, max_size=30))
def test_the_steps_collected_are_the_sampled_steps_while_attached(
        every: int, dense: int, attached: list[bool]) -> None:
    """The monitor skips the work of unsampled steps (it keeps the next sampled step), yet
    arms exactly the steps that :meth:`GradientMonitor.sampled` names, also across
    detach/attach: the oracle is the definition, step by step."""
    net = _net()
    x = torch.randn(4, 6)
    mon = GradientMonitor(net, every=every, dense_start=dense)
    want = []
    for step, on in enumerate(attached):
        if on:
            mon.attach()
        else:
            mon.detach()
        assert mon.armed == (on and mon.sampled(step))
        if mon.armed:
            want.append(step)
        net(x).sum().backward()
        mon.step(float(step))
    mon.detach()
    assert mon.series().steps == want
    assert mon.series().step_loss.tolist() == [float(s) for s in range(len(attached))]
