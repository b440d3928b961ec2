"""Tiny configs on the digits dataset for the CLI tests (few steps, small MLPs)."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = """
name = "tiny"
[data]
name = "digits"
n_train = 120
[model]
hidden = [8]
[train]
epochs = 2
batch_size = 32
[train.optimizer]
name = "sgd"
learning_rate = 0.05
[diagnostics]
every = 2
"""

# sgd at lr 1e6 overflows within the first few steps (the loss becomes inf/NaN)
DIVERGING = TINY.replace("learning_rate = 0.05", "learning_rate = 1e6").replace(
    'name = "tiny"', 'name = "boom"')

# 8 sigmoid layers with tiny weights and a learning rate that cannot move them: the gradient
# vanishes by ~8 orders of magnitude and the full-batch loss does not improve -> warnings
VANISHING = """
[data]
name = "digits"
n_train = 100
[model]
depth = 8
units = 16
activation = "sigmoid"
kernel_initializer = {name = "variance_scaling", scale = 0.1}
[train]
batch_size = 100
[train.optimizer]
name = "sgd"
learning_rate = 1e-6
[diagnostics]
every = 2
"""


def write(folder: Path, name: str, text: str) -> Path:
    """Write ``text`` to ``folder/name`` and return the path."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    """A valid 2-epoch run config (120 digits, one hidden layer of 8 units)."""
    return write(tmp_path, "tiny.toml", TINY)


@pytest.fixture
def diverging_config(tmp_path: Path) -> Path:
    """A config whose training overflows to NaN/Inf in its first steps."""
    return write(tmp_path, "boom.toml", DIVERGING)


@pytest.fixture
def vanishing_config(tmp_path: Path) -> Path:
    """A deep sigmoid config with vanishing gradients and no learning progress."""
    return write(tmp_path, "vanishing.toml", VANISHING)
