"""One checker of the shared options: every builder fails with mlp's message for the same bad
value, and warns about a Keras-convention batch-norm momentum the way mlp does."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

import steadygrad as sg
from steadygrad.errors import ConfigError
from steadygrad.nn import _arch, _options

BUILDERS: dict[str, Callable[..., Any]] = {
    "mlp": lambda **kw: sg.mlp((1, 8, 8), (4,), **kw),
    "cnn": lambda **kw: sg.cnn((1, 8, 8), (4,), **kw),
    "resnet": lambda **kw: sg.resnet((1, 8, 8), (4,), 1, **kw),
    "rnn": lambda **kw: sg.rnn((5, 2), 4, **kw),
    "transformer": lambda **kw: sg.transformer((5, 2), d_model=4, heads=2, layers=1, ff=8,
                                               **kw),
}
BATCH_NORM_BUILDERS = ("mlp", "cnn", "resnet", "rnn")  # those with a bn_momentum argument

BAD: list[dict[str, Any]] = [
    {"dropout": 1.0}, {"dropout": -0.1}, {"dropout_kind": "dropuot"}, {"l1": -1.0},
    {"l2": float("nan")}, {"max_norm": 0}, {"output": "multi"}, {"num_outputs": 1},
    {"num_outputs": None}, {"bn_eps": 0.0}, {"seed": -1}, {"seed": 0, "generator": object()},
    {"generator": 3}, {"dropout": 2.0, "l1": -1.0},  # two bad: the first in order names it
]


def _message(build: Callable[..., Any], kwargs: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        build(**{"num_outputs": 3, **kwargs})
    return str(err.value)


def test_the_architectures_use_the_one_checker() -> None:
    assert _arch.check_options is _options.check_options
    assert sg.nn.build.DROPOUT_KINDS is _options.DROPOUT_KINDS


@pytest.mark.parametrize("kwargs", BAD, ids=lambda kw: ",".join(kw))
@pytest.mark.parametrize("arch", [a for a in BUILDERS if a != "mlp"])
def test_every_builder_fails_with_mlps_message(arch: str, kwargs: dict[str, Any]) -> None:
    expected = _message(BUILDERS["mlp"], kwargs)  # oracle: mlp's message for the same value
    field = next(iter(kwargs)) if "generator" not in kwargs or "seed" not in kwargs else "seed"
    assert expected.startswith(f"{field}: got ")
    assert _message(BUILDERS[arch], kwargs) == expected


@pytest.mark.parametrize("arch", BATCH_NORM_BUILDERS)
def test_keras_momentum_warns_at_the_callers_line(arch: str) -> None:
    with pytest.warns(UserWarning) as caught:
        BUILDERS[arch](bn_momentum=0.99, num_outputs=3)
    momentum = [w for w in caught if "Keras's momentum=0.99" in str(w.message)]
    assert len(momentum) == 1
    assert str(momentum[0].message).endswith("corresponds to bn_momentum=0.01")
    # stacklevel: the line that called the builder (here, the lambda in this file)
    assert momentum[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BUILDERS[arch](bn_momentum=0.01, num_outputs=3)  # PyTorch convention: no warning


def test_an_invalid_call_raises_without_the_momentum_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match=r"^seed: got -1"):
            sg.cnn((1, 8, 8), (4,), bn_momentum=0.99, num_outputs=3, seed=-1)


def test_the_checker_returns_the_validated_values() -> None:
    gen = torch.Generator().manual_seed(5)
    opts = _options.check_options(
        activation="elu", kernel_initializer="auto", bias_initializer="zeros", dropout=0,
        dropout_kind="mc", l1=0, l2=1, max_norm=2, output="regression", num_outputs=None,
        bn_momentum=0.5, bn_eps=1e-3, seed=None, generator=gen)  # 0.5: no warning yet
    assert (opts.dropout, opts.l1, opts.l2, opts.max_norm, opts.n_out) == (0.0, 0.0, 1.0, 2.0, 1)
    assert all(isinstance(v, float) for v in (opts.dropout, opts.l1, opts.l2, opts.bn_momentum))
    assert opts.generator is gen and type(opts.dropout_layer()).__name__ == "MCDropout"
