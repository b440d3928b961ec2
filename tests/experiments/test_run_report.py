"""``steadygrad report RUN_DIR``: one self-contained page per run, fitting 1280 px in Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from steadygrad.cli.main import main
from steadygrad.experiments.config import config_from_dict
from steadygrad.experiments.execute import run_config
from steadygrad.experiments.run_report import render_run_report, write_run_report
from tests.browser import layout

# digits, raw pixels, lr 0.08: the gradient norm is > 1, so global_clipnorm = 1 acts
CLIPPED = {
    "name": "clipped",
    "data": {"name": "digits", "n_train": 200, "standardize": False, "scale": False},
    "model": {"depth": 4, "units": 32, "kernel_initializer": "he_normal"},
    "train": {"epochs": 2, "optimizer": {"name": "sgd", "learning_rate": 0.08,
                                          "global_clipnorm": 1.0}},
    "diagnostics": {"every": 2},
}


@pytest.fixture(scope="module")
def clipped_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = run_config(config_from_dict(CLIPPED), tmp_path_factory.mktemp("r") / "clipped")
    assert result.status == "done", result.error
    return result.run_dir


@pytest.fixture(scope="module")
def report(clipped_run: Path) -> Path:
    return write_run_report(clipped_run)


def test_train_leaves_no_empty_plots_folder(clipped_run: Path) -> None:
    """Regression (issue 18): ``train`` left an empty ``plots/`` folder."""
    assert not (clipped_run / "plots").exists()


def test_run_report_is_self_contained_with_every_section(clipped_run: Path,
                                                         report: Path) -> None:
    text = report.read_text()
    assert report == clipped_run / "report.html"
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text)  # nothing external
    assert text.count('src="data:image/png;base64,') == 4
    for title in ("Learning curves", "Learning rate", "Gradient norm before and after clipping",
                  "Per-layer health over time", "Findings and remedies"):
        assert title in text


def test_gradient_norm_is_shown_before_and_after_clipping(clipped_run: Path,
                                                          report: Path) -> None:
    """Regression: the clipping plots showed only the clipped norm (a flat 1.0)."""
    history = (clipped_run / "history.csv").read_text().splitlines()
    column = history[0].split(",").index("grad_norm")
    pre = [float(row.split(",")[column]) for row in history[1:]]
    post = json.loads((clipped_run / "health.json").read_text())["grad_norm"]
    assert min(pre) > 1.0 >= max(post) - 1e-6  # the measured fact the figure must show
    text = report.read_text()
    caption = re.search(r"<figcaption>(Global gradient norm before clipping[^<]*)", text)
    assert caption is not None
    assert f"{pre[0]:.3g}" in caption.group(1) and "after clipping" in caption.group(1)
    assert "clipping acted" in caption.group(1)


def test_empty_panels_say_why(tmp_path: Path) -> None:
    raw = {**CLIPPED, "diagnostics": {"enabled": False}}
    result = run_config(config_from_dict(raw), tmp_path / "off")
    text = render_run_report(result.run_dir)
    assert "Empty: diagnostics were off" in text
    assert "Diagnostics were off for this run" in text


def test_cli_report_of_a_run_dir(clipped_run: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "elsewhere" / "r.html"
    assert main(["report", str(clipped_run), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"html: {out}"
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_run_report_fits_1280_px_in_chromium(report: Path) -> None:
    box = layout(report, 1280)
    assert box["viewport"] == 1280
    assert box["scroll_width"] <= 1280 and box["right"] <= 1280, box  # nothing cut off
    assert box["images"] == 4 and box["broken"] == 0
