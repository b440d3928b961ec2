"""Performance scheduling: reduce the learning rate when a metric stops improving.

Keras ``ReduceLROnPlateau`` semantics (``keras/src/callbacks/reduce_lr_on_plateau.py``), once
per epoch:

1. if in cooldown: ``cooldown_counter -= 1`` and ``wait = 0``;
2. if ``metric < best - min_delta`` (mode ``"min"``; ``> best + min_delta`` for ``"max"``):
   ``best = metric``, ``wait = 0``;
3. else, if not in cooldown: ``wait += 1``; when ``wait >= patience`` and ``lr > min_lr``:
   ``lr = max(lr * factor, min_lr)``, ``cooldown_counter = cooldown``, ``wait = 0``.

Note that the cooldown is decremented at the *start* of an epoch, so ``cooldown=1`` has no
effect and ``cooldown=c`` skips ``c - 1`` epochs (faithful to Keras). A NaN metric is never an
improvement (Keras's ``np.less`` is False), so it counts towards
``patience``. Our defaults (``factor=0.5``, ``patience=5``) differ from Keras's (0.1, 10).

Differences from ``torch.optim.lr_scheduler.ReduceLROnPlateau``: torch reduces after
``patience + 1`` bad epochs (``num_bad_epochs > patience``) where Keras reduces after
``patience`` (``wait >= patience``); torch's default threshold is relative (``threshold_mode=
"rel"``) where ``min_delta`` is absolute (torch ``"abs"``); torch counts a bad epoch *before*
applying the cooldown, Keras after; torch skips reductions smaller than ``eps=1e-8``. With
``cooldown=0``, torch ``patience=p - 1, threshold=min_delta, threshold_mode="abs", eps=0``
gives the same learning rates as ``PerformanceScheduler(patience=p)``.

Example:
    >>> sched = PerformanceScheduler(factor=0.5, patience=2)
    >>> lr = 0.1
    >>> for loss in [1.0, 0.9, 0.95, 0.92, 0.91, 0.93]:
    ...     lr = sched.update(loss, lr)
    ...     print(round(lr, 4), end=" ")
    0.1 0.1 0.1 0.05 0.05 0.025
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from steadygrad.errors import ConfigError

__all__ = ["PerformanceScheduler", "PlateauState", "plateau_step"]


@dataclass(frozen=True)
class PlateauState:
    """The whole state of a :class:`PerformanceScheduler` (immutable).

    Args:
        best: best metric so far (None before the first update).
        wait: epochs without improvement since the last improvement or reduction.
        cooldown_counter: epochs of cooldown left.

    >>> PlateauState()
    PlateauState(best=None, wait=0, cooldown_counter=0)
    """

    best: float | None = None
    wait: int = 0
    cooldown_counter: int = 0


def plateau_step(
    state: PlateauState,
    metric: float,
    lr: float,
    *,
    factor: float,
    patience: int,
    min_delta: float,
    cooldown: int,
    min_lr: float,
    mode: str,
) -> tuple[PlateauState, float]:
    """One epoch of Keras ``ReduceLROnPlateau`` as a pure function.

    Args:
        state: the state before this epoch.
        metric: this epoch's value of the monitored metric.
        lr: the current learning rate.
        factor, patience, min_delta, cooldown, min_lr, mode: see :class:`PerformanceScheduler`.

    Returns:
        ``(new_state, new_lr)``.

    Example:
        >>> kw = dict(factor=0.1, patience=1, min_delta=0.0, cooldown=0, min_lr=0.0, mode="min")
        >>> state, lr = plateau_step(PlateauState(), 1.0, 0.1, **kw)
        >>> state, round(lr, 4)
        (PlateauState(best=1.0, wait=0, cooldown_counter=0), 0.1)
        >>> state, lr = plateau_step(state, 2.0, lr, **kw)
        >>> state, round(lr, 4)
        (PlateauState(best=1.0, wait=0, cooldown_counter=0), 0.01)
    """
    best, wait, cooldown_counter = state.best, state.wait, state.cooldown_counter
    if cooldown_counter > 0:
        cooldown_counter -= 1
        wait = 0
    if mode == "min":
        improved = metric < (math.inf if best is None else best) - min_delta
    else:
        improved = metric > (-math.inf if best is None else best) + min_delta
    if improved:
        best, wait = metric, 0
    elif cooldown_counter == 0:
        wait += 1
        if wait >= patience and lr > min_lr:
            lr = max(lr * factor, min_lr)
            cooldown_counter, wait = cooldown, 0
    return PlateauState(best, wait, cooldown_counter), lr


def _number(name: str, value: Any, *, low: float, high: float | None = None) -> float:
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and value >= low and (high is None or value < high)
    if not ok:
        bound = f">= {low:g}" + ("" if high is None else f" and < {high:g}")
        raise ConfigError(name, value, f"a finite number {bound}")
    return float(value)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ConfigError(name, value, "an integer >= 0")
    return int(value)


class PerformanceScheduler:
    """Reduce the learning rate on a plateau of a metric (Keras ``ReduceLROnPlateau``).

    The one stateful schedule: the trainer calls :meth:`update` once per epoch with the
    monitored metric and the current learning rate, and sets the returned rate.

    Args:
        factor: multiply the rate by this on a plateau, in (0, 1).
        patience: epochs without improvement before reducing (>= 0).
        min_delta: absolute improvement needed to count as better (>= 0).
        cooldown: epochs after a reduction during which bad epochs are not counted (>= 0).
        min_lr: the rate is never reduced below this (>= 0).
        mode: ``"min"`` (loss-like metric) or ``"max"`` (accuracy-like metric).

    Raises:
        ConfigError: any argument out of range.

    Example:
        >>> sched = PerformanceScheduler(patience=1, cooldown=2, factor=0.1)
        >>> lr = 1.0
        >>> for metric in (1.0, 1.0, 1.0, 1.0):
        ...     lr = sched.update(metric, lr)
        ...     print(round(lr, 4), sched.state.cooldown_counter, end=" | ")
        1.0 0 | 0.1 2 | 0.1 1 | 0.01 2 |
    """

    def __init__(
        self,
        factor: float = 0.5,
        patience: int = 5,
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        mode: str = "min",
    ) -> None:
        self.factor = _number("factor", factor, low=0.0, high=1.0)
        if self.factor == 0.0:
            raise ConfigError("factor", factor, "a number in (0, 1)")
        self.patience = _count("patience", patience)
        self.min_delta = _number("min_delta", min_delta, low=0.0)
        self.cooldown = _count("cooldown", cooldown)
        self.min_lr = _number("min_lr", min_lr, low=0.0)
        if mode not in ("min", "max"):
            raise ConfigError("mode", mode, "'min' or 'max'",
                              hint="'min' for a loss, 'max' for an accuracy")
        self.mode = mode
        self.state = PlateauState()

    def update(self, metric: float, lr: float) -> float:
        """Record this epoch's ``metric`` and return the learning rate to use next.

        Args:
            metric: the monitored value (a float; NaN counts as no improvement).
            lr: the current learning rate (> 0).

        Returns:
            The new learning rate (``lr`` itself unless the metric has plateaued).
        """
        if isinstance(metric, bool) or not isinstance(metric, numbers.Real):
            raise ConfigError("metric", metric, "a float (call .item() on a tensor first)")
        lr = _number("lr", lr, low=0.0)
        self.state, new_lr = plateau_step(
            self.state, float(metric), lr, factor=self.factor, patience=self.patience,
            min_delta=self.min_delta, cooldown=self.cooldown, min_lr=self.min_lr, mode=self.mode,
        )
        return new_lr

    def reset(self) -> None:
        """Forget the best metric and the counters (Keras does this at ``on_train_begin``).

        >>> sched = PerformanceScheduler()
        >>> _ = sched.update(1.0, 0.1); sched.reset(); sched.state.best is None
        True
        """
        self.state = PlateauState()

    def state_dict(self) -> dict[str, Any]:
        """The counters and best metric as a JSON-able dict (floats, ints, None).

        >>> import json
        >>> json.dumps(PerformanceScheduler().state_dict())
        '{"best": null, "wait": 0, "cooldown_counter": 0}'
        """
        best = self.state.best
        return {
            "best": best if best is None or math.isfinite(best) else repr(best),
            "wait": self.state.wait,
            "cooldown_counter": self.state.cooldown_counter,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        Raises:
            ConfigError: missing keys or wrong types.

        >>> a = PerformanceScheduler(patience=3)
        >>> _ = a.update(1.0, 0.1); _ = a.update(2.0, 0.1)
        >>> b = PerformanceScheduler(patience=3)
        >>> b.load_state_dict(a.state_dict()); b.state == a.state
        True
        """
        if not isinstance(state, dict) or set(state) != {"best", "wait", "cooldown_counter"}:
            raise ConfigError("state", state, "a dict with keys best, wait, cooldown_counter")
        best = state["best"]
        if best is not None:
            if isinstance(best, bool) or not isinstance(best, (numbers.Real, str)):
                raise ConfigError("state.best", best, "a float or None")
            best = float(best)
        self.state = PlateauState(
            best, _count("state.wait", state["wait"]),
            _count("state.cooldown_counter", state["cooldown_counter"]),
        )

    def __repr__(self) -> str:
        return (
            f"PerformanceScheduler(factor={self.factor}, patience={self.patience}, "
            f"min_delta={self.min_delta}, cooldown={self.cooldown}, min_lr={self.min_lr}, "
            f"mode={self.mode!r})"
        )
