"""Sparsity measures, thresholding, and iterative global magnitude pruning to an exact target."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from steadygrad.compress.prune import (
    gradual_schedule,
    layer_sparsity,
    prune_to_sparsity,
    sparsity,
    sparsity_table,
    zero_small_weights_,
)
from steadygrad.errors import ConfigError
from steadygrad.nn.build import mlp
from steadygrad.train.evaluate import evaluate


def _net() -> nn.Sequential:
    return mlp(10, (40, 30), num_outputs=3, seed=0)


def _weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([m.weight.detach().flatten() for m in model.modules()
                      if isinstance(m, nn.Linear)])


@pytest.mark.parametrize("target", [0.3, 0.75, 0.9, 0.999])
@pytest.mark.parametrize("steps", [1, 4])
def test_reaches_the_requested_sparsity_exactly(target: float, steps: int) -> None:
    model = _net()
    total = _weights(model).numel()
    report = prune_to_sparsity(model, target, steps=steps)
    zeros = int((_weights(model) == 0).sum())
    assert zeros == round(target * total)
    assert sparsity(model) == zeros / total
    assert report.schedule[-1] == zeros / total
    assert not prune.is_pruned(model)  # prune.remove made it permanent
    assert {n for n, _ in model.named_parameters()} == {n for n, _ in _net().named_parameters()}


def test_global_magnitude_keeps_the_largest_weights() -> None:
    model = _net()
    before = _weights(model).abs()
    prune_to_sparsity(model, 0.6, steps=1)
    kept = _weights(model) != 0
    assert before[kept].min() >= before[~kept].max()  # one global threshold across layers
    per_layer = layer_sparsity(model)
    assert len(set(per_layer.values())) > 1  # layers are pruned unevenly (global, not per layer)


def test_masked_weights_stay_zero_during_fine_tuning() -> None:
    model = _net()
    x = torch.randn(64, 10)
    y = torch.randint(0, 3, (64,))
    seen = []

    def tune(m: nn.Module) -> float:
        from steadygrad.train.loop import fit

        fit(m, (x, y), epochs=2, optimizer="adam", learning_rate=0.05, verbose=0)
        seen.append(sparsity(m))
        return seen[-1]

    report = prune_to_sparsity(model, 0.8, steps=3, fine_tune=tune)
    assert report.fine_tune_results == seen
    assert seen == pytest.approx(report.schedule)  # fine-tuning did not revive pruned weights
    assert report.schedule == pytest.approx(gradual_schedule(0.8, 3), abs=1e-3)
    dict_report = prune_to_sparsity(_net(), 0.5, steps=2,
                                    fine_tune={"data": (x, y), "epochs": 1, "verbose": 0})
    assert len(dict_report.fine_tune_results[0]["loss"]) == 1


def test_gradual_schedule_is_cubic_and_ends_at_target() -> None:
    s = gradual_schedule(0.9, 4)
    assert s[-1] == pytest.approx(0.9)
    assert s[0] == pytest.approx(0.9 * (1 - 0.75 ** 3))
    steps = [b - a for a, b in zip([0.0, *s], s, strict=False)]
    assert all(big > small for big, small in itertools.pairwise(steps))  # cuts shrink


def test_zero_small_weights_and_sparsity_per_layer() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.linspace(-0.8, 0.7, 16).reshape(4, 4))
        model[2].weight.fill_(1.0)
    small = int((model[0].weight.abs() < 0.25).sum())
    assert zero_small_weights_(model, 0.25) == small
    assert zero_small_weights_(model, 0.25) == 0  # already zero: not counted again
    assert layer_sparsity(model) == {"0": small / 16, "2": 0.0}
    assert sparsity(model) == small / 24


def test_bad_arguments_fail_before_work() -> None:
    model = _net()
    w = _weights(model).clone()
    for kwargs, field in [({"target": 1.0}, "target"), ({"target": -0.1}, "target"),
                          ({"target": 0.5, "steps": 0}, "steps"),
                          ({"target": 0.5, "fine_tune": {"epochs": 1}}, "fine_tune")]:
        with pytest.raises(ConfigError, match=field):
            prune_to_sparsity(model, **kwargs)
    assert torch.equal(_weights(model), w)
    with pytest.raises(ConfigError, match="Linear or Conv"):
        sparsity(nn.ReLU())
    prune.l1_unstructured(model.dense1, "weight", amount=0.5)
    with pytest.raises(ConfigError, match="remove"):
        prune_to_sparsity(model, 0.5)


def test_sparsity_table_rows_and_source_untouched() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 10, generator=g)
    y = (x[:, :3].argmax(1))
    model = _net()
    from steadygrad.train.loop import fit

    fit(model, (x, y), epochs=5, optimizer="adam", learning_rate=0.01, verbose=0, seed=0)
    w = _weights(model).clone()
    rows = sparsity_table(model, [0, 0.5, 0.99], lambda m: evaluate(m, (x, y)), steps=2)
    assert [r["target"] for r in rows] == [0.0, 0.5, 0.99]
    assert [r["sparsity"] for r in rows] == pytest.approx([0.0, 0.5, 0.99], abs=1e-3)
    assert rows[0]["accuracy"] > rows[2]["accuracy"]  # 99% sparse without fine-tuning hurts
    assert torch.equal(_weights(model), w)
