"""Many-to-one recurrent networks (simple RNN, GRU, LSTM) with Keras's initialization.

:func:`rnn` reads a sequence (``(T, F)`` features, or ``(T,)`` token ids with ``vocab``
through an embedding), runs torch's own ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (``batch_first``),
keeps the last time step's output and classifies it with a dense head. Initialization follows
Keras's recurrent layers: input kernels ``kernel_initializer`` (Glorot uniform for ``"auto"``,
the cell's tanh), recurrent kernels ``recurrent_initializer`` (``"orthogonal"``), biases
``bias_initializer`` and, for the LSTM, ``unit_forget_bias`` (forget-gate bias 1; Jozefowicz
et al., 2015).

PyTorch vs Keras (where it bites): PyTorch's cells have *two* bias vectors per layer
(``bias_ih`` and ``bias_hh``), Keras's ``SimpleRNN`` and ``LSTM`` one. A torch LSTM layer has
``4 * (H*F + H*H + 2*H)`` parameters, Keras's ``4 * (H*F + H*H + H)``; a torch simple RNN
``H*F + H*H + 2*H``, Keras ``H*F + H*H + H``. Keras's ``GRU`` (``reset_after=True``, the TF2
default) also has two biases and the same count as torch, ``3 * (H*F + H*H + 2*H)``. With
``unit_forget_bias`` the forget gate's ``bias_ih`` slice is 1 and ``bias_hh`` stays 0, so the
sum, Keras's bias, is 1.

Module names (stable): ``embedding`` (token input only, a :class:`TokenEmbedding`), ``rnn``
(the torch recurrent module), ``last`` (:class:`LastStep`), ``norm`` (``normalization="after"``),
``dropout``, ``dense{j}, dense_act{j}`` for the head's hidden layers, and ``output``.

Example:
    >>> net = rnn((20,), 32, cell="lstm", vocab=10, num_outputs=10, seed=0)
    >>> [name for name, _ in net.named_children()]
    ['embedding', 'rnn', 'last', 'output']
    >>> b_ih, b_hh = net.rnn.bias_ih_l0.detach(), net.rnn.bias_hh_l0.detach()
    >>> float(b_ih[32:64].min()), float(b_hh.abs().max())
    (1.0, 0.0)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn import init
from steadygrad.nn._arch import (
    NORMS,
    TokenEmbedding,
    check_options,
    dense_head,
    keras_uniform_,
    norm_layer,
    sequence_input,
)
from steadygrad.nn._build_checks import (
    Activation,
    InitSpec,
    check_choice,
    check_int,
    check_ints,
)

__all__ = ["CELLS", "LastStep", "rnn"]

CELLS: dict[str, Callable[..., nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
"""The recurrent cells by name (torch's modules)."""

_GATES = {"rnn": 1, "gru": 3, "lstm": 4}


class LastStep(nn.Module):
    """The last time step of a ``batch_first`` recurrent module's output ``(out, state)``.

    >>> LastStep()((torch.arange(6.0).reshape(1, 3, 2), None))
    tensor([[4., 5.]])
    """

    def forward(self, x: Any) -> torch.Tensor:
        out = x[0] if isinstance(x, tuple) else x
        return out[:, -1]


def rnn(
    input_shape: Sequence[int] | int,
    hidden: int = 64,
    *,
    cell: str = "lstm",
    layers: int = 1,
    vocab: int | None = None,
    embedding_dim: int = 32,
    nonlinearity: str = "tanh",
    dense: Sequence[int] = (),
    activation: Activation = "relu",
    kernel_initializer: InitSpec = "auto",
    recurrent_initializer: InitSpec = "orthogonal",
    bias_initializer: InitSpec = "zeros",
    unit_forget_bias: bool = True,
    normalization: str = "none",
    norm: str = "layer",
    dropout: float = 0.0,
    dropout_kind: str = "dropout",
    l1: float = 0.0,
    l2: float = 0.0,
    max_norm: float | None = None,
    output: str = "multiclass",
    num_outputs: int | None = None,
    bn_momentum: float = 0.1,
    bn_eps: float = 1e-5,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """A many-to-one recurrent net: ``[embedding] rnn last [norm] [dropout] (dense act)* output``.

    Args:
        input_shape: ``(T, F)`` feature sequences, or ``(T,)`` token ids with ``vocab``.
        hidden: units of every recurrent layer.
        cell: ``"rnn"`` (Elman, torch ``nn.RNN``), ``"gru"`` or ``"lstm"``.
        layers: stacked recurrent layers (torch's ``num_layers``).
        vocab: vocabulary size of token inputs (ids in ``0..vocab-1``), or None.
        embedding_dim: embedding size for token inputs.
        nonlinearity: ``"tanh"`` or ``"relu"``, the simple RNN's activation.
        dense: units of hidden dense layers of the head.
        activation: the head's hidden activation (as in ``mlp``).
        kernel_initializer: input-to-hidden kernels (and the head's hidden layers); ``"auto"``
            resolves by the cell's activation (tanh: Glorot uniform, Keras's default).
        recurrent_initializer: hidden-to-hidden kernels (Keras default ``"orthogonal"``).
        bias_initializer: every bias.
        unit_forget_bias: LSTM only: forget-gate bias 1 (Keras default True).
        normalization: ``"none"`` or ``"after"``: a norm layer on the last hidden state.
        norm: ``"layer"`` (``LayerNorm``) or ``"batch"`` (``BatchNorm1d``).
        dropout: rate between stacked recurrent layers (torch's ``dropout``), after the last
            hidden state and after each hidden dense layer.
        dropout_kind: kind of the dropout modules (``"dropout"``, ``"alpha"``, ``"mc"``,
            ``"mc_alpha"``); between recurrent layers torch's cell applies plain dropout.
        l1, l2, max_norm: Keras-style kernel regularizer/constraint on the ``Linear`` layers
            (head); torch's recurrent modules have no single ``weight`` to attach them to.
        output, num_outputs: the head, as in ``mlp``.
        bn_momentum, bn_eps: normalization settings.
        seed, generator: the source of the initial weights.

    Returns:
        An ``nn.Sequential`` with the named children listed in the module docstring.

    Raises:
        ConfigError: an argument is invalid (named, with what is allowed).

    Example:
        >>> import torch
        >>> net = rnn((10, 2), 8, cell="gru", output="regression", seed=0)
        >>> net(torch.zeros(4, 10, 2)).shape
        torch.Size([4, 1])
        >>> sum(p.numel() for p in net.rnn.parameters()) == 3 * (8 * 2 + 8 * 8 + 2 * 8)
        True
    """
    _, features = sequence_input(input_shape, vocab)
    h = check_int("hidden", hidden)
    check_choice("cell", cell, tuple(CELLS))
    n_layers = check_int("layers", layers)
    emb = check_int("embedding_dim", embedding_dim)
    check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
    units = check_ints("dense", dense, empty=True)
    if not isinstance(unit_forget_bias, bool):
        raise ConfigError("unit_forget_bias", unit_forget_bias, "True or False")
    check_choice("normalization", normalization, ("none", "after"))
    check_choice("norm", norm, NORMS)
    opts = check_options(
        activation=activation, kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer, dropout=dropout, dropout_kind=dropout_kind,
        l1=l1, l2=l2, max_norm=max_norm, output=output, num_outputs=num_outputs,
        bn_momentum=bn_momentum, bn_eps=bn_eps, seed=seed, generator=generator,
    )

    mods: OrderedDict[str, nn.Module] = OrderedDict()
    if vocab is not None:
        embedding = torch.nn.utils.skip_init(TokenEmbedding, vocab, emb)
        keras_uniform_(embedding.weight, opts)
        mods["embedding"] = embedding
        features = emb
    assert features is not None
    kwargs: dict[str, Any] = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    with torch.random.fork_rng(devices=[]):  # torch's default init draws; ours replaces it
        recurrent = CELLS[cell](
            features, h, num_layers=n_layers, batch_first=True,
            dropout=opts.dropout if n_layers > 1 else 0.0, **kwargs,
        )
    cell_act: nn.Module = nn.ReLU() if cell == "rnn" and nonlinearity == "relu" else nn.Tanh()
    kinit = opts.kernel_initializer
    if isinstance(kinit, str) and init.INITIALIZERS.canonical(kinit) == "auto":
        kinit = init.auto_initializer(cell_act)
    with torch.no_grad():
        for name, p in recurrent.named_parameters():
            if name.startswith("weight_ih"):
                init.get(kinit)(p, generator=opts.generator)
            elif name.startswith("weight_hh"):
                init.get(recurrent_initializer)(p, generator=opts.generator)
            else:
                init.get(opts.bias_initializer)(p, generator=opts.generator)
                if cell == "lstm" and unit_forget_bias:
                    p[h:2 * h] = 1.0 if name.startswith("bias_ih") else 0.0
    mods["rnn"] = recurrent
    mods["last"] = LastStep()
    if normalization == "after":
        mods["norm"] = norm_layer(norm, 1, h, opts)
    if opts.dropout > 0:
        mods["dropout"] = opts.dropout_layer()
    weighted: list[tuple[nn.Module, nn.Module | None]] = []
    fan = h
    return dense_head(mods, weighted, fan, units, activation, opts)
