"""Correctness of the monitor's statistics and verdicts (issue 16, Deliver 3-4).

Each test reproduces a wrong report of the schema-1 monitor: a float32 sum of squares that
overflowed into a "NaN in the weights" verdict, "learning rate too low" on a diverging run,
"gradients look healthy" for a run that diverged, and warnings demoted to ``info`` for a net
that fell back to chance level.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from steadygrad.diagnostics.diagnose import diagnose
from steadygrad.diagnostics.monitor import GradientMonitor
from steadygrad.diagnostics.progress import confirmed_onset, learning_progress
from steadygrad.diagnostics.report import SCHEMA, HealthReport
from steadygrad.diagnostics.rules import evaluate
from steadygrad.diagnostics.series import HealthSeries, LayerMeta


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    x_np, y_np = load_digits(return_X_y=True)
    x = torch.tensor(x_np, dtype=torch.float32)
    return (x - x.mean(0)) / (x.std(0) + 1e-6), torch.tensor(y_np)


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 10))


def test_finite_huge_weights_are_not_reported_non_finite() -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.fill_(1e20)  # finite; its float32 sum of squares (1.2e41) is not
    assert torch.isfinite(net[0].weight).all()
    assert not torch.isfinite((net[0].weight ** 2).sum())  # the premise: float32 overflows
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    x = torch.randn(8, 4)
    with GradientMonitor(net, every=1) as mon:
        for _ in range(3):
            loss = net(x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            mon.step(loss)
    rep = mon.report()
    w_rms = rep.series.values["weight_rms"][:, 0]
    np.testing.assert_allclose(w_rms, 1e20, rtol=1e-6)  # oracle: all entries are 1e20
    assert not [f for f in rep.findings if f.kind == "non_finite"]


@pytest.fixture(scope="module")
def lr30() -> tuple[HealthReport, list[float]]:
    """The issue's case: the digits MLP with SGD at lr=30 diverges within a few steps."""
    x, y = _digits()
    # plain torch first: the premise (the run really ends non-finite)
    net = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=30.0)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(20):
        idx = torch.randint(0, x.shape[0], (32,), generator=gen)
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    rep = diagnose(_mlp(), x, y, steps=20, learning_rate=30.0, every=1)
    return rep, losses


def test_lr30_diverges_on_plain_torch_and_in_the_report(
        lr30: tuple[HealthReport, list[float]]) -> None:
    rep, losses = lr30
    bad = next(i for i, v in enumerate(losses) if not math.isfinite(v))
    assert rep.series.first_nonfinite_loss == bad
    text = rep.render()
    assert f"training diverged: the loss became NaN/Inf at step {bad}" in text
    assert "gradients look healthy" not in text


def test_lr30_never_says_learning_rate_too_low(lr30: tuple[HealthReport, list[float]]) -> None:
    rep, _ = lr30
    lr = [f for f in rep.findings if f.kind == "learning_rate"]
    assert lr and all(f.evidence["direction"] == "too high" for f in lr)


def test_lr30_non_finite_names_a_layer_that_holds_nan(
        lr30: tuple[HealthReport, list[float]]) -> None:
    rep, _ = lr30
    nf = next(f for f in rep.findings if f.kind == "non_finite")
    s = rep.series
    k = s.steps.index(nf.first_step)
    row = s.layers.index(nf.layers[0])
    where = nf.evidence["where"]
    held = {"forward": s.values["act_nonfinite"][k, row] > 0,
            "backward": s.values["grad_nonfinite"][k, row] > 0,
            "weights": not math.isfinite(s.values["weight_rms"][k, row])}[where]
    assert held
    # no weight is named before the weights really hold a NaN/Inf (their RMS is exact now)
    assert where != "weights" or not np.isfinite(s.values["weight_rms"][k, row])


def test_lr30_warns_strictly_before_the_first_non_finite_loss(
        lr30: tuple[HealthReport, list[float]]) -> None:
    rep, _ = lr30
    hm = rep.harm()
    assert hm is not None and hm["kind"] == "non_finite_loss"
    assert hm["warning_kind"] in ("exploding_gradients", "learning_rate")
    assert hm["lead_time"] >= 1


def _series(losses: list[float], steps: list[int] | None = None) -> HealthSeries:
    steps = steps or list(range(len(losses)))
    s = HealthSeries.empty(["a", "b"], steps)
    s.meta = [LayerMeta(0, "a", "Linear", "relu", ("a",), 10, 4, (-4.0, 4.0)),
              LayerMeta(1, "b", "Linear", None, ("b",), 2, 10, (-4.0, 4.0))]
    s.loss = np.array(losses, dtype=float)
    return s


def test_collapse_to_chance_is_impaired_not_progress() -> None:
    # a drop, then back to ln(10): the first-vs-last-quarter rule read this as progress
    loss = [2.30, 1.2, 0.8, 0.7, 0.8, 1.6, 2.2, 2.3, 2.3, 2.3, 2.3, 2.3]
    p = learning_progress(np.array(loss), baseline=math.log(10))
    assert p["impaired"] is True and p["stopped_improving_step"] == 3
    s = _series(loss)
    s.values["dead_frac"][:, 0] = [0.0, 0.0, 0.1] + [0.8] * 9  # units die as it collapses
    f = next(f for f in evaluate(s) if f.kind == "dead_units")
    assert f.severity == "warning" and f.first_step == 3 and f.raised_step == 5


def test_below_chance_from_the_start_is_not_learning() -> None:
    # the loss drops a lot from a bad init, but never below what a constant predictor gets
    loss = [9.0, 5.0, 3.0, 2.5, 2.4, 2.35, 2.33, 2.32]
    assert learning_progress(np.array(loss))["impaired"] is False  # vs the first loss
    assert learning_progress(np.array(loss), baseline=math.log(10))["impaired"] is True


def test_persistence_counts_steps_not_checks() -> None:
    flags = [False, True, True]
    assert confirmed_onset(flags, [0, 32, 64], 3) == (1, 2)  # confirmed at step 64
    assert confirmed_onset(flags, [0, 1, 2], 3) is None  # two checks span only 2 steps
    s = _series([2.3] * 4, steps=[0, 32, 64, 96])
    s.values["dead_frac"][:, 0] = [0.0, 0.9, 0.9, 0.9]
    f = next(f for f in evaluate(s) if f.kind == "dead_units")
    assert (f.first_step, f.raised_step) == (32, 64)  # schema 1: nothing before step 96


def test_schema_1_files_still_load() -> None:
    s = _series([2.0, 1.0, 0.5])
    rep = HealthReport(s, evaluate(s), meta={"every": 1})
    doc = json.loads(rep.to_json())
    assert doc["schema"] == SCHEMA == "steadygrad.health/2"
    doc["schema"] = "steadygrad.health/1"
    for key in ("harm", "baseline_loss", "first_nonfinite_loss"):
        del doc[key]
    for f in doc["findings"]:
        del f["raised_step"]
    old = HealthReport.from_dict(doc)
    assert old.series.layers == ["a", "b"] and old.series.first_nonfinite_loss is None
    assert [f.raised_step for f in old.findings] == [None] * len(old.findings)
    bumped = HealthReport.from_json(rep.to_json())
    assert bumped.to_dict() == rep.to_dict()
