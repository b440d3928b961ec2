"""A user's own models, plain PyTorch: the factories the doctor docs run (docs/doctor-any-model.md).

Both read the 64 features of a digits image: the CNN as a 1x8x8 image, the transformer as
8 tokens (rows) of 8 features.
"""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, activation: str = "sigmoid", depth: int = 6) -> None:
        super().__init__()
        act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "elu": nn.ELU}[activation]
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Conv2d(1 if i == 0 else 16, 16, 3, padding=1), act()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x.view(-1, 1, 8, 8))
        return self.fc(h.mean(dim=(2, 3)))


class RowTransformer(nn.Module):
    def __init__(self, layers: int = 6, d_model: int = 16, norm_first: bool = False) -> None:
        super().__init__()
        self.embed = nn.Linear(8, d_model)
        self.pos = nn.Parameter(torch.zeros(1, 8, d_model))
        block = nn.TransformerEncoderLayer(d_model, 4, 2 * d_model, dropout=0.0,
                                           batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x.view(-1, 8, 8)) + self.pos)
        return self.head(h.mean(dim=1))


def make_cnn(activation: str = "sigmoid", depth: int = 6) -> nn.Module:
    """Six sigmoid conv layers: with plain SGD the gradient vanishes."""
    return SmallCNN(activation, depth)


def make_transformer(layers: int = 6, norm_first: bool = False) -> nn.Module:
    """A post-LN transformer encoder (torch's default norm_first=False)."""
    return RowTransformer(layers, norm_first=norm_first)
