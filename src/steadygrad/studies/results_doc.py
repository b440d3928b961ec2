"""Collect finished studies into one Markdown page (``docs/results.md``) and its raw data.

:func:`write_results` reads every ``<root>/<name>-<mode>/`` that :func:`run_study` left into
one compact data file (:mod:`steadygrad.studies.results_data`: per-run rows, conclusions,
environment), copies the figures next to the page, and writes the page that
:func:`render_page` makes from the data file alone. The page's tables and common-wisdom
verdicts are computed from the rows by :mod:`steadygrad.studies.wisdom` and one rounding rule
(:func:`steadygrad.studies.wisdom.fmt_stat`: mean ± std to 3 decimals, the rule of the
conclusions), so the committed data regenerates the committed page
(``python -m steadygrad.studies.results_doc DATA PAGE``). Studies that have not been run are
listed as missing, never filled in.

Example:
    >>> import tempfile
    >>> root, out = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    >>> page = write_results(root, out / "results.md", mode="full", studies=["clipping"])
    >>> "not run yet" in page.read_text()
    True
    >>> (out / "results-data" / "full.json").is_file()
    True
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from steadygrad.experiments.report import mean_std
from steadygrad.experiments.store import atomic_write_text
from steadygrad.studies.registry import STUDIES, load_spec
from steadygrad.studies.results_data import collect, read_data, rows_of, study_rows, write_data
from steadygrad.studies.wisdom import CHECKS, check, fmt_stat

__all__ = ["ORDER", "cpu_model", "main", "ranking_table", "render_page", "study_section",
           "write_results"]

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


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def wisdom_verdict(name: str, study: Mapping[str, Any] | Path,
                   spec: Mapping[str, Any]) -> str | None:
    """The common-wisdom sentence of a study (:func:`steadygrad.studies.wisdom.check` on its
    rows), or None without rows. ``study`` is its entry of a data file, or its folder."""
    if isinstance(study, Path):
        study = study_rows(name, study)
    rows = rows_of(dict(study))
    if not rows or name not in CHECKS:
        return None
    extra: dict[str, Any] = {}
    if name == "batch_norm":
        curves = {run: [float("nan") if v is None else float(v) for v in vals]
                  for run, vals in study.get("curves", {}).items()}
        extra = {"curves": curves, "target": float(spec.get("target", 0.85))}
    elif name == "depth":
        extra = {"target": float(spec.get("target", 0.8))}
    return check(name, rows, **extra)


_SHOWN = ("val_loss", "loss", "accuracy")


def ranking_table(study: Mapping[str, Any], metric: str) -> list[str]:
    """The ranking of a sweep study's configurations, computed from its rows: mean ± std over
    the seeds of ``metric`` and of val_loss, loss and accuracy (:func:`fmt_stat`), finished
    seeds, run statuses and the sweep report's health label. Configs with a finished run come
    first, by mean ``metric`` (higher first; loss-like metrics lower first).

    Example:
        >>> study = {"columns": ["run", "model.activation", "seed", "status", "val_accuracy"],
        ...          "rows": [["a", "relu", "0", "done", "0.9"], ["b", "relu", "1", "done", "0.8"],
        ...                   ["c", "tanh", "0", "diverged", ""]], "health": {}}
        >>> print("\\n".join(ranking_table(study, "val_accuracy")))
        | # | config | val_accuracy | seeds | runs | health |
        |---|---|---|---|---|---|
        | 1 | activation=relu | 0.850 ± 0.071 | 2/2 | 2 done | - |
        | 2 | activation=tanh | - | 0/1 | 1 diverged | - |
    """
    columns = list(study["columns"])
    axes = columns[columns.index("run") + 1:columns.index("seed")]
    shown = [metric] + [c for c in _SHOWN if c in columns and c != metric]
    groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for row in rows_of(dict(study)):
        groups.setdefault(tuple(row[a] for a in axes), []).append(row)
    lower = "loss" in metric or "error" in metric
    table = []
    for key, rows in groups.items():
        label = ", ".join(f"{a.rsplit('.', 1)[-1]}={v}" for a, v in zip(axes, key, strict=True))
        stats = {c: mean_std([v for r in rows if (v := _num(r.get(c, ""))) is not None])
                 for c in shown}
        statuses: dict[str, int] = {}
        for r in rows:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        finished = sum(_num(r.get(metric, "")) is not None for r in rows)
        table.append((stats[metric][0], label, stats, finished, len(rows), statuses))
    table.sort(key=lambda t: (t[0] is None, 0.0 if t[0] is None else (t[0] if lower else -t[0])))
    health = study.get("health", {})
    out = ["| # | config | " + " | ".join(shown) + " | seeds | runs | health |",
           "|" + "---|" * (len(shown) + 5)]
    for i, (_, label, stats, finished, total, statuses) in enumerate(table, 1):
        cells = ["-" if stats[c][0] is None else fmt_stat(float(stats[c][0] or 0.0),
                                                           stats[c][1]) for c in shown]
        runs = ", ".join(f"{n} {s}" for s, n in statuses.items())
        out.append(f"| {i} | {label} | " + " | ".join(cells)
                   + f" | {finished}/{total} | {runs} | {health.get(label, '-')} |")
    return out


def _custom_table(name: str, study: Mapping[str, Any]) -> list[str]:
    """The test-accuracy table of the transfer or pretraining study, from its rows."""
    rows: list[dict[str, Any]] = []
    for r in rows_of(dict(study)):
        typed: dict[str, Any] = dict(r)
        for k in ("seed", "labels"):
            if k in typed:
                typed[k] = int(typed[k])
        for k in ("test_accuracy", "test_error"):
            if k in typed:
                typed[k] = float(typed[k])
        if "source_unchanged" in typed:
            typed["source_unchanged"] = typed["source_unchanged"] == "True"
        rows.append(typed)
    if name == "transfer":
        from steadygrad.studies.transfer_study import summarize as transfer_summary

        summary = transfer_summary(rows)
        return ["| pair | method | test accuracy |", "|---|---|---|"] + [
            f"| {p} | {m} | {s[m][0]:.4f} ± {s[m][1]:.4f} |"
            for p, s in summary.items() for m in ("scratch", "transfer")]
    from steadygrad.studies.pretraining_study import summarize as pretraining_summary

    stats = pretraining_summary(rows)
    budgets = sorted({r["labels"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    return ["| method | " + " | ".join(f"{n} labels" for n in budgets) + " |",
            "|" + "---|" * (len(budgets) + 1)] + [
        "| " + m + " | " + " | ".join(f"{stats[m, n][0]:.4f} ± {stats[m, n][1]:.4f}"
                                      for n in budgets) + " |" for m in methods]


def study_section(name: str, study: Mapping[str, Any], *, mode: str = "full",
                  image: str | None = None) -> str:
    """The Markdown section of one study, from its raw data (:mod:`results_data`).

    Args:
        name: the study's registered name.
        study: its entry of the data file.
        mode: ``full`` or ``quick`` (the command shown).
        image: the figure's path relative to the page, if it has one.
    """
    spec = load_spec(name, full=mode == "full")
    flag = " --full" if mode == "full" else ""
    cli = name.replace("_", "-")
    lines = [f"## {spec.get('title', name)}", "", f"*{spec.get('question', '')}*", "",
             f"Command: `STEADYGRAD_DATA=<folder with fashion-mnist.npz> steadygrad study "
             f"{cli}{flag}` ({(study.get('seconds') or 0) / 60:.1f} min)."]
    env = study.get("environment") or {}
    if env:
        lines.append(f"Runs started {env.get('first_run', '?')}; torch {env.get('torch')}, "
                     f"Python {env.get('python')}, {env.get('threads')} torch thread(s) per "
                     "run.")
    lines += ["", "**Conclusions (computed from the results):**", ""]
    lines += [f"- {s}" for s in study.get("conclusions", [])]
    verdict = wisdom_verdict(name, study, spec)
    if verdict:
        lines += ["", f"**Checked against common wisdom.** {verdict}"]
    if study.get("kind") == "sweep":
        metric = str(spec.get("metric", "val_accuracy"))
        lines += ["", "**Ranking (mean ± std over seeds):**", "",
                  *ranking_table(study, metric)]
    else:
        lines += ["", *_custom_table(name, study)]
    if image is not None:
        lines += ["", f"![{spec.get('title', name)}]({image})"]
    return "\n".join(lines) + "\n"


def _image_name(name: str, mode: str) -> str:
    return f"{name}-{mode}.png"


def render_page(data: Mapping[str, Any], page_name: str = "results.md", *,
                images: str = "images/results", data_path: str = "results-data") -> str:
    """The results page made from a data file's content alone (no study folder is read).

    Args:
        data: a :func:`steadygrad.studies.results_data.read_data` result.
        page_name: the page's file name (shown in the regeneration command).
        images: the figures' folder, relative to the page.
        data_path: the data files' folder, relative to the page.
    """
    mode = str(data["mode"])
    flag = " --full" if mode == "full" else ""
    body, missing = [], []
    for name, study in data["studies"].items():
        STUDIES.get(name)  # unknown names fail with the list of studies
        if study is None:
            missing.append(name)
            continue
        image = f"{images}/{_image_name(name, mode)}" if study.get("figure") else None
        body.append(study_section(name, study, mode=mode, image=image))
    head = [f"# Study results ({mode} mode)", "",
            f"Every number below was measured by `steadygrad study NAME{flag}` and every "
            "sentence is computed from those numbers (the study's analysis and "
            "`steadygrad.studies.wisdom`); nothing is written in advance. A *contradicted* "
            "verdict means the measurement here disagrees with the common claim stated "
            "before it. Means and standard deviations are over seeds (sample std); with 2 or "
            "3 seeds a std is a spread, not a confidence interval, and verdicts use the noise "
            "rule of `steadygrad.studies.wisdom` (a gap counts only beyond the summed stds). "
            "One rounding rule per quantity: the sweep studies' accuracies and losses to 3 "
            "decimals (sentences and ranking tables); the transfer and pretraining studies' "
            "test accuracies to 4 decimals, error rates to 0.01 %, reductions to 0.1 % and "
            "gains to 0.1 point.", "",
            f"Machine: {data['machine']}.", "",
            f"Raw results: `{data_path}/{mode}.json` (every run's row, the conclusions and "
            "the environment). Regenerate this page from them: `python -m "
            f"steadygrad.studies.results_doc {data_path}/{mode}.json {page_name}` (run in "
            "the page's folder); from new runs: run each study as its section says "
            f"(`--out DIR`), then `steadygrad study{flag} --out DIR --collect {page_name}` "
            "writes the data file, the figures and this page.", ""]
    if missing:
        head += [f"Studies not run yet: {', '.join(missing)} (their results are not shown).",
                 ""]
    return "\n".join(head) + "\n" + "\n".join(body)


def _figure(name: str, study_dir: Path) -> Path | None:
    if (study_dir / "report" / "results.csv").is_file():
        path = study_dir / "report" / "curves.png"
    else:
        path = study_dir / _FIGURES.get(name, "-")
    return path if path.is_file() else None


def write_results(root: str | Path, out: str | Path, *, mode: str = "full",
                  studies: Sequence[str] = ORDER, images: str | Path | None = None,
                  machine: str | None = None) -> Path:
    """Collect the studies found under ``root`` into ``<out's folder>/results-data/<mode>.json``,
    copy their figures and write the page made from that data; returns the page's path.

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
    for name in studies:
        STUDIES.get(name)  # unknown names fail with the list of studies
    data = collect(root, mode=mode, studies=list(studies), machine=machine)
    for name, study in data["studies"].items():
        figure = _figure(name, root / f"{name}-{mode}") if study is not None else None
        if study is not None:
            study["figure"] = figure is not None
        if figure is not None:
            images.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(figure, images / _image_name(name, mode))
    write_data(data, page_dir / "results-data" / f"{mode}.json")
    rel = images.relative_to(page_dir) if images.is_relative_to(page_dir) else images
    return atomic_write_text(out, render_page(data, out.name, images=rel.as_posix()))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m steadygrad.studies.results_doc DATA PAGE``: write PAGE from DATA alone.

    Example:
        >>> import tempfile
        >>> from steadygrad.studies.results_data import collect, write_data
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = write_data(collect(d, mode="quick", studies=["depth"], machine="m"),
        ...                d / "quick.json")
        >>> main([str(d / "quick.json"), str(d / "results.md")])
        0
        >>> "Studies not run yet: depth" in (d / "results.md").read_text()
        True
    """
    parser = argparse.ArgumentParser(prog="python -m steadygrad.studies.results_doc",
                                     description="Regenerate a results page from its raw "
                                     "results data file.")
    parser.add_argument("data", help="results data file (results-data/<mode>.json)")
    parser.add_argument("page", help="the page to write")
    parser.add_argument("--images", default="images/results",
                        help="figures' folder relative to the page (default images/results)")
    args = parser.parse_args(argv)
    data = read_data(Path(args.data))
    page = Path(args.page)
    rel = os.path.relpath(Path(args.data).resolve().parent, page.resolve().parent)
    atomic_write_text(page, render_page(data, page.name, images=args.images,
                                        data_path=Path(rel).as_posix()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
