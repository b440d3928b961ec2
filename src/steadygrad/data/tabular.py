"""Read tabular files into numpy arrays: CSV (standard ``csv`` module) and ``.npz``.

CSV rules:

* header: ``header=None`` detects one when no field of the first row parses as a number;
  pass ``header=True``/``False`` to decide explicitly.
* target: a column name (needs a header) or an index (negative counts from the end).
* features: every other column must hold numbers; anything else (an empty field, a word) is a
  :class:`~steadygrad.errors.DataError` naming the row, the file line and the column.
* target values: all integers (``0``, ``1``, ``2``) -> integer class labels; all numbers with a
  decimal point or exponent -> float (regression); all non-numeric (``cat``, ``dog``) -> class
  names, numbered in sorted order (or in the order of ``class_names=``); a mix -> error.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "pets.csv"
    >>> _ = path.write_text("weight,height,kind\\n4.0,25,cat\\n30.5,60,dog\\n3.5,23,cat\\n")
    >>> table = read_csv(path, target="kind")
    >>> table.x.tolist(), table.y.tolist(), table.columns, table.class_names
    ([[4.0, 25.0], [30.5, 60.0], [3.5, 23.0]], [0, 1, 0], ('weight', 'height'), ('cat', 'dog'))
"""

from __future__ import annotations

import csv as _csv
import difflib
import math
import os
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from steadygrad.data.limits import expansion_limit
from steadygrad.errors import ConfigError, DataError

__all__ = ["Table", "read_csv", "read_npz"]


@dataclass(frozen=True)
class Table:
    """Arrays read from a CSV file.

    Attributes:
        x: float64 features ``(N, F)``.
        y: targets ``(N,)``: int64 labels or float64 values.
        columns: feature column names (``col0``, ``col1``, ... without a header).
        target: the target column's name.
        class_names: class names when the target column held names, else None.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
        >>> _ = path.write_text("1,2,0.5\\n3,4,1.5\\n")  # no header; float target: regression
        >>> table = read_csv(path, target=-1)
        >>> table.x.shape, table.y.dtype, table.columns, table.target, table.class_names
        ((2, 2), dtype('float64'), ('col0', 'col1'), 'col2', None)
    """

    x: np.ndarray
    y: np.ndarray
    columns: tuple[str, ...]
    target: str
    class_names: tuple[str, ...] | None


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _is_int(field: str) -> bool:
    try:
        int(field)
    except ValueError:
        return False
    return True


def _target_index(target: str | int, names: Sequence[str], has_header: bool) -> int:
    width = len(names)
    if isinstance(target, bool) or not isinstance(target, (str, int)):
        raise ConfigError("target", target, "a column name (str) or index (int)")
    if isinstance(target, int):
        if not -width <= target < width:
            raise ConfigError("target", target, f"a column index in {-width}..{width - 1}")
        return target % width
    if not has_header:
        raise ConfigError(
            "target", target, "a column index (int): this file has no header row",
            hint="pass header=True if the first row holds the column names",
        )
    if target not in names:
        close = difflib.get_close_matches(target, names, n=1)
        raise ConfigError(
            "target", target, f"one of the columns {', '.join(names)}",
            hint=f"did you mean {close[0]!r}?" if close else None,
        )
    return list(names).index(target)


def read_csv(
    path: str | os.PathLike[str],
    *,
    target: str | int = -1,
    delimiter: str = ",",
    header: bool | None = None,
    task: str | None = None,
    class_names: Sequence[str] | None = None,
) -> Table:
    """Parse a CSV file into features and targets (rules in the module docstring).

    Args:
        path: the file.
        target: target column name or index (default: the last column).
        delimiter: field separator.
        header: whether the first row holds column names (None: detect).
        task: ``"regression"`` forces numeric float targets; anything else lets the values
            decide.
        class_names: the order of the classes when the target column holds names.

    Raises:
        DataError: unreadable file, ragged rows, non-numeric features or targets (with the
            row, line and column), no data rows.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "bad.csv"
    >>> _ = path.write_text("a,b,y\\n1,2,0\\n3,x,1\\n")
    >>> read_csv(path)
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: bad.csv: got 'x' at row 1 (line 3), column 1 'b'; expected a
    number; fix: encode categories as numbers, fill missing values, or drop the column
    """
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8-sig") as f:
            reader = _csv.reader(f, delimiter=delimiter)
            rows = [(reader.line_num, row) for row in reader if row]
    except OSError as exc:
        raise DataError(f"{p}: cannot read the CSV file ({exc.strerror or exc})") from exc
    except (_csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: not a readable CSV file ({exc})") from exc
    if not rows:
        raise DataError(f"{p}: the file is empty; expected a header and data rows")
    first = rows[0][1]
    if header is None:
        header = not any(_is_number(v.strip()) for v in first)
    width = len(first)
    names = [v.strip() for v in first] if header else [f"col{i}" for i in range(width)]
    data = rows[1:] if header else rows
    if not data:
        raise DataError(f"{p}: no data rows; expected at least one row after the header")
    for line, row in data:
        if len(row) != width:
            raise DataError(
                f"{p.name}: got {len(row)} fields at line {line}; expected {width} like the "
                "first row; fix: check delimiters and quoting"
            )
    t = _target_index(target, names, header)
    feature_cols = [i for i in range(width) if i != t]
    x = np.empty((len(data), len(feature_cols)), dtype=np.float64)
    for r, (line, row) in enumerate(data):
        for j, c in enumerate(feature_cols):
            try:
                x[r, j] = float(row[c])
            except ValueError:
                raise DataError(
                    f"{p.name}: got {row[c]!r} at row {r} (line {line}), column {j} "
                    f"{names[c]!r}; expected a number; fix: encode categories as numbers, fill "
                    "missing values, or drop the column"
                ) from None
    y, found_names = _parse_target(p, [(line, row[t].strip()) for line, row in data], names[t],
                                   task, class_names)
    return Table(x, y, tuple(names[c] for c in feature_cols), names[t], found_names)


def _parse_target(
    p: Path,
    values: list[tuple[int, str]],
    name: str,
    task: str | None,
    class_names: Sequence[str] | None,
) -> tuple[np.ndarray, tuple[str, ...] | None]:
    numeric = [_is_number(v) for _, v in values]
    if task != "regression" and all(_is_int(v) for _, v in values):
        return np.array([int(v) for _, v in values], dtype=np.int64), None
    if task == "regression" or any(numeric):
        for r, ((line, v), ok) in enumerate(zip(values, numeric, strict=True)):
            if not ok:
                raise DataError(
                    f"{p.name}: got target {v!r} at row {r} (line {line}), column {name!r}; "
                    "expected a number like the other targets; fix: fill or drop that row"
                )
        return np.array([float(v) for _, v in values], dtype=np.float64), None
    order = tuple(class_names) if class_names is not None else tuple(sorted({v for _, v in values}))
    index = {c: i for i, c in enumerate(order)}
    for r, (line, v) in enumerate(values):
        if v not in index:
            raise DataError(
                f"{p.name}: got class {v!r} at row {r} (line {line}), column {name!r}; "
                f"expected one of class_names {', '.join(order)}"
            )
    return np.array([index[v] for _, v in values], dtype=np.int64), order


def read_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file (pickled objects are refused).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "d.npz"
    >>> np.savez(path, x=np.zeros((2, 1)), y=np.array([0, 1]))
    >>> sorted(read_npz(path))
    ['x', 'y']
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            if fh.read(6) == b"\x93NUMPY":
                raise DataError(
                    f"{p}: got a single array (.npy); expected an .npz archive of named arrays; "
                    "fix: save with np.savez(path, x=..., y=...)"
                )
            fh.seek(0)
            with zipfile.ZipFile(fh) as archive:
                return _npz_members(p, archive, expansion_limit(size))
    except FileNotFoundError as exc:
        raise DataError(f"{p}: file not found; fix: check the path") from exc
    except DataError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error,
            NotImplementedError) as exc:
        raise DataError(f"{p}: not a readable .npz file ({exc}); fix: write it again "
                        "with np.savez") from exc


def _npz_members(p: Path, archive: zipfile.ZipFile, limit: int) -> dict[str, np.ndarray]:
    """Each ``.npy`` member, its header checked against its size before anything is allocated."""
    infos = archive.infolist()
    claimed = sum(info.file_size for info in infos)
    if claimed > limit:
        raise DataError(
            f"{p}: its members would expand to {claimed} bytes; expected at most {limit} "
            f"(max(256 MiB, 100x the file's size on disk)); fix: save the arrays uncompressed "
            "(np.savez) or check the file"
        )
    out: dict[str, np.ndarray] = {}
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        where = f"{p}[{key}]"
        if not info.filename.endswith(".npy") or key in out:
            raise DataError(f"{where}: got member {info.filename!r}; expected distinct .npy "
                            "arrays (np.savez)")
        with archive.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise DataError(f"{where}: got .npy format version {version}; expected 1.0 "
                                "or 2.0")
            if dtype.hasobject:
                raise DataError(
                    f"{where}: holds object arrays, which need pickle; expected numeric "
                    "arrays; fix: save with numeric dtypes"
                )
            nbytes = math.prod(shape) * dtype.itemsize
            held = info.file_size - f.tell()
            if nbytes != held:
                raise DataError(
                    f"{where}: header claims shape {shape} of {dtype} ({nbytes} bytes) but the "
                    f"member holds {held} bytes; the file is truncated or corrupt; fix: write "
                    "it again"
                )
            buffer = bytearray(nbytes)
            if f.readinto(buffer) != nbytes:  # type: ignore[attr-defined]
                raise DataError(f"{where}: truncated array data; fix: write it again")
        array = np.frombuffer(buffer, dtype=dtype)
        out[key] = array.reshape(shape, order="F" if fortran else "C")
    return out
