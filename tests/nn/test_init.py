"""Tests of steadygrad.nn.init against closed forms, torch.nn.init and Keras semantics."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from steadygrad.errors import ConfigError, UnknownNameError
from steadygrad.nn import activations, init

SHAPE = (400, 2500)  # (out, in): fan_in 2500, fan_out 400, fan_avg 1450 -> modes differ
FANS = {"fan_in": 2500, "fan_out": 400, "fan_avg": 1450}
TRUNC = 0.87962566103423978


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def weight_layers(net: nn.Module) -> list[nn.Linear | nn.Conv2d]:
    return [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


# ---------------------------------------------------------------- variance_scaling statistics


@pytest.mark.parametrize("mode", init.MODES)
@pytest.mark.parametrize("distribution", init.DISTRIBUTIONS)
def test_variance_scaling_matches_formula(mode: str, distribution: str) -> None:
    scale = 2.0
    w = init.variance_scaling(torch.empty(SHAPE), scale, mode, distribution, generator=gen())
    target = math.sqrt(scale / FANS[mode])
    assert w.std().item() == pytest.approx(target, rel=0.02)
    assert abs(w.mean().item()) < 0.01 * target  # 10 standard errors on 1e6 samples
    top = w.abs().max().item()
    if distribution == "truncated_normal":
        bound = 2 * target / TRUNC  # cut at 2 pre-truncation stds
        assert top <= bound * (1 + 1e-6)
        assert top > 0.99 * bound  # cut there, not narrower
    elif distribution == "uniform":
        limit = math.sqrt(3 * scale / FANS[mode])
        assert top <= limit
        assert top > 0.999 * limit
    else:  # untruncated: 1e6 draws reach ~4.9 sigma, well past the truncation bound
        assert top > 2 * target / TRUNC * 1.5


def test_modes_give_different_scales() -> None:
    stds = {
        mode: init.variance_scaling(torch.empty(SHAPE), 1.0, mode, generator=gen()).std().item()
        for mode in init.MODES
    }
    assert stds["fan_out"] > stds["fan_avg"] > stds["fan_in"]


def test_normal_is_truncated_normal_as_in_keras() -> None:
    a = init.variance_scaling(torch.empty(50, 60), 2.0, "fan_in", "normal", generator=gen(3))
    b = init.variance_scaling(
        torch.empty(50, 60), 2.0, "fan_in", "truncated_normal", generator=gen(3)
    )
    assert torch.equal(a, b)


def test_conv_kernel_variance_uses_receptive_field() -> None:
    conv = nn.Conv2d(64, 128, 5)  # fan_in = 64 * 25
    init.he_normal(conv.weight, generator=gen())
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 25)), rel=0.02)


# ----------------------------------------------------------------------- torch as the oracle


def test_uniform_and_untruncated_match_torch_init() -> None:
    cases = [
        (lambda t, g: nn.init.xavier_uniform_(t, generator=g), (1.0, "fan_avg", "uniform")),
        (
            lambda t, g: nn.init.kaiming_uniform_(t, nonlinearity="relu", generator=g),
            (2.0, "fan_in", "uniform"),
        ),
        (
            lambda t, g: nn.init.xavier_normal_(t, generator=g),
            (1.0, "fan_avg", "untruncated_normal"),
        ),
        (
            lambda t, g: nn.init.kaiming_normal_(t, nonlinearity="relu", generator=g),
            (2.0, "fan_in", "untruncated_normal"),
        ),
        # PyTorch's nn.Linear / nn.Conv default, as documented in the module docstring
        (
            lambda t, g: nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=g),
            (1 / 3, "fan_in", "uniform"),
        ),
    ]
    for torch_init, args in cases:
        expected = torch_init(torch.empty(30, 7, 3), gen(5))
        got = init.variance_scaling(torch.empty(30, 7, 3), *args, generator=gen(5))
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)


def test_truncated_matches_torch_trunc_normal() -> None:
    std = math.sqrt(2.0 / 70) / TRUNC
    expected = nn.init.trunc_normal_(
        torch.empty(30, 70), 0.0, std, -2 * std, 2 * std, generator=gen(1)
    )
    got = init.he_normal(torch.empty(30, 70), generator=gen(1))
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)


NAMED = {
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_initializer_is_variance_scaling(name: str) -> None:
    expected = init.variance_scaling(torch.empty(20, 30), *NAMED[name], generator=gen(7))
    by_function = getattr(init, name)(torch.empty(20, 30), generator=gen(7))
    by_registry = init.get(name)(torch.empty(20, 30), generator=gen(7))
    assert torch.equal(by_function, expected)
    assert torch.equal(by_registry, expected)


def test_aliases() -> None:
    for alias, name in [
        ("xavier_normal", "glorot_normal"),
        ("xavier_uniform", "glorot_uniform"),
        ("kaiming_normal", "he_normal"),
        ("Kaiming-Uniform", "he_uniform"),
    ]:
        assert init.get(alias) == init.get(name)
        assert init.INITIALIZERS.canonical(alias) == name


def test_fans_match_torch_for_layer_weights() -> None:
    layers: list[nn.Linear | nn.modules.conv._ConvNd] = [
        nn.Linear(13, 5),
        nn.Conv1d(3, 8, 5),
        nn.Conv2d(3, 16, (3, 5)),
        nn.Conv3d(2, 4, 3),
        nn.Conv2d(8, 16, 3, groups=4),
        nn.ConvTranspose2d(6, 10, 3),
    ]
    for layer in layers:
        expected = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        assert init.compute_fans(layer.weight.shape) == expected


def test_fans_closed_form() -> None:
    assert init.compute_fans((64, 3, 5, 5)) == (3 * 25, 64 * 25)
    assert init.compute_fans((10, 20)) == (20, 10)
    assert init.compute_fans((7,)) == (7, 7)  # Keras: 1-D tensors use n for both
    assert init.compute_fans(()) == (1, 1)


def test_one_dimensional_and_scalar_tensors() -> None:
    b = init.variance_scaling(torch.empty(10000), 1.0, "fan_in", "uniform", generator=gen())
    assert b.abs().max().item() <= math.sqrt(3 / 10000)
    s = init.variance_scaling(torch.empty(()), 1.0, "fan_in", "uniform", generator=gen())
    assert abs(s.item()) <= math.sqrt(3.0)  # n = max(1, fan) = 1


# ----------------------------------------------------------------------------- other initializers


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (8, 4, 3, 3)])
def test_orthogonal(shape: tuple[int, ...]) -> None:
    gain = 1.5
    w = init.orthogonal(torch.empty(shape), gain=gain, generator=gen()).reshape(shape[0], -1)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    torch.testing.assert_close(gram, gain**2 * torch.eye(gram.shape[0]), atol=1e-5, rtol=0)


def test_orthogonal_rejects_vectors() -> None:
    with pytest.raises(ConfigError, match="tensor"):
        init.orthogonal(torch.empty(5))


def test_constants() -> None:
    t = torch.randn(3, 4)
    assert torch.equal(init.zeros(t), torch.zeros(3, 4))
    assert torch.equal(init.ones(t), torch.ones(3, 4))
    assert torch.equal(init.get("constant", value=0.1)(t), torch.full((3, 4), 0.1))


def test_fills_parameters_in_place_without_autograd() -> None:
    layer = nn.Linear(4, 3)
    out = init.he_uniform(layer.weight)
    assert out is layer.weight and out.requires_grad and out.grad_fn is None


# ------------------------------------------------------------------------------ reproducibility


def test_seeded_generator_reproducible_and_global_rng_untouched() -> None:
    for name in [*NAMED, "orthogonal"]:
        fn = init.get(name)
        state = torch.get_rng_state()
        a = fn(torch.empty(6, 9), generator=gen(11))
        b = fn(torch.empty(6, 9), generator=gen(11))
        c = fn(torch.empty(6, 9), generator=gen(12))
        assert torch.equal(torch.get_rng_state(), state), name
        assert torch.equal(a, b), name
        assert not torch.equal(a, c), name


def test_global_rng_used_without_generator() -> None:
    torch.manual_seed(4)
    a = init.he_normal(torch.empty(5, 5))
    torch.manual_seed(4)
    assert torch.equal(a, init.he_normal(torch.empty(5, 5)))


# -------------------------------------------------------------------------------- get and errors


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"mode": "fan_mean"}, "mode"),
        ({"distribution": "gaussian"}, "distribution"),
        ({"scale": 0.0}, "scale"),
        ({"scale": -1.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"scale": True}, "scale"),
        ({"scale": "2"}, "scale"),
    ],
)
def test_bad_variance_scaling_arguments(kwargs: dict[str, object], path: str) -> None:
    with pytest.raises(ConfigError, match=f"^{path}: got") as info:
        init.get("variance_scaling", **kwargs)
    assert info.value.path == path
    with pytest.raises(ConfigError, match=f"^{path}: got"):
        init.variance_scaling(torch.empty(2, 2), **kwargs)  # type: ignore[arg-type]


def test_bad_arguments_of_other_initializers() -> None:
    with pytest.raises(ConfigError, match="gain"):
        init.get("orthogonal", gain=float("inf"))
    with pytest.raises(ConfigError, match="value"):
        init.get("constant", value="a lot")
    with pytest.raises(ConfigError, match=r"he_normal\.scale.*no arguments"):
        init.get("he_normal", scale=3.0)
    with pytest.raises(ConfigError, match=r"variance_scaling\.fan.*scale, mode, distribution"):
        init.get("variance_scaling", fan="in")
    with pytest.raises(ConfigError, match="tensor"):
        init.he_normal(torch.zeros(3, 3, dtype=torch.long))


def test_unknown_name_suggests() -> None:
    with pytest.raises(UnknownNameError, match=r"did you mean 'he_normal'\?") as info:
        init.get("he_normall")
    assert "glorot_uniform" in str(info.value)


def test_get_dict_callable_and_config_round_trip() -> None:
    spec = {"name": "Variance-Scaling", "scale": 2.0, "mode": "fan_avg", "distribution": "uniform"}
    initializer = init.get(spec)
    assert isinstance(initializer, init.Initializer)
    assert init.get(initializer.config) == initializer
    expected = init.variance_scaling(torch.empty(8, 8), 2.0, "fan_avg", "uniform", generator=gen())
    assert torch.equal(initializer(torch.empty(8, 8), generator=gen()), expected)

    def custom(tensor: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return tensor.fill_(3.0)

    assert init.get(custom) is custom
    with pytest.raises(ConfigError, match="callable"):
        init.get(custom, value=1.0)
    with pytest.raises(ConfigError, match="'name'"):
        init.get({"scale": 2.0})
    with pytest.raises(ConfigError):
        init.get(42)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- "auto"


def test_auto_initializer_mapping() -> None:
    glorot = ["linear", "tanh", "sigmoid", "softmax", "softsign", "hard_sigmoid", None]
    he = ["relu", "leaky_relu", "rrelu", "prelu", "elu", "gelu", "swish", "silu", "mish",
          "softplus"]
    for name in glorot:
        assert init.auto_initializer(name) == "glorot_uniform", name
    for name in he:
        assert init.auto_initializer(name) == "he_normal", name
    assert init.auto_initializer("SELU") == "lecun_normal"
    assert init.auto_initializer(nn.LeakyReLU()) == "he_normal"
    assert init.auto_initializer(nn.Tanh()) == "glorot_uniform"


def test_auto_covers_every_registered_activation() -> None:
    assert set(init._AUTO) == set(activations.ACTIVATIONS.names())


def test_auto_errors() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'relu'"):
        init.auto_initializer("rleu")
    with pytest.raises(ConfigError, match="activation"):
        init.auto_initializer(nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="activation"):
        init.get("auto", activation="rleu")


def test_auto_registered_initializer() -> None:
    got = init.get("auto", activation="selu")(torch.empty(9, 16), generator=gen(2))
    assert torch.equal(got, init.lecun_normal(torch.empty(9, 16), generator=gen(2)))


# --------------------------------------------------------------------------------- initialize_


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.act = nn.ELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


def test_layer_activations_rule() -> None:
    net = nn.Sequential(
        Block(),
        nn.Flatten(),
        nn.Linear(100, 50),
        nn.BatchNorm1d(50),
        nn.Dropout(0.1),
        nn.SiLU(),
        nn.Linear(50, 20),
        nn.Linear(20, 20),
        nn.Tanh(),
        Functional(),
        nn.Linear(3, 2),
        nn.Softmax(dim=-1),
    )
    assert init.layer_activations(net) == {
        "0.conv": "elu",
        "2": "swish",
        "6": None,  # followed directly by another weight layer
        "7": "tanh",
        "9.fc": None,  # torch.relu in forward() cannot be seen
        "10": "softmax",
    }


def test_initialize_applies_auto_choice_per_layer() -> None:
    def make() -> nn.Sequential:
        return nn.Sequential(
            nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 20), nn.SELU(), nn.Linear(20, 5)
        )

    net = init.initialize_(make(), generator=gen(9))
    g = gen(9)
    expected = [
        init.he_normal(torch.empty(30, 40), generator=g),
        init.lecun_normal(torch.empty(20, 30), generator=g),
        init.glorot_uniform(torch.empty(5, 20), generator=g),
    ]
    for layer, weight in zip(weight_layers(net), expected, strict=True):
        assert torch.equal(layer.weight, weight)
        assert layer.bias is not None and not layer.bias.any()

    forced = init.initialize_(make(), activation="relu", generator=gen(9))
    g = gen(9)
    for layer in weight_layers(forced):
        expected_weight = init.he_normal(torch.empty_like(layer.weight), generator=g)
        assert torch.equal(layer.weight, expected_weight)


def test_initialize_explicit_and_none() -> None:
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Linear(5, 4))
    before = [p.detach().clone() for p in net.parameters()]
    init.initialize_(net, kernel_initializer=None, bias_initializer=None)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))

    init.initialize_(net, kernel_initializer={"name": "constant", "value": 0.5},
                     bias_initializer="ones")
    for layer in weight_layers(net):
        assert layer.bias is not None
        assert torch.equal(layer.weight, torch.full_like(layer.weight, 0.5))
        assert torch.equal(layer.bias, torch.ones_like(layer.bias))


def test_initialize_reproducible() -> None:
    nets = [nn.Sequential(nn.Linear(6, 6), nn.GELU(), nn.Linear(6, 1)) for _ in range(2)]
    for net in nets:
        init.initialize_(net, generator=gen(21))
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(a, b)


def test_initialize_errors_touch_nothing() -> None:
    first = nn.Linear(3, 3)
    net = nn.Sequential(first, nn.ReLU(), nn.LazyLinear(2))
    before = first.weight.detach().clone()
    with pytest.raises(ConfigError, match=r"2\.weight.*forward pass"):
        init.initialize_(net)
    assert torch.equal(first.weight, before)
    with pytest.raises(UnknownNameError, match="did you mean"):
        init.initialize_(nn.Linear(2, 2), kernel_initializer="he_norml")
    with pytest.raises(ConfigError, match="module"):
        init.initialize_("not a module")  # type: ignore[type-var]
