"""The Ray backend of :func:`~steadygrad.experiments.runner.run_sweep` (optional: ``pip install
"steadygrad[ray]"``).

Each Ray task runs :func:`~steadygrad.experiments.worker.worker_loop` on the sweep directory,
so claims, heartbeats and commits go through the same SQLite index as local workers: a run is
still executed exactly once, and a sweep started on Ray can be resumed locally and vice versa.
Every task asks Ray for ``threads`` CPUs (capped at the cluster's CPUs), so Ray never packs
more torch threads than cores onto a node.

On a multi-node cluster the sweep directory must be on a filesystem every node sees at the
same path, and SQLite's WAL mode needs that filesystem to support shared memory (local disks
and most cluster filesystems do; NFS does not): prefer the local backend otherwise.

Example:
    >>> import importlib.util
    >>> importlib.util.find_spec("ray") is None or callable(run_ray_workers)
    True
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from steadygrad.errors import ConfigError

__all__ = ["import_ray", "ray_started", "run_ray_workers"]


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`ConfigError` saying how to install it.

    >>> try:
    ...     _ = import_ray()
    ... except ConfigError as err:
    ...     print(err.hint)
    ... else:
    ...     print("pip install 'steadygrad[ray]'")
    pip install 'steadygrad[ray]'
    """
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ConfigError("backend", "ray", "the ray package to be installed",
                          hint="pip install 'steadygrad[ray]'") from None


def _ray_worker(sweep_dir: str, threads: int, device: str | None) -> int:
    from steadygrad.experiments.worker import worker_loop

    return worker_loop(sweep_dir, threads=threads, device=device)


def run_ray_workers(sweep_dir: str | Path, workers: int, threads: int, device: str | None,
                    address: str | None) -> int:
    """Run ``workers`` Ray tasks that drain the sweep's pending runs; returns runs executed.

    Connects to ``address`` (or starts a local Ray instance) unless Ray is already
    initialized in this process; a Ray instance started here is shut down afterwards.
    ``run_sweep(..., backend="ray")`` calls it; starting Ray takes seconds, so:

    >>> run_ray_workers("sweep_dir", workers=2, threads=1, device=None, address=None)
    ... # doctest: +SKIP
    4
    """
    with ray_started(address) as ray:
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        task = ray.remote(num_cpus=min(float(threads), cpus))(_ray_worker)
        refs = [task.remote(str(sweep_dir), threads, device) for _ in range(workers)]
        return int(sum(ray.get(refs)))


@contextlib.contextmanager
def ray_started(address: str | None) -> Iterator[Any]:
    """Ray, initialized for the block: joined if this process already runs it, else started
    at ``address`` (``None``: a local instance) and shut down when the block ends."""
    ray = import_ray()
    started_here = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=True)
        started_here = True
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()
