"""GradientMonitor: per-layer gradient-health statistics for any ``torch.nn.Module``.

Usage around your own loop (call :meth:`GradientMonitor.step` once after each optimizer step,
before ``zero_grad``, passing the loss lets the rules tell a harmless symptom from a harmful
one)::

    with GradientMonitor(model, every=10) as mon:
        for x, y in loader:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            mon.step(loss)
    print(mon.report())

Cost model: hooks are attached only for sampled steps. The :meth:`~GradientMonitor.step` call
*before* a sampled step arms the monitor (installs the hooks and snapshots the weights); the
step after it collects a handful of fused reductions for the whole network
(:mod:`steadygrad.diagnostics.stats`), keeps them on the device, and removes the hooks. No
host synchronization happens until :meth:`~GradientMonitor.report`.

Example:
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> x, y = torch.randn(32, 4), torch.randn(32, 1)
    >>> with GradientMonitor(net, every=2) as mon:
    ...     for _ in range(6):
    ...         loss = ((net(x) - y) ** 2).mean()
    ...         opt.zero_grad(); loss.backward(); opt.step()
    ...         mon.step(loss)
    >>> rep = mon.report()
    >>> rep.series.steps, rep.series.layers
    ([0, 2, 4], ['0', '2'])
    >>> len(net._forward_hooks), len(net[0]._forward_hooks)  # hooks are gone
    (0, 0)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from steadygrad.diagnostics.checks import Check, decode
from steadygrad.diagnostics.hooks import LayerRow, is_weighted, leaf_modules, plan_rows
from steadygrad.diagnostics.rules import Thresholds, evaluate
from steadygrad.diagnostics.series import HealthSeries, LayerMeta
from steadygrad.diagnostics.stats import (
    SampleGroups,
    activation_stats,
    grad_stats,
    histogram_range,
    sample_groups,
    saturation_params,
    snapshot,
    unit_view,
    weight_stats,
)
from steadygrad.errors import ConfigError
from steadygrad.nn.activations import RELU_FAMILY, saturation_bounds

if TYPE_CHECKING:
    from steadygrad.diagnostics.report import HealthReport

__all__ = ["DEFAULT_EVERY", "GradientMonitor"]

DEFAULT_EVERY = 20
"""Default sampling period (steps). Measured overhead: see ``docs/health-report.md``."""

_MAX_HISTOGRAMS = 8


def _stack(ts: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack`` of same-shape tensors via one ``cat`` (no per-tensor unsqueeze)."""
    return torch.cat(ts).view(len(ts), *ts[0].shape) if len(ts) > 1 else ts[0].unsqueeze(0)


class GradientMonitor:
    """Records per-layer activation, gradient and update statistics on sampled steps.

    Args:
        model: any ``torch.nn.Module``.
        every: sample one step in ``every`` (step 0 is always sampled).
        thresholds: rule thresholds (:class:`~steadygrad.diagnostics.rules.Thresholds`).
        bins: bins of the per-layer activation histograms.

    Raises:
        ConfigError: ``model`` is not a module, or ``every``/``bins`` are not positive ints.

    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> mon = GradientMonitor(net, every=2).attach()
    >>> mon.armed  # step 0 is sampled
    True
    >>> net(torch.randn(4, 2)).sum().backward(); mon.step()
    >>> mon.armed, mon.steps_seen  # step 1 is not
    (False, 1)
    >>> mon.detach(); [f.kind for f in mon.findings()]
    []
    """

    def __init__(
        self,
        model: nn.Module,
        every: int = DEFAULT_EVERY,
        *,
        thresholds: Thresholds | None = None,
        bins: int = 40,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
        for name, val, lo in (("every", every, 1), ("bins", bins, 2)):
            if isinstance(val, bool) or not isinstance(val, int) or val < lo:
                raise ConfigError(name, val, f"an int >= {lo}")
        if thresholds is not None and not isinstance(thresholds, Thresholds):
            raise ConfigError("thresholds", thresholds, "a steadygrad Thresholds instance")
        self.model = model
        self.every = every
        self.thresholds = thresholds or Thresholds()
        self.bins = bins
        self._leaves = leaf_modules(model)
        self._weighted = [i for i, (_, m) in enumerate(self._leaves) if is_weighted(m)]
        self._rows: list[LayerRow] | None = None
        self._order: list[int] = []
        self._seen: set[int] = set()
        self._handles: list[Any] = []
        self._outs: dict[int, torch.Tensor] = {}
        self._inputs: dict[int, torch.Tensor] = {}
        self._snap_leaves: list[int] = []
        self._snapshot: list[torch.Tensor] | None = None
        self._samples: SampleGroups = []
        self._samples_key: Any = None
        self._snap_weights: list[torch.Tensor] = []
        self._snap_numel: list[int] = []
        self._row_bounds: list[tuple[float, float] | None] = []
        self._step = 0
        self._armed = False
        self._attached = False
        self._checks: list[Check] = []
        self._hists: dict[int, torch.Tensor] = {}
        self._cache: dict[Any, Any] = {}
        self._windows: dict[Any, deque[torch.Tensor]] = {}

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> GradientMonitor:
        self.attach()
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def attach(self) -> GradientMonitor:
        """Start monitoring (arms step 0 if it is sampled); idempotent. Returns ``self``."""
        if not self._attached:
            self._attached = True
            if self._step % self.every == 0:
                self._arm()
        return self

    def detach(self) -> None:
        """Remove every hook and drop references to caught tensors; safe to call twice."""
        self._remove_hooks()
        self._armed = False
        self._attached = False
        self._outs.clear()
        self._inputs.clear()
        self._snapshot = None

    @property
    def armed(self) -> bool:
        """True when the next training step is sampled (hooks are attached for it)."""
        return self._armed

    @property
    def steps_seen(self) -> int:
        """Number of :meth:`step` calls so far."""
        return self._step

    # ------------------------------------------------------------------ per step
    def step(self, loss: torch.Tensor | float | None = None) -> None:
        """Mark the end of one training step (call after ``optimizer.step()``).

        Args:
            loss: the step's loss (tensor or float), recorded on sampled steps only; it gates
                the pathology findings on impaired learning.
        """
        if self._armed:
            self._collect(loss)
        self._step += 1
        if not self._attached:
            return
        if self._step % self.every == 0:
            self._arm()
        elif self._armed:
            self._remove_hooks()
            self._armed = False

    def _arm(self) -> None:
        if not self._handles:
            self._install_hooks()
        leaves = self._weighted if self._rows is None else [
            r.weight_leaf for r in self._rows if r.weight_leaf is not None]
        self._snap_leaves = leaves
        ws = [self._weight(i) for i in leaves]
        key = (tuple(leaves), tuple(w.data_ptr() for w in ws))
        with torch.no_grad():
            if key != self._samples_key:  # views are rebuilt when a weight was replaced
                self._samples = sample_groups([w.detach() for w in ws])
                self._samples_key = key
                self._snap_weights = ws
                self._snap_numel = [w.numel() for w in ws]
            self._snapshot = snapshot(self._samples)
        self._armed = True

    def _weight(self, leaf: int) -> torch.Tensor:
        w = self._leaves[leaf][1].weight
        assert isinstance(w, torch.Tensor)
        return w

    def _install_hooks(self) -> None:
        if self._rows is None:
            wanted = set(range(len(self._leaves)))
            input_leaves = set(self._weighted)
        else:
            wanted = set()
            for r in self._rows:
                wanted.update(i for i in (r.weight_leaf, r.act_leaf) if i is not None)
            first = next((r.weight_leaf for r in self._rows if r.weight_leaf is not None), None)
            input_leaves = {first} if first is not None else set()
        for i in sorted(wanted):
            hook = self._make_hook(i, i in self._weighted, i in input_leaves)
            self._handles.append(self._leaves[i][1].register_forward_hook(hook))

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
            outs[leaf] = out
            if weighted:
                if keep_input and args and isinstance(args[0], torch.Tensor):
                    inputs[leaf] = args[0]
                if out.requires_grad:
                    out.retain_grad()  # C++ hook: cheaper than a Python tensor hook

        return hook

    def _remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # ------------------------------------------------------------------ collection
    def _sat(self, rows: list[LayerRow], dev: torch.device) -> Any:
        key = ("sat", tuple(r.index for r in rows), dev)
        if key not in self._cache:
            params = [saturation_params(b, self.thresholds.saturation_margin)
                      if (b := self._bounds(r)) is not None else (0.0, math.inf) for r in rows]
            if all(p[1] == math.inf for p in params):
                self._cache[key] = None
            else:
                t = torch.tensor(params, dtype=torch.float32, device=dev)
                self._cache[key] = (t[:, 0].view(-1, 1, 1), t[:, 1].view(-1, 1, 1))
        return self._cache[key]

    @staticmethod
    def _bounds(r: LayerRow) -> tuple[float, float] | None:
        return saturation_bounds(r.activation) if r.activation else None

    def _collect(self, loss: torch.Tensor | float | None) -> None:
        if self._rows is None:
            ordered = [self._leaves[i] for i in self._order]
            self._rows = plan_rows(ordered, self._order)
            self._row_bounds = [self._bounds(r) for r in self._rows]
            self._remove_hooks()  # discovery hooks on every leaf; re-armed with the plan
        with torch.no_grad():
            self._collect_rows(self._rows, loss)
        self._outs.clear()
        self._inputs.clear()

    def _collect_rows(self, rows: list[LayerRow], loss: torch.Tensor | float | None) -> None:
        check = len(self._checks)
        sparse = check & (check - 1) == 0 or check % 64 == 0  # histograms, input stats
        a_groups: dict[Any, list[tuple[LayerRow, torch.Tensor]]] = {}
        g_groups: dict[Any, list[tuple[LayerRow, torch.Tensor]]] = {}
        for r in rows:
            t = self._outs.get(r.act_leaf) if r.act_leaf is not None else None
            if t is None and r.weight_leaf is not None:
                t = self._outs.get(r.weight_leaf)
            if t is not None:
                v = unit_view(t, r.unit_dim)
                sat = self._row_bounds[r.index] is not None
                a_groups.setdefault((v.shape, sat), []).append((r, v))
            z = self._outs.get(r.weight_leaf) if r.weight_leaf is not None else None
            g = z.grad if z is not None else None
            if g is not None:
                v = unit_view(g, r.unit_dim)
                g_groups.setdefault(v.shape, []).append((r, v))
        parts: list[torch.Tensor] = []
        dev = next(iter(self._outs.values())).device if self._outs else torch.device("cpu")
        a_rows: list[int] = []
        a_numel: list[int] = []
        a_units: list[int] = []
        hists: list[torch.Tensor] = []
        for key, members in a_groups.items():
            grp = [r for r, _ in members]
            x = _stack([v for _, v in members])
            st, unit_max = activation_stats(x, self._sat(grp, dev) if key[1] else None)
            dead = self._dead_counts(key, tuple(r.index for r in grp), unit_max)
            parts.append(torch.cat([st, dead[:, None]], 1).flatten())
            a_rows += [r.index for r in grp]
            a_numel += [x.shape[1] * x.shape[2]] * len(grp)
            a_units += [x.shape[2]] * len(grp)
            if sparse:
                for r, v in members:
                    lo, hi = histogram_range(self._row_bounds[r.index])
                    hists.append(torch.histc(v.float().clamp(lo, hi), self.bins, lo, hi))
        g_rows: list[int] = []
        g_numel: list[int] = []
        for members in g_groups.values():
            parts.append(grad_stats(_stack([v for _, v in members])).flatten())
            g_rows += [r.index for r, _ in members]
            g_numel += [members[0][1].numel()] * len(members)
        by_leaf = {r.weight_leaf: r.index for r in rows}
        order: list[int] = []
        if self._snap_leaves:
            grads = [w.grad for w in self._snap_weights]
            wst, order = weight_stats(grads, self._samples, self._snapshot, self._snap_numel)
            parts.append(wst.flatten().to(dev))
        parts.append(self._input_stats(rows, dev) if sparse
                     else torch.full((2,), math.nan, device=dev))
        if isinstance(loss, torch.Tensor):
            parts.append(loss.detach().reshape(-1)[:1].to(dev))
        else:
            parts.append(torch.tensor([math.nan if loss is None else float(loss)], device=dev))
        if hists and len(hists) == len(rows):
            by_row = sorted(range(len(a_rows)), key=a_rows.__getitem__)
            self._keep_histogram(check, torch.stack([hists[i] for i in by_row]))
        self._checks.append(Check(
            self._step, tuple(a_rows), tuple(a_numel), tuple(a_units), tuple(g_rows),
            tuple(g_numel), tuple(by_leaf.get(self._snap_leaves[k], -1) for k in order),
            tuple(self._snap_numel[k] for k in order),
            torch.cat([p if p.dtype == torch.float32 else p.float() for p in parts])))

    def _dead_counts(self, key: Any, rows: tuple[int, ...], unit_max: torch.Tensor
                     ) -> torch.Tensor:
        """Units per layer with no positive output over the last ``persistence`` checks."""
        wkey = (rows, tuple(unit_max.shape))  # not the batch size: the last batch may be short
        window = self._windows.get(wkey)
        if window is None:
            window = self._windows[wkey] = deque(maxlen=self.thresholds.persistence)
        window.append(unit_max)
        top = window[0] if len(window) == 1 else torch.stack(list(window)).amax(0)
        return top.le(0).sum(1, dtype=torch.float32)

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

    # ------------------------------------------------------------------ reporting
    def series(self) -> HealthSeries:
        """Synchronize once and return the recorded statistics as host-side arrays."""
        rows = self._rows or []
        steps = [c.step for c in self._checks]
        s = HealthSeries.empty([r.name for r in rows], steps)
        if self._checks:
            flat = torch.cat([c.packed for c in self._checks]).cpu().numpy().astype(float)
        else:
            flat = np.zeros(0)
        units: dict[int, int] = {}
        gsq = np.zeros(len(steps))
        relu = {r.index for r in rows if r.activation in RELU_FAMILY}
        with np.errstate(all="ignore"):
            decode(self._checks, flat, s, gsq, units, relu)
        s.grad_norm = np.sqrt(gsq)
        s.histograms = [(steps[i], h.detach().cpu().numpy().astype(float))
                        for i, h in sorted(self._hists.items())]
        s.meta = [LayerMeta(r.index, r.name, r.kind, r.activation, r.members, units.get(r.index),
                            r.fan_in, histogram_range(saturation_bounds(r.activation)
                                                      if r.activation else None),
                            r.member_kinds)
                  for r in rows]
        return s

    def findings(self) -> list[Any]:
        """The findings of the rules on everything recorded so far (one host sync)."""
        return evaluate(self.series(), self.thresholds)

    def report(self, **meta: Any) -> HealthReport:
        """Synchronize once and build the :class:`~steadygrad.diagnostics.report.HealthReport`.

        Args:
            **meta: extra JSON-ready facts to store in the report (e.g. optimizer, data).
        """
        from steadygrad.diagnostics.report import HealthReport

        series = self.series()
        return HealthReport(series=series, findings=evaluate(series, self.thresholds),
                            thresholds=self.thresholds,
                            meta={"every": self.every, "steps": self._step, **meta})
