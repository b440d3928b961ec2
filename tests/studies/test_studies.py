"""Tests of the built-in studies: specs, expansion, full mode, analysis helpers, a tiny run."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from steadygrad.cli.main import main
from steadygrad.errors import ConfigError, UnknownNameError
from steadygrad.experiments.report import ConfigResult, RunRecord, build_report
from steadygrad.experiments.report_plots import grad_norm_curves
from steadygrad.studies.analysis import first_reaching, kendall_tau, value_of
from steadygrad.studies.registry import STUDIES, load_spec
from steadygrad.studies.runner import SETUP_KEY, expand, run_study
from tests.browser import layout

EXPECTED = {"unstable_gradients", "initializers", "activations", "batch_norm", "clipping",
            "optimizers", "schedules", "regularization", "depth"}


def test_every_study_is_registered_and_its_quick_and_full_sweeps_validate() -> None:
    assert set(STUDIES.names()) >= EXPECTED
    assert STUDIES.canonical("unstable-gradients") == "unstable_gradients"
    for name in EXPECTED:
        quick = expand(load_spec(name))
        full = expand(load_spec(name, full=True))
        assert 0 < len(quick.runs) <= 60, name
        assert all(r.config.data.name == "digits" for r in quick.runs), name
        assert all(r.config.data.name == "fashion_mnist" for r in full.runs), name
        # the classic split: 55,000 / 5,000 (val_size 5000 of the 60,000) and batch 32
        assert all(r.config.data.kwargs.get("val_size") == 5000 for r in full.runs), name
        assert all(r.config.train.batch_size == 32 for r in full.runs), name
        assert len({r.run_id for r in quick.runs}) == len(quick.runs)


def test_full_unstable_gradients_matches_the_classic_setup() -> None:
    runs = expand(load_spec("unstable_gradients", full=True)).runs
    deep = [r for r in runs if len(r.config.model.hidden) == 100]
    setups = {dict(r.settings)[SETUP_KEY] for r in deep}
    assert {"selu_lecun", "relu_he"} <= setups
    for r in deep:
        assert set(r.config.model.hidden) == {100}
        assert r.config.train.optimizer.name == "sgd"
        assert r.config.train.optimizer.learning_rate == pytest.approx(1e-3)
        assert r.config.train.epochs == 5


def test_variants_are_crossed_with_axes_and_seeds() -> None:
    spec = load_spec("unstable_gradients")
    sweep = expand(spec, seeds=3)
    n_axes = len(spec["sweep"]["axes"]["model.depth"])
    assert len(sweep.runs) == len(spec["variants"]) * n_axes * 3
    for run in sweep.runs:
        setup = dict(run.settings)[SETUP_KEY]
        for key, value in spec["variants"][setup].items():
            if key == "model.activation":
                assert run.config.model.activation.name == value


def test_analysis_helpers_against_closed_forms() -> None:
    # Kendall tau = (concordant - discordant) / pairs; one swap of 4 items: (5 - 1) / 6
    assert kendall_tau("abcd", "abdc") == pytest.approx(4 / 6)
    assert kendall_tau("abcd", "dcba") == -1.0
    assert first_reaching([0.1, 0.5], 0.9) is None
    cfg = ConfigResult("x", (("model.depth", 3),), (RunRecord("r", (), 0, "done"),), 0.5,
                       None, 1, None, None, ())
    assert value_of(cfg, "depth") == 3 and value_of(cfg, "setup") is None


def test_bad_names_and_arguments_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'activations'"):
        load_spec("activatons")
    with pytest.raises(ConfigError, match="seeds"):
        run_study("clipping", seeds=0, out_dir=tmp_path)
    assert main(["study", "nope", "--out", str(tmp_path)]) == 2


def test_tiny_study_runs_end_to_end_and_concludes_from_its_numbers(tmp_path: Path) -> None:
    result = run_study("clipping", seeds=1, out_dir=tmp_path,
                       overrides=["data.n_train=120", "train.epochs=1"])
    assert result.sweep_dir.name == "clipping-quick-custom"
    csv_rows = (result.sweep_dir / "report" / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 4
    for name in ("report.html", "report.md"):
        assert (result.sweep_dir / "report" / name).is_file()
    doc = json.loads((result.sweep_dir / "study.json").read_text())
    assert doc["conclusions"] == result.conclusions
    # one page per study (issue 18): conclusions, the computed common-wisdom verdict and the
    # sweep's figures together, self-contained
    page = (result.sweep_dir / "study.html").read_text()
    assert doc["verdict"] and doc["verdict"].startswith("Common wisdom:")
    assert html.escape(doc["verdict"]) in page and "Checked against common wisdom" in page
    assert "data:image/png;base64," in page and "report/report.html" not in page
    assert all(html.escape(c) in page for c in result.conclusions)
    for page_path in (result.sweep_dir / "study.html", result.sweep_dir / "report" /
                      "report.html"):  # the study page and the sweep page, headless Chromium
        box = layout(page_path, 1280)
        assert box["scroll_width"] <= 1280 and box["right"] <= 1280, (page_path, box)
        assert box["broken"] == 0 and box["images"] > 0
    # regression (issue 18): the figure showed only the clipped norm (a flat 1.0); both are
    # drawn now, and they differ where clipping acted
    report = build_report(result.sweep_dir, "val_accuracy")
    clipped = next(c for c in report.configs if c.label == "setup=global_clipnorm")
    pre, _, post = grad_norm_curves(clipped)
    assert pre.min() > 1.0 >= post.max() - 1e-6
    # the per-setup sentences quote the measured means of the runs
    summaries = {p.name: json.loads((p / "summary.json").read_text())
                 for p in (result.sweep_dir / "runs").iterdir() if not p.name.startswith(".")}
    for name, s in summaries.items():
        setup = name.split("-")[0].split("=")[1]
        line = next(c for c in result.conclusions if c.startswith(f"{setup}:"))
        if s["status"] == "done":
            assert f"{s['final']['val_accuracy']:.3f}" in line


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_study_runs_in_quick_mode(name: str, tmp_path: Path) -> None:
    result = run_study(name, out_dir=tmp_path)
    assert result.conclusions and result.mode == "quick"
    assert (result.sweep_dir / "study.html").is_file()
    assert (result.sweep_dir / "report" / "results.csv").is_file()


def test_cli_lists_every_study(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["study", "--list", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0] for line in lines}
    assert listed == {name.replace("_", "-") for name in STUDIES.names()}
    # regression (issue 18): --list gave no idea of the size; the run count is the sweep's
    clipping = next(line for line in lines if line.startswith("clipping "))
    assert f"{len(expand(load_spec('clipping')).runs)} runs x 4 epochs" in clipping
    (tmp_path / "clipping-quick").mkdir()
    (tmp_path / "clipping-quick" / "study.json").write_text('{"seconds": 54.2}')
    assert main(["study", "--list", "--out", str(tmp_path)]) == 0
    assert "last run here 54 s" in capsys.readouterr().out


def test_study_cli_shows_progress_on_a_terminal_and_no_warnings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Regression (issue 18): nothing was printed while the study ran on a terminal, then
    internal RuntimeWarnings with source lines."""
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    code = main(["study", "clipping", "--seeds", "1", "--out", str(tmp_path),
                 "--set", "data.n_train=60", "--set", "train.epochs=1"])
    err = capsys.readouterr().err
    assert code == 0
    assert err.startswith("study clipping (quick mode): 4 runs x 1 epochs")
    assert "[4/4]" in err  # the live progress line reached the end
    assert "Warning" not in err and ".py:" not in err


def test_list_gives_every_study_a_measured_duration(tmp_path, capsys) -> None:
    """Regression (issue 18): ``--list`` gave no duration. A study not run under ``--out``
    shows the quick-mode time measured by ``benchmarks/study_durations.py``; one run there
    shows its own time."""
    import json
    from importlib import resources

    from steadygrad.cli.main import main
    from steadygrad.studies.registry import STUDIES

    doc = json.loads(resources.files("steadygrad.studies").joinpath("durations.json")
                     .read_text(encoding="utf-8"))
    names = [n.replace("_", "-") for n in STUDIES.names()]
    assert sorted(doc["studies"]) == sorted(names)  # every study measured, no stale entry
    assert main(["study", "--list", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in names:
        line = next(x for x in lines if x.startswith(name + " "))
        seconds = doc["studies"][name]["seconds"]
        assert f"took {seconds:.0f} s on {doc['threads']} thread(s)" in line, line
    done = tmp_path / "clipping-quick"
    done.mkdir()
    (done / "study.json").write_text(json.dumps({"seconds": 54.4}))
    assert main(["study", "--list", "--out", str(tmp_path)]) == 0
    clipping = next(x for x in capsys.readouterr().out.splitlines()
                    if x.startswith("clipping "))
    assert "last run here 54 s" in clipping
