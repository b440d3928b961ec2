"""Ready-made recipes: the "default DNN configurations" of Géron's *Hands-On ML*, chapter 11.

Each preset returns a :class:`Recipe`: the model (a plain ``nn.Sequential`` from
:func:`steadygrad.nn.build.mlp`), the keyword arguments to pass to ``steadygrad.fit``
(optimizer, learning rate, schedule, early stopping, input standardization) and the reasons
for each choice with their source, so a learner can read *why* the net looks like it does.

The two tables (Géron, *Hands-On Machine Learning*, 2nd ed., ch. 11, "Summary and Practical
Guidelines", tables 11-3 and 11-4):

=====================  =====================================  ==============================
hyperparameter         default DNN                            self-normalizing net
=====================  =====================================  ==============================
kernel initializer     He                                     LeCun
activation             ELU                                    SELU
normalization          none if shallow; batch norm if deep    none (self-normalization)
regularization         early stopping (+ ℓ2 if needed)        alpha dropout if needed
optimizer              momentum (or RMSProp or Nadam)         momentum (or RMSProp or Nadam)
learning rate schedule 1cycle                                 1cycle
=====================  =====================================  ==============================

"Don't forget to normalize the input features!" (ibid.): both recipes ask the data loader to
standardize inputs (``Recipe.data_kwargs``, for ``steadygrad.data.load``); ``fit_kwargs`` holds
only arguments of ``steadygrad.fit``, so ``fit(recipe.model, data, **recipe.fit_kwargs)`` works.

Example:
    >>> recipe = default_dnn((1, 28, 28), 10, seed=0)
    >>> [type(m).__name__ for m in recipe.model]
    ['Flatten', 'Linear', 'ELU', 'Linear', 'ELU', 'Linear']
    >>> recipe.fit_kwargs["optimizer"], recipe.fit_kwargs["schedule"], recipe.data_kwargs
    ('nadam', 'one_cycle', {'standardize': True})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn.build import mlp

__all__ = ["DEEP_NET_LAYERS", "OPTIMIZERS", "Recipe", "default_dnn", "self_normalizing"]

_BOOK = "Géron, Hands-On ML 2nd ed., ch. 11, table 11-{}"

DEEP_NET_LAYERS = 10
"""A net with more hidden layers than this counts as "deep" and gets batch norm.

The book's rule is qualitative ("none if shallow; batch norm if deep"). Its own Fashion-MNIST
example gains little from batch norm with two hidden layers, while the vanishing/exploding
gradient problems batch norm fixes (Ioffe & Szegedy, 2015) grow with depth; with He init and
ELU a net of up to ~10 dense layers trains well without it.
"""

_DATA_KWARGS = {"standardize": True}

OPTIMIZERS: dict[str, tuple[str, float, str]] = {
    "nadam": ("nadam", 1e-3, "Nadam"),
    "nesterov": ("nesterov", 1e-2, "SGD momentum 0.9 + Nesterov"),
    "sgd": ("nesterov", 1e-2, "SGD momentum 0.9 + Nesterov"),
    "rmsprop": ("rmsprop", 1e-3, "RMSProp"),
}
"""Preset ``optimizer`` choice -> (``fit`` optimizer name, default peak learning rate, label).

``"sgd"`` means the book's momentum optimizer: ``steadygrad.optim``'s ``"nesterov"``
(momentum 0.9, Nesterov). Learning rates are Keras's defaults for each optimizer (Nadam
0.001, SGD 0.01, RMSprop 0.001), used as the 1cycle peak; run the learning-rate finder to
tune it.
"""


@dataclass(frozen=True)
class Recipe:
    """A model plus how to train it, with the reason for every choice.

    Attributes:
        model: the network, ready to train.
        fit_kwargs: keyword arguments for ``steadygrad.fit`` (``optimizer``,
            ``learning_rate``, ``schedule``, ``early_stopping``).
        reasons: one line per choice, with its source.
        data_kwargs: keyword arguments for ``steadygrad.data.load`` (``standardize``).

    Example:
        >>> r = Recipe(nn.Sequential(nn.Linear(2, 1)), {"optimizer": "nadam"}, ("why",))
        >>> r.fit_kwargs["optimizer"], r.reasons
        ('nadam', ('why',))
    """

    model: nn.Sequential
    fit_kwargs: dict[str, Any] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    data_kwargs: dict[str, Any] = field(default_factory=dict)

    def explain(self) -> str:
        """The reasons as a bulleted list.

        >>> print(Recipe(nn.Sequential(), reasons=("a", "b")).explain())
        - a
        - b
        """
        return "\n".join(f"- {r}" for r in self.reasons)


def _fit_kwargs(
    optimizer: str, learning_rate: float | None, patience: int
) -> tuple[dict[str, Any], str]:
    if optimizer not in OPTIMIZERS:
        raise ConfigError("optimizer", optimizer, f"one of {', '.join(OPTIMIZERS)}")
    if learning_rate is not None and (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, (int, float))
        or not 0 < learning_rate < float("inf")
    ):
        raise ConfigError("learning_rate", learning_rate, "None (default) or a positive float")
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ConfigError("patience", patience, "an int >= 1 (epochs without improvement)")
    fit_name, default_lr, label = OPTIMIZERS[optimizer]
    kwargs: dict[str, Any] = {
        "optimizer": fit_name,
        "learning_rate": float(learning_rate if learning_rate is not None else default_lr),
        "schedule": "one_cycle",
        "early_stopping": {"patience": patience, "restore_best_weights": True},
    }
    return kwargs, label


def _common_reasons(table: int, optimizer: str, kw: dict[str, Any]) -> tuple[str, ...]:
    book = _BOOK.format(table)
    return (
        f"optimizer: {optimizer} at learning rate {kw['learning_rate']:g} (1cycle peak): "
        f"'Momentum (or RMSProp or Nadam)' ({book})",
        "schedule: 1cycle (Smith, 2018, arXiv:1803.09820): fast convergence and "
        f"regularization ({book})",
        f"early stopping: patience {kw['early_stopping']['patience']}, restore best weights "
        f"({book})",
        f"standardize inputs: 'Don't forget to normalize the input features!' ({book})",
    )


def default_dnn(
    input_shape: Sequence[int] | int,
    num_outputs: int | None,
    *,
    hidden: Sequence[int] = (300, 100),
    output: str = "multiclass",
    batch_norm: str = "auto",
    dropout: float = 0.0,
    l2: float = 0.0,
    optimizer: str = "nadam",
    learning_rate: float | None = None,
    patience: int = 10,
    seed: int | None = None,
) -> Recipe:
    """The book's default DNN: He init, ELU, batch norm if deep, early stopping, 1cycle.

    Args:
        input_shape: shape of one example (no batch dim).
        num_outputs: classes (multiclass), labels (binary) or targets (regression).
        hidden: units per hidden layer.
        output: ``"multiclass"``, ``"binary"`` or ``"regression"``.
        batch_norm: ``"auto"`` (``"before"`` the activation when there are more than
            :data:`DEEP_NET_LAYERS` hidden layers, else ``"none"``), or any ``mlp`` value.
        dropout: dropout rate after each hidden layer ("if needed").
        l2: ℓ2 factor on every kernel ("+ ℓ2 reg. if needed").
        optimizer: ``"nadam"``, ``"sgd"``/``"nesterov"`` (momentum 0.9, Nesterov) or
            ``"rmsprop"``.
        learning_rate: the 1cycle peak rate; None uses :data:`OPTIMIZERS`' default.
        patience: early-stopping patience in epochs.
        seed: seed for the initial weights.

    Returns:
        A :class:`Recipe`.

    Example:
        >>> deep = default_dnn(20, 3, hidden=(32,) * 12, seed=0)
        >>> sum(isinstance(m, nn.BatchNorm1d) for m in deep.model)
        12
        >>> print(deep.reasons[2])
        batch norm before each activation (Ioffe & Szegedy, 2015): 12 hidden layers > 10 ...
    """
    if batch_norm == "auto":
        bn = "before" if len(hidden) > DEEP_NET_LAYERS else "none"
        why_bn = (
            f"batch norm before each activation (Ioffe & Szegedy, 2015): {len(hidden)} hidden "
            f"layers > {DEEP_NET_LAYERS} counts as deep"
            if bn != "none"
            else f"no batch norm: {len(hidden)} hidden layers <= {DEEP_NET_LAYERS} is shallow"
        )
    else:
        bn, why_bn = batch_norm, f"batch norm: {batch_norm!r}, as requested"
    kw, opt_name = _fit_kwargs(optimizer, learning_rate, patience)
    model = mlp(
        input_shape, hidden, activation="elu", kernel_initializer="he_normal", batch_norm=bn,
        dropout=dropout, l2=l2, output=output, num_outputs=num_outputs, seed=seed,
    )
    book = _BOOK.format(3)
    reasons = (
        "kernel initializer: he_normal (He et al., 2015) keeps the variance of ReLU-like "
        f"activations constant across layers ({book})",
        "activation: ELU (Clevert et al., 2016): no dying units, mean activations near 0, "
        f"smooth everywhere ({book})",
        f"{why_bn} ('None if shallow; Batch Norm if deep', {book})",
        (
            f"regularization: early stopping, l2={l2:g} ({book})"
            if l2
            else f"regularization: early stopping ('+ l2 reg. if needed', {book})"
        ),
        *_common_reasons(3, opt_name, kw),
    )
    return Recipe(model=model, fit_kwargs=kw, reasons=reasons, data_kwargs=dict(_DATA_KWARGS))


def self_normalizing(
    input_shape: Sequence[int] | int,
    num_outputs: int | None,
    *,
    hidden: Sequence[int] = (300, 100),
    output: str = "multiclass",
    dropout: float = 0.0,
    mc_dropout: bool = False,
    optimizer: str = "nadam",
    learning_rate: float | None = None,
    patience: int = 10,
    seed: int | None = None,
) -> Recipe:
    """The book's self-normalizing net: LeCun normal, SELU, no batch norm, alpha dropout.

    Klambauer et al., "Self-Normalizing Neural Networks", NeurIPS 2017: with standardized
    inputs, LeCun normal weights and a plain stack of dense SELU layers, each layer's outputs
    converge to mean 0 and variance 1, so gradients neither vanish nor explode.

    Args:
        input_shape: shape of one example (no batch dim).
        num_outputs: classes (multiclass), labels (binary) or targets (regression).
        hidden: units per hidden layer.
        output: ``"multiclass"``, ``"binary"`` or ``"regression"``.
        dropout: alpha-dropout rate after each hidden layer ("if needed").
        mc_dropout: use alpha dropout that also samples in eval mode (MC dropout).
        optimizer: ``"nadam"``, ``"sgd"``/``"nesterov"`` (momentum 0.9, Nesterov) or
            ``"rmsprop"``.
        learning_rate: the 1cycle peak rate; None uses :data:`OPTIMIZERS`' default.
        patience: early-stopping patience in epochs.
        seed: seed for the initial weights.

    Returns:
        A :class:`Recipe`.

    Example:
        >>> r = self_normalizing(64, 10, dropout=0.1, seed=0)
        >>> [type(m).__name__ for m in r.model]
        ['Linear', 'SELU', 'AlphaDropout', 'Linear', 'SELU', 'AlphaDropout', 'Linear']
        >>> r.data_kwargs["standardize"]
        True
    """
    if not isinstance(mc_dropout, bool):
        raise ConfigError("mc_dropout", mc_dropout, "True or False")
    kw, opt_name = _fit_kwargs(optimizer, learning_rate, patience)
    kind = "mc_alpha" if mc_dropout else "alpha"
    model = mlp(
        input_shape, hidden, activation="selu", kernel_initializer="lecun_normal",
        batch_norm="none", dropout=dropout, dropout_kind=kind, output=output,
        num_outputs=num_outputs, seed=seed,
    )
    book = _BOOK.format(4)
    reasons = (
        "kernel initializer: lecun_normal (variance 1/fan_in), required for SELU's "
        f"self-normalization (Klambauer et al., 2017; {book})",
        f"activation: SELU, a plain stack of dense SELU layers self-normalizes ({book})",
        f"no batch norm: the net normalizes itself ('None (self-normalization)', {book})",
        (
            f"regularization: early stopping and {kind.replace('_', ' ')} dropout "
            f"rate {dropout:g}; plain dropout, l1/l2 and max-norm would break "
            f"self-normalization ({book})"
            if dropout
            else f"regularization: early stopping ('Alpha Dropout if needed', {book})"
        ),
        *_common_reasons(4, opt_name, kw),
    )
    return Recipe(model=model, fit_kwargs=kw, reasons=reasons, data_kwargs=dict(_DATA_KWARGS))
