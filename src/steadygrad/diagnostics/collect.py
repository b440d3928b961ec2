"""The plan of one sampled step's reductions, and the buffers it reuses (used by the monitor).

On a sampled step the monitor holds, per report row, a 2-D ``(samples, units)`` view of the
activation and of the gradient at the weighted layer's output. :func:`make_plan` groups those
views by shape, once per network/batch shape (or puts them all in one zero-padded stack when
the padding is cheap, so that a small net of differently sized layers pays for one stack, not
one per shape): each group is copied into one stack (activations first, saturating ones
leading) and reduced by
:func:`~steadygrad.diagnostics.stats.stack_stats`; the plan also fixes the
:class:`~steadygrad.diagnostics.checks.Layout` of the packed record.

Batched reductions: a sampled step only *stages* its numbers: it copies the views into one
slot of its group's ``(slots, layers, samples, units)`` buffer, and the weight samples into a
slot of :class:`WeightSamples` (its gradient norms are taken at once, since the gradients are
zeroed afterwards). The reductions then run on all staged slots together, when the slots are
full and whenever the series is read: one sampled step of a small net costs a few copies
instead of a few dozen tensor ops, whose fixed per-op cost dominates at that size. A plan has
:func:`batch_slots` slots: up to :data:`MAX_SLOTS`, as many as fit in :data:`BATCH_BYTES`;
one for a stack too large to keep. Buffers up to :data:`WORKSPACE_BYTES` are kept between
sampled steps, so a step allocates no large temporary (on CPU, a fresh multi-hundred-kilobyte
block costs page faults on first touch).

Example:
    >>> import torch
    >>> views = [(0, torch.ones(4, 3)), (1, torch.ones(4, 3))]
    >>> plan = make_plan(views, views[:1], sat={}, relu={1}, weights=(),
    ...                  dev=torch.device("cpu"))
    >>> [(g.act, g.grad, g.relu, g.shape) for g in plan.groups]  # the rectifier row first
    [([1, 0], [0], [(0, 1, 4, 3)], (3, 4, 3))]
    >>> plan.slots, plan.groups[0].buf.shape  # eight steps staged before one reduction
    (8, torch.Size([8, 3, 4, 3]))
    >>> plan.layout.size  # 3 layers x 3 + 2 nonzero + 1 dead count + input (2) + loss
    15
    >>> small = make_plan([(0, torch.ones(4, 3)), (1, torch.ones(4, 2))], [], sat={},
    ...                   weights=(), dev=torch.device("cpu"))
    >>> [(g.shape, g.ragged) for g in small.groups]  # one zero-padded stack, by shape
    [((2, 1, 12), [(4, 2), (4, 3)])]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from steadygrad.diagnostics.checks import Layout, LayoutBuilder
from steadygrad.diagnostics.stats import norms_of, weight_sample

__all__ = ["BATCH_BYTES", "MAX_SLOTS", "WORKSPACE_BYTES", "Group", "Plan", "WeightSamples",
           "batch_slots", "make_plan"]

WORKSPACE_BYTES = 32 * 2**20
"""Largest stack (bytes, the scratch copy doubles it) whose buffers are kept between steps."""

MAX_SLOTS = 8
"""Most sampled steps staged before their reductions run (see :func:`batch_slots`)."""

BATCH_BYTES = 8 * 2**20
"""Memory the staged slots of a plan may take (stacks, scratch and weight samples)."""


def batch_slots(per_step: int, keep: bool = True) -> int:
    """How many sampled steps a plan stages before reducing them: :data:`MAX_SLOTS` when
    that many of its ``per_step`` bytes fit in :data:`BATCH_BYTES`, fewer down to one, and
    one when a stack is too large to keep (``keep`` False).

    >>> batch_slots(450_000), batch_slots(3 * 2**20), batch_slots(2**30), batch_slots(10, False)
    (8, 2, 1, 1)
    """
    if not keep:
        return 1
    return max(1, min(MAX_SLOTS, BATCH_BYTES // max(per_step, 1)))


@dataclass(eq=False)
class Group:
    """One stack: positions of its activation and gradient views, buffers, saturation params.

    ``buf`` holds ``slots`` stacks (one per staged sampled step), ``scratch`` the temporaries
    of their reductions; both None when a stack is too large to keep (then each step gets a
    fresh one-slot buffer). A *ragged* group (views of different shapes) is a zero-padded
    ``(layers, 1, width)`` stack whose row ``i`` starts with the flattened view ``i``; the
    zeros change no sum or norm (the host corrects the saturated count for the padding).

    >>> g = Group([0], [], 0, [], (1, 2, 2), torch.float32, None, torch.zeros(2, 1, 2, 2), None)
    >>> g.stage([torch.ones(2, 2)], 1); g.staged(2)[0].sum().item()  # slot 1 holds the view
    4.0
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
    act_rows: list[int] = field(default_factory=list)  # the report row of each activation
    _dest: dict[int, list[torch.Tensor]] = field(default_factory=dict)
    _fresh: torch.Tensor | None = None

    def stage(self, views: Sequence[torch.Tensor], slot: int) -> None:
        """Copy ``views`` into stack ``slot`` (into a fresh one-slot buffer when none is kept)."""
        if self.buf is None:
            self._fresh = (torch.zeros if self.ragged else torch.empty)(
                (1, *self.shape), dtype=self.dtype, device=views[0].device)
        buf = self.buf if self.buf is not None else self._fresh
        assert buf is not None
        if self.ragged is None:
            torch.cat(list(views), out=buf[slot].view(-1, self.shape[2]))
            return
        dest = self._dest.get(slot) if self.buf is not None else None
        if dest is None:
            dest = [buf[slot, i, 0, : s * u].view(s, u) for i, (s, u) in enumerate(self.ragged)]
            if self.buf is not None:
                self._dest[slot] = dest
        torch._foreach_copy_(dest, list(views))

    def staged(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(stacks, scratch)``: the first ``n`` staged stacks, ``(n, *shape)``."""
        if self.buf is None:
            x, self._fresh = self._fresh, None
            assert x is not None and n == 1
            return x, None
        return self.buf[:n], self.scratch

    def unit_rows(self, x: torch.Tensor, start: int, stop: int, samples: int,
                  units: int) -> torch.Tensor:
        """Rows ``start:stop`` of the stack ``x`` as ``(rows, samples, units)`` (with the
        leading slot dimension of a batch of stacks, if ``x`` has one).

        >>> g = Group([0], [], 0, [], (1, 1, 6), torch.float32, None, None, None, [(2, 2)])
        >>> g.unit_rows(torch.arange(6.0).view(1, 1, 6), 0, 1, 2, 2).tolist()
        [[[0.0, 1.0], [2.0, 3.0]]]
        >>> g.unit_rows(torch.arange(6.0).view(1, 1, 1, 6), 0, 1, 2, 2).shape
        torch.Size([1, 1, 2, 2])
        """
        if self.ragged is None:
            return x[..., start:stop, :, :]
        return x[..., start:stop, 0, : samples * units].unflatten(-1, (samples, units))


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
    slots: int = 1  # sampled steps staged before the reductions run
    has_delta: bool = True
    n_grads: int = 0  # weight gradient norms per step


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
    per_step, keep = 0, True  # bytes a staged step takes; whether every stack may be kept
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
        size = math.prod(full) * torch.empty((), dtype=dtype).element_size()
        per_step += size + size // len(dims) * len(ai)  # the stack, its scratch
        keep = keep and size <= WORKSPACE_BYTES
        groups.append(Group(ai, gi, n_sat, runs, full, dtype, saturation, None, None, ragged,
                            [acts[i][0] for i in ai]))
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
    per_step += 8 * len(rows) * max((w[2] for w in weights), default=0)  # two float32 rows
    slots = batch_slots(per_step, keep)
    if keep:
        for g in groups:
            g.buf = (torch.zeros if g.ragged else torch.empty)(
                (slots, *g.shape), dtype=g.dtype, device=dev)
            cells = math.prod(g.shape[1:])
            g.scratch = torch.empty(slots * len(g.act) * cells, dtype=g.dtype, device=dev) \
                if g.act else None
    return Plan(groups, b.build(size=pos + 3), spans, weights_first, slots, has_delta,
                sum(has_grad))


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
    """The :func:`~steadygrad.diagnostics.stats.weight_sample` of each monitored weight: a
    zero-padded ``(weights, sample)`` copy taken before the optimizer step, and per staged
    sampled step (*slot*) the copy after it with the update, ``(slots, 2, weights, sample)``.

    The update/weight ratio is ``‖w_after - w_before‖ / ‖w_after‖`` on the sample (CS231n's
    ratio of update to value magnitudes); zero padding leaves every row norm unchanged, so the
    norms of all staged steps are one row-wise op (:meth:`reduce`). The gradient norms are
    taken when a step is staged (:meth:`stage`: the gradients are gone afterwards). When a
    sampled step is directly followed by another (the dense start), the "after" copy of the
    first is the "before" of the second.

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
        self.taken = False  # a "before" copy exists for the next staged step
        self._key: Any = None
        self._before = torch.zeros(0)
        self._before_rows: list[torch.Tensor] = []
        self._after: torch.Tensor | None = None  # (slots, 2, weights, sample): after, update
        self._after_rows: list[list[torch.Tensor]] = []
        self._grads = torch.zeros(0, 0, dtype=torch.float64)  # (slots, weights) norms
        self._last = -1  # the slot of the last staged step

    def snapshot(self, weights: list[torch.Tensor], fresh: bool,
                 flush: Callable[[], None] | None = None) -> None:
        """Copy the samples of ``weights`` as the "before" state (``fresh``: the last staged
        step saw these very weights, so its "after" copy is reused). When a weight was
        replaced, the buffers are rebuilt: ``flush`` is called first, to reduce the steps
        still staged in the old ones."""
        key = [w.data_ptr() for w in weights]
        with torch.no_grad():
            if key != self._key or len(weights) != len(self.weights):  # a weight was replaced
                if flush is not None:
                    flush()
                self._key, self.weights = key, weights
                self.views = views = [weight_sample(w) for w in weights]
                self.numel = [w.numel() for w in weights]
                width = max((v.numel() for v in views), default=0)
                like = views[0] if views else torch.zeros(0)
                self._before = like.new_zeros(len(views), width)
                self._before_rows = [self._before[i, : v.numel()] for i, v in enumerate(views)]
                self._after, self._after_rows, self._last = None, [], -1
                fresh = False
            if fresh and self.taken and self._after is not None and self._last >= 0:
                self._before.copy_(self._after[self._last, 0])
            elif self.views:
                torch._foreach_copy_(self._before_rows, self.views)
        self.taken = True

    def stage(self, slot: int, grads: list[torch.Tensor | None], slots: int = 1) -> None:
        """Copy the samples after the update into ``slot`` (of ``slots``), with the update
        when a snapshot was taken, and the norms of the present ``grads``."""
        n = len(self.views)
        if not n:
            return
        after = self._after
        if after is None or after.shape[0] < slots:
            after = self._after = self._before.new_zeros(slots, 2, *self._before.shape)
            self._after_rows = [[after[k, 0, i, : v.numel()] for i, v in enumerate(self.views)]
                                for k in range(slots)]
            self._grads = torch.zeros(slots, n, dtype=torch.float64, device=after.device)
        torch._foreach_copy_(self._after_rows[slot], self.views)
        if self.taken:
            torch.sub(self._before, after[slot, 0], out=after[slot, 1])
        present = [g for g in grads if g is not None]
        if present:
            self._grads[slot, : len(present)].copy_(norms_of([], present))
        self._last = slot

    def reduce(self, out: torch.Tensor, n: int, has_delta: bool, n_grads: int) -> None:
        """Write ``[‖w‖..., ‖Δw‖... (if has_delta), ‖g‖... (n_grads)]`` of the first ``n``
        staged steps into the rows of ``out`` (``(n, columns)``)."""
        if not self.views or self._after is None:
            return
        k = len(self.views)
        rows = self._after[:n] if has_delta else self._after[:n, :1]
        width = self._before.shape[1]
        norms = norms_of([rows.reshape(n * rows.shape[1] * k, width)], []).view(n, -1)
        out[:, : norms.shape[1]].copy_(norms)
        if n_grads:
            cols = k * (2 if has_delta else 1)
            out[:, cols:cols + n_grads].copy_(self._grads[:n, :n_grads])

    def write(self, rec: torch.Tensor, first: int, grads: list[torch.Tensor | None]) -> None:
        """Stage one step and write its norms into ``rec`` from position ``first`` (the
        order of :meth:`reduce`)."""
        has_delta = self.taken
        self.stage(0, grads)
        m = sum(g is not None for g in grads)
        cols = len(self.views) * (2 if has_delta else 1) + m
        self.reduce(rec[first:first + cols].view(1, -1), 1, has_delta, m)
