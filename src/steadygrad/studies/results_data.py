"""The raw results behind the results page, in one compact JSON file.

:func:`collect` reads what :func:`steadygrad.studies.runner.run_study` left under
``<root>/<name>-<mode>/`` for every study: the per-run rows of its ``results.csv`` (every
column, as the CSV has it), the per-epoch validation curves the batch-norm check needs, the
conclusions and duration of ``study.json``, the environment the runs recorded, and each
configuration's health label of the sweep report. :func:`steadygrad.studies.results_doc.render_page`
turns that data, and nothing else, into the page, so a committed data file and the page can be
checked against each other (issue 19).

Example:
    >>> import tempfile
    >>> data = collect(Path(tempfile.mkdtemp()), mode="quick", studies=["clipping"],
    ...                machine="a test box")
    >>> data["format"], data["studies"]
    ('steadygrad.results/1', {'clipping': None})
    >>> path = write_data(data, Path(tempfile.mkdtemp()) / "quick.json")
    >>> read_data(path) == data
    True
"""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steadygrad.errors import ConfigError
from steadygrad.experiments.store import atomic_write_text

__all__ = ["FORMAT", "collect", "read_data", "rows_of", "study_data", "study_rows", "write_data"]

FORMAT = "steadygrad.results/1"
"""The ``format`` field of a results data file."""


def _csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        head = next(reader, [])
        return head, [row for row in reader]


def _environment(study_dir: Path) -> dict[str, Any]:
    """Versions, threads and the first run's start from the runs' ``summary.json`` files."""
    env: dict[str, Any] = {}
    starts = []
    for summary in sorted((study_dir / "runs").glob("*/summary.json")):
        try:
            data = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        versions = data.get("versions") or {}
        env.setdefault("torch", versions.get("torch"))
        env.setdefault("python", versions.get("python"))
        env.setdefault("threads", (data.get("threads") or {}).get("intra_op"))
        if isinstance(data.get("started"), int | float):
            starts.append(float(data["started"]))
    if starts:
        env["first_run"] = datetime.datetime.fromtimestamp(
            min(starts), datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return env


def _curves(study_dir: Path, metric: str = "val_accuracy") -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {}
    for hist in sorted((study_dir / "runs").glob("*/history.csv")):
        head, rows = _csv(hist)
        if metric not in head:
            continue
        i = head.index(metric)
        vals: list[float | None] = []
        for row in rows:
            try:
                vals.append(float(row[i]))
            except (ValueError, IndexError):
                vals.append(None)
        out[hist.parent.name] = vals
    return out


def _health(report_md: Path) -> dict[str, str]:
    """Config label -> health cell of the ranking table of a sweep's ``report.md``."""
    out: dict[str, str] = {}
    if not report_md.is_file():
        return out
    inside = False
    for line in report_md.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            inside = line.startswith("## Ranking")
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if inside and len(cells) > 3 and cells[0].isdigit():
            out[cells[1]] = cells[-1]
    return out


def study_rows(name: str, study_dir: Path) -> dict[str, Any]:
    """The rows (and, for batch_norm, the curves) of a study folder: what its common-wisdom
    check reads; empty rows when it has no results table."""
    sweep = (study_dir / "report" / "results.csv").is_file()
    table = study_dir / ("report/results.csv" if sweep else "results.csv")
    head, rows = _csv(table) if table.is_file() else ([], [])
    out: dict[str, Any] = {"kind": "sweep" if sweep else "custom", "columns": head,
                           "rows": rows}
    if name == "batch_norm":
        out["curves"] = _curves(study_dir)
    return out


def study_data(name: str, study_dir: Path) -> dict[str, Any]:
    """The raw results of one finished study (see the module docstring)."""
    info = json.loads((study_dir / "study.json").read_text(encoding="utf-8"))
    table = study_rows(name, study_dir)
    out: dict[str, Any] = {"kind": table.pop("kind"), "seconds": info.get("seconds"),
                           "conclusions": list(info.get("conclusions", [])),
                           "environment": _environment(study_dir), **table}
    if out["kind"] == "sweep":
        out["health"] = _health(study_dir / "report" / "report.md")
    return out


def collect(root: Path, *, mode: str, studies: Sequence[str], machine: str) -> dict[str, Any]:
    """The raw results of ``studies`` found under ``root`` (None for a study not run)."""
    found: dict[str, Any] = {}
    for name in studies:
        study_dir = Path(root) / f"{name}-{mode}"
        found[name] = study_data(name, study_dir) if (study_dir / "study.json").is_file() \
            else None
    return {"format": FORMAT, "mode": mode, "machine": machine, "studies": found}


def rows_of(study: dict[str, Any]) -> list[dict[str, str]]:
    """A study's rows as ``results.csv`` dicts (column -> text).

    >>> rows_of({"columns": ["a", "b"], "rows": [["1", "x"]]})
    [{'a': '1', 'b': 'x'}]
    """
    return [dict(zip(study["columns"], row, strict=True)) for row in study["rows"]]


def write_data(data: dict[str, Any], path: Path) -> Path:
    """Write ``data`` as compact JSON (one line per run row), atomically; returns the path."""
    lines = ["{", f'"format": {json.dumps(data["format"])},',
             f'"mode": {json.dumps(data["mode"])},',
             f'"machine": {json.dumps(data["machine"], ensure_ascii=False)},', '"studies": {']
    names = list(data["studies"])
    for i, name in enumerate(names):
        study = data["studies"][name]
        tail = "," if i < len(names) - 1 else ""
        if study is None:
            lines.append(f"{json.dumps(name)}: null{tail}")
            continue
        fields = [f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
                  for k, v in study.items() if k != "rows"]
        rows = ",\n".join(json.dumps(r, ensure_ascii=False) for r in study["rows"])
        lines.append(f"{json.dumps(name)}: {{" + ",\n".join(fields)
                     + f',\n"rows": [\n{rows}\n]}}{tail}')
    lines += ["}", "}"]
    return atomic_write_text(Path(path), "\n".join(lines) + "\n")


def read_data(path: Path) -> dict[str, Any]:
    """Read a results data file written by :func:`write_data`.

    Raises:
        ConfigError: the file is not JSON or not of this format.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(str(path), type(e).__name__, "a results data file (JSON)",
                          hint="write it with `steadygrad study --collect PAGE`") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"{path}: format", got, repr(FORMAT),
                          hint="write it with `steadygrad study --collect PAGE`")
    return data
