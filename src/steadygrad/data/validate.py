"""Data validation: every check raises :class:`~steadygrad.errors.DataError` before work starts.

Each message names the split, the problem, the offending row/column/index, what was expected
and how to fix it. The loaders run :func:`check_features`, :func:`check_labels`,
:func:`check_lengths` and :func:`check_feature_shapes` on the *raw* arrays (so row numbers refer
to the rows the user gave), and the trainer calls
:func:`steadygrad.data.compat.check_compatible` before training so that a model output and its
targets never meet through a silent broadcast.

Example:
    >>> import numpy as np
    >>> x = np.array([[1.0, 2.0], [3.0, np.nan]])
    >>> check_features(x, split="x_train")
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: x_train: 1 non-finite value (NaN or Inf); first at row 1, column 1
    (nan); fix: impute or drop those rows before loading
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch

from steadygrad.data.limits import MAX_CLASSES
from steadygrad.errors import DataError

__all__ = [
    "TASKS",
    "Task",
    "check_class_limit",
    "check_feature_shapes",
    "check_features",
    "check_labels",
    "check_lengths",
    "check_nonempty",
    "check_representable",
    "infer_task",
]

Task = Literal["multiclass", "binary", "regression"]
TASKS: tuple[str, ...] = ("multiclass", "binary", "regression")
_NUMERIC_KINDS = "biuf"  # bool, signed int, unsigned int, float


def _numpy(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _where(index: tuple[int, ...], columns: Sequence[str] | None = None) -> str:
    """``row r, column c`` (2-D), ``row r, position (i, j)`` (images) or ``row r`` (1-D)."""
    row = f"row {index[0]}"
    rest = index[1:]
    if not rest:
        return row
    if len(rest) == 1:
        name = f" {columns[rest[0]]!r}" if columns is not None and rest[0] < len(columns) else ""
        return f"{row}, column {rest[0]}{name}"
    return f"{row}, position {tuple(int(i) for i in rest)}"


def _first(mask: np.ndarray) -> tuple[int, ...]:
    flat = int(np.argmax(mask.reshape(-1)))
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _check_numeric(a: np.ndarray, split: str, columns: Sequence[str] | None) -> None:
    if a.dtype.kind in _NUMERIC_KINDS:
        return
    if a.dtype.kind == "O":
        for index in np.ndindex(a.shape):
            v = a[index]
            if isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating)):
                continue
            raise DataError(
                f"{split}: got a non-numeric value {v!r} at {_where(index, columns)}; expected "
                "numbers (bool, int or float); fix: encode categorical values as numbers "
                "before loading"
            )
    raise DataError(
        f"{split}: got dtype {a.dtype}; expected numbers (bool, int or float); fix: convert "
        "strings/objects to numbers (encode categories) before loading"
    )


def check_features(
    x: Any, *, split: str = "x", columns: Sequence[str] | None = None
) -> None:
    """Check a feature array: numeric dtype, shape ``(samples, *features)``, all finite.

    Args:
        x: array-like or tensor of shape ``(N, *features)``.
        split: name used in the message (``"x_train"``, a file name, ...).
        columns: optional feature names, quoted next to a column index in messages.

    Raises:
        DataError: non-numeric dtype (with the first offending row/column for object arrays),
            fewer than 2 dimensions, or NaN/Inf values (count, first row and column, value).

    >>> check_features(np.zeros((3, 2)), split="x_train")  # passes silently
    >>> check_features(np.zeros(3), split="x_train")
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: x_train: got shape (3,); expected (samples, features...) with at
    least 2 dimensions; fix: a single feature is x.reshape(-1, 1)
    """
    a = _numpy(x)
    _check_numeric(a, split, columns)
    if a.ndim < 2:
        raise DataError(
            f"{split}: got shape {a.shape}; expected (samples, features...) with at least 2 "
            "dimensions; fix: a single feature is x.reshape(-1, 1)"
        )
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        count = int(bad.sum())
        if count:
            index = _first(bad)
            raise DataError(
                f"{split}: {_plural(count, 'non-finite value')} (NaN or Inf); first at "
                f"{_where(index, columns)} ({a[index].item()!r}); fix: impute or drop those rows "
                "before loading"
            )


def check_lengths(x: Any, y: Any, *, split: str = "") -> None:
    """Check that features and targets have the same number of rows.

    >>> check_lengths(np.zeros((3, 2)), np.zeros(2), split="train")
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: train: x has 3 rows but y has 2; expected one target per sample;
    fix: pass matching arrays
    """
    nx, ny = len(_numpy(x)), len(_numpy(y))
    if nx != ny:
        prefix = f"{split}: " if split else ""
        raise DataError(
            f"{prefix}x has {nx} rows but y has {ny}; expected one target per sample; "
            "fix: pass matching arrays"
        )


def check_nonempty(n: int, *, split: str, hint: str = "") -> None:
    """Check that a split has at least one row.

    >>> check_nonempty(0, split="train", hint="lower val_size")
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: train: split is empty (0 rows); expected at least 1 row; fix: lower
    val_size
    """
    if n < 1:
        fix = f"; fix: {hint}" if hint else ""
        raise DataError(f"{split}: split is empty ({n} rows); expected at least 1 row{fix}")


def check_feature_shapes(shapes: Mapping[str, tuple[int, ...]], *, what: str = "feature") -> None:
    """Check that every split has the same per-sample feature shape (the first one's).

    Args:
        shapes: split name -> per-sample shape (``x.shape[1:]``), reference first.
        what: ``"feature"`` or ``"target"``, for the message.

    >>> check_feature_shapes({"x_train": (4,), "x_test": (3,)})
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: x_test: got per-sample feature shape (3,); expected (4,) like
    x_train; fix: use the same columns in every split
    """
    items = list(shapes.items())
    if not items:
        return
    ref_name, ref = items[0]
    for name, shape in items[1:]:
        if tuple(shape) != tuple(ref):
            raise DataError(
                f"{name}: got per-sample {what} shape {tuple(shape)}; expected {tuple(ref)} "
                f"like {ref_name}; fix: use the same columns in every split"
            )


def _check_finite_targets(a: np.ndarray, split: str) -> None:
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        count = int(bad.sum())
        if count:
            index = _first(bad)
            raise DataError(
                f"{split}: {_plural(count, 'non-finite target')} (NaN or Inf); first at "
                f"{_where(index)} ({a[index].item()!r}); fix: drop or impute those rows"
            )


def check_labels(
    y: Any, *, task: str, num_classes: int | None = None, split: str = "y"
) -> None:
    """Check raw targets against a task before they are converted.

    Classification (``multiclass``, ``binary``) labels must be 1-D integer class indices
    (integral floats and bools are accepted), non-negative and below ``num_classes``
    (``binary``: 0 or 1). Regression targets must be finite numbers of shape ``(N,)`` or
    ``(N, k)``.

    Raises:
        DataError: naming the first offending row and its value, with the count.

    >>> check_labels(np.array([0, 3, 1]), task="multiclass", num_classes=3, split="y_train")
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: y_train: 1 label out of range; first at row 1 (3); expected class
    indices 0..2 (num_classes=3); fix: pass num_classes=4 or relabel
    >>> check_labels(np.array([0.0, 0.5]), task="binary", split="y")
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: y: 1 non-integer label; first at row 1 (0.5); expected integer
    class indices; fix: for real-valued targets use task='regression'
    """
    if task not in TASKS:
        raise DataError(f"task: got {task!r}; expected one of {', '.join(TASKS)}")
    a = _numpy(y)
    _check_numeric(a, split, None)
    if task == "regression":
        if a.ndim not in (1, 2):
            raise DataError(
                f"{split}: got target shape {a.shape}; expected (N,) or (N, k) for regression; "
                "fix: reshape targets to (N, k)"
            )
        _check_finite_targets(a, split)
        return
    if a.ndim == 2 and a.shape[1] == 1 and task == "binary":
        a = a[:, 0]
    if a.ndim != 1:
        hint = (
            "fix: one-hot labels become class indices with y.argmax(1)"
            if a.ndim == 2
            else "fix: pass one class index per sample"
        )
        raise DataError(
            f"{split}: got label shape {a.shape}; expected (N,) class indices; {hint}"
        )
    _check_finite_targets(a, split)
    if a.dtype.kind == "f":
        bad = a != np.round(a)
        if bad.any():
            index = _first(bad)
            raise DataError(
                f"{split}: {_plural(int(bad.sum()), 'non-integer label')}; first at "
                f"{_where(index)} ({a[index].item()!r}); expected integer class indices; fix: for "
                "real-valued targets use task='regression'"
            )
    bad = a < 0
    if bad.any():
        index = _first(bad)
        raise DataError(
            f"{split}: {_plural(int(bad.sum()), 'negative label')}; first at {_where(index)} "
            f"({a[index].item()!r}); expected class indices 0..K-1; fix: relabel classes as 0..K-1"
        )
    limit = 2 if task == "binary" else num_classes
    if limit is not None:
        bad = a >= limit
        if bad.any():
            index = _first(bad)
            value = a[index].item()
            fix = (
                "fix: binary labels are 0 or 1; for more classes use task='multiclass'"
                if task == "binary"
                else f"fix: pass num_classes={int(a.max()) + 1} or relabel"
            )
            raise DataError(
                f"{split}: {_plural(int(bad.sum()), 'label')} out of range; first at "
                f"{_where(index)} ({value!r}); expected class indices 0..{limit - 1} "
                f"(num_classes={limit}); {fix}"
            )


def check_representable(
    x: Any, dtype: torch.dtype, *, split: str = "x", columns: Sequence[str] | None = None,
    scale: float | None = None,
) -> None:
    """Refuse finite values that become Inf when cast to ``dtype`` (after dividing by ``scale``).

    Raises:
        DataError: naming the count, the first row and column, the value and the dtype's range.

    >>> check_representable(np.array([[1.0], [1e39]]), torch.float32, split="x_train")
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: x_train: 1 value beyond the float32 range (|x| <= 3.403e+38);
    first at row 1, column 0 (1e+39); fix: rescale the features or load with dtype=torch.float64
    """
    a = _numpy(x)
    if a.dtype.kind not in "iuf" or a.size == 0:
        return
    limit = float(torch.finfo(dtype).max) * (1.0 if scale is None else float(scale))
    if a.dtype.kind == "f" and a.dtype.itemsize * 8 <= torch.finfo(dtype).bits:
        return  # this dtype already fits
    with np.errstate(invalid="ignore", over="ignore"):
        bad = np.abs(a.astype(np.float64, copy=False)) > limit
    count = int(bad.sum())
    if count:
        index = _first(bad)
        name = str(dtype).replace("torch.", "")
        raise DataError(
            f"{split}: {_plural(count, 'value')} beyond the {name} range (|x| <= "
            f"{torch.finfo(dtype).max:.4g}); first at {_where(index, columns)} "
            f"({a[index].item()!r}); fix: rescale the features or load with "
            "dtype=torch.float64"
        )


def check_class_limit(y: Any, *, split: str = "y") -> None:
    """Refuse a label that would make more than ``MAX_CLASSES`` classes (a stray label).

    >>> check_class_limit(np.array([0, 1, 10**9]), split="y_train")
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: y_train: label 1000000000 at row 2 implies 1000000001 classes;
    expected at most 100000 classes; fix: look for a stray label, or relabel classes as 0..K-1
    """
    a = _numpy(y)
    if a.dtype.kind not in "iuf" or a.size == 0:
        return
    with np.errstate(invalid="ignore"):
        bad = a >= MAX_CLASSES
    if bad.any():
        index = _first(bad)
        value = a[index].item()
        value = int(value) if float(value).is_integer() else value
        raise DataError(
            f"{split}: label {value!r} at {_where(index)} implies {value + 1} classes; "
            f"expected at most {MAX_CLASSES} classes; fix: look for a stray label, or relabel "
            "classes as 0..K-1"
        )


def infer_task(y: Any, num_classes: int | None = None) -> str:
    """The task implied by raw targets (the rule :func:`~steadygrad.data.from_arrays` uses).

    The rule is by dtype, never by looking at float values:

    * ``bool`` labels -> ``"binary"``;
    * integer labels -> ``"binary"`` when every label is 0 or 1 and ``num_classes`` is None
      or 2, else ``"multiclass"`` (pass ``task="multiclass"`` for a 2-unit softmax head);
    * float targets -> ``"regression"``.

    >>> infer_task(np.array([0, 1, 1])), infer_task(np.array([0, 2, 1]))
    ('binary', 'multiclass')
    >>> infer_task(np.array([0.5, 1.2]))
    'regression'
    """
    a = _numpy(y)
    _check_numeric(a, "y", None)
    if a.dtype.kind == "b":
        return "binary"
    if a.dtype.kind in "iu":
        if (num_classes is None or num_classes == 2) and a.size and a.min() >= 0 and a.max() <= 1:
            return "binary"
        return "multiclass"
    return "regression"
