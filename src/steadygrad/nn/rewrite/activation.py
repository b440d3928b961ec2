"""Swap activation modules by type; report activations called as functions, which no swap reaches.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 2))
    >>> r = swap_activation(net, "sigmoid", "elu")
    >>> r.module[1], net[1], [c.line() for c in r.changes]
    (ELU(alpha=1.0), Sigmoid(), ['1: Sigmoid() -> ELU(alpha=1.0)'])
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Sequence
from typing import Any

from torch import nn

from steadygrad.nn import activations as _acts
from steadygrad.nn.rewrite._core import Change, Rewritten, copy_model, replace_modules

__all__ = ["functional_activations", "swap_activation"]

_FUNCTIONAL = re.compile(
    r"(?:\b(?:F|functional|torch\.nn\.functional|torch)\.(?P<fn>relu6?|leaky_relu|elu|selu|"
    r"celu|gelu|silu|mish|sigmoid|tanh|softplus|softsign|hardtanh|hardsigmoid|hardswish)_?\("
    r"|\.(?P<method>relu|sigmoid|tanh)_?\(\))")
_ALIASES = {"silu": "swish", "hardsigmoid": "hard_sigmoid"}


def _names(value: str | Sequence[str]) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else list(value)
    return tuple(_acts.ACTIVATIONS.canonical(str(v)) for v in items)


def functional_activations(model: nn.Module, names: Sequence[str] | None = None) -> list[str]:
    """Activations that ``model`` applies as function calls, found by reading each ``forward``.

    Looks at the source of the ``forward`` of every module class of ``model`` that is not part
    of ``torch.nn`` (``F.relu(x)``, ``torch.sigmoid(x)``, ``x.tanh()``, ...) and at the
    ``activation`` attribute of torch's transformer layers (a function by default). No module
    swap can change these; they are reported as ``Class.forward: F.relu (line N)``.

    Args:
        model: any module.
        names: only report these activations (registry names); None reports all.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = nn.Linear(2, 2)
        ...     def forward(self, x):
        ...         return torch.sigmoid(self.fc(F.relu(x)))
        >>> functional_activations(Net())  # doctest: +SKIP
        ['Net.forward: torch.sigmoid (line 2)', 'Net.forward: F.relu (line 2)']
        >>> functional_activations(nn.TransformerEncoderLayer(8, 2))
        ['TransformerEncoderLayer.activation: relu (a function, set at construction)']
    """
    wanted = None if names is None else set(_names(names))
    found: list[str] = []
    seen: set[type] = set()
    for sub in model.modules():
        cls = type(sub)
        if isinstance(sub, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
            act = getattr(sub, "activation", None)
            if act is not None and not isinstance(act, nn.Module):
                name = getattr(act, "__name__", str(act))
                canon = _ALIASES.get(name, name)
                if wanted is None or canon in wanted:
                    found.append(f"{cls.__name__}.activation: {name} (a function, set at "
                                 "construction)")
        if cls in seen or cls.__module__.startswith("torch.nn"):
            continue
        seen.add(cls)
        try:
            source = textwrap.dedent(inspect.getsource(cls.forward))
        except (OSError, TypeError):
            continue
        for lineno, line in enumerate(source.splitlines()[1:], start=1):
            code = line.split("#", 1)[0]
            for match in _FUNCTIONAL.finditer(code):
                fn = match["fn"] or match["method"]
                canon = _ALIASES.get(fn, fn)
                if wanted is not None and canon not in wanted:
                    continue
                call = match.group(0).rstrip("(").rstrip(")").rstrip("(")
                found.append(f"{cls.__name__}.forward: {call} (line {lineno})")
    return found


def swap_activation(model: nn.Module, old: str | Sequence[str], new: str | dict[str, Any]
                    ) -> Rewritten:
    """Replace every activation module of the kinds ``old`` by a fresh ``new`` (a copy).

    Args:
        model: any ``nn.Module`` (not modified).
        old: activation name(s) to replace (``"sigmoid"``, ``["sigmoid", "tanh"]``); a module
            counts when :func:`steadygrad.nn.activations.activation_name` gives that name
            (subclasses included; ``nn.ReLU(inplace=True)`` is ``relu``).
        new: the replacement, a registered name or ``{"name": ..., **arguments}``.

    Returns:
        :class:`Rewritten`; a module used at several places is replaced once and stays
        shared; activations called as functions in ``forward`` are listed in
        ``not_rewritable`` (:func:`functional_activations`).

    Raises:
        UnknownNameError: an unknown activation name.

    Example:
        >>> act = nn.ReLU(inplace=True)
        >>> net = nn.Sequential(nn.Linear(4, 4), act, nn.Linear(4, 4), act)
        >>> r = swap_activation(net, "relu", {"name": "leaky_relu", "alpha": 0.1})
        >>> r.module[1] is r.module[3], r.module[1], len(r.changes)
        (True, LeakyReLU(negative_slope=0.1), 2)
    """
    kinds = _names(old)
    _acts.get(new)  # validates the name and its arguments before copying anything
    out = copy_model(model)
    mapping: dict[int, nn.Module] = {}
    before: dict[int, str] = {}
    for sub in out.modules():
        if id(sub) not in mapping and _acts.activation_name(sub) in kinds:
            mapping[id(sub)] = _acts.get(new)
            before[id(sub)] = repr(sub)
    if id(out) in mapping:  # the model is itself an activation
        changes = [Change("", before[id(out)], repr(mapping[id(out)]))]
        out = mapping[id(out)]
    else:
        paths = replace_modules(out, mapping)
        by_path = dict(out.named_modules(remove_duplicate=False))
        inverse = {id(v): k for k, v in mapping.items()}
        changes = [Change(p, before[inverse[id(by_path[p])]], repr(by_path[p])) for p in paths]
    spec = {"name": "swap_activation", "old": list(kinds), "new": new}
    return Rewritten(out, spec, tuple(changes), tuple(functional_activations(out, kinds)))
