"""Image shapes for convolutional models and the synthetic long-range sequence tasks."""

from __future__ import annotations

import pytest
import torch

from steadygrad.data import adding, digits, fashion_mnist, first_token, load
from steadygrad.errors import ConfigError


@pytest.mark.parametrize("standardize", [True, "global", False])
def test_digits_as_images_are_the_flat_digits_reshaped(standardize) -> None:
    flat = digits(standardize=standardize)
    img = digits(standardize=standardize, shape="image")
    assert img.input_shape == (1, 8, 8) and flat.input_shape == (64,)
    for split in ("train", "val", "test"):
        a, b = getattr(flat, f"x_{split}"), getattr(img, f"x_{split}")
        assert torch.equal(b.reshape(len(b), -1), a)
        assert torch.equal(getattr(flat, f"y_{split}"), getattr(img, f"y_{split}"))
    if flat.mean is not None:
        assert torch.equal(img.mean.reshape(-1), flat.mean.reshape(-1))
        assert img.mean.shape in (torch.Size([]), torch.Size([1, 8, 8]))
    # row 0 of the first image is pixels 0..7 of the sklearn vector (row-major)
    assert torch.equal(img.x_train[0, 0, 0], flat.x_train[0, :8])


def test_fashion_mnist_shapes(fashion_mnist_path) -> None:
    default = fashion_mnist(root=fashion_mnist_path, n_train=100)
    img = fashion_mnist(root=fashion_mnist_path, n_train=100, shape="image")
    flat = fashion_mnist(root=fashion_mnist_path, n_train=100, shape="flat")
    assert (default.input_shape, img.input_shape, flat.input_shape) == (
        (28, 28), (1, 28, 28), (784,))
    assert torch.equal(img.x_train[:, 0], default.x_train)
    assert torch.equal(flat.x_val, default.x_val.reshape(-1, 784))


def test_bad_shape_names_the_option() -> None:
    with pytest.raises(ConfigError, match=r"^shape: got 'imag'; expected one of default, flat"):
        load("digits", shape="imag")


def test_first_token_label_is_the_first_token_and_nothing_else() -> None:
    ds = first_token(length=12, n=4000, vocab=5, seed=3)
    assert ds.input_shape == (12,) and ds.num_classes == 5 and ds.task == "multiclass"
    x = torch.cat([ds.x_train, ds.x_val, ds.x_test])
    y = torch.cat([ds.y_train, ds.y_val, ds.y_test])
    assert torch.equal(x[:, 0].long(), y)
    assert torch.equal(x, x.round()) and int(x.min()) == 0 and int(x.max()) == 4
    # later tokens carry no information: each matches the label at chance rate 1/vocab
    agree = (x[:, 1:].long() == y[:, None]).float().mean(0)
    assert float((agree - 0.2).abs().max()) < 0.04
    again = first_token(length=12, n=4000, vocab=5, seed=3)
    assert torch.equal(again.x_train, ds.x_train)
    assert not torch.equal(first_token(length=12, n=4000, vocab=5, seed=4).x_train, ds.x_train)


def test_first_token_one_hot_encodes_the_same_tokens() -> None:
    ids = first_token(length=6, n=200, vocab=4, seed=0)
    hot = first_token(length=6, n=200, vocab=4, encoding="one_hot", seed=0)
    assert hot.input_shape == (6, 4)
    assert torch.equal(hot.x_train.argmax(-1).float(), ids.x_train)
    assert torch.equal(hot.y_train, ids.y_train)


def test_adding_problem_semantics_and_its_constant_baseline() -> None:
    ds = adding(length=30, n=6000, seed=0)
    x, y = ds.x_train, ds.y_train
    assert ds.task == "regression" and ds.input_shape == (30, 2) and y.shape == (len(x), 1)
    markers = x[..., 1]
    assert torch.equal(markers.sum(1), torch.full((len(x),), 2.0))
    assert torch.equal(markers[:, :15].sum(1), torch.ones(len(x)))  # one in each half
    torch.testing.assert_close((x[..., 0] * markers).sum(1, keepdim=True), y)
    assert float(x[..., 0].min()) >= 0 and float(x[..., 0].max()) < 1
    # always predicting 1 scores the variance of a sum of two U(0, 1): 2/12 = 1/6
    assert abs(float(((y - 1) ** 2).mean()) - 1 / 6) < 0.01


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"length": 1}, "length: got 1; expected an int >= 2"),
    ({"vocab": 1}, "vocab: got 1; expected an int >= 2"),
    ({"encoding": "onehot"}, "encoding: got 'onehot'; expected one of tokens, one_hot"),
    ({"lenght": 5}, "first_token.lenght: got 5; expected one of the arguments length"),
])
def test_first_token_errors_name_the_option(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load("first_token", **kwargs)
    assert str(err.value).startswith(message)
