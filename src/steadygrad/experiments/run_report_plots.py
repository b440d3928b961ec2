"""The figures of a single run's report (PNG bytes; matplotlib's Agg canvas, no pyplot state).

- :func:`curves_png`: training and validation loss and metric per epoch;
- :func:`lr_png`: the learning rate of each epoch's last step;
- :func:`grad_norm_png`: the global gradient norm *before* clipping (the trainer's per-epoch
  mean, ``history.csv``) and *after* clipping (the monitor's sampled steps, weights only,
  ``health.json``), with the clipping threshold drawn;
- :func:`layer_health_png`: per-layer gradient RMS, dead and saturated fractions and update
  ratios over the monitored steps, with the rule thresholds drawn; a panel without data says
  why.

Every function returns ``(png, caption)``; the caption states what the numbers show.

Example:
    >>> png, caption = lr_png({"lr": [0.1, 0.05, 0.025]})
    >>> png[:4], caption
    (b'\\x89PNG', 'Learning rate of each epoch (last step): 0.1 -> 0.025.')
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

__all__ = ["curves_png", "grad_norm_png", "layer_health_png", "lr_png"]

_DPI = 100


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


def _finite(values: Any) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def _empty(ax: Any, why: str) -> None:
    ax.text(0.5, 0.5, why, ha="center", va="center", wrap=True, fontsize=9,
            transform=ax.transAxes, color="#59636e")
    ax.set_xticks([])
    ax.set_yticks([])


def curves_png(history: dict[str, list[float]]) -> tuple[bytes, str] | None:
    """Loss (and the first other metric) per epoch, training and validation.

    >>> png, caption = curves_png({"loss": [2.0, 1.0], "val_loss": [2.1, 1.3]})
    >>> caption
    'Training loss 2 -> 1, validation loss 2.1 -> 1.3 over 2 epochs.'
    """
    if not history.get("loss"):
        return None
    metrics = [k for k in history if not k.startswith("val_")
               and k not in ("loss", "lr", "grad_norm", "seconds", "skipped_steps", "epoch")
               and not k.endswith("penalty")]
    keys = ["loss", *metrics[:1]]
    from matplotlib.ticker import MaxNLocator

    fig = _figure(12, 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(keys)))
    for ax, key in zip(axes, keys, strict=True):
        for name, style in ((key, "-"), (f"val_{key}", "--")):
            if name in history:
                y = _finite(history[name])
                ax.plot(np.arange(1, len(y) + 1), y, style, marker="o", markersize=3,
                        label="validation" if name.startswith("val_") else "training")
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    loss = _finite(history["loss"])
    text = f"Training loss {loss[0]:.3g} -> {loss[-1]:.3g}"
    if "val_loss" in history:
        val = _finite(history["val_loss"])
        text += f", validation loss {val[0]:.3g} -> {val[-1]:.3g}"
    return _png(fig), text + f" over {len(loss)} epochs."


def lr_png(history: dict[str, list[float]]) -> tuple[bytes, str] | None:
    """The learning rate per epoch (log axis when it spans more than a factor 10)."""
    if not history.get("lr"):
        return None
    lr = _finite(history["lr"])
    fig = _figure(6, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(np.arange(1, len(lr) + 1), lr, marker="o", markersize=3, label="learning rate")
    finite = lr[np.isfinite(lr) & (lr > 0)]
    if finite.size and finite.max() / finite.min() > 10:
        ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title("learning rate (last step of each epoch)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig), f"Learning rate of each epoch (last step): {lr[0]:.3g} -> {lr[-1]:.3g}."


def grad_norm_png(history: dict[str, list[float]], health: dict[str, Any] | None,
                  clipping: dict[str, float], steps_per_epoch: int | None
                  ) -> tuple[bytes, str] | None:
    """Gradient norm before clipping (trainer) and after clipping (monitor), threshold drawn.

    The trainer logs the mean pre-clip global norm of each epoch (all parameters); the monitor
    reads ``p.grad`` after the optimizer step, i.e. after clipping, at its sampled steps
    (weights only). Without clipping both measure the unclipped gradient.

    >>> h = {"grad_norm": [12.0, 9.0]}
    >>> health = {"steps": [0, 5, 40, 60], "grad_norm": [1.0, 1.0, 1.0, 1.0]}
    >>> png, caption = grad_norm_png(h, health, {"global_clipnorm": 1.0}, 36)
    >>> print(caption)
    Global gradient norm before clipping (trainer, epoch mean): 12 -> 9; after clipping
    (monitor, median of 4 sampled steps): 1, at the global_clipnorm = 1 bound: clipping acted.
    """
    pre = _finite(history.get("grad_norm", []))
    post = _finite((health or {}).get("grad_norm", []))
    steps = np.array((health or {}).get("steps", []), dtype=float)[: len(post)]
    if not pre.size and not post.size:
        return None
    fig = _figure(12, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    clipped = bool(clipping)
    if pre.size:
        x = (np.arange(1, len(pre) + 1) * steps_per_epoch if steps_per_epoch
             else np.arange(1, len(pre) + 1))
        ax.plot(x, pre, marker="o", color="tab:blue",
                label="before clipping (trainer, mean over each epoch)")
    if post.size:
        ax.plot(steps, post, "o", markersize=4, color="tab:orange", zorder=3,
                label=("after clipping" if clipped else "no clipping")
                + " (monitor, sampled steps, weights only)")
    bound = clipping.get("global_clipnorm")
    if bound is not None:
        ax.axhline(bound, color="tab:red", linestyle="--", lw=1, zorder=1,
                   label=f"global_clipnorm = {bound:g}")
    positive = np.concatenate([pre[np.isfinite(pre)], post[np.isfinite(post)]])
    positive = positive[positive > 0]
    if positive.size and positive.max() / positive.min() > 20:
        ax.set_yscale("log")
    ax.set_xlabel("step" if steps_per_epoch or post.size else "epoch")
    ax.set_ylabel("global gradient L2 norm")
    ax.set_title("gradient norm before and after clipping")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    parts = []
    if pre.size:
        parts.append(f"before clipping (trainer, epoch mean): {pre[0]:.3g} -> {pre[-1]:.3g}")
    if post.size:
        med = float(np.nanmedian(post))
        what = "after clipping" if clipped else "unclipped"
        parts.append(f"{what} (monitor, median of {len(post)} sampled steps): {med:.3g}")
        if bound is not None:
            acted = pre.size and float(np.nanmedian(pre)) > bound
            parts[-1] += (f", at the global_clipnorm = {bound:g} bound: clipping acted" if acted
                          else f", below the global_clipnorm = {bound:g} bound most of the time")
    settings = ", ".join(f"{k} = {v:g}" for k, v in clipping.items()) or "clipping off"
    text = "Global gradient norm " + "; ".join(parts) + "."
    if bound is None:
        text += f" ({settings}.)"
    return _png(fig), text


_PANELS = (
    ("grad_rms", "gradient RMS (w.r.t. layer output)", "log"),
    ("dead_frac", "dead units (fraction)", "linear"),
    ("sat_frac", "saturated outputs (fraction)", "linear"),
    ("update_ratio", "update / weight RMS ratio", "log"),
)


def _layer_matrix(health: dict[str, Any], key: str) -> np.ndarray:
    cols = [_finite(layer.get("series", {}).get(key, [])) for layer in health["layers"]]
    n = max((len(c) for c in cols), default=0)
    return np.array([np.pad(c, (0, n - len(c)), constant_values=np.nan) for c in cols]).T


def _why_empty(key: str, matrix: np.ndarray) -> str | None:
    if matrix.size == 0 or not np.isfinite(matrix).any():
        return {"dead_frac": "not measured: no ReLU-family layer (dead units exist only "
                             "where the activation has a zero-gradient side)",
                "sat_frac": "not measured: no bounded activation (sigmoid/tanh) to saturate",
                }.get(key, "not measured at the sampled steps")
    if key in ("dead_frac", "sat_frac") and np.nanmax(matrix) == 0:
        what = "dead unit" if key == "dead_frac" else "saturated output"
        return f"0 in every layer at every sampled step: no {what} (nothing to draw)"
    return None


def layer_health_png(health: dict[str, Any] | None) -> tuple[bytes, str] | None:
    """Per-layer series over the monitored steps, one line per layer, thresholds drawn.

    Layers are colored from input (dark) to output (light); with more than 12 layers a color
    bar replaces the legend.
    """
    if not health or not health.get("layers") or not health.get("steps"):
        return None
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    names = [layer["name"] for layer in health["layers"]]
    steps = np.array(health["steps"], dtype=float)
    th = health.get("thresholds", {})
    lines = {"dead_frac": [(th.get("dead_fraction"), "dead_fraction")],
             "sat_frac": [(th.get("saturation_fraction"), "saturation_fraction")],
             "update_ratio": [(th.get("lr_low"), "lr_low"), (th.get("lr_high"), "lr_high")]}
    cmap = colormaps["viridis"]
    colors = [cmap(i / max(1, len(names) - 1) * 0.9) for i in range(len(names))]
    fig = _figure(12, 6.4)
    axes = fig.subplots(2, 2).ravel()
    empty = []
    for ax, (key, title, scale) in zip(axes, _PANELS, strict=True):
        matrix = _layer_matrix(health, key)
        ax.set_title(title, fontsize=10)
        why = _why_empty(key, matrix)
        if why is not None:
            _empty(ax, why)
            empty.append(title.split(" (")[0])
            continue
        n = min(len(steps), matrix.shape[0])
        for i, name in enumerate(names):
            ax.plot(steps[:n], matrix[:n, i], color=colors[i], lw=1.2, label=name)
        for value, label in lines.get(key, []):
            if value is not None:
                ax.axhline(value, color="tab:red", linestyle="--", lw=1,
                           label=f"threshold {label} = {value:g}")
        positive = matrix[np.isfinite(matrix) & (matrix > 0)]
        if scale == "log" and positive.size:
            ax.set_yscale("log")
        elif scale == "linear":
            ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(names) <= 12:
            ax.legend(fontsize=7, ncol=2 if len(names) > 6 else 1)
        else:
            handles = [h for h in ax.get_lines() if h.get_label().startswith("threshold")]
            if handles:
                ax.legend(handles=handles, fontsize=7)
    if len(names) > 12:
        bar = fig.colorbar(ScalarMappable(Normalize(0, len(names) - 1), cmap), ax=axes,
                           shrink=0.8, label="layer index (input -> output)")
        bar.ax.tick_params(labelsize=7)
    grad = _layer_matrix(health, "grad_rms")
    text = f"{len(names)} layers over {len(steps)} monitored steps."
    if grad.size and np.isfinite(grad[-1]).any() and np.nanmin(grad[-1]) > 0:
        ratio = float(np.nanmax(grad[-1]) / np.nanmin(grad[-1]))
        text += (f" At the last check the gradient RMS spans {math.log10(ratio):.1f} orders "
                 "of magnitude across layers.")
    if empty:
        text += " Empty panels say why: " + ", ".join(empty) + "."
    return _png(fig), text
