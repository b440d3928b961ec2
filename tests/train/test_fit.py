"""fit / evaluate / predict: learning, loss inference, shape validation, history fields."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from steadygrad.data.dataset import Dataset
from steadygrad.errors import ConfigError, DataError
from steadygrad.train.evaluate import evaluate, predict, predict_proba
from steadygrad.train.loop import fit


def test_fit_learns_digits(digits, make_mlp):
    xt, yt, xv, yv = digits
    torch.manual_seed(0)
    model = make_mlp(64, 10, 64)
    history = fit(model, (xt, yt), validation_data=(xv, yv), epochs=4, optimizer="adam",
                  seed=0, verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    # evaluate agrees with the last epoch's validation numbers (same model, eval mode)
    ev = evaluate(model, (xv, yv))
    assert ev["accuracy"] == pytest.approx(history["val_accuracy"][-1])
    assert ev["loss"] == pytest.approx(history["val_loss"][-1], rel=1e-5)


def test_history_fields_and_dataset_val_split(digits, make_mlp):
    xt, yt, xv, yv = digits
    ds = Dataset(xt, yt, xv, yv, task="multiclass", num_classes=10, input_shape=(64,))
    history = fit(make_mlp(64, 10), ds, epochs=2, seed=0, verbose=0)
    assert list(history.keys()) == ["loss", "accuracy", "val_loss", "val_accuracy", "lr",
                                    "grad_norm", "seconds"]
    assert len(history) == 2 and history.epoch == [0, 1]
    assert history["lr"] == [0.01, 0.01]  # Keras SGD default
    assert all(s > 0 for s in history["seconds"])
    assert history.best("val_loss").value == min(history["val_loss"])
    assert history.params["steps_per_epoch"] == math.ceil(1500 / 32)
    assert history.stopped_reason is None


def test_history_to_csv_roundtrip(tmp_path, blobs, make_mlp):
    import csv

    x, y = blobs
    history = fit(make_mlp(), (x, y), epochs=3, verbose=0, seed=0)
    history.to_csv(tmp_path / "h.csv")
    with open(tmp_path / "h.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["loss"]) for r in rows] == history["loss"]  # repr floats: exact
    assert [float(r["accuracy"]) for r in rows] == history["accuracy"]


def test_train_accuracy_equals_per_batch_oracle(blobs, make_mlp):
    """The buffered train metric equals accuracy recomputed from the per-step outputs."""
    x, y = blobs
    # the SGD step changes the model, so check on a frozen model (lr tiny and no momentum):
    model = make_mlp()
    h = fit(model, (x, y), epochs=1, batch_size=96,
            optimizer={"name": "sgd", "learning_rate": 1e-12},
            seed=0, verbose=0)
    with torch.no_grad():
        expected = (model(x).argmax(1) == y).float().mean().item()
    assert h["accuracy"][0] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("task", "loss_type", "n_out", "target"),
    [
        ("multiclass", nn.CrossEntropyLoss, 3, lambda n: torch.arange(n) % 3),
        ("binary", nn.BCEWithLogitsLoss, 1, lambda n: (torch.arange(n) % 2).float().reshape(-1, 1)),
        ("regression", nn.MSELoss, 1, lambda n: torch.linspace(-1, 1, n).reshape(-1, 1)),
    ],
)
def test_loss_inferred_per_task(task, loss_type, n_out, target, make_mlp):
    n = 48
    x = torch.randn(n, 4)
    y = target(n)
    ds = Dataset(x, y, x[:8], y[:8], task=task, num_classes=None if task == "regression" else
                 (3 if task == "multiclass" else 2), input_shape=(4,))
    model = make_mlp(4, n_out)
    h = fit(model, ds, epochs=1, batch_size=n, optimizer={"name": "sgd", "learning_rate": 1e-12},
            seed=0, verbose=0)
    with torch.no_grad():  # one full batch at lr ~ 0: the logged loss is the task's loss
        expected = loss_type()(model(x), y).item()
    assert h["loss"][0] == pytest.approx(expected, rel=1e-5)
    metric = "mae" if task == "regression" else "accuracy"
    assert metric in h


def test_binary_accuracy_thresholds_logits_at_zero(make_mlp):
    x = torch.randn(40, 4)
    y = (x[:, 0] > 0).float().reshape(-1, 1)
    ds = Dataset(x, y, x, y, task="binary", num_classes=2, input_shape=(4,))
    model = make_mlp(4, 1)
    fit(model, ds, epochs=1, verbose=0, seed=0)
    ev = evaluate(model, ds, split="val")
    with torch.no_grad():
        expected = ((model(x) > 0).float() == y).float().mean().item()
    assert ev["accuracy"] == pytest.approx(expected)
    proba = predict_proba(model, x)
    assert torch.allclose(proba, torch.sigmoid(predict(model, x)))


@pytest.mark.parametrize("bad_y", [torch.zeros(20), torch.zeros(20, 2)])
def test_regression_shape_mismatch_is_an_error(bad_y, make_mlp):
    x = torch.randn(20, 4)
    with pytest.raises(DataError, match="targets: got shape"):
        fit(make_mlp(4, 1), (x, bad_y), epochs=1, verbose=0)


def test_binary_targets_must_be_n_by_1(make_mlp):
    x = torch.randn(20, 4)
    y = (torch.arange(20) % 2).float()
    with pytest.raises(DataError, match=r"reshape with y.reshape\(-1, 1\)"):
        fit(make_mlp(4, 1), (x, y), loss="bce", epochs=1, verbose=0)


def test_bad_labels_and_arguments_fail_before_training(blobs, make_mlp):
    x, y = blobs
    model = make_mlp()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(DataError, match="labels in"):
        fit(model, (x, y + 1), epochs=1, verbose=0)
    with pytest.raises(ConfigError, match="epochs"):
        fit(model, (x, y), epochs=0)
    with pytest.raises(ConfigError, match="on_non_finite"):
        fit(model, (x, y), on_non_finite="ignore")
    with pytest.raises(ConfigError, match="did you mean 'sgd'"):
        fit(model, (x, y), optimizer="sdg")
    with pytest.raises(DataError, match="same number of rows"):
        fit(model, (x, y[:-1]))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=False))


def test_predict_proba_softmax_and_eval_mode(blobs, make_mlp):
    x, _ = blobs
    model = make_mlp(dropout=0.5)
    model.train()
    p1, p2 = predict_proba(model, x, batch_size=7), predict_proba(model, x)
    assert torch.allclose(p1, p2, atol=1e-6)  # eval mode: dropout off
    assert model.training  # mode restored
    with torch.no_grad():
        model.eval()
        assert torch.allclose(p1, torch.softmax(model(x), 1))


def test_batch_norm_never_sees_a_batch_of_one(blobs):
    x, y = blobs  # 96 rows, batch 19 -> 5 batches of 19 and one of 1
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    h = fit(model, (x, y), epochs=2, batch_size=19, verbose=0)
    assert h.params["steps_per_epoch"] == 5 and len(h) == 2
    h = fit(nn.Linear(4, 3), (x, y), epochs=1, batch_size=19, verbose=0)  # no BN: kept
    assert h.params["steps_per_epoch"] == 6


def test_float_zero_one_labels_are_a_binary_task() -> None:
    """Regression (issue 18): float 0/1 labels were inferred as regression (MSE, mae)."""
    import torch

    from steadygrad.train.inputs import resolve_data
    from steadygrad.train.loop import fit

    torch.manual_seed(0)
    x = torch.randn(256, 4)
    y = (x[:, :1] > 0).float()
    assert resolve_data((x, y), None, None).task == "binary"
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    h = fit(model, (x, y), epochs=5, optimizer="adam", learning_rate=0.01, seed=0, verbose=0,
            monitor=None)
    assert "accuracy" in h.history and "mae" not in h.history
    with torch.no_grad():  # the loss fit reports is BCE-with-logits (oracle: torch)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
    assert h["accuracy"][-1] > 0.8 and 0 < float(bce) < 0.7
    assert resolve_data((x, y * 0.5), None, None).task == "regression"  # not 0/1: values
