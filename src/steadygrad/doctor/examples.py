"""Built-in failing examples per architecture family, as plain-PyTorch model factories.

Each example is a model factory written the way a user writes one (``nn.Module`` classes, no
steadygrad layers), a training setup that fails on it, and a healthy reference; all train on
the embedded digits data (offline): images view the 64 features as 1x8x8, sequence models
read the 8 rows as 8 time steps of 8 features. ``steadygrad doctor --example NAME`` runs one.

Example:
    >>> sorted(EXAMPLES)
    ['cnn', 'mlp', 'resnet', 'rnn', 'transformer']
    >>> net = cnn_net()
    >>> net(torch.zeros(2, 64)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from steadygrad.errors import ConfigError

__all__ = ["EXAMPLES", "Example", "cnn_net", "example", "mlp_net", "resnet_net", "rnn_net",
           "transformer_net"]

_ACTS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "selu": nn.SELU}


def _act(name: str) -> nn.Module:
    if name not in _ACTS:
        raise ConfigError("activation", name, f"one of {', '.join(_ACTS)}")
    return _ACTS[name]()


def _normal_(model: nn.Module, std: float) -> nn.Module:
    """Draw every Linear/Conv weight from N(0, std^2) and zero the biases (0: torch's init)."""
    if std > 0:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.Linear, nn.Conv2d)):
                    m.weight.normal_(0.0, std)
                    if m.bias is not None:
                        m.bias.zero_()
    return model


def mlp_net(depth: int = 10, width: int = 64, activation: str = "sigmoid",
            init_std: float = 1.0) -> nn.Module:
    """A plain deep MLP, 64 inputs -> 10 logits (default: Glorot & Bengio's failing setup)."""
    layers: list[nn.Module] = []
    fan = 64
    for _ in range(depth):
        layers += [nn.Linear(fan, width), _act(activation)]
        fan = width
    return _normal_(nn.Sequential(*layers, nn.Linear(fan, 10)), init_std)


class _CNN(nn.Module):
    def __init__(self, channels: int, depth: int, activation: str) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = 1
        for i in range(depth):
            blocks += [nn.Conv2d(c_in, channels, 3, padding=1), _act(activation)]
            if i == depth // 2 - 1:
                blocks.append(nn.MaxPool2d(2))
            c_in = channels
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x.view(-1, 1, 8, 8))
        return self.fc(torch.flatten(self.pool(h), 1))


def cnn_net(channels: int = 16, depth: int = 6, activation: str = "sigmoid",
            init_std: float = 0.0) -> nn.Module:
    """A plain deep CNN on 1x8x8 digits: ``depth`` 3x3 conv layers, one max-pool, global pool."""
    return _normal_(_CNN(channels, depth, activation), init_std)


class _Block(nn.Module):
    """A ResNet basic block (torchvision layout), batch norm optional, one shared ReLU."""

    def __init__(self, channels: int, norm: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=not norm)
        self.bn1 = nn.BatchNorm2d(channels) if norm else nn.Identity()
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=not norm)
        self.bn2 = nn.BatchNorm2d(channels) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class _ResNet(nn.Module):
    def __init__(self, channels: int, blocks: int, norm: bool) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.layers = nn.Sequential(*[_Block(channels, norm) for _ in range(blocks)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layers(self.relu(self.stem(x.view(-1, 1, 8, 8))))
        return self.fc(torch.flatten(self.pool(h), 1))


def resnet_net(channels: int = 16, blocks: int = 4, norm: bool = False,
               init_std: float = 0.3) -> nn.Module:
    """A small ResNet (basic blocks) on 1x8x8 digits; by default without batch norm and with
    weights too large for a residual stack (N(0, 0.3^2)), so its activations grow per block.
    ``init_std = 0`` keeps torch's default init."""
    return _normal_(_ResNet(channels, blocks, norm), init_std)


class _Seq(nn.Module):
    def __init__(self, kind: str, hidden: int, head_activation: str) -> None:
        super().__init__()
        cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
        if kind not in cls:
            raise ConfigError("kind", kind, "one of rnn, gru, lstm")
        self.rnn = cls[kind](8, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), _act(head_activation),
                                  nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.view(-1, 8, 8))
        return self.head(out[:, -1])


def rnn_net(kind: str = "rnn", hidden: int = 32, head_activation: str = "tanh",
            recurrent_scale: float = 3.0) -> nn.Module:
    """A many-to-one recurrent net over the 8 rows of a digit; ``recurrent_scale`` multiplies
    the recurrent weights (3.0: an exploding recurrence)."""
    net = _Seq(kind, hidden, head_activation)
    if recurrent_scale != 1.0:
        with torch.no_grad():
            for name, p in net.rnn.named_parameters():
                if name.startswith("weight_hh"):
                    p.mul_(recurrent_scale)
    return net


class _Transformer(nn.Module):
    def __init__(self, d_model: int, layers: int, norm_first: bool) -> None:
        super().__init__()
        self.embed = nn.Linear(8, d_model)
        self.pos = nn.Parameter(torch.randn(1, 8, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, 4, 2 * d_model, dropout=0.0,
                                           batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x.view(-1, 8, 8)) + self.pos)
        return self.head(h.mean(dim=1))


def transformer_net(d_model: int = 32, layers: int = 4, norm_first: bool = False) -> nn.Module:
    """A small transformer encoder over the 8 rows (post-LN by default), mean pooled."""
    return _Transformer(d_model, layers, norm_first)


@dataclass(frozen=True)
class Example:
    """A failing setup and its healthy reference: factory + kwargs + ``[train]`` each."""

    name: str
    factory: str
    kwargs: dict[str, Any] = field(hash=False)
    train: dict[str, Any] = field(hash=False)
    reference_kwargs: dict[str, Any] = field(hash=False)
    reference_train: dict[str, Any] = field(hash=False)
    why: str = ""

    def config(self, reference: bool = False) -> Any:
        """The run config (``[data]`` digits) of the failing setup or of its reference."""
        from steadygrad.experiments.config import config_from_dict

        return config_from_dict({
            "name": f"{self.name}-reference" if reference else f"{self.name}-example",
            "data": {"name": "digits"},
            "model": {"factory": self.factory,
                      "factory_kwargs": self.reference_kwargs if reference else self.kwargs},
            "train": self.reference_train if reference else self.train,
            "diagnostics": {"every": 5}})


_SGD = {"name": "sgd", "learning_rate": 0.01}
_SGD_CNN = {"name": "sgd", "learning_rate": 0.1}  # at 0.01 a healthy ELU CNN learns too slowly
_M = "steadygrad.doctor.examples"
EXAMPLES: dict[str, Example] = {
    "mlp": Example("mlp", f"{_M}:mlp_net", {}, {"epochs": 5, "optimizer": _SGD},
                   {"activation": "elu", "init_std": 0.177}, {"epochs": 5, "optimizer": _SGD},
                   "10 sigmoid layers with N(0, 1) weights (Glorot & Bengio 2010); reference: "
                   "ELU with He-scaled N(0, 2/64) weights"),
    "cnn": Example("cnn", f"{_M}:cnn_net", {}, {"epochs": 5, "optimizer": _SGD_CNN},
                   {"activation": "elu", "init_std": 0.118}, {"epochs": 5, "optimizer": _SGD_CNN},
                   "6 sigmoid conv layers trained by plain SGD: the gradient vanishes; "
                   "reference: ELU with He-scaled N(0, 2/144) weights, the same SGD"),
    "resnet": Example("resnet", f"{_M}:resnet_net", {},
                      {"epochs": 3, "optimizer": {"name": "sgd", "learning_rate": 0.05}},
                      {"norm": True, "init_std": 0.0},
                      {"epochs": 3, "optimizer": {"name": "sgd", "learning_rate": 0.05}},
                      "a residual stack without batch norm and with N(0, 0.3^2) weights: its "
                      "activations grow per block and the loss overflows"),
    "rnn": Example("rnn", f"{_M}:rnn_net", {},
                   {"epochs": 5, "optimizer": {"name": "sgd", "learning_rate": 2.0}},
                   {"kind": "lstm", "recurrent_scale": 1.0},
                   {"epochs": 5, "optimizer": {"name": "adam", "learning_rate": 0.003}},
                   "a tanh RNN with 3x recurrent weights trained by SGD at rate 2"),
    "transformer": Example("transformer", f"{_M}:transformer_net",
                           {"layers": 6, "d_model": 16},
                           {"epochs": 4, "optimizer": {"name": "adam", "learning_rate": 0.03}},
                           {"layers": 6, "d_model": 16, "norm_first": True},
                           {"epochs": 4, "optimizer": {"name": "adam", "learning_rate": 0.003}},
                           "a 6-layer post-LN transformer trained by Adam at rate 0.03"),
}
"""The built-in failing examples, one per architecture family."""


def example(name: str) -> Example:
    """The built-in example ``name`` (error lists the choices).

    >>> example("cnn").factory
    'steadygrad.doctor.examples:cnn_net'
    >>> example("lstm")
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: --example: got 'lstm'; expected one of mlp, cnn, resnet, rnn,
    transformer
    """
    if name not in EXAMPLES:
        raise ConfigError("--example", name, "one of " + ", ".join(EXAMPLES))
    return EXAMPLES[name]
