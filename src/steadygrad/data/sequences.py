"""Synthetic sequence tasks that need memory over long ranges, seeded and small, offline.

Registered in :data:`steadygrad.data.datasets.DATASETS` (``load("first_token", ...)``, or
``[data] name = "first_token"`` in a config), for recurrent and transformer models:

- ``first_token``: a sequence of ``length`` random tokens in ``0..vocab-1``; the label is the
  first token. The answer sits ``length`` steps before the end, so a many-to-one model must
  carry it through every step (a simple RNN loses it as ``length`` grows; an LSTM or a
  transformer keeps it). Chance accuracy is ``1 / vocab``. ``input_shape`` is ``(length,)``
  (token ids, stored as floats: give the model ``vocab``) or, with ``encoding="one_hot"``,
  ``(length, vocab)``.
- ``adding``: the adding problem (Hochreiter & Schmidhuber, 1997, experiment 4, in the form
  of Le et al., 2015): each step has a value drawn from U(0, 1) and a marker; exactly two
  steps are marked, one in each half of the sequence, and the target is the sum of their
  values (regression). ``input_shape`` is ``(length, 2)``. Always predicting 1 has mean
  squared error 1/6 ≈ 0.167 (the variance of the sum), the baseline a model must beat.

Both take ``n`` (examples before splitting), ``seed`` (generation and split), ``val_size``,
``test_size`` and ``dtype``; the features are not standardized.

Example:
    >>> ds = first_token(length=5, n=100, vocab=4, seed=0)
    >>> ds.input_shape, ds.num_classes, bool((ds.x_train[:, 0] == ds.y_train).all())
    ((5,), 4, True)
"""

from __future__ import annotations

import numpy as np
import torch

from steadygrad.data.arrays import build_dataset
from steadygrad.data.dataset import Dataset
from steadygrad.data.datasets import DATASETS
from steadygrad.errors import ConfigError

__all__ = ["adding", "first_token"]

_Size = float | int


def _positive(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(name, value, f"an int >= {minimum}")
    return value


@DATASETS.register("first_token")
def first_token(
    *,
    length: int = 20,
    n: int = 2000,
    vocab: int = 8,
    encoding: str = "tokens",
    val_size: _Size = 0.2,
    test_size: _Size | None = 0.2,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    """Remember the first of ``length`` random tokens (classification over ``vocab`` classes).

    Args:
        length: tokens per sequence (the distance to remember over), >= 2.
        n: examples before splitting.
        vocab: number of distinct tokens (= classes), >= 2.
        encoding: ``"tokens"`` (ids, ``input_shape=(length,)``, for a model with an
            embedding) or ``"one_hot"`` (``(length, vocab)``).
        val_size, test_size: held-out fractions or counts (seeded, stratified).
        seed: seeds the sequences and the split.
        dtype: floating dtype of the features.

    Example:
        >>> ds = first_token(length=3, n=50, vocab=3, encoding="one_hot", seed=1)
        >>> ds.input_shape, bool((ds.x_train.sum(-1) == 1).all())
        ((3, 3), True)
        >>> ds.y_train.tolist() == ds.x_train[:, 0].argmax(-1).tolist()
        True
    """
    _positive("length", length, 2)
    _positive("n", n, 10)
    _positive("vocab", vocab, 2)
    if encoding not in ("tokens", "one_hot"):
        raise ConfigError("encoding", encoding, "one of tokens, one_hot",
                          hint="'tokens' for a model with an embedding (model.vocab)")
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, size=(n, length))
    x = tokens.astype(np.float64) if encoding == "tokens" else np.eye(vocab)[tokens]
    return build_dataset(
        {"train": (x, tokens[:, 0])}, task="multiclass", num_classes=vocab,
        val_size=val_size, test_size=test_size, seed=seed, standardize=False, dtype=dtype,
        name="first_token",
    )


@DATASETS.register("adding")
def adding(
    *,
    length: int = 50,
    n: int = 2000,
    val_size: _Size = 0.2,
    test_size: _Size | None = 0.2,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    """The adding problem: sum the two marked values of a ``(length, 2)`` sequence.

    Args:
        length: steps per sequence, >= 2 (one marker in each half).
        n: examples before splitting.
        val_size, test_size: held-out fractions or counts (seeded).
        seed: seeds the sequences and the split.
        dtype: floating dtype of the features and targets.

    Example:
        >>> ds = adding(length=6, n=40, seed=0)
        >>> ds.task, ds.input_shape, bool((ds.x_train[..., 1].sum(1) == 2).all())
        ('regression', (6, 2), True)
        >>> marked = (ds.x_train[..., 0] * ds.x_train[..., 1]).sum(1, keepdim=True)
        >>> torch.allclose(marked, ds.y_train)
        True
    """
    _positive("length", length, 2)
    _positive("n", n, 10)
    rng = np.random.default_rng(seed)
    values = rng.random((n, length))
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers = np.zeros((n, length))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    x = np.stack([values, markers], axis=-1)
    return build_dataset(
        {"train": (x, y[:, None])}, task="regression", val_size=val_size,
        test_size=test_size, seed=seed, standardize=False, dtype=dtype, name="adding",
    )
