"""Where dataset files live: local lookup, the cache, and checksum-verified downloads.

Lookup order for a named image dataset (first hit wins):

1. the ``root=`` argument: an ``.npz`` file, or a folder holding ``<name>.npz``, a
   ``<name>/`` IDX folder, or the IDX files themselves;
2. ``$STEADYGRAD_DATA``: a folder holding ``<name>.npz`` or a ``<name>/`` IDX folder
   (``fashion-mnist.npz``, ``fashion_mnist.npz``, ``fashion-mnist/``, ``fashion_mnist/``);
3. the cache ``$XDG_CACHE_HOME/steadygrad`` (default ``~/.cache/steadygrad``), where
   ``download=True`` puts the official files.

Nothing is ever downloaded unless asked. A download streams into a temporary file in the
target folder, is verified against its published checksum, and only then renamed into place:
a failed or tampered download leaves no file behind.

Example:
    >>> import os
    >>> cache_dir({"XDG_CACHE_HOME": "/tmp/xdg"}).as_posix()
    '/tmp/xdg/steadygrad'
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from steadygrad.errors import DataError

__all__ = [
    "ENV_VAR",
    "FASHION_MNIST",
    "MNIST",
    "ImageSource",
    "cache_dir",
    "download",
    "download_source",
    "file_digest",
    "idx_file",
    "locate",
]

ENV_VAR = "STEADYGRAD_DATA"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ImageSource:
    """An IDX image dataset: local names, official file names, checksums and mirrors.

    Attributes:
        name: canonical folder/file stem (``"fashion-mnist"``).
        aliases: other accepted stems (``"fashion_mnist"``).
        files: role (``x_train``, ``y_train``, ``x_test``, ``y_test``) -> (file name, digest).
        algorithm: hash algorithm of the published digests (``"md5"``, ``"sha256"``).
        mirrors: base URLs tried in order.

    Example:
        >>> FASHION_MNIST.name, FASHION_MNIST.algorithm, sorted(FASHION_MNIST.files)
        ('fashion-mnist', 'md5', ['x_test', 'x_train', 'y_test', 'y_train'])
        >>> FASHION_MNIST.files["y_test"]
        ('t10k-labels-idx1-ubyte.gz', 'bb300cfdad3c16e7a12a480ee83cd310')
        >>> tiny = ImageSource("tiny", ("tiny_set",), {}, "sha256", ())
        >>> tiny.stems
        ('tiny', 'tiny_set')
    """

    name: str
    aliases: tuple[str, ...]
    files: Mapping[str, tuple[str, str]]
    algorithm: str
    mirrors: tuple[str, ...]

    @property
    def stems(self) -> tuple[str, ...]:
        """Accepted folder names / npz stems.

        >>> FASHION_MNIST.stems
        ('fashion-mnist', 'fashion_mnist')
        """
        return (self.name, *self.aliases)


# Digests: the MD5s published with the datasets (Fashion-MNIST README; torchvision resources).
FASHION_MNIST = ImageSource(
    name="fashion-mnist",
    aliases=("fashion_mnist",),
    files={
        "x_train": ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "y_train": ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        "x_test": ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        "y_test": ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    },
    algorithm="md5",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
)
MNIST = ImageSource(
    name="mnist",
    aliases=(),
    files={
        "x_train": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "y_train": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        "x_test": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        "y_test": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    },
    algorithm="md5",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
)


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """steadygrad's download cache: ``$XDG_CACHE_HOME/steadygrad`` or ``~/.cache/steadygrad``.

    >>> cache_dir({}).name, cache_dir({}).parent.name
    ('steadygrad', '.cache')
    """
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "steadygrad"


def _idx_folder(folder: Path, source: ImageSource) -> Path | None:
    """``folder`` when it holds every IDX file of ``source`` (``.gz`` or not), else None."""
    for filename, _ in source.files.values():
        raw = filename.removesuffix(".gz")
        if not ((folder / filename).is_file() or (folder / raw).is_file()):
            return None
    return folder


def idx_file(folder: Path, filename: str) -> Path:
    """The path of ``filename`` in ``folder``, preferring it, else its uncompressed twin.

    >>> idx_file(Path("/nowhere"), "t10k-labels-idx1-ubyte.gz").name
    't10k-labels-idx1-ubyte'
    """
    path = folder / filename
    return path if path.is_file() else folder / filename.removesuffix(".gz")


def locate(
    source: ImageSource, root: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Path | None, list[str]]:
    """Find ``source`` locally, in the documented order.

    Returns:
        ``(path, looked)``: an ``.npz`` file or an IDX folder (None when nothing was found),
        and the places looked, for the not-found message.

    >>> path, looked = locate(MNIST, root="/nonexistent", environ={"XDG_CACHE_HOME": "/tmp/x"})
    >>> path is None, looked[0]
    (True, 'root=/nonexistent')
    """
    env = os.environ if environ is None else environ
    looked: list[str] = []
    folders: list[tuple[Path, bool]] = []
    if root is not None:
        r = Path(root).expanduser()
        looked.append(f"root={r}")
        if r.is_file():
            return r, looked
        folders.append((r, True))
    if env.get(ENV_VAR):
        d = Path(env[ENV_VAR]).expanduser()
        looked.append(f"${ENV_VAR}={d}")
        folders.append((d, False))
    else:
        looked.append(f"${ENV_VAR} (not set)")
    c = cache_dir(env)
    looked.append(f"cache {c}")
    folders.append((c, False))
    for folder, itself in folders:
        for stem in source.stems:
            if (folder / f"{stem}.npz").is_file():
                return folder / f"{stem}.npz", looked
            if (hit := _idx_folder(folder / stem, source)) is not None:
                return hit, looked
        if itself and (hit := _idx_folder(folder, source)) is not None:
            return hit, looked
    return None, looked


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks.

    >>> import tempfile
    >>> f = tempfile.NamedTemporaryFile(delete=False); _ = f.write(b"abc"); f.close()
    >>> file_digest(f.name)[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _urlopen(url: str) -> IO[bytes]:
    """Open ``url`` for reading (module-level so tests can replace it)."""
    response: IO[bytes] = urllib.request.urlopen(url, timeout=60)
    return response


def download(
    url: str, dest: str | os.PathLike[str], *, checksum: str, algorithm: str = "sha256"
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying its checksum before it appears.

    Args:
        url: ``http(s)://`` or ``file://`` URL.
        dest: final path; its folder is created.
        checksum: expected hex digest.
        algorithm: hash algorithm of ``checksum`` (``"sha256"``, ``"md5"``, ...).

    Raises:
        DataError: the URL cannot be read, or the digest differs (then nothing is left at
            ``dest`` and no temporary file remains).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "src.bin").write_bytes(b"abc")
    >>> download((d / "src.bin").as_uri(), d / "out.bin", checksum="0" * 64)
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: file://.../src.bin: got sha256 ba7816bf...; expected 00000000...;
    the download is corrupt or was tampered with and was discarded; fix: retry, or place the file by
    hand
    >>> sorted(p.name for p in d.iterdir())
    ['src.bin']
    """
    if not url.startswith(("http://", "https://", "file://")):
        raise DataError(f"download: got URL {url!r}; expected an http(s):// or file:// URL")
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.new(algorithm)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with _urlopen(url) as response:
                    while chunk := response.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise DataError(f"{url}: download failed ({reason})") from exc
        digest = h.hexdigest()
        if digest != checksum.lower():
            raise DataError(
                f"{url}: got {algorithm} {digest[:8]}...; expected {checksum.lower()[:8]}...; the "
                "download is corrupt or was tampered with and was discarded; fix: retry, or "
                "place the file by hand"
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def download_source(source: ImageSource, folder: Path | None = None) -> Path:
    """Download every file of ``source`` into ``folder`` (default: the cache), verified.

    Files already present and matching their checksum are kept; each file tries the mirrors
    in order. Returns the folder.

    >>> import tempfile, pathlib
    >>> mirror = pathlib.Path(tempfile.mkdtemp()); _ = (mirror / "a.bin").write_bytes(b"abc")
    >>> toy = ImageSource("toy", (), {"x": ("a.bin", file_digest(mirror / "a.bin", "md5"))},
    ...                   "md5", ("file:///nonexistent/", mirror.as_uri() + "/"))
    >>> out = download_source(toy, mirror / "cache")
    >>> sorted(p.name for p in out.iterdir())
    ['a.bin']
    """
    target = (cache_dir() / source.name) if folder is None else Path(folder)
    for filename, digest in source.files.values():
        dest = target / filename
        if dest.is_file() and file_digest(dest, source.algorithm) == digest:
            continue
        errors = []
        for base in source.mirrors:
            try:
                download(base + filename, dest, checksum=digest, algorithm=source.algorithm)
                break
            except DataError as exc:
                errors.append(str(exc))
        else:
            raise DataError(
                f"{source.name}: could not download {filename} from any mirror: "
                + " | ".join(errors)
                + f"; fix: download it by hand into {target}, or set ${ENV_VAR}"
            )
    return target
