"""The figures of a sweep report, as PNG bytes (matplotlib's Agg canvas, no pyplot state).

* ``curves``: training loss and the ranking metric per epoch, mean over seeds with a ±1 std
  band, one colour per config;
* ``time``: seconds per epoch per config (mean, with the std over seeds as error bar);
* ``gradients``: per-layer gradient RMS at the last monitor check (geometric mean over seeds,
  log scale: vanishing gradients show as a slope across depth) and the global gradient norm
  over the monitored steps;
* ``profile_<rank>``: for each config (its first monitored run), the diagnostics module's
  :func:`~steadygrad.diagnostics.plots.plot_gradient_profile`: gradient RMS by depth at up to
  five points in training.

Example:
    >>> from pathlib import Path
    >>> from steadygrad.experiments.report import RunRecord, SweepReport, summarize
    >>> runs = (RunRecord("r", (), 0, "done", final={"loss": 0.5}, seconds_per_epoch=0.1,
    ...                   history={"loss": [1.0, 0.5]}),)
    >>> rep = SweepReport("s", Path("."), "loss", runs, tuple(summarize(runs, "loss")), ())
    >>> sorted(figures(rep)), figures(rep)["curves"][:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    (['curves', 'time'], True)
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from steadygrad.experiments.report import ConfigResult, SweepReport

__all__ = ["PROFILE_LIMIT", "figures", "grad_norm_curves", "layer_profile", "profile_runs",
           "stack_curves"]

_DPI = 110
PROFILE_LIMIT = 12
"""At most this many per-config gradient-profile figures (the best-ranked configs)."""


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(1, n - 1)) for i in range(n)]


def stack_curves(curves: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (ddof=1; 0 with one curve) per epoch of curves of unequal length.

    Epochs where no curve has a finite value are NaN.

    >>> m, s = stack_curves([[1.0, 0.5], [3.0]])
    >>> m.tolist(), s.tolist()
    ([2.0, 0.5], [1.4142135623730951, 0.0])
    """
    length = max((len(c) for c in curves), default=0)
    grid = np.full((len(curves), length), np.nan)
    for i, c in enumerate(curves):
        grid[i, : len(c)] = c
    grid[~np.isfinite(grid)] = np.nan
    count = np.sum(np.isfinite(grid), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, np.nansum(grid, axis=0) / np.maximum(count, 1), np.nan)
        sq = np.nansum((grid - mean) ** 2, axis=0)
        std = np.where(count > 1, np.sqrt(sq / np.maximum(count - 1, 1)), 0.0)
    return mean, std


def layer_profile(config: ConfigResult, series: str = "grad_rms"
                  ) -> tuple[list[str], np.ndarray] | None:
    """Layer names and the geometric mean over runs of each layer's last finite ``series``.

    >>> from steadygrad.experiments.report import ConfigResult, RunRecord
    >>> h = {"layers": [{"name": "fc1", "series": {"grad_rms": [1.0, 0.01]}},
    ...                 {"name": "fc2", "series": {"grad_rms": [1.0, None]}}]}
    >>> runs = (RunRecord("a", (), 0, "done", health=h), RunRecord("b", (), 1, "done", health=h))
    >>> names, values = layer_profile(ConfigResult("c", (), runs, None, None, 0, None, None, ()))
    >>> names, values.round(4).tolist()
    (['fc1', 'fc2'], [0.01, 1.0])
    """
    names: list[str] | None = None
    logs = []
    for run in config.runs:
        layers = (run.health or {}).get("layers") or []
        if not layers:
            continue
        run_names = [str(x.get("name")) for x in layers]
        if names is None:
            names = run_names
        if run_names != names:
            continue
        row = []
        for layer in layers:
            values = [v for v in layer.get("series", {}).get(series, [])
                      if v is not None and math.isfinite(v) and v > 0]
            row.append(math.log10(values[-1]) if values else math.nan)
        logs.append(row)
    if names is None or not logs:
        return None
    grid = np.array(logs, dtype=float)
    with np.errstate(invalid="ignore"):
        mean = np.array([np.nanmean(c) if np.isfinite(c).any() else np.nan for c in grid.T])
    return names, 10.0 ** mean


def _curves(report: SweepReport, colors: list[Any]) -> bytes | None:
    from matplotlib.ticker import MaxNLocator

    keys = [("loss", "training loss"), (report.metric, report.metric)]
    if report.metric == "loss":
        keys = keys[:1]
    if not any(r.history for r in report.runs):
        return None
    fig = _figure(11, 4.2)
    axes = fig.subplots(1, len(keys))
    axes = np.atleast_1d(axes)
    for ax, (key, title) in zip(axes, keys, strict=False):
        for config, color in zip(report.configs, colors, strict=True):
            curves = [r.history[key] for r in config.runs if r.history and key in r.history]
            if not curves:
                continue
            mean, std = stack_curves(curves)
            epochs = np.arange(1, len(mean) + 1)
            ax.plot(epochs, mean, color=color, marker="o", markersize=3, label=config.label)
            ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.15,
                            linewidth=0)
        finite = [v for line in ax.get_lines() for v in line.get_ydata() if np.isfinite(v)]
        if finite and min(finite) > 0 and max(finite) / min(finite) > 100:
            ax.set_yscale("log")  # e.g. a diverging config next to converging ones
        ax.set_title(f"{title} (mean ± std over seeds)")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=8, loc="best")
    return _png(fig)


def _time(report: SweepReport, colors: list[Any]) -> bytes | None:
    timed = [(c, col) for c, col in zip(report.configs, colors, strict=True) if c.seconds_per_epoch]
    if not timed:
        return None
    fig = _figure(8, 0.5 + 0.4 * len(timed) + 0.6)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(timed))
    ax.barh(y, [c.seconds_per_epoch for c, _ in timed],
            xerr=[c.seconds_std or 0.0 for c, _ in timed], color=[col for _, col in timed],
            alpha=0.8, capsize=3)
    ax.set_yticks(y, [c.label for c, _ in timed], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds per epoch (mean ± std over seeds)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def grad_norm_curves(config: ConfigResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pre-clip norm per epoch, steps, post-clip norm per monitored step)``, means over seeds.

    The trainer logs the global gradient norm *before* clipping (``history.csv``, mean of
    each epoch); the monitor reads the gradients after the optimizer step, i.e. *after*
    clipping (``health.json``). Showing both is what tells whether clipping acted.

    >>> from steadygrad.experiments.report import RunRecord, summarize
    >>> run = RunRecord("a", (), 0, "done", final={"loss": 1.0},
    ...                 history={"grad_norm": [12.0, 9.0]},
    ...                 health={"steps": [0, 5], "grad_norm": [1.0, 1.0]})
    >>> pre, steps, post = grad_norm_curves(summarize((run,), "loss")[0])
    >>> pre.tolist(), steps.tolist(), post.tolist()
    ([12.0, 9.0], [0.0, 5.0], [1.0, 1.0])
    """
    pre_curves = [r.history["grad_norm"] for r in config.runs
                  if r.history and r.history.get("grad_norm")]
    pre = stack_curves(pre_curves)[0] if pre_curves else np.array([])
    curves: list[list[float]] = []
    steps: list[int] = []
    for run in config.runs:
        health = run.health or {}
        if health.get("grad_norm"):
            curves.append([math.nan if v is None else v for v in health["grad_norm"]])
            # a run that diverged has a shorter series: keep the steps of the longest
            if len(health.get("steps") or ()) > len(steps):
                steps = list(health["steps"])
    if not curves or not steps:
        return pre, np.array([]), np.array([])
    post, _ = stack_curves(curves)
    n = min(len(steps), len(post))
    return pre, np.array(steps[:n], dtype=float), post[:n]


def _gradients(report: SweepReport, colors: list[Any]) -> bytes | None:
    profiles = [(c, col, layer_profile(c)) for c, col in zip(report.configs, colors, strict=True)]
    norms = [(c, col, grad_norm_curves(c)) for c, col in zip(report.configs, colors, strict=True)]
    if not any(p is not None for _, _, p in profiles) and not any(
            n[0].size or n[2].size for _, _, n in norms):
        return None
    fig = _figure(13, 4.2)
    left, middle, right = fig.subplots(1, 3)
    for config, color, profile in profiles:
        if profile is None:
            continue
        names, values = profile
        left.plot(np.arange(len(names)), values, color=color, marker="o", label=config.label)
        left.set_xticks(np.arange(len(names)), names, rotation=45, ha="right", fontsize=8)
    for config, color, (pre, steps, post) in norms:
        if pre.size:
            middle.plot(np.arange(1, len(pre) + 1), pre, color=color, marker="o",
                        markersize=3, label=config.label)
        if post.size:
            right.plot(steps, post, color=color, label=config.label)
    left.set_yscale("log")
    left.set_title("gradient RMS per layer, last check", fontsize=10)
    left.set_xlabel("layer (input → output)")
    middle.set_title("global grad norm BEFORE clipping\n(trainer, epoch mean)", fontsize=10)
    middle.set_xlabel("epoch")
    right.set_title("global grad norm AFTER clipping\n(monitor, sampled steps, weights)",
                    fontsize=10)
    right.set_xlabel("step")
    for ax in (left, middle, right):
        ax.grid(alpha=0.3)
        if any(line.get_ydata().size for line in ax.get_lines()):
            ax.set_yscale("log")
    (left if left.get_lines() else middle).legend(fontsize=8, loc="best")
    return _png(fig)


def profile_runs(report: SweepReport, limit: int = PROFILE_LIMIT
                 ) -> list[tuple[str, ConfigResult, str]]:
    """``(figure name, config, run name)`` of the per-config gradient profiles: the first
    monitored run (with at least one check) of each of the ``limit`` best-ranked configs.

    >>> from pathlib import Path
    >>> from steadygrad.experiments.report import RunRecord, SweepReport, summarize
    >>> h = {"steps": [0], "layers": [{"name": "fc1"}]}
    >>> runs = (RunRecord("a", (), 0, "done", final={"loss": 1.0}),
    ...         RunRecord("b", (), 1, "done", final={"loss": 1.0}, health=h))
    >>> rep = SweepReport("s", Path("."), "loss", runs, tuple(summarize(runs, "loss")), ())
    >>> [(name, run) for name, _, run in profile_runs(rep)]
    [('profile_1', 'b')]
    """
    out = []
    for rank, config in enumerate(report.configs[:limit], 1):
        run = next((r for r in config.runs
                    if r.health and r.health.get("steps") and r.health.get("layers")), None)
        if run is not None:
            out.append((f"profile_{rank}", config, run.name))
    return out


def _profiles(report: SweepReport) -> dict[str, bytes]:
    import tempfile

    from steadygrad.diagnostics.plots import plot_gradient_profile
    from steadygrad.diagnostics.report import HealthReport

    by_name = {r.name: r for r in report.runs}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, _, run_name in profile_runs(report):
            health = HealthReport.from_dict(by_name[run_name].health or {})
            path = plot_gradient_profile(health, Path(tmp) / f"{name}.png")
            out[name] = path.read_bytes()
    return out


def figures(report: SweepReport) -> dict[str, bytes]:
    """The report's figures as ``{name: PNG bytes}`` (a figure without data is left out).

    Example (no learning curves or gradient data here, so only the time figure is drawn):
        >>> from pathlib import Path
        >>> from steadygrad.experiments.report import RunRecord, SweepReport, summarize
        >>> runs = tuple(RunRecord(f"activation={a}-seed={s}", (("model.activation", a),), s,
        ...                        "done", final={"val_accuracy": v}, seconds_per_epoch=t)
        ...              for a, s, v, t in [("relu", 0, 0.9, 0.1), ("relu", 1, 0.8, 0.1),
        ...                                 ("tanh", 0, 0.7, 0.2), ("tanh", 1, 0.6, 0.2)])
        >>> report = SweepReport("acts", Path("sweeps/acts"), "val_accuracy", runs,
        ...                      tuple(summarize(runs, "val_accuracy")), ("model.activation",))
        >>> images = figures(report)
        >>> sorted(images), images["time"][:4]
        (['time'], b'\\x89PNG')
    """
    colors = _colors(len(report.configs))
    out = {}
    for name, make in (("curves", _curves), ("time", _time), ("gradients", _gradients)):
        png = make(report, colors)
        if png is not None:
            out[name] = png
    out.update(_profiles(report))
    return out
