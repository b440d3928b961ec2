"""A Keras-style ``model.summary()`` for any ``nn.Module``: output shapes and parameter counts.

:func:`summary` runs the model on zeros in eval mode (no gradients, RNG state untouched),
records each layer's output shape with forward hooks, and counts parameters the way Keras
does:

- *trainable*: parameters with ``requires_grad=True``;
- *non-trainable*: frozen parameters (``requires_grad=False``) **and** floating-point
  buffers kept in the ``state_dict``, e.g. batch norm's ``running_mean`` / ``running_var``
  (Keras's ``moving_mean`` / ``moving_variance`` are non-trainable weights). Integer buffers
  such as ``num_batches_tracked`` are bookkeeping, not weights, and are not counted.

A tensor shared by several modules is counted once (at its first owner). The batch
dimension is shown as ``None``: the model is run at two batch sizes and every dimension that
changes with the batch size is reported as ``None``.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 1))
    >>> s = summary(model, (4,))
    >>> s.total_params, s.trainable_params, s.non_trainable_params
    (31, 25, 6)
    >>> print(s)
    Model: "Sequential"
    _______________________________________________
     Layer (type)       Output Shape    Param #
    ===============================================
     0 (Linear)         (None, 3)       15
     1 (BatchNorm1d)    (None, 3)       12
     2 (ReLU)           (None, 3)       0
     3 (Linear)         (None, 1)       4
    ===============================================
    Total params: 31
    Trainable params: 25
    Non-trainable params: 6
    _______________________________________________
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from steadygrad.errors import ConfigError

__all__ = ["LayerRow", "ModelSummary", "summary"]

Shape = Any  # tuple[int | None, ...], or a list of shapes for multi-output layers, or None


@dataclass(frozen=True)
class LayerRow:
    """One line of a summary.

    Attributes:
        name: ``"path (ClassName)"``, the module's path in ``named_modules()``.
        path: the module's path (``""`` for the root).
        type: the module's class name.
        output_shape: output shape with ``None`` for batch-dependent dims; a list for several
            outputs; None when the module was not called by ``forward``.
        params: parameters and counted buffers the module owns directly (each counted once).
        trainable_params: the trainable part of ``params``.

    Example:
        >>> from torch import nn
        >>> row = summary(nn.Sequential(nn.BatchNorm1d(3)), (3,)).rows[0]
        >>> row.name, row.output_shape, row.params, row.trainable_params
        ('0 (BatchNorm1d)', (None, 3), 12, 6)
    """

    name: str
    path: str
    type: str
    output_shape: Shape
    params: int
    trainable_params: int


@dataclass(frozen=True)
class ModelSummary:
    """The result of :func:`summary`; ``str()`` renders a Keras-like table.

    Attributes:
        model_name: the model's class name.
        rows: one :class:`LayerRow` per call of a leaf module (or of a module that owns
            parameters directly), in call order, then modules ``forward`` never called.
        total_params: trainable + non-trainable.
        trainable_params: parameters with ``requires_grad=True``.
        non_trainable_params: frozen parameters and floating-point state buffers.
        input_shape: the input shape given, without the batch dimension.

    Example:
        >>> from torch import nn
        >>> s = summary(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), (2,))
        >>> s.model_name, len(s.rows), s.total_params
        ('Sequential', 2, 6)
    """

    model_name: str
    rows: tuple[LayerRow, ...]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    input_shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (shapes as lists, ``None`` for the batch).

        >>> from torch import nn
        >>> summary(nn.Linear(2, 1), (2,)).to_dict()["rows"][0]["output_shape"]
        [None, 1]
        """

        def jsonable(shape: Shape) -> Any:
            if isinstance(shape, (tuple, list)):
                return [jsonable(s) for s in shape]
            return shape

        out = asdict(self)
        out["rows"] = [{**r, "output_shape": jsonable(r["output_shape"])} for r in out["rows"]]
        out["input_shape"] = list(self.input_shape)
        return out

    def __str__(self) -> str:
        headers = ("Layer (type)", "Output Shape", "Param #")
        cells = [(r.name, _format_shape(r.output_shape), f"{r.params:,}") for r in self.rows]
        widths = [max([len(h), *(len(c[i]) for c in cells)]) + 4 for i, h in enumerate(headers)]
        width = sum(widths) + 1

        def line(values: Sequence[str]) -> str:
            return (" " + "".join(v.ljust(w) for v, w in zip(values, widths, strict=True))).rstrip()

        out = [f'Model: "{self.model_name}"', "_" * width, line(headers), "=" * width]
        out += [line(c) for c in cells]
        out += [
            "=" * width,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
            "_" * width,
        ]
        return "\n".join(out)


def _format_shape(shape: Shape) -> str:
    if shape is None:
        return "(not called)"
    if isinstance(shape, list):
        return "[" + ", ".join(_format_shape(s) for s in shape) + "]"
    if isinstance(shape, tuple):
        return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
    return str(shape)


def _is_counted_buffer(module: nn.Module, name: str, buf: torch.Tensor | None) -> bool:
    return (
        buf is not None
        and buf.is_floating_point()
        and name not in getattr(module, "_non_persistent_buffers_set", set())
    )


def _owned(module: nn.Module, seen: set[int]) -> tuple[int, int]:
    """(all, trainable) counts of tensors ``module`` owns directly and that are not in ``seen``."""
    total = trainable = 0
    for p in module.parameters(recurse=False):
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
            trainable += p.numel() if p.requires_grad else 0
    for name, b in module.named_buffers(recurse=False):
        if _is_counted_buffer(module, name, b) and id(b) not in seen:
            seen.add(id(b))
            total += b.numel()
    return total, trainable


def _shape_of(output: Any) -> Shape:
    if isinstance(output, torch.Tensor):
        return tuple(output.shape)
    if isinstance(output, dict):
        return [_shape_of(v) for v in output.values()]
    if isinstance(output, (tuple, list)):
        return [_shape_of(v) for v in output]
    return None


def _merge(a: Shape, b: Shape) -> Shape:
    """Dims that differ between the runs at two batch sizes depend on the batch: None."""
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return tuple(x if x == y else None for x, y in zip(a, b, strict=True))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [_merge(x, y) for x, y in zip(a, b, strict=True)]
    return a


def _check_input_shape(input_shape: object) -> tuple[int, ...]:
    if isinstance(input_shape, int) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    if not isinstance(input_shape, (tuple, list, torch.Size)) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in input_shape
    ):
        raise ConfigError(
            "input_shape", input_shape, "a tuple of positive ints without the batch dim",
            hint="e.g. (784,) or (1, 28, 28)",
        )
    return tuple(input_shape)


def _device(model: nn.Module) -> torch.device:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def _hooked(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for path, m in model.named_modules():
        is_leaf = next(m.children(), None) is None
        owns = next(m.parameters(recurse=False), None) is not None or any(
            _is_counted_buffer(m, n, b) for n, b in m.named_buffers(recurse=False)
        )
        if is_leaf or owns:
            yield path, m


def _run(
    model: nn.Module, modules: list[tuple[str, nn.Module]], x: torch.Tensor
) -> list[tuple[int, Shape]]:
    calls: list[tuple[int, Shape]] = []
    handles = []
    for i, (_, m) in enumerate(modules):

        def hook(_m: nn.Module, _inp: Any, out: Any, i: int = i) -> None:
            calls.append((i, _shape_of(out)))

        handles.append(m.register_forward_hook(hook))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return calls


def summary(
    model: nn.Module,
    input_shape: Sequence[int] | int,
    *,
    batch_size: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> ModelSummary:
    """Summarize ``model``: each layer's output shape and parameter count, Keras style.

    The model is run on zeros of shape ``(batch, *input_shape)`` in eval mode under
    ``torch.no_grad()``, on the device of its parameters, with the global RNG state saved
    and restored; every module's ``training`` flag is restored afterwards.

    Args:
        model: any module whose ``forward`` takes one tensor.
        input_shape: the shape of one example (no batch dim), e.g. ``(1, 28, 28)``.
        batch_size: show this batch size instead of ``None`` (runs once at this size).
        dtype: the input dtype (``torch.long`` for an embedding model).

    Returns:
        A :class:`ModelSummary`.

    Raises:
        ConfigError: ``input_shape`` or ``batch_size`` is not valid.

    Example:
        >>> from torch import nn
        >>> cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2704, 10))
        >>> s = summary(cnn, (1, 28, 28))
        >>> [r.output_shape for r in s.rows]
        [(None, 4, 26, 26), (None, 4, 26, 26), (None, 2704), (None, 10)]
        >>> s.total_params == sum(p.numel() for p in cnn.parameters())
        True
    """
    shape = _check_input_shape(input_shape)
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ConfigError("batch_size", batch_size, "a positive int or None (shown as None)")
    if not isinstance(dtype, torch.dtype):
        raise ConfigError("dtype", dtype, "a torch.dtype, e.g. torch.float32")

    modules = list(_hooked(model))
    device = _device(model)
    modes = [(m, m.training) for m in model.modules()]
    sizes = [batch_size] if batch_size is not None else [2, 3]
    runs = []
    forked = [device] if device.type == "cuda" else []
    try:
        model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=forked):
            for n in sizes:
                x = torch.zeros((n, *shape), dtype=dtype, device=device)
                runs.append(_run(model, modules, x))
    finally:
        for m, was_training in modes:
            m.training = was_training

    calls = runs[0]
    if len(runs) == 2 and [i for i, _ in runs[1]] == [i for i, _ in calls]:
        calls = [(i, _merge(a, b)) for (i, a), (_, b) in zip(calls, runs[1], strict=True)]

    seen: set[int] = set()
    counts = {i: _owned(m, seen) for i, (_, m) in enumerate(modules)}
    rows: list[LayerRow] = []
    shown: set[int] = set()

    def row(i: int, out: Shape) -> LayerRow:
        path, m = modules[i]
        total, trainable = counts[i] if i not in shown else (0, 0)
        shown.add(i)
        kind = type(m).__name__
        return LayerRow(f"{path or '(root)'} ({kind})", path, kind, out, total, trainable)

    rows = [row(i, out) for i, out in calls]
    rows += [row(i, None) for i in range(len(modules)) if i not in shown]

    # Totals over the whole model (tensors not owned by any hooked module included), once each.
    seen = set()
    total = trainable = 0
    for m in model.modules():
        t, tr = _owned(m, seen)
        total += t
        trainable += tr
    return ModelSummary(
        model_name=type(model).__name__,
        rows=tuple(rows),
        total_params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        input_shape=shape,
    )
