"""Fused reductions against plain torch oracles; rule helpers against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from steadygrad.diagnostics.stats import (
    UPDATE_SAMPLE,
    depth_slope,
    nonfinite_units,
    norms_of,
    persistent_onset,
    stack_stats,
    unit_view,
)


def test_non_finite_units_are_counted_per_unit() -> None:
    x = torch.zeros(1, 4, 3)
    x[0, 1, 0] = float("nan")
    x[0, 2, 0] = float("inf")
    x[0, 3, 2] = float("-inf")
    assert nonfinite_units(x).tolist() == [2.0]  # units 0 and 2
    flat = stack_stats(x, n_act=0).tolist()  # sum, norm, non-finite units
    assert flat[2] == 2 and not math.isfinite(flat[1])


def test_unit_view_puts_conv_channels_last() -> None:
    t = torch.arange(2 * 3 * 2 * 2.0).reshape(2, 3, 2, 2)
    v = unit_view(t, 1)
    assert v.shape == (8, 3)
    torch.testing.assert_close(v[:, 1].sort().values, t[:, 1].flatten().sort().values)


def test_weight_samples_update_ratio_and_grad_norm() -> None:
    from steadygrad.diagnostics.collect import WeightSamples

    w = [torch.randn(50, 30), torch.randn(7)]
    ws = WeightSamples()
    ws.snapshot(w, fresh=False)
    old = [t.clone() for t in w]
    for t in w:
        t.add_(0.01 * torch.randn_like(t))
    grads = [torch.randn_like(t) for t in w]
    rec = torch.zeros(6, dtype=torch.float64)
    ws.write(rec, 0, list(grads))
    for i in range(2):
        ref = w[i].flatten()[:UPDATE_SAMPLE]
        assert rec[i].item() == pytest.approx(ref.norm().item(), rel=1e-5)
        delta = (ref - old[i].flatten()[:UPDATE_SAMPLE]).norm().item()
        assert rec[2 + i].item() == pytest.approx(delta, rel=1e-5)
        assert rec[4 + i].item() == pytest.approx(grads[i].norm().item(), rel=1e-5)


def test_depth_slope_recovers_a_geometric_decay() -> None:
    decay = 0.5  # each layer down multiplies the gradient by 0.5
    logs = [math.log10(decay ** (9 - i)) for i in range(10)]
    assert depth_slope(logs) == pytest.approx(-math.log10(decay))
    assert math.isnan(depth_slope([np.nan, 1.0]))


def test_persistent_onset_needs_consecutive_checks() -> None:
    assert persistent_onset([True, False] * 5, 2) is None
    assert persistent_onset([False, True, True], 2) == 1


@settings(max_examples=40, deadline=None)
@given(n_rows=st.integers(0, 3), n_tensors=st.integers(0, 3), width=st.integers(2, 9),
       scale=st.sampled_from([1.0, 1e20]), nan=st.booleans(), seed=st.integers(0, 1000))
def test_norms_of_match_float64_torch(n_rows: int, n_tensors: int, width: int, scale: float,
                                      nan: bool, seed: int) -> None:
    """One call, one finiteness check: the float64 oracle's norms (rtol 1e-6), redone in
    float64 exactly when a float32 norm is not finite (two entries of 1e20: their float32
    squares overflow), a NaN entry giving its NaN."""
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randn(2, width, generator=g) * scale for _ in range(n_rows)]
    tensors = [torch.randn(width, 2, generator=g) * scale for _ in range(n_tensors)]
    every = [*rows, *tensors]
    for t in every:
        t.view(-1)[:2] = scale  # in one row of each, so in one norm
    if nan and every:
        every[-1].view(-1)[-1] = math.nan
    f32 = [v for r in rows for v in torch.linalg.vector_norm(r, dim=1).tolist()] + [
        float(torch.linalg.vector_norm(t)) for t in tensors]
    redone = not all(map(math.isfinite, f32))
    assert redone == (bool(every) and (scale > 1 or nan))  # premise: float32 alone overflows
    got = norms_of(rows, tensors)
    expected = [v for r in rows for v in r.double().norm(dim=1).tolist()] + [
        float(t.double().norm()) for t in tensors]
    np.testing.assert_allclose(got.tolist(), expected, rtol=1e-6)
    assert got.dtype == (torch.float64 if redone else torch.float32)


@settings(max_examples=40, deadline=None)
@given(layers=st.integers(1, 5), samples=st.integers(1, 9), units=st.integers(1, 7),
       scale=st.sampled_from([1.0, 1e20]), nan=st.booleans(), seed=st.integers(0, 1000))
def test_stack_stats_match_float64_torch(layers: int, samples: int, units: int, scale: float,
                                         nan: bool, seed: int) -> None:
    """float32 accumulation on CPU gives the float64 oracle's numbers (rtol 1e-6), and a
    finite layer whose float32 sum of squares overflows (``scale=1e20``) still reads finite."""
    g = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(layers, samples, units, generator=g)) * scale
    x[0, 0, 0] = scale  # layer 0 always holds one entry of the scale
    if scale > 1:  # premise: its float32 sum of squares overflows
        assert math.isinf(float((x[0] * x[0]).sum()))
    if nan:
        x[-1, 0, 0] = math.nan
    n_act = max(1, layers // 2)
    sat = (torch.zeros(n_act, 1, 1), torch.full((n_act, 1, 1), 0.5 * scale))
    got = stack_stats(x, n_act, sat).tolist()
    rows = x.double().reshape(layers, -1)
    finite = torch.isfinite(rows)
    expected = (rows.sum(1).tolist() + rows.norm(dim=1).tolist()
                + (~finite.view(layers, samples, units)).any(1).sum(1).double().tolist()
                + rows[:n_act].sign().norm(dim=1).tolist()
                + ((x[:n_act].double() - 0).abs() > 0.5 * scale).reshape(n_act, -1)
                .sum(1).double().tolist())
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert math.isfinite(got[layers]) == (not nan or layers > 1)  # layer 0 finite unless NaN
