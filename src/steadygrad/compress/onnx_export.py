"""Export a model to ONNX and check that ONNX Runtime computes the same outputs.

Optional extra: ``pip install 'steadygrad[onnx]'`` (``onnx``, ``onnxruntime`` and
``onnxscript``, which torch's default ``torch.export``-based exporter needs). The export uses
``torch.onnx.export(..., dynamo=True)``, PyTorch's recommended exporter, with a dynamic batch
dimension, then runs the file with ONNX Runtime on a random batch and compares with the
PyTorch model in eval mode (``atol=1e-5`` by default).

Example (skipped in the doctests: the first export takes seconds; tests/compress runs it):
    >>> import tempfile, pathlib
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +SKIP
    ...     path = export_onnx(model, pathlib.Path(tmp) / "model.onnx", (4,))
    ...     path.suffix
    '.onnx'
"""

from __future__ import annotations

import copy
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from steadygrad._atomic import atomic_path
from steadygrad.errors import ConfigError

__all__ = ["ONNX_PACKAGES", "check_onnx", "export_onnx", "onnx_available"]

ONNX_PACKAGES: tuple[str, ...] = ("onnx", "onnxruntime", "onnxscript")
"""Packages the ONNX export and its check need."""


def onnx_available() -> bool:
    """True when ``onnx``, ``onnxruntime`` and ``onnxscript`` are importable.

    >>> isinstance(onnx_available(), bool)
    True
    """
    return all(importlib.util.find_spec(name) is not None for name in ONNX_PACKAGES)


def _require_onnx() -> None:
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"ONNX export needs {', '.join(missing)}: pip install 'steadygrad[onnx]' "
            f"(or pip install {' '.join(missing)})"
        )


def _shape(input_shape: Sequence[int] | int) -> tuple[int, ...]:
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                            for d in shape):
        raise ConfigError("input_shape", input_shape, "a tuple of positive ints without the "
                          "batch dimension", hint="e.g. (784,) or (28, 28)")
    return shape


def check_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    x: torch.Tensor,
    *,
    atol: float = 1e-5,
) -> float:
    """Max absolute difference between ONNX Runtime on ``path`` and ``model`` on ``x``.

    Raises:
        AssertionError: the difference exceeds ``atol`` (the message gives it).

    Example (needs the ``onnx`` extra; skipped in the doctests, tests/compress covers it):
        >>> net = torch.nn.Linear(3, 2)
        >>> path = export_onnx(net, "net.onnx", (3,), check=False)  # doctest: +SKIP
        >>> check_onnx(net, path, torch.randn(4, 3)) < 1e-5  # doctest: +SKIP
        True
    """
    _require_onnx()
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = session.run(None, {name: x.detach().cpu().numpy()})[0]
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            want = model(x).detach().cpu().numpy()
    finally:
        model.train(was)
    diff = float(np.abs(got - want).max())
    if not diff <= atol:
        raise AssertionError(f"ONNX Runtime output differs from PyTorch by {diff:.3g} "
                             f"(> atol={atol})")
    return diff


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_shape: Sequence[int] | int,
    *,
    check: bool = True,
    atol: float = 1e-5,
    opset_version: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Export ``model`` (eval mode) to an ONNX file with a dynamic batch dimension.

    Args:
        model: any traceable ``nn.Module`` taking one float tensor; not changed.
        path: the ``.onnx`` file to write (its folder is created).
        input_shape: shape of one example, without the batch dimension.
        check: run the file with ONNX Runtime on a random batch of 3 and compare with the
            model (raises ``AssertionError`` beyond ``atol``).
        atol: tolerance of the check.
        opset_version: ONNX opset (None: the exporter's recommended one).
        overwrite: replace an existing file (default: refuse).

    Returns:
        The path written.

    Raises:
        ConfigError: bad ``path``/``input_shape``, or the file exists and not ``overwrite``.
        ImportError: the optional ONNX packages are missing (the message says what to
            install).

    Example (the checks that run before any export; a real export takes seconds and is
    exercised in tests/compress):
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> model = nn.Linear(4, 2)
        >>> export_onnx(model, folder / "model.pt", (4,))
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: path: got '...model.pt'; expected a path ending in .onnx
        >>> _ = (folder / "old.onnx").write_bytes(b"")
        >>> export_onnx(model, folder / "old.onnx", (4,))
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: path: got '...old.onnx'; expected a path that does not \
exist yet; pass overwrite=True to replace it
    """
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    out = Path(path)
    if out.suffix.lower() != ".onnx":
        raise ConfigError("path", str(path), "a path ending in .onnx")
    if out.exists() and not overwrite:
        raise ConfigError("path", str(path), "a path that does not exist yet",
                          hint="pass overwrite=True to replace it")
    shape = _shape(input_shape)
    _require_onnx()
    exported = copy.deepcopy(model).eval()
    param = next(exported.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    example = torch.randn(2, *shape, device=device)
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(
        exported, (example,), input_names=["input"], output_names=["output"], dynamo=True,
        dynamic_shapes=({0: batch},), opset_version=opset_version, verbose=False,
    )
    assert program is not None
    with atomic_path(out) as tmp:
        program.save(str(tmp))
    if check:
        check_onnx(exported, out, torch.randn(3, *shape, device=device), atol=atol)
    return out
