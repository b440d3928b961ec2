"""Item 8: bad data is rejected at load with the row/column/index named; no silent broadcast.

Oracle: each case plants one defect at a known row/column, so the message must name it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steadygrad.data import from_arrays
from steadygrad.errors import DataError
from steadygrad.train.loop import fit


def _xy(n: int = 20, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, d)), np.arange(n) % 3


@pytest.mark.parametrize(("row", "col", "value"), [(5, 2, np.nan), (7, 0, np.inf),
                                                   (0, 1, -np.inf), (19, 2, np.nan)])
def test_non_finite_feature_named(row: int, col: int, value: float) -> None:
    x, y = _xy()
    x[row, col] = value
    with pytest.raises(DataError, match=f"row {row}, column {col}"):
        from_arrays(x, y)


def test_empty_splits() -> None:
    x, y = _xy()
    with pytest.raises(DataError, match="x: split is empty"):
        from_arrays(x[:0], y[:0])
    with pytest.raises(DataError, match="x_val: split is empty"):
        from_arrays(x, y, x_val=x[:0], y_val=y[:0])
    with pytest.raises(DataError, match="0 rows"):
        fit(torch.nn.Linear(3, 1), (torch.randn(0, 3), torch.randn(0, 1)), epochs=1, verbose=0)


def test_wrong_feature_width_between_splits() -> None:
    x, y = _xy()
    with pytest.raises(DataError, match=r"x_val: .*\(4,\); expected \(3,\)"):
        from_arrays(x, y, x_val=np.zeros((5, 4)), y_val=y[:5])


def test_wrong_feature_width_against_model() -> None:
    with pytest.raises(DataError, match=r"\(20, 3\)|3 features"):
        fit(torch.nn.Linear(4, 1), (torch.randn(20, 3), torch.randn(20, 1)), epochs=1, verbose=0)


def test_labels_out_of_range_named() -> None:
    x, y = _xy()
    with pytest.raises(DataError, match=r"first at row 2 \(2\).*num_classes=2"):
        from_arrays(x, y, num_classes=2)
    y2 = y.copy()
    y2[19] = -1
    with pytest.raises(DataError, match=r"row 19 \(-1\)"):
        from_arrays(x, y2)
    with pytest.raises(DataError, match=r"\[0, 5\].*< 3"):
        fit(torch.nn.Linear(3, 3), (torch.randn(6, 3), torch.tensor([0, 1, 5, 0, 1, 2])),
            epochs=1, verbose=0)


def test_length_mismatch_named() -> None:
    x, y = _xy()
    with pytest.raises(DataError, match="20 rows but y has 19"):
        from_arrays(x, y[:-1])
    with pytest.raises(DataError, match=r"\(19, 1\)"):
        fit(torch.nn.Linear(3, 1), (torch.randn(20, 3), torch.randn(19, 1)), epochs=1, verbose=0)


def test_regression_target_shape_never_broadcasts() -> None:
    """(N,) targets against an (N, 1) output: torch's MSE would broadcast to (N, N)."""
    x, t = torch.randn(20, 3), torch.randn(20)
    out = torch.nn.Linear(3, 1)(x)
    with pytest.warns(UserWarning):  # the oracle: torch itself broadcasts silently(ish)
        assert torch.nn.functional.mse_loss(out, t).shape == ()
    with pytest.raises(DataError, match=r"got shape \(20,\); expected \(N, 1\)"):
        fit(torch.nn.Linear(3, 1), (x, t), epochs=1, verbose=0)
    with pytest.raises(DataError, match=r"\(N, 2\)"):
        fit(torch.nn.Linear(3, 2), (x, t.reshape(-1, 1)), epochs=1, verbose=0)
    ds = from_arrays(x.numpy(), t.numpy().astype(np.float32))  # a loader reshapes to (N, 1)
    assert ds.y_train.shape[1:] == (1,)


def test_fit_tensor_nan_names_row() -> None:
    x = torch.randn(20, 3)
    x[4, 1] = float("nan")
    with pytest.raises(DataError, match="row 4, column 1"):
        fit(torch.nn.Linear(3, 1), (x, torch.randn(20, 1)), epochs=1, verbose=0)
