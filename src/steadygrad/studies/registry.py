"""Built-in studies: a sweep file shipped in the package plus the code that reads its results.

A study file (``<name>.toml`` next to this module) holds ``title``, ``question``, ``metric``,
optional ``target``/``expected``, a ``[sweep]`` table (``seeds``, ``base``, ``axes``: the
format of :func:`steadygrad.experiments.space.sweep_from_dict`), optional ``[variants]`` (named
config patches that vary several keys together, crossed with the axes) and a ``[full]`` table
(``seeds``, ``set``: dotted keys set on the base, ``axes``: replacing axes, ``variants``:
patches merged into the variants) for the classic full-size setup.

Example:
    >>> sorted(STUDIES.names())[:3]
    ['activations', 'batch_norm', 'clipping']
    >>> spec = load_spec("activations")
    >>> spec["expected"][:2], spec["sweep"]["seeds"]
    (['selu', 'elu'], [0, 1, 2])
    >>> load_spec("activations", full=True)["sweep"]["base"]["model"]["depth"]
    100
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import tomllib

from steadygrad._registry import Registry
from steadygrad.experiments.loader import set_key

__all__ = ["STUDIES", "Study", "load_spec"]


@dataclass(frozen=True)
class Study:
    """A registered study: its sweep file and its analysis.

    Attributes:
        name: the registry name (``unstable_gradients``; ``unstable-gradients`` also works).
        filename: the study file inside :mod:`steadygrad.studies`.
        analyze: ``analyze(report, spec) -> list[str]``: the conclusions, computed from the
            sweep report's numbers.
        package: the package holding ``filename`` (another module can register a study
            whose file it ships, e.g. ``transfer``).
        run: a custom runner for a study that is not a config sweep (e.g. ``transfer``:
            model A is trained first, then B from A): ``run(spec, out_dir, seeds,
            overrides) -> StudyResult``; its file then holds ``title``, ``question``,
            ``[params]`` and ``[full.params]`` instead of a ``[sweep]``, and ``analyze`` is
            not called by :func:`~steadygrad.studies.runner.run_study`.

    Example:
        >>> Study("demo", "demo.toml", lambda report, spec: []).package
        'steadygrad.studies'
        >>> Study("demo", "demo.toml", lambda report, spec: []).run is None
        True
    """

    name: str
    filename: str
    analyze: Callable[[Any, dict[str, Any]], list[str]]
    package: str = "steadygrad.studies"
    run: Callable[..., Any] | None = None


STUDIES: Registry[Study] = Registry("study")
"""Built-in studies by name (``transfer`` and ``pretraining`` run custom code)."""


def load_spec(name: str, *, full: bool = False) -> dict[str, Any]:
    """The study file of ``name`` as a table; ``full=True`` applies its ``[full]`` table.

    Raises:
        UnknownNameError: ``name`` is not a registered study (lists the choices).

    Example:
        >>> quick = load_spec("activations")
        >>> quick["name"], quick["mode"], quick["sweep"]["base"]["data"]["name"]
        ('activations', 'quick', 'digits')
        >>> quick["sweep"]["axes"]["model.activation"]
        ['selu', 'elu', 'leaky_relu', 'relu', 'tanh', 'sigmoid']
        >>> full = load_spec("Activations", full=True)  # the [full] table applied
        >>> full["mode"], full["sweep"]["base"]["data"]["name"]
        ('full', 'fashion_mnist')
        >>> load_spec("actvations")
        Traceback (most recent call last):
        ...
        steadygrad.errors.UnknownNameError: study: got 'actvations'; expected one of ...; \
did you mean 'activations'?
    """
    study = STUDIES.get(name)
    text = resources.files(study.package).joinpath(study.filename).read_text("utf-8")
    spec = tomllib.loads(text)
    spec.setdefault("variants", {})
    full_table = spec.pop("full", {})
    if full and "params" in full_table:  # a custom-run study: patch its parameters
        spec.setdefault("params", {}).update(copy.deepcopy(full_table["params"]))
    if full and "sweep" in spec:
        sweep = spec["sweep"]
        if "seeds" in full_table:
            sweep["seeds"] = list(full_table["seeds"])
        for key, value in full_table.get("set", {}).items():
            set_key(sweep["base"], key, copy.deepcopy(value))
        if "axes" in full_table:
            sweep["axes"] = copy.deepcopy(full_table["axes"])
        for vname, patch in full_table.get("variants", {}).items():
            spec["variants"].setdefault(vname, {}).update(copy.deepcopy(patch))
    spec["name"] = study.name
    spec["mode"] = "full" if full else "quick"
    return spec


def _register_builtins() -> None:
    """Import the analyses and custom-run studies, which register the built-in studies."""
    from steadygrad.studies import analysis, pretraining_study, transfer_study  # noqa: F401


_register_builtins()
