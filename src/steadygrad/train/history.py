"""The record of a training run: one row of logs per epoch.

``history["loss"]`` is the list of per-epoch values (Keras's ``History.history[...]``),
``history.best("val_loss")`` the best epoch, ``history.to_csv(path)`` a table. Fields the
trainer writes: ``loss`` (data loss), ``penalty`` (regularization, when any), the metrics,
``val_loss`` and ``val_<metric>``, ``lr`` (the rate of the epoch's last step), ``grad_norm``
(mean pre-clip global gradient norm: over every step when clipping is on, else over the
epoch's first step and every 16th step), ``seconds`` (excluding compilation) and, in ``skip``
mode, ``skipped_steps``. Run-level facts live in attributes: ``stopped_reason``,
``compile_seconds``, ``health`` (the monitor's report) and ``params``.

Example:
    >>> h = History()
    >>> h.append({"loss": 0.9, "val_loss": 0.8})
    >>> h.append({"loss": 0.5, "val_loss": 0.85})
    >>> h["loss"], h.best("val_loss")
    ([0.9, 0.5], Best(epoch=0, value=0.8))
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from steadygrad.errors import ConfigError

__all__ = ["Best", "History", "metric_direction"]

_MIN_SUFFIXES = ("loss", "mae", "mse", "error", "penalty", "seconds", "grad_norm", "skipped_steps")
_MAX_SUFFIXES = ("accuracy", "acc", "auc", "precision", "recall", "f1", "r2")


def metric_direction(name: str) -> str:
    """``"min"`` or ``"max"``: which way is better for a logged quantity, from its name.

    >>> metric_direction("val_loss"), metric_direction("val_accuracy")
    ('min', 'max')
    """
    base = name.removeprefix("val_")
    if base.endswith(_MIN_SUFFIXES):
        return "min"
    if base.endswith(_MAX_SUFFIXES):
        return "max"
    raise ConfigError(
        "mode", "auto", "'min' or 'max'", hint=f"cannot tell whether {name!r} should go up or down"
    )


class Best(NamedTuple):
    """The best epoch (0-based) and its value.

    >>> Best(2, 0.5).epoch
    2
    """

    epoch: int
    value: float


class History:
    """Per-epoch logs of a training run.

    Attributes:
        history: ``{name: [value per epoch]}``; an epoch without a value has ``nan``.
        epoch: the epoch indices (0-based) that were recorded.
        stopped_reason: why training ended early (``None`` when it ran all epochs).
        compile_seconds: time spent compiling the step (``compile=True``), else ``None``.
        health: the gradient monitor's report, when a monitor was attached.
        params: the run's settings (epochs, batch size, steps per epoch, ...).

    >>> h = History(); h.append({"loss": 1.0}); h.append({"loss": 0.5, "val_loss": 0.7})
    >>> h["val_loss"]
    [nan, 0.7]
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.stopped_reason: str | None = None
        self.compile_seconds: float | None = None
        self.health: Any = None
        self.params: dict[str, Any] = {}

    def append(self, logs: dict[str, float], epoch: int | None = None) -> None:
        """Record one epoch's logs (keys new to the history are back-filled with ``nan``)."""
        n = len(self.epoch)
        for key, value in logs.items():
            if key not in self.history:
                self.history[key] = [math.nan] * n
            self.history[key].append(float(value))
        for values in self.history.values():
            if len(values) == n:
                values.append(math.nan)
        self.epoch.append(n if epoch is None else epoch)

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.history:
            raise KeyError(f"{key!r} was not logged; logged: {', '.join(self.history)}")
        return self.history[key]

    def __contains__(self, key: object) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epoch)

    def __iter__(self) -> Iterator[str]:
        return iter(self.history)

    def keys(self) -> list[str]:
        """The logged names, in first-logged order."""
        return list(self.history)

    def last(self) -> dict[str, float]:
        """The last epoch's logs (``{}`` before the first epoch).

        >>> h = History(); h.append({"loss": 1.0}); h.last()
        {'loss': 1.0}
        """
        return {k: v[-1] for k, v in self.history.items()} if self.epoch else {}

    def best(self, metric: str, mode: str = "auto") -> Best:
        """The epoch with the best ``metric`` (first one on ties); ``nan`` epochs are ignored.

        Args:
            metric: a logged name such as ``"val_loss"``.
            mode: ``"min"``, ``"max"`` or ``"auto"`` (from the name: losses down, accuracy up).

        >>> h = History(); h.append({"acc": 0.5}); h.append({"acc": 0.7}); h.best("acc")
        Best(epoch=1, value=0.7)
        """
        values = self[metric]
        if mode == "auto":
            mode = metric_direction(metric)
        if mode not in ("min", "max"):
            raise ConfigError("mode", mode, "'min', 'max' or 'auto'")
        finite = [(v, i) for i, v in enumerate(values) if not math.isnan(v)]
        if not finite:
            raise ValueError(f"{metric!r} has no finite value to rank")
        sign = 1.0 if mode == "min" else -1.0
        value, index = min(finite, key=lambda vi: (sign * vi[0], vi[1]))
        return Best(self.epoch[index], value)

    def rows(self) -> list[dict[str, float]]:
        """One dict per epoch, with the ``epoch`` index first."""
        keys = list(self.history)
        return [
            {"epoch": e, **{k: self.history[k][i] for k in keys}} for i, e in enumerate(self.epoch)
        ]

    def to_csv(self, path: str | Path | None = None) -> str:
        """Write the history as CSV (one row per epoch) to ``path``; returns the CSV text.

        >>> h = History(); h.append({"loss": 0.5, "lr": 0.01}); print(h.to_csv().strip())
        epoch,loss,lr
        0,0.5,0.01
        """
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["epoch", *self.history], lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text

    def state_dict(self) -> dict[str, Any]:
        """A JSON-serializable copy (for checkpoints)."""
        return {
            "history": {k: list(v) for k, v in self.history.items()},
            "epoch": list(self.epoch),
            "stopped_reason": self.stopped_reason,
            "compile_seconds": self.compile_seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.history = {k: [float(x) for x in v] for k, v in state["history"].items()}
        self.epoch = [int(e) for e in state["epoch"]]
        self.stopped_reason = state.get("stopped_reason")
        self.compile_seconds = state.get("compile_seconds")

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, keys={list(self.history)})"
