"""Pick layers of any ``nn.Module`` by index, name, glob pattern or slice.

The selectors used by :func:`~steadygrad.transfer.freeze.freeze`, :func:`unfreeze` and
:func:`~steadygrad.transfer.fine_tune.fine_tune`:

- an ``int`` (negative allowed): the model's top-level child at that position
  (``nn.Sequential`` order, or registration order for any other module);
- a ``slice``: those top-level children (``slice(0, -1)``: all but the head);
- a ``str`` without wildcards: the submodule with that qualified name (``"dense1"``,
  ``"encoder.0"``), as ``model.get_submodule`` names it;
- a ``str`` with ``*``, ``?`` or ``[...]``: every submodule whose qualified name matches the
  glob (``fnmatch``; ``"dense*"``, ``"encoder.*"``); submodules of a match are not listed
  again;
- a list/tuple of the above (the union, in model order).

Example:
    >>> from torch import nn
    >>> from collections import OrderedDict
    >>> model = nn.Sequential(OrderedDict(
    ...     dense1=nn.Linear(4, 8), act1=nn.ReLU(), dense2=nn.Linear(8, 8), output=nn.Linear(8, 2)))
    >>> [name for name, _ in select_layers(model, "dense*")]
    ['dense1', 'dense2']
    >>> [name for name, _ in select_layers(model, [0, -1])]
    ['dense1', 'output']
    >>> [name for name, _ in select_layers(model, slice(0, -1))]
    ['dense1', 'act1', 'dense2']
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Sequence
from typing import Any

from torch import nn

from steadygrad.errors import ConfigError

__all__ = ["LayerSelector", "select_layers"]

LayerSelector = int | str | slice | Sequence[int | str | slice]
"""One selector or a list of them (see the module docstring)."""

_GLOB_CHARS = ("*", "?", "[")


def _one(
    model: nn.Module, selector: int | str | slice, path: str
) -> list[tuple[str, nn.Module]]:
    children = list(model.named_children())
    if isinstance(selector, bool):
        raise ConfigError(path, selector, "an int index, a layer name, a glob pattern or a slice")
    if isinstance(selector, int):
        n = len(children)
        if not -n <= selector < n:
            raise ConfigError(
                path, selector, f"a top-level layer index in [{-n}, {n - 1}]",
                hint=f"the model has {n} top-level layers: {', '.join(k for k, _ in children)}",
            )
        return [children[selector]]
    if isinstance(selector, slice):
        picked = children[selector]
        if not picked:
            raise ConfigError(path, selector, f"a slice selecting at least one of {len(children)} "
                              "top-level layers")
        return picked
    if isinstance(selector, str):
        names = [name for name, _ in model.named_modules() if name]
        if any(c in selector for c in _GLOB_CHARS):
            matched = [n for n in names if fnmatch.fnmatchcase(n, selector)]
            # keep only outermost matches: a match's own submodules are already covered
            outer = [n for n in matched if not any(n.startswith(m + ".") for m in matched)]
            if not outer:
                raise ConfigError(path, selector, f"a pattern matching some of {', '.join(names)}")
            return [(n, model.get_submodule(n)) for n in outer]
        if selector not in names:
            close = difflib.get_close_matches(selector, names, n=1)
            raise ConfigError(
                path, selector, f"a layer name, one of {', '.join(names)}",
                hint=f"did you mean {close[0]!r}?" if close else None,
            )
        return [(selector, model.get_submodule(selector))]
    raise ConfigError(
        path, selector, "an int index, a layer name, a glob pattern ('dense*'), a slice or a "
        "list of those",
    )


def select_layers(
    model: nn.Module, layers: LayerSelector, *, path: str = "layers"
) -> list[tuple[str, nn.Module]]:
    """``[(qualified name, module)]`` picked by ``layers``, in model order, without repeats.

    Args:
        model: any ``nn.Module``.
        layers: an index, name, glob pattern, slice or a list of them.
        path: the argument name used in error messages.

    Returns:
        The selected submodules (a top-level child's name is its key in ``model``).

    Raises:
        ConfigError: an index out of range, an unknown name (with a close match), a pattern
            that matches nothing, or a selector of another type.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> select_layers(net, "2")
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: layers: got '2'; expected a layer name, one of 0, 1
    """
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    single = not isinstance(layers, (list, tuple))
    items: list[Any] = [layers] if single else list(layers)  # type: ignore[arg-type]
    if not items:
        raise ConfigError(path, layers, "at least one layer selector")
    found: dict[str, nn.Module] = {}
    for i, item in enumerate(items):
        where = path if single else f"{path}[{i}]"
        for name, module in _one(model, item, where):
            found.setdefault(name, module)
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    return sorted(found.items(), key=lambda kv: order.get(kv[0], len(order)))
