"""Small validators shared by the schedule modules (private)."""

from __future__ import annotations

import math
import numbers
from typing import Any

from steadygrad.errors import ConfigError

__all__ = ["number", "set_frozen", "steps"]


def number(
    path: str,
    value: Any,
    *,
    low: float | None = None,
    low_open: bool = True,
    high: float | None = None,
    high_open: bool = True,
) -> float:
    """``value`` as a finite float within the (open or closed) bounds, else ``ConfigError``.

    >>> number("alpha", 1, low=0.0, high=1.0, high_open=False)
    1.0
    >>> number("alpha", 2.0, low=0.0, high=1.0)
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: alpha: got 2.0; expected a finite number > 0 and < 1
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(path, value, "a real number")
    value = float(value)
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        raise ConfigError(path, value, "a finite number " + " and ".join(x for x in (lo, hi) if x))
    return value


def steps(path: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an integer >= ``minimum`` (bools and floats rejected), else ``ConfigError``.

    >>> steps("decay_steps", 10)
    10
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(path, value, f"an integer >= {minimum}")
    return int(value)


def set_frozen(obj: object, name: str, value: Any) -> None:
    """Set a field of a frozen dataclass from its ``__post_init__`` (after validation).

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class A:
    ...     x: float
    >>> a = A(1); set_frozen(a, "x", 2.0); a.x
    2.0
    """
    object.__setattr__(obj, name, value)
