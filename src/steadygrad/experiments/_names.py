"""Checks of registered names and their arguments, through the owning modules (private).

Each check validates a name against the registry of the module that will use it
(``steadygrad.nn.activations.ACTIVATIONS``, ...) and the arguments with that module's own
validation, then re-labels the error with the config path (``model.activation.alpha``).
A registry whose module is not importable is not checked here; the run then fails when the
module is needed.

Example:
    >>> activation({"name": "leaky_relu", "alpha": 0.1}, "model.activation")
    Component(name='leaky_relu', options=(('alpha', 0.1),))
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from steadygrad.errors import ConfigError
from steadygrad.experiments import _checks as ck

__all__ = [
    "activation",
    "data",
    "dataset",
    "dropout_rate",
    "initializer",
    "momentum",
    "monitor",
    "optimizer",
    "registry",
    "schedule",
]


def registry(module: str, attr: str) -> Any:
    """The registry ``attr`` of ``module``, or None while that module does not exist.

    >>> registry("steadygrad.nn.activations", "ACTIVATIONS").kind
    'activation'
    """
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return getattr(mod, attr, None)


def rebase(err: ConfigError, old: str, new: str) -> ConfigError:
    """``err`` with the path prefix ``old`` replaced by ``new`` (same class, same message tail).

    >>> print(rebase(ConfigError("elu.alpha", -1, "a number"), "elu", "model.activation"))
    model.activation.alpha: got -1; expected a number
    """
    path = err.path
    if path == old or not old:
        path = new
    elif path.startswith(old + "."):
        path = new + path[len(old) :]
    else:
        path = f"{new} ({path})"
    out = err.__class__(path, err.received, err.expected, err.hint)
    return out


def _option_value(value: Any, path: str) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(path, value, "a finite number")
    limit = ck.INT_MAX if isinstance(value, int) else ck.FLOAT_MAX
    if not isinstance(value, bool) and isinstance(value, (int, float)) and abs(value) > limit:
        raise ConfigError(path, value, f"a number in [-{ck.FLOAT_MAX:.2g}, {ck.FLOAT_MAX:.2g}] "
                          f"(float32 range; integers within 64 bits)", hint="use a smaller value")
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Sequence):
        return tuple(_option_value(v, f"{path}[{i}]") for i, v in enumerate(value))
    raise ConfigError(path, value, "a number, string, boolean or list")


def _split(value: Any, path: str) -> tuple[str, dict[str, Any]]:
    """``"name"`` or ``{name = "...", **kwargs}`` -> (name, kwargs)."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping):
        kwargs = dict(value)
        if "name" not in kwargs:
            raise ConfigError(f"{path}.name", None, "a name", hint=f"write {path} = {{name = ...}}")
        name = kwargs.pop("name")
        if not isinstance(name, str):
            raise ConfigError(f"{path}.name", name, "a name (string)")
        for key in kwargs:
            if not isinstance(key, str):
                raise ConfigError(path, key, "string argument names")
        return name, kwargs
    raise ConfigError(path, value, "a name or a table {name = ..., arguments...}")


def _signature_check(fn: Callable[..., Any], kwargs: Mapping[str, Any], path: str,
                     skip: tuple[str, ...]) -> None:
    """Unknown keyword arguments of ``fn`` (ignoring ``skip``) fail with a close match."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n, p in params.items() if n not in skip
               and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in kwargs:
        if key not in allowed:
            raise ck.unknown_key(path, key, allowed)


def _component(value: Any, path: str, module: str, attr: str, skip: tuple[str, ...],
               validate: Callable[[str, dict[str, Any]], Any] | None = None) -> Any:
    from steadygrad.experiments.config import Component

    name, kwargs = _split(value, path)
    kwargs = {k: _option_value(v, f"{path}.{k}") for k, v in kwargs.items()}
    reg = registry(module, attr)
    if reg is not None:
        try:
            name = reg.canonical(name)
        except ConfigError as err:
            raise rebase(err, err.path, path) from None
        _signature_check(reg.get(name), kwargs, path, skip)
        if validate is not None:
            try:
                validate(name, {k: ck.thaw(v) for k, v in kwargs.items()})
            except ConfigError as err:
                if err.path in kwargs or err.path.rsplit(".", 1)[-1] in kwargs:
                    key = err.path.rsplit(".", 1)[-1]
                    raise rebase(err, err.path, f"{path}.{key}") from None
                raise rebase(err, name if err.path.startswith(name) else err.path, path) from None
    return Component(name, tuple(sorted(kwargs.items())))


def activation(value: Any, path: str) -> Any:
    """A registered activation, bare or with arguments (``{name = "elu", alpha = 0.5}``).

    >>> activation("SiLU", "model.activation")
    Component(name='swish', options=())
    """

    def check(name: str, kwargs: dict[str, Any]) -> Any:
        from steadygrad.nn import activations  # validates without building a module

        return activations.check(name, **kwargs)

    return _component(value, path, "steadygrad.nn.activations", "ACTIVATIONS", (), check)


def initializer(value: Any, path: str) -> Any:
    """A registered initializer, bare or with arguments (``variance_scaling``'s ``scale``...).

    >>> initializer("He-Normal", "model.kernel_initializer").name
    'he_normal'
    """
    def build(name: str, kwargs: dict[str, Any]) -> Any:
        from steadygrad.nn import init

        return init.get(name, **kwargs)

    return _component(value, path, "steadygrad.nn.init", "INITIALIZERS",
                      ("tensor", "generator", "activation"), build)


def schedule(value: Any, path: str) -> Any:
    """A registered learning-rate schedule with its arguments (``total_steps`` is the run's).

    >>> schedule({"name": "1cycle", "final_div": 100.0}, "train.schedule")
    Component(name='one_cycle', options=(('final_div', 100.0),))
    """
    def build(name: str, kwargs: dict[str, Any]) -> Any:
        from steadygrad.optim import schedules

        return schedules.make_schedule(name, learning_rate=1e-3, total_steps=10**9, **kwargs)

    return _component(value, path, "steadygrad.optim.schedules", "SCHEDULES",
                      ("lr", "lr0", "max_lr", "total_steps"), build)


def dataset(value: Any, path: str) -> str:
    """A registered dataset name (canonical form).

    >>> dataset("digits", "data.name")
    'digits'
    """
    name = ck.string(value, path)
    reg = registry("steadygrad.data.datasets", "DATASETS")
    if reg is not None:
        try:
            return str(reg.canonical(name))
        except ConfigError as err:
            raise rebase(err, err.path, path) from None
    return name


_DATA_CHECKS: dict[str, ck.Check] = {
    "val_size": ck.optional(ck.fraction_or_count),
    "test_size": ck.optional(ck.fraction_or_count),
    "n_train": ck.optional(ck.positive_int),
    "seed": ck.optional(ck.integer(0)),
    "stratify": ck.boolean,
    "download": ck.boolean,
    "root": ck.string,
    "path": ck.string,
}


def data(value: Any, path: str) -> Any:
    """``[data]``: a dataset ``name`` and the arguments of its loader.

    >>> data({"name": "digits", "n_train": 100}, "data")
    DataConfig(name='digits', options=(('n_train', 100),))
    >>> data({"name": "digits", "val_sise": 0.1}, "data")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: data.val_sise: got unknown key 'val_sise'; ...;
    did you mean 'val_size'?
    """
    from steadygrad.experiments.config import DataConfig

    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping):
        raise ConfigError(path, value, "a table with a dataset name and its loader's arguments")
    kwargs = dict(value)
    name = dataset(kwargs.pop("name", "digits"), f"{path}.name")
    reg = registry("steadygrad.data.datasets", "DATASETS")
    if reg is not None:
        _signature_check(reg.get(name), kwargs, path, ("dtype",))
    options = {}
    for key, item in kwargs.items():
        if item is None:  # None means the loader's default: left out, so files round-trip
            continue
        sub = f"{path}.{key}"
        check = _DATA_CHECKS.get(key)
        options[key] = check(item, sub) if check is not None else _option_value(item, sub)
    if "path" in options and not os.path.isfile(os.path.expanduser(options["path"])):
        raise ConfigError(f"{path}.path", options["path"], "an existing data file",
                          hint="check the path (relative paths start at the working directory)")
    return DataConfig(name, tuple(sorted(options.items())))


def momentum(value: Any, path: str) -> float:
    """A batch-norm momentum in [0, 1] (PyTorch convention: weight of the new batch).

    >>> momentum(0.99, "model.bn_momentum")
    0.99
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    raise ConfigError(path, value, "a number in [0, 1] (PyTorch convention)",
                      hint="Keras momentum=0.99 is bn_momentum=0.01 here")


def dropout_rate(value: Any, path: str) -> float:
    """A dropout rate in [0, 1).

    >>> dropout_rate(1.0, "model.dropout")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: model.dropout: got 1.0; expected a number in [0, 1)
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1:
        return float(value)
    raise ConfigError(path, value, "a number in [0, 1)")


def dropout_kind(value: Any, path: str) -> str:
    """A dropout kind of ``steadygrad.nn.build.DROPOUT_KINDS`` (the one list of them).

    >>> dropout_kind("mc", "model.dropout_kind")
    'mc'
    """
    from steadygrad.nn.build import DROPOUT_KINDS

    return str(ck.choice(*DROPOUT_KINDS)(value, path))


def optimizer(value: Any, path: str) -> Any:
    """``[train.optimizer]``: a name or a table of name, learning rate, clipping and
    Keras-named hyperparameters, validated by ``steadygrad.optim.optimizers``.

    The result is the typed :class:`~steadygrad.optim.settings.OptimizerConfig` that ``fit``
    takes as it is.

    >>> optimizer({"name": "sgd", "momentum": 0.9, "learning_rate": 0.1}, "train.optimizer")
    OptimizerConfig(name='sgd', learning_rate=0.1, clipnorm=None, clipvalue=None,
    global_clipnorm=None, options=(('momentum', 0.9),))
    >>> optimizer({"name": "adam", "beta1": 0.8}, "train.optimizer")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: train.optimizer.beta1: got unknown key 'beta1'; ...
    did you mean 'beta_1'?
    """
    from steadygrad.optim import optimizers
    from steadygrad.optim.clipping import CLIP_KEYS
    from steadygrad.optim.settings import OptimizerConfig

    if isinstance(value, Mapping) and "name" not in value:
        value = {"name": "sgd", **value}  # fit's default optimizer
    name, kwargs = _split(value, path)
    lr = ck.optional(ck.positive_float)(kwargs.pop("learning_rate", None),
                                        f"{path}.learning_rate")
    clips = {k: ck.optional(ck.positive_float)(kwargs.pop(k, None), f"{path}.{k}")
             for k in CLIP_KEYS}
    if clips["clipnorm"] is not None and clips["global_clipnorm"] is not None:
        # GradientClipper's rule, with the config path; clipvalue combines with either
        raise ConfigError(f"{path}.global_clipnorm", clips["global_clipnorm"],
                          "at most one of clipnorm (per tensor) and global_clipnorm "
                          "(all tensors)", hint="keep one; clipvalue may be added to either")
    options = {k: _option_value(v, f"{path}.{k}") for k, v in kwargs.items()}
    try:
        name = optimizers.OPTIMIZERS.canonical(name)
    except ConfigError as err:
        raise rebase(err, err.path, f"{path}.name") from None
    hyper = {k: ck.thaw(v) for k, v in options.items()}
    if lr is not None:
        hyper["learning_rate"] = lr
    try:  # the optimizer module's own validation: names, ranges, combinations
        optimizers.torch_arguments(name, **hyper)
    except ConfigError as err:
        old = f"optimizer.{name}"
        if err.path == old:  # an unknown hyperparameter: ``received`` is the key
            allowed = err.expected.removeprefix("one of ").split(", ")
            raise ck.unknown_key(path, err.received, allowed) from None
        raise rebase(err, old, path) from None
    return OptimizerConfig(name, lr, **clips, options=tuple(sorted(options.items())))


def monitor(value: Any, path: str) -> str:
    """A quantity ``fit`` logs: ``loss`` or a registered metric, optionally ``val_``-prefixed.

    >>> monitor("val_accuracy", "train.early_stopping.monitor")
    'val_accuracy'
    >>> monitor("val_los", "train.early_stopping.monitor")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: train.early_stopping.monitor: got 'val_los';
    expected loss or a metric name, optionally with val_ ...; did you mean 'val_loss'?
    """
    name = ck.string(value, path)
    metrics = registry("steadygrad.train.metrics", "METRICS")
    names = ["loss", *(metrics.all_names() if metrics is not None else [])]
    allowed = [*names, *(f"val_{n}" for n in names)]
    if name in allowed:
        return name
    raise ConfigError(path, value, "loss or a metric name, optionally with val_ (one of "
                      + ", ".join(allowed) + ")", ck.close_match_hint(name, allowed))
