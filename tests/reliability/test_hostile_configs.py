"""Issue 19, item 1: hostile config and sweep files end in a typed error (exit 2), never a
traceback, and never exhaust memory.

Oracle: each case is a file or table that crashed steadygrad before the fix (UnicodeDecodeError,
RecursionError, MemoryError, an allocation or overflow error in the build), or was silently
accepted (duplicate keys, a monitor typo). The tests assert the typed error, the field it names
and the allowed range; memory-bound cases also assert the peak traced allocation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from steadygrad.cli.main import EXIT_BAD_INPUT, main
from steadygrad.errors import ConfigError
from steadygrad.experiments.config import config_from_dict
from steadygrad.experiments.execute import build_model, load_data
from steadygrad.experiments.loader import MAX_CONFIG_DEPTH, parse_value, read_table
from steadygrad.experiments.space import MAX_RUNS, sweep_from_dict
from tests.reliability._memory import MiB, traced_peak

BASE: dict[str, Any] = {"data": {"name": "digits", "n_train": 64}, "model": {"hidden": [8]},
                        "train": {"epochs": 1}, "diagnostics": {"enabled": False}}


@pytest.mark.parametrize("payload", [
    'name = "caf\xe9"\n'.encode("latin-1"),
    'name = "x"\n'.encode("utf-16"),
    bytes(range(256)),
])
@pytest.mark.parametrize("suffix", [".toml", ".yaml", ".json"])
def test_non_utf8_file_is_a_typed_error(tmp_path: Path, payload: bytes, suffix: str) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(payload)
    with pytest.raises(ConfigError, match="UTF-8") as info:
        read_table(path)
    assert str(path) in str(info.value)
    assert main(["train", str(path), "--out", str(tmp_path / "runs"), "--quiet"]) \
        == EXIT_BAD_INPUT
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("suffix,text", [
    (".json", "[" * 100_000 + "]" * 100_000),
    (".json", '{"a":' * 50_000 + "1" + "}" * 50_000),
    (".toml", "a = " + "[" * 5000 + "]" * 5000),
    (".toml", "a = " + "{b = " * 3000 + "1" + "}" * 3000),
    (".toml", "[" + ".".join(["a"] * 2000) + "]\nx = 1\n"),
    (".yaml", "a: " + "[" * 5000 + "]" * 5000),
    (".yaml", "".join(" " * i + f"k{i}:\n" for i in range(1000)) + " " * 1000 + "v: 1\n"),
])
def test_deep_nesting_is_a_typed_error(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="nesting") as info:
        read_table(path)
    assert str(MAX_CONFIG_DEPTH) in str(info.value)


def test_deep_override_value_is_a_typed_error() -> None:
    with pytest.raises(ConfigError, match="nesting"):
        parse_value("[" * 5000 + "]" * 5000)


def test_moderate_nesting_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text('{"a": ' * 10 + "1" + "}" * 10)
    assert read_table(path)["a"]["a"]["a"]


@pytest.mark.parametrize("suffix,text,key", [
    (".json", '{"name": "a", "name": "b"}', "name"),
    (".json", '{"train": {"epochs": 1, "epochs": 2}}', "epochs"),
    (".yaml", "name: a\nname: b\n", "name"),
    (".yaml", "train:\n  epochs: 1\n  epochs: 2\n", "epochs"),
])
def test_duplicate_keys_rejected_like_toml(tmp_path: Path, suffix: str, text: str,
                                           key: str) -> None:
    path = tmp_path / f"dup{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError, match="duplicate") as info:
        read_table(path)
    assert key in str(info.value)
    toml = tmp_path / "dup.toml"
    toml.write_text('name = "a"\nname = "b"\n')
    with pytest.raises(ConfigError):  # the reference behaviour the others now match
        read_table(toml)


def test_grid_size_is_computed_before_expansion() -> None:
    raw = {"axes": {f"model.x{i}": list(range(20)) for i in range(7)}}  # 20^7 = 1.28e9 runs
    err, peak = traced_peak(lambda: sweep_from_dict(raw))
    assert isinstance(err, ConfigError), err
    assert str(MAX_RUNS) in str(err) and "1280000000" in str(err)
    assert peak < 64 * MiB


def test_random_budget_is_capped_before_drawing() -> None:
    raw = {"random": {"budget": 10**9, "params": {
        "model.dropout": {"dist": "uniform", "low": 0.0, "high": 0.5}}}}
    err, peak = traced_peak(lambda: sweep_from_dict(raw))
    assert isinstance(err, ConfigError), err
    assert err.path == "random.budget" and str(MAX_RUNS) in str(err)
    assert peak < 64 * MiB


def test_grid_times_budget_times_seeds_counted_before_drawing() -> None:
    raw = {"axes": {"model.dropout": [0.0, 0.1, 0.2, 0.3]}, "seeds": list(range(100)),
           "random": {"budget": 1000, "params": {
               "model.l2": {"dist": "loguniform", "low": 1e-6, "high": 1e-2}}}}
    err, peak = traced_peak(lambda: sweep_from_dict(raw))
    assert isinstance(err, ConfigError) and "400000" in str(err), err
    assert peak < 64 * MiB


@pytest.mark.parametrize("patch,path,allowed", [
    ({"model": {"hidden": [10**12]}}, "model.hidden[0]", "65536"),
    ({"model": {"hidden": [60000, 60000, 60000]}}, "model.hidden", "parameters"),
    ({"model": {"hidden": [8], "kernel_initializer": {"name": "constant", "value": 1e300}}},
     "model.kernel_initializer.value", "3.4e+38"),
    ({"model": {"hidden": [8], "bias_initializer": {"name": "constant", "value": -10**40}}},
     "model.bias_initializer.value", "3.4e+38"),
    ({"train": {"epochs": 1, "seed": 10**20}}, "train.seed", str(2**63 - 1)),
    ({"model": {"hidden": [8], "seed": 2**64}}, "model.seed", str(2**63 - 1)),
    ({"data": {"name": "digits", "n_train": 64, "seed": 10**30}}, "data.seed",
     str(2**63 - 1)),
    ({"train": {"epochs": 1, "optimizer": {"learning_rate": 1e308}}},
     "train.optimizer.learning_rate", "3.4e+38"),
    ({"train": {"epochs": 1, "optimizer": {"name": "sgd", "momentum": 1e300}}},
     "train.optimizer.momentum", ""),
])
def test_huge_values_are_validation_errors(patch: dict[str, Any], path: str,
                                           allowed: str) -> None:
    raw = {**BASE, **patch}
    with pytest.raises(ConfigError) as info:
        config = config_from_dict(raw)
        build_model(config, load_data(config))  # before the fix: raw errors here
    assert info.value.path == path, info.value
    assert allowed in str(info.value)


def test_largest_allowed_seed_builds_and_trains_a_step() -> None:
    config = config_from_dict({**BASE, "train": {"epochs": 1, "seed": 2**63 - 1}})
    build_model(config, load_data(config))


def test_early_stopping_monitor_typo_is_an_error_with_close_match() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"train": {"early_stopping": {"monitor": "val_los"}}})
    assert info.value.path == "train.early_stopping.monitor"
    assert "did you mean 'val_loss'" in str(info.value)
    for ok in ("val_loss", "loss", "accuracy", "val_accuracy", "val_mae"):
        cfg = config_from_dict({"train": {"early_stopping": {"monitor": ok}}})
        assert cfg.train.early_stopping is not None
        assert cfg.train.early_stopping.monitor == ok


def test_cli_exit_2_for_huge_value(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_text('[data]\nname = "digits"\n[model]\nhidden = [1000000000000]\n')
    assert main(["train", str(path), "--out", str(tmp_path / "runs"), "--quiet"]) \
        == EXIT_BAD_INPUT
    assert not (tmp_path / "runs").exists()
