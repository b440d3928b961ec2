"""Loss dynamics scaled to the problem: progress against a trivially reachable loss,
divergence, spikes, and persistence measured in steps.

Pure functions of host-side arrays, used by :mod:`steadygrad.diagnostics.rules`.

*Progress* is judged against the loss a constant predictor reaches (the *baseline*: the
entropy of the class frequencies for cross-entropy, at most ``ln C``; the target variance for
mean squared error), or, when the baseline is unknown, against the first recorded loss (a
freshly initialised net sits near it). A run learns when its smoothed final loss is clearly
below that reference and has kept most of its best gain: a net that falls back to chance
after an initial drop, or after a loss spike, has not learned (the first-versus-last-quarter
comparison used before version 2 read both as progress).

Example:
    >>> import numpy as np
    >>> p = learning_progress(np.array([2.3, 1.0, 0.6, 0.5, 0.5, 0.4]), baseline=2.3)
    >>> p["impaired"], p["final"]
    (False, 0.4)
    >>> learning_progress(np.array([2.3, 0.9, 0.5, 2.2, 2.3, 2.3]), baseline=2.3)["impaired"]
    True
    >>> confirmed_onset([False, True, True, True], [0, 1, 2, 3], 3)  # (first, confirmed)
    (1, 3)
    >>> confirmed_onset([False, True, True], [0, 32, 64], 3)  # two checks 32 steps apart
    (1, 2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from steadygrad.diagnostics.early import trailing_median

__all__ = ["baseline_loss", "confirmed_onset", "first_nonfinite", "learning_progress",
           "loss_spikes"]


def _r(x: float) -> float | None:
    x = float(x)
    return float(f"{x:.4g}") if math.isfinite(x) else None


def baseline_loss(targets: Any, loss: str) -> float | None:
    """The loss of the best constant predictor on ``targets``.

    Cross-entropy: the entropy of the class frequencies (``ln C`` for balanced classes);
    binary cross-entropy (0/1 targets): the mean over outputs of the binary entropy of the
    positive rate; mean squared error: the targets' variance. None for other losses.

    >>> import torch
    >>> round(baseline_loss(torch.tensor([0, 1, 2, 3]), "cross_entropy"), 4)  # ln 4
    1.3863
    >>> baseline_loss(torch.tensor([[1.0], [3.0]]), "mse")
    1.0
    >>> round(baseline_loss(torch.tensor([[0.0], [1.0], [1.0], [0.0]]), "binary_cross_entropy"), 4)
    0.6931
    >>> baseline_loss(torch.tensor([1.0]), "huber") is None
    True
    """
    import torch

    t = torch.as_tensor(targets)
    if loss == "cross_entropy" and not t.is_floating_point() and t.numel():
        p = torch.bincount(t.reshape(-1).long()).double()
        p = p[p > 0] / p.sum()
        return float(-(p * p.log()).sum())
    if loss == "binary_cross_entropy" and t.numel() and bool(((t == 0) | (t == 1)).all()):
        q = t.double().reshape(t.shape[0], -1).mean(0).clamp(1e-12, 1 - 1e-12)
        return float(-(q * q.log() + (1 - q) * (1 - q).log()).mean())
    if loss == "mse" and t.is_floating_point() and t.numel() > 1:
        return float(t.double().var(dim=0, unbiased=False).mean())
    return None


def first_nonfinite(values: np.ndarray, steps: Sequence[int] | None = None) -> int | None:
    """The step (index, or ``steps[index]``) of the first NaN/Inf value, else None.

    >>> first_nonfinite(np.array([1.0, 2.0, np.inf, np.nan]), [0, 5, 10, 15])
    10
    >>> first_nonfinite(np.array([1.0])) is None
    True
    """
    bad = np.flatnonzero(~np.isfinite(np.asarray(values, dtype=float)))
    if not bad.size:
        return None
    return int(steps[bad[0]]) if steps is not None else int(bad[0])


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Running median over ``width`` values (trailing), NaNs skipped."""
    return trailing_median(x, width)


def learning_progress(
    losses: np.ndarray,
    baseline: float | None = None,
    min_improvement: float = 0.3,
    steps: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Whether training learned: the smoothed final loss against the baseline and the best.

    Args:
        losses: the loss at each recorded step (NaN where not recorded).
        baseline: the constant predictor's loss (:func:`baseline_loss`), None if unknown (the
            first recorded loss is used instead).
        min_improvement: the relative drop of the final loss (mean of the last quarter)
            below the reference that counts as learning.
        steps: the step of each entry (default ``0, 1, ...``).

    Returns:
        ``{"reference", "final", "best", "improvement", "impaired", "diverged",
        "stopped_improving_step"}``: ``impaired`` is True when the final loss is not below
        ``reference * (1 - min_improvement)``, when it lost more than half of its best gain
        (fell back), or when the loss became non-finite (``diverged``); None with fewer than
        2 finite losses. ``stopped_improving_step`` is the step of the best smoothed loss when
        the run is impaired.

    >>> learning_progress(np.array([1.0, np.nan, np.inf]))["diverged"]
    True
    """
    x = np.asarray(losses, dtype=float)
    st = list(steps) if steps is not None else list(range(len(x)))
    recorded = x[~np.isnan(x)]
    diverged = bool(np.any(~np.isfinite(recorded)))
    ok = np.flatnonzero(np.isfinite(x))
    res: dict[str, Any] = {"reference": None, "final": None, "best": None,
                           "improvement": None, "impaired": True if diverged else None,
                           "diverged": diverged, "stopped_improving_step": None}
    if ok.size < 2:
        return res
    vals = x[ok]
    width = max(1, min(16, vals.size // 8))
    sm = _smooth(vals, width)
    q = max(1, vals.size // 4)
    ref = float(baseline) if baseline is not None and baseline > 0 else float(sm[0])
    final = float(np.mean(vals[-q:]))
    best_i = int(np.nanargmin(sm))
    best = float(sm[best_i])
    gain = ref - best
    learned = final < ref * (1 - min_improvement) if ref > 0 else final < ref
    fell_back = gain > 0 and final > best + 0.5 * gain
    impaired = diverged or not learned or fell_back
    res.update(reference=_r(ref), final=_r(final), best=_r(best),
               improvement=_r((ref - final) / abs(ref)) if ref != 0 else None,
               impaired=bool(impaired),
               stopped_improving_step=int(st[ok[best_i]]) if impaired else None)
    return res


def loss_spikes(losses: np.ndarray, factor: float, warmup: int = 2) -> np.ndarray:
    """Boolean mask: the loss exceeds ``(1 + factor)`` times its running minimum so far.

    The running minimum starts after ``warmup`` finite values (the first steps of training
    are noisy); a non-finite loss counts as a spike.

    >>> loss_spikes(np.array([2.0, 1.9, 1.8, 1.7, 5.0, np.inf]), 0.5).tolist()
    [False, False, False, False, True, True]
    """
    x = np.asarray(losses, dtype=float)
    out = np.zeros(x.shape, dtype=bool)
    lo, seen = math.inf, 0
    for i, v in enumerate(x):
        if np.isnan(v) and not np.isinf(v):
            continue
        if not math.isfinite(v):
            out[i] = True
            continue
        if seen >= warmup and v > (1 + factor) * lo and lo > 0:
            out[i] = True
        lo = min(lo, v)
        seen += 1
    return out


def confirmed_onset(flags: Sequence[bool], steps: Sequence[int], persistence: int,
                    strong: Sequence[bool] | None = None) -> tuple[int, int] | None:
    """``(first, confirmed)`` check indices of the first persistent run of True flags.

    A run of consecutive flagged checks is confirmed once it spans ``persistence`` steps
    (``steps[j] - steps[i] + 1 >= persistence``) over at least two checks, so persistence
    is counted in **steps**, not checks: sampling every 32 steps confirms on the second
    check, every step on the ``persistence``-th. A check flagged in ``strong`` (evidence far
    past its threshold) confirms on its own.

    >>> confirmed_onset([True, False, True, True], [0, 1, 2, 3], 3) is None
    True
    >>> confirmed_onset([False, True], [0, 1], 3, strong=[False, True])
    (1, 1)
    """
    start = None
    for j, f in enumerate(flags):
        if not f:
            start = None
            continue
        if start is None:
            start = j
        if strong is not None and strong[j]:
            return start, j
        if j > start and steps[j] - steps[start] + 1 >= persistence:
            return start, j
    return None
