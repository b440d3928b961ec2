"""Optimizers by name: ``torch.optim`` with Keras-named hyperparameters and Keras defaults.

``make_optimizer("adam", model.parameters(), learning_rate=1e-3, beta_1=0.9)`` builds a plain
``torch.optim.Adam``; nothing is subclassed, so every PyTorch tool (schedulers, checkpoints,
``zero_grad``) works unchanged. The names and defaults follow ``keras/src/optimizers/*.py`` so
that a ported Keras recipe starts from the same numbers. Where torch defaults differ we take the
Keras value; the table below lists every default and its torch counterpart.

===========  ===========================  ===========  =====================  ==============
optimizer    hyperparameter (Keras name)  our default  torch name (default)   note
===========  ===========================  ===========  =====================  ==============
sgd          learning_rate                0.01         lr (0.001)             Keras
sgd          momentum                     0.0          momentum (0)
sgd          nesterov                     False        nesterov (False)
sgd          weight_decay                 0.0          weight_decay (0)       (a)
momentum     momentum                     0.9          SGD momentum           alias, lr 0.01
nesterov     momentum, nesterov           0.9, True    SGD momentum/nesterov  alias, lr 0.01
adagrad      learning_rate                0.001        lr (0.01)              Keras
adagrad      initial_accumulator_value    0.1          same name (0)          Keras
adagrad      epsilon                      1e-7         eps (1e-10)            Keras, (b)
rmsprop      learning_rate                0.001        lr (0.01)              Keras
rmsprop      rho                          0.9          alpha (0.99)           Keras
rmsprop      momentum                     0.0          momentum (0)
rmsprop      epsilon                      1e-7         eps (1e-8)             Keras, (b)
rmsprop      centered                     False        centered (False)
adam         learning_rate                0.001        lr (0.001)
adam         beta_1, beta_2               0.9, 0.999   betas (0.9, 0.999)
adam         epsilon                      1e-7         eps (1e-8)             Keras, (c)
adam         amsgrad                      False        amsgrad (False)
nadam        learning_rate                0.001        lr (0.002)             Keras
nadam        beta_1, beta_2               0.9, 0.999   betas (0.9, 0.999)
nadam        epsilon                      1e-7         eps (1e-8)             Keras
nadam        momentum_decay               1.0          momentum_decay (0.004) Keras, (d)
adamax       learning_rate                0.001        lr (0.002)             Keras
adamax       beta_1, beta_2               0.9, 0.999   betas (0.9, 0.999)
adamax       epsilon                      1e-7         eps (1e-8)             Keras, (b)
adamw        learning_rate                0.001        lr (0.001)
adamw        weight_decay                 0.004        weight_decay (0.01)    Keras
adamw        beta_1, beta_2               0.9, 0.999   betas (0.9, 0.999)
adamw        epsilon                      1e-7         eps (1e-8)             Keras, (c)
adamw        amsgrad                      False        amsgrad (False)
===========  ===========================  ===========  =====================  ==============

Notes where the *update rule* (not just a default) differs from Keras:

(a) torch SGD adds ``weight_decay * w`` to the gradient (L2, coupled); Keras subtracts
    ``lr * weight_decay * w`` from the weight (decoupled). They coincide without momentum.
(b) Epsilon placement: Keras divides by ``sqrt(acc + eps)`` (Adagrad, RMSprop) or
    ``max(beta_2 u, |g|) + eps`` (Adamax); torch by ``sqrt(acc) + eps`` and
    ``max(beta_2 u, |g| + eps)``. The updates differ by a relative ~eps/sqrt(acc).
(c) Keras's Adam epsilon is the paper's "epsilon hat" (added to the *uncorrected* ``sqrt(v)``);
    torch adds it to the bias-corrected ``sqrt(v_hat)``, i.e. Keras eps equals torch eps times
    ``sqrt(1 - beta_2**t)``. Only the first steps of a near-zero gradient notice.
(d) torch NAdam's momentum schedule is ``mu_t = beta_1 (1 - 0.5 * 0.96**(t * momentum_decay))``
    (Dozat 2016 uses ``momentum_decay = 0.004``); Keras uses ``0.96**t``, i.e.
    ``momentum_decay = 1``. With ``momentum_decay=1.0`` the update equals Keras's Nadam exactly.
(e) Keras RMSprop keeps ``lr`` inside its momentum buffer, torch multiplies by it afterwards;
    the updates agree while the learning rate is constant.

A named optimizer is built with ``foreach=True`` (torch's multi-tensor kernels): on CPU torch
defaults to the per-tensor loop, which made the deep benchmark net's Nadam step 1.4x slower
eagerly and doubled its compile time (``docs/benchmarks.md``, "Trainer speed"). The update is
the same formula in the same order; tests compare it with torch's default path.

Example:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> opt = make_optimizer("rmsprop", [w])
    >>> type(opt).__name__, opt.defaults["alpha"], opt.defaults["eps"]
    ('RMSprop', 0.9, 1e-07)
    >>> make_optimizer("adam", [w], beta1=0.8)
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: optimizer.adam: got 'beta1'; ... did you mean 'beta_1'?
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from steadygrad._registry import Registry
from steadygrad.errors import ConfigError

__all__ = ["OPTIMIZERS", "OptimizerSpec", "make_optimizer", "torch_arguments"]

ParamsT = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


@dataclass(frozen=True)
class OptimizerSpec:
    """How one named optimizer maps onto ``torch.optim``.

    Args:
        torch_class: the ``torch.optim.Optimizer`` subclass that does the work.
        defaults: every accepted hyperparameter under its Keras name, with its default.
        renames: Keras name -> torch keyword (``beta_1``/``beta_2`` become ``betas``).
        fixed: torch keywords set by the name itself (``momentum`` -> ``nesterov=False``).

    Example:
        >>> spec = OPTIMIZERS.get("adagrad")
        >>> spec.torch_class.__name__, spec.defaults["initial_accumulator_value"]
        ('Adagrad', 0.1)
    """

    torch_class: type[torch.optim.Optimizer]
    defaults: Mapping[str, Any]
    renames: Mapping[str, str] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def translate(self, hyper: Mapping[str, Any]) -> dict[str, Any]:
        """Torch keyword arguments for the Keras-named ``hyper`` (already validated).

        >>> OPTIMIZERS.get("adam").translate({"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-7})
        {'betas': (0.8, 0.99), 'eps': 1e-07}
        """
        out: dict[str, Any] = {}
        for key, value in hyper.items():
            if key == "beta_1":
                out["betas"] = (value, hyper["beta_2"])
            elif key != "beta_2":
                out[self.renames.get(key, key)] = value
        out.update(self.fixed)
        return out


_ADAM_FAMILY = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
_LR_EPS = {"learning_rate": "lr", "epsilon": "eps"}

OPTIMIZERS: Registry[OptimizerSpec] = Registry("optimizer")
OPTIMIZERS.add(
    "sgd",
    OptimizerSpec(
        torch.optim.SGD,
        {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0},
        _LR_EPS,
    ),
    "gradient_descent",
)
OPTIMIZERS.add(
    "momentum",
    OptimizerSpec(
        torch.optim.SGD,
        {"learning_rate": 0.01, "momentum": 0.9, "weight_decay": 0.0},
        _LR_EPS,
        {"nesterov": False},
    ),
    "sgd_momentum",
)
OPTIMIZERS.add(
    "nesterov",
    OptimizerSpec(
        torch.optim.SGD,
        {"learning_rate": 0.01, "momentum": 0.9, "weight_decay": 0.0},
        _LR_EPS,
        {"nesterov": True},
    ),
    "nag",
)
OPTIMIZERS.add(
    "adagrad",
    OptimizerSpec(
        torch.optim.Adagrad,
        {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
        _LR_EPS,
    ),
)
OPTIMIZERS.add(
    "rmsprop",
    OptimizerSpec(
        torch.optim.RMSprop,
        {
            "learning_rate": 0.001,
            "rho": 0.9,
            "momentum": 0.0,
            "epsilon": 1e-7,
            "centered": False,
        },
        {**_LR_EPS, "rho": "alpha"},
    ),
)
OPTIMIZERS.add(
    "adam",
    OptimizerSpec(
        torch.optim.Adam, {"learning_rate": 0.001, **_ADAM_FAMILY, "amsgrad": False}, _LR_EPS
    ),
)
OPTIMIZERS.add(
    "nadam",
    OptimizerSpec(
        torch.optim.NAdam,
        {"learning_rate": 0.001, **_ADAM_FAMILY, "momentum_decay": 1.0},
        _LR_EPS,
    ),
)
OPTIMIZERS.add(
    "adamax",
    OptimizerSpec(torch.optim.Adamax, {"learning_rate": 0.001, **_ADAM_FAMILY}, _LR_EPS),
)
OPTIMIZERS.add(
    "adamw",
    OptimizerSpec(
        torch.optim.AdamW,
        {"learning_rate": 0.001, "weight_decay": 0.004, **_ADAM_FAMILY, "amsgrad": False},
        _LR_EPS,
    ),
)


# ---------------------------------------------------------------------------- validation
def _real(path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(path, value, "a real number")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(path, value, "a finite number")
    return value


def _positive(path: str, value: Any) -> float:
    value = _real(path, value)
    if value <= 0:
        raise ConfigError(path, value, "a number > 0")
    return value


def _non_negative(path: str, value: Any) -> float:
    value = _real(path, value)
    if value < 0:
        raise ConfigError(path, value, "a number >= 0")
    return value


def _unit(path: str, value: Any) -> float:
    value = _real(path, value)
    if not 0.0 <= value < 1.0:
        raise ConfigError(path, value, "a number in [0, 1)")
    return value


def _flag(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, value, "True or False")
    return value


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "learning_rate": _positive,
    "momentum": _unit,
    "rho": _unit,
    "beta_1": _unit,
    "beta_2": _unit,
    "epsilon": _non_negative,
    "weight_decay": _non_negative,
    "initial_accumulator_value": _non_negative,
    "momentum_decay": _positive,
    "nesterov": _flag,
    "centered": _flag,
    "amsgrad": _flag,
}


_TORCH_TO_KERAS = {
    "lr": "learning_rate",
    "eps": "epsilon",
    "alpha": "rho",
    "betas": "beta_1 and beta_2",
}


def _unknown(path: str, given: str, allowed: Iterable[str]) -> ConfigError:
    allowed = sorted(allowed)
    close = difflib.get_close_matches(given, allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else None
    return ConfigError(path, given, f"one of {', '.join(allowed)}", hint=hint)


def _legacy_decay(path: str, decay: Any) -> ConfigError:
    """Legacy Keras ``decay=d`` is power scheduling ``lr0 / (1 + t/s)`` with ``s = 1/d``."""
    s = f"{1 / decay:g}" if isinstance(decay, (int, float)) and decay > 0 else "1/decay"
    return ConfigError(
        f"{path}.decay", decay, "no 'decay' key: legacy Keras decay is a learning-rate schedule",
        hint=f"use power scheduling, lr0 / (1 + step/s) with s = 1/decay: "
        f"schedule={{'name': 'power', 's': {s}}} in fit, or [train.schedule] name = \"power\", "
        f"s = {s} in a config",
    )


def _validated(name: str, spec: OptimizerSpec, hyper: Mapping[str, Any]) -> dict[str, Any]:
    path = f"optimizer.{name}"
    for key in hyper:
        if key not in spec.defaults:
            if key == "decay":  # legacy Keras SGD(decay=d): lr0 / (1 + d * t), the chapter's
                raise _legacy_decay(path, hyper[key])
            keras = _TORCH_TO_KERAS.get(key)
            if keras is not None and keras.split()[0] in spec.defaults:
                raise ConfigError(
                    path, key, f"one of {', '.join(sorted(spec.defaults))}",
                    hint=f"use {keras} (the Keras name of torch's {key!r})",
                )
            raise _unknown(path, key, spec.defaults)
    merged = {**spec.defaults, **hyper}
    out = {key: _CHECKS[key](f"{path}.{key}", value) for key, value in merged.items()}
    if out.get("nesterov") and out["momentum"] == 0.0:
        raise ConfigError(
            f"{path}.nesterov", True, "momentum > 0 with nesterov=True", hint="set momentum=0.9"
        )
    return out


def torch_arguments(name: str, **hyper: Any) -> dict[str, Any]:
    """The ``torch.optim`` keyword arguments that ``make_optimizer(name, ...)`` passes.

    Args:
        name: a registered optimizer name (see ``OPTIMIZERS.names()``).
        **hyper: Keras-named hyperparameters; missing ones take the defaults in the table.

    Returns:
        The validated, translated keyword arguments (``lr``, ``betas``, ``eps``, ...).

    Raises:
        ConfigError: an unknown name or hyperparameter, or an invalid value.

    Example:
        >>> torch_arguments("rmsprop", learning_rate=0.01)
        {'lr': 0.01, 'alpha': 0.9, 'momentum': 0.0, 'eps': 1e-07, 'centered': False}
    """
    canonical = OPTIMIZERS.canonical(name)
    spec = OPTIMIZERS.get(canonical)
    return spec.translate(_validated(canonical, spec, hyper))


def _materialize(params: Any) -> list[Any]:
    if isinstance(params, torch.Tensor):
        params = [params]
    if isinstance(params, (str, bytes, Mapping)) or not isinstance(params, Iterable):
        raise ConfigError(
            "params", params, "an iterable of tensors or of param-group dicts",
            hint="pass model.parameters()",
        )
    items = list(params)
    if not items:
        raise ConfigError(
            "params", items, "at least one parameter", hint="is the model empty or all frozen?"
        )
    groups: list[Any] = []
    for item in items:
        if isinstance(item, Mapping):
            group = dict(item)
            if "learning_rate" in group:  # accept the Keras name inside groups too
                group["lr"] = _positive("params.learning_rate", group.pop("learning_rate"))
            groups.append(group)
        elif isinstance(item, torch.Tensor):
            groups.append(item)
        else:
            raise ConfigError("params", item, "a tensor or a param-group dict")
    return groups


def make_optimizer(
    identifier: str | torch.optim.Optimizer | type[torch.optim.Optimizer],
    params: ParamsT,
    *,
    learning_rate: float | None = None,
    **hyper: Any,
) -> torch.optim.Optimizer:
    """Build a ``torch.optim`` optimizer from a name and Keras-named hyperparameters.

    Args:
        identifier: a registered name (``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adagrad"``,
            ``"rmsprop"``, ``"adam"``, ``"nadam"``, ``"adamax"``, ``"adamw"``; case-insensitive),
            an existing ``Optimizer`` (returned as is), or an ``Optimizer`` subclass
            (instantiated with ``lr=learning_rate`` and ``hyper`` under *torch* names).
        params: an iterable of tensors or of param-group dicts (torch keys; ``learning_rate``
            is accepted as a synonym of ``lr`` inside a group).
        learning_rate: the learning rate; None takes the optimizer's default (see the table).
        **hyper: further hyperparameters under their Keras names (``beta_1``, ``rho``, ...).

    Returns:
        A ``torch.optim.Optimizer``.

    Raises:
        ConfigError: unknown name/hyperparameter (with a close match), invalid value
            (``learning_rate <= 0``, NaN, momentum outside [0, 1), ...), empty ``params``,
            or hyperparameters given together with an existing optimizer instance.

    Example:
        >>> import torch
        >>> w = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = make_optimizer("nesterov", [w], learning_rate=0.1)
        >>> opt.defaults["momentum"], opt.defaults["nesterov"]
        (0.9, True)
        >>> make_optimizer(opt, [w]) is opt
        True
        >>> make_optimizer("sgd", [w], learning_rate=-1)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: optimizer.sgd.learning_rate: got -1.0; expected a number > 0
    """
    if isinstance(identifier, torch.optim.Optimizer):
        if learning_rate is not None or hyper:
            given = sorted([*hyper, *(["learning_rate"] if learning_rate is not None else [])])
            raise ConfigError(
                "optimizer", given, "no hyperparameters with an optimizer instance",
                hint="set them when constructing the optimizer, or pass its name or class",
            )
        return identifier
    if inspect.isclass(identifier) and issubclass(identifier, torch.optim.Optimizer):
        accepted = set(inspect.signature(identifier.__init__).parameters) - {"self", "params"}
        for key in hyper:
            if key not in accepted:
                raise _unknown(f"optimizer.{identifier.__name__}", key, accepted)
        kwargs = dict(hyper)
        if learning_rate is not None:
            kwargs["lr"] = _positive("learning_rate", learning_rate)
        return identifier(_materialize(params), **kwargs)
    if not isinstance(identifier, str):
        raise ConfigError(
            "optimizer", identifier,
            f"a name (one of {', '.join(OPTIMIZERS.names())}), a torch.optim.Optimizer "
            "or an Optimizer subclass",
        )
    if learning_rate is not None:
        hyper["learning_rate"] = learning_rate
    canonical = OPTIMIZERS.canonical(identifier)
    spec = OPTIMIZERS.get(canonical)
    kwargs = spec.translate(_validated(canonical, spec, hyper))
    kwargs["foreach"] = True  # torch's multi-tensor kernels (its CPU default is per-tensor)
    return spec.torch_class(_materialize(params), **kwargs)
