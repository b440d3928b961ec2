"""Typed, frozen run configs, validated at the boundary.

A run is described by one table with sections ``[data]``, ``[model]``, ``[train]`` (with
``[train.optimizer]``, ``[train.schedule]``, ``[train.early_stopping]``) and ``[diagnostics]``.
:func:`config_from_dict` turns such a table into a :class:`RunConfig` or fails *before any work*
with a :class:`~steadygrad.errors.ConfigError` naming the field's path, the received value, what
is allowed and, for unknown keys and names, a close match. :func:`config_to_dict` is its exact
inverse (``config_from_dict(config_to_dict(c)) == c``).

Field names are the keyword arguments of the library calls they feed, so a section maps 1:1 onto
a call: ``[model]`` onto ``steadygrad.nn.build.mlp`` (or, with ``arch = "cnn"``, ``"resnet"``,
``"rnn"`` or ``"transformer"``, that builder: :mod:`steadygrad.experiments.archs`), ``[train]`` onto
``steadygrad.train.loop.fit``, ``[data]`` onto ``steadygrad.data.datasets.load``.

Example:
    >>> cfg = config_from_dict({"name": "selu", "model": {"hidden": [32, 32],
    ...     "activation": "selu", "kernel_initializer": "lecun_normal"},
    ...     "train": {"optimizer": {"name": "sgd", "learning_rate": 0.01, "clipnorm": 1.0}}})
    >>> cfg.model.activation.name, cfg.train.optimizer.clipnorm
    ('selu', 1.0)
    >>> config_from_dict(config_to_dict(cfg)) == cfg
    True
    >>> config_from_dict({"model": {"activaton": "relu"}})
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: model.activaton: got unknown key 'activaton';
    expected one of ...; did you mean 'activation'?
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from steadygrad.errors import ConfigError
from steadygrad.experiments import _checks as ck
from steadygrad.experiments import _model_source as _src
from steadygrad.experiments import _names
from steadygrad.optim.settings import OptimizerConfig

if TYPE_CHECKING:
    from steadygrad.experiments.archs import AnyModelConfig

__all__ = [
    "Component",
    "DataConfig",
    "DiagnosticsConfig",
    "EarlyStoppingConfig",
    "ModelConfig",
    "OptimizerConfig",
    "RunConfig",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
]


def _m(check: ck.Check) -> dict[str, Any]:
    """Field metadata holding the field's validator."""
    return {"check": check}


@dataclass(frozen=True)
class Component:
    """A registered component by name, with its arguments (``{name = "elu", alpha = 0.5}``).

    In a file a component is either a bare name (``"he_normal"``) or a table with a ``name``
    key and the component's keyword arguments.

    Example:
        >>> c = Component("variance_scaling", (("mode", "fan_avg"), ("scale", 2.0)))
        >>> c.kwargs
        {'mode': 'fan_avg', 'scale': 2.0}
        >>> c.to_value()
        {'name': 'variance_scaling', 'mode': 'fan_avg', 'scale': 2.0}
        >>> Component("relu").to_value()
        'relu'
    """

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        """The arguments as a plain dict (lists restored)."""
        return {k: ck.thaw(v) for k, v in self.options}

    def to_value(self) -> str | dict[str, Any]:
        """The name alone without arguments, else ``{"name": ..., **kwargs}``."""
        return self.name if not self.options else {"name": self.name, **self.kwargs}


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: ``steadygrad.data.datasets.load(name, **kwargs)``.

    ``name`` is a registered dataset; every other key is an argument of that dataset's loader
    (``val_size``, ``test_size``, ``n_train``, ``seed``, ``standardize``, ``root``, ``path``,
    ...), checked against the loader's signature, so a key means what the loader documents.

    Example:
        >>> DataConfig("digits", (("n_train", 200),)).kwargs
        {'n_train': 200}
    """

    name: str = "digits"
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        """The loader's keyword arguments."""
        return {k: ck.thaw(v) for k, v in self.options}


_OPTIONS: dict[str, tuple[Any, ck.Check]] = {
    "activation": (Component("relu"), _names.activation),
    "kernel_initializer": (Component("auto"), _names.initializer),
    "bias_initializer": (Component("zeros"), _names.initializer),
    "dropout": (0.0, _names.dropout_rate),
    "dropout_kind": ("dropout", _names.dropout_kind),
    "l1": (0.0, ck.non_negative_float),
    "l2": (0.0, ck.non_negative_float),
    "max_norm": (None, ck.optional(ck.positive_float)),
    "bn_momentum": (0.1, _names.momentum),
    "bn_eps": (1e-5, ck.positive_float),
    "seed": (None, ck.optional(ck.integer(0))),
    "rewrites": ((), _src.rewrites),
}
"""Default and check of each ``[model]`` key that every architecture shares (the MLP's
section and :class:`steadygrad.experiments.archs.ArchOptions` both declare them with
:func:`shared_option`)."""


def shared_option(name: str) -> Any:
    """The dataclass field of the shared ``[model]`` key ``name``: its default and its check
    (a fresh ``dataclasses.field`` per use; the default is immutable).

    >>> spec = shared_option("dropout_kind")
    >>> spec.default, spec.metadata["check"]("mc", "model.dropout_kind")
    ('dropout', 'mc')
    """
    default, check = _OPTIONS[name]
    return field(default=default, metadata=_m(check))


@dataclass(frozen=True)
class ModelConfig:
    """``[model]`` of ``arch = "mlp"`` (the default): an MLP (keyword arguments of
    ``steadygrad.nn.build.mlp``) or a factory.

    ``factory = "package.module:function"`` builds the model with the user's own function,
    called with ``factory_kwargs`` (:func:`steadygrad.nn.factory.call_factory`); the MLP keys
    are then not allowed. ``rewrites`` lists :mod:`steadygrad.nn.rewrite` steps applied, in
    order, to the built model (either kind).

    ``depth = 3`` with ``units = 100`` is accepted in files as a shorthand for
    ``hidden = [100, 100, 100]`` (the resolved config stores ``hidden``). The other
    architectures' sections are in :mod:`steadygrad.experiments.archs`.

    Example:
        >>> ModelConfig().hidden, ModelConfig().arch
        ((300, 100), 'mlp')
    """

    hidden: tuple[int, ...] = field(default=(300, 100), metadata=_m(ck.int_list))
    activation: Component = shared_option("activation")
    kernel_initializer: Component = shared_option("kernel_initializer")
    bias_initializer: Component = shared_option("bias_initializer")
    batch_norm: str = field(default="none", metadata=_m(ck.choice("none", "before", "after")))
    input_batch_norm: bool = field(default=False, metadata=_m(ck.boolean))
    dropout: float = shared_option("dropout")
    input_dropout: float = field(default=0.0, metadata=_m(_names.dropout_rate))
    dropout_kind: str = shared_option("dropout_kind")
    l1: float = shared_option("l1")
    l2: float = shared_option("l2")
    max_norm: float | None = shared_option("max_norm")
    bn_momentum: float = shared_option("bn_momentum")
    bn_eps: float = shared_option("bn_eps")
    seed: int | None = shared_option("seed")
    factory: str | None = field(default=None, metadata=_m(_src.factory))
    factory_kwargs: tuple[tuple[str, Any], ...] = field(default=(),
                                                        metadata=_m(_src.factory_kwargs))
    rewrites: tuple[Component, ...] = shared_option("rewrites")

    @property
    def kwargs(self) -> dict[str, Any]:
        """The factory's keyword arguments as a plain dict (lists restored)."""
        return {k: ck.thaw(v) for k, v in self.factory_kwargs}

    @property
    def arch(self) -> str:
        """Always ``"mlp"`` (not stored: an MLP section needs no ``arch`` key)."""
        return "mlp"


_MODEL_SOURCE = ("factory", "factory_kwargs", "rewrites", "seed")
"""``[model]`` keys that apply to any model; the others are the MLP's."""


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """``[train.early_stopping]``: Keras ``EarlyStopping`` arguments, with Keras defaults.

    Example:
        >>> EarlyStoppingConfig().monitor
        'val_loss'
    """

    monitor: str = field(default="val_loss", metadata=_m(_names.monitor))
    min_delta: float = field(default=0.0, metadata=_m(ck.non_negative_float))
    patience: int = field(default=0, metadata=_m(ck.integer(0)))
    mode: str = field(default="auto", metadata=_m(ck.choice("auto", "min", "max")))
    baseline: float | None = field(default=None, metadata=_m(ck.optional(ck.number)))
    restore_best_weights: bool = field(default=False, metadata=_m(ck.boolean))
    start_from_epoch: int = field(default=0, metadata=_m(ck.integer(0)))


def _early_stopping(value: Any, path: str) -> EarlyStoppingConfig:
    """``[train.early_stopping]`` table -> :class:`EarlyStoppingConfig`."""
    out: EarlyStoppingConfig = _build(EarlyStoppingConfig, value, path)
    return out


@dataclass(frozen=True)
class TrainConfig:
    """``[train]``: keyword arguments of ``steadygrad.train.loop.fit``.

    Example:
        >>> TrainConfig().optimizer.name
        'sgd'
    """

    epochs: int = field(default=10, metadata=_m(ck.positive_int))
    batch_size: int = field(default=32, metadata=_m(ck.positive_int))
    seed: int = field(default=0, metadata=_m(ck.integer(0)))
    optimizer: OptimizerConfig = field(default=OptimizerConfig(), metadata=_m(_names.optimizer))
    schedule: Component | None = field(default=None, metadata=_m(ck.optional(_names.schedule)))
    early_stopping: EarlyStoppingConfig | None = field(
        default=None, metadata=_m(ck.optional(_early_stopping))
    )
    on_non_finite: str = field(
        default="stop", metadata=_m(ck.choice("stop", "skip", "raise"))
    )


@dataclass(frozen=True)
class DiagnosticsConfig:
    """``[diagnostics]``: the gradient-health monitor (``GradientMonitor(model, every=...)``).

    Example:
        >>> DiagnosticsConfig().every
        10
    """

    enabled: bool = field(default=True, metadata=_m(ck.boolean))
    every: int = field(default=10, metadata=_m(ck.positive_int))
    tensorboard: str | None = field(default=None, metadata=_m(ck.optional(ck.string)))
    """Folder for TensorBoard event files (``fit(tensorboard=...)``); relative to the working
    directory. None: no TensorBoard output."""


@dataclass(frozen=True)
class RunConfig:
    """One run: a name and the four sections.

    Example:
        >>> RunConfig().train.epochs
        10
    """

    name: str = field(default="run", metadata=_m(ck.string))
    data: DataConfig = field(default_factory=DataConfig)
    model: AnyModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)


_SECTIONS: dict[str, type] = {
    "data": DataConfig,  # validated by _names.data
    "model": ModelConfig,
    "train": TrainConfig,
    "diagnostics": DiagnosticsConfig,
}


def _table(raw: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(path or "config", raw, "a table (mapping of keys to values)")
    for key in raw:
        if not isinstance(key, str):
            raise ConfigError(f"{path}.{key}" if path else str(key), key, "a string key")
    return raw


def _build(cls: type, raw: Any, path: str) -> Any:
    """Validate the table ``raw`` into the dataclass ``cls`` (generic over the sections)."""
    raw = _table(raw, path)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise ck.unknown_key(path, key, fields)
    kwargs = {}
    for name, fld in fields.items():
        if name not in raw:
            continue
        sub = f"{path}.{name}" if path else name
        kwargs[name] = fld.metadata["check"](raw[name], sub)
    return cls(**kwargs)


def config_from_dict(raw: Mapping[str, Any]) -> RunConfig:
    """Validate a plain table (parsed TOML/YAML/JSON) into a :class:`RunConfig`.

    Missing keys take the defaults shown on each dataclass; registry names are checked
    against the registries of the modules that use them.

    Args:
        raw: the table, e.g. ``tomllib.load(f)``.

    Returns:
        The frozen, validated config.

    Raises:
        ConfigError: the first invalid field, with its path, value, what is allowed and a hint.

    Example:
        >>> config_from_dict({"train": {"epochs": 0}})
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: train.epochs: got 0; expected an integer >= 1
    """
    raw = _table(raw, "")
    allowed = ("name", *_SECTIONS)
    for key in raw:
        if key not in allowed:
            raise ck.unknown_key("", key, allowed)
    kwargs: dict[str, Any] = {}
    if "name" in raw:
        kwargs["name"] = ck.string(raw["name"], "name")
    for key, cls in _SECTIONS.items():
        if key in raw:
            if cls is ModelConfig:  # any arch: steadygrad.experiments.archs
                from steadygrad.experiments.archs import model_section

                kwargs[key] = model_section(raw[key])
            elif cls is DataConfig:
                kwargs[key] = _names.data(raw[key], key)
            else:
                kwargs[key] = _build(cls, raw[key], key)
    return RunConfig(**kwargs)


def _plain(value: Any) -> Any:
    if isinstance(value, ModelConfig):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if value.factory is not None:  # a factory's model: only the keys that apply to it
            out = {k: v for k, v in out.items() if k in _MODEL_SOURCE}
            out["factory_kwargs"] = value.kwargs
        else:
            del out["factory"], out["factory_kwargs"]
        if value.rewrites:
            out["rewrites"] = [c.to_value() for c in value.rewrites]
        else:
            del out["rewrites"]
        return out
    if isinstance(value, Component):
        return value.to_value()
    if dataclasses.is_dataclass(value) and hasattr(value, "rewrites"):  # another arch
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
               if f.name != "rewrites"}
        if value.rewrites:  # last, after the builder's keys; absent rather than empty
            out["rewrites"] = [c.to_value() for c in value.rewrites]
        return out
    if isinstance(value, DataConfig):
        return {"name": value.name, **value.kwargs}
    if isinstance(value, OptimizerConfig):
        return value.to_value()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return ck.thaw(value)


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    """The plain table of ``config`` (lists, not tuples; unset optional fields are None).

    Example:
        >>> d = config_to_dict(RunConfig(name="a"))
        >>> d["model"]["hidden"], d["train"]["optimizer"]["name"], d["model"]["max_norm"]
        ([300, 100], 'sgd', None)
    """
    if not isinstance(config, RunConfig):
        raise ConfigError("config", config, "a RunConfig", hint="use config_from_dict first")
    out: dict[str, Any] = _plain(config)
    return out
