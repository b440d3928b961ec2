"""MC dropout: dropout samples, batch norm stays in eval, modes restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn.build import mlp
from steadygrad.nn.layers import MCAlphaDropout, MCDropout
from steadygrad.uncertainty.mc_dropout import enable_mc_dropout, mc_dropout_mode, mc_predict


def _bn_net(rate: float) -> nn.Sequential:
    net = mlp(6, (32, 32), batch_norm="before", dropout=rate, num_outputs=4, seed=0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net


def test_rate_zero_equals_deterministic_prediction() -> None:
    net, x = _bn_net(0.0), torch.randn(20, 6)
    net.dropout1 = nn.Dropout(0.0)  # a dropout layer that never drops
    pred = mc_predict(net, x, samples=7, batch_size=8)
    with torch.no_grad():
        expected = torch.softmax(net.eval()(x), dim=1)
    assert torch.equal(pred.mean_probs, expected)
    assert torch.equal(pred.std, torch.zeros_like(expected))
    assert torch.allclose(pred.entropy, -(expected * expected.log()).sum(1))
    assert torch.equal(pred.predictions, expected.argmax(1))


def test_batch_norm_stays_in_eval_and_modes_are_restored() -> None:
    net, x = _bn_net(0.3), torch.randn(20, 6)
    net.train()
    net.bn2.eval()  # a mixed state must come back exactly
    stats = {k: v.clone() for k, v in net.state_dict().items()}
    pred = mc_predict(net, x, samples=30)
    for key, value in net.state_dict().items():
        assert torch.equal(value, stats[key]), key  # running stats not updated
    assert net.training and net.bn1.training and not net.bn2.training and net.dropout1.training
    assert bool((pred.std > 0).any())


def test_matches_a_hand_written_loop_and_is_seeded() -> None:
    net, x = _bn_net(0.2), torch.randn(10, 6)
    pred = mc_predict(net, x, samples=25, generator_seed=7)
    torch.manual_seed(7)
    with mc_dropout_mode(net), torch.no_grad():
        stack = torch.stack([torch.softmax(net(x), 1) for _ in range(25)]).double()
    assert torch.allclose(pred.mean_probs.double(), stack.mean(0), atol=1e-6)
    assert torch.allclose(pred.std.double(), stack.std(0, unbiased=False), atol=1e-6)
    again = mc_predict(net, x, samples=25, generator_seed=7)
    assert torch.equal(again.mean_probs, pred.mean_probs)


def test_binary_single_logit_entropy_uses_both_classes() -> None:
    net = nn.Sequential(nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.fill_(0.0)
    pred = mc_predict(net, torch.randn(4, 3), samples=3)
    assert torch.allclose(pred.mean_probs, torch.full((4, 1), 0.5))
    assert torch.allclose(pred.entropy, torch.full((4,), float(torch.log(torch.tensor(2.0)))))


def test_bad_arguments() -> None:
    net = _bn_net(0.1)
    with pytest.raises(ConfigError, match="samples"):
        mc_predict(net, torch.randn(2, 6), samples=0)
    with pytest.raises(ConfigError, match="batch_size"):
        mc_predict(net, torch.randn(2, 6), batch_size=0)
    with pytest.raises(ConfigError, match="x"):
        mc_predict(net, torch.randn(6))
    with pytest.raises(ConfigError, match="model output"):
        mc_predict(nn.Flatten(0), torch.randn(3, 2))


def test_enable_mc_dropout_converts_in_place_and_keeps_state() -> None:
    net = nn.Sequential(nn.Linear(4, 64), nn.SELU(), nn.AlphaDropout(0.2), nn.Linear(64, 64),
                        nn.ReLU(), nn.Dropout(0.5), nn.Dropout1d(0.1), nn.Linear(64, 2))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    assert enable_mc_dropout(net) == 2
    assert isinstance(net[2], MCAlphaDropout) and net[2].p == 0.2
    assert isinstance(net[5], MCDropout) and net[5].p == 0.5
    assert type(net[6]) is nn.Dropout1d
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    net.eval()
    x = torch.randn(8, 4)
    assert not torch.equal(net(x), net(x))  # samples in eval mode
    assert enable_mc_dropout(net) == 0  # idempotent
