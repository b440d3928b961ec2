"""The gradient-health monitor's numbers as TensorBoard tags, or through any logger.

Tag scheme (``step`` is the optimizer step the monitor sampled):

==========================================  ================================================
tag                                         value
==========================================  ================================================
``health/grad_norm``                        global L2 norm of all monitored weight gradients
``health/<series>/<layer>``                 every per-layer series of
                                            :data:`~steadygrad.diagnostics.series.LAYER_SERIES`
                                            (``weight_grad_norm``, ``update_ratio``,
                                            ``dead_frac``, ``sat_frac``, ``grad_rms``, ...)
``health/loss``                             the loss the monitor was given at that step
``health/findings/<severity>``              number of findings of that severity (``info``,
                                            ``warning``, ``error``), at the last sampled step
``health/activations/<layer>`` (histogram)  the layer's activation histogram at the few steps
                                            the monitor keeps
==========================================  ================================================

Non-finite values are skipped (TensorBoard cannot draw them; the ``*_nonfinite`` series and
the ``error`` count say where they were). The hosts' callbacks log a compact live subset
through their own loggers (:func:`compact_scalars`).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from steadygrad.diagnostics.monitor import GradientMonitor
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> with GradientMonitor(net, every=1) as mon:
    ...     for _ in range(3):
    ...         loss = net(torch.randn(16, 4)).pow(2).mean()
    ...         opt.zero_grad(); loss.backward(); opt.step(); mon.step(loss)
    >>> seen = []
    >>> n = write_health(mon.report(), lambda tag, value, step: seen.append((tag, step)))
    >>> ("health/grad_norm", 2) in seen, ("health/update_ratio/0", 0) in seen, n == len(seen)
    (True, True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from steadygrad.diagnostics.rules import SEVERITIES
from steadygrad.errors import ConfigError

if TYPE_CHECKING:
    from steadygrad.diagnostics.report import HealthReport

__all__ = ["COMPACT_SERIES", "compact_scalars", "health_scalars", "summary_writer",
           "write_health"]

ScalarLogger = Callable[[str, float, int], Any]
"""Any callable ``(tag, value, step)``."""

COMPACT_SERIES = ("weight_grad_norm", "update_ratio", "dead_frac", "sat_frac")
"""Per-layer series whose network-wide maximum the host callbacks log live."""


def health_scalars(report: HealthReport) -> Iterator[tuple[str, float, int]]:
    """Yield every finite ``(tag, value, step)`` of the documented tag scheme.

    >>> from steadygrad.diagnostics.report import HealthReport
    >>> from steadygrad.diagnostics.series import HealthSeries
    >>> s = HealthSeries.empty(["fc"], steps=[0, 5]); s.grad_norm[:] = [1.0, 2.0]
    >>> list(health_scalars(HealthReport(series=s, findings=[])))  # doctest: +NORMALIZE_WHITESPACE
    [('health/grad_norm', 1.0, 0), ('health/grad_norm', 2.0, 5),
     ('health/findings/info', 0.0, 5), ('health/findings/warning', 0.0, 5),
     ('health/findings/error', 0.0, 5)]
    """
    s = report.series
    for tag, values in (("health/grad_norm", s.grad_norm), ("health/loss", s.loss)):
        for step, v in zip(s.steps, values, strict=True):
            if math.isfinite(v):
                yield tag, float(v), int(step)
    for key, table in s.values.items():
        for j, layer in enumerate(s.layers):
            for i, step in enumerate(s.steps):
                v = table[i, j]
                if math.isfinite(v):
                    yield f"health/{key}/{layer}", float(v), int(step)
    if s.steps:
        last = int(s.steps[-1])
        for sev in SEVERITIES:
            yield (f"health/findings/{sev}",
                   float(sum(f.severity == sev for f in report.findings)), last)


def compact_scalars(report: HealthReport) -> dict[str, float]:
    """The live subset the host callbacks log: the last sampled step's global gradient norm,
    the network-wide maximum of each of :data:`COMPACT_SERIES` and the finding counts.

    Keys: ``health/grad_norm``, ``health/<series>_max``, ``health/findings_<severity>``
    (non-finite values are left out).

    >>> from steadygrad.diagnostics.report import HealthReport
    >>> from steadygrad.diagnostics.series import HealthSeries
    >>> s = HealthSeries.empty(["a", "b"], steps=[0]); s.values["dead_frac"][0] = [0.1, 0.5]
    >>> compact_scalars(HealthReport(series=s, findings=[]))["health/dead_frac_max"]
    0.5
    """
    s = report.series
    out: dict[str, float] = {}
    if s.steps:
        last = {"health/grad_norm": s.grad_norm[-1]}
        for key in COMPACT_SERIES:
            row = s.values[key][-1]
            if np.isfinite(row).any():
                last[f"health/{key}_max"] = np.nanmax(np.where(np.isfinite(row), row, np.nan))
        out.update({k: float(v) for k, v in last.items() if math.isfinite(v)})
    for sev in SEVERITIES:
        out[f"health/findings_{sev}"] = float(sum(f.severity == sev for f in report.findings))
    return out


def summary_writer(log_dir: str | Path) -> Any:
    """A ``torch.utils.tensorboard.SummaryWriter`` for ``log_dir``.

    Raises:
        ImportError: the ``tensorboard`` package is missing (says how to install it).
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "TensorBoard logging needs the 'tensorboard' package: "
            "pip install 'steadygrad[tensorboard]' (or pip install tensorboard)") from e
    return SummaryWriter(log_dir=str(log_dir))


def _histogram(writer: Any, tag: str, counts: np.ndarray, lo: float, hi: float,
               step: int) -> None:
    """One monitor histogram (``bins`` counts over ``[lo, hi]``) as a raw TensorBoard one."""
    total = float(counts.sum())
    if total <= 0:
        return
    edges = np.linspace(lo, hi, counts.size + 1)
    mids = (edges[:-1] + edges[1:]) / 2
    nz = np.nonzero(counts)[0]
    writer.add_histogram_raw(
        tag, min=float(edges[nz[0]]), max=float(edges[nz[-1] + 1]), num=total,
        sum=float((mids * counts).sum()), sum_squares=float((mids ** 2 * counts).sum()),
        bucket_limits=edges[1:].tolist(), bucket_counts=counts.tolist(), global_step=step)


def write_health(report: HealthReport, logger: Any) -> int:
    """Send ``report`` to ``logger`` in the documented tag scheme; returns the scalar count.

    Args:
        report: a :class:`~steadygrad.diagnostics.report.HealthReport`.
        logger: a ``SummaryWriter`` (scalars via ``add_scalar``, histograms via
            ``add_histogram_raw``; flushed at the end), a folder path (a writer is opened
            there and closed), or any callable ``(tag, value, step)`` (scalars only).

    Raises:
        ConfigError: ``logger`` is none of these.
    """
    close = False
    if isinstance(logger, (str, Path)):
        logger, close = summary_writer(logger), True
    if hasattr(logger, "add_scalar"):
        emit: ScalarLogger = logger.add_scalar
    elif callable(logger):
        emit = logger
    else:
        raise ConfigError("logger", type(logger).__name__,
                          "a SummaryWriter, a log folder or a callable (tag, value, step)")
    n = 0
    for tag, value, step in health_scalars(report):
        emit(tag, value, step)
        n += 1
    if hasattr(logger, "add_histogram_raw"):
        s = report.series
        ranges = {m.index: m.hist_range for m in s.meta}
        for step, hist in s.histograms:
            for j, layer in enumerate(s.layers):
                lo, hi = ranges.get(j, (-4.0, 4.0))
                _histogram(logger, f"health/activations/{layer}", np.asarray(hist[j]), lo, hi,
                           int(step))
    if hasattr(logger, "flush"):
        logger.flush()
    if close:
        logger.close()
    return n
