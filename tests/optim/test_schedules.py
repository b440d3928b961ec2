"""Schedules: closed forms, Keras/torch oracles, 1cycle continuity and bounds, make_schedule."""

from __future__ import annotations

import itertools
import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from steadygrad.errors import ConfigError, UnknownNameError
from steadygrad.optim.schedules import (
    SCHEDULES,
    Constant,
    OneCycle,
    constant,
    cosine,
    exponential,
    make_schedule,
    one_cycle,
    piecewise_constant,
    power,
)

STEPS = [0, 1, 7, 100, 1234, 10_000]


@pytest.mark.parametrize("step", STEPS)
def test_closed_forms(step: int) -> None:
    assert constant(0.3)(step) == 0.3
    assert power(0.1, s=50)(step) == pytest.approx(0.1 / (1 + step / 50))
    assert power(0.1, s=50, c=0.5)(step) == pytest.approx(0.1 / math.sqrt(1 + step / 50))
    assert exponential(0.1, s=100)(step) == pytest.approx(0.1 * 0.1 ** (step / 100))
    assert exponential(0.1, s=100, decay_rate=0.5)(step) == pytest.approx(
        0.1 * 0.5 ** (step / 100)
    )


def _keras_piecewise(boundaries: list[int], values: list[float], step: int) -> float:
    """keras/src/optimizers/schedules/learning_rate_schedule.py::PiecewiseConstantDecay."""
    result = float(step <= boundaries[0]) * values[0]
    result += float(step > boundaries[-1]) * values[-1]
    for low, high, value in zip(boundaries[:-1], boundaries[1:], values[1:-1], strict=False):
        result += float(low < step <= high) * value
    return result


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(0, 200), min_size=1, max_size=5, unique=True).map(sorted),
    st.integers(0, 2**31),
)
def test_piecewise_constant_matches_keras(boundaries: list[int], seed: int) -> None:
    draws = torch.rand(len(boundaries) + 1, generator=torch.Generator().manual_seed(seed))
    values = [float(v) + 1e-3 for v in draws]
    sched = piecewise_constant(boundaries, values)
    for step in range(0, 210):
        assert sched(step) == _keras_piecewise(boundaries, values, step)


def test_piecewise_constant_boundary_belongs_to_the_left_interval() -> None:
    sched = piecewise_constant([100, 110], [1.0, 0.5, 0.1])  # the Keras docstring example
    assert [sched(t) for t in (0, 100, 101, 110, 111, 10**6)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]


def _keras_cosine(
    lr0: float, decay_steps: int, alpha: float, warmup_steps: int, warmup_target: float | None,
    step: int,
) -> float:
    """keras ... learning_rate_schedule.py::CosineDecay.__call__, transcribed."""

    def decay(step: float, decay_from: float) -> float:
        cosine_decayed = 0.5 * (1.0 + math.cos(math.pi * step / decay_steps))
        return decay_from * ((1 - alpha) * cosine_decayed + alpha)

    if warmup_target is None:
        return decay(min(step, decay_steps), lr0)
    step = min(step, decay_steps + warmup_steps)
    if step < warmup_steps:
        return (warmup_target - lr0) * step / warmup_steps + lr0
    return decay(step - warmup_steps, warmup_target)


@pytest.mark.parametrize(
    "args", [(0.1, 100, 0.0, 0, None), (0.1, 50, 0.2, 0, None), (0.0, 80, 0.1, 20, 0.5),
             (0.01, 30, 0.0, 7, 0.1)]
)
def test_cosine_matches_keras(args: tuple[float, int, float, int, float | None]) -> None:
    sched = cosine(*args)
    lr0, decay_steps, alpha, warmup_steps, warmup_target = args
    for step in range(0, 160):
        keras = _keras_cosine(lr0, decay_steps, alpha, warmup_steps, warmup_target, step)
        assert sched(step) == pytest.approx(keras, rel=1e-12, abs=1e-15)


def test_cosine_matches_torch_cosine_annealing() -> None:
    lr0, steps, alpha = 0.1, 40, 0.1
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=lr0)
    torch_sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=alpha * lr0)
    ours = cosine(lr0, steps, alpha=alpha)
    for step in range(steps + 1):
        assert ours(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-6)
        opt.step()
        torch_sched.step()


def _torch_one_cycle(max_lr: float, total: int, frac: float) -> tuple[list[float], list[float]]:
    """torch's three-phase linear OneCycleLR, with its phase ends placed on ours."""
    peak = (1 - frac) * total / 2
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=max_lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lr, total_steps=total + 1, pct_start=(peak + 1) / (total + 1),
        anneal_strategy="linear", three_phase=True, div_factor=10.0, final_div_factor=1000.0,
        base_momentum=0.85, max_momentum=0.95,
    )
    lrs, moms = [], []
    for _ in range(total + 1):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    return lrs, moms


@pytest.mark.parametrize(("total", "frac"), [(100, 0.1), (1000, 0.1), (60, 0.25)])
def test_one_cycle_matches_torch_three_phase_one_cycle(total: int, frac: float) -> None:
    sched = one_cycle(0.5, total, annihilation_frac=frac)
    lrs, moms = _torch_one_cycle(0.5, total, frac)
    for step in range(total + 1):
        assert sched(step) == pytest.approx(lrs[step], rel=1e-9, abs=1e-12)
        assert sched.momentum(step) == pytest.approx(moms[step], rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(1e-4, 10.0),
    st.integers(10, 100_000),
    st.one_of(st.just(0.0), st.floats(0.01, 0.5)),
    st.floats(1.0, 100.0),
    st.floats(1.0, 1e4),
)
def test_one_cycle_is_continuous_bounded_and_shaped(max_lr, total, frac, start_div, final_div):
    sched = one_cycle(max_lr, total, start_div=start_div, final_div=final_div,
                      annihilation_frac=frac)
    start, final = max_lr / start_div, max_lr / start_div / final_div
    peak, cycle_end = (1 - frac) * total / 2, (1 - frac) * total
    assert sched(0) == pytest.approx(start)
    assert sched(peak) == pytest.approx(max_lr)
    assert sched(cycle_end) == pytest.approx(start)
    assert sched(total) == pytest.approx(final if frac > 0 else start)
    assert sched(total + 1000) == sched(total)
    # Continuity at the knots: the jump over a tiny step is bounded by the steepest slope.
    slope = max((max_lr - start) / peak, (start - final) / max(total - cycle_end, 1e-12))
    for knot in (peak, cycle_end):
        for d in (1e-6, 1e-3):
            assert abs(sched(knot + d) - sched(knot - d)) <= 2 * d * slope * (1 + 1e-6) + 1e-12
    # Bounds and monotone phases on the integer steps.
    values = [sched(t) for t in range(0, total + 1, max(1, total // 500))]
    assert min(values) >= min(final, start) * (1 - 1e-9)
    assert max(values) <= max_lr * (1 + 1e-9)
    ups = [sched(t) for t in range(0, int(peak) + 1, max(1, total // 200))]
    downs = [sched(t) for t in range(math.ceil(peak), total + 1, max(1, total // 200))]
    assert all(a <= b * (1 + 1e-12) for a, b in itertools.pairwise(ups))
    assert all(a >= b * (1 - 1e-12) for a, b in itertools.pairwise(downs))


@settings(max_examples=40, deadline=None)
@given(st.integers(10, 10_000), st.floats(0.0, 0.5), st.floats(0.5, 0.99),
       st.one_of(st.just(0.0), st.floats(0.01, 0.5)))
def test_one_cycle_momentum_is_inverse_to_the_learning_rate(total, frac, high, gap) -> None:
    low = high - gap * high
    sched = one_cycle(1.0, total, annihilation_frac=frac, momentum=(high, low))
    cycle_end = (1 - frac) * total
    for step in range(0, int(cycle_end) + 1, max(1, total // 300)):
        lr_progress = (sched(step) - 0.1) / (1.0 - 0.1)
        m = sched.momentum(step)
        assert low - 1e-12 <= m <= high + 1e-12
        if high > low:
            assert (high - m) / (high - low) == pytest.approx(lr_progress, abs=1e-9)
    assert sched.momentum(total) == high
    assert one_cycle(1.0, total, momentum=None).momentum(0) is None


@settings(max_examples=40, deadline=None)
@given(st.floats(1e-5, 1.0), st.floats(1.0, 1e4), st.floats(0.05, 0.99), st.integers(0, 10**5),
       st.integers(1, 10**4))
def test_decaying_schedules_are_monotone(lr0, s, rate, step, gap) -> None:
    for sched in (power(lr0, s), exponential(lr0, s, rate), cosine(lr0, int(s), alpha=rate)):
        assert sched(step + gap) <= sched(step) <= lr0 * (1 + 1e-12)
        assert sched(step) >= 0


def test_schedules_are_picklable_comparable_and_readable() -> None:
    for sched in (constant(0.1), power(0.1, 10), exponential(0.1, 10),
                  piecewise_constant([5], [0.1, 0.01]), cosine(0.1, 10), one_cycle(0.1, 100)):
        clone = pickle.loads(pickle.dumps(sched))
        assert clone == sched and clone(3) == sched(3)
    assert repr(one_cycle(0.1, 100)) == (
        "OneCycle(max_lr=0.1, total_steps=100, start_div=10.0, final_div=1000.0, "
        "annihilation_frac=0.1, momentum_range=(0.95, 0.85))"
    )


def test_make_schedule_fills_learning_rate_and_total_steps() -> None:
    assert make_schedule("constant", learning_rate=0.2) == Constant(0.2)
    assert make_schedule("exponential", learning_rate=0.1, total_steps=500) == exponential(
        0.1, s=500
    )
    assert make_schedule("power", learning_rate=0.1, s=20, c=2) == power(0.1, 20, 2)
    assert make_schedule("cosine", learning_rate=0.0, total_steps=100, warmup_steps=10,
                         warmup_target=0.1) == cosine(0.0, 90, 0.0, 10, 0.1)
    assert make_schedule("1cycle", learning_rate=0.5, total_steps=100, momentum=None) == OneCycle(
        0.5, 100, momentum_range=None
    )
    assert make_schedule("piecewise", learning_rate=0.1, boundaries=[3], values=[0.1, 0.01])(4) \
        == 0.01
    assert set(SCHEDULES.names()) == {"constant", "power", "exponential", "piecewise_constant",
                                      "cosine", "one_cycle", "warmup", "reduce_on_plateau"}


def test_make_schedule_passes_callables_through() -> None:
    def my_schedule(step: int) -> float:
        return 1.0 / (step + 1)

    assert make_schedule(my_schedule, learning_rate=0.1) is my_schedule
    with pytest.raises(ConfigError, match="no extra arguments"):
        make_schedule(my_schedule, learning_rate=0.1, alpha=0.1)
    with pytest.raises(ConfigError, match="schedule"):
        make_schedule(3, learning_rate=0.1)  # type: ignore[arg-type]


def test_make_schedule_errors_name_the_problem() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'cosine'"):
        make_schedule("cosin", learning_rate=0.1, total_steps=10)
    with pytest.raises(ConfigError, match="did you mean 'decay_rate'"):
        make_schedule("exponential", learning_rate=0.1, total_steps=10, decayrate=0.5)
    with pytest.raises(ConfigError, match="total_steps"):
        make_schedule("one_cycle", learning_rate=0.1)
    with pytest.raises(ConfigError, match="pass total_steps or s"):
        make_schedule("power", learning_rate=0.1)
    with pytest.raises(ConfigError, match="boundaries"):
        make_schedule("piecewise_constant", learning_rate=0.1)


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: constant(0.0), "lr"),
        (lambda: constant(float("nan")), "lr"),
        (lambda: power(0.1, s=0), "s"),
        (lambda: power(-0.1, s=10), "lr0"),
        (lambda: exponential(0.1, s=10, decay_rate=0.0), "decay_rate"),
        (lambda: piecewise_constant([10, 5], [1.0, 0.5, 0.1]), "boundaries"),
        (lambda: piecewise_constant([10, 10], [1.0, 0.5, 0.1]), "boundaries"),
        (lambda: piecewise_constant([10], [1.0]), "values"),
        (lambda: piecewise_constant("10", [1.0, 0.1]), "boundaries"),  # type: ignore[arg-type]
        (lambda: cosine(0.1, 0), "decay_steps"),
        (lambda: cosine(0.1, 10, alpha=1.5), "alpha"),
        (lambda: cosine(0.1, 10, warmup_steps=5), "warmup_steps"),
        (lambda: cosine(0.1, 10, warmup_target=1.0), "warmup_steps"),
        (lambda: cosine(0.1, 10.5), "decay_steps"),  # type: ignore[arg-type]
        (lambda: one_cycle(0.1, 1), "total_steps"),
        (lambda: one_cycle(0.1, 100, start_div=0.5), "start_div"),
        (lambda: one_cycle(0.1, 100, annihilation_frac=1.0), "annihilation_frac"),
        (lambda: one_cycle(0.1, 100, momentum=(0.85, 0.95)), "momentum"),
        (lambda: one_cycle(0.1, 100, momentum=(1.0, 0.85)), "momentum"),
        (lambda: one_cycle(0.1, 100, momentum=0.9), "momentum"),  # type: ignore[arg-type]
    ],
)
def test_invalid_arguments_raise_config_error(factory, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        factory()


# --- schedule_unit and run-length validation (issue 18) ---------------------------------------


def _toy() -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    return torch.nn.Linear(3, 2), (x, (x[:, 0] > 0).long())


def test_epoch_unit_feeds_the_epoch_like_keras_learning_rate_scheduler() -> None:
    """Regression: a chapter-style ``lr(epoch)`` callable received the step (LR decayed
    steps_per_epoch times faster). With ``schedule_unit="epoch"`` every step of epoch ``e``
    runs at ``fn(e)``, as Keras's ``LearningRateScheduler`` sets it at each epoch start."""
    from steadygrad.train.loop import fit

    def decay(epoch: int) -> float:
        return 0.1 * 0.5**epoch

    model, data = _toy()
    h = fit(model, data, epochs=3, batch_size=16, optimizer="sgd", schedule=decay,
            schedule_unit="epoch", seed=0, verbose=0, monitor=None)
    assert h["lr"] == pytest.approx([0.1, 0.05, 0.025])
    model, data = _toy()  # the documented default: the callable takes the step
    h = fit(model, data, epochs=3, batch_size=16, optimizer="sgd",
            schedule=lambda t: 0.1 * 0.5**t, seed=0, verbose=0, monitor=None)
    assert h["lr"] == pytest.approx([0.1 * 0.5**3, 0.1 * 0.5**7, 0.1 * 0.5**11])


def test_a_callable_named_epoch_without_unit_is_refused() -> None:
    from steadygrad.train.loop import fit

    model, data = _toy()
    with pytest.raises(ConfigError, match=r"schedule_unit.*epoch"):
        fit(model, data, epochs=1, schedule=lambda epoch: 0.1, verbose=0)
    with pytest.raises(ConfigError, match=r"^schedule_unit: got 'epochs'"):
        fit(model, data, epochs=1, schedule=lambda t: 0.1, schedule_unit="epochs", verbose=0)


def test_cosine_warmup_longer_than_the_run_names_the_keys_the_user_set() -> None:
    """Regression: the error named ``decay_steps: got -28``, a key the user never set."""
    with pytest.raises(ConfigError, match=r"warmup_steps.*100.*72 steps") as err:
        make_schedule("cosine", learning_rate=0.1, total_steps=72, warmup_steps=100)
    assert "decay_steps: got" not in str(err.value)
