"""Checks of the ``[model]`` keys that name where the model comes from (private).

``factory`` (a ``package.module:function`` string, :mod:`steadygrad.nn.factory`),
``factory_kwargs`` (its keyword arguments) and ``rewrites`` (a list of
:mod:`steadygrad.nn.rewrite` steps applied to the built model).

Example:
    >>> rewrites([{"name": "swap_activation", "old": ["sigmoid"], "new": "elu"}], "model.rewrites")
    (Component(name='swap_activation', options=(('new', 'elu'), ('old', ('sigmoid',)))),)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from steadygrad.errors import ConfigError
from steadygrad.experiments import _names

__all__ = ["factory", "factory_kwargs", "rewrites"]


def factory(value: Any, path: str) -> str | None:
    """``None`` or a checked ``package.module:function`` string (not imported here).

    >>> factory("pkg.nets:make", "model.factory")
    'pkg.nets:make'
    """
    if value is None:
        return None
    from steadygrad.nn.factory import check_spec

    return check_spec(value, path)


def factory_kwargs(value: Any, path: str) -> tuple[tuple[str, Any], ...]:
    """A table of keyword arguments -> sorted ``(key, value)`` pairs (lists become tuples).

    >>> factory_kwargs({"width": 16, "acts": ["tanh"]}, "model.factory_kwargs")
    (('acts', ('tanh',)), ('width', 16))
    """
    if not isinstance(value, Mapping):
        raise ConfigError(path, value, "a table of keyword arguments",
                          hint="write [model.factory_kwargs] with one key per argument")
    out = []
    for key, item in value.items():
        if not isinstance(key, str):
            raise ConfigError(path, key, "string argument names")
        out.append((key, _names._option_value(item, f"{path}.{key}")))
    return tuple(sorted(out))


def rewrites(value: Any, path: str) -> tuple[Any, ...]:
    """A list of rewrite steps, each a name or ``{name = ..., arguments}``, checked against
    :data:`steadygrad.nn.rewrite.REWRITES` and the rewrite's signature."""
    if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
        raise ConfigError(path, value, "a list of rewrites",
                          hint='e.g. rewrites = [{name = "insert_norm", kind = "batch"}]')
    return tuple(_names._component(v, f"{path}[{i}]", "steadygrad.nn.rewrite", "REWRITES",
                                   ("model", "example_input"))
                 for i, v in enumerate(value))
