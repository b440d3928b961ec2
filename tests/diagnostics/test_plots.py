"""The plots write real PNG files from a monitored run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from .reference_runs import he, mlp, train

pytest.importorskip("matplotlib")


def test_plot_report_writes_three_pngs(tmp_path: Path) -> None:
    from steadygrad.diagnostics.plots import plot_report

    torch.manual_seed(0)
    rep = train(mlp(4, 16, nn.ReLU, init=he), steps=6, lr=0.01)
    assert rep.series.histograms  # kept on sparse checks (0, 1, 2, 4)
    assert [h[0] for h in rep.series.histograms] == [0, 1, 2, 4]
    counts = rep.series.histograms[0][1]
    assert counts.shape == (5, 40) and counts.sum(1).tolist() == [64.0 * 16] * 4 + [640.0]
    paths = plot_report(rep, tmp_path / "plots")
    assert [p.name for p in paths] == ["gradient_profile.png", "activations.png",
                                       "unit_health.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 2000


def test_unit_health_has_legend_thresholds_and_says_why_a_panel_is_empty() -> None:
    """Regression (issue 18): the monitor's PNGs drew up to 21 unlabeled lines with no
    legend and no thresholds."""
    from steadygrad.diagnostics.plots import unit_health_figure
    from steadygrad.diagnostics.rules import Thresholds

    torch.manual_seed(0)
    rep = train(mlp(4, 16, nn.ReLU, init=he), steps=6, lr=0.01)
    rep.thresholds = Thresholds(dead_fraction=0.3)
    rep.series.values["dead_frac"][:, 0] = 0.4  # something to draw
    fig = unit_health_figure(rep)
    dead, sat = fig.axes[0], fig.axes[1]
    labels = [t.get_text() for t in dead.get_legend().get_texts()]
    assert rep.series.layers[0] in labels and "threshold dead_fraction = 0.3" in labels
    assert any(line.get_ydata()[0] == 0.3 for line in dead.get_lines())  # the report's value
    assert sat.get_legend() is None and sat.texts  # ReLU net: the empty panel says why
