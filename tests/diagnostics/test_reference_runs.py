"""Reference runs: deliberately broken nets are flagged, the same nets with the remedy are not.

These are the calibration runs of the default thresholds (docs/health-report.md). "Flagged"
means a finding of severity warning or error; "not flagged" means ``report.has("warning")`` is
False (an ``info`` finding may remain when the symptom is real but training progresses).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from .reference_runs import digits, glorot, he, lecun, mlp, normal, train

SEEDS = (0, 1, 2)
"""Every reference run is checked under three seeds: the global torch seed (weight
initialization, set before the nets are built) and the mini-batch sampling seed of ``train``."""


@pytest.fixture(params=SEEDS, ids=lambda s: f"seed{s}")
def seed(request: pytest.FixtureRequest) -> int:
    torch.manual_seed(request.param)  # after conftest's manual_seed(0): init differs per seed
    return int(request.param)


def kinds(report, severity: str = "warning") -> set[str]:
    order = ("info", "warning", "error")
    return {f.kind for f in report.findings if order.index(f.severity) >= order.index(severity)}


def _saturated_fraction(net: nn.Sequential, margin: float = 0.01) -> float:
    """Plain torch: share of the first sigmoid's outputs within ``margin`` of 0 or 1."""
    x, _ = digits()
    with torch.no_grad():
        out = torch.sigmoid(net[0](x))
    return float(((out < margin) | (out > 1 - margin)).float().mean())


def test_deep_sigmoid_large_normal_init_is_flagged_and_glorot_bn_is_not(seed: int) -> None:
    # N(0, 2^2) weights: pre-activations of std ~16 on standardized input. With N(0, 1) (std
    # ~8) about half the outputs sit at an asymptote, exactly the rule's 0.5 threshold, so
    # the finding was a coin flip across seeds (seed 1: none); the premise is checked on plain
    # torch to be well past the threshold.
    net = mlp(10, 64, nn.Sigmoid, init=normal(2.0))
    assert _saturated_fraction(net) > 0.65
    bad = train(net, lr=0.01, seed=seed)
    assert kinds(bad) & {"saturation", "vanishing_gradients"}
    sat = next(f for f in bad.findings if f.kind == "saturation")
    assert sat.layers[0] == "0"  # the first layer (large weights on standardized input)
    assert sat.remedies and sat.remedies[0].patch["model.kernel_initializer"] == "he_normal"
    good = train(mlp(10, 64, nn.Sigmoid, init=glorot, bn=True), lr=0.01, seed=seed)
    assert not good.has("warning"), good.render()


def test_deep_tanh_tiny_init_vanishes_and_glorot_does_not(seed: int) -> None:
    bad = train(mlp(10, 64, nn.Tanh, init=normal(0.01)), lr=0.01, seed=seed)
    assert "vanishing_gradients" in kinds(bad)
    f = next(f for f in bad.findings if f.kind == "vanishing_gradients")
    assert f.layers[0] == "0" and f.evidence["orders_fit_at_init"] > 2
    good = train(mlp(10, 64, nn.Tanh, init=glorot), lr=0.01, seed=seed)
    assert not good.has("warning"), good.render()


def test_relu_with_far_too_high_learning_rate_has_dead_units_and_lower_lr_does_not(
        seed: int) -> None:
    bad = train(mlp(10, 64, nn.ReLU, init=he), lr=0.1, seed=seed)
    assert "dead_units" in kinds(bad)
    assert not bad.has("error")  # no NaN in this run: the finding is the dying, not a blow-up
    good = train(mlp(10, 64, nn.ReLU, init=he), lr=0.01, seed=seed)
    assert not good.findings, good.render()


def test_oversized_init_explodes_and_he_init_does_not(seed: int) -> None:
    bad = train(mlp(10, 64, nn.ReLU, init=normal(0.3)), lr=0.01, seed=seed)
    f = next(f for f in bad.findings if f.kind == "exploding_gradients")
    assert f.severity == "error" and f.evidence["orders_fit_at_init"] < -1.5
    good = train(mlp(10, 64, nn.ReLU, init=he), lr=0.01, seed=seed)
    assert not good.has("warning")


def test_clipping_keeps_an_oversized_init_from_blowing_up(seed: int) -> None:
    clipped = train(mlp(10, 64, nn.ReLU, init=normal(0.3)), lr=0.01, clip=1.0, seed=seed)
    assert not clipped.has("warning"), clipped.render()
    # the profile is still steep, so it is reported, but only as info (training progresses)
    assert "exploding_gradients" in kinds(clipped, "info")


def test_nan_injected_in_one_layer_is_localized(seed: int) -> None:
    net = mlp(8, 32, nn.ReLU, init=he)
    target = net[6]  # the 4th Linear layer (row 3)
    calls = {"n": 0}

    def poison(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 5:
            out = out.clone()
            out[0, 0] = float("nan")
        return out

    handle = target.register_forward_hook(poison)
    try:
        rep = train(net, steps=8, lr=0.01, seed=seed)
    finally:
        handle.remove()
    f = next(f for f in rep.findings if f.kind == "non_finite")
    assert f.layers == ("6",) and f.first_step == 4 and f.evidence["where"] == "forward"
    assert f.severity == "error"


def test_selu_with_default_torch_init_breaks_self_normalization_lecun_does_not(seed: int) -> None:
    bad = train(mlp(10, 64, nn.SELU), lr=0.01, seed=seed)
    f = next(f for f in bad.findings if f.kind == "self_normalization")
    assert "lecun_init" in f.evidence["broken_conditions"]
    assert f.remedies[0].patch == {"model.kernel_initializer": "lecun_normal"}
    good = train(mlp(10, 64, nn.SELU, init=lecun), lr=0.01, seed=seed)
    assert not good.findings, good.render()


def _deep_selu_std(net: nn.Sequential) -> float:
    """Plain torch, train mode: the largest std of the deeper half of the SELU outputs."""
    x, _ = digits()
    stds: list[float] = []
    hooks = [m.register_forward_hook(lambda _m, _a, out: stds.append(float(out.std())))
             for m in net if isinstance(m, nn.SELU)]
    try:
        with torch.no_grad():
            net.train()(x)
    finally:
        for h in hooks:
            h.remove()
    return max(stds[len(stds) // 2:])


def test_selu_with_plain_dropout_names_alpha_dropout(seed: int) -> None:
    # Dropout(0.5): the deep SELU outputs leave the std band [1/2, 2] of the rule on plain
    # torch (checked here); with Dropout(0.3) they reached ~1.9-2.1, at the band's edge, and
    # the finding depended on the seed (seeds 1 and 2: none).
    net = mlp(10, 64, nn.SELU, init=lecun, dropout=lambda: nn.Dropout(0.5))
    assert _deep_selu_std(net) > 2.0
    bad = train(net, lr=0.01, seed=seed)
    f = [f for f in bad.findings if f.kind == "self_normalization"]
    assert f and "alpha_dropout" in f[0].evidence["broken_conditions"]


def test_healthy_nets_produce_no_warning(seed: int) -> None:
    for model, opt, lr in ((mlp(10, 64, nn.ReLU, init=he), "sgd", 0.01),
                           (mlp(10, 64, nn.ReLU, init=he), "adam", 1e-3),
                           (mlp(10, 64, nn.ELU, bn=True), "sgd", 0.01)):
        rep = train(model, lr=lr, optimizer=opt, seed=seed)
        assert not rep.has("warning"), rep.render()


def test_too_low_learning_rate_is_flagged(seed: int) -> None:
    rep = train(mlp(10, 64, nn.ReLU, init=he), lr=1e-5, seed=seed)
    f = next(f for f in rep.findings if f.kind == "learning_rate")
    assert f.evidence["direction"] == "too low" and f.severity == "warning"
    # regression (issue 18): "too low" proposed reduce_on_plateau, which only lowers it more
    patches = [r.patch for r in f.remedies]
    assert {"train.schedule": "reduce_on_plateau"} not in patches
    assert {"train.optimizer.learning_rate": "lr_find"} in patches
