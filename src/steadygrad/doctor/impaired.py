"""Learning impaired without findings: a run that learns badly although the monitor said nothing.

The monitor's rules name *why* a network fails (saturation, vanishing or exploding gradients,
dead units...). A run can also learn badly with none of them firing: a learning rate that is
too high for a normalized ResNet, a post-LN transformer that stalls, an optimizer whose steps
are too small. Such a run is not healthy, so the doctor diagnoses :data:`IMPAIRED` and tries
the learning-rate, optimizer, schedule, normalization and initialization remedies.

The rule (:func:`impairment`), one number against another under the one noise rule of
:func:`steadygrad.studies.wisdom.beats` ("A is below B" only when the gap exceeds the summed
sample standard deviations over seeds, 0 for one seed):

- **with a healthy reference** (run with the same data, seeds and budget): the run's mean
  validation metric is below :data:`REFERENCE_FRACTION` (90%) of the reference's, beyond
  noise (for a loss metric: above the reference's loss / 0.9);
- **without one** (classification only): the run's mean final validation loss is above
  :data:`~steadygrad.doctor.trials.IMPAIRED_LOSS_FRACTION` (0.5) x the chance loss ``ln C``,
  beyond noise; the same threshold that makes the monitor's ``info`` findings count.

A trial judged impaired carries :data:`IMPAIRED` in every seed's problems
(:func:`mark_impaired`), so a remedy *succeeds* only when its trial is no longer impaired by
the same rule.

Example:
    >>> from steadygrad.doctor.trials import SeedRun, Trial
    >>> def trial(accs, losses):
    ...     return Trial("t", "candidate", {}, {}, tuple(SeedRun(i, "done", a, v, (), (), 1.0, "")
    ...                  for i, (a, v) in enumerate(zip(accs, losses))))
    >>> ref = trial([0.90, 0.92], [0.3, 0.3])
    >>> impairment(trial([0.40, 0.45], [1.6, 1.5]), ref, "val_accuracy", 10)
    'val_accuracy 0.425 ± 0.035 is below 90% of the healthy reference (0.819 ± 0.013)'
    >>> impairment(trial([0.85, 0.84], [0.4, 0.4]), ref, "val_accuracy", 10) is None
    True
    >>> impairment(trial([0.40, 0.45], [1.6, 1.5]), None, "val_accuracy", 10)
    'final val_loss 1.550 ± 0.071 is above 0.5 x the chance loss ln 10 (1.151)'
"""

from __future__ import annotations

import dataclasses
import math
import statistics

from steadygrad.doctor.result import fmt
from steadygrad.doctor.trials import IMPAIRED_LOSS_FRACTION, Trial, chance_loss
from steadygrad.studies.wisdom import beats

__all__ = ["IMPAIRED", "REFERENCE_FRACTION", "impairment", "mark_impaired"]

IMPAIRED = "impaired_learning"
"""The problem kind of a run that learns badly without any finding."""

REFERENCE_FRACTION = 0.9
"""A run below this share of the healthy reference's accuracy (beyond noise) is impaired."""


def _stat(values: list[float]) -> tuple[float | None, float | None, int]:
    if not values:
        return None, None, 0
    return (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None,
            len(values))


def impairment(trial: Trial, reference: Trial | None, metric: str,
               num_classes: int | None) -> str | None:
    """Why ``trial`` learns badly (a sentence with the numbers), or None (see the module doc).

    Args:
        trial: the run to judge (its seeds' metric and final validation loss).
        reference: the healthy reference trial (same data, seeds, budget), or None.
        metric: the ranking metric; ``"acc"`` in its name means higher is better.
        num_classes: classes of a classification task (None for regression).

    Example:
        >>> from steadygrad.doctor.trials import SeedRun, Trial
        >>> one = Trial("t", "candidate", {}, {}, (SeedRun(0, "done", 0.5, 0.2, (), (), 1, ""),))
        >>> impairment(one, None, "val_loss", None) is None  # regression, no reference
        True
    """
    if reference is not None and reference.mean is not None:
        ref_mean, ref_std = reference.mean, reference.std or 0.0
        mean, std, _ = _stat(trial.values)
        if "acc" in metric:
            target = (REFERENCE_FRACTION * ref_mean, REFERENCE_FRACTION * ref_std, 1)
            low = mean is None or beats(target, (mean, std, len(trial.values))) is True
            word = "below"
        else:
            target = (ref_mean / REFERENCE_FRACTION, ref_std / REFERENCE_FRACTION, 1)
            low = mean is None or beats((mean, std, len(trial.values)), target) is True
            word = "above"
        if not low:
            return None
        shown = "n/a (no seed finished)" if mean is None else fmt(mean, std)
        return (f"{metric} {shown} is {word} {REFERENCE_FRACTION:.0%} of the healthy "
                f"reference ({fmt(target[0], target[1] or None)})")
    chance = chance_loss(num_classes)
    if chance is None:
        return None
    losses = [r.val_loss for r in trial.runs
              if r.val_loss is not None and math.isfinite(r.val_loss)]
    mean, std, n = _stat(losses)
    threshold = IMPAIRED_LOSS_FRACTION * chance
    if mean is None or beats((mean, std, n), (threshold, None, 1)) is not True:
        return None
    return (f"final val_loss {fmt(mean, std)} is above {IMPAIRED_LOSS_FRACTION:g} x the chance "
            f"loss ln {num_classes} ({threshold:.3f})")


def mark_impaired(trial: Trial, why: str | None) -> Trial:
    """``trial`` with :data:`IMPAIRED` added to every seed's problems when ``why`` is set (the
    reason is kept in its note); unchanged otherwise.

    >>> from steadygrad.doctor.trials import SeedRun, Trial
    >>> t = Trial("t", "baseline", {}, {}, (SeedRun(0, "done", 0.4, 1.6, (), (), 1.0, ""),))
    >>> marked = mark_impaired(t, "it learns badly")
    >>> marked.problems, marked.problem_seeds, marked.note, mark_impaired(t, None) is t
    (('impaired_learning',), 1, 'it learns badly', True)
    """
    if why is None:
        return trial
    runs = tuple(dataclasses.replace(r, problems=r.problems + ((IMPAIRED,) if IMPAIRED not in
                                                                r.problems else ()))
                 for r in trial.runs)
    note = why if not trial.note else f"{trial.note}; {why}"
    return dataclasses.replace(trial, runs=runs, note=note)
