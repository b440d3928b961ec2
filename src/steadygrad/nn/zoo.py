"""Named example models, used by ``steadygrad summary`` and the documentation.

Each entry builds a fresh model and says which input shape it expects.

Example:
    >>> model, shape = example_model("book_bn")
    >>> shape
    (28, 28)
    >>> sum(p.numel() for p in model.parameters())
    268978
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from steadygrad._registry import Registry
from steadygrad.nn.build import mlp

__all__ = ["EXAMPLE_MODELS", "example_model"]

ExampleFactory = Callable[[int], tuple[nn.Module, tuple[int, ...]]]

EXAMPLE_MODELS: Registry[ExampleFactory] = Registry("example model")


@EXAMPLE_MODELS.register("book_bn", "bn_mlp")
def _book_bn(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    """The batch-norm MLP of Hands-On ML ch. 11: 784 → BN → 300 relu → BN → 100 relu → BN → 10."""
    model = nn.Sequential(
        nn.Flatten(),
        nn.BatchNorm1d(784),
        nn.Linear(784, 300),
        nn.ReLU(),
        nn.BatchNorm1d(300),
        nn.Linear(300, 100),
        nn.ReLU(),
        nn.BatchNorm1d(100),
        nn.Linear(100, 10),
    )
    return model, (28, 28)


@EXAMPLE_MODELS.register("fashion_mlp")
def _fashion_mlp(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    """Flatten → Dense 300 relu → Dense 100 relu → Dense 10, He init (the classic baseline)."""
    return mlp((28, 28), (300, 100), num_outputs=10, seed=seed), (28, 28)


@EXAMPLE_MODELS.register("deep_sigmoid")
def _deep_sigmoid(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    """10 × Dense 64 sigmoid with N(0, 1) weights: the classic network whose gradients vanish."""
    model = mlp(
        (64,),
        (64,) * 10,
        activation="sigmoid",
        num_outputs=10,
        kernel_initializer={"name": "variance_scaling", "scale": 64.0, "mode": "fan_in",
                            "distribution": "untruncated_normal"},
        seed=seed,
    )
    return model, (64,)


@EXAMPLE_MODELS.register("deep_bn_elu")
def _deep_bn_elu(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    """20 × [Dense 100 (He, no bias) → BN → ELU] → Dense 10 on 28×28 images."""
    model = mlp(
        (28, 28), (100,) * 20, activation="elu", batch_norm="before", num_outputs=10, seed=seed
    )
    return model, (28, 28)


def example_model(name: str, seed: int = 0) -> tuple[nn.Module, tuple[int, ...]]:
    """Build the example model registered as ``name``; returns ``(model, input_shape)``.

    >>> sorted(EXAMPLE_MODELS.names())
    ['book_bn', 'deep_bn_elu', 'deep_sigmoid', 'fashion_mlp']
    """
    return EXAMPLE_MODELS.get(name)(seed)
