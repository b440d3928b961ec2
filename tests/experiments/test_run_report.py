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


def test_a_diverging_run_records_the_divergence_without_a_warning(tmp_path: Path) -> None:
    """Regression (issue 18): studies printed fit's "training stopped" RuntimeWarning with
    its source line for every diverging run; the divergence belongs in summary.json."""
    import warnings

    raw = {**CLIPPED, "train": {"epochs": 1, "optimizer": {"name": "sgd",
                                                           "learning_rate": 1e6}}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_config(config_from_dict(raw), tmp_path / "boom")
    assert result.status == "diverged"  # the failure happened
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_the_report_names_the_engine_of_an_eager_run(clipped_run: Path, report: Path) -> None:
    step = json.loads((clipped_run / "summary.json").read_text())["step"]
    assert step["engine"] == "eager" and step["fallback"] is None
    assert "Training step: engine: eager;" in report.read_text()


def test_a_compiled_run_whose_flat_engine_declines_shows_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A real ``fit(compile=True)`` through ``steadygrad train`` with an SGD group key off the flat
    rule's allow-list; torch.compile runs with dynamo's eager backend (no Inductor build)."""
    import html

    import torch

    import steadygrad.train.loop as loop
    from steadygrad.train._flat.rules import decline_reason

    real_fit, real_compile = loop.fit, torch.compile
    reasons: list[str | None] = []

    def compiled_fit(model: torch.nn.Module, data: object, **kwargs: object) -> object:
        opt = torch.optim.SGD([{"params": model.parameters(), "tag": "head"}], lr=0.05)
        reasons.append(decline_reason(opt))  # oracle: the flat rules' own verdict
        return real_fit(model, data, **{**kwargs, "optimizer": opt, "compile": True})

    monkeypatch.setattr(torch, "compile", lambda m, **kw: real_compile(m, backend="eager"))
    monkeypatch.setattr(loop, "fit", compiled_fit)
    config = tmp_path / "declined.toml"
    config.write_text('name = "declined"\n[data]\nname = "digits"\nn_train = 64\n'
                      '[model]\nhidden = [8]\n[train]\nepochs = 1\nbatch_size = 32\n'
                      '[diagnostics]\nenabled = false\n')
    assert main(["train", str(config), "--out", str(tmp_path / "runs")]) == 0
    assert reasons and reasons[0] is not None and "'tag'" in reasons[0]
    line = f"step: engine: torch.compile of the eager step; flat engine declined: {reasons[0]}"
    assert any(out.startswith(line) for out in capsys.readouterr().out.splitlines())
    run_dir = tmp_path / "runs" / "declined"
    step = json.loads((run_dir / "summary.json").read_text())["step"]
    assert (step["engine"], step["fallback"]) == ("compiled", reasons[0])
    text = write_run_report(run_dir).read_text()
    assert html.escape(f"flat engine declined: {reasons[0]}") in text
    assert "torch.compile of the eager step" in text
