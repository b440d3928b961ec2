"""How busy the rest of the machine was while a benchmark timed an epoch (Linux ``/proc/stat``).

A timed epoch is only as good as the machine was quiet: :class:`BusyMeter` reads the
machine-wide CPU counters of ``/proc/stat`` and this process's CPU time at the start and end of
an epoch, and :meth:`BusyMeter.stop` returns the share of the machine's CPU capacity that
*other* processes used meanwhile (0.0: nobody else ran; 0.5: other work kept half of all cores
busy). The benchmarks drop epochs above a threshold (``--busy-threshold``).

Example:
    >>> meter = BusyMeter()
    >>> meter.start(); share = meter.stop()
    >>> share is None or 0.0 <= share <= 1.0
    True
    >>> others_share((100, 400), (160, 600), own_cpu_seconds=0.2, hz=100)
    0.2
"""

from __future__ import annotations

import os
import time

__all__ = ["BusyMeter", "cpu_counters", "others_share"]


def cpu_counters() -> tuple[int, int] | None:
    """``(busy, total)`` jiffies over all CPUs since boot from ``/proc/stat``, or None.

    busy = user + nice + system + irq + softirq + steal; total adds idle and iowait.
    """
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def others_share(before: tuple[int, int], after: tuple[int, int], own_cpu_seconds: float,
                 hz: int | None = None) -> float:
    """The share of all CPU capacity used by other processes between two :func:`cpu_counters`
    readings, given this process's CPU seconds in between (clamped to [0, 1])."""
    hz = hz or os.sysconf("SC_CLK_TCK")
    total = (after[1] - before[1]) / hz
    if total <= 0:
        return 0.0
    others = (after[0] - before[0]) / hz - own_cpu_seconds
    return round(min(1.0, max(0.0, others / total)), 6)


class BusyMeter:
    """``start()`` then ``stop() -> others' CPU share`` (None where ``/proc/stat`` is absent)."""

    def __init__(self) -> None:
        self._counters: tuple[int, int] | None = None
        self._cpu = 0.0

    def start(self) -> None:
        """Read the counters at the start of a timed epoch."""
        self._counters, self._cpu = cpu_counters(), time.process_time()

    def stop(self) -> float | None:
        """Others' share of the machine since :meth:`start`."""
        after, own = cpu_counters(), time.process_time() - self._cpu
        if self._counters is None or after is None:
            return None
        return others_share(self._counters, after, own)
