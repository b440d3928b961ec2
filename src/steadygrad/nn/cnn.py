"""A plain deep convolutional network as an ``nn.Sequential`` of standard torch modules.

:func:`cnn` stacks conv blocks ``Conv2d → [norm if "before"] → activation → [norm if "after"]
→ [pool] → [dropout]`` and a head (global average pooling or flatten, optional dense layers, a
``Linear`` output), with :func:`steadygrad.nn.build.mlp`'s options (initializer incl.
``"auto"``, normalization placement and kind, dropout kinds, ℓ1/ℓ2, max-norm, seed).

Module names (stable; the monitor, summary and the doctor's rewrites address them):
``conv{i}, norm{i}, act{i}, pool{i}, dropout{i}`` for conv block ``i`` (from 1), then
``global_pool`` (``head="global_avg"``), ``flatten``, ``dense{j}, dense_act{j},
dense_dropout{j}`` for the head's hidden layers and ``output``.

Example:
    >>> net = cnn((1, 8, 8), (8, 16), normalization="before", num_outputs=10, seed=0)
    >>> [name for name, _ in net.named_children()]
    ['conv1', 'norm1', 'act1', 'pool1', 'conv2', 'norm2', 'act2', 'pool2', 'global_pool',
     'flatten', 'output']
    >>> net.conv1.bias is None  # batch norm's beta replaces the bias
    True
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn._arch import (
    NORMS,
    check_options,
    dense_head,
    make_activation,
    norm_layer,
)
from steadygrad.nn._build_checks import (
    BATCH_NORM_PLACEMENTS,
    Activation,
    InitSpec,
    check_choice,
    check_int,
    check_ints,
)

__all__ = ["HEADS", "POOLS", "cnn"]

POOLS: tuple[str, ...] = ("max", "avg", "none")
"""Pooling after a conv block: 2x2 max or average pooling (stride 2), or none."""

HEADS: tuple[str, ...] = ("global_avg", "flatten")
"""How the feature maps reach the dense head: global average pooling, or flattening."""


def image_shape(input_shape: object) -> tuple[int, int, int]:
    """``(C, H, W)`` of one image, or a ConfigError saying how to get it.

    >>> image_shape((1, 8, 8))
    (1, 8, 8)
    >>> image_shape((64,))
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: input_shape: got (64,); expected (C, H, W) of one image; ...
    """
    ok = isinstance(input_shape, (tuple, list, torch.Size)) and len(input_shape) == 3 and all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape
    )
    if not ok:
        raise ConfigError(
            "input_shape", input_shape, "(C, H, W) of one image",
            hint="load images with their shape, e.g. load('digits', shape='image') -> (1, 8, 8)",
        )
    shape: Any = input_shape
    return int(shape[0]), int(shape[1]), int(shape[2])


def cnn(
    input_shape: Sequence[int],
    filters: Sequence[int] = (32, 64),
    *,
    kernel_size: int = 3,
    pool: str = "max",
    pool_every: int = 1,
    head: str = "global_avg",
    dense: Sequence[int] = (),
    activation: Activation = "relu",
    kernel_initializer: InitSpec = "auto",
    bias_initializer: InitSpec = "zeros",
    normalization: str = "none",
    norm: str = "batch",
    dropout: float = 0.0,
    dropout_kind: str = "dropout",
    l1: float = 0.0,
    l2: float = 0.0,
    max_norm: float | None = None,
    output: str = "multiclass",
    num_outputs: int | None = None,
    bn_momentum: float = 0.1,
    bn_eps: float = 1e-5,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """A plain CNN: ``(Conv2d [norm] act [norm] [pool] [dropout])* head``.

    Convolutions use "same" padding (``kernel_size // 2``, odd sizes) and stride 1; a pool
    layer (2x2, stride 2) follows every ``pool_every``-th block while the feature map is at
    least 2x2. A conv directly followed by batch norm has no bias (β replaces it). Kernels
    use ``kernel_initializer`` (``"auto"``: He for ReLU-like activations, LeCun for SELU,
    Glorot otherwise, per :func:`steadygrad.nn.init.auto_initializer`); the output layer is
    Glorot uniform (Keras ``Dense``). ``l1``/``l2``/``max_norm`` go on every conv and linear
    layer (Keras ``kernel_regularizer``/``kernel_constraint``; max-norm per output filter).

    Args:
        input_shape: ``(C, H, W)`` of one image (e.g. ``(1, 8, 8)`` for digits).
        filters: output channels of each conv layer.
        kernel_size: odd square kernel size.
        pool: ``"max"``, ``"avg"`` or ``"none"``.
        pool_every: pool after every n-th conv layer.
        head: ``"global_avg"`` (global average pooling) or ``"flatten"``.
        dense: units of hidden dense layers in the head (after pooling/flattening).
        activation: as in ``mlp`` (a name, a dict, a module, or None).
        kernel_initializer: a name/dict/callable or ``"auto"``.
        bias_initializer: initializer of every bias.
        normalization: ``"none"``, ``"before"`` or ``"after"`` the activation (conv blocks).
        norm: ``"batch"`` (``BatchNorm2d``) or ``"layer"`` (``GroupNorm(1, C)``).
        dropout: rate after each conv block and hidden dense layer, in ``[0, 1)``.
        dropout_kind: ``"dropout"``, ``"alpha"``, ``"mc"`` or ``"mc_alpha"``.
        l1, l2, max_norm: Keras-style kernel regularizers and constraint.
        output: ``"multiclass"``, ``"binary"`` or ``"regression"``.
        num_outputs: classes (multiclass, required), labels or targets (default 1).
        bn_momentum, bn_eps: batch norm settings (PyTorch momentum convention).
        seed: seed of a private generator for the initial weights.
        generator: a ``torch.Generator`` to draw from instead of ``seed``.

    Returns:
        An ``nn.Sequential`` with the named children listed in the module docstring.

    Raises:
        ConfigError: an argument is invalid (named, with what is allowed).

    Example:
        >>> import torch
        >>> net = cnn((1, 8, 8), (4,), pool="none", head="flatten", dense=(16,),
        ...           num_outputs=3, seed=0)
        >>> net(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 3])
        >>> sum(p.numel() for p in net.parameters()) == (9 * 4 + 4) + (256 * 16 + 16) + 51
        True
    """
    c_in, h, w = image_shape(input_shape)
    chans = check_ints("filters", filters, hint="e.g. (32, 64)")
    units = check_ints("dense", dense, empty=True)
    k = check_int("kernel_size", kernel_size)
    if k % 2 == 0:
        raise ConfigError("kernel_size", kernel_size, "an odd int >= 1 ('same' padding)")
    check_choice("pool", pool, POOLS)
    every = check_int("pool_every", pool_every)
    check_choice("head", head, HEADS)
    check_choice("normalization", normalization, BATCH_NORM_PLACEMENTS)
    check_choice("norm", norm, NORMS)
    opts = check_options(
        activation=activation, kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer, dropout=dropout, dropout_kind=dropout_kind,
        l1=l1, l2=l2, max_norm=max_norm, output=output, num_outputs=num_outputs,
        bn_momentum=bn_momentum, bn_eps=bn_eps, seed=seed, generator=generator,
    )

    mods: OrderedDict[str, nn.Module] = OrderedDict()
    weighted: list[tuple[nn.Module, nn.Module | None]] = []
    for i, c in enumerate(chans, start=1):
        conv = torch.nn.utils.skip_init(
            nn.Conv2d, c_in, c, k, padding=k // 2, bias=normalization != "before"
        )
        act = make_activation(activation, c)
        mods[f"conv{i}"] = conv
        if normalization == "before":
            mods[f"norm{i}"] = norm_layer(norm, 2, c, opts)
        if act is not None:
            mods[f"act{i}"] = act
        if normalization == "after":
            mods[f"norm{i}"] = norm_layer(norm, 2, c, opts)
        if pool != "none" and i % every == 0 and min(h, w) >= 2:
            mods[f"pool{i}"] = nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)
            h, w = h // 2, w // 2
        if opts.dropout > 0:
            mods[f"dropout{i}"] = opts.dropout_layer()
        weighted.append((conv, act))
        c_in = c
    if head == "global_avg":
        mods["global_pool"] = nn.AdaptiveAvgPool2d(1)
        fan = c_in
    else:
        fan = c_in * h * w
    mods["flatten"] = nn.Flatten()
    return dense_head(mods, weighted, fan, units, activation, opts)
