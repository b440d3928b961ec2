"""The vectorized running medians of the early-warning signals equal their plain loops."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from steadygrad.diagnostics.early import step_loss_spikes, trailing_median

values = st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(math.nan), st.just(math.inf)),
                  max_size=80)


def _loop_median(x: np.ndarray, width: int) -> np.ndarray:
    out = np.full(x.shape, math.nan)
    for i in range(len(x)):
        w = x[max(0, i - width + 1): i + 1]
        w = w[np.isfinite(w)]
        if w.size:
            out[i] = float(np.median(w))
    return out


def _loop_spikes(v: np.ndarray, factor: float, reference: float | None,
                 window: int) -> np.ndarray:
    out = np.zeros(v.shape, dtype=bool)
    hist: list[float] = []
    ref = reference if reference is not None and math.isfinite(reference) else None
    for k, val in enumerate(v):
        if not math.isfinite(val):
            continue
        if hist:
            base = float(np.median(hist[-window:]))
            if ref is None:
                ref = hist[0]
            out[k] = val > (1 + factor) * base and val > ref
        hist.append(val)
    return out


@settings(max_examples=200, deadline=None)
@given(values, st.integers(1, 20))
def test_trailing_median_equals_the_loop(xs: list[float], width: int) -> None:
    x = np.array(xs, dtype=float)
    np.testing.assert_array_equal(trailing_median(x, width), _loop_median(x, width))


@settings(max_examples=200, deadline=None)
@given(values, st.floats(0.1, 20.0), st.one_of(st.none(), st.floats(-10, 10)),
       st.integers(1, 20))
def test_step_loss_spikes_equals_the_loop(xs: list[float], factor: float,
                                          reference: float | None, window: int) -> None:
    v = np.array(xs, dtype=float)
    np.testing.assert_array_equal(step_loss_spikes(v, factor, reference, window),
                                  _loop_spikes(v, factor, reference, window))


def test_blocks_join_seamlessly(monkeypatch) -> None:
    import steadygrad.diagnostics.early as early

    x = np.random.default_rng(0).normal(size=200)
    x[::7] = math.nan
    monkeypatch.setattr(early, "_CHUNK", 16)
    np.testing.assert_array_equal(early.trailing_median(x, 9), _loop_median(x, 9))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 6).flatmap(lambda w: st.lists(
    st.lists(st.one_of(st.floats(-1e300, 1e300), st.just(math.nan), st.just(math.inf),
                       st.just(-math.inf)), min_size=w, max_size=w), max_size=12)))
def test_row_nanmedian_equals_numpy(rows: list[list[float]]) -> None:
    import warnings

    from steadygrad.diagnostics.early import row_nanmedian

    a = np.array(rows, dtype=float).reshape(len(rows), -1 if rows and rows[0] else 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns on an all-NaN row
        expected = np.nanmedian(a, axis=1) if a.size else np.full(len(rows), math.nan)
    np.testing.assert_array_equal(row_nanmedian(a), expected)


@settings(max_examples=100, deadline=None)
@given(values, st.floats(0.1, 20.0), st.floats(0.1, 20.0),
       st.one_of(st.none(), st.floats(-10, 10)))
def test_spike_levels_equal_one_call_per_factor(xs: list[float], a: float, b: float,
                                                reference: float | None) -> None:
    from steadygrad.diagnostics.early import step_loss_spike_levels

    v = np.array(xs, dtype=float)
    got = step_loss_spike_levels(v, (a, b), reference)
    for mask, factor in zip(got, (a, b), strict=True):
        np.testing.assert_array_equal(mask, _loop_spikes(v, factor, reference, 16))
