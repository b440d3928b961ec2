"""Sweeps: expand a base config over a grid, random draws and seeds into named runs.

A sweep file (TOML)::

    name = "activations"
    base = "mlp.toml"            # or a [base] table holding a whole run config
    seeds = [0, 1, 2]            # sets train.seed; default: the base's train.seed

    [axes]                       # grid: every combination of the listed values
    "model.activation" = ["relu", "elu", "selu"]
    "train.optimizer.learning_rate" = [1e-3, 1e-2]

    [random]                     # optional: `budget` draws, crossed with the grid
    budget = 4
    seed = 0
    [random.params]
    "model.dropout" = {dist = "uniform", low = 0.0, high = 0.5}
    "train.optimizer.learning_rate" = {dist = "loguniform", low = 1e-4, high = 1e-1}
    "model.batch_norm" = {dist = "choice", values = ["none", "before"]}

Expansion is deterministic (file order of the axes, ``random.Random(seed)`` for the draws,
then seeds innermost). Every run gets a stable id, :func:`run_id` (a hash of its resolved
config without the name, so the seed is part of it), and a readable name such as
``activation=selu-learning_rate=0.01-seed=1``. Every expanded config is validated before any
run starts.

Example:
    >>> sweep = sweep_from_dict({"name": "demo", "base": {"train": {"epochs": 1}},
    ...     "axes": {"model.activation": ["relu", "selu"]}, "seeds": [0, 1]})
    >>> [r.name for r in sweep.runs]
    ['activation=relu-seed=0', 'activation=relu-seed=1', 'activation=selu-seed=0',
     'activation=selu-seed=1']
    >>> sweep.runs[2].config.model.activation.name, sweep.runs[2].config.train.seed
    ('selu', 0)
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steadygrad.errors import ConfigError
from steadygrad.experiments import _checks as ck
from steadygrad.experiments.config import RunConfig, config_from_dict, config_to_dict
from steadygrad.experiments.loader import apply_overrides, read_table, set_key
from steadygrad.experiments.store import sanitize_name, validate_run_name

__all__ = [
    "MAX_RUNS",
    "PlannedRun",
    "Sweep",
    "load_sweep",
    "run_id",
    "sweep_from_dict",
]

MAX_RUNS = 100_000
_KEYS = ("name", "base", "seeds", "axes", "random")
_RANDOM_KEYS = ("budget", "seed", "params")


def run_id(config: RunConfig) -> str:
    """A stable 16-hex-digit id of a resolved config (its name excluded, its seeds included).

    >>> a, b = RunConfig(name="x"), RunConfig(name="y")
    >>> run_id(a) == run_id(b), len(run_id(a))
    (True, 16)
    """
    table = config_to_dict(config)
    table.pop("name")
    text = json.dumps(table, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its position, stable id, readable name, settings and config.

    Example:
        >>> sweep = sweep_from_dict({"name": "s", "axes": {"model.dropout": [0.1]}})
        >>> sweep.runs[0].settings
        (('model.dropout', 0.1), ('train.seed', 0))
    """

    index: int
    run_id: str
    name: str
    settings: tuple[tuple[str, Any], ...]
    config: RunConfig


@dataclass(frozen=True)
class Sweep:
    """An expanded sweep: its name, the resolved spec (``base`` inlined) and the runs.

    Example:
        >>> sweep = sweep_from_dict({"name": "one"})
        >>> sweep.name, len(sweep.runs), sweep.spec["seeds"]
        ('one', 1, [0])
    """

    name: str
    spec: Mapping[str, Any]
    runs: tuple[PlannedRun, ...]


def _flatten(table: Any, path: str, leaf: Any) -> list[tuple[str, Any]]:
    """Dotted keys -> leaves: ``{"model": {"activation": [...]}}`` and quoted dotted keys."""
    if not isinstance(table, Mapping):
        raise ConfigError(path, table, "a table of dotted config keys")
    out: list[tuple[str, Any]] = []
    for key, value in table.items():
        sub = f"{path}.{key}" if path else str(key)
        if leaf(value):
            out.append((sub, value))
        elif isinstance(value, Mapping):
            out.extend(_flatten(value, sub, leaf))
        else:
            raise ConfigError(sub, value, "a non-empty list of values")
    return out


def _axes(raw: Any) -> list[tuple[str, list[Any]]]:
    def is_leaf(v: Any) -> bool:
        return isinstance(v, list)

    axes = []
    for key, values in _flatten(raw, "", is_leaf):
        if not values:
            raise ConfigError(f"axes.{key}", values, "a non-empty list of values")
        axes.append((key, values))
    return axes


def _draw(rng: random.Random, spec: Mapping[str, Any], path: str) -> Any:
    dist = spec.get("dist")
    keys = {"choice": ("dist", "values"), "uniform": ("dist", "low", "high"),
            "loguniform": ("dist", "low", "high")}
    if dist not in keys:
        raise ConfigError(f"{path}.dist", dist, "one of 'choice', 'uniform', 'loguniform'",
                          ck.close_match_hint(str(dist), keys))
    for key in spec:
        if key not in keys[dist]:
            raise ck.unknown_key(path, key, keys[dist])
    if dist == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}.values", values, "a non-empty list")
        return copy.deepcopy(rng.choice(values))
    low = ck.number(spec.get("low"), f"{path}.low")
    high = ck.number(spec.get("high"), f"{path}.high")
    if not low < high:
        raise ConfigError(f"{path}.high", high, f"a number > low ({low})")
    if dist == "uniform":
        return rng.uniform(low, high)
    if low <= 0:
        raise ConfigError(f"{path}.low", low, "a number > 0 for a loguniform distribution")
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _random_points(raw: Any, repeats: int = 1) -> list[list[tuple[str, Any]]]:
    if not isinstance(raw, Mapping):
        raise ConfigError("random", raw, "a table with budget, seed and params")
    for key in raw:
        if key not in _RANDOM_KEYS:
            raise ck.unknown_key("random", key, _RANDOM_KEYS)
    budget = ck.positive_int(raw.get("budget"), "random.budget")
    if budget > MAX_RUNS:  # capped before a single draw is made
        raise ConfigError("random.budget", budget, f"at most {MAX_RUNS} draws",
                          hint="lower the budget")
    seed = ck.integer(0)(raw.get("seed", 0), "random.seed")
    params = _flatten(raw.get("params", {}), "random.params",
                      lambda v: isinstance(v, Mapping) and "dist" in v)
    if not params:
        raise ConfigError("random.params", {}, "at least one distribution",
                          hint='e.g. "model.dropout" = {dist = "uniform", low = 0, high = 0.5}')
    if budget * repeats > MAX_RUNS:  # grid x seeds x budget, counted before drawing
        raise ConfigError("random.budget", budget, f"a sweep of at most {MAX_RUNS} runs "
                          f"(grid x seeds x budget = {budget * repeats})",
                          hint="lower the budget or shrink the grid")
    rng = random.Random(seed)
    return [[(key[len("random.params."):], _draw(rng, spec, key)) for key, spec in params]
            for _ in range(budget)]


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "x".join(_label(v) for v in value)
    if isinstance(value, Mapping):
        return "-".join(_label(v) for v in value.values())
    return str(value)


def _short_names(keys: Sequence[str]) -> dict[str, str]:
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}


def sweep_from_dict(raw: Mapping[str, Any], *, base_dir: str | Path | None = None,
                    name: str | None = None, overrides: Sequence[str] = ()) -> Sweep:
    """Validate a sweep table and expand it into runs (every config validated up front).

    Args:
        raw: the parsed sweep file.
        base_dir: where a ``base = "file.toml"`` path is resolved (the sweep file's folder).
        name: overrides the sweep's ``name``.
        overrides: ``--set`` items applied to the base config (``"train.epochs=1"``), i.e. to
            every run; axes still override them.

    Raises:
        ConfigError: bad sweep keys, empty axes, bad distributions, an invalid expanded config
            (the hint names the sweep point), two points with the same config, too many runs.

    Example:
        >>> sweep_from_dict({"name": "x", "axes": {"model.dropout": [0.1, 1.5]}})
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: model.dropout: got 1.5; expected a number in [0, 1);
        in sweep point dropout=1.5
    """
    if not isinstance(raw, Mapping):
        raise ConfigError("sweep", raw, "a table")
    for key in raw:
        if key not in _KEYS:
            raise ck.unknown_key("", key, _KEYS)
    sweep_name = validate_run_name(name if name is not None else raw.get("name", "sweep"))
    base_raw = raw.get("base", {})
    if isinstance(base_raw, str):
        path = Path(base_raw)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        base_raw = read_table(path)
    if not isinstance(base_raw, Mapping):
        raise ConfigError("base", base_raw, "a [base] table or a path to a config file")
    base = apply_overrides(base_raw, overrides)
    base_config = config_from_dict(base)
    seeds = raw.get("seeds", [base_config.train.seed])
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError("seeds", seeds, "a non-empty list of integers >= 0")
    seeds = [ck.integer(0)(s, f"seeds[{i}]") for i, s in enumerate(seeds)]
    if len(set(seeds)) != len(seeds):
        raise ConfigError("seeds", seeds, "distinct seeds")
    axes = _axes(raw.get("axes", {}))
    size = len(seeds)  # the grid's size, counted before anything is expanded
    for _, values in axes:
        size *= len(values)
        if size > MAX_RUNS:
            break
    if size > MAX_RUNS:
        total = len(seeds) * math.prod(len(values) for _, values in axes)
        raise ConfigError("axes", f"{total} runs", f"at most {MAX_RUNS} runs",
                          hint="shrink the grid")
    grid: list[list[tuple[str, Any]]] = [[]]
    for key, values in axes:
        grid = [[*point, (key, v)] for point in grid for v in values]
    samples = _random_points(raw["random"], size) if "random" in raw else [[]]
    keys = [k for k, _ in axes] + [k for k, _ in (samples[0] if samples else [])]
    short = _short_names(keys)
    runs: list[PlannedRun] = []
    seen: dict[str, str] = {}
    names: set[str] = set()
    for point in grid:
        for sample in samples:
            for seed in seeds:
                settings = [*point, *sample, ("train.seed", seed)]
                label = "-".join(f"{short.get(k, 'seed')}={_label(v)}" for k, v in settings)
                table = _set_all(base, [(k, copy.deepcopy(v)) for k, v in settings])
                try:
                    config = config_from_dict(table)
                except ConfigError as err:
                    where = "in sweep point " + label.rsplit("-seed=", 1)[0]
                    hint = f"{err.hint}; {where}" if err.hint else where
                    raise err.__class__(err.path, err.received, err.expected, hint) from None
                rid = run_id(config)
                if rid in seen:
                    raise ConfigError("axes", label, "sweep points with distinct configs",
                                      hint=f"{label} repeats {seen[rid]}")
                seen[rid] = label
                run_name = sanitize_name(label)
                if run_name in names:
                    run_name = sanitize_name(f"{label}-{rid[:8]}")
                names.add(run_name)
                config = config_from_dict({**config_to_dict(config), "name": run_name})
                runs.append(PlannedRun(len(runs), rid, run_name, tuple(settings), config))
    spec = {"name": sweep_name, "seeds": seeds, "base": config_to_dict(base_config),
            "axes": {k: v for k, v in axes}}
    if "random" in raw:
        spec["random"] = copy.deepcopy(dict(raw["random"]))
    return Sweep(sweep_name, spec, tuple(runs))


def _set_all(base: Mapping[str, Any], settings: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in settings:
        set_key(out, key, value)
    return out


def load_sweep(path: str | Path, *, name: str | None = None,
               overrides: Sequence[str] = ()) -> Sweep:
    """Read a sweep file (TOML or YAML) and expand it; ``base = "x.toml"`` is relative to it.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "base.toml").write_text("[train]\\nepochs = 1\\n")
    >>> _ = (d / "sweep.toml").write_text('name = "s"\\nbase = "base.toml"\\nseeds = [0, 1]\\n')
    >>> [r.name for r in load_sweep(d / "sweep.toml").runs]
    ['seed=0', 'seed=1']
    >>> load_sweep(d / "sweep.toml", overrides=["train.epochs=3"]).runs[0].config.train.epochs
    3
    """
    path = Path(path)
    return sweep_from_dict(read_table(path), base_dir=path.parent, name=name,
                           overrides=overrides)
