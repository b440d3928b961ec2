"""fit with the gradient monitor: attach, sample, detach, report in history.health."""

from __future__ import annotations

import pytest
import torch

from steadygrad.diagnostics.monitor import DEFAULT_EVERY, GradientMonitor
from steadygrad.errors import ConfigError
from steadygrad.train.loop import fit


def _hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_monitor_int_samples_every_n_steps_and_detaches(blobs, make_mlp):
    x, y = blobs
    model = make_mlp()
    h = fit(model, (x, y), epochs=2, batch_size=8, monitor=4, verbose=0, seed=0)
    assert h.health is not None
    assert h.health.series.steps == list(range(0, 24, 4))
    assert h.health.series.layers  # per-layer rows
    assert _hooks(model) == 0


def test_monitor_true_and_instance(blobs, make_mlp):
    x, y = blobs
    model = make_mlp()
    h = fit(model, (x, y), epochs=1, batch_size=8, monitor=True, verbose=0)
    assert h.health.series.steps == list(range(0, 12, DEFAULT_EVERY))
    mon = GradientMonitor(model, every=5)
    h = fit(model, (x, y), epochs=1, batch_size=8, monitor=mon, verbose=0)
    assert h.health.series.steps == [0, 5, 10]
    assert _hooks(model) == 0


def test_monitor_detached_after_an_error(blobs, make_mlp):
    from steadygrad.train.callbacks import Callback

    x, y = blobs
    model = make_mlp()

    class Boom(Callback):
        def on_batch_end(self, step, logs):
            if step == 2:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fit(model, (x, y), epochs=1, batch_size=8, monitor=1, callbacks=[Boom()], verbose=0)
    assert _hooks(model) == 0


def test_monitor_bad_value(blobs, make_mlp):
    x, y = blobs
    with pytest.raises(ConfigError, match="monitor"):
        fit(make_mlp(), (x, y), monitor="yes")
