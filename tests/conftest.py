"""Shared test setup: deterministic, single-threaded torch and the local data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

if "STEADYGRAD_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["STEADYGRAD_DATA"] = str(SHARED_DATA)

torch.set_num_threads(1)


@pytest.fixture
def fashion_mnist_path() -> Path:
    """Path to the local Fashion-MNIST ``.npz``; the test is skipped when it is absent."""
    path = Path(os.environ.get("STEADYGRAD_DATA", SHARED_DATA)) / "fashion-mnist.npz"
    if not path.is_file():
        pytest.skip(f"Fashion-MNIST not found at {path}")
    return path


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
