"""Collect finished studies into one Markdown page (``docs/results.md``).

:func:`write_results` reads every ``<root>/<name>-<mode>/`` that :func:`run_study` left (its
``study.json`` conclusions, its results table, its main figure, and the environment that each
run recorded in ``summary.json``), adds the common-wisdom check of
:mod:`steadygrad.studies.wisdom`, copies the figures next to the page and writes the page
atomically. Studies that have not been run are listed as missing, never filled in.

Example:
    >>> import tempfile
    >>> root, out = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    >>> page = write_results(root, out / "results.md", mode="full", studies=["clipping"])
    >>> "not run yet" in page.read_text()
    True
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steadygrad.experiments.store import atomic_write_text
from steadygrad.studies.registry import STUDIES, load_spec
from steadygrad.studies.wisdom import CHECKS, check

__all__ = ["ORDER", "cpu_model", "study_section", "write_results"]

ORDER = ("unstable_gradients", "initializers", "activations", "batch_norm", "clipping",
         "optimizers", "schedules", "regularization", "depth", "transfer", "pretraining")
"""The studies in the order of the page (the order of the issue that asked for them)."""

_FIGURES = {"transfer": "transfer.png", "pretraining": "pretraining.png"}


def cpu_model() -> str:
    """This machine's CPU model name (``/proc/cpuinfo``), else ``platform.processor()``.

    >>> isinstance(cpu_model(), str)
    True
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _section(text: str, heading: str) -> str:
    """The body of ``## heading...`` in a Markdown text (up to the next ``## ``)."""
    lines, out, inside = text.splitlines(), [], False
    for line in lines:
        if line.startswith("## "):
            if inside:
                break
            inside = line[3:].startswith(heading)
            continue
        if inside:
            out.append(line)
    return "\n".join(out).strip()


def _environment(study_dir: Path) -> dict[str, Any]:
    """Versions, threads, platform and time span from the runs' ``summary.json`` files."""
    env: dict[str, Any] = {}
    starts = []
    for summary in sorted((study_dir / "runs").glob("*/summary.json")):
        try:
            data = json.loads(summary.read_text())
        except (OSError, ValueError):
            continue
        env.setdefault("versions", data.get("versions"))
        env.setdefault("platform", data.get("platform"))
        env.setdefault("threads", data.get("threads"))
        if isinstance(data.get("started"), int | float):
            starts.append(float(data["started"]))
    if starts:
        env["first_run"] = datetime.datetime.fromtimestamp(
            min(starts), datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return env


def _curves(study_dir: Path, metric: str = "val_accuracy") -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for hist in (study_dir / "runs").glob("*/history.csv"):
        vals = []
        for row in _rows(hist):
            try:
                vals.append(float(row.get(metric, "nan")))
            except ValueError:
                vals.append(float("nan"))
        out[hist.parent.name] = vals
    return out


def wisdom_verdict(name: str, study_dir: Path, spec: dict[str, Any]) -> str | None:
    """The common-wisdom sentence of a finished study (:func:`steadygrad.studies.wisdom.check`
    on its ``results.csv``), or None without results."""
    sweep = (study_dir / "report" / "results.csv").is_file()
    rows = _rows(study_dir / ("report/results.csv" if sweep else "results.csv"))
    if not rows or name not in CHECKS:
        return None
    extra: dict[str, Any] = {}
    if name == "batch_norm":
        extra = {"curves": _curves(study_dir), "target": float(spec.get("target", 0.85))}
    elif name == "depth":
        extra = {"target": float(spec.get("target", 0.8))}
    return check(name, rows, **extra)


def study_section(name: str, study_dir: Path, images: Path, page_dir: Path, *,
                  mode: str = "full") -> str:
    """The Markdown section of one finished study (figures copied into ``images``).

    Args:
        name: the study's registered name.
        study_dir: its results folder (``<root>/<name>-<mode>``).
        images: where to copy its figure.
        page_dir: the folder of the page (figure links are relative to it).
        mode: ``full`` or ``quick`` (the command shown).
    """
    spec = load_spec(name, full=mode == "full")
    info = json.loads((study_dir / "study.json").read_text())
    flag = " --full" if mode == "full" else ""
    cli = name.replace("_", "-")
    lines = [f"## {spec.get('title', name)}", "", f"*{spec.get('question', '')}*", "",
             f"Command: `STEADYGRAD_DATA=<folder with fashion-mnist.npz> steadygrad study "
             f"{cli}{flag}` ({info.get('seconds', 0) / 60:.1f} min)."]
    env = _environment(study_dir)
    if env:
        versions = env.get("versions") or {}
        threads = (env.get("threads") or {}).get("intra_op")
        lines.append(f"Runs started {env.get('first_run', '?')}; torch {versions.get('torch')}, "
                     f"Python {versions.get('python')}, {threads} torch thread(s) per run.")
    lines += ["", "**Conclusions (computed from the results):**", ""]
    lines += [f"- {s}" for s in info.get("conclusions", [])]
    sweep = (study_dir / "report" / "results.csv").is_file()
    verdict = wisdom_verdict(name, study_dir, spec)
    if verdict:
        lines += ["", f"**Checked against common wisdom.** {verdict}"]
    if sweep:
        report = (study_dir / "report" / "report.md").read_text()
        table = _section(report, "Ranking")
        if table:
            lines += ["", "**Ranking (mean ± std over seeds):**", "", table]
        figure = study_dir / "report" / "curves.png"
    else:
        table = _section((study_dir / "study.md").read_text(), "Test accuracy")
        table = "\n".join(t for t in table.splitlines() if not t.startswith("!["))
        if table:
            lines += ["", table.strip()]
        figure = study_dir / _FIGURES.get(name, "")
    if figure.is_file():
        images.mkdir(parents=True, exist_ok=True)
        target = images / f"{name}-{mode}.png"
        shutil.copyfile(figure, target)
        rel = target.relative_to(page_dir) if target.is_relative_to(page_dir) else target
        lines += ["", f"![{spec.get('title', name)}]({rel.as_posix()})"]
    return "\n".join(lines) + "\n"


def write_results(root: str | Path, out: str | Path, *, mode: str = "full",
                  studies: Sequence[str] = ORDER, images: str | Path | None = None,
                  machine: str | None = None) -> Path:
    """Write the results page of the studies found under ``root``; returns its path.

    Args:
        root: the folder given to ``steadygrad study --out``.
        out: the page to write (replaced atomically).
        mode: ``full`` or ``quick``: which result folders to read.
        studies: study names, in page order.
        images: where figures go (default ``<out's folder>/images/results``).
        machine: a sentence describing the machine; default: this machine's CPU model and
            core count (run this on the machine that ran the studies).
    """
    root, out = Path(root), Path(out)
    page_dir = out.parent
    images = Path(images) if images is not None else page_dir / "images" / "results"
    if machine is None:
        machine = f"{cpu_model()}, {os.cpu_count()} cores, no GPU"
    body, missing = [], []
    for name in studies:
        STUDIES.get(name)  # unknown names fail with the list of studies
        study_dir = root / f"{name}-{mode}"
        if not (study_dir / "study.json").is_file():
            missing.append(name)
            continue
        body.append(study_section(name, study_dir, images, page_dir, mode=mode))
    head = [f"# Study results ({mode} mode)", "",
            "Every number below was measured by `steadygrad study NAME"
            + (" --full" if mode == "full" else "") + "` and every sentence is computed "
            "from those numbers (the study's analysis and "
            "`steadygrad.studies.wisdom`); nothing is written in advance. A *contradicted* "
            "verdict means the measurement here disagrees with the common claim stated "
            "before it.", "", f"Machine: {machine}.", "",
            "Regenerate: run each study as its section says (`--out DIR`), then "
            f"`steadygrad study{' --full' if mode == 'full' else ''} --out DIR --collect "
            f"{out.name}` writes this page and copies the figures.", ""]
    if missing:
        head += [f"Studies not run yet: {', '.join(missing)} (their results are not shown).",
                 ""]
    return atomic_write_text(out, "\n".join(head) + "\n" + "\n".join(body))
