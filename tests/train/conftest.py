"""Fixtures of the trainer tests: small in-memory problems."""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture(scope="session")
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """sklearn's 8x8 digits, standardized, split 1500 / 297 (train / val)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.data, dtype=torch.float32)
    y = torch.tensor(bunch.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    mean, std = x[:1500].mean(0), x[:1500].std(0) + 1e-6
    x = (x - mean) / std
    return x[:1500], y[:1500], x[1500:], y[1500:]


@pytest.fixture
def blobs() -> tuple[torch.Tensor, torch.Tensor]:
    """A small 3-class problem: 96 rows, 4 features."""
    g = torch.Generator().manual_seed(1)
    y = torch.arange(96) % 3
    x = torch.randn(96, 4, generator=g) + 2.0 * nn.functional.one_hot(y, 4).float()
    return x, y


def mlp(n_in: int = 4, n_out: int = 3, hidden: int = 16, dropout: float = 0.0) -> nn.Sequential:
    """A small MLP (built under the caller's RNG state)."""
    layers: list[nn.Module] = [nn.Linear(n_in, hidden), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, n_out))
    return nn.Sequential(*layers)


@pytest.fixture
def make_mlp():
    """Factory fixture for :func:`mlp`."""
    return mlp
