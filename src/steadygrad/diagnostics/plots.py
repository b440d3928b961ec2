"""PNG plots of a health report (matplotlib, imported lazily, Agg backend).

- :func:`plot_gradient_profile`: back-propagated gradient RMS per layer vs depth at several
  points in training (log scale): the classic vanishing/exploding picture.
- :func:`plot_activation_histograms`: per-layer activation distributions at the recorded
  checks (Glorot & Bengio 2010, Fig. 3-5 style).
- :func:`plot_unit_health`: dead and saturated fraction per layer over time, with a legend
  (a color bar above 12 layers) and the rule thresholds drawn.

Example:
    >>> import tempfile, pathlib
    >>> from steadygrad.diagnostics.series import HealthSeries
    >>> s = HealthSeries.empty(["a", "b"], steps=[0, 1])
    >>> s.values["grad_rms"][:] = [[1e-3, 1e-1], [1e-2, 1e-1]]
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "g.png"
    >>> plot_gradient_profile(s, out).suffix
    '.png'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from steadygrad.diagnostics.series import HealthSeries

__all__ = ["plot_activation_histograms", "plot_gradient_profile", "plot_report",
           "plot_unit_health", "unit_health_figure"]


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'steadygrad[plot]'") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return p


def _series(s: Any) -> HealthSeries:
    return s.series if hasattr(s, "series") else s


def _picks(n: int, k: int = 5) -> list[int]:
    return sorted(set(np.linspace(0, n - 1, min(k, n)).round().astype(int).tolist()))


def plot_gradient_profile(series: Any, path: str | os.PathLike[str]) -> Path:
    """Gradient RMS (w.r.t. each layer's output) vs depth at up to 5 checks; returns the path.

    Args:
        series: a :class:`HealthSeries` or a ``HealthReport``.
        path: the PNG to write.

    >>> import tempfile
    >>> s = HealthSeries.empty(["a", "b"], steps=[0])
    >>> plot_gradient_profile(s, Path(tempfile.mkdtemp()) / "g.png").name
    'g.png'
    """
    s = _series(series)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    depth = np.arange(len(s.layers))
    for k in _picks(s.checks):
        ax.plot(depth, s.values["grad_rms"][k], marker="o", label=f"step {s.steps[k]}")
    ax.set_yscale("log")
    ax.set_xlabel("layer (input -> output)")
    ax.set_ylabel("RMS of gradient w.r.t. layer output")
    ax.set_xticks(depth, s.layers, rotation=90, fontsize=7)
    ax.set_title("back-propagated gradient by depth")
    if s.checks:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_activation_histograms(series: Any, path: str | os.PathLike[str]) -> Path:
    """One panel per recorded check: each layer's activation histogram (normalized).

    Args:
        series: a :class:`HealthSeries` or a ``HealthReport``.
        path: the PNG to write.

    >>> import tempfile
    >>> s = HealthSeries.empty(["a"], steps=[0])
    >>> s.histograms = [(0, np.ones((1, 40)))]
    >>> plot_activation_histograms(s, Path(tempfile.mkdtemp()) / "h.png").name
    'h.png'
    """
    s = _series(series)
    plt = _plt()
    hists = [s.histograms[i] for i in _picks(len(s.histograms), 4)] if s.histograms else []
    fig, axes = plt.subplots(1, max(1, len(hists)), figsize=(4 * max(1, len(hists)), 3.2),
                             squeeze=False)
    for ax, (step, h) in zip(axes[0], hists, strict=False):
        for i, counts in enumerate(h):
            lo, hi = s.meta[i].hist_range if i < len(s.meta) else (-4.0, 4.0)
            centres = np.linspace(lo, hi, len(counts) + 1)
            centres = (centres[:-1] + centres[1:]) / 2
            total = counts.sum()
            ax.plot(centres, counts / total if total else counts, label=s.layers[i], lw=1)
        ax.set_title(f"activations, step {step}", fontsize=9)
        ax.set_xlabel("activation value")
    axes[0][0].set_ylabel("fraction of entries")
    if hists and len(s.layers) <= 12:
        axes[0][-1].legend(fontsize=6)
    return _save(fig, path)


def unit_health_figure(series: Any) -> Any:
    """The figure of :func:`plot_unit_health` (not saved): one line per layer with its name
    in the legend (a color bar from input to output above 12 layers), the rule thresholds
    (``dead_fraction``, ``saturation_fraction``; from the report, else the defaults) drawn
    dashed, and an empty panel saying why.

    >>> s = HealthSeries.empty(["a"], steps=[0, 5])
    >>> s.values["dead_frac"][:, 0] = [0.1, 0.6]
    >>> fig = unit_health_figure(s)
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['a', 'threshold dead_fraction = 0.5']
    """
    from steadygrad.diagnostics.rules import Thresholds

    s = _series(series)
    th = getattr(series, "thresholds", None) or Thresholds()
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True, layout="constrained")
    cmap = plt.get_cmap("viridis")
    n = max(1, len(s.layers) - 1)
    for ax, key, title, limit, label in (
            (axes[0], "dead_frac", "dead units", th.dead_fraction, "dead_fraction"),
            (axes[1], "sat_frac", "saturated outputs", th.saturation_fraction,
             "saturation_fraction")):
        drawn = 0
        for i, name in enumerate(s.layers):
            col = s.values[key][:, i]
            if np.any(np.nan_to_num(col) > 0):
                ax.plot(s.steps, col, label=name, lw=1, color=cmap(0.9 * i / n))
                drawn += 1
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        if not drawn:
            why = ("not measured (no layer of that kind)"
                   if not np.isfinite(s.values[key]).any() else "0 in every layer")
            ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes,
                    color="#59636e", fontsize=9)
            continue
        ax.axhline(limit, color="tab:red", linestyle="--", lw=1,
                   label=f"threshold {label} = {limit:g}")
        if len(s.layers) <= 12:
            ax.legend(fontsize=7, ncol=2 if drawn > 6 else 1)
        else:
            ax.legend(handles=[ax.get_lines()[-1]], fontsize=7)
    if len(s.layers) > 12:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        fig.colorbar(ScalarMappable(Normalize(0, len(s.layers) - 1), cmap), ax=axes,
                     label="layer index (input -> output)", shrink=0.8)
    axes[0].set_ylabel("fraction")
    return fig


def plot_unit_health(series: Any, path: str | os.PathLike[str]) -> Path:
    """Dead-unit fraction and saturated fraction per layer over training steps, with a
    legend and the thresholds (:func:`unit_health_figure`).

    Args:
        series: a :class:`HealthSeries` or a ``HealthReport``.
        path: the PNG to write.

    >>> import tempfile
    >>> s = HealthSeries.empty(["a"], steps=[0, 5])
    >>> s.values["dead_frac"][:, 0] = [0.1, 0.6]
    >>> plot_unit_health(s, Path(tempfile.mkdtemp()) / "u.png").name
    'u.png'
    """
    return _save(unit_health_figure(series), path)


def plot_report(report: Any, folder: str | os.PathLike[str]) -> list[Path]:
    """Write the three plots (``gradient_profile.png``, ``activations.png``,
    ``unit_health.png``) into ``folder``; returns their paths.

    >>> import tempfile
    >>> [p.name for p in plot_report(HealthSeries.empty(["a"], [0]), tempfile.mkdtemp())]
    ['gradient_profile.png', 'activations.png', 'unit_health.png']
    """
    d = Path(folder)
    return [plot_gradient_profile(report, d / "gradient_profile.png"),
            plot_activation_histograms(report, d / "activations.png"),
            plot_unit_health(report, d / "unit_health.png")]
