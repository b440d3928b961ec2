"""Stacked autoencoder (tied/untied, whole/greedy), encoder reuse, label budgets."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn.build import mlp
from steadygrad.transfer.budgets import label_budget_table, take_labels
from steadygrad.transfer.pretrain import (
    StackedAutoencoder,
    TiedLinear,
    classifier_from_encoder,
    encoder_mlp,
    pretrain_autoencoder,
    pretrain_auxiliary,
)


def _low_rank(n: int = 256) -> torch.Tensor:
    """Inputs in [0, 1] on a 3-dim manifold of a 12-dim space (an AE can learn them)."""
    g = torch.Generator().manual_seed(3)
    z = torch.randn(n, 3, generator=g)
    return torch.sigmoid(z @ torch.randn(3, 12, generator=g))


def _mse(ae: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(((ae.eval()(x) - x) ** 2).mean())


def test_tied_decoder_shares_the_encoder_weights() -> None:
    enc = encoder_mlp(12, (8, 3), seed=0)
    tied, untied = StackedAutoencoder(enc, tied=True), StackedAutoencoder(encoder_mlp(12, (8, 3)))
    n_tied = sum(p.numel() for p in tied.parameters())
    n_untied = sum(p.numel() for p in untied.parameters())
    assert n_untied - n_tied == 12 * 8 + 8 * 3  # the decoder kernels
    dec = tied.decoder[-2]
    assert isinstance(dec, TiedLinear) and dec.weight is enc.dense1.weight
    x = torch.rand(4, 12)
    assert torch.allclose(dec(torch.ones(1, 8)), enc.dense1.weight.sum(0, keepdim=True))
    tied(x).sum().backward()  # gradient reaches the shared kernel from both sides
    assert enc.dense1.weight.grad is not None
    # a deep copy keeps the tie inside the copy, not to the original
    twin = copy.deepcopy(tied)
    assert twin.decoder[-2].weight is twin.encoder.dense1.weight


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("greedy", [False, True])
def test_pretraining_reduces_reconstruction_error(tied: bool, greedy: bool) -> None:
    x = _low_rank()
    ae = StackedAutoencoder(encoder_mlp(12, (8, 4), seed=0), tied=tied)
    before = _mse(ae, x)
    histories = pretrain_autoencoder(ae, x, greedy=greedy, epochs=8, optimizer="adam",
                                     learning_rate=0.01, verbose=0, seed=0)
    assert len(histories) == (2 if greedy else 1)
    assert all(h["loss"][-1] < h["loss"][0] for h in histories)
    assert _mse(ae, x) < 0.5 * before


def test_greedy_first_stage_trains_only_the_outer_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    x = _low_rank()
    ae = StackedAutoencoder(encoder_mlp(12, (8, 4), seed=0))
    inner = ae.encoder.dense2.weight.detach().clone()
    from steadygrad.train.loop import fit

    calls = []

    def spy(model, data, **kw):  # type: ignore[no-untyped-def]
        calls.append([type(m).__name__ for m in model])
        return fit(model, data, **kw)

    monkeypatch.setattr("steadygrad.train.loop.fit", spy)
    pretrain_autoencoder(ae, x, greedy=True, epochs=1, verbose=0)
    assert calls == [["Linear", "SELU", "Linear", "Sigmoid"], ["Linear", "SELU", "Linear", "SELU"]]
    assert not torch.equal(ae.encoder.dense2.weight, inner)


def test_classifier_copies_the_encoder() -> None:
    ae = StackedAutoencoder(encoder_mlp(12, (8, 4), seed=0))
    clf = classifier_from_encoder(ae, num_classes=3)
    x = _low_rank(16)
    assert torch.equal(clf[:-1](x), ae.encode(x))
    with torch.no_grad():
        clf[0].weight.add_(1.0)
    assert not torch.equal(clf[0].weight, ae.encoder.dense1.weight)
    assert clf[-1].out_features == 3
    with pytest.raises(ConfigError, match="num_classes"):
        classifier_from_encoder(ae, num_classes=0)


def test_auxiliary_task_lower_layers_feed_a_classifier() -> None:
    x = torch.randn(64, 5)
    aux = mlp(5, (8, 8), num_outputs=2, seed=0)
    lower, history = pretrain_auxiliary(aux, (x, (x.sum(1) > 0).long()), epochs=2, verbose=0)
    assert len(history["loss"]) == 2
    assert torch.equal(lower(x), aux[:-1](x))
    clf = classifier_from_encoder(lower, 4)
    assert list(clf._modules) == ["dense1", "act1", "dense2", "act2", "output"]
    with pytest.raises(ConfigError, match="drop_last"):
        pretrain_auxiliary(aux, (x, x), drop_last=0)


def test_take_labels_is_balanced_nested_and_seeded() -> None:
    x = torch.arange(100.0).unsqueeze(1)
    y = torch.cat([torch.zeros(70), torch.ones(20), torch.full((10,), 2.0)]).long()
    xs, ys = take_labels(x, y, 30, seed=0)
    assert torch.bincount(ys).tolist() == [10, 10, 10]
    xl, _ = take_labels(x, y, 60, seed=0)
    assert torch.equal(xl[:30], xs)
    assert torch.bincount(take_labels(x, y, 60, seed=0)[1]).tolist() == [30, 20, 10]
    assert not torch.equal(take_labels(x, y, 30, seed=1)[0], xs)
    assert torch.equal(y[xs.flatten().long()], ys)
    with pytest.raises(ConfigError, match="n"):
        take_labels(x, y, 101)


def test_label_budget_table_rows() -> None:
    x = torch.randn(120, 4)
    y = (x[:, 0] > 0).long()
    rows = label_budget_table(
        {"a": lambda: mlp(4, (8,), num_outputs=2, seed=0),
         "b": lambda: mlp(4, (4,), num_outputs=2, seed=1)},
        (x, y), (x, y), [10, 60], epochs=1, verbose=0)
    assert [(r["model"], r["labels"]) for r in rows] == [("a", 10), ("b", 10), ("a", 60), ("b", 60)]
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    with pytest.raises(ConfigError, match="budgets"):
        label_budget_table({"a": lambda: nn.Linear(4, 2)}, (x, y), (x, y), [0])


def test_sigmoid_output_on_standardized_inputs_warns_and_trains_worse() -> None:
    """Regression (issue 18): the default sigmoid output on standardized data trained badly
    without a warning. The warning names the mismatch; the measured effect is real."""
    import warnings

    from steadygrad.transfer.pretrain import StackedAutoencoder, encoder_mlp, pretrain_autoencoder

    torch.manual_seed(0)
    x = torch.randn(256, 8)  # standardized: half the entries are negative
    losses = {}
    for out in ("sigmoid", None):
        ae = StackedAutoencoder(encoder_mlp(8, (6,), seed=0), output_activation=out)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            (h,) = pretrain_autoencoder(ae, x, epochs=5, learning_rate=0.01,
                                        optimizer="adam", verbose=0, seed=0)
        messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        assert any("output_activation=None" in m for m in messages) == (out == "sigmoid")
        losses[out] = h["loss"][-1]
    assert losses["sigmoid"] > 1.5 * losses[None]  # it cannot reconstruct the negatives
    ae = StackedAutoencoder(encoder_mlp(8, (6,), seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # inputs in [0, 1]: no warning
        pretrain_autoencoder(ae, torch.rand(64, 8), epochs=1, verbose=0, seed=0)
