"""Peak-memory measurement shared by the hostile-input tests (test_hostile_configs/_data)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

__all__ = ["MiB", "traced_peak"]

MiB = 1 << 20


def traced_peak(fn: Callable[[], Any]) -> tuple[BaseException | None, int]:
    """Run ``fn``; return the exception it raised (or None) and its peak traced allocation."""
    tracemalloc.start()
    try:
        fn()
        err: BaseException | None = None
    except Exception as exc:  # the caller asserts the type
        err = exc
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return err, top
