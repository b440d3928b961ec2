"""Run a built-in study: expand its sweep (variants x axes x seeds), run it, write the report.

:func:`expand` builds one :class:`~steadygrad.experiments.space.Sweep` whose runs carry the
setting ``study.setup = <variant>`` next to the swept axes, so the sweep report groups them by
setup; :func:`run_study` runs it with :func:`steadygrad.experiments.runner.run_sweep`, writes
the sweep report (HTML, CSV, Markdown, figures) with
:func:`steadygrad.experiments.report.write_report`, then the study's own conclusions and its
common-wisdom verdict (:mod:`steadygrad.studies.wisdom`), each sentence computed from the
results: ``study.md``, ``study.json`` and one self-contained ``study.html`` holding the
conclusions, the verdict and the sweep report's tables and figures.

Example:
    >>> from steadygrad.studies.registry import load_spec
    >>> sweep = expand(load_spec("clipping"))
    >>> len(sweep.runs), sweep.runs[0].name
    (8, 'setup=none-seed=0')
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steadygrad.errors import ConfigError
from steadygrad.experiments.config import config_from_dict, config_to_dict
from steadygrad.experiments.loader import apply_overrides, set_key
from steadygrad.experiments.space import PlannedRun, Sweep, sweep_from_dict
from steadygrad.experiments.store import atomic_write_json, atomic_write_text, sanitize_name

__all__ = ["StudyResult", "expand", "run_study", "study_section_html", "write_sweep_report"]

SETUP_KEY = "study.setup"


def expand(spec: Mapping[str, Any], seeds: int | None = None,
           overrides: Sequence[str] = ()) -> Sweep:
    """The study's sweep: every variant crossed with the axes and seeds (validated up front).

    Args:
        spec: a study table from :func:`~steadygrad.studies.registry.load_spec`.
        seeds: use seeds ``0..seeds-1`` instead of the file's.
        overrides: ``--set`` items (``"train.epochs=1"``) applied to the base of every run
            (variants and axes still override them).

    Example:
        >>> from steadygrad.studies.registry import load_spec
        >>> sweep = expand(load_spec("depth"), seeds=1, overrides=["train.epochs=1"])
        >>> sweep.name, len(sweep.runs)  # 4 setups x 4 depths x 1 seed
        ('depth-quick', 16)
        >>> run = sweep.runs[0]
        >>> run.name, run.settings, run.config.train.epochs
        ('setup=sigmoid_glorot-depth=2-seed=0', (('study.setup', 'sigmoid_glorot'), \
('model.depth', 2), ('train.seed', 0)), 1)
        >>> expand(load_spec("depth"), overrides=["train.epochs=0"])
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: train.epochs: got 0; expected an integer >= 1; \
study variant sigmoid_glorot
    """
    raw = json.loads(json.dumps(spec["sweep"]))
    raw["base"] = apply_overrides(raw.get("base", {}), overrides)
    raw["name"] = f"{spec['name']}-{spec.get('mode', 'quick')}"
    if seeds is not None:
        raw["seeds"] = list(range(seeds))
    variants: dict[str, dict[str, Any]] = dict(spec.get("variants") or {}) or {"": {}}
    runs: list[PlannedRun] = []
    for vname, patch in variants.items():
        sub = json.loads(json.dumps(raw))
        for key, value in patch.items():
            set_key(sub["base"], key, value)
        try:
            part = sweep_from_dict(sub)
        except ConfigError as err:
            where = f"study variant {vname}" if vname else "study"
            raise err.__class__(err.path, err.received, err.expected,
                                f"{err.hint}; {where}" if err.hint else where) from None
        for run in part.runs:
            settings = ((SETUP_KEY, vname), *run.settings) if vname else run.settings
            name = sanitize_name(f"setup={vname}-{run.name}" if vname else run.name)
            config = config_from_dict({**config_to_dict(run.config), "name": name})
            runs.append(PlannedRun(len(runs), run.run_id, name, tuple(settings), config))
    spec_out = {"name": raw["name"], "seeds": raw.get("seeds", [0]), "study": spec["name"],
                "mode": spec.get("mode", "quick"), "variants": variants,
                "axes": raw.get("axes", {})}
    return Sweep(raw["name"], spec_out, tuple(runs))


@dataclass(frozen=True)
class StudyResult:
    """A finished study: where it is, its conclusions and the files written.

    Example:
        >>> StudyResult("depth", "quick", Path("studies/depth-quick"), ["..."], {}).mode
        'quick'
    """

    name: str
    mode: str
    sweep_dir: Path
    conclusions: list[str] = field(hash=False)
    files: dict[str, str] = field(hash=False)
    seconds: float = 0.0


def study_section_html(question: str, conclusions: Sequence[str], verdict: str | None,
                       mode: str) -> str:
    """The study's question, computed conclusions and common-wisdom verdict as HTML.

    >>> "<li>a &lt; b</li>" in study_section_html("Q?", ["a < b"], None, "quick")
    True
    """
    e = html.escape
    items = "".join(f"<li>{e(s)}</li>" for s in conclusions)
    box = "background:#f0f6ff;border-left:4px solid #2f6fde;padding:10px 14px"
    check = (f"<h2>Checked against common wisdom</h2><p style='{box}'>{e(verdict)}</p>"
             if verdict else "")
    return (f"<p><i>{e(question)}</i> ({e(mode)} mode)</p>"
            f"<h2>Conclusions (computed from the results)</h2><ul class='summary'>{items}</ul>"
            f"{check}")


def _study_page(report_html: str, title: str, section: str) -> str:
    """One page per study: the sweep report (tables, figures) under the study's section."""
    head, sep, rest = report_html.partition("</h1>")
    if not sep:  # not the expected page: a plain one
        from steadygrad.experiments.run_report import page

        return page(title, section)
    head = head[: head.rfind("<h1>")] + f"<h1>{html.escape(title)}</h1>"
    return head + section + "<h2>The sweep behind it</h2><div>" + rest.lstrip() + "</div>"


def write_sweep_report(report: Any, out: Path) -> dict[str, str]:
    """:func:`~steadygrad.experiments.report.write_report`; without figures if plotting fails.

    The tables and sentences do not depend on the figures, so a plotting error (recorded as
    ``files["figures_error"]``) does not cost the report.

    Example:
        >>> from steadygrad.experiments.report import SweepReport
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> files = write_sweep_report(SweepReport("s", d, "val_accuracy", (), (), ()), d)
        >>> sorted(k for k in files if k in ("csv", "html", "markdown"))
        ['csv', 'html', 'markdown']
    """
    from steadygrad.experiments.report import results_csv, write_report
    from steadygrad.experiments.report_html import render_html, render_markdown

    try:
        return {k: str(v) for k, v in write_report(report.sweep_dir, out,
                                                   report=report).items()}
    except Exception as err:
        files = {"figures_error": f"{type(err).__name__}: {err}"}
        files["csv"] = str(atomic_write_text(out / "results.csv", results_csv(report)))
        files["markdown"] = str(atomic_write_text(out / "report.md",
                                                  render_markdown(report, {})))
        files["html"] = str(atomic_write_text(out / "report.html", render_html(report, {})))
        return files


def run_study(name: str, *, full: bool = False, out_dir: str | Path = "studies",
              seeds: int | None = None, workers: int = 1, resume: bool = False,
              overrides: Sequence[str] = (),
              on_sweep: Callable[[Path, int], AbstractContextManager[Any]] | None = None
              ) -> StudyResult:
    """Run study ``name`` into ``out_dir/<name>-<quick|full>/`` and write its reports.

    Args:
        name: a registered study (``steadygrad.studies.STUDIES``).
        full: the classic full-size setup (Fashion-MNIST, hours on a CPU) instead of quick.
        out_dir: the results root.
        seeds: number of seeds (``0..seeds-1``) instead of the study's own.
        workers: sweep worker processes (one torch thread each: the nets are small, and
            more threads only contend).
        resume: continue an interrupted study (sweep studies only; a custom-run study
            such as ``transfer`` always starts over, and runs in this process).
        overrides: ``--set`` items applied to every run's base config (e.g. a smaller
            budget); the sweep folder is then named ``<name>-<mode>-custom``.
        on_sweep: ``on_sweep(sweep_dir, runs)`` returns a context manager entered while the
            sweep runs (the CLI's live progress line).

    Raises:
        UnknownNameError: unknown study name.
        ConfigError: bad arguments, or the study folder exists without ``resume``.

    Example:
        >>> import tempfile
        >>> result = run_study("clipping", seeds=1, out_dir=tempfile.mkdtemp(),
        ...                    overrides=["train.epochs=1"])  # doctest: +SKIP
        >>> result.conclusions[0]  # doctest: +SKIP
        'Measured ranking (fewest diverged runs first, then mean val_accuracy ...'
    """
    from steadygrad.experiments.report import build_report
    from steadygrad.experiments.runner import run_sweep
    from steadygrad.studies.registry import STUDIES, load_spec

    study = STUDIES.get(name)
    if seeds is not None and (isinstance(seeds, bool) or not isinstance(seeds, int)
                              or seeds < 1):
        raise ConfigError("seeds", seeds, "an integer >= 1")
    spec = load_spec(study.name, full=full)
    if study.run is not None:  # not a config sweep (workers and resume do not apply)
        custom: StudyResult = study.run(spec, Path(out_dir), seeds, tuple(overrides))
        return custom
    sweep = expand(spec, seeds, overrides)
    if overrides:
        sweep = Sweep(f"{sweep.name}-custom", {**sweep.spec, "name": f"{sweep.name}-custom",
                                               "overrides": list(overrides)}, sweep.runs)
    started = time.time()
    watch = (on_sweep(Path(out_dir).resolve() / sweep.name, len(sweep.runs))
             if on_sweep is not None else nullcontext())
    with watch:
        result = run_sweep(sweep, out_dir, workers=workers, resume=resume, threads=1)
    sweep_dir = Path(result.sweep_dir)
    report = build_report(sweep_dir, spec.get("metric"))
    files = write_sweep_report(report, sweep_dir / "report")
    conclusions = study.analyze(report, spec)
    seconds = time.time() - started
    conclusions.append(f"{len(report.runs)} runs ({report.count('done')} done, "
                       f"{report.count('diverged')} diverged, {report.count('failed')} failed) "
                       f"in {seconds:.0f} s, {spec['mode']} mode.")
    md = [f"# {spec['title']}", "", f"*{spec['question']}* ({spec['mode']} mode)", "",
          "## Conclusions (computed from the results)", ""]
    md += [f"- {s}" for s in conclusions]
    md += ["", "Tables, curves and gradient profiles: [report/report.md](report/report.md).",
           ""]
    files["study_md"] = str(atomic_write_text(sweep_dir / "study.md", "\n".join(md)))
    from steadygrad.studies.results_doc import wisdom_verdict

    verdict = wisdom_verdict(study.name, sweep_dir, spec)
    if verdict:
        md[-3:-3] = ["", f"**Checked against common wisdom.** {verdict}"]
        files["study_md"] = str(atomic_write_text(sweep_dir / "study.md", "\n".join(md)))
    section = study_section_html(spec["question"], conclusions, verdict, spec["mode"])
    report_page = Path(files["html"]).read_text(encoding="utf-8")
    files["study_html"] = str(atomic_write_text(
        sweep_dir / "study.html", _study_page(report_page, spec["title"], section)))
    files["study_json"] = str(atomic_write_json(sweep_dir / "study.json", {
        "study": study.name, "mode": spec["mode"], "conclusions": conclusions,
        "verdict": verdict, "seconds": seconds}))
    return StudyResult(study.name, spec["mode"], sweep_dir, conclusions, files, seconds)
