"""Weight constraints vs the Keras formulas (on PyTorch layouts) and their properties."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn import constraints as C


def keras_max_norm(w_keras: torch.Tensor, max_value: float, axis: tuple[int, ...]) -> torch.Tensor:
    """keras.constraints.MaxNorm.__call__, transcribed (epsilon = keras backend 1e-7)."""
    norms = torch.sqrt(torch.sum(w_keras**2, dim=axis, keepdim=True))
    desired = torch.clip(norms, 0, max_value)
    return w_keras * (desired / (1e-7 + norms))


def test_max_norm_dense_matches_keras_on_transposed_kernel() -> None:
    w = torch.randn(6, 9, dtype=torch.float64) * 2  # torch (out, in)
    got = C.MaxNorm(1.5)(w)
    expected = keras_max_norm(w.T, 1.5, axis=(0,)).T  # keras kernel (in, out), axis=0
    torch.testing.assert_close(got, expected)


def test_max_norm_conv_matches_keras_channels_last() -> None:
    w = torch.randn(4, 3, 5, 5, dtype=torch.float64)  # torch (out, in, kh, kw)
    got = C.MaxNorm(2.0)(w)
    w_keras = w.permute(2, 3, 1, 0)  # keras (kh, kw, in, out), axis=[0, 1, 2]
    expected = keras_max_norm(w_keras, 2.0, axis=(0, 1, 2)).permute(3, 2, 0, 1)
    torch.testing.assert_close(got, expected)


def test_max_norm_bounds_norms_and_leaves_small_rows_alone() -> None:
    w = torch.randn(50, 20, dtype=torch.float64)
    w[:25] *= 0.01  # rows well below the bound
    out = C.MaxNorm(1.0)(w)
    norms = out.norm(dim=1)
    assert torch.all(norms <= 1.0 + 1e-12)
    torch.testing.assert_close(out[:25], w[:25], rtol=1e-5, atol=0)  # ×norm/(1e-7+norm)
    # rows above the bound keep their direction
    cos = nn.functional.cosine_similarity(out[25:], w[25:], dim=1)
    torch.testing.assert_close(cos, torch.ones(25, dtype=torch.float64))


def test_unit_norm_and_min_max_norm_keras_semantics() -> None:
    w = torch.randn(5, 8, dtype=torch.float64)
    n = w.norm(dim=1, keepdim=True)
    torch.testing.assert_close(C.UnitNorm()(w), w / (1e-7 + n))
    mm = C.MinMaxNorm(min_value=1.0, max_value=2.0, rate=0.5)(w)
    desired = 0.5 * n.clamp(1.0, 2.0) + 0.5 * n
    torch.testing.assert_close(mm, w * desired / (1e-7 + n))


def test_non_neg() -> None:
    w = torch.randn(10, 10)
    out = C.NonNeg()(w)
    assert torch.all(out >= 0)
    assert torch.equal(out[w > 0], w[w > 0])


def test_apply_is_in_place_under_no_grad_on_any_module() -> None:
    model = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Conv1d(2, 3, 4), nn.Linear(10, 2))
    C.attach(model[0], max_norm=0.5)
    C.attach(model[2], max_norm=0.5)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(100)
    before_id = model[0].weight.data_ptr()
    untouched = model[3].weight.clone()
    C.apply_(model)
    assert model[0].weight.data_ptr() == before_id
    assert model[0].weight.requires_grad and model[0].weight.grad_fn is None
    assert torch.all(model[0].weight.norm(dim=1) <= 0.5 + 1e-6)
    assert torch.all(model[2].weight.flatten(1).norm(dim=1) <= 0.5 + 1e-6)
    assert torch.equal(model[3].weight, untouched)


def test_after_a_training_step_the_constraint_holds() -> None:
    layer = C.attach(nn.Linear(4, 3), max_norm=0.1)
    opt = torch.optim.SGD(layer.parameters(), lr=10.0)
    layer(torch.randn(8, 4)).square().sum().backward()
    opt.step()
    C.apply_(layer)
    assert torch.all(layer.weight.norm(dim=1) <= 0.1 + 1e-6)


def test_conv_transpose_constrains_each_output_channel() -> None:
    layer = C.attach(nn.ConvTranspose2d(3, 4, 2), max_norm=1.0)  # weight (in=3, out=4, 2, 2)
    with torch.no_grad():
        layer.weight.mul_(100)
    C.apply_(layer)
    per_out = layer.weight.transpose(0, 1).flatten(1).norm(dim=1)
    assert per_out.shape == (4,)
    assert torch.all(per_out <= 1.0 + 1e-6)


def test_attach_to_container_and_has_constraints() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    assert not C.has_constraints(model)
    C.attach(model, max_norm=3.0)
    assert C.has_constraints(model)
    assert model[0].kernel_constraint == model[2].kernel_constraint == C.MaxNorm(3.0)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: C.MaxNorm(0.0), "max_value"),
        (lambda: C.MaxNorm(-1.0), "max_value"),
        (lambda: C.MaxNorm(1.0, axis="rows"), "axis"),
        (lambda: C.MinMaxNorm(2.0, 1.0), "max_value"),
        (lambda: C.MinMaxNorm(rate=1.5), "rate"),
        (lambda: C.attach(nn.Linear(2, 2)), "constraint"),
        (lambda: C.attach(nn.ReLU(), max_norm=1.0), "module"),
    ],
)
def test_bad_arguments_raise_config_error(make, field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}: got"):
        make()
