"""The epoch of ``fit``: shuffle, run the step over the batches, accumulate, close the epoch.

Per step the loop does only what the step itself cannot: slice the batch
(``index_select`` with a slice of one ``randperm`` per epoch), add the loss to a host float
(CPU: the step already read it) or a device tensor (accelerators: checked for finiteness every
:data:`DEVICE_CHECK_EVERY` steps and at the epoch's end), keep the detached outputs for the
metrics (one ``cat`` and update per :data:`METRIC_FLUSH` batches) and dispatch batch events
only when a callback overrides them.

Mid-epoch checkpoints (``checkpoint_every``): after every ``checkpoint_every``-th optimizer
step the runner writes the model, the optimizer and everything the rest of the epoch and its
history row depend on: the shuffling generator's state captured *before* the epoch's
``randperm`` (so the same permutation is regenerated), the position within the epoch, torch's
global RNG state (dropout), the partial accumulators (loss/penalty/gradient-norm sums, counts,
buffered metric outputs and metric sums) and the callback and plateau states. Resuming from it
regenerates the permutation, skips the batches already done and continues bit for bit. With
``checkpoint_every=None`` the per-step loop is unchanged (the check sits behind the existing
``on_batch_end`` branch, which is only taken when it is needed).

Example:
    >>> METRIC_FLUSH, DEVICE_CHECK_EVERY
    (256, 50)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from steadygrad.errors import CheckpointError
from steadygrad.train.callbacks import CallbackList, Trainer
from steadygrad.train.checkpoint import (
    Checkpoint,
    CheckpointManager,
    check_resume_state,
    load_weights,
)
from steadygrad.train.evaluate import run_eval
from steadygrad.train.learning_rate import set_learning_rate
from steadygrad.train.metrics import Metric
from steadygrad.train.nonfinite import locate_non_finite
from steadygrad.train.state import rng_state, set_rng_state
from steadygrad.train.step import GRAD_NORM_EVERY, StepResult, TrainStep

__all__ = ["DEVICE_CHECK_EVERY", "METRIC_FLUSH", "EpochRunner"]

METRIC_FLUSH = 256
"""Buffered batches per metric update."""
DEVICE_CHECK_EVERY = 50
"""Steps between finiteness checks when the loss stays on the device."""


def _lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


class EpochRunner:
    """The state of one ``fit`` call and its per-epoch work (used by ``fit``).

    >>> EpochRunner.__name__
    'EpochRunner'
    """

    def __init__(self, **kw: Any) -> None:
        self.model: nn.Module = kw["model"]
        self.x: torch.Tensor = kw["x"]
        self.y: torch.Tensor = kw["y"]
        self.val: tuple[torch.Tensor, torch.Tensor] | None = kw["val"]
        self.n_used: int = kw["n_used"]
        self.batch_size: int = kw["batch_size"]
        self.gen: torch.Generator = kw["gen"]
        self.optimizer: torch.optim.Optimizer = kw["optimizer"]
        self.schedule: Callable[[int], float] | None = kw["schedule"]
        self.plateau: Any = kw["plateau"]
        self.loss_fn: Callable[..., torch.Tensor] = kw["loss_fn"]
        self.train_metrics: list[Metric] = kw["train_metrics"]
        self.val_metrics: list[Metric] = kw["val_metrics"]
        self.callbacks: CallbackList = kw["callbacks"]
        self.trainer: Trainer = kw["trainer"]
        self.manager: CheckpointManager | None = kw["manager"]
        self.sync: bool = kw["sync"]
        self.on_non_finite: str = kw["on_non_finite"]
        self.regularized: bool = kw["regularized"]
        self.compile_timer = [0.0]
        self.step: TrainStep = TrainStep(_unbuilt, "unbuilt")
        self.checkpoint_every: int | None = kw.get("checkpoint_every")
        self.partial: dict[str, Any] | None = None
        self._resume_rng: dict[str, torch.Tensor] | None = None

    def restore(self, ckpt: Checkpoint) -> int:
        """Load a checkpoint into model, optimizer, history, RNGs; returns the next epoch."""
        state, trainer = ckpt.state, self.trainer
        check_resume_state(state, ckpt.path, trainer.history.params.get("epochs"))
        config = state.get("config") or {}
        mine = self._config()
        if {k: config.get(k) for k in mine} != mine:
            raise CheckpointError(
                f"checkpoint {ckpt.path} was written by a different run: {config} vs {mine}"
            )
        load_weights(self.model, ckpt.model_state)
        try:  # the types were checked above; the optimizer and history check their contents
            self.optimizer.load_state_dict(state["optimizer"])
            trainer.history.load_state_dict(state["history"])
            trainer.global_step = int(state["global_step"])
            if state.get("partial") is not None:  # mid-epoch: RNGs are restored by train_epoch
                self.partial = dict(state["partial"])
                self._resume_rng = state["rng"]
            else:
                set_rng_state(state["rng"], self.gen)
            if self.plateau is not None and state.get("plateau") is not None:
                self.plateau.load_state_dict(state["plateau"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
            raise CheckpointError(f"checkpoint {ckpt.path} cannot be restored "
                                  f"({type(e).__name__}: {e})") from e
        return int(state["epoch"])

    def _config(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "num_samples": self.x.shape[0],
                "optimizer": type(self.optimizer).__name__}

    def train_epoch(self) -> tuple[dict[str, float], str | None]:
        """One pass over the shuffled training set; returns (logs, non-finite reason)."""
        model, x, y, step, opt, sched = (
            self.model, self.x, self.y, self.step, self.optimizer, self.schedule)
        trainer, cbs, sync, metrics = self.trainer, self.callbacks, self.sync, self.train_metrics
        want_begin, want_end = cbs.wants("on_batch_begin"), cbs.wants("on_batch_end")
        every, n_used = self.checkpoint_every, self.n_used
        after = want_end or every is not None  # one branch per step, as without checkpoints
        skip = self.on_non_finite == "skip"
        batch_size, global_step = self.batch_size, trainer.global_step
        model.train()
        start_time, compile_before = time.perf_counter(), self.compile_timer[0]
        part, self.partial = self.partial, None
        if part is not None:
            self.gen.set_state(part["shuffle"].to(torch.uint8))
        shuffle_state = self.gen.get_state() if every is not None else None
        perm = torch.randperm(x.shape[0], generator=self.gen).to(x.device)
        loss_sum: Any = 0.0 if sync else torch.zeros((), device=x.device)
        pen_sum: Any = 0.0 if sync else torch.zeros((), device=x.device)
        norm_sum: Any = 0.0
        norm_count, skipped, seen, start = 0, 0, 0, 0
        checked = global_step  # device path: steps before this one are known to be finite
        outs: list[torch.Tensor] = []
        targets: list[torch.Tensor] = []
        if part is not None:
            if self._resume_rng is not None:
                set_rng_state(self._resume_rng, self.gen)
                self._resume_rng = None
            dev = x.device
            loss_sum, pen_sum, norm_sum = (_to(part[k], dev)
                                           for k in ("loss_sum", "pen_sum", "norm_sum"))
            norm_count, skipped, seen, start, checked = (
                int(part[k]) for k in ("norm_count", "skipped", "seen", "begin", "checked"))
            outs = [t.to(dev) for t in part["outs"]]
            targets = [t.to(dev) for t in part["targets"]]
            for m, ms in zip(metrics, part["metrics"], strict=True):
                vars(m).update({k: _to(v, dev) for k, v in ms.items()})
        reason = None
        for begin in range(start, n_used, batch_size):
            idx = perm[begin : begin + batch_size]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            size = xb.shape[0]
            if want_begin:
                cbs.dispatch("on_batch_begin", global_step, {"size": size})
            r = step(xb, yb, global_step, begin == 0 or global_step % GRAD_NORM_EVERY == 0)
            if not r.ok:
                if not skip:
                    loss = float(r.loss)  # already on the host on this (synchronizing) path
                    where = locate_non_finite(model, xb, loss=loss)
                    reason = f"non_finite at step {global_step}, {where}"
                    opt.zero_grad(set_to_none=True)
                    break
                skipped += 1
                opt.zero_grad(set_to_none=True)
                global_step += 1
                if sched is not None:
                    set_learning_rate(opt, sched, global_step)
                if want_end:
                    cbs.dispatch("on_batch_end", global_step - 1,
                                 {"loss": r.loss, "size": size, "skipped": True})
                if trainer.stop_training:
                    break
                continue
            global_step += 1
            seen += size
            if sync:  # host floats: the step already read them
                loss_sum += r.loss * size
                if r.penalty is not None:
                    pen_sum += r.penalty * size
            else:  # on the device, checked every DEVICE_CHECK_EVERY steps
                loss_sum.add_(r.loss, alpha=size)
                if r.penalty is not None:
                    pen_sum.add_(r.penalty.detach(), alpha=size)
                if global_step % DEVICE_CHECK_EVERY == 0:
                    if not math.isfinite(loss_sum.item()):
                        reason = self._late(checked, global_step, xb)
                        break
                    checked = global_step
            if r.grad_norm is not None:
                norm_sum = norm_sum + r.grad_norm
                norm_count += 1
            if metrics:
                outs.append(r.outputs)
                targets.append(yb)
                if len(outs) >= METRIC_FLUSH:
                    self._update_metrics(outs, targets)
            if after:
                if want_end:
                    cbs.dispatch("on_batch_end", global_step - 1, {"loss": r.loss, "size": size})
                if (every is not None and global_step % every == 0
                        and begin + batch_size < n_used):  # the epoch's end saves anyway
                    self._save_partial(shuffle_state, {
                        "begin": begin + batch_size, "loss_sum": loss_sum, "pen_sum": pen_sum,
                        "norm_sum": norm_sum, "norm_count": norm_count, "skipped": skipped,
                        "seen": seen, "checked": checked, "outs": outs, "targets": targets,
                    }, global_step)
            if trainer.stop_training:
                break
        trainer.global_step = global_step
        if reason is None and not sync and not math.isfinite(float(loss_sum)):
            reason = self._late(checked, global_step, xb)
        self._update_metrics(outs, targets)
        logs: dict[str, float] = {"loss": float(loss_sum) / seen if seen else math.nan}
        if self.regularized:
            logs["penalty"] = float(pen_sum) / seen if seen else math.nan
        for m in metrics:
            logs[m.name] = m.compute()
            m.reset()
        if reason is not None:
            return logs, reason
        if self.val is not None:
            vlogs = run_eval(model, self.val[0], self.val[1], self.loss_fn, self.val_metrics,
                             max(batch_size, 256))
            logs.update({f"val_{k}": v for k, v in vlogs.items()})
        logs["lr"] = float(sched(global_step - 1)) if sched is not None else _lr(opt)
        if norm_count:
            logs["grad_norm"] = float(norm_sum) / norm_count
        if skip:
            logs["skipped_steps"] = float(skipped)
        logs["seconds"] = (time.perf_counter() - start_time
                           - (self.compile_timer[0] - compile_before))
        return logs, None

    def _save_partial(self, shuffle_state: Any, acc: dict[str, Any], global_step: int) -> None:
        """Write a mid-epoch checkpoint (see the module docstring for what it holds)."""
        if self.manager is None:
            return
        epoch = self.trainer.epoch
        acc = dict(acc, shuffle=shuffle_state,
                   metrics=[dict(vars(m)) if hasattr(m, "__dict__") else {}
                            for m in self.train_metrics])
        acc["outs"], acc["targets"] = list(acc["outs"]), list(acc["targets"])
        self.trainer.global_step = global_step
        self.manager.save(
            f"epoch-{epoch:04d}.step-{global_step:08d}", self.model, self.optimizer,
            state=self._state(epoch, partial=acc),
        )

    def _state(self, epoch: int, partial: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "epoch": epoch, "global_step": self.trainer.global_step,
            "history": self.trainer.history.state_dict(), "rng": rng_state(self.gen),
            "callbacks": self.callbacks.state_dict(),
            "plateau": self.plateau.state_dict() if self.plateau is not None else None,
            "config": self._config(), "partial": partial,
        }

    def _late(self, checked: int, global_step: int, xb: torch.Tensor) -> str:
        """The reason of a non-finite loss found by a periodic check (device path): the step
        is only known to lie in a window, and the state may have spread the fault already."""
        where = locate_non_finite(self.model, xb)
        return f"non_finite between steps {checked} and {global_step - 1}, {where}"

    def _update_metrics(self, outs: list[torch.Tensor], targets: list[torch.Tensor]) -> None:
        if outs:
            out, target = torch.cat(outs), torch.cat(targets)
            for m in self.train_metrics:
                m.update(out, target)
            outs.clear()
            targets.clear()

    def end_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """Record the epoch, run callbacks, update a plateau scheduler, checkpoint."""
        history, opt = self.trainer.history, self.optimizer
        history.append(logs, epoch)
        self.callbacks.dispatch("on_epoch_end", epoch, logs)
        if self.plateau is not None:
            key = "val_loss" if "val_loss" in logs else "loss"
            new_lr = self.plateau.update(logs[key], _lr(opt))
            for group in opt.param_groups:
                group["lr"] = new_lr
        if self.manager is not None:
            self.manager.save(f"epoch-{epoch + 1:04d}", self.model, opt,
                              state=self._state(epoch + 1))


def _to(value: Any, device: torch.device) -> Any:
    """A restored accumulator on the training device (numbers are left as they are)."""
    return value.to(device) if isinstance(value, torch.Tensor) else value


def _unbuilt(*args: Any) -> StepResult:
    raise RuntimeError("the training step was not built")
