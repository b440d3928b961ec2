"""Build a :class:`~steadygrad.data.Dataset` from in-memory arrays: validate, split, scale,
standardize, convert. Every loader ends here.

The order is fixed: (1) validate the raw arrays (row numbers refer to the arrays as given),
(2) settle the task and the number of classes, (3) hold out the test split (``test_size``) and
then the validation split (``val_size``, taken from what is left), (4) keep the first
``n_train`` training rows, (5) divide by ``scale``, (6) standardize with statistics of the
training rows only, (7) convert to tensors.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ds = from_arrays(rng.normal(size=(100, 3)), rng.integers(0, 4, 100), test_size=0.2)
    >>> ds.task, ds.num_classes, len(ds.x_train), len(ds.x_val), len(ds.x_test)
    ('multiclass', 4, 64, 16, 20)
    >>> round(float(ds.x_train.mean()), 4), round(float(ds.x_train.std(unbiased=False)), 4)
    (0.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch

from steadygrad.data.dataset import Dataset
from steadygrad.data.limits import MAX_CLASSES
from steadygrad.data.split import split_indices
from steadygrad.data.standardize import apply_standardizer, fit_standardizer, standardize_mode
from steadygrad.data.validate import (
    TASKS,
    check_class_limit,
    check_feature_shapes,
    check_features,
    check_labels,
    check_lengths,
    check_nonempty,
    check_representable,
    infer_task,
)
from steadygrad.errors import ConfigError, DataError

__all__ = ["from_arrays"]

_DEFAULT_NAMES = {"train": ("x", "y"), "val": ("x_val", "y_val"), "test": ("x_test", "y_test")}


def _numpy(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _to_float(x: np.ndarray, np_dtype: type[np.floating[Any]], copy: bool) -> np.ndarray:
    """``x`` as a C-contiguous float array (a new one when ``copy`` or the dtype changes).

    Converts through torch when it can: its allocator makes the large first-touch copy of an
    image array several times faster than ``ndarray.astype``.
    """
    if x.dtype == np_dtype and not copy:
        return np.ascontiguousarray(x)
    try:
        t = torch.from_numpy(np.ascontiguousarray(x))
    except (TypeError, ValueError):  # a dtype or byte order torch lacks
        return x.astype(np_dtype)
    target = torch.float64 if np_dtype is np.float64 else torch.float32
    out = t.to(target, copy=True).numpy()
    return out


def _check_options(
    task: str | None,
    num_classes: int | None,
    class_names: Sequence[str] | None,
    n_train: int | None,
    scale: float | None,
    dtype: torch.dtype,
) -> None:
    if task is not None and task not in TASKS:
        raise ConfigError("task", task, f"one of {', '.join(TASKS)} or None (inferred)")
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 2
    ):
        raise ConfigError("num_classes", num_classes, "an int >= 2 or None (inferred)")
    if num_classes is not None and num_classes > MAX_CLASSES:
        raise ConfigError("num_classes", num_classes, f"at most {MAX_CLASSES} classes")
    if class_names is not None and (
        isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names)
    ):
        raise ConfigError("class_names", class_names, "a sequence of str, one per class")
    if n_train is not None and (
        isinstance(n_train, bool) or not isinstance(n_train, Integral) or n_train < 1
    ):
        raise ConfigError("n_train", n_train, "an int >= 1 or None (all training rows)")
    if scale is not None and (
        isinstance(scale, bool) or not isinstance(scale, Real) or not 0 < scale < math.inf
    ):
        raise ConfigError("scale", scale, "a positive number to divide features by, or None")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ConfigError("dtype", dtype, "a floating torch dtype such as torch.float32")


def _resolve_classes(
    task: str,
    labels: dict[str, np.ndarray],
    num_classes: int | None,
    class_names: Sequence[str] | None,
) -> int | None:
    if task == "regression":
        if num_classes is not None or class_names is not None:
            raise ConfigError("num_classes", num_classes, "None for task='regression'")
        for split, y in labels.items():
            check_labels(y, task=task, split=split)
        widths = {split: (int(np.prod(y.shape[1:])),) for split, y in labels.items()}
        check_feature_shapes(widths, what="target")
        return None
    if task == "binary":
        if num_classes not in (None, 2):
            raise ConfigError(
                "num_classes", num_classes, "2 (or None) for task='binary'",
                hint="use task='multiclass' for more classes",
            )
        num_classes = 2
    if class_names is not None:
        if num_classes is not None and len(class_names) != num_classes:
            raise DataError(
                f"class_names: got {len(class_names)} names but num_classes={num_classes}; "
                "expected one name per class"
            )
        num_classes = len(class_names)
    for split, y in labels.items():
        check_labels(y, task=task, num_classes=num_classes, split=split)
    if num_classes is None:
        for split, y in labels.items():
            check_class_limit(y, split=split)
        num_classes = max(int(y.max()) + 1 for y in labels.values())
        if num_classes < 2:
            raise DataError(
                f"{next(iter(labels))}: only one class (label 0) found; expected at least 2 "
                "classes; fix: pass num_classes= or check the labels"
            )
    return num_classes


def _targets(y: np.ndarray, task: str, dtype: torch.dtype) -> torch.Tensor:
    if task == "multiclass":
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64).reshape(-1))
    t = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float64)).to(dtype)
    # Documented rule: a 1-D binary/regression target becomes (N, 1), here and only here.
    return t.reshape(len(t), -1) if t.ndim == 1 or task == "binary" else t


def build_dataset(
    arrays: dict[str, tuple[Any, Any]],
    *,
    names: dict[str, tuple[str, str]] | None = None,
    columns: Sequence[str] | None = None,
    task: str | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    val_size: float | int | None = None,
    test_size: float | int | None = None,
    seed: int | None = 0,
    stratify: bool = True,
    scale: float | None = None,
    standardize: bool | str = True,
    n_train: int | None = None,
    dtype: torch.dtype = torch.float32,
    name: str = "arrays",
) -> Dataset:
    """The shared pipeline behind every loader (see the module docstring for the order).

    Args:
        arrays: ``{"train": (x, y)}`` plus optional ``"val"``/``"test"`` pairs.
        names: split -> (x name, y name) used in error messages.
        columns: feature names for error messages (tabular data).
        Other arguments: as in :func:`from_arrays`.

    >>> ds = build_dataset({"train": (np.ones((10, 1)), np.arange(10.0))}, val_size=2, seed=None)
    >>> ds.task, tuple(ds.y_val.shape), ds.y_val[:, 0].tolist()
    ('regression', (2, 1), [8.0, 9.0])
    """
    _check_options(task, num_classes, class_names, n_train, scale, dtype)
    mode = standardize_mode(standardize)
    names = {**_DEFAULT_NAMES, **(names or {})}
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, (x, y) in arrays.items():
        xname, yname = names[split]
        xa, ya = _numpy(x), _numpy(y)
        check_features(xa, split=xname, columns=columns)
        check_nonempty(len(xa), split=xname, hint="pass at least one row")
        check_lengths(xa, ya, split=f"{xname}/{yname}")
        check_representable(xa, dtype, split=xname, columns=columns, scale=scale)
        raw[split] = (xa, ya)
    check_feature_shapes({names[s][0]: xa.shape[1:] for s, (xa, _) in raw.items()})
    labels = {names[s][1]: ya for s, (_, ya) in raw.items()}
    if task is None:
        task = infer_task(np.concatenate([y.reshape(-1) for y in labels.values()]),
                          num_classes=num_classes if class_names is None else len(class_names))
    num_classes = _resolve_classes(task, labels, num_classes, class_names)

    x_pool, y_pool = raw["train"]
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    pool = np.arange(len(x_pool))
    classify = task != "regression" and stratify
    if "test" in raw:
        if test_size is not None:
            raise ConfigError("test_size", test_size, "None when a test split is given")
        x_test, y_test = raw["test"]
    elif test_size is not None:
        kept, held = split_indices(len(pool), test_size, seed=seed, name="test_size",
                                   labels=y_pool if classify else None)
        x_test, y_test = x_pool[held], y_pool[held]
        pool = kept
    else:
        x_test = y_test = None
    if "val" in raw:
        if val_size is not None:
            raise ConfigError("val_size", val_size, "None when a validation split is given")
        x_val, y_val = raw["val"]
        train = pool
    else:
        size = 0.2 if val_size is None else val_size
        kept, held = split_indices(len(pool), size, seed=seed, name="val_size",
                                   labels=y_pool[pool] if classify else None)
        train, val = pool[kept], pool[held]
        check_nonempty(len(val), split="val", hint=f"val_size={size!r} holds out no row")
        x_val, y_val = x_pool[val], y_pool[val]
    check_nonempty(len(train), split="train", hint="lower val_size/test_size")
    if n_train is not None:
        if n_train > len(train):
            raise ConfigError("n_train", n_train, f"at most {len(train)} (the training rows)")
        train = train[:n_train]
    x_train, y_train = x_pool[train], y_pool[train]

    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    # Fancy-indexed splits are already copies; arrays the caller passed are never modified.
    owned = (True, "val" not in raw, "test" not in raw)
    xs = [None if x is None else _to_float(x, np_dtype, copy=not own)
          for x, own in zip((x_train, x_val, x_test), owned, strict=True)]
    if scale is not None:
        for x in xs:
            if x is not None:
                np.divide(x, scale, out=x)
    mean_t = std_t = None
    if mode is not None:
        assert xs[0] is not None
        mean, std = fit_standardizer(xs[0], mode)
        xs = [None if x is None else apply_standardizer(x, mean, std, inplace=True) for x in xs]
        mean_t, std_t = torch.from_numpy(mean).to(dtype), torch.from_numpy(std).to(dtype)
    tx = [None if x is None else torch.from_numpy(x).to(dtype) for x in xs]
    assert tx[0] is not None and tx[1] is not None
    return Dataset(
        x_train=tx[0],
        y_train=_targets(y_train, task, dtype),
        x_val=tx[1],
        y_val=_targets(y_val, task, dtype),
        x_test=tx[2],
        y_test=None if y_test is None else _targets(y_test, task, dtype),
        task=task,
        num_classes=num_classes,
        input_shape=tuple(x_pool.shape[1:]),
        name=name,
        class_names=None if class_names is None else tuple(class_names),
        mean=mean_t,
        std=std_t,
    )


def from_arrays(
    x: Any,
    y: Any,
    *,
    x_val: Any = None,
    y_val: Any = None,
    x_test: Any = None,
    y_test: Any = None,
    task: str | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    val_size: float | int | None = None,
    test_size: float | int | None = None,
    seed: int | None = 0,
    stratify: bool = True,
    scale: float | None = None,
    standardize: bool | str = True,
    n_train: int | None = None,
    dtype: torch.dtype = torch.float32,
    name: str = "arrays",
) -> Dataset:
    """A validated, split and standardized :class:`~steadygrad.data.Dataset` from arrays.

    Args:
        x, y: features ``(N, *features)`` and targets (numpy arrays, tensors or lists).
        x_val, y_val: an explicit validation split (then ``val_size`` must be None).
        x_test, y_test: an explicit test split (then ``test_size`` must be None).
        task: ``"multiclass"``, ``"binary"``, ``"regression"`` or None to infer it by dtype:
            bool labels -> binary; integer labels -> binary when all are 0/1 (and
            ``num_classes`` is None or 2), else multiclass; float targets -> regression. Pass
            ``task="multiclass"`` for a 2-unit softmax head on 0/1 labels.
        num_classes: number of classes; inferred as ``max label + 1`` over all splits (or
            ``len(class_names)``).
        class_names: one name per class.
        val_size: validation rows held out of the training pool (after the test split), as a
            fraction in (0, 1) (rounded up) or a count; default 0.2.
        test_size: test rows held out of ``x`` when no ``x_test`` is given; default none.
        seed: None holds out the *last* rows in order; an int shuffles with that seed
            (stratified by class for classification unless ``stratify=False``).
        stratify: stratify shuffled classification splits.
        scale: divide every feature by this before standardizing (255 for 8-bit pixels).
        standardize: True/``"feature"`` (per-feature mean/std of the training split),
            ``"global"`` (one mean/std) or False.
        n_train: keep only the first ``n_train`` training rows (before fitting the
            standardization), for quick runs.
        dtype: floating dtype of the features (and of binary/regression targets).
        name: dataset name.

    Returns:
        The dataset; a 1-D binary or regression ``y`` is returned as ``(N, 1)``.

    Raises:
        DataError: non-numeric or non-finite features, bad labels, length or shape
            mismatches, an empty split (each naming the offending row/column).
        ConfigError: an invalid argument.

    >>> ds = from_arrays([[0.0], [1.0], [2.0], [3.0]], [0.5, 1.5, 2.5, 3.5], val_size=1,
    ...                  seed=None, standardize=False)
    >>> ds.task, ds.x_val.tolist(), ds.y_val.tolist()
    ('regression', [[3.0]], [[3.5]])
    >>> from_arrays([[0.0], [float("inf")]], [0, 1])
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: x: 1 non-finite value (NaN or Inf); first at row 1, column 0 (inf);
    fix: impute or drop those rows before loading
    """
    arrays: dict[str, tuple[Any, Any]] = {"train": (x, y)}
    for split, (xs, ys) in (("val", (x_val, y_val)), ("test", (x_test, y_test))):
        if (xs is None) != (ys is None):
            raise ConfigError(f"x_{split}/y_{split}", "only one of them", "both or neither")
        if xs is not None:
            arrays[split] = (xs, ys)
    return build_dataset(
        arrays, task=task, num_classes=num_classes, class_names=class_names,
        val_size=val_size, test_size=test_size, seed=seed, stratify=stratify, scale=scale,
        standardize=standardize, n_train=n_train, dtype=dtype, name=name,
    )
