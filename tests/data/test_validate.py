"""Data validation: every bad input is a DataError naming the problem and the offending index."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from steadygrad.data.arrays import from_arrays
from steadygrad.data.compat import check_compatible, validate_targets
from steadygrad.data.dataset import Dataset
from steadygrad.data.datasets import csv, npz
from steadygrad.data.validate import check_features, check_labels, infer_task
from steadygrad.errors import ConfigError, DataError


def _x(n: int = 10, f: int = 3) -> np.ndarray:
    return np.arange(n * f, dtype=np.float64).reshape(n, f)


def _with(a: np.ndarray, index: tuple[int, ...], value: object) -> np.ndarray:
    a = a.copy()
    a[index] = value
    return a


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# (id, thunk raising DataError, substrings the message must contain)
CASES: list[tuple[str, Callable[[Path], object], list[str]]] = [
    (
        "nan-feature",
        lambda _: from_arrays(_with(_with(_x(), (2, 1), np.nan), (7, 0), np.inf),
                              np.arange(10) % 2),
        ["x:", "2 non-finite values", "first at row 2, column 1", "nan"],
    ),
    (
        "inf-image-pixel",
        lambda _: from_arrays(_with(np.zeros((6, 4, 4)), (3, 2, 1), -np.inf), np.arange(6) % 2),
        ["1 non-finite value", "row 3, position (2, 1)", "-inf"],
    ),
    (
        "object-feature",
        lambda _: from_arrays(np.array([[1.0, 2.0], [3.0, "abc"]], dtype=object), [0, 1]),
        ["non-numeric value 'abc'", "row 1, column 1"],
    ),
    (
        "string-dtype",
        lambda _: from_arrays(np.array([["1", "2"], ["3", "4"]]), [0, 1]),
        ["dtype <U1", "expected numbers"],
    ),
    (
        "label-out-of-range",
        lambda _: from_arrays(_x(), np.array([0, 1, 2, 0, 12, 1, 2, 0, 1, 2]), num_classes=3),
        ["y:", "1 label out of range", "row 4", "(12)", "0..2", "num_classes=13"],
    ),
    (
        "negative-label",
        lambda _: from_arrays(_x(), np.array([0, 1, 2, 0, 1, -1, 2, 0, 1, -3])),
        ["2 negative labels", "first at row 5", "(-1)"],
    ),
    (
        "non-integer-label",
        lambda _: from_arrays(_x(), np.arange(10) * 0.5, task="multiclass"),
        ["5 non-integer labels", "first at row 1", "(0.5)", "task='regression'"],
    ),
    (
        "binary-label-2",
        lambda _: from_arrays(_x(), np.array([0, 1, 0, 1, 0, 1, 2, 0, 1, 0]), task="binary"),
        ["label out of range", "row 6", "binary labels are 0 or 1"],
    ),
    (
        "one-hot-labels",
        lambda _: from_arrays(_x(4), np.eye(4, dtype=np.int64), task="multiclass"),
        ["label shape (4, 4)", "y.argmax(1)"],
    ),
    (
        "nan-regression-target",
        lambda _: from_arrays(_x(), _with(np.arange(10.0), (8,), np.nan)),
        ["1 non-finite target", "row 8"],
    ),
    (
        "length-mismatch",
        lambda _: from_arrays(_x(10), np.arange(9) % 2),
        ["x has 10 rows but y has 9"],
    ),
    (
        "test-length-mismatch",
        lambda _: from_arrays(_x(), np.arange(10) % 2, x_test=_x(4), y_test=np.arange(3) % 2),
        ["x_test/y_test", "x has 4 rows but y has 3"],
    ),
    (
        "feature-width-train-vs-test",
        lambda _: from_arrays(_x(10, 4), np.arange(10) % 2, x_test=_x(5, 3),
                              y_test=np.arange(5) % 2),
        ["x_test", "feature shape (3,)", "expected (4,) like x"],
    ),
    (
        "empty-train-split",
        lambda _: from_arrays(_x(), np.arange(10) % 2, val_size=10),
        ["train: split is empty (0 rows)", "lower val_size"],
    ),
    (
        "empty-val-split",
        lambda _: from_arrays(_x(), np.arange(10) % 2, val_size=0),
        ["val: split is empty", "val_size=0"],
    ),
    (
        "empty-input",
        lambda _: from_arrays(np.zeros((0, 3)), np.zeros(0, dtype=np.int64)),
        ["x: split is empty"],
    ),
    (
        "single-class",
        lambda _: from_arrays(_x(), np.zeros(10, dtype=np.int64), task="multiclass"),
        ["only one class", "num_classes="],
    ),
    (
        "class-names-vs-num-classes",
        lambda _: from_arrays(_x(), np.arange(10) % 3, num_classes=3, class_names=["a", "b"]),
        ["class_names", "2 names", "num_classes=3"],
    ),
    (
        "test-label-beyond-class-names",
        lambda _: from_arrays(_x(), np.arange(10) % 2, x_test=_x(3),
                              y_test=np.array([0, 1, 5]), class_names=["a", "b", "c"]),
        ["y_test", "row 2", "(5)", "0..2"],
    ),
    (
        "csv-string-feature",
        lambda tmp: csv(_write(tmp / "d.csv", "a,b,label\n1,2,0\n3,4,1\n5,oops,0\n")),
        ["d.csv", "'oops'", "row 2 (line 4)", "column 1 'b'"],
    ),
    (
        "csv-empty-field",
        lambda tmp: csv(_write(tmp / "e.csv", "a,b,label\n1,2,0\n,4,1\n")),
        ["''", "row 1 (line 3)", "column 0 'a'"],
    ),
    (
        "csv-nan-feature",
        lambda tmp: csv(_write(tmp / "n.csv", "a,b,label\n1,2,0\n3,nan,1\n4,5,1\n")),
        ["n.csv", "1 non-finite value", "row 1, column 1 'b'"],
    ),
    (
        "csv-mixed-target",
        lambda tmp: csv(_write(tmp / "m.csv", "a,y\n1,0.5\n2,1.5\n3,high\n")),
        ["target 'high'", "row 2 (line 4)", "column 'y'"],
    ),
    (
        "csv-ragged-row",
        lambda tmp: csv(_write(tmp / "r.csv", "a,b,y\n1,2,0\n3,4\n")),
        ["2 fields at line 3", "expected 3"],
    ),
    (
        "npz-missing-keys",
        lambda tmp: npz(_save(tmp / "k.npz", features=_x(), labels=np.arange(10))),
        ["features, labels", "expected x_train and y_train"],
    ),
    (
        "npz-object-array",
        lambda tmp: npz(_save(tmp / "o.npz", x=np.array([[1, "a"]], dtype=object), y=[0])),
        ["object arrays", "numeric dtypes"],
    ),
]


def _save(path: Path, **arrays: object) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize(("make", "needles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_validation_error_names_the_problem_and_index(
    tmp_path: Path, make: Callable[[Path], object], needles: list[str]
) -> None:
    with pytest.raises(DataError) as info:
        make(tmp_path)
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


def test_nan_count_and_first_position_match_numpy() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 7))
    mask = rng.random(x.shape) < 0.05
    x[mask] = np.nan
    rows, cols = np.nonzero(mask)  # C order: the first hit is the first row, then column
    with pytest.raises(DataError) as info:
        check_features(x, split="x_train")
    assert f"{mask.sum()} non-finite values" in str(info.value)
    assert f"first at row {rows[0]}, column {cols[0]}" in str(info.value)


def test_integral_float_and_bool_labels_are_accepted() -> None:
    check_labels(np.array([0.0, 2.0, 1.0]), task="multiclass", num_classes=3)
    check_labels(np.array([True, False]), task="binary")
    check_labels(np.array([[0], [1]]), task="binary")  # (N, 1) binary labels are fine


@pytest.mark.parametrize(
    ("y", "num_classes", "task"),
    [
        (np.array([True, False, True]), None, "binary"),
        (np.array([0, 1, 1, 0]), None, "binary"),
        (np.array([0, 1, 1, 0]), 2, "binary"),
        (np.array([0, 1, 1, 0]), 3, "multiclass"),
        (np.array([0, 2, 1]), None, "multiclass"),
        (np.array([0.0, 1.0, 1.0]), None, "regression"),  # by dtype, not by value
        (np.array([[0.5, 1.0], [2.0, 3.0]]), None, "regression"),
    ],
)
def test_infer_task_rule(y: np.ndarray, num_classes: int | None, task: str) -> None:
    assert infer_task(y, num_classes) == task


def test_validate_targets_rejects_1d_regression_because_torch_would_broadcast() -> None:
    # The oracle for the rule: torch itself broadcasts (N, 1) against (N,) into (N, N).
    out, y = torch.arange(4.0).reshape(4, 1), torch.arange(4.0) + 1.0
    with pytest.warns(UserWarning, match="broadcast"):
        wrong = F.mse_loss(out, y)
    assert wrong.item() != pytest.approx(F.mse_loss(out, y.reshape(-1, 1)).item())
    with pytest.raises(DataError, match=re.escape("y.reshape(-1, 1)")):
        validate_targets(y, "regression", 1)
    validate_targets(y.reshape(-1, 1), "regression", 1)


@pytest.mark.parametrize(
    ("y", "task", "outputs", "needle"),
    [
        (torch.tensor([0.0, 1.0]), "multiclass", 2, "int64 class indices"),
        (torch.tensor([0, 3]), "multiclass", 3, "label 3 at row 1"),
        (torch.tensor([0, 1]), "multiclass", 1, "at least 2 model outputs"),
        (torch.tensor([[0.0], [1.0]]), "binary", 2, "1 output"),
        (torch.tensor([0.0, 1.0]), "binary", 1, "(N, 1) targets"),
        (torch.tensor([[0.0], [0.5]]), "binary", 1, "0.5 at row 1"),
        (torch.tensor([[0.0, 1.0]]), "regression", 1, "use 2 output units"),
        (torch.tensor([1, 2]), "regression", 1, "floating dtype"),
    ],
)
def test_validate_targets_errors(
    y: torch.Tensor, task: str, outputs: int, needle: str
) -> None:
    with pytest.raises(DataError, match=re.escape(needle)):
        validate_targets(y, task, outputs, split="y_train")


@pytest.fixture(scope="module")
def datasets() -> dict[str, Dataset]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    return {
        "multiclass": from_arrays(x, np.arange(30) % 3),
        "binary": from_arrays(x, np.arange(30) % 2),
        "regression": from_arrays(x, rng.normal(size=30)),
        "regression2": from_arrays(x, rng.normal(size=(30, 2))),
    }


@pytest.mark.parametrize(
    ("name", "shape", "ok", "needle"),
    [
        ("multiclass", (3,), True, ""),
        ("multiclass", (1,), False, "1-unit head fits task='binary'"),
        ("multiclass", (4,), False, "expected (3,)"),
        ("binary", (1,), True, ""),
        ("binary", (2,), False, "task='multiclass'"),
        ("binary", (), False, "expected (1,)"),
        ("regression", (1,), True, ""),
        ("regression", (), False, "squeezed () output would broadcast"),
        ("regression", (2,), False, "expected (1,)"),
        ("regression2", (2,), True, ""),
        ("regression2", (1,), False, "expected (2,)"),
    ],
)
def test_check_compatible(
    datasets: dict[str, Dataset], name: str, shape: tuple[int, ...], ok: bool, needle: str
) -> None:
    ds = datasets[name]
    if ok:
        check_compatible(ds, shape)
        # and the loss the trainer would use runs without any broadcasting
        out = torch.zeros(len(ds.y_train), *shape)
        if ds.task == "multiclass":
            F.cross_entropy(out, ds.y_train)
        elif ds.task == "binary":
            assert out.shape == ds.y_train.shape
        else:
            assert out.shape == ds.y_train.shape
    else:
        with pytest.raises(DataError, match=re.escape(needle)):
            check_compatible(ds, shape)


def test_check_compatible_accepts_torch_size(datasets: dict[str, Dataset]) -> None:
    model = torch.nn.Linear(4, 3)
    ds = datasets["multiclass"]
    check_compatible(ds, model(ds.x_train[:1]).shape[1:])


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"x_test": torch.zeros(2, 2)}, DataError, "only one of them"),
        ({"x_val": torch.zeros(2, 3), "y_val": torch.tensor([0, 1])}, DataError,
         "per-sample shape (3,)"),
        ({"task": "ranking"}, ConfigError, "one of multiclass, binary, regression"),
        ({"num_classes": 1}, DataError, "at least 2"),
        ({"y_train": torch.tensor([0, 5, 1, 0])}, DataError, "label 5 at row 1"),
    ],
)
def test_dataset_structure_is_checked_at_construction(
    kwargs: dict[str, object], error: type[Exception], needle: str
) -> None:
    base: dict[str, object] = {
        "x_train": torch.zeros(4, 2), "y_train": torch.tensor([0, 1, 0, 1]),
        "x_val": torch.zeros(2, 2), "y_val": torch.tensor([0, 1]),
        "num_classes": 2, "input_shape": (2,),
    }
    with pytest.raises(error, match=re.escape(needle)):
        Dataset(**{**base, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"val_size": 1.0}, "val_size: got 1.0"),
        ({"val_size": -2}, "val_size: got -2"),
        ({"val_size": True}, "val_size: got True"),
        ({"test_size": 11}, "test_size: got 11"),
        ({"seed": 1.5}, "seed: got 1.5"),
        ({"standardize": "minmax"}, "standardize: got 'minmax'"),
        ({"n_train": 0}, "n_train: got 0"),
        ({"n_train": 9}, "at most 8"),
        ({"scale": 0}, "scale: got 0"),
        ({"dtype": torch.int32}, "dtype: got torch.int32"),
        ({"task": "clustering"}, "task: got 'clustering'"),
        ({"num_classes": 5, "task": "binary"}, "2 (or None) for task='binary'"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(needle)):
        from_arrays(_x(), np.arange(10) % 2, **kwargs)  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dataset_to_cuda_keeps_every_check_working(datasets: dict[str, Dataset]) -> None:
    ds = datasets["binary"].to("cuda")
    assert ds.x_train.is_cuda and ds.y_val.is_cuda and ds.mean is not None and ds.mean.is_cuda
    check_compatible(ds, (1,))
    with pytest.raises(DataError, match="task='multiclass'"):
        check_compatible(ds, (2,))
