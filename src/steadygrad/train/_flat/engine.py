"""The flat engine: :class:`~steadygrad.train._flat.flat.FlatStep` behind the step interface.

Per call, in order: leave flat mode for good if a callback froze a parameter (the compiled
graph differentiates the parameters it was built for; the rest of the run is eager, the
``fallback`` says so); re-read the model's state if ``changed()`` moved; run the eager step
when the monitor samples this step (its hooks must fire), when the optimizer has no state
yet (torch creates it lazily on the first ``optimizer.step()``) or when the batch is not shaped
like the largest batch seen so far (the partial last batch of an epoch), with the flat update in
place of ``optimizer.step()`` once engaged; otherwise one call of the compiled graph, then the
constraints (compiled), the monitor and the schedule. The first call with a new compile key
(the first flat batch, a larger batch, or a new model state) is a compilation and its whole
duration is added to ``timer[0]``. The partial batch is not compiled: a graph for it took
50-95% of the first graph's compile time on the benchmark nets
(``benchmarks/compile_time.py``), to run once per epoch, where the eager step costs a few
milliseconds more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn

from steadygrad.train._flat.flat import FlatStep
from steadygrad.train.learning_rate import set_learning_rate
from steadygrad.train.step import StepResult, TrainStep, eager_step

__all__ = ["TESTED_TORCH", "FlatEngine", "flat_engine"]

TESTED_TORCH = "2.13"
"""The torch release (major.minor) the flat engine's private-API use is tested with."""


def flat_engine(model: nn.Module, loss_fn: Callable[..., torch.Tensor],
                optimizer: torch.optim.Optimizer, eager: Any, *, timer: list[float],
                changed: Callable[[], int] | None = None, **parts: Any) -> TrainStep | str:
    """The flat engine for this run, or why it declines (a sentence for ``history``)."""
    version = torch.__version__.split("+")[0]
    if not (version + ".").startswith(TESTED_TORCH + "."):
        return f"torch {version} is not the release the flat step is tested with ({TESTED_TORCH})"
    flat = FlatStep.create(model, loss_fn, optimizer, clipper=parts.get("clipper"),
                           penalty=parts.get("penalty"), sync=parts.get("sync", True))
    if isinstance(flat, str):
        return flat
    make = partial(eager_step, model, loss_fn, optimizer, **parts)
    return FlatEngine(flat, eager, make, optimizer, timer=timer, changed=changed, **parts)


class FlatEngine(TrainStep):
    """The step on flat buffers (module docstring); build with :func:`flat_engine`."""

    def __init__(self, flat: FlatStep, eager: Any, make: Callable[..., Any],
                 optimizer: torch.optim.Optimizer, *, timer: list[float],
                 changed: Callable[[], int] | None, **parts: Any) -> None:
        super().__init__(eager, "flat")
        self.flat: FlatStep | None = flat
        self.sampled = make(optimizer_step=flat.update_from_grads)  # monitored, engaged
        self.optimizer, self.timer, self.changed, self._count = optimizer, timer, changed, -1
        self.monitor, self.schedule = parts.get("monitor"), parts.get("schedule")
        constrain = parts.get("constrain")
        self.constrain = None if constrain is None else torch.compile(constrain)
        self.seen: set[tuple[Any, ...]] = set()
        self.shape: tuple[Any, ...] | None = None  # of the run's largest batch: the one compiled
        self.rows = 0

    def __call__(self, x: torch.Tensor, y: torch.Tensor, t: int,
                 measure: bool = False) -> StepResult:
        flat, monitor = self.flat, self.monitor
        if flat is None:
            return self._fn(x, y, t, measure)
        if flat.engaged and not flat.valid():
            flat.release()
            self.flat = None
            self.fallback = f"a parameter was frozen at step {t}: eager from there on"
            return self._fn(x, y, t, measure)
        if self.changed is not None and self.changed() != self._count:
            self._count = self.changed()
            flat.invalidate()
        shape, rows = (x.shape, y.shape), (x.shape[0] if x.dim() else 1)
        if self.shape is None or rows > self.rows:  # a resumed run may begin with the
            self.shape, self.rows = shape, rows     # partial batch
        if ((monitor is not None and monitor.armed) or shape != self.shape
                or not (flat.engaged or flat.engage())):
            flat.invalidate()  # hooks come and go around this step
            return (self.sampled if flat.engaged else self._fn)(x, y, t, measure)
        key = flat.compile_key(x, y)
        first = key not in self.seen
        start = time.perf_counter()
        try:
            return self._flat_step(flat, x, y, t, measure, key)
        finally:
            if first:
                self.seen.add(key)
                self.timer[0] += time.perf_counter() - start
                self.fallback = None if flat.fallback is None else (
                    f"the tracer refused the model ({flat.fallback}): torch.compile of the "
                    "flat step")

    def _flat_step(self, flat: FlatStep, x: torch.Tensor, y: torch.Tensor, t: int,
                   measure: bool, key: tuple[Any, ...]) -> StepResult:
        r = flat(x, y, measure, key)
        if r.ok and self.constrain is not None:
            with torch.no_grad():
                self.constrain(flat.model)
        if self.monitor is not None:
            self.monitor.step(r.loss)
        if r.ok and self.schedule is not None:
            set_learning_rate(self.optimizer, self.schedule, t + 1)
        return StepResult(r.outputs, r.loss, r.penalty, r.grad_norm, r.ok)

    def release(self) -> None:
        """Give parameters and optimizer state their own storage again."""
        if self.flat is not None:
            self.flat.release()
