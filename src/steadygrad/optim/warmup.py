"""Linear learning-rate warm-up, then a constant, linear or cosine rate to the end of the run.

The warm-up that post-LN transformers need (Vaswani et al. 2017, "Attention Is All You Need",
arXiv:1706.03762, section 5.3; Xiong et al. 2020, "On Layer Normalization in the Transformer
Architecture", arXiv:2002.04745: with post-LN the gradients of the last layers are large at
initialization, so a large first step breaks the model, and a warm-up of the rate avoids it).
The rate rises linearly from ``lr / warmup_steps`` at step 0 to ``lr`` at step
``warmup_steps - 1`` (it is never 0, so the first step already moves), then

- ``decay="constant"``: stays at ``lr``;
- ``decay="linear"``: falls linearly to 0 at ``total_steps`` (BERT's schedule, Devlin et al.
  2019, arXiv:1810.04805);
- ``decay="cosine"``: follows the half cosine down to 0 at ``total_steps`` (Loshchilov & Hutter
  2017, arXiv:1608.03983, without restarts).

Without ``warmup_steps``, the warm-up lasts ``warmup_frac`` of the run (10% by default, at least
one step). ``torch.optim.lr_scheduler.LinearLR(opt, start_factor=1/W, total_iters=W-1)`` gives
the same warm-up.

Example:
    >>> sched = warmup(1.0, total_steps=100, warmup_steps=10, decay="linear")
    >>> [round(sched(t), 3) for t in (0, 4, 9, 10, 55, 100)]
    [0.1, 0.5, 1.0, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from steadygrad.errors import ConfigError
from steadygrad.optim._checks import number as _num
from steadygrad.optim._checks import set_frozen as _set
from steadygrad.optim._checks import steps as _steps

__all__ = ["DECAYS", "Warmup", "half_cosine", "warmup", "warmup_rate"]

DECAYS = ("constant", "linear", "cosine")
"""What follows the warm-up."""


def half_cosine(done: float) -> float:
    """The half-cosine annealing factor at fraction ``done`` of the decay: 1 at 0, 0 at 1
    (Loshchilov & Hutter 2017, without restarts; also the shape of Keras ``CosineDecay``).

    >>> half_cosine(0.0), half_cosine(0.5), half_cosine(1.0)
    (1.0, 0.5, 0.0)
    """
    return 0.5 * (1.0 + math.cos(math.pi * done))


def warmup_rate(step: int, lr: float, warmup_steps: int, total_steps: int,
                decay: str = "constant") -> float:
    """The rate at ``step``: linear warm-up over ``warmup_steps``, then ``decay`` to the end.

    A pure function (the formula of :class:`Warmup`).

    >>> [warmup_rate(t, 0.4, 4, 8) for t in (0, 1, 3, 7)]
    [0.1, 0.2, 0.4, 0.4]
    >>> [round(warmup_rate(t, 1.0, 2, 10, "cosine"), 3) for t in (1, 6, 10, 12)]
    [1.0, 0.5, 0.0, 0.0]
    """
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if decay == "constant":
        return lr
    span = total_steps - warmup_steps
    done = min(step - warmup_steps, span) / span if span > 0 else 1.0
    if decay == "linear":
        return lr * (1.0 - done)
    return lr * half_cosine(done)


@dataclass(frozen=True)
class Warmup:
    """Linear warm-up to ``lr`` over ``warmup_steps``, then ``decay``. Build with :func:`warmup`.

    >>> Warmup(0.5, total_steps=20, warmup_steps=5)(2)
    0.3
    """

    lr: float
    total_steps: int
    warmup_steps: int
    decay: str = "constant"

    def __post_init__(self) -> None:
        _set(self, "lr", _num("lr", self.lr, low=0.0))
        _set(self, "total_steps", _steps("total_steps", self.total_steps))
        _set(self, "warmup_steps", _steps("warmup_steps", self.warmup_steps))
        if self.warmup_steps > self.total_steps:
            raise ConfigError("warmup_steps", self.warmup_steps,
                              f"at most the run's {self.total_steps} steps",
                              hint="lower warmup_steps or set warmup_frac instead")
        if self.decay not in DECAYS:
            raise ConfigError("decay", self.decay, f"one of {', '.join(DECAYS)}")

    def __call__(self, step: int) -> float:
        return warmup_rate(step, self.lr, self.warmup_steps, self.total_steps, self.decay)


def warmup(lr: float, total_steps: int, warmup_steps: int | None = None,
           warmup_frac: float = 0.1, decay: str = "constant") -> Warmup:
    """Linear warm-up of the learning rate, then constant, linear or cosine decay.

    Args:
        lr: the rate reached at the end of the warm-up (> 0).
        total_steps: the run's number of optimizer steps.
        warmup_steps: length of the warm-up in steps; None: ``warmup_frac`` of the run.
        warmup_frac: share of the run spent warming up when ``warmup_steps`` is None, in (0, 1].
        decay: ``constant``, ``linear`` or ``cosine`` after the warm-up.

    Raises:
        ConfigError: a value out of range (names the field and what is allowed).

    Example:
        >>> sched = warmup(0.1, total_steps=200)
        >>> sched.warmup_steps, round(sched(0), 4), round(sched(19), 4), round(sched(150), 4)
        (20, 0.005, 0.1, 0.1)
        >>> warmup(0.1, total_steps=200, decay="step")
        Traceback (most recent call last):
        ...
        steadygrad.errors.ConfigError: decay: got 'step'; expected one of constant, linear, cosine
    """
    if warmup_steps is None:
        frac = _num("warmup_frac", warmup_frac, low=0.0, high=1.0, high_open=False)
        total = _steps("total_steps", total_steps)
        warmup_steps = max(1, round(frac * total))
    return Warmup(lr, total_steps, warmup_steps, decay)
