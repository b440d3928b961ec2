"""Learning-rate schedules as pure functions of the global step.

A schedule is any ``Callable[[int], float]``: ``lr = schedule(step)``. The trainer owns the step
counter and writes ``group["lr"]`` itself (optax schedules, nanoGPT's ``get_lr(it)``), so there
are no hidden counters and the result never depends on call order. The factories below return
frozen dataclasses: they are picklable, compare by value and print their parameters.

==================  ===================================================  =====================
name                formula (``t`` = step)                               reference
==================  ===================================================  =====================
constant            ``lr``
power               ``lr0 / (1 + t/s)**c``                               Géron, HOML ch. 11
exponential         ``lr0 * decay_rate**(t/s)``                          Keras ExponentialDecay
piecewise_constant  ``values[i]`` for ``boundaries[i-1] < t <= b[i]``    Keras PiecewiseConstant
cosine              warm-up, then ``lr0 ((1-alpha)(1+cos(pi t/T))/2 +    Keras CosineDecay;
                    alpha)``                                             Loshchilov & Hutter
one_cycle           linear up, linear down, linear annihilation          Smith 2018
warmup              linear warm-up, then constant/linear/cosine decay    Xiong et al. 2020
==================  ===================================================  =====================

:func:`make_schedule` builds any of them by name from a config, filling the learning rate and
the run length in.

Example:
    >>> sched = make_schedule("exponential", learning_rate=0.1, s=100)
    >>> sched
    Exponential(lr0=0.1, s=100.0, decay_rate=0.1)
    >>> [round(sched(t), 4) for t in (0, 100, 200)]
    [0.1, 0.01, 0.001]
"""

from __future__ import annotations

import bisect
import difflib
import inspect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from steadygrad._registry import Registry
from steadygrad.errors import ConfigError
from steadygrad.optim._checks import number as _num
from steadygrad.optim._checks import set_frozen as _set
from steadygrad.optim._checks import steps as _steps
from steadygrad.optim.one_cycle import OneCycle, one_cycle
from steadygrad.optim.plateau import PerformanceScheduler
from steadygrad.optim.warmup import Warmup, half_cosine, warmup

__all__ = [
    "SCHEDULES",
    "Constant",
    "Cosine",
    "Exponential",
    "OneCycle",
    "PiecewiseConstant",
    "Power",
    "Schedule",
    "Warmup",
    "constant",
    "cosine",
    "exponential",
    "make_schedule",
    "one_cycle",
    "piecewise_constant",
    "power",
    "warmup",
]

Schedule = Callable[[int], float]
"""A learning-rate schedule: global step (0-based) -> learning rate."""



# ---------------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class Constant:
    """``lr(t) = lr``. Build with :func:`constant`.

    >>> Constant(0.1)(7)
    0.1
    """

    lr: float

    def __post_init__(self) -> None:
        _set(self, "lr", _num("lr", self.lr, low=0.0))

    def __call__(self, step: int) -> float:
        return self.lr


@dataclass(frozen=True)
class Power:
    """``lr(t) = lr0 / (1 + t/s)**c``. Build with :func:`power`.

    >>> Power(0.1, s=10)(10)
    0.05
    """

    lr0: float
    s: float
    c: float = 1.0

    def __post_init__(self) -> None:
        _set(self, "lr0", _num("lr0", self.lr0, low=0.0))
        _set(self, "s", _num("s", self.s, low=0.0))
        _set(self, "c", _num("c", self.c, low=0.0))

    def __call__(self, step: int) -> float:
        return self.lr0 / (1.0 + step / self.s) ** self.c


@dataclass(frozen=True)
class Exponential:
    """``lr(t) = lr0 * decay_rate**(t/s)``. Build with :func:`exponential`.

    >>> round(Exponential(0.1, s=10)(20), 6)
    0.001
    """

    lr0: float
    s: float
    decay_rate: float = 0.1

    def __post_init__(self) -> None:
        _set(self, "lr0", _num("lr0", self.lr0, low=0.0))
        _set(self, "s", _num("s", self.s, low=0.0))
        _set(self, "decay_rate", _num("decay_rate", self.decay_rate, low=0.0))

    def __call__(self, step: int) -> float:
        return self.lr0 * self.decay_rate ** (step / self.s)


@dataclass(frozen=True)
class PiecewiseConstant:
    """``values[i]`` for ``boundaries[i-1] < t <= boundaries[i]``. Build with
    :func:`piecewise_constant`.

    >>> PiecewiseConstant((5,), (0.1, 0.01))(6)
    0.01
    """

    boundaries: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if isinstance(self.boundaries, (str, bytes)) or not isinstance(self.boundaries, Sequence):
            raise ConfigError("boundaries", self.boundaries, "a list of increasing steps")
        if isinstance(self.values, (str, bytes)) or not isinstance(self.values, Sequence):
            raise ConfigError("values", self.values, "a list of learning rates")
        bounds = tuple(_num(f"boundaries[{i}]", b, low=0.0, low_open=False)
                       for i, b in enumerate(self.boundaries))
        values = tuple(_num(f"values[{i}]", v, low=0.0) for i, v in enumerate(self.values))
        if len(values) != len(bounds) + 1:
            raise ConfigError(
                "values", list(values), f"{len(bounds) + 1} values (one more than boundaries)",
                hint=f"boundaries has {len(bounds)} entries",
            )
        if any(b >= a for b, a in itertools.pairwise(bounds)):
            raise ConfigError("boundaries", list(bounds), "strictly increasing steps")
        _set(self, "boundaries", bounds)
        _set(self, "values", values)

    def __call__(self, step: int) -> float:
        # bisect_left counts the boundaries strictly below step: Keras's "step <= boundary".
        return self.values[bisect.bisect_left(self.boundaries, step)]


@dataclass(frozen=True)
class Cosine:
    """Keras ``CosineDecay`` with optional linear warm-up. Build with :func:`cosine`.

    >>> round(Cosine(0.1, decay_steps=10)(5), 4)
    0.05
    """

    lr0: float
    decay_steps: int
    alpha: float = 0.0
    warmup_steps: int = 0
    warmup_target: float | None = None

    def __post_init__(self) -> None:
        _set(self, "lr0", _num("lr0", self.lr0, low=0.0, low_open=False))
        _set(self, "decay_steps", _steps("decay_steps", self.decay_steps))
        _set(self, "alpha", _num("alpha", self.alpha, low=0.0, low_open=False, high=1.0,
                                 high_open=False))
        _set(self, "warmup_steps", _steps("warmup_steps", self.warmup_steps, minimum=0))
        if self.warmup_target is None:
            if self.warmup_steps:
                raise ConfigError(
                    "warmup_steps", self.warmup_steps, "0 when warmup_target is None",
                    hint="set warmup_target (the peak rate; lr0 is where the warm-up starts)",
                )
            if self.lr0 == 0:
                raise ConfigError("lr0", 0.0, "a number > 0 without warm-up")
        else:
            _set(self, "warmup_target", _num("warmup_target", self.warmup_target, low=0.0))
            if self.warmup_steps == 0:
                raise ConfigError("warmup_steps", 0, "an integer >= 1 with warmup_target set")

    def __call__(self, step: int) -> float:
        peak = self.lr0 if self.warmup_target is None else self.warmup_target
        if step < self.warmup_steps:
            return self.lr0 + (peak - self.lr0) * step / self.warmup_steps
        done = min(step - self.warmup_steps, self.decay_steps) / self.decay_steps
        return peak * ((1.0 - self.alpha) * half_cosine(done) + self.alpha)


# ---------------------------------------------------------------------------- factories
SCHEDULES: Registry[Callable[..., Schedule]] = Registry("schedule")


def constant(lr: float) -> Constant:
    """A constant learning rate.

    Args:
        lr: the learning rate (> 0).

    Example:
        >>> constant(0.01)(12345)
        0.01
    """
    return Constant(lr)


def power(lr0: float, s: float, c: float = 1.0) -> Power:
    """Power scheduling: ``lr0 / (1 + step/s)**c``; halves after ``s`` steps when ``c = 1``.

    Géron, *Hands-On Machine Learning*, ch. 11 (Keras ``InverseTimeDecay`` is ``c = 1``).

    Args:
        lr0: initial learning rate (> 0).
        s: steps scale (> 0).
        c: power (> 0).

    Example:
        >>> sched = power(0.1, s=10)
        >>> [round(sched(t), 4) for t in (0, 10, 30)]
        [0.1, 0.05, 0.025]
    """
    return Power(lr0, s, c)


def exponential(lr0: float, s: float, decay_rate: float = 0.1) -> Exponential:
    """Exponential scheduling: ``lr0 * decay_rate**(step/s)`` (Keras ``ExponentialDecay``).

    Args:
        lr0: initial learning rate (> 0).
        s: steps over which the rate is multiplied by ``decay_rate`` (> 0).
        decay_rate: factor per ``s`` steps (> 0; < 1 decays).

    Example:
        >>> sched = exponential(0.1, s=10, decay_rate=0.5)
        >>> [round(sched(t), 4) for t in (0, 10, 20)]
        [0.1, 0.05, 0.025]
    """
    return Exponential(lr0, s, decay_rate)


def piecewise_constant(boundaries: Sequence[float], values: Sequence[float]) -> PiecewiseConstant:
    """Piecewise constant rates with Keras ``PiecewiseConstantDecay`` semantics.

    ``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after ``boundaries[-1]``.

    Args:
        boundaries: strictly increasing steps.
        values: absolute learning rates, one more than ``boundaries``.

    Example:
        >>> sched = piecewise_constant([10, 20], [0.1, 0.01, 0.001])
        >>> [sched(t) for t in (10, 11, 20, 21)]
        [0.1, 0.01, 0.01, 0.001]
    """
    return PiecewiseConstant(tuple(boundaries), tuple(values))


def cosine(
    lr0: float,
    decay_steps: int,
    alpha: float = 0.0,
    warmup_steps: int = 0,
    warmup_target: float | None = None,
) -> Cosine:
    """Cosine decay with optional linear warm-up (Keras ``CosineDecay`` semantics).

    Without warm-up: ``lr0 * ((1 - alpha) * (1 + cos(pi * min(t, T)/T)) / 2 + alpha)`` with
    ``T = decay_steps`` (Loshchilov & Hutter 2017, SGDR, arXiv:1608.03983, without restarts).
    With ``warmup_target``: linear from ``lr0`` to ``warmup_target`` over ``warmup_steps``, then
    the cosine from ``warmup_target`` down to ``alpha * warmup_target``.

    Args:
        lr0: initial learning rate (the warm-up start when ``warmup_target`` is set).
        decay_steps: length of the cosine phase (>= 1).
        alpha: final rate as a fraction of the peak, in [0, 1].
        warmup_steps: length of the warm-up (needs ``warmup_target``; Keras ignores it silently).
        warmup_target: peak rate reached at the end of the warm-up.

    Example:
        >>> sched = cosine(0.0, decay_steps=100, warmup_steps=10, warmup_target=1.0)
        >>> [round(sched(t), 3) for t in (0, 5, 10, 60, 110, 500)]
        [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """
    return Cosine(lr0, decay_steps, alpha, warmup_steps, warmup_target)




SCHEDULES.add("constant", constant)
SCHEDULES.add("power", power, "power_decay")
SCHEDULES.add("exponential", exponential, "exponential_decay")
SCHEDULES.add("piecewise_constant", piecewise_constant, "piecewise", "piecewise_constant_decay")
SCHEDULES.add("cosine", cosine, "cosine_decay")
SCHEDULES.add("one_cycle", one_cycle, "1cycle", "onecycle")
SCHEDULES.add("warmup", warmup, "linear_warmup")
# Performance scheduling is the one stateful schedule: the trainer feeds it the monitored
# metric once per epoch (``update(metric, lr)``) instead of calling it with the step.
SCHEDULES.add("reduce_on_plateau", PerformanceScheduler, "performance", "plateau")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- by name
def _need_total(name: str, total_steps: int | None, instead: str | None = None) -> int:
    if total_steps is None:
        hint = "pass total_steps" + (f" or {instead}" if instead else "")
        raise ConfigError(f"schedule.{name}.total_steps", None, "the number of training steps",
                          hint=hint)
    return _steps(f"schedule.{name}.total_steps", total_steps)


def make_schedule(
    identifier: str | Schedule,
    *,
    learning_rate: float,
    total_steps: int | None = None,
    **kw: Any,
) -> Schedule:
    """Build a schedule from a config: a registered name, or a callable that passes through.

    ``learning_rate`` fills ``lr``/``lr0``/``max_lr``; ``total_steps`` fills ``total_steps`` of
    ``one_cycle`` and ``warmup``, the default ``decay_steps = total_steps - warmup_steps`` of
    ``cosine`` and the default ``s = total_steps`` of ``power``/``exponential``.
    ``piecewise_constant`` takes absolute ``values`` (Keras), so ``learning_rate`` is not used
    there; nor for a callable.

    Args:
        identifier: a name in ``SCHEDULES`` (``constant``, ``power``, ``exponential``,
            ``piecewise_constant``, ``cosine``, ``one_cycle``, ``warmup``,
            ``reduce_on_plateau`` — the last returns a :class:`PerformanceScheduler`, which
            the trainer updates once per epoch from the monitored metric) or a ``step -> lr``
            callable.
        learning_rate: the base (peak for ``one_cycle`` and ``warmup``) learning rate.
        total_steps: number of optimizer steps in the run, when known.
        **kw: the factory's other arguments (``decay_rate``, ``alpha``, ``momentum``, ...).

    Raises:
        ConfigError: unknown name or argument (with a close match), missing or invalid value.

    Example:
        >>> make_schedule("1cycle", learning_rate=0.5, total_steps=1000)(450)
        0.5
        >>> make_schedule("cosine", learning_rate=0.1, total_steps=100, alpah=0.1)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: schedule.cosine: got 'alpah'; ... did you mean 'alpha'?
    """
    if not isinstance(identifier, str):
        if not callable(identifier):
            raise ConfigError("schedule", identifier, "a schedule name or a step -> lr callable")
        if kw:
            raise ConfigError("schedule", sorted(kw), "no extra arguments with a callable")
        return identifier
    name = SCHEDULES.canonical(identifier)
    factory = SCHEDULES.get(name)
    signature = inspect.signature(factory).parameters
    allowed = sorted(set(signature) - {"lr", "lr0", "max_lr", "total_steps"})
    for key in kw:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            raise ConfigError(f"schedule.{name}", key, f"one of {', '.join(allowed)}",
                              hint=f"did you mean {close[0]!r}?" if close else None)
    for key in ("boundaries", "values"):
        if key in signature and key not in kw:
            raise ConfigError(f"schedule.{name}.{key}", None, "a list",
                              hint="piecewise_constant needs boundaries and values")
    if name == "constant":
        return constant(learning_rate)
    if name == "reduce_on_plateau":
        return PerformanceScheduler(**kw)  # type: ignore[return-value]  # stateful, per epoch
    if name == "piecewise_constant":
        return piecewise_constant(**kw)
    if name in ("power", "exponential"):
        if "s" not in kw:
            kw["s"] = _need_total(name, total_steps, "s")
        return factory(learning_rate, **kw)
    if name == "cosine":
        if "decay_steps" not in kw:
            warmup = _steps("schedule.cosine.warmup_steps", kw.get("warmup_steps", 0), minimum=0)
            total = _need_total(name, total_steps, "decay_steps")
            if warmup >= total:
                raise ConfigError(
                    "schedule.cosine.warmup_steps", warmup,
                    f"fewer than the run's {total} steps (decay_steps defaults to total steps "
                    "minus warmup_steps)",
                    hint="lower warmup_steps, train more epochs or set decay_steps")
            kw["decay_steps"] = total - warmup
        return cosine(learning_rate, **kw)
    if name == "warmup":
        return factory(learning_rate, _need_total(name, total_steps), **kw)
    return one_cycle(learning_rate, _need_total(name, total_steps), **kw)
