"""The packed per-check record the monitor keeps on the device, and its host-side decoding.

Each sampled step (a *check*) becomes one row of packed float64 numbers (norms of finite float32
values never overflow) in :class:`Records`,
whose :class:`Layout` is shared by every check of the same network and batch shape. The
layout says which position of the packed tensor holds which number: per activation row its
sum, L2 norm, non-finite units, ``‖sign(x)‖`` (the square root of the non-zero count),
saturated count and dead units; per gradient row its L2 norm and non-finite units; per weight
the norms of the weight sample, of the update and of the gradient; then the input statistics
and the loss.

:func:`decode` turns the checks into the :class:`~steadygrad.diagnostics.series.HealthSeries`
arrays with whole-array numpy operations, one pass per distinct layout (10k checks decode in
milliseconds).

Example:
    >>> import numpy as np, torch
    >>> b = LayoutBuilder()
    >>> b.block(0, act=[(0, 4, 2)], grad=[(0, 4)], n_sat=1)  # one activation, one gradient
    8
    >>> b.dead([0], 8)
    >>> b.weights([0], [4], [4], has_delta=True, has_grad=[True], first=9)
    >>> lay = b.build(size=15); rec = Records()
    >>> # block: sums [4, 0], norms [sqrt(10), 5], non-finite units [0, 0], sqrt(nonzero), sat
    >>> packed = torch.tensor([4., 0., 10 ** 0.5, 5., 0., 0., 2 ** 0.5, 2., 0.,  # block, dead
    ...                        4., 2., 2.,  1., 2., 2.3])  # |w|, |dw|, |g|; input; loss
    >>> at = rec.add(0, lay, torch.device("cpu")); _ = rec.rows(lay, at, at + 1)[0].copy_(packed)
    >>> s = HealthSeries.empty(["fc"], rec.steps); g = np.zeros(1); u = {}
    >>> decode(rec.blocks(), s, g, u, {0})
    >>> [round(float(x), 3) for x in (s.values["act_mean"][0, 0], s.values["grad_rms"][0, 0],
    ...                                s.values["update_ratio"][0, 0], s.loss[0])]
    [1.0, 2.5, 0.5, 2.3]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from steadygrad.diagnostics.series import HealthSeries

__all__ = ["Layout", "LayoutBuilder", "Records", "decode"]

_NAN, _ZERO = -1, -2  # column placeholders: a missing number (NaN), a structural zero


def _ints(xs: Sequence[Any]) -> np.ndarray:
    return np.asarray(xs, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Layout:
    """Where each number sits in a packed check (column indices into the packed vector).

    Built by :class:`LayoutBuilder`; ``-1`` marks a number that is absent (decoded as NaN),
    ``-2`` one that is structurally zero (no saturation bounds).

    >>> LayoutBuilder().build(size=3).input_col
    0
    """

    size: int
    act_rows: np.ndarray
    act_numel: np.ndarray
    act_units: np.ndarray
    act_sat_pad: np.ndarray
    act_cols: np.ndarray  # (5, n): sum, norm, nonfinite, ‖sign‖, saturated
    dead_rows: np.ndarray
    dead_cols: np.ndarray
    grad_rows: np.ndarray
    grad_numel: np.ndarray
    grad_cols: np.ndarray  # (2, n): norm, nonfinite
    weight_rows: np.ndarray
    weight_numel: np.ndarray
    weight_sample: np.ndarray
    weight_cols: np.ndarray  # (3, n): |w sample|, |update on the sample|, |grad|
    input_col: int


@dataclass
class LayoutBuilder:
    """Collects column positions while the monitor lays out a packed check.

    >>> b = LayoutBuilder(); b.block(0, act=[], grad=[(3, 10)], n_sat=0)
    3
    >>> b.build(size=6).grad_cols.tolist()  # after the block's sum column
    [[1], [2]]
    """

    _act: list[tuple[int, int, int, tuple[int, ...]]] = field(default_factory=list)
    _sat_pad: list[int] = field(default_factory=list)
    _dead: list[tuple[int, int]] = field(default_factory=list)
    _grad: list[tuple[int, int, tuple[int, int]]] = field(default_factory=list)
    _weight: list[tuple[int, int, int, tuple[int, int, int]]] = field(default_factory=list)

    def block(self, first: int, act: Sequence[tuple[int, ...]],
              grad: Sequence[tuple[int, int]], n_sat: int) -> int:
        """Lay out one :func:`~steadygrad.diagnostics.stats.stack_stats` block at ``first``.

        Args:
            first: position of the block in the packed vector.
            act: ``(row, numel, units[, padding])`` of the activation layers, in stack order
                (``padding``: padded zeros counted as saturated, subtracted on the host).
            grad: ``(row, numel)`` of the gradient layers that follow them in the stack.
            n_sat: how many leading activation layers have a saturated count.

        Returns:
            The block's length.
        """
        na, n = len(act), len(act) + len(grad)
        for j, (r, k, u, *pad) in enumerate(act):
            sat = first + 3 * n + na + j if j < n_sat else _ZERO
            self._act.append((r, k, u, (first + j, first + n + j, first + 2 * n + j,
                                        first + 3 * n + j, sat)))
            self._sat_pad.append(pad[0] if pad else 0)
        for j, (r, k) in enumerate(grad):
            self._grad.append((r, k, (first + n + na + j, first + 2 * n + na + j)))
        return 3 * n + na + n_sat

    def dead(self, rows: Sequence[int], first: int) -> None:
        """Dead-unit counts of ``rows`` at ``first, first + 1, ...``."""
        self._dead += [(r, first + j) for j, r in enumerate(rows)]

    def weights(self, rows: Sequence[int], numel: Sequence[int], sample: Sequence[int], *,
                has_delta: bool, has_grad: Sequence[bool], first: int) -> None:
        """Weights whose norms are packed as ``[|w|..., |dw|... (if has_delta), |g|...]``
        (gradient norms only for the weights with a gradient)."""
        n = len(rows)
        g = first + (2 * n if has_delta else n)
        for j, (r, k, m) in enumerate(zip(rows, numel, sample, strict=True)):
            cols = (first + j, first + n + j if has_delta else _NAN,
                    g if has_grad[j] else _NAN)
            g += bool(has_grad[j])
            self._weight.append((r, k, m, cols))

    def build(self, size: int) -> Layout:
        """The :class:`Layout`; the input statistics and loss are the last 3 columns."""
        a, w, gr = self._act, self._weight, self._grad
        return Layout(
            size=size,
            act_rows=_ints([x[0] for x in a]), act_numel=_ints([x[1] for x in a]),
            act_units=_ints([x[2] for x in a]), act_sat_pad=_ints(self._sat_pad),
            act_cols=_ints([x[3] for x in a]).reshape(-1, 5).T,
            dead_rows=_ints([x[0] for x in self._dead]),
            dead_cols=_ints([x[1] for x in self._dead]),
            grad_rows=_ints([x[0] for x in gr]), grad_numel=_ints([x[1] for x in gr]),
            grad_cols=_ints([x[2] for x in gr]).reshape(-1, 2).T,
            weight_rows=_ints([x[0] for x in w]), weight_numel=_ints([x[1] for x in w]),
            weight_sample=_ints([x[2] for x in w]),
            weight_cols=_ints([x[3] for x in w]).reshape(-1, 3).T,
            input_col=size - 3,
        )


class Records:
    """The packed checks, kept on the device in one growable ``(checks, size)`` table per
    :class:`Layout`: a sampled step's numbers go into a preallocated row (no per-step
    allocation, no concatenation of thousands of small tensors at report time).

    >>> rec = Records(); lay = LayoutBuilder().build(size=3)
    >>> at = rec.add(0, lay, torch.device("cpu"))
    >>> rec.rows(lay, at, at + 1).copy_(torch.tensor([[0.5, 1.0, 2.0]]))
    tensor([[0.5000, 1.0000, 2.0000]], dtype=torch.float64)
    >>> rec.steps, [(k.tolist(), m.tolist()) for _, k, m in rec.blocks()]
    ([0], [([0], [[0.5, 1.0, 2.0]])])
    """

    def __init__(self, capacity: int = 64) -> None:
        self.steps: list[int] = []
        self._capacity = capacity
        self._tables: dict[int, tuple[Layout, list[Any]]] = {}  # id -> layout, [table, checks]

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, step: int, layout: Layout, device: torch.device) -> int:
        """Register a check of ``step``; returns the position of its (uninitialized) row in
        the table of ``layout``, to fill through :meth:`rows`."""
        entry = self._tables.get(id(layout))
        if entry is None:
            table = torch.empty(self._capacity, layout.size, device=device, dtype=torch.float64)
            entry = self._tables[id(layout)] = (layout, [table, []])
        state = entry[1]
        table, checks = state
        if len(checks) == table.shape[0]:
            bigger = table.new_empty(2 * table.shape[0], layout.size)
            bigger[: table.shape[0]].copy_(table)
            state[0] = bigger
        checks.append(len(self.steps))
        self.steps.append(step)
        return len(checks) - 1

    def filled(self, layout: Layout) -> int:
        """How many checks the table of ``layout`` holds."""
        entry = self._tables.get(id(layout))
        return len(entry[1][1]) if entry is not None else 0

    def rows(self, layout: Layout, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` of the table of ``layout``: a view of the table as it is now
        (the table may grow, into a new tensor, between a check's :meth:`add` and its write)."""
        return self._tables[id(layout)][1][0][start:stop]

    def blocks(self) -> list[tuple[Layout, np.ndarray, np.ndarray]]:
        """``(layout, check positions, (checks, size) float64 host array)`` per layout (one
        device-to-host copy per layout)."""
        return [(lay, np.asarray(checks, dtype=np.int64),
                 table[: len(checks)].cpu().numpy().astype(float))
                for lay, (table, checks) in self._tables.values()]


def decode(blocks: Sequence[tuple[Layout, np.ndarray, np.ndarray]], s: HealthSeries,
           gsq: np.ndarray, units: dict[int, int], relu_rows: set[int]) -> None:
    """Decode :meth:`Records.blocks` into ``s`` (in place), whole arrays at a time.

    Moments from sums: ``mean = Σx / n``, ``std = sqrt(max(‖x‖² / n - mean², 0))`` (in
    float64); the non-zero count is ``round(‖sign(x)‖²)``;
    ``update_ratio = ‖Δw‖ / ‖w‖`` and ``weight_rms = ‖w‖ / sqrt(m)`` on the ``m``-entry weight
    sample; ``grad_norm²`` of a check is the NaN-skipping sum of the squared weight-gradient
    norms.

    Args:
        blocks: ``(layout, check positions, (checks, size) array)`` triples.
        s: the series to fill (from :meth:`HealthSeries.empty`).
        gsq: per-check squared global gradient norm (filled).
        units: filled with the number of units of each row.
        relu_rows: rows whose activation is a rectifier (only those get ``dead_frac``).

    >>> lay = LayoutBuilder().build(size=3)
    >>> s = HealthSeries.empty([], [5])
    >>> decode([(lay, np.array([0]), np.array([[0.1, 1.0, 0.7]]))], s, np.zeros(1), {}, set())
    >>> round(float(s.loss[0]), 3), round(float(s.input_std[0]), 3)
    (0.7, 1.0)
    """
    for lay, kk, m in blocks:
        # two extra columns, so that _ZERO (-2) reads 0 and _NAN (-1) reads NaN
        m = np.concatenate([m, np.zeros((len(kk), 1)), np.full((len(kk), 1), math.nan)], 1)
        _decode_group(lay, m, kk, s, gsq, units, relu_rows)


def _decode_group(lay: Layout, m: np.ndarray, kk: np.ndarray, s: HealthSeries,
                  gsq: np.ndarray, units: dict[int, int], relu_rows: set[int]) -> None:
    v = s.values
    ix = np.ix_
    if len(lay.act_rows):
        tot, norm, bad, sign_norm, sat = (m[:, c] for c in lay.act_cols)
        sq, nonzero = norm * norm, np.rint(sign_norm * sign_norm)
        n = lay.act_numel.astype(float)
        mean = tot / n
        rows = ix(kk, lay.act_rows)
        v["act_mean"][rows] = mean
        v["act_std"][rows] = np.sqrt(np.maximum(sq / n - mean * mean, 0.0))
        v["zero_frac"][rows] = (n - nonzero) / n
        v["sat_frac"][rows] = (sat - lay.act_sat_pad) / n
        v["act_nonfinite"][rows] = bad
        units.update(zip(lay.act_rows.tolist(), lay.act_units.tolist(), strict=True))
    relu = np.array([r in relu_rows for r in lay.dead_rows.tolist()], dtype=bool)
    if relu.any():  # "silent" only means dead for rectifiers
        u = np.array([units[r] for r in lay.dead_rows[relu].tolist()], dtype=float)
        v["dead_frac"][ix(kk, lay.dead_rows[relu])] = m[:, lay.dead_cols[relu]] / u
    if len(lay.grad_rows):
        norm, bad = (m[:, c] for c in lay.grad_cols)
        rows = ix(kk, lay.grad_rows)
        v["grad_rms"][rows] = norm / np.sqrt(lay.grad_numel)
        v["grad_nonfinite"][rows] = bad
    if len(lay.weight_rows):
        wn, dn, gn = (m[:, c] for c in lay.weight_cols)
        ok = lay.weight_rows >= 0  # a weighted leaf that did not run in the forward pass: -1
        rows = ix(kk, lay.weight_rows[ok])
        v["weight_rms"][rows] = (wn / np.sqrt(lay.weight_sample))[:, ok]
        v["weight_grad_norm"][rows] = gn[:, ok]
        v["weight_grad_rms"][rows] = (gn / np.sqrt(lay.weight_numel))[:, ok]
        v["update_ratio"][rows] = (dn / wn)[:, ok]
        gsq[kk] = np.where(np.all(np.isnan(gn), axis=1), math.nan, np.nansum(gn * gn, axis=1))
    else:
        gsq[kk] = math.nan
    c = lay.input_col
    s.input_mean_abs[kk], s.input_std[kk], s.loss[kk] = m[:, c], m[:, c + 1], m[:, c + 2]
