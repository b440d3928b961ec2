"""LR range test: exponential sweep, smoothing, divergence stop, suggestions, exact restore."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.optim.lr_finder import (
    NoSuggestionError,
    lr_find,
    smooth_losses,
    suggest_lr,
    suggest_lrs,
)


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 6, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))
    return model, x, y


def test_lrs_are_exponential_and_smoothing_is_bias_corrected(problem):
    model, x, y = problem
    r = lr_find(model, (x, y), start_lr=1e-5, end_lr=1.0, num_steps=21, diverge_factor=1e9)
    assert len(r.lrs) == 21 and not r.stopped_early
    ratios = [b / a for a, b in zip(r.lrs, r.lrs[1:], strict=False)]
    assert all(q == pytest.approx(10 ** 0.25) for q in ratios)
    assert r.lrs[0] == pytest.approx(1e-5) and r.lrs[-1] == pytest.approx(1.0)
    assert r.smoothed == pytest.approx(smooth_losses(r.losses, 0.98))
    assert r.smoothed[0] == pytest.approx(r.losses[0])  # bias correction: no pull toward 0


def test_stops_when_loss_diverges(problem):
    model, x, y = problem
    r = lr_find(model, (x, y), start_lr=1e-4, end_lr=1e6, num_steps=100, optimizer="sgd")
    assert r.stopped_early and len(r.lrs) < 100
    # no earlier point broke the 4x rule (else the test would have stopped there)
    for i in range(1, len(r.smoothed) - 1):
        assert r.smoothed[i] <= 4 * min(r.smoothed[:i])
    assert all(math.isfinite(v) for v in r.losses)


def test_suggestion_rules():
    lrs = [10.0 ** e for e in range(-5, 1)]
    smoothed = [2.0, 1.9, 1.5, 0.6, 0.5, 3.0]
    s = suggest_lrs(lrs, smoothed)
    assert s["min_loss_div10"] == pytest.approx(1e-2)  # min at 1e-1, divided by 10
    assert s["steepest"] == pytest.approx(1e-3)  # largest drop per decade around 1e-3..1e-2


def test_state_restored_exactly(problem):
    model, x, y = problem
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()  # the optimizer has state to preserve
    grads = [p.grad.clone() for p in model.parameters()]
    model.eval()
    before_model = {k: v.clone() for k, v in model.state_dict().items()}
    before_opt = opt.state_dict()
    before_opt = {
        "state": {i: {k: v.clone() for k, v in s.items()} for i, s in before_opt["state"].items()},
        "param_groups": [dict(g) for g in before_opt["param_groups"]],
    }
    torch_rng, py_rng = torch.get_rng_state(), random.getstate()
    r = lr_find(model, (x, y), optimizer=opt, num_steps=30)
    assert len(r.lrs) > 5
    after = model.state_dict()
    assert all(torch.equal(before_model[k], after[k]) for k in after)  # incl. BN statistics
    after_opt = opt.state_dict()
    assert after_opt["param_groups"] == before_opt["param_groups"]
    for i, s in before_opt["state"].items():
        assert all(torch.equal(s[k], after_opt["state"][i][k]) for k in s)
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters(), strict=False))
    assert not model.training
    assert torch.equal(torch.get_rng_state(), torch_rng) and random.getstate() == py_rng


def test_finds_a_sensible_rate(problem):
    model, x, y = problem
    r = lr_find(model, (x, y), optimizer="sgd", start_lr=1e-6, end_lr=100.0, num_steps=80,
                seed=0)
    assert 1e-4 < r.suggestions["min_loss_div10"] < 10.0
    assert r.suggestion == r.suggestions["steepest"]


def test_plot(problem, tmp_path):
    pytest.importorskip("matplotlib")
    model, x, y = problem
    r = lr_find(model, (x, y), num_steps=20)
    fig = r.plot(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").stat().st_size > 0
    assert fig.axes[0].get_xscale() == "log"


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"start_lr": 0.0}, "start_lr"), ({"end_lr": 1e-8}, "end_lr"), ({"num_steps": 1}, "num_steps"),
     ({"smoothing": 1.0}, "smoothing"), ({"diverge_factor": 1.0}, "diverge_factor")],
)
def test_bad_arguments(problem, kw, field):
    model, x, y = problem
    with pytest.raises(ConfigError, match=field):
        lr_find(model, (x, y), **kw)


# --- robust suggestion (issue 18) --------------------------------------------------------------


def _flat_problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """Random labels: no rate makes the loss fall in 100 steps (nothing to learn)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(512, 6, generator=g)
    y = torch.randint(0, 2, (512,), generator=g)
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2)), x, y


def test_flat_curve_is_refused_with_the_measured_reason():
    """Regression: on a flat curve ``lr-find`` suggested the first rate tried (3.05e-07)."""
    model, x, y = _flat_problem()
    r = lr_find(model, (x, y), start_lr=1e-7, end_lr=1e-2, num_steps=100, seed=0)
    # the curve really is flat: the last 20 steps' mean loss is within 5% of the first 20's
    assert sum(r.losses[-20:]) > 0.95 * sum(r.losses[:20])
    assert r.suggestions == {} and r.refusal is not None
    with pytest.raises(NoSuggestionError, match=r"never fell .* from 1e-07 to 0\.01"):
        _ = r.suggestion
    with pytest.raises(NoSuggestionError, match="steadygrad diagnose"):
        suggest_lr(r.lrs, r.losses)
    assert "flat" in repr(r)


def test_suggestion_is_where_the_loss_falls_and_trains_well(problem):
    model, x, y = problem
    r = lr_find(model, (x, y), optimizer="sgd", start_lr=1e-6, end_lr=100.0, num_steps=80,
                seed=0)
    lr = r.suggestion
    assert lr == suggest_lr(r.lrs[: len(r.lrs) - r.stopped_early], r.losses[: len(r.lrs)
                                                                             - r.stopped_early])
    assert r.lrs[0] < lr < r.lrs[-1]  # inside the explored range, not its first point
    # measured effect: 100 steps at the suggestion beat 100 steps at 1/100 of it
    def train(rate: float) -> float:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(6, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))
        opt = torch.optim.SGD(net.parameters(), lr=rate)
        for i in range(100):
            b = slice((i * 32) % 256, (i * 32) % 256 + 32)
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[b]), y[b]).backward()
            opt.step()
        with torch.no_grad():
            return float(nn.functional.cross_entropy(net.eval()(x), y))

    assert train(lr) < train(lr / 100)


def test_repr_is_one_short_line(problem):
    model, x, y = problem
    r = lr_find(model, (x, y), num_steps=100, seed=0)
    text = repr(r)
    assert "\n" not in text and len(text) < 120 and text.startswith("LRFinderResult(steps=")


def test_plot_y_range_ignores_the_divergence_spike(problem):
    pytest.importorskip("matplotlib")
    model, x, y = problem
    r = lr_find(model, (x, y), start_lr=1e-4, end_lr=1e6, num_steps=100, seed=0)
    assert r.stopped_early and max(r.losses) > 3 * min(r.losses)  # there is a spike
    ax = r.plot().axes[0]
    low, high = ax.get_ylim()
    assert ax.get_xscale() == "log"
    assert high < max(r.losses)  # the spike is off the chart ...
    assert low <= min(r.losses[: r.losses.index(min(r.losses)) + 1]) + 0.1  # ... the valley is on
