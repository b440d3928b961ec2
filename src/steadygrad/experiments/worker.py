"""The worker side of a sweep: claim a run, execute it, commit it, repeat.

:func:`worker_loop` is what every local worker process and every Ray task runs (see
:mod:`steadygrad.experiments.runner` for the driver). For each claimed run it builds the run
directory in ``runs/.staging/<name>.<pid>`` with
:func:`~steadygrad.experiments.execute.run_config` while a heartbeat thread refreshes the run's
heartbeat in the index, renames the folder to ``runs/<name>``, and only then marks the run
``done`` or ``failed`` in the index (the commit point). A worker reuses the dataset of its
previous run when ``[data]`` is the same.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> RunIndex(d / "index.sqlite").counts()["pending"]
    0
    >>> worker_loop(d)  # nothing pending: returns at once
    0
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from steadygrad.experiments.config import config_from_dict
from steadygrad.experiments.index import IndexRow, RunIndex
from steadygrad.experiments.store import RunStore, atomic_write_json, fsync_dir

__all__ = ["worker_loop"]

_INDEX = "index.sqlite"


def _set_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # only settable before inter-op work starts
        torch.set_num_interop_threads(1)


class _Heartbeat:
    """A thread refreshing a claimed run's heartbeat; it also kills the worker whose parent
    driver has died (where ``PR_SET_PDEATHSIG`` is unavailable)."""

    def __init__(self, index_path: Path, run_id: str, every: float, parent: int | None) -> None:
        self._stop = threading.Event()
        self._args = (index_path, run_id, every, parent)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        index_path, run_id, every, parent = self._args
        pid = os.getpid()
        with RunIndex(index_path) as index:
            while not self._stop.wait(every):
                if parent is not None and os.getppid() != parent:
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    index.heartbeat(run_id, pid)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class _DataCache:
    """The last dataset a worker loaded, reused by its next run when ``[data]`` is equal
    (loading is deterministic, and datasets are immutable tensors that training only reads)."""

    def __init__(self) -> None:
        self.key: Any = None
        self.data: Any = None

    def get(self, config: Any) -> Any:
        from steadygrad.experiments.execute import load_data

        if self.key != config.data:
            self.key, self.data = None, None
            self.data = load_data(config)
            self.key = config.data
        return self.data


def _execute(index: RunIndex, store: RunStore, row: IndexRow, *, device: str | None,
             heartbeat_every: float, parent: int | None, cache: _DataCache) -> None:
    """Execute one claimed run and commit it (directory rename, then the index update)."""
    from steadygrad.experiments.execute import run_config

    pid = os.getpid()
    staging = store.staging(row.name)
    beat = _Heartbeat(index.path, row.run_id, heartbeat_every, parent)
    error: str | None = None
    summary: dict[str, Any] | None = None
    try:
        config = config_from_dict(json.loads(row.config))
        try:
            data = cache.get(config)
        except Exception:  # let run_config load it again and record the failure
            data = None
        result = run_config(config, staging, device=device, data=data)
        summary = result.summary
        if result.status == "failed":
            error = result.error or "failed"
    except Exception as exc:
        if disk_full(exc):  # not the run's fault: leave it claimed, the driver recovers it
            shutil.rmtree(staging, ignore_errors=True)
            raise
        error = traceback.format_exc()
        atomic_write_json(staging / "summary.json", {"status": "failed", "error": error,
                                                     "name": row.name})
    finally:
        beat.stop()
    final = store.path(row.name)
    if final.exists():  # left by a worker killed after its rename and before its commit
        shutil.rmtree(final)
    os.replace(staging, final)
    fsync_dir(final.parent)
    if error is None:
        index.finish(row.run_id, pid, summary or {})
    else:
        index.fail(row.run_id, pid, error, summary)


def worker_loop(sweep_dir: str | Path, *, threads: int = 1, device: str | None = None,
                heartbeat_every: float = 5.0, watch_parent: bool = False) -> int:
    """Claim and execute pending runs of a sweep until none is left; returns how many ran.

    Several ``worker_loop`` may run at once on the same sweep (processes, Ray tasks): the
    index hands each run to exactly one of them.

    Args:
        sweep_dir: the sweep directory (made by :func:`run_sweep`).
        threads: ``torch.set_num_threads`` for this worker.
        device: torch device for the runs (None: CPU, or what the config's code picks).
        heartbeat_every: seconds between heartbeats of the running run.
        watch_parent: exit when the parent process dies (local worker processes).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> RunIndex(d / "index.sqlite").counts()["pending"]
        0
        >>> worker_loop(d)  # nothing pending
        0
    """
    sweep_dir = Path(sweep_dir)
    _set_threads(threads)
    parent = os.getppid() if watch_parent else None
    store = RunStore(sweep_dir / "runs")
    count = 0
    cache = _DataCache()
    with RunIndex(sweep_dir / _INDEX) as index:
        while parent is None or os.getppid() == parent:
            row = index.claim(os.getpid())
            if row is None:
                break
            _execute(index, store, row, device=device, heartbeat_every=heartbeat_every,
                     parent=parent, cache=cache)
            count += 1
    return count


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or quota) is full: ``ENOSPC``/``EDQUOT`` or SQLite's
    ``database or disk is full``.

    >>> import errno, sqlite3
    >>> disk_full(OSError(errno.ENOSPC, "No space left on device"))
    True
    >>> disk_full(sqlite3.OperationalError("database or disk is full")), disk_full(ValueError())
    (True, False)
    """
    import errno
    import sqlite3

    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(exc, sqlite3.Error) and "disk is full" in str(exc)


def _process_main(sweep_dir: str, threads: int, device: str | None, parent: int) -> None:
    _die_with_parent()
    if os.getppid() != parent:  # the driver died before prctl took effect
        return
    try:
        worker_loop(sweep_dir, threads=threads, device=device, watch_parent=True)
    except Exception as exc:
        if not disk_full(exc):
            raise
        # The claimed run stays "running": the driver recovers it once the worker is gone.
        for folder in (Path(sweep_dir) / "runs" / ".staging").glob(f"*.{os.getpid()}"):
            shutil.rmtree(folder, ignore_errors=True)
        print(f"steadygrad sweep worker {os.getpid()}: disk full ({exc}); stopping",
              file=sys.stderr)
        sys.exit(75)  # EX_TEMPFAIL


