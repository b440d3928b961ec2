"""Random-number state: seeding and capture/restore of every RNG training consumes.

Training draws from three generators: torch's global CPU generator (initialization when the
model is built after seeding, dropout), the CUDA generators (dropout on GPU) and the trainer's
own shuffling :class:`torch.Generator`. :func:`rng_state` captures all of them as tensors (so a
checkpoint stores them in safetensors, never pickled) and :func:`set_rng_state` restores them,
which makes a resumed run draw exactly the numbers the uninterrupted run would have drawn.

Example:
    >>> g = torch.Generator().manual_seed(1)
    >>> state = rng_state(g)
    >>> a = torch.rand(2), torch.rand(2, generator=g)
    >>> set_rng_state(state, g)
    >>> b = torch.rand(2), torch.rand(2, generator=g)
    >>> all(torch.equal(u, v) for u, v in zip(a, b))
    True
"""

from __future__ import annotations

import random

import torch

__all__ = ["rng_state", "seed_everything", "set_rng_state", "shuffle_generator"]


def seed_everything(seed: int) -> None:
    """Seed torch's global CPU and CUDA generators and Python's ``random``.

    >>> seed_everything(3); a = torch.rand(1)
    >>> seed_everything(3); bool(torch.equal(a, torch.rand(1)))
    True
    """
    torch.manual_seed(seed)  # also seeds every CUDA device
    random.seed(seed)


def shuffle_generator(seed: int | None) -> torch.Generator:
    """The CPU generator that shuffles the training set.

    With a seed it is seeded from it (offset so that it is not the same stream as the global
    generator); without one it is seeded from torch's global generator, so that a user's
    ``torch.manual_seed`` still makes the run reproducible.

    >>> a = torch.randperm(5, generator=shuffle_generator(0))
    >>> bool(torch.equal(a, torch.randperm(5, generator=shuffle_generator(0))))
    True
    """
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    return torch.Generator().manual_seed(seed + 0x5EED)


def rng_state(generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Every RNG state as uint8 tensors: ``torch_cpu``, ``cuda_<i>``, ``shuffle``, ``python``.

    >>> sorted(rng_state(torch.Generator()))[-2:]
    ['shuffle', 'torch_cpu']
    """
    state = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            state[f"cuda_{i}"] = s
    if generator is not None:
        state["shuffle"] = generator.get_state()
    py = repr(random.getstate()).encode()
    state["python"] = torch.frombuffer(bytearray(py), dtype=torch.uint8).clone()
    return state


def set_rng_state(state: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> None:
    """Restore what :func:`rng_state` captured (entries that are absent are left alone).

    >>> s = rng_state(); a = torch.rand(1); set_rng_state(s); bool(torch.equal(a, torch.rand(1)))
    True
    """
    if "torch_cpu" in state:
        torch.set_rng_state(state["torch_cpu"].to(torch.uint8))
    cuda = [state[k] for k in sorted(state) if k.startswith("cuda_")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in cuda][: torch.cuda.device_count()])
    if generator is not None and "shuffle" in state:
        generator.set_state(state["shuffle"].to(torch.uint8))
    if "python" in state:
        random.setstate(_parse_python_state(bytes(state["python"].tolist()).decode()))


def _parse_python_state(text: str) -> tuple[object, ...]:
    """Parse ``repr(random.getstate())`` (ints and tuples only) without ``eval``."""
    import ast

    value = ast.literal_eval(text)
    if not isinstance(value, tuple):
        raise ValueError("not a Python random state")
    return value
