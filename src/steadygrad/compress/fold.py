"""Fold batch norm into the neighbouring ``Linear`` layer for faster inference.

In eval mode a batch-norm layer is an affine map per feature,
``BN(z) = s ⊙ z + t`` with ``s = γ / √(σ² + ε)`` and ``t = β - μ s`` (``μ``, ``σ²`` the running
statistics; Ioffe & Szegedy, 2015), so it can be merged into an adjacent ``Linear`` layer
``z = W x + b`` and disappear at inference (Géron, *Hands-On ML*, ch. 11: "fuse the BN
layer with the previous layer"):

- **Linear → BN** (BN after the layer): ``W' = diag(s) W``, ``b' = s ⊙ b + t``;
- **BN → Linear** (BN before the layer, e.g. on the input or after an activation):
  ``W' = W diag(s)``, ``b' = W t + b``;
- **Conv → BN** is folded too, with ``torch.nn.utils.fusion.fuse_conv_bn_eval``.

:func:`fold_batch_norm` works on any model: it looks inside every ``nn.Sequential`` (at any
depth) for such adjacent pairs, folds them, and replaces the batch-norm layer with
``nn.Identity`` (names and indices are kept). Pairs it cannot see (a BN used in a custom
``forward``), batch norm without running statistics, and anything else are left untouched.

Example:
    >>> import torch
    >>> from steadygrad.nn.build import mlp
    >>> model = mlp(8, (16, 16), batch_norm="before", input_batch_norm=True, num_outputs=3,
    ...             seed=0).eval()
    >>> folded = fold_batch_norm(model)
    >>> [type(m).__name__ for m in folded]
    ['Identity', 'Linear', 'Identity', 'ReLU', 'Linear', 'Identity', 'ReLU', 'Linear']
    >>> x = torch.randn(4, 8)
    >>> torch.allclose(folded(x), model(x), atol=1e-5)
    True
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval

from steadygrad.errors import ConfigError

__all__ = ["batch_norm_affine", "fold_batch_norm", "fold_bn_into_next", "fold_bn_into_previous"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def batch_norm_affine(bn: _BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s, t)`` such that ``bn(z) == s * z + t`` in eval mode: ``s = γ/√(σ²+ε)``, ``t = β - μ s``.

    >>> import torch
    >>> bn = torch.nn.BatchNorm1d(2).eval()
    >>> s, t = batch_norm_affine(bn)
    >>> [round(v, 4) for v in s.tolist()], t.tolist()
    ([1.0, 1.0], [0.0, 0.0])
    """
    if bn.running_mean is None or bn.running_var is None:
        raise ConfigError("bn", type(bn).__name__, "a batch-norm layer with running statistics",
                          hint="track_running_stats=False layers cannot be folded")
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.detach().double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().double()
    return scale, shift


def _linear(weight: torch.Tensor, bias: torch.Tensor, like: nn.Linear) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=True,
                      device=like.weight.device, dtype=like.weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    return layer


def fold_bn_into_previous(linear: nn.Linear, bn: _BatchNorm) -> nn.Linear:
    """A new ``Linear`` equal to ``bn(linear(x))`` in eval mode (``W' = diag(s) W``).

    >>> import torch
    >>> lin, bn = torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2).eval()
    >>> x = torch.randn(5, 3)
    >>> torch.allclose(fold_bn_into_previous(lin, bn)(x), bn(lin(x)), atol=1e-6)
    True
    """
    s, t = batch_norm_affine(bn)
    w = linear.weight.detach().double()
    b = linear.bias.detach().double() if linear.bias is not None else torch.zeros_like(s)
    return _linear(s[:, None] * w, s * b + t, linear)


def fold_bn_into_next(bn: _BatchNorm, linear: nn.Linear) -> nn.Linear:
    """A new ``Linear`` equal to ``linear(bn(x))`` in eval mode (``W' = W diag(s)``).

    >>> import torch
    >>> bn, lin = torch.nn.BatchNorm1d(3).eval(), torch.nn.Linear(3, 2)
    >>> x = torch.randn(5, 3)
    >>> torch.allclose(fold_bn_into_next(bn, lin)(x), lin(bn(x)), atol=1e-6)
    True
    """
    s, t = batch_norm_affine(bn)
    w = linear.weight.detach().double()
    b = linear.bias.detach().double() if linear.bias is not None else torch.zeros(
        w.shape[0], dtype=torch.float64, device=w.device)
    return _linear(w * s[None, :], w @ t + b, linear)


def _foldable(bn: nn.Module) -> bool:
    return isinstance(bn, _BatchNorm) and bn.running_mean is not None


def _fold_sequential(seq: nn.Sequential) -> int:
    keys = list(seq._modules)
    folded = 0
    # pass 1: Linear/Conv -> BN
    for a, b in itertools.pairwise(keys):
        first, second = seq._modules[a], seq._modules[b]
        if not _foldable(second):
            continue
        assert isinstance(second, _BatchNorm)
        if (
            isinstance(first, nn.Linear) and type(second) is nn.BatchNorm1d
            and first.out_features == second.num_features
        ):
            seq._modules[a] = fold_bn_into_previous(first, second)
        elif (
            isinstance(first, _CONV) and first.out_channels == second.num_features
            and _CONV.index(type(first)) == _BN.index(type(second))
        ):
            seq._modules[a] = fuse_conv_bn_eval(first.eval(), second.eval())
        else:
            continue
        seq._modules[b] = nn.Identity()
        folded += 1
    # pass 2: BN -> Linear (BN before a layer, e.g. on the inputs or after an activation)
    for a, b in itertools.pairwise(keys):
        first, second = seq._modules[a], seq._modules[b]
        if (
            isinstance(first, nn.BatchNorm1d) and _foldable(first)
            and isinstance(second, nn.Linear) and second.in_features == first.num_features
        ):
            seq._modules[b] = fold_bn_into_next(first, second)
            seq._modules[a] = nn.Identity()
            folded += 1
    return folded


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with batch norm folded into adjacent ``Linear``/``Conv`` layers.

    The copy is in eval mode and computes the same function as ``model.eval()`` (up to
    float rounding; the fold is computed in float64). ``model`` itself is not changed.

    Args:
        model: any ``nn.Module``; pairs are found inside ``nn.Sequential`` containers.

    Returns:
        The folded copy (``model`` itself is returned copied even when nothing folds).

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU())
        >>> fold_batch_norm(net)
        Sequential(
          (0): Linear(in_features=4, out_features=3, bias=True)
          (1): Identity()
          (2): ReLU()
        )
    """
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        if isinstance(module, nn.Sequential):
            _fold_sequential(module)
    return folded
