"""fit with the gradient monitor: attach, sample, detach, report in history.health."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steadygrad.diagnostics.monitor import DEFAULT_EVERY, DENSE_START, GradientMonitor
from steadygrad.errors import ConfigError
from steadygrad.train.loop import fit


def _hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def _sampled(steps: int, every: int, dense: int = DENSE_START) -> list[int]:
    """The first ``dense`` steps, then one in ``every``."""
    return [i for i in range(steps) if i < dense or i % every == 0]


def test_monitor_int_samples_every_n_steps_and_detaches(blobs, make_mlp):
    x, y = blobs
    model = make_mlp()
    h = fit(model, (x, y), epochs=2, batch_size=8, monitor=4, verbose=0, seed=0)  # 24 steps
    assert h.health is not None
    assert h.health.series.steps == _sampled(24, 4)
    assert h.health.series.steps == [*range(16), 16, 20]
    assert h.health.series.layers  # per-layer rows
    assert _hooks(model) == 0


def test_monitor_true_and_instance(blobs, make_mlp):
    x, y = blobs
    model = make_mlp()
    h = fit(model, (x, y), epochs=1, batch_size=8, monitor=True, verbose=0)
    assert h.health.series.steps == _sampled(12, DEFAULT_EVERY)
    mon = GradientMonitor(model, every=5, dense_start=0)
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


def test_fit_defaults_attach_the_sampling_monitor(blobs, make_mlp):
    from steadygrad.train.setup import DEFAULT_MONITOR

    assert DEFAULT_MONITOR is True  # issue 4: on by default, with sampling
    x, y = blobs
    model = make_mlp()
    h = fit(model, (x, y), epochs=3, batch_size=8, verbose=0, seed=0)  # 36 steps
    s = h.health.series
    assert s.steps == _sampled(36, DEFAULT_EVERY)
    assert s.layers == ["0", "2"]  # per-layer rows, forward order
    assert s.values["grad_rms"].shape == (len(s.steps), 2)
    assert np.isfinite(s.values["grad_rms"]).all() and np.isfinite(s.values["act_std"]).all()
    assert h.health.meta["steps"] == 36
    assert _hooks(model) == 0


def test_non_finite_stop_is_localized_in_history_health(blobs, make_mlp):
    from steadygrad.train.callbacks import Callback

    x, y = blobs
    model = make_mlp()

    class InjectNaN(Callback):
        def on_batch_end(self, step, logs):
            if step == 4:
                with torch.no_grad():
                    model[2].weight[0, 0] = float("nan")

    with pytest.warns(RuntimeWarning, match="training stopped"):
        h = fit(model, (x, y), epochs=2, batch_size=8, monitor=1, callbacks=[InjectNaN()],
                verbose=0, seed=0)
    assert h.stopped_reason.startswith("non_finite at step 5")
    s = h.health.series
    assert s.steps[-1] == 5  # the failing step was collected before zero_grad
    # weight[0, 0] feeds output unit 0 only (NaN * 0 is NaN): exactly one non-finite unit
    assert s.values["act_nonfinite"][-1].tolist() == [0.0, 1.0]
    found = [f for f in h.health.findings if f.kind == "non_finite"]
    assert len(found) == 1 and found[0].layers == ("2",) and found[0].first_step == 5
    assert _hooks(model) == 0


def _stalled_net() -> torch.nn.Module:
    """ReLU biases at -6 (no hidden unit fires) and an output bias far from the class
    frequencies: the loss drops from ~5.4 to the chance level (ln 4) and stays there."""
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32),
                              torch.nn.ReLU(), torch.nn.Linear(32, 4))
    with torch.no_grad():
        net[0].bias.fill_(-6.0)
        net[2].bias.fill_(-6.0)
        net[4].bias.copy_(torch.tensor([8.0, 0.0, 0.0, 0.0]))
    return net


def test_fit_judges_progress_against_chance_level_like_diagnose():
    from steadygrad.diagnostics.diagnose import diagnose

    torch.manual_seed(0)
    x, y = torch.randn(512, 16), torch.randint(0, 4, (512,))
    freq = np.bincount(y.numpy()) / len(y)
    chance = float(-(freq * np.log(freq)).sum())  # entropy of the class frequencies
    h = fit(_stalled_net(), (x, y), epochs=8, batch_size=32, optimizer="sgd",
            learning_rate=0.1, verbose=0, seed=0)  # default monitor, 128 steps
    assert h.health.meta["baseline_loss"] == pytest.approx(chance, rel=1e-12)
    assert h["loss"][0] > 2 * chance and abs(h["loss"][-1] - chance) < 0.05  # stalled
    net = _stalled_net()
    rep = diagnose(net, x, y, steps=128, batch_size=32, every=DEFAULT_EVERY, seed=0,
                   optimizer=torch.optim.SGD(net.parameters(), lr=0.1))
    got = [(f.kind, f.severity) for f in h.health.findings]
    assert got == [(f.kind, f.severity) for f in rep.findings]
    assert ("dead_units", "warning") in got
    # a monitor passed in keeps its own (here: no) baseline; against the first loss the
    # stalled run reads as learning and the same symptom is only info
    net = _stalled_net()
    h = fit(net, (x, y), epochs=8, batch_size=32, optimizer="sgd", learning_rate=0.1,
            verbose=0, seed=0, monitor=GradientMonitor(net))
    assert h.health.meta["baseline_loss"] is None
    assert ("dead_units", "info") in [(f.kind, f.severity) for f in h.health.findings]
