"""``[model]`` sections of the architectures besides the MLP, and the one model factory.

``[model] arch = "mlp" | "cnn" | "resnet" | "rnn" | "transformer"`` picks the builder
(``mlp`` when absent); every other key of the section but ``rewrites`` is a keyword argument
of that builder
(:func:`steadygrad.nn.cnn`, :func:`steadygrad.nn.resnet`, :func:`steadygrad.nn.rnn`,
:func:`steadygrad.nn.transformer`; the MLP's keys are :class:`~steadygrad.experiments.config.
ModelConfig`'s), validated like the MLP's: an unknown key fails naming the field, listing the
allowed keys and a close match. The input shape, the output kind and the number of outputs
come from the data; the init seed is ``model.seed`` or else ``train.seed``. The keys all
architectures share are declared once, on :class:`ArchOptions`; ``rewrites`` (a list of
:mod:`steadygrad.nn.rewrite` steps applied to the built model, as on the MLP's section) is one
of them, so the doctor's remedies for any architecture are config patches. ``factory`` is the
MLP section's only: a factory builds its own model, so ``arch`` and ``factory`` together fail.

:func:`model_from_config` is the single place a model section becomes a model (``train``,
``sweep``, ``summary``, ``diagnose``, ``lr-find`` and ``doctor`` all reach it through
:func:`steadygrad.experiments.execute.build_model`).

Example:
    >>> from steadygrad.experiments.config import config_from_dict
    >>> cfg = config_from_dict({"model": {"arch": "cnn", "filters": [8, 16]}})
    >>> cfg.model.arch, cfg.model.filters, cfg.model.pool
    ('cnn', (8, 16), 'max')
    >>> cfg = config_from_dict({"model": {"arch": "transformer", "norm_first": False,
    ...                                   "rewrites": ["pre_ln"]}})
    >>> cfg.model.rewrites
    (Component(name='pre_ln', options=()),)
    >>> config_from_dict({"model": {"arch": "rnn", "cel": "gru"}})
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: model.cel: got unknown key 'cel'; expected one of activation,
    ..., vocab; did you mean 'cell'?
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.experiments import _checks as ck
from steadygrad.experiments import _names
from steadygrad.experiments.config import Component, ModelConfig, _m, shared_option

__all__ = [
    "ARCHS",
    "AnyModelConfig",
    "ArchOptions",
    "CNNConfig",
    "RNNConfig",
    "ResNetConfig",
    "TransformerConfig",
    "model_from_config",
]


def _int_list_or_empty(value: Any, path: str) -> tuple[int, ...]:
    """A (possibly empty) list of integers >= 1: hidden dense layers of a head."""
    if isinstance(value, (list, tuple)) and not value:
        return ()
    return ck.int_list(value, path)


def _int_or_int_list(value: Any, path: str) -> int | tuple[int, ...]:
    """An int >= 1 or a non-empty list of them (blocks per stage)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return ck.positive_int(value, path)
    return ck.int_list(value, path)


@dataclass(frozen=True)
class ArchOptions:
    """The keys every architecture's ``[model]`` section shares, with the MLP section's
    defaults and checks (both declare them with
    :func:`~steadygrad.experiments.config.shared_option`); each architecture's section extends
    it.

    ``arch`` is redefined by each subclass (its one allowed value); ``rewrites`` lists
    :mod:`steadygrad.nn.rewrite` steps applied, in order, to the built model, exactly as on
    the MLP's section (:func:`steadygrad.experiments.execute.build_model`); it is not a
    keyword of the builder.

    Example:
        >>> sorted(f.name for f in dataclasses.fields(ArchOptions))[:4]
        ['activation', 'arch', 'bias_initializer', 'bn_eps']
        >>> TransformerConfig().rewrites, CNNConfig().dropout_kind
        ((), 'dropout')
    """

    arch: str = field(default="", metadata=_m(ck.string))
    activation: Component = shared_option("activation")
    kernel_initializer: Component = shared_option("kernel_initializer")
    bias_initializer: Component = shared_option("bias_initializer")
    dropout: float = shared_option("dropout")
    dropout_kind: str = shared_option("dropout_kind")
    l1: float = shared_option("l1")
    l2: float = shared_option("l2")
    max_norm: float | None = shared_option("max_norm")
    bn_eps: float = shared_option("bn_eps")
    seed: int | None = shared_option("seed")
    rewrites: tuple[Component, ...] = shared_option("rewrites")


@dataclass(frozen=True)
class _BatchNormOptions(ArchOptions):
    """:class:`ArchOptions` plus ``bn_momentum`` (architectures that can use batch norm)."""

    bn_momentum: float = shared_option("bn_momentum")


@dataclass(frozen=True)
class CNNConfig(_BatchNormOptions):
    """``[model] arch = "cnn"``: keyword arguments of :func:`steadygrad.nn.cnn`.

    Example:
        >>> CNNConfig().filters, CNNConfig().normalization
        ((32, 64), 'none')
    """

    arch: str = field(default="cnn", metadata=_m(ck.choice("cnn")))
    filters: tuple[int, ...] = field(default=(32, 64), metadata=_m(ck.int_list))
    kernel_size: int = field(default=3, metadata=_m(ck.positive_int))
    pool: str = field(default="max", metadata=_m(ck.choice("max", "avg", "none")))
    pool_every: int = field(default=1, metadata=_m(ck.positive_int))
    head: str = field(default="global_avg", metadata=_m(ck.choice("global_avg", "flatten")))
    dense: tuple[int, ...] = field(default=(), metadata=_m(_int_list_or_empty))
    normalization: str = field(default="none", metadata=_m(ck.choice("none", "before", "after")))
    norm: str = field(default="batch", metadata=_m(ck.choice("batch", "layer")))


@dataclass(frozen=True)
class ResNetConfig(_BatchNormOptions):
    """``[model] arch = "resnet"``: keyword arguments of :func:`steadygrad.nn.resnet`.

    Example:
        >>> ResNetConfig().stages, ResNetConfig().blocks_per_stage
        ((16, 32, 64), 2)
    """

    arch: str = field(default="resnet", metadata=_m(ck.choice("resnet")))
    stages: tuple[int, ...] = field(default=(16, 32, 64), metadata=_m(ck.int_list))
    blocks_per_stage: int | tuple[int, ...] = field(default=2, metadata=_m(_int_or_int_list))
    normalization: str = field(default="before", metadata=_m(ck.choice("before", "none")))
    norm: str = field(default="batch", metadata=_m(ck.choice("batch", "layer")))
    zero_init_residual: bool = field(default=False, metadata=_m(ck.boolean))


@dataclass(frozen=True)
class RNNConfig(_BatchNormOptions):
    """``[model] arch = "rnn"``: keyword arguments of :func:`steadygrad.nn.rnn`.

    ``vocab`` (token inputs through an embedding) must exceed the data's largest token id.

    Example:
        >>> RNNConfig().cell, RNNConfig().hidden, RNNConfig().recurrent_initializer.name
        ('lstm', 64, 'orthogonal')
    """

    arch: str = field(default="rnn", metadata=_m(ck.choice("rnn")))
    cell: str = field(default="lstm", metadata=_m(ck.choice("rnn", "gru", "lstm")))
    hidden: int = field(default=64, metadata=_m(ck.positive_int))
    layers: int = field(default=1, metadata=_m(ck.positive_int))
    vocab: int | None = field(default=None, metadata=_m(ck.optional(ck.integer(2))))
    embedding_dim: int = field(default=32, metadata=_m(ck.positive_int))
    nonlinearity: str = field(default="tanh", metadata=_m(ck.choice("tanh", "relu")))
    dense: tuple[int, ...] = field(default=(), metadata=_m(_int_list_or_empty))
    recurrent_initializer: Component = field(
        default=Component("orthogonal"), metadata=_m(_names.initializer)
    )
    unit_forget_bias: bool = field(default=True, metadata=_m(ck.boolean))
    normalization: str = field(default="none", metadata=_m(ck.choice("none", "after")))
    norm: str = field(default="layer", metadata=_m(ck.choice("batch", "layer")))


@dataclass(frozen=True)
class TransformerConfig(ArchOptions):
    """``[model] arch = "transformer"``: keyword arguments of :func:`steadygrad.nn.transformer`.

    Example:
        >>> TransformerConfig().norm_first, TransformerConfig().positions
        (True, 'learned')
    """

    arch: str = field(default="transformer", metadata=_m(ck.choice("transformer")))
    vocab: int | None = field(default=None, metadata=_m(ck.optional(ck.integer(2))))
    d_model: int = field(default=32, metadata=_m(ck.positive_int))
    heads: int = field(default=4, metadata=_m(ck.positive_int))
    layers: int = field(default=2, metadata=_m(ck.positive_int))
    ff: int = field(default=64, metadata=_m(ck.positive_int))
    norm_first: bool = field(default=True, metadata=_m(ck.boolean))
    positions: str = field(default="learned", metadata=_m(ck.choice("learned", "sinusoidal")))


AnyModelConfig = Union[ModelConfig, CNNConfig, ResNetConfig, RNNConfig, TransformerConfig]  # noqa: UP007
"""A validated ``[model]`` section of any architecture."""

ARCHS: dict[str, type] = {
    "mlp": ModelConfig,
    "cnn": CNNConfig,
    "resnet": ResNetConfig,
    "rnn": RNNConfig,
    "transformer": TransformerConfig,
}
"""The ``[model]`` dataclass of each ``arch``."""


def _builder(arch: str) -> Any:
    from steadygrad import nn as sgnn

    return {"mlp": sgnn.mlp, "cnn": sgnn.cnn, "resnet": sgnn.resnet, "rnn": sgnn.rnn,
            "transformer": sgnn.transformer}[arch]


def _check_vocab(vocab: int | None, x: torch.Tensor | None) -> None:
    if vocab is None or x is None:
        return
    top = int(x.max().item()) if x.numel() else 0
    if top >= vocab:
        raise ConfigError("model.vocab", vocab, f"an int > {top}, the largest token id in the data",
                          hint=f"set model.vocab = {top + 1} (or the data's vocab)")


_NOT_BUILDER_KEYS = frozenset({"arch", "factory", "factory_kwargs", "rewrites"})
"""Fields of a ``[model]`` section that are not keyword arguments of its builder."""


def model_from_config(
    model: AnyModelConfig,
    input_shape: Sequence[int],
    *,
    output: str = "multiclass",
    num_outputs: int | None = None,
    seed: int | None = None,
    tokens: torch.Tensor | None = None,
) -> nn.Module:
    """Build the model of a ``[model]`` section of any ``arch`` for one example's shape.

    Every field of the section (but ``arch``) is passed to the builder as the keyword of the
    same name; a component (``activation``, initializers) goes as its name or
    ``{"name": ..., **kwargs}``.

    Args:
        model: a validated section (``config.model``).
        input_shape: one example's shape (``data.input_shape``).
        output: ``"multiclass"``, ``"binary"`` or ``"regression"`` (``data.task``).
        num_outputs: classes for multiclass, else None (the builder's default) or targets.
        seed: the init seed used when ``model.seed`` is unset (``train.seed`` in a run).
        tokens: training inputs of a token model, to check ``model.vocab`` against.

    Returns:
        The freshly initialized ``nn.Module``.

    Raises:
        ConfigError: the section does not fit the data (e.g. a CNN on flat features names
            ``data.shape``; a vocabulary smaller than the token ids names ``model.vocab``).

    Example:
        >>> from steadygrad.experiments.config import config_from_dict
        >>> cfg = config_from_dict({"model": {"arch": "transformer", "d_model": 8,
        ...     "heads": 2, "layers": 1, "ff": 16, "norm_first": False}})
        >>> net = model_from_config(cfg.model, (5, 3), output="regression", seed=0)
        >>> [name for name, _ in net.named_children()]
        ['input_proj', 'positions', 'block1', 'pool', 'output']
        >>> model_from_config(config_from_dict({"model": {"arch": "cnn"}}).model, (64,),
        ...                   num_outputs=10)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: data.shape: got (64,); expected an input_shape (C, H, W) ...
    """
    arch = model.arch
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(model):
        if f.name in _NOT_BUILDER_KEYS:
            continue
        value = getattr(model, f.name)
        kwargs[f.name] = value.to_value() if isinstance(value, Component) else value
    if kwargs.get("seed") is None:
        kwargs["seed"] = seed
    if arch in ("rnn", "transformer"):
        _check_vocab(kwargs.get("vocab"), tokens)
    if arch in ("cnn", "resnet") and len(tuple(input_shape)) != 3:
        raise ConfigError(
            "data.shape", tuple(input_shape), f"an input_shape (C, H, W) of images for a {arch}",
            hint="set shape = \"image\" in [data] (digits, fashion_mnist, mnist)",
        )
    built: nn.Module = _builder(arch)(
        tuple(input_shape), output=output, num_outputs=num_outputs, **kwargs
    )
    return built
