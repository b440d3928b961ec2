"""Config files: TOML/YAML/JSON reading, YAML safety, --set overrides, the TOML writer."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steadygrad.errors import ConfigError
from steadygrad.experiments.loader import (
    apply_overrides,
    dump_toml,
    load_config,
    loads_toml,
    loads_yaml,
    parse_value,
    read_table,
)


def test_yaml_and_toml_files_give_the_same_config(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(
        '[model]\nhidden = [8, 8]\nactivation = "selu"\n[train.optimizer]\nname = "adam"\n')
    (tmp_path / "a.yaml").write_text(
        "model:\n  hidden: [8, 8]\n  activation: selu\ntrain:\n  optimizer:\n    name: adam\n")
    assert load_config(tmp_path / "a.toml") == load_config(tmp_path / "a.yaml")


def test_yaml_python_tags_are_refused_without_running_them(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"model: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(ConfigError, match="safe subset"):
        loads_yaml(text)
    assert not marker.exists()


def test_yaml_alias_bomb_is_refused() -> None:
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        bomb += f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [*{prev},*{prev},*{prev},*{prev}]\n"
    with pytest.raises(ConfigError, match="without aliases") as info:
        loads_yaml(bomb)
    assert info.value.received == "*a"


def test_yaml_dates_and_non_mappings_are_rejected_by_validation(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text("name: 2024-01-01\n")
    with pytest.raises(ConfigError, match=r"^name: got datetime\.date"):
        load_config(tmp_path / "d.yaml")
    with pytest.raises(ConfigError, match="a mapping at the top level"):
        loads_yaml("- 1\n- 2\n")


def test_read_table_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="an existing file"):
        read_table(tmp_path / "missing.toml")
    (tmp_path / "x.ini").write_text("a=1")
    with pytest.raises(ConfigError, match=r"a \.toml, \.yaml"):
        read_table(tmp_path / "x.ini")
    (tmp_path / "bad.toml").write_text("[model\n")
    with pytest.raises(ConfigError, match="valid TOML"):
        read_table(tmp_path / "bad.toml")
    (tmp_path / "big.toml").write_text("# " + "x" * (1 << 20))
    with pytest.raises(ConfigError, match="bytes"):
        read_table(tmp_path / "big.toml")


def test_overrides_set_any_key_with_toml_literals() -> None:
    raw = {"model": {"hidden": [8]}, "train": {"optimizer": {"name": "sgd"}}}
    out = apply_overrides(raw, [
        "model.activation=selu", "model.hidden=[16, 16]", "train.optimizer.learning_rate=1e-3",
        "model.input_batch_norm=true", 'model.kernel_initializer={name = "constant", value = 0.5}',
        "name=a b", "train.epochs = 4",
    ])
    assert out == {
        "model": {"hidden": [16, 16], "activation": "selu", "input_batch_norm": True,
                  "kernel_initializer": {"name": "constant", "value": 0.5}},
        "train": {"optimizer": {"name": "sgd", "learning_rate": 0.001}, "epochs": 4},
        "name": "a b",
    }
    assert raw == {"model": {"hidden": [8]}, "train": {"optimizer": {"name": "sgd"}}}


@pytest.mark.parametrize(("item", "message"), [
    ("model.activation", "--set: got 'model.activation'; expected KEY=VALUE with a dotted key; "
                         "e.g. --set model.activation=selu"),
    ("=3", "--set: got ''; expected a dotted key of letters, digits, _ and -; "
           "e.g. train.optimizer.learning_rate=0.01"),
    ("model..x=3", "--set: got 'model..x'; expected a dotted key of letters, digits, _ and -; "
                   "e.g. train.optimizer.learning_rate=0.01"),
    ("model.hidden.x=1", "--set model.hidden.x: got [8]; expected model.hidden to be a table to "
                         "set a key inside it"),
])
def test_bad_overrides(item: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides({"model": {"hidden": [8]}}, [item])
    assert str(info.value) == message


def test_override_values_cannot_inject_other_keys() -> None:
    assert parse_value('1\nother = 2') == '1\nother = 2'
    assert parse_value("a=b") == "a=b"
    assert parse_value("1979-05-27") == "1979-05-27"


_keys = st.text(st.characters(codec="utf-8", exclude_characters="\ud800"), min_size=1,
                max_size=8)
_scalars = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False), st.text(st.characters(codec="utf-8"), max_size=20),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=4))
_tables = st.recursive(st.dictionaries(_keys, _values, max_size=4),
                       lambda inner: st.dictionaries(_keys, st.one_of(_values, inner),
                                                     max_size=3), max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(_tables)
def test_dump_toml_round_trips_any_table(table: dict) -> None:
    assert loads_toml(dump_toml(table)) == table


def test_dump_toml_escapes_and_special_floats() -> None:
    table = {"s": 'quote " back \\ nl \n tab \t del \x7f nul \x00 é 😀', "f": 1e-300,
             "inf": math.inf, "key with space": 1}
    back = loads_toml(dump_toml(table))
    assert back == table


def test_dump_toml_quotes_a_key_ending_in_a_newline() -> None:
    # found by the property test above: "$" in the bare-key pattern accepted "0\n" unquoted
    from steadygrad.experiments.loader import dump_toml, loads_toml

    for table in ({"0\n": {}}, {"0\n": False}):
        assert loads_toml(dump_toml(table)) == table
