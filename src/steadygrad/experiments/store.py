"""The run store: one directory per run under a results root, atomic writes, safe names.

Layout of a run directory (written by :func:`steadygrad.experiments.execute.run_config`)::

    <root>/<run name>/
        config.toml, config.json   the resolved config (both load back to it exactly)
        history.csv                one row per epoch
        health.json                the gradient-health report (when diagnostics are enabled)
        weights.safetensors        final weights
        summary.json               status, final metrics, timings, versions, seeds, threads
        report.html                added by steadygrad report RUN_DIR (self-contained)

Every file is written atomically (temporary file in the same folder, ``fsync``,
``os.replace``, ``fsync`` of the folder): a reader sees the old file or the new one, never half.

Run names are a single path component: 1 to 255 characters from ``A-Z a-z 0-9 . _ - + = , @``,
not starting with ``.``. Everything else (``../x``, absolute paths, ``a/../../b``, backslashes,
``%2e%2e`` URL encodings, NUL) is refused by :func:`validate_run_name`;
:func:`sanitize_name` turns any text into a valid name for generated names.

An existing run is never overwritten silently. With ``overwrite=True`` the old directory is
*moved aside* to ``<root>/.replaced/<name>.<UTC time>`` (not deleted: nothing a user made is
lost; delete that folder yourself when you no longer need it).

Example:
    >>> import tempfile
    >>> store = RunStore(tempfile.mkdtemp())
    >>> run = store.create("relu-seed0")
    >>> _ = atomic_write_json(run / "summary.json", {"status": "done"})
    >>> store.runs()
    ['relu-seed0']
    >>> store.create("relu-seed0")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: run name: got 'relu-seed0'; expected a name not used yet in
    ...; pass overwrite=True to move the old run aside, or choose another name
    >>> store.path("../escape")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: run name: got '../escape'; expected ...; did you mean 'escape'?
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from steadygrad._atomic import atomic_write_bytes, atomic_write_text, fsync_dir
from steadygrad.errors import ConfigError

__all__ = [
    "MAX_NAME_LENGTH",
    "RunStore",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_dir",
    "sanitize_name",
    "validate_run_name",
]

MAX_NAME_LENGTH = 255
_ALLOWED = re.compile(r"^[A-Za-z0-9._\-+=,@]+$")
_BAD_CHARS = re.compile(r"[^A-Za-z0-9._\-+=,@]+")


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """:func:`atomic_write_bytes` of ``obj`` as indented JSON (NaN/Inf refused).

    >>> import tempfile, pathlib, json
    >>> p = atomic_write_json(pathlib.Path(tempfile.mkdtemp()) / "s.json", {"a": 1})
    >>> json.loads(p.read_text())
    {'a': 1}
    """
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def sanitize_name(text: str, max_length: int = 200) -> str:
    """A valid run name made from any text (bad characters become ``-``).

    Leading dots, dashes and underscores are removed and runs of ``..`` are broken up; a name
    longer than ``max_length`` is cut and ends with a short hash of the full text so that
    different long texts stay different. Empty results become ``"run"``.

    >>> sanitize_name("../x"), sanitize_name("a/../../b"), sanitize_name("lr=0.01 act=selu")
    ('x', 'a-b', 'lr=0.01-act=selu')
    >>> sanitize_name("%2e%2e%2fetc"), sanitize_name("")
    ('2e-2e-2fetc', 'run')
    """
    name = _BAD_CHARS.sub("-", str(text))
    name = re.sub(r"\.{2,}", "-", name)
    name = re.sub(r"-{2,}", "-", name).lstrip("._-").rstrip("-") or "run"
    if len(name) > max_length:
        digest = hashlib.sha256(str(text).encode()).hexdigest()[:8]
        name = name[: max_length - 9].rstrip("-") + "-" + digest
    return name


def validate_run_name(name: Any) -> str:
    """``name`` itself when it is a safe single path component, else a :class:`ConfigError`.

    >>> validate_run_name("selu_lr=0.01")
    'selu_lr=0.01'
    >>> validate_run_name("a/../../b")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: run name: got 'a/../../b'; expected ...; did you mean 'a-b'?
    """
    expected = (f"1 to {MAX_NAME_LENGTH} characters from A-Z a-z 0-9 . _ - + = , @, "
                "not starting with '.'")
    if not isinstance(name, str):
        raise ConfigError("run name", name, expected)
    if len(name) > MAX_NAME_LENGTH or not _ALLOWED.match(name) or name.startswith("."):
        raise ConfigError("run name", name, expected,
                          hint=f"did you mean {sanitize_name(name)!r}?")
    return name


class RunStore:
    """The results root: creates, lists and replaces run directories safely.

    Args:
        root: the results folder (created when missing).

    Example:
        >>> import tempfile
        >>> store = RunStore(tempfile.mkdtemp())
        >>> first = store.create("a")
        >>> _ = (first / "marker").write_text("old")
        >>> again = store.create("a", overwrite=True)
        >>> list(again.iterdir()), len(list((store.root / ".replaced").iterdir()))
        ([], 1)
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        """The directory of run ``name`` (validated; always directly inside ``root``)."""
        path = self.root / validate_run_name(name)
        if path.is_symlink() or path.resolve().parent != self.root:
            raise ConfigError("run name", name, "a run folder inside the results root",
                              hint=f"{path} is a link or leaves {self.root}")
        return path

    def exists(self, name: str) -> bool:
        """Whether run ``name`` has a directory."""
        return self.path(name).exists()

    def runs(self) -> list[str]:
        """Names of the existing runs, sorted (hidden folders are internal and skipped)."""
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and not p.name.startswith("."))

    def move_aside(self, name: str) -> Path:
        """Move run ``name`` to ``root/.replaced/<name>.<UTC time>``; returns the new place."""
        path = self.path(name)
        aside = self.root / ".replaced"
        aside.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = aside / f"{name}.{stamp}"
        counter = 0
        while target.exists():
            counter += 1
            target = aside / f"{name}.{stamp}.{counter}"
        os.replace(path, target)
        fsync_dir(self.root)
        return target

    def create(self, name: str, *, overwrite: bool = False) -> Path:
        """Create the empty directory of a new run.

        Raises:
            ConfigError: ``name`` is not a valid run name, or the run exists and
                ``overwrite`` is False.
        """
        path = self.path(name)
        if path.exists():
            if not overwrite:
                raise ConfigError(
                    "run name", name, f"a name not used yet in {self.root}",
                    hint="pass overwrite=True to move the old run aside, or choose another name",
                )
            self.move_aside(name)
        path.mkdir()
        fsync_dir(self.root)
        return path

    def staging(self, name: str) -> Path:
        """A fresh private folder ``root/.staging/<name>.<pid>`` to build a run in.

        Leftovers of dead processes are not touched here (a sweep's workers may run on other
        hosts, whose PIDs mean nothing here; the sweep driver recovers those): ``steadygrad
        train`` calls :meth:`clean_staging` first.
        """
        validate_run_name(name)
        folder = self.root / ".staging" / f"{name[:200]}.{os.getpid()}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return folder

    def _stale(self) -> list[tuple[str, Path]]:
        """``(run name, folder)`` of staging folders whose process is gone."""
        out: list[tuple[str, Path]] = []
        staging = self.root / ".staging"
        if not staging.is_dir():
            return out
        for folder in staging.iterdir():
            name, _, pid = folder.name.rpartition(".")
            if not name or not pid.isdigit() or _alive(int(pid)) or folder.is_symlink():
                continue
            out.append((name, folder))
        return out

    def interrupted(self, name: str) -> Path | None:
        """The staging folder of a killed ``train`` of run ``name`` that holds a checkpoint
        to resume from (``steadygrad train --resume NAME``), or None.

        >>> import tempfile
        >>> RunStore(tempfile.mkdtemp()).interrupted("a") is None
        True
        """
        found = [f for n, f in self._stale() if n == name[:200]
                 and (f / "checkpoints" / "latest").is_file()]
        return max(found, key=lambda f: f.stat().st_mtime) if found else None

    def clean_staging(self, name: str | None = None) -> list[Path]:
        """Remove staging folders of dead processes; returns what was removed.

        A folder that holds a checkpoint is kept (it can be resumed) unless ``name`` is its
        run's name (a new, non-resumed run of that name replaces it).

        >>> import tempfile
        >>> store = RunStore(tempfile.mkdtemp())
        >>> dead = store.root / ".staging" / "a.999999999"
        >>> dead.mkdir(parents=True)
        >>> [p.name for p in store.clean_staging()]
        ['a.999999999']
        """
        removed = []
        for run, folder in self._stale():
            if run == name or not (folder / "checkpoints" / "latest").is_file():
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        return removed

    def set_aside(self, staging: str | Path, name: str, where: str = ".failed") -> Path:
        """Move a staging folder to ``root/<where>/<name>.<UTC time>`` (a new run that must
        not replace the existing one); returns its new place.

        >>> import tempfile
        >>> store = RunStore(tempfile.mkdtemp())
        >>> store.set_aside(store.staging("a"), "a").parent.name
        '.failed'
        """
        validate_run_name(name)
        aside = self.root / where
        aside.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target, counter = aside / f"{name}.{stamp}", 0
        while target.exists():
            counter += 1
            target = aside / f"{name}.{stamp}.{counter}"
        os.replace(staging, target)
        fsync_dir(aside)
        return target

    def commit(self, staging: str | Path, name: str, *, overwrite: bool = False) -> Path:
        """Move a finished staging folder into place as run ``name`` (one atomic rename).

        With ``overwrite=True`` an existing run is moved aside first (see :meth:`move_aside`).
        """
        path = self.path(name)
        if path.exists():
            if not overwrite:
                raise ConfigError(
                    "run name", name, f"a name not used yet in {self.root}",
                    hint="pass overwrite=True to move the old run aside, or choose another name",
                )
            self.move_aside(name)
        os.replace(staging, path)
        fsync_dir(self.root)
        return path


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie or another user's process counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
