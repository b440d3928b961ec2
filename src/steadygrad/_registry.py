"""Name registries: one per kind of component (initializers, activations, optimizers, ...).

Configs and the CLI refer to components only by registered names, as Keras's ``get()`` does.
Lookup ignores case and treats ``-`` like ``_``; an unknown name fails with the list of
valid names and a close match.

Example:
    >>> reg = Registry("activation")
    >>> @reg.register("relu", "rectifier")
    ... def make_relu():
    ...     return "ReLU!"
    >>> reg.get("ReLU")()
    'ReLU!'
    >>> reg.get("rectifier") is make_relu
    True
    >>> reg.names()
    ['relu']
    >>> reg.get("rleu")
    Traceback (most recent call last):
    ...
    steadygrad.errors.UnknownNameError: activation: got 'rleu'; expected one of relu; ...
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from steadygrad.errors import ConfigError, UnknownNameError

__all__ = ["Registry", "normalize_name"]

T = TypeVar("T")


def normalize_name(name: str) -> str:
    """Canonical form of a registry key: lower case, ``-`` and spaces become ``_``.

    >>> normalize_name("He-Normal")
    'he_normal'
    """
    return name.strip().lower().replace("-", "_").replace(" ", "_")


class Registry(Generic[T]):
    """A mapping from names (and aliases) to components of one kind.

    Args:
        kind: what the registry holds, used in error messages (``"activation"``).

    Example:
        >>> reg: Registry[int] = Registry("optimizer")
        >>> reg.add("sgd", 1, "plain-sgd")
        >>> reg.add("adam", 2)
        >>> reg.names(), reg.all_names(), len(reg)
        (['adam', 'sgd'], ['adam', 'plain_sgd', 'sgd'], 2)
        >>> reg.get("Plain SGD"), reg.canonical("PLAIN-SGD"), "ADAM" in reg, reg.get(7)
        (1, 'sgd', True, 7)
        >>> try:
        ...     reg.get("adm")
        ... except KeyError as err:
        ...     print(err)
        optimizer: got 'adm'; expected one of adam, sgd; did you mean 'adam'?
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name`` and ``aliases``; returns ``obj``."""

        def decorator(obj: T) -> T:
            self.add(name, obj, *aliases)
            return obj

        return decorator

    def add(self, name: str, obj: T, *aliases: str) -> None:
        """Register ``obj`` under ``name`` (its canonical name) and ``aliases``."""
        key = normalize_name(name)
        keys = [key, *map(normalize_name, aliases)]
        taken = [k for k in keys if k in self._aliases]
        if taken or len(set(keys)) != len(keys):
            raise ValueError(f"{self.kind} name(s) {taken or keys} already registered or repeated")
        for k in keys:
            self._aliases[k] = key
        self._items[key] = obj

    def names(self) -> list[str]:
        """Canonical names, sorted."""
        return sorted(self._items)

    def all_names(self) -> list[str]:
        """Canonical names and aliases, sorted."""
        return sorted(self._aliases)

    def canonical(self, name: str) -> str:
        """The canonical name for ``name`` or an alias of it; raises :class:`UnknownNameError`."""
        if not isinstance(name, str):
            raise ConfigError(self.kind, name, f"a name (str), one of {', '.join(self.names())}")
        key = normalize_name(name)
        if key not in self._aliases:
            close = difflib.get_close_matches(key, self.all_names(), n=1, cutoff=0.6)
            hint = f"did you mean {self._aliases[close[0]]!r}?" if close else None
            raise UnknownNameError(
                self.kind, name, f"one of {', '.join(self.names())}", hint=hint
            )
        return self._aliases[key]

    def get(self, identifier: str | T) -> T:
        """The component registered as ``identifier``; a non-string is returned unchanged.

        Like ``keras.activations.get``: a callable or an instance passes through, so APIs can
        take either a name or the object itself.
        """
        if isinstance(identifier, str):
            return self._items[self.canonical(identifier)]
        return identifier

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize_name(name) in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"
