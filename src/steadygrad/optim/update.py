"""The optimizer update of the training step, without per-call overhead nobody asked for.

``optimizer.step()`` on a ``torch.optim`` optimizer goes through two wrappers before the
update itself: a profiling/hook wrapper (a ``record_function`` span, the global and
per-optimizer step hooks, the profiler's ``_optimizer_step_code`` entry point) and
``_use_grad`` (grad mode off, two ``torch._dynamo.graph_break()`` calls). Measured on the
shallow benchmark net (784-300-100-10, SGD, 6 tensors, 1 CPU thread): ``opt.step()`` 86 µs,
without the profiling wrapper 64 µs, one ``torch._foreach_add_`` 47 µs. Under
``torch.compile`` the graph breaks split the step into several frames: compiled
``opt.step()`` 125 µs, the compiled unwrapped update 100 µs.

:func:`update_function` returns what the step should call:

* eager: the update without the profiling wrapper, *when nothing depends on that wrapper*
  (checked on every call, a few attribute reads): no step hooks (global or on this
  optimizer), no active profiler, and ``step`` not replaced on the instance (a
  ``torch.optim.lr_scheduler`` patches it to count calls). Otherwise ``optimizer.step()``.
* compiled: the unwrapped update compiled as one graph under ``no_grad``, except for plain SGD
  (no momentum, no weight decay) whose single ``foreach`` add is faster eager than through a
  compiled frame; a compiled update falls back to ``optimizer.step()`` under the same
  conditions as the eager one.

Both compute exactly what ``optimizer.step()`` computes (the same torch function runs).

Example:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> opt = torch.optim.SGD([w], lr=0.5, foreach=True)
    >>> w.grad = torch.ones(3)
    >>> update = update_function(opt)
    >>> update()
    >>> w.detach().tolist()
    [0.5, 0.5, 0.5]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim import optimizer as _torch_optimizer

__all__ = ["needs_wrapper", "plain_sgd", "raw_step", "update_function"]


def raw_step(optimizer: Any) -> Callable[..., Any] | None:
    """The class's ``step`` inside torch's profiling/hook wrapper, or None if not wrapped.

    Example:
        >>> opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
        >>> raw_step(opt) is not None
        True
        >>> class Duck:  # has a step, but no torch wrapper around it
        ...     def step(self):
        ...         pass
        >>> raw_step(Duck()) is None
        True
    """
    step = getattr(type(optimizer), "step", None)
    if not getattr(step, "hooked", False):
        return None
    inner = getattr(step, "__wrapped__", None)
    return inner if callable(inner) else None


def needs_wrapper(optimizer: torch.optim.Optimizer) -> bool:
    """Whether this call must go through ``optimizer.step()``: hooks, profiler, patched step.

    Example:
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> needs_wrapper(opt)
        False
        >>> handle = opt.register_step_post_hook(lambda *args: None)
        >>> needs_wrapper(opt)
        True
        >>> handle.remove()
    """
    return bool(
        optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or _torch_optimizer._global_optimizer_pre_hooks
        or _torch_optimizer._global_optimizer_post_hooks
        or "step" in vars(optimizer)
        or torch.autograd.profiler._is_profiler_enabled
    )


def plain_sgd(optimizer: torch.optim.Optimizer) -> bool:
    """SGD without momentum or weight decay (one ``p -= lr * g`` per tensor).

    Example:
        >>> p = [torch.nn.Parameter(torch.zeros(1))]
        >>> plain_sgd(torch.optim.SGD(p, lr=0.1)), plain_sgd(torch.optim.SGD(p, momentum=0.9))
        (True, False)
    """
    return type(optimizer) is torch.optim.SGD and all(
        not g.get("momentum") and not g.get("weight_decay") for g in optimizer.param_groups
    )


def update_function(optimizer: torch.optim.Optimizer, *,
                    compile: bool = False) -> Callable[[], None]:
    """``update()``: one optimizer step, as lean as the optimizer allows (module docstring).

    Args:
        optimizer: a ``torch.optim`` optimizer (any other object with ``step()`` works; it is
            then simply called).
        compile: compile the update (``torch.compile``, one graph) unless it is plain SGD.

    Example:
        >>> w = torch.nn.Parameter(torch.zeros(2))
        >>> opt = torch.optim.Adam([w], lr=0.1)
        >>> w.grad = torch.tensor([1.0, -1.0])
        >>> update_function(opt)()
        >>> [round(v, 4) for v in w.detach().tolist()]
        [-0.1, 0.1]
    """
    raw = raw_step(optimizer) if isinstance(optimizer, torch.optim.Optimizer) else None
    if raw is None:
        def wrapped() -> None:
            optimizer.step()
        return wrapped
    inner: Callable[[], Any]
    if compile and not plain_sgd(optimizer) and not optimizer.defaults.get("differentiable"):
        body = getattr(raw, "__wrapped__", raw)  # without _use_grad's graph breaks

        def update_body() -> None:
            body(optimizer)

        compiled = torch.compile(update_body)

        def inner() -> None:
            with torch.no_grad():
                compiled()
    else:
        def inner() -> None:
            raw(optimizer)

    def update() -> None:
        if needs_wrapper(optimizer):
            optimizer.step()
        else:
            inner()

    return update
