"""A ResNet of basic blocks (He et al., 2016) with ``mlp``'s options, for small images.

:class:`BasicBlock` follows torchvision's ``BasicBlock``: ``conv3x3 → norm → act → conv3x3 →
norm``, plus the shortcut (identity, or a strided 1x1 conv + norm "projection" when the shape
changes), then the activation. Unlike torchvision, the two activations are two modules
(``act1``, ``act2``) so that the monitor sees both, and a missing normalization is ``None``
(``normalization="none"``), so a rewrite can set it.

:func:`resnet` is the CIFAR-style network of the paper's section 4.2: a 3x3 stem conv, stages
of basic blocks (the first block of every stage after the first halves the resolution), global
average pooling and a ``Linear`` output.

Module names (stable): ``stem.conv, stem.norm, stem.act``; ``stage{s}.block{b}`` (from 1) with
``conv1, norm1, act1, conv2, norm2, shortcut, act2`` (``shortcut`` is None for the identity,
else ``shortcut.conv``/``shortcut.norm``); then ``pool``, ``flatten``, ``dropout`` (when
``dropout > 0``) and ``output``.

Example:
    >>> net = resnet((1, 8, 8), stages=(8, 16), blocks_per_stage=1, num_outputs=10, seed=0)
    >>> [name for name, _ in net.named_children()]
    ['stem', 'stage1', 'stage2', 'pool', 'flatten', 'output']
    >>> net.stage1.block1.shortcut is None, type(net.stage2.block1.shortcut.conv).__name__
    (True, 'Conv2d')
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from steadygrad.errors import ConfigError
from steadygrad.nn._arch import (
    NORMS,
    Options,
    assemble,
    check_options,
    make_activation,
    norm_layer,
)
from steadygrad.nn._build_checks import (
    Activation,
    InitSpec,
    check_choice,
    check_int,
    check_ints,
)
from steadygrad.nn.cnn import image_shape

__all__ = ["RESNET_NORMALIZATIONS", "BasicBlock", "resnet"]

RESNET_NORMALIZATIONS: tuple[str, ...] = ("before", "none")
"""Normalization in a basic block: after each conv, before the activation (the paper), or none."""


class BasicBlock(nn.Module):
    """``act2(norm2(conv2(act1(norm1(conv1(x))))) + shortcut(x))`` (torchvision semantics).

    Attributes:
        conv1, conv2: 3x3 convolutions (``conv1`` carries the stride).
        norm1, norm2: normalization layers, or None.
        act1, act2: the activation after ``norm1`` and after the addition, or None (linear).
        shortcut: None (identity) or the projection ``Sequential(conv=1x1, [norm])``.

    Example:
        >>> block = BasicBlock(nn.Conv2d(4, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8),
        ...     nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8),
        ...     nn.Sequential(OrderedDict(conv=nn.Conv2d(4, 8, 1, 2, bias=False),
        ...                               norm=nn.BatchNorm2d(8))), nn.ReLU())
        >>> block(torch.zeros(2, 4, 8, 8)).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(
        self,
        conv1: nn.Module,
        norm1: nn.Module | None,
        act1: nn.Module | None,
        conv2: nn.Module,
        norm2: nn.Module | None,
        shortcut: nn.Module | None,
        act2: nn.Module | None,
    ) -> None:
        super().__init__()
        self.conv1 = conv1
        self.norm1 = norm1
        self.act1 = act1
        self.conv2 = conv2
        self.norm2 = norm2
        self.shortcut = shortcut
        self.act2 = act2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if self.norm1 is not None:
            out = self.norm1(out)
        if self.act1 is not None:
            out = self.act1(out)
        out = self.conv2(out)
        if self.norm2 is not None:
            out = self.norm2(out)
        out = out + (x if self.shortcut is None else self.shortcut(x))
        if self.act2 is not None:
            out = self.act2(out)
        return out


def _conv(c_in: int, c_out: int, k: int, stride: int, bias: bool) -> nn.Conv2d:
    return torch.nn.utils.skip_init(nn.Conv2d, c_in, c_out, k, stride, k // 2, bias=bias)


def _block(
    c_in: int, c_out: int, stride: int, activation: Activation, normalization: str,
    norm: str, opts: Options, weighted: list[tuple[nn.Module, nn.Module | None]],
) -> BasicBlock:
    normed = normalization == "before"
    act1, act2 = make_activation(activation, c_out), make_activation(activation, c_out)
    conv1 = _conv(c_in, c_out, 3, stride, not normed)
    conv2 = _conv(c_out, c_out, 3, 1, not normed)
    shortcut: nn.Module | None = None
    if stride != 1 or c_in != c_out:
        proj: OrderedDict[str, nn.Module] = OrderedDict()
        proj["conv"] = _conv(c_in, c_out, 1, stride, not normed)
        if normed:
            proj["norm"] = norm_layer(norm, 2, c_out, opts)
        shortcut = nn.Sequential(proj)
        weighted.append((proj["conv"], act2))
    weighted += [(conv1, act1), (conv2, act2)]
    return BasicBlock(
        conv1, norm_layer(norm, 2, c_out, opts) if normed else None, act1,
        conv2, norm_layer(norm, 2, c_out, opts) if normed else None, shortcut, act2,
    )


def resnet(
    input_shape: Sequence[int],
    stages: Sequence[int] = (16, 32, 64),
    blocks_per_stage: int | Sequence[int] = 2,
    *,
    activation: Activation = "relu",
    kernel_initializer: InitSpec = "auto",
    bias_initializer: InitSpec = "zeros",
    normalization: str = "before",
    norm: str = "batch",
    zero_init_residual: bool = False,
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
    """A ResNet: stem conv, stages of :class:`BasicBlock`, global average pool, ``Linear``.

    The stem is a 3x3 conv to ``stages[0]`` channels. Stage ``s`` has
    ``blocks_per_stage[s]`` blocks of ``stages[s]`` channels; its first block has stride 2
    (except in the first stage) and a 1x1 projection shortcut when the shape changes, as
    torchvision's ``downsample``. Convs followed by batch norm have no bias. With
    ``zero_init_residual`` each block's ``norm2`` scale starts at 0 so each block starts as
    the identity (Goyal et al., 2017; torchvision's option of the same name).

    Args:
        input_shape: ``(C, H, W)`` of one image.
        stages: channels of each stage.
        blocks_per_stage: blocks in every stage (an int) or per stage (a sequence).
        activation: as in ``mlp`` (a name, dict, module or None).
        kernel_initializer: a name/dict/callable or ``"auto"`` (He for ReLU).
        bias_initializer: initializer of every bias.
        normalization: ``"before"`` (conv → norm → act, the paper) or ``"none"``.
        norm: ``"batch"`` (``BatchNorm2d``) or ``"layer"`` (``GroupNorm(1, C)``).
        zero_init_residual: start each block's last norm scale at zero.
        dropout: rate before the output layer, in ``[0, 1)``.
        dropout_kind: ``"dropout"``, ``"alpha"``, ``"mc"`` or ``"mc_alpha"``.
        l1, l2, max_norm: Keras-style kernel regularizers and constraint on every conv/linear.
        output, num_outputs: the head, as in ``mlp``.
        bn_momentum, bn_eps: batch norm settings (PyTorch momentum convention).
        seed, generator: the source of the initial weights.

    Returns:
        An ``nn.Sequential`` with the named children listed in the module docstring.

    Raises:
        ConfigError: an argument is invalid (named, with what is allowed).

    Example:
        >>> import torch
        >>> net = resnet((3, 8, 8), stages=(4,), blocks_per_stage=1, num_outputs=2, seed=0)
        >>> net(torch.zeros(5, 3, 8, 8)).shape
        torch.Size([5, 2])
        >>> # stem 3*4*9 + BN 2*4; block: 2 * (4*4*9 + BN 2*4); head 4*2 + 2
        >>> sum(p.numel() for p in net.parameters()) == 108 + 8 + 2 * (144 + 8) + 10
        True
    """
    c_in, h, w = image_shape(input_shape)
    chans = check_ints("stages", stages, hint="e.g. (16, 32, 64)")
    if isinstance(blocks_per_stage, int) and not isinstance(blocks_per_stage, bool):
        blocks = [check_int("blocks_per_stage", blocks_per_stage)] * len(chans)
    elif isinstance(blocks_per_stage, Sequence) and not isinstance(blocks_per_stage, str):
        if len(blocks_per_stage) != len(chans):
            raise ConfigError(
                "blocks_per_stage", blocks_per_stage,
                f"an int or one int per stage ({len(chans)} values)",
            )
        blocks = [check_int(f"blocks_per_stage[{i}]", b) for i, b in enumerate(blocks_per_stage)]
    else:
        raise ConfigError("blocks_per_stage", blocks_per_stage, "an int >= 1 or a list of them")
    check_choice("normalization", normalization, RESNET_NORMALIZATIONS)
    check_choice("norm", norm, NORMS)
    if not isinstance(zero_init_residual, bool):
        raise ConfigError("zero_init_residual", zero_init_residual, "True or False")
    opts = check_options(
        activation=activation, kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer, dropout=dropout, dropout_kind=dropout_kind,
        l1=l1, l2=l2, max_norm=max_norm, output=output, num_outputs=num_outputs,
        bn_momentum=bn_momentum, bn_eps=bn_eps, seed=seed, generator=generator,
    )
    normed = normalization == "before"
    weighted: list[tuple[nn.Module, nn.Module | None]] = []
    stem: OrderedDict[str, nn.Module] = OrderedDict(conv=_conv(c_in, chans[0], 3, 1, not normed))
    if normed:
        stem["norm"] = norm_layer(norm, 2, chans[0], opts)
    stem_act = make_activation(activation, chans[0])
    if stem_act is not None:
        stem["act"] = stem_act
    weighted.append((stem["conv"], stem_act))
    mods: OrderedDict[str, nn.Module] = OrderedDict(stem=nn.Sequential(stem))
    c_prev = chans[0]
    for s, (c, n) in enumerate(zip(chans, blocks, strict=True), start=1):
        stage: OrderedDict[str, nn.Module] = OrderedDict()
        for b in range(1, n + 1):
            stride = 2 if (s > 1 and b == 1 and min(h, w) >= 2) else 1
            stage[f"block{b}"] = _block(
                c_prev, c, stride, activation, normalization, norm, opts, weighted
            )
            if stride == 2:
                h, w = (h + 1) // 2, (w + 1) // 2
            c_prev = c
        mods[f"stage{s}"] = nn.Sequential(stage)
    mods["pool"] = nn.AdaptiveAvgPool2d(1)
    mods["flatten"] = nn.Flatten()
    if opts.dropout > 0:
        mods["dropout"] = opts.dropout_layer()
    out = torch.nn.utils.skip_init(nn.Linear, c_prev, opts.n_out)
    mods["output"] = out

    model = assemble(mods, weighted, out, opts)
    if zero_init_residual and normed:
        for m in model.modules():
            if isinstance(m, BasicBlock) and m.norm2 is not None:
                scale = m.norm2.weight
                assert isinstance(scale, torch.Tensor)
                nn.init.zeros_(scale)
    return model
