"""Callbacks: a fixed list of events with no-op defaults, and a dispatcher that skips no-ops.

Subclass :class:`Callback` and override only the events you need. :class:`CallbackList`
looks, once, at which events each callback overrides; the training loop asks
``callbacks.wants("on_batch_end")`` before the epoch and pays nothing per step for events
nobody overrides. A callback stops training by setting ``trainer.stop_training = True`` or by
returning ``True`` from an event. ``state_dict``/``load_state_dict`` carry its state across a
checkpoint/resume.

Events, in order: ``on_train_begin(logs)``, then per epoch ``on_epoch_begin(epoch, logs)``,
per batch ``on_batch_begin(step, logs)`` / ``on_batch_end(step, logs)``,
``on_epoch_end(epoch, logs)``; finally ``on_train_end(logs)`` (always, also after an error).
``step`` is the global step (0-based, counted over all epochs); ``epoch`` is 0-based.

Example:
    >>> class Stopper(Callback):
    ...     def on_epoch_end(self, epoch, logs):
    ...         return epoch >= 1  # stop after the second epoch
    >>> cbs = CallbackList([Stopper()], Trainer(model=None))
    >>> cbs.wants("on_epoch_end"), cbs.wants("on_batch_end")
    (True, False)
    >>> cbs.dispatch("on_epoch_end", 0, {}), cbs.dispatch("on_epoch_end", 1, {})
    (False, True)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

from steadygrad._registry import Registry
from steadygrad.errors import ConfigError

__all__ = ["CALLBACKS", "EVENTS", "Callback", "CallbackList", "Logs", "Trainer"]

Logs = dict[str, Any]

EVENTS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_batch_begin",
    "on_batch_end",
)

#: Registry of built-in callback classes by name (filled by ``builtin_callbacks``).
CALLBACKS: Registry[type] = Registry("callback")


class Trainer:
    """What callbacks see of the running fit: model, optimizer, history and the stop flag.

    Attributes:
        model: the module being trained.
        optimizer: the torch optimizer (None outside ``fit``).
        history: the :class:`~steadygrad.train.history.History` being written.
        stop_training: set to True to end training after the current batch/epoch.
        epoch: the current epoch (0-based). global_step: optimizer steps taken so far.
        params: the run's settings (``epochs``, ``steps_per_epoch``, ``batch_size``, ...).
        monitor: the gradient monitor, when one is attached.

    >>> t = Trainer(model=None); t.request_stop("done"); t.request_stop("later")
    >>> t.stop_training, t.stopped_reason
    (True, 'done')
    """

    def __init__(self, model: nn.Module | None, **kwargs: Any) -> None:
        self.model = model
        self.optimizer: Any = kwargs.pop("optimizer", None)
        self.history: Any = kwargs.pop("history", None)
        self.params: dict[str, Any] = kwargs.pop("params", {})
        self.monitor: Any = kwargs.pop("monitor", None)
        self.stop_training = False
        self.stopped_reason: str | None = None
        self.epoch = 0
        self.global_step = 0
        for key, value in kwargs.items():
            setattr(self, key, value)

    def request_stop(self, reason: str) -> None:
        """Stop after the current batch and record why (the first reason wins)."""
        self.stop_training = True
        if self.stopped_reason is None:
            self.stopped_reason = reason


class Callback:
    """Base class: every event is a no-op; override the ones you need.

    ``self.trainer`` is set before ``on_train_begin``. Returning ``True`` from any event asks
    the loop to stop training.

    >>> class Count(Callback):
    ...     def on_epoch_end(self, epoch, logs):
    ...         self.n = epoch + 1
    >>> Count().on_batch_end(0, {}) is None
    True
    """

    trainer: Trainer

    def set_trainer(self, trainer: Trainer) -> None:
        """Called by the dispatcher before training starts."""
        self.trainer = trainer

    def on_train_begin(self, logs: Logs) -> bool | None:
        """Before the first epoch."""
        return None

    def on_train_end(self, logs: Logs) -> bool | None:
        """After the last epoch, also when training stopped early or failed."""
        return None

    def on_epoch_begin(self, epoch: int, logs: Logs) -> bool | None:
        """Before epoch ``epoch`` (0-based)."""
        return None

    def on_epoch_end(self, epoch: int, logs: Logs) -> bool | None:
        """After epoch ``epoch``; ``logs`` holds the epoch's losses, metrics, lr, ..."""
        return None

    def on_batch_begin(self, step: int, logs: Logs) -> bool | None:
        """Before global step ``step``."""
        return None

    def on_batch_end(self, step: int, logs: Logs) -> bool | None:
        """After global step ``step``; ``logs`` holds the batch ``loss`` and ``size``."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint (JSON-able values and tensors); empty by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


class CallbackList:
    """Dispatches events to the callbacks that override them, in the order given.

    >>> CallbackList([Callback()], Trainer(None)).wants("on_batch_end")
    False
    """

    def __init__(self, callbacks: Iterable[Callback], trainer: Trainer) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise ConfigError(
                    "callbacks",
                    cb,
                    "instances of steadygrad.train.Callback",
                    hint="subclass Callback and override the events you need",
                )
            cb.set_trainer(trainer)
        self.trainer = trainer
        self.dispatched = 0
        """Dispatches that reached a callback so far (see :meth:`dispatch`)."""
        self._handlers = {
            event: [
                getattr(cb, event)
                for cb in self.callbacks
                if getattr(getattr(cb, event), "__func__", None) is not getattr(Callback, event)
            ]
            for event in EVENTS
        }

    def wants(self, event: str) -> bool:
        """True when at least one callback overrides ``event``."""
        return bool(self._handlers[event])

    def dispatch(self, event: str, *args: Any) -> bool:
        """Call ``event`` on every overriding callback; True when training should stop.

        A call that reaches a callback moves :attr:`dispatched` (the callback may have changed
        the model: a traced training step reads the model's state again when it moved)."""
        handlers = self._handlers[event]
        if handlers:
            self.dispatched += 1
        stop = False
        for handler in handlers:
            if handler(*args):
                stop = True
        if stop:
            self.trainer.stop_training = True
        return stop or self.trainer.stop_training

    def state_dict(self) -> dict[str, Any]:
        """Each callback's state, keyed by position and class name."""
        return {f"{i}:{type(cb).__name__}": cb.state_dict() for i, cb in enumerate(self.callbacks)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore states saved by :meth:`state_dict` (callbacks matched by position and class)."""
        for i, cb in enumerate(self.callbacks):
            key = f"{i}:{type(cb).__name__}"
            if key in state:
                cb.load_state_dict(state[key])
