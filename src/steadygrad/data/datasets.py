"""Dataset loaders by name: ``digits`` (offline default), ``fashion_mnist``, ``mnist``, ``npz``,
``csv``; :func:`load` dispatches through the :data:`DATASETS` registry.

Common options (every loader): ``val_size`` (fraction or count), ``seed`` (None: hold out the
*last* rows in order; an int: seeded shuffled split, stratified for classification),
``stratify``, ``standardize`` (True/``"feature"``, ``"global"``, False; fitted on the training
split only), ``n_train`` (first rows only, for quick runs) and ``dtype``. Image loaders also
take ``scale`` (True: divide pixels by their maximum, 255 or 16, to [0, 1] *before*
standardizing; with ``standardize=False`` that gives the book's ``x / 255.``). Images keep
their shape (``(28, 28)``); models flatten. ``shape="image"`` gives ``(1, H, W)`` for
convolutional models and ``shape="flat"`` one vector (:mod:`steadygrad.data.shape`). Synthetic
sequence tasks (``first_token``, ``adding``) are in :mod:`steadygrad.data.sequences`.

Fashion-MNIST and MNIST default to the split of *Hands-On Machine Learning*:
``x_train[:-5000]`` for training, the last 5,000 for validation, the official 10,000 test
images for testing (55,000 / 5,000 / 10,000).

Example:
    >>> ds = load("digits")
    >>> ds.input_shape, len(ds.x_train), len(ds.x_val), len(ds.x_test)
    ((64,), 1149, 288, 360)
    >>> load("digtis")
    Traceback (most recent call last):
    ...
    steadygrad.errors.UnknownNameError: dataset: got 'digtis'; expected one of adding, csv, digits,
    fashion_mnist, first_token, mnist, npz; did you mean 'digits'?
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steadygrad._registry import Registry
from steadygrad.data.arrays import build_dataset
from steadygrad.data.dataset import Dataset
from steadygrad.data.idx import read_idx
from steadygrad.data.shape import with_shape
from steadygrad.data.sources import (
    ENV_VAR,
    FASHION_MNIST,
    MNIST,
    ImageSource,
    cache_dir,
    download_source,
    idx_file,
    locate,
)
from steadygrad.data.tabular import read_csv, read_npz
from steadygrad.errors import ConfigError, DataError

__all__ = [
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "csv",
    "digits",
    "fashion_mnist",
    "load",
    "mnist",
    "npz",
]

DATASETS: Registry[Callable[..., Dataset]] = Registry("dataset")

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_DIGIT_CLASSES = tuple(str(i) for i in range(10))
_Size = float | int


@DATASETS.register("digits")
def digits(
    *,
    val_size: _Size = 0.2,
    test_size: _Size | None = 0.2,
    seed: int | None = 0,
    stratify: bool = True,
    scale: bool = True,
    standardize: bool | str = True,
    n_train: int | None = None,
    dtype: torch.dtype = torch.float32,
    shape: str = "default",
) -> Dataset:
    """scikit-learn's embedded handwritten digits: 1,797 8x8 images (pixels 0..16), 10 classes.

    Needs no file and no network. ``test_size`` of the 1,797 rows is held out for testing,
    then ``val_size`` of the rest for validation (seeded, stratified): 1,149 / 288 / 360 by
    default. ``input_shape`` is ``(64,)``, or ``(1, 8, 8)`` with ``shape="image"``
    (:func:`steadygrad.data.shape.with_shape`).

    >>> ds = digits(standardize=False)
    >>> float(ds.x_train.min()), float(ds.x_train.max()), ds.class_names[:3]
    (0.0, 1.0, ('0', '1', '2'))
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    ds = build_dataset(
        {"train": (bunch.data, bunch.target)},
        task="multiclass", num_classes=10, class_names=_DIGIT_CLASSES,
        val_size=val_size, test_size=test_size, seed=seed, stratify=stratify,
        scale=16.0 if scale else None, standardize=standardize, n_train=n_train, dtype=dtype,
        name="digits",
    )
    return with_shape(ds, shape, (1, 8, 8))


def _not_found(source: ImageSource, looked: list[str]) -> DataError:
    stems = " or ".join(f"{s}.npz" for s in source.stems)
    files = ", ".join(f for f, _ in source.files.values())
    return DataError(
        f"{source.name}: not found; looked in {'; '.join(looked)} for {stems} or a "
        f"{source.name}/ folder with the IDX files ({files}); fix: set ${ENV_VAR} to the "
        f"folder holding {source.name}.npz, pass root=, or pass download=True to fetch the "
        f"official files into {cache_dir() / source.name}"
    )


def _read_images(
    source: ImageSource, root: str | os.PathLike[str] | None, download: bool
) -> tuple[dict[str, np.ndarray], Path]:
    path, looked = locate(source, root)
    if path is None:
        if not download:
            raise _not_found(source, looked)
        path = download_source(source)
    if path.is_file():
        arrays = read_npz(path)
        missing = [k for k in source.files if k not in arrays]
        if missing:
            raise DataError(
                f"{path}: missing arrays {', '.join(missing)}; got {', '.join(sorted(arrays))}; "
                "expected x_train, y_train, x_test, y_test"
            )
        return {k: arrays[k] for k in source.files}, path
    return {k: read_idx(idx_file(path, f)) for k, (f, _) in source.files.items()}, path


def _image_dataset(
    source: ImageSource,
    class_names: tuple[str, ...],
    root: str | os.PathLike[str] | None,
    download: bool,
    **options: Any,
) -> Dataset:
    a, _ = _read_images(source, root, download)
    scale = options.pop("scale")
    shape = options.pop("shape")
    ds = build_dataset(
        {"train": (a["x_train"], a["y_train"]), "test": (a["x_test"], a["y_test"])},
        names={"train": ("x_train", "y_train")},
        task="multiclass", num_classes=len(class_names), class_names=class_names,
        scale=255.0 if scale else None, name=source.name.replace("-", "_"), **options,
    )
    h, w = ds.input_shape[-2:]  # grey images: (H, W) -> one channel
    return with_shape(ds, shape, (1, h, w))


@DATASETS.register("fashion_mnist", "fmnist")
def fashion_mnist(
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    val_size: _Size = 5000,
    seed: int | None = None,
    stratify: bool = True,
    scale: bool = True,
    standardize: bool | str = True,
    n_train: int | None = None,
    dtype: torch.dtype = torch.float32,
    shape: str = "default",
) -> Dataset:
    """Fashion-MNIST (Xiao et al., 2017): 70,000 28x28 grey images of 10 clothing classes.

    Read from an ``.npz`` (keys ``x_train``, ``y_train``, ``x_test``, ``y_test``) or the
    official IDX files, found as described in :mod:`steadygrad.data.sources`; downloaded (MD5
    verified) into the cache only with ``download=True``. Default split 55,000 / 5,000 / 10,000
    (the last 5,000 training images validate). ``input_shape`` is ``(28, 28)``, ``(784,)`` with
    ``shape="flat"`` or ``(1, 28, 28)`` with ``shape="image"``.

    Raises:
        DataError: the files are not found (saying where it looked and how to fix it), or are
            corrupt.

    >>> import tempfile, pathlib
    >>> rng = np.random.default_rng(0)
    >>> images = lambda n: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "fashion-mnist.npz"
    >>> np.savez(path, x_train=images(30), y_train=np.arange(30) % 10,
    ...          x_test=images(10), y_test=np.arange(10))
    >>> ds = fashion_mnist(root=path, val_size=5)
    >>> ds.input_shape, len(ds.x_train), len(ds.x_val), len(ds.x_test), ds.class_names[9]
    ((28, 28), 25, 5, 10, 'Ankle boot')
    """
    return _image_dataset(
        FASHION_MNIST, FASHION_MNIST_CLASSES, root, download, val_size=val_size, seed=seed,
        stratify=stratify, scale=scale, standardize=standardize, n_train=n_train, dtype=dtype,
        shape=shape,
    )


@DATASETS.register("mnist")
def mnist(
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    val_size: _Size = 5000,
    seed: int | None = None,
    stratify: bool = True,
    scale: bool = True,
    standardize: bool | str = True,
    n_train: int | None = None,
    dtype: torch.dtype = torch.float32,
    shape: str = "default",
) -> Dataset:
    """MNIST handwritten digits (LeCun et al., 1998): 70,000 28x28 grey images, 10 classes.

    Same lookup, options and default split as :func:`fashion_mnist` (``mnist.npz`` as saved by
    Keras, or the IDX files in a ``mnist/`` folder).

    >>> import tempfile, pathlib
    >>> from steadygrad.data.idx import write_idx
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> for prefix, n in (("train", 20), ("t10k", 10)):
    ...     write_idx(folder / f"{prefix}-images-idx3-ubyte.gz",
    ...               rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
    ...     write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz",
    ...               (np.arange(n) % 10).astype(np.uint8))
    >>> ds = mnist(root=folder, val_size=4, standardize=False)
    >>> len(ds.x_train), ds.y_val.tolist(), float(ds.x_train.max()) <= 1.0
    (16, [6, 7, 8, 9], True)
    """
    return _image_dataset(
        MNIST, _DIGIT_CLASSES, root, download, val_size=val_size, seed=seed,
        stratify=stratify, scale=scale, standardize=standardize, n_train=n_train, dtype=dtype,
        shape=shape,
    )


@DATASETS.register("npz")
def npz(
    path: str | os.PathLike[str],
    *,
    task: str | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    val_size: _Size | None = None,
    test_size: _Size | None = None,
    seed: int | None = 0,
    stratify: bool = True,
    scale: float | None = None,
    standardize: bool | str = True,
    n_train: int | None = None,
    dtype: torch.dtype = torch.float32,
    name: str | None = None,
) -> Dataset:
    """A dataset from an ``.npz`` file: keys ``x_train``/``y_train`` (or ``x``/``y``), and
    optionally ``x_val``/``y_val``, ``x_test``/``y_test`` and ``class_names``.

    Options as in :func:`~steadygrad.data.from_arrays`; the name defaults to the file stem.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "toy.npz"
    >>> np.savez(path, x_train=np.eye(10), y_train=np.arange(10) % 3, x_test=np.eye(10)[:4],
    ...          y_test=np.array([0, 1, 2, 0]))
    >>> ds = npz(path, val_size=3)
    >>> ds.name, ds.num_classes, len(ds.x_train), len(ds.x_val), len(ds.x_test)
    ('toy', 3, 7, 3, 4)
    """
    p = Path(path)
    a = read_npz(p)
    prefix = "x_train" if "x_train" in a else "x"
    ykey = "y_train" if prefix == "x_train" else "y"
    if prefix not in a or ykey not in a:
        raise DataError(
            f"{p}: got arrays {', '.join(sorted(a)) or '(none)'}; expected x_train and y_train "
            "(or x and y), optionally x_val/y_val, x_test/y_test, class_names"
        )
    arrays = {"train": (a[prefix], a[ykey])}
    names = {"train": (f"{p.name}[{prefix}]", f"{p.name}[{ykey}]")}
    for split in ("val", "test"):
        keys = (f"x_{split}", f"y_{split}")
        if (keys[0] in a) != (keys[1] in a):
            raise DataError(f"{p}: has only one of {keys[0]}/{keys[1]}; expected both or neither")
        if keys[0] in a:
            arrays[split] = (a[keys[0]], a[keys[1]])
            names[split] = (f"{p.name}[{keys[0]}]", f"{p.name}[{keys[1]}]")
    if class_names is None and "class_names" in a:
        class_names = tuple(str(c) for c in a["class_names"].reshape(-1))
    return build_dataset(
        arrays, names=names, task=task, num_classes=num_classes, class_names=class_names,
        val_size=val_size, test_size=test_size, seed=seed, stratify=stratify, scale=scale,
        standardize=standardize, n_train=n_train, dtype=dtype, name=name or p.stem,
    )


@DATASETS.register("csv")
def csv(
    path: str | os.PathLike[str],
    *,
    target: str | int = -1,
    delimiter: str = ",",
    header: bool | None = None,
    task: str | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    val_size: _Size | None = None,
    test_size: _Size | None = None,
    seed: int | None = 0,
    stratify: bool = True,
    scale: float | None = None,
    standardize: bool | str = True,
    n_train: int | None = None,
    dtype: torch.dtype = torch.float32,
    name: str | None = None,
) -> Dataset:
    """A dataset from a CSV file (parsing rules in :mod:`steadygrad.data.tabular`).

    ``target`` is a column name or index (default: the last column). Integer targets are class
    labels, decimal targets regression, names become classes (sorted, or ``class_names``
    order); the task is then inferred as in :func:`~steadygrad.data.from_arrays`.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "houses.csv"
    >>> rows = "\\n".join(f"{i},{i % 7},{2.5 * i}" for i in range(20))
    >>> _ = path.write_text("size,age,price\\n" + rows + "\\n")
    >>> ds = csv(path, target="price", val_size=5)
    >>> ds.task, ds.input_shape, tuple(ds.y_train.shape)
    ('regression', (2,), (15, 1))
    """
    p = Path(path)
    table = read_csv(p, target=target, delimiter=delimiter, header=header, task=task,
                     class_names=class_names)
    return build_dataset(
        {"train": (table.x, table.y)},
        names={"train": (p.name, f"{p.name}[{table.target}]")}, columns=table.columns,
        task=task, num_classes=num_classes,
        class_names=table.class_names if table.class_names is not None else class_names,
        val_size=val_size, test_size=test_size, seed=seed, stratify=stratify, scale=scale,
        standardize=standardize, n_train=n_train, dtype=dtype, name=name or p.stem,
    )


def load(name: str, **kwargs: Any) -> Dataset:
    """Load a dataset by registry name (``digits``, ``fashion_mnist``, ``mnist``, ``npz``,
    ``csv``), passing ``kwargs`` to its loader; unknown arguments fail before any work.

    >>> load("digits", n_train=100).x_train.shape
    torch.Size([100, 64])
    >>> load("digits", val_sise=0.1)
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: digits.val_sise: got 0.1; expected one of the arguments val_size,
    test_size, seed, stratify, scale, standardize, n_train, dtype, shape; did you mean 'val_size'?
    """
    canonical = DATASETS.canonical(name)
    loader = DATASETS.get(canonical)
    params = inspect.signature(loader).parameters
    for key, value in kwargs.items():
        if key not in params:
            close = difflib.get_close_matches(key, list(params), n=1)
            raise ConfigError(
                f"{canonical}.{key}", value, f"one of the arguments {', '.join(params)}",
                hint=f"did you mean {close[0]!r}?" if close else None,
            )
    for key, param in params.items():
        if param.default is inspect.Parameter.empty and key not in kwargs:
            raise ConfigError(
                f"{canonical}.{key}", None, f"a value: {canonical} needs {key}=",
                hint=f"e.g. load({canonical!r}, {key}='data.{canonical}')",
            )
    return loader(**kwargs)
