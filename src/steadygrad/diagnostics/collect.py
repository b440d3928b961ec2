"""The plan of one sampled step's reductions, and the buffers it reuses (used by the monitor).

On a sampled step the monitor holds, per report row, a 2-D ``(samples, units)`` view of the
activation and of the gradient at the weighted layer's output. :func:`make_plan` groups those
views by shape, once per network/batch shape (or puts them all in one zero-padded stack when
the padding is cheap, so that a small net of differently sized layers pays for one stack, not
one per shape): each group is copied into one stack (activations first, saturating ones
leading) and reduced by
:func:`~steadygrad.diagnostics.stats.stack_stats`; the plan also fixes the
:class:`~steadygrad.diagnostics.checks.Layout` of the packed record. Stacks up to
:data:`WORKSPACE_BYTES` keep their buffers between sampled steps, so a step allocates no large
temporary (on CPU, a fresh multi-hundred-kilobyte block costs page faults on first touch).

Example:
    >>> import torch
    >>> views = [(0, torch.ones(4, 3)), (1, torch.ones(4, 3))]
    >>> plan = make_plan(views, views[:1], sat={}, relu={1}, weights=(),
    ...                  dev=torch.device("cpu"))
    >>> [(g.act, g.grad, g.relu, g.shape) for g in plan.groups]  # the rectifier row first
    [([1, 0], [0], [(0, 1, 4, 3)], (3, 4, 3))]
    >>> plan.layout.size  # 3 layers x 3 + 2 nonzero + 1 dead count + input (2) + loss
    15
    >>> small = make_plan([(0, torch.ones(4, 3)), (1, torch.ones(4, 2))], [], sat={},
    ...                   weights=(), dev=torch.device("cpu"))
    >>> [(g.shape, g.ragged) for g in small.groups]  # one zero-padded stack, by shape
    [((2, 1, 12), [(4, 2), (4, 3)])]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from steadygrad.diagnostics.checks import Layout, LayoutBuilder
from steadygrad.diagnostics.stats import norms_of, weight_sample

__all__ = ["WORKSPACE_BYTES", "Group", "Plan", "WeightSamples", "make_plan"]

WORKSPACE_BYTES = 32 * 2**20
"""Largest stack (bytes, the scratch copy doubles it) whose buffers are kept between steps."""


@dataclass(eq=False)
class Group:
    """One stack: positions of its activation and gradient views, buffers, saturation params.

    A *ragged* group (views of different shapes) is a zero-padded ``(layers, 1, width)``
    stack whose row ``i`` starts with the flattened view ``i``; the zeros change no sum or norm
    (the host corrects the saturated count for the padding).

    >>> g = Group([0], [], 0, [], (1, 2, 2), torch.float32, None, None, None)
    >>> g.stack([torch.ones(2, 2)])[0].shape
    torch.Size([1, 2, 2])
    """

    act: list[int]
    grad: list[int]
    n_sat: int
    relu: list[tuple[int, int, int, int]]  # runs (start, stop, samples, units) of rectifiers
    shape: tuple[int, int, int]
    dtype: torch.dtype
    saturation: tuple[torch.Tensor, torch.Tensor] | None
    buf: torch.Tensor | None
    scratch: torch.Tensor | None
    ragged: list[tuple[int, int]] | None = None  # per row (samples, units) when shapes differ
    _dest: list[torch.Tensor] | None = None

    def stack(self, views: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(stack, scratch)`` holding ``views`` (reused buffers when the plan keeps them)."""
        if self.ragged is None:
            buf = self.buf if self.buf is not None else torch.empty(
                self.shape, dtype=self.dtype, device=views[0].device)
            torch.cat(list(views), out=buf.view(-1, self.shape[2]))
        else:
            buf = self.buf if self.buf is not None else torch.zeros(
                self.shape, dtype=self.dtype, device=views[0].device)
            dest = self._dest if self.buf is not None else None
            if dest is None:
                dest = [buf[i, 0, : s * u].view(s, u) for i, (s, u) in enumerate(self.ragged)]
                if self.buf is not None:
                    self._dest = dest
            torch._foreach_copy_(dest, list(views))
        scratch = self.scratch if self.scratch is not None else torch.empty_like(buf)
        return buf, scratch

    def unit_rows(self, x: torch.Tensor, start: int, stop: int, samples: int,
                  units: int) -> torch.Tensor:
        """Rows ``start:stop`` of the stack ``x`` as ``(rows, samples, units)``.

        >>> g = Group([0], [], 0, [], (1, 1, 6), torch.float32, None, None, None, [(2, 2)])
        >>> g.unit_rows(torch.arange(6.0).view(1, 1, 6), 0, 1, 2, 2).tolist()
        [[[0.0, 1.0], [2.0, 3.0]]]
        """
        if self.ragged is None:
            return x[start:stop]
        return x[start:stop, 0, : samples * units].view(stop - start, samples, units)


@dataclass(eq=False)
class Plan:
    """The groups of a sampled step and the layout of its packed record.

    >>> make_plan([], [], sat={}, weights=(), dev=torch.device("cpu")).layout.size
    3
    """

    groups: list[Group]
    layout: Layout
    spans: list[tuple[int, int]]  # per group: where its block starts, where its dead counts go
    weights_first: int


def make_plan(
    acts: Sequence[tuple[int, torch.Tensor]],
    grads: Sequence[tuple[int, torch.Tensor]],
    *,
    sat: dict[int, tuple[float, float]],
    relu: frozenset[int] | set[int] = frozenset(),
    weights: Sequence[tuple[int, int, int, bool]],
    dev: torch.device,
    has_delta: bool = True,
) -> Plan:
    """Group the step's views by ``(shape, dtype)`` and lay out the packed record.

    Args:
        acts: ``(row, view)`` activation views.
        grads: ``(row, view)`` gradient views (at the weighted layer's output).
        sat: ``row -> (centre, half_width)`` for the saturating activations.
        relu: rows with a rectifier (only their dead units are counted).
        weights: ``(row or -1, numel, sample numel, has gradient)`` per monitored weight.
        dev: device of the stacks.
        has_delta: whether the update norms are recorded (a snapshot was taken).

    Returns:
        The :class:`Plan`; packed order: the blocks of the groups (each followed by the dead
        unit counts of its rectifier rows), ``[|w|..., |dw|..., |g|...]``, input mean/std, loss.

    Two activation views of one shape share one stack (one set of reductions for both):

    >>> plan = make_plan([(0, torch.ones(4, 3)), (1, torch.ones(4, 3))], [], sat={},
    ...                  weights=(), dev=torch.device("cpu"))
    >>> len(plan.groups), plan.groups[0].act
    (1, [0, 1])
    """
    keyed: dict[Any, tuple[list[int], list[int]]] = {}
    for i, (_, v) in enumerate(acts):
        keyed.setdefault((tuple(v.shape), v.dtype), ([], []))[0].append(i)
    for i, (_, v) in enumerate(grads):
        keyed.setdefault((tuple(v.shape), v.dtype), ([], []))[1].append(i)
    keyed = _merge_small(keyed)
    shape_of = {("a", i): tuple(v.shape) for i, (_, v) in enumerate(acts)}
    shape_of.update({("g", i): tuple(v.shape) for i, (_, v) in enumerate(grads)})
    b = LayoutBuilder()
    pos = 0
    groups: list[Group] = []
    spans: list[tuple[int, int]] = []
    for (shape, dtype), (ai, gi) in keyed.items():
        # saturating rows lead, then rectifiers (those that are both in the middle), each
        # sorted by shape so that rectifiers of one shape are contiguous
        rank = {i: (0 if acts[i][0] not in relu else 1) if acts[i][0] in sat
                else (2 if acts[i][0] in relu else 3) for i in ai}
        ai.sort(key=lambda i: (rank[i], shape_of[("a", i)]))
        n_sat = sum(rank[i] < 2 for i in ai)
        r0 = sum(rank[i] == 0 for i in ai)
        r1 = r0 + sum(rank[i] in (1, 2) for i in ai)
        dims = [shape_of[("a", i)] for i in ai] + [shape_of[("g", i)] for i in gi]
        ragged = None if shape is not None else [(d[0], d[1]) for d in dims]
        width = max(d[0] * d[1] for d in dims)
        full = (len(dims), shape[0], shape[1]) if shape is not None else (len(dims), 1, width)
        runs: list[tuple[int, int, int, int]] = []
        for j in range(r0, r1):
            if runs and dims[runs[-1][0]] == dims[j]:
                runs[-1] = (runs[-1][0], j + 1, dims[j][0], dims[j][1])
            else:
                runs.append((j, j + 1, dims[j][0], dims[j][1]))
        saturation = None
        pads = [width - d[0] * d[1] for d in dims]
        sat_pad = [0] * len(ai)
        if n_sat:
            params = [sat[acts[i][0]] for i in ai[:n_sat]]
            p = torch.tensor(params, dtype=torch.float32, device=dev).to(dtype)
            saturation = (p[:, 0].view(-1, 1, 1), p[:, 1].view(-1, 1, 1))
            sat_pad[:n_sat] = [pad if abs(c) > h else 0  # a padded 0 counted as saturated
                               for pad, (c, h) in zip(pads, params, strict=False)]
        keep = math.prod(full) * torch.empty((), dtype=dtype).element_size() <= WORKSPACE_BYTES
        buf = (torch.zeros if ragged else torch.empty)(full, dtype=dtype, device=dev) \
            if keep else None
        groups.append(Group(ai, gi, n_sat, runs, full, dtype, saturation, buf,
                            torch.empty_like(buf) if buf is not None else None, ragged))
        start = pos
        pos += b.block(pos, act=[(acts[i][0], d[0] * d[1], d[1], sp)
                                 for i, d, sp in zip(ai, dims, sat_pad, strict=False)],
                       grad=[(grads[i][0], d[0] * d[1])
                             for i, d in zip(gi, dims[len(ai):], strict=True)], n_sat=n_sat)
        spans.append((start, pos))
        if r1 > r0:
            b.dead([acts[i][0] for i in ai[r0:r1]], pos)
            pos += r1 - r0
    weights_first = pos
    rows = [w[0] for w in weights]
    has_grad = [w[3] for w in weights]
    b.weights(rows, [w[1] for w in weights], [w[2] for w in weights],
              has_delta=has_delta, has_grad=has_grad, first=pos)
    pos += len(rows) * (2 if has_delta else 1) + sum(has_grad)
    return Plan(groups, b.build(size=pos + 3), spans, weights_first)


def _merge_small(keyed: dict[Any, tuple[list[int], list[int]]]
                 ) -> dict[Any, tuple[list[int], list[int]]]:
    """One ragged group per dtype (key ``(None, dtype)``) when the zero padding is cheap: at
    most a quarter of the data or 256k entries; otherwise the exact-shape groups."""
    by_dtype: dict[torch.dtype, list[Any]] = {}
    for key in keyed:
        by_dtype.setdefault(key[1], []).append(key)
    out: dict[Any, tuple[list[int], list[int]]] = {}
    for dtype, keys in by_dtype.items():
        sizes = [(math.prod(k[0]), len(keyed[k][0]) + len(keyed[k][1])) for k in keys]
        actual = sum(n * c for n, c in sizes)
        padded = max(n for n, _ in sizes) * sum(c for _, c in sizes)
        if len(keys) > 1 and padded - actual <= max(actual // 4, 2**18):
            out[(None, dtype)] = ([i for k in keys for i in keyed[k][0]],
                                  [i for k in keys for i in keyed[k][1]])
        else:
            out.update({k: keyed[k] for k in keys})
    return out


class WeightSamples:
    """The :func:`~steadygrad.diagnostics.stats.weight_sample` of each monitored weight, with
    two zero-padded ``(weights, sample)`` copies: before and after the optimizer step.

    The update/weight ratio is ``‖w_after - w_before‖ / ‖w_after‖`` on the sample (CS231n's
    ratio of update to value magnitudes); zero padding leaves every row norm unchanged, so each
    norm is one row-wise op for all weights. When a sampled step is directly followed by
    another (``every=1``), the "after" copy of the first is the "before" of the second: the
    buffers are swapped instead of copied.

    >>> w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    >>> ws = WeightSamples(); ws.snapshot([w], fresh=False)
    >>> with torch.no_grad():
    ...     _ = w.sub_(torch.tensor([0.0, 1.0]))
    >>> rec = torch.zeros(3); w.grad = torch.tensor([0.0, 2.0])
    >>> ws.write(rec, 0, [w.grad]); rec.tolist()  # |w| = sqrt(18), |dw| = 1, |g| = 2
    [4.242640495300293, 1.0, 2.0]
    """

    def __init__(self) -> None:
        self.weights: list[torch.Tensor] = []
        self.views: list[torch.Tensor] = []
        self.numel: list[int] = []
        self.taken = False  # a "before" copy exists for the next write
        self._key: Any = None
        self._bufs: list[torch.Tensor] = []
        self._rows: list[list[torch.Tensor]] = []

    def snapshot(self, weights: list[torch.Tensor], fresh: bool) -> None:
        """Copy the samples of ``weights`` as the "before" state (``fresh``: the last
        :meth:`write` saw these very weights, so its copy is reused)."""
        key = [w.data_ptr() for w in weights]
        with torch.no_grad():
            if key != self._key or len(weights) != len(self.weights):  # a weight was replaced
                self._key, self.weights = key, weights
                self.views = views = [weight_sample(w) for w in weights]
                self.numel = [w.numel() for w in weights]
                width = max((v.numel() for v in views), default=0)
                self._bufs = [(views[0] if views else torch.zeros(0)).new_zeros(
                    len(views), width) for _ in range(2)]
                self._rows = [[b[i, : v.numel()] for i, v in enumerate(views)]
                              for b in self._bufs]
                fresh = False
            if fresh and self.taken:
                self._bufs.reverse()
                self._rows.reverse()
            elif self.views:
                torch._foreach_copy_(self._rows[0], self.views)
        self.taken = True

    def write(self, rec: torch.Tensor, first: int, grads: list[torch.Tensor | None]) -> None:
        """Write ``[‖w‖..., ‖Δw‖... (if a snapshot was taken), ‖g‖... (present gradients)]``
        into ``rec`` from position ``first``."""
        n = len(self.views)
        if not n:
            return
        before, now = self._bufs
        torch._foreach_copy_(self._rows[1], self.views)
        rows = [now, before.sub_(now)] if self.taken else [now]
        present = [g for g in grads if g is not None]
        norms = norms_of(rows, present)
        rec[first:first + norms.numel()].copy_(norms)
