"""Staged sampled steps reduced together give what one reduction per step gives.

The oracle is the monitor itself with one slot per plan (every sampled step reduced at once,
as the statistics tests check against torch); the batched monitor must record the same
series on the same run, bit for bit, whatever happens between the steps: the series read
mid-batch, a short batch (another plan), a detach/attach, a replaced weight, a non-finite
input, an input large enough to overflow a float32 sum of squares, and the records' table
growing while steps are staged.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from steadygrad.diagnostics import collect
from steadygrad.diagnostics.checks import Records
from steadygrad.diagnostics.monitor import GradientMonitor
from steadygrad.diagnostics.series import HealthSeries
from steadygrad.diagnostics.thresholds import Thresholds

EVENTS = ("step", "step", "step", "step", "short", "read", "reattach", "replace", "nan",
          "huge")


def _net() -> nn.Sequential:
    # two ReLU rows of one shape (one dead-unit run), a Sigmoid row (saturation), and rows of
    # different widths (one zero-padded stack)
    return nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(),
                         nn.Linear(12, 6), nn.Sigmoid(), nn.Linear(6, 3))


LOSSES = ("tensor", "float", "none", "vector", "mixed")


def _loss_arg(kind: str, per_sample: torch.Tensor, i: int) -> Any:
    """What ``mon.step`` is handed: the loss tensor, its float, None, the per-sample vector,
    or (``mixed``) each of these in turn."""
    if kind == "mixed":
        kind = LOSSES[i % 4]
    return {"tensor": per_sample.mean(), "float": per_sample.mean().item(), "none": None,
            "vector": per_sample}[kind]


def _run(events: list[str], every: int, dense: int, slots: int, seed: int,
         losses: str = "tensor") -> tuple[list[HealthSeries], GradientMonitor]:
    """Train the net through ``events`` with at most ``slots`` staged steps per plan; the
    series read at each ``read`` event and at the end."""
    torch.manual_seed(seed)
    net = _net()
    nn.init.normal_(net[0].bias, mean=-0.3, std=0.5)  # some units start silent
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(seed)
    reads: list[HealthSeries] = []
    with mock.patch.object(collect, "MAX_SLOTS", slots):
        mon = GradientMonitor(net, every=every, dense_start=dense,
                              thresholds=Thresholds(persistence=3))
        mon._records = Records(capacity=2)  # the table grows while steps are staged
        mon.attach()
        for i, event in enumerate(events):
            if event == "read":
                reads.append(mon.series())
                continue
            if event == "reattach":
                mon.detach()
                mon.attach()
                continue
            if event == "replace":  # a new Parameter object: the samples are rebuilt
                net[2].weight = nn.Parameter(net[2].weight.detach().clone())
                opt = torch.optim.SGD(net.parameters(), lr=0.05)
                continue
            x = torch.randn(5 if event == "short" else 16, 5, generator=gen)
            if event == "nan":
                x[0, 0] = float("nan")
            if event == "huge":
                x = x * 1e20  # finite float32 entries whose squares overflow a float32 sum
            y = torch.randn(x.shape[0], 3, generator=gen)
            per_sample = ((net(x) - y) ** 2).mean(1)
            opt.zero_grad()
            per_sample.mean().backward()
            opt.step()
            mon.step(_loss_arg(losses, per_sample, i))
        mon.detach()
        reads.append(mon.series())
    return reads, mon


def _same(a: HealthSeries, b: HealthSeries) -> None:
    assert a.steps == b.steps
    assert sorted(a.values) == sorted(b.values)
    for key in a.values:
        np.testing.assert_array_equal(a.values[key], b.values[key], err_msg=key)
    np.testing.assert_array_equal(a.grad_norm, b.grad_norm)
    np.testing.assert_array_equal(a.step_loss, b.step_loss)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.input_std, b.input_std)
    assert [s for s, _ in a.histograms] == [s for s, _ in b.histograms]
    for (_, ha), (_, hb) in zip(a.histograms, b.histograms, strict=True):
        np.testing.assert_array_equal(ha, hb)


@settings(max_examples=40, deadline=None)
@given(events=st.lists(st.sampled_from(EVENTS), min_size=1, max_size=40),
       every=st.integers(1, 3), dense=st.sampled_from([0, 2]), seed=st.integers(0, 2**16),
       losses=st.sampled_from(LOSSES))
def test_batched_reductions_equal_one_reduction_per_step(events: list[str], every: int,
                                                         dense: int, seed: int,
                                                         losses: str) -> None:
    one, mon1 = _run(events, every, dense, 1, seed, losses)
    eight, mon8 = _run(events, every, dense, 8, seed, losses)
    assert len(one) == len(eight)
    for a, b in zip(one, eight, strict=True):
        _same(a, b)
    assert all(p.slots == 1 for p in mon1._plans.values())
    assert all(p.slots == 8 for p in mon8._plans.values())


def test_steps_are_staged_until_the_slots_fill_or_the_series_is_read() -> None:
    calls: list[int] = []
    real = collect.WeightSamples.reduce

    def counting(self: Any, out: torch.Tensor, n: int, *args: Any) -> None:
        calls.append(n)
        real(self, out, n, *args)

    with mock.patch.object(collect.WeightSamples, "reduce", counting):
        _, mon = _run(["step"] * 19, every=1, dense=0, slots=8, seed=0)
    # 19 sampled steps of one plan: two full batches of 8, then 3 reduced when the series
    # was read at the end
    assert calls == [8, 8, 3]
    assert mon._staged is None


def test_a_stack_too_large_to_keep_is_reduced_step_by_step() -> None:
    with mock.patch.object(collect, "WORKSPACE_BYTES", 64):
        _, mon = _run(["step"] * 3, every=1, dense=0, slots=8, seed=0)
    plan = next(iter(mon._plans.values()))
    assert plan.slots == 1 and all(g.buf is None for g in plan.groups)
    ref, _ = _run(["step"] * 3, every=1, dense=0, slots=1, seed=0)
    _same(ref[-1], mon.series())


def test_a_float32_overflow_is_redone_in_float64_and_batched_alike() -> None:
    """The 1e20 input really overflows float32 sums of squares (float32 norms came out
    non-finite and were redone), the huge step's statistics are finite, and eight slots
    record what one slot does."""
    from steadygrad.diagnostics import stats

    redone: list[int] = []
    real = stats._redo_nonfinite

    def spy(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        redone.append(int(low.isfinite().logical_not().sum()))
        return real(low, high)

    events = ["step", "huge", "step"]
    with mock.patch.object(stats, "_redo_nonfinite", spy):
        batched, _ = _run(events, every=1, dense=0, slots=8, seed=0)
    assert redone and redone[0] > 0  # the float32 overflow happened
    assert np.isfinite(batched[-1].values["act_std"][1]).all()
    one, _ = _run(events, every=1, dense=0, slots=1, seed=0)
    _same(one[-1], batched[-1])
