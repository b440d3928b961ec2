"""Hold-out splits: sizes, tail splits and seeded (stratified) shuffled splits.

Two rules, chosen by ``seed``:

* ``seed=None``: the **tail** split. The last ``k`` rows are held out, in their original order,
  as in *Hands-On Machine Learning* (``x_train[:-5000]``, ``x_valid = x_train[-5000:]``).
  Fashion-MNIST and MNIST use it by default.
* ``seed=<int>``: a **shuffled** split from ``numpy.random.default_rng(seed)``; for classification
  labels it is stratified: each class keeps (up to rounding, by largest remainder) its share in
  both parts.

Example:
    >>> keep, held = split_indices(10, 3, seed=None)
    >>> keep.tolist(), held.tolist()
    ([0, 1, 2, 3, 4, 5, 6], [7, 8, 9])
    >>> keep, held = split_indices(10, 0.5, seed=0, labels=np.array([0] * 6 + [1] * 4))
    >>> sorted(np.bincount(np.array([0] * 6 + [1] * 4)[held]).tolist())
    [2, 3]
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from steadygrad.errors import ConfigError

__all__ = ["resolve_size", "split_indices"]


def resolve_size(size: float | int, n: int, *, name: str = "val_size") -> int:
    """Number of rows that ``size`` holds out of ``n``.

    Args:
        size: a fraction in ``(0, 1)`` (rounded up, like scikit-learn's ``test_size``) or a
            count ``0 <= size <= n``.
        n: rows available.
        name: argument name for the error message.

    Raises:
        ConfigError: a bool, a fraction outside ``(0, 1)``, a negative count or more than ``n``.

    >>> resolve_size(0.2, 1797, name="test_size"), resolve_size(5000, 60000)
    (360, 5000)
    >>> resolve_size(1.5, 10)
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: val_size: got 1.5; expected a fraction in (0, 1) or a row count
    in 0..10
    """
    expected = f"a fraction in (0, 1) or a row count in 0..{n}"
    if isinstance(size, bool) or not isinstance(size, Real):
        raise ConfigError(name, size, expected)
    if isinstance(size, Integral):
        if not 0 <= int(size) <= n:
            raise ConfigError(name, size, expected, hint=f"there are only {n} rows")
        return int(size)
    if not 0.0 < float(size) < 1.0:
        raise ConfigError(name, size, expected)
    return min(n, math.ceil(float(size) * n - 1e-9))


def _stratified_counts(counts: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Per-class held-out counts summing to ``k``: largest-remainder apportionment."""
    exact = counts * (k / counts.sum())
    held = np.floor(exact).astype(np.int64)
    remainder = int(k - held.sum())
    if remainder:
        # Largest fractional part first; random tie-break so no class is always favoured.
        frac = exact - held
        order = np.lexsort((rng.random(len(counts)), -frac))
        room = counts - held
        for c in order:
            if remainder == 0:
                break
            if room[c] > 0:
                held[c] += 1
                remainder -= 1
    return held


def split_indices(
    n: int,
    size: float | int,
    *,
    seed: int | None,
    labels: np.ndarray | None = None,
    name: str = "val_size",
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, held_out)`` that split ``n`` rows.

    Args:
        n: number of rows.
        size: rows to hold out (see :func:`resolve_size`).
        seed: ``None`` for the tail split, an int for a shuffled split.
        labels: class labels for a stratified shuffled split (ignored for the tail split).
        name: argument name for error messages.

    Returns:
        Two int64 index arrays, disjoint, covering ``range(n)``.

    >>> kept, held = split_indices(6, 2, seed=1)
    >>> sorted(kept.tolist() + held.tolist()), len(held)
    ([0, 1, 2, 3, 4, 5], 2)
    """
    k = resolve_size(size, n, name=name)
    if seed is None:
        idx = np.arange(n, dtype=np.int64)
        return idx[: n - k], idx[n - k :]
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise ConfigError("seed", seed, "an int, or None for the tail split")
    rng = np.random.default_rng(int(seed))
    if labels is None:
        perm = rng.permutation(n).astype(np.int64)
        return perm[k:], perm[:k]
    labels = np.asarray(labels).reshape(n, -1)[:, 0]
    classes, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(classes))
    held_counts = _stratified_counts(counts, k, rng)
    held_parts, kept_parts = [], []
    for c in range(len(classes)):
        members = rng.permutation(np.flatnonzero(inverse == c))
        held_parts.append(members[: held_counts[c]])
        kept_parts.append(members[held_counts[c] :])
    held = rng.permutation(np.concatenate(held_parts)).astype(np.int64)
    kept = rng.permutation(np.concatenate(kept_parts)).astype(np.int64)
    return kept, held
