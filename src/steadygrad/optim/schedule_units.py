"""``schedule_unit``: whether a user's ``lr`` callable takes the step or the epoch.

steadygrad's schedules are functions of the global step (``step -> lr``), and that is the
default unit for a callable passed to ``fit(schedule=...)``. The chapter's Keras
``LearningRateScheduler`` functions take the *epoch* instead (``def exponential_decay(epoch)``);
fed the step, such a function decays ``steps_per_epoch`` times too fast. ``schedule_unit="epoch"``
wraps it so every step of epoch ``e`` runs at ``fn(e)``, as Keras sets the rate at each
epoch's start. A callable whose first parameter is named ``epoch`` with no unit given is
refused rather than silently fed the step.

Example:
    >>> sched = per_step(lambda epoch: 0.1 * 0.5**epoch, "epoch", steps_per_epoch=10)
    >>> [sched(t) for t in (0, 9, 10, 25)]
    [0.1, 0.1, 0.05, 0.025]
    >>> per_step(lambda epoch: 0.1, None, steps_per_epoch=10)
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: schedule_unit: got None; expected 'epoch' or 'step' ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from steadygrad.errors import ConfigError

__all__ = ["DEFAULT_UNIT", "SCHEDULE_UNITS", "EpochSchedule", "check_run_length", "per_step"]

SCHEDULE_UNITS = ("step", "epoch")
"""The units a callable schedule may take."""

DEFAULT_UNIT = "step"
"""A callable takes the global step (0-based) unless ``schedule_unit="epoch"`` is given."""

_EPOCH_NAMES = ("epoch", "epochs", "epoch_index")


@dataclass(frozen=True)
class EpochSchedule:
    """``step -> fn(step // steps_per_epoch)``: an ``epoch -> lr`` function as a schedule.

    >>> EpochSchedule(lambda e: 1.0 / (e + 1), 4)(8)
    0.3333333333333333
    """

    fn: Callable[[int], float]
    steps_per_epoch: int

    def __call__(self, step: int) -> float:
        return float(self.fn(step // self.steps_per_epoch))


def _first_parameter(fn: Callable[..., object]) -> str | None:
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return None
    return params[0] if params else None


def per_step(schedule: Callable[[int], float], unit: str | None,
             steps_per_epoch: int) -> Callable[[int], float]:
    """The ``step -> lr`` schedule for a user callable given in ``unit``.

    Args:
        schedule: the user's callable.
        unit: ``"step"`` (the callable takes the global step), ``"epoch"`` (it takes the
            0-based epoch) or None (``"step"``, unless the first parameter is named
            ``epoch``: then the call is refused as ambiguous).
        steps_per_epoch: optimizer steps per epoch of the run.

    Raises:
        ConfigError: an unknown unit, or an ``epoch``-named callable without a unit.

    Example:
        >>> per_step(lambda t: 0.1, "step", 10)(3)
        0.1
    """
    if unit is None:
        first = _first_parameter(schedule)
        if first in _EPOCH_NAMES:
            raise ConfigError(
                "schedule_unit", None, "'epoch' or 'step' for a callable whose parameter is "
                f"named {first!r}",
                hint="pass schedule_unit='epoch' (Keras LearningRateScheduler semantics) or "
                "'step' (steadygrad's default: the global step)",
            )
        unit = DEFAULT_UNIT
    if unit not in SCHEDULE_UNITS:
        raise ConfigError("schedule_unit", unit, "'step' or 'epoch'",
                          hint="'epoch' feeds the callable the 0-based epoch")
    if unit == "step":
        return schedule
    return EpochSchedule(schedule, max(1, int(steps_per_epoch)))


def check_run_length(schedule: Any, *, n_train: int, batch_size: int, epochs: int,
                     learning_rate: float = 0.01) -> None:
    """Build a named schedule for the run's length to fail *before* any run directory exists.

    A schedule whose defaults depend on the run length (cosine's ``decay_steps``, 1cycle,
    ``s`` of power/exponential) is checked against ``ceil(n_train / batch_size) * epochs``
    steps, the count ``fit`` uses.

    Raises:
        ConfigError: the schedule does not fit the run (e.g. a warm-up longer than the run).

    Example:
        >>> check_run_length({"name": "cosine", "warmup_steps": 100}, n_train=64,
        ...                  batch_size=32, epochs=1)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: schedule.cosine.warmup_steps: got 100; expected fewer ...
    """
    from steadygrad.optim.schedules import make_schedule

    if schedule is None or callable(schedule):
        return
    total = -(-int(n_train) // int(batch_size)) * int(epochs)
    if isinstance(schedule, str):
        make_schedule(schedule, learning_rate=learning_rate, total_steps=total)
    elif isinstance(schedule, Mapping) and "name" in schedule:
        spec = {k: v for k, v in schedule.items() if k not in ("name", "learning_rate")}
        make_schedule(schedule["name"], learning_rate=learning_rate, total_steps=total, **spec)
