"""Item 6: accuracy of the gradient-health findings on a labelled suite of setups.

Labels come from the mechanism, fixed before running the tool (He et al. 2015 / Glorot &
Bengio 2010 variance analysis), never from the tool's output:

* exploding: depth >= 6, every hidden layer's weights scaled so the per-layer backward gain is
  >= 2.5 (relu: std = g * sqrt(2 / fan_in); linear/tanh: std = g / sqrt(fan_in)), i.e. >= 2.4
  orders of magnitude of amplification from the top to the bottom hidden layer at init;
* vanishing: depth >= 6 with sigmoid (derivative <= 1/4) and Glorot or smaller init, or tanh
  with std = 0.3 / sqrt(fan_in): per-layer gain <= 0.3;
* dead units: relu layers whose bias is <= -4 pre-activation standard deviations (no unit can
  be positive for standardized inputs), or a plain ReLU net hit by a learning rate of 3-10
  with SGD;
* healthy: depth 2-6, He/Glorot/LeCun init matched to the activation, Adam 1e-3 or SGD 0.05,
  standardized inputs.

A setup counts as flagged when ``diagnose`` reports a finding of the labelled kind (any
severity); a false alarm is any exploding/vanishing/dead-unit/non-finite finding of severity
warning or error on a healthy setup.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from steadygrad.diagnostics.diagnose import diagnose

BAD_KINDS = ("exploding_gradients", "vanishing_gradients", "dead_units", "non_finite")


@dataclass(frozen=True)
class Setup:
    label: str
    depth: int
    width: int
    act: str
    init_gain: float  # multiplier on the activation's standard init (He for relu, LeCun else)
    bias: float
    optimizer: str
    lr: float
    data: str
    seed: int


def _act(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "selu": nn.SELU(),
            "linear": nn.Identity(), "elu": nn.ELU()}[name]


def _data(kind: str, seed: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    g = torch.Generator().manual_seed(seed)
    if kind == "digits":
        from sklearn.datasets import load_digits
        x_np, y_np = load_digits(return_X_y=True)
        x = torch.tensor(x_np, dtype=torch.float32)
        x = (x - x.mean(0)) / (x.std(0) + 1e-6)
        return x, torch.tensor(y_np), 64, 10
    if kind == "blobs":
        y = torch.randint(0, 4, (512,), generator=g)
        centers = torch.randn(4, 20, generator=g) * 2
        return centers[y] + torch.randn(512, 20, generator=g), y, 20, 4
    x = torch.randn(512, 16, generator=g)  # regression
    w = torch.randn(16, 1, generator=g)
    return x, (x @ w + 0.1 * torch.randn(512, 1, generator=g)), 16, 1


def _build(s: Setup, n_in: int, n_out: int) -> nn.Module:
    torch.manual_seed(s.seed)
    layers: list[nn.Module] = []
    fan = n_in
    for _ in range(s.depth):
        lin = nn.Linear(fan, s.width)
        base = math.sqrt(2.0 / fan) if s.act == "relu" else math.sqrt(1.0 / fan)
        if s.act == "sigmoid":
            base = math.sqrt(2.0 / (fan + s.width))  # Glorot normal
        nn.init.normal_(lin.weight, 0.0, s.init_gain * base)
        nn.init.constant_(lin.bias, s.bias)
        layers += [lin, _act(s.act)]
        fan = s.width
    layers.append(nn.Linear(fan, n_out))
    return nn.Sequential(*layers)


def _suite() -> list[Setup]:
    out: list[Setup] = []
    data = ["digits", "blobs", "regression"]
    for i, (depth, width, act, gain) in enumerate([
        (6, 64, "relu", 2.5), (8, 32, "relu", 3.0), (10, 64, "relu", 2.5), (12, 32, "relu", 3.0),
        (6, 64, "linear", 3.0), (8, 128, "linear", 2.5), (8, 32, "tanh", 4.0),
        (10, 64, "tanh", 3.0), (6, 32, "relu", 4.0), (8, 64, "linear", 4.0),
    ]):
        out.append(Setup("exploding_gradients", depth, width, act, gain, 0.0, "sgd", 1e-3,
                         data[i % 3], i))
    for i, (depth, width, act, gain) in enumerate([
        (6, 64, "sigmoid", 1.0), (8, 32, "sigmoid", 1.0), (10, 64, "sigmoid", 1.0),
        (12, 32, "sigmoid", 0.5), (6, 128, "sigmoid", 0.5), (8, 64, "tanh", 0.3),
        (10, 32, "tanh", 0.3), (12, 64, "tanh", 0.3), (6, 64, "tanh", 0.2),
        (8, 128, "sigmoid", 1.0),
    ]):
        out.append(Setup("vanishing_gradients", depth, width, act, gain, 0.0, "sgd", 0.01,
                         data[i % 3], 100 + i))
    for i, (depth, width, bias, lr) in enumerate([
        (3, 64, -6.0, 0.01), (4, 32, -8.0, 0.01), (5, 64, -6.0, 0.01), (6, 32, -10.0, 0.01),
        (3, 128, -8.0, 0.01), (4, 64, -6.0, 0.05), (2, 64, -8.0, 0.01),
        (4, 64, 0.0, 10.0), (5, 32, 0.0, 5.0), (3, 64, 0.0, 3.0),
    ]):
        out.append(Setup("dead_units", depth, width, "relu", 1.0, bias, "sgd", lr,
                         data[i % 3], 200 + i))
    for i, (depth, width, act, opt, lr) in enumerate([
        (2, 64, "relu", "adam", 1e-3), (3, 32, "relu", "sgd", 0.05), (4, 64, "tanh", "adam", 1e-3),
        (3, 64, "selu", "adam", 1e-3), (5, 32, "relu", "adam", 1e-3), (6, 64, "elu", "adam", 1e-3),
        (2, 128, "tanh", "sgd", 0.05), (4, 32, "selu", "sgd", 0.05), (3, 64, "elu", "sgd", 0.05),
        (6, 32, "relu", "sgd", 0.05), (4, 128, "relu", "adam", 1e-3),
        (5, 64, "tanh", "sgd", 0.05),
    ]):
        out.append(Setup("healthy", depth, width, act, 1.0, 0.0, opt, lr, data[i % 3], 300 + i))
    return out


def _evaluate(s: Setup, steps: int = 60) -> dict[str, object]:
    x, y, n_in, n_out = _data(s.data, s.seed)
    model = _build(s, n_in, n_out)
    report = diagnose(model, x, y, steps=steps, batch_size=64, optimizer=s.optimizer,
                      learning_rate=s.lr, every=1, seed=s.seed)
    found = {f.kind: (f.severity, f.first_step) for f in report.findings}
    return {"label": s.label, "found": found}


def _score(results: list[dict[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for kind in ("exploding_gradients", "vanishing_gradients", "dead_units"):
        rows = [r for r in results if r["label"] == kind]
        hits = [r for r in rows if kind in r["found"]]  # type: ignore[operator]
        steps = [r["found"][kind][1] for r in hits]  # type: ignore[index]
        out[kind] = {"n": len(rows), "recall": len(hits) / len(rows),
                     "median_first_step": statistics.median(steps) if steps else None}
    healthy = [r for r in results if r["label"] == "healthy"]
    alarms = [r for r in healthy if any(
        k in BAD_KINDS and sev != "info" for k, (sev, _) in r["found"].items())]  # type: ignore[attr-defined]
    out["healthy"] = {"n": len(healthy), "false_alarms": len(alarms)}
    return out


SUITE = _suite()


def test_suite_is_large_enough() -> None:
    counts: dict[str, int] = {}
    for s in SUITE:
        counts[s.label] = counts.get(s.label, 0) + 1
    assert min(counts.values()) >= 10 and len(counts) == 4


def _first_of(label: str) -> Callable[[], Setup]:
    return lambda: next(s for s in SUITE if s.label == label)


@pytest.mark.parametrize("label", ["exploding_gradients", "vanishing_gradients", "dead_units",
                                   "healthy"])
def test_one_setup_per_kind(label: str) -> None:
    r = _evaluate(_first_of(label)(), steps=30)
    found: dict[str, tuple[str, int]] = r["found"]  # type: ignore[assignment]
    if label == "healthy":
        assert not any(k in BAD_KINDS and sev != "info" for k, (sev, _) in found.items()), found
    else:
        assert label in found, found


@pytest.mark.slow
def test_full_labelled_suite() -> None:
    results = [_evaluate(s) for s in SUITE]
    score = _score(results)
    print("DIAG_SCORE", json.dumps(score))
    print("DIAG_DETAIL", json.dumps([[s.label, s.depth, s.act, s.init_gain, s.bias, s.lr,
                                      r["found"]] for s, r in zip(SUITE, results, strict=True)]))
    for kind in ("exploding_gradients", "vanishing_gradients", "dead_units"):
        assert score[kind]["recall"] >= 0.5, score  # type: ignore[index]
    assert score["healthy"]["false_alarms"] <= 2, score  # type: ignore[index]
