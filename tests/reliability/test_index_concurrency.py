"""Item 11: many processes claim and complete runs of one SQLite index at once.

Oracles: the ``events`` audit table and the workers' own logs (each run claimed and completed
exactly once, claims disjoint), a concurrent reader that verifies a checksum inside every
``done`` record it sees (never a partial record), and a stalled (SIGSTOPped) worker whose late
``finish`` must be refused after its run was requeued and completed by another worker.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steadygrad.experiments.index import RunIndex

INDEX_PY = Path(__file__).resolve().parents[2] / "src" / "steadygrad" / "experiments" / "index.py"

# the workers load index.py alone (stdlib only) so that many start in well under a second
_LOAD = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("sg_index", {str(INDEX_PY)!r})
mod = importlib.util.module_from_spec(spec); sys.modules["sg_index"] = mod
spec.loader.exec_module(mod)
"""

_WORKER = _LOAD + """
import hashlib, json, os, sqlite3, time
idx = mod.RunIndex(sys.argv[1])
claimed, locked = [], 0
while True:
    try:
        row = idx.claim()
    except sqlite3.OperationalError as e:
        locked += 1; continue
    if row is None:
        break
    payload = (row.run_id * 4000)[:50_000]
    ok = idx.finish(row.run_id, os.getpid(), {"payload": payload,
                    "sha": hashlib.sha256(payload.encode()).hexdigest()})
    claimed.append([row.run_id, ok])
print(json.dumps({"claimed": claimed, "locked": locked}))
"""

_STALLED = _LOAD + """
import os
idx = mod.RunIndex(sys.argv[1])
row = idx.claim()
print(row.run_id, flush=True)
sys.stdin.readline()
print(idx.heartbeat(row.run_id, os.getpid()), idx.finish(row.run_id, os.getpid(), {"late": 1}),
      flush=True)
"""


def _hammer(tmp: Path, workers: int, runs: int) -> dict[str, int]:
    path = tmp / "index.sqlite"
    with RunIndex(path) as idx:
        idx.add([(f"run{i:05d}", f"name{i}", "{}") for i in range(runs)])
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(path)], stdout=subprocess.PIPE,
                              text=True) for _ in range(workers)]
    partial, reads = 0, 0
    with RunIndex(path) as reader:
        while any(p.poll() is None for p in procs):
            for row in reader.rows("done"):
                reads += 1
                res = row.result or {}
                if hashlib.sha256(res.get("payload", "").encode()).hexdigest() != res.get("sha"):
                    partial += 1
    outs = [json.loads(p.communicate()[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    claims = collections.Counter(rid for o in outs for rid, ok in o["claimed"] if ok)
    with RunIndex(path) as idx:
        events = collections.Counter((rid, ev) for rid, ev, _ in idx.events())
        assert idx.counts() == {"pending": 0, "running": 0, "done": runs, "failed": 0}
    stats = {
        "runs": runs, "workers": workers,
        "claimed_twice": sum(c > 1 for c in claims.values()),
        "never_claimed": runs - len(claims),
        "event_dupes": sum(1 for (_, ev), c in events.items()
                           if ev in ("claimed", "done") and c != 1),
        "locked_errors": sum(o["locked"] for o in outs),
        "partial_reads": partial, "done_rows_read": reads,
    }
    assert stats["claimed_twice"] == stats["never_claimed"] == stats["event_dupes"] == 0, stats
    assert stats["locked_errors"] == 0 and stats["partial_reads"] == 0, stats
    return stats


def test_concurrent_claims_fast(tmp_path: Path) -> None:
    _hammer(tmp_path, 4, 60)


@pytest.mark.slow
def test_concurrent_claims_full(tmp_path: Path) -> None:
    stats = _hammer(tmp_path, 16, 1000)
    print("INDEX_HAMMER", json.dumps(stats))


def test_stalled_worker_is_retried_and_its_late_write_rejected(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    with RunIndex(path) as idx:
        idx.add([("a", "a", "{}")])
    proc = subprocess.Popen([sys.executable, "-c", _STALLED, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    assert proc.stdout.readline().strip() == "a"
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        time.sleep(0.4)
        with RunIndex(path) as idx:
            stale = idx.stale(stale_after=0.3)
            assert [r.run_id for r in stale] == ["a"]  # alive pid, but heartbeat too old
            assert idx.requeue(["a"], "stale heartbeat") == 1
            retry = idx.claim(pid=999_999)
            assert retry is not None and retry.run_id == "a" and retry.attempts == 2
            assert idx.finish("a", 999_999, {"ok": 1})
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    out, _ = proc.communicate("go\n", timeout=30)
    assert out.split() == ["False", "False"]  # heartbeat and late finish both refused
    with RunIndex(path) as idx:
        row = idx.get("a")
        assert row.state == "done" and row.result == {"ok": 1}
        assert [e for _, e, _ in idx.events("a")].count("done") == 1
