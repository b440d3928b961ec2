"""HealthSession's monitor (batched every-step losses) against the plain GradientMonitor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from steadygrad.diagnostics.monitor import GradientMonitor
from steadygrad.integrations._session import HealthSession, _HostMonitor

# what a host may hand over as a step's loss: a detached CPU scalar (batched), or anything
# the monitor reads at once (a float, a 1-element vector, a loss that still needs grad)
KINDS = ("scalar", "float", "vector", "graph", "none")
VALUES = st.sampled_from([0.5, 1.25, 2.0, math.nan, math.inf, -math.inf, 3.0e38])


def _loss(kind: str, value: float) -> torch.Tensor | float | None:
    if kind == "scalar":
        return torch.tensor(value)
    if kind == "float":
        return value
    if kind == "vector":
        return torch.tensor([value])
    if kind == "graph":
        return torch.tensor(value, requires_grad=True) * 1.0
    return None


def _run(cls: type, steps: list[tuple[str, float]], every: int, flush: int | None = None):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    mon = cls(net, every=every)
    if flush is not None:
        mon.FLUSH = flush
    mon.attach()
    longest = 0
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    for kind, value in steps:
        net.zero_grad()
        net(x).pow(2).mean().backward()
        mon.step(_loss(kind, value))
        longest = max(longest, len(getattr(mon, "_pending", ())))
    rep = mon.report()
    mon.detach()
    return rep, longest


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(KINDS), VALUES), min_size=1, max_size=40),
       every=st.integers(1, 7), flush=st.integers(1, 9))
def test_batched_losses_equal_the_monitor(steps, every, flush):
    got, longest = _run(_HostMonitor, steps, every, flush)
    want, _ = _run(GradientMonitor, steps, every)
    assert longest <= flush  # the pending list is bounded
    np.testing.assert_array_equal(got.series.step_loss, want.series.step_loss)
    assert got.series.first_nonfinite_loss == want.series.first_nonfinite_loss
    np.testing.assert_array_equal(got.series.loss, want.series.loss)
    assert [f.to_dict() for f in got.findings] == [f.to_dict() for f in want.findings]


def test_scalar_cpu_losses_wait_until_the_series_is_read():
    """The batching really happens: the scalar losses are only kept, sampled steps included
    (the monitor's list does not grow), and reading the series records them."""
    steps = [("scalar", float(i)) for i in range(10)]
    net = nn.Linear(2, 1)
    mon = _HostMonitor(net, every=8, dense_start=0).attach()  # sampled: 0 and 8
    for kind, value in steps:
        net(torch.randn(4, 2)).sum().backward()
        mon.step(_loss(kind, value))
    assert mon._losses == [] and len(mon._pending) == 10  # steps 0 and 8 sampled: kept too
    assert mon.series().step_loss.tolist() == [float(i) for i in range(10)]
    assert mon._pending == []


def test_session_uses_the_batched_monitor():
    s = HealthSession(every=4)
    s.start(nn.Linear(2, 1))
    assert isinstance(s.monitor, _HostMonitor)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_evaluate_every_is_named(bad):
    from steadygrad.errors import ConfigError

    with pytest.raises(ConfigError, match="evaluate_every"):
        HealthSession(evaluate_every=bad)
