"""Reuse a trained model: copy it with its weights, keep its lower layers under a new head.

Transfer learning (Géron, *Hands-On ML*, ch. 11, "Reusing Pretrained Layers"; Yosinski et al.,
"How transferable are features in deep neural networks?", NeurIPS 2014): the lower layers of
a network trained on a similar task compute general features; keep them, replace the top
(task-specific) layers, train the new head first with the reused layers frozen, then unfreeze
and fine-tune (see :func:`~steadygrad.transfer.fine_tune.fine_tune`).

Everything here copies (``copy.deepcopy``): training the new model **never** changes the
source model, the pitfall of Keras's ``Sequential(model_A.layers[:-1])`` which shares layers.

Example:
    >>> import torch
    >>> from steadygrad.nn.build import mlp
    >>> source = mlp(8, (16, 16), num_outputs=5, seed=0)
    >>> target = reuse(source, drop_last=1, new_head=1)
    >>> list(target._modules)
    ['dense1', 'act1', 'dense2', 'act2', 'output']
    >>> target.output
    Linear(in_features=16, out_features=1, bias=True)
    >>> target.dense1.weight is source.dense1.weight
    False
    >>> torch.equal(target.dense1.weight, source.dense1.weight)
    True
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence
from typing import TypeVar

import torch
from torch import nn

from steadygrad.errors import ConfigError

__all__ = ["clone", "output_features", "parameters_equal", "reuse"]

M = TypeVar("M", bound=nn.Module)


def clone(model: M) -> M:
    """An independent copy of ``model`` with the same weights, buffers and attributes.

    ``copy.deepcopy`` semantics: parameters, buffers, attached regularizers/constraints and
    hooks are copied; nothing is shared, so training the clone leaves ``model`` bit-identical.

    Args:
        model: any ``nn.Module``.

    Returns:
        The copy, in the same train/eval mode and on the same device.

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(3, 2)
        >>> twin = clone(net)
        >>> torch.equal(twin.weight, net.weight), twin.weight is net.weight
        (True, False)
    """
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "a torch.nn.Module")
    return copy.deepcopy(model)


def output_features(layers: Sequence[nn.Module] | nn.Module) -> int | None:
    """Width of the output of a stack of layers: the last ``out_features``/``num_features``.

    Walks the modules from the end; returns None when no ``Linear``, ``Conv`` (``out_channels``)
    or batch-norm layer tells the width.

    >>> from torch import nn
    >>> output_features([nn.Linear(4, 7), nn.ReLU(), nn.Dropout(0.1)])
    7
    """
    mods = list(layers.modules()) if isinstance(layers, nn.Module) else [
        m for layer in layers for m in layer.modules()
    ]
    for module in reversed(mods):
        for attr in ("out_features", "out_channels", "num_features"):
            value = getattr(module, attr, None)
            if isinstance(value, int):
                return value
    return None


def _children(model: nn.Module) -> list[tuple[str, nn.Module]]:
    if not isinstance(model, nn.Module):
        raise ConfigError("model", type(model).__name__, "an nn.Sequential-like torch.nn.Module")
    children = list(model.named_children())
    if not children:
        raise ConfigError("model", type(model).__name__, "a model with child layers",
                          hint="reuse works on nn.Sequential-like models")
    return children


def reuse(
    model: nn.Module,
    drop_last: int = 1,
    new_head: nn.Module | Sequence[nn.Module] | int | None = None,
    *,
    head_name: str = "output",
) -> nn.Sequential:
    """A copy of all but the last ``drop_last`` layers of ``model``, topped by ``new_head``.

    The model's top-level children are taken in order (``nn.Sequential`` order, or the order
    in which a custom module registered them, which must then be the order its ``forward``
    applies them). The kept layers are deep-copied with their weights and names.

    Args:
        model: a trained ``nn.Sequential`` (or Sequential-like) model; never modified.
        drop_last: how many top-level layers to drop from the end (0 keeps all).
        new_head: an ``int`` (a fresh ``Linear(width, new_head)`` whose input width is the
            last ``out_features`` of the kept layers, PyTorch's default init), a module, a
            list of modules, or None (no head: the reused body alone, e.g. a feature
            extractor or the lower layers of a model trained on an auxiliary task).
        head_name: the name of the head in the returned ``nn.Sequential`` (a list of head
            modules is named ``head_name``, ``head_name_1``, ...).

    Returns:
        ``nn.Sequential(kept layers..., head...)`` in ``model``'s train/eval mode.

    Raises:
        ConfigError: ``drop_last`` out of range, a head width that cannot be inferred, or a
            head name that clashes with a kept layer.

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        >>> reuse(net, drop_last=1, new_head=[nn.Linear(8, 2), nn.Softmax(dim=1)])
        Sequential(
          (0): Linear(in_features=4, out_features=8, bias=True)
          (1): ReLU()
          (output): Linear(in_features=8, out_features=2, bias=True)
          (output_1): Softmax(dim=1)
        )
    """
    children = _children(model)
    n = len(children)
    if isinstance(drop_last, bool) or not isinstance(drop_last, int) or not 0 <= drop_last < n:
        raise ConfigError("drop_last", drop_last, f"an int in [0, {n - 1}] (the model has {n} "
                          "top-level layers)")
    kept = children[: n - drop_last]
    if isinstance(new_head, bool):
        raise ConfigError("new_head", new_head, "an int, a module, a list of modules or None")
    heads: list[nn.Module]
    if new_head is None:
        heads = []
    elif isinstance(new_head, int):
        if new_head < 1:
            raise ConfigError("new_head", new_head, "a positive number of outputs")
        width = output_features([m for _, m in kept])
        if width is None:
            raise ConfigError(
                "new_head", new_head, "a module when the kept layers' output width is unknown",
                hint="pass new_head=nn.Linear(width, outputs)",
            )
        heads = [nn.Linear(width, new_head)]
    elif isinstance(new_head, nn.Module):
        heads = [new_head]
    elif isinstance(new_head, Sequence) and all(isinstance(m, nn.Module) for m in new_head):
        heads = list(new_head)
    else:
        raise ConfigError("new_head", new_head, "an int, a module, a list of modules or None")
    mods: OrderedDict[str, nn.Module] = OrderedDict(
        (name, copy.deepcopy(module)) for name, module in kept
    )
    for i, head in enumerate(heads):
        name = head_name if i == 0 else f"{head_name}_{i}"
        if name in mods:
            raise ConfigError("head_name", head_name, f"a name not used by the kept layers "
                              f"({', '.join(mods)})", hint="pass head_name='head'")
        mods[name] = head
    out = nn.Sequential(mods)
    param = next(model.parameters(), None)
    if param is not None:
        out.to(param.device)
    return out.train(model.training)


def parameters_equal(a: nn.Module, b: nn.Module) -> bool:
    """True when two modules hold bit-identical parameters and buffers (same names).

    >>> import torch
    >>> net = torch.nn.Linear(2, 2)
    >>> parameters_equal(net, clone(net))
    True
    """
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

