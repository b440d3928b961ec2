"""Issue 19, item 3: ``steadygrad report`` reads a sweep directory as untrusted input.

Oracle: a hand-made sweep directory (the same layout ``run_sweep`` writes) reports cleanly (the
positive control); each test changes one thing (a run name leaving the root, a symlinked run
folder, a corrupt file, raw HTML in a name) and asserts the typed error, or that nothing from
outside the root reaches ``results.csv``/``report.md``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from steadygrad.cli.main import EXIT_BAD_INPUT, main
from steadygrad.errors import ConfigError
from steadygrad.experiments.report import build_report, write_report

SECRET = 0.123456789


def _sweep(root: Path, names: list[str] | None = None) -> Path:
    sweep = root / "sweeps" / "acts"
    entries = []
    for act, seed, acc in [("relu", 0, 0.9), ("relu", 1, 0.8), ("tanh", 0, 0.7)]:
        name = f"activation={act}-seed={seed}"
        entries.append({"name": name, "settings": [["model.activation", act],
                                                   ["train.seed", seed]]})
        run = sweep / "runs" / name
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps(
            {"status": "done", "final": {"val_accuracy": acc, "val_loss": 1 - acc}}))
        (run / "history.csv").write_text("epoch,loss,val_loss\n0,1.0,0.9\n1,0.5,0.4\n")
    for name in names or []:
        entries.append({"name": name, "settings": [["model.activation", "x"],
                                                   ["train.seed", 0]]})
    (sweep / "sweep.json").write_text(json.dumps({"spec": {"name": "acts"}, "runs": entries}))
    # a secret run folder outside the sweep, reachable only by escaping the root
    secret = root / "secret"
    secret.mkdir(exist_ok=True)
    (secret / "summary.json").write_text(json.dumps(
        {"status": "done", "final": {"val_accuracy": SECRET}}))
    return sweep


def test_clean_sweep_reports(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    assert main(["report", str(sweep), "--quiet"] if False else ["report", str(sweep)]) == 0
    assert (sweep / "report" / "results.csv").is_file()


@pytest.mark.parametrize("name", ["../../secret", "../../../secret", "/abs", "a/../../../secret",
                                  "", ".", "..", 5, None, "x\0y"])
def test_run_names_leaving_the_root_are_refused(tmp_path: Path, name: Any) -> None:
    sweep = _sweep(tmp_path)
    if name == "/abs":
        name = str(tmp_path / "secret")
    spec = json.loads((sweep / "sweep.json").read_text())
    spec["runs"].append({"name": name, "settings": []})
    (sweep / "sweep.json").write_text(json.dumps(spec))
    with pytest.raises(ConfigError) as info:
        build_report(sweep)
    assert "sweep.json" in str(info.value)
    assert main(["report", str(sweep)]) == EXIT_BAD_INPUT
    assert not (sweep / "report").exists()


def test_symlinked_run_folder_outside_is_refused(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    run = sweep / "runs" / "activation=tanh-seed=0"
    for f in run.iterdir():
        f.unlink()
    run.rmdir()
    run.symlink_to(tmp_path / "secret", target_is_directory=True)
    with pytest.raises(ConfigError, match="outside"):
        build_report(sweep)


def test_symlinked_file_outside_is_not_read(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    run = sweep / "runs" / "activation=tanh-seed=0"
    (run / "summary.json").unlink()
    (run / "summary.json").symlink_to(tmp_path / "secret" / "summary.json")
    report = build_report(sweep)
    paths = write_report(sweep, report=report)
    assert str(SECRET) not in paths["csv"].read_text()


CORRUPT: dict[str, tuple[str, bytes]] = {
    "sweep_not_utf8": ("sweep.json", b"\xff\xfe{"),
    "sweep_deep": ("sweep.json", b"[" * 100_000 + b"]" * 100_000),
    "runs_not_list": ("sweep.json", b'{"runs": {"a": 1}}'),
    "entry_not_table": ("sweep.json", b'{"runs": [1, "x"]}'),
    "settings_not_list": ("sweep.json", b'{"runs": [{"name": "a", "settings": 5}]}'),
    "setting_not_pair": ("sweep.json", b'{"runs": [{"name": "a", "settings": [[1, 2, 3]]}]}'),
    "setting_key_not_str": ("sweep.json", b'{"runs": [{"name": "a", "settings": [[1, 2]]}]}'),
    "spec_not_table": ("sweep.json", b'{"spec": 5, "runs": []}'),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_sweep_json_is_a_config_error(tmp_path: Path, case: str) -> None:
    sweep = _sweep(tmp_path)
    name, data = CORRUPT[case]
    (sweep / name).write_bytes(data)
    with pytest.raises(ConfigError):
        build_report(sweep)
    assert main(["report", str(sweep)]) == EXIT_BAD_INPUT


RUN_FILES: dict[str, tuple[str, bytes]] = {
    "summary_not_utf8": ("summary.json", b"\xff\xfe\x00"),
    "summary_final_list": ("summary.json", b'{"status": "done", "final": [1, 2]}'),
    "summary_final_strings": ("summary.json", b'{"status": "done", "final": {"val_loss": "x"}}'),
    "summary_status_table": ("summary.json", b'{"status": {"a": 1}, "final": {}}'),
    "summary_spe_string": ("summary.json", b'{"status": "done", "seconds_per_epoch": "fast"}'),
    "summary_diverged_list": ("summary.json", b'{"status": "diverged", "diverged": [1]}'),
    "summary_error_number": ("summary.json", b'{"status": "failed", "error": 12}'),
    "summary_deep": ("summary.json", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    "history_not_utf8": ("history.csv", b"epoch,loss\n\xff,\xfe\n"),
    "history_ragged": ("history.csv", b"epoch,loss\n0,1,2,3\n1\n"),
    "history_binary": ("history.csv", bytes(range(256)) * 4),
    "health_list": ("health.json", b"[1, 2]"),
    "health_findings_garbage": ("health.json", b'{"findings": [1, "x", {"kind": 5}]}'),
    "health_findings_fields": ("health.json",
                               b'{"findings": [{"kind": "k", "severity": 3, "layers": 7}]}'),
}


@pytest.mark.parametrize("case", sorted(RUN_FILES))
def test_corrupt_run_files_never_crash_the_report(tmp_path: Path, case: str) -> None:
    sweep = _sweep(tmp_path)
    name, data = RUN_FILES[case]
    (sweep / "runs" / "activation=relu-seed=1" / name).write_bytes(data)
    code = main(["report", str(sweep)])
    assert code in (0, EXIT_BAD_INPUT)
    if code == 0:
        assert (sweep / "report" / "report.md").is_file()


def test_report_md_escapes_raw_html(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path)
    run = sweep / "runs" / "activation=relu-seed=0"
    (run / "summary.json").write_text(json.dumps(
        {"status": "failed", "error": "boom <script>alert(1)</script>",
         "final": {"val_accuracy": 0.5}}))
    spec = json.loads((sweep / "sweep.json").read_text())
    spec["runs"][0]["settings"][0][1] = "<img src=x onerror=alert(1)>"
    (sweep / "sweep.json").write_text(json.dumps(spec))
    paths = write_report(sweep)
    md = paths["markdown"].read_text()
    assert "<script>" not in md and "<img" not in md
    assert "&lt;script&gt;" in md
    assert "<script>" not in paths["html"].read_text()


def test_report_on_a_full_disk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real 2 MiB tmpfs (skipped without root), filled up: exit 1 and a clear message, the
    runs untouched, no temporary report files left."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                      capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        sweep = _sweep(disk)
        before = {p: p.read_bytes() for p in (sweep / "runs").rglob("*") if p.is_file()}
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass  # the disk is full now
        finally:
            os.close(fd)
        capsys.readouterr()
        assert main(["report", str(sweep)]) == 1
        err = capsys.readouterr().err
        assert "No space left on device" in err and "untouched" in err
        assert {p: p.read_bytes() for p in (sweep / "runs").rglob("*") if p.is_file()} == before
        leftovers = [p.name for p in (sweep / "report").iterdir()] \
            if (sweep / "report").is_dir() else []
        assert not [n for n in leftovers if n.startswith(".")], leftovers
    finally:
        subprocess.run(["umount", str(disk)], check=False)
