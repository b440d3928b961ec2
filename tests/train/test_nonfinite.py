"""Non-finite handling: stop naming the step and layer, skip, raise, checkpoints kept safe."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from steadygrad.errors import NonFiniteError
from steadygrad.train.callbacks import Callback
from steadygrad.train.checkpoint import CheckpointManager
from steadygrad.train.loop import fit
from steadygrad.train.nonfinite import locate_non_finite


class InjectNaN(Callback):
    """Puts a NaN into ``layer.weight`` after step ``at``."""

    def __init__(self, layer: nn.Linear, at: int) -> None:
        self.layer, self.at = layer, at

    def on_batch_end(self, step, logs):
        if step == self.at:
            with torch.no_grad():
                self.layer.weight[0, 0] = float("nan")


def test_stop_names_step_and_layer(blobs, make_mlp):
    x, y = blobs
    model = make_mlp()
    with pytest.warns(RuntimeWarning, match="training stopped"):
        h = fit(model, (x, y), epochs=3, batch_size=8, callbacks=[InjectNaN(model[2], 5)],
                verbose=0, seed=0)
    assert h.stopped_reason == (
        "non_finite at step 6, layer 2 (Linear '2'): non-finite parameter 'weight'"
    )
    assert len(h) == 0  # the failing epoch is not logged as if it had completed
    assert torch.isfinite(model[0].weight).all()  # the NaN step was never applied


def test_raise_mode(blobs, make_mlp):
    x, y = blobs
    model = make_mlp()
    with pytest.raises(NonFiniteError, match="step 6, layer 2"):
        fit(model, (x, y), epochs=1, batch_size=8, callbacks=[InjectNaN(model[2], 5)],
            on_non_finite="raise", verbose=0)


def test_gradient_origin_named_when_only_a_gradient_overflows(blobs, make_mlp):
    x, y = blobs
    torch.manual_seed(0)
    model = make_mlp()
    calls = {"n": 0}

    def corrupt(grad):
        calls["n"] += 1
        return grad * float("inf") if calls["n"] == 3 else grad

    model[2].weight.register_hook(corrupt)
    with pytest.warns(RuntimeWarning):
        h = fit(model, (x, y), epochs=1, batch_size=8, verbose=0,
                optimizer={"name": "sgd", "clipnorm": 100.0})  # clipping measures every step
    assert h.stopped_reason == (
        "non_finite at step 2, layer 2 (Linear '2'): non-finite gradient of 'weight'"
    )


def test_output_origin_named():
    net = nn.Sequential(nn.Linear(2, 2), nn.Softplus(beta=1.0, threshold=1e9), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.fill_(1e38)
    where = locate_non_finite(net, torch.full((1, 2), 10.0))
    assert where == "layer 0 (Linear '0'): non-finite output"


class NaNOnStep(nn.Module):
    """Identity except that its output is NaN on the n-th forward in training mode."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.n:
                return x * float("nan")
        return x


def test_skip_mode_skips_the_step_and_counts_it(blobs, make_mlp):
    x, y = blobs
    model = nn.Sequential(make_mlp(), NaNOnStep(4))
    seen = {}

    class Weights(Callback):
        def on_batch_begin(self, step, logs):
            seen[step] = model[0][0].weight.detach().clone()

    h = fit(model, (x, y), epochs=2, batch_size=8, on_non_finite="skip", callbacks=[Weights()],
            verbose=0, seed=0)
    assert h["skipped_steps"] == [1.0, 0.0]
    assert torch.equal(seen[3], seen[4])  # step 3 (the 4th forward) changed nothing
    assert not torch.equal(seen[4], seen[5])
    assert h.stopped_reason is None and len(h) == 2


def test_non_finite_state_never_overwrites_a_checkpoint(tmp_path, blobs, make_mlp):
    x, y = blobs
    model = make_mlp()

    class Corrupt(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:
                with torch.no_grad():
                    model[0].weight[0, 0] = float("inf")

    with pytest.warns(RuntimeWarning) as record:
        fit(model, (x, y), epochs=3, callbacks=[Corrupt()], checkpoint_dir=tmp_path, verbose=0)
    messages = [str(w.message) for w in record]
    assert any("not written" in m for m in messages)
    assert any(m.startswith("training stopped: non_finite at step 6") for m in messages)
    manager = CheckpointManager(tmp_path)
    assert manager.latest().name == "epoch-0001"
    assert torch.isfinite(manager.load().model_state["0.weight"]).all()


def test_terminate_on_non_finite_ends_persistent_failures_in_skip_mode(blobs, make_mlp):
    from steadygrad.train.builtin_callbacks import TerminateOnNonFinite

    x, y = blobs

    class NaNFrom(nn.Module):
        def __init__(self, start: int) -> None:
            super().__init__()
            self.start, self.calls = start, 0

        def forward(self, inp):
            if not self.training:
                return inp
            self.calls += 1  # the n-th training forward is step n - 1
            return inp * float("nan") if self.calls >= self.start else inp

    # one bad batch is skipped and training goes on ...
    h = fit(nn.Sequential(make_mlp(), NaNOnStep(3)), (x, y), epochs=1, batch_size=8,
            on_non_finite="skip", callbacks=[TerminateOnNonFinite(max_consecutive=2)], verbose=0)
    assert h.stopped_reason is None and h["skipped_steps"] == [1.0]
    # ... a run that keeps failing is ended after 2 in a row (steps 4 and 5)
    h = fit(nn.Sequential(make_mlp(), NaNFrom(5)), (x, y), epochs=3, batch_size=8,
            on_non_finite="skip", callbacks=[TerminateOnNonFinite(max_consecutive=2)], verbose=0)
    assert h.stopped_reason == "non_finite batch loss at step 5 (2 in a row)"
    assert h["skipped_steps"] == [2.0]


def test_device_accumulation_path(blobs, make_mlp, monkeypatch):
    """The accelerator path (no per-step host sync) gives the same history, and detects a
    NaN at the next check (every 50 steps and at the epoch's end), naming the step window;
    by then the NaN has reached every layer, so the first layer is named."""
    import steadygrad.train.loop as loop

    x, y = blobs
    torch.manual_seed(0)
    a = make_mlp()
    b = make_mlp()
    b.load_state_dict(a.state_dict())
    h_sync = fit(a, (x, y), epochs=2, batch_size=8, seed=0, verbose=0)
    monkeypatch.setattr(loop, "SYNC_ON_CPU", False)
    h_dev = fit(b, (x, y), epochs=2, batch_size=8, seed=0, verbose=0)
    for key in ("loss", "accuracy", "grad_norm", "lr"):
        assert h_dev[key] == pytest.approx(h_sync[key], rel=1e-6)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    model = make_mlp()
    with pytest.warns(RuntimeWarning, match="training stopped"):
        h = fit(model, (x, y), epochs=10, batch_size=8, callbacks=[InjectNaN(model[2], 60)],
                verbose=0)
    # NaN put in after step 60; epoch 5 holds steps 60..71, the check at step 50 and the end of
    # epoch 4 (step 59) were clean
    assert h.stopped_reason == (
        "non_finite between steps 60 and 71, layer 0 (Linear '0'): non-finite parameter 'weight'"
    )
    assert len(h) == 5
