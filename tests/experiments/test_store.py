"""Run store: safe names (nothing escapes the root), atomic writes, no silent overwrite."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steadygrad.errors import ConfigError
from steadygrad.experiments.store import (
    MAX_NAME_LENGTH,
    RunStore,
    atomic_write_bytes,
    atomic_write_json,
    sanitize_name,
    validate_run_name,
)

HOSTILE = [
    "../x", "..", ".", "/etc/passwd", "a/../../b", "a/b", "..\\..\\x", "a\\b",
    "%2e%2e%2fx", "%2E%2E/x", "%252e%252e%252fx", "..%2fx", "x\x00y", "x" * 256, "", " ",
    ".hidden", "~/x", "a\nb", "é",
]


def _tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_and_nothing_is_created_outside(tmp_path: Path,
                                                                  name: str) -> None:
    root = tmp_path / "root"
    store = RunStore(root)
    before = _tree(tmp_path)
    with pytest.raises(ConfigError) as info:
        store.create(name)
    assert info.value.path == "run name"
    assert _tree(tmp_path) == before
    assert validate_run_name(sanitize_name(name)) == sanitize_name(name)


def test_names_up_to_255_characters_are_accepted(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    name = "a" * MAX_NAME_LENGTH
    assert store.create(name).parent == store.root
    with pytest.raises(ConfigError):
        validate_run_name(name + "a")


def test_symlinked_run_pointing_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = RunStore(tmp_path / "root")
    (store.root / "link").symlink_to(outside)
    with pytest.raises(ConfigError, match="inside the results root"):
        store.create("link", overwrite=True)
    assert list(outside.iterdir()) == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_sanitized_names_are_always_valid_single_components(text: str) -> None:
    name = sanitize_name(text)
    assert validate_run_name(name) == name
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert len(name) <= 200
    assert Path(name).name == name


def test_long_names_stay_distinct_after_sanitizing() -> None:
    a, b = sanitize_name("x" * 300 + "a"), sanitize_name("x" * 300 + "b")
    assert a != b and len(a) == len(b) == 200


def test_existing_run_is_kept_unless_overwrite_then_moved_aside(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = store.create("r")
    (run / "summary.json").write_text('{"v": 1}')
    with pytest.raises(ConfigError, match="pass overwrite=True"):
        store.create("r")
    assert json.loads((run / "summary.json").read_text()) == {"v": 1}
    fresh = store.create("r", overwrite=True)
    assert list(fresh.iterdir()) == []
    (aside,) = (tmp_path / ".replaced").iterdir()
    assert json.loads((aside / "summary.json").read_text()) == {"v": 1}
    assert store.runs() == ["r"]


def test_commit_renames_a_staging_folder_into_place(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    staging = store.staging("r")
    atomic_write_json(staging / "summary.json", {"status": "done"})
    path = store.commit(staging, "r")
    assert json.loads((path / "summary.json").read_text()) == {"status": "done"}
    assert not staging.exists()
    with pytest.raises(ConfigError):
        store.commit(store.staging("r"), "r")


def test_atomic_write_leaves_old_content_when_interrupted(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    target = tmp_path / "f.json"
    atomic_write_bytes(target, b"old")

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temp file left


def test_atomic_write_json_refuses_nan(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"a": float("nan")})
    assert not (tmp_path / "x.json").exists()
