"""Sweeps on local worker processes: failures, resume, and SIGKILL at random moments."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from steadygrad.errors import ConfigError
from steadygrad.experiments.index import RunIndex
from steadygrad.experiments.loader import load_config
from steadygrad.experiments.runner import run_sweep
from steadygrad.experiments.space import sweep_from_dict

BASE = {"data": {"name": "digits", "n_train": 400},
        "model": {"hidden": [24, 24]},
        "train": {"epochs": 4, "batch_size": 32,
                  "optimizer": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9}},
        "diagnostics": {"enabled": True, "every": 5}}
SPEC = {"name": "killme", "base": BASE, "seeds": [0, 1],
        "axes": {"model.activation": ["relu", "tanh"]}}

DRIVER = """
import json, sys
from steadygrad.experiments.runner import run_sweep
from steadygrad.experiments.space import sweep_from_dict
sweep = sweep_from_dict(json.loads(sys.argv[1]))
run_sweep(sweep, sys.argv[2], workers=2, threads=1, resume=True)
"""


def _check_done_run(run_dir: Path) -> dict:
    """Every file of a committed run parses; returns what must match across sweeps."""
    cfg = load_config(run_dir / "config.toml")
    assert load_config(run_dir / "config.json") == cfg
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    assert len(rows) == cfg.train.epochs
    json.loads((run_dir / "health.json").read_text())
    load_file(run_dir / "weights.safetensors")
    summary = json.loads((run_dir / "summary.json").read_text())
    weights = hashlib.sha256((run_dir / "weights.safetensors").read_bytes()).hexdigest()
    assert summary["weights_sha256"] == weights and summary["status"] == "done"
    final = {k: v for k, v in summary["final"].items() if k != "seconds"}
    return {"final": final, "weights": weights}


def _running(index_path: Path) -> bool:
    if not index_path.exists():
        return False
    with RunIndex(index_path) as index:
        return index.counts()["running"] > 0


def _kill_and_resume(tmp_path: Path, kills: int, seed: int) -> None:
    sweep = sweep_from_dict(SPEC)
    # reference: the same sweep, uninterrupted
    clean = run_sweep(sweep, tmp_path / "reference", workers=2, threads=1)
    assert clean.ok, [r.error for r in clean.rows]
    reference = {run.name: _check_done_run(clean.sweep_dir / "runs" / run.name)
                 for run in sweep.runs}
    root = tmp_path / "sweeps"
    index_path = root / "killme" / "index.sqlite"
    rng = random.Random(seed)
    args = [sys.executable, "-c", DRIVER, json.dumps(SPEC), str(root)]
    mid_run = 0
    for _ in range(kills):
        proc = subprocess.Popen(args, start_new_session=True, stderr=subprocess.DEVNULL)
        if rng.random() < 0.3:  # anywhere, start-up included
            time.sleep(rng.uniform(0.1, 4.0))
        else:  # while a run is being written: wait for a claim, then a random delay
            deadline = time.time() + 60
            while proc.poll() is None and time.time() < deadline and not _running(index_path):
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.8))
            mid_run += _running(index_path)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers
        proc.wait()
    assert mid_run >= 1, "no kill landed while a run was running"
    subprocess.run(args, check=True, timeout=300)
    sweep_dir = root / "killme"
    index = RunIndex(sweep_dir / "index.sqlite")
    errors = [(r.name, r.error) for r in index.rows() if r.error]
    assert index.counts() == {"pending": 0, "running": 0, "done": 4, "failed": 0}, errors
    done_events = [e for e in index.events() if e[1] == "done"]
    assert sorted(e[0] for e in done_events) == sorted(r.run_id for r in sweep.runs)
    requeued = [e for e in index.events() if e[1] == "requeued"]
    assert requeued, index.events()  # some run was interrupted and handed out again
    runs_dir = sweep_dir / "runs"
    assert sorted(p.name for p in runs_dir.iterdir() if not p.name.startswith(".")) == \
        sorted(reference)
    staging = runs_dir / ".staging"
    assert not staging.exists() or not any(staging.iterdir())
    for name, expected in reference.items():
        assert _check_done_run(runs_dir / name) == expected, name


def test_sigkill_at_random_moments_then_resume_completes_each_run_once(tmp_path: Path) -> None:
    _kill_and_resume(tmp_path, kills=3, seed=0)


@pytest.mark.slow
def test_sigkill_many_times_then_resume(tmp_path: Path) -> None:
    _kill_and_resume(tmp_path, kills=10, seed=1)


@pytest.fixture
def restore_torch_threads():
    """worker_loop sets this process's torch threads (its job in a worker process); tests that
    call it in-process put them back, or later in-process runs compute with other threads
    (and differ bitwise from a sweep's 1-thread workers)."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_failed_runs_do_not_stop_the_sweep_and_resume_reuses_results(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_torch_threads: None) -> None:
    from steadygrad.experiments.runner import _prepare, worker_loop

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, "1")  # worker_loop sets them; restore after the test
    spec = {"name": "mixed", "base": {**BASE, "train": {**BASE["train"], "epochs": 1}},
            "axes": {"data.n_train": [100, 10**6, 200]}}
    sweep = sweep_from_dict(spec)
    sweep_dir = tmp_path / "mixed"
    _prepare(sweep, sweep_dir, resume=False)
    assert worker_loop(sweep_dir, threads=1) == 3  # the failure in the middle does not stop it
    # resuming a finished sweep reuses everything: no worker, no new claim, nothing rewritten
    mtimes = {p: p.stat().st_mtime_ns for p in (sweep_dir / "runs").rglob("*")}
    result = run_sweep(sweep, tmp_path, workers=2, resume=True)
    assert result.counts == {"pending": 0, "running": 0, "done": 2, "failed": 1}
    assert not result.ok
    (failed,) = [r for r in result.rows if r.state == "failed"]
    assert "Traceback" in (failed.error or "") and "n_train: got 1000000" in failed.error
    summary = json.loads((sweep_dir / "runs" / failed.name / "summary.json").read_text())
    assert summary["status"] == "failed"
    index = RunIndex(sweep_dir / "index.sqlite")
    assert len([e for e in index.events() if e[1] == "claimed"]) == 3
    assert mtimes == {p: p.stat().st_mtime_ns for p in (sweep_dir / "runs").rglob("*")}
    # an existing sweep needs resume=True
    with pytest.raises(ConfigError, match="pass resume=True"):
        run_sweep(sweep, tmp_path, workers=1)
    # a changed sweep under the same name is refused
    changed = sweep_from_dict({**spec, "axes": {"data.n_train": [100, 300]}})
    with pytest.raises(ConfigError, match="the sweep file or its base changed"):
        run_sweep(changed, tmp_path, resume=True)
    # retry_failed executes the failed run again (and it fails again, deterministically)
    monkeypatch.setattr("steadygrad.experiments.runner._run_local",
                        lambda d, n, t, dev: worker_loop(d, threads=t))
    again = run_sweep(sweep, tmp_path, resume=True, retry_failed=True)
    assert again.counts == result.counts
    assert index.get(failed.run_id).attempts == 2


def test_bad_arguments_fail_before_any_work(tmp_path: Path) -> None:
    sweep = sweep_from_dict({"name": "x"})
    with pytest.raises(ConfigError, match="backend: got 'slurm'"):
        run_sweep(sweep, tmp_path, backend="slurm")
    with pytest.raises(ConfigError, match="workers: got 0"):
        run_sweep(sweep, tmp_path, workers=0)
    assert not (tmp_path / "x").exists()


def test_missing_dataset_fails_before_any_run(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from steadygrad.errors import DataError

    monkeypatch.delenv("STEADYGRAD_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    empty = tmp_path / "no-data"
    empty.mkdir()
    sweep = sweep_from_dict({"name": "x", "base": {"data": {"name": "fashion_mnist",
                                                             "root": str(empty)}},
                             "axes": {"train.epochs": [1, 2]}})
    with pytest.raises(DataError, match="fashion-mnist: not found") as err:
        run_sweep(sweep, tmp_path / "out")
    assert "STEADYGRAD_DATA" in str(err.value)  # the message says how to fix it
    assert not (tmp_path / "out").exists()  # no sweep folder, no failed runs to clean up


def test_recover_requeues_dead_workers_and_removes_their_partial_folders(tmp_path: Path) -> None:
    from steadygrad.experiments.runner import _recover
    from steadygrad.experiments.store import RunStore

    dead_pid = 2**22 + 4321  # above Linux's pid_max: never a live process
    store = RunStore(tmp_path / "runs")
    index = RunIndex(tmp_path / "index.sqlite")
    index.add([("a", "run-a", "{}"), ("b", "run-b", "{}"), ("c", "run-c", "{}")])
    claimed = index.claim(pid=dead_pid)  # run-a: its worker died after renaming its folder
    assert claimed is not None
    (store.root / "run-a").mkdir()
    (store.root / "run-a" / "summary.json").write_text("{half")
    staging = store.root / ".staging" / f"run-b.{dead_pid}"
    staging.mkdir(parents=True)
    live = store.root / ".staging" / f"run-c.{os.getpid()}"
    live.mkdir()
    done = index.claim(pid=os.getpid())
    assert done is not None and index.finish(done.run_id, os.getpid(), {})
    (store.root / "run-b").mkdir()  # committed run: kept
    _recover(index, store, stale_after=3600, max_attempts=3, retry_failed=False)
    assert index.get("a").state == "pending" and not (store.root / "run-a").exists()
    assert not staging.exists() and live.exists()  # a live worker's folder is left alone
    assert index.get("b").state == "done" and (store.root / "run-b").exists()
    # a run whose worker keeps dying is given up after max_attempts
    row = index.claim(pid=dead_pid)
    assert row is not None and row.run_id == "a" and row.attempts == 2
    _recover(index, store, stale_after=3600, max_attempts=3, retry_failed=False)
    assert index.get("a").state == "pending"
    row = index.claim(pid=dead_pid)
    assert row is not None and row.run_id == "a" and row.attempts == 3
    _recover(index, store, stale_after=3600, max_attempts=3, retry_failed=False)
    assert index.get("a").state == "failed"
    assert index.get("a").error == "worker died 3 times while running it"


def test_ray_backend_without_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from steadygrad.experiments.ray_backend import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ConfigError) as info:
        import_ray()
    assert str(info.value) == ("backend: got 'ray'; expected the ray package to be installed; "
                               "pip install 'steadygrad[ray]'")


@pytest.mark.slow
def test_workers_die_with_a_killed_driver(tmp_path: Path) -> None:
    from steadygrad.experiments.index import pid_alive

    args = [sys.executable, "-c", DRIVER, json.dumps(SPEC), str(tmp_path)]
    proc = subprocess.Popen(args, start_new_session=True, stderr=subprocess.DEVNULL)
    index_path = tmp_path / "killme" / "index.sqlite"
    deadline = time.time() + 120
    while not _running(index_path) and time.time() < deadline:
        time.sleep(0.05)
    with RunIndex(index_path) as index:
        pids = [r.pid for r in index.rows("running")]
    assert pids and all(pid_alive(p) for p in pids)
    os.kill(proc.pid, signal.SIGKILL)  # the driver only
    proc.wait()
    deadline = time.time() + 10
    while any(pid_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in pids)
