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
from steadygrad.experiments.config import (
    _MODEL_SOURCE,
    Component,
    ModelConfig,
    _build,
    _m,
    _table,
    shared_option,
)

__all__ = [
    "ARCHS",
    "AnyModelConfig",
    "ArchOptions",
    "CNNConfig",
    "RNNConfig",
    "ResNetConfig",
    "TransformerConfig",
    "model_from_config",
    "model_section",
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


def model_section(raw: Any) -> AnyModelConfig:
    """Validate a ``[model]`` table of any ``arch`` into its section (``config_from_dict``'s
    ``model``): the architecture's dataclass, or the MLP's with its ``depth``/``units``
    shorthand and its factory rules (no MLP key next to ``factory``, no ``factory_kwargs``
    without it).

    Example:
        >>> model_section({"depth": 2, "units": 8}).hidden
        (8, 8)
        >>> model_section({"arch": "rnn", "factory": "pkg:make"})
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: model.factory: got 'pkg:make'; expected no model.factory
        together with model.arch = 'rnn' ...
    """
    raw = dict(_table(raw, "model"))
    arch = ck.choice("mlp", "cnn", "resnet", "rnn", "transformer")(raw.get("arch", "mlp"),
                                                                    "model.arch")
    if arch != "mlp":
        for key in ("factory", "factory_kwargs"):
            if key in raw:
                raise ConfigError(
                    f"model.{key}", raw[key], f"no model.{key} together with model.arch = "
                    f"{arch!r} (a factory builds its own model; arch picks a built-in builder)",
                    hint="remove model.arch to use the factory (its rewrites still apply), "
                    f"or remove model.{key}")
        section: AnyModelConfig = _build(ARCHS[arch], {**raw, "arch": arch}, "model")
        return section
    raw.pop("arch", None)
    if "depth" in raw or "units" in raw:
        if "hidden" in raw:
            raise ConfigError(
                "model.hidden", raw["hidden"], "either hidden or depth + units, not both",
                hint="remove depth/units or hidden",
            )
        for key in ("depth", "units"):
            if key not in raw:
                raise ConfigError(
                    f"model.{key}", None, "an integer >= 1 (depth and units go together)"
                )
        depth = ck.positive_int(raw.pop("depth"), "model.depth")
        units = ck.positive_int(raw.pop("units"), "model.units")
        raw["hidden"] = [units] * depth
    model: ModelConfig = _build(ModelConfig, raw, "model")
    if model.factory is not None:
        default = ModelConfig()
        for f in dataclasses.fields(ModelConfig):
            if f.name not in _MODEL_SOURCE and getattr(model, f.name) != getattr(default,
                                                                                  f.name):
                raise ConfigError(
                    f"model.{f.name}", raw.get(f.name, getattr(model, f.name)),
                    "no MLP key together with model.factory (the factory builds the model)",
                    hint=f"remove model.{f.name}, or pass it to the factory under "
                    "[model.factory_kwargs]")
    elif model.factory_kwargs:
        raise ConfigError("model.factory_kwargs", model.kwargs, "no factory_kwargs without "
                          "model.factory", hint="set model.factory = 'package.module:function'")
    return model


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
