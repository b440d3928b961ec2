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

__all__ = ["HALF_DTYPES", "QUANTIZATION_BACKENDS", "CastInputs", "available_backends",
           "quantize_dynamic_int8", "to_half"]

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


def _quantize_torch(model: nn.Module) -> nn.Module:
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

            return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=False)
    finally:
        torch.backends.quantized.engine = previous


def _quantize_torchao(model: nn.Module) -> nn.Module:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    out = copy.deepcopy(model)
    quantize_(out, Int8DynamicActivationInt8WeightConfig())
    return out


def quantize_dynamic_int8(model: nn.Module, *, backend: str = "auto") -> nn.Module:
    """A copy of ``model`` whose ``Linear`` layers compute with int8 weights and activations.

    For CPU inference of dense nets: about 4x smaller ``Linear`` weights and, on large
    batches, faster matrix products. Outputs differ from fp32 by the quantization error
    (typically < 1% of the logit range). ``model`` itself is not changed.

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
    out = _quantize_torch(source) if backend == "torch" else _quantize_torchao(source)
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
