"""The two-phase recipe: head only with reused layers frozen, then everything at a lower rate."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn.build import mlp
from steadygrad.train.callbacks import Callback
from steadygrad.transfer.fine_tune import fine_tune, fine_tune_from_spec
from steadygrad.transfer.freeze import freeze, frozen_parameter_names
from steadygrad.transfer.reuse import reuse


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(96, 6, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


class _Snapshots(Callback):
    """Records dense1's weight and the optimizer's lr at the end of every epoch."""

    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []
        self.bn_means: list[torch.Tensor] = []
        self.lrs: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self.weights.append(self.trainer.model.dense1.weight.detach().clone())
        self.bn_means.append(self.trainer.model.bn1.running_mean.clone())
        self.lrs.append(self.trainer.optimizer.param_groups[0]["lr"])


def test_phase_one_freezes_reused_layers_phase_two_trains_all_at_lower_rate() -> None:
    source = mlp(6, (16, 16), batch_norm="before", num_outputs=4, seed=0)
    model = reuse(source, drop_last=1, new_head=2)
    start = model.dense1.weight.detach().clone()
    bn_start = model.bn1.running_mean.clone()
    snaps = _Snapshots()
    result = fine_tune(model, _data(), head_epochs=2, epochs=2, learning_rate=0.05,
                       optimizer={"name": "sgd", "momentum": 0.9}, callbacks=[snaps],
                       verbose=0, seed=0)
    assert torch.equal(snaps.weights[0], start) and torch.equal(snaps.weights[1], start)
    assert not torch.equal(snaps.weights[3], start)
    assert torch.equal(snaps.bn_means[1], bn_start)  # frozen BN: inference mode in phase 1
    assert snaps.lrs == pytest.approx([0.05, 0.05, 0.005, 0.005])
    assert result.learning_rates == pytest.approx((0.05, 0.005))
    assert result.frozen == ["dense1", "bn1", "act1", "dense2", "bn2", "act2"]
    assert len(result.head_history["loss"]) == 2 and len(result.full_history["loss"]) == 2
    assert frozen_parameter_names(model) == []
    assert not torch.equal(model.bn1.running_mean, bn_start)  # BN trained in phase 2


def test_layers_frozen_before_the_call_stay_frozen() -> None:
    model = reuse(mlp(6, (8, 8), num_outputs=3, seed=0), drop_last=1, new_head=2)
    freeze(model, "dense1")
    w = model.dense1.weight.detach().clone()
    fine_tune(model, _data(), frozen="dense2", head_epochs=1, epochs=1, learning_rate=0.1,
              optimizer="sgd", verbose=0)
    assert frozen_parameter_names(model) == ["dense1.weight", "dense1.bias"]
    assert torch.equal(model.dense1.weight, w)


def test_bad_arguments_fail_before_training() -> None:
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    before = [p.detach().clone() for p in model.parameters()]
    bad = [
        ({"unfreeze_lr_factor": 0.0}, "unfreeze_lr_factor"),
        ({"head_epochs": -1}, "head_epochs"),
        ({"learning_rate": None}, "learning_rate"),
        ({"optimizer": torch.optim.SGD(model.parameters(), lr=0.1)}, "optimizer"),
        ({"frozen": "dens*"}, "frozen"),
        ({"frozen": slice(0, 3)}, "frozen"),  # leaves nothing to train
    ]
    for kwargs, field in bad:
        with pytest.raises(ConfigError, match=field):
            fine_tune(model, _data(), **{"head_epochs": 1, "epochs": 1, "verbose": 0, **kwargs})
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert frozen_parameter_names(model) == []


def test_spec_dict_matches_keyword_call() -> None:
    def run(spec: bool) -> torch.Tensor:
        model = reuse(mlp(6, (8,), num_outputs=3, seed=0), drop_last=1, new_head=2)
        torch.manual_seed(0)
        model.output.reset_parameters()
        settings = {"frozen": ":-1", "head_epochs": 1, "epochs": 1, "learning_rate": 0.1,
                    "optimizer": "sgd", "seed": 0, "verbose": 0}
        if spec:
            fine_tune_from_spec(model, _data(), settings)
        else:
            fine_tune(model, _data(), **{**settings, "frozen": slice(None, -1)})
        return model.dense1.weight.detach()

    assert torch.equal(run(True), run(False))
    with pytest.raises(ConfigError, match="did you mean 'unfreeze_lr_factor'"):
        fine_tune_from_spec(nn.Linear(1, 1), _data(), {"unfreeze_lr_facter": 0.1})
    with pytest.raises(ConfigError, match="start:stop"):
        fine_tune_from_spec(nn.Linear(1, 1), _data(), {"frozen": "a:b"})
