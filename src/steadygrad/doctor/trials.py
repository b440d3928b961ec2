"""Controlled trials: run one config over the same seeds, data split and step budget.

Every trial of the doctor (baseline, healthy reference, each candidate) goes through
:func:`run_trial`, so the only thing that differs between two trials is the config patch:

- the data section's own ``seed`` fixes the split; the dataset is loaded once per distinct
  ``[data]`` table and shared;
- ``train.seed`` is set to each seed in turn; it seeds the model's init (a fresh model built
  from the config, never resumed from the baseline's weights) and the batch order;
- ``train.epochs`` is the same budget for every trial.

The runs are written as ``<root>/runs/<label>-seed=<s>/`` run directories
(:func:`steadygrad.experiments.execute.run_config`), the layout the sweep report reads.

Whether a finding is a *problem* follows the monitor's severity (``warning``/``error``), and an
``info`` finding also counts when the run did not learn: it diverged, or its final validation
loss is still at least :data:`IMPAIRED_LOSS_FRACTION` of the chance-level loss (ln C for C
classes, the loss of predicting the class prior uniformly; the prior-art note's "initial loss
against ln C", ``shared/notes/prior_art_diagnosis.md`` §5.3).

Example:
    >>> problem_kinds([{"kind": "saturation", "severity": "info"}], status="done",
    ...               val_loss=2.25, num_classes=10)
    ('saturation',)
    >>> problem_kinds([{"kind": "saturation", "severity": "info"}], status="done",
    ...               val_loss=0.3, num_classes=10)
    ()
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steadygrad.experiments.config import RunConfig, config_from_dict

__all__ = [
    "IMPAIRED_LOSS_FRACTION",
    "DataCache",
    "SeedRun",
    "Trial",
    "chance_loss",
    "problem_kinds",
    "run_trial",
    "seed_config",
    "seed_run",
    "seed_run_name",
]

IMPAIRED_LOSS_FRACTION = 0.5
"""A run whose final validation loss is at least this share of the chance loss did not learn."""


def chance_loss(num_classes: int | None) -> float | None:
    """Cross-entropy of the uniform prediction over ``num_classes`` classes: ``ln C``.

    >>> round(chance_loss(10), 4), chance_loss(None)
    (2.3026, None)
    """
    if num_classes is None or num_classes < 2:
        return None
    return math.log(num_classes)


def problem_kinds(findings: Sequence[Mapping[str, Any]], *, status: str,
                  val_loss: float | None, num_classes: int | None) -> tuple[str, ...]:
    """The finding kinds that count as problems for one run (see the module doc).

    A diverged run always has the ``non_finite`` problem.

    >>> problem_kinds([], status="diverged", val_loss=None, num_classes=10)
    ('non_finite',)
    >>> problem_kinds([{"kind": "dead_units", "severity": "warning"}], status="done",
    ...               val_loss=0.1, num_classes=10)
    ('dead_units',)
    """
    chance = chance_loss(num_classes)
    impaired = status != "done" or val_loss is None or not math.isfinite(val_loss) or (
        chance is not None and val_loss >= IMPAIRED_LOSS_FRACTION * chance)
    kinds: list[str] = []
    for f in findings:
        sev = f.get("severity")
        counts = sev in ("warning", "error") or (sev == "info" and impaired)
        if counts and f["kind"] not in kinds:
            kinds.append(str(f["kind"]))
    if status == "diverged" and "non_finite" not in kinds:
        kinds.append("non_finite")
    return tuple(kinds)


@dataclass(frozen=True)
class SeedRun:
    """One seed of a trial.

    Attributes:
        seed: its ``train.seed``.
        status: ``done``, ``diverged`` or ``failed``.
        metric: the final value of the trial's metric (None when missing or non-finite).
        val_loss: the final validation loss.
        problems: finding kinds that count as problems (:func:`problem_kinds`).
        findings: every finding as ``{"kind", "severity", "layers"}``.
        seconds: wall time of the run.
        run_dir: its run directory.
        error: last line of the traceback of a failed run.

    Example:
        >>> SeedRun(0, "done", 0.9, 0.3, (), (), 1.5, "runs/a").metric
        0.9
    """

    seed: int
    status: str
    metric: float | None
    val_loss: float | None
    problems: tuple[str, ...]
    findings: tuple[dict[str, Any], ...] = field(hash=False)
    seconds: float
    run_dir: str
    error: str | None = None


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


@dataclass(frozen=True)
class Trial:
    """A config run over the seeds.

    Attributes:
        label: its name (``baseline``, ``reference`` or the candidate's name).
        role: ``baseline``, ``reference``, ``candidate`` or ``combination``.
        patch: the config patch relative to the baseline (resolved values).
        table: the full config table that ran (``train.seed`` set per run).
        runs: one :class:`SeedRun` per seed, in seed order.
        note: how the patch was resolved (e.g. the LR range test's suggestion).

    Example:
        >>> runs = (SeedRun(0, "done", 0.8, 0.5, (), (), 1.0, ""),
        ...         SeedRun(1, "done", 0.6, 0.9, ("saturation",), (), 1.0, ""))
        >>> t = Trial("x", "candidate", {}, {}, runs)
        >>> round(t.mean, 3), round(t.std, 3), t.problems, t.problem_seeds
        (0.7, 0.141, ('saturation',), 1)
    """

    label: str
    role: str
    patch: dict[str, Any] = field(hash=False)
    table: dict[str, Any] = field(hash=False)
    runs: tuple[SeedRun, ...]
    note: str = ""

    @property
    def values(self) -> list[float]:
        """The metric of every seed that finished with a finite value."""
        return [r.metric for r in self.runs if r.metric is not None]

    @property
    def mean(self) -> float | None:
        """Mean metric over the finished seeds."""
        return _mean_std(self.values)[0]

    @property
    def std(self) -> float | None:
        """Sample standard deviation of the metric (None with fewer than two seeds)."""
        return _mean_std(self.values)[1]

    @property
    def problems(self) -> tuple[str, ...]:
        """Problem kinds seen in at least one seed, in first-seen order."""
        out: list[str] = []
        for r in self.runs:
            out += [k for k in r.problems if k not in out]
        return tuple(out)

    @property
    def problem_seeds(self) -> int:
        """How many seeds had at least one problem."""
        return sum(bool(r.problems) for r in self.runs)

    @property
    def seconds(self) -> float:
        """Total wall time of its runs."""
        return sum(r.seconds for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"label": self.label, "role": self.role, "patch": self.patch, "note": self.note,
                "mean": self.mean, "std": self.std, "problems": list(self.problems),
                "problem_seeds": self.problem_seeds, "seconds": self.seconds,
                "runs": [{"seed": r.seed, "status": r.status, "metric": r.metric,
                          "val_loss": r.val_loss, "problems": list(r.problems),
                          "findings": list(r.findings), "seconds": r.seconds,
                          "run_dir": r.run_dir, "error": r.error} for r in self.runs]}


class DataCache:
    """Loads each distinct ``[data]`` section once (the same split for every trial).

    Example:
        >>> cache = DataCache()
        >>> cfg = config_from_dict({"data": {"name": "digits", "n_train": 40}})
        >>> cache.get(cfg) is cache.get(cfg)
        True
    """

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}

    def get(self, config: RunConfig) -> Any:
        """The dataset of ``config.data``."""
        from steadygrad.experiments.execute import load_data

        key = json.dumps({"name": config.data.name, **config.data.kwargs}, sort_keys=True,
                         default=str)
        if key not in self._items:
            self._items[key] = load_data(config)
        return self._items[key]


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def seed_config(label: str, table: Mapping[str, Any], seed: int) -> RunConfig:
    """The config of one seed of a trial: ``table`` named ``label`` with ``train.seed = seed``.

    >>> cfg = seed_config("x", {"model": {"hidden": [4]}}, 3)
    >>> cfg.name, cfg.train.seed
    ('x', 3)
    """
    raw = json.loads(json.dumps(dict(table)))
    raw["name"] = label
    raw.setdefault("train", {})["seed"] = int(seed)
    return config_from_dict(raw)


def seed_run_name(label: str, seed: int) -> str:
    """The run directory name of one seed of a trial (under ``<root>/runs/``).

    >>> seed_run_name("elu", 2)
    'elu-seed=2'
    """
    return f"{label}-seed={seed}"


def seed_run(seed: int, result: Any, data: Any, metric: str) -> SeedRun:
    """The :class:`SeedRun` of a finished run (a :class:`~steadygrad.experiments.execute
    .RunResult`, wherever it executed): metric, validation loss, findings and problems.

    >>> import tempfile
    >>> from steadygrad.experiments.execute import RunResult
    >>> r = seed_run(0, RunResult("diverged", Path(tempfile.mkdtemp()), {"final": {}}),
    ...              None, "val_accuracy")
    >>> r.status, r.metric, r.problems
    ('diverged', None, ('non_finite',))
    """
    health_path = Path(result.run_dir) / "health.json"
    findings: list[dict[str, Any]] = []
    if health_path.is_file():
        doc = json.loads(health_path.read_text(encoding="utf-8"))
        findings = [{"kind": f["kind"], "severity": f["severity"],
                     "layers": list(f.get("layers", []))} for f in doc.get("findings", [])]
    final = result.metrics or {}
    val_loss = _finite(final.get("val_loss"))
    value = _finite(final.get(metric)) if result.status == "done" else None
    num_classes = (getattr(data, "num_classes", None)
                   if getattr(data, "task", "") != "regression" else None)
    problems = problem_kinds(findings, status=result.status, val_loss=val_loss,
                             num_classes=num_classes)
    error = None
    if result.error:
        error = result.error.strip().splitlines()[-1]
    return SeedRun(int(seed), result.status, value, val_loss, problems, tuple(findings),
                   float(result.summary.get("seconds") or 0.0), str(result.run_dir), error)


def run_trial(label: str, role: str, table: Mapping[str, Any], patch: Mapping[str, Any],
              seeds: Sequence[int], root: str | Path, *, metric: str, cache: DataCache,
              note: str = "", on_run: Callable[[str, int], None] | None = None) -> Trial:
    """Run ``table`` once per seed under ``root/runs/`` and collect metrics and problems.

    Args:
        label: the trial's name (a run-name-safe string).
        role: ``baseline``, ``reference``, ``candidate`` or ``combination``.
        table: the full config table.
        patch: its patch relative to the baseline (recorded).
        seeds: the ``train.seed`` values.
        root: the doctor's output folder.
        metric: the history key to rank by (``val_accuracy``).
        cache: the shared :class:`DataCache`.
        note: recorded with the trial.
        on_run: called as ``on_run(label, seed)`` before each run (progress display).

    Returns:
        The :class:`Trial`.

    Example:
        >>> import tempfile
        >>> table = {"data": {"name": "digits", "n_train": 60}, "model": {"hidden": [4]},
        ...          "train": {"epochs": 1}}
        >>> t = run_trial("tiny", "baseline", table, {}, [0, 1], tempfile.mkdtemp(),
        ...               metric="val_accuracy", cache=DataCache())
        >>> [r.seed for r in t.runs], [r.status for r in t.runs]
        ([0, 1], ['done', 'done'])
    """
    from steadygrad.experiments.execute import run_config

    runs = []
    for seed in seeds:
        config = seed_config(label, table, seed)
        data = cache.get(config)
        if on_run is not None:
            on_run(label, seed)
        result = run_config(config, Path(root) / "runs" / seed_run_name(label, seed), data=data)
        runs.append(seed_run(int(seed), result, data, metric))
    return Trial(label, role, dict(patch), json.loads(json.dumps(dict(table))), tuple(runs),
                 note)
