"""Run a sweep on local worker processes (or Ray), resumably.

Layout of a sweep directory ``<root>/<sweep name>/``::

    sweep.json        the resolved sweep spec (base inlined) and its run ids
    index.sqlite      state of every run (see :mod:`steadygrad.experiments.index`)
    driver.lock       held (``flock``) by the driver while it runs
    runs/<run name>/  one complete run directory per finished run
    runs/.staging/    runs being written (one folder per worker pid)

How a run is executed: a worker *claims* a pending run in the index, builds its directory in
``runs/.staging/<name>.<pid>`` (:func:`~steadygrad.experiments.execute.run_config`), renames
it to ``runs/<name>``, then marks it ``done`` (or ``failed``) in the index. That last update is
the commit point: a run directory whose index row is not ``done``/``failed`` is uncommitted
and is replaced when the run is executed again.

Workers are fresh Python interpreters (``spawn`` semantics: nothing is inherited but the
environment), each with ``torch.set_num_threads(threads)`` where ``workers * threads`` does not
exceed the cores by default.

Interruption: the driver may be stopped at any moment, even by ``kill -9``. Its workers die
with it (``PR_SET_PDEATHSIG`` on Linux, and a parent watch everywhere). ``resume=True`` then
puts runs left ``running`` by a dead worker (pid gone, or heartbeat older than
``stale_after``) back to pending, removes their partial folders, keeps every committed run and
executes the rest, so every run completes exactly once. A run that fails is recorded as
``failed`` with its traceback and never stops the sweep (``retry_failed=True`` on resume runs
failed runs again).

Example:
    >>> import tempfile
    >>> from steadygrad.experiments.space import sweep_from_dict
    >>> sweep = sweep_from_dict({"name": "tiny", "seeds": [0, 1], "base": {
    ...     "data": {"name": "digits", "n_train": 100},
    ...     "model": {"hidden": [8]}, "train": {"epochs": 1},
    ...     "diagnostics": {"enabled": False}}})
    >>> result = run_sweep(sweep, tempfile.mkdtemp(), workers=1)  # doctest: +SKIP
    >>> result.counts  # doctest: +SKIP
    {'pending': 0, 'running': 0, 'done': 2, 'failed': 0}
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from steadygrad.errors import ConfigError, DataError, StorageError
from steadygrad.experiments.config import config_to_dict
from steadygrad.experiments.index import IndexRow, RunIndex, pid_alive
from steadygrad.experiments.space import Sweep, load_sweep
from steadygrad.experiments.store import RunStore, atomic_write_json
from steadygrad.experiments.worker import disk_full, worker_loop

__all__ = [
    "BACKENDS",
    "EXIT_DISK_FULL",
    "SweepResult",
    "check_data",
    "default_threads",
    "run_sweep",
    "worker_loop",
]

BACKENDS = ("local", "ray")
_INDEX = "index.sqlite"


@dataclass(frozen=True)
class SweepResult:
    """What :func:`run_sweep` returns: where the sweep lives and the final index rows.

    Example:
        >>> r = SweepResult(Path("s"), {"done": 2, "failed": 0}, [])
        >>> r.ok
        True
    """

    sweep_dir: Path
    counts: dict[str, int]
    rows: list[IndexRow]

    @property
    def ok(self) -> bool:
        """True when no run failed and none is left pending or running."""
        return all(v == 0 for k, v in self.counts.items() if k != "done")


def default_threads(workers: int) -> int:
    """Torch threads per worker so that ``workers * threads <= cores`` (at least 1).

    >>> default_threads(1) == (os.cpu_count() or 1), default_threads(10**6)
    (True, 1)
    """
    return max(1, (os.cpu_count() or 1) // max(1, workers))


# ------------------------------------------------------------------------ driver side
@contextlib.contextmanager
def _driver_lock(sweep_dir: Path) -> Iterator[None]:
    handle = open(sweep_dir / "driver.lock", "a+")  # noqa: SIM115 - held for the block
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                "sweep", sweep_dir.name, "a sweep that no other process is running",
                hint=f"another driver holds {sweep_dir / 'driver.lock'}; wait for it to end",
            ) from None
        yield
    finally:
        handle.close()


def _spec_digest(sweep: Sweep) -> str:
    ids = [run.run_id for run in sweep.runs]
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()


def check_data(sweep: Sweep) -> None:
    """Load each distinct dataset of ``sweep`` once, so a missing file fails before any run.

    Only a :class:`~steadygrad.errors.DataError` (the files cannot be found or read: every run
    of that dataset would fail the same way) stops the sweep here; an option that does not fit
    the data (e.g. ``n_train`` larger than the dataset) fails its own runs, which the sweep
    records as failed while the other runs go on.

    Raises:
        DataError: a dataset cannot be found or read (the message names it and the fix).

    Example:
        >>> from steadygrad.experiments.space import sweep_from_dict
        >>> check_data(sweep_from_dict({"name": "s", "base": {"data": {"name": "digits"}}}))
        >>> import os, tempfile
        >>> bad = os.path.join(tempfile.mkdtemp(), "bad.npz")
        >>> with open(bad, "w") as f:
        ...     _ = f.write("not an npz file")
        >>> check_data(sweep_from_dict({"name": "s", "base": {"data": {
        ...     "name": "npz", "path": bad}}}))
        Traceback (most recent call last):
        ...
        steadygrad.errors.DataError: ...bad.npz...
    """
    from steadygrad.experiments.execute import load_data

    seen: set[str] = set()
    for run in sweep.runs:
        key = json.dumps(config_to_dict(run.config)["data"], sort_keys=True)
        if key not in seen:
            seen.add(key)
            try:
                load_data(run.config)
            except DataError:
                raise
            except Exception:  # an option error: the run itself reports it
                pass


def _prepare(sweep: Sweep, sweep_dir: Path, resume: bool) -> None:
    exists = (sweep_dir / _INDEX).exists()
    if sweep_dir.exists() and not resume and (exists or any(sweep_dir.iterdir())):
        raise ConfigError(
            "sweep", sweep.name, f"a sweep name not used yet in {sweep_dir.parent}",
            hint="pass resume=True (--resume) to continue it, or choose another name",
        )
    sweep_dir.mkdir(parents=True, exist_ok=True)
    digest = _spec_digest(sweep)
    with RunIndex(sweep_dir / _INDEX) as index:
        stored = index.get_meta("runs_digest")
        if stored is not None and stored != digest:
            raise ConfigError(
                "sweep", sweep.name, "the same runs as the sweep being resumed",
                hint="the sweep file or its base changed since the sweep started; "
                     "give the new sweep another name",
            )
        if stored is None:
            atomic_write_json(sweep_dir / "sweep.json", {
                "spec": dict(sweep.spec), "runs": [
                    {"run_id": r.run_id, "name": r.name, "settings": [list(s) for s in
                                                                      r.settings]}
                    for r in sweep.runs]})
            index.add((r.run_id, r.name, json.dumps(config_to_dict(r.config), sort_keys=True))
                      for r in sweep.runs)
            index.set_meta("runs_digest", digest)


def _recover(index: RunIndex, store: RunStore, *, stale_after: float, max_attempts: int,
             retry_failed: bool) -> None:
    """Requeue runs of dead workers, drop partial folders; give up after ``max_attempts``."""
    for row in index.stale(stale_after=stale_after):
        if row.attempts >= max_attempts:
            index.abandon(row.run_id, f"worker died {row.attempts} times while running it")
        else:
            index.requeue([row.run_id], f"worker pid {row.pid} gone or silent")
    if retry_failed:
        index.requeue([r.run_id for r in index.rows("failed")], "retry_failed")
    staging = store.root / ".staging"
    if staging.is_dir():
        for folder in staging.iterdir():
            pid = folder.name.rsplit(".", 1)[-1]
            if not pid.isdigit() or not pid_alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
    for row in index.rows("pending"):
        path = store.path(row.name)
        if path.exists():
            shutil.rmtree(path)


EXIT_DISK_FULL = 75
"""Exit code of a worker process that stopped because the disk is full (EX_TEMPFAIL)."""

_WORKER_CODE = (
    "import sys; from steadygrad.experiments.worker import _process_main; "
    "_process_main(sys.argv[1], int(sys.argv[2]), sys.argv[3] or None, int(sys.argv[4]))"
)


def _run_local(sweep_dir: Path, workers: int, threads: int, device: str | None) -> None:
    """Start ``workers`` fresh interpreters (spawn semantics, without re-running the caller's
    ``__main__``, so scripts need no ``if __name__ == "__main__"`` guard) and wait for them."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    args = [sys.executable, "-c", _WORKER_CODE, str(sweep_dir), str(threads), device or "",
            str(os.getpid())]
    procs = [subprocess.Popen(args, env=env) for _ in range(workers)]
    try:
        for proc in procs:
            proc.wait()
        if any(proc.returncode == EXIT_DISK_FULL for proc in procs):
            raise OSError(28, "No space left on device (a worker stopped on a full disk)")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def run_sweep(sweep: Sweep | str | Path, root: str | Path, *, workers: int = 1,
              backend: str = "local", address: str | None = None, resume: bool = False,
              threads: int | None = None, device: str | None = None,
              retry_failed: bool = False, stale_after: float = 120.0,
              max_attempts: int = 3, poll: float = 1.0) -> SweepResult:
    """Execute every run of ``sweep`` under ``root/<sweep name>/``, resumably.

    Args:
        sweep: an expanded :class:`~steadygrad.experiments.space.Sweep` or a sweep file.
        root: the results root; the sweep lives in ``root/<sweep.name>``.
        workers: worker processes (local) or Ray tasks running at once.
        backend: ``"local"`` (spawned processes) or ``"ray"``.
        address: Ray cluster address (``ray.init(address=...)``); None starts or reuses a
            local Ray instance.
        resume: continue an existing sweep directory; without it an existing one is an error.
        threads: torch threads per worker; default ``cores // workers`` (at least 1).
        device: torch device string for the runs.
        retry_failed: on resume, execute failed runs again.
        stale_after: seconds without heartbeat after which a running run is presumed dead.
        max_attempts: a run whose worker died this many times is marked failed.
        poll: seconds between checks while runs of another live worker are still running.

    Returns:
        A :class:`SweepResult` with the final state counts and rows.

    Raises:
        ConfigError: bad arguments, an existing sweep without ``resume``, a changed sweep on
            resume, or a sweep another driver is running.

    Example (starting workers takes seconds, so the run itself is not doctested):
        >>> import tempfile
        >>> from steadygrad.experiments.space import sweep_from_dict
        >>> run_sweep(sweep_from_dict({"name": "s"}), tempfile.mkdtemp(), workers=0)
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: workers: got 0; expected an integer >= 1
        >>> result = run_sweep(sweep_from_dict({"name": "s"}), "results", workers=2)
        ... # doctest: +SKIP
        >>> result.counts, result.sweep_dir.name  # doctest: +SKIP
        ({'pending': 0, 'running': 0, 'done': 1, 'failed': 0}, 's')
    """
    if backend not in BACKENDS:
        raise ConfigError("backend", backend, "'local' or 'ray'")
    for name, value in (("workers", workers), ("max_attempts", max_attempts)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(name, value, "an integer >= 1")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ConfigError("threads", threads, "an integer >= 1 or None")
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    n_threads = threads if threads is not None else default_threads(workers)
    sweep_dir = Path(root).resolve() / sweep.name
    if backend == "local":  # Ray workers may see other files: they report their own errors
        check_data(sweep)
    Path(root).mkdir(parents=True, exist_ok=True)
    try:
        return _drive(sweep, sweep_dir, resume, workers=workers, backend=backend,
                      address=address, n_threads=n_threads, device=device,
                      retry_failed=retry_failed, stale_after=stale_after,
                      max_attempts=max_attempts, poll=poll)
    except Exception as exc:
        if not disk_full(exc):
            raise
        raise StorageError(
            f"sweep {sweep.name}: the disk is full ({exc}) in {sweep_dir}; finished runs and "
            "the index are intact; fix: free space, then run the same command with --resume"
        ) from exc


def _drive(sweep: Sweep, sweep_dir: Path, resume: bool, *, workers: int, backend: str,
           address: str | None, n_threads: int, device: str | None, retry_failed: bool,
           stale_after: float, max_attempts: int, poll: float) -> SweepResult:
    _prepare(sweep, sweep_dir, resume)
    store = RunStore(sweep_dir / "runs")
    idle_rounds = 0
    with _driver_lock(sweep_dir), RunIndex(sweep_dir / _INDEX) as index:
        while True:
            _recover(index, store, stale_after=stale_after, max_attempts=max_attempts,
                     retry_failed=retry_failed)
            retry_failed = False
            counts = index.counts()
            if counts["pending"]:
                if idle_rounds >= 2:
                    if shutil.disk_usage(sweep_dir).free < 1 << 20:
                        raise OSError(28, "No space left on device (workers stopped)")
                    raise RuntimeError(
                        f"workers exited twice without finishing any run of {sweep_dir}; "
                        "see their error output above"
                    )
                n = min(workers, counts["pending"])
                if backend == "ray":
                    from steadygrad.experiments.ray_backend import run_ray_workers

                    run_ray_workers(sweep_dir, n, n_threads, device, address)
                else:
                    _run_local(sweep_dir, n, n_threads, device)
                after = index.counts()
                progress = after["done"] + after["failed"] > counts["done"] + counts["failed"]
                idle_rounds = 0 if progress else idle_rounds + 1
            elif counts["running"]:
                time.sleep(poll)  # runs of another live worker: wait for them or staleness
            else:
                break
        return SweepResult(sweep_dir, index.counts(), index.rows())
