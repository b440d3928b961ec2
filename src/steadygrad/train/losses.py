"""Loss functions by name, the loss a task implies, and target validation.

The loss is chosen from the task like Keras's defaults for a logits-producing model:
``multiclass`` → :class:`torch.nn.CrossEntropyLoss` (integer class targets, logits ``(N, C)``),
``binary`` → :class:`torch.nn.BCEWithLogitsLoss` (float targets ``(N, 1)``, logits ``(N, 1)``),
``regression`` → :class:`torch.nn.MSELoss` (targets shaped exactly like the outputs).

Shapes are checked before training: ``MSELoss`` silently broadcasts ``(N,)`` against ``(N, 1)``
into an ``(N, N)`` matrix, which trains a wrong model without any error; here it is a
:class:`~steadygrad.errors.DataError`.

Example:
    >>> import torch
    >>> loss = get_loss(None, "binary")
    >>> type(loss).__name__
    'BCEWithLogitsLoss'
    >>> check_targets(torch.zeros(4, 1), torch.zeros(4), "regression")
    Traceback (most recent call last):
    ...
    steadygrad.errors.DataError: targets: got shape (4,); expected (N, 1) ...; reshape with ...
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from steadygrad._registry import Registry
from steadygrad.errors import ConfigError, DataError

__all__ = ["LOSSES", "TASKS", "TASK_LOSS", "check_targets", "get_loss", "infer_task", "loss_task"]

TASKS = ("multiclass", "binary", "regression")

LOSSES: Registry[Callable[[], nn.Module]] = Registry("loss")
LOSSES.add(
    "cross_entropy",
    nn.CrossEntropyLoss,
    "crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)
LOSSES.add("binary_cross_entropy", nn.BCEWithLogitsLoss, "binary_crossentropy", "bce")
LOSSES.add("mse", nn.MSELoss, "mean_squared_error")
LOSSES.add("mae", nn.L1Loss, "mean_absolute_error", "l1")
LOSSES.add("huber", nn.HuberLoss)

#: The default loss name of each task.
TASK_LOSS = {"multiclass": "cross_entropy", "binary": "binary_cross_entropy", "regression": "mse"}


def get_loss(
    identifier: str | Callable[..., torch.Tensor] | None, task: str
) -> Callable[..., torch.Tensor]:
    """The loss callable ``loss(outputs, targets) -> 0-dim tensor`` for ``identifier``.

    Args:
        identifier: a registered name, a loss module/callable (passes through) or ``None``
            for the task's default (:data:`TASK_LOSS`).
        task: one of ``multiclass``, ``binary``, ``regression``.

    >>> get_loss("categorical_crossentropy", "multiclass")
    CrossEntropyLoss()
    >>> get_loss(None, "regression")
    MSELoss()
    """
    if task not in TASKS:
        raise ConfigError("task", task, f"one of {', '.join(TASKS)}")
    if identifier is None:
        identifier = TASK_LOSS[task]
    if isinstance(identifier, str):
        return LOSSES.get(identifier)()
    if not callable(identifier):
        raise ConfigError(
            "loss", identifier, f"a loss name ({', '.join(LOSSES.names())}), a callable or None"
        )
    return identifier


def loss_task(identifier: object) -> str | None:
    """The task a loss implies (``"bce"`` → ``"binary"``), or None when it does not say.

    >>> loss_task("bce"), loss_task(torch.nn.MSELoss()), loss_task(None)
    ('binary', 'regression', None)
    """
    if isinstance(identifier, str):
        name = LOSSES.canonical(identifier)
        return {"cross_entropy": "multiclass", "binary_cross_entropy": "binary"}.get(
            name, "regression"
        )
    if isinstance(identifier, (nn.CrossEntropyLoss, nn.NLLLoss)):
        return "multiclass"
    if isinstance(identifier, (nn.BCEWithLogitsLoss, nn.BCELoss)):
        return "binary"
    if isinstance(identifier, (nn.MSELoss, nn.L1Loss, nn.HuberLoss, nn.SmoothL1Loss)):
        return "regression"
    return None


def infer_task(y: torch.Tensor) -> str:
    """The task implied by a target tensor.

    The rule: integer labels → ``"multiclass"``; floating-point targets whose values are
    exactly 0.0 and 1.0 (both present) → ``"binary"`` (the usual ``y.float()`` labels of a
    sigmoid classifier); any other floating-point targets → ``"regression"``. To regress on
    0/1 values pass ``loss="mse"``; a :class:`~steadygrad.data.Dataset` states its task.

    >>> infer_task(torch.tensor([0, 2, 1])), infer_task(torch.zeros(3, 1))
    ('multiclass', 'regression')
    >>> infer_task(torch.tensor([[0.0], [1.0], [1.0]]))
    'binary'
    """
    if not y.is_floating_point() and not y.is_complex() and y.dtype != torch.bool:
        return "multiclass"
    if y.is_floating_point() and y.numel() > 1:
        zero, one = bool((y == 0).any()), bool((y == 1).any())
        if zero and one and bool(((y == 0) | (y == 1)).all()):
            return "binary"
    return "regression"


def _shape(t: torch.Size | tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in t) + ("," if len(t) == 1 else "") + ")"


def check_targets(outputs: torch.Tensor, targets: torch.Tensor, task: str) -> None:
    """Raise :class:`DataError` unless ``targets`` fit ``outputs`` for ``task``.

    Only the shapes after the batch dimension and the dtypes are compared, so a probe batch
    of outputs can be checked against the whole target tensor.

    >>> check_targets(torch.zeros(2, 3), torch.tensor([0, 2, 1]), "multiclass")
    >>> check_targets(torch.zeros(2, 1), torch.zeros(5, 1), "binary")
    """
    got = _shape(tuple(targets.shape))
    if task == "multiclass":
        if outputs.ndim != 2 or outputs.shape[1] < 2:
            raise DataError(
                f"model outputs: got shape {_shape(tuple(outputs.shape))}; expected (N, C) logits "
                "with C >= 2 for a multiclass task; end the model with Linear(..., num_classes)"
            )
        if targets.ndim != 1 or targets.is_floating_point():
            raise DataError(
                f"targets: got shape {got} dtype {targets.dtype}; expected integer class "
                "labels of shape (N,) for a multiclass task; use y.argmax(1) for one-hot targets"
            )
        if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= outputs.shape[1]):
            raise DataError(
                f"targets: got labels in [{int(targets.min())}, {int(targets.max())}]; expected "
                f"0 <= label < {outputs.shape[1]} (the number of model outputs)"
            )
        return
    want = "(N" + "".join(f", {d}" for d in outputs.shape[1:]) + ")"
    if not targets.is_floating_point():
        raise DataError(
            f"targets: got dtype {targets.dtype}; expected a floating-point tensor for a "
            f"{task} task; convert with y.float()"
        )
    if targets.ndim == 0 or tuple(targets.shape[1:]) != tuple(outputs.shape[1:]):
        hint = (
            "reshape with y.reshape(-1, 1) (a (N,) vs (N, 1) mismatch would broadcast silently)"
            if targets.ndim == 1 and tuple(outputs.shape[1:]) == (1,)
            else "make the model's last layer produce the target's shape"
        )
        raise DataError(
            f"targets: got shape {got}; expected {want} to match the model outputs "
            f"{want}; {hint}"
        )
    if task == "binary" and targets.numel() and not bool(((targets == 0) | (targets == 1)).all()):
        raise DataError(
            "targets: got values other than 0 and 1; expected binary labels 0/1 for a binary "
            "task; use task 'regression' (loss='mse') for continuous targets"
        )
