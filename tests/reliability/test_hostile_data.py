"""Issue 19, item 2: hostile data files end in a DataError naming the file, row or array, with
memory bounded before allocation or decompression.

Oracle: each file is built to carry one known defect (a truncated archive, a header that lies
about its size, a stray label, a float64 beyond float32's range at a known row); before the fix
each raised a raw exception, allocated unboundedly, or named the wrong row.
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from steadygrad.data import from_arrays, read_idx, write_idx
from steadygrad.data.datasets import npz
from steadygrad.data.limits import MAX_CLASSES, expansion_limit
from steadygrad.data.tabular import read_npz
from steadygrad.errors import ConfigError, DataError
from tests.reliability._memory import MiB, traced_peak


def _npz(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


def test_truncated_npz(tmp_path: Path) -> None:
    path = _npz(tmp_path, x=np.zeros((50, 3)), y=np.arange(50) % 2)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        path.write_bytes(data[:cut])
        with pytest.raises(DataError, match=str(path.name)):
            read_npz(path)


def _lying_npy(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue() + b"\0" * 64


@pytest.mark.parametrize("shape", [(2**40,), (2**20, 2**20), (2**62, 4)])
def test_npz_header_claiming_huge_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = tmp_path / "big.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", _lying_npy(shape))
        z.writestr("y.npy", _lying_npy((8,)))
    err, peak = traced_peak(lambda: read_npz(path))
    assert isinstance(err, DataError), repr(err)
    assert "x" in str(err) and str(shape) in str(err)
    assert peak < 16 * MiB


def test_npz_deflate_bomb_bounded(tmp_path: Path) -> None:
    """A member whose honest header asks for far more than the archive can expand to."""
    path = tmp_path / "bomb.npz"
    n = 300 * MiB // 8
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                               "shape": (n,)})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z, \
            z.open("x.npy", "w", force_zip64=True) as f:
        f.write(buf.getvalue())
        chunk = b"\0" * MiB
        for _ in range(300):
            f.write(chunk)
    assert path.stat().st_size < MiB
    err, peak = traced_peak(lambda: read_npz(path))
    assert isinstance(err, DataError) and "expand" in str(err), repr(err)
    assert peak < 16 * MiB


def test_valid_npz_still_reads(tmp_path: Path) -> None:
    x = np.arange(12.0).reshape(4, 3)
    out = read_npz(_npz(tmp_path, x=x, y=np.array([0, 1, 0, 1])))
    assert np.array_equal(out["x"], x)


def _idx(header: bytes, payload: bytes = b"") -> bytes:
    return header + payload


def test_idx_dims_overflowing_the_size_check(tmp_path: Path) -> None:
    path = tmp_path / "over-idx3-ubyte"
    # 3 dims of 2^32-1: the int64 product wraps around before the fix
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1))
    with pytest.raises(DataError, match="over-idx3-ubyte"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 8, 4]) + struct.pack(">IIII", 2**16, 2**16, 2**16, 2**16))
    with pytest.raises(DataError, match="over-idx3-ubyte"):
        read_idx(path)


def test_empty_but_unaddressable_shapes(tmp_path: Path) -> None:
    """Found by the fuzz harness: (0, 2^32-1, 2^32-1) holds 0 bytes yet numpy cannot shape it."""
    path = tmp_path / "empty-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 0, 2**32 - 1, 2**32 - 1))
    with pytest.raises(DataError, match="empty-idx3-ubyte"):
        read_idx(path)
    big = tmp_path / "empty.npz"
    with zipfile.ZipFile(big, "w") as z:
        z.writestr("x.npy", _lying_npy((0, 2**62))[:-64])
    with pytest.raises(DataError, match="x"):
        read_npz(big)


def test_idx_ndim_zero(tmp_path: Path) -> None:
    path = tmp_path / "zero-idx0-ubyte"
    path.write_bytes(bytes([0, 0, 8, 0, 7]))
    with pytest.raises(DataError, match="at least 1 dimension"):
        read_idx(path)


def test_idx_gz_decompression_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "bomb-idx1-ubyte.gz"
    n = 400 * MiB
    raw = gzip.GzipFile(path, "wb", mtime=0)
    raw.write(bytes([0, 0, 8, 1]) + struct.pack(">I", n))
    zeros = b"\0" * MiB
    for _ in range(400):
        raw.write(zeros)
    raw.close()
    assert path.stat().st_size < MiB
    err, peak = traced_peak(lambda: read_idx(path))
    assert isinstance(err, DataError) and "expand" in str(err), repr(err)
    assert peak < expansion_limit(path.stat().st_size) + 16 * MiB
    assert peak < 300 * MiB


def test_idx_gz_round_trip_still_works(tmp_path: Path) -> None:
    path = tmp_path / "ok-idx3-ubyte.gz"
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(path, a)
    assert np.array_equal(read_idx(path), a)


def test_stray_label_class_count_limit() -> None:
    x = np.zeros((20, 2))
    y = np.arange(20) % 3
    y[13] = 10**9
    err, peak = traced_peak(lambda: from_arrays(x, y))
    assert isinstance(err, DataError), repr(err)
    assert peak < 16 * MiB  # refused before a 10^9-wide anything is allocated
    assert "row 13" in str(err) and str(MAX_CLASSES) in str(err) and "1000000000" in str(err)
    with pytest.raises(ConfigError, match=str(MAX_CLASSES)):
        from_arrays(x, np.arange(20) % 3, num_classes=10**9)


def test_stray_label_from_npz_file(tmp_path: Path) -> None:
    y = np.arange(30) % 3
    y[7] = 2**40
    path = _npz(tmp_path, x_train=np.ones((30, 2)), y_train=y)
    with pytest.raises(DataError, match=r"row 7 .*classes"):
        npz(path)


@pytest.mark.parametrize("row,col", [(0, 0), (11, 2), (29, 1)])
def test_float64_beyond_float32_names_the_row(row: int, col: int) -> None:
    x = np.random.default_rng(0).normal(size=(30, 3))
    x[row, col] = 1e39  # finite in float64, inf after the float32 cast
    y = np.arange(30) % 2
    with pytest.raises(DataError) as info:
        from_arrays(x, y, seed=0)
    assert f"row {row}, column {col}" in str(info.value)
    assert "float32" in str(info.value)
    ds = from_arrays(x, y, seed=0, dtype=torch.float64)  # float64 holds it: no error
    assert bool(torch.isfinite(ds.x_train).all())
