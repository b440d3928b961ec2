"""``steadygrad sweep`` and ``steadygrad report``: run, resume, refuse bad input, report."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from steadygrad.cli.main import EXIT_BAD_INPUT, EXIT_OK, main
from steadygrad.experiments.index import RunIndex

SWEEP = """
name = "acts"
seeds = [0]
[base.data]
name = "digits"
n_train = 100
[base.model]
hidden = [8]
[base.train]
epochs = 1
[base.diagnostics]
every = 2
[axes]
"model.activation" = ["relu", "tanh"]
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int, dict]:
    """The sweep file, the results root, the exit code and the --json document of one run
    of the real console entry point in a subprocess (``python -m steadygrad.cli.main``)."""
    folder = tmp_path_factory.mktemp("sweep")
    path = folder / "acts.toml"
    path.write_text(SWEEP, encoding="utf-8")
    out = folder / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "steadygrad.cli.main", "sweep", str(path), "--out", str(out),
         "--workers", "1", "--threads", "1", "--json"],
        capture_output=True, text=True, timeout=300, cwd=folder,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    return path, out, proc.returncode, json.loads(proc.stdout)


def test_sweep_runs_every_config_and_reports_counts(swept):
    _, out, code, doc = swept
    assert code == EXIT_OK and doc["exit_code"] == 0
    assert doc["counts"] == {"pending": 0, "running": 0, "done": 2, "failed": 0}
    with RunIndex(out / "acts" / "index.sqlite") as index:
        rows = index.rows()
    assert sorted(r.name for r in rows) == ["activation=relu-seed=0", "activation=tanh-seed=0"]
    for row in rows:
        summary = json.loads((out / "acts" / "runs" / row.name / "summary.json").read_text())
        assert summary["status"] == "done" and row.state == "done"


def test_existing_sweep_needs_resume_and_resume_reruns_nothing(swept, capsys):
    path, out, _, _ = swept
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "sweep: got 'acts'" in err and "pass --resume to continue it" in err
    with RunIndex(out / "acts" / "index.sqlite") as index:
        before = index.events()
    assert main(["sweep", str(path), "--out", str(out), "--resume", "--quiet"]) == EXIT_OK
    with RunIndex(out / "acts" / "index.sqlite") as index:
        assert index.events() == before  # every run was committed: nothing claimed again
    assert "2 runs: 2 done (0 diverged), 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("edit", "extra", "message"),
    [(('"relu", "tanh"', '"relu", "tahn"'), [], "model.activation: got 'tahn'"),
     (('name = "digits"', 'name = "npz"\npath = "/nonexistent/x.npz"'), [],
      "data.path: got '/nonexistent/x.npz'"),
     (None, ["--address", "auto"], "--address: got 'auto'"),
     (None, ["--retry-failed"], "--retry-failed: got True")],
)
def test_bad_input_exits_2_before_anything_is_created(tmp_path, capsys, edit, extra, message):
    text = SWEEP if edit is None else SWEEP.replace(*edit)
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), *extra]) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed")
def test_ray_backend_without_ray_is_bad_input(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SWEEP, encoding="utf-8")
    assert main(["sweep", str(path), "--backend", "ray", "--out", str(tmp_path / "o")]) == 2
    assert "pip install 'steadygrad[ray]'" in capsys.readouterr().err


def test_report_command_writes_the_report_of_the_sweep(swept, tmp_path, capsys):
    _, out, _, _ = swept
    code = main(["report", str(out / "acts"), "--out", str(tmp_path / "rep"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK and doc["metric"] == "val_accuracy"
    paths = {k: Path(v) for k, v in doc["paths"].items()}
    assert {"html", "csv", "markdown", "curves"} <= set(paths)
    assert all(p.is_file() and p.parent == tmp_path / "rep" for p in paths.values())
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    accuracy = {r["model.activation"]: float(r["val_accuracy"]) for r in rows}
    ranking = [r["config"].split("=")[1] for r in doc["ranking"]]
    assert ranking == sorted(accuracy, key=accuracy.get, reverse=True)
    assert [r["mean"] for r in doc["ranking"]] == [accuracy[a] for a in ranking]  # one seed
    assert all(r["std"] is None for r in doc["ranking"])


def test_report_text_output_and_bad_directory(swept, tmp_path, capsys):
    _, out, _, _ = swept
    assert main(["report", str(out / "acts"), "--out", str(tmp_path / "r")]) == EXIT_OK
    text = capsys.readouterr().out
    assert text.startswith("2 runs: 2 configs × 1 seed; 2 done")
    assert f"html: {tmp_path / 'r' / 'report.html'}" in text
    assert main(["report", str(out)]) == EXIT_BAD_INPUT
    assert f"did you mean {out / 'acts'}" in capsys.readouterr().err


def test_help_of_every_subcommand_has_examples(capsys):
    for command in ("train", "diagnose", "lr-find", "summary", "sweep", "report"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        assert f"steadygrad {command}" in capsys.readouterr().out.split("examples:")[1]


def test_progress_line_follows_the_index(tmp_path):
    import time

    from steadygrad.cli.sweep_cmd import SweepProgress

    with RunIndex(tmp_path / "index.sqlite") as index:
        index.add([("a", "a", "{}"), ("b", "b", "{}"), ("c", "c", "{}")])
        index.claim(pid=1)
        index.finish("a", pid=1, result={})
        index.claim(pid=1)
    screen = io.StringIO()
    with SweepProgress(tmp_path / "index.sqlite", 3, screen, every=0.01):
        time.sleep(0.2)
    assert "\r[1/3] 1 done, 0 failed, 1 running" in screen.getvalue()
