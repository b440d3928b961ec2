"""Options shared by the architecture builders (cnn, resnet, rnn, transformer), private.

The builders take :func:`steadygrad.nn.build.mlp`'s options where they apply, validated by
the one checker ``mlp`` uses too (:func:`steadygrad.nn._options.check_options`, re-exported
here); this module builds the small pieces they share: normalization layers, dropout,
activations, initialization, ℓ1/ℓ2 and max-norm.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn import constraints, init, regularizers
from steadygrad.nn._build_checks import Activation, InitSpec, check_int
from steadygrad.nn._options import Options, check_options
from steadygrad.nn.build import _initializer, _make_activation

__all__ = [
    "NORMS",
    "Options",
    "TokenEmbedding",
    "assemble",
    "check_options",
    "dense_head",
    "finish",
    "init_head",
    "init_layer",
    "keras_uniform_",
    "make_activation",
    "norm_layer",
    "sequence_input",
]

NORMS: tuple[str, ...] = ("batch", "layer")
"""Kinds of normalization layer: batch norm, or layer norm (``GroupNorm(1, C)`` on images)."""

_HEAD_INITIALIZER = "glorot_uniform"  # Keras Dense default, as mlp's head


def make_activation(spec: Activation, units: int) -> nn.Module | None:
    """A fresh activation module (None for a linear block), as ``mlp`` builds them.

    >>> make_activation("elu", 8), make_activation(None, 8)
    (ELU(alpha=1.0), None)
    """
    if spec is None:
        return None
    return _make_activation(spec, units, "activation")


def norm_layer(kind: str, dims: int, features: int, opts: Options) -> nn.Module:
    """A normalization layer over ``features`` channels for 1-D (``dims=1``) or image inputs.

    ``"batch"`` is ``BatchNorm1d``/``BatchNorm2d`` (PyTorch momentum convention); ``"layer"``
    is ``LayerNorm(features)`` on vectors and ``GroupNorm(1, C)`` on images (normalizes each
    example over channels, height and width, with a per-channel scale and shift).

    >>> o = check_options(activation="relu", kernel_initializer="auto",
    ...     bias_initializer="zeros", dropout=0.0, dropout_kind="dropout", l1=0.0, l2=0.0,
    ...     max_norm=None, output="binary", num_outputs=None, seed=None, generator=None)
    >>> [type(norm_layer(kind, 2, 8, o)).__name__ for kind in NORMS]
    ['BatchNorm2d', 'GroupNorm']
    >>> norm_layer("layer", 2, 8, o).num_groups, norm_layer("layer", 1, 8, o)
    (1, LayerNorm((8,), eps=1e-05, elementwise_affine=True, bias=True))
    """
    if kind == "batch":
        cls = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        return cls(features, eps=opts.bn_eps, momentum=opts.bn_momentum)
    if dims == 1:
        return nn.LayerNorm(features, eps=opts.bn_eps)
    return nn.GroupNorm(1, features, eps=opts.bn_eps)


def _kernel_init(spec: InitSpec, activation: nn.Module | None) -> Callable[..., torch.Tensor]:
    return _initializer(spec, activation)


def init_layer(
    layer: nn.Module,
    activation: nn.Module | None,
    opts: Options,
    *,
    kernel_initializer: InitSpec | None = None,
) -> None:
    """Initialize ``layer.weight`` (``"auto"`` resolved by ``activation``) and its bias.

    >>> o = check_options(activation="relu", kernel_initializer="auto",
    ...     bias_initializer="zeros", dropout=0.0, dropout_kind="dropout", l1=0.0, l2=0.0,
    ...     max_norm=None, output="binary", num_outputs=None, seed=0, generator=None)
    >>> conv = nn.Conv2d(3, 64, 3)
    >>> init_layer(conv, nn.ReLU(), o)
    >>> w, b = conv.weight.detach(), conv.bias.detach()
    >>> round(float(w.std()), 2), float(b.abs().sum())  # He: sqrt(2/27) = 0.27
    (0.27, 0.0)
    """
    spec = opts.kernel_initializer if kernel_initializer is None else kernel_initializer
    with torch.no_grad():
        _kernel_init(spec, activation)(layer.weight, generator=opts.generator)
        bias = getattr(layer, "bias", None)
        if bias is not None:
            init.get(opts.bias_initializer)(bias, generator=opts.generator)


def keras_uniform_(weight: torch.Tensor, opts: Options) -> None:
    """Keras's ``Embedding`` initializer, in place: uniform(-0.05, 0.05) drawn from the
    builder's generator (token embeddings and learned positions).

    >>> o = check_options(activation="relu", kernel_initializer="auto",
    ...     bias_initializer="zeros", dropout=0.0, dropout_kind="dropout", l1=0.0, l2=0.0,
    ...     max_norm=None, output="binary", num_outputs=None, seed=0, generator=None)
    >>> w = torch.empty(100, 4)
    >>> keras_uniform_(w, o)
    >>> bool(w.abs().max() <= 0.05), w.requires_grad
    (True, False)
    """
    with torch.no_grad():
        weight.uniform_(-0.05, 0.05, generator=opts.generator)


def init_head(layer: nn.Linear, opts: Options) -> None:
    """The output layer: Glorot uniform (Keras ``Dense`` default) and ``bias_initializer``."""
    init_layer(layer, None, opts, kernel_initializer=_HEAD_INITIALIZER)


def finish(model: nn.Module, opts: Options) -> None:
    """Attach ℓ1/ℓ2 and max-norm to every ``Linear``/``Conv`` of ``model`` (when set)."""
    targets = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    for m in targets:
        if opts.l1 or opts.l2:
            regularizers.attach(m, l1=opts.l1, l2=opts.l2)
        if opts.max_norm is not None:
            constraints.attach(m, max_norm=opts.max_norm)


def assemble(mods: OrderedDict[str, nn.Module],
             weighted: list[tuple[nn.Module, nn.Module | None]], out: nn.Linear,
             opts: Options) -> nn.Sequential:
    """The last steps every builder shares: initialize each weighted layer for the activation
    that follows it and the output layer as Keras's ``Dense``, wrap ``mods`` in a
    ``Sequential`` and attach ℓ1/ℓ2 and max-norm (:func:`finish`)."""
    for layer, act in weighted:
        init_layer(layer, act, opts)
    init_head(out, opts)
    model = nn.Sequential(mods)
    finish(model, opts)
    return model


def dense_head(
    mods: OrderedDict[str, nn.Module],
    weighted: list[tuple[nn.Module, nn.Module | None]],
    fan: int,
    units: Sequence[int],
    activation: Activation,
    opts: Options,
) -> nn.Sequential:
    """Append ``(dense{j} [dense_act{j}] [dense_dropout{j}])* output`` to ``mods`` (``fan``
    inputs), initialize every layer of ``weighted`` and the new ones matched to the activation
    that follows, the output as Keras' ``Dense``, attach ℓ1/ℓ2/max-norm: the finished model.
    The head shared by :func:`~steadygrad.nn.cnn.cnn` and :func:`~steadygrad.nn.rnn.rnn`.
    """
    for j, u in enumerate(units, start=1):
        lin = torch.nn.utils.skip_init(nn.Linear, fan, u)
        act = make_activation(activation, u)
        mods[f"dense{j}"] = lin
        if act is not None:
            mods[f"dense_act{j}"] = act
        if opts.dropout > 0:
            mods[f"dense_dropout{j}"] = opts.dropout_layer()
        weighted.append((lin, act))
        fan = u
    out = torch.nn.utils.skip_init(nn.Linear, fan, opts.n_out)
    mods["output"] = out
    return assemble(mods, weighted, out, opts)


class TokenEmbedding(nn.Embedding):
    """``nn.Embedding`` that accepts token ids stored as floats (a ``Dataset`` holds floats).

    The ids are rounded to ``long`` before the lookup; float32 holds integers exactly up to
    2**24, far above any vocabulary used here.

    >>> emb = TokenEmbedding(5, 2)
    >>> emb(torch.tensor([[0.0, 4.0]])).shape
    torch.Size([1, 2, 2])
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return super().forward(input.round().long())


def sequence_input(input_shape: Any, vocab: int | None) -> tuple[int, int | None]:
    """``(T, F)`` for feature sequences or ``(T,)`` with ``vocab`` for tokens -> (T, F|None).

    >>> sequence_input((20, 2), None), sequence_input((20,), 10)
    ((20, 2), (20, None))
    >>> sequence_input((20,), None)
    Traceback (most recent call last):
    ...
    steadygrad.errors.ConfigError: input_shape: got (20,); expected (T, F) for feature ...
    """
    shape: Any = (input_shape,) if isinstance(input_shape, int) else input_shape
    ok = isinstance(shape, (tuple, list, torch.Size)) and all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
    )
    if vocab is not None:
        check_int("vocab", vocab, 2)
        if not ok or len(shape) != 1:
            raise ConfigError(
                "input_shape", input_shape, "(T,) token ids when vocab is given",
                hint="pass vocab=None for (T, F) feature sequences",
            )
        return int(shape[0]), None
    if not ok or len(shape) != 2:
        raise ConfigError(
            "input_shape", input_shape,
            "(T, F) for feature sequences, or (T,) token ids together with vocab=<size>",
        )
    return int(shape[0]), int(shape[1])
