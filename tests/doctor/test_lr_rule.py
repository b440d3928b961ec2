"""The doctor's ``lr_find`` remedy uses the library's one range-test rule (issue 18, item 4).

The doctor's rate must be :func:`steadygrad.optim.lr_finder.suggest_lr` on the very curve
the range test recorded (the rule ``steadygrad lr-find`` prints), and on a flat curve the
doctor gives no rate with the same refusal as the CLI.
"""

from __future__ import annotations

from typing import Any

import pytest

from steadygrad.doctor.candidates import _range_test, _resolve_lr
from steadygrad.doctor.trials import DataCache
from steadygrad.experiments.config import config_from_dict, config_to_dict
from steadygrad.optim.lr_finder import (
    NoSuggestionError,
    centered_average,
    suggest_lr,
    suggest_lrs,
)

KEY = "train.optimizer.learning_rate"


def _table(**model: Any) -> dict[str, Any]:
    return config_to_dict(config_from_dict({
        "data": {"name": "digits", "n_train": 300},
        "model": {"hidden": [16], "activation": "relu", **model},
        "train": {"optimizer": {"name": "sgd"}}}))


def _recorded(found: Any) -> tuple[list[float], list[float]]:
    """The curve lr_find reads: its diverging last point dropped when it stopped early."""
    end = len(found.lrs) - 1 if found.stopped_early and len(found.lrs) > 2 else len(found.lrs)
    return found.lrs[:end], found.losses[:end]


def test_doctor_rate_is_suggest_lr_on_the_same_range_test_curve() -> None:
    cache = DataCache()
    table = _table()
    lr, note = _resolve_lr(table, KEY, 0, cache)
    found = _range_test(table, 0, cache)  # the same seeded test, run again
    lrs, losses = _recorded(found)
    assert lr is not None
    assert lr == suggest_lr(lrs, losses) == found.suggestion
    # not the former doctor rule (lowest smoothed loss / 10): the two differ on this curve
    div10 = suggest_lrs(lrs, centered_average(losses, max(3, len(lrs) // 10) | 1))
    assert div10["min_loss_div10"] != lr
    assert "lr-find" in note and f"{lr:.3g}" in note


def test_doctor_gives_no_rate_on_a_flat_curve_with_lr_finds_refusal() -> None:
    # zero weights + ReLU: every hidden unit outputs 0, only the output bias learns, and on
    # balanced digits the loss stays at ln 10 whatever the rate
    cache = DataCache()
    table = _table(kernel_initializer="zeros")
    found = _range_test(table, 0, cache)
    lrs, losses = _recorded(found)
    smooth = centered_average(losses, max(3, len(losses) // 10) | 1)
    assert min(smooth) > 0.95 * smooth[0]  # the curve really is flat
    with pytest.raises(NoSuggestionError) as refused:
        suggest_lr(lrs, losses)
    lr, note = _resolve_lr(table, KEY, 0, cache)
    assert lr is None
    assert str(refused.value) in note
