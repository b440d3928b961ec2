"""User model factories: ``"package.module:function"`` strings and Python callables.

A *factory* is a function that returns a fresh ``nn.Module`` each call, with keyword arguments
(``make_cnn(channels=16, activation="tanh")``). Configs name it as ``[model] factory =
"package.module:function"``; importing it is explicit (the module is imported only when the
model is built) and every failure names the module, the function and what was wrong.

A callable handed to the Python API (``sg.doctor(make_cnn, data)``) is named by
:func:`factory_spec`: its ``module:qualname`` when importing that gives back the same object,
otherwise (a lambda, a closure) a name in this process's :data:`local` namespace, valid only
while the process lives.

Example:
    >>> factory_spec(example_factory)
    'steadygrad.nn.factory:example_factory'
    >>> call_factory("steadygrad.nn.factory:example_factory", {"hidden": 8}, seed=0)
    Sequential(
      (0): Linear(in_features=64, out_features=8, bias=True)
      (1): ReLU()
      (2): Linear(in_features=8, out_features=10, bias=True)
    )
"""

from __future__ import annotations

import importlib
import inspect
import re
import types
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from steadygrad.errors import ConfigError

__all__ = ["call_factory", "check_spec", "example_factory", "factory_spec", "local",
           "resolve_factory"]

local = types.SimpleNamespace()
"""Callables registered by :func:`factory_spec` that cannot be imported by name."""

_SPEC = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def example_factory(hidden: int = 32) -> nn.Module:
    """A tiny digits classifier (64 inputs, 10 classes): the factory used in examples.

    >>> example_factory(4)[0].out_features
    4
    """
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def check_spec(value: Any, path: str = "model.factory") -> str:
    """Check the form ``package.module:function`` (nothing is imported).

    >>> check_spec("mypkg.nets:make_cnn")
    'mypkg.nets:make_cnn'
    >>> check_spec("mypkg.nets.make_cnn")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: model.factory: got 'mypkg.nets.make_cnn'; expected ...
    """
    if not isinstance(value, str) or not _SPEC.match(value.strip()):
        raise ConfigError(path, value, "'package.module:function' (a module path, a colon, "
                          "the function's name)", hint="e.g. factory = 'mypkg.nets:make_cnn'")
    return value.strip()


def resolve_factory(spec: str, path: str = "model.factory") -> Callable[..., Any]:
    """Import the module of ``spec`` and return its function.

    Raises:
        ConfigError: bad form, the module cannot be imported (the import error is quoted), it
            has no such attribute, or the attribute is not callable.

    Example:
        >>> resolve_factory("steadygrad.nn.factory:example_factory") is example_factory
        True
        >>> resolve_factory("steadygrad.nn.factory:make_cnn")
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: model.factory: got 'steadygrad.nn.factory:make_cnn';
        expected a function of module 'steadygrad.nn.factory'; it has no attribute 'make_cnn'...
        >>> resolve_factory("no_such_pkg.nets:make")
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: model.factory: got 'no_such_pkg.nets:make'; expected an
        importable module; importing 'no_such_pkg.nets' failed: ModuleNotFoundError: ...
    """
    spec = check_spec(spec, path)
    module_name, qualname = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:
        raise ConfigError(path, spec, "an importable module",
                          hint=f"importing {module_name!r} failed: {type(err).__name__}: {err} "
                          "(is its folder on PYTHONPATH, or the package installed?)") from err
    obj: Any = module
    for part in qualname.split("."):
        if not hasattr(obj, part):
            raise ConfigError(path, spec, f"a function of module {module_name!r}",
                              hint=f"it has no attribute {part!r}; check the name after ':'")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(path, spec, "a callable that returns an nn.Module",
                          hint=f"{qualname} is a {type(obj).__name__}")
    return obj


def factory_spec(fn: Callable[..., Any]) -> str:
    """The spec string that names ``fn``: ``module:qualname``, or a name in :data:`local`.

    >>> spec = factory_spec(lambda: nn.Linear(64, 10))
    >>> spec.startswith("steadygrad.nn.factory:local."), resolve_factory(spec)().out_features
    (True, 10)
    """
    if not callable(fn):
        raise ConfigError("model_fn", type(fn).__name__, "a callable that returns an nn.Module")
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    spec = f"{module}:{qualname}"
    if module and _SPEC.match(spec):
        try:
            if resolve_factory(spec) is fn:
                return spec
        except ConfigError:
            pass
    for name, value in vars(local).items():
        if value is fn:
            return f"{__name__}:local.{name}"
    base = re.sub(r"\W", "_", getattr(fn, "__name__", "factory")).strip("_") or "factory"
    name = f"{base}_{len(vars(local)) + 1}"
    setattr(local, name, fn)
    return f"{__name__}:local.{name}"


def call_factory(spec: str, kwargs: Mapping[str, Any] | None = None, *, seed: int | None = None,
                 path: str = "model") -> nn.Module:
    """Build a model: resolve ``spec``, check ``kwargs`` against its signature, call it.

    With ``seed``, torch's global RNG is seeded inside a forked RNG state while the factory
    runs (so its default init is reproducible and the caller's RNG stream is untouched).

    Raises:
        ConfigError: see :func:`resolve_factory`; an argument the function does not take; the
            function raised; it did not return an ``nn.Module``.

    Example:
        >>> call_factory("steadygrad.nn.factory:example_factory", {"hiden": 8})
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: model.factory_kwargs.hiden: got 'hiden'; expected an
        argument of example_factory (one of hidden)...
    """
    fn = resolve_factory(spec, f"{path}.factory")
    kwargs = dict(kwargs or {})
    name = getattr(fn, "__name__", spec)
    params: Mapping[str, inspect.Parameter] | None
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = None
    if params is not None and not any(p.kind is inspect.Parameter.VAR_KEYWORD
                                      for p in params.values()):
        allowed = [n for n, p in params.items() if p.kind in (
            inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        for key in kwargs:
            if key not in allowed:
                raise ConfigError(f"{path}.factory_kwargs.{key}", key,
                                  f"an argument of {name} (one of {', '.join(allowed) or '-'})",
                                  hint=f"{spec} does not take {key!r}")
    try:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(int(seed))
            model = fn(**kwargs)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(f"{path}.factory", spec, "a factory that builds the model",
                          hint=f"calling {name}(**{kwargs!r}) raised {type(err).__name__}: "
                          f"{err}") from err
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{path}.factory", spec, "a function returning a torch.nn.Module",
                          hint=f"{name} returned a {type(model).__name__}")
    return model
