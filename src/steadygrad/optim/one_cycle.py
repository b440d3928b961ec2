"""The 1cycle learning-rate policy with its inverse momentum cycle.

Leslie N. Smith, "A disciplined approach to neural network hyper-parameters: Part 1 -- learning
rate, batch size, momentum, and weight decay", 2018, arXiv:1803.09820; Géron, *Hands-On Machine
Learning*, ch. 11 (``OneCycleScheduler``). Equal to torch's three-phase linear ``OneCycleLR``
when its phase ends are placed on ours.

Example:
    >>> sched = one_cycle(0.1, total_steps=1000)
    >>> round(sched(0), 4), round(sched(450), 4), round(sched(900), 4), round(sched(1000), 6)
    (0.01, 0.1, 0.01, 1e-05)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from steadygrad.errors import ConfigError
from steadygrad.optim._checks import number as _num
from steadygrad.optim._checks import set_frozen as _set
from steadygrad.optim._checks import steps as _steps

__all__ = ["OneCycle", "one_cycle"]


@dataclass(frozen=True)
class OneCycle:
    """Smith's 1cycle policy with its inverse momentum cycle. Build with :func:`one_cycle`.

    ``lr`` rises linearly from ``start = max_lr/start_div`` to ``max_lr`` at ``peak =
    (1 - annihilation_frac) * total_steps / 2``, falls back to ``start`` at ``2 * peak``, then
    decreases linearly to ``final = start/final_div`` at ``total_steps`` and stays there.
    ``momentum(t)`` mirrors it: ``momentum_range[0]`` -> ``momentum_range[1]`` at the peak ->
    back, and constant during the annihilation.

    >>> sched = OneCycle(1.0, total_steps=100)
    >>> round(sched(45), 3), round(sched.momentum(45), 3)
    (1.0, 0.85)
    """

    max_lr: float
    total_steps: int
    start_div: float = 10.0
    final_div: float = 1000.0
    annihilation_frac: float = 0.1
    momentum_range: tuple[float, float] | None = (0.95, 0.85)

    def __post_init__(self) -> None:
        _set(self, "max_lr", _num("max_lr", self.max_lr, low=0.0))
        _set(self, "total_steps", _steps("total_steps", self.total_steps, minimum=2))
        _set(self, "start_div", _num("start_div", self.start_div, low=1.0, low_open=False))
        _set(self, "final_div", _num("final_div", self.final_div, low=1.0, low_open=False))
        _set(self, "annihilation_frac", _num("annihilation_frac", self.annihilation_frac,
                                             low=0.0, low_open=False, high=1.0))
        if self.momentum_range is not None:
            pair = self.momentum_range
            if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise ConfigError("momentum", pair, "a pair (high, low) such as (0.95, 0.85)")
            high = _num("momentum[0]", pair[0], low=0.0, low_open=False, high=1.0)
            low = _num("momentum[1]", pair[1], low=0.0, low_open=False, high=1.0)
            if low > high:
                raise ConfigError("momentum", pair, "(high, low) with high >= low",
                                  hint="momentum falls while the learning rate rises")
            _set(self, "momentum_range", (high, low))

    @property
    def _knots(self) -> tuple[float, float]:
        cycle_end = (1.0 - self.annihilation_frac) * self.total_steps
        return cycle_end / 2.0, cycle_end

    def _phase(self, step: int) -> tuple[int, float]:
        """Phase index (0 up, 1 down, 2 annihilation) and the fraction done within it."""
        peak, cycle_end = self._knots
        t = min(max(float(step), 0.0), float(self.total_steps))
        if t <= peak:
            return 0, t / peak
        if t <= cycle_end:
            return 1, (t - peak) / peak
        return 2, (t - cycle_end) / (self.total_steps - cycle_end)

    def __call__(self, step: int) -> float:
        start = self.max_lr / self.start_div
        phase, frac = self._phase(step)
        if phase == 0:
            return start + (self.max_lr - start) * frac
        if phase == 1:
            return self.max_lr - (self.max_lr - start) * frac
        return start - (start - start / self.final_div) * frac

    def momentum(self, step: int) -> float | None:
        """The momentum (``beta_1`` for Adam-like optimizers) at ``step``; None if disabled.

        >>> sched = one_cycle(1.0, 100)
        >>> [round(sched.momentum(t), 3) for t in (0, 45, 90, 100)]
        [0.95, 0.85, 0.95, 0.95]
        """
        if self.momentum_range is None:
            return None
        high, low = self.momentum_range
        phase, frac = self._phase(step)
        if phase == 0:
            return high - (high - low) * frac
        if phase == 1:
            return low + (high - low) * frac
        return high


def one_cycle(
    max_lr: float,
    total_steps: int,
    *,
    start_div: float = 10.0,
    final_div: float = 1000.0,
    annihilation_frac: float = 0.1,
    momentum: tuple[float, float] | None = (0.95, 0.85),
) -> OneCycle:
    """The 1cycle policy (Smith 2018, arXiv:1803.09820; Géron's ``OneCycleScheduler``).

    Linear warm-up from ``max_lr/start_div`` to ``max_lr`` over the first half of the steps
    before the last ``annihilation_frac``, linear decrease back to ``max_lr/start_div`` over the
    second half, then linear annihilation to ``max_lr/start_div/final_div`` (Géron's
    ``last_rate = start_rate/1000``). Momentum cycles inversely, ``0.95 -> 0.85 -> 0.95``; read it
    with ``schedule.momentum(step)``.

    Args:
        max_lr: the peak learning rate (find it with an LR range test).
        total_steps: number of optimizer steps in the run (>= 2).
        start_div: ``max_lr / start`` (>= 1).
        final_div: ``start / final`` (>= 1).
        annihilation_frac: fraction of ``total_steps`` spent annihilating, in [0, 1).
        momentum: ``(high, low)`` momentum pair, or None to leave momentum alone.

    Example:
        >>> sched = one_cycle(1.0, total_steps=100)
        >>> [round(sched(t), 4) for t in (0, 45, 90, 100)]
        [0.1, 1.0, 0.1, 0.0001]
    """
    return OneCycle(max_lr, total_steps, start_div, final_div, annihilation_frac, momentum)
