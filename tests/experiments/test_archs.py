"""``[model] arch = ...``: validation, round trip, one factory, example configs, CLI summary."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

import steadygrad as sg
from steadygrad.cli.main import main
from steadygrad.errors import ConfigError
from steadygrad.experiments.archs import (
    ARCHS,
    CNNConfig,
    ResNetConfig,
    RNNConfig,
    TransformerConfig,
    model_from_config,
)
from steadygrad.experiments.config import ModelConfig, config_from_dict, config_to_dict
from steadygrad.experiments.execute import build_model, load_data
from steadygrad.experiments.loader import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ARCH_EXAMPLES = ("cnn.toml", "resnet.toml", "rnn_lstm.toml", "transformer.toml")

BUILDERS = {"mlp": sg.mlp, "cnn": sg.cnn, "resnet": sg.resnet, "rnn": sg.rnn,
            "transformer": sg.transformer}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_key_is_a_keyword_of_the_builder(arch: str) -> None:
    import inspect

    params = inspect.signature(BUILDERS[arch]).parameters
    from steadygrad.experiments.archs import _NOT_BUILDER_KEYS

    # factory/factory_kwargs/rewrites say where the model comes from, not how mlp builds it
    keys = {f.name for f in dataclasses.fields(ARCHS[arch])} - _NOT_BUILDER_KEYS
    assert keys <= set(params), keys - set(params)
    # the defaults are the builder's (one value per setting, no second list)
    section = ARCHS[arch]()
    for key in keys:
        value = getattr(section, key)
        value = value.to_value() if hasattr(value, "to_value") else value
        assert value == params[key].default, key
    # what the config does not hold comes from the data
    assert set(params) - keys <= {"input_shape", "output", "num_outputs", "generator",
                                  "layer_overrides"}


@pytest.mark.parametrize(("table", "message"), [
    ({"arch": "cnn", "filter": [8]},
     "model.filter: got unknown key 'filter'; expected one of activation, arch, "
     "bias_initializer, bn_eps, bn_momentum, dense, dropout, dropout_kind, filters, head, "
     "kernel_initializer, kernel_size, l1, l2, max_norm, norm, normalization, pool, pool_every, "
     "rewrites, seed; did you mean 'filters'?"),
    ({"arch": "cnnn"}, "model.arch: got 'cnnn'; expected one of 'mlp', 'cnn', 'resnet', 'rnn', "
     "'transformer'; did you mean 'cnn'?"),
    ({"arch": "resnet", "normalization": "after"},
     "model.normalization: got 'after'; expected one of 'before', 'none'"),
    ({"arch": "rnn", "cell": "lstn"},
     "model.cell: got 'lstn'; expected one of 'rnn', 'gru', 'lstm'; did you mean 'lstm'?"),
    ({"arch": "transformer", "norm_first": "yes"},
     "model.norm_first: got 'yes'; expected true or false"),
    ({"arch": "transformer", "hidden": [8]},
     "model.hidden: got unknown key 'hidden'; expected one of activation, arch, "),
    ({"arch": "mlp", "filters": [8]}, "model.filters: got unknown key 'filters'"),
    ({"arch": "cnn", "activation": "rleu"}, "model.activation: got 'rleu'"),
    # rewrites: the MLP section's checker, the same messages on every architecture
    ({"arch": "resnet", "rewrites": "pre_ln"},
     "model.rewrites: got 'pre_ln'; expected a list of rewrites; e.g. rewrites = "),
    ({"arch": "transformer", "rewrites": ["pre_lm"]},
     "model.rewrites[0]: got 'pre_lm'; expected one of alpha_dropout, insert_norm, pre_ln, "
     "reinit, swap_activation; did you mean 'pre_ln'?"),
    ({"arch": "rnn", "rewrites": [{"name": "insert_norm", "knd": "layer"}]},
     "model.rewrites[0].knd: got unknown key 'knd'; expected one of "),
    ({"arch": "cnn", "factory": "pkg.nets:make"},
     "model.factory: got 'pkg.nets:make'; expected no model.factory together with "
     "model.arch = 'cnn'"),
])
def test_bad_sections_name_the_field(table: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"model": table})
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("section", [
    {"arch": "cnn", "filters": [8, 16], "normalization": "after", "norm": "layer",
     "activation": {"name": "leaky_relu", "alpha": 0.1}, "dense": [32], "max_norm": 3.0},
    {"arch": "resnet", "stages": [8], "blocks_per_stage": [2], "zero_init_residual": True},
    {"arch": "rnn", "cell": "gru", "hidden": 16, "vocab": 10, "dense": []},
    {"arch": "transformer", "d_model": 8, "heads": 2, "norm_first": False,
     "positions": "sinusoidal", "activation": "gelu"},
    {"arch": "mlp", "hidden": [8]},
])
def test_sections_round_trip(section: dict) -> None:
    cfg = config_from_dict({"model": section})
    assert cfg.model.arch == section["arch"]
    assert config_from_dict(config_to_dict(cfg)) == cfg
    if section["arch"] == "mlp":
        assert isinstance(cfg.model, ModelConfig) and "arch" not in config_to_dict(cfg)["model"]
    else:
        assert config_to_dict(cfg)["model"]["arch"] == section["arch"]


def test_model_from_config_is_the_builder_with_the_sections_keywords() -> None:
    for section, shape, direct in [
        (CNNConfig(filters=(4,), normalization="before", seed=3), (1, 8, 8),
         lambda: sg.cnn((1, 8, 8), (4,), normalization="before", num_outputs=10, seed=3)),
        (ResNetConfig(stages=(4,), blocks_per_stage=1), (1, 8, 8),
         lambda: sg.resnet((1, 8, 8), (4,), 1, num_outputs=10, seed=7)),
        (RNNConfig(cell="rnn", hidden=4), (5, 2),
         lambda: sg.rnn((5, 2), 4, cell="rnn", num_outputs=10, seed=7)),
        (TransformerConfig(d_model=4, heads=2, layers=1, ff=8), (5, 2),
         lambda: sg.transformer((5, 2), d_model=4, heads=2, layers=1, ff=8, num_outputs=10,
                                seed=7)),
    ]:
        built = model_from_config(section, shape, num_outputs=10, seed=7)  # seed: train.seed
        ref = direct()
        assert repr(built) == repr(ref)
        for (name, a), (_, b) in zip(built.state_dict().items(), ref.state_dict().items(),
                                     strict=True):
            assert torch.equal(a, b), name


def test_token_vocab_is_checked_against_the_data() -> None:
    cfg = config_from_dict({"data": {"name": "first_token", "length": 4, "n": 50, "vocab": 6},
                            "model": {"arch": "rnn", "vocab": 5, "hidden": 4}})
    with pytest.raises(ConfigError, match=r"^model\.vocab: got 5; expected an int > 5"):
        build_model(cfg, load_data(cfg))


def test_cnn_on_flat_data_says_how_to_get_images() -> None:
    cfg = config_from_dict({"model": {"arch": "cnn"}})  # digits, flat (64,)
    with pytest.raises(ConfigError, match=r'^data\.shape: got \(64,\).*shape = "image"'):
        build_model(cfg, load_data(cfg))


@pytest.mark.parametrize("name", ARCH_EXAMPLES)
def test_example_configs_build_and_summarize(name: str, capsys) -> None:
    cfg = load_config(EXAMPLES / name)
    arch = name.split(".")[0].split("_")[0]
    assert cfg.model.arch == arch
    data = load_data(cfg)
    model = build_model(cfg, data)
    assert main(["summary", str(EXAMPLES / name), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    buffers = sum(b.numel() for n, b in model.named_buffers()
                  if b.is_floating_point() and "running" in n)
    assert doc["total_params"] == sum(p.numel() for p in model.parameters()) + buffers
    assert doc["input_shape"] == list(data.input_shape)
    assert doc["rows"][-1]["output_shape"] == [None, data.num_classes]


@pytest.mark.parametrize("name", ARCH_EXAMPLES)
def test_example_configs_train_on_a_small_budget(name: str, tmp_path: Path) -> None:
    from steadygrad.experiments.execute import run_config

    small = ["train.epochs=1", "diagnostics.every=5"]
    small.append("data.n_train=200" if name in ("cnn.toml", "resnet.toml") else "data.n=200")
    result = run_config(load_config(EXAMPLES / name, small), tmp_path)
    assert result.status == "done", result.error
    assert (result.run_dir / "health.json").is_file()
    assert result.summary["epochs_run"] == 1


@pytest.mark.slow  # the full examples: 2-16 s each when measured, more on a busy machine
@pytest.mark.parametrize(("name", "accuracy"), [
    ("cnn.toml", 0.84), ("resnet.toml", 0.95), ("rnn_lstm.toml", 0.80),
    ("transformer.toml", 1.00),
])
def test_examples_reach_the_documented_accuracy(name: str, accuracy: float,
                                                tmp_path: Path) -> None:
    from steadygrad.experiments.execute import run_config

    result = run_config(load_config(EXAMPLES / name), tmp_path)
    assert result.status == "done", result.error
    assert result.metrics["val_accuracy"] >= accuracy  # docs/architectures.md


def test_a_sweep_over_an_architecture_axis(tmp_path: Path) -> None:
    from steadygrad.experiments.execute import run_config
    from steadygrad.experiments.space import sweep_from_dict

    sweep = sweep_from_dict({
        "name": "cells", "base": {
            "data": {"name": "first_token", "length": 4, "n": 60, "vocab": 3},
            "model": {"arch": "rnn", "hidden": 4, "vocab": 3},
            "train": {"epochs": 1}},
        "axes": {"model.cell": ["rnn", "gru", "lstm"]}})
    assert [r.config.model.cell for r in sweep.runs] == ["rnn", "gru", "lstm"]
    for run in sweep.runs:
        result = run_config(run.config, tmp_path / run.name)
        assert result.status == "done", result.error
    with pytest.raises(ConfigError, match=r"model\.cell: got 'lstn'"):
        sweep_from_dict({"base": {"model": {"arch": "rnn"}}, "axes": {"model.cell": ["lstn"]}})


def test_the_adding_problem_trains_a_regression_head(tmp_path: Path) -> None:
    from steadygrad.experiments.execute import run_config

    cfg = config_from_dict({
        "data": {"name": "adding", "length": 8, "n": 200},
        "model": {"arch": "transformer", "d_model": 8, "heads": 2, "layers": 1, "ff": 16},
        "train": {"epochs": 2, "optimizer": {"name": "adam"}}})
    data = load_data(cfg)
    model = build_model(cfg, data)
    assert model(data.x_val).shape == (len(data.x_val), 1)
    result = run_config(cfg, tmp_path)
    assert result.status == "done", result.error
    assert "val_mae" in result.metrics
