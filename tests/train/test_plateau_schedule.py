"""Performance scheduling by name: fit feeds the monitored metric to the scheduler per epoch."""

from __future__ import annotations

import pytest

import steadygrad as sg
from steadygrad.experiments.config import config_from_dict
from steadygrad.optim.plateau import PerformanceScheduler
from steadygrad.optim.schedules import make_schedule


@pytest.mark.parametrize("name", ["reduce_on_plateau", "performance", "plateau"])
def test_make_schedule_builds_a_performance_scheduler(name: str) -> None:
    built = make_schedule(name, learning_rate=0.1, total_steps=100, factor=0.2, patience=3)
    assert isinstance(built, PerformanceScheduler)
    assert (built.factor, built.patience) == (0.2, 3)
    assert built.state_dict() == PerformanceScheduler(factor=0.2, patience=3).state_dict()


def test_unknown_plateau_argument_is_named() -> None:
    with pytest.raises(sg.errors.ConfigError, match="patience"):
        make_schedule("reduce_on_plateau", learning_rate=0.1, patients=3)


def test_config_accepts_reduce_on_plateau() -> None:
    cfg = config_from_dict({"train": {"schedule": {"name": "performance", "patience": 1}}})
    assert cfg.train.schedule.name == "reduce_on_plateau"


def test_fit_lr_sequence_equals_replaying_val_loss_through_the_scheduler() -> None:
    data = sg.data.load("digits")
    model = sg.mlp(data.input_shape, (16,), num_outputs=10, seed=0)
    history = sg.fit(model, data, epochs=6, optimizer={"name": "sgd", "learning_rate": 1.0},
                     schedule={"name": "plateau", "patience": 0, "factor": 0.5},
                     verbose=0, seed=0, monitor=False)
    oracle = PerformanceScheduler(patience=0, factor=0.5)
    lr, expected = 1.0, []
    for val_loss in history["val_loss"]:
        expected.append(lr)
        lr = oracle.update(val_loss, lr)
    assert history["lr"] == pytest.approx(expected)
    assert min(history["lr"]) < 1.0  # the scenario does reduce the rate at least once
