"""MC dropout layers: sample in eval mode, same statistics as torch's dropout in training."""

from __future__ import annotations

import torch
from torch import nn

from steadygrad.nn.layers import Flatten, MCAlphaDropout, MCDropout


def test_mc_dropout_equals_torch_dropout_in_train_mode_for_the_same_rng() -> None:
    x = torch.randn(64, 32)
    torch.manual_seed(1)
    expected = nn.Dropout(0.3).train()(x)
    torch.manual_seed(1)
    got = MCDropout(0.3).eval()(x)  # eval mode, yet the same mask as torch in train mode
    torch.testing.assert_close(got, expected)


def test_mc_alpha_dropout_equals_torch_alpha_dropout_in_train_mode() -> None:
    x = torch.randn(64, 32)
    torch.manual_seed(2)
    expected = nn.AlphaDropout(0.2).train()(x)
    torch.manual_seed(2)
    got = MCAlphaDropout(0.2).eval()(x)
    torch.testing.assert_close(got, expected)


def test_mc_dropout_rate_and_scaling_in_eval_mode() -> None:
    layer = MCDropout(0.25).eval()
    y = layer(torch.ones(200_000))
    assert abs((y == 0).float().mean().item() - 0.25) < 0.01
    torch.testing.assert_close(y[y != 0], torch.full_like(y[y != 0], 1 / 0.75))


def test_mc_alpha_dropout_keeps_selu_fixed_point_in_eval_mode() -> None:
    y = MCAlphaDropout(0.2).eval()(torch.randn(200_000))
    assert abs(y.mean().item()) < 0.02 and abs(y.std().item() - 1) < 0.02
    assert not torch.equal(y, MCAlphaDropout(0.2).eval()(y))  # it does change the input


def test_two_eval_passes_differ_but_model_eval_freezes_other_layers() -> None:
    model = nn.Sequential(nn.Linear(5, 50), nn.BatchNorm1d(50), MCDropout(0.5)).eval()
    x = torch.randn(4, 5)
    a, b = model(x), model(x)
    assert not torch.equal(a, b)
    assert model[1].running_mean.abs().sum() == 0  # BN stayed frozen (eval mode)


def test_state_dict_compatible_with_torch_dropout() -> None:
    assert MCDropout(0.1).state_dict().keys() == nn.Dropout(0.1).state_dict().keys()
    assert isinstance(MCDropout(0.1), nn.Dropout) and isinstance(MCAlphaDropout(), nn.AlphaDropout)
    assert Flatten is nn.Flatten
