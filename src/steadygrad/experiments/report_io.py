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

__all__ = ["index_states", "load_json", "read_history_csv", "results_csv"]


def read_history_csv(path: str | Path) -> dict[str, list[float]]:
    """``{column: [value per epoch]}`` from a run's ``history.csv`` (empty cells are NaN).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "history.csv"
    >>> _ = p.write_text("epoch,loss,val_loss\\n0,1.5,1.4\\n1,0.5,\\n")
    >>> read_history_csv(p)
    {'epoch': [0.0, 1.0], 'loss': [1.5, 0.5], 'val_loss': [1.4, nan]}
    """
    out: dict[str, list[float]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            for key, text in row.items():
                try:
                    value = float(text) if text not in (None, "") else math.nan
                except ValueError:
                    value = math.nan
                out.setdefault(key, []).append(value)
    return out


def load_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when missing, unreadable or not an object.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "ok.json").write_text('{"final": {"loss": 0.5}}')
        >>> _ = (folder / "list.json").write_text("[1, 2]")
        >>> _ = (folder / "torn.json").write_text('{"final": ')  # a half-written file
        >>> [load_json(folder / n) for n in ("ok.json", "list.json", "torn.json", "no.json")]
        [{'final': {'loss': 0.5}}, None, None, None]
    """
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
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
        return {name: state for name, state in db.execute("SELECT name, state FROM runs")}
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
