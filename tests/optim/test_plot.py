"""plot_schedule: the drawn data are the schedule's values; PNG files are written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from steadygrad.errors import ConfigError
from steadygrad.optim.plot import plot_schedule
from steadygrad.optim.schedules import cosine, one_cycle, piecewise_constant

pytest.importorskip("matplotlib")


def test_writes_a_png_whose_line_is_the_schedule(tmp_path: Path) -> None:
    sched = cosine(0.1, 50, alpha=0.1)
    path = tmp_path / "sub" / "lr.png"
    fig = plot_schedule(sched, 60, path=path, title="cosine")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    line = fig.axes[0].lines[0]
    np.testing.assert_array_equal(line.get_xdata(), np.arange(60))
    np.testing.assert_allclose(np.asarray(line.get_ydata()), [sched(t) for t in range(60)], rtol=0)
    assert fig.axes[0].get_title() == "cosine"
    assert len(fig.axes) == 1  # no momentum axis for a plain schedule
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_one_cycle_momentum_goes_on_a_twin_axis() -> None:
    sched = one_cycle(1.0, 100)
    fig = plot_schedule(sched, 100)
    lr_axis, momentum_axis = fig.axes
    np.testing.assert_allclose(
        np.asarray(lr_axis.lines[0].get_ydata()), [sched(t) for t in range(100)]
    )
    np.testing.assert_allclose(np.asarray(momentum_axis.lines[0].get_ydata()),
                               np.array([sched.momentum(t) for t in range(100)], dtype=float))
    assert momentum_axis.get_ylabel() == "momentum"
    assert "OneCycle" in lr_axis.get_title()
    assert len(plot_schedule(one_cycle(1.0, 100, momentum=None), 100).axes) == 1


def test_draws_into_given_axes_with_log_scale_and_overwrites(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    path = tmp_path / "lr.png"
    path.write_bytes(b"old")
    assert plot_schedule(lambda step: 0.1 / (1 + step), 10, ax=ax, log_y=True, path=path) is fig
    assert ax.get_yscale() == "log"
    assert path.read_bytes().startswith(b"\x89PNG")


def test_piecewise_steps_are_exact() -> None:
    sched = piecewise_constant([3, 6], [0.3, 0.2, 0.1])
    fig = plot_schedule(sched, 10)
    drawn = np.asarray(fig.axes[0].lines[0].get_ydata()).tolist()
    assert drawn == [0.3] * 4 + [0.2] * 3 + [0.1] * 3


@pytest.mark.parametrize(("schedule", "steps", "field"),
                         [(0.1, 10, "schedule"), (lambda s: 0.1, 0, "total_steps"),
                          (lambda s: 0.1, 2.5, "total_steps")])
def test_bad_arguments(schedule: object, steps: object, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        plot_schedule(schedule, steps)  # type: ignore[arg-type]
