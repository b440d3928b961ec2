"""Resolve ``fit``'s arguments into objects, validating everything before any work starts.

Example:
    >>> import torch
    >>> model = torch.nn.Linear(2, 1)
    >>> opt, clipper = resolve_optimizer(
    ...     {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "clipnorm": 1.0}, model, None)
    >>> type(opt).__name__, opt.defaults["momentum"], clipper.clipnorm
    ('SGD', 0.9, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.train.builtin_callbacks import EarlyStopping
from steadygrad.train.callbacks import Callback
from steadygrad.train.progress import ProgressBar

__all__ = [
    "DEFAULT_MONITOR",
    "chance_loss",
    "resolve_callbacks",
    "resolve_monitor",
    "resolve_optimizer",
    "resolve_schedule",
]

DEFAULT_MONITOR: bool | int = True
"""What ``fit(monitor=...)`` defaults to: ``True`` attaches a ``GradientMonitor`` sampling one
step in ``steadygrad.diagnostics.monitor.DEFAULT_EVERY``, and ``history.health`` is its report
at the end of ``fit`` (issue 4: on by default, with sampling). Measured cost of the default
(``tests/train/fit_overhead_script.py``, CPU, 1 thread, batch 32): within 5% of
``monitor=False`` on the 784-300-100-10 MLP and on 20 x [Dense-BN-ELU]; pass
``monitor=False`` for a loop with no monitoring at all."""


def resolve_optimizer(
    optimizer: Any, model: nn.Module, learning_rate: float | None
) -> tuple[torch.optim.Optimizer, Callable[..., torch.Tensor] | None]:
    """``(torch optimizer, clipper or None)`` from a name, a Keras-style dict, an
    :class:`~steadygrad.optim.settings.OptimizerConfig` or an instance.

    A name or dict (``{"name": ..., "learning_rate": ..., <Keras-named hyperparameters>,
    clipvalue/clipnorm/global_clipnorm}``) becomes an ``OptimizerConfig`` first (the value a
    run config holds), which builds the optimizer and the
    :class:`~steadygrad.optim.clipping.GradientClipper` applied before each step.

    >>> opt, clip = resolve_optimizer("adam", torch.nn.Linear(1, 1), 0.01)
    >>> opt.defaults["lr"], clip
    (0.01, None)
    """
    from steadygrad.optim.settings import OptimizerConfig

    if isinstance(optimizer, torch.optim.Optimizer):
        if learning_rate is not None:
            raise ConfigError(
                "learning_rate", learning_rate, "None with an optimizer instance",
                hint="set lr when constructing the optimizer, or pass optimizer by name",
            )
        return optimizer, None
    if isinstance(optimizer, OptimizerConfig):
        spec = (optimizer if learning_rate is None else
                OptimizerConfig.from_value(optimizer.to_value(), learning_rate))
    elif isinstance(optimizer, (str, Mapping)):
        spec = OptimizerConfig.from_value(optimizer, learning_rate)
    else:
        raise ConfigError(
            "optimizer", optimizer,
            "an optimizer name, a dict {'name': ..., ...}, an OptimizerConfig or a "
            "torch.optim.Optimizer",
        )
    return spec.build([p for p in model.parameters() if p.requires_grad])


def _is_plateau(obj: Any) -> bool:
    return callable(getattr(obj, "update", None)) and callable(getattr(obj, "state_dict", None))


def resolve_schedule(
    schedule: Any, optimizer: torch.optim.Optimizer, total_steps: int,
    unit: str | None = None, steps_per_epoch: int = 1,
) -> tuple[Callable[[int], float] | None, Any]:
    """``(pure schedule or None, plateau scheduler or None)``.

    A name or ``{"name": ..., **kw}`` goes through ``make_schedule`` with the optimizer's
    learning rate as the base and the run's ``total_steps``; a constant schedule is dropped
    after setting the rate once (no per-step work). A callable takes the step, or the epoch
    with ``unit="epoch"`` (:func:`steadygrad.optim.schedule_units.per_step`).

    >>> opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    >>> sched, plateau = resolve_schedule("cosine", opt, total_steps=10)
    >>> round(sched(0), 3), round(sched(10), 3), plateau
    (0.1, 0.0, None)
    """
    from steadygrad.optim.schedules import Constant, make_schedule

    if schedule is None:
        return None, None
    if _is_plateau(schedule):
        return None, schedule
    base = float(optimizer.param_groups[0]["lr"])
    if isinstance(schedule, str):
        built = make_schedule(schedule, learning_rate=base, total_steps=total_steps)
    elif isinstance(schedule, Mapping):
        spec = dict(schedule)
        if "name" not in spec:
            raise ConfigError("schedule", schedule, "a dict with a 'name' key")
        name = spec.pop("name")
        lr = float(spec.pop("learning_rate", base))
        built = make_schedule(name, learning_rate=lr, total_steps=total_steps, **spec)
    elif callable(schedule):
        from steadygrad.optim.schedule_units import per_step

        built = per_step(schedule, unit, steps_per_epoch)
    else:
        raise ConfigError(
            "schedule", schedule,
            "None, a schedule name, a dict {'name': ...}, a step -> lr callable or a "
            "PerformanceScheduler",
        )
    if _is_plateau(built):  # "reduce_on_plateau": fed the metric once per epoch
        return None, built
    if isinstance(built, Constant):
        for group in optimizer.param_groups:
            group["lr"] = built.lr
        return None, None
    return built, None


def chance_loss(loss: Any, task: str, targets: torch.Tensor) -> float | None:
    """The loss a constant predictor reaches on ``targets`` under ``fit``'s loss (the
    chance level the monitor judges progress against, as ``diagnose`` passes it):
    :func:`steadygrad.diagnostics.progress.baseline_loss` for cross-entropy (``ln C`` for
    balanced classes), binary cross-entropy and MSE, named or as the plain torch module;
    None for other losses and custom callables.

    >>> round(chance_loss(None, "multiclass", torch.tensor([0, 1, 2, 3])), 4)  # ln 4
    1.3863
    >>> chance_loss("mse", "regression", torch.tensor([[1.0], [3.0]]))
    1.0
    >>> chance_loss(torch.nn.HuberLoss(), "regression", torch.zeros(2, 1)) is None
    True
    """
    from steadygrad.diagnostics.progress import baseline_loss
    from steadygrad.train.losses import LOSSES, TASK_LOSS

    if loss is None:
        name = TASK_LOSS[task]
    elif isinstance(loss, str):
        name = LOSSES.canonical(loss)
    else:  # a torch loss module with its default (mean) reduction and no class weights
        plain = {nn.CrossEntropyLoss: "cross_entropy", nn.BCEWithLogitsLoss:
                 "binary_cross_entropy", nn.MSELoss: "mse"}
        name = plain.get(type(loss), "")
        if name and (getattr(loss, "reduction", "mean") != "mean"
                     or getattr(loss, "weight", None) is not None
                     or getattr(loss, "pos_weight", None) is not None
                     or getattr(loss, "label_smoothing", 0.0)):
            name = ""
    return baseline_loss(targets.detach().cpu(), name) if name else None


def resolve_monitor(monitor: Any, model: nn.Module) -> Any:
    """None, or a ``GradientMonitor``: ``True`` (default period), an int period, an instance.

    >>> resolve_monitor(False, torch.nn.Linear(1, 1)) is None
    True
    >>> resolve_monitor(5, torch.nn.Linear(1, 1)).every
    5
    """
    if monitor is None or monitor is False:
        return None
    from steadygrad.diagnostics.monitor import GradientMonitor

    if monitor is True:
        return GradientMonitor(model)
    if isinstance(monitor, int):
        return GradientMonitor(model, every=monitor)
    if isinstance(monitor, GradientMonitor) or (
        hasattr(monitor, "step") and hasattr(monitor, "armed") and hasattr(monitor, "attach")
    ):
        return monitor
    raise ConfigError(
        "monitor", monitor, "None/False (off), True (default sampling), an int period or a "
        "GradientMonitor",
    )


def resolve_callbacks(
    callbacks: Sequence[Callback], early_stopping: Any, verbose: Any
) -> list[Callback]:
    """Early stopping first, then the user's callbacks, then the progress display.

    >>> [type(c).__name__ for c in resolve_callbacks([], {"patience": 2}, 2)]
    ['EarlyStopping', 'ProgressBar']
    """
    if isinstance(callbacks, Callback) or not isinstance(callbacks, Sequence):
        raise ConfigError("callbacks", callbacks, "a list of Callback instances")
    out: list[Callback] = []
    if early_stopping is not None:
        if isinstance(early_stopping, EarlyStopping):
            out.append(early_stopping)
        elif isinstance(early_stopping, Mapping):
            out.append(EarlyStopping(**early_stopping))
        else:
            raise ConfigError(
                "early_stopping", early_stopping, "None, a dict of EarlyStopping arguments or "
                "an EarlyStopping", hint="e.g. {'patience': 5, 'restore_best_weights': True}",
            )
    out.extend(callbacks)
    modes = {"auto": "auto", 1: "bar", 2: "epoch"}  # True == 1
    if verbose in (False, 0, None):
        return out
    if verbose not in modes:
        raise ConfigError("verbose", verbose, "'auto', 0/False, 1/True (bar) or 2 (epoch lines)")
    mode = modes[verbose]
    if mode == "bar" and not ProgressBar("auto").live:
        mode = "epoch"
    out.append(ProgressBar(mode))
    return out
