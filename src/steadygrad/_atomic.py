"""Atomic file writes: nothing a user made is ever left half-written under its final name.

Every writer in steadygrad goes through :func:`atomic_path`: the content is written to a
temporary file in the destination folder, flushed and fsynced, then renamed over the final
name with ``os.replace`` (atomic on POSIX and Windows), and the folder entry is fsynced. A crash
or kill at any moment leaves either the old file or the new one, plus at most a hidden
``.<name>.*.tmp`` leftover that the next writer of the same name may remove.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> atomic_write_text(folder / "a" / "x.txt", "hello").read_text()
    'hello'
    >>> with atomic_path(folder / "y.bin") as tmp:
    ...     _ = tmp.write_bytes(b"data")
    >>> (folder / "y.bin").read_bytes(), sorted(p.name for p in folder.iterdir())
    (b'data', ['a', 'y.bin'])
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "fsync_dir"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Flush a directory entry to disk (a no-op where directories cannot be opened).

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> fsync_dir(folder) is None
        True
        >>> fsync_dir(Path(folder) / "missing") is None  # unopenable: silently ignored
        True
    """
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, prefix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The caller writes the temporary file by any means (``savefig``, ``save_file``, ...). On an
    exception the temporary file is removed and ``path`` is untouched. The final file gets the
    usual permissions (``0o666`` minus the umask), not ``mkstemp``'s private ``0o600``.
    ``prefix`` names the temporary file (default ``.<name>.``) so that an owner can recognize
    and clean its own leftovers.

    Example:
        >>> import tempfile
        >>> final = Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_path(final) as tmp:
        ...     _ = tmp.write_text("new")
        ...     print(tmp.name.startswith(".out.txt."), final.exists())
        True False
        >>> final.read_text()
        'new'
        >>> try:
        ...     with atomic_path(final) as tmp:
        ...         _ = tmp.write_text("half")
        ...         raise RuntimeError("crash")
        ... except RuntimeError:
        ...     pass
        >>> final.read_text(), sorted(p.name for p in final.parent.iterdir())
        ('new', ['out.txt'])
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=prefix or f".{final.name[:80]}.", suffix=".tmp", dir=final.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, prefix: str | None = None
) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> import tempfile
        >>> out = atomic_write_bytes(Path(tempfile.mkdtemp()) / "sub" / "w.bin", b"\\x00\\x01")
        >>> out.name, out.read_bytes()
        ('w.bin', b'\\x00\\x01')
    """
    with atomic_path(path, prefix=prefix) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns ``path``.

    Example:
        >>> import tempfile
        >>> out = atomic_write_text(Path(tempfile.mkdtemp()) / "t.txt", "héllo")
        >>> out.read_bytes()
        b'h\\xc3\\xa9llo'
    """
    return atomic_write_bytes(path, text.encode("utf-8"))
