"""``steadygrad train``: run directory, printed metrics, exit codes, bad input before any work."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from steadygrad.cli.main import EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_FAILED, EXIT_OK, main
from steadygrad.experiments.loader import load_config


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    out = capsys.readouterr().out
    return json.loads(out)  # exactly one JSON document on stdout


def test_train_writes_the_run_and_reports_its_metrics(tiny_config, tmp_path, capsys):
    out = tmp_path / "runs"
    code = main(["train", str(tiny_config), "--out", str(out), "--json",
                 "--set", "model.activation=tanh"])
    doc = _json(capsys)
    run_dir = out / "tiny"
    summary = json.loads((run_dir / "summary.json").read_text())
    health = json.loads((run_dir / "health.json").read_text())
    assert code == EXIT_OK and doc["status"] == "done" and doc["exit_code"] == 0
    assert Path(doc["run_dir"]) == run_dir.resolve()
    # the printed metrics are the run's own files, not a re-computation
    assert doc["metrics"] == summary["final"]
    assert doc["findings"] == health["findings"]
    assert doc["step"] == summary["step"] and doc["step"]["engine"] == "eager"
    assert doc["epochs_run"] == 2 == len((run_dir / "history.csv").read_text().splitlines()) - 1
    # --set reached the config that was trained and saved
    assert load_config(run_dir / "config.toml").model.activation.name == "tanh"
    assert not list((out / ".staging").iterdir())  # the staging folder was committed


def test_text_output_names_status_and_metrics_without_progress_off_tty(tiny_config, tmp_path,
                                                                       capsys):
    assert main(["train", str(tiny_config), "--out", str(tmp_path / "r")]) == EXIT_OK
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "r" / "tiny" / "summary.json").read_text())
    assert out.startswith("run tiny: done (2 epochs")
    assert f"val_accuracy {summary['final']['val_accuracy']:.4f}" in out
    assert "\r" not in out  # stdout is not a terminal under pytest: no live bar


def test_existing_run_is_refused_then_moved_aside_with_overwrite(tiny_config, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", str(tiny_config), "--out", str(out), "--quiet"]) == EXIT_OK
    before = (out / "tiny" / "summary.json").read_text()
    capsys.readouterr()
    assert main(["train", str(tiny_config), "--out", str(out), "--quiet"]) == EXIT_BAD_INPUT
    assert "--name: got 'tiny'" in capsys.readouterr().err
    assert (out / "tiny" / "summary.json").read_text() == before  # untouched
    code = main(["train", str(tiny_config), "--out", str(out), "--overwrite", "--quiet",
                 "--set", "train.seed=1"])
    assert code == EXIT_OK
    (aside,) = (out / ".replaced").iterdir()
    assert (aside / "summary.json").read_text() == before  # the old run is kept, not deleted
    assert load_config(out / "tiny" / "config.toml").train.seed == 1


@pytest.mark.parametrize(
    ("override", "field"),
    [("model.activaton=relu", "model.activaton"),
     ("train.epochs=0", "train.epochs"),
     ("data.path=/nonexistent/x.npz", "data.path")],
)
def test_bad_input_exits_2_naming_the_field_before_creating_anything(tiny_config, tmp_path,
                                                                     capsys, override, field):
    args = ["train", str(tiny_config), "--out", str(tmp_path / "runs"), "--set", override]
    if field == "data.path":
        args += ["--set", "data.name=npz", "--set", "data.n_train=10"]
    assert main(args) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.err.startswith(f"steadygrad train: error: {field}: got ")
    assert captured.out == ""
    assert not (tmp_path / "runs").exists()


def test_bad_run_name_is_refused(tiny_config, tmp_path, capsys):
    assert main(["train", str(tiny_config), "--out", str(tmp_path), "--name", "../x"]) == 2
    assert "run name: got '../x'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]


def test_divergence_exits_3_and_records_where(diverging_config, tmp_path, capsys):
    code = main(["train", str(diverging_config), "--out", str(tmp_path / "r"), "--json"])
    doc = _json(capsys)
    summary = json.loads((tmp_path / "r" / "boom" / "summary.json").read_text())
    assert code == EXIT_DIVERGED and doc["status"] == "diverged" == summary["status"]
    assert doc["diverged"]["step"] == summary["diverged"]["step"] >= 0


def test_help_has_examples_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "steadygrad train run.toml" in text and "exit codes" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_and_not_with_quiet(tiny_config, tmp_path, monkeypatch):
    screen = _Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    assert main(["train", str(tiny_config), "--out", str(tmp_path / "a")]) == EXIT_OK
    assert "\rEpoch 1/2 [" in screen.getvalue()  # the live bar of fit
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stdout", quiet)
    assert main(["train", str(tiny_config), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert "Epoch" not in quiet.getvalue() and quiet.getvalue().startswith("run tiny: done")


def test_an_exception_during_training_is_a_failed_run_with_exit_1(tiny_config, tmp_path,
                                                                   monkeypatch, capsys):
    import steadygrad.train.loop

    def broken_fit(*args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(steadygrad.train.loop, "fit", broken_fit)
    code = main(["train", str(tiny_config), "--out", str(tmp_path / "r"), "--json"])
    doc = _json(capsys)
    summary = json.loads((tmp_path / "r" / "tiny" / "summary.json").read_text())
    assert code == EXIT_FAILED and doc["status"] == "failed" == summary["status"]
    assert "RuntimeError: out of memory (simulated)" in doc["error"] == summary["error"]


def test_schedule_longer_than_the_run_is_refused_before_any_run_directory(tmp_path, capsys):
    """Regression (issue 18): examples/schedule_cosine.toml on a short run created a run and
    then failed with ``decay_steps: got -28``, a key the user never set."""
    example = Path(__file__).parents[2] / "examples" / "schedule_cosine.toml"
    out = tmp_path / "runs"
    code = main(["train", str(example), "--out", str(out), "--set", "train.epochs=1",
                 "--set", "train.schedule.warmup_steps=500"])
    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "schedule.cosine.warmup_steps: got 500" in err and "decay_steps: got" not in err
    assert not out.exists()
