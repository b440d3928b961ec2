"""Fused reductions against plain torch oracles; rule helpers against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from steadygrad.diagnostics.stats import (
    activation_stats,
    depth_slope,
    grad_stats,
    moments,
    persistent_onset,
    sample_groups,
    saturation_params,
    snapshot,
    unit_view,
    weight_stats,
)


@settings(max_examples=25, deadline=None)
@given(layers=st.integers(1, 4), samples=st.integers(1, 9), units=st.integers(1, 7),
       seed=st.integers(0, 1000))
def test_activation_stats_match_torch(layers: int, samples: int, units: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(layers, samples, units, generator=g))
    c, h = saturation_params((0.0, 1.0), 0.01)
    sat = (torch.full((layers, 1, 1), c), torch.full((layers, 1, 1), h))
    sums, unit_max = activation_stats(x, sat)
    n = samples * units
    for i in range(layers):
        mean, std = moments(sums[i, 0].item(), sums[i, 1].item(), n)
        assert mean == pytest.approx(x[i].mean().item(), abs=1e-5)
        assert std == pytest.approx(x[i].std(correction=0).item(), abs=1e-3)
        assert sums[i, 3].item() == (x[i] != 0).sum().item()
        assert sums[i, 4].item() == ((x[i] - c).abs() > h).sum().item()
        assert sums[i, 2].item() == 0
    torch.testing.assert_close(unit_max, x.amax(1))


def test_non_finite_units_are_counted_per_unit() -> None:
    x = torch.zeros(1, 4, 3)
    x[0, 1, 0] = float("nan")
    x[0, 2, 0] = float("inf")
    x[0, 3, 2] = float("-inf")
    sums, _ = activation_stats(x)
    assert sums[0, 2].item() == 2  # units 0 and 2
    g = grad_stats(x)
    assert g[0, 1].item() == 2 and not math.isfinite(g[0, 0].item())


def test_unit_view_puts_conv_channels_last() -> None:
    t = torch.arange(2 * 3 * 2 * 2.0).reshape(2, 3, 2, 2)
    v = unit_view(t, 1)
    assert v.shape == (8, 3)
    torch.testing.assert_close(v[:, 1].sort().values, t[:, 1].flatten().sort().values)


def test_weight_stats_update_ratio_and_grad_norm() -> None:
    w = [torch.randn(50, 30), torch.randn(7)]
    groups = sample_groups(w, size=1000)
    before = snapshot(groups)
    old = [t.clone() for t in w]
    for t in w:
        t.add_(0.01 * torch.randn_like(t))
    grads = [torch.randn_like(t) for t in w]
    st_, order = weight_stats(grads, groups, before, [t.numel() for t in w])
    for row, i in enumerate(order):
        ref = w[i].flatten()[:1000]
        ratio = ((ref - old[i].flatten()[:1000]).norm() / ref.norm()).item()
        assert st_[row, 2].item() == pytest.approx(ratio, rel=1e-5)
        assert st_[row, 1].item() == pytest.approx(grads[i].norm().item(), rel=1e-5)
        assert st_[row, 0].item() == pytest.approx(ref.pow(2).mean().sqrt().item(), rel=1e-5)


def test_depth_slope_recovers_a_geometric_decay() -> None:
    decay = 0.5  # each layer down multiplies the gradient by 0.5
    logs = [math.log10(decay ** (9 - i)) for i in range(10)]
    assert depth_slope(logs) == pytest.approx(-math.log10(decay))
    assert math.isnan(depth_slope([np.nan, 1.0]))


def test_persistent_onset_needs_consecutive_checks() -> None:
    assert persistent_onset([True, False] * 5, 2) is None
    assert persistent_onset([False, True, True], 2) == 1


@settings(max_examples=40, deadline=None)
@given(layers=st.integers(1, 5), samples=st.integers(1, 9), units=st.integers(1, 7),
       scale=st.sampled_from([1.0, 1e20]), nan=st.booleans(), seed=st.integers(0, 1000))
def test_stack_stats_match_float64_torch(layers: int, samples: int, units: int, scale: float,
                                         nan: bool, seed: int) -> None:
    """float32 accumulation on CPU gives the float64 oracle's numbers (rtol 1e-6), and a
    finite layer whose float32 sum of squares overflows (``scale=1e20``) still reads finite."""
    from steadygrad.diagnostics.stats import stack_stats

    g = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(layers, samples, units, generator=g)) * scale
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
