"""The trainer sets the learning rate: a schedule is ``step -> lr``, the trainer owns the step.

Example:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.zeros(1))
    >>> opt = torch.optim.SGD([w], lr=1.0)
    >>> set_learning_rate(opt, lambda t: 0.5 ** t, 3), opt.param_groups[0]["lr"]
    (0.125, 0.125)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["set_learning_rate"]


def set_learning_rate(optimizer: torch.optim.Optimizer, schedule: Callable[[int], float],
                      step: int) -> float:
    """Set every group's ``lr`` (and momentum, if the schedule cycles it) for ``step``.

    A schedule with a ``momentum(step)`` method that returns a number (1cycle) also sets
    ``momentum`` (SGD, RMSprop) or ``betas[0]`` (Adam family). A tensor ``lr`` (a user's
    optimizer may hold one) is filled in place. Returns the learning rate.

    >>> w = torch.nn.Parameter(torch.zeros(1))
    >>> opt = torch.optim.Adam([w], lr=torch.tensor(1.0))
    >>> set_learning_rate(opt, lambda t: 0.1 * t, 2), opt.param_groups[0]["lr"]
    (0.2, tensor(0.2000))
    """
    lr = float(schedule(step))
    momentum_fn = getattr(schedule, "momentum", None)
    momentum = momentum_fn(step) if callable(momentum_fn) else None
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
        if momentum is not None:
            if "betas" in group:
                group["betas"] = (float(momentum), group["betas"][1])
            elif "momentum" in group:
                group["momentum"] = float(momentum)
    return lr
