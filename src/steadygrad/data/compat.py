"""Targets versus model outputs: the checks the trainer runs before the first step.

:func:`validate_targets` checks targets in :class:`~steadygrad.data.Dataset` form against a
number of model outputs; :func:`check_compatible` checks a whole dataset against a model's
per-sample output shape. Together they guarantee that no loss ever sees a silent broadcast
(an ``(N, 1)`` output against ``(N,)`` targets gives an ``(N, N)`` loss in torch).

Example:
    >>> import torch
    >>> validate_targets(torch.tensor([[0.5], [1.5]]), "regression", 1)  # passes silently
    >>> validate_targets(torch.tensor([[0.5], [1.5]]), "regression", 2)
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: y: got regression targets of shape (2, 1); expected (N, 2) to
    match 2 model outputs; fix: use 1 output unit
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from steadygrad.data.validate import TASKS, _plural
from steadygrad.errors import DataError

if TYPE_CHECKING:
    from steadygrad.data.dataset import Dataset

__all__ = ["check_compatible", "validate_targets"]


def validate_targets(y: torch.Tensor, task: str, num_outputs: int, *, split: str = "y") -> None:
    """Check targets in :class:`~steadygrad.data.Dataset` form against a model's output width.

    * ``multiclass``: ``int64`` of shape ``(N,)`` with values in ``[0, num_outputs)``
      (``num_outputs`` logits for cross-entropy);
    * ``binary``: floating ``(N, 1)`` of 0/1 and ``num_outputs == 1`` (one logit,
      ``BCEWithLogitsLoss``);
    * ``regression``: floating ``(N, num_outputs)``. A 1-D ``(N,)`` target is rejected: it
      would broadcast against an ``(N, 1)`` output into an ``(N, N)`` loss. Reshape it
      explicitly (``y.reshape(-1, 1)``); the loaders do this once, at load time.

    >>> validate_targets(torch.tensor([0.5, 1.5]), "regression", 1, split="y_train")
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: y_train: got regression targets of shape (2,); expected (N, 1) to
    match 1 model output; fix: reshape explicitly with y.reshape(-1, 1) (a (N,) target would
    broadcast against an (N, 1) output)
    >>> validate_targets(torch.tensor([0, 1, 2]), "multiclass", 3)  # passes silently
    """
    if task not in TASKS:
        raise DataError(f"task: got {task!r}; expected one of {', '.join(TASKS)}")
    if not isinstance(y, torch.Tensor):
        raise DataError(f"{split}: got {type(y).__name__}; expected a torch.Tensor")
    shape = tuple(y.shape)
    if task == "multiclass":
        if y.dtype != torch.int64 or y.ndim != 1:
            raise DataError(
                f"{split}: got {y.dtype} targets of shape {shape}; expected int64 class indices "
                "of shape (N,) for multiclass; fix: load labels through steadygrad.data"
            )
        if num_outputs < 2:
            raise DataError(
                f"{split}: multiclass targets need at least 2 model outputs; got {num_outputs}; "
                "fix: use num_classes output units, or task='binary' for a 1-unit head"
            )
        if y.numel():
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= num_outputs:
                bad = (y < 0) | (y >= num_outputs)
                row = int(torch.nonzero(bad)[0, 0])
                raise DataError(
                    f"{split}: label {int(y[row])} at row {row} is out of range for "
                    f"{num_outputs} model outputs; expected 0..{num_outputs - 1}; fix: the "
                    "number of classes and of output units must agree"
                )
        return
    if not y.is_floating_point():
        raise DataError(
            f"{split}: got {y.dtype} targets; expected a floating dtype for {task}; "
            "fix: load targets through steadygrad.data"
        )
    if task == "binary":
        if num_outputs != 1 or shape[1:] != (1,) or y.ndim != 2:
            raise DataError(
                f"{split}: got binary targets of shape {shape} for {num_outputs} model "
                "outputs; expected (N, 1) targets and 1 output (one logit, BCEWithLogitsLoss); "
                "fix: use a 1-unit head, or task='multiclass' for a softmax head"
            )
        bad = (y != 0) & (y != 1)
        if bool(bad.any()):
            row = int(torch.nonzero(bad)[0, 0])
            raise DataError(
                f"{split}: binary target {float(y[row, 0])!r} at row {row}; expected 0 or 1"
            )
        return
    if y.ndim != 2:
        fix = (
            f"fix: reshape explicitly with y.reshape(-1, {num_outputs}) (a (N,) target would "
            f"broadcast against an (N, {num_outputs}) output)"
            if y.ndim == 1
            else "fix: flatten targets to (N, k)"
        )
        raise DataError(
            f"{split}: got regression targets of shape {shape}; expected (N, {num_outputs}) to "
            f"match {_plural(num_outputs, 'model output')}; {fix}"
        )
    if shape[1] != num_outputs:
        raise DataError(
            f"{split}: got regression targets of shape {shape}; expected (N, {num_outputs}) to "
            f"match {_plural(num_outputs, 'model output')}; fix: use "
            f"{_plural(shape[1], 'output unit')}"
        )


def _expected_output(dataset: Dataset) -> tuple[int, ...]:
    if dataset.task == "multiclass":
        return (int(dataset.num_classes or 0),)
    if dataset.task == "binary":
        return (1,)
    return tuple(dataset.y_train.shape[1:])


def check_compatible(dataset: Dataset, output_shape: Sequence[int]) -> None:
    """Raise unless a model's per-sample output shape fits the dataset's targets exactly.

    The trainer calls this before the first step: no shape mismatch between model output and
    targets reaches the loss, so nothing is silently broadcast.

    Args:
        dataset: the loaded :class:`~steadygrad.data.Dataset`.
        output_shape: the model's output shape for ONE sample (without the batch dimension),
            e.g. ``model(x[:1]).shape[1:]``.

    Raises:
        DataError: the expected and received shapes and what to change.

    >>> import numpy as np
    >>> from steadygrad.data.arrays import from_arrays
    >>> ds = from_arrays(np.eye(4)[[0, 1, 2, 3] * 5], np.arange(20) % 3, val_size=5)
    >>> check_compatible(ds, (3,))  # passes silently
    >>> check_compatible(ds, (1,))
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: model output: got per-sample shape (1,); expected (3,) for
    multiclass targets with 3 classes; fix: give the model 3 output units (logits for
    cross-entropy); a 1-unit head fits task='binary'
    """
    got = tuple(int(d) for d in output_shape)
    expected = _expected_output(dataset)
    if got != expected:
        if dataset.task == "multiclass":
            what = f"multiclass targets with {dataset.num_classes} classes"
            fix = f"give the model {expected[0]} output units (logits for cross-entropy)"
            if got == (1,):
                fix += "; a 1-unit head fits task='binary'"
        elif dataset.task == "binary":
            what = "binary targets of shape (N, 1)"
            fix = "use a 1-unit head (one logit, BCEWithLogitsLoss)"
            if got == (2,):
                fix += ", or load the data with task='multiclass' for a 2-unit softmax head"
        else:
            what = f"regression targets of shape (N, {', '.join(map(str, expected))})"
            fix = (
                f"make the model output {expected} per sample; a squeezed () output would "
                "broadcast against (N, 1) targets"
                if got == ()
                else f"make the model output {expected} per sample"
            )
        raise DataError(
            f"model output: got per-sample shape {got}; expected {expected} for {what}; "
            f"fix: {fix}"
        )
    num_outputs = math.prod(expected)
    for split, y in (("y_train", dataset.y_train), ("y_val", dataset.y_val),
                     ("y_test", dataset.y_test)):
        if y is not None:
            validate_targets(y, dataset.task, num_outputs, split=split)
