"""A small transformer encoder classifier, pre-LN or post-LN, learned or sinusoidal positions.

:class:`EncoderBlock` computes what torch's ``nn.TransformerEncoderLayer`` computes
(``norm_first`` selects pre-LN, Xiong et al. 2020, or post-LN, Vaswani et al. 2017) and keeps
its attribute names (``self_attn, linear1, activation, dropout, linear2, norm1, norm2,
dropout1, dropout2, norm_first``), but is written out so that every piece is a module the
monitor can hook (torch's layer calls its activation as a function, bypasses
``self_attn.out_proj.forward`` and has a fused inference path) and so that flipping
``block.norm_first`` switches the block between post-LN and pre-LN.

Module names of :func:`transformer` (stable): ``embedding`` (tokens, a
:class:`~steadygrad.nn._arch.TokenEmbedding`) or ``input_proj`` (features, ``Linear``),
``positions`` (:class:`LearnedPositions` or :class:`SinusoidalPositions`), ``input_dropout``
(``dropout > 0``), ``block{i}`` (from 1), ``norm`` (final ``LayerNorm``, pre-LN only, as in
GPT-2), ``pool`` (:class:`MeanPool` over time) and ``output``; inside a block,
``self_attn.in_proj`` and ``self_attn.out_proj`` are ``Linear`` layers.

Example:
    >>> net = transformer((12,), vocab=10, d_model=16, heads=2, layers=2, ff=32,
    ...                   num_outputs=10, seed=0)
    >>> [name for name, _ in net.named_children()]
    ['embedding', 'positions', 'block1', 'block2', 'norm', 'pool', 'output']
    >>> net.block1.norm_first
    True
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn._arch import (
    TokenEmbedding,
    assemble,
    check_options,
    keras_uniform_,
    make_activation,
    sequence_input,
)
from steadygrad.nn._build_checks import Activation, InitSpec, check_choice, check_int
from steadygrad.nn.build import DROPOUT_KINDS

__all__ = [
    "POSITIONS",
    "EncoderBlock",
    "LearnedPositions",
    "MeanPool",
    "SelfAttention",
    "SinusoidalPositions",
    "transformer",
]

POSITIONS: tuple[str, ...] = ("learned", "sinusoidal")
"""Kinds of position encoding added to the inputs."""


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``in_proj`` (Q, K, V stacked) and ``out_proj`` Linears.

    Same math and parameter layout as ``nn.MultiheadAttention`` (``in_proj_weight`` is
    ``in_proj.weight``), computed with ``F.scaled_dot_product_attention``.

    >>> attn = SelfAttention(8, 2)
    >>> attn(torch.zeros(3, 5, 8)).shape
    torch.Size([3, 5, 8])
    """

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.in_proj(x).split(d, dim=-1)
        q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class EncoderBlock(nn.Module):
    """One encoder layer, ``nn.TransformerEncoderLayer`` semantics, explicit modules.

    Post-LN (``norm_first=False``): ``x = norm1(x + dropout1(attn(x)))``, then
    ``x = norm2(x + dropout2(ff(x)))``. Pre-LN: ``x = x + dropout1(attn(norm1(x)))``, then
    ``x = x + dropout2(ff(norm2(x)))``; ``ff(x) = linear2(dropout(activation(linear1(x))))``.

    >>> block = EncoderBlock(8, 2, 16, nn.ReLU(), norm_first=False)
    >>> block(torch.zeros(2, 3, 8)).shape
    torch.Size([2, 3, 8])
    """

    def __init__(
        self, d_model: int, heads: int, ff: int, activation: nn.Module | None, *,
        dropout: float = 0.0, dropout_layer: type[nn.Module] = nn.Dropout,
        norm_first: bool = True, eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = SelfAttention(d_model, heads, dropout)
        self.dropout1 = dropout_layer(dropout)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.linear1 = nn.Linear(d_model, ff)
        self.activation = activation
        self.dropout = dropout_layer(dropout)
        self.linear2 = nn.Linear(ff, d_model)
        self.dropout2 = dropout_layer(dropout)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear1(x)
        if self.activation is not None:
            h = self.activation(h)
        return self.linear2(self.dropout(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = x + self.dropout1(self.self_attn(self.norm1(x)))
            return x + self.dropout2(self._ff(self.norm2(x)))
        x = self.norm1(x + self.dropout1(self.self_attn(x)))
        return self.norm2(x + self.dropout2(self._ff(x)))


class LearnedPositions(nn.Module):
    """Adds a learned ``(T, d)`` position table (``weight``), BERT/GPT style.

    >>> p = LearnedPositions(4, 2)
    >>> p(torch.zeros(1, 3, 2)).shape, tuple(p.weight.shape)
    (torch.Size([1, 3, 2]), (4, 2))
    """

    def __init__(self, length: int, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(length, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight[: x.shape[1]]


def sinusoid_table(length: int, d_model: int) -> torch.Tensor:
    """Vaswani et al. (2017): ``PE[t, 2i] = sin(t / 10000^(2i/d))``, ``PE[t, 2i+1] = cos(...)``.

    >>> table = sinusoid_table(3, 4)
    >>> table[0].tolist(), round(float(table[1, 0]), 4), round(float(table[1, 3]), 4)
    ([0.0, 1.0, 0.0, 1.0], 0.8415, 0.9999)
    """
    t = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(1e4) / d_model))
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(t * freq)
    table[:, 1::2] = torch.cos(t * freq[: d_model // 2])
    return table


class SinusoidalPositions(nn.Module):
    """Adds the fixed sinusoid table (a non-persistent buffer: no parameters, not saved).

    >>> row = SinusoidalPositions(4, 2)(torch.zeros(1, 2, 2))[0, 1]
    >>> torch.allclose(row, torch.tensor([math.sin(1.0), math.cos(1.0)]))
    True
    """

    def __init__(self, length: int, d_model: int) -> None:
        super().__init__()
        self.register_buffer("table", sinusoid_table(length, d_model), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        table = self.table
        assert isinstance(table, torch.Tensor)
        return x + table[: x.shape[1]]


class MeanPool(nn.Module):
    """The mean over the time dimension: ``(B, T, d) -> (B, d)``.

    >>> MeanPool()(torch.tensor([[[1.0], [3.0]]]))
    tensor([[2.]])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


def transformer(
    input_shape: Sequence[int] | int,
    *,
    vocab: int | None = None,
    d_model: int = 32,
    heads: int = 4,
    layers: int = 2,
    ff: int = 64,
    norm_first: bool = True,
    positions: str = "learned",
    activation: Activation = "relu",
    kernel_initializer: InitSpec = "auto",
    bias_initializer: InitSpec = "zeros",
    dropout: float = 0.0,
    dropout_kind: str = "dropout",
    l1: float = 0.0,
    l2: float = 0.0,
    max_norm: float | None = None,
    output: str = "multiclass",
    num_outputs: int | None = None,
    bn_eps: float = 1e-5,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """An encoder classifier: input → positions → :class:`EncoderBlock` × layers → mean → Linear.

    Args:
        input_shape: ``(T, F)`` feature sequences, or ``(T,)`` token ids with ``vocab``.
        vocab: vocabulary size of token inputs, or None.
        d_model: width of the residual stream (a multiple of ``heads``).
        heads: attention heads.
        layers: encoder blocks.
        ff: hidden units of each block's feed-forward part.
        norm_first: pre-LN (True) or post-LN (False, the original transformer).
        positions: ``"learned"`` (a trained table, initialized like the embedding) or
            ``"sinusoidal"`` (fixed).
        activation: the feed-forward activation (``"relu"`` as torch's default, ``"gelu"``,
            ... or None).
        kernel_initializer: every ``Linear`` but the output; ``"auto"`` resolves by the
            activation that follows (``linear1``), Glorot uniform for the others (torch's
            ``MultiheadAttention`` uses Xavier uniform too).
        bias_initializer: every bias.
        dropout: rate of attention, feed-forward, residual and input dropout.
        dropout_kind: kind of the dropout modules (``"dropout"``, ``"alpha"``, ``"mc"``,
            ``"mc_alpha"``).
        l1, l2, max_norm: Keras-style kernel regularizer/constraint on every ``Linear``.
        output, num_outputs: the head, as in ``mlp``.
        bn_eps: the layer norms' epsilon.
        seed, generator: the source of the initial weights.

    Returns:
        An ``nn.Sequential`` with the named children listed in the module docstring.

    Raises:
        ConfigError: an argument is invalid (named, with what is allowed).

    Example:
        >>> import torch
        >>> net = transformer((6, 3), d_model=8, heads=2, layers=1, ff=16,
        ...                   norm_first=False, positions="sinusoidal", output="binary", seed=0)
        >>> net(torch.zeros(2, 6, 3)).shape
        torch.Size([2, 1])
    """
    length, features = sequence_input(input_shape, vocab)
    d = check_int("d_model", d_model)
    n_heads = check_int("heads", heads)
    if d % n_heads:
        raise ConfigError("d_model", d_model, f"a multiple of heads={heads}",
                          hint=f"e.g. d_model={n_heads * max(1, round(d / n_heads))}")
    n_layers = check_int("layers", layers)
    n_ff = check_int("ff", ff)
    if not isinstance(norm_first, bool):
        raise ConfigError("norm_first", norm_first, "True (pre-LN) or False (post-LN)")
    check_choice("positions", positions, POSITIONS)
    opts = check_options(
        activation=activation, kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer, dropout=dropout, dropout_kind=dropout_kind,
        l1=l1, l2=l2, max_norm=max_norm, output=output, num_outputs=num_outputs,
        bn_eps=bn_eps, seed=seed, generator=generator,
    )
    with torch.random.fork_rng(devices=[]):  # torch layers draw their default init
        mods: OrderedDict[str, nn.Module] = OrderedDict()
        weighted: list[tuple[nn.Module, nn.Module | None]] = []
        if vocab is not None:
            embedding = TokenEmbedding(vocab, d)
            keras_uniform_(embedding.weight, opts)
            mods["embedding"] = embedding
        else:
            assert features is not None
            proj = nn.Linear(features, d)
            mods["input_proj"] = proj
            weighted.append((proj, None))
        if positions == "learned":
            learned = LearnedPositions(length, d)
            keras_uniform_(learned.weight, opts)
            pos: nn.Module = learned
        else:
            pos = SinusoidalPositions(length, d)
        mods["positions"] = pos
        if opts.dropout > 0:
            mods["input_dropout"] = opts.dropout_layer()
        for i in range(1, n_layers + 1):
            block = EncoderBlock(
                d, n_heads, n_ff, make_activation(activation, n_ff), dropout=opts.dropout,
                dropout_layer=DROPOUT_KINDS[opts.dropout_kind], norm_first=norm_first,
                eps=opts.bn_eps,
            )
            weighted += [
                (block.self_attn.in_proj, None), (block.self_attn.out_proj, None),
                (block.linear1, block.activation), (block.linear2, None),
            ]
            mods[f"block{i}"] = block
        if norm_first:
            mods["norm"] = nn.LayerNorm(d, eps=opts.bn_eps)
        mods["pool"] = MeanPool()
        out = nn.Linear(d, opts.n_out)
        mods["output"] = out
    return assemble(mods, weighted, out, opts)
