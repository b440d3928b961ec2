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
    "StorageError",
    "UnknownNameError",
]


class SteadygradError(Exception):
    """Base class of every error steadygrad raises on purpose.

    Example:
        >>> issubclass(ConfigError, SteadygradError), issubclass(NonFiniteError, SteadygradError)
        (True, True)
        >>> try:
        ...     raise DataError("labels: found 3 classes, expected 2")
        ... except SteadygradError as err:
        ...     print(type(err).__name__, "-", err)
        DataError - labels: found 3 classes, expected 2
    """


class ConfigError(SteadygradError, ValueError):
    """A configuration value or argument is invalid.

    Args:
        path: where the value lives, e.g. ``"train.optimizer.learning_rate"`` or an argument name.
        received: the value that was given.
        expected: what is allowed, in words.
        hint: how to fix it (optional).

    Example:
        >>> err = ConfigError("train.epochs", -1, "a positive int", hint="use e.g. 10")
        >>> print(err)
        train.epochs: got -1; expected a positive int; use e.g. 10
        >>> err.path, err.received, isinstance(err, ValueError)
        ('train.epochs', -1, True)
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
    """A name is not in a registry. The message lists the choices and a close match.

    Example:
        >>> err = UnknownNameError("optimizer", "adm", "one of adam, sgd", hint="try 'adam'")
        >>> print(err)  # plain message, not KeyError's repr()
        optimizer: got 'adm'; expected one of adam, sgd; try 'adam'
        >>> isinstance(err, KeyError), isinstance(err, ConfigError)
        (True, True)
    """

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return str(self.args[0])


class DataError(SteadygradError, ValueError):
    """Data failed validation (non-finite values, bad labels, shape mismatch, empty split).

    Example:
        >>> err = DataError("x: 2 non-finite values (first at row 5)")
        >>> print(err)
        x: 2 non-finite values (first at row 5)
        >>> isinstance(err, ValueError)
        True
    """


class CheckpointError(SteadygradError):
    """A checkpoint or weights file is missing, corrupt, unsafe or does not match the model.

    Example:
        >>> err = CheckpointError("ckpt.safetensors: missing key 'fc.weight'")
        >>> print(err)
        ckpt.safetensors: missing key 'fc.weight'
        >>> isinstance(err, SteadygradError), isinstance(err, ValueError)
        (True, False)
    """


class NonFiniteError(SteadygradError, FloatingPointError):
    """Training produced NaN or Inf (loss, gradient or parameter).

    Example:
        >>> err = NonFiniteError("loss is nan at step 12")
        >>> print(err)
        loss is nan at step 12
        >>> isinstance(err, FloatingPointError)
        True
    """


class StorageError(SteadygradError, OSError):
    """Results could not be written (disk full, quota, permissions); nothing was changed.

    The CLI reports it with exit code 1 (the run failed; the input was fine).

    Example:
        >>> err = StorageError("cannot write run 'a' in runs: No space left on device")
        >>> isinstance(err, SteadygradError), isinstance(err, OSError)
        (True, True)
    """
