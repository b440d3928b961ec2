"""Metrics: tiny accumulators that stay on the device until :meth:`compute`.

A metric has ``update(outputs, targets)`` (in-place adds on the outputs' device, no host
synchronization) and ``compute() -> float`` (the one ``.item()``), plus ``reset()``. The
``direction`` attribute (``"max"`` or ``"min"``) tells early stopping and checkpoints which way
is better. ``METRICS`` maps names to classes; :func:`get_metric` resolves ``"accuracy"`` to
binary accuracy for a binary task, as Keras does.

Example:
    >>> import torch
    >>> acc = get_metric("accuracy", "multiclass")
    >>> acc.update(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0]))
    >>> acc.compute()
    0.5
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from steadygrad._registry import Registry
from steadygrad.errors import ConfigError

__all__ = [
    "METRICS",
    "Accuracy",
    "BinaryAccuracy",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "get_metric",
]


@runtime_checkable
class Metric(Protocol):
    """What the trainer needs from a metric.

    >>> isinstance(Accuracy(), Metric), isinstance(object(), Metric)
    (True, False)
    """

    name: str
    direction: str

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Accumulate a batch (on the device, no synchronization)."""

    def compute(self) -> float:
        """The metric over everything seen since the last :meth:`reset`."""

    def reset(self) -> None:
        """Forget everything seen."""


class _SumMetric:
    """Base of metrics that are a mean of per-element values: keeps a device sum and a count."""

    name = "metric"
    direction = "max"

    def __init__(self) -> None:
        self._total: torch.Tensor | None = None
        self._count = 0

    def _values(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch's per-element values to the running sum (on the device)."""
        values = self._values(outputs.detach(), targets)
        total = values.sum(dtype=torch.float64)
        if self._total is None:
            self._total = total
        else:
            self._total.add_(total)
        self._count += values.numel()

    def compute(self) -> float:
        """The mean over all accumulated elements (``nan`` before any update)."""
        if self._total is None or self._count == 0:
            return float("nan")
        return float(self._total.item()) / self._count

    def reset(self) -> None:
        """Forget the accumulated sum and count."""
        self._total = None
        self._count = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Accuracy(_SumMetric):
    """Fraction of rows whose arg-max logit is the integer target (multiclass).

    >>> m = Accuracy()
    >>> m.update(torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), torch.tensor([1, 1, 1]))
    >>> round(m.compute(), 4)
    0.6667
    """

    name = "accuracy"
    direction = "max"

    def _values(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=-1) == targets


class BinaryAccuracy(_SumMetric):
    """Fraction of correct 0/1 predictions from logits: ``logit > 0`` (probability > 0.5).

    >>> m = BinaryAccuracy()
    >>> m.update(torch.tensor([[2.0], [-1.0], [0.5]]), torch.tensor([[1.0], [1.0], [1.0]]))
    >>> round(m.compute(), 4)
    0.6667
    """

    name = "binary_accuracy"
    direction = "max"

    def _values(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs > 0) == (targets > 0.5)


class MeanAbsoluteError(_SumMetric):
    """Mean of ``|output - target|`` over all elements.

    >>> m = MeanAbsoluteError()
    >>> m.update(torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [0.0]]))
    >>> m.compute()
    2.0
    """

    name = "mae"
    direction = "min"

    def _values(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs - targets).abs()


class MeanSquaredError(_SumMetric):
    """Mean of ``(output - target)^2`` over all elements.

    >>> m = MeanSquaredError()
    >>> m.update(torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [0.0]]))
    >>> m.compute()
    5.0
    """

    name = "mse"
    direction = "min"

    def _values(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs - targets).square()


METRICS: Registry[type] = Registry("metric")
METRICS.add("accuracy", Accuracy, "acc", "sparse_categorical_accuracy")
METRICS.add("binary_accuracy", BinaryAccuracy)
METRICS.add("mae", MeanAbsoluteError, "mean_absolute_error")
METRICS.add("mse", MeanSquaredError, "mean_squared_error")


def get_metric(identifier: str | Metric, task: str) -> Metric:
    """A fresh metric for ``identifier``; ``"accuracy"`` means binary accuracy for ``binary``.

    The metric is logged under the canonical form of the name asked for (``"acc"`` →
    ``"accuracy"``, also for a binary task, as Keras does). A metric instance passes through.

    >>> m = get_metric("acc", "binary")
    >>> m, m.name
    (BinaryAccuracy(), 'accuracy')
    """
    if isinstance(identifier, str):
        cls = METRICS.get(identifier)
        if cls is Accuracy and task == "binary":
            cls = BinaryAccuracy
        metric: Metric = cls()
        metric.name = METRICS.canonical(identifier)  # logged under the name asked for
        return metric
    if isinstance(identifier, Metric):
        return identifier
    raise ConfigError(
        "metrics",
        identifier,
        f"metric names ({', '.join(METRICS.names())}) or objects with update()/compute()/reset()",
    )
