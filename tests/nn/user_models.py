"""Models written the way users write them (plain torch, no steadygrad), on 64-feature digits.

Each takes a batch of shape (N, 64) (digits) and returns (N, 10) logits; image models view it
as 1x8x8, sequence models as 8 steps of 8 features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ARCHITECTURES", "FunctionalNet", "ResNetLike", "SeqNet", "SharedNet", "SmallCNN",
           "TinyTransformer", "UserBlockTransformer", "mlp"]


def mlp(act: type[nn.Module] = nn.Sigmoid) -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), act(), nn.Dropout(0.1), nn.Linear(32, 32), act(),
                         nn.Linear(32, 10))


class SmallCNN(nn.Module):
    def __init__(self, act: type[nn.Module] = nn.Tanh) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), act(),
                                      nn.Conv2d(8, 8, 3, padding=1), act(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(8 * 4 * 4, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.view(-1, 1, 8, 8)))


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: one ReLU(inplace=True) module called twice."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNetLike(nn.Module):
    """torchvision's ``ResNet`` layout (stem, two stages of basic blocks, pool, fc), tiny."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        down = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2, down))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x.view(-1, 1, 8, 8))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SeqNet(nn.Module):
    """Many-to-one RNN/GRU/LSTM over the 8 rows of a digit, with a small sigmoid head."""

    def __init__(self, kind: str = "lstm", hidden: int = 16) -> None:
        super().__init__()
        cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind]
        self.rnn = cls(8, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid(), nn.Dropout(0.1),
                                  nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.view(-1, 8, 8))
        return self.head(out[:, -1])


class TinyTransformer(nn.Module):
    """A post-LN ``nn.TransformerEncoder`` over the 8 rows, learned positions, mean pooling."""

    def __init__(self, d_model: int = 16, norm_first: bool = False) -> None:
        super().__init__()
        self.embed = nn.Linear(8, d_model)
        self.pos = nn.Parameter(torch.zeros(1, 8, d_model))
        layer = nn.TransformerEncoderLayer(d_model, 2, 2 * d_model, dropout=0.1,
                                           batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x.view(-1, 8, 8)) + self.pos)
        return self.head(h.mean(dim=1))


class UserBlockTransformer(nn.Module):
    """A hand-written post-LN attention block (not ``nn.TransformerEncoderLayer``)."""

    def __init__(self, d_model: int = 16) -> None:
        super().__init__()
        self.embed = nn.Linear(8, d_model)
        self.attn = nn.MultiheadAttention(d_model, 2, batch_first=True)
        self.ln1 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, 32), nn.GELU(), nn.Linear(32, d_model))
        self.ln2 = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.view(-1, 8, 8))
        h = self.ln1(h + self.attn(h, h, h, need_weights=False)[0])
        h = self.ln2(h + self.ff(h))
        return self.head(h.mean(dim=1))


class SharedNet(nn.Module):
    """One ``ReLU(inplace=True)`` module after two layers, and one Linear applied twice."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.mid = nn.Linear(32, 32)
        self.act = nn.ReLU(inplace=True)
        self.out = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc1(x))
        h = self.act(self.mid(h))
        h = self.act(self.mid(h))
        return self.out(h)


class FunctionalNet(nn.Module):
    """Activations as function calls: nothing a module swap can reach."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc1(x))
        h = torch.sigmoid(self.fc2(h))
        return self.out(h)


ARCHITECTURES = {
    "mlp": mlp,
    "cnn": SmallCNN,
    "resnet": ResNetLike,
    "rnn": lambda: SeqNet("rnn"),
    "gru": lambda: SeqNet("gru"),
    "lstm": lambda: SeqNet("lstm"),
    "transformer": TinyTransformer,
    "user_block": UserBlockTransformer,
    "shared": SharedNet,
    "functional": FunctionalNet,
}
