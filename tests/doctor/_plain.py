"""Plain-torch oracle shared by the doctor tests: train a model on digits without steadygrad."""

from __future__ import annotations

import torch
from torch import nn

from steadygrad.experiments.config import config_from_dict
from steadygrad.experiments.execute import load_data

DIGITS = load_data(config_from_dict({}))
"""The default config's data (sklearn digits, the doctor's default setup)."""


def plain_train(model: nn.Module, opt: torch.optim.Optimizer, epochs: int) -> nn.Module:
    """``epochs`` passes of batch-32 cross-entropy steps in plain torch, shuffled by torch's
    global generator (the caller seeds it)."""
    x, y = DIGITS.x_train, DIGITS.y_train
    for _ in range(epochs):
        for i in torch.randperm(len(x)).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[i]), y[i]).backward()
            opt.step()
    return model
