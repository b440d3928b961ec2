"""The step's optional pieces: schedule, penalties, constraints, clipping, plateau."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from steadygrad.nn import constraints, regularizers
from steadygrad.optim.plateau import PerformanceScheduler
from steadygrad.optim.schedules import one_cycle
from steadygrad.train.builtin_callbacks import LRLogger
from steadygrad.train.callbacks import Callback
from steadygrad.train.loop import fit


def test_schedule_sets_lr_exactly_each_step(blobs, make_mlp):
    x, y = blobs
    logger = LRLogger()
    schedule = lambda t: 0.1 / (1 + t)  # noqa: E731
    h = fit(make_mlp(), (x, y), epochs=2, batch_size=10, schedule=schedule, callbacks=[logger],
            verbose=0, seed=0)
    steps = 2 * 10
    assert logger.steps == list(range(steps))
    assert logger.lrs == [schedule(t) for t in range(steps)]
    assert h["lr"] == [schedule(9), schedule(19)]  # the rate of each epoch's last step


def test_one_cycle_by_name_cycles_momentum(blobs, make_mlp):
    x, y = blobs
    logger = LRLogger()
    fit(make_mlp(), (x, y), epochs=3, batch_size=16,
        optimizer={"name": "sgd", "learning_rate": 0.5, "momentum": 0.9},
        schedule={"name": "one_cycle"}, callbacks=[logger], verbose=0, seed=0)
    oracle = one_cycle(0.5, total_steps=3 * 6)
    assert logger.lrs == [oracle(t) for t in range(18)]
    assert logger.momenta == [oracle.momentum(t) for t in range(18)]


def test_one_cycle_sets_beta1_for_adam(blobs, make_mlp):
    x, y = blobs
    logger = LRLogger()
    fit(make_mlp(), (x, y), epochs=1, batch_size=16, optimizer="adam", learning_rate=0.01,
        schedule="one_cycle", callbacks=[logger], verbose=0, seed=0)
    oracle = one_cycle(0.01, total_steps=6)
    assert logger.momenta == [oracle.momentum(t) for t in range(6)]


def test_penalty_reported_separately_and_equals_closed_form(blobs, make_mlp):
    x, y = blobs
    model = make_mlp()
    regularizers.attach(model[0], l1=0.01, l2=0.02)
    w = model[0].weight.detach().clone()
    h = fit(model, (x, y), epochs=1, batch_size=96,
            optimizer={"name": "sgd", "learning_rate": 1e-12}, verbose=0, seed=0)
    closed_form = 0.01 * w.abs().sum().item() + 0.02 * w.square().sum().item()
    assert h["penalty"][0] == pytest.approx(closed_form, rel=1e-5)
    with torch.no_grad():
        data_loss = nn.functional.cross_entropy(model(x), y).item()
    assert h["loss"][0] == pytest.approx(data_loss, rel=1e-5)  # data loss only


def test_penalty_gradient_reaches_the_weights(blobs, make_mlp):
    """With the data loss's gradient removed (zero lr would hide it), l2 alone shrinks w."""
    x, y = blobs
    torch.manual_seed(0)
    model = make_mlp()
    regularizers.attach(model[0], l2=10.0)
    norm0 = model[0].weight.norm().item()
    fit(model, (x, y), epochs=2, verbose=0, seed=0)
    assert model[0].weight.norm().item() < 0.5 * norm0


class _NormSpy(Callback):
    def __init__(self, layer: nn.Linear) -> None:
        self.layer = layer
        self.max_norms: list[float] = []

    def on_batch_end(self, step, logs):
        self.max_norms.append(self.layer.weight.norm(dim=1).max().item())


def test_max_norm_holds_after_every_step(blobs, make_mlp):
    x, y = blobs
    model = make_mlp()
    constraints.attach(model[0], max_norm=0.5)
    spy = _NormSpy(model[0])
    fit(model, (x, y), epochs=2, batch_size=8, optimizer={"name": "sgd", "learning_rate": 0.5},
        callbacks=[spy], verbose=0, seed=0)
    assert len(spy.max_norms) == 2 * 12
    assert max(spy.max_norms) <= 0.5 + 1e-6
    assert max(spy.max_norms) > 0.45  # the constraint is active, not vacuous


class _GradSpy(Callback):
    """Records torch's own global grad norm just before each clipped step (via a hook)."""

    def __init__(self, params):
        self.params = list(params)
        self.norms: list[float] = []
        self.handle = None

    def on_train_begin(self, logs):
        opt = self.trainer.optimizer

        def pre_step(optimizer, args, kwargs):
            # gradients are clipped already here: record their (post-clip) norm
            self.norms.append(torch.nn.utils.get_total_norm([p.grad for p in self.params]).item())

        self.handle = opt.register_step_pre_hook(pre_step)

    def on_train_end(self, logs):
        self.handle.remove()


def test_clipping_applied_and_preclip_norm_recorded(blobs, make_mlp):
    x, y = blobs
    torch.manual_seed(0)
    model = make_mlp()
    reference = make_mlp()
    reference.load_state_dict(model.state_dict())
    spy = _GradSpy(model.parameters())
    h = fit(model, (x, y), epochs=1, batch_size=96,
            optimizer={"name": "sgd", "learning_rate": 0.1, "global_clipnorm": 0.01},
            callbacks=[spy], verbose=0, seed=0)
    # the same first step by hand: torch's pre-clip norm is what the history records
    loss = nn.functional.cross_entropy(reference(x), y)
    loss.backward()
    preclip = torch.nn.utils.get_total_norm([p.grad for p in reference.parameters()]).item()
    assert preclip > 0.01
    assert h["grad_norm"][0] == pytest.approx(preclip, rel=1e-5)
    assert spy.norms[0] == pytest.approx(0.01, rel=1e-4)  # clipped before the step


def test_plateau_scheduler_reduces_lr(blobs, make_mlp):
    x, y = blobs
    plateau = PerformanceScheduler(factor=0.5, patience=0, min_delta=10.0)  # never "improves"
    h = fit(make_mlp(), (x, y), epochs=3, optimizer={"name": "sgd", "learning_rate": 0.1},
            schedule=plateau, verbose=0, seed=0)
    # epoch 0 sets the reference; each later epoch fails to improve by 10 and halves the rate
    assert h["lr"] == pytest.approx([0.1, 0.1, 0.05])
