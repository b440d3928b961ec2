"""Sweep reports: numbers from the run files, self-contained HTML, CSV, Markdown, rendering."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from steadygrad.errors import ConfigError
from steadygrad.experiments.report import (
    RunRecord,
    SweepReport,
    build_report,
    mean_std,
    summarize,
    write_report,
)
from steadygrad.experiments.report_plots import stack_curves
from steadygrad.experiments.runner import run_sweep
from steadygrad.experiments.space import sweep_from_dict

LR_KEY = "train.optimizer.learning_rate"


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 learning rates x 2 seeds = 4 tiny runs; the 1e6 rate diverges in its first steps."""
    sweep = sweep_from_dict({
        "name": "lr", "seeds": [0, 1],
        "base": {"data": {"name": "digits", "n_train": 120}, "model": {"hidden": [8]},
                 "train": {"epochs": 2, "optimizer": {"name": "sgd"}},
                 "diagnostics": {"every": 2}},
        "axes": {LR_KEY: [0.05, 1e6]},
    })
    result = run_sweep(sweep, tmp_path_factory.mktemp("sweeps"), workers=1, threads=1)
    assert result.counts["done"] == 4, result.rows
    return result.sweep_dir


@pytest.fixture(scope="module")
def written(sweep_dir: Path) -> dict[str, Path]:
    return write_report(sweep_dir)  # the default folder: sweep_dir / "report"


def _summaries(sweep_dir: Path) -> dict[str, dict]:
    return {p.name: json.loads((p / "summary.json").read_text())
            for p in (sweep_dir / "runs").iterdir() if p.is_dir() and p.name[0] != "."}


def _settings(sweep_dir: Path) -> dict[str, dict]:
    spec = json.loads((sweep_dir / "sweep.json").read_text())
    return {r["name"]: dict(map(tuple, r["settings"])) for r in spec["runs"]}


def test_csv_has_one_row_per_run_with_the_runs_own_numbers(sweep_dir, written):
    rows = list(csv.DictReader(io.StringIO(written["csv"].read_text())))
    summaries, settings = _summaries(sweep_dir), _settings(sweep_dir)
    assert sorted(r["run"] for r in rows) == sorted(summaries)
    for row in rows:
        summary = summaries[row["run"]]
        assert row["status"] == summary["status"]
        assert int(row["seed"]) == settings[row["run"]]["train.seed"]
        assert float(row[LR_KEY]) == settings[row["run"]][LR_KEY]
        assert float(row["seconds_per_epoch"]) == summary["seconds_per_epoch"]
        for key, value in summary["final"].items():
            if key != "seconds":
                assert (row[key] == "") if value is None else float(row[key]) == value


def test_ranking_is_mean_and_sample_std_over_seeds_of_finished_runs(sweep_dir):
    report = build_report(sweep_dir)
    summaries, settings = _summaries(sweep_dir), _settings(sweep_dir)
    assert report.metric == "val_accuracy" and report.direction == "max"
    by_lr: dict[float, list[float]] = {}
    statuses: dict[float, set[str]] = {}
    for name, summary in summaries.items():
        lr = settings[name][LR_KEY]
        statuses.setdefault(lr, set()).add(summary["status"])
        if summary["status"] == "done":
            by_lr.setdefault(lr, []).append(summary["final"]["val_accuracy"])
    assert statuses[1e6] == {"diverged"} and statuses[0.05] == {"done"}
    best = report.configs[0]
    assert best.label == "learning_rate=0.05" and best.n == 2
    assert best.mean == pytest.approx(np.mean(by_lr[0.05]), abs=1e-12)
    assert best.std == pytest.approx(np.std(by_lr[0.05], ddof=1), abs=1e-12)
    last = report.configs[-1]  # every seed diverged: not ranked, listed last
    assert last.mean is None and last.count("diverged") == 2
    text = " ".join(report.sentences())
    assert "4 runs: 2 configs × 2 seeds; 2 done, 2 diverged, 0 failed." in text
    assert f"learning_rate=0.05 with {best.mean:.4f} ± {best.std:.4f} over 2 seeds" in text
    assert "Not ranked (no finite val_accuracy): learning_rate=1e+06" in text


def test_health_findings_and_divergence_come_from_the_run_files(sweep_dir):
    report = build_report(sweep_dir)
    for config in report.configs:
        files = [json.loads((sweep_dir / "runs" / r.name / "health.json").read_text())
                 for r in config.runs]
        kinds = {(f["kind"], f["severity"]) for h in files for f in h["findings"]}
        assert {(f.kind, f.severity) for f in config.findings} == kinds
        for f in config.findings:
            runs = sum(any(x["kind"] == f.kind and x["severity"] == f.severity
                           for x in h["findings"]) for h in files)
            assert f.share == f"{runs}/{len(files)}"
    diverged = report.configs[-1].runs[0].diverged
    assert diverged["step"] == _summaries(sweep_dir)[report.configs[-1].runs[0].name][
        "diverged"]["step"]


def test_html_is_self_contained_and_embeds_the_written_figures(written):
    page = written["html"].read_text()
    assert not re.search(r"https?://", page)
    links = re.findall(r"""(?:src|href)\s*=\s*["']?([^"' >]+)""", page, flags=re.I)
    assert links and all(link.startswith("data:image/png;base64,") for link in links)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    embedded = [base64.b64decode(link.split(",", 1)[1]) for link in links]
    figures = [k for k in written if k not in ("html", "csv", "markdown")]
    assert {"curves", "time", "gradients", "profile_1", "profile_2"} <= set(figures)
    for name in figures:
        assert written[name].read_bytes() in embedded
    assert "<h1>Sweep report: lr</h1>" in page and "learning_rate=0.05" in page


def test_markdown_links_the_figures_and_ranks_every_config(written):
    text = written["markdown"].read_text()
    for name in ("curves", "time", "gradients"):
        assert f"({name}.png)" in text and (written["markdown"].parent / f"{name}.png").is_file()
    ranking = text.split("## Ranking")[1].split("##")[0]
    rows = [line for line in ranking.splitlines() if line.startswith("| ") and "config" not in
            line]
    assert [r.split("|")[2].strip() for r in rows] == ["learning_rate=0.05",
                                                       "learning_rate=1e+06"]


def test_default_output_folder_and_no_leftover_temporary_files(sweep_dir, written):
    paths = written
    out = sweep_dir / "report"
    assert {p.parent for p in paths.values()} == {out}
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths.values())


def test_not_a_sweep_directory_names_a_likely_one(sweep_dir):
    with pytest.raises(ConfigError, match=r"DIR: got .*sweep.json.*did you mean .*lr"):
        build_report(sweep_dir.parent)
    with pytest.raises(ConfigError, match="--metric: got 'val_f1'"):
        build_report(sweep_dir, metric="val_f1")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_page_renders_in_headless_chromium(written, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1280,2000", written["html"].as_uri()],
        capture_output=True, timeout=120, check=False,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(shot)
    assert image.size == (1280, 2000)
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 10  # text, tables and plots, not a blank page
    # the plots are drawn: the figure area holds many distinct grey levels
    assert len(np.unique(pixels[600:1800])) > 50


# --------------------------------------------------------------- pure functions
@pytest.mark.parametrize("values", [[1.0], [0.5, 0.7], [0.1, 0.2, 0.6, float("nan")]])
def test_mean_std_is_numpys_mean_and_sample_std_of_finite_values(values):
    finite = [v for v in values if math.isfinite(v)]
    mean, std = mean_std(values)
    assert mean == pytest.approx(np.mean(finite))
    assert std == (None if len(finite) < 2 else pytest.approx(np.std(finite, ddof=1)))


def test_stack_curves_matches_numpy_on_ragged_curves():
    curves = [[1.0, 2.0, 3.0], [2.0, float("nan")], [4.0]]
    mean, std = stack_curves(curves)
    grid = np.array([[1, 2, 3], [2, np.nan, np.nan], [4, np.nan, np.nan]], dtype=float)
    np.testing.assert_allclose(mean, np.nanmean(grid, axis=0))
    np.testing.assert_allclose(std[:1], np.nanstd(grid[:, :1], axis=0, ddof=1))
    assert std[1:].tolist() == [0.0, 0.0]  # one value: no spread


def _report(values: dict[str, list[float]], metric: str) -> SweepReport:
    runs = tuple(RunRecord(f"{k}-{i}", (("model.activation", k),), i, "done",
                           final={metric: v}, seconds_per_epoch=0.1)
                 for k, vs in values.items() for i, v in enumerate(vs))
    return SweepReport("s", Path("."), metric, runs, tuple(summarize(runs, metric)),
                       ("model.activation",))


@pytest.mark.parametrize("metric", ["val_loss", "val_accuracy"])
def test_ranking_follows_the_metrics_direction_and_sentences_follow_the_numbers(metric):
    values = {"relu": [0.2, 0.3], "elu": [0.5, 0.6], "selu": [0.35, 0.45]}
    report = _report(values, metric)
    means = [c.mean for c in report.configs]
    assert means == sorted(means, reverse=(metric == "val_accuracy"))
    best = "relu" if metric == "val_loss" else "elu"
    assert report.configs[0].label == f"activation={best}"
    assert f"activation={best} with" in report.sentences()[1]
    # swap the numbers: the statement changes with them (nothing is pre-written)
    swapped = _report({"relu": values["elu"], "elu": values["relu"],
                       "selu": values["selu"]}, metric)
    other = "elu" if best == "relu" else "relu"
    assert f"activation={other} with" in swapped.sentences()[1]


def test_failed_and_unfinished_runs_are_counted_listed_and_not_ranked():
    from steadygrad.experiments.report import results_csv
    from steadygrad.experiments.report_html import render_html

    runs = (RunRecord("a=1-seed=0", (("m.a", 1),), 0, "done", final={"val_loss": 0.5}),
            RunRecord("a=2-seed=0", (("m.a", 2),), 0, "failed",
                      error="RuntimeError: <boom> & bust"),
            RunRecord("a=3-seed=0", (("m.a", 3),), 0, "pending"))
    report = SweepReport("s", Path("."), "val_loss", runs,
                         tuple(summarize(runs, "val_loss")), ("m.a",))
    lines = report.sentences()
    assert lines[0] == "3 runs: 3 configs × 1 seed; 1 done, 0 diverged, 1 failed, 1 not finished."
    assert "Not ranked (no finite val_loss): a=2, a=3." in lines
    rows = list(csv.DictReader(io.StringIO(results_csv(report))))
    assert [r["status"] for r in rows] == ["done", "failed", "pending"]
    assert rows[1]["error"] == "RuntimeError: <boom> & bust" and rows[0]["val_loss"] == "0.5"
    page = render_html(report, {})
    assert "RuntimeError: &lt;boom&gt; &amp; bust" in page and "<boom>" not in page


def test_metric_error_when_every_run_failed_names_the_first_error() -> None:
    from steadygrad.errors import ConfigError
    from steadygrad.experiments.report import RunRecord, choose_metric

    runs = [RunRecord(f"r{i}", (), i, "failed", error="DataError: fashion-mnist: not found")
            for i in range(3)]
    with pytest.raises(ConfigError, match=re.escape("3 of 3 runs failed, e.g. r0: DataError: "
                                                    "fashion-mnist: not found")):
        choose_metric(runs, "val_accuracy")
