"""The flat training step against torch: same updates, same optimizer state, same clipping.

Oracle: ``torch.optim`` stepping the same model on the same batches through autograd (the flat
rules reproduce torch's formulas; only float rounding may differ), and
:class:`~steadygrad.optim.clipping.GradientClipper` for the clipping options. The flat step runs
uncompiled here (``compile=False``: the same traced function, run eagerly); the compiled
(traced) path is compared with it in the slow tests at the end, and with the eager trainer in
``test_engines.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from safetensors.torch import save
from torch import nn

from steadygrad.optim.clipping import GradientClipper
from steadygrad.train._flat.flat import FlatStep
from steadygrad.train._flat.rules import rule_for
from steadygrad.train._flat.segments import PER_TENSOR_MIN

F = nn.functional

CONFIGS: list[tuple[type, dict[str, Any]]] = [
    (torch.optim.SGD, {"lr": 0.1}),
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01,
                       "foreach": True}),
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.8, "dampening": 0.3, "maximize": True,
                       "foreach": False}),
    (torch.optim.Adam, {"lr": 0.01}),
    (torch.optim.Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05, "foreach": True}),
    (torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "maximize": True,
                        "weight_decay": 0.05, "decoupled_weight_decay": True,
                        "foreach": False}),
    (torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1, "foreach": True}),
    (torch.optim.AdamW, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "amsgrad": True,
                         "maximize": True, "foreach": False}),
    (torch.optim.NAdam, {"lr": 0.01, "eps": 1e-7, "momentum_decay": 1.0, "foreach": True}),
    (torch.optim.NAdam, {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True,
                         "betas": (0.8, 0.99), "maximize": True}),
    (torch.optim.NAdam, {"lr": 0.01, "weight_decay": 0.1, "foreach": False}),
    (torch.optim.Adamax, {"lr": 0.01, "weight_decay": 0.01, "foreach": True}),
    (torch.optim.Adamax, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "maximize": True,
                          "foreach": False}),
    (torch.optim.RMSprop, {"lr": 0.01, "foreach": True}),
    (torch.optim.RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.01}),
    (torch.optim.RMSprop, {"lr": 0.02, "alpha": 0.9, "eps": 1e-6, "maximize": True,
                           "foreach": False}),
    (torch.optim.Adagrad, {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01, "foreach": True}),
    (torch.optim.Adagrad, {"lr": 0.1, "eps": 1e-6, "initial_accumulator_value": 0.1,
                           "maximize": True, "foreach": False}),
]
"""Every rule with every option its allow-list accepts set away from torch's default in at
least one entry (checked by ``test_configs_cover_every_option_each_rule_accepts``)."""


def test_configs_cover_every_option_each_rule_accepts() -> None:
    """The oracle test below is only as complete as CONFIGS: each allow-listed option that the
    optimizer's constructor takes is exercised with a non-default value (``params`` and
    ``initial_lr``, which no update reads, and AdamW's fixed ``decoupled_weight_decay`` are
    not constructor options)."""
    import inspect

    from steadygrad.train._flat.rules import _RULES, COMMON, OFF

    for cls, rule in _RULES.items():
        takes = set(inspect.signature(cls.__init__).parameters)
        defaults = cls([nn.Parameter(torch.zeros(1))]).param_groups[0]
        covered = {k for c, kw in CONFIGS if c is cls for k, v in kw.items()
                   if k not in defaults or v != defaults[k]}
        if "foreach" in covered:  # None by default: both True and False must appear
            values = {kw["foreach"] for c, kw in CONFIGS if c is cls and "foreach" in kw}
            covered -= set() if values == {True, False} else {"foreach"}
        wanted = ((COMMON | rule.options) & takes) - {"params"} - set(OFF)
        assert wanted <= covered, f"{cls.__name__}: {sorted(wanted - covered)} untested"


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8, bias=False), nn.BatchNorm1d(8), nn.ELU(),
                         nn.Linear(8, 3))


def _batches(n: int = 6) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g))
            for _ in range(n)]


def _torch_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor, clipper: GradientClipper | None = None) -> float:
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    if clipper is not None:
        clipper(model.parameters())
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def _pair(cls: type, kw: dict[str, Any], groups: bool = False):
    models = _net(), _net()

    def params(m: nn.Module) -> Any:
        if not groups:
            return m.parameters()
        return [{"params": [m[0].weight, m[3].weight]},
                {"params": [m[1].weight, m[1].bias, m[3].bias], "lr": kw["lr"] / 2}]

    return models, (cls(params(models[0]), **kw), cls(params(models[1]), **kw))


def _close_state(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> None:
    sa, sb = a.state_dict()["state"], b.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        assert sa[i].keys() == sb[i].keys()
        for k in sa[i]:
            va, vb = sa[i][k], sb[i][k]
            if isinstance(va, torch.Tensor):
                torch.testing.assert_close(va, vb, rtol=1e-5, atol=1e-6, msg=f"state {i} {k}")
            else:
                assert va == vb


@pytest.mark.parametrize(("cls", "kw"), CONFIGS, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("groups", [False, True], ids=["one-group", "two-groups"])
@pytest.mark.parametrize("per_tensor_min", [PER_TENSOR_MIN, 20], ids=["concat", "per-tensor"])
def test_flat_step_follows_torch_optimizer(cls: type, kw: dict[str, Any], groups: bool,
                                           per_tensor_min: int) -> None:
    (ref, ours), (opt_ref, opt_ours) = _pair(cls, kw, groups)
    batches = _batches()
    x0, y0 = batches[0]
    _torch_step(ref, opt_ref, x0, y0)
    _torch_step(ours, opt_ours, x0, y0)  # torch creates the optimizer state
    flat = FlatStep.create(ours, F.cross_entropy, opt_ours, compile=False,
                           per_tensor_min=per_tensor_min)
    assert isinstance(flat, FlatStep) and flat.engage()
    # per-tensor: the two weights (40 and 24 elements) get segments of their own
    assert len(flat.segments) == (len(opt_ours.param_groups) if per_tensor_min > 40 else 3)
    for x, y in batches[1:]:
        expected = _torch_step(ref, opt_ref, x, y)
        r = flat(x, y, measure=True)
        assert r.ok and r.loss == pytest.approx(expected, rel=1e-5)
    for a, b in zip(ref.state_dict().values(), ours.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    _close_state(opt_ref, opt_ours)


@pytest.mark.parametrize("option", [{"clipvalue": 0.01}, {"clipnorm": 0.05},
                                    {"global_clipnorm": 0.05}], ids=str)
def test_flat_clipping_matches_gradient_clipper(option: dict[str, float]) -> None:
    (ref, ours), (opt_ref, opt_ours) = _pair(torch.optim.SGD, {"lr": 0.5, "momentum": 0.9})
    clipper = GradientClipper(**option)
    batches = _batches()
    _torch_step(ref, opt_ref, *batches[0], clipper)
    _torch_step(ours, opt_ours, *batches[0], clipper)
    flat = FlatStep.create(ours, F.cross_entropy, opt_ours, clipper=clipper, compile=False)
    assert isinstance(flat, FlatStep) and flat.engage()
    for x, y in batches[1:]:
        loss = F.cross_entropy(ref(x), y)
        loss.backward()
        expected_norm = float(clipper(ref.parameters()))
        opt_ref.step()
        opt_ref.zero_grad()
        r = flat(x, y)
        assert r.grad_norm == pytest.approx(expected_norm, rel=1e-5)  # pre-clip, every step
    for a, b in zip(ref.parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_non_finite_step_leaves_weights_and_state_untouched() -> None:
    (_, model), (_, opt) = _pair(torch.optim.NAdam, {"lr": 0.01})
    x, y = _batches(1)[0]
    _torch_step(model, opt, x, y)
    flat = FlatStep.create(model, F.cross_entropy, opt, compile=False)
    assert isinstance(flat, FlatStep) and flat.engage()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    moments = flat.state["exp_avg"].clone(), flat.scalars[0]["mu_product"].clone()
    step = float(opt.state[model[0].weight]["step"])
    bad = x.clone()
    bad[0, 0] = float("nan")
    r = flat(bad, y)
    assert not r.ok and r.loss != r.loss  # NaN loss reported, update skipped
    for k, v in before.items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0)
    torch.testing.assert_close(flat.state["exp_avg"], moments[0], rtol=0, atol=0)
    assert float(flat.scalars[0]["mu_product"]) == float(moments[1])
    assert float(opt.state[model[0].weight]["step"]) == step
    assert flat(x, y).ok and float(opt.state[model[0].weight]["step"]) == step + 1


def test_release_gives_back_separate_storage_and_torch_continues_exactly() -> None:
    (ref, ours), (opt_ref, opt_ours) = _pair(torch.optim.Adam, {"lr": 0.01})
    batches = _batches()
    for m, o in ((ref, opt_ref), (ours, opt_ours)):
        _torch_step(m, o, *batches[0])
    flat = FlatStep.create(ours, F.cross_entropy, opt_ours, compile=False)
    assert isinstance(flat, FlatStep) and flat.engage()
    shared = {p.untyped_storage().data_ptr() for p in ours.parameters()}
    assert shared == {flat.params.untyped_storage().data_ptr()}  # views of one buffer
    for x, y in batches[1:3]:
        _torch_step(ref, opt_ref, x, y)
        flat(x, y)
    flat.release()
    ptrs = [p.untyped_storage().data_ptr() for p in ours.parameters()]
    assert len(set(ptrs)) == len(ptrs)
    steps = [opt_ours.state[p]["step"] for p in ours.parameters()]
    assert len({id(s) for s in steps}) == len(steps)  # each parameter its own step again
    save(dict(ours.state_dict()))  # safetensors refuses shared storage; this must not raise
    for x, y in batches[3:]:  # plain torch steps after release follow the reference
        _torch_step(ref, opt_ref, x, y)
        _torch_step(ours, opt_ours, x, y)
    for a, b in zip(ref.parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    _close_state(opt_ref, opt_ours)


def test_flat_step_waits_for_optimizer_state_and_declines_what_it_cannot_do() -> None:
    model = _net()
    opt = torch.optim.Adam(model.parameters())
    flat = FlatStep.create(model, F.cross_entropy, opt, compile=False)
    assert isinstance(flat, FlatStep) and not flat.engage()  # no state yet: the first step is eager
    frozen = _net()
    frozen[0].weight.requires_grad_(False)
    reason = FlatStep.create(frozen, F.cross_entropy, torch.optim.Adam(frozen.parameters()),
                             compile=False)
    assert reason == "the optimizer's parameters are not exactly the model's trainable ones"
    partial = _net()
    reason = FlatStep.create(partial, F.cross_entropy,
                             torch.optim.SGD(partial[3].parameters(), lr=0.1))
    assert reason == "the optimizer's parameters are not exactly the model's trainable ones"
    assert rule_for(torch.optim.SGD(model.parameters(), lr=0.1, foreach=True)) is not None
    reason = FlatStep.create(model, F.cross_entropy, torch.optim.LBFGS(model.parameters()))
    assert reason == "no flat rule for LBFGS"


def test_compile_key_reads_the_module_state_again_only_after_invalidate() -> None:
    (_, model), (_, opt) = _pair(torch.optim.SGD, {"lr": 0.1})
    flat = FlatStep.create(model, F.cross_entropy, opt, compile=False)
    assert isinstance(flat, FlatStep) and flat.engage()
    x, y = _batches(1)[0]
    key = flat.compile_key(x, y)
    model[1].eval()
    assert flat.compile_key(x, y) == key  # not re-read between invalidations (cheap per step)
    flat.invalidate()
    changed = flat.compile_key(x, y)
    assert changed != key
    assert flat.compile_key(x[:8], y[:8]) != changed  # another batch shape
    flat(x, y, key=changed)  # the new key gets its own graph
    assert len(flat._compiled) == 1 and changed in flat._compiled


# ---------------------------------------------------------------------- compiled (slow)
def _engaged(cls: type, kw: dict[str, Any], model: nn.Module, compile: bool,
             **extra: Any) -> FlatStep:
    opt = cls(model.parameters(), **kw)
    x, y = _batches(1)[0]
    _torch_step(model, opt, x, y)
    flat = FlatStep.create(model, F.cross_entropy, opt, compile=compile, **extra)
    assert isinstance(flat, FlatStep) and flat.engage()
    return flat


@pytest.mark.slow
def test_traced_step_matches_the_uncompiled_step_and_skips_non_finite() -> None:
    ref, ours = _net(), _net()
    kw = {"lr": 0.01, "eps": 1e-7, "momentum_decay": 1.0}
    clip = GradientClipper(global_clipnorm=0.5)
    flat_ref = _engaged(torch.optim.NAdam, kw, ref, False, clipper=clip)
    flat = _engaged(torch.optim.NAdam, kw, ours, True, clipper=clip, per_tensor_min=30)
    assert [len(seg.members) for seg in flat.segments] == [4, 1]  # 40-weight on its own
    batches = _batches(5)
    bad = batches[2][0].clone()
    bad[0, 0] = float("inf")
    batches.insert(3, (bad, batches[2][1]))
    for x, y in batches:
        a, b = flat_ref(x, y), flat(x, y)
        assert a.ok == b.ok and (a.ok or b.loss != b.loss or b.loss == float("inf"))
        if a.ok:
            assert b.loss == pytest.approx(a.loss, rel=1e-5)
            assert b.grad_norm == pytest.approx(a.grad_norm, rel=1e-5)
    assert flat.fallback is None  # traced and compiled with Inductor, not torch.compile
    for a, b in zip(ref.state_dict().values(), ours.state_dict().values(), strict=True):
        # weights and BN statistics (the bad batch made the running statistics NaN in both,
        # as in eager training: the forward updates them before the loss is known)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)
    _close_state(flat_ref.optimizer, flat.optimizer)  # per parameter (the layouts differ)


class _Branchy(nn.Module):
    """A forward with data-dependent Python control flow (tracing on fake tensors fails)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        return h * 2 if float(h.sum()) > 0 else h


@pytest.mark.slow
def test_untraceable_model_falls_back_to_torch_compile_with_the_same_result() -> None:
    torch.manual_seed(0)
    ref = _Branchy()
    ours = _Branchy()
    ours.load_state_dict(ref.state_dict())
    flat_ref = _engaged(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, ref, False)
    flat = _engaged(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, ours, True)
    for x, y in _batches(4):
        assert flat(x, y).loss == pytest.approx(flat_ref(x, y).loss, rel=1e-5)
    assert flat.fallback is not None and "data" in flat.fallback.lower()
    torch.testing.assert_close(ours.lin.weight, ref.lin.weight, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_traced_dropout_draws_new_masks_each_step_and_follows_the_seed() -> None:
    def outputs(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Dropout(0.5), nn.Linear(5, 3))
        flat = _engaged(torch.optim.SGD, {"lr": 0.0}, model, True)  # lr 0: fixed weights
        x, y = _batches(1)[0]
        torch.manual_seed(seed)
        outs = [flat(x, y).outputs for _ in range(3)]
        assert flat.fallback is None
        return outs

    first, again, other = outputs(1), outputs(1), outputs(2)
    assert not torch.equal(first[0], first[1])  # a new mask every step, not one baked in
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the seed decides the masks
    assert not torch.equal(first[0], other[0])
