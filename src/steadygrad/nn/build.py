"""Build a plain ``nn.Sequential`` multilayer perceptron from a few validated settings.

:func:`mlp` is the model builder behind configs, studies and presets: every knob of the
stable-training toolbox for dense nets (initializer, activation, batch norm placement,
dropout kind, ℓ1/ℓ2, max-norm) is one argument, overridable per hidden layer, and the result
is an ordinary ``nn.Sequential`` of standard torch modules (so the monitor, summary and
any PyTorch tooling work on it unchanged).

Batch norm, PyTorch vs Keras (where it bites):

- ``bn_momentum`` uses **PyTorch's convention**: the weight of the *new* batch,
  ``running = (1 - bn_momentum) * running + bn_momentum * batch``. Keras's ``momentum`` is
  the weight of the *old* value: Keras ``momentum=0.99`` (its default) is
  ``bn_momentum=0.01`` here. The default is PyTorch's 0.1; a value above 0.5 almost
  certainly is a Keras-convention value and triggers a warning.
- ``bn_eps`` defaults to PyTorch's ``1e-5``; Keras uses ``epsilon=1e-3``.

Example:
    >>> model = mlp((1, 28, 28), (300, 100), batch_norm="before", num_outputs=10, seed=0)
    >>> [type(m).__name__ for m in model]
    ['Flatten', 'Linear', 'BatchNorm1d', 'ReLU', 'Linear', 'BatchNorm1d', 'ReLU', 'Linear']
    >>> model.dense1.bias is None  # batch norm's beta replaces the bias
    True
"""

from __future__ import annotations

import copy
import math
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn import activations, constraints, init, regularizers
from steadygrad.nn._build_checks import (
    BATCH_NORM_PLACEMENTS,
    Activation,
    InitSpec,
    LayerSpec,
    check_choice,
    check_float,
    check_max_norm,
    input_features,
    resolve_layers,
    selu_problems,
)
from steadygrad.nn._options import DROPOUT_KINDS, OUTPUTS, check_options

__all__ = ["BATCH_NORM_PLACEMENTS", "DROPOUT_KINDS", "OUTPUTS", "mlp"]

_HEAD_INITIALIZER = "glorot_uniform"  # Keras Dense default


def _build_activation(spec: Activation, units: int) -> nn.Module:
    if isinstance(spec, nn.Module):
        return copy.deepcopy(spec)
    name = spec.get("name") if isinstance(spec, Mapping) else spec
    if isinstance(name, str) and activations.ACTIVATIONS.canonical(name) == "prelu":
        if isinstance(spec, str):
            return activations.get(spec, num_units=units)  # one alpha per unit, as Keras
        if isinstance(spec, Mapping) and "num_units" not in spec:
            return activations.get({**spec, "num_units": units})
    return activations.get(spec)


def _make_activation(spec: Activation, units: int, path: str) -> nn.Module:
    """A fresh activation module per layer (a given instance is deep-copied)."""
    try:
        return _build_activation(spec, units)
    except ConfigError as err:  # name the override that holds the bad value
        if path == "activation" or err.path != "activation":
            raise
        raise type(err)(path, err.received, err.expected, err.hint) from err


def _initializer_name(spec: InitSpec, activation: nn.Module | None) -> str | None:
    """The canonical registry name ``spec`` resolves to (``auto`` resolved), None if opaque."""
    name = spec.get("name") if isinstance(spec, Mapping) else spec
    if not isinstance(name, str):
        name = getattr(spec, "name", None)
        if not isinstance(name, str):
            return None
    canonical = init.INITIALIZERS.canonical(name)
    if canonical == "auto":
        return init.auto_initializer(activation)
    return canonical


def _initializer(spec: InitSpec, activation: nn.Module | None) -> Callable[..., torch.Tensor]:
    name = spec.get("name") if isinstance(spec, Mapping) and len(spec) == 1 else spec
    if isinstance(name, str) and init.INITIALIZERS.canonical(name) == "auto":
        return init.get(init.auto_initializer(activation))
    return init.get(spec)


def mlp(
    input_shape: Sequence[int] | int,
    hidden: Sequence[int] = (300, 100),
    *,
    activation: Activation = "relu",
    kernel_initializer: InitSpec = "auto",
    bias_initializer: InitSpec = "zeros",
    batch_norm: str = "none",
    input_batch_norm: bool = False,
    dropout: float = 0.0,
    input_dropout: float = 0.0,
    dropout_kind: str = "dropout",
    l1: float = 0.0,
    l2: float = 0.0,
    max_norm: float | None = None,
    output: str = "multiclass",
    num_outputs: int | None = None,
    layer_overrides: Mapping[int | str, Mapping[str, Any]] | None = None,
    bn_momentum: float = 0.1,
    bn_eps: float = 1e-5,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """A dense network ``[Flatten] [BN] [Dropout] (Linear [BN] act [BN] [Dropout])* Linear``.

    Each hidden layer is ``Linear → [BN if "before"] → activation → [BN if "after"] →
    [dropout]``; a ``Linear`` directly followed by batch norm has no bias (BN's β replaces
    it). The head is a ``Linear`` producing logits (``multiclass``: one per class; ``binary``:
    one, or one per label for multi-label; ``regression``: ``num_outputs`` values, default 1)
    initialized with Glorot uniform, Keras's default. Hidden kernels use
    ``kernel_initializer``; ``"auto"`` picks by each layer's activation
    (:func:`steadygrad.nn.init.auto_initializer`: He for ReLU-like, LeCun for SELU, Glorot
    otherwise). ``l1``/``l2``/``max_norm`` are attached to every ``Linear``, head included
    (``regularizers.attach`` / ``constraints.attach``), as Keras users do with a partial
    ``Dense``. Settings that break SELU self-normalization emit a ``UserWarning`` naming the
    setting (Klambauer et al., 2017).

    Args:
        input_shape: shape of one example; more than one dim adds a ``Flatten``.
        hidden: units of each hidden layer (may be empty: a linear model).
        activation: a registered name, a ``{"name": ..., **kwargs}`` dict, a module class or
            instance (copied per layer), or None (linear). ``prelu`` gets one α per unit.
        kernel_initializer: hidden-layer initializer name/dict/callable, or ``"auto"``.
        bias_initializer: initializer of every bias (Keras default ``zeros``).
        batch_norm: ``"none"``, ``"before"`` or ``"after"`` the activation (Ioffe &
            Szegedy, 2015, put it before).
        input_batch_norm: add ``BatchNorm1d`` on the (flattened) input, as the Géron book's
            batch-norm example does.
        dropout: rate after each hidden layer, in ``[0, 1)``.
        input_dropout: rate on the input features.
        dropout_kind: ``"dropout"``, ``"alpha"`` (for SELU), ``"mc"`` or ``"mc_alpha"``
            (sample in eval mode too, for MC dropout).
        l1: ℓ1 factor (Keras semantics: ``l1 * sum|w|`` added to the loss).
        l2: ℓ2 factor (``l2 * sum w²``, no ½).
        max_norm: max norm of each unit's incoming weights, or None.
        output: ``"multiclass"``, ``"binary"`` or ``"regression"``.
        num_outputs: classes (multiclass, required, ≥ 2), labels (binary, default 1) or
            targets (regression, default 1).
        layer_overrides: ``{index: {setting: value}}`` per hidden layer (keys ``units,
            activation, kernel_initializer, batch_norm, dropout, l1, l2, max_norm``) and
            ``{"output": {...}}`` for the head (``kernel_initializer, l1, l2, max_norm``).
        bn_momentum: PyTorch convention (weight of the new batch); Keras 0.99 = 0.01 here.
        bn_eps: batch norm epsilon (PyTorch 1e-5; Keras 1e-3).
        seed: seed of a private generator for the initial weights (global RNG untouched).
        generator: a ``torch.Generator`` to draw from instead of ``seed``.

    Returns:
        An ``nn.Sequential`` with named children (``flatten, input_bn, input_dropout,
        dense{i}, bn{i}, act{i}, dropout{i}, output``; ``i`` from 1).

    Raises:
        ConfigError: an argument is invalid (the message names it and the allowed values).
        UnknownNameError: an unknown activation or initializer name.

    Example:
        >>> import torch
        >>> net = mlp(8, (16,), activation="selu", dropout=0.1, dropout_kind="alpha",
        ...           output="binary", seed=0)
        >>> net
        Sequential(
          (dense1): Linear(in_features=8, out_features=16, bias=True)
          (act1): SELU()
          (dropout1): AlphaDropout(p=0.1, inplace=False)
          (output): Linear(in_features=16, out_features=1, bias=True)
        )
        >>> twin = mlp(8, (16,), activation="selu", output="binary", seed=0)
        >>> torch.equal(net.dense1.weight, twin.dense1.weight)
        True
    """
    shape, in_features = input_features(input_shape)
    if isinstance(hidden, (str, int)) or not isinstance(hidden, Sequence):
        raise ConfigError("hidden", hidden, "a sequence of positive ints", hint="e.g. (300, 100)")
    check_choice("batch_norm", batch_norm, BATCH_NORM_PLACEMENTS)
    if not isinstance(input_batch_norm, bool):
        raise ConfigError("input_batch_norm", input_batch_norm, "True or False")
    opts = check_options(
        activation=activation, kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer, dropout=dropout, dropout_kind=dropout_kind, l1=l1,
        l2=l2, max_norm=max_norm, output=output, num_outputs=num_outputs,
        bn_momentum=bn_momentum, bn_eps=bn_eps, seed=seed, generator=generator,
    )
    check_float("input_dropout", input_dropout, 0.0, 1.0, hi_open=True)
    n_out, momentum, bn_eps, generator = opts.n_out, opts.bn_momentum, opts.bn_eps, opts.generator

    defaults = LayerSpec(0, activation, kernel_initializer, batch_norm, dropout, l1, l2, max_norm)
    layers, head = resolve_layers(hidden, defaults, layer_overrides or {})
    overridden = {k for k, v in (layer_overrides or {}).items() if "activation" in v}
    acts = [
        _make_activation(
            layer.activation, layer.units,
            f"layer_overrides[{i}].activation" if i in overridden else "activation",
        )
        for i, layer in enumerate(layers)
    ]
    pairs = list(zip(layers, acts, strict=True))
    inits = [_initializer(layer.kernel_initializer, a) for layer, a in pairs]
    bias_init = init.get(bias_initializer)
    head_init = init.get(head.get("kernel_initializer", _HEAD_INITIALIZER))
    head_l1 = check_float("layer_overrides['output'].l1", head.get("l1", l1), 0.0, math.inf)
    head_l2 = check_float("layer_overrides['output'].l2", head.get("l2", l2), 0.0, math.inf)
    head_mn = check_max_norm("layer_overrides['output'].max_norm", head.get("max_norm", max_norm))
    messages = selu_problems(
        layers, acts,
        [_initializer_name(layer.kernel_initializer, a) for layer, a in pairs],
        dropout_kind=dropout_kind, input_dropout=input_dropout, input_batch_norm=input_batch_norm,
    )
    for message in messages:
        warnings.warn(message, UserWarning, stacklevel=2)

    # --- build (no RNG is drawn until the initializers run, all from `generator`) ---
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    drop = DROPOUT_KINDS[dropout_kind]
    if len(shape) > 1:
        mods["flatten"] = nn.Flatten()
    if input_batch_norm:
        mods["input_bn"] = nn.BatchNorm1d(in_features, eps=bn_eps, momentum=momentum)
    if input_dropout > 0:
        mods["input_dropout"] = drop(input_dropout)
    linears: list[tuple[nn.Linear, Callable[..., torch.Tensor], float, float, float | None]] = []
    fan_in = in_features
    for i, (layer, act, kinit) in enumerate(zip(layers, acts, inits, strict=True), start=1):
        before = layer.batch_norm == "before"
        dense = torch.nn.utils.skip_init(nn.Linear, fan_in, layer.units, bias=not before)
        mods[f"dense{i}"] = dense
        if before:
            mods[f"bn{i}"] = nn.BatchNorm1d(layer.units, eps=bn_eps, momentum=momentum)
        mods[f"act{i}"] = act
        if layer.batch_norm == "after":
            mods[f"bn{i}"] = nn.BatchNorm1d(layer.units, eps=bn_eps, momentum=momentum)
        if layer.dropout > 0:
            mods[f"dropout{i}"] = drop(layer.dropout)
        linears.append((dense, kinit, layer.l1, layer.l2, layer.max_norm))
        fan_in = layer.units
    out = torch.nn.utils.skip_init(nn.Linear, fan_in, n_out)
    mods["output"] = out
    linears.append((out, head_init, head_l1, head_l2, head_mn))

    for dense, kinit, l1_, l2_, mn in linears:
        kinit(dense.weight, generator=generator)
        if dense.bias is not None:
            bias_init(dense.bias, generator=generator)
        if l1_ or l2_:
            regularizers.attach(dense, l1=l1_, l2=l2_)
        if mn is not None:
            constraints.attach(dense, max_norm=mn)
    return nn.Sequential(mods)
