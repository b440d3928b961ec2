"""``[model] rewrites`` on every architecture's section: validated like the MLP's, applied to the
built model (checked against the module tree and against the Python API on the same model),
written back to the run's config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import steadygrad as sg
from steadygrad.experiments.config import config_from_dict, config_to_dict
from steadygrad.experiments.execute import build_model, load_data, run_config
from steadygrad.experiments.loader import load_config
from steadygrad.nn.rewrite import apply_rewrites, pre_ln

IMAGES = {"name": "digits", "shape": "image", "n_train": 64}
TOKENS = {"name": "first_token", "length": 5, "n": 64, "vocab": 4}

SWAP_ELU = {"name": "swap_activation", "old": ["relu"], "new": "elu"}
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "cnn": (IMAGES, {"arch": "cnn", "filters": [4, 8],
                     "rewrites": [SWAP_ELU, {"name": "insert_norm", "kind": "batch"}]}),
    "resnet": (IMAGES, {"arch": "resnet", "stages": [4, 8], "blocks_per_stage": 1,
                        "rewrites": [{"name": "swap_activation", "old": ["relu"],
                                      "new": "leaky_relu"}]}),
    "rnn": (TOKENS, {"arch": "rnn", "hidden": 4, "vocab": 4, "dense": [8],
                     "activation": "sigmoid",
                     "rewrites": [{"name": "swap_activation", "old": ["sigmoid"], "new": "elu"},
                                  {"name": "insert_norm", "kind": "layer"}]}),
    "transformer": (TOKENS, {"arch": "transformer", "d_model": 8, "heads": 2, "layers": 2,
                             "ff": 16, "vocab": 4, "norm_first": False, "rewrites": ["pre_ln"]}),
}


def _pair(arch: str) -> tuple[Any, Any, list[Any], Any]:
    """The model of the case with its rewrites, the same section without them, the records."""
    data_section, model_section = CASES[arch]
    cfg = config_from_dict({"data": data_section, "model": model_section})
    plain_cfg = config_from_dict({"data": data_section, "model": {
        k: v for k, v in model_section.items() if k != "rewrites"}})
    data = load_data(cfg)
    records: list[Any] = []
    rewritten = build_model(cfg, data, records)
    return rewritten, build_model(plain_cfg, data), records, data


def _count(model: nn.Module, cls: type | tuple[type, ...]) -> int:
    return sum(isinstance(m, cls) for m in model.modules())


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("arch", sorted(CASES))
def test_rewrites_of_every_architecture_are_applied(arch: str) -> None:
    rewritten, plain, records, data = _pair(arch)
    # oracle 1: the config path is the Python API on the same freshly built model
    specs = CASES[arch][1]["rewrites"]
    by_hand = apply_rewrites(plain, specs, seed=0, example_input=data.x_train[:8])[-1].module
    assert repr(rewritten) == repr(by_hand) and _same_state(rewritten, by_hand)
    assert len(records) == len(specs) and all(r.changes for r in records)
    if arch == "cnn":  # every ReLU is an ELU, every hidden conv is conv -> BatchNorm2d
        assert _count(rewritten, nn.ReLU) == 0
        assert _count(rewritten, nn.ELU) == _count(plain, nn.ReLU) == 2
        assert _count(rewritten, nn.BatchNorm2d) == _count(plain, nn.Conv2d) == 2
        for name in ("conv1", "conv2"):
            block = getattr(rewritten, name)
            assert isinstance(block[0], nn.Conv2d) and isinstance(block[1], nn.BatchNorm2d)
            assert block[0].bias is None  # batch norm's shift replaces it
        assert torch.equal(rewritten.output.weight, plain.output.weight)
    elif arch == "resnet":  # activations swapped in place: same parameters, same values
        assert _count(rewritten, nn.ReLU) == 0
        assert _count(rewritten, nn.LeakyReLU) == _count(plain, nn.ReLU) > 0
        assert _same_state(rewritten, plain)
    elif arch == "rnn":
        assert isinstance(plain.dense_act1, nn.Sigmoid)
        assert isinstance(rewritten.dense_act1, nn.ELU)
        assert isinstance(rewritten.dense1[1], nn.LayerNorm)
        assert torch.equal(rewritten.rnn.weight_hh_l0, plain.rnn.weight_hh_l0)
    else:
        assert [b.norm_first for b in (plain.block1, plain.block2)] == [False, False]
        assert [b.norm_first for b in (rewritten.block1, rewritten.block2)] == [True, True]
    with torch.no_grad():  # eval mode: batch norm's running statistics stay as built
        out = rewritten.eval()(data.x_train[:8])
        assert out.shape == plain.eval()(data.x_train[:8]).shape and torch.isfinite(out).all()


def test_pre_ln_on_the_transformer_builder_is_the_pre_ln_builder() -> None:
    """Oracle: ``sg.transformer(norm_first=True)`` with the same seed (the same weights, a
    final ``norm``): switching a post-LN build gives the same module tree, state and output."""
    kwargs: dict[str, Any] = {"vocab": 5, "d_model": 8, "heads": 2, "layers": 2, "ff": 16,
                              "num_outputs": 3, "seed": 1}
    post = sg.transformer((6,), norm_first=False, **kwargs)
    before = {k: v.clone() for k, v in post.state_dict().items()}
    r = pre_ln(post)
    ref = sg.transformer((6,), norm_first=True, **kwargs)
    assert [c.path for c in r.changes] == ["block1", "block2", "norm"]
    assert "norm" not in dict(post.named_children())  # the original is untouched
    assert all(torch.equal(v, before[k]) for k, v in post.state_dict().items())
    assert repr(r.module) == repr(ref) and _same_state(r.module, ref)
    x = torch.randint(0, 5, (4, 6)).float()
    r.module.eval()
    ref.eval()
    assert torch.equal(r.module(x), ref(x))


@pytest.mark.parametrize("arch", sorted(CASES))
def test_sections_with_rewrites_round_trip(arch: str) -> None:
    data_section, model_section = CASES[arch]
    cfg = config_from_dict({"data": data_section, "model": model_section})
    table = config_to_dict(cfg)
    assert list(table["model"])[-1] == "rewrites"  # after the builder's keys
    assert config_from_dict(table) == cfg
    plain = config_to_dict(config_from_dict({"model": {"arch": arch}}))
    assert "rewrites" not in plain["model"]  # no empty list in files without rewrites


def test_a_run_with_rewrites_writes_them_to_its_config(tmp_path: Path) -> None:
    data_section, model_section = CASES["transformer"]
    cfg = config_from_dict({"data": data_section, "model": model_section,
                            "train": {"epochs": 1}, "diagnostics": {"every": 2}})
    result = run_config(cfg, tmp_path)
    assert result.status == "done", result.error
    assert load_config(result.run_dir / "config.toml") == cfg


@pytest.mark.slow  # two short trainings: 13.5 s measured on the busy 2-core machine
def test_the_doctor_tries_rewrites_on_an_architecture_config(tmp_path: Path) -> None:
    """A deep sigmoid CNN config: the doctor's first remedy is a rewrite patch
    (``model.rewrites+``), which a CNN section now accepts, so it is trained, not skipped, and
    the repaired config is a valid CNN section with the rewrites."""
    from steadygrad.doctor.core import doctor

    cfg = config_from_dict({
        "data": {"name": "digits", "shape": "image", "n_train": 200},
        "model": {"arch": "cnn", "filters": [8] * 6, "pool": "none",
                  "activation": "sigmoid", "kernel_initializer": "glorot_uniform"},
        "train": {"epochs": 2, "optimizer": {"name": "sgd", "learning_rate": 0.01}},
        "diagnostics": {"every": 5}})
    result = doctor(cfg, seeds=1, max_trials=1, out_dir=tmp_path / "d")
    assert result.baseline.mean is not None and result.baseline.mean < 0.2  # it fails
    assert [t.label for t in result.trials] == ["elu_he"]
    assert "model.rewrites+" in result.trials[0].patch
    repaired = load_config(tmp_path / "d" / "repaired.toml")
    assert repaired.model.arch == "cnn" and [c.name for c in repaired.model.rewrites] == [
        "swap_activation", "reinit"]
    model = build_model(repaired, load_data(repaired))
    assert _count(model, nn.Sigmoid) == 0 and _count(model, nn.ELU) == 6


def test_the_shared_keys_are_declared_once() -> None:
    """Every key of ArchOptions (but ``arch``) is a key of the MLP's section with the same
    default and the same check function: one spec, not copies that can drift apart."""
    import dataclasses

    from steadygrad.experiments.archs import ARCHS, ArchOptions
    from steadygrad.experiments.config import _OPTIONS, ModelConfig

    mlp = {f.name: f for f in dataclasses.fields(ModelConfig)}
    shared = [f for f in dataclasses.fields(ArchOptions) if f.name != "arch"]
    assert {f.name for f in shared} <= set(mlp)
    for f in shared:
        assert f.default == mlp[f.name].default, f.name
        assert f.metadata["check"] is mlp[f.name].metadata["check"], f.name
    for arch, cls in ARCHS.items():
        if arch != "mlp":
            assert issubclass(cls, ArchOptions)
            for f in dataclasses.fields(cls):
                if f.name in _OPTIONS:  # bn_momentum too, where it exists
                    assert f.metadata["check"] is mlp[f.name].metadata["check"], (arch, f.name)
