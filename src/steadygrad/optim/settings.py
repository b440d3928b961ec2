"""One typed value for "which optimizer, how": from the config (or ``fit``'s argument) to the
torch optimizer and its clipper, with no dicts split and merged on the way.

``[train.optimizer]`` in a run config is parsed into an :class:`OptimizerConfig`
(``steadygrad.experiments``), ``fit_arguments`` hands that very object to ``fit``, and ``fit``
calls :meth:`OptimizerConfig.build`. A name or a Keras-style dict given to ``fit`` directly
becomes the same object through :meth:`OptimizerConfig.from_value`. The clipping keys live in
one place (:data:`steadygrad.optim.clipping.CLIP_KEYS`), the default learning rates in the
optimizer registry (:func:`steadygrad.optim.optimizers.default_learning_rate`).

Example:
    >>> import torch
    >>> spec = OptimizerConfig.from_value({"name": "sgd", "learning_rate": 0.1,
    ...                                    "momentum": 0.9, "clipnorm": 1.0})
    >>> spec
    OptimizerConfig(name='sgd', learning_rate=0.1, clipnorm=1.0, clipvalue=None,
    global_clipnorm=None, options=(('momentum', 0.9),))
    >>> opt, clipper = spec.build(torch.nn.Linear(2, 1).parameters())
    >>> type(opt).__name__, opt.defaults["momentum"], clipper.clipnorm
    ('SGD', 0.9, 1.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from steadygrad.errors import ConfigError
from steadygrad.optim.clipping import CLIP_KEYS, GradientClipper

__all__ = ["OptimizerConfig"]


def _thaw(value: Any) -> Any:
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class OptimizerConfig:
    """``[train.optimizer]`` / ``fit(optimizer=...)``: a registered name, the learning rate
    (None: the optimizer's Keras default), Keras clipping and Keras-named hyperparameters.

    The default is ``fit``'s: plain SGD. Clipping (``clipnorm``/``clipvalue``/
    ``global_clipnorm``) is applied before each step. ``options`` holds any other
    hyperparameter of the named optimizer (``momentum``, ``beta_1``, ...), validated by
    :mod:`steadygrad.optim.optimizers`.

    Example:
        >>> OptimizerConfig("sgd", 0.1, options=(("momentum", 0.9),)).kwargs
        {'learning_rate': 0.1, 'momentum': 0.9}
    """

    name: str = "sgd"
    learning_rate: float | None = None
    clipnorm: float | None = None
    clipvalue: float | None = None
    global_clipnorm: float | None = None
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        """Hyperparameters for ``make_optimizer`` (learning rate included, clipping excluded)."""
        out: dict[str, Any] = {}
        if self.learning_rate is not None:
            out["learning_rate"] = self.learning_rate
        out.update((k, _thaw(v)) for k, v in self.options)
        return out

    @property
    def clipping(self) -> dict[str, float]:
        """The clipping arguments that are set (``GradientClipper`` keywords)."""
        return {n: getattr(self, n) for n in CLIP_KEYS if getattr(self, n) is not None}

    def to_value(self) -> dict[str, Any]:
        """The plain table (every clipping key and the learning rate, set or None).

        >>> OptimizerConfig("adam", 0.01).to_value()["learning_rate"]
        0.01
        """
        out: dict[str, Any] = {"name": self.name, "learning_rate": self.learning_rate}
        out.update((k, getattr(self, k)) for k in CLIP_KEYS)
        out.update((k, _thaw(v)) for k, v in self.options)
        return out

    @classmethod
    def from_value(cls, value: str | Mapping[str, Any],
                   learning_rate: float | None = None) -> OptimizerConfig:
        """From a name or a Keras-style dict (``fit``'s ``optimizer``); ``learning_rate`` is
        ``fit``'s separate argument (it must agree with the dict's, if both are given). The
        hyperparameters are validated now, by the optimizer registry.

        >>> OptimizerConfig.from_value("adam", 0.01).kwargs
        {'learning_rate': 0.01}
        >>> OptimizerConfig.from_value({"momentum": 0.9})
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: optimizer: got {'momentum': 0.9}; expected a dict with a \
'name' key; ...
        """
        from steadygrad.optim.optimizers import OPTIMIZERS, torch_arguments

        if isinstance(value, str):
            spec: dict[str, Any] = {"name": value}
        elif isinstance(value, Mapping) and "name" in value:
            spec = dict(value)
        else:
            raise ConfigError("optimizer", value, "a dict with a 'name' key",
                              hint="e.g. {'name': 'sgd', 'learning_rate': 0.01, 'momentum': 0.9}")
        name = OPTIMIZERS.canonical(spec.pop("name"))
        lr = spec.pop("learning_rate", None)
        if lr is not None and learning_rate is not None and lr != learning_rate:
            raise ConfigError("learning_rate", learning_rate,
                              f"the same value as optimizer['learning_rate'] ({lr})",
                              hint="give the learning rate in one place")
        lr = learning_rate if lr is None else lr
        clips = {k: spec.pop(k) for k in CLIP_KEYS if k in spec}
        GradientClipper(**clips)  # validates the clipping values and their combination
        torch_arguments(name, **spec, **({} if lr is None else {"learning_rate": lr}))
        return cls(name, None if lr is None else float(lr), **clips,
                   options=tuple(sorted(spec.items())))

    def build(self, params: Iterable[torch.Tensor]) -> tuple[torch.optim.Optimizer,
                                                            GradientClipper | None]:
        """The torch optimizer over ``params`` and the clipper (None without clipping)."""
        from steadygrad.optim.optimizers import make_optimizer

        clipper = GradientClipper(**self.clipping) if self.clipping else None
        return make_optimizer(self.name, params, **self.kwargs), clipper
