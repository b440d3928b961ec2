"""Lower-precision inference: dynamic int8 quantization of ``Linear`` layers, fp16/bf16 copies.

Dynamic quantization stores each ``Linear`` weight as int8 (with a scale) and quantizes the
activations on the fly, batch by batch, so no calibration data is needed (Jacob et al.,
"Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference", CVPR 2018). PyTorch's API for it is moving:

- ``torch.ao.quantization.quantize_dynamic`` (eager mode, fbgemm/x86/qnnpack int8 kernels)
  is **deprecated** in favour of torchao (PyTorch's warning: "please migrate to use torchao
  eager mode quantize_ API"), but still shipped in torch 2.13 and is the path with fast CPU
  kernels in eager mode;
- ``torchao.quantization.quantize_(model, Int8DynamicActivationInt8WeightConfig())`` is the
  recommended replacement (``pip install torchao``); on CPU without ``torch.compile`` its
  eager kernels were slower than fp32 in our measurement (docs/benchmarks.md).

:func:`quantize_dynamic_int8` picks with ``backend="auto"``: the legacy engine when a
quantized CPU engine is available (its deprecation warnings are silenced here and this note
documents them), else torchao when installed, else a clear error naming both fixes.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).eval()
    >>> q = quantize_dynamic_int8(model)
    >>> x = torch.randn(8, 16)
    >>> bool((q(x) - model(x)).abs().max() < 0.05), type(model[0]).__name__
    (True, 'Linear')
"""

from __future__ import annotations

import copy
import importlib.util
import warnings

import torch
from torch import nn

from steadygrad.errors import ConfigError

__all__ = ["HALF_DTYPES", "MAX_WEIGHT_ERROR", "QUANTIZATION_BACKENDS", "CastInputs",
           "available_backends", "quantize_dynamic_int8", "to_half", "weight_error"]

QUANTIZATION_BACKENDS: tuple[str, ...] = ("auto", "torch", "torchao")
"""``backend`` values of :func:`quantize_dynamic_int8`."""

HALF_DTYPES: tuple[torch.dtype, ...] = (torch.bfloat16, torch.float16)
"""Dtypes accepted by :func:`to_half`."""


def _torch_engine() -> str | None:
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    if not engines or not hasattr(torch, "ao") or not hasattr(torch.ao, "quantization"):
        return None
    current = torch.backends.quantized.engine
    return current if current in engines else engines[0]


def available_backends() -> list[str]:
    """The dynamic-int8 backends usable here (``"torch"`` and/or ``"torchao"``).

    >>> set(available_backends()) <= {"torch", "torchao"}
    True
    """
    found = []
    if _torch_engine() is not None:
        found.append("torch")
    if importlib.util.find_spec("torchao") is not None:
        found.append("torchao")
    return found


MAX_WEIGHT_ERROR = 0.05
"""Largest int8 rounding error of a ``Linear`` weight that is quantized (:func:`weight_error`);
layers with a larger one stay float32. Healthy layers measure below 1%."""


def weight_error(weight: torch.Tensor) -> float:
    """Median over input features of the relative int8 rounding error of each weight column.

    Dynamic int8 uses one symmetric scale per tensor, ``max|W| / 127``. One outlier column
    then sets the scale for all, and the ordinary columns round to a few levels or to 0:
    after folding a batch norm whose input features are nearly constant
    (``s = γ / √(σ² + ε)`` with ``σ² ≈ 0``) the first layer's folded weight has columns
    hundreds of times the rest. The median column error measures what the typical input
    feature loses (the overall norm error does not: the outliers dominate it).

    >>> weight_error(torch.ones(4, 4))
    0.0
    >>> w = torch.full((4, 64), 0.5); w[:, 0] = 300.0  # one exploded column
    >>> round(weight_error(w), 2)  # 0.5 rounds to 0.0 at scale 300/127: the column is lost
    1.0
    """
    w = weight.detach().double().reshape(weight.shape[0], -1)
    scale = w.abs().max() / 127.0
    if scale == 0:
        return 0.0
    rounded = (w / scale).round().clamp(-128, 127) * scale
    norms = w.norm(dim=0)
    used = norms > 0
    if not bool(used.any()):
        return 0.0
    return float(((w - rounded).norm(dim=0)[used] / norms[used]).median())


def _precise_linears(model: nn.Module) -> tuple[set[str], dict[str, float]]:
    """(names of Linear layers int8 can represent, {name: error} of those it cannot)."""
    keep, skip = set(), {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            err = weight_error(module.weight)
            if err > MAX_WEIGHT_ERROR:
                skip[name] = err
            else:
                keep.add(name)
    return keep, skip


def _quantize_torch(model: nn.Module, names: set[str]) -> nn.Module:
    engine = _torch_engine()
    assert engine is not None
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        with warnings.catch_warnings():  # torch.ao.quantization's deprecation notices
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
            warnings.filterwarnings("ignore", message=".*torch.ao.quantization.*")
            from torch.ao.quantization import quantize_dynamic

            return quantize_dynamic(model, names, dtype=torch.qint8, inplace=False)
    finally:
        torch.backends.quantized.engine = previous


def _quantize_torchao(model: nn.Module, names: set[str]) -> nn.Module:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    out = copy.deepcopy(model)
    quantize_(out, Int8DynamicActivationInt8WeightConfig(),
              filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and fqn in names)
    return out


def quantize_dynamic_int8(model: nn.Module, *, backend: str = "auto") -> nn.Module:
    """A copy of ``model`` whose ``Linear`` layers compute with int8 weights and activations.

    For CPU inference of dense nets: about 4x smaller ``Linear`` weights and, on large
    batches, faster matrix products. Outputs differ from fp32 by the quantization error
    (typically < 1% of the logit range). ``model`` itself is not changed. A layer whose
    weight int8 cannot represent (relative rounding error above :data:`MAX_WEIGHT_ERROR`,
    :func:`weight_error`; e.g. the first layer after folding an input batch norm over
    near-constant features) stays float32, with a warning naming it.

    Args:
        model: any ``nn.Module`` on the CPU (eval mode is used).
        backend: ``"auto"`` (legacy ``torch.ao`` engine if available, else torchao),
            ``"torch"`` (``torch.ao.quantization.quantize_dynamic``, deprecated upstream) or
            ``"torchao"`` (``quantize_`` with ``Int8DynamicActivationInt8WeightConfig``).

    Returns:
        The quantized copy, in eval mode.

    Raises:
        ConfigError: unknown backend, a backend that is unavailable here (the message says
            how to get one), or a model with no ``Linear`` layer or not on the CPU.

    Example:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        >>> q = quantize_dynamic_int8(model)
        >>> x = torch.randn(4, 8)
        >>> bool((q(x) - model(x)).abs().max() < 0.05), type(model[0]) is nn.Linear
        (True, True)
        >>> quantize_dynamic_int8(nn.ReLU())
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: model: got 'ReLU'; expected a model with nn.Linear layers
    """
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    if backend not in QUANTIZATION_BACKENDS:
        raise ConfigError("backend", backend, f"one of {', '.join(QUANTIZATION_BACKENDS)}")
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise ConfigError("model", type(model).__name__, "a model with nn.Linear layers")
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ConfigError("model", "on a non-CPU device", "a CPU model",
                          hint="dynamic int8 kernels are CPU kernels; call model.cpu() first")
    have = available_backends()
    if backend == "auto":
        if not have:
            raise ConfigError(
                "backend", backend, "an available int8 backend",
                hint="this PyTorch build has no quantized CPU engine (fbgemm/x86/qnnpack) and "
                "torchao is not installed: pip install torchao",
            )
        backend = have[0]
    elif backend not in have:
        fix = ("pip install torchao" if backend == "torchao" else
               "this PyTorch build has no quantized engine; use backend='torchao'")
        raise ConfigError("backend", backend, f"an available backend ({', '.join(have) or 'none'})",
                          hint=fix)
    source = copy.deepcopy(model).eval()
    names, skipped = _precise_linears(source)
    if skipped:
        worst = max(skipped, key=skipped.__getitem__)
        warnings.warn(
            f"int8: {len(skipped)} Linear layer(s) stay float32 ({', '.join(skipped)}): their "
            f"weights lose up to {skipped[worst]:.0%} to int8 rounding (> "
            f"{MAX_WEIGHT_ERROR:.0%}; layer {worst!r}), because a few weights are far larger "
            "than the rest, as after folding a batch norm whose input features are nearly "
            "constant. To quantize it, standardize the inputs (data standardize=true) instead "
            "of an input batch norm, or quantize before folding", UserWarning, stacklevel=2)
    if not names:
        return source
    out = (_quantize_torch(source, names) if backend == "torch"
           else _quantize_torchao(source, names))
    return out.eval()


class CastInputs(nn.Module):
    """Wrap a model converted to ``dtype``: cast floating inputs to it, outputs back.

    Args:
        module: the converted model.
        dtype: its parameter dtype (inputs are cast to it).
        output_dtype: dtype of the returned outputs (None: leave them in ``dtype``).

    Example:
        >>> import torch
        >>> wrapped = CastInputs(torch.nn.Linear(2, 1).to(torch.bfloat16), torch.bfloat16)
        >>> wrapped(torch.ones(3, 2)).dtype
        torch.float32
    """

    def __init__(
        self,
        module: nn.Module,
        dtype: torch.dtype,
        output_dtype: torch.dtype | None = torch.float32,
    ) -> None:
        super().__init__()
        self.module = module
        self.dtype = dtype
        self.output_dtype = output_dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``module(x.to(dtype)).to(output_dtype)``."""
        if x.is_floating_point():
            x = x.to(self.dtype)
        out = self.module(x)
        return out if self.output_dtype is None else out.to(self.output_dtype)


def to_half(
    model: nn.Module,
    dtype: torch.dtype = torch.bfloat16,
    *,
    cast_inputs: bool = True,
) -> nn.Module:
    """A copy of ``model`` in ``bfloat16`` or ``float16``, in eval mode.

    bfloat16 keeps float32's exponent range (no overflow of large activations) with an 8-bit
    mantissa; float16 has a 10-bit mantissa but overflows above 65504. CPU speed depends on
    hardware support (AVX512-BF16/AMX); on older CPUs half precision can be slower.

    Args:
        model: any ``nn.Module``; not changed.
        dtype: ``torch.bfloat16`` (default) or ``torch.float16``.
        cast_inputs: wrap the copy in :class:`CastInputs` so it takes and returns float32.

    Example:
        >>> import torch
        >>> half = to_half(torch.nn.Linear(4, 2), torch.float16, cast_inputs=False)
        >>> half.weight.dtype
        torch.float16
    """
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    if dtype not in HALF_DTYPES:
        raise ConfigError("dtype", dtype, "torch.bfloat16 or torch.float16")
    out = copy.deepcopy(model).to(dtype).eval()
    return CastInputs(out, dtype).eval() if cast_inputs else out
