"""Built-in callbacks: early stopping, checkpoints of the best model, LR logging, non-finite stop.

Loggers (CSV, JSONL, TensorBoard) are in :mod:`steadygrad.train.loggers`, the progress bar in
:mod:`steadygrad.train.progress`. Every class here is registered in ``CALLBACKS``.

Example:
    >>> es = EarlyStopping(monitor="val_loss", patience=1)
    >>> es.mode, es.patience
    ('min', 1)
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import torch

from steadygrad.errors import ConfigError
from steadygrad.train.callbacks import CALLBACKS, Callback, Logs
from steadygrad.train.checkpoint import is_finite_model, save_weights
from steadygrad.train.history import metric_direction

__all__ = ["EarlyStopping", "LRLogger", "ModelCheckpoint", "TerminateOnNonFinite"]


def _mode(mode: str, monitor: str) -> str:
    if mode == "auto":
        return metric_direction(monitor)
    if mode not in ("min", "max"):
        raise ConfigError("mode", mode, "'min', 'max' or 'auto'")
    return mode


def _improved(current: float, reference: float | None, mode: str, min_delta: float) -> bool:
    """Keras ``_is_improvement``: ``current -/+ min_delta`` strictly beats ``reference``."""
    if reference is None:
        return True
    if mode == "min":
        return current + min_delta < reference
    return current - min_delta > reference


def _copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@CALLBACKS.register("early_stopping")
class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs (Keras semantics).

    Mirrors ``keras.callbacks.EarlyStopping``: an epoch improves when
    ``current - min_delta > best`` (``max``) or ``current + min_delta < best`` (``min``);
    ``wait`` counts epochs since the last improvement and training stops once
    ``wait >= patience`` (never after the first epoch). With ``baseline``, ``wait`` restarts
    only on epochs that also beat the baseline. With ``restore_best_weights`` the model gets
    the parameters *and buffers* of the best epoch back at the end of training (also when it
    ran all epochs), as Keras does.

    Args:
        monitor: logged quantity (``"val_loss"``; falls back to ``"loss"`` with a warning when
            there is no validation data).
        min_delta: minimum change that counts as an improvement (absolute value used).
        patience: epochs without improvement before stopping.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (from the name).
        baseline: value the monitor must beat for ``wait`` to restart.
        restore_best_weights: restore the best epoch's weights at the end.
        start_from_epoch: epochs to skip before monitoring starts.

    >>> es = EarlyStopping(monitor="val_accuracy", min_delta=-0.1)
    >>> es.mode, es.min_delta
    ('max', 0.1)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ConfigError("early_stopping.patience", patience, "an int >= 0")
        self.monitor = monitor
        self.mode = _mode(mode, monitor)
        self.min_delta = abs(float(min_delta))
        self.patience = patience
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_epoch = 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    def on_train_begin(self, logs: Logs) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Logs) -> bool | None:
        current = logs.get(self.monitor)
        if current is None and self.monitor.startswith("val_") and self.monitor[4:] in logs:
            warnings.warn(
                f"EarlyStopping: {self.monitor!r} is not logged (no validation data); "
                f"monitoring {self.monitor[4:]!r} instead",
                RuntimeWarning,
                stacklevel=2,
            )
            self.monitor = self.monitor[4:]
            current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"EarlyStopping conditioned on {self.monitor!r}, which is not available; "
                f"available: {', '.join(logs)}",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        if epoch < self.start_from_epoch or math.isnan(current):
            return None
        model = self.trainer.model
        if self.restore_best_weights and self.best_weights is None and model is not None:
            self.best_weights = _copy_state(model)
            self.best_epoch = epoch
        self.wait += 1
        if _improved(current, self.best, self.mode, self.min_delta):
            self.best = float(current)
            self.best_epoch = epoch
            if self.restore_best_weights and model is not None:
                self.best_weights = _copy_state(model)
            baseline = self.baseline
            if baseline is None or _improved(current, baseline, self.mode, self.min_delta):
                self.wait = 0
            return None
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.trainer.request_stop(
                f"early stopping at epoch {epoch}: {self.monitor} did not improve for "
                f"{self.wait} epochs (best {self.best:.6g} at epoch {self.best_epoch})"
            )
            return True
        return None

    def on_train_end(self, logs: Logs) -> None:
        model = self.trainer.model
        if self.restore_best_weights and self.best_weights is not None and model is not None:
            model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "monitor": self.monitor,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.best = state["best"]
        self.best_epoch = int(state["best_epoch"])
        self.monitor = state["monitor"]
        self.best_weights = state["best_weights"]


@CALLBACKS.register("model_checkpoint")
class ModelCheckpoint(Callback):
    """Save the model's weights (safetensors, atomic) after epochs, or only the best ones.

    Args:
        filepath: file to write; ``{epoch}`` (1-based, Keras style) and logged names may be
            formatted in, e.g. ``"ckpt/w-{epoch:03d}-{val_loss:.3f}.safetensors"``.
        monitor: quantity that decides "best" (``save_best_only``).
        save_best_only: write only when ``monitor`` improves (the previous best file is kept).
        mode: ``"min"``, ``"max"`` or ``"auto"``.

    A model with non-finite weights is never written, so a diverged state cannot replace a
    good file.

    >>> ModelCheckpoint("best.safetensors", save_best_only=True).mode
    'min'
    """

    def __init__(
        self,
        filepath: str | Path,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
    ) -> None:
        self.filepath = str(filepath)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.mode = _mode(mode, monitor)
        self.best: float | None = None
        self.saved: list[Path] = []

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        model = self.trainer.model
        if model is None:
            return
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None or math.isnan(current):
                warnings.warn(
                    f"ModelCheckpoint: {self.monitor!r} not available; nothing saved",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return
            if not _improved(current, self.best, self.mode, 0.0):
                return
        if not is_finite_model(model):
            warnings.warn(
                "ModelCheckpoint: the model has non-finite weights; not saved",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        if self.save_best_only:
            self.best = float(logs[self.monitor])
        path = Path(self.filepath.format(epoch=epoch + 1, **logs))
        save_weights(model, path)
        self.saved.append(path)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]


@CALLBACKS.register("lr_logger")
class LRLogger(Callback):
    """Record the learning rate (and momentum/beta_1) of the first param group at every step.

    After training, ``steps[i]`` used ``lrs[i]``. ``momenta[i]`` is None for optimizers
    without momentum.

    >>> LRLogger().lrs
    []
    """

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.lrs: list[float] = []
        self.momenta: list[float | None] = []

    def on_batch_begin(self, step: int, logs: Logs) -> None:
        group = self.trainer.optimizer.param_groups[0]
        self.steps.append(step)
        self.lrs.append(float(group["lr"]))
        momentum = group["betas"][0] if "betas" in group else group.get("momentum")
        self.momenta.append(None if momentum is None else float(momentum))


@CALLBACKS.register("terminate_on_non_finite", "terminate_on_nan")
class TerminateOnNonFinite(Callback):
    """Stop training once batch losses are NaN/Inf (Keras ``TerminateOnNaN``), or an epoch's.

    ``fit`` already stops at the first non-finite step with ``on_non_finite="stop"``. With
    ``on_non_finite="skip"`` the skipped batches still reach ``on_batch_end`` (with
    ``logs["skipped"] = True``), and this callback ends a run that keeps failing: it stops after
    ``max_consecutive`` non-finite batch losses in a row, while isolated bad batches are
    skipped.

    Args:
        max_consecutive: consecutive non-finite batch losses that end training (>= 1).

    >>> TerminateOnNonFinite(max_consecutive=3).max_consecutive
    3
    """

    def __init__(self, max_consecutive: int = 1) -> None:
        if isinstance(max_consecutive, bool) or not isinstance(max_consecutive, int) or (
            max_consecutive < 1
        ):
            raise ConfigError("max_consecutive", max_consecutive, "an int >= 1")
        self.max_consecutive = max_consecutive
        self.consecutive = 0

    def on_batch_end(self, step: int, logs: Logs) -> bool | None:
        loss = logs.get("loss")
        if loss is None or math.isfinite(float(loss)):
            self.consecutive = 0
            return None
        self.consecutive += 1
        if self.consecutive >= self.max_consecutive:
            self.trainer.request_stop(
                f"non_finite batch loss at step {step} ({self.consecutive} in a row)"
            )
            return True
        return None

    def on_epoch_end(self, epoch: int, logs: Logs) -> bool | None:
        for key in ("loss", "val_loss"):
            value = logs.get(key)
            if value is not None and not math.isfinite(value):
                self.trainer.request_stop(f"non_finite {key} at epoch {epoch}")
                return True
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"consecutive": self.consecutive}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.consecutive = int(state["consecutive"])
