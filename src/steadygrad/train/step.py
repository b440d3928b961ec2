"""The training step, built once with only the pieces a run enables.

One step reads top to bottom::

    outputs = model(x)
    loss = loss_fn(outputs, y) (+ regularizers.penalty(model))
    loss.backward()
    grad_norm = clipper(params)            # only when clipping is on
    optimizer.step()                      # without torch's profiling wrapper when unused
    constraints.apply_(model)             # only when a module has a kernel_constraint
    monitor.step(loss)                    # only when a monitor is attached
    set_learning_rate(optimizer, schedule, t + 1)   # only when the rate is not constant
    optimizer.zero_grad(set_to_none=True)

:func:`build_step` closes over the enabled pieces; the flags are Python constants, so a
disabled feature costs a branch, not a tensor operation.

Finiteness: on CPU the step reads ``loss.item()`` (there is no asynchronous queue to stall,
it costs about a microsecond, and the value doubles as the loss accumulator); a non-finite loss
or pre-clip gradient norm returns ``ok=False`` *before* ``optimizer.step()``, so the weights are
never updated with it; the monitor still sees that step (``monitor.step(loss)``, before the
caller's ``zero_grad``), so a sampled non-finite step is localized in its report. On an
accelerator the loss stays on the device and the caller checks the running sum every
``DEVICE_CHECK_EVERY`` (50) steps and at the end of each epoch (no per-step synchronization;
the fault is then reported with a window of steps and may already have spread through the
weights), unless ``sync=True`` is asked for (``on_non_finite="skip"``
needs it).

``compile=True``: when the optimizer has a flat rule (SGD, Adam, AdamW, Nadam, Adamax, RMSprop,
Adagrad; :mod:`steadygrad.optim.flat_rules`) the whole step (forward, loss, gradients, clipping,
finiteness check and the update) is one compiled graph over flat parameter/state buffers
(:class:`steadygrad.train.flat.FlatStep`); the constraints follow as a second compiled call.
The first step runs eagerly when the optimizer has no state yet, and a step the monitor samples
runs eagerly (its hooks must fire) and then applies the same flat update. If a callback freezes
a parameter mid-run (``requires_grad=False``), flat mode ends and the rest of the run is
eager, so the frozen parameter stays fixed as in eager training. Otherwise (another
optimizer, step hooks on it, a custom clipper) the step is compiled as before in regions: loss
and gradients as one ``torch.func`` graph that writes ``p.grad``
(:func:`steadygrad.train.compiled.compiled_grads`), the clipper, the optimizer update (one graph
without torch's wrappers, or eager for plain SGD:
:func:`steadygrad.optim.update.update_function`) and the constraints. With a schedule the
trainer stores ``lr`` as a 0-dim tensor so that a new rate does not recompile the optimizer
step (the flat step reads it on the host).

The pre-clip global gradient norm comes for free from the clipper when clipping is on; without
clipping it is measured on one step in :data:`GRAD_NORM_EVERY` (a per-step norm would cost
~9% of an MLP step on CPU).

Example:
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(3, 2)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> step = build_step(model, torch.nn.CrossEntropyLoss(), opt)
    >>> x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    >>> losses = [step(x, y, t).loss for t in range(20)]
    >>> losses[-1] < losses[0]
    True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from steadygrad.optim.clipping import global_norm
from steadygrad.optim.update import update_function
from steadygrad.train.compiled import compiled_grads
from steadygrad.train.flat import FlatStep

__all__ = ["GRAD_NORM_EVERY", "StepResult", "TrainStep", "build_step", "set_learning_rate"]

GRAD_NORM_EVERY = 16
"""Without clipping, the pre-clip gradient norm is measured on one step in this many."""

Schedule = Callable[[int], float]


class StepResult(NamedTuple):
    """What one step returns: outputs (detached), data loss, penalty, pre-clip norm, ok.

    ``loss``/``penalty``/``grad_norm`` are floats when the step synchronizes (CPU) and 0-dim
    tensors otherwise; ``penalty``/``grad_norm`` are None when not computed for this step.
    ``ok`` is False when the loss or the gradient norm was non-finite: the optimizer step was
    not taken and the gradients are left in place for diagnosis.

    >>> StepResult(torch.zeros(1), 0.5, None, None, True).ok
    True
    """

    outputs: torch.Tensor
    loss: Any
    penalty: Any
    grad_norm: Any
    ok: bool


def set_learning_rate(optimizer: torch.optim.Optimizer, schedule: Schedule, step: int) -> float:
    """Set every group's ``lr`` (and momentum, if the schedule cycles it) for ``step``.

    A schedule with a ``momentum(step)`` method that returns a number (1cycle) also sets
    ``momentum`` (SGD, RMSprop) or ``betas[0]`` (Adam family). A tensor ``lr`` (used by the
    compiled step to avoid recompiling) is filled in place. Returns the learning rate.

    >>> w = torch.nn.Parameter(torch.zeros(1))
    >>> opt = torch.optim.SGD([w], lr=1.0)
    >>> set_learning_rate(opt, lambda t: 0.5 ** t, 3), opt.param_groups[0]["lr"]
    (0.125, 0.125)
    """
    lr = float(schedule(step))
    momentum_fn = getattr(schedule, "momentum", None)
    momentum = momentum_fn(step) if callable(momentum_fn) else None
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
        if momentum is not None:
            if "betas" in group:
                group["betas"] = (float(momentum), group["betas"][1])
            elif "momentum" in group:
                group["momentum"] = float(momentum)
    return lr


class TrainStep:
    """The step function :func:`build_step` returns: ``step(x, y, t, measure=False)``, plus
    :meth:`release`, which ends the run's use of shared storage (compiled flat mode), and
    :meth:`invalidate`, which the trainer calls when code outside the step (a callback,
    validation) may have changed the model, so that a traced step checks it before its next
    use.

    >>> step = TrainStep(lambda x, y, t, measure=False: t, lambda: None)
    >>> step(None, None, 3), step.release(), step.invalidate()
    (3, None, None)
    """

    __slots__ = ("_fn", "invalidate", "release")

    def __init__(self, fn: Callable[..., StepResult], release: Callable[[], None],
                 invalidate: Callable[[], None] | None = None) -> None:
        self._fn = fn
        self.release = release
        self.invalidate = invalidate if invalidate is not None else _nothing

    def __call__(self, x: torch.Tensor, y: torch.Tensor, t: int,
                 measure: bool = False) -> StepResult:
        return self._fn(x, y, t, measure)


def _nothing() -> None:
    return None


def build_step(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    clipper: Callable[[list[torch.Tensor]], torch.Tensor] | None = None,
    penalty: Callable[[nn.Module], torch.Tensor] | None = None,
    constrain: Callable[[nn.Module], None] | None = None,
    schedule: Schedule | None = None,
    monitor: Any = None,
    sync: bool = True,
    compile: bool = False,
    compile_timer: list[float] | None = None,
) -> TrainStep:
    """Build ``step(x, y, t, measure=False) -> StepResult`` for global step ``t``.

    ``measure=True`` asks for the pre-clip gradient norm when there is no clipper (the trainer
    asks on the first step of each epoch and then every :data:`GRAD_NORM_EVERY` steps).

    Args:
        model, loss_fn, optimizer: what to train, the data loss, the torch optimizer.
        clipper: ``clipper(params) -> pre-clip norm`` clipping ``p.grad`` in place, or None.
        penalty: ``penalty(model) -> 0-dim tensor`` added to the loss, or None.
        constrain: ``constrain(model)`` projecting weights after the step, or None.
        schedule: ``step -> lr`` applied after each step (for step ``t + 1``), or None.
        monitor: an object with ``step(loss)`` called after each optimizer step (and
            ``armed``: with ``compile=True`` an armed step runs eagerly), or None.
        sync: read the loss (and norm) on the host each step and skip non-finite updates.
        compile: ``torch.compile`` the forward+loss (with its backward) and the update
            (clip + optimizer step + constraints); the hooks of an armed monitor need the
            eager step, which is used for those steps.
        compile_timer: a one-element list; seconds of each compiled call that met a new input
            shape (compilation) are added to it.

    Example:
        >>> model = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> step = build_step(model, torch.nn.MSELoss(), opt, schedule=lambda t: 0.1 / (t + 1))
        >>> r = step(torch.ones(4, 2), torch.zeros(4, 1), 0, measure=True)
        >>> r.ok, r.grad_norm is not None, opt.param_groups[0]["lr"]
        (True, True, 0.05)
    """
    params: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
    isfinite = math.isfinite

    def forward_loss(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = model(x)
        loss = loss_fn(out, y)
        if penalty is None:
            return out, loss, loss
        pen = penalty(model)
        return out, loss, pen, loss + pen

    def clip() -> torch.Tensor:
        assert clipper is not None
        return clipper(params)

    opt_update = update_function(optimizer)

    def update() -> None:
        opt_update()
        if constrain is not None:
            with torch.no_grad():
                constrain(model)

    if compile:
        c_forward = compiled_grads(model, loss_fn, penalty)  # + gradients: one graph
        c_clip = torch.compile(clip)
        c_opt_update = update_function(optimizer, compile=True)
        c_constrain = None if constrain is None else torch.compile(constrain)

        def c_update() -> None:
            c_opt_update()
            if c_constrain is not None:
                with torch.no_grad():
                    c_constrain(model)
        seen: set[tuple[Any, ...]] = set()
        timer = compile_timer if compile_timer is not None else [0.0]
        flat = FlatStep.create(model, loss_fn, optimizer, clipper=clipper, penalty=penalty,
                               sync=sync)
    else:
        flat = None

    thawed = False

    def flat_update() -> None:
        assert flat is not None
        flat.update_from_grads()
        if constrain is not None:
            with torch.no_grad():
                constrain(model)

    def flat_step(x: torch.Tensor, y: torch.Tensor, t: int, measure: bool) -> StepResult:
        assert flat is not None
        key = flat.compile_key(x, y)
        first = key not in seen
        if first:
            seen.add(key)
            start = time.perf_counter()
        r = flat(x, y, measure, key)
        if not r.ok:
            if monitor is not None:
                monitor.step(r.loss)
            return StepResult(r.outputs, r.loss, r.penalty, r.grad_norm, False)
        if c_constrain is not None:
            with torch.no_grad():
                c_constrain(model)
        if monitor is not None:
            monitor.step(r.loss)
        if schedule is not None:
            set_learning_rate(optimizer, schedule, t + 1)
        if first:
            timer[0] += time.perf_counter() - start
        return StepResult(r.outputs, r.loss, r.penalty, r.grad_norm, True)

    def step(x: torch.Tensor, y: torch.Tensor, t: int, measure: bool = False) -> StepResult:
        nonlocal flat, thawed
        if flat is not None and flat.engaged and not flat.valid():
            # a parameter was frozen mid-run: the compiled graphs differentiate the set of
            # parameters they were built for, so the rest of the run is eager (autograd gives
            # the frozen parameter no gradient and the optimizer leaves it alone)
            flat.release()
            flat, thawed = None, True
        eager = not compile or thawed or (monitor is not None and monitor.armed)
        if flat is not None:
            if not eager and (flat.engaged or flat.engage()):
                return flat_step(x, y, t, measure)
            eager = True  # a monitored step, or the first (the optimizer has no state yet)
            flat.invalidate()  # its hooks come and go around this step
        fwd, clp, upd = (forward_loss, clip, update) if eager else (c_forward, c_clip, c_update)
        if flat is not None and flat.engaged:
            upd = flat_update  # the optimizer's state lives in the flat buffers
        first = False
        if not eager and tuple(x.shape) not in seen:
            seen.add(tuple(x.shape))
            first, start = True, time.perf_counter()
        # forward -> loss (+ penalty)
        outputs: Any = fwd(x, y)
        if penalty is None:
            out, loss, total = outputs
            pen: Any = None
        else:
            out, loss, pen, total = outputs
        lv: Any = loss.item() if sync else loss.detach()
        if sync and pen is not None:
            pen = pen.item()
        # backward
        if eager:  # the compiled forward has already written p.grad
            total.backward()
        # gradient transforms (the clipper returns the pre-clip norm), finiteness check
        if clipper is not None:
            norm: Any = clp()
        elif measure:
            norm = global_norm(params)
        else:
            norm = None
        if sync:
            norm = None if norm is None else norm.item()
            if not (isfinite(lv) and (norm is None or isfinite(norm))):
                if monitor is not None:  # the monitor records (and localizes) the fault too
                    monitor.step(loss.detach())
                return StepResult(out.detach(), lv, pen, norm, False)
        # optimizer step -> constraints
        upd()
        if monitor is not None:
            monitor.step(loss.detach())
        if schedule is not None:
            set_learning_rate(optimizer, schedule, t + 1)
        optimizer.zero_grad(set_to_none=True)
        if first:
            timer[0] += time.perf_counter() - start
        return StepResult(out.detach(), lv, pen, norm, True)

    def release() -> None:
        if flat is not None:
            flat.release()

    def invalidate() -> None:
        if flat is not None:
            flat.invalidate()

    return TrainStep(step, release, invalidate)
