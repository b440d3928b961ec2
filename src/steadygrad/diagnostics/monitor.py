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

Sampling: every one of the first :data:`DENSE_START` steps (where an oversized init or a far
too high learning rate shows), then one step in ``every``.

Cost model: hooks are attached only for sampled steps. The :meth:`~GradientMonitor.step` call
*before* a sampled step arms the monitor (installs the hooks and snapshots a fixed sample of
each weight into a preallocated buffer); the step after it *stages* the step: it copies the
caught activations and gradients into one slot of a reused stack
(:mod:`steadygrad.diagnostics.collect`), the weight samples into a slot of their own, and
takes the weight gradients' norms (one ``torch._foreach_norm``). The statistics of up to
eight staged steps are then computed together, independent of depth and of the number of
steps: a couple of dozen tensor ops reduce the stacks row-wise
(:func:`~steadygrad.diagnostics.stats.stack_stats`) and write every number straight into the
steps' preallocated rows of an on-device table
(:class:`~steadygrad.diagnostics.checks.Records`), when the slots are full or when the series
is read; the numbers are the same, bit for bit, as one reduction per step. Nothing waits on
an accelerator until :meth:`~GradientMonitor.report`, which copies the tables to the host
once and decodes them with whole-array numpy. On the 20 x [Dense 100 -> BN -> ELU] net (CPU,
batch 32) statistics on every step cost about 1.25x a plain step, the default sampling about
1.01x (``docs/benchmarks.md``, measured before the staging).

Example:
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> x, y = torch.randn(32, 4), torch.randn(32, 1)
    >>> with GradientMonitor(net, every=2, dense_start=3) as mon:
    ...     for _ in range(8):
    ...         loss = ((net(x) - y) ** 2).mean()
    ...         opt.zero_grad(); loss.backward(); opt.step()
    ...         mon.step(loss)
    >>> rep = mon.report()
    >>> rep.series.steps, rep.series.layers
    ([0, 1, 2, 4, 6], ['0', '2'])
    >>> len(net._forward_hooks), len(net[0]._forward_hooks)  # hooks are gone
    (0, 0)
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from steadygrad.diagnostics.checks import Records, decode
from steadygrad.diagnostics.collect import Plan, WeightSamples
from steadygrad.diagnostics.hooks import LayerRow, is_weighted, leaf_modules, main_weight
from steadygrad.diagnostics.rules import Thresholds, evaluate
from steadygrad.diagnostics.sampled import SampledStep
from steadygrad.diagnostics.series import HealthSeries, LayerMeta
from steadygrad.diagnostics.stats import histogram_range
from steadygrad.errors import ConfigError
from steadygrad.nn.activations import RELU_FAMILY, saturation_bounds

if TYPE_CHECKING:
    from steadygrad.diagnostics.report import HealthReport

__all__ = ["DEFAULT_EVERY", "DENSE_START", "GradientMonitor"]

_NEVER = sys.maxsize
"""``_next`` of a detached monitor: no step is armed."""

DEFAULT_EVERY = 32
"""Default sampling period (steps), chosen from measured cost: a sampled step (hooks, fused
statistics, and its share of the final report) costs about one plain step of the
784-300-100-10 MLP at batch 32 on CPU, so one in 20 measured 1.045-1.06x on ``fit`` there
(and on 20 x [Dense-BN-ELU]); one in 32 keeps ``fit``'s default monitor within 5% with margin
(``tests/train/fit_overhead_script.py``)."""

DENSE_START = 16
"""Steps sampled densely at the start of training (every one of steps ``0 .. DENSE_START - 1``)
before the ``every`` period takes over. An oversized init or a far too high learning rate
shows at the first steps and may be gone, or drowned by dead units, by step 32. On the
labelled suite's calibration seeds (``tests/reliability/diag_suite.py``) 110 of the 113
detected sick runs raised their warning before step 16 at ``every=1``. It is a one-off cost
of ``DENSE_START`` sampled steps (about 16 plain steps; under 1 % of a Fashion-MNIST epoch at
batch 32), none later."""

class GradientMonitor(SampledStep):
    """Records per-layer activation, gradient and update statistics on sampled steps.

    Args:
        model: any ``torch.nn.Module``.
        every: sample one step in ``every`` (step 0 is always sampled).
        dense_start: also sample every one of the first ``dense_start`` steps (0: only the
            ``every`` period), where an oversized init or a too high learning rate shows.
        thresholds: rule thresholds (:class:`~steadygrad.diagnostics.rules.Thresholds`).
        bins: bins of the per-layer activation histograms.
        baseline_loss: the loss a constant predictor reaches on this task (chance level:
            :func:`~steadygrad.diagnostics.progress.baseline_loss`); progress is judged
            against it. None: against the first loss.

    The loss passed to :meth:`step` is read at **every** step when it lives on the CPU (a
    Python float, no synchronization): the first non-finite loss and loss spikes between
    sampled steps are then seen. On an accelerator it is recorded at sampled steps only, and
    the first non-finite step is accumulated on the device (read at report time).

    Raises:
        ConfigError: ``model`` is not a module, or ``every``/``bins`` are not positive ints.

    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> mon = GradientMonitor(net, every=2, dense_start=0).attach()
    >>> mon.armed  # step 0 is sampled
    True
    >>> net(torch.randn(4, 2)).sum().backward(); mon.step()
    >>> mon.armed, mon.steps_seen  # step 1 is not
    (False, 1)
    >>> mon.detach(); [f.kind for f in mon.findings()]
    []
    >>> [s for s in range(40) if GradientMonitor(net, every=8).sampled(s)]
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 32]
    """

    def __init__(
        self,
        model: nn.Module,
        every: int = DEFAULT_EVERY,
        *,
        thresholds: Thresholds | None = None,
        bins: int = 40,
        baseline_loss: float | None = None,
        dense_start: int = DENSE_START,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
        for name, val, lo in (("every", every, 1), ("bins", bins, 2),
                              ("dense_start", dense_start, 0)):
            if isinstance(val, bool) or not isinstance(val, int) or val < lo:
                raise ConfigError(name, val, f"an int >= {lo}")
        if baseline_loss is not None and (isinstance(baseline_loss, bool) or not isinstance(
                baseline_loss, (int, float)) or not math.isfinite(baseline_loss)):
            raise ConfigError("baseline_loss", baseline_loss, "a finite number or None")
        if thresholds is not None and not isinstance(thresholds, Thresholds):
            raise ConfigError("thresholds", thresholds, "a steadygrad Thresholds instance")
        self.model = model
        self.every = every
        self.dense_start = dense_start
        self.thresholds = thresholds or Thresholds()
        self.bins = bins
        self._leaves = leaf_modules(model)
        self._probe_modules = [(n or type(m).__name__, m) for n, m in model.named_modules()
                               if isinstance(m, (nn.RNNBase, nn.MultiheadAttention))]
        self._probes: dict[str, tuple[torch.Tensor, int]] = {}
        self._probe_vals_now: dict[str, torch.Tensor] = {}
        self._probe_vals: list[tuple[int, str, torch.Tensor]] = []  # (step, module, values)
        self._weighted = [i for i, (_, m) in enumerate(self._leaves) if is_weighted(m)]
        self._rows: list[LayerRow] | None = None
        self._plan_leaves: list[int] | None = None
        self._planned_hooks: list[tuple[nn.Module, Callable[..., None]]] = []
        self._act_from: dict[int, int] = {}  # activation leaf read as a weighted leaf's input
        self._order: list[int] = []
        self._seen: set[int] = set()
        self._handles: list[Any] = []
        self._outs: dict[int, torch.Tensor] = {}
        self._inputs: dict[int, torch.Tensor] = {}
        self._snap_leaves: list[int] = []
        self._weight_slots: list[tuple[dict[str, Any], str]] = []
        self._samples = WeightSamples()
        self._row_bounds: list[tuple[float, float] | None] = []
        self._sat: dict[int, tuple[float, float]] = {}
        self._relu: set[int] = set()
        self._plans: dict[Any, Plan] = {}
        self._rings: dict[Any, torch.Tensor] = {}
        self._staged: list[Any] | None = None
        self._step = 0
        self._next = _NEVER  # while attached: the first sampled step after ``_step``
        self._armed = False
        self._attached = False
        self._records = Records()
        self._hists: dict[int, torch.Tensor] = {}
        self.baseline_loss = None if baseline_loss is None else float(baseline_loss)
        self._losses: list[float] = []  # every step's loss (CPU), index = step
        self._first_bad: torch.Tensor | None = None  # first non-finite step, on the device
        self._first_bad_cpu: int | None = None

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
            if self.sampled(self._step):
                self._arm()
            self._next = self._sampled_after(self._step)
        return self

    def detach(self) -> None:
        """Remove every hook and drop references to caught tensors; safe to call twice."""
        self._remove_hooks()
        self._armed = False
        self._attached = False
        self._next = _NEVER
        self._outs.clear()
        self._inputs.clear()
        self._probes.clear()
        self._probe_vals_now = {}
        self._samples.taken = False

    @property
    def armed(self) -> bool:
        """True when the next training step is sampled (hooks are attached for it)."""
        return self._armed

    def sampled(self, step: int) -> bool:
        """Whether ``step`` (0-based) is sampled: one of the first ``dense_start`` steps,
        or a multiple of ``every``."""
        return step < self.dense_start or step % self.every == 0

    def _sampled_after(self, step: int) -> int:
        """The first sampled step after ``step``.

        >>> mon = GradientMonitor(nn.Linear(1, 1), every=8, dense_start=3)
        >>> [mon._sampled_after(s) for s in (0, 1, 2, 3, 8, 9)]
        [1, 2, 8, 8, 16, 16]
        """
        nxt = step + 1
        return nxt if nxt < self.dense_start else -(-nxt // self.every) * self.every

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
        if loss is not None:
            self._track(loss)
        collected = self._armed
        if not collected and self._step + 1 < self._next:  # most steps: nothing to do
            self._step += 1
            return
        if collected:
            self._collect(loss)
        self._step += 1
        if not self._attached:
            return
        if self.sampled(self._step):
            self._arm(fresh=collected)
        elif self._armed:
            self._remove_hooks()
            self._armed = False
        self._next = self._sampled_after(self._step)

    def _arm(self, fresh: bool = False) -> None:
        """Install the hooks and snapshot the weight samples. ``fresh``: the previous step was
        just collected, so its "after" copy of the weights is this step's "before"."""
        if not self._handles:
            self._install_hooks()
        if self._rows is None:
            leaves = self._weighted
        elif self._plan_leaves is None:
            leaves = self._plan_leaves = [
                r.weight_leaf for r in self._rows if r.weight_leaf is not None]
        else:
            leaves = self._plan_leaves
        if leaves is not self._snap_leaves or not self._weight_slots:
            self._snap_leaves = leaves
            self._weight_slots = [self._weight_slot(i) for i in leaves]
        weights = [params.get(name) for params, name in self._weight_slots]
        if any(w is None for w in weights):  # a parameter was deleted or renamed
            self._weight_slots = [self._weight_slot(i) for i in leaves]
            weights = [params[name] for params, name in self._weight_slots]
        self._samples.snapshot(weights, fresh, self._reduce_staged)  # type: ignore[arg-type]
        self._armed = True

    def _weight_slot(self, leaf: int) -> tuple[dict[str, Any], str]:
        """``(module._parameters, name)`` of the leaf's :func:`main_weight`: read through the
        dict at each snapshot, so a replaced parameter is picked up (and its new storage
        detected by the snapshot)."""
        module = self._leaves[leaf][1]
        w = main_weight(module)
        assert w is not None
        name = next(k for k, p in module._parameters.items() if p is w)
        return module._parameters, name

    # ------------------------------------------------------------------ reporting
    def series(self) -> HealthSeries:
        """Synchronize once and return the recorded statistics as host-side arrays."""
        self._reduce_staged()
        rows = self._rows or []
        steps = list(self._records.steps)
        s = HealthSeries.empty([r.name for r in rows], steps)
        units: dict[int, int] = {}
        gsq = np.zeros(len(steps))
        relu = {r.index for r in rows if r.activation in RELU_FAMILY}
        with np.errstate(all="ignore"):
            decode(self._records.blocks(), s, gsq, units, relu)
        s.grad_norm = np.sqrt(gsq)
        s.baseline_loss = self.baseline_loss
        s.step_loss = np.asarray(self._losses, dtype=float)
        first = self._first_bad_cpu
        if self._first_bad is not None and int(self._first_bad) >= 0:
            first = int(self._first_bad) if first is None else min(first, int(self._first_bad))
        if first is None and np.any(np.isinf(s.loss)):
            first = int(np.asarray(steps)[np.isinf(s.loss)][0])
        s.first_nonfinite_loss = first
        s.probes = self._probe_series(steps)
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
                            meta={"every": self.every, "dense_start": self.dense_start,
                                  "steps": self._step,
                                  "baseline_loss": self.baseline_loss, **meta})
