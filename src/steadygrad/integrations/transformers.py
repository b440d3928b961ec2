"""``GradientHealthCallback``: the gradient-health monitor as a Hugging Face ``TrainerCallback``.

Where it reads (checked in transformers 5.x, ``Trainer._inner_training_loop``): the trainer
clips the gradients (``max_grad_norm``, default 1.0) *before* it calls
``on_pre_optimizer_step``, then ``optimizer.step()``, ``on_optimizer_step``, ``zero_grad`` and
``on_step_end``. No callback event sees the gradients before clipping, and ``on_step_end``
comes after ``zero_grad`` (transformers #26143, #31033). The callback therefore hands the
gradients to the monitor in ``on_optimizer_step`` (after the update, so the update/weight ratio
is the applied one) and, when the trainer clips (``max_grad_norm > 0``) in a single process,
gives it the gradient norms **before clipping**: on a sampled step, ``on_step_begin`` puts a
``register_post_accumulate_grad_hook`` on each monitored weight that takes the norm of the
gradient each time backward finishes accumulating into it (the last one is the norm of the
complete accumulated gradient, taken before the trainer clips; no copy of the gradient), and
the monitor reports those norms. Under ``torch.distributed`` those hooks would fire before
DDP's all-reduce, so there the monitor reads the gradients the optimizer used: after
clipping.

The loss of each step is taken from the model's output (``loss`` of the
returned ``ModelOutput``/dict) by a forward hook; with gradient accumulation the
activation statistics are those of the last accumulated batch.

Logging goes through ``on_log``: the latest health scalars (``health/grad_norm``,
``health/<series>_max``, ``health/findings_<severity>``) are added to the ``logs`` dict and to
``state.log_history`` (callbacks after this one, such as a later-added reporter, see them).
The report is built in ``on_train_end`` and written to ``args.output_dir`` by the main process.

Example:
    >>> import importlib.util
    >>> if importlib.util.find_spec("transformers"):
    ...     cb = GradientHealthCallback(every=16, on_error="stop")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from steadygrad.diagnostics.monitor import DEFAULT_EVERY
from steadygrad.diagnostics.rules import Thresholds
from steadygrad.integrations._session import (
    HealthError,
    HealthSession,
    gradient_norms,
    host_base,
    require_host,
    write_report,
)

_MISSING = ("steadygrad.integrations.transformers needs Hugging Face transformers: "
            "pip install 'steadygrad[transformers]' (or pip install transformers accelerate)")
if TYPE_CHECKING:
    from transformers import TrainerCallback
else:
    TrainerCallback = host_base("transformers", "TrainerCallback")

__all__ = ["GradientHealthCallback", "HealthError"]


class GradientHealthCallback(TrainerCallback):
    """Per-layer gradient health for a ``transformers.Trainer`` run.

    Args:
        every: sample one optimizer step in ``every`` (as :class:`GradientMonitor`).
        thresholds: rule thresholds.
        evaluate_every: with ``on_error``, run the rules every this many sampled steps
            (one host sync each); ``on_log`` runs them when at least this many sampled steps
            arrived since the last run, so a log carries scalars at most this many sampled
            steps old, and a trainer that logs less often pays one run per log. With
            ``logging_strategy="no"`` and no ``on_error`` they run only for the report.
        on_error: None (record only), ``"warn"``, ``"stop"`` (``control.should_training_stop``)
            or ``"raise"`` (:class:`HealthError`) when an ``error`` finding appears.
        report_dir: where ``health.json``/``health.txt`` go at the end (default:
            ``args.output_dir``); False: write nothing.
        baseline_loss: the chance-level loss of the task (e.g. ``log(classes)`` for
            balanced classes with cross-entropy), which the rules judge progress against.

    Attributes:
        report: the :class:`~steadygrad.diagnostics.report.HealthReport` after training.

    Raises:
        ConfigError: invalid arguments.
    """

    def __init__(self, every: int = DEFAULT_EVERY, *, thresholds: Thresholds | None = None,
                 evaluate_every: int = 8, on_error: str | None = None,
                 report_dir: str | Path | bool | None = None,
                 baseline_loss: float | None = None) -> None:
        require_host(TrainerCallback, _MISSING)
        self.session = HealthSession(every, thresholds=thresholds,
                                     evaluate_every=evaluate_every, on_error=on_error,
                                     baseline_loss=baseline_loss)
        self.report_dir = report_dir
        self.report: Any = None
        self._loss: torch.Tensor | None = None
        self._handle: Any = None
        self._scalars: dict[str, float] = {}
        self._unclipped: dict[int, torch.Tensor] = {}
        self._grad_hooks: list[Any] = []

    def _keep_loss(self, module: Any, args: Any, output: Any) -> None:
        if module.training:  # every step: the monitor tracks the loss on each one
            try:
                loss = output.get("loss")  # a ModelOutput or a dict
            except AttributeError:
                return
            if isinstance(loss, torch.Tensor):
                self._loss = loss.detach()

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       **kwargs: Any) -> None:
        self.session.start(model)
        # periodic rule evaluations serve on_error; on_log evaluates when it needs fresher
        # scalars, so a trainer that logs rarely pays for few evaluations
        self.session.live = bool(self.session.on_error)
        if self._handle is not None:
            self._handle.remove()
        self._handle = model.register_forward_hook(self._keep_loss)
        self._loss, self._scalars = None, {}

    def on_step_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                      **kwargs: Any) -> None:
        if not self.session.armed or model is None:  # the common case: not a sampled step
            return
        if not (args.max_grad_norm and args.max_grad_norm > 0) or (
                torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        unclipped = self._unclipped

        def keep(p: torch.Tensor) -> None:  # the accumulated gradient's norm, before clipping
            unclipped.update(gradient_norms([p]))

        self._grad_hooks = [p.register_post_accumulate_grad_hook(keep)
                            for p in self.session.weights_read if p.requires_grad]

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        loss, self._loss = self._loss, None
        if not self._grad_hooks:  # the common case: no norms taken before clipping
            check = self.session.step(loss)
        else:
            for h in self._grad_hooks:
                h.remove()
            self._grad_hooks = []
            unclipped, self._unclipped = self._unclipped, {}
            check = self.session.step(loss, unclipped)
        if check is None:
            return control
        self._scalars = check.scalars
        if self.session.act(check):
            control.should_training_stop = True
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
               **kwargs: Any) -> None:
        if logs is None or "loss" not in logs:
            return  # training logs only (not eval/predict metrics)
        check = self.session.refresh()
        if check is not None:
            self._scalars = check.scalars
        if not self._scalars:
            return
        logs.update(self._scalars)
        if state.log_history:
            state.log_history[-1].update(self._scalars)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if self.session.monitor is None:
            return
        self.report = self.session.finish(host="transformers", global_step=state.global_step)
        if self.report_dir is False or not state.is_world_process_zero:
            return
        folder = self.report_dir or args.output_dir
        if folder:
            write_report(self.report, Path(str(folder)))
