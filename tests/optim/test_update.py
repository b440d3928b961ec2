"""The lean optimizer update computes exactly what ``optimizer.step()`` computes, and falls
back to ``optimizer.step()`` whenever a hook, a profiler or a patched ``step`` needs it."""

from __future__ import annotations

import warnings

import pytest
import torch

from steadygrad.optim.optimizers import make_optimizer
from steadygrad.optim.update import needs_wrapper, plain_sgd, update_function

NAMES = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "nadam", "adamax",
         "adamw"]


def _net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ELU(), torch.nn.Linear(7, 3))


def _train(net: torch.nn.Module, step: object, steps: int = 6) -> None:
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(8, 5, generator=gen), torch.randint(0, 3, (8,), generator=gen)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        step()  # type: ignore[operator]
        for p in net.parameters():
            p.grad = None


@pytest.mark.parametrize("name", NAMES)
def test_eager_update_is_bit_identical_to_optimizer_step(name: str) -> None:
    a, b = _net(), _net()
    opt_a = make_optimizer(name, a.parameters(), learning_rate=0.01)
    opt_b = make_optimizer(name, b.parameters(), learning_rate=0.01)
    _train(a, opt_a.step)
    _train(b, update_function(opt_b))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    sa, sb = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
    for key in sa:  # the optimizer state (moments, step counts) is the same too
        for k, v in sa[key].items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(sb[key][k])), (name, k)


@pytest.mark.parametrize("name", ["momentum", "nadam", "adam", "rmsprop"])
def test_compiled_update_matches_optimizer_step(name: str) -> None:
    import torch._dynamo

    torch._dynamo.reset()
    a, b = _net(), _net()
    opt_a = make_optimizer(name, a.parameters(), learning_rate=0.01)
    opt_b = make_optimizer(name, b.parameters(), learning_rate=0.01)
    _train(a, opt_a.step)
    _train(b, update_function(opt_b, compile=True))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_plain_sgd_is_not_compiled_and_stays_bit_identical() -> None:
    a, b = _net(), _net()
    opt_a = make_optimizer("sgd", a.parameters(), learning_rate=0.1)
    opt_b = make_optimizer("sgd", b.parameters(), learning_rate=0.1)
    assert plain_sgd(opt_b) and not plain_sgd(make_optimizer("momentum", _net().parameters()))
    _train(a, opt_a.step)
    _train(b, update_function(opt_b, compile=True))
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters(),
                                                      strict=True))


def test_hooks_still_fire() -> None:
    net = _net()
    opt = make_optimizer("adam", net.parameters())
    calls: list[str] = []
    opt.register_step_pre_hook(lambda *a: calls.append("pre"))
    opt.register_step_post_hook(lambda *a: calls.append("post"))
    _train(net, update_function(opt), steps=2)
    assert calls == ["pre", "post", "pre", "post"]
    calls.clear()
    from torch.optim.optimizer import register_optimizer_step_post_hook

    handle = register_optimizer_step_post_hook(
        lambda *a: calls.append("global"))
    try:
        other = make_optimizer("sgd", _net().parameters())
        assert needs_wrapper(other)
        _train(_net(), update_function(other), steps=1)  # a different net: no grads
    finally:
        handle.remove()
    assert calls[-1] == "global"


def test_torch_lr_scheduler_sees_the_step() -> None:
    net = _net()
    opt = make_optimizer("sgd", net.parameters(), learning_rate=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    update = update_function(opt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "lr_scheduler.step() before optimizer.step()"
        _train(net, update, steps=1)
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


def test_profiler_still_sees_the_optimizer_step() -> None:
    net = _net()
    opt = make_optimizer("adam", net.parameters())
    update = update_function(opt)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        _train(net, update, steps=1)
    names = {e.key for e in prof.key_averages()}
    assert any(n.startswith("Optimizer.step#Adam.step") for n in names), sorted(names)[:20]


def test_an_object_that_is_not_a_torch_optimizer_is_just_called() -> None:
    class Duck:
        calls = 0

        def step(self) -> None:
            Duck.calls += 1

    update_function(Duck())()  # type: ignore[arg-type]
    assert Duck.calls == 1
