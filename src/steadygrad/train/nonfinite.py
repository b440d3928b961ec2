"""Find where a non-finite value came from, after the fact (costs nothing on healthy steps).

When a step's loss or gradient norm is NaN/Inf the trainer calls :func:`locate_non_finite`
with the offending batch. It names the first layer, in forward order, that holds the fault:

1. a non-finite **parameter or buffer** (a weight that already diverged or was corrupted);
2. else a non-finite **output** in a forward pass over the batch (an overflow in this layer);
3. else a non-finite **gradient** (``p.grad``; the backward pass overflowed here);
4. else the **loss** itself (e.g. ``log(0)`` in a custom loss).

Forward order is the order in which leaf modules run, recorded with forward hooks during the
diagnostic pass; that pass restores the RNG state and the buffers (batch-norm statistics)
afterwards, so diagnosing does not change what training does next.

Example:
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    >>> with torch.no_grad():
    ...     net[2].weight[0, 1] = float("nan")
    >>> locate_non_finite(net, torch.ones(4, 2))
    "layer 2 (Linear '2'): non-finite parameter 'weight'"
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["forward_order", "locate_non_finite"]


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if not list(m.children())]


def _finite(t: Any) -> bool:
    if isinstance(t, torch.Tensor):
        return not t.is_floating_point() or bool(torch.isfinite(t).all())
    if isinstance(t, (tuple, list)):
        return all(_finite(v) for v in t)
    return True


def forward_order(
    model: nn.Module, x: torch.Tensor | None
) -> tuple[list[tuple[str, nn.Module]], dict[str, bool]]:
    """Leaf modules in the order they run on ``x`` (registration order without ``x``), and
    which of them produced a non-finite output. Restores RNG state and buffers afterwards.

    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh())
    >>> [name for name, _ in forward_order(net, torch.zeros(1, 2))[0]]
    ['0', '1']
    """
    leaves = _leaves(model)
    if x is None:
        return leaves, {}
    order: list[tuple[str, nn.Module]] = []
    bad: dict[str, bool] = {}
    handles = []
    for name, module in leaves:

        def hook(m: nn.Module, args: Any, out: Any, name: str = name) -> None:
            if name not in bad:
                order.append((name, m))
                bad[name] = not _finite(out)

        handles.append(module.register_forward_hook(hook))
    rng = torch.get_rng_state()
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    try:
        with torch.no_grad():
            model(x)
    except Exception:  # a diagnostic pass must not hide the original problem
        pass
    finally:
        for h in handles:
            h.remove()
        torch.set_rng_state(rng)
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
    ran = {name for name, _ in order}
    order += [(n, m) for n, m in leaves if n not in ran]
    return order, bad


def locate_non_finite(
    model: nn.Module, x: torch.Tensor | None = None, loss: float | None = None
) -> str:
    """Describe the first layer (forward order) holding a non-finite value; see module doc.

    Returns a phrase like ``"layer 3 (Linear '3'): non-finite gradient of 'weight'"``. When
    parameters and outputs are finite but ``loss`` is not, the loss itself is named (its NaN
    gradient then reaches every layer, so blaming the first layer's gradient would mislead).

    >>> net = torch.nn.Sequential(torch.nn.Linear(1, 1))
    >>> locate_non_finite(net, torch.ones(1, 1))
    "the loss (every layer's parameters, outputs and gradients are finite)"
    >>> locate_non_finite(net, torch.ones(1, 1), loss=float("nan"))
    'non-finite loss (nan) with finite parameters and outputs in every layer'
    """
    order, bad_output = forward_order(model, x)

    def label(i: int, name: str, m: nn.Module) -> str:
        return f"layer {i} ({type(m).__name__} '{name or type(m).__name__}')"

    for i, (name, m) in enumerate(order):
        for pname, p in list(m.named_parameters(recurse=False)) + list(
            m.named_buffers(recurse=False)
        ):
            if not _finite(p):
                return f"{label(i, name, m)}: non-finite parameter '{pname}'"
    for i, (name, m) in enumerate(order):
        if bad_output.get(name):
            return f"{label(i, name, m)}: non-finite output"
    if loss is not None and not math.isfinite(loss):
        return f"non-finite loss ({loss}) with finite parameters and outputs in every layer"
    for i, (name, m) in enumerate(order):
        for pname, p in m.named_parameters(recurse=False):
            if p.grad is not None and not _finite(p.grad):
                return f"{label(i, name, m)}: non-finite gradient of '{pname}'"
    return "the loss (every layer's parameters, outputs and gradients are finite)"
