"""``diagnose``: train a model for a few steps under the monitor and return its health report.

This is what ``steadygrad diagnose`` calls. It runs a plain PyTorch loop (forward, loss,
backward, optional global-norm clipping, optimizer step, ``monitor.step(loss)``) so that the
step where a NaN appears is still collected and localized.

Example:
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    >>> x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    >>> rep = diagnose(net, x, y, steps=6, learning_rate=0.05)
    >>> rep.series.steps, rep.meta["loss"]
    ([0, 1, 2, 3, 4, 5], 'cross_entropy')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from steadygrad.diagnostics.monitor import GradientMonitor
from steadygrad.diagnostics.report import HealthReport
from steadygrad.diagnostics.rules import Thresholds
from steadygrad.errors import ConfigError, DataError

__all__ = ["diagnose"]


def _check_pos_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(name, value, "an int >= 1")
    return value


def diagnose(
    model: nn.Module,
    data_x: torch.Tensor,
    data_y: torch.Tensor,
    *,
    steps: int = 100,
    batch_size: int = 32,
    optimizer: str | torch.optim.Optimizer = "sgd",
    learning_rate: float | None = None,
    global_clipnorm: float | None = None,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    every: int = 1,
    thresholds: Thresholds | None = None,
    seed: int = 0,
) -> HealthReport:
    """Train ``model`` for ``steps`` mini-batch steps under a :class:`GradientMonitor`.

    Args:
        model: any ``torch.nn.Module``; it is trained in place.
        data_x: inputs, first dimension = samples.
        data_y: targets: integer class labels (cross-entropy on logits) or float targets
            (mean squared error), unless ``loss`` is given.
        steps: optimizer steps to run.
        batch_size: samples per step (drawn with replacement by a seeded generator).
        optimizer: a steadygrad optimizer name (``"sgd"``, ``"adam"``, ...) or an optimizer
            already built over ``model.parameters()``.
        learning_rate: the learning rate (None: the optimizer's Keras default).
        global_clipnorm: clip the global gradient norm to this value before each step.
        loss: ``loss(outputs, targets) -> scalar``; default from the targets' dtype.
        every: monitor sampling period (1: every step).
        thresholds: rule thresholds.
        seed: seed of the batch sampler.

    Returns:
        The :class:`HealthReport` (``meta`` holds the run's settings).

    Raises:
        ConfigError: a bad argument (named in the message).
        DataError: ``data_x``/``data_y`` are not tensors of matching length.

    >>> net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    >>> rep = diagnose(net, torch.randn(16, 3), torch.randn(16, 1), steps=3, batch_size=8)
    >>> rep.meta["loss"], len(rep.series.steps)
    ('mse', 3)
    """
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    if not isinstance(data_x, torch.Tensor) or not isinstance(data_y, torch.Tensor):
        raise DataError(f"data: got {type(data_x).__name__}/{type(data_y).__name__}; "
                        "expected torch tensors x and y")
    if data_x.shape[0] != data_y.shape[0] or data_x.shape[0] == 0:
        raise DataError(f"data: got {data_x.shape[0]} inputs and {data_y.shape[0]} targets; "
                        "expected the same non-zero number of samples")
    _check_pos_int("steps", steps)
    _check_pos_int("batch_size", batch_size)
    _check_pos_int("every", every)
    if global_clipnorm is not None and not (
        isinstance(global_clipnorm, (int, float)) and global_clipnorm > 0
    ):
        raise ConfigError("global_clipnorm", global_clipnorm, "a positive number or None")
    if isinstance(optimizer, torch.optim.Optimizer):
        opt = optimizer
        opt_name = type(optimizer).__name__.lower()
    else:
        from steadygrad.optim.optimizers import make_optimizer

        opt = make_optimizer(optimizer, model.parameters(), learning_rate=learning_rate)
        opt_name = str(optimizer)
    if loss is None:
        classify = not torch.is_floating_point(data_y)
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = (
            nn.CrossEntropyLoss() if classify else nn.MSELoss())
        loss_name = "cross_entropy" if classify else "mse"
    else:
        loss_fn, loss_name = loss, getattr(loss, "__name__", type(loss).__name__)
    from steadygrad.diagnostics.progress import baseline_loss

    base = baseline_loss(data_y, loss_name) if loss is None else None
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    with GradientMonitor(model, every=every, thresholds=thresholds, baseline_loss=base) as mon:
        for _ in range(steps):
            idx = torch.randint(0, data_x.shape[0], (batch_size,), generator=gen)
            out = model(data_x[idx])
            value = loss_fn(out, data_y[idx])
            opt.zero_grad()
            value.backward()
            if global_clipnorm is not None:
                nn.utils.clip_grad_norm_(params, float(global_clipnorm))
            opt.step()
            mon.step(value.detach())
    return mon.report(optimizer=opt_name, learning_rate=opt.param_groups[0]["lr"],
                      batch_size=batch_size, loss=loss_name, clipnorm=global_clipnorm)
