"""Per-example shape of image datasets: as loaded, flat vectors, or ``(C, H, W)`` images.

The image loaders take ``shape``: ``"default"`` (``digits``: ``(64,)``; ``fashion_mnist`` and
``mnist``: ``(28, 28)``, as before), ``"flat"`` (one vector per image) or ``"image"``
(``(1, H, W)``: one channel, what ``Conv2d`` layers read, e.g. ``steadygrad.nn.cnn``).
Only the view changes: values, splits and standardization are the same.

Example:
    >>> from steadygrad.data.datasets import digits
    >>> digits(shape="image", n_train=10).input_shape
    (1, 8, 8)
"""

from __future__ import annotations

import dataclasses

import torch

from steadygrad.data.dataset import Dataset
from steadygrad.errors import ConfigError

__all__ = ["SHAPES", "with_shape"]

SHAPES: tuple[str, ...] = ("default", "flat", "image")
"""Values of the image loaders' ``shape`` option."""


def with_shape(ds: Dataset, shape: str, image: tuple[int, int, int]) -> Dataset:
    """``ds`` with every split (and the fitted mean/std) viewed in ``shape``.

    Args:
        ds: the dataset as loaded.
        shape: ``"default"`` (unchanged), ``"flat"`` or ``"image"``.
        image: the ``(C, H, W)`` of one example.

    Raises:
        ConfigError: ``shape`` is not one of :data:`SHAPES`.

    Example:
        >>> x = torch.arange(8.0).reshape(2, 4)
        >>> ds = Dataset(x, torch.tensor([0, 1]), x, torch.tensor([0, 1]), num_classes=2,
        ...              input_shape=(4,))
        >>> img = with_shape(ds, "image", (1, 2, 2))
        >>> img.input_shape, img.x_val[1, 0].tolist()
        ((1, 2, 2), [[4.0, 5.0], [6.0, 7.0]])
        >>> with_shape(ds, "imgae", (1, 2, 2))
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: shape: got 'imgae'; expected one of default, flat, ...
    """
    if not isinstance(shape, str) or shape not in SHAPES:
        raise ConfigError(
            "shape", shape, f"one of {', '.join(SHAPES)}",
            hint="'image' gives (C, H, W) for convolutional models",
        )
    if shape == "default":
        return ds
    target = image if shape == "image" else (image[0] * image[1] * image[2],)

    def rows(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(len(t), *target)

    def stat(t: torch.Tensor | None) -> torch.Tensor | None:  # () global, or per feature
        return t if t is None or t.dim() == 0 else t.reshape(target)

    return dataclasses.replace(
        ds,
        x_train=rows(ds.x_train), x_val=rows(ds.x_val),
        x_test=None if ds.x_test is None else rows(ds.x_test),
        input_shape=target, mean=stat(ds.mean), std=stat(ds.std),
    )
