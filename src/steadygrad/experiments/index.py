"""The sweep index: one SQLite file recording the state of every run of a sweep.

States: ``pending`` -> ``running`` (with the worker's host, pid and a heartbeat time) ->
``done`` or ``failed`` (with the error text). Every state change is one transaction and is
logged in an ``events`` table in that same transaction, so the log is an exact audit of what
happened (e.g. "each run was completed exactly once").

Concurrency: the database is in WAL mode with a busy timeout; a claim runs in a
``BEGIN IMMEDIATE`` transaction (the write lock is taken before reading), so two workers can
never claim the same run. ``finish``/``fail`` only apply to a run that is ``running`` under the
same pid, so a worker that was presumed dead cannot overwrite the state of a run that has been
handed to someone else. The update to ``done`` is the commit point of a run: its directory is
complete before it.

Example:
    >>> import tempfile, pathlib
    >>> idx = RunIndex(pathlib.Path(tempfile.mkdtemp()) / "index.sqlite")
    >>> idx.add([("id-a", "a", "{}"), ("id-b", "b", "{}")])
    2
    >>> claimed = idx.claim(pid=123)
    >>> claimed.run_id, idx.counts()
    ('id-a', {'pending': 1, 'running': 1, 'done': 0, 'failed': 0})
    >>> idx.finish("id-a", pid=123, result={"val_loss": 0.5})
    True
    >>> idx.finish("id-a", pid=123, result={})  # already done: refused
    False
    >>> idx.get("id-a").state, idx.get("id-a").result
    ('done', {'val_loss': 0.5})
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["STATES", "IndexRow", "RunIndex", "pid_alive"]

STATES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id    TEXT PRIMARY KEY,
    position  INTEGER NOT NULL,
    name      TEXT NOT NULL UNIQUE,
    config    TEXT NOT NULL,
    state     TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    host      TEXT,
    pid       INTEGER,
    heartbeat REAL,
    started   REAL,
    finished  REAL,
    attempts  INTEGER NOT NULL DEFAULT 0,
    error     TEXT,
    result    TEXT
);
CREATE INDEX IF NOT EXISTS runs_state ON runs (state, position);
CREATE TABLE IF NOT EXISTS events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    event  TEXT NOT NULL,
    host   TEXT,
    pid    INTEGER,
    time   REAL NOT NULL,
    detail TEXT
);
"""


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists on this machine (zombies count as dead).

    >>> pid_alive(os.getpid()), pid_alive(None)
    (True, False)
    """
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass(frozen=True)
class IndexRow:
    """One run as recorded in the index.

    Example:
        >>> IndexRow("id", 0, "a", "{}", "pending").state
        'pending'
    """

    run_id: str
    position: int
    name: str
    config: str
    state: str
    host: str | None = None
    pid: int | None = None
    heartbeat: float | None = None
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    error: str | None = None
    result: dict[str, Any] | None = None


class RunIndex:
    """A sweep's SQLite index (``index.sqlite``); safe to open from many processes.

    Args:
        path: the database file (created with its tables when missing).
        timeout: seconds to wait for a lock held by another process.

    Example:
        >>> import tempfile, pathlib
        >>> with RunIndex(pathlib.Path(tempfile.mkdtemp()) / "i.sqlite") as idx:
        ...     _ = idx.add([("id", "run", "{}")])
        ...     print(idx.claim(pid=7).state, idx.fail("id", 7, "boom"), idx.get("id").error)
        running True boom
    """

    def __init__(self, path: str | Path, *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.host = socket.gethostname()
        self._db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(_SCHEMA)

    # ----------------------------------------------------------------- plumbing
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _event(self, run_id: str, event: str, pid: int | None, detail: str | None = None) -> None:
        self._db.execute(
            "INSERT INTO events (run_id, event, host, pid, time, detail) VALUES (?,?,?,?,?,?)",
            (run_id, event, self.host, pid, time.time(), detail),
        )

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> RunIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- meta
    def set_meta(self, key: str, value: str) -> None:
        """Store a sweep-level value (the sweep spec, its hash, ...)."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        """A value stored with :meth:`set_meta`, or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # ----------------------------------------------------------------- runs
    def add(self, runs: Iterable[tuple[str, str, str]]) -> int:
        """Add ``(run_id, name, config_json)`` rows as pending (existing ids are kept as is).

        Returns the number of rows added.
        """
        added = 0
        with self._transaction() as db:
            start = db.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM runs").fetchone()[0]
            for run_id, name, config in runs:
                cur = db.execute(
                    "INSERT OR IGNORE INTO runs (run_id, position, name, config, state) "
                    "VALUES (?, ?, ?, ?, 'pending')",
                    (run_id, start + added, name, config),
                )
                if cur.rowcount:
                    self._event(run_id, "added", None)
                    added += 1
        return added

    def claim(self, pid: int | None = None) -> IndexRow | None:
        """Atomically take the first pending run (by position) for worker ``pid``.

        Returns the claimed row (state ``running``), or None when nothing is pending.
        """
        pid = os.getpid() if pid is None else pid
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                "SELECT run_id FROM runs WHERE state = 'pending' ORDER BY position LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE runs SET state = 'running', host = ?, pid = ?, heartbeat = ?, "
                "started = ?, finished = NULL, error = NULL, attempts = attempts + 1 "
                "WHERE run_id = ? AND state = 'pending'",
                (self.host, pid, now, now, row[0]),
            )
            self._event(row[0], "claimed", pid)
        return self.get(row[0])

    def heartbeat(self, run_id: str, pid: int) -> bool:
        """Refresh the heartbeat of a run this worker holds; False if it no longer holds it."""
        with self._transaction() as db:
            cur = db.execute(
                "UPDATE runs SET heartbeat = ? WHERE run_id = ? AND state = 'running' "
                "AND pid = ? AND host = ?",
                (time.time(), run_id, pid, self.host),
            )
        return cur.rowcount == 1

    def _close_run(self, run_id: str, pid: int, state: str, error: str | None,
                   result: dict[str, Any] | None) -> bool:
        with self._transaction() as db:
            cur = db.execute(
                "UPDATE runs SET state = ?, finished = ?, error = ?, result = ? "
                "WHERE run_id = ? AND state = 'running' AND pid = ? AND host = ?",
                (state, time.time(), error,
                 None if result is None else json.dumps(result, sort_keys=True),
                 run_id, pid, self.host),
            )
            if cur.rowcount == 1:
                self._event(run_id, state, pid, error)
        return cur.rowcount == 1

    def finish(self, run_id: str, pid: int, result: dict[str, Any]) -> bool:
        """Mark a run ``done`` (the commit point); False if ``pid`` does not hold it."""
        return self._close_run(run_id, pid, "done", None, result)

    def fail(self, run_id: str, pid: int, error: str,
             result: dict[str, Any] | None = None) -> bool:
        """Mark a run ``failed`` with its error text; False if ``pid`` does not hold it."""
        return self._close_run(run_id, pid, "failed", error, result)

    def abandon(self, run_id: str, error: str) -> bool:
        """Mark a ``running`` run ``failed`` whoever holds it (its worker is known dead)."""
        with self._transaction() as db:
            cur = db.execute(
                "UPDATE runs SET state = 'failed', finished = ?, error = ? "
                "WHERE run_id = ? AND state = 'running'", (time.time(), error, run_id))
            if cur.rowcount == 1:
                self._event(run_id, "failed", None, error)
        return cur.rowcount == 1

    def requeue(self, run_ids: Iterable[str], reason: str) -> int:
        """Put runs back to ``pending`` (stale or dead workers, retried failures)."""
        count = 0
        with self._transaction() as db:
            for run_id in run_ids:
                cur = db.execute(
                    "UPDATE runs SET state = 'pending', pid = NULL, host = NULL, "
                    "heartbeat = NULL, finished = NULL WHERE run_id = ? AND state != 'pending'",
                    (run_id,),
                )
                if cur.rowcount:
                    self._event(run_id, "requeued", None, reason)
                    count += 1
        return count

    def stale(self, *, stale_after: float,
              alive: Callable[[int | None], bool] = pid_alive) -> list[IndexRow]:
        """Running runs whose worker is gone: dead pid on this host, or a heartbeat older
        than ``stale_after`` seconds (any host)."""
        now = time.time()
        out = []
        for row in self.rows("running"):
            dead = row.host == self.host and not alive(row.pid)
            old = row.heartbeat is None or now - row.heartbeat > stale_after
            if dead or old:
                out.append(row)
        return out

    # ----------------------------------------------------------------- reading
    def _row(self, values: tuple[Any, ...]) -> IndexRow:
        (run_id, position, name, config, state, host, pid, heartbeat, started, finished,
         attempts, error, result) = values
        return IndexRow(run_id, position, name, config, state, host, pid, heartbeat, started,
                        finished, attempts, error,
                        None if result is None else json.loads(result))

    def get(self, run_id: str) -> IndexRow:
        """The row of ``run_id`` (KeyError when unknown)."""
        values = self._db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if values is None:
            raise KeyError(run_id)
        return self._row(values)

    def rows(self, state: str | None = None) -> list[IndexRow]:
        """All rows by position, or those in ``state``."""
        if state is None:
            cur = self._db.execute("SELECT * FROM runs ORDER BY position")
        else:
            cur = self._db.execute("SELECT * FROM runs WHERE state = ? ORDER BY position",
                                   (state,))
        return [self._row(v) for v in cur.fetchall()]

    def counts(self) -> dict[str, int]:
        """Number of runs in each state."""
        out = dict.fromkeys(STATES, 0)
        for state, n in self._db.execute("SELECT state, COUNT(*) FROM runs GROUP BY state"):
            out[state] = n
        return out

    def events(self, run_id: str | None = None) -> list[tuple[str, str, int | None]]:
        """The audit log as ``(run_id, event, pid)`` tuples in order."""
        sql = "SELECT run_id, event, pid FROM events"
        args: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " WHERE run_id = ?"
            args = (run_id,)
        return [(r[0], r[1], r[2]) for r in self._db.execute(sql + " ORDER BY seq", args)]
