"""What happens on a sampled step of :class:`~steadygrad.diagnostics.monitor.GradientMonitor`:
forward hooks catch the layers' outputs (and ``retain_grad`` their gradients), and the step
after the backward pass reduces them, with the weight samples, into one preallocated row of
the on-device table (:class:`~steadygrad.diagnostics.checks.Records`).

The mixin holds no state of its own: the monitor's ``__init__`` creates the attributes it
uses (listed below as annotations). A sampled step copies the caught activations and
gradients into one slot of a reused stack per group of same-shape layers
(:mod:`steadygrad.diagnostics.collect`); the statistics of the whole network, a couple of
dozen tensor ops independent of depth, run on all staged slots at once
(:func:`~steadygrad.diagnostics.stats.stack_stats`) when the slots are full or the series is
read (:meth:`SampledStep._reduce_staged`).

Example:
    >>> import torch
    >>> from steadygrad.diagnostics.monitor import GradientMonitor
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())
    >>> mon = GradientMonitor(net, every=1).attach()
    >>> net(torch.randn(4, 2)).sum().backward()
    >>> sorted(mon._outs)  # the hooks caught the Linear's and the ReLU's outputs
    [0, 1]
    >>> mon.step(); mon.detach(); mon.series().layers
    ['0']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from steadygrad.diagnostics.checks import Records
from steadygrad.diagnostics.collect import Plan, WeightSamples, make_plan
from steadygrad.diagnostics.hooks import LayerRow, plan_rows
from steadygrad.diagnostics.stats import (
    histogram_range,
    saturation_params,
    stack_stats,
    unit_view,
)
from steadygrad.diagnostics.thresholds import Thresholds
from steadygrad.diagnostics.tracking import LossAndProbes
from steadygrad.nn.activations import RELU_FAMILY, saturation_bounds

__all__ = ["SampledStep"]

_MAX_HISTOGRAMS = 8


class SampledStep(LossAndProbes):
    """Hooks and the collection of one sampled step (a mixin of the monitor, on top of the
    loss tracking and probes of :class:`~steadygrad.diagnostics.tracking.LossAndProbes`)."""

    every: int
    bins: int
    thresholds: Thresholds
    _leaves: list[tuple[str, nn.Module]]
    _weighted: list[int]
    _rows: list[LayerRow] | None
    _planned_hooks: list[tuple[nn.Module, Callable[..., None]]]
    _act_from: dict[int, int]
    _order: list[int]
    _seen: set[int]
    _outs: dict[int, torch.Tensor]
    _inputs: dict[int, torch.Tensor]
    _snap_leaves: list[int]
    _samples: WeightSamples
    _row_bounds: list[tuple[float, float] | None]
    _sat: dict[int, tuple[float, float]]
    _relu: set[int]
    _plans: dict[Any, Plan]
    _rings: dict[Any, torch.Tensor]
    _staged: list[Any] | None  # [plan, first table row, input stats, losses] of staged steps
    _records: Records
    _hists: dict[int, torch.Tensor]

    def _install_hooks(self) -> None:
        self._install_probes()
        if self._rows is not None and self._planned_hooks:  # built once for the plan
            self._handles.extend(m.register_forward_hook(h) for m, h in self._planned_hooks)
            return
        if self._rows is None:
            wanted = set(range(len(self._leaves)))
            input_leaves = set(self._weighted)
        else:
            wanted = set()
            for r in self._rows:
                wanted.update(i for i in (r.weight_leaf, r.act_leaf) if i is not None)
            first = next((r.weight_leaf for r in self._rows if r.weight_leaf is not None), None)
            input_leaves = {first} if first is not None else set()
            wanted -= set(self._act_from)  # read as the next weighted layer's input instead
            input_leaves |= set(self._act_from.values())
        hooks = [(self._leaves[i][1], self._make_hook(i, i in self._weighted, i in input_leaves))
                 for i in sorted(wanted)]
        if self._rows is not None:
            self._planned_hooks = hooks
        self._handles.extend(m.register_forward_hook(h) for m, h in hooks)

    def _make_hook(self, leaf: int, weighted: bool, keep_input: bool) -> Callable[..., None]:
        outs, inputs = self._outs, self._inputs
        discovering = self._rows is None

        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            out = output
            if not isinstance(out, torch.Tensor):
                if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
                    out = out[0]
                else:
                    return
            if not out.is_floating_point():
                return
            if discovering and leaf not in self._seen:
                self._seen.add(leaf)
                self._order.append(leaf)
            if leaf in outs or not torch.is_grad_enabled():
                return  # called again in this forward (keep the first call), or not training
            outs[leaf] = out
            if weighted:
                if keep_input and args and isinstance(args[0], torch.Tensor):
                    inputs[leaf] = args[0]
                if out.requires_grad:
                    out.retain_grad()  # C++ hook: cheaper than a Python tensor hook

        return hook

    def _weight_grads(self, weights: list[torch.Tensor]) -> list[torch.Tensor | None]:
        """What the gradient norms of the monitored ``weights`` are taken of: their ``.grad``
        (a subclass may hand over the norms themselves: the norm of a 0-dim norm is itself)."""
        return [w.grad for w in weights]

    def _remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # ------------------------------------------------------------------ collection
    @staticmethod
    def _bounds(r: LayerRow) -> tuple[float, float] | None:
        return saturation_bounds(r.activation) if r.activation else None

    def _collect(self, loss: torch.Tensor | float | None) -> None:
        if self._rows is None:
            ordered = [self._leaves[i] for i in self._order]
            self._rows = plan_rows(ordered, self._order)
            self._row_bounds = [self._bounds(r) for r in self._rows]
            margin = self.thresholds.saturation_margin
            self._relu = {r.index for r in self._rows if r.activation in RELU_FAMILY}
            self._sat = {r.index: saturation_params(bd, margin)
                         for r, bd in zip(self._rows, self._row_bounds, strict=True)
                         if bd is not None}
            self._act_from = self._activations_as_inputs(self._rows)
            self._remove_hooks()  # discovery hooks on every leaf; re-armed with the plan
        with torch.no_grad():
            self._collect_rows(self._rows, loss)
            self._collect_probes()
        self._outs.clear()
        self._inputs.clear()

    def _activations_as_inputs(self, rows: list[LayerRow]) -> dict[int, int]:
        """``act leaf -> weighted leaf`` where the discovery step showed the activation's
        output to be the very tensor the next weighted layer received: the plan then hooks
        only the weighted layer and reads the activation as its input (one Python hook per
        row instead of two). An activation followed by dropout, a pooling or a residual sum is
        still hooked itself."""
        weighted = {r.weight_leaf for r in rows if r.weight_leaf is not None}
        by_input = {id(x): leaf for leaf, x in self._inputs.items() if leaf in weighted}
        out: dict[int, int] = {}
        for r in rows:
            a = r.act_leaf
            t = self._outs.get(a) if a is not None and a not in weighted else None
            w = by_input.get(id(t)) if t is not None else None
            if a is not None and w is not None and self._inputs[w] is t:
                out[a] = w
        return out

    def _collect_rows(self, rows: list[LayerRow], loss: torch.Tensor | float | None) -> None:
        check = len(self._records)
        sparse = check & (check - 1) == 0 or check % 64 == 0  # histograms, input stats
        outs = self._outs
        acts: list[tuple[int, torch.Tensor]] = []
        grads: list[tuple[int, torch.Tensor]] = []
        act_from, inputs = self._act_from, self._inputs
        for r in rows:
            t = outs.get(r.act_leaf) if r.act_leaf is not None else None
            if t is None and r.act_leaf in act_from:
                t = inputs.get(act_from[r.act_leaf])
            z = outs.get(r.weight_leaf) if r.weight_leaf is not None else None
            if t is None:
                t = z
            if t is not None:
                acts.append((r.index, unit_view(t, r.unit_dim)))
            g = z.grad if z is not None else None
            if g is not None:
                grads.append((r.index, unit_view(g, r.unit_dim)))
        dev = next(iter(outs.values())).device if outs else torch.device("cpu")
        samples = self._samples
        wgrads = self._weight_grads(samples.weights)
        has_delta = samples.taken
        key = (tuple((i, v.shape, v.dtype) for i, v in acts),
               tuple((i, v.shape, v.dtype) for i, v in grads),
               tuple(g is not None for g in wgrads), has_delta, dev)
        plan = self._plans.get(key)
        if plan is None:
            by_leaf = {r.weight_leaf: r.index for r in rows}
            weights = [(by_leaf.get(leaf, -1), n, v.numel(), g is not None) for leaf, n, v, g
                       in zip(self._snap_leaves, samples.numel, samples.views, wgrads,
                              strict=True)]
            plan = self._plans[key] = make_plan(acts, grads, sat=self._sat, relu=self._relu,
                                                weights=weights, dev=dev,
                                                has_delta=has_delta)
        staged = self._staged
        if staged is not None and staged[0] is not plan:  # the batch shape changed
            self._reduce_staged()
            staged = None
        if staged is None:
            staged = self._staged = [plan, self._records.filled(plan.layout), [], []]
        slot = len(staged[3])
        self._records.add(self._step, plan.layout, dev)
        hists: dict[int, torch.Tensor] = {}
        for group in plan.groups:
            group.stage([acts[i][1] for i in group.act] + [grads[i][1] for i in group.grad],
                        slot)
            if sparse:
                for i in group.act:
                    row, v = acts[i]
                    lo, hi = histogram_range(self._row_bounds[row])
                    hists[row] = torch.histc(v.float().clamp(lo, hi), self.bins, lo, hi)
        samples.stage(slot, wgrads, plan.slots)
        staged[2].append(self._input_stats(rows, dev) if sparse else None)
        staged[3].append(loss.detach() if isinstance(loss, torch.Tensor) else loss)
        if hists and len(hists) == len(rows):
            self._keep_histogram(check, torch.stack([hists[r.index] for r in rows]))
        if slot + 1 == plan.slots:
            self._reduce_staged()

    def _reduce_staged(self) -> None:
        """Reduce the staged sampled steps (:mod:`~steadygrad.diagnostics.collect`) into their
        rows of the records: one :func:`~steadygrad.diagnostics.stats.stack_stats` per group,
        the dead-unit counts, the weight norms, the input statistics and the losses, for all
        of them at once."""
        staged, self._staged = self._staged, None
        if staged is None:
            return
        plan, start, inputs, losses = staged
        n = len(losses)
        with torch.no_grad():
            table = self._records.rows(plan.layout, start, start + n)
            for group, (first, dead) in zip(plan.groups, plan.spans, strict=True):
                x, scratch = group.staged(n)
                stack_stats(x, len(group.act), group.saturation, scratch,
                            out=table[:, first:dead], shapes=group.ragged)
                d = dead
                for a, b, m, u in group.relu:  # rectifier units silent over the last checks
                    maxima = torch.amax(group.unit_rows(x, a, b, m, u), 2)
                    table[:, d:d + b - a].copy_(
                        self._silent_units((tuple(group.act_rows[a:b]), u), maxima))
                    d += b - a
            self._samples.reduce(table[:, plan.weights_first:], n, plan.has_delta,
                                 plan.n_grads)
            _write_tail(table[:, plan.layout.input_col:], inputs, losses)

    def _silent_units(self, key: Any, maxima: torch.Tensor) -> torch.Tensor:
        """Per staged step (``maxima``: ``(steps, rows, units)`` per-unit maxima), how many
        units of each row were never positive over the dead-unit window ending at that step:
        ``persistence`` steps' worth of checks, at least 2; a window not yet full covers the
        checks so far. The maxima of the last window's earlier checks are kept per ``key``
        (the rows and their units; not the batch size: the last batch may be short).

        >>> import torch
        >>> from steadygrad.diagnostics.monitor import GradientMonitor
        >>> mon = GradientMonitor(torch.nn.Linear(1, 1), every=100)  # window: 2 checks
        >>> m = torch.tensor([[[0.0, 1.0]], [[-1.0, 0.0]], [[2.0, 3.0]]])
        >>> mon._silent_units("k", m[:2]).tolist(), mon._silent_units("k", m[2:]).tolist()
        ([[1.0], [1.0]], [[0.0]])
        """
        prev = self._rings.get(key)
        if prev is None:
            window = max(2, math.ceil(self.thresholds.persistence / self.every))
            prev = maxima.new_full((window - 1, *maxima.shape[1:]), -math.inf)
        seen = torch.cat([prev, maxima])
        self._rings[key] = seen[maxima.shape[0]:]
        return seen.unfold(0, prev.shape[0] + 1, 1).amax(-1).le(0).sum(-1, dtype=torch.float64)

    def _keep_histogram(self, check: int, hist: torch.Tensor) -> None:
        self._hists[check] = hist
        if len(self._hists) > 2 * _MAX_HISTOGRAMS:
            keys = sorted(self._hists)
            for k in keys[1:-1:2]:
                del self._hists[k]

    def _input_stats(self, rows: list[LayerRow], dev: torch.device) -> torch.Tensor:
        first = next((r.weight_leaf for r in rows if r.weight_leaf is not None), None)
        x = self._inputs.get(first) if first is not None else None
        if x is None or x.numel() < 2 or x.dim() < 2:
            return torch.full((2,), math.nan, device=dev)
        feats = x.detach().float().reshape(x.shape[0], -1)
        std, mean = torch.std_mean(feats, dim=0, correction=0)
        return torch.stack([mean.abs().mean(), std.mean()]).to(dev)


def _write_tail(tail: torch.Tensor, inputs: list[torch.Tensor | None],
                losses: list[torch.Tensor | float | None]) -> None:
    """Write each staged step's input mean/std (NaN where not measured) and loss (its first
    entry; NaN when None) into the ``(steps, 3)`` ``tail`` of its record row, in a few ops.

    >>> tail = torch.zeros(3, 3, dtype=torch.float64)
    >>> _write_tail(tail, [None, torch.tensor([0.5, 2.0]), None], [1.0, None, 3.0])
    >>> tail.tolist()
    [[nan, nan, 1.0], [0.5, 2.0, nan], [nan, nan, 3.0]]
    """
    if all(t is None for t in inputs):
        tail[:, :2].fill_(math.nan)
    else:
        gap = tail.new_full((2,), math.nan)
        tail[:, :2].copy_(torch.stack([gap if t is None else t.to(tail) for t in inputs]))
    scalars = [v for v in losses if isinstance(v, torch.Tensor) and not v.dim()
               and v.device == tail.device]
    if len(scalars) == len(losses) and len({v.dtype for v in scalars}) == 1:
        tail[:, 2].copy_(torch.stack(scalars))
    elif tail.is_cpu and not any(isinstance(v, torch.Tensor) for v in losses):
        tail[:, 2].copy_(torch.tensor([math.nan if v is None else float(v) for v in losses],
                                      dtype=tail.dtype))
    else:
        for i, v in enumerate(losses):
            if isinstance(v, torch.Tensor):
                tail[i, 2:].copy_(v.reshape(-1)[:1])
            else:
                tail[i, 2:].fill_(math.nan if v is None else float(v))
