"""``GradientHealth``: the gradient-health monitor as a PyTorch Lightning callback.

Where it reads (Lightning 2.x, automatic optimization): Lightning calls
``on_before_optimizer_step`` once per optimizer step, after the gradients of all accumulated
batches are summed, after AMP's loss scaler unscaled them (``scaler.unscale_`` precedes the
hook in ``MixedPrecision.optimizer_step``) and before gradient clipping. When the trainer clips
(``gradient_clip_val``) or the module optimizes manually, the callback takes the norms of the
monitored weights' gradients there on a sampled step (no copy of the gradients), and after
``optimizer.step()`` (``on_train_batch_end`` of the batch that stepped) hands them to the
monitor together with the weights after the update, so the report sees the unclipped, unscaled
gradient norms and the update that was applied. Without clipping nothing changes the gradients
between the two hooks (``torch.optim`` optimizers do not write to ``.grad``): the monitor reads
them at ``on_train_batch_end``. With gradient accumulation the activation statistics are those
of the last accumulated batch. Under ``strategy="ddp"`` every rank runs its own monitor (the
gradients are identical after DDP's all-reduce), a stop decision is reduced over the ranks, and
rank 0 writes the report. With fp16 AMP (a ``GradScaler``, CUDA only) the back-propagated
activation gradients (``grad_rms``) stay in loss-scaled units, as Lightning leaves them; bf16
has no scaler.

Example:
    >>> import importlib.util
    >>> if importlib.util.find_spec("lightning"):
    ...     cb = GradientHealth(every=16, on_error="stop")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from steadygrad.diagnostics.monitor import DEFAULT_EVERY
from steadygrad.diagnostics.rules import Thresholds
from steadygrad.integrations._session import (
    Check,
    HealthError,
    HealthSession,
    gradient_norms,
    host_base,
    require_host,
    write_report,
)
from steadygrad.integrations.tensorboard import compact_scalars

_MISSING = ("steadygrad.integrations.lightning needs PyTorch Lightning: "
            "pip install 'steadygrad[lightning]' (or pip install lightning)")
if TYPE_CHECKING:
    from lightning.pytorch import Callback
else:
    Callback = host_base("lightning.pytorch", "Callback")

__all__ = ["GradientHealth", "HealthError"]


def _loss_of(outputs: Any) -> torch.Tensor | None:
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, dict) and isinstance(outputs.get("loss"), torch.Tensor):
        return outputs["loss"]
    return None


class GradientHealth(Callback):
    """Per-layer gradient health for a ``lightning.pytorch.Trainer`` run.

    Args:
        every: sample one optimizer step in ``every`` (as :class:`GradientMonitor`).
        thresholds: rule thresholds.
        evaluate_every: run the rules every this many sampled steps; each run logs
            ``health/grad_norm``, ``health/<series>_max`` and ``health/findings_<severity>``
            to the module's loggers (``logger.log_metrics`` at ``trainer.global_step``, on
            every evaluation, not only every ``log_every_n_steps``) and to
            ``trainer.callback_metrics`` (for ``EarlyStopping``/``ModelCheckpoint``), and
            applies ``on_error``. The periodic runs happen only when something reads them: a
            logger, ``on_error``, or a callback whose ``monitor`` is a ``health/`` key; at the
            end of fit ``trainer.callback_metrics`` gets the final report's scalars either
            way.
        on_error: None (record only), ``"warn"``, ``"stop"`` (``trainer.should_stop``) or
            ``"raise"`` (:class:`HealthError`) when an ``error`` finding appears.
        report_dir: where ``health.json`` and ``health.txt`` go at the end of fit (default:
            ``trainer.log_dir``, else ``trainer.default_root_dir``); False: write nothing.
        baseline_loss: the chance-level loss of the task (e.g. ``log(classes)`` for
            balanced classes with cross-entropy), which the rules judge progress against.

    Attributes:
        report: the :class:`~steadygrad.diagnostics.report.HealthReport` after fit.

    Raises:
        ConfigError: invalid arguments.
    """

    def __init__(self, every: int = DEFAULT_EVERY, *, thresholds: Thresholds | None = None,
                 evaluate_every: int = 8, on_error: str | None = None,
                 report_dir: str | Path | bool | None = None,
                 baseline_loss: float | None = None) -> None:
        require_host(Callback, _MISSING)
        self.session = HealthSession(every, thresholds=thresholds,
                                     evaluate_every=evaluate_every, on_error=on_error,
                                     baseline_loss=baseline_loss)
        self.report_dir = report_dir
        self.report: Any = None
        self._unclipped: dict[int, torch.Tensor] | None = None
        self._stepped = False
        self._keep_unclipped = True  # set at on_train_start: whether the trainer clips

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.session.start(pl_module)
        self._unclipped, self._stepped = None, False
        self._keep_unclipped = bool(trainer.gradient_clip_val) or not getattr(
            pl_module, "automatic_optimization", True)
        # the periodic rule evaluations feed the loggers, on_error and callbacks that
        # monitor a health/ key; with none of them they would cost time for nothing
        self.session.live = bool(self.session.on_error or trainer.loggers or any(
            str(getattr(cb, "monitor", None) or "").startswith("health/")
            for cb in trainer.callbacks))

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        self._stepped = True
        if self._keep_unclipped and self.session.armed:  # the unclipped gradient norms
            self._unclipped = gradient_norms(self.session.weights_read)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not self._stepped:  # accumulating: no optimizer step in this batch
            return
        self._stepped = False
        loss = outputs.get("loss") if type(outputs) is dict else _loss_of(outputs)
        k = trainer.accumulate_grad_batches  # Lightning divided the loss by it
        if k != 1 and isinstance(loss, torch.Tensor):
            loss = loss * k
        unclipped, self._unclipped = self._unclipped, None
        check = self.session.step(loss, unclipped)
        if check is not None:
            self._log(trainer, pl_module, check)

    def _log(self, trainer: Any, pl_module: Any, check: Check) -> None:
        """Hand the scalars of a rule evaluation to the module's loggers and to
        ``trainer.callback_metrics``, and apply ``on_error``."""
        scalars = check.scalars
        metrics = trainer.callback_metrics  # the live dict (EarlyStopping, checkpoints read it)
        for name, value in scalars.items():
            metrics[name] = torch.tensor(value)
        for logger in trainer.loggers:  # the module's loggers; each writes on rank 0 only
            logger.log_metrics(scalars, step=trainer.global_step)
        stop = self.session.act(check)
        if self.session.on_error == "stop":
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            trainer.should_stop = True

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.session.monitor is None:
            return
        self.report = self.session.finish(host="lightning", global_step=trainer.global_step)
        metrics = trainer.callback_metrics  # the final numbers, evaluated live or not
        for name, value in compact_scalars(self.report).items():
            metrics[name] = torch.tensor(value)
        if self.report_dir is False or not trainer.is_global_zero:
            return
        folder = self.report_dir or trainer.log_dir or trainer.default_root_dir
        write_report(self.report, Path(str(folder)))
