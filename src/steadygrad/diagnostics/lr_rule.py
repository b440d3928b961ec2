"""The ``learning_rate`` rule: a step size too high (update/weight ratios, loss spikes) or
too low (update/weight ratios), a pure function of a
:class:`~steadygrad.diagnostics.series.HealthSeries` used by
:func:`steadygrad.diagnostics.rules.evaluate`.

"Too high" is the median over rows of the update/weight ratio above ``lr_high`` or a loss
spike at a check, held over ``persistence`` steps (10x past ``lr_high`` confirms at once), or
loss spikes held over ``persistence`` consecutive steps of every step's loss (a 20x spike at
once), whichever is raised first; "too low" is the median ratio below ``lr_low``, never said
of a run that diverged. The thresholds are documented in ``docs/health-report.md``.

Example:
    >>> import numpy as np
    >>> s = HealthSeries.empty(["a", "b"], steps=[0, 1, 2])
    >>> s.values["update_ratio"][:] = 0.5  # each step moves the weights by half their norm
    >>> f = learning_rate(s, Thresholds(), True, False, np.zeros(3, bool), None)
    >>> f.kind, f.evidence["direction"], f.raised_step  # held over 3 steps
    ('learning_rate', 'too high', 2)
    >>> s.values["update_ratio"][:] = 2.0  # 10x past lr_high: raised on its own check
    >>> learning_rate(s, Thresholds(), True, False, np.zeros(3, bool), None).raised_step
    0
"""

from __future__ import annotations

import math

import numpy as np

from steadygrad.diagnostics.early import row_nanmedian, step_loss_spike_levels
from steadygrad.diagnostics.progress import confirmed_onset
from steadygrad.diagnostics.remedies import REMEDIES
from steadygrad.diagnostics.series import HealthSeries
from steadygrad.diagnostics.thresholds import Finding, Thresholds
from steadygrad.diagnostics.thresholds import evidence_round as _r
from steadygrad.diagnostics.thresholds import gated_severity as _gated

__all__ = ["StepSpikes", "learning_rate", "step_spikes"]

StepSpikes = tuple[np.ndarray, np.ndarray]
"""Per step of every step's loss: ``(spike, strong spike)`` masks."""


def step_spikes(s: HealthSeries, th: Thresholds, ref: float | None) -> StepSpikes | None:
    """Every step's loss spikes at the ``loss_spike`` level and at the strong level (one
    running median for both), None when every step's loss was not tracked.

    >>> s = HealthSeries.empty(["a"], steps=[0])
    >>> s.step_loss = np.array([2.3, 2.2, 5.0, 500.0])
    >>> [m.tolist() for m in step_spikes(s, Thresholds(), 2.3)]
    [[False, False, True, True], [False, False, False, True]]
    """
    sl = np.asarray(s.step_loss, dtype=float)
    if not sl.size or not np.any(~np.isnan(sl)):
        return None
    mask, strong = step_loss_spike_levels(
        sl, (th.loss_spike, (1 + th.loss_spike) * th.strong_factor - 1), ref)
    return mask, strong


def _step_spike_onset(levels: StepSpikes | None, th: Thresholds) -> tuple[int, int] | None:
    """``(first, raised)`` steps of loss spikes held over ``persistence`` consecutive steps,
    from every step's loss (between checks too), None when not tracked or none."""
    if levels is None:
        return None
    mask, strong = levels
    return confirmed_onset([bool(x) for x in mask], list(range(mask.size)), th.persistence,
                           [bool(x) for x in strong])


def learning_rate(s: HealthSeries, th: Thresholds, impaired: bool | None, diverged: bool,
                  spikes: np.ndarray, ref: float | None, *,
                  levels: StepSpikes | None = None) -> Finding | None:
    """The ``learning_rate`` finding: "too high" (median update/weight ratio above
    ``lr_high``, or loss spikes, at the checks or held over ``persistence`` steps of every
    step's loss) before "too low" (median ratio below ``lr_low``; never when ``diverged``).

    Args:
        s: the recorded series.
        th: the thresholds.
        impaired: whether learning is impaired (``warning``; False: ``info``).
        diverged: the run diverged, spiked or ended above its reference loss (no "too low").
        spikes: per check, a loss spike since the previous check.
        ref: the reference loss (chance level, else the first loss) of the spike test.
        levels: :func:`step_spikes` of ``s`` when the caller has them (else computed here).

    >>> s = HealthSeries.empty(["a"], steps=[0, 1, 2])
    >>> s.values["update_ratio"][:] = 1e-6
    >>> f = learning_rate(s, Thresholds(), True, False, np.zeros(3, bool), None)
    >>> f.evidence["direction"], f.first_step, f.raised_step
    ('too low', 0, 2)
    >>> learning_rate(s, Thresholds(), True, True, np.zeros(3, bool), None) is None
    True
    """
    u = s.values["update_ratio"]
    if not s.checks:
        return None
    med = row_nanmedian(u)
    med[~np.isfinite(u).any(1)] = math.nan  # only NaN/Inf at a check: no median
    high = [bool(x > th.lr_high) or bool(sp) for x, sp in zip(med, spikes, strict=True)]
    strong = [bool(x > th.lr_high * th.strong_factor) for x in med]
    on_hi = confirmed_onset(high, s.steps, th.persistence, strong)
    hi = None if on_hi is None else (int(s.steps[on_hi[0]]), int(s.steps[on_hi[1]]))
    per_step = _step_spike_onset(levels if levels is not None else step_spikes(s, th, ref),
                                 th)
    if per_step is not None and (hi is None or per_step[1] < hi[1]):
        hi = per_step  # raised earlier from every step's loss
    cases: list[tuple[str, tuple[int, int] | None]] = [("too high", hi)]
    if not diverged:  # a diverging run's tiny update/weight ratios are not a too-low rate
        low = [bool(x < th.lr_low) for x in med]
        on_lo = confirmed_onset(low, s.steps, th.persistence)
        cases.append(("too low", None if on_lo is None else
                      (int(s.steps[on_lo[0]]), int(s.steps[on_lo[1]]))))
    for label, on in cases:
        if on is None:
            continue
        first, raised = on
        k0 = min(int(np.searchsorted(s.steps, first)), s.checks - 1)
        fin = med[k0:][np.isfinite(med[k0:])]
        level = f"median update/weight ratio {_r(np.median(fin), 2)}" if fin.size else \
            "loss spikes above the chance-level loss"
        return Finding(
            "learning_rate", _gated(impaired), tuple(s.layers), first,
            f"the learning rate looks {label}: {level} (healthy band "
            f"{th.lr_low:g}..{th.lr_high:g})",
            {"median_update_ratio": [_r(x) for x in med], "band": [th.lr_low, th.lr_high],
             "loss_spike_steps": [int(s.steps[k]) for k in np.flatnonzero(spikes)][:20],
             "direction": label, "learning_impaired": impaired},
            tuple(r for r in REMEDIES["learning_rate"] if r.condition in ("", label)),
            raised)
    return None
