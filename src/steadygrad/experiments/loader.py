"""Config files: read TOML/YAML/JSON, apply ``--set`` overrides, write TOML and JSON.

The library never reads files itself; the CLI and the sweep runner call these functions and
hand the validated :class:`~steadygrad.experiments.config.RunConfig` on.

* TOML is read with :mod:`tomllib`. YAML is read with PyYAML's *safe* loader only (no Python
  tags), and aliases are refused outright so that an "alias bomb" (billion laughs) cannot
  expand. JSON is accepted for the ``config.json`` a run writes.
* ``--set model.activation=selu`` overrides one dotted key; the value is parsed as a TOML
  literal (``0.1``, ``true``, ``[64, 64]``, ``{name = "elu", alpha = 0.5}``) and falls back to
  the plain string.
* :func:`dump_toml` writes a table so that :func:`loads_toml` gives it back unchanged (None
  values are left out: every optional field defaults to None).

Example:
    >>> from steadygrad.experiments.config import config_from_dict
    >>> raw = apply_overrides({"model": {"hidden": [8]}}, ["model.activation=selu",
    ...                                                    "train.epochs=3"])
    >>> raw
    {'model': {'hidden': [8], 'activation': 'selu'}, 'train': {'epochs': 3}}
    >>> cfg = config_from_dict(raw)
    >>> config_from_dict(loads_toml(dump_toml(config_to_dict(cfg)))) == cfg
    True
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from steadygrad.errors import ConfigError
from steadygrad.experiments.config import RunConfig, config_from_dict, config_to_dict
from steadygrad.experiments.store import atomic_write_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 needs the tomli backport
    import tomli as tomllib

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_DEPTH",
    "apply_overrides",
    "dump_toml",
    "load_config",
    "loads_json",
    "loads_toml",
    "loads_yaml",
    "parse_value",
    "read_table",
    "save_config",
    "set_key",
]

MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_DEPTH = 32
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")  # \Z: "$" would accept a final newline


class _NoAliasSafeLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader that refuses aliases (``*name``): no alias bombs, no shared nodes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(
                "yaml", f"*{event.anchor}", "a document without aliases (anchors/aliases are "
                "refused to prevent alias bombs)", hint="write the value out in full",
            )
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_CONFIG_DEPTH:
                raise _too_deep("yaml")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                if key is not None and key in seen:
                    raise _duplicate("yaml", key)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _too_deep(source: str) -> ConfigError:
    return ConfigError(source, f"nesting deeper than {MAX_CONFIG_DEPTH} levels",
                       f"tables and lists nested at most {MAX_CONFIG_DEPTH} levels deep",
                       hint="flatten the file; run configs need 4 levels")


def _duplicate(source: str, key: Any) -> ConfigError:
    return ConfigError(source, f"duplicate key {key!r}", "each key at most once per table "
                       "(as in TOML)", hint="remove one of the duplicates")


def _depth(value: Any) -> int:
    """Nesting depth of tables/lists, computed without recursion (a scalar has depth 0)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, Mapping):
            children: Iterable[Any] = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_CONFIG_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _bounded(data: Any, source: str) -> Any:
    if _depth(data) > MAX_CONFIG_DEPTH:
        raise _too_deep(source)
    return data


def _json_object(source: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise _duplicate(source, key)
            out[key] = value
        return out

    return hook


def loads_json(text: str, source: str = "json") -> dict[str, Any]:
    """Parse JSON into a table: duplicate keys and nesting over ``MAX_CONFIG_DEPTH`` refused.

    >>> loads_json('{"train": {"epochs": 2}}')
    {'train': {'epochs': 2}}
    >>> loads_json('{"a": 1, "a": 2}')
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: json: got "duplicate key 'a'"; expected each key at most ...
    """
    try:
        data = json.loads(text, object_pairs_hook=_json_object(source))
    except RecursionError:
        raise _too_deep(source) from None
    except json.JSONDecodeError as err:
        raise ConfigError(source, str(err), "valid JSON") from None
    except ConfigError:
        raise
    except ValueError as err:  # e.g. an integer literal over Python's digit limit
        raise ConfigError(source, str(err).splitlines()[0], "valid JSON") from None
    if not isinstance(data, dict):
        raise ConfigError(source, data, "a JSON object at the top level")
    return _bounded(data, source)


def loads_yaml(text: str, source: str = "yaml") -> dict[str, Any]:
    """Parse YAML with the safe loader (no Python tags, no aliases) into a table.

    >>> loads_yaml("model:\\n  hidden: [8, 8]\\n")
    {'model': {'hidden': [8, 8]}}
    >>> loads_yaml("a: !!python/object/apply:os.system ['echo hi']")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: yaml: got ...; expected a valid YAML document ...
    """
    try:
        data = yaml.load(text, Loader=_NoAliasSafeLoader)
    except RecursionError:
        raise _too_deep(source) from None
    except ConfigError:
        raise
    except ValueError as err:  # e.g. an integer literal over Python's digit limit
        raise ConfigError(source, str(err).splitlines()[0], "a valid YAML document") from None
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(source, first, "a valid YAML document (safe subset: no Python "
                          "tags)") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, data, "a mapping at the top level")
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(source, key, "string keys at the top level")
    return _bounded(data, source)


def loads_toml(text: str, source: str = "toml") -> dict[str, Any]:
    """Parse TOML text into a table; a syntax error becomes a :class:`ConfigError`.

    >>> loads_toml("[train]\\nepochs = 3")
    {'train': {'epochs': 3}}
    """
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise _too_deep(source) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(source, str(err), "valid TOML") from None
    except ConfigError:
        raise
    except ValueError as err:  # e.g. an integer literal over Python's digit limit
        raise ConfigError(source, str(err).splitlines()[0], "valid TOML") from None
    return _bounded(data, source)


def read_table(path: str | Path) -> dict[str, Any]:
    """Read a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file into a plain table.

    Raises:
        ConfigError: missing file, unknown suffix, file over ``MAX_CONFIG_BYTES``, bytes that
            are not UTF-8, bad syntax, duplicate keys, nesting over ``MAX_CONFIG_DEPTH``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "run.toml"
    >>> _ = p.write_text('name = "x"')
    >>> read_table(p)
    {'name': 'x'}
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file", str(path), "an existing file")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise ConfigError("config file", str(path), "a .toml, .yaml, .yml or .json file")
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError("config file", str(path), "a readable file",
                          hint=err.strerror or type(err).__name__) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError("config file", str(path), f"a file under {MAX_CONFIG_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(str(path), f"a byte that is not UTF-8 at offset {err.start}",
                          "a UTF-8 text file", hint="re-save the file as UTF-8") from None
    if suffix == ".toml":
        return loads_toml(text, str(path))
    if suffix in (".yaml", ".yml"):
        return loads_yaml(text, str(path))
    return loads_json(text, str(path))


def parse_value(text: str) -> Any:
    """An override's value: a TOML literal, else the string itself.

    >>> parse_value("0.1"), parse_value("[64, 64]"), parse_value("selu"), parse_value("true")
    (0.1, [64, 64], 'selu', True)
    >>> parse_value("2026-01-01")  # TOML dates stay text
    '2026-01-01'
    """
    try:
        table = tomllib.loads(f"v = {text}")
    except RecursionError:
        raise _too_deep("--set") from None
    except (tomllib.TOMLDecodeError, ValueError):
        return text
    if _depth(table) > MAX_CONFIG_DEPTH:
        raise _too_deep("--set")
    value = table.get("v")
    if len(table) != 1 or isinstance(value, (_dt.date, _dt.time)):
        return text
    return value


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of ``raw`` with each ``"dotted.key=value"`` set (creating missing tables).

    Args:
        raw: the table read from a file.
        overrides: ``--set`` items such as ``"model.activation=selu"``.

    Returns:
        A new table; ``raw`` is unchanged. Validate it with ``config_from_dict``.

    Raises:
        ConfigError: an item without ``=``, an empty or malformed key, or a key that walks
            through a value that is not a table.

    Example:
        >>> apply_overrides({"train": {"epochs": 5}}, ["train.optimizer.learning_rate=1e-3"])
        {'train': {'epochs': 5, 'optimizer': {'learning_rate': 0.001}}}
        >>> apply_overrides({}, ["model.activation"])
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: --set: got 'model.activation'; expected KEY=VALUE ...
    """
    out = copy.deepcopy(dict(raw))
    if isinstance(overrides, str):
        overrides = [overrides]
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError("--set", item, "KEY=VALUE with a dotted key",
                              hint="e.g. --set model.activation=selu")
        key, text = item.split("=", 1)
        set_key(out, key.strip(), parse_value(text.strip()))
    return out


def set_key(table: dict[str, Any], key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``table`` in place, creating missing tables.

    >>> t = {"model": {"hidden": [8]}}
    >>> set_key(t, "model.activation", "elu"); t
    {'model': {'hidden': [8], 'activation': 'elu'}}
    >>> set_key(t, "model.hidden.x", 1)
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: --set model.hidden.x: got [8];
    expected model.hidden to be a table to set a key inside it
    """
    parts = key.split(".")
    if not all(_BARE_KEY.match(p) for p in parts):
        raise ConfigError("--set", key, "a dotted key of letters, digits, _ and -",
                          hint="e.g. train.optimizer.learning_rate=0.01")
    node = table
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(f"--set {key}", child,
                              f"{where} to be a table to set a key inside it")
        node = child
    node[parts[-1]] = value


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> RunConfig:
    """Read a config file, apply ``--set`` overrides and validate it.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "run.yaml"
    >>> _ = p.write_text("model:\\n  activation: elu\\n")
    >>> load_config(p, ["model.hidden=[16]"]).model.hidden
    (16,)
    """
    return config_from_dict(apply_overrides(read_table(path), overrides))


# ------------------------------------------------------------------------------- writing
def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _literal(value: Any, path: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v, path) for v in value if v is not None) + "]"
    if isinstance(value, Mapping):
        items = [f"{_key(k)} = {_literal(v, path)}" for k, v in value.items() if v is not None]
        return "{" + ", ".join(items) + "}"
    raise ConfigError(path, value, "a TOML value (number, string, boolean, list, table)")


def dump_toml(table: Mapping[str, Any]) -> str:
    """TOML text for a plain table (nested tables become ``[a.b]`` sections; None is left out).

    >>> print(dump_toml({"name": "x", "train": {"epochs": 2, "optimizer": {"name": "sgd"}}}))
    name = "x"
    <BLANKLINE>
    [train]
    epochs = 2
    <BLANKLINE>
    [train.optimizer]
    name = "sgd"
    <BLANKLINE>
    """
    lines: list[str] = []

    def section(node: Mapping[str, Any], prefix: list[str]) -> None:
        for key, value in node.items():
            if value is not None and not isinstance(value, Mapping):
                lines.append(f"{_key(key)} = {_literal(value, '.'.join([*prefix, key]))}")
        for key, value in node.items():
            if isinstance(value, Mapping):
                if lines:
                    lines.append("")
                lines.append("[" + ".".join(_key(k) for k in [*prefix, key]) + "]")
                section(value, [*prefix, key])

    section(table, [])
    return "\n".join(lines) + "\n"


def save_config(config: RunConfig, directory: str | Path) -> tuple[Path, Path]:
    """Write ``config.toml`` and ``config.json`` into ``directory`` atomically.

    Both load back to ``config`` exactly (``load_config(path) == config``).

    >>> import tempfile
    >>> toml_path, json_path = save_config(RunConfig(name="demo"), tempfile.mkdtemp())
    >>> load_config(toml_path) == load_config(json_path) == RunConfig(name="demo")
    True
    """
    directory = Path(directory)
    table = config_to_dict(config)
    toml_path = atomic_write_text(directory / "config.toml", dump_toml(table))
    json_path = atomic_write_text(directory / "config.json", json.dumps(table, indent=2) + "\n")
    return toml_path, json_path
