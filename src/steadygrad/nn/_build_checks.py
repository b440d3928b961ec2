"""Argument checks and SELU self-normalization rules for :mod:`steadygrad.nn.build` (private)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn import activations

__all__ = [
    "BATCH_NORM_PLACEMENTS",
    "Activation",
    "InitSpec",
    "LayerSpec",
    "check_choice",
    "check_float",
    "check_int",
    "check_ints",
    "check_max_norm",
    "input_features",
    "resolve_layers",
    "selu_problems",
]

BATCH_NORM_PLACEMENTS: tuple[str, ...] = ("none", "before", "after")
"""Where a hidden layer's batch norm goes relative to its activation."""

_LAYER_KEYS = (
    "units", "activation", "kernel_initializer", "batch_norm", "dropout", "l1", "l2", "max_norm"
)
_OUTPUT_KEYS = ("kernel_initializer", "l1", "l2", "max_norm")
_SNN = "SELU self-normalization (Klambauer et al., 2017, 'Self-Normalizing Neural Networks')"

Activation = str | Mapping[str, Any] | nn.Module | type[nn.Module] | None
InitSpec = str | Mapping[str, Any] | Callable[..., torch.Tensor]


@dataclass(frozen=True)
class LayerSpec:
    """The resolved settings of one hidden layer (defaults + overrides).

    Example:
        >>> spec = LayerSpec(64, "relu", "he_normal", "none", 0.0, 0.0, 1e-4, None)
        >>> spec.units, spec.batch_norm, replace(spec, units=32).units
        (64, 'none', 32)
    """

    units: int
    activation: Activation
    kernel_initializer: InitSpec
    batch_norm: str
    dropout: float
    l1: float
    l2: float
    max_norm: float | None


def check_int(path: str, value: Any, minimum: int = 1) -> int:
    """``value`` if it is an int (not a bool) >= ``minimum``, else a ConfigError naming ``path``.

    Example:
        >>> check_int("hidden[0]", 64), check_int("seed", 0, minimum=0)
        (64, 0)
        >>> check_int("hidden[1]", True)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: hidden[1]: got True; expected an int >= 1
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(path, value, f"an int >= {minimum}")
    return value


def check_ints(path: str, value: Any, *, empty: bool = False, hint: str | None = None) -> list[int]:
    """``value`` as a list if it is a sequence (not a str) of ints >= 1, each checked by
    :func:`check_int` as ``path[i]``; ``empty``: an empty sequence is allowed.

    Example:
        >>> check_ints("filters", (32, 64)), check_ints("dense", (), empty=True)
        ([32, 64], [])
        >>> check_ints("filters", 32, hint="e.g. (32, 64)")
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: filters: got 32; expected a non-empty sequence ...
    """
    if isinstance(value, (str, int)) or not isinstance(value, Sequence) or not (value or empty):
        expected = "a sequence of positive ints (may be empty)" if empty else (
            "a non-empty sequence of positive ints")
        raise ConfigError(path, value, expected, hint=hint)
    return [check_int(f"{path}[{i}]", v) for i, v in enumerate(value)]


def check_float(path: str, value: Any, lo: float, hi: float, *, hi_open: bool = False) -> float:
    """``value`` as a float if finite and in ``[lo, hi]`` (``[lo, hi)`` with ``hi_open``).

    Example:
        >>> check_float("dropout", 0, 0.0, 1.0, hi_open=True)
        0.0
        >>> check_float("dropout", 1.0, 0.0, 1.0, hi_open=True)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: dropout: got 1.0; expected a float in [0.0, 1.0)
        >>> check_float("l2", float("nan"), 0.0, math.inf)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: l2: got nan; expected a float in [0.0, inf]
    """
    bounds = f"[{lo}, {hi})" if hi_open else f"[{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(path, value, f"a float in {bounds}")
    if value < lo or value > hi or (hi_open and value == hi):
        raise ConfigError(path, value, f"a float in {bounds}")
    return float(value)


def check_choice(path: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` if it is one of the ``allowed`` strings (exact match), else a ConfigError.

    Example:
        >>> check_choice("batch_norm", "after", BATCH_NORM_PLACEMENTS)
        'after'
        >>> check_choice("batch_norm", "After", BATCH_NORM_PLACEMENTS)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: batch_norm: got 'After'; expected one of none, before, after
    """
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(path, value, f"one of {', '.join(allowed)}")
    return value


def check_max_norm(path: str, value: Any) -> float | None:
    """None (no constraint) or a finite positive max-norm as a float.

    Example:
        >>> check_max_norm("max_norm", None), check_max_norm("max_norm", 3)
        (None, 3.0)
        >>> check_max_norm("max_norm", 0)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: max_norm: got 0; expected None or a positive float; ...
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(path, value, "None or a positive float", hint="e.g. max_norm=1.0")
    if not math.isfinite(value):
        raise ConfigError(path, value, "None or a positive float", hint="e.g. max_norm=1.0")
    return float(value)


def input_features(input_shape: Any) -> tuple[tuple[int, ...], int]:
    """One example's shape as a tuple and its number of features (the product).

    Example:
        >>> input_features(784), input_features((1, 28, 28)), input_features([3, 4])
        (((784,), 784), ((1, 28, 28), 784), ((3, 4), 12))
        >>> input_features((0, 28))
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: input_shape: got (0, 28); expected a non-empty tuple ...
    """
    shape = (input_shape,) if isinstance(input_shape, int) else input_shape
    if (
        not isinstance(shape, (tuple, list, torch.Size))
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
    ):
        raise ConfigError(
            "input_shape", input_shape, "a non-empty tuple of positive ints (no batch dim)",
            hint="e.g. (784,) or (1, 28, 28)",
        )
    return tuple(shape), math.prod(shape)

def resolve_layers(
    hidden: Sequence[int], defaults: LayerSpec, overrides: Mapping[Any, Mapping[str, Any]]
) -> tuple[list[LayerSpec], dict[str, Any]]:
    """Per-hidden-layer settings (defaults + validated overrides) and the output overrides.

    Example:
        >>> base = LayerSpec(0, "relu", "he_normal", "none", 0.0, 0.0, 0.0, None)
        >>> layers, head = resolve_layers([32, 16], base, {1: {"dropout": 0.2},
        ...                                                "output": {"l2": 1e-4}})
        >>> [(s.units, s.dropout) for s in layers], head
        ([(32, 0.0), (16, 0.2)], {'l2': 0.0001})
        >>> resolve_layers([32], base, {0: {"dropuot": 0.2}})
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: layer_overrides[0].dropuot: got 0.2; expected a key ...
        >>> resolve_layers([32], base, {2: {"dropout": 0.2}})
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: layer_overrides: got 2; expected a hidden-layer index ...
    """
    layers = [replace(defaults, units=check_int(f"hidden[{i}]", u)) for i, u in enumerate(hidden)]
    head: dict[str, Any] = {}
    if not isinstance(overrides, Mapping):
        raise ConfigError("layer_overrides", overrides, "a mapping {layer index: {setting: value}}")
    for key, settings in overrides.items():
        path = f"layer_overrides[{key!r}]"
        if key == "output":
            allowed: Sequence[str] = _OUTPUT_KEYS
        elif isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(layers):
            allowed = _LAYER_KEYS
        else:
            raise ConfigError(
                "layer_overrides", key,
                f"a hidden-layer index in 0..{len(layers) - 1} or 'output'",
            )
        if not isinstance(settings, Mapping):
            raise ConfigError(path, settings, f"a mapping with keys among {', '.join(allowed)}")
        for name in settings:
            if name not in allowed:
                raise ConfigError(
                    f"{path}.{name}", settings[name], f"a key among {', '.join(allowed)}"
                )
        if key == "output":
            head = dict(settings)
        else:
            layers[key] = replace(layers[key], **settings)
    for i, layer in enumerate(layers):
        p = f"layer_overrides[{i}]"
        check_int(f"{p}.units", layer.units)
        check_choice(f"{p}.batch_norm", layer.batch_norm, BATCH_NORM_PLACEMENTS)
        check_float(f"{p}.dropout", layer.dropout, 0.0, 1.0, hi_open=True)
        check_float(f"{p}.l1", layer.l1, 0.0, math.inf)
        check_float(f"{p}.l2", layer.l2, 0.0, math.inf)
        check_max_norm(f"{p}.max_norm", layer.max_norm)
    return layers, head


def selu_problems(
    layers: list[LayerSpec], acts: list[nn.Module], inits: list[str | None],
    *, dropout_kind: str, input_dropout: float, input_batch_norm: bool,
) -> list[str]:
    """One message per setting that breaks SELU self-normalization (or misuses alpha dropout).

    Rules of Klambauer et al. (2017): only SELU layers, LeCun normal init, alpha dropout (not
    plain dropout), no batch norm, no l1/l2/max-norm on the SELU layers.

    Example:
        >>> spec = LayerSpec(8, "selu", "lecun_normal", "none", 0.0, 0.0, 0.0, None)
        >>> layers = [spec, replace(spec, dropout=0.2)]
        >>> selu_problems(layers, [nn.SELU(), nn.SELU()], ["lecun_normal", "lecun_normal"],
        ...               dropout_kind="alpha", input_dropout=0.0, input_batch_norm=False)
        []
        >>> found = selu_problems(layers, [nn.SELU(), nn.SELU()], ["lecun_normal", "he_normal"],
        ...                       dropout_kind="dropout", input_dropout=0.0,
        ...                       input_batch_norm=False)
        >>> len(found), "LeCun normal init" in found[0], "dense2 use he_normal" in found[0]
        (2, True, True)
        >>> print(found[1].split(") ", 1)[1])
        is broken by plain dropout (dropout_kind='dropout'): it shifts the activations' mean
        and variance; use dropout_kind='alpha' (or 'mc_alpha')
    """
    found: list[str] = []
    _warn = found.append

    def dense(indices: Sequence[int]) -> str:  # module names, 1-based like build.mlp's
        return ", ".join(f"dense{i + 1}" for i in indices)

    names = [activations.activation_name(a) for a in acts]
    selu = [i for i, n in enumerate(names) if n == "selu"]
    alpha = dropout_kind in ("alpha", "mc_alpha")
    uses_dropout = input_dropout > 0 or any(layer.dropout > 0 for layer in layers)
    if not selu:
        if alpha and uses_dropout:
            _warn(
                f"dropout_kind={dropout_kind!r} keeps SELU's fixed point (mean 0, variance 1); "
                "with non-SELU activations use dropout_kind='dropout' (or 'mc')"
            )
        return found
    if len(selu) < len(layers):
        other = sorted({str(names[i]) for i in range(len(layers)) if i not in selu})
        _warn(
            f"{_SNN} needs a stack of SELU layers only; hidden layers "
            f"{dense([i for i in range(len(layers)) if i not in selu])} use {', '.join(other)}"
        )
    bad_init = {i: inits[i] for i in selu if inits[i] is not None and inits[i] != "lecun_normal"}
    if bad_init:
        _warn(
            f"{_SNN} needs LeCun normal init (variance 1/fan_in) so each layer keeps mean 0 "
            f"and variance 1; hidden layers {dense(list(bad_init))} use "
            f"{', '.join(sorted(set(map(str, bad_init.values()))))}; "
            "use kernel_initializer='lecun_normal' (or 'auto')"
        )
    if uses_dropout and not alpha:
        _warn(
            f"{_SNN} is broken by plain dropout (dropout_kind={dropout_kind!r}): it shifts the "
            "activations' mean and variance; use dropout_kind='alpha' (or 'mc_alpha')"
        )
    bn = [i for i in selu if layers[i].batch_norm != "none"]
    if bn or input_batch_norm:
        where = f"hidden layers {dense(bn)}" if bn else "the input"
        _warn(
            f"{_SNN} makes batch norm unnecessary and batch norm on {where} breaks the "
            "self-normalizing fixed point; use batch_norm='none' and standardize the inputs"
        )
    reg = [i for i in selu if layers[i].l1 or layers[i].l2 or layers[i].max_norm is not None]
    if reg:
        _warn(
            f"{_SNN} is broken by l1/l2 regularization or max-norm on hidden layers {dense(reg)} "
            "(Géron, Hands-On ML, ch. 11); regularize a SELU net with alpha dropout instead"
        )
    return found
