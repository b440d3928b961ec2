"""Inference helpers: :func:`evaluate` (loss and metrics), :func:`predict`, :func:`predict_proba`.

All three run the model in eval mode under ``torch.no_grad`` in batches and put the model
back in the mode it was in.

Example:
    >>> import torch
    >>> model = torch.nn.Linear(2, 3)
    >>> x, y = torch.randn(10, 2), torch.randint(0, 3, (10,))
    >>> sorted(evaluate(model, (x, y)))
    ['accuracy', 'loss']
    >>> predict_proba(model, x).sum(1).allclose(torch.ones(10))
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.train.inputs import as_xy
from steadygrad.train.losses import check_targets, get_loss, infer_task, loss_task
from steadygrad.train.metrics import Metric, get_metric

__all__ = [
    "default_metrics",
    "evaluate",
    "model_device",
    "predict",
    "predict_proba",
    "run_eval",
]


def default_metrics(task: str) -> tuple[str, ...]:
    """``("accuracy",)`` for classification, ``("mae",)`` for regression.

    >>> default_metrics("binary"), default_metrics("regression")
    (('accuracy',), ('mae',))
    """
    return ("mae",) if task == "regression" else ("accuracy",)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a stateless module.

    >>> model_device(torch.nn.ReLU())
    device(type='cpu')
    """
    p: torch.Tensor | None = next(model.parameters(), None)
    if p is None:
        p = next(model.buffers(), None)
    return p.device if p is not None else torch.device("cpu")


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError("batch_size", batch_size, "an int >= 1")


class _EvalMode:
    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.was_training = self.model.training
        self.model.eval()
        self.no_grad = torch.no_grad()
        self.no_grad.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.no_grad.__exit__(*exc)
        self.model.train(self.was_training)


def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """The model's raw outputs (logits for classifiers) for ``x``, batched, in eval mode.

    >>> predict(torch.nn.Identity(), torch.arange(3.0).reshape(3, 1)).flatten().tolist()
    [0.0, 1.0, 2.0]
    """
    if not isinstance(x, torch.Tensor):
        raise ConfigError("x", type(x).__name__, "a torch.Tensor", hint="use torch.as_tensor(x)")
    _check_batch_size(batch_size)
    device = model_device(model)
    with _EvalMode(model):
        if x.shape[0] == 0:
            return model(x.to(device))
        outs = [model(x[i : i + batch_size].to(device)) for i in range(0, x.shape[0], batch_size)]
    return torch.cat(outs)


def predict_proba(model: nn.Module, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Class probabilities: softmax over logits ``(N, C)``, sigmoid for one output ``(N, 1)``.

    >>> p = predict_proba(torch.nn.Identity(), torch.tensor([[0.0], [100.0]]))
    >>> p.flatten().tolist()
    [0.5, 1.0]
    """
    out = predict(model, x, batch_size=batch_size)
    if out.ndim == 2 and out.shape[1] > 1:
        return torch.softmax(out, dim=1)
    return torch.sigmoid(out)


def run_eval(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[..., torch.Tensor],
    metrics: Sequence[Metric],
    batch_size: int,
) -> dict[str, float]:
    """Loss (mean over samples) and metrics on ``(x, y)``; one host sync per value at the end.

    >>> from steadygrad.train.metrics import Accuracy
    >>> out = run_eval(torch.nn.Identity(), torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
    ...                torch.tensor([0, 0]), torch.nn.CrossEntropyLoss(), [Accuracy()], 1)
    >>> out["accuracy"]
    0.5
    """
    device = model_device(model)
    total = torch.zeros((), dtype=torch.float64, device=device)
    for m in metrics:
        m.reset()
    with _EvalMode(model):
        for i in range(0, x.shape[0], batch_size):
            xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
            out = model(xb)
            total += loss_fn(out, yb).double() * xb.shape[0]
            for m in metrics:
                m.update(out, yb)
    logs = {"loss": float(total.item()) / x.shape[0]}
    for m in metrics:
        logs[m.name] = m.compute()
    return logs


def evaluate(
    model: nn.Module,
    data: Any,
    *,
    batch_size: int = 256,
    loss: Any = None,
    metrics: Sequence[str | Metric] | None = None,
    split: str = "test",
) -> dict[str, float]:
    """Loss and metrics of ``model`` on a tuple ``(x, y)`` or one split of a Dataset.

    Args:
        model: the trained module.
        data: ``(x, y)`` tensors, or a Dataset (its ``split``; ``test`` falls back to ``val``).
        batch_size: rows per forward pass.
        loss: a loss name/callable, None for the task's default.
        metrics: metric names/objects, None for the task's defaults.
        split: which split of a Dataset (``"test"``, ``"val"`` or ``"train"``).

    Returns:
        ``{"loss": ..., "<metric>": ...}`` as floats.

    Example:
        >>> x = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
        >>> evaluate(torch.nn.Identity(), (x, torch.tensor([0, 1])))["accuracy"]
        1.0
    """
    _check_batch_size(batch_size)
    x, y, task = as_xy(data, "data", split)
    task = task or loss_task(loss) or infer_task(y)
    loss_fn = get_loss(loss, task)
    names = default_metrics(task) if metrics is None else metrics
    metric_objs = [get_metric(m, task) for m in names]
    with _EvalMode(model):
        check_targets(model(x[:2].to(model_device(model))), y, task)
    return run_eval(model, x, y, loss_fn, metric_objs, batch_size)
