"""Draw a learning-rate schedule (and 1cycle's momentum) over a run.

Needs matplotlib (``pip install steadygrad[plot]``); it is imported only when a plot is drawn.
Figures are made with ``matplotlib.figure.Figure`` and saved through the Agg canvas, so plotting
never touches pyplot's global state or needs a display.

Example:
    >>> from steadygrad.optim.schedules import one_cycle
    >>> fig = plot_schedule(one_cycle(0.1, 100), 100)
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['learning rate', 'momentum']
"""

from __future__ import annotations

import numbers
import os
from dataclasses import is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steadygrad._atomic import atomic_path
from steadygrad.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from steadygrad.optim.schedules import Schedule

__all__ = ["plot_schedule"]


def _matplotlib() -> Any:
    try:
        import matplotlib
        import matplotlib.figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plot_schedule needs matplotlib; install it with `pip install steadygrad[plot]` "
            "(or `pip install matplotlib`)"
        ) from exc
    return matplotlib


def _save(fig: Figure, path: Path) -> None:
    """Render with the Agg canvas into a temporary file, then rename it over ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120, bbox_inches="tight")


def plot_schedule(
    schedule: Schedule,
    total_steps: int,
    *,
    ax: Axes | None = None,
    path: str | os.PathLike[str] | None = None,
    log_y: bool = False,
    title: str | None = None,
) -> Figure:
    """Plot ``schedule(step)`` for ``step = 0 .. total_steps - 1``.

    If the schedule has a ``momentum(step)`` method returning numbers (1cycle), the momentum is
    drawn as a dashed line on a twin y axis.

    Args:
        schedule: any ``step -> lr`` callable (a :mod:`steadygrad.optim.schedules` schedule).
        total_steps: number of steps to draw (>= 1).
        ax: draw into these axes; by default a new figure is made.
        path: also save the figure there (format from the suffix, PNG by default; written
            atomically, parent folders created, an existing file replaced).
        log_y: logarithmic learning-rate axis.
        title: axes title; defaults to the schedule's ``repr`` (its name for a function).

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ConfigError: ``schedule`` not callable, or ``total_steps`` not a positive integer.
        ImportError: matplotlib is not installed.

    Example:
        >>> from steadygrad.optim.schedules import exponential
        >>> fig = plot_schedule(exponential(0.1, s=50), 100, log_y=True)
        >>> line = fig.axes[0].lines[0]
        >>> len(line.get_ydata()), round(float(line.get_ydata()[50]), 4)
        (100, 0.01)
    """
    if not callable(schedule):
        raise ConfigError("schedule", schedule, "a step -> learning rate callable",
                          hint="a PerformanceScheduler depends on metrics and cannot be plotted")
    if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral) or (
        total_steps < 1
    ):
        raise ConfigError("total_steps", total_steps, "an integer >= 1")
    _matplotlib()
    from matplotlib.figure import Figure

    steps = list(range(int(total_steps)))
    lrs = [float(schedule(step)) for step in steps]
    if ax is None:
        fig = Figure(figsize=(6.0, 3.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.get_figure()
    ax.plot(steps, lrs, color="tab:blue", label="learning rate")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    if log_y:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    momentum = getattr(schedule, "momentum", None)
    if callable(momentum) and momentum(0) is not None:
        twin = ax.twinx()
        twin.plot(steps, [float(momentum(step)) for step in steps], color="tab:orange",
                  linestyle="--", label="momentum")
        twin.set_ylabel("momentum")
    if title is None:
        title = repr(schedule) if is_dataclass(schedule) else getattr(schedule, "__name__", "")
    ax.set_title(title, fontsize=9)
    if path is not None:
        _save(fig, Path(path))
    return fig
