"""Report figures from runs whose health series differ in length (one diverged early)."""

from __future__ import annotations

from pathlib import Path

from steadygrad.experiments.report import RunRecord, SweepReport, summarize
from steadygrad.experiments.report_plots import _colors, _gradients

PNG = b"\x89PNG\r\n\x1a\n"


def _health(n: int) -> dict:
    return {"steps": list(range(0, 10 * n, 10)), "grad_norm": [1.0 + i for i in range(n)],
            "layers": [{"name": "fc1", "series": {"grad_rms": [0.1] * n}}]}


def test_gradient_figure_with_a_short_diverged_series() -> None:
    # The seed-1 run diverged after 2 checks; the seed-0 run has 5. Steps of the last run read
    # used to be paired with the mean over the longest: the plot then raised on unequal lengths.
    runs = (RunRecord("a", (), 0, "done", final={"loss": 1.0}, health=_health(5)),
            RunRecord("b", (), 1, "done", final={"loss": 2.0}, health=_health(2)))
    report = SweepReport("s", Path("."), "loss", runs, tuple(summarize(runs, "loss")), ())
    png = _gradients(report, _colors(len(report.configs)))
    assert png is not None and png.startswith(PNG)
