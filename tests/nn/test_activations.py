"""Tests of steadygrad.nn.activations against closed forms and Keras/PyTorch semantics."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from steadygrad.errors import ConfigError, UnknownNameError
from steadygrad.nn import activations as act

X = torch.cat([torch.linspace(-8, 8, 321, dtype=torch.float64), torch.tensor([-30.0, 30.0])])


def softplus(x: Tensor) -> Tensor:
    return torch.log1p(torch.exp(-x.abs())) + x.clamp(min=0)  # stable log(1 + e^x)


def sigmoid(x: Tensor) -> Tensor:
    return 1 / (1 + torch.exp(-x))


# Keras's SELU constants (keras.activations.selu docstring, Klambauer et al. 2017)
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805

CLOSED_FORMS: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": lambda x: x,
    "sigmoid": sigmoid,
    "tanh": lambda x: (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x)),
    "relu": lambda x: torch.where(x > 0, x, 0.0),
    "leaky_relu": lambda x: torch.where(x >= 0, x, 0.2 * x),
    "elu": lambda x: torch.where(x > 0, x, torch.exp(x) - 1),
    "selu": lambda x: SELU_SCALE * torch.where(x > 0, x, SELU_ALPHA * (torch.exp(x) - 1)),
    "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))),
    "swish": lambda x: x * sigmoid(x),
    "mish": lambda x: x * torch.tanh(softplus(x)),
    "softplus": softplus,
    "softsign": lambda x: x / (1 + x.abs()),
    "hard_sigmoid": lambda x: torch.clamp(x / 6 + 0.5, 0, 1),  # Keras 3 formula
    "prelu": lambda x: torch.where(x > 0, x, 0.0),  # alpha starts at 0 as in Keras
    "rrelu": lambda x: torch.where(x >= 0, x, (1 / 8 + 1 / 3) / 2 * x),  # eval: mean slope
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_matches_closed_form(name: str) -> None:
    module = act.get(name).double().eval()
    with torch.no_grad():
        got = module(X.unsqueeze(0)).squeeze(0)
    torch.testing.assert_close(got, CLOSED_FORMS[name](X), rtol=1e-6, atol=1e-7)


def test_softmax_closed_form_over_last_axis() -> None:
    x = torch.randn(4, 5, dtype=torch.float64)
    expected = torch.exp(x) / torch.exp(x).sum(dim=-1, keepdim=True)
    torch.testing.assert_close(act.get("softmax")(x), expected)
    torch.testing.assert_close(act.get("softmax", axis=0)(x), torch.softmax(x, dim=0))


def test_every_registered_name_has_a_test_oracle() -> None:
    assert set(act.ACTIVATIONS.names()) == {*CLOSED_FORMS, "softmax"}


def test_gelu_approximate_is_tanh_form() -> None:
    approx = act.get("gelu", approximate=True).double()
    c = math.sqrt(2 / math.pi)
    expected = 0.5 * X * (1 + torch.tanh(c * (X + 0.044715 * X**3)))
    torch.testing.assert_close(approx(X), expected)
    with pytest.raises(ConfigError, match=r"gelu\.approximate"):
        act.get("gelu", approximate="tanh")


def test_leaky_relu_default_and_alpha() -> None:
    assert act.DEFAULT_LEAKY_RELU_ALPHA == 0.2
    default = act.get("leaky_relu")
    assert isinstance(default, nn.LeakyReLU) and default.negative_slope == 0.2
    module = act.get("LeakyReLU", alpha=0.05)
    assert module(torch.tensor([-4.0])).item() == pytest.approx(-0.2)
    with pytest.raises(ConfigError, match=r"^leaky_relu\.alpha: got -0\.1"):
        act.get("leaky_relu", alpha=-0.1)


# -------------------------------------------------------------------------------------- RReLU


def test_rrelu_random_slopes_in_training_mean_slope_in_eval() -> None:
    lower, upper = 0.1, 0.3
    module = act.get("rrelu", lower=lower, upper=upper)
    x = -torch.ones(20000)
    module.train()
    slopes = module(x) / x
    assert slopes.min().item() >= lower and slopes.max().item() <= upper
    assert slopes.std().item() == pytest.approx((upper - lower) / math.sqrt(12), rel=0.05)
    assert slopes.mean().item() == pytest.approx((lower + upper) / 2, rel=0.01)
    assert torch.equal(module(-x), -x)  # positive inputs pass through in training too
    module.eval()
    torch.testing.assert_close(module(x) / x, torch.full_like(x, (lower + upper) / 2))
    assert torch.equal(module(-x), -x)


def test_rrelu_bounds_validated() -> None:
    with pytest.raises(ConfigError, match=r"rrelu\.upper"):
        act.get("rrelu", lower=0.4, upper=0.2)
    with pytest.raises(ConfigError, match=r"rrelu\.lower"):
        act.get("rrelu", lower=-0.1)


# -------------------------------------------------------------------------------------- PReLU


def test_prelu_parameter_shape_and_keras_init() -> None:
    shared = act.get("prelu")
    assert isinstance(shared, nn.PReLU)
    assert shared.weight.shape == (1,) and torch.equal(shared.weight, torch.zeros(1))
    per_unit = act.get("prelu", num_units=5, alpha_init=0.25)
    assert isinstance(per_unit, nn.PReLU)
    assert per_unit.weight.shape == (5,)
    assert torch.equal(per_unit.weight.detach(), torch.full((5,), 0.25))


def test_prelu_one_learned_alpha_per_unit() -> None:
    module = act.get("prelu", num_units=3)
    assert isinstance(module, nn.PReLU)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([0.1, 0.2, 0.3]))
    x = torch.tensor([[-1.0, -2.0, 4.0], [-1.0, -1.0, -1.0]])
    expected = torch.tensor([[-0.1, -0.4, 4.0], [-0.1, -0.2, -0.3]])
    torch.testing.assert_close(module(x), expected)
    # alpha starting at 0 (Keras) still learns: d out / d alpha = x for x < 0
    fresh = act.get("prelu", num_units=3)
    assert isinstance(fresh, nn.PReLU)
    fresh(x).sum().backward()
    assert fresh.weight.grad is not None
    torch.testing.assert_close(fresh.weight.grad, torch.tensor([-2.0, -3.0, -1.0]))


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "3"])
def test_prelu_bad_num_units(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"^prelu\.num_units"):
        act.get("prelu", num_units=bad)


# ---------------------------------------------------------------------------- get and names


TORCH_MODULES: list[tuple[nn.Module, str]] = [
    (nn.ReLU(), "relu"),
    (nn.LeakyReLU(), "leaky_relu"),
    (nn.RReLU(), "rrelu"),
    (nn.PReLU(), "prelu"),
    (nn.ELU(), "elu"),
    (nn.SELU(), "selu"),
    (nn.GELU(approximate="tanh"), "gelu"),
    (nn.SiLU(), "swish"),
    (nn.Mish(), "mish"),
    (nn.Softplus(), "softplus"),
    (nn.Softsign(), "softsign"),
    (nn.Sigmoid(), "sigmoid"),
    (nn.Tanh(), "tanh"),
    (nn.Hardsigmoid(), "hard_sigmoid"),
    (nn.Identity(), "linear"),
    (nn.Softmax(dim=1), "softmax"),
]


@pytest.mark.parametrize(("module", "name"), TORCH_MODULES)
def test_activation_name_of_torch_modules(module: nn.Module, name: str) -> None:
    assert act.activation_name(module) == name


def test_activation_name_round_trip_and_non_activations() -> None:
    for name in act.ACTIVATIONS.names():
        assert act.activation_name(act.get(name)) == name

    class MyReLU(nn.ReLU):
        pass

    assert act.activation_name(MyReLU()) == "relu"
    for other in (nn.Linear(2, 2), nn.BatchNorm1d(3), nn.Sequential(nn.ReLU()), "relu", None):
        assert act.activation_name(other) is None


def test_get_aliases_case_and_hyphens() -> None:
    assert isinstance(act.get("SiLU"), nn.SiLU)
    assert isinstance(act.get("logistic"), nn.Sigmoid)
    assert isinstance(act.get("Hard-Sigmoid"), nn.Hardsigmoid)
    assert isinstance(act.get("identity"), nn.Identity)


def test_get_passes_through_and_instantiates() -> None:
    module = nn.Tanh()
    assert act.get(module) is module
    built = act.get(nn.LeakyReLU, negative_slope=0.1)
    assert isinstance(built, nn.LeakyReLU) and built.negative_slope == 0.1
    assert isinstance(act.get(None), nn.Identity)
    elu = act.get({"name": "elu", "alpha": 0.5})
    assert isinstance(elu, nn.ELU) and elu.alpha == 0.5


def test_get_errors() -> None:
    with pytest.raises(UnknownNameError) as info:
        act.get("rleu")
    message = str(info.value)
    assert "did you mean 'relu'?" in message
    assert "leaky_relu" in message and "selu" in message  # lists the choices
    with pytest.raises(ConfigError, match=r"^relu\.alpha: .*no arguments"):
        act.get("relu", alpha=0.1)
    with pytest.raises(ConfigError, match=r"^elu\.beta: .*one of alpha"):
        act.get("elu", beta=1.0)
    with pytest.raises(ConfigError, match="module instance"):
        act.get(nn.ReLU(), alpha=0.1)
    with pytest.raises(ConfigError, match=r"nn\.Module"):
        act.get(torch.relu)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="LeakyReLU"):
        act.get(nn.LeakyReLU, alpha=0.1)
    with pytest.raises(ConfigError, match="'name'"):
        act.get({"alpha": 0.1})


# ------------------------------------------------------------------- families and saturation


def test_families_are_registered_names() -> None:
    names = set(act.ACTIVATIONS.names())
    assert names >= act.RELU_FAMILY and names >= act.SATURATING
    rectifiers = {"relu", "leaky_relu", "rrelu", "prelu"}
    bounded = {"sigmoid", "tanh", "softsign", "hard_sigmoid"}
    assert rectifiers == act.RELU_FAMILY and bounded == act.SATURATING


@pytest.mark.parametrize("name", sorted(act.SATURATING))
def test_saturation_bounds_are_the_asymptotes(name: str) -> None:
    bounds = act.saturation_bounds(name)
    assert bounds is not None
    low, high = bounds
    module = act.get(name).double()
    y = module(X)
    assert y.min().item() >= low and y.max().item() <= high
    far = module(torch.tensor([-1e6, 1e6], dtype=torch.float64))
    asymptotes = torch.tensor([low, high], dtype=torch.float64)
    torch.testing.assert_close(far, asymptotes, atol=1e-5, rtol=0)


def test_saturation_bounds_of_others() -> None:
    for name in set(act.ACTIVATIONS.names()) - act.SATURATING:
        assert act.saturation_bounds(name) is None
    assert act.saturation_bounds("logistic") == (0.0, 1.0)
    with pytest.raises(UnknownNameError, match="did you mean 'tanh'"):
        act.saturation_bounds("tanhh")


@pytest.mark.parametrize(("name", "kwargs"), [
    ("leaky_relu", {"alpha": -0.1}), ("leaky_relu", {"alpha": "x"}), ("elu", {"alpha": math.inf}),
    ("rrelu", {"lower": 0.3, "upper": 0.1}), ("prelu", {"num_units": 0}),
    ("prelu", {"alpha_init": None}), ("gelu", {"approximate": 1}), ("softmax", {"axis": 1.0}),
    ("relu", {"alpha": 0.1}), ("elu", {"alhpa": 1.0}), ("rleu", {}),
])
def test_check_raises_what_get_raises(name: str, kwargs: dict) -> None:
    """Oracle: ``get`` (which builds the module) on the same arguments."""
    with pytest.raises(ConfigError) as built:
        act.get(name, **kwargs)
    with pytest.raises(ConfigError) as checked:
        act.check(name, **kwargs)
    assert type(checked.value) is type(built.value)
    assert str(checked.value) == str(built.value)


@pytest.mark.parametrize("name", sorted(act.ACTIVATIONS.names()))
def test_check_accepts_every_name_get_builds(name: str) -> None:
    act.get(name)  # oracle: builds
    assert act.check(name) == act.ACTIVATIONS.canonical(name)
