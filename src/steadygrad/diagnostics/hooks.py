"""Finding the layers of an arbitrary ``nn.Module`` and grouping them into report rows.

A *row* is one weighted layer (a leaf module with a ``weight`` parameter of 2 or more
dimensions: ``Linear``, ``Conv*``, ``Embedding``, ...) together with the leaves that run after
it and before the next weighted layer (batch norm, dropout, the activation). The row's
activation is the first activation module (:func:`steadygrad.nn.activations.activation_name`)
in that run; an activation that runs before any weighted layer gets a row of its own.

Order is **execution order**, recorded on the first monitored forward pass, not registration
order. Activations applied as functions inside a custom ``forward`` (``F.relu(x)``) are not
modules and cannot be seen: the row then has no activation and its statistics are taken on the
weighted layer's output (the pre-activation).

Example:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    >>> rows = plan_rows(list(net.named_children()))
    >>> [(r.name, r.activation, r.members) for r in rows]
    [('0', 'relu', ('0', '1', '2')), ('3', None, ('3',))]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

from steadygrad.nn.activations import activation_name

__all__ = ["LayerRow", "is_weighted", "leaf_modules", "main_weight", "plan_rows", "unit_dim"]

_CHANNEL_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm)


def main_weight(module: nn.Module) -> nn.Parameter | None:
    """The weight a row reports: ``weight`` (2+ dimensions), or for a recurrent layer
    (``RNN``/``GRU``/``LSTM``) its first hidden-to-hidden matrix ``weight_hh_l0``.

    >>> main_weight(nn.GRU(3, 4)).shape, main_weight(nn.LayerNorm(3)) is None
    (torch.Size([12, 4]), True)
    """
    w = module._parameters.get("weight")
    if isinstance(w, nn.Parameter) and w.dim() >= 2:
        return w
    if isinstance(module, nn.RNNBase):
        hh = module._parameters.get("weight_hh_l0")
        return hh if isinstance(hh, nn.Parameter) else None
    return None


def is_weighted(module: nn.Module) -> bool:
    """True for a layer with a learnable ``weight`` of 2+ dimensions (Linear, Conv, Embedding)
    or a recurrent layer (RNN, GRU, LSTM).

    Normalization layers (1-D ``weight``) and PReLU are not weighted layers.

    >>> is_weighted(nn.Linear(2, 3)), is_weighted(nn.BatchNorm1d(3)), is_weighted(nn.ReLU())
    (True, False, False)
    >>> is_weighted(nn.LSTM(2, 3))
    True
    """
    return main_weight(module) is not None


def unit_dim(module: nn.Module) -> int:
    """Dimension that indexes units of the module's output: 1 for conv (channels), else -1.

    >>> unit_dim(nn.Conv2d(1, 2, 3)), unit_dim(nn.Linear(2, 2))
    (1, -1)
    """
    return 1 if isinstance(module, _CHANNEL_FIRST) else -1


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Named leaf modules (no children) of ``model``; the model itself if it is a leaf.

    >>> [n for n, _ in leaf_modules(nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU())))]
    ['0', '1.0']
    """
    return [(name or type(m).__name__, m) for name, m in model.named_modules()
            if not any(True for _ in m.children())]


@dataclass(frozen=True)
class LayerRow:
    """One report row: a weighted layer and the leaves that follow it.

    Attributes:
        index: row position in forward order (0 = closest to the input).
        name: qualified name of the weighted module (or of the activation for an
            activation-only row).
        kind: class name of that module (``"Linear"``).
        activation: registry name of the row's activation, None if no activation module ran.
        members: qualified names of every leaf in the row, in execution order.
        member_kinds: their class names.
        weight_leaf: position of the weighted module in the leaf list (None if none).
        act_leaf: position of the activation module in the leaf list (None if none).
        unit_dim: 1 for channel-first outputs, -1 for feature-last.
        fan_in: inputs per unit of the weighted layer (None if none).

    >>> row = plan_rows([("fc", nn.Linear(3, 2)), ("act", nn.ReLU())])[0]
    >>> row.name, row.activation, row.fan_in, row.members
    ('fc', 'relu', 3, ('fc', 'act'))
    """

    index: int
    name: str
    kind: str
    activation: str | None
    members: tuple[str, ...]
    member_kinds: tuple[str, ...] = ()
    weight_leaf: int | None = None
    act_leaf: int | None = None
    unit_dim: int = -1
    fan_in: int | None = None


def _fan_in(module: nn.Module) -> int | None:
    w = main_weight(module)
    if w is None:
        return None
    if isinstance(module, nn.RNNBase):
        return int(module.hidden_size)
    if isinstance(module, nn.Embedding):
        return 1
    return int(w[0].numel())


@dataclass
class _Group:
    name: str
    module: nn.Module | None
    leaf: int | None
    act: str | None = None
    act_leaf: int | None = None
    members: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def add(self, name: str, module: nn.Module) -> None:
        self.members.append(name)
        self.kinds.append(type(module).__name__)


def plan_rows(
    ordered: Sequence[tuple[str, nn.Module]], leaf_index: Sequence[int] | None = None
) -> list[LayerRow]:
    """Group leaves, given in execution order, into report rows.

    Args:
        ordered: ``(name, module)`` pairs in the order they ran.
        leaf_index: position of each entry in :func:`leaf_modules` (default ``0, 1, ...``).

    Returns:
        The rows, in forward order.

    >>> net = nn.Sequential(nn.Tanh(), nn.Linear(2, 2), nn.Dropout(), nn.Sigmoid(), nn.ReLU())
    >>> [(r.name, r.activation, r.member_kinds) for r in plan_rows(list(net.named_children()))]
    [('0', 'tanh', ('Tanh',)), ('1', 'sigmoid', ('Linear', 'Dropout', 'Sigmoid', 'ReLU'))]
    >>> plan_rows([("rnn", nn.RNN(2, 3, nonlinearity="relu"))])[0].activation  # nn.RNN's own
    'relu'

    An ``nn.RNN`` row takes the cell's nonlinearity as its activation (its output is that
    activation's output); GRU/LSTM outputs are gated mixtures and get none.
    """
    idx = list(leaf_index) if leaf_index is not None else list(range(len(ordered)))
    groups: list[_Group] = []
    for (name, module), leaf in zip(ordered, idx, strict=True):
        act = activation_name(module)
        act = None if act == "linear" else act
        if is_weighted(module):
            groups.append(_Group(name, module, leaf))
            if isinstance(module, nn.RNN):  # its output is tanh(.) or relu(.) of the cell
                groups[-1].act, groups[-1].act_leaf = module.nonlinearity, leaf
        elif act is not None and (not groups or groups[-1].act is not None) and (
            not groups or groups[-1].module is None
        ):
            groups.append(_Group(name, None, None, act, leaf))
        elif act is not None and groups[-1].act is None:
            groups[-1].act, groups[-1].act_leaf = act, leaf
        elif not groups:
            continue
        else:
            groups[-1].add(name, module)
            continue
        groups[-1].add(name, module)
    rows = []
    for i, g in enumerate(groups):
        mod = g.module
        rows.append(LayerRow(
            index=i,
            name=g.name,
            kind=type(mod).__name__ if mod is not None else "activation",
            activation=g.act,
            members=tuple(g.members),
            member_kinds=tuple(g.kinds),
            weight_leaf=g.leaf,
            act_leaf=g.act_leaf,
            unit_dim=unit_dim(mod) if mod is not None else -1,
            fan_in=_fan_in(mod) if mod is not None else None,
        ))
    return rows
