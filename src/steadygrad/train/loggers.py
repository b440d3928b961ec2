"""History loggers: CSV and JSON Lines files that survive crashes, and TensorBoard.

The file loggers append one row per epoch (flushed and fsync'ed). On the first write of a run
they repair the file: a torn last line (a crash in the middle of a write) is dropped, and so
are rows for epochs at or after the one being written (they belong to work that a resumed run
is redoing), so a crash + resume leaves exactly one row per epoch. The repair rewrites the file
atomically.

Example:
    >>> import tempfile, json
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "log.jsonl"
    >>> log = JSONLLogger(path)
    >>> log.on_epoch_end(0, {"loss": 0.5}); log.on_epoch_end(1, {"loss": 0.25})
    >>> _ = path.open("a").write('{"epoch": 2, "lo')  # a crash mid-write
    >>> JSONLLogger(path).on_epoch_end(2, {"loss": 0.125})
    >>> [json.loads(line)["loss"] for line in path.read_text().splitlines()]
    [0.5, 0.25, 0.125]
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from steadygrad._atomic import atomic_write_bytes
from steadygrad.train.callbacks import CALLBACKS, Callback, Logs

__all__ = ["CSVLogger", "JSONLLogger", "TensorBoard"]


def _append_line(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _epoch_of(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@CALLBACKS.register("jsonl_logger", "json_logger")
class JSONLLogger(Callback):
    """Append ``{"epoch": e, **logs}`` as one JSON line per epoch to ``path``.

    Args:
        path: the ``.jsonl`` file (parent folders are created).
        append: keep earlier rows (for epochs before the current one); False starts fresh.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "h.jsonl"
    >>> JSONLLogger(p).on_epoch_end(0, {"loss": 1.5}); p.read_text()
    '{"epoch": 0, "loss": 1.5}\\n'
    """

    def __init__(self, path: str | Path, append: bool = True) -> None:
        self.path = Path(path)
        self.append = append
        self._started = False

    def _start(self, epoch: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keep: list[str] = []
        if self.append and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines(keepends=True):
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # torn line
                if not line.endswith("\n"):
                    continue
                e = _epoch_of(row.get("epoch")) if isinstance(row, dict) else None
                if e is not None and e < epoch:
                    keep.append(line)
        atomic_write_bytes(self.path, "".join(keep).encode())
        self._started = True

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if not self._started:
            self._start(epoch)
        _append_line(self.path, json.dumps({"epoch": epoch, **logs}) + "\n")


@CALLBACKS.register("csv_logger")
class CSVLogger(Callback):
    """Append one CSV row per epoch (``epoch`` first, then the logged names) to ``path``.

    The header is written with the first row; when later epochs log new names the file is
    rewritten with the wider header (missing cells empty).

    Args:
        path: the ``.csv`` file (parent folders are created).
        append: keep earlier rows (for epochs before the current one); False starts fresh.

    >>> import tempfile; from pathlib import Path
    >>> p = Path(tempfile.mkdtemp()) / "h.csv"
    >>> log = CSVLogger(p); log.on_epoch_end(0, {"loss": 0.5}); print(p.read_text().strip())
    epoch,loss
    0,0.5
    """

    def __init__(self, path: str | Path, append: bool = True) -> None:
        self.path = Path(path)
        self.append = append
        self._fields: list[str] | None = None

    def _rewrite(self, fields: list[str], rows: list[dict[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.path, buffer.getvalue().encode())
        self._fields = fields

    def _existing(self, epoch: int) -> tuple[list[str], list[dict[str, Any]]]:
        if not (self.append and self.path.exists()):
            return [], []
        text = self.path.read_text(encoding="utf-8")
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines = lines[:-1]  # torn last line
        reader = csv.DictReader(lines)
        fields = list(reader.fieldnames or [])
        rows = []
        for row in reader:
            e = _epoch_of(row.get("epoch"))
            if e is not None and e < epoch and None not in row and None not in row.values():
                rows.append(row)
        return fields, rows

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        row = {"epoch": epoch, **logs}
        if self._fields is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fields, rows = self._existing(epoch)
            fields = fields or ["epoch"]
            self._rewrite(fields + [k for k in row if k not in fields], rows)
        assert self._fields is not None
        if any(k not in self._fields for k in row):
            _, rows = self._existing(epoch + 1) if self.append else ([], [])
            self._rewrite(self._fields + [k for k in row if k not in self._fields], rows)
        buffer = io.StringIO()
        csv.DictWriter(buffer, fieldnames=self._fields, lineterminator="\n", restval="").writerow(
            row
        )
        _append_line(self.path, buffer.getvalue())


@CALLBACKS.register("tensorboard")
class TensorBoard(Callback):
    """Write epoch logs (and the gradient monitor's per-layer series) as TensorBoard scalars.

    Needs the optional ``tensorboard`` package (``pip install 'steadygrad[tensorboard]'``);
    constructing the callback without it raises :class:`ImportError` saying so.

    Args:
        log_dir: the event-file directory.

    Tags: ``epoch/<name>`` per epoch; at the end of training, if a monitor was attached, its
    report in the scheme of :mod:`steadygrad.integrations.tensorboard` (``health/grad_norm``,
    ``health/<series>/<layer>``, ``health/findings/<severity>``, activation histograms).

    >>> import importlib.util, tempfile
    >>> if importlib.util.find_spec("tensorboard"):
    ...     cb = TensorBoard(tempfile.mkdtemp())
    """

    def __init__(self, log_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise ImportError(
                "TensorBoard logging needs the 'tensorboard' package: "
                "pip install 'steadygrad[tensorboard]' (or pip install tensorboard)"
            ) from e
        self.log_dir = Path(log_dir)
        self._writer_cls = SummaryWriter
        self.writer: Any = None

    def on_train_begin(self, logs: Logs) -> None:
        self.writer = self._writer_cls(log_dir=str(self.log_dir))

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        for key, value in logs.items():
            self.writer.add_scalar(f"epoch/{key}", float(value), epoch)
        self.writer.flush()

    def on_train_end(self, logs: Logs) -> None:
        if self.writer is None:
            return
        monitor = getattr(self.trainer, "monitor", None)
        if monitor is not None:
            from steadygrad.integrations.tensorboard import write_health

            write_health(monitor.report(), self.writer)
        self.writer.close()
        self.writer = None
