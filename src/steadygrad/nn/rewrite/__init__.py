"""Model rewrites for any ``nn.Module``: module in, new module out, the original untouched.

The doctor's remedies for models it did not build (a user's factory, a CNN, an LSTM, a
transformer) are these rewrites, each returning a :class:`Rewritten` with the new module and
the record of what changed. In a config they are listed under ``[model] rewrites`` as
``{name = "swap_activation", old = ["sigmoid"], new = "elu"}`` and applied, in order, to the
freshly built model (:func:`apply_rewrites`).

Example:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 2))
    >>> steps = [{"name": "swap_activation", "old": "sigmoid", "new": "elu"},
    ...          {"name": "reinit"}]
    >>> results = apply_rewrites(net, steps)
    >>> results[-1].module[1], [r.summary() for r in results]
    (ELU(alpha=1.0), ['swap_activation: 1 change', 'reinit: 2 changes'])
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from steadygrad._registry import Registry
from steadygrad.errors import ConfigError
from steadygrad.nn.rewrite._core import Change as Change
from steadygrad.nn.rewrite._core import Rewritten as Rewritten
from steadygrad.nn.rewrite.activation import functional_activations as functional_activations
from steadygrad.nn.rewrite.activation import swap_activation as swap_activation
from steadygrad.nn.rewrite.init import reinit as reinit
from steadygrad.nn.rewrite.structure import alpha_dropout as alpha_dropout
from steadygrad.nn.rewrite.structure import insert_norm as insert_norm
from steadygrad.nn.rewrite.structure import pre_ln as pre_ln

__all__ = [
    "REWRITES",
    "Change",
    "Rewritten",
    "alpha_dropout",
    "apply_rewrites",
    "check_rewrite",
    "functional_activations",
    "insert_norm",
    "pre_ln",
    "reinit",
    "swap_activation",
]

REWRITES: Registry[Callable[..., Rewritten]] = Registry("rewrite")
REWRITES.add("swap_activation", swap_activation)
REWRITES.add("reinit", reinit)
REWRITES.add("insert_norm", insert_norm)
REWRITES.add("pre_ln", pre_ln)
REWRITES.add("alpha_dropout", alpha_dropout)

_INTERNAL = ("model", "example_input")


def check_rewrite(spec: Any, path: str = "rewrite") -> dict[str, Any]:
    """Validate one rewrite spec ``{"name": ..., **arguments}`` (or a bare name) against the
    rewrite's signature; returns the spec as a dict.

    >>> check_rewrite("pre_ln")
    {'name': 'pre_ln'}
    >>> check_rewrite({"name": "insert_norm", "knid": "layer"}, "model.rewrites[0]")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: model.rewrites[0].knid: got 'knid'; expected one of kind, ...
    """
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ConfigError(path, spec, "a rewrite name or a table with a 'name' key",
                          hint=f"one of {', '.join(REWRITES.names())}")
    name = REWRITES.canonical(str(spec["name"]))
    params = inspect.signature(REWRITES.get(name)).parameters
    allowed = [p for p in params if p not in _INTERNAL]
    for key in spec:
        if key != "name" and key not in allowed:
            raise ConfigError(f"{path}.{key}", key, "one of " + ", ".join(allowed)
                              if allowed else f"no arguments ({name} takes none)")
    return {"name": name, **{k: v for k, v in spec.items() if k != "name"}}


def apply_rewrites(model: nn.Module, specs: Sequence[Any], *, seed: int = 0,
                   example_input: Any = None) -> list[Rewritten]:
    """Apply the rewrites ``specs`` in order; one :class:`Rewritten` per step (the last holds
    the final model). ``seed`` fills ``reinit``'s seed when the spec sets none;
    ``example_input`` goes to ``insert_norm``.

    Raises:
        ConfigError: an unknown rewrite or argument, or an invalid value.
    """
    results: list[Rewritten] = []
    current = model
    for i, raw in enumerate(specs):
        spec = check_rewrite(raw, f"rewrites[{i}]")
        name = spec.pop("name")
        if name == "reinit":
            spec.setdefault("seed", seed)
        if name == "insert_norm" and example_input is not None:
            spec["example_input"] = example_input
        result = REWRITES.get(name)(current, **spec)
        results.append(result)
        current = result.module
    return results
