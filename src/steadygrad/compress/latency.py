"""Measure inference latency: median and 90th percentile milliseconds per batch.

Each batch size is timed ``repeats`` times after ``warmup`` untimed calls, one forward pass
per timing (``time.perf_counter``), under ``torch.inference_mode`` with the model in eval
mode (its modes are restored). The median is robust to the hiccups of a shared machine; the
p90 shows the tail. The table records the thread count, torch version and device, because
CPU latency depends on them (``torch.set_num_threads``).

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    >>> table = latency(model, batch_sizes=(1, 32), repeats=5, warmup=1)
    >>> [row.batch_size for row in table.rows], table.input_shape
    ([1, 32], (8,))
    >>> all(0 < r.median_ms <= r.p90_ms for r in table.rows)
    True
    >>> print(table.to_markdown().splitlines()[0])
    | batch | median ms | p90 ms | µs / example | examples / s |
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from steadygrad.errors import ConfigError

__all__ = ["LatencyRow", "LatencyTable", "infer_input_shape", "latency", "percentile"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation (NumPy's default method).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 90)
    3.7
    """
    if not values:
        raise ConfigError("values", values, "a non-empty sequence")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


@dataclass(frozen=True)
class LatencyRow:
    """Timings of one batch size (milliseconds per forward pass of the whole batch).

    Example:
        >>> row = LatencyRow(batch_size=50, median_ms=2.0, p90_ms=2.5)
        >>> row.us_per_example, row.examples_per_s
        (40.0, 25000.0)
    """

    batch_size: int
    median_ms: float
    p90_ms: float

    @property
    def us_per_example(self) -> float:
        """Median microseconds per example."""
        return 1000.0 * self.median_ms / self.batch_size

    @property
    def examples_per_s(self) -> float:
        """Throughput at the median latency."""
        return 1000.0 * self.batch_size / self.median_ms


@dataclass
class LatencyTable:
    """The result of :func:`latency`: one row per batch size plus the context.

    Example:
        >>> table = LatencyTable([LatencyRow(1, 0.05, 0.08), LatencyRow(100, 1.0, 1.25)],
        ...                      input_shape=(8,), threads=1, repeats=5, warmup=1, device="cpu")
        >>> table.row(100).us_per_example
        10.0
        >>> print(table.to_markdown().splitlines()[-1])
        | 100 | 1.0000 | 1.2500 | 10.00 | 100,000 |
        >>> table.row(7)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: batch_size: got 7; expected one of 1, 100
    """

    rows: list[LatencyRow]
    input_shape: tuple[int, ...]
    threads: int
    repeats: int
    warmup: int
    device: str
    torch_version: str = torch.__version__
    machine: str = field(default_factory=platform.machine)

    def row(self, batch_size: int) -> LatencyRow:
        """The row of ``batch_size``."""
        for r in self.rows:
            if r.batch_size == batch_size:
                return r
        raise ConfigError("batch_size", batch_size,
                          f"one of {', '.join(str(r.batch_size) for r in self.rows)}")

    def to_markdown(self) -> str:
        """A Markdown table (batch, median ms, p90 ms, µs/example, examples/s)."""
        lines = ["| batch | median ms | p90 ms | µs / example | examples / s |",
                 "|---:|---:|---:|---:|---:|"]
        for r in self.rows:
            lines.append(f"| {r.batch_size} | {r.median_ms:.4f} | {r.p90_ms:.4f} | "
                         f"{r.us_per_example:.2f} | {r.examples_per_s:,.0f} |")
        return "\n".join(lines)


def infer_input_shape(model: nn.Module) -> tuple[int, ...] | None:
    """``(in_features,)`` of the first ``Linear`` in ``model`` (a flat input), else None.

    >>> infer_input_shape(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)))
    (784,)
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            return (module.in_features,)
        in_features = getattr(module, "in_features", None)  # e.g. quantized Linear
        if isinstance(in_features, int):
            return (in_features,)
    return None


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(name, value, f"an int >= {low}")
    return value


def latency(
    model: nn.Module,
    batch_sizes: Sequence[int] = (1, 256),
    *,
    repeats: int = 50,
    warmup: int = 5,
    input_shape: Sequence[int] | None = None,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> LatencyTable:
    """Time ``model``'s forward pass at each batch size: median and p90 milliseconds.

    Args:
        model: any ``nn.Module`` taking one tensor; its modes are restored afterwards.
        batch_sizes: the batch sizes to time.
        repeats: timed calls per batch size (>= 1).
        warmup: untimed calls first (allocator, caches, lazy init).
        input_shape: one example's shape (None: the first ``Linear``'s ``in_features``).
        dtype: dtype of the random inputs (the model's own dtype handling is kept).
        seed: seed of the random inputs.

    Returns:
        A :class:`LatencyTable` recording ``torch.get_num_threads()`` and the device.

    Raises:
        ConfigError: bad arguments, or no ``input_shape`` and no ``Linear`` to infer it from.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5)).train()
        >>> table = latency(net, batch_sizes=(2, 8), repeats=3, warmup=0)
        >>> [r.batch_size for r in table.rows], table.input_shape, table.repeats, net.training
        ([2, 8], (4,), 3, True)
        >>> latency(torch.nn.ReLU(), batch_sizes=(1,))  # no Linear: the shape must be given
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: input_shape: got None; expected one example's shape ...
    """
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    if isinstance(batch_sizes, int) or not batch_sizes:
        raise ConfigError("batch_sizes", batch_sizes, "a non-empty sequence of ints >= 1")
    sizes = [_check_int("batch_sizes", b, 1) for b in batch_sizes]
    _check_int("repeats", repeats, 1)
    _check_int("warmup", warmup, 0)
    shape = tuple(input_shape) if input_shape is not None else infer_input_shape(model)
    if shape is None:
        raise ConfigError("input_shape", None, "one example's shape (no batch dimension)",
                          hint="the model has no Linear layer to infer it from")
    for d in shape:
        _check_int("input_shape", d, 1)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    gen = torch.Generator().manual_seed(seed)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    rows = []
    try:
        with torch.inference_mode():
            for size in sizes:
                x = torch.randn(size, *shape, generator=gen).to(device=device, dtype=dtype)
                for _ in range(warmup):
                    model(x)
                times = []
                for _ in range(repeats):
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    start = time.perf_counter()
                    model(x)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    times.append((time.perf_counter() - start) * 1000.0)
                rows.append(LatencyRow(size, statistics.median(times), percentile(times, 90)))
    finally:
        for module, mode in modes:
            module.training = mode
    return LatencyTable(rows, tuple(shape), torch.get_num_threads(), repeats, warmup,
                        str(device))
