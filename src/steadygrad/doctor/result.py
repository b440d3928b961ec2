"""The doctor's result: ranking, success test and the verdict, every sentence from the numbers.

Ranking (:func:`rank`): first the candidates whose problems disappeared in more seeds, then the
better mean of the validation metric. A candidate *succeeds* when no seed shows a problem, every
seed finished, and its mean metric is no worse than the baseline's (:func:`succeeded`).

Example:
    >>> from steadygrad.doctor.trials import SeedRun, Trial
    >>> def t(label, values, problems=()):
    ...     runs = tuple(SeedRun(i, "done", v, 1.0, problems, (), 1.0, "")
    ...                  for i, v in enumerate(values))
    ...     return Trial(label, "candidate", {}, {}, runs)
    >>> base = t("baseline", [0.1, 0.2], ("saturation",))
    >>> ranked = rank([t("a", [0.9, 0.8], ("saturation",)), t("b", [0.7, 0.7])], base,
    ...               "val_accuracy")
    >>> [x.label for x in ranked], succeeded(ranked[0], base, "val_accuracy")
    (['b', 'a'], True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steadygrad.doctor.trials import Trial

__all__ = ["DoctorResult", "better", "demo_result", "fmt", "rank", "succeeded"]


def _sign(metric: str) -> float:
    return 1.0 if "acc" in metric else -1.0


def better(a: float | None, b: float | None, metric: str) -> bool:
    """Whether metric value ``a`` is at least as good as ``b`` (None is worst).

    >>> better(0.9, 0.8, "val_accuracy"), better(0.9, 0.8, "val_loss"), better(0.5, None, "x")
    (True, False, True)
    """
    if a is None:
        return b is None
    if b is None:
        return True
    return _sign(metric) * (a - b) >= 0


def rank(trials: Sequence[Trial], baseline: Trial, metric: str) -> list[Trial]:
    """Trials ordered by problem-free seeds, then metric mean (ties keep the trial order).

    >>> r = demo_result()
    >>> [t.label for t in rank(r.trials, r.baseline, r.metric)]
    ['relu_he', 'glorot_init']
    """
    sign = _sign(metric)

    def key(item: tuple[int, Trial]) -> tuple[int, float, int]:
        i, t = item
        mean = t.mean
        return (t.problem_seeds, -sign * mean if mean is not None else math.inf, i)

    return [t for _, t in sorted(enumerate(trials), key=key)]


def succeeded(trial: Trial, baseline: Trial, metric: str) -> bool:
    """Problems gone in every seed, every seed finished, mean metric no worse than baseline.

    >>> r = demo_result()
    >>> [succeeded(t, r.baseline, r.metric) for t in r.trials]
    [False, True]
    """
    return (trial.problem_seeds == 0 and all(r.status == "done" for r in trial.runs)
            and trial.mean is not None and better(trial.mean, baseline.mean, metric))


def fmt(mean: float | None, std: float | None = None) -> str:
    """``0.912 ± 0.010`` (``n/a`` for None).

    >>> fmt(0.91234, 0.01), fmt(None), fmt(0.5)
    ('0.912 ± 0.010', 'n/a', '0.500')
    """
    if mean is None:
        return "n/a"
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


@dataclass(frozen=True)
class DoctorResult:
    """What ``doctor`` measured and concluded.

    Attributes:
        config_name: the baseline config's name.
        builtin: True when the built-in failing example ran.
        metric: the ranking metric (``val_accuracy``; ``val_loss`` for regression).
        task: the dataset's task.
        seeds: the seeds of every trial.
        epochs, steps: the budget of every trial.
        baseline: the baseline trial.
        reference: the healthy reference trial (None when not run).
        trials: the candidate trials, in run order (second-round combination last).
        skipped: ``(candidate, why)`` for candidates that did not run.
        out_dir: the output folder.
        seconds: total wall time.
        files: the files written (name -> path).

    Example:
        >>> r = demo_result()
        >>> r.healthy, r.best.label, round(r.reference_ratio, 3)
        (False, 'relu_he', 0.968)
    """

    config_name: str
    builtin: bool
    metric: str
    task: str
    seeds: list[int] = field(hash=False)
    epochs: int
    steps: int
    baseline: Trial
    reference: Trial | None
    trials: tuple[Trial, ...]
    skipped: tuple[tuple[str, str], ...]
    out_dir: Path
    seconds: float
    files: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def healthy(self) -> bool:
        """True when the baseline showed no problem in any seed."""
        return not self.baseline.problems

    @property
    def ranking(self) -> list[Trial]:
        """The candidate trials, best first (:func:`rank`)."""
        return rank(self.trials, self.baseline, self.metric)

    @property
    def best(self) -> Trial | None:
        """The best-ranked successful candidate, None when none succeeded."""
        return next((t for t in self.ranking
                     if succeeded(t, self.baseline, self.metric)), None)

    @property
    def reference_ratio(self) -> float | None:
        """Best candidate's mean metric / the reference's (accuracy-like metrics only)."""
        if self.best is None or self.reference is None or "acc" not in self.metric:
            return None
        ref, best = self.reference.mean, self.best.mean
        if ref is None or best is None or ref <= 0:
            return None
        return best / ref

    def verdict(self) -> list[str]:
        """The verdict, one sentence per item, each filled from the measured numbers."""
        from steadygrad.doctor.verdict import sentences

        return sentences(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document (``steadygrad.doctor/1``)."""
        best = self.best
        return {
            "schema": "steadygrad.doctor/1", "config": self.config_name,
            "builtin": self.builtin, "metric": self.metric, "task": self.task,
            "seeds": self.seeds, "epochs": self.epochs, "steps": self.steps,
            "healthy": self.healthy, "baseline": self.baseline.to_dict(),
            "reference": None if self.reference is None else self.reference.to_dict(),
            "trials": [t.to_dict() for t in self.trials],
            "ranking": [t.label for t in self.ranking],
            "succeeded": [t.label for t in self.ranking
                          if succeeded(t, self.baseline, self.metric)],
            "best": None if best is None else best.label,
            "reference_ratio": self.reference_ratio,
            "skipped": [{"candidate": c, "why": w} for c, w in self.skipped],
            "verdict": self.verdict(), "seconds": self.seconds, "files": self.files,
        }


def demo_result(out_dir: str | Path = ".") -> DoctorResult:
    """A small hand-made :class:`DoctorResult` (no training) for examples and tests.

    Baseline 0.10/0.14 with saturation; ``glorot_init`` 0.12/0.10 still saturated;
    ``relu_he`` 0.90/0.92 clean; reference 0.93/0.95.

    >>> demo_result().baseline.problems
    ('saturation',)
    """
    from steadygrad.doctor.trials import SeedRun

    def trial(label: str, role: str, values: Sequence[float], problems: tuple[str, ...],
              patch: dict[str, Any]) -> Trial:
        runs = tuple(SeedRun(i, "done", v, 2.2 if problems else 0.3, problems,
                             tuple({"kind": k, "severity": "info", "layers": ["dense1"]}
                                   for k in problems), 1.0, f"runs/{label}-seed={i}")
                     for i, v in enumerate(values))
        return Trial(label, role, patch, {"model": {"activation": "sigmoid"}}, runs)

    sat = ("saturation",)
    return DoctorResult(
        "demo", False, "val_accuracy", "multiclass", [0, 1], 5, 180,
        trial("baseline", "baseline", [0.10, 0.14], sat, {}),
        trial("reference", "reference", [0.93, 0.95], (), {}),
        (trial("glorot_init", "candidate", [0.12, 0.10], sat,
               {"model.kernel_initializer": "glorot_uniform"}),
         trial("relu_he", "candidate", [0.90, 0.92], (),
               {"model.activation": "relu", "model.kernel_initializer": "he_normal"})),
        (("schedule", "not applicable"),), Path(out_dir), 12.5)
