"""Weight constraints (max-norm, non-negativity, unit norm) applied after each optimizer step.

A constraint is any callable ``weight -> projected weight`` stored as the attribute
``module.kernel_constraint``; :func:`apply_` projects every constrained weight of a model in
place, so it works on any ``nn.Module``. The trainer calls it right after ``optimizer.step()``.

Keras semantics (``keras.constraints``) on PyTorch layouts: Keras kernels are
``(in, out)`` / ``(*k, in, out)`` and Keras users pass ``axis=0`` / ``axis=[0, 1, 2]`` to
reach "the incoming weights of each unit". PyTorch weights are ``(out, in, *k)``, so here the
default ``axis=None`` means *every dimension but 0*: each row (output unit, or filter) is
constrained. Max-norm regularization: Srivastava et al., "Dropout: a simple way to prevent
neural networks from overfitting", JMLR 2014, section 5.1.

Example:
    >>> import torch
    >>> from torch import nn
    >>> layer = attach(nn.Linear(4, 3), max_norm=1.0)
    >>> with torch.no_grad():
    ...     _ = layer.weight.fill_(2.0)  # each row has norm 4
    >>> apply_(layer)
    >>> layer.weight.norm(dim=1).round(decimals=4).tolist()
    [1.0, 1.0, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from steadygrad.errors import ConfigError

__all__ = [
    "EPSILON",
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "apply_",
    "attach",
    "has_constraints",
    "unit_norms",
]

Constraint = Callable[[torch.Tensor], torch.Tensor]
"""A projection ``weight -> constrained weight`` (same shape)."""

EPSILON = 1e-7
"""Keras ``backend.epsilon()``, added to the norm in the max/unit/min-max norm rescaling."""

Axis = int | tuple[int, ...] | None


def unit_norms(weight: torch.Tensor, axis: Axis = None) -> torch.Tensor:
    """L2 norms of ``weight`` over ``axis`` (default: all dims but 0), kept for broadcasting.

    >>> import torch
    >>> unit_norms(torch.tensor([[3.0, 4.0], [0.0, 1.0]])).flatten().tolist()
    [5.0, 1.0]
    """
    dims = tuple(range(1, weight.dim())) if axis is None else axis
    if weight.dim() <= 1 and axis is None:  # a vector: one unit per entry
        return weight.abs()
    return weight.square().sum(dim=dims, keepdim=True).sqrt()


def _check_axis(axis: object) -> Axis:
    if axis is None or (isinstance(axis, int) and not isinstance(axis, bool)):
        return axis
    if isinstance(axis, (tuple, list)) and all(
        isinstance(a, int) and not isinstance(a, bool) for a in axis
    ):
        return tuple(axis)
    raise ConfigError("axis", axis, "None (all dims but 0), an int or a tuple of ints")


def _check_nonneg(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, value, "a non-negative finite float")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(name, value, "a non-negative finite float")
    return float(value)


@dataclass(frozen=True)
class MaxNorm:
    """Rescale each unit's incoming weights to norm ≤ ``max_value`` (Keras ``max_norm``).

    ``w * clip(‖w‖, 0, max_value) / (EPSILON + ‖w‖)``, the norm taken over ``axis``
    (default: all dims but 0, i.e. each row of a PyTorch ``(out, in, *k)`` weight).
    Rows below the bound are multiplied by ``‖w‖ / (1e-7 + ‖w‖)``, i.e. unchanged up to
    ~1e-7 relative, exactly as in Keras.

    Args:
        max_value: the maximum norm (> 0). Keras default 2.0.
        axis: dims to take the norm over; None means all but dim 0.

    Example:
        >>> import torch
        >>> w = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
        >>> MaxNorm(1.0)(w).round(decimals=4).tolist()
        [[0.6, 0.8], [0.3, 0.4]]
    """

    max_value: float = 2.0
    axis: Axis = None

    def __post_init__(self) -> None:
        value = _check_nonneg("max_value", self.max_value)
        if value == 0:
            raise ConfigError("max_value", self.max_value, "a positive float", hint="e.g. 1.0")
        object.__setattr__(self, "max_value", value)
        object.__setattr__(self, "axis", _check_axis(self.axis))

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        """The projected weight (a new tensor)."""
        norms = unit_norms(weight, self.axis)
        desired = norms.clamp(0.0, self.max_value)
        return weight * (desired / (EPSILON + norms))


@dataclass(frozen=True)
class MinMaxNorm:
    """Keep each unit's norm in ``[min_value, max_value]`` (Keras ``min_max_norm``).

    ``w * desired / (EPSILON + ‖w‖)`` with
    ``desired = rate * clip(‖w‖, min, max) + (1 - rate) * ‖w‖``.

    Example:
        >>> import torch
        >>> w = MinMaxNorm(min_value=1.0, max_value=2.0)(torch.tensor([[0.3, 0.4]]))
        >>> round(w.norm().item(), 4)
        1.0
    """

    min_value: float = 0.0
    max_value: float = 1.0
    rate: float = 1.0
    axis: Axis = None

    def __post_init__(self) -> None:
        lo = _check_nonneg("min_value", self.min_value)
        hi = _check_nonneg("max_value", self.max_value)
        if hi < lo:
            raise ConfigError("max_value", self.max_value, f"a float >= min_value={lo}")
        rate = _check_nonneg("rate", self.rate)
        if rate > 1:
            raise ConfigError("rate", self.rate, "a float in [0, 1]")
        object.__setattr__(self, "min_value", lo)
        object.__setattr__(self, "max_value", hi)
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "axis", _check_axis(self.axis))

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        """The projected weight (a new tensor)."""
        norms = unit_norms(weight, self.axis)
        desired = self.rate * norms.clamp(self.min_value, self.max_value) + (1 - self.rate) * norms
        return weight * (desired / (EPSILON + norms))


@dataclass(frozen=True)
class UnitNorm:
    """Scale each unit's incoming weights to unit norm: ``w / (EPSILON + ‖w‖)`` (Keras).

    >>> import torch
    >>> UnitNorm()(torch.tensor([[3.0, 4.0]])).round(decimals=4).tolist()
    [[0.6, 0.8]]
    """

    axis: Axis = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "axis", _check_axis(self.axis))

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        """The projected weight (a new tensor)."""
        return weight / (EPSILON + unit_norms(weight, self.axis))


@dataclass(frozen=True)
class NonNeg:
    """Clamp weights to be non-negative: ``max(w, 0)`` (Keras ``non_neg``).

    >>> import torch
    >>> NonNeg()(torch.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        """The projected weight (a new tensor)."""
        return weight.clamp(min=0)


def _targets(module: nn.Module) -> list[nn.Module]:
    if isinstance(getattr(module, "weight", None), torch.Tensor):
        return [module]
    found: list[nn.Module] = [
        m for m in module.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
    ]
    if not found:
        raise ConfigError(
            "module",
            type(module).__name__,
            "a module with a `weight` tensor (Linear, Conv, ...) or a container of them",
        )
    return found


def attach(
    module: nn.Module, constraint: Constraint | None = None, *, max_norm: float | None = None
) -> nn.Module:
    """Set ``module.kernel_constraint`` so that :func:`apply_` projects its weight.

    A module that owns a ``weight`` gets the constraint; a container without one gets it on
    every ``Linear``/``Conv`` inside. ``max_norm=c`` is a shortcut for ``MaxNorm(c)``; for a
    ``ConvTranspose`` (weight ``(in, out, *k)``) the norm is taken over all dims but 1, so it
    is still each output channel's incoming weights.

    Args:
        module: the layer (or container) to constrain.
        constraint: any callable ``weight -> weight`` (e.g. :class:`MaxNorm`).
        max_norm: shortcut for ``MaxNorm(max_norm)``.

    Returns:
        ``module``, for chaining.

    Example:
        >>> from torch import nn
        >>> attach(nn.Linear(3, 2), max_norm=3.0).kernel_constraint
        MaxNorm(max_value=3.0, axis=None)
    """
    if (constraint is None) == (max_norm is None):
        raise ConfigError(
            "constraint",
            constraint if constraint is not None else max_norm,
            "exactly one of a constraint callable or max_norm=<float>",
        )
    if constraint is not None and not callable(constraint):
        raise ConfigError("constraint", constraint, "a callable weight -> weight")
    for m in _targets(module):
        c = constraint
        if c is None:
            assert max_norm is not None
            axis: Axis = None
            if isinstance(m, nn.modules.conv._ConvTransposeNd):
                axis = (0, *range(2, m.weight.dim()))
            c = MaxNorm(max_norm, axis=axis)
        setattr(m, "kernel_constraint", c)  # noqa: B010 - a plain attribute on any module
    return module


def has_constraints(model: nn.Module) -> bool:
    """Whether any module of ``model`` carries a ``kernel_constraint``.

    >>> from torch import nn
    >>> has_constraints(nn.Linear(2, 2))
    False
    """
    return any(getattr(m, "kernel_constraint", None) is not None for m in model.modules())


@torch.no_grad()
def apply_(model: nn.Module) -> None:
    """Project every constrained weight of ``model`` in place (call after ``optimizer.step()``).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> layer = attach(nn.Linear(2, 1), NonNeg())
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[-1.0, 1.0]]))
        >>> apply_(layer)
        >>> layer.weight.tolist()
        [[0.0, 1.0]]
    """
    for m in model.modules():
        c = getattr(m, "kernel_constraint", None)
        if c is not None:
            w = getattr(m, "weight")  # noqa: B009
            w.copy_(c(w))
