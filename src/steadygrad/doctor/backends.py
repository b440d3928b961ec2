"""Where the doctor's trials execute: in the doctor's process, or on Ray through the sweep runner.

``backend="local"`` runs every seed of every trial in the calling process
(:func:`steadygrad.doctor.trials.run_trial`). ``backend="ray"`` turns each *round* of trials
(the baseline; then the reference and the single remedies; then the combination) into a sweep
whose runs are the trials' seeds and executes it with
:func:`steadygrad.experiments.runner.run_sweep` (``backend="ray"``): the same worker loop,
SQLite index and Ray tasks as ``steadygrad sweep --backend ray``
(:mod:`steadygrad.experiments.ray_backend`). Each finished run directory then moves to
``<out>/runs/<label>-seed=<s>/``, where the local backend writes it, and the round's sweep
folder (``<out>/.sweeps/``) is removed, so both backends leave the same layout and are read by
the same :func:`steadygrad.doctor.trials.seed_run`. A run executes from its config alone
(data loaded by the worker, model seeded by ``train.seed``), so the trials' metrics are the
local ones.

On a multi-node cluster the doctor's output folder must be on a filesystem every node sees at
the same path (as for a sweep), and a model factory must be importable there by its
``module:function`` name (a lambda or a function defined in ``__main__`` is not: it is
refused before any work).

Example:
    >>> check_backend("local", None, None)
    >>> check_backend("local", "auto", None)
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: address: got 'auto'; expected an address only with ...
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from steadygrad.doctor.trials import (
    DataCache,
    Trial,
    run_trial,
    seed_config,
    seed_run,
    seed_run_name,
)
from steadygrad.errors import ConfigError
from steadygrad.experiments.config import RunConfig

__all__ = ["TrialSpec", "check_backend", "check_portable", "ray_session", "run_round"]

TrialSpec = tuple[str, str, dict[str, Any], dict[str, Any], str]
"""One trial to run: ``(label, role, config table, patch, note)``."""

_LOCAL_FACTORY = "steadygrad.nn.factory:local."


def check_backend(backend: str, address: str | None, workers: int | None) -> None:
    """Refuse a bad backend, an address without Ray, bad ``workers``, or Ray not installed.

    >>> check_backend("ray", None, 0)
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: workers: got 0; expected an integer >= 1 or None
    """
    from steadygrad.experiments.runner import BACKENDS

    if backend not in BACKENDS:
        raise ConfigError("backend", backend, "'local' or 'ray'")
    if address is not None and backend != "ray":
        raise ConfigError("address", address, "an address only with backend='ray'",
                          hint="pass backend='ray' (--backend ray) or drop the address")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ConfigError("workers", workers, "an integer >= 1 or None")
    if workers is not None and backend != "ray":
        raise ConfigError("workers", workers, "workers only with backend='ray'",
                          hint="the local backend runs the trials one after another")
    if backend == "ray":
        from steadygrad.experiments.ray_backend import import_ray

        import_ray()


def check_portable(config: RunConfig, field: str = "config") -> None:
    """Refuse a model factory that another process cannot import (``backend="ray"``).

    >>> from steadygrad.doctor.user_model import factory_config
    >>> check_portable(factory_config(lambda: None, "digits", None))
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: config.model.factory: got 'steadygrad.nn.factory:local...
    """
    spec = getattr(config.model, "factory", None)
    if isinstance(spec, str) and spec.startswith((_LOCAL_FACTORY, "__main__:")):
        raise ConfigError(f"{field}.model.factory", spec,
                          "a factory that Ray workers can import as 'package.module:function'",
                          hint="define the factory at the top level of an importable module "
                               "(not a lambda, a nested function or __main__), or use "
                               "backend='local'")


@contextlib.contextmanager
def ray_session(backend: str, address: str | None) -> Iterator[None]:
    """Connect to Ray once for all the doctor's rounds (``backend="ray"``), not once per round.

    Starts (or joins, with ``address``) Ray as :func:`steadygrad.experiments.ray_backend
    .run_ray_workers` would, unless it is already initialized; shuts down only what it
    started. A no-op for the local backend:

    >>> with ray_session("local", None):
    ...     pass
    """
    if backend != "ray":
        yield
        return
    from steadygrad.experiments.ray_backend import ray_started

    with ray_started(address):
        yield


def run_round(specs: Sequence[TrialSpec], seeds: Sequence[int], root: Path, *, metric: str,
              cache: DataCache, backend: str = "local", address: str | None = None,
              workers: int | None = None, threads: int | None = None, round_name: str = "round",
              on_run: Callable[[str, int], None] | None = None) -> list[Trial]:
    """Run the trials ``specs`` (each over ``seeds``) on ``backend``; returns them in order.

    ``threads`` is the torch threads of each Ray worker (None: cores // workers);
    ``workers`` the Ray tasks at once (None: one per run of the round, Ray queues them by
    free CPUs).

    >>> import tempfile
    >>> spec = ("tiny", "baseline", {"data": {"name": "digits", "n_train": 60},
    ...         "model": {"hidden": [4]}, "train": {"epochs": 1}}, {}, "")
    >>> [t.label for t in run_round([spec], [0], Path(tempfile.mkdtemp()),
    ...                             metric="val_accuracy", cache=DataCache())]
    ['tiny']
    """
    if backend == "local":
        return [run_trial(label, role, table, patch, seeds, root, metric=metric, cache=cache,
                          note=note, on_run=on_run)
                for label, role, table, patch, note in specs]
    from steadygrad.experiments.execute import RunResult
    from steadygrad.experiments.runner import run_sweep
    from steadygrad.experiments.space import PlannedRun, Sweep

    planned: list[PlannedRun] = []
    for label, _role, table, _patch, _note in specs:
        for seed in seeds:
            name = seed_run_name(label, seed)
            run_id = hashlib.sha256(name.encode()).hexdigest()[:16]  # unique per trial/seed
            planned.append(PlannedRun(len(planned), run_id, name, (("train.seed", seed),),
                                      seed_config(label, table, seed)))
            if on_run is not None:
                on_run(label, seed)
    if not planned:
        return []
    sweep = Sweep(round_name, {"name": round_name, "doctor_round": round_name}, tuple(planned))
    result = run_sweep(sweep, root / ".sweeps", backend=backend, address=address,
                       workers=workers or len(planned), threads=threads)
    errors = {row.name: row.error for row in result.rows}
    runs_dir = root / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    trials: list[Trial] = []
    position = 0
    for label, role, table, patch, note in specs:
        seed_runs = []
        for seed in seeds:
            run = planned[position]
            position += 1
            dst = runs_dir / run.name
            src = result.sweep_dir / "runs" / run.name
            if src.is_dir():
                os.replace(src, dst)
            summary_path = dst / "summary.json"
            if summary_path.is_file():
                summary = json.loads(summary_path.read_text(encoding="utf-8"))
                outcome = RunResult(str(summary.get("status", "failed")), dst, summary,
                                    summary.get("error"))
            else:  # abandoned by dead workers: no directory was committed
                outcome = RunResult("failed", dst, {}, errors.get(run.name) or "not run")
            seed_runs.append(seed_run(int(seed), outcome, cache.get(run.config), metric))
        trials.append(Trial(label, role, dict(patch), json.loads(json.dumps(table)),
                            tuple(seed_runs), note))
    shutil.rmtree(result.sweep_dir, ignore_errors=True)
    sweeps = root / ".sweeps"
    if sweeps.is_dir() and not any(sweeps.iterdir()):
        sweeps.rmdir()
    return trials
