"""The one checker of the options every model builder shares (private).

:func:`steadygrad.nn.build.mlp`, :func:`~steadygrad.nn.cnn.cnn`,
:func:`~steadygrad.nn.resnet.resnet`, :func:`~steadygrad.nn.rnn.rnn` and
:func:`~steadygrad.nn.transformer.transformer` all validate dropout, dropout kind, ℓ1/ℓ2,
max-norm, the output head, batch-norm momentum/epsilon and the seed/generator here
(:func:`check_options`), so a bad value gets the same message from every builder.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn._build_checks import (
    Activation,
    InitSpec,
    check_choice,
    check_float,
    check_int,
    check_max_norm,
)
from steadygrad.nn.layers import MCAlphaDropout, MCDropout

__all__ = ["DROPOUT_KINDS", "OUTPUTS", "Options", "check_options", "momentum_warning"]

DROPOUT_KINDS: dict[str, type[nn.Module]] = {
    "dropout": nn.Dropout,
    "alpha": nn.AlphaDropout,
    "mc": MCDropout,
    "mc_alpha": MCAlphaDropout,
}
"""Dropout layers by name (``mc*`` keep sampling in eval mode, for MC dropout)."""

OUTPUTS: tuple[str, ...] = ("multiclass", "binary", "regression")
"""Kinds of output head (all produce raw logits / values, no final activation)."""


@dataclass(frozen=True)
class Options:
    """The validated shared options of one builder call."""

    activation: Activation
    kernel_initializer: InitSpec
    bias_initializer: InitSpec
    dropout: float
    dropout_kind: str
    l1: float
    l2: float
    max_norm: float | None
    n_out: int
    bn_momentum: float
    bn_eps: float
    generator: torch.Generator | None

    def dropout_layer(self) -> nn.Module:
        """A fresh dropout module of ``dropout_kind`` with rate ``dropout``."""
        return DROPOUT_KINDS[self.dropout_kind](self.dropout)


def momentum_warning(bn_momentum: float) -> str | None:
    """The warning for a batch-norm momentum that is almost certainly Keras's convention.

    >>> momentum_warning(0.1) is None
    True
    >>> print(momentum_warning(0.99))
    bn_momentum=0.99 is in PyTorch's convention (weight of the new batch): the running
    statistics will track only the last few batches. Keras's momentum=0.99 corresponds to
    bn_momentum=0.01
    """
    if bn_momentum <= 0.5:
        return None
    return (
        f"bn_momentum={bn_momentum} is in PyTorch's convention (weight of the new batch): "
        "the running statistics will track only the last few batches. Keras's "
        f"momentum={bn_momentum} corresponds to bn_momentum={1 - bn_momentum:.3g}"
    )


def check_options(
    *,
    activation: Activation,
    kernel_initializer: InitSpec,
    bias_initializer: InitSpec,
    dropout: float,
    dropout_kind: str,
    l1: float,
    l2: float,
    max_norm: float | None,
    output: str,
    num_outputs: int | None,
    bn_momentum: float = 0.1,
    bn_eps: float = 1e-5,
    seed: int | None,
    generator: torch.Generator | None,
) -> Options:
    """Validate the options every builder shares, in this order: ``dropout``,
    ``dropout_kind``, ``l1``, ``l2``, ``max_norm``, ``output``, ``num_outputs``,
    ``bn_momentum``, ``bn_eps``, ``seed``/``generator`` (the first bad one raises).

    A ``bn_momentum`` above 0.5 (Keras's convention, almost certainly) is not an error: it
    emits :func:`momentum_warning` as a ``UserWarning`` pointing at the builder's caller.

    Example:
        >>> o = check_options(activation="relu", kernel_initializer="auto",
        ...     bias_initializer="zeros", dropout=0.1, dropout_kind="dropout", l1=0.0, l2=0.0,
        ...     max_norm=None, output="binary", num_outputs=None, seed=0, generator=None)
        >>> o.n_out, o.dropout_layer()
        (1, Dropout(p=0.1, inplace=False))
        >>> check_options(activation="relu", kernel_initializer="auto",
        ...     bias_initializer="zeros", dropout=0.0, dropout_kind="dropuot", l1=0.0, l2=0.0,
        ...     max_norm=None, output="binary", num_outputs=None, seed=0, generator=None)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: dropout_kind: got 'dropuot'; expected one of dropout, ...
    """
    check_float("dropout", dropout, 0.0, 1.0, hi_open=True)
    check_choice("dropout_kind", dropout_kind, tuple(DROPOUT_KINDS))
    check_float("l1", l1, 0.0, math.inf)
    check_float("l2", l2, 0.0, math.inf)
    check_max_norm("max_norm", max_norm)
    check_choice("output", output, OUTPUTS)
    if output == "multiclass":
        if num_outputs is None:
            raise ConfigError(
                "num_outputs", None, "the number of classes (an int >= 2) for output='multiclass'",
                hint="use output='binary' for two classes with one logit",
            )
        n_out = check_int("num_outputs", num_outputs, 2)
    else:
        n_out = 1 if num_outputs is None else check_int("num_outputs", num_outputs)
    momentum = check_float("bn_momentum", bn_momentum, 0.0, 1.0)
    if momentum == 0:
        raise ConfigError("bn_momentum", bn_momentum, "a float in (0, 1] (PyTorch convention)")
    message = momentum_warning(bn_momentum)
    if not check_float("bn_eps", bn_eps, 0.0, math.inf) > 0:
        raise ConfigError("bn_eps", bn_eps, "a positive float, e.g. 1e-5 (PyTorch) or 1e-3 (Keras)")
    if seed is not None and generator is not None:
        raise ConfigError("seed", seed, "None when a generator is given", hint="pass only one")
    if seed is not None:
        check_int("seed", seed, 0)
        generator = torch.Generator().manual_seed(seed)
    elif generator is not None and not isinstance(generator, torch.Generator):
        raise ConfigError("generator", generator, "a torch.Generator or None")
    if message is not None:  # after every check: an invalid call raises without warning
        warnings.warn(message, UserWarning, stacklevel=3)  # the builder's caller
    return Options(
        activation, kernel_initializer, bias_initializer, float(dropout), dropout_kind,
        float(l1), float(l2), None if max_norm is None else float(max_norm), n_out,
        momentum, float(bn_eps), generator,
    )

