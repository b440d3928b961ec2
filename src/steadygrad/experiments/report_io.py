"""Files of a sweep report: reading run files and the index, writing ``results.csv``.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "summary.json"
    >>> _ = p.write_text('{"status": "done"}')
    >>> load_json(p), load_json(p.with_name("missing.json"))
    ({'status': 'done'}, None)
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steadygrad.experiments.report import SweepReport

__all__ = [
    "MAX_READ_BYTES",
    "check_health",
    "confined",
    "index_states",
    "load_json",
    "read_history_csv",
    "read_sweep_json",
    "results_csv",
    "run_folder",
    "sanitize_summary",
]

MAX_READ_BYTES = 64 << 20
"""Largest file of a sweep directory the report reads (a bigger one is treated as missing)."""


def read_history_csv(path: str | Path) -> dict[str, list[float]]:
    """``{column: [value per epoch]}`` from a run's ``history.csv`` (empty cells are NaN).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "history.csv"
    >>> _ = p.write_text("epoch,loss,val_loss\\n0,1.5,1.4\\n1,0.5,\\n")
    >>> read_history_csv(p)
    {'epoch': [0.0, 1.0], 'loss': [1.5, 0.5], 'val_loss': [1.4, nan]}
    """
    out: dict[str, list[float]] = {}
    text = _read_text(Path(path))
    if text is None:
        return out
    try:
        for row in csv.DictReader(io.StringIO(text, newline="")):
            for key, cell in row.items():
                if not isinstance(key, str) or not isinstance(cell, str):
                    continue  # a ragged row: extra cells (key None) or missing ones
                try:
                    value = float(cell) if cell != "" else math.nan
                except ValueError:
                    value = math.nan
                out.setdefault(key, []).append(value)
    except csv.Error:
        return {}
    return out


def _read_text(path: Path, root: Path | None = None) -> str | None:
    """The UTF-8 text of ``path``; None when missing, too big, not UTF-8, or (with ``root``)
    resolving outside ``root``."""
    try:
        if not path.is_file() or (root is not None and not confined(path, root)):
            return None
        with path.open("rb") as handle:
            data = handle.read(MAX_READ_BYTES + 1)
        return data.decode("utf-8") if len(data) <= MAX_READ_BYTES else None
    except (OSError, ValueError):
        return None


def confined(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) to ``root`` or somewhere inside it.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> confined(root / "runs" / "a", root), confined(root / ".." / "x", root)
    (True, False)
    """
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):
        return False


def run_folder(sweep_dir: Path, name: Any, where: str) -> Path:
    """``sweep_dir/runs/<name>`` for a run name read from ``sweep.json``, confined to it.

    Raises:
        ConfigError: ``name`` is not a plain run name, or the folder resolves outside the
            sweep's ``runs/`` (a symlink).

    >>> run_folder(Path("sw"), "a=1-seed=0", "runs[0]").as_posix()
    'sw/runs/a=1-seed=0'
    >>> run_folder(Path("sw"), "../../secret", "runs[3]")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: sw/sweep.json runs[3].name: got '../../secret'; ...
    """
    from steadygrad.errors import ConfigError
    from steadygrad.experiments.store import validate_run_name

    try:
        validate_run_name(name)
    except ConfigError as err:
        raise ConfigError(f"{sweep_dir / 'sweep.json'} {where}.name", name, err.expected,
                          hint="the sweep file was edited by hand or is corrupt") from None
    folder = sweep_dir / "runs" / name
    if folder.exists() and not confined(folder, sweep_dir / "runs"):
        raise ConfigError(f"{folder}", str(folder.resolve()), "a run folder inside "
                          f"{sweep_dir / 'runs'}; it is a link to a folder outside it",
                          hint="replace the link with the run folder itself")
    return folder


_Entries = list[tuple[str, list[tuple[str, Any]]]]


def read_sweep_json(sweep_dir: Path) -> tuple[str | None, _Entries]:
    """The sweep's name and its ``(run name, settings)`` entries, validated as untrusted.

    Raises:
        ConfigError: no readable ``sweep.json`` or one whose structure is not a sweep's.
    """
    from steadygrad.errors import ConfigError

    path = sweep_dir / "sweep.json"
    spec = load_json(path)
    if spec is None or not isinstance(spec.get("runs"), list):
        inside = sorted(p.parent.name for p in sweep_dir.glob("*/sweep.json")) \
            if sweep_dir.is_dir() else []
        hint = (f"did you mean {sweep_dir / inside[0]}?" if inside
                else "run 'steadygrad sweep FILE' first; it writes DIR/<sweep name>/sweep.json")
        raise ConfigError("DIR", str(sweep_dir), "a sweep directory with a readable sweep.json "
                          "(UTF-8 JSON with a runs list)", hint=hint)
    meta = spec.get("spec", {})
    if not isinstance(meta, dict):
        raise ConfigError(f"{path} spec", meta, "a table")
    name = meta.get("name")
    entries = []
    for i, entry in enumerate(spec["runs"]):
        where = f"runs[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{path} {where}", entry, "a table with name and settings")
        run_folder(sweep_dir, entry.get("name"), where)
        settings = entry.get("settings", [])
        if not isinstance(settings, list) or not all(
                isinstance(s, list) and len(s) == 2 and isinstance(s[0], str) for s in settings):
            raise ConfigError(f"{path} {where}.settings", settings,
                              "a list of [dotted key, value] pairs")
        entries.append((entry["name"], [(str(k), v) for k, v in settings]))
    return (str(name) if isinstance(name, (str, int, float)) and name != "" else None), entries


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else None


def sanitize_summary(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """A run's ``summary.json`` reduced to the fields a report shows, each of the right type
    (anything else is dropped).

    >>> sanitize_summary({"status": "done", "final": {"loss": 0.5, "bad": "x"},
    ...                   "seconds_per_epoch": "fast", "error": 3})
    {'status': 'done', 'final': {'loss': 0.5}, 'seconds_per_epoch': None, 'diverged': None, \
'error': None}
    """
    if summary is None:
        return None
    final = summary.get("final")
    diverged = summary.get("diverged")
    status, error = summary.get("status"), summary.get("error")
    return {
        "status": status if isinstance(status, str) else None,
        "final": ({str(k): _number(v) for k, v in final.items() if _number(v) is not None}
                  if isinstance(final, dict) else None),
        "seconds_per_epoch": _number(summary.get("seconds_per_epoch")),
        "diverged": ({str(k): v for k, v in diverged.items()
                      if isinstance(v, (str, int, float)) or v is None}
                     if isinstance(diverged, dict) else None),
        "error": error if isinstance(error, str) else None,
    }


def load_json(path: Path, root: Path | None = None) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when missing, unreadable, not UTF-8, nested too deep,
    over ``MAX_READ_BYTES``, not an object, or (with ``root``) a link leading outside ``root``.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "ok.json").write_text('{"final": {"loss": 0.5}}')
        >>> _ = (folder / "list.json").write_text("[1, 2]")
        >>> _ = (folder / "torn.json").write_text('{"final": ')  # a half-written file
        >>> [load_json(folder / n) for n in ("ok.json", "list.json", "torn.json", "no.json")]
        [{'final': {'loss': 0.5}}, None, None, None]
    """
    text = _read_text(path, root)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def index_states(sweep_dir: Path) -> dict[str, str]:
    """``{run name: state}`` from the sweep's ``index.sqlite`` (read-only; {} if none).

    >>> import tempfile, pathlib
    >>> index_states(pathlib.Path(tempfile.mkdtemp()))
    {}
    """
    path = sweep_dir / "index.sqlite"
    if not path.is_file():
        return {}
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {name: state for name, state in db.execute("SELECT name, state FROM runs")
                if isinstance(name, str) and isinstance(state, str)}
    except sqlite3.Error:
        return {}
    finally:
        db.close()


def results_csv(report: SweepReport) -> str:
    """``results.csv``: one row per run: axes, seed, status, final metrics, time per epoch.

    >>> from steadygrad.experiments.report import RunRecord, SweepReport
    >>> rep = SweepReport("s", Path("."), "loss", (RunRecord("a=1-seed=0", (("m.a", 1),), 0,
    ...     "done", final={"loss": 0.25}, seconds_per_epoch=0.5),), (), ("m.a",))
    >>> print(results_csv(rep).strip())
    run,m.a,seed,status,epochs,seconds_per_epoch,loss,error
    a=1-seed=0,1,0,done,,0.5,0.25,
    """
    from steadygrad.experiments.report import _text

    metrics: list[str] = []
    for run in report.runs:
        metrics += [k for k in (run.final or {}) if k not in metrics and k != "seconds"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["run", *report.axes, "seed", "status", "epochs", "seconds_per_epoch",
                     *metrics, "error"])
    for run in report.runs:
        settings = dict(run.settings)
        epochs = len(run.history.get("loss", [])) if run.history else ""
        writer.writerow([
            run.name, *(_text(settings[a]) if a in settings else "" for a in report.axes),
            "" if run.seed is None else run.seed, run.status, epochs,
            "" if run.seconds_per_epoch is None else repr(run.seconds_per_epoch),
            *("" if (run.final or {}).get(m) is None else repr((run.final or {})[m])
              for m in metrics),
            run.error or "",
        ])
    return buffer.getvalue()


def check_health(doc: dict[str, Any], path: Path) -> None:
    """A ``health.json`` read back is untrusted: refuse one that is not a health document.

    Raises:
        ConfigError: naming the file.

    >>> check_health({"schema": "x"}, Path("runs/a/health.json"))
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: runs/a/health.json: got 'a document that is not a ...
    """
    from steadygrad.diagnostics.report import HealthReport
    from steadygrad.errors import ConfigError, SteadygradError

    def finding_ok(f: Any) -> bool:
        remedies = f.get("remedies", []) if isinstance(f, dict) else None
        return (isinstance(f, dict) and isinstance(f.get("kind"), str)
                and isinstance(f.get("severity"), str)
                and isinstance(f.get("message", ""), str)
                and isinstance(f.get("layers", []), list)
                and all(isinstance(x, str) for x in f.get("layers", []))
                and isinstance(remedies, list)
                and all(isinstance(r, dict) and isinstance(r.get("patch", {}), dict)
                        for r in remedies))

    try:
        HealthReport.from_dict(doc)
        ok = isinstance(doc.get("findings", []), list) and all(
            finding_ok(f) for f in doc.get("findings", []))
    except (SteadygradError, KeyError, TypeError, ValueError, IndexError, AttributeError,
            OverflowError):
        ok = False
    if not ok:
        raise ConfigError(str(path), "a document that is not a steadygrad.health/1 report",
                          "the health.json a run writes", hint="delete the file or rerun the run")
