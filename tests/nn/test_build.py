"""mlp builder and presets: structure, init, determinism, regularization wiring, SELU rules."""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import pytest
import torch
from torch import nn

from steadygrad.errors import ConfigError, UnknownNameError
from steadygrad.nn import constraints, regularizers
from steadygrad.nn.build import mlp
from steadygrad.nn.layers import MCAlphaDropout, MCDropout
from steadygrad.nn.presets import DEEP_NET_LAYERS, default_dnn, self_normalizing


def kinds(model: nn.Module) -> list[str]:
    return [type(m).__name__ for m in model]


# --- structure -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch_norm", "expected"),
    [
        ("none", ["Linear", "ReLU", "Linear", "ReLU", "Linear"]),
        ("before", ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]),
        ("after", ["Linear", "ReLU", "BatchNorm1d", "Linear", "ReLU", "BatchNorm1d", "Linear"]),
    ],
)
def test_layer_order_for_each_batch_norm_placement(batch_norm: str, expected: list[str]) -> None:
    model = mlp(20, (8, 6), batch_norm=batch_norm, num_outputs=3)
    assert kinds(model) == expected
    for i, m in enumerate(model):
        if isinstance(m, nn.Linear):
            followed_by_bn = i + 1 < len(model) and isinstance(model[i + 1], nn.BatchNorm1d)
            assert (m.bias is None) == followed_by_bn


def test_image_input_is_flattened_and_input_bn_and_dropout_come_first() -> None:
    model = mlp((1, 28, 28), (300, 100), input_batch_norm=True, input_dropout=0.2,
                dropout=0.5, num_outputs=10)
    assert kinds(model)[:4] == ["Flatten", "BatchNorm1d", "Dropout", "Linear"]
    assert model.input_bn.num_features == 784 and model.dense1.in_features == 784
    assert model.input_dropout.p == 0.2 and model.dropout1.p == 0.5 and model.dropout2.p == 0.5
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)


@pytest.mark.parametrize(
    ("output", "num_outputs", "width"),
    [("multiclass", 10, 10), ("binary", None, 1), ("binary", 4, 4), ("regression", None, 1),
     ("regression", 3, 3)],
)
def test_output_head_width(output: str, num_outputs: int | None, width: int) -> None:
    model = mlp(5, (4,), output=output, num_outputs=num_outputs)
    assert model.output.out_features == width
    assert isinstance(model[-1], nn.Linear)  # raw logits / values, no final activation


def test_parameter_count_closed_form() -> None:
    sizes = [30, 64, 32, 16, 7]
    model = mlp(30, (64, 32, 16), batch_norm="before", num_outputs=7)
    weights = sum(a * b for a, b in itertools.pairwise(sizes))
    bn = 2 * (64 + 32 + 16)  # gamma + beta, replacing the three hidden biases
    assert sum(p.numel() for p in model.parameters()) == weights + bn + 7


@pytest.mark.parametrize(
    ("kind", "cls"),
    [("dropout", nn.Dropout), ("alpha", nn.AlphaDropout), ("mc", MCDropout),
     ("mc_alpha", MCAlphaDropout)],
)
def test_dropout_kinds(kind: str, cls: type) -> None:
    act = "selu" if "alpha" in kind else "relu"
    model = mlp(5, (4, 4), activation=act, dropout=0.1, dropout_kind=kind, num_outputs=2)
    drops = [m for m in model if isinstance(m, (nn.Dropout, nn.AlphaDropout))]
    assert len(drops) == 2 and all(type(m) is cls for m in drops)


# --- initialization and determinism ----------------------------------------------------------


def test_same_seed_same_weights_and_global_rng_untouched() -> None:
    state = torch.get_rng_state()
    a = mlp((3, 8, 8), (50, 20), batch_norm="after", num_outputs=4, seed=7).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    b = mlp((3, 8, 8), (50, 20), batch_norm="after", num_outputs=4, seed=7).state_dict()
    c = mlp((3, 8, 8), (50, 20), batch_norm="after", num_outputs=4,
            generator=torch.Generator().manual_seed(7)).state_dict()
    d = mlp((3, 8, 8), (50, 20), batch_norm="after", num_outputs=4, seed=8).state_dict()
    assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]) for k in a)
    assert not torch.equal(a["dense1.weight"], d["dense1.weight"])


def test_auto_init_follows_activation_and_head_is_glorot_uniform() -> None:
    model = mlp(400, (1000, 500), activation="relu", num_outputs=300, seed=0)
    # He normal (Keras: truncated normal with std sqrt(2 / fan_in))
    assert model.dense1.weight.std().item() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert model.dense2.weight.std().item() == pytest.approx(math.sqrt(2 / 1000), rel=0.02)
    head = model.output.weight
    limit = math.sqrt(6 / (500 + 300))  # Glorot uniform bound
    assert head.abs().max().item() <= limit
    assert head.var().item() == pytest.approx(limit**2 / 3, rel=0.02)
    assert all(torch.count_nonzero(m.bias) == 0 for m in model if isinstance(m, nn.Linear))

    tanh = mlp(400, (1000,), activation="tanh", output="binary", seed=0)
    assert tanh.dense1.weight.abs().max().item() <= math.sqrt(6 / 1400)  # auto -> Glorot


def test_explicit_initializers() -> None:
    model = mlp(10, (6,), kernel_initializer={"name": "constant", "value": 0.5},
                bias_initializer="ones", output="binary")
    assert torch.all(model.dense1.weight == 0.5) and torch.all(model.dense1.bias == 1)
    assert torch.all(model.output.bias == 1)


# --- overrides, regularizers, constraints ----------------------------------------------------


def test_layer_overrides() -> None:
    model = mlp(
        10, (8, 8, 8), num_outputs=3, dropout=0.2,
        layer_overrides={
            1: {"units": 5, "activation": {"name": "leaky_relu", "alpha": 0.1},
                "batch_norm": "after", "dropout": 0.0, "l2": 0.1},
            2: {"kernel_initializer": "zeros", "max_norm": 2.0},
            "output": {"kernel_initializer": "ones", "l1": 0.3},
        },
    )
    assert kinds(model) == ["Linear", "ReLU", "Dropout", "Linear", "LeakyReLU", "BatchNorm1d",
                            "Linear", "ReLU", "Dropout", "Linear"]
    assert model.dense2.out_features == 5 and model.dense3.in_features == 5
    assert model.act2.negative_slope == 0.1
    assert torch.count_nonzero(model.dense3.weight) == 0
    assert torch.all(model.output.weight == 1)
    assert model.dense2.kernel_regularizer == regularizers.L1L2(l2=0.1)
    assert model.output.kernel_regularizer == regularizers.L1L2(l1=0.3)
    assert model.dense3.kernel_constraint == constraints.MaxNorm(2.0)
    assert not hasattr(model.dense1, "kernel_regularizer")


def test_l1_l2_max_norm_reach_every_linear_and_penalty_matches_closed_form() -> None:
    model = mlp(6, (5, 4), l1=0.01, l2=0.02, max_norm=1.0, num_outputs=3, seed=0)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    expected = sum(0.01 * m.weight.abs().sum() + 0.02 * m.weight.square().sum() for m in linears)
    torch.testing.assert_close(regularizers.penalty(model), expected)
    with torch.no_grad():
        for m in linears:
            m.weight.mul_(10)
    constraints.apply_(model)
    assert all(torch.all(m.weight.norm(dim=1) <= 1 + 1e-6) for m in linears)


def test_prelu_gets_one_alpha_per_unit_and_instances_are_copied() -> None:
    model = mlp(4, (3, 5), activation="prelu", output="binary")
    assert model.act1.weight.shape == (3,) and model.act2.weight.shape == (5,)
    shared = nn.PReLU()
    model = mlp(4, (3, 3), activation=shared, output="binary")
    assert model.act1 is not shared and model.act1.weight is not model.act2.weight


def test_batch_norm_hyperparameters_and_keras_momentum_warning() -> None:
    model = mlp(4, (3,), batch_norm="before", bn_momentum=0.01, bn_eps=1e-3, output="binary")
    assert model.bn1.momentum == 0.01 and model.bn1.eps == 1e-3
    with pytest.warns(UserWarning, match=r"Keras's momentum=0.99 corresponds to bn_momentum=0.01"):
        mlp(4, (3,), batch_norm="before", bn_momentum=0.99, output="binary")


# --- SELU self-normalization rules -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kernel_initializer": "he_normal"}, r"LeCun normal.*dense1, dense2 use he_normal"),
        ({"dropout": 0.1}, r"plain dropout \(dropout_kind='dropout'\)"),
        ({"dropout": 0.1, "dropout_kind": "mc"}, r"plain dropout"),
        ({"batch_norm": "after"}, r"batch norm on hidden layers dense1, dense2"),
        ({"input_batch_norm": True}, r"batch norm on the input"),
        ({"l2": 0.01}, r"l1/l2 regularization or max-norm"),
        ({"max_norm": 1.0}, r"max-norm"),
        ({"layer_overrides": {1: {"activation": "relu"}}}, r"stack of SELU.*dense2 use relu"),
    ],
)
def test_selu_settings_that_break_self_normalization_warn(kwargs: dict, match: str) -> None:
    with pytest.warns(UserWarning, match=match) as record:
        mlp(10, (8, 8), activation="selu", num_outputs=3, **kwargs)
    assert all("Klambauer" in str(w.message) for w in record)


def test_correct_selu_net_and_alpha_dropout_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mlp(10, (8, 8), activation="selu", dropout=0.1, dropout_kind="alpha", num_outputs=3)
        mlp(10, (8, 8), activation="selu", kernel_initializer="lecun_normal", num_outputs=3)
        self_normalizing(10, 3, dropout=0.2, mc_dropout=True)


def test_alpha_dropout_without_selu_warns() -> None:
    with pytest.warns(UserWarning, match="non-SELU"):
        mlp(10, (8,), dropout=0.1, dropout_kind="alpha", num_outputs=3)


def test_the_warning_is_right_lecun_selu_self_normalizes_he_does_not() -> None:
    """Measured effect behind the init warning: 30 SELU layers on standardized inputs."""
    x = torch.randn(2000, 100)
    stds = {}
    for name in ("lecun_normal", "he_normal"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = mlp(100, (100,) * 30, activation="selu", kernel_initializer=name,
                        output="regression", seed=0)
        with torch.no_grad():
            stds[name] = model[:-1](x).std().item()
    assert 0.8 < stds["lecun_normal"] < 1.2
    assert stds["he_normal"] > 1.5


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_shape": (0, 4)}, ConfigError, r"^input_shape: got \(0, 4\)"),
        ({"hidden": 100}, ConfigError, r"^hidden: got 100"),
        ({"hidden": (10, -1)}, ConfigError, r"^hidden\[1\]: got -1"),
        ({"batch_norm": "yes"}, ConfigError, r"^batch_norm: got 'yes'; expected one of none"),
        ({"dropout": 1.0}, ConfigError, r"^dropout: got 1.0"),
        ({"dropout_kind": "gaussian"}, ConfigError, r"^dropout_kind: got 'gaussian'"),
        ({"l2": -1}, ConfigError, r"^l2: got -1"),
        ({"max_norm": 0}, ConfigError, r"^max_norm: got 0"),
        ({"output": "softmax"}, ConfigError, r"^output: got 'softmax'"),
        ({"num_outputs": None}, ConfigError, r"^num_outputs: got None"),
        ({"num_outputs": 1}, ConfigError, r"^num_outputs: got 1"),
        ({"bn_momentum": 0.0}, ConfigError, r"^bn_momentum: got 0.0"),
        ({"bn_eps": 0.0}, ConfigError, r"^bn_eps: got 0.0"),
        ({"seed": 1, "generator": torch.Generator()}, ConfigError, r"^seed: got 1"),
        ({"activation": "rleu"}, UnknownNameError, r"did you mean 'relu'"),
        ({"kernel_initializer": "he_nromal"}, UnknownNameError, r"did you mean 'he_normal'"),
        ({"layer_overrides": {2: {}}}, ConfigError, r"^layer_overrides: got 2; expected .* 0\.\.1"),
        ({"layer_overrides": {0: {"unit": 3}}}, ConfigError, r"^layer_overrides\[0\]\.unit: got 3"),
        ({"layer_overrides": {1: {"dropout": 2}}}, ConfigError, r"^layer_overrides\[1\]\.dropout"),
        ({"layer_overrides": {"output": {"units": 2}}}, ConfigError,
         r"layer_overrides\['output'\]"),
        ({"layer_overrides": {0: {"activation": "rleu"}}}, UnknownNameError,
         r"^layer_overrides\[0\]\.activation: got 'rleu'"),
    ],
)
def test_invalid_arguments_fail_before_building(kwargs: dict, error: type, match: str) -> None:
    args = {"input_shape": 4, "hidden": (3, 3), "num_outputs": 3, **kwargs}
    with pytest.raises(error, match=match):
        mlp(**args)


# --- presets ----------------------------------------------------------------------------------


def test_default_dnn_follows_the_book_table() -> None:
    r = default_dnn((1, 28, 28), 10, seed=0)
    assert kinds(r.model) == ["Flatten", "Linear", "ELU", "Linear", "ELU", "Linear"]
    assert r.model.dense1.weight.std().item() == pytest.approx(math.sqrt(2 / 784), rel=0.03)
    assert r.fit_kwargs == {
        "optimizer": "nadam", "learning_rate": 1e-3, "schedule": "one_cycle",
        "early_stopping": {"patience": 10, "restore_best_weights": True},
    }
    assert r.data_kwargs == {"standardize": True}
    assert any("He" in s for s in r.reasons) and all("Géron" in s for s in r.reasons)

    deep = default_dnn(20, 3, hidden=(16,) * (DEEP_NET_LAYERS + 1))
    assert sum(isinstance(m, nn.BatchNorm1d) for m in deep.model) == DEEP_NET_LAYERS + 1
    shallow = default_dnn(20, 3, hidden=(16,) * DEEP_NET_LAYERS)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in shallow.model)


def test_default_dnn_sgd_and_l2() -> None:
    r = default_dnn(20, 3, optimizer="sgd", l2=1e-4, learning_rate=0.05)
    # the book's momentum optimizer: steadygrad.optim's "nesterov" (momentum 0.9, Nesterov)
    assert r.fit_kwargs["optimizer"] == "nesterov" and r.fit_kwargs["learning_rate"] == 0.05
    assert default_dnn(20, 3, optimizer="sgd").fit_kwargs["learning_rate"] == 0.01
    assert regularizers.has_penalties(r.model)
    with pytest.raises(ConfigError, match=r"^optimizer: got 'adamw'"):
        default_dnn(20, 3, optimizer="adamw")


def test_self_normalizing_recipe() -> None:
    r = self_normalizing(784, 10, dropout=0.1, seed=0)
    assert kinds(r.model) == ["Linear", "SELU", "AlphaDropout", "Linear", "SELU",
                              "AlphaDropout", "Linear"]
    assert r.model.dense1.weight.std().item() == pytest.approx(math.sqrt(1 / 784), rel=0.03)
    assert r.data_kwargs["standardize"] is True and r.fit_kwargs["schedule"] == "one_cycle"
    assert any("LeCun" in s or "lecun" in s for s in r.reasons)
    assert "Géron" in r.explain()


@pytest.mark.parametrize("preset", [default_dnn, self_normalizing])
def test_recipe_fit_kwargs_are_accepted_by_fit(preset: Any) -> None:
    """Regression (issue 18): ``fit(r.model, data, **r.fit_kwargs)`` raised TypeError on
    ``standardize``; the recipe's data arguments go to ``load`` and training improves."""
    from steadygrad.data.datasets import load
    from steadygrad.train.loop import fit

    r = preset(64, 10, hidden=(32,), seed=0)
    data = load("digits", n_train=300, **r.data_kwargs)
    assert data.mean is not None  # the recipe's standardization reached the loader
    kwargs = {**r.fit_kwargs, "epochs": 2}
    history = fit(r.model, data, seed=0, verbose=0, **kwargs)
    assert history["loss"][-1] < history["loss"][0]


@pytest.mark.parametrize("optimizer", ["nadam", "sgd", "rmsprop"])
def test_recipe_names_resolve_in_the_optim_registries(optimizer: str) -> None:
    optimizers = pytest.importorskip("steadygrad.optim.optimizers")
    schedules = pytest.importorskip("steadygrad.optim.schedules")
    r = default_dnn(4, 2, hidden=(3,), optimizer=optimizer)
    kw = r.fit_kwargs
    opt = optimizers.make_optimizer(
        kw["optimizer"], r.model.parameters(), learning_rate=kw["learning_rate"]
    )
    assert opt.param_groups[0]["lr"] == kw["learning_rate"]
    if optimizer == "sgd":  # the book's momentum optimizer
        assert opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"] is True
    assert kw["schedule"] in schedules.SCHEDULES
