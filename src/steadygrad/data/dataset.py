"""The in-memory :class:`Dataset`: train/val/test tensors plus what a model builder needs.

Target conventions (one per task, so the loss never broadcasts):

* ``multiclass``: ``y`` is ``int64`` class indices of shape ``(N,)``; the model has
  ``num_classes`` output logits (``CrossEntropyLoss``).
* ``binary``: ``y`` is floating 0/1 of shape ``(N, 1)``; the model has one output logit
  (``BCEWithLogitsLoss``). ``num_classes`` is 2.
* ``regression``: ``y`` is floating of shape ``(N, k)`` (a 1-D target is reshaped to ``(N, 1)``
  once, by the loader); ``num_classes`` is None.

Example:
    >>> import numpy as np
    >>> from steadygrad.data.arrays import from_arrays
    >>> ds = from_arrays(np.arange(40.0).reshape(20, 2), np.arange(20) % 2, val_size=5)
    >>> ds.task, ds.num_classes, ds.input_shape, ds.num_features, len(ds.x_train)
    ('binary', 2, (2,), 2, 15)
    >>> tuple(ds.y_train.shape), ds.y_train.dtype
    ((15, 1), torch.float32)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from steadygrad.data.compat import validate_targets
from steadygrad.data.validate import TASKS, check_nonempty
from steadygrad.errors import ConfigError, DataError

__all__ = ["Dataset"]

_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test tensors held in memory, already split and standardized.

    Construction checks the structure (types, row counts, feature shapes, target dtypes and
    shapes, class counts) and raises :class:`~steadygrad.errors.DataError`; the loaders also
    check the values (NaN/Inf, label ranges) on the raw arrays before building one.

    Attributes:
        x_train, y_train, x_val, y_val: the training and validation splits (never empty).
        x_test, y_test: the test split, or both None.
        task: ``"multiclass"``, ``"binary"`` or ``"regression"``.
        num_classes: number of classes (2 for binary), None for regression.
        input_shape: per-sample feature shape, e.g. ``(28, 28)`` or ``(64,)``.
        name: short name used in summaries and run directories.
        class_names: one name per class, or None.
        mean, std: the standardization fitted on the training split (shape ``input_shape``
            per feature, ``()`` global), or None when the features were not standardized.

    >>> x = torch.zeros(4, 3)
    >>> ds = Dataset(x, torch.tensor([0, 1, 2, 0]), x[:2], torch.tensor([1, 2]),
    ...              task="multiclass", num_classes=3, input_shape=(3,), name="toy")
    >>> ds.x_test is None, ds.num_features
    (True, 3)
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    task: str = "multiclass"
    num_classes: int | None = None
    input_shape: tuple[int, ...] = ()
    name: str = "dataset"
    class_names: tuple[str, ...] | None = None
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError("task", self.task, f"one of {', '.join(TASKS)}")
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        if (self.x_test is None) != (self.y_test is None):
            raise DataError(
                "x_test/y_test: got only one of them; expected both or neither; "
                "fix: pass x_test and y_test together"
            )
        self._check_classes()
        num_outputs = self.num_classes if self.task == "multiclass" else 1
        for split in _SPLITS:
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x is None:
                continue
            if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
                raise DataError(
                    f"{split}: got {type(x).__name__}/{type(y).__name__}; expected torch "
                    "tensors; fix: build datasets with steadygrad.data.from_arrays"
                )
            check_nonempty(len(x), split=f"x_{split}", hint="lower val_size/test_size")
            if len(x) != len(y):
                raise DataError(
                    f"{split}: x has {len(x)} rows but y has {len(y)}; expected one target "
                    "per sample"
                )
            if not x.is_floating_point():
                raise DataError(f"x_{split}: got dtype {x.dtype}; expected a floating dtype")
            if tuple(x.shape[1:]) != self.input_shape:
                raise DataError(
                    f"x_{split}: got per-sample shape {tuple(x.shape[1:])}; expected "
                    f"input_shape {self.input_shape}; fix: use the same features in every split"
                )
            if self.task == "regression":
                num_outputs = int(self.y_train.shape[1]) if self.y_train.ndim == 2 else 1
            validate_targets(y, self.task, int(num_outputs or 0), split=f"y_{split}")
        for stat in ("mean", "std"):
            t = getattr(self, stat)
            if t is not None and tuple(t.shape) not in ((), self.input_shape):
                raise DataError(
                    f"{stat}: got shape {tuple(t.shape)}; expected () or {self.input_shape}"
                )

    def _check_classes(self) -> None:
        if self.task == "regression":
            if self.num_classes is not None or self.class_names is not None:
                raise DataError(
                    f"num_classes: got {self.num_classes!r} for a regression task; expected "
                    "None (and no class_names)"
                )
            return
        expected = 2 if self.task == "binary" else None
        if self.num_classes is None or (expected and self.num_classes != expected):
            raise DataError(
                f"num_classes: got {self.num_classes!r} for task {self.task!r}; expected "
                f"{expected or 'an int >= 2'}"
            )
        if self.num_classes < 2:
            raise DataError(f"num_classes: got {self.num_classes}; expected at least 2")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise DataError(
                f"class_names: got {len(self.class_names)} names for num_classes="
                f"{self.num_classes}; expected one name per class"
            )

    @property
    def num_features(self) -> int:
        """Number of input features per sample (``prod(input_shape)``).

        >>> Dataset(torch.zeros(2, 28, 28), torch.tensor([0, 1]), torch.zeros(1, 28, 28),
        ...         torch.tensor([1]), num_classes=2, input_shape=(28, 28)).num_features
        784
        """
        return math.prod(self.input_shape)

    @property
    def num_outputs(self) -> int:
        """Model output units the targets need: ``num_classes``, 1 (binary) or ``k``.

        >>> Dataset(torch.zeros(2, 1), torch.zeros(2, 3), torch.zeros(1, 1), torch.zeros(1, 3),
        ...         task="regression", input_shape=(1,)).num_outputs
        3
        """
        if self.task == "multiclass":
            return int(self.num_classes or 0)
        if self.task == "binary":
            return 1
        return math.prod(self.y_train.shape[1:])

    def subset(
        self, n_train: int | None = None, n_val: int | None = None, n_test: int | None = None
    ) -> Dataset:
        """A dataset with only the first ``n`` rows of each split (None keeps a split whole).

        ``mean``/``std`` stay those fitted at load time (use the loader's ``n_train=`` to fit
        them on fewer rows).

        >>> ds = Dataset(torch.zeros(10, 2), torch.zeros(10, dtype=torch.long),
        ...              torch.zeros(5, 2), torch.ones(5, dtype=torch.long),
        ...              num_classes=2, input_shape=(2,))
        >>> small = ds.subset(n_train=3, n_val=2)
        >>> len(small.x_train), len(small.y_val)
        (3, 2)
        """
        changes: dict[str, Any] = {}
        for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
            if n is None:
                continue
            x = getattr(self, f"x_{split}")
            if x is None:
                raise ConfigError(f"n_{split}", n, "None: this dataset has no test split")
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(x):
                raise ConfigError(
                    f"n_{split}", n, f"an int in 1..{len(x)} (the rows in the {split} split)"
                )
            changes[f"x_{split}"] = x[:n]
            changes[f"y_{split}"] = getattr(self, f"y_{split}")[:n]
        return dataclasses.replace(self, **changes)

    def to(self, device: torch.device | str) -> Dataset:
        """A copy with every tensor moved to ``device``.

        >>> ds = Dataset(torch.zeros(2, 1), torch.tensor([0, 1]), torch.zeros(1, 1),
        ...              torch.tensor([1]), num_classes=2, input_shape=(1,))
        >>> ds.to("cpu").x_train.device.type
        'cpu'
        """
        changes: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, torch.Tensor):
                changes[field.name] = value.to(device)
        return dataclasses.replace(self, **changes)

    def summary(self) -> str:
        """A short human-readable description: task, classes, shapes, split sizes, scaling.

        >>> ds = Dataset(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), torch.zeros(2, 2),
        ...              torch.tensor([0, 1]), num_classes=2, input_shape=(2,), name="toy")
        >>> print(ds.summary())
        toy: multiclass, 2 classes, input shape (2,) (2 features)
          train 4 | val 2 | test -
          features not standardized
        """
        if self.task == "regression":
            kind = f"regression, {self.num_outputs} output(s)"
        else:
            kind = f"{self.task}, {self.num_classes} classes"
        test = "-" if self.x_test is None else str(len(self.x_test))
        lines = [
            f"{self.name}: {kind}, input shape {self.input_shape} ({self.num_features} features)",
            f"  train {len(self.x_train)} | val {len(self.x_val)} | test {test}",
        ]
        if self.mean is None:
            lines.append("  features not standardized")
        else:
            how = "per feature" if self.mean.ndim else "globally"
            lines.append(f"  standardized {how} with training-split mean/std")
        if self.class_names is not None:
            more = ", ..." if len(self.class_names) > 10 else ""
            names = ", ".join(self.class_names[:10]) + more
            lines.append(f"  classes: {names}")
        return "\n".join(lines)
