"""Callbacks: event order, skipped events, stop requests, early stopping, loggers, progress."""

from __future__ import annotations

import io
import json

import pytest
import torch

from steadygrad.errors import ConfigError
from steadygrad.train.builtin_callbacks import EarlyStopping, ModelCheckpoint
from steadygrad.train.callbacks import Callback, CallbackList, Trainer
from steadygrad.train.checkpoint import read_tensors
from steadygrad.train.loggers import CSVLogger, JSONLLogger
from steadygrad.train.loop import fit
from steadygrad.train.progress import ProgressBar


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_begin(self, logs):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs):
        self.events.append(f"epoch_begin {epoch}")

    def on_batch_begin(self, step, logs):
        self.events.append(f"batch_begin {step}")

    def on_batch_end(self, step, logs):
        self.events.append(f"batch_end {step}")

    def on_epoch_end(self, epoch, logs):
        self.events.append(f"epoch_end {epoch}")

    def on_train_end(self, logs):
        self.events.append("train_end")


def test_event_order(blobs, make_mlp):
    x, y = blobs
    rec = Recorder()
    fit(make_mlp(), (x[:8], y[:8]), epochs=2, batch_size=4, callbacks=[rec], verbose=0)
    assert rec.events == [
        "train_begin",
        "epoch_begin 0", "batch_begin 0", "batch_end 0", "batch_begin 1", "batch_end 1",
        "epoch_end 0",
        "epoch_begin 1", "batch_begin 2", "batch_end 2", "batch_begin 3", "batch_end 3",
        "epoch_end 1",
        "train_end",
    ]


def test_dispatcher_skips_events_nobody_overrides():
    class EpochOnly(Callback):
        def on_epoch_end(self, epoch, logs):
            return None

    cbs = CallbackList([EpochOnly(), Callback()], Trainer(model=None))
    assert [e for e in ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
                        "on_batch_begin", "on_batch_end") if cbs.wants(e)] == ["on_epoch_end"]
    with pytest.raises(ConfigError, match="callbacks"):
        CallbackList([object()], Trainer(model=None))  # type: ignore[list-item]


def test_loop_never_dispatches_batch_events_nobody_overrides(blobs, make_mlp, monkeypatch):
    x, y = blobs
    dispatched = []
    original = CallbackList.dispatch

    def spy(self, event, *args):
        dispatched.append(event)
        return original(self, event, *args)

    monkeypatch.setattr(CallbackList, "dispatch", spy)

    class EpochOnly(Callback):
        def on_epoch_end(self, epoch, logs):
            return None

    fit(make_mlp(), (x, y), epochs=2, batch_size=8, callbacks=[EpochOnly()], verbose=0)
    assert dispatched == ["on_train_begin", "on_epoch_end", "on_epoch_end", "on_train_end"]


@pytest.mark.parametrize("how", ["flag", "return"])
def test_callback_stops_training(how, blobs, make_mlp):
    x, y = blobs

    class StopAtStep(Callback):
        def on_batch_end(self, step, logs):
            if step == 4:
                if how == "flag":
                    self.trainer.stop_training = True
                    return None
                return True
            return None

    rec = Recorder()
    h = fit(make_mlp(), (x, y), epochs=5, batch_size=8, callbacks=[StopAtStep(), rec], verbose=0)
    assert len(h) == 1  # the interrupted epoch is still closed and logged (Keras)
    assert rec.events.count("batch_end 4") == 1 and "batch_begin 5" not in rec.events


def _drive(es: EarlyStopping, values, model=None):
    """Feed EarlyStopping a sequence of monitored values; return the epoch it stopped at."""
    trainer = Trainer(model)
    es.set_trainer(trainer)
    es.on_train_begin({})
    for epoch, v in enumerate(values):
        es.on_epoch_end(epoch, {"val_loss": v})
        if trainer.stop_training:
            return epoch
    return None


def test_early_stopping_keras_semantics():
    # patience=2: epochs 2 and 3 do not improve on 0.5 -> stop at epoch 3 (Keras docs example
    # logic: wait counts epochs since the best, stop once wait >= patience)
    assert _drive(EarlyStopping(patience=2), [1.0, 0.5, 0.6, 0.7, 0.1]) == 3
    # min_delta: 0.45 is not an improvement of more than 0.1 over 0.5
    assert _drive(EarlyStopping(patience=1, min_delta=0.1), [0.5, 0.45, 0.1]) == 1
    # patience=0 never stops after the first epoch
    assert _drive(EarlyStopping(patience=0), [1.0, 2.0]) == 1
    # baseline: improvements that do not beat the baseline do not reset wait (Keras: an
    # improving epoch never stops training, the next non-improving one may)
    values = [1.0, 0.9, 0.95, 0.97]
    assert _drive(EarlyStopping(patience=2, baseline=0.1), values) == 2
    assert _drive(EarlyStopping(patience=2), values) == 3
    # mode max inferred for accuracy
    es = EarlyStopping(monitor="val_accuracy", patience=1)
    trainer = Trainer(None)
    es.set_trainer(trainer)
    es.on_train_begin({})
    for epoch, acc in enumerate([0.5, 0.6, 0.55]):
        es.on_epoch_end(epoch, {"val_accuracy": acc})
    assert trainer.stop_training and es.best == 0.6 and es.best_epoch == 1


def test_early_stopping_restores_best_epoch_weights_exactly(blobs, make_mlp):
    x, y = blobs
    snapshots = {}

    class Snap(Callback):
        def on_epoch_end(self, epoch, logs):
            snapshots[epoch] = {k: v.clone() for k, v in self.trainer.model.state_dict().items()}

    model = make_mlp()
    h = fit(model, (x, y), validation_data=(x[:30], y[:30]), epochs=12,
            optimizer={"name": "sgd", "learning_rate": 2.0},  # noisy: val_loss goes up and down
            early_stopping={"patience": 3, "restore_best_weights": True},
            callbacks=[Snap()], verbose=0, seed=0)
    best = h.best("val_loss")
    assert best.epoch != h.epoch[-1], "test needs a run whose last epoch is not the best"
    state = model.state_dict()
    assert all(torch.equal(state[k], snapshots[best.epoch][k]) for k in state)


def test_model_checkpoint_best_only(tmp_path, blobs, make_mlp):
    x, y = blobs
    path = tmp_path / "best.safetensors"
    ckpt = ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    model = make_mlp()
    h = fit(model, (x, y), validation_data=(x[:30], y[:30]), epochs=6,
            optimizer={"name": "sgd", "learning_rate": 2.0}, callbacks=[ckpt], verbose=0, seed=0)
    improvements = sum(
        1 for i, v in enumerate(h["val_loss"]) if v < min(h["val_loss"][:i], default=float("inf"))
    )
    assert len(ckpt.saved) == improvements
    assert ckpt.best == min(h["val_loss"])
    saved = read_tensors(path)
    assert set(saved) == set(model.state_dict())
    assert not list(tmp_path.glob(".tmp-*"))


def test_csv_logger_repairs_torn_line_and_drops_redone_epochs(tmp_path):
    path = tmp_path / "h.csv"
    log = CSVLogger(path)
    for e in range(3):
        log.on_epoch_end(e, {"loss": 1.0 / (e + 1)})
    path.write_text(path.read_text() + "3,0.2")  # crash while writing epoch 3
    # a resumed run restarts at epoch 2 (its last checkpoint was after epoch 1)
    log2 = CSVLogger(path)
    log2.on_epoch_end(2, {"loss": 0.3})
    log2.on_epoch_end(3, {"loss": 0.25, "val_loss": 0.5})  # a new column widens the header
    lines = path.read_text().splitlines()
    assert lines == ["epoch,loss,val_loss", "0,1.0,", "1,0.5,", "2,0.3,", "3,0.25,0.5"]


def test_jsonl_logger_fresh_when_not_appending(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text('{"epoch": 0, "loss": 9}\n')
    log = JSONLLogger(path, append=False)
    log.on_epoch_end(0, {"loss": 1.0})
    assert [json.loads(s) for s in path.read_text().splitlines()] == [{"epoch": 0, "loss": 1.0}]


def test_progress_bar_quiet_without_tty_and_lines_in_epoch_mode(blobs, make_mlp):
    x, y = blobs
    quiet = io.StringIO()
    bar = ProgressBar(mode="auto", stream=quiet)
    cbs = CallbackList([bar], Trainer(None))
    assert not cbs.wants("on_batch_end") and not cbs.wants("on_epoch_end")
    out = io.StringIO()
    fit(make_mlp(), (x, y), epochs=2, callbacks=[ProgressBar(mode="epoch", stream=out)], verbose=0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("Epoch 2/2") and "accuracy" in lines[1]
    live = io.StringIO()
    fit(make_mlp(), (x, y), epochs=1, batch_size=8,
        callbacks=[ProgressBar(mode="bar", stream=live, refresh=0.0)], verbose=0)
    text = live.getvalue()
    assert "12/12" in text and "ETA" in text and text.endswith("\n")


@pytest.mark.slow  # importing tensorboard takes ~10 s
def test_tensorboard_writes_scalars(tmp_path, blobs, make_mlp):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from steadygrad.train.loggers import TensorBoard

    x, y = blobs
    h = fit(make_mlp(), (x, y), epochs=2, batch_size=8, callbacks=[TensorBoard(tmp_path)],
            monitor=4, verbose=0)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = events.Tags()["scalars"]
    losses = [e.value for e in events.Scalars("epoch/loss")]
    assert losses == pytest.approx(h["loss"])
    layer = h.health.series.layers[0]
    grad = [e.step for e in events.Scalars(f"health/grad_rms/{layer}")]
    assert grad == h.health.series.steps
    assert "epoch/val_loss" not in tags


def test_tensorboard_missing_package_message(monkeypatch):
    import sys

    from steadygrad.train.loggers import TensorBoard

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r"steadygrad\[tensorboard\]"):
        TensorBoard("runs")
