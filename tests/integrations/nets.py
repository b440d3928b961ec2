"""Small nets and data shared by the host-integration tests (not a test module)."""

from __future__ import annotations

import torch
from torch import nn


def saturating_net(seed: int = 0) -> nn.Sequential:
    """8 x [Linear 16 -> Sigmoid] with N(0, 3^2) weights: saturated sigmoids from step 0, so the
    monitor's rules report findings (saturation, learning rate) within a few dozen steps."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for _ in range(8):
        lin = nn.Linear(16, 16)
        nn.init.normal_(lin.weight, std=3.0)
        layers += [lin, nn.Sigmoid()]
    return nn.Sequential(*layers, nn.Linear(16, 3))


def diverging_net(seed: int = 0) -> nn.Sequential:
    """A ReLU MLP that SGD with ``DIVERGING_LR`` drives to inf/NaN within a few steps."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 3))


DIVERGING_LR = 50.0


def data(n: int = 512, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian inputs with 3 classes from a fixed rule."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()


def key(findings: list) -> list[tuple]:
    """What must agree between a host callback and the plain-loop oracle."""
    return [(f.kind, f.severity, tuple(f.layers), f.first_step) for f in findings]
