"""Two processes that take turns on one core, so both see the machine in the same state.

On a shared VM the speed of a core drifts by tens of percent within seconds (a pure Python
loop measured 0.13 s, then 0.21-0.22 s for five runs in a row, then 0.13 s again), so two
epochs of a few seconds timed one after the other differ by ±15% for the same work, far more
than a 5% overhead. :class:`Turn` interleaves two runs at a finer grain: two processes pinned
to the same core pass a token every ``every`` steps, so each holds the core for a fraction of a
second, then waits (a blocked process uses no CPU time) while the other runs. Both runs then
share every slow and fast spell of the core, and the ratio of their CPU times
(``time.process_time``) measures the difference in their work. Each switch costs both sides
alike (two semaphore operations and some cache refill).

:func:`run_pair` starts the two processes (new ones every call, with the same hash seed: a
process's hash seed and memory layout can make it a few percent faster or slower for its whole
life) and collects their results. Each side's function gets its :class:`Turn`, prepares
(untimed), calls :meth:`Turn.reset` (pin to the shared core if asked, drain the token, meet
the other side at a barrier, and the side that starts takes the token), then runs with
:meth:`Turn.begin` before timing, :meth:`Turn.step` after every step and :meth:`Turn.end`
after timing, and calls :meth:`Turn.done`.

Example (one process playing both sides, to show the token's path):
    >>> import multiprocessing as mp
    >>> ctx = mp.get_context("spawn")
    >>> a, b = ctx.Semaphore(0), ctx.Semaphore(0)
    >>> first = Turn(a, b, every=2, timeout=0.1)
    >>> a.release(); first.begin()      # side A holds the token
    >>> first.step(0); first.step(1)    # after 2 steps: hands it to B (and would wait)
    Traceback (most recent call last):
    ...
    TimeoutError: no turn within 0.1 s
"""

from __future__ import annotations

import os
import queue
import statistics
from collections.abc import Callable
from typing import Any

__all__ = ["Turn", "pin_to", "run_pair", "summary"]


class Turn:
    """One side of a lockstep pair: ``mine`` is this side's token, ``theirs`` the other's.

    Args:
        mine: a semaphore this side acquires to run.
        theirs: the other side's semaphore (released to hand over).
        every: steps per turn.
        barrier: a two-party barrier for :meth:`reset` and :meth:`done` (None: no rounds).
        finished: two shared flags (``multiprocessing.Value``), this side's and the other's:
            a side whose partner has finished its run runs on without handing over (None:
            the partner is assumed to run as many steps).
        starts: whether this side takes the token first in :meth:`reset`.
        core: pin this process to that core in :meth:`reset` (None: leave it unpinned).
        timeout: seconds to wait for the token before giving up (a crashed partner).
    """

    def __init__(self, mine: Any, theirs: Any, every: int, barrier: Any = None,
                 finished: tuple[Any, Any] | None = None, *, starts: bool = False,
                 core: int | None = None, timeout: float = 600.0) -> None:
        self.mine, self.theirs, self.every = mine, theirs, every
        self.barrier, self.finished, self.timeout = barrier, finished, timeout
        self.starts, self.core = starts, core
        self.switches = 0

    def _wait(self) -> None:
        if not self.mine.acquire(timeout=self.timeout):
            raise TimeoutError(f"no turn within {self.timeout} s")

    def reset(self) -> None:
        """Start the timed round (after any untimed preparation): pin to :attr:`core`, drain
        this side's token, meet the other side, and take the token if this side
        :attr:`starts`."""
        if self.core is not None:
            pin_to(self.core)
        while self.mine.acquire(block=False):
            pass
        if self.finished is not None:
            self.finished[0].value = 0
        if self.barrier is not None:
            self.barrier.wait()
        if self.starts:
            self.mine.release()

    def begin(self) -> None:
        """Wait for the token (call before the timed region)."""
        self._wait()

    def step(self, index: int) -> None:
        """After step ``index`` (0-based): every ``every`` steps, hand over and wait."""
        if (index + 1) % self.every == 0 and not (
                self.finished is not None and self.finished[1].value):
            self.switches += 1
            self.theirs.release()
            self._wait()

    def end(self) -> None:
        """Hand over for good (call after the timed region): the other side runs alone."""
        if self.finished is not None:
            self.finished[0].value = 1
        self.theirs.release()

    def done(self) -> None:
        """Meet the other side at the end of a round."""
        if self.barrier is not None:
            self.barrier.wait()


def summary(times: list[tuple[float, float]], goal: float,
            same: bool = False) -> tuple[list[str], str]:
    """Table cells and verdict of a pair's ``(reference, contender)`` CPU seconds per repeat:
    ``[reference median, contender median, median ratio, per-repeat range, goal]`` and the
    verdict text; ``same``: an A/A pair (the noise floor, not judged against ``goal``).

    >>> cells, verdict = summary([(1.0, 1.02), (2.0, 2.08), (1.0, 1.01)], 1.05)
    >>> cells
    ['1.00', '1.02', '1.020x', '1.010–1.040', '≤ 1.05x']
    >>> verdict
    '1.020x CPU (goal ≤ 1.05x: met); per-repeat 1.020, 1.040, 1.010'
    >>> summary([(1.0, 1.0)], 1.05, same=True)[1]
    '1.000x CPU (A/A, the noise floor); per-repeat 1.000'
    """
    each = [b / a for a, b in times]
    q = statistics.median(each)
    cells = [f"{statistics.median([a for a, _ in times]):.2f}",
             f"{statistics.median([b for _, b in times]):.2f}", f"{q:.3f}x",
             f"{min(each):.3f}–{max(each):.3f}",
             "— (A/A: noise floor)" if same else f"≤ {goal:.2f}x"]
    judged = "A/A, the noise floor" if same else (
        f"goal ≤ {goal:.2f}x: {'met' if q <= goal else 'NOT met'}")
    return cells, f"{q:.3f}x CPU ({judged}); per-repeat {', '.join(f'{v:.3f}' for v in each)}"


def pin_to(core: int) -> bool:
    """Pin this process to ``core`` (Linux); False where affinity cannot be set.

    >>> pin_to(1 << 20)  # no such core (and False where affinity is not supported)
    False
    """
    try:
        os.sched_setaffinity(0, {core})
    except (AttributeError, OSError):
        return False
    return True


def _child(role: int, side: Callable[..., Any], side_args: tuple[Any, ...], every: int,
           sems: tuple[Any, Any], barrier: Any, flags: tuple[Any, Any], first: int,
           pin: bool, results: Any) -> None:
    """A side's process: its :class:`Turn`, then ``side(turn, *side_args)``."""
    core = min(os.sched_getaffinity(0)) if pin and hasattr(os, "sched_getaffinity") else None
    turn = Turn(sems[role], sems[1 - role], every, barrier, (flags[role], flags[1 - role]),
                starts=role == first, core=core)
    results.put((role, side(turn, *side_args)))


def run_pair(side: Callable[..., Any], side_args: tuple[tuple[Any, ...], tuple[Any, ...]],
             every: int, hash_seed: int, *, first: int = 0,
             pin: bool = False) -> tuple[Any, Any]:
    """Run ``side(turn, *side_args[role])`` for roles 0 and 1 in two new processes in
    lockstep (``every`` steps per turn, ``PYTHONHASHSEED=hash_seed`` in both, role ``first``
    taking the first turn; ``pin``: both on the same core, for one-thread runs); returns their
    results. ``side`` must be importable by the children (a module-level function) and call
    the :class:`Turn` protocol. Raises RuntimeError when a side's process dies."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    sems, barrier, results = (ctx.Semaphore(0), ctx.Semaphore(0)), ctx.Barrier(2), ctx.Queue()
    flags = (ctx.Value("b", 0), ctx.Value("b", 0))
    saved = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = str(hash_seed)  # inherited by both children
    try:
        procs = [ctx.Process(target=_child, args=(role, side, side_args[role], every, sems,
                                                  barrier, flags, first, pin, results),
                             daemon=True)
                 for role in (0, 1)]
        for proc in procs:
            proc.start()
    finally:
        if saved is None:
            os.environ.pop("PYTHONHASHSEED", None)
        else:
            os.environ["PYTHONHASHSEED"] = saved
    out: dict[int, Any] = {}
    try:
        while len(out) < 2:
            try:
                role, result = results.get(timeout=5)
            except queue.Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"a lockstep side exited with {dead}") from None
                continue
            out[role] = result
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
    return out[0], out[1]
