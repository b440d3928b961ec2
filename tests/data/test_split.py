"""Split sizes and standardization: properties and the scikit-learn oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from steadygrad.data.split import resolve_size, split_indices
from steadygrad.data.standardize import apply_standardizer, fit_standardizer
from steadygrad.errors import ConfigError


@pytest.mark.parametrize("n", [10, 99, 1797, 60000])
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.25, 0.3, 0.7])
def test_fraction_rounds_like_sklearn_test_size(n: int, fraction: float) -> None:
    _, held = train_test_split(np.arange(n), test_size=fraction, random_state=0)
    assert resolve_size(fraction, n) == len(held)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), data=st.data(), seed=st.one_of(st.none(), st.integers(0, 99)),
       classes=st.integers(1, 6))
def test_split_is_a_partition_of_the_requested_size(
    n: int, data: st.DataObject, seed: int | None, classes: int
) -> None:
    k = data.draw(st.integers(0, n))
    labels = np.arange(n) % classes
    kept, held = split_indices(n, k, seed=seed, labels=labels)
    assert len(held) == k
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(n))
    if seed is None:  # tail split: the last k rows, in order
        assert held.tolist() == list(range(n - k, n))
    else:  # stratified: each class's held count is its exact share, up to rounding
        share = np.bincount(labels, minlength=classes) * k / n
        got = np.bincount(labels[held], minlength=classes)
        assert np.all(np.abs(got - share) < 1 + 1e-9)


def test_resolve_size_rejects_bad_values() -> None:
    for bad in (0.0, 1.0, -0.1, 11, -1, True, "0.2", None):
        with pytest.raises(ConfigError):
            resolve_size(bad, 10)  # type: ignore[arg-type]
    assert resolve_size(10, 10) == 10 and resolve_size(0, 10) == 0


def test_standardizer_matches_sklearn_with_constant_and_huge_features() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([
        rng.normal(3.0, 2.0, 500),
        np.full(500, 7.0),  # constant: std 1, centered to 0
        rng.normal(0.0, 1e3, 500),
    ]).astype(np.float32)
    mean, std = fit_standardizer(x)
    scaler = StandardScaler().fit(x.astype(np.float64))
    np.testing.assert_allclose(mean, scaler.mean_, rtol=1e-6)
    np.testing.assert_allclose(std, scaler.scale_, rtol=1e-6)
    assert std[1] == 1.0
    z = apply_standardizer(x, mean, std)
    np.testing.assert_allclose(z, scaler.transform(x.astype(np.float64)), atol=1e-5)
    assert np.all(z[:, 1] == 0.0)
    assert x[0, 1] == 7.0  # not in place by default


def test_global_standardizer_is_the_mean_and_std_of_all_values() -> None:
    x = np.random.default_rng(1).normal(2.0, 3.0, size=(40, 5, 5))
    mean, std = fit_standardizer(x, "global")
    assert mean.shape == () and math.isclose(float(mean), x.mean(), rel_tol=1e-12)
    assert math.isclose(float(std), x.std(), rel_tol=1e-12)
