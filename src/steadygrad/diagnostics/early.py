"""Early-warning signals: trends across checks rather than levels at one check.

Pure functions of host-side arrays that the rules (:mod:`steadygrad.diagnostics.rules`) turn
into evidence for the existing finding kinds. Practitioners' logs (BLOOM 104B's chronicles: the
gradient norm went 12,952 -> 262,623 one step before the loss jumped 3.11 -> 7.71) show that a
divergence is announced by a *growth* of the gradient norm and a loss spike, often a single
step ahead, which a level threshold reached only at the blow-up cannot catch.

Example:
    >>> import numpy as np
    >>> growth_over_min(np.array([1.0, 2.0, 0.5, 40.0])).tolist()
    [nan, 2.0, 0.5, 80.0]
    >>> step_loss_spikes(np.array([2.3, 2.2, 9.0, 80.0, np.nan, np.inf]), 1.0, 2.3).tolist()
    [False, False, True, True, False, False]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["growth_over_min", "relative_rise", "row_nanmedian", "step_loss_spike_levels",
           "step_loss_spikes", "trailing_median"]


def growth_over_min(x: np.ndarray) -> np.ndarray:
    """``x[k] / min(x[:k])`` over the finite positive earlier values (NaN at the first).

    Applied to the global gradient norm across checks: a trend, not a level (a net whose
    gradient norm is large from the start shows no growth).

    >>> growth_over_min(np.array([np.nan, 3.0, 6.0])).tolist()
    [nan, nan, 2.0]
    """
    v = np.asarray(x, dtype=float)
    out = np.full(v.shape, math.nan)
    lo = math.inf
    for k, val in enumerate(v):
        if lo < math.inf and math.isfinite(val):
            out[k] = val / lo
        if math.isfinite(val) and val > 0:
            lo = min(lo, val)
    return out


def relative_rise(x: np.ndarray) -> np.ndarray:
    """``x[k] / x[0]`` (the first finite positive value), NaN before it or where undefined.

    >>> relative_rise(np.array([0.5, 1.0, 5.0])).tolist()
    [1.0, 2.0, 10.0]
    """
    v = np.asarray(x, dtype=float)
    ok = np.flatnonzero(np.isfinite(v) & (v > 0))
    out = np.full(v.shape, math.nan)
    if ok.size:
        with np.errstate(all="ignore"):
            out[ok[0]:] = v[ok[0]:] / v[ok[0]]
    return out


def step_loss_spikes(losses: np.ndarray, factor: float, reference: float | None,
                     window: int = 16) -> np.ndarray:
    """Finite losses above ``(1 + factor)`` times the median of the previous ``window`` finite
    losses **and** above ``reference`` (the chance-level loss, or the first loss): a spike
    that undoes the learning so far. Non-finite losses are not spikes (they are the harm the
    spike warns about).

    >>> step_loss_spikes(np.array([1.0, 0.1, 0.1, 0.5, 0.1]), 1.0, 1.0).tolist()  # below ref
    [False, False, False, False, False]
    """
    return step_loss_spike_levels(losses, (factor,), reference, window)[0]


def step_loss_spike_levels(losses: np.ndarray, factors: Sequence[float],
                           reference: float | None, window: int = 16) -> list[np.ndarray]:
    """:func:`step_loss_spikes` for each of ``factors``, the running median computed once.

    >>> [m.tolist() for m in step_loss_spike_levels(np.array([2.3, 2.2, 5.0]), (1.0, 2.0),
    ...                                              2.3)]
    [[False, False, True], [False, False, False]]
    """
    v = np.asarray(losses, dtype=float)
    outs = [np.zeros(v.shape, dtype=bool) for _ in factors]
    idx = np.flatnonzero(np.isfinite(v))
    if idx.size < 2:
        return outs
    f = v[idx]
    ref = reference if reference is not None and math.isfinite(reference) else float(f[0])
    base = trailing_median(f, window)[:-1]  # the previous ``window`` finite losses
    above = f[1:] > ref
    for out, factor in zip(outs, factors, strict=True):
        out[idx[1:]] = (f[1:] > (1 + factor) * base) & above
    return outs


_CHUNK = 1 << 15  # rows per vectorized block: bounded memory (rows x width floats)


def row_nanmedian(a: np.ndarray) -> np.ndarray:
    """Median of each row of the 2-D ``a`` over its non-NaN entries (``±inf`` included), NaN
    for a row with none: ``np.nanmedian(a, axis=1)`` without its warnings, in one sort.

    The rows are sorted (NaN last); with ``k`` non-NaN entries the median is entry
    ``(k - 1) // 2`` or, for even ``k``, the mean of it and entry ``k // 2``: the same numbers
    as ``np.nanmedian``, which on small rows takes a masked-array path ~4x slower.

    >>> row_nanmedian(np.array([[3.0, np.nan, 1.0, 2.0], [np.nan, np.nan, np.nan, np.nan],
    ...                         [4.0, 1.0, np.inf, 2.0]])).tolist()
    [2.0, nan, 3.0]
    """
    v = np.asarray(a, dtype=float)
    rows, width = v.shape
    if rows == 0 or width == 0:
        return np.full(rows, math.nan)
    srt = np.sort(v, axis=1)  # NaN sorts last
    k = width - np.count_nonzero(np.isnan(srt), axis=1)
    idx = np.arange(rows)
    lo = srt[idx, np.maximum(k - 1, 0) // 2]
    hi = srt[idx, k // 2 - (k == 0)]  # k == 0: any index, masked below
    with np.errstate(all="ignore"):
        out = np.where(k % 2 == 1, lo, (lo + hi) / 2)
    out[k == 0] = math.nan
    return out


def trailing_median(x: np.ndarray, width: int) -> np.ndarray:
    """Median of the finite values among ``x[max(0, i - width + 1) : i + 1]`` for each ``i``
    (NaN where there are none); vectorized in blocks (:func:`row_nanmedian` of the sliding
    windows), so a long run's loss history costs ``O(n * width log width)`` numpy work with
    bounded memory, not a Python loop per step.

    >>> trailing_median(np.array([1.0, 3.0, np.nan, 5.0, 100.0]), 3).tolist()
    [1.0, 2.0, 2.0, 4.0, 52.5]
    >>> trailing_median(np.array([np.nan, 1.0]), 2).tolist()
    [nan, 1.0]
    """
    v = np.asarray(x, dtype=float)
    n = v.shape[0]
    out = np.full(n, math.nan)
    if n == 0:
        return out
    v = np.where(np.isfinite(v), v, math.nan)  # +-inf are skipped like NaN
    padded = np.concatenate([np.full(width - 1, math.nan), v])
    windows = sliding_window_view(padded, width)  # a view: row i is x[i - width + 1 : i + 1]
    for start in range(0, n, _CHUNK):
        out[start:start + _CHUNK] = row_nanmedian(windows[start:start + _CHUNK])
    return out
