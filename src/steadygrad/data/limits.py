"""Resource limits for data read from files: checked before memory is allocated.

A data file is untrusted input. Before any array is allocated or any archive decompressed,
its claimed size is compared with these limits, so that a small hostile file cannot exhaust
memory:

* a compressed file (``.gz`` IDX, a deflated ``.npz`` member) may expand to at most
  :func:`expansion_limit` of its size on disk: ``max(256 MiB, 100 x size)``;
* an array header must agree with the bytes the file really holds;
* a classification target may have at most :data:`MAX_CLASSES` classes.

Example:
    >>> expansion_limit(1 << 20) == 256 << 20, expansion_limit(10 << 20) == 1000 << 20
    (True, True)
"""

from __future__ import annotations

__all__ = ["EXPANSION_FLOOR", "EXPANSION_RATIO", "MAX_CLASSES", "expansion_limit"]

EXPANSION_FLOOR = 256 << 20
"""Bytes any compressed data file may expand to, whatever its size."""
EXPANSION_RATIO = 100
"""Beyond the floor, a compressed file may expand to this multiple of its size on disk."""
MAX_CLASSES = 100_000
"""Most classes a classification dataset may have (one stray label 10^9 would otherwise make a
10^9-way output layer)."""


def expansion_limit(size_on_disk: int) -> int:
    """The most bytes a compressed file of ``size_on_disk`` bytes may expand to.

    >>> expansion_limit(0) == EXPANSION_FLOOR
    True
    """
    return max(EXPANSION_FLOOR, EXPANSION_RATIO * size_on_disk)
