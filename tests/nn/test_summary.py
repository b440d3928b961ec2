"""Keras-style summary: the book's batch-norm model numbers, any module, no side effects."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn.summary import summary


def book_bn_model() -> nn.Sequential:
    """Géron ch. 11: Flatten, BN, Dense(300, relu), BN, Dense(100, relu), BN, Dense(10)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.BatchNorm1d(784),
        nn.Linear(784, 300),
        nn.ReLU(),
        nn.BatchNorm1d(300),
        nn.Linear(300, 100),
        nn.ReLU(),
        nn.BatchNorm1d(100),
        nn.Linear(100, 10),
    )


def test_book_batch_norm_model_matches_keras_counts() -> None:
    s = summary(book_bn_model(), (28, 28))
    # keras model.summary() of the book's model
    assert (s.total_params, s.trainable_params, s.non_trainable_params) == (
        271_346,
        268_978,
        2_368,
    )
    assert [r.params for r in s.rows] == [0, 3136, 235_500, 0, 1200, 30_100, 0, 400, 1010]
    assert [r.output_shape for r in s.rows] == [
        (None, 784), (None, 784), (None, 300), (None, 300), (None, 300),
        (None, 100), (None, 100), (None, 100), (None, 10),
    ]
    text = str(s)
    for line in ("Total params: 271,346", "Trainable params: 268,978",
                 "Non-trainable params: 2,368", "2 (Linear)", "(None, 784)", "235,500"):
        assert line in text


def test_frozen_parameters_are_non_trainable_and_buffers_counted_once() -> None:
    model = book_bn_model()
    for p in model[2].parameters():
        p.requires_grad_(False)
    s = summary(model, (28, 28))
    assert s.total_params == 271_346
    assert s.non_trainable_params == 2_368 + 235_500
    assert s.rows[2].trainable_params == 0
    # oracle: torch's own count of parameters plus BN running stats
    n_params = sum(p.numel() for p in model.parameters())
    n_stats = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    assert s.total_params == n_params + n_stats


def test_cnn_shapes_match_torch_forward() -> None:
    cnn = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )
    s = summary(cnn, (1, 28, 28))
    x = torch.zeros(5, 1, 28, 28)
    shapes = []
    for m in cnn:
        x = m(x)
        shapes.append((None, *x.shape[1:]))
    assert [r.output_shape for r in s.rows] == shapes
    assert s.trainable_params == sum(p.numel() for p in cnn.parameters())
    assert s.non_trainable_params == 2 * 8


class Custom(nn.Module):
    """Custom forward, a parameter owned by a non-leaf module, a shared (tied) layer."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))
        self.body = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
        self.head = nn.Linear(4, 3)
        self.register_buffer("mask", torch.ones(4), persistent=False)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x * self.scale * self.mask)
        h = self.body(h)  # called twice
        return self.head(h), h


def test_custom_module_counts_each_tensor_once() -> None:
    model = Custom()
    s = summary(model, (4,))
    assert s.total_params == 4 + 20 + 15  # non-persistent/integer buffers not counted
    assert s.trainable_params == s.total_params
    assert sum(r.params for r in s.rows) == s.total_params  # second call shows 0
    names = [r.name for r in s.rows]
    assert names == [
        "body.0 (Linear)", "body.1 (Tanh)", "body.0 (Linear)", "body.1 (Tanh)",
        "head (Linear)", "(root) (Custom)",
    ]
    assert s.rows[-1].output_shape == [(None, 3), (None, 4)]
    assert s.rows[-1].params == 4  # the root's own parameter


def test_restores_training_flags_rng_and_grad_state() -> None:
    model = book_bn_model().train()
    model[4].eval()  # a deliberately frozen BN stays frozen
    stats = model[1].running_mean.clone()
    state = torch.get_rng_state()
    summary(model, (28, 28))
    assert [m.training for m in model] == [True] * 4 + [False] + [True] * 4
    assert torch.equal(model[1].running_mean, stats)  # eval mode: no update
    assert torch.equal(torch.get_rng_state(), state)
    assert all(p.grad is None for p in model.parameters())


def test_batch_size_is_shown_when_given_and_to_dict_is_jsonable() -> None:
    import json

    s = summary(nn.Sequential(nn.Linear(3, 2)), 3, batch_size=7)
    assert s.rows[0].output_shape == (7, 2)
    d = json.loads(json.dumps(s.to_dict()))
    assert d["total_params"] == 8 and d["rows"][0]["output_shape"] == [7, 2]
    assert summary(nn.Linear(3, 2), (3,)).to_dict()["rows"][0]["output_shape"] == [None, 2]


class WithUnused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.unused = nn.Linear(2, 2)  # registered but never called

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x).flatten(1)


def test_embedding_with_long_input_and_uncalled_module() -> None:
    s = summary(WithUnused(), (6,), dtype=torch.long)
    assert s.rows[0].output_shape == (None, 6, 4)
    assert s.rows[-1].name == "unused (Linear)" and s.rows[-1].output_shape is None
    assert s.total_params == 40 + 6
    assert "(not called)" in str(s)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"input_shape": (0, 3)}, "input_shape"),
        ({"input_shape": "784"}, "input_shape"),
        ({"input_shape": (3,), "batch_size": 0}, "batch_size"),
        ({"input_shape": (3,), "dtype": "float32"}, "dtype"),
    ],
)
def test_bad_arguments(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}: got"):
        summary(nn.Linear(3, 2), **kwargs)
