"""Optimizers by name: Keras defaults, translation to torch.optim, closed forms, errors."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from steadygrad.errors import ConfigError, UnknownNameError
from steadygrad.optim.optimizers import OPTIMIZERS, make_optimizer, torch_arguments

# The defaults in keras/src/optimizers/*.py (Keras 3), under their Keras names.
KERAS_DEFAULTS = {
    "sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "adagrad": {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "rmsprop": {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
                "centered": False},
    "adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
             "amsgrad": False},
    "nadam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "adamax": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "adamw": {"learning_rate": 0.001, "weight_decay": 0.004, "beta_1": 0.9, "beta_2": 0.999,
              "epsilon": 1e-7, "amsgrad": False},
}

# The mapping table of the module docstring: name -> (torch class, torch kwargs by default).
TABLE = {
    "sgd": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.0, "nesterov": False,
                              "weight_decay": 0.0}),
    "momentum": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "nesterov": False,
                                   "weight_decay": 0.0}),
    "nesterov": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "nesterov": True,
                                   "weight_decay": 0.0}),
    "adagrad": (torch.optim.Adagrad, {"lr": 0.001, "initial_accumulator_value": 0.1,
                                      "eps": 1e-7}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 0.001, "alpha": 0.9, "momentum": 0.0, "eps": 1e-7,
                                      "centered": False}),
    "adam": (torch.optim.Adam, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7,
                                "amsgrad": False}),
    "nadam": (torch.optim.NAdam, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7,
                                  "momentum_decay": 1.0}),
    "adamax": (torch.optim.Adamax, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7}),
    "adamw": (torch.optim.AdamW, {"lr": 0.001, "weight_decay": 0.004, "betas": (0.9, 0.999),
                                  "eps": 1e-7, "amsgrad": False}),
}


def test_registry_holds_exactly_the_documented_optimizers() -> None:
    assert OPTIMIZERS.names() == sorted(TABLE)


@pytest.mark.parametrize("name", sorted(KERAS_DEFAULTS))
def test_defaults_are_keras_defaults(name: str) -> None:
    defaults = OPTIMIZERS.get(name).defaults
    for key, value in KERAS_DEFAULTS[name].items():
        assert defaults[key] == value, key


@pytest.mark.parametrize("name", sorted(TABLE))
def test_mapping_table(name: str) -> None:
    cls, kwargs = TABLE[name]
    assert torch_arguments(name) == kwargs
    opt = make_optimizer(name, [torch.nn.Parameter(torch.ones(2))])
    assert type(opt) is cls
    for key, value in kwargs.items():
        assert opt.defaults[key] == value, key


# Non-default Keras-named settings and the same settings written by hand in torch's names.
ORACLE_CASES = [
    ("sgd", {"learning_rate": 0.05, "momentum": 0.5, "weight_decay": 0.01},
     torch.optim.SGD, {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.01}),
    ("sgd", {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True},
     torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("momentum", {"learning_rate": 0.02}, torch.optim.SGD, {"lr": 0.02, "momentum": 0.9}),
    ("nesterov", {"learning_rate": 0.02}, torch.optim.SGD,
     {"lr": 0.02, "momentum": 0.9, "nesterov": True}),
    ("adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.2, "epsilon": 1e-6},
     torch.optim.Adagrad, {"lr": 0.1, "initial_accumulator_value": 0.2, "eps": 1e-6}),
    ("rmsprop", {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5, "centered": True},
     torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.8, "momentum": 0.5, "centered": True,
                           "eps": 1e-7}),
    ("adam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "amsgrad": True},
     torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "amsgrad": True, "eps": 1e-7}),
    ("nadam", {"learning_rate": 0.01, "beta_1": 0.8, "momentum_decay": 0.004},
     torch.optim.NAdam, {"lr": 0.01, "betas": (0.8, 0.999), "momentum_decay": 0.004,
                         "eps": 1e-7}),
    ("adamax", {"learning_rate": 0.01, "beta_2": 0.99, "epsilon": 1e-5},
     torch.optim.Adamax, {"lr": 0.01, "betas": (0.9, 0.99), "eps": 1e-5}),
    ("adamw", {"learning_rate": 0.01, "weight_decay": 0.1},
     torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1, "eps": 1e-7}),
]


def _run(opt_factory, steps: int = 4) -> torch.Tensor:
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    opt = opt_factory(model.parameters())
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize(("name", "keras_kw", "cls", "torch_kw"), ORACLE_CASES)
def test_updates_equal_torch_optim_with_translated_arguments(name, keras_kw, cls, torch_kw):
    ours = _run(lambda params: make_optimizer(name, params, **keras_kw))
    # make_optimizer picks torch's multi-tensor kernels; the oracle uses the same flag
    reference = _run(lambda params: cls(params, **torch_kw, foreach=True))
    initial = _run(lambda params: torch.optim.SGD(params, lr=0.0))
    assert not torch.equal(ours, initial)  # the optimizer really moved the weights
    torch.testing.assert_close(ours, reference, rtol=0, atol=0)


@pytest.mark.parametrize(("name", "keras_kw", "cls", "torch_kw"), ORACLE_CASES)
def test_foreach_default_matches_torch_per_tensor_path(name, keras_kw, cls, torch_kw):
    """The foreach default is the same update as torch's per-tensor loop (up to rounding)."""
    assert make_optimizer(name, [torch.nn.Parameter(torch.zeros(1))]).defaults["foreach"]
    ours = _run(lambda params: make_optimizer(name, params, **keras_kw))
    per_tensor = _run(lambda params: cls(params, **torch_kw, foreach=False))
    torch.testing.assert_close(ours, per_tensor, rtol=1e-5, atol=1e-6)


def _quadratic_steps(name: str, lr: float, a: float, w0: float, steps: int) -> list[float]:
    """Minimize f(w) = a w^2 / 2 (gradient a w) and return w after each step."""
    w = torch.nn.Parameter(torch.tensor([w0], dtype=torch.float64))
    opt = make_optimizer(name, [w], learning_rate=lr)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * a * w**2).sum().backward()
        opt.step()
        out.append(w.item())
    return out


def test_sgd_closed_form_on_a_quadratic() -> None:
    lr, a, w0 = 0.1, 3.0, 2.0
    w1 = w0 - lr * a * w0
    w2 = w1 - lr * a * w1
    assert _quadratic_steps("sgd", lr, a, w0, 2) == pytest.approx([w1, w2], rel=1e-12)


def test_momentum_closed_form_on_a_quadratic() -> None:
    # Keras form: v <- m v - lr g; w <- w + v.
    lr, a, w0, m = 0.1, 3.0, 2.0, 0.9
    v1 = -lr * a * w0
    w1 = w0 + v1
    v2 = m * v1 - lr * a * w1
    w2 = w1 + v2
    assert _quadratic_steps("momentum", lr, a, w0, 2) == pytest.approx([w1, w2], rel=1e-12)


def test_nesterov_closed_form_on_a_quadratic() -> None:
    # Keras form: v <- m v - lr g; w <- w + m v - lr g.
    lr, a, w0, m = 0.1, 3.0, 2.0, 0.9
    g0 = a * w0
    v1 = -lr * g0
    w1 = w0 + m * v1 - lr * g0
    g1 = a * w1
    v2 = m * v1 - lr * g1
    w2 = w1 + m * v2 - lr * g1
    assert _quadratic_steps("nesterov", lr, a, w0, 2) == pytest.approx([w1, w2], rel=1e-12)


def test_nadam_default_equals_keras_nadam_update_rule() -> None:
    """Keras's Nadam (0.96**t momentum schedule) transcribed from keras/src/optimizers/nadam.py."""
    lr, b1, b2, eps = 0.001, 0.9, 0.999, 1e-7
    grads = [torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64) * (k + 1) for k in range(5)]
    w_ref = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    m = torch.zeros(3, dtype=torch.float64)
    v = torch.zeros(3, dtype=torch.float64)
    u_product = 1.0
    for t, g in enumerate(grads, start=1):
        u_product *= b1 * (1 - 0.5 * 0.96**t)
        u_t, u_next = b1 * (1 - 0.5 * 0.96**t), b1 * (1 - 0.5 * 0.96 ** (t + 1))
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        m_hat = u_next * m / (1 - u_product * u_next) + (1 - u_t) * g / (1 - u_product)
        v_hat = v / (1 - b2**t)
        w_ref = w_ref - m_hat * lr / (v_hat.sqrt() + eps)

    def run(**kw: float) -> torch.Tensor:
        w = torch.nn.Parameter(torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64))
        opt = make_optimizer("nadam", [w], **kw)
        for g in grads:
            w.grad = g.clone()
            opt.step()
        return w.detach()

    torch.testing.assert_close(run(), w_ref, rtol=1e-9, atol=0)
    # torch's default (Dozat's 0.004) gives a visibly different trajectory.
    assert not torch.allclose(run(momentum_decay=0.004), w_ref, rtol=1e-6, atol=0)


def test_keras_adam_epsilon_is_epsilon_hat() -> None:
    """Note (c): Keras eps = torch eps * sqrt(1 - beta_2**t); checked on the first step."""
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-3  # a large eps makes the difference visible
    g = torch.tensor([1e-3, -2e-3], dtype=torch.float64)
    # Keras: alpha = lr sqrt(1 - b2) / (1 - b1); w -= alpha m / (sqrt(v) + eps).
    m, v = (1 - b1) * g, (1 - b2) * g * g
    keras_w1 = -lr * math.sqrt(1 - b2) / (1 - b1) * m / (v.sqrt() + eps)

    def first_step(torch_eps: float) -> torch.Tensor:
        w = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
        opt = make_optimizer("adam", [w], learning_rate=lr, epsilon=torch_eps)
        w.grad = g.clone()
        opt.step()
        return w.detach()

    torch.testing.assert_close(first_step(eps / math.sqrt(1 - b2)), keras_w1, rtol=1e-12, atol=0)
    assert not torch.allclose(first_step(eps), keras_w1, rtol=1e-3, atol=0)


def test_param_groups_keep_their_own_learning_rate() -> None:
    a, b = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))
    groups: list[dict[str, Any]] = [{"params": [a]}, {"params": [b], "learning_rate": 0.5}]
    opt = make_optimizer("adam", groups, learning_rate=0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.5]
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)


def test_names_are_case_insensitive_and_generators_are_accepted() -> None:
    model = torch.nn.Linear(2, 1)
    assert isinstance(make_optimizer("RMSProp", model.parameters()), torch.optim.RMSprop)
    assert isinstance(make_optimizer("Nesterov", model.parameters()), torch.optim.SGD)


def test_instance_passes_through_and_rejects_hyperparameters() -> None:
    w = torch.nn.Parameter(torch.ones(1))
    opt = torch.optim.SGD([w], lr=0.1)
    assert make_optimizer(opt, [w]) is opt
    with pytest.raises(ConfigError, match="learning_rate"):
        make_optimizer(opt, [w], learning_rate=0.2)


def test_optimizer_class_takes_torch_names() -> None:
    w = torch.nn.Parameter(torch.ones(1))
    opt = make_optimizer(torch.optim.Adam, [w], learning_rate=0.02, betas=(0.5, 0.6))
    assert isinstance(opt, torch.optim.Adam)
    assert opt.defaults["lr"] == 0.02 and opt.defaults["betas"] == (0.5, 0.6)
    with pytest.raises(ConfigError, match="did you mean 'betas'"):
        make_optimizer(torch.optim.Adam, [w], beta=(0.5, 0.6))


def test_unknown_hyperparameter_suggests_the_keras_name() -> None:
    w = torch.nn.Parameter(torch.ones(1))
    with pytest.raises(ConfigError) as info:
        make_optimizer("adam", [w], beta1=0.9)
    message = str(info.value)
    assert "did you mean 'beta_1'" in message
    assert "amsgrad, beta_1, beta_2, epsilon, learning_rate" in message
    with pytest.raises(ConfigError, match="did you mean 'rho'"):
        make_optimizer("rmsprop", [w], rh=0.9)
    # torch's names are not accepted with a Keras name; the hint gives the Keras one.
    for torch_name, keras_name in [("eps", "epsilon"), ("lr", "learning_rate"),
                                   ("alpha", "rho"), ("betas", "beta_1 and beta_2")]:
        with pytest.raises(ConfigError, match=f"use {keras_name} "):
            make_optimizer("rmsprop" if torch_name == "alpha" else "adam", [w],
                           **{torch_name: 0.5})


def test_unknown_optimizer_name_suggests_a_close_one() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'rmsprop'"):
        make_optimizer("rmsporp", [torch.nn.Parameter(torch.ones(1))])


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("sgd", {"learning_rate": 0.0}),
        ("sgd", {"learning_rate": -0.1}),
        ("sgd", {"learning_rate": float("nan")}),
        ("sgd", {"learning_rate": float("inf")}),
        ("sgd", {"learning_rate": "0.1"}),
        ("sgd", {"learning_rate": True}),
        ("sgd", {"momentum": 1.0}),
        ("sgd", {"momentum": -0.1}),
        ("sgd", {"nesterov": True}),  # nesterov needs momentum > 0
        ("sgd", {"nesterov": "yes"}),
        ("sgd", {"weight_decay": -1e-4}),
        ("adam", {"beta_1": 1.0}),
        ("adam", {"beta_2": float("nan")}),
        ("adam", {"epsilon": -1e-7}),
        ("adam", {"amsgrad": 1}),
        ("rmsprop", {"rho": 1.5}),
        ("adagrad", {"initial_accumulator_value": -0.1}),
        ("nadam", {"momentum_decay": 0.0}),
    ],
)
def test_invalid_values_raise_config_error_naming_the_field(name: str, kw: dict) -> None:
    w = torch.nn.Parameter(torch.ones(1))
    with pytest.raises(ConfigError, match=next(iter(kw))):
        make_optimizer(name, [w], **kw)


@pytest.mark.parametrize("params", [[], iter([]), "weights", 3, [1.0]])
def test_bad_params_raise_config_error(params: object) -> None:
    with pytest.raises(ConfigError, match="params"):
        make_optimizer("sgd", params)  # type: ignore[arg-type]


def test_legacy_keras_decay_points_to_power_scheduling() -> None:
    """Regression (issue 18): ``SGD(decay=1e-4)`` from the chapter was rejected without
    pointing to ``schedule="power"``; the suggested schedule is the legacy formula exactly."""
    from steadygrad.optim.schedules import make_schedule

    with pytest.raises(ConfigError,
                       match=r"optimizer\.sgd\.decay: got 0\.0001.*'power', 's': 10000"):
        make_optimizer("sgd", torch.nn.Linear(1, 1).parameters(), decay=1e-4)
    sched = make_schedule("power", learning_rate=0.01, s=10000)
    for t in (0, 1, 500, 10_000, 123_456):  # Keras 2 legacy: lr0 / (1 + decay * iterations)
        assert sched(t) == pytest.approx(0.01 / (1 + 1e-4 * t))
