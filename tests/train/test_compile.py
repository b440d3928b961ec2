"""compile=True: the compiled step follows the eager loss trajectory (compiling takes 10-70 s
on CPU, hence slow)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from steadygrad.train.loop import fit


def _run(blobs, compile: bool, **kw):
    x, y = blobs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16, bias=False), nn.BatchNorm1d(16), nn.ELU(),
                          nn.Linear(16, 3))
    h = fit(model, (x, y), epochs=2, batch_size=10, seed=0, verbose=0, compile=compile,
            optimizer={"name": "nadam", "learning_rate": 0.01, "global_clipnorm": 1.0},
            schedule="cosine", **kw)
    return model, h


@pytest.mark.slow
def test_compiled_step_matches_eager(blobs):
    eager, h_eager = _run(blobs, False, monitor=3)
    compiled, h_comp = _run(blobs, True, monitor=3)  # monitored steps run eagerly
    assert h_comp["loss"] == pytest.approx(h_eager["loss"], rel=1e-5)
    assert h_comp["grad_norm"] == pytest.approx(h_eager["grad_norm"], rel=1e-4)
    assert h_comp["lr"] == h_eager["lr"]
    for a, b in zip(eager.parameters(), compiled.parameters(), strict=False):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert h_comp.compile_seconds > 0 and h_eager.compile_seconds is None
    assert h_comp.health.series.steps == h_eager.health.series.steps


@pytest.mark.slow
def test_compiled_plain_sgd_with_schedule_and_max_norm_matches_eager(blobs):
    from steadygrad.nn.build import mlp

    x, y = blobs

    def run(compile: bool):
        model = mlp(4, (16, 16), num_outputs=3, max_norm=0.5, l2=0.01, seed=0)
        h = fit(model, (x, y), epochs=2, batch_size=10, seed=0, verbose=0, compile=compile,
                optimizer={"name": "sgd", "learning_rate": 0.1}, schedule="exponential",
                monitor=False)
        return model, h

    (eager, h_eager), (comp, h_comp) = run(False), run(True)
    assert h_comp["loss"] == pytest.approx(h_eager["loss"], rel=1e-5)
    assert h_comp["lr"] == pytest.approx(h_eager["lr"], rel=1e-6)
    for a, b in zip(eager.parameters(), comp.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for name, p in comp.named_parameters():  # max-norm held after every compiled update
        if name.endswith("weight") and p.shape[0] == 16:
            assert p.norm(dim=1).max() <= 0.5 + 1e-5


@pytest.mark.slow
def test_compiled_flat_step_leaves_flat_mode_when_a_callback_freezes_a_layer(blobs):
    """A frozen parameter must stop moving, as in eager training; afterwards every tensor has
    its own storage again (the flat buffers are released when training ends)."""
    from steadygrad.train.callbacks import Callback

    class Freeze(Callback):
        def on_epoch_begin(self, epoch, logs):
            if epoch == 1:
                model[0].weight.requires_grad_(False)
                self.frozen = model[0].weight.detach().clone()

    x, y = blobs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    cb = Freeze()
    fit(model, (x, y), epochs=2, batch_size=10, seed=0, verbose=0, compile=True,
        optimizer={"name": "adam", "learning_rate": 0.01}, monitor=False, callbacks=[cb])
    torch.testing.assert_close(model[0].weight, cb.frozen, rtol=0, atol=0)
    ptrs = [p.untyped_storage().data_ptr() for p in model.parameters()]
    assert len(set(ptrs)) == len(ptrs)


@pytest.mark.slow
def test_compiled_step_retraces_when_a_callback_changes_the_model(blobs):
    """A callback puts batch norm in inference mode mid-epoch: from then on its running
    statistics stay fixed in the compiled run as in the eager one (the traced step is rebuilt
    for the new module state instead of replaying the training-mode graph)."""
    from steadygrad.train.callbacks import Callback

    class FreezeNorm(Callback):
        def __init__(self, model):
            self.model, self.frozen = model, None

        def on_batch_end(self, step, logs=None):
            if step == 4:
                self.model[1].eval()
                self.frozen = self.model[1].running_mean.clone()

    results = []
    for compile in (False, True):
        x, y = blobs
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 16, bias=False), nn.BatchNorm1d(16), nn.ELU(),
                              nn.Linear(16, 3))
        cb = FreezeNorm(model)
        fit(model, (x, y), epochs=1, batch_size=10, seed=0, verbose=0, compile=compile,
            optimizer="adam", monitor=False, callbacks=[cb])
        torch.testing.assert_close(model[1].running_mean, cb.frozen, rtol=0, atol=0)
        results.append(model)
    for a, b in zip(*(m.state_dict().values() for m in results), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_compiled_resume_is_bit_identical_to_one_run(blobs, tmp_path):
    """Issue 3's resume property in compiled mode: 4 epochs in one go equal 2 epochs, a new
    process-like start from the checkpoint, and 2 more (flat buffers are rebuilt on resume)."""
    x, y = blobs

    def run(epochs, **kw):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ELU(), nn.Linear(16, 3))
        fit(model, (x, y), epochs=epochs, batch_size=10, seed=0, verbose=0, compile=True,
            optimizer="nadam", monitor=False, **kw)
        return model

    whole = run(4)
    run(2, checkpoint_dir=tmp_path)
    resumed = run(4, checkpoint_dir=tmp_path, resume=True)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
