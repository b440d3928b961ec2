"""Compile a training-step function without Dynamo: trace it once, then call it with tensors.

Used by the compiled flat step (:class:`steadygrad.train._flat.flat.FlatStep`). The step function is
traced once per compile key with ``make_fx`` on fake tensors (no computation, no mutation) and
the graph is compiled by Inductor (``torch._inductor.compile``; on CPU with the C++ wrapper);
the compiled function is then called with tensors only. ``torch.compile`` would run Dynamo's
guards on every call (over 3,000 checks of the module tree for the 20-layer benchmark net);
measured in one session on the issue-3 nets, that cost 0.11 ms of a 0.9 ms step (shallow MLP)
and 0.56 ms of a 2.6 ms step (deep BN net), and the traced call was 15-24% faster per step with
bit-identical weights.

What the guards would check, the caller checks instead: the flat step's compile key holds the
batch shapes and dtypes, the structural optimizer options and :func:`module_state` (modes,
scalar attributes, hooks, parameter and buffer identity of every module), read again after
``FlatStep.invalidate()``; the trainer invalidates at every epoch, after every batch callback
it dispatches and around eager (monitored) steps, i.e. whenever code outside the step can have
changed the model. As with ``jax.jit``, Python side effects inside ``forward`` run when the
step is traced, not on every step. A model the tracer cannot handle (Python control flow on
tensor values, for instance) is compiled with ``torch.compile`` instead, with its guards
(``FlatStep.fallback`` says why).

Example:
    >>> import torch
    >>> def step(x, tree):  # doubles a weight in place and returns a loss
    ...     (w,) = tree
    ...     loss = (x * w).sum()
    ...     w.mul_(2.0)
    ...     return (loss,)
    >>> w = torch.ones(3)
    >>> fn = trace_and_compile(step, (torch.ones(3),), ([w],), None, compile=False)
    >>> fn(torch.ones(3))[0].item(), w.tolist()
    (3.0, [2.0, 2.0, 2.0])
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["cpu_options", "module_state", "non_trainable", "trace_and_compile"]

Tensor = torch.Tensor

_SCALARS = (bool, int, float, str, type(None), tuple)
_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks", "_global_forward_hooks_always_called")


def non_trainable(module: nn.Module) -> dict[str, Tensor]:
    """Frozen parameters and buffers by name: what ``functional_call`` gets besides the
    differentiated weights (buffers passed explicitly may be updated in place, as batch norm's).

    >>> sorted(non_trainable(torch.nn.BatchNorm1d(2)))
    ['num_batches_tracked', 'running_mean', 'running_var']
    """
    return {**{n: p for n, p in module.named_parameters() if not p.requires_grad},
            **dict(module.named_buffers())}


class _Forward(nn.Module):
    """``model(x)`` and the penalty, so that ``functional_call`` swaps weights for both."""

    def __init__(self, model: nn.Module, penalty: Callable[[nn.Module], Tensor] | None):
        super().__init__()
        self.model = model
        self.penalty = penalty

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        out = self.model(x)
        return out, None if self.penalty is None else self.penalty(self.model)


def module_state(model: nn.Module) -> tuple[Any, ...]:
    """What a traced step depends on besides tensor values: for every module its class, mode,
    scalar attributes (``p`` of dropout, ``negative_slope``, ...), hook counts and the identity
    of its parameters and buffers; plus the counts of torch's global module hooks.

    The traced step bakes these in (as ``jax.jit`` does); a different value means a new trace.

    >>> m = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    >>> before = module_state(m)
    >>> m[1].p = 0.2; module_state(m) == before
    False
    >>> m[1].p = 0.5; module_state(m) == before
    True
    >>> m.eval(); module_state(m) == before  # doctest: +ELLIPSIS
    Sequential(...)
    False
    """
    from torch.nn.modules import module as torch_module

    rows: list[Any] = [len(getattr(torch_module, name, ())) for name in _GLOBAL_HOOKS]
    for m in model.modules():
        d = m.__dict__
        rows.append((type(m), tuple([(k, v) for k, v in d.items() if v.__class__ in _SCALARS]),
                     len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
                     len(m._backward_pre_hooks), tuple(map(id, m._parameters.values())),
                     tuple(map(id, m._buffers.values()))))
    return tuple(rows)


@functools.cache
def _compiler_major() -> tuple[str, int] | None:
    """``("gcc" | "clang", major version)`` of Inductor's C++ compiler, None if unknown."""
    try:
        from torch._inductor.cpp_builder import get_compiler_version_info, get_cpp_compiler

        info = get_compiler_version_info(get_cpp_compiler())
    except Exception:  # no compiler found: Inductor reports that itself when it compiles
        return None
    match = re.search(r"(gcc|clang) version (\d+)", info)
    return None if match is None else (match.group(1), int(match.group(2)))


def cpu_options() -> dict[str, Any]:
    """Inductor options for the flat step on CPU.

    * ``cpp_wrapper``: the graph's wrapper is generated as C++, not Python: per step it calls
      ~100 kernels, and interleaved runs of the deep benchmark net measured 2.0 vs 2.6 ms CPU
      per step (median of 8 x 400 steps). It also puts the kernels in one translation unit:
      with the Python wrapper each kernel was a separate compiler run.
    * ``cpp.vec_isa_ok``: when the compiler is GCC >= 11 or Clang >= 12 (which accept every
      vector-ISA flag Inductor uses, AVX-512 BF16 and AMX included), skip Inductor's check
      that builds and loads a probe library per vector ISA in a child process (once per
      process, before the first kernel). The ISAs are then taken from the CPU's flags, as the
      check would find them with such a compiler (same list on the development machine). On
      the tiny test model this halved the CPU time of a cold compile (6.7 vs 14.4 s, compiler
      processes included; ``benchmarks/compile_time.py``).
    * ``cpp_cache_precompile_headers`` off: with it on, the first C++-wrapper compile in a
      cache folder first builds a precompiled header of the ATen includes (a 5 s compiler run
      on the development machine), which later compiles of *new* graphs reuse (about 0.4 s
      each); a graph compiled before is a cache hit and compiles nothing either way. ``fit``
      compiles one graph per model and batch shape, so the precompiled header would pay back
      only after a dozen new graphs.

    >>> cpu_options()["cpp_wrapper"], cpu_options()["cpp_cache_precompile_headers"]
    (True, False)
    """
    options: dict[str, Any] = {"cpp_wrapper": True, "cpp_cache_precompile_headers": False}
    compiler = _compiler_major()
    if compiler is not None and compiler[1] >= {"gcc": 11, "clang": 12}[compiler[0]]:
        options["cpp.vec_isa_ok"] = True
    return options


def trace_and_compile(fn: Callable[..., tuple[Tensor, ...]], args: tuple[Tensor, ...],
                      bound: tuple[Any, ...], options: dict[str, Any] | None, *,
                      compile: bool = True) -> Callable[..., tuple[Tensor, ...]]:
    """``fn(*args, *bound)`` as a function of ``args`` alone: ``bound`` holds the further
    arguments (pytrees of tensors the step reads and updates in place: weights, optimizer
    state, buffers), bound to these very tensors.

    ``fn`` is traced once with ``make_fx`` on fake tensors (no computation, no mutation of
    ``bound``; raises on what the tracer cannot handle, e.g. Python branching on tensor values)
    and the graph is compiled with ``torch._inductor.compile`` (``options``: Inductor config,
    e.g. ``{"cpp_wrapper": True}``). The result must be called with tensors shaped like
    ``args``; it checks nothing (the caller keys its cache on what could change the trace).
    ``compile=False`` returns ``fn`` with ``tree`` bound, untraced.
    """
    from torch.utils import _pytree as pytree

    if not compile:
        return lambda *a: fn(*a, *bound)

    import torch._inductor
    from torch.fx.experimental.proxy_tensor import make_fx

    leaves, spec = pytree.tree_flatten(bound)
    n = len(args)

    def flat(*tensors: Tensor) -> tuple[Tensor, ...]:
        return fn(*tensors[:n], *pytree.tree_unflatten(list(tensors[n:]), spec))

    gm = make_fx(flat, tracing_mode="fake")(*args, *leaves)
    compiled = torch._inductor.compile(gm, [*args, *leaves], options=options)
    return lambda *a: compiled(*a, *leaves)
