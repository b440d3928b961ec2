"""What every rewrite shares: the result record and module replacement that keeps sharing.

A rewrite never touches its input: it deep-copies the model, edits the copy and returns it
with the list of changes (:class:`Rewritten`). Replacement is by object identity, so a module
used twice (``self.act`` called after two layers) is replaced once and stays shared, and
containers (``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``) keep their keys.

Example:
    >>> from torch import nn
    >>> act = nn.Sigmoid()
    >>> net = nn.Sequential(nn.Linear(2, 2), act, nn.Linear(2, 2), act)
    >>> new = nn.ELU()
    >>> replace_modules(net, {id(act): new})
    ['1', '3']
    >>> net[1] is net[3] is new
    True
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = ["Change", "Rewritten", "copy_model", "module_paths", "replace_modules"]


@dataclass(frozen=True)
class Change:
    """One edit: where (module path), what it was, what it became.

    Example:
        >>> Change("net.1", "Sigmoid()", "ELU(alpha=1.0)").line()
        'net.1: Sigmoid() -> ELU(alpha=1.0)'
    """

    path: str
    before: str
    after: str

    def line(self) -> str:
        """``path: before -> after``."""
        return f"{self.path or '(model)'}: {self.before} -> {self.after}"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict."""
        return {"path": self.path, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class Rewritten:
    """A rewrite's result: the new module and the record of what changed.

    Attributes:
        module: the rewritten copy (the input model is untouched).
        rewrite: the rewrite's name and arguments, as in a config (``{"name": ..., ...}``).
        changes: every edit, in module order.
        not_rewritable: what the rewrite targets but could not change, with why (functional
            activations called in ``forward``, user-written blocks, ...).

    Example:
        >>> r = Rewritten(nn.Identity(), {"name": "alpha_dropout"}, (), ("f: F.dropout",))
        >>> r.changed, r.summary()
        (False, 'alpha_dropout: no change; not rewritable: f: F.dropout')
    """

    module: nn.Module
    rewrite: dict[str, Any] = field(hash=False)
    changes: tuple[Change, ...] = ()
    not_rewritable: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether anything was edited."""
        return bool(self.changes)

    def summary(self) -> str:
        """One line: the rewrite, how many edits, what was not rewritable."""
        text = f"{self.rewrite.get('name')}: "
        text += f"{len(self.changes)} change{'s' if len(self.changes) != 1 else ''}" \
            if self.changes else "no change"
        if self.not_rewritable:
            text += "; not rewritable: " + "; ".join(self.not_rewritable)
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"rewrite": dict(self.rewrite), "changes": [c.to_dict() for c in self.changes],
                "not_rewritable": list(self.not_rewritable)}


def copy_model(model: Any, what: str = "model") -> nn.Module:
    """A deep copy of ``model`` (checked to be an ``nn.Module``).

    >>> copy_model(3)
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: model: got 'int'; expected a torch.nn.Module
    """
    from steadygrad.errors import ConfigError

    if not isinstance(model, nn.Module):
        raise ConfigError(what, type(model).__name__, "a torch.nn.Module")
    return copy.deepcopy(model)


def module_paths(model: nn.Module) -> dict[int, list[str]]:
    """Every path under which each module (by ``id``) is reachable, in module order.

    >>> lin = nn.Linear(1, 1)
    >>> paths = module_paths(nn.Sequential(lin, nn.ReLU(), lin))
    >>> paths[id(lin)]
    ['0', '2']
    """
    out: dict[int, list[str]] = {}
    for name, sub in model.named_modules(remove_duplicate=False):
        out.setdefault(id(sub), []).append(name)
    return out


def replace_modules(model: nn.Module, mapping: Mapping[int, nn.Module]) -> list[str]:
    """Replace, in place, every child whose ``id`` is a key of ``mapping``; returns the paths.

    The root itself is never replaced (rewrites return a new root instead).
    """
    parents = list(model.named_modules(remove_duplicate=False))  # before any edit
    done: list[str] = []
    for name, parent in parents:
        for key, child in list(parent._modules.items()):
            if child is not None and id(child) in mapping:
                parent._modules[key] = mapping[id(child)]
            elif child is None or child not in mapping.values():
                continue
            path = f"{name}.{key}" if name else key
            if path not in done:
                done.append(path)
    return done
