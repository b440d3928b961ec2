"""SQLite index: atomic claims under contention, guarded state changes, stale detection."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from steadygrad.experiments.index import RunIndex, pid_alive


def _index(tmp_path: Path, n: int = 0) -> RunIndex:
    index = RunIndex(tmp_path / "index.sqlite")
    index.add((f"id{i}", f"run{i}", json.dumps({"i": i})) for i in range(n))
    return index


def test_wal_mode_and_busy_timeout(tmp_path: Path) -> None:
    index = _index(tmp_path)
    assert index._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert index._db.execute("PRAGMA busy_timeout").fetchone()[0] == 60000


def test_each_run_is_claimed_exactly_once_by_competing_workers(tmp_path: Path) -> None:
    _index(tmp_path, 60).close()
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(pid: int) -> None:
        index = RunIndex(tmp_path / "index.sqlite")
        while (row := index.claim(pid)) is not None:
            with lock:
                claimed.append(row.run_id)
            assert index.finish(row.run_id, pid, {"by": pid})
        index.close()

    threads = [threading.Thread(target=worker, args=(1000 + k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(f"id{i}" for i in range(60))
    index = RunIndex(tmp_path / "index.sqlite")
    assert index.counts() == {"pending": 0, "running": 0, "done": 60, "failed": 0}
    done_events = [e for e in index.events() if e[1] == "done"]
    assert len(done_events) == 60 == len({e[0] for e in done_events})


def test_add_is_idempotent_and_keeps_order(tmp_path: Path) -> None:
    index = _index(tmp_path, 3)
    assert index.add([("id1", "run1", "{}"), ("id9", "run9", "{}")]) == 1
    assert [r.run_id for r in index.rows()] == ["id0", "id1", "id2", "id9"]


def test_only_the_holder_can_close_a_run(tmp_path: Path) -> None:
    index = _index(tmp_path, 1)
    row = index.claim(pid=11)
    assert row is not None and row.state == "running" and row.attempts == 1
    assert not index.finish("id0", pid=12, result={})
    assert not index.heartbeat("id0", pid=12)
    assert index.fail("id0", pid=11, error="Traceback: boom")
    assert index.get("id0").error == "Traceback: boom"
    assert not index.finish("id0", pid=11, result={})  # failed is final


def test_stale_runs_are_dead_pids_or_silent_heartbeats(tmp_path: Path) -> None:
    index = _index(tmp_path, 3)
    dead = index.claim(pid=2**22 + 12345)  # beyond pid_max on Linux: never alive
    alive_silent = index.claim(pid=1)
    alive_fresh = index.claim(pid=1)
    assert dead and alive_silent and alive_fresh
    index._db.execute("UPDATE runs SET heartbeat = ? WHERE run_id = ?",
                      (time.time() - 1000, alive_silent.run_id))
    stale = {r.run_id for r in index.stale(stale_after=100)}
    assert stale == {dead.run_id, alive_silent.run_id}
    assert index.requeue(stale, "test") == 2
    assert index.counts() == {"pending": 2, "running": 1, "done": 0, "failed": 0}
    again = index.claim(pid=5)
    assert again is not None and again.attempts == 2


def test_pid_alive() -> None:
    import os

    assert pid_alive(os.getpid()) and not pid_alive(0) and not pid_alive(2**22 + 12345)
