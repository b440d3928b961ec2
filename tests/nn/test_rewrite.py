"""Every rewrite on every architecture and on user-style models: the forward runs, the targeted
modules changed, nothing else changed, the original is untouched."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn import activations as acts
from steadygrad.nn.rewrite import (
    alpha_dropout,
    apply_rewrites,
    check_rewrite,
    functional_activations,
    insert_norm,
    pre_ln,
    reinit,
    swap_activation,
)
from tests.nn.user_models import ARCHITECTURES, SeqNet, SharedNet, TinyTransformer

X = torch.randn(6, 64, generator=torch.Generator().manual_seed(0))


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return ARCHITECTURES[name]()


def snapshot(model: nn.Module) -> tuple[dict[str, torch.Tensor], list[int], list[str]]:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return state, [id(m) for m in model.modules()], [repr(m) for m in model.modules()]


def assert_untouched(model: nn.Module, snap: tuple) -> None:
    state, ids, reprs = snap
    now = model.state_dict()
    assert list(now) == list(state)
    assert all(torch.equal(now[k], state[k]) for k in state)
    assert [id(m) for m in model.modules()] == ids
    assert [repr(m) for m in model.modules()] == reprs


def forward_ok(model: nn.Module) -> None:
    model = copy.deepcopy(model).train()  # BN running statistics of the original stay put
    out = model(X)
    assert out.shape == (6, 10) and torch.isfinite(out).all()


def kinds(model: nn.Module) -> dict[str, str | None]:
    return {n: acts.activation_name(m) for n, m in model.named_modules()
            if acts.activation_name(m) is not None}


ALL = list(ARCHITECTURES)


@pytest.mark.parametrize("arch", ALL)
def test_swap_activation(arch: str) -> None:
    model = build(arch)
    snap = snapshot(model)
    before = kinds(model)
    r = swap_activation(model, ["sigmoid", "tanh", "relu"], "elu")
    assert_untouched(model, snap)
    forward_ok(r.module)
    after = kinds(r.module)
    # every targeted module is now ELU, at the same path; others kept their kind
    assert set(after) == set(before)
    for path, kind in before.items():
        assert after[path] == ("elu" if kind in ("sigmoid", "tanh", "relu") else kind)
    assert {c.path for c in r.changes} == {p for p, k in before.items()
                                          if k in ("sigmoid", "tanh", "relu")}
    # weights are not touched: same names, shapes and values
    assert_untouched_params(model, r.module)


def assert_untouched_params(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_swap_keeps_sharing_and_reports_functional() -> None:
    model = SharedNet()
    r = swap_activation(model, "relu", "leaky_relu")
    assert isinstance(r.module.act, nn.LeakyReLU) and isinstance(model.act, nn.ReLU)
    assert [c.path for c in r.changes] == ["act"]
    # the shared module is still one object called three times: same output as a functional
    # leaky_relu with Keras's steadygrad default slope 0.2
    m = r.module
    with torch.no_grad():
        slope = m.act.negative_slope
        h = nn.functional.leaky_relu(m.fc1(X), slope)
        h = nn.functional.leaky_relu(m.mid(h), slope)
        h = nn.functional.leaky_relu(m.mid(h), slope)
        torch.testing.assert_close(m(X), m.out(h))
    f = swap_activation(build("functional"), ["relu", "sigmoid"], "elu")
    assert not f.changed
    assert [s.split(" (")[0] for s in f.not_rewritable] == [
        "FunctionalNet.forward: F.relu", "FunctionalNet.forward: torch.sigmoid"]
    t = swap_activation(TinyTransformer(), "relu", "elu")
    assert t.not_rewritable == ("TransformerEncoderLayer.activation: relu (a function, set at "
                                "construction)",) * 2


@pytest.mark.parametrize("arch", ALL)
def test_reinit(arch: str) -> None:
    model = build(arch)
    snap = snapshot(model)
    r = reinit(model, seed=1)
    assert_untouched(model, snap)
    forward_ok(r.module)
    old, new = model.state_dict(), r.module.state_dict()
    assert [(k, v.shape) for k, v in old.items()] == [(k, v.shape) for k, v in new.items()]
    layer_params = set()
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.RNNBase)):
            layer_params |= {f"{name}.{p}" if name else p for p, _ in m.named_parameters()}
    for key in old:
        if key in layer_params:
            assert not torch.equal(old[key], new[key]) or old[key].abs().sum() == 0, key
        else:  # BN/LN/positions/attention input projection: untouched
            assert torch.equal(old[key], new[key]), key
    assert {c.path for c in r.changes} == {
        n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.RNNBase))}


def test_reinit_matches_keras_semantics() -> None:
    # He before ReLU: std sqrt(2/fan_in); Glorot uniform bound sqrt(6/(fan_in+fan_out)) at the
    # output; zero biases (Keras defaults)
    net = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Linear(300, 10))
    m = reinit(net, seed=0).module
    assert math.isclose(m[0].weight.std().item(), math.sqrt(2 / 400), rel_tol=0.05)
    assert m[2].weight.abs().max().item() <= math.sqrt(6 / 310)
    assert m[0].bias.abs().sum() == 0
    # SELU -> LeCun normal std sqrt(1/fan_in)
    s = reinit(nn.Sequential(nn.Linear(400, 300), nn.SELU(), nn.Linear(300, 2)), seed=0).module
    assert math.isclose(s[0].weight.std().item(), math.sqrt(1 / 400), rel_tol=0.05)
    # LSTM: orthogonal recurrent kernel, forget bias 1 (Keras unit_forget_bias)
    lstm = reinit(SeqNet("lstm", hidden=8), seed=0).module.rnn
    w = lstm.weight_hh_l0.detach()  # (4H, H): orthonormal columns
    torch.testing.assert_close(w.T @ w, torch.eye(8), atol=1e-5, rtol=0)
    assert lstm.bias_ih_l0[8:16].eq(1).all() and lstm.bias_ih_l0[:8].eq(0).all()
    assert lstm.bias_hh_l0.eq(0).all()
    # functional activations: reported; the forced activation is used instead
    f = reinit(build("functional"), activation="relu", seed=0)
    assert "weight he_normal" in f.changes[0].after and not f.not_rewritable
    assert reinit(build("functional")).not_rewritable


@pytest.mark.parametrize("arch", ALL)
@pytest.mark.parametrize("kind", ["batch", "layer"])
def test_insert_norm_before(arch: str, kind: str) -> None:
    model = build(arch)
    snap = snapshot(model)
    r = insert_norm(model, kind=kind, position="before", example_input=X)
    assert_untouched(model, snap)
    forward_ok(r.module)
    old = dict(model.named_modules())
    wrapped = [c.path for c in r.changes]
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))
              and ".self_attn" not in n and ".linear" not in n and "attn." not in n]
    # every hidden Linear/Conv but the output layer is wrapped, unless reported
    reported = {s.split(":")[0] for s in r.not_rewritable}
    assert set(wrapped) | reported == set(layers[:-1])
    new_state = r.module.state_dict()
    for path in wrapped:
        seq = dict(r.module.named_modules())[path]
        layer, norm = seq[0], seq[1]
        assert type(layer) is type(old[path])
        torch.testing.assert_close(layer.weight, old[path].weight)
        assert (layer.bias is None) == (kind == "batch" or old[path].bias is None)
        expected = {("batch", nn.Linear): nn.BatchNorm1d, ("batch", nn.Conv2d): nn.BatchNorm2d,
                    ("layer", nn.Linear): nn.LayerNorm, ("layer", nn.Conv2d): nn.GroupNorm}
        assert type(norm) is expected[(kind, type(old[path]))]
    # nothing else changed: every other parameter keeps its name, shape and value
    renamed = {f"{p}.{s}" for p in wrapped for s in ("weight", "bias")}
    for key, value in model.state_dict().items():
        if key not in renamed:
            assert torch.equal(new_state[key], value), key


def test_insert_norm_dropped_bias_is_redundant() -> None:
    # oracle: in training mode BN(Wx + b) == BN(Wx): the dropped bias changed nothing
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    net[0].bias.data.uniform_(-3, 3)
    r = insert_norm(net)
    bn = r.module[0][1]
    with torch.no_grad():
        expected = net[2](torch.tanh(bn(net[0](X))))
    bn.reset_running_stats()
    torch.testing.assert_close(r.module(X), expected)


def test_insert_norm_after_and_shared_activation() -> None:
    r = insert_norm(build("mlp"), position="after")
    assert [c.path for c in r.changes] == ["1", "4"]
    assert isinstance(r.module[1], nn.Sequential) and isinstance(r.module[1][1], nn.BatchNorm1d)
    assert r.module[0].bias is not None  # the bias stays: the activation sits in between
    forward_ok(r.module)
    shared = insert_norm(SharedNet(), position="after", example_input=X)
    assert not shared.changed
    assert [s.split(":")[0] for s in shared.not_rewritable] == ["fc1", "mid"]
    assert "is shared with other layers" in shared.not_rewritable[1]
    # the shared Linear 'mid' (used twice) gets one norm, shared as the layer is
    s = insert_norm(SharedNet(), position="before")
    assert [c.path for c in s.changes] == ["fc1", "mid"]
    forward_ok(s.module)
    t = insert_norm(TinyTransformer(), example_input=X)
    assert t.not_rewritable == ("embed: output of rank 3 (BatchNorm1d would normalize axis 1, "
                                "not the features); use kind='layer'",)
    with pytest.raises(ConfigError, match="position"):
        insert_norm(SharedNet(), position="middle")


@pytest.mark.parametrize("arch", ALL)
def test_pre_ln(arch: str) -> None:
    model = build(arch)
    snap = snapshot(model)
    r = pre_ln(model)
    assert_untouched(model, snap)
    forward_ok(r.module)
    new_state = r.module.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(new_state[key], value)
    if arch == "transformer":
        assert [c.path for c in r.changes] == ["encoder.layers.0", "encoder.layers.1",
                                               "encoder.norm"]
        assert set(new_state) - set(model.state_dict()) == {"encoder.norm.weight",
                                                            "encoder.norm.bias"}
        # oracle: torch's own pre-LN layer with the same weights
        torch.manual_seed(0)
        ref = TinyTransformer(norm_first=True)
        ref.encoder.norm = nn.LayerNorm(16)
        ref.load_state_dict(new_state)
        ref.eval()
        r.module.eval()
        torch.testing.assert_close(r.module(X), ref(X))
    elif arch == "user_block":
        assert not r.changed and "UserBlockTransformer" in r.not_rewritable[0]
    else:
        assert not r.changed and not r.not_rewritable


@pytest.mark.parametrize("arch", ALL)
def test_alpha_dropout(arch: str) -> None:
    model = build(arch)
    snap = snapshot(model)
    r = alpha_dropout(model)
    assert_untouched(model, snap)
    forward_ok(r.module)
    before = {n for n, m in model.named_modules() if isinstance(m, nn.Dropout)}
    after = dict(r.module.named_modules())
    assert {c.path for c in r.changes} == before
    for path in before:
        assert type(after[path]) is nn.AlphaDropout
        assert after[path].p == dict(model.named_modules())[path].p
    assert not any(isinstance(m, nn.Dropout) for m in r.module.modules())
    assert_untouched_params(model, r.module)


def test_apply_rewrites_and_checks() -> None:
    model = build("cnn")
    steps = [{"name": "swap_activation", "old": ["tanh"], "new": "relu"},
             {"name": "insert_norm"}, {"name": "reinit"}]
    results = apply_rewrites(model, steps, seed=3, example_input=X)
    assert [r.rewrite["name"] for r in results] == ["swap_activation", "insert_norm", "reinit"]
    final = results[-1].module
    forward_ok(final)
    assert results[-1].rewrite["seed"] == 3
    assert isinstance(final.features[1], nn.ReLU)
    assert isinstance(final.features[0], nn.Sequential)
    with pytest.raises(ConfigError, match="did you mean 'pre_ln'"):
        check_rewrite({"name": "pre_lnn"})
    with pytest.raises(ConfigError, match=r"rewrites\[0\]\.kind"):
        apply_rewrites(model, [{"name": "pre_ln", "kind": "x"}])


def test_functional_activations_filter() -> None:
    found = functional_activations(build("functional"), ["sigmoid"])
    assert found == ["FunctionalNet.forward: torch.sigmoid (line 2)"]
