"""Field validators for the experiment configs (private).

A check is ``check(value, path) -> normalized value`` and raises
:class:`~steadygrad.errors.ConfigError` naming ``path``, the received value and what is allowed.

Example:
    >>> positive_float(0.5, "train.optimizer.learning_rate")
    0.5
    >>> positive_float(0, "train.optimizer.learning_rate")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: train.optimizer.learning_rate: got 0;
    expected a finite number > 0
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from steadygrad.errors import ConfigError

__all__ = [
    "FLOAT_MAX",
    "INT_MAX",
    "MAX_HIDDEN_PARAMS",
    "MAX_UNITS",
    "Check",
    "boolean",
    "choice",
    "close_match_hint",
    "fraction_or_count",
    "freeze",
    "int_list",
    "integer",
    "non_negative_float",
    "number",
    "optional",
    "positive_float",
    "positive_int",
    "string",
    "thaw",
    "unknown_key",
]

Check = Callable[[Any, str], Any]

FLOAT_MAX = 3.4028234663852886e38
"""Largest magnitude a config number may have: float32's, since every value ends in a tensor."""
INT_MAX = 2**63 - 1
"""Largest integer a config may hold (seeds and counts go to 64-bit C integers)."""
MAX_UNITS = 1 << 16
"""Widest hidden layer a config may ask for."""
MAX_HIDDEN_PARAMS = 1 << 28
"""Most weights between hidden layers (sum of ``hidden[i] * hidden[i+1]``): 1 GiB of float32."""


def _too_big(value: Any, path: str, expected: str) -> None:
    """Refuse a finite number beyond float32's range (it would become inf in a tensor)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > FLOAT_MAX:
        raise ConfigError(path, value, f"{expected} with |x| <= {FLOAT_MAX:.2g} (float32 range)",
                          hint="use a smaller value")


def close_match_hint(given: str, allowed: Iterable[str]) -> str | None:
    """``"did you mean 'x'?"`` for the closest of ``allowed``, or None.

    >>> close_match_hint("activaton", ["activation", "dropout"])
    "did you mean 'activation'?"
    """
    close = difflib.get_close_matches(str(given), list(allowed), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def unknown_key(path: str, key: Any, allowed: Iterable[str]) -> ConfigError:
    """The error for an unknown key ``key`` in the table at ``path``.

    >>> print(unknown_key("model", "activaton", ["activation", "dropout"]))
    model.activaton: got unknown key 'activaton'; expected one of activation, dropout;
    did you mean 'activation'?
    """
    allowed = sorted(allowed)
    where = f"{path}.{key}" if path else str(key)
    return ConfigError(
        where, _Unknown(str(key)), f"one of {', '.join(allowed)}", close_match_hint(key, allowed)
    )


class _Unknown(str):
    """A key name whose repr reads ``unknown key 'name'`` inside error messages."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"unknown key {str.__repr__(self)}"


def number(value: Any, path: str) -> float:
    """A finite real number (an int is accepted and converted; a bool is not).

    >>> number(3, "x")
    3.0
    >>> number(float("nan"), "x")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: x: got nan; expected a finite number
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(path, value, "a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(path, value, "a finite number")
    _too_big(value, path, "a finite number")
    return float(value)


def positive_float(value: Any, path: str) -> float:
    """A finite number > 0 (see :func:`number`).

    >>> positive_float(2, "model.max_norm")
    2.0
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (
        math.isfinite(value) and value > 0
    ):
        _too_big(value, path, "a finite number > 0")
        return float(value)
    raise ConfigError(path, value, "a finite number > 0")


def non_negative_float(value: Any, path: str) -> float:
    """A finite number >= 0.

    >>> non_negative_float(-0.1, "model.l2")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: model.l2: got -0.1; expected a finite number >= 0
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (
        math.isfinite(value) and value >= 0
    ):
        _too_big(value, path, "a finite number >= 0")
        return float(value)
    raise ConfigError(path, value, "a finite number >= 0")


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    """A check for an int in ``[minimum, maximum]`` (a float such as ``2.0`` is refused).

    >>> integer(1)(0, "train.epochs")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: train.epochs: got 0; expected an integer >= 1
    """
    if minimum is not None and maximum is not None:
        expected = f"an integer in [{minimum}, {maximum}]"
    elif minimum is not None:
        expected = f"an integer >= {minimum}"
    else:
        expected = "an integer"

    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, value, expected)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ConfigError(path, value, expected)
        if abs(value) > INT_MAX:
            low = minimum if minimum is not None else -INT_MAX - 1
            raise ConfigError(path, value, f"an integer in [{low}, {INT_MAX}] (64-bit)")
        return value

    return check


positive_int = integer(1)
"""An int >= 1: ``positive_int(3, "train.epochs") == 3``."""


def boolean(value: Any, path: str) -> bool:
    """``true`` or ``false`` (no 0/1, no strings).

    >>> boolean("yes", "data.standardize")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: data.standardize: got 'yes'; expected true or false
    """
    if not isinstance(value, bool):
        raise ConfigError(path, value, "true or false")
    return value


def string(value: Any, path: str) -> str:
    """A non-empty string.

    >>> string(" ", "name")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: name: got ' '; expected a non-empty string
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, value, "a non-empty string")
    return value


def choice(*allowed: str) -> Check:
    """A check for one of ``allowed`` strings (case-insensitive), returned in canonical case.

    >>> choice("none", "before", "after")("befor", "model.batch_norm")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: model.batch_norm: got 'befor';
    expected one of 'none', 'before', 'after'; did you mean 'before'?
    """
    expected = "one of " + ", ".join(repr(a) for a in allowed)

    def check(value: Any, path: str) -> str:
        if isinstance(value, str) and value.lower() in allowed:
            return value.lower()
        hint = close_match_hint(value.lower(), allowed) if isinstance(value, str) else None
        raise ConfigError(path, value, expected, hint)

    return check


def optional(check: Check) -> Check:
    """``check`` that also lets None through (None = the documented default behaviour).

    >>> optional(positive_float)(None, "model.max_norm") is None
    True
    """

    def wrapped(value: Any, path: str) -> Any:
        return None if value is None else check(value, path)

    return wrapped


def int_list(value: Any, path: str) -> tuple[int, ...]:
    """A non-empty list of layer sizes in ``[1, MAX_UNITS]`` with at most ``MAX_HIDDEN_PARAMS``
    weights between consecutive layers (checked before any tensor is allocated).

    >>> int_list([64, 32], "model.hidden")
    (64, 32)
    >>> int_list([], "model.hidden")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: model.hidden: got []; expected a non-empty list of integers >= 1
    >>> int_list([10**12], "model.hidden")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: model.hidden[0]: got 1000000000000;
    expected an integer in [1, 65536]
    """
    expected = "a non-empty list of integers >= 1"
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ConfigError(path, value, expected)
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise ConfigError(f"{path}[{i}]", item, "an integer >= 1")
        if item > MAX_UNITS:
            raise ConfigError(f"{path}[{i}]", item, f"an integer in [1, {MAX_UNITS}]")
    weights = sum(a * b for a, b in itertools.pairwise(value))
    if weights > MAX_HIDDEN_PARAMS:
        raise ConfigError(path, list(value), f"at most {MAX_HIDDEN_PARAMS} parameters between "
                          f"hidden layers (these layers need {weights})",
                          hint="use narrower or fewer layers")
    return tuple(value)


def fraction_or_count(value: Any, path: str) -> float | int:
    """A fraction in (0, 1) or a count >= 1 (validation split sizes, like scikit-learn).

    >>> fraction_or_count(0.2, "data.val_size"), fraction_or_count(500, "data.val_size")
    (0.2, 500)
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, float) and math.isfinite(value) and 0 < value < 1:
        return value
    raise ConfigError(path, value, "a fraction in (0, 1) or a count >= 1")


def freeze(value: Any) -> Any:
    """Lists become tuples and tables become sorted item tuples, recursively (hashable).

    >>> freeze({"b": [1, 2], "a": 1})
    (('a', 1), ('b', (1, 2)))
    """
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Tuples become lists, recursively (the inverse of :func:`freeze` for plain lists).

    >>> thaw((1, (2, 3)))
    [1, [2, 3]]
    """
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value
