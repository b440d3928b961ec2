"""ℓ1/ℓ2 penalties: Keras formula, autograd gradient, attach/penalty on arbitrary modules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn import regularizers as R


def test_l1l2_matches_keras_formula() -> None:
    w = torch.randn(7, 5, dtype=torch.float64)
    got = R.L1L2(l1=0.03, l2=0.2)(w)
    expected = 0.03 * w.abs().sum() + 0.2 * (w**2).sum()  # keras L1L2.__call__
    assert got.dim() == 0
    torch.testing.assert_close(got, expected)


def test_keras_factory_defaults() -> None:
    # keras.regularizers.l1 / l2 / l1_l2 default to 0.01; L1L2 defaults to 0, 0
    assert R.l1() == R.L1L2(l1=0.01)
    assert R.l2() == R.L1L2(l2=0.01)
    assert R.l1_l2() == R.L1L2(l1=0.01, l2=0.01)
    assert R.L1L2()(torch.ones(3)).item() == 0.0


def test_penalty_gradient_is_l1_sign_plus_2_l2_w() -> None:
    layer = nn.Linear(4, 3)
    R.attach(layer, l1=0.1, l2=0.05)
    R.penalty(layer).backward()
    w = layer.weight.detach()
    torch.testing.assert_close(layer.weight.grad, 0.1 * torch.sign(w) + 2 * 0.05 * w)
    assert layer.bias.grad is None  # only the kernel is penalized, as Keras's kernel_regularizer


def test_penalty_sums_over_modules_and_counts_shared_once() -> None:
    shared = nn.Linear(3, 3)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), shared, shared, nn.Conv1d(1, 2, 3))
    R.attach(model[0], l2=0.5)
    R.attach(shared, l1=0.2)
    R.attach(model[4], R.l2(0.1))
    expected = (
        0.5 * model[0].weight.square().sum()
        + 0.2 * shared.weight.abs().sum()
        + 0.1 * model[4].weight.square().sum()
    )
    torch.testing.assert_close(R.penalty(model), expected)


def test_attach_to_container_reaches_every_linear_and_conv() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2), nn.BatchNorm1d(2))
    R.attach(model, l2=0.01)
    tagged = [type(m).__name__ for m in model.modules() if hasattr(m, "kernel_regularizer")]
    assert tagged == ["Conv2d", "Linear"]


def test_no_penalty_is_a_zero_scalar_on_the_model_device_and_dtype() -> None:
    model = nn.Sequential(nn.Linear(2, 2)).double()
    assert not R.has_penalties(model)
    p = R.penalty(model)
    assert p.shape == () and p.item() == 0.0 and p.dtype == torch.float64
    assert R.penalty(nn.ReLU()).shape == ()


def test_zero_factors_remove_the_regularizer() -> None:
    layer = R.attach(nn.Linear(2, 2), l2=0.1)
    assert R.has_penalties(layer)
    R.attach(layer, l1=0.0, l2=0.0)
    assert not R.has_penalties(layer)


def test_custom_callable_regularizer() -> None:
    layer = R.attach(nn.Linear(2, 2), lambda w: w.sum() * 0)
    assert R.has_penalties(layer)
    assert R.penalty(layer).item() == 0.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"l1": -0.1}, "l1"), ({"l2": float("nan")}, "l2"), ({"l1": "0.1"}, "l1")],
)
def test_bad_factors_raise_config_error_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}: got"):
        R.L1L2(**kwargs)


def test_attach_rejects_modules_without_weights_and_ambiguous_args() -> None:
    with pytest.raises(ConfigError, match="module: got 'ReLU'"):
        R.attach(nn.ReLU(), l2=0.1)
    with pytest.raises(ConfigError, match="not both"):
        R.attach(nn.Linear(2, 2), R.l2(), l2=0.1)
    with pytest.raises(ConfigError, match="callable"):
        R.attach(nn.Linear(2, 2), 0.1)  # type: ignore[arg-type]
