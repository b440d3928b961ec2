"""``GradientHealthCallback``: the gradient-health monitor as a Hugging Face ``TrainerCallback``.

Where it reads (checked in transformers 5.x, ``Trainer._inner_training_loop``): the trainer
clips the gradients (``max_grad_norm``, default 1.0) *before* it calls
``on_pre_optimizer_step``, then ``optimizer.step()``, ``on_optimizer_step``, ``zero_grad`` and
``on_step_end``. No callback event sees the gradients before clipping, and ``on_step_end``
comes after ``zero_grad`` (transformers #26143, #31033). The callback therefore reads them in
``on_optimizer_step``: after the update (so the update/weight ratio is the applied one), with
the gradients the optimizer used, i.e. **after clipping** when ``max_grad_norm > 0`` (the
trainer's own logged ``grad_norm`` is the pre-clip global norm). Pass ``max_grad_norm=0`` to
see raw gradients. The loss of a sampled step is taken from the model's output (``loss`` of
the returned ``ModelOutput``/dict) by a forward hook; with gradient accumulation the
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
from typing import Any

import torch

from steadygrad.diagnostics.monitor import DEFAULT_EVERY
from steadygrad.diagnostics.rules import Thresholds
from steadygrad.integrations._session import HealthError, HealthSession, write_report

_MISSING = ("steadygrad.integrations.transformers needs Hugging Face transformers: "
            "pip install 'steadygrad[transformers]' (or pip install transformers accelerate)")
try:
    from transformers import TrainerCallback
except ImportError:  # pragma: no cover - depends on the environment
    # the module stays importable; constructing the callback says what to install
    TrainerCallback = object  # type: ignore[misc,assignment]

__all__ = ["GradientHealthCallback", "HealthError"]


class GradientHealthCallback(TrainerCallback):
    """Per-layer gradient health for a ``transformers.Trainer`` run.

    Args:
        every: sample one optimizer step in ``every`` (as :class:`GradientMonitor`).
        thresholds: rule thresholds.
        evaluate_every: run the rules every this many sampled steps (one host sync each);
            the scalars logged by ``on_log`` are those of the latest evaluation.
        on_error: None (record only), ``"warn"``, ``"stop"`` (``control.should_training_stop``)
            or ``"raise"`` (:class:`HealthError`) when an ``error`` finding appears.
        report_dir: where ``health.json``/``health.txt`` go at the end (default:
            ``args.output_dir``); False: write nothing.

    Attributes:
        report: the :class:`~steadygrad.diagnostics.report.HealthReport` after training.

    Raises:
        ConfigError: invalid arguments.
    """

    def __init__(self, every: int = DEFAULT_EVERY, *, thresholds: Thresholds | None = None,
                 evaluate_every: int = 8, on_error: str | None = None,
                 report_dir: str | Path | bool | None = None) -> None:
        if TrainerCallback is object:  # pragma: no cover - depends on the environment
            raise ImportError(_MISSING)
        self.session = HealthSession(every, thresholds=thresholds,
                                     evaluate_every=evaluate_every, on_error=on_error)
        self.report_dir = report_dir
        self.report: Any = None
        self._loss: torch.Tensor | None = None
        self._handle: Any = None
        self._scalars: dict[str, float] = {}

    def _keep_loss(self, module: Any, args: Any, output: Any) -> None:
        if self.session.armed and module.training:
            loss = output.get("loss") if hasattr(output, "get") else None
            if isinstance(loss, torch.Tensor):
                self._loss = loss.detach()

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       **kwargs: Any) -> None:
        self.session.start(model)
        if self._handle is not None:
            self._handle.remove()
        self._handle = model.register_forward_hook(self._keep_loss)
        self._loss, self._scalars = None, {}

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        loss, self._loss = self._loss, None
        check = self.session.step(loss)
        if check is None:
            return control
        self._scalars = check.scalars
        if self.session.act(check):
            control.should_training_stop = True
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
               **kwargs: Any) -> None:
        if logs is None or not self._scalars or "loss" not in logs:
            return  # training logs only (not eval/predict metrics)
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
