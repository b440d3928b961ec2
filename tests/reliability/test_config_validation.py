"""Item 7: generated invalid configs are rejected before any run folder exists, naming the key
path, the value and the constraint; generated valid configs round-trip load -> dump -> load.

Oracle: each invalid case is built by planting one known-bad value at a known key path into a
valid base config, so the expected error path and value are known in advance.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steadygrad.cli.main import EXIT_BAD_INPUT, main
from steadygrad.errors import ConfigError
from steadygrad.experiments.config import config_from_dict, config_to_dict
from steadygrad.experiments.loader import dump_toml, loads_toml, loads_yaml
from steadygrad.experiments.space import sweep_from_dict

BASE: dict[str, Any] = {
    "name": "base",
    "data": {"name": "digits", "n_train": 100},
    "model": {"hidden": [8], "activation": "relu"},
    "train": {"epochs": 1, "batch_size": 16, "optimizer": {"name": "sgd", "learning_rate": 0.1}},
    "diagnostics": {"enabled": False},
}

NAN, INF = float("nan"), float("inf")
# key path -> invalid values (each breaks one documented constraint)
BAD: dict[str, list[Any]] = {
    "train.epochs": [0, -1, 2.5, True, "3", NAN, [1]],
    "train.batch_size": [0, -32, 1.5, False, "16", None],
    "train.seed": [-1, 0.5, "0", NAN],
    "train.on_non_finite": ["ignore", 1, None],
    "train.optimizer.learning_rate": [0.0, -0.1, NAN, INF, -INF, "0.1", True],
    "train.optimizer.clipnorm": [0.0, -1.0, NAN, INF, "1"],
    "train.optimizer.clipvalue": [0.0, -1.0, NAN],
    "train.optimizer.name": ["sgdd", 3, "", None],
    "model.hidden": [[], [0], [8, -1], [2.5], "8", -3, [True]],
    "model.activation": ["rleu", 7, "", {"name": "elu", "alphaa": 1.0}],
    "model.dropout": [-0.1, 1.0, 1.5, NAN, "0.1"],
    "model.l2": [-1e-4, NAN, INF, "0"],
    "model.l1": [-1.0, NAN],
    "model.max_norm": [0.0, -2.0, NAN, INF],
    "model.batch_norm": ["middle", True, 1],
    "model.bn_momentum": [-0.1, 1.5, NAN],
    "model.bn_eps": [0.0, -1e-5, NAN],
    "model.kernel_initializer": ["he_normall", 3],
    "data.n_train": [0, -5, 1.5, "100"],
    "data.val_size": [-0.1, NAN, "0.1"],
    "data.seed": [-1, 1.5],
    "data.name": ["mnistt", 5],
    "diagnostics.every": [0, -1, 1.5],
    "diagnostics.enabled": ["yes", 1],
}
SECTIONS = ["", "model", "train", "train.optimizer", "data", "diagnostics"]


def _set(table: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    for k in keys[:-1]:
        table = table.setdefault(k, {})
    table[keys[-1]] = value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) and type(a) is type(b)


def _check_rejected(raw: dict[str, Any], path: str, value: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    err = info.value
    assert err.path == path or err.path.startswith(path + ".") or err.path.startswith(path + "["), \
        (err.path, path)
    message = str(err)
    assert err.path in message and "expected" in message and err.expected
    return err


_CASE = st.sampled_from(sorted(BAD)).flatmap(
    lambda p: st.tuples(st.just(p), st.sampled_from(range(len(BAD[p])))))
# Sections whose keys are a closed set (data keys are the loader's arguments and optimizer
# keys its hyperparameters: both open-ended, checked elsewhere).
_CLOSED = ["", "model", "train", "diagnostics"]
_KNOWN = config_to_dict(config_from_dict(BASE))


def _is_unknown(item: tuple[str, str]) -> bool:
    section, key = item
    table = _KNOWN if not section else _KNOWN.get(section, {})
    return key not in table and key not in BASE.get(section, {}) and key not in (
        "name", "depth", "units")


# Drawn so that every case is tested (no early return): the filter runs before the test.
_UNKNOWN = st.tuples(st.sampled_from(_CLOSED),
                     st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True)).filter(_is_unknown)


def _one_invalid(kind: str, case: tuple[str, int], unknown: tuple[str, str]) -> tuple[Any, ...]:
    """Plant one bad value or unknown key, assert the error; returns the case's identity."""
    raw = copy.deepcopy(BASE)
    if kind == "value":
        path, i = case
        value = BAD[path][i]
        _set(raw, path, value)
        err = _check_rejected(raw, path, value)
        if err.path == path and not isinstance(value, dict):
            assert _same(err.received, value) or repr(value) in str(err), (err, value)
        return ("value", path, i)
    section, key = unknown
    path = f"{section}.{key}" if section else key
    target = raw
    for k in section.split(".") if section else []:
        target = target.setdefault(k, {})
    target[key] = 1
    err = _check_rejected(raw, path, key)
    assert "unknown key" in str(err) and repr(key) in str(err)
    return ("unknown", section, key)


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow,
                                           HealthCheck.filter_too_much])


def _distinct_invalid(n: int) -> set[tuple[Any, ...]]:
    """Run ``n`` drawn invalid configs; the set of distinct cases actually tested."""
    seen: set[tuple[Any, ...]] = set()

    @_settings(n)
    @given(kind=st.sampled_from(["value", "unknown", "unknown", "unknown"]), case=_CASE,
           unknown=_UNKNOWN)
    def one(kind: str, case: tuple[str, int], unknown: tuple[str, str]) -> None:
        seen.add(_one_invalid(kind, case, unknown))

    one()
    return seen


def test_invalid_configs_fast() -> None:
    seen = _distinct_invalid(100)
    assert len(seen) >= 50, len(seen)  # 59 distinct in 100 draws (derandomized)


@pytest.mark.slow
def test_invalid_configs_full() -> None:
    """>= 1,000 DISTINCT invalid configs (bad values and unknown keys), each rejected."""
    seen = _distinct_invalid(3000)
    print("DISTINCT_INVALID_CONFIGS", len(seen))
    assert len(seen) >= 1000, len(seen)


def test_every_cataloged_value_rejected() -> None:
    """Exhaustive over the catalog (deterministic: every key path, every bad value)."""
    n = 0
    for path, values in BAD.items():
        for value in values:
            raw = copy.deepcopy(BASE)
            _set(raw, path, value)
            _check_rejected(raw, path, value)
            n += 1
    assert n == sum(len(v) for v in BAD.values()) > 80


def test_empty_and_bad_sweep_axes() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "s", "axes": {"model.activation": []}}, "axes.model.activation"),
        ({"name": "s", "seeds": []}, "seeds"),
        ({"name": "s", "axes": {"model.dropout": [0.1, 1.5]}}, "model.dropout"),
        ({"name": "s", "axes": {"train.optimizer.learning_rate": [0.1, 0.0]}},
         "train.optimizer.learning_rate"),
    ]
    for raw, path in cases:
        with pytest.raises(ConfigError) as info:
            sweep_from_dict({**raw, "base": copy.deepcopy(BASE)})
        assert info.value.path.startswith(path), (info.value.path, path)


def test_empty_axes_table_is_a_base_times_seeds_sweep() -> None:
    """An empty ``[axes]`` table is not an error: the sweep is the base config x its seeds."""
    sweep = sweep_from_dict({"name": "s", "axes": {}, "seeds": [0, 1],
                             "base": copy.deepcopy(BASE)})
    assert [r.config.train.seed for r in sweep.runs] == [0, 1]


BROKEN_TEXT = [
    ("toml", "[train\nepochs = 1"), ("toml", "epochs = "), ("toml", "a = 1\na = 2"),
    ("toml", "x = [1, 2"), ("toml", "\x00"), ("yaml", "train: [1, 2"), ("yaml", "a: b: c"),
    ("yaml", "- 1\n- 2"), ("yaml", "\t- x"), ("yaml", "a: !!binary zzz"),
]


@pytest.mark.parametrize(("kind", "text"), BROKEN_TEXT)
def test_broken_files_rejected_before_any_run_folder(tmp_path: Path, kind: str,
                                                     text: str) -> None:
    path = tmp_path / f"c.{kind}"
    path.write_text(text)
    out = tmp_path / "runs"
    assert main(["train", str(path), "--out", str(out), "--quiet"]) == EXIT_BAD_INPUT
    assert not out.exists() or list(out.rglob("*")) == []


@pytest.mark.parametrize("path", sorted(BAD))
def test_cli_rejects_before_any_run_folder(tmp_path: Path, path: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    raw = copy.deepcopy(BASE)
    value = BAD[path][0]
    _set(raw, path, value)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "runs"
    assert main(["train", str(cfg), "--out", str(out), "--quiet"]) == EXIT_BAD_INPUT
    assert path in capsys.readouterr().err
    assert not out.exists() or list(out.rglob("*")) == []


_VALID = st.fixed_dictionaries({
    "name": st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True),
    "model": st.fixed_dictionaries({
        "hidden": st.lists(st.integers(1, 64), min_size=1, max_size=3),
        "activation": st.sampled_from(["relu", "selu", "elu", "tanh", "sigmoid",
                                       {"name": "leaky_relu", "alpha": 0.2}]),
        "kernel_initializer": st.sampled_from(["auto", "he_normal", "glorot_uniform",
                                               "lecun_normal"]),
        "dropout": st.floats(0.0, 0.9), "l2": st.floats(0.0, 1.0),
        "batch_norm": st.sampled_from(["none", "before", "after"]),
        "max_norm": st.none() | st.floats(0.1, 10.0),
    }),
    "train": st.fixed_dictionaries({
        "epochs": st.integers(1, 100), "batch_size": st.integers(1, 512),
        "seed": st.integers(0, 2**31),
        "optimizer": st.fixed_dictionaries({
            "name": st.sampled_from(["sgd", "adam", "rmsprop"]),
            "learning_rate": st.floats(1e-6, 1.0)}),
        "schedule": st.none() | st.just({"name": "1cycle"}),
    }),
    "diagnostics": st.fixed_dictionaries({"enabled": st.booleans(),
                                          "every": st.integers(1, 100)}),
})


def _drop_none(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


@_settings(100)
@given(raw=_VALID)
def test_valid_configs_round_trip(raw: dict[str, Any]) -> None:
    cfg = config_from_dict(_drop_none(raw))
    table = config_to_dict(cfg)
    assert config_from_dict(loads_toml(dump_toml(table))) == cfg
    assert config_from_dict(_drop_none(loads_yaml(yaml.safe_dump(table)))) == cfg
    assert config_from_dict(_drop_none(table)) == cfg


def _pairs(n: int, seed: int) -> int:
    """``n`` distinct configs with two planted bad values; the error must name one of them."""
    import random

    rng = random.Random(seed)
    cases = [(p, i) for p in sorted(BAD) for i in range(len(BAD[p]))]
    seen: set[tuple[tuple[str, int], tuple[str, int]]] = set()
    while len(seen) < n:
        a, b = rng.sample(cases, 2)
        if a[0] == b[0] or a[0].startswith(b[0] + ".") or b[0].startswith(a[0] + "."):
            continue
        if (a, b) in seen or (b, a) in seen:
            continue
        seen.add((a, b))
        raw = copy.deepcopy(BASE)
        _set(raw, a[0], BAD[a[0]][a[1]])
        _set(raw, b[0], BAD[b[0]][b[1]])
        with pytest.raises(ConfigError) as info:
            config_from_dict(raw)
        path = info.value.path
        assert any(path == p or path.startswith((p + ".", p + "[")) for p in (a[0], b[0])), \
            (path, a, b)
        assert info.value.expected and "expected" in str(info.value)
    return len(seen)


def test_two_bad_values_fast() -> None:
    assert _pairs(100, seed=0) == 100


@pytest.mark.slow
def test_two_bad_values_full() -> None:
    assert _pairs(1500, seed=1) == 1500
