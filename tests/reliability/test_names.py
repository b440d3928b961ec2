"""Item 10: hostile run and sweep names are refused or sanitized; nothing escapes the root.

Oracle: a snapshot of every path under a sandbox before and after; the only new paths must lie
inside the results root.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steadygrad.errors import ConfigError
from steadygrad.experiments.space import sweep_from_dict
from steadygrad.experiments.store import MAX_NAME_LENGTH, RunStore, sanitize_name, validate_run_name

HOSTILE = [
    "../x", "..", ".", "", "/etc/passwd", "/tmp/evil", "a/../../b", "a/b", "..\\x", "a\\..\\b",
    "C:\\evil", "%2e%2e%2fx", "%252e%252e%252fx", "..%2fx", "x\x00y", "\x00", "a" * 300,
    "~/x", ".hidden", "a\nb", "é", "x/", " ", "..;x", "\u2024\u2024/x",
]


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _outside(sandbox: Path, before: set[str], results: str) -> list[str]:
    return sorted(p for p in _snapshot(sandbox) - before
                  if not (p == results or p.startswith(results + os.sep)))


@pytest.mark.parametrize("name", HOSTILE)
def test_store_refuses_or_sanitizes(tmp_path: Path, name: str) -> None:
    before = _snapshot(tmp_path)
    store = RunStore(tmp_path / "results")
    with pytest.raises(ConfigError) as info:
        store.create(name)
    assert info.value.path == "run name" and info.value.received == name
    clean = sanitize_name(name)
    assert validate_run_name(clean) == clean and len(clean) <= MAX_NAME_LENGTH
    made = store.create(clean)
    assert made.parent == store.root
    assert _outside(tmp_path, before, "results") == []


@pytest.mark.parametrize("name", HOSTILE)
def test_sweep_names_refused(tmp_path: Path, name: str) -> None:
    before = _snapshot(tmp_path)
    try:
        sweep = sweep_from_dict({"name": name, "base": {"train": {"epochs": 1}}})
    except ConfigError as err:
        assert "name" in err.path
    else:  # accepted only as a valid single path component
        assert validate_run_name(sweep.name) == sweep.name
    assert _snapshot(tmp_path) == before


def test_symlinked_run_folder_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = RunStore(tmp_path / "results")
    (store.root / "link").symlink_to(outside)
    with pytest.raises(ConfigError, match="link or leaves"):
        store.create("link", overwrite=True)
    assert list(outside.iterdir()) == []


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(codec="utf-8"), max_size=300)
       | st.lists(st.sampled_from(["..", "/", "\\", ".", "%2e", "%2f", "a", "\x00"]),
                  max_size=12).map("".join))
def test_any_text(tmp_path: Path, text: str) -> None:
    """Any text: validate_run_name accepts it only if it is a safe child; sanitize always is."""
    root = (tmp_path / "r").resolve()
    root.mkdir(exist_ok=True)
    store = RunStore(root)
    try:
        path = store.path(text)
    except ConfigError:
        pass
    else:
        assert path.parent == root and path.name == text and text not in (".", "..")
    clean = sanitize_name(text)
    assert store.path(clean).parent == root
