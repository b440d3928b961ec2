"""Learning-rate range test (Smith 2017, "Cyclical Learning Rates", section 3.3; fastai's
``lr_find``): train for a few steps while the rate grows exponentially, watch the loss.

For step ``i = 0 .. num_steps-1`` the rate is
``lr_i = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))``. The loss is smoothed by an
exponential moving average with bias correction (as in fastai):
``avg_i = beta * avg_{i-1} + (1 - beta) * loss_i``, ``smooth_i = avg_i / (1 - beta ** (i + 1))``.
The test stops early once ``smooth_i > diverge_factor * min_j smooth_j`` or the loss is not
finite.

Suggestions (both are returned in ``result.suggestions``; ``result.suggestion`` is the first):

* ``"steepest"``: the rate where the smoothed loss falls fastest, i.e. the minimum of
  ``d smooth / d log10(lr)`` (fastai's ``steep``);
* ``"min_loss_div10"``: the rate of the lowest smoothed loss divided by 10 (fastai's
  ``minimum``; the classic rule of thumb: one order of magnitude below where the loss bottoms).

Everything the test touches is put back exactly: parameters and buffers (batch-norm
statistics), gradients, the optimizer's state and hyperparameters when an optimizer instance is
passed, the model's train/eval mode and every RNG state.

Example:
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> x = torch.randn(512, 8); y = (x[:, :2].sum(1) > 0).long()
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    >>> before = {k: v.clone() for k, v in model.state_dict().items()}
    >>> result = lr_find(model, (x, y), num_steps=60, end_lr=10.0, seed=0)
    >>> sorted(result.suggestions), 1e-7 <= result.suggestion <= 10
    (['min_loss_div10', 'steepest'], True)
    >>> all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    True
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from steadygrad.errors import ConfigError

__all__ = ["LRFinderResult", "lr_find", "smooth_losses", "suggest_lrs"]


def smooth_losses(losses: list[float], beta: float) -> list[float]:
    """Bias-corrected exponential moving average (fastai's smoothing of the range test).

    >>> [round(v, 4) for v in smooth_losses([1.0, 0.0, 0.0], 0.5)]
    [1.0, 0.3333, 0.1429]
    """
    avg, out = 0.0, []
    for i, loss in enumerate(losses):
        avg = beta * avg + (1.0 - beta) * loss
        out.append(avg / (1.0 - beta ** (i + 1)))
    return out


def suggest_lrs(lrs: list[float], smoothed: list[float]) -> dict[str, float]:
    """``{"steepest": ..., "min_loss_div10": ...}`` from a range test (see the module doc).

    >>> lrs = [1e-3, 1e-2, 1e-1, 1.0]
    >>> suggest_lrs(lrs, [1.0, 0.9, 0.3, 2.0])["min_loss_div10"]
    0.01
    """
    if len(lrs) < 2:
        raise ValueError("the range test recorded fewer than two finite losses")
    loss = np.asarray(smoothed, dtype=float)
    log_lr = np.log10(np.asarray(lrs, dtype=float))
    slope = np.gradient(loss, log_lr)
    return {
        "steepest": float(lrs[int(np.argmin(slope))]),
        "min_loss_div10": float(lrs[int(np.argmin(loss))]) / 10.0,
    }


@dataclass
class LRFinderResult:
    """Outcome of :func:`lr_find`.

    Attributes:
        lrs: the rate of each recorded step.
        losses: the raw training loss of each step.
        smoothed: the bias-corrected EMA of the losses.
        suggestions: ``{"steepest": lr, "min_loss_div10": lr}``.
        suggestion: ``suggestions["steepest"]``.
        stopped_early: True when the loss diverged before ``num_steps``.

    >>> r = LRFinderResult([1e-3, 1e-2, 1e-1], [1.0, 0.5, 2.0], [1.0, 0.7, 1.2],
    ...                    {"steepest": 1e-2, "min_loss_div10": 1e-3})
    >>> r.suggestion
    0.01
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestions: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False

    @property
    def suggestion(self) -> float:
        """The steepest-descent rate (see the module doc for the rule)."""
        return self.suggestions["steepest"]

    def plot(self, path: str | Path | None = None) -> Any:
        """Plot smoothed loss against the rate (log axis) with both suggestions marked.

        Needs matplotlib. Saves to ``path`` when given; returns the Figure.
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("plot needs matplotlib: pip install 'steadygrad[plot]'") from e
        fig = Figure(figsize=(6, 4))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(self.lrs, self.losses, alpha=0.3, label="loss")
        ax.plot(self.lrs, self.smoothed, label="smoothed loss")
        colors = ("tab:red", "tab:green")
        for (name, lr), color in zip(self.suggestions.items(), colors, strict=True):
            ax.axvline(lr, color=color, linestyle="--", label=f"{name}: {lr:.2g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.legend()
        if path is not None:
            fig.savefig(str(path))
        return fig


def _check(
    name: str, value: Any, low: float, high: float | None = None, integer: bool = False
) -> None:
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and value > low and (high is None or value < high)
    if not ok:
        kind = "an int" if integer else "a number"
        bound = f"> {low}" + ("" if high is None else f" and < {high}")
        raise ConfigError(name, value, f"{kind} {bound}")


def lr_find(
    model: nn.Module,
    data: Any,
    *,
    optimizer: Any = "sgd",
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    batch_size: int = 32,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
    loss: Any = None,
    seed: int | None = None,
) -> LRFinderResult:
    """Run the learning-rate range test and restore the model, optimizer and RNGs afterwards.

    Args:
        model: the module (any ``nn.Module``).
        data: a Dataset (train split) or ``(x, y)`` tensors.
        optimizer: a name, a Keras-style dict (clipping keys allowed) or an optimizer
            instance (its state is restored exactly afterwards).
        start_lr, end_lr: the range, ``0 < start_lr < end_lr``.
        num_steps: number of steps (>= 2).
        batch_size: rows per step.
        smoothing: EMA factor ``beta`` in [0, 1).
        diverge_factor: stop once the smoothed loss exceeds this times its minimum (> 1).
        loss: a loss name/callable; None infers it from the task.
        seed: seed of the batch sampling (None: drawn from torch's global RNG, which is
            restored afterwards).

    Example:
        >>> import torch
        >>> x, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
        >>> r = lr_find(torch.nn.Linear(3, 2), (x, y), num_steps=10, seed=0)
        >>> len(r.lrs) <= 10, r.lrs[0]
        (True, 1e-07)
    """
    from steadygrad.train.inputs import resolve_data
    from steadygrad.train.losses import check_targets, get_loss
    from steadygrad.train.setup import resolve_optimizer
    from steadygrad.train.state import rng_state, set_rng_state, shuffle_generator

    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    _check("start_lr", start_lr, 0.0)
    _check("end_lr", end_lr, start_lr)
    _check("num_steps", num_steps, 1, integer=True)
    _check("batch_size", batch_size, 0, integer=True)
    if not (isinstance(smoothing, (int, float)) and 0.0 <= smoothing < 1.0):
        raise ConfigError("smoothing", smoothing, "a number in [0, 1)")
    _check("diverge_factor", diverge_factor, 1.0)
    train = resolve_data(data, None, loss)
    loss_fn = get_loss(loss, train.task)
    device = next(model.parameters()).device
    x, y = train.x.to(device), train.y.to(device)

    saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_grads = {id(p): None if p.grad is None else p.grad.clone() for p in model.parameters()}
    saved_modes = {m: m.training for m in model.modules()}
    saved_rng = rng_state()
    user_opt = optimizer if isinstance(optimizer, torch.optim.Optimizer) else None
    saved_opt = copy.deepcopy(user_opt.state_dict()) if user_opt is not None else None
    try:
        model.eval()
        with torch.no_grad():
            check_targets(model(x[:2]), y, train.task)
        opt, clipper = resolve_optimizer(optimizer, model, None)
        params = [p for p in model.parameters() if p.requires_grad]
        gen = shuffle_generator(seed)
        model.train()
        n = x.shape[0]
        perm, pos = torch.randperm(n, generator=gen).to(device), 0
        ratio = end_lr / start_lr
        lrs: list[float] = []
        losses: list[float] = []
        smoothed: list[float] = []
        avg, best, stopped = 0.0, math.inf, False
        opt.zero_grad(set_to_none=True)
        for i in range(num_steps):
            lr = start_lr * ratio ** (i / (num_steps - 1))
            for group in opt.param_groups:
                group["lr"] = lr
            if pos + batch_size > n:
                perm, pos = torch.randperm(n, generator=gen).to(device), 0
            idx = perm[pos : pos + batch_size]
            pos += batch_size
            loss_t = loss_fn(model(x.index_select(0, idx)), y.index_select(0, idx))
            value = float(loss_t.item())
            if not math.isfinite(value):
                stopped = True
                break
            avg = smoothing * avg + (1.0 - smoothing) * value
            smooth = avg / (1.0 - smoothing ** (i + 1))
            lrs.append(lr)
            losses.append(value)
            smoothed.append(smooth)
            if i > 0 and smooth > diverge_factor * best:
                stopped = True
                break
            best = min(best, smooth)
            loss_t.backward()
            if clipper is not None:
                clipper(params)
            opt.step()
            opt.zero_grad(set_to_none=True)
    finally:
        with torch.no_grad():
            for k, v in model.state_dict().items():
                v.copy_(saved_model[k])
        for p in model.parameters():
            p.grad = saved_grads[id(p)]
        for m, mode in saved_modes.items():
            m.training = mode
        if user_opt is not None and saved_opt is not None:
            user_opt.load_state_dict(saved_opt)
        set_rng_state(saved_rng)
    end = len(lrs) - 1 if stopped and len(lrs) > 2 else len(lrs)  # drop the diverging point
    result = LRFinderResult(lrs, losses, smoothed, stopped_early=stopped)
    result.suggestions = suggest_lrs(lrs[:end], smoothed[:end])
    return result
