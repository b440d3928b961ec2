"""What the host callbacks share: one monitor, periodic rule checks, the report files.

A host callback calls :meth:`HealthSession.start` with the module once, then
:meth:`HealthSession.step` once per optimizer step with the gradients of that step in
``.grad`` (the same contract as :meth:`GradientMonitor.step`), and :meth:`HealthSession.finish`
at the end. Every ``evaluate_every`` sampled steps the session runs the rules (one host sync)
and returns what a host logs and whether an ``error`` finding appeared.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> s = HealthSession(every=1, evaluate_every=2); s.start(net)
    >>> outs = []
    >>> for _ in range(4):
    ...     loss = net(torch.randn(8, 2)).pow(2).mean()
    ...     opt.zero_grad(); loss.backward(); opt.step()
    ...     outs.append(s.step(loss))
    >>> [o is not None for o in outs], outs[1].errors
    ([False, True, False, True], [])
    >>> s.finish().meta["steps"]
    4
"""

from __future__ import annotations

import importlib
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from steadygrad.diagnostics.monitor import DEFAULT_EVERY, GradientMonitor
from steadygrad.diagnostics.rules import Finding, Thresholds
from steadygrad.diagnostics.series import HealthSeries
from steadygrad.diagnostics.stats import norms_of
from steadygrad.errors import ConfigError, SteadygradError
from steadygrad.integrations.tensorboard import compact_scalars

if TYPE_CHECKING:
    from steadygrad.diagnostics.report import HealthReport

__all__ = [
    "ON_ERROR", "Check", "HealthError", "HealthSession", "gradient_norms", "host_base",
    "require_host", "write_report",
]

ON_ERROR = (None, "warn", "stop", "raise")
"""What a host callback does when the rules report an ``error`` finding."""


class HealthError(SteadygradError, RuntimeError):
    """Raised by a host callback with ``on_error="raise"`` when an ``error`` finding appears.

    >>> issubclass(HealthError, SteadygradError)
    True
    """


@dataclass
class Check:
    """The outcome of one rule evaluation: scalars to log and the ``error`` findings."""

    step: int
    scalars: dict[str, float]
    errors: list[Finding] = field(default_factory=list)


class _HostMonitor(GradientMonitor):
    """The monitor with the every-step loss read in batches.

    A host hands over one loss per optimizer step. :class:`GradientMonitor` reads each one at
    once (``.item()`` and bookkeeping, a few microseconds per step); here a CPU loss that
    needs no gradient (a detached scalar, as the hosts hand over) is only appended to a list,
    sampled steps included, and the run of consecutive pending losses is read in one
    ``torch.stack(...).tolist()`` (exact: a stack only widens the dtype) when the series is
    built (each evaluation, the report), every :attr:`FLUSH` steps, or when a loss of another
    kind arrives, with the same result: the same floats at the same steps and the same first
    non-finite step.

    >>> net = nn.Linear(2, 1)
    >>> mon = _HostMonitor(net, every=4, dense_start=0).attach()
    >>> for v in (1.0, float("inf"), 0.5):
    ...     _ = net(torch.randn(3, 2)).sum().backward(); mon.step(torch.tensor(v))
    >>> len(mon._pending), mon._losses  # nothing read yet
    (3, [])
    >>> mon.series().step_loss.tolist(), mon._first_bad_cpu
    ([1.0, inf, 0.5], 1)
    """

    FLUSH = 1024
    """Pending losses read at the latest after this many steps (bounds the list)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[torch.Tensor] = []
        self._pending_from = 0  # the step of the first pending loss (the others follow it)
        self.unclipped: dict[int, torch.Tensor] | None = None
        """``id(weight) -> norm of its gradient`` read before the host clipped it (see
        :meth:`HealthSession.step`); None: the norms are taken of ``.grad``."""

    @property
    def weights_read(self) -> list[torch.Tensor]:
        """The weights whose gradient norms the current sampled step reads."""
        return self._samples.weights

    def _weight_grads(self, weights: list[torch.Tensor]) -> list[torch.Tensor | None]:
        norms = self.unclipped
        if norms is None:
            return super()._weight_grads(weights)
        return [norms.get(id(w)) for w in weights]

    def _track(self, loss: torch.Tensor | float) -> None:
        pending = self._pending
        if (isinstance(loss, torch.Tensor) and loss.is_cpu and not loss.requires_grad
                and not loss.dim()):
            if not pending:
                self._pending_from = self._step
            elif self._pending_from + len(pending) != self._step:  # a step without a loss
                self._flush_losses()
                self._pending_from = self._step
            pending.append(loss)
            if len(pending) >= self.FLUSH:
                self._flush_losses()
            return
        self._flush_losses()  # keep the order of the steps
        super()._track(loss)

    def _flush_losses(self) -> None:
        """Record the pending losses as :meth:`GradientMonitor._track` would have."""
        pending = self._pending
        if not pending:
            return
        stacked = torch.stack(pending).to(torch.float64)  # one read for all, not one per step
        values = stacked.tolist()
        pending.clear()  # in place: the list stays the one _track appends to
        start, losses = self._pending_from, self._losses
        if len(losses) < start:
            losses.extend([math.nan] * (start - len(losses)))
        losses.extend(values)
        if self._first_bad_cpu is None and not bool(stacked.isfinite().all()):
            self._first_bad_cpu = start + next(
                i for i, v in enumerate(values) if not math.isfinite(v))

    def series(self) -> HealthSeries:
        self._flush_losses()
        return super().series()


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(name, value, "an int >= 1")
    return value


class HealthSession:
    """One monitored run inside a host.

    Args:
        every: sample one optimizer step in ``every`` (as :class:`GradientMonitor`).
        thresholds: rule thresholds.
        evaluate_every: run the rules (and hand scalars to the host) every this many sampled
            steps while :attr:`live`; each evaluation synchronizes once, and its cost grows
            with the steps recorded so far (the rules read every step's loss).
        on_error: None (only record), ``"warn"``, ``"stop"`` or ``"raise"`` when an ``error``
            finding appears (the host acts on it; see :meth:`act`).
        baseline_loss: the loss of a constant predictor on the task (chance level), which
            the rules judge progress against (``GradientMonitor(baseline_loss=...)``).

    Raises:
        ConfigError: invalid ``every``, ``evaluate_every``, ``on_error`` or
            ``baseline_loss``.
    """

    def __init__(self, every: int = DEFAULT_EVERY, *, thresholds: Thresholds | None = None,
                 evaluate_every: int = 8, on_error: str | None = None,
                 baseline_loss: float | None = None) -> None:
        _positive("every", every)
        _positive("evaluate_every", evaluate_every)
        if baseline_loss is not None and (isinstance(baseline_loss, bool) or not isinstance(
                baseline_loss, (int, float)) or not math.isfinite(baseline_loss)):
            raise ConfigError("baseline_loss", baseline_loss, "a finite number or None")
        if on_error not in ON_ERROR:
            raise ConfigError("on_error", on_error, "None, 'warn', 'stop' or 'raise'")
        self.every = every
        self.thresholds = thresholds
        self.baseline_loss = baseline_loss
        self.evaluate_every = evaluate_every
        self.on_error = on_error
        self.monitor: _HostMonitor | None = None
        self.checks = 0
        self.evaluated_at = 0
        """:attr:`checks` at the last :meth:`evaluate`."""
        self.live = True
        """False: :meth:`step` runs no periodic evaluation (set by a host when nothing would
        read its result: no logger, no ``on_error``); the report at the end is the same."""
        self.last: Check | None = None
        self.report: HealthReport | None = None
        self._warned = False

    @property
    def armed(self) -> bool:
        """True while the current step is sampled (its gradients will be read)."""
        return self.monitor is not None and self.monitor.armed

    @property
    def weights_read(self) -> list[torch.Tensor]:
        """The weights whose gradient norms a sampled step reads (empty before :meth:`start`)."""
        return self.monitor.weights_read if self.monitor is not None else []

    def start(self, module: nn.Module) -> None:
        """Attach a fresh :class:`GradientMonitor` to ``module``."""
        if self.monitor is not None:
            self.monitor.detach()
        self.monitor = _HostMonitor(module, self.every, thresholds=self.thresholds,
                                    baseline_loss=self.baseline_loss)
        self.monitor.attach()
        self.checks = 0
        self.evaluated_at = 0
        self.report = None

    def step(self, loss: torch.Tensor | float | None = None,
             unclipped: dict[int, torch.Tensor] | None = None) -> Check | None:
        """Record one optimizer step; returns a :class:`Check` when the rules ran.

        ``unclipped``: on a sampled step where the host clipped the gradients, the norms of
        the monitored weights' gradients before clipping (:func:`gradient_norms` of
        :attr:`weights_read`, read at a host hook before the clipping); the report then shows
        them in place of the clipped ones.
        """
        mon = self.monitor
        if mon is None:
            return None
        sampled = mon.armed
        if unclipped is None:
            mon.step(loss)
        else:
            mon.unclipped = unclipped
            try:
                mon.step(loss)
            finally:
                mon.unclipped = None
        if not sampled:
            return None
        self.checks += 1
        return self.refresh() if self.live else None

    def refresh(self) -> Check | None:
        """Run the rules (:meth:`evaluate`) when at least ``evaluate_every`` sampled steps
        arrived since they last ran; None otherwise. :meth:`step` calls it while
        :attr:`live`; a host may call it where it reads the scalars (e.g. at a log).

        >>> s = HealthSession(every=1, evaluate_every=2); s.live = False
        >>> s.start(nn.Linear(2, 1)); s.checks = 3
        >>> s.refresh() is not None, s.refresh()  # 3 new sampled steps, then none
        (True, None)
        """
        if self.monitor is None or self.checks - self.evaluated_at < self.evaluate_every:
            return None
        return self.evaluate()

    def evaluate(self) -> Check:
        """Run the rules on everything so far (one host sync)."""
        assert self.monitor is not None, "start() first"
        self.evaluated_at = self.checks
        rep = self.monitor.report()
        steps = rep.series.steps
        self.last = Check(int(steps[-1]) if steps else 0, compact_scalars(rep),
                          [f for f in rep.findings if f.severity == "error"])
        return self.last

    def act(self, check: Check | None) -> bool:
        """Apply ``on_error`` to ``check``; True when the host should stop training.

        Raises:
            HealthError: ``on_error="raise"`` and the check holds an ``error`` finding.
        """
        if check is None or not check.errors or self.on_error is None:
            return False
        msg = "; ".join(f"{f.kind} in {', '.join(f.layers) or 'the network'} from step "
                        f"{f.first_step}: {f.message}" for f in check.errors)
        if self.on_error == "raise":
            raise HealthError(f"gradient health error at step {check.step}: {msg}")
        if self.on_error == "warn":
            if not self._warned:
                warnings.warn(f"gradient health error: {msg}", RuntimeWarning, stacklevel=3)
                self._warned = True
            return False
        return True

    def finish(self, **meta: Any) -> HealthReport:
        """Detach the monitor and build the final report (kept in :attr:`report`)."""
        assert self.monitor is not None, "start() first"
        self.monitor.detach()
        self.report = self.monitor.report(**meta)
        return self.report


def gradient_norms(weights: list[torch.Tensor]) -> dict[int, torch.Tensor]:
    """``id(weight) -> norm of weight.grad`` for the weights that have a gradient, as the
    monitor computes them (:func:`~steadygrad.diagnostics.stats.norms_of`: one finiteness
    check, redone in float64 when a norm is not finite). Only norms: a host that clips the
    gradients afterwards costs no copy of them.

    >>> w = torch.nn.Parameter(torch.zeros(2)); w.grad = torch.tensor([3.0, 4.0])
    >>> gradient_norms([w, torch.nn.Parameter(torch.zeros(1))]) == {id(w): 5.0}
    True
    """
    ids, grads = [], []
    for w in weights:
        g = w.grad
        if g is not None:
            ids.append(id(w))
            grads.append(g)
    if not grads:
        return {}
    return dict(zip(ids, norms_of([], grads).unbind(), strict=True))


def host_base(module: str, name: str) -> Any:
    """The host's callback base class ``module.name``, or ``object`` when the host is not
    installed: the integration module stays importable and :func:`require_host` says what to
    install when the callback is constructed.

    >>> host_base("torch.nn", "Module").__name__, host_base("no_such_host_pkg", "Callback")
    ('Module', <class 'object'>)
    """
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):  # pragma: no cover - depends on the environment
        return object


def require_host(base: Any, missing: str) -> None:
    """Raise ``ImportError(missing)`` when ``base`` is the stand-in of a missing host.

    >>> require_host(object, "needs the host: pip install it")
    Traceback (most recent call last):
    ...
    ImportError: needs the host: pip install it
    """
    if base is object:  # pragma: no cover - depends on the environment
        raise ImportError(missing)


def write_report(report: HealthReport, folder: str | Path, name: str = "health") -> Path:
    """Write ``<folder>/<name>.json`` (the versioned report) and ``<name>.txt`` (its text
    rendering), replacing earlier ones from the same run folder; returns the JSON path.

    >>> import tempfile
    >>> from steadygrad.diagnostics.report import HealthReport
    >>> from steadygrad.diagnostics.series import HealthSeries
    >>> d = Path(tempfile.mkdtemp())
    >>> write_report(HealthReport(series=HealthSeries.empty(["a"], [0]), findings=[]), d).name
    'health.json'
    >>> sorted(p.name for p in d.iterdir())
    ['health.json', 'health.txt']
    """
    from steadygrad._atomic import atomic_write_text

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    path = report.save(out / f"{name}.json", overwrite=True)
    atomic_write_text(out / f"{name}.txt", report.render() + "\n")
    return path
