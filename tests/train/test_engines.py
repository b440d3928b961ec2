"""The step's two engines: the flat compiled step against the eager step (the oracle) for every
optimizer with a flat rule, and every way the flat engine declines, with its reason recorded.

Equality (also stated in ``docs/internals.md``): the flat compiled step is *not* bit-identical
to the eager step: the flat rules compute the step-dependent coefficients on the host in
float64 and Inductor fuses the elementwise update, so weights differ by float32 rounding
(measured: at most 6e-8 after 4 steps of ``nn.Linear(4, 3)``). The tests assert
``rtol=1e-5, atol=1e-6`` on losses, weights and optimizer state. Each compiled test compiles
one tiny graph. Measured on the shared 2-core machine (so several times slower than on a quiet
one) with an empty Inductor cache: 301 s for the file at load average 11-18 with Inductor's
per-ISA probe check (the first compiled test 102 s, then 22-35 s per optimizer); 101 s at load
7-8 since the flat step skips that check (the first 24 s, then 10-12 s per optimizer;
``TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) pytest tests/train/test_engines.py --durations=10``).
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from steadygrad.train import _flat
from steadygrad.train import step as step_module
from steadygrad.train._flat.hooks import step_hooks
from steadygrad.train.compiled import begin_compiled_run, end_compiled_run
from steadygrad.train.loop import fit
from steadygrad.train.step import build_step, eager_step

F = nn.functional

ONE_PER_RULE: list[tuple[type, dict[str, Any]]] = [
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    (torch.optim.Adam, {"lr": 0.01}),
    (torch.optim.AdamW, {"lr": 0.01}),
    (torch.optim.NAdam, {"lr": 0.01}),
    (torch.optim.Adamax, {"lr": 0.01}),
    (torch.optim.RMSprop, {"lr": 0.01}),
    (torch.optim.Adagrad, {"lr": 0.1}),
]


def _batches(n: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g))
            for _ in range(n)]


def _train(cls: type, kw: dict[str, Any], compile: bool) -> tuple[Any, ...]:
    prev = begin_compiled_run(torch.device("cpu")) if compile else None
    try:
        torch.manual_seed(0)
        model = nn.Linear(4, 3)
        opt = cls(model.parameters(), **kw)
        timer = [0.0]
        step = build_step(model, F.cross_entropy, opt, compile=compile, compile_timer=timer)
        losses = [step(x, y, t).loss for t, (x, y) in enumerate(_batches())]
        step.release()
    finally:
        end_compiled_run(prev)
    return losses, model, opt, step, timer[0]


def test_the_rules_listed_here_are_all_the_flat_rules() -> None:
    from steadygrad.train._flat.rules import _RULES

    assert {cls for cls, _ in ONE_PER_RULE} == set(_RULES)


@pytest.mark.parametrize(("cls", "kw"), ONE_PER_RULE, ids=lambda v: getattr(v, "__name__", ""))
def test_compiled_flat_step_equals_the_eager_step(cls: type, kw: dict[str, Any]) -> None:
    losses, model, opt, _, _ = _train(cls, kw, compile=False)
    c_losses, c_model, c_opt, c_step, seconds = _train(cls, kw, compile=True)
    assert (c_step.engine, c_step.fallback) == ("flat", None)
    assert seconds > 0  # the one compilation was timed
    assert c_losses == pytest.approx(losses, rel=1e-5)
    assert losses[-1] != losses[0]  # it trained
    for a, b in zip(model.parameters(), c_model.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    sa, sb = opt.state_dict()["state"], c_opt.state_dict()["state"]
    for i in sa:
        for k, v in sa[i].items():
            torch.testing.assert_close(sb[i][k], v, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------ declining
def _opt(**kw: Any) -> tuple[nn.Module, torch.optim.Optimizer]:
    model = nn.Linear(4, 3)
    return model, torch.optim.SGD(model.parameters(), lr=0.1, **kw)


def _reason(model: nn.Module, opt: torch.optim.Optimizer, **parts: Any) -> Any:
    return _flat.flat_engine(model, F.cross_entropy, opt, None, timer=[0.0], **parts)


def test_an_option_off_the_allow_list_is_declined_by_name() -> None:
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD([{"params": model.parameters(), "tag": "head"}], lr=0.1)
    assert "'tag' is not on the flat rule's allow-list" in _reason(model, opt)
    model, opt = _opt()
    opt.param_groups[0]["differentiable"] = True
    assert _reason(model, opt) == ("SGD option differentiable=True is not supported by the "
                                   "flat rule")


def test_step_hooks_a_patched_step_and_the_profiler_are_declined() -> None:
    model, opt = _opt()
    assert step_hooks(opt) is None and not isinstance(_reason(model, opt), str)
    handle = opt.register_step_pre_hook(lambda *a: None)
    assert _reason(model, opt) == "the optimizer has step hooks"
    handle.remove()
    handle = register_optimizer_step_post_hook(lambda *a: None)
    assert _reason(model, opt) == "global optimizer step hooks are registered"
    handle.remove()
    torch.optim.lr_scheduler.StepLR(opt, 1)  # patches opt.step to count calls
    assert "replaced on the instance" in _reason(model, opt)
    model, opt = _opt()
    with torch.autograd.profiler.profile():
        assert _reason(model, opt) == "the profiler is running"


def test_an_untested_torch_release_is_declined(monkeypatch: pytest.MonkeyPatch) -> None:
    model, opt = _opt()
    monkeypatch.setattr(torch, "__version__", "2.14.0+cpu")
    assert _reason(model, opt) == ("torch 2.14.0 is not the release the flat step is tested "
                                   f"with ({_flat.TESTED_TORCH})")


def test_a_custom_clipper_is_declined() -> None:
    model, opt = _opt()
    assert _reason(model, opt, clipper=lambda ps: torch.zeros(())) == (
        "a custom clipper (function)")


def test_fit_records_the_engine_and_a_fallback_in_history() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    h = fit(nn.Linear(4, 3), (x, y), epochs=1, verbose=0, monitor=False)
    assert (h.params["engine"], h.params["fallback"]) == ("eager", None)
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD([{"params": model.parameters(), "tag": "head"}], lr=0.1)
    h = fit(model, (x, y), epochs=1, batch_size=40, verbose=0, monitor=False,
            optimizer=opt, compile=True)
    assert h.params["engine"] == "compiled"
    assert "'tag' is not on the flat rule's allow-list" in h.params["fallback"]
    assert h.compile_seconds is not None and h.compile_seconds > 0


def test_the_step_module_and_the_eager_step_stay_short() -> None:
    """The issue's readability bounds: step.py <= 150 lines, the eager step <= 40."""
    assert len(inspect.getsource(step_module).splitlines()) <= 150
    model, opt = _opt()
    step = step_module.eager_step(model, F.cross_entropy, opt)
    assert step.__name__ == "step" and len(inspect.getsource(step).splitlines()) <= 40


def test_every_new_compile_key_is_timed_and_the_partial_batch_runs_eagerly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The flat engine adds the whole duration of each call that meets a new compile key to
    the timer (here with the graph run uncompiled and a clock that ticks 1 per reading); the
    partial last batch compiles nothing: it runs the eager step with the flat update, and the
    run ends where the eager engine ends."""
    from steadygrad.train._flat import engine as engine_module
    from steadygrad.train._flat.flat import FlatStep
    from steadygrad.train.step import eager_step

    ticks = iter(range(10**6))
    monkeypatch.setattr(engine_module, "time", type("T", (), {
        "perf_counter": staticmethod(lambda: float(next(ticks)))}))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    flat = FlatStep.create(model, F.cross_entropy, opt, compile=False)
    assert isinstance(flat, FlatStep)
    timer, count = [0.0], [0]
    make = lambda **kw: eager_step(model, F.cross_entropy, opt, **kw)  # noqa: E731
    engine = engine_module.FlatEngine(flat, make(), make, opt, timer=timer,
                                      changed=lambda: count[0])
    x, y = torch.randn(19, 4), torch.randint(0, 3, (19,))
    sizes = [8, 8, 3, 8, 8, 3]  # two epochs of 19 rows: full batches and the partial one
    timed = []
    for t, n in enumerate(sizes):
        before = timer[0]
        assert engine(x[:n], y[:n], t).ok
        timed.append(timer[0] - before)
    # step 0 is eager (no optimizer state yet); then only the first 8-row call compiles
    assert timed == [0, 1, 0, 0, 0, 0] and len(flat._compiled) == 1
    assert [k[0] for k in flat._compiled] == [(8, 4)]
    model[1].p = 0.2  # a callback changes the model: the next step traces again, timed
    count[0] += 1
    before = timer[0]
    engine(x[:8], y[:8], 6)
    assert timer[0] - before == 1 and len(flat._compiled) == 2


def test_a_run_that_begins_with_the_partial_batch_compiles_the_full_one() -> None:
    """A run resumed at an epoch's last batch meets the 3-row batch first: the 8-row batches
    that follow are the ones compiled, and the 3-row one keeps running eagerly."""
    from steadygrad.train._flat import engine as engine_module
    from steadygrad.train._flat.flat import FlatStep

    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)  # no state: flat from the first step
    flat = FlatStep.create(model, F.cross_entropy, opt, compile=False)
    assert isinstance(flat, FlatStep)
    make = partial(eager_step, model, F.cross_entropy, opt)
    engine = engine_module.FlatEngine(flat, make(), make, opt, timer=[0.0], changed=None)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    for t, n in enumerate([3, 8, 8, 3, 8]):
        assert engine(x[:n], y[:n], t).ok
    assert [k[0] for k in flat._compiled] == [(3, 4), (8, 4)]  # 3 rows: compiled only first


def test_the_partial_batch_step_matches_the_eager_engine() -> None:
    """Two epochs of 19 rows in batches of 8 (8, 8, 3): the flat engine (graph uncompiled)
    and the eager step end with the same weights and Adam state."""
    from steadygrad.train._flat import engine as engine_module
    from steadygrad.train._flat.flat import FlatStep
    from steadygrad.train.step import eager_step

    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(19, 4, generator=g), torch.randint(0, 3, (19,), generator=g)
    batches = [(x[a:a + 8], y[a:a + 8]) for _ in range(2) for a in (0, 8, 16)]
    runs = []
    for flat_mode in (False, True):
        torch.manual_seed(0)
        model = nn.Linear(4, 3)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        make = partial(eager_step, model, F.cross_entropy, opt)
        step: Any = make()
        flat = FlatStep.create(model, F.cross_entropy, opt, compile=False)
        assert isinstance(flat, FlatStep)
        if flat_mode:
            step = engine_module.FlatEngine(flat, make(), make, opt, timer=[0.0], changed=None)
        losses = [step(bx, by, t).loss for t, (bx, by) in enumerate(batches)]
        if flat_mode:
            assert flat.engaged and len(flat._compiled) == 1  # the 3-row batch: no graph
            step.release()
        runs.append((losses, [p.detach().clone() for p in model.parameters()],
                     opt.state_dict()["state"]))
    (la, pa, sa), (lb, pb, sb) = runs
    assert lb == pytest.approx(la, rel=1e-6) and la[-1] < la[0]
    for a, b in zip(pa, pb, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
    for i in sa:
        for k, v in sa[i].items():
            torch.testing.assert_close(sb[i][k], v, rtol=1e-6, atol=1e-7)
