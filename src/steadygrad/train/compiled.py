"""The compiled training step's pieces: one graph for loss + gradients, and run set-up.

``fit(compile=True)`` used to compile forward + loss as one region and run the backward through
the autograd engine, then the optimizer step as another region (about four Dynamo frames and
guard evaluations per step). :func:`compiled_grads` instead computes loss *and* gradients in a
single graph with ``torch.func.grad_and_value`` over
``torch.func.functional_call(model, (params, buffers), (x,))`` (no autograd engine, no
``AccumulateGrad``); buffers (batch-norm running statistics) are passed explicitly so that
their in-place update is allowed, and the gradients are then written to ``p.grad`` so that the
clipper, the finiteness check and the compiled optimizer step work exactly as before. Measured
on the benchmark nets (``docs/benchmarks.md``, "Trainer speed"): deep 4.3 → 2.8 ms per step,
shallow 1.4 → 1.0 ms CPU.

:func:`begin_compiled_run` / :func:`end_compiled_run` bracket a compiled ``fit``:

* ``torch._dynamo.reset()`` first: every ``fit`` compiles new closures over a new model and
  optimizer, and after ~8 runs in one process Dynamo hits its recompile limit and *silently*
  runs the step uncompiled (``compile_seconds`` ≈ 0).
* On CPU, denormal floats are flushed to zero (``torch.set_flush_denormal(True)``), as XLA
  does by default: late in training of a deep net some gradients and optimizer moments become
  subnormal and the x86 microcode assists for them doubled the compiled epoch time (10.7 →
  5.5 s). The previous setting is restored afterwards. Values below ~1.2e-38 (float32) become
  0; training results are unaffected in practice (Keras/JAX train this way).

Example:
    >>> import torch
    >>> prev = begin_compiled_run(torch.device("cpu"))
    >>> (torch.tensor([1e-38]) / 10).item()  # a subnormal result is flushed to zero
    0.0
    >>> end_compiled_run(prev)
    >>> (torch.tensor([1e-38]) / 10).item() > 0
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["begin_compiled_run", "compiled_grads", "end_compiled_run", "flushes_denormals",
           "non_trainable"]


def flushes_denormals() -> bool:
    """Whether this thread currently flushes subnormal float results to zero.

    torch has a setter (``torch.set_flush_denormal``) but no getter; this divides the smallest
    normal-range float32 value by 10 and checks whether the subnormal result survives.

    >>> isinstance(flushes_denormals(), bool)
    True
    """
    tiny = torch.tensor([torch.finfo(torch.float32).tiny])
    return bool((tiny / 10).item() == 0.0)


def begin_compiled_run(device: torch.device) -> bool | None:
    """Prepare a ``fit(compile=True)`` run; returns what :func:`end_compiled_run` restores.

    Resets Dynamo (so that the run's step is compiled, not silently skipped after the
    recompile limit) and, on CPU, turns denormal flushing on.

    Args:
        device: the training device.

    Returns:
        The previous flush-denormal setting on CPU (when the CPU supports flushing), else None.

    Example:
        >>> prev = begin_compiled_run(torch.device("cpu"))
        >>> flushes_denormals() or not torch.set_flush_denormal(False)
        True
        >>> end_compiled_run(prev)
    """
    import torch._dynamo

    torch._dynamo.reset()
    if device.type != "cpu":
        return None
    previous = flushes_denormals()
    if not torch.set_flush_denormal(True):  # the CPU cannot flush (no SSE3): nothing to restore
        return None
    return previous


def end_compiled_run(previous: bool | None) -> None:
    """Restore the flush-denormal setting that :func:`begin_compiled_run` returned.

    Args:
        previous: the returned value; None leaves the setting alone.

    Example:
        >>> end_compiled_run(None)
    """
    if previous is not None:
        torch.set_flush_denormal(previous)


def non_trainable(module: nn.Module) -> dict[str, torch.Tensor]:
    """Frozen parameters and buffers by name: what ``functional_call`` gets besides the
    differentiated weights (buffers passed explicitly may be updated in place, as batch norm's).

    >>> sorted(non_trainable(torch.nn.BatchNorm1d(2)))
    ['num_batches_tracked', 'running_mean', 'running_var']
    """
    return {**{n: p for n, p in module.named_parameters() if not p.requires_grad},
            **dict(module.named_buffers())}


class _Forward(nn.Module):
    """``model(x)`` and the penalty, so that ``functional_call`` swaps weights for both."""

    def __init__(self, model: nn.Module, penalty: Callable[[nn.Module], torch.Tensor] | None):
        super().__init__()
        self.model = model
        self.penalty = penalty

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.model(x)
        return out, None if self.penalty is None else self.penalty(self.model)


def compiled_grads(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    penalty: Callable[[nn.Module], torch.Tensor] | None = None,
    *,
    compile: bool = True,
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]:
    """``grads(x, y)``: compiled forward + loss (+ penalty) + gradients, written to ``p.grad``.

    The returned function runs one ``torch.compile``-d graph (``torch.func.grad_and_value``
    over ``functional_call``) and sets ``p.grad`` of every trainable parameter; it returns
    ``(outputs, loss, loss)`` or, with a penalty, ``(outputs, loss, penalty, loss + penalty)``,
    all detached, like the step's forward (the last item is the differentiated total).
    Buffers are updated in place as in ``model(x)``.

    Args:
        model: the module (its parameters are read through detached views sharing storage,
            so in-place optimizer updates are seen without recompiling).
        loss_fn: ``loss_fn(outputs, y) -> 0-dim tensor``.
        penalty: ``penalty(model) -> 0-dim tensor`` added to the loss, or None; it is
            evaluated inside the same ``functional_call``, so it sees (and differentiates)
            the same weights.
        compile: ``torch.compile`` the graph (False: the same function run eagerly).

    Returns:
        The function ``(x, y) -> (outputs, loss[, penalty], total)``.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = torch.nn.Linear(3, 1)
        >>> x, y = torch.randn(4, 3), torch.randn(4, 1)
        >>> out, loss, _ = compiled_grads(model, torch.nn.functional.mse_loss, compile=False)(x, y)
        >>> g = model.weight.grad.clone(); model.weight.grad = None
        >>> torch.nn.functional.mse_loss(model(x), y).backward()  # autograd agrees
        >>> torch.allclose(g, model.weight.grad), round(loss.item(), 4)
        (True, 1.2724)
    """
    from torch.func import functional_call, grad_and_value

    wrapper = _Forward(model, penalty)
    named = [(n, p) for n, p in wrapper.named_parameters() if p.requires_grad]
    detached = {n: p.detach() for n, p in named}
    state = non_trainable(wrapper)

    def loss_of(p: dict[str, torch.Tensor], s: dict[str, torch.Tensor], x: torch.Tensor,
                y: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        out, pen = functional_call(wrapper, (p, s), (x,))
        loss = loss_fn(out, y)
        if pen is None:
            return loss, (out, loss)
        return loss + pen, (out, loss, pen)

    def grads_and_loss(x: torch.Tensor, y: torch.Tensor) -> tuple[Any, ...]:
        grads, (total, aux) = grad_and_value(loss_of, has_aux=True)(detached, state, x, y)
        return [grads[n] for n, _ in named], total.detach(), tuple(a.detach() for a in aux)

    compiled = torch.compile(grads_and_loss) if compile else grads_and_loss

    def run(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        grads, total, aux = compiled(x, y)
        for (_, p), g in zip(named, grads, strict=True):
            p.grad = g
        return (*aux, total)

    return run
