"""Item 2: SIGKILL inside checkpoint saves and history appends never leaves a corrupt file
under a final name; ``latest`` is the old or the new state; leftovers are cleaned on the next
start; a torn history tail is repaired on the next append; nothing blocks a restart.

Oracle: the writer encodes the epoch in every weight (``w == epoch``) and prints each epoch it
finished, so after a kill the loaded state must be self-consistent and equal to the last
reported epoch or the next one.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from steadygrad.errors import CheckpointError
from steadygrad.train import checkpoint as ckpt_module
from steadygrad.train.checkpoint import TMP_PREFIX, CheckpointManager
from steadygrad.train.loggers import CSVLogger, JSONLLogger

_CKPT_WRITER = """
import sys, torch
torch.set_num_threads(1)
from steadygrad.train.checkpoint import CheckpointManager
m = CheckpointManager(sys.argv[1], keep=2)
model = torch.nn.Linear(512, 512)
start = int(sys.argv[2])
print("ready", flush=True)
for e in range(start, 10**6):
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float(e))
    m.save(f"epoch-{e:06d}", model, state={"epoch": e, "blob": list(range(2000))})
    print(e, flush=True)
"""

_HIST_WRITER = """
import sys
from steadygrad.train.loggers import CSVLogger, JSONLLogger
j, c = JSONLLogger(sys.argv[1]), CSVLogger(sys.argv[2])
start = int(sys.argv[3])
logs = {f"metric_{i:04d}_with_a_long_name": 0.123456789 * i for i in range(3000)}
print("ready", flush=True)
for e in range(start, 10**6):
    j.on_epoch_end(e, logs); c.on_epoch_end(e, logs)
    print(e, flush=True)
"""


def _kill_after(args: list[str], delay: float) -> list[int]:
    """Start a writer, SIGKILL it ``delay`` s after it is ready; return the epochs it printed."""
    proc = subprocess.Popen([sys.executable, "-c", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    if proc.stdout.readline().strip() != "ready":
        raise AssertionError(f"writer did not start: {proc.communicate()[1][-2000:]}")
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    out = proc.stdout.read()
    proc.wait()
    return [int(s) for s in out.split()]


def _check_checkpoints(d: Path, last_done: int) -> tuple[bool, int, int]:
    """Assert the invariants after a kill; returns (temp leftovers seen, latest epoch, number
    of final-named folders that do not load: half-deleted old checkpoints, see the xfail)."""
    leftovers = any(p.name.startswith(TMP_PREFIX) for p in d.iterdir())
    manager = CheckpointManager(d)  # a restart: cleans leftovers, must not block
    assert not any(p.name.startswith(TMP_PREFIX) for p in d.iterdir())
    latest = manager.load()
    epoch = latest.state["epoch"]
    assert latest.path.name == f"epoch-{epoch:06d}"
    assert float(latest.model_state["weight"].min()) == float(
        latest.model_state["bias"].max()) == epoch
    assert last_done <= epoch <= last_done + 1, (last_done, epoch)
    broken = 0
    for p in d.iterdir():  # every other final-named folder: loads and is self-consistent
        if p.is_dir():
            try:
                loaded = manager.load(p)
            except CheckpointError:  # pragma: no cover - reported by the assertion below
                broken += 1
                continue
            assert float(loaded.model_state["weight"][0, 0]) == loaded.state["epoch"]
    assert broken == 0, f"{broken} final-named checkpoint folders do not load"
    return leftovers, epoch, broken


def _kill_checkpoints(tmp: Path, kills: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    d = tmp / "ckpt"
    start, mid_write, broken = 1, 0, 0
    for _ in range(kills):
        done = _kill_after([_CKPT_WRITER, str(d), str(start)], rng.uniform(0.0, 0.4))
        last = done[-1] if done else start - 1
        if (d / "latest").exists() or done:
            leftovers, epoch, n_broken = _check_checkpoints(d, last)
        else:
            leftovers, epoch, n_broken = False, start - 1, 0
        mid_write += leftovers
        broken += n_broken
        for p in d.iterdir():  # remove half-pruned folders so they are counted once
            if p.is_dir() and not (p / "state.json").is_file():
                shutil.rmtree(p)
        start = epoch + 1
        m = CheckpointManager(d)  # restart proves no lock: one more save goes through
        m.save(f"epoch-{start:06d}", _filled(start), state={"epoch": start})
        start += 1
    return {"kills": kills, "mid_write": mid_write, "half_pruned": broken}


def _filled(e: int) -> torch.nn.Module:
    model = torch.nn.Linear(512, 512)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float(e))
    return model


def test_kill_during_checkpoint_fast(tmp_path: Path) -> None:
    stats = _kill_checkpoints(tmp_path, 1, seed=0)
    assert stats["kills"] == 1


@pytest.mark.slow
def test_kill_during_checkpoint_full(tmp_path: Path) -> None:
    stats = _kill_checkpoints(tmp_path, 30, seed=1)
    print("CHECKPOINT_KILLS", json.dumps(stats))
    assert stats["mid_write"] > 0  # the kills did land inside saves


def _complete_rows(path: Path, header: int) -> int:
    if not path.exists():
        return 0
    return max(sum(ln.endswith("\n") for ln in path.read_text().splitlines(keepends=True))
               - header, 0)


def _check_history(jpath: Path, cpath: Path, last_done: int) -> int:
    """Repair by appending the next epoch; every row then parses, one per epoch."""
    n = _complete_rows(jpath, 0)
    assert last_done + 1 <= n <= last_done + 2, (last_done, n)
    JSONLLogger(jpath).on_epoch_end(n, {"loss": 1.0})
    rows = [json.loads(ln) for ln in jpath.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(n + 1))
    nc = _complete_rows(cpath, 1)  # the CSV is written after the JSONL: one row behind at most
    assert n - 1 <= nc <= n
    CSVLogger(cpath).on_epoch_end(nc, {"loss": 1.0})
    with cpath.open() as f:
        crows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in crows] == list(range(nc + 1))
    assert all(None not in r for r in crows)
    return min(n, nc) + 1


def _kill_history(tmp: Path, kills: int, seed: int) -> int:
    rng = random.Random(seed)
    j, c = tmp / "h.jsonl", tmp / "h.csv"
    start, torn = 0, 0
    for _ in range(kills):
        done = _kill_after([_HIST_WRITER, str(j), str(c), str(start)], rng.uniform(0.0, 0.3))
        last = done[-1] if done else start - 1
        text = j.read_text() if j.exists() else ""
        torn += bool(text) and not text.endswith("\n")
        start = _check_history(j, c, last)
    return torn


def test_kill_during_history_append_fast(tmp_path: Path) -> None:
    _kill_history(tmp_path, 1, seed=0)


@pytest.mark.slow
def test_kill_during_history_append_full(tmp_path: Path) -> None:
    torn = _kill_history(tmp_path, 20, seed=1)
    print("HISTORY_KILLS", json.dumps({"kills": 20, "torn_tails": torn}))


@pytest.mark.parametrize("seed", range(5))
def test_simulated_torn_tail_at_random_offsets(tmp_path: Path, seed: int) -> None:
    """A record torn at a random byte (what a crash mid-write leaves) is repaired."""
    _torn_tail(tmp_path, seed)


@pytest.mark.slow
def test_simulated_torn_tail_many_offsets(tmp_path: Path) -> None:
    for seed in range(5, 205):
        _torn_tail(tmp_path, seed)


def _torn_tail(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    logs = {f"m{i}": 0.5 * i for i in range(500)}
    for cls, name in ((JSONLLogger, "h.jsonl"), (CSVLogger, "h.csv")):
        path = tmp_path / f"{seed}-{name}"
        log = cls(path)
        for e in range(3):
            log.on_epoch_end(e, logs)
        data = path.read_bytes()
        last_start = data.rstrip(b"\n").rfind(b"\n") + 1
        path.write_bytes(data[: rng.randrange(last_start + 1, len(data) - 1)])
        cls(path).on_epoch_end(2, logs)
        if cls is JSONLLogger:
            epochs = [json.loads(ln)["epoch"] for ln in path.read_text().splitlines()]
        else:
            with path.open() as f:
                epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
        assert epochs == [0, 1, 2]


def test_kill_while_pruning_leaves_no_half_checkpoint(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    m = CheckpointManager(tmp_path, keep=1)
    m.save("epoch-000001", _filled(1), state={"epoch": 1})

    def killed_rmtree(path: object, ignore_errors: bool = False) -> None:
        (Path(str(path)) / "state.json").unlink()  # the first file goes, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_module.shutil, "rmtree", killed_rmtree)
    with pytest.raises(KeyboardInterrupt):
        m.save("epoch-000002", _filled(2), state={"epoch": 2})
    monkeypatch.undo()
    m2 = CheckpointManager(tmp_path, keep=1)
    assert m2.load().state["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-000002", "latest"]
