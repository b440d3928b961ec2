"""Read and write IDX files, the format of the official MNIST and Fashion-MNIST distributions.

Format (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"): a 4-byte magic number
``0x00 0x00 <type code> <ndim>``, then ``ndim`` big-endian uint32 dimension sizes, then the
values in C order, big-endian. Type codes: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64. Files may be gzip-compressed (``.gz``); the
gzip magic bytes are detected whatever the file name.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t10k-labels-idx1-ubyte.gz"
    >>> write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
    >>> read_idx(path).tolist()
    [3, 1, 4]
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from steadygrad._atomic import atomic_write_bytes
from steadygrad.errors import DataError

__all__ = ["read_idx", "write_idx"]

_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """The array stored in an IDX file (raw or gzip-compressed), in native byte order.

    Raises:
        DataError: missing file, bad magic number, unknown type code or a size that does not
            match the header (truncated or padded file), naming the path.

    >>> import tempfile, pathlib
    >>> bad = pathlib.Path(tempfile.mkdtemp()) / "bad-idx3-ubyte"
    >>> _ = bad.write_bytes(b"\\x01\\x02\\x08\\x01")
    >>> read_idx(bad)
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: .../bad-idx3-ubyte: got magic bytes 01 02 08 01; expected 00 00
    <type> <ndim> (an IDX file); fix: point to the official MNIST/Fashion-MNIST IDX files
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{p}: cannot read the IDX file ({exc.strerror or exc})") from exc
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataError(f"{p}: corrupt gzip data ({exc}); fix: download it again") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{p}: got magic bytes {data[:4].hex(' ')}; expected 00 00 <type> <ndim> (an IDX "
            "file); fix: point to the official MNIST/Fashion-MNIST IDX files"
        )
    code, ndim = data[2], data[3]
    if code not in _CODES:
        raise DataError(
            f"{p}: got IDX type code 0x{code:02x}; expected one of "
            f"{', '.join(f'0x{c:02x}' for c in _CODES)}"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{p}: truncated IDX header ({len(data)} bytes for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _CODES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            f"{p}: got {len(data)} bytes; expected {expected} for an IDX array of shape "
            f"{shape} and dtype {dtype.name}; the file is truncated or corrupt; fix: "
            "download it again"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    The write is atomic (temporary file, then rename). Supported dtypes: uint8, int8, int16,
    int32, float32, float64.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x-idx3-ubyte"
    >>> write_idx(path, np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
    >>> path.read_bytes()[:8].hex(" ")
    '00 00 08 03 00 00 00 01'
    """
    a = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _CODES.items()}
    native = a.dtype.newbyteorder("=")
    if native not in codes:
        raise DataError(
            f"write_idx: got dtype {a.dtype}; expected uint8, int8, int16, int32, float32 or "
            "float64"
        )
    big = _CODES[codes[native]]
    payload = bytes([0, 0, codes[native], a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
    payload += np.ascontiguousarray(a, dtype=big).tobytes()
    p = Path(path)
    if p.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    atomic_write_bytes(p, payload)
