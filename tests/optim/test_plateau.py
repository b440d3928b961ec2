"""PerformanceScheduler: Keras ReduceLROnPlateau semantics, torch where they coincide, state."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from steadygrad.errors import ConfigError
from steadygrad.optim.plateau import PerformanceScheduler, PlateauState


class KerasReduceLROnPlateau:
    """keras/src/callbacks/reduce_lr_on_plateau.py, transcribed (no model, lr passed in)."""

    def __init__(self, factor, patience, min_delta, cooldown, min_lr, mode):
        self.factor, self.patience, self.min_delta = factor, patience, min_delta
        self.cooldown, self.min_lr = cooldown, min_lr
        if mode == "min":
            self.monitor_op = lambda a, b: a < b - self.min_delta
            self.best = math.inf
        else:
            self.monitor_op = lambda a, b: a > b + self.min_delta
            self.best = -math.inf
        self.cooldown_counter = 0
        self.wait = 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, current: float, lr: float) -> float:
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and lr > self.min_lr:
                lr = max(lr * self.factor, self.min_lr)
                self.cooldown_counter = self.cooldown
                self.wait = 0
        return lr


def _replay(sched: PerformanceScheduler, metrics: list[float], lr: float) -> list[float]:
    out = []
    for m in metrics:
        lr = sched.update(m, lr)
        out.append(lr)
    return out


def test_hand_computed_sequence() -> None:
    # patience 2, min_delta 0.01, cooldown 2 (Keras decrements it first: 1 epoch skipped).
    sched = PerformanceScheduler(factor=0.5, patience=2, min_delta=0.01, cooldown=2, min_lr=0.02)
    metrics = [1.0, 0.9, 0.895, 0.89, 0.95, 0.96, 0.97, 0.85, 0.86, 0.87, 0.88, 0.9, 0.9]
    expected = [
        0.1,    # best 1.0
        0.1,    # 0.9 < 1.0 - 0.01: best 0.9
        0.1,    # 0.895 not < 0.89: wait 1
        0.05,   # 0.89 not < 0.89: wait 2 -> reduce, cooldown 2
        0.05,   # cooldown 2 -> 1, not counted
        0.05,   # cooldown 1 -> 0, wait 1
        0.025,  # wait 2 -> reduce, cooldown 2
        0.025,  # 0.85 improves: best 0.85 (cooldown 1)
        0.025,  # cooldown 0, wait 1
        0.02,   # wait 2 -> 0.0125 floored at min_lr 0.02
        0.02,   # cooldown 1
        0.02,   # wait 1
        0.02,   # wait 2, but lr == min_lr: no reduction
    ]
    assert _replay(sched, metrics, 0.1) == pytest.approx(expected)


def test_mode_max_and_nan_counts_as_no_improvement() -> None:
    sched = PerformanceScheduler(factor=0.1, patience=1, min_delta=0.0, mode="max")
    assert _replay(sched, [0.5, 0.6, 0.6, float("nan"), 0.7], 1.0) == pytest.approx(
        [1.0, 1.0, 0.1, 0.01, 0.01]
    )
    assert sched.state.best == 0.7


metric_lists = st.lists(
    st.one_of(st.floats(0.0, 2.0), st.sampled_from([1.0, 0.5])), min_size=1, max_size=40
)


@settings(max_examples=80, deadline=None)
@given(
    metric_lists,
    st.sampled_from([0.1, 0.5, 0.9]),
    st.integers(0, 4),
    st.sampled_from([0.0, 1e-4, 0.05]),
    st.integers(0, 3),
    st.sampled_from([0.0, 1e-3]),
    st.sampled_from(["min", "max"]),
)
def test_matches_transcribed_keras(metrics, factor, patience, min_delta, cooldown, min_lr, mode):
    ours = PerformanceScheduler(factor, patience, min_delta, cooldown, min_lr, mode)
    keras = KerasReduceLROnPlateau(factor, patience, min_delta, cooldown, min_lr, mode)
    lr_ours = lr_keras = 0.1
    for m in metrics:
        lr_ours, lr_keras = ours.update(m, lr_ours), keras.on_epoch_end(m, lr_keras)
        assert lr_ours == lr_keras
        assert ours.state.wait == keras.wait
        assert ours.state.cooldown_counter == keras.cooldown_counter


@settings(max_examples=60, deadline=None)
@given(metric_lists, st.integers(1, 4), st.sampled_from([0.0, 0.05]), st.sampled_from([0.0, 1e-3]),
       st.sampled_from(["min", "max"]))
def test_matches_torch_reduce_on_plateau_where_semantics_coincide(
    metrics, patience, min_delta, min_lr, mode
):
    # No cooldown; torch counts patience + 1 bad epochs; absolute threshold; no eps skip.
    ours = PerformanceScheduler(0.5, patience, min_delta, 0, min_lr, mode)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode=mode, factor=0.5, patience=patience - 1, threshold=min_delta,
        threshold_mode="abs", cooldown=0, min_lr=min_lr, eps=0.0,
    )
    lr = 0.1
    for m in metrics:
        lr = ours.update(m, lr)
        reference.step(m)
        assert lr == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)


def test_state_dict_is_json_and_resumes_exactly() -> None:
    metrics = [1.0, 0.8, 0.9, 0.85, 0.95, 0.7, 0.75, 0.8, 0.9, 0.91]
    full = PerformanceScheduler(patience=2, cooldown=2)
    expected = _replay(full, metrics, 0.1)
    first = PerformanceScheduler(patience=2, cooldown=2)
    lr = _replay(first, metrics[:5], 0.1)[-1]
    saved = json.loads(json.dumps(first.state_dict()))
    resumed = PerformanceScheduler(patience=2, cooldown=2)
    resumed.load_state_dict(saved)
    assert resumed.state == first.state
    assert _replay(resumed, metrics[5:], lr) == expected[5:]


def test_infinite_best_round_trips_through_json() -> None:
    sched = PerformanceScheduler()
    sched.update(-math.inf, 0.1)
    text = json.dumps(sched.state_dict(), allow_nan=False)
    other = PerformanceScheduler()
    other.load_state_dict(json.loads(text))
    assert other.state == PlateauState(best=-math.inf)


def test_reset_forgets_everything() -> None:
    sched = PerformanceScheduler(patience=1)
    _replay(sched, [1.0, 2.0, 2.0], 0.1)
    sched.reset()
    assert sched.state == PlateauState()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"factor": 1.0}, "factor"),
        ({"factor": 0.0}, "factor"),
        ({"factor": float("nan")}, "factor"),
        ({"patience": -1}, "patience"),
        ({"patience": 1.5}, "patience"),
        ({"min_delta": -0.1}, "min_delta"),
        ({"cooldown": -2}, "cooldown"),
        ({"min_lr": -1e-3}, "min_lr"),
        ({"mode": "auto"}, "mode"),
    ],
)
def test_invalid_arguments(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        PerformanceScheduler(**kwargs)


def test_invalid_update_and_state() -> None:
    sched = PerformanceScheduler()
    with pytest.raises(ConfigError, match="metric"):
        sched.update(torch.tensor(1.0), 0.1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="lr"):
        sched.update(1.0, -0.1)
    with pytest.raises(ConfigError, match="state"):
        sched.load_state_dict({"best": 1.0})
    with pytest.raises(ConfigError, match=r"state\.wait"):
        sched.load_state_dict({"best": 1.0, "wait": -1, "cooldown_counter": 0})
    assert sched.state == PlateauState()  # failed calls changed nothing
