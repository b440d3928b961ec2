"""A small progress display: a live bar with ETA and running loss on a terminal, epoch lines.

No dependency (tqdm is not used). ``mode="auto"`` draws the live bar only when the stream is a
TTY and prints nothing otherwise (logs and CI stay clean); ``mode="epoch"`` prints one line
per epoch anywhere; ``mode="bar"`` forces the live bar.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> bar = ProgressBar(mode="epoch", stream=out)
    >>> bar.params = {"epochs": 2, "steps_per_epoch": 3}
    >>> bar.on_epoch_begin(0, {}); bar.on_epoch_end(0, {"loss": 0.5, "seconds": 1.25})
    >>> print(out.getvalue().strip())
    Epoch 1/2 - 1.2s - loss 0.5000
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from steadygrad.errors import ConfigError
from steadygrad.train.callbacks import CALLBACKS, Callback, Logs

__all__ = ["ProgressBar", "format_logs"]


def format_logs(logs: Logs, skip: tuple[str, ...] = ("seconds",)) -> str:
    """``"loss 0.5000 - lr 0.01"`` from a logs dict.

    >>> format_logs({"loss": 0.5, "lr": 0.01, "seconds": 3.0})
    'loss 0.5000 - lr 0.01'
    """
    parts = []
    for key, value in logs.items():
        if key in skip:
            continue
        if key == "lr" or (abs(value) < 1e-3 and value != 0):
            parts.append(f"{key} {value:.3g}")
        else:
            parts.append(f"{key} {value:.4f}")
    return " - ".join(parts)


@CALLBACKS.register("progress_bar", "progress")
class ProgressBar(Callback):
    """Epoch and batch progress with ETA and live loss.

    Args:
        mode: ``"auto"`` (live bar on a TTY, silent otherwise), ``"bar"`` or ``"epoch"``.
        stream: where to write (default ``sys.stdout``).
        refresh: minimum seconds between two redraws of the live bar.

    >>> import io
    >>> ProgressBar(mode="auto", stream=io.StringIO()).quiet  # not a terminal
    True
    """

    def __init__(
        self, mode: str = "auto", stream: TextIO | None = None, refresh: float = 0.1
    ) -> None:
        if mode not in ("auto", "bar", "epoch"):
            raise ConfigError("mode", mode, "'auto', 'bar' or 'epoch'")
        self.stream = stream if stream is not None else sys.stdout
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.live = mode == "bar" or (mode == "auto" and isatty)
        self.quiet = mode == "auto" and not isatty
        self.refresh = refresh
        self.params: dict[str, Any] = {}
        if not self.live:  # no per-batch work at all
            self.on_batch_end = Callback.on_batch_end.__get__(self)  # type: ignore[method-assign]
        if self.quiet:
            self.on_epoch_end = Callback.on_epoch_end.__get__(self)  # type: ignore[method-assign]
            self.on_epoch_begin = Callback.on_epoch_begin.__get__(self)  # type: ignore[method-assign]

    def on_train_begin(self, logs: Logs) -> None:
        self.params = dict(getattr(self.trainer, "params", {}) or {})

    def on_epoch_begin(self, epoch: int, logs: Logs) -> None:
        self._epoch = epoch
        self._start = time.perf_counter()
        self._last = 0.0
        self._seen = 0
        self._loss_sum = 0.0
        self._count = 0

    def on_batch_end(self, step: int, logs: Logs) -> None:
        self._seen += 1
        loss = logs.get("loss")
        if loss is not None:
            size = logs.get("size", 1)
            self._loss_sum += float(loss) * size
            self._count += size
        now = time.perf_counter()
        if now - self._last < self.refresh:
            return
        self._last = now
        total = int(self.params.get("steps_per_epoch", 0)) or self._seen
        done = min(self._seen, total)
        width = 24
        filled = int(width * done / total)
        elapsed = now - self._start
        eta = elapsed / done * (total - done) if done else math.nan
        loss_text = f" - loss {self._loss_sum / self._count:.4f}" if self._count else ""
        self.stream.write(
            f"\rEpoch {self._epoch + 1}/{self.params.get('epochs', '?')} "
            f"[{'=' * filled}{'>' if filled < width else ''}{' ' * (width - filled - 1)}] "
            f"{done}/{total} - ETA {eta:.0f}s{loss_text}   "
        )
        self.stream.flush()

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        seconds = logs.get("seconds", time.perf_counter() - self._start)
        prefix = "\r" if self.live else ""
        self.stream.write(
            f"{prefix}Epoch {epoch + 1}/{self.params.get('epochs', '?')} - {seconds:.1f}s - "
            f"{format_logs(logs)}\n"
        )
        self.stream.flush()
