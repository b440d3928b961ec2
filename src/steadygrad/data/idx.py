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
import math
import os
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from steadygrad._atomic import atomic_write_bytes
from steadygrad.data.limits import expansion_limit
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
        DataError: missing file, bad magic number, unknown type code, no dimension, a size
            that does not match the header (truncated or padded file), or a ``.gz`` that would
            expand past :func:`~steadygrad.data.limits.expansion_limit` (checked while
            streaming, before it is all in memory), naming the path.

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
        size = p.stat().st_size
        with p.open("rb") as fh:
            compressed = fh.read(2) == _GZIP_MAGIC
            fh.seek(0)
            if compressed:
                with gzip.GzipFile(fileobj=fh) as gz:
                    return _read_stream(p, gz, expansion_limit(size), size)
            return _read_stream(p, fh, None, size)
    except OSError as exc:
        if isinstance(exc, gzip.BadGzipFile) or not exc.strerror:
            raise DataError(f"{p}: corrupt gzip data ({exc}); fix: download it again") from exc
        raise DataError(f"{p}: cannot read the IDX file ({exc.strerror or exc})") from exc
    except (EOFError, zlib.error) as exc:
        raise DataError(f"{p}: corrupt gzip data ({exc}); fix: download it again") from exc


def _read_stream(p: Path, stream: IO[bytes] | gzip.GzipFile, limit: int | None,
                 size: int) -> np.ndarray:
    """Header first, then exactly the bytes it announces (a ``.gz`` is never fully inflated
    before its header's size has been checked against ``limit``)."""
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
        raise DataError(
            f"{p}: got magic bytes {magic.hex(' ')}; expected 00 00 <type> <ndim> (an IDX "
            "file); fix: point to the official MNIST/Fashion-MNIST IDX files"
        )
    code, ndim = magic[2], magic[3]
    if code not in _CODES:
        raise DataError(
            f"{p}: got IDX type code 0x{code:02x}; expected one of "
            f"{', '.join(f'0x{c:02x}' for c in _CODES)}"
        )
    if ndim == 0:
        raise DataError(f"{p}: got an IDX header with 0 dimensions; expected at least 1 "
                        "dimension (labels have 1, images 3)")
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{p}: truncated IDX header ({4 + len(dims)} bytes for {ndim} "
                        "dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))
    dtype = _CODES[code]
    payload = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    header = 4 + 4 * ndim
    if limit is not None and header + payload > limit:
        raise DataError(
            f"{p}: its header announces {header + payload} bytes (shape {shape}, "
            f"{dtype.name}); expected a .gz that expands to at most {limit} bytes (max(256 "
            f"MiB, 100x its {size} bytes on disk)); fix: decompress it and pass the raw file"
        )
    if limit is None and header + payload != size:
        raise DataError(
            f"{p}: got {size} bytes; expected {header + payload} for an IDX array of shape "
            f"{shape} and dtype {dtype.name}; the file is truncated or corrupt; fix: "
            "download it again"
        )
    data = stream.read(payload + 1)
    if len(data) != payload:
        raise DataError(
            f"{p}: got {header + len(data)}{'+' if len(data) > payload else ''} bytes after "
            f"decompression; expected {header + payload} for an IDX array of shape {shape} and "
            f"dtype {dtype.name}; the file is truncated or corrupt; fix: download it again"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
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
