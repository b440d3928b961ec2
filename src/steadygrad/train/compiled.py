"""Set-up and tear-down of a compiled ``fit`` run.

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

import torch

__all__ = ["begin_compiled_run", "end_compiled_run", "flushes_denormals"]


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
