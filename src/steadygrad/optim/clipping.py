"""Gradient clipping with Keras's three options, as vectorized in-place transforms of ``p.grad``.

Keras optimizers take ``clipvalue`` (clamp every element to ``[-v, v]``), ``clipnorm`` (rescale
*each* gradient tensor whose L2 norm exceeds ``clipnorm``: ``g * clipnorm / max(||g||, clipnorm)``,
``keras/src/optimizers/base_optimizer.py::_clip_by_norm``) and ``global_clipnorm`` (rescale all
gradients together when their joint norm exceeds it; Pascanu et al. 2013, "On the difficulty of
training recurrent neural networks", arXiv:1211.5063). Here the global version is
``torch.nn.utils.clip_grad_norm_``: ``g * min(1, max_norm / (||g||_global + 1e-6))``, which
differs from Keras's ``max_norm / max(||g||, max_norm)`` only by that 1e-6.

Every function takes an iterable of parameters (or one tensor), skips parameters whose ``grad``
is None, and works with ``torch._foreach_*`` kernels: no Python loop over tensors and no
host-device synchronization, so the trainer can clip every step for free.

Non-finite gradients are *not* an error here (``error_if_nonfinite=False``): a NaN anywhere
makes the global norm NaN, and an Inf makes it Inf; clipping then turns the gradients into
NaN (NaN scale) or zero/NaN (``x * 0``; ``inf * 0`` is NaN). The returned pre-clip norm is
therefore non-finite, which is what the trainer checks to skip the step or stop.

Example:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> w.grad = torch.tensor([3.0, 4.0])
    >>> clipper = GradientClipper(global_clipnorm=1.0)
    >>> round(float(clipper([w])), 4), [round(g, 4) for g in w.grad.tolist()]
    (5.0, [0.6, 0.8])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from steadygrad.errors import ConfigError

__all__ = [
    "GradientClipper",
    "clip_by_global_norm_",
    "clip_by_norm_",
    "clip_by_value_",
    "global_norm",
]

Params = torch.Tensor | Iterable[torch.Tensor]


def _threshold(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(name, value, "a positive number")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(name, value, "a finite number > 0", hint=f"or {name}=None to disable")
    return value


def _params(params: Params) -> list[torch.Tensor]:
    if isinstance(params, torch.Tensor):
        return [params]
    if not isinstance(params, Iterable):
        raise ConfigError("params", params, "an iterable of parameters (tensors)")
    return list(params)


def _grads(params: Params) -> list[torch.Tensor]:
    return [p.grad for p in _params(params) if p.grad is not None]


def _norms(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per-tensor L2 norms as 0-dim tensors (one fused kernel per device and dtype)."""
    return list(torch._foreach_norm(grads)) if grads else []


def _total(norms: list[torch.Tensor]) -> torch.Tensor:
    if not norms:
        return torch.tensor(0.0)
    device = norms[0].device
    return torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]))


def global_norm(params: Params) -> torch.Tensor:
    """The L2 norm of all gradients together, ``sqrt(sum_i ||g_i||^2)``, as a 0-dim tensor.

    Args:
        params: parameters (or one tensor); those with ``grad`` None are skipped.

    Returns:
        A 0-dim tensor on the gradients' device (0.0 when no parameter has a gradient).

    Example:
        >>> import torch
        >>> a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
        >>> a.grad, b.grad = torch.tensor([3.0]), torch.tensor([4.0])
        >>> float(global_norm([a, b]))
        5.0
    """
    return _total(_norms(_grads(params)))


@torch.no_grad()
def clip_by_value_(params: Params, clipvalue: float) -> None:
    """Clamp every gradient element to ``[-clipvalue, clipvalue]`` in place (Keras ``clipvalue``).

    Same as ``torch.nn.utils.clip_grad_value_``. NaN stays NaN; +-Inf becomes +-clipvalue.

    Args:
        params: parameters (or one tensor); those with ``grad`` None are skipped.
        clipvalue: the bound, a finite number > 0.

    Example:
        >>> import torch
        >>> w = torch.zeros(3, requires_grad=True)
        >>> w.grad = torch.tensor([-2.0, 0.5, 9.0])
        >>> clip_by_value_([w], 1.0)
        >>> w.grad.tolist()
        [-1.0, 0.5, 1.0]
    """
    clipvalue = _threshold("clipvalue", clipvalue)
    grads = _grads(params)
    if grads:
        torch._foreach_clamp_min_(grads, -clipvalue)
        torch._foreach_clamp_max_(grads, clipvalue)


@torch.no_grad()
def clip_by_norm_(params: Params, clipnorm: float) -> torch.Tensor:
    """Rescale each gradient tensor separately to L2 norm at most ``clipnorm`` (Keras ``clipnorm``).

    ``g <- g * clipnorm / max(||g||, clipnorm)``: tensors below the bound are unchanged, the
    direction of each tensor is kept, but the relative sizes of different tensors change.

    Args:
        params: parameters (or one tensor); those with ``grad`` None are skipped.
        clipnorm: the bound, a finite number > 0.

    Returns:
        The pre-clip per-tensor norms, stacked into a 1-D tensor (empty when no gradients).

    Example:
        >>> import torch
        >>> a, b = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
        >>> a.grad, b.grad = torch.tensor([3.0, 4.0]), torch.tensor([0.5])
        >>> clip_by_norm_([a, b], 1.0).tolist()
        [5.0, 0.5]
        >>> [round(x, 4) for x in a.grad.tolist()], b.grad.tolist()
        ([0.6, 0.8], [0.5])
    """
    clipnorm = _threshold("clipnorm", clipnorm)
    grads = _grads(params)
    if not grads:
        return torch.zeros(0)
    norms = _norms(grads)
    # clipnorm / max(norm, clipnorm) == min(1, clipnorm / norm); the min makes the scale
    # exactly 1 below the bound (and 1/0 = inf is clamped to 1 for zero gradients).
    scales = torch._foreach_reciprocal(norms)
    torch._foreach_mul_(scales, clipnorm)
    torch._foreach_clamp_max_(scales, 1.0)
    torch._foreach_mul_(grads, scales)
    device = norms[0].device
    return torch.stack([n.to(device) for n in norms])


@torch.no_grad()
def clip_by_global_norm_(params: Params, max_norm: float) -> torch.Tensor:
    """Rescale all gradients together so their global L2 norm is at most ``max_norm``.

    ``torch.nn.utils.clip_grad_norm_`` semantics (Keras ``global_clipnorm``):
    ``g <- g * min(1, max_norm / (||g||_global + 1e-6))`` for every gradient.

    Args:
        params: parameters (or one tensor); those with ``grad`` None are skipped.
        max_norm: the bound, a finite number > 0.

    Returns:
        The pre-clip global norm, a 0-dim tensor on the gradients' device.

    Example:
        >>> import torch
        >>> a, b = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
        >>> a.grad, b.grad = torch.tensor([3.0]), torch.tensor([4.0])
        >>> float(clip_by_global_norm_([a, b], 1.0))
        5.0
        >>> round(a.grad.item(), 4), round(b.grad.item(), 4)
        (0.6, 0.8)
    """
    max_norm = _threshold("global_clipnorm", max_norm)
    params = _params(params)
    if not any(p.grad is not None for p in params):
        return torch.tensor(0.0)
    return torch.nn.utils.clip_grad_norm_(params, max_norm, error_if_nonfinite=False)


@dataclass(frozen=True)
class GradientClipper:
    """Clip gradients in place with Keras's options; report the pre-clip norm.

    ``clipper(params)`` clips ``p.grad`` in place and returns the *pre-clip* global gradient
    norm as a 0-dim tensor on the device (no ``.item()``, no synchronization), so the trainer
    and the monitor can log it without slowing the step. With no option set it only measures.

    Args:
        clipvalue: clamp each element to ``[-clipvalue, clipvalue]`` (:func:`clip_by_value_`).
        clipnorm: rescale each tensor to norm <= clipnorm (:func:`clip_by_norm_`).
        global_clipnorm: rescale all tensors together (:func:`clip_by_global_norm_`).

    ``clipvalue`` combines with ``clipnorm`` or ``global_clipnorm`` (the chapter suggests
    trying both): elements are clamped first, then the norm is bounded, so the result
    satisfies both bounds. ``clipnorm`` and ``global_clipnorm`` exclude each other.

    Raises:
        ConfigError: a value that is not a finite number > 0, or both ``clipnorm`` and
            ``global_clipnorm`` set.

    Example:
        >>> import torch
        >>> w = torch.zeros(2, requires_grad=True)
        >>> w.grad = torch.tensor([-3.0, 4.0])
        >>> norm = GradientClipper(clipvalue=1.0)(w)
        >>> float(norm), w.grad.tolist()
        (5.0, [-1.0, 1.0])
        >>> w.grad = torch.tensor([-3.0, 4.0])
        >>> norm = GradientClipper(clipvalue=2.0, clipnorm=1.0)(w)  # value first, then norm
        >>> float(norm), [round(g, 4) for g in w.grad.tolist()]
        (5.0, [-0.7071, 0.7071])
        >>> GradientClipper(clipnorm=1.0, global_clipnorm=1.0)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: clipping: got {'clipnorm': 1.0, 'global_clipnorm': 1.0}; ...
    """

    clipvalue: float | None = None
    clipnorm: float | None = None
    global_clipnorm: float | None = None

    def __post_init__(self) -> None:
        chosen = {
            name: getattr(self, name)
            for name in ("clipvalue", "clipnorm", "global_clipnorm")
            if getattr(self, name) is not None
        }
        if "clipnorm" in chosen and "global_clipnorm" in chosen:
            raise ConfigError(
                "clipping", {k: chosen[k] for k in ("clipnorm", "global_clipnorm")},
                "at most one of clipnorm (per tensor) and global_clipnorm (all tensors)",
                hint="keep one; clipvalue may be added to either",
            )
        for name, value in chosen.items():
            object.__setattr__(self, name, _threshold(name, value))

    @property
    def active(self) -> bool:
        """Whether this clipper changes gradients (False: it only measures the norm).

        >>> GradientClipper().active, GradientClipper(clipnorm=1.0).active
        (False, True)
        """
        return any(v is not None for v in (self.clipvalue, self.clipnorm, self.global_clipnorm))

    def clipped(self, grads: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The clipped gradients as new tensors and the pre-clip global norm: the same
        formulas as :meth:`__call__`, without in-place writes, for code that is traced into a
        graph (the compiled training step). Per-tensor sums of squares instead of
        ``_foreach_norm`` let Inductor fuse the reductions.

        >>> g = [torch.tensor([3.0, 4.0]), torch.tensor([12.0])]
        >>> out, norm = GradientClipper(clipnorm=5.0).clipped(g)
        >>> float(norm), [t.tolist() for t in out]
        (13.0, [[3.0, 4.0], [5.0]])
        """
        squares = [(g * g).sum() for g in grads]
        norm = torch.stack(squares).sum().sqrt()
        if self.clipvalue is not None and (self.clipnorm or self.global_clipnorm):
            grads = [g.clamp(-self.clipvalue, self.clipvalue) for g in grads]
            squares = [(g * g).sum() for g in grads]
            if self.global_clipnorm is not None:
                after = torch.stack(squares).sum().sqrt()
                scale = torch.clamp(self.global_clipnorm / (after + 1e-6), max=1.0)
                return [g * scale for g in grads], norm
            return [g * torch.clamp(self.clipnorm / sq.sqrt(), max=1.0)  # type: ignore[arg-type,operator]
                    for g, sq in zip(grads, squares, strict=True)], norm
        if self.global_clipnorm is not None:  # clip_grad_norm_: max / (norm + 1e-6), at most 1
            scale = torch.clamp(self.global_clipnorm / (norm + 1e-6), max=1.0)
            return [g * scale for g in grads], norm
        if self.clipnorm is not None:  # each tensor: min(1, clipnorm / ||g||)
            return [g * torch.clamp(self.clipnorm / sq.sqrt(), max=1.0)
                    for g, sq in zip(grads, squares, strict=True)], norm
        if self.clipvalue is not None:
            return [g.clamp(-self.clipvalue, self.clipvalue) for g in grads], norm
        return list(grads), norm

    @torch.no_grad()
    def __call__(self, params: Params) -> torch.Tensor:
        """Clip ``p.grad`` of ``params`` in place; return the pre-clip global norm (0-dim)."""
        params = _params(params)
        if self.clipvalue is not None and (self.clipnorm or self.global_clipnorm):
            total = global_norm(params)
            clip_by_value_(params, self.clipvalue)
            if self.global_clipnorm is not None:
                clip_by_global_norm_(params, self.global_clipnorm)
            else:
                clip_by_norm_(params, self.clipnorm)  # type: ignore[arg-type]
            return total
        if self.global_clipnorm is not None:
            return clip_by_global_norm_(params, self.global_clipnorm)
        if self.clipnorm is not None:
            return torch.linalg.vector_norm(clip_by_norm_(params, self.clipnorm))
        total = global_norm(params)
        if self.clipvalue is not None:
            clip_by_value_(params, self.clipvalue)
        return total
