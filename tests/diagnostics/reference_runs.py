"""Healthy and deliberately broken reference runs used to calibrate and test the rules."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from sklearn.datasets import load_digits
from torch import nn

from steadygrad.diagnostics.monitor import GradientMonitor
from steadygrad.diagnostics.report import HealthReport

_DIGITS: tuple[torch.Tensor, torch.Tensor] | None = None


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn digits (1797 x 64), standardized per feature (constant pixels stay 0)."""
    global _DIGITS
    if _DIGITS is None:
        d = load_digits()
        x = torch.tensor(d.data, dtype=torch.float32)
        std = x.std(0)
        x = (x - x.mean(0)) / torch.where(std > 0, std, torch.ones_like(std))
        _DIGITS = (x, torch.tensor(d.target))
    return _DIGITS


def mlp(depth: int, width: int, act: Callable[[], nn.Module], *,
        init: Callable[[torch.Tensor], None] | None = None, bn: bool = False,
        dropout: Callable[[], nn.Module] | None = None, d_in: int = 64,
        d_out: int = 10) -> nn.Sequential:
    """depth x [Linear -> (BN) -> act -> (dropout)] -> Linear head."""
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(depth):
        lin = nn.Linear(d, width)
        if init is not None:
            init(lin.weight)
            nn.init.zeros_(lin.bias)
        layers.append(lin)
        if bn:
            layers.append(nn.BatchNorm1d(width))
        layers.append(act())
        if dropout is not None:
            layers.append(dropout())
        d = width
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


def normal(std: float) -> Callable[[torch.Tensor], None]:
    return lambda w: nn.init.normal_(w, 0.0, std)


def he(w: torch.Tensor) -> None:
    nn.init.kaiming_normal_(w, nonlinearity="relu")


def lecun(w: torch.Tensor) -> None:
    nn.init.normal_(w, 0.0, 1.0 / math.sqrt(w.shape[1]))


def glorot(w: torch.Tensor) -> None:
    nn.init.xavier_uniform_(w)


def train(model: nn.Module, *, steps: int = 40, lr: float = 0.01, optimizer: str = "sgd",
          batch: int = 64, every: int = 1, clip: float | None = None, seed: int = 0,
          x: torch.Tensor | None = None, y: torch.Tensor | None = None,
          monitor_kwargs: dict | None = None) -> HealthReport:
    """Train on digits mini-batches under a monitor and return its report."""
    gen = torch.Generator().manual_seed(seed)
    if x is None or y is None:
        x, y = digits()
    opt = (torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=lr))
    loss_fn = nn.CrossEntropyLoss()
    with GradientMonitor(model, every=every, **(monitor_kwargs or {})) as mon:
        for _ in range(steps):
            idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            mon.step(loss)
    return mon.report()
