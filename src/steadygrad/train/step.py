"""The training step: one interface, two engines, chosen once per ``fit``.

:func:`eager_step` is the reference, readable top to bottom (forward → loss (+penalties) →
backward → clip → step → constraints → schedule → zero_grad) and the oracle of the tests.
With ``compile=True``, :func:`build_step` asks the private flat engine
(:mod:`steadygrad.train._flat`: the whole step as one traced, Inductor-compiled graph over flat
parameter/optimizer buffers); where it declines (an optimizer option off its allow-list, step
hooks, a custom clipper, an untested torch version) the eager step runs with a
``torch.compile``-d forward. ``engine``/``fallback`` say which ran and why (``fit`` records
them in ``history.params``). Design, measurements, tested equality: ``docs/internals.md``.

Example:
    >>> import torch
    >>> _ = torch.manual_seed(0); model = torch.nn.Linear(3, 2)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> step = build_step(model, torch.nn.CrossEntropyLoss(), opt)
    >>> x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    >>> losses = [step(x, y, t).loss for t in range(20)]
    >>> losses[-1] < losses[0], step.engine, step.fallback
    (True, 'eager', None)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from steadygrad.optim.clipping import global_norm
from steadygrad.train.learning_rate import set_learning_rate

__all__ = ["GRAD_NORM_EVERY", "StepResult", "TrainStep", "build_step", "eager_step"]

GRAD_NORM_EVERY = 16
"""Without clipping, the pre-clip gradient norm is measured on one step in this many."""
StepFn = Callable[[torch.Tensor, torch.Tensor, int, bool], "StepResult"]


class StepResult(NamedTuple):
    """Detached outputs, loss, penalty, pre-clip norm (floats when synchronizing, else tensors;
    None if not computed), ``ok`` (False: non-finite, the update was not taken)."""

    outputs: torch.Tensor
    loss: Any
    penalty: Any
    grad_norm: Any
    ok: bool


class TrainStep:
    """``step(x, y, t, measure=False)`` for global step ``t``; ``engine`` (``"eager"``,
    ``"flat"``, ``"compiled"``), ``fallback`` (why not flat), ``release()`` (end of run)."""

    def __init__(self, fn: StepFn, engine: str, fallback: str | None = None) -> None:
        self._fn, self.engine, self.fallback = fn, engine, fallback

    def __call__(self, x: torch.Tensor, y: torch.Tensor, t: int,
                 measure: bool = False) -> StepResult:
        return self._fn(x, y, t, measure)

    def release(self) -> None:
        """Nothing to give back (the flat engine gives back its shared storage)."""


def _host(value: torch.Tensor | None) -> Any:
    return None if value is None else value.item()


def eager_step(model: nn.Module, loss_fn: Callable[..., torch.Tensor],
               optimizer: torch.optim.Optimizer, *, clipper: Callable[..., Any] | None = None,
               penalty: Callable[[nn.Module], torch.Tensor] | None = None,
               constrain: Callable[[nn.Module], None] | None = None,
               schedule: Callable[[int], float] | None = None, monitor: Any = None,
               sync: bool = True, forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
               optimizer_step: Callable[[], Any] | None = None) -> StepFn:
    """The eager step (see :func:`build_step` for the arguments; ``forward`` replaces
    ``model(x)``, ``optimizer_step`` replaces ``optimizer.step()``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    forward = model if forward is None else forward
    update = optimizer.step if optimizer_step is None else optimizer_step

    def step(x: torch.Tensor, y: torch.Tensor, t: int, measure: bool = False) -> StepResult:
        out = forward(x)                                              # forward
        loss = loss_fn(out, y)                                        # loss (+ penalties)
        pen = None if penalty is None else penalty(model)
        (loss if pen is None else loss + pen).backward()              # backward
        norm = (clipper(params) if clipper is not None                # clip
                else global_norm(params) if measure else None)
        lv: Any = loss.item() if sync else loss.detach()
        if sync:  # host floats; a non-finite loss or norm skips the update
            pv, nv = _host(pen), _host(norm)
            if not (math.isfinite(lv) and (nv is None or math.isfinite(nv))):
                if monitor is not None:
                    monitor.step(lv)
                return StepResult(out.detach(), lv, pv, nv, False)
        else:
            pv, nv = None if pen is None else pen.detach(), norm
        update()                                                      # step
        if constrain is not None:                                     # constraints
            with torch.no_grad():
                constrain(model)
        if monitor is not None:
            monitor.step(lv)
        if schedule is not None:                                      # schedule
            set_learning_rate(optimizer, schedule, t + 1)
        optimizer.zero_grad(set_to_none=True)
        return StepResult(out.detach(), lv, pv, nv, True)

    return step


def build_step(model: nn.Module, loss_fn: Callable[..., torch.Tensor],
               optimizer: torch.optim.Optimizer, *, compile: bool = False,
               compile_timer: list[float] | None = None,
               changed: Callable[[], int] | None = None, **parts: Any) -> TrainStep:
    """The step of one run, its engine chosen once. ``parts``: ``clipper(params) -> norm``
    (clips ``p.grad``), ``penalty(model)``, ``constrain(model)``, ``schedule(step) -> lr``,
    ``monitor`` (``step(loss)``; an ``armed`` step runs eagerly), ``sync`` (host floats, skip
    non-finite updates). ``compile_timer[0]`` accumulates the seconds of each call that
    compiled; ``changed()`` moves when code outside the step may have changed the model."""
    eager = eager_step(model, loss_fn, optimizer, **parts)
    if not compile:
        return TrainStep(eager, "eager")
    from steadygrad.train._flat import flat_engine

    timer = compile_timer if compile_timer is not None else [0.0]
    engine = flat_engine(model, loss_fn, optimizer, eager, timer=timer, changed=changed,
                         **parts)
    if isinstance(engine, TrainStep):
        return engine
    compiled = eager_step(model, loss_fn, optimizer, forward=torch.compile(model), **parts)
    monitor, seen = parts.get("monitor"), set()

    def step(x: torch.Tensor, y: torch.Tensor, t: int, measure: bool = False) -> StepResult:
        if monitor is not None and monitor.armed:  # its hooks need the eager forward
            return eager(x, y, t, measure)
        if x.shape in seen:
            return compiled(x, y, t, measure)
        seen.add(x.shape)
        start = time.perf_counter()
        try:
            return compiled(x, y, t, measure)
        finally:
            timer[0] += time.perf_counter() - start

    return TrainStep(step, "compiled", fallback=engine)
