"""The intra-op thread count ``fit`` trains with: measured for the model and batch at hand.

torch's default intra-op thread count (the physical cores) is not the fastest for small
matrices: on a 2-core machine the issue-20 measurement found eager epochs of the 20-layer
benchmark net at 8.6-15.2 s with two threads against 8.8-9.3 s with one (OpenMP workers
spinning on small matrices). Nothing general predicts the crossover, so :func:`choose_threads`
measures it: a few forward+backward steps of a copy of the model on one batch per candidate
count (:func:`candidates`: 1, powers of two and torch's default), the fastest median wins.
The copy has no hooks and the probe runs inside ``torch.random.fork_rng``, so the run itself
(weights, optimizer, random numbers) is exactly what it would be without the probe. The choice
is cached per :func:`shape_key` (model structure, batch shape, dtype), so sweeps and studies
that train the same shape many times probe it once per process.

``fit`` probes only when nothing chose the count already: ``fit(threads=n)`` uses ``n``; a
count set by the user (``torch.set_num_threads`` to something other than the count torch had
when steadygrad was imported, or ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` in the environment) is
kept; the probe is skipped off the CPU and when torch has one thread anyway. The setting is
restored when ``fit`` returns; ``history.params["threads"]`` is the count used and
``history.params["threads_source"]`` where it came from.

Example:
    >>> import torch
    >>> model = torch.nn.Linear(4, 2)
    >>> x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    >>> n = choose_threads(model, torch.nn.functional.cross_entropy, x, y, counts=(1,))
    >>> n
    1
"""

from __future__ import annotations

import contextlib
import copy
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["PROBE_STEPS", "TORCH_DEFAULT", "candidates", "choose_threads", "pinned_threads",
           "shape_key", "thread_choice", "user_set_threads"]

TORCH_DEFAULT = torch.get_num_threads()
"""torch's intra-op thread count when steadygrad was imported (its default, unless the user
had set one before)."""
PROBE_STEPS = 6
"""Timed steps per candidate (after one untimed warm-up step); the median counts."""
_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_CACHE: dict[tuple[Any, ...], int] = {}
_PINNED: list[int] = []


def candidates(default: int | None = None) -> tuple[int, ...]:
    """The counts to try: 1, each power of two below ``default`` (None: :data:`TORCH_DEFAULT`),
    and ``default``.

    >>> candidates(2), candidates(12)
    ((1, 2), (1, 2, 4, 8, 12))
    """
    default = TORCH_DEFAULT if default is None else default
    out, k = {1, max(1, default)}, 2
    while k < default:
        out.add(k)
        k *= 2
    return tuple(sorted(out))


def shape_key(model: nn.Module, x: torch.Tensor) -> tuple[Any, ...]:
    """What the fastest count depends on: module classes, parameter shapes, batch shape, dtype.

    >>> shape_key(torch.nn.Linear(3, 2), torch.zeros(8, 3))[1:]
    ((8, 3), torch.float32, ((2, 3), (2,)))
    """
    return (tuple(type(m).__name__ for m in model.modules()), tuple(x.shape), x.dtype,
            tuple(tuple(p.shape) for p in model.parameters()))


def user_set_threads() -> bool:
    """Whether the user chose the thread count (see the module docstring), or a caller
    pinned it with :func:`pinned_threads`.

    >>> isinstance(user_set_threads(), bool)
    True
    """
    return (bool(_PINNED) or torch.get_num_threads() != TORCH_DEFAULT
            or any(k in os.environ for k in _ENV))


@contextlib.contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """Train at ``threads`` inside the block, whatever ``fit`` would choose (the doctor's
    ``threads=`` uses this); torch's previous count is restored afterwards.

    >>> before = torch.get_num_threads()
    >>> with pinned_threads(1):
    ...     torch.get_num_threads(), user_set_threads()
    (1, True)
    >>> torch.get_num_threads() == before
    True
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    _PINNED.append(threads)
    try:
        yield
    finally:
        _PINNED.pop()
        torch.set_num_threads(before)


def _probe_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` without module hooks (a user's hook must not see probe steps)."""
    probe = copy.deepcopy(model)
    for m in probe.modules():
        for name in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                     "_backward_pre_hooks"):
            getattr(m, name).clear()
    return probe.train()


def choose_threads(model: nn.Module, loss_fn: Callable[..., torch.Tensor], x: torch.Tensor,
                   y: torch.Tensor, *, counts: Sequence[int] | None = None,
                   steps: int = PROBE_STEPS,
                   clock: Callable[[], float] = time.perf_counter) -> int:
    """The candidate thread count with the fastest median forward+backward step on ``(x, y)``.

    Measured on a hook-free copy of ``model`` inside ``torch.random.fork_rng`` (the model and
    the random streams are left as they were); torch's thread count is restored afterwards.
    The result is cached per :func:`shape_key` and the candidates.

    Args:
        model, loss_fn: what ``fit`` trains.
        x, y: one batch (the batch size ``fit`` uses).
        counts: the thread counts to try (default :func:`candidates`).
        steps: timed steps per candidate.
        clock: the timer (tests pass a fake one).

    Example:
        >>> ticks = iter(range(10**6))
        >>> fake = lambda: float(next(ticks))  # every step "takes" 1 unit: ties -> fewest
        >>> m, x = torch.nn.Linear(4, 2), torch.randn(8, 4)
        >>> choose_threads(m, torch.nn.functional.mse_loss, x, torch.zeros(8, 2),
        ...                counts=(1, 2), clock=fake)
        1
    """
    counts = tuple(counts) if counts is not None else candidates()
    key = (shape_key(model, x), counts)
    if key in _CACHE:
        return _CACHE[key]
    previous = torch.get_num_threads()
    probe = _probe_copy(model)
    medians: dict[int, float] = {}
    try:
        with torch.random.fork_rng(devices=[]):
            for n in counts:
                torch.set_num_threads(n)
                times = []
                for i in range(steps + 1):
                    start = clock()
                    loss_fn(probe(x), y).backward()
                    if i:
                        times.append(clock() - start)
                medians[n] = statistics.median(times)
    finally:
        torch.set_num_threads(previous)
    best = min(counts, key=lambda n: (medians[n], n))
    _CACHE[key] = best
    return best


def thread_choice(threads: int | None, model: nn.Module, loss_fn: Callable[..., torch.Tensor],
                  x: torch.Tensor, y: torch.Tensor) -> tuple[int, str]:
    """``(count, source)`` for ``fit``: the argument, the user's setting, or a probe.

    ``source`` is ``"argument"``, ``"user"`` (kept as set), ``"device"`` (not on the CPU),
    ``"single"`` (torch has one thread), ``"probe"``, or ``"probe failed: <error>"`` (a model
    that cannot be copied, say; the current count is kept and training goes on).

    >>> thread_choice(1, torch.nn.Linear(2, 1), None, torch.zeros(4, 2), None)
    (1, 'argument')
    """
    current = torch.get_num_threads()
    if threads is not None:
        return threads, "argument"
    if user_set_threads():
        return current, "user"
    if x.device.type != "cpu":
        return current, "device"
    if max(candidates()) == 1:
        return current, "single"
    try:
        return choose_threads(model, loss_fn, x, y), "probe"
    except Exception as exc:  # the probe must never stop a run that would train
        return current, f"probe failed: {type(exc).__name__}: {exc}"[:200]
