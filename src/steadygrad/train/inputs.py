"""Turn what users pass as data into tensors: a Dataset (anything with ``x_train``...) or
a tuple ``(x, y)``; validate before any work starts.

Example:
    >>> import torch
    >>> x, y = torch.zeros(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    >>> d = resolve_data((x, y), validation_data=None, loss=None)
    >>> d.task, d.x.shape[0], d.val is None
    ('multiclass', 6, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from steadygrad.data.validate import check_features
from steadygrad.errors import ConfigError, DataError
from steadygrad.train.losses import TASKS, infer_task, loss_task

__all__ = ["TrainData", "as_xy", "is_dataset", "resolve_data"]


@dataclass
class TrainData:
    """Training tensors, optional validation tensors and the task.

    >>> TrainData(torch.zeros(2, 1), torch.zeros(2, 1), None, "regression").task
    'regression'
    """

    x: torch.Tensor
    y: torch.Tensor
    val: tuple[torch.Tensor, torch.Tensor] | None
    task: str


def is_dataset(data: Any) -> bool:
    """True for a :class:`steadygrad.data.Dataset` (or anything shaped like one).

    >>> is_dataset((1, 2))
    False
    """
    return all(hasattr(data, a) for a in ("x_train", "y_train", "x_val", "y_val", "task"))


def _pair(value: Any, field: str) -> tuple[torch.Tensor, torch.Tensor]:
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, torch.Tensor) for v in value)
    ):
        raise ConfigError(
            field,
            type(value).__name__,
            "a steadygrad Dataset or a tuple (x, y) of tensors",
            hint="convert arrays with torch.as_tensor or use steadygrad.data.from_arrays",
        )
    x, y = value
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
        raise DataError(
            f"{field}: got x with shape {tuple(x.shape)} and y with shape {tuple(y.shape)}; "
            "expected the same number of rows (first dimension) in both"
        )
    if x.shape[0] == 0:
        raise DataError(f"{field}: got 0 rows; expected at least one sample")
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        check_features(x, split=f"{field} x")  # names the count, first row, column and value
        raise DataError(f"{field}: x contains NaN or Inf; clean or impute the features first")
    if y.is_floating_point() and not bool(torch.isfinite(y).all()):
        raise DataError(f"{field}: y contains NaN or Inf; drop or fix those targets first")
    return x, y


def as_xy(
    data: Any, field: str = "data", split: str = "test"
) -> tuple[torch.Tensor, torch.Tensor, str | None]:
    """``(x, y, task)`` from a tuple or from one split of a Dataset (``test``, else ``val``).

    >>> x, y, task = as_xy((torch.zeros(2, 1), torch.zeros(2, 1)))
    >>> task is None
    True
    """
    if is_dataset(data):
        if split == "test" and getattr(data, "x_test", None) is None:
            split = "val"
        x, y = _pair((getattr(data, f"x_{split}"), getattr(data, f"y_{split}")), field)
        return x, y, str(data.task)
    x, y = _pair(data, field)
    return x, y, None


def resolve_data(data: Any, validation_data: Any, loss: Any) -> TrainData:
    """Training/validation tensors and the task (from the Dataset, the loss or the targets).

    >>> d = resolve_data((torch.zeros(4, 2), torch.zeros(4, 1)), None, "bce")
    >>> d.task
    'binary'
    """
    if is_dataset(data):
        x, y = _pair((data.x_train, data.y_train), "data")
        task = str(data.task)
        val = None if data.x_val is None else _pair((data.x_val, data.y_val), "data (val)")
    else:
        x, y = _pair(data, "data")
        task = loss_task(loss) or infer_task(y)
        val = None
    if task not in TASKS:
        raise ConfigError("data.task", task, f"one of {', '.join(TASKS)}")
    if validation_data is not None:
        val = _pair(validation_data, "validation_data")
    if val is not None and tuple(val[0].shape[1:]) != tuple(x.shape[1:]):
        raise DataError(
            f"validation_data: got features of shape {tuple(val[0].shape[1:])}; expected "
            f"{tuple(x.shape[1:])} like the training data"
        )
    return TrainData(x, y, val, task)
