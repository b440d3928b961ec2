"""Config validation: the bad-config table (exact messages), defaults, round trips, examples."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from steadygrad.errors import ConfigError, UnknownNameError
from steadygrad.experiments.config import (
    Component,
    RunConfig,
    config_from_dict,
    config_to_dict,
)
from steadygrad.experiments.loader import dump_toml, load_config, loads_toml
from steadygrad.experiments.space import load_sweep

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# (config table, exact error message). Each row breaks one rule of the schema.
BAD_CONFIGS: list[tuple[dict, str]] = [
    ({"modle": {}},
     "modle: got unknown key 'modle'; expected one of data, diagnostics, model, name, train; "
     "did you mean 'model'?"),
    ({"model": {"activaton": "relu"}},
     "model.activaton: got unknown key 'activaton'; expected one of activation, batch_norm, "
     "bias_initializer, bn_eps, bn_momentum, dropout, dropout_kind, factory, factory_kwargs, "
     "hidden, input_batch_norm, input_dropout, kernel_initializer, l1, l2, max_norm, rewrites, "
     "seed; did you mean 'activation'?"),
    ({"model": {"activation": "rleu"}},
     "model.activation: got 'rleu'; expected one of elu, gelu, hard_sigmoid, leaky_relu, linear, "
     "mish, prelu, relu, rrelu, selu, sigmoid, softmax, softplus, softsign, swish, tanh; "
     "did you mean 'relu'?"),
    ({"model": {"activation": {"name": "leaky_relu", "alpah": 0.1}}},
     "model.activation.alpah: got unknown key 'alpah'; expected one of alpha; "
     "did you mean 'alpha'?"),
    ({"model": {"kernel_initializer": "he_norml"}},
     "model.kernel_initializer: got 'he_norml'; expected one of auto, constant, glorot_normal, "
     "glorot_uniform, he_normal, he_uniform, lecun_normal, lecun_uniform, ones, orthogonal, "
     "variance_scaling, zeros; did you mean 'he_normal'?"),
    ({"model": {"kernel_initializer": {"name": "variance_scaling", "mode": "fan_everything"}}},
     "model.kernel_initializer.mode: got 'fan_everything'; expected one of fan_in, fan_out, "
     "fan_avg"),
    ({"model": {"hidden": []}},
     "model.hidden: got []; expected a non-empty list of integers >= 1"),
    ({"model": {"hidden": [64, -1]}},
     "model.hidden[1]: got -1; expected an integer >= 1"),
    ({"model": {"depth": 3}},
     "model.units: got None; expected an integer >= 1 (depth and units go together)"),
    ({"model": {"batch_norm": "middle"}},
     "model.batch_norm: got 'middle'; expected one of 'none', 'before', 'after'"),
    ({"model": {"dropout": 1.0}},
     "model.dropout: got 1.0; expected a number in [0, 1)"),
    ({"model": {"l2": -0.01}},
     "model.l2: got -0.01; expected a finite number >= 0"),
    ({"model": "big"},
     "model: got 'big'; expected a table (mapping of keys to values)"),
    ({"train": {"epochs": 0}},
     "train.epochs: got 0; expected an integer >= 1"),
    ({"train": {"epochs": 2.5}},
     "train.epochs: got 2.5; expected an integer >= 1"),
    ({"train": {"batch_size": "32"}},
     "train.batch_size: got '32'; expected an integer >= 1"),
    ({"train": {"optimizer": {"name": "sgd", "learning_rate": 0.0}}},
     "train.optimizer.learning_rate: got 0.0; expected a finite number > 0"),
    ({"train": {"optimizer": {"name": "sgd", "learning_rate": math.nan}}},
     "train.optimizer.learning_rate: got nan; expected a finite number > 0"),
    ({"train": {"optimizer": {"name": "adamm"}}},
     "train.optimizer.name: got 'adamm'; expected one of adagrad, adam, adamax, adamw, momentum, "
     "nadam, nesterov, rmsprop, sgd; did you mean 'adam'?"),
    ({"train": {"optimizer": {"name": "adam", "beta1": 0.9}}},
     "train.optimizer.beta1: got unknown key 'beta1'; expected one of amsgrad, beta_1, beta_2, "
     "epsilon, learning_rate; did you mean 'beta_1'?"),
    ({"train": {"optimizer": {"name": "sgd", "momentum": 1.5}}},
     "train.optimizer.momentum: got 1.5; expected a number in [0, 1)"),
    ({"train": {"optimizer": {"name": "sgd", "clipnorm": -1}}},
     "train.optimizer.clipnorm: got -1; expected a finite number > 0"),
    ({"train": {"optimizer": {"name": "sgd", "clipnorm": 1.0, "global_clipnorm": 1.0}}},
     "train.optimizer.global_clipnorm: got 1.0; expected at most one of clipnorm (per tensor) "
     "and global_clipnorm (all tensors); keep one; clipvalue may be added to either"),
    ({"train": {"schedule": "cosin"}},
     "train.schedule: got 'cosin'; expected one of constant, cosine, exponential, one_cycle, "
     "piecewise_constant, power, reduce_on_plateau, warmup; did you mean 'cosine'?"),
    ({"train": {"schedule": {"name": "cosine", "alpah": 0.1}}},
     "train.schedule.alpah: got unknown key 'alpah'; expected one of alpha, decay_steps, "
     "warmup_steps, warmup_target; did you mean 'alpha'?"),
    ({"train": {"early_stopping": {"patience": -1}}},
     "train.early_stopping.patience: got -1; expected an integer >= 0"),
    ({"train": {"early_stopping": {"patiense": 3}}},
     "train.early_stopping.patiense: got unknown key 'patiense'; expected one of baseline, "
     "min_delta, mode, monitor, patience, restore_best_weights, start_from_epoch; "
     "did you mean 'patience'?"),
    ({"data": {"name": "mnits"}},
     "data.name: got 'mnits'; expected one of adding, csv, digits, fashion_mnist, first_token, "
     "mnist, npz; "
     "did you mean 'mnist'?"),
    ({"data": {"name": "digits", "val_sise": 0.1}},
     "data.val_sise: got unknown key 'val_sise'; expected one of n_train, scale, seed, "
     "shape, standardize, stratify, test_size, val_size; did you mean 'val_size'?"),
    ({"data": {"name": "digits", "val_size": 1.5}},
     "data.val_size: got 1.5; expected a fraction in (0, 1) or a count >= 1"),
    ({"diagnostics": {"every": 0}},
     "diagnostics.every: got 0; expected an integer >= 1"),
    ({"name": ""},
     "name: got ''; expected a non-empty string"),
]


@pytest.mark.parametrize(("table", "message"), BAD_CONFIGS,
                         ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(BAD_CONFIGS)])
def test_bad_config_fails_with_exact_message(table: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(table)
    assert str(info.value) == message
    assert info.value.path == message.split(":")[0]


def test_bad_config_table_is_large_enough() -> None:
    assert len(BAD_CONFIGS) >= 15


def test_unknown_registry_names_raise_unknown_name_error() -> None:
    with pytest.raises(UnknownNameError):
        config_from_dict({"model": {"activation": "rleu"}})
    with pytest.raises(KeyError):  # UnknownNameError is also a KeyError, like Registry.get
        config_from_dict({"train": {"optimizer": "adamm"}})


def test_defaults_follow_the_library_calls() -> None:
    import inspect

    from steadygrad.nn.build import mlp
    from steadygrad.train.loop import fit

    cfg = RunConfig()
    mlp_defaults = {k: p.default for k, p in inspect.signature(mlp).parameters.items()}
    for key in ("batch_norm", "input_batch_norm", "dropout", "input_dropout", "dropout_kind",
                "l1", "l2", "max_norm", "bn_momentum", "bn_eps"):
        assert getattr(cfg.model, key) == mlp_defaults[key], key
    assert cfg.model.hidden == tuple(mlp_defaults["hidden"])
    fit_defaults = {k: p.default for k, p in inspect.signature(fit).parameters.items()}
    for key in ("epochs", "batch_size", "on_non_finite"):
        assert getattr(cfg.train, key) == fit_defaults[key], key
    assert cfg.train.optimizer.name == fit_defaults["optimizer"]


def test_early_stopping_defaults_are_keras_and_match_the_callback() -> None:
    import inspect

    from steadygrad.train.builtin_callbacks import EarlyStopping

    cfg = config_from_dict({"train": {"early_stopping": {}}}).train.early_stopping
    assert cfg is not None
    params = inspect.signature(EarlyStopping).parameters
    assert set(params) == {f for f in cfg.__dataclass_fields__}
    for key, param in params.items():
        assert getattr(cfg, key) == param.default, key


def test_depth_and_units_expand_to_hidden() -> None:
    cfg = config_from_dict({"model": {"depth": 3, "units": 50}})
    assert cfg.model.hidden == (50, 50, 50)
    with pytest.raises(ConfigError, match="either hidden or depth"):
        config_from_dict({"model": {"depth": 3, "units": 50, "hidden": [1]}})


def test_names_are_canonicalized_and_components_keep_arguments() -> None:
    cfg = config_from_dict({"model": {"activation": {"name": "Leaky-ReLU", "alpha": 0.1},
                                      "kernel_initializer": "kaiming_normal"},
                            "train": {"optimizer": "RMSProp"}})
    assert cfg.model.activation == Component("leaky_relu", (("alpha", 0.1),))
    assert cfg.model.kernel_initializer.name == "he_normal"
    assert cfg.train.optimizer.name == "rmsprop"


def test_configs_are_frozen_and_hashable() -> None:
    cfg = config_from_dict({"train": {"schedule": {"name": "piecewise_constant",
                                                   "boundaries": [10], "values": [0.1, 0.01]}}})
    with pytest.raises(AttributeError):
        cfg.name = "x"  # type: ignore[misc]
    assert hash(cfg) == hash(config_from_dict(config_to_dict(cfg)))


FULL = {
    "name": "full",
    "data": {"name": "digits", "val_size": 0.25, "n_train": 300, "seed": 3, "standardize": True},
    "model": {"hidden": [32, 16], "activation": {"name": "elu", "alpha": 0.5},
              "kernel_initializer": {"name": "variance_scaling", "scale": 2.0, "mode": "fan_avg",
                                     "distribution": "uniform"},
              "batch_norm": "after", "input_batch_norm": True, "dropout": 0.25,
              "dropout_kind": "mc", "l1": 1e-5, "l2": 0.0001, "max_norm": 3.0, "seed": 7,
              "bn_momentum": 0.01, "bn_eps": 0.001},
    "train": {"epochs": 3, "batch_size": 64, "seed": 11, "on_non_finite": "skip",
              "optimizer": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9,
                            "nesterov": True, "global_clipnorm": 1.0},
              "schedule": {"name": "piecewise_constant", "boundaries": [100, 200],
                           "values": [0.1, 0.01, 0.001]},
              "early_stopping": {"monitor": "val_accuracy", "patience": 2, "baseline": 0.5}},
    "diagnostics": {"enabled": False, "every": 3},
}


def test_full_config_round_trips_through_dict_toml_and_json(tmp_path: Path) -> None:
    import json

    from steadygrad.experiments.loader import save_config

    cfg = config_from_dict(FULL)
    assert config_from_dict(config_to_dict(cfg)) == cfg
    assert config_from_dict(loads_toml(dump_toml(config_to_dict(cfg)))) == cfg
    assert config_from_dict(json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    toml_path, json_path = save_config(cfg, tmp_path)
    assert load_config(toml_path) == cfg == load_config(json_path)
    # the dump is stable: dumping the reloaded config gives the same text
    assert toml_path.read_text() == dump_toml(config_to_dict(load_config(toml_path)))


@pytest.mark.parametrize("path", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_example_validates_and_round_trips(path: str) -> None:
    if path.startswith("sweep"):
        sweep = load_sweep(EXAMPLES / path)
        assert sweep.runs
        return
    cfg = load_config(EXAMPLES / path)
    assert config_from_dict(loads_toml(dump_toml(config_to_dict(cfg)))) == cfg


def test_examples_cover_every_toolbox_technique() -> None:
    from steadygrad.optim.optimizers import OPTIMIZERS
    from steadygrad.optim.schedules import SCHEDULES

    configs = [load_config(p) for p in EXAMPLES.glob("*.toml") if not p.name.startswith("sweep")]
    assert {c.train.optimizer.name for c in configs} >= set(OPTIMIZERS.names())
    schedules = {c.train.schedule.name for c in configs if c.train.schedule is not None}
    assert schedules >= set(SCHEDULES.names()) - {"constant"}
    assert any(getattr(c.model, "batch_norm", "none") != "none" for c in configs)  # MLPs
    assert {c.model.arch for c in configs} == {"mlp", "cnn", "resnet", "rnn", "transformer"}
    assert any(c.train.optimizer.clipping for c in configs)
    assert any(c.model.l2 > 0 for c in configs) and any(c.model.l1 > 0 for c in configs)
    assert any(c.model.dropout > 0 for c in configs) and any(c.model.max_norm for c in configs)
    assert any(c.train.early_stopping is not None for c in configs)
    assert len({c.model.kernel_initializer.name for c in configs}) >= 3
    assert len({c.model.activation.name for c in configs}) >= 4
    assert (EXAMPLES / "sweep_activations.toml").is_file()


@pytest.mark.parametrize("activation", [
    "prelu", {"name": "prelu", "alpha_init": 0.25}, {"name": "leaky_relu", "alpha": 0.1},
    {"name": "rrelu", "lower": 0.1, "upper": 0.2}, {"name": "gelu", "approximate": True},
    {"name": "softmax", "axis": 1}, "selu",
])
def test_activation_is_validated_without_building_a_module(
        activation: object, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from steadygrad.nn.build import mlp

    built: list[str] = []
    original = torch.nn.Module.__init__

    def counting(self: torch.nn.Module, *args: object, **kwargs: object) -> None:
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "__init__", counting)
    cfg = config_from_dict({"model": {"activation": activation, "hidden": [4, 3]}})
    assert built == []  # validation built nothing
    bad = ({**activation, "alpha": -1.0} if isinstance(activation, dict)
           and activation["name"] == "leaky_relu" else {"name": "elu", "alpha": math.nan})
    with pytest.raises(ConfigError):
        config_from_dict({"model": {"activation": bad}})
    assert built == []  # nor did a rejected value
    # the builder still makes one activation module per hidden layer, and the counter sees it
    from steadygrad.nn.activations import activation_name

    c = cfg.model.activation
    net = mlp(2, (4, 3), activation={"name": c.name, **dict(c.options)}, num_outputs=3, seed=0)
    acts = [type(m).__name__ for m in net.modules() if activation_name(m) is not None]
    assert len(acts) == 2 and sorted(n for n in built if n in acts) == sorted(acts)
