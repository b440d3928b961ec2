"""Exception types raised by steadygrad.

Every error that comes from bad user input says what was received, what is allowed
and how to fix it, so that a user can act on the message alone.

Example:
    >>> from steadygrad.errors import ConfigError
    >>> err = ConfigError(
    ...     "model.activation", "rleu", "one of relu, selu", hint="did you mean 'relu'?"
    ... )
    >>> print(err)
    model.activation: got 'rleu'; expected one of relu, selu; did you mean 'relu'?
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "NonFiniteError",
    "SteadygradError",
    "UnknownNameError",
]


class SteadygradError(Exception):
    """Base class of every error steadygrad raises on purpose."""


class ConfigError(SteadygradError, ValueError):
    """A configuration value or argument is invalid.

    Args:
        path: where the value lives, e.g. ``"train.optimizer.learning_rate"`` or an argument name.
        received: the value that was given.
        expected: what is allowed, in words.
        hint: how to fix it (optional).
    """

    def __init__(self, path: str, received: Any, expected: str, hint: str | None = None) -> None:
        self.path = path
        self.received = received
        self.expected = expected
        self.hint = hint
        message = f"{path}: got {received!r}; expected {expected}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)


class UnknownNameError(ConfigError, KeyError):
    """A name is not in a registry. The message lists the choices and a close match."""

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return str(self.args[0])


class DataError(SteadygradError, ValueError):
    """Data failed validation (non-finite values, bad labels, shape mismatch, empty split)."""


class CheckpointError(SteadygradError):
    """A checkpoint or weights file is missing, corrupt, unsafe or does not match the model."""


class NonFiniteError(SteadygradError, FloatingPointError):
    """Training produced NaN or Inf (loss, gradient or parameter)."""
