"""Reference runs: deliberately broken nets are flagged, the same nets with the remedy are not.

These are the calibration runs of the default thresholds (docs/health-report.md). "Flagged"
means a finding of severity warning or error; "not flagged" means ``report.has("warning")`` is
False (an ``info`` finding may remain when the symptom is real but training progresses).
"""

from __future__ import annotations

import torch
from torch import nn

from .reference_runs import glorot, he, lecun, mlp, normal, train


def kinds(report, severity: str = "warning") -> set[str]:
    order = ("info", "warning", "error")
    return {f.kind for f in report.findings if order.index(f.severity) >= order.index(severity)}


def test_deep_sigmoid_unit_normal_init_is_flagged_and_glorot_bn_is_not() -> None:
    bad = train(mlp(10, 64, nn.Sigmoid, init=normal(1.0)), lr=0.01)
    assert kinds(bad) & {"saturation", "vanishing_gradients"}
    sat = next(f for f in bad.findings if f.kind == "saturation")
    assert sat.layers[0] == "0"  # the first layer (unit-normal weights on standardized input)
    assert sat.remedies and sat.remedies[0].patch["model.kernel_initializer"] == "he_normal"
    good = train(mlp(10, 64, nn.Sigmoid, init=glorot, bn=True), lr=0.01)
    assert not good.has("warning"), good.render()


def test_deep_tanh_tiny_init_vanishes_and_glorot_does_not() -> None:
    bad = train(mlp(10, 64, nn.Tanh, init=normal(0.01)), lr=0.01)
    assert "vanishing_gradients" in kinds(bad)
    f = next(f for f in bad.findings if f.kind == "vanishing_gradients")
    assert f.layers[0] == "0" and f.evidence["orders_fit_at_init"] > 2
    good = train(mlp(10, 64, nn.Tanh, init=glorot), lr=0.01)
    assert not good.has("warning"), good.render()


def test_relu_with_far_too_high_learning_rate_has_dead_units_and_lower_lr_does_not() -> None:
    bad = train(mlp(10, 64, nn.ReLU, init=he), lr=0.1)
    assert "dead_units" in kinds(bad)
    assert not bad.has("error")  # no NaN in this run: the finding is the dying, not a blow-up
    good = train(mlp(10, 64, nn.ReLU, init=he), lr=0.01)
    assert not good.findings, good.render()


def test_oversized_init_explodes_and_he_init_does_not() -> None:
    bad = train(mlp(10, 64, nn.ReLU, init=normal(0.3)), lr=0.01)
    f = next(f for f in bad.findings if f.kind == "exploding_gradients")
    assert f.severity == "error" and f.evidence["orders_fit_at_init"] < -1.5
    good = train(mlp(10, 64, nn.ReLU, init=he), lr=0.01)
    assert not good.has("warning")


def test_clipping_keeps_an_oversized_init_from_blowing_up() -> None:
    clipped = train(mlp(10, 64, nn.ReLU, init=normal(0.3)), lr=0.01, clip=1.0)
    assert not clipped.has("warning"), clipped.render()
    # the profile is still steep, so it is reported, but only as info (training progresses)
    assert "exploding_gradients" in kinds(clipped, "info")


def test_nan_injected_in_one_layer_is_localized() -> None:
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
        rep = train(net, steps=8, lr=0.01)
    finally:
        handle.remove()
    f = next(f for f in rep.findings if f.kind == "non_finite")
    assert f.layers == ("6",) and f.first_step == 4 and f.evidence["where"] == "forward"
    assert f.severity == "error"


def test_selu_with_default_torch_init_breaks_self_normalization_lecun_does_not() -> None:
    bad = train(mlp(10, 64, nn.SELU), lr=0.01)
    f = next(f for f in bad.findings if f.kind == "self_normalization")
    assert "lecun_init" in f.evidence["broken_conditions"]
    assert f.remedies[0].patch == {"model.kernel_initializer": "lecun_normal"}
    good = train(mlp(10, 64, nn.SELU, init=lecun), lr=0.01)
    assert not good.findings, good.render()


def test_selu_with_plain_dropout_names_alpha_dropout() -> None:
    bad = train(mlp(10, 64, nn.SELU, init=lecun, dropout=lambda: nn.Dropout(0.3)), lr=0.01)
    f = [f for f in bad.findings if f.kind == "self_normalization"]
    assert f and "alpha_dropout" in f[0].evidence["broken_conditions"]


def test_healthy_nets_produce_no_warning() -> None:
    for model, opt, lr in ((mlp(10, 64, nn.ReLU, init=he), "sgd", 0.01),
                           (mlp(10, 64, nn.ReLU, init=he), "adam", 1e-3),
                           (mlp(10, 64, nn.ELU, bn=True), "sgd", 0.01)):
        rep = train(model, lr=lr, optimizer=opt)
        assert not rep.has("warning"), rep.render()


def test_too_low_learning_rate_is_flagged() -> None:
    rep = train(mlp(10, 64, nn.ReLU, init=he), lr=1e-5)
    f = next(f for f in rep.findings if f.kind == "learning_rate")
    assert f.evidence["direction"] == "too low" and f.severity == "warning"
    # regression (issue 18): "too low" proposed reduce_on_plateau, which only lowers it more
    patches = [r.patch for r in f.remedies]
    assert {"train.schedule": "reduce_on_plateau"} not in patches
    assert {"train.optimizer.learning_rate": "lr_find"} in patches
