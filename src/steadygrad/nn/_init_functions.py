"""The initializer functions behind :mod:`steadygrad.nn.init` (pure math, no registry).

Each fills a tensor in place under ``no_grad`` and returns it; see :mod:`steadygrad.nn.init`
for the table of names, the Keras semantics and the PyTorch differences.

Example:
    >>> import torch
    >>> compute_fans(torch.empty(32, 16, 3, 3).shape)
    (144, 288)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from steadygrad.errors import ConfigError

__all__ = [
    "DISTRIBUTIONS",
    "MODES",
    "check_number",
    "check_variance_scaling",
    "compute_fans",
    "constant",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "ones",
    "orthogonal",
    "variance_scaling",
    "zeros",
]

MODES: tuple[str, ...] = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS: tuple[str, ...] = ("truncated_normal", "untruncated_normal", "uniform")

_TRUNCATED_STD = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shape in PyTorch's ``(out, in, *kernel)`` layout.

    Scalars give ``(1, 1)`` and 1-D shapes ``(n, n)``, as in Keras's ``compute_fans``.

    Example:
        >>> compute_fans((64, 3, 5, 5))  # Conv2d(3, 64, 5): fan_in = 3*25, fan_out = 64*25
        (75, 1600)
        >>> compute_fans((10, 784)), compute_fans((7,))
        ((784, 10), (7, 7))
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _check_tensor(tensor: Any, *, min_ndim: int = 0) -> Tensor:
    if not isinstance(tensor, Tensor) or not tensor.is_floating_point():
        raise ConfigError("tensor", type(tensor).__name__, "a floating-point torch.Tensor")
    if tensor.ndim < min_ndim:
        raise ConfigError(
            "tensor", tuple(tensor.shape), f"a tensor with at least {min_ndim} dimensions"
        )
    return tensor


def check_number(path: str, value: Any, *, positive: bool = False) -> float:
    """``value`` as a finite float (``> 0`` if ``positive``), else a ConfigError at ``path``.

    Example:
        >>> check_number("gain", 2)
        2.0
        >>> check_number("scale", 0.0, positive=True)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: scale: got 0.0; expected a finite number > 0
    """
    expected = "a finite number" + (" > 0" if positive else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(path, value, expected)
    if not math.isfinite(value) or (positive and value <= 0):
        raise ConfigError(path, value, expected)
    return float(value)


def check_variance_scaling(scale: Any, mode: Any, distribution: Any) -> tuple[float, str, str]:
    """Validated, normalized ``(scale, mode, distribution)``; ConfigError naming the argument.

    Example:
        >>> check_variance_scaling(2, "FAN_IN", "normal")  # Keras: "normal" is truncated
        (2.0, 'fan_in', 'truncated_normal')
    """
    scale = check_number("scale", scale, positive=True)
    mode_key = mode.lower() if isinstance(mode, str) else mode
    if mode_key not in MODES:
        raise ConfigError("mode", mode, f"one of {', '.join(MODES)}")
    dist_key = distribution.lower() if isinstance(distribution, str) else distribution
    if dist_key == "normal":  # Keras maps "normal" to the truncated normal
        dist_key = "truncated_normal"
    if dist_key not in DISTRIBUTIONS:
        raise ConfigError(
            "distribution", distribution, f"one of {', '.join(DISTRIBUTIONS)} (or 'normal')"
        )
    return scale, mode_key, dist_key


def variance_scaling(
    tensor: Tensor,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Fill ``tensor`` with zero-mean values of variance ``scale / n`` (Keras VarianceScaling).

    ``n`` is ``fan_in``, ``fan_out`` or their mean (``mode``), at least 1. ``truncated_normal``
    draws ``N(0, s^2)`` cut to ``[-2s, 2s]`` with ``s = sqrt(scale / n) / 0.8796...`` (so the
    values' std is ``sqrt(scale / n)``); ``untruncated_normal`` draws ``N(0, scale / n)``;
    ``uniform`` draws ``U(-limit, limit)`` with ``limit = sqrt(3 * scale / n)``.

    Args:
        tensor: the floating-point tensor to fill in place.
        scale: positive variance multiplier (2 for ReLU, He et al. 2015).
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
        distribution: ``"truncated_normal"`` (alias ``"normal"``), ``"untruncated_normal"`` or
            ``"uniform"``.
        generator: torch RNG to draw from (default: the global one).

    Returns:
        ``tensor``.

    Raises:
        ConfigError: ``scale <= 0``, unknown ``mode`` or ``distribution``, or not a float tensor.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> w = variance_scaling(torch.empty(100, 300), 3.0, "fan_in", "uniform", generator=g)
        >>> bool(w.abs().max() <= (3 * 3.0 / 300) ** 0.5)  # limit = sqrt(3 * scale / fan_in)
        True
        >>> round(w.var().item() * 300 / 3.0, 1)  # variance = scale / fan_in
        1.0
    """
    scale, mode, distribution = check_variance_scaling(scale, mode, distribution)
    _check_tensor(tensor)
    fan_in, fan_out = compute_fans(tensor.shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    variance = scale / max(1.0, n)
    with torch.no_grad():
        if distribution == "truncated_normal":
            std = math.sqrt(variance) / _TRUNCATED_STD
            return nn.init.trunc_normal_(tensor, 0.0, std, -2 * std, 2 * std, generator=generator)
        if distribution == "untruncated_normal":
            return tensor.normal_(0.0, math.sqrt(variance), generator=generator)
        limit = math.sqrt(3.0 * variance)
        return tensor.uniform_(-limit, limit, generator=generator)


def glorot_normal(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Glorot/Xavier normal: truncated normal, std ``sqrt(2 / (fan_in + fan_out))``.

    ``variance_scaling(1.0, "fan_avg", "truncated_normal")`` (Glorot & Bengio, 2010).

    Example:
        >>> w = glorot_normal(torch.empty(300, 100), generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item() / (2 / 400) ** 0.5, 1)
        1.0
    """
    return variance_scaling(tensor, 1.0, "fan_avg", "truncated_normal", generator=generator)


def glorot_uniform(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Glorot/Xavier uniform: ``U(-l, l)``, ``l = sqrt(6 / (fan_in + fan_out))``; Keras's default.

    ``variance_scaling(1.0, "fan_avg", "uniform")`` (Glorot & Bengio, 2010).

    Example:
        >>> w = glorot_uniform(torch.empty(300, 100))
        >>> bool(w.abs().max() <= (6 / 400) ** 0.5)
        True
    """
    return variance_scaling(tensor, 1.0, "fan_avg", "uniform", generator=generator)


def he_normal(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """He/Kaiming normal: truncated normal, std ``sqrt(2 / fan_in)``; for the ReLU family.

    ``variance_scaling(2.0, "fan_in", "truncated_normal")`` (He et al., 2015,
    arXiv:1502.01852). ``torch.nn.init.kaiming_normal_`` has the same std, untruncated.

    Example:
        >>> w = he_normal(torch.empty(100, 400), generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item() / (2 / 400) ** 0.5, 1)
        1.0
    """
    return variance_scaling(tensor, 2.0, "fan_in", "truncated_normal", generator=generator)


def he_uniform(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """He/Kaiming uniform: ``U(-l, l)``, ``l = sqrt(6 / fan_in)``.

    ``variance_scaling(2.0, "fan_in", "uniform")``; equals
    ``torch.nn.init.kaiming_uniform_(nonlinearity="relu")``, *not* torch's layer default.

    Example:
        >>> w = he_uniform(torch.empty(100, 400))
        >>> bool(w.abs().max() <= (6 / 400) ** 0.5)
        True
    """
    return variance_scaling(tensor, 2.0, "fan_in", "uniform", generator=generator)


def lecun_normal(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """LeCun normal: truncated normal, std ``sqrt(1 / fan_in)``; the init SELU needs.

    ``variance_scaling(1.0, "fan_in", "truncated_normal")`` (Klambauer et al., 2017).

    Example:
        >>> w = lecun_normal(torch.empty(100, 400), generator=torch.Generator().manual_seed(0))
        >>> round(w.std().item() * 400**0.5, 1)
        1.0
    """
    return variance_scaling(tensor, 1.0, "fan_in", "truncated_normal", generator=generator)


def lecun_uniform(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """LeCun uniform: ``U(-l, l)``, ``l = sqrt(3 / fan_in)``.

    ``variance_scaling(1.0, "fan_in", "uniform")`` (LeCun et al., 1998, "Efficient BackProp").

    Example:
        >>> w = lecun_uniform(torch.empty(100, 400))
        >>> bool(w.abs().max() <= (3 / 400) ** 0.5)
        True
    """
    return variance_scaling(tensor, 1.0, "fan_in", "uniform", generator=generator)


def orthogonal(
    tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    """``gain`` times a random (semi-)orthogonal matrix (Saxe et al., 2014, arXiv:1312.6120).

    The tensor is viewed as ``(shape[0], prod(shape[1:]))`` (one row per output unit, as
    ``torch.nn.init.orthogonal_``): rows are orthonormal when ``out <= in``, columns otherwise.
    Keras flattens its ``(*kernel, in, out)`` kernel the transposed way; the result is the same
    up to the layout.

    Example:
        >>> w = orthogonal(torch.empty(3, 5), gain=2.0)
        >>> torch.allclose(w @ w.T, 4 * torch.eye(3), atol=1e-5)
        True
    """
    gain = check_number("gain", gain)
    _check_tensor(tensor, min_ndim=2)
    with torch.no_grad():
        return nn.init.orthogonal_(tensor, gain=gain, generator=generator)


def zeros(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Fill with 0 (Keras's bias default). ``generator`` is accepted and unused.

    Example:
        >>> zeros(torch.ones(2)).tolist()
        [0.0, 0.0]
    """
    with torch.no_grad():
        return _check_tensor(tensor).zero_()


def ones(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Fill with 1. ``generator`` is accepted and unused.

    Example:
        >>> ones(torch.zeros(2)).tolist()
        [1.0, 1.0]
    """
    with torch.no_grad():
        return _check_tensor(tensor).fill_(1.0)


def constant(
    tensor: Tensor, value: float = 0.0, *, generator: torch.Generator | None = None
) -> Tensor:
    """Fill with ``value`` (e.g. a small positive ReLU bias). ``generator`` is unused.

    Example:
        >>> constant(torch.zeros(2), value=0.1).tolist()
        [0.1, 0.1]
    """
    value = check_number("value", value)
    with torch.no_grad():
        return _check_tensor(tensor).fill_(value)

