"""Calibration metrics: are a classifier's probabilities honest? (pure functions)

All take predicted probabilities and true labels, as torch tensors or NumPy arrays:

- ``probs`` ``(N, C)`` class probabilities (rows sum to 1), or ``(N,)``/``(N, 1)`` the
  probability of the positive class of a binary problem;
- ``labels`` ``(N,)`` integer classes (``(N, 1)`` 0/1 floats are accepted for binary).

Formulas (``p_i`` the probability vector of example ``i``, ``y_i`` its class):

- negative log-likelihood: ``NLL = -1/N Σ_i log p_{i, y_i}`` (probabilities clipped to
  ``[eps, 1]``, ``eps`` the float64 machine epsilon, like ``sklearn.metrics.log_loss``);
- Brier score (Brier, 1950): ``1/N Σ_i Σ_c (p_{ic} - [y_i = c])²``; for a binary ``(N,)``
  input, ``1/N Σ_i (p_i - y_i)²`` (``sklearn.metrics.brier_score_loss``; the two-column
  form is twice that);
- expected calibration error (Naeini et al., AAAI 2015; Guo et al., "On Calibration of
  Modern Neural Networks", ICML 2017): split the top-label confidences
  ``conf_i = max_c p_{ic}`` into ``M`` **equal-width** bins ``((m-1)/M, m/M]`` (default
  ``M = 15``, Guo et al.'s choice) and ``ECE = Σ_m |B_m|/N · |acc(B_m) - conf(B_m)|``.

Example:
    >>> import torch
    >>> probs = torch.tensor([[0.95, 0.05], [0.85, 0.15], [0.25, 0.75], [0.65, 0.35]])
    >>> labels = torch.tensor([0, 1, 1, 0])
    >>> round(negative_log_likelihood(probs, labels), 4)  # -(ln .95 + ln .15 + ln .75 + ln .65)/4
    0.6667
    >>> round(brier_score(probs, labels), 4)  # 2 * (.05² + .85² + .25² + .35²) / 4
    0.455
    >>> round(expected_calibration_error(probs, labels, n_bins=10), 4)  # (.05+.85+.25+.35)/4
    0.375
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from steadygrad.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_BINS",
    "ReliabilityBins",
    "brier_score",
    "expected_calibration_error",
    "negative_log_likelihood",
    "reliability_bins",
]

DEFAULT_BINS = 15
"""Equal-width confidence bins of the ECE and the reliability diagram (Guo et al., 2017)."""

_SUM_TOLERANCE = 1e-3


def _tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (np.ndarray, list, tuple)):
        return torch.as_tensor(np.asarray(value))
    raise ConfigError(name, type(value).__name__, "a torch tensor or a NumPy array")


def _prepare(probs: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """``(P (N, C) float64, y (N,) int64, binary_1d)`` after validation."""
    p = _tensor(probs, "probs").double()
    y = _tensor(labels, "labels")
    binary = p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if p.ndim not in (1, 2) or y.ndim != 1 or len(p) != len(y) or len(y) == 0:
        raise DataError(
            f"probs/labels: got shapes {tuple(p.shape)} and {tuple(y.shape)}; expected "
            "(N, C) or (N,) probabilities and (N,) labels with the same N > 0"
        )
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or bool((p > 1).any()):
        raise DataError("probs: got values outside [0, 1] or non-finite; expected "
                        "probabilities (apply softmax/sigmoid to logits first)")
    if y.is_floating_point():
        if not bool((y == y.round()).all()):
            raise DataError("labels: got non-integer values; expected class indices")
        y = y.long()
    if binary:
        p = torch.stack([1 - p, p], dim=1)
    elif not torch.allclose(p.sum(1), torch.ones(len(p), dtype=p.dtype), atol=_SUM_TOLERANCE):
        raise DataError("probs: rows do not sum to 1; expected class probabilities "
                        "(softmax of the logits)")
    if bool((y < 0).any()) or bool((y >= p.shape[1]).any()):
        raise DataError(f"labels: got values in [{int(y.min())}, {int(y.max())}]; expected "
                        f"classes in [0, {p.shape[1] - 1}]")
    return p, y.long(), binary


def _check_bins(n_bins: Any) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ConfigError("n_bins", n_bins, "an int >= 1", hint=f"ECE usually uses {DEFAULT_BINS}")
    return n_bins


def negative_log_likelihood(probs: Any, labels: Any) -> float:
    """Mean negative log-likelihood (cross-entropy, nats) of the true classes.

    >>> round(negative_log_likelihood([0.5, 0.5], [0, 1]), 4)  # log 2
    0.6931
    """
    p, y, _ = _prepare(probs, labels)
    eps = float(torch.finfo(torch.float64).eps)
    picked = p.gather(1, y[:, None])[:, 0].clamp(eps, 1.0)
    return float(-picked.log().mean())


def brier_score(probs: Any, labels: Any) -> float:
    """Brier score: mean squared error between the probabilities and the one-hot labels.

    Binary ``(N,)`` input: ``mean((p - y)²)``, as ``sklearn.metrics.brier_score_loss``.

    >>> brier_score([1.0, 0.0], [1, 1]), brier_score([[0.5, 0.5]], [0])
    (0.5, 0.5)
    """
    p, y, binary = _prepare(probs, labels)
    if binary:
        return float(((p[:, 1] - y.double()) ** 2).mean())
    onehot = torch.nn.functional.one_hot(y, p.shape[1]).double()
    return float(((p - onehot) ** 2).sum(1).mean())


class ReliabilityBins(NamedTuple):
    """Per-bin statistics of top-label confidence (``NaN`` confidence/accuracy when empty).

    Attributes:
        edges: ``(M + 1,)`` bin edges ``0, 1/M, ..., 1``.
        confidence: ``(M,)`` mean confidence of the examples in each bin.
        accuracy: ``(M,)`` fraction of them predicted correctly.
        counts: ``(M,)`` number of examples in each bin.

    Example:
        >>> bins = reliability_bins([[0.95, 0.05], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2]],
        ...                         [0, 1, 1, 0], n_bins=4)
        >>> bins.edges.tolist(), bins.counts.tolist()
        ([0.0, 0.25, 0.5, 0.75, 1.0], [0, 0, 2, 2])
        >>> np.round(bins.confidence, 3).tolist(), bins.accuracy.tolist()  # (0.6+0.7)/2, ...
        ([nan, nan, 0.65, 0.875], [nan, nan, 0.5, 1.0])
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray


def reliability_bins(probs: Any, labels: Any, n_bins: int = DEFAULT_BINS) -> ReliabilityBins:
    """Bin the top-label confidences into ``n_bins`` equal-width bins ``((m-1)/M, m/M]``.

    >>> b = reliability_bins([[0.9, 0.1], [0.3, 0.7]], [0, 0], n_bins=2)
    >>> b.counts.tolist(), b.accuracy.tolist()
    ([0, 2], [nan, 0.5])
    """
    n_bins = _check_bins(n_bins)
    p, y, _ = _prepare(probs, labels)
    conf, pred = p.max(dim=1)
    correct = (pred == y).double()
    index = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    counts = torch.bincount(index, minlength=n_bins).double()
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, conf)
    acc_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, correct)
    nonempty = counts > 0
    nan = torch.full((n_bins,), float("nan"), dtype=torch.float64)
    return ReliabilityBins(
        edges=np.linspace(0.0, 1.0, n_bins + 1),
        confidence=torch.where(nonempty, conf_sum / counts.clamp_min(1), nan).numpy(),
        accuracy=torch.where(nonempty, acc_sum / counts.clamp_min(1), nan).numpy(),
        counts=counts.long().numpy(),
    )


def expected_calibration_error(probs: Any, labels: Any, n_bins: int = DEFAULT_BINS) -> float:
    """Expected calibration error with ``n_bins`` equal-width confidence bins (default 15).

    ``ECE = Σ_m |B_m|/N · |acc(B_m) - conf(B_m)|`` over the non-empty bins; 0 for a perfectly
    calibrated model, at most 1.

    >>> expected_calibration_error([[1.0, 0.0], [0.0, 1.0]], [0, 1])  # confident and right
    0.0
    >>> round(expected_calibration_error([[0.8, 0.2]] * 4, [0, 0, 0, 1]), 4)  # conf .8, acc .75
    0.05
    """
    bins = reliability_bins(probs, labels, n_bins)
    counts = bins.counts.astype(np.float64)
    used = counts > 0
    gaps = np.abs(bins.accuracy[used] - bins.confidence[used])
    return float((counts[used] * gaps).sum() / counts.sum())
