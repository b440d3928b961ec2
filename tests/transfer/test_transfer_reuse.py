"""reuse/clone/freeze: copies never share weights, freezing follows Keras's trainable=False."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn.build import mlp
from steadygrad.train.loop import fit
from steadygrad.transfer.freeze import (
    freeze,
    frozen_parameter_names,
    is_frozen_batch_norm,
    unfreeze,
)
from steadygrad.transfer.layer_select import select_layers
from steadygrad.transfer.reuse import clone, parameters_equal, reuse


def _data(n: int = 64, d: int = 6, classes: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, d, generator=g)
    return x, (x[:, 0] > 0).long() % classes


def test_source_bit_identical_after_training_the_transferred_model() -> None:
    source = mlp(6, (16, 16), batch_norm="before", num_outputs=5, seed=0)
    snapshot = {k: v.clone() for k, v in source.state_dict().items()}
    target = reuse(source, drop_last=1, new_head=2)
    fit(target, _data(), epochs=2, optimizer="adam", learning_rate=0.05, verbose=0, seed=0)
    assert not torch.equal(target.dense1.weight, source.dense1.weight)  # it did train
    for key, value in source.state_dict().items():  # weights and BN running stats
        assert torch.equal(value, snapshot[key]), key


def test_reuse_keeps_lower_layers_and_their_function() -> None:
    source = mlp(6, (16, 8), num_outputs=5, seed=0).eval()
    target = reuse(source, drop_last=1, new_head=3).eval()
    x = _data()[0]
    body_source = nn.Sequential(*list(source)[:-1])
    body_target = nn.Sequential(*list(target)[:-1])
    assert torch.equal(body_source(x), body_target(x))
    assert target.output.in_features == 8 and target.output.out_features == 3
    assert list(reuse(source, drop_last=2)._modules) == ["dense1", "act1", "dense2"]


def test_reuse_rejects_bad_arguments() -> None:
    source = mlp(6, (16,), num_outputs=5, seed=0)
    with pytest.raises(ConfigError, match="drop_last"):
        reuse(source, drop_last=3)
    with pytest.raises(ConfigError, match="new_head"):
        reuse(source, new_head=0)
    with pytest.raises(ConfigError, match="head_name"):
        reuse(source, drop_last=0, new_head=2)  # 'output' is still there
    with pytest.raises(ConfigError, match="new_head"):
        reuse(nn.Sequential(nn.ReLU(), nn.Linear(2, 2)), drop_last=1, new_head=2)


def test_clone_is_independent() -> None:
    net = mlp(6, (8,), num_outputs=2, l2=0.01, seed=0)
    twin = clone(net)
    assert parameters_equal(net, twin)
    assert twin.dense1.kernel_regularizer == net.dense1.kernel_regularizer
    with torch.no_grad():
        twin.dense1.weight.add_(1.0)
    assert not parameters_equal(net, twin)


def test_select_by_index_name_glob_and_nested_names() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(
                OrderedDict(dense1=nn.Linear(2, 3), dense2=nn.Linear(3, 3)))
            self.head = nn.Linear(3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.encoder(x))

    net = Net()
    assert [n for n, _ in select_layers(net, "encoder.dense*")] == [
        "encoder.dense1", "encoder.dense2"]
    assert [n for n, _ in select_layers(net, "encoder*")] == ["encoder"]  # outermost only
    assert [n for n, _ in select_layers(net, -1)] == ["head"]
    with pytest.raises(ConfigError, match="did you mean 'encoder'"):
        select_layers(net, "encodr")
    with pytest.raises(ConfigError, match="matching"):
        select_layers(net, "conv*")
    with pytest.raises(ConfigError, match="index"):
        select_layers(net, 5)
    freeze(net, "encoder.dense1")
    assert frozen_parameter_names(net) == ["encoder.dense1.weight", "encoder.dense1.bias"]


def test_frozen_layers_do_not_change_during_fit() -> None:
    model = mlp(6, (16, 16), num_outputs=2, seed=0)
    freeze(model, "dense*")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, _data(), epochs=2, optimizer="sgd", learning_rate=0.1, verbose=0, seed=0)
    after = model.state_dict()
    for key in before:
        same = torch.equal(before[key], after[key])
        assert same == key.startswith("dense"), key


def test_frozen_batch_norm_stays_in_inference_mode_after_train() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    with torch.no_grad():  # non-trivial running statistics
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    freeze(model, [0, 1])
    stats = (model[1].running_mean.clone(), model[1].running_var.clone())
    x = torch.randn(32, 4)
    model.train()
    out_train = model[1](model[0](x))
    model.eval()
    out_eval = model[1](model[0](x))
    assert torch.equal(out_train, out_eval)  # normalized with running stats, not the batch's
    model.train()
    fit(model, (x, torch.randint(0, 2, (32,))), epochs=2, learning_rate=0.1, verbose=0)
    assert torch.equal(model[1].running_mean, stats[0])
    assert torch.equal(model[1].running_var, stats[1])
    assert int(model[1].num_batches_tracked) == 0
    # copies keep the behaviour (the hook is a plain function)
    twin = clone(model)
    assert is_frozen_batch_norm(twin[1])
    unfreeze(model)
    assert not is_frozen_batch_norm(model[1]) and model[1].training
    model(x)
    assert not torch.equal(model[1].running_mean, stats[0])


def test_unfreeze_subset_and_idempotent_freeze() -> None:
    model = mlp(6, (8, 8), num_outputs=2, seed=0)
    freeze(model)
    freeze(model)
    assert len(frozen_parameter_names(model)) == len(list(model.parameters()))
    unfreeze(model, "output")
    assert frozen_parameter_names(model) == [
        "dense1.weight", "dense1.bias", "dense2.weight", "dense2.bias"]
    with pytest.raises(ConfigError, match="layers"):
        freeze(model, 3.5)  # type: ignore[arg-type]
