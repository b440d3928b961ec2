"""Weight penalties (ℓ1, ℓ2) attached to any module and summed into the loss by the trainer.

Keras semantics (``keras.regularizers.L1L2``): the penalty of a kernel ``w`` is

.. math::  \\Omega(w) = \\ell_1 \\sum_i |w_i| + \\ell_2 \\sum_i w_i^2

with no factor ½ on the ℓ2 term, and it is *added to the loss*, so the gradient it contributes
is ``l1 * sign(w) + 2 * l2 * w``. This differs from PyTorch's ``weight_decay`` (which adds
``weight_decay * w`` to the gradient, i.e. ``l2 = weight_decay / 2``) and, for adaptive
optimizers, from decoupled weight decay (AdamW; Loshchilov & Hutter, 2019).

A regularizer is any callable ``weight -> 0-dim tensor`` stored as the attribute
``module.kernel_regularizer``; :func:`penalty` sums them over a model, so it works on any
``nn.Module``, not only models built by steadygrad.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> _ = attach(model[0], l2=0.01)
    >>> has_penalties(model)
    True
    >>> with torch.no_grad():
    ...     _ = model[0].weight.fill_(1.0)
    >>> round(penalty(model).item(), 4)  # 0.01 * 6 weights * 1.0**2
    0.06
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from steadygrad.errors import ConfigError

__all__ = [
    "L1L2",
    "Regularizer",
    "attach",
    "has_penalties",
    "l1",
    "l1_l2",
    "l2",
    "penalty",
]

Regularizer = Callable[[torch.Tensor], torch.Tensor]
"""A weight penalty: ``weight -> 0-dim tensor`` (differentiable)."""

_KERAS_DEFAULT = 0.01  # keras.regularizers.l1 / l2 / l1_l2 default factor


def _check_factor(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, value, "a non-negative finite float", hint=f"e.g. {name}=0.01")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(name, value, "a non-negative finite float", hint=f"e.g. {name}=0.01")
    return float(value)


@dataclass(frozen=True)
class L1L2:
    """ℓ1 + ℓ2 weight penalty ``l1 * sum(|w|) + l2 * sum(w**2)`` (Keras ``L1L2``).

    Args:
        l1: ℓ1 factor (≥ 0).
        l2: ℓ2 factor (≥ 0). No ½: the gradient of the ℓ2 term is ``2 * l2 * w``.

    Example:
        >>> import torch
        >>> reg = L1L2(l1=0.1, l2=0.5)
        >>> float(reg(torch.tensor([1.0, -2.0])))  # 0.1 * 3 + 0.5 * 5
        2.8
    """

    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "l1", _check_factor("l1", self.l1))
        object.__setattr__(self, "l2", _check_factor("l2", self.l2))

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        """The penalty of ``weight`` as a 0-dim tensor on its device and dtype."""
        out = weight.new_zeros(())
        if self.l1:
            out = out + self.l1 * weight.abs().sum()
        if self.l2:
            out = out + self.l2 * weight.square().sum()
        return out


def l1(l1: float = _KERAS_DEFAULT) -> L1L2:
    """ℓ1 penalty ``l1 * sum(|w|)`` (Keras ``regularizers.l1``, default 0.01).

    >>> l1()
    L1L2(l1=0.01, l2=0.0)
    """
    return L1L2(l1=l1)


def l2(l2: float = _KERAS_DEFAULT) -> L1L2:
    """ℓ2 penalty ``l2 * sum(w**2)`` (Keras ``regularizers.l2``, default 0.01).

    >>> l2(0.001)
    L1L2(l1=0.0, l2=0.001)
    """
    return L1L2(l2=l2)


def l1_l2(l1: float = _KERAS_DEFAULT, l2: float = _KERAS_DEFAULT) -> L1L2:
    """ℓ1 + ℓ2 penalty (Keras ``regularizers.l1_l2``, both defaults 0.01).

    >>> l1_l2(l2=0.1)
    L1L2(l1=0.01, l2=0.1)
    """
    return L1L2(l1=l1, l2=l2)


def _has_weight(module: nn.Module) -> bool:
    return isinstance(getattr(module, "weight", None), torch.Tensor)


def _targets(module: nn.Module, what: str) -> list[nn.Module]:
    """``module`` itself if it owns a ``weight``, else its Linear/Conv submodules."""
    if _has_weight(module):
        return [module]
    found: list[nn.Module] = [
        m
        for m in module.modules()
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)) and _has_weight(m)
    ]
    if not found:
        raise ConfigError(
            "module",
            type(module).__name__,
            f"a module with a `weight` tensor (Linear, Conv, ...) or a container of them "
            f"to attach a {what} to",
        )
    return found


def attach(
    module: nn.Module,
    regularizer: Regularizer | None = None,
    *,
    l1: float = 0.0,
    l2: float = 0.0,
) -> nn.Module:
    """Set ``module.kernel_regularizer`` so that :func:`penalty` includes it.

    A module that owns a ``weight`` tensor gets the regularizer itself; a container without
    one (``nn.Sequential``, your model) gets it on every ``Linear``/``Conv`` inside it. Pass
    either a ``regularizer`` callable or ``l1``/``l2`` factors; with neither (both factors 0)
    the attribute is removed, so a config with ``l2=0`` costs nothing.

    Args:
        module: the layer (or container) to regularize.
        regularizer: a callable ``weight -> 0-dim tensor`` (e.g. :class:`L1L2`).
        l1: ℓ1 factor, used when ``regularizer`` is None.
        l2: ℓ2 factor, used when ``regularizer`` is None.

    Returns:
        ``module``, for chaining.

    Example:
        >>> from torch import nn
        >>> layer = attach(nn.Linear(4, 2), l1=0.001)
        >>> layer.kernel_regularizer
        L1L2(l1=0.001, l2=0.0)
    """
    if regularizer is not None and (l1 or l2):
        raise ConfigError(
            "regularizer", regularizer, "either a regularizer or l1/l2 factors, not both"
        )
    if regularizer is not None and not callable(regularizer):
        raise ConfigError("regularizer", regularizer, "a callable weight -> 0-dim tensor")
    reg = regularizer if regularizer is not None else L1L2(l1=l1, l2=l2)
    if isinstance(reg, L1L2) and not reg.l1 and not reg.l2:
        for m in _targets(module, "regularizer"):
            if "kernel_regularizer" in m.__dict__:
                del m.kernel_regularizer
        return module
    for m in _targets(module, "regularizer"):
        setattr(m, "kernel_regularizer", reg)  # noqa: B010 - a plain attribute on any module
    return module


def _regularized(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if getattr(m, "kernel_regularizer", None) is not None]


def has_penalties(model: nn.Module) -> bool:
    """Whether any module of ``model`` carries a ``kernel_regularizer`` (lets a trainer skip work).

    >>> from torch import nn
    >>> has_penalties(nn.Linear(2, 2))
    False
    """
    return any(getattr(m, "kernel_regularizer", None) is not None for m in model.modules())


def penalty(model: nn.Module) -> torch.Tensor:
    """Sum of ``m.kernel_regularizer(m.weight)`` over the modules of ``model``.

    Shared modules count once. Returns a differentiable 0-dim tensor, ``0`` on the model's
    device when nothing is regularized (so ``loss + penalty(model)`` always works).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> layer = attach(nn.Linear(2, 1, bias=False), l1=0.5)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[1.0, -3.0]]))
        >>> penalty(layer).item()
        2.0
        >>> float(penalty(nn.ReLU()))
        0.0
    """
    total: torch.Tensor | None = None
    for m in _regularized(model):
        reg: Regularizer = getattr(m, "kernel_regularizer")  # noqa: B009
        term = reg(getattr(m, "weight"))  # noqa: B009
        total = term if total is None else total + term
    if total is not None:
        return total
    ref: torch.Tensor | None = next(model.parameters(), None)
    if ref is None:
        ref = next(model.buffers(), None)
    if ref is None:
        return torch.zeros(())
    return torch.zeros((), device=ref.device, dtype=ref.dtype if ref.is_floating_point() else None)
