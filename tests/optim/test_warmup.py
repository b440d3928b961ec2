"""The warm-up schedule: torch's LinearLR / CosineAnnealingLR as oracles, shape, config errors."""

from __future__ import annotations

import itertools
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from steadygrad.errors import ConfigError
from steadygrad.experiments.config import config_from_dict
from steadygrad.optim.schedules import SCHEDULES, make_schedule
from steadygrad.optim.warmup import Warmup, warmup
from steadygrad.train.setup import resolve_schedule


def _torch_rates(lr: float, total: int, warm: int, decay: str) -> list[float]:
    """torch's schedulers for the same policy: LinearLR warm-up, then the decay phase."""
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=lr)
    up = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / warm, end_factor=1.0,
                                           total_iters=warm - 1)
    rest: torch.optim.lr_scheduler.LRScheduler
    if decay == "cosine":
        rest = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warm, eta_min=0.0)
    elif decay == "linear":
        rest = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.0,
                                                 total_iters=total - warm)
    else:
        rest = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [up, rest], milestones=[warm])
    rates = []
    for _ in range(total + 1):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


@pytest.mark.parametrize("decay", ["constant", "linear", "cosine"])
@pytest.mark.parametrize(("total", "warm"), [(100, 10), (37, 4), (20, 2)])
def test_warmup_matches_torch_linear_lr_then_the_decay(decay: str, total: int, warm: int) -> None:
    ours = warmup(0.3, total, warmup_steps=warm, decay=decay)
    expected = _torch_rates(0.3, total, warm, decay)
    for step in range(total + 1):
        assert ours(step) == pytest.approx(expected[step], rel=1e-9, abs=1e-12), step


@settings(max_examples=50, deadline=None)
@given(lr=st.floats(1e-5, 10.0), total=st.integers(2, 5000), frac=st.floats(0.01, 1.0),
       decay=st.sampled_from(["constant", "linear", "cosine"]))
def test_warmup_rises_to_lr_without_a_zero_step_then_never_rises(lr: float, total: int,
                                                                 frac: float, decay: str) -> None:
    sched = warmup(lr, total, warmup_frac=frac, decay=decay)
    w = sched.warmup_steps
    assert w == max(1, round(frac * total))
    rates = [sched(t) for t in range(total + 3)]
    assert rates[0] == pytest.approx(lr / w) and rates[0] > 0  # the first step already moves
    assert rates[w - 1] == pytest.approx(lr)  # the peak, reached at the end of the warm-up
    assert all(b >= a for a, b in itertools.pairwise(rates[:w]))
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(rates[w - 1:]))
    assert max(rates) == pytest.approx(lr) and min(rates) >= 0.0
    if decay != "constant":
        assert rates[total] == pytest.approx(0.0, abs=1e-12)


def test_warmup_by_name_from_a_config_and_the_trainer() -> None:
    assert SCHEDULES.canonical("linear_warmup") == "warmup"
    sched = make_schedule("warmup", learning_rate=0.5, total_steps=200, decay="cosine")
    assert sched == Warmup(0.5, 200, 20, "cosine")
    assert pickle.loads(pickle.dumps(sched)) == sched
    config = config_from_dict({"train": {"schedule": {"name": "warmup", "warmup_steps": 5}}})
    assert config.train.schedule is not None
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.2)
    built, plateau = resolve_schedule(config.train.schedule.to_value(), opt, total_steps=50)
    assert plateau is None and built == Warmup(0.2, 50, 5, "constant")


@pytest.mark.parametrize(("kwargs", "field", "allowed"), [
    ({"warmup_steps": 60}, "warmup_steps", "at most the run's 50 steps"),
    ({"warmup_steps": 0}, "warmup_steps", "an integer >= 1"),
    ({"warmup_frac": 0.0}, "warmup_frac", "a finite number > 0 and <= 1"),
    ({"decay": "exp"}, "decay", "one of constant, linear, cosine"),
])
def test_bad_values_name_the_field_and_what_is_allowed(kwargs: dict, field: str,
                                                       allowed: str) -> None:
    with pytest.raises(ConfigError, match=rf"{field}: got .*; expected {allowed}"):
        warmup(0.1, 50, **kwargs)
    if field != "warmup_steps" or kwargs[field] < 1:  # the run's length is known only at fit
        with pytest.raises(ConfigError, match=field):  # the same from a config
            config_from_dict({"train": {"schedule": {"name": "warmup", **kwargs}}})
