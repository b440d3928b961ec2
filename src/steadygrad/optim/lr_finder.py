"""Learning-rate range test (Smith 2017, "Cyclical Learning Rates", section 3.3; fastai's
``lr_find``): train for a few steps while the rate grows exponentially, watch the loss.

For step ``i = 0 .. num_steps-1`` the rate is
``lr_i = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))``. The loss is smoothed by an
exponential moving average with bias correction (as in fastai):
``avg_i = beta * avg_{i-1} + (1 - beta) * loss_i``, ``smooth_i = avg_i / (1 - beta ** (i + 1))``.
The test stops early once ``smooth_i > diverge_factor * min_j smooth_j`` or the loss is not
finite.

Suggestions (:func:`suggest_lr`; the CLI ``steadygrad lr-find`` and the doctor use the same
function). The rules read the raw losses smoothed by a *centered* moving average over ``w``
steps (``w = max(3, n // 10)``, odd; :func:`centered_average`), which unlike the lagging EMA
does not shift the curve to larger rates and is not dominated by the first noisy steps:

* ``"steepest"`` (the suggestion): the rate where the smoothed loss falls fastest,
  ``argmin d smooth / d log10(lr)``, searched only *before* the lowest smoothed loss (so the
  divergence never counts), hence always inside the explored range;
* ``"min_loss_div10"``: the rate of the lowest smoothed loss divided by 10 (Géron's rule of
  thumb; fastai's ``minimum``), clipped to the explored range.

On a flat curve there is nothing to read: when the smoothed loss never falls by at least
``MIN_DROP`` (5%) of its starting value, :func:`suggest_lr` raises :class:`NoSuggestionError`
with what was measured instead of returning the first rate tried.

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
    >>> result  # doctest: +ELLIPSIS
    LRFinderResult(steps=..., lr 1e-07..., suggestion=...)
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

from steadygrad.errors import ConfigError, SteadygradError

__all__ = [
    "MIN_DROP",
    "LRFinderResult",
    "NoSuggestionError",
    "centered_average",
    "lr_find",
    "smooth_losses",
    "suggest_lr",
    "suggest_lrs",
]

MIN_DROP = 0.05
"""A curve whose smoothed loss never falls below ``(1 - MIN_DROP)`` times its start is flat."""


class NoSuggestionError(SteadygradError, ValueError):
    """The range test's loss curve gives no learning rate (flat, or too short); the message
    says what was measured and what to check."""


def centered_average(values: list[float], window: int) -> list[float]:
    """Centered moving average; the ends average the part of the window that exists.

    >>> centered_average([0.0, 3.0, 0.0, 3.0], 3)
    [1.5, 1.0, 2.0, 1.5]
    """
    arr = np.asarray(values, dtype=float)
    half = window // 2
    out = []
    for i in range(len(arr)):
        out.append(float(arr[max(0, i - half) : i + half + 1].mean()))
    return out


def _window(n: int) -> int:
    w = max(3, n // 10)
    return w if w % 2 else w + 1


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


def suggest_lrs(lrs: list[float], smoothed: list[float],
                min_drop: float = MIN_DROP) -> dict[str, float]:
    """``{"steepest": ..., "min_loss_div10": ...}`` from an already smoothed curve.

    Raises:
        NoSuggestionError: fewer than three points, a curve that never falls by ``min_drop``
            of its start, or one that is lowest at its start.

    >>> lrs = [10.0 ** e for e in range(-5, 1)]
    >>> suggest_lrs(lrs, [2.0, 1.9, 1.5, 0.6, 0.5, 3.0])
    {'steepest': 0.001, 'min_loss_div10': 0.01}
    >>> suggest_lrs(lrs, [2.0, 2.0, 1.99, 2.0, 1.98, 3.0])
    Traceback (most recent call last):
    ...
    steadygrad.optim.lr_finder.NoSuggestionError: no learning rate suggested: the smoothed loss ...
    """
    if len(lrs) < 3:
        raise NoSuggestionError(
            f"no learning rate suggested: the range test recorded {len(lrs)} finite losses "
            "(3 or more needed); run more --steps or start at a lower rate")
    loss = np.asarray(smoothed, dtype=float)
    lowest = int(np.argmin(loss))
    start = float(loss[0])
    drop = (start - float(loss[lowest])) / abs(start) if start else 0.0
    if drop < min_drop or lowest < 2:
        raise NoSuggestionError(
            f"no learning rate suggested: the smoothed loss never fell as the rate grew from "
            f"{lrs[0]:.3g} to {lrs[-1]:.3g} (from {start:.4g} to at best {loss[lowest]:.4g} "
            f"at {lrs[lowest]:.3g}, a {max(drop, 0.0):.1%} drop; at least {min_drop:.0%} "
            "needed). The model does not learn at any rate tried: check the data, the "
            "initialization and the activations (steadygrad diagnose) before tuning the rate")
    log_lr = np.log10(np.asarray(lrs[: lowest + 1], dtype=float))
    slope = np.gradient(loss[: lowest + 1], log_lr)
    return {
        "steepest": float(lrs[int(np.argmin(slope))]),
        "min_loss_div10": max(float(lrs[lowest]) / 10.0, float(lrs[0])),
    }


def suggest_lr(lrs: list[float], losses: list[float], min_drop: float = MIN_DROP) -> float:
    """The learning rate to use from a range test: the steepest-descent rule (module doc).

    The one rule of the library: ``lr_find``'s ``result.suggestion``, ``steadygrad lr-find``
    and the doctor's ``"lr_find"`` remedy all call this function.

    Args:
        lrs: the rate of each recorded step (increasing).
        losses: the raw loss of each step (finite).
        min_drop: the smallest relative fall of the smoothed loss that counts as learning.

    Raises:
        NoSuggestionError: a flat or too short curve, with what was measured.

    Example:
        >>> lrs = [10.0 ** (e / 4) for e in range(-20, 1)]
        >>> losses = [2.3 - 2.0 / (1 + 10 ** (-2 - math.log10(lr))) for lr in lrs]
        >>> round(math.log10(suggest_lr(lrs, losses)), 2)  # the sigmoid's midpoint, 1e-2
        -2.0
    """
    return suggest_lrs(lrs, centered_average(losses, _window(len(losses))), min_drop)["steepest"]


@dataclass(repr=False)
class LRFinderResult:
    """Outcome of :func:`lr_find`.

    Attributes:
        lrs: the rate of each recorded step.
        losses: the raw training loss of each step.
        smoothed: the bias-corrected EMA of the losses (fastai's display curve).
        suggestions: ``{"steepest": lr, "min_loss_div10": lr}`` (empty when refused).
        stopped_early: True when the loss diverged before ``num_steps``.
        refusal: why no rate is suggested (a flat curve), or None.

    >>> r = LRFinderResult([1e-3, 1e-2, 1e-1], [1.0, 0.5, 2.0], [1.0, 0.7, 1.2],
    ...                    {"steepest": 1e-2, "min_loss_div10": 1e-3})
    >>> r.suggestion, r
    (0.01, LRFinderResult(steps=3, lr 0.001..0.1, suggestion=0.01))
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestions: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    refusal: str | None = None

    def __repr__(self) -> str:
        span = f"lr {self.lrs[0]:.3g}..{self.lrs[-1]:.3g}" if self.lrs else "no steps"
        said = (f"suggestion={self.suggestions['steepest']:.3g}"
                if "steepest" in self.suggestions else "no suggestion (flat curve)")
        early = ", stopped_early=True" if self.stopped_early else ""
        return f"LRFinderResult(steps={len(self.lrs)}, {span}, {said}{early})"

    @property
    def suggestion(self) -> float:
        """The steepest-descent rate (:func:`suggest_lr`); raises :class:`NoSuggestionError`
        with the measured reason when the curve is flat."""
        if "steepest" not in self.suggestions:
            raise NoSuggestionError(self.refusal or "no learning rate suggested")
        return self.suggestions["steepest"]

    def plot(self, path: str | Path | None = None) -> Any:
        """Loss against the rate on a log axis, the suggestions marked; the y range shows the
        curve up to its lowest point and a little beyond, so a divergence spike at the end
        does not flatten it.

        Needs matplotlib. Saves to ``path`` when given; returns the Figure.
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("plot needs matplotlib: pip install 'steadygrad[plot]'") from e
        fig = Figure(figsize=(6, 4), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        curve = centered_average(self.losses, _window(len(self.losses))) if self.losses else []
        ax.plot(self.lrs, self.losses, alpha=0.3, label="loss (each step)")
        ax.plot(self.lrs, curve, label="smoothed loss (centered average)")
        colors = ("tab:red", "tab:green")
        for (name, lr), color in zip(self.suggestions.items(), colors, strict=False):
            ax.axvline(lr, color=color, linestyle="--", label=f"{name}: {lr:.2g}")
        if curve:
            lowest = int(np.argmin(curve))
            shown = curve[: min(len(curve), lowest + max(2, len(curve) // 20) + 1)]
            top, bottom = max(max(shown), curve[0]), min(curve)
            pad = 0.1 * (top - bottom) or 0.1 * abs(top) or 0.1
            ax.set_ylim(bottom - pad, top + pad)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("training loss")
        if self.refusal is not None:
            ax.set_title("no suggestion: the loss never fell", fontsize=10)
        ax.legend(fontsize=8)
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
    try:
        result.suggestions = suggest_lrs(
            lrs[:end], centered_average(losses[:end], _window(end)))
    except NoSuggestionError as e:
        result.refusal = str(e)
    return result
