"""Reliability diagram: accuracy vs confidence per bin, as a PNG (matplotlib, lazy import).

A calibrated model's bars lie on the diagonal; bars below it mean over-confidence (DeGroot &
Fienberg, 1983; Guo et al., 2017). The title carries the ECE; a lower panel shows how many
examples fall in each bin.

Example:
    >>> import tempfile, pathlib
    >>> import torch
    >>> probs = torch.softmax(torch.randn(200, 3, generator=torch.Generator().manual_seed(0)), 1)
    >>> labels = torch.randint(0, 3, (200,), generator=torch.Generator().manual_seed(1))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = reliability_diagram(probs, labels, pathlib.Path(tmp) / "rel.png")
    ...     path.read_bytes()[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from steadygrad._atomic import atomic_path
from steadygrad.errors import ConfigError
from steadygrad.uncertainty.calibration import (
    DEFAULT_BINS,
    expected_calibration_error,
    reliability_bins,
)

__all__ = ["reliability_diagram"]


def reliability_diagram(
    probs: Any,
    labels: Any,
    path: str | os.PathLike[str],
    *,
    n_bins: int = DEFAULT_BINS,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a reliability diagram of ``probs`` vs ``labels`` to ``path`` (PNG).

    Args:
        probs: ``(N, C)`` class probabilities or ``(N,)`` positive-class probabilities.
        labels: ``(N,)`` true classes.
        path: where to write the ``.png`` (its folder is created).
        n_bins: equal-width confidence bins (default 15, as the ECE).
        title: figure title (default: ``"Reliability (ECE = ...)"``).
        overwrite: replace an existing file (default: refuse, nothing a user made is lost).

    Returns:
        The path written.

    Raises:
        ConfigError: ``path`` is not a ``.png`` or exists and ``overwrite`` is False.
        ImportError: matplotlib is missing (``pip install steadygrad[plot]``).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> probs = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]
        >>> out = reliability_diagram(probs, [0, 1, 1, 1], folder / "plots" / "rel.png",
        ...                           n_bins=5)
        >>> out.name, out.read_bytes()[:4]
        ('rel.png', b'\\x89PNG')
        >>> reliability_diagram(probs, [0, 1, 1, 1], out)  # never overwrites by default
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: path: got '...rel.png'; expected a path that does not \
exist yet; pass overwrite=True to replace it
    """
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ConfigError("path", str(path), "a path ending in .png")
    if out.exists() and not overwrite:
        raise ConfigError("path", str(path), "a path that does not exist yet",
                          hint="pass overwrite=True to replace it")
    bins = reliability_bins(probs, labels, n_bins)
    ece = expected_calibration_error(probs, labels, n_bins)
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("reliability_diagram needs matplotlib: pip install "
                          "'steadygrad[plot]'") from err

    fig = Figure(figsize=(5, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    width = 1.0 / n_bins
    centers = bins.edges[:-1] + width / 2
    top.bar(centers, bins.accuracy, width=width, edgecolor="black", label="accuracy")
    gap = bins.confidence - bins.accuracy
    top.bar(centers, gap, bottom=bins.accuracy, width=width, color="tab:red", alpha=0.3,
            label="gap to confidence")
    top.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.set_title(title or f"Reliability (ECE = {ece:.3f}, {n_bins} bins)")
    top.legend(loc="upper left")
    bottom.bar(centers, bins.counts, width=width, edgecolor="black")
    bottom.set_xlabel("confidence (top-label probability)")
    bottom.set_ylabel("examples")
    bottom.set_xlim(0, 1)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return out
