"""Sweep reports: rank configs over seeds, and write HTML, CSV and Markdown from a sweep folder.

:func:`build_report` reads a sweep directory (``sweep.json``, ``index.sqlite`` and every
``runs/<name>/`` with its ``summary.json``, ``history.csv`` and ``health.json``) into a
:class:`SweepReport`: one :class:`RunRecord` per run and one :class:`ConfigResult` per config
(the runs that differ only in ``train.seed``), ranked by the mean of the validation metric.
:func:`write_report` writes ``report.html`` (self-contained: inline CSS, figures as base64
data URIs, no external URL), ``results.csv`` (one row per run), ``report.md`` and the figures
as PNG files, each atomically.

Every sentence of the report is computed from the numbers (:meth:`SweepReport.sentences`);
the spread is the sample standard deviation over seeds (``ddof=1``; ``None`` for one seed).

Example:
    >>> mean_std([0.9, 0.92, 0.94])
    (0.92, 0.02)
    >>> mean_std([0.5]), mean_std([])
    ((0.5, None), (None, None))
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steadygrad.errors import ConfigError
from steadygrad.experiments.report_io import (
    check_health,
    confined,
    index_states,
    load_json,
    read_history_csv,
    read_sweep_json,
    results_csv,
    run_folder,
    sanitize_summary,
)

__all__ = [
    "ConfigResult",
    "FindingSummary",
    "RunRecord",
    "SweepReport",
    "build_report",
    "choose_metric",
    "mean_std",
    "read_history_csv",
    "results_csv",
    "summarize",
    "write_report",
]

SEED_KEY = "train.seed"
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n-1) of the finite values; None where undefined.

    Example:
        >>> mean, std = mean_std([1.0, 2.0, float("nan"), 3.0])  # NaN ignored
        >>> mean, std
        (2.0, 1.0)
        >>> mean_std([float("inf"), 4.0])
        (4.0, None)
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None, None
    mean = statistics.fmean(finite)
    std = statistics.stdev(finite) if len(finite) > 1 else None
    return mean, std


@dataclass(frozen=True)
class RunRecord:
    """One run of a sweep as found on disk.

    Attributes:
        name: the run name (its folder under ``runs/``).
        settings: the swept values of this run, ``train.seed`` excluded.
        seed: its ``train.seed``.
        status: ``done``, ``diverged``, ``failed``, ``pending`` or ``running``.
        final: the last epoch's logged values.
        seconds_per_epoch: mean training time of an epoch.
        history: per-epoch values (``history.csv``).
        health: the ``steadygrad.health/1`` document, when diagnostics were on.
        diverged: the summary's divergence entry (step, kind, first faulty layer).
        error: the last line of a failed run's traceback.

    Example:
        >>> RunRecord("a=1-seed=0", (("model.a", 1),), 0, "done").label
        'a=1'
    """

    name: str
    settings: tuple[tuple[str, Any], ...]
    seed: int | None
    status: str
    final: dict[str, Any] | None = None
    seconds_per_epoch: float | None = None
    history: dict[str, list[float]] | None = None
    health: dict[str, Any] | None = None
    diverged: dict[str, Any] | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        """The config's label: the swept values without the seed (``"base"`` when none)."""
        return config_label(self.settings)


def config_label(settings: Sequence[tuple[str, Any]]) -> str:
    """``"activation=relu, learning_rate=0.01"`` from dotted settings (``"base"`` if empty).

    >>> config_label([("model.activation", "relu"), ("train.optimizer.learning_rate", 0.01)])
    'activation=relu, learning_rate=0.01'
    """
    if not settings:
        return "base"
    return ", ".join(f"{key.rsplit('.', 1)[-1]}={_text(value)}" for key, value in settings)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


@dataclass(frozen=True)
class FindingSummary:
    """One gradient-health finding kind of a config, counted over its monitored runs.

    Example:
        >>> FindingSummary("dead_units", "warning", 2, 3, ("fc1",), "...", None).share
        '2/3'
    """

    kind: str
    severity: str
    runs: int
    monitored: int
    layers: tuple[str, ...]
    message: str
    remedy: str | None

    @property
    def share(self) -> str:
        """``"runs/monitored"``."""
        return f"{self.runs}/{self.monitored}"


@dataclass(frozen=True)
class ConfigResult:
    """The runs of one config (all seeds) and their aggregate.

    Attributes:
        label: the config's label; ``settings`` its swept values.
        runs: its runs, in sweep order.
        mean, std: mean and sample std of the ranking metric's final value over the finished
            (``done``) runs that logged it (``std`` is None with fewer than two).
        n: the number of those runs.
        seconds_per_epoch: mean time per epoch over its runs.
        findings: its gradient-health findings, most severe first.

    Example:
        >>> runs = [RunRecord(f"r{s}", (("model.activation", "relu"),), s, status,
        ...                   final={"val_loss": v}, seconds_per_epoch=0.5)
        ...         for s, status, v in [(0, "done", 0.4), (1, "done", 0.6), (2, "diverged", 9.0)]]
        >>> config = summarize(runs, "val_loss")[0]  # the diverged run is not averaged
        >>> config.label, round(config.mean, 3), round(config.std, 3), config.n
        ('activation=relu', 0.5, 0.141, 2)
        >>> config.count("done"), config.count("diverged"), config.seconds_per_epoch
        (2, 1, 0.5)
    """

    label: str
    settings: tuple[tuple[str, Any], ...]
    runs: tuple[RunRecord, ...]
    mean: float | None
    std: float | None
    n: int
    seconds_per_epoch: float | None
    seconds_std: float | None
    findings: tuple[FindingSummary, ...]

    def count(self, status: str) -> int:
        """How many of its runs have ``status``."""
        return sum(r.status == status for r in self.runs)


def _findings(runs: Sequence[RunRecord]) -> tuple[FindingSummary, ...]:
    monitored = [r for r in runs if r.health is not None]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in monitored:
        seen = set()
        for f in (run.health or {}).get("findings", []):
            key = (f["kind"], f["severity"])
            groups.setdefault(key, [])
            if key not in seen:  # count a run once per kind and severity
                groups[key].append(f)
                seen.add(key)
    out = []
    for (kind, severity), items in groups.items():
        layers: list[str] = []
        for f in items:
            layers += [x for x in f.get("layers", []) if x not in layers]
        remedies = items[0].get("remedies") or []
        remedy = None
        if remedies:
            patch = ", ".join(f"{k}={_text(v)}" for k, v in remedies[0].get("patch", {}).items())
            remedy = f"{patch} ({remedies[0].get('why', '')})"
        out.append(FindingSummary(kind, severity, len(items), len(monitored), tuple(layers),
                                  items[0].get("message", ""), remedy))
    out.sort(key=lambda f: (_SEVERITY_ORDER.get(f.severity, 3), -f.runs, f.kind))
    return tuple(out)


def choose_metric(runs: Sequence[RunRecord], metric: str | None = None) -> str:
    """The ranking metric: ``metric`` if some run logged it, else ``val_accuracy``,
    ``val_loss``, the first ``val_*`` name, ``loss``.

    >>> choose_metric([RunRecord("a", (), 0, "done", final={"loss": 1.0, "val_loss": 0.9})])
    'val_loss'
    """
    logged: list[str] = []
    for run in runs:
        logged += [k for k in (run.final or {}) if k not in logged]
    if metric is not None:
        if metric not in logged:
            failed = [r for r in runs if r.status == "failed"]
            why = (f"; {len(failed)} of {len(runs)} runs failed, e.g. {failed[0].name}: "
                   f"{failed[0].error}" if failed and failed[0].error else "")
            raise ConfigError("--metric", metric, f"a logged metric: one of {', '.join(logged)}"
                              if logged else f"a logged metric (no run logged any{why})")
        return metric
    for name in ("val_accuracy", "val_loss"):
        if name in logged:
            return name
    others = [k for k in logged if k.startswith("val_")]
    return others[0] if others else "loss"


def direction(metric: str) -> str:
    """``"max"`` or ``"min"`` for a metric name (unknown names count as ``"min"``).

    >>> direction("val_accuracy"), direction("val_loss"), direction("whatever")
    ('max', 'min', 'min')
    """
    from steadygrad.train.history import metric_direction

    try:
        return metric_direction(metric)
    except ConfigError:
        return "min"


def summarize(runs: Sequence[RunRecord], metric: str) -> list[ConfigResult]:
    """Group runs by config (settings without the seed) and rank by the metric's mean.

    Only runs that finished (``done``) count: the last metrics of a diverged or failed run
    describe a broken model. Configs without any such value come last (not ranked); ties keep
    the sweep order.

    >>> runs = [RunRecord(f"r{i}", (("model.a", a),), s, "done", final={"val_loss": v})
    ...         for i, (a, s, v) in enumerate([(1, 0, 0.5), (1, 1, 0.7), (2, 0, 0.2)])]
    >>> [(c.label, c.mean, c.n) for c in summarize(runs, "val_loss")]
    [('a=2', 0.2, 1), ('a=1', 0.6, 2)]
    """
    groups: dict[tuple[tuple[str, Any], ...], list[RunRecord]] = {}
    for run in runs:
        key = tuple((k, json.dumps(v, sort_keys=True)) for k, v in run.settings)
        groups.setdefault(key, []).append(run)
    sign = -1.0 if direction(metric) == "max" else 1.0
    out = []
    for members in groups.values():
        values = [(r.final or {}).get(metric) for r in members if r.status == "done"]
        finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        mean, std = mean_std(finite)
        spe, spe_std = mean_std([r.seconds_per_epoch for r in members
                                 if r.seconds_per_epoch is not None])
        out.append(ConfigResult(members[0].label, members[0].settings, tuple(members), mean,
                                std, len(finite), spe, spe_std, _findings(members)))
    order = sorted(range(len(out)), key=lambda i: (out[i].mean is None,
                                                   sign * (out[i].mean or 0.0), i))
    return [out[i] for i in order]


@dataclass(frozen=True)
class SweepReport:
    """Everything a report shows, computed from a sweep directory by :func:`build_report`.

    Example:
        >>> runs = tuple(RunRecord(f"activation={a}-seed={s}", (("model.activation", a),), s,
        ...                        "done", final={"val_accuracy": v}, seconds_per_epoch=t)
        ...              for a, s, v, t in [("relu", 0, 0.9, 0.1), ("relu", 1, 0.8, 0.1),
        ...                                 ("tanh", 0, 0.7, 0.2), ("tanh", 1, 0.6, 0.2)])
        >>> report = SweepReport("acts", Path("sweeps/acts"), "val_accuracy", runs,
        ...                      tuple(summarize(runs, "val_accuracy")), ("model.activation",))
        >>> report.direction, report.count("done"), [c.label for c in report.configs]
        ('max', 4, ['activation=relu', 'activation=tanh'])
        >>> print(report.sentences()[1])
        Best mean val_accuracy (higher is better): activation=relu with 0.8500 ± 0.0707
        over 2 seeds.
    """

    name: str
    sweep_dir: Path
    metric: str
    runs: tuple[RunRecord, ...]
    configs: tuple[ConfigResult, ...]
    axes: tuple[str, ...]

    @property
    def direction(self) -> str:
        """``"max"`` when a higher metric is better, else ``"min"``."""
        return direction(self.metric)

    def count(self, status: str) -> int:
        """How many runs have ``status``."""
        return sum(r.status == status for r in self.runs)

    def sentences(self) -> list[str]:
        """The report's statements, each computed from the numbers above."""
        from steadygrad.experiments.report_text import sentences

        return sentences(self)


def fmt(value: float | None, std: float | None = None, digits: int = 4) -> str:
    """``"0.9123 ± 0.0100"``; ``"-"`` for None.

    >>> fmt(0.91234, 0.01), fmt(0.5), fmt(None), fmt(1.5e-05), fmt(1.44e34)
    ('0.9123 ± 0.0100', '0.5000', '-', '1.5e-05', '1.44e+34')
    """
    if value is None or not math.isfinite(value):
        return "-"
    small = value != 0 and abs(value) < 10 ** -(digits - 1)
    text = f"{value:.3g}" if small or abs(value) >= 1e5 else f"{value:.{digits}f}"
    return text if std is None else f"{text} ± {std:.{digits}f}"


def _record(sweep_dir: Path, name: str, settings: list[tuple[str, Any]],
            state: str | None) -> RunRecord:
    seed = next((v for k, v in settings if k == SEED_KEY), None)
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
    settings = [(k, v) for k, v in settings if k != SEED_KEY]
    run_dir = run_folder(sweep_dir, name, name)
    summary = sanitize_summary(load_json(run_dir / "summary.json", sweep_dir)
                               if state in ("done", "failed", None) else None)
    status = state or "pending"
    error = None
    if summary is not None:
        status = summary["status"] or status
        if summary["error"] and summary["error"].strip():
            error = summary["error"].strip().splitlines()[-1]
    history = None
    if summary is not None and confined(run_dir / "history.csv", sweep_dir):
        history = read_history_csv(run_dir / "history.csv") or None
    health = load_json(run_dir / "health.json", sweep_dir) if summary is not None else None
    if health is not None:
        check_health(health, run_dir / "health.json")
    return RunRecord(
        name, tuple(settings), seed, status,
        final=(summary or {}).get("final"),
        seconds_per_epoch=(summary or {}).get("seconds_per_epoch"),
        history=history, health=health, diverged=(summary or {}).get("diverged"), error=error,
    )


def build_report(sweep_dir: str | Path, metric: str | None = None) -> SweepReport:
    """Read a sweep directory into a :class:`SweepReport`.

    Raises:
        ConfigError: ``sweep_dir`` is not a sweep directory (no ``sweep.json``), or ``metric``
            was not logged by any run.

    Example (a hand-made sweep folder: ``sweep.json`` plus ``runs/<name>/summary.json``):
        >>> import tempfile
        >>> sweep = Path(tempfile.mkdtemp())
        >>> entries = []
        >>> for act, seed, acc in [("relu", 0, 0.9), ("relu", 1, 0.8), ("tanh", 0, 0.7)]:
        ...     name = f"activation={act}-seed={seed}"
        ...     entries.append({"name": name, "settings": [["model.activation", act],
        ...                                                ["train.seed", seed]]})
        ...     (sweep / "runs" / name).mkdir(parents=True)
        ...     _ = (sweep / "runs" / name / "summary.json").write_text(json.dumps(
        ...         {"status": "done", "final": {"val_accuracy": acc, "val_loss": 1 - acc}}))
        >>> _ = (sweep / "sweep.json").write_text(json.dumps({"spec": {"name": "acts"},
        ...                                                   "runs": entries}))
        >>> report = build_report(sweep)
        >>> report.name, report.metric, report.axes, [r.seed for r in report.runs]
        ('acts', 'val_accuracy', ('model.activation',), [0, 1, 0])
        >>> [(c.label, round(c.mean, 2), c.n) for c in report.configs]
        [('activation=relu', 0.85, 2), ('activation=tanh', 0.7, 1)]
        >>> build_report(sweep, metric="val_loss").configs[0].label  # lower loss ranks first
        'activation=relu'
        >>> build_report(sweep, metric="accuracy")
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: --metric: got 'accuracy'; expected a logged metric: ...
    """
    sweep_dir = Path(sweep_dir)
    spec_name, entries = read_sweep_json(sweep_dir)
    states = index_states(sweep_dir)
    runs = tuple(_record(sweep_dir, n, s, states.get(n)) for n, s in entries)
    chosen = choose_metric(runs, metric)
    axes: list[str] = []
    for run in runs:
        axes += [k for k, _ in run.settings if k not in axes]
    name = spec_name or sweep_dir.resolve().name
    return SweepReport(name, sweep_dir, chosen, runs, tuple(summarize(runs, chosen)),
                       tuple(axes))


def write_report(sweep_dir: str | Path, out_dir: str | Path | None = None, *,
                 metric: str | None = None, report: SweepReport | None = None
                 ) -> dict[str, Path]:
    """Write ``report.html``, ``results.csv``, ``report.md`` and the PNG figures.

    Args:
        sweep_dir: the sweep directory (made by ``run_sweep`` / ``steadygrad sweep``).
        out_dir: where to write (default ``sweep_dir/report``; created when missing).
        metric: the ranking metric (see :func:`choose_metric`).
        report: an already built :func:`build_report` of ``sweep_dir`` (skips re-reading).

    Returns:
        ``{"html": ..., "csv": ..., "markdown": ..., "<figure name>": ...}`` paths.

    Example:
        >>> import tempfile
        >>> from steadygrad.experiments.report import RunRecord, SweepReport, summarize
        >>> folder = Path(tempfile.mkdtemp())
        >>> runs = tuple(RunRecord(f"activation={a}-seed={s}", (("model.activation", a),), s,
        ...                        "done", final={"val_accuracy": v}, seconds_per_epoch=t)
        ...              for a, s, v, t in [("relu", 0, 0.9, 0.1), ("relu", 1, 0.8, 0.1),
        ...                                 ("tanh", 0, 0.7, 0.2), ("tanh", 1, 0.6, 0.2)])
        >>> report = SweepReport("acts", folder, "val_accuracy", runs,
        ...                      tuple(summarize(runs, "val_accuracy")), ("model.activation",))
        >>> paths = write_report(folder, report=report)  # no history: only the time figure
        >>> {k: p.name for k, p in paths.items()}
        {'html': 'report.html', 'csv': 'results.csv', 'markdown': 'report.md', 'time': 'time.png'}
        >>> paths["csv"].read_text().splitlines()[1]
        'activation=relu-seed=0,relu,0,done,,0.1,0.9,'
        >>> "data:image/png;base64," in paths["html"].read_text()  # self-contained page
        True
    """
    from steadygrad.experiments.report_html import render_html, render_markdown
    from steadygrad.experiments.report_plots import figures
    from steadygrad.experiments.store import atomic_write_bytes, atomic_write_text

    if report is None:
        report = build_report(sweep_dir, metric)
    out = Path(out_dir) if out_dir is not None else Path(sweep_dir) / "report"
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", str(out), "a folder (or a path to create one)")
    images = figures(report)
    paths: dict[str, Path] = {}
    for name, png in images.items():
        paths[name] = atomic_write_bytes(out / f"{name}.png", png)
    paths["csv"] = atomic_write_text(out / "results.csv", results_csv(report))
    paths["markdown"] = atomic_write_text(
        out / "report.md", render_markdown(report, {k: f"{k}.png" for k in images}))
    paths["html"] = atomic_write_text(out / "report.html", render_html(report, images))
    return {k: paths[k] for k in ("html", "csv", "markdown", *images)}
