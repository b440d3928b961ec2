"""Calibration metrics against closed forms and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss, log_loss

from steadygrad.errors import ConfigError, DataError
from steadygrad.uncertainty.calibration import (
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from steadygrad.uncertainty.reliability import reliability_diagram


def _random(n: int = 500, c: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return p, rng.integers(0, c, size=n)


def test_nll_and_brier_match_sklearn_multiclass() -> None:
    p, y = _random()
    assert negative_log_likelihood(p, y) == pytest.approx(log_loss(y, p, labels=range(4)),
                                                          rel=1e-12)
    assert brier_score(p, y) == pytest.approx(brier_score_loss(y, p, labels=range(4)), rel=1e-12)
    assert negative_log_likelihood(torch.tensor(p), torch.tensor(y)) == pytest.approx(
        negative_log_likelihood(p, y), rel=1e-12)


def test_binary_positive_class_probabilities_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    p, y = rng.uniform(0.01, 0.99, 300), rng.integers(0, 2, 300)
    assert brier_score(p, y) == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert negative_log_likelihood(p, y) == pytest.approx(log_loss(y, p), rel=1e-12)
    two_col = np.stack([1 - p, p], 1)
    assert brier_score(two_col, y) == pytest.approx(2 * brier_score(p, y), rel=1e-12)
    assert brier_score(p[:, None], y[:, None].astype(float)) == pytest.approx(brier_score(p, y))


def test_closed_form_cases() -> None:
    # NLL of a uniform prediction over C classes is log C; Brier is 1 - 1/C
    p = np.full((6, 3), 1 / 3)
    y = np.array([0, 1, 2, 0, 1, 2])
    assert negative_log_likelihood(p, y) == pytest.approx(math.log(3))
    assert brier_score(p, y) == pytest.approx(1 - 1 / 3)
    # a certain, wrong prediction is clipped at float64 eps instead of returning inf
    assert negative_log_likelihood([[1.0, 0.0]], [1]) == pytest.approx(
        -math.log(np.finfo(np.float64).eps))
    # ECE: one bin holding conf 0.9 with accuracy 0.6 and one with conf 0.55 / acc 0.4
    probs = [[0.9, 0.1]] * 5 + [[0.45, 0.55]] * 5
    labels = [0, 0, 0, 1, 1, 1, 0, 1, 0, 0]  # 3/5 right, then 2/5 right
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(
        0.5 * abs(0.6 - 0.9) + 0.5 * abs(0.4 - 0.55))
    # a single bin reduces the ECE to |accuracy - mean confidence|
    pr, yr = _random(seed=3)
    conf, acc = pr.max(1).mean(), (pr.argmax(1) == yr).mean()
    assert expected_calibration_error(pr, yr, n_bins=1) == pytest.approx(abs(acc - conf))


def test_ece_of_a_calibrated_sampler_is_small_and_bins_are_consistent() -> None:
    rng = np.random.default_rng(4)
    p = rng.dirichlet(np.ones(3), size=20000)
    y = np.array([rng.choice(3, p=row) for row in p])  # labels drawn from the probabilities
    assert expected_calibration_error(p, y) < 0.02
    over = p ** 3 / (p ** 3).sum(1, keepdims=True)  # sharpened: over-confident
    assert expected_calibration_error(over, y) > 0.1
    bins = reliability_bins(p, y, n_bins=15)
    assert bins.counts.sum() == len(y) and len(bins.edges) == 16
    conf = p.max(1)
    for m in range(15):  # each example sits in ((m-1)/M, m/M]
        inside = (conf > bins.edges[m]) & (conf <= bins.edges[m + 1])
        assert bins.counts[m] == inside.sum()


def test_invalid_inputs_fail_clearly() -> None:
    with pytest.raises(DataError, match="sum to 1"):
        brier_score([[0.5, 0.6]], [0])
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        brier_score([1.2], [1])
    with pytest.raises(DataError, match="classes in"):
        negative_log_likelihood([[0.5, 0.5]], [2])
    with pytest.raises(DataError, match="shapes"):
        negative_log_likelihood([[0.5, 0.5]], [0, 1])
    with pytest.raises(ConfigError, match="n_bins"):
        expected_calibration_error([[0.5, 0.5]], [0], n_bins=0)
    with pytest.raises(ConfigError, match="probs"):
        brier_score("0.5", [0])


def test_reliability_diagram_writes_png_and_refuses_overwrite(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    p, y = _random()
    out = reliability_diagram(p, y, tmp_path / "sub" / "rel.png", n_bins=10)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="overwrite"):
        reliability_diagram(p, y, out)
    reliability_diagram(p, y, out, overwrite=True)
    with pytest.raises(ConfigError, match="png"):
        reliability_diagram(p, y, tmp_path / "rel.jpg")
